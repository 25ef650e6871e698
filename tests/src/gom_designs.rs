//! The designs of the paper's Tables 5 and 6 (Sections 7 and 8): the
//! simulated data and the inputs of each model, written as a user writes
//! them (docs/gom.md): wide item data, `DATA WIDETOLONG` to one row per
//! person and item, item dummies from `DEFINE`, and a two-level mixture
//! whose clusters are the persons. The tests (`tests/tests/gom_tables.rs`)
//! and `cargo xtask repro table5 table6` share them.

use mlmix::Fit;

use crate::{Sim, estimate, expit};

/// The wide-to-long part of a GoM input for `items` binary items u1-u<items>
/// in `wide.dat`: `u` by person and item, the item dummies d1-d<items>
/// (DEFINE), `classes` within-level classes, and the ANALYSIS line
/// (`analysis` added to it).
pub fn long_header(items: usize, classes: usize, analysis: &str) -> String {
    let dummies: Vec<String> = (1..=items).map(|i| format!("d{i} = 0;")).collect();
    let ifs: Vec<String> = (1..=items)
        .map(|i| format!("IF (item EQ {}) THEN d{i} = 1;", i - 1))
        .collect();
    format!(
        "DATA: FILE = wide.dat;\n\
         DATA WIDETOLONG: WIDE = u1-u{items}; LONG = u; IDVARIABLE = person; REPETITION = item;\n\
         VARIABLE: NAMES = u1-u{items}; USEVARIABLES = u d1-d{items};\n\
         CATEGORICAL = u; CLASSES = c({classes}); CLUSTER = person; WITHIN = u d1-d{items};\n\
         DEFINE: {}\n{}\n\
         ANALYSIS: TYPE = TWOLEVEL MIXTURE; ALGORITHM = INTEGRATION; {analysis}\n",
        dummies.join(" "),
        ifs.join(" ")
    )
}

/// A K-class GoM (eq 28-34): class-specific item logits (the dummies'
/// slopes, thresholds fixed at 0) and `between` as the between-level model
/// of the random class logits.
pub fn gom_input(items: usize, classes: usize, analysis: &str, between: &str) -> String {
    let mut text = long_header(items, classes, analysis);
    text.push_str("MODEL: %WITHIN%\n%OVERALL%\n");
    for k in 1..=classes {
        text.push_str(&format!("%c#{k}%\nu ON d1-d{items};\n[u$1@0];\n"));
    }
    text.push_str(&format!("%BETWEEN%\n%OVERALL%\n{between}\n"));
    text
}

/// The between-level model of the 2-class GoM: one random class logit.
pub const GOM2: &str = "c#1;";
/// The 3-class GoM of eq 34: two correlated random class logits.
pub const GOM3: &str = "c#1 c#2;\nc#1 WITH c#2;";
/// The restricted 3-class GoM of eq 35 (the paper's 3-class GoM of Table
/// 5): one factor measures the two class logits, whose residual variances
/// are 0.
pub const GOM3_RESTRICTED: &str = "fb BY c#1 c#2;\nc#1-c#2@0;";

/// The K-class LCA of the wide items (class-specific thresholds, Mplus's
/// default for latent class indicators).
pub fn lca_input(items: usize, classes: usize, starts: &str) -> String {
    format!(
        "DATA: FILE = wide.dat;\n\
         VARIABLE: NAMES = u1-u{items}; CATEGORICAL = u1-u{items}; CLASSES = c({classes});\n\
         ANALYSIS: TYPE = MIXTURE; STARTS = {starts};\n"
    )
}

/// The 2-class FMA of eq 36-37 with class-invariant loadings, on the wide
/// items: class-specific thresholds, one factor. `statement` is the
/// factor's statement: `f BY u1-u18*; f@1; [f@0];` is the identified
/// model; `f BY u1-u18;` is what Mplus's defaults make of it (the first
/// loading fixed at 1, the variance free, and the factor mean free in
/// class 1, which class-specific thresholds leave unidentified).
pub fn fma_input(items: usize, analysis: &str, statement: &str) -> String {
    format!(
        "DATA: FILE = wide.dat;\n\
         VARIABLE: NAMES = u1-u{items}; CATEGORICAL = u1-u{items}; CLASSES = c(2);\n\
         ANALYSIS: TYPE = MIXTURE; ALGORITHM = INTEGRATION; {analysis}\n\
         MODEL: %OVERALL%\n{statement}\n\
         %c#1%\n[u1$1-u{items}$1];\n\
         %c#2%\n[u1$1-u{items}$1];\n"
    )
}

/// Starting values of an FMA-GoM: per class the item logits τ_qc, the
/// loadings λ_q, and the mean and variance of the random class logit.
pub struct FmaGomStarts {
    /// Per class, the item logits.
    pub tau: [Vec<f64>; 2],
    /// The loadings.
    pub lambda: Vec<f64>,
    /// The class logit's mean.
    pub mean: f64,
    /// The class logit's variance.
    pub variance: f64,
}

/// The 2-class FMA-GoM of eq 38-41 (docs/gom.md §5): each item's dummy
/// slope is a random slope s_q = τ_qc + λ_q f, f a between-level factor
/// with variance 1, the slopes' residual variances 0 and their means
/// class-specific; and class 1's logit random. With `starts`, the
/// statements carry those starting values.
pub fn fma_gom_input(items: usize, analysis: &str, starts: Option<&FmaGomStarts>) -> String {
    let mut text = long_header(items, 2, analysis);
    text.push_str("MODEL: %WITHIN%\n%OVERALL%\n");
    for i in 1..=items {
        text.push_str(&format!("s{i} | u ON d{i};\n"));
    }
    text.push_str("[u$1@0];\n%BETWEEN%\n%OVERALL%\n");
    match starts {
        None => {
            text.push_str(&format!(
                "f BY s1-s{items}*; f@1;\ns1-s{items}@0;\nc#1;\n\
                 %c#1%\n[s1-s{items}];\n%c#2%\n[s1-s{items}];\n"
            ));
        }
        Some(st) => {
            let loadings: Vec<String> = st
                .lambda
                .iter()
                .enumerate()
                .map(|(i, l)| format!("s{}*{l:.6}", i + 1))
                .collect();
            text.push_str(&format!(
                "f BY {}; f@1;\ns1-s{items}@0;\n[c#1*{:.6}];\nc#1*{:.6};\n",
                loadings.join(" "),
                st.mean,
                st.variance
            ));
            for (k, tau) in st.tau.iter().enumerate() {
                let means: Vec<String> = tau
                    .iter()
                    .enumerate()
                    .map(|(i, t)| format!("s{}*{t:.6}", i + 1))
                    .collect();
                text.push_str(&format!("%c#{}%\n[{}];\n", k + 1, means.join(" ")));
            }
        }
    }
    text
}

/// Items of the Table 5 design (the NLSY antisocial behaviour items: 8
/// property, 5 personal and 4 drug offenses).
pub const ITEMS5: usize = 17;

/// Wide binary data from a 3-class GoM (eq 34) close to the restricted one
/// (eq 35): per person η ~ N(0, 1) and class logits (1.5 η + 0.7 ε₁,
/// −1.5 η + 0.7 ε₂, 0) with ε standard normal (correlation −0.82: exactly
/// −1, the restricted model, would put the GoM of eq 34 on the boundary
/// of its parameter space, where it does not converge), each item's class
/// drawn from their softmax, and P(u = 1 | class) 0.95 on the class's own block
/// of items (property, personal, drug) and 0.05 elsewhere. Many persons
/// are partial members, and the items tell their classes apart well, so
/// the GoM's gain over the LCA is clear (about 16 in logL for 3 classes).
pub fn simulate_table5(sim: &mut Sim, persons: usize) -> Vec<Vec<f64>> {
    let block = |i: usize| match i {
        0..8 => 0,
        8..13 => 1,
        _ => 2,
    };
    (0..persons)
        .map(|_| {
            let eta = sim.normal();
            let a1 = 1.5 * eta + 0.7 * sim.normal();
            let a2 = -1.5 * eta + 0.7 * sim.normal();
            let pi = Sim::softmax(&[a1, a2, 0.0]);
            (0..ITEMS5)
                .map(|i| {
                    let c = sim.categorical(&pi);
                    let p = if block(i) == c { 0.95 } else { 0.05 };
                    f64::from(sim.uniform() < p)
                })
                .collect()
        })
        .collect()
}

/// Items of the Table 6 design (nine inattentiveness and nine
/// hyperactivity items).
pub const ITEMS6: usize = 18;

/// True item logits τ_qc of the Table 6 simulation: class 1 high on the
/// first nine items and low on the others, class 2 the reverse (so a
/// partial member is not a shift along the factor).
pub fn tau6(class: usize, i: usize) -> f64 {
    let high = i < 9;
    let v = 1.4 - 0.1 * (i % 4) as f64;
    if (class == 0) == high { v } else { -v }
}

/// True loadings λ_q of the Table 6 simulation.
pub fn lambda6(i: usize) -> f64 {
    0.7 + 0.1 * (i % 4) as f64
}

/// Wide binary data from the 2-class FMA-GoM (eq 38-41): per person η ~
/// N(0, 1) and a class logit α ~ N(0.3, 4); each item's class is 1 with
/// probability expit(α), and P(u = 1 | class c, η) = expit(τ_qc + λ_q η).
pub fn simulate_table6(sim: &mut Sim, persons: usize) -> Vec<Vec<f64>> {
    (0..persons)
        .map(|_| {
            let eta = sim.normal();
            let pi = expit(0.3 + 2.0 * sim.normal());
            (0..ITEMS6)
                .map(|i| {
                    let c = usize::from(sim.uniform() >= pi);
                    f64::from(sim.uniform() < expit(tau6(c, i) + lambda6(i) * eta))
                })
                .collect()
        })
        .collect()
}

/// Starting values of the FMA-GoM at an FMA's estimates (the paper's
/// advice: start the GoM from the model it nests): thresholds become item
/// logits (τ = −threshold), the loadings stay, and the class logit gets
/// variance `variance` and the mean that keeps class 1's share (by
/// the probit approximation E expit(μ + σz) ≈ expit(μ / sqrt(1 + πσ²/8))).
pub fn starts_from_fma(fma: &Fit, variance: f64) -> FmaGomStarts {
    let tau = |class: &str| -> Vec<f64> {
        (1..=ITEMS6)
            .map(|i| -estimate(fma, "Thresholds", &format!("U{i}$1"), Some(class)).estimate)
            .collect()
    };
    let lambda = (1..=ITEMS6)
        .map(|i| estimate(fma, "F BY", &format!("U{i}"), Some("C#1")).estimate)
        .collect();
    let logit1 = estimate(fma, "Means", "C#1", None).estimate;
    FmaGomStarts {
        tau: [tau("C#1"), tau("C#2")],
        lambda,
        mean: logit1 * (1.0 + std::f64::consts::PI * variance / 8.0).sqrt(),
        variance,
    }
}
