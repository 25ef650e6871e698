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
    if a.active[u] {
        affine_map(a, u, t, z);
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
    g.log_weights[q] + ln_phi(z) - g.log_density[q] + extra
}

/// Base node `t` mapped by unit `u`'s affine map into `z`, factored in
/// `a.order`: z[order[k]] reads t[order[..=k]].
#[inline(always)]
fn affine_map(a: &Adaptation, u: usize, t: &[f64], z: &mut [f64]) {
    let dims = t.len();
    let c = &a.centre[u * dims..(u + 1) * dims];
    let l = &a.chol[u * dims * dims..(u + 1) * dims * dims];
    let o = &a.order;
    for (k, &r) in o.iter().enumerate() {
        let mut v = c[r];
        for (m, &d) in o[..=k].iter().enumerate() {
            v += l[k * dims + m] * t[d];
        }
        z[r] = v;
    }
}

/// ln of the standard normal density at `z`, summed over its dimensions.
#[inline(always)]
fn ln_phi(z: &[f64]) -> f64 {
    let mut s = 0.0;
    for &v in z {
        s += -0.5 * v * v - 0.5 * LN_2PI;
    }
    s
}

/// Every node of cluster `j` in between-level combination `b` into `z`
/// (`dims` per node) and their log weights into `log_w`: [`node_of`] for
/// each, with what the nodes share (the plain grid's copy, or the
/// cluster's affine map without step dimensions) taken once.
pub(crate) fn nodes_of(
    g: &Grid,
    adapt: Option<&Adaptation>,
    j: usize,
    b: usize,
    z: &mut [f64],
    log_w: &mut [f64],
) {
    let dims = g.dims;
    let affine = adapt.filter(|a| a.steps.is_empty()).map(|a| {
        let u = (j * a.n_between + b.min(a.n_between - 1)) * a.n_sides;
        (a, u)
    });
    match (adapt, affine) {
        (None, _) => {
            z.copy_from_slice(&g.nodes);
            log_w.copy_from_slice(&g.log_weights);
        }
        (Some(_), Some((a, u))) if !a.active[u] => {
            z.copy_from_slice(&g.nodes);
            log_w.copy_from_slice(&g.log_weights);
        }
        (Some(_), Some((a, u))) => {
            let rows = z.chunks_exact_mut(dims).zip(g.nodes.chunks_exact(dims));
            for (q, (zq, t)) in rows.enumerate() {
                affine_map(a, u, t, zq);
                log_w[q] = g.log_weights[q] + ln_phi(zq) - g.log_density[q] + a.log_det[u];
            }
        }
        (Some(_), None) => {
            for (q, zq) in z.chunks_exact_mut(dims).enumerate() {
                log_w[q] = node_of(g, adapt, j, b, q, zq);
            }
        }
    }
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
        for j in 0..n_clusters {
            for b in 0..n_between {
                let at = j * n_pass + b * nq;
                let zs = &mut z[at * dims..(at + nq) * dims];
                nodes_of(grid, adapt, j, b, zs, &mut log_w[at..at + nq]);
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
            // all of the cluster's nodes at once: the same, bit for bit
            let n = g.n_nodes();
            let (mut zs, mut lws) = (vec![0.0; 2 * n], vec![0.0; n]);
            for adapt in [None, Some(&a)] {
                nodes_of(&g, adapt, 0, 0, &mut zs, &mut lws);
                for q in 0..n {
                    let lw = node_of(&g, adapt, 0, 0, q, &mut z);
                    assert_eq!(lw.to_bits(), lws[q].to_bits(), "{nest:?} {q}");
                    assert_eq!(z, zs[2 * q..2 * q + 2], "{nest:?} {q}");
                }
            }
        }
    }
}
