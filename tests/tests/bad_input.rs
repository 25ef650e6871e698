//! Bad inputs: every mistake in an input file or its data is reported as an
//! error naming the file, the line and the reason, never as a panic and
//! never as a fit. The rendered errors (file:line:column, the source line
//! with a caret, the help) are snapshots in `snapshots/`; the scratch folder
//! the files are written to is shown as `[scratch]`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use mlmix::spec::SpecError;
use mlmix_tests::{Scratch, data, fit_text, input, tests_dir};

/// Free-format data for `NAMES = id u1-u4 y x;`: four binary items, a
/// continuous outcome and a covariate.
const LCA_DAT: &str = "\
1 0 0 1 0 2.3 0.5
2 1 1 1 0 3.1 1.2
3 0 1 0 0 1.7 -0.3
4 1 1 1 1 3.8 1.9
5 0 0 0 0 1.2 -1.1
6 1 0 1 1 2.9 0.8
7 1 1 0 1 3.3 0.1
8 0 0 0 1 1.5 -0.6
";

/// `LCA_DAT` with 1-based line `line` replaced by `text`.
fn lca_dat_with(line: usize, text: &str) -> String {
    LCA_DAT
        .lines()
        .enumerate()
        .map(|(i, l)| if i + 1 == line { text } else { l })
        .fold(String::new(), |s, l| s + l + "\n")
}

/// Removes the indentation of an input written inside the test code: the
/// first line if blank, then the indentation of the first line from all.
fn dedent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text.len() - text.trim_start_matches(' ').len();
    text.lines()
        .map(|l| l.get(indent..).unwrap_or(l.trim_start()))
        .fold(String::new(), |s, l| s + l + "\n")
}

/// The text of an error or warning with the scratch folder as `[scratch]`.
fn redact(text: &str, scratch: &Scratch) -> String {
    text.replace(&scratch.path().display().to_string(), "[scratch]")
}

/// Writes `files` and the input `text` (as `model.inp`) in a scratch folder,
/// loads it, checks that it fails with errors that all have a message, and
/// snapshots the rendered errors as `name`.
pub(crate) fn fails(name: &str, files: &[(&str, &str)], text: &str) -> SpecError {
    let scratch = Scratch::new(name);
    for (file, contents) in files {
        scratch.write(file, contents);
    }
    let path = scratch.write("model.inp", &dedent(text));
    let err = match mlmix::spec::load(&path) {
        Ok(_) => panic!("{name}: the input was accepted"),
        Err(e) => e,
    };
    assert!(!err.errors.is_empty(), "{name}: an error without errors");
    for e in &err.errors {
        assert!(e.is_error() && !e.message.is_empty(), "{name}: {e:?}");
    }
    insta::assert_snapshot!(name, redact(&err.to_string(), &scratch));
    err
}

/// Like [`fails`], with the shared data file `lca.dat` beside the input.
fn fails_lca(name: &str, text: &str) -> SpecError {
    fails(name, &[("lca.dat", LCA_DAT)], text)
}

/// Asserts that the first error points at `file` (as written, or the input
/// file `model.inp`), line `line`, and that its message contains `reason`.
#[track_caller]
pub(crate) fn assert_first(err: &SpecError, file: &str, line: usize, reason: &str) {
    let e = &err.errors[0];
    let loc = e
        .location
        .as_ref()
        .unwrap_or_else(|| panic!("no location: {e}"));
    assert!(
        Path::new(&loc.file).ends_with(file),
        "file {} is not {file}: {e}",
        loc.file
    );
    assert_eq!(loc.line, line, "line: {e}");
    assert!(e.message.contains(reason), "reason: {e}");
}

// ------------------------------------------------------------------ syntax

#[test]
fn missing_semicolon_before_next_command() {
    let err = fails_lca(
        "missing_semicolon_before_next_command",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2)
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(&err, "model.inp", 5, "not ended by ';'");
    assert_eq!(err.errors.len(), 1, "{err}");
}

#[test]
fn missing_semicolon_before_next_option() {
    // the statement on the next line is read on its own, not as more names
    let err = fails_lca(
        "missing_semicolon_before_next_option",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(&err, "model.inp", 3, "not ended by ';'");
    assert_eq!(err.errors.len(), 1, "{err}");
}

#[test]
fn unterminated_class_marker() {
    let err = fails_lca(
        "unterminated_class_marker",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL:    %OVERALL%
                  %c#1
                  [u1$1];
        ",
    );
    assert_first(&err, "model.inp", 8, "unterminated class block marker");
}

#[test]
fn text_before_first_command() {
    let err = fails_lca(
        "text_before_first_command",
        "
        A two-class model of four items
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(&err, "model.inp", 1, "text before the first command");
}

#[test]
fn class_marker_without_class_variable() {
    let err = fails_lca(
        "class_marker_without_class_variable",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL:    %#1%
                  [u1$1];
        ",
    );
    assert_first(&err, "model.inp", 7, "names no class variable");
}

// ----------------------------------------------------------- unknown names

#[test]
fn unknown_variable_in_usevariables() {
    let err = fails_lca(
        "unknown_variable_in_usevariables",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 outcome x;
                  USEVARIABLES = u1-u4 outcme;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(&err, "model.inp", 3, "unknown variable 'outcme'");
    assert_eq!(err.errors[0].help.as_deref(), Some("did you mean outcome?"));
}

#[test]
fn unknown_variable_in_model() {
    let err = fails_lca(
        "unknown_variable_in_model",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 outcome x;
                  USEVARIABLES = u1-u4 outcome;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL:    %c#1%
                  [outcom];
        ",
    );
    assert_first(&err, "model.inp", 8, "unknown variable 'outcom'");
    assert_eq!(err.errors[0].help.as_deref(), Some("did you mean outcome?"));
}

#[test]
fn variable_in_model_but_not_in_usevariables() {
    let err = fails_lca(
        "variable_in_model_but_not_in_usevariables",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL:    %OVERALL%
                  c ON x;
        ",
    );
    assert_first(&err, "model.inp", 8, "x is not in USEVARIABLES");
}

// --------------------------------------------------------------- keywords

#[test]
fn misspelt_names() {
    // NAMES is not read, and the first line of the data is not a header
    let err = fails_lca(
        "misspelt_names",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMSE = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(&err, "model.inp", 2, "unknown option 'NAMSE' in VARIABLE:");
    assert_eq!(err.errors[0].help.as_deref(), Some("did you mean NAMES?"));
    assert_eq!(err.errors.len(), 2, "{err}");
    assert!(err.errors[1].message.contains("not a header row"), "{err}");
}

#[test]
fn misspelt_starts() {
    let err = fails_lca(
        "misspelt_starts",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
                  STARST = 20 4;
        ",
    );
    assert_first(&err, "model.inp", 7, "unknown option 'STARST' in ANALYSIS:");
    assert_eq!(err.errors[0].help.as_deref(), Some("did you mean STARTS?"));
}

#[test]
fn misspelt_categorical() {
    let err = fails_lca(
        "misspelt_categorical",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORCAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(&err, "model.inp", 4, "unknown option 'CATEGORCAL'");
    assert_eq!(
        err.errors[0].help.as_deref(),
        Some("did you mean CATEGORICAL?")
    );
}

#[test]
fn negative_starts() {
    let err = fails_lca(
        "negative_starts",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
                  STARTS = -20 4;
        ",
    );
    assert_first(&err, "model.inp", 7, "not negative");
}

#[test]
fn starts_final_more_than_initial() {
    let err = fails_lca(
        "starts_final_more_than_initial",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
                  STARTS = 4 20;
        ",
    );
    assert_first(&err, "model.inp", 7, "no larger than N");
}

// -------------------------------------------------------------- the data

#[test]
fn data_row_with_wrong_number_of_values() {
    let dat = lca_dat_with(5, "5 0 0 0 0 1.2");
    let err = fails(
        "data_row_with_wrong_number_of_values",
        &[("lca.dat", &dat)],
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(&err, "lca.dat", 5, "row has 6 values but NAMES has 7");
}

#[test]
fn data_value_not_a_number() {
    let dat = lca_dat_with(3, "3 0 1 0 0 abc -0.3");
    let err = fails(
        "data_value_not_a_number",
        &[("lca.dat", &dat)],
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4 y;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(
        &err,
        "lca.dat",
        3,
        "value 'abc' of variable y is not a number",
    );
    assert_eq!(err.errors[0].location.as_ref().map(|l| l.column), Some(11));
}

#[test]
fn data_missing_symbol_not_declared() {
    let dat = lca_dat_with(2, "2 1 . 1 0 3.1 1.2");
    let err = fails(
        "data_missing_symbol_not_declared",
        &[("lca.dat", &dat)],
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(&err, "lca.dat", 2, "value '.' of variable u2");
    assert_eq!(
        err.errors[0].help.as_deref(),
        Some("declare the missing-value symbol: MISSING = .;")
    );
}

#[test]
fn categorical_value_not_whole() {
    let dat = lca_dat_with(4, "4 1 1 0.5 1 3.8 1.9");
    let err = fails(
        "categorical_value_not_whole",
        &[("lca.dat", &dat)],
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(
        &err,
        "lca.dat",
        4,
        "u3 is CATEGORICAL but has the value 0.5",
    );
    assert_eq!(err.errors[0].location.as_ref().map(|l| l.column), Some(7));
}

#[test]
fn csv_row_with_wrong_number_of_values() {
    let err = fails(
        "csv_row_with_wrong_number_of_values",
        &[("items.csv", "u1,u2,u3\n0,1,1\n1,0\n0,0,1\n")],
        "
        DATA:     FILE = items.csv;
        VARIABLE: CATEGORICAL = u1-u3;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(
        &err,
        "items.csv",
        3,
        "row has 2 values but the header names 3",
    );
}

#[test]
fn csv_value_not_a_number() {
    // the caret is under the value, not at its offset within the record
    let err = fails(
        "csv_value_not_a_number",
        &[("items.csv", "u1,u2,u3\n0,1,1\n1,\"0\",yes\n")],
        "
        DATA:     FILE = items.csv;
        VARIABLE: CATEGORICAL = u1-u3;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(&err, "items.csv", 3, "value 'yes' of variable u3");
    assert_eq!(err.errors[0].location.as_ref().map(|l| l.column), Some(7));
}

#[test]
fn csv_categorical_value_not_whole_after_empty_field() {
    let err = fails(
        "csv_categorical_value_not_whole_after_empty_field",
        &[("items.csv", "u1,u2,u3\n0,1,1\n1,,2.5\n0,0,1\n")],
        "
        DATA:     FILE = items.csv;
        VARIABLE: CATEGORICAL = u1-u3;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(
        &err,
        "items.csv",
        3,
        "u3 is CATEGORICAL but has the value 2.5",
    );
    assert_eq!(err.errors[0].location.as_ref().map(|l| l.column), Some(4));
}

#[test]
fn missing_data_file() {
    let err = fails(
        "missing_data_file",
        &[],
        "
        DATA:     FILE = nowhere.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(&err, "model.inp", 1, "cannot read data file 'nowhere.dat'");
}

#[test]
fn empty_data_file() {
    let err = fails(
        "empty_data_file",
        &[("lca.dat", "")],
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(&err, "model.inp", 1, "data file 'lca.dat' is empty");
    // blank lines only
    let err = fails(
        "blank_data_file",
        &[("lca.dat", "\n   \n\n")],
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(&err, "model.inp", 1, "data file 'lca.dat' is empty");
}

#[test]
fn data_file_is_a_folder() {
    let scratch = Scratch::new("data_file_is_a_folder");
    std::fs::create_dir(scratch.path().join("lca.dat")).unwrap();
    let path = scratch.write(
        "model.inp",
        &dedent(
            "
            DATA:     FILE = lca.dat;
            VARIABLE: NAMES = id u1-u4 y x;
                      USEVARIABLES = u1-u4;
                      CATEGORICAL = u1-u4;
                      CLASSES = c(2);
            ANALYSIS: TYPE = MIXTURE;
            ",
        ),
    );
    let err = mlmix::spec::load(&path).expect_err("a folder is not data");
    assert_first(&err, "model.inp", 1, "is a folder");
    insta::assert_snapshot!("data_file_is_a_folder", redact(&err.to_string(), &scratch));
}

#[test]
fn names_given_but_file_has_header_row() {
    let dat = format!("id u1 u2 u3 u4 y x\n{LCA_DAT}");
    let err = fails(
        "names_given_but_file_has_header_row",
        &[("lca.dat", &dat)],
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(
        &err,
        "lca.dat",
        1,
        "value 'u1' of variable u1 is not a number",
    );
    let help = err.errors[0].help.as_deref().unwrap_or_default();
    assert!(help.contains("looks like a header row"), "{err}");
}

#[test]
fn names_given_but_file_has_longer_header_row() {
    let dat = format!("id,u1,u2,u3,u4,y,x,z\n{LCA_DAT}");
    let err = fails(
        "names_given_but_file_has_longer_header_row",
        &[("lca.dat", &dat)],
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(&err, "lca.dat", 1, "row has 8 values but NAMES has 7");
    let help = err.errors[0].help.as_deref().unwrap_or_default();
    assert!(help.contains("looks like a header row"), "{err}");
}

#[test]
fn no_names_and_no_header_row() {
    let err = fails_lca(
        "no_names_and_no_header_row",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(&err, "model.inp", 1, "is not a header row");
    assert_eq!(err.errors.len(), 1, "{err}");
}

#[test]
fn no_names_and_header_row_not_comma_separated() {
    let dat = format!("id u1 u2 u3 u4 y x\n{LCA_DAT}");
    let err = fails(
        "no_names_and_header_row_not_comma_separated",
        &[("lca.dat", &dat)],
        "
        DATA:     FILE = lca.dat;
        VARIABLE: USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(&err, "model.inp", 1, "is not comma-separated");
    assert_eq!(err.errors.len(), 1, "{err}");
}

#[test]
fn missing_input_file() {
    let scratch = Scratch::new("missing_input_file");
    let err = mlmix::spec::load(&scratch.path().join("nothing.inp")).expect_err("no file");
    assert!(err.errors[0].message.contains("nothing.inp"), "{err}");
}

// ---------------------------------------------------------------- classes

#[test]
fn class_block_for_class_that_does_not_exist() {
    let err = fails_lca(
        "class_block_for_class_that_does_not_exist",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL:    %OVERALL%
                  %c#3%
                  [u1$1];
        ",
    );
    assert_first(&err, "model.inp", 8, "c has no class 3");
    assert_eq!(err.errors[0].help.as_deref(), Some("c has classes 1 to 2"));
}

#[test]
fn model_section_for_unknown_class_variable() {
    let err = fails_lca(
        "model_section_for_unknown_class_variable",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL c9:
                  %c9#1%
                  [u1$1];
        ",
    );
    assert_first(&err, "model.inp", 7, "MODEL c9: names no class variable");
    assert_eq!(err.errors.len(), 1, "{err}");
}

#[test]
fn class_variable_with_the_name_of_a_data_column() {
    let err = fails_lca(
        "class_variable_with_the_name_of_a_data_column",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = y(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(&err, "model.inp", 5, "has the name of an observed variable");
}

#[test]
fn class_on_class_declared_later() {
    let err = fails_lca(
        "class_on_class_declared_later",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c1(2) c2(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL:    %OVERALL%
                  c1 ON c2;
        MODEL c1: %c1#1%
                  [u1$1 u2$1];
        MODEL c2: %c2#1%
                  [u3$1 u4$1];
        ",
    );
    assert_first(&err, "model.inp", 8, "c1 ON c2");
    assert_eq!(err.errors.len(), 1, "{err}");
}

// ------------------------------------------------------------------ MODEL

#[test]
fn threshold_that_does_not_exist() {
    let err = fails_lca(
        "threshold_that_does_not_exist",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL:    %c#1%
                  [u1$2];
        ",
    );
    assert_first(&err, "model.inp", 8, "u1$2 does not exist");
    assert_eq!(
        err.errors[0].help.as_deref(),
        Some("its only threshold is u1$1")
    );
}

#[test]
fn mean_of_categorical_variable() {
    let err = fails_lca(
        "mean_of_categorical_variable",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL:    %c#1%
                  [u1];
        ",
    );
    assert_first(&err, "model.inp", 8, "u1 is categorical");
}

#[test]
fn variance_of_categorical_variable() {
    let err = fails_lca(
        "variance_of_categorical_variable",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL:    %c#1%
                  u2;
        ",
    );
    assert_first(&err, "model.inp", 8, "has no variance parameter");
}

/// A factor model's input with `model` as its MODEL command.
fn factor_input(model: &str) -> String {
    format!(
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4 x;
                  CATEGORICAL = u1-u4;
        ANALYSIS: ALGORITHM = INTEGRATION;
        MODEL:    {model}
        "
    )
}

#[test]
fn threshold_of_a_factor() {
    let err = fails_lca("threshold_of_a_factor", &factor_input("f BY u1-u4; [f$1];"));
    assert_first(
        &err,
        "model.inp",
        6,
        "f is not an observed variable and has no thresholds",
    );
}

#[test]
fn threshold_list_through_a_factor() {
    let err = fails_lca(
        "threshold_list_through_a_factor",
        &factor_input("f BY u1-u4; [u1$1-f$1];"),
    );
    assert_first(
        &err,
        "model.inp",
        6,
        "names that are not observed variables",
    );
}

#[test]
fn categorical_model_not_supported() {
    let err = fails_lca(
        "categorical_model_not_supported",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u2 (3pl) u3-u4 (4pl);
        ANALYSIS: ALGORITHM = INTEGRATION;
        MODEL:    f BY u1-u4;
        ",
    );
    assert_first(
        &err,
        "model.inp",
        4,
        "CATEGORICAL (4PL) is not supported yet",
    );
}

#[test]
fn three_pl_item_not_binary() {
    let err = fails(
        "three_pl_item_not_binary",
        &[("items.dat", "0 1 2\n1 0 1\n1 1 0\n0 0 2\n")],
        "
        DATA:     FILE = items.dat;
        VARIABLE: NAMES = u1-u3;
                  CATEGORICAL = u1-u3 (3pl);
        ANALYSIS: ALGORITHM = INTEGRATION;
        MODEL:    f BY u1-u3;
        ",
    );
    assert_first(
        &err,
        "model.inp",
        3,
        "u3 has 3 categories in the data: the 3PL is for binary items",
    );
}

#[test]
fn factor_by_unknown_variable() {
    let err = fails_lca(
        "factor_by_unknown_variable",
        &factor_input("f BY u1-u3 u9;"),
    );
    assert_first(&err, "model.inp", 6, "u9");
}

#[test]
fn factor_without_indicators() {
    let err = fails_lca("factor_without_indicators", &factor_input("f BY;"));
    assert_first(&err, "model.inp", 6, "BY needs variables on both sides");
}

#[test]
fn factor_named_like_a_variable() {
    let err = fails_lca("factor_named_like_a_variable", &factor_input("y BY u1-u4;"));
    assert_first(
        &err,
        "model.inp",
        6,
        "the factor y has the name of a variable",
    );
}

#[test]
fn factor_by_itself() {
    let err = fails_lca("factor_by_itself", &factor_input("f BY u1-u4 f;"));
    assert_first(&err, "model.inp", 6, "f BY itself");
}

#[test]
fn factor_mean_of_unknown_factor() {
    let err = fails_lca(
        "factor_mean_of_unknown_factor",
        &factor_input("f BY u1-u4; [g];"),
    );
    assert_first(&err, "model.inp", 6, "g");
}

/// A two-level input with `within` and `between` as the statements of
/// its two levels (items u1-u4, covariate x within, y between).
fn twolevel_factor_input(within: &str, between: &str) -> String {
    format!(
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4 y x;
                  CATEGORICAL = u1-u4;
                  WITHIN = x; BETWEEN = y;
                  CLUSTER = id;
        ANALYSIS: TYPE = TWOLEVEL;
        MODEL:    %WITHIN%
                  {within}
                  %BETWEEN%
                  {between}
        "
    )
}

#[test]
fn factor_measured_on_both_levels() {
    let err = fails_lca(
        "factor_measured_on_both_levels",
        &twolevel_factor_input("f BY u1-u4;", "f BY u1-u4;"),
    );
    assert_first(
        &err,
        "model.inp",
        11,
        "the factor f is measured on both levels",
    );
}

#[test]
fn within_factor_measured_by_a_between_variable() {
    let err = fails_lca(
        "within_factor_measured_by_a_between_variable",
        &twolevel_factor_input("fw BY u1-u4 y;", ""),
    );
    assert_first(&err, "model.inp", 9, "y is a BETWEEN variable");
}

#[test]
fn within_factor_variance_on_the_between_level() {
    let err = fails_lca(
        "within_factor_variance_on_the_between_level",
        &twolevel_factor_input("fw BY u1-u4;", "fw;"),
    );
    assert_first(&err, "model.inp", 11, "fw is a within-level factor");
}

#[test]
fn within_factor_regressed_on_a_covariate() {
    let err = fails_lca(
        "within_factor_regressed_on_a_covariate",
        &twolevel_factor_input("fw BY u1-u4; fw ON x;", ""),
    );
    assert_first(
        &err,
        "model.inp",
        9,
        "within-level factors regressed on covariates (f ON x) are not supported yet",
    );
}

#[test]
fn within_factor_mean_freed() {
    let err = fails_lca(
        "within_factor_mean_freed",
        &twolevel_factor_input("fw BY u1-u4; [fw*0.5];", ""),
    );
    assert_first(
        &err,
        "model.inp",
        9,
        "the mean of the within-level factor fw is 0",
    );
}

#[test]
fn between_factor_measured_by_a_within_variable() {
    let err = fails_lca(
        "between_factor_measured_by_a_within_variable",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  WITHIN = u4;
                  CLUSTER = id;
        ANALYSIS: TYPE = TWOLEVEL;
        MODEL:    %WITHIN%
                  %BETWEEN%
                  fb BY u1-u4;
        ",
    );
    assert_first(&err, "model.inp", 10, "u4 is a WITHIN variable");
}

#[test]
fn within_factor_measured_by_a_random_slope() {
    let err = fails_lca(
        "within_factor_measured_by_a_random_slope",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = y x;
                  WITHIN = x;
                  CLUSTER = id;
        ANALYSIS: TYPE = TWOLEVEL;
        MODEL:    %WITHIN%
                  s | y ON x;
                  fw BY y s;
                  %BETWEEN%
        ",
    );
    assert_first(
        &err,
        "model.inp",
        9,
        "s is a random slope: a factor measures it on the between level",
    );
}

/// Loadings may vary over a within-level class variable (the FMA-GoM's
/// class-specific loadings, eq 41 and 43), but a between-level factor's
/// mean cannot: a cluster has one value of the factor.
#[test]
fn between_factor_mean_varying_over_a_within_class_variable() {
    let err = fails_lca(
        "between_factor_mean_varying_over_a_within_class_variable",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
                  CLUSTER = id;
        ANALYSIS: TYPE = TWOLEVEL MIXTURE;
        MODEL:    %WITHIN%
                  %OVERALL%
                  %BETWEEN%
                  %OVERALL%
                  fb BY u1-u4;
                  %c#1%
                  fb BY u1-u4; [fb];
        ",
    );
    assert_first(
        &err,
        "model.inp",
        14,
        "the mean of a between-level factor cannot vary across the classes of c, a within-level class variable",
    );
}

#[test]
fn factors_regressed_on_each_other() {
    let err = fails_lca(
        "factors_regressed_on_each_other",
        &factor_input("f BY u1-u2; g BY u3-u4; f ON g; g ON f;"),
    );
    assert_first(&err, "model.inp", 6, "form a cycle (f ON g, g ON f)");
}

#[test]
fn random_slope() {
    let err = fails_lca(
        "random_slope",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = y x;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL:    %OVERALL%
                  s | y ON x;
        ",
    );
    assert_first(
        &err,
        "model.inp",
        7,
        "random slopes ('|') need TYPE = TWOLEVEL",
    );
}

#[test]
fn twolevel_without_cluster() {
    let err = fails_lca(
        "twolevel_without_cluster",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = TWOLEVEL MIXTURE;
        ",
    );
    assert_first(
        &err,
        "model.inp",
        6,
        "TYPE = TWOLEVEL needs a cluster variable",
    );
}

/// DEFINE is read; the variable it creates must come after the file's
/// variables in USEVARIABLES (Mplus's rule).
#[test]
fn define_variable_listed_before_the_original_ones() {
    let err = fails_lca(
        "define_variable_not_last",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = total u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        DEFINE:   total = u1 + u2 + u3 + u4;
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(&err, "model.inp", 3, "u1 comes after total in USEVARIABLES");
    assert_eq!(err.errors.len(), 1, "{err}");
}

#[test]
fn cluster_option() {
    let err = fails_lca(
        "cluster_option",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
                  CLUSTER = id;
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(&err, "model.inp", 6, "CLUSTER needs TYPE = TWOLEVEL");
}

#[test]
fn label_count_mismatch() {
    let err = fails_lca(
        "label_count_mismatch",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4 y;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL:    %c#1%
                  [u1$1 u2$1 u3$1 u4$1 y] (p1-p3);
        ",
    );
    assert_first(&err, "model.inp", 8, "3 labels for 5 parameters");
}

#[test]
fn at_without_value() {
    let err = fails_lca(
        "at_without_value",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL:    %c#1%
                  [u1$1@];
        ",
    );
    assert_first(&err, "model.inp", 8, "'@' needs a value");
}

// ---------------------------------------------------------------- two-level

/// Free-format data for `NAMES = clus y x w;`: three clusters of two rows, a
/// within-level covariate `x` and a between-level covariate `w` that is
/// constant in each cluster.
const TL_DAT: &str = "\
1 2.1 0.5 1.0
1 2.9 -0.2 1.0
2 1.4 1.1 0.0
2 3.3 0.3 0.0
3 2.2 -0.7 1.5
3 1.8 0.9 1.5
";

/// `TL_DAT` with 1-based line `line` replaced by `text`.
fn tl_dat_with(line: usize, text: &str) -> String {
    TL_DAT
        .lines()
        .enumerate()
        .map(|(i, l)| if i + 1 == line { text } else { l })
        .fold(String::new(), |s, l| s + l + "\n")
}

/// Like [`fails`], with the two-level data file `tl.dat` beside the input.
fn fails_tl(name: &str, text: &str) -> SpecError {
    fails(name, &[("tl.dat", TL_DAT)], text)
}

#[test]
fn twolevel_random_slope_on_variable_not_in_within() {
    let err = fails_tl(
        "twolevel_random_slope_on_variable_not_in_within",
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x w;
                  CLASSES = c(2);
                  BETWEEN = w;
                  CLUSTER = clus;
        ANALYSIS: TYPE = TWOLEVEL MIXTURE;
        MODEL:    %WITHIN%
                  %OVERALL%
                  s | y ON x;
                  %BETWEEN%
                  %OVERALL%
                  y ON w; s;
        ",
    );
    assert_first(
        &err,
        "model.inp",
        10,
        "the random slope s is on x, which is not in WITHIN",
    );
}

#[test]
fn twolevel_between_variable_varies_within_cluster() {
    let dat = tl_dat_with(4, "2 3.3 0.3 0.5");
    let err = fails(
        "twolevel_between_variable_varies_within_cluster",
        &[("tl.dat", &dat)],
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x w;
                  WITHIN = x;
                  BETWEEN = w;
                  CLUSTER = clus;
        ANALYSIS: TYPE = TWOLEVEL;
        MODEL:    %WITHIN%
                  y ON x;
                  %BETWEEN%
                  y ON w;
        ",
    );
    assert_first(
        &err,
        "tl.dat",
        4,
        "w is a BETWEEN variable but varies within cluster 2: it is 0 on line 3 and 0.5 here",
    );
    // the caret is on the value of w, the fourth field
    assert_eq!(err.errors[0].location.as_ref().map(|l| l.column), Some(11));
}

#[test]
fn twolevel_missing_cluster_id_symbol() {
    let dat = tl_dat_with(3, ". 1.4 1.1 0.0");
    let err = fails(
        "twolevel_missing_cluster_id_symbol",
        &[("tl.dat", &dat)],
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x;
                  MISSING = .;
                  WITHIN = x;
                  CLUSTER = clus;
        ANALYSIS: TYPE = TWOLEVEL;
        MODEL:    %WITHIN%
                  y ON x;
                  %BETWEEN%
                  y;
        ",
    );
    assert_first(&err, "tl.dat", 3, "the cluster id (clus) is missing");
    assert_eq!(err.errors[0].location.as_ref().map(|l| l.column), Some(1));
}

#[test]
fn twolevel_missing_cluster_id_code() {
    let dat = tl_dat_with(5, "-9 2.2 -0.7 1.5");
    let err = fails(
        "twolevel_missing_cluster_id_code",
        &[("tl.dat", &dat)],
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x;
                  MISSING = ALL(-9);
                  WITHIN = x;
                  CLUSTER = clus;
        ANALYSIS: TYPE = TWOLEVEL;
        MODEL:    %WITHIN%
                  y ON x;
                  %BETWEEN%
                  y;
        ",
    );
    assert_first(&err, "tl.dat", 5, "the cluster id (clus) is missing");
}

#[test]
fn twolevel_within_name_not_a_variable() {
    let err = fails_tl(
        "twolevel_within_name_not_a_variable",
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x;
                  WITHIN = x z;
                  CLUSTER = clus;
        ANALYSIS: TYPE = TWOLEVEL;
        MODEL:    %WITHIN%
                  y ON x;
        ",
    );
    assert_first(&err, "model.inp", 4, "z");
}

#[test]
fn twolevel_between_name_not_a_variable() {
    let err = fails_tl(
        "twolevel_between_name_not_a_variable",
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x w;
                  WITHIN = x;
                  BETWEEN = ww;
                  CLUSTER = clus;
        ANALYSIS: TYPE = TWOLEVEL;
        MODEL:    %WITHIN%
                  y ON x;
                  %BETWEEN%
                  y ON w;
        ",
    );
    assert_first(&err, "model.inp", 5, "ww");
}

#[test]
fn twolevel_variable_in_both_within_and_between() {
    let err = fails_tl(
        "twolevel_variable_in_both_within_and_between",
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x w;
                  WITHIN = x w;
                  BETWEEN = w;
                  CLUSTER = clus;
        ANALYSIS: TYPE = TWOLEVEL;
        MODEL:    %WITHIN%
                  y ON x;
                  %BETWEEN%
                  y ON w;
        ",
    );
    assert_first(&err, "model.inp", 4, "w is in both WITHIN and BETWEEN");
}

#[test]
fn twolevel_cluster_column_does_not_exist() {
    let err = fails_tl(
        "twolevel_cluster_column_does_not_exist",
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x;
                  WITHIN = x;
                  CLUSTER = school;
        ANALYSIS: TYPE = TWOLEVEL;
        MODEL:    %WITHIN%
                  y ON x;
        ",
    );
    assert_first(&err, "model.inp", 5, "school");
}

#[test]
fn twolevel_without_cluster_or_classes() {
    let err = fails_tl(
        "twolevel_without_cluster_or_classes",
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x;
                  WITHIN = x;
        ANALYSIS: TYPE = TWOLEVEL;
        MODEL:    %WITHIN%
                  y ON x;
        ",
    );
    assert_first(
        &err,
        "model.inp",
        5,
        "TYPE = TWOLEVEL needs a cluster variable",
    );
}

#[test]
fn twolevel_classes_without_mixture() {
    let err = fails_tl(
        "twolevel_classes_without_mixture",
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x;
                  CLASSES = c(2);
                  WITHIN = x;
                  CLUSTER = clus;
        ANALYSIS: TYPE = TWOLEVEL;
        MODEL:    %WITHIN%
                  y ON x;
        ",
    );
    assert_first(
        &err,
        "model.inp",
        4,
        "CLASSES needs TYPE = TWOLEVEL MIXTURE",
    );
}

#[test]
fn twolevel_statements_before_level_marker() {
    let err = fails_tl(
        "twolevel_statements_before_level_marker",
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x;
                  WITHIN = x;
                  CLUSTER = clus;
        ANALYSIS: TYPE = TWOLEVEL;
        MODEL:    y ON x;
                  %BETWEEN%
                  y;
        ",
    );
    assert_first(
        &err,
        "model.inp",
        7,
        "in a TWOLEVEL model, MODEL statements go under %WITHIN% or %BETWEEN%",
    );
}

#[test]
fn twolevel_within_marker_without_twolevel() {
    let err = fails_tl(
        "twolevel_within_marker_without_twolevel",
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL:    %WITHIN%
                  %OVERALL%
                  y ON x;
        ",
    );
    assert_first(&err, "model.inp", 6, "%WITHIN% needs TYPE = TWOLEVEL");
}

#[test]
fn twolevel_random_slope_declared_in_between() {
    let err = fails_tl(
        "twolevel_random_slope_declared_in_between",
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x w;
                  WITHIN = x;
                  BETWEEN = w;
                  CLUSTER = clus;
        ANALYSIS: TYPE = TWOLEVEL;
        MODEL:    %WITHIN%
                  y ON x;
                  %BETWEEN%
                  s | y ON x;
                  y ON w;
        ",
    );
    assert_first(
        &err,
        "model.inp",
        11,
        "random slopes ('|') are declared in %WITHIN%",
    );
}

#[test]
fn twolevel_random_slope_written_wrongly() {
    let err = fails_tl(
        "twolevel_random_slope_written_wrongly",
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x;
                  WITHIN = x;
                  CLUSTER = clus;
        ANALYSIS: TYPE = TWOLEVEL;
        MODEL:    %WITHIN%
                  s | y x;
                  %BETWEEN%
                  s;
        ",
    );
    assert_first(
        &err,
        "model.inp",
        8,
        "a random slope is written name | y ON x",
    );
}

#[test]
fn twolevel_mean_of_random_intercept_in_within() {
    let err = fails_tl(
        "twolevel_mean_of_random_intercept_in_within",
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x;
                  WITHIN = x;
                  CLUSTER = clus;
        ANALYSIS: TYPE = TWOLEVEL;
        MODEL:    %WITHIN%
                  y ON x;
                  [y];
                  %BETWEEN%
                  y;
        ",
    );
    assert_first(
        &err,
        "model.inp",
        9,
        "the intercept of y is random: its mean is a between-level parameter",
    );
}

#[test]
fn twolevel_between_regression_on_within_covariate() {
    let err = fails_tl(
        "twolevel_between_regression_on_within_covariate",
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x w;
                  WITHIN = x;
                  BETWEEN = w;
                  CLUSTER = clus;
        ANALYSIS: TYPE = TWOLEVEL;
        MODEL:    %WITHIN%
                  y;
                  %BETWEEN%
                  y ON x w;
        ",
    );
    assert_first(
        &err,
        "model.inp",
        11,
        "x is not a BETWEEN variable: between-level regressions are on cluster-level covariates",
    );
}

#[test]
fn twolevel_covariate_in_neither_within_nor_between() {
    let err = fails_tl(
        "twolevel_covariate_in_neither_within_nor_between",
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x w;
                  WITHIN = x;
                  CLUSTER = clus;
        ANALYSIS: TYPE = TWOLEVEL;
        MODEL:    %WITHIN%
                  y ON x w;
                  %BETWEEN%
                  y;
        ",
    );
    assert_first(
        &err,
        "model.inp",
        8,
        "the covariate w must be listed in WITHIN or BETWEEN",
    );
}

/// A valid random-intercept input with `integration` as its INTEGRATION or
/// ADAPTIVE statement (line 7).
fn twolevel_with_analysis(option: &str) -> String {
    format!(
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x;
                  WITHIN = x;
                  CLUSTER = clus;
        ANALYSIS: TYPE = TWOLEVEL;
                  {option}
        MODEL:    %WITHIN%
                  y ON x;
                  %BETWEEN%
                  y;
        "
    )
}

#[test]
fn twolevel_integration_unknown_method() {
    let err = fails_tl(
        "twolevel_integration_unknown_method",
        &twolevel_with_analysis("INTEGRATION = FOO(3);"),
    );
    assert_first(
        &err,
        "model.inp",
        7,
        "INTEGRATION is a number of points, STANDARD(n), TRAPEZOID(n), GAUSSHERMITE(n) or MONTECARLO(n)",
    );
}

#[test]
fn twolevel_integration_zero_points() {
    let err = fails_tl(
        "twolevel_integration_zero_points",
        &twolevel_with_analysis("INTEGRATION = GAUSSHERMITE(0);"),
    );
    assert_first(
        &err,
        "model.inp",
        7,
        "the number of integration points must be a whole number of at least 1",
    );
}

#[test]
fn twolevel_adaptive_not_on_or_off() {
    let err = fails_tl(
        "twolevel_adaptive_not_on_or_off",
        &twolevel_with_analysis("ADAPTIVE = MAYBE;"),
    );
    assert_first(&err, "model.inp", 7, "ADAPTIVE is ON or OFF");
}

#[test]
fn twolevel_class_specific_variance_under_within_class_variable() {
    let err = fails_tl(
        "twolevel_class_specific_variance_under_within_class_variable",
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x;
                  CLASSES = c(2);
                  WITHIN = x;
                  CLUSTER = clus;
        ANALYSIS: TYPE = TWOLEVEL MIXTURE;
        MODEL:    %WITHIN%
                  %OVERALL%
                  y ON x;
                  %BETWEEN%
                  %OVERALL%
                  y;
                  %c#1%
                  y;
        ",
    );
    assert_first(
        &err,
        "model.inp",
        15,
        "random-effect variances can vary only across the classes of a between-level class variable",
    );
}

#[test]
fn twolevel_clusters_of_one_row_and_not_contiguous_load() {
    // cluster 7 has one row; the rows of clusters 1 and 2 are interleaved
    let scratch = Scratch::new("twolevel_clusters_not_contiguous");
    scratch.write(
        "tl.dat",
        "\
1 2.1 0.5 1.0
2 1.4 1.1 0.0
1 2.9 -0.2 1.0
7 2.6 0.4 3.0
2 3.3 0.3 0.0
1 2.4 0.1 1.0
",
    );
    let path = scratch.write(
        "model.inp",
        &dedent(
            "
            DATA:     FILE = tl.dat;
            VARIABLE: NAMES = clus y x w;
                      USEVARIABLES = y x w;
                      CLASSES = c(2);
                      WITHIN = x;
                      BETWEEN = w;
                      CLUSTER = clus;
            ANALYSIS: TYPE = TWOLEVEL MIXTURE;
            MODEL:    %WITHIN%
                      %OVERALL%
                      s | y ON x;
                      %BETWEEN%
                      %OVERALL%
                      y ON w; s; c#1;
            ",
        ),
    );
    let loaded = mlmix::spec::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        loaded.warnings.iter().all(|w| !w.is_error()),
        "{:?}",
        loaded.warnings
    );
    assert_eq!(loaded.data.n_rows(), 6);
    assert_eq!(
        loaded.data.clusters.as_deref(),
        Some(&[1.0, 2.0, 1.0, 7.0, 2.0, 1.0][..])
    );
    let two_level = loaded.model.two_level.as_ref().expect("a two-level model");
    assert_eq!(two_level.cluster, "clus");
    let mut random: Vec<&str> = loaded
        .model
        .latent
        .random
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    random.sort_unstable();
    assert_eq!(random, ["c#1", "s", "y"]);
}

#[test]
fn twolevel_class_variable_in_within() {
    let err = fails_tl(
        "twolevel_class_variable_in_within",
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x;
                  CLASSES = c(2);
                  WITHIN = x c;
                  CLUSTER = clus;
        ANALYSIS: TYPE = TWOLEVEL MIXTURE;
        MODEL:    %WITHIN%
                  %OVERALL%
                  y ON x;
        ",
    );
    assert_first(
        &err,
        "model.inp",
        5,
        "c is a class variable; class variables are within-level unless listed in BETWEEN",
    );
}

#[test]
fn twolevel_random_slope_declared_twice() {
    let err = fails_tl(
        "twolevel_random_slope_declared_twice",
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x;
                  WITHIN = x;
                  CLUSTER = clus;
        ANALYSIS: TYPE = TWOLEVEL;
        MODEL:    %WITHIN%
                  s | y ON x;
                  s | y ON x;
                  %BETWEEN%
                  y; s;
        ",
    );
    assert_first(&err, "model.inp", 9, "the random slope s is declared twice");
}

#[test]
fn twolevel_random_slope_variance_in_within() {
    let err = fails_tl(
        "twolevel_random_slope_variance_in_within",
        "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x;
                  WITHIN = x;
                  CLUSTER = clus;
        ANALYSIS: TYPE = TWOLEVEL;
        MODEL:    %WITHIN%
                  s | y ON x;
                  s;
                  %BETWEEN%
                  y;
        ",
    );
    assert_first(
        &err,
        "model.inp",
        9,
        "s is a random slope: its mean, variance and regressions are between-level parameters",
    );
}

#[test]
fn twolevel_integration_too_many_points() {
    let err = fails_tl(
        "twolevel_integration_too_many_points",
        &twolevel_with_analysis("INTEGRATION = GAUSSHERMITE(201);"),
    );
    assert_first(
        &err,
        "model.inp",
        7,
        "at most 200 integration points per dimension",
    );
}

// ------------------------------------------------------ several at once

#[test]
fn several_errors_reported_at_once() {
    let err = fails_lca(
        "several_errors_reported_at_once",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4 yy;
                  CATEGORCAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
                  STARTS = 4 20;
        MODEL:    %c#3%
                  [u1$1];
                  %c#1%
                  [u5$1];
        ",
    );
    let lines: Vec<usize> = err
        .errors
        .iter()
        .filter_map(|e| e.location.as_ref().map(|l| l.line))
        .collect();
    assert_eq!(lines, [4, 7, 3, 8, 11], "{err}");
}

// ----------------------------------------------------------------- warnings

#[test]
fn unsupported_output_and_plot_are_warnings_and_the_fit_goes_on() {
    let scratch = Scratch::new("warnings");
    scratch.write(
        "carcinoma.csv",
        &std::fs::read_to_string(data("carcinoma.csv")).unwrap(),
    );
    let (loaded, fit) = fit_text(
        &scratch,
        "model.inp",
        &dedent(
            "
            DATA:     FILE = carcinoma.csv;
            VARIABLE: USEVARIABLES = A-G;
                      CATEGORICAL = A-G;
                      CLASSES = lc(2);
            ANALYSIS: TYPE = MIXTURE;
                      STARTS = 2 1;
            OUTPUT:   TECH1 TECH11;
            PLOT:     TYPE = PLOT1;
            ",
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.warnings.iter().all(|w| !w.is_error()));
    let lines: Vec<usize> = loaded
        .warnings
        .iter()
        .filter_map(|w| w.location.as_ref().map(|l| l.line))
        .collect();
    assert_eq!(lines, [7, 8], "{:?}", loaded.warnings);
    assert!(fit.loglikelihood.is_finite());
    assert_eq!(fit.free_parameters, 15);
    let text: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    insta::assert_snapshot!("warnings", redact(&text.join("\n"), &scratch));
}

// ---------------------------------------------------------- the command

/// The `mlmix` executable next to this test's target folder, built once;
/// or the one `MLMIX_EXE` names (to run the tests against a built binary
/// on a machine without cargo).
pub(crate) fn mlmix_exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        if let Some(exe) = std::env::var_os("MLMIX_EXE") {
            return PathBuf::from(exe);
        }
        // this test runs as <target>/<profile>/deps/end_to_end-<hash>
        let me = std::env::current_exe().unwrap();
        let profile_dir = me.parent().and_then(Path::parent).unwrap().to_path_buf();
        let profile = profile_dir.file_name().unwrap().to_str().unwrap();
        let mut build = Command::new(env!("CARGO"));
        build
            .args(["build", "-q", "-p", "mlmix-cli", "--bin", "mlmix"])
            .current_dir(tests_dir())
            .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap());
        match profile {
            "debug" => {}
            "release" => {
                build.arg("--release");
            }
            other => {
                build.args(["--profile", other]);
            }
        }
        let status = build.status().unwrap();
        assert!(status.success(), "building mlmix failed: {status}");
        let exe = profile_dir.join(format!("mlmix{}", std::env::consts::EXE_SUFFIX));
        assert!(exe.is_file(), "no {}", exe.display());
        exe
    })
}

/// `cargo build -p mlmix-cli` ([`mlmix_exe`]) resolves each of the
/// command's dependencies with the features that `cargo test --workspace`
/// resolves (mlmix-cli's manifest turns on those that the workspace's tests
/// and benchmarks turn on), so that it reuses that build instead of
/// compiling mlmix and its dependencies again beside the tests.
#[test]
fn the_command_builds_with_the_workspace_tests_features() {
    use std::collections::{BTreeMap, BTreeSet};
    let features = |args: &[&str]| -> BTreeMap<String, BTreeSet<String>> {
        let out = Command::new(env!("CARGO"))
            .args(["tree", "--prefix", "none", "-f", "{p}|{f}"])
            .args(args)
            .current_dir(tests_dir())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "cargo tree {args:?}: {stderr}");
        let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (p, f) in String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('|'))
        {
            // (a repeated subtree's root is marked, not expanded)
            let f = f.trim_end_matches(" (*)");
            map.entry(p.to_string()).or_default().insert(f.to_string());
        }
        map
    };
    let command = features(&["-p", "mlmix-cli", "-e", "features,normal"]);
    let workspace = features(&["--workspace", "-e", "features,normal,dev"]);
    assert!(command.len() > 50, "{command:?}");
    for (package, f) in &command {
        assert_eq!(
            workspace.get(package),
            Some(f),
            "{package}: features {f:?} for mlmix-cli alone; turn on the workspace's in \
             crates/mlmix-cli/Cargo.toml"
        );
    }
}

#[test]
fn command_line_bad_input_exits_1_with_located_error() {
    let out = Command::new(mlmix_exe())
        .args(["fit", "misspelt_option.inp"])
        .current_dir(input("bad"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains("misspelt_option.inp:7:11: unknown option 'STARST' in ANALYSIS:"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean STARTS?"), "{stderr}");
    assert!(stderr.contains("1 error; nothing was fitted"), "{stderr}");
}

#[test]
fn command_line_good_input_exits_0() {
    let example = tests_dir().join("../examples/lca_carcinoma.inp");
    let out = Command::new(mlmix_exe())
        .args(["fit", "-q"])
        .arg(&example)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!out.stdout.is_empty(), "no report");
}

// ------------------------------------------- numbers, output bounds, follow-ons

/// An LCA input for `lca.dat` with `analysis` added to ANALYSIS (line 7).
fn lca_with_analysis(analysis: &str) -> String {
    format!(
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
                  {analysis}
        "
    )
}

/// Loads `text` (dedented, as `model.inp`) beside `lca.dat`; the result.
fn load_lca(tag: &str, text: &str) -> Result<mlmix::spec::Loaded, SpecError> {
    let scratch = Scratch::new(tag);
    scratch.write("lca.dat", LCA_DAT);
    let path = scratch.write("model.inp", &dedent(text));
    mlmix::spec::load(&path)
}

#[test]
fn numbers_that_size_starts_are_checked() {
    let err = fails_lca(
        "starts_out_of_range",
        &lca_with_analysis("STARTS = 1e308 4;"),
    );
    assert_first(
        &err,
        "model.inp",
        7,
        "STARTS needs two whole numbers that are not negative and at most 100,000",
    );
    // passed `check` before, then the fit panicked or allocated 86 GB
    for starts in [
        "18446744073709551615 4",
        "2147483648 4",
        "100001 4",
        "20 1e308",
        "20.5 4",
    ] {
        let text = lca_with_analysis(&format!("STARTS = {starts};"));
        let err = match load_lca("starts", &text) {
            Ok(_) => panic!("STARTS = {starts} was accepted"),
            Err(e) => e,
        };
        assert_first(&err, "model.inp", 7, "not negative and at most 100,000");
        assert_eq!(err.count(), 1, "{err}");
    }
    let ok = load_lca("starts_max", &lca_with_analysis("STARTS = 100000 4;"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.model.analysis.starts_initial, 100_000);
}

#[test]
fn whole_number_options_are_checked_against_their_ranges() {
    for (option, reason) in [
        (
            "STITERATIONS = 1e308;",
            "STITERATIONS needs one whole number from 1 to 100,000",
        ),
        (
            "MITERATIONS = 2.5;",
            "MITERATIONS needs one whole number from 1 to 100,000",
        ),
        (
            "ITERATIONS = 0;",
            "ITERATIONS needs one whole number from 1 to 100,000",
        ),
        (
            "STSEED = 1e308;",
            "STSEED needs one whole number from 0 to 4,294,967,295",
        ),
        (
            "OPTSEED = 18446744073709551616;",
            "OPTSEED needs one whole number from 0 to 4,294,967,295",
        ),
        (
            "PROCESSORS = 1e308;",
            "PROCESSORS needs one whole number from 1 to 100,000",
        ),
    ] {
        let err = match load_lca("options", &lca_with_analysis(option)) {
            Ok(_) => panic!("{option} was accepted"),
            Err(e) => e,
        };
        assert_first(&err, "model.inp", 7, reason);
        // the caret is under the number, not the option name
        let loc = err.errors[0].location.as_ref().unwrap();
        let value_col = 11 + option.find('=').unwrap() + 2;
        assert_eq!(loc.column, value_col, "{option}: {err}");
    }
    let err = fails_tl(
        "integration_points_out_of_range",
        &twolevel_with_analysis("INTEGRATION = 1e308;"),
    );
    assert_first(
        &err,
        "model.inp",
        7,
        "at most 200 integration points per dimension",
    );
    let err = fails_lca(
        "classes_out_of_range",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(1e308);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(
        &err,
        "model.inp",
        5,
        "the number of classes must be a whole number from 1 to 100",
    );
}

#[test]
fn stiterations_count_towards_miterations() {
    let loaded = load_lca(
        "stiterations",
        &lca_with_analysis("STITERATIONS = 50; MITERATIONS = 20;"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.model.analysis.stiterations, 20);
    assert_eq!(loaded.model.analysis.miterations, 20);
    let w: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w.iter().any(|w| w.contains(
            "STITERATIONS = 50 is more than MITERATIONS = 20; initial-stage iterations count towards MITERATIONS"
        )),
        "{w:?}"
    );
}

#[test]
fn ranges_are_limited_before_they_are_expanded() {
    let started = std::time::Instant::now();
    let err = fails_lca(
        "names_range_too_long",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u100000000 y x;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(
        &err,
        "model.inp",
        2,
        "NAMES lists more than 100,000 variables",
    );
    let err = fails_lca(
        "label_range_too_long",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL:    %OVERALL%
                  [u1$1-u4$1] (p1-p999999999);
        ",
    );
    assert_first(&err, "model.inp", 8, "more than 100,000 labels in one ( )");
    let err = fails_lca(
        "missing_code_range_too_long",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1-u4;
                  MISSING = ALL(0-1e308);
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    assert_first(&err, "model.inp", 5, "has more than 1,000 codes");
    // no gigabytes were allocated on the way
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
    // the largest list allowed is read
    let names = load_lca(
        "names_max",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x z1-z99993;
        ANALYSIS: TYPE = MIXTURE;
        ",
    );
    let err = names.expect_err("the data have 7 columns, not 100,000");
    assert!(
        err.errors
            .iter()
            .all(|e| !e.message.contains("NAMES lists")),
        "{err}"
    );
}

#[test]
fn many_errors_are_capped_and_repeats_counted() {
    // 25 different bad names, then the same bad number 30 times
    let bad: Vec<String> = (1..=25).map(|i| format!("zz{i}")).collect();
    let numbers = vec!["1.2.3"; 30].join(" ");
    let err = fails_lca(
        "many_errors_capped",
        &format!(
            "
            DATA:     FILE = lca.dat;
            VARIABLE: NAMES = id u1-u4 y x;
                      USEVARIABLES = u1-u4 {};
                      MISSING = ALL({numbers});
                      CLASSES = c(2);
            ANALYSIS: TYPE = MIXTURE;
            ",
            bad.join(" ")
        ),
    );
    assert_eq!(err.errors.len(), mlmix::spec::diag::MAX_SHOWN, "{err}");
    assert_eq!(err.errors[0].message, "'1.2.3' is not a number");
    assert_eq!(err.errors[0].count, 30);
    assert_eq!(err.more_errors, 6, "{err}");
    assert_eq!(err.count(), 30 + 25, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("= note: the same error 29 more times (not shown)"),
        "{text}"
    );
    assert!(text.ends_with("and 6 more errors (not shown)"), "{text}");
}

#[test]
fn long_tokens_and_lines_are_shortened_in_messages() {
    let long = "x".repeat(10_000);
    let err = fails_lca(
        "long_token_shortened",
        &format!(
            "
            DATA:     FILE = lca.dat;
            VARIABLE: NAMES = id u1-u4 y x;
                      USEVARIABLES = u1-u4 {long} y;
                      CLASSES = c(2);
            ANALYSIS: TYPE = MIXTURE;
            "
        ),
    );
    assert_first(&err, "model.inp", 3, "unknown variable 'xxxx");
    let text = err.to_string();
    assert!(text.len() < 1_000, "{text}");
    // the caret stays under the token's start
    let loc = err.errors[0].location.as_ref().unwrap();
    assert_eq!(loc.column, 32);
    let shown: String = loc.line_text.chars().skip(loc.text_column - 1).collect();
    assert!(shown.starts_with("xxxx"), "{}", loc.line_text);
}

#[test]
fn follow_on_errors_are_not_reported() {
    // u5 is not a column: the range u1-u5 is lost, but CATEGORICAL's u1
    // is not "not in USEVARIABLES"
    let err = fails_lca(
        "usevariables_error_has_no_follow_on",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u5;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL:    %c#1%
                  [u1$1];
        ",
    );
    assert_first(&err, "model.inp", 3, "unknown variable 'u5'");
    assert_eq!(err.count(), 1, "{err}");
    // an unknown name is reported once, not at every use
    let err = fails_lca(
        "unknown_name_reported_once",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4 y;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL:    %OVERALL%
                  y ON zz;
                  %c#1%
                  y ON zz;
                  y WITH zz;
        ",
    );
    assert_first(&err, "model.inp", 8, "unknown variable 'zz'");
    assert_eq!(err.count(), 1, "{err}");
    // a Monte Carlo input read as an analysis (`mlmix check`): one error
    // saying what it is, not "no DATA: command" and "no VARIABLE: command"
    let err = fails_lca(
        "montecarlo_reported_once",
        "
        MONTECARLO: NAMES = u1-u4;
                    NOBSERVATIONS = 500;
                    NREPS = 10;
                    GENCLASSES = c(2);
                    CLASSES = c(2);
        ANALYSIS:   TYPE = MIXTURE;
        MODEL POPULATION:
                    %OVERALL%
                    [c#1*0];
        ",
    );
    assert_first(&err, "model.inp", 1, "this is a Monte Carlo input");
    assert_eq!(err.count(), 1, "{err}");
}

#[test]
fn en_dash_gets_a_hint() {
    let err = fails_lca(
        "en_dash_in_names",
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1–u4 y x;
                  USEVARIABLES = u1-u4;
                  CATEGORICAL = u1–u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        MODEL:    %c#1%
                  [u1$1–u4$1];
        ",
    );
    assert_first(&err, "model.inp", 2, "unexpected '–'");
    assert_eq!(
        err.errors[0].help.as_deref(),
        Some("an en dash '–'; use '-'")
    );
    // read as a range: nothing follows from it (one error, three places)
    assert_eq!(err.errors.len(), 1, "{err}");
    assert_eq!(err.count(), 3, "{err}");
}

#[test]
fn ranges_of_class_logit_means() {
    let text = |model: &str| {
        format!(
            "
            DATA:     FILE = lca.dat;
            VARIABLE: NAMES = id u1-u4 y x;
                      USEVARIABLES = u1-u4;
                      CATEGORICAL = u1-u4;
                      CLASSES = c1(3) c2(3) c3(3);
            ANALYSIS: TYPE = MIXTURE; STARTS = 0;
            MODEL:    %OVERALL%
                      {model}
            MODEL c1: %c1#1% [u1$1 u2$1];
            MODEL c2: %c2#1% [u3$1];
            MODEL c3: %c3#1% [u4$1];
            "
        )
    };
    let free = |model: &str| {
        let loaded = load_lca("class_range", &text(model)).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<String> = loaded.model.free.iter().map(|f| f.name.clone()).collect();
        names
    };
    // Mplus's [c#1-c#2]: the logit means of classes 1 and 2, here fixed
    assert_eq!(free("[c1#1-c1#2@0];"), free("[c1#1@0 c1#2@0];"));
    // and [c1#1-c3#1]: class 1 of c1, c2 and c3
    assert_eq!(free("[c1#1-c3#1@0];"), free("[c1#1@0 c2#1@0 c3#1@0];"));
    assert_ne!(free("[c1#1-c3#1@0];"), free(""));
    let err = fails_lca("class_range_mixed", &text("[c1#1-c3#2];"));
    assert_first(&err, "model.inp", 8, "cannot expand the list c1#1-c3#2");
}

/// Runs `mlmix check` on `model.inp` in `dir`, killing it after 20 s;
/// returns the exit status, standard error and the time it took.
fn check_bounded(dir: &Path) -> (Option<i32>, Vec<u8>, std::time::Duration) {
    use std::io::Read;
    let started = std::time::Instant::now();
    let mut child = Command::new(mlmix_exe())
        .args(["check", "model.inp"])
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed().as_secs() > 20 {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mlmix check took longer than 20 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    (status.code(), reader.join().unwrap(), started.elapsed())
}

#[test]
fn hostile_inputs_give_bounded_error_output() {
    let lca = "DATA: FILE = lca.dat;\nVARIABLE: NAMES = id u1-u4 y x;\n  USEVARIABLES = u1-u4;\n  CATEGORICAL = u1-u4;\n  CLASSES = c(2);\nANALYSIS: TYPE = MIXTURE;\n";
    let percent = format!("{lca}MODEL: {}\n", "%".repeat(20_000));
    let long_token = format!("{}MODEL: %OVERALL%\n  [{}];\n", lca, "u".repeat(10_000_000));
    let header: String = std::iter::repeat_n("a,", 5_000_000).collect();
    let csv = format!("{}a\n", header);
    let dup = "DATA: FILE = dup.csv;\nVARIABLE: USEVARIABLES = a;\n  CLASSES = c(2);\nANALYSIS: TYPE = MIXTURE;\n";
    for (tag, input, extra) in [
        ("percent", percent.as_str(), None),
        ("long_token", long_token.as_str(), None),
        ("duplicate_header", dup, Some(("dup.csv", csv.as_str()))),
    ] {
        let scratch = Scratch::new(tag);
        scratch.write("lca.dat", LCA_DAT);
        if let Some((name, contents)) = extra {
            scratch.write(name, contents);
        }
        scratch.write("model.inp", input);
        let (code, stderr, took) = check_bounded(scratch.path());
        let text = String::from_utf8_lossy(&stderr);
        let head: String = text.chars().take(2_000).collect();
        assert!(matches!(code, Some(1 | 2)), "{tag}: {code:?} {head}");
        assert!(
            stderr.len() < 200_000,
            "{tag}: {} bytes: {head}",
            stderr.len()
        );
        assert!(text.contains("nothing was fitted"), "{tag}: {head}");
        eprintln!("{tag}: {} bytes of stderr in {took:?}", stderr.len());
    }
}

// ------------------------------- what the fit would refuse, said by check

/// The LCA input of `LCA_DAT` with `model` as its MODEL command (line 7
/// on) and `savedata` as its SAVEDATA command.
fn lca_with_model(model: &str, savedata: &str) -> String {
    let model = model.replace('\n', "\n        ");
    format!(
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4 y;
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        {model}
        {savedata}
        "
    )
}

#[test]
fn savedata_file_that_is_a_folder_is_refused_by_check() {
    let err = fails_lca(
        "savedata_file_is_a_folder",
        &lca_with_model("", "SAVEDATA: FILE = .; SAVE = CPROBABILITIES;"),
    );
    assert_first(&err, "model.inp", 8, "it is a folder");
    let err = fails_lca(
        "savedata_file_is_the_data_file",
        &lca_with_model("", "SAVEDATA: FILE = lca.dat; SAVE = CPROBABILITIES;"),
    );
    assert_first(&err, "model.inp", 8, "it is the data file");
}

#[test]
fn threshold_fixed_beyond_the_logit_range_is_refused_by_check() {
    let err = fails_lca(
        "threshold_fixed_at_1e308",
        &lca_with_model("MODEL: %OVERALL%\n  %c#1%\n  [u1$1@1e308];", ""),
    );
    assert_first(&err, "model.inp", 9, "outside [-15, 15]");
    // one error for a statement that fixes it in every class
    let err = fails_lca(
        "threshold_fixed_at_1e308_overall",
        &lca_with_model("MODEL: %OVERALL%\n  [u1$1@-1e308 u2$1@1e309];", ""),
    );
    assert_first(&err, "model.inp", 8, "outside [-15, 15]");
    assert_eq!(err.errors.len(), 2, "{err}");
    assert!(
        err.errors[1].message.contains("not a finite number"),
        "{err}"
    );
    // LOGHIGH widens the range
    let text = lca_with_model("MODEL: %OVERALL%\n  [u1$1@20];", "")
        .replace("TYPE = MIXTURE;", "TYPE = MIXTURE; LOGHIGH = 25;");
    let scratch = Scratch::new("loghigh");
    scratch.write("lca.dat", LCA_DAT);
    let path = scratch.write("model.inp", &dedent(&text));
    assert!(mlmix::spec::load(&path).is_ok());
}

#[test]
fn values_the_engine_cannot_take_are_refused_by_check() {
    for (name, model, line, reason) in [
        (
            "residual_variance_fixed_at_0",
            "MODEL: %OVERALL%\n  y@0;",
            8,
            "a residual variance must be positive",
        ),
        (
            "mean_fixed_beyond_1e100",
            "MODEL: %OVERALL%\n  %c#2%\n  [y@-1e200];",
            9,
            "where the log-likelihood overflows",
        ),
        (
            "starting_value_not_finite",
            "MODEL: %OVERALL%\n  y ON u1*1e400;",
            8,
            "is not a finite number",
        ),
    ] {
        let text =
            lca_with_model(model, "").replace("CATEGORICAL = u1-u4;", "CATEGORICAL = u2-u4;");
        let err = fails_lca(name, &text);
        assert_first(&err, "model.inp", line, reason);
    }
}

#[test]
fn thresholds_given_out_of_order_are_refused_by_check() {
    // three categories: u1 has two thresholds
    let data = lca_dat_with(1, "1 2 0 1 0 2.3 0.5");
    let err = fails(
        "thresholds_out_of_order",
        &[("lca.dat", &data)],
        &lca_with_model("MODEL: %OVERALL%\n  [u1$1@1 u1$2@0];", ""),
    );
    assert_first(&err, "model.inp", 8, "thresholds must increase");
}

#[test]
fn random_effect_variance_fixed_negative_is_refused_by_check() {
    let text = "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y x;
                  WITHIN = x;
                  CLUSTER = clus;
        ANALYSIS: TYPE = TWOLEVEL RANDOM;
        MODEL:    %WITHIN%
                  s | y ON x;
                  %BETWEEN%
                  s@-1;
        ";
    let err = fails_tl("random_variance_fixed_negative", text);
    assert_first(
        &err,
        "model.inp",
        10,
        "a random-effect variance cannot be negative",
    );
    // fixed at 0 it is a constant, which the engine takes
    let scratch = Scratch::new("re_zero");
    scratch.write("tl.dat", TL_DAT);
    let path = scratch.write("model.inp", &dedent(&text.replace("s@-1", "s@0")));
    assert!(mlmix::spec::load(&path).is_ok());
}

#[test]
fn categorical_variable_with_one_value_is_located_at_categorical() {
    let data: String = LCA_DAT
        .lines()
        .map(|l| {
            let mut w: Vec<&str> = l.split(' ').collect();
            w[2] = "1";
            w.join(" ") + "\n"
        })
        .collect();
    let err = fails(
        "categorical_with_one_value",
        &[("lca.dat", &data)],
        &lca_with_model("", ""),
    );
    assert_first(&err, "model.inp", 4, "takes only the value 1");
    assert!(err.errors[0].message.contains("'lca.dat'"), "{err}");
}

#[test]
fn data_command_without_file_is_an_error() {
    let err = fails_lca(
        "data_without_file",
        &lca_with_model("", "").replace("FILE = lca.dat;", "! FILE = lca.dat;"),
    );
    assert!(
        err.errors[0].message.contains("DATA: gives no FILE"),
        "{err}"
    );
    assert!(err.errors[0].message.contains("model.inp"), "{err}");
}

#[test]
fn between_dependent_measured_by_no_class_gets_its_parameters() {
    // a BETWEEN variable under a within-level class variable: its mean and
    // variance are class-invariant (the plan used to miss them)
    let text = "
        DATA:     FILE = tl.dat;
        VARIABLE: NAMES = clus y x w;
                  USEVARIABLES = y w;
                  BETWEEN = w;
                  CLUSTER = clus;
                  CLASSES = c(2);
        ANALYSIS: TYPE = TWOLEVEL MIXTURE;
        ";
    let scratch = Scratch::new("between_dep");
    scratch.write("tl.dat", TL_DAT);
    let path = scratch.write("model.inp", &dedent(text));
    let loaded = mlmix::spec::load(&path).unwrap();
    let names: Vec<String> = loaded
        .model
        .parameters
        .iter()
        .map(|p| loaded.model.param_full_name(p))
        .collect();
    assert!(names.contains(&"[W]".to_string()), "{names:?}");
    assert!(names.contains(&"W (variance)".to_string()), "{names:?}");
}

/// An unsupported KNOWNCLASS leaves two class variables and no block that
/// says which measures the items: one follow-on error at CLASSES naming
/// them all, not one per item.
#[test]
fn knownclass_brings_one_follow_on_error_not_one_per_item() {
    let text = lca_with_model("", "").replace(
        "CLASSES = c(2);",
        "CLASSES = cg(2) c(2); KNOWNCLASS = cg(x=0 x=1);",
    );
    let err = fails_lca("knownclass_follow_on", &text);
    assert_first(&err, "model.inp", 5, "KNOWNCLASS is not supported yet");
    assert_eq!(err.errors.len(), 2, "{err}");
    assert!(
        err.errors[1]
            .message
            .contains("say which one measures u1, u2, u3, u4 and y"),
        "{err}"
    );
}

/// A growth statement is not a random slope: it is named as what it is,
/// not met with the advice to add TWOLEVEL.
#[test]
fn growth_time_scores_must_be_numbers() {
    let err = fails_lca(
        "growth_time_score_not_a_number",
        &lca_with_model("MODEL: %OVERALL%\n  i s | u1@0 u2@one u3@2 u4@3;", ""),
    );
    assert_first(&err, "model.inp", 8, "'@' needs a value");
}

#[test]
fn growth_outcome_without_time_score() {
    let err = fails_lca(
        "growth_outcome_without_time_score",
        &lca_with_model("MODEL: %OVERALL%\n  i s | u1@0 u2 u3@2 u4@3;", ""),
    );
    assert_first(&err, "model.inp", 8, "u2 has no time score");
}

// ------------------------------------------------ DATA WIDETOLONG, DEFINE

/// The LCA input with `DATA WIDETOLONG:` options `w2l` and USEVARIABLES
/// `usev` (the items reshaped to one long item `u`).
fn w2l(w2l: &str, usev: &str) -> String {
    format!(
        "
        DATA:     FILE = lca.dat;
        DATA WIDETOLONG: {w2l}
        VARIABLE: NAMES = id u1-u4 y x;
                  {usev}
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        "
    )
}

/// The LCA input with the DEFINE statements `define` (each line one more
/// line of the input) and USEVARIABLES `u1-u4 y` and `new`.
fn define(define: &str, new: &str) -> String {
    let define = define.replace('\n', "\n                  ");
    format!(
        "
        DATA:     FILE = lca.dat;
        VARIABLE: NAMES = id u1-u4 y x;
                  USEVARIABLES = u1-u4 y {new};
                  CATEGORICAL = u1-u4;
                  CLASSES = c(2);
        ANALYSIS: TYPE = MIXTURE;
        DEFINE:   {define}
        "
    )
}

#[test]
fn widetolong_unknown_wide_variable() {
    let err = fails_lca(
        "widetolong_unknown_variable",
        &w2l(
            "WIDE = u1-u4 | z1-z4; LONG = u | z; IDVARIABLE = person;",
            "USEVARIABLES = u z;",
        ),
    );
    assert_first(&err, "model.inp", 2, "unknown variable 'z1'");
    assert_eq!(err.errors.len(), 1, "{err}");
}

#[test]
fn widetolong_sets_of_different_lengths() {
    let err = fails_lca(
        "widetolong_set_lengths",
        &w2l(
            "WIDE = u1-u3 | y x; LONG = u | w; IDVARIABLE = person;",
            "USEVARIABLES = u w;",
        ),
    );
    assert_first(
        &err,
        "model.inp",
        2,
        "WIDE set 2 has 2 variables but set 1 has 3",
    );
    assert_eq!(err.errors.len(), 1, "{err}");
}

#[test]
fn widetolong_long_names_do_not_match_the_sets() {
    let err = fails_lca(
        "widetolong_long_count",
        &w2l(
            "WIDE = u1-u2 | u3-u4; LONG = u; IDVARIABLE = person;",
            "USEVARIABLES = u;",
        ),
    );
    assert_first(
        &err,
        "model.inp",
        2,
        "LONG names 1 variable but WIDE has 2 sets",
    );
    assert_eq!(err.errors.len(), 1, "{err}");
}

#[test]
fn widetolong_variable_listed_twice() {
    let err = fails_lca(
        "widetolong_variable_twice",
        &w2l(
            "WIDE = u1-u3 | u3 y x; LONG = u | w; IDVARIABLE = person;",
            "USEVARIABLES = u w;",
        ),
    );
    assert_first(&err, "model.inp", 2, "u3 is listed twice in WIDE");
}

#[test]
fn widetolong_new_name_already_taken() {
    let err = fails_lca(
        "widetolong_name_taken",
        &w2l(
            "WIDE = u1-u4; LONG = y; IDVARIABLE = person;",
            "USEVARIABLES = y;",
        ),
    );
    assert_first(
        &err,
        "model.inp",
        2,
        "creates y, but there is already a variable y",
    );
}

#[test]
fn widetolong_default_id_name_already_taken() {
    // the file has a column ID; the default IDVARIABLE would be ID too
    let err = fails_lca(
        "widetolong_default_id_taken",
        &w2l("WIDE = u1-u4; LONG = u;", "USEVARIABLES = u;"),
    );
    assert_first(&err, "model.inp", 2, "the default IDVARIABLE name");
}

#[test]
fn widetolong_without_long() {
    let err = fails_lca(
        "widetolong_without_long",
        &w2l("WIDE = u1-u4; IDVARIABLE = person;", "USEVARIABLES = u;"),
    );
    assert_first(&err, "model.inp", 2, "DATA WIDETOLONG needs WIDE and LONG");
}

#[test]
fn widetolong_without_usevariables() {
    let err = fails_lca(
        "widetolong_without_usevariables",
        &w2l("WIDE = u1-u4; LONG = u; IDVARIABLE = person;", ""),
    );
    assert_first(&err, "model.inp", 2, "DATA WIDETOLONG needs USEVARIABLES");
}

#[test]
fn widetolong_wide_variable_used_after_the_reshape() {
    let err = fails_lca(
        "widetolong_wide_variable_used",
        &w2l(
            "WIDE = u1-u4; LONG = u; IDVARIABLE = person;",
            "USEVARIABLES = u u2;",
        ),
    );
    assert_first(
        &err,
        "model.inp",
        4,
        "u2 is a WIDE variable of DATA WIDETOLONG",
    );
    assert_eq!(err.errors.len(), 1, "{err}");
}

#[test]
fn widetolong_given_twice() {
    let text = w2l(
        "WIDE = u1-u4; LONG = u; IDVARIABLE = person;",
        "USEVARIABLES = u;",
    )
    .replace(
        "VARIABLE:",
        "DATA WIDETOLONG: WIDE = u1-u4; LONG = v;\n        VARIABLE:",
    );
    let err = fails_lca("widetolong_twice", &text);
    assert_first(&err, "model.inp", 3, "DATA WIDETOLONG: appears twice");
}

#[test]
fn define_syntax_error() {
    let err = fails_lca("define_syntax_error", &define("z = u1 + * u2;", "z"));
    assert_first(
        &err,
        "model.inp",
        7,
        "expected a number, a variable or '(', found '*'",
    );
    assert_eq!(err.errors.len(), 1, "{err}");
}

#[test]
fn define_unknown_function() {
    let err = fails_lca("define_unknown_function", &define("z = LOGG(y);", "z"));
    assert_first(&err, "model.inp", 7, "unknown function 'LOGG'");
}

#[test]
fn define_unknown_variable() {
    let err = fails_lca("define_unknown_variable", &define("z = y + q;", "z"));
    assert_first(&err, "model.inp", 7, "unknown variable 'q'");
    assert_eq!(err.errors.len(), 1, "{err}");
}

#[test]
fn define_variable_used_before_it_is_made() {
    let err = fails_lca(
        "define_used_before_made",
        &define("z = w + 1;\nw = y*2;", "z w"),
    );
    assert_first(&err, "model.inp", 7, "unknown variable 'w'");
}

#[test]
fn define_center_is_not_supported_yet() {
    let err = fails_lca("define_center", &define("CENTER y (GRANDMEAN);", ""));
    assert_first(
        &err,
        "model.inp",
        7,
        "CENTER in DEFINE is not supported yet",
    );
}

#[test]
fn define_mean_is_not_supported_yet() {
    let err = fails_lca("define_mean", &define("m = MEAN(u1-u4);", "m"));
    assert_first(
        &err,
        "model.inp",
        7,
        "the DEFINE function MEAN is not supported yet",
    );
}

#[test]
fn define_compares_with_a_single_equals() {
    let err = fails_lca(
        "define_single_equals",
        &define("IF (y = 1) THEN z = 1;", "z"),
    );
    assert_first(
        &err,
        "model.inp",
        7,
        "'=' assigns a value; it does not compare",
    );
}

#[test]
fn define_missing_compared_with_gt() {
    let err = fails_lca(
        "define_missing_gt",
        &define("IF (y GT _MISSING) THEN z = 1;", "z"),
    );
    assert_first(
        &err,
        "model.inp",
        7,
        "_MISSING can only be compared with EQ or NE",
    );
}

#[test]
fn define_if_without_then() {
    let err = fails_lca("define_if_without_then", &define("IF (y GT 1) z = 1;", "z"));
    assert_first(&err, "model.inp", 7, "expected THEN after the condition");
}

#[test]
fn define_else_is_not_a_statement() {
    let err = fails_lca(
        "define_else",
        &define("IF (y GT 1) THEN z = 1;\nELSE z = 0;", "z"),
    );
    assert_first(&err, "model.inp", 8, "ELSE is not part of DEFINE");
}

#[test]
fn define_comparison_as_a_value() {
    let err = fails_lca("define_comparison_value", &define("z = y GT 1;", "z"));
    assert_first(
        &err,
        "model.inp",
        7,
        "a comparison is true or false, not a number",
    );
}

/// A value of a long variable is found at its wide column: the error names
/// the data line and the field of u2 (the repetition the row comes from).
#[test]
fn widetolong_data_error_points_at_the_wide_field() {
    let data = lca_dat_with(3, "3 0 0.5 0 0 1.7 -0.3");
    let err = fails(
        "widetolong_categorical_not_whole",
        &[("lca.dat", &data)],
        &w2l(
            "WIDE = u1-u4; LONG = u; IDVARIABLE = person;",
            "USEVARIABLES = u;\n                  CATEGORICAL = u;",
        ),
    );
    assert_first(&err, "lca.dat", 3, "u is CATEGORICAL but has the value 0.5");
    let loc = err.errors[0].location.as_ref().unwrap();
    assert_eq!(loc.column, 5, "{err}");
}
