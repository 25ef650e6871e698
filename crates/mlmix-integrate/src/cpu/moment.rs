//! The moment form of the blocked loop (see [`MomentForm`]): for long
//! data whose inner terms (the class logits of a GoM) read no data, a
//! cluster's likelihood given a run of passes is Σ_a e_a M_a, the
//! coefficients of the polynomial F(x) = Π_r Σ_k a_rk x_k (a_rk the
//! outer terms' probabilities, x_k a combination's inner probability)
//! against the moments M_a = Σ_p w_p v(p)^a that every cluster shares.
//! The moments are computed once per evaluation ([`Shared`]); per cluster
//! and run the product of the rows' linear forms, and, where the
//! evaluation wants more than the likelihood, its reverse in the same
//! sweep: a_rk ∂F/∂a_rk / F is row r's weight of combination k, as
//! the blocked loop's a_rk Σ_p post_p v_k(p) / s_r(p). The inner terms'
//! weights, w_p v_k(p) ∂Ḡ/∂x_k (v(p)) with Ḡ the clusters' polynomials
//! summed with weights post / L, are accumulated once per evaluation on
//! the inner nodes ([`CpuBackend::moment_inner_terms`]). The rows'
//! coefficients are scaled to sum to 1 (their logs kept), so the products
//! stay in range; rows too small for that take them from the logs.
//!
//! The run's posterior sits on its first pass (the others' are 0): the
//! posterior moments per cluster are those of the outer dimensions, with
//! the inner ones reported as the standard normal's, so that the
//! adaptation leaves the inner dimensions on their plain nodes, which the
//! moment form needs.

use mlmix_kernels::{NONE, Prepared};
use rayon::prelude::*;

use super::distinct::CoefTable;
use super::{Acc, ChunkCx, CpuBackend, PRODUCT_TINY, Workspace, all_in_range};
use crate::finish::ChunkOut;
use crate::layout::{Blocks, MomentForm};
use crate::nodes::node_of;
use crate::poly::LANES;
use crate::{Adaptation, NEGLIGIBLE_PASS, Want};

/// What an evaluation's clusters share: the inner probabilities, weights
/// and moments.
pub(crate) struct Shared {
    /// v_k(p), `n_inner x k`.
    v: Vec<f64>,
    /// w_p, relative to the first inner node's.
    w: Vec<f64>,
    /// Per degree: the moments M_a at their entries.
    m: Vec<Vec<f64>>,
    /// The moments' derivatives by the inner terms' parameters, where the
    /// evaluation wants the MLR meat.
    scores: Option<InnerScores>,
    /// The rows' coefficients on the outer terms' distinct rows, where
    /// the backend has them ([`CpuBackend::row_coef_table`]).
    table: Option<CoefTable>,
}

/// Per term, a vector over its parameters (as
/// [`crate::finish::finish_gradient`] takes them).
#[cfg(feature = "gpu")]
pub(crate) type TermVecs = Vec<Vec<f64>>;

impl Shared {
    /// Per degree of the clusters: the moments M_a at their entries.
    #[cfg(feature = "gpu")]
    pub(crate) fn moments(&self) -> &[Vec<f64>] {
        &self.m
    }
}

/// The derivatives T_a = ∂M_a/∂φ = Σ_p w_p v(p)^a Σ_k a_k ∂ln v_k(p)/∂φ
/// of the shared moments by the inner terms' parameters: a cluster's
/// score of those parameters is Σ_a G_a T_a, its polynomials summed over
/// the runs with weights post / L ([`Buffers::g_sum`]), as the gradient
/// is the clusters' polynomials summed ([`CpuBackend::moment_inner_terms`]).
struct InnerScores {
    /// The inner terms' parameters (indices into the extended ones).
    params: Vec<usize>,
    /// Per degree: per monomial of its entries, `params.len()` values.
    t: Vec<Vec<f64>>,
}

/// A worker's polynomials, reused across clusters.
#[derive(Default)]
pub(super) struct Buffers {
    /// The running products P_0..P_n, [`LANES`] clusters at once.
    p: Vec<Vec<f64>>,
    /// The reverse pass's derivatives by P_r and P_{r−1}.
    b: Vec<f64>,
    b_prev: Vec<f64>,
    /// The clusters' rows' scaled coefficients, `n x k x LANES`.
    a: Vec<f64>,
    /// Per row: whether its last coefficient is 1 in every lane (the
    /// unit stencils, [`crate::poly::Triangles::mul_linear`]).
    unit: Vec<bool>,
    /// A row's derivatives by its coefficients, `k x LANES`.
    g: Vec<f64>,
    /// One row's coefficients.
    row: Vec<f64>,
    /// Per cluster of the chunk (`size` entries each): Σ over the runs of
    /// (post / L) × its polynomial, for the inner terms' gradient and the
    /// MLR meat (during the sweep relative to the cluster's densest run
    /// so far: e^(u − top) in place of post).
    g_sum: Vec<f64>,
    /// Per cluster: the log-density of its densest run so far (`top`) and
    /// Σ e^(u − top) over its runs so far (`mass`).
    top: Vec<f64>,
    mass: Vec<f64>,
    /// Per run, combination and row of the chunk: the row's weight of the
    /// combination given the run, a_rk ∂F/∂a_rk / F.
    share: Vec<f64>,
}

impl CpuBackend {
    /// The shared part of an evaluation at `prep` on the grid `adapt`
    /// gives (`None` where the moment form does not apply: without it, or
    /// on a grid adapted in an inner dimension); with `table`, the rows'
    /// coefficients on their distinct rows where the backend has them
    /// (the CPU's sweep reads them, the GPU's does not).
    pub(super) fn moment_shared(
        &self,
        prep: &Prepared,
        adapt: Option<&Adaptation>,
        want: Want,
        table: bool,
    ) -> Option<Shared> {
        let mf = self.layout.moments.as_ref()?;
        let bl = self.layout.blocks.as_ref()?;
        if !adapt.is_none_or(|a| inner_plain(mf, a)) {
            return None;
        }
        let (k, ni) = (mf.poly.k, mf.n_inner);
        let combos = &self.layout.combos_of_between[0];
        let wd = self.layout.width;
        let mut v = vec![0.0; ni * k];
        self.inner_blocks(&mut v, k, |p0, n, vb, ws| {
            self.inner_probs(prep, bl, 0, 0, p0, n, ws);
            for (i, vi) in vb.chunks_exact_mut(k).enumerate() {
                for (x, &c) in vi.iter_mut().zip(combos) {
                    *x = ws.blk.v[c * wd + i];
                }
            }
        });
        let w: Vec<f64> = mf.rel_log_w.iter().map(|l| l.exp()).collect();
        // in blocks of inner nodes on the pool, summed in block order (the
        // same bits on any number of threads)
        let blocks: Vec<usize> = (0..ni).step_by(MOMENT_BLOCK).collect();
        let parts: Vec<Vec<Vec<f64>>> = self.install(|| {
            blocks
                .into_par_iter()
                .map(|p0| block_moments(mf, &v, &w, p0..(p0 + MOMENT_BLOCK).min(ni)))
                .collect()
        });
        let mut parts = parts.into_iter();
        let mut m = parts.next().unwrap_or_default();
        for part in parts {
            for (mi, pi) in m.iter_mut().zip(&part) {
                mi.iter_mut().zip(pi).for_each(|(a, b)| *a += b);
            }
        }
        let scores = want
            .meat
            .then(|| self.inner_scores(prep, (mf, bl), (&v, &w)));
        let table = (self.coef_rows.as_ref())
            .filter(|_| table)
            .map(|d| self.row_coef_table(prep, (mf, bl), d));
        Some(Shared {
            v,
            w,
            m,
            scores,
            table,
        })
    }

    /// The shared part of an evaluation at `prep` for the GPU backend's
    /// moment form (its moments: [`Shared::moments`]); `None` where the
    /// form does not apply on the grid `adapt` gives.
    #[cfg(feature = "gpu")]
    pub(crate) fn gpu_shared(&self, prep: &Prepared, adapt: Option<&Adaptation>) -> Option<Shared> {
        self.moment_shared(prep, adapt, Want::LL, false)
    }

    /// Whether the moment form applies on the grid `adapt` gives (it is
    /// the plan's form, and the grid leaves the inner dimensions plain).
    #[cfg(feature = "gpu")]
    pub(crate) fn moment_form_applies(&self, adapt: Option<&Adaptation>) -> bool {
        self.layout.moments.as_ref().is_some_and(|mf| {
            self.layout.blocks.is_some() && adapt.is_none_or(|a| inner_plain(mf, a))
        })
    }

    /// For the GPU backend: the inner terms' gradient from the clusters'
    /// polynomials summed with weights post / L (`agg`, per degree, as
    /// the CPU's second sweep sums them), per term as
    /// [`crate::finish::finish_gradient`] takes it; and per term the
    /// magnitudes that bound its rounding: Σ_p Σ_k h_pk |∂ln v_k(p)/∂φ|
    /// (h the nodes' weights, [`CpuBackend::inner_node_weights`]), each
    /// extended parameter on the first inner term that has it. An error
    /// of relative size ε in each of `agg`'s entries (all ≥ 0) moves the
    /// gradient by at most ε times the magnitude.
    #[cfg(feature = "gpu")]
    pub(crate) fn moment_inner_gradient(
        &self,
        prep: &Prepared,
        sh: &Shared,
        agg: &[Vec<f64>],
    ) -> Option<(TermVecs, TermVecs)> {
        let mf = self.layout.moments.as_ref()?;
        let bl = self.layout.blocks.as_ref()?;
        let h = self.inner_node_weights(mf, sh, agg);
        let grads = self.inner_terms_weighted(prep, &h, Want::GRADIENT)?.grads;
        let (params, d) = self.inner_node_derivs(prep, (mf, bl));
        let m = params.len();
        let mut mag = vec![0.0; self.plan.n_ext];
        for (pk, &hp) in h.iter().enumerate() {
            for (&pi, &x) in params.iter().zip(&d[pk * m..(pk + 1) * m]) {
                mag[pi] += hp * x.abs();
            }
        }
        let mut taken = vec![false; self.plan.n_ext];
        let mags = self
            .plan
            .terms
            .iter()
            .enumerate()
            .map(|(t, term)| {
                let mut v = vec![0.0; term.n_term_params()];
                if bl.inner_terms.contains(&t) {
                    for (x, &pi) in v.iter_mut().zip(&term.phi_index) {
                        if pi != NONE && !taken[pi as usize] {
                            taken[pi as usize] = true;
                            *x = mag[pi as usize];
                        }
                    }
                }
                v
            })
            .collect();
        Some((grads, mags))
    }

    /// The shared moments' derivatives by the inner terms' parameters
    /// ([`InnerScores`]), from the inner probabilities `v` and weights `w`.
    fn inner_scores(
        &self,
        prep: &Prepared,
        (mf, bl): (&MomentForm, &Blocks),
        (v, w): (&[f64], &[f64]),
    ) -> InnerScores {
        let (k, ni) = (mf.poly.k, mf.n_inner);
        let (params, d) = self.inner_node_derivs(prep, (mf, bl));
        let m = params.len();
        if m == 0 {
            // (no free parameter in the inner terms)
            return InnerScores {
                params,
                t: Vec::new(),
            };
        }
        let stride = mf.poly.n_max + 1;
        let mut pow = vec![0.0; k * stride];
        let mut t: Vec<Vec<f64>> = mf.entries.iter().map(|e| vec![0.0; e.len() * m]).collect();
        for p in 0..ni {
            powers(&v[p * k..(p + 1) * k], &mut pow);
            let dp = &d[p * k * m..(p + 1) * k * m];
            for (di, td) in t.iter_mut().enumerate() {
                let ex = mf.exponents[di].chunks_exact(k);
                for (tm, e) in td.chunks_exact_mut(m).zip(ex) {
                    let c = w[p] * monomial(&pow, stride, e);
                    for (&ek, dk) in e.iter().zip(dp.chunks_exact(m)) {
                        if ek > 0 {
                            let f = c * f64::from(ek);
                            tm.iter_mut().zip(dk).for_each(|(x, &y)| *x += f * y);
                        }
                    }
                }
            }
        }
        InnerScores { params, t }
    }

    /// The inner terms' free extended parameters (sorted) and, per inner
    /// node and combination, ∂ln v_k(p)/∂φ on them (`n_inner x k x m`).
    fn inner_node_derivs(
        &self,
        prep: &Prepared,
        (mf, bl): (&MomentForm, &Blocks),
    ) -> (Vec<usize>, Vec<f64>) {
        let (k, ni, n_ext) = (mf.poly.k, mf.n_inner, self.plan.n_ext);
        let mut params: Vec<usize> = bl
            .inner_terms
            .iter()
            .flat_map(|&t| self.plan.terms[t].phi_index.iter())
            .filter(|&&pi| pi != NONE)
            .map(|&pi| pi as usize)
            .collect();
        params.sort_unstable();
        params.dedup();
        let m = params.len();
        let mut d = vec![0.0; ni * k * m];
        if m == 0 {
            return (params, d);
        }
        self.inner_blocks(&mut d, k * m, |p0, n, db, ws| {
            self.inner_probs(prep, bl, 0, 0, p0, n, ws);
            self.inner_node_scores(prep, bl, n, ws);
            for (i, di) in db.chunks_exact_mut(k * m).enumerate() {
                for (ki, dk) in di.chunks_exact_mut(m).enumerate() {
                    let s = &ws.cluster_scores[(ki * n + i) * n_ext..(ki * n + i + 1) * n_ext];
                    for (x, &pi) in dk.iter_mut().zip(&params) {
                        *x = s[pi];
                    }
                }
            }
        });
        (params, d)
    }

    /// Runs `f(p0, n, out, ws)` on the pool for each block of inner
    /// nodes `p0 .. p0 + n` ([`INNER_BLOCK`] at most, in the blocked
    /// loop's lanes) with its share of `out` (`per` entries per node) and
    /// a workspace of its task's ([`CpuBackend::inner_workspace`]). Each
    /// node's entries depend on the node alone: the same bits on any
    /// number of threads.
    fn inner_blocks<F>(&self, out: &mut [f64], per: usize, f: F)
    where
        F: Fn(usize, usize, &mut [f64], &mut Workspace) + Sync,
    {
        let bs = self.block_size().clamp(1, INNER_BLOCK);
        if per == 0 {
            return;
        }
        self.install(|| {
            out.par_chunks_mut(bs * per).enumerate().for_each_init(
                || self.inner_workspace(),
                |ws, (b, ob)| f(b * bs, ob.len() / per, ob, ws),
            )
        });
    }

    /// Adds each cluster's scores of the inner terms' parameters,
    /// Σ_a G_a T_a ([`InnerScores`]), to `ws.cluster_scores`.
    fn add_inner_scores(&self, mf: &MomentForm, sh: &Shared, cx: &ChunkCx, ws: &mut Workspace) {
        let Some(sc) = &sh.scores else {
            return;
        };
        let (size, n_ext, m) = (mf.poly.size, self.plan.n_ext, sc.params.len());
        if m == 0 {
            return;
        }
        for (c, &(i0, i1)) in cx.rows_of.iter().enumerate() {
            let Ok(di) = mf.degrees.binary_search(&(i1 - i0)) else {
                continue;
            };
            let g = &ws.pol.g_sum[c * size..(c + 1) * size];
            let s = &mut ws.cluster_scores[c * n_ext..(c + 1) * n_ext];
            for (&at, tm) in mf.entries[di].iter().zip(sc.t[di].chunks_exact(m)) {
                let x = g[at];
                if x != 0.0 {
                    for (&pi, &y) in sc.params.iter().zip(tm) {
                        s[pi] += x * y;
                    }
                }
            }
        }
    }

    /// A workspace whose pseudo-rows carry the plain grid's first run of
    /// inner nodes (for the inner terms at those nodes).
    fn inner_workspace(&self) -> Workspace {
        let l = &self.layout;
        let mut ws = Workspace::new(&self.plan, l.stride, l.width, l.mom_slots);
        let cx = self.chunk_cx(0);
        self.blocked_buffers(cx, &mut ws);
        let first = l.moments.as_ref().map_or(l.n_passes(), |mf| mf.n_inner);
        ws.z = self.grid.nodes[..first * self.plan.dims].to_vec();
        ws
    }

    /// One chunk in the moment form: the loop of the blocked form over
    /// the runs of passes only (see the module's documentation).
    #[inline(always)]
    pub(super) fn chunk_moments(
        &self,
        prep: &Prepared,
        c: usize,
        want: Want,
        adapt: Option<&Adaptation>,
        (mf, bl, sh): (&MomentForm, &Blocks, &Shared),
        ws: &mut Workspace,
    ) -> ChunkOut {
        let cx = self.chunk_cx(c);
        let (nr, nj) = (cx.row_j.len(), cx.rows_of.len());
        ws.term_pass.fill(usize::MAX);
        ws.col_pass.fill(usize::MAX);
        self.chunk_local(cx, cx.j0 + nj, ws);
        self.run_nodes(bl, adapt, cx, ws);
        // (the outer terms' values on the rows go unread where the
        // coefficients come from their distinct rows)
        let skip: &[usize] = if self.coef_rows.is_some() {
            &bl.outer_terms
        } else {
            &[]
        };
        self.chunk_terms(prep, cx, ws, skip);
        let mut out = ChunkOut::empty(want, nr * self.plan.n_combos, nj);
        ws.pass_ll.clear();
        ws.pass_ll.resize(nj * bl.runs.len(), 0.0);
        let second = want.gradient || want.information || want.meat || want.posteriors;
        self.sweep_moments(prep, bl, (mf, sh), cx, second, ws);
        if !self.run_likelihoods(mf, bl, cx, want, ws, &mut out) || !second {
            return out;
        }
        self.normalise_polys(mf, bl, cx, ws, &mut out);
        let wd = self.layout.width;
        for sl in 0..self.layout.stride {
            ws.w[sl * wd..sl * wd + nr].fill(0.0);
        }
        if want.meat {
            ws.cluster_scores.clear();
            ws.cluster_scores.resize(nj * self.plan.n_ext, 0.0);
        }
        let (mut grads, mut infos) = self.term_accumulators(want);
        ws.mom.fill(0.0);
        ws.pending.fill(usize::MAX);
        let mut acc = Acc {
            grads: &mut grads,
            infos: &mut infos,
        };
        self.run_weights(prep, bl, cx, want, ws, &mut acc, &mut out);
        self.chunk_epilogue(prep, cx, want, ws, &mut acc);
        out.grads = grads;
        out.infos = infos;
        if want.meat {
            self.add_inner_scores(mf, sh, cx, ws);
            out.meat = self.chunk_meat(nj, &cx.cluster_weight, ws);
        }
        out
    }

    /// The clusters' log-likelihoods and their runs' posteriors from the
    /// runs' log-densities (`ws.pass_ll`, written by the first sweep, or
    /// by the fused one), and the posterior moments if asked for; false
    /// (the chunk's log-likelihood −∞) where a cluster is impossible.
    fn run_likelihoods(
        &self,
        mf: &MomentForm,
        bl: &Blocks,
        cx: &ChunkCx,
        want: Want,
        ws: &mut Workspace,
        out: &mut ChunkOut,
    ) -> bool {
        self.run_posteriors(bl, cx, want, ws, out);
        if !out.loglik.is_finite() {
            return false;
        }
        if want.moments {
            self.run_moments(mf, bl, cx.rows_of.len(), ws, out);
        }
        true
    }

    /// Each cluster's node and log weight at the first pass of each run
    /// (the runs' other passes differ in the inner dimensions only, which
    /// the shared moments integrate), into `ws.z` and `ws.log_w`, a run
    /// taking the place of a pass there (and in `ws.pass_ll`).
    #[inline(always)]
    fn run_nodes(&self, bl: &Blocks, adapt: Option<&Adaptation>, cx: &ChunkCx, ws: &mut Workspace) {
        let dims = self.plan.dims;
        let (nj, n_runs) = (cx.rows_of.len(), bl.runs.len());
        ws.z_passes = n_runs;
        ws.z.resize(nj * n_runs * dims, 0.0);
        ws.log_w.resize(nj * n_runs, 0.0);
        for c in 0..nj {
            for (run, &(q0, _)) in bl.runs.iter().enumerate() {
                let at = c * n_runs + run;
                let z = &mut ws.z[at * dims..(at + 1) * dims];
                ws.log_w[at] = node_of(&self.grid, adapt, cx.j0 + c, 0, q0, z);
            }
        }
    }

    /// Each cluster's log-likelihood (a log-sum-exp over its runs, added
    /// to `out.loglik`) and the posteriors of its runs, which replace
    /// their log-densities in `ws.pass_ll`.
    #[inline(always)]
    fn run_posteriors(
        &self,
        bl: &Blocks,
        cx: &ChunkCx,
        want: Want,
        ws: &mut Workspace,
        out: &mut ChunkOut,
    ) {
        let n_runs = bl.runs.len();
        for (c, pl) in ws.pass_ll.chunks_exact_mut(n_runs).enumerate() {
            let m = pl.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if !m.is_finite() {
                out.loglik = f64::NEG_INFINITY;
                continue;
            }
            pl.iter_mut().for_each(|v| *v = (*v - m).exp());
            let s: f64 = pl.iter().sum();
            pl.iter_mut().for_each(|v| *v /= s);
            let ll = m + s.ln();
            out.loglik += cx.cluster_weight[c] * ll;
            if want.posteriors {
                out.cluster_ll[c] = ll;
            }
        }
    }

    /// Per cluster: its posterior mass and the posterior moments of the
    /// outer dimensions (over its runs), those of the inner ones the
    /// standard normal's, into `out.moments`.
    #[inline(always)]
    fn run_moments(
        &self,
        mf: &MomentForm,
        bl: &Blocks,
        nj: usize,
        ws: &Workspace,
        out: &mut ChunkOut,
    ) {
        let (dims, n_runs) = (self.plan.dims, bl.runs.len());
        let per = 1 + dims + dims * dims;
        out.moments = vec![0.0; nj * per];
        for (c, mo) in out.moments.chunks_exact_mut(per).enumerate() {
            let runs = c * n_runs..(c + 1) * n_runs;
            let z = &ws.z[runs.start * dims..runs.end * dims];
            run_moments((&bl.outer_dims, dims), &ws.pass_ll[runs], z, mo);
        }
        self.plain_inner_moments(mf, &mut out.moments);
    }

    /// Each of the chunk's `nr` rows' coefficients at the current run
    /// summed over the combinations, in their order, into `ws.sum` (one
    /// pass per combination over the rows, where `row_coefs` went row by
    /// row); whether every sum is large enough for the products
    /// (`PRODUCT_TINY`) and finite.
    #[inline(always)]
    fn coef_sums(&self, nr: usize, ws: &mut Workspace) -> bool {
        let wd = self.layout.width;
        let sum = &mut ws.sum[..nr];
        sum.fill(0.0);
        for &c in &self.layout.combos_of_between[0] {
            for (s, &x) in sum.iter_mut().zip(&ws.blk.coef[c * wd..c * wd + nr]) {
                *s += x;
            }
        }
        all_in_range(sum, PRODUCT_TINY)
    }

    /// Row `row`'s coefficients at the current run into `a` (one per
    /// combination; their sum in `ws.sum` from [`Self::coef_sums`]), scaled so that the last is 1 where their sum is at
    /// most `unit_limit` times it (the unit stencils), to sum to 1
    /// otherwise; the scale taken out and whether the last is 1, or `None`
    /// when the row has likelihood 0 at every inner node.
    #[inline(always)]
    fn row_coefs(
        &self,
        bl: &Blocks,
        row: usize,
        ws: &Workspace,
        (a, unit_limit): (&mut [f64], f64),
    ) -> Option<(Scale, bool)> {
        let (wd, nt) = (self.layout.width, self.plan.terms.len());
        let combos = &self.layout.combos_of_between[0];
        for (x, &c) in a.iter_mut().zip(combos) {
            *x = ws.blk.coef[c * wd + row];
        }
        let s = ws.sum[row];
        if s >= PRODUCT_TINY && s.is_finite() {
            return Some(scale_products(a, s, unit_limit));
        }
        // too small for products: from the outer terms' logs
        for (x, &c) in a.iter_mut().zip(combos) {
            *x = bl
                .outer_terms
                .iter()
                .map(|&t| ws.vals[self.layout.slot_of_combo[c * nt + t] as usize * wd + row])
                .sum();
        }
        scale_logs(a).map(|x| (x, false))
    }

    /// The group's clusters' (`c0..c1` of the chunk, one per lane, as
    /// many rows each) scaled coefficients at the current run into
    /// `pol.a` (per row `k x LANES`) and the products of their rows'
    /// linear forms into `pol.p`: their degree's index, and per lane the
    /// logs taken out and Σ_a e_a M_a (0 for a cluster whose likelihood
    /// is 0; the lanes past the group repeat its first cluster).
    #[inline(always)]
    fn group_forward(
        &self,
        bl: &Blocks,
        (mf, sh): (&MomentForm, &Shared),
        cx: &ChunkCx,
        (c0, c1): (usize, usize),
        ws: &mut Workspace,
    ) -> Option<(usize, [f64; LANES], [f64; LANES])> {
        let (i0, i1) = cx.rows_of[c0];
        let n = i1 - i0;
        let di = mf.degrees.binary_search(&n).ok()?;
        let t = &mf.poly;
        let k = t.k;
        if ws.pol.p.len() != t.n_max + 1 {
            let pol = &mut ws.pol;
            pol.p = vec![vec![0.0; t.size * LANES]; t.n_max + 1];
            pol.p[0][t.unit() * LANES..(t.unit() + 1) * LANES].fill(1.0);
            pol.b = vec![0.0; t.size * LANES];
            pol.b_prev = vec![0.0; t.size * LANES];
            pol.g = vec![0.0; k * LANES];
        }
        let mut a = std::mem::take(&mut ws.pol.a);
        a.resize(n * k * LANES, 0.0);
        let mut scale = [LogProduct::default(); LANES];
        let mut alive = [true; LANES];
        let mut row_a = std::mem::take(&mut ws.pol.row);
        row_a.resize(k, 0.0);
        let mut unit = std::mem::take(&mut ws.pol.unit);
        unit.clear();
        unit.resize(n, true);
        let unit_limit = mf.unit_limits[di];
        for lane in 0..LANES {
            let c = if c0 + lane < c1 { c0 + lane } else { c0 };
            let start = cx.rows_of[c].0;
            for (r, u) in unit.iter_mut().enumerate() {
                let (coefs, x, last_one) = match (&sh.table, &self.coef_rows) {
                    (Some(tb), Some(d)) => tb.row(di, d.id(cx.r0 + start + r)),
                    _ => match self.row_coefs(bl, start + r, ws, (&mut row_a, unit_limit)) {
                        Some((x, last_one)) => (&row_a[..], Some(x), last_one),
                        None => {
                            row_a.fill(1.0);
                            (&row_a[..], None, true)
                        }
                    },
                };
                match x {
                    Some(x) => scale[lane].take(x),
                    None => alive[lane] = false,
                }
                *u &= last_one;
                for (j, &x) in coefs.iter().enumerate() {
                    a[(r * k + j) * LANES + lane] = x;
                }
            }
        }
        let pol = &mut ws.pol;
        for r in 1..=n {
            let (lo, hi) = pol.p.split_at_mut(r);
            let ar = &a[(r - 1) * k * LANES..r * k * LANES];
            t.mul_linear(r, &lo[r - 1], ar, &mut hi[0], unit[r - 1]);
        }
        pol.unit = unit;
        pol.a = a;
        pol.row = row_a;
        let mut l = t.dot(n, &pol.p[n], &sh.m[di]);
        for (x, ok) in l.iter_mut().zip(alive) {
            if !ok {
                *x = 0.0;
            }
        }
        Some((di, scale.map(LogProduct::ln), l))
    }

    /// The sweep in the moment form: per run (in [`run_order`]'s order),
    /// each cluster's log-density given the run on its place in
    /// `ws.pass_ll`, and with `reverse` (an evaluation that wants more than
    /// the likelihood) the reverse of the products where the run is not
    /// negligible against the cluster's runs before it
    /// ([`Self::group_reverse`]). The reverse is linear in its seed, so it
    /// runs before the run's posterior is known, in the same sweep: one
    /// forward product per cluster and run, where a first sweep for the
    /// densities and a second for the reverse formed it twice.
    #[inline(always)]
    pub(super) fn sweep_moments(
        &self,
        prep: &Prepared,
        bl: &Blocks,
        (mf, sh): (&MomentForm, &Shared),
        cx: &ChunkCx,
        reverse: bool,
        ws: &mut Workspace,
    ) {
        ws.cached = false;
        self.block_sizes(ws);
        let (nr, nj, n_runs) = (cx.row_j.len(), cx.rows_of.len(), bl.runs.len());
        let table = sh.table.as_ref();
        if reverse {
            let (k, size) = (mf.poly.k, mf.poly.size);
            let pol = &mut ws.pol;
            pol.share.clear();
            pol.share.resize(n_runs * k * nr, 0.0);
            pol.g_sum.clear();
            pol.g_sum.resize(nj * size, 0.0);
            pol.top.clear();
            pol.top.resize(nj, f64::NEG_INFINITY);
            pol.mass.clear();
            pol.mass.resize(nj, 0.0);
        }
        for run in run_order(&ws.log_w, n_runs) {
            // (one between-level combination: `MomentForm::of`)
            // (the inner terms' values are the shared moments': per row
            // they go unread)
            self.node_pass(prep, (0, run), &cx.row_j, cx.j0, ws, true, &bl.inner_terms);
            if table.is_none() {
                self.outer_coefs(bl, 0, nr, ws);
                if !self.coef_sums(nr, ws) {
                    // (a row too small for its products takes its
                    // coefficients from the log-densities: `row_coefs`)
                    self.ensure_logs(prep, ws);
                }
            }
            for &(c0, c1) in &cx.lane_groups {
                let res = self.group_forward(bl, (mf, sh), cx, (c0, c1), ws);
                run_densities(res, (c0, c1), (n_runs, run), ws);
                if let (true, Some((di, _, l))) = (reverse, res) {
                    self.group_reverse((mf, sh), cx, (c0, c1), (run, n_runs), (di, l), ws);
                }
            }
        }
    }

    /// The reverse of the group's products at run `run` (their degree's
    /// index `di`, their likelihoods `l` per lane, the run's log-densities
    /// in `ws.pass_ll`): the rows' weights relative to the run's density,
    /// a_rk ∂F/∂a_rk / F (`pol.share`; [`Self::run_weights`] multiplies
    /// them by the posteriors), and each cluster's polynomial over its
    /// density summed over its runs relative to its densest one so far
    /// (`pol.g_sum`; [`Self::normalise_polys`] scales it). A lane whose
    /// run is impossible, or below [`NEGLIGIBLE_PASS`] of the cluster's
    /// runs so far (an upper bound of its posterior), takes no part.
    #[inline(always)]
    fn group_reverse(
        &self,
        (mf, sh): (&MomentForm, &Shared),
        cx: &ChunkCx,
        (c0, c1): (usize, usize),
        (run, n_runs): (usize, usize),
        (di, l): (usize, [f64; LANES]),
        ws: &mut Workspace,
    ) {
        let t = &mf.poly;
        let (k, size, nr) = (t.k, t.size, cx.row_j.len());
        let n = cx.rows_of[c0].1 - cx.rows_of[c0].0;
        // per lane: e^(u − top) / L into the polynomials' sum, and 1 / L
        // for the rows' weights; 0 where the lane takes no part
        let mut inv = [0.0; LANES];
        let Buffers {
            g_sum,
            top,
            mass,
            p,
            ..
        } = &mut ws.pol;
        for (lane, il) in inv.iter_mut().enumerate().take(c1 - c0) {
            let c = c0 + lane;
            let g = &mut g_sum[c * size..(c + 1) * size];
            let u = ws.pass_ll[c * n_runs + run];
            let e = admit(u, &mut top[c], &mut mass[c], |s| t.scale(n, s, g));
            if e > 0.0 && e >= NEGLIGIBLE_PASS * mass[c] {
                *il = 1.0 / l[lane];
                t.add_lane(n, lane, e * *il, &p[n], g);
            }
        }
        if inv.iter().all(|&x| x == 0.0) {
            return;
        }
        let pol = &mut ws.pol;
        t.broadcast(n, &sh.m[di], &mut pol.b);
        let share = &mut pol.share[run * k * nr..(run + 1) * k * nr];
        for r in (1..=n).rev() {
            let a = &pol.a[(r - 1) * k * LANES..r * k * LANES];
            let (g, b, b_prev) = (&mut pol.g, &pol.b, &mut pol.b_prev);
            let unit = pol.unit[r - 1];
            t.mul_linear_back(r, (&pol.p[r - 1], a, unit), b, g, b_prev);
            for (lane, &il) in inv.iter().enumerate().take(c1 - c0) {
                if il == 0.0 {
                    continue;
                }
                let row = cx.rows_of[c0 + lane].0 + r - 1;
                for j in 0..k {
                    share[j * nr + row] = a[j * LANES + lane] * g[j * LANES + lane] * il;
                }
            }
            std::mem::swap(&mut pol.b, &mut pol.b_prev);
        }
    }

    /// Each cluster's polynomials summed over its runs (`pol.g_sum`,
    /// relative to its densest run) scaled to the weights post / L, by
    /// that run's posterior (the largest), and added per degree into
    /// `out.poly`; `ws.pass_ll` holds the posteriors.
    #[inline(always)]
    fn normalise_polys(
        &self,
        mf: &MomentForm,
        bl: &Blocks,
        cx: &ChunkCx,
        ws: &mut Workspace,
        out: &mut ChunkOut,
    ) {
        let t = &mf.poly;
        let n_runs = bl.runs.len();
        out.poly = vec![vec![0.0; t.size]; mf.degrees.len()];
        for (c, &(i0, i1)) in cx.rows_of.iter().enumerate() {
            let Ok(di) = mf.degrees.binary_search(&(i1 - i0)) else {
                continue;
            };
            let post = &ws.pass_ll[c * n_runs..(c + 1) * n_runs];
            let top = post.iter().copied().fold(0.0, f64::max);
            let g = &mut ws.pol.g_sum[c * t.size..(c + 1) * t.size];
            t.scale_into(i1 - i0, top, g, &mut out.poly[di]);
        }
    }

    /// Per run: the rows' weights (their shares, `pol.share`, times their
    /// clusters' posteriors of the run; 0 below [`NEGLIGIBLE_PASS`]) onto
    /// the outer terms' states in `ws.w` and the rows' posteriors, the
    /// node terms accumulated when their nodes change, as in the blocked
    /// loop's second sweep.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn run_weights(
        &self,
        prep: &Prepared,
        bl: &Blocks,
        cx: &ChunkCx,
        want: Want,
        ws: &mut Workspace,
        acc: &mut Acc<'_>,
        out: &mut ChunkOut,
    ) {
        let (nr, nj, n_runs) = (cx.row_j.len(), cx.rows_of.len(), bl.runs.len());
        let wd = self.layout.width;
        let freq = &self.data.weights[cx.r0..cx.r1];
        let acc_terms = want.gradient || want.information || want.meat;
        let combos = &self.layout.combos_of_between[0];
        let k = combos.len();
        for run in 0..n_runs {
            if (0..nj).all(|c| ws.pass_ll[c * n_runs + run] < NEGLIGIBLE_PASS) {
                continue;
            }
            if acc_terms {
                let (row_j, j0) = (&cx.row_j, cx.j0);
                self.flush_node_terms(prep, Some(run), nj, freq, want, row_j, j0, ws, acc);
            }
            self.node_pass(prep, (0, run), &cx.row_j, cx.j0, ws, false, &[]);
            let share = &ws.pol.share[run * k * nr..(run + 1) * k * nr];
            for (&cb, sj) in combos.iter().zip(share.chunks_exact(nr)) {
                let wr = &mut ws.blk.wr[cb * wd..cb * wd + nr];
                for ((w, &x), &j) in wr.iter_mut().zip(sj).zip(&cx.row_j) {
                    let post = ws.pass_ll[(j - cx.j0) * n_runs + run];
                    *w = if post < NEGLIGIBLE_PASS {
                        0.0
                    } else {
                        post * x
                    };
                }
            }
            self.run_to_outer(bl, combos, (nr, run), want, ws, out);
        }
    }

    /// The inner terms' gradient and information, from the clusters'
    /// polynomials summed with their weights (`agg`, per degree): at
    /// inner node p combination k has the weight w_p Σ_a Ḡ_a a_k v(p)^a.
    pub(super) fn moment_inner_terms(
        &self,
        prep: &Prepared,
        sh: &Shared,
        agg: &[Vec<f64>],
        want: Want,
    ) -> Option<ChunkOut> {
        let mf = self.layout.moments.as_ref()?;
        self.inner_terms_weighted(prep, &self.inner_node_weights(mf, sh, agg), want)
    }

    /// Per inner node p and combination k, its weight in the inner terms'
    /// gradient: h_pk = w_p Σ_a Ḡ_a a_k v(p)^a, Ḡ the clusters'
    /// polynomials summed with weights post / L (`agg`, per degree); in
    /// blocks of nodes on the pool.
    fn inner_node_weights(&self, mf: &MomentForm, sh: &Shared, agg: &[Vec<f64>]) -> Vec<f64> {
        let k = mf.poly.k;
        let mut h = vec![0.0; mf.n_inner * k];
        self.install(|| {
            h.par_chunks_mut(MOMENT_BLOCK * k)
                .enumerate()
                .for_each(|(b, hb)| node_weights(mf, sh, agg, b * MOMENT_BLOCK, hb));
        });
        h
    }

    /// The inner terms' gradient and information given the weights `h`
    /// of the inner nodes and combinations ([`inner_node_weights`]).
    fn inner_terms_weighted(&self, prep: &Prepared, h: &[f64], want: Want) -> Option<ChunkOut> {
        let mf = self.layout.moments.as_ref()?;
        let bl = self.layout.blocks.as_ref()?;
        let plan = &*self.plan;
        let (k, ni, nt) = (mf.poly.k, mf.n_inner, plan.terms.len());
        let combos = &self.layout.combos_of_between[0];
        let (mut grads, mut infos) = self.term_accumulators(want);
        let mut ws = self.inner_workspace();
        let wd = self.layout.width;
        let bs = self.block_size();
        let inner_want = Want {
            meat: false,
            ..want
        };
        for p0 in (0..ni).step_by(bs) {
            let n = bs.min(ni - p0);
            self.inner_probs(prep, bl, 0, 0, p0, n, &mut ws);
            let blk = &mut ws.blk;
            for &tm in &bl.inner_terms {
                let o = self.layout.offsets[tm];
                for s in 0..plan.terms[tm].n_states {
                    blk.w[(o + s) * wd..(o + s) * wd + n].fill(0.0);
                }
                for (ki, &c) in combos.iter().enumerate() {
                    let sl = self.layout.slot_of_combo[c * nt + tm] as usize;
                    for i in 0..n {
                        blk.w[sl * wd + i] += h[(p0 + i) * k + ki];
                    }
                }
            }
            let mut acc = Acc {
                grads: &mut grads,
                infos: &mut infos,
            };
            self.accumulate_inner(prep, bl, 0, 0, n, inner_want, &mut ws, &mut acc);
        }
        let mut out = ChunkOut::empty(Want::LL, 0, 0);
        out.grads = grads;
        out.infos = infos;
        Some(out)
    }

    /// The units' posterior moments with the inner dimensions' set to the
    /// standard normal's (mean 0, unit variance, uncorrelated), so that an
    /// adaptation built from them keeps the inner nodes plain.
    pub(crate) fn plain_inner_moments(&self, mf: &MomentForm, moments: &mut [f64]) {
        let dims = self.plan.dims;
        let per = 1 + dims + dims * dims;
        for mo in moments.chunks_exact_mut(per) {
            let (means, second) = mo[1..].split_at_mut(dims);
            for &d in &mf.inner_dims {
                means[d] = 0.0;
                for e in 0..dims {
                    let v = if e == d { 1.0 } else { 0.0 };
                    second[d * dims + e] = v;
                    second[e * dims + d] = v;
                }
            }
        }
    }
}

/// The log-densities of clusters `c0..c1` at run `run` of `n_runs` into
/// `ws.pass_ll`, from [`CpuBackend::group_forward`]'s result: the run's
/// log weight, the logs taken out and ln Σ_a e_a M_a, or −∞.
#[inline(always)]
fn run_densities(
    res: Option<(usize, [f64; LANES], [f64; LANES])>,
    (c0, c1): (usize, usize),
    (n_runs, run): (usize, usize),
    ws: &mut Workspace,
) {
    for c in c0..c1 {
        let at = c * n_runs + run;
        ws.pass_ll[at] = match res {
            Some((_, scale, l)) if l[c - c0] > 0.0 => ws.log_w[at] + scale[c - c0] + l[c - c0].ln(),
            _ => f64::NEG_INFINITY,
        };
    }
}

/// Takes a run of log-density `u` into a cluster's running sum, kept
/// relative to its densest run so far (`top`, with `mass` = Σ e^(u −
/// top)); `rescale(s)` multiplies what was kept relative to the old top
/// when a denser run comes. Returns e^(u − top), 0 for an impossible run.
#[inline(always)]
fn admit(u: f64, top: &mut f64, mass: &mut f64, rescale: impl FnOnce(f64)) -> f64 {
    if u.is_nan() || u == f64::NEG_INFINITY {
        return 0.0;
    }
    if u > *top {
        let s = (*top - u).exp();
        if *mass > 0.0 {
            rescale(s);
        }
        *mass = *mass * s + 1.0;
        *top = u;
        return 1.0;
    }
    let e = (u - *top).exp();
    *mass += e;
    e
}

/// The order of the fused sweep's runs: by their log weights summed over
/// the chunk's clusters (`log_w`, `n_runs` per cluster), highest first,
/// so that a cluster's dense runs come before those negligible against
/// them, which then skip the reverse.
fn run_order(log_w: &[f64], n_runs: usize) -> Vec<usize> {
    let mut sum = vec![0.0; n_runs];
    for lw in log_w.chunks_exact(n_runs) {
        for (s, &x) in sum.iter_mut().zip(lw) {
            *s += x;
        }
    }
    let mut order: Vec<usize> = (0..n_runs).collect();
    order.sort_by(|&a, &b| sum[b].total_cmp(&sum[a]));
    order
}

/// A row's coefficients `a` (in the product form, their sum `s` at least
/// `PRODUCT_TINY`) scaled so that the last is 1 where their sum is at
/// most `unit_limit` times it (exactly 1: the unit stencils take it as
/// 1), to sum to 1 otherwise; the scale taken out and whether the last
/// is 1.
#[inline(always)]
pub(super) fn scale_products(a: &mut [f64], s: f64, unit_limit: f64) -> (Scale, bool) {
    let last = a[a.len() - 1];
    let unit = s <= unit_limit * last;
    let d = if unit { last } else { s };
    let inv = 1.0 / d;
    a.iter_mut().for_each(|x| *x *= inv);
    if unit {
        a[a.len() - 1] = 1.0;
    }
    (Scale::Factor(d), unit)
}

/// A row's coefficients from their logs `a` (a row too small for the
/// products), normalised to sum to 1 in place; the log of the scale
/// taken out, or `None` where every log is −∞ (likelihood 0) or one is
/// not finite.
#[inline(always)]
pub(super) fn scale_logs(a: &mut [f64]) -> Option<Scale> {
    let mx = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !mx.is_finite() {
        return None;
    }
    a.iter_mut().for_each(|x| *x = (*x - mx).exp());
    let s: f64 = a.iter().sum();
    a.iter_mut().for_each(|x| *x /= s);
    Some(Scale::Log(mx + s.ln()))
}

/// The scale a row's coefficients were divided by ([`CpuBackend::row_coefs`]).
#[derive(Clone, Copy)]
pub(super) enum Scale {
    /// The sum of the coefficients, a normal number.
    Factor(f64),
    /// The log of the sum (the coefficients were formed from logs).
    Log(f64),
}

/// A product of a cluster's rows' [`Scale`]s, kept as a factor with its
/// log taken out only when the factor leaves [1e-150, 1e150] (or a scale is
/// beyond 1e±100): one log per cluster, not one per row.
#[derive(Clone, Copy)]
struct LogProduct {
    factor: f64,
    log: f64,
}

impl Default for LogProduct {
    fn default() -> Self {
        LogProduct {
            factor: 1.0,
            log: 0.0,
        }
    }
}

impl LogProduct {
    /// Multiplies by `x`. The factor stays within [1e-150, 1e150] before a
    /// product and a scale multiplied in within [1e-100, 1e100], so that no
    /// product leaves the normal numbers.
    #[inline(always)]
    fn take(&mut self, x: Scale) {
        match x {
            Scale::Factor(s) if (1e-100..=1e100).contains(&s) => {
                self.factor *= s;
                if !(1e-150..=1e150).contains(&self.factor) {
                    self.log += self.factor.ln();
                    self.factor = 1.0;
                }
            }
            Scale::Factor(s) => self.log += s.ln(),
            Scale::Log(l) => self.log += l,
        }
    }

    /// The log of the product.
    #[inline(always)]
    fn ln(self) -> f64 {
        self.log + self.factor.ln()
    }
}

/// A cluster's posterior mass and the posterior moments of the outer
/// dimensions `outer` of `dims` over its runs (posteriors `post`; nodes
/// `z`, `dims` each), into `mo` (zeroed: the mass, the means, the second
/// moments, `1 + dims + dims²`).
pub(crate) fn run_moments(
    (outer, dims): (&[usize], usize),
    post: &[f64],
    z: &[f64],
    mo: &mut [f64],
) {
    for (&p, z) in post.iter().zip(z.chunks_exact(dims)) {
        mo[0] += p;
        for &d in outer {
            mo[1 + d] += p * z[d];
            for &e in outer {
                mo[1 + dims + d * dims + e] += p * z[d] * z[e];
            }
        }
    }
    if mo[0] > 0.0 {
        let inv = 1.0 / mo[0];
        mo[1..].iter_mut().for_each(|v| *v *= inv);
    }
}

/// Whether `a` leaves the inner dimensions on their plain nodes in every
/// unit: centre 0, and the identity's rows and columns in its factors.
fn inner_plain(mf: &MomentForm, a: &Adaptation) -> bool {
    let d = a.dims;
    let inner = |r: usize| mf.inner_dims.contains(&r);
    a.steps.is_empty()
        && (0..a.active.len()).filter(|&u| a.active[u]).all(|u| {
            let chol = &a.chol[u * d * d..(u + 1) * d * d];
            mf.inner_dims.iter().all(|&i| a.centre[u * d + i] == 0.0)
                && a.order.iter().enumerate().all(|(k, &r)| {
                    a.order.iter().enumerate().all(|(m, &c)| {
                        let id = if k == m { 1.0 } else { 0.0 };
                        !(inner(r) || inner(c)) || chol[k * d + m] == id
                    })
                })
        })
}

/// [`CpuBackend::inner_node_weights`] of the inner nodes from `p0`, into
/// `h` (`k` per node).
fn node_weights(mf: &MomentForm, sh: &Shared, agg: &[Vec<f64>], p0: usize, h: &mut [f64]) {
    let k = mf.poly.k;
    let stride = mf.poly.n_max + 1;
    let mut pow = vec![0.0; k * stride];
    for (p, hp) in (p0..).zip(h.chunks_exact_mut(k)) {
        powers(&sh.v[p * k..(p + 1) * k], &mut pow);
        for (di, g) in agg.iter().enumerate() {
            let ex = mf.exponents[di].chunks_exact(k);
            for (&at, e) in mf.entries[di].iter().zip(ex) {
                let c = g[at] * monomial(&pow, stride, e);
                for (x, &ek) in hp.iter_mut().zip(e) {
                    *x += c * f64::from(ek);
                }
            }
        }
        hp.iter_mut().for_each(|x| *x *= sh.w[p]);
    }
}

/// `pow[k * stride + e]` = x_k^e.
fn powers(x: &[f64], pow: &mut [f64]) {
    let stride = pow.len() / x.len();
    for (row, &xk) in pow.chunks_exact_mut(stride).zip(x) {
        let mut acc = 1.0;
        for v in row.iter_mut() {
            *v = acc;
            acc *= xk;
        }
    }
}

/// Inner nodes per task of the shared moments' sums and the inner nodes'
/// weights.
const MOMENT_BLOCK: usize = 512;

/// Most inner nodes per task of the inner terms' values on the pool
/// ([`CpuBackend::inner_blocks`]).
const INNER_BLOCK: usize = 256;

/// The moments' shares of inner nodes `nodes` (probabilities `v`, `k` per
/// node; weights `w`), per degree at their entries (`MomentForm::entries`).
fn block_moments(
    mf: &MomentForm,
    v: &[f64],
    w: &[f64],
    nodes: std::ops::Range<usize>,
) -> Vec<Vec<f64>> {
    let k = mf.poly.k;
    let mut m: Vec<Vec<f64>> = vec![vec![0.0; mf.poly.size]; mf.degrees.len()];
    let mut pow = vec![0.0; k * (mf.poly.n_max + 1)];
    for p in nodes {
        powers(&v[p * k..(p + 1) * k], &mut pow);
        for (di, mi) in m.iter_mut().enumerate() {
            let ex = mf.exponents[di].chunks_exact(k);
            for (&at, e) in mf.entries[di].iter().zip(ex) {
                mi[at] += w[p] * monomial(&pow, mf.poly.n_max + 1, e);
            }
        }
    }
    m
}

/// Π_k x_k^{e_k} from a table of powers (`stride` per variable).
#[inline(always)]
fn monomial(pow: &[f64], stride: usize, e: &[u16]) -> f64 {
    e.iter()
        .enumerate()
        .map(|(k, &ek)| pow[k * stride + ek as usize])
        .product()
}

#[cfg(test)]
mod tests {
    use super::{LogProduct, Scale, admit, run_order};

    /// The product of scales, however small or large each and all of them
    /// are, has the log of the sum of their logs: no factor underflows or
    /// overflows on the way.
    #[test]
    fn a_log_product_equals_the_sum_of_logs() {
        let cases: [&[f64]; 4] = [
            &[0.5, 0.25, 3.0, 1.0],
            &[1e-280; 17],
            &[1e200, 1e-250, 1e300, 1e-90, 1e-120, 1e-130, 2.0],
            &[1e-99, 1e-99, 1e-99, 1e-99, 1e99, 1e99, 1e99],
        ];
        for xs in cases {
            let mut p = LogProduct::default();
            for &x in xs {
                p.take(Scale::Factor(x));
            }
            p.take(Scale::Log(-1234.5));
            let want: f64 = xs.iter().map(|x| x.ln()).sum::<f64>() - 1234.5;
            let got = p.ln();
            assert!(got.is_finite(), "{xs:?}: {got}");
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                "{xs:?}: {got} against {want}"
            );
        }
    }

    /// A weighted sum kept relative to the densest run so far, scaled at
    /// the end by that run's posterior, equals the sum weighted by the
    /// posteriors, in any order of the runs and at log-densities far
    /// beyond the range of a double; and the upper bound of each run's
    /// posterior when it came is at least its posterior.
    #[test]
    fn runs_admitted_in_any_order_sum_to_their_posteriors() {
        let u = [-1000.0, 0.5, 700.0, f64::NEG_INFINITY, 698.0, -5.0, 699.9];
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        let m = u.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = u.iter().map(|v| (v - m).exp()).sum();
        let post: Vec<f64> = u.iter().map(|v| (v - m).exp() / total).collect();
        let want: f64 = post.iter().zip(&x).map(|(p, x)| p * x).sum();
        let orders: [[usize; 7]; 3] = [
            [0, 1, 2, 3, 4, 5, 6],
            [6, 5, 4, 3, 2, 1, 0],
            [3, 2, 0, 6, 1, 5, 4],
        ];
        for order in orders {
            let (mut top, mut mass, mut sum) = (f64::NEG_INFINITY, 0.0, 0.0);
            for &r in &order {
                let e = admit(u[r], &mut top, &mut mass, |s| sum *= s);
                sum += e * x[r];
                // (0 for an impossible run, or one that underflows
                // against the densest so far)
                assert!(e / mass >= post[r] * (1.0 - 1e-12) || post[r] < 1e-300);
                assert!(u[r] > f64::NEG_INFINITY || e == 0.0);
            }
            let top_post = post.iter().copied().fold(0.0, f64::max);
            let got = sum * top_post;
            assert!(
                (got - want).abs() <= 1e-12 * want,
                "{order:?}: {got} against {want}"
            );
            assert!((mass * top_post - 1.0).abs() < 1e-12);
        }
        // the densest runs first by their log weights summed over the
        // clusters (runs 0, 1, 2: −7, −1.5, −4.5)
        let log_w = [-3.0, -1.0, -2.0, -4.0, -0.5, -2.5];
        assert_eq!(run_order(&log_w, 3), vec![1, 2, 0]);
    }
}
