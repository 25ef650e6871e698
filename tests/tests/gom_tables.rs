//! The designs of the paper's Tables 5 and 6 (Sections 7 and 8) on
//! simulated data, written as a user writes them (docs/gom.md): wide item
//! data, `DATA WIDETOLONG` to one row per person and item, item dummies
//! from `DEFINE`, and a two-level mixture whose clusters are the persons.
//!
//! Table 5: 2- and 3-class LCA against 2- and 3-class GoM on 17 binary
//! items (7,326 persons in the paper; 1,000 here). Table 6: the
//! 2-class LCA, FMA and FMA-GoM on 18 binary items and 425 persons. The
//! checks: the number of free parameters of each model, and that the model
//! nesting another fits at least as well (GoM over LCA, FMA-GoM over FMA).
//! Every GoM log-likelihood compared is also recomputed at the estimates
//! on a much finer integration grid, so that a comparison cannot be won by
//! integration error that the optimiser climbed.

use mlmix::Fit;
use mlmix::spec::Loaded;
use mlmix_integrate::{Grid, Method};
use mlmix_tests::gom_designs::*;
use mlmix_tests::{Evaluator, Scratch, Sim, estimate, estimates, fit_text, free_format, load};

/// Slack of the log-likelihood comparisons between nested models.
const SLACK: f64 = 1e-6;

/// Largest allowed difference between a GoM fit's log-likelihood and the
/// same parameters integrated on the fine grid of [`fine_loglik`]. It
/// catches a fit that climbed integration error (seen: 5 units, with a
/// class logit's loading running off to 4e5), and is well below the gains
/// compared (16 and more); it is above the error of the default rules for
/// the 3-class GoMs, measured on the Table 5 data: 0.19 for the restricted
/// GoM (adaptive 15-point rule on the factor) and 0.41 for the GoM with
/// correlated logits (adaptive 15 × 15 points). The 2-class GoM's step
/// rule is exact to 1e-5 and the FMA-GoM's rule to 3e-4. The comparisons
/// themselves are also made on the fine-grid values.
const INTEGRATION_TOLERANCE: f64 = 1.0;

// ---------------------------------------------------------------------------
// inputs: mlmix_tests::gom_designs

// ---------------------------------------------------------------------------
// fits and their checks

/// Fits `text` in `scratch`, requiring convergence, and prints its
/// log-likelihood, number of parameters and time.
fn fit(scratch: &Scratch, name: &str, text: &str) -> (Loaded, Fit) {
    let t = std::time::Instant::now();
    let (loaded, fit) = fit_text(scratch, name, text).unwrap_or_else(|e| panic!("{name}: {e}"));
    println!(
        "{name}: logL {:.4}, {} free parameters, converged {}, best replicated {}, {:.1} s",
        fit.loglikelihood,
        fit.free_parameters,
        fit.converged,
        fit.starts.best_replicated,
        t.elapsed().as_secs_f64()
    );
    assert!(fit.converged, "{name} did not converge");
    (loaded, fit)
}

/// The number of free parameters of an input (loaded, not fitted).
fn free_parameters(scratch: &Scratch, name: &str, text: &str) -> usize {
    load(scratch, name, text).model.free.len()
}

/// The free parameters of a loaded model, by name, for messages.
fn parameter_names(loaded: &Loaded) -> String {
    loaded
        .model
        .free
        .iter()
        .map(|f| f.name.clone())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The log-likelihood of a fit's estimates on a fine plain grid: the
/// trapezoid rule with `points` points per dimension on [-5, 5] in the
/// standard normal z of each random effect (the integrand in z is smooth
/// for the variances here, up to about 500, so the rule is accurate far
/// beyond the tolerance it is held to).
fn fine_loglik(loaded: &Loaded, fit: &Fit, points: usize) -> f64 {
    let ev = Evaluator::new(loaded);
    ev.ll(
        &estimates(fit),
        Grid::new(Method::Trapezoid, points, ev.plan.dims),
        0,
    )
}

/// The fit's log-likelihood agrees with [`fine_loglik`], which it returns.
fn check_integration(name: &str, loaded: &Loaded, fit: &Fit, points: usize) -> f64 {
    let fine = fine_loglik(loaded, fit, points);
    let d = (fine - fit.loglikelihood).abs();
    println!(
        "{name}: logL {:.6}, on {points} points per dimension {fine:.6} (difference {d:.2e})",
        fit.loglikelihood
    );
    assert!(
        d < INTEGRATION_TOLERANCE,
        "{name}: logL {} but {fine} on the fine grid (difference {d})",
        fit.loglikelihood
    );
    fine
}

/// `big` fits at least as well as the model `small` it nests: its
/// log-likelihood, as reported and as recomputed on the fine grid
/// (`big_fine`), is at least `small`'s.
fn check_nested(big: (&str, &Fit, f64), small: (&str, &Fit)) {
    let (name, fit, fine) = big;
    println!(
        "{name} {:.4} (fine grid {fine:.4}) against {} {:.4}",
        fit.loglikelihood, small.0, small.1.loglikelihood
    );
    for (what, ll) in [("logL", fit.loglikelihood), ("fine-grid logL", fine)] {
        assert!(
            ll >= small.1.loglikelihood - SLACK,
            "{name} {what} {ll} below {} logL {}",
            small.0,
            small.1.loglikelihood
        );
    }
}

// ---------------------------------------------------------------------------
// Table 5

/// Table 5 gives only log-likelihoods; the numbers of free parameters
/// follow from the models: K classes of 17 item logits and K − 1 class
/// logits for the LCA (35 and 53), one variance more for the 2-class GoM
/// (36), the K(K − 1)/2 = 3 variances and covariance more for the 3-class
/// GoM of eq 34 (56), and for the restricted 3-class GoM of eq 35 that
/// the paper fitted, the factor's loading and variance (one loading fixed
/// at 1), i.e. K − 1 more (55).
#[test]
fn table5_parameter_counts() {
    let scratch = Scratch::new("table5-counts");
    scratch.write(
        "wide.dat",
        &free_format(&simulate_table5(&mut Sim::new(50), 20), "-99"),
    );
    let counts = [
        free_parameters(&scratch, "lca2.inp", &lca_input(ITEMS5, 2, "4 2")),
        free_parameters(&scratch, "lca3.inp", &lca_input(ITEMS5, 3, "4 2")),
        free_parameters(&scratch, "gom2.inp", &gom_input(ITEMS5, 2, "", GOM2)),
        free_parameters(&scratch, "gom3.inp", &gom_input(ITEMS5, 3, "", GOM3)),
        free_parameters(
            &scratch,
            "gom3r.inp",
            &gom_input(ITEMS5, 3, "", GOM3_RESTRICTED),
        ),
    ];
    assert_eq!(counts, [35, 53, 36, 56, 55]);
}

/// The comparison of Table 5 (2- and 3-class LCA against 2- and 3-class
/// GoM, the 3-class one the restricted model of eq 35 as in the paper) on
/// 1,000 simulated persons: every model converges with the paper's number of
/// parameters, and the GoM's log-likelihood is at least the LCA's with
/// the same number of classes (LCA is the GoM's limit as the class logits'
/// variance grows; for the restricted GoM, as the loadings grow).
#[test]
fn table5_gom_fits_at_least_as_well_as_lca() {
    let rows = simulate_table5(&mut Sim::new(51), 1000);
    let scratch = Scratch::new("table5");
    scratch.write("wide.dat", &free_format(&rows, "-99"));
    let (_, lca2) = fit(&scratch, "lca2.inp", &lca_input(ITEMS5, 2, "4 2"));
    let (_, lca3) = fit(&scratch, "lca3.inp", &lca_input(ITEMS5, 3, "4 2"));
    let (l2, gom2) = fit(
        &scratch,
        "gom2.inp",
        &gom_input(ITEMS5, 2, "STARTS = 4 2;", GOM2),
    );
    let (l3, gom3) = fit(
        &scratch,
        "gom3r.inp",
        &gom_input(ITEMS5, 3, "STARTS = 10 3;", GOM3_RESTRICTED),
    );
    let counts = [
        lca2.free_parameters,
        lca3.free_parameters,
        gom2.free_parameters,
        gom3.free_parameters,
    ];
    assert_eq!(counts, [35, 53, 36, 55]);
    let fine2 = check_integration("2-class GoM", &l2, &gom2, 801);
    let fine3 = check_integration("restricted 3-class GoM", &l3, &gom3, 801);
    check_nested(("2-class GoM", &gom2, fine2), ("2-class LCA", &lca2));
    check_nested(
        ("restricted 3-class GoM", &gom3, fine3),
        ("3-class LCA", &lca3),
    );
}

/// The 3-class GoM of eq 34 (two correlated random class logits, two
/// dimensions of integration) against the 3-class LCA on the data of
/// [`table5_gom_fits_at_least_as_well_as_lca`]. Slow (two dimensions of
/// 15 points for 17,000 rows; about 50 s in a release build): `cargo
/// xtask slow` runs it.
#[test]
#[ignore = "slow: run by cargo xtask slow"]
fn table5_three_class_gom_with_correlated_logits() {
    let rows = simulate_table5(&mut Sim::new(51), 1000);
    let scratch = Scratch::new("table5-full");
    scratch.write("wide.dat", &free_format(&rows, "-99"));
    let (_, lca3) = fit(&scratch, "lca3.inp", &lca_input(ITEMS5, 3, "4 2"));
    let (l3, gom3) = fit(
        &scratch,
        "gom3.inp",
        &gom_input(ITEMS5, 3, "STARTS = 4 2;", GOM3),
    );
    assert_eq!((lca3.free_parameters, gom3.free_parameters), (53, 56));
    let fine = check_integration("3-class GoM", &l3, &gom3, 201);
    check_nested(("3-class GoM", &gom3, fine), ("3-class LCA", &lca3));
}

// ---------------------------------------------------------------------------
// Table 6

/// The numbers of parameters of Table 6: LCA 37, FMA 56, FMA-GoM 57 (56 in
/// mlmix, see below: the issue note says so). The
/// 2-class LCA of 18 items has 2 × 18 thresholds and a class logit (37).
/// The FMA as Mplus's defaults make it (`f BY u1-u18;` with class-specific
/// thresholds: 17 free loadings, the factor variance, 36 thresholds, the
/// class logit, and class 1's factor mean, free by default in all classes
/// but the last) has 56, the paper's number; its identified form (`f BY
/// u1-u18*; f@1; [f@0];`) has 55, the same log-likelihood. The FMA-GoM
/// (docs/gom.md §5) has 36 slope means, 18 loadings, and the random class
/// logit's mean and variance: 56 in mlmix, one fewer than the table. The
/// table's 57 is one more than the identified FMA-GoM, as its 56 is for
/// the FMA; if that parameter is, as for the FMA, the mean of the
/// (between-level) factor in class 1, mlmix has no such parameter: `[f];`
/// on the between level, in `%OVERALL%` or a class block, is accepted and
/// leaves the mean fixed at 0 without a word.
#[test]
fn table6_parameter_counts() {
    let scratch = Scratch::new("table6-counts");
    scratch.write(
        "wide.dat",
        &free_format(&simulate_table6(&mut Sim::new(60), 20), "-99"),
    );
    let lca = free_parameters(&scratch, "lca.inp", &lca_input(ITEMS6, 2, "4 2"));
    let fma_default = free_parameters(&scratch, "fma.inp", &fma_input(ITEMS6, "", "f BY u1-u18;"));
    let fma = free_parameters(
        &scratch,
        "fma-identified.inp",
        &fma_input(ITEMS6, "", "f BY u1-u18*; f@1; [f@0];"),
    );
    let text = fma_gom_input(ITEMS6, "", None);
    let fma_gom = load(&scratch, "fma-gom.inp", &text);
    println!("FMA-GoM parameters: {}", parameter_names(&fma_gom));
    assert_eq!((lca, fma_default, fma), (37, 56, 55));
    // the paper's 57 is not reached (see above): mlmix's FMA-GoM is the
    // identified model, 56, and the check is that it stays what the
    // parameters listed above add up to
    assert_eq!(
        fma_gom.model.free.len(),
        56,
        "the FMA-GoM has {} free parameters (Table 6: 57, one of them not identified): {}",
        fma_gom.model.free.len(),
        parameter_names(&fma_gom)
    );
}

/// The comparison of Table 6 on `persons` simulated persons: LCA, FMA
/// (identified form) and FMA-GoM converge with 37, 55 and 56 parameters,
/// the FMA fits at least as well as the LCA (loadings 0) and the FMA-GoM
/// at least as well as the FMA (a class logit variance growing without
/// bound). The FMA-GoM starts from the FMA's estimates when `gom_starts`
/// is `None`, else from random starts (`STARTS = gom_starts`).
fn table6(persons: usize, seed: u64, analysis: &str, gom_starts: Option<&str>) {
    let rows = simulate_table6(&mut Sim::new(seed), persons);
    let scratch = Scratch::new("table6");
    scratch.write("wide.dat", &free_format(&rows, "-99"));
    let (_, lca) = fit(&scratch, "lca.inp", &lca_input(ITEMS6, 2, "4 2"));
    let (_, fma) = fit(
        &scratch,
        "fma.inp",
        &fma_input(
            ITEMS6,
            &format!("STARTS = 4 2; {analysis}"),
            "f BY u1-u18*; f@1; [f@0];",
        ),
    );
    let text = match gom_starts {
        None => fma_gom_input(
            ITEMS6,
            &format!("STARTS = 0; {analysis}"),
            Some(&starts_from_fma(&fma, 20.0)),
        ),
        Some(starts) => fma_gom_input(ITEMS6, &format!("STARTS = {starts}; {analysis}"), None),
    };
    let (lg, gom) = fit(&scratch, "fma-gom.inp", &text);
    let counts = [
        lca.free_parameters,
        fma.free_parameters,
        gom.free_parameters,
    ];
    assert_eq!(counts, [37, 55, 56]);
    println!(
        "class 1 logit: mean {:.3}, variance {:.3}",
        estimate(&gom, "Means", "C#1", None).estimate,
        estimate(&gom, "Between-Level Variances", "C#1", None).estimate
    );
    let fine = check_integration("FMA-GoM", &lg, &gom, 101);
    assert!(
        fma.loglikelihood >= lca.loglikelihood - SLACK,
        "FMA logL {} below LCA logL {}",
        fma.loglikelihood,
        lca.loglikelihood
    );
    check_nested(("FMA-GoM", &gom, fine), ("FMA", &fma));
}

/// [`table6`] on the paper's 425 persons, the factor integrated with 7
/// Gauss–Hermite points (the random class logit keeps its 61-point step
/// rule), the FMA-GoM started from the FMA's estimates (the paper's advice
/// for the GoM: start it from the model it nests).
#[test]
fn table6_fma_gom_fits_at_least_as_well_as_fma() {
    table6(425, 61, "INTEGRATION = GAUSSHERMITE(7);", None);
}

/// [`table6`] with the default integration (15 adaptive points for the
/// factor) and the FMA-GoM from 10 random starts, 3 completed (the paper
/// used 30 and 5), on the data of
/// [`table6_fma_gom_fits_at_least_as_well_as_fma`]. Slow (about 60 s in a
/// release build): `cargo xtask slow` runs it.
#[test]
#[ignore = "slow: run by cargo xtask slow"]
fn table6_fma_gom_from_random_starts() {
    table6(425, 61, "", Some("10 3"));
}
