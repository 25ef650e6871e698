//! Between-level regressions of random effects: a random slope on a
//! cluster-level covariate (`s ON w`, a cross-level interaction) and
//! regressions among random effects (`s ON y`, eq 5, 18, 25).
//!
//! The data are simulated here from a two-level linear model with a random
//! intercept u_j and a random slope s_j:
//! y_ij = nu + gam w_j + (beta + g w_j + s_j) x_ij + u_j + e_ij,
//! so a cluster's y is multivariate normal with mean
//! nu + gam w + (beta + g w) x and covariance theta I + Z Psi Z'
//! (Z = [1, x]); the exact log-likelihoods below are that density,
//! computed here independently of the engine. With `s ON y` the random
//! effects are eta = A (mu + L z), A = (I - B)^-1, which is the same
//! normal model with E[s] = mu_s + b nu, Cov(u, s) = b Var(u) and
//! Var(s) = b^2 Var(u) + Var(xi_s).

use std::collections::BTreeMap;

use mlmix::spec::{Loaded, Model, ParamKind, RandomKind};
use mlmix_integrate::{Grid, Method, Want};
use mlmix_tests::{
    Evaluator, Scratch, Sim, estimate, estimates, fit_text, free_format, load, mvn_log_density,
};

/// The truth of the simulations.
#[derive(Debug, Clone, Copy)]
struct Truth {
    nu: f64,
    beta: f64,
    gam: f64,
    /// Slope of the random slope on w (the cross-level interaction).
    g: f64,
    theta: f64,
    var_u: f64,
    var_s: f64,
    cov_us: f64,
}

const TRUTH: Truth = Truth {
    nu: 1.0,
    beta: 0.5,
    gam: 0.4,
    g: 0.3,
    theta: 1.0,
    var_u: 0.5,
    var_s: 0.2,
    cov_us: 0.1,
};

/// Rows `(cluster, y, x, w, x w)`: `clusters` clusters of 6 to 12 rows, w
/// standard normal per cluster, x standard normal per row.
fn simulate(sim: &mut Sim, t: &Truth, clusters: usize) -> Vec<Vec<f64>> {
    let mut rows = Vec::new();
    // (u, s) = chol(Psi) z
    let l11 = t.var_u.sqrt();
    let l21 = t.cov_us / l11;
    let l22 = (t.var_s - l21 * l21).sqrt();
    for j in 0..clusters {
        let w = sim.normal();
        let (z1, z2) = (sim.normal(), sim.normal());
        let u = l11 * z1;
        let s = l21 * z1 + l22 * z2;
        for _ in 0..6 + j % 7 {
            let x = sim.normal();
            let y =
                t.nu + t.gam * w + (t.beta + t.g * w + s) * x + u + t.theta.sqrt() * sim.normal();
            rows.push(vec![(j + 1) as f64, y, x, w, x * w]);
        }
    }
    rows
}

/// Rows `(y, x, w)` grouped by cluster.
fn by_cluster(rows: &[Vec<f64>]) -> Vec<Vec<(f64, f64, f64)>> {
    let mut by: BTreeMap<i64, Vec<(f64, f64, f64)>> = BTreeMap::new();
    for r in rows {
        by.entry(r[0] as i64).or_default().push((r[1], r[2], r[3]));
    }
    by.into_values().collect()
}

/// The exact log-likelihood of the linear model: per cluster, y is normal
/// with mean nu + gam w + (slope + g w) x and covariance
/// theta I + Z Psi Z'.
#[allow(clippy::too_many_arguments)]
fn exact_ll(
    rows: &[Vec<f64>],
    nu: f64,
    slope: f64,
    gam: f64,
    g: f64,
    theta: f64,
    var_u: f64,
    var_s: f64,
    cov_us: f64,
) -> f64 {
    by_cluster(rows)
        .iter()
        .map(|obs| {
            let n = obs.len();
            let mut v = vec![0.0; n * n];
            let mut r = vec![0.0; n];
            for i in 0..n {
                let (y, x, w) = obs[i];
                r[i] = y - nu - gam * w - (slope + g * w) * x;
                for k in 0..n {
                    let xk = obs[k].1;
                    v[i * n + k] = var_u + cov_us * (x + xk) + var_s * x * xk;
                }
                v[i * n + i] += theta;
            }
            mvn_log_density(&r, &v)
        })
        .sum()
}

// ---------------------------------------------------------------------------
// Inputs and parameters

const HEAD: &str = "DATA: FILE = d.dat;\nVARIABLE: NAMES = clus y x w xw; CLUSTER = clus;\n";

/// `s ON w`: the random slope's mean depends on w.
fn slope_on_w_text(analysis: &str) -> String {
    format!(
        "TITLE: s on w\n{HEAD}  USEVARIABLES = y x w; WITHIN = x; BETWEEN = w;\n\
         ANALYSIS: TYPE = TWOLEVEL; {analysis}\n\
         MODEL: %WITHIN%\n  s | y ON x;\n  %BETWEEN%\n  y ON w;\n  s ON w;\n  y WITH s;\n"
    )
}

/// The same model with the product x w in the data as a WITHIN covariate.
fn product_text(analysis: &str) -> String {
    format!(
        "TITLE: product covariate\n{HEAD}  USEVARIABLES = y x w xw; WITHIN = x xw; BETWEEN = w;\n\
         ANALYSIS: TYPE = TWOLEVEL; {analysis}\n\
         MODEL: %WITHIN%\n  s | y ON x;\n  y ON xw;\n  %BETWEEN%\n  y ON w;\n  y WITH s;\n"
    )
}

/// `s ON y`: the random slope regressed on the random intercept.
fn slope_on_intercept_text(analysis: &str) -> String {
    format!(
        "TITLE: s on y\n{HEAD}  USEVARIABLES = y x w; WITHIN = x; BETWEEN = w;\n\
         ANALYSIS: TYPE = TWOLEVEL; {analysis}\n\
         MODEL: %WITHIN%\n  s | y ON x;\n  %BETWEEN%\n  y ON w;\n  s ON w;\n  s ON y;\n"
    )
}

/// The parameter index of `kind` (class `class`).
fn index(model: &Model, kind: ParamKind, class: Option<usize>) -> usize {
    model
        .parameters
        .iter()
        .position(|p| p.kind == kind && p.class == class)
        .unwrap_or_else(|| panic!("no parameter {kind:?} {class:?}"))
}

/// The same parameter in another model: random effects by what they are,
/// the interaction `s ON w` as the slope on the product `xw`.
fn translate(from: &Model, to: &Model, kind: ParamKind) -> ParamKind {
    let r = |i: usize| re(to, from.random_effects()[i].kind);
    let xw = to
        .variables
        .iter()
        .position(|v| v.name.eq_ignore_ascii_case("xw"));
    match kind {
        ParamKind::RandomSlopeOn { covariate: W, .. } => ParamKind::Slope {
            var: Y,
            covariate: xw.expect("a product variable"),
        },
        ParamKind::RandomVariance { re } => ParamKind::RandomVariance { re: r(re) },
        ParamKind::RandomCovariance { a, b } => ParamKind::RandomCovariance {
            a: r(a).min(r(b)),
            b: r(a).max(r(b)),
        },
        k => k,
    }
}

/// The random effect of a kind.
fn re(model: &Model, kind: RandomKind) -> usize {
    model
        .random_effects()
        .iter()
        .position(|r| r.kind == kind)
        .unwrap_or_else(|| panic!("no random effect {kind:?}"))
}

/// Variables of the inputs above: y = 0, x = 1, w = 2, xw = 3.
const Y: usize = 0;
const X: usize = 1;
const W: usize = 2;
const XW: usize = 3;

/// phi of the `s ON w` model (or, with `product`, of the product model).
fn phi_slope_on_w(model: &Model, t: &Truth, product: bool) -> Vec<f64> {
    let mut phi = vec![0.0; model.parameters.len()];
    let u = re(model, RandomKind::Intercept { var: Y });
    let s = re(
        model,
        RandomKind::Slope {
            var: Y,
            covariate: X,
        },
    );
    let set = |phi: &mut Vec<f64>, kind: ParamKind, v: f64| phi[index(model, kind, None)] = v;
    set(&mut phi, ParamKind::Mean { var: Y }, t.nu);
    set(
        &mut phi,
        ParamKind::Slope {
            var: Y,
            covariate: X,
        },
        t.beta,
    );
    set(
        &mut phi,
        ParamKind::Slope {
            var: Y,
            covariate: W,
        },
        t.gam,
    );
    if product {
        set(
            &mut phi,
            ParamKind::Slope {
                var: Y,
                covariate: XW,
            },
            t.g,
        );
    } else {
        set(
            &mut phi,
            ParamKind::RandomSlopeOn {
                re: s,
                covariate: W,
            },
            t.g,
        );
    }
    set(&mut phi, ParamKind::Variance { var: Y }, t.theta);
    set(&mut phi, ParamKind::RandomVariance { re: u }, t.var_u);
    set(&mut phi, ParamKind::RandomVariance { re: s }, t.var_s);
    set(
        &mut phi,
        ParamKind::RandomCovariance {
            a: u.min(s),
            b: u.max(s),
        },
        t.cov_us,
    );
    phi
}

/// Gauss-Hermite with `n` points per dimension.
fn gh(n: usize, dims: usize) -> Grid {
    Grid::new(Method::GaussHermite, n, dims)
}

// ---------------------------------------------------------------------------
// 1. s ON w

#[test]
fn slope_on_between_covariate_likelihood_is_exact() {
    let scratch = Scratch::new("slope-on-w-ll");
    let rows = simulate(&mut Sim::new(11), &TRUTH, 60);
    scratch.write("d.dat", &free_format(&rows, "."));
    let s = load(&scratch, "s.inp", &slope_on_w_text(""));
    let p = load(&scratch, "p.inp", &product_text(""));
    assert_eq!(s.model.product_columns(), vec![(X, W)]);
    let t = TRUTH;
    let exact = exact_ll(
        &rows, t.nu, t.beta, t.gam, t.g, t.theta, t.var_u, t.var_s, t.cov_us,
    );
    // the posterior of z is normal, so adaptive Gauss-Hermite is exact once
    // centred on it
    let ll_s = Evaluator::new(&s).ll(&phi_slope_on_w(&s.model, &t, false), gh(10, 2), 3);
    let ll_p = Evaluator::new(&p).ll(&phi_slope_on_w(&p.model, &t, true), gh(10, 2), 3);
    println!("exact {exact:.9}, s ON w {ll_s:.9}, product {ll_p:.9}");
    assert!((ll_s - exact).abs() < 1e-6, "{ll_s} vs exact {exact}");
    assert!((ll_s - ll_p).abs() < 1e-9, "{ll_s} vs product {ll_p}");
    // and a wrong interaction is visibly worse
    let wrong = exact_ll(
        &rows, t.nu, t.beta, t.gam, 0.0, t.theta, t.var_u, t.var_s, t.cov_us,
    );
    assert!(exact - wrong > 1.0);
}

#[test]
fn slope_on_between_covariate_recovers_truth_and_equals_product_covariate() {
    let scratch = Scratch::new("slope-on-w-fit");
    let rows = simulate(&mut Sim::new(12), &TRUTH, 300);
    scratch.write("d.dat", &free_format(&rows, "."));
    let analysis = "CONVERGENCE = 1E-9; LOGCRITERION = 1E-10;";
    let (ls, fs) = fit_text(&scratch, "s.inp", &slope_on_w_text(analysis)).unwrap();
    let (lp, fp) = fit_text(&scratch, "p.inp", &product_text(analysis)).unwrap();
    assert!(fs.converged && fp.converged);
    println!(
        "LL s ON w {:.9}, product {:.9}",
        fs.loglikelihood, fp.loglikelihood
    );
    assert!((fs.loglikelihood - fp.loglikelihood).abs() < 1e-6);
    // the same estimates, parameter by parameter
    let (es, ep) = (estimates(&fs), estimates(&fp));
    for (i, p) in ls.model.parameters.iter().enumerate() {
        let kind = translate(&ls.model, &lp.model, p.kind);
        let j = index(&lp.model, kind, p.class);
        println!(
            "{:<24} {:>10.6} {:>10.6}",
            ls.model.param_full_name(p),
            es[i],
            ep[j]
        );
        assert!(
            (es[i] - ep[j]).abs() < 1e-4,
            "{kind:?}: {} vs {}",
            es[i],
            ep[j]
        );
    }
    // the truth within 3 standard errors
    let t = TRUTH;
    let truth = phi_slope_on_w(&ls.model, &t, false);
    for (p, tv) in fs.parameters.iter().zip(&truth) {
        let se = p.se.expect("a standard error");
        println!(
            "{} {}: {:.4} (se {:.4}), truth {tv}",
            p.section, p.name, p.estimate, se
        );
        assert!(
            (p.estimate - tv).abs() < 3.0 * se,
            "{} {}",
            p.section,
            p.name
        );
    }
    // reported under the between level
    let g = estimate(&fs, "Between Level: S ON", "W", None);
    assert!((g.estimate - t.g).abs() < 3.0 * g.se.unwrap());
    // the between level's sections: the means of the random intercept and
    // slope are intercepts of their between-level regressions, y ON w is
    // between-level, and the between level comes after the within level
    estimate(&fs, "Between Level: Intercepts", "Y", None);
    estimate(&fs, "Between Level: Intercepts", "S", None);
    estimate(&fs, "Between Level: Y ON", "W", None);
    estimate(&fs, "Between Level: Residual Variances", "S", None);
    assert!(!fs.parameters.iter().any(|p| p.section == "Y ON"));
    let report = mlmix::report::text(&fs, &ls.model);
    let at = |s: &str| {
        report
            .find(s)
            .unwrap_or_else(|| panic!("report lacks {s}:\n{report}"))
    };
    assert!(at("Residual Variances") < at("Between Level: Y ON"));
    assert!(at("Between Level: S ON") < at("Between Level: Intercepts"));
    assert!(at("Between Level: Intercepts") < at("Between Level: Residual Variances"));
}

#[test]
fn class_specific_slope_on_between_covariate() {
    // a between-level class variable: the interaction differs by class, as
    // a class-specific slope on the product does
    let scratch = Scratch::new("slope-on-w-classes");
    let rows = simulate(&mut Sim::new(13), &TRUTH, 40);
    scratch.write("d.dat", &free_format(&rows, "."));
    let head =
        "DATA: FILE = d.dat;\nVARIABLE: NAMES = clus y x w xw; CLUSTER = clus; CLASSES = cb(2);\n";
    let s = load(
        &scratch,
        "s.inp",
        &format!(
            "{head}  USEVARIABLES = y x w; WITHIN = x; BETWEEN = w cb;\n\
             ANALYSIS: TYPE = TWOLEVEL MIXTURE;\n\
             MODEL: %WITHIN%\n  %OVERALL%\n  s | y ON x;\n\
             \x20 %BETWEEN%\n  %OVERALL%\n  s ON w;\n  %cb#1%\n  s ON w;\n"
        ),
    );
    let p = load(
        &scratch,
        "p.inp",
        &format!(
            "{head}  USEVARIABLES = y x xw; WITHIN = x xw; BETWEEN = cb;\n\
             ANALYSIS: TYPE = TWOLEVEL MIXTURE;\n\
             MODEL: %WITHIN%\n  %OVERALL%\n  s | y ON x;\n  y ON xw;\n  %cb#1%\n  y ON xw;\n\
             \x20 %BETWEEN%\n  %OVERALL%\n"
        ),
    );
    let sm = &s.model;
    let s_re = re(
        sm,
        RandomKind::Slope {
            var: Y,
            covariate: X,
        },
    );
    // two free interactions, one per class
    let g1 = index(
        sm,
        ParamKind::RandomSlopeOn {
            re: s_re,
            covariate: W,
        },
        Some(0),
    );
    let g2 = index(
        sm,
        ParamKind::RandomSlopeOn {
            re: s_re,
            covariate: W,
        },
        Some(1),
    );
    assert_ne!(sm.parameters[g1].value, sm.parameters[g2].value);
    // the same parameter values in both models (by kind, the interaction
    // mapped to the product's slope)
    let mut phi_s = vec![0.0; sm.parameters.len()];
    let mut phi_p = vec![0.0; p.model.parameters.len()];
    for (i, par) in sm.parameters.iter().enumerate() {
        let v = match par.kind {
            ParamKind::Mean { .. } => 1.0 - 0.5 * par.class.unwrap_or(0) as f64,
            ParamKind::Slope { .. } => 0.4 + 0.2 * par.class.unwrap_or(0) as f64,
            ParamKind::RandomSlopeOn { .. } => [0.6, -0.3][par.class.unwrap_or(0)],
            ParamKind::Variance { .. } => 1.1,
            ParamKind::RandomVariance { .. } => 0.3,
            ParamKind::ClassIntercept { .. } => 0.2,
            _ => 0.0,
        };
        phi_s[i] = v;
        let kind = translate(sm, &p.model, par.kind);
        phi_p[index(&p.model, kind, par.class)] = v;
    }
    let ll_s = Evaluator::new(&s).ll(&phi_s, gh(8, 2), 2);
    let ll_p = Evaluator::new(&p).ll(&phi_p, gh(8, 2), 2);
    println!("class-specific s ON w {ll_s:.9}, product {ll_p:.9}");
    assert!((ll_s - ll_p).abs() < 1e-9);
    // and the classes' interactions matter
    let mut phi_same = phi_s.clone();
    phi_same[g2] = phi_same[g1];
    assert!((Evaluator::new(&s).ll(&phi_same, gh(8, 2), 2) - ll_s).abs() > 1e-3);
}

// ---------------------------------------------------------------------------
// 2. Regressions among random effects

/// The `s WITH y` model: the same normal model with a free covariance.
fn covariance_text(analysis: &str) -> String {
    format!(
        "TITLE: s with y\n{HEAD}  USEVARIABLES = y x w; WITHIN = x; BETWEEN = w;\n\
         ANALYSIS: TYPE = TWOLEVEL; {analysis}\n\
         MODEL: %WITHIN%\n  s | y ON x;\n  %BETWEEN%\n  y ON w;\n  s ON w;\n  s WITH y;\n"
    )
}

/// Parameters of the `s ON y` model by meaning.
struct RegLayout {
    nu: usize,
    mu_s: usize,
    gam: usize,
    g: usize,
    theta: usize,
    var_u: usize,
    psi_s: usize,
    b: usize,
}

fn reg_layout(model: &Model) -> RegLayout {
    let u = re(model, RandomKind::Intercept { var: Y });
    let s = re(
        model,
        RandomKind::Slope {
            var: Y,
            covariate: X,
        },
    );
    RegLayout {
        nu: index(model, ParamKind::Mean { var: Y }, None),
        mu_s: index(
            model,
            ParamKind::Slope {
                var: Y,
                covariate: X,
            },
            None,
        ),
        gam: index(
            model,
            ParamKind::Slope {
                var: Y,
                covariate: W,
            },
            None,
        ),
        g: index(
            model,
            ParamKind::RandomSlopeOn {
                re: s,
                covariate: W,
            },
            None,
        ),
        theta: index(model, ParamKind::Variance { var: Y }, None),
        var_u: index(model, ParamKind::RandomVariance { re: u }, None),
        psi_s: index(model, ParamKind::RandomVariance { re: s }, None),
        b: index(model, ParamKind::RandomRegression { re: s, on: u }, None),
    }
}

/// The `s ON y` parameters equivalent to the truth's covariance.
fn phi_regression(model: &Model, t: &Truth) -> Vec<f64> {
    let l = reg_layout(model);
    let mut phi = vec![0.0; model.parameters.len()];
    let b = t.cov_us / t.var_u;
    phi[l.nu] = t.nu;
    phi[l.mu_s] = t.beta - b * t.nu;
    phi[l.gam] = t.gam;
    phi[l.g] = t.g - b * t.gam;
    phi[l.theta] = t.theta;
    phi[l.var_u] = t.var_u;
    phi[l.psi_s] = t.var_s - b * t.cov_us;
    phi[l.b] = b;
    phi
}

#[test]
fn random_on_random_likelihood_is_exact() {
    let scratch = Scratch::new("s-on-y-ll");
    let rows = simulate(&mut Sim::new(21), &TRUTH, 60);
    scratch.write("d.dat", &free_format(&rows, "."));
    let r = load(&scratch, "r.inp", &slope_on_intercept_text(""));
    let ev = Evaluator::new(&r);
    // the derived entries: the slope's mean, its effect of w, and M = A L
    assert!(!ev.plan.derived.is_empty());
    assert!(ev.plan.chol.iter().any(|b| !b.beta.is_empty()));
    let l = reg_layout(&r.model);
    // a point away from the truth: every parameter matters
    let mut phi = phi_regression(&r.model, &TRUTH);
    phi[l.b] = -0.35;
    phi[l.mu_s] = 0.9;
    phi[l.g] = 0.1;
    phi[l.psi_s] = 0.15;
    let ll = ev.ll(&phi, gh(10, 2), 3);
    // the implied normal model: s = mu_s + b u_total + xi_s, u_total = nu + gam w + xi_u
    let b = phi[l.b];
    let var_u = phi[l.var_u];
    let exact = exact_ll(
        &rows,
        phi[l.nu],
        phi[l.mu_s] + b * phi[l.nu],
        phi[l.gam],
        phi[l.g] + b * phi[l.gam],
        phi[l.theta],
        var_u,
        b * b * var_u + phi[l.psi_s],
        b * var_u,
    );
    println!("s ON y: engine {ll:.9}, exact {exact:.9}");
    assert!((ll - exact).abs() < 1e-6, "{ll} vs {exact}");
}

#[test]
fn random_on_random_reparameterises_covariance() {
    let scratch = Scratch::new("s-on-y-fit");
    let rows = simulate(&mut Sim::new(22), &TRUTH, 300);
    scratch.write("d.dat", &free_format(&rows, "."));
    let analysis = "CONVERGENCE = 1E-9; LOGCRITERION = 1E-10;";
    let (lr, fr) = fit_text(&scratch, "r.inp", &slope_on_intercept_text(analysis)).unwrap();
    let (lc, fc) = fit_text(&scratch, "c.inp", &covariance_text(analysis)).unwrap();
    assert!(fr.converged && fc.converged);
    println!(
        "LL s ON y {:.9}, s WITH y {:.9}",
        fr.loglikelihood, fc.loglikelihood
    );
    assert!((fr.loglikelihood - fc.loglikelihood).abs() < 1e-6);
    assert_eq!(fr.free_parameters, fc.free_parameters);
    let er = estimates(&fr);
    let ec = estimates(&fc);
    let l = reg_layout(&lr.model);
    let cm = &lc.model;
    let u = re(cm, RandomKind::Intercept { var: Y });
    let s = re(
        cm,
        RandomKind::Slope {
            var: Y,
            covariate: X,
        },
    );
    let c = |kind: ParamKind| ec[index(cm, kind, None)];
    let var_u = c(ParamKind::RandomVariance { re: u });
    let cov = c(ParamKind::RandomCovariance {
        a: u.min(s),
        b: u.max(s),
    });
    let var_s = c(ParamKind::RandomVariance { re: s });
    let b = er[l.b];
    let pairs = [
        ("B = cov / var(u)", b, cov / var_u),
        (
            "residual var(s) = var(s) - cov^2 / var(u)",
            er[l.psi_s],
            var_s - cov * cov / var_u,
        ),
        ("var(u)", er[l.var_u], var_u),
        ("nu", er[l.nu], c(ParamKind::Mean { var: Y })),
        (
            "E s = mu_s + B nu",
            er[l.mu_s] + b * er[l.nu],
            c(ParamKind::Slope {
                var: Y,
                covariate: X,
            }),
        ),
        (
            "s ON w = g + B gam",
            er[l.g] + b * er[l.gam],
            c(ParamKind::RandomSlopeOn {
                re: s,
                covariate: W,
            }),
        ),
        ("theta", er[l.theta], c(ParamKind::Variance { var: Y })),
    ];
    for (what, a, bb) in pairs {
        println!("{what}: {a:.6} vs {bb:.6}");
        assert!((a - bb).abs() < 1e-4, "{what}: {a} vs {bb}");
    }
    // B is reported under the between level
    let rb = estimate(&fr, "Between Level: S ON", "Y", None);
    assert!((rb.estimate - b).abs() < 1e-12 && rb.se.is_some_and(|x| x > 0.0));
    assert!((b - TRUTH.cov_us / TRUTH.var_u).abs() < 3.0 * rb.se.unwrap());
}

/// Data with a categorical `u2` (three categories) next to `y`, for models
/// with more random effects: `(cluster, y, x, w, u2)`.
fn simulate_with_item(sim: &mut Sim, clusters: usize) -> Vec<Vec<f64>> {
    let mut rows = Vec::new();
    for j in 0..clusters {
        let w = sim.normal();
        let u = 0.7 * sim.normal();
        let s = 0.4 * sim.normal() + 0.3 * u;
        let v = 0.8 * s + 0.5 * sim.normal();
        let a = 0.8 * s + 0.6 * sim.normal();
        for _ in 0..4 + j % 5 {
            let x = sim.normal();
            let c = usize::from(sim.uniform() < 1.0 / (1.0 + (-0.3 - a).exp()));
            let y = 1.0 + 0.5 * c as f64 + 0.4 * w + (0.5 + 0.2 * w + s) * x + u + sim.normal();
            let u2 = sim.ordinal_logit(&[-0.5, 1.0], v + 0.3 * w + 0.4 * c as f64);
            rows.push(vec![(j + 1) as f64, y, x, w, u2 as f64]);
        }
    }
    rows
}

const ITEM_HEAD: &str = "DATA: FILE = d.dat;\nVARIABLE: NAMES = clus y x w u2; CLUSTER = clus;\n\
     \x20 USEVARIABLES = y x w u2; CATEGORICAL = u2; WITHIN = x; BETWEEN = w;\n";

#[test]
fn regressions_among_random_effects_equal_their_implied_covariances() {
    // y's random intercept u, its random slope s on x, and the random
    // intercept v of a categorical u2: s ON y and u2 ON s give the same
    // model as covariances among (u, s, v) with the implied values, and the
    // Cholesky factor of the implied covariance is M = (I - B)^-1 L, so the
    // two agree on one grid to rounding
    let scratch = Scratch::new("implied");
    let rows = simulate_with_item(&mut Sim::new(31), 50);
    scratch.write("d.dat", &free_format(&rows, "."));
    let r = load(
        &scratch,
        "r.inp",
        &format!(
            "{ITEM_HEAD}ANALYSIS: TYPE = TWOLEVEL;\n\
             MODEL: %WITHIN%\n  s | y ON x;\n  %BETWEEN%\n  y;\n  y ON w;\n  s ON w;\n  s ON y;\n  u2 ON s;\n"
        ),
    );
    let c = load(
        &scratch,
        "c.inp",
        &format!(
            "{ITEM_HEAD}ANALYSIS: TYPE = TWOLEVEL;\n\
             MODEL: %WITHIN%\n  s | y ON x;\n  %BETWEEN%\n  y;\n  y ON w;\n  s ON w;\n  u2 ON w;\n\
             \x20 y WITH s;\n  u2 WITH y;\n  u2 WITH s;\n"
        ),
    );
    const U2: usize = 3;
    let (rm, cm) = (&r.model, &c.model);
    let ids = |m: &Model| {
        (
            re(m, RandomKind::Intercept { var: Y }),
            re(
                m,
                RandomKind::Slope {
                    var: Y,
                    covariate: X,
                },
            ),
            re(m, RandomKind::Intercept { var: U2 }),
        )
    };
    let (u, s, v) = ids(rm);
    assert_eq!((u, s, v), ids(cm), "the same integration dimensions");
    let get = |m: &Model, phi: &[f64], kind: ParamKind| phi[index(m, kind, None)];
    // the regression parameters
    let (nu, mu_s, gam, g, theta) = (1.1, 0.3, 0.35, 0.15, 0.9);
    let (pu, ps, pv, b1, b2) = (0.45, 0.12, 0.3, 0.6, -0.8);
    let tau = [-0.4, 1.2];
    let mut phi_r = vec![0.0; rm.parameters.len()];
    for (i, p) in rm.parameters.iter().enumerate() {
        phi_r[i] = match p.kind {
            ParamKind::Mean { .. } => nu,
            ParamKind::Slope { covariate: X, .. } => mu_s,
            ParamKind::Slope { covariate: W, .. } => gam,
            ParamKind::RandomSlopeOn { .. } => g,
            ParamKind::Variance { .. } => theta,
            ParamKind::Threshold { index, .. } => tau[index - 1],
            ParamKind::RandomVariance { re } if re == u => pu,
            ParamKind::RandomVariance { re } if re == s => ps,
            ParamKind::RandomVariance { .. } => pv,
            ParamKind::RandomRegression { re, .. } if re == s => b1,
            ParamKind::RandomRegression { .. } => b2,
            k => panic!("unexpected {k:?}"),
        };
    }
    // the implied covariance model
    let es = mu_s + b1 * nu;
    let gs = g + b1 * gam;
    let vs = b1 * b1 * pu + ps;
    let mut phi_c = vec![0.0; cm.parameters.len()];
    for (i, p) in cm.parameters.iter().enumerate() {
        phi_c[i] = match p.kind {
            ParamKind::Mean { .. } => nu,
            ParamKind::Slope { covariate: X, .. } => es,
            ParamKind::Slope {
                var: Y,
                covariate: W,
            } => gam,
            ParamKind::Slope {
                var: U2,
                covariate: W,
            } => b2 * gs,
            ParamKind::RandomSlopeOn { .. } => gs,
            ParamKind::Variance { .. } => theta,
            ParamKind::Threshold { index, .. } => tau[index - 1] - b2 * es,
            ParamKind::RandomVariance { re } if re == u => pu,
            ParamKind::RandomVariance { re } if re == s => vs,
            ParamKind::RandomVariance { .. } => b2 * b2 * vs + pv,
            ParamKind::RandomCovariance { a, b } if (a, b) == (u.min(s), u.max(s)) => b1 * pu,
            ParamKind::RandomCovariance { a, b } if (a, b) == (u.min(v), u.max(v)) => b2 * b1 * pu,
            ParamKind::RandomCovariance { .. } => b2 * vs,
            k => panic!("unexpected {k:?}"),
        };
    }
    assert!((get(cm, &phi_c, ParamKind::Mean { var: Y }) - nu).abs() < 1e-15);
    for grid in [gh(5, 3), Grid::new(Method::Trapezoid, 7, 3)] {
        let ll_r = Evaluator::new(&r).ll(&phi_r, grid.clone(), 0);
        let ll_c = Evaluator::new(&c).ll(&phi_c, grid.clone(), 0);
        let ll_ra = Evaluator::new(&r).ll(&phi_r, grid.clone(), 2);
        let ll_ca = Evaluator::new(&c).ll(&phi_c, grid, 2);
        println!("regressions {ll_r:.10} covariances {ll_c:.10}; adapted {ll_ra:.10} {ll_ca:.10}");
        assert!((ll_r - ll_c).abs() < 1e-8, "{ll_r} vs {ll_c}");
        assert!((ll_ra - ll_ca).abs() < 1e-8, "{ll_ra} vs {ll_ca}");
    }
}

#[test]
fn regression_gradient_information_and_meat_are_exact() {
    // every kind of derived entry: the effective mean and w-effect of s
    // (s ON y, y ON w, s ON w), thresholds shifted by an effective mean
    // (u2 ON s), and a random class logit intercept regressed on a random
    // slope (c#1 ON s; y's mean held equal across classes so that the
    // logit, which does not vary across classes, can take it on); four
    // integration dimensions in one block
    let scratch = Scratch::new("gradient");
    let rows = simulate_with_item(&mut Sim::new(41), 30);
    scratch.write("d.dat", &free_format(&rows, "."));
    let loaded = load(
        &scratch,
        "g.inp",
        &format!(
            "{}  CLASSES = c(2);\nANALYSIS: TYPE = TWOLEVEL MIXTURE;\n\
             MODEL: %WITHIN%\n  %OVERALL%\n  s | y ON x;\n\
             \x20 %BETWEEN%\n  %OVERALL%\n  [y] (m);\n  y ON w;\n  s ON w;\n  s ON y;\n  u2 ON s;\n  c#1 ON s;\n",
            ITEM_HEAD
        ),
    );
    let model = &loaded.model;
    assert_eq!(model.random_effects().len(), 4);
    let ev = Evaluator::new(&loaded);
    assert_eq!(ev.plan.chol.len(), 1, "one block");
    assert_eq!(ev.plan.chol[0].beta.len(), 3);
    let n = model.parameters.len();
    // a point with every parameter non-zero
    let mut phi = vec![0.0; n];
    for (i, p) in model.parameters.iter().enumerate() {
        let k = p.class.unwrap_or(0) as f64;
        phi[i] = match p.kind {
            ParamKind::Threshold { index, .. } => [-0.6, 0.9][index - 1] + 0.2 * k,
            ParamKind::Mean { .. } => 1.2,
            ParamKind::Variance { .. } => 0.9 + 0.2 * k,
            ParamKind::RandomVariance { .. } => 0.3 + 0.05 * i as f64,
            ParamKind::ClassIntercept { .. } => 0.25,
            _ => 0.35 - 0.1 * k - 0.03 * i as f64,
        };
    }
    let be = ev.backend(gh(4, 4));
    let want = Want {
        gradient: true,
        information: true,
        meat: true,
        posteriors: true,
        moments: false,
    };
    let at = be.evaluate(&phi, want).unwrap();
    let nj = at.cluster_loglik.len();
    // central differences of the cluster log-likelihoods: the gradient and
    // the cluster scores whose outer products are the meat
    let mut scores = vec![0.0; nj * n];
    for i in 0..n {
        let h = 1e-5;
        let mut p2 = phi.clone();
        p2[i] = phi[i] + h;
        let up = be
            .evaluate(
                &p2,
                Want {
                    posteriors: true,
                    ..Want::LL
                },
            )
            .unwrap();
        p2[i] = phi[i] - h;
        let dn = be
            .evaluate(
                &p2,
                Want {
                    posteriors: true,
                    ..Want::LL
                },
            )
            .unwrap();
        let fd = (up.loglik - dn.loglik) / (2.0 * h);
        let an = at.gradient[i];
        println!(
            "{:<40} analytic {an:>14.8} numeric {fd:>14.8}",
            model.param_full_name(&model.parameters[i])
        );
        assert!(
            (an - fd).abs() < 2e-5 * (1.0 + fd.abs()),
            "{}: {an} vs {fd}",
            model.param_full_name(&model.parameters[i])
        );
        for j in 0..nj {
            scores[j * n + i] = (up.cluster_loglik[j] - dn.cluster_loglik[j]) / (2.0 * h);
        }
    }
    let scale = at.meat.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for a in 0..n {
        for b in 0..n {
            let fd: f64 = (0..nj).map(|j| scores[j * n + a] * scores[j * n + b]).sum();
            let an = at.meat[a * n + b];
            assert!(
                (an - fd).abs() < 1e-5 * scale,
                "meat [{a}][{b}]: {an} vs {fd}"
            );
        }
    }
    // the expected complete-data information through the chain rule is
    // symmetric, and positive on the regression parameters
    for a in 0..n {
        for b in 0..a {
            let (x, y) = (at.information[a * n + b], at.information[b * n + a]);
            assert!(
                (x - y).abs() < 1e-9 * (1.0 + x.abs()),
                "information [{a}][{b}]"
            );
        }
        if matches!(model.parameters[a].kind, ParamKind::RandomRegression { .. }) {
            assert!(at.information[a * n + a] > 0.0);
        }
    }
}

// ---------------------------------------------------------------------------
// 3. Mplus syntax

/// Three clusters of two rows: `clus y x w u`.
const SMALL_DAT: &str = "\
1 2.1 0.5 1.0 0
1 2.9 -0.2 1.0 1
2 1.4 1.1 0.0 1
2 3.3 0.3 0.0 0
3 2.2 -0.7 1.5 1
3 1.8 0.9 1.5 0
";

/// Loads `model` (MODEL statements) with `vars` (VARIABLE options after
/// NAMES) and `analysis` on [`SMALL_DAT`].
fn small(vars: &str, analysis: &str, model: &str) -> Result<Loaded, mlmix::spec::SpecError> {
    let scratch = Scratch::new("syntax");
    scratch.write("d.dat", SMALL_DAT);
    let p = scratch.write(
        "model.inp",
        &format!(
            "DATA: FILE = d.dat;\nVARIABLE: NAMES = clus y x w u;\n  CLUSTER = clus;\n  {vars}\n\
             ANALYSIS: {analysis}\nMODEL:\n{model}"
        ),
    );
    mlmix::spec::load(&p)
}

/// The between-level regressions of a model by name (`S ON Y`), sorted.
fn regressions(model: &Model) -> Vec<String> {
    let mut v: Vec<String> = model
        .parameters
        .iter()
        .filter(|p| {
            matches!(
                p.kind,
                ParamKind::RandomRegression { .. } | ParamKind::RandomSlopeOn { .. }
            )
        })
        .map(|p| model.param_name(&p.kind))
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn mplus_syntax_of_between_regressions() {
    let vars = "USEVARIABLES = y x w; WITHIN = x; BETWEEN = w;";
    let tl = "TYPE = TWOLEVEL;";
    // s ON y: the slope on y's random intercept (y names it on the between
    // level); s ON w: on a covariate; y ON s: the intercept on the slope
    for (stmts, want) in [
        ("s ON y;", vec!["S ON Y"]),
        ("s ON w;", vec!["S ON W"]),
        ("y ON s;", vec!["Y ON S"]),
        ("s ON y w;", vec!["S ON W", "S ON Y"]),
        ("y ON w; s ON w y;", vec!["S ON W", "S ON Y"]),
    ] {
        let l = small(
            vars,
            tl,
            &format!("%WITHIN%\n  s | y ON x;\n%BETWEEN%\n  {stmts}\n"),
        )
        .unwrap_or_else(|e| panic!("{stmts}: {e}"));
        assert_eq!(regressions(&l.model), want, "{stmts}");
        let ev = Evaluator::new(&l);
        assert!(ev.plan.dims == 2, "{stmts}");
    }
    // random class logit intercepts on either side; c#1 ON s makes c#1's
    // logit intercept random (its residual variance free)
    let mix = "TYPE = TWOLEVEL MIXTURE;";
    let cvars = "USEVARIABLES = y x; WITHIN = x; CLASSES = c(2);";
    let l = small(
        cvars,
        mix,
        "%WITHIN%\n%OVERALL%\n  s | y ON x;\n%BETWEEN%\n%OVERALL%\n  c#1 ON s;\n",
    )
    .unwrap();
    assert_eq!(regressions(&l.model), vec!["C#1 ON S"]);
    let a = re(&l.model, RandomKind::ClassIntercept { cv: 0, class: 0 });
    assert!(matches!(
        l.model.parameters[index(&l.model, ParamKind::RandomVariance { re: a }, None)].value,
        mlmix::spec::ParamValue::Free(_)
    ));
    assert!(l.model.class_vars[0].covariates.is_empty());
    // a fixed residual variance: the logit intercept is a function of s
    let l = small(
        "USEVARIABLES = y x u; CATEGORICAL = u; WITHIN = x u; CLASSES = c(2);",
        mix,
        "%WITHIN%\n%OVERALL%\n  s | y ON x;\n%BETWEEN%\n%OVERALL%\n  c#1@0;\n  s ON c#1;\n",
    )
    .unwrap();
    assert_eq!(regressions(&l.model), vec!["S ON C#1"]);
    Evaluator::new(&l);
    // between two random class logit intercepts (eq 15), not a
    // class-on-class effect of the rows' classes
    let l = small(
        "USEVARIABLES = y u; CATEGORICAL = u; WITHIN = y u; CLASSES = c1(2) c2(2);",
        mix,
        "%WITHIN%\n%OVERALL%\nMODEL c1: %WITHIN% %c1#1% [y];\nMODEL c2: %WITHIN% %c2#1% [u$1];\n\
         MODEL: %BETWEEN%\n%OVERALL%\n  c1#1;\n  c2#1;\n  c2#1 ON c1#1;\n",
    );
    let l = l.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(regressions(&l.model), vec!["C2#1 ON C1#1"]);
    assert!(l.model.class_vars[1].parents.is_empty());
    Evaluator::new(&l);
}

// ---------------------------------------------------------------------------
// 4. What is refused, at input time (`mlmix check`)

/// Loads [`small`], checks that it fails with located errors, snapshots
/// the rendered errors as `name` and returns the first error's line and
/// message.
fn refused(name: &str, vars: &str, analysis: &str, model: &str) -> (usize, String) {
    let err = match small(vars, analysis, model) {
        Ok(_) => panic!("{name}: the input was accepted"),
        Err(e) => e,
    };
    let e = &err.errors[0];
    let loc = e
        .location
        .as_ref()
        .unwrap_or_else(|| panic!("no location: {e}"));
    assert!(loc.file.ends_with("model.inp"), "{e}");
    let text = err.to_string();
    let redacted: String = text
        .lines()
        .map(|l| match l.find("model.inp") {
            Some(i) if l.starts_with("error") => {
                let start = l[..i].rfind(' ').map_or(0, |s| s + 1);
                format!("{}[scratch]/{}", &l[..start], &l[i..])
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!(name, redacted);
    (loc.line, e.message.clone())
}

const TL: &str = "TYPE = TWOLEVEL;";
const TLM: &str = "TYPE = TWOLEVEL MIXTURE;";
const VARS: &str = "USEVARIABLES = y x w; WITHIN = x; BETWEEN = w;";

#[test]
fn regressions_among_random_effects_that_loop() {
    let (line, msg) = refused(
        "twolevel_regress_cycle",
        VARS,
        TL,
        "%WITHIN%\n  s | y ON x;\n%BETWEEN%\n  s ON y;\n  y ON s;\n",
    );
    assert_eq!(line, 10);
    assert!(msg.contains("form a cycle (s ON y, y ON s)"), "{msg}");
}

#[test]
fn between_variable_on_a_random_effect() {
    let (line, msg) = refused(
        "twolevel_regress_between_dependent_on_random_effect",
        "USEVARIABLES = y x w; WITHIN = x; BETWEEN = w;",
        TL,
        "%WITHIN%\n  y ON x;\n%BETWEEN%\n  w ON y;\n",
    );
    assert_eq!(line, 10);
    assert!(
        msg.contains(
            "regressing the BETWEEN variable w on the random effect y is not supported yet"
        ),
        "{msg}"
    );
}

#[test]
fn regression_among_random_effects_in_a_within_class_block() {
    let (line, msg) = refused(
        "twolevel_regress_in_within_class_block",
        "USEVARIABLES = y x; WITHIN = x; CLASSES = c(2);",
        TLM,
        "%WITHIN%\n%OVERALL%\n  s | y ON x;\n%BETWEEN%\n%OVERALL%\n%c#1%\n  s ON y;\n",
    );
    assert_eq!(line, 13);
    assert!(
        msg.contains("regressions among random effects can vary only across the classes of a between-level class variable"),
        "{msg}"
    );
}

#[test]
fn class_logit_on_a_random_effect_with_class_specific_mean() {
    // c#1 ON y: y's mean varies across the classes of c, the logits of c
    // do not (their classes are what they model)
    let (line, msg) = refused(
        "twolevel_regress_class_logit_on_class_specific_mean",
        "USEVARIABLES = y x; WITHIN = x; CLASSES = c(2);",
        TLM,
        "%WITHIN%\n%OVERALL%\n  y ON x;\n%BETWEEN%\n%OVERALL%\n  c#1 ON y;\n",
    );
    assert_eq!(line, 12);
    assert!(
        msg.starts_with(
            "not supported yet: c#1 depends on y, whose mean varies across the classes of c"
        ),
        "{msg}"
    );
}

#[test]
fn variances_over_one_class_variable_and_parameters_over_another() {
    // was refused only by `mlmix fit` (PlanError::Unsupported)
    let (line, msg) = refused(
        "twolevel_regress_variances_and_parameters_over_two_class_variables",
        "USEVARIABLES = y x; WITHIN = x; BETWEEN = cb; CLASSES = cb(2) c(2);",
        TLM,
        "%WITHIN%\n%OVERALL%\n  y ON x;\n%BETWEEN%\n%OVERALL%\n  y;\n%c#1%\n  [y];\n%cb#1%\n  y;\n",
    );
    assert_eq!(line, 16);
    assert!(
        msg.contains("y has parameters varying over one class variable (c) and random-effect variances varying over another (cb)"),
        "{msg}"
    );
}

#[test]
fn random_logit_intercepts_with_class_specific_variances() {
    // was refused only by `mlmix fit` (PlanError::Unsupported)
    let (line, msg) = refused(
        "twolevel_regress_random_logit_intercepts_with_class_specific_variances",
        "USEVARIABLES = y x; WITHIN = x; BETWEEN = cb; CLASSES = cb(2) c(2);",
        TLM,
        "%WITHIN%\n%OVERALL%\n  y ON x;\n%BETWEEN%\n%OVERALL%\n  c#1;\n%cb#1%\n  [y];\n  y;\n",
    );
    assert_eq!(line, 15);
    assert!(
        msg.contains("random logit intercepts of c with class-specific random-effect variances"),
        "{msg}"
    );
}

#[test]
fn class_specific_regression_among_random_effects() {
    // eq 18: B varies across the classes of a between-level class variable;
    // with the residual variances shared, each class's implied covariance of
    // (u, s) is its own, as a class-specific covariance model states it
    let scratch = Scratch::new("class-specific-b");
    let rows = simulate(&mut Sim::new(51), &TRUTH, 40);
    scratch.write("d.dat", &free_format(&rows, "."));
    let head = "DATA: FILE = d.dat;\nVARIABLE: NAMES = clus y x w xw; CLUSTER = clus; CLASSES = cb(2);\n\
                \x20 USEVARIABLES = y x; WITHIN = x; BETWEEN = cb;\nANALYSIS: TYPE = TWOLEVEL MIXTURE;\n";
    let r = load(
        &scratch,
        "r.inp",
        &format!(
            "{head}MODEL: %WITHIN%\n  %OVERALL%\n  s | y ON x;\n\
             \x20 %BETWEEN%\n  %OVERALL%\n  y;\n  s;\n  s ON y;\n  %cb#1%\n  s ON y;\n"
        ),
    );
    let c = load(
        &scratch,
        "c.inp",
        &format!(
            "{head}MODEL: %WITHIN%\n  %OVERALL%\n  s | y ON x;\n\
             \x20 %BETWEEN%\n  %OVERALL%\n  y;\n  s;\n  s WITH y;\n  %cb#1%\n  y;\n  s;\n  s WITH y;\n  [s];\n"
        ),
    );
    let (rm, cm) = (&r.model, &c.model);
    let u = re(rm, RandomKind::Intercept { var: Y });
    let s = re(
        rm,
        RandomKind::Slope {
            var: Y,
            covariate: X,
        },
    );
    assert_eq!(u, re(cm, RandomKind::Intercept { var: Y }));
    let b = index(rm, ParamKind::RandomRegression { re: s, on: u }, Some(0));
    let b2 = index(rm, ParamKind::RandomRegression { re: s, on: u }, Some(1));
    assert_ne!(rm.parameters[b].value, rm.parameters[b2].value);
    let (nu, mu_s, theta, pu, ps, alpha) = ([1.2, -0.3], 0.4, 0.8, 0.6, 0.15, 0.3);
    let bk = [0.5, -0.7];
    let mut phi_r = vec![0.0; rm.parameters.len()];
    for (i, p) in rm.parameters.iter().enumerate() {
        let k = p.class.unwrap_or(0);
        phi_r[i] = match p.kind {
            ParamKind::Mean { .. } => nu[k],
            ParamKind::Slope { .. } => mu_s,
            ParamKind::Variance { .. } => theta,
            ParamKind::RandomVariance { re } if re == u => pu,
            ParamKind::RandomVariance { .. } => ps,
            ParamKind::RandomRegression { .. } => bk[k],
            ParamKind::ClassIntercept { .. } => alpha,
            k => panic!("unexpected {k:?}"),
        };
    }
    let mut phi_c = vec![0.0; cm.parameters.len()];
    for (i, p) in cm.parameters.iter().enumerate() {
        let k = p.class.unwrap_or(0);
        phi_c[i] = match p.kind {
            ParamKind::Mean { .. } => nu[k],
            ParamKind::Slope { .. } => mu_s + bk[k] * nu[k],
            ParamKind::Variance { .. } => theta,
            ParamKind::RandomVariance { re } if re == u => pu,
            ParamKind::RandomVariance { .. } => bk[k] * bk[k] * pu + ps,
            ParamKind::RandomCovariance { .. } => bk[k] * pu,
            ParamKind::ClassIntercept { .. } => alpha,
            k => panic!("unexpected {k:?}"),
        };
    }
    for rounds in [0, 2] {
        let ll_r = Evaluator::new(&r).ll(&phi_r, gh(6, 2), rounds);
        let ll_c = Evaluator::new(&c).ll(&phi_c, gh(6, 2), rounds);
        println!("class-specific B {ll_r:.10}, covariances {ll_c:.10}");
        assert!((ll_r - ll_c).abs() < 1e-8, "{ll_r} vs {ll_c}");
    }
}
