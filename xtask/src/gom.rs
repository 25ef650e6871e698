//! The `gom` part of `cargo xtask bench`: grade-of-membership models on
//! long data, the size the GoM issue asks for. A 3-class GoM (2 random
//! class logits: 2 dimensions) and a 4-class FMA-GoM (3 random class
//! logits and a factor: 4 dimensions) on 7,000 persons × 17 binary items
//! (119,000 long rows, data simulated here from a 4-class FMA-GoM into
//! `target/bench-data/gom17.dat`), each at the default integration and
//! with `INTEGRATION = MONTECARLO(500)`.
//!
//! 1. **Per evaluation**, in this process: one backend evaluation of the
//!    log-likelihood, and one with the gradient and information (what every
//!    EM step asks), with the engine's shortcuts for long data and with its
//!    general loop (`CpuBackend::general_loop`: every term on every row,
//!    log-sum-exps per row), side by side, and the time per row and node
//!    against the machine's arithmetic bound (see [`bound_flops`]); and,
//!    on the grid adapted to each person's posterior (what a fit with the
//!    default `ADAPTIVE = ON` evaluates), one of each with the shortcuts.
//! 2. **Whole fits**: `mlmix fit` with `STARTS = 20 4`, each within a
//!    budget (`MLMIX_GOM_BUDGET` seconds, default 600; then interrupted,
//!    and the best solution so far is what it reports): time, logL,
//!    evaluations by kind and their mean time.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use mlmix::spec::{ParamKind, ParamValue};
use mlmix_integrate::{Adaptation, Backend, CpuBackend, Want};
use mlmix_tests::Sim;

use super::{Options, bench_data_dir, speed, thousands};

/// Persons and items of the benchmark data.
const PERSONS: usize = 7_000;
const ITEMS: usize = 17;

/// The environment variable that sets each whole fit's budget in seconds.
const BUDGET_VAR: &str = "MLMIX_GOM_BUDGET";

/// The classes' item logits τ_qc (class × item), drawn once from U(−2.5,
/// 2.5) and rounded. A GoM is identified only if its classes' profiles
/// (the 17-vectors of P(u = 1) per class) are linearly independent: these
/// have singular values 0.87, 1.21, 1.35 and 4.09. The profiles the
/// benchmark used before, linear in the item's index, had 0.008, 0.021,
/// 1.07 and 4.51 (two dimensions in effect), so that their FMA-GoM was
/// barely identified (docs/gom.md).
const TAU: [[f64; ITEMS]; 4] = [
    [
        -1.3, -2.0, -0.5, -1.7, -2.2, -0.5, 2.1, 1.5, 1.3, -1.4, 0.2, -1.1, -1.6, -2.0, -1.4, 2.1,
        1.6,
    ],
    [
        1.5, 1.5, -1.5, -1.0, 0.6, 1.2, 1.8, 1.9, -2.1, 0.5, 0.9, 0.0, -1.6, -0.1, -2.1, 2.2, 1.8,
    ],
    [
        0.2, -1.0, 2.0, 0.4, 1.9, 1.7, 0.0, -0.4, 0.5, -0.3, -1.7, -1.0, 1.6, -2.3, -2.3, 0.6, -1.1,
    ],
    [
        0.2, -0.1, -0.8, 2.5, -1.5, -0.4, -1.5, 0.7, -1.1, -0.7, 1.2, -0.9, 0.3, 2.0, -2.0, -2.2,
        -1.4,
    ],
];

/// Wide binary data from a 4-class FMA-GoM: per person random class logits
/// α ~ N(μ, Σ) (class 4 the reference), a factor η ~ N(0, 1); per item a
/// class drawn from softmax(α, 0) and P(u = 1) = expit(τ_qc + λ_q η)
/// ([`TAU`]).
pub(crate) fn sim_data() -> String {
    let mut sim = Sim::new(20_261_130);
    let mu = [0.5, 0.0, -0.3];
    // the Cholesky factor of Σ = [[1.5, .4, .2], [.4, 1.2, .3], [.2, .3, 1]]
    let l = cholesky3([[1.5, 0.4, 0.2], [0.4, 1.2, 0.3], [0.2, 0.3, 1.0]]);
    let frac = |q: usize| q as f64 / (ITEMS - 1) as f64;
    let mut out = String::new();
    for _ in 0..PERSONS {
        let z = [sim.normal(), sim.normal(), sim.normal()];
        let mut logits = [0.0; 4];
        for a in 0..3 {
            logits[a] = mu[a] + (0..=a).map(|b| l[a][b] * z[b]).sum::<f64>();
        }
        let m = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = logits.iter().map(|v| (v - m).exp()).collect();
        let total: f64 = e.iter().sum();
        let eta = sim.normal();
        let row: Vec<&str> = (0..ITEMS)
            .map(|q| {
                let mut u = sim.uniform() * total;
                let c = e.iter().position(|&p| {
                    u -= p;
                    u < 0.0
                });
                let lam = 0.6 + 0.8 * frac(q);
                let p = 1.0 / (1.0 + (-(TAU[c.unwrap_or(3)][q] + lam * eta)).exp());
                if sim.uniform() < p { "1" } else { "0" }
            })
            .collect();
        out.push_str(&row.join(" "));
        out.push('\n');
    }
    out
}

/// The lower Cholesky factor of a 3 × 3 covariance matrix.
fn cholesky3(s: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut l = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..=i {
            let d: f64 = (0..j).map(|k| l[i][k] * l[j][k]).sum();
            l[i][j] = if i == j {
                (s[i][i] - d).sqrt()
            } else {
                (s[i][j] - d) / l[j][j]
            };
        }
    }
    l
}

/// One benchmark model.
pub(crate) struct Case {
    pub(crate) stem: String,
    /// Classes (random class logits: classes − 1).
    classes: usize,
    /// With the factor (FMA-GoM).
    factor: bool,
    /// The INTEGRATION option, if any.
    integration: Option<&'static str>,
}

/// The input of `case`: wide items reshaped to long, item dummies, the
/// item logits as random slopes of the dummies (their means class-specific;
/// with the factor, measured by it with zero residual variances), and
/// correlated random class logits per person.
pub(crate) fn input(case: &Case) -> String {
    let q = ITEMS;
    let dummies: Vec<String> = (1..=q).map(|i| format!("d{i} = 0;")).collect();
    let ifs: Vec<String> = (1..=q)
        .map(|i| format!("  IF (item EQ {}) THEN d{i} = 1;", i - 1))
        .collect();
    let slopes: Vec<String> = (1..=q).map(|i| format!("  s{i} | u ON d{i};")).collect();
    let logits: Vec<String> = (1..case.classes).map(|k| format!("c#{k}")).collect();
    let mut withs = String::new();
    for a in 0..logits.len() {
        for b in a + 1..logits.len() {
            let _ = writeln!(withs, "  {} WITH {};", logits[a], logits[b]);
        }
    }
    let factor = if case.factor {
        format!("  f BY s1-s{q}*;  f@1;\n")
    } else {
        String::new()
    };
    let classes: String = (1..=case.classes)
        .map(|k| format!("  %c#{k}%\n  [s1-s{q}];\n"))
        .collect();
    let integration = case
        .integration
        .map_or(String::new(), |i| format!("\n  INTEGRATION = {i};"));
    format!(
        "TITLE: {stem}: {k}-class {what}, {PERSONS} persons x {q} binary items\n\
         DATA: FILE = gom17.dat;\n\
         DATA WIDETOLONG: WIDE = u1-u{q}; LONG = u; IDVARIABLE = person; REPETITION = item;\n\
         VARIABLE: NAMES = u1-u{q};\n  USEVARIABLES = u d1-d{q};\n  CATEGORICAL = u;\n\
         \x20 CLASSES = c({k});\n  CLUSTER = person;\n  WITHIN = u d1-d{q};\n\
         DEFINE: {dummies}\n{ifs}\n\
         ANALYSIS: TYPE = TWOLEVEL MIXTURE; ALGORITHM = INTEGRATION;\n  STARTS = 20 4;{integration}\n\
         MODEL:\n  %WITHIN%\n  %OVERALL%\n{slopes}\n  [u$1@0];\n\
         \x20 %BETWEEN%\n  %OVERALL%\n{factor}  s1-s{q}@0;\n  {logits};\n{withs}{classes}",
        stem = case.stem,
        k = case.classes,
        what = if case.factor { "FMA-GoM" } else { "GoM" },
        dummies = dummies.join(" "),
        ifs = ifs.join("\n"),
        slopes = slopes.join("\n"),
        logits = logits.join(" "),
    )
}

/// The benchmark's cases.
pub(crate) fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (classes, factor, name) in [(3, false, "gom3"), (4, true, "fmagom4")] {
        for (integration, tag) in [(None, "default"), (Some("MONTECARLO(500)"), "mc500")] {
            out.push(Case {
                stem: format!("{name}_{tag}"),
                classes,
                factor,
                integration,
            });
        }
    }
    out
}

/// A point to evaluate at: fixed parameters at their values, variances 1,
/// covariances 0.3, loadings 1, the item logits' means varying over items
/// and classes, the rest 0.
pub(crate) fn phi_of(model: &mlmix::spec::Model) -> Vec<f64> {
    model
        .parameters
        .iter()
        .enumerate()
        .map(|(i, p)| match (p.value, &p.kind) {
            (ParamValue::Fixed(v), _) => v,
            (_, ParamKind::RandomVariance { .. }) => 1.0,
            (_, ParamKind::RandomCovariance { .. }) => 0.3,
            (_, ParamKind::Loading { .. }) => 1.0,
            _ => match p.class {
                Some(c) => 1.5 - c as f64 + 0.05 * (i % 7) as f64,
                None => 0.0,
            },
        })
        .collect()
}

/// The least floating-point work of one evaluation of a GoM-type model
/// with `k` classes on `row_nodes` rows × nodes: the likelihood is, per
/// person and node, the product over the person's rows of Σ_c π_c P_qc (k
/// multiply-adds and a multiply: 2k + 1 flops per row and node); the
/// gradient and information add the posterior of each class per row and
/// node (a multiply by the node's weight over the row's sum, and k
/// multiply-adds into the weights: 2k + 2 more).
fn bound_flops(k: usize, row_nodes: f64, em: bool) -> f64 {
    let per = (2 * k + 1) as f64 + if em { (2 * k + 2) as f64 } else { 0.0 };
    per * row_nodes
}

/// The least floating-point work of one evaluation in the moment form
/// (`CpuBackend::moment_runs`): per person with n rows and outer node
/// (run), the product of its n rows' linear forms in K variables, a
/// multiply-add per variable and monomial of each degree up to n: 2K
/// C(n + K, K) flops, and its dot product with the shared moments, 2
/// C(n + K − 1, K − 1); the gradient and information add the reverse
/// pass (a multiply-add per variable and monomial for the derivatives by
/// the coefficients and as many for those by the running product: 4K
/// C(n + K, K)) and the weighted sum of the persons' polynomials (2 per
/// monomial).
fn moment_bound_flops(k: usize, n: usize, clusters_runs: f64, em: bool) -> f64 {
    let choose = |n: usize, r: usize| (0..r).fold(1.0, |c, i| c * (n - i) as f64 / (i + 1) as f64);
    let products = choose(n + k, k);
    let top = choose(n + k - 1, k - 1);
    let ll = 2.0 * k as f64 * products + 2.0 * top;
    let per = if em {
        ll + 4.0 * k as f64 * products + 2.0 * top
    } else {
        ll
    };
    per * clusters_runs
}

/// This machine's peak double-precision rate: cores × 16 flops per cycle
/// (two 4-wide fused multiply-adds, AVX2) × the clock of /proc/cpuinfo.
fn peak_flops() -> (f64, String) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mhz = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("cpu MHz"))
                .and_then(|l| l.split(':').nth(1))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .unwrap_or(3000.0);
    let peak = cores as f64 * 16.0 * mhz * 1e6;
    (
        peak,
        format!(
            "{cores} cores x 16 flops/cycle (AVX2 FMA) x {mhz:.0} MHz = {:.0} GFLOP/s",
            peak / 1e9
        ),
    )
}

/// Seconds of `n` evaluations' mean (at least one, up to `n` while under
/// 20 s in all).
pub(crate) fn time_evals(be: &dyn Backend, phi: &[f64], want: Want, n: usize) -> Result<f64> {
    time_evals_on(be, phi, want, None, n)
}

/// [`time_evals`] on the grid `adapt` gives (`None`: the plain grid).
pub(crate) fn time_evals_on(
    be: &dyn Backend,
    phi: &[f64],
    want: Want,
    adapt: Option<&Adaptation>,
    n: usize,
) -> Result<f64> {
    let t = Instant::now();
    let mut done = 0;
    while done < n && (done == 0 || t.elapsed().as_secs_f64() < 20.0) {
        be.evaluate_adapted(phi, want, adapt)
            .map_err(|e| anyhow!("evaluating: {e}"))?;
        done += 1;
    }
    Ok(t.elapsed().as_secs_f64() / done as f64)
}

/// One case's per-evaluation line.
fn per_evaluation(case: &Case, path: &Path, quick: bool, peak: f64) -> Result<String> {
    let loaded = mlmix::spec::load(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let (data, plan, grid) = mlmix::fit::engine_parts(&loaded, true).map_err(|e| anyhow!("{e}"))?;
    let row_nodes = (data.n_rows() * grid.n_nodes()) as f64;
    let persons = data.n_clusters() as f64;
    let phi = phi_of(&loaded.model);
    let fast = CpuBackend::new(plan.clone(), data.clone(), grid.clone(), None)
        .map_err(|e| anyhow!("{e}"))?;
    let general = CpuBackend::new(plan, data, grid.clone(), None)
        .map_err(|e| anyhow!("{e}"))?
        .general_loop();
    let ll = fast
        .evaluate(&phi, Want::LL)
        .map_err(|e| anyhow!("{e}"))?
        .loglik;
    let check = general
        .evaluate(&phi, Want::LL)
        .map_err(|e| anyhow!("{e}"))?
        .loglik;
    if (ll - check).abs() > 1e-8 * ll.abs() {
        return Err(anyhow!(
            "{}: the shortcuts' logL {ll} differs from the general loop's {check}",
            case.stem
        ));
    }
    // what a fit evaluates: the grid adapted to each person's posterior
    // (one adaptation from the plain grid's posterior, untimed)
    let adaptation = if loaded.model.latent.integration.adaptive {
        fast.adapt(&phi, None).map_err(|e| anyhow!("{e}"))?
    } else {
        None
    };
    let adapted = match adaptation {
        Some((a, _)) => {
            let mut out = Vec::new();
            for want in [Want::LL, Want::EM] {
                out.push(time_evals_on(&fast, &phi, want, Some(&a), 1)?);
            }
            format!("{:>9.3} {:>9.3}", out[0], out[1])
        }
        _ => format!("{:>9} {:>9}", "-", "-"),
    };
    let mut line = format!(
        "{:<16} {:>6} {:>14}",
        case.stem,
        grid.n_nodes(),
        thousands(row_nodes as usize)
    );
    // the general loop on the largest case takes minutes: not with --quick
    let big = row_nodes > 1e9;
    for (want, em) in [(Want::LL, false), (Want::EM, true)] {
        let new = time_evals(&fast, &phi, want, 3)?;
        let old = if quick && big {
            None
        } else {
            Some(time_evals(&general, &phi, want, 1)?)
        };
        let bound = match fast.moment_runs() {
            Some((runs, k)) => moment_bound_flops(k, ITEMS, persons * runs as f64, em) / peak,
            None => bound_flops(case.classes, row_nodes, em) / peak,
        };
        let _ = write!(
            line,
            " {:>9.3} {:>9} {:>7} {:>7.1} {:>7.0}",
            new,
            old.map_or("-".into(), |o| format!("{o:.3}")),
            old.map_or("-".into(), |o| format!("{:.1}", o / new)),
            new / row_nodes * 1e9,
            new / bound,
        );
    }
    let _ = write!(line, " {adapted}");
    Ok(line)
}

/// One whole fit within the budget: SIGINT at the budget (the fit then
/// stops at its next iteration and reports its best solution), killed 120 s
/// later.
fn whole_fit(exe: &Path, path: &Path, budget: f64) -> Result<String> {
    let json = path.with_extension("json");
    let _ = std::fs::remove_file(&json);
    let t = Instant::now();
    let mut child = Command::new(exe)
        .arg("fit")
        .arg(path)
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("running {}", exe.display()))?;
    let mut interrupted = false;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        let el = t.elapsed().as_secs_f64();
        if !interrupted && el > budget {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            interrupted = true;
        }
        if el > budget + 120.0 {
            child.kill()?;
            break child.wait()?;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let wall = t.elapsed().as_secs_f64();
    let v: Option<serde_json::Value> = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    // an interrupted fit exits with an error but writes its best solution
    let Some(v) = v.filter(|_| status.success() || interrupted) else {
        return Ok(format!(
            "{:<16} {wall:>8.1} s, no result (stopped at the budget of {budget:.0} s)",
            path.file_stem().and_then(|s| s.to_str()).unwrap_or("?")
        ));
    };
    let ll = v.get("loglikelihood").and_then(|x| x.as_f64());
    let converged = v.get("converged").and_then(|x| x.as_bool()) == Some(true);
    let evals = speed::evaluations(&v);
    let mut line = format!(
        "{:<16} {wall:>8.1} {:>14} {:>10}",
        path.file_stem().and_then(|s| s.to_str()).unwrap_or("?"),
        ll.map_or("-".into(), |l| format!("{l:.3}")),
        if interrupted {
            "budget"
        } else if converged {
            "yes"
        } else {
            "no"
        },
    );
    for e in &evals {
        let _ = write!(
            line,
            "  {} {} x {:.3} s",
            e.kind,
            e.count,
            e.seconds / e.count.max(1) as f64
        );
    }
    Ok(line)
}

/// The `gom` part: true (its numbers are reported, not judged; a logL of
/// the shortcuts that differs from the general loop's is an error).
pub(crate) fn bench_gom(opts: &Options, exe: &Path) -> Result<bool> {
    let dir = bench_data_dir()?;
    std::fs::write(dir.join("gom17.dat"), sim_data()).context("writing gom17.dat")?;
    let cases = cases();
    let mut paths = Vec::new();
    for case in &cases {
        let path = dir.join(format!("{}.inp", case.stem));
        std::fs::write(&path, input(case))
            .with_context(|| format!("writing {}", path.display()))?;
        paths.push(path);
    }
    let (peak, peak_text) = peak_flops();
    println!(
        "\nGoM and FMA-GoM on {PERSONS} persons x {ITEMS} binary items (long rows: {})",
        thousands(PERSONS * ITEMS)
    );
    println!(
        "arithmetic bound: {peak_text}; per row and node 2K+1 flops (logL), 4K+3 (EM); \
         in the moment form per person and outer node 2K C(n+K,K) + 2 C(n+K-1,K-1) (logL), \
         6K C(n+K,K) + 4 C(n+K-1,K-1) (EM), n = {ITEMS} items"
    );
    println!(
        "\n1. one evaluation (seconds): with the shortcuts for long data (new) and the general loop (old)\n"
    );
    println!(
        "{:<16} {:>6} {:>14} {:>9} {:>9} {:>7} {:>7} {:>7} {:>9} {:>9} {:>7} {:>7} {:>7} {:>9} {:>9}",
        "case",
        "nodes",
        "rows x nodes",
        "logL new",
        "old",
        "old/new",
        "ns/rn",
        "x bound",
        "EM new",
        "old",
        "old/new",
        "ns/rn",
        "x bound",
        "adapt LL",
        "adapt EM"
    );
    for (case, path) in cases.iter().zip(&paths) {
        eprintln!("gom: timing evaluations of {}", case.stem);
        println!("{}", per_evaluation(case, path, opts.quick, peak)?);
    }
    let budget = std::env::var(BUDGET_VAR)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(600.0);
    println!(
        "\n2. whole fits, STARTS = 20 4 ({BUDGET_VAR} = {budget:.0} s each)\n\n{:<16} {:>8} {:>14} {:>10}  evaluations: kind count x seconds each",
        "case", "seconds", "logL", "converged"
    );
    for path in &paths {
        eprintln!("gom: fitting {}", path.display());
        println!("{}", whole_fit(exe, path, budget)?);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The classes' profiles are linearly independent, well away from
    /// the near-collinear profiles that made the benchmark's FMA-GoM
    /// barely identified.
    #[test]
    fn the_class_profiles_are_linearly_independent() {
        let p = nalgebra::DMatrix::from_fn(ITEMS, 4, |q, c| 1.0 / (1.0 + (-TAU[c][q]).exp()));
        let sv = p.singular_values();
        let smallest = sv.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(smallest > 0.5, "singular values {sv}");
    }

    /// The data are persons × items of 0 and 1, the same for every call.
    #[test]
    fn sim_data_is_seeded_binary_items() {
        let text = sim_data();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), PERSONS);
        assert!(lines.iter().all(|l| {
            let v: Vec<&str> = l.split(' ').collect();
            v.len() == ITEMS && v.iter().all(|x| *x == "0" || *x == "1")
        }));
        assert_eq!(text, sim_data());
    }
}
