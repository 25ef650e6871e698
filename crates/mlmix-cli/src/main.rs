//! The `mlmix` command: fit a model from an Mplus-style input file.
//!
//! `mlmix fit MODEL.inp [--json OUT.json] [-o REPORT] [--seed S]
//! [--threads N] [--backend auto|cpu|gpu] [-q]` prints the report on standard
//! output (or writes it with `-o`) and progress on standard error: a bar on a
//! terminal, a plain line every few seconds otherwise. Exit status 0 on a fit
//! (converged or not, as the report says), 1 on an error in the input, the
//! data or an output file, or on a fit interrupted by SIGINT/SIGTERM (whose
//! best solution so far is still written, marked as interrupted), 2 on a
//! usage error. `mlmix bench MODEL.inp [-n N]` times the model's
//! log-likelihood evaluations, alone and with the gradient, on the CPU and
//! on a GPU. This crate is the only one (with xtask) that prints; every
//! write is checked ([`console`], [`outputs`]).

mod console;
mod interrupt;
mod outputs;
mod progress;
mod study;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use mlmix::spec::Loaded;
use mlmix::{BackendChoice, FitOptions};

use crate::console::{Closed, Console};
use crate::progress::Progress;

#[derive(Parser)]
#[command(
    name = "mlmix",
    version,
    about = "Multilevel mixture models by maximum likelihood"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fit the model of an input file and print the results.
    Fit(FitArgs),
    /// Check an input file and its data, and print the checked model as JSON.
    Check {
        /// The input file.
        model: PathBuf,
    },
    /// Merge the partial-results files of a Monte Carlo study's shards
    /// (`mlmix fit study.inp --replications A-B`) and print the summary.
    Merge {
        /// The partial-results files.
        #[arg(required = true)]
        parts: Vec<PathBuf>,
        /// Also write the summary as JSON to this file.
        #[arg(long, value_name = "OUT.json")]
        json: Option<PathBuf>,
        /// Write the report to this file instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Write one generated data set of a Monte Carlo input.
    Simulate {
        /// The Monte Carlo input file.
        model: PathBuf,
        /// Which replication's data (1-based).
        #[arg(long, default_value_t = 1, value_name = "K")]
        replication: usize,
        /// Write the data to this file instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Time the model's log-likelihood evaluations, alone and with the
    /// gradient, on the CPU and on a GPU (if there is one), at the default
    /// starting values.
    Bench {
        /// The input file.
        model: PathBuf,
        /// Evaluations per backend (the median is printed).
        #[arg(short = 'n', long, default_value_t = 5, value_name = "N")]
        evaluations: usize,
    },
}

/// What `mlmix fit` was asked to do.
#[derive(clap::Args)]
struct FitArgs {
    /// The input file (Mplus-style).
    model: PathBuf,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "OUT.json")]
    json: Option<PathBuf>,
    /// Seed of the random starts (overrides STSEED).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Number of threads (default: PROCESSORS, else all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Where the likelihood loop runs.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    backend: BackendArg,
    /// Write the report to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// No progress display.
    #[arg(long, short)]
    quiet: bool,
    /// A Monte Carlo input: run replications A to B only and write their
    /// results to a partial-results file (--json, else beside the input),
    /// for `mlmix merge`.
    #[arg(long, value_name = "A-B", conflicts_with = "shard")]
    replications: Option<String>,
    /// A Monte Carlo input: run the K-th of N near-equal parts of the
    /// replications (a job array's task: --shard $SLURM_ARRAY_TASK_ID/N),
    /// written as with --replications.
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    /// The best for the model: the CPU for now (the GPU backend is not
    /// measured on a hardware GPU yet).
    Auto,
    /// The CPU.
    Cpu,
    /// A GPU, a software one too (an error when there is none).
    Gpu,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let console = Console::default();
    let code = match run(cli, &console) {
        Ok(code) => code,
        // the reader of standard output is gone: nothing to tell it
        Err(e) if e.is::<Closed>() => 1,
        Err(e) => {
            console.err(format_args!("error: {e:#}"));
            1
        }
    };
    // a failed write to standard error lost a message: not a success
    ExitCode::from(if code == 0 && console.stderr_failed() {
        1
    } else {
        code
    })
}

fn run(cli: Cli, console: &Console) -> anyhow::Result<u8> {
    match cli.command {
        Command::Check { model } => check(&model, console),
        Command::Fit(args) => fit(&args, console),
        Command::Bench { model, evaluations } => bench(&model, evaluations, console),
        Command::Merge {
            parts,
            json,
            output,
        } => study::merge(&parts, json.as_deref(), output.as_deref(), console),
        Command::Simulate {
            model,
            replication,
            output,
        } => study::simulate(&model, replication, output.as_deref(), console),
    }
}

/// `mlmix bench`.
fn bench(model: &Path, evaluations: usize, console: &Console) -> anyhow::Result<u8> {
    let Some(loaded) = load(model, console) else {
        return Ok(1);
    };
    let t = match mlmix::bench::time_backends(&loaded, evaluations) {
        Ok(t) => t,
        Err(e) => {
            console.err(format_args!("error: {}: {e}", model.display()));
            return Ok(1);
        }
    };
    let mut out = format!(
        "{}: evaluations at the default starting values, median of {evaluations}; {:.3e} integrand terms each (rows x passes x class combinations x terms)\n",
        model.display(),
        t.terms
    );
    let (cpu, cpu_gradient) = (t.backends[0].seconds, t.backends[0].gradient_seconds);
    for b in &t.backends {
        out.push_str(&format!("\n{}\n", b.backend));
        for (what, s, base) in [
            ("log-likelihood", b.seconds, cpu),
            ("and gradient", b.gradient_seconds, cpu_gradient),
        ] {
            out.push_str(&format!(
                "  {what:<15}{:>12.6} s  {:>10.3e} terms/s  {:>8.2}x the CPU\n",
                s,
                t.terms / s,
                base / s,
            ));
        }
        out.push_str(&format!("  logL {:.6}\n", b.loglik));
    }
    if let Some(why) = &t.no_gpu {
        out.push_str(&format!("no GPU figure: {why}\n"));
    }
    console.out(&out)?;
    Ok(0)
}

/// Reads and checks an input file and its data, or prints why not (`None`).
fn load(model: &Path, console: &Console) -> Option<Loaded> {
    match mlmix::spec::load(model) {
        Ok(l) => {
            for w in &l.warnings {
                console.err(format_args!("{w}"));
            }
            Some(l)
        }
        Err(e) => {
            print_spec_error(console, model, &e, "fitted");
            None
        }
    }
}

/// An input's errors and warnings, and the count of errors (every one
/// found, also those repeated or not shown): nothing was `done`.
pub(crate) fn print_spec_error(
    console: &Console,
    model: &Path,
    e: &mlmix::spec::SpecError,
    done: &str,
) {
    console.err(format_args!("{e}"));
    for w in &e.warnings {
        console.err(format_args!("{w}"));
    }
    let n = e.count();
    console.err(format_args!(
        "\n{}: {} error{}; nothing was {done}",
        model.display(),
        n,
        if n == 1 { "" } else { "s" }
    ));
}

/// `mlmix check`.
fn check(model: &Path, console: &Console) -> anyhow::Result<u8> {
    if study::is_study(model) {
        return study::check(model, console);
    }
    let Some(loaded) = load(model, console) else {
        return Ok(1);
    };
    if let Err(e) = mlmix::fit::check_engine(&loaded) {
        console.err(format_args!("error: {}: {e}", model.display()));
        return Ok(1);
    }
    let json = serde_json::to_string_pretty(&loaded.model).context("writing the model")?;
    console.out(&format!("{json}\n"))?;
    console.err(format_args!(
        "{}: {} rows analysed, {} free parameters",
        model.display(),
        loaded.data.n_rows(),
        loaded.model.free.len()
    ));
    Ok(0)
}

/// The output files of a fit, checked before it: the report (`-o`), the
/// JSON file and the SAVEDATA file, in that order where requested.
fn check_outputs(args: &FitArgs, loaded: &Loaded) -> anyhow::Result<Vec<(Kind, outputs::Output)>> {
    let mut wanted: Vec<(Kind, &'static str, &Path)> = Vec::new();
    if let Some(p) = &args.output {
        wanted.push((Kind::Report, "the report (-o)", p));
    }
    if let Some(p) = &args.json {
        wanted.push((Kind::Json, "the JSON file (--json)", p));
    }
    if let Some(s) = &loaded.model.savedata
        && s.writes_file()
    {
        wanted.push((Kind::SaveData, "the SAVEDATA file", &s.file));
    }
    if let Some(p) = &loaded.model.output.plot {
        wanted.push((Kind::Plot, "the PLOT3 file", &p.file));
    }
    let paths: Vec<(&'static str, &Path)> = wanted.iter().map(|w| (w.1, w.2)).collect();
    let inputs = [
        ("input file", args.model.as_path()),
        ("data file", loaded.model.data.file.as_path()),
    ];
    let checked = outputs::check(&paths, &inputs)?;
    Ok(wanted.into_iter().map(|w| w.0).zip(checked).collect())
}

/// Which output a checked file is.
#[derive(Clone, Copy)]
enum Kind {
    Report,
    Json,
    SaveData,
    /// PLOT: TYPE = PLOT3's class profiles (SVG).
    Plot,
}

/// `mlmix fit`.
fn fit(args: &FitArgs, console: &Console) -> anyhow::Result<u8> {
    if study::is_study(&args.model) {
        return fit_study(args, console);
    }
    if args.replications.is_some() || args.shard.is_some() {
        console.err(format_args!(
            "error: --replications and --shard are for Monte Carlo inputs (MONTECARLO:), and {} is not one",
            args.model.display()
        ));
        return Ok(1);
    }
    let Some(loaded) = load(&args.model, console) else {
        return Ok(1);
    };
    let outputs = match check_outputs(args, &loaded) {
        Ok(o) => o,
        Err(e) => {
            console.err(format_args!("error: {e:#}"));
            console.err(format_args!(
                "\n{}: nothing was fitted",
                args.model.display()
            ));
            return Ok(1);
        }
    };
    let pool = thread_pool(args.threads, loaded.model.analysis.processors, console)?;
    let options = FitOptions {
        seed: args.seed,
        backend: backend_choice(args.backend),
        ..FitOptions::default()
    };
    let stop = interrupt::install();
    let progress = Progress::new(args.quiet, std::io::stderr().is_terminal(), console, &stop);
    let started = std::time::Instant::now();
    let result = pool.install(|| mlmix::fit(&loaded, &options, &progress));
    progress.finish();
    let fit = result.with_context(|| format!("fitting {}", args.model.display()))?;
    if !args.quiet {
        console.err(format_args!("backend: {}", fit.backend));
    }
    let report = mlmix::report::text(&fit, &loaded.model);
    for w in write_outputs(&outputs, &fit, &loaded, &report)? {
        console.err(format_args!("{w}"));
    }
    if let Some(p) = &loaded.model.output.plot
        && !args.quiet
        && p.file.exists()
    {
        console.err(format_args!(
            "class profiles (PLOT3) drawn in {}",
            p.file.display()
        ));
    }
    if args.output.is_none() {
        console.out(&report)?;
    }
    if !args.quiet {
        let state = if fit.interrupted {
            "INTERRUPTED (best solution so far)"
        } else if fit.converged {
            "converged"
        } else {
            "NOT converged"
        };
        console.err(format_args!(
            "{}: logL {:.4}, {} free parameters, {state}, {:.2} s",
            args.model.display(),
            fit.loglikelihood,
            fit.free_parameters,
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(if fit.interrupted { 1 } else { 0 })
}

/// A Monte Carlo input given to `mlmix fit`: the study.
fn fit_study(args: &FitArgs, console: &Console) -> anyhow::Result<u8> {
    let selection = match (&args.replications, &args.shard) {
        (Some(r), _) => study::parse_range(r).map(|(a, b)| Some(study::Selection::Range(a, b))),
        (None, Some(s)) => study::parse_shard(s).map(|(k, n)| Some(study::Selection::Shard(k, n))),
        (None, None) => Ok(None),
    };
    let replications = match selection {
        Ok(r) => r,
        Err(e) => {
            console.err(format_args!("error: {e:#}"));
            return Ok(2);
        }
    };
    let pool = thread_pool(args.threads, None, console)?;
    let sargs = study::StudyArgs {
        model: &args.model,
        json: args.json.as_deref(),
        output: args.output.as_deref(),
        replications,
        quiet: args.quiet,
        options: FitOptions {
            seed: args.seed,
            backend: backend_choice(args.backend),
            ..FitOptions::default()
        },
    };
    study::run(&sargs, &pool, console)
}

fn backend_choice(b: BackendArg) -> BackendChoice {
    match b {
        BackendArg::Auto => BackendChoice::Auto,
        BackendArg::Cpu => BackendChoice::Cpu,
        BackendArg::Gpu => BackendChoice::Gpu,
    }
}

/// The thread pool: --threads, else PROCESSORS, else RAYON_NUM_THREADS,
/// else all cores; each capped at the machine's parallelism (PROCESSORS
/// says so in the report, the others here).
fn thread_pool(
    threads: Option<usize>,
    processors: Option<usize>,
    console: &Console,
) -> anyhow::Result<rayon::ThreadPool> {
    let rayon_env = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0);
    let requested = match (threads, processors, rayon_env) {
        (Some(n), _, _) => Some((n, Some(format!("--threads {n}")))),
        (None, Some(n), _) => Some((n, None)),
        (None, None, Some(n)) => Some((n, Some(format!("RAYON_NUM_THREADS = {n}")))),
        (None, None, None) => None,
    };
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some((n, what)) = requested {
        let capped = mlmix::fit::capped_threads(n);
        if let Some(what) = what.filter(|_| capped < n) {
            console.err(format_args!(
                "warning: {what} is more than the {capped} processors available; capped at {capped}"
            ));
        }
        builder = builder.num_threads(capped);
    }
    builder.build().context("starting the thread pool")
}

/// Writes every output to its temporary file, then renames them all into
/// place: a failure leaves every existing file as it was. Returns why a
/// requested plot was not drawn, if it was not (a warning, not a failure).
fn write_outputs(
    outputs: &[(Kind, outputs::Output)],
    fit: &mlmix::results::Fit,
    loaded: &Loaded,
    report: &str,
) -> anyhow::Result<Vec<String>> {
    let mut staged = Vec::with_capacity(outputs.len());
    let mut plot_warnings = Vec::new();
    for (kind, out) in outputs {
        staged.push(match kind {
            Kind::Report => out.stage(|w| w.write_all(report.as_bytes()))?,
            Kind::Json => out.stage(|w| w.write_all(mlmix::json(fit).as_bytes()))?,
            Kind::SaveData => {
                out.stage(|w| mlmix::savedata::write(&loaded.model, &loaded.data, fit, w))?
            }
            Kind::Plot => {
                let Some(spec) = &loaded.model.output.plot else {
                    continue;
                };
                match mlmix::plot::profiles_svg(&loaded.model, fit, spec) {
                    Ok(svg) => out.stage(|w| w.write_all(svg.as_bytes()))?,
                    Err(why) => {
                        plot_warnings.push(format!("warning: PLOT3: nothing drawn: {why}"));
                        continue;
                    }
                }
            }
        });
    }
    for s in staged {
        s.commit()?;
    }
    Ok(plot_warnings)
}
