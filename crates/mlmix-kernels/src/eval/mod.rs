//! Term kernels: log-densities, weighted scores and expected information for
//! a range of rows, one term at a time (term-major, so the inner loops run
//! over rows and vectorise).
//!
//! For one evaluation at a parameter vector phi, [`prepare`] gathers each
//! term's parameters and precomputes what does not depend on the row
//! (category log-probabilities without covariates, inverse covariance
//! matrices per missing-data pattern). The chunk functions then take a row
//! range `r0..r1` and read and write slot-major buffers in which each term's
//! states have their [`Slots`]: every state's values (and posterior
//! weights) are contiguous over the chunk's rows. The score of a term is the derivative of its log-density
//! with respect to its local parameters; the information is the expected
//! (Fisher) information of the complete-data log-likelihood, which is what
//! the EM step (Fisher scoring on the expected complete-data log-likelihood)
//! needs.
//!
//! Each term kind is one module holding its part of [`prepare`] and its
//! values, scores, accumulation, information and row-independent
//! information, with flat arguments (the kind's fields and prepared
//! parameters as slices and numbers, the scratch passed in):
//! `categorical` ([`TermKind::Categorical`]), `guessing`
//! ([`TermKind::Guessing`], the 3PL), `normal` ([`TermKind::Normal`]),
//! `block` ([`TermKind::NormalBlock`]), `logit`
//! ([`TermKind::ClassLogit`]) and `nominal` ([`TermKind::Nominal`], a
//! multinomial logit of an observed category, reusing `logit`'s algebra). This module keeps the shared types and
//! helpers, [`prepare`], and the public kernels ([`term_values`],
//! [`term_scores`], [`term_accumulate`], [`term_info`], [`finish_info`]),
//! each a dispatch on the term kind.

mod block;
mod categorical;
mod guessing;
mod logit;
mod nominal;
mod normal;

pub use block::spd_inverse;
pub use categorical::{cat_derivs, cat_log_prob};

use std::ops::Range;

use crate::data::EngineData;
use crate::plan::{NONE, Plan, Term, TermKind};

// (the Cholesky helpers below index small dense matrices explicitly)

/// A parameter vector outside the model's domain.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidParams {
    /// Thresholds of a categorical variable are not increasing.
    #[error("thresholds of term {term} are not increasing in state {state}")]
    Thresholds {
        /// Term index.
        term: usize,
        /// State.
        state: usize,
    },
    /// A variance is not positive.
    #[error("a variance of term {term} is not positive in state {state}")]
    Variance {
        /// Term index.
        term: usize,
        /// State.
        state: usize,
    },
    /// A covariance matrix is not positive definite.
    #[error("the covariance matrix of term {term} is not positive definite in state {state}")]
    Covariance {
        /// Term index.
        term: usize,
        /// State.
        state: usize,
    },
    /// A random-effect covariance matrix is not positive semi-definite.
    #[error("the covariance matrix of random-effect block {block} is not positive semi-definite")]
    RandomCovariance {
        /// Index into [`Plan::chol`].
        block: usize,
    },
    /// A parameter is not finite.
    #[error("a parameter is not finite")]
    NotFinite,
}

/// Row-independent precomputation for one term at one phi.
#[derive(Debug, Clone, PartialEq)]
pub enum TermPrep {
    /// Categorical.
    Categorical {
        /// Local parameters per set.
        params: Vec<f64>,
        /// Without covariates: `logp[s * ncat + c]`.
        logp: Vec<f64>,
        /// Without covariates: `dlogp[(s * ncat + c) * L + t]`.
        dlogp: Vec<f64>,
        /// Without covariates: expected information per state, `L x L`.
        info: Vec<f64>,
    },
    /// Binary with a guessing parameter (3PL).
    Guessing {
        /// Local parameters per set.
        params: Vec<f64>,
    },
    /// Normal.
    Normal {
        /// Local parameters per set.
        params: Vec<f64>,
        /// 1/theta per state.
        inv_var: Vec<f64>,
        /// -(ln 2π + ln theta)/2 per state.
        log_norm: Vec<f64>,
    },
    /// Multivariate normal block.
    NormalBlock {
        /// Local parameters per set.
        params: Vec<f64>,
        /// Per (state, pattern): the inverse of the observed covariance
        /// block (`do x do`), in `inv[offset..]`.
        inv: Vec<f64>,
        /// Offsets into `inv` per (state, pattern).
        inv_offset: Vec<usize>,
        /// -(do ln 2π + ln det)/2 per (state, pattern).
        log_norm: Vec<f64>,
    },
    /// Nominal dependent variable.
    Nominal {
        /// Local parameters per set.
        params: Vec<f64>,
        /// Without covariates: `logp[s * ncat + k]`.
        logp: Vec<f64>,
    },
    /// Class logit.
    ClassLogit {
        /// Local parameters per set.
        params: Vec<f64>,
        /// Without covariates: log P(class) per state.
        logp: Vec<f64>,
    },
}

/// The prepared parameters of all terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// One per plan term.
    pub terms: Vec<TermPrep>,
    /// The extended parameter vector: phi, then the random-effect entries
    /// of every block (Cholesky factors L and, with regressions among the
    /// random effects, M = (I - B)^-1 L; see [`crate::plan::CholBlock`]),
    /// then the derived means and covariate effects
    /// ([`crate::plan::Derived`]).
    pub ext: Vec<f64>,
    /// The chain rule from the extended entries to phi: `(e, p, d ext[e] /
    /// d phi[p])` for every `e >= n_phi` (phi entries map to themselves);
    /// pairs may repeat (their derivatives add).
    pub jac: Vec<(u32, u32, f64)>,
}

/// Cholesky factor of a packed lower-triangular symmetric matrix, allowing
/// zero pivots (a random effect with variance 0); `None` if the matrix is
/// not positive semi-definite.
pub fn cholesky_psd(psi: &[f64], m: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; m * m];
    let at = |i: usize, j: usize| psi[i * (i + 1) / 2 + j];
    for j in 0..m {
        let mut d = at(j, j);
        for k in 0..j {
            d -= l[j * m + k] * l[j * m + k];
        }
        let scale = at(j, j).abs().max(1e-300);
        if d < -1e-12 * scale {
            return None;
        }
        let ljj = if d <= 1e-14 * scale { 0.0 } else { d.sqrt() };
        l[j * m + j] = ljj;
        for i in j + 1..m {
            let mut v = at(i, j);
            for k in 0..j {
                v -= l[i * m + k] * l[j * m + k];
            }
            if ljj == 0.0 {
                if v.abs() > 1e-10 * (at(i, i).abs() * scale).sqrt().max(1e-300) {
                    return None;
                }
                l[i * m + j] = 0.0;
            } else {
                l[i * m + j] = v / ljj;
            }
        }
    }
    Some(l)
}

/// `(ext index, phi index, derivative)` triplets.
type ChainRule = Vec<(u32, u32, f64)>;

/// The derivatives of the Cholesky factor `l` (`m x m`, row-major) of a
/// covariance block with respect to its free entries (`psi`: packed lower
/// triangle of phi indices, [`NONE`] for zero): `(row, column, phi index,
/// dL[row][column] / dPsi)`, by dL = L Phi(L^-1 E L^-T). A zero pivot (a
/// random effect of variance 0, whose row and column of Psi are zero in a
/// positive semi-definite block) has no derivative there: the rows and
/// columns of positive pivots form the Cholesky factor of their own
/// sub-block, and their derivatives are that sub-block's.
fn cholesky_derivatives(l: &[f64], psi: &[u32], m: usize) -> Vec<(usize, usize, u32, f64)> {
    let keep: Vec<usize> = (0..m).filter(|&i| l[i * m + i] != 0.0).collect();
    let k = keep.len();
    let ls = |r: usize, c: usize| l[keep[r] * m + keep[c]];
    let mut linv = vec![0.0; k * k];
    for c in 0..k {
        for r in c..k {
            let mut v = if r == c { 1.0 } else { 0.0 };
            for t in c..r {
                v -= ls(r, t) * linv[t * k + c];
            }
            linv[r * k + c] = v / ls(r, r);
        }
    }
    let mut dl = Vec::new();
    let mut x = vec![0.0; k * k];
    for a in 0..k {
        for bb in 0..=a {
            let (ga, gb) = (keep[a], keep[bb]);
            let p = psi[ga * (ga + 1) / 2 + gb];
            if p == NONE {
                continue;
            }
            for r in 0..k {
                for s2 in 0..k {
                    let mut v = linv[r * k + a] * linv[s2 * k + bb];
                    if a != bb {
                        v += linv[r * k + bb] * linv[s2 * k + a];
                    }
                    x[r * k + s2] = v;
                }
            }
            for r in 0..k {
                for c in 0..=r {
                    // (L Phi(X))[r][c] = Σ_{t >= c, t <= r} L[r][t] Phi[t][c]
                    let mut v = 0.0;
                    for t in c..=r {
                        let phi_tc = if t == c {
                            0.5 * x[t * k + c]
                        } else {
                            x[t * k + c]
                        };
                        v += ls(r, t) * phi_tc;
                    }
                    if v != 0.0 {
                        dl.push((keep[r], keep[c], p, v));
                    }
                }
            }
        }
    }
    dl
}

/// Fills the random-effect entries of the extended vector and their chain
/// rule to phi: the Cholesky factors L of the residual covariance blocks,
/// M = (I - B)^-1 L for blocks with regressions among their random effects,
/// and the derived means and covariate effects (see
/// [`crate::plan::Derived`]).
fn random_entries(plan: &Plan, phi: &[f64]) -> Result<(Vec<f64>, ChainRule), InvalidParams> {
    let mut ext = phi.to_vec();
    ext.resize(plan.n_ext, 0.0);
    let mut jac = Vec::new();
    // A = (I - B)^-1 of each block with regressions (m x m, row-major)
    let mut a_of: Vec<Option<Vec<f64>>> = vec![None; plan.chol.len()];
    for (bi, b) in plan.chol.iter().enumerate() {
        let m = b.dims.len();
        let psi: Vec<f64> = b
            .psi
            .iter()
            .map(|&i| if i == NONE { 0.0 } else { phi[i as usize] })
            .collect();
        let Some(l) = cholesky_psd(&psi, m) else {
            return Err(InvalidParams::RandomCovariance { block: bi });
        };
        for i in 0..m {
            for j in 0..=i {
                ext[b.l[i * (i + 1) / 2 + j] as usize] = l[i * m + j];
            }
        }
        let dl = cholesky_derivatives(&l, &b.psi, m);
        for &(r, c, p, v) in &dl {
            jac.push((b.l[r * (r + 1) / 2 + c], p, v));
        }
        if b.beta.is_empty() {
            continue;
        }
        // B is strictly lower triangular (every random effect after those
        // it is regressed on), so A = I + B A row by row
        let mut bm = vec![0.0; m * m];
        for &(r, c, p) in &b.beta {
            bm[r as usize * m + c as usize] += phi[p as usize];
        }
        let mut a = vec![0.0; m * m];
        for i in 0..m {
            for j in 0..=i {
                let mut v = if i == j { 1.0 } else { 0.0 };
                for k in j..i {
                    v += bm[i * m + k] * a[k * m + j];
                }
                a[i * m + j] = v;
            }
        }
        // M = A L, lower triangular
        let mut mm = vec![0.0; m * m];
        for i in 0..m {
            for j in 0..=i {
                let mut v = 0.0;
                for k in j..=i {
                    v += a[i * m + k] * l[k * m + j];
                }
                mm[i * m + j] = v;
                ext[b.m[i * (i + 1) / 2 + j] as usize] = v;
            }
        }
        // dM = A dL, and dM/dB[p][q] = A[., p] M[q][.] (dA = A dB A)
        for &(r, c, p, v) in &dl {
            for i in r..m {
                let air = a[i * m + r];
                if air != 0.0 {
                    jac.push((b.m[i * (i + 1) / 2 + c], p, air * v));
                }
            }
        }
        for &(pr, pc, p) in &b.beta {
            let (pr, pc) = (pr as usize, pc as usize);
            for i in pr..m {
                let aip = a[i * m + pr];
                if aip == 0.0 {
                    continue;
                }
                for j in 0..=pc {
                    let v = aip * mm[pc * m + j];
                    if v != 0.0 {
                        jac.push((b.m[i * (i + 1) / 2 + j], p, v));
                    }
                }
            }
        }
        a_of[bi] = Some(a);
    }
    // derived means and covariate effects: phi[base] + sign (A x)[row]
    for d in &plan.derived {
        let b = &plan.chol[d.block as usize];
        let m = b.dims.len();
        let Some(a) = &a_of[d.block as usize] else {
            continue;
        };
        let row = d.row as usize;
        let mut x = vec![0.0; m];
        for &(pos, p) in &d.x {
            x[pos as usize] += phi[p as usize];
        }
        let ax: Vec<f64> = (0..m)
            .map(|i| (0..=i).map(|k| a[i * m + k] * x[k]).sum())
            .collect();
        let base = if d.base == NONE {
            0.0
        } else {
            phi[d.base as usize]
        };
        ext[d.ext as usize] = base + d.sign * ax[row];
        if d.base != NONE {
            jac.push((d.ext, d.base, 1.0));
        }
        for &(pos, p) in &d.x {
            let v = d.sign * a[row * m + pos as usize];
            if v != 0.0 {
                jac.push((d.ext, p, v));
            }
        }
        for &(pr, pc, p) in &b.beta {
            let v = d.sign * a[row * m + pr as usize] * ax[pc as usize];
            if v != 0.0 {
                jac.push((d.ext, p, v));
            }
        }
    }
    Ok((ext, jac))
}

fn gather(term: &Term, phi: &[f64]) -> Vec<f64> {
    term.phi_index
        .iter()
        .map(|&i| if i == NONE { 0.0 } else { phi[i as usize] })
        .collect()
}

/// Prepares every term of a plan at `phi`.
pub fn prepare(plan: &Plan, phi: &[f64]) -> Result<Prepared, InvalidParams> {
    if phi.iter().any(|x| !x.is_finite()) {
        return Err(InvalidParams::NotFinite);
    }
    let (mut ext, mut jac) = if plan.chol.is_empty() {
        let mut ext = phi.to_vec();
        ext.resize(plan.n_ext, 0.0);
        (ext, Vec::new())
    } else {
        random_entries(plan, phi)?
    };
    crate::implied::fill(&plan.implied, phi, &mut ext, &mut jac);
    for &(e, v) in &plan.constants {
        ext[e as usize] = v;
    }
    crate::within::fill(&plan.shifted, plan.n_phi, &mut ext, &mut jac);
    let mut terms = Vec::with_capacity(plan.terms.len());
    for (ti, term) in plan.terms.iter().enumerate() {
        let params = gather(term, &ext);
        let nl = term.n_local;
        let ns = term.n_states;
        let prep = match &term.kind {
            TermKind::Categorical {
                ncat, link, covs, ..
            } => categorical::prepare(ti, ns, nl, *ncat, *link, covs, params)?,
            TermKind::Normal { covs, .. } => normal::prepare(ti, ns, nl, covs, params)?,
            TermKind::NormalBlock {
                cols,
                covs,
                patterns,
                ..
            } => block::prepare(ti, ns, nl, cols, covs, patterns, params)?,
            TermKind::ClassLogit { classes, covs, .. } => {
                logit::prepare(ns, term.n_sets, nl, *classes, covs, params)
            }
            TermKind::Guessing { .. } => guessing::prepare(params),
            TermKind::Nominal { ncat, covs, .. } => nominal::prepare(ns, nl, *ncat, covs, params)?,
        };
        terms.push(prep);
    }
    Ok(Prepared { terms, ext, jac })
}

/// ln Σ exp(x), stable.
#[inline]
pub fn log_sum_exp(x: &[f64]) -> f64 {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// Scratch space for the chunk functions, reused across calls.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    a: Vec<f64>,
    b: Vec<f64>,
    /// A third buffer (a class logit's probabilities while `a` and `b`
    /// hold per-row sums).
    c: Vec<f64>,
}

/// Which covariates of each row of a range are not zero, for a term whose
/// accumulation goes row by row over them (a binary item with covariates:
/// long data's item dummies, one of which is not zero on each row). The
/// node columns change from pass to pass but their pattern does not (a node
/// column is its node times a data column, or the node), so a backend
/// builds it once per chunk ([`term_row_pattern`], the node columns holding
/// a non-zero node) instead of once per pass; an entry whose value is zero
/// at a pass adds nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowPattern {
    /// The non-zero covariates' indices (into the term's covariates), row
    /// by row.
    idx: Vec<u32>,
    /// Row `i`'s entries: `idx[start[i]..start[i + 1]]`.
    start: Vec<usize>,
    /// The entries whose covariate is a node column (at or beyond the
    /// `node_col` the pattern was found for), row by row: (row,
    /// covariate index). A pass reads their values where the node
    /// columns hold them, without finding them again.
    node: Vec<(u32, u32)>,
    /// The first node column when the pattern was found.
    node_col: usize,
    /// Whether at most half the entries are non-zero: otherwise the
    /// accumulation goes column by column.
    sparse: bool,
}

impl RowPattern {
    /// Whether the accumulation goes row by row over the pattern (at most
    /// half the entries are not zero).
    pub fn is_sparse(&self) -> bool {
        self.sparse
    }
}

/// The pattern of term `t`'s non-zero covariates on rows `r0..r1` (see
/// [`RowPattern`]), for the kinds that use one (binary items with
/// covariates); `None` for the others. `node_col`: the first node column
/// (the plan's number of data columns), whose entries the pattern lists
/// apart for the passes to read.
pub fn term_row_pattern(
    term: &Term,
    data: &EngineData,
    (r0, r1): (usize, usize),
    node_col: usize,
) -> Option<RowPattern> {
    match &term.kind {
        TermKind::Categorical { ncat: 2, covs, .. } if !covs.is_empty() => {
            Some(categorical::row_pattern(covs, data, (r0, r1), node_col))
        }
        _ => None,
    }
}

impl Scratch {
    /// Both buffers, each at least `n` long.
    fn pair(&mut self, n: usize) -> (&mut [f64], &mut [f64]) {
        (grow(&mut self.a, n), grow(&mut self.b, n))
    }
}

fn grow(v: &mut Vec<f64>, n: usize) -> &mut [f64] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

#[inline]
fn lin_pred(beta: &[f64], covs: &[usize], data: &EngineData, r: usize) -> f64 {
    let mut e = 0.0;
    for (b, &c) in beta.iter().zip(covs) {
        e += b * data.columns[c][r];
    }
    e
}

/// Where one term's states sit in a chunk's buffers, which are slot-major:
/// state `s` of the term for the chunk's row `i = r - r0` is at
/// `(offset + s) * stride + i`, so each state's values are contiguous over
/// rows and the loops over rows vectorise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slots {
    /// Distance between consecutive slots (the chunk's row capacity).
    pub stride: usize,
    /// This term's first slot.
    pub offset: usize,
}

impl Slots {
    /// The range of the buffer holding state `s` for rows `0..n`.
    #[inline]
    pub fn state(&self, s: usize, n: usize) -> std::ops::Range<usize> {
        let a = (self.offset + s) * self.stride;
        a..a + n
    }
}

/// `slots` with state `s` as its first.
#[inline(always)]
fn from_state(slots: Slots, s: usize) -> Slots {
    Slots {
        offset: slots.offset + s,
        ..slots
    }
}

/// States `lo..hi` of per-state parameters `v` (`n` per state; empty stays
/// empty: a table the term does not use).
#[inline(always)]
fn of_states(v: &[f64], n: usize, lo: usize, hi: usize) -> &[f64] {
    if v.is_empty() { v } else { &v[lo * n..hi * n] }
}

/// `u -= Σ β x` for rows `r0..r1` over the covariates `covs` (coefficients
/// `betas`, in order) whose column passes `pick`, column by column over
/// contiguous rows (the loops vectorise).
#[inline(always)]
pub(super) fn subtract_covs(
    u: &mut [f64],
    betas: &[f64],
    covs: &[usize],
    data: &EngineData,
    r0: usize,
    r1: usize,
    pick: impl Fn(usize) -> bool,
) {
    for (&b, &c) in betas.iter().zip(covs).filter(|(_, c)| pick(**c)) {
        for (x, &v) in u.iter_mut().zip(&data.columns[c][r0..r1]) {
            *x -= b * v;
        }
    }
}

/// The node-free part of the term's values for rows `r0..r1`, at its
/// slots of `out`, for a term whose columns from `node_col` on are node
/// columns (they change from one integration pass to the next, the others
/// do not): computed once per chunk, it saves [`term_values_on_base`] the
/// rest at every pass. Returns false, writing nothing, for a kind without
/// one (its values are computed whole by [`term_values`]). Normal
/// dependents have one, `y − ν − Σ β x` over the data covariates, and
/// binary items with covariates, `τ − Σ β x`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn term_base(
    term: &Term,
    prep: &TermPrep,
    node_col: usize,
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    out: &mut [f64],
) -> bool {
    match (&term.kind, prep) {
        (TermKind::Normal { col, covs }, TermPrep::Normal { params, .. }) => {
            let (ns, nl) = (term.n_states, term.n_local);
            normal::base(
                ns, nl, *col, covs, params, node_col, data, r0, r1, slots, out,
            );
            true
        }
        (TermKind::Categorical { ncat: 2, covs, .. }, TermPrep::Categorical { params, .. })
            if !covs.is_empty() =>
        {
            let nl = term.n_local;
            categorical::binary_base(nl, covs, params, node_col, data, r0, r1, slots, out);
            true
        }
        _ => false,
    }
}

/// The exponentials of term `term`'s node-free part `base` ([`term_base`]
/// on `nr` rows, at its slots) into `out` at the same places, for a kind
/// that takes its densities from them in [`term_values_on_base`]: a logit
/// binary item with several states, whose node columns then cost one
/// exponential per row and pass instead of one per state. Returns false
/// for other kinds, or where a value is too large for them (then `out` is
/// of no use and must not be passed on).
pub fn term_base_exps(term: &Term, slots: Slots, nr: usize, base: &[f64], out: &mut [f64]) -> bool {
    match &term.kind {
        TermKind::Categorical {
            ncat: 2,
            link: crate::link::Link::Logit,
            covs,
            ..
        } if !covs.is_empty() && term.n_states >= 2 => (0..term.n_states).all(|s| {
            let sl = slots.state(s, nr);
            categorical::binary_base_exps(&base[sl.clone()], &mut out[sl])
        }),
        _ => false,
    }
}

/// What [`term_values_on_base`] writes, at the term's slots.
pub enum OnBase<'a> {
    /// The log-densities.
    Logs(&'a mut [f64]),
    /// The densities themselves into `probs`, without their logs, where
    /// the kind has them at hand (the logit binary item: one exponential
    /// per row and state, no logarithm); otherwise the log-densities into
    /// `logs`. The call says which (`true`: the densities).
    ProbsElseLogs {
        /// Where a kind without densities at hand writes its logs.
        logs: &'a mut [f64],
        /// Where a kind with them writes the densities.
        probs: &'a mut [f64],
    },
}

impl<'a> OnBase<'a> {
    /// The buffer for the log-densities.
    fn logs(self) -> &'a mut [f64] {
        match self {
            OnBase::Logs(logs) | OnBase::ProbsElseLogs { logs, .. } => logs,
        }
    }
}

/// [`term_values_of`] of a term with a node-free part `base` (see
/// [`term_base`], computed on the same rows and parameters), and its
/// exponentials where [`term_base_exps`] gave them. With the
/// rows' pattern of non-zero covariates (see [`RowPattern`]; sparse), a
/// binary item subtracts each row's non-zero node columns alone, not every
/// node column on every row (long data: a row's own item's). What it
/// writes, and where, is `out`'s choice ([`OnBase`]); it returns whether
/// it wrote the densities (`true`) or the log-densities, and leaves the
/// other buffer as it was.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn term_values_on_base(
    term: &Term,
    prep: &TermPrep,
    states: Range<usize>,
    node_col: usize,
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    (base, exps, pattern): (&[f64], Option<&[f64]>, Option<&RowPattern>),
    scratch: &mut Scratch,
    out: OnBase<'_>,
) -> bool {
    let (lo, hi) = (states.start, states.end);
    let nl = term.n_local;
    let sub = from_state(slots, lo);
    match (&term.kind, prep) {
        (
            TermKind::Normal { col, covs },
            TermPrep::Normal {
                params,
                inv_var,
                log_norm,
            },
        ) => {
            normal::values_on_base(
                hi - lo,
                nl,
                *col,
                covs,
                of_states(params, nl, lo, hi),
                &inv_var[lo..hi],
                &log_norm[lo..hi],
                node_col,
                data,
                r0,
                r1,
                sub,
                base,
                scratch,
                out.logs(),
            );
            false
        }
        (
            TermKind::Categorical {
                col,
                ncat: 2,
                link,
                covs,
            },
            TermPrep::Categorical { params, .. },
        ) if !covs.is_empty() => {
            let params = of_states(params, nl, lo, hi);
            categorical::binary_values_on_base(
                nl,
                (*col, *link, covs),
                params,
                node_col,
                data,
                (r0, r1),
                sub,
                (base, exps, pattern),
                scratch,
                out,
            )
        }
        _ => {
            term_values_of(term, prep, states, data, r0, r1, slots, scratch, out.logs());
            false
        }
    }
}

/// Log-density of each state for rows `r0..r1`, written at the term's
/// slots. A missing dependent contributes 0 (full-information ML).
///
/// Inlined into its callers with the kinds' `values`, so that a backend's
/// loop compiled for wider vector instructions compiles these for them too.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn term_values(
    term: &Term,
    prep: &TermPrep,
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    scratch: &mut Scratch,
    out: &mut [f64],
) {
    let all = 0..term.n_states;
    term_values_of(term, prep, all, data, r0, r1, slots, scratch, out);
}

/// [`term_values`] of the states `states` at least: the item kinds
/// (categorical, 3PL, normal) write those states' slots alone and leave
/// the others as they were, the other kinds write every state. A pass of
/// the integration loop whose combinations use some of a term's states
/// (a between-level class's own item parameters) asks for those.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn term_values_of(
    term: &Term,
    prep: &TermPrep,
    states: Range<usize>,
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    scratch: &mut Scratch,
    out: &mut [f64],
) {
    let ns = term.n_states;
    let nl = term.n_local;
    let (lo, hi) = (states.start, states.end);
    let sub = from_state(slots, lo);
    match (&term.kind, prep) {
        (
            TermKind::Categorical {
                col,
                ncat,
                link,
                covs,
            },
            TermPrep::Categorical { params, logp, .. },
        ) => categorical::values(
            hi - lo,
            nl,
            *col,
            *ncat,
            *link,
            covs,
            of_states(params, nl, lo, hi),
            of_states(logp, *ncat, lo, hi),
            data,
            r0,
            r1,
            sub,
            scratch,
            out,
        ),
        (TermKind::Guessing { col, link, covs }, TermPrep::Guessing { params }) => {
            let params = of_states(params, nl, lo, hi);
            guessing::values(
                hi - lo,
                nl,
                *col,
                *link,
                covs,
                params,
                data,
                r0,
                r1,
                sub,
                out,
            )
        }
        (TermKind::Nominal { col, ncat, covs }, TermPrep::Nominal { params, logp }) => {
            nominal::values(
                ns, nl, *col, *ncat, covs, params, logp, data, r0, r1, slots, scratch, out,
            )
        }
        (
            TermKind::Normal { col, covs },
            TermPrep::Normal {
                params,
                inv_var,
                log_norm,
            },
        ) => normal::values(
            hi - lo,
            nl,
            *col,
            covs,
            of_states(params, nl, lo, hi),
            &inv_var[lo..hi],
            &log_norm[lo..hi],
            data,
            r0,
            r1,
            sub,
            scratch,
            out,
        ),
        (
            TermKind::NormalBlock {
                cols,
                covs,
                patterns,
                row_pattern,
            },
            TermPrep::NormalBlock {
                params,
                inv,
                inv_offset,
                log_norm,
            },
        ) => block::values(
            ns,
            nl,
            cols,
            covs,
            patterns,
            row_pattern,
            params,
            inv,
            inv_offset,
            log_norm,
            data,
            r0,
            r1,
            slots,
            scratch,
            out,
        ),
        (TermKind::ClassLogit { classes, covs, .. }, TermPrep::ClassLogit { params, logp }) => {
            logit::values(
                term.n_sets,
                nl,
                *classes,
                covs,
                params,
                logp,
                data,
                (r0, r1),
                slots,
                scratch,
                out,
            )
        }
        _ => unreachable!("term and preparation kinds always match"),
    }
}

/// Probability of each state for rows `r0..r1` (the exp of
/// [`term_values`]), written at the term's slots: a class logit's softmax
/// directly (no log-softmax and exp), the other kinds' values
/// exponentiated.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn term_probs(
    term: &Term,
    prep: &TermPrep,
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    scratch: &mut Scratch,
    out: &mut [f64],
) {
    if let (TermKind::ClassLogit { classes, covs, .. }, TermPrep::ClassLogit { params, logp }) =
        (&term.kind, prep)
    {
        let (ns, nl) = (term.n_sets, term.n_local);
        let rows = (r0, r1);
        logit::probs(
            ns, nl, *classes, covs, params, logp, data, rows, slots, scratch, out,
        );
        return;
    }
    term_values(term, prep, data, r0, r1, slots, scratch, out);
    for s in 0..term.n_states {
        for v in &mut out[slots.state(s, r1 - r0)] {
            *v = crate::fastmath::exp(*v);
        }
    }
}

/// Emits each row's weighted score, `Σ_s w[r, s] ∂ℓ_s/∂local`, as
/// `sink(r - r0, slot, value)` with `slot` in the term's parameter space
/// (`set * n_local + l`). The weights `w` are posterior probabilities at the
/// term's slots. It serves the per-cluster scores of the MLR sandwich (the
/// sink keeps rows apart) and the gradient of the terms that have no
/// sufficient statistics ([`term_accumulate`]).
pub fn term_scores(
    term: &Term,
    prep: &TermPrep,
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    w: &[f64],
    scratch: &mut Scratch,
    sink: impl FnMut(usize, usize, f64),
) {
    let ns = term.n_states;
    let nl = term.n_local;
    match (&term.kind, prep) {
        (
            TermKind::Categorical {
                col,
                ncat,
                link,
                covs,
            },
            TermPrep::Categorical { params, dlogp, .. },
        ) => categorical::scores(
            ns, nl, *col, *ncat, *link, covs, params, dlogp, data, r0, r1, slots, w, scratch, sink,
        ),
        (TermKind::Guessing { col, link, covs }, TermPrep::Guessing { params }) => {
            guessing::scores(
                ns, nl, *col, *link, covs, params, data, r0, r1, slots, w, scratch, sink,
            )
        }
        (TermKind::Nominal { col, ncat, covs }, TermPrep::Nominal { params, .. }) => {
            nominal::scores(
                ns, nl, *col, *ncat, covs, params, data, r0, r1, slots, w, scratch, sink,
            )
        }
        (
            TermKind::Normal { col, covs },
            TermPrep::Normal {
                params, inv_var, ..
            },
        ) => normal::scores(
            ns, nl, *col, covs, params, inv_var, data, r0, r1, slots, w, sink,
        ),
        (
            TermKind::NormalBlock {
                cols,
                covs,
                patterns,
                row_pattern,
            },
            TermPrep::NormalBlock {
                params,
                inv,
                inv_offset,
                ..
            },
        ) => block::scores(
            ns,
            nl,
            cols,
            covs,
            patterns,
            row_pattern,
            params,
            inv,
            inv_offset,
            data,
            r0,
            r1,
            slots,
            w,
            scratch,
            sink,
        ),
        (TermKind::ClassLogit { classes, covs, .. }, TermPrep::ClassLogit { params, logp }) => {
            logit::scores(
                term.n_sets,
                nl,
                *classes,
                covs,
                params,
                logp,
                data,
                r0,
                r1,
                slots,
                w,
                scratch,
                sink,
            )
        }
        _ => unreachable!("term and preparation kinds always match"),
    }
}

/// `Σ_i a_i · b_i · f(y_i)` over equal-length slices, in four fixed lanes:
/// no bounds checks and no branches in the loop (so it vectorises), and a
/// summation order that depends only on the lengths. `f` gives 0 for rows
/// to leave out (a missing value, another category).
#[inline]
fn weighted_sum(y: &[f64], a: &[f64], b: &[f64], f: impl Fn(f64) -> f64) -> f64 {
    let n = y.len().min(a.len()).min(b.len());
    let (y, a, b) = (&y[..n], &a[..n], &b[..n]);
    let mut acc = [0.0f64; 4];
    let mut yc = y.chunks_exact(4);
    let mut ac = a.chunks_exact(4);
    let mut bc = b.chunks_exact(4);
    for ((yy, aa), bb) in (&mut yc).zip(&mut ac).zip(&mut bc) {
        for l in 0..4 {
            acc[l] += aa[l] * bb[l] * f(yy[l]);
        }
    }
    for (l, ((yy, aa), bb)) in yc
        .remainder()
        .iter()
        .zip(ac.remainder())
        .zip(bc.remainder())
        .enumerate()
    {
        acc[l] += aa * bb * f(*yy);
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// 1 for an observed value, 0 for a missing one.
#[inline]
fn observed(v: f64) -> f64 {
    if v.is_nan() { 0.0 } else { 1.0 }
}

/// Accumulates, over rows `r0..r1`, the gradient of the term's parameters
/// `Σ_r freq_r Σ_s w[r, s] ∂ℓ_s/∂local` into `grad` (the term's parameter
/// space) and/or the expected information into `info`. A kind's module
/// takes what it has a one-pass path for (categorical and normal terms
/// without covariates: weighted category counts, weighted sums of 1, y − ν
/// and (y − ν)²; binary terms with covariates; a class logit with
/// covariates, its gradient and information from one softmax per row);
/// the rest goes the general way, here, for
/// every kind: the gradient as the summed [`term_scores`], the information
/// by [`term_info`]. `pattern`, where the caller has one for these rows
/// ([`term_row_pattern`]), saves finding the rows' non-zero covariates.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn term_accumulate(
    term: &Term,
    prep: &TermPrep,
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    w: &[f64],
    freq: &[f64],
    (pattern, scratch): (Option<&RowPattern>, &mut Scratch),
    grad: Option<&mut [f64]>,
    info: Option<&mut InfoAcc>,
) {
    let rows = (r0, r1);
    let given = (None, pattern);
    accumulate_with(
        term, prep, data, rows, slots, w, freq, given, scratch, grad, info,
    );
}

/// [`term_accumulate`], with the term's state probabilities on the rows
/// when they are at hand (`given`, at `slots`, as [`term_probs`] gives
/// them; a class logit with covariates and a logit binary item with
/// covariates read them), and the pattern of the rows' non-zero
/// covariates when there is one.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn accumulate_with(
    term: &Term,
    prep: &TermPrep,
    data: &EngineData,
    (r0, r1): (usize, usize),
    slots: Slots,
    w: &[f64],
    freq: &[f64],
    (given, pattern): (Option<&[f64]>, Option<&RowPattern>),
    scratch: &mut Scratch,
    mut grad: Option<&mut [f64]>,
    mut info: Option<&mut InfoAcc>,
) {
    let ns = term.n_states;
    let nl = term.n_local;
    match (&term.kind, prep) {
        (
            TermKind::Categorical {
                col,
                ncat,
                link,
                covs,
            },
            TermPrep::Categorical { params, dlogp, .. },
        ) => categorical::accumulate(
            ns,
            nl,
            &term.info_pairs,
            *col,
            *ncat,
            *link,
            covs,
            params,
            dlogp,
            data,
            r0,
            r1,
            slots,
            (w, given),
            freq,
            (pattern, scratch),
            &mut grad,
            &mut info,
        ),
        (
            TermKind::Normal { col, covs },
            TermPrep::Normal {
                params, inv_var, ..
            },
        ) => normal::accumulate(
            ns, nl, *col, covs, params, inv_var, data, r0, r1, slots, w, freq, &mut grad, &mut info,
        ),
        // with covariates, the gradient and the information in one pass
        (TermKind::ClassLogit { classes, covs, .. }, TermPrep::ClassLogit { params, logp })
            if !covs.is_empty() =>
        {
            logit::accumulate(
                term.n_sets,
                nl,
                *classes,
                covs,
                params,
                logp,
                data,
                (r0, r1),
                slots,
                w,
                freq,
                given,
                scratch,
                grad.take(),
                info.take().map(|i| i.mats.as_mut_slice()),
            )
        }
        // a block has no one-pass path
        _ => {}
    }
    if let Some(g) = grad {
        term_scores(term, prep, data, r0, r1, slots, w, scratch, |i, slot, v| {
            g[slot] += freq[i] * v;
        });
    }
    if let Some(acc) = info {
        term_info(term, prep, data, r0, r1, slots, w, freq, scratch, acc);
    }
}

/// [`term_accumulate`] with the term's state probabilities on the rows
/// where they are at hand (`probs`, at `slots`, as [`term_probs`] gives
/// them; the exponentials of its values): a class logit with covariates
/// takes its gradient and information from them instead of computing
/// them again, and so does a logit binary item with covariates from its
/// densities (with `pattern` as [`term_accumulate`] takes it); the other
/// kinds ignore them.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn term_accumulate_given(
    term: &Term,
    prep: &TermPrep,
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    w: &[f64],
    freq: &[f64],
    (probs, pattern): (Option<&[f64]>, Option<&RowPattern>),
    scratch: &mut Scratch,
    grad: Option<&mut [f64]>,
    info: Option<&mut InfoAcc>,
) {
    let rows = (r0, r1);
    accumulate_with(
        term,
        prep,
        data,
        rows,
        slots,
        w,
        freq,
        (probs, pattern),
        scratch,
        grad,
        info,
    );
}

/// Accumulated expected information of one term: `mats[set]` (`n_local^2`)
/// from row-dependent parts, and per-state weight sums `wsum` for the
/// row-independent parts that [`finish_info`] adds.
#[derive(Debug, Clone, PartialEq)]
pub struct InfoAcc {
    /// Per set, `n_local x n_local`.
    pub mats: Vec<f64>,
    /// Weight sums: per state (per state and pattern for blocks).
    pub wsum: Vec<f64>,
}

impl InfoAcc {
    /// Zeroed accumulator for a term.
    pub fn new(term: &Term) -> Self {
        let ws = match &term.kind {
            TermKind::NormalBlock { patterns, .. } => term.n_states * patterns.len(),
            _ => term.n_states,
        };
        InfoAcc {
            mats: vec![0.0; term.n_sets * term.n_local * term.n_local],
            wsum: vec![0.0; ws],
        }
    }

    /// Sets every entry to 0.
    pub fn clear(&mut self) {
        self.mats.fill(0.0);
        self.wsum.fill(0.0);
    }

    /// Adds another accumulator.
    pub fn add(&mut self, other: &InfoAcc) {
        for (a, b) in self.mats.iter_mut().zip(&other.mats) {
            *a += b;
        }
        for (a, b) in self.wsum.iter_mut().zip(&other.wsum) {
            *a += b;
        }
    }
}

/// Accumulates the expected complete-data information for rows `r0..r1`;
/// each row's posterior weights `w` (at the term's slots) are multiplied by
/// its frequency weight `freq[r - r0]`.
#[inline(always)]
pub fn term_info(
    term: &Term,
    prep: &TermPrep,
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    w: &[f64],
    freq: &[f64],
    scratch: &mut Scratch,
    acc: &mut InfoAcc,
) {
    let ns = term.n_states;
    let nl = term.n_local;
    let InfoAcc { mats, wsum } = acc;
    match (&term.kind, prep) {
        (
            TermKind::Categorical {
                col,
                ncat,
                link,
                covs,
            },
            TermPrep::Categorical { params, .. },
        ) => categorical::info(
            ns, nl, *col, *ncat, *link, covs, params, data, r0, r1, slots, w, freq, scratch, mats,
            wsum,
        ),
        (TermKind::Guessing { col, link, covs }, TermPrep::Guessing { params }) => guessing::info(
            ns, nl, *col, *link, covs, params, data, r0, r1, slots, w, freq, scratch, mats,
        ),
        (TermKind::Nominal { col, ncat, covs }, TermPrep::Nominal { params, .. }) => nominal::info(
            ns,
            nl,
            *col,
            *ncat,
            covs,
            params,
            data,
            (r0, r1),
            slots,
            (w, freq),
            scratch,
            mats,
            wsum,
        ),
        (TermKind::Normal { col, covs }, TermPrep::Normal { inv_var, .. }) => normal::info(
            ns, nl, *col, covs, inv_var, data, r0, r1, slots, w, freq, mats, wsum,
        ),
        (
            TermKind::NormalBlock {
                cols,
                covs,
                patterns,
                row_pattern,
            },
            TermPrep::NormalBlock {
                inv, inv_offset, ..
            },
        ) => block::info(
            ns,
            nl,
            cols,
            covs,
            patterns,
            row_pattern,
            inv,
            inv_offset,
            data,
            r0,
            r1,
            slots,
            w,
            freq,
            mats,
            wsum,
        ),
        (TermKind::ClassLogit { classes, covs, .. }, TermPrep::ClassLogit { params, logp }) => {
            logit::info(
                ns,
                term.n_sets,
                nl,
                *classes,
                covs,
                params,
                logp,
                data,
                r0,
                r1,
                slots,
                w,
                freq,
                scratch,
                mats,
                wsum,
            )
        }
        _ => unreachable!("term and preparation kinds always match"),
    }
}

/// Adds the row-independent information parts from the weight sums.
pub fn finish_info(term: &Term, prep: &TermPrep, acc: &mut InfoAcc) {
    let ns = term.n_states;
    let nl = term.n_local;
    let InfoAcc { mats, wsum } = acc;
    match (&term.kind, prep) {
        (TermKind::Categorical { ncat, covs, .. }, TermPrep::Categorical { info, .. }) => {
            categorical::finish_info(ns, nl, *ncat, covs, info, mats, wsum)
        }
        (TermKind::Normal { covs, .. }, TermPrep::Normal { inv_var, .. }) => {
            normal::finish_info(ns, nl, covs, inv_var, mats, wsum)
        }
        (
            TermKind::NormalBlock {
                cols,
                covs,
                patterns,
                ..
            },
            TermPrep::NormalBlock {
                inv, inv_offset, ..
            },
        ) => block::finish_info(ns, nl, cols, covs, patterns, inv, inv_offset, mats, wsum),
        (TermKind::ClassLogit { classes, covs, .. }, TermPrep::ClassLogit { logp, .. }) => {
            logit::finish_info(term.n_sets, nl, *classes, covs, logp, mats, wsum)
        }
        (TermKind::Nominal { ncat, covs, .. }, TermPrep::Nominal { logp, .. }) => {
            nominal::finish_info(ns, nl, *ncat, covs, logp, mats, wsum)
        }
        // the 3PL's information is all row-dependent
        (TermKind::Guessing { .. }, TermPrep::Guessing { .. }) => {}
        _ => unreachable!("term and preparation kinds always match"),
    }
}
