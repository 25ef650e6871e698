//! Diagnostics: errors and warnings that name the file, line and column, and
//! render with the source line and a caret.

use std::fmt;

use crate::source::{Source, Span};

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
    /// The text of the line, for the caret display.
    pub line_text: String,
    /// Width of the caret underline, in characters.
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
}

impl Diagnostic {
    /// An error at a span of a source.
    pub fn error(src: &Source, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            location: Some(locate(src, span)),
            help: None,
        }
    }

    /// A warning at a span of a source.
    pub fn warning(src: &Source, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            message: message.into(),
            location: Some(locate(src, span)),
            help: None,
        }
    }

    /// An error without a place in a file.
    pub fn error_nowhere(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            location: None,
            help: None,
        }
    }

    /// A warning without a place in a file.
    pub fn warning_nowhere(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            message: message.into(),
            location: None,
            help: None,
        }
    }

    /// Adds a hint on what to do.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Is this an error (rather than a warning)?
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

fn locate(src: &Source, span: Span) -> Location {
    let (line, column) = src.line_col(span.start);
    let line_text = src.line_text(line).to_string();
    let (end_line, end_col) = src.line_col(span.end.max(span.start));
    let width = if end_line == line && end_col > column {
        end_col - column
    } else {
        1
    };
    Location {
        file: src.path().display().to_string(),
        line,
        column,
        line_text,
        width,
    }
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
                    " ".repeat(loc.column.saturating_sub(1)),
                    "^".repeat(loc.width.max(1))
                )?;
            }
            None => write!(f, "{kind}: {}", self.message)?,
        }
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found in an input: the parser and validator report all they
/// find, not only the first.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Adds one.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    /// Does any of them stop the fit?
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }

    /// The warnings only.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| !d.is_error())
    }

    /// Splits into (errors, warnings).
    pub fn split(self) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
        self.0.into_iter().partition(Diagnostic::is_error)
    }
}

/// The error returned when an input cannot be fitted: all the errors found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SpecError {
    /// The errors (at least one).
    pub errors: Vec<Diagnostic>,
    /// Warnings found on the way.
    pub warnings: Vec<Diagnostic>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
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
        }
    }
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
/// `u1`-`u4` gets no hint).
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let w = word.to_ascii_uppercase();
    let mut best: Option<(usize, &str)> = None;
    let mut tied = false;
    for c in candidates {
        let d = edit_distance(&w, &c.to_ascii_uppercase());
        if d > 2.max(c.len() / 4) || d >= c.len() {
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
    }
}
