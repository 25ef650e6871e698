//! The `mlmix` command: fit a model from an Mplus-style input file.
//!
//! `mlmix fit MODEL.inp [--json OUT.json] [--seed S] [--threads N]
//! [--backend auto|cpu]` prints the report on standard output and progress on
//! a terminal; exit status 0 on a fit (converged or not, as the report says),
//! 1 on an error in the input or the data, 2 on a usage error. This crate is
//! the only one (with xtask) that prints.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use mlmix::{BackendChoice, FitOptions, Observer, Stage};

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
    Fit {
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
    },
    /// Check an input file and its data, and print the checked model as JSON.
    Check {
        /// The input file.
        model: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    /// A GPU if one is available, else the CPU.
    Auto,
    /// The CPU.
    Cpu,
}

/// Progress on a terminal.
struct Progress {
    bar: ProgressBar,
}

impl Observer for Progress {
    fn iteration(&self, start: usize, iteration: usize, loglik: f64) {
        self.bar.set_message(format!(
            "start {start}: iteration {iteration}, logL {loglik:.4}"
        ));
    }
    fn start_done(&self, stage: Stage, done: usize, total: usize, loglik: f64) {
        let name = match stage {
            Stage::Initial => "initial stage",
            Stage::Final => "final stage",
        };
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
        self.bar.set_prefix(name);
        self.bar.set_message(format!("last logL {loglik:.4}"));
    }
    fn standard_errors(&self, done: usize, total: usize) {
        self.bar.set_prefix("standard errors");
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
        self.bar.set_message(String::new());
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { model } => {
            let loaded = match mlmix::spec::load(&model) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("{e}");
                    for w in &e.warnings {
                        eprintln!("{w}");
                    }
                    return Ok(ExitCode::from(1));
                }
            };
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&loaded.model).context("writing the model")?
            );
            eprintln!(
                "{}: {} rows analysed, {} free parameters",
                model.display(),
                loaded.data.n_rows(),
                loaded.model.free.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Fit {
            model,
            json,
            seed,
            threads,
            backend,
            output,
            quiet,
        } => {
            let loaded = match mlmix::spec::load(&model) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("{e}");
                    for w in &e.warnings {
                        eprintln!("{w}");
                    }
                    let n = e.errors.len();
                    eprintln!(
                        "\n{}: {} error{}; nothing was fitted",
                        model.display(),
                        n,
                        if n == 1 { "" } else { "s" }
                    );
                    return Ok(ExitCode::from(1));
                }
            };
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            let threads = threads.or(loaded.model.analysis.processors);
            let mut builder = rayon::ThreadPoolBuilder::new();
            if let Some(n) = threads {
                builder = builder.num_threads(n.max(1));
            }
            let pool = builder.build().context("starting the thread pool")?;
            let choice = match backend {
                BackendArg::Auto => BackendChoice::Auto,
                BackendArg::Cpu => BackendChoice::Cpu,
            };
            if matches!(backend, BackendArg::Auto) && !quiet {
                eprintln!("backend: cpu (this build has no GPU backend)");
            }
            let options = FitOptions {
                seed,
                backend: choice,
                no_collapse: false,
            };
            let show = !quiet && std::io::stderr().is_terminal();
            let bar = if show {
                let b = ProgressBar::new(0);
                b.set_style(
                    ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                b.enable_steady_tick(Duration::from_millis(120));
                b
            } else {
                ProgressBar::hidden()
            };
            let progress = Progress { bar };
            let started = std::time::Instant::now();
            let result = pool.install(|| mlmix::fit(&loaded, &options, &progress));
            progress.bar.finish_and_clear();
            let fit = result.with_context(|| format!("fitting {}", model.display()))?;
            let report = mlmix::report::text(&fit, &loaded.model);
            match &output {
                Some(p) => std::fs::write(p, &report)
                    .with_context(|| format!("writing the report to {}", p.display()))?,
                None => print!("{report}"),
            }
            if let Some(p) = &json {
                std::fs::write(p, mlmix::json(&fit))
                    .with_context(|| format!("writing {}", p.display()))?;
            }
            if let Some(s) = &loaded.model.savedata
                && s.cprobabilities
            {
                let f = std::fs::File::create(&s.file)
                    .with_context(|| format!("creating the SAVEDATA file {}", s.file.display()))?;
                mlmix::savedata::write(
                    &loaded.model,
                    &loaded.data,
                    &fit,
                    std::io::BufWriter::new(f),
                )
                .with_context(|| format!("writing {}", s.file.display()))?;
            }
            if !quiet {
                eprintln!(
                    "{}: logL {:.4}, {} free parameters, {}, {:.2} s",
                    model.display(),
                    fit.loglikelihood,
                    fit.free_parameters,
                    if fit.converged {
                        "converged"
                    } else {
                        "NOT converged"
                    },
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
