//! Fixed terms on their distinct rows. A term that reads no integration
//! dimension has, on each row, a value that depends on the columns it
//! reads alone (its item and its covariates). Long data repeats few such
//! rows many times: a GoM's 17 binary items with their dummies take 34
//! distinct (response, dummies) rows among 7,000 persons' 119,000. Such a
//! term's values are computed once per distinct row and copied to the
//! rows, instead of a linear predictor over every covariate and a
//! logarithm per row. The copies are the values themselves: the results
//! are unchanged, bit for bit. The gradient and the expected information
//! are linear in each row's weights (frequency × posterior, per state):
//! the weights are summed per distinct row and the term accumulated once
//! per distinct row (the same sums, in another order).

use mlmix_kernels::eval::{self, InfoAcc, Slots};
use mlmix_kernels::{EngineData, Prepared, RowGroups, Term, TermKind, fastmath};

use super::moment::Scale;
use super::{ChunkCx, CpuBackend, PRODUCT_TINY, Workspace};
use crate::layout::Blocks;

/// A fixed term's rows by the distinct values of the columns it reads
/// ([`DistinctRows::of`]).
pub(super) struct DistinctRows {
    /// The distinct rows, in order of first appearance: the term's
    /// columns only (the others are empty).
    data: EngineData,
    /// Per row of the backend's data: its distinct row.
    id: Vec<usize>,
}

/// Most distinct rows of a term, as a share of all rows, for which its
/// values go by distinct rows (beyond it, copying costs about as much as
/// the values).
const MOST_DISTINCT_SHARE: usize = 8;

impl DistinctRows {
    /// The distinct rows of `term` in `data`, where the term reads no
    /// integration dimension, counts on every row (not a cluster-level
    /// term, which counts on its clusters' first rows), is an item of a
    /// kind whose values depend on its response and covariates alone, and
    /// has at most a [`MOST_DISTINCT_SHARE`]th as many distinct rows as
    /// rows; `None` otherwise.
    pub(super) fn of(term: &Term, data: &EngineData) -> Option<DistinctRows> {
        Self::of_columns(&Self::columns(term)?, data)
    }

    /// The distinct rows of the columns that `terms` read, where each
    /// qualifies as in [`DistinctRows::of`] (and there is at least one).
    pub(super) fn of_terms<'a>(
        terms: impl IntoIterator<Item = &'a Term>,
        data: &EngineData,
    ) -> Option<DistinctRows> {
        let mut cols = Vec::new();
        for t in terms {
            cols.extend(Self::columns(t)?);
        }
        cols.sort_unstable();
        cols.dedup();
        if cols.is_empty() {
            return None;
        }
        Self::of_columns(&cols, data)
    }

    /// The columns `term` reads, where its values depend on them alone
    /// (see [`DistinctRows::of`]).
    fn columns(term: &Term) -> Option<Vec<usize>> {
        if term.uses_nodes || term.cluster_level {
            return None;
        }
        match &term.kind {
            TermKind::Categorical { col, covs, .. }
            | TermKind::Guessing { col, covs, .. }
            | TermKind::Nominal { col, covs, .. }
            | TermKind::Normal { col, covs } => {
                Some(std::iter::once(*col).chain(covs.iter().copied()).collect())
            }
            _ => None,
        }
    }

    /// The distinct rows of `cols` in `data`, where they are at most a
    /// [`MOST_DISTINCT_SHARE`]th of the rows.
    fn of_columns(cols: &[usize], data: &EngineData) -> Option<DistinctRows> {
        let n = data.n_rows();
        let read: Vec<&[f64]> = cols.iter().map(|&c| data.columns[c].as_slice()).collect();
        let groups = RowGroups::of(&read, 0..n, n / MOST_DISTINCT_SHARE)?;
        let mut columns = vec![Vec::new(); data.columns.len()];
        for &c in cols {
            columns[c] = groups.first.iter().map(|&r| data.columns[c][r]).collect();
        }
        let data = EngineData::unclustered(columns, groups.first.len());
        Some(DistinctRows {
            data,
            id: groups.group,
        })
    }

    /// Row `row`'s distinct row (rows numbered as in the backend's data).
    #[inline(always)]
    pub(super) fn id(&self, row: usize) -> usize {
        self.id[row]
    }
}

/// The moment form's row coefficients (the products of the outer terms'
/// probabilities per class combination, scaled) on the distinct rows of
/// the outer terms, where these are all fixed terms on few distinct rows
/// ([`CpuBackend::coef_table`]): the numbers [`CpuBackend::row_coefs`]
/// finds row by row, found once per distinct row, so that a row only
/// copies its distinct row's.
#[derive(Default)]
pub(super) struct CoefTable {
    /// Coefficients per row.
    k: usize,
    /// Per distinct row, its coefficients divided by the last (which is
    /// then exactly 1), and divided by their sum; on the log path (a
    /// sum too small for products) both are the normalised
    /// exponentials.
    by_last: Vec<f64>,
    by_sum: Vec<f64>,
    /// Per distinct row: the sum and the last of its coefficients (NaN on
    /// the log path).
    sum: Vec<f64>,
    last: Vec<f64>,
    /// Per distinct row on the log path: the log of the scale taken out,
    /// −∞ where the row has likelihood 0 (NaN on the product path).
    log: Vec<f64>,
    /// The outer terms' values on the distinct rows (their slots).
    vals: Vec<f64>,
}

impl CoefTable {
    /// Distinct row `d`'s coefficients into `a`, scaled as
    /// [`CpuBackend::row_coefs`] scales them for `unit_limit`; the scale
    /// taken out and whether the last is 1, or `None` when the row has
    /// likelihood 0.
    #[inline(always)]
    pub(super) fn row(&self, d: usize, a: &mut [f64], unit_limit: f64) -> Option<(Scale, bool)> {
        let k = self.k;
        let at = d * k..(d + 1) * k;
        let (s, last) = (self.sum[d], self.last[d]);
        if s.is_nan() {
            let l = self.log[d];
            if l == f64::NEG_INFINITY {
                return None;
            }
            a.copy_from_slice(&self.by_sum[at]);
            return Some((Scale::Log(l), false));
        }
        if s <= unit_limit * last {
            a.copy_from_slice(&self.by_last[at]);
            Some((Scale::Factor(last), true))
        } else {
            a.copy_from_slice(&self.by_sum[at]);
            Some((Scale::Factor(s), false))
        }
    }
}

impl CpuBackend {
    /// Fixed term `t`'s values on the chunk's rows into `ws.vals` (its
    /// slots), and in the product form their exponentials into
    /// `ws.evals`, computed on its distinct rows `d` and copied to the
    /// rows.
    #[inline(always)]
    pub(super) fn distinct_values(
        &self,
        prep: &Prepared,
        t: usize,
        d: &DistinctRows,
        cx: &ChunkCx,
        ws: &mut Workspace,
    ) {
        let term = &self.plan.terms[t];
        let (nd, nr) = (d.data.n_rows(), cx.row_j.len());
        let at = Slots {
            stride: nd,
            offset: 0,
        };
        let buf = &mut ws.distinct;
        buf.resize(2 * term.n_states * nd, 0.0);
        let (vals, exps) = buf.split_at_mut(term.n_states * nd);
        let tp = &prep.terms[t];
        eval::term_values(term, tp, &d.data, 0, nd, at, &mut ws.scratch, vals);
        let (slots, ids) = (self.layout.slots(t), &d.id[cx.r0..cx.r1]);
        let gather = |src: &[f64], dst: &mut [f64]| {
            for (v, &i) in dst.iter_mut().zip(ids) {
                *v = src[i];
            }
        };
        for s in 0..term.n_states {
            gather(&vals[at.state(s, nd)], &mut ws.vals[slots.state(s, nr)]);
        }
        if self.layout.product_form {
            for (e, &v) in exps.iter_mut().zip(vals.iter()) {
                *e = fastmath::exp(v);
            }
            for s in 0..term.n_states {
                gather(&exps[at.state(s, nd)], &mut ws.evals[slots.state(s, nr)]);
            }
        }
    }

    /// The moment form's [`CoefTable`] on the distinct rows `d` of its
    /// outer terms `bl.outer_terms` (all fixed), into `ws.pol.table`: the
    /// same arithmetic as [`CpuBackend::outer_coefs`] and
    /// [`CpuBackend::row_coefs`] on each distinct row.
    pub(super) fn coef_table(
        &self,
        prep: &Prepared,
        bl: &Blocks,
        d: &DistinctRows,
        ws: &mut Workspace,
    ) {
        let (plan, l) = (&*self.plan, &self.layout);
        let nd = d.data.n_rows();
        let nt = plan.terms.len();
        let at = Slots {
            stride: nd,
            offset: 0,
        };
        let combos = &l.combos_of_between[0];
        let k = combos.len();
        let tb = &mut ws.pol.table;
        tb.k = k;
        tb.vals.resize(l.stride * nd, 0.0);
        for &t in &bl.outer_terms {
            let o = l.offsets[t] * nd;
            let vals = &mut tb.vals[o..o + plan.terms[t].n_states * nd];
            eval::term_values(
                &plan.terms[t],
                &prep.terms[t],
                &d.data,
                0,
                nd,
                at,
                &mut ws.scratch,
                vals,
            );
        }
        for buf in [&mut tb.by_last, &mut tb.by_sum] {
            buf.resize(nd * k, 0.0);
        }
        for buf in [&mut tb.sum, &mut tb.last, &mut tb.log] {
            buf.resize(nd, f64::NAN);
        }
        let val =
            |c: usize, t: usize, r: usize| tb.vals[l.slot_of_combo[c * nt + t] as usize * nd + r];
        let mut raw = vec![0.0; k];
        for r in 0..nd {
            for (x, &c) in raw.iter_mut().zip(combos) {
                *x = 1.0;
                for &t in &bl.outer_terms {
                    *x *= fastmath::exp(val(c, t, r));
                }
            }
            let mut s = 0.0;
            raw.iter().for_each(|x| s += x);
            let (by_last, by_sum) = (
                &mut tb.by_last[r * k..(r + 1) * k],
                &mut tb.by_sum[r * k..(r + 1) * k],
            );
            if s >= PRODUCT_TINY && s.is_finite() {
                let last = raw[k - 1];
                let (il, is) = (1.0 / last, 1.0 / s);
                for ((bl_, bs), &x) in by_last.iter_mut().zip(by_sum.iter_mut()).zip(&raw) {
                    (*bl_, *bs) = (x * il, x * is);
                }
                by_last[k - 1] = 1.0;
                (tb.sum[r], tb.last[r], tb.log[r]) = (s, last, f64::NAN);
                continue;
            }
            // too small for products: from the outer terms' logs
            for (x, &c) in raw.iter_mut().zip(combos) {
                *x = bl.outer_terms.iter().map(|&t| val(c, t, r)).sum();
            }
            let mx = raw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (tb.sum[r], tb.last[r]) = (f64::NAN, f64::NAN);
            if !mx.is_finite() {
                tb.log[r] = f64::NEG_INFINITY;
                continue;
            }
            raw.iter_mut().for_each(|x| *x = (*x - mx).exp());
            let s: f64 = raw.iter().sum();
            for (b, &x) in by_sum.iter_mut().zip(&raw) {
                *b = x / s;
            }
            by_last.copy_from_slice(by_sum);
            tb.log[r] = mx + s.ln();
        }
    }

    /// Fixed term `t`'s gradient into `grad` and expected information into
    /// `info` (where given) from the chunk's rows' weights `w` (its slots)
    /// and frequencies `freq`, the weights summed per distinct row of `d`
    /// into `ws.distinct` first.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn distinct_accumulate(
        &self,
        prep: &Prepared,
        t: usize,
        d: &DistinctRows,
        cx: &ChunkCx,
        freq: &[f64],
        ws: &mut Workspace,
        grad: Option<&mut [f64]>,
        info: Option<&mut InfoAcc>,
    ) {
        let term = &self.plan.terms[t];
        let (nd, nr) = (d.data.n_rows(), cx.row_j.len());
        let at = Slots {
            stride: nd,
            offset: 0,
        };
        ws.distinct.clear();
        ws.distinct.resize(term.n_states * nd, 0.0);
        let (slots, ids) = (self.layout.slots(t), &d.id[cx.r0..cx.r1]);
        for s in 0..term.n_states {
            let sums = &mut ws.distinct[at.state(s, nd)];
            let w = &ws.w[slots.state(s, nr)];
            for ((&wi, &fi), &i) in w.iter().zip(freq).zip(ids) {
                sums[i] += fi * wi;
            }
        }
        let (data, ones) = (&d.data, &d.data.weights);
        let given = (None, &mut ws.scratch);
        let sums = &ws.distinct;
        let tp = &prep.terms[t];
        eval::term_accumulate(term, tp, data, 0, nd, at, sums, ones, given, grad, info);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows with the same response and covariates share a distinct row
    /// (missing values alike), in order of first appearance; a column
    /// the term does not read does not split them.
    #[test]
    fn rows_group_by_the_columns_the_term_reads() {
        let nan = f64::NAN;
        let y = [
            0.0, 1.0, 0.0, nan, 1.0, 0.0, nan, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0,
        ];
        let d = [
            1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0,
        ];
        // twice over: 32 rows, so up to 4 distinct ones
        let (y, d) = ([y, y].concat(), [d, d].concat());
        let other: Vec<f64> = (0..y.len()).map(|i| i as f64).collect();
        let n = y.len();
        let e = EngineData::unclustered(vec![y, d, other], n);
        let d = DistinctRows::of(&term(vec![1]), &e).expect("few distinct rows");
        assert_eq!(d.data.n_rows(), 3, "(0, 1), (1, 0), (missing, 1)");
        let want = [0, 1, 0, 2, 1, 0, 2, 0, 1, 0, 0, 1, 0, 0, 1, 0];
        assert_eq!(d.id, [want, want].concat());
        assert_eq!(d.data.columns[0][..2], [0.0, 1.0]);
        assert!(d.data.columns[0][2].is_nan());
        assert!(d.data.columns[2].is_empty());
        // more distinct rows than an eighth of the rows: none
        assert!(DistinctRows::of(&term(vec![2]), &e).is_none());
    }

    fn term(covs: Vec<usize>) -> Term {
        Term {
            kind: TermKind::Categorical {
                col: 0,
                ncat: 2,
                link: mlmix_kernels::link::Link::Logit,
                covs,
            },
            n_states: 1,
            state_of_combo: vec![0],
            n_sets: 1,
            set_of_state: vec![0],
            n_local: 2,
            phi_index: vec![0, 1],
            cluster_level: false,
            uses_nodes: false,
            info_pairs: Vec::new(),
        }
    }
}
