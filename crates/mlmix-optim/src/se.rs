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

use mlmix_integrate::{BackendError, Want};
use nalgebra::{DMatrix, SymmetricEigen};
use rayon::prelude::*;

use crate::estimate::Observer;
use crate::problem::Problem;

/// Smallest eigenvalue of the unit-diagonal information, relative to the
/// largest, below which the model is taken as not identified.
pub const CONDITION_LIMIT: f64 = 1e-10;

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
/// by central differences of the analytic gradient.
pub fn observed_information(
    problem: &Problem<'_>,
    theta: &[f64],
    free: &[usize],
    observer: &dyn Observer,
) -> Result<DMatrix<f64>, BackendError> {
    let m = free.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let cols: Vec<Result<Vec<f64>, BackendError>> = free
        .par_iter()
        .map(|&i| {
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
            Ok(col)
        })
        .collect();
    let mut info = DMatrix::zeros(m, m);
    for (c, col) in cols.into_iter().enumerate() {
        let col = col?;
        for (r, v) in col.into_iter().enumerate() {
            info[(r, c)] = v;
        }
    }
    let sym = (&info + info.transpose()) * 0.5;
    Ok(sym)
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
        });
    }
    // identification: eigenvalues of the unit-diagonal information
    let diag: Vec<f64> = (0..m).map(|i| info[(i, i)]).collect();
    if let Some(i) = diag
        .iter()
        .position(|d| d.is_nan() || *d <= 0.0 || !d.is_finite())
    {
        return Err(SeError::NotIdentified {
            param: free[i],
            condition: 0.0,
        });
    }
    let mut scaled = info.clone();
    for i in 0..m {
        for j in 0..m {
            scaled[(i, j)] /= (diag[i] * diag[j]).sqrt();
        }
    }
    let eig = SymmetricEigen::new(scaled);
    let (imin, &emin) = eig
        .eigenvalues
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .expect("m > 0");
    let emax = eig.eigenvalues.iter().copied().fold(f64::MIN, f64::max);
    let condition = emin / emax;
    if condition.is_nan() || condition <= CONDITION_LIMIT {
        let v = eig.eigenvectors.column(imin);
        let (k, _) = v
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .expect("m > 0");
        return Err(SeError::NotIdentified {
            param: free[k],
            condition,
        });
    }
    let inv = info
        .clone()
        .cholesky()
        .map(|c| c.inverse())
        .ok_or(SeError::NotIdentified {
            param: free[imin.min(m - 1)],
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
    })
}
