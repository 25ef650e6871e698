//! Ordered categorical (or binary) dependent variables
//! ([`TermKind::Categorical`](crate::plan::TermKind::Categorical)): a
//! cumulative logit or probit model with thresholds `tau_1 < .. < tau_{C-1}`
//! and optional covariate slopes, local parameters
//! `[tau_1 .. tau_{C-1}, beta_1 .. beta_q]` per state.
//!
//! This module holds the kind's preparation (threshold checks and, without
//! covariates, the per-state category log-probabilities, their derivatives
//! and the expected information), its log-densities, weighted scores,
//! one-pass accumulation (weighted category counts without covariates),
//! expected information and its row-independent part, and the category
//! probability helpers [`cat_log_prob`] and [`cat_derivs`].

use super::{
    InfoAcc, InvalidParams, OnBase, RowPattern, Scratch, Slots, TermPrep, grow, lin_pred, observed,
    subtract_covs, weighted_sum,
};
use crate::data::EngineData;
use crate::fastmath;
use crate::link::{self, Link};

/// ln P(category `c`) for thresholds `tau` and linear predictor `eta`.
#[inline]
pub fn cat_log_prob(link: Link, tau: &[f64], ncat: usize, eta: f64, c: usize) -> f64 {
    let lower = (c > 0).then(|| tau[c - 1] - eta);
    let upper = (c + 1 < ncat).then(|| tau[c] - eta);
    link::category_log_prob(link, lower, upper)
}

/// P(category `c`) and its derivative with respect to the local parameters
/// `[tau_1 .. tau_{C-1}, beta_1 .. beta_q]` (written to `dp`, whose length is
/// `C - 1 + x.len()`).
#[inline]
pub fn cat_derivs(
    link: Link,
    tau: &[f64],
    ncat: usize,
    eta: f64,
    c: usize,
    x: &[f64],
    dp: &mut [f64],
) -> f64 {
    let l = ncat - 1;
    let lower = (c > 0).then(|| tau[c - 1] - eta);
    let upper = (c < l).then(|| tau[c] - eta);
    let p = link::category_prob(link, lower, upper);
    let fu = upper.map_or(0.0, |u| link::pdf(link, u));
    let fl = lower.map_or(0.0, |v| link::pdf(link, v));
    dp.iter_mut().for_each(|v| *v = 0.0);
    if c < l {
        dp[c] = fu;
    }
    if c > 0 {
        dp[c - 1] = -fl;
    }
    for (k, xk) in x.iter().enumerate() {
        dp[l + k] = -xk * (fu - fl);
    }
    p
}

/// Checks the thresholds of term `ti` (gathered local parameters `params`,
/// `n_local` per state) and, without covariates, precomputes the category
/// log-probabilities, their derivatives and the expected information per
/// state.
pub(super) fn prepare(
    ti: usize,
    n_states: usize,
    nl: usize,
    ncat: usize,
    link: Link,
    covs: &[usize],
    params: Vec<f64>,
) -> Result<TermPrep, InvalidParams> {
    let l = ncat - 1;
    for s in 0..n_states {
        let tau = &params[s * nl..s * nl + l];
        if tau.windows(2).any(|w| w[1] <= w[0]) {
            return Err(InvalidParams::Thresholds { term: ti, state: s });
        }
    }
    let (mut logp, mut dlogp, mut info) = (Vec::new(), Vec::new(), Vec::new());
    if covs.is_empty() {
        logp = vec![0.0; n_states * ncat];
        dlogp = vec![0.0; n_states * ncat * l];
        info = vec![0.0; n_states * l * l];
        let mut dp = vec![0.0; l];
        for s in 0..n_states {
            let tau = &params[s * nl..s * nl + l];
            for c in 0..ncat {
                let p = cat_derivs(link, tau, ncat, 0.0, c, &[], &mut dp);
                logp[s * ncat + c] = cat_log_prob(link, tau, ncat, 0.0, c);
                let pc = p.max(f64::MIN_POSITIVE);
                for t in 0..l {
                    dlogp[(s * ncat + c) * l + t] = dp[t] / pc;
                }
                for a in 0..l {
                    for b in 0..l {
                        info[s * l * l + a * l + b] += dp[a] * dp[b] / pc;
                    }
                }
            }
        }
    }
    Ok(TermPrep::Categorical {
        params,
        logp,
        dlogp,
        info,
    })
}

/// Log-density of each of the `ns` states for rows `r0..r1` (see
/// [`super::term_values`]); a missing category contributes 0.
#[inline(always)]
pub(super) fn values(
    ns: usize,
    nl: usize,
    col: usize,
    ncat: usize,
    link: Link,
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
    let y = &data.columns[col][r0..r1];
    let l = ncat - 1;
    if covs.is_empty() {
        for s in 0..ns {
            let lp = &logp[s * ncat..(s + 1) * ncat];
            let o = &mut out[slots.state(s, nr)];
            if ncat == 2 {
                let (a, b) = (lp[0], lp[1]);
                for (x, &v) in o.iter_mut().zip(y) {
                    *x = if v == 0.0 {
                        a
                    } else if v == 1.0 {
                        b
                    } else {
                        0.0
                    };
                }
            } else {
                for (x, &v) in o.iter_mut().zip(y) {
                    *x = if v.is_nan() { 0.0 } else { lp[v as usize] };
                }
            }
        }
    } else if ncat == 2 {
        let u = grow(&mut scratch.a, nr);
        for (s, p) in params.chunks_exact(nl).enumerate() {
            binary_u(p, covs, data, r0, r1, u);
            binary_values(link, y, u, &mut out[slots.state(s, nr)]);
        }
    } else {
        for (s, p) in params.chunks_exact(nl).enumerate() {
            for (i, &v) in y.iter().enumerate() {
                out[at(s, i)] = if v.is_nan() {
                    0.0
                } else {
                    let eta = lin_pred(&p[l..], covs, data, r0 + i);
                    cat_log_prob(link, &p[..l], ncat, eta, v as usize)
                };
            }
        }
    }
}

/// Each row's weighted score (see [`super::term_scores`]): from the
/// precomputed `dlogp` without covariates, from [`cat_derivs`] with them.
pub(super) fn scores(
    ns: usize,
    nl: usize,
    col: usize,
    ncat: usize,
    link: Link,
    covs: &[usize],
    params: &[f64],
    dlogp: &[f64],
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    w: &[f64],
    scratch: &mut Scratch,
    mut sink: impl FnMut(usize, usize, f64),
) {
    let wat = |s: usize, i: usize| w[(slots.offset + s) * slots.stride + i];
    let y = &data.columns[col][r0..r1];
    let l = ncat - 1;
    if covs.is_empty() {
        for (i, &v) in y.iter().enumerate() {
            if v.is_nan() {
                continue;
            }
            let c = v as usize;
            for s in 0..ns {
                let ws = wat(s, i);
                let g = &dlogp[(s * ncat + c) * l..(s * ncat + c + 1) * l];
                for (t, gt) in g.iter().enumerate() {
                    sink(i, s * nl + t, ws * gt);
                }
            }
        }
    } else {
        let q = covs.len();
        let dp = grow(&mut scratch.a, nl);
        let x = grow(&mut scratch.b, q);
        for (i, &v) in y.iter().enumerate() {
            if v.is_nan() {
                continue;
            }
            let r = r0 + i;
            let c = v as usize;
            for (k, &cc) in covs.iter().enumerate() {
                x[k] = data.columns[cc][r];
            }
            for s in 0..ns {
                let ws = wat(s, i);
                if ws == 0.0 {
                    continue;
                }
                let p = &params[s * nl..(s + 1) * nl];
                let eta = lin_pred(&p[l..], covs, data, r);
                let pc = cat_derivs(link, &p[..l], ncat, eta, c, x, dp).max(f64::MIN_POSITIVE);
                for t in 0..nl {
                    sink(i, s * nl + t, ws * dp[t] / pc);
                }
            }
        }
    }
}

/// The one-pass gradient and/or information (see
/// [`super::term_accumulate`]), taking from `grad` and `acc` what it
/// computes: without covariates from the weighted category counts, for a
/// binary term with covariates in one pass per state
/// ([`binary_accumulate`]). Other terms leave both to the general path.
pub(super) fn accumulate(
    ns: usize,
    nl: usize,
    pairs: &[(u32, u32)],
    col: usize,
    ncat: usize,
    link: Link,
    covs: &[usize],
    params: &[f64],
    dlogp: &[f64],
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    (w, given): (&[f64], Option<&[f64]>),
    freq: &[f64],
    (pattern, scratch): (Option<&RowPattern>, &mut Scratch),
    grad: &mut Option<&mut [f64]>,
    acc: &mut Option<&mut InfoAcc>,
) {
    if !covs.is_empty() {
        if ncat == 2 {
            // (a logit item's densities, where given, spare it the link)
            let given = given.filter(|_| link == Link::Logit);
            binary_accumulate(
                nl,
                pairs,
                col,
                link,
                covs,
                params,
                data,
                r0,
                r1,
                slots,
                (w, given),
                freq,
                (pattern, scratch),
                grad.take(),
                acc.take(),
            );
        }
        return;
    }
    let nr = r1 - r0;
    let y = &data.columns[col][r0..r1];
    let l = ncat - 1;
    let counts = grow(&mut scratch.a, ncat);
    let (mut grad, mut info) = (grad.take(), acc.take());
    for s in 0..ns {
        let ws = &w[slots.state(s, nr)];
        for (c, n) in counts.iter_mut().enumerate() {
            let cf = c as f64;
            *n = weighted_sum(y, freq, ws, |v| if v == cf { 1.0 } else { 0.0 });
        }
        if let Some(g) = grad.as_deref_mut() {
            for (c, &n) in counts.iter().enumerate() {
                let d = &dlogp[(s * ncat + c) * l..(s * ncat + c + 1) * l];
                for t in 0..l {
                    g[s * nl + t] += n * d[t];
                }
            }
        }
        if let Some(acc) = info.as_deref_mut() {
            acc.wsum[s] += counts.iter().sum::<f64>();
        }
    }
}

/// `u = tau - eta` of a binary term's rows `r0..r1` for the local
/// parameters `p = [tau, beta_1 .. beta_q]`, covariate by covariate (the
/// loops run over contiguous rows and vectorise).
fn binary_u(p: &[f64], covs: &[usize], data: &EngineData, r0: usize, r1: usize, u: &mut [f64]) {
    binary_u_of(p, covs, data, r0, r1, u, |_| true);
}

/// [`binary_u`] over the covariates whose column passes `pick`.
#[inline(always)]
fn binary_u_of(
    p: &[f64],
    covs: &[usize],
    data: &EngineData,
    r0: usize,
    r1: usize,
    u: &mut [f64],
    pick: impl Fn(usize) -> bool,
) {
    u.fill(p[0]);
    subtract_covs(u, &p[1..], covs, data, r0, r1, pick);
}

/// A binary term's log-probabilities `o` of the rows' categories `y`
/// from `u = tau - eta`; a missing category contributes 0.
#[inline(always)]
fn binary_values(link: Link, y: &[f64], u: &[f64], o: &mut [f64]) {
    match link {
        Link::Logit => {
            for ((x, &v), &u) in o.iter_mut().zip(y).zip(u) {
                // ln P(0) = ln F(u) = -softplus(-u), ln P(1) = -softplus(u)
                let val = -softplus(if v == 0.0 { -u } else { u });
                *x = if v.is_nan() { 0.0 } else { val };
            }
        }
        Link::Probit => {
            for ((x, &v), &u) in o.iter_mut().zip(y).zip(u) {
                // ln P(0) = ln F(u), ln P(1) = ln F(-u)
                *x = if v.is_nan() {
                    0.0
                } else {
                    link::log_cdf(link, if v == 0.0 { u } else { -u })
                };
            }
        }
    }
}

/// The node-free part of a binary term with covariates, `u` over the
/// covariates in columns below `node_col` (`tau - Σ β x`), per state at
/// the term's slots of `out` (see [`super::term_base`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn binary_base(
    nl: usize,
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
    for (s, p) in params.chunks_exact(nl).enumerate() {
        binary_u_of(p, covs, data, r0, r1, &mut out[slots.state(s, nr)], |c| {
            c < node_col
        });
    }
}

/// [`values`] of a binary term with covariates from its node-free part
/// `base` ([`binary_base`] on the same rows): only the node columns (from
/// `node_col` on) are subtracted; with a sparse `pattern` of the rows'
/// non-zero covariates, each row's own non-zero ones alone (the same
/// values: a zero entry subtracts nothing). With the base's exponentials
/// (`exps`, [`binary_base_exps`]) and the densities asked for, a logit
/// item whose node columns have the same coefficients in every state
/// takes its densities from e^base × e^−node ([`split_probs`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) fn binary_values_on_base(
    nl: usize,
    (col, link, covs): (usize, Link, &[usize]),
    params: &[f64],
    node_col: usize,
    data: &EngineData,
    (r0, r1): (usize, usize),
    slots: Slots,
    (base, exps, pattern): (&[f64], Option<&[f64]>, Option<&RowPattern>),
    scratch: &mut Scratch,
    mut out: OnBase<'_>,
) -> bool {
    let nr = r1 - r0;
    let y = &data.columns[col][r0..r1];
    // (the pattern's node entries are those from `node_col` on)
    let sparse = pattern.filter(|p| p.sparse && p.node_col == node_col);
    if let (Link::Logit, OnBase::ProbsElseLogs { probs, .. }, Some(exps)) = (link, &mut out, exps)
        && split_applies(nl, covs, params, node_col)
    {
        let at_node = (covs, node_col, data, (r0, r1), sparse);
        if let Some(e_node) = node_exps(&params[..nl], at_node, scratch) {
            for s in 0..params.len() / nl {
                let sl = slots.state(s, nr);
                split_probs(y, &exps[sl.clone()], e_node, &mut probs[sl]);
            }
            return true;
        }
    }
    let u = grow(&mut scratch.a, nr);
    for (s, p) in params.chunks_exact(nl).enumerate() {
        u.copy_from_slice(&base[slots.state(s, nr)]);
        if let Some(pat) = sparse {
            for &(i, k) in &pat.node {
                let (i, k) = (i as usize, k as usize);
                u[i] -= p[1 + k] * data.columns[covs[k]][r0 + i];
            }
        } else {
            subtract_covs(u, &p[1..], covs, data, r0, r1, |c| c >= node_col);
        }
        match (link, &mut out) {
            (Link::Logit, OnBase::ProbsElseLogs { probs, .. }) => {
                logit_probs(y, u, &mut probs[slots.state(s, nr)]);
            }
            (_, OnBase::Logs(o) | OnBase::ProbsElseLogs { logs: o, .. }) => {
                binary_values(link, y, u, &mut o[slots.state(s, nr)]);
            }
        }
    }
    matches!((link, out), (Link::Logit, OnBase::ProbsElseLogs { .. }))
}

/// The largest |x| of a node-free part, or of a node part, for which a
/// logit item's densities go by e^base × e^−node ([`split_probs`]): the
/// product and 1 plus it stay finite and above the smallest normal number.
pub(super) const SPLIT_LIMIT: f64 = 300.0;

/// The exponentials of a logit binary item's node-free part (`base`, its
/// states' slots, as [`binary_base`] wrote it) into `out` at the same
/// places, where every value is within [`SPLIT_LIMIT`]; false where one is
/// not (then `out` is of no use).
pub(super) fn binary_base_exps(base: &[f64], out: &mut [f64]) -> bool {
    let mut within = true;
    for (e, &b) in out.iter_mut().zip(base) {
        within &= b.abs() <= SPLIT_LIMIT;
        *e = fastmath::exp(b);
    }
    within
}

/// Whether the states' densities can share the node part (see
/// [`split_probs`]): there are several states (with one, nothing is
/// shared) and each node column (from `node_col` on) has the same
/// coefficient in every state (class-invariant loadings).
#[inline(always)]
fn split_applies(nl: usize, covs: &[usize], params: &[f64], node_col: usize) -> bool {
    let first = &params[..nl];
    params.len() >= 2 * nl
        && params.chunks_exact(nl).skip(1).all(|p| {
            covs.iter()
                .enumerate()
                .filter(|&(_, &c)| c >= node_col)
                .all(|(k, _)| p[1 + k] == first[1 + k])
        })
}

/// e^−n per row of `r0..r1`, n = Σ β x over the node columns (from
/// `node_col` on; with a `sparse` pattern, over the rows' non-zero ones
/// it lists), into `scratch.b`; `None` where some |n| is beyond
/// [`SPLIT_LIMIT`].
#[inline(always)]
#[allow(clippy::type_complexity)]
fn node_exps<'s>(
    p: &[f64],
    (covs, node_col, data, (r0, r1), sparse): (
        &[usize],
        usize,
        &EngineData,
        (usize, usize),
        Option<&RowPattern>,
    ),
    scratch: &'s mut Scratch,
) -> Option<&'s [f64]> {
    let n = grow(&mut scratch.b, r1 - r0);
    n.fill(0.0);
    if let Some(pat) = sparse {
        // the covariates' columns on these rows, found once
        let cols: Vec<&[f64]> = covs.iter().map(|&c| &data.columns[c][r0..r1]).collect();
        for &(i, k) in &pat.node {
            let (i, k) = (i as usize, k as usize);
            n[i] += p[1 + k] * cols[k][i];
        }
    } else {
        for (&b, &c) in p[1..].iter().zip(covs).filter(|&(_, &c)| c >= node_col) {
            for (x, &v) in n.iter_mut().zip(&data.columns[c][r0..r1]) {
                *x += b * v;
            }
        }
    }
    let mut within = true;
    for x in n.iter_mut() {
        within &= x.abs() <= SPLIT_LIMIT;
        *x = fastmath::exp(-*x);
    }
    within.then_some(&*n)
}

/// A logit item's probabilities from u = base − n split as e^u = e^base
/// × e^−n (`e_base` per row of the state, `e_node` per row, shared by the
/// states): P(1) = 1 / (1 + e^u), P(0) = e^u / (1 + e^u), 1 for a missing
/// category. One exponential per row and node for all the states, where
/// [`logit_probs`] takes one per row, node and state; a quotient of
/// positive numbers, as accurate as it.
#[inline(always)]
fn split_probs(y: &[f64], e_base: &[f64], e_node: &[f64], out: &mut [f64]) {
    for (((p, &v), &b), &n) in out.iter_mut().zip(y).zip(e_base).zip(e_node) {
        let e = b * n;
        let inv = 1.0 / (1.0 + e);
        let prob = if v == 0.0 { e * inv } else { inv };
        *p = if v.is_nan() { 1.0 } else { prob };
    }
}

/// The logit's probabilities themselves (1 for a missing category), not
/// their logs ([`binary_values`]): P = e^−softplus(z) = 1 / (1 + e^z),
/// which is t / (1 + t) for z ≥ 0 and 1 / (1 + t) below, t = e^−|z|; one
/// exponential and a division, no logarithm, and at least as accurate as
/// the exponential of the rounded logarithm.
#[inline(always)]
fn logit_probs(y: &[f64], u: &[f64], e: &mut [f64]) {
    for ((p, &v), &u) in e.iter_mut().zip(y).zip(u) {
        let z = if v == 0.0 { -u } else { u };
        let t = fastmath::exp(-z.abs());
        let prob = if z >= 0.0 { t } else { 1.0 } / (1.0 + t);
        *p = if v.is_nan() { 1.0 } else { prob };
    }
}

/// ln(1 + e^t), branch-free: max(t, 0) + ln(1 + e^-|t|).
#[inline(always)]
fn softplus(t: f64) -> f64 {
    t.max(0.0) + fastmath::ln_1p(fastmath::exp(-t.abs()))
}

/// The non-zero pattern of covariates `covs` on rows `r0..r1`: which
/// covariates of each row are not zero, row by row (see [`RowPattern`]).
pub(super) fn row_pattern(
    covs: &[usize],
    data: &EngineData,
    (r0, r1): (usize, usize),
    node_col: usize,
) -> RowPattern {
    let nr = r1 - r0;
    let mut pat = RowPattern {
        idx: Vec::new(),
        start: Vec::with_capacity(nr + 1),
        node: Vec::new(),
        node_col,
        sparse: false,
    };
    // row by row over the columns, branch-free: every entry is written at
    // the row's next place, which only a non-zero one keeps (long data's
    // dummies are non-zero every few rows, which a branch mispredicts)
    let cols: Vec<&[f64]> = covs.iter().map(|&c| &data.columns[c][r0..r1]).collect();
    pat.idx.resize(nr * cols.len() + 1, 0);
    pat.start.push(0);
    let mut p = 0;
    for i in 0..nr {
        for (k, col) in cols.iter().enumerate() {
            pat.idx[p] = k as u32;
            p += usize::from(col[i] != 0.0);
        }
        pat.start.push(p);
    }
    pat.idx.truncate(p);
    pat.sparse = 2 * p <= nr * cols.len();
    for (i, w) in pat.start.windows(2).enumerate() {
        for &k in &pat.idx[w[0]..w[1]] {
            if covs[k as usize] >= node_col {
                pat.node.push((i as u32, k));
            }
        }
    }
    pat
}

/// [`binary_accumulate`] row by row over the rows' non-zero covariates
/// (the places `pat` gives, their values read where `data` holds them at
/// this pass): a row of long data adds to its own item's entries only.
/// The same sums as the column-wise loops, in another order.
#[allow(clippy::too_many_arguments)]
fn binary_accumulate_sparse(
    nl: usize,
    col: usize,
    link: Link,
    params: &[f64],
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    (w, given): (&[f64], Option<&[f64]>),
    freq: &[f64],
    (covs, pat): (&[usize], &RowPattern),
    mut grad: Option<&mut [f64]>,
    mut acc: Option<&mut InfoAcc>,
) {
    let nr = r1 - r0;
    let y = &data.columns[col][r0..r1];
    // the covariates' columns on these rows, found once
    let cols: Vec<&[f64]> = covs.iter().map(|&c| &data.columns[c][r0..r1]).collect();
    let x = |k: u32, i: usize| cols[k as usize][i];
    for (s, p) in params.chunks_exact(nl).enumerate() {
        let ws = &w[slots.state(s, nr)];
        let dens = given.map(|d| &d[slots.state(s, nr)]);
        let mut g = grad.as_deref_mut().map(|g| &mut g[s * nl..(s + 1) * nl]);
        let mut m = acc
            .as_deref_mut()
            .map(|a| &mut a.mats[s * nl * nl..(s + 1) * nl * nl]);
        // the intercept's sum, which every row adds to, in a register:
        // through memory each row's addition waits for the one before
        let mut g0 = 0.0;
        for i in 0..nr {
            let (v, wf) = (y[i], freq[i] * ws[i]);
            if v.is_nan() || wf == 0.0 {
                continue;
            }
            let row = &pat.idx[pat.start[i]..pat.start[i + 1]];
            let (r, info_w) = match dens {
                Some(d) => logit_score_of_density(d[i], v),
                None => {
                    let u = p[0]
                        - row
                            .iter()
                            .map(|&k| p[1 + k as usize] * x(k, i))
                            .sum::<f64>();
                    binary_score(link, u, v)
                }
            };
            if let Some(g) = g.as_deref_mut() {
                let a = wf * r;
                g0 += a;
                for &k in row {
                    g[1 + k as usize] -= a * x(k, i);
                }
            }
            if let Some(m) = m.as_deref_mut() {
                // z = (1, -x), the outer product weighted
                let b = wf * info_w;
                m[0] += b;
                for (ia, &ka) in row.iter().enumerate() {
                    let xa = x(ka, i);
                    let ka = 1 + ka as usize;
                    m[ka * nl] -= b * xa;
                    m[ka] -= b * xa;
                    for &kb in &row[..=ia] {
                        let xb = x(kb, i);
                        let kb = 1 + kb as usize;
                        m[ka * nl + kb] += b * xa * xb;
                        if ka != kb {
                            m[kb * nl + ka] += b * xa * xb;
                        }
                    }
                }
            }
        }
        if let Some(g) = g {
            g[0] += g0;
        }
    }
}

/// A binary row's score factor r (d ln P / d u) and information weight
/// (f² (1/F + 1/(1 − F))) at `u = tau − eta` for category `v`: the
/// per-row factors of [`binary_accumulate`]'s loops.
#[inline(always)]
fn binary_score(link: Link, u: f64, v: f64) -> (f64, f64) {
    match link {
        Link::Logit => {
            let f = 1.0 / (1.0 + fastmath::exp(-u));
            (if v == 0.0 { 1.0 - f } else { -f }, f * (1.0 - f))
        }
        Link::Probit => {
            let d = link::pdf(link, u);
            let p0 = link::cdf(link, u).max(f64::MIN_POSITIVE);
            let p1 = link::cdf(link, -u).max(f64::MIN_POSITIVE);
            (
                if v == 0.0 { d / p0 } else { -d / p1 },
                d * d * (1.0 / p0 + 1.0 / p1),
            )
        }
    }
}

/// [`binary_score`] of a logit row from its density `p`, the probability
/// of its category `v` (as the product form computed it: see
/// [`binary_values_on_base`]): with F = P(0), r = 1 − F for v = 0 and −F
/// for v = 1, the weight F (1 − F); so r = ±(1 − p) and the weight p (1 −
/// p), without the link's exponential.
#[inline(always)]
fn logit_score_of_density(p: f64, v: f64) -> (f64, f64) {
    let q = 1.0 - p;
    (if v == 0.0 { q } else { -q }, p * q)
}

/// Gradient and/or information of a binary term with covariates in one
/// pass per state over contiguous rows: with u = tau - eta, F = F(u) =
/// P(0), f = F'(u), the score is `r (1, -x)` with r = f / F for y = 0 and
/// -f / (1 - F) for y = 1, and the expected information
/// `f^2 (1/F + 1/(1 - F)) (1, -x)(1, -x)'`, the same as [`scores`] and
/// [`info`] give for two categories. For the logit f = F (1 - F), so r =
/// 1{y = 0} - F and the weight is F (1 - F): branch-free, it vectorises.
#[allow(clippy::too_many_arguments)]
fn binary_accumulate(
    nl: usize,
    pairs: &[(u32, u32)],
    col: usize,
    link: Link,
    covs: &[usize],
    params: &[f64],
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    (w, given): (&[f64], Option<&[f64]>),
    freq: &[f64],
    (pattern, scratch): (Option<&RowPattern>, &mut Scratch),
    mut grad: Option<&mut [f64]>,
    mut acc: Option<&mut InfoAcc>,
) {
    if !pairs.is_empty() {
        // the pattern the caller fixed for these rows, or the rows' own
        let own;
        let pat = match pattern {
            Some(p) => p,
            None => {
                own = row_pattern(covs, data, (r0, r1), usize::MAX);
                &own
            }
        };
        if pat.sparse {
            let sc = (covs, pat);
            binary_accumulate_sparse(
                nl,
                col,
                link,
                params,
                data,
                r0,
                r1,
                slots,
                (w, given),
                freq,
                sc,
                grad,
                acc,
            );
            return;
        }
    }
    let nr = r1 - r0;
    let y = &data.columns[col][r0..r1];
    let (u, a) = scratch.pair(nr);
    for (s, p) in params.chunks_exact(nl).enumerate() {
        let ws = &w[slots.state(s, nr)];
        // the rows' score factors and information weights from u, or
        // from the given densities
        let dens = given.map(|d| &d[slots.state(s, nr)]);
        if dens.is_none() {
            binary_u(p, covs, data, r0, r1, u);
        }
        let at: &[f64] = dens.unwrap_or(u);
        let score = |x: f64, v: f64| match dens {
            Some(_) => logit_score_of_density(x, v),
            None => binary_score(link, x, v),
        };
        if let Some(g) = grad.as_deref_mut() {
            // a_i = freq_i w_i r_i, 0 for a missing y
            for ((((ai, &x), &v), &wi), &fi) in a.iter_mut().zip(at).zip(y).zip(ws).zip(freq) {
                *ai = if v.is_nan() {
                    0.0
                } else {
                    fi * wi * score(x, v).0
                };
            }
            let g = &mut g[s * nl..(s + 1) * nl];
            g[0] += a.iter().sum::<f64>();
            for (k, &c) in covs.iter().enumerate() {
                let x = &data.columns[c][r0..r1];
                g[1 + k] -= a.iter().zip(x).map(|(ai, xi)| ai * xi).sum::<f64>();
            }
        }
        if let Some(acc) = acc.as_deref_mut() {
            // a_i = freq_i w_i f^2 (1/F + 1/(1 - F))
            for ((((ai, &x), &v), &wi), &fi) in a.iter_mut().zip(at).zip(y).zip(ws).zip(freq) {
                *ai = if v.is_nan() {
                    0.0
                } else {
                    fi * wi * score(x, v).1
                };
            }
            let m = &mut acc.mats[s * nl * nl..(s + 1) * nl * nl];
            let col_of = |k: usize| (k > 0).then(|| &data.columns[covs[k - 1]][r0..r1]);
            let all = (0..nl).flat_map(|a| (0..=a).map(move |b| (a, b)));
            let live = pairs.iter().map(|&(a, b)| (a as usize, b as usize));
            let pairs: &mut dyn Iterator<Item = (usize, usize)> = if pairs.is_empty() {
                &mut all.into_iter()
            } else {
                &mut live.into_iter()
            };
            for (ka, kb) in pairs {
                // z = (1, -x): the signs of the two factors multiply
                let sign = if (ka > 0) != (kb > 0) { -1.0 } else { 1.0 };
                let sum: f64 = match (col_of(ka), col_of(kb)) {
                    (None, None) => a.iter().sum(),
                    (Some(xa), None) | (None, Some(xa)) => {
                        a.iter().zip(xa).map(|(ai, x)| ai * x).sum()
                    }
                    (Some(xa), Some(xb)) => a
                        .iter()
                        .zip(xa)
                        .zip(xb)
                        .map(|((ai, x1), x2)| ai * x1 * x2)
                        .sum(),
                };
                m[ka * nl + kb] += sign * sum;
                if ka != kb {
                    m[kb * nl + ka] += sign * sum;
                }
            }
        }
    }
}

/// Expected information for rows `r0..r1` (see [`super::term_info`]):
/// without covariates only the weight sums `wsum` (per state), which
/// [`finish_info`] turns into information; with covariates
/// `Σ_c (∂P_c)(∂P_c)' / P_c` per row into `mats`.
pub(super) fn info(
    ns: usize,
    nl: usize,
    col: usize,
    ncat: usize,
    link: Link,
    covs: &[usize],
    params: &[f64],
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
    let y = &data.columns[col][r0..r1];
    if covs.is_empty() {
        for s in 0..ns {
            let ws = &w[slots.state(s, nr)];
            wsum[s] += weighted_sum(y, freq, ws, observed);
        }
    } else {
        let l = ncat - 1;
        let q = covs.len();
        let dp = grow(&mut scratch.a, nl);
        let x = grow(&mut scratch.b, q);
        for (i, &v) in y.iter().enumerate() {
            if v.is_nan() {
                continue;
            }
            let r = r0 + i;
            for (k, &cc) in covs.iter().enumerate() {
                x[k] = data.columns[cc][r];
            }
            for s in 0..ns {
                let ws = wat(s, i) * freq[i];
                if ws == 0.0 {
                    continue;
                }
                let p = &params[s * nl..(s + 1) * nl];
                let eta = lin_pred(&p[l..], covs, data, r);
                let m = &mut mats[s * nl * nl..(s + 1) * nl * nl];
                for c in 0..ncat {
                    let pc = cat_derivs(link, &p[..l], ncat, eta, c, x, dp).max(f64::MIN_POSITIVE);
                    let f = ws / pc;
                    for a in 0..nl {
                        let fa = f * dp[a];
                        for b in 0..nl {
                            m[a * nl + b] += fa * dp[b];
                        }
                    }
                }
            }
        }
    }
}

/// Row-independent information (see [`super::finish_info`]): without
/// covariates, the weight sum of each state times the precomputed
/// per-state information `info` (`L x L`).
pub(super) fn finish_info(
    ns: usize,
    nl: usize,
    ncat: usize,
    covs: &[usize],
    info: &[f64],
    mats: &mut [f64],
    wsum: &[f64],
) {
    if covs.is_empty() {
        let l = ncat - 1;
        for s in 0..ns {
            let m = &mut mats[s * nl * nl..(s + 1) * nl * nl];
            for a in 0..l {
                for b in 0..l {
                    m[a * nl + b] += wsum[s] * info[s * l * l + a * l + b];
                }
            }
        }
    }
}
