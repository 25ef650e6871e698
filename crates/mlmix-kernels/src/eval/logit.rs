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
use crate::fastmath;

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
/// [`super::term_values`]): the precomputed `logp` without covariates;
/// with them, the logits column by column and one log-softmax per row, in
/// loops over rows (branch-free `fastmath`, so they vectorise).
#[inline(always)]
pub(super) fn values(
    n_sets: usize,
    nl: usize,
    classes: usize,
    covs: &[usize],
    params: &[f64],
    logp: &[f64],
    data: &EngineData,
    (r0, r1): (usize, usize),
    slots: Slots,
    scratch: &mut Scratch,
    out: &mut [f64],
) {
    let nr = r1 - r0;
    if covs.is_empty() {
        for (s, &lp) in logp.iter().enumerate() {
            out[slots.state(s, nr)].fill(lp);
        }
        return;
    }
    let (m, lse) = scratch.pair(nr);
    for set in 0..n_sets {
        let states = set * classes..(set + 1) * classes;
        logits(set, nl, classes, covs, params, data, (r0, r1), slots, out);
        row_max(states.clone(), nr, slots, out, m);
        lse.fill(0.0);
        for k in states.clone() {
            let o = &out[slots.state(k, nr)];
            for ((sv, &v), &mv) in lse.iter_mut().zip(o).zip(m.iter()) {
                *sv += fastmath::exp(v - mv);
            }
        }
        for (sv, &mv) in lse.iter_mut().zip(m.iter()) {
            *sv = mv + fastmath::ln(*sv);
        }
        for k in states.clone() {
            let o = &mut out[slots.state(k, nr)];
            for (v, &l) in o.iter_mut().zip(lse.iter()) {
                *v -= l;
            }
        }
    }
}

/// P(class) of each state for rows `r0..r1` (see [`super::term_probs`]):
/// exp of the precomputed `logp` without covariates; with them, one
/// softmax per row, in loops over rows.
#[inline(always)]
pub(super) fn probs(
    n_sets: usize,
    nl: usize,
    classes: usize,
    covs: &[usize],
    params: &[f64],
    logp: &[f64],
    data: &EngineData,
    (r0, r1): (usize, usize),
    slots: Slots,
    scratch: &mut Scratch,
    out: &mut [f64],
) {
    let nr = r1 - r0;
    if covs.is_empty() {
        for (s, &lp) in logp.iter().enumerate() {
            out[slots.state(s, nr)].fill(lp.exp());
        }
        return;
    }
    let (m, sum) = scratch.pair(nr);
    for set in 0..n_sets {
        let states = set * classes..(set + 1) * classes;
        logits(set, nl, classes, covs, params, data, (r0, r1), slots, out);
        row_max(states.clone(), nr, slots, out, m);
        sum.fill(0.0);
        for k in states.clone() {
            let o = &mut out[slots.state(k, nr)];
            for ((v, sv), &mv) in o.iter_mut().zip(sum.iter_mut()).zip(m.iter()) {
                *v = fastmath::exp(*v - mv);
                *sv += *v;
            }
        }
        for sv in sum.iter_mut() {
            *sv = 1.0 / *sv;
        }
        for k in states.clone() {
            let o = &mut out[slots.state(k, nr)];
            for (v, &inv) in o.iter_mut().zip(sum.iter()) {
                *v *= inv;
            }
        }
    }
}

/// The class logits of parameter set `set` for rows `r0..r1`, at the
/// states' slots: the intercept, the covariates' terms column by column,
/// and the class-on-class slots.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn logits(
    set: usize,
    nl: usize,
    classes: usize,
    covs: &[usize],
    params: &[f64],
    data: &EngineData,
    (r0, r1): (usize, usize),
    slots: Slots,
    out: &mut [f64],
) {
    let per = nl / classes;
    let q = covs.len();
    let p = &params[set * nl..(set + 1) * nl];
    for k in 0..classes {
        let c = &p[k * per..(k + 1) * per];
        let o = &mut out[slots.state(set * classes + k, r1 - r0)];
        o.fill(c[0]);
        // (a zero coefficient, as the reference class's and the upper
        // triangle of a random logits' Cholesky factor, adds nothing)
        for (&b, &col) in c[1..1 + q].iter().zip(covs) {
            if b == 0.0 {
                continue;
            }
            for (v, &x) in o.iter_mut().zip(&data.columns[col][r0..r1]) {
                *v += b * x;
            }
        }
        let parents: f64 = c[1 + q..].iter().sum();
        if parents != 0.0 {
            for v in o.iter_mut() {
                *v += parents;
            }
        }
    }
}

/// Per row, the largest of the states `states` into `m`.
#[inline(always)]
fn row_max(states: std::ops::Range<usize>, nr: usize, slots: Slots, out: &[f64], m: &mut [f64]) {
    m.fill(f64::NEG_INFINITY);
    for k in states {
        for (mv, &v) in m.iter_mut().zip(&out[slots.state(k, nr)]) {
            *mv = mv.max(v);
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

/// The gradient and the information of a class logit with covariates
/// (see [`super::term_accumulate`]), both in one pass over the rows, from
/// the class probabilities `given` (at `slots`, as [`probs`] gives them)
/// or, without them, computed once here (see [`rows_accumulate`]).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn accumulate(
    n_sets: usize,
    nl: usize,
    classes: usize,
    covs: &[usize],
    params: &[f64],
    logp: &[f64],
    data: &EngineData,
    rows: (usize, usize),
    slots: Slots,
    w: &[f64],
    freq: &[f64],
    given: Option<&[f64]>,
    scratch: &mut Scratch,
    grad: Option<&mut [f64]>,
    mats: Option<&mut [f64]>,
) {
    let cx = RowsCx {
        n_sets,
        nl,
        classes,
        covs,
        params,
        logp,
        data,
        rows,
    };
    rows_accumulate(&cx, slots, w, freq, given, scratch, grad, mats);
}

/// A class logit with covariates over rows `r0..r1`: what
/// [`rows_accumulate`] reads.
struct RowsCx<'a> {
    n_sets: usize,
    nl: usize,
    classes: usize,
    covs: &'a [usize],
    params: &'a [f64],
    logp: &'a [f64],
    data: &'a EngineData,
    rows: (usize, usize),
}

/// The gradient Σ_r (w_rk − W_r p_rk) z_r and the information
/// Σ_r W_r (diag(p_r) − p_r p_r') ⊗ z_r z_r' of a class logit with
/// covariates over rows `r0..r1` (W_r the row's weights summed, times its
/// frequency), in loops over rows that vectorise: the class probabilities
/// by [`probs`], then each sum as a dot product over the rows (the
/// information's entries by the pairs of classes and of regressors,
/// symmetric in both).
/// With `given`, the probabilities are those (at `slots`, as the
/// weights), not computed again.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn rows_accumulate(
    cx: &RowsCx<'_>,
    slots: Slots,
    w: &[f64],
    freq: &[f64],
    given: Option<&[f64]>,
    scratch: &mut Scratch,
    grad: Option<&mut [f64]>,
    mats: Option<&mut [f64]>,
) {
    let (r0, r1) = cx.rows;
    let nr = r1 - r0;
    let k_n = cx.classes;
    let per = cx.nl / k_n;
    let q = cx.covs.len();
    let mut buf = std::mem::take(&mut scratch.c);
    let (n_sets, nl, covs, params, logp, data) =
        (cx.n_sets, cx.nl, cx.covs, cx.params, cx.logp, cx.data);
    let own = match given {
        Some(_) => slots,
        None => {
            let own = Slots {
                stride: nr,
                offset: 0,
            };
            buf.resize(n_sets * k_n * nr, 0.0);
            let rows = (r0, r1);
            probs(
                n_sets, nl, k_n, covs, params, logp, data, rows, own, scratch, &mut buf,
            );
            own
        }
    };
    let prob: &[f64] = given.unwrap_or(&buf);
    // regressor a of row i: 1, the covariates, 1 for the parent slots
    let col = |a: usize| -> Option<&[f64]> {
        (1..=q)
            .contains(&a)
            .then(|| &data.columns[covs[a - 1]][r0..r1])
    };
    let mut grad = grad;
    let mut mats = mats;
    let (wsum, c) = scratch.pair(nr);
    for set in 0..n_sets {
        let wk = |k: usize| &w[slots.state(set * k_n + k, nr)];
        let pk = |k: usize| &prob[own.state(set * k_n + k, nr)];
        wsum.fill(0.0);
        for k in 0..k_n {
            for ((s, &x), &f) in wsum.iter_mut().zip(wk(k)).zip(freq) {
                *s += f * x;
            }
        }
        if let Some(g) = grad.as_deref_mut() {
            for k in 0..k_n {
                for (((d, &x), &f), (&ws, &p)) in c
                    .iter_mut()
                    .zip(wk(k))
                    .zip(freq)
                    .zip(wsum.iter().zip(pk(k)))
                {
                    *d = f * x - ws * p;
                }
                let base = set * nl + k * per;
                let total = fastmath::sum(c);
                g[base] += total;
                for a in 1..=q {
                    g[base + a] += fastmath::dot(c, col(a).unwrap_or(&[]));
                }
                for slot in base + 1 + q..base + per {
                    g[slot] += total;
                }
            }
        }
        let Some(m) = mats.as_deref_mut() else {
            continue;
        };
        let m = &mut m[set * nl * nl..(set + 1) * nl * nl];
        for k1 in 0..k_n {
            for k2 in k1..k_n {
                for (((d, &ws), &p1), &p2) in c.iter_mut().zip(wsum.iter()).zip(pk(k1)).zip(pk(k2))
                {
                    let diag = if k1 == k2 { p1 } else { 0.0 };
                    *d = ws * (diag - p1 * p2);
                }
                for a in 0..per {
                    for b in a..per {
                        let v = match (col(a), col(b)) {
                            (None, None) => fastmath::sum(c),
                            (Some(x), None) | (None, Some(x)) => fastmath::dot(c, x),
                            (Some(x), Some(y)) => fastmath::dot3(c, x, y),
                        };
                        // the entry's places by the symmetries (each once)
                        let (i1a, i1b) = (k1 * per + a, k1 * per + b);
                        let (i2a, i2b) = (k2 * per + a, k2 * per + b);
                        let mut at = [
                            i1a * nl + i2b,
                            i1b * nl + i2a,
                            i2b * nl + i1a,
                            i2a * nl + i1b,
                        ];
                        at.sort_unstable();
                        for (n, &x) in at.iter().enumerate() {
                            if n == 0 || at[n - 1] != x {
                                m[x] += v;
                            }
                        }
                    }
                }
            }
        }
    }
    scratch.c = buf;
}

/// Expected information for rows `r0..r1` (see [`super::term_info`]):
/// without covariates only the weight sums `wsum` (per state), which
/// [`finish_info`] turns into information; with covariates
/// `W (diag(p) - p p') ⊗ z z'` per run of equal rows into `mats`.
#[inline(always)]
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
    if covs.is_empty() {
        for s in 0..ns {
            let ws = &w[slots.state(s, nr)];
            wsum[s] += weighted_sum(ws, freq, ws, |_| 1.0);
        }
    } else {
        accumulate(
            n_sets,
            nl,
            classes,
            covs,
            params,
            logp,
            data,
            (r0, r1),
            slots,
            w,
            freq,
            None,
            scratch,
            None,
            Some(mats),
        );
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
