//! Factors (`f BY ...`): IRT on the VerbAgg items against OpenMx, mirt and
//! lavaan (../shared/reference/README.md), the mixture 2PL against python
//! mirt's `fit_mixture_irt`, and continuous indicators against the closed
//! form of the normal factor model.

use mlmix_tests::{
    Scratch, Sim, Truth, data, estimate, fit_path, fit_text, free_format, input, study,
};

/// A shipped example input.
fn example(name: &str) -> std::path::PathBuf {
    mlmix_tests::tests_dir().join("../examples").join(name)
}

/// The growth mixture example recovers its simulated truth (within 3
/// standard errors) and integrates nothing: its outcomes are continuous.
#[test]
fn growth_mixture_example() {
    let (_, fit) = fit_path(&example("gmm.inp"));
    assert!(fit.converged);
    assert_eq!(fit.free_parameters, 15);
    for (section, name, truth) in [("I ON", "X", 0.5), ("S ON", "X", 0.2)] {
        let p = estimate(&fit, section, name, Some("C#1"));
        let se = p.se.unwrap();
        assert!(
            (p.estimate - truth).abs() < 3.0 * se,
            "{section} {name}: {}",
            p.estimate
        );
    }
}

/// The two-level 2PL example (a within-level and a between-level factor,
/// Mplus ex10.5 without classes): one dimension of the cluster grid, one
/// within-level dimension per row, and its simulated loadings recovered
/// within 3 standard errors.
#[test]
fn twolevel_irt_example() {
    let (_, fit) = fit_path(&example("twolevel_irt.inp"));
    assert!(fit.converged);
    assert_eq!(fit.free_parameters, 18);
    let t = fit.two_level.as_ref().unwrap();
    assert_eq!(
        (t.dimensions, t.within_dimensions, t.within_points),
        (1, 1, 15)
    );
    let items = ["U2", "U3", "U4", "U5", "U6"];
    let (lw, lb) = ([0.8, 1.3, 0.9, 0.7, 1.1], [1.2, 0.8, 1.1, 0.9, 1.0]);
    for (k, item) in items.iter().enumerate() {
        for (section, truth) in [("FW BY", lw[k]), ("Between Level: FB BY", lb[k])] {
            let p = estimate(&fit, section, item, None);
            let se = p.se.unwrap();
            assert!(
                (p.estimate - truth).abs() < 3.0 * se,
                "{section} {item}: {} (se {se})",
                p.estimate
            );
        }
    }
}

/// The two-level factor example: one integration dimension (the factor;
/// the items' between-level residual variances are fixed at 0).
#[test]
fn twolevel_factor_example() {
    let (_, fit) = fit_path(&example("twolevel_factor.inp"));
    assert!(fit.converged);
    assert_eq!(fit.free_parameters, 8);
    assert_eq!(fit.two_level.as_ref().unwrap().dimensions, 1);
    let l = estimate(&fit, "Between Level: FB BY", "U3", None);
    assert!((l.estimate - 1.2).abs() < 3.0 * l.se.unwrap());
}

/// OpenMx 2.21.1 + rpf with 49 and 101 points (mirt with 61: -4016.4269).
const LL_2PL_LOGIT: f64 = -4016.4272;
/// lavaan's probit estimates re-evaluated with 101-point Gauss-Hermite: the
/// ML maximum is at least this.
const LL_2PL_PROBIT: f64 = -4016.4143;
/// python mirt 1.2.0 `fit_mixture_irt`, 41 points, one start.
const LL_MIXTURE_2PL: f64 = -3856.2658;

#[test]
fn verbagg_2pl_logit_matches_openmx_and_mirt() {
    let (_, fit) = fit_path(&example("irt_2pl.inp"));
    assert!(fit.converged);
    assert_eq!(fit.free_parameters, 48);
    // the bar is 0.01; the default adapted trapezoid reaches 1e-4
    // (on [-5, 5] it was 0.0033 low: the tails of extreme patterns)
    assert!(
        (fit.loglikelihood - LL_2PL_LOGIT).abs() < 1e-3,
        "logL {} vs {LL_2PL_LOGIT}",
        fit.loglikelihood
    );
    // the factor's variance and mean are fixed, every loading free
    let v = estimate(&fit, "Variances", "F", None);
    assert!(v.fixed && v.estimate == 1.0);
    let l = estimate(&fit, "F BY", "S1WANTCURSE", None);
    assert!(!l.fixed && l.estimate > 0.5 && l.se.is_some());
    // the JSON lists the reported parameters: 24 thresholds, 24 loadings,
    // the factor's mean and variance (not the indicators' internal
    // intercept variances)
    let v: serde_json::Value = serde_json::from_str(&mlmix::json(&fit)).unwrap();
    let rows = v["parameters"].as_array().unwrap();
    assert_eq!(rows.len(), 50);
    assert!(rows.iter().all(|r| r["section"] != ""));
}

#[test]
fn verbagg_2pl_probit_reaches_lavaan() {
    let text = std::fs::read_to_string(input("verbagg_2pl.inp"))
        .unwrap()
        .replace(
            "../data/verbagg_wide_r2.csv",
            &data("verbagg_wide_r2.csv").display().to_string(),
        )
        .replace("ESTIMATOR = ML;", "ESTIMATOR = ML; LINK = PROBIT;");
    let scratch = Scratch::new("probit_2pl");
    let (_, fit) = fit_text(&scratch, "model.inp", &text).unwrap();
    assert!(fit.converged);
    assert_eq!(fit.free_parameters, 48);
    assert!(
        fit.loglikelihood > LL_2PL_PROBIT,
        "logL {} below lavaan's {LL_2PL_PROBIT}",
        fit.loglikelihood
    );
}

#[test]
fn verbagg_mixture_2pl_reaches_mirt() {
    let (_, fit) = fit_path(&example("mixture_irt.inp"));
    assert!(fit.converged);
    assert_eq!(fit.free_parameters, 97);
    assert!(
        fit.loglikelihood > LL_MIXTURE_2PL,
        "logL {} below mirt's {LL_MIXTURE_2PL}",
        fit.loglikelihood
    );
}

/// The ML covariance matrix (divided by n) of `rows` and the saturated
/// normal log-likelihood -n/2 (p ln 2π + ln|S| + p).
fn saturated_loglik(rows: &[Vec<f64>]) -> f64 {
    let n = rows.len() as f64;
    let p = rows[0].len();
    let mean: Vec<f64> = (0..p)
        .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / n)
        .collect();
    assert_eq!(p, 3, "the closed form below is for 3 variables");
    let mut s = [[0.0; 3]; 3];
    for r in rows {
        for a in 0..p {
            for b in 0..p {
                s[a][b] += (r[a] - mean[a]) * (r[b] - mean[b]) / n;
            }
        }
    }
    let det = s[0][0] * (s[1][1] * s[2][2] - s[1][2] * s[2][1])
        - s[0][1] * (s[1][0] * s[2][2] - s[1][2] * s[2][0])
        + s[0][2] * (s[1][0] * s[2][1] - s[1][1] * s[2][0]);
    -n / 2.0 * (p as f64 * (2.0 * std::f64::consts::PI).ln() + det.ln() + p as f64)
}

/// One factor with three continuous indicators is just identified: its ML
/// log-likelihood is the saturated normal one, in closed form.
#[test]
fn one_factor_continuous_matches_closed_form() {
    let mut sim = Sim::new(91);
    let (lambda, nu, theta) = ([1.0, 0.8, 1.3], [0.5, -1.0, 2.0], [0.5, 0.7, 0.4]);
    let rows: Vec<Vec<f64>> = (0..400)
        .map(|_| {
            let f = sim.normal();
            (0..3)
                .map(|j| nu[j] + lambda[j] * f + theta[j] * sim.normal())
                .collect()
        })
        .collect();
    let scratch = Scratch::new("one_factor");
    scratch.write("data.dat", &free_format(&rows, "-99"));
    let text = "
DATA: FILE = data.dat;
VARIABLE: NAMES = y1-y3;
ANALYSIS: ESTIMATOR = ML; INTEGRATION = GAUSSHERMITE(15);
MODEL: f BY y1-y3;
";
    let (_, fit) = fit_text(&scratch, "model.inp", text).unwrap();
    assert!(fit.converged);
    // 3 intercepts, 2 loadings, 1 factor variance, 3 residual variances
    assert_eq!(fit.free_parameters, 9);
    let closed = saturated_loglik(&rows);
    assert!(
        (fit.loglikelihood - closed).abs() < 1e-6,
        "logL {} vs closed form {closed}",
        fit.loglikelihood
    );
    let l = estimate(&fit, "F BY", "Y1", None);
    assert!(
        l.fixed && l.estimate == 1.0,
        "the first loading is fixed at 1"
    );
}

/// A two-level model with a between-level factor measured by the random
/// intercepts of four binary items (their residual variances fixed at 0),
/// recovered over replications of 150 clusters of 10.
#[test]
fn between_level_factor_recovered() {
    let (lambda, tau, psi) = ([1.0, 0.8, 1.2, 0.9], [0.4, 0.0, -0.3, -0.6], 0.6);
    let mut truths: Vec<Truth> = vec![("Between-Level Variances", "FB", None, psi)];
    let names = ["U1", "U2", "U3", "U4"];
    for j in 1..4 {
        truths.push(("Between Level: FB BY", names[j], None, lambda[j]));
    }
    let thresholds = ["U1$1", "U2$1", "U3$1", "U4$1"];
    for j in 0..4 {
        truths.push(("Thresholds", thresholds[j], None, tau[j]));
    }
    let model = format!(
        "VARIABLE: NAMES = u1-u4 clus; CATEGORICAL = u1-u4; CLUSTER = clus;\n\
         ANALYSIS: TYPE = TWOLEVEL; ESTIMATOR = ML;\n\
         MODEL: %WITHIN%\n\
         %BETWEEN%\n\
         fb BY u1 u2*{} u3*{} u4*{};\n\
         fb*{psi}; u1-u4@0;\n\
         [u1$1*{} u2$1*{} u3$1*{} u4$1*{}];\n",
        lambda[1], lambda[2], lambda[3], tau[0], tau[1], tau[2], tau[3]
    );
    study("between-factor", 100, 31, &truths, |sim: &mut Sim| {
        let mut rows = Vec::new();
        for j in 0..150 {
            let fb = psi.sqrt() * sim.normal();
            for _ in 0..10 {
                let mut row: Vec<f64> = (0..4)
                    .map(|k| {
                        let eta = lambda[k] * fb - tau[k];
                        f64::from(sim.uniform() < 1.0 / (1.0 + (-eta).exp()))
                    })
                    .collect();
                row.push(j as f64);
                rows.push(row);
            }
        }
        (rows, model.clone())
    });
}

/// The paper's restricted grade of membership (eq 35): a between-level
/// factor measured by the random logit intercepts of a within-level class
/// variable (`fb BY c#1 c#2`), one integration dimension. Simulated with
/// loadings (1, 0.6) and factor variance 1; fitted from the truth, the
/// estimates are within 3 standard errors of it.
#[test]
fn factor_measured_by_random_class_logits() {
    let tau: [[f64; 6]; 3] = [
        [-2.2, -1.7, -1.4, -2.2, 1.4, 2.2],
        [2.2, 1.4, 1.7, -1.4, -1.7, -2.2],
        [1.7, 2.2, 1.4, 2.2, 1.7, 1.4],
    ];
    let mut sim = Sim::new(35);
    let mut rows = Vec::new();
    for j in 0..300 {
        let fb = sim.normal();
        let p = Sim::softmax(&[0.5 + fb, 0.6 * fb, 0.0]);
        for _ in 0..10 {
            let k = sim.categorical(&p);
            let mut row: Vec<f64> = (0..6)
                .map(|i| f64::from(sim.uniform() < 1.0 / (1.0 + tau[k][i].exp())))
                .collect();
            row.push(j as f64);
            rows.push(row);
        }
    }
    let scratch = Scratch::new("gom_factor");
    scratch.write("data.dat", &free_format(&rows, "-99"));
    let mut text = String::from(
        "DATA: FILE = data.dat;\n\
         VARIABLE: NAMES = u1-u6 clus; CATEGORICAL = u1-u6; CLUSTER = clus;\n\
         WITHIN = u1-u6; CLASSES = c(3);\n\
         ANALYSIS: TYPE = TWOLEVEL MIXTURE; ESTIMATOR = ML; STARTS = 0;\n\
         MODEL: %WITHIN%\n%OVERALL%\n",
    );
    for (k, t) in tau.iter().enumerate() {
        text.push_str(&format!("%c#{}%\n[", k + 1));
        for (i, v) in t.iter().enumerate() {
            text.push_str(&format!(" u{}$1*{v}", i + 1));
        }
        text.push_str(" ];\n");
    }
    text.push_str(
        "%BETWEEN%\n%OVERALL%\nfb BY c#1 c#2*0.6;\nfb*1;\n[c#1*0.5 c#2*0];\nc#1-c#2@0;\n",
    );
    let (_, fit) = fit_text(&scratch, "model.inp", &text).unwrap();
    assert!(fit.converged);
    assert_eq!(fit.two_level.as_ref().unwrap().dimensions, 1);
    for (section, name, truth) in [
        ("Between Level: FB BY", "C#2", 0.6),
        ("Between-Level Variances", "FB", 1.0),
    ] {
        let p = estimate(&fit, section, name, None);
        let se = p.se.unwrap();
        assert!(
            (p.estimate - truth).abs() < 3.0 * se,
            "{section} {name}: {} (se {se}) vs {truth}",
            p.estimate
        );
    }
}

/// `OUTPUT: NOSERROR` skips the standard errors (and their cost): the same
/// estimates, no standard error anywhere.
#[test]
fn noserror_skips_the_standard_errors() {
    let text = std::fs::read_to_string(input("verbagg_2pl.inp"))
        .unwrap()
        .replace(
            "../data/verbagg_wide_r2.csv",
            &data("verbagg_wide_r2.csv").display().to_string(),
        )
        + "OUTPUT: NOSERROR;\n";
    let scratch = Scratch::new("noserror");
    let (_, fit) = fit_text(&scratch, "model.inp", &text).unwrap();
    assert!(fit.converged && !fit.interrupted);
    assert!((fit.loglikelihood - LL_2PL_LOGIT).abs() < 0.01);
    assert!(fit.parameters.iter().all(|p| p.se.is_none()));
    assert!(
        fit.standard_errors.contains("NOSERROR"),
        "{}",
        fit.standard_errors
    );
}

/// Ordered items on one factor (the graded response model, logit):
/// P(u <= k | f) = F(tau_k - lambda f), three categories per item,
/// recovered over replications.
#[test]
fn graded_response_model_recovered() {
    let lambda = [1.0, 1.5, 0.8, 1.2];
    let tau = [[-1.0, 0.5], [-0.5, 1.0], [-1.5, 0.0], [0.0, 1.5]];
    let mut truths: Vec<Truth> = Vec::new();
    let (loadings, thresholds) = (
        ["U1", "U2", "U3", "U4"],
        [
            ["U1$1", "U1$2"],
            ["U2$1", "U2$2"],
            ["U3$1", "U3$2"],
            ["U4$1", "U4$2"],
        ],
    );
    let mut model = String::from(
        "VARIABLE: NAMES = u1-u4; CATEGORICAL = u1-u4;\n\
         ANALYSIS: ESTIMATOR = ML; STARTS = 0;\n\
         MODEL: f BY",
    );
    for j in 0..4 {
        truths.push(("F BY", loadings[j], None, lambda[j]));
        truths.push(("Thresholds", thresholds[j][0], None, tau[j][0]));
        truths.push(("Thresholds", thresholds[j][1], None, tau[j][1]));
        model.push_str(&format!(" u{}*{}", j + 1, lambda[j]));
    }
    model.push_str(";\nf@1;\n[");
    for j in 0..4 {
        model.push_str(&format!(
            " u{0}$1*{1} u{0}$2*{2}",
            j + 1,
            tau[j][0],
            tau[j][1]
        ));
    }
    model.push_str(" ];\n");
    study("grm", 50, 41, &truths, |sim: &mut Sim| {
        let rows = (0..800)
            .map(|_| {
                let f = sim.normal();
                (0..4)
                    .map(|j| sim.ordinal_logit(&tau[j], lambda[j] * f) as f64)
                    .collect()
            })
            .collect();
        (rows, model.clone())
    });
}

/// Half the random starts of a factor mixture (odd seeds) begin near the
/// nested latent class model: every free loading at NESTED_LCA; the other
/// half perturb around the default loadings of 1.
#[test]
fn factor_mixture_starts_include_the_nested_lca() {
    use mlmix::starts::{NESTED_LCA, StartBuilder, param_map};
    let loaded = mlmix::spec::load(&example("mixture_irt.inp")).unwrap();
    let data = mlmix::fit::engine_data(&loaded, true);
    let plan = mlmix_kernels::Plan::compile(&loaded.model, &data).unwrap();
    let map = param_map(&loaded.model, &loaded.data);
    let starts = StartBuilder::new(&loaded.model, &loaded.data, &plan, &map);
    let loadings: Vec<usize> = (0..loaded.model.free.len())
        .filter(|&f| {
            let p = &loaded.model.parameters[loaded.model.free[f].members[0]];
            matches!(p.kind, mlmix::spec::ParamKind::Loading { .. })
        })
        .collect();
    assert_eq!(loadings.len(), 48);
    let nested = starts.perturbed(7, 5.0);
    assert!(loadings.iter().all(|&f| nested[f] == NESTED_LCA));
    let plain = starts.perturbed(8, 5.0);
    assert!(loadings.iter().all(|&f| plain[f] == 1.0));
}

/// A factor regressed on another (`f2 ON f1`, integrated numerically: two
/// dimensions) is a reparameterisation of two covarying factors (`f1 WITH
/// f2`, continuous indicators in closed form): the same maximum, one
/// parameter for another.
#[test]
fn factor_on_factor_equals_covarying_factors() {
    let mut sim = Sim::new(77);
    let rows: Vec<Vec<f64>> = (0..400)
        .map(|_| {
            let f1 = sim.normal();
            let f2 = 0.6 * f1 + 0.8 * sim.normal();
            let mut r = Vec::with_capacity(6);
            for (f, l) in [
                (f1, 1.0),
                (f1, 0.8),
                (f1, 1.2),
                (f2, 1.0),
                (f2, 0.8),
                (f2, 1.2),
            ] {
                r.push(l * f + 0.6 * sim.normal());
            }
            r
        })
        .collect();
    let scratch = Scratch::new("factor_on_factor");
    scratch.write("data.dat", &free_format(&rows, "-99"));
    let head = "DATA: FILE = data.dat;\nVARIABLE: NAMES = y1-y6;\nANALYSIS: ESTIMATOR = ML;\n";
    let (_, with) = fit_text(
        &scratch,
        "with.inp",
        &format!("{head}MODEL: f1 BY y1-y3; f2 BY y4-y6;\n"),
    )
    .unwrap();
    let (_, on) = fit_text(
        &scratch,
        "on.inp",
        &format!("{head}MODEL: f1 BY y1-y3; f2 BY y4-y6; f2 ON f1;\n"),
    )
    .unwrap();
    assert!(with.converged && on.converged);
    assert_eq!(with.free_parameters, 19);
    assert_eq!(on.free_parameters, 19);
    assert_eq!(with.integration.as_ref().unwrap().dimensions, 0);
    assert_eq!(on.integration.as_ref().unwrap().dimensions, 2);
    assert!(
        (with.loglikelihood - on.loglikelihood).abs() < 1e-5,
        "closed form {} vs f2 ON f1 {}",
        with.loglikelihood,
        on.loglikelihood
    );
    // b = cov(f1, f2) / var(f1)
    let cov = estimate(&with, "F1 WITH", "F2", None).estimate;
    let var = estimate(&with, "Variances", "F1", None).estimate;
    let b = estimate(&on, "F2 ON", "F1", None).estimate;
    assert!((b - cov / var).abs() < 1e-3, "{b} vs {}", cov / var);
}

/// A second-order factor over three first-order factors (`h BY f1 f2 f3`,
/// integrated numerically: four dimensions) saturates their covariance
/// matrix: the same maximum as three covarying factors in closed form,
/// with as many parameters.
#[test]
fn second_order_factor_equals_three_covarying_factors() {
    let mut sim = Sim::new(78);
    let rows: Vec<Vec<f64>> = (0..200)
        .map(|_| {
            let h = sim.normal();
            let mut r = Vec::with_capacity(9);
            for g in [1.0, 0.8, 0.9] {
                let f = g * h + 0.7 * sim.normal();
                for l in [1.0, 0.8, 1.2] {
                    r.push(l * f + 0.6 * sim.normal());
                }
            }
            r
        })
        .collect();
    let scratch = Scratch::new("second_order");
    scratch.write("data.dat", &free_format(&rows, "-99"));
    let head = "DATA: FILE = data.dat;\nVARIABLE: NAMES = y1-y9;\n\
                ANALYSIS: ESTIMATOR = ML; INTEGRATION = GAUSSHERMITE(3);\n\
                MODEL: f1 BY y1-y3; f2 BY y4-y6; f3 BY y7-y9;\n";
    let (_, first) = fit_text(&scratch, "first.inp", head).unwrap();
    let (_, second) = fit_text(&scratch, "second.inp", &format!("{head}h BY f1 f2 f3;\n")).unwrap();
    assert!(first.converged && second.converged);
    assert_eq!(first.free_parameters, 30);
    assert_eq!(second.free_parameters, 30);
    assert_eq!(second.integration.as_ref().unwrap().dimensions, 4);
    assert!(
        (first.loglikelihood - second.loglikelihood).abs() < 1e-5,
        "three factors {} vs second order {}",
        first.loglikelihood,
        second.loglikelihood
    );
    let l = estimate(&second, "H BY", "F1", None);
    assert!(
        l.fixed && l.estimate == 1.0,
        "the first loading is fixed at 1"
    );
    // the same posteriors of f1-f3: closed form against the integrated
    // scores of the regressed factors (their means through h)
    assert_eq!(first.factor_scores.len(), rows.len());
    for (a, b) in first.factor_scores.iter().zip(&second.factor_scores) {
        for f in 0..3 {
            assert!(
                (a[f][0] - b[f][0]).abs() < 1e-5 && (a[f][1] - b[f][1]).abs() < 1e-5,
                "factor {f}: {:?} vs {:?}",
                a[f],
                b[f]
            );
        }
    }
}

/// `[f];` frees the factor mean (Mplus's rule; it is 0 by default): with
/// one threshold fixed at 0 instead, the 2PL is the same model in another
/// parameterisation (the same log-likelihood and number of parameters, and
/// the mean is the default fit's threshold of that item), and with every
/// threshold free it is not identified, which the fit reports at [F].
#[test]
fn a_mentioned_factor_mean_is_free() {
    let mut sim = Sim::new(303);
    let (a, d) = ([1.2, 0.8, 1.5, 1.0], [0.5, -0.3, 0.0, 0.8]);
    let rows: Vec<Vec<f64>> = (0..600)
        .map(|_| {
            let f = sim.normal();
            (0..4)
                .map(|k| f64::from(sim.uniform() < 1.0 / (1.0 + (-(a[k] * f + d[k])).exp())))
                .collect()
        })
        .collect();
    let scratch = Scratch::new("factor_mean");
    scratch.write("u.dat", &free_format(&rows, "."));
    let head = "DATA: FILE = u.dat;\nVARIABLE: NAMES = u1-u4; CATEGORICAL = u1-u4;\n\
                ANALYSIS: ESTIMATOR = ML;\nMODEL: f BY u1-u4*; f@1;\n";
    let (_, plain) = fit_text(&scratch, "plain.inp", head).unwrap();
    let (_, moved) = fit_text(&scratch, "moved.inp", &format!("{head}[f]; [u1$1@0];\n")).unwrap();
    assert!(plain.converged && moved.converged);
    assert_eq!(plain.free_parameters, moved.free_parameters);
    assert!(
        (plain.loglikelihood - moved.loglikelihood).abs() < 1e-6,
        "{} vs {}",
        plain.loglikelihood,
        moved.loglikelihood
    );
    // P(u1 = 1) = F(λ1 f − τ1) with f ~ N(0, 1) is F(λ1 f' ) with f' ~
    // N(κ, 1), λ1 κ = −τ1
    let tau1 = estimate(&plain, "Thresholds", "U1$1", None).estimate;
    let lam1 = estimate(&moved, "F BY", "U1", None).estimate;
    let kappa = estimate(&moved, "Means", "F", None).estimate;
    assert!(
        (lam1 * kappa + tau1).abs() < 1e-3,
        "λ1 κ = {} vs −τ1 = {}",
        lam1 * kappa,
        -tau1
    );
    let (_, free) = fit_text(&scratch, "free.inp", &format!("{head}[f];\n")).unwrap();
    assert_eq!(free.free_parameters, plain.free_parameters + 1);
    assert!(
        free.warnings.iter().any(|w| w.contains("[F]")),
        "{:?}",
        free.warnings
    );
}
