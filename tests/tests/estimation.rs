//! Estimation checks with closed forms: one-class models whose ML and MLR
//! standard errors are textbook formulas; a model that is not identified
//! names a parameter; a fit stopped early says it did not converge.

use mlmix_tests::{Scratch, Sim, estimate, fit_text, free_format};

/// One continuous and one binary variable, one class.
fn one_class_data() -> (Vec<Vec<f64>>, f64, f64, f64, f64) {
    let mut sim = Sim::new(21);
    let n = 400;
    let rows: Vec<Vec<f64>> = (0..n)
        .map(|_| {
            // a skewed continuous variable, so MLR and ML differ for the variance
            let z = sim.normal();
            let y = 1.0 + z + 0.5 * z * z;
            let u = f64::from(sim.uniform() < 0.3);
            vec![y, u]
        })
        .collect();
    let nf = n as f64;
    let mean = rows.iter().map(|r| r[0]).sum::<f64>() / nf;
    let var = rows.iter().map(|r| (r[0] - mean).powi(2)).sum::<f64>() / nf;
    let m4 = rows.iter().map(|r| (r[0] - mean).powi(4)).sum::<f64>() / nf;
    let p = rows.iter().map(|r| r[1]).sum::<f64>() / nf;
    (rows, mean, var, m4, p)
}

fn one_class_fit(estimator: &str) -> (mlmix::Fit, f64, f64, f64, f64, f64) {
    let (rows, mean, var, m4, p) = one_class_data();
    let s = Scratch::new("oneclass");
    s.write("d.dat", &free_format(&rows, "-99"));
    let text = format!(
        "DATA: FILE = d.dat;\nVARIABLE: NAMES = y u; CATEGORICAL = u; CLASSES = c(1);\n\
         ANALYSIS: TYPE = MIXTURE; ESTIMATOR = {estimator};\n"
    );
    let (_, fit) = fit_text(&s, "m.inp", &text).unwrap();
    (fit, rows.len() as f64, mean, var, m4, p)
}

#[test]
fn one_class_ml_standard_errors_are_the_textbook_ones() {
    let (fit, n, mean, var, _, p) = one_class_fit("ML");
    assert!(fit.converged);
    let m = estimate(&fit, "Means", "Y", Some("C#1"));
    let v = estimate(&fit, "Variances", "Y", Some("C#1"));
    let t = estimate(&fit, "Thresholds", "U$1", Some("C#1"));
    let close = |a: f64, b: f64, what: &str| {
        assert!((a - b).abs() < 1e-5 * (1.0 + b.abs()), "{what}: {a} vs {b}")
    };
    close(m.estimate, mean, "mean");
    close(v.estimate, var, "variance");
    close(
        t.estimate,
        ((1.0 - p) / p).ln(),
        "threshold = logit P(u = 0)",
    );
    close(m.se.unwrap(), (var / n).sqrt(), "se of the mean");
    close(v.se.unwrap(), var * (2.0 / n).sqrt(), "se of the variance");
    close(
        t.se.unwrap(),
        1.0 / (n * p * (1.0 - p)).sqrt(),
        "se of the threshold",
    );
    // log-likelihood in closed form
    let ll = -0.5 * n * ((2.0 * std::f64::consts::PI * var).ln() + 1.0)
        + n * (p * p.ln() + (1.0 - p) * (1.0 - p).ln());
    close(fit.loglikelihood, ll, "log-likelihood");
}

#[test]
fn one_class_mlr_standard_errors_are_the_sandwich_ones() {
    let (fit, n, _, var, m4, p) = one_class_fit("MLR");
    let m = estimate(&fit, "Means", "Y", Some("C#1"));
    let v = estimate(&fit, "Variances", "Y", Some("C#1"));
    let t = estimate(&fit, "Thresholds", "U$1", Some("C#1"));
    let close = |a: f64, b: f64, what: &str| {
        assert!((a - b).abs() < 1e-5 * (1.0 + b.abs()), "{what}: {a} vs {b}")
    };
    // robust = model-based for a normal mean and a Bernoulli threshold...
    close(m.se.unwrap(), (var / n).sqrt(), "se of the mean");
    close(
        t.se.unwrap(),
        1.0 / (n * p * (1.0 - p)).sqrt(),
        "se of the threshold",
    );
    // ...but not for the variance of a skewed variable: sqrt((m4 - var²)/n)
    close(
        v.se.unwrap(),
        ((m4 - var * var) / n).sqrt(),
        "robust se of the variance",
    );
    assert!(
        v.se.unwrap() > var * (2.0 / n).sqrt() * 1.2,
        "the skewness must show"
    );
}

#[test]
fn a_model_that_is_not_identified_names_a_parameter() {
    // three classes from two binary items: 3*2 + 2 = 8 parameters for 3 cells
    let mut sim = Sim::new(5);
    let rows: Vec<Vec<f64>> = (0..300)
        .map(|_| {
            vec![
                f64::from(sim.uniform() < 0.4),
                f64::from(sim.uniform() < 0.6),
            ]
        })
        .collect();
    let s = Scratch::new("noid");
    s.write("d.dat", &free_format(&rows, "-99"));
    let text = "DATA: FILE = d.dat;\nVARIABLE: NAMES = u1 u2; CATEGORICAL = u1 u2; CLASSES = c(3);\n\
                ANALYSIS: TYPE = MIXTURE; STARTS = 10 2;\n";
    let (_, fit) = fit_text(&s, "m.inp", text).unwrap();
    let w = fit.warnings.join("\n");
    assert!(
        w.contains("may not be identified") && w.contains("problem involving parameter"),
        "warnings: {w}"
    );
    assert!(fit.standard_errors.contains("could not be computed"));
    assert!(fit.parameters.iter().all(|p| p.se.is_none()));
}

#[test]
fn a_fit_stopped_early_says_it_did_not_converge() {
    let (rows, ..) = one_class_data();
    let s = Scratch::new("noconv");
    // two classes, and only two iterations of each kind allowed
    s.write("d.dat", &free_format(&rows, "-99"));
    let text = "DATA: FILE = d.dat;\nVARIABLE: NAMES = y u; CATEGORICAL = u; CLASSES = c(2);\n\
                ANALYSIS: TYPE = MIXTURE; STARTS = 0; MITERATIONS = 2; ITERATIONS = 2;\n";
    let (loaded, fit) = fit_text(&s, "m.inp", text).unwrap();
    assert!(!fit.converged);
    assert!(
        fit.warnings.iter().any(|w| w.contains("did not converge")),
        "{:?}",
        fit.warnings
    );
    let report = mlmix::report::text(&fit, &loaded.model);
    assert!(report.contains("DID NOT CONVERGE"));
}
