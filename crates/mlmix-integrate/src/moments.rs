//! Accumulation of terms that are *linear in the nodes* from per-row
//! posterior moments of the nodes instead of per row and node.
//!
//! A normal term (or block) whose random effects enter its mean linearly
//! has a score and an expected information that are quadratic in the node
//! z: the residual is linear in z, the virtual columns (z_d, or z_d times a
//! data column) are linear in z, so every entry of the score (e z / θ,
//! (e² / θ − 1) / 2θ) and of the information (z z' / θ) is a polynomial of
//! degree 2 in z. The posterior-weighted sum over the nodes of a row's
//! weighted score, `Σ_q w_q f(z_q)`, therefore depends on the nodes only
//! through the row's weighted moments W = Σ w_q, M1 = Σ w_q z_q and M2 =
//! Σ w_q z_q z_q' (per state of the term). Any weighted point set with the
//! same three moments gives the same sum exactly; the symmetric sigma
//! points `m ± √k L e_i` with weights `W / 2k` (m = M1 / W, L L' = M2 / W −
//! m m', k the dimensions the term reads) are such a set. So instead of
//! running the term's accumulation kernel at every node of every pass
//! (hundreds of nodes), the backend adds each row's moments during the
//! second sweep (a few multiply-adds per row and node) and runs the kernel
//! once per sigma point and state (`2 k × states` calls per chunk).
//! The gradient, the information and the MLR cluster scores are exact
//! (up to rounding): a cluster score is a sum over its rows.

use mlmix_kernels::{Plan, TermKind};

/// A term accumulated from node moments, and where its moments live.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LinearTerm {
    /// The plan's term index.
    pub term: usize,
    /// The integration dimensions it reads (through virtual columns).
    pub dims: Vec<usize>,
    /// Its first moment slot (`n_states * n_moments(dims.len())` slots).
    pub offset: usize,
}

/// The most integration dimensions a linear term may read on this path
/// (more go through the general per-node path).
pub(crate) const MAX_DIMS: usize = 8;

/// Moments per state of a term reading `k` dimensions: W, M1 (k) and the
/// lower triangle of M2 (k (k + 1) / 2).
pub(crate) fn n_moments(k: usize) -> usize {
    1 + k + k * (k + 1) / 2
}

/// The node-dependent terms that are linear in the nodes: normal terms and
/// blocks at the row level (a cluster-level term counts on its first row
/// only and stays on the general path). Returns them with the total number
/// of moment slots.
pub(crate) fn linear_terms(plan: &Plan) -> (Vec<LinearTerm>, usize) {
    let mut out = Vec::new();
    let mut slots = 0;
    for (t, term) in plan.terms.iter().enumerate() {
        if !term.uses_nodes || term.cluster_level {
            continue;
        }
        if !matches!(
            term.kind,
            TermKind::Normal { .. } | TermKind::NormalBlock { .. }
        ) {
            continue;
        }
        let dims = node_dims(plan, t);
        if dims.is_empty() || dims.len() > MAX_DIMS {
            continue;
        }
        out.push(LinearTerm {
            term: t,
            dims: dims.clone(),
            offset: slots,
        });
        slots += term.n_states * n_moments(dims.len());
    }
    (out, slots)
}

/// The integration dimensions term `t` reads through virtual columns,
/// sorted.
pub fn node_dims(plan: &Plan, t: usize) -> Vec<usize> {
    let covs = plan.terms[t].kind.covs();
    let mut dims: Vec<usize> = covs
        .iter()
        .filter(|&&c| c >= plan.n_data_cols)
        .map(|&c| plan.virtual_cols[c - plan.n_data_cols].dim)
        .collect();
    dims.sort_unstable();
    dims.dedup();
    dims
}

/// Adds `w[i] * (1, z, z z')` of each row to its moments (`mom`: the
/// state's `n_moments(k)` slots of `stride` rows each), cluster by cluster:
/// `clusters` gives each cluster's rows `i0..i1` and its node `z` (all
/// dimensions; `dims` picks the term's).
#[inline(always)]
pub(crate) fn add_row_moments<'a>(
    mom: &mut [f64],
    stride: usize,
    dims: &[usize],
    w: &[f64],
    clusters: impl Iterator<Item = (usize, usize, &'a [f64])>,
) {
    let k = dims.len();
    let mut coef = [0.0f64; 1 + MAX_DIMS + MAX_DIMS * (MAX_DIMS + 1) / 2];
    for (i0, i1, z) in clusters {
        let n = n_moments(k).min(coef.len());
        coef[0] = 1.0;
        let mut m = 1 + k;
        for a in 0..k {
            coef[1 + a] = z[dims[a]];
            for b in 0..=a {
                coef[m] = z[dims[a]] * z[dims[b]];
                m += 1;
            }
        }
        let w = &w[i0..i1];
        for (slot, &c) in coef[..n].iter().enumerate() {
            let dst = &mut mom[slot * stride + i0..slot * stride + i1];
            for (d, &wi) in dst.iter_mut().zip(w) {
                *d += c * wi;
            }
        }
    }
}

/// Row `i`'s sigma points from its moments: the weight of each of the `2k`
/// points (`W / 2k`, 0 for a row without weight), and the points into
/// `points` (`2k x k`).
pub(crate) fn sigma_points(
    mom: &[f64],
    stride: usize,
    k: usize,
    i: usize,
    chol: &mut [f64],
    points: &mut [f64],
) -> f64 {
    let w = mom[i];
    if w <= 0.0 || k == 0 {
        points.fill(0.0);
        return if k == 0 { w } else { 0.0 };
    }
    let mean = |a: usize| mom[(1 + a) * stride + i] / w;
    // covariance (lower triangle) and its Cholesky factor, negative pivots
    // from rounding set to 0
    let mut m = 0;
    for a in 0..k {
        for b in 0..=a {
            let c = mom[(1 + k + m) * stride + i] / w - mean(a) * mean(b);
            m += 1;
            let mut v = c;
            for j in 0..b {
                v -= chol[a * k + j] * chol[b * k + j];
            }
            chol[a * k + b] = if a == b {
                v.max(0.0).sqrt()
            } else if chol[b * k + b] > 0.0 {
                v / chol[b * k + b]
            } else {
                0.0
            };
        }
    }
    let scale = (k as f64).sqrt();
    for p in 0..k {
        for a in 0..k {
            let d = if a >= p { scale * chol[a * k + p] } else { 0.0 };
            points[(2 * p) * k + a] = mean(a) + d;
            points[(2 * p + 1) * k + a] = mean(a) - d;
        }
    }
    w / (2 * k) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sigma points reproduce W, M1 and M2 of a weighted node set.
    #[test]
    fn sigma_points_match_moments() {
        let k = 3;
        let stride = 2;
        let dims = [0, 1, 2];
        let nodes: Vec<[f64; 3]> = (0..20)
            .map(|q| {
                let t = q as f64;
                [
                    t.sin() * 2.0,
                    (0.7 * t).cos() + 0.3 * t.sin(),
                    0.1 * t - 1.0,
                ]
            })
            .collect();
        let weights: Vec<f64> = (0..20)
            .map(|q| 0.01 + (q as f64 * 0.37).sin().abs())
            .collect();
        let mut mom = vec![0.0; n_moments(k) * stride];
        for (z, &w) in nodes.iter().zip(&weights) {
            // row 1 gets the nodes, row 0 nothing
            add_row_moments(
                &mut mom,
                stride,
                &dims,
                &[0.0, w],
                [(0, 2, &z[..])].into_iter(),
            );
        }
        let mut chol = vec![0.0; k * k];
        let mut pts = vec![0.0; 2 * k * k];
        let w = sigma_points(&mom, stride, k, 1, &mut chol, &mut pts);
        let total: f64 = weights.iter().sum();
        assert!((w * (2 * k) as f64 - total).abs() < 1e-12 * total);
        for a in 0..k {
            let m1: f64 = nodes.iter().zip(&weights).map(|(z, w)| w * z[a]).sum();
            let s1: f64 = (0..2 * k).map(|p| w * pts[p * k + a]).sum();
            assert!((m1 - s1).abs() < 1e-12 * total, "{a}: {m1} vs {s1}");
            for b in 0..k {
                let m2: f64 = nodes
                    .iter()
                    .zip(&weights)
                    .map(|(z, w)| w * z[a] * z[b])
                    .sum();
                let s2: f64 = (0..2 * k)
                    .map(|p| w * pts[p * k + a] * pts[p * k + b])
                    .sum();
                assert!((m2 - s2).abs() < 1e-11 * total, "{a},{b}: {m2} vs {s2}");
            }
        }
        assert_eq!(sigma_points(&mom, stride, k, 0, &mut chol, &mut pts), 0.0);
    }
}
