//! `cargo xtask`: developer tasks, built and run in release (the alias in
//! `.cargo/config.toml`).
//!
//! - `cargo xtask bench [--quick] [--reps N] [--peer-reps N] [--tl-reps N]
//!   [--no-peers] [--only PARTS] [--baseline REV]`: benchmarks in one run,
//!   each printed as a table when it is done (`--only
//!   lca,glmm,twolevel,speed,irt` picks some; without `--only`, the first
//!   three, and `speed` too when `--baseline` is given, since it builds
//!   another commit; `irt` only when named, since its peers take minutes). It builds the `mlmix` command first (`cargo build --release -p
//!   mlmix-cli`, a no-op when it is up to date).
//!
//!   1. LCA: times the fit of a 2-class latent class model with 10 binary
//!      items at N = 10,000 and 100,000 (`tests/inputs/synth10k.inp`,
//!      `synth100k.inp`: the synthetic data in `tests/data/`, STARTS = 20 4),
//!      as the wall time of the whole `mlmix fit` process, as the time of
//!      `mlmix::fit` inside this process (median of `--reps` runs, default
//!      5) and as the time of the same fit without merging identical rows;
//!      then it fits the same data with the peers poLCA (`pypolca`) and
//!      StepMix in Python, side by side in the same run, and prints a table
//!      of times, speed ratios (peer time / mlmix time) and log-likelihoods.
//!      mlmix's log-likelihood must agree with poLCA's to 0.01 (the task
//!      fails otherwise). The peers run in a virtualenv under
//!      `target/peers-venv` (created with a Python >= 3.12 found through
//!      `MLMIX_PYTHON`, `python3.12` on the PATH or pyenv, then `pip install
//!      stepmix polca`); if that fails they are skipped with the reason, and
//!      mlmix's times are still printed. `--quick`: N = 10,000 only. The
//!      peers' script is `xtask/peers/lca_peers.py`.
//!   2. GLMM against lme4: the random-intercept logistic regression of
//!      `tests/inputs/verbagg_logit.inp` (VerbAgg, adaptive Gauss-Hermite
//!      with 25 points) and its probit version, written to
//!      `target/bench-data/verbagg_probit.inp` (`LINK = PROBIT;` added, the
//!      data FILE made absolute), each timed as the whole `mlmix fit`
//!      process and as the fit time the command reports (median of `--reps`
//!      runs), alternating with `Rscript xtask/peers/verbagg_lme4.R DATA LINK
//!      1` (`glmer(..., nAGQ = 25)`; only the `glmer` call is timed, median
//!      of `--peer-reps` runs, default 3, 2 with `--quick`). Markdown table:
//!      times, lme4 fit / mlmix process, both log-likelihoods, which must
//!      agree to 0.01. Without `Rscript` or lme4 the peer is skipped with how
//!      to install it (Debian: `apt-get install r-base-core r-cran-lme4`).
//!   3. Two-level mixture regression, time against integration nodes: data
//!      generated here (seeded; 1,000 clusters of 20 rows, a within-level
//!      2-class variable, random intercept and slopes of x and z, written to
//!      `target/bench-data/tl.dat` with the inputs `tl_d*.inp`), fitted
//!      with 1, 2 and 3 integration dimensions (random intercept; plus the
//!      slope of x; plus the slope of z), adaptive trapezoid with 15 points
//!      per dimension, and for 2 dimensions also Gauss-Hermite with 7 points
//!      and trapezoid with 10. STARTS = 0, so that the times compare the
//!      integration's cost. Each fit runs `--tl-reps` times (default 3, 1
//!      with `--quick`; round robin over the fits, median). Markdown table:
//!      dims, nodes, method, points, process and reported fit seconds,
//!      logL, seconds per 1,000 nodes, iterations. The 3-dimension fit
//!      (3,375 nodes) takes tens of minutes on a small machine.
//!   4. Integration speed (`speed`, in `speed.rs`): this build's `mlmix`
//!      against a baseline commit's (`--baseline REV`, default
//!      `BASELINE_REV`, main before the integration-speed work), side by
//!      side in one run. The baseline is checked out once as a git worktree
//!      in `target/baseline/src` and built into `target/baseline/target`
//!      (`target/baseline/stamp` records the commit built). Cases: the
//!      two-level fits tl_d1_t15, tl_d2_gh7, tl_d2_t15 and tl_d3_t15 of part
//!      3, and the paper's Model 6 (a within-level class with a random logit
//!      intercept; data `target/bench-data/m6.dat` generated here) with the
//!      default integration (m6_default) and INTEGRATION = 100 (m6_int100);
//!      `--quick` drops tl_d3_t15 and m6_int100, whose baseline fits take
//!      tens of minutes, and `MLMIX_SPEED_CASES=STEM,...` runs only the
//!      cases named. Each case runs the baseline then the new binary,
//!      `--tl-reps` times (default 1), round robin. Markdown table: nodes,
//!      both times and the speed-up, both logL and their difference, the new
//!      build's evaluation counts, ms per evaluation and row-passes per
//!      second by kind. Fails when a new fit does not converge or its logL
//!      differs from the baseline's by more than 1e-6; a speed-up below 8 is
//!      reported, not enforced. If the baseline cannot be built, the new
//!      binary runs alone and the notes say why.
//!   5. IRT (`irt`, in `irt.rs`; only with `--only irt`): a 2PL on 10,000
//!      persons x 30 binary items simulated here (seeded, written to
//!      `target/bench-data/irt2pl_10k.dat` with `irt2pl_10k.inp`), the
//!      VerbAgg 2PL (`examples/irt_2pl.inp`) and the VerbAgg 2-class mixture
//!      2PL (`examples/mixture_irt.inp`), each fitted by mlmix with its
//!      default integration and with adaptive Gauss-Hermite (21 points), by
//!      python mirt (`xtask/peers/irt_mirt.py`, pip-installed
//!      into the peers' virtualenv; 61 points) and, for the 2PLs, by OpenMx
//!      with rpf's item models (`xtask/peers/irt_openmx.R`, 49 points, 1
//!      thread and all cores; Debian: `apt-get install r-cran-openmx`).
//!      Markdown tables: process and fit times, logL, parameters, ratios to
//!      mlmix, and per case the fastest peer's fit time over mlmix's
//!      (target 10). Fails only when an mlmix fit fails or does not
//!      converge; a peer that cannot run is reported and skipped.
//!
//!   `--no-peers` skips the Python and the R peers.
//! - `cargo xtask criterion [ARGS]`: `cargo bench -p mlmix-benches [ARGS]`,
//!   the criterion benches of the E-step (`benches/benches/estep.rs`).
//! - `cargo xtask slow`: the test suites too slow for `cargo test`
//!   (`#[ignore]`d, such as the 100-replication factor-mixture recovery),
//!   in a release build.
//! - `cargo xtask evals FILE [N [KINDS]]`: one model's evaluation times by
//!   kind (`evals.rs`), for profiling without a whole fit; `evals FILE fd`
//!   and `evals FILE newton` check the gradient and the curvature at the
//!   input's starting values.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use mlmix::{FitOptions, Silent};

mod evals;
mod gom;
mod gpu;
mod irt;
mod repro;
mod speed;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  bench [--quick] [--gpu] [--reps N] [--peer-reps N] [--tl-reps N] [--no-peers]
        [--only PARTS] [--baseline REV]
        benchmarks, each printed as a table:
        lca       fit times of a 2-class LCA (10 binary items, N = 10,000 and
                  100,000, STARTS = 20 4) for mlmix, poLCA and StepMix, with
                  speed ratios
        glmm      the VerbAgg random-intercept logistic and probit
                  regressions (adaptive Gauss-Hermite, 25 points): mlmix
                  against lme4 (Rscript xtask/peers/verbagg_lme4.R), run in
                  turn
        twolevel  a two-level 2-class mixture regression (1,000 clusters of
                  20 rows, data generated into target/bench-data/) with 1, 2
                  and 3 integration dimensions, STARTS = 0: fit time against
                  integration nodes (the 3-dimension fit is long)
        speed     this build's mlmix against a baseline commit's (built once
                  in target/baseline/), side by side on two-level fits
                  (tl_d1_t15, tl_d2_gh7, tl_d2_t15, tl_d3_t15 and Model 6,
                  m6_default and m6_int100): times, speed-up, logL, the new
                  build's evaluation counts; runs only with --only speed or
                  --baseline, since it builds another commit;
                  MLMIX_SPEED_CASES=STEM,... runs only the cases named
        irt       2PL (10,000 x 30 simulated; VerbAgg) and VerbAgg mixture
                  2PL: mlmix against python mirt and OpenMx, times and logL;
                  runs only with --only irt (the mirt mixture fit takes
                  minutes)
        gom       3-class GoM (2 dimensions) and 4-class FMA-GoM (4
                  dimensions) on 7,000 persons x 17 binary items, default
                  integration and MONTECARLO(500): one evaluation with the
                  long-data shortcuts and with the general loop, against
                  the arithmetic bound; whole fits with STARTS = 20 4 within
                  MLMIX_GOM_BUDGET seconds each (default 600); runs only
                  with --only gom (it takes an hour)
        gpu       the GPU backend against the CPU backend on a ladder of
                  sizes: seconds per log-likelihood evaluation, integrand
                  terms per second, the ratio; runs only with --gpu or
                  --only gpu (skipped without a GPU adapter)
        --quick       LCA at N = 10,000 only; 1 two-level run per fit; 2 lme4
                      runs per model; speed without tl_d3_t15 and m6_int100;
                      1 run per IRT 2PL peer
        --reps N      mlmix runs per LCA size, per GLMM and per IRT fit
                      (median; default 5)
        --peer-reps N peer runs per LCA size (median; default 3 at
                      N <= 10,000, 1 above), lme4 runs per GLMM (default 3)
                      and runs per IRT 2PL peer (default 3; the mirt mixture
                      runs once)
        --tl-reps N   runs per two-level fit (median; default 3) and per
                      speed case and binary (default 1)
        --no-peers    mlmix only (no Python, no R)
        --only PARTS  only these parts, comma-separated:
                      lca,glmm,twolevel,speed,irt,gom,gpu (default: all
                      but speed, irt, gom and gpu, plus speed when
                      --baseline is given)
        --gpu         the same as --only gpu
        --baseline REV  the speed part's baseline commit (default 96446e9,
                      main before the integration-speed work)
  criterion [ARGS]
        cargo bench -p mlmix-benches [ARGS] (the E-step benches)
  slow
        the tests marked #[ignore] (too slow for cargo test), release build
  repro [NAME ...]
        the paper's tables on data simulated with its designs
        (xtask/repro/*.inp), the paper's numbers beside ours, written to
        target/repro/NAME.md (index: target/repro/README.md): table2
        (Models 1-4, MSE of alpha_1, about 2 minutes), table3 (Models 5
        and 6 on the same data, about 3 minutes), section6 (within- and
        between-level class variables, recovery over 100 samples, under a
        minute); table1, table5, table6 and figures say what they wait
        on. Fails when a target's check fails
  evals FILE [N [KINDS]]
        one model's evaluation times (loglik, gradient, em, em+moments;
        KINDS picks some, comma-separated), each the mean of N (default
        3), on the model's grid and on the grid adapted at the bench's
        parameter values: for profiling under perf without a whole fit
  evals FILE ll | fd | newton
        at the input's starting values (*v): the log-likelihood, on the
        grid adapted there once and twice (ll); the analytic gradient
        against central differences per free parameter (fd); the
        observed information's eigenvalues, its flattest directions and
        the log-likelihood along the Newton step (newton)
";

/// Largest allowed |logL(mlmix) - logL(poLCA)|.
const LL_TOLERANCE: f64 = 0.01;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench(&args[1..]),
        Some("criterion") => criterion(&args[1..]),
        Some("slow") => slow(),
        Some("repro") => repro::repro(&args[1..]),
        Some("evals") => evals::evals(&args[1..]),
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
/// An input file loaded, its text and the absolute path of the data file
/// it reads (so that variants of it written elsewhere can name the data).
fn input_and_data(input: &Path) -> Result<(mlmix::spec::Loaded, String, PathBuf)> {
    let loaded = mlmix::spec::load(input).map_err(|e| anyhow!("{}: {e}", input.display()))?;
    let data = loaded
        .model
        .data
        .file
        .canonicalize()
        .with_context(|| format!("finding {}", loaded.model.data.file.display()))?;
    let text =
        std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    Ok((loaded, text, data))
}

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

/// The ignored (slow) tests, in a release build.
fn slow() -> Result<bool> {
    let status = Command::new(cargo())
        .current_dir(root())
        .args(["test", "--release", "-p", "mlmix-tests", "--", "--ignored"])
        .status()
        .context("running cargo test --ignored")?;
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

/// `pip install --quiet PACKAGES` with the Python `py`, or why it failed.
fn pip_install(py: &Path, packages: &[&str]) -> Result<(), String> {
    let out = Command::new(py)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(packages)
        .output()
        .map_err(|e| format!("running pip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "pip install {} failed:\n{}",
            packages.join(" "),
            tail(&out.stderr, 5)
        ));
    }
    Ok(())
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
    pip_install(&py, &["stepmix", "polca"])?;
    if !peers_importable(&py) {
        return Err("stepmix, pypolca or polars cannot be imported after pip install".into());
    }
    Ok(py)
}

// ---------------------------------------------------------------------------
// the benchmark

/// A part of `cargo xtask bench`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The 2-class LCA against poLCA and StepMix.
    Lca,
    /// The VerbAgg random-intercept logistic and probit regressions against
    /// lme4.
    Glmm,
    /// The two-level mixture regression with 1 to 3 integration dimensions.
    TwoLevel,
    /// Two-level fits with this build's `mlmix` against a baseline commit's.
    Speed,
    /// The GPU backend against the CPU backend.
    Gpu,
    /// 2PL and mixture 2PL against mirt and OpenMx.
    Irt,
    /// GoM and FMA-GoM on 7,000 persons x 17 items: evaluations and fits.
    Gom,
}

struct Options {
    quick: bool,
    reps: usize,
    peer_reps: Option<usize>,
    peers: bool,
    /// Two-level runs per case (median).
    tl_reps: Option<usize>,
    /// The parts to run (empty: all but `speed`, which runs when `--baseline`
    /// is given).
    only: Vec<Part>,
    /// The baseline commit of the `speed` part (`--baseline REV`).
    baseline: Option<String>,
}

impl Options {
    fn runs(&self, part: Part) -> bool {
        if self.only.is_empty() {
            match part {
                Part::Speed => self.baseline.is_some(),
                Part::Irt | Part::Gom | Part::Gpu => false,
                _ => true,
            }
        } else {
            self.only.contains(&part)
        }
    }
}

fn parse_options(args: &[String]) -> Result<Options> {
    let mut o = Options {
        quick: false,
        reps: 5,
        peer_reps: None,
        peers: true,
        tl_reps: None,
        only: Vec::new(),
        baseline: None,
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
            "--gpu" => o.only.push(Part::Gpu),
            "--no-peers" => o.peers = false,
            "--reps" => o.reps = count(it.next(), "--reps")?,
            "--peer-reps" => o.peer_reps = Some(count(it.next(), "--peer-reps")?),
            "--tl-reps" => o.tl_reps = Some(count(it.next(), "--tl-reps")?),
            "--baseline" => {
                let rev = it
                    .next()
                    .filter(|r| !r.is_empty() && !r.starts_with('-'))
                    .ok_or_else(|| anyhow!("--baseline needs a commit\n\n{USAGE}"))?;
                o.baseline = Some(rev.clone());
            }
            "--only" => {
                let list = it.next().ok_or_else(|| {
                    anyhow!("--only needs lca, glmm, twolevel, speed, irt, gom or gpu\n\n{USAGE}")
                })?;
                for name in list.split(',') {
                    o.only.push(match name.trim() {
                        "lca" => Part::Lca,
                        "glmm" => Part::Glmm,
                        "twolevel" => Part::TwoLevel,
                        "speed" => Part::Speed,
                        "irt" => Part::Irt,
                        "gom" => Part::Gom,
                        "gpu" => Part::Gpu,
                        other => bail!(
                            "--only: unknown part '{other}' (lca, glmm, twolevel, speed, \
                             irt, gom or gpu)\n\n{USAGE}"
                        ),
                    });
                }
            }
            other => bail!("unknown option '{other}'\n\n{USAGE}"),
        }
    }
    if o.baseline.is_some() && !o.runs(Part::Speed) {
        eprintln!("warning: --baseline is not used: --only does not name speed");
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

/// The `mlmix` command that the benchmarks run: the one `MLMIX_EXE` names
/// (a built binary on a machine without cargo, such as a GPU machine), or
/// else a release build of this checkout's.
fn mlmix_release() -> Result<PathBuf> {
    if let Some(exe) = std::env::var_os("MLMIX_EXE") {
        return Ok(PathBuf::from(exe));
    }
    eprintln!("building the mlmix command (cargo build --release -p mlmix-cli)");
    let status = Command::new(cargo())
        .current_dir(root())
        .args(["build", "--release", "--quiet", "-p", "mlmix-cli"])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release -p mlmix-cli failed");
    }
    Ok(target_dir()
        .join("release")
        .join(format!("mlmix{}", std::env::consts::EXE_SUFFIX)))
}

/// One part of the benchmark: true when its checks pass.
type BenchPart = fn(&Options, &Path) -> Result<bool>;

fn bench(args: &[String]) -> Result<bool> {
    let opts = parse_options(args)?;
    let exe = mlmix_release()?;

    let mut ok = true;
    let parts: [(Part, &str, BenchPart); 7] = [
        (Part::Lca, "the LCA benchmark", bench_lca),
        (Part::Glmm, "the GLMM benchmark", bench_glmm),
        (Part::TwoLevel, "the two-level benchmark", bench_twolevel),
        (
            Part::Speed,
            "the integration-speed benchmark",
            speed::bench_speed,
        ),
        (Part::Irt, "the IRT benchmark", irt::bench_irt),
        (Part::Gom, "the GoM benchmark", gom::bench_gom),
        (Part::Gpu, "the GPU benchmark", gpu::bench_gpu),
    ];
    for (part, name, run) in parts {
        if !opts.runs(part) {
            continue;
        }
        match run(&opts, &exe) {
            Ok(good) => ok &= good,
            Err(e) => {
                eprintln!("error in {name}: {e:#}");
                println!("\n{name} failed: {e:#}");
                ok = false;
            }
        }
    }
    Ok(ok)
}

/// The 2-class LCA against poLCA and StepMix.
fn bench_lca(opts: &Options, exe: &Path) -> Result<bool> {
    let root = root();
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
        let times = time_mlmix(exe, &input, opts.reps)?;
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

// ---------------------------------------------------------------------------
// `mlmix fit` as a process (the GLMM and two-level parts)

/// One `mlmix fit` process.
struct FitRun {
    /// Wall time of the whole process.
    wall: f64,
    /// The fit time the command reports on standard error (`..., 1.23 s`:
    /// the fit and the report, not reading the data).
    reported: Option<f64>,
    /// The log-likelihood (from `--json`).
    loglik: f64,
    converged: bool,
    /// EM and quasi-Newton iterations of the best solution.
    iterations: (usize, usize),
    /// The two-level summary: integration method, dimensions, nodes.
    integration: Option<(String, usize, usize)>,
    /// The likelihood evaluations by kind (`evaluations` in the JSON; empty
    /// when the binary does not write them).
    evaluations: Vec<speed::Evaluation>,
}

/// Runs `mlmix fit INPUT --json JSON` (report to nowhere) and reads what it
/// says on standard error and in the JSON.
fn fit_process(exe: &Path, input: &Path, json: &Path) -> Result<FitRun> {
    let t = Instant::now();
    let out = Command::new(exe)
        .arg("fit")
        .arg(input)
        .arg("--json")
        .arg(json)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    let wall = t.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "mlmix fit {} failed:\n{}",
            input.display(),
            tail(&out.stderr, 8)
        );
    }
    // the last line: "INPUT: logL -123.4567, 7 free parameters, converged, 0.86 s"
    let stderr = String::from_utf8_lossy(&out.stderr);
    let reported = stderr
        .lines()
        .rev()
        .find(|l| l.contains(": logL "))
        .and_then(|l| l.rsplit(", ").next())
        .and_then(|t| t.trim().strip_suffix(" s"))
        .and_then(|t| t.trim().parse::<f64>().ok());
    let text =
        std::fs::read_to_string(json).with_context(|| format!("reading {}", json.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("reading {}", json.display()))?;
    let loglik = v
        .get("loglikelihood")
        .and_then(|x| x.as_f64())
        .ok_or_else(|| anyhow!("{}: no loglikelihood", json.display()))?;
    let count = |x: Option<&serde_json::Value>| x.and_then(|x| x.as_u64()).unwrap_or(0) as usize;
    let it = v.get("iterations");
    let integration = v.get("two_level").map(|t| {
        (
            t.get("integration")
                .and_then(|x| x.as_str())
                .unwrap_or("?")
                .to_string(),
            count(t.get("dimensions")),
            count(t.get("points")),
        )
    });
    Ok(FitRun {
        wall,
        reported,
        loglik,
        converged: v.get("converged").and_then(|x| x.as_bool()) == Some(true),
        iterations: (
            count(it.and_then(|i| i.get("em"))),
            count(it.and_then(|i| i.get("quasi_newton"))),
        ),
        integration,
        evaluations: speed::evaluations(&v),
    })
}

/// The medians of the process and reported times of some runs.
fn run_medians(runs: &[FitRun]) -> (f64, Option<f64>) {
    let wall: Vec<f64> = runs.iter().map(|r| r.wall).collect();
    let reported: Option<Vec<f64>> = runs.iter().map(|r| r.reported).collect();
    (median(&wall), reported.map(|r| median(&r)))
}

/// Where the generated benchmark inputs and data go.
fn bench_data_dir() -> Result<PathBuf> {
    let dir = target_dir().join("bench-data");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// A Markdown table cell for an optional number.
fn cell(x: Option<f64>, decimals: usize) -> String {
    x.map_or_else(|| "-".to_string(), |x| format!("{x:.decimals$}"))
}

// ---------------------------------------------------------------------------
// GLMM: the VerbAgg random-intercept regressions against lme4

/// Largest |logL(mlmix) - logL(lme4)| not reported as a disagreement.
const GLMM_LL_TOLERANCE: f64 = 0.01;

/// The probit version of `verbagg_logit.inp`: `LINK = PROBIT;` added to
/// ANALYSIS and the data file's name, `file_as_written`, replaced by the
/// absolute path `data`, so that the input can live in another folder.
fn probit_input(logit: &str, file_as_written: &str, data: &Path) -> Result<String> {
    let upper = logit.to_ascii_uppercase();
    if upper.contains("LINK") {
        bail!("verbagg_logit.inp already names a LINK");
    }
    // DATA: ... FILE = <file_as_written>; the first occurrence after DATA:
    let data_at = upper
        .find("DATA:")
        .ok_or_else(|| anyhow!("verbagg_logit.inp has no DATA command"))?;
    let file_at = upper[data_at..]
        .find("FILE")
        .map(|i| data_at + i)
        .and_then(|f| logit[f..].find(file_as_written).map(|i| f + i))
        .ok_or_else(|| anyhow!("cannot find FILE = {file_as_written} in verbagg_logit.inp"))?;
    let path = data.display().to_string();
    let quoted = logit[..file_at].ends_with('"');
    let path = if !quoted && path.contains(|c: char| c.is_whitespace() || c == ';' || c == '!') {
        format!("\"{path}\"")
    } else {
        path
    };
    let mut text = String::with_capacity(logit.len() + 200);
    text.push_str(&logit[..file_at]);
    text.push_str(&path);
    text.push_str(&logit[file_at + file_as_written.len()..]);
    // ANALYSIS: at the start of a line
    let upper = text.to_ascii_uppercase();
    let mut offset = 0;
    let mut analysis = None;
    for line in upper.split_inclusive('\n') {
        if line.trim_start().starts_with("ANALYSIS:") {
            analysis = Some(offset + line.find("ANALYSIS:").unwrap_or(0) + "ANALYSIS:".len());
            break;
        }
        offset += line.len();
    }
    let at = analysis.ok_or_else(|| anyhow!("verbagg_logit.inp has no ANALYSIS command"))?;
    text.insert_str(at, "\n  LINK = PROBIT;");
    // the TITLE, if it says so
    if let Some(i) = text.find("logistic")
        && text.to_ascii_uppercase()[..i].find("DATA:").is_none()
    {
        text.replace_range(i..i + "logistic".len(), "probit");
    }
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(
        "! written by cargo xtask bench from tests/inputs/verbagg_logit.inp:\n\
         ! LINK = PROBIT added to ANALYSIS, the data FILE made absolute\n",
    );
    Ok(text)
}

/// The lme4 version, or why R and lme4 cannot run.
fn lme4_version() -> Result<String, String> {
    const INSTALL: &str = "install R and lme4: on Debian or Ubuntu `apt-get install \
                           r-base-core r-cran-lme4`; elsewhere `install.packages(\"lme4\")` in R";
    r_versions(&["lme4"], INSTALL).map(|v| v.join(" "))
}

/// The versions of the R packages `pkgs`, in order, or why Rscript cannot
/// report them (`install` says how to get them).
fn r_versions(pkgs: &[&str], install: &str) -> Result<Vec<String>, String> {
    let code = format!(
        "cat({})",
        pkgs.iter()
            .map(|p| format!("as.character(packageVersion('{p}'))"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let out = match Command::new("Rscript").args(["-e", &code]).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("Rscript is not on the PATH; {install}"));
        }
        Err(e) => return Err(format!("running Rscript: {e}")),
    };
    if !out.status.success() {
        return Err(format!(
            "{} is not installed for this R ({}); {install}",
            pkgs.join(" or "),
            tail(&out.stderr, 2)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let versions: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    if versions.len() != pkgs.len() {
        return Err(format!("unexpected answer from R: {text}"));
    }
    Ok(versions)
}

/// What `verbagg_lme4.R` reported: its median fit time, its logL.
struct Lme4Run {
    seconds: f64,
    loglik: f64,
}

fn run_lme4(data: &Path, link: &str, reps: usize) -> Result<Lme4Run, String> {
    let script = root().join("xtask").join("peers").join("verbagg_lme4.R");
    let out = Command::new("Rscript")
        .arg(&script)
        .arg(data)
        .arg(link)
        .arg(reps.to_string())
        .current_dir(root())
        .output()
        .map_err(|e| format!("running Rscript {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "Rscript {} failed:\n{}",
            script.display(),
            tail(&out.stderr, 8)
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("reading lme4's JSON: {e}"))?;
    let num = |k: &str| v.get(k).and_then(|x| x.as_f64());
    match (num("median_s"), num("loglik")) {
        (Some(seconds), Some(loglik)) => Ok(Lme4Run { seconds, loglik }),
        _ => Err("lme4's JSON has no median_s or loglik".into()),
    }
}

/// One line of the GLMM table.
struct GlmmRow {
    link: &'static str,
    mlmix: Vec<FitRun>,
    lme4: Vec<Lme4Run>,
    lme4_error: Option<String>,
}

fn bench_glmm(opts: &Options, exe: &Path) -> Result<bool> {
    let root = root();
    let dir = bench_data_dir()?;
    let logit = root.join("tests").join("inputs").join("verbagg_logit.inp");
    let (loaded, text, data) = input_and_data(&logit)?;
    let probit = dir.join("verbagg_probit.inp");
    std::fs::write(
        &probit,
        probit_input(&text, &loaded.model.data.file_as_written, &data)?,
    )
    .with_context(|| format!("writing {}", probit.display()))?;
    let check = mlmix::spec::load(&probit).map_err(|e| anyhow!("{}: {e}", probit.display()))?;
    if check.model.analysis.link != mlmix::spec::Link::Probit
        || check.model.data.file.canonicalize().ok().as_deref() != Some(data.as_path())
        || check.data.n_rows() != loaded.data.n_rows()
    {
        bail!(
            "{} does not read as the probit version of {}",
            probit.display(),
            logit.display()
        );
    }

    let lme4 = if opts.peers {
        lme4_version()
    } else {
        Err("--no-peers".to_string())
    };
    if let Err(why) = &lme4 {
        eprintln!("lme4 skipped: {why}");
    }
    let mlmix_reps = opts.reps;
    let lme4_reps = opts.peer_reps.unwrap_or(if opts.quick { 2 } else { 3 });
    let mut rows = Vec::new();
    for (link, input) in [("logit", &logit), ("probit", &probit)] {
        let json = dir.join(format!("verbagg_{link}.json"));
        eprintln!(
            "VerbAgg {link}: mlmix, {mlmix_reps} runs{}",
            if lme4.is_ok() {
                format!(", lme4 {lme4_reps} runs, alternating")
            } else {
                String::new()
            }
        );
        // warm the page cache and the binary; not timed
        fit_process(exe, input, &json)?;
        let mut row = GlmmRow {
            link,
            mlmix: Vec::new(),
            lme4: Vec::new(),
            lme4_error: None,
        };
        for round in 0..mlmix_reps.max(lme4_reps) {
            if round < mlmix_reps {
                row.mlmix.push(fit_process(exe, input, &json)?);
            }
            if lme4.is_ok() && row.lme4_error.is_none() && round < lme4_reps {
                match run_lme4(&data, link, 1) {
                    Ok(r) => row.lme4.push(r),
                    Err(why) => {
                        eprintln!("lme4 failed on the {link} model: {why}");
                        row.lme4_error = Some(why);
                    }
                }
            }
        }
        rows.push(row);
    }

    let mut ok = true;
    let mut notes = Vec::new();
    println!();
    println!(
        "### Random-intercept GLMM on VerbAgg (7,584 responses of 316 persons): mlmix and lme4"
    );
    println!();
    println!(
        "`tests/inputs/verbagg_logit.inp` and its probit version \
         (`target/bench-data/verbagg_probit.inp`): TYPE = TWOLEVEL, one class, adaptive \
         Gauss-Hermite with 25 points; lme4: `glmer(..., nAGQ = 25)` \
         (`xtask/peers/verbagg_lme4.R`, {}). Median of runs, mlmix and lme4 alternating. \
         mlmix process: the whole `mlmix fit` command; mlmix fit: the time it reports \
         (to 0.01 s); lme4 fit: the `glmer` call alone, timed inside R.",
        match &lme4 {
            Ok(v) => format!("lme4 {v}"),
            Err(_) => "lme4 not run".to_string(),
        }
    );
    println!();
    println!(
        "| link | mlmix process (s) | mlmix fit (s) | lme4 fit (s) | lme4 fit / mlmix process \
         | lme4 fit / mlmix fit | mlmix logL | lme4 logL | runs (mlmix, lme4) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let (tp, tf) = run_medians(&r.mlmix);
        let ll = r.mlmix.last().map(|f| f.loglik);
        if r.mlmix.iter().any(|f| !f.converged) {
            notes.push(format!("{}: mlmix did NOT converge", r.link));
            ok = false;
        }
        let (tl, lll) = if r.lme4.is_empty() {
            (None, None)
        } else {
            let s: Vec<f64> = r.lme4.iter().map(|x| x.seconds).collect();
            (Some(median(&s)), r.lme4.last().map(|x| x.loglik))
        };
        if let (Some(a), Some(b)) = (ll, lll) {
            let d = (a - b).abs();
            let agree = d <= GLMM_LL_TOLERANCE;
            ok &= agree;
            notes.push(format!(
                "{}: |logL(mlmix) - logL(lme4)| = {d:.2e} ({})",
                r.link,
                if agree {
                    format!("agree to {GLMM_LL_TOLERANCE}")
                } else {
                    format!("DISAGREE: more than {GLMM_LL_TOLERANCE}")
                }
            ));
        }
        if let Some(why) = &r.lme4_error {
            notes.push(format!("{}: lme4 failed: {why}", r.link));
        }
        println!(
            "| {} | {:.3} | {} | {} | {} | {} | {} | {} | {}, {} |",
            r.link,
            tp,
            cell(tf, 2),
            cell(tl, 3),
            cell(tl.map(|t| t / tp), 1),
            cell(tl.zip(tf).map(|(t, f)| t / f), 1),
            cell(ll, 4),
            cell(lll, 4),
            r.mlmix.len(),
            r.lme4.len(),
        );
    }
    println!();
    for n in &notes {
        println!("{n}");
    }
    if let Err(why) = &lme4 {
        println!("lme4 skipped: {why}");
    }
    Ok(ok)
}

// ---------------------------------------------------------------------------
// two-level mixture regression: fit time against integration nodes

/// Clusters and rows per cluster of the two-level data.
const TL_CLUSTERS: usize = 1000;
const TL_CLUSTER_SIZE: usize = 20;
/// Seed of the two-level data.
const TL_SEED: u64 = 20_261_125;
/// Class intercepts mu_c.
const TL_MU: [f64; 2] = [-1.0, 1.0];
/// Class slopes of x, beta_c: equal, because the fitted models hold `ON`
/// slopes equal across classes (Mplus's default), so that the 3-dimension
/// model is the one that generated the data.
const TL_BETA: [f64; 2] = [0.5, 0.5];
/// Variance of each random effect u_0j, u_1j, u_2j.
const TL_RE_VARIANCE: f64 = 0.3;

/// SplitMix64: a small seeded generator, the same on every platform.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let r = (-2.0 * self.uniform().ln()).sqrt();
        r * (std::f64::consts::TAU * self.uniform()).cos()
    }
}

/// The two-level data, columns clus y x z:
/// y_ij = mu_c + beta_c x_ij + u_0j + u_1j x_ij + u_2j z_ij + e_ij, with the
/// class c of each row 1 or 2 with probability 1/2, x, z, e standard normal
/// and u_0j, u_1j, u_2j independent N(0, 0.3).
fn twolevel_data() -> Result<String> {
    use std::fmt::Write as _;
    let mut rng = SplitMix(TL_SEED);
    let sd = TL_RE_VARIANCE.sqrt();
    let mut text = String::with_capacity(TL_CLUSTERS * TL_CLUSTER_SIZE * 40);
    for j in 1..=TL_CLUSTERS {
        let u0 = sd * rng.normal();
        let u1 = sd * rng.normal();
        let u2 = sd * rng.normal();
        for _ in 0..TL_CLUSTER_SIZE {
            let c = usize::from(rng.uniform() >= 0.5);
            let x = rng.normal();
            let z = rng.normal();
            let e = rng.normal();
            let y = TL_MU[c] + TL_BETA[c] * x + u0 + u1 * x + u2 * z + e;
            writeln!(text, "{j} {y:.6} {x:.6} {z:.6}")?;
        }
    }
    Ok(text)
}

/// One two-level fit to time.
struct TlCase {
    /// Integration dimensions (random effects).
    dims: usize,
    /// "trapezoid" or "Gauss-Hermite".
    method: &'static str,
    /// The INTEGRATION option's value.
    integration: &'static str,
    /// Points per dimension.
    points: usize,
}

impl TlCase {
    fn nodes(&self) -> usize {
        self.points.pow(self.dims as u32)
    }

    fn stem(&self) -> String {
        let m = if self.method == "trapezoid" {
            "t"
        } else {
            "gh"
        };
        format!("tl_d{}_{m}{}", self.dims, self.points)
    }

    /// The input; the data file `tl.dat` lies in the same folder.
    fn input(&self) -> String {
        let (within, between) = match self.dims {
            1 => ("y ON x z;", "y;"),
            2 => ("s1 | y ON x;\n  y ON z;", "y; s1;"),
            _ => ("s1 | y ON x;\n  s2 | y ON z;", "y; s1; s2;"),
        };
        format!(
            "TITLE: cargo xtask bench: two-level 2-class mixture regression,\n  \
             {dims} integration dimension(s), {method} with {points} points per dimension\n\
             DATA: FILE = tl.dat;\n\
             VARIABLE: NAMES = clus y x z; USEVARIABLES = y x z; CLASSES = c(2);\n  \
             WITHIN = x z; CLUSTER = clus;\n\
             ANALYSIS: TYPE = TWOLEVEL MIXTURE; STARTS = 0;\n  \
             INTEGRATION = {integration}; ADAPTIVE = ON;\n\
             MODEL:\n  \
             %WITHIN%\n  \
             %OVERALL%\n  \
             {within}\n  \
             %BETWEEN%\n  \
             %OVERALL%\n  \
             {between}\n",
            dims = self.dims,
            method = self.method,
            points = self.points,
            integration = self.integration,
        )
    }
}

/// The two-level fits: 1 dimension, trapezoid 15; 2 dimensions,
/// Gauss-Hermite 7, trapezoid 10 and 15; 3 dimensions, trapezoid 15.
fn tl_cases() -> Vec<TlCase> {
    let trapezoid = |dims, points, integration| TlCase {
        dims,
        method: "trapezoid",
        integration,
        points,
    };
    vec![
        trapezoid(1, 15, "15"),
        TlCase {
            dims: 2,
            method: "Gauss-Hermite",
            integration: "GAUSSHERMITE(7)",
            points: 7,
        },
        trapezoid(2, 10, "10"),
        trapezoid(2, 15, "15"),
        trapezoid(3, 15, "15"),
    ]
}

/// Writes the two-level data `tl.dat` and the inputs of `cases` into
/// `dir`; the inputs' paths, in the order of `cases`.
fn write_twolevel(dir: &Path, cases: &[TlCase]) -> Result<Vec<PathBuf>> {
    let data = dir.join("tl.dat");
    std::fs::write(&data, twolevel_data()?)
        .with_context(|| format!("writing {}", data.display()))?;
    let mut inputs = Vec::new();
    for case in cases {
        let input = dir.join(format!("{}.inp", case.stem()));
        std::fs::write(&input, case.input())
            .with_context(|| format!("writing {}", input.display()))?;
        inputs.push(input);
    }
    Ok(inputs)
}

fn bench_twolevel(opts: &Options, exe: &Path) -> Result<bool> {
    let dir = bench_data_dir()?;
    let cases = tl_cases();
    let inputs = write_twolevel(&dir, &cases)?;
    let reps = opts.tl_reps.unwrap_or(if opts.quick { 1 } else { 3 });
    eprintln!(
        "two-level mixture regression ({} clusters of {} rows): {} fits, {reps} run(s) each, \
         in turn; the 3-dimension fit is the long one",
        thousands(TL_CLUSTERS),
        TL_CLUSTER_SIZE,
        cases.len()
    );
    let mut runs: Vec<Vec<FitRun>> = cases.iter().map(|_| Vec::new()).collect();
    let mut ok = true;
    let mut notes = Vec::new();
    // round robin, so that a slow spell of the machine spreads over the cases
    for rep in 0..reps {
        for ((case, input), done) in cases.iter().zip(&inputs).zip(&mut runs) {
            let json = dir.join(format!("{}.json", case.stem()));
            let run = fit_process(exe, input, &json)?;
            eprintln!(
                "  run {}/{reps}: {} dims, {} {}: logL {:.4}, {}, {} EM + {} QN iterations, \
                 {:.2} s (process {:.2} s)",
                rep + 1,
                case.dims,
                case.method,
                case.points,
                run.loglik,
                if run.converged {
                    "converged"
                } else {
                    "NOT converged"
                },
                run.iterations.0,
                run.iterations.1,
                run.reported.unwrap_or(f64::NAN),
                run.wall,
            );
            if rep == 0 {
                if !run.converged {
                    notes.push(format!("{}: did NOT converge", case.stem()));
                    ok = false;
                }
                match &run.integration {
                    Some((_, d, n)) if *d == case.dims && *n == case.nodes() => {}
                    Some((m, d, n)) => notes.push(format!(
                        "{}: mlmix integrated {d} dimensions with {n} nodes ({m}), not {} \
                         with {}",
                        case.stem(),
                        case.dims,
                        case.nodes()
                    )),
                    None => notes.push(format!("{}: no two-level summary", case.stem())),
                }
            } else if let Some(first) = done.first()
                && (first.loglik - run.loglik).abs() > 1e-6
            {
                notes.push(format!(
                    "{}: logL {:.6} in run 1, {:.6} in run {}",
                    case.stem(),
                    first.loglik,
                    run.loglik,
                    rep + 1
                ));
            }
            done.push(run);
        }
    }

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!("### Two-level 2-class mixture regression: fit time against integration nodes");
    println!();
    println!(
        "{} clusters of {} rows (`target/bench-data/tl.dat`, generated with seed {TL_SEED}): \
         y = mu_c + beta x + u0 + u1 x + u2 z + e, a within-level class c (2 classes, 1/2 \
         each), random effects N(0, {TL_RE_VARIANCE}). dims 1: random intercept; 2: plus a \
         random slope of x; 3: plus one of z. Adaptive integration. STARTS = 0: one \
         optimisation from the default starting values, no random starts, so the times \
         compare the cost of the integration. Median of {reps} run(s); mlmix on all {cpus} \
         logical CPU(s). process: the whole `mlmix fit` command; fit: the time it reports.",
        thousands(TL_CLUSTERS),
        TL_CLUSTER_SIZE,
    );
    println!();
    println!(
        "| dims | nodes | method | points | process (s) | fit (s) | logL | s / 1000 nodes \
         | iterations (EM + QN) | ms / (iteration × 1000 nodes) |"
    );
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for (case, r) in cases.iter().zip(&runs) {
        let (tp, tf) = run_medians(r);
        let nodes = case.nodes();
        let last = r.last();
        let iterations = last.map_or(0, |f| f.iterations.0 + f.iterations.1);
        let per_knode = tf.map(|t| t * 1000.0 / nodes as f64);
        println!(
            "| {} | {} | {} | {} | {:.2} | {} | {} | {} | {} | {} |",
            case.dims,
            thousands(nodes),
            case.method,
            case.points,
            tp,
            cell(tf, 2),
            cell(last.map(|f| f.loglik), 4),
            cell(per_knode, 1),
            last.map_or_else(
                || "-".to_string(),
                |f| format!("{} + {}", f.iterations.0, f.iterations.1)
            ),
            cell(
                per_knode
                    .filter(|_| iterations > 0)
                    .map(|t| t * 1000.0 / iterations as f64),
                0
            ),
        );
    }
    println!();
    for n in &notes {
        println!("{n}");
    }
    println!(
        "The logL of the 2-dimension fits differ only by the integration error; the \
         iterations column counts the best solution's EM and quasi-Newton iterations (the \
         standard errors' pass is in the fit time too)."
    );
    Ok(ok)
}
