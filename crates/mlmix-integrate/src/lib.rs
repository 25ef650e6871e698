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
//! What does not depend on the backend lives in modules of its own, for any
//! backend to share: the buffer layout, chunks and term groups
//! (`layout`), the mapping of integration nodes onto the plain or adapted
//! grid (`nodes`), and the reduction of the chunks' outputs and the chain
//! rule to phi of the gradient, the information and the meat (`finish`).
//! A backend holds only the code that runs on its device.
//!
//! This is the only crate that knows GPUs exist: behind the cargo feature
//! `gpu`, `gpu::GpuBackend` implements the same trait with WGSL compute
//! shaders (shaders/ at the repository's root). It depends on
//! `mlmix-kernels` for the plan and the term kernels.

// The chunk loops index several parallel row buffers by row number.
#![allow(clippy::needless_range_loop)]

mod cpu;
mod finish;
#[cfg(feature = "gpu")]
pub mod gpu;
mod grid;
mod layout;
mod moments;
mod nodes;
mod poly;
mod step;

pub use cpu::CpuBackend;

/// The WGSL source: the shared part, one file per term kind, and the
/// loop and its reductions.
pub const SHADER: &str = concat!(
    include_str!("../../../shaders/common.wgsl"),
    include_str!("../../../shaders/categorical.wgsl"),
    include_str!("../../../shaders/normal.wgsl"),
    include_str!("../../../shaders/logit.wgsl"),
    include_str!("../../../shaders/guessing.wgsl"),
    include_str!("../../../shaders/nominal.wgsl"),
    include_str!("../../../shaders/block.wgsl"),
    include_str!("../../../shaders/loglik.wgsl"),
    include_str!("../../../shaders/scores.wgsl"),
    include_str!("../../../shaders/moment.wgsl"),
);

#[cfg(test)]
mod shader_tests {
    /// Every WGSL file, as the GPU backend concatenates them, parses and
    /// validates with naga (no GPU needed).
    #[test]
    fn shaders_validate() {
        let module = match naga::front::wgsl::parse_str(super::SHADER) {
            Ok(m) => m,
            Err(e) => panic!("{}", e.emit_to_string(super::SHADER)),
        };
        let mut v = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        );
        if let Err(e) = v.validate(&module) {
            panic!("{}", e.emit_to_string(super::SHADER));
        }
        for entry in [
            "pass_densities",
            "cluster_logliks",
            "cluster_scores",
            "moment_densities",
            "moment_scores",
        ] {
            assert!(
                module.entry_points.iter().any(|e| e.name == entry),
                "no entry point {entry}"
            );
        }
    }
}
#[cfg(feature = "gpu")]
pub use gpu::{GpuBackend, GpuDevice, GpuError, shared_device};
pub use grid::{
    ADAPTED_BUDGET, ADAPTED_STRETCH, ADAPTED_TRAPEZOID_RANGE, Grid, Method, STEP_POINTS,
    TRAPEZOID_RANGE, adapted_points,
};
pub use step::{CORE, Junctions, STEP_RANGE, StepDim, StepMap, junction_centre, step_dims};

/// The order in which to nest the dimensions of a product grid
/// ([`Grid::nested`]), outermost first: by the work of the node terms that
/// read each dimension (states × local parameters, summed), most first. A
/// node term is recomputed, and accumulated, only when the nodes of the
/// dimensions it reads change between consecutive passes, so the costly
/// terms should read the slowly varying dimensions (in the FMA-GoM the
/// items read the factor and the class logit reads its random intercept).
/// Ties keep the plan's order.
pub fn nesting_order(plan: &mlmix_kernels::Plan) -> Vec<usize> {
    let mut work = vec![0usize; plan.dims];
    for (t, term) in plan.terms.iter().enumerate() {
        if !term.uses_nodes {
            continue;
        }
        for d in moments::node_dims(plan, t) {
            work[d] += term.n_states * (term.n_local + 1);
        }
    }
    let mut order: Vec<usize> = (0..plan.dims).collect();
    order.sort_by_key(|&d| std::cmp::Reverse(work[d]));
    order
}

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
    /// Posterior probabilities of the class combinations per row.
    pub posteriors: bool,
    /// Posterior moments of the standardised random effects per cluster.
    pub moments: bool,
}

impl Want {
    /// The log-likelihood only.
    pub const LL: Want = Want {
        gradient: false,
        information: false,
        meat: false,
        posteriors: false,
        moments: false,
    };
    /// Log-likelihood and gradient.
    pub const GRADIENT: Want = Want {
        gradient: true,
        information: false,
        meat: false,
        posteriors: false,
        moments: false,
    };
    /// Log-likelihood, gradient and expected information (an EM step).
    pub const EM: Want = Want {
        gradient: true,
        information: true,
        meat: false,
        posteriors: false,
        moments: false,
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
    /// Posterior probabilities of the class combinations, `n_rows x
    /// n_combos` (empty unless wanted).
    pub posteriors: Vec<f64>,
    /// Each cluster's log-likelihood (filled with the posteriors).
    pub cluster_loglik: Vec<f64>,
    /// Per *unit* (see [`Adaptation`]): its posterior probability, then
    /// the posterior mean of z given it (`dims`), then E[z z'] given it
    /// (`dims x dims`) (empty unless wanted and the model has random
    /// effects).
    pub moments: Vec<f64>,
    /// With the moments, on a grid with step dimensions: the junctions of
    /// each step dimension per cluster (see [`Junctions`]).
    pub junctions: Vec<Junctions>,
}

/// Adaptive quadrature: per *unit*, the grid is moved to the posterior of
/// the standardised random effects given the unit, z = centre + C t (C the
/// Cholesky factor of the posterior covariance), with the weights corrected
/// by the ratio of densities. A unit is a cluster, a between-level class
/// combination `b` and a *side* of each step dimension (below or above the
/// centre of the cluster's junctions): `(cluster * n_between + b) *
/// n_sides + side`, side bit i for step dimension i. Given the
/// between-level classes and the sides of the steps (which act like
/// classes) the posterior of the other random effects is unimodal; over
/// them it is a mixture, which one normal grid covers badly. Units where it
/// failed use the plain grid: the grid's own nodes, unmoved (for a
/// trapezoid grid built by [`Grid::adapted`], its finer, wider rule, itself
/// a rule for the standard normal). A step dimension (see [`Grid::with_steps`])
/// is not moved with the others (its rows and columns of C are the
/// identity's): its points go through the cluster's [`StepMap`] instead, in
/// every cluster, and their side picks the unit of the other dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Adaptation {
    /// Integration dimensions.
    pub dims: usize,
    /// Between-level class combinations (1 without between-level classes).
    pub n_between: usize,
    /// Sides: 2 to the number of step dimensions.
    pub n_sides: usize,
    /// Whether each unit is adapted.
    pub active: Vec<bool>,
    /// Whether each cluster's adaptation failed (a unit with a posterior
    /// probability above 1e-10 that could not be adapted).
    pub failed: Vec<bool>,
    /// Posterior means per unit, `units x dims`.
    pub centre: Vec<f64>,
    /// The order the posterior covariances are factored in (the grid's
    /// [`Grid::factor_order`], outermost dimension first): entry `(k, m)`
    /// of a factor in [`Adaptation::chol`] couples dimensions `order[k]`
    /// and `order[m]`, so dimension `order[0]`'s adapted node depends on
    /// its own base node only.
    pub order: Vec<usize>,
    /// Lower Cholesky factors per unit, `units x dims x dims`, of the
    /// covariance with rows and columns in [`Adaptation::order`].
    pub chol: Vec<f64>,
    /// ln det C per unit.
    pub log_det: Vec<f64>,
    /// The maps of the step dimensions (per cluster).
    pub steps: Vec<StepMap>,
}

impl Adaptation {
    /// Builds the adaptation from posterior moments per unit (see
    /// [`Evaluation::moments`]) and the junctions of the step dimensions
    /// (see [`Evaluation::junctions`]) on `grid`; a unit whose posterior
    /// is degenerate (a standard deviation below 1e-6 or above 10, or not
    /// finite) keeps the plain grid in its other dimensions. Returns it
    /// with the number of clusters that failed.
    pub fn from_moments(
        grid: &Grid,
        n_between: usize,
        moments: &[f64],
        junctions: &[Junctions],
    ) -> (Adaptation, usize) {
        let (dims, step_points) = (grid.dims, grid.step_points);
        let order = grid.factor_order();
        let per = 1 + dims + dims * dims;
        let n = moments.len().checked_div(per).unwrap_or(0);
        let n_between = n_between.max(1);
        let n_sides = 1usize << junctions.len();
        let per_cluster = n_between * n_sides;
        let n_clusters = n / per_cluster;
        let step: Vec<bool> = (0..dims)
            .map(|d| junctions.iter().any(|j| j.dim == d))
            .collect();
        let mut a = Adaptation {
            dims,
            n_between,
            n_sides,
            active: vec![false; n],
            failed: vec![false; n_clusters],
            centre: vec![0.0; n * dims],
            order: order.clone(),
            chol: vec![0.0; n * dims * dims],
            log_det: vec![0.0; n],
            steps: junctions
                .iter()
                .map(|j| StepMap::new(j, step_points))
                .collect(),
        };
        for u in 0..n {
            let m = &moments[u * per..(u + 1) * per];
            let (mass, m) = (m[0], &m[1..]);
            // step dimensions: centre 0, identity rows and columns
            let mean: Vec<f64> = (0..dims)
                .map(|r| if step[r] { 0.0 } else { m[r] })
                .collect();
            // the posterior covariance in `order`, packed lower, and its
            // Cholesky factor
            let mut cov = Vec::with_capacity(dims * (dims + 1) / 2);
            for (i, &r) in order.iter().enumerate() {
                for &c in &order[..=i] {
                    cov.push(if step[r] || step[c] {
                        if r == c { 1.0 } else { 0.0 }
                    } else {
                        m[dims + r * dims + c] - mean[r] * mean[c]
                    });
                }
            }
            let l = mlmix_kernels::eval::cholesky_psd(&cov, dims).unwrap_or_default();
            let pivots_ok = l.len() == dims * dims
                && (0..dims).all(|c| {
                    let d = l[c * dims + c] * l[c * dims + c];
                    d.is_finite() && d > 1e-12 && d < 100.0
                });
            let ok = pivots_ok && mass > 0.0 && mean.iter().all(|x| x.is_finite());
            if ok {
                a.active[u] = true;
                a.centre[u * dims..(u + 1) * dims].copy_from_slice(&mean);
                a.chol[u * dims * dims..(u + 1) * dims * dims].copy_from_slice(&l);
                a.log_det[u] = (0..dims).map(|c| l[c * dims + c].ln()).sum();
            } else if mass > 1e-10 || !mass.is_finite() {
                a.failed[u / per_cluster] = true;
            }
        }
        let failed = a.failed.iter().filter(|f| **f).count();
        (a, failed)
    }

    /// Whether this adaptation differs from `old` by more than
    /// [`RECENTRE`]: a unit became (in)active, a centre moved by more than
    /// `RECENTRE` of `old`'s posterior standard deviation in some
    /// dimension, a standard deviation changed by more than a factor
    /// `exp(±RECENTRE)`, or a step rule's centre moved by more than
    /// `RECENTRE` of its finest spacing. Re-centring on a grid that moved
    /// less changes the quadrature by far less than the estimates are
    /// resolved; the optimiser re-centres only when this says so (and
    /// always once more at the end, so that the answer is the optimum on
    /// its own grid).
    pub fn moved_from(&self, old: &Adaptation) -> bool {
        if self.dims != old.dims || self.active.len() != old.active.len() || self.order != old.order
        {
            return true;
        }
        if self.active != old.active || self.steps.len() != old.steps.len() {
            return true;
        }
        let d = self.dims;
        for u in 0..self.active.len() {
            if !self.active[u] {
                continue;
            }
            let (c_new, c_old) = (
                &self.centre[u * d..(u + 1) * d],
                &old.centre[u * d..(u + 1) * d],
            );
            let (l_new, l_old) = (
                &self.chol[u * d * d..(u + 1) * d * d],
                &old.chol[u * d * d..(u + 1) * d * d],
            );
            for (k, &r) in self.order.iter().enumerate() {
                let sd_old = l_old[k * d + k];
                let sd_new = l_new[k * d + k];
                if (c_new[r] - c_old[r]).abs() > RECENTRE * sd_old
                    || (sd_new / sd_old).ln().abs() > RECENTRE
                {
                    return true;
                }
            }
        }
        for (new, old) in self.steps.iter().zip(&old.steps) {
            if new.n != old.n || new.centre.len() != old.centre.len() {
                return true;
            }
            for c in 0..new.centre.len() {
                let finest = |m: &StepMap| {
                    m.z[c * m.n..(c + 1) * m.n]
                        .windows(2)
                        .map(|w| w[1] - w[0])
                        .fold(f64::INFINITY, f64::min)
                };
                let (h_new, h_old) = (finest(new), finest(old));
                if (new.centre[c] - old.centre[c]).abs() > RECENTRE * h_old
                    || (h_new / h_old).ln().abs() > RECENTRE
                {
                    return true;
                }
            }
        }
        false
    }
}

/// How far the posterior may move (in its standard deviations, or in the
/// log of a standard deviation) before the optimiser re-centres the
/// adaptive grid during EM (see [`Adaptation::moved_from`]).
pub const RECENTRE: f64 = 0.1;

/// Posterior probability of an integration pass below which the second
/// sweep skips it, when it is below in every cluster of a chunk. What is
/// dropped is a share of at most `n_passes * NEGLIGIBLE_PASS` of each
/// cluster's posterior mass, so the gradient, the expected information and
/// the MLR scores change by at most that share times the largest
/// complete-data score (or information) at the skipped nodes; the
/// log-likelihood itself is always summed over every pass. (At most 1e-6
/// of a cluster's mass with 10,000 nodes; measured: 1.3-8.8% of the passes
/// of the bench's two-level fits and 16-27% of Model 6's skipped, the
/// log-likelihoods the same to 1e-9.)
pub const NEGLIGIBLE_PASS: f64 = 1e-10;

/// The kinds of evaluation, by what they compute beyond the
/// log-likelihood (posteriors and moments ride along with any of them).
pub const EVAL_KINDS: [&str; 4] = ["loglik", "gradient", "em", "meat"];

impl Want {
    /// Index of this evaluation's kind in [`EVAL_KINDS`]: the most it
    /// computes (the meat, else the information, else the gradient).
    pub fn kind(&self) -> usize {
        if self.meat {
            3
        } else if self.information {
            2
        } else if self.gradient {
            1
        } else {
            0
        }
    }
}

/// Evaluations of one kind so far: how many, their total time, and the
/// integrand evaluations they made (rows times passes, a pass being one
/// between-level class combination at one integration node).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EvalCount {
    /// Evaluations.
    pub count: usize,
    /// Their wall-clock time in seconds.
    pub seconds: f64,
    /// Rows times passes, summed over them.
    pub row_passes: f64,
}

impl std::ops::AddAssign for EvalCount {
    fn add_assign(&mut self, o: EvalCount) {
        self.count += o.count;
        self.seconds += o.seconds;
        self.row_passes += o.row_passes;
    }
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
    /// The integration grid (one node for models without random effects).
    fn grid(&self) -> &Grid;
    /// One pass at `phi`, with the grid adapted per cluster if `adapt` is
    /// given.
    fn evaluate_adapted(
        &self,
        phi: &[f64],
        want: Want,
        adapt: Option<&Adaptation>,
    ) -> Result<Evaluation, BackendError>;
    /// The dimensions the fit's evaluations integrate through moments every
    /// cluster shares (the inner dimensions of the CPU backend's moment
    /// form, see `layout.rs`; empty without it): an evaluation's cost per
    /// cluster does not grow with their points.
    fn shared_dims(&self) -> Vec<usize> {
        Vec::new()
    }
    /// The backend that evaluates at `f64` precision where this one does
    /// not (a GPU backend's CPU backend), for what must be exact: the
    /// reported solution's evaluations and its standard errors. `None`:
    /// this one is.
    fn exact(&self) -> Option<&dyn Backend> {
        None
    }
    /// Tells the backend which free parameter each phi entry stands for
    /// (`None`: fixed), as the optimiser's parameter map has it: a backend
    /// that judges its own gradients' precision (the GPU's) judges the
    /// gradient with respect to the free parameters, the one the
    /// optimiser follows, not phi's (whose entries for parameters held
    /// equal across classes stay large at an optimum, with opposite signs).
    fn watch_free(&self, free_of_phi: &[Option<usize>]) {
        let _ = free_of_phi;
    }
    /// The evaluations made so far, by kind (see [`EVAL_KINDS`]).
    fn counts(&self) -> [EvalCount; 4] {
        [EvalCount::default(); 4]
    }
    /// One pass at `phi` on the plain grid.
    fn evaluate(&self, phi: &[f64], want: Want) -> Result<Evaluation, BackendError> {
        self.evaluate_adapted(phi, want, None)
    }
    /// The adaptation at `phi`: posterior moments computed on the grid
    /// `current` gives (the plain grid if `None`). `None` when the model
    /// has no random effects.
    fn adapt(
        &self,
        phi: &[f64],
        current: Option<&Adaptation>,
    ) -> Result<Option<(Adaptation, usize)>, BackendError> {
        let dims = self.grid().dims;
        if dims == 0 {
            return Ok(None);
        }
        let want = Want {
            moments: true,
            ..Want::LL
        };
        let ev = self.evaluate_adapted(phi, want, current)?;
        if !ev.loglik.is_finite() {
            return Ok(None);
        }
        Ok(Some(Adaptation::from_moments(
            self.grid(),
            self.plan().n_between(),
            &ev.moments,
            &ev.junctions,
        )))
    }
}

/// Which backend to use, resolved once at the top.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// The best backend for the model: a hardware GPU where the model is
    /// large enough and the GPU backend evaluates it, the CPU otherwise
    /// (never a software adapter; see `mlmix::fit::make_backend_above`).
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// A GPU (a software one too): an error when there is none.
    Gpu,
}
