//! What a latent transition model adds to the report (paper Section 4):
//! the explained variance of each class variable's logit (eq 14) and its
//! decomposition, the effects of the random class logits on later class
//! variables, and the transition probabilities averaged over the clusters.
//!
//! The model: binary class variables C_1, ..., C_T in the model's order,
//! each with the latent response C_t* = α_t + Σ_s γ_ts I(C_s = 1) + e_t,
//! e_t logistic (variance π²/3), C_t = 1 when C_t* > 0 (eq 12-13), where
//! γ_ts is `c_t#1 ON c_s#1` and α_t the logit intercept: a constant, or a
//! between-level random effect (a two-level LTA), the α's jointly normal
//! with α = A (μ + ξ), A = (I − B)^-1 and B their regressions
//! (`c2#1 ON c1#1` on the between level, eq 15).
//!
//! With α_<t the logits of the earlier class variables, the variance of
//! η_t = C_t* − e_t splits into three uncorrelated parts:
//! - V1 = Var(E[η_t | α_<t]): the random logits of the earlier class
//!   variables (the paper's "classroom effect α_1", directly through α_t's
//!   regression on them and indirectly through the earlier classes);
//! - V2 = E[Var(Σ_s γ_ts I(C_s = 1) | α_<t)]: the earlier classes beyond
//!   their random logits (the "residual individual effect of C_1");
//! - V3 = Var(α_t | α_<t): the own random logit beyond the earlier ones (the
//!   "residual classroom effect α_2").
//!
//! They are uncorrelated because α_t's residual given α_<t is independent
//! of α_<t and of the earlier classes, which depend on α_<t alone. Each is
//! reported as a share of Var(C_t*) = V1 + V2 + V3 + π²/3, and R² is their
//! sum; for C_1, R² = V3 share = Var(α_1) / (Var(α_1) + π²/3). "Parents
//! alone" is eq 14: Var(Σ_s γ_ts I(C_s = 1)) / (that + π²/3) over the
//! parents' marginal distribution, R² of the parents in a model without
//! random logits.
//!
//! The effect of α_s on C_t (s < t, α_s random) is the average over the
//! clusters of the derivative of E[η_t | α] when α_s's residual moves by
//! one (α moves by A's column s): through the random logits, A[t][s] (β of
//! eq 15 when T = 2); through the earlier classes, Σ_p γ_tp E[∂P(C_p = 1 |
//! α) / ∂α · A[·][s]] (γ E[p (1 − p)] when T = 2); the total is their sum.
//!
//! Expectations over α are Gauss–Hermite product rules over the Cholesky
//! factor of α's covariance; the classes are enumerated. Standard errors by
//! the delta method with central-difference gradients.

use mlmix_kernels::quadrature::gauss_hermite_1d;
use mlmix_spec::{Model, ParamKind, ParamValue, RandomKind};
use nalgebra::DMatrix;
use serde::Serialize;

use crate::factors::{derived_value, param_index};
use crate::fit::random_effect_moments;
use crate::results::{DerivedValue, TransitionRow, TransitionTable};

/// The variance of the standard logistic distribution, π²/3.
pub const LOGISTIC_VARIANCE: f64 = std::f64::consts::PI * std::f64::consts::PI / 3.0;

/// Gauss–Hermite points over all dimensions of one expectation, at most
/// (the points per dimension are this to the power 1/d, 8 to 40).
const GRID_BUDGET: f64 = 20_000.0;

/// The derived quantities of a latent transition model.
#[derive(Debug, Clone, Serialize)]
pub struct TransitionDecomposition {
    /// Per class variable, in the model's order.
    pub variables: Vec<ExplainedVariance>,
    /// The effects of each random class logit on the later class variables.
    pub effects: Vec<LogitEffect>,
    /// Transition probabilities averaged over the clusters' random logits
    /// (empty when no class logit is random).
    pub transitions: Vec<TransitionTable>,
}

/// The explained variance of one class variable's latent response C_t*.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExplainedVariance {
    /// The class variable.
    pub variable: String,
    /// P(C_t = 1) over the population (averaged over the random logits and
    /// the earlier classes).
    pub probability: DerivedValue,
    /// R² = (V1 + V2 + V3) / Var(C_t*).
    pub r_square: DerivedValue,
    /// V1 / Var(C_t*): the random logits of earlier class variables (none
    /// for the first class variable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earlier_random_logits: Option<DerivedValue>,
    /// V2 / Var(C_t*): the earlier classes beyond their random logits (none
    /// for the first class variable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earlier_classes: Option<DerivedValue>,
    /// V3 / Var(C_t*): the own random logit beyond the earlier ones.
    pub own_random_logit: DerivedValue,
    /// Eq 14: R² of the parents alone (none without parents).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parents_alone: Option<DerivedValue>,
}

/// The average effect of a random class logit α_s on a later class
/// variable's logit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogitEffect {
    /// The random logit (`C1#1`).
    pub from: String,
    /// The later class variable (`C2`).
    pub to: String,
    /// Through the random logits' regressions (A[t][s]).
    pub through_random_logits: DerivedValue,
    /// Through the earlier classes.
    pub through_classes: DerivedValue,
    /// Their sum.
    pub total: DerivedValue,
}

/// One class variable of the chain.
struct Link {
    /// Its logit intercept (the mean μ of α, or the intercept of its
    /// regression), an index into the model's parameters.
    intercept: usize,
    /// Its random effect, if the intercept is random.
    random: Option<usize>,
    /// (parent's chain position, index of γ).
    parents: Vec<(usize, usize)>,
}

/// The latent transition structure of a model, if it has one this module
/// covers: at least one class variable regressed on another, every class
/// variable binary, within-level and without covariates, and the random
/// logits neither measured by a factor nor regressed on other random
/// effects. Parameters are the same in every class.
struct Chain {
    links: Vec<Link>,
    names: Vec<String>,
    /// Every parameter the quantities depend on.
    params: Vec<usize>,
}

impl Chain {
    fn of(model: &Model) -> Option<Chain> {
        let cvs = &model.class_vars;
        if !cvs.iter().any(|c| !c.parents.is_empty()) {
            return None;
        }
        if cvs
            .iter()
            .any(|c| c.classes != 2 || !c.covariates.is_empty() || c.between)
        {
            return None;
        }
        let random_of = |cv: usize| {
            model
                .latent
                .random
                .iter()
                .position(|r| r.kind == (RandomKind::ClassIntercept { cv, class: 0 }))
        };
        let mut links = Vec::new();
        let mut params = Vec::new();
        for (cv, c) in cvs.iter().enumerate() {
            let intercept = param_index(model, ParamKind::ClassIntercept { cv, class: 0 }, None)?;
            params.push(intercept);
            let mut parents = Vec::new();
            for &p in &c.parents {
                let kind = ParamKind::ClassOnClass {
                    cv,
                    class: 0,
                    parent: p,
                    parent_class: 0,
                };
                if let Some(g) = param_index(model, kind, None) {
                    parents.push((p, g));
                    params.push(g);
                }
            }
            links.push(Link {
                intercept,
                random: random_of(cv),
                parents,
            });
        }
        let chain_res: Vec<usize> = links.iter().filter_map(|l| l.random).collect();
        for (i, p) in model.parameters.iter().enumerate() {
            let (a, b) = match p.kind {
                ParamKind::RandomVariance { re } => (re, re),
                ParamKind::RandomCovariance { a, b } => (a, b),
                ParamKind::RandomRegression { re, on } => {
                    // a random logit regressed on anything else is outside
                    if chain_res.contains(&re) && !chain_res.contains(&on) {
                        return None;
                    }
                    (re, on)
                }
                ParamKind::Loading { re, .. } if chain_res.contains(&re) => return None,
                _ => continue,
            };
            if chain_res.contains(&a) && chain_res.contains(&b) {
                if p.class.is_some() {
                    return None;
                }
                params.push(i);
            }
        }
        let names = cvs.iter().map(|c| c.name.to_ascii_uppercase()).collect();
        params.sort_unstable();
        params.dedup();
        Some(Chain {
            links,
            names,
            params,
        })
    }

    /// The random logits' distribution at `phi`: the chain's block of the
    /// random effects' implied moments (its logits are regressed only on
    /// each other, so their means are A μ within the block).
    fn logits(&self, model: &Model, phi: &[f64]) -> Logits {
        let t = self.links.len();
        // I − B is unit lower triangular in an acyclic model (the checks
        // refuse cycles), so the moments exist
        let (a_all, s_all) = random_effect_moments(model, phi).unwrap_or_else(|| {
            let n = model.latent.random.len();
            (DMatrix::identity(n, n), DMatrix::zeros(n, n))
        });
        let re = |s: usize| self.links[s].random;
        let a = DMatrix::from_fn(t, t, |x, y| match (re(x), re(y)) {
            (Some(p), Some(q)) => a_all[(p, q)],
            _ => f64::from(u8::from(x == y)),
        });
        let sigma = DMatrix::from_fn(t, t, |x, y| match (re(x), re(y)) {
            (Some(p), Some(q)) => s_all[(p, q)],
            _ => 0.0,
        });
        let mu = nalgebra::DVector::from_fn(t, |s, _| phi[self.links[s].intercept]);
        let mean = &a * mu;
        Logits {
            mean: mean.iter().copied().collect(),
            chol: cholesky_psd(&sigma),
            a,
        }
    }

    /// The probability of each pattern of the first `k` classes (bit s set:
    /// C_s = 1) given the logits `alpha`.
    fn patterns(&self, phi: &[f64], alpha: &[f64], k: usize) -> Vec<f64> {
        let mut probs = vec![1.0];
        for s in 0..k {
            let mut next = vec![0.0; probs.len() * 2];
            for (pat, &q) in probs.iter().enumerate() {
                let eta = alpha[s] + self.gamma_sum(phi, s, pat);
                let p1 = expit(eta);
                next[pat | (1 << s)] += q * p1;
                next[pat] += q * (1.0 - p1);
            }
            probs = next;
        }
        probs
    }

    /// Σ_s γ_ts I(C_s = 1) for the pattern `pat`.
    fn gamma_sum(&self, phi: &[f64], t: usize, pat: usize) -> f64 {
        self.links[t]
            .parents
            .iter()
            .filter(|(p, _)| pat & (1 << p) != 0)
            .map(|&(_, g)| phi[g])
            .sum()
    }

    /// Mean and variance of Σ_s γ_ts I(C_s = 1) given α_<t.
    fn parent_moments(&self, phi: &[f64], alpha: &[f64], t: usize) -> (f64, f64) {
        let probs = self.patterns(phi, alpha, t);
        let (mut m, mut m2) = (0.0, 0.0);
        for (pat, q) in probs.iter().enumerate() {
            let s = self.gamma_sum(phi, t, pat);
            m += q * s;
            m2 += q * s * s;
        }
        (m, (m2 - m * m).max(0.0))
    }
}

/// The joint normal distribution of the chain's logits α (constants have
/// variance 0).
struct Logits {
    mean: Vec<f64>,
    /// Lower Cholesky factor of Var(α), zero columns at zero pivots.
    chol: DMatrix<f64>,
    /// (I − B)^-1.
    a: DMatrix<f64>,
}

impl Logits {
    /// Gauss–Hermite nodes over α_<k: (weight, α with the entries ≥ k at
    /// their conditional means given α_<k).
    fn grid(&self, k: usize) -> Vec<(f64, Vec<f64>)> {
        let dims: Vec<usize> = (0..k).filter(|&s| self.chol[(s, s)] > 0.0).collect();
        let per = if dims.is_empty() {
            1
        } else {
            (GRID_BUDGET.powf(1.0 / dims.len() as f64) as usize).clamp(8, 40)
        };
        let (x, lw) = gauss_hermite_1d(per);
        let t = self.mean.len();
        let mut out = Vec::new();
        let mut idx = vec![0usize; dims.len()];
        loop {
            let mut z = vec![0.0; t];
            let mut lwsum = 0.0;
            for (d, &s) in dims.iter().enumerate() {
                z[s] = x[idx[d]];
                lwsum += lw[idx[d]];
            }
            let alpha = (0..t)
                .map(|r| self.mean[r] + (0..=r).map(|j| self.chol[(r, j)] * z[j]).sum::<f64>())
                .collect();
            out.push((lwsum.exp(), alpha));
            // odometer
            let mut d = 0;
            loop {
                if d == dims.len() {
                    return out;
                }
                idx[d] += 1;
                if idx[d] < per {
                    break;
                }
                idx[d] = 0;
                d += 1;
            }
        }
    }
}

/// Lower Cholesky factor of a positive semi-definite matrix; a pivot not
/// above 1e-12 times the largest diagonal entry gives a zero column.
fn cholesky_psd(s: &DMatrix<f64>) -> DMatrix<f64> {
    let n = s.nrows();
    let tol = 1e-12 * (0..n).map(|i| s[(i, i)].abs()).fold(0.0, f64::max);
    let mut l = DMatrix::zeros(n, n);
    for j in 0..n {
        let d = s[(j, j)] - (0..j).map(|k| l[(j, k)] * l[(j, k)]).sum::<f64>();
        if d <= tol || d <= 0.0 {
            continue;
        }
        let root = d.sqrt();
        l[(j, j)] = root;
        for i in j + 1..n {
            let v = s[(i, j)] - (0..j).map(|k| l[(i, k)] * l[(j, k)]).sum::<f64>();
            l[(i, j)] = v / root;
        }
    }
    l
}

fn expit(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The quantities with standard errors, in a fixed order: per class
/// variable (P, R², V1, V2, V3, parents alone), then per effect (through
/// the logits, through the classes, total).
fn quantities(chain: &Chain, model: &Model, phi: &[f64]) -> Vec<f64> {
    let lg = chain.logits(model, phi);
    let mut out = Vec::new();
    for t in 0..chain.links.len() {
        out.extend(explained(chain, &lg, phi, t));
    }
    for (s, t) in effect_pairs(chain) {
        out.extend(effect(chain, &lg, phi, s, t));
    }
    out
}

/// (P(C_t = 1), R², V1, V2, V3 shares, parents alone or NaN).
fn explained(chain: &Chain, lg: &Logits, phi: &[f64], t: usize) -> [f64; 6] {
    let (mut w_sum, mut g1, mut g2, mut v2, mut s1, mut s2) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for (w, alpha) in lg.grid(t) {
        // alpha[t] holds E[α_t | α_<t]: the Cholesky factor is lower
        let (m, v) = chain.parent_moments(phi, &alpha, t);
        let g = alpha[t] + m;
        w_sum += w;
        g1 += w * g;
        g2 += w * g * g;
        v2 += w * v;
        s1 += w * m;
        s2 += w * (v + m * m);
    }
    let (g1, g2, v2, s1, s2) = (g1 / w_sum, g2 / w_sum, v2 / w_sum, s1 / w_sum, s2 / w_sum);
    let v1 = (g2 - g1 * g1).max(0.0);
    let v3 = lg.chol[(t, t)].powi(2);
    let total = v1 + v2 + v3 + LOGISTIC_VARIANCE;
    let parents = if chain.links[t].parents.is_empty() {
        f64::NAN
    } else {
        let vs = (s2 - s1 * s1).max(0.0);
        vs / (vs + LOGISTIC_VARIANCE)
    };
    [
        marginal_probability(chain, lg, phi, t),
        (v1 + v2 + v3) / total,
        v1 / total,
        v2 / total,
        v3 / total,
        parents,
    ]
}

/// P(C_t = 1), averaged over α_≤t.
fn marginal_probability(chain: &Chain, lg: &Logits, phi: &[f64], t: usize) -> f64 {
    let (mut w_sum, mut p) = (0.0, 0.0);
    for (w, alpha) in lg.grid(t + 1) {
        let probs = chain.patterns(phi, &alpha, t + 1);
        w_sum += w;
        p += w * probs
            .iter()
            .enumerate()
            .filter(|(pat, _)| pat & (1 << t) != 0)
            .map(|(_, q)| q)
            .sum::<f64>();
    }
    p / w_sum
}

/// The (s, t) pairs with an effect: α_s random, s < t.
fn effect_pairs(chain: &Chain) -> Vec<(usize, usize)> {
    let n = chain.links.len();
    (0..n)
        .filter(|&s| chain.links[s].random.is_some())
        .flat_map(|s| (s + 1..n).map(move |t| (s, t)))
        .collect()
}

/// (through the random logits, through the classes, total) of α_s on C_t.
fn effect(chain: &Chain, lg: &Logits, phi: &[f64], s: usize, t: usize) -> [f64; 3] {
    const H: f64 = 1e-4;
    let dir: Vec<f64> = (0..chain.links.len()).map(|r| lg.a[(r, s)]).collect();
    let (mut w_sum, mut d) = (0.0, 0.0);
    for (w, alpha) in lg.grid(t) {
        let moved =
            |h: f64| -> Vec<f64> { alpha.iter().zip(&dir).map(|(a, e)| a + h * e).collect() };
        let up = chain.parent_moments(phi, &moved(H), t).0;
        let down = chain.parent_moments(phi, &moved(-H), t).0;
        w_sum += w;
        d += w * (up - down) / (2.0 * H);
    }
    let through_classes = d / w_sum;
    [dir[t], through_classes, dir[t] + through_classes]
}

/// The transition probabilities P(C_t | parents) averaged over the random
/// logits, for each class variable with parents.
fn averaged_transitions(chain: &Chain, lg: &Logits, phi: &[f64]) -> Vec<TransitionTable> {
    let mut out = Vec::new();
    for (t, link) in chain.links.iter().enumerate() {
        if link.parents.is_empty() {
            continue;
        }
        let np = link.parents.len();
        // joint P(parents' pattern, C_t = 1) and P(parents' pattern)
        let mut joint = vec![[0.0; 2]; 1 << np];
        for (w, alpha) in lg.grid(t + 1) {
            for (pat, q) in chain.patterns(phi, &alpha, t + 1).iter().enumerate() {
                let key = (0..np)
                    .filter(|&i| pat & (1 << link.parents[i].0) != 0)
                    .fold(0, |k, i| k | (1 << i));
                let one = usize::from(pat & (1 << t) == 0);
                joint[key][one] += w * q;
            }
        }
        // the parents' classes as the estimated model's table has them: the
        // last parent varying fastest, class 1 (C_s = 1) first
        let rows = (0..1usize << np)
            .map(|set| {
                let from: Vec<usize> = (0..np).map(|i| 1 + ((set >> (np - 1 - i)) & 1)).collect();
                let key = (0..np)
                    .filter(|&i| from[i] == 1)
                    .fold(0, |k, i| k | (1 << i));
                let [a, b] = joint[key];
                TransitionRow {
                    from,
                    probabilities: vec![a / (a + b), b / (a + b)],
                }
            })
            .collect();
        out.push(TransitionTable {
            variable: chain.names[t].clone(),
            given: link
                .parents
                .iter()
                .map(|&(p, _)| chain.names[p].clone())
                .collect(),
            rows,
            at_zero_covariates: false,
        });
    }
    out
}

/// The derived quantities of a latent transition model at `phi`, with
/// delta-method standard errors from `cov` (the covariance of the free
/// parameters; those in `at_bound` count as fixed); `None` when the model
/// is not one this module covers (see [`Chain`]).
pub fn decomposition(
    model: &Model,
    phi: &[f64],
    cov: Option<&DMatrix<f64>>,
    at_bound: &[usize],
) -> Option<TransitionDecomposition> {
    let chain = Chain::of(model)?;
    let at = quantities(&chain, model, phi);
    // central differences over the free parameters the quantities use
    let mut grads: Vec<Vec<(Option<usize>, f64)>> = vec![Vec::new(); at.len()];
    if cov.is_some() {
        for &i in &chain.params {
            if !matches!(model.parameters[i].value, ParamValue::Free(_)) {
                continue;
            }
            let h = 1e-5 * phi[i].abs().max(1.0);
            let mut x = phi.to_vec();
            x[i] = phi[i] + h;
            let up = quantities(&chain, model, &x);
            x[i] = phi[i] - h;
            let down = quantities(&chain, model, &x);
            for (q, g) in grads.iter_mut().enumerate() {
                g.push((Some(i), (up[q] - down[q]) / (2.0 * h)));
            }
        }
    }
    let value = |q: usize| derived_value(model, cov, at_bound, at[q], &grads[q]);
    let n = chain.links.len();
    let variables = (0..n)
        .map(|t| {
            let q = 6 * t;
            ExplainedVariance {
                variable: chain.names[t].clone(),
                probability: value(q),
                r_square: value(q + 1),
                earlier_random_logits: (t > 0).then(|| value(q + 2)),
                earlier_classes: (t > 0).then(|| value(q + 3)),
                own_random_logit: value(q + 4),
                parents_alone: (!at[q + 5].is_nan()).then(|| value(q + 5)),
            }
        })
        .collect();
    let effects = effect_pairs(&chain)
        .into_iter()
        .enumerate()
        .map(|(e, (s, t))| {
            let q = 6 * n + 3 * e;
            LogitEffect {
                from: format!("{}#1", chain.names[s]),
                to: chain.names[t].clone(),
                through_random_logits: value(q),
                through_classes: value(q + 1),
                total: value(q + 2),
            }
        })
        .collect();
    let any_random = chain.links.iter().any(|l| l.random.is_some());
    let transitions = if any_random {
        averaged_transitions(&chain, &chain.logits(model, phi), phi)
    } else {
        Vec::new()
    };
    Some(TransitionDecomposition {
        variables,
        effects,
        transitions,
    })
}
