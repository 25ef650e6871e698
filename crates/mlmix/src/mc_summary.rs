//! The summary of a Monte Carlo study, as Mplus prints it (User's Guide,
//! chapter 12): over the completed replications, the mean and standard
//! deviation of the loglikelihood and the information criteria, and for each
//! free parameter its population value, the average and standard deviation
//! of the estimates, the average standard error, the mean squared error, the
//! 95% coverage and the share of significant estimates ([`summarize`],
//! [`text`]). It also owns the partial-results file of a shard of
//! replications ([`Partial`], [`read_partial`]) and the merge of shards into
//! one study ([`merge`]).
//!
//! It does not generate data or fit models (that is `montecarlo`), does not
//! read input files and does not print: [`text`] returns a `String`.
//!
//! Determinism: [`summarize`] sorts the replications by number and sums
//! sequentially in that order, so the summary of merged shards is bit for bit
//! the summary of the whole list. The partial file stores every `f64` as a
//! JSON string holding Rust's shortest round-trip decimal (`"0.1"`,
//! `"-3023.4121"`, `"NaN"`): `serde_json`'s default number parser is not
//! correctly rounded (about one value in ten comes back one unit in the last
//! place off), strings are exact. Plain JSON numbers are accepted on reading.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// The `format` of every partial-results file this version writes.
pub const PARTIAL_FORMAT: &str = "mlmix-montecarlo-partial/1";

/// The two-sided 5% critical value of the standard normal distribution,
/// used for the 95% coverage and the "% Sig Coeff" column.
pub const Z95: f64 = 1.959964;

/// One reported parameter of the analysis model, in the order of the fit's
/// `Fit::parameters` (fixed ones included: they are skipped in the summary).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamKey {
    /// Group heading as in the report ("Means", "Thresholds", "C#1 ON", ...).
    pub section: String,
    /// The parameter in Mplus notation (`U1$1`, `X`, `C#1`).
    pub name: String,
    /// `C#1` for class-specific rows, `None` otherwise.
    pub class: Option<String>,
    /// The population value used for the coverage and the MSE.
    #[serde(with = "exact")]
    pub population: f64,
    /// Fixed in the analysis model (not summarized)?
    pub fixed: bool,
}

/// What one replication gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replication {
    /// 1-based replication number.
    pub number: usize,
    /// Its result.
    pub outcome: Outcome,
}

/// The result of one replication.
///
/// The values of a `Completed` replication are expected to be finite; one
/// that is not (or whose vectors do not have one entry per [`ParamKey`]) is a
/// caller's bug: it still survives the JSON file, and [`summarize`] lists it
/// among the failed replications with the reason, rather than letting a NaN
/// into the averages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Converged; one estimate and one SE (None: fixed or not computed) per ParamKey.
    Completed {
        /// Loglikelihood at the estimates.
        #[serde(with = "exact")]
        loglikelihood: f64,
        /// Akaike information criterion.
        #[serde(with = "exact")]
        aic: f64,
        /// Bayesian information criterion.
        #[serde(with = "exact")]
        bic: f64,
        /// Sample-size adjusted BIC.
        #[serde(with = "exact")]
        abic: f64,
        /// One estimate per [`ParamKey`], fixed ones included.
        #[serde(with = "exact::vec")]
        estimates: Vec<f64>,
        /// One standard error per [`ParamKey`] (`None`: fixed or not computed).
        #[serde(with = "exact::opt_vec")]
        standard_errors: Vec<Option<f64>>,
    },
    /// Did not give a converged solution (or the data could not be fitted): why.
    Failed {
        /// Why, in words.
        reason: String,
    },
}

/// What identifies a study, so that shards of different studies are not merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyKey {
    /// The input file, as given.
    pub input_file: String,
    /// Computed by the caller from the input text and options (opaque here).
    pub fingerprint: String,
    /// NREPS.
    pub requested: usize,
    /// SEED.
    pub seed: u64,
    /// TITLE (for the merged report).
    #[serde(default)]
    pub title: String,
}

/// A shard's results file (`mlmix fit study.inp --replications 201-400` writes it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    /// Always [`PARTIAL_FORMAT`].
    pub format: String,
    /// The study the shard belongs to.
    pub study: StudyKey,
    /// The analysis model's parameters, in the fit's order.
    pub parameters: Vec<ParamKey>,
    /// The shard's replications, sorted by number.
    pub replications: Vec<Replication>,
}

impl Partial {
    /// A partial file of the current [`PARTIAL_FORMAT`], its replications
    /// sorted by number.
    pub fn new(
        study: StudyKey,
        parameters: Vec<ParamKey>,
        mut replications: Vec<Replication>,
    ) -> Self {
        replications.sort_by_key(|r| r.number);
        Partial {
            format: PARTIAL_FORMAT.to_string(),
            study,
            parameters,
            replications,
        }
    }
}

/// Mean, standard deviation (n − 1 denominator; 0 when n < 2) and count of a
/// quantity over the completed replications. With n = 0 the mean and the SD
/// are 0 and mean nothing: read `n` first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Moments {
    /// Mean (0 when n = 0).
    pub mean: f64,
    /// Standard deviation with the n − 1 denominator (0 when n < 2).
    pub sd: f64,
    /// Number of values.
    pub n: usize,
    /// Mplus's table of proportions and percentiles (none with fewer than
    /// two values): how the values' distribution compares with the normal
    /// one of the same mean and SD.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percentiles: Vec<Percentile>,
}

/// One row of the proportions and percentiles table: for an expected
/// proportion p, the expected percentile q = mean − z_p SD (the value the
/// normal distribution exceeds with probability p), the observed share of
/// values above q, and the observed percentile (the value a share p of the
/// values exceeds: the (1 − p) quantile, linear between order statistics).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Percentile {
    /// p.
    pub expected_proportion: f64,
    /// The share of values above the expected percentile.
    pub observed_proportion: f64,
    /// mean − z_p SD.
    pub expected_percentile: f64,
    /// The values' (1 − p) quantile.
    pub observed_percentile: f64,
}

/// The expected proportions of Mplus's table.
const PROPORTIONS: [f64; 13] = [
    0.99, 0.98, 0.95, 0.90, 0.80, 0.70, 0.50, 0.30, 0.20, 0.10, 0.05, 0.02, 0.01,
];

/// The proportions and percentiles of `values` (mean and SD given).
fn percentiles(values: &[f64], mean: f64, sd: f64) -> Vec<Percentile> {
    let n = values.len();
    if n < 2 {
        return Vec::new();
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    PROPORTIONS
        .iter()
        .map(|&p| {
            let z = mlmix_kernels::link::quantile(mlmix_spec::Link::Probit, p);
            let expected = mean - z * sd;
            let above = sorted.iter().filter(|&&v| v > expected).count();
            // the (1 − p) quantile, R's type 7
            let h = (n - 1) as f64 * (1.0 - p);
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            let observed = sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]);
            Percentile {
                expected_proportion: p,
                observed_proportion: above as f64 / n as f64,
                expected_percentile: expected,
                observed_percentile: observed,
            }
        })
        .collect()
}

impl Moments {
    /// The moments of `values`, summed sequentially in the given order.
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        if n == 0 {
            return Moments {
                mean: 0.0,
                sd: 0.0,
                n,
                percentiles: Vec::new(),
            };
        }
        let mean = sum(values.iter().copied()) / n as f64;
        let sd = if n < 2 {
            0.0
        } else {
            (sum(values.iter().map(|x| (x - mean) * (x - mean))) / (n - 1) as f64).sqrt()
        };
        Moments {
            mean,
            sd,
            n,
            percentiles: percentiles(values, mean, sd),
        }
    }
}

/// One free parameter's row of the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamSummary {
    /// Group heading, as in [`ParamKey::section`].
    pub section: String,
    /// The parameter, as in [`ParamKey::name`].
    pub name: String,
    /// Its class, as in [`ParamKey::class`].
    pub class: Option<String>,
    /// The population value.
    pub population: f64,
    /// Mean estimate over the completed replications.
    pub average: f64,
    /// SD of the estimates (n − 1 denominator; 0 with one replication).
    pub sd: f64,
    /// Mean SE over the completed replications that have one (None if none).
    pub se_average: Option<f64>,
    /// Mean of (estimate − population)² (n denominator), as Mplus.
    pub mse: f64,
    /// Share of the replications with an SE whose estimate ± 1.959964 SE
    /// holds the population value (None if none has an SE).
    pub coverage: Option<f64>,
    /// Share of the replications with an SE where |estimate / SE| > 1.959964
    /// (None if none has an SE).
    pub significant: Option<f64>,
}

/// A replication that gave no usable solution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedReplication {
    /// 1-based replication number.
    pub number: usize,
    /// Why, in words.
    pub reason: String,
}

/// The summary of a Monte Carlo study (or of the replications at hand).
///
/// When no replication completed, `parameters` is empty and the four
/// [`Moments`] have n = 0: nothing in it is NaN, so its JSON is plain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// NREPS.
    pub requested: usize,
    /// Replications with a usable solution.
    pub completed: usize,
    /// The others, in replication order, with the reason.
    pub failed: Vec<FailedReplication>,
    /// Loglikelihood (H0 value).
    pub loglikelihood: Moments,
    /// Akaike (AIC).
    pub aic: Moments,
    /// Bayesian (BIC).
    pub bic: Moments,
    /// Sample-size adjusted BIC.
    pub abic: Moments,
    /// The free parameters (fixed ones skipped), in [`ParamKey`] order.
    pub parameters: Vec<ParamSummary>,
}

/// A completed replication that passed the checks of [`usable`].
struct Done<'a> {
    /// Loglikelihood, AIC, BIC, ABIC.
    fit: [f64; 4],
    estimates: &'a [f64],
    standard_errors: &'a [Option<f64>],
}

/// The z of a two-sided test at 5% over `m` parameters together
/// (Bonferroni): with `m` unbiased estimates, the chance that any average
/// falls outside `z` Monte Carlo standard errors of its population value
/// is at most 5% (2 standard errors for each of 13 would fail half the
/// time). The recovery checks of the tests and of `cargo xtask repro`.
pub fn family_z(m: usize) -> f64 {
    let p = 0.05 / m.max(1) as f64;
    mlmix_kernels::link::quantile(mlmix_spec::Link::Probit, 1.0 - p / 2.0)
}

/// Summarize the replications of a study with these parameters.
///
/// The replications are taken in the order of their numbers (a sorted copy)
/// and every sum is a plain sequential one, so the result depends on the
/// replications, not on how they were produced or listed. A `Completed`
/// replication counts as failed, with a reason beginning "not usable", when
/// its vectors do not have one entry per parameter or when its
/// loglikelihood, information criteria or estimates are not finite. An SE
/// that is not finite and positive is treated as absent.
pub fn summarize(
    parameters: &[ParamKey],
    replications: &[Replication],
    requested: usize,
) -> Summary {
    let mut sorted: Vec<&Replication> = replications.iter().collect();
    sorted.sort_by_key(|r| r.number);
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for r in sorted {
        match usable(r, parameters) {
            Ok(d) => done.push(d),
            Err(reason) => failed.push(FailedReplication {
                number: r.number,
                reason,
            }),
        }
    }
    let fit = |k: usize| Moments::of(&done.iter().map(|d| d.fit[k]).collect::<Vec<_>>());
    let rows = if done.is_empty() {
        Vec::new()
    } else {
        (parameters.iter().enumerate())
            .filter(|(_, p)| !p.fixed)
            .map(|(i, p)| param_summary(p, i, &done))
            .collect()
    };
    Summary {
        requested,
        completed: done.len(),
        failed,
        loglikelihood: fit(0),
        aic: fit(1),
        bic: fit(2),
        abic: fit(3),
        parameters: rows,
    }
}

/// A completed replication's values, or why it counts as failed.
fn usable<'a>(r: &'a Replication, parameters: &[ParamKey]) -> Result<Done<'a>, String> {
    let (fit, estimates, standard_errors) = match &r.outcome {
        Outcome::Failed { reason } => return Err(reason.clone()),
        Outcome::Completed {
            loglikelihood,
            aic,
            bic,
            abic,
            estimates,
            standard_errors,
        } => (
            [*loglikelihood, *aic, *bic, *abic],
            estimates,
            standard_errors,
        ),
    };
    let m = parameters.len();
    if estimates.len() != m || standard_errors.len() != m {
        return Err(format!(
            "not usable: {} estimates and {} standard errors for {m} parameters",
            estimates.len(),
            standard_errors.len()
        ));
    }
    if let Some(v) = fit.iter().find(|v| !v.is_finite()) {
        return Err(format!(
            "not usable: the loglikelihood or an information criterion is {v}"
        ));
    }
    if let Some((p, v)) = parameters
        .iter()
        .zip(estimates)
        .find(|(_, v)| !v.is_finite())
    {
        return Err(format!("not usable: the estimate of {} is {v}", p.name));
    }
    Ok(Done {
        fit,
        estimates,
        standard_errors,
    })
}

/// The summary row of parameter `i` over the completed replications
/// (`done` is not empty).
fn param_summary(key: &ParamKey, i: usize, done: &[Done]) -> ParamSummary {
    let pop = key.population;
    let estimates: Vec<f64> = done.iter().map(|d| d.estimates[i]).collect();
    let moments = Moments::of(&estimates);
    let mse = sum(estimates.iter().map(|e| (e - pop) * (e - pop))) / estimates.len() as f64;
    let with_se: Vec<(f64, f64)> = done
        .iter()
        .filter_map(|d| {
            let se = d.standard_errors[i].filter(|s| s.is_finite() && *s > 0.0)?;
            Some((d.estimates[i], se))
        })
        .collect();
    let n_se = with_se.len() as f64;
    let share = |hit: &dyn Fn(f64, f64) -> bool| {
        let hits = with_se.iter().filter(|(e, s)| hit(*e, *s)).count();
        (!with_se.is_empty()).then(|| hits as f64 / n_se)
    };
    ParamSummary {
        section: key.section.clone(),
        name: key.name.clone(),
        class: key.class.clone(),
        population: pop,
        average: moments.mean,
        sd: moments.sd,
        se_average: (!with_se.is_empty()).then(|| sum(with_se.iter().map(|(_, s)| *s)) / n_se),
        mse,
        coverage: share(&|e, s| e - Z95 * s <= pop && pop <= e + Z95 * s),
        significant: share(&|e, s| (e / s).abs() > Z95),
    }
}

/// A plain left-to-right sum (the order is the caller's).
fn sum(values: impl Iterator<Item = f64>) -> f64 {
    let mut total = 0.0;
    for v in values {
        total += v;
    }
    total
}

// ---------------------------------------------------------------- the text

/// The Mplus-style text: a "MONTE CARLO RESULTS" heading; the replications
/// requested, completed and failed, the failed ones listed with their
/// reasons (never hidden); the mean, SD and number of successful
/// computations of the loglikelihood and the information criteria; then
/// MODEL RESULTS grouped by class like Mplus ("Latent Class 1" for the rows
/// of class `C#1`, the class-model parameters under "Categorical Latent
/// Variables"), section headings and the seven columns, aligned; a paragraph
/// explaining the columns at the end. With no completed replication it says
/// so instead of the numbers.
///
/// With more than one class variable the class headings keep the label
/// ("Latent Class C1#2"). Class-model parameters are the unclassed rows whose
/// name or `... ON` section is a class label `X#k` of a class variable seen
/// in the class-specific rows. Rows with an empty section are not printed,
/// as in the fit's report.
pub fn text(summary: &Summary) -> String {
    let mut o = String::from("MONTE CARLO RESULTS\n");
    replication_counts(&mut o, summary);
    fit_information(&mut o, summary);
    model_results(&mut o, summary);
    if summary.completed > 0 {
        o.push_str(COLUMNS_EXPLAINED);
    }
    o
}

const COLUMNS_EXPLAINED: &str = "
Population: the value the data were generated with. ESTIMATES Average and
Std. Dev.: the mean and standard deviation of the estimates over the completed
replications. S. E. Average: the mean standard error. M. S. E.: the mean of
(estimate - population)^2. 95% Cover: the share of replications whose
estimate +/- 1.96 S. E. holds the population value. % Sig Coeff: the share of
replications where |estimate / S. E.| > 1.96. n/a: no replication had a
standard error.
";

/// `label` left, `value` right, 66 characters in all.
fn kv(o: &mut String, label: &str, value: impl std::fmt::Display) {
    let _ = writeln!(o, "{label:<50}{value:>16}");
}

fn replication_counts(o: &mut String, s: &Summary) {
    let _ = writeln!(o, "\nNumber of replications");
    kv(o, "    Requested", s.requested);
    kv(o, "    Completed", s.completed);
    kv(o, "    Failed", s.failed.len());
    let absent = s.requested.saturating_sub(s.completed + s.failed.len());
    if absent > 0 {
        kv(o, "    Not in these results", absent);
    }
    if s.failed.is_empty() {
        return;
    }
    let _ = writeln!(o, "\nReplications that did not complete");
    for f in &s.failed {
        let reason = f.reason.trim().replace('\n', "\n        ");
        let _ = writeln!(o, "    Replication {}: {reason}", f.number);
    }
}

fn fit_information(o: &mut String, s: &Summary) {
    let _ = writeln!(
        o,
        "\nMODEL FIT INFORMATION\n\nLoglikelihood\n\n    H0 Value\n"
    );
    moments(o, &s.loglikelihood);
    let _ = writeln!(o, "\nInformation Criteria\n\n    Akaike (AIC)\n");
    moments(o, &s.aic);
    let _ = writeln!(o, "\n    Bayesian (BIC)\n");
    moments(o, &s.bic);
    let _ = writeln!(o, "\n    Sample-Size Adjusted BIC (n* = (n + 2) / 24)\n");
    moments(o, &s.abic);
}

fn moments(o: &mut String, m: &Moments) {
    if m.n > 0 {
        kv(o, "        Mean", format!("{:.3}", m.mean));
        kv(o, "        Std Dev", format!("{:.3}", m.sd));
    }
    kv(o, "        Number of successful computations", m.n);
    if m.percentiles.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "\n        Proportions                   Percentiles\n        Expected    Observed         Expected       Observed"
    );
    for p in &m.percentiles {
        let _ = writeln!(
            o,
            "        {:>8.3}    {:>8.3}    {:>13.3}  {:>13.3}",
            p.expected_proportion,
            p.observed_proportion,
            p.expected_percentile,
            p.observed_percentile
        );
    }
}

fn model_results(o: &mut String, s: &Summary) {
    let _ = writeln!(o, "\nMODEL RESULTS\n");
    if s.completed == 0 {
        let _ = writeln!(
            o,
            "    No replication completed: there are no estimates to summarize."
        );
        return;
    }
    let width = s
        .parameters
        .iter()
        .map(|p| p.name.chars().count() + 1)
        .fold(16, usize::max);
    column_headings(o, width);
    for (heading, rows) in groups(&s.parameters) {
        if let Some(h) = heading {
            let _ = writeln!(o, "\n{h}");
        }
        print_sections(o, &rows, width);
    }
}

fn column_headings(o: &mut String, w: usize) {
    let _ = writeln!(
        o,
        "  {:<w$}{:>10}{:^22}{:>11}{:>11}{:>7}{:>7}",
        "", "", "ESTIMATES", "S. E.", "M. S. E.", "95%", "% Sig"
    );
    let _ = writeln!(
        o,
        "  {:<w$}{:>10}{:>11}{:>11}{:>11}{:>11}{:>7}{:>7}",
        "", "Population", "Average", "Std. Dev.", "Average", "", "Cover", "Coeff"
    );
}

/// The rows under each class heading: unclassed rows (no heading), each
/// class in order of first appearance, then the class model.
fn groups(rows: &[ParamSummary]) -> Vec<(Option<String>, Vec<&ParamSummary>)> {
    let mut labels: Vec<&str> = Vec::new();
    let mut class_vars: Vec<&str> = Vec::new();
    for c in rows.iter().filter_map(|p| p.class.as_deref()) {
        if !labels.contains(&c) {
            labels.push(c);
        }
        let var = c.split_once('#').map_or(c, |(v, _)| v);
        if !class_vars.contains(&var) {
            class_vars.push(var);
        }
    }
    let of_class_var = |s: &str| {
        s.split_once('#')
            .is_some_and(|(v, k)| class_vars.contains(&v) && k.parse::<usize>().is_ok())
    };
    let class_model = |p: &ParamSummary| {
        p.class.is_none()
            && (of_class_var(&p.name) || p.section.strip_suffix(" ON").is_some_and(of_class_var))
    };
    let mut out = vec![(
        None,
        rows.iter()
            .filter(|p| p.class.is_none() && !class_model(p))
            .collect(),
    )];
    for label in &labels {
        let heading = match label.split_once('#') {
            Some((_, k)) if class_vars.len() == 1 => format!("Latent Class {k}"),
            _ => format!("Latent Class {label}"),
        };
        let members = rows.iter().filter(|p| p.class.as_deref() == Some(label));
        out.push((Some(heading), members.collect()));
    }
    let cm: Vec<&ParamSummary> = rows.iter().filter(|p| class_model(p)).collect();
    out.push((Some("Categorical Latent Variables".to_string()), cm));
    out.retain(|(_, members)| !members.is_empty());
    out
}

/// Sections in Mplus's order (as the fit's report), rows in parameter order.
fn print_sections(o: &mut String, rows: &[&ParamSummary], width: usize) {
    let mut sections: Vec<&str> = Vec::new();
    for r in rows.iter().filter(|r| !r.section.is_empty()) {
        if !sections.contains(&r.section.as_str()) {
            sections.push(&r.section);
        }
    }
    sections.sort_by_key(|s| crate::report::section_rank(s));
    for s in sections {
        let _ = writeln!(o, "\n {s}");
        for r in rows.iter().filter(|r| r.section == s) {
            print_row(o, r, width);
        }
    }
}

fn print_row(o: &mut String, p: &ParamSummary, w: usize) {
    let opt = |v: Option<f64>, d: usize| v.map_or_else(|| "n/a".to_string(), |v| cell(v, d, 11));
    let _ = writeln!(
        o,
        "  {:<w$}{:>10}{:>11}{:>11}{:>11}{:>11}{:>7}{:>7}",
        p.name,
        cell(p.population, 3, 10),
        cell(p.average, 4, 11),
        cell(p.sd, 4, 11),
        opt(p.se_average, 4),
        cell(p.mse, 4, 11),
        opt(p.coverage, 3),
        opt(p.significant, 3),
    );
}

/// `v` with `d` decimals, or in exponent form when that would not leave a
/// blank in a column `width` wide (a variance run off to its bound).
fn cell(v: f64, d: usize, width: usize) -> String {
    let s = format!("{v:.d$}");
    if s.len() < width {
        s
    } else {
        format!("{v:.3e}")
    }
}

// ------------------------------------------------------ reading and merging

/// Why shards could not be read or merged. Every message names the files.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no partial-results files to merge")]
    NoParts,
    /// The file is not a partial-results file (or is damaged).
    #[error("{file}: not a readable Monte Carlo partial-results file: {message}")]
    Parse {
        /// The file.
        file: String,
        /// What the JSON reader said.
        message: String,
    },
    /// A format this version does not read.
    #[error("{file}: format \"{found}\", expected \"{PARTIAL_FORMAT}\"")]
    Format {
        /// The file.
        file: String,
        /// Its `format`.
        found: String,
    },
    /// The files belong to different studies.
    #[error("{other} belongs to a different study than {first}: {what}")]
    DifferentStudy {
        /// The first file given.
        first: String,
        /// The file that differs.
        other: String,
        /// What differs.
        what: String,
    },
    /// The files list different analysis-model parameters.
    #[error("{other} has different parameters than {first}: {what}")]
    DifferentParameters {
        /// The first file given.
        first: String,
        /// The file that differs.
        other: String,
        /// The first difference.
        what: String,
    },
    /// A replication number outside 1..=NREPS.
    #[error("{file}: replication {number} is outside 1-{requested} (NREPS = {requested})")]
    OutOfRange {
        /// The file.
        file: String,
        /// The replication number.
        number: usize,
        /// NREPS.
        requested: usize,
    },
    /// A completed replication without one estimate and one SE per parameter.
    #[error("{file}: replication {number}: {what}")]
    Malformed {
        /// The file.
        file: String,
        /// The replication number.
        number: usize,
        /// What is wrong.
        what: String,
    },
    /// Replications given twice in one file.
    #[error("{file}: {replications} given twice")]
    Repeated {
        /// The file.
        file: String,
        /// The replications ("replications 201-400, 503", "replication 7").
        replications: String,
    },
    /// Replications given in two files.
    #[error("{replications} found in both {first} and {second}")]
    Duplicate {
        /// The replications ("replications 201-400, 503", "replication 7").
        replications: String,
        /// One file holding them.
        first: String,
        /// The other file.
        second: String,
    },
    /// Replications between 1 and NREPS that no file holds.
    #[error("{replications} missing: {present} of {requested} present in {files}")]
    Missing {
        /// The missing ones ("replications 201-400, 503", "replication 7").
        replications: String,
        /// How many replications the files hold.
        present: usize,
        /// NREPS.
        requested: usize,
        /// The files merged, comma-separated.
        files: String,
    },
}

/// Read a partial-results file's text (`file` names it in messages) and
/// check its format.
pub fn read_partial(file: &str, json: &str) -> Result<Partial, MergeError> {
    let partial: Partial = serde_json::from_str(json).map_err(|e| MergeError::Parse {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    check_format(file, &partial)?;
    Ok(partial)
}

/// Combine shards (file name for messages, contents) into one study.
///
/// Errors, each naming the files and replications: parts of different
/// studies (the [`StudyKey`] or the parameter lists differ), a replication
/// number given twice, a number outside 1..=NREPS, numbers of 1..=NREPS that
/// no part holds ("replications 201-400 missing: ..."), a file of another
/// format, a completed replication without one estimate and one SE per
/// parameter.
///
/// The replications come back sorted by number; the study and the
/// parameters are the first file's.
pub fn merge(
    parts: &[(String, Partial)],
) -> Result<(StudyKey, Vec<ParamKey>, Vec<Replication>), MergeError> {
    let Some((first_file, first)) = parts.first() else {
        return Err(MergeError::NoParts);
    };
    for (file, part) in parts {
        check_format(file, part)?;
        check_same_study(first_file, first, file, part)?;
        check_replications(file, part)?;
    }
    // (number, part, index in the part), in number order
    let mut numbered: Vec<(usize, usize, usize)> = Vec::new();
    for (p, (_, part)) in parts.iter().enumerate() {
        numbered.extend(
            part.replications
                .iter()
                .enumerate()
                .map(|(j, r)| (r.number, p, j)),
        );
    }
    numbered.sort_unstable();
    check_duplicates(parts, &numbered)?;
    check_missing(parts, first.study.requested, &numbered)?;
    let replications = numbered
        .iter()
        .map(|&(_, p, j)| parts[p].1.replications[j].clone())
        .collect();
    Ok((first.study.clone(), first.parameters.clone(), replications))
}

fn check_format(file: &str, part: &Partial) -> Result<(), MergeError> {
    if part.format == PARTIAL_FORMAT {
        Ok(())
    } else {
        Err(MergeError::Format {
            file: file.to_string(),
            found: part.format.clone(),
        })
    }
}

fn check_same_study(
    first_file: &str,
    first: &Partial,
    file: &str,
    part: &Partial,
) -> Result<(), MergeError> {
    if let Some(what) = study_difference(&first.study, &part.study) {
        return Err(MergeError::DifferentStudy {
            first: first_file.to_string(),
            other: file.to_string(),
            what,
        });
    }
    if let Some(what) = parameter_difference(&first.parameters, &part.parameters) {
        return Err(MergeError::DifferentParameters {
            first: first_file.to_string(),
            other: file.to_string(),
            what,
        });
    }
    Ok(())
}

/// What differs between two study keys, in words (None: the same study).
fn study_difference(a: &StudyKey, b: &StudyKey) -> Option<String> {
    let mut what = Vec::new();
    if a.input_file != b.input_file {
        what.push(format!("input file {} vs {}", a.input_file, b.input_file));
    }
    if a.fingerprint != b.fingerprint {
        what.push("the fingerprint differs (the input text or the options changed)".to_string());
    }
    if a.requested != b.requested {
        what.push(format!("NREPS {} vs {}", a.requested, b.requested));
    }
    if a.seed != b.seed {
        what.push(format!("SEED {} vs {}", a.seed, b.seed));
    }
    (!what.is_empty()).then(|| what.join("; "))
}

/// The first difference between two parameter lists (None: the same; the
/// population values compared bit for bit).
fn parameter_difference(a: &[ParamKey], b: &[ParamKey]) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!("{} parameters vs {}", a.len(), b.len()));
    }
    let same = |x: &ParamKey, y: &ParamKey| {
        x.section == y.section
            && x.name == y.name
            && x.class == y.class
            && x.population.to_bits() == y.population.to_bits()
            && x.fixed == y.fixed
    };
    let describe = |p: &ParamKey| {
        let class = p
            .class
            .as_deref()
            .map(|c| format!(" in {c}"))
            .unwrap_or_default();
        let fixed = if p.fixed { ", fixed" } else { "" };
        format!(
            "{} {}{class} (population {}{fixed})",
            p.section, p.name, p.population
        )
    };
    let (i, (x, y)) = a
        .iter()
        .zip(b)
        .enumerate()
        .find(|(_, (x, y))| !same(x, y))?;
    Some(format!(
        "parameter {}: {} vs {}",
        i + 1,
        describe(x),
        describe(y)
    ))
}

fn check_replications(file: &str, part: &Partial) -> Result<(), MergeError> {
    let requested = part.study.requested;
    let m = part.parameters.len();
    for r in &part.replications {
        if r.number == 0 || r.number > requested {
            return Err(MergeError::OutOfRange {
                file: file.to_string(),
                number: r.number,
                requested,
            });
        }
        if let Outcome::Completed {
            estimates,
            standard_errors,
            ..
        } = &r.outcome
            && (estimates.len() != m || standard_errors.len() != m)
        {
            return Err(MergeError::Malformed {
                file: file.to_string(),
                number: r.number,
                what: format!(
                    "{} estimates and {} standard errors for {m} parameters",
                    estimates.len(),
                    standard_errors.len()
                ),
            });
        }
    }
    Ok(())
}

/// The first pair of files that hold the same replications, with all the
/// numbers they share.
fn check_duplicates(
    parts: &[(String, Partial)],
    numbered: &[(usize, usize, usize)],
) -> Result<(), MergeError> {
    let pairs: Vec<(usize, usize, usize)> = numbered
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .map(|w| (w[0].0, w[0].1, w[1].1))
        .collect();
    let Some(&(_, a, b)) = pairs.first() else {
        return Ok(());
    };
    let mut numbers: Vec<usize> = pairs
        .iter()
        .filter(|&&(_, x, y)| (x, y) == (a, b))
        .map(|&(n, _, _)| n)
        .collect();
    numbers.dedup();
    let replications = format_ranges(&runs(&numbers));
    Err(if a == b {
        MergeError::Repeated {
            file: parts[a].0.clone(),
            replications,
        }
    } else {
        MergeError::Duplicate {
            replications,
            first: parts[a].0.clone(),
            second: parts[b].0.clone(),
        }
    })
}

/// The numbers of 1..=requested that no part holds, as ranges (the numbers
/// are in range and distinct: checked before).
fn check_missing(
    parts: &[(String, Partial)],
    requested: usize,
    numbered: &[(usize, usize, usize)],
) -> Result<(), MergeError> {
    let mut gaps = Vec::new();
    let mut next = 1;
    for &(n, _, _) in numbered {
        if n > next {
            gaps.push((next, n - 1));
        }
        next = n + 1;
    }
    if next <= requested {
        gaps.push((next, requested));
    }
    if gaps.is_empty() {
        return Ok(());
    }
    let files: Vec<&str> = parts.iter().map(|(f, _)| f.as_str()).collect();
    Err(MergeError::Missing {
        replications: format_ranges(&gaps),
        present: numbered.len(),
        requested,
        files: files.join(", "),
    })
}

/// Runs of consecutive numbers in sorted, distinct `numbers`.
fn runs(numbers: &[usize]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for &n in numbers {
        match out.last_mut() {
            Some((_, hi)) if *hi + 1 == n => *hi = n,
            _ => out.push((n, n)),
        }
    }
    out
}

/// "replications 201-400, 503" (the first ten ranges and how many more), or
/// "replication 7".
fn format_ranges(ranges: &[(usize, usize)]) -> String {
    if let [(lo, hi)] = ranges
        && lo == hi
    {
        return format!("replication {lo}");
    }
    const SHOWN: usize = 10;
    let mut parts: Vec<String> = ranges
        .iter()
        .take(SHOWN)
        .map(|&(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect();
    if ranges.len() > SHOWN {
        parts.push(format!("and {} more ranges", ranges.len() - SHOWN));
    }
    format!("replications {}", parts.join(", "))
}

/// `f64` as a JSON number (the shortest decimal that reads back as the
/// same bits; the workspace builds serde_json with `float_roundtrip`, whose
/// parser is correctly rounded), or, not being a JSON number, a
/// non-finite value as a string ("NaN", "inf"); strings holding numbers are
/// read too.
mod exact {
    use std::fmt;

    use serde::de::{self, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// One `f64`, written exactly.
    pub(super) struct Exact(pub(super) f64);

    impl Serialize for Exact {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            if self.0.is_finite() {
                s.serialize_f64(self.0)
            } else {
                s.collect_str(&format_args!("{:?}", self.0))
            }
        }
    }

    impl<'de> Deserialize<'de> for Exact {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(ExactVisitor).map(Exact)
        }
    }

    struct ExactVisitor;

    impl Visitor<'_> for ExactVisitor {
        type Value = f64;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number, or a string holding one")
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            v.trim()
                .parse()
                .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }

    pub(super) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        Exact(*v).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Exact::deserialize(d).map(|e| e.0)
    }

    /// `Vec<f64>`, each value exact.
    pub(super) mod vec {
        use super::Exact;
        use serde::{Deserialize, Deserializer, Serializer};

        pub(in super::super) fn serialize<S: Serializer>(
            v: &[f64],
            s: S,
        ) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|&x| Exact(x)))
        }

        pub(in super::super) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<f64>, D::Error> {
            let v = Vec::<Exact>::deserialize(d)?;
            Ok(v.into_iter().map(|e| e.0).collect())
        }
    }

    /// `Vec<Option<f64>>`, each value exact, `None` as null.
    pub(super) mod opt_vec {
        use super::Exact;
        use serde::{Deserialize, Deserializer, Serializer};

        pub(in super::super) fn serialize<S: Serializer>(
            v: &[Option<f64>],
            s: S,
        ) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|x| x.map(Exact)))
        }

        pub(in super::super) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<Option<f64>>, D::Error> {
            let v = Vec::<Option<Exact>>::deserialize(d)?;
            Ok(v.into_iter().map(|e| e.map(|e| e.0)).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(
        section: &str,
        name: &str,
        class: Option<&str>,
        population: f64,
        fixed: bool,
    ) -> ParamKey {
        ParamKey {
            section: section.into(),
            name: name.into(),
            class: class.map(Into::into),
            population,
            fixed,
        }
    }

    fn done(number: usize, fit: [f64; 4], estimates: &[f64], ses: &[Option<f64>]) -> Replication {
        Replication {
            number,
            outcome: Outcome::Completed {
                loglikelihood: fit[0],
                aic: fit[1],
                bic: fit[2],
                abic: fit[3],
                estimates: estimates.to_vec(),
                standard_errors: ses.to_vec(),
            },
        }
    }

    fn failed(number: usize, reason: &str) -> Replication {
        Replication {
            number,
            outcome: Outcome::Failed {
                reason: reason.into(),
            },
        }
    }

    /// Y (pop 1), a fixed variance, X (pop 0); three completed and one
    /// failed replication, listed out of order.
    fn tiny() -> (Vec<ParamKey>, Vec<Replication>) {
        let keys = vec![
            key("Means", "Y", None, 1.0, false),
            key("Variances", "Y", None, 1.0, true),
            key("Means", "X", None, 0.0, false),
        ];
        let reps = vec![
            done(
                3,
                [-101.0, 208.0, 218.0, 213.0],
                &[1.5, 1.0, 0.5],
                &[Some(0.25), None, Some(0.2)],
            ),
            failed(4, "the estimation did not converge"),
            done(
                1,
                [-100.0, 206.0, 216.0, 211.0],
                &[1.2, 1.0, 0.1],
                &[Some(0.1), None, Some(0.1)],
            ),
            done(
                2,
                [-102.0, 210.0, 220.0, 215.0],
                &[0.9, 1.0, -0.3],
                &[Some(0.2), None, None],
            ),
        ];
        (keys, reps)
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    fn close_opt(a: Option<f64>, b: f64) {
        match a {
            Some(a) => close(a, b),
            None => panic!("None vs {b}"),
        }
    }

    #[test]
    fn hand_computed_summary() {
        let (keys, reps) = tiny();
        let s = summarize(&keys, &reps, 5);
        assert_eq!((s.requested, s.completed), (5, 3));
        assert_eq!(
            s.failed,
            vec![FailedReplication {
                number: 4,
                reason: "the estimation did not converge".into()
            }]
        );
        close(s.loglikelihood.mean, -101.0);
        close(s.loglikelihood.sd, 1.0);
        assert_eq!(s.loglikelihood.n, 3);
        close(s.bic.mean, 218.0);
        // the fixed variance is skipped
        let names: Vec<&str> = s.parameters.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["Y", "X"]);
        // Y: 1.2, 0.9, 1.5 around 1; SEs 0.1, 0.2, 0.25
        let y = &s.parameters[0];
        close(y.average, 1.2);
        close(y.sd, 0.3); // sqrt((0 + 0.09 + 0.09) / 2)
        close(y.mse, 0.1); // (0.04 + 0.01 + 0.25) / 3
        close_opt(y.se_average, 0.55 / 3.0);
        close_opt(y.coverage, 1.0 / 3.0); // only 0.9 ± 0.392 holds 1
        close_opt(y.significant, 1.0);
        // X: 0.1, -0.3, 0.5 around 0; SEs 0.1, none, 0.2
        let x = &s.parameters[1];
        close(x.average, 0.1);
        close(x.sd, 0.4);
        close(x.mse, 0.35 / 3.0);
        close_opt(x.se_average, 0.15); // the None skipped
        close_opt(x.coverage, 0.5); // 0.1 ± 0.196 holds 0, 0.5 ± 0.392 not
        close_opt(x.significant, 0.5); // z = 1 and 2.5
    }

    #[test]
    fn moments_of_few_values() {
        assert_eq!(
            Moments::of(&[]),
            Moments {
                mean: 0.0,
                sd: 0.0,
                n: 0,
                percentiles: Vec::new()
            }
        );
        assert_eq!(
            Moments::of(&[2.5]),
            Moments {
                mean: 2.5,
                sd: 0.0,
                n: 1,
                percentiles: Vec::new()
            }
        );
        assert_eq!(Moments::of(&[1.0, 3.0]).sd, 2.0_f64.sqrt());
    }

    #[test]
    fn percentiles_by_hand() {
        // 1..5: mean 3, SD sqrt(2.5)
        let m = Moments::of(&[5.0, 1.0, 4.0, 2.0, 3.0]);
        assert_eq!(m.percentiles.len(), 13);
        let row = |p: f64| {
            let i = PROPORTIONS.iter().position(|&x| x == p);
            &m.percentiles[i.unwrap_or(usize::MAX)]
        };
        // p = 0.5: the mean; two of five values above it; the median
        let r = row(0.5);
        close(r.expected_percentile, 3.0);
        close(r.observed_proportion, 0.4);
        close(r.observed_percentile, 3.0);
        // p = 0.9: 3 − 1.281552 sqrt(2.5) = 0.973690, every value above;
        // the 0.1 quantile 1 + 0.4 (2 − 1)
        let r = row(0.9);
        assert!((r.expected_percentile - 0.973_690).abs() < 1e-5);
        close(r.observed_proportion, 1.0);
        close(r.observed_percentile, 1.4);
        // p = 0.1: 5.026310, none above; the 0.9 quantile 4.6
        let r = row(0.1);
        assert!((r.expected_percentile - 5.026_310).abs() < 1e-5);
        close(r.observed_proportion, 0.0);
        close(r.observed_percentile, 4.6);
    }

    #[test]
    fn no_se_gives_none() {
        let keys = vec![key("Means", "Y", None, 0.0, false)];
        let reps = vec![
            done(1, [0.0; 4], &[0.5], &[None]),
            done(2, [0.0; 4], &[0.7], &[Some(0.0)]),
        ];
        let p = &summarize(&keys, &reps, 2).parameters[0];
        assert_eq!(
            (p.se_average, p.coverage, p.significant),
            (None, None, None)
        );
    }

    #[test]
    fn none_completed_renders_without_nan() {
        let (keys, _) = tiny();
        let reps = vec![
            failed(1, "singular information matrix"),
            failed(2, "no data"),
        ];
        let s = summarize(&keys, &reps, 2);
        assert_eq!(s.completed, 0);
        assert!(s.parameters.is_empty());
        assert_eq!(
            s.aic,
            Moments {
                mean: 0.0,
                sd: 0.0,
                n: 0,
                percentiles: Vec::new()
            }
        );
        let json = serde_json::to_string(&s).expect("a summary serializes");
        assert!(!json.contains("null") && !json.contains("NaN"), "{json}");
        let t = text(&s);
        assert!(t.contains("No replication completed"), "{t}");
        assert!(
            t.contains("Replication 1: singular information matrix"),
            "{t}"
        );
        assert!(t.contains("Replication 2: no data"), "{t}");
    }

    #[test]
    fn unusable_completed_replications_count_as_failed() {
        let (keys, mut reps) = tiny();
        reps.push(done(5, [0.0; 4], &[1.0], &[None]));
        reps.push(done(
            6,
            [f64::NAN, 0.0, 0.0, 0.0],
            &[1.0, 1.0, 0.0],
            &[None; 3],
        ));
        reps.push(done(7, [0.0; 4], &[1.0, 1.0, f64::INFINITY], &[None; 3]));
        let s = summarize(&keys, &reps, 7);
        assert_eq!(s.completed, 3);
        let numbers: Vec<usize> = s.failed.iter().map(|f| f.number).collect();
        assert_eq!(numbers, [4, 5, 6, 7]);
        assert!(
            s.failed[1]
                .reason
                .contains("1 estimates and 1 standard errors for 3")
        );
        assert!(s.failed[2].reason.contains("NaN"), "{}", s.failed[2].reason);
        assert!(
            s.failed[3].reason.contains("estimate of X is inf"),
            "{}",
            s.failed[3].reason
        );
        assert_eq!(s.parameters, summarize(&keys, &tiny().1, 7).parameters);
    }

    /// The text of a two-class study with a class regression.
    fn class_text() -> String {
        let keys = vec![
            key("Thresholds", "U1$1", Some("C#1"), 1.0, false),
            key("Thresholds", "U1$1", Some("C#2"), -1.0, false),
            key("Means", "C#1", None, 0.5, false),
            key("C#1 ON", "X", None, 0.3, false),
        ];
        let reps = vec![
            done(
                1,
                [-10.0, 1.0, 2.0, 3.0],
                &[1.1, -0.9, 0.4, 0.2],
                &[Some(0.1); 4],
            ),
            done(
                2,
                [-11.0, 1.0, 2.0, 3.0],
                &[0.9, -1.2, 0.6, 0.5],
                &[Some(0.1); 4],
            ),
            failed(3, "the loglikelihood did not converge in 500 iterations"),
        ];
        text(&summarize(&keys, &reps, 3))
    }

    #[test]
    fn text_has_columns_and_failures() {
        let t = class_text();
        for want in [
            "MONTE CARLO RESULTS",
            "Requested",
            "Completed",
            "Number of successful computations",
            "Sample-Size Adjusted BIC",
            "MODEL RESULTS",
            "ESTIMATES",
            "S. E.",
            "M. S. E.",
            "95%",
            "% Sig",
            "Population",
            "Average",
            "Std. Dev.",
            "Cover",
            "Coeff",
            "Replication 3: the loglikelihood did not converge in 500 iterations",
            "% Sig Coeff: the share",
        ] {
            assert!(t.contains(want), "no {want:?} in\n{t}");
        }
    }

    #[test]
    fn text_groups_by_class_and_aligns() {
        let t = class_text();
        let at = |s: &str| t.find(s).unwrap_or_else(|| panic!("no {s:?} in\n{t}"));
        assert!(at("Latent Class 1") < at("Latent Class 2"));
        assert!(at("Latent Class 2") < at("Categorical Latent Variables"));
        // the class model: ON before the intercepts, as Mplus
        assert!(at("Categorical Latent Variables") < at(" C#1 ON\n  X"));
        assert!(at(" C#1 ON\n  X") < at(" Means\n  C#1"), "{t}");
        // every row ends where the column headings end
        let head = t
            .lines()
            .find(|l| l.contains("Population"))
            .map_or(0, str::len);
        let results = &t[at("MODEL RESULTS")..];
        let rows: Vec<&str> = (results.lines())
            .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
            .collect();
        assert_eq!(rows.len(), 4, "{t}");
        assert!(rows.iter().all(|l| l.len() == head), "{t}");
    }

    /// Twenty replications of reproducible, awkward values (one failed).
    fn study() -> (StudyKey, Vec<ParamKey>, Vec<Replication>) {
        let keys = vec![
            key("Means", "Y", Some("C#1"), 0.1, false),
            key("Variances", "Y", Some("C#1"), 1.0, true),
            key("Means", "C#1", None, -0.7, false),
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut draw = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let reps = (1..=20)
            .map(|n| {
                if n == 13 {
                    return failed(n, "no convergence");
                }
                let fit = [
                    -3000.0 + draw(),
                    6000.0 + draw(),
                    6050.0 + draw(),
                    6020.0 + draw(),
                ];
                let est = [0.1 + draw(), 1.0, -0.7 + draw()];
                let se = [
                    Some(0.3 + draw() / 10.0),
                    None,
                    (n % 3 != 0).then(|| 0.3 + draw() / 10.0),
                ];
                done(n, fit, &est, &se)
            })
            .collect();
        let study = StudyKey {
            input_file: "ex12.inp".into(),
            fingerprint: "abc123".into(),
            requested: 20,
            seed: 53487,
            title: "a study".into(),
        };
        (study, keys, reps)
    }

    /// Shards of the study holding replications lo..=hi, each through JSON.
    fn shards(ranges: &[(usize, usize)]) -> Vec<(String, Partial)> {
        let (study, keys, reps) = study();
        ranges
            .iter()
            .map(|&(lo, hi)| {
                let mine = reps
                    .iter()
                    .filter(|r| (lo..=hi).contains(&r.number))
                    .cloned()
                    .collect();
                let part = Partial::new(study.clone(), keys.clone(), mine);
                let file = format!("reps{lo}-{hi}.json");
                let json = serde_json::to_string_pretty(&part).expect("serializes");
                let back = read_partial(&file, &json).expect("reads back");
                (file, back)
            })
            .collect()
    }

    fn merge_err(parts: &[(String, Partial)]) -> String {
        match merge(parts) {
            Ok(_) => panic!("merged"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn merged_shards_in_any_order_summarize_bit_for_bit() {
        let (study, keys, reps) = study();
        let whole = summarize(&keys, &reps, 20);
        let mut reversed = reps.clone();
        reversed.reverse();
        assert_eq!(summarize(&keys, &reversed, 20), whole);
        let parts = shards(&[(11, 15), (1, 5), (16, 20), (6, 10)]);
        let (s, k, merged) = merge(&parts).expect("merges");
        assert_eq!((s, k.clone()), (study, keys));
        assert_eq!(merged, reps);
        let from_shards = summarize(&k, &merged, 20);
        assert_eq!(from_shards, whole);
        let bits = |s: &Summary| -> Vec<u64> {
            s.parameters
                .iter()
                .flat_map(|p| [p.average.to_bits(), p.sd.to_bits(), p.mse.to_bits()])
                .collect()
        };
        assert_eq!(bits(&from_shards), bits(&whole));
        assert_eq!(whole.failed.len(), 1);
    }

    #[test]
    fn overlap_is_an_error() {
        let e = merge_err(&shards(&[(1, 10), (6, 15), (16, 20)]));
        assert_eq!(
            e,
            "replications 6-10 found in both reps1-10.json and reps6-15.json"
        );
        let e = merge_err(&shards(&[(1, 10), (10, 20)]));
        assert_eq!(
            e,
            "replication 10 found in both reps1-10.json and reps10-20.json"
        );
        let mut parts = shards(&[(1, 20)]);
        parts[0].1.replications[4].number = 4;
        assert_eq!(
            merge_err(&parts),
            "reps1-20.json: replication 4 given twice"
        );
    }

    #[test]
    fn gap_is_an_error_naming_the_range() {
        let e = merge_err(&shards(&[(1, 5), (11, 18)]));
        assert_eq!(
            e,
            "replications 6-10, 19-20 missing: 13 of 20 present in reps1-5.json, reps11-18.json"
        );
        let e = merge_err(&shards(&[(2, 20)]));
        assert_eq!(
            e,
            "replication 1 missing: 19 of 20 present in reps2-20.json"
        );
    }

    #[test]
    fn different_study_is_an_error() {
        let mut parts = shards(&[(1, 10), (11, 20)]);
        parts[1].1.study.fingerprint = "def456".into();
        let e = merge_err(&parts);
        assert!(
            e.starts_with("reps11-20.json belongs to a different study than reps1-10.json"),
            "{e}"
        );
        assert!(e.contains("fingerprint"), "{e}");
        parts[1].1.study = parts[0].1.study.clone();
        parts[1].1.study.seed = 1;
        assert!(merge_err(&parts).contains("SEED 53487 vs 1"));
    }

    #[test]
    fn different_parameters_is_an_error() {
        let mut parts = shards(&[(1, 10), (11, 20)]);
        parts[1].1.parameters[2].population = -0.6;
        let e = merge_err(&parts);
        assert!(
            e.starts_with("reps11-20.json has different parameters than reps1-10.json"),
            "{e}"
        );
        assert!(
            e.contains("parameter 3: Means C#1 (population -0.7) vs Means C#1 (population -0.6)"),
            "{e}"
        );
        parts[1].1.parameters.pop();
        assert!(merge_err(&parts).contains("3 parameters vs 2"));
    }

    #[test]
    fn number_out_of_range_is_an_error() {
        let mut parts = shards(&[(1, 10), (11, 20)]);
        parts[1].1.replications[9].number = 21;
        assert_eq!(
            merge_err(&parts),
            "reps11-20.json: replication 21 is outside 1-20 (NREPS = 20)"
        );
        parts[1].1.replications[9].number = 0;
        assert!(merge_err(&parts).contains("replication 0 is outside"));
    }

    #[test]
    fn other_bad_parts_are_errors() {
        assert_eq!(merge_err(&[]), "no partial-results files to merge");
        let mut parts = shards(&[(1, 10), (11, 20)]);
        parts[0].1.format = "something/2".into();
        assert!(merge_err(&parts).starts_with("reps1-10.json: format \"something/2\""));
        let mut parts = shards(&[(1, 10), (11, 20)]);
        if let Outcome::Completed { estimates, .. } = &mut parts[1].1.replications[0].outcome {
            estimates.pop();
        }
        assert_eq!(
            merge_err(&parts),
            "reps11-20.json: replication 11: 2 estimates and 3 standard errors for 3 parameters"
        );
        let e = read_partial("junk.json", "{\"format\": 1")
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(e.is_err_and(|e| e.starts_with("junk.json: not a readable")));
    }

    #[test]
    fn partial_json_roundtrip_is_exact() {
        let (study, keys, _) = study();
        let awkward = [
            14.829037328432975,
            0.1 + 0.2,
            1e-300,
            -0.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            -57.416218546573084,
        ];
        let reps = vec![
            done(
                1,
                [awkward[0], awkward[1], awkward[2], awkward[3]],
                &awkward[4..7],
                &[Some(awkward[6]), None, Some(5e-324)],
            ),
            failed(2, "did not converge"),
        ];
        let part = Partial::new(study, keys, reps);
        let json = serde_json::to_string(&part).expect("serializes");
        let back: Partial = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, part);
        // Debug prints the shortest decimal that reads back to the same bits
        let bits = |p: &Partial| format!("{:?}", p.replications);
        assert_eq!(bits(&back), bits(&part));
        // non-finite values survive too
        let mut odd = part.clone();
        odd.replications[0] = done(
            1,
            [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0],
            &[0.0; 3],
            &[None; 3],
        );
        let back: Partial =
            serde_json::from_str(&serde_json::to_string(&odd).expect("serializes")).expect("reads");
        match &back.replications[0].outcome {
            Outcome::Completed {
                loglikelihood,
                aic,
                bic,
                ..
            } => {
                assert!(
                    loglikelihood.is_nan() && *aic == f64::INFINITY && *bic == f64::NEG_INFINITY
                );
            }
            Outcome::Failed { .. } => panic!("not completed"),
        }
    }

    #[test]
    fn plain_json_numbers_are_read() {
        let json = r#"{"format": "mlmix-montecarlo-partial/1",
            "study": {"input_file": "a.inp", "fingerprint": "f", "requested": 1, "seed": 7},
            "parameters": [{"section": "Means", "name": "Y", "class": null, "population": 0.5, "fixed": false}],
            "replications": [{"number": 1, "outcome": {"status": "completed", "loglikelihood": -10,
                "aic": 22.5, "bic": "23.5", "abic": 23, "estimates": [0.25], "standard_errors": [null]}}]}"#;
        let p = read_partial("a.json", json).expect("reads");
        assert_eq!(p.parameters[0].population, 0.5);
        assert_eq!(
            p.replications[0].outcome,
            done(1, [-10.0, 22.5, 23.5, 23.0], &[0.25], &[None]).outcome
        );
    }
}
