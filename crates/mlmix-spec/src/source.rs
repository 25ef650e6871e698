//! Source text with byte spans, and the mapping from spans to lines and
//! columns; and the check that a file to be read is a regular file.
//!
//! Text is normalised once, when a [`Source`] is made: a UTF-8 byte-order
//! mark is dropped and CRLF and CR-only line ends become `\n`, so every
//! reader (input language, free-format and CSV data) sees the same lines
//! and reports the same line numbers whatever editor wrote the file.

use std::path::{Path, PathBuf};

/// A half-open byte range `[start, end)` into a [`Source`]'s text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// `text` without a leading UTF-8 byte-order mark and with CRLF and
/// CR-only line ends replaced by `\n` (copied only when there is one).
fn normalise(mut text: String) -> String {
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    if !text.contains('\r') {
        return text;
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// Why a path is not read as a text file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRegular {
    /// Nothing is there, or its metadata cannot be read: the reason.
    Unreadable(String),
    /// Something other than a regular file is there: "a folder", "a named
    /// pipe (FIFO)", "a socket", "a device" or "a special file".
    Kind(&'static str),
}

impl NotRegular {
    /// The message for the file described by `what` (e.g. "data file
    /// 'x.dat' (/home/x.dat)").
    pub fn message(&self, what: &str) -> String {
        match self {
            NotRegular::Unreadable(why) => format!("cannot read {what}: {why}"),
            NotRegular::Kind("a folder") => format!("{what} is a folder, not a file"),
            NotRegular::Kind(kind) => format!("{what} is {kind}, not a regular file"),
        }
    }
}

/// Checks, without opening it, that `path` (after symbolic links) is a
/// regular file: opening a FIFO would wait for a writer forever, and a
/// device such as `/dev/zero` never ends.
pub fn check_regular_file(path: &Path) -> Result<(), NotRegular> {
    let meta = std::fs::metadata(path).map_err(|e| {
        NotRegular::Unreadable(match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            _ => e.to_string(),
        })
    })?;
    if meta.is_file() {
        Ok(())
    } else {
        Err(NotRegular::Kind(file_kind(&meta.file_type())))
    }
}

/// What a file that is not a regular file is, in words ("a folder", ...).
pub fn file_kind(ft: &std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        return "a folder";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if ft.is_socket() {
            return "a socket";
        }
        if ft.is_char_device() || ft.is_block_device() {
            return "a device";
        }
    }
    "a special file"
}

/// A text file held in memory: the input file or a data file.
#[derive(Debug, Clone)]
pub struct Source {
    path: PathBuf,
    text: String,
    line_starts: Vec<usize>,
}

impl Source {
    /// Wraps `text` read from `path`, without its byte-order mark and with
    /// every line ending in `\n`.
    pub fn new(path: impl Into<PathBuf>, text: String) -> Self {
        let text = normalise(text);
        let mut line_starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i + 1);
            }
        }
        Source {
            path: path.into(),
            text,
            line_starts,
        }
    }

    /// The path the text came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text of a span.
    pub fn slice(&self, span: Span) -> &str {
        &self.text[span.start.min(self.text.len())..span.end.min(self.text.len())]
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let col = self.text[start..offset].chars().count() + 1;
        (line + 1, col)
    }

    /// The text of a 1-based line, without its line break.
    pub fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_order_mark_and_line_ends_are_normalised() {
        for text in [
            "a\nbb\n\nc",
            "a\r\nbb\r\n\r\nc",
            "a\rbb\r\rc",
            "\u{feff}a\r\nbb\r\rc",
        ] {
            let src = Source::new("t", text.to_string());
            assert_eq!(src.text(), "a\nbb\n\nc", "{text:?}");
            assert_eq!(src.line_col(3), (2, 2), "{text:?}");
            assert_eq!(src.line_text(4), "c", "{text:?}");
        }
        // a byte-order mark elsewhere is text
        assert_eq!(Source::new("t", "a\u{feff}".into()).text(), "a\u{feff}");
    }

    #[test]
    fn only_regular_files_pass() {
        let dir = std::env::temp_dir();
        assert_eq!(check_regular_file(&dir), Err(NotRegular::Kind("a folder")));
        let missing = dir.join("mlmix-no-such-file-here");
        assert_eq!(
            check_regular_file(&missing),
            Err(NotRegular::Unreadable("no such file".into()))
        );
        assert_eq!(
            NotRegular::Kind("a folder").message("data file 'x'"),
            "data file 'x' is a folder, not a file"
        );
        #[cfg(unix)]
        {
            let dev = Path::new("/dev/null");
            assert_eq!(check_regular_file(dev), Err(NotRegular::Kind("a device")));
            assert_eq!(
                NotRegular::Kind("a device").message("input file 'y'"),
                "input file 'y' is a device, not a regular file"
            );
        }
        let file = dir.join(format!("mlmix-regular-{}", std::process::id()));
        std::fs::write(&file, "x").expect("temp file");
        assert_eq!(check_regular_file(&file), Ok(()));
        let _ = std::fs::remove_file(&file);
    }
}
