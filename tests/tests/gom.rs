//! Grade of membership (the paper's Section 7) from wide data, as a user
//! writes it: `DATA WIDETOLONG` makes one row per person and item,
//! `DEFINE` the item dummies, and a two-level mixture with a random logit
//! intercept per person is the 2-class GoM (eq 28-30). Checked against an
//! independent computation of its likelihood and against the latent class
//! model it nests.

use mlmix_tests::{Scratch, Sim, estimate, fit_text, free_format};

/// Items of the simulated data.
const ITEMS: usize = 6;

/// Wide binary data from a 2-class GoM: per person α ~ N(0.3, 4), per item
/// class 1 with probability expit(α), P(u = 1 | class) from `p`.
fn simulate(sim: &mut Sim, persons: usize) -> Vec<Vec<f64>> {
    let p = [
        [0.9, 0.85, 0.8, 0.9, 0.75, 0.8],
        [0.1, 0.2, 0.15, 0.1, 0.3, 0.2],
    ];
    (0..persons)
        .map(|_| {
            let alpha = 0.3 + 2.0 * sim.normal();
            let pi = 1.0 / (1.0 + (-alpha).exp());
            (0..ITEMS)
                .map(|i| {
                    let c = usize::from(sim.uniform() >= pi);
                    f64::from(sim.uniform() < p[c][i])
                })
                .collect()
        })
        .collect()
}

/// The 2-class GoM input: wide items u1-u6 reshaped to `u` by person
/// and item, item dummies d1-d6 from DEFINE, class-specific item logits
/// (the dummies' slopes, the threshold fixed at 0), and the random logit
/// intercept of class 1 per person (`c#1` on the between level, its
/// variance `variance`: free when empty).
fn gom_input(variance: &str) -> String {
    let dummies: Vec<String> = (1..=ITEMS).map(|i| format!("d{i} = 0;")).collect();
    let ifs: Vec<String> = (1..=ITEMS)
        .map(|i| format!("IF (item EQ {}) THEN d{i} = 1;", i - 1))
        .collect();
    format!(
        "TITLE: 2-class grade of membership\n\
         DATA: FILE = wide.dat;\n\
         DATA WIDETOLONG: WIDE = u1-u6; LONG = u; IDVARIABLE = person; REPETITION = item;\n\
         VARIABLE: NAMES = u1-u6; USEVARIABLES = u d1-d6;\n\
         CATEGORICAL = u; CLASSES = c(2); CLUSTER = person; WITHIN = u d1-d6;\n\
         DEFINE: {}\n{}\n\
         ANALYSIS: TYPE = TWOLEVEL MIXTURE; ALGORITHM = INTEGRATION; STARTS = 10 3;\n\
         MODEL: %WITHIN%\n%OVERALL%\n\
         %c#1%\nu ON d1-d6;\n[u$1@0];\n\
         %c#2%\nu ON d1-d6;\n[u$1@0];\n\
         %BETWEEN%\n%OVERALL%\nc#1{variance};\n",
        dummies.join(" "),
        ifs.join(" ")
    )
}

use mlmix_tests::expit;

/// ln L of the 2-class GoM, written here apart from the engine: per
/// person, ∫ Π_i [π(α) P(u_i | 1) + (1 − π(α)) P(u_i | 2)] φ(α; μ, σ²) dα
/// with π = expit, by the trapezoid rule on μ ± 14σ with 8,001 points
/// (the integrand is smooth and decays like the normal density, so the
/// rule is accurate to rounding).
fn gom_loglik(rows: &[Vec<f64>], p1: &[f64], p2: &[f64], mu: f64, var: f64) -> f64 {
    let nodes = mlmix_tests::logit_normal_nodes(mu, var);
    rows.iter()
        .map(|u| {
            let like: f64 = nodes
                .iter()
                .map(|&(pi, w)| {
                    let prod: f64 = (0..ITEMS)
                        .map(|i| {
                            let (a, b) = if u[i] == 1.0 {
                                (p1[i], p2[i])
                            } else {
                                (1.0 - p1[i], 1.0 - p2[i])
                            };
                            pi * a + (1.0 - pi) * b
                        })
                        .product();
                    w * prod
                })
                .sum();
            like.ln()
        })
        .sum()
}

/// The 2-class GoM's log-likelihood at the engine's estimates equals the
/// independent integral above to 1e-6, and its 14 parameters are the 12
/// class-specific item logits, the mean and the variance of the random
/// class logit.
#[test]
fn two_class_gom_matches_the_logit_normal_integral() {
    let rows = simulate(&mut Sim::new(91), 400);
    let scratch = Scratch::new("gom");
    scratch.write("wide.dat", &free_format(&rows, "-99"));
    let (_, fit) = fit_text(&scratch, "gom.inp", &gom_input("")).unwrap();
    assert!(fit.converged);
    assert_eq!(fit.free_parameters, 14);
    let dummies: Vec<String> = (1..=ITEMS).map(|i| format!("D{i}")).collect();
    let probs = |class: &str| -> Vec<f64> {
        dummies
            .iter()
            .map(|d| expit(estimate(&fit, "U ON", d, Some(class)).estimate))
            .collect()
    };
    let (p1, p2) = (probs("C#1"), probs("C#2"));
    let mu = estimate(&fit, "Means", "C#1", None).estimate;
    let var = estimate(&fit, "Between-Level Variances", "C#1", None).estimate;
    let exact = gom_loglik(&rows, &p1, &p2, mu, var);
    let d = (exact - fit.loglikelihood).abs();
    println!(
        "2-class GoM: engine {}, integral {exact}, difference {d:e}",
        fit.loglikelihood
    );
    assert!(
        d < 1e-6,
        "engine {} vs integral {exact} (difference {d:e})",
        fit.loglikelihood
    );
}

/// The 2-class LCA of the wide `rows` (STARTS = 10 3) and the 2-class
/// GoM of their long form with a free variance, fitted in a scratch folder
/// named `name`.
fn lca_and_gom(name: &str, rows: &[Vec<f64>]) -> (Scratch, mlmix::Fit, mlmix::Fit) {
    let scratch = Scratch::new(name);
    scratch.write("wide.dat", &free_format(rows, "-99"));
    let lca = "DATA: FILE = wide.dat;\n\
               VARIABLE: NAMES = u1-u6; CATEGORICAL = u1-u6; CLASSES = c(2);\n\
               ANALYSIS: TYPE = MIXTURE; STARTS = 10 3;\n";
    let (_, lca) = fit_text(&scratch, "lca.inp", lca).unwrap();
    let (_, gom) = fit_text(&scratch, "gom.inp", &gom_input("")).unwrap();
    (scratch, lca, gom)
}

/// LCA is nested in GoM (the paper, Section 7): on the same data the
/// 2-class GoM's log-likelihood is at least the 2-class LCA's, and with
/// the variance of the random logit fixed at 1e5 (every person almost
/// surely in one class for all items) the GoM is the LCA, to 0.01.
#[test]
fn lca_is_nested_in_gom() {
    let rows = simulate(&mut Sim::new(92), 400);
    let (scratch, lca, gom) = lca_and_gom("gom-lca", &rows);
    let (_, step) = fit_text(&scratch, "step.inp", &gom_input("@100000")).unwrap();
    assert_eq!((lca.free_parameters, gom.free_parameters), (13, 14));
    assert_eq!(step.free_parameters, 13);
    // one random class logit is a step dimension, accurate at any variance
    assert!(
        !step
            .warnings
            .iter()
            .any(|w| w.contains("random class logit")),
        "{:?}",
        step.warnings
    );
    assert!(
        gom.loglikelihood >= lca.loglikelihood - 1e-6,
        "GoM {} below LCA {}",
        gom.loglikelihood,
        lca.loglikelihood
    );
    // the GoM starts from the latent class model of the same data (the
    // long rows with the class variable on the between level): the wide
    // LCA's maximum
    let nested = gom.starts.nested.as_ref().expect("GoM starts from its LCA");
    assert_eq!(nested.model, "latent class model");
    assert!(
        (nested.loglikelihood - lca.loglikelihood).abs() < 1e-6,
        "nested LCA {} vs wide LCA {}",
        nested.loglikelihood,
        lca.loglikelihood
    );
    // with a starting value for every free parameter the companion has
    // nothing to give: not fitted, and the fit reaches the same maximum
    let started = gom_input("*4")
        .replacen(
            "u ON d1-d6;",
            "u ON d1*2 d2*1.7 d3*1.4 d4*2 d5*1 d6*1.4;",
            1,
        )
        .replacen(
            "u ON d1-d6;",
            "u ON d1*-2 d2*-1.4 d3*-1.7 d4*-2 d5*-1 d6*-1.4;",
            1,
        )
        .replace("c#1*4;", "[c#1*0.3]; c#1*4;");
    let (_, started) = fit_text(&scratch, "started.inp", &started).unwrap();
    assert!(
        started.starts.nested.is_none(),
        "{:?}",
        started.starts.nested
    );
    assert!(
        (started.loglikelihood - gom.loglikelihood).abs() < 1e-4,
        "GoM from the input's starting values {} vs from its LCA {}",
        started.loglikelihood,
        gom.loglikelihood
    );
    let d = (step.loglikelihood - lca.loglikelihood).abs();
    println!(
        "LCA {}, GoM {}, GoM with variance 1e5 {}",
        lca.loglikelihood, gom.loglikelihood, step.loglikelihood
    );
    assert!(
        d < 0.01,
        "GoM with variance 1e5 {} vs LCA {} (difference {d})",
        step.loglikelihood,
        lca.loglikelihood
    );
}

/// The GoM's starts from its latent class model: start 0 (the model's
/// solution itself) has the random logit at variance
/// `NESTED_LOGIT_VARIANCE`, near the limit the model is; the random starts
/// perturb the same solution at `RANDOM_START_LOGIT_VARIANCE`, where
/// persons mix classes. Both keep the class's share, E expit(μ + σz), at
/// the wide latent class model's within the probit approximation's 0.01,
/// and differ in nothing else.
#[test]
fn gom_starts_from_its_lca_at_two_variances() {
    use mlmix::nested_start::{NESTED_LOGIT_VARIANCE, RANDOM_START_LOGIT_VARIANCE};
    use mlmix::spec::ParamKind;
    let rows = simulate(&mut Sim::new(96), 300);
    let scratch = Scratch::new("gom-starts");
    scratch.write("wide.dat", &free_format(&rows, "-99"));
    let loaded = mlmix_tests::load(&scratch, "gom.inp", &gom_input(""));
    let (models, note) =
        mlmix::nested_start::nested_starts(&loaded, &Default::default(), &mlmix::Silent)
            .expect("a GoM has a latent class model")
            .expect("its latent class model fits");
    assert_eq!(note.model, "latent class model");
    let start = |m: &mlmix::spec::Model, kind: fn(&ParamKind) -> bool| -> f64 {
        let p = m.parameters.iter().find(|p| kind(&p.kind));
        p.and_then(|p| p.start).expect("a starting value")
    };
    let variance = |k: &ParamKind| matches!(k, ParamKind::RandomVariance { .. });
    let mean = |k: &ParamKind| matches!(k, ParamKind::ClassIntercept { .. });
    let (limit, random) = (&models.at_limit, &models.for_random);
    assert_eq!(start(limit, variance), NESTED_LOGIT_VARIANCE);
    assert_eq!(start(random, variance), RANDOM_START_LOGIT_VARIANCE);
    // the class's share at each start, against the wide LCA's (fitted on
    // its own; its class 1 may be the GoM's class 2)
    let (_, lca) = fit_text(
        &scratch,
        "lca.inp",
        "DATA: FILE = wide.dat;\n\
         VARIABLE: NAMES = u1-u6; CATEGORICAL = u1-u6; CLASSES = c(2);\n\
         ANALYSIS: TYPE = MIXTURE; STARTS = 10 3;\n",
    )
    .unwrap();
    let p = lca.class_proportions[0].proportion;
    assert!((p - 0.5).abs() > 0.05, "a share away from 1/2: {p}");
    for (m, v) in [
        (limit, NESTED_LOGIT_VARIANCE),
        (random, RANDOM_START_LOGIT_VARIANCE),
    ] {
        let share: f64 = mlmix_tests::logit_normal_nodes(start(m, mean), v)
            .iter()
            .map(|(q, w)| q * w)
            .sum();
        let off = (share - p).abs().min((share - (1.0 - p)).abs());
        assert!(
            off < 0.01,
            "variance {v}: share {share} vs the latent class model's {p} or {}",
            1.0 - p
        );
    }
    // the item logits are the latent class model's in both
    for (a, b) in limit.parameters.iter().zip(&random.parameters) {
        if !variance(&a.kind) && !mean(&a.kind) {
            assert_eq!(a.start, b.start, "{:?}", a.kind);
        }
    }
}

/// An item logit written as a dummy's slope is a threshold written
/// another way, and is kept in [LOGLOW, LOGHIGH] as thresholds are. Where
/// every member of one class answers item 1 with 1, the GoM's likelihood
/// keeps rising as that class's item-1 logit grows: the slope stops at 15,
/// reported at the bound, instead of running towards infinity (an
/// unbounded one ran past 100 on the 17-item data of docs/gom.md). The
/// wide LCA's threshold has a finite maximum here (its posteriors are not
/// all 0 or 1), and the long LCA the GoM starts from still equals it.
#[test]
fn item_logits_on_dummies_stop_at_the_logit_bound() {
    let mut sim = Sim::new(94);
    let p = [
        [1.0, 0.95, 0.9, 0.95, 0.9, 0.9],
        [0.2, 0.1, 0.1, 0.05, 0.15, 0.1],
    ];
    let rows: Vec<Vec<f64>> = (0..300)
        .map(|_| {
            let c = usize::from(sim.uniform() >= 0.4);
            (0..ITEMS)
                .map(|i| f64::from(sim.uniform() < p[c][i]))
                .collect()
        })
        .collect();
    let (_, lca, gom) = lca_and_gom("gom-bound", &rows);
    let slopes: Vec<_> = gom
        .parameters
        .iter()
        .filter(|q| q.section == "U ON")
        .collect();
    let at_bound: Vec<_> = slopes.iter().filter(|q| q.at_bound).collect();
    assert_eq!(at_bound.len(), 1, "{slopes:?}");
    assert!(
        at_bound[0].name.eq_ignore_ascii_case("D1") && at_bound[0].estimate == 15.0,
        "{slopes:?}"
    );
    assert!(
        slopes.iter().all(|q| q.estimate.abs() <= 15.0),
        "{slopes:?}"
    );
    let nested = gom.starts.nested.as_ref().expect("GoM starts from its LCA");
    assert!(
        (nested.loglikelihood - lca.loglikelihood).abs() < 1e-6,
        "long LCA {} vs wide LCA {}",
        nested.loglikelihood,
        lca.loglikelihood
    );
    assert!(gom.loglikelihood >= lca.loglikelihood - 1e-6);
}

/// The 3-class GoM of [`gom_input`]'s items: two random class logits with
/// a free covariance.
fn gom3_input() -> String {
    gom_input("")
        .replace("CLASSES = c(2)", "CLASSES = c(3)")
        .replace(
            "%BETWEEN%\n%OVERALL%\nc#1;\n",
            "%c#3%\nu ON d1-d6;\n[u$1@0];\n%BETWEEN%\n%OVERALL%\nc#1 c#2;\nc#1 WITH c#2;\n",
        )
}

/// The K-class GoM of eq 34: K − 1 random class logit intercepts per
/// person with a free covariance (`c#1 WITH c#2` on the between level),
/// two integration dimensions; 3 classes of 6 item logits, 2 means, 2
/// variances and the covariance: 23 parameters.
#[test]
fn three_class_gom_has_correlated_random_logits() {
    let rows = simulate(&mut Sim::new(93), 50);
    let scratch = Scratch::new("gom3");
    scratch.write("wide.dat", &free_format(&rows, "-99"));
    let loaded = mlmix_tests::load(&scratch, "gom3.inp", &gom3_input());
    let model = &loaded.model;
    assert_eq!(model.free.len(), 23);
    let covariance = model.parameters.iter().any(|p| match p.kind {
        mlmix::spec::ParamKind::RandomCovariance { a, b } => {
            let r = model.random_effects();
            r[a].name.eq_ignore_ascii_case("c#1") && r[b].name.eq_ignore_ascii_case("c#2")
        }
        _ => false,
    });
    assert!(covariance, "no covariance of c#1 and c#2");
    // its starting values come from the 3-class LCA: the same parameters
    // but the random logits' two variances and covariance, the class
    // variable on the between level
    let nested = mlmix::nested_start::companion(model).expect("a GoM has a nested LCA");
    assert_eq!(nested.kind, "latent class model");
    assert_eq!(nested.model.free.len(), 20);
    assert!(nested.model.class_vars[0].between);
    // no integration left to coarsen, and it runs to convergence
    assert_eq!(nested.model.latent.integration, model.latent.integration);
    assert_eq!(
        nested.model.analysis.qn_iterations,
        model.analysis.qn_iterations
    );
    assert_eq!(nested.free_map.iter().filter(|f| f.is_none()).count(), 3);
    assert!(mlmix::nested_start::companion(&nested.model).is_none());
}

/// A fit whose classes stay identical (a 2-class GoM with `STARTS = 0`:
/// its item logits start at 0 in both classes, and nothing in the
/// likelihood tells the classes apart, so every step keeps them equal)
/// says so in a warning; the same model with random starts does not; and
/// the warning names the classes that are equal when only some are (a
/// 3-class GoM at estimates with classes 1 and 3 the same).
#[test]
fn identical_classes_warn() {
    let scratch = Scratch::new("gom-identical");
    scratch.write(
        "wide.dat",
        &free_format(&simulate(&mut Sim::new(21), 150), "-99"),
    );
    let identical = |fit: &mlmix::Fit| {
        fit.warnings
            .iter()
            .any(|w| w.contains("classes 1 and 2 of C have the same estimates"))
    };
    let (_, zero) = fit_text(
        &scratch,
        "zero.inp",
        &gom_input("").replace("STARTS = 10 3", "STARTS = 0"),
    )
    .unwrap();
    assert!(identical(&zero), "{:?}", zero.warnings);
    let (_, random) = fit_text(&scratch, "random.inp", &gom_input("")).unwrap();
    assert!(!identical(&random), "{:?}", random.warnings);
    assert!(random.loglikelihood > zero.loglikelihood + 1.0);
    // classes 1 and 3 of a 3-class GoM the same, class 2 apart
    let loaded = mlmix_tests::load(&scratch, "gom3.inp", &gom3_input());
    let model = &loaded.model;
    let phi_with = |class2: f64| -> Vec<f64> {
        model
            .parameters
            .iter()
            .map(|p| match (p.value, p.class) {
                (mlmix::spec::ParamValue::Fixed(v), _) => v,
                (_, Some(1)) => class2,
                (_, Some(_)) => 0.7,
                _ => 1.0,
            })
            .collect()
    };
    let w = mlmix::diverging::identical_classes_warning(model, &phi_with(-0.4))
        .expect("classes 1 and 3 equal");
    assert!(w.starts_with("classes 1 and 3 of C have"), "{w}");
    let w = mlmix::diverging::identical_classes_warning(model, &phi_with(0.7))
        .expect("all three equal");
    assert!(w.starts_with("classes 1, 2 and 3 of C have"), "{w}");
    // a difference beyond the tolerance in one item logit separates them
    let mut phi = phi_with(0.7);
    let i = model
        .parameters
        .iter()
        .position(|p| p.class == Some(2) && !matches!(p.value, mlmix::spec::ParamValue::Fixed(_)))
        .unwrap();
    phi[i] += 1e-4;
    let w = mlmix::diverging::identical_classes_warning(model, &phi).expect("1 and 2 equal");
    assert!(w.starts_with("classes 1 and 2 of C have"), "{w}");
}

/// Random class logits whose correlation nears ±1 are named in a warning
/// (the FMA-GoM's crawl towards a singular Σ, docs/gom.md section 6); at
/// a moderate correlation, or in a model with one random class logit,
/// there is none.
#[test]
fn nearly_singular_class_logit_covariances_warn() {
    let scratch = Scratch::new("gom3-corr");
    scratch.write(
        "wide.dat",
        &free_format(&simulate(&mut Sim::new(5), 10), "-99"),
    );
    let loaded = mlmix_tests::load(&scratch, "gom3.inp", &gom3_input());
    let model = &loaded.model;
    // the parameters at 0 (fixed ones at their values), the logits'
    // variances 1.25 and 9.53 and their covariance `cov`
    let phi_with = |cov: f64| -> Vec<f64> {
        model
            .parameters
            .iter()
            .map(|p| match (p.value, &p.kind) {
                (mlmix::spec::ParamValue::Fixed(v), _) => v,
                (_, mlmix::spec::ParamKind::RandomVariance { re }) => {
                    if model.random_effects()[*re].name.eq_ignore_ascii_case("c#1") {
                        1.25
                    } else {
                        9.53
                    }
                }
                (_, mlmix::spec::ParamKind::RandomCovariance { .. }) => cov,
                _ => 0.0,
            })
            .collect()
    };
    // r = -3.392 / sqrt(1.25 * 9.53) = -0.983
    let w = mlmix::diverging::class_logit_correlation_warning(model, &phi_with(-3.392))
        .expect("a correlation of -0.983 warns");
    assert!(w.contains("C#1 and C#2: -0.983"), "{w}");
    assert!(w.contains("fewer random class logits"), "{w}");
    // r = -0.49: none
    assert_eq!(
        mlmix::diverging::class_logit_correlation_warning(model, &phi_with(-1.69)),
        None
    );
    // the 2-class GoM has one random logit: none at any values
    let two = mlmix_tests::load(&scratch, "gom2.inp", &gom_input(""));
    let phi: Vec<f64> = two.model.parameters.iter().map(|_| 1.0).collect();
    assert_eq!(
        mlmix::diverging::class_logit_correlation_warning(&two.model, &phi),
        None
    );
}

/// The shipped GoM example: it fits, its best log-likelihood is
/// replicated, and the item probabilities recover the simulation's within
/// 3 standard errors of their logits.
#[test]
fn gom_example() {
    let path = mlmix_tests::tests_dir().join("../examples/gom.inp");
    let (_, fit) = mlmix_tests::fit_path(&path);
    assert!(fit.converged);
    assert!(fit.starts.best_replicated);
    assert_eq!(fit.free_parameters, 14);
    let p = [
        [0.9, 0.85, 0.8, 0.9, 0.75, 0.8],
        [0.1, 0.2, 0.15, 0.1, 0.3, 0.2],
    ];
    // the item profiles: P(u = 1 | class, item) = expit(slope), the
    // threshold being 0
    assert_eq!(fit.profiles.len(), 12);
    for pr in &fit.profiles {
        let slope = estimate(&fit, "U ON", &pr.item, Some(&pr.class)).estimate;
        assert!((pr.probability - expit(slope)).abs() < 1e-12, "{pr:?}");
    }
    // the classes may come out in either order
    let logit = |q: f64| (q / (1.0 - q)).ln();
    let order = if estimate(&fit, "U ON", "D1", Some("C#1")).estimate > 0.0 {
        [0, 1]
    } else {
        [1, 0]
    };
    for (c, class) in ["C#1", "C#2"].iter().enumerate() {
        for i in 0..ITEMS {
            let e = estimate(&fit, "U ON", &format!("D{}", i + 1), Some(class));
            let truth = logit(p[order[c]][i]);
            // a class whose members all but never answer an item 1 holds
            // its logit at the bound (D4 in the class of low probabilities
            // on this sample: unbounded it crept to −15.4, standard error
            // 4.7), reported without a standard error
            if e.at_bound {
                assert!(
                    e.estimate.abs() == 15.0 && e.estimate * truth > 0.0,
                    "{e:?}"
                );
                continue;
            }
            let se = e.se.unwrap();
            assert!(
                (e.estimate - truth).abs() < 3.0 * se,
                "{class} D{}: {} (truth {truth}, se {se})",
                i + 1,
                e.estimate
            );
        }
    }
}

/// The FMA-GoM's item parameters are random slopes on the item dummies
/// measured by a between-level factor with zero residual variances (eq
/// 38-41; `f BY s1-s6` on the between level). Without classes this is the
/// 2PL written long: on the same rule (30 Gauss–Hermite points, not
/// adapted) its log-likelihood and loadings equal the wide 2PL's.
#[test]
fn item_slopes_measured_by_a_factor_are_the_2pl_written_long() {
    let mut sim = Sim::new(94);
    let (lambda, tau) = (
        [1.0, 0.8, 1.3, 0.9, 1.1, 0.7],
        [0.3, -0.2, 0.5, 0.0, -0.4, 0.2],
    );
    let rows: Vec<Vec<f64>> = (0..300)
        .map(|_| {
            let f = sim.normal();
            (0..ITEMS)
                .map(|i| f64::from(sim.uniform() < expit(lambda[i] * f - tau[i])))
                .collect()
        })
        .collect();
    let scratch = Scratch::new("long-2pl");
    scratch.write("wide.dat", &free_format(&rows, "-99"));
    let rule = "ALGORITHM = INTEGRATION; INTEGRATION = GAUSSHERMITE(30); ADAPTIVE = OFF;";
    let wide = format!(
        "DATA: FILE = wide.dat;\n\
         VARIABLE: NAMES = u1-u6; CATEGORICAL = u1-u6;\n\
         ANALYSIS: {rule}\nMODEL: f BY u1-u6*; f@1;\n"
    );
    let long = gom_input("").replace("CLASSES = c(2); ", "").replace(
        "TYPE = TWOLEVEL MIXTURE; ALGORITHM = INTEGRATION; STARTS = 10 3;",
        &format!("TYPE = TWOLEVEL; {rule}"),
    );
    let model_at = long.find("MODEL:").unwrap();
    let slopes: Vec<String> = (1..=ITEMS).map(|i| format!("s{i} | u ON d{i};")).collect();
    let long = format!(
        "{}MODEL: %WITHIN%\n{}\n[u$1@0];\n%BETWEEN%\nf BY s1-s6*;\nf@1;\ns1-s6@0;\n",
        &long[..model_at],
        slopes.join(" ")
    );
    let (_, w) = fit_text(&scratch, "wide.inp", &wide).unwrap();
    let (_, l) = fit_text(&scratch, "long.inp", &long).unwrap();
    assert!(w.converged && l.converged);
    assert_eq!((w.free_parameters, l.free_parameters), (12, 12));
    let d = (w.loglikelihood - l.loglikelihood).abs();
    assert!(
        d < 1e-6,
        "wide {} vs long {} (difference {d:e})",
        w.loglikelihood,
        l.loglikelihood
    );
    for i in 1..=ITEMS {
        let a = estimate(&w, "F BY", &format!("U{i}"), None).estimate;
        let b = estimate(&l, "Between Level: F BY", &format!("S{i}"), None).estimate;
        assert!((a - b).abs() < 1e-4, "item {i}: wide {a} vs long {b}");
    }
}

/// A model's evaluator, named points in its parameter space, and its
/// parameters.
pub(crate) type Points = (
    mlmix_tests::Evaluator,
    Vec<(&'static str, Vec<f64>)>,
    Vec<mlmix::spec::Parameter>,
);

/// A 3-class FMA-GoM on 40 simulated persons (3 dimensions: two
/// correlated random logits and the factor), with a person-level
/// covariate on the class logits or without, and three points of it: a
/// moderate one, one with items so sharp that the rows answering 0 have
/// likelihoods below what products of probabilities can hold (e^-700 or
/// less in every class: their logs are used then, for the log-likelihood
/// and for the posteriors), and one with class logits so wide (variances
/// 1e6) that at most points one class takes all the probability (where
/// the GoM turns into the latent class model).
pub(crate) fn shortcut_points(covariate: bool) -> Points {
    let (_scratch, loaded) = shortcut_model(covariate, true);
    points_of(&loaded, 3)
}

/// The three points of [`shortcut_points`] for a model of `dims`
/// integration dimensions.
fn points_of(loaded: &mlmix::spec::Loaded, dims: usize) -> Points {
    use mlmix::spec::{ParamKind, ParamValue};
    let model = &loaded.model;
    let ev = mlmix_tests::Evaluator::new(loaded);
    let phi: Vec<f64> = model
        .parameters
        .iter()
        .enumerate()
        .map(|(i, p)| match p.kind {
            _ if matches!(p.value, ParamValue::Fixed(_)) => match p.value {
                ParamValue::Fixed(v) => v,
                ParamValue::Free(_) => unreachable!(),
            },
            ParamKind::RandomVariance { .. } => 0.8 + 0.1 * (i % 3) as f64,
            _ => 0.6 - 0.13 * (i % 11) as f64,
        })
        .collect();
    let mut sharp = phi.clone();
    for (v, p) in sharp.iter_mut().zip(&model.parameters) {
        // the items' parameters in every class (the random slopes' means)
        if matches!(p.kind, ParamKind::Slope { .. }) && p.class.is_some() {
            *v = 700.0 * (1.0 + v.abs());
        }
    }
    let mut wide = phi.clone();
    for (v, p) in wide.iter_mut().zip(&model.parameters) {
        if matches!(p.kind, ParamKind::RandomVariance { .. })
            && !matches!(p.value, ParamValue::Fixed(_))
        {
            *v *= 1e6;
        }
    }
    assert_eq!(ev.plan.dims, dims);
    (
        ev,
        vec![("moderate", phi), ("sharp", sharp), ("wide", wide)],
        model.parameters.clone(),
    )
}

/// The model of [`shortcut_points`] and the scratch folder of its data.
fn shortcut_model(covariate: bool, factor: bool) -> (Scratch, mlmix::spec::Loaded) {
    let scratch = Scratch::new(match (covariate, factor) {
        (true, _) => "gom-shortcuts",
        (false, true) => "gom-moments",
        (false, false) => "gom-moments-one-run",
    });
    let mut sim = Sim::new(17);
    let mut rows = simulate(&mut sim, 40);
    for r in &mut rows {
        r.push(sim.normal().round());
    }
    scratch.write("wide.dat", &free_format(&rows, "."));
    let dummies: Vec<String> = (1..=ITEMS).map(|i| format!("d{i} = 0;")).collect();
    let ifs: Vec<String> = (1..=ITEMS)
        .map(|i| format!("IF (item EQ {}) THEN d{i} = 1;", i - 1))
        .collect();
    let slopes: Vec<String> = (1..=ITEMS).map(|i| format!("s{i} | u ON d{i};")).collect();
    let (x, on) = if covariate {
        (" BETWEEN = x;", " c#1 ON x;")
    } else {
        ("", "")
    };
    let text = format!(
        "DATA: FILE = wide.dat;\n\
         DATA WIDETOLONG: WIDE = u1-u6; LONG = u; IDVARIABLE = person; REPETITION = item;\n\
         VARIABLE: NAMES = u1-u6 x; USEVARIABLES = {} u d1-d6;\n\
         CATEGORICAL = u; CLASSES = c(3); CLUSTER = person; WITHIN = u d1-d6;{x}\n\
         DEFINE: {}\n{}\n\
         ANALYSIS: TYPE = TWOLEVEL MIXTURE; ALGORITHM = INTEGRATION;\n\
         MODEL: %WITHIN%\n%OVERALL%\n{}\n[u$1@0];\n\
         %BETWEEN%\n%OVERALL%\n{}s1-s6@0;\n\
         c#1 c#2; c#1 WITH c#2;{on}\n\
         %c#1%\n[s1-s6];\n%c#2%\n[s1-s6];\n%c#3%\n[s1-s6];\n",
        if covariate { "x" } else { "" },
        dummies.join(" "),
        ifs.join(" "),
        slopes.join("\n"),
        if factor { "f BY s1-s6*; f@1; " } else { "" },
    );
    let loaded = mlmix_tests::load(&scratch, "g.inp", &text);
    (scratch, loaded)
}
/// `a` equals `b` to 1e-10 of `b`'s largest magnitude (at least 1).
fn close(what: &str, a: &[f64], b: &[f64]) {
    close_to(1e-10, what, a, b);
}

/// `a` equals `b` to `tol` of `b`'s largest magnitude (at least 1).
fn close_to(tol: f64, what: &str, a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{what}");
    let scale = b.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * scale, "{what}[{i}]: {x} vs {y}");
    }
}

/// Evaluation `f` equals `g` ([`close`]) in everything it holds: the
/// log-likelihood, gradient, information, meat, posteriors, cluster
/// log-likelihoods and moments; and it is finite, with a gradient not
/// all 0.
fn same_evaluations(at: &str, f: &mlmix_integrate::Evaluation, g: &mlmix_integrate::Evaluation) {
    same_but_moments(at, f, g);
    close(&format!("{at} moments"), &f.moments, &g.moments);
    assert!(f.loglik.is_finite() && f.gradient.iter().any(|g| g.abs() > 1e-3));
}

/// [`same_evaluations`] but for the posterior moments, which the moment
/// form reports with its inner dimensions standard normal.
fn same_but_moments(at: &str, f: &mlmix_integrate::Evaluation, g: &mlmix_integrate::Evaluation) {
    let at = |what: &str| format!("{at} {what}");
    close(&at("loglik"), &[f.loglik], &[g.loglik]);
    close(&at("gradient"), &f.gradient, &g.gradient);
    close(&at("information"), &f.information, &g.information);
    close(&at("meat"), &f.meat, &g.meat);
    close(&at("posteriors"), &f.posteriors, &g.posteriors);
    close(&at("cluster loglik"), &f.cluster_loglik, &g.cluster_loglik);
}

/// Everything an evaluation computes.
const EVERYTHING: mlmix_integrate::Want = mlmix_integrate::Want {
    gradient: true,
    information: true,
    meat: true,
    posteriors: true,
    moments: true,
};

/// The engine's shortcuts for long data (a class logit evaluated once per
/// person, the rows' likelihoods in probability space) against its general
/// loop, at three points of a 3-class FMA-GoM with a person-level
/// covariate on the class logits: the same log-likelihood, gradient,
/// information, meat, posteriors and posterior moments.
#[test]
fn long_data_shortcuts_equal_the_general_loop() {
    use mlmix_integrate::{Backend, CpuBackend, Grid, Method};
    let (ev, points, _) = shortcut_points(true);
    // nested as fits nest it: the items' factor outermost
    let grid = Grid::new(Method::GaussHermite, 5, ev.plan.dims)
        .nested(&mlmix_integrate::nesting_order(&ev.plan));
    let want = EVERYTHING;
    let new = || CpuBackend::new(ev.plan.clone(), ev.data.clone(), grid.clone(), None).unwrap();
    // the rows' likelihoods in blocks of passes (the class logits' two
    // dimensions inner, the factor outer); the class logits read the
    // covariate, so not through shared moments
    assert!(new().blocked() && !new().general_loop().blocked());
    assert!(!new().moment_form());
    for (case, phi) in &points {
        let fast = new().evaluate(phi, want).unwrap();
        let general = new().general_loop().evaluate(phi, want).unwrap();
        // and on the grid adapted to each person's posterior, whose nodes
        // differ from person to person
        let (adapt, _) = mlmix_integrate::Adaptation::from_moments(
            &grid,
            ev.plan.n_between(),
            &general.moments,
            &general.junctions,
        );
        let fast_a = new().evaluate_adapted(phi, want, Some(&adapt)).unwrap();
        let general_a = new()
            .general_loop()
            .evaluate_adapted(phi, want, Some(&adapt))
            .unwrap();
        for (rule, f, g) in [("plain", &fast, &general), ("adapted", &fast_a, &general_a)] {
            same_evaluations(&format!("{case} {rule}"), f, g);
        }
        assert!(
            (fast.loglik - fast_a.loglik).abs() > 1e-9,
            "{case}: adaptation moved nothing"
        );
    }
}

/// Monte Carlo integration's nodes are no product grid, so the long data's
/// FMA-GoM runs the general loop with the rows' likelihoods in probability
/// space (the items' probabilities from their kernel, their logs computed
/// only for the rows too small for the products: `ensure_logs`). Against
/// the general loop in log space at the three points (the sharp one puts
/// rows below the products' range), on the plain and an adapted grid: the
/// same log-likelihood, gradient, information, meat, posteriors and
/// moments; and the same log-likelihood evaluated alone.
#[test]
fn monte_carlo_product_form_equals_the_log_form() {
    use mlmix_integrate::{Backend, CpuBackend, Grid, Method, Want};
    let (ev, points, _) = shortcut_points(false);
    let grid = Grid::new(Method::MonteCarlo, 200, ev.plan.dims);
    let new = || CpuBackend::new(ev.plan.clone(), ev.data.clone(), grid.clone(), None).unwrap();
    assert!(!new().blocked() && !new().moment_form());
    for (case, phi) in &points {
        let fast = new().evaluate(phi, EVERYTHING).unwrap();
        let logs = new().general_loop().evaluate(phi, EVERYTHING).unwrap();
        let (adapt, _) = mlmix_integrate::Adaptation::from_moments(
            &grid,
            ev.plan.n_between(),
            &logs.moments,
            &logs.junctions,
        );
        let fast_a = new()
            .evaluate_adapted(phi, EVERYTHING, Some(&adapt))
            .unwrap();
        let logs_a = new()
            .general_loop()
            .evaluate_adapted(phi, EVERYTHING, Some(&adapt))
            .unwrap();
        for (rule, f, g) in [("plain", &fast, &logs), ("adapted", &fast_a, &logs_a)] {
            same_evaluations(&format!("{case} {rule}"), f, g);
        }
        // the log-likelihood alone (no posteriors: the rows' logs for the
        // running product's sake only)
        let ll = new().evaluate(phi, Want::LL).unwrap();
        close(
            &format!("{case} loglik alone"),
            &[ll.loglik],
            &[logs.loglik],
        );
    }
}

/// The moment form (class logits without person-level covariates: the
/// integral over them through moments every person shares) against the
/// blocked loop and the general loop, at the same three points of the
/// 3-class FMA-GoM without the covariate: the same log-likelihood,
/// gradient, information, posteriors and cluster log-likelihoods, on the
/// plain grid and on one adapted in the factor; posterior moments of the
/// factor the same, those of the class logits the standard normal's (the
/// moment form keeps them on their plain nodes). The MLR meat the same
/// too: the outer terms' cluster scores from the rows' weights, the inner
/// terms' from the shared moments' derivatives. Against the
/// general loop the second sweep's results agree to what it skips: passes
/// of posterior below `NEGLIGIBLE_PASS` in every person of a chunk, at
/// most 729 × 1e-10 of a person's posterior mass (the moment form and the
/// blocked loop skip whole runs or blocks, which hold no more).
#[test]
fn the_moment_form_equals_the_blocked_and_general_loops() {
    use mlmix_integrate::{Backend, CpuBackend, Grid, Method, Want};
    let (ev, points, _) = shortcut_points(false);
    // 9 points: 81 inner nodes per run, where the moment form pays
    let grid = Grid::new(Method::GaussHermite, 9, ev.plan.dims)
        .nested(&mlmix_integrate::nesting_order(&ev.plan));
    let new = || CpuBackend::new(ev.plan.clone(), ev.data.clone(), grid.clone(), None).unwrap();
    assert!(new().moment_form() && new().blocked());
    assert!(!new().without_moment_form().moment_form());
    let dims = ev.plan.dims;
    let outer = mlmix_integrate::nesting_order(&ev.plan)[0];
    let em = Want {
        meat: false,
        ..EVERYTHING
    };
    for (case, phi) in &points {
        let m = new().evaluate(phi, em).unwrap();
        let (adapt, failed) = mlmix_integrate::Adaptation::from_moments(
            &grid,
            ev.plan.n_between(),
            &m.moments,
            &m.junctions,
        );
        assert_eq!(failed, 0, "{case}");
        for (rule, a) in [("plain", None), ("adapted", Some(&adapt))] {
            let at = |what: &str| format!("{case} {rule} {what}");
            let m = new().evaluate_adapted(phi, em, a).unwrap();
            let b = new()
                .without_moment_form()
                .evaluate_adapted(phi, em, a)
                .unwrap();
            let g = new().general_loop().evaluate_adapted(phi, em, a).unwrap();
            let skipped = grid.n_nodes() as f64 * mlmix_integrate::NEGLIGIBLE_PASS;
            for (other, o, tol) in [("blocked", &b, 1e-10), ("general", &g, skipped)] {
                let at = |what: &str| at(&format!("{what} vs {other}"));
                close(&at("loglik"), &[m.loglik], &[o.loglik]);
                close(&at("cluster loglik"), &m.cluster_loglik, &o.cluster_loglik);
                close_to(tol, &at("gradient"), &m.gradient, &o.gradient);
                close_to(tol, &at("information"), &m.information, &o.information);
                close_to(tol, &at("posteriors"), &m.posteriors, &o.posteriors);
                // per person: mass, the factor's mean and second moment
                let per = 1 + dims + dims * dims;
                let pick = |x: &[f64]| -> Vec<f64> {
                    x.chunks_exact(per)
                        .flat_map(|u| [u[0], u[1 + outer], u[1 + dims + outer * dims + outer]])
                        .collect()
                };
                close_to(tol, &at("moments"), &pick(&m.moments), &pick(&o.moments));
            }
            for u in m.moments.chunks_exact(1 + dims + dims * dims) {
                for d in (0..dims).filter(|&d| d != outer) {
                    assert_eq!(u[1 + d], 0.0, "{case} {rule}: inner mean");
                    for e in 0..dims {
                        let want = if d == e { 1.0 } else { 0.0 };
                        assert_eq!(u[1 + dims + d * dims + e], want, "{case} {rule}");
                    }
                }
            }
            assert!(m.loglik.is_finite() && m.gradient.iter().any(|g| g.abs() > 1e-3));
            let full = new().evaluate_adapted(phi, EVERYTHING, a).unwrap();
            let full_b = new()
                .without_moment_form()
                .evaluate_adapted(phi, EVERYTHING, a)
                .unwrap();
            close(&at("meat"), &full.meat, &full_b.meat);
            close(&at("loglik with the meat"), &[full.loglik], &[m.loglik]);
        }
    }
}

/// A GoM without a factor has one run in the moment form (no outer
/// dimension), so every cluster's run has posterior 1 and its densest run
/// is its only one; its items read no integration dimension, so their
/// rows' coefficients come from their distinct rows (`CoefTable`). The
/// moment form against the blocked loop at the three points (moderate,
/// sharp, wide), for everything an evaluation computes, for the gradient
/// and for the log-likelihood alone (the sweep without its reverse).
#[test]
fn a_one_run_moment_form_equals_the_blocked_loop() {
    use mlmix_integrate::{Backend, CpuBackend, Grid, Method, Want};
    let (_scratch, loaded) = shortcut_model(false, false);
    let (ev, points, _) = points_of(&loaded, 2);
    let grid = Grid::new(Method::GaussHermite, 9, ev.plan.dims)
        .nested(&mlmix_integrate::nesting_order(&ev.plan));
    let new = || CpuBackend::new(ev.plan.clone(), ev.data.clone(), grid.clone(), None).unwrap();
    assert!(new().moment_form());
    assert_eq!(new().moment_runs(), Some((1, 3)));
    assert!(new().coefficients_by_distinct_rows());
    assert!(!new().without_moment_form().coefficients_by_distinct_rows());
    for (case, phi) in &points {
        for want in [EVERYTHING, Want::LL, Want::GRADIENT] {
            let at = |what: &str| format!("{case} {want:?} {what}");
            let m = new().evaluate(phi, want).unwrap();
            let b = new().without_moment_form().evaluate(phi, want).unwrap();
            same_but_moments(&format!("{case} {want:?}"), &m, &b);
            // each person's posterior mass (the moments' first entry; the
            // moment form reports the inner dimensions as standard normal)
            let per = 1 + ev.plan.dims * (1 + ev.plan.dims);
            let mass = |x: &[f64]| -> Vec<f64> { x.chunks_exact(per).map(|u| u[0]).collect() };
            close(&at("mass"), &mass(&m.moments), &mass(&b.moments));
            assert!(m.loglik.is_finite(), "{}", at(""));
        }
        let m = new().evaluate(phi, EVERYTHING).unwrap();
        assert!(m.gradient.iter().any(|g| g.abs() > 1e-3), "{case}");
        assert!(!m.meat.is_empty() && !m.posteriors.is_empty(), "{case}");
    }
}

/// A backend lends its chunks workspaces that earlier evaluations used
/// (`CpuBackend::lend`): what it computes must not depend on what it
/// computed before. One backend evaluates the three points of the
/// FMA-GoM in turn, asking for different things on the plain and an
/// adapted grid, in the moment form and the blocked loop; each result is
/// bit for bit that of a backend that evaluates nothing else.
#[test]
fn an_evaluation_does_not_depend_on_the_ones_before() {
    use mlmix_integrate::{Backend, CpuBackend, Grid, Method, Want};
    let (ev, points, _) = shortcut_points(false);
    let grid = Grid::new(Method::GaussHermite, 9, ev.plan.dims)
        .nested(&mlmix_integrate::nesting_order(&ev.plan));
    let new = || CpuBackend::new(ev.plan.clone(), ev.data.clone(), grid.clone(), None).unwrap();
    let m = new().evaluate(&points[0].1, EVERYTHING).unwrap();
    let (adapt, _) = mlmix_integrate::Adaptation::from_moments(
        &grid,
        ev.plan.n_between(),
        &m.moments,
        &m.junctions,
    );
    let wants = [EVERYTHING, Want::LL, Want::GRADIENT, Want::EM, EVERYTHING];
    for (form, used) in [
        ("moment form", new()),
        ("blocked", new().without_moment_form()),
    ] {
        let fresh = |phi: &[f64], want, a| {
            let b = new();
            let b = if form == "blocked" {
                b.without_moment_form()
            } else {
                b
            };
            b.evaluate_adapted(phi, want, a).unwrap()
        };
        for (i, ((case, phi), want)) in points.iter().cycle().zip(wants).enumerate() {
            let a = (i % 2 == 1).then_some(&adapt);
            let got = used.evaluate_adapted(phi, want, a).unwrap();
            let alone = fresh(phi, want, a);
            let at = format!("{form}, evaluation {i} ({case})");
            for (what, x, y) in [
                ("loglik", &vec![got.loglik], &vec![alone.loglik]),
                ("gradient", &got.gradient, &alone.gradient),
                ("information", &got.information, &alone.information),
                ("meat", &got.meat, &alone.meat),
                ("posteriors", &got.posteriors, &alone.posteriors),
            ] {
                assert_eq!(x.len(), y.len(), "{at}: {what} lengths");
                if let Some(k) = (0..x.len()).find(|&k| x[k].to_bits() != y[k].to_bits()) {
                    panic!("{at}: {what}[{k}]: {} after others, {} alone", x[k], y[k]);
                }
            }
        }
    }
}

/// The FMA-GoM with class-specific loadings (eq 38-41: β_qc = τ_qc + λ_qc
/// η, λ varying over the item's class), all parameters fixed: its
/// log-likelihood at the default integration equals a two-dimensional
/// integral written here apart from the engine (1e-6, as the 2-class GoM
/// above; measured 3e-10), and the same loadings
/// written once in %OVERALL% give the same log-likelihood as written in
/// each class (1e-9).
#[test]
fn fma_gom_class_specific_loadings_match_a_direct_integral() {
    let (mu, var) = (0.3f64, 2.0f64);
    let tau = |c: usize, q: usize| {
        let q = q as f64;
        if c == 0 {
            1.5 - 0.4 * q
        } else {
            -1.5 + 0.4 * q
        }
    };
    let lambda = [1.4, 0.4];
    let mut sim = Sim::new(4_141);
    let rows: Vec<Vec<f64>> = (0..300)
        .map(|_| {
            let pi = expit(mu + var.sqrt() * sim.normal());
            let eta = sim.normal();
            (0..ITEMS)
                .map(|q| {
                    let c = usize::from(sim.uniform() >= pi);
                    f64::from(sim.uniform() < expit(tau(c, q) + lambda[c] * eta))
                })
                .collect()
        })
        .collect();
    let scratch = Scratch::new("fma_gom_loadings");
    scratch.write("wide.dat", &free_format(&rows, "-99"));
    let slopes: Vec<String> = (1..=ITEMS).map(|i| format!("s{i} | u ON d{i};")).collect();
    let dummies: Vec<String> = (1..=ITEMS).map(|i| format!("d{i} = 0;")).collect();
    let ifs: Vec<String> = (1..=ITEMS)
        .map(|i| format!("IF (item EQ {}) THEN d{i} = 1;", i - 1))
        .collect();
    let means = |c: usize| -> String {
        (0..ITEMS)
            .map(|q| format!("s{}@{}", q + 1, tau(c, q)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let input = |overall: &str, class: [&str; 2]| {
        format!(
            "DATA: FILE = wide.dat;\n\
             DATA WIDETOLONG: WIDE = u1-u6; LONG = u; IDVARIABLE = person; REPETITION = item;\n\
             VARIABLE: NAMES = u1-u6; USEVARIABLES = u d1-d6;\n\
             CATEGORICAL = u; CLASSES = c(2); CLUSTER = person; WITHIN = u d1-d6;\n\
             DEFINE: {}\n{}\n\
             ANALYSIS: TYPE = TWOLEVEL MIXTURE; STARTS = 0;\n\
             MODEL: %WITHIN%\n%OVERALL%\n{}\n[u$1@0];\n\
             %BETWEEN%\n%OVERALL%\nf@1; s1-s6@0; c#1@{var}; [c#1@{mu}];\n{overall}\n\
             %c#1%\n[{}];\n{}\n%c#2%\n[{}];\n{}\n",
            dummies.join(" "),
            ifs.join(" "),
            slopes.join("\n"),
            means(0),
            class[0],
            means(1),
            class[1],
        )
    };
    let by = |l: f64| format!("f BY s1-s6@{l};");
    let (_, fit) = fit_text(
        &scratch,
        "specific.inp",
        &input(&by(1.0), [&by(lambda[0]), &by(lambda[1])]),
    )
    .unwrap();
    assert_eq!(fit.free_parameters, 0);
    // the integral: per person ∫∫ Π_q [π(α) P(u_q | 1, η) + (1 − π(α))
    // P(u_q | 2, η)] φ(α; μ, σ²) φ(η) dα dη, trapezoid on ±9 sd with 721
    // points each
    let n = 721;
    let rule: Vec<(f64, f64)> = (0..n)
        .map(|k| {
            let z = -9.0 + 18.0 * k as f64 / (n - 1) as f64;
            let end = if k == 0 || k == n - 1 { 0.5 } else { 1.0 };
            let w = end * (18.0 / (n - 1) as f64) * (-0.5 * z * z).exp()
                / (2.0 * std::f64::consts::PI).sqrt();
            (z, w)
        })
        .collect();
    let pis: Vec<f64> = rule
        .iter()
        .map(|&(z, _)| expit(mu + var.sqrt() * z))
        .collect();
    let exact: f64 = rows
        .iter()
        .map(|u| {
            let mut like = 0.0;
            for &(eta, we) in &rule {
                let p: Vec<[f64; 2]> = (0..ITEMS)
                    .map(|q| {
                        let pc = |c: usize| {
                            let p1 = expit(tau(c, q) + lambda[c] * eta);
                            if u[q] == 1.0 { p1 } else { 1.0 - p1 }
                        };
                        [pc(0), pc(1)]
                    })
                    .collect();
                for (&pi, &(_, wa)) in pis.iter().zip(&rule) {
                    let prod: f64 = p.iter().map(|x| pi * x[0] + (1.0 - pi) * x[1]).product();
                    like += we * wa * prod;
                }
            }
            like.ln()
        })
        .sum();
    let d = (exact - fit.loglikelihood).abs();
    println!(
        "FMA-GoM, class-specific loadings: engine {}, integral {exact}, difference {d:e}",
        fit.loglikelihood
    );
    assert!(d < 1e-6, "engine {} vs integral {exact}", fit.loglikelihood);
    // with the random logit free, its starting values come from the FMA:
    // the class variable on the between level, the factor kept
    let free_logit =
        input(&by(1.0), ["", ""]).replace(&format!("c#1@{var}; [c#1@{mu}];"), "c#1; [c#1];");
    let loaded = mlmix_tests::load(&scratch, "free.inp", &free_logit);
    let nested = mlmix::nested_start::companion(&loaded.model).expect("an FMA-GoM has an FMA");
    assert_eq!(nested.kind, "factor mixture model");
    // fitted for its starting values on a coarse rule
    assert_eq!(loaded.model.latent.integration.points, 15);
    assert_eq!(
        nested.model.latent.integration.points,
        mlmix::nested_start::COMPANION_POINTS
    );
    // and with its starts' quasi-Newton iterations capped
    assert_eq!(loaded.model.analysis.qn_iterations, 1000);
    assert_eq!(
        nested.model.analysis.qn_iterations,
        mlmix::nested_start::COMPANION_ITERATIONS
    );
    assert_eq!(loaded.model.free.len(), 2);
    assert_eq!(nested.free_map, vec![Some(0), None]);
    // equal loadings: in each class, or once for all
    let (_, each) = fit_text(&scratch, "each.inp", &input(&by(0.8), [&by(0.8), &by(0.8)])).unwrap();
    let (_, once) = fit_text(&scratch, "once.inp", &input(&by(0.8), ["", ""])).unwrap();
    assert!(
        (each.loglikelihood - once.loglikelihood).abs() < 1e-9,
        "{} vs {}",
        each.loglikelihood,
        once.loglikelihood
    );
}

/// ln L of the 2-class GoM with continuous items, written here apart from
/// the engine: per person ∫ Π_i [π(α) N(u_i; m_1i, v_1) + (1 − π(α))
/// N(u_i; m_2i, v_2)] φ(α; μ, σ²) dα, π = expit, by the trapezoid rule on
/// μ ± 14σ with 8,001 points (as [`gom_loglik`]).
fn continuous_gom_loglik(rows: &[Vec<f64>], m: [&[f64]; 2], v: [f64; 2], mu: f64, var: f64) -> f64 {
    let density = |y: f64, m: f64, v: f64| {
        (-0.5 * (y - m) * (y - m) / v).exp() / (2.0 * std::f64::consts::PI * v).sqrt()
    };
    let nodes = mlmix_tests::logit_normal_nodes(mu, var);
    rows.iter()
        .map(|u| {
            let f: Vec<[f64; 2]> = (0..ITEMS)
                .map(|i| [density(u[i], m[0][i], v[0]), density(u[i], m[1][i], v[1])])
                .collect();
            let like: f64 = nodes
                .iter()
                .map(|&(pi, w)| {
                    w * f
                        .iter()
                        .map(|d| pi * d[0] + (1.0 - pi) * d[1])
                        .product::<f64>()
                })
                .sum();
            like.ln()
        })
        .sum()
}

/// Continuous items (the paragraph after the paper's eq 35): with `u`
/// continuous the item dummies give item-specific, class-specific means,
/// and each class has one residual variance. At the engine's estimates its
/// log-likelihood equals the integral above to 1e-6; it is at least the
/// integral at the simulated parameters (the fit is a maximum); and the
/// means are recovered within 4 standard errors.
#[test]
fn continuous_item_gom_matches_the_integral() {
    let means = [
        [1.0, 1.5, 0.5, 2.0, 1.2, 0.8],
        [-1.0, -0.5, 0.0, -1.5, -0.8, 0.2],
    ];
    let (sds, mu0, sd0) = ([0.6, 0.9], -0.2, 1.5);
    let mut sim = Sim::new(93);
    let rows: Vec<Vec<f64>> = (0..500)
        .map(|_| {
            let pi = expit(mu0 + sd0 * sim.normal());
            (0..ITEMS)
                .map(|i| {
                    let c = usize::from(sim.uniform() >= pi);
                    means[c][i] + sds[c] * sim.normal()
                })
                .collect()
        })
        .collect();
    let scratch = Scratch::new("gom-continuous");
    scratch.write("wide.dat", &free_format(&rows, "-99"));
    let input = gom_input("")
        .replace("CATEGORICAL = u; ", "")
        .replace("[u$1@0];", "[u@0];\nu;");
    let (_, fit) = fit_text(&scratch, "gom.inp", &input).unwrap();
    assert!(fit.converged);
    // 12 means, 2 variances, the random logit's mean and variance
    assert_eq!(fit.free_parameters, 16);
    let item = |class: &str, i: usize| estimate(&fit, "U ON", &format!("D{}", i + 1), Some(class));
    let class_means =
        |class: &str| -> Vec<f64> { (0..ITEMS).map(|i| item(class, i).estimate).collect() };
    let var = |class: &str| estimate(&fit, "Residual Variances", "U", Some(class)).estimate;
    let (m1, m2) = (class_means("C#1"), class_means("C#2"));
    let mu = estimate(&fit, "Means", "C#1", None).estimate;
    let sigma2 = estimate(&fit, "Between-Level Variances", "C#1", None).estimate;
    let exact = continuous_gom_loglik(&rows, [&m1, &m2], [var("C#1"), var("C#2")], mu, sigma2);
    let d = (exact - fit.loglikelihood).abs();
    // the simulation's class 1 is the one with the higher means
    let (c1, c2, mu_truth) = if m1[0] > m2[0] {
        ("C#1", "C#2", mu0)
    } else {
        ("C#2", "C#1", -mu0)
    };
    let (t1, t2) = if c1 == "C#1" { (0, 1) } else { (1, 0) };
    let truth = continuous_gom_loglik(
        &rows,
        [&means[t1], &means[t2]],
        [sds[t1] * sds[t1], sds[t2] * sds[t2]],
        mu_truth,
        sd0 * sd0,
    );
    println!(
        "continuous GoM: engine {}, integral {exact}, difference {d:e}; at the truth {truth}",
        fit.loglikelihood
    );
    assert!(
        d < 1e-6,
        "engine {} vs integral {exact} (difference {d:e})",
        fit.loglikelihood
    );
    assert!(
        fit.loglikelihood >= truth,
        "the fit {} is below the truth's {truth}",
        fit.loglikelihood
    );
    for i in 0..ITEMS {
        for (class, m) in [(c1, means[0][i]), (c2, means[1][i])] {
            let e = item(class, i);
            let se = e.se.unwrap_or(f64::NAN);
            println!("item {} {class}: {} ({se}) vs {m}", i + 1, e.estimate);
            assert!(
                (e.estimate - m).abs() < 4.0 * se,
                "item {}: mean {} ({se}) vs {m}",
                i + 1,
                e.estimate
            );
        }
    }
}

/// Two correlated random class logits (the 3-class GoM) are not resolved
/// by the integration at large variances (docs/gom.md, "Random logit
/// variances that run off"): a fit whose variances are beyond
/// `CLASS_LOGIT_VARIANCE_LIMIT` warns, one at moderate variances does not.
#[test]
fn wide_random_class_logits_warn() {
    let rows = simulate(&mut Sim::new(94), 60);
    let scratch = Scratch::new("gom3-wide");
    scratch.write("wide.dat", &free_format(&rows, "-99"));
    let text = |v: &str| {
        gom_input("")
            .replace("CLASSES = c(2)", "CLASSES = c(3)")
            .replace("STARTS = 10 3;", "STARTS = 0;")
            .replace(
                "%BETWEEN%\n%OVERALL%\nc#1;\n",
                &format!(
                    "%c#3%\nu ON d1-d6;\n[u$1@0];\n%BETWEEN%\n%OVERALL%\nc#1@{v} c#2@{v};\nc#1 WITH c#2@0;\n"
                ),
            )
    };
    let warned = |fit: &mlmix::Fit| {
        fit.warnings
            .iter()
            .any(|w| w.contains("random class logit"))
    };
    let (_, wide) = fit_text(&scratch, "wide.inp", &text("100")).unwrap();
    assert!(warned(&wide), "{:?}", wide.warnings);
    let (_, narrow) = fit_text(&scratch, "narrow.inp", &text("2")).unwrap();
    assert!(!warned(&narrow), "{:?}", narrow.warnings);
}

/// A coarse initial stage of random starts (`COARSE_INITIAL_ABOVE`, here
/// lowered to 0) is coarse only in the dimensions an evaluation's cost
/// grows with: the 3-class FMA-GoM of [`shortcut_points`], whose backend
/// takes the moment form, ranks its starts on 7 adapted points of its
/// factor times the model's 17² of its class logits; with the person-level
/// covariate on its class logits (no moment form) on 7³.
#[test]
fn a_coarse_initial_stage_keeps_the_points_of_shared_dimensions() {
    for (covariate, coarse) in [(false, Some(7 * 17 * 17)), (true, Some(343))] {
        let (_scratch, mut loaded) = shortcut_model(covariate, true);
        let a = &mut loaded.model.analysis;
        (a.starts_initial, a.starts_final, a.stiterations) = (2, 1, 1);
        (a.miterations, a.qn_iterations) = (2, 1);
        loaded.model.output.noserror = true;
        let options = mlmix::FitOptions {
            coarse_initial_above: Some(0),
            ..Default::default()
        };
        let fit = mlmix::fit(&loaded, &options, &mlmix::Silent).unwrap();
        assert_eq!(
            fit.starts.coarse_initial_nodes, coarse,
            "covariate {covariate}"
        );
    }
}

/// The moment form's gradient equals central differences of its
/// log-likelihood in every parameter (the random class logits' variances
/// and covariance included), on the plain grid and on one adapted in the
/// factor, at moderate values and with the logits' variances at 10 (the
/// GoM's start from its companion): the comparisons between loops above
/// cannot see an error that every loop shares.
#[test]
fn the_moment_forms_gradient_equals_finite_differences() {
    use mlmix::spec::ParamValue;
    use mlmix_integrate::{Backend, CpuBackend, Grid, Method, Want};
    let (ev, points, params) = shortcut_points(false);
    let grid = Grid::new(Method::GaussHermite, 9, ev.plan.dims)
        .nested(&mlmix_integrate::nesting_order(&ev.plan));
    let be = CpuBackend::new(ev.plan.clone(), ev.data.clone(), grid.clone(), None).unwrap();
    assert!(be.moment_form());
    let mut start = points[0].1.clone();
    for (v, p) in start.iter_mut().zip(&params) {
        if matches!(p.kind, mlmix::spec::ParamKind::RandomVariance { .. })
            && matches!(p.value, ParamValue::Free(_))
        {
            *v = 10.0;
        }
    }
    for (case, phi) in [("moderate", &points[0].1), ("variance 10", &start)] {
        let want = Want {
            moments: true,
            ..Want::EM
        };
        let m = be.evaluate(phi, want).unwrap();
        let (adapt, _) = mlmix_integrate::Adaptation::from_moments(
            &grid,
            ev.plan.n_between(),
            &m.moments,
            &m.junctions,
        );
        for (rule, a) in [("plain", None), ("adapted", Some(&adapt))] {
            let g = be
                .evaluate_adapted(phi, Want::GRADIENT, a)
                .unwrap()
                .gradient;
            for (i, p) in params.iter().enumerate() {
                if !matches!(p.value, ParamValue::Free(_)) {
                    continue;
                }
                let h = 1e-5 * phi[i].abs().max(0.1);
                let ll = |x: f64| {
                    let mut t = phi.clone();
                    t[i] = x;
                    be.evaluate_adapted(&t, Want::LL, a).unwrap().loglik
                };
                let fd = (ll(phi[i] + h) - ll(phi[i] - h)) / (2.0 * h);
                assert!(
                    (g[i] - fd).abs() <= 1e-5 * fd.abs().max(1.0),
                    "{case} {rule}: parameter {i} ({:?}): gradient {} vs differences {fd}",
                    p.kind,
                    g[i]
                );
            }
        }
    }
}
