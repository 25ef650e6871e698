//! The `irt` part of `cargo xtask bench`: 2PL and mixture 2PL item response
//! models, mlmix against python mirt and OpenMx (with rpf's item models),
//! side by side in one run.
//!
//! Cases:
//! - `sim`: a 2PL on 10,000 persons x 30 binary items simulated here
//!   (seeded; discriminations ~ U(0.5, 2), difficulties ~ N(0, 1), theta ~
//!   N(0, 1)), written to `target/bench-data/irt2pl_10k.dat` with the input
//!   `irt2pl_10k.inp` (`f BY u1-u30*; f@1;`);
//! - `verbagg`: the 2PL of `examples/irt_2pl.inp` (VerbAgg, 316 x 24);
//! - `mixture`: the 2-class mixture 2PL of `examples/mixture_irt.inp`
//!   (VerbAgg; mlmix and mirt: OpenMx's script fits 2PLs only).
//!
//! A case whose input cannot be read is left out with a note.
//!
//! mlmix runs each input with its default integration (adaptive trapezoid,
//! 15 points) and with `INTEGRATION = GAUSSHERMITE(21)` (adaptive), timed as
//! the whole `mlmix fit` process and as the fit time it reports (median of
//! `--reps` runs, after one untimed run). mirt (`xtask/peers/irt_mirt.py`,
//! installed into the peers' virtualenv) uses 61 fixed Gauss-Hermite points;
//! OpenMx (`xtask/peers/irt_openmx.R`) 49 equally spaced points on [-6, 6],
//! with 1 thread and with all cores. The peers' fit calls are timed inside
//! their processes; their "process" time adds what the rest of the process
//! took (starting, importing, reading the data) to the median fit. A peer
//! that cannot be installed or fails is reported and skipped.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};

use super::{
    FitRun, Options, SplitMix, bench_data_dir, cell, fit_process, input_and_data, peers_python,
    pip_install, r_versions, root, run_medians, tail, thousands,
};

/// Persons and items of the simulated 2PL.
const SIM_PERSONS: usize = 10_000;
const SIM_ITEMS: usize = 30;
/// Seed of the simulated 2PL.
const SIM_SEED: u64 = 20_261_201;
/// Quadrature points: mirt's (fixed Gauss-Hermite), OpenMx's (equally spaced
/// on [-6, 6], its default) and mlmix's second integration (adaptive
/// Gauss-Hermite).
const MIRT_POINTS: usize = 61;
const OPENMX_POINTS: usize = 49;
const MLMIX_GH_POINTS: usize = 21;
/// mirt's mixture EM: relative tolerance and cycle limit. mirt's defaults
/// (1e-4, 100) stop far from a maximum (14 cycles, logL 30 units low on
/// VerbAgg).
const MIRT_MIXTURE_TOL: f64 = 1e-7;
const MIRT_MIXTURE_MAX_ITER: usize = 2000;
/// The speed-up over the fastest peer the project aims at (reported).
const TARGET_RATIO: f64 = 10.0;

/// One model fitted by all tools.
struct Case {
    stem: &'static str,
    title: String,
    /// mlmix's inputs: its default integration, then Gauss-Hermite.
    inputs: [PathBuf; 2],
    /// The data file the peers read.
    data: PathBuf,
    mixture: bool,
}

/// One line of a case's table.
struct Line {
    tool: String,
    points: String,
    process: Option<f64>,
    fit: Option<f64>,
    loglik: Option<f64>,
    npar: Option<usize>,
    runs: usize,
    is_mlmix: bool,
}

/// What a peer's script reported, with the wall time of its process.
struct PeerOut {
    version: String,
    median: f64,
    runs: usize,
    /// The process minus the other timed fits and the warm-up.
    process: f64,
    loglik: f64,
    npar: Option<usize>,
    note: Option<String>,
}

/// The peers that can run: mirt's Python and OpenMx's version, or why not.
struct Peers {
    mirt: Result<PathBuf, String>,
    openmx: Result<String, String>,
}

// ---------------------------------------------------------------------------
// the simulated data and the inputs

/// Item parameters (a_j ~ U(0.5, 2), b_j ~ N(0, 1)), then one row per person:
/// u_j = 1 with probability 1 / (1 + exp(-a_j (theta - b_j))), theta ~ N(0, 1).
fn sim_data() -> Result<String> {
    let mut rng = SplitMix(SIM_SEED);
    let items: Vec<(f64, f64)> = (0..SIM_ITEMS)
        .map(|_| (0.5 + 1.5 * rng.uniform(), rng.normal()))
        .collect();
    let mut text = String::with_capacity(SIM_PERSONS * SIM_ITEMS * 2);
    for _ in 0..SIM_PERSONS {
        let theta = rng.normal();
        for (j, &(a, b)) in items.iter().enumerate() {
            let p = 1.0 / (1.0 + (-a * (theta - b)).exp());
            let u = u8::from(rng.uniform() < p);
            let sep = if j + 1 == SIM_ITEMS { "\n" } else { " " };
            write!(text, "{u}{sep}")?;
        }
    }
    Ok(text)
}

/// The simulated 2PL's input; `integration`: an INTEGRATION option or "".
fn sim_input(data: &str, integration: &str) -> String {
    let last = format!("u{SIM_ITEMS}");
    format!(
        "TITLE: cargo xtask bench: 2PL logit, {persons} persons x {SIM_ITEMS} binary items\n  \
         (simulated, seed {SIM_SEED}: a ~ U(0.5, 2), b ~ N(0, 1), theta ~ N(0, 1))\n\
         DATA: FILE = {data};\n\
         VARIABLE: NAMES = u1-{last}; CATEGORICAL = u1-{last};\n\
         ANALYSIS: ESTIMATOR = ML;\n  ALGORITHM = INTEGRATION;{integration}\n\
         MODEL:\n  f BY u1-{last}*;\n  f@1;\n{NO_SE}",
        persons = thousands(SIM_PERSONS),
    )
}

/// What every mlmix input of this part ends with: no standard errors, as
/// mirt computes none by default (they are timed with the fit otherwise).
const NO_SE: &str = "OUTPUT: NOSERROR;\n";

/// The Gauss-Hermite option mlmix's second run adds to ANALYSIS.
fn gh_option() -> String {
    format!("\n  INTEGRATION = GAUSSHERMITE({MLMIX_GH_POINTS});")
}

/// Writes the simulated data and its two inputs into `dir`.
fn sim_case(dir: &Path) -> Result<Case> {
    let data = dir.join("irt2pl_10k.dat");
    std::fs::write(&data, sim_data()?).with_context(|| format!("writing {}", data.display()))?;
    let default = dir.join("irt2pl_10k.inp");
    let gh = dir.join(format!("irt2pl_10k_gh{MLMIX_GH_POINTS}.inp"));
    for (path, option) in [(&default, String::new()), (&gh, gh_option())] {
        std::fs::write(path, sim_input("irt2pl_10k.dat", &option))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(Case {
        stem: "sim",
        title: format!(
            "2PL, {} persons x {SIM_ITEMS} items (simulated)",
            thousands(SIM_PERSONS)
        ),
        inputs: [default, gh],
        data,
        mixture: false,
    })
}

/// `text` with its data FILE (`file_as_written`, the first after DATA:)
/// replaced by the absolute `data` and `option` added after ANALYSIS:.
fn variant_text(text: &str, file_as_written: &str, data: &Path, option: &str) -> Result<String> {
    let upper = text.to_ascii_uppercase();
    let at = upper
        .find("DATA:")
        .and_then(|d| upper[d..].find("FILE").map(|f| d + f))
        .and_then(|f| text[f..].find(file_as_written).map(|i| f + i))
        .ok_or_else(|| anyhow!("cannot find FILE = {file_as_written}"))?;
    let path = data.display().to_string();
    if path.contains(|c: char| c.is_whitespace() || c == ';' || c == '!') {
        bail!("the data path {path} has a blank, ';' or '!'");
    }
    let mut out = format!(
        "{}{path}{}",
        &text[..at],
        &text[at + file_as_written.len()..]
    );
    let analysis = out
        .to_ascii_uppercase()
        .find("ANALYSIS:")
        .ok_or_else(|| anyhow!("no ANALYSIS command"))?;
    out.insert_str(analysis + "ANALYSIS:".len(), option);
    Ok(out)
}

/// A case from an input in the repository: the input itself and its
/// Gauss-Hermite variant, written into `dir` as `STEM_ghN.inp`.
fn file_case(dir: &Path, stem: &'static str, input: PathBuf, mixture: bool) -> Result<Case> {
    let (loaded, text, data) = input_and_data(&input)?;
    let default = dir.join(format!("irt_{stem}.inp"));
    let gh = dir.join(format!("irt_{stem}_gh{MLMIX_GH_POINTS}.inp"));
    for (path, option) in [(&default, String::new()), (&gh, gh_option())] {
        let mut variant = variant_text(&text, &loaded.model.data.file_as_written, &data, &option)
            .with_context(|| format!("a version of {}", input.display()))?;
        variant.push('\n');
        variant.push_str(NO_SE);
        std::fs::write(path, variant).with_context(|| format!("writing {}", path.display()))?;
        let check = mlmix::spec::load(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        if check.data.n_rows() != loaded.data.n_rows() {
            bail!(
                "{} does not read the data of {}",
                path.display(),
                input.display()
            );
        }
    }
    Ok(Case {
        stem,
        title: format!(
            "{}, VerbAgg, {} persons x 24 items (`{}`)",
            if mixture {
                "2-class mixture 2PL"
            } else {
                "2PL"
            },
            loaded.data.n_rows(),
            input.strip_prefix(root()).unwrap_or(&input).display()
        ),
        inputs: [default, gh],
        data,
        mixture,
    })
}

/// The cases; one whose input cannot be read is left out, with why in
/// `notes`.
fn cases(dir: &Path, notes: &mut Vec<String>) -> Result<Vec<Case>> {
    let examples = root().join("examples");
    let mut cases = vec![sim_case(dir)?];
    for (stem, file, mixture) in [
        ("verbagg", "irt_2pl.inp", false),
        ("mixture", "mixture_irt.inp", true),
    ] {
        match file_case(dir, stem, examples.join(file), mixture) {
            Ok(case) => cases.push(case),
            Err(e) => {
                eprintln!("IRT {stem} skipped: {e:#}");
                notes.push(format!("{stem}: not run: {e:#}"));
            }
        }
    }
    Ok(cases)
}

// ---------------------------------------------------------------------------
// the peers

/// The peers' Python with mirt importable (pip-installed into the peers'
/// virtualenv if needed), or why not.
fn mirt_python() -> Result<PathBuf, String> {
    let py = peers_python()?;
    let importable = |py: &Path| {
        Command::new(py)
            .args(["-c", "import mirt"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if importable(&py) {
        return Ok(py);
    }
    eprintln!("installing the peer mirt: pip install mirt");
    pip_install(&py, &["mirt"])?;
    if !importable(&py) {
        return Err("mirt cannot be imported after pip install mirt".into());
    }
    Ok(py)
}

/// The versions of OpenMx and rpf, or why R and they cannot run.
fn openmx_version() -> Result<String, String> {
    const INSTALL: &str = "install R, OpenMx and rpf: on Debian or Ubuntu `apt-get install \
                           r-cran-openmx r-cran-rpf`; elsewhere `install.packages(c(\"OpenMx\", \
                           \"rpf\"))` in R";
    let v = r_versions(&["OpenMx", "rpf"], INSTALL)?;
    Ok(format!("OpenMx {}, rpf {}", v[0], v[1]))
}

fn find_peers(opts: &Options) -> Peers {
    if !opts.peers {
        return Peers {
            mirt: Err("--no-peers".into()),
            openmx: Err("--no-peers".into()),
        };
    }
    let peers = Peers {
        mirt: mirt_python(),
        openmx: openmx_version(),
    };
    if let Err(why) = &peers.mirt {
        eprintln!("mirt skipped: {why}");
    }
    if let Err(why) = &peers.openmx {
        eprintln!("OpenMx skipped: {why}");
    }
    peers
}

/// Runs a peer's script and reads its JSON (see the scripts' headers).
fn run_peer(mut cmd: Command, what: &str) -> Result<PeerOut, String> {
    let t = Instant::now();
    let out = cmd
        .current_dir(root())
        .output()
        .map_err(|e| format!("running {what}: {e}"))?;
    let wall = t.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!("{what} failed:\n{}", tail(&out.stderr, 8)));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("reading {what}'s JSON: {e}"))?;
    let num = |k: &str| v.get(k).and_then(|x| x.as_f64());
    let (Some(median), Some(loglik)) = (num("median_s"), num("loglik")) else {
        return Err(format!("{what}'s JSON has no median_s or loglik"));
    };
    let seconds: Vec<f64> = v
        .get("seconds")
        .and_then(|x| x.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
        .unwrap_or_default();
    let timed: f64 = seconds.iter().sum::<f64>() + num("warmup_s").unwrap_or(0.0);
    let note = match v.get("converged").and_then(|x| x.as_bool()) {
        Some(false) => Some(format!("{what} did NOT converge")),
        _ => v
            .get("status")
            .and_then(|x| x.as_i64())
            .filter(|&s| s != 0)
            .map(|s| format!("{what}: OpenMx status code {s}")),
    };
    Ok(PeerOut {
        version: v
            .get("version")
            .and_then(|x| x.as_str())
            .unwrap_or("?")
            .to_string(),
        median,
        runs: seconds.len(),
        process: (wall - timed).max(0.0) + median,
        loglik,
        npar: num("npar").map(|n| n as usize),
        note,
    })
}

fn run_mirt(py: &Path, case: &Case, reps: usize) -> Result<PeerOut, String> {
    let script = root().join("xtask").join("peers").join("irt_mirt.py");
    let mut cmd = Command::new(py);
    cmd.arg(&script).arg(&case.data);
    if case.mixture {
        cmd.args(["mixture", &MIRT_POINTS.to_string(), "1"])
            .args(["--tol", &MIRT_MIXTURE_TOL.to_string()])
            .args(["--max-iter", &MIRT_MIXTURE_MAX_ITER.to_string()]);
    } else {
        cmd.args(["2pl", &MIRT_POINTS.to_string(), &reps.to_string()]);
    }
    run_peer(cmd, "irt_mirt.py")
}

fn run_openmx(case: &Case, threads: usize, reps: usize) -> Result<PeerOut, String> {
    let script = root().join("xtask").join("peers").join("irt_openmx.R");
    let mut cmd = Command::new("Rscript");
    cmd.arg(&script).arg(&case.data).args([
        OPENMX_POINTS.to_string(),
        threads.to_string(),
        reps.to_string(),
    ]);
    run_peer(cmd, "irt_openmx.R")
}

// ---------------------------------------------------------------------------
// timing

/// mlmix's line for one input: `reps` runs after an untimed one.
fn mlmix_line(exe: &Path, input: &Path, points: &str, reps: usize) -> Result<(Line, FitRun)> {
    let dir = bench_data_dir()?;
    let stem = input
        .file_stem()
        .map_or_else(|| "irt".to_string(), |s| s.to_string_lossy().into_owned());
    let json = dir.join(format!("{stem}.json"));
    fit_process(exe, input, &json)?;
    let runs = (0..reps)
        .map(|_| fit_process(exe, input, &json))
        .collect::<Result<Vec<_>>>()?;
    let (process, fit) = run_medians(&runs);
    let last = runs.into_iter().next_back().context("no mlmix run")?;
    let npar = free_parameters(&json);
    let line = Line {
        tool: "mlmix".into(),
        points: points.into(),
        process: Some(process),
        fit,
        loglik: Some(last.loglik),
        npar,
        runs: reps,
        is_mlmix: true,
    };
    Ok((line, last))
}

fn free_parameters(json: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(json).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(v.get("free_parameters")?.as_u64()? as usize)
}

fn peer_line(tool: String, points: String, out: &PeerOut) -> Line {
    Line {
        tool: format!("{tool} {}", out.version),
        points,
        process: Some(out.process),
        fit: Some(out.median),
        loglik: Some(out.loglik),
        npar: out.npar,
        runs: out.runs,
        is_mlmix: false,
    }
}

/// The peers' lines of one case; failures go to `notes`.
fn peer_lines(
    case: &Case,
    peers: &Peers,
    reps: usize,
    notes: &mut Vec<String>,
) -> Vec<(Line, Option<String>)> {
    let mut lines = Vec::new();
    let mut take = |tool: String, points: String, r: Result<PeerOut, String>| match r {
        Ok(out) => lines.push((peer_line(tool, points, &out), out.note.clone())),
        Err(why) => {
            eprintln!("{tool} failed on {}: {why}", case.stem);
            notes.push(format!("{}: {tool} failed: {why}", case.stem));
        }
    };
    if let Ok(py) = &peers.mirt {
        eprintln!("  {}: mirt", case.stem);
        let points = format!("{MIRT_POINTS} GH, fixed");
        take("mirt".into(), points, run_mirt(py, case, reps));
    }
    if peers.openmx.is_ok() && !case.mixture {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut threads = vec![1];
        if cpus > 1 {
            threads.push(cpus);
        }
        for t in threads {
            eprintln!("  {}: OpenMx, {t} thread(s)", case.stem);
            let tool = format!("OpenMx ({t} thr.)");
            let points = format!("{OPENMX_POINTS} equal, fixed");
            take(tool, points, run_openmx(case, t, reps));
        }
    }
    lines
}

/// All lines of one case: mlmix's two, then the peers'.
fn case_lines(
    case: &Case,
    exe: &Path,
    opts: &Options,
    peers: &Peers,
    notes: &mut Vec<String>,
) -> Result<(Vec<Line>, bool)> {
    let mut ok = true;
    let mut lines = Vec::new();
    let labels = [
        "15 trapezoid, adaptive (default)".to_string(),
        format!("{MLMIX_GH_POINTS} GH, adaptive"),
    ];
    for (input, points) in case.inputs.iter().zip(&labels) {
        eprintln!("  {}: mlmix {points}, {} run(s)", case.stem, opts.reps);
        let (line, last) = mlmix_line(exe, input, points, opts.reps)?;
        if !last.converged {
            notes.push(format!("{}: mlmix ({points}) did NOT converge", case.stem));
            ok = false;
        }
        lines.push(line);
    }
    let peer_reps = if case.mixture {
        1
    } else {
        opts.peer_reps.unwrap_or(if opts.quick { 1 } else { 3 })
    };
    for (line, note) in peer_lines(case, peers, peer_reps, notes) {
        notes.extend(note.map(|n| format!("{}: {n}", case.stem)));
        lines.push(line);
    }
    Ok((lines, ok))
}

// ---------------------------------------------------------------------------
// the report

fn ratio(peer: Option<f64>, mlmix: Option<f64>) -> Option<f64> {
    peer.zip(mlmix).map(|(p, m)| p / m)
}

fn print_table(case: &Case, lines: &[Line]) {
    let base = lines.iter().find(|l| l.is_mlmix);
    println!();
    println!("#### {}", case.title);
    println!();
    println!(
        "| tool | quadrature points | process (s) | fit (s) | logL | npar | runs \
         | fit / mlmix fit | process / mlmix process |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for l in lines {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            l.tool,
            l.points,
            cell(l.process, 3),
            cell(l.fit, 3),
            cell(l.loglik, 4),
            l.npar.map_or_else(|| "-".to_string(), |n| n.to_string()),
            l.runs,
            cell(ratio(l.fit, base.and_then(|b| b.fit)), 2),
            cell(ratio(l.process, base.and_then(|b| b.process)), 2),
        );
    }
}

/// The summary of one case: the fastest peer's fit time over mlmix's.
fn summary(case: &Case, lines: &[Line]) -> String {
    let base = lines.iter().find(|l| l.is_mlmix);
    let fastest = lines
        .iter()
        .filter(|l| !l.is_mlmix && l.fit.is_some())
        .min_by(|a, b| {
            a.fit
                .unwrap_or(f64::MAX)
                .total_cmp(&b.fit.unwrap_or(f64::MAX))
        });
    let (Some(base), Some(peer)) = (base, fastest) else {
        return format!("{}: no peer ran", case.stem);
    };
    let r = ratio(peer.fit, base.fit);
    let rp = ratio(peer.process, base.process);
    let best = lines
        .iter()
        .filter_map(|l| l.loglik)
        .fold(f64::NEG_INFINITY, f64::max);
    format!(
        "{}: fastest peer {}: fit / mlmix fit = {}, process / mlmix process = {} (target \
         >= {TARGET_RATIO}: {}); mlmix's logL is {} below the best logL of the case",
        case.stem,
        peer.tool,
        cell(r, 2),
        cell(rp, 2),
        if r.is_some_and(|r| r >= TARGET_RATIO) {
            "met"
        } else {
            "NOT met"
        },
        cell(base.loglik.map(|l| best - l), 4),
    )
}

fn print_header(peers: &Peers) {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!("### IRT: 2PL and mixture 2PL, mlmix against mirt and OpenMx");
    println!();
    println!(
        "mlmix: the whole `mlmix fit` process and the fit time it reports (median of runs \
         after one untimed run), with its default integration (adaptive trapezoid, 15 \
         points) and with INTEGRATION = GAUSSHERMITE({MLMIX_GH_POINTS}); STARTS as in the \
         input (default 20 4); all {cpus} logical CPU(s). mirt: {}; {MIRT_POINTS} fixed \
         Gauss-Hermite points, its default convergence for the 2PL, for the mixture one \
         deterministic start, tol = {MIRT_MIXTURE_TOL:e} (relative logL change), one run \
         (`xtask/peers/irt_mirt.py`). OpenMx: {}; mxExpectationBA81 with {OPENMX_POINTS} \
         equally spaced points on [-6, 6], EM and Oakes standard errors \
         (`xtask/peers/irt_openmx.R`). Peers: fit = the fit call timed inside the peer; \
         process = that plus the rest of the peer's process (start, imports, data).",
        match &peers.mirt {
            Ok(_) => "python mirt".to_string(),
            Err(why) => format!("not run ({why})"),
        },
        match &peers.openmx {
            Ok(v) => v.clone(),
            Err(why) => format!("not run ({why})"),
        },
    );
}

/// The `irt` part: true when every mlmix fit converged.
pub(crate) fn bench_irt(opts: &Options, exe: &Path) -> Result<bool> {
    let dir = bench_data_dir()?;
    let mut notes = Vec::new();
    let cases = cases(&dir, &mut notes)?;
    let peers = find_peers(opts);
    let mut ok = true;
    let mut tables = Vec::new();
    for case in &cases {
        eprintln!("IRT {}: {}", case.stem, case.title);
        let (lines, good) = case_lines(case, exe, opts, &peers, &mut notes)?;
        ok &= good;
        tables.push(lines);
    }
    print_header(&peers);
    for (case, lines) in cases.iter().zip(&tables) {
        print_table(case, lines);
    }
    println!();
    for (case, lines) in cases.iter().zip(&tables) {
        println!("{}", summary(case, lines));
    }
    for n in &notes {
        println!("{n}");
    }
    println!(
        "mixture: mirt's fit_mixture_irt holds discriminations in [0.01, 10] and \
         difficulties in [-8, 8]; mlmix's loadings are free and its thresholds within ±15, \
         so the two maximise over different parameter spaces and their logL need not agree."
    );
    if peers.openmx.is_ok() {
        println!(
            "mixture: OpenMx not run: irt_openmx.R fits 2PLs only (a mixture of two \
             mxExpectationBA81 models through mxExpectationMixture runs, but from simple \
             starting values its optimizer stops with status 6, far from a maximum)."
        );
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_names_the_irt_part() {
        assert!(super::super::USAGE.contains("irt       2PL"));
    }

    #[test]
    fn sim_data_is_persons_by_binary_items() -> Result<()> {
        let text = sim_data()?;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), SIM_PERSONS);
        let mut ones = 0usize;
        for l in &lines {
            let fields: Vec<&str> = l.split(' ').collect();
            assert_eq!(fields.len(), SIM_ITEMS);
            assert!(fields.iter().all(|f| *f == "0" || *f == "1"));
            ones += fields.iter().filter(|f| **f == "1").count();
        }
        // difficulties ~ N(0, 1): about half the responses are 1
        let share = ones as f64 / (SIM_PERSONS * SIM_ITEMS) as f64;
        assert!((0.3..0.7).contains(&share), "share of 1s {share}");
        assert_eq!(text, sim_data()?, "seeded");
        Ok(())
    }

    #[test]
    fn sim_input_names_the_items_and_the_option() {
        let text = sim_input("x.dat", &gh_option());
        assert!(text.contains("DATA: FILE = x.dat;"));
        assert!(text.contains("NAMES = u1-u30; CATEGORICAL = u1-u30;"));
        assert!(text.contains("ALGORITHM = INTEGRATION;\n  INTEGRATION = GAUSSHERMITE(21);"));
        assert!(text.contains("f BY u1-u30*;\n  f@1;"));
    }

    #[test]
    fn variant_makes_the_file_absolute_and_adds_the_option() -> Result<()> {
        let text = "TITLE: t\nDATA: FILE IS d.csv;\nANALYSIS: ESTIMATOR = ML;\nMODEL: f BY u*;\n";
        let out = variant_text(text, "d.csv", Path::new("/abs/d.csv"), "\n  X = 1;")?;
        assert_eq!(
            out,
            "TITLE: t\nDATA: FILE IS /abs/d.csv;\nANALYSIS:\n  X = 1; ESTIMATOR = ML;\n\
             MODEL: f BY u*;\n"
        );
        assert!(variant_text(text, "e.csv", Path::new("/abs/e.csv"), "").is_err());
        assert!(variant_text(text, "d.csv", Path::new("/a b/d.csv"), "").is_err());
        Ok(())
    }
}
