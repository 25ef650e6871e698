//! The estimation problem: a backend plus the map from the free parameters
//! (what is estimated) to phi (every model parameter, fixed ones included).
//!
//! Free parameter `i` stands for every phi entry whose `free_of_phi` is
//! `Some(i)` (parameters held equal by labels or by class-invariance), so the
//! Jacobian of phi with respect to the free parameters is a 0/1 selection:
//! gradients add up over members, information blocks add up over pairs.

use std::sync::Arc;

use mlmix_integrate::{Adaptation, Backend, BackendError, Junctions, Want};
use nalgebra::{DMatrix, DVector};

/// Where a free parameter may go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    /// Lowest value.
    pub lo: f64,
    /// Highest value.
    pub hi: f64,
}

impl Bound {
    /// No bound.
    pub const FREE: Bound = Bound {
        lo: f64::NEG_INFINITY,
        hi: f64::INFINITY,
    };
}

/// The map between free parameters and phi.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamMap {
    /// Number of free parameters.
    pub n_free: usize,
    /// For each phi entry, its free parameter, or `None` if fixed.
    pub free_of_phi: Vec<Option<usize>>,
    /// For each phi entry, its value when fixed.
    pub fixed_value: Vec<f64>,
    /// Bounds of each free parameter.
    pub bounds: Vec<Bound>,
    /// Free parameters that quasi-Newton moves on the log scale (positive
    /// parameters whose log-likelihood flattens like a power of them: the
    /// variances of random class logit intercepts). Empty: none.
    pub log_scale: Vec<bool>,
    /// For each free parameter, the free parameter whose square root
    /// scales it during quasi-Newton (the mean of a random class logit
    /// intercept, scaled by its standard deviation). Empty: none.
    pub scaled_by: Vec<Option<usize>>,
}

impl ParamMap {
    /// phi for a vector of free parameters.
    pub fn phi(&self, theta: &[f64]) -> Vec<f64> {
        self.free_of_phi
            .iter()
            .zip(&self.fixed_value)
            .map(|(f, v)| f.map_or(*v, |i| theta[i]))
            .collect()
    }

    /// Clamps a vector into the bounds.
    pub fn clamp(&self, theta: &mut [f64]) {
        for (t, b) in theta.iter_mut().zip(&self.bounds) {
            *t = t.clamp(b.lo, b.hi);
        }
    }
}

/// An evaluation in the free-parameter space.
#[derive(Debug, Clone)]
pub struct FreeEval {
    /// Log-likelihood.
    pub loglik: f64,
    /// Gradient (empty unless asked for).
    pub gradient: DVector<f64>,
    /// Expected complete-data information (empty unless asked for).
    pub information: DMatrix<f64>,
    /// Σ_j s_j s_j' over clusters (empty unless asked for).
    pub meat: DMatrix<f64>,
    /// With `Want::moments` and random effects: the posterior moments per
    /// unit and the step junctions (see [`mlmix_integrate::Evaluation`]),
    /// from which [`FreeEval::proposal`] builds the adaptation the
    /// posterior at these parameters gives, without another pass. Kept raw:
    /// most evaluations (rejected line-search steps) never need it built.
    pub moments: Option<(Vec<f64>, Vec<Junctions>)>,
}

impl FreeEval {
    /// The adaptation of this evaluation's posterior (see
    /// [`FreeEval::moments`]), `None` without moments.
    pub fn proposal(&self, backend: &dyn Backend) -> Option<Adaptation> {
        let (moments, junctions) = self.moments.as_ref()?;
        let (a, _) = Adaptation::from_moments(
            backend.grid(),
            backend.plan().n_between(),
            moments,
            junctions,
        );
        Some(a)
    }
}

/// A backend and its parameter map.
pub struct Problem<'a> {
    /// Evaluates the likelihood loop.
    pub backend: &'a dyn Backend,
    /// Free parameters to phi.
    pub map: ParamMap,
    /// Number of analysed rows (for the derivative criterion).
    pub n_obs: f64,
    /// Adaptive quadrature: each start carries its own adaptation, renewed
    /// as the estimates move.
    pub adaptive: bool,
    /// The adaptation [`Problem::evaluate`] uses (set for the standard
    /// errors of a solution).
    pub fixed_adapt: Option<Arc<Adaptation>>,
}

impl Problem<'_> {
    /// Number of free parameters.
    pub fn n_free(&self) -> usize {
        self.map.n_free
    }

    /// Evaluates at `theta`. Parameters outside the model's domain give
    /// log-likelihood −∞ (not an error).
    pub fn evaluate(&self, theta: &[f64], want: Want) -> Result<FreeEval, BackendError> {
        self.evaluate_with(theta, want, self.fixed_adapt.as_deref())
    }

    /// Evaluates at `theta` with an adaptation of the grid.
    pub fn evaluate_with(
        &self,
        theta: &[f64],
        want: Want,
        adapt: Option<&Adaptation>,
    ) -> Result<FreeEval, BackendError> {
        let phi = self.map.phi(theta);
        let ev = match self.backend.evaluate_adapted(&phi, want, adapt) {
            Ok(ev) => ev,
            Err(BackendError::Invalid(_)) => {
                return Ok(FreeEval {
                    loglik: f64::NEG_INFINITY,
                    gradient: DVector::zeros(0),
                    information: DMatrix::zeros(0, 0),
                    meat: DMatrix::zeros(0, 0),
                    moments: None,
                });
            }
            Err(e) => return Err(e),
        };
        let nf = self.map.n_free;
        let n_phi = phi.len();
        let mut out = FreeEval {
            loglik: ev.loglik,
            gradient: DVector::zeros(0),
            information: DMatrix::zeros(0, 0),
            meat: DMatrix::zeros(0, 0),
            moments: None,
        };
        if !ev.loglik.is_finite() {
            out.loglik = f64::NEG_INFINITY;
            return Ok(out);
        }
        if !ev.gradient.is_empty() {
            let mut g = DVector::zeros(nf);
            for (p, f) in self.map.free_of_phi.iter().enumerate() {
                if let Some(i) = f {
                    g[*i] += ev.gradient[p];
                }
            }
            out.gradient = g;
        }
        let reduce = |m: &[f64]| {
            let mut r = DMatrix::zeros(nf, nf);
            for (a, fa) in self.map.free_of_phi.iter().enumerate() {
                let Some(i) = fa else { continue };
                for (b, fb) in self.map.free_of_phi.iter().enumerate() {
                    if let Some(j) = fb {
                        r[(*i, *j)] += m[a * n_phi + b];
                    }
                }
            }
            r
        };
        if !ev.information.is_empty() {
            out.information = reduce(&ev.information);
        }
        if !ev.meat.is_empty() {
            out.meat = reduce(&ev.meat);
        }
        if want.moments && self.backend.grid().dims > 0 {
            out.moments = Some((ev.moments, ev.junctions));
        }
        Ok(out)
    }
}
