//! The fitted result: one type carrying the estimates, the fit information,
//! every completed start, and what the report and the JSON document show.

use serde::Serialize;

pub use mlmix_optim::Termination;

/// A fitted model.
#[derive(Debug, Clone, Serialize)]
pub struct Fit {
    /// TITLE.
    pub title: String,
    /// The input file.
    pub input_file: String,
    /// The data file.
    pub data_file: String,
    /// The backend that ran the loop.
    pub backend: String,
    /// "ML" or "MLR".
    pub estimator: String,
    /// "LOGIT" or "PROBIT".
    pub link: String,
    /// Rows analysed.
    pub observations: usize,
    /// Rows read from the data file.
    pub rows_read: usize,
    /// Distinct rows (response patterns) the engine evaluated.
    pub distinct_rows: usize,
    /// Number of free parameters.
    pub free_parameters: usize,
    /// The maximised log-likelihood (H0 value), all constants included.
    pub loglikelihood: f64,
    /// MLR scaling correction factor for likelihood-ratio tests.
    pub scaling_correction: Option<f64>,
    /// Akaike information criterion, −2 log L + 2p.
    pub aic: f64,
    /// Bayesian information criterion, −2 log L + p ln n.
    pub bic: f64,
    /// Sample-size adjusted BIC, −2 log L + p ln((n + 2)/24).
    pub abic: f64,
    /// Relative entropy of the classification (none with one class).
    pub entropy: Option<f64>,
    /// Did the best solution converge?
    pub converged: bool,
    /// Was the run stopped by the user (SIGINT/SIGTERM)? The estimates are
    /// then the best solution found so far, without standard errors.
    pub interrupted: bool,
    /// Why the best solution's optimisation stopped.
    pub termination: Termination,
    /// EM and quasi-Newton iterations of the best solution.
    pub iterations: Iterations,
    /// Likelihood evaluations by kind.
    pub evaluations: Vec<EvaluationCount>,
    /// The random starts.
    pub starts: StartsSummary,
    /// How the standard errors were computed, or why they were not.
    pub standard_errors: String,
    /// Smallest over largest eigenvalue of the scaled information matrix.
    pub condition_number: Option<f64>,
    /// Class counts and proportions for each class variable.
    pub class_proportions: Vec<ClassProportion>,
    /// Counts of the class patterns (several class variables only).
    pub class_patterns: Vec<ClassPattern>,
    /// Every model parameter, class by class (one per
    /// `Model::parameters` entry). The JSON leaves out those the report
    /// does not show (an empty `section`: the residual variances, fixed at
    /// 0, of factor indicators' intercepts in single-level models).
    #[serde(serialize_with = "reported_parameters")]
    pub parameters: Vec<ParameterEstimate>,
    /// Category probabilities of categorical indicators, class by class.
    pub probabilities: Vec<CategoryProbability>,
    /// Transition probabilities of class variables regressed on earlier ones
    /// (at the means of random class logits).
    pub transitions: Vec<TransitionTable>,
    /// A latent transition model's explained variances (eq 14), effects of
    /// the random class logits and averaged transition probabilities
    /// ([`crate::lta`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latent_transition: Option<crate::lta::TransitionDecomposition>,
    /// Warnings about the fit.
    pub warnings: Vec<String>,
    /// Input warnings (ignored requests, excluded rows).
    pub input_warnings: Vec<String>,
    /// Two-level models: clusters, integration, ICCs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub two_level: Option<TwoLevelSummary>,
    /// Single-level models with factors: the numerical integration over
    /// them (two-level models have it in `two_level`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration: Option<IntegrationSummary>,
    /// Binary items loading on one factor: their discriminations and
    /// difficulties, class by class (the report's IRT PARAMETERIZATION).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub irt: Vec<IrtItem>,
    /// The item profiles of a grade of membership model written long:
    /// P(u = 1 | class, item) for a binary dependent regressed on item
    /// dummies (the report's ITEM PROFILES).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<crate::profiles::ItemProfile>,
    /// Per analysed row, per factor (in the order of the model's factors):
    /// the posterior mean and standard deviation of the factor given the
    /// row, over its classes (SAVE = FSCORES; empty without factors).
    #[serde(skip)]
    pub factor_scores: Vec<Vec<[f64; 2]>>,
    /// Per analysed row: posterior probability of each class combination.
    #[serde(skip)]
    pub posteriors: Vec<Vec<f64>>,
    /// Per analysed row, per class variable: posterior probability of each
    /// of its classes.
    #[serde(skip)]
    pub class_marginals: Vec<Vec<Vec<f64>>>,
    /// Per analysed row, per class variable: the most likely class (0-based).
    #[serde(skip)]
    pub most_likely: Vec<Vec<usize>>,
    /// Number of class combinations.
    #[serde(skip)]
    pub n_combos: usize,
    /// Free parameters: name, start, estimate, se (for TECH1).
    #[serde(skip)]
    pub free: Vec<FreeEstimate>,
}

/// The likelihood evaluations of one kind that the fit made (random
/// starts, optimisation and standard errors together).
#[derive(Debug, Clone, Serialize)]
pub struct EvaluationCount {
    /// `loglik`, `gradient`, `em` (gradient and expected information) or
    /// `meat` (the MLR sandwich's).
    pub kind: String,
    /// How many.
    pub count: usize,
    /// Their total wall-clock time in seconds.
    pub seconds: f64,
    /// Integrand evaluations: rows times passes (a pass is a between-level
    /// class combination at one integration node), summed over them.
    pub row_passes: f64,
}

/// Iteration counts.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Iterations {
    /// EM iterations.
    pub em: usize,
    /// Quasi-Newton iterations.
    pub quasi_newton: usize,
}

/// The random starts.
#[derive(Debug, Clone, Serialize)]
pub struct StartsSummary {
    /// Initial-stage starts (0: the unperturbed starting values only).
    pub initial: usize,
    /// Final-stage starts.
    pub final_stage: usize,
    /// Initial-stage starts never begun because the run was interrupted
    /// (0 otherwise).
    pub skipped: usize,
    /// EM iterations per initial-stage start.
    pub stiterations: usize,
    /// STSEED (or the --seed override).
    pub seed: u64,
    /// OPTSEED, when only the start with that seed was run.
    pub optseed: Option<u64>,
    /// Final-stage results, best first.
    pub final_logliks: Vec<StartResult>,
    /// Was the best log-likelihood reached by more than one start?
    pub best_replicated: bool,
    /// How many final-stage starts reached it.
    pub best_count: usize,
    /// Where the starting values came from when they are a nested model's
    /// solution (a GoM's latent class model), not the defaults.
    pub nested: Option<NestedStart>,
    /// Integration nodes of the coarser rule the initial stage ran on,
    /// when the model's rule is large (see `fit::COARSE_INITIAL_ABOVE`).
    pub coarse_initial_nodes: Option<usize>,
}

/// Starting values from the solution of a nested model of the same data
/// (see `nested_start`).
#[derive(Debug, Clone, Serialize)]
pub struct NestedStart {
    /// Which model ("latent class model", "factor mixture model").
    pub model: String,
    /// Points per dimension of its integration rule when fewer than the
    /// model's (before adaptation's widening: see `nested_start`).
    pub integration_points: Option<usize>,
    /// Its log-likelihood.
    pub loglikelihood: f64,
    /// Whether its fit converged.
    pub converged: bool,
    /// The limit of quasi-Newton iterations per start that stopped it,
    /// when it had one below the model's (see
    /// `nested_start::COMPANION_ITERATIONS`): starting values need no
    /// more.
    pub iteration_limit: Option<usize>,
    /// Whether its best log-likelihood was replicated over its starts.
    pub best_replicated: bool,
}

/// One final-stage start.
#[derive(Debug, Clone, Serialize)]
pub struct StartResult {
    /// Start number.
    pub start: usize,
    /// Its seed (OPTSEED reruns it).
    pub seed: u64,
    /// Log-likelihood after the initial stage.
    pub initial_loglikelihood: f64,
    /// Final log-likelihood.
    pub loglikelihood: f64,
    /// Did it converge?
    pub converged: bool,
}

/// Class count and proportion.
#[derive(Debug, Clone, Serialize)]
pub struct ClassProportion {
    /// Class variable.
    pub variable: String,
    /// Class (1-based).
    pub class: usize,
    /// Sum of posterior probabilities (equal, at the ML estimates, to the
    /// count implied by the estimated model).
    pub count: f64,
    /// `count / n`.
    pub proportion: f64,
    /// Rows whose most likely class this is.
    pub most_likely_count: f64,
    /// `most_likely_count / n`.
    pub most_likely_proportion: f64,
}

/// A class pattern (one class of each class variable).
#[derive(Debug, Clone, Serialize)]
pub struct ClassPattern {
    /// The classes, 1-based, in CLASSES order.
    pub classes: Vec<usize>,
    /// Sum of posterior probabilities.
    pub count: f64,
    /// `count / n`.
    pub proportion: f64,
    /// Rows whose most likely pattern this is.
    pub most_likely_count: f64,
}

/// One parameter of the model in one class.
#[derive(Debug, Clone, Serialize)]
pub struct ParameterEstimate {
    /// Free parameter number (TECH1 numbering), `None` if fixed.
    pub number: Option<usize>,
    /// Group heading as in Mplus output ("Thresholds", "Means", ...).
    pub section: String,
    /// The parameter in Mplus notation (`U1$1`, `Y ON X`, `C#1`).
    pub name: String,
    /// `C#1` for class-specific rows, `None` for class-model parameters.
    pub class: Option<String>,
    /// Estimate.
    pub estimate: f64,
    /// Standard error (`None` if fixed or not computed).
    pub se: Option<f64>,
    /// Estimate / SE.
    pub est_se: Option<f64>,
    /// Two-tailed p-value.
    pub p_value: Option<f64>,
    /// Fixed in the model (`@v`)?
    pub fixed: bool,
    /// Held at a bound during estimation (reported as fixed)?
    pub at_bound: bool,
    /// Label, if any.
    pub label: Option<String>,
}

/// P(category) of a categorical indicator in a class.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryProbability {
    /// Variable.
    pub variable: String,
    /// Class, `C#1`.
    pub class: String,
    /// Category number (1-based, as in Mplus output).
    pub category: usize,
    /// The data value of that category.
    pub value: f64,
    /// Probability.
    pub probability: f64,
    /// Delta-method standard error.
    pub se: Option<f64>,
}

/// P(class | earlier classes) for a class variable with parents.
#[derive(Debug, Clone, Serialize)]
pub struct TransitionTable {
    /// The class variable.
    pub variable: String,
    /// Its parents.
    pub given: Vec<String>,
    /// One row per parent pattern: the parents' classes (1-based) and the
    /// probabilities of each class.
    pub rows: Vec<TransitionRow>,
    /// True when the class variable has covariates (probabilities are at
    /// covariate values 0).
    pub at_zero_covariates: bool,
}

/// One row of a transition table.
#[derive(Debug, Clone, Serialize)]
pub struct TransitionRow {
    /// Parents' classes, 1-based.
    pub from: Vec<usize>,
    /// Probability of each class.
    pub probabilities: Vec<f64>,
}

/// A free parameter with its start and estimate.
#[derive(Debug, Clone, Serialize)]
pub struct FreeEstimate {
    /// TECH1 number (1-based).
    pub number: usize,
    /// Name.
    pub name: String,
    /// Starting value (unperturbed).
    pub start: f64,
    /// Estimate.
    pub estimate: f64,
    /// Standard error.
    pub se: Option<f64>,
}

/// What a two-level fit adds to the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TwoLevelSummary {
    /// The CLUSTER variable.
    pub cluster_variable: String,
    /// Number of clusters.
    pub clusters: usize,
    /// Integration method ("trapezoid, adaptive", ...).
    pub integration: String,
    /// Integration dimensions: the random effects, less those whose
    /// variance is fixed at 0 (constants, which add no dimension).
    pub dimensions: usize,
    /// Total integration points (nodes).
    pub points: usize,
    /// Clusters whose grid was adapted at the solution (adaptive only).
    pub adapted_clusters: Option<usize>,
    /// ICC of each random class logit intercept (eq 20).
    pub icc: Vec<ClassIcc>,
    /// Dimensions of the within-level factors, integrated per row with a
    /// fixed rule (0 without within-level factors).
    #[serde(default)]
    pub within_dimensions: usize,
    /// Points of that rule per row (0 without within-level factors).
    #[serde(default)]
    pub within_points: usize,
}

impl TwoLevelSummary {
    /// Its integration lines, as a single-level model has them.
    pub fn integration_summary(&self) -> IntegrationSummary {
        IntegrationSummary {
            integration: self.integration.clone(),
            dimensions: self.dimensions,
            points: self.points,
            adapted: self.adapted_clusters,
        }
    }
}

/// The numerical integration over the continuous latent variables (the
/// factors of a single-level model; a two-level model has the same in its
/// [`TwoLevelSummary`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntegrationSummary {
    /// Integration method ("trapezoid, adaptive", ...).
    pub integration: String,
    /// Integration dimensions: the factors (or random effects), less those
    /// whose variance is fixed at 0.
    pub dimensions: usize,
    /// Integration points (nodes) per integral: per row of a single-level
    /// model, per cluster of a two-level one.
    pub points: usize,
    /// Units whose grid was adapted at the solution (adaptive only): the
    /// distinct rows of a single-level model, the clusters of a two-level
    /// one.
    pub adapted: Option<usize>,
}

/// The IRT parameterization of a binary item loading on one factor, in one
/// class: P(u = 1 | theta) = F(a (theta - b)) with theta the factor
/// standardised in the class, theta = (f - alpha) / sqrt(psi), so a =
/// lambda sqrt(psi) and b = (tau - lambda alpha) / (lambda sqrt(psi));
/// standard errors by the delta method.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IrtItem {
    /// The factor.
    pub factor: String,
    /// The item.
    pub item: String,
    /// `C#1` in a mixture, `None` otherwise.
    pub class: Option<String>,
    /// The discrimination a = lambda sqrt(psi).
    pub discrimination: DerivedValue,
    /// The difficulty b = (tau - lambda alpha) / (lambda sqrt(psi)).
    pub difficulty: DerivedValue,
    /// A 3PL item's guessing probability g = 1 / (1 + e^−γ) (absent for
    /// the 2PL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guessing: Option<DerivedValue>,
}

/// A quantity derived from the parameters (IRT parameters, explained
/// variances, effects) with its delta-method standard error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DerivedValue {
    /// Estimate.
    pub estimate: f64,
    /// Standard error (`None` when the standard errors were not computed).
    pub se: Option<f64>,
    /// Estimate / SE.
    pub est_se: Option<f64>,
    /// Two-tailed p-value.
    pub p_value: Option<f64>,
}

/// The intraclass correlation of a within-between class variable's logit:
/// Var(alpha) / (Var(alpha) + pi^2/3) (eq 20).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassIcc {
    /// The class variable.
    pub variable: String,
    /// The class (1-based).
    pub class: usize,
    /// The variance of its random logit intercept (the total variance
    /// when it is regressed on other random effects, eq 15).
    pub variance: f64,
    /// The ICC.
    pub icc: f64,
}

/// The parameters the report shows (a non-empty section), for the JSON.
fn reported_parameters<S: serde::Serializer>(
    rows: &[ParameterEstimate],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(rows.iter().filter(|r| !r.section.is_empty()))
}
