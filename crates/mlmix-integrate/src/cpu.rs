//! The CPU backend: rayon across fixed-size chunks of whole clusters,
//! term-major kernels inside a chunk, reductions in chunk order.
//!
//! The buffers are laid out as [`crate::layout`] describes.
//!
//! The loop, for one chunk: for every *pass* (a between-level class
//! combination `d` and an integration node `q`), the node-dependent terms
//! are evaluated with the node written into the chunk's virtual columns,
//! each row's log-likelihood given the pass is the log-sum-exp over the
//! within-level combinations of `d`, and the rows' values add up to the
//! cluster's log-density given the pass. A log-sum-exp over the passes gives
//! the cluster log-likelihood and the posterior of each pass; a second sweep
//! turns them into posterior weights per term state, which drive the
//! gradient, the expected information and the cluster scores. Single-level
//! models are the case of one pass and clusters of one row.
//!
//! Determinism: chunks are fixed and processed in waves of a fixed number of
//! chunks; each wave's results are collected in chunk order and added
//! sequentially. Neither depends on the thread count, so the sums (and so
//! every result) are the same for 1 and N threads.

use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use mlmix_kernels::eval::{self, InfoAcc, OnBase, RowPattern, Scratch};
use mlmix_kernels::fastmath;
use mlmix_kernels::{EngineData, NONE, Plan, Prepared};
use rayon::prelude::*;

use crate::finish::{ChunkOut, Totals};
use crate::layout::Layout;
use crate::moments::{self, LinearTerm};
use crate::nodes::{NodeTable, nodes_of};
use crate::poly::LANES;
use crate::{Adaptation, Backend, BackendError, EvalCount, Evaluation, Grid, Want};

mod blocked;
mod distinct;
mod moment;
#[cfg(feature = "gpu")]
pub(crate) use moment::{TermVecs, run_moments};

/// In the product form, a row likelihood or running product below this is
/// taken out by a log (see [`CpuBackend::log_product`]).
const PRODUCT_SMALL: f64 = 1e-140;
/// In the product form, a row likelihood below this takes its posteriors
/// from the log-densities (see [`CpuBackend::within_product`]).
const PRODUCT_TINY: f64 = 1e-280;
/// Node tables a backend keeps (one per adaptation in use).
const NODE_TABLES: usize = 4;

/// Chunks evaluated in parallel before their results are reduced.
const WAVE: usize = 64;

/// Evaluates the cluster-likelihood loop on the CPU.
pub struct CpuBackend {
    plan: Arc<Plan>,
    data: Arc<EngineData>,
    grid: Grid,
    pool: Option<Arc<rayon::ThreadPool>>,
    /// The buffer layout, chunks and term groups (see [`Layout`]).
    layout: Layout,
    /// Evaluations so far, by kind.
    counts: Mutex<[EvalCount; 4]>,
    /// Why `--backend auto` chose this backend, for [`Backend::describe`]
    /// (see [`CpuBackend::with_note`]).
    note: Option<String>,
    /// The nodes of the last few adaptations evaluated (see
    /// [`NodeTable`]; random starts run in parallel, each with its own).
    nodes: Mutex<Vec<Arc<NodeTable>>>,
    /// Workspaces that chunks have finished with, lent again (see
    /// [`Lent`]).
    spare: Mutex<Vec<Workspace>>,
    /// Per chunk, its local copy of the data while no workspace holds it
    /// (see [`CpuBackend::chunk_local`]): made once, not at every
    /// evaluation; empty where the copies would take more than
    /// [`LOCALS_BYTES`] or the model has no random effects.
    locals: Vec<Mutex<Option<Kept>>>,
    /// Per chunk (where [`CpuBackend::locals`] are kept), its node and
    /// fixed terms' patterns of non-zero covariates ([`RowPattern`]), found
    /// at the chunk's first evaluation: they depend on its data alone
    /// ([`CpuBackend::kept_patterns`]).
    patterns: Vec<OnceLock<Vec<Option<RowPattern>>>>,
    /// Per term: a fixed term's rows by their distinct values
    /// ([`distinct::DistinctRows`]), where it has few.
    distinct: Vec<Option<distinct::DistinctRows>>,
    /// Per chunk, its rows and clusters (made once: they depend on the
    /// data and the chunks alone).
    cxs: Vec<ChunkCx>,
    /// In the moment form, where its outer terms are all fixed terms on
    /// few distinct rows: those rows, on which the rows' coefficients are
    /// found ([`distinct::CoefTable`]).
    coef_rows: Option<distinct::DistinctRows>,
}

/// A chunk's local copy of its rows, and of its clusters' first rows
/// where the plan has row-invariant terms ([`CpuBackend::chunk_local`]).
type Kept = (EngineData, Option<EngineData>);

/// The most bytes of chunks' local copies of the data a backend keeps
/// between evaluations (above it each evaluation copies them again).
const LOCALS_BYTES: usize = 256 << 20;

impl CpuBackend {
    /// A backend for a plan and its data, integrating over `grid` (use
    /// [`Grid::single`] for a model without random effects). `pool` is the
    /// thread pool to run in (`None`: the caller's current pool).
    pub fn new(
        plan: Arc<Plan>,
        data: Arc<EngineData>,
        grid: Grid,
        pool: Option<Arc<rayon::ThreadPool>>,
    ) -> Result<Self, BackendError> {
        let layout = Layout::new(&plan, &data, &grid)?;
        let bytes = data.n_rows() * (data.columns.len() + plan.virtual_cols.len()) * 8;
        let n_locals = if plan.dims > 0 && bytes <= LOCALS_BYTES {
            layout.chunks.len()
        } else {
            0
        };
        let coef_rows = layout
            .moments
            .as_ref()
            .and(layout.blocks.as_ref())
            .and_then(|bl| {
                distinct::DistinctRows::of_terms(
                    bl.outer_terms.iter().map(|&t| &plan.terms[t]),
                    &data,
                )
            });
        let cxs = (0..layout.chunks.len())
            .map(|c| ChunkCx::of(&layout, &data, c))
            .collect();
        Ok(CpuBackend {
            grid,
            pool,
            layout,
            counts: Mutex::new([EvalCount::default(); 4]),
            note: None,
            nodes: Mutex::new(Vec::new()),
            spare: Mutex::new(Vec::new()),
            locals: (0..n_locals).map(|_| Mutex::new(None)).collect(),
            patterns: (0..n_locals).map(|_| OnceLock::new()).collect(),
            cxs,
            coef_rows,
            distinct: plan
                .terms
                .iter()
                .map(|t| distinct::DistinctRows::of(t, &data))
                .collect(),
            plan,
            data,
        })
    }

    /// The same backend, described with `note` after its threads (why
    /// `--backend auto` chose it over a GPU).
    pub fn with_note(mut self, note: String) -> Self {
        self.note = Some(note);
        self
    }

    /// The integrand terms of one evaluation on the general loop: rows x
    /// nodes x class combinations x terms (the GPU backend evaluates every
    /// one of them; the CPU's shortcuts skip many, see [`Self::blocked`]).
    pub fn integrand_terms(&self) -> f64 {
        self.data.n_rows() as f64
            * self.grid.n_nodes() as f64
            * self.plan.n_combos as f64
            * self.plan.terms.len() as f64
    }

    /// The same backend on the general loop only: every term evaluated
    /// and accumulated on every row, rows' likelihoods by log-sum-exps
    /// (neither [`Layout::row_invariant`] nor [`Layout::product_form`]).
    /// The reference the tests hold the shortcuts to, and the benchmark's
    /// baseline.
    pub fn general_loop(mut self) -> Self {
        self.spare = Mutex::new(Vec::new());
        self.layout.row_invariant.fill(false);
        self.layout.row_cols.fill(true);
        self.layout.product_form = false;
        self.layout.blocks = None;
        self.layout.moments = None;
        self.coef_rows = None;
        self
    }

    /// The same backend without the moment form (see
    /// [`crate::layout`]'s `MomentForm`): the blocked loop where it
    /// applies. The reference the tests hold the moment form to.
    pub fn without_moment_form(mut self) -> Self {
        self.spare = Mutex::new(Vec::new());
        self.layout.moments = None;
        self.coef_rows = None;
        self
    }

    /// Whether the moment form finds the rows' coefficients on the
    /// distinct rows of its outer terms ([`distinct::CoefTable`]): where
    /// these are all fixed terms on few distinct rows.
    pub fn coefficients_by_distinct_rows(&self) -> bool {
        self.coef_rows.is_some()
    }

    /// In the moment form: the runs of passes per cluster (the outer
    /// dimensions' nodes) and the number of class combinations (the
    /// polynomials' variables), from which a cluster's work follows.
    pub fn moment_runs(&self) -> Option<(usize, usize)> {
        let mf = self.layout.moments.as_ref()?;
        let bl = self.layout.blocks.as_ref()?;
        Some((bl.runs.len(), mf.poly.k))
    }

    /// Whether this backend runs the moment form (see [`crate::layout`]'s
    /// `MomentForm`: the blocked loop's products over the inner nodes
    /// through moments every cluster shares).
    pub fn moment_form(&self) -> bool {
        self.layout.moments.is_some()
    }

    /// Whether this backend runs the blocked product form (see
    /// [`crate::layout`]'s `Blocks`: long data whose rows share the
    /// class logits' dimensions), which the tests hold to the general loop.
    pub fn blocked(&self) -> bool {
        self.layout.blocks.is_some()
    }

    /// The buffer layout (a GPU backend lays its tables out the same way).
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    fn threads(&self) -> usize {
        self.pool
            .as_ref()
            .map_or_else(rayon::current_num_threads, |p| p.current_num_threads())
    }

    fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(p) => p.install(f),
            None => f(),
        }
    }
}

/// Whether every entry of `xs` is finite and at least `low` (a NaN is
/// not): one pass without early exit, so that it vectorises.
#[inline(always)]
fn all_in_range(xs: &[f64], low: f64) -> bool {
    xs.iter()
        .fold(true, |ok, &x| ok & (x >= low) & (x <= f64::MAX))
}

/// Per-chunk working buffers, reused across the chunks of one worker. All
/// are slot-major: slot (or combination) first, then the chunk's rows.
struct Workspace {
    vals: Vec<f64>,
    /// A fixed term's values on its distinct rows
    /// ([`CpuBackend::distinct_values`]).
    distinct: Vec<f64>,
    /// exp(`vals`), kept for the product form ([`Layout::product_form`]).
    evals: Vec<f64>,
    w: Vec<f64>,
    /// Per combination: its log-density, then exp(· − max), then the
    /// posterior probability given the pass.
    lj: Vec<f64>,
    /// Per row: the maximum over combinations, then the sum of exps.
    max: Vec<f64>,
    sum: Vec<f64>,
    /// Per row: log-likelihood given the pass (in the product form, which
    /// needs no per-row log: the reciprocal of the row's likelihood).
    row_ll: Vec<f64>,
    /// Per (cluster, pass): log weight plus the log-density given the pass,
    /// then the posterior of the pass.
    pass_ll: Vec<f64>,
    /// Per row: the posterior of the current pass.
    pass_post: Vec<f64>,
    /// Per pass: the posteriors of the combinations given the pass, kept
    /// from the first sweep for the second (when small enough).
    cache: Vec<f64>,
    /// Per (cluster, node): node coordinates and log weights.
    z: Vec<f64>,
    /// Passes per cluster in `z` and `log_w` (the layout's; in the moment
    /// form, the runs').
    z_passes: usize,
    log_w: Vec<f64>,
    cluster_scores: Vec<f64>,
    /// Per moment slot of the linear node terms: the rows' weighted node
    /// moments (see [`crate::moments`]).
    mom: Vec<f64>,
    /// Per term: the pass whose node its values in `vals` were computed
    /// at (`usize::MAX`: none yet in this chunk), and the states computed
    /// there.
    term_pass: Vec<usize>,
    term_states: Vec<Range<usize>>,
    /// Per node term: the states whose log-densities `vals` lacks at the
    /// node of `term_pass` (the product form took their densities alone;
    /// [`CpuBackend::ensure_logs`] computes them).
    logs_due: Vec<Option<Range<usize>>>,
    /// Per node column: the pass whose node it holds.
    col_pass: Vec<usize>,
    /// Per node column with a data column for multiplier: the chunk's rows
    /// where that column is not zero, where they are at most half its rows
    /// (long data's item dummies; `None` otherwise). The others hold 0 at
    /// every node, so a pass writes these alone ([`CpuBackend::node_pass`]).
    col_rows: Vec<Option<Vec<u32>>>,
    /// Per node term with one: its node-free part for the chunk's rows (see
    /// [`eval::term_base`]), at its slots; `has_base` says which have one.
    base: Vec<f64>,
    has_base: Vec<bool>,
    /// In the product form, the exponentials of those node-free parts
    /// whose kind takes its densities from them (see
    /// [`eval::term_base_exps`]), at the same places; `has_base_exps`
    /// says which.
    base_exps: Vec<f64>,
    has_base_exps: Vec<bool>,
    /// Per node term accumulated at its nodes: the pattern of its rows'
    /// non-zero covariates in the chunk, where its kind has one (see
    /// [`eval::RowPattern`]).
    patterns: Vec<Option<RowPattern>>,
    /// Per node term: the first pass of the run whose weights `w` holds
    /// and has not accumulated yet (`usize::MAX`: none).
    pending: Vec<usize>,
    /// Whether `cache` holds this chunk's posteriors given each pass.
    cached: bool,
    /// The blocked product form's buffers (see [`blocked`]).
    blk: blocked::Buffers,
    /// The moment form's polynomials (see [`moment`]).
    pol: moment::Buffers,
    local: Option<EngineData>,
    /// The chunk whose data `local` holds.
    local_chunk: Option<usize>,
    /// The chunk's first row of each cluster, with node columns, for the
    /// row-invariant terms ([`Layout::row_invariant`]): their values and
    /// weights per cluster (slot-major, like `vals`) and each cluster's
    /// index (its frequency is 1: `firsts.weights`).
    firsts: Option<EngineData>,
    cvals: Vec<f64>,
    cw: Vec<f64>,
    first_j: Vec<usize>,
    scratch: Scratch,
}

impl Workspace {
    fn new(plan: &Plan, stride: usize, width: usize, mom_slots: usize) -> Self {
        Workspace {
            mom: vec![0.0; mom_slots * width],
            term_pass: vec![usize::MAX; plan.terms.len()],
            term_states: vec![0..0; plan.terms.len()],
            logs_due: vec![None; plan.terms.len()],
            col_pass: vec![usize::MAX; plan.virtual_cols.len()],
            col_rows: vec![None; plan.virtual_cols.len()],
            pending: vec![usize::MAX; plan.terms.len()],
            base: vec![0.0; width * stride],
            has_base: vec![false; plan.terms.len()],
            base_exps: Vec::new(),
            has_base_exps: vec![false; plan.terms.len()],
            patterns: vec![None; plan.terms.len()],
            vals: vec![0.0; width * stride],
            distinct: Vec::new(),
            evals: vec![0.0; width * stride],
            w: vec![0.0; width * stride],
            lj: vec![0.0; plan.n_combos * width],
            max: vec![0.0; width],
            sum: vec![0.0; width],
            row_ll: vec![0.0; width],
            pass_ll: Vec::new(),
            pass_post: vec![0.0; width],
            cache: Vec::new(),
            cached: false,
            blk: blocked::Buffers::default(),
            pol: moment::Buffers::default(),
            local_chunk: None,
            z: Vec::new(),
            z_passes: 0,
            log_w: Vec::new(),
            cluster_scores: Vec::new(),
            local: None,
            firsts: None,
            cvals: Vec::new(),
            cw: Vec::new(),
            first_j: Vec::new(),
            scratch: Scratch::default(),
        }
    }
}

/// A chunk's rows and clusters: rows `r0..r1` of the data, clusters from
/// `j0`; per row its cluster and whether it is the cluster's first; per
/// cluster its rows in the chunk and its weight.
struct ChunkCx {
    /// The chunk's index.
    c: usize,
    r0: usize,
    r1: usize,
    j0: usize,
    row_j: Vec<usize>,
    first_row: Vec<bool>,
    rows_of: Vec<(usize, usize)>,
    cluster_weight: Vec<f64>,
    /// The clusters in groups of up to [`LANES`] consecutive ones with
    /// as many rows, which the moment form's polynomials take at once.
    lane_groups: Vec<(usize, usize)>,
}

impl ChunkCx {
    /// Chunk `c` of `layout` on `data`: its rows and clusters.
    fn of(layout: &Layout, data: &EngineData, c: usize) -> ChunkCx {
        let (r0, r1, j0, j1) = layout.chunks[c];
        let cs = &data.cluster_starts;
        let freq = &data.weights[r0..r1];
        // two-level: rows count `freq` times in their cluster, clusters
        // once; single-level: each row is a cluster counting `freq` times
        let clustered = data.clustered;
        let cluster_weight: Vec<f64> = (j0..j1)
            .map(|j| if clustered { 1.0 } else { freq[cs[j] - r0] })
            .collect();
        let row_j: Vec<usize> = (j0..j1)
            .flat_map(|j| std::iter::repeat_n(j, cs[j + 1] - cs[j]))
            .collect();
        let first_row: Vec<bool> = (0..r1 - r0).map(|i| cs[row_j[i]] == r0 + i).collect();
        let rows_of: Vec<(usize, usize)> = (j0..j1).map(|j| (cs[j] - r0, cs[j + 1] - r0)).collect();
        let size = |c: usize| rows_of[c].1 - rows_of[c].0;
        let mut lane_groups = Vec::new();
        let mut c0 = 0;
        while c0 < rows_of.len() {
            let mut c1 = c0 + 1;
            while c1 < rows_of.len() && c1 - c0 < LANES && size(c1) == size(c0) {
                c1 += 1;
            }
            lane_groups.push((c0, c1));
            c0 = c1;
        }
        ChunkCx {
            c,
            r0,
            r1,
            j0,
            row_j,
            first_row,
            rows_of,
            cluster_weight,
            lane_groups,
        }
    }
}

/// The gradient and information accumulators of a chunk, per term.
struct Acc<'a> {
    grads: &'a mut [Vec<f64>],
    infos: &'a mut [InfoAcc],
}

/// `acc[i] += x[i]` over a row range.
#[inline]
fn add_rows(acc: &mut [f64], x: &[f64]) {
    for (a, b) in acc.iter_mut().zip(x) {
        *a += b;
    }
}

impl CpuBackend {
    /// The junctions of the step dimensions for the chunk's rows, from the
    /// class-logit values of the current pass (node `q` of the plain or
    /// adapted grid): each row's logit of the random class against the
    /// others is linear in z with slope sigma, so it crosses 0 at
    /// z_q - logit / sigma. Per cluster, the smallest and largest over its
    /// rows and the logit's parameter sets.
    fn junctions(
        &self,
        prep: &Prepared,
        pass: usize,
        row_j: &[usize],
        j0: usize,
        ws: &Workspace,
        out: &mut [(Vec<f64>, Vec<f64>)],
    ) {
        let dims = self.plan.dims;
        let n_pass = self.layout.n_passes();
        let wd = self.layout.width;
        for (st, (lo, hi)) in self.layout.steps.iter().zip(out.iter_mut()) {
            let sigma = prep.ext[st.sigma];
            if sigma.is_nan() || sigma <= 1e-8 {
                continue;
            }
            // (every state of a step term is evaluated at every pass:
            // `Layout::states_of_between`)
            let term = &self.plan.terms[st.term];
            let k_n = term.n_states / term.n_sets;
            for (i, &j) in row_j.iter().enumerate() {
                let zq = ws.z[((j - j0) * n_pass + pass) * dims + st.dim];
                for set in 0..term.n_sets {
                    let val =
                        |k: usize| ws.vals[(self.layout.offsets[st.term] + set * k_n + k) * wd + i];
                    let mine = val(st.class);
                    let mut m = f64::NEG_INFINITY;
                    for k in (0..k_n).filter(|&k| k != st.class) {
                        m = m.max(val(k));
                    }
                    let mut sum = 0.0;
                    for k in (0..k_n).filter(|&k| k != st.class) {
                        sum += (val(k) - m).exp();
                    }
                    let logit = mine - (m + sum.ln());
                    let zs = zq - logit / sigma;
                    if zs.is_finite() {
                        let c = j - j0;
                        lo[c] = if lo[c].is_nan() { zs } else { lo[c].min(zs) };
                        hi[c] = if hi[c].is_nan() { zs } else { hi[c].max(zs) };
                    }
                }
            }
        }
    }

    /// Log-densities of every combination of between-level combination `b`
    /// for the chunk's rows into `ws.lj`, their log-sum-exp per row into
    /// `ws.row_ll`, and (with `normalise`) the posteriors given the pass.
    #[inline(always)]
    fn within(&self, b: usize, nr: usize, ws: &mut Workspace, normalise: bool) {
        let w = self.layout.width;
        let combos = &self.layout.combos_of_between[b];
        if let [k0, k1] = combos[..] {
            self.within_two(k0, k1, nr, ws, normalise);
            return;
        }
        if let [k] = combos[..] {
            // one combination: the row's log-density, posterior 1
            self.combo_sum(k, nr, &mut ws.lj, &ws.vals);
            let lj = &mut ws.lj[k * w..k * w + nr];
            ws.row_ll[..nr].copy_from_slice(lj);
            if normalise {
                lj.fill(1.0);
            }
            return;
        }
        let max = &mut ws.max[..nr];
        max.fill(f64::NEG_INFINITY);
        for &k in combos {
            self.combo_sum(k, nr, &mut ws.lj, &ws.vals);
            let lj = &ws.lj[k * w..k * w + nr];
            for (m, &v) in max.iter_mut().zip(lj.iter()) {
                *m = m.max(v);
            }
        }
        let sum = &mut ws.sum[..nr];
        sum.fill(0.0);
        for &k in combos {
            let lj = &mut ws.lj[k * w..k * w + nr];
            for ((v, &m), s) in lj.iter_mut().zip(max.iter()).zip(sum.iter_mut()) {
                *v = fastmath::exp(*v - m);
                *s += *v;
            }
        }
        for ((ll, &m), &s) in ws.row_ll[..nr].iter_mut().zip(max.iter()).zip(sum.iter()) {
            let v = m + fastmath::ln(s);
            *ll = if m.is_finite() { v } else { f64::NEG_INFINITY };
        }
        if normalise {
            for s in sum.iter_mut() {
                *s = 1.0 / *s;
            }
            for &k in combos {
                let lj = &mut ws.lj[k * w..k * w + nr];
                for (v, inv) in lj.iter_mut().zip(sum.iter()) {
                    *v *= inv;
                }
            }
        }
    }

    /// Combination `k`'s log-density for the chunk's rows into its row of
    /// `lj`: the sum of its terms' slots in `vals`.
    #[inline(always)]
    fn combo_sum(&self, k: usize, nr: usize, lj: &mut [f64], vals: &[f64]) {
        let w = self.layout.width;
        let nt = self.plan.terms.len();
        let lj = &mut lj[k * w..k * w + nr];
        lj.fill(0.0);
        for &sl in &self.layout.slot_of_combo[k * nt..(k + 1) * nt] {
            let sl = sl as usize;
            add_rows(lj, &vals[sl * w..sl * w + nr]);
        }
    }

    /// [`Self::within`] for two combinations (the common two-class case):
    /// with d = -|l0 - l1| the row's log-likelihood is max + ln(1 + e^d)
    /// and the posteriors 1 / (1 + e^d) and e^d / (1 + e^d): one exp and
    /// one ln per row instead of two exps and a ln (ln(1 + e^d) is as
    /// accurate as the general case's ln of the sum, in absolute terms).
    #[inline(always)]
    fn within_two(&self, k0: usize, k1: usize, nr: usize, ws: &mut Workspace, normalise: bool) {
        let w = self.layout.width;
        for k in [k0, k1] {
            self.combo_sum(k, nr, &mut ws.lj, &ws.vals);
        }
        let (lo, hi) = ws.lj.split_at_mut(k0.max(k1) * w);
        let (l0, l1) = if k0 < k1 {
            (&mut lo[k0 * w..k0 * w + nr], &mut hi[..nr])
        } else {
            (&mut hi[..nr], &mut lo[k1 * w..k1 * w + nr])
        };
        for ((a, b), ll) in l0.iter_mut().zip(l1.iter_mut()).zip(&mut ws.row_ll[..nr]) {
            let m = a.max(*b);
            let e = fastmath::exp(-(*a - *b).abs());
            let v = m + fastmath::ln(1.0 + e);
            *ll = if m.is_finite() { v } else { f64::NEG_INFINITY };
            let (p_hi, p_lo) = if normalise {
                let inv = 1.0 / (1.0 + e);
                (inv, e * inv)
            } else {
                (1.0, e)
            };
            let first = *a >= *b;
            *a = if first { p_hi } else { p_lo };
            *b = if first { p_lo } else { p_hi };
        }
    }

    /// A cluster-level term counts on the first row of its cluster only:
    /// zeroes its slots (values or weights) on the other rows.
    #[inline(always)]
    fn mask_cluster_level(&self, t: usize, first_row: &[bool], buf: &mut [f64]) {
        let term = &self.plan.terms[t];
        if !term.cluster_level {
            return;
        }
        for s in 0..term.n_states {
            let row = &mut buf[(self.layout.offsets[t] + s) * self.layout.width..];
            for (v, &first) in row.iter_mut().zip(first_row) {
                if !first {
                    *v = 0.0;
                }
            }
        }
    }

    /// Writes pass `pass`'s node columns (its index into `ws.z`) and, with
    /// `values`, evaluates the node terms other than `skip`, for the
    /// states that between-level combination `b`'s combinations use.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn node_pass(
        &self,
        prep: &Prepared,
        (b, pass): (usize, usize),
        row_j: &[usize],
        j0: usize,
        ws: &mut Workspace,
        values: bool,
        skip: &[usize],
    ) {
        let plan = &*self.plan;
        let dims = plan.dims;
        let n_pass = ws.z_passes;
        let Some(local) = ws.local.as_mut() else {
            return;
        };
        let nr = row_j.len();
        let cs = &self.data.cluster_starts;
        let r0 = cs[j0];
        let nj = row_j.last().map_or(0, |&j| j + 1 - j0);
        for (v, vc) in plan.virtual_cols.iter().enumerate() {
            // a column whose dimension holds the same node in every cluster
            // as when it was written keeps it
            let last = ws.col_pass[v];
            let same = |c: usize| {
                ws.z[(c * n_pass + pass) * dims + vc.dim]
                    == ws.z[(c * n_pass + last) * dims + vc.dim]
            };
            if last != usize::MAX && (0..nj).all(same) {
                continue;
            }
            ws.col_pass[v] = pass;
            let col_index = plan.n_data_cols + v;
            if let (Some(firsts), true) = (ws.firsts.as_mut(), self.layout.first_row_cols[v]) {
                for c in 0..nj {
                    let zq = ws.z[(c * n_pass + pass) * dims + vc.dim];
                    let m = vc.mult.map_or(1.0, |m| firsts.columns[m][c]);
                    firsts.columns[col_index][c] = zq * m;
                }
            }
            if !self.layout.row_cols[v] {
                // (only row-invariant terms read it, on the first rows)
                continue;
            }
            if let (Some(m), Some(rows)) = (vc.mult, &ws.col_rows[v]) {
                // the rows where the multiplier is not zero (the others
                // hold 0 since `chunk_local`)
                let (src, dst) = two_columns(&mut local.columns, m, col_index);
                for &i in rows {
                    let i = i as usize;
                    let zq = ws.z[((row_j[i] - j0) * n_pass + pass) * dims + vc.dim];
                    dst[i] = zq * src[i];
                }
                continue;
            }
            // a cluster's rows share its node
            for c in 0..nj {
                let (i0, i1) = (cs[j0 + c] - r0, cs[j0 + c + 1] - r0);
                let zq = ws.z[(c * n_pass + pass) * dims + vc.dim];
                match vc.mult {
                    None => local.columns[col_index][i0..i1].fill(zq),
                    Some(m) => {
                        let (src, dst) = two_columns(&mut local.columns, m, col_index);
                        for (d, &x) in dst[i0..i1].iter_mut().zip(&src[i0..i1]) {
                            *d = zq * x;
                        }
                    }
                }
            }
        }
        if !values {
            return;
        }
        for &t in self.layout.node_terms.iter().filter(|t| !skip.contains(t)) {
            // only the states the pass's combinations use; a term whose
            // dimensions hold the same node in every cluster as when its
            // values were computed, for these states, keeps them
            let states = self.layout.states_of_between[b][t].clone();
            let last = ws.term_pass[t];
            let kept = &ws.term_states[t];
            if last != usize::MAX
                && kept.start <= states.start
                && states.end <= kept.end
                && self.same_node(t, nj, pass, last, (ws.z_passes, &ws.z))
            {
                continue;
            }
            ws.term_pass[t] = pass;
            ws.term_states[t] = states.clone();
            ws.logs_due[t] = None;
            let (term, tp, slots) = (&plan.terms[t], &prep.terms[t], self.layout.slots(t));
            let sc = &mut ws.scratch;
            if self.layout.row_invariant[t] {
                let Some(firsts) = ws.firsts.as_ref() else {
                    continue;
                };
                if self.layout.product_form && states == (0..term.n_states) {
                    // the probabilities themselves (a class logit's softmax
                    // without its log and exp), their logs left for when a
                    // row needs them ([`Self::ensure_logs`])
                    eval::term_probs(term, tp, firsts, 0, nj, slots, sc, &mut ws.cvals);
                    self.broadcast(t, &states, nj, r0, j0, &ws.cvals, &mut ws.evals);
                    ws.logs_due[t] = Some(states);
                    continue;
                }
                let bufs = (&mut ws.cvals[..], &mut ws.vals[..]);
                self.firsts_logs(prep, t, states.clone(), (nj, r0, j0), firsts, sc, bufs);
                if self.layout.product_form {
                    self.exps(t, &states, nj, &mut ws.cvals);
                    self.broadcast(t, &states, nj, r0, j0, &ws.cvals, &mut ws.evals);
                }
                continue;
            } else if ws.has_base[t] {
                let (nc0, st) = (plan.n_data_cols, states.clone());
                let pattern = self.pattern_of(t, ws.local_chunk, &ws.patterns);
                let exps = ws.has_base_exps[t].then_some(&ws.base_exps[..]);
                let base = (&ws.base[..], exps, pattern);
                // the product form's densities from the kernel where it
                // has them at hand (a logit item: no logarithm, no second
                // exp), their logs left for when a row needs them
                // ([`Self::ensure_logs`])
                let out = match self.layout.product_form {
                    true => OnBase::ProbsElseLogs {
                        logs: &mut ws.vals[..],
                        probs: &mut ws.evals[..],
                    },
                    false => OnBase::Logs(&mut ws.vals[..]),
                };
                if eval::term_values_on_base(term, tp, st, nc0, local, 0, nr, slots, base, sc, out)
                {
                    ws.logs_due[t] = Some(states);
                    continue;
                }
            } else {
                let (st, vals) = (states.clone(), &mut ws.vals);
                eval::term_values_of(term, tp, st, local, 0, nr, slots, sc, vals);
            }
            if self.layout.product_form {
                self.exp_slots(t, &states, nr, &ws.vals, &mut ws.evals);
            }
        }
    }

    /// The log-densities that the last [`Self::node_pass`] left out
    /// (`ws.logs_due`: the product form took those terms' densities
    /// alone), into `ws.vals`, for the readers that need them: a row too
    /// small for its products, and the step rule's junctions. They are
    /// computed at the node columns as they stand, which hold each such
    /// term's node: a pass that keeps a term's values keeps its columns.
    /// A row-invariant term's are computed on the clusters' first rows and
    /// copied onto their rows, as [`Self::node_pass`] does.
    fn ensure_logs(&self, prep: &Prepared, ws: &mut Workspace) {
        let Some(local) = ws.local.as_ref() else {
            return;
        };
        let nr = local.n_rows();
        let nc0 = self.plan.n_data_cols;
        for &t in &self.layout.node_terms {
            let Some(states) = ws.logs_due[t].take() else {
                continue;
            };
            let (term, tp, slots) = (&self.plan.terms[t], &prep.terms[t], self.layout.slots(t));
            if let (true, Some(firsts), Some(c)) = (
                self.layout.row_invariant[t],
                ws.firsts.as_ref(),
                ws.local_chunk,
            ) {
                let (cx, sc) = (self.chunk_cx(c), &mut ws.scratch);
                let (at, bufs) = (
                    (firsts.n_rows(), cx.r0, cx.j0),
                    (&mut ws.cvals[..], &mut ws.vals[..]),
                );
                self.firsts_logs(prep, t, states, at, firsts, sc, bufs);
                continue;
            }
            let pattern = self.pattern_of(t, ws.local_chunk, &ws.patterns);
            let base = (&ws.base[..], None, pattern);
            let (sc, out) = (&mut ws.scratch, OnBase::Logs(&mut ws.vals[..]));
            eval::term_values_on_base(term, tp, states, nc0, local, 0, nr, slots, base, sc, out);
        }
    }

    /// Row-invariant term `t`'s log-densities of `states` on the clusters'
    /// first rows (`ws.firsts`, at the node columns as they stand) into
    /// `ws.cvals`, and copied onto the rows of each of the chunk's `nj`
    /// clusters in `ws.vals` (first row `r0`, first cluster `j0`).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn firsts_logs(
        &self,
        prep: &Prepared,
        t: usize,
        states: Range<usize>,
        (nj, r0, j0): (usize, usize, usize),
        firsts: &EngineData,
        sc: &mut Scratch,
        (cvals, vals): (&mut [f64], &mut [f64]),
    ) {
        let (term, tp, slots) = (&self.plan.terms[t], &prep.terms[t], self.layout.slots(t));
        let st = states.clone();
        eval::term_values_of(term, tp, st, firsts, 0, nj, slots, sc, cvals);
        self.broadcast(t, &states, nj, r0, j0, cvals, vals);
    }

    /// exp of term `t`'s slots of `states` in `src` into `dst` (`n` rows).
    #[inline(always)]
    fn exp_slots(&self, t: usize, states: &Range<usize>, n: usize, src: &[f64], dst: &mut [f64]) {
        let wd = self.layout.width;
        for s in states.clone() {
            let sl = (self.layout.offsets[t] + s) * wd;
            for (d, &v) in dst[sl..sl + n].iter_mut().zip(&src[sl..sl + n]) {
                *d = fastmath::exp(v);
            }
        }
    }

    /// exp of term `t`'s slots of `states` in `buf`, in place (`n` rows).
    #[inline(always)]
    fn exps(&self, t: usize, states: &Range<usize>, n: usize, buf: &mut [f64]) {
        let wd = self.layout.width;
        for s in states.clone() {
            let sl = (self.layout.offsets[t] + s) * wd;
            for v in &mut buf[sl..sl + n] {
                *v = fastmath::exp(*v);
            }
        }
    }

    /// [`Self::within`] in probability space (see
    /// [`Layout::product_form`]): each combination's probability (the
    /// product of its terms' slots in `ws.evals`) into `ws.lj`, divided by
    /// the row's likelihood with `normalise`, and each row's likelihood,
    /// their sum, into `ws.sum`.
    #[inline(always)]
    fn within_product(
        &self,
        prep: &Prepared,
        b: usize,
        nr: usize,
        ws: &mut Workspace,
        normalise: bool,
    ) {
        let w = self.layout.width;
        let nt = self.plan.terms.len();
        let combos = &self.layout.combos_of_between[b];
        let sum = &mut ws.sum[..nr];
        sum.fill(0.0);
        for &k in combos {
            let lj = &mut ws.lj[k * w..k * w + nr];
            let slots = &self.layout.slot_of_combo[k * nt..(k + 1) * nt];
            let ev = |sl: u32| &ws.evals[sl as usize * w..sl as usize * w + nr];
            // the first two terms' product in one pass (the common case:
            // an item and a class logit), the others multiplied in
            match slots {
                [a, b, rest @ ..] => {
                    for ((v, &x), &y) in lj.iter_mut().zip(ev(*a)).zip(ev(*b)) {
                        *v = x * y;
                    }
                    for &sl in rest {
                        for (v, &e) in lj.iter_mut().zip(ev(sl)) {
                            *v *= e;
                        }
                    }
                }
                [a] => lj.copy_from_slice(ev(*a)),
                [] => lj.fill(1.0),
            }
            for (s, &v) in sum.iter_mut().zip(lj.iter()) {
                *s += v;
            }
        }
        if normalise {
            // one division per row, not one per combination
            let inv = &mut ws.row_ll[..nr];
            for (r, &s) in inv.iter_mut().zip(sum.iter()) {
                *r = 1.0 / s;
            }
            for &k in combos {
                let lj = &mut ws.lj[k * w..k * w + nr];
                for (v, &r) in lj.iter_mut().zip(inv.iter()) {
                    *v *= r;
                }
            }
            // a row too small for its products: its posteriors from the
            // log-densities
            if !all_in_range(&ws.sum[..nr], PRODUCT_TINY) {
                self.ensure_logs(prep, ws);
            }
            for i in 0..nr {
                if !(ws.sum[i] >= PRODUCT_TINY && ws.sum[i].is_finite()) {
                    let ll = self.row_lse(b, i, &ws.vals);
                    for &k in combos {
                        let lk = self.combo_log_density(k, i, &ws.vals);
                        ws.lj[k * w + i] = if ll.is_finite() { (lk - ll).exp() } else { 0.0 };
                    }
                }
            }
        }
    }

    /// The log of the product of rows `i0..i1`'s likelihoods in `ws.sum`
    /// (see [`Self::within_product`]): rescaled by a log whenever the
    /// running product falls below 1e-140; a row below 1e-140 (or not
    /// finite) takes its log-likelihood from the log-densities instead.
    #[inline(always)]
    fn log_product(&self, b: usize, i0: usize, i1: usize, ws: &Workspace) -> f64 {
        const SMALL: f64 = PRODUCT_SMALL;
        let mut acc = 0.0;
        let mut p = 1.0;
        for i in i0..i1 {
            let s = ws.sum[i];
            if s >= SMALL && s.is_finite() {
                p *= s;
                if p < SMALL {
                    acc += p.ln();
                    p = 1.0;
                }
            } else {
                acc += self.row_lse(b, i, &ws.vals);
            }
        }
        acc + p.ln()
    }

    /// Row `i`'s log-likelihood given between-level combination `b`: the
    /// log-sum-exp of its combinations' log-densities in `vals`.
    fn row_lse(&self, b: usize, i: usize, vals: &[f64]) -> f64 {
        let l: Vec<f64> = self.layout.combos_of_between[b]
            .iter()
            .map(|&k| self.combo_log_density(k, i, vals))
            .collect();
        let m = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !m.is_finite() {
            return m;
        }
        m + l.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
    }

    /// Row `i`'s log-density in class combination `k`: the sum of its
    /// terms' slots in `vals`.
    fn combo_log_density(&self, k: usize, i: usize, vals: &[f64]) -> f64 {
        let (w, nt) = (self.layout.width, self.plan.terms.len());
        self.layout.slot_of_combo[k * nt..(k + 1) * nt]
            .iter()
            .map(|&sl| vals[sl as usize * w + i])
            .sum()
    }

    /// `f(slot, c, i0, i1)` for each state of term `t` (its slot's start
    /// in a chunk buffer) and each of the chunk's `nj` clusters `c` (its
    /// rows `i0..i1`; first row `r0`, first cluster `j0`).
    #[inline(always)]
    fn each_cluster_slot(
        &self,
        (t, states): (usize, &Range<usize>),
        (nj, r0, j0): (usize, usize, usize),
        mut f: impl FnMut(usize, usize, usize, usize),
    ) {
        let wd = self.layout.width;
        let cs = &self.data.cluster_starts;
        for s in states.clone() {
            let sl = (self.layout.offsets[t] + s) * wd;
            for c in 0..nj {
                f(sl, c, cs[j0 + c] - r0, cs[j0 + c + 1] - r0);
            }
        }
    }

    /// Row-invariant term `t`'s per-cluster values `cvals` onto the rows of
    /// each of the chunk's `nj` clusters in `vals` (first row `r0`, first
    /// cluster `j0`).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn broadcast(
        &self,
        t: usize,
        states: &Range<usize>,
        nj: usize,
        r0: usize,
        j0: usize,
        cvals: &[f64],
        vals: &mut [f64],
    ) {
        self.each_cluster_slot((t, states), (nj, r0, j0), |sl, c, i0, i1| {
            vals[sl + i0..sl + i1].fill(cvals[sl + c]);
        });
    }

    /// Row-invariant term `t`'s weights in `w` summed (times the rows'
    /// frequencies `freq`) over the rows of each of the chunk's `nj`
    /// clusters into `cw`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn gather(
        &self,
        t: usize,
        nj: usize,
        r0: usize,
        j0: usize,
        freq: &[f64],
        w: &[f64],
        cw: &mut [f64],
    ) {
        let all = 0..self.plan.terms[t].n_states;
        self.each_cluster_slot((t, &all), (nj, r0, j0), |sl, c, i0, i1| {
            cw[sl + c] = w[sl + i0..sl + i1]
                .iter()
                .zip(&freq[i0..i1])
                .map(|(w, f)| w * f)
                .sum();
        });
    }

    /// Whether term `t`'s dimensions hold the same node at passes `a` and
    /// `b` in each of the chunk's `nj` clusters (node coordinates `z`), so
    /// that its values, and its columns, are the same at both.
    #[inline(always)]
    fn same_node(
        &self,
        t: usize,
        nj: usize,
        a: usize,
        b: usize,
        (n_pass, z): (usize, &[f64]),
    ) -> bool {
        let dims = self.plan.dims;
        (0..nj).all(|c| {
            self.layout.term_dims[t]
                .iter()
                .all(|&d| z[(c * n_pass + a) * dims + d] == z[(c * n_pass + b) * dims + d])
        })
    }

    /// One chunk, on the widest vector instructions this processor has:
    /// the chunk's loops compiled for AVX2 and FMA where the processor has
    /// them (detected at run time), for the baseline otherwise. Both give
    /// the same results: Rust never fuses a multiply and an add on its
    /// own, so the instructions differ only in width.
    fn chunk(
        &self,
        prep: &Prepared,
        c: usize,
        want: Want,
        adapt: Option<&Adaptation>,
        (table, shared): (Option<&NodeTable>, Option<&moment::Shared>),
        ws: &mut Workspace,
    ) -> ChunkOut {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            #[allow(unsafe_code)]
            // SAFETY: `chunk_avx2` only requires the avx2 and fma target
            // features, and the processor was just found to have both.
            return unsafe { self.chunk_avx2(prep, c, want, adapt, (table, shared), ws) };
        }
        self.chunk_body(prep, c, want, adapt, (table, shared), ws)
    }

    /// [`Self::chunk_body`] compiled for AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn chunk_avx2(
        &self,
        prep: &Prepared,
        c: usize,
        want: Want,
        adapt: Option<&Adaptation>,
        (table, shared): (Option<&NodeTable>, Option<&moment::Shared>),
        ws: &mut Workspace,
    ) -> ChunkOut {
        self.chunk_body(prep, c, want, adapt, (table, shared), ws)
    }

    #[inline(always)]
    fn chunk_body(
        &self,
        prep: &Prepared,
        c: usize,
        want: Want,
        adapt: Option<&Adaptation>,
        (table, shared): (Option<&NodeTable>, Option<&moment::Shared>),
        ws: &mut Workspace,
    ) -> ChunkOut {
        let moment = (shared, &self.layout.moments, &self.layout.blocks);
        if let (Some(sh), Some(mf), Some(bl)) = moment {
            return self.chunk_moments(prep, c, want, adapt, (mf, bl, sh), ws);
        }
        let plan = &*self.plan;
        let cx = self.chunk_cx(c);
        let (nr, nj) = (cx.row_j.len(), cx.rows_of.len());
        let nc = plan.n_combos;
        let n_pass = self.layout.n_passes();
        self.chunk_prologue(prep, cx, adapt, table, ws);
        let mut out = ChunkOut::empty(want, nr * nc, nj);
        let want_junctions = want.moments && !self.layout.steps.is_empty();
        if want_junctions {
            out.junctions = vec![(vec![f64::NAN; nj], vec![f64::NAN; nj]); self.layout.steps.len()];
        }
        // first sweep: the cluster log-density of every pass
        let need_w = want.gradient || want.information || want.meat || want.posteriors;
        ws.pass_ll.clear();
        ws.pass_ll.resize(nj * n_pass, 0.0);
        let blocks = self.blocks_hold(nj, ws);
        if let Some(bl) = blocks {
            self.first_sweep_blocked(prep, bl, cx, want_junctions, ws, &mut out);
        } else {
            self.first_sweep(prep, cx, need_w, want_junctions, ws, &mut out);
        }
        self.pass_posteriors(nj, &cx.cluster_weight, want, ws, &mut out);
        if !out.loglik.is_finite() {
            return out;
        }
        if want.moments && plan.dims > 0 {
            self.unit_moments(nj, ws, &mut out);
            if let Some(mf) = &self.layout.moments {
                self.plain_inner_moments(mf, &mut out.moments);
            }
        }
        if !need_w {
            return out;
        }
        // second sweep: posterior weights of the term states
        let wd = self.layout.width;
        for sl in 0..self.layout.stride {
            ws.w[sl * wd..sl * wd + nr].fill(0.0);
        }
        let (mut grads, mut infos) = self.term_accumulators(want);
        if want.meat {
            ws.cluster_scores.clear();
            ws.cluster_scores.resize(nj * plan.n_ext, 0.0);
        }
        ws.mom.fill(0.0);
        ws.pending.fill(usize::MAX);
        let mut acc = Acc {
            grads: &mut grads,
            infos: &mut infos,
        };
        if let Some(bl) = blocks {
            self.second_sweep_blocked(prep, bl, cx, want, ws, &mut acc, &mut out);
        } else {
            self.second_sweep(prep, cx, want, ws, &mut acc, &mut out);
        }
        self.chunk_epilogue(prep, cx, want, ws, &mut acc);
        out.grads = grads;
        out.infos = infos;
        if want.meat {
            out.meat = self.chunk_meat(nj, &cx.cluster_weight, ws);
        }
        out
    }

    /// Per term, its gradient and information accumulators (empty unless
    /// wanted).
    fn term_accumulators(&self, want: Want) -> (Vec<Vec<f64>>, Vec<InfoAcc>) {
        let terms = &self.plan.terms;
        let grads = if want.gradient {
            terms.iter().map(|t| vec![0.0; t.n_term_params()]).collect()
        } else {
            Vec::new()
        };
        let infos = if want.information {
            terms.iter().map(InfoAcc::new).collect()
        } else {
            Vec::new()
        };
        (grads, infos)
    }

    /// Chunk `c`'s rows and clusters.
    #[inline(always)]
    fn chunk_cx(&self, c: usize) -> &ChunkCx {
        &self.cxs[c]
    }

    /// What every pass of a chunk shares: its nodes and local data, the
    /// node terms' node-free parts and the fixed terms' values.
    #[inline(always)]
    fn chunk_prologue(
        &self,
        prep: &Prepared,
        cx: &ChunkCx,
        adapt: Option<&Adaptation>,
        table: Option<&NodeTable>,
        ws: &mut Workspace,
    ) {
        let j1 = cx.j0 + cx.rows_of.len();
        ws.term_pass.fill(usize::MAX);
        ws.logs_due.fill(None);
        ws.col_pass.fill(usize::MAX);
        self.chunk_nodes(cx, j1, adapt, table, ws);
        self.chunk_terms(prep, cx, ws, &[]);
    }

    /// The node terms' node-free parts, once for all passes, and the
    /// fixed terms' values.
    #[inline(always)]
    fn chunk_terms(&self, prep: &Prepared, cx: &ChunkCx, ws: &mut Workspace, skip: &[usize]) {
        let plan = &*self.plan;
        let (r0, r1, nr) = (cx.r0, cx.r1, cx.row_j.len());
        if let Some(local) = ws.local.as_mut() {
            let kept = self.patterns.get(cx.c);
            if kept.is_none_or(|k| k.get().is_none()) {
                // the node columns at a unit node (their data column, or
                // 1), where each is not zero if it ever is, for the
                // patterns of the rows' non-zero covariates (`node_pass`
                // writes them anew)
                ws.col_pass.fill(usize::MAX);
                for (v, vc) in plan.virtual_cols.iter().enumerate() {
                    let col = plan.n_data_cols + v;
                    match vc.mult {
                        None => local.columns[col][..nr].fill(1.0),
                        Some(m) => {
                            let (src, dst) = two_columns(&mut local.columns, m, col);
                            dst[..nr].copy_from_slice(&src[..nr]);
                        }
                    }
                }
                for &t in &self.layout.node_terms {
                    let at_nodes = !self.layout.row_invariant[t]
                        && !self.layout.linear.iter().any(|l| l.term == t);
                    ws.patterns[t] = at_nodes
                        .then(|| {
                            let nc0 = plan.n_data_cols;
                            eval::term_row_pattern(&plan.terms[t], local, (0, nr), nc0)
                        })
                        .flatten();
                }
                if let Some(k) = kept {
                    // with the fixed terms' (on the data's own rows)
                    let mut all = ws.patterns.clone();
                    for &t in &self.layout.fixed_terms {
                        let nc0 = plan.n_data_cols;
                        all[t] = eval::term_row_pattern(&plan.terms[t], &self.data, (r0, r1), nc0);
                    }
                    let _ = k.set(all);
                }
            }
            for &t in &self.layout.node_terms {
                let (term, tp, slots) = (&plan.terms[t], &prep.terms[t], self.layout.slots(t));
                let nc0 = plan.n_data_cols;
                ws.has_base[t] = !self.layout.row_invariant[t]
                    && eval::term_base(term, tp, nc0, local, 0, nr, slots, &mut ws.base);
                ws.has_base_exps[t] = ws.has_base[t] && self.layout.product_form && {
                    ws.base_exps.resize(ws.base.len(), 0.0);
                    eval::term_base_exps(term, slots, nr, &ws.base, &mut ws.base_exps)
                };
            }
        }
        for &t in &self.layout.fixed_terms {
            if skip.contains(&t) {
                continue;
            }
            if let Some(d) = &self.distinct[t] {
                self.distinct_values(prep, t, d, cx, ws);
                continue;
            }
            eval::term_values(
                &plan.terms[t],
                &prep.terms[t],
                &self.data,
                r0,
                r1,
                self.layout.slots(t),
                &mut ws.scratch,
                &mut ws.vals,
            );
            self.mask_cluster_level(t, &cx.first_row, &mut ws.vals);
            if self.layout.product_form {
                let all = 0..plan.terms[t].n_states;
                self.exp_slots(t, &all, nr, &ws.vals, &mut ws.evals);
            }
        }
    }

    /// The first sweep of the general loop: every pass's node terms, the
    /// rows' likelihoods given it and the clusters' log-densities given it
    /// into `ws.pass_ll`; with `need_w`, the combinations' posteriors given
    /// each pass kept in `ws.cache` when they fit (at most 16 MB per
    /// worker).
    #[inline(always)]
    fn first_sweep(
        &self,
        prep: &Prepared,
        cx: &ChunkCx,
        need_w: bool,
        want_junctions: bool,
        ws: &mut Workspace,
        out: &mut ChunkOut,
    ) {
        let nr = cx.row_j.len();
        let nc = self.plan.n_combos;
        let wd = self.layout.width;
        let nq = self.grid.n_nodes();
        let n_pass = self.layout.n_passes();
        let freq = &self.data.weights[cx.r0..cx.r1];
        let cache = need_w && n_pass > 1 && n_pass * nc * wd <= 2 << 20;
        ws.cached = cache;
        if cache {
            ws.cache.resize(n_pass * nc * wd, 0.0);
        }
        for b in 0..self.layout.combos_of_between.len() {
            for q in 0..nq {
                let pass = b * nq + q;
                if self.plan.dims > 0 {
                    self.node_pass(prep, (b, pass), &cx.row_j, cx.j0, ws, true, &[]);
                }
                if want_junctions && pass == 0 {
                    self.ensure_logs(prep, ws);
                    self.junctions(prep, pass, &cx.row_j, cx.j0, ws, &mut out.junctions);
                }
                let normalise = need_w && (n_pass == 1 || cache);
                if self.layout.product_form {
                    self.within_product(prep, b, nr, ws, normalise);
                } else {
                    self.within(b, nr, ws, normalise);
                }
                if cache {
                    for &k in &self.layout.combos_of_between[b] {
                        let at = (pass * nc + k) * wd;
                        ws.cache[at..at + nr].copy_from_slice(&ws.lj[k * wd..k * wd + nr]);
                    }
                }
                if self.layout.product_form && !all_in_range(&ws.sum[..nr], PRODUCT_SMALL) {
                    // (a row too small for the running product takes its
                    // log-likelihood from the log-densities)
                    self.ensure_logs(prep, ws);
                }
                for (j, &(i0, i1)) in cx.rows_of.iter().enumerate() {
                    if self.layout.product_form {
                        let ll = self.log_product(b, i0, i1, ws);
                        ws.pass_ll[j * n_pass + pass] = ws.log_w[j * n_pass + pass] + ll;
                        continue;
                    }
                    let ll = &ws.row_ll[i0..i1];
                    let sum: f64 = if self.data.clustered {
                        ll.iter().zip(&freq[i0..i1]).map(|(l, f)| f * l).sum()
                    } else {
                        ll.iter().sum()
                    };
                    ws.pass_ll[j * n_pass + pass] = ws.log_w[j * n_pass + pass] + sum;
                }
            }
        }
    }

    /// The second sweep of the general loop: each pass's posterior times
    /// the combinations' posteriors given it into the states' weights
    /// `ws.w` (and the rows' posteriors), the node terms accumulated when
    /// their nodes change.
    #[inline(always)]
    fn second_sweep(
        &self,
        prep: &Prepared,
        cx: &ChunkCx,
        want: Want,
        ws: &mut Workspace,
        acc: &mut Acc<'_>,
        out: &mut ChunkOut,
    ) {
        let plan = &*self.plan;
        let (nr, nj) = (cx.row_j.len(), cx.rows_of.len());
        let (nc, nt) = (plan.n_combos, plan.terms.len());
        let wd = self.layout.width;
        let dims = plan.dims;
        let nq = self.grid.n_nodes();
        let n_pass = self.layout.n_passes();
        let freq = &self.data.weights[cx.r0..cx.r1];
        let cache = ws.cached;
        let acc_nodes = dims > 0 && (want.gradient || want.information || want.meat);
        for b in 0..self.layout.combos_of_between.len() {
            for q in 0..nq {
                let pass = b * nq + q;
                // a pass of negligible posterior in every cluster of the
                // chunk adds nothing that counts (see NEGLIGIBLE_PASS)
                if n_pass > 1
                    && (0..nj).all(|j| ws.pass_ll[j * n_pass + pass] < crate::NEGLIGIBLE_PASS)
                {
                    continue;
                }
                if n_pass > 1 {
                    if dims > 0 {
                        if acc_nodes {
                            let (row_j, j0) = (&cx.row_j, cx.j0);
                            self.flush_node_terms(
                                prep,
                                Some(pass),
                                nj,
                                freq,
                                want,
                                row_j,
                                j0,
                                ws,
                                acc,
                            );
                        }
                        self.node_pass(prep, (b, pass), &cx.row_j, cx.j0, ws, !cache, &[]);
                    }
                    if !cache && self.layout.product_form {
                        self.within_product(prep, b, nr, ws, true);
                    } else if !cache {
                        self.within(b, nr, ws, true);
                    }
                }
                for (j, &(i0, i1)) in cx.rows_of.iter().enumerate() {
                    ws.pass_post[i0..i1].fill(ws.pass_ll[j * n_pass + pass]);
                }
                // the combinations' posteriors given the pass: kept from
                // the first sweep, or just computed
                let lj_pass: &[f64] = if cache && n_pass > 1 {
                    &ws.cache[pass * nc * wd..(pass + 1) * nc * wd]
                } else {
                    &ws.lj[..nc * wd]
                };
                let pass_post = &ws.pass_post[..nr];
                for &k in &self.layout.combos_of_between[b] {
                    let lj = &lj_pass[k * wd..k * wd + nr];
                    if want.posteriors {
                        let rows = out.posteriors.chunks_exact_mut(nc);
                        for ((row, &l), &p) in rows.zip(lj).zip(pass_post) {
                            row[k] += l * p;
                        }
                    }
                    // (zipped slices: indexing would reload the buffers'
                    // pointers at every row and keep the loop scalar)
                    for &sl in &self.layout.slot_of_combo[k * nt..(k + 1) * nt] {
                        let sl = sl as usize;
                        let wrow = &mut ws.w[sl * wd..sl * wd + nr];
                        for ((wv, &l), &p) in wrow.iter_mut().zip(lj).zip(pass_post) {
                            *wv += l * p;
                        }
                    }
                }
                if acc_nodes {
                    for &t in &self.layout.node_terms {
                        if ws.pending[t] == usize::MAX {
                            ws.pending[t] = pass;
                        }
                    }
                }
            }
        }
    }

    /// After the second sweep: the node terms still pending, the linear
    /// node terms from their moments and the fixed terms, accumulated.
    #[inline(always)]
    fn chunk_epilogue(
        &self,
        prep: &Prepared,
        cx: &ChunkCx,
        want: Want,
        ws: &mut Workspace,
        acc: &mut Acc<'_>,
    ) {
        let (nr, nj) = (cx.row_j.len(), cx.rows_of.len());
        let (r0, r1, j0, row_j) = (cx.r0, cx.r1, cx.j0, &cx.row_j);
        let freq = &self.data.weights[r0..r1];
        let dims = self.plan.dims;
        if dims > 0 && (want.gradient || want.information || want.meat) {
            self.flush_node_terms(prep, None, nj, freq, want, row_j, j0, ws, acc);
            self.accumulate_linear(prep, freq, want, row_j, j0, nr, ws, acc.grads, acc.infos);
        }
        let kept = self.kept_patterns(Some(cx.c));
        for &t in &self.layout.fixed_terms {
            self.mask_cluster_level(t, &cx.first_row, &mut ws.w);
            let mut want = want;
            if let Some(d) = &self.distinct[t]
                && (want.gradient || want.information)
            {
                let grad = want.gradient.then(|| acc.grads[t].as_mut_slice());
                let info = want.information.then(|| &mut acc.infos[t]);
                self.distinct_accumulate(prep, t, d, cx, freq, ws, grad, info);
                (want.gradient, want.information) = (false, false);
            }
            if !(want.gradient || want.information || want.meat) {
                continue;
            }
            let pattern = kept.and_then(|p| p[t].as_ref());
            self.accumulate(
                prep,
                t,
                &self.data,
                r0,
                r1,
                freq,
                want,
                row_j,
                j0,
                acc.grads,
                acc.infos,
                (&ws.w, None),
                (pattern, &mut ws.scratch),
                &mut ws.cluster_scores,
            );
        }
    }

    /// Each (cluster, pass)'s node into `ws.z` and log weight into
    /// `ws.log_w` (from the evaluation's [`NodeTable`], else by
    /// [`crate::nodes::node_of`]), and the chunk's local copy of the data with room for
    /// the node columns (without random effects: one pass of weight 1 and
    /// no copy).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn chunk_nodes(
        &self,
        cx: &ChunkCx,
        j1: usize,
        adapt: Option<&Adaptation>,
        table: Option<&NodeTable>,
        ws: &mut Workspace,
    ) {
        let j0 = cx.j0;
        let plan = &*self.plan;
        let dims = plan.dims;
        let nj = j1 - j0;
        let nq = self.grid.n_nodes();
        let n_pass = self.layout.n_passes();
        ws.z_passes = n_pass;
        if dims == 0 {
            self.release_local(ws);
            ws.local = None;
            ws.log_w.clear();
            ws.log_w.resize(nj * n_pass, self.grid.log_weights[0]);
            return;
        }
        self.chunk_local(cx, j1, ws);
        ws.z.resize(nj * n_pass * dims, 0.0);
        ws.log_w.resize(nj * n_pass, 0.0);
        if let Some(t) = table {
            ws.z.copy_from_slice(&t.z[j0 * n_pass * dims..j1 * n_pass * dims]);
            ws.log_w.copy_from_slice(&t.log_w[j0 * n_pass..j1 * n_pass]);
            return;
        }
        for j in j0..j1 {
            for b in 0..self.layout.combos_of_between.len() {
                let at = (j - j0) * n_pass + b * nq;
                let (z, log_w) = (
                    &mut ws.z[at * dims..(at + nq) * dims],
                    &mut ws.log_w[at..at + nq],
                );
                nodes_of(&self.grid, adapt, j, b, z, log_w);
            }
        }
    }

    /// The chunk's local copy of the data with room for the node columns
    /// (0, as a fresh copy has them), and of its clusters' first rows for
    /// the row-invariant terms. The copies are the chunk's kept ones
    /// where the backend keeps them ([`CpuBackend::locals`]; the
    /// workspace's copies of another chunk go back to that chunk), else
    /// made in the workspace's buffers. Nothing writes a copy's data
    /// columns, only its node columns.
    #[inline(always)]
    fn chunk_local(&self, cx: &ChunkCx, j1: usize, ws: &mut Workspace) {
        let (c, r0, r1, j0) = (cx.c, cx.r0, cx.r1, cx.j0);
        let extra = self.plan.virtual_cols.len();
        if ws.local_chunk != Some(c) || ws.local.is_none() {
            self.release_local(ws);
            let kept = self
                .locals
                .get(c)
                .and_then(|m| m.lock().unwrap_or_else(|e| e.into_inner()).take());
            match (kept, ws.local.as_mut()) {
                (Some((local, firsts)), _) => {
                    ws.local = Some(local);
                    ws.firsts = firsts;
                }
                (None, Some(local)) => {
                    self.data.local_copy_into(r0, r1, extra, local);
                    ws.firsts = self.chunk_firsts(j0, j1);
                }
                (None, None) => {
                    ws.local = Some(self.data.local_copy(r0, r1, extra));
                    ws.firsts = self.chunk_firsts(j0, j1);
                }
            }
            ws.local_chunk = Some(c);
            self.find_col_rows(r0, r1, ws);
        }
        // (the node columns need no zeroing here: a copy starts them at 0,
        // `node_pass` writes a column on every row or, where it has
        // `col_rows`, on the rows whose multiplier is not 0, and the
        // other rows hold 0 from the copy or from `chunk_terms`' unit
        // node, which copies the multiplier there)
        if ws.firsts.is_some() {
            ws.first_j.clear();
            ws.first_j.extend(j0..j1);
            let n = self.layout.stride * self.layout.width;
            ws.cvals.resize(n, 0.0);
            ws.cw.resize(n, 0.0);
        }
    }

    /// Per node column with a data column for multiplier, the rows
    /// `r0..r1` (numbered from `r0`) where that column is not zero, into
    /// `ws.col_rows`, where they are at most half the rows.
    fn find_col_rows(&self, r0: usize, r1: usize, ws: &mut Workspace) {
        for (rows, vc) in ws.col_rows.iter_mut().zip(&self.plan.virtual_cols) {
            *rows = vc.mult.and_then(|m| {
                let col = &self.data.columns[m][r0..r1];
                let nz: Vec<u32> = (0..col.len() as u32)
                    .filter(|&i| col[i as usize] != 0.0)
                    .collect();
                (2 * nz.len() <= col.len()).then_some(nz)
            });
        }
    }

    /// The first rows of clusters `j0..j1` (one each, frequency 1), with
    /// room for the node columns, for the row-invariant terms; `None`
    /// without such terms.
    fn chunk_firsts(&self, j0: usize, j1: usize) -> Option<EngineData> {
        if !self.layout.row_invariant.iter().any(|&r| r) {
            return None;
        }
        let cs = &self.data.cluster_starts;
        let nj = j1 - j0;
        let mut firsts = self.data.local_copy(cs[j0], cs[j0], 0);
        for (col, data) in firsts.columns.iter_mut().zip(&self.data.columns) {
            col.extend((j0..j1).map(|j| data[cs[j]]));
        }
        let extra = self.plan.virtual_cols.len();
        firsts.columns.extend((0..extra).map(|_| vec![0.0; nj]));
        firsts.weights = vec![1.0; nj];
        firsts.cluster_starts = (0..=nj).collect();
        Some(firsts)
    }

    /// Chunk `c`'s kept patterns, one per term, once found.
    fn kept_patterns(&self, c: Option<usize>) -> Option<&[Option<RowPattern>]> {
        Some(self.patterns.get(c?)?.get()?.as_slice())
    }

    /// Node term `t`'s pattern of its rows' non-zero covariates in chunk
    /// `c`: the chunk's kept one, else the workspace's (`own`).
    fn pattern_of<'a>(
        &'a self,
        t: usize,
        c: Option<usize>,
        own: &'a [Option<RowPattern>],
    ) -> Option<&'a RowPattern> {
        self.kept_patterns(c)
            .map_or(own[t].as_ref(), |p| p[t].as_ref())
    }

    /// Gives the local copies `ws` holds back to their chunk, where the
    /// backend keeps them and that chunk has none (another workspace may
    /// have made them meanwhile).
    fn release_local(&self, ws: &mut Workspace) {
        if let Some(prev) = ws.local_chunk.take()
            && let Some(slot) = self.locals.get(prev)
        {
            let mut kept = slot.lock().unwrap_or_else(|e| e.into_inner());
            if kept.is_none() {
                *kept = ws.local.take().map(|local| (local, ws.firsts.take()));
            }
        }
    }

    /// Each cluster's log-likelihood (a log-sum-exp over its passes, added
    /// to `out.loglik` with the cluster's weight) and the posteriors of its
    /// passes, which replace their log-densities in `ws.pass_ll`. A cluster
    /// of log-likelihood −∞ makes the chunk's −∞.
    #[inline(always)]
    fn pass_posteriors(
        &self,
        nj: usize,
        cluster_weight: &[f64],
        want: Want,
        ws: &mut Workspace,
        out: &mut ChunkOut,
    ) {
        let n_pass = self.layout.n_passes();
        for j in 0..nj {
            let p = &mut ws.pass_ll[j * n_pass..(j + 1) * n_pass];
            let m = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if !m.is_finite() {
                out.loglik = f64::NEG_INFINITY;
                continue;
            }
            // one pass (single-level models): the cluster's log-likelihood
            // is the pass's, its posterior 1 (what the general case gives
            // too, exp(0) = 1 and ln(1) = 0, without the calls)
            let ll = if n_pass == 1 {
                p[0] = 1.0;
                m
            } else {
                // the exps in place first, then their sum: a sum of
                // exps in one loop would keep the exps scalar
                for v in p.iter_mut() {
                    *v = fastmath::exp(*v - m);
                }
                let s = fastmath::sum(p);
                let inv = 1.0 / s;
                for v in p.iter_mut() {
                    *v *= inv;
                }
                m + fastmath::ln(s)
            };
            out.loglik += cluster_weight[j] * ll;
            if want.posteriors {
                out.cluster_ll[j] = ll;
            }
        }
    }

    /// Per unit (cluster, between-level combination, sides of the steps:
    /// see [`Adaptation`]): its posterior probability, and the posterior
    /// mean and second moment of z given it, into `out.moments` (from the
    /// pass posteriors in `ws.pass_ll`).
    #[inline(always)]
    fn unit_moments(&self, nj: usize, ws: &Workspace, out: &mut ChunkOut) {
        let dims = self.plan.dims;
        let nq = self.grid.n_nodes();
        let n_pass = self.layout.n_passes();
        let n_between = self.layout.combos_of_between.len();
        let per = 1 + dims + dims * dims;
        let n_sides = 1usize << out.junctions.len();
        out.moments = vec![0.0; nj * n_between * n_sides * per];
        if n_sides == 1 && (1..=4).contains(&dims) {
            // one unit per (cluster, combination): its sums in registers
            for j in 0..nj {
                for b in 0..n_between {
                    let at = j * n_pass + b * nq;
                    let p = &ws.pass_ll[at..at + nq];
                    let z = &ws.z[at * dims..(at + nq) * dims];
                    let mo =
                        &mut out.moments[(j * n_between + b) * per..(j * n_between + b + 1) * per];
                    match dims {
                        1 => moments_in_registers::<1>(p, z, mo),
                        2 => moments_in_registers::<2>(p, z, mo),
                        3 => moments_in_registers::<3>(p, z, mo),
                        _ => moments_in_registers::<4>(p, z, mo),
                    }
                    if mo[0] > 0.0 {
                        let inv = 1.0 / mo[0];
                        mo[1..].iter_mut().for_each(|v| *v *= inv);
                    }
                }
            }
            return;
        }
        for j in 0..nj {
            let centres: Vec<f64> = out
                .junctions
                .iter()
                .map(|(lo, hi)| crate::junction_centre(lo[j], hi[j]))
                .collect();
            for b in 0..n_between {
                for q in 0..nq {
                    let at = j * n_pass + b * nq + q;
                    let p = ws.pass_ll[at];
                    let z = &ws.z[at * dims..(at + 1) * dims];
                    let mut side = 0;
                    for (i, st) in self.layout.steps.iter().enumerate() {
                        if z[st.dim] > centres[i] {
                            side |= 1 << i;
                        }
                    }
                    let unit = (j * n_between + b) * n_sides + side;
                    let mo = &mut out.moments[unit * per..(unit + 1) * per];
                    mo[0] += p;
                    for a in 0..dims {
                        mo[1 + a] += p * z[a];
                        for c2 in 0..dims {
                            mo[1 + dims + a * dims + c2] += p * z[a] * z[c2];
                        }
                    }
                }
            }
            for unit in (j * n_between * n_sides)..((j + 1) * n_between * n_sides) {
                let mo = &mut out.moments[unit * per..(unit + 1) * per];
                if mo[0] > 0.0 {
                    let inv = 1.0 / mo[0];
                    mo[1..].iter_mut().for_each(|v| *v *= inv);
                }
            }
        }
    }

    /// The chunk's part of the MLR meat: Σ_j f_j s_j s_j' over its
    /// clusters' scores (upper triangle, `n_ext x n_ext`).
    #[inline(always)]
    fn chunk_meat(&self, nj: usize, cluster_weight: &[f64], ws: &Workspace) -> Vec<f64> {
        let n_ext = self.plan.n_ext;
        let mut meat = vec![0.0; n_ext * n_ext];
        for j in 0..nj {
            let s = &ws.cluster_scores[j * n_ext..(j + 1) * n_ext];
            let f = cluster_weight[j];
            for a in 0..n_ext {
                let sa = f * s[a];
                if sa == 0.0 {
                    continue;
                }
                let row = &mut meat[a * n_ext..(a + 1) * n_ext];
                for (mv, sb) in row[a..].iter_mut().zip(&s[a..]) {
                    *mv += sa * sb;
                }
            }
        }
        meat
    }

    /// Node term `t`'s densities at pass `p`'s node, every state's, into
    /// `ws.evals`, where its kind takes them from its node-free part's
    /// exponentials ([`eval::term_base_exps`]: one exponential per row
    /// for all the states), at the node columns as they stand, which hold
    /// that node when the term's weights are flushed (the accumulation
    /// reads them too); for a second sweep that computes no values (it
    /// kept the first's posteriors, or it is the moment form's), or whose
    /// last values were at another node or for fewer states; false,
    /// nothing written, where the kind does not split them.
    fn split_densities(&self, prep: &Prepared, t: usize, p: usize, ws: &mut Workspace) -> bool {
        let Some(local) = ws.local.as_ref() else {
            return false;
        };
        if !(self.layout.product_form && ws.has_base_exps[t]) {
            return false;
        }
        let (term, tp, slots) = (&self.plan.terms[t], &prep.terms[t], self.layout.slots(t));
        let (all, nr, nc0) = (0..term.n_states, local.n_rows(), self.plan.n_data_cols);
        let pattern = self.pattern_of(t, ws.local_chunk, &ws.patterns);
        let base = (&ws.base[..], Some(&ws.base_exps[..]), pattern);
        let out = OnBase::ProbsElseLogs {
            logs: &mut ws.vals[..],
            probs: &mut ws.evals[..],
        };
        let sc = &mut ws.scratch;
        if !eval::term_values_on_base(
            term,
            tp,
            all.clone(),
            nc0,
            local,
            0,
            nr,
            slots,
            base,
            sc,
            out,
        ) {
            // (a kind with base exponentials gives its densities)
            return false;
        }
        ws.term_pass[t] = p;
        ws.term_states[t] = all.clone();
        ws.logs_due[t] = Some(all);
        true
    }

    /// Whether `ws.evals` holds node term `t`'s densities, every state's,
    /// at pass `p`'s node in each of the chunk's `nj` clusters: in the
    /// product form, the last values computed for it (at `ws.term_pass`)
    /// were at the same node, for all its states.
    #[inline(always)]
    fn densities_at(&self, t: usize, p: usize, nj: usize, ws: &Workspace) -> bool {
        let last = ws.term_pass[t];
        self.layout.product_form
            && last != usize::MAX
            && ws.term_states[t] == (0..self.plan.terms[t].n_states)
            && self.same_node(t, nj, p, last, (ws.z_passes, &ws.z))
    }

    /// Accumulates the node terms whose weights in `ws.w` are pending
    /// (summed over consecutive passes holding the same node on the term's
    /// dimensions: accumulation is linear in the weights) and whose node
    /// changes at pass `next` (all of them with `None`, after the last
    /// pass): a linear term into its node moments, a curved one into the
    /// gradient, information and scores, from the node columns of the
    /// previous pass, which hold its node. Their weights are reset.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn flush_node_terms(
        &self,
        prep: &Prepared,
        next: Option<usize>,
        nj: usize,
        freq: &[f64],
        want: Want,
        row_j: &[usize],
        j0: usize,
        ws: &mut Workspace,
        acc: &mut Acc<'_>,
    ) {
        let wd = self.layout.width;
        let nr = row_j.len();
        for &t in &self.layout.node_terms {
            let p = ws.pending[t];
            if p == usize::MAX
                || next.is_some_and(|n| self.same_node(t, nj, p, n, (ws.z_passes, &ws.z)))
            {
                continue;
            }
            if let Some(lt) = self.layout.linear.iter().find(|l| l.term == t) {
                self.add_moments(lt, p, row_j, j0, ws);
            } else if let (true, Some(firsts)) = (self.layout.row_invariant[t], ws.firsts.as_ref())
            {
                let r0 = self.data.cluster_starts[j0];
                self.gather(t, nj, r0, j0, freq, &ws.w, &mut ws.cw);
                self.accumulate(
                    prep,
                    t,
                    firsts,
                    0,
                    nj,
                    &firsts.weights,
                    want,
                    &ws.first_j,
                    j0,
                    acc.grads,
                    acc.infos,
                    (&ws.cw, None),
                    (None, &mut ws.scratch),
                    &mut ws.cluster_scores,
                );
            } else if ws.local.is_some() {
                // the term's densities where they are at hand, or cheap
                let dens = self.densities_at(t, p, nj, ws) || self.split_densities(prep, t, p, ws);
                let given = dens.then_some(&ws.evals[..]);
                let pattern = self.pattern_of(t, ws.local_chunk, &ws.patterns);
                if let Some(local) = ws.local.as_ref() {
                    self.accumulate(
                        prep,
                        t,
                        local,
                        0,
                        nr,
                        freq,
                        want,
                        row_j,
                        j0,
                        acc.grads,
                        acc.infos,
                        (&ws.w, given),
                        (pattern, &mut ws.scratch),
                        &mut ws.cluster_scores,
                    );
                }
            }
            for s in 0..self.plan.terms[t].n_states {
                let sl = self.layout.offsets[t] + s;
                ws.w[sl * wd..sl * wd + nr].fill(0.0);
            }
            ws.pending[t] = usize::MAX;
        }
    }

    /// Adds the rows' posterior weights of linear term `lt` (in `ws.w`)
    /// times (1, z, z z'), z its node at pass `pass`, to its node moments.
    #[inline(always)]
    fn add_moments(
        &self,
        lt: &LinearTerm,
        pass: usize,
        row_j: &[usize],
        j0: usize,
        ws: &mut Workspace,
    ) {
        let wd = self.layout.width;
        let dims = self.plan.dims;
        let n_pass = ws.z_passes;
        let cs = &self.data.cluster_starts;
        let r0 = cs[j0];
        let nr = row_j.len();
        let nj = row_j.last().map_or(0, |&j| j + 1 - j0);
        let z = &ws.z;
        let clusters = (0..nj).map(|c| {
            let at = (c * n_pass + pass) * dims;
            (cs[j0 + c] - r0, cs[j0 + c + 1] - r0, &z[at..at + dims])
        });
        let nm = moments::n_moments(lt.dims.len());
        for s in 0..self.plan.terms[lt.term].n_states {
            let sl = self.layout.offsets[lt.term] + s;
            let m0 = (lt.offset + s * nm) * wd;
            moments::add_row_moments(
                &mut ws.mom[m0..m0 + nm * wd],
                wd,
                &lt.dims,
                &ws.w[sl * wd..sl * wd + nr],
                clusters.clone(),
            );
        }
    }

    /// Gradient, information and cluster scores of the linear node terms
    /// from their node moments: for each state, the rows' sigma points
    /// written into the node columns, with the state's weight alone (see
    /// [`crate::moments`]).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn accumulate_linear(
        &self,
        prep: &Prepared,
        freq: &[f64],
        want: Want,
        row_j: &[usize],
        j0: usize,
        nr: usize,
        ws: &mut Workspace,
        grads: &mut [Vec<f64>],
        infos: &mut [InfoAcc],
    ) {
        let plan = &*self.plan;
        let wd = self.layout.width;
        let Some(mut local) = ws.local.take() else {
            return;
        };
        for lt in &self.layout.linear {
            let t = lt.term;
            let k = lt.dims.len();
            let nm = moments::n_moments(k);
            let ns = plan.terms[t].n_states;
            let mut chol = vec![0.0; k * k];
            let mut pts = vec![0.0; nr * 2 * k * k];
            let mut wts = vec![0.0; nr];
            for s in 0..ns {
                let m0 = (lt.offset + s * nm) * wd;
                let mom = &ws.mom[m0..m0 + nm * wd];
                for i in 0..nr {
                    wts[i] = moments::sigma_points(
                        mom,
                        wd,
                        k,
                        i,
                        &mut chol,
                        &mut pts[i * 2 * k * k..(i + 1) * 2 * k * k],
                    );
                }
                for s2 in 0..ns {
                    let sl = self.layout.offsets[t] + s2;
                    let row = &mut ws.w[sl * wd..sl * wd + nr];
                    if s2 == s {
                        row.copy_from_slice(&wts);
                    } else {
                        row.fill(0.0);
                    }
                }
                for p in 0..2 * k {
                    for (v, vc) in plan.virtual_cols.iter().enumerate() {
                        let Some(a) = lt.dims.iter().position(|&d| d == vc.dim) else {
                            continue;
                        };
                        let col = plan.n_data_cols + v;
                        for i in 0..nr {
                            let m = vc.mult.map_or(1.0, |c| local.columns[c][i]);
                            local.columns[col][i] = pts[(i * 2 * k + p) * k + a] * m;
                        }
                    }
                    self.accumulate(
                        prep,
                        t,
                        &local,
                        0,
                        nr,
                        freq,
                        want,
                        row_j,
                        j0,
                        grads,
                        infos,
                        (&ws.w, None),
                        (None, &mut ws.scratch),
                        &mut ws.cluster_scores,
                    );
                }
            }
        }
        ws.local = Some(local);
    }

    /// Gradient, information and cluster scores of term `t` from the
    /// posterior weights in `w` (and the term's state probabilities on
    /// the rows where they are at hand: see
    /// [`eval::term_accumulate_given`]).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn accumulate(
        &self,
        prep: &Prepared,
        t: usize,
        data: &EngineData,
        d0: usize,
        d1: usize,
        freq: &[f64],
        want: Want,
        row_j: &[usize],
        j0: usize,
        grads: &mut [Vec<f64>],
        infos: &mut [InfoAcc],
        (w, probs): (&[f64], Option<&[f64]>),
        (pattern, scratch): (Option<&RowPattern>, &mut Scratch),
        cluster_scores: &mut [f64],
    ) {
        let term = &self.plan.terms[t];
        let clustered = self.data.clustered;
        if want.gradient || want.information {
            let (tp, slots) = (&prep.terms[t], self.layout.slots(t));
            let grad = want.gradient.then(|| grads[t].as_mut_slice());
            let info = want.information.then(|| &mut infos[t]);
            let given = (probs, pattern);
            eval::term_accumulate_given(
                term,
                tp,
                data,
                d0,
                d1,
                slots,
                w,
                freq,
                given,
                &mut *scratch,
                grad,
                info,
            );
        }
        if want.meat {
            let idx = &term.phi_index;
            let n_ext = self.plan.n_ext;
            eval::term_scores(
                term,
                &prep.terms[t],
                data,
                d0,
                d1,
                self.layout.slots(t),
                w,
                scratch,
                |i, slot, v| {
                    let pi = idx[slot];
                    if pi != NONE {
                        let m = if clustered { freq[i] } else { 1.0 };
                        cluster_scores[(row_j[i] - j0) * n_ext + pi as usize] += m * v;
                    }
                },
            );
        }
    }
}

/// Σ_q p_q (1, z_q, z_q z_q') over the nodes `z` (`D` per node) into
/// `mo` (mass, means, second moments; row-major), the sums kept in
/// registers ([`CpuBackend::unit_moments`] without step dimensions; the
/// same arithmetic in the same order as its general way).
#[inline(always)]
fn moments_in_registers<const D: usize>(p: &[f64], z: &[f64], mo: &mut [f64]) {
    let mut m0 = 0.0;
    let mut m1 = [0.0f64; D];
    let mut m2 = [[0.0f64; D]; D];
    for (&w, zq) in p.iter().zip(z.chunks_exact(D)) {
        m0 += w;
        for a in 0..D {
            let wa = w * zq[a];
            m1[a] += wa;
            for c in 0..D {
                m2[a][c] += wa * zq[c];
            }
        }
    }
    mo[0] += m0;
    for a in 0..D {
        mo[1 + a] += m1[a];
        for c in 0..D {
            mo[1 + D + a * D + c] += m2[a][c];
        }
    }
}

/// Column `src` to read and column `dst` to write, borrowed together.
fn two_columns(cols: &mut [Vec<f64>], src: usize, dst: usize) -> (&[f64], &mut [f64]) {
    debug_assert!(src < dst, "node columns come after the data columns");
    let (a, b) = cols.split_at_mut(dst);
    (&a[src], &mut b[0])
}

impl Backend for CpuBackend {
    fn describe(&self) -> String {
        match &self.note {
            None => format!("cpu ({} threads)", self.threads()),
            Some(note) => format!("cpu ({} threads); auto: {note}", self.threads()),
        }
    }

    fn plan(&self) -> &Plan {
        &self.plan
    }

    fn data(&self) -> &EngineData {
        &self.data
    }

    fn grid(&self) -> &Grid {
        &self.grid
    }

    fn shared_dims(&self) -> Vec<usize> {
        self.layout
            .moments
            .as_ref()
            .map_or_else(Vec::new, |m| m.inner_dims.clone())
    }

    fn counts(&self) -> [EvalCount; 4] {
        *self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn evaluate_adapted(
        &self,
        phi: &[f64],
        want: Want,
        adapt: Option<&Adaptation>,
    ) -> Result<Evaluation, BackendError> {
        let started = Instant::now();
        let ev = self.evaluate_timed(phi, want, adapt);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let c = &mut counts[want.kind()];
        c.count += 1;
        c.seconds += started.elapsed().as_secs_f64();
        c.row_passes += (self.data.n_rows() * self.layout.n_passes()) as f64;
        ev
    }
}

/// A workspace lent by [`CpuBackend::lend`], given back to the backend's
/// spares when dropped.
struct Lent<'a> {
    ws: Option<Workspace>,
    spare: &'a Mutex<Vec<Workspace>>,
}

impl Lent<'_> {
    fn get(&mut self) -> &mut Workspace {
        self.ws
            .as_mut()
            .expect("a lent workspace is held until dropped")
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(ws) = self.ws.take() {
            self.spare
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(ws);
        }
    }
}

impl CpuBackend {
    /// A workspace for chunks: a spare one, else a new one. Workspaces
    /// are kept across evaluations because making them is not free: the
    /// moment form's polynomials alone take megabytes per workspace, and
    /// making them in each evaluation cost about a tenth of a
    /// log-likelihood evaluation of the 4-class FMA-GoM (docs/gom.md). A
    /// chunk sets up what it reads (chunks share a workspace within an
    /// evaluation too).
    fn lend(&self) -> Lent<'_> {
        let l = &self.layout;
        let ws = self.spare.lock().unwrap_or_else(|e| e.into_inner()).pop();
        Lent {
            ws: Some(
                ws.unwrap_or_else(|| Workspace::new(&self.plan, l.stride, l.width, l.mom_slots)),
            ),
            spare: &self.spare,
        }
    }

    /// The nodes of `adapt` for every cluster: a cached table made with the
    /// same adaptation, otherwise a new one (built outside the lock, kept
    /// with the [`NODE_TABLES`] most recent). `None` without random effects
    /// or above [`crate::nodes::MAX_TABLE`] entries (the chunks map their
    /// nodes then).
    fn node_table(&self, adapt: Option<&Adaptation>) -> Option<Arc<NodeTable>> {
        if self.plan.dims == 0 {
            return None;
        }
        {
            let cached = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(t) = cached.iter().find(|t| t.adapt.as_ref() == adapt) {
                return Some(t.clone());
            }
        }
        let t = Arc::new(NodeTable::build(
            &self.grid,
            adapt,
            self.data.n_clusters(),
            self.layout.combos_of_between.len(),
        )?);
        let mut cached = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        if cached.len() >= NODE_TABLES {
            cached.remove(0);
        }
        cached.push(t.clone());
        Some(t)
    }

    fn evaluate_timed(
        &self,
        phi: &[f64],
        want: Want,
        adapt: Option<&Adaptation>,
    ) -> Result<Evaluation, BackendError> {
        let plan = &*self.plan;
        let prep = eval::prepare(plan, phi)?;
        let l = &self.layout;
        let n_chunks = l.chunks.len();
        let table = self.node_table(adapt);
        let table = table.as_deref();
        let mut totals = Totals::new(
            plan,
            &prep,
            &l.steps,
            want,
            self.data.n_rows(),
            self.data.n_clusters(),
        );
        // the moment form's shared moments
        let shared = self.moment_shared(&prep, adapt, want, true);
        let shared = shared.as_ref();
        let mut agg: Vec<Vec<f64>> = Vec::new();
        let mut w0 = 0;
        while w0 < n_chunks {
            let w1 = (w0 + WAVE).min(n_chunks);
            let outs: Vec<ChunkOut> = if w1 - w0 == 1 {
                // one chunk: no need to wake other threads
                let mut ws = self.lend();
                vec![self.chunk(&prep, w0, want, adapt, (table, shared), ws.get())]
            } else {
                self.install(|| {
                    (w0..w1)
                        .into_par_iter()
                        .map_init(
                            || self.lend(),
                            |ws, c| self.chunk(&prep, c, want, adapt, (table, shared), ws.get()),
                        )
                        .collect()
                })
            };
            for o in &outs {
                totals.add(o);
                if agg.is_empty() {
                    agg = o.poly.clone();
                } else {
                    for (a, p) in agg.iter_mut().zip(&o.poly) {
                        add_rows(a, p);
                    }
                }
            }
            w0 = w1;
        }
        if let Some(sh) = shared
            && (want.gradient || want.information)
            && !agg.is_empty()
            && let Some(o) = self.moment_inner_terms(&prep, sh, &agg, want)
        {
            totals.add(&o);
        }
        Ok(totals.finish(plan, &prep, want))
    }
}
