//! Support for the end-to-end tests: paths to the shipped data, scratch
//! folders, fitting an input file or text, seeded random draws for
//! simulated data, the summary of a recovery study, and for the two-level
//! tests the engine's likelihood at fixed parameters ([`Evaluator`]) and a
//! multivariate normal density of their own.
//!
//! The data in `tests/data/` are copies of `../shared/reference/data/` (their
//! sources are listed in `tests/data/README.md`), so the tests run anywhere.

#![allow(clippy::unwrap_used)]

pub mod gom_designs;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mlmix_integrate::{Backend, Grid, Want};
use mlmix_kernels::{EngineData, Plan};

use mlmix::spec::{Loaded, SpecError};
use mlmix::{Fit, FitOptions, Silent};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The `tests/` folder.
pub fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file in `tests/data/`.
pub fn data(name: &str) -> PathBuf {
    tests_dir().join("data").join(name)
}

/// A file in `tests/inputs/`.
pub fn input(name: &str) -> PathBuf {
    tests_dir().join("inputs").join(name)
}

/// A temporary folder, removed when dropped (kept where the environment
/// variable `MLMIX_KEEP_SCRATCH` is set, to look into a failure).
pub struct Scratch {
    dir: PathBuf,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Scratch {
    /// A new empty folder named after `tag`.
    pub fn new(tag: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("mlmix-test-{}-{}-{}", std::process::id(), tag, n));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch { dir }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes a file in the folder and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("MLMIX_KEEP_SCRATCH").is_some() {
            eprintln!("kept {}", self.dir.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Loads and fits an input file, panicking with the input errors if any.
pub fn fit_path(path: &Path) -> (Loaded, Fit) {
    let loaded = mlmix::spec::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let fit = mlmix::fit(&loaded, &FitOptions::default(), &Silent).unwrap();
    (loaded, fit)
}

/// Writes `text` as `name` in `scratch`, loads and fits it.
pub fn fit_text(scratch: &Scratch, name: &str, text: &str) -> Result<(Loaded, Fit), SpecError> {
    let p = scratch.write(name, text);
    let loaded = mlmix::spec::load(&p)?;
    let fit = mlmix::fit(&loaded, &FitOptions::default(), &Silent).unwrap();
    Ok((loaded, fit))
}

/// The estimate of parameter `name` (as in the report: `U1$1`, `Y ON X`
/// is `X` in section `Y ON`) in `class` (`C#1`, or `None` for class-model
/// parameters), in `section`.
pub fn estimate<'a>(
    fit: &'a Fit,
    section: &str,
    name: &str,
    class: Option<&str>,
) -> &'a mlmix::results::ParameterEstimate {
    fit.parameters
        .iter()
        .find(|p| {
            p.section == section && p.name.eq_ignore_ascii_case(name) && p.class.as_deref() == class
        })
        .unwrap_or_else(|| panic!("no parameter {section} {name} in {class:?}"))
}

/// Seeded random draws.
pub struct Sim(ChaCha8Rng);

impl Sim {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Sim(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Uniform on (0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0.random::<f64>()
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Standard logistic.
    pub fn logistic(&mut self) -> f64 {
        let u = self.uniform().clamp(1e-300, 1.0 - 1e-16);
        (u / (1.0 - u)).ln()
    }

    /// An index drawn with probabilities `p` (summing to 1).
    pub fn categorical(&mut self, p: &[f64]) -> usize {
        let u = self.uniform();
        let mut acc = 0.0;
        for (i, pi) in p.iter().enumerate() {
            acc += pi;
            if u < acc {
                return i;
            }
        }
        p.len() - 1
    }

    /// Softmax of logits (the last class is usually given 0).
    pub fn softmax(eta: &[f64]) -> Vec<f64> {
        let m = eta.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = eta.iter().map(|x| (x - m).exp()).collect();
        let s: f64 = e.iter().sum();
        e.into_iter().map(|x| x / s).collect()
    }

    /// `persons` rows of binary 3PL items, θ ~ N(0, 1) per person: P(u_k =
    /// 1) = g + (1 − g) / (1 + e^−a_k (θ − b_k)).
    pub fn three_pl(&mut self, persons: usize, a: &[f64], b: &[f64], g: f64) -> Vec<Vec<f64>> {
        (0..persons)
            .map(|_| {
                let theta = self.normal();
                a.iter()
                    .zip(b)
                    .map(|(&ak, &bk)| {
                        let p = g + (1.0 - g) / (1.0 + (-(ak * (theta - bk))).exp());
                        f64::from(self.uniform() < p)
                    })
                    .collect()
            })
            .collect()
    }

    /// An ordered category from thresholds (logit link): the number of
    /// thresholds below the latent response `eta + logistic`.
    pub fn ordinal_logit(&mut self, tau: &[f64], eta: f64) -> usize {
        let y = eta + self.logistic();
        tau.iter().filter(|t| **t < y).count()
    }
}

/// Writes rows in free format (NaN as `missing`).
pub fn free_format(rows: &[Vec<f64>], missing: &str) -> String {
    let mut s = String::new();
    for r in rows {
        let f: Vec<String> = r
            .iter()
            .map(|x| {
                if x.is_nan() {
                    missing.to_string()
                } else {
                    format!("{x}")
                }
            })
            .collect();
        s.push_str(&f.join(" "));
        s.push('\n');
    }
    s
}

/// One parameter's results over the replications of a recovery study.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// Which parameter.
    pub label: String,
    /// Its true value.
    pub truth: f64,
    /// Estimates.
    pub estimates: Vec<f64>,
    /// Standard errors.
    pub ses: Vec<f64>,
}

impl Recovered {
    /// A parameter with its truth.
    pub fn new(label: &str, truth: f64) -> Self {
        Recovered {
            label: label.to_string(),
            truth,
            estimates: Vec::new(),
            ses: Vec::new(),
        }
    }

    /// Mean estimate.
    pub fn mean(&self) -> f64 {
        self.estimates.iter().sum::<f64>() / self.estimates.len() as f64
    }

    /// Standard deviation of the estimates.
    pub fn sd(&self) -> f64 {
        let m = self.mean();
        let n = self.estimates.len() as f64;
        (self
            .estimates
            .iter()
            .map(|x| (x - m) * (x - m))
            .sum::<f64>()
            / (n - 1.0))
            .sqrt()
    }

    /// Mean standard error.
    pub fn mean_se(&self) -> f64 {
        self.ses.iter().sum::<f64>() / self.ses.len() as f64
    }

    /// Share of replications whose 95% interval covers the truth.
    pub fn coverage(&self) -> f64 {
        let hits = self
            .estimates
            .iter()
            .zip(&self.ses)
            .filter(|(e, s)| (*e - self.truth).abs() <= 1.96 * *s)
            .count();
        hits as f64 / self.estimates.len() as f64
    }

    /// Asserts that the estimates recover the truth: the mean is within
    /// 3.5 Monte Carlo standard errors of the truth, the average standard
    /// error matches the spread of the estimates (ratio in [0.7, 1.4]), and
    /// 95% intervals cover the truth in at least 85% of replications. With
    /// 100 replications the ratio band is about four Monte Carlo standard
    /// errors wide on each side, so a study of ~100 parameters does not fail
    /// by chance; with 30 it would (the sample SD is then ±13%).
    pub fn check(&self) {
        self.check_within(0.7..=1.4, 0.85);
    }

    /// [`Recovered::check`] with its bands widened for a study of few
    /// replications (its own bands are sized for about 100): the mean
    /// within 3.5 Monte Carlo standard errors of the truth, the ratio of
    /// the mean standard error to the SD of the estimates within 4 of the
    /// sample SD's relative standard errors, 1 / sqrt(2 (r - 1)), of 1 (on
    /// the log scale), and coverage of 95% intervals no more than 4.5
    /// binomial standard errors below 0.95. With 20 replications: ratio in
    /// [0.52, 1.91], coverage at least 15 of 20. It catches biased
    /// estimates and standard errors wrong by a factor of two, not finer
    /// errors: the full study does.
    pub fn check_few(&self) {
        let r = self.estimates.len() as f64;
        let band = 4.0 / (2.0 * (r - 1.0)).sqrt();
        let min_coverage = 0.95 - 4.5 * (0.95 * 0.05 / r).sqrt();
        self.check_within((-band).exp()..=band.exp(), min_coverage);
    }

    /// The checks of [`Recovered::check`] with the ratio of the mean
    /// standard error to the SD of the estimates in `ratio` and coverage of
    /// 95% intervals at least `min_coverage`.
    fn check_within(&self, ratio: std::ops::RangeInclusive<f64>, min_coverage: f64) {
        let r = self.estimates.len() as f64;
        let mc = self.sd() / r.sqrt();
        let bias = self.mean() - self.truth;
        let se_ratio = self.mean_se() / self.sd();
        let line = format!(
            "{}: truth {:.4}, mean {:.4}, sd {:.4}, mean se {:.4}, coverage {:.2}",
            self.label,
            self.truth,
            self.mean(),
            self.sd(),
            self.mean_se(),
            self.coverage()
        );
        println!("{line}");
        assert!(bias.abs() <= 3.5 * mc, "biased: {line}");
        assert!(
            ratio.contains(&se_ratio),
            "standard errors off (ratio {se_ratio:.3}): {line}"
        );
        assert!(self.coverage() >= min_coverage, "poor coverage: {line}");
    }
}

/// A rayon thread pool of a given size, for thread-count tests.
pub struct Pool(rayon::ThreadPool);

impl Pool {
    /// A pool of `threads` threads.
    pub fn new(threads: usize) -> Self {
        Pool(
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap(),
        )
    }

    /// Runs `f` in the pool.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.0.install(f)
    }
}

/// Loads an input written to `scratch` (panics with the error).
pub fn load(scratch: &Scratch, name: &str, text: &str) -> Loaded {
    let p = scratch.write(name, text);
    mlmix::spec::load(&p).unwrap_or_else(|e| panic!("{e}"))
}

/// The estimates of a fit, in phi order.
pub fn estimates(fit: &Fit) -> Vec<f64> {
    fit.parameters.iter().map(|p| p.estimate).collect()
}

/// ln(2 pi).
pub const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// ln N(r; 0, V), V row-major `n x n`, by Cholesky: written here, apart
/// from the engine, for the exact likelihoods of the tests.
pub fn mvn_log_density(r: &[f64], v: &[f64]) -> f64 {
    let n = r.len();
    let mut a = v.to_vec();
    let mut log_det = 0.0;
    for k in 0..n {
        for j in 0..k {
            a[k * n + k] -= a[k * n + j] * a[k * n + j];
        }
        let d = a[k * n + k].sqrt();
        a[k * n + k] = d;
        log_det += 2.0 * d.ln();
        for i in k + 1..n {
            for j in 0..k {
                a[i * n + k] -= a[i * n + j] * a[k * n + j];
            }
            a[i * n + k] /= d;
        }
    }
    let mut z = r.to_vec();
    let mut quad = 0.0;
    for i in 0..n {
        let mut s = z[i];
        for j in 0..i {
            s -= a[i * n + j] * z[j];
        }
        z[i] = s / a[i * n + i];
        quad += z[i] * z[i];
    }
    -0.5 * (n as f64 * LN_2PI + log_det + quad)
}

/// The engine's plan and data of a loaded model, for evaluations at fixed
/// parameters on grids of a test's choosing.
pub struct Evaluator {
    /// The compiled model.
    pub plan: Arc<Plan>,
    /// Its data.
    pub data: Arc<EngineData>,
}

impl Evaluator {
    /// The plan and data of `loaded` (rows not merged).
    pub fn new(loaded: &Loaded) -> Self {
        let data = Arc::new(mlmix::fit::engine_data(loaded, false));
        let plan = Arc::new(Plan::compile(&loaded.model, &data).unwrap());
        Evaluator { plan, data }
    }

    /// A CPU backend on `grid`.
    pub fn backend(&self, grid: Grid) -> Box<dyn Backend> {
        mlmix::fit::make_backend(
            mlmix::BackendChoice::Cpu,
            self.plan.clone(),
            self.data.clone(),
            grid,
        )
        .unwrap()
    }

    /// The log-likelihood on `grid`, adapted `rounds` times (0: plain).
    /// The optimiser adapts twice from the plain grid at a start and once
    /// more at every step, so 3 rounds is what a fit reports.
    pub fn ll(&self, phi: &[f64], grid: Grid, rounds: usize) -> f64 {
        let be = self.backend(grid);
        let mut adapt = None;
        for _ in 0..rounds {
            if let Some((a, _failed)) = be.adapt(phi, adapt.as_ref()).unwrap() {
                adapt = Some(a);
            }
        }
        be.evaluate_adapted(phi, Want::LL, adapt.as_ref())
            .unwrap()
            .loglik
    }
}

/// A parameter to follow: report section, name, class, true value.
pub type Truth = (&'static str, &'static str, Option<&'static str>, f64);

/// Runs `reps` replications: `make(sim)` returns (data rows, input text
/// without its DATA command), each fitted once from the text's starting
/// values; requires convergence, hands each fit to `inspect`, and returns
/// the estimates and standard errors of the parameters in `truths`.
pub fn replications(
    tag: &str,
    reps: usize,
    seed: u64,
    truths: &[Truth],
    make: impl Fn(&mut Sim) -> (Vec<Vec<f64>>, String),
    inspect: impl Fn(&Fit),
) -> Vec<Recovered> {
    let mut rec: Vec<Recovered> = truths
        .iter()
        .map(|(s, n, c, t)| Recovered::new(&format!("{s} {n} {}", c.unwrap_or("")), *t))
        .collect();
    let scratch = Scratch::new(tag);
    let mut sim = Sim::new(seed);
    for r in 0..reps {
        let (rows, body) = make(&mut sim);
        scratch.write("data.dat", &free_format(&rows, "-99"));
        let text = format!("DATA: FILE = data.dat;\n{body}");
        let (_, fit) = fit_text(&scratch, "model.inp", &text).unwrap_or_else(|e| panic!("{e}"));
        assert!(fit.converged, "{tag} replication {r} did not converge");
        inspect(&fit);
        for ((s, n, c, _), rv) in truths.iter().zip(rec.iter_mut()) {
            let p = estimate(&fit, s, n, *c);
            rv.estimates.push(p.estimate);
            rv.ses
                .push(p.se.unwrap_or_else(|| panic!("{tag}: no standard error for {s} {n}")));
        }
    }
    rec
}

/// [`replications`] followed by [`Recovered::check`] of every parameter.
pub fn study(
    tag: &str,
    reps: usize,
    seed: u64,
    truths: &[Truth],
    make: impl Fn(&mut Sim) -> (Vec<Vec<f64>>, String),
) {
    for rv in &replications(tag, reps, seed, truths, make, |_| {}) {
        rv.check();
    }
}

/// The logistic function 1 / (1 + e^−x).
pub fn expit(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// A trapezoid rule for E[f(expit(α))] with α ~ N(μ, var), written apart
/// from the engine for the tests' independent integrals: `(expit(α_k),
/// w_k)` at 8,001 points on μ ± 14 sd (the integrands are smooth and decay
/// like the normal density, so the rule is accurate to rounding).
pub fn logit_normal_nodes(mu: f64, var: f64) -> Vec<(f64, f64)> {
    let sd = var.sqrt();
    let n = 8001;
    let h = 28.0 * sd / (n - 1) as f64;
    (0..n)
        .map(|k| {
            let z = -14.0 + 28.0 * k as f64 / (n - 1) as f64;
            let end = if k == 0 || k == n - 1 { 0.5 } else { 1.0 };
            let w = end * h * (-0.5 * z * z).exp() / (sd * (2.0 * std::f64::consts::PI).sqrt());
            (expit(mu + sd * z), w)
        })
        .collect()
}
