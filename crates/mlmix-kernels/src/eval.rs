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

use crate::data::EngineData;
use crate::link::{self, LN_2PI, Link};
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
        // dL = L Phi(L^-1 E L^-T) for each Psi entry (needs L invertible):
        // (row, column, phi index, derivative)
        let mut dl: Vec<(usize, usize, u32, f64)> = Vec::new();
        if (0..m).all(|i| l[i * m + i] != 0.0) {
            let mut linv = vec![0.0; m * m];
            for c in 0..m {
                for r in c..m {
                    let mut v = if r == c { 1.0 } else { 0.0 };
                    for k in c..r {
                        v -= l[r * m + k] * linv[k * m + c];
                    }
                    linv[r * m + c] = v / l[r * m + r];
                }
            }
            let mut x = vec![0.0; m * m];
            for a in 0..m {
                for bb in 0..=a {
                    let p = b.psi[a * (a + 1) / 2 + bb];
                    if p == NONE {
                        continue;
                    }
                    for r in 0..m {
                        for s2 in 0..m {
                            let mut v = linv[r * m + a] * linv[s2 * m + bb];
                            if a != bb {
                                v += linv[r * m + bb] * linv[s2 * m + a];
                            }
                            x[r * m + s2] = v;
                        }
                    }
                    for r in 0..m {
                        for c in 0..=r {
                            // (L Phi(X))[r][c] = Σ_{t >= c, t <= r} L[r][t] Phi[t][c]
                            let mut v = 0.0;
                            for t in c..=r {
                                let phi_tc = if t == c {
                                    0.5 * x[t * m + c]
                                } else {
                                    x[t * m + c]
                                };
                                v += l[r * m + t] * phi_tc;
                            }
                            if v != 0.0 {
                                dl.push((r, c, p, v));
                            }
                        }
                    }
                }
            }
        }
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
    let (ext, jac) = if plan.chol.is_empty() {
        (phi.to_vec(), Vec::new())
    } else {
        random_entries(plan, phi)?
    };
    let mut terms = Vec::with_capacity(plan.terms.len());
    for (ti, term) in plan.terms.iter().enumerate() {
        let params = gather(term, &ext);
        let nl = term.n_local;
        let prep = match &term.kind {
            TermKind::Categorical {
                ncat, link, covs, ..
            } => {
                let l = ncat - 1;
                for s in 0..term.n_states {
                    let tau = &params[s * nl..s * nl + l];
                    if tau.windows(2).any(|w| w[1] <= w[0]) {
                        return Err(InvalidParams::Thresholds { term: ti, state: s });
                    }
                }
                let (mut logp, mut dlogp, mut info) = (Vec::new(), Vec::new(), Vec::new());
                if covs.is_empty() {
                    logp = vec![0.0; term.n_states * ncat];
                    dlogp = vec![0.0; term.n_states * ncat * l];
                    info = vec![0.0; term.n_states * l * l];
                    let mut dp = vec![0.0; l];
                    for s in 0..term.n_states {
                        let tau = &params[s * nl..s * nl + l];
                        for c in 0..*ncat {
                            let p = cat_derivs(*link, tau, *ncat, 0.0, c, &[], &mut dp);
                            logp[s * ncat + c] = cat_log_prob(*link, tau, *ncat, 0.0, c);
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
                TermPrep::Categorical {
                    params,
                    logp,
                    dlogp,
                    info,
                }
            }
            TermKind::Normal { covs, .. } => {
                let q = covs.len();
                let mut inv_var = Vec::with_capacity(term.n_states);
                let mut log_norm = Vec::with_capacity(term.n_states);
                for s in 0..term.n_states {
                    let theta = params[s * nl + q + 1];
                    if theta <= 0.0 {
                        return Err(InvalidParams::Variance { term: ti, state: s });
                    }
                    inv_var.push(1.0 / theta);
                    log_norm.push(-0.5 * (LN_2PI + theta.ln()));
                }
                TermPrep::Normal {
                    params,
                    inv_var,
                    log_norm,
                }
            }
            TermKind::NormalBlock {
                cols,
                covs,
                patterns,
                ..
            } => {
                let d = cols.len();
                let q = covs.len();
                let sig0 = d + d * q;
                let mut inv = Vec::new();
                let mut inv_offset = Vec::new();
                let mut log_norm = Vec::new();
                let mut full = vec![0.0; d * d];
                for s in 0..term.n_states {
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
                TermPrep::NormalBlock {
                    params,
                    inv,
                    inv_offset,
                    log_norm,
                }
            }
            TermKind::ClassLogit { classes, covs, .. } => {
                let k_n = *classes;
                let mut logp = Vec::new();
                if covs.is_empty() {
                    logp = vec![0.0; term.n_states];
                    let per = nl / k_n;
                    let mut eta = vec![0.0; k_n];
                    for set in 0..term.n_sets {
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

/// Scratch space for the chunk functions, reused across calls.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    a: Vec<f64>,
    b: Vec<f64>,
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

fn grow(v: &mut Vec<f64>, n: usize) -> &mut [f64] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
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

/// Log-density of each state for rows `r0..r1`, written at the term's
/// slots. A missing dependent contributes 0 (full-information ML).
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
    let ns = term.n_states;
    let nl = term.n_local;
    let nr = r1 - r0;
    let at = |s: usize, i: usize| (slots.offset + s) * slots.stride + i;
    match (&term.kind, prep) {
        (
            TermKind::Categorical {
                col,
                ncat,
                link,
                covs,
            },
            TermPrep::Categorical { params, logp, .. },
        ) => {
            let y = &data.columns[*col][r0..r1];
            let l = ncat - 1;
            if covs.is_empty() {
                for s in 0..ns {
                    let lp = &logp[s * ncat..(s + 1) * ncat];
                    let o = &mut out[slots.state(s, nr)];
                    if *ncat == 2 {
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
            } else {
                for (s, p) in params.chunks_exact(nl).enumerate() {
                    for (i, &v) in y.iter().enumerate() {
                        out[at(s, i)] = if v.is_nan() {
                            0.0
                        } else {
                            let eta = lin_pred(&p[l..], covs, data, r0 + i);
                            cat_log_prob(*link, &p[..l], *ncat, eta, v as usize)
                        };
                    }
                }
            }
        }
        (
            TermKind::Normal { col, covs },
            TermPrep::Normal {
                params,
                inv_var,
                log_norm,
            },
        ) => {
            let y = &data.columns[*col][r0..r1];
            let q = covs.len();
            for s in 0..ns {
                let p = &params[s * nl..(s + 1) * nl];
                let (nu, iv, ln) = (p[0], inv_var[s], log_norm[s]);
                let o = &mut out[slots.state(s, nr)];
                if q == 0 {
                    for (x, &v) in o.iter_mut().zip(y) {
                        let e = v - nu;
                        let val = ln - 0.5 * e * e * iv;
                        *x = if v.is_nan() { 0.0 } else { val };
                    }
                } else {
                    // the residual column by column (contiguous rows, so
                    // the loops vectorise), then the density
                    let e = grow(&mut scratch.a, nr);
                    for (x, &v) in e.iter_mut().zip(y) {
                        *x = v - nu;
                    }
                    for (&b, &c) in p[1..1 + q].iter().zip(covs) {
                        for (x, &v) in e.iter_mut().zip(&data.columns[c][r0..r1]) {
                            *x -= b * v;
                        }
                    }
                    for ((x, &v), &e) in o.iter_mut().zip(y).zip(e.iter()) {
                        let val = ln - 0.5 * e * e * iv;
                        *x = if v.is_nan() { 0.0 } else { val };
                    }
                }
            }
        }
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
        ) => {
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
        (TermKind::ClassLogit { classes, covs, .. }, TermPrep::ClassLogit { params, logp }) => {
            let k_n = *classes;
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
                    for set in 0..term.n_sets {
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
        _ => unreachable!("term and preparation kinds always match"),
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
    mut sink: impl FnMut(usize, usize, f64),
) {
    let ns = term.n_states;
    let nl = term.n_local;
    let wat = |s: usize, i: usize| w[(slots.offset + s) * slots.stride + i];
    match (&term.kind, prep) {
        (
            TermKind::Categorical {
                col,
                ncat,
                link,
                covs,
            },
            TermPrep::Categorical { params, dlogp, .. },
        ) => {
            let y = &data.columns[*col][r0..r1];
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
                        let pc =
                            cat_derivs(*link, &p[..l], *ncat, eta, c, x, dp).max(f64::MIN_POSITIVE);
                        for t in 0..nl {
                            sink(i, s * nl + t, ws * dp[t] / pc);
                        }
                    }
                }
            }
        }
        (
            TermKind::Normal { col, covs },
            TermPrep::Normal {
                params, inv_var, ..
            },
        ) => {
            let y = &data.columns[*col][r0..r1];
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
        ) => {
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
        (TermKind::ClassLogit { classes, covs, .. }, TermPrep::ClassLogit { params, logp }) => {
            let k_n = *classes;
            let per = nl / k_n;
            let q = covs.len();
            let prob = grow(&mut scratch.a, k_n * term.n_sets);
            let wset = grow(&mut scratch.b, k_n);
            let mut start = r0;
            while start < r1 {
                let end = run_end(covs, data, start, r1);
                for set in 0..term.n_sets {
                    let pr = &mut prob[set * k_n..(set + 1) * k_n];
                    class_probs(params, logp, set, k_n, per, q, covs, data, start, pr);
                }
                for r in start..end {
                    let i = r - r0;
                    for set in 0..term.n_sets {
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
/// space) and/or the expected information into `info`, in one pass where
/// the term has sufficient statistics: categorical and normal terms without
/// covariates (weighted category counts; weighted sums of 1, y − ν and
/// (y − ν)²), whose information needs only the weight sums. The other terms
/// sum [`term_scores`] for the gradient and use [`term_info`].
pub fn term_accumulate(
    term: &Term,
    prep: &TermPrep,
    data: &EngineData,
    r0: usize,
    r1: usize,
    slots: Slots,
    w: &[f64],
    freq: &[f64],
    scratch: &mut Scratch,
    grad: Option<&mut [f64]>,
    info: Option<&mut InfoAcc>,
) {
    let ns = term.n_states;
    let nl = term.n_local;
    let nr = r1 - r0;
    match (&term.kind, prep) {
        (
            TermKind::Categorical {
                col, ncat, covs, ..
            },
            TermPrep::Categorical { dlogp, .. },
        ) if covs.is_empty() => {
            let y = &data.columns[*col][r0..r1];
            let l = ncat - 1;
            let counts = grow(&mut scratch.a, *ncat);
            let (mut grad, mut info) = (grad, info);
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
        (
            TermKind::Normal { col, covs },
            TermPrep::Normal {
                params, inv_var, ..
            },
        ) if covs.is_empty() => {
            let y = &data.columns[*col][r0..r1];
            let (mut grad, mut info) = (grad, info);
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
        (TermKind::ClassLogit { classes, covs, .. }, TermPrep::ClassLogit { params, logp })
            if grad.is_some() && !covs.is_empty() =>
        {
            // the score summed over a run of rows with the same covariates
            // is (W_k - W p_k) z: one softmax and one update per run
            let k_n = *classes;
            let per = nl / k_n;
            let q = covs.len();
            let wat = |s: usize, i: usize| w[(slots.offset + s) * slots.stride + i];
            if let Some(g) = grad {
                let prob = grow(&mut scratch.a, k_n);
                let wk = grow(&mut scratch.b, k_n);
                let mut start = r0;
                while start < r1 {
                    let end = run_end(covs, data, start, r1);
                    for set in 0..term.n_sets {
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
            if let Some(acc) = info {
                term_info(term, prep, data, r0, r1, slots, w, freq, scratch, acc);
            }
        }
        _ => {
            if let Some(g) = grad {
                term_scores(term, prep, data, r0, r1, slots, w, scratch, |i, slot, v| {
                    g[slot] += freq[i] * v;
                });
            }
            if let Some(acc) = info {
                term_info(term, prep, data, r0, r1, slots, w, freq, scratch, acc);
            }
        }
    }
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
    let m = prob.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for e in prob.iter_mut() {
        *e = (*e - m).exp();
        sum += *e;
    }
    let inv = 1.0 / sum;
    for e in prob.iter_mut() {
        *e *= inv;
    }
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
    let nr = r1 - r0;
    let wat = |s: usize, i: usize| w[(slots.offset + s) * slots.stride + i];
    match (&term.kind, prep) {
        (
            TermKind::Categorical {
                col,
                ncat,
                link,
                covs,
            },
            TermPrep::Categorical { params, .. },
        ) => {
            let y = &data.columns[*col][r0..r1];
            if covs.is_empty() {
                for s in 0..ns {
                    let ws = &w[slots.state(s, nr)];
                    acc.wsum[s] += weighted_sum(y, freq, ws, observed);
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
                        let m = &mut acc.mats[s * nl * nl..(s + 1) * nl * nl];
                        for c in 0..*ncat {
                            let pc = cat_derivs(*link, &p[..l], *ncat, eta, c, x, dp)
                                .max(f64::MIN_POSITIVE);
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
        (TermKind::Normal { col, covs }, TermPrep::Normal { inv_var, .. }) => {
            let y = &data.columns[*col][r0..r1];
            let q = covs.len();
            if q == 0 {
                for s in 0..ns {
                    let ws = &w[slots.state(s, nr)];
                    acc.wsum[s] += weighted_sum(y, freq, ws, observed);
                }
            } else {
                for (i, &v) in y.iter().enumerate() {
                    if v.is_nan() {
                        continue;
                    }
                    let r = r0 + i;
                    for s in 0..ns {
                        let ws = wat(s, i) * freq[i];
                        acc.wsum[s] += ws;
                        // (nu, beta) block: w z z' / theta
                        let f = ws * inv_var[s];
                        let m = &mut acc.mats[s * nl * nl..(s + 1) * nl * nl];
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
        ) => {
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
                    acc.wsum[s * np + pat] += ws;
                    if q > 0 && ws != 0.0 {
                        let obs = &patterns[pat];
                        let m = obs.len();
                        let k = s * np + pat;
                        let pinv = &inv[inv_offset[k]..inv_offset[k] + m * m];
                        let mat = &mut acc.mats[s * nl * nl..(s + 1) * nl * nl];
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
        (TermKind::ClassLogit { classes, covs, .. }, TermPrep::ClassLogit { params, logp }) => {
            let k_n = *classes;
            if covs.is_empty() {
                for s in 0..ns {
                    let ws = &w[slots.state(s, nr)];
                    acc.wsum[s] += weighted_sum(ws, freq, ws, |_| 1.0);
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
                    for set in 0..term.n_sets {
                        let wsum: f64 = (start - r0..end - r0)
                            .map(|i| freq[i] * (0..k_n).map(|k| wat(set * k_n + k, i)).sum::<f64>())
                            .sum();
                        if wsum == 0.0 {
                            continue;
                        }
                        class_probs(params, logp, set, k_n, per, q, covs, data, start, prob);
                        add_logit_info(
                            &mut acc.mats[set * nl * nl..(set + 1) * nl * nl],
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
        _ => unreachable!("term and preparation kinds always match"),
    }
}

/// Adds `wsum * (diag(p) - p p') ⊗ z z'` to a logit information block.
fn add_logit_info(mat: &mut [f64], prob: &[f64], z: &[f64], per: usize, wsum: f64) {
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

/// Adds the row-independent information parts from the weight sums.
pub fn finish_info(term: &Term, prep: &TermPrep, acc: &mut InfoAcc) {
    let ns = term.n_states;
    let nl = term.n_local;
    match (&term.kind, prep) {
        (TermKind::Categorical { ncat, covs, .. }, TermPrep::Categorical { info, .. }) => {
            if covs.is_empty() {
                let l = ncat - 1;
                for s in 0..ns {
                    let m = &mut acc.mats[s * nl * nl..(s + 1) * nl * nl];
                    for a in 0..l {
                        for b in 0..l {
                            m[a * nl + b] += acc.wsum[s] * info[s * l * l + a * l + b];
                        }
                    }
                }
            }
        }
        (TermKind::Normal { covs, .. }, TermPrep::Normal { inv_var, .. }) => {
            let q = covs.len();
            for s in 0..ns {
                let m = &mut acc.mats[s * nl * nl..(s + 1) * nl * nl];
                let iv = inv_var[s];
                if q == 0 {
                    m[0] += acc.wsum[s] * iv;
                }
                m[(q + 1) * nl + q + 1] += acc.wsum[s] * 0.5 * iv * iv;
            }
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
        ) => {
            let d = cols.len();
            let q = covs.len();
            let np = patterns.len();
            let sig0 = d + d * q;
            for s in 0..ns {
                let mat = &mut acc.mats[s * nl * nl..(s + 1) * nl * nl];
                for (pi, obs) in patterns.iter().enumerate() {
                    let wsum = acc.wsum[s * np + pi];
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
        (TermKind::ClassLogit { classes, covs, .. }, TermPrep::ClassLogit { logp, .. }) => {
            if covs.is_empty() {
                let k_n = *classes;
                let per = nl / k_n;
                let mut prob = vec![0.0; k_n];
                let z = vec![1.0; per];
                for set in 0..term.n_sets {
                    let wsum: f64 = acc.wsum[set * k_n..(set + 1) * k_n].iter().sum();
                    if wsum == 0.0 {
                        continue;
                    }
                    for k in 0..k_n {
                        prob[k] = logp[set * k_n + k].exp();
                    }
                    add_logit_info(
                        &mut acc.mats[set * nl * nl..(set + 1) * nl * nl],
                        &prob,
                        &z,
                        per,
                        wsum,
                    );
                }
            }
        }
        _ => unreachable!("term and preparation kinds always match"),
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
