//! Monte Carlo studies on the command line: `mlmix fit study.inp` runs
//! every replication and prints the summary; `--replications A-B` runs a
//! shard and writes its partial-results file; `mlmix merge part*.json`
//! summarises shards; `mlmix simulate study.inp` writes one generated data
//! set.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, bail};
use mlmix::FitOptions;
use mlmix::mc_summary::{self, PARTIAL_FORMAT, Partial, Replication, Summary};
use mlmix::montecarlo;
use mlmix::spec::montecarlo::Study;

use crate::console::Console;
use crate::outputs;

/// Reads and checks a Monte Carlo input, or prints why not (`None`).
pub fn load_study(model: &Path, console: &Console) -> Option<Study> {
    match mlmix::spec::montecarlo::load_study(model) {
        Ok(s) => {
            for w in &s.population.warnings {
                console.err(format_args!("{w}"));
            }
            Some(s)
        }
        Err(e) => {
            crate::print_spec_error(console, model, &e, "run");
            None
        }
    }
}

/// Does the file hold a Monte Carlo input? (An unreadable file is left to
/// the ordinary load to report.)
pub fn is_study(model: &Path) -> bool {
    // a FIFO or a device is not read here (it would block or never end):
    // the ordinary load refuses it
    if mlmix::spec::source::check_regular_file(model).is_err() {
        return false;
    }
    std::fs::read_to_string(model).is_ok_and(|text| {
        let src = mlmix::spec::Source::new(model, text);
        mlmix::spec::montecarlo::is_montecarlo(&src) || mlmix::spec::montecarlo::is_external(&src)
    })
}

/// Which replications a run is asked for.
#[derive(Clone, Copy)]
pub enum Selection {
    /// `--replications A-B`.
    Range(usize, usize),
    /// `--shard K/N`: the K-th of N near-equal parts.
    Shard(usize, usize),
}

impl Selection {
    /// The replications (inclusive) of a study of `requested`, or why not.
    fn range(self, requested: usize) -> Result<(usize, usize), String> {
        match self {
            Selection::Range(a, b) if b <= requested => Ok((a, b)),
            Selection::Range(a, b) => Err(format!(
                "--replications {a}-{b}: the study has {requested} replications (NREPS)"
            )),
            Selection::Shard(k, n) if n <= requested => {
                Ok(((k - 1) * requested / n + 1, k * requested / n))
            }
            Selection::Shard(k, n) => Err(format!(
                "--shard {k}/{n}: {n} shards of {requested} replications (NREPS) would leave some empty"
            )),
        }
    }
}

/// `--shard K/N`, 1 <= K <= N.
pub fn parse_shard(s: &str) -> anyhow::Result<(usize, usize)> {
    let bad = || format!("--shard '{s}': expected K/N, whole numbers with 1 <= K <= N");
    let (k, n) = s.split_once('/').with_context(bad)?;
    let k: usize = k.trim().parse().with_context(bad)?;
    let n: usize = n.trim().parse().with_context(bad)?;
    if k == 0 || k > n {
        bail!(bad());
    }
    Ok((k, n))
}

/// `--replications A-B` (or a single number).
pub fn parse_range(s: &str) -> anyhow::Result<(usize, usize)> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (s.trim(), s.trim()),
    };
    let a: usize = a
        .parse()
        .with_context(|| format!("--replications '{s}': expected A-B, whole numbers"))?;
    let b: usize = b
        .parse()
        .with_context(|| format!("--replications '{s}': expected A-B, whole numbers"))?;
    if a == 0 || a > b {
        bail!("--replications '{s}': expected A-B with 1 <= A <= B");
    }
    Ok((a, b))
}

/// What `mlmix fit` was asked for a study.
pub struct StudyArgs<'a> {
    pub model: &'a Path,
    pub json: Option<&'a Path>,
    pub output: Option<&'a Path>,
    pub replications: Option<Selection>,
    pub quiet: bool,
    pub options: FitOptions,
}

/// `mlmix fit study.inp [--replications A-B | --shard K/N]`.
pub fn run(
    args: &StudyArgs<'_>,
    pool: &rayon::ThreadPool,
    console: &Console,
) -> anyhow::Result<u8> {
    let Some(study) = load_study(args.model, console) else {
        return Ok(1);
    };
    let Some((a, b)) = selected(args, study.spec.replications, console) else {
        return Ok(1);
    };
    let partial_path = args.replications.is_some().then(|| {
        args.json
            .map(Path::to_path_buf)
            .unwrap_or_else(|| default_partial(args.model, a, b))
    });
    let Some(outs) = check_study_outputs(args, partial_path.as_deref(), console) else {
        return Ok(1);
    };
    let first = match montecarlo::first_analysis(&study) {
        Ok(l) => l,
        Err(e) => {
            console.err(format_args!("{e}\n\n{}: the analysis model does not fit the generated data of replication 1; nothing was run", args.model.display()));
            return Ok(1);
        }
    };
    if let Some((path, list)) = montecarlo::save_list(&study)
        && let Err(e) = std::fs::write(&path, list)
    {
        console.err(format_args!(
            "error: cannot write the list of saved data sets to '{}': {e}\n\n{}: nothing was run",
            path.display(),
            args.model.display()
        ));
        return Ok(1);
    }
    for w in &first.warnings {
        console.err(format_args!("{w}"));
    }
    let keys = montecarlo::parameter_keys(&first, &montecarlo::coverage_values(&study, &first));
    let started = Instant::now();
    let reps = run_reps(
        &study,
        &keys,
        (a, b),
        &args.options,
        pool,
        args.quiet,
        console,
    );
    let ran = Ran {
        study: &study,
        keys,
        reps,
        range: (a, b),
        started,
    };
    match partial_path {
        Some(path) => write_shard(ran, &path, &outs, console),
        None => write_summary(ran, args, &outs, console),
    }
}

/// The replications a run is asked for, or None after saying why not.
fn selected(args: &StudyArgs<'_>, requested: usize, console: &Console) -> Option<(usize, usize)> {
    let range = match args.replications.map(|r| r.range(requested)) {
        None => (1, requested),
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            console.err(format_args!("error: {e}"));
            return None;
        }
    };
    if args.replications.is_some() && args.output.is_some() {
        console.err(format_args!(
            "error: -o is not used with --replications or --shard: a shard writes its partial-results file, and `mlmix merge` prints the report"
        ));
        return None;
    }
    Some(range)
}

/// The outputs of a study, checked before it runs: the report (-o) and the
/// JSON summary, or a shard's partial-results file.
fn check_study_outputs(
    args: &StudyArgs<'_>,
    partial: Option<&Path>,
    console: &Console,
) -> Option<Vec<outputs::Output>> {
    let mut wanted: Vec<(&'static str, &Path)> = Vec::new();
    if let Some(p) = args.output {
        wanted.push(("the report (-o)", p));
    }
    match (partial, args.json) {
        (Some(p), _) => wanted.push(("the partial-results file", p)),
        (None, Some(p)) => wanted.push(("the JSON file (--json)", p)),
        (None, None) => {}
    }
    match outputs::check(&wanted, &[("input file", args.model)]) {
        Ok(o) => Some(o),
        Err(e) => {
            console.err(format_args!(
                "error: {e:#}\n\n{}: nothing was run",
                args.model.display()
            ));
            None
        }
    }
}

/// The replications a run made.
struct Ran<'s> {
    study: &'s Study,
    keys: Vec<mc_summary::ParamKey>,
    reps: Vec<Replication>,
    range: (usize, usize),
    started: Instant,
}

impl Ran<'_> {
    /// Fewer replications than asked for: the run was interrupted.
    fn interrupted(&self) -> bool {
        self.reps.len() < self.range.1 - self.range.0 + 1
    }
}

/// A shard: its partial-results file, and a line saying what it holds.
fn write_shard(
    ran: Ran<'_>,
    path: &Path,
    outs: &[outputs::Output],
    console: &Console,
) -> anyhow::Result<u8> {
    let interrupted = ran.interrupted();
    let (a, b) = ran.range;
    let elapsed = ran.started.elapsed().as_secs_f64();
    let model = ran.study.source.path().display().to_string();
    let partial = Partial {
        format: PARTIAL_FORMAT.to_string(),
        study: montecarlo::study_key(ran.study),
        parameters: ran.keys,
        replications: ran.reps,
    };
    let json = serde_json::to_string_pretty(&partial).context("writing the partial results")?;
    write_all(outs, &[Some(json)])?;
    let done = partial
        .replications
        .iter()
        .filter(|r| matches!(r.outcome, mc_summary::Outcome::Completed { .. }))
        .count();
    console.err(format_args!(
        "{model}: replications {a}-{b}: {done} completed, {} failed, {elapsed:.1} s; wrote {}{}",
        partial.replications.len() - done,
        path.display(),
        if interrupted {
            " (INTERRUPTED: `mlmix merge` will name the replications missing)"
        } else {
            ""
        }
    ));
    Ok(u8::from(interrupted))
}

/// A whole study: the summary as the report (stdout or -o) and as JSON.
fn write_summary(
    ran: Ran<'_>,
    args: &StudyArgs<'_>,
    outs: &[outputs::Output],
    console: &Console,
) -> anyhow::Result<u8> {
    let interrupted = ran.interrupted();
    let requested = ran.study.spec.replications;
    let key = montecarlo::study_key(ran.study);
    let summary = mc_summary::summarize(&ran.keys, &ran.reps, requested);
    let mut report = study_report(&key.title, &key.input_file, &summary);
    if interrupted {
        report.insert_str(
            0,
            &format!(
                "*** INTERRUPTED: {} of {requested} replications were run; the summary is theirs\n\n",
                ran.reps.len()
            ),
        );
    }
    let mut texts = Vec::new();
    if args.output.is_some() {
        texts.push(Some(report.clone()));
    }
    if args.json.is_some() {
        texts.push(Some(summary_json(&key, &summary)?));
    }
    write_all(outs, &texts)?;
    if args.output.is_none() {
        console.out(&report)?;
    }
    if !args.quiet {
        console.err(format_args!(
            "{}: {} of {requested} replications completed, {:.1} s{}",
            args.model.display(),
            summary.completed,
            ran.started.elapsed().as_secs_f64(),
            if interrupted { " (INTERRUPTED)" } else { "" }
        ));
    }
    Ok(u8::from(interrupted))
}

/// The partial-results file of a shard by default: beside the input,
/// `study.reps-201-400.json`.
fn default_partial(model: &Path, a: usize, b: usize) -> PathBuf {
    let stem = model
        .file_stem()
        .map_or("study".into(), |s| s.to_string_lossy().into_owned());
    model.with_file_name(format!("{stem}.reps-{a}-{b}.json"))
}

/// Runs the replications on the pool, with a progress line every few
/// seconds (and at the end) unless quiet.
fn run_reps(
    study: &Study,
    keys: &[mc_summary::ParamKey],
    (a, b): (usize, usize),
    options: &FitOptions,
    pool: &rayon::ThreadPool,
    quiet: bool,
    console: &Console,
) -> Vec<Replication> {
    let total = b - a + 1;
    let state = Mutex::new((0usize, 0usize, Instant::now()));
    let done = |r: &Replication| {
        let Ok(mut s) = state.lock() else { return };
        s.0 += 1;
        if matches!(r.outcome, mc_summary::Outcome::Failed { .. }) {
            s.1 += 1;
        }
        if !quiet && (s.2.elapsed().as_secs_f64() >= 2.0 || s.0 == total) {
            console.err(format_args!(
                "replications: {}/{total} done, {} failed",
                s.0, s.1
            ));
            s.2 = Instant::now();
        }
    };
    let stop = crate::interrupt::install_saying(
        "interrupted: finishing the replications under way and starting no more (interrupt again to quit at once)",
    );
    let stopped = || stop.load(std::sync::atomic::Ordering::SeqCst);
    pool.install(|| montecarlo::run_until(study, keys, a..=b, options, &done, &stopped))
}

/// Writes each checked output its text (in the order checked), staged so
/// that a failure loses nothing.
fn write_all(outs: &[outputs::Output], texts: &[Option<String>]) -> anyhow::Result<()> {
    let mut staged = Vec::new();
    for (out, text) in outs.iter().zip(texts) {
        if let Some(t) = text {
            staged.push(out.stage(|w| w.write_all(t.as_bytes()))?);
        }
    }
    for s in staged {
        s.commit()?;
    }
    Ok(())
}

/// The report of a study: title, input, then the summary.
fn study_report(title: &str, input: &str, summary: &Summary) -> String {
    let mut out = String::new();
    if !title.is_empty() {
        out.push_str(&format!("{title}\n\n"));
    }
    out.push_str(&format!("Monte Carlo study: {input}\n\n"));
    out.push_str(&mc_summary::text(summary));
    out
}

/// The JSON document of a study's summary.
fn summary_json(key: &mc_summary::StudyKey, summary: &Summary) -> anyhow::Result<String> {
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        study: &'a mc_summary::StudyKey,
        summary: &'a Summary,
    }
    serde_json::to_string_pretty(&Doc {
        study: key,
        summary,
    })
    .context("writing the JSON summary")
}

/// `mlmix merge part*.json`.
pub fn merge(
    files: &[PathBuf],
    json: Option<&Path>,
    output: Option<&Path>,
    console: &Console,
) -> anyhow::Result<u8> {
    let mut parts = Vec::new();
    for f in files {
        let shown = f.display().to_string();
        if let Err(e) = mlmix::spec::source::check_regular_file(f) {
            console.err(format_args!(
                "error: {}",
                e.message(&format!("partial-results file '{shown}'"))
            ));
            return Ok(1);
        }
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                console.err(format_args!("error: cannot read '{shown}': {e}"));
                return Ok(1);
            }
        };
        match mc_summary::read_partial(&shown, &text) {
            Ok(p) => parts.push((shown, p)),
            Err(e) => {
                console.err(format_args!("error: {e}"));
                return Ok(1);
            }
        }
    }
    let (key, keys, reps) = match mc_summary::merge(&parts) {
        Ok(m) => m,
        Err(e) => {
            console.err(format_args!("error: {e}"));
            return Ok(1);
        }
    };
    let mut wanted: Vec<(&'static str, &Path)> = Vec::new();
    if let Some(p) = output {
        wanted.push(("the report (-o)", p));
    }
    if let Some(p) = json {
        wanted.push(("the JSON file (--json)", p));
    }
    let inputs: Vec<(&str, &Path)> = files
        .iter()
        .map(|f| ("partial-results file", f.as_path()))
        .collect();
    let outs = match outputs::check(&wanted, &inputs) {
        Ok(o) => o,
        Err(e) => {
            console.err(format_args!("error: {e:#}"));
            return Ok(1);
        }
    };
    let summary = mc_summary::summarize(&keys, &reps, key.requested);
    let report = study_report(&key.title, &key.input_file, &summary);
    let mut texts = Vec::new();
    if output.is_some() {
        texts.push(Some(report.clone()));
    }
    if json.is_some() {
        texts.push(Some(summary_json(&key, &summary)?));
    }
    write_all(&outs, &texts)?;
    if output.is_none() {
        console.out(&report)?;
    }
    Ok(0)
}

/// `mlmix simulate study.inp [-o FILE] [--replication K]`.
pub fn simulate(
    model: &Path,
    rep: usize,
    output: Option<&Path>,
    console: &Console,
) -> anyhow::Result<u8> {
    let Some(study) = load_study(model, console) else {
        return Ok(1);
    };
    if rep == 0 || rep > study.spec.replications {
        console.err(format_args!(
            "error: --replication {rep}: the study has replications 1 to {} (NREPS)",
            study.spec.replications
        ));
        return Ok(1);
    }
    let text = match montecarlo::simulate(&study, rep) {
        Ok(t) => t,
        Err(e) => {
            console.err(format_args!("error: {}: {e}", model.display()));
            return Ok(1);
        }
    };
    match output {
        Some(p) => {
            let outs = outputs::check(&[("the data file (-o)", p)], &[("input file", model)])?;
            write_all(&outs, &[Some(text)])?;
            let mut names = study.spec.names.clone();
            if study.spec.cluster_sizes.is_some() {
                names.push(mlmix::spec::montecarlo::CLUSTER_COLUMN.to_string());
            }
            console.err(format_args!(
                "{}: replication {rep}, {} rows written to {}; NAMES = {};",
                model.display(),
                study.spec.observations,
                p.display(),
                names.join(" ")
            ));
        }
        None => console.out(&text)?,
    }
    Ok(0)
}

/// `mlmix check study.inp`: the population model and the analysis model
/// on replication 1's data, checked; the analysis model printed as JSON.
pub fn check(model: &Path, console: &Console) -> anyhow::Result<u8> {
    let Some(study) = load_study(model, console) else {
        return Ok(1);
    };
    let first = match montecarlo::first_analysis(&study) {
        Ok(l) => l,
        Err(e) => {
            console.err(format_args!("{e}"));
            return Ok(1);
        }
    };
    for w in &first.warnings {
        console.err(format_args!("{w}"));
    }
    let json = serde_json::to_string_pretty(&first.model).context("writing the model")?;
    console.out(&format!("{json}\n"))?;
    let spec = &study.spec;
    console.err(format_args!(
        "{}: a Monte Carlo study of {} replications of {} rows; {} free parameters in the population model, {} in the analysis model",
        model.display(),
        spec.replications,
        spec.observations,
        study.population.model.free.len(),
        first.model.free.len()
    ));
    Ok(0)
}
