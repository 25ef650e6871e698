//! Continuous dependent variables, normal given the classes
//! ([`TermKind::Normal`](crate::plan::TermKind::Normal)): `y = nu + beta'x +
//! e` with residual variance `theta`, local parameters `[nu, beta_1 ..
//! beta_q, theta]` per state.
//!
//! This module holds the kind's preparation (variance checks, 1/theta and
//! the log normalising constant per state), its log-densities, weighted
//! scores, one-pass accumulation (weighted sums of 1, y − ν and (y − ν)²
//! without covariates), expected information and its row-independent part.

use super::{
    InfoAcc, InvalidParams, Scratch, Slots, TermPrep, grow, lin_pred, observed, subtract_covs,
    weighted_sum,
};
use crate::data::EngineData;
use crate::link::LN_2PI;

/// Checks the residual variances of term `ti` (gathered local parameters
/// `params`, `n_local` per state) and precomputes 1/theta and
/// -(ln 2π + ln theta)/2 per state.
pub(super) fn prepare(
    ti: usize,
    n_states: usize,
    nl: usize,
    covs: &[usize],
    params: Vec<f64>,
) -> Result<TermPrep, InvalidParams> {
    let q = covs.len();
    let mut inv_var = Vec::with_capacity(n_states);
    let mut log_norm = Vec::with_capacity(n_states);
    for s in 0..n_states {
        let theta = params[s * nl + q + 1];
        if theta <= 0.0 {
            return Err(InvalidParams::Variance { term: ti, state: s });
        }
        inv_var.push(1.0 / theta);
        log_norm.push(-0.5 * (LN_2PI + theta.ln()));
    }
    Ok(TermPrep::Normal {
        params,
        inv_var,
        log_norm,
    })
}

/// Log-density of each of the `ns` states for rows `r0..r1` (see
/// [`super::term_values`]); a missing value contributes 0.
#[inline(always)]
pub(super) fn values(
    ns: usize,
    nl: usize,
    col: usize,
    covs: &[usize],
    params: &[f64],
    inv_var: &[f64],
    log_norm: &[f64],
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    scratch: &mut Scratch,
    out: &mut [f64],
) {
    let nr = r1 - r0;
    let y = &data.columns[col][r0..r1];
    for s in 0..ns {
        let p = &params[s * nl..(s + 1) * nl];
        let o = &mut out[slots.state(s, nr)];
        if covs.is_empty() {
            let nu = p[0];
            for (x, &v) in o.iter_mut().zip(y) {
                let e = v - nu;
                let val = log_norm[s] - 0.5 * e * e * inv_var[s];
                *x = if v.is_nan() { 0.0 } else { val };
            }
        } else {
            // the residual column by column (contiguous rows, so the loops
            // vectorise), then the density
            let e = grow(&mut scratch.a, nr);
            residual(e, y, p, covs, data, r0, r1, |_| true);
            log_density(o, y, e, log_norm[s], inv_var[s]);
        }
    }
}

/// `e = y − ν − Σ β x` over the covariates whose column passes `pick`
/// (local parameters `p = [ν, β..]`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn residual(
    e: &mut [f64],
    y: &[f64],
    p: &[f64],
    covs: &[usize],
    data: &EngineData,
    r0: usize,
    r1: usize,
    pick: impl Fn(usize) -> bool,
) {
    for (x, &v) in e.iter_mut().zip(y) {
        *x = v - p[0];
    }
    subtract_covs(e, &p[1..], covs, data, r0, r1, pick);
}

/// The normal log-density `ln − e² iv / 2` of residuals `e` into `o`; a
/// missing `y` contributes 0.
#[inline(always)]
fn log_density(o: &mut [f64], y: &[f64], e: &[f64], ln: f64, iv: f64) {
    for ((x, &v), &e) in o.iter_mut().zip(y).zip(e) {
        let val = ln - 0.5 * e * e * iv;
        *x = if v.is_nan() { 0.0 } else { val };
    }
}

/// The node-free part of each state's residual for rows `r0..r1`,
/// `y − ν − Σ β x` over the covariates in columns below `node_col`, at the
/// term's slots of `out` (see [`super::term_base`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn base(
    ns: usize,
    nl: usize,
    col: usize,
    covs: &[usize],
    params: &[f64],
    node_col: usize,
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    out: &mut [f64],
) {
    let nr = r1 - r0;
    let y = &data.columns[col][r0..r1];
    for s in 0..ns {
        let p = &params[s * nl..(s + 1) * nl];
        let e = &mut out[slots.state(s, nr)];
        residual(e, y, p, covs, data, r0, r1, |c| c < node_col);
    }
}

/// [`values`] from the node-free residuals `base` (from [`base`] on the
/// same rows): only the covariates in columns from `node_col` on (the node
/// columns) are subtracted.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn values_on_base(
    ns: usize,
    nl: usize,
    col: usize,
    covs: &[usize],
    params: &[f64],
    inv_var: &[f64],
    log_norm: &[f64],
    node_col: usize,
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    base: &[f64],
    scratch: &mut Scratch,
    out: &mut [f64],
) {
    let nr = r1 - r0;
    let y = &data.columns[col][r0..r1];
    for s in 0..ns {
        let p = &params[s * nl..(s + 1) * nl];
        let e = grow(&mut scratch.a, nr);
        e.copy_from_slice(&base[slots.state(s, nr)]);
        subtract_covs(e, &p[1..], covs, data, r0, r1, |c| c >= node_col);
        log_density(&mut out[slots.state(s, nr)], y, e, log_norm[s], inv_var[s]);
    }
}

/// Each row's weighted score (see [`super::term_scores`]):
/// `w e / theta (1, x)` for the mean parameters and
/// `w (e² / theta - 1) / (2 theta)` for the variance.
pub(super) fn scores(
    ns: usize,
    nl: usize,
    col: usize,
    covs: &[usize],
    params: &[f64],
    inv_var: &[f64],
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    w: &[f64],
    mut sink: impl FnMut(usize, usize, f64),
) {
    let wat = |s: usize, i: usize| w[(slots.offset + s) * slots.stride + i];
    let y = &data.columns[col][r0..r1];
    let q = covs.len();
    for (i, &v) in y.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        let r = r0 + i;
        for s in 0..ns {
            let ws = wat(s, i);
            let p = &params[s * nl..(s + 1) * nl];
            let iv = inv_var[s];
            let e = v - p[0] - lin_pred(&p[1..1 + q], covs, data, r);
            let g = ws * e * iv;
            sink(i, s * nl, g);
            for (k, &cc) in covs.iter().enumerate() {
                sink(i, s * nl + 1 + k, g * data.columns[cc][r]);
            }
            sink(i, s * nl + q + 1, ws * 0.5 * iv * (e * e * iv - 1.0));
        }
    }
}

/// The one-pass gradient and/or information (see
/// [`super::term_accumulate`]) of a term without covariates, from the
/// weighted sums of 1, y − ν and (y − ν)², taken from `grad` and `acc`; with
/// covariates both are left to the general path.
pub(super) fn accumulate(
    ns: usize,
    nl: usize,
    col: usize,
    covs: &[usize],
    params: &[f64],
    inv_var: &[f64],
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    w: &[f64],
    freq: &[f64],
    grad: &mut Option<&mut [f64]>,
    acc: &mut Option<&mut InfoAcc>,
) {
    if !covs.is_empty() {
        return;
    }
    let nr = r1 - r0;
    let y = &data.columns[col][r0..r1];
    let (mut grad, mut info) = (grad.take(), acc.take());
    for s in 0..ns {
        let ws = &w[slots.state(s, nr)];
        let sw = weighted_sum(y, freq, ws, observed);
        if let Some(g) = grad.as_deref_mut() {
            let nu = params[s * nl];
            let iv = inv_var[s];
            let sr = weighted_sum(y, freq, ws, |v| if v.is_nan() { 0.0 } else { v - nu });
            let srr = weighted_sum(y, freq, ws, |v| {
                if v.is_nan() { 0.0 } else { (v - nu) * (v - nu) }
            });
            g[s * nl] += sr * iv;
            g[s * nl + 1] += 0.5 * iv * (srr * iv - sw);
        }
        if let Some(acc) = info.as_deref_mut() {
            acc.wsum[s] += sw;
        }
    }
}

/// Expected information for rows `r0..r1` (see [`super::term_info`]): the
/// weight sums `wsum` per state and, with covariates, the mean block
/// `w z z' / theta` (`z = (1, x)`) into `mats`.
pub(super) fn info(
    ns: usize,
    nl: usize,
    col: usize,
    covs: &[usize],
    inv_var: &[f64],
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    w: &[f64],
    freq: &[f64],
    mats: &mut [f64],
    wsum: &mut [f64],
) {
    let nr = r1 - r0;
    let wat = |s: usize, i: usize| w[(slots.offset + s) * slots.stride + i];
    let y = &data.columns[col][r0..r1];
    let q = covs.len();
    if q == 0 {
        for s in 0..ns {
            let ws = &w[slots.state(s, nr)];
            wsum[s] += weighted_sum(y, freq, ws, observed);
        }
    } else {
        for (i, &v) in y.iter().enumerate() {
            if v.is_nan() {
                continue;
            }
            let r = r0 + i;
            for s in 0..ns {
                let ws = wat(s, i) * freq[i];
                wsum[s] += ws;
                // (nu, beta) block: w z z' / theta
                let f = ws * inv_var[s];
                let m = &mut mats[s * nl * nl..(s + 1) * nl * nl];
                for a in 0..=q {
                    let za = if a == 0 {
                        1.0
                    } else {
                        data.columns[covs[a - 1]][r]
                    };
                    for b in 0..=q {
                        let zb = if b == 0 {
                            1.0
                        } else {
                            data.columns[covs[b - 1]][r]
                        };
                        m[a * nl + b] += f * za * zb;
                    }
                }
            }
        }
    }
}

/// Row-independent information (see [`super::finish_info`]) from the
/// weight sums: the mean entry `wsum / theta` without covariates, and the
/// variance entry `wsum / (2 theta²)`.
pub(super) fn finish_info(
    ns: usize,
    nl: usize,
    covs: &[usize],
    inv_var: &[f64],
    mats: &mut [f64],
    wsum: &[f64],
) {
    let q = covs.len();
    for s in 0..ns {
        let m = &mut mats[s * nl * nl..(s + 1) * nl * nl];
        let iv = inv_var[s];
        if q == 0 {
            m[0] += wsum[s] * iv;
        }
        m[(q + 1) * nl + q + 1] += wsum[s] * 0.5 * iv * iv;
    }
}
