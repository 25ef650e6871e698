//! What statements mean: the parameters a MODEL statement sets, Mplus's
//! class-slope rule, label lists, option handling, and SVALUES read back.

use mlmix::spec::{Model, ParamKind, ParamValue};
use mlmix_tests::{Scratch, data, fit_text};

const LPA_HEAD: &str =
    "VARIABLE: NAMES = y1-y3 x; CLASSES = c(3);\nANALYSIS: TYPE = MIXTURE; STARTS = 0;\n";

fn lpa_scratch() -> Scratch {
    let s = Scratch::new("sem");
    let mut sim = mlmix_tests::Sim::new(8);
    let rows: Vec<Vec<f64>> = (0..300)
        .map(|i| {
            let k = (i % 3) as f64;
            vec![
                k + sim.normal(),
                2.0 * k + sim.normal(),
                -k + sim.normal(),
                sim.normal(),
            ]
        })
        .collect();
    s.write("d.dat", &mlmix_tests::free_format(&rows, "-99"));
    s
}

fn load(s: &Scratch, body: &str) -> mlmix::spec::Loaded {
    let p = s.write("m.inp", &format!("DATA: FILE = d.dat;\n{LPA_HEAD}{body}"));
    mlmix::spec::load(&p).unwrap_or_else(|e| panic!("{e}"))
}

fn param(m: &Model, kind: ParamKind, class: Option<usize>) -> &mlmix::spec::Parameter {
    m.parameters
        .iter()
        .find(|p| p.kind == kind && p.class == class)
        .unwrap()
}

#[test]
fn brackets_and_bare_names_in_one_statement_keep_their_meaning() {
    let s = lpa_scratch();
    let l = load(
        &s,
        "MODEL: %c#1%\n[y3*5] y3*9;\ny1*2 [y2*7];\n[y1 (m1) y2] (m2);\n",
    );
    let m = &l.model;
    assert_eq!(
        param(m, ParamKind::Mean { var: 2 }, Some(0)).start,
        Some(5.0)
    );
    assert_eq!(
        param(m, ParamKind::Variance { var: 2 }, Some(0)).start,
        Some(9.0)
    );
    assert_eq!(
        param(m, ParamKind::Variance { var: 0 }, Some(0)).start,
        Some(2.0)
    );
    assert_eq!(
        param(m, ParamKind::Mean { var: 1 }, Some(0)).start,
        Some(7.0)
    );
    assert_eq!(
        param(m, ParamKind::Mean { var: 0 }, Some(0))
            .label
            .as_deref(),
        Some("M1")
    );
    assert_eq!(
        param(m, ParamKind::Mean { var: 1 }, Some(0))
            .label
            .as_deref(),
        Some("M2")
    );
}

#[test]
fn a_class_slope_named_alone_is_the_only_one_free() {
    let s = lpa_scratch();
    let l = load(&s, "MODEL: %OVERALL%\nc#1 ON x;\n");
    let m = &l.model;
    let slope = |k| {
        param(
            m,
            ParamKind::ClassSlope {
                cv: 0,
                class: k,
                covariate: 3,
            },
            None,
        )
        .value
    };
    assert!(matches!(slope(0), ParamValue::Free(_)));
    assert_eq!(slope(1), ParamValue::Fixed(0.0));
    let all = load(&s, "MODEL: %OVERALL%\nc ON x (g1-g2);\n");
    let m = &all.model;
    let p0 = param(
        m,
        ParamKind::ClassSlope {
            cv: 0,
            class: 0,
            covariate: 3,
        },
        None,
    );
    let p1 = param(
        m,
        ParamKind::ClassSlope {
            cv: 0,
            class: 1,
            covariate: 3,
        },
        None,
    );
    assert_eq!(
        (p0.label.as_deref(), p1.label.as_deref()),
        (Some("G1"), Some("G2"))
    );
    assert!(matches!(p1.value, ParamValue::Free(_)));
}

#[test]
fn label_lists_keep_zero_padding() {
    let s = lpa_scratch();
    let l = load(&s, "MODEL: %c#1%\n[y1-y3] (p01-p03);\n");
    let labels: Vec<_> = (0..3)
        .map(|v| {
            param(&l.model, ParamKind::Mean { var: v }, Some(0))
                .label
                .clone()
                .unwrap()
        })
        .collect();
    assert_eq!(labels, ["P01", "P02", "P03"]);
}

#[test]
fn mplus_tuning_options_are_accepted_with_a_warning() {
    let s = lpa_scratch();
    let p = s.write(
        "m.inp",
        "DATA: FILE = d.dat;\nVARIABLE: NAMES = y1-y3 x; USEVARIABLES = y1-y3; CLASSES = c(2);\n\
         ANALYSIS: TYPE = MIXTURE; STARTS = 0 0; ALGORITHM = EMA; K-1STARTS = 20 4;\n\
         MIXU = ITERATIONS; LOGHIGH = 10; LOGLOW = -12;\n",
    );
    let l = mlmix::spec::load(&p).unwrap_or_else(|e| panic!("{e}"));
    let w: Vec<String> = l.warnings.iter().map(|w| w.message.clone()).collect();
    assert!(
        w.iter().any(|m| m.contains("ALGORITHM = EMA is ignored")),
        "{w:?}"
    );
    assert!(w.iter().any(|m| m.contains("K-1STARTS")), "{w:?}");
    assert!(w.iter().any(|m| m.contains("MIXU is ignored")), "{w:?}");
    assert_eq!(l.model.analysis.starts_initial, 0);
    assert_eq!(
        (l.model.analysis.logit_low, l.model.analysis.logit_high),
        (-12.0, 10.0)
    );
}

#[test]
fn loghigh_and_loglow_bound_the_thresholds() {
    // carcinoma, 2 classes: several thresholds run to the bound
    let s = Scratch::new("loghigh");
    let text = format!(
        "DATA: FILE = \"{}\";\nVARIABLE: USEVARIABLES = A-G; CATEGORICAL = A-G; CLASSES = k(2);\n\
         ANALYSIS: TYPE = MIXTURE; STARTS = 20 4; LOGHIGH = 8; LOGLOW = -8;\n",
        data("carcinoma.csv").display()
    );
    let (_, fit) = fit_text(&s, "m.inp", &text).unwrap();
    let bounded: Vec<f64> = fit
        .parameters
        .iter()
        .filter(|p| p.at_bound)
        .map(|p| p.estimate)
        .collect();
    assert!(!bounded.is_empty());
    assert!(bounded.iter().all(|x| x.abs() == 8.0), "{bounded:?}");
    assert!(fit.parameters.iter().all(|p| p.estimate.abs() <= 8.0));
}

#[test]
fn an_ambiguous_missing_range_is_an_error() {
    let s = lpa_scratch();
    let p = s.write(
        "m.inp",
        "DATA: FILE = d.dat;\nVARIABLE: NAMES = y1-y3 x; MISSING = ALL(-99-98); CLASSES = c(2);\n\
         ANALYSIS: TYPE = MIXTURE;\n",
    );
    let e = mlmix::spec::load(&p).unwrap_err();
    assert!(e.errors[0].message.contains("not a range"), "{e}");
}

#[test]
fn svalues_read_back_give_the_same_model_and_optimum() {
    let s = lpa_scratch();
    // y1's variance free in class 1, shared by classes 2 and 3
    let (loaded, fit) = fit_text(
        &s,
        "a.inp",
        &format!("DATA: FILE = d.dat;\n{LPA_HEAD}MODEL: %c#1% y1;\nOUTPUT: SVALUES;\n"),
    )
    .unwrap();
    let sv = mlmix::report::svalues(&fit, &loaded.model);
    let (_, refit) = fit_text(
        &s,
        "b.inp",
        &format!("DATA: FILE = d.dat;\n{LPA_HEAD}MODEL:\n{sv}"),
    )
    .unwrap();
    assert_eq!(refit.free_parameters, fit.free_parameters);
    assert!((refit.loglikelihood - fit.loglikelihood).abs() < 1e-6);
}
