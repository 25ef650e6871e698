//! DEFINE: new variables computed from the data, and existing ones changed,
//! row by row, after DATA WIDETOLONG (`super::widetolong`) and before the
//! analysis.
//!
//! Statements run in the order written, each over every row:
//! - `y = expression;` sets y (a new variable, or one of the data's);
//! - `IF (condition) THEN y = expression;` sets y in the rows where the
//!   condition is true, leaves it in the rows where it is false, and sets it
//!   missing where the condition compares a missing value (the
//!   expressions are in `super::expr`, with Mplus's rules for missing
//!   values). A new variable is missing until a statement sets it.
//!
//! What Mplus's DEFINE has and mlmix does not evaluate yet (CENTER,
//! STANDARDIZE, CUT, DO loops, MEAN, SUM, PHI, CLUSTER_MEAN) is an error at
//! its place, as is anything else that is not one of the two forms above.

use std::collections::HashMap;

use super::Builder;
use super::expr::{self, Columns, Cond, Expr, ParseError, VarRef};
use crate::source::Span;
use crate::syntax::{Section, Statement, TokKind, Token};

/// One DEFINE statement.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Stmt {
    /// The variable it sets.
    pub(super) target: VarRef,
    /// `IF (cond) THEN`, when conditional.
    pub(super) cond: Option<Cond>,
    /// The value it sets.
    pub(super) value: Expr,
    /// The whole statement.
    pub(super) span: Span,
}

impl Stmt {
    /// Calls `f` on every variable the statement reads (not its target).
    fn reads_mut(&mut self, f: &mut impl FnMut(&mut VarRef)) {
        if let Some(c) = &mut self.cond {
            c.vars_mut(f);
        }
        self.value.vars_mut(f);
    }

    /// The columns the statement reads or writes (resolved).
    pub(super) fn columns(&self) -> Vec<usize> {
        let mut out = vec![self.target.col];
        let mut s = self.clone();
        s.reads_mut(&mut |v| out.push(v.col));
        out
    }
}

/// Statement-level words of Mplus's DEFINE that mlmix does not evaluate,
/// with what to do instead.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "CENTER",
        "center the variable yourself: xc = x - m; with m its mean",
    ),
    (
        "STANDARDIZE",
        "standardize the variable yourself: z = (x - m)/s; with m its mean and s its standard deviation",
    ),
    (
        "CUT",
        "write the categories with IF statements: IF (x LE 30) THEN g = 0; IF (x GT 30) THEN g = 1;",
    ),
    ("DO", "write the statements of the loop out one by one"),
];

impl Builder<'_> {
    /// Reads the DEFINE statements (names not yet resolved) into `out`;
    /// a statement with a problem is reported and left out, and the
    /// variable it sets, when that can be seen, goes to `broken` (so that
    /// VARIABLE does not report it unknown as well).
    pub(super) fn define_section(
        &mut self,
        sec: &Section,
        out: &mut Vec<Stmt>,
        broken: &mut Vec<String>,
    ) {
        for st in &sec.statements {
            if let Some(m) = &st.marker {
                self.err(st.span, format!("%{m}% is only allowed in MODEL:"));
                continue;
            }
            if st.tokens.is_empty() {
                continue;
            }
            match parse_statement(st) {
                Ok(s) => out.push(s),
                Err(e) => {
                    self.report(e);
                    broken.extend(target_of(&st.tokens).map(|t| t.text.clone()));
                }
            }
        }
    }

    fn report(&mut self, e: ParseError) {
        match e.help {
            Some(h) => self.err_help(e.span, e.message, h),
            None => self.err(e.span, e.message),
        }
    }

    /// Resolves the names DEFINE reads and sets against `names` (the data's
    /// variables after DATA WIDETOLONG), appending the variables it creates.
    /// A name read before it exists is reported (`gone` are the wide
    /// variables that DATA WIDETOLONG replaced, for a better message).
    pub(super) fn resolve_define(
        &mut self,
        stmts: &mut [Stmt],
        broken: &[String],
        names: &mut Vec<String>,
        gone: &[String],
    ) {
        let mut index: HashMap<String, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_ascii_uppercase(), i))
            .collect();
        for s in stmts.iter_mut() {
            let mut unknown: Vec<VarRef> = Vec::new();
            s.reads_mut(&mut |v| match index.get(&v.name.to_ascii_uppercase()) {
                Some(&c) => v.col = c,
                None => unknown.push(v.clone()),
            });
            for v in unknown {
                self.unknown_in_define(&v, names, gone);
            }
            let up = s.target.name.to_ascii_uppercase();
            s.target.col = *index.entry(up).or_insert_with(|| {
                names.push(s.target.name.clone());
                names.len() - 1
            });
        }
        // the variables of statements with errors exist too (the run
        // stops before the data are read)
        for b in broken {
            index.entry(b.to_ascii_uppercase()).or_insert_with(|| {
                names.push(b.clone());
                names.len() - 1
            });
        }
    }

    fn unknown_in_define(&mut self, v: &VarRef, names: &[String], gone: &[String]) {
        if let Some(g) = gone.iter().find(|g| g.eq_ignore_ascii_case(&v.name)) {
            if self
                .diags
                .mark(&format!("unknown {}", v.name.to_ascii_uppercase()))
            {
                self.err_help(
                    v.span,
                    format!(
                        "{g} is a WIDE variable of DATA WIDETOLONG, which DEFINE no longer sees"
                    ),
                    "DEFINE runs after the reshape: use the LONG variable",
                );
            }
            return;
        }
        self.unknown_name(v.span, &v.name, names, &[]);
    }
}

/// One statement: `y = e` or `IF c THEN y = e`, or an error.
fn parse_statement(st: &Statement) -> Result<Stmt, ParseError> {
    let t = &st.tokens;
    let first = &t[0];
    let up = first.text.to_ascii_uppercase();
    let assigns = t.get(1).is_some_and(|n| n.is_sym('=') && !is_eq_eq(t, 1));
    if first.kind == TokKind::Word && !assigns {
        if up == "IF" {
            return parse_if(st);
        }
        if let Some((_, help)) = UNSUPPORTED.iter().find(|(w, _)| *w == up) {
            let what = if up == "DO" { "DO loops" } else { up.as_str() };
            return Err(ParseError {
                span: first.span,
                message: format!("{what} in DEFINE is not supported yet"),
                help: Some((*help).to_string()),
            });
        }
        if up == "ELSE" {
            return Err(ParseError {
                span: first.span,
                message: "ELSE is not part of DEFINE".into(),
                help: Some("write a second IF statement with the opposite condition".into()),
            });
        }
    }
    let (target, value) = parse_assignment(t, 0, st.span)?;
    Ok(Stmt {
        target,
        cond: None,
        value,
        span: st.span,
    })
}

/// The variable a statement sets, when it can be seen: `y` of `y = ...`,
/// or in an IF statement the last name followed by a single `=` (`IF ...
/// THEN y = ...`, also when THEN is missing).
fn target_of(t: &[Token]) -> Option<&Token> {
    let assigns = |i: usize| {
        t[i].kind == TokKind::Word
            && t.get(i + 1).is_some_and(|e| e.is_sym('='))
            && !is_eq_eq(t, i + 1)
    };
    if !t.first()?.is_word("IF") {
        return assigns(0).then(|| &t[0]);
    }
    (1..t.len()).rev().find(|&i| assigns(i)).map(|i| &t[i])
}

/// Are tokens `i` and `i + 1` the two characters `==`?
fn is_eq_eq(t: &[Token], i: usize) -> bool {
    matches!((t.get(i), t.get(i + 1)), (Some(a), Some(b))
        if a.is_sym('=') && b.is_sym('=') && a.span.end == b.span.start)
}

/// `IF (condition) THEN y = expression`.
fn parse_if(st: &Statement) -> Result<Stmt, ParseError> {
    let t = &st.tokens;
    let end = Span::new(st.span.end, st.span.end);
    let rest = &t[1..];
    let (cond, used) = expr::parse_cond(rest, end)?;
    let then = 1 + used;
    match t.get(then) {
        Some(w) if w.is_word("THEN") => {}
        Some(w) => {
            return Err(ParseError {
                span: w.span,
                message: format!("expected THEN after the condition, found '{}'", w.text),
                help: Some("write IF (condition) THEN y = expression;".into()),
            });
        }
        None => {
            return Err(ParseError {
                span: st.span,
                message: "IF needs THEN y = expression after its condition".into(),
                help: Some("write IF (condition) THEN y = expression;".into()),
            });
        }
    }
    let (target, value) = parse_assignment(t, then + 1, st.span)?;
    Ok(Stmt {
        target,
        cond: Some(cond),
        value,
        span: st.span,
    })
}

/// `y = expression` from token `at` to the end of the statement.
fn parse_assignment(t: &[Token], at: usize, whole: Span) -> Result<(VarRef, Expr), ParseError> {
    let form = "write y = expression; or IF (condition) THEN y = expression;";
    let Some(name) = t.get(at) else {
        return Err(ParseError {
            span: whole,
            message: "expected the variable to set after THEN".into(),
            help: Some(form.into()),
        });
    };
    let is_eq = t.get(at + 1).is_some_and(|e| e.is_sym('=')) && !is_eq_eq(t, at + 1);
    if name.kind != TokKind::Word || !is_eq {
        return Err(ParseError {
            span: name.span,
            message: format!("expected 'name = expression', found '{}'", name.text),
            help: Some(form.into()),
        });
    }
    check_target(name)?;
    let end = Span::new(whole.end, whole.end);
    let (value, used) = expr::parse_expr(&t[at + 2..], end, true)?;
    if let Some(extra) = t.get(at + 2 + used) {
        let help = if extra.is_sym('=') {
            "compare with EQ or == inside IF (...)"
        } else {
            "end the statement with ';' or join the values with an operator"
        };
        return Err(ParseError {
            span: extra.span,
            message: format!("unexpected '{}' after the expression", extra.text),
            help: Some(help.into()),
        });
    }
    Ok((VarRef::new(&name.text, name.span), value))
}

/// A name DEFINE may set: not `_MISSING`, without `#` or `$`.
fn check_target(name: &Token) -> Result<(), ParseError> {
    if name.text.eq_ignore_ascii_case("_MISSING") {
        return Err(ParseError {
            span: name.span,
            message: "_MISSING cannot be set".into(),
            help: Some("to make y missing write y = _MISSING;".into()),
        });
    }
    if name.text.contains(['#', '$']) {
        return Err(ParseError {
            span: name.span,
            message: format!("variable name {} cannot contain # or $", name.text),
            help: None,
        });
    }
    if name.text.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(ParseError {
            span: name.span,
            message: format!("'{}' is not a variable name", name.text),
            help: Some("a variable name starts with a letter".into()),
        });
    }
    Ok(())
}

/// Runs the statements over the rows of `cols` (one column per variable,
/// `None` for those not read; room is made for those DEFINE creates).
/// Returns, for each statement that gave a missing value from values that
/// were not missing (division by zero, LOG of 0, ...), the statement and
/// the number of such rows.
pub(super) fn run<'s>(
    stmts: &'s [Stmt],
    cols: &mut Vec<Option<Vec<f64>>>,
    n_rows: usize,
) -> Vec<(&'s Stmt, usize)> {
    let mut undefined_rows = Vec::new();
    for s in stmts {
        let t = s.target.col;
        if cols.len() <= t {
            cols.resize(t + 1, None);
        }
        if cols[t].is_none() {
            cols[t] = Some(vec![f64::NAN; n_rows]);
        }
        let (new, undefined) = statement_values(s, cols, n_rows);
        cols[t] = Some(new);
        if undefined > 0 {
            undefined_rows.push((s, undefined));
        }
    }
    undefined_rows
}

/// The target's values after statement `s` (it may read its own target,
/// as in `y = y/100`), and the number of rows where an operation gave a
/// missing value from values that were not.
fn statement_values(s: &Stmt, cols: &Columns, n_rows: usize) -> (Vec<f64>, usize) {
    let old = cols.get(s.target.col).and_then(Option::as_deref);
    let mut undefined = 0;
    let values = (0..n_rows)
        .map(|row| {
            let current = old.and_then(|o| o.get(row)).copied().unwrap_or(f64::NAN);
            let mut bad = false;
            let set = match &s.cond {
                None => Some(true),
                Some(c) => c.eval(cols, row, &mut bad),
            };
            let y = match set {
                Some(true) => s.value.eval(cols, row, &mut bad),
                Some(false) => current,
                None => f64::NAN,
            };
            undefined += usize::from(bad);
            y
        })
        .collect();
    (values, undefined)
}
