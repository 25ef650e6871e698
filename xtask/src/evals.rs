//! `cargo xtask evals FILE [N [KINDS]]`: the time of one evaluation of each kind a
//! fit asks for (log-likelihood, gradient, EM step; with the posterior
//! moments an adaptation reads; the MLR standard errors' meat, also
//! without the moment form as `meat-blocked`), on the model's grid and, for an adaptive
//! rule, on the grid adapted once to the posterior at the same parameters,
//! at the bench's parameter values (`gom::phi_of`). For profiling one
//! model's evaluations under `perf` without running a whole fit.

use anyhow::{Result, anyhow};
use mlmix_integrate::{Backend, CpuBackend, Want};

use crate::gom::{phi_of, time_evals_on};

/// Runs the task on `args` (the input file, then optionally the number of
/// evaluations of each kind, default 3, fewer past 20 s, and the kinds to
/// time, comma separated, default all).
pub(crate) fn evals(args: &[String]) -> Result<bool> {
    let path = args
        .first()
        .ok_or_else(|| anyhow!("usage: cargo xtask evals FILE [N [KINDS]]"))?;
    let n: usize = match args.get(1) {
        Some(s) => s
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| anyhow!("N must be a positive count: '{s}'"))?,
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
    let be = CpuBackend::new(plan.clone(), data.clone(), grid.clone(), None)
        .map_err(|e| anyhow!("{e}"))?;
    // the same model without the moment form, for the kinds named `-blocked`
    let blocked = CpuBackend::new(plan, data, grid, None)
        .map_err(|e| anyhow!("{e}"))?
        .without_moment_form();
    if let Some((runs, k)) = be.moment_runs() {
        println!("moment form: {runs} runs, {k} classes");
    }
    let phi = phi_of(&loaded.model);
    let moments = Want {
        moments: true,
        ..Want::EM
    };
    let meat = Want {
        meat: true,
        ..Want::GRADIENT
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
        ("meat", meat),
        ("meat-blocked", meat),
    ] {
        if args
            .get(2)
            .is_some_and(|k| !k.split(',').any(|k| k == name))
        {
            continue;
        }
        let be = if name.ends_with("-blocked") {
            &blocked
        } else {
            &be
        };
        // the plain grid, then the adapted one where the rule adapts (the
        // posterior moments only matter to an adaptation)
        let mut line = format!("{name:<12}");
        let grids = std::iter::once(None).chain(adaptation.as_ref().map(Some));
        for a in grids {
            if a.is_none() && want.moments {
                line.push_str(&format!(" {:>9}", "-"));
                continue;
            }
            line.push_str(&format!(" {:>9.4}", time_evals_on(be, &phi, want, a, n)?));
        }
        println!("{line}");
    }
    Ok(true)
}
