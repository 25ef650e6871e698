//! Binary items with a guessing parameter, the three-parameter model
//! ([`TermKind::Guessing`](crate::plan::TermKind::Guessing), Mplus's
//! `CATEGORICAL = u (3pl)`): P(u = 1) = g + (1 − g) F(η − τ), with F the
//! logistic or normal distribution function, η = Σ β x the linear predictor
//! (factors enter through node columns) and g = 1 / (1 + e^−γ) the guessing
//! probability, estimated on the logit scale γ. Local parameters
//! `[τ, β_1 .. β_q, γ]` per state.
//!
//! Writing t = τ − η, F₀ = F(t) (the 2PL probability of u = 0) and f its
//! density: P(u = 0) = (1 − g) F₀, P(u = 1) = 1 − P(u = 0), so
//! ∂P₀/∂τ = (1 − g) f, ∂P₀/∂β_k = −(1 − g) f x_k and ∂P₀/∂γ = −g (1 − g) F₀,
//! and ∂P₁ = −∂P₀. Scores are ∂P_u / P_u and the expected information
//! Σ_u ∂P_u ∂P_u' / P_u. The kind has no one-pass accumulation: the
//! general path sums the scores and the information.

use super::{Scratch, Slots, TermPrep, grow, lin_pred};
use crate::data::EngineData;
use crate::link::{self, Link};

/// ln(1 − e^a) for a < 0, accurate near 0 and for very negative a.
#[inline]
fn ln_1m_exp(a: f64) -> f64 {
    if a > -std::f64::consts::LN_2 {
        (-a.exp_m1()).ln()
    } else {
        (-a.exp()).ln_1p()
    }
}

/// ln(1 − g) = −ln(1 + e^γ), stable.
#[inline]
fn ln_one_minus_g(gamma: f64) -> f64 {
    if gamma > 0.0 {
        -gamma - (-gamma).exp().ln_1p()
    } else {
        -gamma.exp().ln_1p()
    }
}

/// g = 1 / (1 + e^−γ).
#[inline]
fn guess(gamma: f64) -> f64 {
    1.0 / (1.0 + (-gamma).exp())
}

/// ln P(u = `c`) at t = τ − η and logit guessing `gamma`.
#[inline]
pub fn log_prob(link: Link, t: f64, gamma: f64, c: usize) -> f64 {
    let ln_p0 = ln_one_minus_g(gamma) + link::log_cdf(link, t);
    if c == 0 { ln_p0 } else { ln_1m_exp(ln_p0) }
}

/// P(u = `c`) and its derivatives with respect to `[τ, β (x), γ]`,
/// written to `dp` (length `x.len() + 2`).
#[inline]
pub fn derivs(link: Link, t: f64, gamma: f64, c: usize, x: &[f64], dp: &mut [f64]) -> f64 {
    let g = guess(gamma);
    let f0 = link::cdf(link, t);
    let dens = link::pdf(link, t);
    let sign = if c == 0 { 1.0 } else { -1.0 };
    let q = x.len();
    dp[0] = sign * (1.0 - g) * dens;
    for (k, xk) in x.iter().enumerate() {
        dp[1 + k] = -sign * (1.0 - g) * dens * xk;
    }
    dp[q + 1] = -sign * g * (1.0 - g) * f0;
    let p0 = (1.0 - g) * f0;
    if c == 0 { p0 } else { 1.0 - p0 }
}

/// Checks nothing (any τ and γ are valid) and keeps the local parameters.
pub(super) fn prepare(params: Vec<f64>) -> TermPrep {
    TermPrep::Guessing { params }
}

/// Log-density of each of the `ns` states for rows `r0..r1` (see
/// [`super::term_values`]); a missing response contributes 0.
#[inline(always)]
pub(super) fn values(
    ns: usize,
    nl: usize,
    col: usize,
    link: Link,
    covs: &[usize],
    params: &[f64],
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
        let (tau, gamma) = (p[0], p[nl - 1]);
        let o = &mut out[slots.state(s, nr)];
        for (i, (x, &v)) in o.iter_mut().zip(y).enumerate() {
            *x = if v.is_nan() {
                0.0
            } else {
                let eta = lin_pred(&p[1..nl - 1], covs, data, r0 + i);
                log_prob(link, tau - eta, gamma, v as usize)
            };
        }
    }
}

/// The derivative vector of row `r` in state parameters `p` for response
/// `c` (see [`derivs`]), with the covariates gathered into `x`; returns
/// P(u = c).
#[inline]
fn row_derivs(
    link: Link,
    p: &[f64],
    covs: &[usize],
    data: &EngineData,
    r: usize,
    c: usize,
    x: &mut [f64],
    dp: &mut [f64],
) -> f64 {
    let nl = p.len();
    for (k, &cc) in covs.iter().enumerate() {
        x[k] = data.columns[cc][r];
    }
    let eta = lin_pred(&p[1..nl - 1], covs, data, r);
    derivs(link, p[0] - eta, p[nl - 1], c, x, dp)
}

/// Calls `f(i, s, w, dp)` for each observed row `i` of `r0..r1` and each
/// state `s` with a non-zero weight `w` (times `freq[i]` when given), once
/// per response `c` in `cs(v)` with `dp` the derivative vector of P(u = c)
/// (see [`derivs`]), and `P(u = c)` passed as the last argument.
#[allow(clippy::too_many_arguments)]
fn each_weighted(
    (ns, nl): (usize, usize),
    (col, link, covs): (usize, Link, &[usize]),
    params: &[f64],
    data: &EngineData,
    (r0, r1): (usize, usize),
    (slots, w, freq): (Slots, &[f64], Option<&[f64]>),
    scratch: &mut Scratch,
    cs: impl Fn(f64) -> std::ops::Range<usize>,
    mut f: impl FnMut(usize, usize, f64, &[f64], f64),
) {
    let wat = |s: usize, i: usize| w[(slots.offset + s) * slots.stride + i];
    let y = &data.columns[col][r0..r1];
    let dp = grow(&mut scratch.a, nl);
    let x = grow(&mut scratch.b, covs.len());
    for (i, &v) in y.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        for s in 0..ns {
            let ws = wat(s, i) * freq.map_or(1.0, |fr| fr[i]);
            if ws == 0.0 {
                continue;
            }
            let p = &params[s * nl..(s + 1) * nl];
            for c in cs(v) {
                let pc = row_derivs(link, p, covs, data, r0 + i, c, x, dp);
                f(i, s, ws, dp, pc.max(f64::MIN_POSITIVE));
            }
        }
    }
}

/// Each row's weighted score (see [`super::term_scores`]): ∂P_u / P_u.
pub(super) fn scores(
    ns: usize,
    nl: usize,
    col: usize,
    link: Link,
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
    each_weighted(
        (ns, nl),
        (col, link, covs),
        params,
        data,
        (r0, r1),
        (slots, w, None),
        scratch,
        |v| v as usize..v as usize + 1,
        |i, s, ws, dp, pc| {
            for (t, d) in dp.iter().enumerate() {
                sink(i, s * nl + t, ws * d / pc);
            }
        },
    );
}

/// Expected information for rows `r0..r1` (see [`super::term_info`]):
/// `Σ_u ∂P_u ∂P_u' / P_u` per row into `mats`.
pub(super) fn info(
    ns: usize,
    nl: usize,
    col: usize,
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
) {
    each_weighted(
        (ns, nl),
        (col, link, covs),
        params,
        data,
        (r0, r1),
        (slots, w, Some(freq)),
        scratch,
        |_| 0..2,
        |_, s, ws, dp, pc| {
            let m = &mut mats[s * nl * nl..(s + 1) * nl * nl];
            let f = ws / pc;
            for a in 0..nl {
                let fa = f * dp[a];
                for b in 0..nl {
                    m[a * nl + b] += fa * dp[b];
                }
            }
        },
    );
}
