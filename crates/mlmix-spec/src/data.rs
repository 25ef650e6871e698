//! Reading data files.
//!
//! Two layouts:
//! - Mplus free format (NAMES given): numbers separated by blanks and/or
//!   commas, one row per line, exactly as many values per line as NAMES has
//!   names. Missing values are the codes and symbols declared in MISSING.
//! - CSV with a header row (NAMES omitted, an mlmix extension): the first
//!   line names the columns; fields may be quoted; an empty field or `NA` is
//!   missing, as are the MISSING codes.
//!
//! Only the columns the analysis uses (and IDVARIABLE) are converted to
//! numbers; the others are counted but not read.

use std::path::{Path, PathBuf};

use crate::diag::Diagnostic;
use crate::model::MissingSpec;
use crate::source::{Source, Span, check_regular_file};

/// The columns the analysis needs, read from the data file.
#[derive(Debug, Clone, PartialEq)]
pub struct RawData {
    /// The data file.
    pub file: PathBuf,
    /// All column names in the file.
    pub names: Vec<String>,
    /// The requested columns, in request order, each with one value per row
    /// (NaN for missing).
    pub columns: Vec<Vec<f64>>,
    /// The raw text of the id column, if one was requested.
    pub ids: Option<Vec<String>>,
    /// 1-based line of each row in the file.
    pub lines: Vec<usize>,
}

impl RawData {
    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.lines.len()
    }
}

/// Reads the whole data file as text, naming the file in the error. Only a
/// regular file is read (checked before opening it: a FIFO would block and
/// `/dev/zero` would fill the memory).
pub fn read_text(path: &Path, shown_as: &str) -> Result<Source, Diagnostic> {
    let what = format!("data file '{}' ({})", shown_as, path.display());
    check_regular_file(path).map_err(|e| Diagnostic::error_nowhere(e.message(&what)))?;
    let bytes = std::fs::read(path)
        .map_err(|e| Diagnostic::error_nowhere(format!("cannot read {what}: {e}")))?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Ok(Source::new(shown_as, text))
}

/// Column names from the first line of a CSV file.
pub fn csv_header(src: &Source) -> Result<Vec<String>, Diagnostic> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(src.text().as_bytes());
    let mut record = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut record) {
            Ok(false) => {
                return Err(Diagnostic::error_nowhere(format!(
                    "data file '{}' is empty",
                    src.path().display()
                )));
            }
            Ok(true) => {
                if record.iter().all(str::is_empty) {
                    continue;
                }
                let names: Vec<String> = record.iter().map(|s| s.trim().to_string()).collect();
                let line = record.position().map_or(1, |p| p.line() as usize);
                for (i, n) in names.iter().enumerate() {
                    if n.is_empty() {
                        let span = line_span(src, line);
                        return Err(Diagnostic::error(
                            src,
                            span,
                            format!("column {} of the header row has no name", i + 1),
                        ));
                    }
                }
                return Ok(names);
            }
            Err(e) => {
                return Err(Diagnostic::error_nowhere(format!(
                    "cannot read the header of '{}': {e}",
                    src.path().display()
                )));
            }
        }
    }
}

fn line_span(src: &Source, line: usize) -> Span {
    let text = src.text();
    let mut start = 0;
    for _ in 1..line {
        match text[start..].find('\n') {
            Some(p) => start += p + 1,
            None => break,
        }
    }
    let end = text[start..].find('\n').map_or(text.len(), |p| start + p);
    Span::new(start, end)
}

/// What to read.
pub struct ReadRequest<'a> {
    /// Column names (from NAMES, or the CSV header).
    pub names: &'a [String],
    /// Whether the file starts with a header row (CSV extension).
    pub header: bool,
    /// Column indices to convert to numbers, in the order wanted.
    pub wanted: &'a [usize],
    /// Column index of the id variable.
    pub id: Option<usize>,
    /// Missing-value codes.
    pub missing: &'a MissingSpec,
}

/// Reads the requested columns. Errors name the data file, line and column.
pub fn read(src: &Source, req: &ReadRequest<'_>) -> Result<RawData, Diagnostic> {
    if req.header {
        read_csv(src, req)
    } else {
        read_free(src, req)
    }
}

fn parse_value(
    src: &Source,
    span: impl FnOnce() -> Span,
    raw: &str,
    name: &str,
    req: &ReadRequest<'_>,
    csv_mode: bool,
) -> Result<f64, Diagnostic> {
    // most data are small whole numbers: read them without the general
    // float parser (exact: at most 15 digits)
    if let Some(v) = small_integer(raw.as_bytes())
        && !req.missing.is_missing_code(name, v)
        && req.missing.symbol.is_none_or(|sym| !raw.starts_with(sym))
    {
        return Ok(v);
    }
    let s = raw.trim().trim_matches('"').trim();
    if let Some(sym) = req.missing.symbol
        && s.len() == sym.len_utf8()
        && s.starts_with(sym)
    {
        return Ok(f64::NAN);
    }
    if csv_mode && (s.is_empty() || s == "NA") {
        return Ok(f64::NAN);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => {
            if req.missing.is_missing_code(name, v) {
                Ok(f64::NAN)
            } else {
                Ok(v)
            }
        }
        _ => {
            let mut d = Diagnostic::error(
                src,
                span(),
                format!("value '{s}' of variable {name} is not a number"),
            );
            if s == "." || s == "*" {
                d = d.with_help(format!("declare the missing-value symbol: MISSING = {s};"));
            } else if s.is_empty() {
                d = d.with_help("free-format data have no empty fields: use a missing-value code and declare it in MISSING");
            }
            Err(d)
        }
    }
}

/// A field of 1 to 15 ASCII digits with an optional leading minus sign,
/// as a number; `None` for anything else (left to the general parser).
#[inline]
fn small_integer(b: &[u8]) -> Option<f64> {
    let (neg, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(if neg { -(v as f64) } else { v as f64 })
}

/// Does a line hold names rather than values (every field starts with a
/// letter or `_`)?
fn looks_like_header(line: &str) -> bool {
    let mut fields = line
        .split([',', ' ', '\t'])
        .map(|f| f.trim_matches('"'))
        .filter(|f| !f.is_empty())
        .peekable();
    fields.peek().is_some()
        && fields.all(|f| f.starts_with(|c: char| c.is_alphabetic() || c == '_'))
}

/// The span of field `col` (0-based) of the CSV record starting at byte
/// `rec_start`: fields are separated by commas outside quotes.
fn csv_field_span(text: &str, rec_start: usize, col: usize) -> Span {
    let b = text.as_bytes();
    let mut i = rec_start.min(b.len());
    let mut field = 0;
    let mut start = i;
    let mut in_quote = false;
    while i < b.len() {
        match b[i] {
            b'"' => in_quote = !in_quote,
            b',' if !in_quote => {
                if field == col {
                    break;
                }
                field += 1;
                start = i + 1;
            }
            b'\n' | b'\r' if !in_quote => break,
            _ => {}
        }
        i += 1;
    }
    if field != col {
        // not found: the whole record
        return Span::new(rec_start, i);
    }
    // trim blanks around the field
    let (mut s, mut e) = (start, i);
    while s < e && (b[s] == b' ' || b[s] == b'\t') {
        s += 1;
    }
    while e > s && (b[e - 1] == b' ' || b[e - 1] == b'\t') {
        e -= 1;
    }
    Span::new(s, e)
}

/// The span of field `col` (0-based) on 1-based `line` of a data file, in
/// free format (`csv == false`) or CSV; the whole line if there is no such
/// field.
pub(crate) fn field_span(src: &Source, line: usize, col: usize, csv: bool) -> Span {
    let span = line_span(src, line);
    if csv {
        return csv_field_span(src.text(), span.start, col);
    }
    let text = &src.text()[span.start..span.end];
    let mut fields = Vec::new();
    split_free(text.strip_suffix('\r').unwrap_or(text), &mut fields);
    match fields.get(col) {
        Some(&(a, b)) => Span::new(span.start + a, span.start + b),
        None => span,
    }
}

const HEADER_HELP: &str = "the first line looks like a header row: delete it, or omit NAMES to read the names from it (the file must then be comma-separated)";

fn read_free(src: &Source, req: &ReadRequest<'_>) -> Result<RawData, Diagnostic> {
    let ncol = req.names.len();
    let mut columns: Vec<Vec<f64>> = vec![Vec::new(); req.wanted.len()];
    let mut ids = req.id.map(|_| Vec::new());
    let mut lines = Vec::new();
    // which wanted slot each column goes to
    let mut slot = vec![usize::MAX; ncol];
    for (k, &c) in req.wanted.iter().enumerate() {
        slot[c] = k;
    }
    let text = src.text();
    let mut offset = 0;
    let mut fields: Vec<(usize, usize)> = Vec::with_capacity(ncol);
    for (lineno, line) in text.split('\n').enumerate() {
        let line_start = offset;
        offset += line.len() + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        fields.clear();
        split_free(line, &mut fields);
        if fields.len() != ncol {
            let span = Span::new(line_start, line_start + line.len());
            let first_word = line.trim().split([',', ' ', '\t']).next().unwrap_or("");
            let mut d = Diagnostic::error(
                src,
                span,
                format!(
                    "row has {} values but NAMES has {} variables",
                    fields.len(),
                    ncol
                ),
            );
            if lines.is_empty() && first_word.parse::<f64>().is_err() {
                d = d.with_help(HEADER_HELP);
            }
            return Err(d);
        }
        let first_row = lines.is_empty();
        for (c, &(a, b)) in fields.iter().enumerate() {
            let k = slot[c];
            let is_id = req.id == Some(c);
            if k == usize::MAX && !is_id {
                continue;
            }
            let raw = &line[a..b];
            if is_id && let Some(ids) = ids.as_mut() {
                ids.push(raw.trim().trim_matches('"').to_string());
            }
            if k != usize::MAX {
                let span = Span::new(line_start + a, line_start + b);
                let v = parse_value(src, || span, raw, &req.names[c], req, false).map_err(|d| {
                    // a header row with as many names as NAMES
                    if first_row && looks_like_header(line) {
                        d.with_help(HEADER_HELP)
                    } else {
                        d
                    }
                })?;
                columns[k].push(v);
            }
        }
        lines.push(lineno + 1);
    }
    if lines.is_empty() {
        return Err(Diagnostic::error_nowhere(format!(
            "data file '{}' has no data rows",
            src.path().display()
        )));
    }
    Ok(RawData {
        file: src.path().to_path_buf(),
        names: req.names.to_vec(),
        columns,
        ids,
        lines,
    })
}

/// Splits a free-format line at blanks and commas. A comma with nothing but
/// blanks since the previous comma yields an empty field.
fn split_free(line: &str, out: &mut Vec<(usize, usize)>) {
    let b = line.as_bytes();
    let mut i = 0;
    let mut last_was_comma = false;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        if b[i] == b',' {
            if last_was_comma {
                out.push((i, i));
            }
            last_was_comma = true;
            i += 1;
            continue;
        }
        let s = i;
        while i < b.len() && !matches!(b[i], b' ' | b'\t' | b',') {
            i += 1;
        }
        out.push((s, i));
        last_was_comma = false;
    }
}

fn read_csv(src: &Source, req: &ReadRequest<'_>) -> Result<RawData, Diagnostic> {
    let ncol = req.names.len();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(src.text().as_bytes());
    let mut columns: Vec<Vec<f64>> = vec![Vec::new(); req.wanted.len()];
    let mut ids = req.id.map(|_| Vec::new());
    let mut lines = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut seen_header = false;
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                return Err(Diagnostic::error_nowhere(format!(
                    "cannot read '{}': {e}",
                    src.path().display()
                )));
            }
        }
        let pos = record.position().cloned();
        let line = pos.as_ref().map_or(0, |p| p.line() as usize);
        let rec_start = pos.as_ref().map_or(0, |p| p.byte() as usize);
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        if !seen_header {
            seen_header = true;
            continue;
        }
        if record.len() != ncol {
            let span = line_span(src, line);
            return Err(Diagnostic::error(
                src,
                span,
                format!(
                    "row has {} values but the header names {} columns",
                    record.len(),
                    ncol
                ),
            ));
        }
        for (k, &c) in req.wanted.iter().enumerate() {
            let raw = String::from_utf8_lossy(&record[c]);
            let span = || csv_field_span(src.text(), rec_start, c);
            let v = parse_value(src, span, &raw, &req.names[c], req, true)?;
            columns[k].push(v);
        }
        if let (Some(ids), Some(c)) = (ids.as_mut(), req.id) {
            ids.push(String::from_utf8_lossy(&record[c]).trim().to_string());
        }
        lines.push(line);
    }
    if lines.is_empty() {
        return Err(Diagnostic::error_nowhere(format!(
            "data file '{}' has no data rows",
            src.path().display()
        )));
    }
    Ok(RawData {
        file: src.path().to_path_buf(),
        names: req.names.to_vec(),
        columns,
        ids,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole-number fast path agrees with the general parser and
    /// leaves everything else to it.
    #[test]
    fn small_integers_parse_as_the_general_parser_does() {
        for s in ["0", "1", "-1", "007", "-0", "123456789012345", "42"] {
            let fast = small_integer(s.as_bytes()).expect(s);
            let slow: f64 = s.parse().expect(s);
            assert_eq!(fast.to_bits(), slow.to_bits(), "{s}");
        }
        for s in [
            "",
            "-",
            "1.5",
            "1e3",
            "+1",
            " 1",
            "1 ",
            "NA",
            ".",
            "1234567890123456",
        ] {
            assert_eq!(small_integer(s.as_bytes()), None, "{s:?}");
        }
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn free_format_with_missing_codes() {
        let src = Source::new("d.dat", "1 2 3\n4,-99 6\n\n7 . 9\n".to_string());
        let nm = names(&["a", "b", "c"]);
        let missing = MissingSpec {
            symbol: Some('.'),
            all: vec![-99.0],
            by_name: vec![],
        };
        let req = ReadRequest {
            names: &nm,
            header: false,
            wanted: &[1, 0],
            id: Some(2),
            missing: &missing,
        };
        let d = read(&src, &req).expect("reads");
        assert_eq!(d.columns[1], vec![1.0, 4.0, 7.0]);
        assert!(d.columns[0][1].is_nan() && d.columns[0][2].is_nan());
        assert_eq!(d.lines, vec![1, 2, 4]);
        assert_eq!(d.ids, Some(names(&["3", "6", "9"])));
    }

    #[test]
    fn wrong_column_count_names_line() {
        let src = Source::new("d.dat", "1 2 3\n4 5\n".to_string());
        let nm = names(&["a", "b", "c"]);
        let missing = MissingSpec::default();
        let req = ReadRequest {
            names: &nm,
            header: false,
            wanted: &[0],
            id: None,
            missing: &missing,
        };
        let e = read(&src, &req).expect_err("fails");
        let loc = e.location.expect("located");
        assert_eq!(loc.line, 2);
        assert!(e.message.contains("2 values"), "{}", e.message);
    }

    #[test]
    fn csv_with_header_and_quotes() {
        let src = Source::new(
            "d.csv",
            "\"x\",\"y\",\"id\"\n1.5,2,\"a\"\n,NA,\"b\"\n".to_string(),
        );
        let nm = csv_header(&src).expect("header");
        assert_eq!(nm, names(&["x", "y", "id"]));
        let missing = MissingSpec::default();
        let req = ReadRequest {
            names: &nm,
            header: true,
            wanted: &[0, 1],
            id: Some(2),
            missing: &missing,
        };
        let d = read(&src, &req).expect("reads");
        assert_eq!(d.columns[0][0], 1.5);
        assert!(d.columns[0][1].is_nan() && d.columns[1][1].is_nan());
        assert_eq!(d.lines, vec![2, 3]);
    }

    #[test]
    fn non_numeric_value_is_located() {
        let src = Source::new("d.dat", "1 2\n3 x4\n".to_string());
        let nm = names(&["a", "b"]);
        let missing = MissingSpec::default();
        let req = ReadRequest {
            names: &nm,
            header: false,
            wanted: &[0, 1],
            id: None,
            missing: &missing,
        };
        let e = read(&src, &req).expect_err("fails");
        let loc = e.location.expect("located");
        assert_eq!((loc.line, loc.column), (2, 3));
    }
}
