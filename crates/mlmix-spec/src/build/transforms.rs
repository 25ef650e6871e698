//! The data transformations between the data file and the analysis, in
//! Mplus's order: DATA WIDETOLONG (`super::widetolong`), then DEFINE
//! (`super::define`).
//!
//! When the data file is opened (`super::dataset`), the transformations
//! are resolved against the file's columns and give the names VARIABLE
//! sees: the file's columns (less the wide variables after a reshape), then
//! the new variables (LONG, IDVARIABLE and REPETITION of the reshape, then
//! those DEFINE creates). When the rows are read, the columns the
//! transformations and the analysis need are read from the file, reshaped,
//! and DEFINE runs over the rows. Mplus's rules checked here: the new
//! variables come last in USEVARIABLES, and with DATA WIDETOLONG
//! USEVARIABLES must be given.

use super::Builder;
use super::dataset::DataFile;
use super::declarations::DataCol;
use super::define::{self, Stmt};
use super::options::Options;
use super::widetolong::{Reshape, WideSpec};
use crate::data::{self, RawData, ReadRequest};
use crate::diag::Diagnostic;
use crate::model::MissingSpec;
use crate::source::Span;
use crate::syntax::{TokKind, Token};

/// Where a variable's values come from before DEFINE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// A column of the file.
    File(usize),
    /// The LONG variable of WIDE set `k`.
    Long(usize),
    /// Made by the transformations: IDVARIABLE, REPETITION, a new DEFINE
    /// variable.
    Computed,
}

/// The transformations of the data, resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Transforms {
    /// DATA WIDETOLONG.
    pub(super) reshape: Option<Reshape>,
    /// DEFINE's statements, names resolved.
    pub(super) define: Vec<Stmt>,
    /// Where each variable comes from (one per name VARIABLE sees).
    pub(super) source: Vec<Origin>,
    /// Whether DEFINE sets the variable.
    pub(super) changed: Vec<bool>,
    /// How many variables come before the first new one.
    pub(super) n_original: usize,
}

impl Transforms {
    /// No transformation: the file's columns are the variables.
    pub(super) fn is_empty(&self) -> bool {
        self.reshape.is_none() && self.define.is_empty()
    }

    /// Is variable `col` made by the transformations (not in the file)?
    pub(super) fn is_new(&self, col: usize) -> bool {
        col >= self.n_original
    }

    /// The file column that holds variable `col` in a row of repetition
    /// `rep`, when the value is a file's value (not computed).
    pub(super) fn file_column(&self, col: usize, rep: Option<usize>) -> Option<usize> {
        if self.changed.get(col).copied().unwrap_or(false) {
            return None;
        }
        match self.source.get(col)? {
            Origin::File(f) => Some(*f),
            Origin::Long(k) => {
                let sets = &self.reshape.as_ref()?.sets;
                sets.get(*k)?.get(rep?).copied()
            }
            Origin::Computed => None,
        }
    }

    /// The file columns to read for variables `wanted`, the file column
    /// `id` and what DEFINE reads and sets, in file order.
    fn file_columns(&self, wanted: &[usize], id: Option<usize>, n_file: usize) -> Vec<usize> {
        let mut need = vec![false; n_file];
        let define_cols = self.define.iter().flat_map(Stmt::columns);
        for col in wanted.iter().copied().chain(define_cols) {
            match self.source.get(col) {
                Some(Origin::File(f)) => need[*f] = true,
                Some(Origin::Long(k)) => {
                    let set = self.reshape.as_ref().and_then(|r| r.sets.get(*k));
                    set.into_iter().flatten().for_each(|&c| need[c] = true);
                }
                _ => {}
            }
        }
        if let Some(f) = id {
            need[f] = true;
        }
        (0..n_file).filter(|&c| need[c]).collect()
    }
}

/// Rows of data on their way to the analysis: one optional column per
/// variable, where each row comes from, and the ids.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct Frame {
    /// One column per variable (NaN is missing); `None` for one not read.
    pub(super) columns: Vec<Option<Vec<f64>>>,
    /// The data-file line of each row.
    pub(super) lines: Vec<usize>,
    /// The repetition of each row, after DATA WIDETOLONG.
    pub(super) reps: Option<Vec<usize>>,
    /// The text of the IDVARIABLE column, when it is a column of the file.
    pub(super) ids: Option<Vec<String>>,
}

impl Frame {
    /// Number of rows.
    pub(super) fn n_rows(&self) -> usize {
        self.lines.len()
    }
}

/// The analysis rows after the transformations: the wanted columns as a
/// [`RawData`], the repetition of each row (after DATA WIDETOLONG), and the
/// number of rows in the file.
pub(super) struct Transformed {
    /// The wanted columns, the ids and the line of each row.
    pub(super) raw: RawData,
    /// The repetition of each row (DATA WIDETOLONG).
    pub(super) reps: Option<Vec<usize>>,
    /// The rows of the file (before the reshape).
    pub(super) file_rows: usize,
}

impl Builder<'_> {
    /// Resolves DATA WIDETOLONG and DEFINE against the file's columns:
    /// the names VARIABLE sees, and the transformations. None when the
    /// reshape is wrong (VARIABLE cannot be resolved without its names).
    pub(super) fn transforms(
        &mut self,
        opts: &Options<'_>,
        file_names: &[String],
    ) -> Option<(Vec<String>, Transforms)> {
        let (mut t, mut names, gone) = match &opts.widetolong {
            Some(spec) => self.reshaped(spec, opts, file_names)?,
            None => {
                let t = Transforms {
                    source: (0..file_names.len()).map(Origin::File).collect(),
                    n_original: file_names.len(),
                    ..Transforms::default()
                };
                (t, file_names.to_vec(), Vec::new())
            }
        };
        let mut stmts = opts.define.clone();
        self.resolve_define(&mut stmts, &opts.define_broken, &mut names, &gone);
        t.source.resize(names.len(), Origin::Computed);
        t.changed = vec![false; names.len()];
        for s in &stmts {
            t.changed[s.target.col] = true;
        }
        t.define = stmts;
        self.wide_names_in_variable(opts, &gone);
        if opts.usev.is_none() && names.len() > t.n_original && t.reshape.is_none() {
            self.unused_define_warning(opts, &names[t.n_original..]);
        }
        Some((names, t))
    }

    /// DATA WIDETOLONG resolved: the transformations so far, the names
    /// after the reshape, and the wide names it removes.
    fn reshaped(
        &mut self,
        spec: &WideSpec<'_>,
        opts: &Options<'_>,
        file_names: &[String],
    ) -> Option<(Transforms, Vec<String>, Vec<String>)> {
        let r = self.reshape(spec, file_names)?;
        if opts.usev.is_none() {
            self.err_help(
                spec.header,
                "DATA WIDETOLONG needs USEVARIABLES in VARIABLE:",
                "list the variables to analyse, the new ones last, e.g. USEVARIABLES = x u;",
            );
        }
        let names = r.names(file_names);
        let gone: Vec<String> = r
            .sets
            .iter()
            .flatten()
            .map(|&c| file_names[c].clone())
            .collect();
        let mut source: Vec<Origin> = r.kept.iter().map(|&c| Origin::File(c)).collect();
        source.extend((0..r.sets.len()).map(Origin::Long));
        source.extend([Origin::Computed, Origin::Computed]);
        let t = Transforms {
            source,
            n_original: r.kept.len(),
            reshape: Some(r),
            ..Transforms::default()
        };
        Some((t, names, gone))
    }

    /// Without USEVARIABLES the new DEFINE variables are not analysed (as
    /// in Mplus): a warning names those that are not CLUSTER or
    /// IDVARIABLE either.
    fn unused_define_warning(&mut self, opts: &Options<'_>, new: &[String]) {
        let used = |n: &String| {
            [&opts.cluster, &opts.idvar]
                .into_iter()
                .flatten()
                .any(|(u, _)| u.eq_ignore_ascii_case(n))
        };
        let unused: Vec<&str> = new
            .iter()
            .filter(|n| !used(n))
            .map(String::as_str)
            .collect();
        if unused.is_empty() {
            return;
        }
        let span = opts.define_header.unwrap_or_default();
        self.warn(
            span,
            format!(
                "USEVARIABLES is not given, so the variables DEFINE creates ({}) are not analysed",
                unused.join(" ")
            ),
        );
    }

    /// Reports the wide variables of DATA WIDETOLONG named in VARIABLE's
    /// lists (they are gone after the reshape), once each.
    fn wide_names_in_variable(&mut self, opts: &Options<'_>, gone: &[String]) {
        if gone.is_empty() {
            return;
        }
        let lists = [
            opts.usev,
            opts.categorical,
            opts.nominal,
            opts.within,
            opts.between,
        ];
        let words: Vec<(String, Span)> = lists
            .into_iter()
            .flatten()
            .flatten()
            .filter(|t| t.kind == TokKind::Word)
            .map(|t| (t.text.clone(), t.span))
            .chain(opts.cluster.clone())
            .chain(opts.idvar.clone())
            .collect();
        for (w, span) in words {
            let is_gone = gone.iter().any(|g| g.eq_ignore_ascii_case(&w));
            if is_gone
                && self
                    .diags
                    .mark(&format!("unknown {}", w.to_ascii_uppercase()))
            {
                self.err_help(
                    span,
                    format!("{w} is a WIDE variable of DATA WIDETOLONG; after the reshape it is no longer a variable"),
                    "use the LONG variable of its set",
                );
            }
        }
    }

    /// Mplus's rule: in USEVARIABLES (`toks`) the variables the
    /// transformations create come after those of the file.
    pub(super) fn check_new_last(&mut self, toks: &[Token], names: &[String], t: &Transforms) {
        let find = |n: &str| names.iter().position(|u| u.eq_ignore_ascii_case(n));
        let mut first_new: Option<&Token> = None;
        let mut i = 0;
        while i < toks.len() {
            // a range a-b: its ends (names are in order, originals first)
            let range = i + 2 < toks.len() && toks[i + 1].is_dash();
            let (a, b) = if range {
                (&toks[i], &toks[i + 2])
            } else {
                (&toks[i], &toks[i])
            };
            i += if range { 3 } else { 1 };
            let (Some(ca), Some(cb)) = (find(&a.text), find(&b.text)) else {
                continue;
            };
            if let Some(new) = first_new.filter(|_| !t.is_new(ca)) {
                self.err_help(
                    a.span,
                    format!(
                        "{} comes after {} in USEVARIABLES, but {} is a new variable",
                        a.text, new.text, new.text
                    ),
                    "list the variables DEFINE and DATA WIDETOLONG create last in USEVARIABLES (Mplus's rule)",
                );
                return;
            }
            if first_new.is_none() && t.is_new(cb) {
                first_new = Some(if t.is_new(ca) { a } else { b });
            }
        }
    }

    /// Reads the columns the transformations and `wanted` need, applies
    /// the transformations, and keeps the `wanted` variables (and the
    /// IDVARIABLE `id`).
    pub(super) fn read_transformed(
        &mut self,
        file: &DataFile,
        wanted: &[usize],
        id: Option<DataCol>,
        missing: &MissingSpec,
    ) -> Option<Transformed> {
        let t = &file.transforms;
        let id_file = id.and_then(|c| t.file_column(c.0, Some(0)).filter(|_| !t.is_new(c.0)));
        let read = t.file_columns(wanted, id_file, file.file_names.len());
        let req = ReadRequest {
            names: &file.file_names,
            header: file.header,
            wanted: &read,
            id: id_file,
            missing,
        };
        let raw = match data::read(&file.src, &req) {
            Ok(r) => r,
            Err(d) => {
                self.diags.push(d);
                return None;
            }
        };
        let file_rows = raw.n_rows();
        let path = raw.file.clone();
        let mut frame = match &t.reshape {
            Some(r) => r.apply(&raw, &read),
            None => plain_frame(raw, &read, file.file_names.len()),
        };
        let n = frame.n_rows();
        for (s, rows) in define::run(&t.define, &mut frame.columns, n) {
            self.warn(
                s.span,
                format!(
                    "DEFINE sets {} to missing in {rows} row(s) where no value it uses is missing (division by zero, or LOG, SQRT, ASIN, ACOS or ** outside their domain)",
                    s.target.name
                ),
            );
        }
        let ids = match id {
            Some(_) if id_file.is_some() => frame.ids.take(),
            Some(c) => frame
                .columns
                .get(c.0)
                .cloned()
                .flatten()
                .map(|v| ids_of(&v)),
            None => None,
        };
        let mut columns = Vec::with_capacity(wanted.len());
        for &w in wanted {
            let Some(c) = frame.columns.get_mut(w).and_then(Option::take) else {
                self.diags.push(Diagnostic::error_nowhere(format!(
                    "internal error: the values of {} were not computed",
                    file.names.get(w).map_or("?", String::as_str)
                )));
                return None;
            };
            columns.push(c);
        }
        let raw = RawData {
            file: path,
            names: file.names.clone(),
            columns,
            ids,
            lines: frame.lines,
        };
        Some(Transformed {
            raw,
            reps: frame.reps,
            file_rows,
        })
    }
}

/// The rows of `raw` (whose column `k` is file column `read[k]`) as a
/// frame with one column per file column.
fn plain_frame(raw: RawData, read: &[usize], n_file: usize) -> Frame {
    let mut columns: Vec<Option<Vec<f64>>> = vec![None; n_file];
    for (col, &c) in raw.columns.into_iter().zip(read) {
        columns[c] = Some(col);
    }
    Frame {
        columns,
        lines: raw.lines,
        reps: None,
        ids: raw.ids,
    }
}

/// Computed values as IDVARIABLE text: whole numbers without decimals,
/// missing as `*`.
fn ids_of(values: &[f64]) -> Vec<String> {
    values
        .iter()
        .map(|x| {
            if x.is_nan() {
                "*".to_string()
            } else {
                format!("{x}")
            }
        })
        .collect()
}
