//! Estimates that run off to infinity: a perfectly separated logistic
//! regression reports "converged" at a huge slope, so the fit names it in a
//! warning (report and JSON); fits whose maximum is finite do not warn.

use mlmix_tests::{Scratch, Sim, estimate, fit_path, fit_text, free_format, input};

/// The warning's mark (see `mlmix::diverging::diverging_warning`).
const MARK: &str = "implausibly large";

/// 200 rows of a binary `u` and a covariate `x` symmetric about 0, the
/// nearest two at ±1e-4 (times `unit`): with `separated`, u = 1 exactly
/// when x > 0 (the log-likelihood rises towards 0 as the slope grows, and
/// the threshold stays at 0), else u follows a logistic regression with
/// slope 2 / `unit`.
fn logit_rows(separated: bool, unit: f64) -> Vec<Vec<f64>> {
    let mut sim = Sim::new(11);
    (0..100)
        .flat_map(|i| {
            let a = 1e-4 + f64::from(i) / 100.0;
            [a, -a]
        })
        .map(|x| {
            let u = if separated {
                x > 0.0
            } else {
                2.0 * x + sim.logistic() > 0.0
            };
            vec![f64::from(u), x * unit]
        })
        .collect()
}

fn logit_fit(separated: bool, unit: f64) -> (mlmix_spec::Loaded, mlmix::Fit) {
    let s = Scratch::new("diverging");
    s.write("d.dat", &free_format(&logit_rows(separated, unit), "-99"));
    let text = "DATA: FILE = d.dat;\nVARIABLE: NAMES = u x; CATEGORICAL = u; CLASSES = c(1);\n\
                ANALYSIS: TYPE = MIXTURE;\nMODEL: %OVERALL%\n u ON x;\n";
    fit_text(&s, "m.inp", text).unwrap()
}

#[test]
fn a_separated_logistic_regression_warns_of_a_maximum_at_infinity() {
    let (loaded, fit) = logit_fit(true, 1.0);
    let slope = estimate(&fit, "U ON", "X", Some("C#1"));
    // the slope ran off: the optimiser stopped where the log-likelihood
    // had flattened out, about 15 / 1e-4
    assert!(slope.estimate > 1e4, "{}", slope.estimate);
    let w: Vec<&String> = fit.warnings.iter().filter(|w| w.contains(MARK)).collect();
    assert_eq!(w.len(), 1, "{:?}", fit.warnings);
    let number = slope.number.unwrap();
    let name = &fit.free[number - 1].name;
    assert!(
        w[0].contains(&format!(
            "parameter {number} ({name}) = {:.3e}",
            slope.estimate
        )) && w[0].contains("maximum at infinity")
            && w[0].contains("random starts")
            && w[0].contains("fix or constrain the parameter"),
        "{}",
        w[0]
    );
    // the threshold is not named (it is bounded by the optimiser)
    let tau = estimate(&fit, "Thresholds", "U$1", Some("C#1"));
    assert!(
        !w[0].contains(&format!(" {} (", tau.number.unwrap())),
        "{}",
        w[0]
    );
    // in the report and the JSON document too
    let report = mlmix::report::text(&fit, &loaded.model);
    assert!(report.contains(&format!("WARNING: {}", w[0])), "{report}");
    let json: serde_json::Value = serde_json::from_str(&mlmix::json(&fit)).unwrap();
    let in_json = json["warnings"].as_array().unwrap();
    assert!(in_json.iter().any(|x| x.as_str() == Some(w[0].as_str())));
}

#[test]
fn finite_maxima_do_not_warn_of_a_maximum_at_infinity() {
    // the same design without separation, in two units of x: a slope of
    // 2e6 per unit of x is 1.2 per standard deviation
    for unit in [1.0, 1e-6] {
        let (_, fit) = logit_fit(false, unit);
        assert!(fit.converged);
        let slope = estimate(&fit, "U ON", "X", Some("C#1")).estimate * unit;
        assert!((0.5..5.0).contains(&slope), "{slope}");
        assert!(
            fit.warnings.iter().all(|w| !w.contains(MARK)),
            "{:?}",
            fit.warnings
        );
    }
    // a mixture regression with class-specific slopes in the data's units
    let (_, fit) = fit_path(&input("npreg_mixreg.inp"));
    assert!(fit.converged);
    assert!(
        fit.warnings.iter().all(|w| !w.contains(MARK)),
        "{:?}",
        fit.warnings
    );
}

/// The mean of a random slope on a 0/1 covariate is an item logit, held in
/// [LOGLOW, LOGHIGH] like a threshold: where u = 1 on every row with
/// x = 1, it stops at 15 (not at infinity), and the warning names it as
/// the report lists it (`[S]`, under Between Level Means), not as the
/// slope `U ON X` whose mean it is: the free parameter's name is that, so
/// every message (and TECH1) agrees.
#[test]
fn a_random_slopes_mean_on_a_dummy_stops_at_the_bound_under_its_own_name() {
    let mut sim = Sim::new(23);
    let rows: Vec<Vec<f64>> = (0..60)
        .flat_map(|g| {
            let b = sim.normal();
            (0..6)
                .map(|r| {
                    let x = f64::from(r % 2);
                    let u = x == 1.0 || b + sim.logistic() > 0.0;
                    vec![f64::from(g + 1), x, f64::from(u)]
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let s = Scratch::new("diverging-slope-mean");
    s.write("d.dat", &free_format(&rows, "-99"));
    let text = "DATA: FILE = d.dat;\n\
                VARIABLE: NAMES = g x u; CATEGORICAL = u; CLUSTER = g; WITHIN = x;\n\
                ANALYSIS: TYPE = TWOLEVEL RANDOM;\n\
                MODEL: %WITHIN%\n s | u ON x;\n %BETWEEN%\n u; s@0;\n";
    let (_, fit) = fit_text(&s, "m.inp", text).unwrap();
    assert!(fit.converged, "{:?}", fit.warnings);
    let mean = estimate(&fit, "Between Level: Means", "S", None);
    assert!(mean.at_bound && mean.estimate == 15.0, "{mean:?}");
    let number = mean.number.unwrap();
    // the free parameter's own name, which every message uses
    assert_eq!(fit.free[number - 1].name, "[S]");
    let w: Vec<&String> = fit
        .warnings
        .iter()
        .filter(|w| w.contains("fixed at their bound"))
        .collect();
    assert_eq!(w.len(), 1, "{:?}", fit.warnings);
    assert!(w[0].ends_with(&format!(": {number} ([S])")), "{}", w[0]);
    assert!(
        fit.warnings.iter().all(|w| !w.contains(MARK)),
        "{:?}",
        fit.warnings
    );
}
