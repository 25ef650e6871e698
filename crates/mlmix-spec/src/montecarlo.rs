//! Monte Carlo inputs: the `MONTECARLO:` command and `MODEL POPULATION:`.
//!
//! A Monte Carlo input describes a simulation study instead of an analysis
//! of data: MONTECARLO gives the generated variables (NAMES, CATEGORICAL
//! with GENERATE's thresholds, GENCLASSES, WITHIN, BETWEEN, NCSIZES and
//! CSIZES for two-level data), the sample size, the number of replications
//! and the seed; `MODEL POPULATION:` gives the population values; `MODEL:`
//! the analysis model fitted to every replication, whose values are the
//! population values for coverage unless `MODEL COVERAGE:` gives them
//! (Mplus's rules, User's Guide chapter 12).
//!
//! [`load_study`] checks such a file into a [`Study`]: the population model
//! (checked on a small template data set that shows every category, so
//! that it has every parameter) with the study's settings.
//! [`Study::analysis`] checks the analysis model on one generated data set,
//! written as text in NAMES order (then the cluster ids), exactly as a user
//! would give it in a data file. Generating the data is the engine's work
//! (`mlmix::montecarlo`).

use std::path::{Path, PathBuf};

use crate::build::{Loaded, McRole, load_mc};
use crate::diag::{Diagnostics, SpecError};
use crate::source::Source;
use crate::syntax::{self, Command};

/// The name of the cluster-id column of generated two-level data (the
/// last column).
pub const CLUSTER_COLUMN: &str = "CLUSTER";

/// The settings of a Monte Carlo study (the MONTECARLO command).
#[derive(Debug, Clone, PartialEq)]
pub struct MonteCarloSpec {
    /// NAMES: the generated variables, in the order of the data's columns.
    pub names: Vec<String>,
    /// NOBSERVATIONS: rows per replication.
    pub observations: usize,
    /// NREPS: replications.
    pub replications: usize,
    /// SEED.
    pub seed: u64,
    /// NCSIZES and CSIZES: the size of every cluster, in order (two-level
    /// data; they add up to `observations`).
    pub cluster_sizes: Option<Vec<usize>>,
    /// GENERATE: the number of thresholds of each categorical variable.
    pub thresholds: Vec<(String, usize)>,
    /// PATMISS: per pattern, the variables it makes missing and with what
    /// probability.
    pub missing_patterns: Vec<Vec<(String, f64)>>,
    /// PATPROBS: the probability of each pattern.
    pub pattern_probabilities: Vec<f64>,
    /// SAVE: the file name of the generated data; with REPSAVE, a `*` in it
    /// is replaced by the replication number.
    pub save: Option<PathBuf>,
    /// REPSAVE: the replications whose data are saved (1-based); empty with
    /// SAVE alone: the first.
    pub repsave: Vec<usize>,
}

/// The distribution a covariate is drawn from (MODEL POPULATION's
/// `[x@m]; x@v;`): normal.
#[derive(Debug, Clone, PartialEq)]
pub struct CovariateDist {
    /// Its column in the population model's variables.
    pub var: usize,
    /// Mean.
    pub mean: f64,
    /// Variance.
    pub variance: f64,
    /// A BETWEEN variable: one draw per cluster.
    pub between: bool,
}

/// A checked Monte Carlo input.
#[derive(Debug, Clone)]
pub struct Study {
    /// MONTECARLO's settings.
    pub spec: MonteCarloSpec,
    /// The population model, checked on a template data set that shows
    /// every category (its data mean nothing).
    pub population: Loaded,
    /// The covariates' distributions.
    pub covariates: Vec<CovariateDist>,
    /// `MODEL COVERAGE:`, if the input has it: the analysis model with the
    /// population values for coverage, checked on the template data set.
    pub coverage: Option<Loaded>,
    /// The input file.
    pub source: Source,
    /// An external study's data sets (DATA: TYPE = MONTECARLO), in the
    /// list's order; empty when the study generates its data. An external
    /// study's `population` is its analysis model checked on the first
    /// data set: the values MODEL gives are the population values.
    pub external: Vec<PathBuf>,
}

/// Does the input have a `MONTECARLO:` command?
pub fn is_montecarlo(src: &Source) -> bool {
    sections(src)
        .iter()
        .any(|s| s.command == Command::Montecarlo)
}

/// The input's commands (its errors are left to the load that follows).
fn sections(src: &Source) -> Vec<syntax::Section> {
    syntax::parse(src, &mut Diagnostics::default()).sections
}

/// Is the input an external Monte Carlo study: `DATA: TYPE = MONTECARLO`,
/// FILE listing the data sets that the analysis model is fitted to?
pub fn is_external(src: &Source) -> bool {
    sections(src)
        .iter()
        .filter(|s| s.command == Command::Data)
        .flat_map(|s| &s.statements)
        .any(|st| {
            st.tokens.first().is_some_and(|t| t.is_word("TYPE"))
                && st.tokens.iter().skip(1).any(|t| t.is_word("MONTECARLO"))
        })
}

/// Reads a Monte Carlo input file and checks its population model (an
/// external study: its analysis model on the first listed data set).
pub fn load_study(path: &Path) -> Result<Study, SpecError> {
    load_study_source(crate::build::read_input(path)?)
}

/// [`load_study`] of an input already in memory.
pub fn load_study_source(src: Source) -> Result<Study, SpecError> {
    if is_external(&src) {
        return load_external_study(src);
    }
    let (population, out) = load_mc(src.clone(), McRole::Population, None)?;
    let (spec, covariates) = out;
    let coverage = if has_coverage_model(&src) {
        Some(load_mc(src.clone(), McRole::Coverage, None)?.0)
    } else {
        None
    };
    Ok(Study {
        spec,
        population,
        covariates,
        coverage,
        source: src,
        external: Vec::new(),
    })
}

/// Does the input have a `MODEL COVERAGE[-c]:` section?
fn has_coverage_model(src: &Source) -> bool {
    sections(src).iter().any(|s| {
        s.command == Command::Model
            && s.qualifier
                .as_ref()
                .is_some_and(|(q, _)| crate::build::is_coverage_qualifier(q))
    })
}

/// An external study: the analysis model on the first data set of the
/// list, which gives the parameters and the population values.
fn load_external_study(src: Source) -> Result<Study, SpecError> {
    let (first, files) = crate::build::load_external(src.clone(), 1)?;
    let spec = MonteCarloSpec {
        names: Vec::new(),
        observations: first.data.n_rows(),
        replications: files.len(),
        seed: 0,
        cluster_sizes: None,
        thresholds: Vec::new(),
        missing_patterns: Vec::new(),
        pattern_probabilities: Vec::new(),
        save: None,
        repsave: Vec::new(),
    };
    Ok(Study {
        spec,
        population: first,
        covariates: Vec::new(),
        coverage: None,
        source: src,
        external: files,
    })
}

impl Study {
    /// The analysis model checked on data set `rep` (1-based) of an
    /// external study's list.
    pub fn external_analysis(&self, rep: usize) -> Result<Loaded, SpecError> {
        crate::build::load_external(self.source.clone(), rep).map(|(l, _)| l)
    }

    /// The analysis model checked on one generated data set: `data` holds
    /// the rows as text (NAMES order, then the cluster id; `*` missing);
    /// `label` names it in messages ("replication 7").
    pub fn analysis(&self, data: String, label: &str) -> Result<Loaded, SpecError> {
        let dir = self.source.path().parent().unwrap_or(Path::new(""));
        let data = Source::new(dir.join(format!("<{label}>")), data);
        load_mc(self.source.clone(), McRole::Analysis, Some(data)).map(|(l, _)| l)
    }
}
