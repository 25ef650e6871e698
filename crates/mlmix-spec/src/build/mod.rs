//! From syntax to the checked model: option tables, variable lists, MODEL
//! statements with Mplus's defaults, the data file, and parameter numbering.
//!
//! `Builder::run` calls the phases in order, each in its own module and
//! each handing the next an explicit state:
//! 1. `options`: the commands and their options → `Commands` (DATA
//!    WIDETOLONG's options are read by `widetolong`, DEFINE's statements by
//!    `define` with the expressions of `expr`);
//! 2. `dataset`: the data file and its column names, and `transforms`: the
//!    names after DATA WIDETOLONG and DEFINE → `DataFile`;
//! 3. `declarations`: USEVARIABLES, CATEGORICAL, WITHIN, BETWEEN,
//!    CLASSES, random slope names → `Decls`;
//! 4. `grammar` parses the MODEL statements, `statements` says which
//!    parameters each mentions, `two_level` what they mean on each level
//!    → `Stated`;
//! 5. `roles`: dependent variables and covariates → `Roles`;
//! 6. `dataset`: the analysed rows, read through `transforms` (the
//!    reshape, then DEFINE, row by row) → [`Dataset`];
//! 7. `assemble`: the [`Model`] without parameters;
//! 8. `defaults`: its parameters with Mplus's default equalities, and
//!    `equalities`: what statements fix, start and label, grouped into
//!    free parameters; `two_level` then reports random structures the
//!    engine refuses.
//!
//! Every phase reports every problem it finds; a phase stops the run only
//! when the next one cannot work without its result.
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

use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics, SpecError};
use crate::model::*;
use crate::montecarlo::{CovariateDist, MonteCarloSpec};
use crate::source::{Source, Span};
use crate::syntax;

mod assemble;
mod dataset;
mod declarations;
mod defaults;
mod define;
mod equalities;
mod expr;
mod factors;
mod grammar;
mod montecarlo;
mod options;
mod roles;
mod statements;
mod transforms;
mod two_level;
mod widetolong;

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
    load_source(read_input(path)?)
}

/// Reads an input file: a FIFO or a device is refused before it is opened
/// (it would block or never end).
pub(crate) fn read_input(path: &Path) -> Result<Source, SpecError> {
    crate::source::check_regular_file(path).map_err(|e| {
        let what = format!("input file '{}'", path.display());
        SpecError::single(Diagnostic::error_nowhere(e.message(&what)))
    })?;
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecError::single(Diagnostic::error_nowhere(format!(
            "cannot read input file '{}': {e}",
            path.display()
        )))
    })?;
    Ok(Source::new(path, text))
}

/// Checks an input file already in memory (its path resolves the data file).
pub fn load_source(src: Source) -> Result<Loaded, SpecError> {
    let mut diags = Diagnostics::default();
    let syntax = syntax::parse(&src, &mut diags);
    if syntax
        .sections
        .iter()
        .any(|s| s.command == syntax::Command::Montecarlo)
    {
        let header = syntax
            .sections
            .iter()
            .find(|s| s.command == syntax::Command::Montecarlo);
        let span = header.map_or(Span::default(), |s| s.header);
        diags.error_at(
            &src,
            span,
            "this is a Monte Carlo input (MONTECARLO:): it describes a simulation study, not an analysis of data".to_string(),
            Some("`mlmix fit` runs the study; `mlmix simulate` writes one generated data set".to_string()),
        );
        return Err(diags.into_error());
    }
    let mut b = Builder::new(&src, diags, None, None);
    let built = b.run(&syntax);
    let diags = b.diags;
    finish(diags, built, src)
}

/// The checked model, or the errors found.
fn finish(
    diags: Diagnostics,
    built: Option<(Model, Dataset)>,
    src: Source,
) -> Result<Loaded, SpecError> {
    match built {
        Some((model, data)) if !diags.has_errors() => {
            let (_, warnings) = diags.split();
            Ok(Loaded {
                model,
                data,
                warnings,
                source: src,
            })
        }
        _ => Err(diags.into_error()),
    }
}

/// Checks an external Monte Carlo input (DATA: TYPE = MONTECARLO) on data
/// set `rep` (1-based) of its list; with the list's data sets.
pub(crate) fn load_external(src: Source, rep: usize) -> Result<(Loaded, Vec<PathBuf>), SpecError> {
    let mut diags = Diagnostics::default();
    let syntax = syntax::parse(&src, &mut diags);
    let external = ExternalRun {
        rep,
        files: Vec::new(),
    };
    let mut b = Builder::new(&src, diags, None, Some(external));
    let built = b.run(&syntax);
    let files = b.external.take().map(|e| e.files).unwrap_or_default();
    let diags = b.diags;
    finish(diags, built, src).map(|l| (l, files))
}

// ---------------------------------------------------------------------------

/// Checks an input file: reports into `diags`, and builds the model.
struct Builder<'s> {
    src: &'s Source,
    diags: Diagnostics,
    /// TYPE = TWOLEVEL: statements belong to %WITHIN% or %BETWEEN%.
    twolevel: bool,
    /// How MODEL's names split into kinds ([`grammar::ModelNames`]).
    model_names: grammar::ModelNames,
    /// A Monte Carlo input: which model is built, and on what data.
    mc: Option<McRun>,
    /// An external Monte Carlo study (DATA: TYPE = MONTECARLO): which of
    /// the listed data sets is read, and the list.
    external: Option<ExternalRun>,
}

/// The data set an external Monte Carlo build reads.
#[derive(Debug, Default)]
pub(crate) struct ExternalRun {
    /// The data set (1-based) of the list.
    pub(crate) rep: usize,
    /// The listed data sets (filled when the list is read).
    pub(crate) files: Vec<PathBuf>,
}

/// Is `q` the qualifier of a `MODEL COVERAGE[-c]:` section?
pub(crate) fn is_coverage_qualifier(q: &str) -> bool {
    montecarlo::coverage_class(q).is_some()
}

/// Which model of a Monte Carlo input is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum McRole {
    /// `MODEL POPULATION:`, on a template data set.
    Population,
    /// `MODEL:`, on a generated data set.
    Analysis,
    /// `MODEL COVERAGE:` (the analysis model with the population values
    /// for coverage), on a template data set.
    Coverage,
}

/// A Monte Carlo build: its role, its data, and what it found.
struct McRun {
    role: McRole,
    /// The generated data (the analysis); None: the template is made.
    data: Option<Source>,
    /// The study's settings and the covariates' distributions.
    out: Option<(MonteCarloSpec, Vec<CovariateDist>)>,
}

/// Checks one of the two models of a Monte Carlo input (`data`: the
/// generated data set of the analysis).
pub(crate) fn load_mc(
    src: Source,
    role: McRole,
    data: Option<Source>,
) -> Result<(Loaded, (MonteCarloSpec, Vec<CovariateDist>)), SpecError> {
    let mut diags = Diagnostics::default();
    let syntax = syntax::parse(&src, &mut diags);
    let run = McRun {
        role,
        data,
        out: None,
    };
    let mut b = Builder::new(&src, diags, Some(run), None);
    let built = b.run(&syntax);
    let out = b.mc.take().and_then(|m| m.out);
    let diags = b.diags;
    match out {
        Some(out) => finish(diags, built, src).map(|l| (l, out)),
        None => Err(diags.into_error()),
    }
}

impl<'s> Builder<'s> {
    fn new(
        src: &'s Source,
        diags: Diagnostics,
        mc: Option<McRun>,
        external: Option<ExternalRun>,
    ) -> Self {
        Builder {
            src,
            diags,
            twolevel: false,
            model_names: grammar::ModelNames::default(),
            mc,
            external,
        }
    }

    fn err(&mut self, span: Span, msg: impl Into<String>) {
        self.diags.error_at(self.src, span, msg.into(), None);
    }

    fn err_help(&mut self, span: Span, msg: impl Into<String>, help: impl Into<String>) {
        self.diags
            .error_at(self.src, span, msg.into(), Some(help.into()));
    }

    fn warn(&mut self, span: Span, msg: impl Into<String>) {
        self.diags.warning_at(self.src, span, msg.into(), None);
    }

    /// The folder of the input file, which FILE names are relative to.
    fn base_dir(&self) -> &'s Path {
        self.src.path().parent().unwrap_or(Path::new(""))
    }

    /// The phases in order. None when the input has errors (reported in
    /// `diags`).
    fn run(&mut self, syntax: &syntax::Syntax) -> Option<(Model, Dataset)> {
        let mut cmds = self.commands(syntax);
        if self.diags.has_errors() && cmds.opts.file.is_none() {
            return None;
        }
        let file = self.open_data(&cmds.opts)?;
        self.twolevel = cmds.opts.type_twolevel.is_some();
        let mut decls = self.declarations(&cmds.opts, &file, &cmds.model_sections);
        let mut stated = self.statements(&cmds.model_sections, &mut decls, &file.names, file.span);
        let covariates = match self.mc.is_some() {
            true => self.take_covariates(&mut stated, &decls.use_names),
            false => Vec::new(),
        };
        let roles = self.roles(&decls, &mut stated, cmds.opts.classes_span, file.span);
        if self.diags.has_errors() {
            return None;
        }
        let mut dataset = self.read_data(&file, &cmds.opts, &decls, &roles.is_dep)?;
        let mc_settings = self.mc_settings(&cmds, &file, &decls);
        cmds.opts.output.plot = self.plot_spec(&cmds.opts, &decls);
        let between_names: Vec<String> = decls
            .between
            .iter()
            .map(|&v| decls.use_names[v].clone())
            .collect();
        let mut model = self.assemble(cmds, file, decls, &stated, roles, &mut dataset)?;
        self.parameters(&mut model, &stated.mentions);
        if self.diags.has_errors() {
            return None;
        }
        self.random_structure(&model, &stated.mentions);
        if let Some(spec) = mc_settings {
            let dists = match self.mc.as_ref().map(|m| m.role) {
                Some(McRole::Population) => {
                    self.covariate_dists(&model, &covariates, &between_names)
                }
                _ => Vec::new(),
            };
            if let Some(run) = self.mc.as_mut() {
                run.out = Some((spec, dists));
            }
        }
        if self.diags.has_errors() {
            return None;
        }
        Some((model, dataset))
    }
}
