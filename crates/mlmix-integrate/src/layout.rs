//! The layout of the cluster-likelihood loop: what a backend computes once
//! from the plan, the data and the grid (buffer slots, chunks of clusters,
//! which terms read the nodes, the step dimensions). It does not depend on
//! the backend: the CPU backend and a GPU backend lay their buffers out the
//! same way.
//!
//! Layout: a chunk's buffers are slot-major: one slot per state of every
//! term (term `t`'s states start at slot `offset[t]`), each slot holding the
//! chunk's rows contiguously. A class combination `k` reads the slots
//! `slot_of_combo[k]` (one per term), so its log-density is a sum of whole
//! slot rows, and the log-sum-exp and posterior weights are loops over rows
//! that vectorise.

use std::ops::Range;

use mlmix_kernels::eval::Slots;
use mlmix_kernels::{EngineData, Plan};

use crate::moments::{self, LinearTerm};
use crate::poly::Triangles;
use crate::{BackendError, Grid, StepDim};

/// Rows per chunk (a chunk holds whole clusters; a larger cluster is a
/// chunk of its own).
pub(crate) const CHUNK: usize = 256;

/// Rows per chunk where the moment form applies ([`MomentForm`]): its
/// work per row is a few coefficients and per cluster the polynomials,
/// not a pass over the nodes, so a chunk's fixed costs (its rows' data,
/// buffers and the fixed terms' values) weigh more than in the loops
/// over the nodes, and larger chunks spread them.
pub(crate) const MOMENT_CHUNK: usize = 2048;

/// The buffer layout, chunks and term groups of a plan on its data and
/// grid.
pub(crate) struct Layout {
    /// Where each term's states start in a row buffer.
    pub offsets: Vec<usize>,
    /// Total states of all terms (slots per chunk buffer).
    pub stride: usize,
    /// Rows per buffer slot (the largest chunk).
    pub width: usize,
    /// For each combination, the slot of each term: `[k * n_terms + t]`.
    pub slot_of_combo: Vec<u32>,
    /// Chunks: `(r0, r1, j0, j1)`, rows and clusters.
    pub chunks: Vec<(usize, usize, usize, usize)>,
    /// The combinations of each between-level class combination.
    pub combos_of_between: Vec<Vec<usize>>,
    /// Per between-level class combination and term: the range of the
    /// term's states its combinations use (`[b][t]`), all that a pass of
    /// `b` evaluates (see [`mlmix_kernels::eval::term_values_of`]); every
    /// state of a step dimension's class logit, which the junctions read.
    pub states_of_between: Vec<Vec<Range<usize>>>,
    /// Terms that read the node columns, and the others.
    pub node_terms: Vec<usize>,
    /// Per term: the integration dimensions it reads.
    pub term_dims: Vec<Vec<usize>>,
    pub fixed_terms: Vec<usize>,
    /// Node terms linear in the nodes, accumulated from per-row node
    /// moments (see [`crate::moments`]), and the slots their moments take;
    /// the other node terms are accumulated at their nodes.
    pub linear: Vec<LinearTerm>,
    pub mom_slots: usize,
    /// The grid's step dimensions (see [`Grid::with_steps`]).
    pub steps: Vec<StepDim>,
    /// Per term: its values are the same on every row of a cluster (a
    /// within-level class logit of clustered data whose covariates, node
    /// columns included, are constant within clusters, as in a GoM), so
    /// the backend evaluates and accumulates it once per cluster, on a
    /// copy of the clusters' first rows, with the weights of the cluster's
    /// rows summed (accumulation is linear in the weights).
    pub row_invariant: Vec<bool>,
    /// Per node column: a row-invariant term reads it, so the copy of the
    /// clusters' first rows needs it (not a long item's slope on the
    /// factor, whose multiplier varies within clusters).
    pub first_row_cols: Vec<bool>,
    /// Per node column: a term evaluated on the rows reads it (one that is
    /// not row-invariant), or the step rule's junctions may, so the passes
    /// write it on the chunk's rows. A column that only row-invariant terms
    /// read (a GoM's random class logits) is written on the clusters' first
    /// rows alone (`first_row_cols`).
    pub row_cols: Vec<bool>,
    /// The row likelihoods are formed in probability space (see
    /// [`product_form`]).
    pub product_form: bool,
    /// The runs of passes the blocked product form takes at once (see
    /// [`Blocks`]), where it applies.
    pub blocks: Option<Blocks>,
    /// The moment form of the blocks, where it applies and pays (see
    /// [`MomentForm`]).
    pub moments: Option<MomentForm>,
    /// The grid's nodes.
    n_nodes: usize,
}

/// The blocked product form: in a product-form plan
/// ([`Layout::product_form`]) the dimensions that only row-invariant terms
/// read ([`Layout::row_invariant`]: the GoM's random class logits) are
/// *inner*, the others *outer* (the FMA-GoM's factor, which the items
/// read). The grid's passes fall into runs over which the outer
/// dimensions' nodes hold, so the outer terms' values hold too; within a
/// run, a cluster's likelihood given each pass is the product over its
/// rows of Σ_k a_rk v_k(pass), a_rk the product of the outer terms'
/// probabilities (per row, fixed over the run) and v_k the inner terms'
/// (per pass, the same on every row). The backend evaluates the inner
/// terms on a block of passes at once, one cluster's first row repeated
/// with the passes' nodes, and runs its loops over the passes.
pub(crate) struct Blocks {
    /// The grid's nodes in runs `q0..q1` with the same outer nodes.
    pub runs: Vec<(usize, usize)>,
    /// The row-invariant node terms that read the inner dimensions.
    pub inner_terms: Vec<usize>,
    /// The other terms.
    pub outer_terms: Vec<usize>,
    /// The outer dimensions.
    pub outer_dims: Vec<usize>,
    /// The node columns the inner terms read (indices into
    /// `Plan::virtual_cols`), and the data columns they and those node
    /// columns' multipliers read.
    pub inner_cols: Vec<usize>,
    pub inner_data_cols: Vec<usize>,
}

/// The moment form of the blocked product form (`cpu/moment.rs`): where
/// the inner terms read no data (the class logits of a GoM without
/// person-level covariates), their probabilities v_k(p) at the inner nodes
/// are the same for every cluster, and a cluster's likelihood given a run
/// of passes, Σ_p w_p Π_r Σ_k a_rk v_k(p), is Σ_a e_a M_a: the
/// coefficients e_a of the polynomial Π_r Σ_k a_rk x_k times the moments
/// M_a = Σ_p w_p Π_k v_k(p)^{a_k}, which every cluster shares. Its cost per
/// cluster and run does not grow with the inner nodes. It holds on the
/// plain grid and on grids adapted in the outer dimensions only (the
/// backend adapts no inner dimension while it applies).
pub(crate) struct MomentForm {
    /// The polynomials' structure: one variable per class combination.
    pub poly: Triangles,
    /// The numbers of rows of the clusters, ascending: the degrees of
    /// their polynomials.
    pub degrees: Vec<usize>,
    /// Per degree n: the most a row's coefficients may sum to, relative
    /// to its last, for the row to be scaled to its last coefficient 1
    /// (10^(UNIT_DECADES / n): the products' entries then stay below
    /// 1e±UNIT_DECADES; `CpuBackend::row_coefs`).
    pub unit_limits: Vec<f64>,
    /// Per degree, its monomials: their entries and exponents (`k` each).
    pub entries: Vec<Vec<usize>>,
    pub exponents: Vec<Vec<u16>>,
    /// Passes per run; every run has the first run's inner nodes (the
    /// grid's passes `0..n_inner`).
    pub n_inner: usize,
    /// The inner dimensions.
    pub inner_dims: Vec<usize>,
    /// Per inner node: its log weight less the first's.
    pub rel_log_w: Vec<f64>,
}

/// The decades a cluster's product of linear forms may span when its
/// rows are scaled to their last coefficient 1 (the unit stencils, one
/// multiply less per monomial): a row whose coefficients sum to more than
/// 10^(UNIT_DECADES / n) times its last is scaled to sum 1 instead, so
/// that the products' entries, at most the product of the rows' sums,
/// stay far inside the normal numbers ([`MomentForm::unit_limits`]).
const UNIT_DECADES: f64 = 100.0;

/// Most entries of a dense polynomial of the moment form.
const MOMENT_POLY_SIZE: usize = 1 << 20;

impl MomentForm {
    /// The moment form of `blocks`, where it applies and costs less than
    /// the blocked loop: its work per cluster and run is about
    /// 4 K C(n + K, K) (two products of n linear forms and a reverse
    /// pass over monomials of degree up to n), the blocked loop's
    /// n K n_inner.
    fn of(plan: &Plan, data: &EngineData, grid: &Grid, blocks: &Blocks) -> Option<MomentForm> {
        let k = plan.n_combos;
        let between = (0..plan.class_sizes.len()).any(|m| plan.between_cv[m]);
        if between || k < 2 || !blocks.inner_data_cols.is_empty() || grid.step.iter().any(|&s| s) {
            return None;
        }
        let &(first0, first1) = blocks.runs.first()?;
        let n_inner = first1 - first0;
        if first0 != 0 || blocks.runs.iter().any(|&(q0, q1)| q1 - q0 != n_inner) {
            return None;
        }
        let inner_dims: Vec<usize> = (0..plan.dims)
            .filter(|d| !blocks.outer_dims.contains(d))
            .collect();
        let lw = &grid.log_weights;
        let rel_log_w: Vec<f64> = (0..n_inner).map(|p| lw[p] - lw[0]).collect();
        for &(q0, _) in &blocks.runs {
            for p in 0..n_inner {
                let same_nodes = inner_dims
                    .iter()
                    .all(|&d| grid.node(q0 + p)[d] == grid.node(p)[d]);
                let same_weight = (lw[q0 + p] - lw[q0] - rel_log_w[p]).abs() <= 1e-9;
                if !same_nodes || !same_weight {
                    return None;
                }
            }
        }
        let mut degrees: Vec<usize> = data
            .cluster_starts
            .windows(2)
            .map(|w| w[1] - w[0])
            .collect();
        degrees.sort_unstable();
        degrees.dedup();
        let n_max = *degrees.last()?;
        let choose =
            |n: usize, r: usize| (0..r).fold(1.0, |c, i| c * (n - i) as f64 / (i + 1) as f64);
        let moment_work = 4.0 * k as f64 * choose(n_max + k, k);
        let blocked_work = (n_max * k * n_inner) as f64;
        if moment_work >= blocked_work || n_max > u16::MAX as usize {
            return None;
        }
        let poly = Triangles::new(k, n_max, MOMENT_POLY_SIZE)?;
        let (mut entries, mut exponents) = (Vec::new(), Vec::new());
        for &n in &degrees {
            let mono = poly.monomials(n);
            entries.push(mono.iter().map(|(i, _)| *i).collect());
            exponents.push(
                mono.iter()
                    .flat_map(|(_, e)| e.iter().map(|&x| x as u16))
                    .collect(),
            );
        }
        let unit_limits = degrees
            .iter()
            .map(|&n| 10f64.powf(UNIT_DECADES / n as f64))
            .collect();
        Some(MomentForm {
            poly,
            degrees,
            unit_limits,
            entries,
            exponents,
            n_inner,
            inner_dims,
            rel_log_w,
        })
    }
}

/// Shortest mean run for which [`Blocks`] pays.
const MIN_RUN: usize = 4;

impl Blocks {
    /// The blocks of a layout's terms on `grid`, where they apply.
    fn of(
        plan: &Plan,
        grid: &Grid,
        term_dims: &[Vec<usize>],
        row_invariant: &[bool],
    ) -> Option<Blocks> {
        let nt = plan.terms.len();
        let node_term = |t: usize| plan.terms[t].uses_nodes;
        let mut outer_dims: Vec<usize> = (0..nt)
            .filter(|&t| node_term(t) && !row_invariant[t])
            .flat_map(|t| term_dims[t].iter().copied())
            .collect();
        outer_dims.sort_unstable();
        outer_dims.dedup();
        if outer_dims.len() == plan.dims {
            return None;
        }
        let inner_terms: Vec<usize> = (0..nt)
            .filter(|&t| node_term(t) && term_dims[t].iter().any(|d| !outer_dims.contains(d)))
            .collect();
        let outer_terms = (0..nt).filter(|t| !inner_terms.contains(t)).collect();
        let nq = grid.n_nodes();
        let mut runs = Vec::new();
        let mut q0 = 0;
        for q in 1..=nq {
            if q == nq
                || outer_dims
                    .iter()
                    .any(|&d| grid.node(q)[d] != grid.node(q0)[d])
            {
                runs.push((q0, q));
                q0 = q;
            }
        }
        if nq < MIN_RUN * runs.len() {
            return None;
        }
        let mut inner_cols: Vec<usize> = inner_terms
            .iter()
            .flat_map(|&t| plan.terms[t].kind.covs().iter().copied())
            .filter_map(|c| c.checked_sub(plan.n_data_cols))
            .collect();
        inner_cols.sort_unstable();
        inner_cols.dedup();
        let mut inner_data_cols: Vec<usize> = inner_terms
            .iter()
            .flat_map(|&t| plan.terms[t].kind.covs().iter().copied())
            .filter(|&c| c < plan.n_data_cols)
            .chain(inner_cols.iter().filter_map(|&v| plan.virtual_cols[v].mult))
            .collect();
        inner_data_cols.sort_unstable();
        inner_data_cols.dedup();
        Some(Blocks {
            inner_cols,
            inner_data_cols,
            runs,
            inner_terms,
            outer_terms,
            outer_dims,
        })
    }
}

impl Layout {
    /// The layout of `plan` on `data`, integrating over `grid`; fails
    /// where the grid does not fit the plan.
    pub fn new(plan: &Plan, data: &EngineData, grid: &Grid) -> Result<Self, BackendError> {
        if grid.dims != plan.dims {
            return Err(BackendError::Unsupported(format!(
                "the grid has {} dimensions but the model has {} random effects",
                grid.dims, plan.dims
            )));
        }
        let mut offsets = Vec::with_capacity(plan.terms.len());
        let mut stride = 0;
        for t in &plan.terms {
            offsets.push(stride);
            stride += t.n_states;
        }
        let nt = plan.terms.len();
        let mut slot_of_combo = vec![0u32; plan.n_combos * nt];
        for k in 0..plan.n_combos {
            for (t, term) in plan.terms.iter().enumerate() {
                slot_of_combo[k * nt + t] = (offsets[t] + term.state_of_combo[k] as usize) as u32;
            }
        }
        // between-level class combinations
        let between: Vec<usize> = (0..plan.class_sizes.len())
            .filter(|&m| plan.between_cv[m])
            .collect();
        let mut combos_of_between = vec![Vec::new(); plan.n_between()];
        for k in 0..plan.n_combos {
            let mut b = 0;
            for &m in &between {
                b = b * plan.class_sizes[m] + plan.class_of(k, m);
            }
            combos_of_between[b].push(k);
        }
        let mut states_of_between: Vec<Vec<Range<usize>>> = combos_of_between
            .iter()
            .map(|ks| {
                (0..nt)
                    .map(|t| {
                        let state = |&k: &usize| plan.terms[t].state_of_combo[k] as usize;
                        let lo = ks.iter().map(state).min().unwrap_or(0);
                        let hi = ks.iter().map(state).max().map_or(0, |s| s + 1);
                        lo..hi
                    })
                    .collect()
            })
            .collect();
        let node_terms: Vec<usize> = (0..nt).filter(|&t| plan.terms[t].uses_nodes).collect();
        let (linear, mom_slots) = moments::linear_terms(plan);
        let term_dims: Vec<Vec<usize>> = (0..nt).map(|t| moments::node_dims(plan, t)).collect();
        let fixed_terms = (0..nt).filter(|&t| !plan.terms[t].uses_nodes).collect();
        let steps: Vec<StepDim> = crate::step_dims(plan)
            .into_iter()
            .filter(|s| grid.is_step(s.dim))
            .collect();
        if let Some(d) =
            (0..grid.dims).find(|&d| grid.is_step(d) && !steps.iter().any(|s| s.dim == d))
        {
            return Err(BackendError::Unsupported(format!(
                "integration dimension {} is not the random logit intercept of a class variable; it cannot be a step dimension",
                d + 1
            )));
        }
        // a step term's junctions (`CpuBackend::junctions`) read every
        // state of it at the first pass
        for st in &steps {
            for states in &mut states_of_between {
                states[st.term] = 0..plan.terms[st.term].n_states;
            }
        }
        let row_invariant: Vec<bool> = (0..nt).map(|t| row_invariant(plan, data, t)).collect();
        let mut first_row_cols = vec![false; plan.virtual_cols.len()];
        for t in (0..nt).filter(|&t| row_invariant[t]) {
            if let mlmix_kernels::TermKind::ClassLogit { covs, .. } = &plan.terms[t].kind {
                for v in covs.iter().filter_map(|&c| c.checked_sub(plan.n_data_cols)) {
                    first_row_cols[v] = true;
                }
            }
        }
        let nd = plan.n_data_cols;
        let mut row_cols = vec![!steps.is_empty(); plan.virtual_cols.len()];
        if plan
            .virtual_cols
            .iter()
            .any(|vc| vc.mult.is_some_and(|m| m >= nd))
        {
            // (a column that multiplies another: written everywhere)
            row_cols.fill(true);
        }
        for t in (0..nt).filter(|&t| !row_invariant[t]) {
            for v in plan.terms[t]
                .kind
                .covs()
                .iter()
                .filter_map(|&c| c.checked_sub(nd))
            {
                row_cols[v] = true;
            }
        }
        // with one combination per row the log-densities need no exp
        let product_form =
            product_form(plan, data) && combos_of_between.iter().any(|c| c.len() > 1);
        let blocks = if product_form && plan.dims > 0 {
            Blocks::of(plan, grid, &term_dims, &row_invariant)
        } else {
            None
        };
        let moments = blocks
            .as_ref()
            .and_then(|bl| MomentForm::of(plan, data, grid, bl));
        let rows = if moments.is_some() {
            MOMENT_CHUNK
        } else {
            CHUNK
        };
        let (chunks, width) = chunks_of(&data.cluster_starts, rows);
        Ok(Layout {
            moments,
            offsets,
            stride,
            width,
            slot_of_combo,
            chunks,
            combos_of_between,
            states_of_between,
            node_terms,
            term_dims,
            fixed_terms,
            linear,
            mom_slots,
            steps,
            row_invariant,
            first_row_cols,
            row_cols,
            product_form,
            blocks,
            n_nodes: grid.n_nodes(),
        })
    }

    /// Term `t`'s slots in a chunk buffer.
    #[inline]
    pub fn slots(&self, t: usize) -> Slots {
        Slots {
            stride: self.width,
            offset: self.offsets[t],
        }
    }

    /// Passes per cluster: between-level class combinations times nodes.
    #[inline]
    pub fn n_passes(&self) -> usize {
        self.combos_of_between.len() * self.n_nodes
    }
}

/// Chunks of whole clusters of at most `rows` rows each (a larger
/// cluster is a chunk of its own), as `(r0, r1, j0, j1)`, and the most
/// rows of any.
fn chunks_of(cs: &[usize], rows: usize) -> (Vec<(usize, usize, usize, usize)>, usize) {
    let mut chunks = Vec::new();
    let mut width = 1;
    let mut j0 = 0;
    while j0 + 1 < cs.len() {
        let mut j1 = j0 + 1;
        while j1 + 1 < cs.len() && cs[j1 + 1] - cs[j0] <= rows {
            j1 += 1;
        }
        width = width.max(cs[j1] - cs[j0]);
        chunks.push((cs[j0], cs[j1], j0, j1));
        j0 = j1;
    }
    (chunks, width)
}

/// Whether term `t` is a node-dependent within-level class logit of
/// clustered data whose covariate columns are constant within every
/// cluster (see [`Layout::row_invariant`]).
fn row_invariant(plan: &Plan, data: &EngineData, t: usize) -> bool {
    let term = &plan.terms[t];
    if !data.clustered || term.cluster_level || !term.uses_nodes {
        return false;
    }
    let mlmix_kernels::TermKind::ClassLogit { covs, .. } = &term.kind else {
        return false;
    };
    let constant = |c: usize| {
        let col = &data.columns[c];
        data.cluster_starts
            .windows(2)
            .all(|w| col[w[0]..w[1]].iter().all(|&x| x == col[w[0]]))
    };
    covs.iter().all(|&c| match c.checked_sub(plan.n_data_cols) {
        None => constant(c),
        Some(v) => plan.virtual_cols[v].mult.is_none_or(constant),
    })
}

/// Whether the backend forms the rows' likelihoods given a pass in
/// probability space: a combination's probability is the product of its
/// terms' exps and a cluster's log-density the log of the product of its
/// rows' likelihoods, one log per cluster and pass instead of an exp per
/// combination and a log per row. It holds for clustered data with several
/// passes and unit frequencies whose terms are all log-probabilities
/// (categorical and nominal dependents and class logits, never above 0, so their exps
/// stay in range; the backend rescales the products and falls back to logs
/// for a row too small to multiply). The layout takes it only where some
/// row has several combinations: with one, a row's likelihood is its
/// log-density, no exp at all.
fn product_form(plan: &Plan, data: &EngineData) -> bool {
    use mlmix_kernels::TermKind;
    data.clustered
        && plan.dims > 0
        && data.weights.iter().all(|&w| w == 1.0)
        && plan.terms.iter().all(|t| {
            matches!(
                t.kind,
                TermKind::Categorical { .. }
                    | TermKind::Guessing { .. }
                    | TermKind::Nominal { .. }
                    | TermKind::ClassLogit { .. }
            )
        })
}
