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
    // the limit that stopped it is the quasi-Newton one, and the warning
    // names it (not MITERATIONS, the EM limit, which hands over to it)
    assert!(
        fit.warnings
            .iter()
            .any(|w| w.contains("(ITERATIONS = 2): raise ITERATIONS")),
        "{:?}",
        fit.warnings
    );
    let report = mlmix::report::text(&fit, &loaded.model);
    assert!(report.contains("DID NOT CONVERGE"));
}

/// A 3-class LCA of 4 binary items: 14 parameters for 15 cell
/// probabilities, and still not identified (the cell probabilities have
/// rank 13 in the parameters; Goodman 1974).
fn three_classes_of_four_items() -> (mlmix_spec::Loaded, mlmix::Fit) {
    let mut sim = Sim::new(5);
    let p = [
        [0.8, 0.7, 0.75, 0.8],
        [0.2, 0.3, 0.25, 0.3],
        [0.7, 0.2, 0.6, 0.3],
    ];
    let rows: Vec<Vec<f64>> = (0..1000)
        .map(|_| {
            let c = sim.categorical(&[0.4, 0.35, 0.25]);
            p[c].iter().map(|&q| f64::from(sim.uniform() < q)).collect()
        })
        .collect();
    let s = Scratch::new("lca3of4");
    s.write("d.dat", &free_format(&rows, "-99"));
    let text = "DATA: FILE = d.dat;\nVARIABLE: NAMES = u1-u4; CATEGORICAL = u1-u4; CLASSES = c(3);\n\
                ANALYSIS: TYPE = MIXTURE; STARTS = 20 4;\n";
    fit_text(&s, "m.inp", text).unwrap()
}

#[test]
fn a_near_singular_fit_warns_and_names_the_parameters_involved() {
    let (loaded, fit) = three_classes_of_four_items();
    assert!(fit.converged);
    // nothing at a bound, so nothing fixed identifies the rest
    assert!(fit.parameters.iter().all(|p| !p.at_bound));
    // the standard errors are computed (the information is not singular
    // enough for the hard limit)...
    let condition = fit.condition_number.unwrap();
    assert!(condition > 1e-10, "{condition}"); // mlmix_optim::se::CONDITION_LIMIT
    assert!(fit.parameters.iter().all(|p| p.fixed || p.se.is_some()));
    // ...but said to be untrustworthy, naming parameters by number and name
    let w: Vec<&String> = fit
        .warnings
        .iter()
        .filter(|w| w.contains("may not be trustworthy"))
        .collect();
    assert_eq!(w.len(), 1, "{:?}", fit.warnings);
    assert!(
        w[0].contains("first-order derivative product matrix is near singular")
            && w[0].contains("problem involving parameters "),
        "{}",
        w[0]
    );
    let named: Vec<&mlmix::results::FreeEstimate> = fit
        .free
        .iter()
        .filter(|f| w[0].contains(&format!("{} ({})", f.number, f.name)))
        .collect();
    assert!(named.len() >= 2, "{}", w[0]);
    // in the report and the JSON document too
    let report = mlmix::report::text(&fit, &loaded.model);
    assert!(report.contains(&format!("WARNING: {}", w[0])), "{report}");
    let json: serde_json::Value = serde_json::from_str(&mlmix::json(&fit)).unwrap();
    let in_json = json["warnings"].as_array().unwrap();
    assert!(in_json.iter().any(|x| x.as_str() == Some(w[0].as_str())));
}

#[test]
fn a_well_identified_fit_does_not_warn_of_near_singularity() {
    let (_, fit) = mlmix_tests::fit_path(&mlmix_tests::input("carcinoma2.inp"));
    let condition = fit.condition_number.unwrap();
    assert!(condition > 1e-6, "{condition}"); // mlmix_optim::se::CONDITION_WARNING
    assert!(
        fit.warnings
            .iter()
            .all(|w| !w.contains("may not be trustworthy")),
        "{:?}",
        fit.warnings
    );
}

/// A large adapted rule's initial stage runs on a coarser one (7 points
/// per dimension, adapted: 13 in one; `COARSE_INITIAL_ABOVE` nodes, here
/// lowered to 0 on the mixture IRT example's 29): the final-stage starts begin again on
/// the model's own rule, so the solution is a maximum of the model's rule
/// (fitted again from its estimates without random starts, it stays put),
/// and the report says which rule ranked the starts. (The two initial
/// stages may rank the starts differently and so end at different local
/// maxima: here the coarse one's is the higher.)
#[test]
fn a_coarse_initial_stage_ends_at_a_maximum_of_the_models_rule() {
    let path = mlmix_tests::tests_dir().join("../examples/mixture_irt.inp");
    let loaded = mlmix::spec::load(&path).unwrap();
    let fit = |loaded: &mlmix::spec::Loaded, above: Option<usize>| {
        let o = mlmix::FitOptions {
            coarse_initial_above: above,
            ..Default::default()
        };
        mlmix::fit(loaded, &o, &mlmix::Silent).unwrap()
    };
    let (full, coarse) = (fit(&loaded, None), fit(&loaded, Some(0)));
    assert_eq!(full.starts.coarse_initial_nodes, None);
    assert_eq!(coarse.starts.coarse_initial_nodes, Some(13));
    assert!(full.converged && coarse.converged);
    // again from the coarse-staged fit's estimates, one start, full rule
    let mut again = loaded.clone();
    for (f, fp) in loaded.model.free.iter().enumerate() {
        for &m in &fp.members {
            again.model.parameters[m].start = Some(coarse.free[f].estimate);
        }
    }
    again.model.analysis.starts_initial = 0;
    let refit = fit(&again, Some(0));
    assert_eq!(refit.starts.coarse_initial_nodes, None);
    println!(
        "full-rule initial stage {}, coarse {}, refitted from the coarse one's estimates {}",
        full.loglikelihood, coarse.loglikelihood, refit.loglikelihood
    );
    let d = (refit.loglikelihood - coarse.loglikelihood).abs();
    assert!(
        d < 1e-6,
        "{} vs {}",
        coarse.loglikelihood,
        refit.loglikelihood
    );
    let report = mlmix::report::text(&coarse, &loaded.model);
    assert!(
        report.contains("Initial stage integration points (coarse)"),
        "{report}"
    );
}
