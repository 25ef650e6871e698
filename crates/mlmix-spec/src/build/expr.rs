//! DEFINE's expressions: parsing a statement's tokens into a numeric
//! expression ([`Expr`]) or a condition ([`Cond`]), and evaluating them on
//! one row of the data.
//!
//! Precedence, lowest first (Mplus's, which are Fortran's): `OR`; `AND`;
//! `NOT`; the comparisons `EQ NE GT LT GE LE` (also `== /= > < >= <=`, at
//! most one per operand pair); `+ -`; `* /`; unary `-` and `+`; `**` (right
//! to left, so `-2**2` is -4 and `2**3**2` is 512); then numbers,
//! variables, `_MISSING`, function calls and parentheses.
//!
//! Missing values (NaN) follow Mplus's rule that a missing operand makes
//! the result missing: arithmetic and functions on a missing value are
//! missing, a comparison with a missing value is neither true nor false
//! (`None`), and so are `AND`, `OR` and `NOT` of such a comparison. Only
//! `x EQ _MISSING` and `x NE _MISSING` test for a missing value; they are
//! always true or false. An operation on values that are not missing whose
//! result is undefined or not finite (division by zero, `LOG(0)`,
//! `SQRT(-1)`, overflow) is missing too, and is counted so that the caller
//! can warn.

use crate::diag::suggest;
use crate::source::Span;
use crate::syntax::{TokKind, Token};

/// A variable an expression reads: its name as written and, once
/// resolved ([`Expr::vars_mut`]), its column among the data's variables.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct VarRef {
    /// The name as written.
    pub(super) name: String,
    /// Where.
    pub(super) span: Span,
    /// Its column; `usize::MAX` until resolved.
    pub(super) col: usize,
}

impl VarRef {
    /// An unresolved reference.
    pub(super) fn new(name: &str, span: Span) -> Self {
        VarRef {
            name: name.to_string(),
            span,
            col: usize::MAX,
        }
    }
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cmp {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
}

/// A function of one argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Func {
    Log,
    Log10,
    Exp,
    Sqrt,
    Abs,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    /// The whole part, rounded towards zero.
    Integer,
}

/// The functions DEFINE knows, by name.
const FUNCTIONS: &[(&str, Func)] = &[
    ("LOG", Func::Log),
    ("LOG10", Func::Log10),
    ("EXP", Func::Exp),
    ("SQRT", Func::Sqrt),
    ("ABS", Func::Abs),
    ("SIN", Func::Sin),
    ("COS", Func::Cos),
    ("TAN", Func::Tan),
    ("ASIN", Func::Asin),
    ("ACOS", Func::Acos),
    ("ATAN", Func::Atan),
    ("INTEGER", Func::Integer),
];

/// Mplus functions mlmix does not evaluate yet, with what to do instead.
const UNSUPPORTED_FUNCTIONS: &[(&str, &str)] = &[
    (
        "MEAN",
        "add the variables and divide: m = (y1 + y2 + y3)/3;",
    ),
    ("SUM", "write the sum out: s = y1 + y2 + y3;"),
    (
        "PHI",
        "compute the normal distribution function before the analysis",
    ),
    (
        "CLUSTER_MEAN",
        "compute the cluster means before the analysis and add them to the data file",
    ),
];

/// Words that are operators or keywords, never variables.
const KEYWORDS: &[&str] = &[
    "AND", "OR", "NOT", "EQ", "NE", "GT", "LT", "GE", "LE", "IF", "THEN", "ELSE",
];

/// A numeric expression.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
    /// A number.
    Num(f64),
    /// `_MISSING`: only as a whole assigned value (`y = _MISSING;`).
    Missing,
    /// A variable's value in the row.
    Var(VarRef),
    /// `-e`.
    Neg(Box<Expr>),
    /// `a ** b`.
    Pow(Box<Expr>, Box<Expr>),
    /// `a op b op c ...`, left to right, with `+ -` or `* /` (one node for
    /// a whole chain, so that a long sum is not a deep tree).
    Chain(Box<Expr>, Vec<(Arith, Expr)>),
    /// `f(e)`.
    Call(Func, Box<Expr>),
}

/// A condition (true, false, or missing when it compares a missing value).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cond {
    /// `a op b`.
    Cmp(Cmp, Expr, Expr),
    /// `e EQ _MISSING` (false) or `e NE _MISSING` (true).
    IsMissing(Expr, bool),
    /// `NOT c`.
    Not(Box<Cond>),
    /// `a AND b AND ...`.
    And(Vec<Cond>),
    /// `a OR b OR ...`.
    Or(Vec<Cond>),
}

/// A problem with an expression, to be reported at `span`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ParseError {
    /// Where.
    pub(super) span: Span,
    /// What.
    pub(super) message: String,
    /// What to do, when known.
    pub(super) help: Option<String>,
}

fn error(span: Span, message: impl Into<String>) -> ParseError {
    ParseError {
        span,
        message: message.into(),
        help: None,
    }
}

fn error_help(span: Span, message: impl Into<String>, help: impl Into<String>) -> ParseError {
    ParseError {
        span,
        message: message.into(),
        help: Some(help.into()),
    }
}

type Parsed<T> = Result<T, ParseError>;

// ---------------------------------------------------------------------------
// evaluation

/// The data an expression reads: one optional column per variable.
pub(super) type Columns = [Option<Vec<f64>>];

impl Expr {
    /// The value in row `row` (NaN is missing). `undefined` is set when an
    /// operation on values that are not missing gives a missing value.
    pub(super) fn eval(&self, cols: &Columns, row: usize, undefined: &mut bool) -> f64 {
        match self {
            Expr::Num(x) => *x,
            Expr::Missing => f64::NAN,
            Expr::Var(v) => cols
                .get(v.col)
                .and_then(Option::as_ref)
                .and_then(|c| c.get(row))
                .copied()
                .unwrap_or(f64::NAN),
            Expr::Neg(e) => -e.eval(cols, row, undefined),
            Expr::Pow(a, b) => {
                let (x, y) = (a.eval(cols, row, undefined), b.eval(cols, row, undefined));
                if x.is_nan() || y.is_nan() {
                    return f64::NAN;
                }
                finite(x.powf(y), undefined)
            }
            // left to right: missing once a value is missing, and from
            // the first step that is not finite (with `undefined` set)
            Expr::Chain(first, rest) => {
                let mut acc = first.eval(cols, row, undefined);
                for (op, e) in rest {
                    let y = e.eval(cols, row, undefined);
                    acc = if acc.is_nan() || y.is_nan() {
                        f64::NAN
                    } else {
                        finite(arith(*op, acc, y), undefined)
                    };
                }
                acc
            }
            Expr::Call(f, e) => {
                let x = e.eval(cols, row, undefined);
                if x.is_nan() {
                    return f64::NAN;
                }
                finite(call(*f, x), undefined)
            }
        }
    }

    /// Calls `f` on every variable the expression reads.
    pub(super) fn vars_mut(&mut self, f: &mut impl FnMut(&mut VarRef)) {
        match self {
            Expr::Num(_) | Expr::Missing => {}
            Expr::Var(v) => f(v),
            Expr::Neg(e) | Expr::Call(_, e) => e.vars_mut(f),
            Expr::Pow(a, b) => {
                a.vars_mut(f);
                b.vars_mut(f);
            }
            Expr::Chain(first, rest) => {
                first.vars_mut(f);
                rest.iter_mut().for_each(|(_, e)| e.vars_mut(f));
            }
        }
    }
}

impl Cond {
    /// True, false, or None when it compares a missing value.
    pub(super) fn eval(&self, cols: &Columns, row: usize, undefined: &mut bool) -> Option<bool> {
        match self {
            Cond::Cmp(op, a, b) => {
                let (x, y) = (a.eval(cols, row, undefined), b.eval(cols, row, undefined));
                if x.is_nan() || y.is_nan() {
                    return None;
                }
                Some(compare(*op, x, y))
            }
            Cond::IsMissing(e, negated) => Some(e.eval(cols, row, undefined).is_nan() != *negated),
            Cond::Not(c) => c.eval(cols, row, undefined).map(|b| !b),
            // strict: a missing part makes the whole missing, even when the
            // others alone would decide it
            Cond::And(cs) => fold_conds(cs, cols, row, undefined, true, |a, b| a && b),
            Cond::Or(cs) => fold_conds(cs, cols, row, undefined, false, |a, b| a || b),
        }
    }

    /// Calls `f` on every variable the condition reads.
    pub(super) fn vars_mut(&mut self, f: &mut impl FnMut(&mut VarRef)) {
        match self {
            Cond::Cmp(_, a, b) => {
                a.vars_mut(f);
                b.vars_mut(f);
            }
            Cond::IsMissing(e, _) => e.vars_mut(f),
            Cond::Not(c) => c.vars_mut(f),
            Cond::And(cs) | Cond::Or(cs) => cs.iter_mut().for_each(|c| c.vars_mut(f)),
        }
    }
}

/// `cs` joined by `join` from `init`; None when one of them is missing
/// (every one is evaluated).
fn fold_conds(
    cs: &[Cond],
    cols: &Columns,
    row: usize,
    undefined: &mut bool,
    init: bool,
    join: fn(bool, bool) -> bool,
) -> Option<bool> {
    let mut acc = Some(init);
    for c in cs {
        let b = c.eval(cols, row, undefined);
        acc = acc.zip(b).map(|(a, b)| join(a, b));
    }
    acc
}

/// `x`, or NaN (with `undefined` set) when it is not finite.
fn finite(x: f64, undefined: &mut bool) -> f64 {
    if x.is_finite() {
        x
    } else {
        *undefined = true;
        f64::NAN
    }
}

fn arith(op: Arith, x: f64, y: f64) -> f64 {
    match op {
        Arith::Add => x + y,
        Arith::Sub => x - y,
        Arith::Mul => x * y,
        Arith::Div => x / y,
    }
}

fn call(f: Func, x: f64) -> f64 {
    match f {
        // ln of 0 is -inf and of a negative number NaN: both missing
        Func::Log => x.ln(),
        Func::Log10 => x.log10(),
        Func::Exp => x.exp(),
        Func::Sqrt => x.sqrt(),
        Func::Abs => x.abs(),
        Func::Sin => x.sin(),
        Func::Cos => x.cos(),
        Func::Tan => x.tan(),
        Func::Asin => x.asin(),
        Func::Acos => x.acos(),
        Func::Atan => x.atan(),
        Func::Integer => x.trunc(),
    }
}

fn compare(op: Cmp, x: f64, y: f64) -> bool {
    match op {
        Cmp::Eq => x == y,
        Cmp::Ne => x != y,
        Cmp::Gt => x > y,
        Cmp::Lt => x < y,
        Cmp::Ge => x >= y,
        Cmp::Le => x <= y,
    }
}

// ---------------------------------------------------------------------------
// parsing

/// What a piece of an expression is: a number, `_MISSING`, or a condition.
enum Value {
    Num(Expr),
    Missing,
    Bool(Cond),
}

/// A parsed piece with its span.
struct Piece {
    value: Value,
    span: Span,
}

/// Parses `tokens` up to `stop` (a word such as `THEN`, or the end) as a
/// numeric expression. `_MISSING` alone is accepted when `allow_missing`.
/// Returns the expression and the index of the first token not read.
pub(super) fn parse_expr(
    tokens: &[Token],
    end: Span,
    allow_missing: bool,
) -> Parsed<(Expr, usize)> {
    let mut p = Parser::new(tokens, end);
    let piece = p.or()?;
    let e = match piece.value {
        Value::Num(e) => e,
        Value::Missing if allow_missing => Expr::Missing,
        Value::Missing => return Err(missing_misused(piece.span)),
        Value::Bool(_) => return Err(bool_as_number(piece.span)),
    };
    Ok((e, p.consumed()))
}

/// Parses `tokens` as a condition; returns it and the index of the first
/// token not read.
pub(super) fn parse_cond(tokens: &[Token], end: Span) -> Parsed<(Cond, usize)> {
    let mut p = Parser::new(tokens, end);
    let piece = p.or()?;
    let c = as_cond(piece)?;
    Ok((c, p.consumed()))
}

fn missing_misused(span: Span) -> ParseError {
    error_help(
        span,
        "_MISSING can only be compared with EQ or NE, or assigned",
        "write IF (x EQ _MISSING) THEN ...; or y = _MISSING;",
    )
}

fn bool_as_number(span: Span) -> ParseError {
    error_help(
        span,
        "a comparison is true or false, not a number",
        "use comparisons in IF (...) THEN y = ...;",
    )
}

fn as_num(p: Piece) -> Parsed<Expr> {
    match p.value {
        Value::Num(e) => Ok(e),
        Value::Missing => Err(missing_misused(p.span)),
        Value::Bool(_) => Err(bool_as_number(p.span)),
    }
}

fn as_cond(p: Piece) -> Parsed<Cond> {
    match p.value {
        Value::Bool(c) => Ok(c),
        Value::Missing => Err(missing_misused(p.span)),
        Value::Num(_) => Err(error_help(
            p.span,
            "expected a condition, such as x EQ 1",
            "compare with EQ NE GT LT GE LE (or == /= > < >= <=)",
        )),
    }
}

/// A binary operator.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Or,
    And,
    Cmp(Cmp),
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

struct Parser {
    /// The tokens, with signed numbers split into a sign and a number.
    toks: Vec<Token>,
    /// How many of `toks` each original token became (to map back).
    origin: Vec<usize>,
    pos: usize,
    /// Where the text ends, for "ends too early".
    end: Span,
    /// How deep the parser is in parentheses, signs and NOTs.
    depth: usize,
}

/// The deepest nesting of parentheses, signs and NOTs (a level of
/// parentheses counts two): deeper is an error rather than a deep
/// recursion. Chains (`a + b + ...`, `a AND b AND ...`) do not nest.
const MAX_DEPTH: usize = 200;

impl Parser {
    fn new(tokens: &[Token], end: Span) -> Self {
        let mut toks = Vec::with_capacity(tokens.len());
        let mut origin = Vec::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            // the splitter reads `-1` as one number; here it is always a
            // sign and a number, so that `x -1` subtracts and `-2**2` is -4
            let signed = t.kind == TokKind::Number && t.text.starts_with(['-', '+']);
            if signed && t.text.len() > 1 {
                let sign = &t.text[..1];
                let s = t.span.start;
                toks.push(Token {
                    kind: TokKind::Sym(if sign == "-" { '-' } else { '+' }),
                    text: sign.to_string(),
                    span: Span::new(s, s + 1),
                });
                toks.push(Token {
                    kind: TokKind::Number,
                    text: t.text[1..].to_string(),
                    span: Span::new(s + 1, t.span.end),
                });
                origin.extend([i, i]);
            } else {
                toks.push(t.clone());
                origin.push(i);
            }
        }
        Parser {
            toks,
            origin,
            pos: 0,
            end,
            depth: 0,
        }
    }

    /// How many of the original tokens have been read.
    fn consumed(&self) -> usize {
        match self.origin.get(self.pos) {
            Some(&i) => i,
            None => self.origin.last().map_or(0, |&i| i + 1),
        }
    }

    fn peek(&self, k: usize) -> Option<&Token> {
        self.toks.get(self.pos + k)
    }

    /// Are tokens `k` and `k + 1` from the cursor the two characters `a`
    /// and `b` written together (`**`, `==`, `/=`, `>=`, `<=`)?
    fn pair(&self, k: usize, a: char, b: char) -> bool {
        match (self.peek(k), self.peek(k + 1)) {
            (Some(x), Some(y)) => x.is_sym(a) && y.is_sym(b) && x.span.end == y.span.start,
            _ => false,
        }
    }

    /// The binary operator at the cursor and its number of tokens.
    fn op(&self) -> Option<(Op, usize)> {
        let t = self.peek(0)?;
        if t.kind == TokKind::Word {
            let op = match t.text.to_ascii_uppercase().as_str() {
                "OR" => Op::Or,
                "AND" => Op::And,
                "EQ" => Op::Cmp(Cmp::Eq),
                "NE" => Op::Cmp(Cmp::Ne),
                "GT" => Op::Cmp(Cmp::Gt),
                "LT" => Op::Cmp(Cmp::Lt),
                "GE" => Op::Cmp(Cmp::Ge),
                "LE" => Op::Cmp(Cmp::Le),
                _ => return None,
            };
            return Some((op, 1));
        }
        let two = [
            ('*', '*', Op::Pow),
            ('=', '=', Op::Cmp(Cmp::Eq)),
            ('/', '=', Op::Cmp(Cmp::Ne)),
            ('>', '=', Op::Cmp(Cmp::Ge)),
            ('<', '=', Op::Cmp(Cmp::Le)),
        ];
        for (a, b, op) in two {
            if self.pair(0, a, b) {
                return Some((op, 2));
            }
        }
        let op = match t.kind {
            TokKind::Sym('+') => Op::Add,
            TokKind::Sym('-') => Op::Sub,
            TokKind::Sym('*') => Op::Mul,
            TokKind::Sym('/') => Op::Div,
            TokKind::Sym('>') => Op::Cmp(Cmp::Gt),
            TokKind::Sym('<') => Op::Cmp(Cmp::Lt),
            _ => return None,
        };
        Some((op, 1))
    }

    /// Takes the operator at the cursor if it is one of `ops`.
    fn take_op(&mut self, ops: &[Op]) -> Option<Op> {
        match self.op() {
            Some((op, n)) if ops.contains(&op) => {
                self.pos += n;
                Some(op)
            }
            _ => None,
        }
    }

    fn or(&mut self) -> Parsed<Piece> {
        let first = self.and()?;
        let mut rest = Vec::new();
        while self.take_op(&[Op::Or]).is_some() {
            rest.push(self.and()?);
        }
        logic(first, rest, Cond::Or)
    }

    fn and(&mut self) -> Parsed<Piece> {
        let first = self.not()?;
        let mut rest = Vec::new();
        while self.take_op(&[Op::And]).is_some() {
            rest.push(self.not()?);
        }
        logic(first, rest, Cond::And)
    }

    /// Runs `f` one level deeper; too deep is an error.
    fn nested(&mut self, f: fn(&mut Self) -> Parsed<Piece>) -> Parsed<Piece> {
        if self.depth >= MAX_DEPTH {
            let at = self.peek(0).map_or(self.end, |t| t.span);
            return Err(error(at, "the expression is nested too deeply"));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn not(&mut self) -> Parsed<Piece> {
        self.nested(Self::not_inner)
    }

    fn not_inner(&mut self) -> Parsed<Piece> {
        match self.peek(0) {
            Some(t) if t.is_word("NOT") => {
                let start = t.span;
                self.pos += 1;
                let inner = self.not()?;
                let span = start.to(inner.span);
                let c = as_cond(inner)?;
                Ok(Piece {
                    value: Value::Bool(Cond::Not(Box::new(c))),
                    span,
                })
            }
            _ => self.comparison(),
        }
    }

    fn comparison(&mut self) -> Parsed<Piece> {
        let left = self.sum()?;
        let Some((Op::Cmp(op), n)) = self.op() else {
            return Ok(left);
        };
        self.pos += n;
        let right = self.sum()?;
        if let Some((Op::Cmp(_), _)) = self.op() {
            let at = self.peek(0).map_or(self.end, |t| t.span);
            return Err(error_help(
                at,
                "two comparisons in a row",
                "join comparisons with AND or OR: IF (x GT 1 AND x LT 5) THEN ...",
            ));
        }
        compare_pieces(op, left, right)
    }

    fn sum(&mut self) -> Parsed<Piece> {
        let first = self.term()?;
        let mut rest = Vec::new();
        while let Some(op) = self.take_op(&[Op::Add, Op::Sub]) {
            let a = if op == Op::Add {
                Arith::Add
            } else {
                Arith::Sub
            };
            rest.push((a, self.term()?));
        }
        chain(first, rest)
    }

    fn term(&mut self) -> Parsed<Piece> {
        let first = self.unary()?;
        let mut rest = Vec::new();
        while let Some(op) = self.take_op(&[Op::Mul, Op::Div]) {
            let a = if op == Op::Mul {
                Arith::Mul
            } else {
                Arith::Div
            };
            rest.push((a, self.unary()?));
        }
        chain(first, rest)
    }

    fn unary(&mut self) -> Parsed<Piece> {
        self.nested(Self::unary_inner)
    }

    fn unary_inner(&mut self) -> Parsed<Piece> {
        let sign = match self.peek(0) {
            Some(t) if t.is_sym('-') || t.is_sym('+') => Some((t.is_sym('-'), t.span)),
            _ => None,
        };
        let Some((negative, at)) = sign else {
            return self.power();
        };
        self.pos += 1;
        let inner = self.unary()?;
        let span = at.to(inner.span);
        let e = as_num(inner)?;
        let value = if negative { Expr::Neg(Box::new(e)) } else { e };
        Ok(Piece {
            value: Value::Num(value),
            span,
        })
    }

    fn power(&mut self) -> Parsed<Piece> {
        let base = self.primary()?;
        if self.take_op(&[Op::Pow]).is_none() {
            return Ok(base);
        }
        // right to left: the exponent may itself be a power or signed
        let exponent = self.unary()?;
        let span = base.span.to(exponent.span);
        let (x, y) = (as_num(base)?, as_num(exponent)?);
        Ok(Piece {
            value: Value::Num(Expr::Pow(Box::new(x), Box::new(y))),
            span,
        })
    }

    fn primary(&mut self) -> Parsed<Piece> {
        let Some(t) = self.peek(0).cloned() else {
            return Err(error(self.end, "the expression ends too early"));
        };
        self.pos += 1;
        match t.kind {
            TokKind::Number => Ok(Piece {
                // a malformed number was reported by the splitter
                value: Value::Num(Expr::Num(t.number().unwrap_or(f64::NAN))),
                span: t.span,
            }),
            TokKind::Word => self.word(&t),
            TokKind::Sym('(') => self.parenthesised(t.span),
            TokKind::Sym('=') => Err(single_equals(t.span)),
            _ => Err(error(
                t.span,
                format!("expected a number, a variable or '(', found '{}'", t.text),
            )),
        }
    }

    fn parenthesised(&mut self, open: Span) -> Parsed<Piece> {
        let inner = self.or()?;
        match self.peek(0) {
            Some(t) if t.is_sym(')') => {
                let span = open.to(t.span);
                self.pos += 1;
                Ok(Piece {
                    value: inner.value,
                    span,
                })
            }
            Some(t) if t.is_sym('=') => Err(single_equals(t.span)),
            Some(t) => Err(error(
                t.span,
                format!("expected ')' or an operator, found '{}'", t.text),
            )),
            None => Err(error(open, "this '(' is not closed")),
        }
    }

    /// A word in the place of a value: `_MISSING`, a function call, or a
    /// variable.
    fn word(&mut self, t: &Token) -> Parsed<Piece> {
        let up = t.text.to_ascii_uppercase();
        if up == "_MISSING" {
            return Ok(Piece {
                value: Value::Missing,
                span: t.span,
            });
        }
        if self.peek(0).is_some_and(|n| n.is_sym('(')) {
            return self.call(t, &up);
        }
        if KEYWORDS.contains(&up.as_str()) {
            return Err(error(
                t.span,
                format!("expected a number or a variable, found {up}"),
            ));
        }
        if t.text.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(error_help(
                t.span,
                format!("'{}' is neither a number nor a variable name", t.text),
                "write a product with '*', such as 2*x",
            ));
        }
        Ok(Piece {
            value: Value::Num(Expr::Var(VarRef::new(&t.text, t.span))),
            span: t.span,
        })
    }

    /// `f(argument)`, the cursor on the `(`.
    fn call(&mut self, t: &Token, up: &str) -> Parsed<Piece> {
        let Some(&(_, f)) = FUNCTIONS.iter().find(|(n, _)| *n == up) else {
            if let Some((_, help)) = UNSUPPORTED_FUNCTIONS.iter().find(|(n, _)| *n == up) {
                return Err(error_help(
                    t.span,
                    format!("the DEFINE function {up} is not supported yet"),
                    *help,
                ));
            }
            let names = FUNCTIONS.iter().map(|(n, _)| *n);
            let help = match suggest(&t.text, names) {
                Some(s) => format!("did you mean {s}?"),
                None => {
                    "the functions are LOG LOG10 EXP SQRT ABS SIN COS TAN ASIN ACOS ATAN INTEGER"
                        .to_string()
                }
            };
            return Err(error_help(
                t.span,
                format!("unknown function '{}'", t.text),
                help,
            ));
        };
        let open = self.peek(0).map_or(t.span, |o| o.span);
        self.pos += 1;
        let arg = self.parenthesised(open)?;
        let span = t.span.to(arg.span);
        let e = as_num(arg)?;
        Ok(Piece {
            value: Value::Num(Expr::Call(f, Box::new(e))),
            span,
        })
    }
}

fn single_equals(span: Span) -> ParseError {
    error_help(
        span,
        "'=' assigns a value; it does not compare",
        "compare with EQ or ==, e.g. IF (x EQ 1) THEN y = 2;",
    )
}

/// `first AND rest...` (or OR); `first` alone when `rest` is empty.
fn logic(first: Piece, rest: Vec<Piece>, join: fn(Vec<Cond>) -> Cond) -> Parsed<Piece> {
    let Some(last) = rest.last() else {
        return Ok(first);
    };
    let span = first.span.to(last.span);
    let mut all = vec![as_cond(first)?];
    for p in rest {
        all.push(as_cond(p)?);
    }
    Ok(Piece {
        value: Value::Bool(join(all)),
        span,
    })
}

/// `first op rest...` left to right; `first` alone when `rest` is empty.
fn chain(first: Piece, rest: Vec<(Arith, Piece)>) -> Parsed<Piece> {
    let Some((_, last)) = rest.last() else {
        return Ok(first);
    };
    let span = first.span.to(last.span);
    let x = as_num(first)?;
    let mut ops = Vec::with_capacity(rest.len());
    for (op, p) in rest {
        ops.push((op, as_num(p)?));
    }
    Ok(Piece {
        value: Value::Num(Expr::Chain(Box::new(x), ops)),
        span,
    })
}

/// `a op b`; with `_MISSING` on one side only EQ and NE are allowed.
fn compare_pieces(op: Cmp, a: Piece, b: Piece) -> Parsed<Piece> {
    let span = a.span.to(b.span);
    let missing = |p: &Piece| matches!(p.value, Value::Missing);
    let cond = match (missing(&a), missing(&b)) {
        (true, true) => return Err(missing_misused(span)),
        (false, false) => Cond::Cmp(op, as_num(a)?, as_num(b)?),
        (am, _) => {
            let other = if am { b } else { a };
            let at = other.span;
            if !matches!(op, Cmp::Eq | Cmp::Ne) {
                return Err(missing_misused(span));
            }
            let e = as_num(Piece {
                value: other.value,
                span: at,
            })?;
            Cond::IsMissing(e, op == Cmp::Ne)
        }
    };
    Ok(Piece {
        value: Value::Bool(cond),
        span,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Diagnostics;
    use crate::source::Source;

    /// The tokens of `text` (one DEFINE statement without its `;`).
    fn toks(text: &str) -> Vec<Token> {
        let src = Source::new("t.inp", format!("DEFINE: {text};\n"));
        let mut d = Diagnostics::default();
        let s = crate::syntax::parse(&src, &mut d);
        s.sections[0].statements[0].tokens.clone()
    }

    /// Evaluates `text` with x = 2, y = missing, z = -1 (columns 0, 1, 2).
    fn value(text: &str) -> f64 {
        let t = toks(text);
        let (mut e, used) = parse_expr(&t, Span::default(), true).expect(text);
        assert_eq!(used, t.len(), "{text}");
        e.vars_mut(&mut |v| {
            v.col = ["x", "y", "z"]
                .iter()
                .position(|n| n.eq_ignore_ascii_case(&v.name))
                .expect("known")
        });
        let cols = [Some(vec![2.0]), Some(vec![f64::NAN]), Some(vec![-1.0])];
        e.eval(&cols, 0, &mut false)
    }

    fn truth(text: &str) -> Option<bool> {
        let t = toks(text);
        let (mut c, _) = parse_cond(&t, Span::default()).expect(text);
        c.vars_mut(&mut |v| v.col = usize::from(v.name.eq_ignore_ascii_case("y")));
        let cols = [Some(vec![2.0]), Some(vec![f64::NAN])];
        c.eval(&cols, 0, &mut false)
    }

    #[test]
    fn precedence_follows_fortran() {
        assert_eq!(value("1 + 2*3"), 7.0);
        assert_eq!(value("-2**2"), -4.0);
        assert_eq!(value("2**3**2"), 512.0);
        assert_eq!(value("x -1"), 1.0);
        assert_eq!(value("x-1"), 1.0);
        assert_eq!(value("2*-x"), -4.0);
        assert_eq!(value("(1 + x)/3"), 1.0);
        assert_eq!(value("INTEGER(-2.7)"), -2.0);
        assert_eq!(value("ABS(z)*LOG10(100)"), 2.0);
        assert_eq!(value("10 - 2 - 3 + 1"), 6.0);
        assert_eq!(value("8 / 2 / 2 * 3"), 6.0);
    }

    #[test]
    fn long_chains_are_flat_and_deep_nesting_is_refused() {
        let long = vec!["x"; 5000].join(" + ");
        assert_eq!(value(&long), 10_000.0);
        let deep = format!("{}x{}", "(".repeat(5000), ")".repeat(5000));
        assert!(parse_expr(&toks(&deep), Span::default(), false).is_err());
        let signs = format!("{}x", "- ".repeat(5000));
        assert!(parse_expr(&toks(&signs), Span::default(), false).is_err());
    }

    #[test]
    fn missing_operands_and_undefined_results_are_missing() {
        assert!(value("x + y").is_nan());
        assert!(value("x/0").is_nan());
        assert!(value("LOG(z)").is_nan());
        assert!(value("_MISSING").is_nan());
    }

    #[test]
    fn conditions_with_missing_values() {
        assert_eq!(truth("x EQ 2"), Some(true));
        assert_eq!(truth("x == 2 AND x /= 3"), Some(true));
        assert_eq!(truth("y GT 1"), None);
        assert_eq!(truth("y EQ _MISSING"), Some(true));
        assert_eq!(truth("_MISSING NE x"), Some(true));
        assert_eq!(truth("NOT (x GE 3)"), Some(true));
        assert_eq!(truth("x EQ 2 OR y EQ 1"), None);
    }

    #[test]
    fn misuse_is_an_error() {
        for bad in [
            "x GT _MISSING",
            "(x EQ 1) + 2",
            "x = 1",
            "FOO(x)",
            "MEAN(x)",
            "x EQ 1 EQ 2",
            "(x + 1",
            "x +",
            "2x",
        ] {
            let t = toks(bad);
            // an error, or tokens left over (which the statement reports)
            let left_over = match parse_expr(&t, Span::default(), false) {
                Err(_) => true,
                Ok((_, n)) => n < t.len(),
            };
            assert!(left_over, "{bad}");
        }
    }
}
