//! Growth models (`i s | y1@0 y2@1 ...`): a growth mixture model with
//! continuous outcomes (its growth factors integrated in closed form) and a
//! latent class growth analysis with binary outcomes (growth factor
//! variances at 0: no integration), recovered from data simulated here
//! over replications, each started at the truth with STARTS = 0.

use mlmix_tests::{Sim, Truth, study};

const TIMES: [f64; 4] = [0.0, 1.0, 2.0, 3.0];

#[test]
fn growth_mixture_continuous_outcomes_recovered() {
    // class 1 (40%): starts high and falls; class 2 rises
    let (mi, ms) = ([2.0, 0.0], [-0.5, 1.0]);
    let (vi, vs, cis, theta) = (0.5, 0.1, 0.05, [0.5, 0.4, 0.5, 0.6]);
    let alpha: f64 = (0.4f64 / 0.6).ln();
    let mut truths: Vec<Truth> = vec![
        ("Means", "I", Some("C#1"), mi[0]),
        ("Means", "S", Some("C#1"), ms[0]),
        ("Means", "I", Some("C#2"), mi[1]),
        ("Means", "S", Some("C#2"), ms[1]),
        ("Variances", "I", Some("C#1"), vi),
        ("Variances", "S", Some("C#1"), vs),
        ("I WITH", "S", Some("C#1"), cis),
        ("Means", "C#1", None, alpha),
    ];
    for (t, name) in ["Y1", "Y2", "Y3", "Y4"].into_iter().enumerate() {
        truths.push(("Residual Variances", name, Some("C#1"), theta[t]));
    }
    let model = format!(
        "VARIABLE: NAMES = y1-y4; CLASSES = c(2);\n\
         ANALYSIS: TYPE = MIXTURE; STARTS = 0; ESTIMATOR = ML;\n\
         MODEL: %OVERALL%\n\
         i s | y1@0 y2@1 y3@2 y4@3;\n\
         i*{vi}; s*{vs}; i WITH s*{cis}; y1*{} y2*{} y3*{} y4*{}; [c#1*{alpha}];\n\
         %c#1% [i*{} s*{}];\n\
         %c#2% [i*{} s*{}];\n",
        theta[0], theta[1], theta[2], theta[3], mi[0], ms[0], mi[1], ms[1]
    );
    // the growth factors' Cholesky factor
    let l11 = vi.sqrt();
    let l21 = cis / l11;
    let l22 = (vs - l21 * l21).sqrt();
    study("gmm", 60, 21, &truths, |sim: &mut Sim| {
        let rows = (0..500)
            .map(|_| {
                let k = usize::from(sim.uniform() >= 0.4);
                let (z1, z2) = (sim.normal(), sim.normal());
                let i = mi[k] + l11 * z1;
                let s = ms[k] + l21 * z1 + l22 * z2;
                TIMES
                    .iter()
                    .enumerate()
                    .map(|(t, &x)| i + s * x + theta[t].sqrt() * sim.normal())
                    .collect()
            })
            .collect();
        (rows, model.clone())
    });
}

#[test]
fn latent_class_growth_binary_outcomes_recovered() {
    // P(u_t = 1 | class) = F(i + s t - tau), tau equal over time; the
    // intercept factor's mean is 0 in the last class
    let (mi, ms, tau) = ([1.5, 0.0], [-0.8, 0.6], 0.5);
    let alpha: f64 = (0.45f64 / 0.55).ln();
    let truths: Vec<Truth> = vec![
        ("Means", "I", Some("C#1"), mi[0]),
        ("Means", "S", Some("C#1"), ms[0]),
        ("Means", "S", Some("C#2"), ms[1]),
        ("Thresholds", "U1$1", Some("C#1"), tau),
        ("Means", "C#1", None, alpha),
    ];
    let model = format!(
        "VARIABLE: NAMES = u1-u4; CATEGORICAL = u1-u4; CLASSES = c(2);\n\
         ANALYSIS: TYPE = MIXTURE; STARTS = 0; ESTIMATOR = ML;\n\
         MODEL: %OVERALL%\n\
         i s | u1@0 u2@1 u3@2 u4@3;\n\
         i-s@0; [u1$1-u4$1*{tau}]; [c#1*{alpha}];\n\
         %c#1% [i*{} s*{}];\n\
         %c#2% [s*{}];\n",
        mi[0], ms[0], ms[1]
    );
    study("lcga", 60, 22, &truths, |sim: &mut Sim| {
        let rows = (0..800)
            .map(|_| {
                let k = usize::from(sim.uniform() >= 0.45);
                TIMES
                    .iter()
                    .map(|&x| {
                        let eta = mi[k] + ms[k] * x - tau;
                        f64::from(sim.uniform() < 1.0 / (1.0 + (-eta).exp()))
                    })
                    .collect()
            })
            .collect();
        (rows, model.clone())
    });
}
