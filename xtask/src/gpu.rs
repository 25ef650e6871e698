//! The `gpu` part of `cargo xtask bench`: the GPU backend against the CPU
//! backend in one run, on a ladder of sizes (clusters x nodes x classes x
//! items): seconds per log-likelihood evaluation on each, and per
//! evaluation with the gradient (the device's own), integrand terms
//! per second (rows x passes x class combinations x terms), their ratio,
//! and the two log-likelihoods. Without a GPU adapter it says so and does
//! nothing; on Mesa's lavapipe it measures the software rasteriser (the
//! CPU twice over: no speed to expect).
//!
//! The rungs: a 3-class LCA of 20 binary items on 10,000, 100,000 and
//! (without `--quick`) 1,000,000 rows (one node), and the GoM benchmark's
//! 3-class GoM (441 nodes), 4-class FMA-GoM with MONTECARLO(500) and
//! 4-class FMA-GoM at the default 17⁴ nodes on 7,000 persons x 17 items
//! (`gom.rs`), each on its plain grid. The 3-class GoM and the default
//! FMA-GoM take the moment form on both backends (the device's
//! log-likelihood in shaders/moment.wgsl; its gradient, and the Monte
//! Carlo FMA-GoM's everything, in the general loop).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use mlmix_integrate::gpu::shared_device;
use mlmix_integrate::{Backend, CpuBackend, GpuBackend, Want};
use mlmix_tests::Sim;

use super::{Options, bench_data_dir, gom, thousands};

/// A 3-class LCA of 20 binary items on `n` simulated rows (few of them
/// alike, so that merging identical rows leaves most), written to `dir`;
/// returns the input's path.
fn lca_input(dir: &Path, n: usize) -> Result<PathBuf> {
    let mut sim = Sim::new(n as u64);
    let mut text = String::new();
    for _ in 0..n {
        let c = sim.categorical(&[0.4, 0.35, 0.25]);
        let row: Vec<String> = (0..20)
            .map(|i| {
                let p = match c {
                    0 => 0.8 - 0.02 * i as f64,
                    1 => 0.2 + 0.03 * i as f64,
                    _ => 0.5,
                };
                if sim.uniform() < p { "1" } else { "0" }.to_string()
            })
            .collect();
        let _ = writeln!(text, "{}", row.join(" "));
    }
    let data = dir.join(format!("gpu_lca_{n}.dat"));
    std::fs::write(&data, text).context("writing the LCA data")?;
    let input = dir.join(format!("gpu_lca_{n}.inp"));
    std::fs::write(
        &input,
        format!(
            "TITLE: 3-class LCA, {n} rows\nDATA: FILE = gpu_lca_{n}.dat;\n\
             VARIABLE: NAMES = u1-u20; CATEGORICAL = u1-u20; CLASSES = c(3);\n\
             ANALYSIS: TYPE = MIXTURE;\n"
        ),
    )
    .context("writing the LCA input")?;
    Ok(input)
}

/// The most integrand terms of a rung whose gradient is timed on a
/// software adapter.
const SOFTWARE_GRADIENT_TERMS: f64 = 2e7;

/// One rung: the CPU's and the GPU's seconds per evaluation and
/// log-likelihoods, as a table line.
fn rung(name: &str, path: &Path, reps: usize) -> Result<String> {
    let dev = shared_device(true).map_err(|e| anyhow!("{e}"))?;
    let loaded = mlmix::spec::load(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let (data, plan, grid) = mlmix::fit::engine_parts(&loaded, true).map_err(|e| anyhow!("{e}"))?;
    let phi = gom::phi_of(&loaded.model);
    let cpu = CpuBackend::new(plan.clone(), data.clone(), grid.clone(), None)
        .map_err(|e| anyhow!("{e}"))?;
    let inner = CpuBackend::new(plan.clone(), data.clone(), grid.clone(), None)
        .map_err(|e| anyhow!("{e}"))?;
    let t = Instant::now();
    let gpu = GpuBackend::new(inner, dev.clone()).map_err(|e| anyhow!("{e}"))?;
    let upload = t.elapsed().as_secs_f64();
    gpu.on_device()
        .map_err(|e| anyhow!("{name}: not on the GPU: {e}"))?;
    let ll_cpu = cpu
        .evaluate(&phi, Want::LL)
        .map_err(|e| anyhow!("{e}"))?
        .loglik;
    let ll_gpu = gpu
        .evaluate(&phi, Want::LL)
        .map_err(|e| anyhow!("{e}"))?
        .loglik;
    let t_cpu = gom::time_evals(&cpu, &phi, Want::LL, reps)?;
    let t_gpu = gom::time_evals(&gpu, &phi, Want::LL, reps)?;
    // with the gradient (the second sweep), what quasi-Newton steps ask
    // for; on the device itself, whether its gradient is resolved or not
    let passes = grid.n_nodes() * plan.n_between().max(1);
    let terms = (data.n_rows() * passes * plan.n_combos / plan.n_between().max(1)
        * plan.terms.len()) as f64;
    let g_cpu = gom::time_evals(&cpu, &phi, Want::GRADIENT, reps)?;
    // (lavapipe's second sweep runs about 2e5 terms per second: the
    // larger rungs would take half an hour; NaN prints as such. The
    // moment form's costs its polynomials, not its terms: timed.)
    let moment = gpu.moment_form_on_device() && gpu.moment_gradient_on_device();
    let g_gpu = if dev.is_software() && terms > SOFTWARE_GRADIENT_TERMS && !moment {
        f64::NAN
    } else {
        let t = Instant::now();
        let mut done = 0;
        while done < reps.max(1) && (done == 0 || t.elapsed().as_secs_f64() < 20.0) {
            gpu.device_eval(&phi, Want::GRADIENT, None)
                .map_err(|e| anyhow!("{e}"))?;
            done += 1;
        }
        t.elapsed().as_secs_f64() / done as f64
    };
    Ok(format!(
        "{name:<14} {:>9} {:>7} {:>7} {:>6} {:>15} {:>9.4} {:>9.4} {:>9.2e} {:>9.2e} {:>7.2} {:>9.4} {:>9.4} {:>7.2} {:>8.2} {:>16.6} {:>16.6}",
        thousands(data.n_clusters()),
        passes,
        plan.n_combos,
        plan.terms.len(),
        thousands(terms as usize),
        t_cpu,
        t_gpu,
        terms / t_cpu,
        terms / t_gpu,
        t_cpu / t_gpu,
        g_cpu,
        g_gpu,
        g_cpu / g_gpu,
        upload,
        ll_cpu,
        ll_gpu,
    ))
}

/// The ladder, printed as a table.
pub(crate) fn bench_gpu(opts: &Options, _exe: &Path) -> Result<bool> {
    let dev = match shared_device(true) {
        Ok(d) => d,
        Err(e) => {
            println!("\nGPU benchmark: skipped, no GPU adapter ({e})");
            return Ok(true);
        }
    };
    let dir = bench_data_dir()?;
    let mut rungs: Vec<(String, PathBuf)> = Vec::new();
    // (a million rows only without --quick: its data take seconds to write)
    let sizes: &[usize] = if opts.quick {
        &[10_000, 100_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    };
    for &n in sizes {
        rungs.push((format!("lca_{}k", n / 1000), lca_input(&dir, n)?));
    }
    std::fs::write(dir.join("gom17.dat"), gom::sim_data()).context("writing gom17.dat")?;
    for case in gom::cases() {
        if ["gom3_default", "fmagom4_mc500", "fmagom4_default"].contains(&case.stem.as_str()) {
            let path = dir.join(format!("gpu_{}.inp", case.stem));
            let text =
                gom::input(&case).replace("STARTS = 20 4;", "STARTS = 20 4; ADAPTIVE = OFF;");
            std::fs::write(&path, text).context("writing a GoM input")?;
            rungs.push((case.stem.clone(), path));
        }
    }
    println!(
        "\nGPU against CPU, log-likelihood evaluations, then with the gradient (\"grad\"; seconds \
         each; terms = rows x passes x combinations x terms)\nGPU: {}\nCPU: {} threads\n",
        dev.describe(),
        rayon::current_num_threads()
    );
    println!(
        "{:<14} {:>9} {:>7} {:>7} {:>6} {:>15} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9} {:>9} {:>7} {:>8} {:>16} {:>16}",
        "rung",
        "clusters",
        "passes",
        "combos",
        "terms",
        "integrand",
        "cpu s",
        "gpu s",
        "cpu t/s",
        "gpu t/s",
        "cpu/gpu",
        "cpu grad",
        "gpu grad",
        "cpu/gpu",
        "upload s",
        "logL cpu",
        "logL gpu"
    );
    let reps = if opts.quick { 1 } else { 3 };
    for (name, path) in &rungs {
        eprintln!("gpu: {name}");
        println!("{}", rung(name, path, reps)?);
    }
    Ok(true)
}
