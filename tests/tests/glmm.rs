//! Generalised linear mixed models against lme4: the random-intercept
//! logistic and probit regressions of ../shared/reference/README.md on the
//! VerbAgg data (7584 responses of 316 persons), fitted as TYPE = TWOLEVEL
//! with one class and adaptive Gauss-Hermite quadrature with 25 points, as
//! `glmer(..., nAGQ = 25)` does.
//!
//! The reference LLs are lme4 1.1-31's (the README's table). The estimates
//! and standard errors are lme4's optimum polished by Newton steps to a
//! gradient below 5e-8 (lme4's Nelder-Mead stops up to 4e-5 away; the
//! polished values agree with a tighter lme4 run to that precision); the
//! standard errors are the observed information in (beta, variance), which
//! agree with lme4's Hessian-based ones to 4-5 digits. mlmix's threshold is
//! the negated intercept (P(u = 1) = F(x'beta - tau + b)).

use mlmix_tests::fit_path;
use mlmix_tests::input;

/// (section and name in the report, estimate, standard error)
type Row = (&'static str, &'static str, f64, f64);

fn check(file: &str, ll_ref: f64, rows: &[Row]) {
    let (_, fit) = fit_path(&input(file));
    assert!(fit.converged, "{file}: did not converge");
    assert_eq!(fit.free_parameters, 7, "{file}: number of parameters");
    let tl = fit.two_level.as_ref().expect("a two-level fit");
    assert_eq!(tl.clusters, 316);
    assert_eq!(tl.dimensions, 1);
    assert_eq!(tl.points, 25);
    // the bar is 0.01; the fit reaches lme4's optimum far closer
    assert!(
        (fit.loglikelihood - ll_ref).abs() < 1e-3,
        "{file}: LL {} vs lme4 {ll_ref}",
        fit.loglikelihood
    );
    for &(section, name, est, se) in rows {
        let p = fit
            .parameters
            .iter()
            .find(|p| p.section == section && p.name == name)
            .unwrap_or_else(|| panic!("{file}: no parameter {name}"));
        // the same to 3 decimals
        assert!(
            (p.estimate - est).abs() < 5e-4,
            "{file}: {name} = {} vs {est}",
            p.estimate
        );
        let s = p.se.expect("a standard error");
        assert!(
            (s - se).abs() < 2e-3 * se.max(0.1),
            "{file}: SE of {name} = {s} vs {se}"
        );
    }
}

#[test]
fn verbagg_logit_matches_glmer_nagq25() {
    check(
        "verbagg_logit.inp",
        -4180.4294,
        &[
            ("Thresholds", "R2$1", -0.2053532279, 0.33863371),
            ("R2 ON", "ANGER", 0.05491385018, 0.016155597),
            ("R2 ON", "MALE", 0.3086521278, 0.18412723),
            ("R2 ON", "SCOLD", -1.030855362, 0.068429219),
            ("R2 ON", "SHOUT", -1.99524799, 0.073750758),
            ("R2 ON", "SELF", -1.00446416, 0.057236783),
            ("Between-Level Variances", "R2", 1.642958783, 0.16874867),
        ],
    );
}

#[test]
fn verbagg_probit_matches_glmer_nagq25() {
    check(
        "verbagg_probit.inp",
        -4183.9552,
        &[
            ("Thresholds", "R2$1", -0.1279296114, 0.19798674),
            ("R2 ON", "ANGER", 0.03203066638, 0.0094416029),
            ("R2 ON", "MALE", 0.1824195931, 0.10777712),
            ("R2 ON", "SCOLD", -0.6057927325, 0.04014841),
            ("R2 ON", "SHOUT", -1.166838855, 0.041994104),
            ("R2 ON", "SELF", -0.5919581865, 0.033354762),
            ("Between-Level Variances", "R2", 0.5630077544, 0.056406567),
        ],
    );
}

/// Identical rows of a cluster are merged (7584 responses become 2890 rows):
/// the fit on raw rows gives the same log-likelihood, estimates and MLR
/// (cluster-level sandwich) standard errors.
#[test]
fn merging_rows_within_clusters_is_exact() {
    let text = std::fs::read_to_string(input("verbagg_logit.inp"))
        .unwrap()
        .replace(
            "../data/verbagg_glmm.dat",
            &mlmix_tests::data("verbagg_glmm.dat").display().to_string(),
        )
        .replace("ESTIMATOR = ML;", "ESTIMATOR = MLR;")
        .replace("GAUSSHERMITE(25)", "GAUSSHERMITE(9)");
    let scratch = mlmix_tests::Scratch::new("glmm-merge");
    let path = scratch.write("m.inp", &text);
    let loaded = mlmix::spec::load(&path).unwrap();
    let fit = |no_collapse| {
        let o = mlmix::FitOptions {
            no_collapse,
            ..Default::default()
        };
        mlmix::fit(&loaded, &o, &mlmix::Silent).unwrap()
    };
    let (merged, raw) = (fit(false), fit(true));
    assert!(merged.distinct_rows < 3000 && raw.distinct_rows == 7584);
    assert!((merged.loglikelihood - raw.loglikelihood).abs() < 1e-8);
    for (a, b) in merged.parameters.iter().zip(&raw.parameters) {
        assert!((a.estimate - b.estimate).abs() < 1e-6, "{}", a.name);
        let (sa, sb) = (a.se.unwrap(), b.se.unwrap());
        assert!(
            (sa - sb).abs() < 1e-5 * sb,
            "SE of {}: {sa} vs {sb}",
            a.name
        );
    }
}
