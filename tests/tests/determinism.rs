//! Results depend on the seed, never on the number of threads: the same
//! fit in pools of 1, 2 and 3 threads gives bit-identical estimates,
//! standard errors and log-likelihoods.

use mlmix::{Fit, FitOptions, Silent};
use mlmix_tests::input;

fn fit_with_threads(name: &str, threads: usize, options: &FitOptions) -> Fit {
    let loaded = mlmix::spec::load(&input(name)).unwrap();
    let pool = rayon_pool(threads);
    pool.install(|| mlmix::fit(&loaded, options, &Silent).unwrap())
}

fn rayon_pool(threads: usize) -> mlmix_tests::Pool {
    mlmix_tests::Pool::new(threads)
}

fn assert_identical(a: &Fit, b: &Fit, what: &str) {
    assert_eq!(
        a.loglikelihood.to_bits(),
        b.loglikelihood.to_bits(),
        "{what}: log-likelihood"
    );
    for (p, q) in a.parameters.iter().zip(&b.parameters) {
        assert_eq!(
            p.estimate.to_bits(),
            q.estimate.to_bits(),
            "{what}: {} {}",
            p.section,
            p.name
        );
        assert_eq!(
            p.se.map(f64::to_bits),
            q.se.map(f64::to_bits),
            "{what}: se of {} {}",
            p.section,
            p.name
        );
    }
    let la: Vec<u64> = a
        .starts
        .final_logliks
        .iter()
        .map(|s| s.loglikelihood.to_bits())
        .collect();
    let lb: Vec<u64> = b
        .starts
        .final_logliks
        .iter()
        .map(|s| s.loglikelihood.to_bits())
        .collect();
    assert_eq!(la, lb, "{what}: final-stage log-likelihoods");
}

#[test]
fn same_results_for_any_thread_count_on_raw_rows() {
    // 10,000 rows without merging identical ones: 40 chunks of rows
    let options = FitOptions {
        no_collapse: true,
        ..FitOptions::default()
    };
    let one = fit_with_threads("synth10k.inp", 1, &options);
    let two = fit_with_threads("synth10k.inp", 2, &options);
    let three = fit_with_threads("synth10k.inp", 3, &options);
    assert_identical(&one, &two, "1 vs 2 threads");
    assert_identical(&one, &three, "1 vs 3 threads");
}

#[test]
fn same_results_for_any_thread_count_with_many_starts() {
    let options = FitOptions::default();
    let one = fit_with_threads("gss82_3.inp", 1, &options);
    let two = fit_with_threads("gss82_3.inp", 2, &options);
    assert_identical(&one, &two, "1 vs 2 threads");
}

#[test]
fn merging_identical_rows_does_not_change_the_fit() {
    // one deterministic start, so both runs take the same path
    let s = mlmix_tests::Scratch::new("merge");
    let text = format!(
        "DATA: FILE = \"{}\";\n\
         VARIABLE: USEVARIABLES = A-G; CATEGORICAL = A-G; CLASSES = k(2);\n\
         ANALYSIS: TYPE = MIXTURE; STARTS = 0;\n",
        mlmix_tests::data("carcinoma.csv").display()
    );
    let p = s.write("m.inp", &text);
    let loaded = mlmix::spec::load(&p).unwrap();
    let merged = mlmix::fit(&loaded, &FitOptions::default(), &Silent).unwrap();
    let raw = mlmix::fit(
        &loaded,
        &FitOptions {
            no_collapse: true,
            ..FitOptions::default()
        },
        &Silent,
    )
    .unwrap();
    assert!(merged.distinct_rows < raw.distinct_rows);
    // the same optimum: log-likelihood to rounding, estimates and standard
    // errors to 0.1% of a standard error (the convergence precision)
    assert!((merged.loglikelihood - raw.loglikelihood).abs() < 1e-8);
    for (p, q) in merged.parameters.iter().zip(&raw.parameters) {
        let tol = 1e-3 * p.se.unwrap_or(1.0);
        assert!(
            (p.estimate - q.estimate).abs() < tol,
            "{} {}: {} vs {}",
            p.section,
            p.name,
            p.estimate,
            q.estimate
        );
        if let (Some(a), Some(b)) = (p.se, q.se) {
            assert!(
                (a - b).abs() < 1e-3 * a,
                "se {} {}: {a} vs {b}",
                p.section,
                p.name
            );
        }
    }
}
