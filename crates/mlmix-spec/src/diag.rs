//! Diagnostics: errors and warnings that name the file, line and column, and
//! render with the source line and a caret.
//!
//! What is printed is bounded whatever the input: [`Diagnostics`] keeps at
//! most [`MAX_SHOWN`] errors and as many warnings (the rest are counted and
//! rendered as "and N more errors"), reports a message repeated word for
//! word once with the number of times, shortens long words in messages to
//! [`MAX_WORD`] characters and the source line under a message to an
//! excerpt of at most [`MAX_LINE`] characters around the caret.

use std::collections::HashSet;
use std::fmt;

use crate::source::{Source, Span};

/// The most errors (and, separately, warnings) kept and printed; the rest
/// are counted (Mplus prints the first errors only, too).
pub const MAX_SHOWN: usize = 20;

/// The longest source-line excerpt printed under a message, in characters
/// (not counting the `…` that mark a cut).
pub const MAX_LINE: usize = 80;

/// The longest word (a run of characters without spaces, such as an echoed
/// name or value) kept whole in a message or help, in characters; a file
/// path (a word with `/` or `\`) is kept up to [`MAX_PATH`].
pub const MAX_WORD: usize = 80;

/// The longest file path kept whole in a message, in characters.
pub const MAX_PATH: usize = 1000;

/// The longest message or help, in characters.
pub const MAX_MESSAGE: usize = 400;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The model cannot be fitted.
    Error,
    /// The fit goes on; something was ignored or is worth knowing.
    Warning,
}

/// Where a diagnostic points.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    /// The file, as given by the user (input file or data file).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The text of the line, for the caret display: the whole line, or an
    /// excerpt of at most [`MAX_LINE`] characters around the column with
    /// `…` where it was cut.
    pub line_text: String,
    /// 1-based column of the caret within `line_text` (`column` unless the
    /// line was cut before it).
    pub text_column: usize,
    /// Width of the caret underline, in characters (within `line_text`).
    pub width: usize,
}

/// One error or warning.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, in one sentence.
    pub message: String,
    /// Where, when the problem has a place in a file.
    pub location: Option<Location>,
    /// What to do about it, when known.
    pub help: Option<String>,
    /// How many times this message was reported (the first place is the
    /// one shown); 1 for most.
    #[serde(skip_serializing_if = "is_one")]
    pub count: usize,
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

impl Diagnostic {
    fn new(severity: Severity, message: String, location: Option<Location>) -> Self {
        Diagnostic {
            severity,
            message: shorten_message(message),
            location,
            help: None,
            count: 1,
        }
    }

    /// An error at a span of a source.
    pub fn error(src: &Source, span: Span, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, message.into(), Some(locate(src, span)))
    }

    /// A warning at a span of a source.
    pub fn warning(src: &Source, span: Span, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, message.into(), Some(locate(src, span)))
    }

    /// An error without a place in a file.
    pub fn error_nowhere(message: impl Into<String>) -> Self {
        Self::new(Severity::Error, message.into(), None)
    }

    /// A warning without a place in a file.
    pub fn warning_nowhere(message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, message.into(), None)
    }

    /// Adds a hint on what to do.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(shorten_message(help.into()));
        self
    }

    /// Is this an error (rather than a warning)?
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

fn locate(src: &Source, span: Span) -> Location {
    let (line, column) = src.line_col(span.start);
    let (end_line, end_col) = src.line_col(span.end.max(span.start));
    let width = if end_line == line && end_col > column {
        end_col - column
    } else {
        1
    };
    let (line_text, text_column, width) = excerpt(src.line_text(line), column, width);
    Location {
        file: src.path().display().to_string(),
        line,
        column,
        line_text,
        text_column,
        width,
    }
}

/// The part of `line` shown under a message: the whole line when it has at
/// most [`MAX_LINE`] characters, else [`MAX_LINE`] characters starting a
/// little before the caret, with `…` where it was cut. Returns the text and
/// the caret's 1-based column and width within it.
fn excerpt(line: &str, column: usize, width: usize) -> (String, usize, usize) {
    // count at most what can be shown: the line may be megabytes long
    if line.chars().nth(MAX_LINE).is_none() {
        return (line.to_string(), column, width.max(1));
    }
    let caret = column.saturating_sub(1);
    let shown_width = width.clamp(1, MAX_LINE / 2);
    let start = if caret + shown_width + 10 <= MAX_LINE {
        0
    } else {
        caret.saturating_sub(20)
    };
    let mut text = String::new();
    if start > 0 {
        text.push('…');
    }
    let mut taken = 0;
    let mut rest = line.chars().skip(start);
    for c in rest.by_ref().take(MAX_LINE) {
        text.push(c);
        taken += 1;
    }
    if rest.next().is_some() {
        text.push('…');
    }
    let text_column = caret - start + 1 + usize::from(start > 0);
    let room = (start + taken).saturating_sub(caret).max(1);
    (text, text_column, shown_width.min(room))
}

/// The most characters of `word` kept in a message.
fn word_limit(word: &str) -> usize {
    if word.contains(['/', '\\']) {
        MAX_PATH
    } else {
        MAX_WORD
    }
}

/// `word` cut to its limit ([`MAX_WORD`], or [`MAX_PATH`] for a path) with
/// a `…`, when longer.
fn shorten_word(word: &str) -> String {
    let mut chars = word.chars();
    let head: String = chars.by_ref().take(word_limit(word)).collect();
    match chars.next_back() {
        None => head,
        // keep a closing quote or bracket, so that 'xxx…' still reads well
        Some(last) if matches!(last, '\'' | '"' | ')' | ']' | '%' | ',' | ':' | '?') => {
            format!("{head}…{last}")
        }
        Some(_) => format!("{head}…"),
    }
}

/// A message with every word longer than [`MAX_WORD`] characters cut
/// (echoed names and values can be megabytes long), and the whole cut to
/// [`MAX_MESSAGE`] characters.
fn shorten_message(message: String) -> String {
    let long_word = message
        .split(char::is_whitespace)
        .any(|w| w.len() > MAX_WORD && w.chars().nth(word_limit(w)).is_some());
    let long = message.len() > MAX_MESSAGE && message.chars().nth(MAX_MESSAGE).is_some();
    if !long_word && !long {
        return message;
    }
    let mut out = String::new();
    let mut word = String::new();
    for c in message.chars() {
        if c.is_whitespace() {
            out.push_str(&shorten_word(&word));
            word.clear();
            out.push(c);
        } else if word.len() < 4 * (MAX_PATH + 1) {
            word.push(c);
        } else {
            // keep only the head and the last character of a long word
            word.pop();
            word.push(c);
        }
        if out.len() > 4 * MAX_MESSAGE {
            break;
        }
    }
    out.push_str(&shorten_word(&word));
    if out.chars().nth(MAX_MESSAGE).is_some() {
        let cut: String = out.chars().take(MAX_MESSAGE).collect();
        return format!("{cut}…");
    }
    out
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match &self.location {
            Some(loc) => {
                writeln!(
                    f,
                    "{kind}: {}:{}:{}: {}",
                    loc.file, loc.line, loc.column, self.message
                )?;
                let num = loc.line.to_string();
                let pad = " ".repeat(num.len());
                let text = loc.line_text.replace('\t', " ");
                writeln!(f, " {pad} |")?;
                writeln!(f, " {num} | {text}")?;
                write!(
                    f,
                    " {pad} | {}{}",
                    " ".repeat(loc.text_column.saturating_sub(1)),
                    "^".repeat(loc.width.max(1))
                )?;
            }
            None => write!(f, "{kind}: {}", self.message)?,
        }
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        if self.count > 1 {
            let more = self.count - 1;
            write!(
                f,
                "\n  = note: the same {kind} {more} more time{} (not shown)",
                if more == 1 { "" } else { "s" }
            )?;
        }
        Ok(())
    }
}

/// Every problem found in an input: the parser and validator report all they
/// find, not only the first. At most [`MAX_SHOWN`] errors and as many
/// warnings are kept, in the order found; a message reported again (word
/// for word, same severity) only counts up the first one's
/// [`Diagnostic::count`]; the others are counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics {
    /// The diagnostics kept, in the order found.
    kept: Vec<Diagnostic>,
    /// Errors found beyond the first [`MAX_SHOWN`] (with other messages).
    more_errors: usize,
    /// Warnings found beyond the first [`MAX_SHOWN`].
    more_warnings: usize,
    /// Things already reported as wrong (see [`Diagnostics::mark`]).
    marked: HashSet<String>,
}

impl Diagnostics {
    /// Adds one.
    pub fn push(&mut self, d: Diagnostic) {
        if !self.absorbed(d.severity, &d.message) {
            self.kept.push(d);
        }
    }

    /// Adds an error at a span, with an optional help; the place is looked
    /// up (which costs a pass over the line) only when the error is kept.
    pub fn error_at(&mut self, src: &Source, span: Span, message: String, help: Option<String>) {
        self.add_at(Severity::Error, src, span, message, help);
    }

    /// Adds a warning at a span, like [`Diagnostics::error_at`].
    pub fn warning_at(&mut self, src: &Source, span: Span, message: String, help: Option<String>) {
        self.add_at(Severity::Warning, src, span, message, help);
    }

    fn add_at(
        &mut self,
        severity: Severity,
        src: &Source,
        span: Span,
        message: String,
        help: Option<String>,
    ) {
        let message = shorten_message(message);
        if self.absorbed(severity, &message) {
            return;
        }
        let mut d = Diagnostic::new(severity, message, Some(locate(src, span)));
        if let Some(h) = help {
            d = d.with_help(h);
        }
        self.kept.push(d);
    }

    /// Counts a diagnostic that is not to be kept: the same message as
    /// one kept (its count goes up), or one too many of its severity.
    /// False when it is to be kept.
    fn absorbed(&mut self, severity: Severity, message: &str) -> bool {
        if let Some(same) = self
            .kept
            .iter_mut()
            .find(|k| k.severity == severity && k.message == message)
        {
            same.count += 1;
            return true;
        }
        let shown = self.kept.iter().filter(|k| k.severity == severity).count();
        if shown < MAX_SHOWN {
            return false;
        }
        match severity {
            Severity::Error => self.more_errors += 1,
            Severity::Warning => self.more_warnings += 1,
        }
        true
    }

    /// Remembers that `what` (such as an unknown name) has been reported,
    /// so that later problems that follow from it are not; true the first
    /// time.
    pub fn mark(&mut self, what: &str) -> bool {
        self.marked.insert(what.to_string())
    }

    /// Has `what` been reported ([`Diagnostics::mark`])?
    pub fn is_marked(&self, what: &str) -> bool {
        self.marked.contains(what)
    }

    /// How many errors were reported, repeats and those not kept included.
    pub fn n_errors(&self) -> usize {
        self.errors().map(|e| e.count).sum::<usize>() + self.more_errors
    }

    /// Does any of them stop the fit?
    pub fn has_errors(&self) -> bool {
        self.more_errors > 0 || self.kept.iter().any(Diagnostic::is_error)
    }

    /// The errors kept.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.kept.iter().filter(|d| d.is_error())
    }

    /// The warnings kept.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.kept.iter().filter(|d| !d.is_error())
    }

    /// Splits into (errors, warnings); warnings beyond the kept ones are
    /// summed up in a last warning.
    pub fn split(self) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
        let (errors, mut warnings): (Vec<_>, Vec<_>) =
            self.kept.into_iter().partition(Diagnostic::is_error);
        if self.more_warnings > 0 {
            warnings.push(Diagnostic::warning_nowhere(format!(
                "and {} more warning{} (not shown)",
                self.more_warnings,
                if self.more_warnings == 1 { "" } else { "s" }
            )));
        }
        (errors, warnings)
    }

    /// The error for an input with errors: those kept, the number not kept,
    /// and the warnings.
    pub fn into_error(self) -> SpecError {
        let more_errors = self.more_errors;
        let (errors, warnings) = self.split();
        SpecError {
            errors,
            warnings,
            more_errors,
        }
    }
}

/// The error returned when an input cannot be fitted: the errors found
/// (the first [`MAX_SHOWN`] different ones).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SpecError {
    /// The errors (at least one, at most [`MAX_SHOWN`]).
    pub errors: Vec<Diagnostic>,
    /// Warnings found on the way.
    pub warnings: Vec<Diagnostic>,
    /// Errors found beyond those in `errors` (other messages), not kept.
    pub more_errors: usize,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        if self.more_errors > 0 {
            write!(
                f,
                "\nand {} more error{} (not shown)",
                self.more_errors,
                if self.more_errors == 1 { "" } else { "s" }
            )?;
        }
        Ok(())
    }
}

impl SpecError {
    /// One error.
    pub fn single(d: Diagnostic) -> Self {
        SpecError {
            errors: vec![d],
            warnings: Vec::new(),
            more_errors: 0,
        }
    }

    /// How many errors were found in all: those shown, their repeats and
    /// those not kept.
    pub fn count(&self) -> usize {
        self.errors.iter().map(|e| e.count).sum::<usize>() + self.more_errors
    }
}

/// A hint for a character pasted from a word processor or PDF where the
/// input language has an ASCII one (an en dash for `-`, curly quotes).
pub fn lookalike_help(text: &str) -> Option<&'static str> {
    Some(match text {
        "\u{2013}" => "an en dash '–'; use '-'",
        "\u{2014}" => "an em dash '—'; use '-'",
        "\u{2212}" => "a minus sign '−'; use '-'",
        "\u{2010}" | "\u{2011}" => "a Unicode hyphen; use '-'",
        "\u{201c}" | "\u{201d}" => "a curly quote; use '\"'",
        "\u{2018}" | "\u{2019}" => "a curly quote; use '\"' around file names",
        _ => return None,
    })
}

/// Levenshtein distance, for "did you mean" hints.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest candidate to `word` (case-insensitive), if it is close enough
/// to be a likely typo and no other candidate is as close (`u5` among
/// `u1`-`u4` gets no hint). Words and candidates longer than [`MAX_WORD`]
/// get no hint (the distance is quadratic in their length).
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    if word.len() > MAX_WORD {
        return None;
    }
    let w = word.to_ascii_uppercase();
    let mut best: Option<(usize, &str)> = None;
    let mut tied = false;
    for c in candidates {
        let allowed = 2.max(c.len() / 4);
        // the distance is at least the difference in length
        if c.len() > MAX_WORD || c.len().abs_diff(w.len()) > allowed {
            continue;
        }
        let d = edit_distance(&w, &c.to_ascii_uppercase());
        if d > allowed || d >= c.len() {
            continue;
        }
        match best {
            Some((bd, bc)) if d == bd => tied |= !bc.eq_ignore_ascii_case(c),
            Some((bd, _)) if d > bd => {}
            _ => {
                best = Some((d, c));
                tied = false;
            }
        }
    }
    if tied { None } else { best.map(|(_, c)| c) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_and_unambiguous() {
        assert_eq!(suggest("STARST", ["STARTS", "STSEED"]), Some("STARTS"));
        assert_eq!(suggest("outcme", ["u1", "outcome"]), Some("outcome"));
        assert_eq!(suggest("u5", ["u1", "u2", "u3"]), None);
        assert_eq!(
            suggest("TECH1", ["TECH1", "TECH1", "TECH11"]),
            Some("TECH1")
        );
        assert_eq!(suggest("zzz", ["STARTS"]), None);
        let long = "x".repeat(100_000);
        assert_eq!(suggest(&long, [long.as_str()]), None);
    }

    fn src_with_line(line: &str) -> Source {
        Source::new("t.inp", format!("first\n{line}\nlast\n"))
    }

    #[test]
    fn long_lines_are_cut_around_the_caret() {
        let line = format!("{}BAD{}", "a".repeat(5000), "b".repeat(5000));
        let src = src_with_line(&line);
        let d = Diagnostic::error(&src, Span::new(6 + 5000, 6 + 5003), "bad");
        let loc = d.location.as_ref().expect("located");
        assert_eq!((loc.line, loc.column), (2, 5001));
        let shown: Vec<char> = loc.line_text.chars().collect();
        assert!(shown.len() <= MAX_LINE + 2, "{}", loc.line_text);
        assert_eq!(shown[0], '…');
        assert_eq!(shown.last(), Some(&'…'));
        let at: String = shown[loc.text_column - 1..][..loc.width].iter().collect();
        assert_eq!(at, "BAD");
        // the caret line puts the caret under BAD
        let text = d.to_string();
        let lines: Vec<&str> = text.lines().collect();
        let bar = lines[2].find('|').expect("bar") + 2;
        let caret = lines[3].find('^').expect("caret");
        let under: String = lines[2][bar..]
            .chars()
            .skip(lines[3][bar..caret].chars().count())
            .take(3)
            .collect();
        assert_eq!(under, "BAD", "{text}");
        // a short line is shown whole
        let src = src_with_line("  STARTS = x;");
        let d = Diagnostic::error(&src, Span::new(6 + 11, 6 + 12), "bad");
        let loc = d.location.as_ref().expect("located");
        assert_eq!(
            (loc.line_text.as_str(), loc.text_column),
            ("  STARTS = x;", 12)
        );
    }

    #[test]
    fn long_words_in_messages_are_cut() {
        let long = "y".repeat(1_000_000);
        let d = Diagnostic::error_nowhere(format!("unknown variable '{long}'"))
            .with_help(format!("did you mean {long}?"));
        assert!(d.message.chars().count() < 120, "{}", d.message);
        assert!(d.message.ends_with("…'"), "{}", d.message);
        assert!(d.help.as_deref().is_some_and(|h| h.chars().count() < 120));
        let plain = "STARTS needs two whole numbers";
        assert_eq!(Diagnostic::error_nowhere(plain).message, plain);
    }

    #[test]
    fn repeats_are_counted_and_errors_capped() {
        let src = src_with_line("x");
        let mut d = Diagnostics::default();
        for _ in 0..1000 {
            d.error_at(&src, Span::new(6, 7), "the same".into(), None);
        }
        for i in 0..100 {
            d.push(Diagnostic::error_nowhere(format!("error {i}")));
            d.push(Diagnostic::warning_nowhere(format!("warning {i}")));
        }
        assert!(d.has_errors());
        assert_eq!(d.errors().count(), MAX_SHOWN);
        assert_eq!(d.warnings().count(), MAX_SHOWN);
        let err = d.into_error();
        assert_eq!(err.errors[0].count, 1000);
        assert_eq!(err.more_errors, 100 - (MAX_SHOWN - 1));
        assert_eq!(err.count(), 1100);
        assert_eq!(err.warnings.len(), MAX_SHOWN + 1);
        let text = err.to_string();
        assert!(text.contains("the same error 999 more times"), "{text}");
        assert!(text.ends_with("and 81 more errors (not shown)"), "{text}");
        assert!(err.warnings[MAX_SHOWN].message.contains("80 more warnings"));
    }
}
