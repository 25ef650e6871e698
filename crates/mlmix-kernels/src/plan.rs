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
//! - `Nominal`: one nominal dependent, a multinomial logit of its category
//!   (last category the reference), local layout per category `k` `[a_k,
//!   b_k (q)]`;
//! - `ClassLogit`: the multinomial logit of one class variable on covariates
//!   and earlier class variables (eq 4, 8, 9); its parameter *sets* are the
//!   combinations of its parents' classes, each with local layout, per class
//!   `k'`, `[alpha_k', beta_k' (q), gamma_k' (one per parent)]`; states are
//!   (parent combination, own class).

use std::collections::HashMap;

use mlmix_spec::{Link, Model, ParamKind, ParamValue, RandomKind, Scale};

use crate::data::EngineData;
use crate::implied::{ClosedForm, Implied, product};
use crate::within::{Shifted, WithinLoadings, WithinRule};

/// A local parameter with no model parameter: a structural zero.
pub const NONE: u32 = u32::MAX;

/// The integration dimension of a block position whose random effect is a
/// constant (see [`constant_random_effects`]): none.
pub const NO_DIM: usize = usize::MAX;

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
    /// A binary dependent variable with a guessing parameter (the 3PL):
    /// local layout `[tau, beta_1 .. beta_q, gamma]`, gamma the logit of
    /// the guessing probability.
    Guessing {
        /// Data column.
        col: usize,
        /// Logit or probit.
        link: Link,
        /// Covariate columns.
        covs: Vec<usize>,
    },
    /// A nominal (unordered categorical) dependent variable: a
    /// multinomial logit of its category with the last category as the
    /// reference; local layout per state, per category `k`, `[a_k, b_k
    /// (q)]` (the last category's entries [`NONE`]).
    Nominal {
        /// Data column (category indices 0 .. ncat-1).
        col: usize,
        /// Number of categories.
        ncat: usize,
        /// Covariate columns.
        covs: Vec<usize>,
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

impl TermKind {
    /// The covariate columns the term reads (node columns included).
    pub fn covs(&self) -> &[usize] {
        match self {
            TermKind::Categorical { covs, .. }
            | TermKind::Guessing { covs, .. }
            | TermKind::Nominal { covs, .. }
            | TermKind::Normal { covs, .. }
            | TermKind::NormalBlock { covs, .. }
            | TermKind::ClassLogit { covs, .. } => covs,
        }
    }
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
    /// The pairs `(a, b)`, `a >= b`, of local parameters (of a binary
    /// term: `[tau, beta_1 ..]`) whose covariates are both non-zero on
    /// some row (the intercept's with every one): the only entries of its
    /// information that rows add to. Empty: every pair. Item dummies of
    /// long data are never non-zero together, so an item's row adds to its
    /// own item's entries only ([`Plan::compile`] fills it in from the data).
    pub info_pairs: Vec<(u32, u32)>,
}

impl Term {
    /// A term with one parameter set per state (every kind but the class
    /// logit).
    fn per_state(
        kind: TermKind,
        state_of_combo: Vec<u32>,
        (n_states, n_local): (usize, usize),
        phi_index: Vec<u32>,
        cluster_level: bool,
        uses_nodes: bool,
    ) -> Term {
        Term {
            kind,
            n_states,
            state_of_combo,
            n_sets: n_states,
            set_of_state: (0..n_states as u32).collect(),
            n_local,
            phi_index,
            cluster_level,
            uses_nodes,
            info_pairs: Vec::new(),
        }
    }

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

/// One block of random effects joined by covariances or regressions, in
/// one between-level class: the residual covariance matrix Psi (from phi)
/// and its Cholesky factor L, and the regressions B among the block's
/// random effects (eq 5: eta = mu + B eta + Gamma w + xi). The random
/// effects are eta = A (mu + Gamma w + L z) with A = (I - B)^-1; the
/// positions of the block are ordered so that every random effect comes
/// after those it is regressed on, which makes B strictly lower triangular
/// and A and M = A L lower triangular. The coefficients of z are the
/// entries of M, appended to phi in the extended parameter vector (M is L
/// itself when the block has no regressions).
#[derive(Debug, Clone, PartialEq)]
pub struct CholBlock {
    /// The integration dimension of each position of the block, or
    /// [`NO_DIM`] for a random effect whose variance is fixed at zero (its
    /// row and column of Psi, L and M are zero: it adds no dimension) and
    /// for a within-level latent variable (integrated per row by the
    /// within-level rule, [`crate::within`]).
    pub dims: Vec<usize>,
    /// Psi lower triangle packed by rows: phi index, or [`NONE`] (zero).
    pub psi: Vec<u32>,
    /// L lower triangle packed by rows: index in the extended vector.
    pub l: Vec<u32>,
    /// The regressions: `(row, column, phi index)`, block positions, the
    /// random effect at `row` regressed on the one at `column < row`.
    pub beta: Vec<(u32, u32, u32)>,
    /// M = (I - B)^-1 L lower triangle packed by rows: index in the
    /// extended vector (equal to `l` when `beta` is empty).
    pub m: Vec<u32>,
}

/// An entry of the extended parameter vector that is the mean or a
/// covariate effect of a random effect regressed on others (the reduced
/// form of eq 5): `ext[ext] = phi[base] + sign * Σ_b A[row][b] phi[x_b]`,
/// A = (I - B)^-1 of block `block` ([`Plan::chol`]), `base` optional
/// ([`NONE`]). A continuous intercept's effective mean is `Σ_b A[row][b]
/// mu_b`; a categorical one shifts the thresholds (`tau_k - Σ_b ...`).
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    /// The entry of the extended vector it fills.
    pub ext: u32,
    /// Index into [`Plan::chol`].
    pub block: u32,
    /// The random effect's position in the block.
    pub row: u32,
    /// phi index added as it is, or [`NONE`].
    pub base: u32,
    /// +1 or -1.
    pub sign: f64,
    /// `(block position, phi index)`: the means or covariate effects of the
    /// block's random effects that enter.
    pub x: Vec<(u32, u32)>,
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
    /// Integration dimensions: the random effects, less those whose
    /// variance is fixed at zero ([`constant_random_effects`]), in the
    /// model's order.
    pub dims: usize,
    /// Number of data columns; covariate columns from here on are
    /// [`Plan::virtual_cols`].
    pub n_data_cols: usize,
    /// The node-dependent columns.
    pub virtual_cols: Vec<VirtualCol>,
    /// Random-effect covariance blocks.
    pub chol: Vec<CholBlock>,
    /// Derived entries of the extended vector (random effects regressed on
    /// others), after the blocks' entries.
    pub derived: Vec<Derived>,
    /// Implied means and covariances of the indicators of factors
    /// integrated in closed form ([`crate::implied`]), after the derived
    /// entries.
    pub implied: Vec<Implied>,
    /// Constant entries of the extended vector (the log weights of the
    /// within-level rule), after the implied ones.
    pub constants: Vec<(u32, f64)>,
    /// Intercepts and thresholds shifted by a within-level node
    /// ([`crate::within`]), after the constants.
    pub shifted: Vec<Shifted>,
    /// The class variable whose classes are the nodes of the within-level
    /// factors' rule (the last one), if the model has within-level factors.
    pub within_cv: Option<usize>,
    /// The blocks' covariance states are the classes of a within-level
    /// class variable, over which only loadings vary
    /// ([`mlmix_spec::Model::cov_class_is_within`]): every state of a block
    /// has the same Psi (one parameter held equal, or one fixed value).
    pub psi_shared: bool,
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
    /// The engine data do not have the columns the model needs.
    #[error("internal error: {0}")]
    Data(String),
}

/// A derived entry's definition: (block, row, base, sign bits, x).
type DerivedKey = (u32, u32, u32, u64, Vec<(u32, u32)>);

/// Where each random effect's parts go: the extended-vector entries of the
/// coefficients of z (M = A L), of effective means and covariate effects
/// (derived entries), and the node columns.
struct ReLayout<'m> {
    model: &'m Model,
    index: &'m HashMap<(ParamKind, Option<usize>), u32>,
    n_vars: usize,
    n_data_cols: usize,
    products: Vec<(usize, usize)>,
    /// (block, position) of each random effect.
    block_of_re: Vec<(usize, usize)>,
    /// The integration dimension of each random effect (none for a
    /// constant).
    dim_of: Vec<Option<usize>>,
    /// Random effects of each block, in position order.
    members: Vec<Vec<usize>>,
    n_cov_states: usize,
    /// The random effects each one depends on (itself included).
    ancestors: Vec<Vec<usize>>,
    /// Extended index of M[a][b] in covariance state s: `(a, b, s)`.
    m_index: HashMap<(usize, usize, usize), u32>,
    vcol_ids: HashMap<VirtualCol, usize>,
    virtual_cols: Vec<VirtualCol>,
    derived: Vec<Derived>,
    derived_ids: HashMap<DerivedKey, u32>,
    implied: Vec<Implied>,
    n_ext: usize,
}

/// Where a normal block's local parameters are: `d` variables, the
/// covariate columns `covs`, the state's first local entry at `base`.
#[derive(Clone, Copy)]
struct BlockLayout<'c> {
    d: usize,
    covs: &'c [usize],
    base: usize,
}

/// Joins variables `a` and `b` into one block of correlated continuous
/// variables (merging their blocks; an emptied block is removed later).
fn join_blocks(block_of: &mut [Option<usize>], blocks: &mut Vec<Vec<usize>>, a: usize, b: usize) {
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

/// What the random effects acting on one term add to it in one state.
#[derive(Default)]
struct ReEffects {
    /// `(column, extended index)`: coefficients on data columns (the
    /// effective mean of a random slope, effective covariate effects, the
    /// products x·w) and on node columns; an existing column's slot is
    /// replaced, a new column appended.
    cols: Vec<(usize, u32)>,
    /// The effective mean of a random intercept or class logit intercept
    /// regressed on other random effects.
    mean: Option<u32>,
    /// The thresholds of a categorical variable whose random intercept is
    /// regressed on other random effects, shifted by its effective mean.
    thresholds: Vec<u32>,
}

impl ReLayout<'_> {
    fn get(&self, kind: ParamKind, class: Option<usize>) -> Result<u32, PlanError> {
        self.index
            .get(&(kind, class))
            .copied()
            .ok_or_else(|| PlanError::MissingParameter(self.model.param_name(&kind)))
    }

    /// The phi index of a parameter for a term whose states are the
    /// classes of `m`, in state `k` (a parameter held equal across the
    /// classes of another class variable is its first class's entry).
    fn resolve(&self, kind: ParamKind, m: Option<usize>, k: usize) -> Result<u32, PlanError> {
        match self.model.param_class_var(&kind) {
            None => self.get(kind, None),
            Some(c) if Some(c) == m => self.get(kind, Some(k)),
            Some(_) if self.model.held_equal_across_classes(&kind) => self.get(kind, Some(0)),
            Some(c) => Err(PlanError::Unsupported(format!(
                "{} varies across the classes of {}, which a term it enters does not",
                self.model.param_name(&kind),
                self.model.class_vars[c].name
            ))),
        }
    }

    /// The node columns and M entries through which random effect `a`
    /// (multiplied by data column `mult`) acts in covariance state `s`:
    /// one per random effect of its block up to its own position, less the
    /// constants (their columns of M are zero).
    fn z_cols(&mut self, a: usize, mult: Option<usize>, s: usize) -> Vec<(usize, u32)> {
        let (bi, pos) = self.block_of_re[a];
        let mut out = Vec::with_capacity(pos + 1);
        for j in 0..=pos {
            let d = self.members[bi][j];
            let Some(dim) = self.dim_of[d] else {
                continue;
            };
            let vc = VirtualCol { dim, mult };
            let next = self.vcol_ids.len();
            let id = *self.vcol_ids.entry(vc).or_insert(next);
            if id == next {
                self.virtual_cols.push(vc);
            }
            out.push((self.n_data_cols + id, self.m_index[&(a, d, s)]));
        }
        out
    }

    /// A derived entry for random effect `a` in covariance state `s`.
    fn derived(&mut self, a: usize, s: usize, base: u32, sign: f64, x: Vec<(u32, u32)>) -> u32 {
        let (bi, pos) = self.block_of_re[a];
        let block = (bi * self.n_cov_states + s) as u32;
        let key = (block, pos as u32, base, sign.to_bits(), x.clone());
        if let Some(&e) = self.derived_ids.get(&key) {
            return e;
        }
        let e = self.n_ext as u32;
        self.n_ext += 1;
        self.derived.push(Derived {
            ext: e,
            block,
            row: pos as u32,
            base,
            sign,
            x,
        });
        self.derived_ids.insert(key, e);
        e
    }

    /// The column random effect `a` multiplies: its covariate for a random
    /// slope, none (the constant) otherwise.
    fn mult(&self, a: usize) -> Option<usize> {
        match self.model.random_effects()[a].kind {
            RandomKind::Slope { covariate, .. } => Some(covariate),
            _ => None,
        }
    }

    /// The data column of random effect `a`'s effect of covariate `w`.
    fn covariate_col(&self, a: usize, w: usize) -> Result<usize, PlanError> {
        match self.mult(a) {
            None => Ok(w),
            Some(x) => self
                .products
                .iter()
                .position(|&p| p == (x, w))
                .map(|i| self.n_vars + i)
                .ok_or_else(|| {
                    PlanError::Data(format!(
                        "no product column {} x {}",
                        self.model.variables[x].name, self.model.variables[w].name
                    ))
                }),
        }
    }

    /// What random effect `a` adds to a term whose states are the classes
    /// of `m`, in state `k` (covariance state `s`).
    fn effects(
        &mut self,
        a: usize,
        m: Option<usize>,
        k: usize,
        s: usize,
    ) -> Result<ReEffects, PlanError> {
        let model = self.model;
        let anc = self.ancestors[a].clone();
        let proper = anc.len() > 1;
        let pos = |me: &Self, b: usize| me.block_of_re[b].1 as u32;
        let mut out = ReEffects::default();
        if proper {
            let mut x = Vec::new();
            for &b in &anc {
                if let Some(kind) = model.random_mean(b) {
                    x.push((pos(self, b), self.resolve(kind, m, k)?));
                }
            }
            match model.random_effects()[a].kind {
                RandomKind::Intercept { var } => match model.n_categories(var) {
                    Some(ncat) => {
                        for t in 1..ncat {
                            let tau = self.resolve(ParamKind::Threshold { var, index: t }, m, k)?;
                            out.thresholds
                                .push(self.derived(a, s, tau, -1.0, x.clone()));
                        }
                    }
                    None => out.mean = Some(self.derived(a, s, NONE, 1.0, x)),
                },
                RandomKind::Slope { covariate, .. } => {
                    let e = self.derived(a, s, NONE, 1.0, x);
                    out.cols.push((covariate, e));
                }
                RandomKind::ClassIntercept { .. } => {
                    out.mean = Some(self.derived(a, s, NONE, 1.0, x));
                }
                // a factor acts on no term itself: its indicators'
                // intercepts, regressed on it, do; a within-level intercept
                // acts through the within-level rule
                RandomKind::Factor | RandomKind::WithinIntercept { .. } => {}
            }
        }
        for w in model.random_covariates(a) {
            let col = self.covariate_col(a, w)?;
            if proper {
                let mut x = Vec::new();
                for &b in &anc {
                    for (w2, kind) in model.random_covariate_effects(b) {
                        if w2 == w {
                            x.push((pos(self, b), self.resolve(kind, m, k)?));
                        }
                    }
                }
                let e = self.derived(a, s, NONE, 1.0, x);
                out.cols.push((col, e));
            } else if self.mult(a).is_some() {
                // a random slope's own regression on w: the coefficient of
                // the product x·w (intercepts' and class logits' own
                // regressions are ordinary slopes of their terms)
                let kind = ParamKind::RandomSlopeOn {
                    re: a,
                    covariate: w,
                };
                let e = self.resolve(kind, m, k)?;
                out.cols.push((col, e));
            }
        }
        let mult = self.mult(a);
        out.cols.extend(self.z_cols(a, mult, s));
        Ok(out)
    }
}

impl ReLayout<'_> {
    /// The phi index of `kind` for a term whose states are the classes of
    /// `m`, in state `k`; `None` when the model has no such parameter.
    fn lookup(
        &self,
        kind: ParamKind,
        m: Option<usize>,
        k: usize,
    ) -> Result<Option<u32>, PlanError> {
        if !self.model.parameters.iter().any(|p| p.kind == kind) {
            return Ok(None);
        }
        self.resolve(kind, m, k).map(Some)
    }

    /// A new implied entry summing `terms`.
    fn implied_entry(&mut self, terms: Vec<Vec<u32>>) -> u32 {
        let e = self.n_ext as u32;
        self.n_ext += 1;
        self.implied.push(Implied { ext: e, terms });
        e
    }

    /// Points the means and covariances of the closed-form indicators
    /// among a normal block's `vars` (state `k` of class variable `m`) at
    /// implied entries: ν + Λα and ΛΨΛ' + Θ.
    fn implied_block(
        &mut self,
        cf: &ClosedForm,
        vars: &[usize],
        (m, k): (Option<usize>, usize),
        lay: BlockLayout<'_>,
        phi_index: &mut [u32],
    ) -> Result<(), PlanError> {
        let q = lay.covs.len();
        let model = self.model;
        // within-level factors (two-level models) have mean 0 and no
        // covariates: they imply covariances only
        let within = model.two_level.is_some();
        // the loadings of each variable: (factor, phi index)
        let mut loadings: Vec<Vec<(usize, u32)>> = Vec::with_capacity(vars.len());
        for &u in vars {
            let mut l = Vec::new();
            let re = if within {
                model.within_intercept_of(u)
            } else {
                model.intercept_of(u)
            };
            if let (Some(g), Some(re)) = (cf.group_of(u), re) {
                for &f in &cf.groups[g].1 {
                    if let Some(p) = self.lookup(model.regression_kind(re, f), m, k)? {
                        l.push((f, p));
                    }
                }
            }
            loadings.push(l);
        }
        let psi = |me: &Self, f: usize, h: usize| -> Result<Option<u32>, PlanError> {
            let kind = if f == h {
                ParamKind::RandomVariance { re: f }
            } else {
                ParamKind::RandomCovariance {
                    a: f.min(h),
                    b: f.max(h),
                }
            };
            me.lookup(kind, m, k)
        };
        for i in 0..lay.d {
            if loadings[i].is_empty() || within {
                continue;
            }
            let nu = phi_index[lay.base + i];
            let mut terms: Vec<Vec<u32>> = product(&[nu]).into_iter().collect();
            for &(f, l) in &loadings[i] {
                if let Some(alpha) = self.lookup(ParamKind::FactorMean { re: f }, m, k)? {
                    terms.extend(product(&[l, alpha]));
                }
            }
            phi_index[lay.base + i] = self.implied_entry(terms);
            // covariate effects: the variable's own slope plus Σ λ γ
            for (c, &w) in lay.covs.iter().enumerate() {
                let pos = lay.base + lay.d + i * q + c;
                let mut terms: Vec<Vec<u32>> = product(&[phi_index[pos]]).into_iter().collect();
                for &(f, l) in &loadings[i] {
                    let kind = ParamKind::FactorOn {
                        re: f,
                        covariate: w,
                    };
                    if let Some(g) = self.lookup(kind, m, k)? {
                        terms.extend(product(&[l, g]));
                    }
                }
                if terms.len() > 1 || (terms.len() == 1 && phi_index[pos] == NONE) {
                    phi_index[pos] = self.implied_entry(terms);
                }
            }
        }
        for i in 0..lay.d {
            for j in 0..=i {
                if loadings[i].is_empty() || loadings[j].is_empty() {
                    continue;
                }
                let pos = lay.base + lay.d + lay.d * q + i * (i + 1) / 2 + j;
                let mut terms: Vec<Vec<u32>> = product(&[phi_index[pos]]).into_iter().collect();
                for &(f, lf) in &loadings[i] {
                    for &(h, lh) in &loadings[j] {
                        if let Some(p) = psi(self, f, h)? {
                            terms.extend(product(&[lf, p, lh]));
                        }
                    }
                }
                phi_index[pos] = self.implied_entry(terms);
            }
        }
        Ok(())
    }
}

impl Plan {
    /// Number of combinations of the between-level class variables' classes
    /// (1 without any).
    pub fn n_between(&self) -> usize {
        (0..self.class_sizes.len())
            .filter(|&m| self.between_cv[m])
            .map(|m| self.class_sizes[m])
            .product()
    }

    /// Class of class variable `m` in combination `combo`.
    pub fn class_of(&self, combo: usize, m: usize) -> usize {
        class_in_combo(&self.class_sizes, combo, m)
    }

    /// Compiles a model for its data (laid out with the model's product
    /// columns, [`EngineData::with_products`]).
    pub fn compile(model: &Model, data: &EngineData) -> Result<Plan, PlanError> {
        if let Some(issue) = model.random_structure_issues().into_iter().next() {
            return Err(PlanError::Unsupported(issue.message));
        }
        let class_sizes: Vec<usize> = model.class_vars.iter().map(|c| c.classes).collect();
        let n_combos: usize = class_sizes.iter().product();
        let n_phi = model.parameters.len();
        let n_vars = model.variables.len();
        let products = model.product_columns();
        if data.columns.len() != n_vars + products.len() {
            return Err(PlanError::Data(format!(
                "the engine data have {} columns, the model needs {} (variables and products)",
                data.columns.len(),
                n_vars + products.len()
            )));
        }
        // factors with continuous indicators only are integrated in closed
        // form: they and their indicators' intercepts get no block
        let closed_form = ClosedForm::of(model);
        let mut plan = Plan {
            n_phi,
            n_ext: n_phi,
            class_sizes,
            // with factors in a single-level model every row is a cluster
            // with its own factor values, so its classes are cluster-level:
            // each class combination then has its own adaptive grid
            between_cv: model
                .class_vars
                .iter()
                .map(|c| {
                    c.between
                        || (model.two_level.is_none() && !closed_form.closed.iter().all(|&x| x))
                })
                .collect(),
            n_combos,
            terms: Vec::new(),
            dims: 0,
            n_data_cols: data.columns.len(),
            virtual_cols: Vec::new(),
            chol: Vec::new(),
            derived: Vec::new(),
            implied: Vec::new(),
            constants: Vec::new(),
            shifted: Vec::new(),
            within_cv: None,
            psi_shared: model.cov_class_is_within(),
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

        let random = model.random_effects();
        let cov_cv = model.latent.cov_class_var;
        let constant = constant_random_effects(model);
        let mut res = random_layout(model, &index, &mut plan, &closed_form.closed, products)?;
        // the random effects acting on a dependent variable
        let re_of_var = |v: usize| -> Vec<usize> {
            random
                .iter()
                .enumerate()
                .filter_map(|(a, r)| match r.kind {
                    RandomKind::Intercept { var } | RandomKind::Slope { var, .. }
                        if var == v && !closed_form.closed[a] =>
                    {
                        Some(a)
                    }
                    _ => None,
                })
                .collect()
        };

        // blocks of continuous variables joined by residual covariances
        let nv = model.variables.len();
        let mut block_of: Vec<Option<usize>> = vec![None; nv];
        let mut blocks: Vec<Vec<usize>> = Vec::new();
        // the indicators of a closed-form factor set are one block
        let group_pairs: Vec<(usize, usize)> = closed_form
            .groups
            .iter()
            .flat_map(|(vars, _)| vars.windows(2).map(|w| (w[0], w[1])))
            .collect();
        for &(a, b) in model.covariances.iter().chain(&group_pairs) {
            join_blocks(&mut block_of, &mut blocks, a, b);
        }
        for (vars, _) in &closed_form.groups {
            if let [v] = vars[..]
                && block_of[v].is_none()
            {
                block_of[v] = Some(blocks.len());
                blocks.push(vec![v]);
            }
        }
        blocks.retain(|b| !b.is_empty());
        for (bi, b) in blocks.iter().enumerate() {
            for &v in b {
                block_of[v] = Some(bi);
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
            // what the random effects of variable u add in state s
            let effects =
                |res: &mut ReLayout, u: usize, s: usize| -> Result<ReEffects, PlanError> {
                    let mut all = ReEffects::default();
                    for a in re_of_var(u) {
                        let e = res.effects(a, m, s, cov_state(s))?;
                        all.cols.extend(e.cols);
                        all.mean = all.mean.or(e.mean);
                        all.thresholds.extend(e.thresholds);
                    }
                    Ok(all)
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
                // random effects' columns
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
                let mut per_state: Vec<Vec<ReEffects>> = Vec::with_capacity(n_states);
                for s in 0..n_states {
                    let mut row = Vec::with_capacity(d);
                    for &u in vars {
                        row.push(effects(&mut res, u, s)?);
                    }
                    per_state.push(row);
                }
                for e in &per_state[0] {
                    for &(c, _) in &e.cols {
                        if !covs.contains(&c) {
                            covs.push(c);
                        }
                    }
                }
                // the covariates of closed-form factors (`f ON x`) act on
                // their indicators
                for &u in vars {
                    if let Some(g) = closed_form.group_of(u) {
                        for &f in &closed_form.groups[g].1 {
                            for (w, _) in model.random_covariate_effects(f) {
                                if !covs.contains(&w) {
                                    covs.push(w);
                                }
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
                        let e = &per_state[s][i];
                        if let Some(mean) = e.mean {
                            phi_index[base + i] = mean;
                        }
                        for &(col, x) in &e.cols {
                            if let Some(c) = covs.iter().position(|&y| y == col) {
                                phi_index[base + d + i * q + c] = x;
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
                if vars.iter().any(|&u| closed_form.group_of(u).is_some()) {
                    for s in 0..n_states {
                        let base = s * n_local;
                        let lay = BlockLayout {
                            d,
                            covs: &covs,
                            base,
                        };
                        res.implied_block(&closed_form, vars, (m, s), lay, &mut phi_index)?;
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
                let uses_nodes = covs.iter().any(|&c| c >= res.n_data_cols);
                plan.terms.push(Term::per_state(
                    TermKind::NormalBlock {
                        cols: vars.clone(),
                        covs: covs.clone(),
                        patterns,
                        row_pattern,
                    },
                    state_of_combo,
                    (n_states, n_local),
                    phi_index,
                    cluster_level,
                    uses_nodes,
                ));
                continue;
            }
            let per_state: Vec<ReEffects> = (0..n_states)
                .map(|s| effects(&mut res, v, s))
                .collect::<Result<_, _>>()?;
            let mut covs_all = dep.covariates.clone();
            for &(c, _) in &per_state[0].cols {
                if !covs_all.contains(&c) {
                    covs_all.push(c);
                }
            }
            let q = covs_all.len();
            let uses_nodes = covs_all.iter().any(|&c| c >= res.n_data_cols);
            match &dep.scale {
                Scale::Categorical { categories } if dep.nominal => {
                    if uses_nodes || per_state.iter().any(|e| !e.cols.is_empty()) {
                        return Err(PlanError::Unsupported(format!(
                            "random effects on the nominal variable {}",
                            model.variables[v].name
                        )));
                    }
                    let (ncat, covs) = (categories.len(), dep.covariates.clone());
                    let (n_local, phi_index) =
                        nominal_layout(&get, v, ncat, &covs, m.map(|m| (m, n_states)))?;
                    plan.terms.push(Term::per_state(
                        TermKind::Nominal { col: v, ncat, covs },
                        state_of_combo,
                        (n_states, n_local),
                        phi_index,
                        cluster_level,
                        false,
                    ));
                }
                Scale::Categorical { categories } => {
                    let ncat = categories.len();
                    if dep.guessing && ncat != 2 {
                        return Err(PlanError::Unsupported(format!(
                            "{} has {ncat} categories: the 3PL is for binary items",
                            model.variables[v].name
                        )));
                    }
                    // [tau_1 .. tau_{C-1}, beta_1 .. beta_q], then gamma
                    // (the guessing logit) for a 3PL item
                    let n_local = ncat - 1 + q + usize::from(dep.guessing);
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
                        let e = &per_state[s];
                        for (t, &tau) in e.thresholds.iter().enumerate() {
                            phi_index[s * n_local + t] = tau;
                        }
                        for &(col, x) in &e.cols {
                            if let Some(c) = covs_all.iter().position(|&y| y == col) {
                                phi_index[s * n_local + ncat - 1 + c] = x;
                            }
                        }
                        if dep.guessing {
                            phi_index[(s + 1) * n_local - 1] =
                                get(ParamKind::Guessing { var: v }, class(s))?;
                        }
                    }
                    let kind = if dep.guessing {
                        TermKind::Guessing {
                            col: v,
                            link,
                            covs: covs_all,
                        }
                    } else {
                        TermKind::Categorical {
                            col: v,
                            ncat,
                            link,
                            covs: covs_all,
                        }
                    };
                    plan.terms.push(Term::per_state(
                        kind,
                        state_of_combo,
                        (n_states, n_local),
                        phi_index,
                        cluster_level,
                        uses_nodes,
                    ));
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
                        let e = &per_state[s];
                        if let Some(mean) = e.mean {
                            phi_index[s * n_local] = mean;
                        }
                        for &(col, x) in &e.cols {
                            if let Some(c) = covs_all.iter().position(|&y| y == col) {
                                phi_index[s * n_local + 1 + c] = x;
                            }
                        }
                        phi_index[s * n_local + q + 1] =
                            get(ParamKind::Variance { var: v }, class(s))?;
                    }
                    plan.terms.push(Term::per_state(
                        TermKind::Normal {
                            col: v,
                            covs: covs_all,
                        },
                        state_of_combo,
                        (n_states, n_local),
                        phi_index,
                        cluster_level,
                        uses_nodes,
                    ));
                }
            }
        }

        // class-membership logits
        for cv in 0..model.class_vars.len() {
            if let Some(term) = class_logit_term(&mut res, &plan, cv)? {
                plan.terms.push(term);
            }
        }
        plan.virtual_cols = res.virtual_cols;
        plan.derived = res.derived;
        plan.implied = res.implied;
        plan.n_ext = res.n_ext;
        if model.has_within_latents() {
            if cov_cv.is_some() {
                return Err(PlanError::Unsupported(
                    "within-level factors in a model whose random-effect variances vary across classes"
                        .into(),
                ));
            }
            let (rule, loads) =
                within_loadings(model, &res.m_index, &constant, &closed_form.closed);
            if !loads.is_empty() {
                crate::within::expand(&mut plan, &rule, &loads)?;
            }
        }
        for t in 0..plan.terms.len() {
            plan.terms[t].info_pairs = info_pairs(&plan, t, data);
        }
        Ok(plan)
    }
}

/// The local layout of a nominal term for variable `v` with `ncat`
/// categories and covariates `covs`, in each class of `m`: `(n_local,
/// phi_index)`, per category `[a_k, b_k (q)]`, the last category [`NONE`].
fn nominal_layout(
    get: &dyn Fn(ParamKind, Option<usize>) -> Result<u32, PlanError>,
    v: usize,
    ncat: usize,
    covs: &[usize],
    m: Option<(usize, usize)>,
) -> Result<(usize, Vec<u32>), PlanError> {
    let per = 1 + covs.len();
    let n_local = ncat * per;
    let n_states = m.map_or(1, |(_, n)| n);
    let mut phi_index = vec![NONE; n_states * n_local];
    for s in 0..n_states {
        let class = m.map(|_| s);
        for k in 0..ncat - 1 {
            let base = s * n_local + k * per;
            let category = k + 1;
            phi_index[base] = get(ParamKind::NominalIntercept { var: v, category }, class)?;
            for (j, &x) in covs.iter().enumerate() {
                let kind = ParamKind::NominalSlope {
                    var: v,
                    category,
                    covariate: x,
                };
                phi_index[base + 1 + j] = get(kind, class)?;
            }
        }
    }
    Ok((n_local, phi_index))
}

/// [`Term::info_pairs`] of term `t` (a binary item) on `data`: the pairs of its covariates
/// (a node column taking its multiplier's zeros, or none) whose non-zero
/// rows meet, as bit sets over the rows; empty when every pair does.
pub(crate) fn info_pairs(plan: &Plan, t: usize, data: &EngineData) -> Vec<(u32, u32)> {
    let TermKind::Categorical { ncat: 2, covs, .. } = &plan.terms[t].kind else {
        return Vec::new();
    };
    if covs.len() < 2 {
        return Vec::new();
    }
    let n = data.n_rows();
    let words = n.div_ceil(64);
    let support = |c: usize| -> Option<Vec<u64>> {
        let col = match c.checked_sub(plan.n_data_cols) {
            None => c,
            Some(v) => plan.virtual_cols[v].mult?,
        };
        let mut bits = vec![0u64; words];
        for (i, &x) in data.columns[col].iter().enumerate() {
            if x != 0.0 {
                bits[i / 64] |= 1 << (i % 64);
            }
        }
        Some(bits)
    };
    let sup: Vec<Option<Vec<u64>>> = covs.iter().map(|&c| support(c)).collect();
    let meet = |a: usize, b: usize| match (&sup[a], &sup[b]) {
        (Some(x), Some(y)) => x.iter().zip(y).any(|(p, q)| p & q != 0),
        _ => true,
    };
    let nl = 1 + covs.len();
    let mut pairs = Vec::new();
    for a in 0..nl {
        for b in 0..=a {
            if a == 0 || b == 0 || meet(a - 1, b - 1) {
                pairs.push((a as u32, b as u32));
            }
        }
    }
    if pairs.len() == nl * (nl + 1) / 2 {
        Vec::new()
    } else {
        pairs
    }
}

/// The random effects' layout: blocks joined by covariances and
/// regressions (one per between-level class when Psi and B are
/// class-specific), each block's random effects after those they are
/// regressed on; the integration dimensions (`plan.dims`), the Cholesky
/// blocks (`plan.chol`) and their extended entries. `closed`: the latent
/// variables integrated in closed form (no block, no dimension).
fn random_layout<'m>(
    model: &'m Model,
    index: &'m HashMap<(ParamKind, Option<usize>), u32>,
    plan: &mut Plan,
    closed: &[bool],
    products: Vec<(usize, usize)>,
) -> Result<ReLayout<'m>, PlanError> {
    let n_vars = model.variables.len();
    let get = |kind: ParamKind, class: Option<usize>| -> Result<u32, PlanError> {
        index
            .get(&(kind, class))
            .copied()
            .ok_or_else(|| PlanError::MissingParameter(model.param_name(&kind)))
    };
    // random effects: blocks joined by covariances and regressions, one
    // per between-level class when Psi and B are class-specific; each
    // block's random effects after those they are regressed on
    let random = model.random_effects();
    let cov_cv = model.latent.cov_class_var;
    let n_cov_states = cov_cv.map_or(1, |m| plan.class_sizes[m]);
    let nre = random.len();
    let regressions = model.random_regressions();
    let order: Vec<usize> = model
        .random_order()
        .ok_or_else(|| {
            PlanError::Unsupported("the regressions among random effects form a cycle".into())
        })?
        .into_iter()
        .filter(|&a| !closed[a])
        .collect();
    let mut comp: Vec<usize> = (0..nre).collect();
    fn root(comp: &mut [usize], mut a: usize) -> usize {
        while comp[a] != a {
            comp[a] = comp[comp[a]];
            a = comp[a];
        }
        a
    }
    // a constant's covariances are zero: they join nothing
    let constant = constant_random_effects(model);
    let joined = model
        .parameters
        .iter()
        .filter_map(|p| match p.kind {
            ParamKind::RandomCovariance { a, b } if !constant[a] && !constant[b] => Some((a, b)),
            _ => None,
        })
        .chain(regressions.iter().copied());
    for (a, b) in joined {
        let (ra, rb) = (root(&mut comp, a), root(&mut comp, b));
        comp[ra.max(rb)] = ra.min(rb);
    }
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut block_of_re = vec![(0usize, 0usize); nre];
    let mut block_ids: HashMap<usize, usize> = HashMap::new();
    for &a in &order {
        let r = root(&mut comp, a);
        let bi = *block_ids.entry(r).or_insert_with(|| {
            members.push(Vec::new());
            members.len() - 1
        });
        block_of_re[a] = (bi, members[bi].len());
        members[bi].push(a);
    }
    let cov_class = |s: usize| cov_cv.map(|_| s);
    let mut m_index: HashMap<(usize, usize, usize), u32> = HashMap::new();
    let mut dim_of = vec![None; nre];
    // within-level latent variables are integrated per row
    // ([`crate::within`]): no dimension of the cluster's grid
    for a in (0..nre).filter(|&a| !constant[a] && !closed[a] && !random[a].within) {
        dim_of[a] = Some(plan.dims);
        plan.dims += 1;
    }
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
                }
            }
            let mut beta = Vec::new();
            for &(re, on) in &regressions {
                if let (Some(r), Some(c)) = (
                    dims.iter().position(|&d| d == re),
                    dims.iter().position(|&d| d == on),
                ) {
                    let p = get(model.regression_kind(re, on), cov_class(s))?;
                    beta.push((r as u32, c as u32, p));
                }
            }
            let mm = if beta.is_empty() {
                l.clone()
            } else {
                (0..l.len())
                    .map(|_| {
                        plan.n_ext += 1;
                        (plan.n_ext - 1) as u32
                    })
                    .collect()
            };
            for i in 0..m {
                for j in 0..=i {
                    m_index.insert((dims[i], dims[j], s), mm[i * (i + 1) / 2 + j]);
                }
            }
            plan.chol.push(CholBlock {
                dims: dims.iter().map(|&a| dim_of[a].unwrap_or(NO_DIM)).collect(),
                psi,
                l,
                beta,
                m: mm,
            });
        }
    }
    Ok(ReLayout {
        model,
        index,
        n_vars,
        n_data_cols: plan.n_data_cols,
        products,
        block_of_re,
        dim_of,
        members,
        n_cov_states,
        ancestors: (0..nre).map(|a| model.random_ancestors(a)).collect(),
        m_index,
        vcol_ids: HashMap::new(),
        virtual_cols: Vec::new(),
        derived: Vec::new(),
        derived_ids: HashMap::new(),
        implied: Vec::new(),
        n_ext: plan.n_ext,
    })
}

/// The multinomial logit term of class variable `cv` (eq 4, 8, 9), with
/// its random logit intercepts' node columns and effective means; `None`
/// for a class variable of one class.
fn class_logit_term(res: &mut ReLayout, plan: &Plan, cv: usize) -> Result<Option<Term>, PlanError> {
    let model = res.model;
    let random = model.random_effects();
    let cov_cv = model.latent.cov_class_var;
    let n_combos = plan.n_combos;
    let c = &model.class_vars[cv];
    let k_n = c.classes;
    if k_n < 2 {
        return Ok(None);
    }
    let parents = &c.parents;
    // random logit intercepts of its classes: node columns, and
    // effective means and covariate effects of those regressed on
    // other random effects
    let re_classes: Vec<(usize, usize)> = random
        .iter()
        .enumerate()
        .filter_map(|(a, r)| match r.kind {
            RandomKind::ClassIntercept { cv: rcv, class } if rcv == cv => Some((a, class)),
            _ => None,
        })
        .collect();
    // (loadings varying over a within-level class variable leave the
    // random logits' rows of M one for all covariance states)
    if !re_classes.is_empty() && cov_cv.is_some() && !model.cov_class_is_within() {
        return Err(PlanError::Unsupported(format!(
            "random logit intercepts of {} with class-specific random-effect variances",
            c.name
        )));
    }
    let mut covs_all = c.covariates.clone();
    let mut class_effects: Vec<(usize, ReEffects)> = Vec::new();
    for &(a, class) in &re_classes {
        let e = res.effects(a, None, 0, 0)?;
        for &(col, _) in &e.cols {
            if !covs_all.contains(&col) {
                covs_all.push(col);
            }
        }
        class_effects.push((class, e));
    }
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
            phi_index[base] = res.get(ParamKind::ClassIntercept { cv, class: k }, None)?;
            for (i, &x) in c.covariates.iter().enumerate() {
                phi_index[base + 1 + i] = res.get(
                    ParamKind::ClassSlope {
                        cv,
                        class: k,
                        covariate: x,
                    },
                    None,
                )?;
            }
            for (class, e) in &class_effects {
                if *class != k {
                    continue;
                }
                if let Some(mean) = e.mean {
                    phi_index[base] = mean;
                }
                for &(col, x) in &e.cols {
                    if let Some(i) = covs_all.iter().position(|&y| y == col) {
                        phi_index[base + 1 + i] = x;
                    }
                }
            }
            for (i, &p) in parents.iter().enumerate() {
                if pcls[i] + 1 < parent_sizes[i] {
                    phi_index[base + 1 + q + i] = res.get(
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
    let uses_nodes = covs_all.iter().any(|&col| col >= res.n_data_cols);
    Ok(Some(Term {
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
        uses_nodes,
        info_pairs: Vec::new(),
    }))
}

/// The within-level rule of a model with within-level factors integrated
/// numerically, and the M entries through which those factors act on each
/// variable they measure (`m_index`: extended index of M[a][b], covariance
/// state 0; `constant` and `closed`: the random effects that are constants
/// or in closed form). No variables when every within-level factor is in
/// closed form.
fn within_loadings(
    model: &Model,
    m_index: &HashMap<(usize, usize, usize), u32>,
    constant: &[bool],
    closed: &[bool],
) -> (WithinRule, Vec<WithinLoadings>) {
    let random = model.random_effects();
    let factors: Vec<usize> = (0..random.len())
        .filter(|&a| {
            random[a].within && random[a].kind == RandomKind::Factor && !constant[a] && !closed[a]
        })
        .collect();
    let integ = model.latent.integration;
    let rule = WithinRule::new(integ.method, integ.points, factors.len());
    let loads = random
        .iter()
        .enumerate()
        .filter_map(|(a, r)| match r.kind {
            RandomKind::WithinIntercept { var } if !closed[a] => Some(WithinLoadings {
                var,
                m: factors
                    .iter()
                    .enumerate()
                    .filter_map(|(d, &f)| m_index.get(&(a, f, 0)).map(|&m| (m, d)))
                    .collect(),
            }),
            _ => None,
        })
        .collect();
    (rule, loads)
}

/// Class of class variable `m` in combination `combo` of class variables
/// of `class_sizes` classes (mixed radix, the last varying fastest).
pub fn class_in_combo(class_sizes: &[usize], combo: usize, m: usize) -> usize {
    let stride: usize = class_sizes[m + 1..].iter().product();
    (combo / stride) % class_sizes[m]
}

/// Which random effects are constants: a variance (the residual variance of
/// one regressed on others) fixed at zero in every class, and every
/// covariance with it fixed at zero too. Such a random effect is its mean
/// (plus its regressions), so it adds no integration dimension: its column
/// of L, and so of M = (I - B)^-1 L, is zero, and the plan gives it no node
/// column. A variance fixed at zero with a free covariance keeps its
/// dimension (Psi is then not a covariance matrix unless the covariance
/// is zero, which `eval::prepare` checks).
pub fn constant_random_effects(model: &Model) -> Vec<bool> {
    let n = model.random_effects().len();
    let mut has_variance = vec![false; n];
    let mut constant = vec![true; n];
    let zero = |p: &mlmix_spec::Parameter| matches!(p.value, ParamValue::Fixed(v) if v == 0.0);
    for p in &model.parameters {
        match p.kind {
            ParamKind::RandomVariance { re } if re < n => {
                has_variance[re] = true;
                constant[re] &= zero(p);
            }
            ParamKind::RandomCovariance { a, b } if a < n && b < n && !zero(p) => {
                constant[a] = false;
                constant[b] = false;
            }
            _ => {}
        }
    }
    constant
        .iter()
        .zip(&has_variance)
        .map(|(&c, &v)| c && v)
        .collect()
}
