//! The data as the engine sees them: one column per model variable, a
//! frequency weight per row, and clusters as contiguous row ranges.

use std::collections::HashMap;

use mlmix_spec::Dataset;

/// Analysis data laid out for the cluster-likelihood loop.
///
/// Columns follow [`mlmix_spec::Model::variables`], then the model's
/// product columns ([`EngineData::with_products`]); categorical columns hold
/// category indices (0, 1, ...); NaN is missing. Single-level data have one
/// row per cluster. Identical rows may be merged into one row with a
/// frequency weight (this is exact for single-level models: identical rows
/// have identical likelihoods, scores and posteriors).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineData {
    /// One column per model variable, then the product columns, `n_rows`
    /// long.
    pub columns: Vec<Vec<f64>>,
    /// Frequency weight of each row.
    pub weights: Vec<f64>,
    /// Cluster `j` is rows `cluster_starts[j]..cluster_starts[j + 1]`.
    pub cluster_starts: Vec<usize>,
    /// For each analysed row of the [`Dataset`], its row here.
    pub engine_row: Vec<usize>,
    /// Row `r` here is row `row_offset + r` of the data the plan was
    /// compiled for (non-zero for a chunk's local copy).
    pub row_offset: usize,
    /// Two-level layout: `weights` count identical rows within a cluster
    /// (each cluster counts once). Single-level layout: each row is a
    /// cluster and `weights` count identical clusters.
    pub clustered: bool,
}

impl EngineData {
    /// `n` rows of `columns`, each row its own cluster with frequency 1
    /// (a column may be empty where nothing reads it).
    pub fn unclustered(columns: Vec<Vec<f64>>, n: usize) -> Self {
        EngineData {
            columns,
            weights: vec![1.0; n],
            cluster_starts: (0..=n).collect(),
            engine_row: (0..n).collect(),
            row_offset: 0,
            clustered: false,
        }
    }

    /// Lays out a dataset, one row per cluster. With `collapse`, identical
    /// rows become one weighted row (in order of first appearance, so the
    /// result does not depend on hashing).
    pub fn single_level(ds: &Dataset, collapse: bool) -> Self {
        let n = ds.n_rows();
        let cols: Vec<&[f64]> = ds.columns.iter().map(Vec::as_slice).collect();
        let groups = collapse.then(|| RowGroups::of(&cols, 0..n, usize::MAX));
        let Some(Some(groups)) = groups else {
            return EngineData::unclustered(ds.columns.clone(), n);
        };
        let (engine_row, first_rows, weights) = (groups.group, groups.first, groups.count);
        let columns = ds
            .columns
            .iter()
            .map(|c| first_rows.iter().map(|&r| c[r]).collect())
            .collect();
        let m = first_rows.len();
        EngineData {
            columns,
            weights,
            cluster_starts: (0..=m).collect(),
            engine_row,
            row_offset: 0,
            clustered: false,
        }
    }

    /// Lays out a dataset in clusters: `cluster[r]` is row `r`'s cluster id.
    /// Clusters are numbered in order of first appearance and their rows
    /// made contiguous (keeping the file order within a cluster), so rows of
    /// one cluster need not be contiguous in the file. With `collapse`,
    /// identical rows of one cluster become one weighted row (exact: given
    /// the between-level classes and random effects they have identical
    /// likelihoods, scores and posteriors).
    pub fn two_level(ds: &Dataset, cluster: &[f64], collapse: bool) -> Self {
        let n = ds.n_rows();
        let mut id_of: HashMap<u64, usize> = HashMap::new();
        let mut members: Vec<Vec<usize>> = Vec::new();
        for (r, &c) in cluster.iter().enumerate().take(n) {
            let key = value_key(c);
            let j = *id_of.entry(key).or_insert_with(|| {
                members.push(Vec::new());
                members.len() - 1
            });
            members[j].push(r);
        }
        let mut order: Vec<usize> = Vec::with_capacity(n);
        let mut weights: Vec<f64> = Vec::with_capacity(n);
        let mut engine_row = vec![0; n];
        let mut cluster_starts = Vec::with_capacity(members.len() + 1);
        cluster_starts.push(0);
        let cols: Vec<&[f64]> = ds.columns.iter().map(Vec::as_slice).collect();
        for m in &members {
            let groups = collapse.then(|| RowGroups::of(&cols, m.iter().copied(), usize::MAX));
            if let Some(Some(groups)) = groups {
                let at = order.len();
                for (&r, &g) in m.iter().zip(&groups.group) {
                    engine_row[r] = at + g;
                }
                order.extend(&groups.first);
                weights.extend(&groups.count);
            } else {
                for &r in m {
                    engine_row[r] = order.len();
                    order.push(r);
                    weights.push(1.0);
                }
            }
            cluster_starts.push(order.len());
        }
        EngineData {
            columns: ds
                .columns
                .iter()
                .map(|c| order.iter().map(|&r| c[r]).collect())
                .collect(),
            weights,
            cluster_starts,
            engine_row,
            row_offset: 0,
            clustered: true,
        }
    }

    /// Appends the product columns `x * w` of pairs of columns (a random
    /// slope on `x` whose mean depends on the between-level `w`: see
    /// `Model::product_columns`), after the columns it has, in order.
    /// Exact after merging identical rows: a product is a function of its
    /// row.
    pub fn with_products(mut self, pairs: &[(usize, usize)]) -> Self {
        for &(x, w) in pairs {
            let col: Vec<f64> = self.columns[x]
                .iter()
                .zip(&self.columns[w])
                .map(|(a, b)| a * b)
                .collect();
            self.columns.push(col);
        }
        self
    }

    /// A copy of rows `r0..r1` with `extra` more columns (filled with 0)
    /// after the data columns: a chunk's local data, whose extra columns the
    /// backend rewrites for every integration node.
    pub fn local_copy(&self, r0: usize, r1: usize, extra: usize) -> Self {
        let mut out = EngineData {
            columns: Vec::new(),
            weights: Vec::new(),
            cluster_starts: Vec::new(),
            engine_row: Vec::new(),
            row_offset: 0,
            clustered: self.clustered,
        };
        self.local_copy_into(r0, r1, extra, &mut out);
        out
    }

    /// [`EngineData::local_copy`] into `dst`, in the buffers it has (a
    /// chunk's copy made for every evaluation allocates nothing once they
    /// are large enough).
    pub fn local_copy_into(&self, r0: usize, r1: usize, extra: usize, dst: &mut EngineData) {
        let n_cols = self.columns.len();
        dst.columns.resize_with(n_cols + extra, Vec::new);
        for (d, c) in dst.columns.iter_mut().zip(&self.columns) {
            d.clear();
            d.extend_from_slice(&c[r0..r1]);
        }
        for d in &mut dst.columns[n_cols..] {
            d.clear();
            d.resize(r1 - r0, 0.0);
        }
        dst.weights.clear();
        dst.weights.extend_from_slice(&self.weights[r0..r1]);
        dst.cluster_starts.clear();
        dst.cluster_starts.extend([0, r1 - r0]);
        dst.engine_row.clear();
        dst.row_offset = self.row_offset + r0;
        dst.clustered = self.clustered;
    }

    /// Number of (engine) rows.
    pub fn n_rows(&self) -> usize {
        self.weights.len()
    }

    /// Number of clusters.
    pub fn n_clusters(&self) -> usize {
        self.cluster_starts.len() - 1
    }

    /// Sum of the frequency weights: the number of analysed rows.
    pub fn total_weight(&self) -> f64 {
        self.weights.iter().sum()
    }
}

/// A value's key for grouping rows: its bits, every missing value alike
/// and −0 as 0.
fn value_key(x: f64) -> u64 {
    if x.is_nan() {
        u64::MAX
    } else {
        (x + 0.0).to_bits()
    }
}

/// Rows grouped by their values in some columns ([`RowGroups::of`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RowGroups {
    /// Per row, in the order given: its group.
    pub group: Vec<usize>,
    /// Per group: its first row.
    pub first: Vec<usize>,
    /// Per group: its number of rows.
    pub count: Vec<f64>,
}

impl RowGroups {
    /// `rows` grouped by their values in `columns` ([`value_key`]),
    /// the groups in order of first appearance (so the result does not
    /// depend on hashing); `None` where there are more than `most`.
    pub fn of(
        columns: &[&[f64]],
        rows: impl Iterator<Item = usize>,
        most: usize,
    ) -> Option<RowGroups> {
        let mut index: HashMap<Vec<u64>, usize> = HashMap::new();
        let mut g = RowGroups {
            group: Vec::new(),
            first: Vec::new(),
            count: Vec::new(),
        };
        let mut key = Vec::with_capacity(columns.len());
        for r in rows {
            key.clear();
            key.extend(columns.iter().map(|c| value_key(c[r])));
            let e = match index.get(&key) {
                Some(&e) => e,
                None => {
                    if g.first.len() == most {
                        return None;
                    }
                    index.insert(key.clone(), g.first.len());
                    g.first.push(r);
                    g.count.push(0.0);
                    g.first.len() - 1
                }
            };
            g.count[e] += 1.0;
            g.group.push(e);
        }
        Some(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(columns: Vec<Vec<f64>>) -> Dataset {
        let n = columns[0].len();
        Dataset {
            file: "test.dat".into(),
            columns,
            ids: None,
            lines: (1..=n).collect(),
            rows_read: n,
            excluded: Vec::new(),
            clusters: None,
        }
    }

    /// Rows group by their values, every missing value alike and −0 as 0,
    /// in order of first appearance; past `most` groups, none.
    #[test]
    fn rows_group_by_their_values() {
        let nan = f64::NAN;
        let (a, b) = (
            [1.0, 2.0, 1.0, nan, -0.0, nan],
            [0.0, 0.0, 0.0, 5.0, 3.0, 5.0],
        );
        let a2 = [1.0, 2.0, 1.0, -nan, 0.0, nan];
        let g = RowGroups::of(&[&a, &b], 0..6, usize::MAX).expect("no limit");
        assert_eq!(g.group, [0, 1, 0, 2, 3, 2]);
        assert_eq!(g.first, [0, 1, 3, 4]);
        assert_eq!(g.count, [2.0, 1.0, 2.0, 1.0]);
        let h = RowGroups::of(&[&a2, &b], [4, 5, 3, 0].into_iter(), 4).expect("3 groups");
        assert_eq!((h.group, h.first), (vec![0, 1, 1, 2], vec![4, 5, 0]));
        assert!(RowGroups::of(&[&a, &b], 0..6, 3).is_none());
    }

    /// Collapsed two-level data merge identical rows within a cluster, not
    /// across clusters, and every row finds its merged row.
    #[test]
    fn two_level_collapse_merges_within_clusters() {
        let ds = dataset(vec![vec![1.0, 1.0, 2.0, 1.0, 1.0, 2.0]]);
        let cluster = [7.0, 8.0, 7.0, 7.0, 8.0, 8.0];
        let e = EngineData::two_level(&ds, &cluster, true);
        assert_eq!(e.columns[0], [1.0, 2.0, 1.0, 2.0]);
        assert_eq!(e.weights, [2.0, 1.0, 2.0, 1.0]);
        assert_eq!(e.cluster_starts, [0, 2, 4]);
        assert_eq!(e.engine_row, [0, 2, 1, 0, 2, 3]);
        let s = EngineData::single_level(&ds, true);
        assert_eq!(
            (s.columns[0].clone(), s.weights),
            (vec![1.0, 2.0], vec![4.0, 2.0])
        );
        assert_eq!(s.engine_row, [0, 0, 1, 0, 0, 1]);
    }
}
