//! What a user reads: the JSON document's fields, the information criteria,
//! class counts and entropy, SAVEDATA's posterior probabilities, and the
//! report's main sections.

use mlmix_tests::{Scratch, data, fit_path, fit_text, input};

#[test]
fn json_document_has_the_documented_fields() {
    let (_, fit) = fit_path(&input("carcinoma2.inp"));
    let v: serde_json::Value = serde_json::from_str(&mlmix::json(&fit)).unwrap();
    for key in [
        "loglikelihood",
        "free_parameters",
        "aic",
        "bic",
        "abic",
        "entropy",
        "converged",
        "starts",
        "class_proportions",
        "parameters",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["free_parameters"], 15);
    assert!((v["loglikelihood"].as_f64().unwrap() + 317.2568).abs() < 0.01);
    assert_eq!(v["converged"], true);
    assert_eq!(v["starts"]["best_replicated"], true);
    assert_eq!(v["starts"]["final_logliks"].as_array().unwrap().len(), 4);
    let params = v["parameters"].as_array().unwrap();
    assert_eq!(params.len(), 15);
    for p in params {
        assert!(p.get("name").is_some() && p.get("class").is_some());
        assert!(p["estimate"].is_number());
        assert!(p.get("se").is_some());
    }
    let props = v["class_proportions"].as_array().unwrap();
    let total: f64 = props
        .iter()
        .map(|c| c["proportion"].as_f64().unwrap())
        .sum();
    assert!((total - 1.0).abs() < 1e-9);
}

#[test]
fn information_criteria_and_entropy_follow_their_definitions() {
    let (loaded, fit) = fit_path(&input("gss82_2.inp"));
    let n = loaded.data.n_rows() as f64;
    let p = fit.free_parameters as f64;
    let ll = fit.loglikelihood;
    assert!((fit.aic - (-2.0 * ll + 2.0 * p)).abs() < 1e-9);
    assert!((fit.bic - (-2.0 * ll + p * n.ln())).abs() < 1e-9);
    assert!((fit.abic - (-2.0 * ll + p * ((n + 2.0) / 24.0).ln())).abs() < 1e-9);
    // entropy from the saved posteriors
    let h: f64 = fit
        .posteriors
        .iter()
        .map(|r| {
            r.iter()
                .filter(|x| **x > 0.0)
                .map(|x| -x * x.ln())
                .sum::<f64>()
        })
        .sum();
    let e = 1.0 - h / (n * 2f64.ln());
    assert!((fit.entropy.unwrap() - e).abs() < 1e-12);
    // posterior class counts add up to n, most-likely counts too
    let c: f64 = fit.class_proportions.iter().map(|c| c.count).sum();
    let m: f64 = fit
        .class_proportions
        .iter()
        .map(|c| c.most_likely_count)
        .sum();
    assert!((c - n).abs() < 1e-6 && (m - n).abs() < 1e-9);
}

#[test]
fn savedata_writes_posteriors_most_likely_class_and_id() {
    let s = Scratch::new("save");
    let csv = std::fs::read_to_string(data("lazarsfeld.csv")).unwrap();
    // add an id column
    let mut with_id = String::new();
    for (i, line) in csv.lines().enumerate() {
        if i == 0 {
            with_id.push_str(&format!("{line},\"pid\"\n"));
        } else {
            with_id.push_str(&format!("{line},{}\n", 1000 + i));
        }
    }
    s.write("laz.csv", &with_id);
    let text = "DATA: FILE = laz.csv;\n\
        VARIABLE: USEVARIABLES = armyrun-welfare; CATEGORICAL = armyrun-welfare;\n\
        IDVARIABLE = pid; CLASSES = c(2);\n\
        ANALYSIS: TYPE = MIXTURE;\n\
        SAVEDATA: FILE = cprob.dat; SAVE = CPROBABILITIES;\n";
    let (loaded, fit) = fit_text(&s, "m.inp", text).unwrap();
    let mut out = Vec::new();
    mlmix::savedata::write(&loaded.model, &loaded.data, &fit, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1000);
    let cols = mlmix::savedata::columns(&loaded.model);
    assert_eq!(
        cols,
        [
            "ARMYRUN",
            "FAVATT",
            "SQUAREDEAL",
            "WELFARE",
            "PID",
            "CPROB1",
            "CPROB2",
            "C"
        ]
    );
    for (i, l) in lines.iter().enumerate() {
        let f: Vec<&str> = l.split(' ').collect();
        assert_eq!(f.len(), cols.len());
        assert_eq!(f[4], (1001 + i).to_string());
        // items keep their codes from the data (0/1 here)
        assert!(f[..4].iter().all(|x| *x == "0" || *x == "1"), "{l}");
        let p1: f64 = f[5].parse().unwrap();
        let p2: f64 = f[6].parse().unwrap();
        assert!((p1 + p2 - 1.0).abs() < 1e-5);
        let c: usize = f[7].parse().unwrap();
        assert_eq!(c, if p1 >= p2 { 1 } else { 2 });
    }
}

#[test]
fn report_has_the_main_sections() {
    let (loaded, fit) = fit_path(&input("carcinoma2.inp"));
    let r = mlmix::report::text(&fit, &loaded.model);
    for s in [
        "SUMMARY OF ANALYSIS",
        "RANDOM STARTS RESULTS RANKED FROM THE BEST TO THE WORST LOGLIKELIHOOD VALUES",
        "THE BEST LOGLIKELIHOOD VALUE HAS BEEN REPLICATED",
        "THE MODEL ESTIMATION TERMINATED NORMALLY",
        "Number of Free Parameters",
        "H0 Value",
        "Akaike (AIC)",
        "Bayesian (BIC)",
        "Sample-Size Adjusted BIC",
        "FINAL CLASS COUNTS AND PROPORTIONS",
        "MOST LIKELY LATENT CLASS MEMBERSHIP",
        "Entropy",
        "MODEL RESULTS",
        "Est./S.E.",
        "RESULTS IN PROBABILITY SCALE",
    ] {
        assert!(r.contains(s), "report lacks {s}");
    }
}

#[test]
fn lta_reports_transition_probabilities_that_sum_to_one() {
    let s = Scratch::new("lta-out");
    let mut sim = mlmix_tests::Sim::new(3);
    let mut rows = Vec::new();
    for _ in 0..600 {
        let k1 = usize::from(sim.uniform() >= 0.55);
        let p = if k1 == 0 { 0.85 } else { 0.25 };
        let k2 = usize::from(sim.uniform() >= p);
        let tau = [[-1.5, -1.2, -1.8, -1.0], [1.3, 1.5, 1.1, 1.6]];
        let mut r: Vec<f64> = tau[k1]
            .iter()
            .map(|t| sim.ordinal_logit(&[*t], 0.0) as f64)
            .collect();
        r.extend(tau[k2].iter().map(|t| sim.ordinal_logit(&[*t], 0.0) as f64));
        rows.push(r);
    }
    s.write("lta.dat", &mlmix_tests::free_format(&rows, "-99"));
    let text = "DATA: FILE = lta.dat;\n\
        VARIABLE: NAMES = u1-u4 v1-v4; CATEGORICAL = u1-u4 v1-v4; CLASSES = c1(2) c2(2);\n\
        ANALYSIS: TYPE = MIXTURE; STARTS = 20 4;\n\
        MODEL: %OVERALL% c2 ON c1;\n\
        MODEL c1: %c1#1% [u1$1-u4$1] (a1-a4); %c1#2% [u1$1-u4$1] (b1-b4);\n\
        MODEL c2: %c2#1% [v1$1-v4$1] (a1-a4); %c2#2% [v1$1-v4$1] (b1-b4);\n";
    let (loaded, fit) = fit_text(&s, "lta.inp", text).unwrap();
    // 4 + 4 thresholds, 2 class intercepts, 1 transition logit
    assert_eq!(fit.free_parameters, 11);
    assert_eq!(fit.transitions.len(), 1);
    let t = &fit.transitions[0];
    assert_eq!(t.rows.len(), 2);
    for r in &t.rows {
        assert!((r.probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
    // the classes may come out in either order; the stayer probabilities
    // are 0.85 and 0.75 (= 1 - 0.25) in truth
    let stay: Vec<f64> = (0..2).map(|i| t.rows[i].probabilities[i]).collect();
    let mut stay_sorted = stay.clone();
    stay_sorted.sort_by(f64::total_cmp);
    assert!(
        (stay_sorted[0] - 0.75).abs() < 0.1 && (stay_sorted[1] - 0.85).abs() < 0.1,
        "{stay:?}"
    );
    assert_eq!(fit.class_patterns.len(), 4);
    let r = mlmix::report::text(&fit, &loaded.model);
    assert!(r.contains("LATENT TRANSITION PROBABILITIES"));
}

/// Runs `mlmix fit` on a copy of lazarsfeld2.inp with `extra` added to its
/// ANALYSIS command and `args` on the command line; returns the report,
/// the JSON document, standard error and the seconds it took.
fn fit_command(tag: &str, extra: &str, args: &[&str]) -> (String, serde_json::Value, String, f64) {
    fit_command_env(tag, extra, args, &[])
}

/// [`fit_command`] with environment variables set.
fn fit_command_env(
    tag: &str,
    extra: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (String, serde_json::Value, String, f64) {
    let s = Scratch::new(tag);
    let text = std::fs::read_to_string(input("lazarsfeld2.inp"))
        .unwrap()
        .replace(
            "../data/lazarsfeld.csv",
            &data("lazarsfeld.csv").display().to_string(),
        )
        .replace("STARTS = 20 4;", &format!("STARTS = 20 4; {extra}"));
    let inp = s.write("m.inp", &text);
    let exe = crate::bad_input::mlmix_exe(); // built on first use: not timed
    let started = std::time::Instant::now();
    let out = std::process::Command::new(exe)
        .args(["fit", "-q", "--json", "m.json"])
        .args(args)
        .arg(&inp)
        .envs(env.iter().copied())
        .current_dir(s.path())
        .output()
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json = std::fs::read_to_string(s.path().join("m.json")).unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        serde_json::from_str(&json).unwrap(),
        stderr,
        seconds,
    )
}

/// Uncapped, 10000 threads took over a minute on a fit of hundredths of a
/// second; capped, the fit takes its usual time.
const QUICK_SECONDS: f64 = 30.0;

#[test]
fn threads_flag_above_the_processors_is_capped_with_a_warning() {
    let cap = mlmix::fit::available_threads();
    assert!(cap < 10000, "this machine has {cap} processors");
    let (report, json, stderr, seconds) = fit_command("threads", "", &["--threads", "10000"]);
    assert!(seconds < QUICK_SECONDS, "{seconds} s");
    assert!(
        stderr.contains(&format!(
            "--threads 10000 is more than the {cap} processors available; capped at {cap}"
        )),
        "{stderr}"
    );
    assert_eq!(json["backend"], format!("cpu ({cap} threads)"));
    assert!(report.contains(&format!("cpu ({cap} threads)")), "{report}");
    // a request the machine can meet is not capped
    let (_, json, stderr, _) = fit_command("threads1", "", &["--threads", "1"]);
    assert!(!stderr.contains("capped"), "{stderr}");
    assert_eq!(json["backend"], "cpu (1 threads)");
}

#[test]
fn processors_above_the_machine_are_capped_with_a_warning() {
    let cap = mlmix::fit::available_threads();
    assert!(cap < 10000, "this machine has {cap} processors");
    let (report, json, _, seconds) = fit_command("processors", "PROCESSORS = 10000;", &[]);
    assert!(seconds < QUICK_SECONDS, "{seconds} s");
    let warning = format!(
        "PROCESSORS = 10000 is more than the {cap} processors available to this run; it was capped at {cap}"
    );
    assert!(report.contains(&format!("WARNING: {warning}")), "{report}");
    let warnings = json["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str() == Some(warning.as_str())),
        "{warnings:?}"
    );
    assert_eq!(json["backend"], format!("cpu ({cap} threads)"));
    // PROCESSORS = 1 is within reach: no warning
    let (_, json, _, _) = fit_command("processors1", "PROCESSORS = 1;", &[]);
    let warnings = json["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .all(|w| !w.as_str().unwrap().contains("PROCESSORS")),
        "{warnings:?}"
    );
}

#[test]
fn rayon_num_threads_above_the_processors_is_capped_with_a_warning() {
    let cap = mlmix::fit::available_threads();
    assert!(cap < 10000, "this machine has {cap} processors");
    let env = [("RAYON_NUM_THREADS", "10000")];
    let (_, json, stderr, seconds) = fit_command_env("rayon_threads", "", &[], &env);
    assert!(seconds < QUICK_SECONDS, "{seconds} s");
    assert!(
        stderr.contains(&format!(
            "RAYON_NUM_THREADS = 10000 is more than the {cap} processors available; capped at {cap}"
        )),
        "{stderr}"
    );
    assert_eq!(json["backend"], format!("cpu ({cap} threads)"));
    // --threads comes first
    let (_, json, stderr, _) = fit_command_env("rayon_threads1", "", &["--threads", "1"], &env);
    assert!(!stderr.contains("capped"), "{stderr}");
    assert_eq!(json["backend"], "cpu (1 threads)");
}

/// A comment inside TITLE is not part of the title.
#[test]
fn title_leaves_out_comments() {
    let scratch = Scratch::new("title_comment");
    scratch.write("d.dat", "1 0\n0 1\n1 1\n0 0\n");
    let loaded = mlmix_tests::load(
        &scratch,
        "model.inp",
        "TITLE: two lines\n  ! a comment line\n  of title ! and a trailing one\n\
         DATA: FILE = d.dat;\nVARIABLE: NAMES = u1 u2; CATEGORICAL = u1 u2; CLASSES = c(2);\n\
         ANALYSIS: TYPE = MIXTURE;\n",
    );
    assert_eq!(loaded.model.title, "two lines of title");
}
