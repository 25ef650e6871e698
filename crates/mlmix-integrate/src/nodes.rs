//! The node mapping: where integration node `q` of a cluster lies, on the
//! plain grid or on the grid adapted to the cluster's posterior, and its log
//! weight. It does not depend on the backend.

use mlmix_kernels::link::LN_2PI;

use crate::{Adaptation, Grid};

/// Node `q` of cluster `j` in between-level combination `b` (adapted
/// or not) into `z`, and its log weight. Adapted: the affine map of the
/// posterior given `b` (the
/// identity where it failed), then each step dimension by the
/// cluster's step rule (see [`crate::StepMap`]).
pub(crate) fn node_of(
    g: &Grid,
    adapt: Option<&Adaptation>,
    j: usize,
    b: usize,
    q: usize,
    z: &mut [f64],
) -> f64 {
    let dims = g.dims;
    let t = g.node(q);
    let Some(a) = adapt else {
        z.copy_from_slice(t);
        return g.log_weights[q];
    };
    // the step dimensions' points first: their sides pick the unit
    let mut side = 0;
    let mut extra = 0.0;
    for (i, st) in a.steps.iter().enumerate() {
        let (v, ln_ratio) = st.point(j, t[st.dim]);
        if v > st.centre[j] {
            side |= 1 << i;
        }
        extra += ln_ratio + g.step_log_norm;
    }
    let u = (j * a.n_between + b.min(a.n_between - 1)) * a.n_sides + side;
    if !a.active[u] && a.steps.is_empty() {
        z.copy_from_slice(t);
        return g.log_weights[q];
    }
    let mut ln_phi_z = 0.0;
    if a.active[u] {
        let c = &a.centre[u * dims..(u + 1) * dims];
        let l = &a.chol[u * dims * dims..(u + 1) * dims * dims];
        for r in 0..dims {
            let mut v = c[r];
            for k in 0..=r {
                v += l[r * dims + k] * t[k];
            }
            z[r] = v;
        }
        extra += a.log_det[u];
    } else {
        z.copy_from_slice(t);
    }
    for st in &a.steps {
        // the affine map leaves a step dimension alone (z = t); the
        // cluster's step rule replaces the base trapezoid's point and
        // weight (whose normaliser is undone, above)
        z[st.dim] = st.point(j, t[st.dim]).0;
    }
    for &v in z.iter() {
        ln_phi_z += -0.5 * v * v - 0.5 * LN_2PI;
    }
    g.log_weights[q] + ln_phi_z - g.log_density[q] + extra
}

/// Most entries (nodes times dimensions plus log weights, over all
/// clusters and passes) a [`NodeTable`] may hold: 16 MB. Larger problems
/// map their nodes chunk by chunk at every evaluation.
pub(crate) const MAX_TABLE: usize = 2 << 20;

/// Every cluster's nodes and log weights for one adaptation (or the plain
/// grid), `(cluster * n_pass + pass)`-major: they depend on the grid and
/// the adaptation only, not on the parameters, so the evaluations that
/// share an adaptation (a quasi-Newton phase, the standard errors) map
/// them once.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NodeTable {
    /// The adaptation they were mapped with.
    pub adapt: Option<Adaptation>,
    /// Nodes, `dims` per (cluster, pass).
    pub z: Vec<f64>,
    /// Log weights per (cluster, pass).
    pub log_w: Vec<f64>,
}

impl NodeTable {
    /// The table of `n_clusters` clusters with `n_between` between-level
    /// class combinations each, or `None` above [`MAX_TABLE`] entries.
    pub fn build(
        grid: &Grid,
        adapt: Option<&Adaptation>,
        n_clusters: usize,
        n_between: usize,
    ) -> Option<NodeTable> {
        let dims = grid.dims;
        let nq = grid.n_nodes();
        let n_pass = n_between * nq;
        let size = n_clusters.checked_mul(n_pass)?.checked_mul(dims + 1)?;
        if size > MAX_TABLE {
            return None;
        }
        let mut z = vec![0.0; n_clusters * n_pass * dims];
        let mut log_w = vec![0.0; n_clusters * n_pass];
        let mut node = vec![0.0; dims];
        for j in 0..n_clusters {
            for b in 0..n_between {
                for q in 0..nq {
                    let at = j * n_pass + b * nq + q;
                    log_w[at] = node_of(grid, adapt, j, b, q, &mut node);
                    z[at * dims..(at + 1) * dims].copy_from_slice(&node);
                }
            }
        }
        Some(NodeTable {
            adapt: adapt.cloned(),
            z,
            log_w,
        })
    }
}
