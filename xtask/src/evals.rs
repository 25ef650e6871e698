//! `cargo xtask evals FILE [N [KINDS]]`: the time of one evaluation of each kind a
//! fit asks for (log-likelihood, gradient, EM step; with the posterior
//! moments an adaptation reads), on the model's grid and, for an adaptive
//! rule, on the grid adapted once to the posterior at the same parameters,
//! at the bench's parameter values (`gom::phi_of`). For profiling one
//! model's evaluations under `perf` without running a whole fit.

use std::time::Instant;

use anyhow::{Result, anyhow};
use mlmix_integrate::{Backend, CpuBackend, Want};

use crate::gom::phi_of;

/// Runs the task on `args` (the input file, then optionally the number of
/// evaluations of each kind, default 3, and the kinds to time, comma
/// separated, default all).
pub(crate) fn evals(args: &[String]) -> Result<bool> {
    let path = args
        .first()
        .ok_or_else(|| anyhow!("usage: cargo xtask evals FILE [N [KINDS]]"))?;
    let n: usize = match args.get(1) {
        Some(s) => s.parse().map_err(|_| anyhow!("N must be a count: '{s}'"))?,
        None => 3,
    };
    let loaded =
        mlmix::spec::load(std::path::Path::new(path)).map_err(|e| anyhow!("{path}: {e}"))?;
    let (data, plan, grid) = mlmix::fit::engine_parts(&loaded, true).map_err(|e| anyhow!("{e}"))?;
    println!(
        "{} clusters, {} rows, {} nodes, {} dims",
        data.n_clusters(),
        data.n_rows(),
        grid.n_nodes(),
        plan.dims
    );
    let be = CpuBackend::new(plan, data, grid, None).map_err(|e| anyhow!("{e}"))?;
    if let Some((runs, k)) = be.moment_runs() {
        println!("moment form: {runs} runs, {k} classes");
    }
    let phi = phi_of(&loaded.model);
    let moments = Want {
        moments: true,
        ..Want::EM
    };
    let adaptation = if loaded.model.latent.integration.adaptive {
        be.adapt(&phi, None)
            .map_err(|e| anyhow!("{e}"))?
            .map(|(a, _)| a)
    } else {
        None
    };
    for (name, want) in [
        ("loglik", Want::LL),
        ("gradient", Want::GRADIENT),
        ("em", Want::EM),
        ("em+moments", moments),
    ] {
        if args
            .get(2)
            .is_some_and(|k| !k.split(',').any(|k| k == name))
        {
            continue;
        }
        let mut line = format!("{name:<12}");
        for a in [None, adaptation.as_ref()] {
            if a.is_none() && adaptation.is_some() && name == "em+moments" {
                line.push_str(&format!(" {:>9}", "-"));
                continue;
            }
            let t = Instant::now();
            for _ in 0..n {
                be.evaluate_adapted(&phi, want, a)
                    .map_err(|e| anyhow!("{e}"))?;
            }
            line.push_str(&format!(" {:>9.4}", t.elapsed().as_secs_f64() / n as f64));
        }
        println!("{line}");
    }
    Ok(true)
}
