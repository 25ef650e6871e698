//! The variables and what is declared about them (the third phase): data
//! columns, IDVARIABLE and CLUSTER, USEVARIABLES, CATEGORICAL, MISSING,
//! WITHIN and BETWEEN, CLASSES, and the random slopes MODEL names
//! (`s | y ON x`). Names declared in MODEL (such as factors) belong here.
//!
//! Three index spaces meet here: data columns ([`DataCol`]: `id_col`,
//! `cluster_col`, the entries of `usev`; indices into `names`), positions
//! within USEVARIABLES (plain `usize`: `use_names`, `categorical`, `within`,
//! `between`, and every variable index of the model), and positions within
//! USEVARIABLES followed by the random slopes (plain `usize`: the names MODEL
//! statements are resolved against in a two-level model, until
//! `two_level` rewrites them).

use std::collections::HashMap;

use super::Builder;
use super::dataset::DataFile;
use super::options::{MAX_LIST, MAX_MISSING_CODES, Options, split_suffix, thousands};
use crate::diag::{Diagnostic, lookalike_help, suggest};
use crate::model::*;
use crate::source::Span;
use crate::syntax::{Section, TokKind, Token};

/// Marked in the diagnostics when USEVARIABLES had an error.
pub(super) const USEV_FAILED: &str = "USEVARIABLES failed";

/// A column of the data file (an index into NAMES or the header row), as
/// opposed to a position within USEVARIABLES (a plain `usize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DataCol(pub(super) usize);

/// The declared variables.
pub(super) struct Decls {
    /// The IDVARIABLE's data column.
    pub(super) id_col: Option<DataCol>,
    /// The CLUSTER variable's data column.
    pub(super) cluster_col: Option<DataCol>,
    /// The data column of each USEVARIABLES entry.
    pub(super) usev: Vec<DataCol>,
    /// The name of each USEVARIABLES entry.
    pub(super) use_names: Vec<String>,
    /// CATEGORICAL and NOMINAL, as positions within USEVARIABLES (a
    /// nominal variable is recoded and checked as a categorical one).
    pub(super) categorical: Vec<usize>,
    /// NOMINAL, as positions within USEVARIABLES (also in `categorical`).
    pub(super) nominal: Vec<usize>,
    /// The CATEGORICAL variables declared `(3pl)`.
    pub(super) guessing: Vec<usize>,
    /// MISSING.
    pub(super) missing: MissingSpec,
    /// WITHIN, as positions within USEVARIABLES.
    pub(super) within: Vec<usize>,
    /// BETWEEN (variables only), as positions within USEVARIABLES.
    pub(super) between: Vec<usize>,
    /// CLASSES; MODEL statements add covariates and parents.
    pub(super) class_vars: Vec<ClassVar>,
    /// The names of the random slopes (`s | y ON x`), in file order.
    pub(super) slope_names: Vec<String>,
    /// The names of the factors (`f BY u1-u5`), in file order.
    pub(super) factor_names: Vec<(String, Span)>,
}

impl Builder<'_> {
    /// Resolves the variable lists of VARIABLE: against the data's columns,
    /// and collects the class variables and random slope names.
    pub(super) fn declarations(
        &mut self,
        opts: &Options<'_>,
        file: &DataFile,
        model_sections: &[&Section],
    ) -> Decls {
        let names = &file.names;
        let names_upper: Vec<String> = names.iter().map(|s| s.to_ascii_uppercase()).collect();
        self.duplicate_names(opts, file);
        let id_col = self.column_of(opts.idvar.as_ref(), names);
        let cluster_col = self.column_of(opts.cluster.as_ref(), names);
        let usev = self.use_variables(opts, file, id_col, cluster_col);
        let use_names: Vec<String> = usev.iter().map(|c| names[c.0].clone()).collect();
        // CATEGORICAL (positions within USEVARIABLES)
        let (mut categorical, guessing) = match opts.categorical {
            Some(toks) => self.categorical_list(toks, names, &usev),
            None => (Vec::new(), Vec::new()),
        };
        let nominal = match opts.nominal {
            Some(toks) => self.nominal_list(toks, names, &usev, &categorical),
            None => Vec::new(),
        };
        categorical.extend(nominal.iter().copied());
        // MISSING names the file's columns: the codes apply as it is read
        let missing = match opts.missing {
            Some(toks) => self.missing_spec(toks, &file.file_names),
            // generated data mark missing values with `*`
            None if self.mc.is_some() => MissingSpec {
                symbol: Some('*'),
                ..MissingSpec::default()
            },
            None => MissingSpec::default(),
        };
        // WITHIN and BETWEEN (positions within USEVARIABLES; BETWEEN may
        // also name class variables)
        let mut class_names: Vec<String> = opts.classes.iter().map(|c| c.0.clone()).collect();
        class_names.extend(opts.other_classes.iter().cloned());
        let mut between_cvs: Vec<String> = Vec::new();
        let within = self.level_list(opts.within, None, &class_names, names, &usev);
        let between = self.level_list(
            opts.between,
            Some(&mut between_cvs),
            &class_names,
            names,
            &usev,
        );
        for &v in &within {
            if between.contains(&v) {
                let span = opts
                    .within
                    .and_then(|t| t.first())
                    .map_or(file.span, |t| t.span);
                self.err(
                    span,
                    format!("{} is in both WITHIN and BETWEEN", use_names[v]),
                );
            }
        }
        let class_vars = self.class_vars(opts, &names_upper, &between_cvs);
        let slope_names = self.slope_names(model_sections, &use_names, names, &class_names);
        let factor_names = self.factor_names(
            model_sections,
            &[&use_names, names, &class_names, &slope_names],
        );
        Decls {
            id_col,
            cluster_col,
            usev,
            use_names,
            categorical,
            nominal,
            guessing,
            missing,
            within,
            between,
            class_vars,
            slope_names,
            factor_names,
        }
    }

    /// A column name that NAMES (or the header row) gives twice.
    fn duplicate_names(&mut self, opts: &Options<'_>, file: &DataFile) {
        let mut seen_names: HashMap<String, usize> = HashMap::new();
        for (i, n) in file.file_names.iter().enumerate() {
            if seen_names.insert(n.to_ascii_uppercase(), i).is_some() {
                let span = opts.names.as_ref().map_or(file.span, |v| v[i].1);
                self.err(span, format!("variable name {n} appears twice"));
            }
        }
    }

    /// USEVARIABLES as data columns (when it is not given, every column
    /// of the file but IDVARIABLE and CLUSTER; not the variables DEFINE
    /// creates, as in Mplus).
    fn use_variables(
        &mut self,
        opts: &Options<'_>,
        file: &DataFile,
        id_col: Option<DataCol>,
        cluster_col: Option<DataCol>,
    ) -> Vec<DataCol> {
        let names = &file.names;
        let t = &file.transforms;
        let before = self.diags.n_errors();
        let usev: Vec<DataCol> = match opts.usev {
            Some(toks) => {
                let usev = self.var_list(toks, names, false);
                if !t.is_empty() {
                    self.check_new_last(toks, names, t);
                }
                usev
            }
            None => (0..names.len())
                .filter(|&i| Some(DataCol(i)) != id_col && Some(DataCol(i)) != cluster_col)
                .filter(|&i| !t.is_new(i))
                .collect(),
        }
        .into_iter()
        .map(DataCol)
        .collect();
        if self.diags.n_errors() > before {
            // what USEVARIABLES was meant to hold is not known: "x is not
            // in USEVARIABLES" would be a guess
            self.diags.mark(USEV_FAILED);
        }
        if let Some(cc) = cluster_col
            && usev.contains(&cc)
        {
            let span = opts.cluster.as_ref().map(|x| x.1).unwrap_or_default();
            self.err_help(
                span,
                format!(
                    "the CLUSTER variable {} cannot also be an analysis variable",
                    names[cc.0]
                ),
                "remove it from USEVARIABLES",
            );
        }
        if let Some(ic) = id_col
            && usev.contains(&ic)
            && opts.usev.is_some()
        {
            let span = opts.idvar.as_ref().map(|x| x.1).unwrap_or_default();
            self.err(
                span,
                format!(
                    "the IDVARIABLE {} cannot also be an analysis variable",
                    names[ic.0]
                ),
            );
        }
        usev
    }

    /// WITHIN or BETWEEN as positions within USEVARIABLES. Class variables
    /// may be listed in BETWEEN (`between_cvs` is then given and collects
    /// them), not in WITHIN.
    fn level_list(
        &mut self,
        toks: Option<&[Token]>,
        mut between_cvs: Option<&mut Vec<String>>,
        class_names: &[String],
        names: &[String],
        usev: &[DataCol],
    ) -> Vec<usize> {
        let Some(toks) = toks else {
            return Vec::new();
        };
        let mut rest: Vec<Token> = Vec::new();
        for t in toks {
            if t.kind == TokKind::Word
                && let Some(c) = class_names.iter().find(|c| c.eq_ignore_ascii_case(&t.text))
            {
                match between_cvs.as_deref_mut() {
                    Some(cvs) => cvs.push(c.clone()),
                    None => self.err_help(
                        t.span,
                        format!("{} is a class variable; class variables are within-level unless listed in BETWEEN", t.text),
                        "remove it from WITHIN",
                    ),
                }
            } else {
                rest.push(t.clone());
            }
        }
        self.var_list_within(&rest, names, usev)
    }

    /// The class variables of CLASSES; those listed in BETWEEN are
    /// between-level.
    fn class_vars(
        &mut self,
        opts: &Options<'_>,
        names_upper: &[String],
        between_cvs: &[String],
    ) -> Vec<ClassVar> {
        let mut class_vars: Vec<ClassVar> = Vec::new();
        for (name, k, span) in &opts.classes {
            let up = name.to_ascii_uppercase();
            if names_upper.contains(&up) {
                self.err(
                    *span,
                    format!("class variable {name} has the name of an observed variable"),
                );
            }
            if class_vars.iter().any(|c| c.name.eq_ignore_ascii_case(name)) {
                self.err(*span, format!("class variable {name} is declared twice"));
            }
            class_vars.push(ClassVar {
                name: name.clone(),
                classes: *k,
                covariates: Vec::new(),
                parents: Vec::new(),
                between: between_cvs.iter().any(|c| c.eq_ignore_ascii_case(name)),
            });
        }
        class_vars
    }

    /// The names of the random slopes MODEL declares (`s | y ON x`): new
    /// names, each declared once.
    fn slope_names(
        &mut self,
        model_sections: &[&Section],
        use_names: &[String],
        names: &[String],
        class_names: &[String],
    ) -> Vec<String> {
        let mut slope_names: Vec<String> = Vec::new();
        for sec in model_sections {
            for st in &sec.statements {
                let t = &st.tokens;
                if t.len() > 2 && t[1].is_sym('|') && t[0].kind == TokKind::Word {
                    let n = &t[0].text;
                    if use_names
                        .iter()
                        .chain(names)
                        .any(|u| u.eq_ignore_ascii_case(n))
                        || class_names.iter().any(|u| u.eq_ignore_ascii_case(n))
                    {
                        self.err_help(
                            t[0].span,
                            format!("the random slope {n} has the name of a variable"),
                            "give the slope a new name, e.g. s | y ON x;",
                        );
                    } else if slope_names.iter().any(|u| u.eq_ignore_ascii_case(n)) {
                        self.err(t[0].span, format!("the random slope {n} is declared twice"));
                    } else {
                        slope_names.push(n.clone());
                    }
                }
            }
        }
        slope_names
    }

    /// The data column an option names (IDVARIABLE, CLUSTER), reporting an
    /// unknown name.
    pub(super) fn column_of(
        &mut self,
        opt: Option<&(String, Span)>,
        names: &[String],
    ) -> Option<DataCol> {
        let (n, span) = opt?;
        let found = names.iter().position(|x| x.eq_ignore_ascii_case(n));
        if found.is_none() {
            self.unknown_name(*span, n, names, &[]);
        }
        found.map(DataCol)
    }

    pub(super) fn unknown_name(
        &mut self,
        span: Span,
        name: &str,
        universe: &[String],
        extra: &[String],
    ) {
        // a name is reported unknown once, wherever else it is used
        if !self
            .diags
            .mark(&format!("unknown {}", name.to_ascii_uppercase()))
        {
            return;
        }
        let cands: Vec<&str> = universe
            .iter()
            .chain(extra.iter())
            .map(String::as_str)
            .collect();
        let mut d = Diagnostic::error(self.src, span, format!("unknown variable '{name}'"));
        if let Some(s) = suggest(name, cands) {
            d = d.with_help(format!("did you mean {s}?"));
        }
        self.diags.push(d);
    }
    /// NAMES: words and `u1-u10` ranges generated from numeric suffixes,
    /// at most [`MAX_LIST`] names in all (checked before a range is
    /// expanded).
    pub(super) fn name_list(&mut self, toks: &[Token]) -> Vec<(String, Span)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let t = &toks[i];
            if t.kind != TokKind::Word {
                self.not_a_name(t);
                i += 1;
                continue;
            }
            if i + 2 < toks.len() && toks[i + 1].is_dash() && toks[i + 2].kind == TokKind::Word {
                self.check_dash(&toks[i + 1]);
                let span = t.span.to(toks[i + 2].span);
                if !self.expand_names(&t.text, &toks[i + 2].text, span, &mut out) {
                    return out;
                }
                i += 3;
            } else {
                if t.text.contains(['#', '$']) {
                    self.err(
                        t.span,
                        format!("variable name {} cannot contain # or $", t.text),
                    );
                }
                if out.len() >= MAX_LIST {
                    self.too_many_names(t.span);
                    return out;
                }
                out.push((t.text.clone(), t.span));
                i += 1;
            }
        }
        out
    }

    /// Appends the names of the NAMES range `a-b` to `out`; false (after an
    /// error) when `out` would hold more than [`MAX_LIST`] names.
    fn expand_names(
        &mut self,
        a: &str,
        b: &str,
        span: Span,
        out: &mut Vec<(String, Span)>,
    ) -> bool {
        match (split_suffix(a), split_suffix(b)) {
            (Some((pa, na, wa)), Some((pb, nb, _))) if pa.eq_ignore_ascii_case(pb) && na <= nb => {
                if (nb - na).saturating_add(1).saturating_add(out.len()) > MAX_LIST {
                    self.too_many_names(span);
                    return false;
                }
                for k in na..=nb {
                    // keep zero padding of the first name (y01-y10)
                    out.push((format!("{pa}{k:0wa$}"), span));
                }
            }
            _ => self.err_help(
                span,
                format!("cannot expand the list {a}-{b}"),
                "a list in NAMES needs the same stem and increasing numbers, such as u1-u10",
            ),
        }
        true
    }

    fn too_many_names(&mut self, span: Span) {
        self.err(
            span,
            format!(
                "NAMES lists more than {} variables, the most mlmix reads",
                thousands(MAX_LIST as u64)
            ),
        );
    }

    /// Reports a token that should be a variable name, with a hint for a
    /// character pasted from a PDF.
    fn not_a_name(&mut self, t: &Token) {
        let msg = format!("expected a variable name, found '{}'", t.text);
        match lookalike_help(&t.text) {
            Some(h) => self.err_help(t.span, msg, h),
            None => self.err(t.span, msg),
        }
    }

    /// Reports a dash pasted in place of `-` (an en dash); the list is
    /// read as if `-` had been written, so nothing follows from it.
    pub(super) fn check_dash(&mut self, t: &Token) {
        if let Some(h) = lookalike_help(&t.text) {
            self.err_help(t.span, format!("unexpected '{}'", t.text), h);
        }
    }

    /// A variable list whose ranges follow the order of `universe`.
    pub(super) fn var_list(
        &mut self,
        toks: &[Token],
        universe: &[String],
        _allow: bool,
    ) -> Vec<usize> {
        let mut out = Vec::new();
        let mut i = 0;
        let find = |n: &str| universe.iter().position(|u| u.eq_ignore_ascii_case(n));
        while i < toks.len() {
            let t = &toks[i];
            if t.kind != TokKind::Word {
                self.not_a_name(t);
                i += 1;
                continue;
            }
            if i + 2 < toks.len() && toks[i + 1].is_dash() && toks[i + 2].kind == TokKind::Word {
                self.check_dash(&toks[i + 1]);
                let b = &toks[i + 2];
                match (find(&t.text), find(&b.text)) {
                    (Some(x), Some(y)) if x <= y => out.extend(x..=y),
                    (Some(_), Some(_)) => self.err(
                        t.span.to(b.span),
                        format!("the list {}-{} runs backwards", t.text, b.text),
                    ),
                    (None, _) => self.unknown_name(t.span, &t.text, universe, &[]),
                    (_, None) => self.unknown_name(b.span, &b.text, universe, &[]),
                }
                i += 3;
            } else {
                match find(&t.text) {
                    Some(x) => out.push(x),
                    None => self.unknown_name(t.span, &t.text, universe, &[]),
                }
                i += 1;
            }
        }
        let mut seen = Vec::new();
        out.retain(|x| {
            if seen.contains(x) {
                false
            } else {
                seen.push(*x);
                true
            }
        });
        out
    }

    /// A variable list that must be within USEVARIABLES; returns positions
    /// within `usev`. Ranges follow USEVARIABLES order.
    pub(super) fn var_list_within(
        &mut self,
        toks: &[Token],
        names: &[String],
        usev: &[DataCol],
    ) -> Vec<usize> {
        let use_names: Vec<String> = usev.iter().map(|c| names[c.0].clone()).collect();
        let mut out = Vec::new();
        // check each plain name first for a better message
        for t in toks.iter().filter(|t| t.kind == TokKind::Word) {
            if !use_names.iter().any(|u| u.eq_ignore_ascii_case(&t.text))
                && names.iter().any(|u| u.eq_ignore_ascii_case(&t.text))
            {
                if self.diags.is_marked(USEV_FAILED) {
                    return out;
                }
                self.err_help(
                    t.span,
                    format!("{} is not in USEVARIABLES", t.text),
                    "add it to USEVARIABLES or remove it here",
                );
                return out;
            }
        }
        out = self.var_list(toks, &use_names, false);
        out
    }

    /// CATEGORICAL: its variables (positions within USEVARIABLES), and
    /// those a `(3pl)` follows (it applies to the names since the previous
    /// parenthesis, as in Mplus: `u1-u5 (3pl) u6-u10`).
    fn categorical_list(
        &mut self,
        toks: &[Token],
        names: &[String],
        usev: &[DataCol],
    ) -> (Vec<usize>, Vec<usize>) {
        let (mut all, mut guessing) = (Vec::new(), Vec::new());
        let mut start = 0;
        let mut i = 0;
        while i < toks.len() {
            if !toks[i].is_sym('(') {
                i += 1;
                continue;
            }
            let Some(close) = toks[i..].iter().position(|t| t.is_sym(')')).map(|p| i + p) else {
                self.err(toks[i].span, "a ( without its )");
                return (all, guessing);
            };
            let span = toks[i].span.to(toks[close].span);
            let model: String = toks[i + 1..close]
                .iter()
                .map(|t| t.text.to_ascii_uppercase())
                .collect();
            if start == i {
                self.err_help(
                    span,
                    format!("({model}) follows no variables"),
                    "write the model type after the variables it applies to, e.g. CATEGORICAL = u1-u10 (3pl);",
                );
            }
            let seg = self.var_list_within(&toks[start..i], names, usev);
            match model.as_str() {
                "3PL" => guessing.extend(seg.iter().copied()),
                _ => self.err_help(
                    span,
                    format!("CATEGORICAL ({model}) is not supported yet"),
                    "supported: binary and ordered items (no parenthesis) and the 3PL, (3pl)",
                ),
            }
            all.extend(seg);
            start = close + 1;
            i = close + 1;
        }
        all.extend(self.var_list_within(&toks[start..], names, usev));
        (all, guessing)
    }

    /// NOMINAL: its variables (positions within USEVARIABLES); one that is
    /// also in CATEGORICAL is an error at its name.
    fn nominal_list(
        &mut self,
        toks: &[Token],
        names: &[String],
        usev: &[DataCol],
        categorical: &[usize],
    ) -> Vec<usize> {
        let list = self.var_list_within(toks, names, usev);
        for &v in list.iter().filter(|v| categorical.contains(v)) {
            let name = &names[usev[v].0];
            let span = toks
                .iter()
                .find(|t| t.text.eq_ignore_ascii_case(name))
                .or(toks.first())
                .map(|t| t.span);
            if let Some(span) = span {
                self.err_help(
                    span,
                    format!("{name} is in both CATEGORICAL and NOMINAL"),
                    "an ordered variable goes in CATEGORICAL, an unordered one in NOMINAL",
                );
            }
        }
        list.into_iter()
            .filter(|v| !categorical.contains(v))
            .collect()
    }

    pub(super) fn missing_spec(&mut self, toks: &[Token], names: &[String]) -> MissingSpec {
        let mut spec = MissingSpec::default();
        let mut i = 0;
        while i < toks.len() {
            let t = &toks[i];
            if t.is_sym('.') || t.is_sym('*') {
                spec.symbol = Some(t.text.chars().next().unwrap_or('.'));
                i += 1;
                continue;
            }
            if t.is_word("BLANK") {
                self.err(
                    t.span,
                    "MISSING = BLANK is only for fixed-format data, which are not supported",
                );
                i += 1;
                continue;
            }
            // a name or list followed by (codes)
            let start = i;
            while i < toks.len() && !toks[i].is_sym('(') {
                i += 1;
            }
            if i >= toks.len() {
                self.err_help(
                    t.span.to(toks[toks.len() - 1].span),
                    "MISSING needs codes in parentheses",
                    "for example MISSING = ALL(-99); or MISSING = .;",
                );
                break;
            }
            let close = toks[i..].iter().position(|x| x.is_sym(')')).map(|p| i + p);
            let Some(close) = close else {
                self.err(toks[i].span, "missing ')'");
                break;
            };
            let mut codes = Vec::new();
            let mut j = i + 1;
            while j < close {
                match toks[j].number() {
                    Some(v) => {
                        if j + 2 < close
                            && toks[j + 1].is_sym('-')
                            && let Some(w) = toks[j + 2].number()
                        {
                            // a range of whole codes, written low-high
                            if v < 0.0 || w < v || v.fract() != 0.0 || w.fract() != 0.0 {
                                self.err_help(
                                    toks[j].span.to(toks[j + 2].span),
                                    format!(
                                        "'{}-{}' is not a range of missing-value codes",
                                        toks[j].text, toks[j + 2].text
                                    ),
                                    "list codes with spaces, such as (-99 -98); a range is written low-high with whole numbers that are not negative, such as (7-9)",
                                );
                                j += 3;
                                continue;
                            }
                            if w - v >= MAX_MISSING_CODES as f64 {
                                self.err_help(
                                    toks[j].span.to(toks[j + 2].span),
                                    format!(
                                        "the range of missing-value codes {}-{} has more than {} codes",
                                        toks[j].text,
                                        toks[j + 2].text,
                                        thousands(MAX_MISSING_CODES as u64)
                                    ),
                                    "list the codes, or give a shorter range",
                                );
                                j += 3;
                                continue;
                            }
                            let (a, b) = (v, w);
                            let mut x = a;
                            while x <= b {
                                codes.push(x);
                                x += 1.0;
                            }
                            j += 3;
                            continue;
                        }
                        codes.push(v);
                    }
                    // a malformed number (1.2.3) was reported by the tokenizer
                    None if toks[j].kind == TokKind::Number => {}
                    None => self.err(
                        toks[j].span,
                        format!("'{}' is not a missing-value code", toks[j].text),
                    ),
                }
                j += 1;
            }
            let who = &toks[start..i];
            if who.len() == 1 && who[0].is_word("ALL") {
                spec.all.extend(codes);
            } else if who.is_empty() {
                self.err(
                    toks[i].span,
                    "say which variables: ALL(...) or a list such as u1-u5(9)",
                );
            } else {
                for v in self.var_list(who, names, false) {
                    spec.by_name.push((names[v].clone(), codes.clone()));
                }
            }
            i = close + 1;
        }
        spec
    }
}
