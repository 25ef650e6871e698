//! `cargo xtask evals FILE [N [KINDS]]`: the time of one evaluation of each kind a
//! fit asks for (log-likelihood, gradient, EM step; with the posterior
//! moments an adaptation reads; the MLR standard errors' meat, also
//! without the moment form as `meat-blocked`), on the model's grid and, for an adaptive
//! rule, on the grid adapted once to the posterior at the same parameters,
//! at the bench's parameter values (`gom::phi_of`). For profiling one
//! model's evaluations under `perf` without running a whole fit.
//!
//! `cargo xtask evals FILE ll`: the log-likelihood at the input's starting
//! values (`*v`), to compare points along a fit's path or integration rules.
//!
//! `cargo xtask evals FILE fd`: the analytic gradient against central
//! differences of the log-likelihood, per free parameter, at the input's
//! starting values (`*v`; the bench's values elsewhere), on the grid
//! adapted to the posterior there: what a quasi-Newton phase that crawls
//! would first suspect.
//!
//! `cargo xtask evals FILE newton`: the observed information there (central
//! differences of the analytic gradient), its eigenvalues and flattest
//! directions, and the log-likelihood along the Newton step: whether a
//! crawl is a non-concave or a flat surface.

use anyhow::{Result, anyhow};
use std::sync::Arc;

use mlmix_integrate::{Adaptation, Backend, CpuBackend, Want};
use mlmix_optim::{FreeEval, Problem};
use nalgebra::{DMatrix, DVector};

use crate::gom::{phi_of, time_evals_on};

/// Runs the task on `args` (the input file, then optionally the number of
/// evaluations of each kind, default 3, fewer past 20 s, and the kinds to
/// time, comma separated, default all).
pub(crate) fn evals(args: &[String]) -> Result<bool> {
    let path = args
        .first()
        .ok_or_else(|| anyhow!("usage: cargo xtask evals FILE [N [KINDS]]"))?;
    if args.get(1).map(String::as_str) == Some("fd") {
        return gradient_check(path);
    }
    if args.get(1).map(String::as_str) == Some("ll") {
        return loglik_at_starts(path);
    }
    if args.get(1).map(String::as_str) == Some("newton") {
        return newton_check(path);
    }
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
    let adaptation = adapted_once(&be, &loaded.model, &phi)?;
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

/// The parameter vector at the input's starting values where given, the
/// bench's values (`gom::phi_of`) elsewhere.
fn phi_of_starts(model: &mlmix::spec::Model) -> Vec<f64> {
    let bench = phi_of(model);
    model
        .parameters
        .iter()
        .zip(bench)
        .map(|(p, b)| match p.value {
            mlmix::spec::ParamValue::Free(_) => p.start.unwrap_or(b),
            _ => b,
        })
        .collect()
}

/// The grid adapted once to the posterior at `phi` from the plain one,
/// when the model's rule is adaptive.
fn adapted_once(
    be: &CpuBackend,
    model: &mlmix::spec::Model,
    phi: &[f64],
) -> Result<Option<Adaptation>> {
    if !model.latent.integration.adaptive {
        return Ok(None);
    }
    Ok(be
        .adapt(phi, None)
        .map_err(|e| anyhow!("{e}"))?
        .map(|(a, _)| a))
}

/// A model's backend, its starting values and the grid adapted there.
struct AtStarts {
    loaded: mlmix::spec::Loaded,
    be: CpuBackend,
    phi: Vec<f64>,
    adaptation: Option<Arc<Adaptation>>,
}

impl AtStarts {
    /// The fit's own map from free parameters to phi, on the adapted grid.
    fn problem(&self) -> Problem<'_> {
        Problem {
            backend: &self.be,
            map: mlmix::starts::param_map(&self.loaded.model, &self.loaded.data),
            n_obs: 0.0,
            adaptive: false,
            fixed_adapt: self.adaptation.clone(),
        }
    }

    /// The free parameters at the starting values.
    fn theta(&self) -> DVector<f64> {
        let free = &self.loaded.model.free;
        DVector::from_iterator(free.len(), free.iter().map(|f| self.phi[f.members[0]]))
    }
}

/// The backend of the input at `path`, at its starting values
/// ([`phi_of_starts`]), with the grid adapted to the posterior there when
/// the model's rule is adaptive.
fn at_starts(path: &str) -> Result<AtStarts> {
    let loaded =
        mlmix::spec::load(std::path::Path::new(path)).map_err(|e| anyhow!("{path}: {e}"))?;
    let (data, plan, grid) = mlmix::fit::engine_parts(&loaded, true).map_err(|e| anyhow!("{e}"))?;
    let be = CpuBackend::new(plan, data, grid, None).map_err(|e| anyhow!("{e}"))?;
    let phi = phi_of_starts(&loaded.model);
    let adaptation = adapted_once(&be, &loaded.model, &phi)?.map(Arc::new);
    Ok(AtStarts {
        loaded,
        be,
        phi,
        adaptation,
    })
}

/// The log-likelihood and, with `Want::GRADIENT`, its gradient in the free
/// parameters at `theta`; an error where the parameters are outside the
/// model's domain.
fn eval_free(problem: &Problem<'_>, theta: &DVector<f64>, want: Want) -> Result<FreeEval> {
    let ev = problem
        .evaluate(theta.as_slice(), want)
        .map_err(|e| anyhow!("{e}"))?;
    if !ev.loglik.is_finite() {
        return Err(anyhow!("the log-likelihood is not finite at these values"));
    }
    Ok(ev)
}

/// `cargo xtask evals FILE ll`: the log-likelihood at the input's starting
/// values (on the grid adapted there, then adapted once more from that
/// posterior), to compare points or integration rules.
fn loglik_at_starts(path: &str) -> Result<bool> {
    let AtStarts {
        be,
        phi,
        adaptation,
        ..
    } = at_starts(path)?;
    let ll = be
        .evaluate_adapted(&phi, Want::LL, adaptation.as_deref())
        .map_err(|e| anyhow!("{e}"))?
        .loglik;
    println!("logL {ll:.6}");
    if let Some(a) = &adaptation {
        let again = be
            .adapt(&phi, Some(a))
            .map_err(|e| anyhow!("{e}"))?
            .map(|(a, _)| a);
        let ll2 = be
            .evaluate_adapted(&phi, Want::LL, again.as_ref())
            .map_err(|e| anyhow!("{e}"))?
            .loglik;
        println!("logL {ll2:.6} (adapted twice)");
    }
    Ok(true)
}

/// `cargo xtask evals FILE fd` (see the module's doc): prints, per free
/// parameter, the analytic derivative, central differences at two steps
/// and their differences.
fn gradient_check(path: &str) -> Result<bool> {
    let s = at_starts(path)?;
    let problem = s.problem();
    let theta = s.theta();
    let ev = eval_free(&problem, &theta, Want::GRADIENT)?;
    println!("logL {:.6}", ev.loglik);
    println!(
        "{:<28} {:>14} {:>14} {:>14} {:>10}",
        "parameter", "analytic", "fd 1e-3", "fd 1e-4", "diff"
    );
    for (j, f) in s.loaded.model.free.iter().enumerate() {
        let mut fd = [0.0; 2];
        for (k, h) in [1e-3, 1e-4].into_iter().enumerate() {
            let step = h * theta[j].abs().max(1.0);
            let (mut up, mut dn) = (theta.clone(), theta.clone());
            up[j] += step;
            dn[j] -= step;
            let ll = |t: &DVector<f64>| eval_free(&problem, t, Want::LL).map(|e| e.loglik);
            fd[k] = (ll(&up)? - ll(&dn)?) / (2.0 * step);
        }
        let g = ev.gradient[j];
        println!(
            "{:<28} {:>14.6} {:>14.6} {:>14.6} {:>10.2e}",
            f.name,
            g,
            fd[0],
            fd[1],
            g - fd[0]
        );
    }
    Ok(true)
}

/// `cargo xtask evals FILE newton`: the observed information by central
/// differences of the gradient over the free parameters, its eigenvalues,
/// and the log-likelihood along the Newton step from the starting values.
fn newton_check(path: &str) -> Result<bool> {
    let s = at_starts(path)?;
    let model = &s.loaded.model;
    let problem = s.problem();
    let theta = s.theta();
    let nf = model.free.len();
    let grad = |t: &DVector<f64>| -> Result<(f64, DVector<f64>)> {
        let ev = eval_free(&problem, t, Want::GRADIENT)?;
        Ok((ev.loglik, ev.gradient))
    };
    let (ll0, g0) = grad(&theta)?;
    println!("logL {ll0:.6}, |g| {:.4e}", g0.amax());
    let mut h = DMatrix::zeros(nf, nf);
    for j in 0..nf {
        let step = 1e-4 * theta[j].abs().max(1.0);
        let (mut up, mut dn) = (theta.clone(), theta.clone());
        up[j] += step;
        dn[j] -= step;
        let (_, gu) = grad(&up)?;
        let (_, gd) = grad(&dn)?;
        h.set_column(j, &(-(gu - gd) / (2.0 * step)));
    }
    let h = (&h + h.transpose()) * 0.5;
    let eig = nalgebra::SymmetricEigen::new(h.clone());
    let mut ev: Vec<f64> = eig.eigenvalues.iter().copied().collect();
    ev.sort_by(f64::total_cmp);
    println!("observed information eigenvalues: {:?}", &ev);
    // the directions of the smallest curvature, by their largest entries
    let mut order: Vec<usize> = (0..nf).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[a].total_cmp(&eig.eigenvalues[b]));
    for &k in order.iter().take(4) {
        let v = eig.eigenvectors.column(k);
        let mut idx: Vec<usize> = (0..nf).collect();
        idx.sort_by(|&a, &b| v[b].abs().total_cmp(&v[a].abs()));
        let top: Vec<String> = idx
            .iter()
            .take(6)
            .map(|&i| format!("{} {:+.3}", model.free[i].name, v[i]))
            .collect();
        println!(
            "  eigenvalue {:.3e}: {}",
            eig.eigenvalues[k],
            top.join(", ")
        );
    }
    let Some(hi) = h.clone().try_inverse() else {
        println!("singular");
        return Ok(true);
    };
    let d = &hi * &g0;
    println!("predicted gain of the Newton step {:.6}", 0.5 * g0.dot(&d));
    for (j, (f, di)) in model.free.iter().zip(d.iter()).enumerate() {
        println!("  {:<28} {:>12.5} {:>12.5}", f.name, theta[j], di);
    }
    for t in [1.0, 0.5, 0.25, 0.125] {
        match grad(&(&theta + &d * t)) {
            Ok((ll, g)) => {
                println!(
                    "step {t}: logL {ll:.6} (gain {:.6}), |g| {:.4e}",
                    ll - ll0,
                    g.amax()
                )
            }
            Err(e) => println!("step {t}: {e}"),
        }
    }
    Ok(true)
}
