//! From syntax to the checked model: option tables, variable lists, MODEL
//! statements with Mplus's defaults, the data file, and parameter numbering.
//!
//! Mplus defaults for TYPE = MIXTURE, followed here:
//! - means (continuous) and thresholds (categorical) of the dependent
//!   variables vary across classes;
//! - variances, residual covariances (`WITH`) and regression slopes (`ON`)
//!   are held equal across classes unless the parameter is mentioned in a
//!   class block (`%c#2%`), which frees it in that class;
//! - dependent variables are independent within class unless `WITH` says
//!   otherwise;
//! - class logit intercepts are free; the last class is the reference.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::between::IssueAt;
use crate::data::{self, RawData, ReadRequest};
use crate::diag::{Diagnostic, Diagnostics, SpecError, suggest};
use crate::model::*;
use crate::source::{Source, Span};
use crate::syntax::{self, Command, Section, Statement, TokKind, Token};

/// The analysis data: one column per model variable.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The data file.
    pub file: PathBuf,
    /// One column per [`Model::variables`] entry, one value per analysed
    /// row; NaN is missing. Categorical variables hold the category index
    /// (0, 1, ...), not the code found in the file.
    pub columns: Vec<Vec<f64>>,
    /// IDVARIABLE values of the analysed rows.
    pub ids: Option<Vec<String>>,
    /// Data-file line of each analysed row.
    pub lines: Vec<usize>,
    /// Rows read from the file, analysed or not.
    pub rows_read: usize,
    /// Rows left out, with why.
    pub excluded: Vec<Excluded>,
    /// Cluster id of each analysed row (two-level models).
    pub clusters: Option<Vec<f64>>,
}

impl Dataset {
    /// Number of analysed rows.
    pub fn n_rows(&self) -> usize {
        self.lines.len()
    }
}

/// A row left out of the analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct Excluded {
    /// Its line in the data file.
    pub line: usize,
    /// Why.
    pub reason: ExclusionReason,
}

/// Why a row was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExclusionReason {
    /// Missing on a covariate (the model is conditional on covariates).
    MissingCovariate,
    /// Missing on every dependent variable (it carries no information).
    AllDependentsMissing,
    /// LISTWISE = ON and missing on some analysis variable.
    Listwise,
}

/// A checked model with its data.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The model.
    pub model: Model,
    /// Its data.
    pub data: Dataset,
    /// Warnings (ignored OUTPUT/PLOT requests, excluded rows, ...).
    pub warnings: Vec<Diagnostic>,
    /// The input file text, for messages.
    pub source: Source,
}

/// Reads an input file and its data, and checks the model.
pub fn load(path: &Path) -> Result<Loaded, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecError::single(Diagnostic::error_nowhere(format!(
            "cannot read input file '{}': {e}",
            path.display()
        )))
    })?;
    load_source(Source::new(path, text))
}

/// Checks an input file already in memory (its path resolves the data file).
pub fn load_source(src: Source) -> Result<Loaded, SpecError> {
    let mut diags = Diagnostics::default();
    let syntax = syntax::parse(&src, &mut diags);
    let mut b = Builder {
        src: &src,
        diags,
        twolevel: false,
    };
    match b.run(&syntax) {
        Some((model, data)) if !b.diags.has_errors() => {
            let (_, warnings) = b.diags.split();
            Ok(Loaded {
                model,
                data,
                warnings,
                source: src,
            })
        }
        _ => {
            let (errors, warnings) = b.diags.split();
            Err(SpecError { errors, warnings })
        }
    }
}

// ---------------------------------------------------------------------------
// option statements

/// `KEY [IS|ARE|=] values...`
struct OptStmt<'a> {
    /// The option name; tokens written without spaces are joined, so that
    /// `K-1STARTS` is one name.
    key: String,
    key_span: Span,
    first: &'a Token,
    values: &'a [Token],
}

fn split_option(stmt: &Statement) -> Option<OptStmt<'_>> {
    let first = stmt.tokens.first()?;
    let sep = stmt
        .tokens
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, t)| t.is_sym('=') || t.is_word("IS") || t.is_word("ARE"))
        .map(|(i, _)| i);
    let mut n_key = 1;
    if let Some(sep) = sep {
        let glued = stmt.tokens[..sep]
            .windows(2)
            .all(|w| w[0].span.end == w[1].span.start);
        if glued {
            n_key = sep;
        }
    }
    let key_toks = &stmt.tokens[..n_key];
    let key: String = key_toks.iter().map(|t| t.text.as_str()).collect();
    let key_span = key_toks[0].span.to(key_toks[n_key - 1].span);
    let mut rest = &stmt.tokens[n_key..];
    if let Some(t) = rest.first()
        && (t.is_sym('=') || t.is_word("IS") || t.is_word("ARE"))
    {
        rest = &rest[1..];
    }
    Some(OptStmt {
        key,
        key_span,
        first,
        values: rest,
    })
}

/// How an option is handled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Support {
    Yes,
    /// Changes the model or the estimation: an error.
    NoModel(&'static str),
    /// Only changes what is printed or saved: a warning.
    NoOutput,
    /// A tuning option of Mplus's own algorithms that mlmix does not use: a
    /// warning with the reason.
    Ignored(&'static str),
}

fn match_key<'t>(
    word: &str,
    table: &'t [(&'static str, Support)],
) -> Result<&'t (&'static str, Support), Vec<&'static str>> {
    let w = word.to_ascii_uppercase();
    if let Some(e) = table.iter().find(|(n, _)| *n == w) {
        return Ok(e);
    }
    let prefixed: Vec<_> = if w.len() >= 4 {
        table.iter().filter(|(n, _)| n.starts_with(&w)).collect()
    } else {
        Vec::new()
    };
    match prefixed.as_slice() {
        [one] => Ok(one),
        _ => Err(table.iter().map(|(n, _)| *n).collect()),
    }
}

const DATA_OPTS: &[(&str, Support)] = &[
    ("FILE", Support::Yes),
    ("FORMAT", Support::Yes),
    ("TYPE", Support::Yes),
    ("LISTWISE", Support::Yes),
    ("NOBSERVATIONS", Support::Yes),
    ("VARIANCES", Support::Yes),
    ("NGROUPS", Support::NoModel("multiple-group data")),
    (
        "SWMATRIX",
        Support::NoModel("within/between sample matrices"),
    ),
];

const VARIABLE_OPTS: &[(&str, Support)] = &[
    ("NAMES", Support::Yes),
    ("USEVARIABLES", Support::Yes),
    ("CATEGORICAL", Support::Yes),
    ("CLASSES", Support::Yes),
    ("MISSING", Support::Yes),
    ("IDVARIABLE", Support::Yes),
    (
        "USEOBSERVATIONS",
        Support::NoModel("selecting observations"),
    ),
    ("NOMINAL", Support::NoModel("nominal dependent variables")),
    ("COUNT", Support::NoModel("count dependent variables")),
    ("CENSORED", Support::NoModel("censored dependent variables")),
    ("GROUPING", Support::NoModel("multiple-group analysis")),
    ("KNOWNCLASS", Support::NoModel("known classes")),
    ("TRAINING", Support::NoModel("training data")),
    ("WEIGHT", Support::NoModel("sampling weights")),
    ("FREQWEIGHT", Support::NoModel("frequency weights")),
    ("STRATIFICATION", Support::NoModel("complex survey data")),
    ("CLUSTER", Support::Yes),
    ("WITHIN", Support::Yes),
    ("BETWEEN", Support::Yes),
    ("AUXILIARY", Support::NoModel("auxiliary variables")),
    (
        "TSCORES",
        Support::NoModel("individually varying times of observation"),
    ),
    ("SURVIVAL", Support::NoModel("survival variables")),
    ("LAGGED", Support::NoModel("lagged variables")),
];

const ANALYSIS_OPTS: &[(&str, Support)] = &[
    ("TYPE", Support::Yes),
    ("ESTIMATOR", Support::Yes),
    ("STARTS", Support::Yes),
    ("STITERATIONS", Support::Yes),
    ("STSEED", Support::Yes),
    ("STSCALE", Support::Yes),
    ("OPTSEED", Support::Yes),
    ("LINK", Support::Yes),
    ("MITERATIONS", Support::Yes),
    ("CONVERGENCE", Support::Yes),
    ("MCONVERGENCE", Support::Yes),
    ("LOGCRITERION", Support::Yes),
    ("RLOGCRITERION", Support::Yes),
    ("PROCESSORS", Support::Yes),
    ("ALGORITHM", Support::Yes),
    ("ITERATIONS", Support::Yes),
    (
        "PARAMETERIZATION",
        Support::NoModel("only the default parameterization is used"),
    ),
    ("INTEGRATION", Support::Yes),
    ("ADAPTIVE", Support::Yes),
    ("BOOTSTRAP", Support::NoModel("bootstrap standard errors")),
    ("LRTSTARTS", Support::NoOutput),
    ("LRTBOOTSTRAP", Support::NoOutput),
    ("K-1STARTS", Support::NoOutput),
    ("UCELLSIZE", Support::NoOutput),
    ("LOGHIGH", Support::Yes),
    ("LOGLOW", Support::Yes),
    (
        "SDITERATIONS",
        Support::Ignored(
            "mlmix's optimiser has no steepest-descent phase (it uses EM, then quasi-Newton)",
        ),
    ),
    (
        "MIXU",
        Support::Ignored("mlmix's EM step updates every part of the model at once"),
    ),
    (
        "MIXC",
        Support::Ignored("mlmix's EM step updates every part of the model at once"),
    ),
    (
        "MUCONVERGENCE",
        Support::Ignored("mlmix's EM step updates every part of the model at once"),
    ),
    (
        "MCCONVERGENCE",
        Support::Ignored("mlmix's EM step updates every part of the model at once"),
    ),
    (
        "MODEL",
        Support::NoModel("ANALYSIS: MODEL = NOCOVARIANCES, NOMEANSTRUCTURE and the like"),
    ),
];

const SAVEDATA_OPTS: &[(&str, Support)] = &[
    ("FILE", Support::Yes),
    ("SAVE", Support::Yes),
    ("MISSFLAG", Support::Yes),
    ("FORMAT", Support::Yes),
    ("RESULTS", Support::NoOutput),
    ("ESTIMATES", Support::NoOutput),
    ("TECH3", Support::NoOutput),
    ("TECH4", Support::NoOutput),
    ("DIFFERENCE", Support::NoOutput),
    ("RECORDLENGTH", Support::NoOutput),
    ("BPARAMETERS", Support::NoOutput),
];

const OUTPUT_WORDS: &[&str] = &[
    "TECH1",
    "SVALUES",
    "TECH2",
    "TECH3",
    "TECH4",
    "TECH5",
    "TECH7",
    "TECH8",
    "TECH9",
    "TECH10",
    "TECH11",
    "TECH12",
    "TECH13",
    "TECH14",
    "TECH15",
    "TECH16",
    "STANDARDIZED",
    "STDYX",
    "STDY",
    "STD",
    "CINTERVAL",
    "SAMPSTAT",
    "RESIDUAL",
    "MODINDICES",
    "PATTERNS",
    "ENTROPY",
    "NOCHISQUARE",
    "NOSERROR",
    "CROSSTABS",
    "FSCOEFFICIENT",
    "FSDETERMINACY",
    "H1SE",
    "H1TECH3",
    "LOGRANK",
    "BASEHAZARD",
];

// ---------------------------------------------------------------------------
// MODEL statements

/// A reference to something in the model, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ref {
    Var(usize),
    Threshold(usize, usize),
    ClassVar(usize),
    Class(usize, usize),
}

#[derive(Debug, Clone)]
struct Elem {
    refs: Vec<Ref>,
    span: Span,
    /// Written inside `[ ]` (a mean, threshold or class intercept) rather
    /// than bare (a variance).
    bracketed: bool,
    fixed: Option<f64>,
    /// `Some(None)` for a bare `*`.
    start: Option<Option<f64>>,
    label_group: Option<usize>,
}

#[derive(Debug, Clone)]
struct LabelGroup {
    labels: Vec<String>,
    span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Overall,
    Class(usize, usize),
}

/// The level of a statement in a two-level model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Within,
    Between,
}

#[derive(Debug, Clone)]
enum StmtKind {
    /// A list of parameters: `[ ... ]` items are means, thresholds or class
    /// intercepts; bare names are variances (each element says which).
    Items(Vec<Elem>),
    /// `lhs ON rhs`.
    On(Vec<Elem>, Vec<Elem>),
    /// `lhs WITH rhs`.
    With(Vec<Elem>, Vec<Elem>),
    /// `s | y ON x`: a random slope named `s`.
    RandomSlope {
        name: String,
        span: Span,
        var: usize,
        covariate: usize,
    },
}

#[derive(Debug, Clone)]
struct ModelStmt {
    block: Block,
    level: Option<Level>,
    kind: StmtKind,
    labels: Vec<LabelGroup>,
}

/// The parameter a statement element points at, before classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Threshold {
        var: usize,
        index: usize,
    },
    Mean {
        var: usize,
    },
    Variance {
        var: usize,
    },
    Slope {
        var: usize,
        covariate: usize,
    },
    Covariance {
        a: usize,
        b: usize,
    },
    ClassIntercept {
        cv: usize,
        class: usize,
    },
    ClassSlope {
        cv: usize,
        class: Option<usize>,
        covariate: usize,
    },
    ClassOnClass {
        cv: usize,
        class: Option<usize>,
        parent: usize,
        parent_class: Option<usize>,
    },
    /// `c#1` alone on the between level: a random class logit intercept.
    ClassVariance {
        cv: usize,
        class: usize,
    },
    RandomVariance {
        re: usize,
    },
    RandomCovariance {
        a: usize,
        b: usize,
    },
    /// `s ON w` on the between level: random slope `re` on a BETWEEN
    /// covariate.
    RandomSlopeOn {
        re: usize,
        covariate: usize,
    },
    /// `s ON y` on the between level: one random effect on another.
    RandomRegression {
        re: usize,
        on: usize,
    },
    /// `y ON c#1` on the between level (before the levels are resolved):
    /// a variable's random effect on a random class logit intercept.
    OnClassIntercept {
        var: usize,
        cv: usize,
        class: usize,
    },
}

struct Mention {
    target: Target,
    block: Block,
    level: Option<Level>,
    fixed: Option<f64>,
    start: Option<Option<f64>>,
    label: Option<String>,
    span: Span,
}

/// Names and level lists of a two-level model.
struct TwoLevelNames<'a> {
    use_names: &'a [String],
    slope_names: &'a [String],
    /// Per random slope: (dependent, covariate, span); `usize::MAX` if its
    /// statement had an error.
    slopes: &'a [(usize, usize, Span)],
    within: &'a [usize],
    between: &'a [usize],
    categorical: &'a [usize],
}

// ---------------------------------------------------------------------------

struct Builder<'s> {
    src: &'s Source,
    diags: Diagnostics,
    /// TYPE = TWOLEVEL: statements belong to %WITHIN% or %BETWEEN%.
    twolevel: bool,
}

/// Everything read from the option commands.
#[derive(Default)]
struct Options<'a> {
    file: Option<(String, Span)>,
    listwise: bool,
    nobs: Option<(usize, Span)>,
    names: Option<Vec<(String, Span)>>,
    usev: Option<&'a [Token]>,
    categorical: Option<&'a [Token]>,
    classes: Vec<(String, usize, Span)>,
    missing: Option<&'a [Token]>,
    idvar: Option<(String, Span)>,
    type_mixture: Option<Span>,
    type_twolevel: Option<Span>,
    cluster: Option<(String, Span)>,
    within: Option<&'a [Token]>,
    between: Option<&'a [Token]>,
    integration: Integration,
    integration_span: Option<Span>,
    classes_span: Option<Span>,
    analysis: Analysis,
    output: OutputSpec,
    save_file: Option<(String, Span)>,
    save_cprob: bool,
    missflag: Option<String>,
}

impl<'s> Builder<'s> {
    fn err(&mut self, span: Span, msg: impl Into<String>) {
        self.diags.push(Diagnostic::error(self.src, span, msg));
    }

    fn err_help(&mut self, span: Span, msg: impl Into<String>, help: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(self.src, span, msg).with_help(help));
    }

    fn warn(&mut self, span: Span, msg: impl Into<String>) {
        self.diags.push(Diagnostic::warning(self.src, span, msg));
    }

    fn run(&mut self, syntax: &syntax::Syntax) -> Option<(Model, Dataset)> {
        let mut opts = Options::default();
        let mut title = String::new();
        let mut seen: HashMap<&'static str, Span> = HashMap::new();
        let mut model_sections: Vec<&Section> = Vec::new();
        for sec in &syntax.sections {
            let name = sec.command.name();
            // words between a command and its colon: `MODEL c1:` and
            // `DATA WIDETOLONG:` are commands of their own
            if let Some((q, span)) = &sec.qualifier {
                match sec.command {
                    Command::Model => {}
                    Command::Data => {
                        self.err(
                            *span,
                            format!("DATA {}: is not supported yet", q.to_ascii_uppercase()),
                        );
                        continue;
                    }
                    _ => {
                        self.err_help(
                            *span,
                            format!("'{name} {q}:' is not a command"),
                            format!("write {name}: alone"),
                        );
                        continue;
                    }
                }
            }
            if sec.command != Command::Model {
                if let Some(prev) = seen.get(name) {
                    let (l, _) = self.src.line_col(prev.start);
                    self.err(
                        sec.header,
                        format!("{name}: appears twice (first on line {l})"),
                    );
                    continue;
                }
                seen.insert(name, sec.header);
            }
            match sec.command {
                Command::Title => {
                    title = self
                        .src
                        .slice(sec.body)
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ");
                }
                Command::Data => self.data_section(sec, &mut opts),
                Command::Variable => self.variable_section(sec, &mut opts),
                Command::Analysis => self.analysis_section(sec, &mut opts),
                Command::Model => model_sections.push(sec),
                Command::Output => self.output_section(sec, &mut opts),
                Command::Savedata => self.savedata_section(sec, &mut opts),
                Command::Plot => self.warn(
                    sec.header,
                    "PLOT is not supported yet; the request is ignored",
                ),
                Command::Define => self.err_help(
                    sec.header,
                    "DEFINE is not supported yet",
                    "compute new variables before the analysis and add them to the data file",
                ),
                Command::Montecarlo => self.err(sec.header, "MONTECARLO is not supported yet"),
            }
        }
        if opts.type_twolevel.is_some() && opts.output.svalues {
            opts.output.svalues = false;
            self.diags.push(Diagnostic::warning_nowhere(
                "OUTPUT SVALUES is not supported yet for TWOLEVEL models; the request is ignored",
            ));
        }
        if !seen.contains_key("DATA") {
            self.diags.push(Diagnostic::error_nowhere(format!(
                "{}: no DATA: command; say where the data are with DATA: FILE = ...;",
                self.src.path().display()
            )));
        }
        if !seen.contains_key("VARIABLE") {
            self.diags.push(Diagnostic::error_nowhere(format!(
                "{}: no VARIABLE: command",
                self.src.path().display()
            )));
        }
        if opts.type_mixture.is_none() && opts.type_twolevel.is_none() {
            let span = seen.get("ANALYSIS").copied();
            let msg = "TYPE = MIXTURE (or TWOLEVEL) is required: mlmix fits mixture and multilevel models";
            match span {
                Some(s) => self.err_help(s, msg, "add TYPE = MIXTURE; to ANALYSIS:"),
                None => self.diags.push(
                    Diagnostic::error_nowhere(format!("{}: {msg}", self.src.path().display()))
                        .with_help("add ANALYSIS: TYPE = MIXTURE;"),
                ),
            }
        }
        // (a CLASSES statement with an error has been reported already)
        if opts.type_mixture.is_none()
            && opts.type_twolevel.is_some()
            && let Some(span) = opts.classes_span
        {
            self.err_help(
                span,
                "CLASSES needs TYPE = TWOLEVEL MIXTURE",
                "add MIXTURE to TYPE, or remove CLASSES for a two-level model without classes",
            );
        }
        if opts.type_twolevel.is_some() && opts.cluster.is_none() {
            let span = opts.type_twolevel.unwrap_or_default();
            self.err_help(
                span,
                "TYPE = TWOLEVEL needs a cluster variable",
                "name it in VARIABLE:, e.g. CLUSTER = school;",
            );
        }
        if opts.type_twolevel.is_none() {
            if let Some((_, span)) = &opts.cluster {
                self.err_help(
                    *span,
                    "CLUSTER needs TYPE = TWOLEVEL (or TWOLEVEL MIXTURE)",
                    "TYPE = COMPLEX is not supported",
                );
            }
            for toks in [opts.within, opts.between].into_iter().flatten() {
                if let Some(t) = toks.first() {
                    self.err(t.span, "WITHIN and BETWEEN need TYPE = TWOLEVEL");
                }
            }
            if let Some(span) = opts.integration_span {
                self.warn(
                    span,
                    "INTEGRATION is ignored: the model has no random effects (TYPE = TWOLEVEL)",
                );
            }
        }
        if opts.classes.is_empty() && opts.type_mixture.is_some() && opts.classes_span.is_none() {
            let span = seen
                .get("VARIABLE")
                .copied()
                .or(opts.type_mixture)
                .unwrap_or_default();
            self.err_help(
                span,
                "TYPE = MIXTURE needs a latent class variable",
                "declare one in VARIABLE:, e.g. CLASSES = c(2);",
            );
        }
        if self.diags.has_errors() && opts.file.is_none() {
            return None;
        }

        // ---- the data file
        let (file_written, file_span) = opts.file.clone()?;
        let base = self.src.path().parent().unwrap_or(Path::new(""));
        let file_path = base.join(&file_written);
        let data_src = match data::read_text(&file_path, &file_written) {
            Ok(s) => s,
            Err(d) => {
                let msg = d.message.clone();
                self.err_help(
                    file_span,
                    msg,
                    "FILE is read relative to the folder of the input file",
                );
                return None;
            }
        };
        if data_src.text().trim().is_empty() {
            self.err(file_span, format!("data file '{file_written}' is empty"));
            return None;
        }
        let header = opts.names.is_none();
        let names: Vec<String> = match &opts.names {
            Some(n) => n.iter().map(|(s, _)| s.clone()).collect(),
            None => match data::csv_header(&data_src) {
                Ok(n) => {
                    // numbers separated by commas or blanks (free format)
                    let numbers =
                        |s: &String| s.split_whitespace().all(|w| w.parse::<f64>().is_ok());
                    if n.iter().all(numbers) {
                        self.err_help(
                            file_span,
                            format!("NAMES is not given, and the first line of '{file_written}' is not a header row"),
                            "give the column names with NAMES = ...; in VARIABLE:",
                        );
                        return None;
                    }
                    if let [one] = n.as_slice()
                        && one.split_whitespace().nth(1).is_some()
                    {
                        self.err_help(
                            file_span,
                            format!("NAMES is not given, and the header row of '{file_written}' is not comma-separated"),
                            "separate the names in the first line with commas, or delete that line and give the names with NAMES = ...; in VARIABLE:",
                        );
                        return None;
                    }
                    n
                }
                Err(d) => {
                    self.diags.push(d);
                    return None;
                }
            },
        };
        let names_upper: Vec<String> = names.iter().map(|s| s.to_ascii_uppercase()).collect();
        {
            let mut seen_names: HashMap<&str, usize> = HashMap::new();
            for (i, n) in names_upper.iter().enumerate() {
                if let Some(_j) = seen_names.insert(n, i) {
                    let span = opts.names.as_ref().map_or(file_span, |v| v[i].1);
                    self.err(span, format!("variable name {} appears twice", names[i]));
                }
            }
        }

        // ---- id variable
        let id_col = self.column_of(opts.idvar.as_ref(), &names);

        // ---- cluster variable
        let cluster_col = self.column_of(opts.cluster.as_ref(), &names);

        // ---- USEVARIABLES
        let usev: Vec<usize> = match opts.usev {
            Some(toks) => self.var_list(toks, &names, false),
            None => (0..names.len())
                .filter(|&i| Some(i) != id_col && Some(i) != cluster_col)
                .collect(),
        };
        if let Some(cc) = cluster_col
            && usev.contains(&cc)
        {
            let span = opts.cluster.as_ref().map(|x| x.1).unwrap_or_default();
            self.err_help(
                span,
                format!(
                    "the CLUSTER variable {} cannot also be an analysis variable",
                    names[cc]
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
                    names[ic]
                ),
            );
        }
        let use_names: Vec<String> = usev.iter().map(|&i| names[i].clone()).collect();
        // ---- CATEGORICAL (positions within USEVARIABLES)
        let categorical: Vec<usize> = match opts.categorical {
            Some(toks) => self.var_list_within(toks, &names, &usev),
            None => Vec::new(),
        };
        // ---- MISSING
        let missing = match opts.missing {
            Some(toks) => self.missing_spec(toks, &names),
            None => MissingSpec::default(),
        };
        // ---- WITHIN and BETWEEN (positions within USEVARIABLES; BETWEEN
        // may also name class variables)
        let class_names: Vec<String> = opts.classes.iter().map(|c| c.0.clone()).collect();
        let mut between_cvs: Vec<String> = Vec::new();
        let mut level_list = |b: &mut Self,
                              toks: Option<&[Token]>,
                              is_between: bool|
         -> Vec<usize> {
            let Some(toks) = toks else {
                return Vec::new();
            };
            let mut rest: Vec<Token> = Vec::new();
            for t in toks {
                if t.kind == TokKind::Word
                    && let Some(c) = class_names.iter().find(|c| c.eq_ignore_ascii_case(&t.text))
                {
                    if is_between {
                        between_cvs.push(c.clone());
                    } else {
                        b.err_help(
                            t.span,
                            format!("{} is a class variable; class variables are within-level unless listed in BETWEEN", t.text),
                            "remove it from WITHIN",
                        );
                    }
                } else {
                    rest.push(t.clone());
                }
            }
            b.var_list_within(&rest, &names, &usev)
        };
        let within_set = level_list(self, opts.within, false);
        let between_set = level_list(self, opts.between, true);
        for &v in &within_set {
            if between_set.contains(&v) {
                let span = opts
                    .within
                    .and_then(|t| t.first())
                    .map_or(file_span, |t| t.span);
                self.err(
                    span,
                    format!("{} is in both WITHIN and BETWEEN", use_names[v]),
                );
            }
        }

        // ---- class variables
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

        // ---- MODEL statements (random slope names are names too)
        self.twolevel = opts.type_twolevel.is_some();
        let n_use = usev.len();
        let mut slope_names: Vec<String> = Vec::new();
        for sec in &model_sections {
            for st in &sec.statements {
                let t = &st.tokens;
                if t.len() > 2 && t[1].is_sym('|') && t[0].kind == TokKind::Word {
                    let n = &t[0].text;
                    if use_names
                        .iter()
                        .chain(&names)
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
        let mut names_ext = use_names.clone();
        if self.twolevel {
            names_ext.extend(slope_names.iter().cloned());
        }
        let stmts = self.model_statements(&model_sections, &names_ext, &names, &class_vars);

        // ---- structure
        let mut is_dep_used = vec![false; n_use];
        let mut is_cov_used = vec![false; n_use];
        let mut dep_cv: Vec<Option<(usize, Span)>> = vec![None; n_use];
        let mut dep_covs: Vec<Vec<usize>> = vec![Vec::new(); n_use];
        let mut covariances: Vec<(usize, usize)> = Vec::new();
        let mut mentions: Vec<Mention> = Vec::new();
        let mut slopes: Vec<(usize, usize, Span)> =
            vec![(usize::MAX, usize::MAX, file_span); slope_names.len()];
        for st in &stmts {
            if let StmtKind::RandomSlope {
                name,
                span,
                var,
                covariate,
            } = &st.kind
            {
                let Some(i) = slope_names.iter().position(|n| n == name) else {
                    continue;
                };
                if *var >= n_use || *covariate >= n_use {
                    self.err(
                        *span,
                        "a random slope is the slope of a variable on a variable",
                    );
                    continue;
                }
                if !within_set.contains(covariate) {
                    self.err_help(
                        *span,
                        format!(
                            "the random slope {name} is on {}, which is not in WITHIN",
                            use_names[*covariate]
                        ),
                        format!("list {} in VARIABLE: WITHIN = ...;", use_names[*covariate]),
                    );
                    continue;
                }
                slopes[i] = (*var, *covariate, *span);
                mentions.push(Mention {
                    target: Target::Slope {
                        var: *var,
                        covariate: *covariate,
                    },
                    block: Block::Overall,
                    level: Some(Level::Within),
                    fixed: None,
                    start: None,
                    label: None,
                    span: *span,
                });
                continue;
            }
            self.statement_targets(st, &names_ext, &categorical, &mut class_vars, &mut mentions);
        }
        // two-level: which parameters the level-specific statements mean
        let mut random: Vec<RandomEffect> = Vec::new();
        let mut cov_class_var: Option<usize> = None;
        if self.twolevel {
            mentions = self.two_level_targets(
                mentions,
                TwoLevelNames {
                    use_names: &use_names,
                    slope_names: &slope_names,
                    slopes: &slopes,
                    within: &within_set,
                    between: &between_set,
                    categorical: &categorical,
                },
                &class_vars,
                &mut random,
                &mut cov_class_var,
            );
        }
        // a class logit regressed on a random effect (`c#1 ON y`) or on
        // another random class logit intercept on the between level is a
        // regression among random effects, not a covariate or parent of the
        // class variable
        if self.twolevel {
            for (cv, c) in class_vars.iter_mut().enumerate() {
                c.covariates.retain(|&x| {
                    mentions.iter().any(|m| {
                        matches!(m.target, Target::ClassSlope { cv: c2, covariate, .. } if c2 == cv && covariate == x)
                    })
                });
                c.parents.retain(|&p| {
                    mentions.iter().any(|m| {
                        matches!(m.target, Target::ClassOnClass { cv: c2, parent, .. } if c2 == cv && parent == p)
                    })
                });
            }
        }
        // every declared random slope is random (its variance is free unless
        // the between level says otherwise)
        if self.twolevel {
            for (i, &(y, x, _)) in slopes.iter().enumerate() {
                let kind = RandomKind::Slope {
                    var: y,
                    covariate: x,
                };
                if y != usize::MAX && !random.iter().any(|r| r.kind == kind) {
                    random.push(RandomEffect {
                        name: slope_names[i].clone(),
                        kind,
                    });
                }
            }
        }
        // a random slope's name stands for nothing else
        let mut bad_slope = Vec::new();
        mentions.retain(|m| {
            let vars: Vec<usize> = match m.target {
                Target::Threshold { var, .. } | Target::Mean { var } | Target::Variance { var } => {
                    vec![var]
                }
                Target::Slope { var, covariate } => vec![var, covariate],
                Target::Covariance { a, b } => vec![a, b],
                Target::ClassSlope { covariate, .. } => vec![covariate],
                _ => Vec::new(),
            };
            let ok = vars.iter().all(|&v| v < n_use);
            if !ok {
                bad_slope.push(m.span);
            }
            ok
        });
        for span in bad_slope {
            self.err(span, "a random slope cannot be used here");
        }
        // roles
        let re_var = |re: usize| match random[re].kind {
            RandomKind::Intercept { var } | RandomKind::Slope { var, .. } => Some(var),
            RandomKind::ClassIntercept { .. } => None,
        };
        for m in &mentions {
            match m.target {
                Target::RandomVariance { re } | Target::RandomCovariance { a: re, .. } => {
                    if let Some(var) = re_var(re) {
                        is_dep_used[var] = true;
                    }
                }
                Target::RandomRegression { re, on } => {
                    for var in [re_var(re), re_var(on)].into_iter().flatten() {
                        is_dep_used[var] = true;
                    }
                }
                Target::RandomSlopeOn { re, covariate } => {
                    if let Some(var) = re_var(re) {
                        is_dep_used[var] = true;
                    }
                    is_cov_used[covariate] = true;
                }
                Target::OnClassIntercept { .. } => {}
                Target::ClassVariance { .. } => {}
                Target::Threshold { var, .. } | Target::Mean { var } | Target::Variance { var } => {
                    is_dep_used[var] = true
                }
                Target::Slope { var, covariate } => {
                    is_dep_used[var] = true;
                    is_cov_used[covariate] = true;
                    if !dep_covs[var].contains(&covariate) {
                        dep_covs[var].push(covariate);
                    }
                }
                Target::Covariance { a, b } => {
                    is_dep_used[a] = true;
                    is_dep_used[b] = true;
                    if !covariances.contains(&(a, b)) {
                        covariances.push((a, b));
                    }
                }
                Target::ClassSlope { covariate, .. } => is_cov_used[covariate] = true,
                Target::ClassIntercept { .. } | Target::ClassOnClass { .. } => {}
            }
            if let Block::Class(cv, _) = m.block {
                let var = match m.target {
                    Target::Threshold { var, .. }
                    | Target::Mean { var }
                    | Target::Variance { var }
                    | Target::Slope { var, .. } => Some(var),
                    Target::Covariance { a, .. } => Some(a),
                    Target::RandomSlopeOn { re, .. } => re_var(re),
                    _ => None,
                };
                let vars: Vec<usize> = match m.target {
                    Target::Covariance { a, b } => vec![a, b],
                    _ => var.into_iter().collect(),
                };
                for v in vars {
                    match dep_cv[v] {
                        None => dep_cv[v] = Some((cv, m.span)),
                        Some((c0, _)) if c0 != cv => {
                            self.err_help(
                                m.span,
                                format!(
                                    "{} is given class-specific parameters for both {} and {}",
                                    use_names[v], class_vars[c0].name, class_vars[cv].name
                                ),
                                "a dependent variable is measured by one class variable; parameters that vary over combinations of classes are not supported yet",
                            );
                        }
                        _ => {}
                    }
                }
            }
        }
        for v in 0..n_use {
            if is_dep_used[v] && is_cov_used[v] {
                let span = mentions
                    .iter()
                    .find(|m| matches!(m.target, Target::Slope { covariate, .. } | Target::ClassSlope { covariate, .. } | Target::RandomSlopeOn { covariate, .. } if covariate == v))
                    .map_or(file_span, |m| m.span);
                self.err_help(
                    span,
                    format!(
                        "{} is both a dependent variable and a covariate",
                        use_names[v]
                    ),
                    "regressions among dependent variables are not supported yet",
                );
            }
            if is_cov_used[v] && categorical.contains(&v) {
                let span = mentions
                    .iter()
                    .find(|m| matches!(m.target, Target::Slope { covariate, .. } | Target::ClassSlope { covariate, .. } if covariate == v))
                    .map_or(file_span, |m| m.span);
                self.err_help(
                    span,
                    format!("{} is CATEGORICAL but is used as a covariate", use_names[v]),
                    "covariates are taken as they are (use 0/1 dummies); remove it from CATEGORICAL",
                );
            }
        }
        for &(a, b) in &covariances {
            for v in [a, b] {
                if categorical.contains(&v) {
                    let span = mentions
                        .iter()
                        .find(|m| m.target == Target::Covariance { a, b })
                        .map_or(file_span, |m| m.span);
                    self.err_help(
                        span,
                        format!(
                            "WITH between categorical variables ({}) is not supported",
                            use_names[v]
                        ),
                        "residual covariances are for continuous dependent variables",
                    );
                }
            }
        }
        let roles: Vec<bool> = (0..n_use).map(|v| !is_cov_used[v]).collect(); // true = dependent
        let deps: Vec<usize> = (0..n_use).filter(|&v| roles[v]).collect();
        if self.twolevel {
            for v in 0..n_use {
                let lists = within_set.contains(&v) || between_set.contains(&v);
                if roles[v]
                    && !lists
                    && !random
                        .iter()
                        .any(|r| r.kind == RandomKind::Intercept { var: v })
                {
                    // a within-level dependent with a between-level part:
                    // its intercept is random (Mplus's default)
                    random.push(RandomEffect {
                        name: use_names[v].clone(),
                        kind: RandomKind::Intercept { var: v },
                    });
                }
                if !roles[v] && !lists {
                    let span = mentions
                        .iter()
                        .find(|m| matches!(m.target, Target::Slope { covariate, .. } | Target::ClassSlope { covariate, .. } if covariate == v))
                        .map_or(file_span, |m| m.span);
                    self.err_help(
                        span,
                        format!(
                            "the covariate {} must be listed in WITHIN or BETWEEN",
                            use_names[v]
                        ),
                        "splitting a covariate into within and between parts is not supported yet",
                    );
                }
            }
            for (v, cv) in class_vars.iter().enumerate() {
                if cv.between {
                    for &x in &cv.covariates {
                        if !between_set.contains(&x) {
                            self.err(
                                opts.classes_span.unwrap_or(file_span),
                                format!("{} is a between-level class variable; its covariate {} must be in BETWEEN", cv.name, use_names[x]),
                            );
                        }
                    }
                    let _ = v;
                }
            }
        }
        if deps.is_empty() && !self.diags.has_errors() {
            self.err(file_span, "the model has no dependent variables");
        }
        // class variable of each dependent
        let mut dep_class: Vec<Option<usize>> = vec![None; n_use];
        let between_cvs_idx: Vec<usize> = (0..class_vars.len())
            .filter(|&c| class_vars[c].between)
            .collect();
        for &v in &deps {
            if between_set.contains(&v) {
                // a between-level dependent is measured by a between-level
                // class variable (or none)
                dep_class[v] = match dep_cv[v] {
                    Some((cv, span)) if !class_vars[cv].between => {
                        self.err_help(
                            span,
                            format!(
                                "{} is a BETWEEN variable: its parameters can vary only across the classes of a between-level class variable",
                                use_names[v]
                            ),
                            format!("{} is a within-level class variable", class_vars[cv].name),
                        );
                        None
                    }
                    Some((cv, _)) => Some(cv),
                    None if between_cvs_idx.len() == 1 => Some(between_cvs_idx[0]),
                    None => None,
                };
                continue;
            }
            dep_class[v] = match (dep_cv[v], class_vars.len()) {
                (Some((cv, _)), _) => Some(cv),
                (None, 1) => Some(0),
                (None, 0) => None,
                (None, _) => {
                    let span = mentions
                        .iter()
                        .find(|m| matches!(m.target, Target::Threshold{var,..} | Target::Mean{var} | Target::Variance{var} if var == v))
                        .map_or(opts.classes_span.unwrap_or(file_span), |m| m.span);
                    self.err_help(
                        span,
                        format!(
                            "with several class variables, say which one measures {}",
                            use_names[v]
                        ),
                        format!(
                            "mention its thresholds or mean in a class block, e.g. MODEL {}: %{}#1% [{}{}];",
                            class_vars[0].name,
                            class_vars[0].name,
                            use_names[v],
                            if categorical.contains(&v) { "$1" } else { "" }
                        ),
                    );
                    None
                }
            };
        }
        for &(a, b) in &covariances {
            if dep_class[a] != dep_class[b] {
                let span = mentions
                    .iter()
                    .find(|m| m.target == Target::Covariance { a, b })
                    .map_or(file_span, |m| m.span);
                self.err(
                    span,
                    format!(
                        "{} and {} are measured by different class variables; their covariance is not supported",
                        use_names[a], use_names[b]
                    ),
                );
            }
        }
        if self.diags.has_errors() {
            return None;
        }

        // ---- read the data (the cluster ids as a last column)
        let mut wanted: Vec<usize> = usev.clone();
        if self.twolevel
            && let Some(cc) = cluster_col
        {
            wanted.push(cc);
        }
        let req = ReadRequest {
            names: &names,
            header,
            wanted: &wanted,
            id: id_col,
            missing: &missing,
        };
        let raw = match data::read(&data_src, &req) {
            Ok(r) => r,
            Err(d) => {
                self.diags.push(d);
                return None;
            }
        };
        if let Some((n, span)) = opts.nobs
            && n != raw.n_rows()
        {
            self.err(
                span,
                format!(
                    "NOBSERVATIONS = {n} but the data file has {} rows",
                    raw.n_rows()
                ),
            );
        }
        if self.twolevel
            && let Some(cc) = cluster_col
        {
            let col = &raw.columns[n_use];
            if let Some(r) = col.iter().position(|x| x.is_nan()) {
                let span = data::field_span(&data_src, raw.lines[r], cc, header);
                self.diags.push(
                    Diagnostic::error(
                        &data_src,
                        span,
                        format!("the cluster id ({}) is missing", names[cc]),
                    )
                    .with_help("every row needs a cluster id; remove the row or give it one"),
                );
                return None;
            }
        }
        let mut dataset = self.prepare_data(
            &data_src,
            raw,
            &usev,
            &use_names,
            &roles,
            &categorical,
            opts.listwise,
            header,
        )?;
        if self.twolevel {
            dataset.clusters = dataset.columns.pop();
            // BETWEEN variables are constant within each cluster
            if let Some(cl) = &dataset.clusters {
                let show = |x: f64| {
                    if x.is_nan() {
                        "missing".to_string()
                    } else {
                        x.to_string()
                    }
                };
                for &v in &between_set {
                    let mut first: HashMap<u64, (f64, usize)> = HashMap::new();
                    for (r, (&x, &c)) in dataset.columns[v].iter().zip(cl).enumerate() {
                        let e = first
                            .entry((c + 0.0).to_bits())
                            .or_insert((x, dataset.lines[r]));
                        let differ = if x.is_nan() { !e.0.is_nan() } else { e.0 != x };
                        if differ {
                            let span =
                                data::field_span(&data_src, dataset.lines[r], usev[v], header);
                            self.diags.push(
                                Diagnostic::error(
                                    &data_src,
                                    span,
                                    format!(
                                        "{} is a BETWEEN variable but varies within cluster {c}: it is {} on line {} and {} here",
                                        use_names[v], show(e.0), e.1, show(x)
                                    ),
                                )
                                .with_help("a BETWEEN variable takes one value per cluster; list it in WITHIN if it varies"),
                            );
                            return None;
                        }
                    }
                }
            }
        }

        // ---- variables
        let mut variables: Vec<Variable> = Vec::with_capacity(n_use);
        for v in 0..n_use {
            let role = if roles[v] {
                let scale = if categorical.contains(&v) {
                    Scale::Categorical {
                        categories: self.categories_of(&data_src, &dataset, v, &use_names)?,
                    }
                } else {
                    Scale::Continuous
                };
                Role::Dependent(Dependent {
                    scale,
                    class_var: dep_class[v],
                    covariates: dep_covs[v].clone(),
                })
            } else {
                Role::Covariate
            };
            variables.push(Variable {
                name: use_names[v].clone(),
                role,
                between: between_set.contains(&v),
            });
        }
        // recode categorical columns to category indices
        for (v, var) in variables.iter().enumerate() {
            if let Role::Dependent(Dependent {
                scale: Scale::Categorical { categories },
                ..
            }) = &var.role
            {
                for x in dataset.columns[v].iter_mut() {
                    if !x.is_nan() {
                        *x = categories
                            .iter()
                            .position(|c| c == x)
                            .map_or(f64::NAN, |i| i as f64);
                    }
                }
            }
        }
        covariances.iter_mut().for_each(|p| {
            if p.0 > p.1 {
                *p = (p.1, p.0)
            }
        });
        covariances.sort_unstable();
        covariances.dedup();

        let mut model = Model {
            title,
            input_file: self.src.path().to_path_buf(),
            data: DataSpec {
                file: file_path,
                file_as_written: file_written,
                names: opts
                    .names
                    .as_ref()
                    .map(|v| v.iter().map(|x| x.0.clone()).collect()),
                missing,
                listwise: opts.listwise,
            },
            variables,
            id_variable: id_col.map(|i| names[i].clone()),
            class_vars,
            covariances,
            parameters: Vec::new(),
            free: Vec::new(),
            analysis: opts.analysis.clone(),
            output: opts.output.clone(),
            savedata: opts.save_file.as_ref().map(|(f, _)| SaveData {
                file: base.join(f),
                file_as_written: f.clone(),
                cprobabilities: opts.save_cprob,
                missflag: opts.missflag.clone().unwrap_or_else(|| "*".to_string()),
            }),
            two_level: self.twolevel.then(|| TwoLevel {
                cluster: cluster_col.map(|c| names[c].clone()).unwrap_or_default(),
                random: random.clone(),
                cov_class_var,
                integration: opts.integration,
            }),
        };
        if let Some((_, span)) = &opts.save_file {
            if !opts.save_cprob {
                self.warn(
                    *span,
                    "SAVEDATA: FILE is given without SAVE = CPROBABILITIES; nothing will be saved",
                );
            }
        } else if opts.save_cprob {
            self.diags.push(Diagnostic::warning_nowhere(
                "SAVE = CPROBABILITIES needs SAVEDATA: FILE = ...; nothing will be saved",
            ));
        }
        self.parameters(&mut model, &mentions);
        if self.diags.has_errors() {
            return None;
        }
        self.random_structure(&model, &mentions);
        if self.diags.has_errors() {
            return None;
        }
        Some((model, dataset))
    }

    /// Reports the combinations of random effects, regressions among them
    /// and class-specific parameters the engine does not handle (the same
    /// list the engine refuses), at the statements that caused them.
    fn random_structure(&mut self, model: &Model, mentions: &[Mention]) {
        let cov = model.two_level.as_ref().and_then(|t| t.cov_class_var);
        for issue in model.random_structure_issues() {
            let span = mentions
                .iter()
                .find(|m| match issue.at {
                    IssueAt::ClassSpecificCovariance => {
                        matches!(
                            m.target,
                            Target::RandomVariance { .. }
                                | Target::RandomCovariance { .. }
                                | Target::RandomRegression { .. }
                        ) && matches!(m.block, Block::Class(cv, _) if Some(cv) == cov)
                    }
                    IssueAt::Regression { re, on } => {
                        m.target == Target::RandomRegression { re, on }
                    }
                })
                .map(|m| m.span);
            let help = issue.help;
            let msg = format!("not supported yet: {}", issue.message);
            match span {
                Some(span) => self.err_help(span, msg, help),
                None => self
                    .diags
                    .push(Diagnostic::error_nowhere(msg).with_help(help)),
            }
        }
    }

    /// Rewrites the mentions of a two-level model by level: on the between
    /// level a variable alone is its random intercept's variance, `[s]` is
    /// the mean of random slope `s` (the slope `y ON x`), `c#1` alone is a
    /// random class logit intercept; checks that each statement is on a
    /// level where its variables live. Creates the random effects met.
    fn two_level_targets(
        &mut self,
        mentions: Vec<Mention>,
        n: TwoLevelNames<'_>,
        cvs: &[ClassVar],
        random: &mut Vec<RandomEffect>,
        cov_class_var: &mut Option<usize>,
    ) -> Vec<Mention> {
        let n_use = n.use_names.len();
        let name = |v: usize| -> String {
            if v < n_use {
                n.use_names[v].clone()
            } else {
                n.slope_names[v - n_use].clone()
            }
        };
        let slope = |v: usize| (v >= n_use).then(|| v - n_use);
        let is_w = |v: usize| n.within.contains(&v);
        let is_b = |v: usize| n.between.contains(&v);
        fn add_re(random: &mut Vec<RandomEffect>, kind: RandomKind, nm: String) -> usize {
            match random.iter().position(|r| r.kind == kind) {
                Some(i) => i,
                None => {
                    random.push(RandomEffect { name: nm, kind });
                    random.len() - 1
                }
            }
        }
        // variables met as dependents (a name in neither WITHIN nor BETWEEN
        // on the right of a between-level ON is then the random intercept
        // of a dependent, not a covariate), and the random class logit
        // intercepts stated on the between level
        let mut dep_seen = vec![false; n_use];
        for &v in n.categorical {
            if v < n_use {
                dep_seen[v] = true;
            }
        }
        let mut class_re: Vec<(usize, usize)> = Vec::new();
        for m in &mentions {
            match m.target {
                Target::Threshold { var, .. }
                | Target::Mean { var }
                | Target::Variance { var }
                | Target::Slope { var, .. }
                    if var < n_use =>
                {
                    dep_seen[var] = true;
                }
                Target::Covariance { a, b } => {
                    for v in [a, b] {
                        if v < n_use {
                            dep_seen[v] = true;
                        }
                    }
                }
                Target::ClassVariance { cv, class } if m.level == Some(Level::Between) => {
                    class_re.push((cv, class));
                }
                _ => {}
            }
        }
        let is_re_name =
            |v: usize| slope(v).is_some() || (v < n_use && !is_w(v) && !is_b(v) && dep_seen[v]);
        let mut out = Vec::with_capacity(mentions.len());
        for mut m in mentions {
            let span = m.span;
            let lv = m.level;
            // the random effect a between-level name stands for, if any
            let re_of = |b: &mut Self, random: &mut Vec<RandomEffect>, v: usize| -> Option<usize> {
                if let Some(i) = slope(v) {
                    let (y, x, _) = n.slopes[i];
                    if y == usize::MAX {
                        return None;
                    }
                    return Some(add_re(
                        random,
                        RandomKind::Slope {
                            var: y,
                            covariate: x,
                        },
                        name(v),
                    ));
                }
                if is_w(v) {
                    b.err_help(
                        span,
                        format!(
                            "{} is a WITHIN variable: it has no between-level part",
                            name(v)
                        ),
                        "remove it from WITHIN to give it a random intercept",
                    );
                    return None;
                }
                Some(add_re(random, RandomKind::Intercept { var: v }, name(v)))
            };
            let class_intercept = |random: &mut Vec<RandomEffect>, cv: usize, class: usize| {
                add_re(
                    random,
                    RandomKind::ClassIntercept { cv, class },
                    format!("{}#{}", cvs[cv].name, class + 1),
                )
            };
            let target = match (lv, m.target) {
                (Some(Level::Between), Target::Variance { var }) if is_b(var) => m.target,
                (Some(Level::Between), Target::Variance { var }) => {
                    let Some(r) = re_of(self, random, var) else {
                        continue;
                    };
                    Target::RandomVariance { re: r }
                }
                (Some(Level::Between), Target::Mean { var }) if slope(var).is_some() => {
                    let (y, x, _) = n.slopes[var - n_use];
                    if y == usize::MAX {
                        continue;
                    }
                    Target::Slope {
                        var: y,
                        covariate: x,
                    }
                }
                (Some(Level::Between), Target::Mean { var } | Target::Threshold { var, .. })
                    if is_w(var) =>
                {
                    self.err_help(
                        span,
                        format!(
                            "{} is a WITHIN variable: its intercept is a within-level parameter",
                            name(var)
                        ),
                        "write it in %WITHIN%",
                    );
                    continue;
                }
                (Some(Level::Between), Target::Slope { var, covariate }) => {
                    if is_w(var) {
                        self.err(
                            span,
                            format!(
                                "{} is a WITHIN variable: it has no between-level part",
                                name(var)
                            ),
                        );
                        continue;
                    }
                    if is_re_name(covariate) {
                        // one random effect regressed on another
                        if is_b(var) {
                            self.err_help(
                                span,
                                format!(
                                    "regressing the BETWEEN variable {} on the random effect {} is not supported yet",
                                    name(var),
                                    name(covariate)
                                ),
                                "between-level observed variables can be regressed on BETWEEN covariates",
                            );
                            continue;
                        }
                        let (Some(a), Some(b)) =
                            (re_of(self, random, var), re_of(self, random, covariate))
                        else {
                            continue;
                        };
                        Target::RandomRegression { re: a, on: b }
                    } else if !is_b(covariate) {
                        self.err_help(
                            span,
                            format!("{} is not a BETWEEN variable: between-level regressions are on cluster-level covariates", name(covariate)),
                            format!("list {} in BETWEEN, or regress on it in %WITHIN%", name(covariate)),
                        );
                        continue;
                    } else if slope(var).is_some() {
                        // the random slope's mean varies with a cluster-level
                        // covariate: a cross-level interaction
                        let Some(a) = re_of(self, random, var) else {
                            continue;
                        };
                        Target::RandomSlopeOn { re: a, covariate }
                    } else {
                        m.target
                    }
                }
                (Some(Level::Between), Target::OnClassIntercept { var, cv, class }) => {
                    if is_b(var) {
                        self.err_help(
                            span,
                            format!(
                                "regressing the BETWEEN variable {} on the random effect {}#{} is not supported yet",
                                name(var),
                                cvs[cv].name,
                                class + 1
                            ),
                            "between-level observed variables can be regressed on BETWEEN covariates",
                        );
                        continue;
                    }
                    let Some(a) = re_of(self, random, var) else {
                        continue;
                    };
                    let b = class_intercept(random, cv, class);
                    Target::RandomRegression { re: a, on: b }
                }
                (
                    Some(Level::Between),
                    Target::ClassSlope {
                        cv,
                        class: Some(k),
                        covariate,
                    },
                ) if is_re_name(covariate) => {
                    if cvs[cv].between {
                        self.err_help(
                            span,
                            format!(
                                "regressing the between-level class variable {} on the random effect {} is not supported yet",
                                cvs[cv].name,
                                name(covariate)
                            ),
                            "between-level class variables can be regressed on BETWEEN covariates",
                        );
                        continue;
                    }
                    let a = class_intercept(random, cv, k);
                    let Some(b) = re_of(self, random, covariate) else {
                        continue;
                    };
                    Target::RandomRegression { re: a, on: b }
                }
                (
                    Some(Level::Between),
                    Target::ClassOnClass {
                        cv,
                        class: Some(k),
                        parent,
                        parent_class: Some(j),
                    },
                ) if !cvs[cv].between && class_re.contains(&(parent, j)) => {
                    // between the random logit intercepts (eq 15)
                    let b = class_intercept(random, parent, j);
                    let a = class_intercept(random, cv, k);
                    Target::RandomRegression { re: a, on: b }
                }
                (Some(Level::Between), Target::Covariance { a, b }) => {
                    if is_b(a) && is_b(b) {
                        m.target
                    } else if is_b(a) || is_b(b) {
                        self.err(span, "covariances between random effects and between-level observed variables are not supported yet");
                        continue;
                    } else {
                        let (Some(ra), Some(rb)) = (re_of(self, random, a), re_of(self, random, b))
                        else {
                            continue;
                        };
                        Target::RandomCovariance {
                            a: ra.min(rb),
                            b: ra.max(rb),
                        }
                    }
                }
                (Some(Level::Between), Target::ClassVariance { cv, class }) => {
                    if cvs[cv].between {
                        self.err(span, format!("{} is a between-level class variable: its logits have no random intercepts", cvs[cv].name));
                        continue;
                    }
                    let r = class_intercept(random, cv, class);
                    Target::RandomVariance { re: r }
                }
                (Some(Level::Between), Target::ClassSlope { covariate, .. })
                    if !is_b(covariate) =>
                {
                    self.err_help(
                        span,
                        format!("{} is not a BETWEEN variable: between-level regressions are on cluster-level covariates", name(covariate)),
                        "regress the class variable on within-level covariates in %WITHIN%",
                    );
                    continue;
                }
                (Some(Level::Within), t) => {
                    let vars: Vec<usize> = match t {
                        Target::Threshold { var, .. }
                        | Target::Mean { var }
                        | Target::Variance { var } => vec![var],
                        Target::Slope { var, covariate } => vec![var, covariate],
                        Target::Covariance { a, b } => vec![a, b],
                        Target::ClassSlope { covariate, .. } => vec![covariate],
                        _ => Vec::new(),
                    };
                    if let Some(&v) = vars.iter().find(|&&v| slope(v).is_some()) {
                        self.err_help(
                            span,
                            format!("{} is a random slope: its mean, variance and regressions are between-level parameters", name(v)),
                            "write them in %BETWEEN%",
                        );
                        continue;
                    }
                    if let Some(&v) = vars.iter().find(|&&v| is_b(v)) {
                        self.err_help(
                            span,
                            format!(
                                "{} is a BETWEEN variable: it has no within-level part",
                                name(v)
                            ),
                            "write statements about it in %BETWEEN%",
                        );
                        continue;
                    }
                    match t {
                        Target::Mean { var } | Target::Threshold { var, .. } if !is_w(var) => {
                            self.err_help(
                                span,
                                format!("the intercept of {} is random: its mean is a between-level parameter", name(var)),
                                format!("write [{}] in %BETWEEN%, or list {} in WITHIN for a fixed intercept", name(var), name(var)),
                            );
                            continue;
                        }
                        Target::ClassSlope { cv, .. } | Target::ClassOnClass { cv, .. }
                            if cvs[cv].between =>
                        {
                            self.err_help(
                                span,
                                format!("{} is a between-level class variable: its regressions go in %BETWEEN%", cvs[cv].name),
                                "write them in %BETWEEN%",
                            );
                            continue;
                        }
                        _ => {}
                    }
                    t
                }
                (_, t) => t,
            };
            if let (
                Target::RandomVariance { .. }
                | Target::RandomCovariance { .. }
                | Target::RandomRegression { .. },
                Block::Class(cv, _),
            ) = (target, m.block)
            {
                let what = if matches!(target, Target::RandomRegression { .. }) {
                    ("regressions among random effects", "state the regression")
                } else {
                    ("random-effect variances", "state the variance")
                };
                if !cvs[cv].between {
                    self.err_help(
                        span,
                        format!(
                            "{} can vary only across the classes of a between-level class variable",
                            what.0
                        ),
                        format!(
                            "{} is a within-level class variable; {} in %OVERALL%",
                            cvs[cv].name, what.1
                        ),
                    );
                    continue;
                }
                match *cov_class_var {
                    None => *cov_class_var = Some(cv),
                    Some(c) if c != cv => {
                        self.err(
                            span,
                            format!(
                                "{} can vary across the classes of one class variable only",
                                what.0
                            ),
                        );
                        continue;
                    }
                    _ => {}
                }
            }
            if let Target::ClassOnClass { cv, parent, .. } = target
                && cvs[parent].between != cvs[cv].between
                && cvs[cv].between
            {
                self.err(
                    span,
                    format!(
                        "a between-level class variable ({}) cannot depend on a within-level one",
                        cvs[cv].name
                    ),
                );
                continue;
            }
            m.target = target;
            out.push(m);
        }
        out
    }

    /// The data column an option names (IDVARIABLE, CLUSTER), reporting an
    /// unknown name.
    fn column_of(&mut self, opt: Option<&(String, Span)>, names: &[String]) -> Option<usize> {
        let (n, span) = opt?;
        let found = names.iter().position(|x| x.eq_ignore_ascii_case(n));
        if found.is_none() {
            self.unknown_name(*span, n, names, &[]);
        }
        found
    }

    fn unknown_name(&mut self, span: Span, name: &str, universe: &[String], extra: &[String]) {
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

    // ---------------------------------------------------------------- DATA
    fn data_section(&mut self, sec: &Section, opts: &mut Options<'_>) {
        for st in &sec.statements {
            let Some(o) = self.option(st, "DATA", DATA_OPTS) else {
                continue;
            };
            let (key, os) = o;
            match key {
                "FILE" => {
                    // the raw text after FILE [IS|ARE|=]
                    let raw = self.src.slice(Span::new(
                        os.values.first().map_or(st.span.end, |t| t.span.start),
                        st.span.end,
                    ));
                    let raw = raw.trim().trim_matches('"').trim().to_string();
                    if raw.is_empty() {
                        self.err(st.span, "FILE needs a file name");
                    } else {
                        opts.file = Some((raw, st.span));
                    }
                }
                "FORMAT" if !(os.values.len() == 1 && os.values[0].is_word("FREE")) => {
                    self.err_help(
                            st.span,
                            "only FORMAT = FREE is supported",
                            "fixed-format data are not supported yet; write the data with blanks or commas between values",
                        );
                }
                "TYPE" if !(os.values.len() == 1 && os.values[0].is_word("INDIVIDUAL")) => {
                    self.err(
                        st.span,
                        "only individual data (TYPE = INDIVIDUAL) are supported",
                    );
                }
                "LISTWISE" => match os.values.first() {
                    Some(t) if t.is_word("ON") => opts.listwise = true,
                    Some(t) if t.is_word("OFF") => opts.listwise = false,
                    _ => self.err(st.span, "LISTWISE is ON or OFF"),
                },
                "NOBSERVATIONS" => match os.values.first().and_then(Token::number) {
                    Some(n) if n >= 1.0 && n.fract() == 0.0 => {
                        opts.nobs = Some((n as usize, st.span))
                    }
                    _ => self.err(st.span, "NOBSERVATIONS needs a positive whole number"),
                },
                _ => {}
            }
        }
    }

    /// Matches an option statement's key; reports unknown and unsupported
    /// options. Returns the canonical key for supported ones.
    fn option<'t>(
        &mut self,
        st: &'t Statement,
        command: &str,
        table: &[(&'static str, Support)],
    ) -> Option<(&'static str, OptStmt<'t>)> {
        if let Some(m) = &st.marker {
            self.err(st.span, format!("%{m}% is only allowed in MODEL:"));
            return None;
        }
        let os = split_option(st)?;
        if os.first.kind != TokKind::Word {
            self.err(
                os.key_span,
                format!("expected an option name in {command}:"),
            );
            return None;
        }
        match match_key(&os.key, table) {
            Ok(&(name, Support::Yes)) => {
                if os.values.is_empty() && !matches!(name, "LISTWISE") {
                    self.err(st.span, format!("{name} needs a value"));
                    return None;
                }
                Some((name, os))
            }
            Ok(&(name, Support::NoModel(what))) => {
                self.err(os.key_span, format!("{name} is not supported yet ({what})"));
                None
            }
            Ok(&(name, Support::NoOutput)) => {
                self.warn(
                    os.key_span,
                    format!("{name} is not supported yet; the request is ignored"),
                );
                None
            }
            Ok(&(name, Support::Ignored(why))) => {
                self.warn(os.key_span, format!("{name} is ignored: {why}"));
                None
            }
            Err(cands) => {
                let mut d = Diagnostic::error(
                    self.src,
                    os.key_span,
                    format!("unknown option '{}' in {command}:", os.key),
                );
                if let Some(s) = suggest(&os.key, cands) {
                    d = d.with_help(format!("did you mean {s}?"));
                }
                self.diags.push(d);
                None
            }
        }
    }

    // ------------------------------------------------------------ VARIABLE
    fn variable_section<'a>(&mut self, sec: &'a Section, opts: &mut Options<'a>) {
        for st in &sec.statements {
            let Some((key, os)) = self.option(st, "VARIABLE", VARIABLE_OPTS) else {
                continue;
            };
            match key {
                "NAMES" => opts.names = Some(self.name_list(os.values)),
                "USEVARIABLES" => opts.usev = Some(os.values),
                "CATEGORICAL" => opts.categorical = Some(os.values),
                "MISSING" => opts.missing = Some(os.values),
                "IDVARIABLE" => match os.values {
                    [t] if t.kind == TokKind::Word => opts.idvar = Some((t.text.clone(), t.span)),
                    _ => self.err(st.span, "IDVARIABLE needs one variable name"),
                },
                "CLUSTER" => match os.values {
                    [t] if t.kind == TokKind::Word => opts.cluster = Some((t.text.clone(), t.span)),
                    _ => self.err_help(
                        st.span,
                        "CLUSTER needs one variable name",
                        "two-level models have one cluster variable (three-level models are not supported)",
                    ),
                },
                "WITHIN" => opts.within = Some(os.values),
                "BETWEEN" => opts.between = Some(os.values),
                "CLASSES" => {
                    opts.classes_span = Some(st.span);
                    let v = os.values;
                    let mut i = 0;
                    while i < v.len() {
                        let ok = v[i].kind == TokKind::Word
                            && i + 3 < v.len()
                            && v[i + 1].is_sym('(')
                            && v[i + 3].is_sym(')');
                        if !ok {
                            self.err_help(
                                v[i].span.to(v[v.len() - 1].span),
                                "CLASSES is written as name(number of classes)",
                                "for example CLASSES = c(3); or CLASSES = c1(2) c2(2);",
                            );
                            break;
                        }
                        match v[i + 2].number() {
                            Some(k) if k >= 1.0 && k.fract() == 0.0 && k <= 100.0 => {
                                if v[i].text.contains(['#', '$', '.']) {
                                    self.err(
                                        v[i].span,
                                        "a class variable name cannot contain #, $ or .",
                                    );
                                }
                                opts.classes.push((
                                    v[i].text.clone(),
                                    k as usize,
                                    v[i].span.to(v[i + 3].span),
                                ))
                            }
                            _ => self.err(
                                v[i + 2].span,
                                "the number of classes must be a whole number from 1 to 100",
                            ),
                        }
                        i += 4;
                    }
                }
                _ => {}
            }
        }
    }

    /// NAMES: words and `u1-u10` ranges generated from numeric suffixes.
    fn name_list(&mut self, toks: &[Token]) -> Vec<(String, Span)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let t = &toks[i];
            if t.kind != TokKind::Word {
                self.err(
                    t.span,
                    format!("expected a variable name, found '{}'", t.text),
                );
                i += 1;
                continue;
            }
            if i + 2 < toks.len() && toks[i + 1].is_sym('-') && toks[i + 2].kind == TokKind::Word {
                let a = &t.text;
                let b = &toks[i + 2].text;
                let span = t.span.to(toks[i + 2].span);
                match (split_suffix(a), split_suffix(b)) {
                    (Some((pa, na, wa)), Some((pb, nb, _))) if pa.eq_ignore_ascii_case(pb) && na <= nb => {
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
                i += 3;
            } else {
                if t.text.contains(['#', '$']) {
                    self.err(
                        t.span,
                        format!("variable name {} cannot contain # or $", t.text),
                    );
                }
                out.push((t.text.clone(), t.span));
                i += 1;
            }
        }
        out
    }

    /// A variable list whose ranges follow the order of `universe`.
    fn var_list(&mut self, toks: &[Token], universe: &[String], _allow: bool) -> Vec<usize> {
        let mut out = Vec::new();
        let mut i = 0;
        let find = |n: &str| universe.iter().position(|u| u.eq_ignore_ascii_case(n));
        while i < toks.len() {
            let t = &toks[i];
            if t.kind != TokKind::Word {
                self.err(
                    t.span,
                    format!("expected a variable name, found '{}'", t.text),
                );
                i += 1;
                continue;
            }
            if i + 2 < toks.len() && toks[i + 1].is_sym('-') && toks[i + 2].kind == TokKind::Word {
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
    fn var_list_within(&mut self, toks: &[Token], names: &[String], usev: &[usize]) -> Vec<usize> {
        let use_names: Vec<String> = usev.iter().map(|&i| names[i].clone()).collect();
        let mut out = Vec::new();
        // check each plain name first for a better message
        for t in toks.iter().filter(|t| t.kind == TokKind::Word) {
            if !use_names.iter().any(|u| u.eq_ignore_ascii_case(&t.text))
                && names.iter().any(|u| u.eq_ignore_ascii_case(&t.text))
            {
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

    fn missing_spec(&mut self, toks: &[Token], names: &[String]) -> MissingSpec {
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

    // ------------------------------------------------------------ ANALYSIS
    fn analysis_section(&mut self, sec: &Section, opts: &mut Options<'_>) {
        for st in &sec.statements {
            let Some((key, os)) = self.option(st, "ANALYSIS", ANALYSIS_OPTS) else {
                continue;
            };
            let v = os.values;
            let whole = |t: &Token| t.number().filter(|x| *x >= 0.0 && x.fract() == 0.0);
            match key {
                "TYPE" => {
                    let mut mixture = false;
                    for t in v {
                        if t.is_word("MIXTURE") {
                            mixture = true;
                        } else if t.is_word("MISSING") || t.is_word("GENERAL") {
                            // FIML is always used; GENERAL is the default family
                        } else if t.is_word("TWOLEVEL") {
                            opts.type_twolevel = Some(st.span);
                        } else if t.is_word("RANDOM") && v.iter().any(|u| u.is_word("TWOLEVEL")) {
                            // random slopes are declared by `|`; RANDOM adds nothing
                        } else if t.is_word("THREELEVEL") || t.is_word("COMPLEX") || t.is_word("CROSSCLASSIFIED") {
                            self.err(t.span, format!("TYPE = {} is not supported yet", t.text.to_ascii_uppercase()));
                        } else if t.is_word("EFA") || t.is_word("BASIC") || t.is_word("RANDOM") || t.is_word("LOGLINEAR") {
                            self.err(t.span, format!("TYPE = {} is not supported", t.text.to_ascii_uppercase()));
                        } else {
                            self.err(t.span, format!("unknown TYPE '{}'", t.text));
                        }
                    }
                    if mixture {
                        opts.type_mixture = Some(st.span);
                    }
                }
                "ESTIMATOR" => match v {
                    [t] if t.is_word("ML") => opts.analysis.estimator = Estimator::Ml,
                    [t] if t.is_word("MLR") => opts.analysis.estimator = Estimator::Mlr,
                    [t] if t.kind == TokKind::Word => self.err_help(
                        t.span,
                        format!("ESTIMATOR = {} is not supported", t.text.to_ascii_uppercase()),
                        "use ML or MLR",
                    ),
                    _ => self.err(st.span, "ESTIMATOR is ML or MLR"),
                },
                "LINK" => match v {
                    [t] if t.is_word("LOGIT") => opts.analysis.link = Link::Logit,
                    [t] if t.is_word("PROBIT") => opts.analysis.link = Link::Probit,
                    _ => self.err(st.span, "LINK is LOGIT or PROBIT"),
                },
                "STARTS" => match v {
                    [a] if whole(a) == Some(0.0) => {
                        opts.analysis.starts_initial = 0;
                        opts.analysis.starts_final = 0;
                    }
                    [a, b] => match (whole(a), whole(b)) {
                        (Some(n), Some(m)) if n == 0.0 && m == 0.0 => {
                            opts.analysis.starts_initial = 0;
                            opts.analysis.starts_final = 0;
                        }
                        (Some(n), Some(m)) if m >= 1.0 && m <= n => {
                            opts.analysis.starts_initial = n as usize;
                            opts.analysis.starts_final = m as usize;
                        }
                        (Some(_), Some(0.0)) => self.err_help(
                            st.span,
                            "STARTS = N M needs at least one final-stage start (M of 1 or more)",
                            "for example STARTS = 20 4; or STARTS = 0; for no random starts",
                        ),
                        (Some(n), Some(m)) if m > n => self.err(
                            st.span,
                            "STARTS = N M needs M (final-stage starts) no larger than N (initial-stage starts)",
                        ),
                        _ => self.err_help(
                            st.span,
                            "STARTS needs two whole numbers that are not negative",
                            "for example STARTS = 20 4; or STARTS = 0; for no random starts",
                        ),
                    },
                    _ => self.err_help(
                        st.span,
                        "STARTS needs two whole numbers that are not negative",
                        "for example STARTS = 20 4; or STARTS = 0; for no random starts",
                    ),
                },
                "STITERATIONS" | "MITERATIONS" | "ITERATIONS" => match v {
                    [a] if whole(a).is_some_and(|x| x >= 1.0) => {
                        let n = whole(a).unwrap_or(1.0) as usize;
                        match key {
                            "STITERATIONS" => opts.analysis.stiterations = n,
                            "MITERATIONS" => opts.analysis.miterations = n,
                            _ => opts.analysis.qn_iterations = n,
                        }
                    }
                    _ => self.err(st.span, format!("{key} needs a positive whole number")),
                },
                "STSEED" | "OPTSEED" => match v {
                    [a] if whole(a).is_some() => {
                        let s = whole(a).unwrap_or(0.0) as u64;
                        if key == "STSEED" {
                            opts.analysis.stseed = s;
                        } else {
                            opts.analysis.optseed = Some(s);
                        }
                    }
                    _ => self.err(st.span, format!("{key} needs a whole number that is not negative")),
                },
                "STSCALE" => match v {
                    [a] if a.number().is_some_and(|x| x > 0.0) => {
                        opts.analysis.stscale = a.number().unwrap_or(5.0)
                    }
                    _ => self.err(st.span, "STSCALE needs a positive number"),
                },
                "CONVERGENCE" | "MCONVERGENCE" | "LOGCRITERION" | "RLOGCRITERION" => match v {
                    [a] if a.number().is_some_and(|x| x > 0.0) => {
                        let x = a.number().unwrap_or(1e-6);
                        match key {
                            "LOGCRITERION" | "RLOGCRITERION" => opts.analysis.logcriterion = x,
                            _ => opts.analysis.convergence = x,
                        }
                    }
                    _ => self.err(st.span, format!("{key} needs a positive number")),
                },
                "LOGHIGH" | "LOGLOW" => match v {
                    [a] if a.number().is_some_and(|x| x.is_finite() && x.abs() >= 1.0) => {
                        let x = a.number().unwrap_or(15.0);
                        if key == "LOGHIGH" && x > 0.0 {
                            opts.analysis.logit_high = x;
                        } else if key == "LOGLOW" && x < 0.0 {
                            opts.analysis.logit_low = x;
                        } else {
                            self.err(st.span, format!("{key} needs a {} number", if key == "LOGHIGH" { "positive" } else { "negative" }));
                        }
                    }
                    _ => self.err(st.span, format!("{key} needs a number, such as {}", if key == "LOGHIGH" { "15" } else { "-15" })),
                },
                "PROCESSORS" => match v.first().and_then(whole) {
                    Some(n) if n >= 1.0 => opts.analysis.processors = Some(n as usize),
                    _ => self.err(st.span, "PROCESSORS needs a positive whole number"),
                },
                "INTEGRATION" => {
                    opts.integration_span = Some(st.span);
                    let bad = |b: &mut Self| {
                        b.err_help(
                            st.span,
                            "INTEGRATION is a number of points, STANDARD(n), TRAPEZOID(n), GAUSSHERMITE(n) or MONTECARLO(n)",
                            "for example INTEGRATION = 15; or INTEGRATION = GAUSSHERMITE(25);",
                        )
                    };
                    let (method, n) = match v {
                        [n] if n.kind != TokKind::Word => (Some(IntegrationMethod::Trapezoid), whole(n)),
                        [m, l, n, r] if l.is_sym('(') && r.is_sym(')') => {
                            let method = if m.is_word("STANDARD") || m.is_word("TRAPEZOID") {
                                Some(IntegrationMethod::Trapezoid)
                            } else if m.is_word("GAUSSHERMITE") {
                                Some(IntegrationMethod::GaussHermite)
                            } else if m.is_word("MONTECARLO") {
                                Some(IntegrationMethod::MonteCarlo)
                            } else {
                                None
                            };
                            (method, whole(n))
                        }
                        [m] if m.is_word("MONTECARLO") => (Some(IntegrationMethod::MonteCarlo), Some(500.0)),
                        [m] if m.is_word("GAUSSHERMITE") => (Some(IntegrationMethod::GaussHermite), Some(15.0)),
                        [m] if m.is_word("STANDARD") || m.is_word("TRAPEZOID") => (Some(IntegrationMethod::Trapezoid), Some(15.0)),
                        _ => (None, None),
                    };
                    match (method, n) {
                        (Some(m), Some(n)) if (1.0..=100_000.0).contains(&n) => {
                            if m != IntegrationMethod::MonteCarlo && n > 200.0 {
                                self.err(st.span, "at most 200 integration points per dimension");
                            } else {
                                opts.integration.method = m;
                                opts.integration.points = n as usize;
                            }
                        }
                        (Some(_), Some(n)) if n >= 1.0 => self.err(st.span, "at most 100000 Monte Carlo integration points"),
                        (Some(_), _) => self.err(st.span, "the number of integration points must be a whole number of at least 1"),
                        _ => bad(self),
                    }
                }
                "ADAPTIVE" => match v {
                    [t] if t.is_word("ON") => opts.integration.adaptive = true,
                    [t] if t.is_word("OFF") => opts.integration.adaptive = false,
                    _ => self.err(st.span, "ADAPTIVE is ON or OFF"),
                },
                "ALGORITHM" => {
                    for t in v {
                        if t.is_word("INTEGRATION") {
                            // numerical integration is used whenever the model has random effects
                        } else if t.is_word("EM") || t.is_word("EMA") || t.is_word("FS") || t.is_word("ODLL") {
                            self.warn(
                                t.span,
                                format!(
                                    "ALGORITHM = {} is ignored: mlmix always uses EM steps followed by quasi-Newton",
                                    t.text.to_ascii_uppercase()
                                ),
                            );
                        } else {
                            self.err(t.span, format!("unknown ALGORITHM '{}'", t.text));
                        }
                    }
                }
                _ => {}
            }
        }
    }

    // -------------------------------------------------------------- OUTPUT
    fn output_section(&mut self, sec: &Section, opts: &mut Options<'_>) {
        for st in &sec.statements {
            if st.marker.is_some() {
                self.err(st.span, "class blocks are only allowed in MODEL:");
                continue;
            }
            let mut i = 0;
            while i < st.tokens.len() {
                let t = &st.tokens[i];
                i += 1;
                if t.kind != TokKind::Word {
                    // arguments such as TECH11 (1) or STANDARDIZED(STDYX)
                    continue;
                }
                let w = t.text.to_ascii_uppercase();
                match w.as_str() {
                    "TECH1" => opts.output.tech1 = true,
                    "SVALUES" => opts.output.svalues = true,
                    _ if OUTPUT_WORDS.contains(&w.as_str()) => self.warn(
                        t.span,
                        format!("OUTPUT {w} is not supported yet; the request is ignored"),
                    ),
                    _ => {
                        let mut d = Diagnostic::warning(
                            self.src,
                            t.span,
                            format!("unknown OUTPUT option '{}'; ignored", t.text),
                        );
                        if let Some(s) = suggest(
                            &t.text,
                            OUTPUT_WORDS.iter().copied().chain(["TECH1", "SVALUES"]),
                        ) {
                            d = d.with_help(format!("did you mean {s}?"));
                        }
                        self.diags.push(d);
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------ SAVEDATA
    fn savedata_section(&mut self, sec: &Section, opts: &mut Options<'_>) {
        for st in &sec.statements {
            let Some((key, os)) = self.option(st, "SAVEDATA", SAVEDATA_OPTS) else {
                continue;
            };
            match key {
                "FILE" => {
                    let raw = self.src.slice(Span::new(
                        os.values.first().map_or(st.span.end, |t| t.span.start),
                        st.span.end,
                    ));
                    let raw = raw.trim().trim_matches('"').trim().to_string();
                    opts.save_file = Some((raw, st.span));
                }
                "SAVE" => {
                    for t in os.values {
                        let w = t.text.to_ascii_uppercase();
                        if w.len() >= 5 && "CPROBABILITIES".starts_with(&w) {
                            opts.save_cprob = true;
                        } else if t.kind == TokKind::Word {
                            self.warn(
                                t.span,
                                format!(
                                    "SAVE = {w} is not supported yet; only CPROBABILITIES is saved"
                                ),
                            );
                        }
                    }
                }
                "MISSFLAG" => {
                    let raw = self.src.slice(Span::new(
                        os.values.first().map_or(st.span.end, |t| t.span.start),
                        st.span.end,
                    ));
                    opts.missflag = Some(raw.trim().to_string());
                }
                "FORMAT" if !(os.values.len() == 1 && os.values[0].is_word("FREE")) => {
                    self.warn(
                        st.span,
                        "only FORMAT = FREE is supported for saved data; FREE is used",
                    );
                }
                _ => {}
            }
        }
    }

    // --------------------------------------------------------------- MODEL
    fn model_statements(
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
            let section_cv = match &sec.qualifier {
                None => None,
                Some((q, span)) => {
                    let up = q.to_ascii_uppercase();
                    if let Some(i) = cvs.iter().position(|c| c.name.eq_ignore_ascii_case(q)) {
                        Some(i)
                    } else if [
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
                        continue;
                    } else {
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
                        continue;
                    }
                }
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

    fn block_marker(
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

    fn model_statement(
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
            return Some(ModelStmt {
                block,
                level,
                kind: StmtKind::RandomSlope {
                    name: toks[0].text.clone(),
                    span: toks[0].span,
                    var,
                    covariate,
                },
                labels: Vec::new(),
            });
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
                    "BY" => {
                        self.err_help(
                            toks[p].span,
                            "factors (BY) are not supported yet",
                            "factor mixture models come with a later version",
                        );
                        return None;
                    }
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
                if op == "ON" {
                    StmtKind::On(lhs, rhs)
                } else {
                    StmtKind::With(lhs, rhs)
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

    /// Parses a list of elements with modifiers.
    fn elems(
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
                    i += 2;
                } else {
                    for e in &mut out[a..b] {
                        e.start = Some(val);
                        e.fixed = None;
                    }
                    i += if val.is_some() { 2 } else { 1 };
                }
                continue;
            }
            if t.is_sym('(') {
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
                unlabeled_from = out.len();
                i = close + 1;
                continue;
            }
            if t.is_sym('{') {
                self.err(t.span, "scale factors { } are not supported");
                return None;
            }
            if t.kind != TokKind::Word {
                self.err(t.span, format!("unexpected '{}'", t.text));
                return None;
            }
            // a name or a range
            let (refs, span, adv) = if i + 2 < toks.len()
                && toks[i + 1].is_sym('-')
                && toks[i + 2].kind == TokKind::Word
            {
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

    fn label_list(&mut self, toks: &[Token], span: Span) -> Option<Vec<String>> {
        let mut out = Vec::new();
        let mut i = 0;
        if toks.is_empty() {
            self.err(span, "empty label ( )");
            return None;
        }
        while i < toks.len() {
            let t = &toks[i];
            if !matches!(t.kind, TokKind::Word | TokKind::Number) {
                self.err(t.span, format!("'{}' cannot be a label", t.text));
                return None;
            }
            if i + 2 < toks.len() && toks[i + 1].is_sym('-') {
                let b = &toks[i + 2];
                let (pa, na, wa) = match split_suffix(&t.text) {
                    Some((p, n, w)) => (p.to_string(), n, w),
                    None => (String::new(), t.text.parse().unwrap_or(usize::MAX), 0),
                };
                let (pb, nb) = match split_suffix(&b.text) {
                    Some((p, n, _)) => (p.to_string(), n),
                    None => (String::new(), b.text.parse().unwrap_or(usize::MAX)),
                };
                if !pa.eq_ignore_ascii_case(&pb) || na > nb || nb == usize::MAX {
                    self.err(
                        t.span.to(b.span),
                        format!("cannot expand the label list {}-{}", t.text, b.text),
                    );
                    return None;
                }
                for k in na..=nb {
                    // keep zero padding (p01-p10)
                    out.push(format!("{}{k:0wa$}", pa.to_ascii_uppercase()));
                }
                i += 3;
            } else {
                out.push(t.text.to_ascii_uppercase());
                i += 1;
            }
        }
        Some(out)
    }

    /// Resolves `name`, `name$k`, `cv`, `cv#k`.
    fn resolve(
        &mut self,
        text: &str,
        span: Span,
        use_names: &[String],
        all_names: &[String],
        cvs: &[ClassVar],
    ) -> Option<Ref> {
        let find = |n: &str| use_names.iter().position(|u| u.eq_ignore_ascii_case(n));
        if let Some((base, k)) = text.split_once('$') {
            let Some(v) = find(base) else {
                self.unknown_in_model(span, base, use_names, all_names, cvs);
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
            let Some(cv) = cvs.iter().position(|c| c.name.eq_ignore_ascii_case(base)) else {
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
            Some(v) => Some(Ref::Var(v)),
            None => {
                self.unknown_in_model(span, text, use_names, all_names, cvs);
                None
            }
        }
    }

    fn unknown_in_model(
        &mut self,
        span: Span,
        name: &str,
        use_names: &[String],
        all_names: &[String],
        cvs: &[ClassVar],
    ) {
        if all_names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
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

    fn resolve_range(
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
            self.err(span, "ranges of classes are not supported; list them");
            return None;
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
        if x > y {
            self.err(
                span,
                format!("the list {a}-{b} runs backwards (lists follow the order of USEVARIABLES)"),
            );
            return None;
        }
        match sa {
            None => Some((x..=y).map(Ref::Var).collect()),
            Some(k) => match k.parse::<usize>() {
                Ok(k) if k >= 1 => Some((x..=y).map(|v| Ref::Threshold(v, k)).collect()),
                _ => {
                    self.err(span, format!("'{a}': thresholds are numbered from 1"));
                    None
                }
            },
        }
    }

    /// Turns a statement into mentions of parameters, and records class
    /// variable covariates and parents.
    fn statement_targets(
        &mut self,
        st: &ModelStmt,
        use_names: &[String],
        categorical: &[usize],
        cvs: &mut [ClassVar],
        out: &mut Vec<Mention>,
    ) {
        let is_cat = |v: usize| categorical.contains(&v);
        let mut pending: Vec<(Target, &Elem)> = Vec::new();
        let mut bad = false;
        match &st.kind {
            StmtKind::Items(elems) => {
                // in textual order, so labels meet their parameters in order
                for e in elems {
                    if e.bracketed {
                        for r in &e.refs {
                            match *r {
                                Ref::Var(v) if is_cat(v) => {
                                    self.err_help(
                                        e.span,
                                        format!(
                                            "{} is categorical: it has thresholds, not a mean",
                                            use_names[v]
                                        ),
                                        format!("write [{}$1]", use_names[v]),
                                    );
                                    bad = true;
                                }
                                Ref::Var(v) => pending.push((Target::Mean { var: v }, e)),
                                Ref::Threshold(v, k) => {
                                    if !is_cat(v) {
                                        self.err_help(
                                            e.span,
                                            format!(
                                                "{} is continuous: it has a mean, not thresholds",
                                                use_names[v]
                                            ),
                                            "declare it in CATEGORICAL if it is categorical",
                                        );
                                        bad = true;
                                    } else {
                                        pending.push((Target::Threshold { var: v, index: k }, e));
                                    }
                                }
                                Ref::Class(cv, k) => {
                                    if k + 1 == cvs[cv].classes {
                                        self.err_help(
                                        e.span,
                                        format!(
                                            "[{}#{}] is the reference class: its logit intercept is 0",
                                            cvs[cv].name,
                                            k + 1
                                        ),
                                        format!("the logits of classes 1 to {} are parameters", cvs[cv].classes - 1),
                                    );
                                        bad = true;
                                    } else if matches!(st.block, Block::Class(b, _) if b != cv) {
                                        self.err(
                                        e.span,
                                        "class logit intercepts that vary across the classes of another class variable are not supported yet; use c2 ON c1",
                                    );
                                        bad = true;
                                    } else if matches!(st.block, Block::Class(..)) {
                                        self.err(
                                            e.span,
                                            "class logit intercepts belong in %OVERALL%",
                                        );
                                        bad = true;
                                    } else {
                                        pending.push((Target::ClassIntercept { cv, class: k }, e));
                                    }
                                }
                                Ref::ClassVar(cv) => {
                                    if st.block != Block::Overall {
                                        self.err(
                                            e.span,
                                            "class logit intercepts belong in %OVERALL%",
                                        );
                                        bad = true;
                                    } else {
                                        for k in 0..cvs[cv].classes.saturating_sub(1) {
                                            pending
                                                .push((Target::ClassIntercept { cv, class: k }, e));
                                        }
                                    }
                                }
                            }
                        }
                    } else {
                        for r in &e.refs {
                            match *r {
                                Ref::Class(cv, k) if st.level == Some(Level::Between) => {
                                    if k + 1 == cvs[cv].classes {
                                        self.err(
                                            e.span,
                                            "the reference (last) class has no logit intercept to make random",
                                        );
                                        bad = true;
                                    } else {
                                        pending.push((Target::ClassVariance { cv, class: k }, e));
                                    }
                                }
                                Ref::Var(v) if is_cat(v) && st.level == Some(Level::Between) => {
                                    pending.push((Target::Variance { var: v }, e))
                                }
                                Ref::Var(v) if is_cat(v) => {
                                    self.err_help(
                                    e.span,
                                    format!("{} is categorical and has no variance parameter", use_names[v]),
                                    "mean and variance of a categorical variable follow from its thresholds",
                                );
                                    bad = true;
                                }
                                Ref::Var(v) => pending.push((Target::Variance { var: v }, e)),
                                _ => {
                                    self.err_help(
                                    e.span,
                                    "only variances can be listed alone",
                                    "means go in brackets ([y]), thresholds as [u$1], class logits as [c#1]",
                                );
                                    bad = true;
                                }
                            }
                        }
                    }
                }
            }
            StmtKind::On(lhs, rhs) => {
                for l in lhs {
                    for lr in &l.refs {
                        for e in rhs {
                            for rr in &e.refs {
                                match (*lr, *rr) {
                                    (Ref::Var(y), Ref::Var(x)) => {
                                        if x == y {
                                            self.err(e.span, format!("{} ON itself", use_names[y]));
                                            bad = true;
                                        } else {
                                            pending.push((
                                                Target::Slope {
                                                    var: y,
                                                    covariate: x,
                                                },
                                                e,
                                            ));
                                        }
                                    }
                                    (Ref::ClassVar(cv) | Ref::Class(cv, _), Ref::Var(x)) => {
                                        let class = match *lr {
                                            Ref::Class(_, k) => Some(k),
                                            _ => None,
                                        };
                                        if class.is_some_and(|k| k + 1 == cvs[cv].classes) {
                                            self.err(l.span, "the reference (last) class has no logit to regress");
                                            bad = true;
                                            continue;
                                        }
                                        if st.block != Block::Overall {
                                            self.err(
                                                l.span,
                                                "class logit slopes that vary across classes of another class variable are not supported yet",
                                            );
                                            bad = true;
                                            continue;
                                        }
                                        if !cvs[cv].covariates.contains(&x) {
                                            cvs[cv].covariates.push(x);
                                        }
                                        // `c ON x` is every class's slope; `c#1 ON x` only
                                        // class 1's (the others stay fixed at 0)
                                        let ks: Vec<usize> = class.map_or_else(
                                            || (0..cvs[cv].classes - 1).collect(),
                                            |k| vec![k],
                                        );
                                        for k in ks {
                                            pending.push((
                                                Target::ClassSlope {
                                                    cv,
                                                    class: Some(k),
                                                    covariate: x,
                                                },
                                                e,
                                            ));
                                        }
                                    }
                                    (
                                        Ref::ClassVar(cv) | Ref::Class(cv, _),
                                        Ref::ClassVar(p) | Ref::Class(p, _),
                                    ) => {
                                        let class = match *lr {
                                            Ref::Class(_, k) => Some(k),
                                            _ => None,
                                        };
                                        let parent_class = match *rr {
                                            Ref::Class(_, k) => Some(k),
                                            _ => None,
                                        };
                                        if p >= cv {
                                            self.err_help(
                                                l.span.to(e.span),
                                                format!(
                                                    "{} ON {}: a class variable can only be regressed on class variables declared before it in CLASSES",
                                                    cvs[cv].name, cvs[p].name
                                                ),
                                                "list the class variables in CLASSES in time order (c1 before c2)",
                                            );
                                            bad = true;
                                            continue;
                                        }
                                        if class.is_some_and(|k| k + 1 == cvs[cv].classes)
                                            || parent_class.is_some_and(|k| k + 1 == cvs[p].classes)
                                        {
                                            self.err(
                                                l.span.to(e.span),
                                                "the last class is the reference: its effects are 0",
                                            );
                                            bad = true;
                                            continue;
                                        }
                                        if st.block != Block::Overall {
                                            self.err(
                                                l.span,
                                                "class-on-class regressions belong in %OVERALL%",
                                            );
                                            bad = true;
                                            continue;
                                        }
                                        if !cvs[cv].parents.contains(&p) {
                                            cvs[cv].parents.push(p);
                                            cvs[cv].parents.sort_unstable();
                                        }
                                        let ks: Vec<usize> = class.map_or_else(
                                            || (0..cvs[cv].classes - 1).collect(),
                                            |k| vec![k],
                                        );
                                        let js: Vec<usize> = parent_class.map_or_else(
                                            || (0..cvs[p].classes - 1).collect(),
                                            |j| vec![j],
                                        );
                                        for &k in &ks {
                                            for &j in &js {
                                                pending.push((
                                                    Target::ClassOnClass {
                                                        cv,
                                                        class: Some(k),
                                                        parent: p,
                                                        parent_class: Some(j),
                                                    },
                                                    e,
                                                ));
                                            }
                                        }
                                    }
                                    (Ref::Var(y), Ref::Class(cv, k))
                                        if st.level == Some(Level::Between)
                                            && !cvs[cv].between
                                            && k + 1 < cvs[cv].classes =>
                                    {
                                        // a random effect on a random class
                                        // logit intercept
                                        pending.push((
                                            Target::OnClassIntercept {
                                                var: y,
                                                cv,
                                                class: k,
                                            },
                                            e,
                                        ));
                                    }
                                    (Ref::Var(y), Ref::ClassVar(_) | Ref::Class(..)) => {
                                        self.err_help(
                                            e.span,
                                            format!("{} ON a class variable", use_names[y]),
                                            "class effects on a variable are its class-specific means or thresholds",
                                        );
                                        bad = true;
                                    }
                                    (Ref::Threshold(..), _) | (_, Ref::Threshold(..)) => {
                                        self.err(
                                            l.span.to(e.span),
                                            "thresholds cannot be regressed; regress the variable",
                                        );
                                        bad = true;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            StmtKind::RandomSlope { .. } => {}
            StmtKind::With(lhs, rhs) => {
                for l in lhs {
                    for lr in &l.refs {
                        for e in rhs {
                            for rr in &e.refs {
                                match (*lr, *rr) {
                                    (Ref::Var(a), Ref::Var(b)) => {
                                        if a != b {
                                            let (a, b) = (a.min(b), a.max(b));
                                            pending.push((Target::Covariance { a, b }, e));
                                        }
                                    }
                                    _ => {
                                        self.err(l.span.to(e.span), "WITH is for covariances between continuous dependent variables");
                                        bad = true;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if bad {
            return;
        }
        // labels: each group's labels go to the targets it covers, in order
        let mut by_group: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, (_, e)) in pending.iter().enumerate() {
            if let Some(g) = e.label_group {
                by_group.entry(g).or_default().push(i);
            }
        }
        let mut labels_of: Vec<Option<String>> = vec![None; pending.len()];
        for (g, idxs) in by_group {
            let lg = &st.labels[g];
            if lg.labels.len() == 1 {
                for i in idxs {
                    labels_of[i] = Some(lg.labels[0].clone());
                }
            } else if lg.labels.len() == idxs.len() {
                for (i, l) in idxs.into_iter().zip(&lg.labels) {
                    labels_of[i] = Some(l.clone());
                }
            } else {
                self.err(
                    lg.span,
                    format!(
                        "{} labels for {} parameter{}; give one label, or one per parameter",
                        lg.labels.len(),
                        idxs.len(),
                        if idxs.len() == 1 { "" } else { "s" }
                    ),
                );
                return;
            }
        }
        for ((target, e), label) in pending.into_iter().zip(labels_of) {
            // in a class block, a measurement parameter assigns its variable to that class variable
            out.push(Mention {
                target,
                block: st.block,
                level: st.level,
                fixed: e.fixed,
                start: e.start,
                label,
                span: e.span,
            });
        }
    }

    // ------------------------------------------------------------------ data
    #[allow(clippy::too_many_arguments)]
    fn prepare_data(
        &mut self,
        data_src: &Source,
        raw: RawData,
        usev: &[usize],
        use_names: &[String],
        is_dep: &[bool],
        categorical: &[usize],
        listwise: bool,
        header: bool,
    ) -> Option<Dataset> {
        let n = raw.n_rows();
        let mut keep = vec![true; n];
        let mut excluded = Vec::new();
        for r in 0..n {
            let reason = if listwise && raw.columns.iter().any(|c| c[r].is_nan()) {
                Some(ExclusionReason::Listwise)
            } else if (0..use_names.len()).any(|v| !is_dep[v] && raw.columns[v][r].is_nan()) {
                Some(ExclusionReason::MissingCovariate)
            } else if (0..use_names.len())
                .filter(|&v| is_dep[v])
                .all(|v| raw.columns[v][r].is_nan())
            {
                Some(ExclusionReason::AllDependentsMissing)
            } else {
                None
            };
            if let Some(reason) = reason {
                keep[r] = false;
                excluded.push(Excluded {
                    line: raw.lines[r],
                    reason,
                });
            }
        }
        // categorical values must be whole numbers
        for &v in categorical {
            for (r, (&x, &kept)) in raw.columns[v].iter().zip(&keep).enumerate() {
                if kept && !x.is_nan() && x.fract() != 0.0 {
                    let line = raw.lines[r];
                    let span = data::field_span(data_src, line, usev[v], header);
                    self.diags.push(
                        Diagnostic::error(
                            data_src,
                            span,
                            format!(
                                "{} is CATEGORICAL but has the value {x}, which is not a whole number",
                                use_names[v]
                            ),
                        )
                        .with_help("categorical variables take whole-number codes (0, 1, 2 or 1, 2, ...)"),
                    );
                    return None;
                }
            }
        }
        let rows_read = n;
        let columns: Vec<Vec<f64>> = raw
            .columns
            .iter()
            .map(|c| {
                c.iter()
                    .zip(&keep)
                    .filter(|(_, k)| **k)
                    .map(|(x, _)| *x)
                    .collect()
            })
            .collect();
        let ids = raw.ids.as_ref().map(|ids| {
            ids.iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(x, _)| x.clone())
                .collect()
        });
        let lines: Vec<usize> = raw
            .lines
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(x, _)| *x)
            .collect();
        if lines.is_empty() {
            self.diags.push(Diagnostic::error_nowhere(format!(
                "no rows of '{}' can be analysed: every row is missing on all dependent variables or on a covariate",
                data_src.path().display()
            )));
            return None;
        }
        let count = |r: ExclusionReason| {
            excluded
                .iter()
                .filter(|e: &&Excluded| e.reason == r)
                .count()
        };
        let mc = count(ExclusionReason::MissingCovariate);
        if mc > 0 {
            self.diags.push(Diagnostic::warning_nowhere(format!(
                "{mc} row(s) with a missing covariate were left out (the model is conditional on covariates)"
            )));
        }
        let am = count(ExclusionReason::AllDependentsMissing);
        if am > 0 {
            self.diags.push(Diagnostic::warning_nowhere(format!(
                "{am} row(s) missing on every dependent variable were left out"
            )));
        }
        let lw = count(ExclusionReason::Listwise);
        if lw > 0 {
            self.diags.push(Diagnostic::warning_nowhere(format!(
                "{lw} row(s) with missing values were left out (LISTWISE = ON)"
            )));
        }
        Some(Dataset {
            file: raw.file,
            columns,
            ids,
            lines,
            rows_read,
            excluded,
            clusters: None,
        })
    }

    fn categories_of(
        &mut self,
        _data_src: &Source,
        data: &Dataset,
        v: usize,
        use_names: &[String],
    ) -> Option<Vec<f64>> {
        // distinct values, stopping early past the limit
        let mut cats: Vec<f64> = Vec::new();
        for &x in &data.columns[v] {
            if !x.is_nan() && !cats.contains(&x) {
                cats.push(x);
                if cats.len() > 10 {
                    break;
                }
            }
        }
        cats.sort_by(|a, b| a.total_cmp(b));
        if cats.len() < 2 {
            self.diags.push(Diagnostic::error_nowhere(format!(
                "CATEGORICAL variable {} takes {} value(s) in the data; it needs at least two categories",
                use_names[v],
                cats.len()
            )));
            return None;
        }
        if cats.len() > 10 {
            self.diags.push(
                Diagnostic::error_nowhere(format!(
                    "CATEGORICAL variable {} has more than 10 categories; at most 10 are allowed",
                    use_names[v]
                ))
                .with_help("treat it as continuous, or collapse categories"),
            );
            return None;
        }
        Some(cats)
    }

    // ------------------------------------------------------------ parameters
    fn parameters(&mut self, model: &mut Model, mentions: &[Mention]) {
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        enum Key {
            Shared(usize),
            Own(usize),
        }
        let mut params: Vec<Parameter> = Vec::new();
        // default grouping key: Shared(kind-id) for class-invariant defaults
        let mut keys: Vec<Key> = Vec::new();
        let mut split: Vec<bool> = Vec::new();
        let mut shared_ids: HashMap<ParamKind, usize> = HashMap::new();
        let mut index: HashMap<(ParamKind, Option<usize>), usize> = HashMap::new();
        let n_shared = |shared_ids: &mut HashMap<ParamKind, usize>, k: ParamKind| {
            let n = shared_ids.len();
            *shared_ids.entry(k).or_insert(n)
        };
        let mut push = |params: &mut Vec<Parameter>,
                        keys: &mut Vec<Key>,
                        shared_ids: &mut HashMap<ParamKind, usize>,
                        kind: ParamKind,
                        class: Option<usize>,
                        class_varying: bool| {
            let i = params.len();
            params.push(Parameter {
                kind,
                class,
                value: ParamValue::Free(0),
                start: None,
                label: None,
            });
            keys.push(if class_varying {
                Key::Own(i)
            } else {
                Key::Shared(n_shared(shared_ids, kind))
            });
            index.insert((kind, class), i);
        };
        // regressions of random slopes on BETWEEN covariates (`s ON w`),
        // parameters of the slope's dependent variable
        let mut slope_on: Vec<(usize, usize, usize)> = Vec::new(); // (var, re, w)
        for m in mentions {
            if let Target::RandomSlopeOn { re, covariate } = m.target
                && let Some(RandomKind::Slope { var, .. }) =
                    model.random_effects().get(re).map(|r| r.kind)
                && !slope_on.contains(&(var, re, covariate))
            {
                slope_on.push((var, re, covariate));
            }
        }
        // measurement parameters, class by class for each class variable
        let ncv = model.class_vars.len();
        let cv_order: Vec<Option<usize>> = if ncv == 0 {
            vec![None]
        } else {
            (0..ncv).map(Some).collect()
        };
        for &cvo in &cv_order {
            let kmax = cvo.map_or(1, |c| model.class_vars[c].classes);
            for k in 0..kmax {
                let class = cvo.map(|_| k);
                for v in 0..model.variables.len() {
                    let Some(dep) = model.dependent(v) else {
                        continue;
                    };
                    if dep.class_var != cvo {
                        continue;
                    }
                    match &dep.scale {
                        Scale::Categorical { categories } => {
                            for t in 1..categories.len() {
                                push(
                                    &mut params,
                                    &mut keys,
                                    &mut shared_ids,
                                    ParamKind::Threshold { var: v, index: t },
                                    class,
                                    true,
                                );
                            }
                        }
                        Scale::Continuous => {
                            push(
                                &mut params,
                                &mut keys,
                                &mut shared_ids,
                                ParamKind::Mean { var: v },
                                class,
                                true,
                            );
                        }
                    }
                    for &x in &dep.covariates.clone() {
                        push(
                            &mut params,
                            &mut keys,
                            &mut shared_ids,
                            ParamKind::Slope {
                                var: v,
                                covariate: x,
                            },
                            class,
                            false,
                        );
                    }
                    for &(_, re, w) in slope_on.iter().filter(|x| x.0 == v) {
                        push(
                            &mut params,
                            &mut keys,
                            &mut shared_ids,
                            ParamKind::RandomSlopeOn { re, covariate: w },
                            class,
                            false,
                        );
                    }
                }
                for v in 0..model.variables.len() {
                    let Some(dep) = model.dependent(v) else {
                        continue;
                    };
                    if dep.class_var == cvo && dep.scale == Scale::Continuous {
                        push(
                            &mut params,
                            &mut keys,
                            &mut shared_ids,
                            ParamKind::Variance { var: v },
                            class,
                            false,
                        );
                    }
                }
                for &(a, b) in &model.covariances.clone() {
                    if model.dependent(a).and_then(|d| d.class_var) == cvo {
                        push(
                            &mut params,
                            &mut keys,
                            &mut shared_ids,
                            ParamKind::Covariance { a, b },
                            class,
                            false,
                        );
                    }
                }
            }
        }
        // class model
        for cv in 0..ncv {
            let c = model.class_vars[cv].clone();
            for k in 0..c.classes - 1 {
                push(
                    &mut params,
                    &mut keys,
                    &mut shared_ids,
                    ParamKind::ClassIntercept { cv, class: k },
                    None,
                    true,
                );
            }
            for &x in &c.covariates {
                for k in 0..c.classes - 1 {
                    push(
                        &mut params,
                        &mut keys,
                        &mut shared_ids,
                        ParamKind::ClassSlope {
                            cv,
                            class: k,
                            covariate: x,
                        },
                        None,
                        true,
                    );
                }
            }
            for &p in &c.parents {
                for k in 0..c.classes - 1 {
                    for j in 0..model.class_vars[p].classes - 1 {
                        push(
                            &mut params,
                            &mut keys,
                            &mut shared_ids,
                            ParamKind::ClassOnClass {
                                cv,
                                class: k,
                                parent: p,
                                parent_class: j,
                            },
                            None,
                            true,
                        );
                    }
                }
            }
        }
        // random effects: variances free, covariances where WITH names them
        if let Some(tl) = model.two_level.clone() {
            let cc = tl.cov_class_var;
            let classes: Vec<Option<usize>> = match cc {
                Some(c) => (0..model.class_vars[c].classes).map(Some).collect(),
                None => vec![None],
            };
            let mut pairs: Vec<(usize, usize)> = mentions
                .iter()
                .filter_map(|m| match m.target {
                    Target::RandomCovariance { a, b } => Some((a, b)),
                    _ => None,
                })
                .collect();
            pairs.sort_unstable();
            pairs.dedup();
            let mut regressions: Vec<(usize, usize)> = mentions
                .iter()
                .filter_map(|m| match m.target {
                    Target::RandomRegression { re, on } => Some((re, on)),
                    _ => None,
                })
                .collect();
            regressions.sort_unstable();
            regressions.dedup();
            for &class in &classes {
                for re in 0..tl.random.len() {
                    push(
                        &mut params,
                        &mut keys,
                        &mut shared_ids,
                        ParamKind::RandomVariance { re },
                        class,
                        false,
                    );
                }
                for &(a, b) in &pairs {
                    push(
                        &mut params,
                        &mut keys,
                        &mut shared_ids,
                        ParamKind::RandomCovariance { a, b },
                        class,
                        false,
                    );
                }
                for &(re, on) in &regressions {
                    push(
                        &mut params,
                        &mut keys,
                        &mut shared_ids,
                        ParamKind::RandomRegression { re, on },
                        class,
                        false,
                    );
                }
            }
        }
        split.resize(params.len(), false);

        // apply mentions: %OVERALL% first, then class blocks, each in file order
        let mut mentioned = vec![false; params.len()];
        let mut apply = |params: &mut Vec<Parameter>,
                         split: &mut Vec<bool>,
                         i: usize,
                         m: &Mention,
                         in_class: bool| {
            mentioned[i] = true;
            let p = &mut params[i];
            if let Some(v) = m.fixed {
                p.value = ParamValue::Fixed(v);
                p.start = None;
            }
            if let Some(s) = m.start {
                p.value = ParamValue::Free(0);
                p.start = s;
            }
            if let Some(l) = &m.label {
                p.label = Some(l.clone());
            }
            if in_class {
                split[i] = true;
            }
        };
        for pass in 0..2 {
            for m in mentions {
                let in_class = matches!(m.block, Block::Class(..));
                if (pass == 0) == in_class {
                    continue;
                }
                let class_filter = match m.block {
                    Block::Class(_, k) => Some(k),
                    Block::Overall => None,
                };
                let kinds: Vec<ParamKind> = match m.target {
                    Target::Threshold { var, index } => {
                        let ncat = model.n_categories(var).unwrap_or(0);
                        if index >= ncat {
                            self.err_help(
                                m.span,
                                format!(
                                    "{}${} does not exist: {} has {} categories in the data",
                                    model.variables[var].name,
                                    index,
                                    model.variables[var].name,
                                    ncat
                                ),
                                if ncat <= 2 {
                                    format!("its only threshold is {}$1", model.variables[var].name)
                                } else {
                                    format!(
                                        "its thresholds are {}$1 to {}${}",
                                        model.variables[var].name,
                                        model.variables[var].name,
                                        ncat - 1
                                    )
                                },
                            );
                            continue;
                        }
                        vec![ParamKind::Threshold { var, index }]
                    }
                    Target::Mean { var } => vec![ParamKind::Mean { var }],
                    Target::Variance { var } => vec![ParamKind::Variance { var }],
                    Target::Slope { var, covariate } => vec![ParamKind::Slope { var, covariate }],
                    Target::Covariance { a, b } => vec![ParamKind::Covariance { a, b }],
                    Target::RandomVariance { re } => vec![ParamKind::RandomVariance { re }],
                    Target::RandomCovariance { a, b } => vec![ParamKind::RandomCovariance { a, b }],
                    Target::RandomSlopeOn { re, covariate } => {
                        vec![ParamKind::RandomSlopeOn { re, covariate }]
                    }
                    Target::RandomRegression { re, on } => {
                        vec![ParamKind::RandomRegression { re, on }]
                    }
                    Target::ClassVariance { .. } | Target::OnClassIntercept { .. } => continue,
                    Target::ClassIntercept { cv, class } => {
                        vec![ParamKind::ClassIntercept { cv, class }]
                    }
                    Target::ClassSlope {
                        cv,
                        class,
                        covariate,
                    } => match class {
                        Some(k) => vec![ParamKind::ClassSlope {
                            cv,
                            class: k,
                            covariate,
                        }],
                        None => (0..model.class_vars[cv].classes - 1)
                            .map(|k| ParamKind::ClassSlope {
                                cv,
                                class: k,
                                covariate,
                            })
                            .collect(),
                    },
                    Target::ClassOnClass {
                        cv,
                        class,
                        parent,
                        parent_class,
                    } => {
                        let ks: Vec<usize> = class.map_or_else(
                            || (0..model.class_vars[cv].classes - 1).collect(),
                            |k| vec![k],
                        );
                        let js: Vec<usize> = parent_class.map_or_else(
                            || (0..model.class_vars[parent].classes - 1).collect(),
                            |j| vec![j],
                        );
                        let mut v = Vec::new();
                        for &k in &ks {
                            for &j in &js {
                                v.push(ParamKind::ClassOnClass {
                                    cv,
                                    class: k,
                                    parent,
                                    parent_class: j,
                                });
                            }
                        }
                        v
                    }
                };
                let labels_spread = kinds.len() > 1 && m.label.is_some();
                if labels_spread {
                    // one label on a whole c ON x list ties all classes: allowed
                }
                for kind in kinds {
                    let measured = model.param_class_var(&kind).is_some();
                    let classes: Vec<Option<usize>> = if measured {
                        let cv = model.param_class_var(&kind).unwrap_or(0);
                        match class_filter {
                            Some(k) => vec![Some(k)],
                            None => (0..model.class_vars[cv].classes).map(Some).collect(),
                        }
                    } else {
                        vec![None]
                    };
                    for c in classes {
                        match index.get(&(kind, c)) {
                            Some(&i) => apply(&mut params, &mut split, i, m, in_class && measured),
                            None => self.err(
                                m.span,
                                format!(
                                    "{} is not a parameter of this model",
                                    model.param_name(&kind)
                                ),
                            ),
                        }
                    }
                }
            }
        }

        // class logit slopes and class-on-class effects exist only where a
        // statement names them (`c#1 ON x` frees class 1's slope alone); the
        // others are fixed at 0, as in Mplus
        for (i, p) in params.iter_mut().enumerate() {
            if matches!(
                p.kind,
                ParamKind::ClassSlope { .. } | ParamKind::ClassOnClass { .. }
            ) && !mentioned[i]
            {
                p.value = ParamValue::Fixed(0.0);
            }
        }

        // group: label > split (own) > default key
        #[derive(Clone, PartialEq, Eq, Hash)]
        enum G {
            Label(String),
            Key(Key),
        }
        let mut order: Vec<G> = Vec::new();
        let mut members: HashMap<G, Vec<usize>> = HashMap::new();
        for (i, p) in params.iter().enumerate() {
            let g = match (&p.label, split[i]) {
                (Some(l), _) => G::Label(l.clone()),
                (None, true) => G::Key(Key::Own(i)),
                (None, false) => G::Key(keys[i]),
            };
            if !members.contains_key(&g) {
                order.push(g.clone());
            }
            members.entry(g).or_default().push(i);
        }
        let mut free: Vec<FreeParameter> = Vec::new();
        for g in order {
            let mem = &members[&g];
            let fixed: Vec<f64> = mem
                .iter()
                .filter_map(|&i| match params[i].value {
                    ParamValue::Fixed(v) => Some(v),
                    ParamValue::Free(_) => None,
                })
                .collect();
            if !fixed.is_empty() {
                if fixed.len() != mem.len() {
                    if let G::Label(l) = &g {
                        let span = mentions
                            .iter()
                            .find(|m| m.label.as_deref() == Some(l.as_str()))
                            .map_or(Span::default(), |m| m.span);
                        self.err(
                            span,
                            format!("label ({l}) ties fixed and free parameters together"),
                        );
                        continue;
                    }
                    // a shared default group with some classes fixed: the fixed ones stand alone
                    let free_mem: Vec<usize> = mem
                        .iter()
                        .copied()
                        .filter(|&i| matches!(params[i].value, ParamValue::Free(_)))
                        .collect();
                    if !free_mem.is_empty() {
                        let idx = free.len();
                        for &i in &free_mem {
                            params[i].value = ParamValue::Free(idx);
                        }
                        free.push(FreeParameter {
                            name: String::new(),
                            label: None,
                            members: free_mem,
                        });
                    }
                } else if fixed.iter().any(|v| *v != fixed[0])
                    && let G::Label(l) = &g
                {
                    let span = mentions
                        .iter()
                        .find(|m| m.label.as_deref() == Some(l.as_str()))
                        .map_or(Span::default(), |m| m.span);
                    self.err(
                        span,
                        format!("label ({l}) ties parameters fixed at different values"),
                    );
                }
                continue;
            }
            let idx = free.len();
            for &i in mem {
                params[i].value = ParamValue::Free(idx);
            }
            let label = match &g {
                G::Label(l) => Some(l.clone()),
                G::Key(_) => None,
            };
            free.push(FreeParameter {
                name: String::new(),
                label,
                members: mem.clone(),
            });
        }
        // starting values within a group must agree
        for f in &free {
            let starts: Vec<f64> = f.members.iter().filter_map(|&i| params[i].start).collect();
            if let Some(&s0) = starts.first() {
                for &i in &f.members {
                    params[i].start = Some(s0);
                }
            }
        }
        model.parameters = params;
        for f in &mut free {
            f.name = free_name(model, f);
        }
        model.free = free;
    }
}

fn free_name(model: &Model, f: &FreeParameter) -> String {
    let first = &model.parameters[f.members[0]];
    let same_kind = f
        .members
        .iter()
        .all(|&i| model.parameters[i].kind == first.kind);
    let mut name = if same_kind && f.members.len() > 1 {
        let base = match first.kind {
            ParamKind::Threshold { .. }
            | ParamKind::Mean { .. }
            | ParamKind::ClassIntercept { .. } => {
                format!("[{}]", model.param_name(&first.kind))
            }
            ParamKind::Variance { .. } => format!("{} (variance)", model.param_name(&first.kind)),
            _ => model.param_name(&first.kind),
        };
        let classes: Vec<String> = f
            .members
            .iter()
            .filter_map(|&i| model.parameters[i].class.map(|k| (k + 1).to_string()))
            .collect();
        let cvname = model
            .param_class_var(&first.kind)
            .map(|c| model.class_vars[c].name.to_ascii_uppercase())
            .unwrap_or_default();
        let ncls = model
            .param_class_var(&first.kind)
            .map_or(0, |c| model.class_vars[c].classes);
        if classes.len() == ncls {
            format!("{base}, all classes of {cvname}")
        } else {
            format!("{base} in classes {} of {cvname}", classes.join(", "))
        }
    } else if f.members.len() == 1 {
        model.param_full_name(first)
    } else {
        let names: Vec<String> = f
            .members
            .iter()
            .map(|&i| model.param_full_name(&model.parameters[i]))
            .collect();
        names.join(" = ")
    };
    if let Some(l) = &f.label {
        name.push_str(&format!(" ({l})"));
    }
    name
}

/// Splits `u12` into ("u", 12, width of the digits).
fn split_suffix(s: &str) -> Option<(&str, usize, usize)> {
    let digits = s.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (p, n) = s.split_at(s.len() - digits);
    Some((
        p,
        n.parse().ok()?,
        if n.starts_with('0') { digits } else { 0 },
    ))
}
