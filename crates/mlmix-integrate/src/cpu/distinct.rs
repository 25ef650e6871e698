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

use mlmix_kernels::eval::{self, InfoAcc, Scratch, Slots};
use mlmix_kernels::{EngineData, Prepared, RowGroups, Term, TermKind, fastmath};

use super::moment::{Scale, scale_logs, scale_products};
use super::{ChunkCx, CpuBackend, PRODUCT_TINY, Workspace};
use crate::layout::{Blocks, MomentForm};

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
/// ([`CpuBackend::row_coef_table`]): per degree of the clusters (whose
/// unit limits differ), the numbers [`CpuBackend::row_coefs`] finds row
/// by row (the scale taken out as its log), found once per evaluation
/// and distinct row, so that a row only copies its distinct row's.
pub(crate) struct CoefTable {
    /// Coefficients per row.
    k: usize,
    /// Per degree: per distinct row its `k` coefficients as scaled, the
    /// scale taken out (`None` where the row has likelihood 0; its
    /// coefficients are then 1) and whether its last coefficient is 1.
    per_degree: Vec<DegreeRows>,
}

/// A [`CoefTable`]'s distinct rows for one degree: coefficients, scales
/// and whether the last coefficient is 1.
type DegreeRows = (Vec<f64>, Vec<Option<Scale>>, Vec<bool>);

impl CoefTable {
    /// Distinct row `d`'s coefficients for the clusters of degree index
    /// `di`, its scale and whether its last coefficient is 1 (as
    /// [`CpuBackend::row_coefs`] returns them).
    #[inline(always)]
    pub(super) fn row(&self, di: usize, d: usize) -> (&[f64], Option<Scale>, bool) {
        let (a, scale, unit) = &self.per_degree[di];
        (&a[d * self.k..(d + 1) * self.k], scale[d], unit[d])
    }
}

/// A distinct row's coefficients before their scaling for a degree.
enum RawRow {
    /// Their product form: the coefficients and their sum.
    Product(Vec<f64>, f64),
    /// Too small for products: scaled from their logs (the same for
    /// every degree), and the scale taken out (`None`: likelihood 0).
    Logs(Vec<f64>, Option<Scale>),
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
    /// outer terms (`bl.outer_terms`, all fixed), for the clusters'
    /// degrees in `mf`: the same arithmetic as [`CpuBackend::outer_coefs`]
    /// and [`CpuBackend::row_coefs`] on each distinct row.
    pub(super) fn row_coef_table(
        &self,
        prep: &Prepared,
        (mf, bl): (&MomentForm, &Blocks),
        d: &DistinctRows,
    ) -> CoefTable {
        let (plan, l) = (&*self.plan, &self.layout);
        let (nd, nt) = (d.data.n_rows(), plan.terms.len());
        let at = Slots {
            stride: nd,
            offset: 0,
        };
        let mut vals = vec![0.0; l.stride * nd];
        let mut scratch = Scratch::default();
        for &t in &bl.outer_terms {
            let o = l.offsets[t] * nd;
            let out = &mut vals[o..o + plan.terms[t].n_states * nd];
            let (term, tp) = (&plan.terms[t], &prep.terms[t]);
            eval::term_values(term, tp, &d.data, 0, nd, at, &mut scratch, out);
        }
        let combos = &l.combos_of_between[0];
        let k = combos.len();
        let val =
            |c: usize, t: usize, r: usize| vals[l.slot_of_combo[c * nt + t] as usize * nd + r];
        let raw: Vec<RawRow> = (0..nd)
            .map(|r| {
                let mut x: Vec<f64> = combos
                    .iter()
                    .map(|&c| {
                        let mut p = 1.0;
                        for &t in &bl.outer_terms {
                            p *= fastmath::exp(val(c, t, r));
                        }
                        p
                    })
                    .collect();
                let mut s = 0.0;
                x.iter().for_each(|v| s += v);
                if s >= PRODUCT_TINY && s.is_finite() {
                    return RawRow::Product(x, s);
                }
                // too small for products: from the outer terms' logs
                for (v, &c) in x.iter_mut().zip(combos) {
                    *v = bl.outer_terms.iter().map(|&t| val(c, t, r)).sum();
                }
                let scale = scale_logs(&mut x);
                RawRow::Logs(x, scale)
            })
            .collect();
        let per_degree = mf
            .unit_limits
            .iter()
            .map(|&unit_limit| {
                let mut a = vec![1.0; nd * k];
                let mut scale = vec![None; nd];
                let mut unit = vec![true; nd];
                for (r, row) in raw.iter().enumerate() {
                    let ar = &mut a[r * k..(r + 1) * k];
                    match row {
                        RawRow::Product(x, s) => {
                            ar.copy_from_slice(x);
                            let (d, u) = scale_products(ar, *s, unit_limit);
                            // (as a log, which a cluster's product of
                            // scales takes with one addition)
                            let log = match d {
                                Scale::Factor(d) => Scale::Log(d.ln()),
                                log => log,
                            };
                            (scale[r], unit[r]) = (Some(log), u);
                        }
                        RawRow::Logs(x, Some(ls)) => {
                            ar.copy_from_slice(x);
                            (scale[r], unit[r]) = (Some(*ls), false);
                        }
                        // likelihood 0: coefficients 1, no scale
                        RawRow::Logs(_, None) => {}
                    }
                }
                (a, scale, unit)
            })
            .collect();
        CoefTable { k, per_degree }
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
