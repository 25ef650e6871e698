//! The unchecked syntax of an input file: commands (sections), statements and
//! tokens, each with its span. Nothing here knows what a statement means;
//! [`crate::build`] turns this into the checked [`crate::model::Model`].
//!
//! The input language is Mplus's: commands such as `VARIABLE:` start a
//! section, statements end with `;`, `!` starts a comment that runs to the end
//! of the line, keywords are case-insensitive, and in `MODEL:` the markers
//! `%OVERALL%` and `%c#1%` open blocks.

use crate::diag::Diagnostics;
use crate::source::{Source, Span};

/// The commands of the input language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `TITLE:`
    Title,
    /// `DATA:`
    Data,
    /// `VARIABLE:`
    Variable,
    /// `DEFINE:`
    Define,
    /// `ANALYSIS:`
    Analysis,
    /// `MODEL:` (also `MODEL c1:` and `MODEL CONSTRAINT:` etc.)
    Model,
    /// `OUTPUT:`
    Output,
    /// `SAVEDATA:`
    Savedata,
    /// `PLOT:`
    Plot,
    /// `MONTECARLO:`
    Montecarlo,
}

impl Command {
    /// The command's name as written in Mplus.
    pub fn name(self) -> &'static str {
        match self {
            Command::Title => "TITLE",
            Command::Data => "DATA",
            Command::Variable => "VARIABLE",
            Command::Define => "DEFINE",
            Command::Analysis => "ANALYSIS",
            Command::Model => "MODEL",
            Command::Output => "OUTPUT",
            Command::Savedata => "SAVEDATA",
            Command::Plot => "PLOT",
            Command::Montecarlo => "MONTECARLO",
        }
    }

    const ALL: [Command; 10] = [
        Command::Title,
        Command::Data,
        Command::Variable,
        Command::Define,
        Command::Analysis,
        Command::Model,
        Command::Output,
        Command::Savedata,
        Command::Plot,
        Command::Montecarlo,
    ];

    /// Recognises a command word: the full name or a prefix of at least four
    /// letters (`VARI`, `ANAL`), case-insensitive.
    pub fn from_word(word: &str) -> Option<Command> {
        let w = word.to_ascii_uppercase();
        Command::ALL.into_iter().find(|c| {
            let n = c.name();
            w == n || (w.len() >= 4 && n.starts_with(&w))
        })
    }
}

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokKind {
    /// A name or keyword; may contain `$`, `#`, `.` and `_` (`u1$1`, `c#1`).
    Word,
    /// A number, possibly signed.
    Number,
    /// A quoted string (quotes removed in `text`).
    Str,
    /// One punctuation character.
    Sym(char),
}

/// One token of a statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// What kind.
    pub kind: TokKind,
    /// Its text as written (without quotes for strings).
    pub text: String,
    /// Where.
    pub span: Span,
}

impl Token {
    /// Is this the word `w` (case-insensitive)?
    pub fn is_word(&self, w: &str) -> bool {
        self.kind == TokKind::Word && self.text.eq_ignore_ascii_case(w)
    }

    /// Is this the symbol `c`?
    pub fn is_sym(&self, c: char) -> bool {
        self.kind == TokKind::Sym(c)
    }

    /// Is this `-`, or a character pasted in its place from a word
    /// processor or PDF (an en or em dash, a minus sign, a Unicode hyphen)?
    pub fn is_dash(&self) -> bool {
        matches!(
            self.kind,
            TokKind::Sym('-' | '\u{2013}' | '\u{2014}' | '\u{2212}' | '\u{2010}' | '\u{2011}')
        )
    }

    /// The number, for a number token.
    pub fn number(&self) -> Option<f64> {
        if self.kind == TokKind::Number {
            self.text.parse().ok()
        } else {
            None
        }
    }
}

/// A statement: the tokens up to a `;`, or a `%...%` block marker.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The whole statement (without the `;`).
    pub span: Span,
    /// Its tokens.
    pub tokens: Vec<Token>,
    /// `Some(text)` for a `%...%` marker, with the text between the `%`s.
    pub marker: Option<String>,
}

/// One command and its statements.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Which command.
    pub command: Command,
    /// The header (`MODEL c1:`), for messages.
    pub header: Span,
    /// Words between the command and its colon (`c1` in `MODEL c1:`,
    /// `CONSTRAINT` in `MODEL CONSTRAINT:`).
    pub qualifier: Option<(String, Span)>,
    /// The raw body (used for TITLE).
    pub body: Span,
    /// The statements.
    pub statements: Vec<Statement>,
}

/// The input file split into sections.
#[derive(Debug, Clone, PartialEq)]
pub struct Syntax {
    /// The sections in file order.
    pub sections: Vec<Section>,
}

/// Blanks out comments (`!` to the end of the line), keeping byte offsets.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_comment = false;
    let mut in_quote = false;
    for ch in text.chars() {
        if ch == '\n' {
            in_comment = false;
            in_quote = false;
            out.push(ch);
        } else if in_comment {
            // keep byte length: replace by spaces of the same UTF-8 length
            for _ in 0..ch.len_utf8() {
                out.push(' ');
            }
        } else if ch == '"' {
            in_quote = !in_quote;
            out.push(ch);
        } else if ch == '!' && !in_quote {
            in_comment = true;
            out.push(' ');
        } else {
            out.push(ch);
        }
    }
    out
}

fn is_word_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_word_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'#' | b'.' | b'&')
}

/// A recognised command header: the command, the words between it and the
/// colon, and the span of the header including the colon.
type Header = (Command, Option<(String, Span)>, Span);

/// If a command header (`MODEL c1:`) starts at `pos`, returns it.
fn header_at(text: &[u8], pos: usize) -> Option<Header> {
    let mut i = pos;
    let word_end = |mut j: usize| {
        while j < text.len() && (text[j].is_ascii_alphanumeric() || text[j] == b'_') {
            j += 1;
        }
        j
    };
    if i >= text.len() || !text[i].is_ascii_alphabetic() {
        return None;
    }
    let e = word_end(i);
    let word = std::str::from_utf8(&text[i..e]).ok()?;
    let command = Command::from_word(word)?;
    i = e;
    let mut qual_start = None;
    let mut qual_end = 0;
    // up to two more words (letters, digits, '-', '_'), all on this line, then ':'
    for _ in 0..3 {
        while i < text.len() && (text[i] == b' ' || text[i] == b'\t') {
            i += 1;
        }
        if i < text.len() && text[i] == b':' {
            let qualifier = qual_start.map(|s: usize| {
                let q = String::from_utf8_lossy(&text[s..qual_end])
                    .trim()
                    .to_string();
                (q, Span::new(s, qual_end))
            });
            return Some((command, qualifier, Span::new(pos, i + 1)));
        }
        if i < text.len() && (text[i].is_ascii_alphanumeric() || text[i] == b'_') {
            let s = i;
            while i < text.len()
                && (text[i].is_ascii_alphanumeric() || matches!(text[i], b'_' | b'-' | b'#'))
            {
                i += 1;
            }
            if qual_start.is_none() {
                qual_start = Some(s);
            }
            qual_end = i;
        } else {
            return None;
        }
    }
    None
}

/// Does an option statement (`KEY =`) start at `pos`?
fn option_at(text: &[u8], pos: usize) -> bool {
    if pos >= text.len() || !is_word_start(text[pos]) {
        return false;
    }
    let mut i = pos;
    while i < text.len() && (text[i].is_ascii_alphanumeric() || text[i] == b'_') {
        i += 1;
    }
    while i < text.len() && (text[i] == b' ' || text[i] == b'\t') {
        i += 1;
    }
    i < text.len() && text[i] == b'='
}

/// Splits an input file into sections and statements. Problems (text outside
/// any command, a statement without its `;`) are added to `diags`.
pub fn parse(src: &Source, diags: &mut Diagnostics) -> Syntax {
    let clean = strip_comments(src.text());
    let text = clean.as_bytes();
    let mut sections: Vec<Section> = Vec::new();
    let mut pos = 0;
    let mut at_line_start = true;
    let mut warned_orphan = false;

    while pos < text.len() {
        // skip whitespace, tracking line starts
        while pos < text.len() && text[pos].is_ascii_whitespace() {
            if text[pos] == b'\n' {
                at_line_start = true;
            }
            pos += 1;
        }
        if pos >= text.len() {
            break;
        }
        let in_title = matches!(sections.last(), Some(s) if s.command == Command::Title);
        let may_be_header = !in_title || at_line_start;
        if may_be_header && let Some((command, qualifier, span)) = header_at(text, pos) {
            if let Some(last) = sections.last_mut() {
                last.body.end = span.start;
            }
            sections.push(Section {
                command,
                header: span,
                qualifier,
                body: Span::new(span.end, text.len()),
                statements: Vec::new(),
            });
            pos = span.end;
            at_line_start = false;
            continue;
        }
        if in_title {
            // title text: skip to the next line
            while pos < text.len() && text[pos] != b'\n' {
                pos += 1;
            }
            continue;
        }
        let Some(section) = sections.last_mut() else {
            if !warned_orphan {
                let end = text[pos..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(text.len(), |p| pos + p);
                diags.error_at(
                    src,
                    Span::new(pos, end),
                    "text before the first command (such as TITLE:, DATA: or VARIABLE:)".into(),
                    Some("every statement belongs to a command: start the file with TITLE:, DATA: or VARIABLE:".into()),
                );
                warned_orphan = true;
            }
            while pos < text.len() && text[pos] != b';' && text[pos] != b'\n' {
                pos += 1;
            }
            pos += 1;
            at_line_start = true;
            continue;
        };
        // a %...% marker (MODEL blocks)
        if text[pos] == b'%' {
            let start = pos;
            let close = text[pos + 1..]
                .iter()
                .position(|&b| b == b'%' || b == b'\n' || b == b';')
                .map(|p| pos + 1 + p);
            match close {
                Some(c) if text[c] == b'%' => {
                    let inner = String::from_utf8_lossy(&text[start + 1..c])
                        .trim()
                        .to_string();
                    section.statements.push(Statement {
                        span: Span::new(start, c + 1),
                        tokens: Vec::new(),
                        marker: Some(inner),
                    });
                    pos = c + 1;
                }
                _ => {
                    let end = close.unwrap_or(text.len());
                    diags.error_at(
                        src,
                        Span::new(start, end),
                        "unterminated class block marker".into(),
                        Some("class blocks are written %OVERALL% or %c#1%".into()),
                    );
                    pos = end;
                }
            }
            at_line_start = false;
            continue;
        }
        // an ordinary statement: up to ';', but stop before a header at a
        // line start, and in an option command before a line that starts
        // a new option (`KEY =`): the ';' before it is missing
        let options = matches!(
            section.command,
            Command::Data | Command::Variable | Command::Analysis | Command::Savedata
        );
        let start = pos;
        let mut i = pos;
        let mut line_start = false;
        let mut end = None;
        let mut in_quote = false;
        while i < text.len() {
            let b = text[i];
            if b == b'"' {
                in_quote = !in_quote;
            } else if b == b';' && !in_quote {
                end = Some(i);
                break;
            } else if b == b'\n' {
                line_start = true;
                in_quote = false;
            } else if line_start && !b.is_ascii_whitespace() {
                line_start = false;
                if header_at(text, i).is_some() || b == b'%' || (options && option_at(text, i)) {
                    break;
                }
            }
            i += 1;
        }
        let stmt_end = end.unwrap_or(i);
        let mut trimmed_end = stmt_end;
        while trimmed_end > start && text[trimmed_end - 1].is_ascii_whitespace() {
            trimmed_end -= 1;
        }
        let span = Span::new(start, trimmed_end);
        if end.is_none() {
            diags.error_at(
                src,
                span,
                "statement is not ended by ';'".into(),
                Some("end each statement with a semicolon".into()),
            );
        }
        let tokens = tokenize(src, &clean, span, diags);
        section.statements.push(Statement {
            span,
            tokens,
            marker: None,
        });
        pos = if end.is_some() {
            stmt_end + 1
        } else {
            stmt_end
        };
        at_line_start = false;
    }
    Syntax { sections }
}

/// Tokenises one statement.
fn tokenize(src: &Source, clean: &str, span: Span, diags: &mut Diagnostics) -> Vec<Token> {
    let text = clean.as_bytes();
    let mut toks: Vec<Token> = Vec::new();
    let mut i = span.start;
    let mut space_before = true;
    while i < span.end {
        let c = text[i];
        if c.is_ascii_whitespace() {
            i += 1;
            space_before = true;
            continue;
        }
        let start = i;
        let prev_is_value = matches!(
            toks.last(),
            Some(t) if matches!(t.kind, TokKind::Word | TokKind::Number)
                || t.is_sym(')') || t.is_sym(']')
        );
        let sign_ok = !prev_is_value || space_before;
        let starts_number = c.is_ascii_digit()
            || (c == b'.' && i + 1 < span.end && text[i + 1].is_ascii_digit())
            || ((c == b'-' || c == b'+')
                && sign_ok
                && i + 1 < span.end
                && (text[i + 1].is_ascii_digit()
                    || (text[i + 1] == b'.' && i + 2 < span.end && text[i + 2].is_ascii_digit())));
        if starts_number {
            if c == b'-' || c == b'+' {
                i += 1;
            }
            while i < span.end && (text[i].is_ascii_digit() || text[i] == b'.') {
                i += 1;
            }
            if i < span.end
                && (text[i] == b'e' || text[i] == b'E' || text[i] == b'd' || text[i] == b'D')
            {
                let mut j = i + 1;
                if j < span.end && (text[j] == b'-' || text[j] == b'+') {
                    j += 1;
                }
                if j < span.end && text[j].is_ascii_digit() {
                    while j < span.end && text[j].is_ascii_digit() {
                        j += 1;
                    }
                    i = j;
                }
            }
            // a number glued to letters (e.g. "2x") is a word
            if i < span.end && is_word_start(text[i]) {
                while i < span.end && is_word_char(text[i]) {
                    i += 1;
                }
                toks.push(Token {
                    kind: TokKind::Word,
                    text: clean[start..i].to_string(),
                    span: Span::new(start, i),
                });
            } else {
                let raw = clean[start..i].replace(['d', 'D'], "e");
                if raw.parse::<f64>().is_err() {
                    diags.error_at(
                        src,
                        Span::new(start, i),
                        format!("'{}' is not a number", &clean[start..i]),
                        None,
                    );
                }
                toks.push(Token {
                    kind: TokKind::Number,
                    text: raw,
                    span: Span::new(start, i),
                });
            }
        } else if is_word_start(c) {
            while i < span.end && is_word_char(text[i]) {
                i += 1;
            }
            // a trailing '.' is punctuation, not part of the word
            let mut end = i;
            while end > start + 1 && text[end - 1] == b'.' {
                end -= 1;
            }
            i = end;
            toks.push(Token {
                kind: TokKind::Word,
                text: clean[start..end].to_string(),
                span: Span::new(start, end),
            });
        } else if c == b'"' {
            let close = clean[i + 1..span.end].find('"').map(|p| i + 1 + p);
            let end = close.unwrap_or(span.end);
            toks.push(Token {
                kind: TokKind::Str,
                text: clean[i + 1..end].to_string(),
                span: Span::new(start, (end + 1).min(span.end)),
            });
            i = (end + 1).min(span.end);
        } else {
            // one symbol (multi-byte characters become one symbol too)
            let ch = clean[i..].chars().next().unwrap_or('?');
            i += ch.len_utf8();
            toks.push(Token {
                kind: TokKind::Sym(ch),
                text: ch.to_string(),
                span: Span::new(start, i),
            });
        }
        space_before = false;
    }
    toks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> (Syntax, Diagnostics) {
        let src = Source::new("t.inp", text.to_string());
        let mut d = Diagnostics::default();
        let s = parse(&src, &mut d);
        (s, d)
    }

    #[test]
    fn sections_and_statements() {
        let (s, d) = split(
            "TITLE: an LCA; with ; and : inside\n  more title\nDATA: FILE = x.dat; ! comment\nVARIABLE: NAMES = u1-u4;\n  CLASSES = c (2);\nMODEL:\n%OVERALL%\n[c#1];\nMODEL c1: %c1#1% [u1$1];\n",
        );
        assert!(!d.has_errors(), "{d:?}");
        let cmds: Vec<_> = s.sections.iter().map(|x| x.command).collect();
        assert_eq!(
            cmds,
            [
                Command::Title,
                Command::Data,
                Command::Variable,
                Command::Model,
                Command::Model
            ]
        );
        assert_eq!(s.sections[2].statements.len(), 2);
        assert_eq!(
            s.sections[3].statements[0].marker.as_deref(),
            Some("OVERALL")
        );
        assert_eq!(
            s.sections[4].qualifier.as_ref().map(|q| q.0.as_str()),
            Some("c1")
        );
    }

    #[test]
    fn missing_semicolon_is_reported_and_next_section_survives() {
        let (s, d) = split("VARIABLE: NAMES = u1-u4\nANALYSIS: TYPE = MIXTURE;\n");
        assert!(d.has_errors());
        assert_eq!(s.sections.len(), 2);
        assert_eq!(s.sections[1].command, Command::Analysis);
    }

    #[test]
    fn missing_semicolon_before_next_option_is_reported_and_next_option_survives() {
        let (s, d) = split("VARIABLE: NAMES = u1-u4\n  USEVARIABLES = u1-u3;\n");
        assert_eq!(d.errors().count(), 1, "{d:?}");
        let st = &s.sections[0].statements;
        assert_eq!(st.len(), 2);
        assert_eq!(st[1].tokens[0].text, "USEVARIABLES");
    }

    #[test]
    fn numbers_and_ranges() {
        let (s, _) = split("MODEL: y1-y5@-1.5 (1-5); MISSING = ALL(-99 -98);");
        let t: Vec<_> = s.sections[0].statements[0]
            .tokens
            .iter()
            .map(|t| t.text.clone())
            .collect();
        assert_eq!(t, ["y1", "-", "y5", "@", "-1.5", "(", "1", "-", "5", ")"]);
        let t: Vec<_> = s.sections[0].statements[1]
            .tokens
            .iter()
            .map(|t| t.text.clone())
            .collect();
        assert_eq!(t, ["MISSING", "=", "ALL", "(", "-99", "-98", ")"]);
    }
}
