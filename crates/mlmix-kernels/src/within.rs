//! Within-level factors of a two-level model, integrated per row inside
//! each cluster's integral (DESIGN.md: `Π_i Σ_c ∫ f(y_ij | c, d, b, w)
//! φ(w) dw`).
//!
//! A within-level factor varies over the rows of a cluster, so it cannot
//! be a dimension of the cluster's grid. The plan integrates it with a
//! fixed product rule (trapezoid on [−5, 5] or Gauss–Hermite, the model's
//! points per dimension) over its standardised residuals z (w = M z, M =
//! (I − B)^-1 L as for the between-level random effects), and treats the
//! rule's nodes as the classes of one more within-level class variable,
//! appended last ([`Plan::within_cv`]):
//! - its class logit has fixed intercepts, the rule's log weights
//!   ([`Plan::constants`]), so P(node q) is the weight of q;
//! - a term whose variable a within-level factor measures gets one state
//!   per node, in which its intercept (continuous) or its thresholds
//!   (categorical) are shifted by the node's value `Σ_g M[a][g] z_q[g]`:
//!   [`Shifted`] entries of the extended parameter vector, whose chain
//!   rule composes that of M.
//!
//! The row's log-sum-exp over within-level class combinations then is the
//! inner integral, and the E-step's per-state weights are the posterior
//! over the nodes, so gradients, the EM information and the MLR scores need
//! nothing new. A single-level model, and a two-level one without
//! within-level factors, has no such class variable and pays nothing.

use std::collections::HashMap;

use mlmix_spec::IntegrationMethod;

use crate::plan::{NONE, Plan, PlanError, TermKind};
use crate::quadrature::{gauss_hermite_1d, trapezoid_on};

/// The range of the within-level trapezoid rule: [−5, 5], as the
/// non-adaptive between-level grid.
const TRAPEZOID_RANGE: f64 = 5.0;

/// The most nodes × class combinations a plan with within-level factors
/// may have (the states of a row).
const MAX_ROW_COMBOS: usize = 1 << 16;

/// An entry of the extended vector shifted by a within-level node:
/// `ext[ext] = ext[base] + sign · Σ_g c_g ext[m_g]`, `m_g` entries of M
/// and `c_g` the node's coordinates (of the within-level dimensions
/// `dims`: the forward run of a Monte Carlo study shifts by a drawn z).
#[derive(Debug, Clone, PartialEq)]
pub struct Shifted {
    /// The entry it fills.
    pub ext: u32,
    /// The intercept or threshold shifted (an index of the extended
    /// vector: phi or a derived entry).
    pub base: u32,
    /// +1 for an intercept, −1 for a threshold.
    pub sign: f64,
    /// `(M entry, node coordinate)`.
    pub m: Vec<(u32, f64)>,
    /// The within-level dimension of each entry of `m`.
    pub dims: Vec<usize>,
}

/// The fixed per-row rule over the within-level dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct WithinRule {
    /// The nodes (one coordinate per within-level dimension).
    pub nodes: Vec<Vec<f64>>,
    /// Their normalised log weights.
    pub log_w: Vec<f64>,
}

impl WithinRule {
    /// The product rule with `points` per dimension over `dims`
    /// dimensions: trapezoid on [−5, 5] for the trapezoid method,
    /// Gauss–Hermite otherwise (also for Monte Carlo integration, whose
    /// points are meant for the cluster's grid).
    pub fn new(method: IntegrationMethod, points: usize, dims: usize) -> Self {
        let (x, lw) = match method {
            IntegrationMethod::Trapezoid => {
                let (t, lw, _) = trapezoid_on(points, TRAPEZOID_RANGE);
                (t, lw)
            }
            _ => gauss_hermite_1d(points),
        };
        let mut nodes: Vec<Vec<f64>> = vec![Vec::new()];
        let mut log_w = vec![0.0];
        for _ in 0..dims {
            let mut n2 = Vec::with_capacity(nodes.len() * x.len());
            let mut w2 = Vec::with_capacity(nodes.len() * x.len());
            for (node, &w) in nodes.iter().zip(&log_w) {
                for (&xq, &lq) in x.iter().zip(&lw) {
                    let mut n = node.clone();
                    n.push(xq);
                    n2.push(n);
                    w2.push(w + lq);
                }
            }
            nodes = n2;
            log_w = w2;
        }
        WithinRule { nodes, log_w }
    }
}

/// What the within-level factors add to one dependent variable: its
/// entries of M, each with the within-level dimension it multiplies.
#[derive(Debug, Clone, PartialEq)]
pub struct WithinLoadings {
    /// The dependent variable.
    pub var: usize,
    /// `(M entry, within-level dimension)`.
    pub m: Vec<(u32, usize)>,
}

/// The positions of a term's local layout that a within-level node
/// shifts, with their variable and sign.
fn shift_positions(kind: &TermKind, loads: &[WithinLoadings]) -> Vec<(usize, usize, f64)> {
    let has = |v: usize| loads.iter().position(|l| l.var == v);
    match kind {
        TermKind::Categorical { col, ncat, .. } => match has(*col) {
            Some(l) => (0..ncat - 1).map(|t| (t, l, -1.0)).collect(),
            None => Vec::new(),
        },
        TermKind::Guessing { col, .. } => has(*col).map(|l| (0, l, -1.0)).into_iter().collect(),
        TermKind::Normal { col, .. } => has(*col).map(|l| (0, l, 1.0)).into_iter().collect(),
        TermKind::NormalBlock { cols, .. } => cols
            .iter()
            .enumerate()
            .filter_map(|(i, &v)| has(v).map(|l| (i, l, 1.0)))
            .collect(),
        TermKind::ClassLogit { .. } | TermKind::Nominal { .. } => Vec::new(),
    }
}

/// Appends the within-level node class variable to a compiled plan: every
/// term's states are remapped to the new combinations, the terms of the
/// variables in `loads` get a state per node with shifted intercepts or
/// thresholds, and a class logit with the rule's log weights is added.
pub fn expand(
    plan: &mut Plan,
    rule: &WithinRule,
    loads: &[WithinLoadings],
) -> Result<(), PlanError> {
    let nq = rule.nodes.len();
    if nq.saturating_mul(plan.n_combos) > MAX_ROW_COMBOS {
        return Err(PlanError::Unsupported(format!(
            "{} within-level integration points times {} class combinations per row (at most {MAX_ROW_COMBOS}); use fewer INTEGRATION points",
            nq, plan.n_combos
        )));
    }
    let mut ids: HashMap<(u32, u64, usize, usize), u32> = HashMap::new();
    for ti in 0..plan.terms.len() {
        let pos = shift_positions(&plan.terms[ti].kind, loads);
        let term = &mut plan.terms[ti];
        let old = std::mem::take(&mut term.state_of_combo);
        if pos.is_empty() {
            term.state_of_combo = old
                .iter()
                .flat_map(|&s| std::iter::repeat_n(s, nq))
                .collect();
            continue;
        }
        if term.n_sets != term.n_states {
            return Err(PlanError::Data(
                "a term measured by a within-level factor has shared parameter sets".into(),
            ));
        }
        let nl = term.n_local;
        let mut phi_index = Vec::with_capacity(term.n_states * nq * nl);
        for s in 0..term.n_states {
            for (q, node) in rule.nodes.iter().enumerate() {
                let start = phi_index.len();
                phi_index.extend_from_slice(&term.phi_index[s * nl..(s + 1) * nl]);
                for &(p, l, sign) in &pos {
                    let base = phi_index[start + p];
                    let key = (base, sign.to_bits(), l, q);
                    let e = match ids.get(&key) {
                        Some(&e) => e,
                        None => {
                            let e = plan.n_ext as u32;
                            plan.n_ext += 1;
                            plan.shifted.push(Shifted {
                                ext: e,
                                base,
                                sign,
                                m: loads[l].m.iter().map(|&(m, d)| (m, node[d])).collect(),
                                dims: loads[l].m.iter().map(|&(_, d)| d).collect(),
                            });
                            ids.insert(key, e);
                            e
                        }
                    };
                    phi_index[start + p] = e;
                }
            }
        }
        term.n_states *= nq;
        term.n_sets = term.n_states;
        term.set_of_state = (0..term.n_states as u32).collect();
        term.phi_index = phi_index;
        term.state_of_combo = old
            .iter()
            .flat_map(|&s| (0..nq).map(move |q| s * nq as u32 + q as u32))
            .collect();
    }
    // the nodes' class variable and its fixed logits (the last node is the
    // reference)
    let cv = plan.class_sizes.len();
    plan.class_sizes.push(nq);
    plan.between_cv.push(false);
    plan.n_combos *= nq;
    plan.within_cv = Some(cv);
    let mut phi_index = vec![NONE; nq];
    for q in 0..nq - 1 {
        let e = plan.n_ext as u32;
        plan.n_ext += 1;
        plan.constants.push((e, rule.log_w[q] - rule.log_w[nq - 1]));
        phi_index[q] = e;
    }
    plan.terms.push(crate::plan::Term {
        kind: TermKind::ClassLogit {
            cv,
            classes: nq,
            covs: Vec::new(),
            n_parents: 0,
        },
        n_states: nq,
        state_of_combo: (0..plan.n_combos).map(|k| (k % nq) as u32).collect(),
        n_sets: 1,
        set_of_state: vec![0; nq],
        n_local: nq,
        phi_index,
        cluster_level: false,
        uses_nodes: false,
        info_pairs: Vec::new(),
    });
    Ok(())
}

/// Fills the shifted entries of `ext` and appends their derivatives to
/// `jac`, composing the chain rule of their bases and M entries (which
/// `jac` already holds).
pub fn fill(shifted: &[Shifted], n_phi: usize, ext: &mut [f64], jac: &mut Vec<(u32, u32, f64)>) {
    if shifted.is_empty() {
        return;
    }
    let mut of: HashMap<u32, Vec<(u32, f64)>> = HashMap::new();
    for &(e, p, d) in jac.iter() {
        of.entry(e).or_default().push((p, d));
    }
    let chain = |e: u32, scale: f64, out: &mut Vec<(u32, u32, f64)>, target: u32| {
        if (e as usize) < n_phi {
            out.push((target, e, scale));
        } else if let Some(ds) = of.get(&e) {
            out.extend(ds.iter().map(|&(p, d)| (target, p, scale * d)));
        }
    };
    let mut added = Vec::new();
    for sh in shifted {
        let mut v = if sh.base == NONE {
            0.0
        } else {
            chain(sh.base, 1.0, &mut added, sh.ext);
            ext[sh.base as usize]
        };
        for &(m, c) in &sh.m {
            v += sh.sign * c * ext[m as usize];
            chain(m, sh.sign * c, &mut added, sh.ext);
        }
        ext[sh.ext as usize] = v;
    }
    jac.extend(added);
}
