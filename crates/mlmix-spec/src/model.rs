//! The checked model: the one type the engine accepts. It is plain data
//! (serde), so it can be written to and read from JSON.
//!
//! Indices: `var` fields index [`Model::variables`]; `cv` fields index
//! [`Model::class_vars`]; classes are 0-based here (class `c#1` is 0). The last
//! class of every class variable is the reference class of its multinomial
//! logit: its intercept, slopes and class-on-class effects are 0 and have no
//! [`Parameter`] entry.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A checked model, ready to be fitted to its data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// TITLE text.
    pub title: String,
    /// The input file it came from.
    pub input_file: PathBuf,
    /// Where the data are and how to read them.
    pub data: DataSpec,
    /// The analysis variables, in USEVARIABLES order.
    pub variables: Vec<Variable>,
    /// IDVARIABLE, if any (a column of the data, not an analysis variable).
    pub id_variable: Option<String>,
    /// The latent class variables, in CLASSES order.
    pub class_vars: Vec<ClassVar>,
    /// Residual covariances between continuous dependent variables
    /// (`y WITH z`), as pairs of variable indices with `a < b`.
    pub covariances: Vec<(usize, usize)>,
    /// Every parameter of the model, free or fixed, class by class.
    pub parameters: Vec<Parameter>,
    /// The free parameters, numbered from 1 in reports (TECH1 numbering);
    /// each one stands for one or more [`Parameter`]s held equal.
    pub free: Vec<FreeParameter>,
    /// Estimation settings.
    pub analysis: Analysis,
    /// OUTPUT requests.
    pub output: OutputSpec,
    /// SAVEDATA requests.
    pub savedata: Option<SaveData>,
    /// The continuous latent variables (random effects and factors) and
    /// their numerical integration, for any TYPE.
    #[serde(default)]
    pub latent: Latent,
    /// TYPE = TWOLEVEL: the clusters the rows are nested in.
    #[serde(default)]
    pub two_level: Option<TwoLevel>,
}

/// The two-level part of a model (TYPE = TWOLEVEL \[MIXTURE\]): rows are
/// nested in clusters (CLUSTER), and the random effects of
/// [`Model::latent`] vary over clusters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwoLevel {
    /// The CLUSTER variable (a column of the data, not an analysis variable).
    pub cluster: String,
}

/// The continuous latent variables of a model, integrated numerically.
///
/// In a two-level model they are cluster-level (between-level) normal
/// latent variables: random intercepts of within-level dependent variables,
/// random slopes (`s | y ON x`), random logit intercepts of within-level
/// class variables (`c#1` on the between level) and between-level factors.
/// In a single-level model they are the factors (`f BY u1-u10`), one
/// value per row. Each is normal; its mean is the fixed part of the
/// coefficient it makes random (the intercept, threshold, slope or class
/// logit intercept parameter) or, for a factor, [`ParamKind::FactorMean`];
/// their (residual) covariance matrix is [`ParamKind::RandomVariance`] and
/// [`ParamKind::RandomCovariance`], integrated numerically as b = mu + L z.
/// Regressions are parameters too: on BETWEEN covariates (slopes of the
/// dependent, [`ParamKind::RandomSlopeOn`], class logit slopes) and among
/// random effects ([`ParamKind::RandomRegression`], and the loadings
/// [`ParamKind::Loading`], which regress an indicator's intercept on its
/// factor), which make b = (I - B)^-1 (mu + Gamma w + L z) (see
/// [`crate::between`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Latent {
    /// The random effects and factors; those whose variance is not fixed
    /// at zero are the integration dimensions, in this order.
    pub random: Vec<RandomEffect>,
    /// The class variable whose classes the covariance matrix, the
    /// regressions among them and the factor means vary over, if any.
    pub cov_class_var: Option<usize>,
    /// How they are integrated.
    pub integration: Integration,
}

/// A random effect (a between-level continuous latent variable).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomEffect {
    /// Its name: the dependent variable (random intercept), the name
    /// before `|` (random slope) or `c#1` (random class logit intercept).
    pub name: String,
    /// What it makes random.
    pub kind: RandomKind,
    /// A within-level latent variable of a two-level model (a factor in
    /// `%WITHIN%` and its indicators' [`RandomKind::WithinIntercept`]s):
    /// it varies over the rows of a cluster, so it is integrated per row
    /// inside the cluster's integral, not over the cluster.
    #[serde(default)]
    pub within: bool,
}

/// What a random effect makes random.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RandomKind {
    /// The intercept (continuous) or the negated thresholds (categorical)
    /// of a dependent variable.
    Intercept {
        /// The dependent variable.
        var: usize,
    },
    /// The slope of a dependent variable on a within-level covariate.
    Slope {
        /// The dependent variable.
        var: usize,
        /// The covariate.
        covariate: usize,
    },
    /// The logit intercept of one class of a within-level class variable.
    ClassIntercept {
        /// The class variable.
        cv: usize,
        /// The class (0-based; never the last).
        class: usize,
    },
    /// A factor (`f BY u1-u10`): a latent variable of its own, with mean
    /// [`ParamKind::FactorMean`], measured by the intercepts of its
    /// indicators through [`ParamKind::Loading`]s.
    Factor,
    /// The within-level part of a dependent variable's intercept in a
    /// two-level model, measured by a within-level factor (its residual
    /// variance is fixed at 0): the row's shift `Σ λ f` of the intercept
    /// (continuous) or the negated thresholds (categorical). Its mean is
    /// the variable's own intercept, carried by the variable (or its
    /// between-level random intercept).
    WithinIntercept {
        /// The dependent variable.
        var: usize,
    },
}

/// Numerical integration over the random effects (ANALYSIS: INTEGRATION,
/// ADAPTIVE).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Integration {
    /// The rule.
    pub method: IntegrationMethod,
    /// Points per dimension (trapezoid, Gauss-Hermite) or in total
    /// (Monte Carlo).
    pub points: usize,
    /// Adaptive: nodes centred and scaled per cluster by its posterior.
    pub adaptive: bool,
}

impl Default for Integration {
    fn default() -> Self {
        Integration {
            method: IntegrationMethod::Trapezoid,
            points: 15,
            adaptive: true,
        }
    }
}

/// An integration rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IntegrationMethod {
    /// Equally spaced points (Mplus STANDARD, the default).
    Trapezoid,
    /// Gauss-Hermite points.
    GaussHermite,
    /// Quasi-random Monte Carlo points.
    MonteCarlo,
}

/// How the data file is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// The data file, resolved against the input file's folder.
    pub file: PathBuf,
    /// The file name as written in the input.
    pub file_as_written: String,
    /// Column names (NAMES), or `None` when the first row of a CSV file
    /// holds them.
    pub names: Option<Vec<String>>,
    /// Missing-value codes.
    pub missing: MissingSpec,
    /// LISTWISE = ON: drop rows with any missing analysis variable.
    pub listwise: bool,
}

/// MISSING: which values mean "not observed".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MissingSpec {
    /// A symbol (`.` or `*`) that marks a missing value anywhere.
    pub symbol: Option<char>,
    /// Codes that mean missing for every variable (`ALL(-99)`).
    pub all: Vec<f64>,
    /// Codes for particular variables (`u1-u5(9)`), by column name.
    pub by_name: Vec<(String, Vec<f64>)>,
}

impl MissingSpec {
    /// Is `value` a missing code for column `name`?
    pub fn is_missing_code(&self, name: &str, value: f64) -> bool {
        self.all.contains(&value)
            || self
                .by_name
                .iter()
                .any(|(n, codes)| n.eq_ignore_ascii_case(name) && codes.contains(&value))
    }
}

/// One analysis variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variable {
    /// Its name as written in NAMES.
    pub name: String,
    /// Dependent or covariate.
    pub role: Role,
    /// A between-level variable (BETWEEN): constant within each cluster.
    #[serde(default)]
    pub between: bool,
}

/// What a variable is in the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Role {
    /// A dependent variable: a latent class indicator or an outcome.
    Dependent(Dependent),
    /// A covariate (only on the right of ON); its distribution is not modelled.
    Covariate,
}

/// A dependent variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dependent {
    /// Continuous or categorical.
    pub scale: Scale,
    /// The class variable whose classes its parameters vary over.
    pub class_var: Option<usize>,
    /// Covariates it is regressed on (`y ON x`), as variable indices.
    pub covariates: Vec<usize>,
    /// A binary item with a guessing parameter, the three-parameter model
    /// (`CATEGORICAL = u (3pl)`): P(u = 1) = g + (1 − g) F(η − τ),
    /// [`ParamKind::Guessing`] the logit of g.
    #[serde(default)]
    pub guessing: bool,
    /// A nominal (unordered categorical) variable (`NOMINAL = u`): its
    /// scale is [`Scale::Categorical`], and P(u = k) is a multinomial
    /// logit with the last category as reference, intercepts
    /// [`ParamKind::NominalIntercept`] and slopes
    /// [`ParamKind::NominalSlope`] per non-reference category.
    #[serde(default)]
    pub nominal: bool,
}

/// Measurement scale of a dependent variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Scale {
    /// Normal given the classes and covariates.
    Continuous,
    /// Binary or ordered categorical: thresholds with a logit or probit link.
    /// The category codes found in the data, sorted; category `k` in the
    /// engine is `categories[k]` in the data.
    Categorical {
        /// The distinct values found in the data, ascending.
        categories: Vec<f64>,
    },
}

/// A latent class variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassVar {
    /// Its name (CLASSES = c(2)).
    pub name: String,
    /// Number of classes.
    pub classes: usize,
    /// Covariates of its multinomial logit (`c ON x`), as variable indices.
    pub covariates: Vec<usize>,
    /// Earlier class variables it is regressed on (`c2 ON c1`), as class
    /// variable indices, all smaller than its own.
    pub parents: Vec<usize>,
    /// A between-level class variable (eq 16-17): one class per cluster.
    #[serde(default)]
    pub between: bool,
}

/// What a parameter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ParamKind {
    /// Threshold `index` (1-based, `u$1`) of a categorical variable:
    /// P(u <= k-1 | class, x) = F(tau_k - x'beta).
    Threshold {
        /// The variable.
        var: usize,
        /// 1-based threshold number.
        index: usize,
    },
    /// The guessing parameter of a 3PL item on the logit scale, γ = ln(g /
    /// (1 − g)) ([`Dependent::guessing`]).
    Guessing {
        /// The variable.
        var: usize,
    },
    /// Mean, or intercept when it has covariates, of a continuous variable.
    Mean {
        /// The variable.
        var: usize,
    },
    /// Regression slope of a dependent variable on a covariate.
    Slope {
        /// The dependent variable.
        var: usize,
        /// The covariate.
        covariate: usize,
    },
    /// (Residual) variance of a continuous variable.
    Variance {
        /// The variable.
        var: usize,
    },
    /// Residual covariance of two continuous variables (`a < b`).
    Covariance {
        /// First variable.
        a: usize,
        /// Second variable.
        b: usize,
    },
    /// Logit intercept of class `class` of class variable `cv` (`[c#1]`).
    ClassIntercept {
        /// The class variable.
        cv: usize,
        /// The class (0-based; never the last).
        class: usize,
    },
    /// Slope of the class logit on a covariate (`c#1 ON x`).
    ClassSlope {
        /// The class variable.
        cv: usize,
        /// The class (0-based; never the last).
        class: usize,
        /// The covariate.
        covariate: usize,
    },
    /// Intercept of category `category` (1-based, `[u#1]`; never the last,
    /// the reference) of a nominal variable: the log-odds of `category`
    /// against the last category when the covariates are 0.
    NominalIntercept {
        /// The variable.
        var: usize,
        /// 1-based category number (`u#category`).
        category: usize,
    },
    /// Slope of the log-odds of category `category` (1-based, `u#1 ON x`)
    /// of a nominal variable against its last category on a covariate.
    NominalSlope {
        /// The variable.
        var: usize,
        /// 1-based category number.
        category: usize,
        /// The covariate.
        covariate: usize,
    },
    /// Effect of class `parent_class` of an earlier class variable on the
    /// logit of class `class` (`c2#1 ON c1#1`; eq 9's gamma).
    ClassOnClass {
        /// The class variable regressed.
        cv: usize,
        /// Its class (0-based; never the last).
        class: usize,
        /// The earlier class variable.
        parent: usize,
        /// Its class (0-based; never the last).
        parent_class: usize,
    },
    /// Variance of a random effect (index into [`TwoLevel::random`]).
    RandomVariance {
        /// The random effect.
        re: usize,
    },
    /// Covariance of two random effects (`a < b`); with regressions among
    /// the random effects, the covariance of their residuals.
    RandomCovariance {
        /// First random effect.
        a: usize,
        /// Second random effect.
        b: usize,
    },
    /// Regression of a random slope on a between-level covariate
    /// (`%BETWEEN% s ON w`): the slope's mean is `mu_s + g w_j`, so the
    /// dependent gains `g x_ij w_j` (a cross-level interaction). A
    /// measurement parameter of the slope's dependent variable, like the
    /// slope's mean.
    RandomSlopeOn {
        /// The random slope (index into [`TwoLevel::random`]).
        re: usize,
        /// The between-level covariate.
        covariate: usize,
    },
    /// Regression of one random effect on another (`%BETWEEN% s ON y`):
    /// an entry of B in eta = mu + B eta + Gamma w + xi (eq 5, 18, 25).
    /// Varies over the classes of [`TwoLevel::cov_class_var`], like the
    /// residual covariance matrix of xi.
    RandomRegression {
        /// The dependent random effect.
        re: usize,
        /// The random effect it is regressed on.
        on: usize,
    },
    /// The mean of a factor (`[f]`); varies over the classes of
    /// [`Latent::cov_class_var`] (free in every class but the last, where
    /// it is 0, by default).
    FactorMean {
        /// The factor (index into [`Latent::random`]).
        re: usize,
    },
    /// The regression of a factor on an observed covariate (`f ON x`); varies
    /// over the classes of [`Latent::cov_class_var`] (held equal across
    /// them by default).
    FactorOn {
        /// The factor.
        re: usize,
        /// The covariate.
        covariate: usize,
    },
    /// A factor loading (`f BY u`): the regression of indicator `u`'s
    /// intercept (the random effect `re`, its residual variance 0 in a
    /// single-level model) on the factor; an entry of B like
    /// [`ParamKind::RandomRegression`].
    Loading {
        /// The indicator's intercept (index into [`Latent::random`]).
        re: usize,
        /// The factor.
        factor: usize,
    },
}

/// Free, or fixed at a value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ParamValue {
    /// Estimated: the index into [`Model::free`].
    Free(usize),
    /// Held at this value.
    Fixed(f64),
}

/// One parameter of the model in one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    /// What it is.
    pub kind: ParamKind,
    /// For measurement parameters, the class (0-based) of the dependent
    /// variable's class variable; `None` for class-model parameters.
    pub class: Option<usize>,
    /// Free or fixed.
    pub value: ParamValue,
    /// A starting value given in the input (`*v`), if any.
    pub start: Option<f64>,
    /// Its label, if any.
    pub label: Option<String>,
}

/// A free parameter: one number to estimate, shared by its members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FreeParameter {
    /// A readable name (`U1$1, class 1`).
    pub name: String,
    /// The label that tied its members, if any.
    pub label: Option<String>,
    /// Indices into [`Model::parameters`].
    pub members: Vec<usize>,
}

/// ESTIMATOR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Estimator {
    /// Maximum likelihood, standard errors from the observed information.
    Ml,
    /// Maximum likelihood, sandwich (robust) standard errors.
    Mlr,
}

/// LINK for categorical variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Link {
    /// Logistic.
    Logit,
    /// Standard normal.
    Probit,
}

/// ANALYSIS settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// ML or MLR.
    pub estimator: Estimator,
    /// Logit or probit.
    pub link: Link,
    /// Random starts in the initial stage (0: no random starts).
    pub starts_initial: usize,
    /// Starts completed in the final stage.
    pub starts_final: usize,
    /// Iterations per start in the initial stage.
    pub stiterations: usize,
    /// Seed of the random starts.
    pub stseed: u64,
    /// Scale of the random perturbations.
    pub stscale: f64,
    /// OPTSEED: run only the start with this seed.
    pub optseed: Option<u64>,
    /// Maximum number of EM iterations per start.
    pub miterations: usize,
    /// Maximum number of quasi-Newton iterations after EM.
    pub qn_iterations: usize,
    /// Convergence criterion on the derivatives of log L / N
    /// (CONVERGENCE, MCONVERGENCE).
    pub convergence: f64,
    /// Convergence criterion on the log-likelihood gain a further
    /// quasi-Newton step predicts (LOGCRITERION, RLOGCRITERION).
    pub logcriterion: f64,
    /// Upper bound of logit-type parameters (LOGHIGH).
    pub logit_high: f64,
    /// Lower bound of logit-type parameters (LOGLOW).
    pub logit_low: f64,
    /// PROCESSORS, if given.
    pub processors: Option<usize>,
}

impl Default for Analysis {
    fn default() -> Self {
        Analysis {
            estimator: Estimator::Mlr,
            link: Link::Logit,
            starts_initial: 20,
            starts_final: 4,
            stiterations: 10,
            stseed: 0,
            stscale: 5.0,
            optseed: None,
            miterations: 500,
            qn_iterations: 1000,
            convergence: 1e-6,
            logcriterion: 1e-7,
            logit_high: 15.0,
            logit_low: -15.0,
            processors: None,
        }
    }
}

/// OUTPUT requests that are supported.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OutputSpec {
    /// TECH1: parameter numbering and starting values.
    pub tech1: bool,
    /// SVALUES: the MODEL statements with the estimates as starting values.
    pub svalues: bool,
    /// NOSERROR: no standard errors (nor the checks of identification that
    /// come with them).
    #[serde(default)]
    pub noserror: bool,
    /// PLOT: TYPE = PLOT3 with SERIES: the estimated class profiles drawn
    /// as an SVG file.
    #[serde(default)]
    pub plot: Option<PlotSpec>,
}

/// PLOT: TYPE = PLOT3; SERIES = ...: a line per class through the series
/// variables' estimated means (continuous) or probabilities of their
/// highest category (categorical).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlotSpec {
    /// The series: variable name and its position on the horizontal axis.
    pub series: Vec<(String, f64)>,
    /// Where the SVG file goes (the input file's folder, named after it).
    pub file: PathBuf,
}

/// SAVEDATA requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaveData {
    /// Where to write, resolved against the input file's folder.
    pub file: PathBuf,
    /// The file name as written in the input.
    pub file_as_written: String,
    /// SAVE = CPROBABILITIES.
    pub cprobabilities: bool,
    /// SAVE = FSCORES: each factor's posterior mean and standard deviation
    /// (only set when the model has factors).
    #[serde(default)]
    pub fscores: bool,
    /// MISSFLAG: the code written for missing values.
    pub missflag: String,
}

impl SaveData {
    /// Whether anything is saved (CPROBABILITIES or FSCORES), so that the
    /// file is written.
    pub fn writes_file(&self) -> bool {
        self.cprobabilities || self.fscores
    }
}

impl Model {
    /// The dependent variable description of variable `var`, if it is one.
    pub fn dependent(&self, var: usize) -> Option<&Dependent> {
        match &self.variables[var].role {
            Role::Dependent(d) => Some(d),
            Role::Covariate => None,
        }
    }

    /// Indices of the dependent variables.
    pub fn dependents(&self) -> impl Iterator<Item = usize> + '_ {
        self.variables
            .iter()
            .enumerate()
            .filter(|(_, v)| matches!(v.role, Role::Dependent(_)))
            .map(|(i, _)| i)
    }

    /// Indices of the covariates.
    pub fn covariates(&self) -> impl Iterator<Item = usize> + '_ {
        self.variables
            .iter()
            .enumerate()
            .filter(|(_, v)| matches!(v.role, Role::Covariate))
            .map(|(i, _)| i)
    }

    /// Number of categories of a categorical dependent, or `None`.
    pub fn n_categories(&self, var: usize) -> Option<usize> {
        match self.dependent(var).map(|d| &d.scale) {
            Some(Scale::Categorical { categories }) => Some(categories.len()),
            _ => None,
        }
    }

    /// Whether variable `var` is a nominal dependent ([`Dependent::nominal`]).
    pub fn is_nominal(&self, var: usize) -> bool {
        self.dependent(var).is_some_and(|d| d.nominal)
    }

    /// Total number of class combinations (product of class counts).
    pub fn n_class_combinations(&self) -> usize {
        self.class_vars.iter().map(|c| c.classes).product()
    }

    /// A short readable name of a parameter, in Mplus's notation
    /// (`[U1$1]`, `Y ON X`, `C#1 ON X`).
    pub fn param_name(&self, kind: &ParamKind) -> String {
        let v = |i: usize| self.variables[i].name.to_ascii_uppercase();
        let c = |i: usize| self.class_vars[i].name.to_ascii_uppercase();
        match *kind {
            ParamKind::Threshold { var, index } => format!("{}${}", v(var), index),
            ParamKind::Guessing { var } => v(var),
            ParamKind::Mean { var } => v(var),
            ParamKind::Slope { var, covariate } => format!("{} ON {}", v(var), v(covariate)),
            ParamKind::NominalIntercept { var, category } => format!("{}#{category}", v(var)),
            ParamKind::NominalSlope {
                var,
                category,
                covariate,
            } => format!("{}#{category} ON {}", v(var), v(covariate)),
            ParamKind::Variance { var } => v(var),
            ParamKind::Covariance { a, b } => format!("{} WITH {}", v(a), v(b)),
            ParamKind::ClassIntercept { cv, class } => format!("{}#{}", c(cv), class + 1),
            ParamKind::ClassSlope {
                cv,
                class,
                covariate,
            } => format!("{}#{} ON {}", c(cv), class + 1, v(covariate)),
            ParamKind::ClassOnClass {
                cv,
                class,
                parent,
                parent_class,
            } => format!(
                "{}#{} ON {}#{}",
                c(cv),
                class + 1,
                c(parent),
                parent_class + 1
            ),
            ParamKind::RandomVariance { re } => self.random_name(re),
            ParamKind::RandomCovariance { a, b } => {
                format!("{} WITH {}", self.random_name(a), self.random_name(b))
            }
            ParamKind::RandomSlopeOn { re, covariate } => {
                format!("{} ON {}", self.random_name(re), v(covariate))
            }
            ParamKind::RandomRegression { re, on } => {
                format!("{} ON {}", self.random_name(re), self.random_name(on))
            }
            ParamKind::FactorMean { re } => self.random_name(re),
            ParamKind::FactorOn { re, covariate } => {
                format!("{} ON {}", self.random_name(re), v(covariate))
            }
            ParamKind::Loading { re, factor } => {
                format!("{} BY {}", self.random_name(factor), self.random_name(re))
            }
        }
    }

    /// The name of random effect `re` in upper case.
    pub fn random_name(&self, re: usize) -> String {
        self.latent
            .random
            .get(re)
            .map_or_else(|| format!("RE{re}"), |r| r.name.to_ascii_uppercase())
    }

    /// The random effect whose mean a parameter is: the fixed part of a
    /// random slope (`Slope`) or of a random intercept (`Mean`).
    pub fn random_mean_of(&self, kind: &ParamKind) -> Option<usize> {
        self.random_effects()
            .iter()
            .position(|r| match (*kind, r.kind) {
                (
                    ParamKind::Slope { var, covariate },
                    RandomKind::Slope {
                        var: v,
                        covariate: c,
                    },
                ) => var == v && covariate == c,
                (ParamKind::Mean { var }, RandomKind::Intercept { var: v }) => var == v,
                _ => false,
            })
    }

    /// The random effect that is variable `var`'s intercept, if any.
    pub fn intercept_of(&self, var: usize) -> Option<usize> {
        self.random_effects()
            .iter()
            .position(|r| r.kind == RandomKind::Intercept { var })
    }

    /// The within-level intercept of variable `var` that a within-level
    /// factor of a two-level model measures, if any.
    pub fn within_intercept_of(&self, var: usize) -> Option<usize> {
        self.random_effects()
            .iter()
            .position(|r| r.kind == RandomKind::WithinIntercept { var })
    }

    /// Whether the model has within-level latent variables (factors in
    /// `%WITHIN%` of a two-level model).
    pub fn has_within_latents(&self) -> bool {
        self.random_effects().iter().any(|r| r.within)
    }

    /// Whether `kind` is the residual variance of a factor indicator's
    /// intercept in a single-level model: always fixed at 0 (the
    /// indicator's own distribution is its residual), so it is not
    /// reported.
    pub fn is_factor_indicator_variance(&self, kind: &ParamKind) -> bool {
        match *kind {
            ParamKind::RandomVariance { re } => {
                match self.random_effects().get(re).map(|r| r.kind) {
                    Some(RandomKind::Intercept { .. }) => self.two_level.is_none(),
                    Some(RandomKind::WithinIntercept { .. }) => true,
                    _ => false,
                }
            }
            _ => false,
        }
    }

    /// The random effects and factors (empty for a single-level model
    /// without factors).
    pub fn random_effects(&self) -> &[RandomEffect] {
        &self.latent.random
    }

    /// Whether class `class` of class variable `cv` has a random logit
    /// intercept (a GoM's or a between-level random class logit): its mean
    /// is on the scale of the random part, so LOGLOW/LOGHIGH do not bound it.
    pub fn has_random_logit(&self, cv: usize, class: usize) -> bool {
        self.random_effects().iter().any(|r| {
            matches!(r.kind, RandomKind::ClassIntercept { cv: c, class: k } if c == cv && k == class)
        })
    }

    /// A full readable name: the short name with its class. The mean of a
    /// random slope of a two-level model is named as the report lists it,
    /// under Between Level Means (`[S1] in class C#1`), not as the slope
    /// `U ON D1` whose mean it is.
    pub fn param_full_name(&self, p: &Parameter) -> String {
        let random_slope = match p.kind {
            ParamKind::Slope { .. } if self.two_level.is_some() => self.random_mean_of(&p.kind),
            _ => None,
        };
        let base = match p.kind {
            _ if let Some(re) = random_slope => format!("[{}]", self.random_name(re)),
            ParamKind::Threshold { .. }
            | ParamKind::Mean { .. }
            | ParamKind::FactorMean { .. }
            | ParamKind::NominalIntercept { .. } => {
                format!("[{}]", self.param_name(&p.kind))
            }
            ParamKind::ClassIntercept { .. } => format!("[{}]", self.param_name(&p.kind)),
            ParamKind::Variance { .. } | ParamKind::RandomVariance { .. } => {
                format!("{} (variance)", self.param_name(&p.kind))
            }
            ParamKind::Guessing { .. } => {
                format!("{} (guessing logit)", self.param_name(&p.kind))
            }
            _ => self.param_name(&p.kind),
        };
        match (p.class, self.param_class_var(&p.kind)) {
            (Some(k), Some(cv)) => format!(
                "{base} in class {}#{}",
                self.class_vars[cv].name.to_ascii_uppercase(),
                k + 1
            ),
            _ => base,
        }
    }

    /// Whether [`Latent::cov_class_var`] is a within-level class variable
    /// of a two-level model: then only the loadings of between-level
    /// random effects vary over it (the FMA-GoM's class-specific loadings,
    /// eq 41 and 43); the random effects' variances, covariances and
    /// regressions are held equal across its classes and factor means are
    /// 0, since they belong to the cluster.
    pub fn cov_class_is_within(&self) -> bool {
        self.two_level.is_some()
            && self
                .latent
                .cov_class_var
                .is_some_and(|c| !self.class_vars[c].between)
    }

    /// The class variable a measurement parameter's class refers to.
    pub fn param_class_var(&self, kind: &ParamKind) -> Option<usize> {
        let var = match *kind {
            ParamKind::Threshold { var, .. }
            | ParamKind::Guessing { var }
            | ParamKind::Mean { var }
            | ParamKind::Slope { var, .. }
            | ParamKind::NominalIntercept { var, .. }
            | ParamKind::NominalSlope { var, .. }
            | ParamKind::Variance { var }
            | ParamKind::Covariance { a: var, .. } => var,
            ParamKind::RandomVariance { .. }
            | ParamKind::RandomCovariance { .. }
            | ParamKind::RandomRegression { .. }
            | ParamKind::FactorMean { .. }
            | ParamKind::FactorOn { .. }
            | ParamKind::Loading { .. } => {
                return self.latent.cov_class_var;
            }
            ParamKind::RandomSlopeOn { re, .. } => match self.random_effects().get(re)?.kind {
                RandomKind::Slope { var, .. } => var,
                _ => return None,
            },
            _ => return None,
        };
        self.dependent(var).and_then(|d| d.class_var)
    }
}
