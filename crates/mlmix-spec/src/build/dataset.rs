//! The data file: opening it and reading its column names (the second
//! phase, with the names DATA WIDETOLONG and DEFINE give, `transforms`),
//! and reading the analysed rows once the model is known (through the
//! transformations; exclusions, cluster ids, BETWEEN variables constant
//! within clusters, categories).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::declarations::{DataCol, Decls};
use super::options::Options;
use super::transforms::{Transformed, Transforms};
use super::{Builder, Dataset, Excluded, ExclusionReason};
use crate::data::{self, RawData, ReadRequest};
use crate::diag::Diagnostic;
use crate::source::{Source, Span};

/// The data file, opened, with the names of its columns.
pub(super) struct DataFile {
    /// FILE as written in the input file.
    pub(super) written: String,
    /// The FILE statement.
    pub(super) span: Span,
    /// FILE, relative to the folder of the input file.
    pub(super) path: PathBuf,
    /// The file's text.
    pub(super) src: Source,
    /// The first line holds the column names (NAMES is not given).
    pub(super) header: bool,
    /// The variables VARIABLE sees: the file's columns, as changed by DATA
    /// WIDETOLONG and DEFINE (`transforms`).
    pub(super) names: Vec<String>,
    /// One name per data column: NAMES, or the header row.
    pub(super) file_names: Vec<String>,
    /// DATA WIDETOLONG and DEFINE, resolved.
    pub(super) transforms: Transforms,
}

impl DataFile {
    /// The span of variable `col` on data-file line `line` (in a row of
    /// repetition `rep`, after DATA WIDETOLONG): its field when the value
    /// is the file's, else the whole line.
    pub(super) fn field_span(&self, line: usize, col: DataCol, rep: Option<usize>) -> Span {
        let field = self.transforms.file_column(col.0, rep);
        // a column past the last gives the whole line
        data::field_span(&self.src, line, field.unwrap_or(usize::MAX), self.header)
    }
}

impl Builder<'_> {
    /// Opens the data file FILE names and finds its column names. Without
    /// FILE it says so (once: an earlier error may already have).
    pub(super) fn open_data(&mut self, opts: &Options<'_>) -> Option<DataFile> {
        if self.mc.is_some() {
            let src = self.mc_data(opts)?;
            let file_names: Vec<String> =
                opts.names.as_ref()?.iter().map(|n| n.0.clone()).collect();
            let (names, transforms) = self.transforms(opts, &file_names)?;
            let written = src
                .path()
                .file_name()
                .map_or(String::new(), |f| f.to_string_lossy().into_owned());
            return Some(DataFile {
                written,
                span: opts.mc.as_ref().map_or(Span::default(), |m| m.header),
                path: src.path().to_path_buf(),
                src,
                header: false,
                names,
                file_names,
                transforms,
            });
        }
        let Some((written, span)) = opts.file.clone() else {
            if !self.diags.has_errors() {
                self.diags.push(
                    Diagnostic::error_nowhere(format!(
                        "{}: DATA: gives no FILE; say where the data are with DATA: FILE = ...;",
                        self.src.path().display()
                    ))
                    .with_help("FILE is read relative to the folder of the input file"),
                );
            }
            return None;
        };
        let (written, path) = match opts.montecarlo_list {
            Some(type_span) => self.listed_data_set(&written, span, type_span)?,
            None => {
                let path = self.base_dir().join(&written);
                (written, path)
            }
        };
        let src = match data::read_text(&path, &written) {
            Ok(s) => s,
            Err(d) => {
                let msg = d.message.clone();
                let help = match opts.montecarlo_list {
                    Some(_) => "the listed data sets are read relative to the list's folder",
                    None => "FILE is read relative to the folder of the input file",
                };
                self.err_help(span, msg, help);
                return None;
            }
        };
        if src.text().trim().is_empty() {
            self.err(span, format!("data file '{written}' is empty"));
            return None;
        }
        let header = opts.names.is_none();
        let file_names: Vec<String> = match &opts.names {
            Some(n) => n.iter().map(|(s, _)| s.clone()).collect(),
            None => self.header_names(&src, &written, span)?,
        };
        let (names, transforms) = self.transforms(opts, &file_names)?;
        Some(DataFile {
            written,
            span,
            path,
            src,
            header,
            names,
            file_names,
            transforms,
        })
    }

    /// DATA: TYPE = MONTECARLO: FILE (`list`, relative to the input file)
    /// lists data sets, one file name per line, relative to the list's
    /// folder; the data set of the external run's replication, as
    /// (name as listed, path). Outside an external run (a plain load) it
    /// says how such an input is run.
    fn listed_data_set(
        &mut self,
        list: &str,
        span: Span,
        type_span: Span,
    ) -> Option<(String, PathBuf)> {
        if self.external.is_none() {
            self.err_help(
                type_span,
                "DATA: TYPE = MONTECARLO lists the data sets of a Monte Carlo study",
                "`mlmix fit` fits the model to each data set and summarises them",
            );
            return None;
        }
        let list_path = self.base_dir().join(list);
        let text = match data::read_text(&list_path, list) {
            Ok(s) => s,
            Err(d) => {
                self.err_help(
                    span,
                    d.message.clone(),
                    "FILE is read relative to the folder of the input file",
                );
                return None;
            }
        };
        let dir = list_path.parent().unwrap_or(Path::new("")).to_path_buf();
        let names: Vec<String> = text
            .text()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| l.trim_matches('"').to_string())
            .collect();
        if names.is_empty() {
            self.err(span, format!("the list of data sets '{list}' is empty"));
            return None;
        }
        let run = self.external.as_mut()?;
        run.files = names.iter().map(|n| dir.join(n)).collect();
        let rep = run.rep;
        match names.get(rep.wrapping_sub(1)) {
            Some(name) => Some((name.clone(), dir.join(name))),
            None => {
                self.err(
                    span,
                    format!("'{list}' lists {} data sets, not {rep}", names.len()),
                );
                None
            }
        }
    }

    /// The column names in the first line of a CSV file (no NAMES given).
    fn header_names(&mut self, src: &Source, written: &str, span: Span) -> Option<Vec<String>> {
        match data::csv_header(src) {
            Ok(n) => {
                // numbers separated by commas or blanks (free format)
                let numbers = |s: &String| s.split_whitespace().all(|w| w.parse::<f64>().is_ok());
                if n.iter().all(numbers) {
                    self.err_help(
                        span,
                        format!("NAMES is not given, and the first line of '{written}' is not a header row"),
                        "give the column names with NAMES = ...; in VARIABLE:",
                    );
                    return None;
                }
                if let [one] = n.as_slice()
                    && one.split_whitespace().nth(1).is_some()
                {
                    self.err_help(
                        span,
                        format!("NAMES is not given, and the header row of '{written}' is not comma-separated"),
                        "separate the names in the first line with commas, or delete that line and give the names with NAMES = ...; in VARIABLE:",
                    );
                    return None;
                }
                Some(n)
            }
            Err(d) => {
                self.diags.push(d);
                None
            }
        }
    }

    /// Reads the analysed rows (USEVARIABLES, then the cluster ids of a
    /// two-level model) and checks them: NOBSERVATIONS, cluster ids,
    /// categorical codes, BETWEEN variables constant within clusters.
    /// `is_dep` says which USEVARIABLES are dependent variables.
    pub(super) fn read_data(
        &mut self,
        file: &DataFile,
        opts: &Options<'_>,
        d: &Decls,
        is_dep: &[bool],
    ) -> Option<Dataset> {
        let mut wanted: Vec<usize> = d.usev.iter().map(|c| c.0).collect();
        if self.twolevel
            && let Some(cc) = d.cluster_col
        {
            wanted.push(cc.0);
        }
        let Transformed {
            raw,
            reps,
            file_rows,
        } = self.read_rows(file, &wanted, d)?;
        if let Some((n, span)) = opts.nobs
            && n != file_rows
        {
            self.err(
                span,
                format!("NOBSERVATIONS = {n} but the data file has {file_rows} rows"),
            );
        }
        let rep_of = |r: usize| reps.as_ref().and_then(|v| v.get(r).copied());
        if self.twolevel
            && let Some(cc) = d.cluster_col
        {
            let col = &raw.columns[d.usev.len()];
            if let Some(r) = col.iter().position(|x| x.is_nan()) {
                let span = file.field_span(raw.lines[r], cc, rep_of(r));
                self.diags.push(
                    Diagnostic::error(
                        &file.src,
                        span,
                        format!("the cluster id ({}) is missing", file.names[cc.0]),
                    )
                    .with_help("every row needs a cluster id; remove the row or give it one"),
                );
                return None;
            }
        }
        let (mut dataset, kept_reps) =
            self.prepare_data(file, raw, reps.as_deref(), d, is_dep, opts.listwise)?;
        if self.twolevel {
            dataset.clusters = dataset.columns.pop();
            self.between_constant(file, d, &dataset, kept_reps.as_deref())?;
        }
        Some(dataset)
    }

    /// The rows of the `wanted` variables: straight from the file, or
    /// through DATA WIDETOLONG and DEFINE.
    fn read_rows(&mut self, file: &DataFile, wanted: &[usize], d: &Decls) -> Option<Transformed> {
        if !file.transforms.is_empty() {
            return self.read_transformed(file, wanted, d.id_col, &d.missing);
        }
        let req = ReadRequest {
            names: &file.file_names,
            header: file.header,
            wanted,
            id: d.id_col.map(|c| c.0),
            missing: &d.missing,
        };
        match data::read(&file.src, &req) {
            Ok(raw) => Some(Transformed {
                file_rows: raw.n_rows(),
                raw,
                reps: None,
            }),
            Err(d) => {
                self.diags.push(d);
                None
            }
        }
    }

    /// Checks that BETWEEN variables are constant within each cluster
    /// (`reps`: the repetition of each row, after DATA WIDETOLONG).
    fn between_constant(
        &mut self,
        file: &DataFile,
        d: &Decls,
        dataset: &Dataset,
        reps: Option<&[usize]>,
    ) -> Option<()> {
        let Some(cl) = &dataset.clusters else {
            return Some(());
        };
        let show = |x: f64| {
            if x.is_nan() {
                "missing".to_string()
            } else {
                x.to_string()
            }
        };
        for &v in &d.between {
            let mut first: HashMap<u64, (f64, usize)> = HashMap::new();
            for (r, (&x, &c)) in dataset.columns[v].iter().zip(cl).enumerate() {
                let e = first
                    .entry((c + 0.0).to_bits())
                    .or_insert((x, dataset.lines[r]));
                let differ = if x.is_nan() { !e.0.is_nan() } else { e.0 != x };
                if differ {
                    let rep = reps.and_then(|v| v.get(r).copied());
                    let span = file.field_span(dataset.lines[r], d.usev[v], rep);
                    self.diags.push(
                        Diagnostic::error(
                            &file.src,
                            span,
                            format!(
                                "{} is a BETWEEN variable but varies within cluster {c}: it is {} on line {} and {} here",
                                d.use_names[v], show(e.0), e.1, show(x)
                            ),
                        )
                        .with_help("a BETWEEN variable takes one value per cluster; list it in WITHIN if it varies"),
                    );
                    return None;
                }
            }
        }
        Some(())
    }
    /// Leaves out the rows that cannot be analysed (with a warning per
    /// reason) and checks that categorical codes are whole numbers. `reps`
    /// is the repetition of each row (after DATA WIDETOLONG); the
    /// repetitions of the analysed rows are returned with them.
    fn prepare_data(
        &mut self,
        file: &DataFile,
        raw: RawData,
        reps: Option<&[usize]>,
        d: &Decls,
        is_dep: &[bool],
        listwise: bool,
    ) -> Option<(Dataset, Option<Vec<usize>>)> {
        let n = raw.n_rows();
        let (keep, excluded) = exclusions(&raw, is_dep, listwise);
        // categorical values must be whole numbers
        for &v in &d.categorical {
            for (r, (&x, &kept)) in raw.columns[v].iter().zip(&keep).enumerate() {
                if kept && !x.is_nan() && x.fract() != 0.0 {
                    let line = raw.lines[r];
                    let rep = reps.and_then(|v| v.get(r).copied());
                    let span = file.field_span(line, d.usev[v], rep);
                    self.diags.push(
                        Diagnostic::error(
                            &file.src,
                            span,
                            format!(
                                "{} is CATEGORICAL but has the value {x}, which is not a whole number",
                                d.use_names[v]
                            ),
                        )
                        .with_help("categorical variables take whole-number codes (0, 1, 2 or 1, 2, ...)"),
                    );
                    return None;
                }
            }
        }
        let rows_read = n;
        let columns: Vec<Vec<f64>> = raw
            .columns
            .iter()
            .map(|c| {
                c.iter()
                    .zip(&keep)
                    .filter(|(_, k)| **k)
                    .map(|(x, _)| *x)
                    .collect()
            })
            .collect();
        let ids = raw.ids.as_ref().map(|ids| {
            ids.iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(x, _)| x.clone())
                .collect()
        });
        let lines: Vec<usize> = raw
            .lines
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(x, _)| *x)
            .collect();
        if lines.is_empty() {
            self.diags.push(Diagnostic::error_nowhere(format!(
                "no rows of '{}' can be analysed: every row is missing on all dependent variables or on a covariate",
                file.src.path().display()
            )));
            return None;
        }
        self.exclusion_warnings(&excluded);
        let kept_reps = reps.map(|v| {
            v.iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(x, _)| *x)
                .collect()
        });
        let dataset = Dataset {
            file: raw.file,
            columns,
            ids,
            lines,
            rows_read,
            excluded,
            clusters: None,
        };
        Some((dataset, kept_reps))
    }

    /// One warning per reason rows were left out, with how many.
    fn exclusion_warnings(&mut self, excluded: &[Excluded]) {
        let count = |r: ExclusionReason| excluded.iter().filter(|e| e.reason == r).count();
        let mc = count(ExclusionReason::MissingCovariate);
        if mc > 0 {
            self.diags.push(Diagnostic::warning_nowhere(format!(
                "{mc} row(s) with a missing covariate were left out (the model is conditional on covariates)"
            )));
        }
        let am = count(ExclusionReason::AllDependentsMissing);
        if am > 0 {
            self.diags.push(Diagnostic::warning_nowhere(format!(
                "{am} row(s) missing on every dependent variable were left out"
            )));
        }
        let lw = count(ExclusionReason::Listwise);
        if lw > 0 {
            self.diags.push(Diagnostic::warning_nowhere(format!(
                "{lw} row(s) with missing values were left out (LISTWISE = ON)"
            )));
        }
    }

    /// The categories of CATEGORICAL variable `v`: the distinct values of
    /// the analysed rows, at least 2 and at most 10; a problem is reported
    /// at `at` (its CATEGORICAL statement), naming the data file.
    pub(super) fn categories_of(
        &mut self,
        data: &Dataset,
        v: usize,
        use_names: &[String],
        (span, data_file): (Span, &str),
    ) -> Option<Vec<f64>> {
        // distinct values, stopping early past the limit
        let mut cats: Vec<f64> = Vec::new();
        for &x in &data.columns[v] {
            if !x.is_nan() && !cats.contains(&x) {
                cats.push(x);
                if cats.len() > 10 {
                    break;
                }
            }
        }
        cats.sort_by(|a, b| a.total_cmp(b));
        let name = &use_names[v];
        if cats.len() < 2 {
            let values = match cats.first() {
                Some(x) => format!("only the value {x}"),
                None => "no value (it is missing in every row)".to_string(),
            };
            self.err_help(
                span,
                format!(
                    "CATEGORICAL variable {name} takes {values} in the {} analysed row(s) of data file '{data_file}'; it needs at least two categories",
                    data.n_rows()
                ),
                "leave it out of USEVARIABLES, or check the data file",
            );
            return None;
        }
        if cats.len() > 10 {
            self.err_help(
                span,
                format!(
                    "CATEGORICAL variable {name} has more than 10 categories in data file '{data_file}'; at most 10 are allowed"
                ),
                "treat it as continuous, or collapse categories",
            );
            return None;
        }
        Some(cats)
    }
}

/// Which rows are analysed (`keep`), and why the others are left out:
/// LISTWISE, a missing covariate, or every dependent variable missing.
fn exclusions(raw: &RawData, is_dep: &[bool], listwise: bool) -> (Vec<bool>, Vec<Excluded>) {
    let n = raw.n_rows();
    let mut keep = vec![true; n];
    let mut excluded = Vec::new();
    for r in 0..n {
        let reason = if listwise && raw.columns.iter().any(|c| c[r].is_nan()) {
            Some(ExclusionReason::Listwise)
        } else if (0..is_dep.len()).any(|v| !is_dep[v] && raw.columns[v][r].is_nan()) {
            Some(ExclusionReason::MissingCovariate)
        } else if (0..is_dep.len())
            .filter(|&v| is_dep[v])
            .all(|v| raw.columns[v][r].is_nan())
        {
            Some(ExclusionReason::AllDependentsMissing)
        } else {
            None
        };
        if let Some(reason) = reason {
            keep[r] = false;
            excluded.push(Excluded {
                line: raw.lines[r],
                reason,
            });
        }
    }
    (keep, excluded)
}
