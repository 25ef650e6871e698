//! Nominal (unordered categorical) dependent variables, `NOMINAL = u;`: a
//! multinomial logit of the category with the last category as reference,
//! intercepts `[u#1]`, slopes `u ON x` (one per non-reference category) or
//! `u#1 ON x`. Checked against scikit-learn's multinomial logistic
//! regression, against the latent class model with the same items
//! CATEGORICAL (both saturate each class's category probabilities), and,
//! for the polytomous grade of membership model (docs/gom.md §7), against
//! an independent one-dimensional integral. Bad inputs are in the last
//! section.

use mlmix_tests::{Scratch, Sim, data, estimate, fit_text, free_format};

use crate::bad_input::{assert_first, fails};

// ------------------------------------------------------- one-class peer

/// scikit-learn 1.9.1's unpenalised multinomial `LogisticRegression`
/// (lbfgs, tol 1e-12) on `tests/data/nominal_reg.dat` (2,000 rows `u x1
/// x2`, u in 1..4), made reference-coded against category 4; the script
/// that simulated the data and fitted it is `tests/data/nominal_peer.py`.
const PEER_LOGL: f64 = -2494.1221329525;
/// Per category 1..3: intercept, slope on x1, slope on x2.
const PEER: [[f64; 3]; 3] = [
    [0.54115237, 0.92018236, -0.89336765],
    [-0.46449056, -0.58545930, 0.54754667],
    [0.24210962, 0.34806453, -0.08816679],
];

/// A one-class nominal regression on two covariates reproduces the
/// peer's log-likelihood (1e-4) and its coefficients (1e-3).
#[test]
fn one_class_nominal_regression_matches_scikit_learn() {
    let scratch = Scratch::new("nominal-reg");
    let dat = std::fs::read_to_string(data("nominal_reg.dat")).unwrap();
    scratch.write("reg.dat", &dat);
    let input = "DATA: FILE = reg.dat;\n\
                 VARIABLE: NAMES = u x1 x2; NOMINAL = u; CLASSES = c(1);\n\
                 ANALYSIS: TYPE = MIXTURE; STARTS = 0;\n\
                 MODEL: %OVERALL%\nu ON x1 x2;\n";
    let (loaded, fit) = fit_text(&scratch, "reg.inp", input).unwrap();
    assert!(fit.converged);
    assert_eq!(fit.free_parameters, 9);
    // the report lists u as nominal, not with the ordered categorical ones
    let report = mlmix::report::text(&fit, &loaded.model);
    assert!(
        report.contains("Observed dependent variables (unordered categorical, nominal)\n   U\n")
            && !report.contains("(binary and ordered categorical)"),
        "{report}"
    );
    let d = (fit.loglikelihood - PEER_LOGL).abs();
    println!("engine {} vs scikit-learn {PEER_LOGL}", fit.loglikelihood);
    assert!(d < 1e-4, "logL differs by {d:e}");
    let class = Some("C#1");
    for (k, peer) in PEER.iter().enumerate() {
        let cat = format!("U#{}", k + 1);
        let got = [
            estimate(&fit, "Intercepts", &cat, class).estimate,
            estimate(&fit, &format!("{cat} ON"), "X1", class).estimate,
            estimate(&fit, &format!("{cat} ON"), "X2", class).estimate,
        ];
        for (g, p) in got.iter().zip(peer) {
            assert!((g - p).abs() < 1e-3, "{cat}: {got:?} vs {peer:?}");
        }
    }
}

// ----------------------------------------------- LCA, nominal = categorical

/// Rows of 4 items with 3 categories (codes 1, 2, 3) from 2 classes.
fn lca_rows(sim: &mut Sim, n: usize) -> Vec<Vec<f64>> {
    let p = [
        [
            [0.7, 0.2, 0.1],
            [0.6, 0.3, 0.1],
            [0.1, 0.7, 0.2],
            [0.8, 0.1, 0.1],
        ],
        [
            [0.1, 0.3, 0.6],
            [0.2, 0.2, 0.6],
            [0.6, 0.1, 0.3],
            [0.2, 0.5, 0.3],
        ],
    ];
    (0..n)
        .map(|_| {
            let c = usize::from(sim.uniform() >= 0.45);
            p[c].iter()
                .map(|q| (sim.categorical(q) + 1) as f64)
                .collect()
        })
        .collect()
}

/// With class-specific intercepts a nominal item's category probabilities
/// are free in each class, as an ordered item's are with class-specific
/// thresholds: the two 2-class LCAs have the same maximum (1e-6).
#[test]
fn nominal_lca_has_the_categorical_lca_likelihood() {
    let rows = lca_rows(&mut Sim::new(71), 800);
    let scratch = Scratch::new("nominal-lca");
    scratch.write("lca.dat", &free_format(&rows, "-99"));
    let input = |scale: &str| {
        format!(
            "DATA: FILE = lca.dat;\n\
             VARIABLE: NAMES = u1-u4; {scale} = u1-u4; CLASSES = c(2);\n\
             ANALYSIS: TYPE = MIXTURE; STARTS = 20 4;\n"
        )
    };
    let (_, nom) = fit_text(&scratch, "nom.inp", &input("NOMINAL")).unwrap();
    let (_, cat) = fit_text(&scratch, "cat.inp", &input("CATEGORICAL")).unwrap();
    assert!(nom.converged && cat.converged);
    assert_eq!(nom.free_parameters, 17);
    assert_eq!(cat.free_parameters, 17);
    let d = (nom.loglikelihood - cat.loglikelihood).abs();
    println!(
        "nominal {} vs categorical {} ({d:e})",
        nom.loglikelihood, cat.loglikelihood
    );
    assert!(d < 1e-6, "difference {d:e}");
    // the nominal intercepts are the log-odds against the last category
    let p = &cat.probabilities;
    for class in ["C#1", "C#2"] {
        let pr = |k: usize| {
            p.iter()
                .find(|x| x.variable == "U1" && x.class == class && x.category == k)
                .unwrap()
                .probability
        };
        let a = estimate(&nom, "Intercepts", "U1#1", Some(class)).estimate;
        let b = estimate(&cat, "Thresholds", "U1$1", Some(class)).estimate;
        // the classes may come out in either order: match by threshold
        let other = if class == "C#1" { "C#2" } else { "C#1" };
        let a2 = estimate(&nom, "Intercepts", "U1#1", Some(other)).estimate;
        let want = (pr(1) / pr(3)).ln();
        assert!(
            (a - want).abs() < 1e-3 || (a2 - want).abs() < 1e-3,
            "{class}: {a} or {a2} vs ln(p1/p3) = {want} (threshold {b})"
        );
    }
}

// ------------------------------------------------------- polytomous GoM

/// Items and categories of the polytomous GoM.
const ITEMS: usize = 5;
const CATS: usize = 3;

use mlmix_tests::expit;

/// Wide data from a 2-class GoM with 3-category items: per person α ~
/// N(0.2, 3), per item class 1 with probability expit(α), then the item's
/// category from its class's probabilities; codes 0, 1, 2.
fn gom_rows(sim: &mut Sim, persons: usize) -> Vec<Vec<f64>> {
    let p = [
        [0.7, 0.2, 0.1],
        [0.6, 0.3, 0.1],
        [0.2, 0.6, 0.2],
        [0.8, 0.1, 0.1],
        [0.5, 0.4, 0.1],
    ];
    let q = [
        [0.1, 0.2, 0.7],
        [0.2, 0.2, 0.6],
        [0.1, 0.2, 0.7],
        [0.2, 0.5, 0.3],
        [0.1, 0.3, 0.6],
    ];
    (0..persons)
        .map(|_| {
            let pi = expit(0.2 + 3f64.sqrt() * sim.normal());
            (0..ITEMS)
                .map(|i| {
                    let probs = if sim.uniform() < pi { &p[i] } else { &q[i] };
                    sim.categorical(probs) as f64
                })
                .collect()
        })
        .collect()
}

/// The polytomous GoM input (docs/gom.md §7): long data by person and
/// item, item dummies, a nominal item variable whose class-specific
/// slopes on the dummies are each item's log-odds, intercepts fixed at 0,
/// and the random logit intercept of class 1 per person.
fn gom_input() -> String {
    let dummies: Vec<String> = (1..=ITEMS).map(|i| format!("d{i} = 0;")).collect();
    let ifs: Vec<String> = (1..=ITEMS)
        .map(|i| format!("IF (item EQ {}) THEN d{i} = 1;", i - 1))
        .collect();
    let class = |k: usize| format!("%c#{k}%\nu ON d1-d5;\n[u#1@0 u#2@0];\n");
    format!(
        "TITLE: polytomous grade of membership\n\
         DATA: FILE = wide.dat;\n\
         DATA WIDETOLONG: WIDE = u1-u5; LONG = u; IDVARIABLE = person; REPETITION = item;\n\
         VARIABLE: NAMES = u1-u5; USEVARIABLES = u d1-d5;\n\
         NOMINAL = u; CLASSES = c(2); CLUSTER = person; WITHIN = u d1-d5;\n\
         DEFINE: {}\n{}\n\
         ANALYSIS: TYPE = TWOLEVEL MIXTURE; ALGORITHM = INTEGRATION; STARTS = 10 3;\n\
         MODEL: %WITHIN%\n%OVERALL%\n{}{}\
         %BETWEEN%\n%OVERALL%\nc#1;\n",
        dummies.join(" "),
        ifs.join(" "),
        class(1),
        class(2)
    )
}

/// Category probabilities `[item][k]` from an item's log-odds against the
/// last category.
type Profile = Vec<[f64; CATS]>;

/// ln L of the polytomous GoM, apart from the engine: per person ∫ Π_i
/// [π(α) P1(u_i) + (1 − π(α)) P2(u_i)] φ(α; μ, v) dα, π = expit, by the
/// trapezoid rule on μ ± 14 sd with 8,001 points.
fn gom_loglik(rows: &[Vec<f64>], p1: &Profile, p2: &Profile, mu: f64, var: f64) -> f64 {
    let nodes = mlmix_tests::logit_normal_nodes(mu, var);
    rows.iter()
        .map(|u| {
            let like: f64 = nodes
                .iter()
                .map(|&(pi, w)| {
                    let prod: f64 = (0..ITEMS)
                        .map(|i| {
                            let k = u[i] as usize;
                            pi * p1[i][k] + (1.0 - pi) * p2[i][k]
                        })
                        .product();
                    w * prod
                })
                .sum();
            like.ln()
        })
        .sum()
}

/// The 2-class polytomous GoM, fitted from default starts, has at its
/// estimates the log-likelihood of the independent integral (1e-6): 20
/// class-specific item log-odds (5 items × 2 categories × 2 classes), the
/// mean and the variance of the random class logit.
#[test]
fn polytomous_gom_matches_the_logit_normal_integral() {
    let rows = gom_rows(&mut Sim::new(93), 300);
    let scratch = Scratch::new("gom-nominal");
    scratch.write("wide.dat", &free_format(&rows, "-99"));
    let (_, fit) = fit_text(&scratch, "gom.inp", &gom_input()).unwrap();
    assert!(fit.converged);
    assert_eq!(fit.free_parameters, 22);
    let profile = |class: &str| -> Profile {
        (1..=ITEMS)
            .map(|i| {
                let d = format!("D{i}");
                let a = |k: usize| estimate(&fit, &format!("U#{k} ON"), &d, Some(class)).estimate;
                let e = [a(1).exp(), a(2).exp(), 1.0];
                let s: f64 = e.iter().sum();
                [e[0] / s, e[1] / s, e[2] / s]
            })
            .collect()
    };
    let (p1, p2) = (profile("C#1"), profile("C#2"));
    let mu = estimate(&fit, "Means", "C#1", None).estimate;
    let var = estimate(&fit, "Between-Level Variances", "C#1", None).estimate;
    let exact = gom_loglik(&rows, &p1, &p2, mu, var);
    let d = (exact - fit.loglikelihood).abs();
    println!(
        "polytomous GoM: engine {}, integral {exact}, difference {d:e}",
        fit.loglikelihood
    );
    assert!(d < 1e-6, "engine {} vs integral {exact}", fit.loglikelihood);
}

// ------------------------------------------------------------ bad input

/// Data for the bad inputs: `u x`, u nominal with 3 categories, clusters
/// `g`.
const NOM_DAT: &str = "\
1 0.5 1
2 -0.3 1
3 1.2 2
1 0.1 2
2 0.7 3
3 -1.1 3
";

#[test]
fn nominal_category_beyond_the_data() {
    let err = fails(
        "nominal_category_beyond_the_data",
        &[("nom.dat", NOM_DAT)],
        "
        DATA:     FILE = nom.dat;
        VARIABLE: NAMES = u x g; USEVARIABLES = u x;
                  NOMINAL = u; CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL:    %c#1%
                  [u#5];
        ",
    );
    assert_first(&err, "model.inp", 6, "u#5 does not exist");
}

#[test]
fn nominal_reference_category_has_no_intercept() {
    let err = fails(
        "nominal_reference_category_has_no_intercept",
        &[("nom.dat", NOM_DAT)],
        "
        DATA:     FILE = nom.dat;
        VARIABLE: NAMES = u x g; USEVARIABLES = u x;
                  NOMINAL = u; CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL:    %OVERALL%
                  u#3 ON x;
        ",
    );
    assert_first(&err, "model.inp", 6, "reference (last) category");
}

#[test]
fn nominal_and_categorical_at_once() {
    let err = fails(
        "nominal_and_categorical_at_once",
        &[("nom.dat", NOM_DAT)],
        "
        DATA:     FILE = nom.dat;
        VARIABLE: NAMES = u x g; USEVARIABLES = u x;
                  CATEGORICAL = u;
                  NOMINAL = u; CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(&err, "model.inp", 4, "in both CATEGORICAL and NOMINAL");
}

#[test]
fn nominal_thresholds_and_categories_of_other_variables() {
    let err = fails(
        "nominal_thresholds_and_categories_of_other_variables",
        &[("nom.dat", NOM_DAT)],
        "
        DATA:     FILE = nom.dat;
        VARIABLE: NAMES = u x g; USEVARIABLES = u x g;
                  NOMINAL = u; CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL:    %c#1%
                  [u$1];
                  [g#1];
                  g ON x;
        ",
    );
    assert_first(&err, "model.inp", 6, "u is nominal");
    assert!(err.errors.len() >= 2, "{err}");
}

#[test]
fn random_intercept_on_a_nominal_variable() {
    let err = fails(
        "random_intercept_on_a_nominal_variable",
        &[("nom.dat", NOM_DAT)],
        "
        DATA:     FILE = nom.dat;
        VARIABLE: NAMES = u x g; USEVARIABLES = u x;
                  NOMINAL = u; CLASSES = c(2); CLUSTER = g; WITHIN = x;
        ANALYSIS: TYPE = TWOLEVEL MIXTURE;
        MODEL:    %WITHIN%
                  %OVERALL%
                  u ON x;
                  %BETWEEN%
                  %OVERALL%
                  u;
        ",
    );
    assert_first(&err, "model.inp", 10, "nominal variable u");
}

#[test]
fn random_slope_on_a_nominal_variable() {
    let err = fails(
        "random_slope_on_a_nominal_variable",
        &[("nom.dat", NOM_DAT)],
        "
        DATA:     FILE = nom.dat;
        VARIABLE: NAMES = u x g; USEVARIABLES = u x;
                  NOMINAL = u; CLASSES = c(2); CLUSTER = g; WITHIN = u x;
        ANALYSIS: TYPE = TWOLEVEL MIXTURE;
        MODEL:    %WITHIN%
                  %OVERALL%
                  s | u ON x;
        ",
    );
    assert_first(&err, "model.inp", 7, "nominal variable u");
}

/// Two nominal variables of three categories and a covariate, 40 rows.
fn two_nominal_rows() -> String {
    let mut sim = Sim::new(5);
    let rows: Vec<Vec<f64>> = (0..40)
        .map(|_| {
            vec![
                sim.categorical(&[0.3, 0.3, 0.4]) as f64,
                sim.categorical(&[0.5, 0.2, 0.3]) as f64,
            ]
        })
        .collect();
    free_format(&rows, ".")
}

#[test]
fn a_range_of_nominal_categories_covers_every_variable_between() {
    let s = Scratch::new("nominal-range");
    s.write("two.dat", &two_nominal_rows());
    let loaded = mlmix_tests::load(
        &s,
        "m.inp",
        "DATA: FILE = two.dat;\nVARIABLE: NAMES = u1 u2; NOMINAL = u1 u2; CLASSES = c(2);\n\
         ANALYSIS: TYPE = MIXTURE;\nMODEL: %c#1%\n[u1#1-u2#1*1.5];\n",
    );
    let starts: Vec<(usize, usize, Option<f64>)> = loaded
        .model
        .parameters
        .iter()
        .filter_map(|p| match p.kind {
            mlmix::spec::ParamKind::NominalIntercept { var, category } if p.class == Some(0) => {
                Some((var, category, p.start))
            }
            _ => None,
        })
        .collect();
    // category 1 of u1 and of u2 (not only the ends of the list), not 2
    assert_eq!(
        starts,
        [
            (0, 1, Some(1.5)),
            (0, 2, None),
            (1, 1, Some(1.5)),
            (1, 2, None)
        ]
    );
}

#[test]
fn a_range_of_nominal_categories_names_one_category() {
    let err = fails(
        "nominal_range_mixed",
        &[("two.dat", &two_nominal_rows())],
        "
        DATA:     FILE = two.dat;
        VARIABLE: NAMES = u1 u2; NOMINAL = u1 u2; CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL:    %c#1%
                  [u1#1-u2#2];
        ",
    );
    assert_first(&err, "model.inp", 5, "mixes different categories");
}
