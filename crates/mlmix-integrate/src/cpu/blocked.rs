//! The blocked product form (see [`Blocks`]): the chunk loop of a
//! product-form plan run over blocks of passes instead of one pass at a
//! time. For each run of passes with the same outer nodes, the outer
//! terms' probabilities are computed once (per row and combination: their
//! product `a_rk`); then, cluster by cluster, the inner terms are
//! evaluated on a block of pseudo-rows (the cluster's first row with each
//! pass's node) into `v_k(pass)`, and the cluster's likelihood given each
//! pass is Π_r Σ_k a_rk v_k(pass), formed in loops over the passes. The
//! second sweep gives row r's combination k the weight
//! a_rk Σ_p post_p v_k(p) / s_r(p) (s_r(p) the row's likelihood given the
//! pass) and the inner terms' pseudo-row p the weight
//! v_k(p) Σ_r a_rk post_p / s_r(p). The results are the general product
//! loop's (the same products in the same order, the logs and the passes
//! of negligible posterior aside; the tests hold them to it to 1e-10),
//! without its per-pass work.

use mlmix_kernels::eval;
use mlmix_kernels::fastmath;
use mlmix_kernels::{EngineData, Prepared};

use super::{Acc, ChunkCx, CpuBackend, PRODUCT_SMALL, PRODUCT_TINY, Workspace};
use crate::finish::ChunkOut;
use crate::layout::Blocks;
use crate::{NEGLIGIBLE_PASS, Want};

/// The blocked form's buffers, reused across chunks. Per combination
/// buffers hold `width` entries per combination; pseudo-row buffers are
/// laid out as the chunk buffers (slot-major, `width` per slot), a block
/// being at most `width` passes.
#[derive(Default)]
pub(super) struct Buffers {
    /// The pseudo-rows: one cluster's first row, with the nodes of a
    /// block of passes in the node columns.
    data: Option<EngineData>,
    /// The inner terms' probabilities and weights at the pseudo-rows.
    evals: Vec<f64>,
    pub(super) w: Vec<f64>,
    /// Per combination and row of the chunk: the product of the outer
    /// terms' probabilities, `a_rk`.
    pub(super) coef: Vec<f64>,
    /// Per combination and pass of the block: the product of the inner
    /// terms' probabilities, `v_k`.
    pub(super) v: Vec<f64>,
    /// Per combination and pass: Σ_r a_rk post / s_r.
    h: Vec<f64>,
    /// Per combination and row: the row's posterior weight over the run.
    pub(super) wr: Vec<f64>,
    /// Per pass of the block: the running product, the logs taken out of
    /// it, a row's likelihood, and post / s.
    prod: Vec<f64>,
    lacc: Vec<f64>,
    s: Vec<f64>,
    g: Vec<f64>,
    /// Per group of [`LANES`] passes: whether it goes the general way.
    slow: Vec<bool>,
    /// Per pseudo-row: its cluster, and its frequency (1).
    row_j: Vec<usize>,
    ones: Vec<f64>,
    /// (combination, pass, weight) of the rows too small for their
    /// products in the block, whose posteriors come from logs.
    extra: Vec<(usize, usize, f64)>,
}

/// Passes that [`products_in_registers`] takes at once.
const LANES: usize = 8;

/// The products over rows `i0..i1` of Σ_k a_k[r] v_k[p], for each group of
/// [`LANES`] passes whose rows' sums are all at least [`PRODUCT_SMALL`]
/// (rescaled by a log below it, as [`CpuBackend::log_product`]), into
/// `prod` and `lacc`, the group marked done in `slow`; the other groups
/// (and the last passes, fewer than a group) are left marked. The sums,
/// running product and rescaling stay in registers across the rows; the
/// arithmetic, in the same order, is the general way's.
#[inline(always)]
fn products_in_registers<const K: usize>(
    a: [&[f64]; K],
    v: [&[f64]; K],
    (i0, i1): (usize, usize),
    prod: &mut [f64],
    lacc: &mut [f64],
    slow: &mut [bool],
) {
    let n = v[0].len();
    'group: for g in 0..n / LANES {
        let p0 = g * LANES;
        let vv: [[f64; LANES]; K] = std::array::from_fn(|k| {
            let mut x = [0.0; LANES];
            x.copy_from_slice(&v[k][p0..p0 + LANES]);
            x
        });
        let mut pr = [1.0f64; LANES];
        let mut la = [0.0f64; LANES];
        for r in i0..i1 {
            let mut s = [0.0f64; LANES];
            for k in 0..K {
                let ak = a[k][r];
                for l in 0..LANES {
                    s[l] += ak * vv[k][l];
                }
            }
            let mut bad = false;
            for x in s {
                // (`&`, not a short-circuiting range test: it vectorises)
                #[allow(clippy::manual_range_contains)]
                let ok = (x >= PRODUCT_SMALL) & (x <= f64::MAX);
                bad |= !ok;
            }
            if bad {
                continue 'group;
            }
            let mut low = false;
            for l in 0..LANES {
                pr[l] *= s[l];
                low |= pr[l] < PRODUCT_SMALL;
            }
            if low {
                for l in 0..LANES {
                    if pr[l] < PRODUCT_SMALL {
                        la[l] += pr[l].ln();
                        pr[l] = 1.0;
                    }
                }
            }
        }
        prod[p0..p0 + LANES].copy_from_slice(&pr);
        lacc[p0..p0 + LANES].copy_from_slice(&la);
        slow[g] = false;
    }
}

impl CpuBackend {
    /// The layout's blocks, if the chunk can run blocked: in each of its
    /// `nj` clusters the outer dimensions' nodes hold over every run (they
    /// do on the plain grid, and on the adapted one since adaptation
    /// factors in the grid's nesting order; checked, since the nodes come
    /// from the adaptation).
    #[inline(always)]
    pub(super) fn blocks_hold(&self, nj: usize, ws: &Workspace) -> Option<&Blocks> {
        let bl = self.layout.blocks.as_ref()?;
        let dims = self.plan.dims;
        let nq = self.grid.n_nodes();
        let n_pass = self.layout.n_passes();
        for c in 0..nj {
            for b in 0..self.layout.combos_of_between.len() {
                for &(q0, q1) in &bl.runs {
                    let at = |q: usize, d: usize| ws.z[(c * n_pass + b * nq + q) * dims + d];
                    for q in q0 + 1..q1 {
                        if bl.outer_dims.iter().any(|&d| at(q, d) != at(q0, d)) {
                            return None;
                        }
                    }
                }
            }
        }
        Some(bl)
    }

    /// Passes per block: the buffers' width, in whole groups of [`LANES`]
    /// where it holds one.
    #[inline(always)]
    pub(super) fn block_size(&self) -> usize {
        let wd = self.layout.width;
        if wd >= LANES { wd / LANES * LANES } else { wd }
    }

    /// Sizes the buffers for the chunk, and makes its pseudo-rows (on
    /// which the inner terms are evaluated at the nodes of a block).
    #[inline(always)]
    pub(super) fn blocked_buffers(&self, cx: &ChunkCx, ws: &mut Workspace) {
        let wd = self.layout.width;
        let blk = &mut ws.blk;
        // (in the buffers of the last chunk's, if any: a chunk's copy
        // made for every evaluation allocates nothing once they are large
        // enough)
        let extra = self.plan.virtual_cols.len();
        let mut data = match blk.data.take() {
            Some(mut d) => {
                self.data.local_copy_into(cx.r0, cx.r0 + 1, extra, &mut d);
                d
            }
            None => self.data.local_copy(cx.r0, cx.r0 + 1, extra),
        };
        for col in &mut data.columns {
            col.resize(wd, 0.0);
        }
        data.weights.clear();
        data.weights.resize(wd, 1.0);
        data.cluster_starts.clear();
        data.cluster_starts.extend([0, wd]);
        blk.data = Some(data);
        self.block_sizes(ws);
    }

    /// Sizes the buffers of the blocks' rows and combinations (those
    /// that the moment form's sweep uses too, which has no pseudo-rows).
    #[inline(always)]
    pub(super) fn block_sizes(&self, ws: &mut Workspace) {
        let wd = self.layout.width;
        let n = self.layout.stride * wd;
        let nc = self.plan.n_combos;
        let blk = &mut ws.blk;
        for buf in [&mut blk.evals, &mut blk.w] {
            buf.resize(n, 0.0);
        }
        for buf in [&mut blk.coef, &mut blk.v, &mut blk.h, &mut blk.wr] {
            buf.resize(nc * wd, 0.0);
        }
        for buf in [&mut blk.prod, &mut blk.lacc, &mut blk.s, &mut blk.g] {
            buf.resize(wd, 0.0);
        }
        blk.row_j.resize(wd, 0);
        blk.ones.resize(wd, 1.0);
    }

    /// The first sweep, blocked: every cluster's log-density given each
    /// pass into `ws.pass_ll`.
    #[inline(always)]
    pub(super) fn first_sweep_blocked(
        &self,
        prep: &Prepared,
        bl: &Blocks,
        cx: &ChunkCx,
        want_junctions: bool,
        ws: &mut Workspace,
        out: &mut ChunkOut,
    ) {
        ws.cached = false;
        self.blocked_buffers(cx, ws);
        let nq = self.grid.n_nodes();
        let bs = self.block_size();
        for b in 0..self.layout.combos_of_between.len() {
            for &(q0, q1) in &bl.runs {
                let pass0 = b * nq + q0;
                self.node_pass(prep, (b, pass0), &cx.row_j, cx.j0, ws, true, &[]);
                // (a row too small for its products reads them, deep in
                // the blocks)
                self.ensure_logs(prep, ws);
                if want_junctions && pass0 == 0 {
                    self.junctions(prep, pass0, &cx.row_j, cx.j0, ws, &mut out.junctions);
                }
                self.outer_coefs(bl, b, cx.row_j.len(), ws);
                for (c, &(i0, i1)) in cx.rows_of.iter().enumerate() {
                    self.fill_cluster(bl, i0, ws);
                    for p0 in (q0..q1).step_by(bs) {
                        let n = bs.min(q1 - p0);
                        self.inner_probs(prep, bl, b, c, b * nq + p0, n, ws);
                        self.block_log_densities(bl, b, c, (i0, i1), b * nq + p0, n, ws);
                    }
                }
            }
        }
    }

    /// The second sweep, blocked: the rows' weights over each run onto
    /// the outer terms' states in `ws.w` (accumulated when their nodes
    /// change, as in the general loop) and the rows' posteriors, and the
    /// inner terms accumulated block by block.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn second_sweep_blocked(
        &self,
        prep: &Prepared,
        bl: &Blocks,
        cx: &ChunkCx,
        want: Want,
        ws: &mut Workspace,
        acc: &mut Acc<'_>,
        out: &mut ChunkOut,
    ) {
        let (nr, nj) = (cx.row_j.len(), cx.rows_of.len());
        let wd = self.layout.width;
        let nq = self.grid.n_nodes();
        let n_pass = self.layout.n_passes();
        let freq = &self.data.weights[cx.r0..cx.r1];
        let acc_terms = want.gradient || want.information || want.meat;
        let bs = self.block_size();
        for b in 0..self.layout.combos_of_between.len() {
            let combos = &self.layout.combos_of_between[b];
            for &(q0, q1) in &bl.runs {
                let pass0 = b * nq + q0;
                // (see NEGLIGIBLE_PASS)
                let negligible = |pass_ll: &[f64], c: usize, p0: usize, n: usize| {
                    let at = c * n_pass + b * nq + p0;
                    pass_ll[at..at + n].iter().all(|&p| p < NEGLIGIBLE_PASS)
                };
                if (0..nj).all(|c| negligible(&ws.pass_ll, c, q0, q1 - q0)) {
                    continue;
                }
                if acc_terms {
                    let (row_j, j0) = (&cx.row_j, cx.j0);
                    self.flush_node_terms(prep, Some(pass0), nj, freq, want, row_j, j0, ws, acc);
                }
                self.node_pass(prep, (b, pass0), &cx.row_j, cx.j0, ws, true, &[]);
                self.ensure_logs(prep, ws);
                self.outer_coefs(bl, b, nr, ws);
                for &k in combos {
                    ws.blk.wr[k * wd..k * wd + nr].fill(0.0);
                }
                for (c, &(i0, i1)) in cx.rows_of.iter().enumerate() {
                    self.fill_cluster(bl, i0, ws);
                    for p0 in (q0..q1).step_by(bs) {
                        let n = bs.min(q1 - p0);
                        if negligible(&ws.pass_ll, c, p0, n) {
                            continue;
                        }
                        let ps = b * nq + p0;
                        self.inner_probs(prep, bl, b, c, ps, n, ws);
                        self.block_weights(bl, b, c, (i0, i1), ps, n, ws);
                        if acc_terms {
                            self.accumulate_inner(prep, bl, cx.j0 + c, cx.j0, n, want, ws, acc);
                        }
                    }
                }
                self.run_to_outer(bl, combos, (nr, pass0), want, ws, out);
            }
        }
    }

    /// The rows' weights over a run (in `blk.wr`, for the combinations
    /// `combos` and the chunk's `nr` rows) onto the outer terms' states in
    /// `ws.w` and the rows' posteriors; the outer node terms marked
    /// pending from the run's pass `pass` (accumulated when their nodes
    /// change).
    pub(super) fn run_to_outer(
        &self,
        bl: &Blocks,
        combos: &[usize],
        (nr, pass): (usize, usize),
        want: Want,
        ws: &mut Workspace,
        out: &mut ChunkOut,
    ) {
        let (nc, nt) = (self.plan.n_combos, self.plan.terms.len());
        let wd = self.layout.width;
        for &k in combos {
            let wk = &ws.blk.wr[k * wd..k * wd + nr];
            if want.posteriors {
                for (row, &x) in out.posteriors.chunks_exact_mut(nc).zip(wk) {
                    row[k] += x;
                }
            }
            for &t in &bl.outer_terms {
                let sl = self.layout.slot_of_combo[k * nt + t] as usize;
                for (wv, &x) in ws.w[sl * wd..sl * wd + nr].iter_mut().zip(wk) {
                    *wv += x;
                }
            }
        }
        if want.gradient || want.information || want.meat {
            for &t in &self.layout.node_terms {
                if ws.pending[t] == usize::MAX && !bl.inner_terms.contains(&t) {
                    ws.pending[t] = pass;
                }
            }
        }
    }

    /// Per combination of between-level combination `b` and row of the
    /// chunk (`nr` rows): the product of the outer terms' probabilities
    /// at the current run, into `blk.coef`.
    #[inline(always)]
    pub(super) fn outer_coefs(&self, bl: &Blocks, b: usize, nr: usize, ws: &mut Workspace) {
        let wd = self.layout.width;
        let nt = self.plan.terms.len();
        for &k in &self.layout.combos_of_between[b] {
            let coef = &mut ws.blk.coef[k * wd..k * wd + nr];
            coef.fill(1.0);
            for &t in &bl.outer_terms {
                let sl = self.layout.slot_of_combo[k * nt + t] as usize;
                for (a, &e) in coef.iter_mut().zip(&ws.evals[sl * wd..sl * wd + nr]) {
                    *a *= e;
                }
            }
        }
    }

    /// The pseudo-rows' data columns that the inner terms read: the values
    /// of the chunk's row `i0` (a cluster's first; they are constant within
    /// clusters).
    #[inline(always)]
    fn fill_cluster(&self, bl: &Blocks, i0: usize, ws: &mut Workspace) {
        let (Some(local), Some(data)) = (ws.local.as_ref(), ws.blk.data.as_mut()) else {
            return;
        };
        for &col in &bl.inner_data_cols {
            data.columns[col].fill(local.columns[col][i0]);
        }
    }

    /// The inner terms at the `n` passes from `ps` of the chunk's cluster
    /// `c`: their node columns on the pseudo-rows, their probabilities,
    /// and per combination of `b` the product of the
    /// probabilities into `blk.v`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn inner_probs(
        &self,
        prep: &Prepared,
        bl: &Blocks,
        b: usize,
        c: usize,
        ps: usize,
        n: usize,
        ws: &mut Workspace,
    ) {
        let plan = &*self.plan;
        let (wd, nt, dims) = (self.layout.width, plan.terms.len(), plan.dims);
        let n_pass = self.layout.n_passes();
        let blk = &mut ws.blk;
        let Some(data) = blk.data.as_mut() else {
            return;
        };
        let z = &ws.z[(c * n_pass + ps) * dims..(c * n_pass + ps + n) * dims];
        for &v in &bl.inner_cols {
            let vc = &plan.virtual_cols[v];
            let m = vc.mult.map_or(1.0, |m| data.columns[m][0]);
            let col = &mut data.columns[plan.n_data_cols + v][..n];
            for (x, zq) in col.iter_mut().zip(z.chunks_exact(dims)) {
                *x = zq[vc.dim] * m;
            }
        }
        for &t in &bl.inner_terms {
            let (term, tp, slots) = (&plan.terms[t], &prep.terms[t], self.layout.slots(t));
            eval::term_probs(term, tp, data, 0, n, slots, &mut ws.scratch, &mut blk.evals);
        }
        for &k in &self.layout.combos_of_between[b] {
            let v = &mut blk.v[k * wd..k * wd + n];
            v.fill(1.0);
            for &t in &bl.inner_terms {
                let sl = self.layout.slot_of_combo[k * nt + t] as usize;
                for (x, &e) in v.iter_mut().zip(&blk.evals[sl * wd..sl * wd + n]) {
                    *x *= e;
                }
            }
        }
    }

    /// Row `r`'s likelihood given each of the block's passes `p0..p1`,
    /// Σ_k a_rk v_k, into `blk.s`; whether every one is at least `small`.
    #[inline(always)]
    fn block_row(
        &self,
        b: usize,
        r: usize,
        (p0, p1): (usize, usize),
        small: f64,
        ws: &mut Workspace,
    ) -> bool {
        let wd = self.layout.width;
        let blk = &mut ws.blk;
        let s = &mut blk.s[p0..p1];
        s.fill(0.0);
        for &k in &self.layout.combos_of_between[b] {
            let a = blk.coef[k * wd + r];
            for (x, &v) in s.iter_mut().zip(&blk.v[k * wd + p0..k * wd + p1]) {
                *x += a * v;
            }
        }
        // (a fold of bools without short circuits: it vectorises)
        !s.iter()
            .fold(false, |bad, &x| bad | !((x >= small) & (x <= f64::MAX)))
    }

    /// Cluster `c`'s (rows `i0..i1`) log-densities given the block's `n`
    /// passes from `ps`, plus their log weights, into `ws.pass_ll`: the
    /// products of the rows' likelihoods, rescaled as in
    /// [`Self::log_product`], a row too small for them taking its
    /// log-likelihood from the log-densities. Groups of [`LANES`] passes
    /// run in registers ([`products_in_registers`]); a group with a row
    /// too small, and the block's last passes, the general way.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn block_log_densities(
        &self,
        bl: &Blocks,
        b: usize,
        c: usize,
        (i0, i1): (usize, usize),
        ps: usize,
        n: usize,
        ws: &mut Workspace,
    ) {
        let wd = self.layout.width;
        let combos = &self.layout.combos_of_between[b];
        let blk = &mut ws.blk;
        let groups = n.div_ceil(LANES);
        blk.slow.clear();
        blk.slow.resize(groups, true);
        let (coef, v) = (&blk.coef, &blk.v);
        let (prod, lacc, slow) = (&mut blk.prod, &mut blk.lacc, &mut blk.slow);
        macro_rules! fast {
            ($k:literal) => {{
                let ks: [usize; $k] = std::array::from_fn(|i| combos[i]);
                let a: [&[f64]; $k] = ks.map(|k| &coef[k * wd..(k + 1) * wd]);
                let vk: [&[f64]; $k] = ks.map(|k| &v[k * wd..k * wd + n]);
                products_in_registers(a, vk, (i0, i1), prod, lacc, slow)
            }};
        }
        match combos.len() {
            2 => fast!(2),
            3 => fast!(3),
            4 => fast!(4),
            5 => fast!(5),
            6 => fast!(6),
            _ => {}
        }
        for g in 0..groups {
            if ws.blk.slow[g] {
                let (p0, p1) = (g * LANES, ((g + 1) * LANES).min(n));
                self.products_slowly(bl, b, (i0, i1), (p0, p1), ws);
            }
        }
        let n_pass = self.layout.n_passes();
        let at = c * n_pass + ps;
        let blk = &ws.blk;
        let dst = ws.pass_ll[at..at + n].iter_mut().zip(&ws.log_w[at..at + n]);
        for (((d, &lw), &l), &p) in dst.zip(&blk.lacc[..n]).zip(&blk.prod[..n]) {
            *d = lw + (l + fastmath::ln(p));
        }
    }

    /// [`Self::block_log_densities`] for the passes `p0..p1` of the block,
    /// row by row, into `blk.prod` and `blk.lacc`.
    #[inline(always)]
    fn products_slowly(
        &self,
        bl: &Blocks,
        b: usize,
        (i0, i1): (usize, usize),
        (p0, p1): (usize, usize),
        ws: &mut Workspace,
    ) {
        ws.blk.prod[p0..p1].fill(1.0);
        ws.blk.lacc[p0..p1].fill(0.0);
        for r in i0..i1 {
            if self.block_row(b, r, (p0, p1), PRODUCT_SMALL, ws) {
                let blk = &mut ws.blk;
                for (p, &x) in blk.prod[p0..p1].iter_mut().zip(&blk.s[p0..p1]) {
                    *p *= x;
                }
            } else {
                for p in p0..p1 {
                    let x = ws.blk.s[p];
                    if x >= PRODUCT_SMALL && x.is_finite() {
                        ws.blk.prod[p] *= x;
                    } else {
                        let l = self.block_row_lse(bl, b, r, p, ws);
                        ws.blk.lacc[p] += l;
                    }
                }
            }
            let blk = &mut ws.blk;
            if blk.prod[p0..p1]
                .iter()
                .fold(false, |low, &x| low | (x < PRODUCT_SMALL))
            {
                for (p, l) in blk.prod[p0..p1].iter_mut().zip(&mut blk.lacc[p0..p1]) {
                    if *p < PRODUCT_SMALL {
                        *l += p.ln();
                        *p = 1.0;
                    }
                }
            }
        }
    }

    /// Row `r`'s log-likelihood given pass `p` of the block: the
    /// log-sum-exp of its combinations' log-densities.
    fn block_row_lse(&self, bl: &Blocks, b: usize, r: usize, p: usize, ws: &Workspace) -> f64 {
        let l: Vec<f64> = self.layout.combos_of_between[b]
            .iter()
            .map(|&k| self.block_log_density(bl, k, r, p, ws))
            .collect();
        let m = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !m.is_finite() {
            return m;
        }
        m + l.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
    }

    /// Row `r`'s log-density in combination `k` given pass `p` of the
    /// block: its outer terms' values and the inner terms' at the pass.
    fn block_log_density(&self, bl: &Blocks, k: usize, r: usize, p: usize, ws: &Workspace) -> f64 {
        let (wd, nt) = (self.layout.width, self.plan.terms.len());
        let slot = |t: usize| self.layout.slot_of_combo[k * nt + t] as usize;
        let outer: f64 = bl
            .outer_terms
            .iter()
            .map(|&t| ws.vals[slot(t) * wd + r])
            .sum();
        // (the inner terms' probabilities are at least 1e-308 or 0: their
        // logs lose nothing that the other classes do not outweigh)
        let inner: f64 = bl
            .inner_terms
            .iter()
            .map(|&t| ws.blk.evals[slot(t) * wd + p].ln())
            .sum();
        outer + inner
    }

    /// Cluster `c`'s (rows `i0..i1`) posterior weights at the block's `n`
    /// passes from `ps` (pass posteriors in `ws.pass_ll`): the rows' into
    /// `blk.wr`, the inner terms' states' at the pseudo-rows into `blk.w`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn block_weights(
        &self,
        bl: &Blocks,
        b: usize,
        c: usize,
        (i0, i1): (usize, usize),
        ps: usize,
        n: usize,
        ws: &mut Workspace,
    ) {
        let (wd, nt) = (self.layout.width, self.plan.terms.len());
        let combos = &self.layout.combos_of_between[b];
        let at = c * self.layout.n_passes() + ps;
        for &k in combos {
            ws.blk.h[k * wd..k * wd + n].fill(0.0);
        }
        ws.blk.extra.clear();
        for r in i0..i1 {
            let ok = self.block_row(b, r, (0, n), PRODUCT_TINY, ws);
            let post = &ws.pass_ll[at..at + n];
            let blk = &mut ws.blk;
            for ((g, &p), &s) in blk.g[..n].iter_mut().zip(post).zip(&blk.s[..n]) {
                *g = p / s;
            }
            if !ok {
                // rows too small for their products: their combinations'
                // posteriors from the log-densities, added directly
                for p in 0..n {
                    let x = ws.blk.s[p];
                    if x >= PRODUCT_TINY && x.is_finite() {
                        continue;
                    }
                    ws.blk.g[p] = 0.0;
                    let ll = self.block_row_lse(bl, b, r, p, ws);
                    for &k in combos {
                        let lk = self.block_log_density(bl, k, r, p, ws);
                        let pk = if ll.is_finite() { (lk - ll).exp() } else { 0.0 };
                        let wgt = ws.pass_ll[at + p] * pk;
                        ws.blk.wr[k * wd + r] += wgt;
                        ws.blk.extra.push((k, p, wgt));
                    }
                }
            }
            let blk = &mut ws.blk;
            for &k in combos {
                let a = blk.coef[k * wd + r];
                if a == 0.0 {
                    continue;
                }
                let (g, v) = (&blk.g[..n], &blk.v[k * wd..k * wd + n]);
                blk.wr[k * wd + r] += a * fastmath::dot(g, v);
                for (h, &gv) in blk.h[k * wd..k * wd + n].iter_mut().zip(g) {
                    *h += a * gv;
                }
            }
        }
        let blk = &mut ws.blk;
        for &t in &bl.inner_terms {
            let o = self.layout.offsets[t];
            for s in 0..self.plan.terms[t].n_states {
                blk.w[(o + s) * wd..(o + s) * wd + n].fill(0.0);
            }
        }
        for &k in combos {
            for &t in &bl.inner_terms {
                let sl = self.layout.slot_of_combo[k * nt + t] as usize;
                let (h, v) = (&blk.h[k * wd..k * wd + n], &blk.v[k * wd..k * wd + n]);
                for ((w, &hv), &vv) in blk.w[sl * wd..sl * wd + n].iter_mut().zip(h).zip(v) {
                    *w += hv * vv;
                }
            }
        }
        for &(k, p, wgt) in &blk.extra {
            for &t in &bl.inner_terms {
                let sl = self.layout.slot_of_combo[k * nt + t] as usize;
                blk.w[sl * wd + p] += wgt;
            }
        }
    }

    /// Per combination k and inner node i of the block in `ws.blk` (`n`
    /// nodes): the inner terms' score ∂ln v_k(i)/∂φ into
    /// `ws.cluster_scores` (`k × n` rows of `n_ext`), as the blocked
    /// loop's cluster scores with each node its own cluster and weight 1
    /// on combination k's states.
    pub(super) fn inner_node_scores(
        &self,
        prep: &Prepared,
        bl: &Blocks,
        n: usize,
        ws: &mut Workspace,
    ) {
        let (wd, nt, n_ext) = (self.layout.width, self.plan.terms.len(), self.plan.n_ext);
        let combos = &self.layout.combos_of_between[0];
        let meat = Want {
            meat: true,
            ..Want::LL
        };
        ws.cluster_scores.clear();
        ws.cluster_scores.resize(combos.len() * n * n_ext, 0.0);
        // (taken out of the buffers for the loop, which writes their weights)
        let Some(data) = ws.blk.data.take() else {
            return;
        };
        for (ki, &c) in combos.iter().enumerate() {
            let blk = &mut ws.blk;
            for &tm in &bl.inner_terms {
                let o = self.layout.offsets[tm];
                for s in 0..self.plan.terms[tm].n_states {
                    blk.w[(o + s) * wd..(o + s) * wd + n].fill(0.0);
                }
            }
            for &tm in &bl.inner_terms {
                let sl = self.layout.slot_of_combo[c * nt + tm] as usize;
                blk.w[sl * wd..sl * wd + n].fill(1.0);
            }
            for i in 0..n {
                blk.row_j[i] = ki * n + i;
            }
            for &t in &bl.inner_terms {
                self.accumulate(
                    prep,
                    t,
                    &data,
                    0,
                    n,
                    &blk.ones[..n],
                    meat,
                    &blk.row_j[..n],
                    0,
                    &mut [],
                    &mut [],
                    (&blk.w, Some(&blk.evals)),
                    (None, &mut ws.scratch),
                    &mut ws.cluster_scores,
                );
            }
        }
        ws.blk.data = Some(data);
    }

    /// The inner terms' gradient, information and scores at the block's
    /// `n` pseudo-rows (of cluster `j`; the chunk's first is `j0`) from
    /// their weights in `blk.w`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn accumulate_inner(
        &self,
        prep: &Prepared,
        bl: &Blocks,
        j: usize,
        j0: usize,
        n: usize,
        want: Want,
        ws: &mut Workspace,
        acc: &mut Acc<'_>,
    ) {
        let blk = &mut ws.blk;
        blk.row_j[..n].fill(j);
        let Some(data) = blk.data.as_ref() else {
            return;
        };
        for &t in &bl.inner_terms {
            self.accumulate(
                prep,
                t,
                data,
                0,
                n,
                &blk.ones[..n],
                want,
                &blk.row_j[..n],
                j0,
                acc.grads,
                acc.infos,
                (&blk.w, Some(&blk.evals)),
                (None, &mut ws.scratch),
                &mut ws.cluster_scores,
            );
        }
    }
}
