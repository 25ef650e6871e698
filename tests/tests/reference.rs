//! Fits against reference values of established tools on public data
//! (`../shared/reference/README.md`): the maximised log-likelihood to 0.01
//! with the same number of free parameters.

use mlmix_tests::{fit_path, input};

/// Fits `tests/inputs/<name>.inp` and checks log-likelihood and npar.
fn check(name: &str, loglik: f64, npar: usize) {
    let (_, fit) = fit_path(&input(&format!("{name}.inp")));
    assert_eq!(
        fit.free_parameters, npar,
        "{name}: number of free parameters"
    );
    assert!(
        (fit.loglikelihood - loglik).abs() < 0.01,
        "{name}: log-likelihood {} vs reference {loglik}",
        fit.loglikelihood
    );
    assert!(fit.converged, "{name}: not converged");
    assert!(
        fit.starts.best_replicated,
        "{name}: best log-likelihood not replicated"
    );
}

#[test]
fn lca_carcinoma_2_classes() {
    check("carcinoma2", -317.2568, 15);
}

#[test]
fn lca_carcinoma_3_classes() {
    check("carcinoma3", -293.7050, 23);
}

#[test]
fn lca_gss82_2_classes_polytomous() {
    check("gss82_2", -2783.2680, 13);
}

#[test]
fn lca_gss82_3_classes_polytomous() {
    check("gss82_3", -2754.5454, 20);
}

#[test]
fn lca_election_2_classes() {
    check("election2", -17344.9225, 73);
}

#[test]
fn lca_election_3_classes() {
    check("election3", -16714.6591, 110);
}

#[test]
fn lca_lazarsfeld_2_classes() {
    check("lazarsfeld2", -2348.2219, 9);
}

#[test]
fn lca_synthetic_10k() {
    check("synth10k", -60901.8508, 21);
}

#[test]
fn lca_synthetic_100k() {
    check("synth100k", -609339.5794, 21);
}
