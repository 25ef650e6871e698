//! Standard errors.
//!
//! - ML: the inverse of the observed information, -d²logL/dθ², computed by
//!   central differences of the analytic gradient (symmetrised).
//! - MLR: the sandwich I⁻¹ M I⁻¹ with M = Σ_j s_j s_j' the outer products of
//!   the cluster scores (White 1980; Mplus's MLR).
//!
//! Parameters held at a bound are treated as fixed. A singular information
//! matrix names the parameter that is not identified: the one with the
//! largest weight in the eigenvector of the smallest eigenvalue of the
//! information scaled to unit diagonal.
//!
//! Identification is judged on the *condition number* of that unit-diagonal
//! information R = D^-1/2 I D^-1/2: its smallest eigenvalue over its largest
//! (Mplus's definition), which does not depend on the scale of the
//! parameters. Two thresholds:
//!
//! - at or below [`CONDITION_LIMIT`] (or negative) the information is taken
//!   as singular and no standard errors are computed;
//! - below [`CONDITION_WARNING`] the standard errors are computed but may
//!   not be trustworthy: [`Covariance::involved`] lists the parameters with
//!   the largest weights in the eigenvector of the smallest eigenvalue,
//!   which the fit names in a warning (Mplus's "THE STANDARD ERRORS OF THE
//!   MODEL PARAMETER ESTIMATES MAY NOT BE TRUSTWORTHY FOR SOME PARAMETERS
//!   ... PROBLEM INVOLVING PARAMETER n").
//!
//! The same scaled condition number of the first-order derivative product
//! (the outer products of the scores, [`score_conditioning`]) below
//! [`SCORE_CONDITION_WARNING`] gives the same warning: that matrix, unlike
//! the observed information, is singular to rounding error wherever the
//! model is not identified, not only at an exact maximum.

use mlmix_integrate::{BackendError, Want};
use nalgebra::{DMatrix, SymmetricEigen};
use rayon::prelude::*;

use crate::estimate::Observer;
use crate::problem::Problem;

/// Smallest eigenvalue of the unit-diagonal information, relative to the
/// largest, below which the model is taken as not identified.
pub const CONDITION_LIMIT: f64 = 1e-10;

/// Condition number of the unit-diagonal information below which the
/// standard errors are computed but flagged as possibly untrustworthy
/// (Mplus's level, about 1e-6).
///
/// The information alone cannot tell a model that is not identified: it is
/// a central difference of the gradient at a solution converged to
/// `CONVERGENCE`, and a direction in which the log-likelihood is exactly
/// flat (a 3-class LCA of 4 binary items) shows as an eigenvalue of either
/// sign anywhere up to 2e-3 of the largest (measured on about 60
/// simulated data sets of 300 to 5000 rows), which
/// [`SCORE_CONDITION_WARNING`] catches.
/// Identified reference fits (the LCAs of carcinoma, gss82, election and
/// lazarsfeld, the flexmix mixture regression, the VerbAgg GLMMs, the
/// simulated 10-item LCAs) have 2.6e-3 or more. Below 1e-6 a combination
/// of the standardised parameters is a thousand times less precise than
/// the best determined one, whatever the cause.
pub const CONDITION_WARNING: f64 = 1e-6;

/// Condition number of the unit-diagonal first-order derivative product
/// (see [`Conditioning`]) below which the standard errors are flagged
/// (Mplus's level). Where the model is not identified this matrix is
/// singular to rounding error: measured 1e-16 to 1e-19 (either sign) for
/// 3-class LCAs of 4 binary items, against 1.3e-3 or more for the identified
/// fits named at [`CONDITION_WARNING`] and for those LCAs where a parameter
/// held at a bound identified the rest.
pub const SCORE_CONDITION_WARNING: f64 = 1e-6;

/// A parameter is named in the warning when its weight in the eigenvector
/// of the smallest eigenvalue is at least this fraction of the largest
/// weight.
const INVOLVED_FRACTION: f64 = 0.5;

/// The covariance of the estimates.
#[derive(Debug, Clone)]
pub struct Covariance {
    /// Over all free parameters; rows and columns of parameters held at a
    /// bound are NaN.
    pub cov: DMatrix<f64>,
    /// Smallest over largest eigenvalue of the scaled information.
    pub condition: f64,
    /// MLR scaling correction factor, tr(I⁻¹ M) / p (1 for ML).
    pub scaling: f64,
    /// When `condition` is below [`CONDITION_WARNING`]: the free parameters
    /// (0-based) with the largest weights in the eigenvector of the
    /// smallest eigenvalue of the scaled information, largest first; empty
    /// otherwise.
    pub involved: Vec<usize>,
}

/// Why standard errors could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SeError {
    /// The information matrix is singular.
    #[error(
        "the information matrix is singular (condition number {condition:e}); parameter {param} may not be identified"
    )]
    NotIdentified {
        /// The free parameter (0-based) most involved.
        param: usize,
        /// Smallest over largest eigenvalue.
        condition: f64,
    },
    /// An evaluation failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// The observed information over the free parameters `free` (indices),
/// by central differences of the analytic gradient; `None` when the
/// observer asks to stop ([`Observer::stop_requested`]) before it is done.
pub fn observed_information(
    problem: &Problem<'_>,
    theta: &[f64],
    free: &[usize],
    observer: &dyn Observer,
) -> Result<Option<DMatrix<f64>>, BackendError> {
    let m = free.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let cols: Vec<Result<Option<Vec<f64>>, BackendError>> = free
        .par_iter()
        .map(|&i| {
            if observer.stop_requested() {
                return Ok(None);
            }
            let h = 1e-5 * theta[i].abs().max(0.1);
            let b = problem.map.bounds[i];
            let mut grads = Vec::with_capacity(2);
            let mut steps = Vec::with_capacity(2);
            for sign in [1.0, -1.0] {
                let mut t = theta.to_vec();
                let mut x = theta[i] + sign * h;
                // stay inside the domain: step the other way, halve if needed
                if x <= b.lo || x >= b.hi {
                    x = theta[i] + sign * h * 0.5;
                }
                t[i] = x;
                let ev = problem.evaluate(&t, Want::GRADIENT)?;
                grads.push(ev.gradient);
                steps.push(x - theta[i]);
            }
            let d = steps[0] - steps[1];
            let col: Vec<f64> = free
                .iter()
                .map(|&j| {
                    let gp = grads[0].get(j).copied().unwrap_or(f64::NAN);
                    let gm = grads[1].get(j).copied().unwrap_or(f64::NAN);
                    -(gp - gm) / d
                })
                .collect();
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            observer.standard_errors(n, m);
            Ok(Some(col))
        })
        .collect();
    let mut info = DMatrix::zeros(m, m);
    for (c, col) in cols.into_iter().enumerate() {
        let Some(col) = col? else {
            return Ok(None);
        };
        for (r, v) in col.into_iter().enumerate() {
            info[(r, c)] = v;
        }
    }
    let sym = (&info + info.transpose()) * 0.5;
    Ok(Some(sym))
}

/// The covariance of the estimates over `free` (indices into the free
/// parameters), from the observed information and, for MLR, the meat.
pub fn covariance(
    n_free: usize,
    free: &[usize],
    info: &DMatrix<f64>,
    meat: Option<&DMatrix<f64>>,
) -> Result<Covariance, SeError> {
    let m = free.len();
    let mut cov = DMatrix::from_element(n_free, n_free, f64::NAN);
    if m == 0 {
        return Ok(Covariance {
            cov,
            condition: 1.0,
            scaling: 1.0,
            involved: Vec::new(),
        });
    }
    // identification: eigenvalues of the unit-diagonal information
    let (condition, weights) = match smallest_direction(info) {
        Ok(d) => d,
        Err(i) => {
            return Err(SeError::NotIdentified {
                param: free[i],
                condition: 0.0,
            });
        }
    };
    let ranked = involved(&weights);
    let most = free[ranked[0]];
    if condition.is_nan() || condition <= CONDITION_LIMIT {
        return Err(SeError::NotIdentified {
            param: most,
            condition,
        });
    }
    let involved = if condition < CONDITION_WARNING {
        ranked.into_iter().map(|k| free[k]).collect()
    } else {
        Vec::new()
    };
    let inv = info
        .clone()
        .cholesky()
        .map(|c| c.inverse())
        .ok_or(SeError::NotIdentified {
            param: most,
            condition,
        })?;
    let (v, scaling) = match meat {
        Some(meat) => {
            let mut mm = DMatrix::zeros(m, m);
            for (a, &i) in free.iter().enumerate() {
                for (b, &j) in free.iter().enumerate() {
                    mm[(a, b)] = meat[(i, j)];
                }
            }
            let scaling = (&inv * &mm).trace() / m as f64;
            (&inv * mm * &inv, scaling)
        }
        None => (inv, 1.0),
    };
    for (a, &i) in free.iter().enumerate() {
        for (b, &j) in free.iter().enumerate() {
            cov[(i, j)] = v[(a, b)];
        }
    }
    Ok(Covariance {
        cov,
        condition,
        scaling,
        involved,
    })
}

/// The conditioning of the first-order derivative product M = Σ_j s_j s_j'
/// (the outer products of the cluster scores, the MLR meat, over all free
/// parameters) restricted to the free parameters `free`, scaled to unit
/// diagonal.
///
/// When the model's distribution does not change along a direction v of
/// the parameters (the model is not identified), every score is orthogonal
/// to v at *every* parameter value, so M is singular to rounding error even
/// where the optimiser stopped short of the ridge of maxima, where the
/// observed information need not be; this is the matrix whose condition
/// Mplus reports in its "NON-POSITIVE DEFINITE FIRST-ORDER DERIVATIVE
/// PRODUCT MATRIX" message. Fewer distinct clusters than parameters make M
/// singular too: such data cannot identify the model either.
#[derive(Debug, Clone, PartialEq)]
pub struct Conditioning {
    /// Smallest over largest eigenvalue (0 when a parameter's scores are
    /// all zero).
    pub condition: f64,
    /// The free parameters (0-based) with the largest weights in the
    /// eigenvector of the smallest eigenvalue, largest first (never empty
    /// when `free` is not).
    pub involved: Vec<usize>,
}

/// The [`Conditioning`] of the meat `meat` (over all free parameters) on
/// the free parameters `free`; `None` when `free` is empty or the meat does
/// not cover it (an evaluation that gave none).
pub fn score_conditioning(meat: &DMatrix<f64>, free: &[usize]) -> Option<Conditioning> {
    let size = meat.nrows().min(meat.ncols());
    if free.is_empty() || free.iter().any(|&f| f >= size) {
        return None;
    }
    let sub = DMatrix::from_fn(free.len(), free.len(), |a, b| meat[(free[a], free[b])]);
    Some(match smallest_direction(&sub) {
        Ok((condition, weights)) => Conditioning {
            condition,
            involved: involved(&weights).into_iter().map(|k| free[k]).collect(),
        },
        Err(i) => Conditioning {
            condition: 0.0,
            involved: vec![free[i]],
        },
    })
}

/// Smallest over largest eigenvalue of a symmetric matrix scaled to unit
/// diagonal, and the eigenvector of the smallest; `Err(i)` when diagonal
/// element `i` is not positive and finite. The matrix is not empty.
fn smallest_direction(mat: &DMatrix<f64>) -> Result<(f64, Vec<f64>), usize> {
    let m = mat.nrows();
    let diag: Vec<f64> = (0..m).map(|i| mat[(i, i)]).collect();
    if let Some(i) = diag.iter().position(|d| !d.is_finite() || *d <= 0.0) {
        return Err(i);
    }
    let scaled = DMatrix::from_fn(m, m, |i, j| mat[(i, j)] / (diag[i] * diag[j]).sqrt());
    let eig = SymmetricEigen::new(scaled);
    let imin = eig
        .eigenvalues
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i);
    let emin = eig.eigenvalues[imin];
    let emax = eig.eigenvalues.iter().copied().fold(f64::MIN, f64::max);
    let weights = eig.eigenvectors.column(imin).iter().copied().collect();
    Ok((emin / emax, weights))
}

/// The positions of the largest weights of an eigenvector, largest first:
/// every weight at least [`INVOLVED_FRACTION`] of the largest in absolute
/// value (never empty for a non-empty vector; NaN weights count as zero).
fn involved(weights: &[f64]) -> Vec<usize> {
    let abs = |w: f64| if w.is_nan() { 0.0 } else { w.abs() };
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| abs(weights[b]).total_cmp(&abs(weights[a])));
    let top = order.first().map_or(0.0, |&k| abs(weights[k]));
    let keep = order
        .iter()
        .take_while(|&&k| abs(weights[k]) >= INVOLVED_FRACTION * top)
        .count()
        .max(1);
    order.truncate(keep);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An information matrix with unequal scales whose unit-diagonal form
    /// is the correlation `r` between the first two parameters, the others
    /// independent of them and of each other.
    fn info(r: f64, others: usize) -> DMatrix<f64> {
        let m = 2 + others;
        let scale: Vec<f64> = (0..m).map(|i| 10f64.powi(i as i32 - 1)).collect();
        DMatrix::from_fn(m, m, |i, j| {
            let c = if i == j {
                1.0
            } else if i + j == 1 {
                r
            } else {
                0.0
            };
            c * scale[i] * scale[j]
        })
    }

    /// The correlation whose 2×2 block has condition number `c`:
    /// (1 − r) / (1 + r) = c.
    fn r_for(c: f64) -> f64 {
        (1.0 - c) / (1.0 + c)
    }

    #[test]
    fn a_well_conditioned_information_names_no_parameter() {
        let i = info(r_for(1e-3), 2);
        let c = covariance(6, &[0, 2, 3, 5], &i, None).expect("not singular");
        assert!((c.condition - 1e-3).abs() < 1e-9, "{}", c.condition);
        assert!(c.involved.is_empty(), "{:?}", c.involved);
    }

    #[test]
    fn a_near_singular_information_names_the_dependent_parameters() {
        let i = info(r_for(5e-8), 2);
        let c = covariance(6, &[0, 2, 3, 5], &i, None).expect("not singular");
        assert!((c.condition / 5e-8 - 1.0).abs() < 1e-6, "{}", c.condition);
        let mut involved = c.involved.clone();
        involved.sort_unstable();
        // the dependent pair, by their free-parameter numbers; not the others
        assert_eq!(involved, vec![0, 2]);
        // the standard errors are still computed
        assert!(c.cov[(0, 0)].is_finite() && c.cov[(5, 5)].is_finite());
    }

    #[test]
    fn the_warning_threshold_lies_between_the_two_sides() {
        let just_below = covariance(2, &[0, 1], &info(r_for(0.9 * CONDITION_WARNING), 0), None);
        assert!(!just_below.expect("not singular").involved.is_empty());
        let just_above = covariance(2, &[0, 1], &info(r_for(1.1 * CONDITION_WARNING), 0), None);
        assert!(just_above.expect("not singular").involved.is_empty());
    }

    #[test]
    fn a_singular_information_is_an_error_naming_one_parameter() {
        let e = covariance(4, &[1, 3], &info(r_for(1e-12), 0), None).expect_err("singular");
        match e {
            SeError::NotIdentified { param, condition } => {
                assert!([1, 3].contains(&param));
                assert!(condition <= CONDITION_LIMIT);
            }
            other => panic!("{other:?}"),
        }
    }

    /// The meat Σ_j s_j s_j' over 4 free parameters of scores s_j whose
    /// second and fourth entries are tied by `s_4 = 2 s_2 + wobble d_j`
    /// (exactly dependent at `wobble` 0; `d_j` is independent of the rest).
    fn meat(wobble: f64) -> DMatrix<f64> {
        let mut m = DMatrix::zeros(4, 4);
        for j in 0..40 {
            let x = f64::from(j);
            let a = (0.7 * x).sin();
            let b = (1.3 * x + 0.5).cos();
            let c = (0.4 * x + 1.0).sin() * 3.0;
            let d = (0.9 * x + 2.0).cos();
            let s = nalgebra::DVector::from_vec(vec![a, b, c, 2.0 * b + wobble * d]);
            m += &s * s.transpose();
        }
        m
    }

    #[test]
    fn dependent_scores_name_the_dependent_parameters() {
        let c = score_conditioning(&meat(0.0), &[0, 1, 2, 3]).expect("parameters");
        assert!(c.condition.abs() < 1e-12, "{}", c.condition);
        let mut involved = c.involved.clone();
        involved.sort_unstable();
        assert_eq!(involved, vec![1, 3]);
        // restricted to the free parameters not at a bound: one of the pair
        // gone, nothing singular is left
        let c = score_conditioning(&meat(0.0), &[0, 2, 3]).expect("parameters");
        assert!(c.condition > SCORE_CONDITION_WARNING, "{}", c.condition);
    }

    #[test]
    fn independent_scores_are_well_conditioned() {
        let c = score_conditioning(&meat(1.0), &[0, 1, 2, 3]).expect("parameters");
        assert!(c.condition > 1e-3, "{}", c.condition);
        assert!(score_conditioning(&meat(1.0), &[]).is_none());
        assert!(score_conditioning(&DMatrix::zeros(0, 0), &[0]).is_none());
        // a parameter whose scores are all zero
        let mut m = meat(1.0);
        for k in 0..4 {
            m[(2, k)] = 0.0;
            m[(k, 2)] = 0.0;
        }
        let c = score_conditioning(&m, &[0, 1, 2, 3]).expect("parameters");
        assert_eq!((c.condition, c.involved), (0.0, vec![2]));
    }

    #[test]
    fn involved_keeps_the_weights_within_half_of_the_largest() {
        assert_eq!(involved(&[0.1, -0.7, 0.4, 0.6, f64::NAN]), vec![1, 3, 2]);
        assert_eq!(involved(&[0.0, 0.0]), vec![0, 1]);
    }
}
