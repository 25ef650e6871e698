//! A nominal (unordered categorical) dependent variable
//! ([`TermKind::Nominal`](crate::plan::TermKind::Nominal)): P(u = k | x) is
//! the softmax of `a_k + b_k'x` over the categories, the last one the
//! reference (its `a` and `b` are structural zeros). Local layout per
//! state, per category `k`: `[a_k, b_k (q)]`, so `n_local = ncat (1 + q)`,
//! the same layout as a class logit's parameter set
//! ([`super::logit`]) without parents.
//!
//! The algebra is a class logit's with an observed category: the score of
//! a row in state `s` is `w_s (1[u = k] − p_k) z` (z = `[1, x]`) and its
//! expected information `w_s (diag(p) − p p') ⊗ z z'`, the class logit's
//! block ([`super::logit::add_logit_info`]). A missing `u` contributes
//! nothing.

use super::logit::{add_logit_info, softmax_into};
use super::{InvalidParams, Scratch, Slots, TermPrep, grow, log_sum_exp, weighted_sum};
use crate::data::EngineData;

/// The linear predictors `eta_k = a_k + b_k'x_r` of state `s`'s categories
/// into `eta`.
#[inline(always)]
fn linear(p: &[f64], ncat: usize, covs: &[usize], data: &EngineData, r: usize, eta: &mut [f64]) {
    let per = 1 + covs.len();
    for (k, e) in eta.iter_mut().enumerate().take(ncat) {
        let c = &p[k * per..(k + 1) * per];
        let mut v = c[0];
        for (b, &cc) in c[1..].iter().zip(covs) {
            v += b * data.columns[cc][r];
        }
        *e = v;
    }
}

/// Without covariates, log P(u = k) per state (`logp[s * ncat + k]`).
pub(super) fn prepare(
    ns: usize,
    nl: usize,
    ncat: usize,
    covs: &[usize],
    params: Vec<f64>,
) -> Result<TermPrep, InvalidParams> {
    let mut logp = Vec::new();
    if covs.is_empty() {
        logp = vec![0.0; ns * ncat];
        for s in 0..ns {
            let a = &params[s * nl..s * nl + ncat];
            let lse = log_sum_exp(a);
            for k in 0..ncat {
                logp[s * ncat + k] = a[k] - lse;
            }
        }
    }
    Ok(TermPrep::Nominal { params, logp })
}

/// log P(u = observed | x, state) for rows `r0..r1` (0 for a missing `u`),
/// at the term's slots.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn values(
    ns: usize,
    nl: usize,
    col: usize,
    ncat: usize,
    covs: &[usize],
    params: &[f64],
    logp: &[f64],
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    scratch: &mut Scratch,
    out: &mut [f64],
) {
    let nr = r1 - r0;
    let y = &data.columns[col][r0..r1];
    let eta = grow(&mut scratch.a, ncat);
    for s in 0..ns {
        let o = &mut out[slots.state(s, nr)];
        let p = &params[s * nl..(s + 1) * nl];
        for (i, (v, &u)) in o.iter_mut().zip(y).enumerate() {
            *v = if u.is_nan() {
                0.0
            } else if covs.is_empty() {
                logp[s * ncat + u as usize]
            } else {
                linear(p, ncat, covs, data, r0 + i, eta);
                eta[u as usize] - log_sum_exp(eta)
            };
        }
    }
}

/// Each row's weighted score (see [`super::term_scores`]): `w_s (1[u = k]
/// − p_k) z` for category `k` of state `s`.
#[allow(clippy::too_many_arguments)]
pub(super) fn scores(
    ns: usize,
    nl: usize,
    col: usize,
    ncat: usize,
    covs: &[usize],
    params: &[f64],
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    w: &[f64],
    scratch: &mut Scratch,
    mut sink: impl FnMut(usize, usize, f64),
) {
    let per = 1 + covs.len();
    let prob = grow(&mut scratch.a, ncat);
    for r in r0..r1 {
        let u = data.columns[col][r];
        if u.is_nan() {
            continue;
        }
        let i = r - r0;
        for s in 0..ns {
            let ws = w[(slots.offset + s) * slots.stride + i];
            if ws == 0.0 {
                continue;
            }
            linear(&params[s * nl..(s + 1) * nl], ncat, covs, data, r, prob);
            softmax_into(prob);
            for (k, &pk) in prob.iter().enumerate() {
                let g = ws * (f64::from(u as usize == k) - pk);
                let base = s * nl + k * per;
                sink(i, base, g);
                for (j, &cc) in covs.iter().enumerate() {
                    sink(i, base + 1 + j, g * data.columns[cc][r]);
                }
            }
        }
    }
}

/// Expected information for rows `r0..r1` (see [`super::term_info`]):
/// without covariates only the observed rows' weight sums per state, which
/// [`finish_info`] turns into information; with covariates `w_s (diag(p)
/// − p p') ⊗ z z'` per observed row into `mats`.
#[allow(clippy::too_many_arguments)]
pub(super) fn info(
    ns: usize,
    nl: usize,
    col: usize,
    ncat: usize,
    covs: &[usize],
    params: &[f64],
    data: &EngineData,
    (r0, r1): (usize, usize),
    slots: Slots,
    (w, freq): (&[f64], &[f64]),
    scratch: &mut Scratch,
    mats: &mut [f64],
    wsum: &mut [f64],
) {
    let nr = r1 - r0;
    let y = &data.columns[col][r0..r1];
    if covs.is_empty() {
        for s in 0..ns {
            wsum[s] += weighted_sum(y, freq, &w[slots.state(s, nr)], super::observed);
        }
        return;
    }
    let per = 1 + covs.len();
    let (prob, z) = scratch.pair(ncat.max(per));
    let (prob, z) = (&mut prob[..ncat], &mut z[..per]);
    for r in r0..r1 {
        if data.columns[col][r].is_nan() {
            continue;
        }
        let i = r - r0;
        z[0] = 1.0;
        for (j, &cc) in covs.iter().enumerate() {
            z[1 + j] = data.columns[cc][r];
        }
        for s in 0..ns {
            let ws = freq[i] * w[(slots.offset + s) * slots.stride + i];
            if ws == 0.0 {
                continue;
            }
            linear(&params[s * nl..(s + 1) * nl], ncat, covs, data, r, prob);
            softmax_into(prob);
            add_logit_info(&mut mats[s * nl * nl..(s + 1) * nl * nl], prob, z, per, ws);
        }
    }
}

/// Row-independent information (see [`super::finish_info`]): without
/// covariates, `W_s (diag(p) − p p')` per state from the observed rows'
/// weight sum `W_s` and the precomputed `logp`.
pub(super) fn finish_info(
    ns: usize,
    nl: usize,
    ncat: usize,
    covs: &[usize],
    logp: &[f64],
    mats: &mut [f64],
    wsum: &[f64],
) {
    if !covs.is_empty() {
        return;
    }
    let mut prob = vec![0.0; ncat];
    for s in 0..ns {
        if wsum[s] == 0.0 {
            continue;
        }
        for k in 0..ncat {
            prob[k] = logp[s * ncat + k].exp();
        }
        add_logit_info(
            &mut mats[s * nl * nl..(s + 1) * nl * nl],
            &prob,
            &[1.0],
            1,
            wsum[s],
        );
    }
}
