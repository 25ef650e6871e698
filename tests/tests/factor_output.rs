//! What a fit of a factor model outputs: the factor scores of SAVE =
//! FSCORES (checked against posterior moments computed here by brute-force
//! quadrature from the fitted estimates), the IRT parameterization of
//! binary items (against its formula and across two identifications of
//! the same 2PL), and the report's lines for factors.

use mlmix::results::{Fit, IrtItem};
use mlmix::spec::{Loaded, ParamKind, RandomKind};
use mlmix_tests::{Scratch, Sim, data, estimate, fit_text, free_format, input};

/// The VerbAgg 2PL input with its data file given by its full path, and
/// `extra` appended.
fn verbagg_2pl(extra: &str) -> String {
    std::fs::read_to_string(input("verbagg_2pl.inp"))
        .unwrap()
        .replace(
            "../data/verbagg_wide_r2.csv",
            &data("verbagg_wide_r2.csv").display().to_string(),
        )
        + extra
}

/// One class of a 2PL: its probability, the factor's mean and variance,
/// and each item's loading and threshold (P(u = 1 | f) = F(lambda f - tau)).
struct Class2pl {
    prob: f64,
    mean: f64,
    variance: f64,
    loading: Vec<f64>,
    threshold: Vec<f64>,
}

/// The classes of a fitted 2PL (logit) with one factor F, from the
/// report's estimates: `items` in USEVARIABLES order, `classes` the class
/// labels (`[None]` without classes).
fn classes_of(fit: &Fit, items: &[String], classes: &[Option<&str>]) -> Vec<Class2pl> {
    let logits: Vec<f64> = (0..classes.len())
        .map(|k| {
            if k + 1 == classes.len() {
                0.0
            } else {
                estimate(fit, "Means", &format!("C#{}", k + 1), None).estimate
            }
        })
        .collect();
    let norm: f64 = logits.iter().map(|l| l.exp()).sum();
    classes
        .iter()
        .zip(&logits)
        .map(|(&c, l)| {
            let mean = fit
                .parameters
                .iter()
                .find(|p| p.section == "Means" && p.name == "F" && p.class.as_deref() == c)
                .map_or(0.0, |p| p.estimate);
            Class2pl {
                prob: l.exp() / norm,
                mean,
                variance: estimate(fit, "Variances", "F", c).estimate,
                loading: items
                    .iter()
                    .map(|i| estimate(fit, "F BY", i, c).estimate)
                    .collect(),
                threshold: items
                    .iter()
                    .map(|i| estimate(fit, "Thresholds", &format!("{i}$1"), c).estimate)
                    .collect(),
            }
        })
        .collect()
}

/// The posterior mean and standard deviation of the factor given row `r`
/// (items NaN when missing), by the trapezoid rule on 2001 points of
/// theta in [-8, 8] in each class (f = mean + sd theta), mixed over the
/// classes with their posterior probabilities.
fn brute_force(classes: &[Class2pl], row: &[f64]) -> (f64, f64) {
    const N: usize = 2001;
    let logistic = |x: f64| 1.0 / (1.0 + (-x).exp());
    // per class: mass (prior times likelihood), sum of f and of f^2
    let mut mass = 0.0;
    let mut s1 = 0.0;
    let mut s2 = 0.0;
    for c in classes {
        let sd = c.variance.sqrt();
        for q in 0..N {
            let t = -8.0 + 16.0 * q as f64 / (N - 1) as f64;
            let w = if q == 0 || q == N - 1 { 0.5 } else { 1.0 } * (-0.5 * t * t).exp();
            let f = c.mean + sd * t;
            let mut lik = 1.0;
            for (j, &u) in row.iter().enumerate() {
                if u.is_nan() {
                    continue;
                }
                let p1 = logistic(c.loading[j] * f - c.threshold[j]);
                lik *= if u == 1.0 { p1 } else { 1.0 - p1 };
            }
            let m = c.prob * w * lik;
            mass += m;
            s1 += m * f;
            s2 += m * f * f;
        }
    }
    let mean = s1 / mass;
    (mean, (s2 / mass - mean * mean).sqrt())
}

/// The analysed row `r` of the items (category indices, NaN missing).
fn row(loaded: &Loaded, r: usize) -> Vec<f64> {
    loaded.data.columns.iter().map(|c| c[r]).collect()
}

fn item_names(loaded: &Loaded) -> Vec<String> {
    loaded
        .model
        .variables
        .iter()
        .map(|v| v.name.to_ascii_uppercase())
        .collect()
}

/// FSCORES of the VerbAgg 2PL, with a few responses made missing (rows
/// 0-4) and its identical rows merged by the engine: the saved F and F_SE
/// of every row are the brute-force posterior mean and SD of theta. On
/// GAUSSHERMITE(15) (adaptive) the engine's posterior moments are within
/// 2e-6 of them; the default trapezoid rule (15 points on ±5 posterior
/// standard deviations) misses up to 3e-4 (see the report test).
#[test]
fn fscores_of_the_2pl_are_the_posterior_mean_and_sd() {
    let scratch = Scratch::new("fscores_2pl");
    // the data with some answers missing (-99)
    let csv = std::fs::read_to_string(data("verbagg_wide_r2.csv")).unwrap();
    let mut text = String::new();
    for (i, l) in csv.lines().enumerate() {
        let mut f: Vec<String> = l.split(',').map(str::to_string).collect();
        if (1..=5).contains(&i) {
            for j in (i..f.len()).step_by(4) {
                f[j] = "-99".into();
            }
        }
        text.push_str(&f.join(","));
        text.push('\n');
    }
    scratch.write("verbagg.csv", &text);
    let input = verbagg_2pl("SAVEDATA: FILE = fscores.dat; SAVE = FSCORES;\n")
        .replace(
            &data("verbagg_wide_r2.csv").display().to_string(),
            "verbagg.csv",
        )
        .replace("IDVARIABLE = id;", "IDVARIABLE = id; MISSING = ALL(-99);")
        .replace(
            "ALGORITHM = INTEGRATION;",
            "INTEGRATION = GAUSSHERMITE(15);",
        );
    let (loaded, fit) = fit_text(&scratch, "model.inp", &input).unwrap();
    assert!(fit.converged);
    let s = loaded.model.savedata.as_ref().unwrap();
    assert!(s.fscores && !s.cprobabilities && s.writes_file());
    assert!(fit.distinct_rows < fit.observations, "rows are merged");
    // the SAVEDATA file, as the command writes it
    let path = scratch.path().join("fscores.dat");
    let file = std::fs::File::create(&path).unwrap();
    mlmix::savedata::write(&loaded.model, &loaded.data, &fit, file).unwrap();
    let cols = mlmix::savedata::columns(&loaded.model);
    let items = item_names(&loaded);
    assert_eq!(cols.len(), items.len() + 3);
    assert_eq!(&cols[items.len()..], ["ID", "F", "F_SE"]);
    let saved = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = saved.lines().collect();
    assert_eq!(lines.len(), loaded.data.n_rows());
    let classes = classes_of(&fit, &items, &[None]);
    let mut worst: f64 = 0.0;
    for (r, l) in lines.iter().enumerate() {
        let f: Vec<&str> = l.split(' ').collect();
        assert_eq!(f.len(), cols.len(), "{l}");
        if r < 5 {
            assert!(
                f[..items.len()].contains(&"*"),
                "row {r} has missing items: {l}"
            );
        }
        let (mean, sd): (f64, f64) = (
            f[f.len() - 2].parse().unwrap(),
            f[f.len() - 1].parse().unwrap(),
        );
        let (bm, bsd) = brute_force(&classes, &row(&loaded, r));
        worst = worst.max((mean - bm).abs()).max((sd - bsd).abs());
        assert!(
            (mean - bm).abs() < 1e-4 && (sd - bsd).abs() < 1e-4,
            "row {r}: saved F {mean} F_SE {sd}, brute force {bm} {bsd}"
        );
        // the unrounded scores too
        let [m, s] = fit.factor_scores[r][0];
        assert!((m - bm).abs() < 1e-4 && (s - bsd).abs() < 1e-4);
    }
    assert!(
        worst < 1e-5,
        "largest difference from brute force {worst:.2e}"
    );
}

/// FSCORES and CPROBABILITIES of a 2-class mixture 2PL on 8 items whose
/// classes differ in every part (factor mean and variance, loadings,
/// thresholds; all fixed but the class proportions, so the fit is quick):
/// the scores are mixed over the classes with their posterior
/// probabilities, and follow the variables, before the class columns. The
/// IRT rows of each class follow the formula.
#[test]
fn fscores_of_a_mixture_mix_the_classes() {
    let scratch = Scratch::new("fscores_mixture");
    let text = format!(
        "DATA: FILE = {};
VARIABLE: USEVARIABLES = S1WantCurse-S3WantScold;
  CATEGORICAL = S1WantCurse-S3WantScold;
  CLASSES = c(2);
ANALYSIS: TYPE = MIXTURE; ESTIMATOR = ML; STARTS = 0;
  INTEGRATION = GAUSSHERMITE(15);
MODEL: %OVERALL%
  f BY S1WantCurse@1 S1WantScold-S3WantScold@1.3;
  %c#1%
  [f@-0.8]; f@0.6;
  f BY S1WantCurse-S3WantScold@0.9;
  [S1WantCurse$1-S3WantScold$1@0.5];
  %c#2%
  [f@0.3]; f@1.4;
  [S1WantCurse$1-S3WantScold$1@-0.4];
SAVEDATA: FILE = s.dat; SAVE = CPROBABILITIES FSCORES;
",
        data("verbagg_wide_r2.csv").display()
    );
    let (loaded, fit) = fit_text(&scratch, "model.inp", &text).unwrap();
    assert!(fit.converged);
    let items = item_names(&loaded);
    let cols = mlmix::savedata::columns(&loaded.model);
    assert_eq!(&cols[items.len()..], ["F", "F_SE", "CPROB1", "CPROB2", "C"]);
    let labels = [Some("C#1"), Some("C#2")];
    let classes = classes_of(&fit, &items, &labels);
    let mut out = Vec::new();
    mlmix::savedata::write(&loaded.model, &loaded.data, &fit, &mut out).unwrap();
    let saved = String::from_utf8(out).unwrap();
    let n = items.len();
    let mut mixed = 0;
    for (r, l) in saved.lines().enumerate() {
        let f: Vec<f64> = l.split(' ').map(|x| x.parse().unwrap()).collect();
        let (bm, bsd) = brute_force(&classes, &row(&loaded, r));
        assert!(
            (f[n] - bm).abs() < 1e-5 && (f[n + 1] - bsd).abs() < 1e-5,
            "row {r}: saved F {} F_SE {}, brute force {bm} {bsd}",
            f[n],
            f[n + 1]
        );
        assert!((f[n + 2] + f[n + 3] - 1.0).abs() < 1e-5);
        if f[n + 2].min(f[n + 3]) > 0.1 {
            mixed += 1;
        }
    }
    assert!(
        mixed > 20,
        "only {mixed} rows are uncertain about their class"
    );
    // the IRT parameterization of each class
    for (k, c) in classes.iter().enumerate() {
        for (j, name) in items.iter().enumerate() {
            let i = irt(&fit, name, labels[k]);
            let sd = c.variance.sqrt();
            let a = c.loading[j] * sd;
            let b = (c.threshold[j] - c.loading[j] * c.mean) / a;
            assert!((i.discrimination.estimate - a).abs() < 1e-12);
            assert!((i.difficulty.estimate - b).abs() < 1e-12);
            // every parameter they depend on is fixed
            assert_eq!(i.discrimination.se, Some(0.0));
        }
    }
}

/// FSCORES of a one-factor model with three continuous indicators, which
/// the engine integrates in closed form: the normal posterior of f given
/// the observed indicators equals brute-force quadrature, rows with missing
/// indicators included.
#[test]
fn fscores_of_a_continuous_factor_are_its_normal_posterior() {
    let mut sim = Sim::new(17);
    let (lambda, nu, theta) = ([1.0, 0.8, 1.3], [0.5, -1.0, 2.0], [0.5, 0.7, 0.4]);
    let mut rows: Vec<Vec<f64>> = (0..300)
        .map(|_| {
            let f = 0.9 * sim.normal();
            (0..3)
                .map(|j| nu[j] + lambda[j] * f + theta[j] * sim.normal())
                .collect()
        })
        .collect();
    for (r, row) in rows.iter_mut().enumerate().take(12) {
        row[r % 3] = f64::NAN;
        if r == 0 {
            row[1] = f64::NAN;
        }
    }
    let scratch = Scratch::new("fscores_continuous");
    scratch.write("data.dat", &free_format(&rows, "-99"));
    let text = "DATA: FILE = data.dat;
VARIABLE: NAMES = y1-y3; MISSING = ALL(-99);
ANALYSIS: ESTIMATOR = ML;
MODEL: f BY y1-y3;
SAVEDATA: FILE = s.dat; SAVE = FSCORES;
";
    let (loaded, fit) = fit_text(&scratch, "model.inp", text).unwrap();
    assert!(fit.converged);
    let m = &loaded.model;
    // the estimates by kind (fit.parameters follow model.parameters)
    let est = |kind: ParamKind| {
        let i = m.parameters.iter().position(|p| p.kind == kind).unwrap();
        fit.parameters[i].estimate
    };
    let f = m
        .latent
        .random
        .iter()
        .position(|r| r.kind == RandomKind::Factor)
        .unwrap();
    let (alpha, psi) = (
        m.parameters
            .iter()
            .position(|p| p.kind == ParamKind::FactorMean { re: f })
            .map_or(0.0, |i| fit.parameters[i].estimate),
        est(ParamKind::RandomVariance { re: f }),
    );
    let l: Vec<f64> = (0..3)
        .map(|v| {
            est(ParamKind::Loading {
                re: m.intercept_of(v).unwrap(),
                factor: f,
            })
        })
        .collect();
    let n: Vec<f64> = (0..3).map(|v| est(ParamKind::Mean { var: v })).collect();
    let t: Vec<f64> = (0..3)
        .map(|v| est(ParamKind::Variance { var: v }))
        .collect();
    assert_eq!(fit.factor_scores.len(), rows.len());
    for (r, row) in loaded_rows(&loaded).iter().enumerate() {
        // brute force: 2001 points on ±8 prior standard deviations
        let (mut s0, mut s1, mut s2) = (0.0, 0.0, 0.0);
        for q in 0..2001 {
            let z = -8.0 + 16.0 * q as f64 / 2000.0;
            let fv = alpha + psi.sqrt() * z;
            let mut w = (-0.5 * z * z).exp();
            for j in 0..3 {
                if !row[j].is_nan() {
                    let e = row[j] - n[j] - l[j] * fv;
                    w *= (-0.5 * e * e / t[j]).exp() / t[j].sqrt();
                }
            }
            s0 += w;
            s1 += w * fv;
            s2 += w * fv * fv;
        }
        let (bm, bsd) = (s1 / s0, (s2 / s0 - (s1 / s0).powi(2)).sqrt());
        let [fm, fsd] = fit.factor_scores[r][0];
        assert!(
            (fm - bm).abs() < 1e-8 && (fsd - bsd).abs() < 1e-8,
            "row {r}: {fm} {fsd} vs brute force {bm} {bsd}"
        );
    }
}

/// FSCORES of a 2-class growth mixture (`i s | y1@0 y2@1 y3@2 y4@3`,
/// continuous outcomes, integrated in closed form): each growth factor's
/// score, with the factors correlated and the classes mixed by their
/// posterior probabilities, equals brute-force quadrature on a 2-D grid.
#[test]
fn fscores_of_a_growth_mixture_mix_the_closed_form_posteriors() {
    let mut sim = Sim::new(5);
    let (mi, ms) = ([2.0, 0.0], [-0.5, 1.0]);
    let rows: Vec<Vec<f64>> = (0..200)
        .map(|_| {
            let k = usize::from(sim.uniform() >= 0.4);
            let (z1, z2) = (sim.normal(), sim.normal());
            let i = mi[k] + 0.7 * z1;
            let s = ms[k] + 0.07 * z1 + 0.3 * z2;
            (0..4)
                .map(|t| i + s * t as f64 + 0.7 * sim.normal())
                .collect()
        })
        .collect();
    let scratch = Scratch::new("fscores_growth");
    scratch.write("data.dat", &free_format(&rows, "-99"));
    let text = "DATA: FILE = data.dat;
VARIABLE: NAMES = y1-y4; CLASSES = c(2);
ANALYSIS: TYPE = MIXTURE; STARTS = 0; ESTIMATOR = ML;
MODEL: %OVERALL%
  i s | y1@0 y2@1 y3@2 y4@3;
  %c#1% [i*2 s*-0.5];
  %c#2% [i*0 s*1];
SAVEDATA: FILE = s.dat; SAVE = FSCORES CPROBABILITIES;
";
    let (loaded, fit) = fit_text(&scratch, "model.inp", text).unwrap();
    let m = &loaded.model;
    let cols = mlmix::savedata::columns(m);
    assert_eq!(
        &cols[4..],
        ["I", "I_SE", "S", "S_SE", "CPROB1", "CPROB2", "C"]
    );
    let est = |kind: ParamKind, k: usize| {
        m.parameters
            .iter()
            .position(|p| p.kind == kind && p.class.is_none_or(|c| c == k))
            .map_or(0.0, |i| fit.parameters[i].estimate)
    };
    let fac: Vec<usize> = (0..m.latent.random.len())
        .filter(|&a| m.latent.random[a].kind == RandomKind::Factor)
        .collect();
    assert_eq!(fac.len(), 2);
    let logit = est(ParamKind::ClassIntercept { cv: 0, class: 0 }, 0);
    let prior = [logit.exp() / (1.0 + logit.exp()), 1.0 / (1.0 + logit.exp())];
    for (r, row) in loaded_rows(&loaded).iter().enumerate() {
        // Σ_k π_k ∫ (1, f, f²) N(y | f, k) N(f | k) df, f = α + L t
        let mut acc = [0.0f64; 5];
        for k in 0..2 {
            let alpha: Vec<f64> = fac
                .iter()
                .map(|&a| est(ParamKind::FactorMean { re: a }, k))
                .collect();
            let v0 = est(ParamKind::RandomVariance { re: fac[0] }, k);
            let v1 = est(ParamKind::RandomVariance { re: fac[1] }, k);
            let c01 = est(
                ParamKind::RandomCovariance {
                    a: fac[0].min(fac[1]),
                    b: fac[0].max(fac[1]),
                },
                k,
            );
            let (l11, l21) = (v0.sqrt(), c01 / v0.sqrt());
            let l22 = (v1 - l21 * l21).sqrt();
            let loading = |v: usize, a: usize| {
                est(
                    ParamKind::Loading {
                        re: m.intercept_of(v).unwrap(),
                        factor: a,
                    },
                    k,
                )
            };
            let theta: Vec<f64> = (0..4)
                .map(|v| est(ParamKind::Variance { var: v }, k))
                .collect();
            let nu: Vec<f64> = (0..4).map(|v| est(ParamKind::Mean { var: v }, k)).collect();
            let lam: Vec<[f64; 2]> = (0..4)
                .map(|v| [loading(v, fac[0]), loading(v, fac[1])])
                .collect();
            let n = 101;
            for q1 in 0..n {
                let t1 = -8.0 + 16.0 * q1 as f64 / (n - 1) as f64;
                for q2 in 0..n {
                    let t2 = -8.0 + 16.0 * q2 as f64 / (n - 1) as f64;
                    let f = [alpha[0] + l11 * t1, alpha[1] + l21 * t1 + l22 * t2];
                    let mut w = prior[k] * (-0.5 * (t1 * t1 + t2 * t2)).exp();
                    for (v, &y) in row.iter().enumerate() {
                        let mu = nu[v] + lam[v][0] * f[0] + lam[v][1] * f[1];
                        w *= (-0.5 * (y - mu).powi(2) / theta[v]).exp() / theta[v].sqrt();
                    }
                    for (a, x) in acc
                        .iter_mut()
                        .zip([1.0, f[0], f[1], f[0] * f[0], f[1] * f[1]])
                    {
                        *a += w * x;
                    }
                }
            }
        }
        for j in 0..2 {
            let mean = acc[1 + j] / acc[0];
            let sd = (acc[3 + j] / acc[0] - mean * mean).sqrt();
            let [fm, fsd] = fit.factor_scores[r][j];
            assert!(
                (fm - mean).abs() < 1e-6 && (fsd - sd).abs() < 1e-6,
                "row {r} factor {j}: {fm} {fsd} vs brute force {mean} {sd}"
            );
        }
    }
}

/// The analysed rows of the variables (NaN missing).
fn loaded_rows(loaded: &Loaded) -> Vec<Vec<f64>> {
    (0..loaded.data.n_rows()).map(|r| row(loaded, r)).collect()
}

fn irt<'a>(fit: &'a Fit, item: &str, class: Option<&str>) -> &'a IrtItem {
    fit.irt
        .iter()
        .find(|i| i.item == item && i.class.as_deref() == class)
        .unwrap_or_else(|| panic!("no IRT row for {item} in {class:?}"))
}

/// The IRT parameterization is a = lambda sqrt(psi), b = (tau - lambda
/// alpha) / (lambda sqrt(psi)); with the first loading fixed at 1 and the
/// variance free (Mplus's default identification) it gives the same
/// discriminations and difficulties as the 2PL with theta ~ N(0, 1), and
/// the discrimination of the item whose loading is fixed has the delta-
/// method standard error SE(psi) / (2 sqrt(psi)).
#[test]
fn irt_parameterization_follows_its_formula() {
    let scratch = Scratch::new("irt");
    let (loaded, unit) = fit_text(&scratch, "unit.inp", &verbagg_2pl("")).unwrap();
    let default = verbagg_2pl("").replace("S4DoShout*;\n  f@1;", "S4DoShout;");
    let (_, fit) = fit_text(&scratch, "default.inp", &default).unwrap();
    assert!(unit.converged && fit.converged);
    assert!((unit.loglikelihood - fit.loglikelihood).abs() < 1e-3);
    let items = item_names(&loaded);
    assert_eq!(fit.irt.len(), items.len());
    let psi = estimate(&fit, "Variances", "F", None);
    assert!(!psi.fixed && (psi.estimate - 1.0).abs() > 0.1);
    for name in &items {
        let i = irt(&fit, name, None);
        assert_eq!(i.factor, "F");
        let lambda = estimate(&fit, "F BY", name, None).estimate;
        let tau = estimate(&fit, "Thresholds", &format!("{name}$1"), None).estimate;
        let (a, b) = (
            lambda * psi.estimate.sqrt(),
            tau / (lambda * psi.estimate.sqrt()),
        );
        assert!((i.discrimination.estimate - a).abs() < 1e-12);
        assert!((i.difficulty.estimate - b).abs() < 1e-12);
        // theta ~ N(0, 1): the loadings are the discriminations
        let u = irt(&unit, name, None);
        let lu = estimate(&unit, "F BY", name, None).estimate;
        assert!((u.discrimination.estimate - lu).abs() < 1e-12);
        assert!(
            (u.discrimination.estimate - a).abs() < 2e-3 * a
                && (u.difficulty.estimate - b).abs() < 2e-3 * b.abs().max(1.0),
            "{name}: a {a} b {b} vs {} {}",
            u.discrimination.estimate,
            u.difficulty.estimate
        );
        assert!(i.discrimination.se.is_some() && i.difficulty.se.is_some());
    }
    let first = irt(&fit, &items[0], None);
    let expected = psi.se.unwrap() / (2.0 * psi.estimate.sqrt());
    assert!((first.discrimination.se.unwrap() - expected).abs() < 1e-12);
}

/// The report of a factor model: the continuous latent variables, the
/// integration lines, the IRT section and the saved columns; a model
/// without factors has none of them and warns that FSCORES is ignored.
#[test]
fn report_of_a_factor_model() {
    let scratch = Scratch::new("factor_report");
    let (loaded, fit) = fit_text(
        &scratch,
        "m.inp",
        &verbagg_2pl("SAVEDATA: FILE = s.dat; SAVE = FSCORES;\n"),
    )
    .unwrap();
    let r = mlmix::report::text(&fit, &loaded.model);
    let has = |line: &str| {
        r.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == line)
    };
    for l in [
        "Number of continuous latent variables 1",
        "Continuous latent variables",
        "Integration trapezoid, adaptive",
        "Dimensions of integration 1",
        // the default 15 points, adapted: 29 nodes (grid::adapted_points)
        "Integration points (total) 29",
        "IRT PARAMETERIZATION IN TWO-PARAMETER LOGISTIC METRIC",
        "WHERE THE LOGIT IS DISCRIMINATION*(THETA - DIFFICULTY)",
        "Item Discriminations",
        "Item Difficulties",
        "F BY",
        "F",
        "F_SE",
    ] {
        assert!(has(l), "no line '{l}' in\n{r}");
    }
    // the default grid (adapted trapezoid, 15 points on ±7 posterior
    // standard deviations) gives the brute-force scores to 1e-4 (between
    // 5e-5 and 1e-4 measured; on ±5 it missed the tails of extreme
    // patterns by up to 3e-4)
    let items = item_names(&loaded);
    let classes = classes_of(&fit, &items, &[None]);
    for (r, scores) in fit.factor_scores.iter().enumerate() {
        let (bm, bsd) = brute_force(&classes, &row(&loaded, r));
        let [m, sd] = scores[0];
        assert!((m - bm).abs() < 1e-4 && (sd - bsd).abs() < 1e-4, "row {r}");
    }
    let adapted = format!("Distinct rows with an adapted grid {}", fit.distinct_rows);
    assert!(has(&adapted), "no line '{adapted}'");
    let i = irt(&fit, "S1WANTCURSE", None);
    let row = format!(
        "S1WANTCURSE$1 {:.3} {:.3}",
        i.difficulty.estimate,
        i.difficulty.se.unwrap()
    );
    assert!(
        r.lines().any(|l| l
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .starts_with(&row)),
        "no line '{row}'"
    );
    // the JSON has the integration and the IRT rows, not the scores
    let json: serde_json::Value = serde_json::from_str(&mlmix::json(&fit)).unwrap();
    assert_eq!(json["integration"]["dimensions"], 1);
    assert_eq!(json["integration"]["points"], 29);
    assert_eq!(json["irt"].as_array().unwrap().len(), 24);
    assert!(json["irt"][0]["discrimination"]["estimate"].is_f64());
    assert!(json.get("factor_scores").is_none());

    // a latent class model: no factors, so FSCORES is ignored with a warning
    let lca = std::fs::read_to_string(input("lazarsfeld2.inp"))
        .unwrap()
        .replace(
            "../data/lazarsfeld.csv",
            &data("lazarsfeld.csv").display().to_string(),
        )
        + "SAVEDATA: FILE = s.dat; SAVE = CPROBABILITIES FSCORES;\n";
    let p = scratch.write("lca.inp", &lca);
    let loaded = mlmix::spec::load(&p).unwrap();
    let s = loaded.model.savedata.as_ref().unwrap();
    assert!(s.cprobabilities && !s.fscores);
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.to_string().contains("SAVE = FSCORES is ignored")),
        "{:?}",
        loaded.warnings
    );
    assert!(!mlmix::savedata::columns(&loaded.model).contains(&"F".to_string()));
}
