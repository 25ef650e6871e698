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

use mlmix_spec::{Link, Model, ParamKind, RandomKind, Scale};

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
    /// `phi_index[set * n_local + l]`: the entry of local parameter `l` in
    /// `set` in the extended parameter vector (phi, then the Cholesky
    /// entries of [`Plan::chol`]), or [`NONE`].
    pub phi_index: Vec<u32>,
    /// A cluster-level term (a between-level class variable's logit or a
    /// between-level dependent): it counts once per cluster, on the
    /// cluster's first row.
    pub cluster_level: bool,
    /// It reads node-dependent virtual columns (random effects act on it).
    pub uses_nodes: bool,
}

impl Term {
    /// Size of the term's parameter space (sets × local).
    pub fn n_term_params(&self) -> usize {
        self.n_sets * self.n_local
    }
}

/// A node-dependent column: `z[dim]` times a data column (or 1). Random
/// effects enter the terms as slopes on these columns whose coefficients are
/// entries of the Cholesky factor L (b = mu + L z): a random intercept of
/// `y` is `Σ_b L[a][b] z_b`, a random slope on `x` is `Σ_b L[a][b] z_b x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VirtualCol {
    /// Integration dimension.
    pub dim: usize,
    /// Multiplying data column, if any.
    pub mult: Option<usize>,
}

/// One block of correlated random effects in one between-level class: the
/// covariance matrix Psi (from phi) and its Cholesky factor L (appended to
/// phi as the extended parameter vector).
#[derive(Debug, Clone, PartialEq)]
pub struct CholBlock {
    /// The integration dimension of each position of the block.
    pub dims: Vec<usize>,
    /// Psi lower triangle packed by rows: phi index, or [`NONE`] (zero).
    pub psi: Vec<u32>,
    /// L lower triangle packed by rows: index in the extended vector.
    pub l: Vec<u32>,
}

/// A compiled model.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Length of the parameter vector phi.
    pub n_phi: usize,
    /// Length of the extended parameter vector (phi, then Cholesky entries).
    pub n_ext: usize,
    /// Classes of each class variable.
    pub class_sizes: Vec<usize>,
    /// Whether each class variable is a between-level one.
    pub between_cv: Vec<bool>,
    /// Number of class combinations.
    pub n_combos: usize,
    /// The terms.
    pub terms: Vec<Term>,
    /// Integration dimensions (random effects).
    pub dims: usize,
    /// Number of data columns; covariate columns from here on are
    /// [`Plan::virtual_cols`].
    pub n_data_cols: usize,
    /// The node-dependent columns.
    pub virtual_cols: Vec<VirtualCol>,
    /// Random-effect covariance blocks.
    pub chol: Vec<CholBlock>,
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
        let n_phi = model.parameters.len();
        let mut plan = Plan {
            n_phi,
            n_ext: n_phi,
            class_sizes,
            between_cv: model.class_vars.iter().map(|c| c.between).collect(),
            n_combos,
            terms: Vec::new(),
            dims: model.random_effects().len(),
            n_data_cols: data.columns.len(),
            virtual_cols: Vec::new(),
            chol: Vec::new(),
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

        // random effects: covariance blocks (connected by covariances), one
        // per between-level class when Psi is class-specific
        let random = model.random_effects();
        let cov_cv = model.two_level.as_ref().and_then(|t| t.cov_class_var);
        let n_cov_states = cov_cv.map_or(1, |m| plan.class_sizes[m]);
        let nre = random.len();
        let mut comp: Vec<usize> = (0..nre).collect();
        fn root(comp: &mut [usize], mut a: usize) -> usize {
            while comp[a] != a {
                comp[a] = comp[comp[a]];
                a = comp[a];
            }
            a
        }
        for p in &model.parameters {
            if let ParamKind::RandomCovariance { a, b } = p.kind {
                let (ra, rb) = (root(&mut comp, a), root(&mut comp, b));
                comp[ra.max(rb)] = ra.min(rb);
            }
        }
        // (block, position) of each random effect, and the L index of
        // (effect a, effect b, covariance state)
        let mut members: Vec<Vec<usize>> = Vec::new();
        let mut block_of_re = vec![(0usize, 0usize); nre];
        let mut block_ids: HashMap<usize, usize> = HashMap::new();
        for a in 0..nre {
            let r = root(&mut comp, a);
            let bi = *block_ids.entry(r).or_insert_with(|| {
                members.push(Vec::new());
                members.len() - 1
            });
            block_of_re[a] = (bi, members[bi].len());
            members[bi].push(a);
        }
        let cov_class = |s: usize| cov_cv.map(|_| s);
        let mut l_index: HashMap<(usize, usize, usize), u32> = HashMap::new();
        for dims in &members {
            for s in 0..n_cov_states {
                let m = dims.len();
                let mut psi = Vec::with_capacity(m * (m + 1) / 2);
                let mut l = Vec::with_capacity(m * (m + 1) / 2);
                for i in 0..m {
                    for j in 0..=i {
                        let kind = if i == j {
                            ParamKind::RandomVariance { re: dims[i] }
                        } else {
                            ParamKind::RandomCovariance {
                                a: dims[j].min(dims[i]),
                                b: dims[j].max(dims[i]),
                            }
                        };
                        psi.push(match index.get(&(kind, cov_class(s))) {
                            Some(&i) => i,
                            None if i == j => {
                                return Err(PlanError::MissingParameter(model.param_name(&kind)));
                            }
                            None => NONE,
                        });
                        let e = plan.n_ext as u32;
                        plan.n_ext += 1;
                        l.push(e);
                        l_index.insert((dims[i], dims[j], s), e);
                    }
                }
                plan.chol.push(CholBlock {
                    dims: dims.clone(),
                    psi,
                    l,
                });
            }
        }
        let mut vcol_ids: HashMap<VirtualCol, usize> = HashMap::new();
        let mut virtual_cols: Vec<VirtualCol> = Vec::new();
        let n_data_cols = plan.n_data_cols;
        // the node columns and L entries through which random effect `a`
        // (multiplied by `mult`) acts in covariance state `s`
        let mut re_slopes = |a: usize, mult: Option<usize>, s: usize| -> Vec<(usize, u32)> {
            let (bi, pos) = block_of_re[a];
            let dims = &members[bi];
            (0..=pos)
                .map(|j| {
                    let vc = VirtualCol { dim: dims[j], mult };
                    let next = vcol_ids.len();
                    let id = *vcol_ids.entry(vc).or_insert(next);
                    if id == next {
                        virtual_cols.push(vc);
                    }
                    (n_data_cols + id, l_index[&(a, dims[j], s)])
                })
                .collect()
        };
        // the random effects acting on a dependent variable
        let re_of_var = |v: usize| -> Vec<(usize, Option<usize>)> {
            random
                .iter()
                .enumerate()
                .filter_map(|(a, r)| match r.kind {
                    RandomKind::Intercept { var } if var == v => Some((a, None)),
                    RandomKind::Slope { var, covariate } if var == v => Some((a, Some(covariate))),
                    _ => None,
                })
                .collect()
        };

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
            let group: Vec<usize> = match block_of[v] {
                Some(bi) => blocks[bi].clone(),
                None => vec![v],
            };
            let has_re = group.iter().any(|&u| !re_of_var(u).is_empty());
            let m = match (dep.class_var, has_re.then_some(cov_cv).flatten()) {
                (m, None) => m,
                (None, Some(d)) => Some(d),
                (Some(m), Some(d)) if m == d => Some(m),
                (Some(_), Some(_)) => {
                    return Err(PlanError::Unsupported(format!(
                        "{} has parameters varying over one class variable and random-effect \
                         variances varying over another",
                        model.variables[v].name
                    )));
                }
            };
            let cov_state = |s: usize| if m.is_some() && m == cov_cv { s } else { 0 };
            // random-effect slopes of variable u in state s
            let mut vslopes = |u: usize, s: usize| -> Vec<(usize, u32)> {
                re_of_var(u)
                    .into_iter()
                    .flat_map(|(a, mult)| re_slopes(a, mult, cov_state(s)))
                    .collect()
            };
            let n_states = m.map_or(1, |m| plan.class_sizes[m]);
            let cluster_level = model.variables[v].between;
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
                // covariates: the union, in first-seen order, then the
                // random effects' node columns
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
                for &u in vars {
                    for (c, _) in vslopes(u, 0) {
                        if !covs.contains(&c) {
                            covs.push(c);
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
                        for (col, e) in vslopes(u, s) {
                            if let Some(c) = covs.iter().position(|&x| x == col) {
                                phi_index[base + d + i * q + c] = e;
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
                let uses_nodes = covs.iter().any(|&c| c >= n_data_cols);
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
                    cluster_level,
                    uses_nodes,
                });
                continue;
            }
            let vcols: Vec<usize> = vslopes(v, 0).into_iter().map(|(c, _)| c).collect();
            let mut covs_all = dep.covariates.clone();
            covs_all.extend_from_slice(&vcols);
            let q0 = dep.covariates.len();
            let q = covs_all.len();
            let uses_nodes = !vcols.is_empty();
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
                        for (c, (_, e)) in vslopes(v, s).into_iter().enumerate() {
                            phi_index[s * n_local + ncat - 1 + q0 + c] = e;
                        }
                    }
                    plan.terms.push(Term {
                        kind: TermKind::Categorical {
                            col: v,
                            ncat,
                            link,
                            covs: covs_all,
                        },
                        n_states,
                        state_of_combo,
                        n_sets: n_states,
                        set_of_state: (0..n_states as u32).collect(),
                        n_local,
                        phi_index,
                        cluster_level,
                        uses_nodes,
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
                        for (c, (_, e)) in vslopes(v, s).into_iter().enumerate() {
                            phi_index[s * n_local + 1 + q0 + c] = e;
                        }
                        phi_index[s * n_local + q + 1] =
                            get(ParamKind::Variance { var: v }, class(s))?;
                    }
                    plan.terms.push(Term {
                        kind: TermKind::Normal {
                            col: v,
                            covs: covs_all,
                        },
                        n_states,
                        state_of_combo,
                        n_sets: n_states,
                        set_of_state: (0..n_states as u32).collect(),
                        n_local,
                        phi_index,
                        cluster_level,
                        uses_nodes,
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
            // random logit intercepts of its classes: node columns
            let re_classes: Vec<(usize, usize)> = random
                .iter()
                .enumerate()
                .filter_map(|(a, r)| match r.kind {
                    RandomKind::ClassIntercept { cv: rcv, class } if rcv == cv => Some((a, class)),
                    _ => None,
                })
                .collect();
            if !re_classes.is_empty() && cov_cv.is_some() {
                return Err(PlanError::Unsupported(format!(
                    "random logit intercepts of {} with class-specific random-effect variances",
                    c.name
                )));
            }
            let mut covs_all = c.covariates.clone();
            let mut vslope: Vec<(usize, usize, u32)> = Vec::new(); // (class, col, ext)
            for &(a, class) in &re_classes {
                for (col, e) in re_slopes(a, None, 0) {
                    if !covs_all.contains(&col) {
                        covs_all.push(col);
                    }
                    vslope.push((class, col, e));
                }
            }
            let q0 = c.covariates.len();
            let q = covs_all.len();
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
                    for &(class, col, e) in &vslope {
                        if class == k
                            && let Some(i) = covs_all[q0..].iter().position(|&x| x == col)
                        {
                            phi_index[base + 1 + q0 + i] = e;
                        }
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
                    covs: covs_all,
                    n_parents: np,
                },
                n_states,
                state_of_combo,
                n_sets,
                set_of_state,
                n_local,
                phi_index,
                cluster_level: c.between,
                uses_nodes: q > q0,
            });
        }
        plan.virtual_cols = virtual_cols;
        Ok(plan)
    }
}
