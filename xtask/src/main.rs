//! `cargo xtask`: developer tasks, built and run in release (the alias in
//! `.cargo/config.toml`).
//!
//! - `cargo xtask bench [--quick] [--reps N] [--peer-reps N] [--no-peers]`:
//!   times the fit of a 2-class latent class model with 10 binary items at
//!   N = 10,000 and 100,000 (`tests/inputs/synth10k.inp`, `synth100k.inp`:
//!   the synthetic data in `tests/data/`, STARTS = 20 4), as the wall time
//!   of the whole `mlmix fit` process, as the time of `mlmix::fit` inside
//!   this process (median of `--reps` runs, default 5) and as the time of
//!   the same fit without merging identical rows; then it fits the same
//!   data with the peers poLCA (`pypolca`) and StepMix in Python, side by
//!   side in the same run, and prints a table of times, speed ratios (peer
//!   time / mlmix time) and log-likelihoods. mlmix's log-likelihood must
//!   agree with poLCA's to 0.01 (the task fails otherwise). The peers run in
//!   a virtualenv under `target/peers-venv` (created with a Python >= 3.12
//!   found through `MLMIX_PYTHON`, `python3.12` on the PATH or pyenv, then
//!   `pip install stepmix polca`); if that fails they are skipped with the
//!   reason, and mlmix's times are still printed. `--quick`: N = 10,000 only.
//!   The peers' script is `xtask/peers/lca_peers.py`. It builds the `mlmix`
//!   command first (`cargo build --release -p mlmix-cli`, a no-op when it is
//!   up to date).
//! - `cargo xtask criterion [ARGS]`: `cargo bench -p mlmix-benches [ARGS]`,
//!   the criterion benches of the E-step (`benches/benches/estep.rs`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use mlmix::{FitOptions, Silent};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  bench [--quick] [--reps N] [--peer-reps N] [--no-peers]
        fit times of a 2-class LCA (10 binary items, N = 10,000 and 100,000,
        STARTS = 20 4) for mlmix, poLCA and StepMix, with speed ratios
        --quick       N = 10,000 only
        --reps N      mlmix runs per size (median; default 5)
        --peer-reps N peer runs per size (median; default 3 at N <= 10,000,
                      1 above)
        --no-peers    mlmix only
  criterion [ARGS]
        cargo bench -p mlmix-benches [ARGS] (the E-step benches)
";

/// Largest allowed |logL(mlmix) - logL(poLCA)|.
const LL_TOLERANCE: f64 = 0.01;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench(&args[1..]),
        Some("criterion") => criterion(&args[1..]),
        None | Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            Ok(true)
        }
        Some(other) => {
            eprintln!("unknown task '{other}'\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------
// paths and commands

/// The workspace root (the parent of this crate's folder).
fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// Cargo's target folder.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
        Some(d) => root().join(d),
        None => root().join("target"),
    }
}

/// The cargo that runs us.
fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn criterion(args: &[String]) -> Result<bool> {
    let status = Command::new(cargo())
        .current_dir(root())
        .args(["bench", "-p", "mlmix-benches"])
        .args(args)
        .status()
        .context("running cargo bench")?;
    Ok(status.success())
}

/// The last `n` non-empty lines of a command's output, for messages.
fn tail(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------
// finding Python and the peers

fn python_version(py: &Path) -> Option<(u32, u32)> {
    let out = Command::new(py)
        .args(["-c", "import sys; print('%d %d' % sys.version_info[:2])"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|x| x.parse::<u32>().ok());
    Some((it.next()??, it.next()??))
}

/// Python versions under pyenv's root, 3.12 first, then newer.
fn pyenv_pythons() -> Vec<PathBuf> {
    let root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pyenv")));
    let Some(root) = root else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(root.join("versions")) else {
        return Vec::new();
    };
    let mut found: Vec<((u32, u32, u32), PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let mut parts = name.split('.').map(|p| p.parse::<u32>().ok());
            let v = (
                parts.next()??,
                parts.next()??,
                parts.next().flatten().unwrap_or(0),
            );
            (v >= (3, 12, 0)).then(|| (v, e.path().join("bin").join("python")))
        })
        .collect();
    // 3.12 first (what the peers are known to work with), newest patch first
    found.sort_by_key(|&((_, minor, patch), _)| (minor != 12, minor, std::cmp::Reverse(patch)));
    found.into_iter().map(|(_, p)| p).collect()
}

/// A Python >= 3.12: `MLMIX_PYTHON`, else `python3.12` (or newer) on the
/// PATH, else pyenv's, else `python3` if it is new enough.
fn find_python() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("MLMIX_PYTHON") {
        let p = PathBuf::from(p);
        return match python_version(&p) {
            Some(v) if v >= (3, 12) => Ok(p),
            Some((a, b)) => Err(format!(
                "MLMIX_PYTHON={} is Python {a}.{b}; poLCA's Python port needs >= 3.12",
                p.display()
            )),
            None => Err(format!("MLMIX_PYTHON={} does not run", p.display())),
        };
    }
    let mut candidates: Vec<PathBuf> = ["python3.12", "python3.13", "python3.14"]
        .iter()
        .map(PathBuf::from)
        .collect();
    candidates.extend(pyenv_pythons());
    candidates.push(PathBuf::from("python3"));
    candidates
        .into_iter()
        .find(|p| python_version(p).is_some_and(|v| v >= (3, 12)))
        .ok_or_else(|| {
            "no Python >= 3.12 found (set MLMIX_PYTHON, or put python3.12 on the PATH)".to_string()
        })
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

fn peers_importable(py: &Path) -> bool {
    Command::new(py)
        .args(["-c", "import stepmix, pypolca, polars"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The Python of `target/peers-venv`, created and filled if needed; `Err`
/// says why the peers cannot run.
fn peers_python() -> Result<PathBuf, String> {
    let venv = target_dir().join("peers-venv");
    let py = venv_python(&venv);
    if py.exists() && peers_importable(&py) {
        return Ok(py);
    }
    let usable = py.exists() && python_version(&py).is_some_and(|v| v >= (3, 12));
    if !usable {
        let base = find_python()?;
        eprintln!(
            "creating the peers' virtualenv {} with {}",
            venv.display(),
            base.display()
        );
        let mut cmd = Command::new(&base);
        cmd.args(["-m", "venv"]);
        if venv.exists() {
            cmd.arg("--clear");
        }
        let out = cmd
            .arg(&venv)
            .output()
            .map_err(|e| format!("running {} -m venv: {e}", base.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} -m venv {} failed:\n{}",
                base.display(),
                venv.display(),
                tail(&out.stderr, 5)
            ));
        }
    }
    eprintln!(
        "installing the peers: pip install stepmix polca (into {})",
        venv.display()
    );
    let out = Command::new(&py)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "stepmix",
            "polca",
        ])
        .output()
        .map_err(|e| format!("running pip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "pip install stepmix polca failed:\n{}",
            tail(&out.stderr, 5)
        ));
    }
    if !peers_importable(&py) {
        return Err("stepmix, pypolca or polars cannot be imported after pip install".into());
    }
    Ok(py)
}

// ---------------------------------------------------------------------------
// the benchmark

struct Options {
    quick: bool,
    reps: usize,
    peer_reps: Option<usize>,
    peers: bool,
}

fn parse_options(args: &[String]) -> Result<Options> {
    let mut o = Options {
        quick: false,
        reps: 5,
        peer_reps: None,
        peers: true,
    };
    let mut it = args.iter();
    let count = |v: Option<&String>, flag: &str| -> Result<usize> {
        v.and_then(|s| s.parse().ok())
            .filter(|&n: &usize| n > 0)
            .ok_or_else(|| anyhow!("{flag} needs a positive number\n\n{USAGE}"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--no-peers" => o.peers = false,
            "--reps" => o.reps = count(it.next(), "--reps")?,
            "--peer-reps" => o.peer_reps = Some(count(it.next(), "--peer-reps")?),
            other => bail!("unknown option '{other}'\n\n{USAGE}"),
        }
    }
    Ok(o)
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if !v.len().is_multiple_of(2) {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

/// 100000 -> "100,000".
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// One line of the table.
struct Row {
    n: usize,
    tool: String,
    seconds: Option<f64>,
    runs: usize,
    /// Time / mlmix's in-process fit time, / its process wall time, / its
    /// fit time without merging identical rows.
    ratios: [Option<f64>; 3],
    loglik: Option<f64>,
}

/// What the peers' script reported for one tool.
struct Peer {
    name: String,
    result: Result<(String, f64, usize, f64), String>,
}

fn run_peers(py: &Path, csv: &Path, starts: usize, reps: usize) -> Result<Vec<Peer>, String> {
    let script = root().join("xtask").join("peers").join("lca_peers.py");
    let out = Command::new(py)
        .arg(&script)
        .arg(csv)
        .arg(starts.to_string())
        .args(["--reps", &reps.to_string()])
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed:\n{}",
            script.display(),
            tail(&out.stderr, 8)
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("reading the peers' JSON: {e}"))?;
    let tools = v
        .get("tools")
        .and_then(|t| t.as_object())
        .ok_or("the peers' JSON has no tools")?;
    // poLCA first, then StepMix, then anything else
    let mut tools: Vec<(&String, &serde_json::Value)> = tools.iter().collect();
    tools.sort_by_key(|(name, _)| match name.as_str() {
        "poLCA" => 0,
        "StepMix" => 1,
        _ => 2,
    });
    Ok(tools
        .into_iter()
        .map(|(name, t)| {
            let result = if let Some(e) = t.get("error").and_then(|e| e.as_str()) {
                Err(e.to_string())
            } else {
                let num = |k: &str| t.get(k).and_then(|x| x.as_f64());
                match (num("median_s"), num("loglik")) {
                    (Some(s), Some(ll)) => Ok((
                        t.get("version")
                            .and_then(|x| x.as_str())
                            .unwrap_or("?")
                            .to_string(),
                        s,
                        t.get("seconds")
                            .and_then(|x| x.as_array())
                            .map_or(reps, |a| a.len()),
                        ll,
                    )),
                    _ => Err("no time or log-likelihood reported".into()),
                }
            };
            Peer {
                name: name.clone(),
                result,
            }
        })
        .collect())
}

/// mlmix's times at one size.
struct MlmixTimes {
    /// Wall times of the `mlmix fit` process.
    process: Vec<f64>,
    /// Times of `mlmix::fit` in this process.
    inside: Vec<f64>,
    /// The same without merging identical rows.
    unmerged: Vec<f64>,
    /// The log-likelihood.
    loglik: f64,
    /// Threads of the pool.
    threads: usize,
}

/// Times `mlmix fit INPUT` as a process, and `mlmix::fit` in this one (with
/// identical rows merged, as the command does, and without).
fn time_mlmix(exe: &Path, input: &Path, reps: usize) -> Result<MlmixTimes> {
    let loaded = mlmix::spec::load(input).map_err(|e| anyhow!("{}: {e}", input.display()))?;
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(n) = loaded.model.analysis.processors {
        pool = pool.num_threads(n.max(1));
    }
    let pool = pool.build().context("starting the thread pool")?;
    let run_process = || -> Result<f64> {
        let t = Instant::now();
        let out = Command::new(exe)
            .arg("fit")
            .arg(input)
            .arg("-q")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .with_context(|| format!("running {}", exe.display()))?;
        let s = t.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!(
                "mlmix fit {} failed:\n{}",
                input.display(),
                tail(&out.stderr, 8)
            );
        }
        Ok(s)
    };
    let run_fit = |options: &FitOptions| -> Result<(f64, f64)> {
        let t = Instant::now();
        let fit = pool.install(|| mlmix::fit(&loaded, options, &Silent))?;
        let s = t.elapsed().as_secs_f64();
        if !fit.converged {
            eprintln!("warning: mlmix did not converge on {}", input.display());
        }
        Ok((s, fit.loglikelihood))
    };
    // warm the page cache and the binary; not timed
    run_process()?;
    let mut times = MlmixTimes {
        process: Vec::new(),
        inside: Vec::new(),
        unmerged: Vec::new(),
        loglik: f64::NAN,
        threads: pool.current_num_threads(),
    };
    for _ in 0..reps {
        times.process.push(run_process()?);
        let (s, ll) = run_fit(&FitOptions::default())?;
        times.inside.push(s);
        times.loglik = ll;
    }
    let raw = FitOptions {
        no_collapse: true,
        ..FitOptions::default()
    };
    for _ in 0..reps.min(3) {
        let (s, ll) = run_fit(&raw)?;
        times.unmerged.push(s);
        if (ll - times.loglik).abs() > LL_TOLERANCE {
            eprintln!(
                "warning: without merging rows mlmix reached logL {ll:.4}, with merging {:.4}",
                times.loglik
            );
        }
    }
    Ok(times)
}

fn bench(args: &[String]) -> Result<bool> {
    let opts = parse_options(args)?;
    let root = root();
    eprintln!("building the mlmix command (cargo build --release -p mlmix-cli)");
    let status = Command::new(cargo())
        .current_dir(&root)
        .args(["build", "--release", "--quiet", "-p", "mlmix-cli"])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release -p mlmix-cli failed");
    }
    let exe = target_dir()
        .join("release")
        .join(format!("mlmix{}", std::env::consts::EXE_SUFFIX));

    let peers_py = if opts.peers {
        peers_python()
    } else {
        Err("--no-peers".to_string())
    };
    if let Err(why) = &peers_py {
        eprintln!("peers skipped: {why}");
    }

    let sizes: &[(usize, &str)] = if opts.quick {
        &[(10_000, "synth10k.inp")]
    } else {
        &[(10_000, "synth10k.inp"), (100_000, "synth100k.inp")]
    };
    let mut rows: Vec<Row> = Vec::new();
    let mut peer_notes: Vec<String> = Vec::new();
    let mut ok = true;
    let mut threads = 0;
    let mut starts_text = String::new();
    let mut peer_starts = 0;
    for &(n, file) in sizes {
        let input = root.join("tests").join("inputs").join(file);
        let loaded = mlmix::spec::load(&input).map_err(|e| anyhow!("{}: {e}", input.display()))?;
        let a = &loaded.model.analysis;
        let starts = a.starts_initial;
        peer_starts = starts;
        starts_text = format!(
            "STARTS = {} {}, STITERATIONS = {}",
            a.starts_initial, a.starts_final, a.stiterations
        );
        let csv = loaded.model.data.file.clone();
        if loaded.data.n_rows() != n {
            bail!(
                "{} has {} rows, not {n}",
                csv.display(),
                loaded.data.n_rows()
            );
        }
        eprintln!("N = {}: mlmix, {} runs", thousands(n), opts.reps);
        let times = time_mlmix(&exe, &input, opts.reps)?;
        threads = times.threads;
        let ll = times.loglik;
        let tp = median(&times.process);
        let tf = median(&times.inside);
        let tu = median(&times.unmerged);
        rows.push(Row {
            n,
            tool: "mlmix fit (process)".into(),
            seconds: Some(tp),
            runs: times.process.len(),
            ratios: [Some(tp / tf), Some(1.0), Some(tp / tu)],
            loglik: None,
        });
        rows.push(Row {
            n,
            tool: "mlmix (fit in process)".into(),
            seconds: Some(tf),
            runs: times.inside.len(),
            ratios: [Some(1.0), Some(tf / tp), Some(tf / tu)],
            loglik: Some(ll),
        });
        rows.push(Row {
            n,
            tool: "mlmix, rows not merged".into(),
            seconds: Some(tu),
            runs: times.unmerged.len(),
            ratios: [Some(tu / tf), Some(tu / tp), Some(1.0)],
            loglik: None,
        });
        let Ok(py) = &peers_py else {
            continue;
        };
        let reps = opts.peer_reps.unwrap_or(if n <= 10_000 { 3 } else { 1 });
        eprintln!(
            "N = {}: poLCA and StepMix, {starts} starts, {reps} run(s) each",
            thousands(n)
        );
        match run_peers(py, &csv, starts, reps) {
            Err(why) => {
                eprintln!("peers failed at N = {}: {why}", thousands(n));
                peer_notes.push(format!("N = {}: peers failed: {why}", thousands(n)));
            }
            Ok(peers) => {
                for p in peers {
                    match p.result {
                        Ok((version, s, runs, pll)) => {
                            if p.name == "poLCA" {
                                let d = (ll - pll).abs();
                                let agree = d <= LL_TOLERANCE;
                                ok &= agree;
                                peer_notes.push(format!(
                                    "N = {}: logL mlmix {ll:.4}, poLCA {pll:.4}: |difference| = {d:.2e} ({})",
                                    thousands(n),
                                    if agree {
                                        "agree to 0.01".to_string()
                                    } else {
                                        format!("DISAGREE: more than {LL_TOLERANCE}")
                                    }
                                ));
                            }
                            rows.push(Row {
                                n,
                                tool: format!("{} {version}", p.name),
                                seconds: Some(s),
                                runs,
                                ratios: [Some(s / tf), Some(s / tp), Some(s / tu)],
                                loglik: Some(pll),
                            });
                        }
                        Err(why) => {
                            peer_notes.push(format!(
                                "N = {}: {} failed: {why}",
                                thousands(n),
                                p.name
                            ));
                            rows.push(Row {
                                n,
                                tool: format!("{} (failed)", p.name),
                                seconds: None,
                                runs: 0,
                                ratios: [None; 3],
                                loglik: None,
                            });
                        }
                    }
                }
            }
        }
    }

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!("2-class LCA, 10 binary items (tests/data/lca_synth_*.csv): fit time, median of runs");
    println!("mlmix: {starts_text}; rayon pool of {threads} thread(s) on {cpus} logical CPU(s)");
    println!(
        "ratios: time / mlmix's time, where mlmix's is `fit` (mlmix::fit in process, as the \
         command runs it),\n        `process` (the whole `mlmix fit` command) or `unmerged` \
         (mlmix::fit without merging identical rows)"
    );
    println!();
    println!(
        "{:>9}  {:<24} {:>9} {:>5}  {:>11} {:>11} {:>11}  {:>15}",
        "N", "tool", "time (s)", "runs", "/ fit", "/ process", "/ unmerged", "logL"
    );
    let opt = |x: Option<f64>, f: &dyn Fn(f64) -> String| x.map_or_else(|| "-".to_string(), f);
    for r in &rows {
        println!(
            "{:>9}  {:<24} {:>9} {:>5}  {:>11} {:>11} {:>11}  {:>15}",
            thousands(r.n),
            r.tool,
            opt(r.seconds, &|s| format!("{s:.3}")),
            if r.runs > 0 {
                r.runs.to_string()
            } else {
                "-".into()
            },
            opt(r.ratios[0], &|x| format!("{x:.2}")),
            opt(r.ratios[1], &|x| format!("{x:.2}")),
            opt(r.ratios[2], &|x| format!("{x:.2}")),
            opt(r.loglik, &|x| format!("{x:.4}")),
        );
    }
    println!();
    for note in &peer_notes {
        println!("{note}");
    }
    println!(
        "mlmix fit (process): the whole command, reading the data and writing the report \
         included.\nmlmix (fit in process): `mlmix::fit` alone, timed like the peers. It merges \
         identical rows first\n(10 binary items have at most 1,024 patterns); `rows not merged` \
         fits every row, as the peers do.\nmlmix's STARTS = 20 4: 20 random starts get \
         STITERATIONS EM iterations, the best 4 are run to convergence."
    );
    match &peers_py {
        Ok(_) => println!(
            "peers: 2 classes, {peer_starts} random starts, each run to convergence (poLCA nrep, \
             StepMix n_init), stopping\nwhen the total logL changes by less than 1e-6; only their \
             fit call is timed, inside the Python process\n(xtask/peers/lca_peers.py)."
        ),
        Err(why) => println!("peers skipped: {why}"),
    }
    println!(
        "note: the speed ratios are measured in one run on a noisy machine; read them as rough \
         factors."
    );
    if !ok {
        eprintln!("error: mlmix's log-likelihood does not agree with poLCA's to {LL_TOLERANCE}");
    }
    Ok(ok)
}
