//! The plan: a model compiled into the flat form the cluster-likelihood loop
//! runs. Every model family is a plan; there is no per-family code path.
//!
//! The parameter vector `phi` holds every model parameter, free or fixed, in
//! [`Model::parameters`] order. A *class combination* is one class of every
//! class variable (mixed radix, the last class variable varying fastest). The
//! complete-data log-likelihood of a row in combination `k` is a sum of
//! *terms*; each term depends on `k` only through its *state*
//! (`state_of_combo[k]`), and its parameters for a state are gathered from
//! `phi` through a small *local* layout (`phi_index`).
//!
//! Terms:
//! - `Categorical`: one ordered categorical dependent (eq 1), local layout
//!   `[tau_1 .. tau_{C-1}, beta_1 .. beta_q]`;
//! - `Normal`: one continuous dependent independent of the others, local
//!   layout `[nu, beta_1 .. beta_q, theta]`;
//! - `NormalBlock`: continuous dependents with residual covariances,
//!   multivariate normal with the observed part of each row (full-information
//!   ML), local layout `[nu (d), B (d x q, row-major), Sigma lower triangle
//!   packed by rows]`;
//! - `ClassLogit`: the multinomial logit of one class variable on covariates
//!   and earlier class variables (eq 4, 8, 9); its parameter *sets* are the
//!   combinations of its parents' classes, each with local layout, per class
//!   `k'`, `[alpha_k', beta_k' (q), gamma_k' (one per parent)]`; states are
//!   (parent combination, own class).

use std::collections::HashMap;

use mlmix_spec::{Link, Model, ParamKind, Scale};

use crate::data::EngineData;

/// A local parameter with no model parameter: a structural zero.
pub const NONE: u32 = u32::MAX;

/// What a term computes.
#[derive(Debug, Clone, PartialEq)]
pub enum TermKind {
    /// An ordered categorical (or binary) dependent variable.
    Categorical {
        /// Data column.
        col: usize,
        /// Number of categories.
        ncat: usize,
        /// Logit or probit.
        link: Link,
        /// Covariate columns.
        covs: Vec<usize>,
    },
    /// A continuous dependent variable, normal given the classes.
    Normal {
        /// Data column.
        col: usize,
        /// Covariate columns.
        covs: Vec<usize>,
    },
    /// Continuous dependent variables with residual covariances.
    NormalBlock {
        /// Data columns of the block's variables.
        cols: Vec<usize>,
        /// Covariate columns (shared by the block's regressions).
        covs: Vec<usize>,
        /// The distinct observed subsets (positions within `cols`).
        patterns: Vec<Vec<usize>>,
        /// Pattern index of each engine row (`u32::MAX`: nothing observed).
        row_pattern: Vec<u32>,
    },
    /// The multinomial logit of a class variable.
    ClassLogit {
        /// Which class variable.
        cv: usize,
        /// Its number of classes.
        classes: usize,
        /// Covariate columns.
        covs: Vec<usize>,
        /// Number of parent class variables.
        n_parents: usize,
    },
}

/// One term of the complete-data log-likelihood.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    /// What it computes.
    pub kind: TermKind,
    /// Number of states.
    pub n_states: usize,
    /// State of the term in each class combination.
    pub state_of_combo: Vec<u32>,
    /// Number of parameter sets (equal to `n_states` except for ClassLogit).
    pub n_sets: usize,
    /// Parameter set of each state.
    pub set_of_state: Vec<u32>,
    /// Local parameters per set.
    pub n_local: usize,
    /// `phi_index[set * n_local + l]`: the phi entry of local parameter `l`
    /// in `set`, or [`NONE`].
    pub phi_index: Vec<u32>,
}

impl Term {
    /// Size of the term's parameter space (sets × local).
    pub fn n_term_params(&self) -> usize {
        self.n_sets * self.n_local
    }
}

/// A compiled model.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Length of the parameter vector phi.
    pub n_phi: usize,
    /// Classes of each class variable.
    pub class_sizes: Vec<usize>,
    /// Number of class combinations.
    pub n_combos: usize,
    /// The terms.
    pub terms: Vec<Term>,
}

/// Why a model cannot be compiled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// Something the engine does not handle yet.
    #[error("not supported yet: {0}")]
    Unsupported(String),
    /// A parameter the model should have is missing (a bug upstream).
    #[error("internal error: parameter {0} missing from the model")]
    MissingParameter(String),
}

impl Plan {
    /// Class of class variable `m` in combination `combo`.
    pub fn class_of(&self, combo: usize, m: usize) -> usize {
        let stride: usize = self.class_sizes[m + 1..].iter().product();
        (combo / stride) % self.class_sizes[m]
    }

    /// Compiles a model for its data.
    pub fn compile(model: &Model, data: &EngineData) -> Result<Plan, PlanError> {
        let class_sizes: Vec<usize> = model.class_vars.iter().map(|c| c.classes).collect();
        let n_combos: usize = class_sizes.iter().product();
        let mut plan = Plan {
            n_phi: model.parameters.len(),
            class_sizes,
            n_combos,
            terms: Vec::new(),
        };
        let index: HashMap<(ParamKind, Option<usize>), u32> = model
            .parameters
            .iter()
            .enumerate()
            .map(|(i, p)| ((p.kind, p.class), i as u32))
            .collect();
        let get = |kind: ParamKind, class: Option<usize>| -> Result<u32, PlanError> {
            index
                .get(&(kind, class))
                .copied()
                .ok_or_else(|| PlanError::MissingParameter(model.param_name(&kind)))
        };
        let link = model.analysis.link;

        // blocks of continuous variables joined by residual covariances
        let nv = model.variables.len();
        let mut block_of: Vec<Option<usize>> = vec![None; nv];
        let mut blocks: Vec<Vec<usize>> = Vec::new();
        for &(a, b) in &model.covariances {
            match (block_of[a], block_of[b]) {
                (None, None) => {
                    block_of[a] = Some(blocks.len());
                    block_of[b] = Some(blocks.len());
                    blocks.push(vec![a, b]);
                }
                (Some(x), None) => {
                    block_of[b] = Some(x);
                    blocks[x].push(b);
                }
                (None, Some(y)) => {
                    block_of[a] = Some(y);
                    blocks[y].push(a);
                }
                (Some(x), Some(y)) if x != y => {
                    let moved = std::mem::take(&mut blocks[y]);
                    for &v in &moved {
                        block_of[v] = Some(x);
                    }
                    blocks[x].extend(moved);
                }
                _ => {}
            }
        }
        for b in &mut blocks {
            b.sort_unstable();
        }

        let mut done_block = vec![false; blocks.len()];
        for v in model.dependents() {
            let dep = model
                .dependent(v)
                .ok_or_else(|| PlanError::MissingParameter(model.variables[v].name.clone()))?;
            let m = dep.class_var;
            let n_states = m.map_or(1, |m| plan.class_sizes[m]);
            let state_of_combo: Vec<u32> = (0..n_combos)
                .map(|k| m.map_or(0, |m| plan.class_of(k, m)) as u32)
                .collect();
            let class = |s: usize| m.map(|_| s);
            if let Some(bi) = block_of[v] {
                if done_block[bi] {
                    continue;
                }
                done_block[bi] = true;
                let vars = &blocks[bi];
                let d = vars.len();
                // covariates: the union, in first-seen order
                let mut covs: Vec<usize> = Vec::new();
                for &u in vars {
                    if let Some(du) = model.dependent(u) {
                        for &x in &du.covariates {
                            if !covs.contains(&x) {
                                covs.push(x);
                            }
                        }
                    }
                }
                let q = covs.len();
                let n_local = d + d * q + d * (d + 1) / 2;
                let mut phi_index = vec![NONE; n_states * n_local];
                for s in 0..n_states {
                    let base = s * n_local;
                    for (i, &u) in vars.iter().enumerate() {
                        phi_index[base + i] = get(ParamKind::Mean { var: u }, class(s))?;
                        let du = model
                            .dependent(u)
                            .map(|x| x.covariates.clone())
                            .unwrap_or_default();
                        for (c, &x) in covs.iter().enumerate() {
                            if du.contains(&x) {
                                phi_index[base + d + i * q + c] = get(
                                    ParamKind::Slope {
                                        var: u,
                                        covariate: x,
                                    },
                                    class(s),
                                )?;
                            }
                        }
                    }
                    for i in 0..d {
                        for j in 0..=i {
                            let pos = base + d + d * q + i * (i + 1) / 2 + j;
                            phi_index[pos] = if i == j {
                                get(ParamKind::Variance { var: vars[i] }, class(s))?
                            } else {
                                let (a, b) = (vars[j], vars[i]);
                                if model.covariances.contains(&(a, b)) {
                                    get(ParamKind::Covariance { a, b }, class(s))?
                                } else {
                                    NONE
                                }
                            };
                        }
                    }
                }
                // missing-data patterns
                let mut patterns: Vec<Vec<usize>> = Vec::new();
                let mut pat_index: HashMap<Vec<usize>, u32> = HashMap::new();
                let mut row_pattern = Vec::with_capacity(data.n_rows());
                for r in 0..data.n_rows() {
                    let obs: Vec<usize> = (0..d)
                        .filter(|&i| !data.columns[vars[i]][r].is_nan())
                        .collect();
                    if obs.is_empty() {
                        row_pattern.push(u32::MAX);
                        continue;
                    }
                    let next = patterns.len() as u32;
                    let id = *pat_index.entry(obs.clone()).or_insert(next);
                    if id == next {
                        patterns.push(obs);
                    }
                    row_pattern.push(id);
                }
                plan.terms.push(Term {
                    kind: TermKind::NormalBlock {
                        cols: vars.clone(),
                        covs: covs.clone(),
                        patterns,
                        row_pattern,
                    },
                    n_states,
                    state_of_combo,
                    n_sets: n_states,
                    set_of_state: (0..n_states as u32).collect(),
                    n_local,
                    phi_index,
                });
                continue;
            }
            let q = dep.covariates.len();
            match &dep.scale {
                Scale::Categorical { categories } => {
                    let ncat = categories.len();
                    let n_local = ncat - 1 + q;
                    let mut phi_index = vec![NONE; n_states * n_local];
                    for s in 0..n_states {
                        for t in 1..ncat {
                            phi_index[s * n_local + t - 1] =
                                get(ParamKind::Threshold { var: v, index: t }, class(s))?;
                        }
                        for (c, &x) in dep.covariates.iter().enumerate() {
                            phi_index[s * n_local + ncat - 1 + c] = get(
                                ParamKind::Slope {
                                    var: v,
                                    covariate: x,
                                },
                                class(s),
                            )?;
                        }
                    }
                    plan.terms.push(Term {
                        kind: TermKind::Categorical {
                            col: v,
                            ncat,
                            link,
                            covs: dep.covariates.clone(),
                        },
                        n_states,
                        state_of_combo,
                        n_sets: n_states,
                        set_of_state: (0..n_states as u32).collect(),
                        n_local,
                        phi_index,
                    });
                }
                Scale::Continuous => {
                    let n_local = q + 2;
                    let mut phi_index = vec![NONE; n_states * n_local];
                    for s in 0..n_states {
                        phi_index[s * n_local] = get(ParamKind::Mean { var: v }, class(s))?;
                        for (c, &x) in dep.covariates.iter().enumerate() {
                            phi_index[s * n_local + 1 + c] = get(
                                ParamKind::Slope {
                                    var: v,
                                    covariate: x,
                                },
                                class(s),
                            )?;
                        }
                        phi_index[s * n_local + q + 1] =
                            get(ParamKind::Variance { var: v }, class(s))?;
                    }
                    plan.terms.push(Term {
                        kind: TermKind::Normal {
                            col: v,
                            covs: dep.covariates.clone(),
                        },
                        n_states,
                        state_of_combo,
                        n_sets: n_states,
                        set_of_state: (0..n_states as u32).collect(),
                        n_local,
                        phi_index,
                    });
                }
            }
        }

        // class-membership logits
        for (cv, c) in model.class_vars.iter().enumerate() {
            let k_n = c.classes;
            if k_n < 2 {
                continue;
            }
            let parents = &c.parents;
            let q = c.covariates.len();
            let np = parents.len();
            let per_class = 1 + q + np;
            let n_local = k_n * per_class;
            let parent_sizes: Vec<usize> = parents.iter().map(|&p| plan.class_sizes[p]).collect();
            let n_sets: usize = parent_sizes.iter().product();
            let n_states = n_sets * k_n;
            let mut phi_index = vec![NONE; n_sets * n_local];
            for set in 0..n_sets {
                // decode the parents' classes of this set (last parent fastest)
                let mut rem = set;
                let mut pcls = vec![0usize; np];
                for i in (0..np).rev() {
                    pcls[i] = rem % parent_sizes[i];
                    rem /= parent_sizes[i];
                }
                for k in 0..k_n - 1 {
                    let base = set * n_local + k * per_class;
                    phi_index[base] = get(ParamKind::ClassIntercept { cv, class: k }, None)?;
                    for (i, &x) in c.covariates.iter().enumerate() {
                        phi_index[base + 1 + i] = get(
                            ParamKind::ClassSlope {
                                cv,
                                class: k,
                                covariate: x,
                            },
                            None,
                        )?;
                    }
                    for (i, &p) in parents.iter().enumerate() {
                        if pcls[i] + 1 < parent_sizes[i] {
                            phi_index[base + 1 + q + i] = get(
                                ParamKind::ClassOnClass {
                                    cv,
                                    class: k,
                                    parent: p,
                                    parent_class: pcls[i],
                                },
                                None,
                            )?;
                        }
                    }
                }
            }
            let state_of_combo: Vec<u32> = (0..n_combos)
                .map(|combo| {
                    let mut set = 0;
                    for (i, &p) in parents.iter().enumerate() {
                        set = set * parent_sizes[i] + plan.class_of(combo, p);
                    }
                    (set * k_n + plan.class_of(combo, cv)) as u32
                })
                .collect();
            let set_of_state: Vec<u32> = (0..n_states).map(|s| (s / k_n) as u32).collect();
            plan.terms.push(Term {
                kind: TermKind::ClassLogit {
                    cv,
                    classes: k_n,
                    covs: c.covariates.clone(),
                    n_parents: np,
                },
                n_states,
                state_of_combo,
                n_sets,
                set_of_state,
                n_local,
                phi_index,
            });
        }
        Ok(plan)
    }
}
