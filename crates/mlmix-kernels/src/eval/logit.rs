//! The multinomial logit of a class variable
//! ([`TermKind::ClassLogit`](crate::plan::TermKind::ClassLogit)): P(class k)
//! is the softmax of `alpha_k + beta_k'x + Σ gamma_k` (the class-on-class
//! slots of the parent classes), local parameters `per = 1 + q + parents`
//! per class and `classes * per` per parameter set; the term's states are
//! (set, class) pairs.
//!
//! This module holds the kind's preparation (without covariates, log
//! P(class) per state), its log-densities, weighted scores, one-pass
//! accumulation (one softmax and one gradient update per run of rows with
//! equal covariates), expected information (`(diag(p) - p p') ⊗ z z'` per
//! run) and its row-independent part (without covariates), and the helpers
//! for runs of equal rows and class probabilities.

use super::{Scratch, Slots, TermPrep, grow, lin_pred, log_sum_exp, weighted_sum};
use crate::data::EngineData;

/// Without covariates, precomputes log P(class) per state from the
/// gathered local parameters `params` (`n_local` per set).
pub(super) fn prepare(
    n_states: usize,
    n_sets: usize,
    nl: usize,
    classes: usize,
    covs: &[usize],
    params: Vec<f64>,
) -> TermPrep {
    let k_n = classes;
    let mut logp = Vec::new();
    if covs.is_empty() {
        logp = vec![0.0; n_states];
        let per = nl / k_n;
        let mut eta = vec![0.0; k_n];
        for set in 0..n_sets {
            let p = &params[set * nl..(set + 1) * nl];
            for (k, e) in eta.iter_mut().enumerate() {
                // intercept plus the class-on-class slots (z = 1)
                *e = p[k * per] + p[k * per + 1..(k + 1) * per].iter().sum::<f64>();
            }
            let lse = log_sum_exp(&eta);
            for k in 0..k_n {
                logp[set * k_n + k] = eta[k] - lse;
            }
        }
    }
    TermPrep::ClassLogit { params, logp }
}

/// The end of the run of rows from `start` (before `r1`) with the same
/// values of `covs` as row `start` (NaN never equals). The class-logit
/// kernels take a run at once: one softmax per run. Under a random logit
/// intercept whose node column is the only covariate, a run is a cluster.
#[inline]
fn run_end(covs: &[usize], data: &EngineData, start: usize, r1: usize) -> usize {
    let mut end = start + 1;
    while end < r1
        && covs
            .iter()
            .all(|&c| data.columns[c][end] == data.columns[c][start])
    {
        end += 1;
    }
    end
}

/// P(class k | row r) for parameter set `set` into `prob`: the softmax of
/// the class logits (from `logp` without covariates).
#[allow(clippy::too_many_arguments)]
fn class_probs(
    params: &[f64],
    logp: &[f64],
    set: usize,
    k_n: usize,
    per: usize,
    q: usize,
    covs: &[usize],
    data: &EngineData,
    r: usize,
    prob: &mut [f64],
) {
    if covs.is_empty() {
        for k in 0..k_n {
            prob[k] = logp[set * k_n + k].exp();
        }
        return;
    }
    let nl = k_n * per;
    let p = &params[set * nl..(set + 1) * nl];
    for (k, e) in prob.iter_mut().enumerate() {
        let c = &p[k * per..(k + 1) * per];
        *e = c[0] + lin_pred(&c[1..1 + q], covs, data, r) + c[1 + q..].iter().sum::<f64>();
    }
    softmax_into(prob);
}

/// Log P(class) of each state for rows `r0..r1` (see
/// [`super::term_values`]): the precomputed `logp` without covariates, one
/// log-softmax per run of equal rows with them.
#[inline(always)]
pub(super) fn values(
    n_sets: usize,
    nl: usize,
    classes: usize,
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
    let at = |s: usize, i: usize| (slots.offset + s) * slots.stride + i;
    let k_n = classes;
    if covs.is_empty() {
        for (s, &lp) in logp.iter().enumerate() {
            out[slots.state(s, nr)].fill(lp);
        }
    } else {
        let per = nl / k_n;
        let q = covs.len();
        let eta = grow(&mut scratch.a, k_n);
        let mut start = r0;
        while start < r1 {
            let end = run_end(covs, data, start, r1);
            for set in 0..n_sets {
                let p = &params[set * nl..(set + 1) * nl];
                for (k, e) in eta.iter_mut().enumerate() {
                    let c = &p[k * per..(k + 1) * per];
                    *e = c[0]
                        + lin_pred(&c[1..1 + q], covs, data, start)
                        + c[1 + q..].iter().sum::<f64>();
                }
                let lse = log_sum_exp(eta);
                for k in 0..k_n {
                    for r in start..end {
                        out[at(set * k_n + k, r - r0)] = eta[k] - lse;
                    }
                }
            }
            start = end;
        }
    }
}

/// Each row's weighted score (see [`super::term_scores`]):
/// `(w_k - W p_k) z` for class k of each set, with `W` the set's weight
/// sum and `z` the intercept, covariates and class-on-class slots.
pub(super) fn scores(
    n_sets: usize,
    nl: usize,
    classes: usize,
    covs: &[usize],
    params: &[f64],
    logp: &[f64],
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    w: &[f64],
    scratch: &mut Scratch,
    mut sink: impl FnMut(usize, usize, f64),
) {
    let wat = |s: usize, i: usize| w[(slots.offset + s) * slots.stride + i];
    let k_n = classes;
    let per = nl / k_n;
    let q = covs.len();
    let prob = grow(&mut scratch.a, k_n * n_sets);
    let wset = grow(&mut scratch.b, k_n);
    let mut start = r0;
    while start < r1 {
        let end = run_end(covs, data, start, r1);
        for set in 0..n_sets {
            let pr = &mut prob[set * k_n..(set + 1) * k_n];
            class_probs(params, logp, set, k_n, per, q, covs, data, start, pr);
        }
        for r in start..end {
            let i = r - r0;
            for set in 0..n_sets {
                for (k, x) in wset.iter_mut().enumerate() {
                    *x = wat(set * k_n + k, i);
                }
                let wsum: f64 = wset.iter().sum();
                if wsum == 0.0 {
                    continue;
                }
                for k in 0..k_n {
                    let g = wset[k] - wsum * prob[set * k_n + k];
                    let base = set * nl + k * per;
                    sink(i, base, g);
                    for (j, &cc) in covs.iter().enumerate() {
                        sink(i, base + 1 + j, g * data.columns[cc][r]);
                    }
                    for slot in base + 1 + q..base + per {
                        sink(i, slot, g);
                    }
                }
            }
        }
        start = end;
    }
}

/// The gradient of a class logit with covariates (see
/// [`super::term_accumulate`]), taken from `grad`: summed over each run of
/// rows with equal covariates (one softmax and one update per run). The
/// information, and the gradient without covariates, are left to the
/// general path.
pub(super) fn accumulate(
    n_sets: usize,
    nl: usize,
    classes: usize,
    covs: &[usize],
    params: &[f64],
    logp: &[f64],
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    w: &[f64],
    freq: &[f64],
    scratch: &mut Scratch,
    grad: &mut Option<&mut [f64]>,
) {
    if covs.is_empty() {
        return;
    }
    let Some(g) = grad.take() else {
        return;
    };
    // the score summed over a run of rows with the same covariates
    // is (W_k - W p_k) z: one softmax and one update per run
    let k_n = classes;
    let per = nl / k_n;
    let q = covs.len();
    let wat = |s: usize, i: usize| w[(slots.offset + s) * slots.stride + i];
    let prob = grow(&mut scratch.a, k_n);
    let wk = grow(&mut scratch.b, k_n);
    let mut start = r0;
    while start < r1 {
        let end = run_end(covs, data, start, r1);
        for set in 0..n_sets {
            for (k, x) in wk.iter_mut().enumerate() {
                *x = (start - r0..end - r0)
                    .map(|i| freq[i] * wat(set * k_n + k, i))
                    .sum();
            }
            let wsum: f64 = wk.iter().sum();
            if wsum == 0.0 {
                continue;
            }
            class_probs(params, logp, set, k_n, per, q, covs, data, start, prob);
            for k in 0..k_n {
                let gk = wk[k] - wsum * prob[k];
                let base = set * nl + k * per;
                g[base] += gk;
                for (j, &cc) in covs.iter().enumerate() {
                    g[base + 1 + j] += gk * data.columns[cc][start];
                }
                for slot in base + 1 + q..base + per {
                    g[slot] += gk;
                }
            }
        }
        start = end;
    }
}

/// Expected information for rows `r0..r1` (see [`super::term_info`]):
/// without covariates only the weight sums `wsum` (per state), which
/// [`finish_info`] turns into information; with covariates
/// `W (diag(p) - p p') ⊗ z z'` per run of equal rows into `mats`.
pub(super) fn info(
    ns: usize,
    n_sets: usize,
    nl: usize,
    classes: usize,
    covs: &[usize],
    params: &[f64],
    logp: &[f64],
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    w: &[f64],
    freq: &[f64],
    scratch: &mut Scratch,
    mats: &mut [f64],
    wsum: &mut [f64],
) {
    let nr = r1 - r0;
    let wat = |s: usize, i: usize| w[(slots.offset + s) * slots.stride + i];
    let k_n = classes;
    if covs.is_empty() {
        for s in 0..ns {
            let ws = &w[slots.state(s, nr)];
            wsum[s] += weighted_sum(ws, freq, ws, |_| 1.0);
        }
    } else {
        let per = nl / k_n;
        let q = covs.len();
        let prob = grow(&mut scratch.a, k_n);
        let z = grow(&mut scratch.b, per);
        // runs of consecutive rows with the same covariates (a
        // cluster's rows under a random logit intercept) have the
        // same (diag(p) - p p') ⊗ z z': their weights are summed
        // and the block is added once per run
        let mut start = r0;
        while start < r1 {
            let end = run_end(covs, data, start, r1);
            z[0] = 1.0;
            for (j, &cc) in covs.iter().enumerate() {
                z[1 + j] = data.columns[cc][start];
            }
            for v in z[1 + q..].iter_mut() {
                *v = 1.0;
            }
            for set in 0..n_sets {
                let wsum: f64 = (start - r0..end - r0)
                    .map(|i| freq[i] * (0..k_n).map(|k| wat(set * k_n + k, i)).sum::<f64>())
                    .sum();
                if wsum == 0.0 {
                    continue;
                }
                class_probs(params, logp, set, k_n, per, q, covs, data, start, prob);
                add_logit_info(
                    &mut mats[set * nl * nl..(set + 1) * nl * nl],
                    prob,
                    z,
                    per,
                    wsum,
                );
            }
            start = end;
        }
    }
}

/// Turns logits into probabilities in place (a stable softmax).
#[inline]
pub(super) fn softmax_into(eta: &mut [f64]) {
    let m = eta.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for e in eta.iter_mut() {
        *e = (*e - m).exp();
        sum += *e;
    }
    let inv = 1.0 / sum;
    for e in eta.iter_mut() {
        *e *= inv;
    }
}

/// Adds `wsum * (diag(p) - p p') ⊗ z z'` to a logit information block
/// (`per` local parameters per category or class, `z` their regressors);
/// a nominal term's block too ([`super::nominal`]).
pub(super) fn add_logit_info(mat: &mut [f64], prob: &[f64], z: &[f64], per: usize, wsum: f64) {
    let k_n = prob.len();
    let nl = k_n * per;
    for k1 in 0..k_n {
        for k2 in 0..k_n {
            let c = wsum * (if k1 == k2 { prob[k1] } else { 0.0 } - prob[k1] * prob[k2]);
            if c == 0.0 {
                continue;
            }
            for a in 0..per {
                for b in 0..per {
                    mat[(k1 * per + a) * nl + k2 * per + b] += c * z[a] * z[b];
                }
            }
        }
    }
}

/// Row-independent information (see [`super::finish_info`]): without
/// covariates, `W (diag(p) - p p') ⊗ 1 1'` per set from the set's weight
/// sum `W` and the precomputed `logp`.
pub(super) fn finish_info(
    n_sets: usize,
    nl: usize,
    classes: usize,
    covs: &[usize],
    logp: &[f64],
    mats: &mut [f64],
    wsums: &[f64],
) {
    if covs.is_empty() {
        let k_n = classes;
        let per = nl / k_n;
        let mut prob = vec![0.0; k_n];
        let z = vec![1.0; per];
        for set in 0..n_sets {
            let wsum: f64 = wsums[set * k_n..(set + 1) * k_n].iter().sum();
            if wsum == 0.0 {
                continue;
            }
            for k in 0..k_n {
                prob[k] = logp[set * k_n + k].exp();
            }
            add_logit_info(
                &mut mats[set * nl * nl..(set + 1) * nl * nl],
                &prob,
                &z,
                per,
                wsum,
            );
        }
    }
}
