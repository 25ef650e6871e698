//! DATA WIDETOLONG: wide data (one row per person, one column per
//! repetition) reshaped to long data (one row per person and repetition),
//! before DEFINE and the analysis.
//!
//! `WIDE = u1-u17 | x1-x17;` lists sets of wide variables, each with one
//! variable per repetition (every set as long as the others); `LONG = u |
//! x;` names one new variable per set. Each row of the file becomes as many
//! rows as a set has variables: in the t-th (t = 0, 1, ...) the long
//! variables take the t-th variable of their sets, the variables of no set
//! are copied, `IDVARIABLE` (default `ID`) holds the row's number in the
//! file (1 for the first data row) and `REPETITION` (default `REP`) holds
//! t. Missing values are carried over as they are; a long row whose long
//! variables are all missing is kept, and the usual rules for rows with
//! missing values then apply (docs/input-language.md §10.2). The wide
//! variables are gone after the reshape; the new variables come after the
//! copied ones, in the order LONG, IDVARIABLE, REPETITION.

use super::Builder;
use super::options::Options;
use super::transforms::Frame;
use crate::data::RawData;
use crate::source::Span;
use crate::syntax::{Section, TokKind, Token};

/// The options of DATA WIDETOLONG, as written.
#[derive(Default)]
pub(super) struct WideSpec<'a> {
    /// The header `DATA WIDETOLONG:`.
    pub(super) header: Span,
    /// WIDE, and its statement.
    pub(super) wide: Option<(&'a [Token], Span)>,
    /// LONG, and its statement.
    pub(super) long: Option<(&'a [Token], Span)>,
    /// IDVARIABLE.
    pub(super) id: Option<(String, Span)>,
    /// REPETITION.
    pub(super) rep: Option<(String, Span)>,
}

/// The options of DATA WIDETOLONG (all supported).
const WIDETOLONG_OPTS: &[(&str, super::options::Support)] = &[
    ("WIDE", super::options::Support::Yes),
    ("LONG", super::options::Support::Yes),
    ("IDVARIABLE", super::options::Support::Yes),
    ("REPETITION", super::options::Support::Yes),
];

/// Mplus's name for the IDVARIABLE of DATA WIDETOLONG when none is given.
pub(super) const DEFAULT_ID: &str = "ID";
/// Mplus's name for the REPETITION variable when none is given.
pub(super) const DEFAULT_REP: &str = "REP";

/// The reshape, resolved against the file's columns.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Reshape {
    /// The file columns of each WIDE set, in repetition order.
    pub(super) sets: Vec<Vec<usize>>,
    /// The file columns in no set (copied to every long row), in file order.
    pub(super) kept: Vec<usize>,
    /// The LONG names, one per set.
    pub(super) long: Vec<String>,
    /// The IDVARIABLE name.
    pub(super) id: String,
    /// The REPETITION name.
    pub(super) rep: String,
}

impl Reshape {
    /// The number of repetitions (variables per set).
    pub(super) fn reps(&self) -> usize {
        self.sets.first().map_or(0, Vec::len)
    }

    /// The variables after the reshape: the copied ones, then LONG,
    /// IDVARIABLE and REPETITION.
    pub(super) fn names(&self, file_names: &[String]) -> Vec<String> {
        self.kept
            .iter()
            .map(|&c| file_names[c].clone())
            .chain(self.long.iter().cloned())
            .chain([self.id.clone(), self.rep.clone()])
            .collect()
    }

    /// The long rows of `raw` (whose column `k` is file column `read[k]`):
    /// one column per variable of [`Reshape::names`] (`None` for a copied
    /// column that was not read), the data-file line and the repetition of
    /// each row, and the ids replicated.
    pub(super) fn apply(&self, raw: &RawData, read: &[usize]) -> Frame {
        let t = self.reps();
        let n = raw.n_rows() * t;
        let column_of = |c: usize| read.iter().position(|&r| r == c).map(|k| &raw.columns[k]);
        let mut columns: Vec<Option<Vec<f64>>> = self
            .kept
            .iter()
            .map(|&c| column_of(c).map(|v| repeat_each(v, t)))
            .collect();
        for set in &self.sets {
            let wide: Vec<Option<&Vec<f64>>> = set.iter().map(|&c| column_of(c)).collect();
            let long = (0..n)
                .map(|i| wide[i % t].map_or(f64::NAN, |v| v[i / t]))
                .collect();
            columns.push(Some(long));
        }
        columns.push(Some((0..n).map(|i| (i / t + 1) as f64).collect()));
        columns.push(Some((0..n).map(|i| (i % t) as f64).collect()));
        Frame {
            columns,
            lines: repeat_each(&raw.lines, t),
            reps: Some((0..n).map(|i| i % t).collect()),
            ids: raw.ids.as_ref().map(|ids| repeat_each(ids, t)),
        }
    }
}

/// Each value of `v` `t` times in a row.
fn repeat_each<T: Clone>(v: &[T], t: usize) -> Vec<T> {
    v.iter()
        .flat_map(|x| std::iter::repeat_n(x.clone(), t))
        .collect()
}

impl Builder<'_> {
    /// Reads the options of `DATA WIDETOLONG:` into `opts.widetolong`.
    pub(super) fn widetolong_section<'a>(&mut self, sec: &'a Section, opts: &mut Options<'a>) {
        let mut spec = WideSpec {
            header: sec.header,
            ..WideSpec::default()
        };
        for st in &sec.statements {
            let Some((key, os)) = self.option(st, "DATA WIDETOLONG", WIDETOLONG_OPTS) else {
                continue;
            };
            match key {
                "WIDE" => spec.wide = Some((os.values, st.span)),
                "LONG" => spec.long = Some((os.values, st.span)),
                _ => match os.values {
                    [t] if t.kind == TokKind::Word => {
                        let v = Some((t.text.clone(), t.span));
                        if key == "IDVARIABLE" {
                            spec.id = v;
                        } else {
                            spec.rep = v;
                        }
                    }
                    _ => self.err(st.span, format!("{key} needs one new variable name")),
                },
            }
        }
        opts.widetolong = Some(spec);
    }

    /// Resolves DATA WIDETOLONG against the file's columns; None after
    /// reporting what is wrong.
    pub(super) fn reshape(
        &mut self,
        spec: &WideSpec<'_>,
        file_names: &[String],
    ) -> Option<Reshape> {
        let before = self.diags.n_errors();
        let (Some((wide, wide_span)), Some((long, long_span))) = (spec.wide, spec.long) else {
            self.err_help(
                spec.header,
                "DATA WIDETOLONG needs WIDE and LONG",
                "for example WIDE = u1-u4 | x1-x4; LONG = u | x;",
            );
            return None;
        };
        let sets = self.wide_sets(wide, wide_span, file_names);
        let long = self.long_names(long, long_span, sets.len());
        let id = spec
            .id
            .clone()
            .unwrap_or_else(|| (DEFAULT_ID.to_string(), spec.header));
        let rep = spec
            .rep
            .clone()
            .unwrap_or_else(|| (DEFAULT_REP.to_string(), spec.header));
        let new: Vec<(String, Span)> = long.into_iter().chain([id, rep]).collect();
        self.check_new_names(&new, file_names, spec);
        if self.diags.n_errors() > before {
            return None;
        }
        let in_set = |c: &usize| sets.iter().any(|s| s.contains(c));
        let mut names = new.into_iter().map(|(n, _)| n);
        Some(Reshape {
            kept: (0..file_names.len()).filter(|c| !in_set(c)).collect(),
            long: names.by_ref().take(sets.len()).collect(),
            id: names.next().unwrap_or_default(),
            rep: names.next().unwrap_or_default(),
            sets,
        })
    }

    /// The WIDE sets as file columns: each set a list of names and ranges
    /// (in NAMES order), all sets as long, no variable twice.
    fn wide_sets(&mut self, toks: &[Token], span: Span, file_names: &[String]) -> Vec<Vec<usize>> {
        let mut sets: Vec<Vec<usize>> = Vec::new();
        let mut seen: Vec<usize> = Vec::new();
        for part in toks.split(|t| t.is_sym('|')) {
            let Some(part_span) = part.first().map(|f| f.span.to(part[part.len() - 1].span)) else {
                self.err_help(
                    span,
                    "WIDE has an empty set",
                    "separate the sets with one '|', such as WIDE = u1-u4 | x1-x4;",
                );
                continue;
            };
            let before = self.diags.n_errors();
            let set = self.wide_set(part, &mut seen, file_names);
            if self.diags.n_errors() > before {
                return Vec::new();
            }
            if let Some(first) = sets.first()
                && first.len() != set.len()
            {
                self.err_help(
                    part_span,
                    format!(
                        "WIDE set {} has {} variables but set 1 has {}",
                        sets.len() + 1,
                        set.len(),
                        first.len()
                    ),
                    "every set has one variable per repetition",
                );
                return Vec::new();
            }
            sets.push(set);
        }
        sets
    }

    /// One WIDE set: names and `a-b` ranges of NAMES; a variable already in
    /// a set (`seen`) is reported.
    fn wide_set(&mut self, part: &[Token], seen: &mut Vec<usize>, names: &[String]) -> Vec<usize> {
        let mut set = Vec::new();
        let mut i = 0;
        while i < part.len() {
            let n = if i + 2 < part.len() && part[i + 1].is_dash() {
                3
            } else {
                1
            };
            let item = &part[i..i + n];
            let item_span = item[0].span.to(item[n - 1].span);
            for c in self.var_list(item, names, false) {
                if seen.contains(&c) {
                    self.err(item_span, format!("{} is listed twice in WIDE", names[c]));
                } else {
                    seen.push(c);
                    set.push(c);
                }
            }
            i += n;
        }
        set
    }

    /// The LONG names, one per WIDE set (`n_sets`), each a new name.
    fn long_names(&mut self, toks: &[Token], span: Span, n_sets: usize) -> Vec<(String, Span)> {
        let mut out = Vec::new();
        for part in toks.split(|t| t.is_sym('|')) {
            match part {
                [t] if t.kind == TokKind::Word => out.push((t.text.clone(), t.span)),
                _ => {
                    let at = part
                        .first()
                        .map_or(span, |f| f.span.to(part[part.len() - 1].span));
                    self.err_help(
                        at,
                        "each LONG set is one new variable name",
                        "separate the names with '|', one per WIDE set: LONG = u | x;",
                    );
                    return Vec::new();
                }
            }
        }
        if n_sets > 0 && out.len() != n_sets {
            self.err_help(
                span,
                format!(
                    "LONG names {} variable{} but WIDE has {} set{}",
                    out.len(),
                    if out.len() == 1 { "" } else { "s" },
                    n_sets,
                    if n_sets == 1 { "" } else { "s" }
                ),
                "give one LONG name per WIDE set, separated by '|'",
            );
        }
        out
    }

    /// The new names (LONG, IDVARIABLE, REPETITION) are new: not in the
    /// file, not twice, without `#` or `$`.
    fn check_new_names(
        &mut self,
        new: &[(String, Span)],
        file_names: &[String],
        spec: &WideSpec<'_>,
    ) {
        for (i, (name, span)) in new.iter().enumerate() {
            let default = (name == DEFAULT_ID && spec.id.is_none())
                || (name == DEFAULT_REP && spec.rep.is_none());
            let taken = file_names.iter().any(|f| f.eq_ignore_ascii_case(name))
                || new[..i].iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
            if taken && default {
                let option = if name == DEFAULT_ID {
                    "IDVARIABLE"
                } else {
                    "REPETITION"
                };
                self.err_help(
                    *span,
                    format!("DATA WIDETOLONG would create {name} (the default {option} name), but there is already a variable {name}"),
                    format!("name the new variable with {option} = ...;"),
                );
            } else if taken {
                self.err_help(
                    *span,
                    format!(
                        "DATA WIDETOLONG creates {name}, but there is already a variable {name}"
                    ),
                    "give the new variable a name that is not in NAMES (or the header row)",
                );
            } else if name.contains(['#', '$']) {
                self.err(*span, format!("variable name {name} cannot contain # or $"));
            }
        }
    }
}
