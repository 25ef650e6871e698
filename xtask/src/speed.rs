//! The `speed` part of `cargo xtask bench`: this build's `mlmix` against a
//! baseline commit's, side by side in one run, on two-level fits.
//!
//! The baseline (`--baseline REV`, default [`BASELINE_REV`]) is checked out
//! once as a git worktree in `target/baseline/src` and built into
//! `target/baseline/target` (`target/baseline/stamp` holds the commit built,
//! so that a later run skips the build). The cases are four fits of the
//! `twolevel` part's data (`tl_d1_t15`, `tl_d2_gh7`, `tl_d2_t15`,
//! `tl_d3_t15`) and the paper's Model 6, a within-level class with a random
//! logit intercept, on data generated here (`m6_default`, `m6_int100`).
//! Each case runs the baseline and then the new binary, `--tl-reps` times
//! (default 1), round robin over the cases. `MLMIX_SPEED_CASES=STEM,...`
//! runs only the cases named (`--quick` does not drop them).

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::{
    FitRun, Options, TL_CLUSTER_SIZE, TL_CLUSTERS, TL_SEED, bench_data_dir, cargo, cell,
    fit_process, root, run_medians, tail, target_dir, thousands, tl_cases, write_twolevel,
};

/// The default baseline of `--baseline`: main before the integration-speed
/// work.
pub(crate) const BASELINE_REV: &str = "96446e9";

/// The speed-up (baseline time / new time) aimed at; reported, not enforced.
const SPEEDUP_GOAL: f64 = 8.0;

/// Largest |logL(new) - logL(baseline)| that passes.
const LL_AGREEMENT: f64 = 1e-6;

/// The environment variable that picks cases by stem.
const CASES_VAR: &str = "MLMIX_SPEED_CASES";

/// The kinds of evaluations (the engine's), in the order of the table's
/// `a/b/c/d` cells.
const KINDS: [&str; 4] = mlmix::EVAL_KINDS;

// ---------------------------------------------------------------------------
// evaluation counts

/// The likelihood evaluations of one kind that one fit made (an element of
/// the `evaluations` array of `mlmix fit --json`, `EvaluationCount` in
/// `crates/mlmix/src/results.rs`).
pub(crate) struct Evaluation {
    /// `loglik`, `gradient`, `em` or `meat`.
    pub(crate) kind: String,
    /// How many.
    pub(crate) count: usize,
    /// Their total wall-clock time in seconds.
    pub(crate) seconds: f64,
    /// Rows times passes, summed over them.
    row_passes: f64,
}

/// The `evaluations` of a fit's JSON; empty when there are none (binaries
/// before the integration-speed work do not write them).
pub(crate) fn evaluations(v: &serde_json::Value) -> Vec<Evaluation> {
    let Some(list) = v.get("evaluations").and_then(|e| e.as_array()) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|e| {
            Some(Evaluation {
                kind: e.get("kind")?.as_str()?.to_string(),
                count: usize::try_from(e.get("count")?.as_u64()?).ok()?,
                seconds: e.get("seconds")?.as_f64()?,
                row_passes: e.get("row_passes")?.as_f64()?,
            })
        })
        .collect()
}

/// Count, seconds and row passes of each of [`KINDS`], summed over `runs`.
fn totals(runs: &[FitRun]) -> [(usize, f64, f64); 4] {
    let mut t = [(0, 0.0, 0.0); 4];
    for e in runs.iter().flat_map(|r| &r.evaluations) {
        if let Some(k) = KINDS.iter().position(|&k| k == e.kind) {
            t[k].0 += e.count;
            t[k].1 += e.seconds;
            t[k].2 += e.row_passes;
        }
    }
    t
}

// ---------------------------------------------------------------------------
// the baseline

/// Runs git in `dir`; its standard output, trimmed, or why it failed.
fn git<I, S>(dir: &Path, args: I) -> Result<String, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<S> = args.into_iter().collect();
    let shown = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("git")
        .current_dir(dir)
        .args(&args)
        .output()
        .map_err(|e| format!("running git {shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!("git {shown} failed:\n{}", tail(&out.stderr, 4)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The baseline's `mlmix`: `rev` resolved to a commit, checked out as a
/// worktree in `target/baseline/src` and built into
/// `target/baseline/target`, unless `target/baseline/stamp` says that commit
/// is built already. The commit and the binary, or why there is none.
fn baseline_exe(rev: &str) -> Result<(String, PathBuf), String> {
    let repo = root();
    let commit = git(
        &repo,
        ["rev-parse", "--verify", &format!("{rev}^{{commit}}")],
    )
    .map_err(|e| format!("cannot resolve the baseline {rev}: {e}"))?;
    let base = target_dir().join("baseline");
    let src = base.join("src");
    let stamp = base.join("stamp");
    let exe = base
        .join("target")
        .join("release")
        .join(format!("mlmix{}", std::env::consts::EXE_SUFFIX));
    let stamped = std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == commit);
    if stamped && exe.exists() {
        eprintln!(
            "baseline {rev} ({}) is built already: {}",
            &commit[..commit.len().min(12)],
            exe.display()
        );
        return Ok((commit, exe));
    }
    std::fs::create_dir_all(&base).map_err(|e| format!("creating {}: {e}", base.display()))?;
    // a failed build must not leave a stamp behind
    if stamp.exists() {
        std::fs::remove_file(&stamp).map_err(|e| format!("removing {}: {e}", stamp.display()))?;
    }
    let checked_out =
        src.exists() && git(&src, ["rev-parse", "HEAD"]).ok().as_deref() == Some(&*commit);
    if !checked_out {
        if src.exists() {
            eprintln!(
                "removing the old baseline worktree {} (not at {rev})",
                src.display()
            );
            let removed = git(
                &repo,
                [
                    OsStr::new("worktree"),
                    "remove".as_ref(),
                    "--force".as_ref(),
                    src.as_os_str(),
                ],
            );
            if let Err(why) = removed {
                eprintln!("{why}\nremoving {} by hand", src.display());
                std::fs::remove_dir_all(&src)
                    .map_err(|e| format!("removing {}: {e}", src.display()))?;
            }
        }
        // forget worktrees whose folders are gone (a `cargo clean`)
        git(&repo, ["worktree", "prune"])?;
        eprintln!(
            "checking out the baseline {rev} ({}): git worktree add --detach {}",
            &commit[..commit.len().min(12)],
            src.display()
        );
        git(
            &repo,
            [
                OsStr::new("worktree"),
                "add".as_ref(),
                "--detach".as_ref(),
                src.as_os_str(),
                commit.as_ref(),
            ],
        )?;
    }
    eprintln!(
        "building the baseline's mlmix (cargo build --release -p mlmix-cli in {}, \
         CARGO_TARGET_DIR={})",
        src.display(),
        base.join("target").display()
    );
    let out = Command::new(cargo())
        .current_dir(&src)
        .args(["build", "--release", "--quiet", "-p", "mlmix-cli"])
        .env("CARGO_TARGET_DIR", base.join("target"))
        .output()
        .map_err(|e| format!("running cargo build for the baseline: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build --release -p mlmix-cli failed at {rev}:\n{}",
            tail(&out.stderr, 8)
        ));
    }
    if !exe.exists() {
        return Err(format!("the baseline's build wrote no {}", exe.display()));
    }
    std::fs::write(&stamp, format!("{commit}\n"))
        .map_err(|e| format!("writing {}: {e}", stamp.display()))?;
    Ok((commit, exe))
}

// ---------------------------------------------------------------------------
// Model 6

/// Clusters and rows per cluster of the Model 6 data.
const M6_CLUSTERS: usize = 100;
const M6_CLUSTER_SIZE: usize = 10;
/// Seed of the Model 6 data: the data set of the two-level tests'
/// `model_6_fit` (`tests/tests/twolevel.rs`, `model_5_data`).
const M6_SEED: u64 = 5;
/// Class intercepts mu_c and slopes beta_c of y (index 0: class 1).
const M6_MU: [f64; 2] = [1.0, 0.0];
const M6_BETA: [f64; 2] = [0.2, 0.8];
/// Variance of the random intercept u_j of y.
const M6_U_VARIANCE: f64 = 0.2;

/// The paper's Table 3 data design, as the two-level tests simulate it
/// (the same generator, seed and draws, so the same data as their
/// `model_6_fit`): y_ij = mu_c + u_j + beta_c x_ij + e_ij with the class c
/// of a cluster (a between-level class in truth) 1 or 2 with probability
/// 1/2, u_j ~ N(0, 0.2), x and e standard normal. Model 6 fitted to it
/// has a within-level class with a random logit intercept whose variance
/// comes out large (about 1400) but finite.
fn m6_data() -> Result<String> {
    let mut sim = mlmix_tests::Sim::new(M6_SEED);
    let mut rows = Vec::with_capacity(M6_CLUSTERS * M6_CLUSTER_SIZE);
    for j in 0..M6_CLUSTERS {
        let c = usize::from(sim.uniform() >= 0.5);
        let u = M6_U_VARIANCE.sqrt() * sim.normal();
        // the tests draw a random slope too (variance 0 here)
        let _slope = sim.normal();
        for _ in 0..M6_CLUSTER_SIZE {
            let x = sim.normal();
            let y = M6_MU[c] + u + M6_BETA[c] * x + sim.normal();
            rows.push(vec![(j + 1) as f64, y, x]);
        }
    }
    Ok(mlmix_tests::free_format(&rows, "-99"))
}

/// The Model 6 input with mlmix's default integration (15-point adaptive
/// trapezoid; the random logit intercept is a 61-point step dimension),
/// starting values as in the tests' `model_6_fit`.
const M6_INPUT: &str = "\
TITLE: cargo xtask bench: the paper's Model 6, a within-level class with a random logit intercept
DATA: FILE = m6.dat;
VARIABLE: NAMES = clus y x; USEVARIABLES = y x; CLASSES = c(2);
  WITHIN = x; CLUSTER = clus;
ANALYSIS: TYPE = TWOLEVEL MIXTURE; STARTS = 0;
MODEL:
  %WITHIN%
  %OVERALL%
  y ON x;
  [c#1*0];
  %c#1%
  y ON x*0.2;
  %c#2%
  y ON x*0.8;
  %BETWEEN%
  %OVERALL%
  c#1*100;
  y*0.2;
  %c#1%
  [y*1];
  %c#2%
  [y*0];
";

/// The Model 6 input, with `INTEGRATION = {integration};` added to ANALYSIS
/// when given.
fn m6_input(integration: Option<&str>) -> Result<String> {
    let Some(integration) = integration else {
        return Ok(M6_INPUT.to_string());
    };
    let analysis = "STARTS = 0;\n";
    if !M6_INPUT.contains(analysis) {
        bail!("the Model 6 input has no '{}'", analysis.trim());
    }
    Ok(M6_INPUT.replacen(
        analysis,
        &format!("{analysis}  INTEGRATION = {integration};\n"),
        1,
    ))
}

// ---------------------------------------------------------------------------
// the part

/// One fit to time with both binaries.
struct Case {
    stem: String,
    input: PathBuf,
    /// Dropped by `--quick` (its baseline fit is long).
    long: bool,
}

/// The runs of one case.
#[derive(Default)]
struct CaseRuns {
    baseline: Vec<FitRun>,
    new: Vec<FitRun>,
    /// Why a baseline fit failed (no more are run).
    baseline_error: Option<String>,
    /// Why a new fit failed (no more are run).
    new_error: Option<String>,
}

/// Writes the data and inputs, and returns the cases to run and the stems
/// of those `--quick` drops.
fn cases(opts: &Options, dir: &Path) -> Result<(Vec<Case>, Vec<String>)> {
    let tl: Vec<_> = tl_cases()
        .into_iter()
        .filter(|c| ["tl_d1_t15", "tl_d2_gh7", "tl_d2_t15", "tl_d3_t15"].contains(&&*c.stem()))
        .collect();
    let inputs = write_twolevel(dir, &tl)?;
    let mut cases: Vec<Case> = tl
        .iter()
        .zip(inputs)
        .map(|(c, input)| Case {
            stem: c.stem(),
            input,
            long: c.dims >= 3,
        })
        .collect();
    let data = dir.join("m6.dat");
    std::fs::write(&data, m6_data()?).with_context(|| format!("writing {}", data.display()))?;
    for (stem, integration, long) in [
        ("m6_default", None, false),
        ("m6_int100", Some("100"), true),
    ] {
        let input = dir.join(format!("{stem}.inp"));
        std::fs::write(&input, m6_input(integration)?)
            .with_context(|| format!("writing {}", input.display()))?;
        cases.push(Case {
            stem: stem.to_string(),
            input,
            long,
        });
    }
    match std::env::var(CASES_VAR) {
        Ok(list) if !list.trim().is_empty() => {
            let wanted: Vec<&str> = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            if let Some(unknown) = wanted.iter().find(|w| !cases.iter().any(|c| c.stem == **w)) {
                bail!(
                    "{CASES_VAR}: unknown case '{unknown}' (the cases: {})",
                    cases
                        .iter()
                        .map(|c| c.stem.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            cases.retain(|c| wanted.contains(&c.stem.as_str()));
        }
        _ if opts.quick => {
            let dropped = cases
                .iter()
                .filter(|c| c.long)
                .map(|c| c.stem.clone())
                .collect();
            cases.retain(|c| !c.long);
            return Ok((cases, dropped));
        }
        _ => {}
    }
    Ok((cases, Vec::new()))
}

/// One line of the progress on standard error.
fn progress(who: &str, run: &FitRun) -> String {
    format!(
        "{who} logL {:.6}, {}, {} EM + {} QN iterations, {:.2} s",
        run.loglik,
        if run.converged {
            "converged"
        } else {
            "NOT converged"
        },
        run.iterations.0,
        run.iterations.1,
        run.wall
    )
}

/// `a/b/c/d` over [`KINDS`].
fn by_kind(f: impl Fn(usize) -> String) -> String {
    (0..KINDS.len()).map(f).collect::<Vec<_>>().join("/")
}

/// The `speed` part: true unless a new fit failed or did not converge, or
/// its logL differs from the baseline's by more than 1e-6.
pub(crate) fn bench_speed(opts: &Options, exe: &Path) -> Result<bool> {
    let rev = opts.baseline.as_deref().unwrap_or(BASELINE_REV);
    let dir = bench_data_dir()?;
    let (cases, dropped) = cases(opts, &dir)?;
    let mut notes: Vec<String> = Vec::new();
    if !dropped.is_empty() {
        notes.push(format!(
            "--quick: {} not run (the baseline's fits take tens of minutes)",
            dropped.join(", ")
        ));
    }
    let baseline = match baseline_exe(rev) {
        Ok(b) => Some(b),
        Err(why) => {
            eprintln!("the baseline cannot run: {why}");
            notes.push(format!(
                "The baseline {rev} could not be built, so only this build ran: {why}"
            ));
            None
        }
    };
    let reps = opts.tl_reps.unwrap_or(1);
    eprintln!(
        "integration speed against {rev}: {} case(s) ({}), {reps} run(s) each, baseline then \
         new, round robin",
        cases.len(),
        cases
            .iter()
            .map(|c| c.stem.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut runs: Vec<CaseRuns> = cases.iter().map(|_| CaseRuns::default()).collect();
    for rep in 0..reps {
        for (case, done) in cases.iter().zip(&mut runs) {
            if let Some((_, base_exe)) = &baseline
                && done.baseline_error.is_none()
            {
                let json = dir.join(format!("speed_{}_baseline.json", case.stem));
                match fit_process(base_exe, &case.input, &json) {
                    Ok(run) => {
                        eprintln!(
                            "  run {}/{reps} {}: {}",
                            rep + 1,
                            case.stem,
                            progress("baseline", &run)
                        );
                        done.baseline.push(run);
                    }
                    Err(e) => {
                        eprintln!("  {}: the baseline's fit failed: {e:#}", case.stem);
                        done.baseline_error = Some(format!("{e:#}"));
                    }
                }
            }
            if done.new_error.is_none() {
                let json = dir.join(format!("speed_{}_new.json", case.stem));
                match fit_process(exe, &case.input, &json) {
                    Ok(run) => {
                        eprintln!(
                            "  run {}/{reps} {}: {}",
                            rep + 1,
                            case.stem,
                            progress("new", &run)
                        );
                        done.new.push(run);
                    }
                    Err(e) => {
                        eprintln!("  {}: the new fit failed: {e:#}", case.stem);
                        done.new_error = Some(format!("{e:#}"));
                    }
                }
            }
        }
    }

    let mut ok = true;
    let mut table = String::new();
    for (case, r) in cases.iter().zip(&runs) {
        let stem = &case.stem;
        let median_wall = |v: &[FitRun]| (!v.is_empty()).then(|| run_medians(v).0);
        let (tb, tn) = (median_wall(&r.baseline), median_wall(&r.new));
        let speedup = tb.zip(tn).map(|(b, n)| b / n);
        let (llb, lln) = (
            r.baseline.last().map(|f| f.loglik),
            r.new.last().map(|f| f.loglik),
        );
        let delta = llb.zip(lln).map(|(b, n)| (b - n).abs());
        let nodes = |v: &[FitRun]| v.last().and_then(|f| f.integration.as_ref()).map(|i| i.2);
        let (nb, nn) = (nodes(&r.baseline), nodes(&r.new));
        if let Some(why) = &r.new_error {
            notes.push(format!("{stem}: the new fit FAILED: {why}"));
            ok = false;
        }
        if let Some(why) = &r.baseline_error {
            notes.push(format!("{stem}: the baseline's fit failed: {why}"));
        }
        if r.new.iter().any(|f| !f.converged) {
            notes.push(format!("{stem}: the new fit did NOT converge"));
            ok = false;
        }
        if r.baseline.iter().any(|f| !f.converged) {
            notes.push(format!("{stem}: the baseline's fit did not converge"));
        }
        if let Some(d) = delta
            && (d.is_nan() || d > LL_AGREEMENT)
        {
            notes.push(format!(
                "{stem}: |ΔlogL| = {d:.2e}, more than {LL_AGREEMENT:e}: the new build does not \
                 reproduce the baseline's solution"
            ));
            ok = false;
        }
        if let Some(s) = speedup
            && s < SPEEDUP_GOAL
        {
            notes.push(format!(
                "{stem}: speed-up {s:.2}, below the goal of {SPEEDUP_GOAL}"
            ));
        }
        if let (Some(b), Some(n)) = (nb, nn)
            && b != n
        {
            notes.push(format!(
                "{stem}: the baseline integrated over {} nodes, the new build over {}",
                thousands(b),
                thousands(n)
            ));
        }
        if !r.new.is_empty() && r.new.iter().all(|f| f.evaluations.is_empty()) {
            notes.push(format!("{stem}: the new binary wrote no evaluation counts"));
        }
        let t = totals(&r.new);
        let last = r.new.last().map(|f| totals(std::slice::from_ref(f)));
        let evaluated = !r.new.is_empty() && t.iter().any(|k| k.0 > 0);
        let seconds: f64 = t.iter().map(|k| k.1).sum();
        let passes: f64 = t.iter().map(|k| k.2).sum();
        writeln!(
            table,
            "| {stem} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            nn.or(nb).map_or_else(|| "-".to_string(), thousands),
            cell(tb, 2),
            cell(tn, 2),
            cell(speedup, 1),
            cell(llb, 6),
            cell(lln, 6),
            delta.map_or_else(|| "-".to_string(), |d| format!("{d:.1e}")),
            match last {
                Some(l) if evaluated => by_kind(|k| l[k].0.to_string()),
                _ => "-".to_string(),
            },
            if evaluated {
                by_kind(|k| {
                    if t[k].0 == 0 {
                        "-".to_string()
                    } else {
                        format!("{:.1}", 1000.0 * t[k].1 / t[k].0 as f64)
                    }
                })
            } else {
                "-".to_string()
            },
            cell(
                (evaluated && seconds > 0.0).then(|| passes / seconds / 1e6),
                1
            ),
        )?;
    }

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let shown = match &baseline {
        Some((commit, _)) if !commit.starts_with(rev) => {
            format!("{rev} ({})", &commit[..commit.len().min(12)])
        }
        _ => rev.to_string(),
    };
    println!();
    println!("### Integration speed: this build against {shown}");
    println!();
    println!(
        "The `mlmix` of this working tree against the one built from {shown} \
         (`target/baseline/`), on two-level fits, STARTS = 0. tl_*: the two-level 2-class \
         mixture regression of the twolevel part ({} clusters of {} rows, \
         `target/bench-data/tl.dat`, seed {TL_SEED}) with 1 integration dimension (d1: \
         random intercept), 2 (d2: plus the slope of x) or 3 (d3: plus the slope of z), \
         adaptive trapezoid with 15 points per dimension (t15) or Gauss-Hermite with 7 \
         (gh7). m6_*: the paper's Model 6, a within-level class with a random logit \
         intercept and a random intercept of y ({M6_CLUSTERS} clusters of {M6_CLUSTER_SIZE} \
         rows, `target/bench-data/m6.dat`: the two-level tests' Table 3 data set, seed \
         {M6_SEED}, a class per cluster, u_j ~ N(0, {M6_U_VARIANCE}), y = mu_c + u_j + beta_c x \
         + e; Var(alpha) comes out near 1400), with mlmix's default integration (default) \
         and with INTEGRATION = 100 (int100). Times are medians of \
         {reps} whole `mlmix fit` process(es) per binary on this machine with {cpus} logical \
         CPU(s), the baseline and then the new binary for each case, round robin over the \
         cases. Evaluations and ms per evaluation are the new build's, by kind: \
         loglik/gradient/em/meat; row-passes: rows times integration passes.",
        thousands(TL_CLUSTERS),
        TL_CLUSTER_SIZE,
    );
    println!();
    println!(
        "| case | nodes | baseline s | new s | speed-up | baseline logL | new logL | \\|ΔlogL\\| \
         | new evaluations | new ms / evaluation | new M row-passes / s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    print!("{table}");
    println!();
    for n in &notes {
        println!("{n}");
    }
    if notes.is_empty() && baseline.is_some() {
        println!(
            "Every new fit converged to the baseline's logL (to {LL_AGREEMENT:e}) at least \
             {SPEEDUP_GOAL} times faster."
        );
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_names_the_default_baseline() {
        assert!(super::super::USAGE.contains(&format!("default {BASELINE_REV}")));
    }

    #[test]
    fn int100_adds_integration_to_analysis() -> Result<()> {
        let text = m6_input(Some("100"))?;
        assert!(text.contains("STARTS = 0;\n  INTEGRATION = 100;\nMODEL:"));
        assert_eq!(text.replace("  INTEGRATION = 100;\n", ""), M6_INPUT);
        Ok(())
    }

    #[test]
    fn m6_data_has_100_clusters_of_10() -> Result<()> {
        let text = m6_data()?;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), M6_CLUSTERS * M6_CLUSTER_SIZE);
        assert!(lines[0].starts_with("1 "));
        assert!(lines[lines.len() - 1].starts_with("100 "));
        assert!(lines.iter().all(|l| l.split(' ').count() == 3));
        Ok(())
    }

    #[test]
    fn reads_evaluations() -> Result<()> {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"evaluations": [
                {"kind": "loglik", "count": 3, "seconds": 0.5, "row_passes": 1e6},
                {"kind": "meat", "count": 1, "seconds": 0.25, "row_passes": 2e6}]}"#,
        )?;
        let e = evaluations(&v);
        assert_eq!(e.len(), 2);
        assert_eq!((e[1].kind.as_str(), e[1].count), ("meat", 1));
        assert!(evaluations(&serde_json::json!({})).is_empty());
        Ok(())
    }
}
