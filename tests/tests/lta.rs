//! A latent transition model's explained variances (eq 14), effects of the
//! random class logits and averaged transition probabilities
//! (`mlmix::lta`), against simulation of the latent responses, closed
//! forms and the command line.

use mlmix::lta::{self, LOGISTIC_VARIANCE, TransitionDecomposition};
use mlmix_tests::{Scratch, Sim, fit_text, free_format, load};

fn expit(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Two binary items per class variable, `clusters` clusters of `size`:
/// data only so that the model loads (the quantities depend on the
/// parameters alone).
fn filler(scratch: &Scratch, names: usize, clusters: usize, size: usize) {
    let mut sim = Sim::new(1);
    let rows: Vec<Vec<f64>> = (0..clusters * size)
        .map(|r| {
            let mut row: Vec<f64> = (0..names)
                .map(|_| f64::from(u8::from(sim.uniform() < 0.5)))
                .collect();
            row.push((r / size) as f64);
            row
        })
        .collect();
    scratch.write("lta.dat", &free_format(&rows, "-99"));
}

/// The decomposition of a model whose parameters are all fixed (`@`).
fn at_fixed_values(scratch: &Scratch, text: &str) -> TransitionDecomposition {
    let loaded = load(scratch, "lta.inp", text);
    let phi: Vec<f64> = loaded
        .model
        .parameters
        .iter()
        .map(|p| match p.value {
            mlmix::spec::ParamValue::Fixed(v) => v,
            mlmix::spec::ParamValue::Free(_) => panic!("a free parameter"),
        })
        .collect();
    lta::decomposition(&loaded.model, &phi, None, &[]).expect("a latent transition model")
}

/// Population moments of three class variables drawn forwards: alpha1 ~
/// N(m1, v1), alpha2 = mu2 + b21 alpha1 + e2, alpha3 = mu3 + b32 alpha2 +
/// e3; C_t = 1 with probability expit(alpha_t + sum gamma C_s).
struct Truth {
    m1: f64,
    v1: f64,
    mu: [f64; 2],
    b: [f64; 2],
    e: [f64; 2],
    g21: f64,
    g31: f64,
    g32: f64,
}

const TRUTH: Truth = Truth {
    m1: -0.3,
    v1: 1.8,
    mu: [-1.2, 0.4],
    b: [0.6, -0.5],
    e: [0.5, 0.8],
    g21: 3.0,
    g31: 1.0,
    g32: 2.0,
};

fn three_wave_input() -> String {
    let t = &TRUTH;
    format!(
        "DATA: FILE = lta.dat;\n\
         VARIABLE: NAMES = u1 u2 v1 v2 w1 w2 clus; USEVARIABLES = u1-w2;\n\
         CATEGORICAL = u1-w2; WITHIN = u1-w2; CLUSTER = clus;\n\
         CLASSES = c1(2) c2(2) c3(2);\n\
         ANALYSIS: TYPE = TWOLEVEL MIXTURE;\n\
         MODEL: %WITHIN% %OVERALL%\n\
         c2#1 ON c1#1@{g21}; c3#1 ON c1#1@{g31} c2#1@{g32};\n\
         %BETWEEN% %OVERALL%\n\
         [c1#1@{m1}]; c1#1@{v1};\n\
         [c2#1@{mu2}]; c2#1@{e2}; c2#1 ON c1#1@{b21};\n\
         [c3#1@{mu3}]; c3#1@{e3}; c3#1 ON c2#1@{b32};\n\
         MODEL c1: %WITHIN% %c1#1% [u1$1@-2 u2$1@-2]; %c1#2% [u1$1@2 u2$1@2];\n\
         MODEL c2: %WITHIN% %c2#1% [v1$1@-2 v2$1@-2]; %c2#2% [v1$1@2 v2$1@2];\n\
         MODEL c3: %WITHIN% %c3#1% [w1$1@-2 w2$1@-2]; %c3#2% [w1$1@2 w2$1@2];\n",
        g21 = t.g21,
        g31 = t.g31,
        g32 = t.g32,
        m1 = t.m1,
        v1 = t.v1,
        mu2 = t.mu[0],
        e2 = t.e[0],
        b21 = t.b[0],
        mu3 = t.mu[1],
        e3 = t.e[1],
        b32 = t.b[1],
    )
}

/// Simulated sums over `n` draws of the latent responses: for each class
/// variable the variance of eta_t (its logit less the logistic error),
/// P(C_t = 1), and for C2 E[gamma^2 p1 (1 - p1)] and the transitions.
struct Drawn {
    var_eta: [f64; 3],
    p: [f64; 3],
    v2_c2: f64,
    gamma_pq_c2: f64,
    /// P(C2 = 1 | C1 = 1), P(C2 = 1 | C1 = 2)
    c2_given_c1: [f64; 2],
}

fn draw(n: usize) -> Drawn {
    let t = &TRUTH;
    let mut sim = Sim::new(2026);
    let (mut s1, mut s2) = ([0.0; 3], [0.0; 3]);
    let mut ones = [0.0; 3];
    let (mut v2, mut pq) = (0.0, 0.0);
    let mut trans = [[0.0; 2]; 2];
    for _ in 0..n {
        let a1 = t.m1 + t.v1.sqrt() * sim.normal();
        let a2 = t.mu[0] + t.b[0] * a1 + t.e[0].sqrt() * sim.normal();
        let a3 = t.mu[1] + t.b[1] * a2 + t.e[1].sqrt() * sim.normal();
        let p1 = expit(a1);
        let i1 = f64::from(u8::from(sim.uniform() < p1));
        let eta2 = a2 + t.g21 * i1;
        let i2 = f64::from(u8::from(sim.uniform() < expit(eta2)));
        let eta3 = a3 + t.g31 * i1 + t.g32 * i2;
        let i3 = f64::from(u8::from(sim.uniform() < expit(eta3)));
        for (k, (eta, i)) in [(a1, i1), (eta2, i2), (eta3, i3)].into_iter().enumerate() {
            s1[k] += eta;
            s2[k] += eta * eta;
            ones[k] += i;
        }
        v2 += t.g21 * t.g21 * p1 * (1.0 - p1);
        pq += p1 * (1.0 - p1);
        trans[usize::from(i1 == 0.0)][0] += 1.0;
        trans[usize::from(i1 == 0.0)][1] += i2;
    }
    let nf = n as f64;
    Drawn {
        var_eta: std::array::from_fn(|k| s2[k] / nf - (s1[k] / nf).powi(2)),
        p: ones.map(|x| x / nf),
        v2_c2: v2 / nf,
        gamma_pq_c2: t.g21 * pq / nf,
        c2_given_c1: [trans[0][1] / trans[0][0], trans[1][1] / trans[1][0]],
    }
}

#[test]
fn explained_variances_of_a_three_wave_two_level_lta_match_simulated_latent_responses() {
    let s = Scratch::new("lta-three");
    filler(&s, 6, 10, 3);
    let d = at_fixed_values(&s, &three_wave_input());
    let sim = draw(1_000_000);
    let total = |k: usize| sim.var_eta[k] + LOGISTIC_VARIANCE;
    // the simulated variances have relative standard errors of about
    // sqrt(2 / n) = 0.0014; P(C = 1) about 0.0005
    for (k, v) in d.variables.iter().enumerate() {
        let r2 = sim.var_eta[k] / total(k);
        assert!(
            (v.r_square.estimate - r2).abs() < 0.004,
            "{}: R2 {} against simulated {r2}",
            v.variable,
            v.r_square.estimate
        );
        assert!(
            (v.probability.estimate - sim.p[k]).abs() < 0.003,
            "{}: P {} against simulated {}",
            v.variable,
            v.probability.estimate,
            sim.p[k]
        );
    }
    let t = &TRUTH;
    // C1: all of R2 is its own random logit, eq 20's ICC
    let c1 = &d.variables[0];
    let icc = t.v1 / (t.v1 + LOGISTIC_VARIANCE);
    assert!((c1.own_random_logit.estimate - icc).abs() < 1e-12);
    assert!(c1.earlier_classes.is_none() && c1.parents_alone.is_none());
    // C2 and C3: the own logit's share is its residual variance given the
    // earlier logits; C2's earlier classes' share is E[g^2 p (1 - p)]
    for (k, e) in [(1, t.e[0]), (2, t.e[1])] {
        let v = &d.variables[k];
        // Var(C*) = (pi^2/3) / (1 - R2)
        let own = e * (1.0 - v.r_square.estimate) / LOGISTIC_VARIANCE;
        assert!((v.own_random_logit.estimate - own).abs() < 1e-9, "{k}");
        let shares = v.earlier_random_logits.unwrap().estimate
            + v.earlier_classes.unwrap().estimate
            + v.own_random_logit.estimate;
        assert!((shares - v.r_square.estimate).abs() < 1e-12);
    }
    let c2 = &d.variables[1];
    let v2 = sim.v2_c2 / total(1);
    let got = c2.earlier_classes.unwrap().estimate;
    assert!((got - v2).abs() < 0.003, "V2 share {got} against {v2}");
    // eq 14 for C2 on C1 alone, at the marginal P(C1 = 1)
    let q = c1.probability.estimate * (1.0 - c1.probability.estimate) * t.g21 * t.g21;
    let eq14 = q / (q + LOGISTIC_VARIANCE);
    assert!((c2.parents_alone.unwrap().estimate - eq14).abs() < 1e-9);
    // the effects of alpha1 on C2: b21 through alpha2, g21 E[p1 (1 - p1)]
    // through C1
    let e = d
        .effects
        .iter()
        .find(|e| e.from == "C1#1" && e.to == "C2")
        .unwrap();
    assert!((e.through_random_logits.estimate - t.b[0]).abs() < 1e-12);
    let via = e.through_classes.estimate;
    assert!(
        (via - sim.gamma_pq_c2).abs() < 0.003,
        "{via} against {}",
        sim.gamma_pq_c2
    );
    assert!((e.total.estimate - via - t.b[0]).abs() < 1e-12);
    // alpha1 on C3 through the logits: b32 b21; alpha3 has no later class
    let e13 = d
        .effects
        .iter()
        .find(|e| e.from == "C1#1" && e.to == "C3")
        .unwrap();
    assert!((e13.through_random_logits.estimate - t.b[0] * t.b[1]).abs() < 1e-12);
    assert_eq!(d.effects.len(), 3, "C1 on C2, C3 and C2 on C3");
    // transitions averaged over the clusters
    let table = d.transitions.iter().find(|x| x.variable == "C2").unwrap();
    for (row, want) in table.rows.iter().zip(sim.c2_given_c1) {
        assert!(
            (row.probabilities[0] - want).abs() < 0.003,
            "{:?}: {} against {want}",
            row.from,
            row.probabilities[0]
        );
    }
    let c3 = d.transitions.iter().find(|x| x.variable == "C3").unwrap();
    assert_eq!(c3.given, ["C1", "C2"]);
    assert_eq!(c3.rows.len(), 4);
}

/// A single-level LTA of two binary class variables: `n` rows, four items
/// per wave with time-invariant profiles, P(C1 = 1) = expit(a1), C2's
/// logit a2 + g I(C1 = 1).
fn single_level_data(scratch: &Scratch, n: usize, a1: f64, a2: f64, g: f64) {
    let mut sim = Sim::new(7);
    let tau = [[-1.5, -1.2, -1.8, -1.0], [1.3, 1.5, 1.1, 1.6]];
    let rows: Vec<Vec<f64>> = (0..n)
        .map(|_| {
            let k1 = usize::from(sim.uniform() >= expit(a1));
            let eta2 = a2 + if k1 == 0 { g } else { 0.0 };
            let k2 = usize::from(sim.uniform() >= expit(eta2));
            let mut r: Vec<f64> = tau[k1]
                .iter()
                .map(|t| sim.ordinal_logit(&[*t], 0.0) as f64)
                .collect();
            r.extend(tau[k2].iter().map(|t| sim.ordinal_logit(&[*t], 0.0) as f64));
            r
        })
        .collect();
    scratch.write("lta.dat", &free_format(&rows, "-99"));
}

#[test]
fn a_single_level_lta_has_eq_14_as_its_r_square_with_delta_method_errors() {
    let s = Scratch::new("lta-single");
    single_level_data(&s, 800, 0.3, -1.2, 2.5);
    let text = "DATA: FILE = lta.dat;\n\
        VARIABLE: NAMES = u1-u4 v1-v4; CATEGORICAL = u1-u4 v1-v4; CLASSES = c1(2) c2(2);\n\
        ANALYSIS: TYPE = MIXTURE; STARTS = 0;\n\
        MODEL: %OVERALL% c2 ON c1*2.5; [c1#1*0.3]; [c2#1*-1.2];\n\
        MODEL c1: %c1#1% [u1$1-u4$1*-1] (a1-a4); %c1#2% [u1$1-u4$1*1] (b1-b4);\n\
        MODEL c2: %c2#1% [v1$1-v4$1*-1] (a1-a4); %c2#2% [v1$1-v4$1*1] (b1-b4);\n";
    let (_, fit) = fit_text(&s, "lta.inp", text).unwrap();
    let d = fit.latent_transition.as_ref().expect("an LTA");
    let a1 = mlmix_tests::estimate(&fit, "Means", "C1#1", None);
    let g = mlmix_tests::estimate(&fit, "C2#1 ON", "C1#1", None).estimate;
    let (c1, c2) = (&d.variables[0], &d.variables[1]);
    // no random logits: C1's logit is a constant, C2's R2 is eq 14
    let p = expit(a1.estimate);
    assert!((c1.probability.estimate - p).abs() < 1e-12);
    assert!(c1.r_square.estimate.abs() < 1e-12);
    let q = g * g * p * (1.0 - p);
    let eq14 = q / (q + LOGISTIC_VARIANCE);
    for (what, x) in [
        ("R2", c2.r_square.estimate),
        ("parents alone", c2.parents_alone.unwrap().estimate),
        ("earlier classes", c2.earlier_classes.unwrap().estimate),
    ] {
        assert!((x - eq14).abs() < 1e-9, "{what}: {x} against {eq14}");
    }
    // dP/da1 = p (1 - p): the central differences against the closed form
    let se = c1.probability.se.unwrap();
    let want = p * (1.0 - p) * a1.se.unwrap();
    assert!((se - want).abs() < 1e-6 * want, "{se} against {want}");
    assert!(d.effects.is_empty() && d.transitions.is_empty());
    // the report prints the section and no averaged transitions
    let r = mlmix::report::text(&fit, &mlmix_tests::load(&s, "lta.inp", text).model);
    assert!(r.contains("R-SQUARE OF THE CLASS VARIABLES"));
    assert!(r.contains("Parents alone"));
    // C1's logit is a constant: its probability, no R-square rows
    let section = &r[r.find("R-SQUARE OF THE CLASS VARIABLES").unwrap()..];
    let c1_rows = &section[section.find("\n C1\n").unwrap()..section.find("\n C2\n").unwrap()];
    assert!(c1_rows.contains("P(C1=1)") && !c1_rows.contains("Own logit"));
    assert!(!r.contains("AVERAGED OVER THE RANDOM CLASS LOGITS"));
    assert!(!r.contains("at the means of the random class logits"));
}

#[test]
fn models_outside_the_latent_transition_structure_have_no_decomposition() {
    let s = Scratch::new("lta-none");
    single_level_data(&s, 200, 0.3, -1.2, 2.5);
    let head = "DATA: FILE = lta.dat;\n\
        VARIABLE: NAMES = u1-u4 v1-v4; CATEGORICAL = u1-u4 v1-v4;\n";
    // one class variable; three classes
    for (classes, model) in [
        ("CLASSES = c(2);", "%OVERALL%"),
        (
            "CLASSES = c1(3) c2(2);",
            "%OVERALL% c2 ON c1;\nMODEL c1: %c1#1% [u1$1-u4$1];\nMODEL c2: %c2#1% [v1$1-v4$1];",
        ),
    ] {
        let text =
            format!("{head}{classes}\nANALYSIS: TYPE = MIXTURE; STARTS = 0;\nMODEL: {model}\n");
        let loaded = load(&s, "m.inp", &text);
        let phi = vec![0.0; loaded.model.parameters.len()];
        assert!(
            lta::decomposition(&loaded.model, &phi, None, &[]).is_none(),
            "{classes}"
        );
    }
}

#[test]
fn mlmix_fit_of_the_two_level_lta_example_reports_section_4_and_recovers_its_design() {
    let s = Scratch::new("lta-cli");
    let example = mlmix_tests::tests_dir().join("../examples/twolevel_lta.inp");
    let json = s.path().join("fit.json");
    let out = std::process::Command::new(crate::bad_input::mlmix_exe())
        .args(["fit", "-q", "--json"])
        .arg(&json)
        .arg(&example)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for heading in [
        "R-SQUARE OF THE CLASS VARIABLES",
        "EFFECTS OF THE RANDOM CLASS LOGITS ON LATER CLASS LOGITS",
        "LATENT TRANSITION PROBABILITIES AVERAGED OVER THE RANDOM CLASS LOGITS",
        "at the means of the random class logits",
    ] {
        assert!(stdout.contains(heading), "no {heading}");
    }
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let lt = &doc["latent_transition"];
    // the ICC of the regressed random logit alpha2 is of its total
    // variance, b^2 Var(alpha1) + its residual variance (eq 15)
    let param = |section: &str, name: &str| -> f64 {
        doc["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["section"] == section && p["name"] == name)
            .unwrap_or_else(|| panic!("no {section} {name}"))["estimate"]
            .as_f64()
            .unwrap()
    };
    let total = param("Between Level: C2#1 ON", "C1#1").powi(2)
        * param("Between-Level Variances", "C1#1")
        + param("Between Level: Residual Variances", "C2#1");
    let icc = &doc["two_level"]["icc"][1];
    assert_eq!(icc["variable"], "C2");
    let v = icc["variance"].as_f64().unwrap();
    assert!((v - total).abs() < 1e-9 * total, "{v} against {total}");
    // the design the data were simulated from (the repro's Table 1 design
    // with 100 classrooms of 20): its decomposition, by the same code at
    // the population values
    let loaded = mlmix::spec::load(&example).unwrap();
    let m = &loaded.model;
    let truth = |kind: mlmix::spec::ParamKind| -> f64 {
        use mlmix::spec::ParamKind::*;
        use mlmix::spec::RandomKind;
        match kind {
            ClassIntercept { cv: 0, .. } => -0.2,
            ClassIntercept { .. } => -1.5,
            ClassOnClass { .. } => 4.1,
            RandomRegression { .. } => 0.5,
            RandomVariance { re }
                if m.latent.random[re].kind == (RandomKind::ClassIntercept { cv: 0, class: 0 }) =>
            {
                2.1
            }
            RandomVariance { .. } => 0.5,
            _ => 0.0,
        }
    };
    let phi: Vec<f64> = m.parameters.iter().map(|p| truth(p.kind)).collect();
    let pop = lta::decomposition(m, &phi, None, &[]).unwrap();
    let close = |what: &str, got: &serde_json::Value, want: f64| {
        let est = got["estimate"].as_f64().unwrap();
        let se = got["se"].as_f64().unwrap();
        assert!(
            (est - want).abs() < 3.0 * se,
            "{what}: {est} (SE {se}) against the design's {want}"
        );
    };
    let c2 = &pop.variables[1];
    let v = &lt["variables"][1];
    close("R2 of C2", &v["r_square"], c2.r_square.estimate);
    close(
        "earlier logits",
        &v["earlier_random_logits"],
        c2.earlier_random_logits.unwrap().estimate,
    );
    close(
        "earlier classes",
        &v["earlier_classes"],
        c2.earlier_classes.unwrap().estimate,
    );
    close(
        "own logit",
        &v["own_random_logit"],
        c2.own_random_logit.estimate,
    );
    close(
        "R2 of C1",
        &lt["variables"][0]["r_square"],
        pop.variables[0].r_square.estimate,
    );
    let e = &lt["effects"][0];
    close("alpha1 on C2", &e["total"], pop.effects[0].total.estimate);
}
