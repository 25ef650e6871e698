//! Within-level factors of two-level models (`fw BY u1-u5` in `%WITHIN%`),
//! integrated per row inside each cluster's integral: the same likelihood
//! as the single-level factor model when the between level is empty, the
//! exact normal likelihood of a two-level factor model with continuous
//! indicators (computed here from the stacked cluster covariance), and
//! recovery of a two-level 2PL with a within-level and a between-level
//! factor over replications of data simulated here.

use mlmix_tests::{
    Recovered, Scratch, Sim, Truth, estimate, fit_text, free_format, mvn_log_density, replications,
};

/// Binary items with a within-level and a between-level factor: per
/// cluster fb ~ N(0, psi_b), per row fw ~ N(0, psi_w), P(u_k = 1) =
/// expit(lw_k fw + lb_k fb - tau_k). The cluster id is the last column.
struct TwoLevelIrt {
    lw: Vec<f64>,
    lb: Vec<f64>,
    tau: Vec<f64>,
    psi_w: f64,
    psi_b: f64,
}

impl TwoLevelIrt {
    fn simulate(&self, sim: &mut Sim, clusters: usize, size: usize) -> Vec<Vec<f64>> {
        let mut rows = Vec::with_capacity(clusters * size);
        for j in 0..clusters {
            let fb = self.psi_b.sqrt() * sim.normal();
            for _ in 0..size {
                let fw = self.psi_w.sqrt() * sim.normal();
                let mut row: Vec<f64> = (0..self.tau.len())
                    .map(|k| {
                        let eta = self.lw[k] * fw + self.lb[k] * fb - self.tau[k];
                        f64::from(sim.uniform() < 1.0 / (1.0 + (-eta).exp()))
                    })
                    .collect();
                row.push(j as f64);
                rows.push(row);
            }
        }
        rows
    }
}

/// With the between level empty (the items' between-level variances
/// fixed at 0), a two-level model with a within-level factor is the
/// single-level factor model: on the same rule (30 Gauss–Hermite points,
/// not adapted) both give the same log-likelihood and estimates.
#[test]
fn within_factor_alone_is_the_single_level_factor_model() {
    let truth = TwoLevelIrt {
        lw: vec![1.0, 0.8, 1.3, 0.9, 0.7],
        lb: vec![0.0; 5],
        tau: vec![0.3, -0.2, 0.5, 0.0, -0.4],
        psi_w: 1.2,
        psi_b: 0.0,
    };
    let rows = truth.simulate(&mut Sim::new(71), 40, 10);
    let scratch = Scratch::new("within-alone");
    scratch.write("data.dat", &free_format(&rows, "-99"));
    let head = "DATA: FILE = data.dat;\n\
                VARIABLE: NAMES = u1-u5 clus; USEVARIABLES = u1-u5; CATEGORICAL = u1-u5;\n";
    let rule = "ALGORITHM = INTEGRATION; INTEGRATION = GAUSSHERMITE(30); ADAPTIVE = OFF;";
    let single = format!("{head}ANALYSIS: {rule}\nMODEL: f BY u1-u5;\n");
    let two = format!(
        "{head}CLUSTER = clus;\nANALYSIS: TYPE = TWOLEVEL; {rule}\n\
         MODEL: %WITHIN%\nfw BY u1-u5;\n%BETWEEN%\nu1-u5@0;\n"
    );
    let (_, s) = fit_text(&scratch, "single.inp", &single).unwrap();
    let (_, t) = fit_text(&scratch, "two.inp", &two).unwrap();
    assert!(s.converged && t.converged);
    assert_eq!(s.free_parameters, 10);
    assert_eq!(t.free_parameters, 10);
    assert_eq!(t.two_level.as_ref().unwrap().dimensions, 0);
    let d = (s.loglikelihood - t.loglikelihood).abs();
    assert!(
        d < 1e-6,
        "single-level {} vs two-level {} (difference {d:e})",
        s.loglikelihood,
        t.loglikelihood
    );
    for item in ["U2", "U3", "U4", "U5"] {
        let a = estimate(&s, "F BY", item, None).estimate;
        let b = estimate(&t, "FW BY", item, None).estimate;
        assert!((a - b).abs() < 1e-4, "{item}: {a} vs {b}");
    }
    let a = estimate(&s, "Variances", "F", None).estimate;
    let b = estimate(&t, "Variances", "FW", None).estimate;
    assert!((a - b).abs() < 1e-4, "factor variance: {a} vs {b}");
}

/// Continuous indicators of a within-level factor and a between-level
/// factor (the items' between-level residual variances fixed at 0): a
/// cluster's rows stacked are normal with covariance I ⊗ Σ_w + J ⊗ Σ_b,
/// Σ_w = ψ_w λ_w λ_w' + Θ, Σ_b = ψ_b λ_b λ_b'. The engine integrates the
/// within factor in closed form (no per-row rule) and the between factor
/// over the cluster's grid, here 40 adapted Gauss–Hermite points; at its
/// estimates its log-likelihood equals this exact one to 1e-6.
#[test]
fn continuous_two_level_factor_model_matches_the_normal_likelihood() {
    let (lw, lb, theta) = (
        [1.0, 0.8, 1.2, 0.6],
        [1.0, 0.7, 0.9, 1.1],
        [0.5_f64, 0.6, 0.4, 0.7],
    );
    let (psi_w, psi_b, nu) = (0.8, 0.4, [1.0, 0.0, -0.5, 2.0]);
    let mut sim = Sim::new(72);
    let mut rows = Vec::new();
    let (clusters, size) = (40, 5);
    for j in 0..clusters {
        let fb = f64::sqrt(psi_b) * sim.normal();
        for _ in 0..size {
            let fw = f64::sqrt(psi_w) * sim.normal();
            let mut row: Vec<f64> = (0..4)
                .map(|k| nu[k] + lw[k] * fw + lb[k] * fb + theta[k].sqrt() * sim.normal())
                .collect();
            row.push(j as f64);
            rows.push(row);
        }
    }
    let scratch = Scratch::new("within-normal");
    scratch.write("data.dat", &free_format(&rows, "-99"));
    let text = "DATA: FILE = data.dat;\n\
                VARIABLE: NAMES = y1-y4 clus; USEVARIABLES = y1-y4; CLUSTER = clus;\n\
                ANALYSIS: TYPE = TWOLEVEL; INTEGRATION = GAUSSHERMITE(40);\n\
                MODEL: %WITHIN%\nfw BY y1-y4;\n%BETWEEN%\nfb BY y1-y4;\ny1-y4@0;\n";
    let (_, fit) = fit_text(&scratch, "model.inp", text).unwrap();
    assert!(fit.converged);
    assert_eq!(fit.free_parameters, 16);
    let t = fit.two_level.as_ref().unwrap();
    assert_eq!(
        (t.dimensions, t.within_dimensions, t.within_points),
        (1, 0, 0)
    );
    let names = ["Y1", "Y2", "Y3", "Y4"];
    let get = |s: &str, n: &str| estimate(&fit, s, n, None).estimate;
    let l_w: Vec<f64> = names.iter().map(|n| get("FW BY", n)).collect();
    let l_b: Vec<f64> = names
        .iter()
        .map(|n| get("Between Level: FB BY", n))
        .collect();
    let th: Vec<f64> = names.iter().map(|n| get("Variances", n)).collect();
    let mu: Vec<f64> = names
        .iter()
        .map(|n| get("Between Level: Means", n))
        .collect();
    let (pw, pb) = (get("Variances", "FW"), get("Between-Level Variances", "FB"));
    let mut exact = 0.0;
    for j in 0..clusters {
        let n = size * 4;
        let mut v = vec![0.0; n * n];
        let mut r = vec![0.0; n];
        for a in 0..size {
            for k in 0..4 {
                r[a * 4 + k] = rows[j * size + a][k] - mu[k];
                for b in 0..size {
                    for l in 0..4 {
                        let mut c = pb * l_b[k] * l_b[l];
                        if a == b {
                            c += pw * l_w[k] * l_w[l] + if k == l { th[k] } else { 0.0 };
                        }
                        v[(a * 4 + k) * n + b * 4 + l] = c;
                    }
                }
            }
        }
        exact += mvn_log_density(&r, &v);
    }
    let d = (exact - fit.loglikelihood).abs();
    assert!(
        d < 1e-6,
        "engine {} vs exact {exact} (difference {d:e})",
        fit.loglikelihood
    );
}

/// The design of the recovery studies below: 5 binary items, 100
/// clusters of 10 rows, a within-level and a between-level factor.
fn two_level_irt(reps: usize, seed: u64) -> Vec<Recovered> {
    let truth = TwoLevelIrt {
        lw: vec![1.0, 0.8, 1.3, 0.9, 0.7],
        lb: vec![1.0, 1.2, 0.8, 1.1, 0.9],
        tau: vec![0.3, -0.2, 0.5, 0.0, -0.4],
        psi_w: 1.0,
        psi_b: 0.5,
    };
    let names = ["U1", "U2", "U3", "U4", "U5"];
    let thresholds = ["U1$1", "U2$1", "U3$1", "U4$1", "U5$1"];
    let mut truths: Vec<Truth> = vec![
        ("Variances", "FW", None, truth.psi_w),
        ("Between-Level Variances", "FB", None, truth.psi_b),
    ];
    for k in 1..5 {
        truths.push(("FW BY", names[k], None, truth.lw[k]));
        truths.push(("Between Level: FB BY", names[k], None, truth.lb[k]));
    }
    for k in 0..5 {
        truths.push(("Thresholds", thresholds[k], None, truth.tau[k]));
    }
    let model = "VARIABLE: NAMES = u1-u5 clus; USEVARIABLES = u1-u5;\n\
                 CATEGORICAL = u1-u5; CLUSTER = clus;\n\
                 ANALYSIS: TYPE = TWOLEVEL; ESTIMATOR = ML;\n\
                 MODEL: %WITHIN%\nfw BY u1-u5;\n%BETWEEN%\nfb BY u1-u5;\nu1-u5@0;\n";
    replications(
        "within-irt",
        reps,
        seed,
        &truths,
        |sim: &mut Sim| (truth.simulate(sim, 100, 10), model.to_string()),
        |fit| assert_eq!(fit.two_level.as_ref().unwrap().dimensions, 1),
    )
}

/// The two-level 2PL over 20 replications, with the bands of
/// [`Recovered::check_few`]; the 100-replication study below is the
/// proper check.
#[test]
fn within_and_between_factors_recovered_over_20_replications() {
    for rv in two_level_irt(20, 73) {
        rv.check_few();
    }
}

/// The two-level 2PL over 100 replications, checked with
/// [`Recovered::check`].
#[test]
#[ignore = "100 replications; run by cargo xtask slow"]
fn within_and_between_factors_recovered_over_100_replications() {
    for rv in two_level_irt(100, 74) {
        rv.check();
    }
}

/// A two-level factor mixture whose between level is empty (a within-level
/// class variable, the items' between-level variances fixed at 0) is the
/// single-level factor mixture with class-specific thresholds and the
/// factor mean 0 in every class: on the same rule (30 Gauss–Hermite
/// points, not adapted) both reach the same best log-likelihood.
#[test]
fn within_factor_mixture_is_the_single_level_factor_mixture() {
    let tau = [
        [1.5, 1.0, 1.2, 0.8, 1.4, 1.1],
        [-1.2, -0.8, -1.0, -1.5, -0.9, -1.1],
    ];
    let lw = [1.0, 0.8, 1.2, 0.9, 1.1, 0.7];
    let mut sim = Sim::new(75);
    let mut rows = Vec::new();
    for j in 0..50 {
        for _ in 0..10 {
            let c = usize::from(sim.uniform() >= 0.4);
            let f = sim.normal();
            let mut row: Vec<f64> = (0..6)
                .map(|k| {
                    let eta = lw[k] * f - tau[c][k];
                    f64::from(sim.uniform() < 1.0 / (1.0 + (-eta).exp()))
                })
                .collect();
            row.push(j as f64);
            rows.push(row);
        }
    }
    let scratch = Scratch::new("within-mixture");
    scratch.write("data.dat", &free_format(&rows, "-99"));
    let head = "DATA: FILE = data.dat;\n\
                VARIABLE: NAMES = u1-u6 clus; USEVARIABLES = u1-u6; CATEGORICAL = u1-u6;\n\
                CLASSES = c(2);\n";
    let rule = "ALGORITHM = INTEGRATION; INTEGRATION = GAUSSHERMITE(30); ADAPTIVE = OFF;\n\
                STARTS = 10 3;";
    let single = format!(
        "{head}ANALYSIS: TYPE = MIXTURE; {rule}\n\
         MODEL: %OVERALL%\nf BY u1-u6;\n\
         %c#1%\n[u1$1-u6$1]; [f@0];\n%c#2%\n[u1$1-u6$1];\n"
    );
    let two = format!(
        "{head}CLUSTER = clus;\nANALYSIS: TYPE = TWOLEVEL MIXTURE; {rule}\n\
         MODEL: %WITHIN%\n%OVERALL%\nfw BY u1-u6;\n%BETWEEN%\n%OVERALL%\nu1-u6@0;\n"
    );
    let (_, s) = fit_text(&scratch, "single.inp", &single).unwrap();
    let (_, t) = fit_text(&scratch, "two.inp", &two).unwrap();
    assert!(s.converged && t.converged);
    assert_eq!(s.free_parameters, 19);
    assert_eq!(t.free_parameters, 19);
    let d = (s.loglikelihood - t.loglikelihood).abs();
    assert!(
        d < 1e-6,
        "single-level {} vs two-level {} (difference {d:e})",
        s.loglikelihood,
        t.loglikelihood
    );
}
