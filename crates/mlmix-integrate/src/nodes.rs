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
        // factored in `a.order`: z[order[k]] reads t[order[..=k]]
        let o = &a.order;
        for (k, &r) in o.iter().enumerate() {
            let mut v = c[r];
            for (m, &d) in o[..=k].iter().enumerate() {
                v += l[k * dims + m] * t[d];
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::Method;

    /// A correlated two-dimensional posterior, factored outermost dimension
    /// first: the outer dimension's adapted node reads its own base node
    /// only, and the adapted rule still integrates the posterior (mass 1,
    /// its mean and covariance) as the plan-order factor does.
    #[test]
    fn adaptation_factors_in_the_grid_nesting_order() {
        let (m, cov) = ([0.4, -1.2], [[0.5, 0.3], [0.3, 0.8]]);
        // moments per unit: mass, means, second moments E[z z']
        let mut mom = vec![1.0, m[0], m[1]];
        for r in 0..2 {
            for c in 0..2 {
                mom.push(cov[r][c] + m[r] * m[c]);
            }
        }
        let det = cov[0][0] * cov[1][1] - cov[0][1] * cov[1][0];
        let ln_post = |z: &[f64]| {
            let d = [z[0] - m[0], z[1] - m[1]];
            let q = (cov[1][1] * d[0] * d[0] - 2.0 * cov[0][1] * d[0] * d[1]
                + cov[0][0] * d[1] * d[1])
                / det;
            -0.5 * q - LN_2PI - 0.5 * det.ln()
        };
        for nest in [vec![0, 1], vec![1, 0]] {
            let g = Grid::adapted(Method::Trapezoid, 15, &[false, false]).nested(&nest);
            let (a, failed) = Adaptation::from_moments(&g, 1, &mom, &[]);
            assert_eq!((failed, &a.order), (0, &nest));
            let (mut z, mut mass, mut mean, mut outer) = ([0.0; 2], 0.0, [0.0; 2], Vec::new());
            let mut second = [[0.0; 2]; 2];
            for q in 0..g.n_nodes() {
                let lw = node_of(&g, Some(&a), 0, 0, q, &mut z);
                let ln_phi: f64 = z.iter().map(|v| -0.5 * v * v - 0.5 * LN_2PI).sum();
                let w = (lw + ln_post(&z) - ln_phi).exp();
                mass += w;
                for r in 0..2 {
                    mean[r] += w * z[r];
                    for c in 0..2 {
                        second[r][c] += w * (z[r] - m[r]) * (z[c] - m[c]);
                    }
                }
                let base = g.node(q)[nest[0]];
                outer.push((base.to_bits(), z[nest[0]].to_bits()));
            }
            assert!((mass - 1.0).abs() < 1e-10, "{nest:?}: mass {mass}");
            for r in 0..2 {
                assert!(
                    (mean[r] - m[r]).abs() < 1e-10,
                    "{nest:?}: mean {r} {}",
                    mean[r]
                );
                for c in 0..2 {
                    let e = (second[r][c] - cov[r][c]).abs();
                    assert!(e < 1e-10, "{nest:?}: cov {r}{c} {}", second[r][c]);
                }
            }
            // the outer dimension's node is a function of its base node
            outer.sort_unstable();
            outer.dedup();
            let distinct_base = outer
                .iter()
                .map(|p| p.0)
                .collect::<std::collections::BTreeSet<_>>();
            assert_eq!(outer.len(), distinct_base.len(), "{nest:?}");
        }
    }
}
