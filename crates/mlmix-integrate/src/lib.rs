//! Integration grids and the backends that evaluate the cluster-likelihood
//! loop.
//!
//! The hot loop is one thing: for every cluster, every integration node and
//! every class combination, sum the rows' term log-densities, then reduce
//! (log-sum-exp to the cluster log-likelihood, posterior weights, weighted
//! scores, expected information, score outer products). A [`Backend`]
//! evaluates that loop at a parameter vector; [`CpuBackend`] does it with
//! rayon across fixed-size chunks of clusters, reduced in chunk order so the
//! result does not depend on the number of threads.
//!
//! This is the only crate that will know GPUs exist (behind a cargo feature,
//! with a `GpuBackend` implementing the same trait). It depends on
//! `mlmix-kernels` for the plan and the term kernels.

// The chunk loops index several parallel row buffers by row number.
#![allow(clippy::needless_range_loop)]

mod cpu;
mod grid;

pub use cpu::CpuBackend;
pub use grid::Grid;

use mlmix_kernels::{EngineData, InvalidParams, Plan};

/// What an evaluation should compute besides the log-likelihood.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Want {
    /// Gradient of the log-likelihood with respect to phi.
    pub gradient: bool,
    /// Expected complete-data information (the EM step's metric).
    pub information: bool,
    /// Σ_j f_j s_j s_j' over clusters (the MLR sandwich's meat).
    pub meat: bool,
    /// Posterior probabilities of the class combinations per cluster.
    pub posteriors: bool,
}

impl Want {
    /// The log-likelihood only.
    pub const LL: Want = Want {
        gradient: false,
        information: false,
        meat: false,
        posteriors: false,
    };
    /// Log-likelihood and gradient.
    pub const GRADIENT: Want = Want {
        gradient: true,
        information: false,
        meat: false,
        posteriors: false,
    };
    /// Log-likelihood, gradient and expected information (an EM step).
    pub const EM: Want = Want {
        gradient: true,
        information: true,
        meat: false,
        posteriors: false,
    };
}

/// The result of one pass over the data.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The log-likelihood, all constants included.
    pub loglik: f64,
    /// d logL / d phi (empty unless wanted).
    pub gradient: Vec<f64>,
    /// Expected complete-data information, `n_phi x n_phi` row-major (empty
    /// unless wanted).
    pub information: Vec<f64>,
    /// Σ_j f_j s_j s_j', `n_phi x n_phi` row-major (empty unless wanted).
    pub meat: Vec<f64>,
    /// Posterior probabilities, `n_clusters x n_combos` (empty unless wanted).
    pub posteriors: Vec<f64>,
    /// Each cluster's log-likelihood (filled with the posteriors).
    pub cluster_loglik: Vec<f64>,
}

/// Why an evaluation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    /// The parameters are outside the model's domain (the optimiser treats
    /// this as log-likelihood −∞).
    #[error(transparent)]
    Invalid(#[from] InvalidParams),
    /// The backend cannot evaluate this plan.
    #[error("{0}")]
    Unsupported(String),
}

/// Evaluates the cluster-likelihood loop of a plan on data it holds.
pub trait Backend: Send + Sync {
    /// A short description for reports (`cpu (rayon, 8 threads)`).
    fn describe(&self) -> String;
    /// The plan.
    fn plan(&self) -> &Plan;
    /// The data.
    fn data(&self) -> &EngineData;
    /// One pass at `phi`.
    fn evaluate(&self, phi: &[f64], want: Want) -> Result<Evaluation, BackendError>;
}

/// Which backend to use, resolved once at the top.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// A GPU when one is available, otherwise the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
}
