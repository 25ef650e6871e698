//! The MODEL grammar: sections, class blocks and level markers, statements
//! and their elements (names, ranges, brackets, `@`/`*` values, labels).

use super::Builder;
use super::declarations::USEV_FAILED;
use super::options::{MAX_LIST, split_suffix, thousands};
use crate::diag::{Diagnostic, lookalike_help, suggest};
use crate::model::*;
use crate::source::Span;
use crate::syntax::{Section, Statement, TokKind, Token};

// ---------------------------------------------------------------------------
// MODEL statements

/// A reference to something in the model, resolved: each kind of name in
/// its own index space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ref {
    /// An observed variable: its index in USEVARIABLES.
    Var(usize),
    /// A random slope declared with `s | y ON x`: its index among the
    /// random slope names.
    Slope(usize),
    /// A factor (`f BY ...`, `i s | ...`): its index among the factor
    /// names.
    Factor(usize),
    /// Threshold `k` (1-based) of an observed variable.
    Threshold(usize, usize),
    /// Category `k` (1-based, `u#k`) of an observed variable: a nominal
    /// variable's intercept (`[u#1]`) or regression (`u#1 ON x`).
    Category(usize, usize),
    ClassVar(usize),
    Class(usize, usize),
}

/// How the names MODEL resolves are laid out: USEVARIABLES, then (two-level
/// models) the random slopes, then the factors. Name resolution turns a
/// position in that list into a [`Ref`] of the right kind; nothing after it
/// compares positions.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ModelNames {
    /// Number of USEVARIABLES.
    pub(super) n_use: usize,
    /// Where the factors begin.
    pub(super) first_factor: usize,
}

impl ModelNames {
    /// The reference of position `i` in the list of names.
    pub(super) fn at(&self, i: usize) -> Ref {
        if i < self.n_use {
            Ref::Var(i)
        } else if i < self.first_factor {
            Ref::Slope(i - self.n_use)
        } else {
            Ref::Factor(i - self.first_factor)
        }
    }

    /// The position of an observed variable or random slope in the list of
    /// names, which statements about variables and slopes carry (`[s]` is a
    /// random slope's mean, `s` its variance): `None` for anything else.
    pub(super) fn model_var(&self, r: Ref) -> Option<usize> {
        match r {
            Ref::Var(v) => Some(v),
            Ref::Slope(s) => Some(self.n_use + s),
            _ => None,
        }
    }

    /// The position of factor `f` in the list of names.
    pub(super) fn factor_pos(&self, f: usize) -> usize {
        self.first_factor + f
    }
}

#[derive(Debug, Clone)]
pub(super) struct Elem {
    pub(super) refs: Vec<Ref>,
    pub(super) span: Span,
    /// Written inside `[ ]` (a mean, threshold or class intercept) rather
    /// than bare (a variance).
    pub(super) bracketed: bool,
    pub(super) fixed: Option<f64>,
    /// `Some(None)` for a bare `*`.
    pub(super) start: Option<Option<f64>>,
    pub(super) label_group: Option<usize>,
}

#[derive(Debug, Clone)]
pub(super) struct LabelGroup {
    pub(super) labels: Vec<String>,
    pub(super) span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Block {
    Overall,
    Class(usize, usize),
}

/// The level of a statement in a two-level model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Level {
    Within,
    Between,
}

#[derive(Debug, Clone)]
pub(super) enum StmtKind {
    /// A list of parameters: `[ ... ]` items are means, thresholds or class
    /// intercepts; bare names are variances (each element says which).
    Items(Vec<Elem>),
    /// `lhs ON rhs`.
    On(Vec<Elem>, Vec<Elem>),
    /// `lhs WITH rhs`.
    With(Vec<Elem>, Vec<Elem>),
    /// `f BY u1-u10`: factor `f` measured by the right-hand side.
    By(Vec<Elem>, Vec<Elem>),
    /// `i s | y1@0 y2@1`: growth factors (as resolved, with their spans)
    /// measured by outcomes with time scores.
    Growth {
        factors: Vec<(Ref, Span)>,
        outcomes: Vec<Elem>,
    },
    /// `s | y ON x`: a random slope named `s`.
    RandomSlope {
        name: String,
        span: Span,
        var: usize,
        covariate: usize,
    },
}

#[derive(Debug, Clone)]
pub(super) struct ModelStmt {
    pub(super) block: Block,
    pub(super) level: Option<Level>,
    pub(super) kind: StmtKind,
    pub(super) labels: Vec<LabelGroup>,
}

impl Builder<'_> {
    // --------------------------------------------------------------- MODEL
    pub(super) fn model_statements(
        &mut self,
        sections: &[&Section],
        use_names: &[String],
        all_names: &[String],
        cvs: &[ClassVar],
    ) -> Vec<ModelStmt> {
        let mut out = Vec::new();
        if sections.is_empty() {
            return out;
        }
        for sec in sections {
            // which class variable this section is for
            let Some(section_cv) = self.section_class_var(sec, cvs) else {
                continue;
            };
            let mut block = if section_cv.is_some() {
                None
            } else {
                Some(Block::Overall)
            };
            let mut level: Option<Level> = None;
            for st in &sec.statements {
                if let Some(m) = &st.marker {
                    let t = m.trim();
                    let lv = if t.eq_ignore_ascii_case("WITHIN") {
                        Some(Level::Within)
                    } else if t.eq_ignore_ascii_case("BETWEEN") {
                        Some(Level::Between)
                    } else {
                        None
                    };
                    if let Some(lv) = lv {
                        if !self.twolevel {
                            self.err_help(
                                st.span,
                                format!("%{}% needs TYPE = TWOLEVEL", t.to_ascii_uppercase()),
                                "add TWOLEVEL to TYPE and name the CLUSTER variable",
                            );
                            block = None;
                        } else {
                            level = Some(lv);
                            block = if section_cv.is_some() {
                                None
                            } else {
                                Some(Block::Overall)
                            };
                        }
                        continue;
                    }
                    block = self.block_marker(st.span, m, cvs, section_cv);
                    continue;
                }
                if self.twolevel && level.is_none() {
                    self.err_help(
                        st.span,
                        "in a TWOLEVEL model, MODEL statements go under %WITHIN% or %BETWEEN%",
                        "start the within-level model with %WITHIN% and the between-level model with %BETWEEN%",
                    );
                    continue;
                }
                let Some(b) = block else {
                    if section_cv.is_some() {
                        self.err_help(
                            st.span,
                            "statements in MODEL c: sections belong in class blocks",
                            "start a class block first, e.g. %c1#1%",
                        );
                    }
                    continue;
                };
                if let Some(ms) = self.model_statement(st, b, level, use_names, all_names, cvs) {
                    out.push(ms);
                }
            }
        }
        out
    }

    /// The class variable a `MODEL c:` section is for (`Some(None)` for
    /// `MODEL:`); None, after an error, for a qualifier that names none.
    fn section_class_var(&mut self, sec: &Section, cvs: &[ClassVar]) -> Option<Option<usize>> {
        let Some((q, span)) = &sec.qualifier else {
            return Some(None);
        };
        // MODEL POPULATION-c: and MODEL COVERAGE-c: of a Monte Carlo input
        // (their sections reach here only in the population and the
        // coverage model)
        let mc_class =
            super::montecarlo::population_class(q).or_else(|| super::montecarlo::coverage_class(q));
        let q: &str = match mc_class {
            Some("") if self.mc.is_some() => return Some(None),
            Some(c) if self.mc.is_some() => c,
            _ => q,
        };
        let up = q.to_ascii_uppercase();
        if let Some(i) = cvs.iter().position(|c| c.name.eq_ignore_ascii_case(q)) {
            return Some(Some(i));
        }
        if mc_class.is_some() {
            self.err_help(
                *span,
                format!("MODEL {up}: belongs to a Monte Carlo input"),
                "add a MONTECARLO: command (docs/montecarlo.md), or write the model under MODEL:",
            );
            return None;
        }
        if [
            "CONSTRAINT",
            "TEST",
            "PRIORS",
            "INDIRECT",
            "POPULATION",
            "COVERAGE",
            "MISSING",
        ]
        .iter()
        .any(|k| up.starts_with(k))
        {
            self.err(*span, format!("MODEL {up}: is not supported yet"));
            return None;
        }
        let mut d = Diagnostic::error(
            self.src,
            *span,
            format!("MODEL {q}: names no class variable"),
        );
        if let Some(s) = suggest(q, cvs.iter().map(|c| c.name.as_str())) {
            d = d.with_help(format!("did you mean MODEL {s}:?"));
        } else if !cvs.is_empty() {
            let names: Vec<&str> = cvs.iter().map(|c| c.name.as_str()).collect();
            d = d.with_help(format!(
                "the class variables (CLASSES) are {}",
                names.join(", ")
            ));
        }
        self.diags.push(d);
        None
    }

    pub(super) fn block_marker(
        &mut self,
        span: Span,
        text: &str,
        cvs: &[ClassVar],
        section_cv: Option<usize>,
    ) -> Option<Block> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("OVERALL") {
            if section_cv.is_some() {
                self.err(span, "%OVERALL% belongs in MODEL:, not in MODEL c:");
                return None;
            }
            return Some(Block::Overall);
        }
        if t.contains('.') {
            self.err(
                span,
                format!(
                    "%{t}%: parameters that vary over combinations of classes are not supported yet"
                ),
            );
            return None;
        }
        let Some((cvname, k)) = t.split_once('#') else {
            self.err_help(
                span,
                format!("%{t}% is not a class block"),
                "class blocks are %OVERALL% or %c#1%",
            );
            return None;
        };
        if cvname.trim().is_empty() {
            self.err_help(
                span,
                format!("%{t}% names no class variable"),
                "class blocks are %OVERALL% or %c#1%",
            );
            return None;
        }
        let Some(cv) = cvs
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(cvname.trim()))
        else {
            let mut d = Diagnostic::error(
                self.src,
                span,
                format!("%{t}%: {cvname} is not a class variable"),
            );
            if let Some(s) = suggest(cvname, cvs.iter().map(|c| c.name.as_str())) {
                d = d.with_help(format!("did you mean {s}?"));
            }
            self.diags.push(d);
            return None;
        };
        if let Some(scv) = section_cv
            && scv != cv
        {
            self.err(
                span,
                format!(
                    "%{t}% is in MODEL {}:, which is for {}",
                    cvs[scv].name, cvs[scv].name
                ),
            );
            return None;
        }
        match k.trim().parse::<usize>() {
            Ok(k) if k >= 1 && k <= cvs[cv].classes => Some(Block::Class(cv, k - 1)),
            _ if k.trim().is_empty() => {
                self.err_help(
                    span,
                    format!("%{t}%: the class number is missing"),
                    format!("{} has classes 1 to {}", cvs[cv].name, cvs[cv].classes),
                );
                None
            }
            _ => {
                self.err_help(
                    span,
                    format!("%{t}%: {} has no class {}", cvs[cv].name, k.trim()),
                    format!("{} has classes 1 to {}", cvs[cv].name, cvs[cv].classes),
                );
                None
            }
        }
    }

    pub(super) fn model_statement(
        &mut self,
        st: &Statement,
        block: Block,
        level: Option<Level>,
        use_names: &[String],
        all_names: &[String],
        cvs: &[ClassVar],
    ) -> Option<ModelStmt> {
        let toks = &st.tokens;
        if toks.is_empty() {
            return None;
        }
        if let Some(bar) = toks.iter().position(|t| t.is_sym('|')) {
            return self.random_slope_statement(st, bar, (block, level), use_names, all_names, cvs);
        }
        let op_pos = toks.iter().position(|t| {
            t.kind == TokKind::Word
                && ["ON", "WITH", "BY", "PON", "PWITH", "XWITH", "AT"]
                    .iter()
                    .any(|w| t.is_word(w))
        });
        let mut labels: Vec<LabelGroup> = Vec::new();
        let kind = match op_pos {
            None => StmtKind::Items(self.elems(toks, use_names, all_names, cvs, &mut labels)?),
            Some(p) => {
                let op = toks[p].text.to_ascii_uppercase();
                match op.as_str() {
                    "ON" | "WITH" => {}
                    "BY" => {}
                    _ => {
                        self.err(toks[p].span, format!("{op} is not supported yet"));
                        return None;
                    }
                }
                if p == 0 || p + 1 >= toks.len() {
                    self.err(st.span, format!("{op} needs variables on both sides"));
                    return None;
                }
                let mut lhs_labels = Vec::new();
                let lhs = self.elems(&toks[..p], use_names, all_names, cvs, &mut lhs_labels)?;
                if !lhs_labels.is_empty()
                    || lhs.iter().any(|e| e.fixed.is_some() || e.start.is_some())
                {
                    self.err(
                        toks[0].span.to(toks[p - 1].span),
                        format!("values and labels go after the right-hand side of {op}"),
                    );
                    return None;
                }
                let rhs = self.elems(&toks[p + 1..], use_names, all_names, cvs, &mut labels)?;
                if let Some(e) = lhs.iter().chain(&rhs).find(|e| e.bracketed) {
                    self.err_help(
                        e.span,
                        format!("brackets are not allowed in an {op} statement"),
                        "means and thresholds are their own statements, e.g. [y];",
                    );
                    return None;
                }
                match op.as_str() {
                    "ON" => StmtKind::On(lhs, rhs),
                    "BY" => StmtKind::By(lhs, rhs),
                    _ => StmtKind::With(lhs, rhs),
                }
            }
        };
        Some(ModelStmt {
            block,
            level,
            kind,
            labels,
        })
    }

    /// `s | y ON x` (the `|` at `bar`): the random slope `s`, declared in
    /// %WITHIN% and %OVERALL% of a two-level model.
    fn random_slope_statement(
        &mut self,
        st: &Statement,
        bar: usize,
        (block, level): (Block, Option<Level>),
        use_names: &[String],
        all_names: &[String],
        cvs: &[ClassVar],
    ) -> Option<ModelStmt> {
        let toks = &st.tokens;
        let growth = super::factors::growth_bar(toks).is_some();
        if growth && self.twolevel {
            self.err_help(
                st.span,
                "growth models ('i s | y1@0 y2@1 ...') in TWOLEVEL models are not supported yet",
                "single-level growth models (TYPE = GENERAL or MIXTURE) are supported",
            );
            return None;
        }
        if growth {
            return self.growth_statement(st, bar, (block, level), (use_names, all_names), cvs);
        }
        if !self.twolevel {
            self.err_help(
                toks[bar].span,
                "random slopes ('|') need TYPE = TWOLEVEL",
                "add TWOLEVEL to TYPE and name the CLUSTER variable",
            );
            return None;
        }
        if level != Some(Level::Within) {
            self.err_help(
                st.span,
                "random slopes ('|') are declared in %WITHIN%",
                "their means, variances and regressions go in %BETWEEN%",
            );
            return None;
        }
        let on = toks.iter().position(|t| t.is_word("ON"));
        let ok = bar == 1
            && toks[0].kind == TokKind::Word
            && on.is_some_and(|p| p == bar + 2 && p + 2 == toks.len());
        if !ok {
            self.err_help(
                st.span,
                "a random slope is written name | y ON x",
                "one slope per statement, for example s | y ON x;",
            );
            return None;
        }
        let y = self.resolve(&toks[2].text, toks[2].span, use_names, all_names, cvs)?;
        let x = self.resolve(&toks[4].text, toks[4].span, use_names, all_names, cvs)?;
        let (Ref::Var(var), Ref::Var(covariate)) = (y, x) else {
            self.err(
                st.span,
                "a random slope is the slope of a variable on a variable",
            );
            return None;
        };
        if block != Block::Overall {
            self.err(st.span, "random slopes are declared in %OVERALL%");
            return None;
        }
        Some(ModelStmt {
            block,
            level,
            kind: StmtKind::RandomSlope {
                name: toks[0].text.clone(),
                span: toks[0].span,
                var,
                covariate,
            },
            labels: Vec::new(),
        })
    }

    /// `i s | y1@0 y2@1 y3@2` (the `|` at `bar`): growth factors measured
    /// by the outcomes with time scores.
    fn growth_statement(
        &mut self,
        st: &Statement,
        bar: usize,
        (block, level): (Block, Option<Level>),
        (use_names, all_names): (&[String], &[String]),
        cvs: &[ClassVar],
    ) -> Option<ModelStmt> {
        let toks = &st.tokens;
        if bar > 3 || toks[..bar].iter().any(|t| t.kind != TokKind::Word) {
            self.err_help(
                toks[0].span.to(toks[bar - 1].span),
                "a growth statement names one to three growth factors before '|'",
                "for example i s | y1@0 y2@1 y3@2 y4@3; or i s q | ...",
            );
            return None;
        }
        if block != Block::Overall {
            self.err(st.span, "growth factors are declared in %OVERALL%");
            return None;
        }
        let mut factors = Vec::with_capacity(bar);
        for t in &toks[..bar] {
            factors.push((
                self.resolve(&t.text, t.span, use_names, all_names, cvs)?,
                t.span,
            ));
        }
        let mut labels = Vec::new();
        let outcomes = self.elems(&toks[bar + 1..], use_names, all_names, cvs, &mut labels)?;
        if !labels.is_empty() || outcomes.iter().any(|e| e.bracketed) {
            self.err(
                toks[bar].span.to(toks[toks.len() - 1].span),
                "a growth statement lists outcomes with time scores, e.g. y1@0 y2@1",
            );
            return None;
        }
        if outcomes.len() < 2 {
            self.err(st.span, "a growth model needs at least two outcomes");
            return None;
        }
        Some(ModelStmt {
            block,
            level,
            kind: StmtKind::Growth { factors, outcomes },
            labels,
        })
    }

    /// Parses a list of elements with modifiers.
    pub(super) fn elems(
        &mut self,
        toks: &[Token],
        use_names: &[String],
        all_names: &[String],
        cvs: &[ClassVar],
        labels: &mut Vec<LabelGroup>,
    ) -> Option<Vec<Elem>> {
        let mut out: Vec<Elem> = Vec::new();
        let mut unlabeled_from = 0;
        let mut i = 0;
        let mut ok = true;
        // index range of the elements the next modifier applies to
        let mut last_group: Option<(usize, usize)> = None;
        while i < toks.len() {
            let t = &toks[i];
            if t.is_sym('[') {
                let close = toks[i..].iter().position(|x| x.is_sym(']')).map(|p| i + p);
                let Some(close) = close else {
                    self.err(t.span, "missing ']'");
                    return None;
                };
                if close == i + 1 {
                    self.err(t.span.to(toks[close].span), "empty [ ]");
                    return None;
                }
                if let Some(n) = toks[i + 1..close].iter().find(|x| x.is_sym('[')) {
                    self.err(n.span, "brackets cannot be nested");
                    return None;
                }
                let mut inner_labels = Vec::new();
                let first = out.len();
                let inner = self.elems(
                    &toks[i + 1..close],
                    use_names,
                    all_names,
                    cvs,
                    &mut inner_labels,
                )?;
                // labels inside brackets: keep them, shifting indices; the
                // unlabeled tail can still take a label after the bracket
                let base = labels.len();
                let tail = inner
                    .iter()
                    .rposition(|e| e.label_group.is_some())
                    .map_or(0, |p| p + 1);
                for mut e in inner {
                    e.label_group = e.label_group.map(|g| g + base);
                    e.bracketed = true;
                    out.push(e);
                }
                labels.extend(inner_labels);
                if tail > 0 {
                    unlabeled_from = first + tail;
                }
                last_group = Some((first, out.len()));
                i = close + 1;
                continue;
            }
            if t.is_sym('@') || t.is_sym('*') {
                i = self.value_modifier(toks, i, &mut out, last_group)?;
                continue;
            }
            if t.is_sym('(') {
                i = self.label_modifier(toks, i, &mut out, labels, unlabeled_from)?;
                unlabeled_from = out.len();
                continue;
            }
            if t.is_sym('{') {
                self.err(t.span, "scale factors { } are not supported");
                return None;
            }
            if t.kind != TokKind::Word {
                let msg = format!("unexpected '{}'", t.text);
                match lookalike_help(&t.text) {
                    Some(h) => self.err_help(t.span, msg, h),
                    None => self.err(t.span, msg),
                }
                return None;
            }
            // a name or a range
            let (refs, span, adv) =
                if i + 2 < toks.len() && toks[i + 1].is_dash() && toks[i + 2].kind == TokKind::Word
                {
                    self.check_dash(&toks[i + 1]);
                    let span = t.span.to(toks[i + 2].span);
                    match self.resolve_range(
                        &t.text,
                        &toks[i + 2].text,
                        span,
                        use_names,
                        all_names,
                        cvs,
                    ) {
                        Some(r) => (r, span, 3),
                        None => {
                            ok = false;
                            (Vec::new(), span, 3)
                        }
                    }
                } else {
                    match self.resolve(&t.text, t.span, use_names, all_names, cvs) {
                        Some(r) => (vec![r], t.span, 1),
                        None => {
                            ok = false;
                            (Vec::new(), t.span, 1)
                        }
                    }
                };
            let first = out.len();
            out.push(Elem {
                refs,
                span,
                bracketed: false,
                fixed: None,
                start: None,
                label_group: None,
            });
            last_group = Some((first, out.len()));
            i += adv;
        }
        ok.then_some(out)
    }

    /// `@v` (fixed at v) or `*v` / `*` (free, starting at v) at `toks[i]`,
    /// for the elements `last_group` spans. Returns where the next token
    /// is; None after an error.
    fn value_modifier(
        &mut self,
        toks: &[Token],
        i: usize,
        out: &mut [Elem],
        last_group: Option<(usize, usize)>,
    ) -> Option<usize> {
        let t = &toks[i];
        let Some((a, b)) = last_group else {
            self.err(t.span, format!("'{}' must follow a parameter", t.text));
            return None;
        };
        let val = toks.get(i + 1).and_then(Token::number);
        if t.is_sym('@') {
            let Some(v) = val else {
                self.err(t.span, "'@' needs a value, such as @0");
                return None;
            };
            for e in &mut out[a..b] {
                e.fixed = Some(v);
                e.start = None;
            }
            Some(i + 2)
        } else {
            for e in &mut out[a..b] {
                e.start = Some(val);
                e.fixed = None;
            }
            Some(i + if val.is_some() { 2 } else { 1 })
        }
    }

    /// `(labels)` at `toks[i]`, for the elements from `unlabeled_from` on.
    /// Returns where the next token is; None after an error.
    fn label_modifier(
        &mut self,
        toks: &[Token],
        i: usize,
        out: &mut [Elem],
        labels: &mut Vec<LabelGroup>,
        unlabeled_from: usize,
    ) -> Option<usize> {
        let t = &toks[i];
        let close = toks[i..].iter().position(|x| x.is_sym(')')).map(|p| i + p);
        let Some(close) = close else {
            self.err(t.span, "missing ')'");
            return None;
        };
        if unlabeled_from >= out.len() {
            self.err(t.span, "a label must follow a parameter");
            return None;
        }
        let names = self.label_list(&toks[i + 1..close], t.span.to(toks[close].span))?;
        let g = labels.len();
        labels.push(LabelGroup {
            labels: names,
            span: t.span.to(toks[close].span),
        });
        for e in &mut out[unlabeled_from..] {
            e.label_group = Some(g);
        }
        Some(close + 1)
    }

    /// The labels of `(a b p1-p5)`: at most [`MAX_LIST`], checked before a
    /// range is expanded.
    pub(super) fn label_list(&mut self, toks: &[Token], span: Span) -> Option<Vec<String>> {
        let mut out = Vec::new();
        let mut i = 0;
        if toks.is_empty() {
            self.err(span, "empty label ( )");
            return None;
        }
        while i < toks.len() {
            let t = &toks[i];
            if !matches!(t.kind, TokKind::Word | TokKind::Number) {
                let msg = format!("'{}' cannot be a label", t.text);
                match lookalike_help(&t.text) {
                    Some(h) => self.err_help(t.span, msg, h),
                    None => self.err(t.span, msg),
                }
                return None;
            }
            if i + 2 < toks.len() && toks[i + 1].is_dash() {
                self.check_dash(&toks[i + 1]);
                self.expand_labels(t, &toks[i + 2], &mut out)?;
                i += 3;
            } else {
                if out.len() >= MAX_LIST {
                    self.too_many_labels(t.span);
                    return None;
                }
                out.push(t.text.to_ascii_uppercase());
                i += 1;
            }
        }
        Some(out)
    }

    /// Appends the labels of the range `a-b` (`p1-p5`, `1-5`) to `out`;
    /// None after an error.
    fn expand_labels(&mut self, a: &Token, b: &Token, out: &mut Vec<String>) -> Option<()> {
        let (pa, na, wa) = match split_suffix(&a.text) {
            Some((p, n, w)) => (p.to_string(), n, w),
            None => (String::new(), a.text.parse().unwrap_or(usize::MAX), 0),
        };
        let (pb, nb) = match split_suffix(&b.text) {
            Some((p, n, _)) => (p.to_string(), n),
            None => (String::new(), b.text.parse().unwrap_or(usize::MAX)),
        };
        if !pa.eq_ignore_ascii_case(&pb) || na > nb || nb == usize::MAX {
            self.err(
                a.span.to(b.span),
                format!("cannot expand the label list {}-{}", a.text, b.text),
            );
            return None;
        }
        if (nb - na).saturating_add(1).saturating_add(out.len()) > MAX_LIST {
            self.too_many_labels(a.span.to(b.span));
            return None;
        }
        for k in na..=nb {
            // keep zero padding (p01-p10)
            out.push(format!("{}{k:0wa$}", pa.to_ascii_uppercase()));
        }
        Some(())
    }

    fn too_many_labels(&mut self, span: Span) {
        self.err(
            span,
            format!(
                "more than {} labels in one ( ), the most mlmix reads",
                thousands(MAX_LIST as u64)
            ),
        );
    }

    /// Resolves `name`, `name$k`, `cv`, `cv#k`, `u#k`.
    pub(super) fn resolve(
        &mut self,
        text: &str,
        span: Span,
        use_names: &[String],
        all_names: &[String],
        cvs: &[ClassVar],
    ) -> Option<Ref> {
        let find = |n: &str| use_names.iter().position(|u| u.eq_ignore_ascii_case(n));
        let names = self.model_names;
        if let Some((base, k)) = text.split_once('$') {
            let Some(i) = find(base) else {
                self.unknown_in_model(span, base, use_names, all_names, cvs);
                return None;
            };
            let Ref::Var(v) = names.at(i) else {
                self.err(
                    span,
                    format!("'{text}': {base} is not an observed variable and has no thresholds"),
                );
                return None;
            };
            return match k.parse::<usize>() {
                Ok(k) if k >= 1 => Some(Ref::Threshold(v, k)),
                _ => {
                    self.err(
                        span,
                        format!("'{text}': thresholds are numbered from 1, as in {base}$1"),
                    );
                    None
                }
            };
        }
        if let Some((base, k)) = text.split_once('#') {
            let cv = cvs.iter().position(|c| c.name.eq_ignore_ascii_case(base));
            if cv.is_none()
                && let Some(Ref::Var(v)) = find(base).map(|i| names.at(i))
            {
                return match k.parse::<usize>() {
                    Ok(k) if k >= 1 => Some(Ref::Category(v, k)),
                    _ => {
                        self.err(
                            span,
                            format!("'{text}': categories are numbered from 1, as in {base}#1"),
                        );
                        None
                    }
                };
            }
            let Some(cv) = cv else {
                let mut d =
                    Diagnostic::error(self.src, span, format!("'{base}' is not a class variable"));
                if let Some(s) = suggest(base, cvs.iter().map(|c| c.name.as_str())) {
                    d = d.with_help(format!("did you mean {s}?"));
                }
                self.diags.push(d);
                return None;
            };
            return match k.parse::<usize>() {
                Ok(k) if k >= 1 && k <= cvs[cv].classes => Some(Ref::Class(cv, k - 1)),
                _ => {
                    let what = if k.is_empty() {
                        "the class number is missing".to_string()
                    } else {
                        format!("{} has no class {k}", cvs[cv].name)
                    };
                    self.err_help(
                        span,
                        format!("'{text}': {what}"),
                        format!("{} has classes 1 to {}", cvs[cv].name, cvs[cv].classes),
                    );
                    None
                }
            };
        }
        if let Some(cv) = cvs.iter().position(|c| c.name.eq_ignore_ascii_case(text)) {
            return Some(Ref::ClassVar(cv));
        }
        match find(text) {
            Some(i) => Some(names.at(i)),
            None => {
                self.unknown_in_model(span, text, use_names, all_names, cvs);
                None
            }
        }
    }

    pub(super) fn unknown_in_model(
        &mut self,
        span: Span,
        name: &str,
        use_names: &[String],
        all_names: &[String],
        cvs: &[ClassVar],
    ) {
        if all_names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            // once per name, and not at all when USEVARIABLES itself had
            // an error (what it was meant to hold is not known)
            let key = format!("not in USEVARIABLES {}", name.to_ascii_uppercase());
            if self.diags.is_marked(USEV_FAILED) || !self.diags.mark(&key) {
                return;
            }
            self.err_help(
                span,
                format!("{name} is not in USEVARIABLES"),
                "add it to USEVARIABLES to use it in MODEL:",
            );
            return;
        }
        let extra: Vec<String> = cvs.iter().map(|c| c.name.clone()).collect();
        self.unknown_name(span, name, use_names, &extra);
    }

    pub(super) fn resolve_range(
        &mut self,
        a: &str,
        b: &str,
        span: Span,
        use_names: &[String],
        all_names: &[String],
        cvs: &[ClassVar],
    ) -> Option<Vec<Ref>> {
        let find = |n: &str| use_names.iter().position(|u| u.eq_ignore_ascii_case(n));
        let (ba, sa) = a.split_once('$').map_or((a, None), |(x, y)| (x, Some(y)));
        let (bb, sb) = b.split_once('$').map_or((b, None), |(x, y)| (x, Some(y)));
        if a.contains('#') || b.contains('#') {
            return self.class_range(a, b, span, use_names, all_names, cvs);
        }
        if sa != sb {
            self.err(span, format!("the list {a}-{b} mixes different thresholds"));
            return None;
        }
        let (Some(x), Some(y)) = (find(ba), find(bb)) else {
            for n in [ba, bb] {
                if find(n).is_none() {
                    self.unknown_in_model(span, n, use_names, all_names, cvs);
                }
            }
            return None;
        };
        if !self.runs_forwards(a, b, x, y, span) {
            return None;
        }
        let names = self.model_names;
        match sa {
            None => Some((x..=y).map(|i| names.at(i)).collect()),
            Some(_) if y >= names.n_use => {
                self.err(
                    span,
                    format!("the list {a}-{b} has names that are not observed variables, and so no thresholds"),
                );
                None
            }
            Some(k) => match k.parse::<usize>() {
                Ok(k) if k >= 1 => Some((x..=y).map(|v| Ref::Threshold(v, k)).collect()),
                _ => {
                    self.err(span, format!("'{a}': thresholds are numbered from 1"));
                    None
                }
            },
        }
    }

    /// Whether the list `a-b` (positions `x` and `y` in USEVARIABLES) runs
    /// forwards; an error when it does not.
    fn runs_forwards(&mut self, a: &str, b: &str, x: usize, y: usize, span: Span) -> bool {
        if x > y {
            self.err(
                span,
                format!("the list {a}-{b} runs backwards (lists follow the order of USEVARIABLES)"),
            );
        }
        x <= y
    }

    /// The names of a range of nominal variables' category intercepts,
    /// `u1#1-u4#1`: category 1 of each variable from `u1` to `u4` in the
    /// order of USEVARIABLES (both ends the same category). Names that are
    /// not variables are left for `resolve` to report.
    fn nominal_range(
        &mut self,
        a: &str,
        b: &str,
        span: Span,
        use_names: &[String],
    ) -> Option<Vec<String>> {
        let (va, ka) = a.split_once('#')?;
        let (vb, kb) = b.split_once('#')?;
        let find = |n: &str| use_names.iter().position(|u| u.eq_ignore_ascii_case(n));
        let (Some(x), Some(y)) = (find(va), find(vb)) else {
            return Some(vec![a.to_string(), b.to_string()]);
        };
        if ka != kb {
            self.err(span, format!("the list {a}-{b} mixes different categories"));
            return None;
        }
        if !self.runs_forwards(a, b, x, y, span) {
            return None;
        }
        Some((x..=y).map(|v| format!("{}#{ka}", use_names[v])).collect())
    }

    /// A range of class logit means, as in Mplus: `c#1-c#3` (classes 1 to
    /// 3 of `c`) or `c2#1-c4#1` (class 1 of each class variable from `c2`
    /// to `c4`, in the order of CLASSES).
    fn class_range(
        &mut self,
        a: &str,
        b: &str,
        span: Span,
        use_names: &[String],
        all_names: &[String],
        cvs: &[ClassVar],
    ) -> Option<Vec<Ref>> {
        let help = "a range of classes is written c#1-c#3 (classes of one class variable) or c1#1-c3#1 (the same class of several)";
        let (Some((ca, ka)), Some((cb, kb))) = (a.split_once('#'), b.split_once('#')) else {
            self.err_help(
                span,
                format!("the list {a}-{b} mixes classes and variables"),
                help,
            );
            return None;
        };
        let cv_of = |n: &str| cvs.iter().position(|c| c.name.eq_ignore_ascii_case(n));
        let names: Vec<String> = if ca.eq_ignore_ascii_case(cb) {
            let (Ok(x), Ok(y)) = (ka.parse::<usize>(), kb.parse::<usize>()) else {
                self.err_help(span, format!("cannot expand the list {a}-{b}"), help);
                return None;
            };
            if x > y || y - x >= MAX_LIST {
                self.err_help(span, format!("cannot expand the list {a}-{b}"), help);
                return None;
            }
            (x..=y).map(|k| format!("{ca}#{k}")).collect()
        } else {
            match (cv_of(ca), cv_of(cb)) {
                (Some(x), Some(y)) if x <= y && ka == kb => cvs[x..=y]
                    .iter()
                    .map(|c| format!("{}#{ka}", c.name))
                    .collect(),
                (Some(_), Some(_)) => {
                    self.err_help(span, format!("cannot expand the list {a}-{b}"), help);
                    return None;
                }
                // nominal variables' categories: u1#1-u4#1
                (None, None) => self.nominal_range(a, b, span, use_names)?,
                // the unknown one is reported by resolve
                _ => vec![a.to_string(), b.to_string()],
            }
        };
        let mut refs = Vec::with_capacity(names.len());
        let mut ok = true;
        for n in &names {
            match self.resolve(n, span, use_names, all_names, cvs) {
                Some(r) => refs.push(r),
                None => ok = false,
            }
        }
        ok.then_some(refs)
    }
}
