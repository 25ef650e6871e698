//! Multivariate normal blocks: continuous dependent variables with residual
//! covariances ([`TermKind::NormalBlock`](crate::plan::TermKind::NormalBlock)),
//! `y = nu + B x + e` with `e ~ N(0, Sigma)`, local parameters `[nu (d), B (d
//! x q), Sigma (lower triangle packed by rows)]` per state; each row has
//! one missing-data pattern (the observed subset of the block).
//!
//! This module holds the kind's preparation (the inverse and log
//! normalising constant of the observed covariance block per state and
//! pattern, via [`spd_inverse`]), its log-densities, weighted scores,
//! accumulation (summed scores and the general information), expected
//! information (weight sums per state and pattern, and the mean block with
//! covariates) and its row-independent part (the mean block without
//! covariates and the covariance block).

use super::{InvalidParams, Scratch, Slots, TermPrep, grow, lin_pred};
use crate::data::EngineData;
use crate::link::LN_2PI;

/// In-place inverse of a symmetric positive definite `m x m` matrix;
/// returns ln det, or `None` if it is not positive definite.
pub fn spd_inverse(a: &mut [f64], m: usize) -> Option<f64> {
    // Cholesky: a = L L'
    let mut l = vec![0.0; m * m];
    let mut logdet = 0.0;
    for j in 0..m {
        let mut s = a[j * m + j];
        for k in 0..j {
            s -= l[j * m + k] * l[j * m + k];
        }
        if s <= 0.0 || !s.is_finite() {
            return None;
        }
        let d = s.sqrt();
        l[j * m + j] = d;
        logdet += 2.0 * d.ln();
        for i in j + 1..m {
            let mut s = a[i * m + j];
            for k in 0..j {
                s -= l[i * m + k] * l[j * m + k];
            }
            l[i * m + j] = s / d;
        }
    }
    // inverse of L (lower triangular)
    let mut li = vec![0.0; m * m];
    for i in 0..m {
        li[i * m + i] = 1.0 / l[i * m + i];
        for j in 0..i {
            let mut s = 0.0;
            for k in j..i {
                s -= l[i * m + k] * li[k * m + j];
            }
            li[i * m + j] = s / l[i * m + i];
        }
    }
    // a^{-1} = L^{-T} L^{-1}
    for i in 0..m {
        for j in 0..=i {
            let mut s = 0.0;
            for k in i..m {
                s += li[k * m + i] * li[k * m + j];
            }
            a[i * m + j] = s;
            a[j * m + i] = s;
        }
    }
    Some(logdet)
}

/// Checks the covariance matrices of term `ti` (gathered local parameters
/// `params`, `n_local` per state) and precomputes, per (state, pattern),
/// the inverse of the observed block and -(do ln 2π + ln det)/2.
pub(super) fn prepare(
    ti: usize,
    n_states: usize,
    nl: usize,
    cols: &[usize],
    covs: &[usize],
    patterns: &[Vec<usize>],
    params: Vec<f64>,
) -> Result<TermPrep, InvalidParams> {
    let d = cols.len();
    let q = covs.len();
    let sig0 = d + d * q;
    let mut inv = Vec::new();
    let mut inv_offset = Vec::new();
    let mut log_norm = Vec::new();
    let mut full = vec![0.0; d * d];
    for s in 0..n_states {
        let p = &params[s * nl..(s + 1) * nl];
        for i in 0..d {
            for j in 0..=i {
                let v = p[sig0 + i * (i + 1) / 2 + j];
                full[i * d + j] = v;
                full[j * d + i] = v;
            }
        }
        for i in 0..d {
            if full[i * d + i] <= 0.0 {
                return Err(InvalidParams::Variance { term: ti, state: s });
            }
        }
        for pat in patterns {
            let m = pat.len();
            let mut sub = vec![0.0; m * m];
            for (a, &i) in pat.iter().enumerate() {
                for (b, &j) in pat.iter().enumerate() {
                    sub[a * m + b] = full[i * d + j];
                }
            }
            let Some(logdet) = spd_inverse(&mut sub, m) else {
                return Err(InvalidParams::Covariance { term: ti, state: s });
            };
            inv_offset.push(inv.len());
            inv.extend_from_slice(&sub);
            log_norm.push(-0.5 * (m as f64 * LN_2PI + logdet));
        }
    }
    Ok(TermPrep::NormalBlock {
        params,
        inv,
        inv_offset,
        log_norm,
    })
}

/// Residuals `y - mu` of a normal block's observed variables `obs` in row
/// `r`, for the block's local parameters `p` (`[nu (d), B (d x q), ...]`).
#[inline]
fn block_residuals(
    p: &[f64],
    obs: &[usize],
    cols: &[usize],
    covs: &[usize],
    data: &EngineData,
    r: usize,
    res: &mut [f64],
) {
    let d = cols.len();
    let q = covs.len();
    for (a, &vi) in obs.iter().enumerate() {
        let mu = p[vi] + lin_pred(&p[d + vi * q..d + (vi + 1) * q], covs, data, r);
        res[a] = data.columns[cols[vi]][r] - mu;
    }
}

/// Log-density of each of the `ns` states for rows `r0..r1` (see
/// [`super::term_values`]); a row with nothing observed contributes 0.
#[inline(always)]
pub(super) fn values(
    ns: usize,
    nl: usize,
    cols: &[usize],
    covs: &[usize],
    patterns: &[Vec<usize>],
    row_pattern: &[u32],
    params: &[f64],
    inv: &[f64],
    inv_offset: &[usize],
    log_norm: &[f64],
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    scratch: &mut Scratch,
    out: &mut [f64],
) {
    let at = |s: usize, i: usize| (slots.offset + s) * slots.stride + i;
    let d = cols.len();
    let np = patterns.len();
    let res = grow(&mut scratch.a, d);
    for r in r0..r1 {
        let i = r - r0;
        let pat = row_pattern[data.row_offset + r];
        for s in 0..ns {
            if pat == u32::MAX {
                out[at(s, i)] = 0.0;
                continue;
            }
            let pat = pat as usize;
            let obs = &patterns[pat];
            let m = obs.len();
            let p = &params[s * nl..(s + 1) * nl];
            block_residuals(p, obs, cols, covs, data, r, res);
            let k = s * np + pat;
            let pinv = &inv[inv_offset[k]..inv_offset[k] + m * m];
            let mut quad = 0.0;
            for a in 0..m {
                let mut t = 0.0;
                for b in 0..m {
                    t += pinv[a * m + b] * res[b];
                }
                quad += res[a] * t;
            }
            out[at(s, i)] = log_norm[k] - 0.5 * quad;
        }
    }
}

/// Each row's weighted score (see [`super::term_scores`]): with
/// `u = P (y - mu)` (P the inverse of the observed block), `w u (1, x)` for
/// the means and regressions and `w (u u' - P)` (halved on the diagonal)
/// for the covariances.
pub(super) fn scores(
    ns: usize,
    nl: usize,
    cols: &[usize],
    covs: &[usize],
    patterns: &[Vec<usize>],
    row_pattern: &[u32],
    params: &[f64],
    inv: &[f64],
    inv_offset: &[usize],
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    w: &[f64],
    scratch: &mut Scratch,
    mut sink: impl FnMut(usize, usize, f64),
) {
    let wat = |s: usize, i: usize| w[(slots.offset + s) * slots.stride + i];
    let d = cols.len();
    let q = covs.len();
    let np = patterns.len();
    let sig0 = d + d * q;
    let res = grow(&mut scratch.a, d);
    let u = grow(&mut scratch.b, d);
    for r in r0..r1 {
        let i = r - r0;
        let pat = row_pattern[data.row_offset + r];
        if pat == u32::MAX {
            continue;
        }
        let pat = pat as usize;
        let obs = &patterns[pat];
        let m = obs.len();
        for s in 0..ns {
            let ws = wat(s, i);
            if ws == 0.0 {
                continue;
            }
            let p = &params[s * nl..(s + 1) * nl];
            block_residuals(p, obs, cols, covs, data, r, res);
            let k = s * np + pat;
            let pinv = &inv[inv_offset[k]..inv_offset[k] + m * m];
            for a in 0..m {
                let mut t = 0.0;
                for b in 0..m {
                    t += pinv[a * m + b] * res[b];
                }
                u[a] = t;
            }
            let base = s * nl;
            for (a, &vi) in obs.iter().enumerate() {
                sink(i, base + vi, ws * u[a]);
                for (c, &cc) in covs.iter().enumerate() {
                    sink(i, base + d + vi * q + c, ws * u[a] * data.columns[cc][r]);
                }
            }
            for (a, &vi) in obs.iter().enumerate() {
                for (b, &vj) in obs.iter().enumerate() {
                    if vj > vi {
                        continue;
                    }
                    let g = if vi == vj {
                        0.5 * (u[a] * u[a] - pinv[a * m + a])
                    } else {
                        u[a] * u[b] - pinv[a * m + b]
                    };
                    sink(i, base + sig0 + vi * (vi + 1) / 2 + vj, ws * g);
                }
            }
        }
    }
}

/// Expected information for rows `r0..r1` (see [`super::term_info`]): the
/// weight sums `wsum` per (state, pattern) and, with covariates, the mean
/// and regression block `w P ⊗ z z'` (`z = (1, x)`) into `mats`.
pub(super) fn info(
    ns: usize,
    nl: usize,
    cols: &[usize],
    covs: &[usize],
    patterns: &[Vec<usize>],
    row_pattern: &[u32],
    inv: &[f64],
    inv_offset: &[usize],
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    w: &[f64],
    freq: &[f64],
    mats: &mut [f64],
    wsum: &mut [f64],
) {
    let wat = |s: usize, i: usize| w[(slots.offset + s) * slots.stride + i];
    let d = cols.len();
    let q = covs.len();
    let np = patterns.len();
    for r in r0..r1 {
        let i = r - r0;
        let pat = row_pattern[data.row_offset + r];
        if pat == u32::MAX {
            continue;
        }
        let pat = pat as usize;
        for s in 0..ns {
            let ws = wat(s, i) * freq[i];
            wsum[s * np + pat] += ws;
            if q > 0 && ws != 0.0 {
                let obs = &patterns[pat];
                let m = obs.len();
                let k = s * np + pat;
                let pinv = &inv[inv_offset[k]..inv_offset[k] + m * m];
                let mat = &mut mats[s * nl * nl..(s + 1) * nl * nl];
                for (a, &vi) in obs.iter().enumerate() {
                    for (b, &vj) in obs.iter().enumerate() {
                        let pij = ws * pinv[a * m + b];
                        for za_i in 0..=q {
                            let za = if za_i == 0 {
                                1.0
                            } else {
                                data.columns[covs[za_i - 1]][r]
                            };
                            let ia = if za_i == 0 { vi } else { d + vi * q + za_i - 1 };
                            for zb_i in 0..=q {
                                let zb = if zb_i == 0 {
                                    1.0
                                } else {
                                    data.columns[covs[zb_i - 1]][r]
                                };
                                let jb = if zb_i == 0 { vj } else { d + vj * q + zb_i - 1 };
                                mat[ia * nl + jb] += pij * za * zb;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Row-independent information (see [`super::finish_info`]) from the
/// weight sums per (state, pattern): the mean block `wsum P` without
/// covariates, and the covariance block `wsum ½ tr(P E_a P E_b)`.
pub(super) fn finish_info(
    ns: usize,
    nl: usize,
    cols: &[usize],
    covs: &[usize],
    patterns: &[Vec<usize>],
    inv: &[f64],
    inv_offset: &[usize],
    mats: &mut [f64],
    wsums: &[f64],
) {
    let d = cols.len();
    let q = covs.len();
    let np = patterns.len();
    let sig0 = d + d * q;
    for s in 0..ns {
        let mat = &mut mats[s * nl * nl..(s + 1) * nl * nl];
        for (pi, obs) in patterns.iter().enumerate() {
            let wsum = wsums[s * np + pi];
            if wsum == 0.0 {
                continue;
            }
            let m = obs.len();
            let k = s * np + pi;
            let pinv = &inv[inv_offset[k]..inv_offset[k] + m * m];
            if q == 0 {
                for (a, &i) in obs.iter().enumerate() {
                    for (b, &j) in obs.iter().enumerate() {
                        mat[i * nl + j] += wsum * pinv[a * m + b];
                    }
                }
            }
            // covariance parameters: 1/2 tr(P E_a P E_b)
            for (a1, &i1) in obs.iter().enumerate() {
                for (a2, &j1) in obs.iter().enumerate() {
                    if j1 > i1 {
                        continue;
                    }
                    let pa = sig0 + i1 * (i1 + 1) / 2 + j1;
                    for (b1, &i2) in obs.iter().enumerate() {
                        for (b2, &j2) in obs.iter().enumerate() {
                            if j2 > i2 {
                                continue;
                            }
                            let pb = sig0 + i2 * (i2 + 1) / 2 + j2;
                            let v = sigma_info(pinv, m, (a1, a2), (b1, b2));
                            mat[pa * nl + pb] += wsum * v;
                        }
                    }
                }
            }
        }
    }
}

/// ½ tr(P E_a P E_b) for symmetric unit matrices E at observed positions
/// a = (i, j), b = (k, l), with i ≥ j and k ≥ l.
fn sigma_info(p: &[f64], m: usize, a: (usize, usize), b: (usize, usize)) -> f64 {
    let ea: &[(usize, usize)] = if a.0 == a.1 {
        &[(a.0, a.0)]
    } else {
        &[(a.0, a.1), (a.1, a.0)]
    };
    let eb: &[(usize, usize)] = if b.0 == b.1 {
        &[(b.0, b.0)]
    } else {
        &[(b.0, b.1), (b.1, b.0)]
    };
    // tr(P A P B) = Σ_{(x,y)∈A} Σ_{(u,v)∈B} P[v,x] P[y,u]
    let mut t = 0.0;
    for &(x, y) in ea {
        for &(u, v) in eb {
            t += p[v * m + x] * p[y * m + u];
        }
    }
    0.5 * t
}
