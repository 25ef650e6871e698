//! The option commands (DATA, VARIABLE, ANALYSIS, OUTPUT, SAVEDATA): option
//! tables, `KEY = values` statements, and what each option sets in [`Options`].

use std::collections::HashMap;

use super::Builder;
use super::define::Stmt;
use super::widetolong::WideSpec;
use crate::diag::{Diagnostic, suggest};
use crate::model::*;
use crate::source::Span;
use crate::syntax::{self, Command, Section, Statement, TokKind, Token};

// ---------------------------------------------------------------------------
// option statements

/// `KEY [IS|ARE|=] values...`
pub(super) struct OptStmt<'a> {
    /// The option name; tokens written without spaces are joined, so that
    /// `K-1STARTS` is one name.
    pub(super) key: String,
    pub(super) key_span: Span,
    pub(super) first: &'a Token,
    pub(super) values: &'a [Token],
}

pub(super) fn split_option(stmt: &Statement) -> Option<OptStmt<'_>> {
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
pub(super) enum Support {
    Yes,
    /// Changes the model or the estimation: an error.
    NoModel(&'static str),
    /// Only changes what is printed or saved: a warning.
    NoOutput,
    /// A tuning option of Mplus's own algorithms that mlmix does not use: a
    /// warning with the reason.
    Ignored(&'static str),
}

pub(super) fn match_key<'t>(
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

// ---------------------------------------------------------------------------
// the ranges of the numbers an input gives (docs/input-language.md, next to
// each option): checked before anything is sized by them

/// Most initial-stage random starts (STARTS = N M: N, and M ≤ N).
pub(super) const MAX_STARTS: u64 = 100_000;
/// Most iterations: STITERATIONS, MITERATIONS, ITERATIONS.
pub(super) const MAX_ITERATIONS: u64 = 100_000;
/// Largest STSEED and OPTSEED (2^32 − 1).
pub(super) const MAX_SEED: u64 = 4_294_967_295;
/// Most PROCESSORS (more than the machine has is capped, with a warning).
pub(super) const MAX_PROCESSORS: u64 = 100_000;
/// Most integration points per dimension of the product rules.
pub(super) const MAX_POINTS_PER_DIMENSION: u64 = 200;
/// Most Monte Carlo integration points.
pub(super) const MAX_MONTECARLO_POINTS: u64 = 100_000;
/// Most names a list range (`u1-u100`, labels `(p1-p20)`) expands to, and
/// most names in NAMES.
pub(super) const MAX_LIST: usize = 100_000;
/// Most codes a range of missing-value codes (`(7-9)`) expands to.
pub(super) const MAX_MISSING_CODES: usize = 1_000;

pub(super) const DATA_OPTS: &[(&str, Support)] = &[
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

pub(super) const VARIABLE_OPTS: &[(&str, Support)] = &[
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
    ("NOMINAL", Support::Yes),
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

pub(super) const ANALYSIS_OPTS: &[(&str, Support)] = &[
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

pub(super) const PLOT_OPTS: &[(&str, Support)] = &[
    ("TYPE", Support::Yes),
    ("SERIES", Support::Yes),
    ("OUTLIERS", Support::NoOutput),
    ("MONITOR", Support::NoOutput),
    ("FACTORS", Support::NoOutput),
];

pub(super) const SAVEDATA_OPTS: &[(&str, Support)] = &[
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

pub(super) const OUTPUT_WORDS: &[&str] = &[
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
    "CROSSTABS",
    "FSCOEFFICIENT",
    "FSDETERMINACY",
    "H1SE",
    "H1TECH3",
    "LOGRANK",
    "BASEHAZARD",
];

/// Everything read from the option commands.
#[derive(Default)]
pub(super) struct Options<'a> {
    pub(super) file: Option<(String, Span)>,
    /// DATA: TYPE = MONTECARLO: FILE lists the data sets of an external
    /// Monte Carlo study (the span of the TYPE statement).
    pub(super) montecarlo_list: Option<Span>,
    pub(super) listwise: bool,
    pub(super) nobs: Option<(usize, Span)>,
    pub(super) names: Option<Vec<(String, Span)>>,
    pub(super) usev: Option<&'a [Token]>,
    pub(super) categorical: Option<&'a [Token]>,
    pub(super) nominal: Option<&'a [Token]>,
    pub(super) classes: Vec<(String, usize, Span)>,
    pub(super) missing: Option<&'a [Token]>,
    pub(super) idvar: Option<(String, Span)>,
    pub(super) type_mixture: Option<Span>,
    pub(super) type_twolevel: Option<Span>,
    pub(super) cluster: Option<(String, Span)>,
    pub(super) within: Option<&'a [Token]>,
    pub(super) between: Option<&'a [Token]>,
    pub(super) integration: Integration,
    pub(super) integration_span: Option<Span>,
    pub(super) classes_span: Option<Span>,
    pub(super) analysis: Analysis,
    pub(super) output: OutputSpec,
    pub(super) save_file: Option<(String, Span)>,
    pub(super) save_cprob: bool,
    /// SAVE = FSCORES, where it was asked for.
    pub(super) save_fscores: Option<Span>,
    pub(super) missflag: Option<String>,
    /// `DATA WIDETOLONG:`, as written.
    pub(super) widetolong: Option<WideSpec<'a>>,
    /// DEFINE's statements (names not yet resolved).
    pub(super) define: Vec<Stmt>,
    /// The variables of DEFINE statements with errors.
    pub(super) define_broken: Vec<String>,
    /// The `DEFINE:` header.
    pub(super) define_header: Option<Span>,
    /// ANALYSIS gives STARTS (a Monte Carlo analysis has none by default).
    pub(super) starts_given: bool,
    /// PLOT's SERIES when TYPE includes PLOT3 (resolved once the variables
    /// are known), with the statement.
    pub(super) plot_series: Option<(&'a [Token], Span)>,
    /// MONTECARLO's options (a Monte Carlo input).
    pub(super) mc: Option<super::montecarlo::McOptions<'a>>,
    /// A Monte Carlo input: the class variables of the other model
    /// (CLASSES while the population model is built, GENCLASSES while the
    /// analysis is), which WITHIN and BETWEEN may name.
    pub(super) other_classes: Vec<String>,
}
/// What the commands of the input file say (the first phase).
pub(super) struct Commands<'a> {
    /// The options of DATA, VARIABLE, ANALYSIS, OUTPUT and SAVEDATA.
    pub(super) opts: Options<'a>,
    /// TITLE, its words joined by single spaces.
    pub(super) title: String,
    /// The MODEL sections (`MODEL:` and `MODEL c:`), in file order.
    pub(super) model_sections: Vec<&'a Section>,
}

impl Builder<'_> {
    /// Reads every command into [`Commands`] and checks that the commands
    /// and TYPE go together (DATA and VARIABLE given, TYPE = MIXTURE or
    /// TWOLEVEL, CLASSES and CLUSTER where TYPE needs them).
    pub(super) fn commands<'a>(&mut self, syntax: &'a syntax::Syntax) -> Commands<'a> {
        let mut cmds = Commands {
            opts: Options::default(),
            title: String::new(),
            model_sections: Vec::new(),
        };
        let mut seen: HashMap<&'static str, Span> = HashMap::new();
        for sec in &syntax.sections {
            self.command(sec, &mut cmds, &mut seen);
        }
        let has_factors = cmds.model_sections.iter().any(|sec| {
            sec.statements.iter().any(|st| {
                st.tokens.iter().any(|t| t.is_word("BY"))
                    || super::factors::growth_bar(&st.tokens).is_some()
            })
        });
        self.check_commands(&mut cmds.opts, &seen, has_factors);
        cmds
    }

    /// One command: its options go into `cmds`.
    fn command<'a>(
        &mut self,
        sec: &'a Section,
        cmds: &mut Commands<'a>,
        seen: &mut HashMap<&'static str, Span>,
    ) {
        let name = sec.command.name();
        // words between a command and its colon: `MODEL c1:` and
        // `DATA WIDETOLONG:` are commands of their own
        if let Some((q, span)) = &sec.qualifier {
            match sec.command {
                Command::Model => {}
                Command::Data if is_widetolong(q) => {
                    if let Some(prev) = seen.get("DATA WIDETOLONG") {
                        let (l, _) = self.src.line_col(prev.start);
                        self.err(
                            sec.header,
                            format!("DATA WIDETOLONG: appears twice (first on line {l})"),
                        );
                    } else {
                        seen.insert("DATA WIDETOLONG", sec.header);
                        self.widetolong_section(sec, &mut cmds.opts);
                    }
                    return;
                }
                Command::Data => {
                    self.err(
                        *span,
                        format!("DATA {}: is not supported yet", q.to_ascii_uppercase()),
                    );
                    return;
                }
                _ => {
                    self.err_help(
                        *span,
                        format!("'{name} {q}:' is not a command"),
                        format!("write {name}: alone"),
                    );
                    return;
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
                return;
            }
            seen.insert(name, sec.header);
        }
        let opts = &mut cmds.opts;
        match sec.command {
            Command::Title => {
                // `!` starts a comment in TITLE too
                cmds.title = self
                    .src
                    .slice(sec.body)
                    .lines()
                    .flat_map(|l| l.split('!').next().unwrap_or("").split_whitespace())
                    .collect::<Vec<_>>()
                    .join(" ");
            }
            Command::Data | Command::Variable if self.mc.is_some() => self.err_help(
                sec.header,
                format!("{name}: is not used in a Monte Carlo input"),
                "MONTECARLO: generates the data and names them (NAMES, CATEGORICAL, CLASSES, WITHIN, BETWEEN go there)",
            ),
            Command::Data => self.data_section(sec, opts),
            Command::Variable => self.variable_section(sec, opts),
            Command::Analysis => self.analysis_section(sec, opts),
            Command::Model => {
                if self.keeps_model_section(sec) {
                    cmds.model_sections.push(sec)
                }
            }
            Command::Output => self.output_section(sec, opts),
            Command::Savedata => self.savedata_section(sec, opts),
            Command::Plot => self.plot_section(sec, opts),
            Command::Define => {
                opts.define_header = Some(sec.header);
                self.define_section(sec, &mut opts.define, &mut opts.define_broken);
            }
            Command::Montecarlo => self.montecarlo_section(sec, opts),
        }
    }

    /// Checks the commands and TYPE against each other.
    fn check_commands(
        &mut self,
        opts: &mut Options<'_>,
        seen: &HashMap<&'static str, Span>,
        has_factors: bool,
    ) {
        if opts.type_twolevel.is_some() && opts.output.svalues {
            opts.output.svalues = false;
            self.diags.push(Diagnostic::warning_nowhere(
                "OUTPUT SVALUES is not supported yet for TWOLEVEL models; the request is ignored",
            ));
        }
        // a Monte Carlo input has no DATA: or VARIABLE: by design
        if seen.contains_key("MONTECARLO") {
            if opts.names.is_none() {
                self.err(
                    seen["MONTECARLO"],
                    "MONTECARLO needs NAMES (the generated variables)",
                );
            }
            // Mplus's default for a Monte Carlo analysis: no random starts
            // (it starts at the population values)
            if !opts.starts_given {
                opts.analysis.starts_initial = 0;
                opts.analysis.starts_final = 0;
            }
            self.check_type(opts, seen, has_factors);
            return;
        }
        // an external Monte Carlo study (DATA: TYPE = MONTECARLO) starts at
        // MODEL's values, the population values, likewise
        if opts.montecarlo_list.is_some() && !opts.starts_given {
            opts.analysis.starts_initial = 0;
            opts.analysis.starts_final = 0;
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
        if opts.type_mixture.is_none() && opts.type_twolevel.is_none() && !has_factors {
            let span = seen.get("ANALYSIS").copied();
            let msg = "TYPE = MIXTURE (or TWOLEVEL) is required: mlmix fits mixture, multilevel and factor (BY) models";
            match span {
                Some(s) => self.err_help(s, msg, "add TYPE = MIXTURE; to ANALYSIS:"),
                None => self.diags.push(
                    Diagnostic::error_nowhere(format!("{}: {msg}", self.src.path().display()))
                        .with_help("add ANALYSIS: TYPE = MIXTURE;"),
                ),
            }
        }
        self.check_type(opts, seen, has_factors);
    }

    /// Checks CLASSES, CLUSTER, WITHIN, BETWEEN and INTEGRATION against
    /// TYPE.
    fn check_type(
        &mut self,
        opts: &Options<'_>,
        seen: &HashMap<&'static str, Span>,
        has_factors: bool,
    ) {
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
            if let Some(span) = opts.integration_span.filter(|_| !has_factors) {
                self.warn(
                    span,
                    "INTEGRATION is ignored: the model has no random effects (TYPE = TWOLEVEL) or factors (BY)",
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
    }
    // ---------------------------------------------------------------- DATA
    pub(super) fn data_section(&mut self, sec: &Section, opts: &mut Options<'_>) {
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
                "TYPE" if os.values.len() == 1 && os.values[0].is_word("MONTECARLO") => {
                    opts.montecarlo_list = Some(st.span);
                }
                "TYPE" if !(os.values.len() == 1 && os.values[0].is_word("INDIVIDUAL")) => {
                    self.err(
                        st.span,
                        "only individual data (TYPE = INDIVIDUAL) and lists of data sets (TYPE = MONTECARLO) are supported",
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
    pub(super) fn option<'t>(
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

    // ---------------------------------------------------------------- PLOT
    /// PLOT: TYPE = PLOT3 with SERIES draws the class profiles; PLOT1 and
    /// PLOT2 (Mplus's graphics module) are ignored with a warning.
    pub(super) fn plot_section<'a>(&mut self, sec: &'a Section, opts: &mut Options<'a>) {
        let mut plot3 = false;
        let mut series = None;
        for st in &sec.statements {
            let Some((key, os)) = self.option(st, "PLOT", PLOT_OPTS) else {
                continue;
            };
            match key {
                "TYPE" => {
                    for t in os.values {
                        if t.is_word("PLOT3") {
                            plot3 = true;
                        } else if t.is_word("PLOT1") || t.is_word("PLOT2") {
                            self.warn(
                                t.span,
                                format!("PLOT TYPE = {} is not drawn (only PLOT3's class profiles are); the request is ignored", t.text.to_ascii_uppercase()),
                            );
                        } else {
                            self.err(
                                t.span,
                                format!("unknown PLOT TYPE '{}': PLOT1, PLOT2 or PLOT3", t.text),
                            );
                        }
                    }
                }
                "SERIES" => series = Some((os.values, st.span)),
                _ => {}
            }
        }
        match (plot3, series) {
            (true, Some(s)) => opts.plot_series = Some(s),
            (true, None) => self.err_help(
                sec.header,
                "PLOT TYPE = PLOT3 needs SERIES: the variables of the class profiles",
                "for example SERIES = u1-u6 (*);",
            ),
            (false, Some((_, span))) => self.warn(
                span,
                "SERIES is drawn only with TYPE = PLOT3; the request is ignored",
            ),
            (false, None) => {}
        }
    }

    /// SERIES resolved against the analysis variables: `u1-u6 (*)` places
    /// them at 1, 2, ...; `y1 (0) y2 (1)` or `y1-y3 (0)` at the numbers
    /// given (a list from its number on); names alone continue the count.
    pub(super) fn plot_spec(
        &mut self,
        opts: &Options<'_>,
        d: &super::declarations::Decls,
    ) -> Option<PlotSpec> {
        let (toks, span) = opts.plot_series?;
        let mut series: Vec<(String, f64)> = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let end = toks[i..]
                .iter()
                .position(|t| t.is_sym('('))
                .map_or(toks.len(), |p| p + i);
            let vars = self.var_list(&toks[i..end], &d.use_names, false);
            let mut next = series.last().map_or(1.0, |s| s.1 + 1.0);
            i = end;
            if i < toks.len() {
                match (toks.get(i + 1), toks.get(i + 2)) {
                    (Some(t), Some(c)) if t.is_sym('*') && c.is_sym(')') => {}
                    (Some(t), Some(c)) if t.number().is_some() && c.is_sym(')') => {
                        next = t.number().unwrap_or(next);
                    }
                    _ => {
                        self.err_help(
                            toks[i].span,
                            "SERIES gives each variable's position on the horizontal axis in parentheses",
                            "for example SERIES = u1-u6 (*); or SERIES = y1 (0) y2 (1) y3 (2);",
                        );
                        return None;
                    }
                }
                i += 3;
            }
            for v in vars {
                series.push((d.use_names[v].clone(), next));
                next += 1.0;
            }
        }
        if series.is_empty() {
            self.err(span, "SERIES names no variable");
            return None;
        }
        let stem = self
            .src
            .path()
            .file_stem()
            .map_or("mlmix".into(), |s| s.to_string_lossy().into_owned());
        Some(PlotSpec {
            series,
            file: self.base_dir().join(format!("{stem}_profiles.svg")),
        })
    }

    // ------------------------------------------------------------ VARIABLE
    pub(super) fn variable_section<'a>(&mut self, sec: &'a Section, opts: &mut Options<'a>) {
        for st in &sec.statements {
            let Some((key, os)) = self.option(st, "VARIABLE", VARIABLE_OPTS) else {
                continue;
            };
            match key {
                "NAMES" => opts.names = Some(self.name_list(os.values)),
                "USEVARIABLES" => opts.usev = Some(os.values),
                "CATEGORICAL" => opts.categorical = Some(os.values),
                "NOMINAL" => opts.nominal = Some(os.values),
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
                    let list = self.class_list(os.values);
                    opts.classes.extend(list);
                }
                _ => {}
            }
        }
    }

    // ------------------------------------------------------------ ANALYSIS
    pub(super) fn analysis_section(&mut self, sec: &Section, opts: &mut Options<'_>) {
        for st in &sec.statements {
            let Some((key, os)) = self.option(st, "ANALYSIS", ANALYSIS_OPTS) else {
                continue;
            };
            let v = os.values;
            match key {
                "TYPE" => self.analysis_type(st, v, opts),
                "ESTIMATOR" => match v {
                    [t] if t.is_word("ML") => opts.analysis.estimator = Estimator::Ml,
                    [t] if t.is_word("MLR") => opts.analysis.estimator = Estimator::Mlr,
                    [t] if t.kind == TokKind::Word => self.err_help(
                        t.span,
                        format!(
                            "ESTIMATOR = {} is not supported",
                            t.text.to_ascii_uppercase()
                        ),
                        "use ML or MLR",
                    ),
                    _ => self.err(st.span, "ESTIMATOR is ML or MLR"),
                },
                "LINK" => match v {
                    [t] if t.is_word("LOGIT") => opts.analysis.link = Link::Logit,
                    [t] if t.is_word("PROBIT") => opts.analysis.link = Link::Probit,
                    _ => self.err(st.span, "LINK is LOGIT or PROBIT"),
                },
                "STARTS" => {
                    opts.starts_given = true;
                    self.analysis_starts(st, v, opts)
                }
                "STITERATIONS" | "MITERATIONS" | "ITERATIONS" => {
                    if let Some(n) = self.one_whole(key, v, st, 1, MAX_ITERATIONS) {
                        let n = n as usize;
                        match key {
                            "STITERATIONS" => opts.analysis.stiterations = n,
                            "MITERATIONS" => opts.analysis.miterations = n,
                            _ => opts.analysis.qn_iterations = n,
                        }
                    }
                }
                "STSEED" | "OPTSEED" => {
                    if let Some(s) = self.one_whole(key, v, st, 0, MAX_SEED) {
                        if key == "STSEED" {
                            opts.analysis.stseed = s;
                        } else {
                            opts.analysis.optseed = Some(s);
                        }
                    }
                }
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
                            self.err(
                                st.span,
                                format!(
                                    "{key} needs a {} number",
                                    if key == "LOGHIGH" {
                                        "positive"
                                    } else {
                                        "negative"
                                    }
                                ),
                            );
                        }
                    }
                    _ => self.err(
                        st.span,
                        format!(
                            "{key} needs a number, such as {}",
                            if key == "LOGHIGH" { "15" } else { "-15" }
                        ),
                    ),
                },
                // a second number (Mplus's processes per processor) is ignored
                "PROCESSORS" => {
                    let first = v.get(..1).unwrap_or(v);
                    if let Some(n) = self.one_whole(key, first, st, 1, MAX_PROCESSORS) {
                        opts.analysis.processors = Some(n as usize);
                    }
                }
                "INTEGRATION" => self.analysis_integration(st, v, opts),
                "ADAPTIVE" => match v {
                    [t] if t.is_word("ON") => opts.integration.adaptive = true,
                    [t] if t.is_word("OFF") => opts.integration.adaptive = false,
                    _ => self.err(st.span, "ADAPTIVE is ON or OFF"),
                },
                "ALGORITHM" => self.analysis_algorithm(v),
                _ => {}
            }
        }
        self.check_iterations(sec, opts);
    }

    /// ANALYSIS TYPE: MIXTURE, TWOLEVEL and the words that add nothing.
    fn analysis_type(&mut self, st: &Statement, v: &[Token], opts: &mut Options<'_>) {
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
            } else if t.is_word("THREELEVEL")
                || t.is_word("COMPLEX")
                || t.is_word("CROSSCLASSIFIED")
            {
                self.err(
                    t.span,
                    format!(
                        "TYPE = {} is not supported yet",
                        t.text.to_ascii_uppercase()
                    ),
                );
            } else if t.is_word("EFA")
                || t.is_word("BASIC")
                || t.is_word("RANDOM")
                || t.is_word("LOGLINEAR")
            {
                self.err(
                    t.span,
                    format!("TYPE = {} is not supported", t.text.to_ascii_uppercase()),
                );
            } else {
                self.err(t.span, format!("unknown TYPE '{}'", t.text));
            }
        }
        if mixture {
            opts.type_mixture = Some(st.span);
        }
    }

    /// ANALYSIS STARTS = N M (or 0), with N at most [`MAX_STARTS`].
    fn analysis_starts(&mut self, st: &Statement, v: &[Token], opts: &mut Options<'_>) {
        let example = "for example STARTS = 20 4; or STARTS = 0; for no random starts";
        let (n, m) = match v {
            [a] if whole_in(a, 0, 0).is_some() => (0, 0),
            [a, b] => {
                let range = |t| whole_in(t, 0, MAX_STARTS);
                match (range(a), range(b)) {
                    (Some(n), Some(m)) => (n, m),
                    _ => {
                        let bad = if range(a).is_none() { a } else { b };
                        return self.err_help(
                            bad.span,
                            format!(
                                "STARTS needs two whole numbers that are not negative and at most {}",
                                thousands(MAX_STARTS)
                            ),
                            example,
                        );
                    }
                }
            }
            _ => {
                return self.err_help(
                    st.span,
                    "STARTS needs two whole numbers that are not negative",
                    example,
                );
            }
        };
        if n == 0 && m == 0 {
            opts.analysis.starts_initial = 0;
            opts.analysis.starts_final = 0;
        } else if m == 0 {
            self.err_help(
                st.span,
                "STARTS = N M needs at least one final-stage start (M of 1 or more)",
                example,
            );
        } else if m > n {
            self.err(
                st.span,
                "STARTS = N M needs M (final-stage starts) no larger than N (initial-stage starts)",
            );
        } else {
            opts.analysis.starts_initial = n as usize;
            opts.analysis.starts_final = m as usize;
        }
    }

    /// The one value of a whole-number option: a whole number from `lo` to
    /// `hi`, or None after an error at the value naming the range.
    pub(super) fn one_whole(
        &mut self,
        key: &str,
        v: &[Token],
        st: &Statement,
        lo: u64,
        hi: u64,
    ) -> Option<u64> {
        let n = match v {
            [a] => whole_in(a, lo, hi),
            _ => None,
        };
        if n.is_none() {
            let span = match v {
                [a] => a.span,
                _ => st.span,
            };
            self.err(
                span,
                format!(
                    "{key} needs one whole number from {} to {}",
                    thousands(lo),
                    thousands(hi)
                ),
            );
        }
        n
    }

    /// STITERATIONS more than MITERATIONS: the initial stage's iterations
    /// count towards MITERATIONS, so it runs MITERATIONS at most.
    fn check_iterations(&mut self, sec: &Section, opts: &mut Options<'_>) {
        let a = &mut opts.analysis;
        if a.stiterations <= a.miterations {
            return;
        }
        let (st, mi) = (a.stiterations, a.miterations);
        a.stiterations = mi;
        let span = sec
            .statements
            .iter()
            .find(|s| s.tokens.first().is_some_and(|t| t.is_word("STITERATIONS")))
            .map_or(sec.header, |s| s.span);
        self.warn(
            span,
            format!(
                "STITERATIONS = {st} is more than MITERATIONS = {mi}; initial-stage iterations count towards MITERATIONS, so the initial stage runs {mi}"
            ),
        );
    }

    /// ANALYSIS INTEGRATION: a number of points, or a method and its points.
    fn analysis_integration(&mut self, st: &Statement, v: &[Token], opts: &mut Options<'_>) {
        opts.integration_span = Some(st.span);
        let bad = |b: &mut Self| {
            b.err_help(
                    st.span,
                    "INTEGRATION is a number of points, STANDARD(n), TRAPEZOID(n), GAUSSHERMITE(n) or MONTECARLO(n)",
                    "for example INTEGRATION = 15; or INTEGRATION = GAUSSHERMITE(25);",
                )
        };
        let (method, n) = match v {
            [n] if n.kind != TokKind::Word => (Some(IntegrationMethod::Trapezoid), points(n)),
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
                (method, points(n))
            }
            [m] if m.is_word("MONTECARLO") => (Some(IntegrationMethod::MonteCarlo), Some(500)),
            [m] if m.is_word("GAUSSHERMITE") => (Some(IntegrationMethod::GaussHermite), Some(15)),
            [m] if m.is_word("STANDARD") || m.is_word("TRAPEZOID") => {
                (Some(IntegrationMethod::Trapezoid), Some(15))
            }
            _ => (None, None),
        };
        let Some(method) = method else {
            return bad(self);
        };
        let max = match method {
            IntegrationMethod::MonteCarlo => MAX_MONTECARLO_POINTS,
            _ => MAX_POINTS_PER_DIMENSION,
        };
        match n {
            Some(n) if n >= 1 && n <= max => {
                opts.integration.method = method;
                opts.integration.points = n as usize;
            }
            Some(n) if n > max && method == IntegrationMethod::MonteCarlo => self.err(
                st.span,
                format!(
                    "at most {} Monte Carlo integration points",
                    MAX_MONTECARLO_POINTS
                ),
            ),
            Some(n) if n > max => self.err(
                st.span,
                format!("at most {MAX_POINTS_PER_DIMENSION} integration points per dimension"),
            ),
            _ => self.err(
                st.span,
                "the number of integration points must be a whole number of at least 1",
            ),
        }
    }

    /// ANALYSIS ALGORITHM: EM, EMA, FS, ODLL are ignored.
    fn analysis_algorithm(&mut self, v: &[Token]) {
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

    // -------------------------------------------------------------- OUTPUT
    pub(super) fn output_section(&mut self, sec: &Section, opts: &mut Options<'_>) {
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
                    "NOSERROR" => opts.output.noserror = true,
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
    pub(super) fn savedata_section(&mut self, sec: &Section, opts: &mut Options<'_>) {
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
                        } else if w.len() >= 5 && "FSCORES".starts_with(&w) {
                            opts.save_fscores = Some(t.span);
                        } else if t.kind == TokKind::Word {
                            self.warn(
                                t.span,
                                format!(
                                    "SAVE = {w} is not supported yet; only CPROBABILITIES and FSCORES are saved"
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
}

/// Is the word after `DATA` WIDETOLONG (or a prefix of at least four
/// letters of it, as command names may be shortened)?
fn is_widetolong(q: &str) -> bool {
    let q = q.to_ascii_uppercase();
    q.len() >= 4 && "WIDETOLONG".starts_with(&q)
}

/// Splits `u12` into ("u", 12, width of the digits).
pub(super) fn split_suffix(s: &str) -> Option<(&str, usize, usize)> {
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

/// A whole number from `lo` to `hi`: digits alone are read exactly, any
/// other number (`1e3`) must be whole.
pub(super) fn whole_in(t: &Token, lo: u64, hi: u64) -> Option<u64> {
    whole_any(t).filter(|n| (lo..=hi).contains(n))
}

/// A whole number that is not negative and fits in 64 bits (None for
/// anything larger, rather than a saturated value).
fn whole_any(t: &Token) -> Option<u64> {
    if t.kind != TokKind::Number {
        return None;
    }
    let digits = t.text.strip_prefix('+').unwrap_or(&t.text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return digits.parse().ok();
    }
    let x = t.number()?;
    // 2^64 and above do not fit
    (x >= 0.0 && x.fract() == 0.0 && x < 18_446_744_073_709_551_616.0).then_some(x as u64)
}

/// A number of integration points: a whole number, any whole number too
/// large for 64 bits read as `u64::MAX` (it is then too many, not wrong).
fn points(t: &Token) -> Option<u64> {
    whole_any(t).or_else(|| {
        t.number()
            .filter(|x| x.is_finite() && *x >= 1.0 && x.fract() == 0.0)
            .map(|_| u64::MAX)
    })
}

/// `n` with thousands separators (100,000), as the documentation writes it.
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
