//! Recovery of known parameters from data simulated here (independently of
//! the engine) over replications: the mean estimate is within Monte Carlo
//! error of the truth, standard errors match the spread of the estimates,
//! and 95% intervals cover the truth (see `Recovered::check`).
//!
//! Each replication starts at the true values with STARTS = 0, as a Monte
//! Carlo study does, so classes keep their labels.

use mlmix_tests::{Truth, study};

#[test]
fn lca_with_a_covariate_on_class_membership() {
    let tau = [
        [-1.5, -1.0, -2.0, -1.2, -0.8, -1.6],
        [1.2, 1.0, 1.8, 0.9, 1.5, 1.1],
    ];
    let (alpha, beta) = (0.3, 0.8);
    let mut truths: Vec<Truth> = Vec::new();
    let names = ["U1$1", "U2$1", "U3$1", "U4$1", "U5$1", "U6$1"];
    for (k, class) in ["C#1", "C#2"].into_iter().enumerate() {
        for (j, n) in names.iter().enumerate() {
            truths.push(("Thresholds", n, Some(class), tau[k][j]));
        }
    }
    truths.push(("Means", "C#1", None, alpha));
    truths.push(("C#1 ON", "X", None, beta));
    let mut model = String::from(
        "VARIABLE: NAMES = u1-u6 x; CATEGORICAL = u1-u6; CLASSES = c(2);\n\
         ANALYSIS: TYPE = MIXTURE; STARTS = 0; ESTIMATOR = MLR;\n\
         MODEL: %OVERALL%\n",
    );
    model.push_str(&format!("c ON x*{beta}; [c#1*{alpha}];\n"));
    for (k, t) in tau.iter().enumerate() {
        model.push_str(&format!("%c#{}%\n", k + 1));
        for (j, v) in t.iter().enumerate() {
            model.push_str(&format!("[u{}$1*{v}];\n", j + 1));
        }
    }
    study("lca-cov", 100, 11, &truths, |sim| {
        let rows = (0..600)
            .map(|_| {
                let x = sim.normal();
                let p1 = 1.0 / (1.0 + (-(alpha + beta * x)).exp());
                let k = usize::from(sim.uniform() >= p1);
                let mut row: Vec<f64> = tau[k]
                    .iter()
                    .map(|t| sim.ordinal_logit(&[*t], 0.0) as f64)
                    .collect();
                row.push(x);
                row
            })
            .collect();
        (rows, model.clone())
    });
}

#[test]
fn latent_profiles_with_missing_data() {
    let mu = [[0.0, 0.0, 0.0], [2.0, 1.5, -1.5]];
    let var = [1.0, 0.8, 1.2];
    let alpha: f64 = 0.4;
    let p1 = 1.0 / (1.0 + (-alpha).exp());
    let mut truths: Vec<Truth> = Vec::new();
    for (k, class) in ["C#1", "C#2"].into_iter().enumerate() {
        for (j, n) in ["Y1", "Y2", "Y3"].into_iter().enumerate() {
            truths.push(("Means", n, Some(class), mu[k][j]));
        }
    }
    for (j, n) in ["Y1", "Y2", "Y3"].into_iter().enumerate() {
        truths.push(("Variances", n, Some("C#1"), var[j]));
    }
    truths.push(("Means", "C#1", None, alpha));
    let mut model = String::from(
        "VARIABLE: NAMES = y1-y3; CLASSES = c(2); MISSING = ALL(-99);\n\
         ANALYSIS: TYPE = MIXTURE; STARTS = 0;\nMODEL: %OVERALL%\n",
    );
    model.push_str(&format!(
        "[c#1*{alpha}]; y1*{} y2*{} y3*{};\n",
        var[0], var[1], var[2]
    ));
    for (k, m) in mu.iter().enumerate() {
        model.push_str(&format!(
            "%c#{}%\n[y1*{} y2*{} y3*{}];\n",
            k + 1,
            m[0],
            m[1],
            m[2]
        ));
    }
    study("lpa", 100, 12, &truths, |sim| {
        let rows = (0..500)
            .map(|_| {
                let k = usize::from(sim.uniform() >= p1);
                let mut row: Vec<f64> = (0..3)
                    .map(|j| mu[k][j] + var[j].sqrt() * sim.normal())
                    .collect();
                // 10% missing completely at random, never all three
                for v in row.iter_mut().take(2) {
                    if sim.uniform() < 0.1 {
                        *v = f64::NAN;
                    }
                }
                row
            })
            .collect();
        (rows, model.clone())
    });
}

#[test]
fn mixture_regression_with_class_specific_variances() {
    // class 1: y = 1 + 0.5 x + e, var 1; class 2: y = -1 + 2 x + e, var 0.5
    let b = [[1.0, 0.5], [-1.0, 2.0]];
    let var: [f64; 2] = [1.0, 0.5];
    let truths: Vec<Truth> = vec![
        ("Intercepts", "Y", Some("C#1"), b[0][0]),
        ("Y ON", "X", Some("C#1"), b[0][1]),
        ("Residual Variances", "Y", Some("C#1"), var[0]),
        ("Intercepts", "Y", Some("C#2"), b[1][0]),
        ("Y ON", "X", Some("C#2"), b[1][1]),
        ("Residual Variances", "Y", Some("C#2"), var[1]),
        ("Means", "C#1", None, 0.0),
    ];
    let model = format!(
        "VARIABLE: NAMES = y x; CLASSES = c(2);\n\
         ANALYSIS: TYPE = MIXTURE; STARTS = 0; ESTIMATOR = ML;\n\
         MODEL: %OVERALL% y ON x; [c#1*0];\n\
         %c#1% [y*{}]; y ON x*{}; y*{};\n\
         %c#2% [y*{}]; y ON x*{}; y*{};\n",
        b[0][0], b[0][1], var[0], b[1][0], b[1][1], var[1]
    );
    study("mixreg", 100, 13, &truths, |sim| {
        let rows = (0..600)
            .map(|_| {
                let k = usize::from(sim.uniform() >= 0.5);
                let x = sim.normal();
                let y = b[k][0] + b[k][1] * x + var[k].sqrt() * sim.normal();
                vec![y, x]
            })
            .collect();
        (rows, model.clone())
    });
}

#[test]
fn latent_transition_analysis() {
    // time-invariant measurement (labels), c2 ON c1
    let tau = [[-1.5, -1.0, -2.0, -1.2, -1.8], [1.2, 1.5, 1.0, 1.8, 1.3]];
    let (a1, a2, gamma) = (0.4, -1.4, 2.9);
    let mut truths: Vec<Truth> = Vec::new();
    let names = ["U1$1", "U2$1", "U3$1", "U4$1", "U5$1"];
    for (k, class) in ["C1#1", "C1#2"].into_iter().enumerate() {
        for (j, n) in names.iter().enumerate() {
            truths.push(("Thresholds", n, Some(class), tau[k][j]));
        }
    }
    truths.push(("Means", "C1#1", None, a1));
    truths.push(("Means", "C2#1", None, a2));
    truths.push(("C2#1 ON", "C1#1", None, gamma));
    let mut model = String::from(
        "VARIABLE: NAMES = u1-u5 v1-v5; CATEGORICAL = u1-u5 v1-v5; CLASSES = c1(2) c2(2);\n\
         ANALYSIS: TYPE = MIXTURE; STARTS = 0;\nMODEL: %OVERALL%\n",
    );
    model.push_str(&format!("c2 ON c1*{gamma}; [c1#1*{a1}]; [c2#1*{a2}];\n"));
    for (cv, item) in [("c1", "u"), ("c2", "v")] {
        model.push_str(&format!("MODEL {cv}:\n"));
        for (k, t) in tau.iter().enumerate() {
            model.push_str(&format!("%{cv}#{}%\n", k + 1));
            for (j, v) in t.iter().enumerate() {
                model.push_str(&format!(
                    "[{item}{}$1*{v}] (t{}_{});\n",
                    j + 1,
                    k + 1,
                    j + 1
                ));
            }
        }
    }
    study("lta", 100, 14, &truths, |sim| {
        let p1 = 1.0 / (1.0 + (-a1).exp());
        let rows = (0..800)
            .map(|_| {
                let k1 = usize::from(sim.uniform() >= p1);
                let eta2 = a2 + if k1 == 0 { gamma } else { 0.0 };
                let k2 = usize::from(sim.uniform() >= 1.0 / (1.0 + (-eta2).exp()));
                let mut row: Vec<f64> = tau[k1]
                    .iter()
                    .map(|t| sim.ordinal_logit(&[*t], 0.0) as f64)
                    .collect();
                row.extend(tau[k2].iter().map(|t| sim.ordinal_logit(&[*t], 0.0) as f64));
                row
            })
            .collect();
        (rows, model.clone())
    });
}

#[test]
fn ordinal_probit_items_with_continuous_indicators() {
    // 3 ordered items (3 categories, probit) and 2 continuous, 2 classes;
    // every category has at least ~5% probability in each class, so each
    // replication has enough events for the estimates to be near-normal
    let tau = [
        [[-1.0, 0.5], [-0.5, 1.0], [-1.5, 0.0]],
        [[0.3, 1.5], [0.5, 1.6], [-0.2, 1.2]],
    ];
    let mu = [[0.0, 1.0], [1.5, -0.5]];
    let var: [f64; 2] = [1.0, 0.6];
    let mut truths: Vec<Truth> = Vec::new();
    for (k, class) in ["C#1", "C#2"].into_iter().enumerate() {
        for (j, it) in ["U1", "U2", "U3"].into_iter().enumerate() {
            for t in 0..2 {
                let name: &'static str = Box::leak(format!("{it}${}", t + 1).into_boxed_str());
                truths.push(("Thresholds", name, Some(class), tau[k][j][t]));
            }
        }
        truths.push(("Means", "Y1", Some(class), mu[k][0]));
        truths.push(("Means", "Y2", Some(class), mu[k][1]));
    }
    truths.push(("Variances", "Y1", Some("C#1"), var[0]));
    truths.push(("Variances", "Y2", Some("C#1"), var[1]));
    let mut model = String::from(
        "VARIABLE: NAMES = u1-u3 y1 y2; CATEGORICAL = u1-u3; CLASSES = c(2);\n\
         ANALYSIS: TYPE = MIXTURE; STARTS = 0; LINK = PROBIT;\nMODEL: %OVERALL%\n",
    );
    model.push_str(&format!("[c#1*0]; y1*{} y2*{};\n", var[0], var[1]));
    for k in 0..2 {
        model.push_str(&format!("%c#{}%\n", k + 1));
        for j in 0..3 {
            model.push_str(&format!(
                "[u{}$1*{} u{}$2*{}];\n",
                j + 1,
                tau[k][j][0],
                j + 1,
                tau[k][j][1]
            ));
        }
        model.push_str(&format!("[y1*{} y2*{}];\n", mu[k][0], mu[k][1]));
    }
    study("mixed", 100, 15, &truths, |sim| {
        let rows = (0..1000)
            .map(|_| {
                let k = usize::from(sim.uniform() >= 0.5);
                let mut row: Vec<f64> = (0..3)
                    .map(|j| {
                        let ystar = sim.normal();
                        tau[k][j].iter().filter(|t| **t < ystar).count() as f64
                    })
                    .collect();
                row.push(mu[k][0] + var[0].sqrt() * sim.normal());
                row.push(mu[k][1] + var[1].sqrt() * sim.normal());
                row
            })
            .collect();
        (rows, model.clone())
    });
}

#[test]
fn covariance_blocks_and_items_regressed_on_a_covariate() {
    // y1 WITH y2 within class (class-invariant), y1 ON x (class-invariant
    // slope), and a binary item u ON x (logit slope, class-invariant)
    let mu = [[0.0, 0.0], [2.0, -1.5]];
    let (v1, v2, c12) = (1.0_f64, 0.8_f64, 0.4_f64);
    let b_y1 = 0.6;
    let tau = [-1.0, 1.2];
    let b_u = 0.9;
    let truths: Vec<Truth> = vec![
        ("Intercepts", "Y1", Some("C#1"), mu[0][0]),
        ("Means", "Y2", Some("C#1"), mu[0][1]),
        ("Intercepts", "Y1", Some("C#2"), mu[1][0]),
        ("Means", "Y2", Some("C#2"), mu[1][1]),
        ("Y1 ON", "X", Some("C#1"), b_y1),
        ("Y1 WITH", "Y2", Some("C#1"), c12),
        ("Residual Variances", "Y1", Some("C#1"), v1),
        ("Variances", "Y2", Some("C#1"), v2),
        ("Thresholds", "U$1", Some("C#1"), tau[0]),
        ("Thresholds", "U$1", Some("C#2"), tau[1]),
        ("U ON", "X", Some("C#1"), b_u),
        ("Means", "C#1", None, 0.0),
    ];
    let model = format!(
        "VARIABLE: NAMES = y1 y2 u x; CATEGORICAL = u; CLASSES = c(2);\n\
         ANALYSIS: TYPE = MIXTURE; STARTS = 0;\n\
         MODEL: %OVERALL%\n\
         y1 WITH y2*{c12}; y1 ON x*{b_y1}; u ON x*{b_u}; y1*{v1} y2*{v2}; [c#1*0];\n\
         %c#1% [y1*{} y2*{}]; [u$1*{}];\n\
         %c#2% [y1*{} y2*{}]; [u$1*{}];\n",
        mu[0][0], mu[0][1], tau[0], mu[1][0], mu[1][1], tau[1]
    );
    // Cholesky of the within-class covariance
    let l11 = v1.sqrt();
    let l21 = c12 / l11;
    let l22 = (v2 - l21 * l21).sqrt();
    study("block", 100, 16, &truths, |sim| {
        let rows = (0..800)
            .map(|_| {
                let k = usize::from(sim.uniform() >= 0.5);
                let x = sim.normal();
                let (z1, z2) = (sim.normal(), sim.normal());
                let y1 = mu[k][0] + b_y1 * x + l11 * z1;
                let y2 = mu[k][1] + l21 * z1 + l22 * z2;
                let u = sim.ordinal_logit(&[tau[k]], b_u * x) as f64;
                vec![y1, y2, u, x]
            })
            .collect();
        (rows, model.clone())
    });
}
