//! Fitting a checked model: the engine data and plan, the backend, random
//! starts, the best solution's standard errors, and the derived results.

use std::sync::Arc;

use mlmix_integrate::{
    Backend, BackendChoice, BackendError, CpuBackend, EvalCount, Grid, Method, Want,
};
use mlmix_kernels::{EngineData, Plan, PlanError, link};
use mlmix_optim::{
    Observer, Problem, SeError, Settings, StartPoint, covariance, observed_information,
    run_starts_staged, se::score_conditioning,
};
use mlmix_spec::{
    Estimator, IntegrationMethod, Link, Loaded, Model, ParamKind, ParamValue, RandomKind, Scale,
};
use nalgebra::DMatrix;
use statrs::distribution::{ContinuousCDF, Normal};

use crate::results::*;
use crate::starts::{StartBuilder, param_map, start_seed};

/// Options of a fit that are not in the input file.
#[derive(Debug, Clone, Default)]
pub struct FitOptions {
    /// Overrides STSEED.
    pub seed: Option<u64>,
    /// Which backend.
    pub backend: BackendChoice,
    /// Do not merge identical rows (for testing the engine on raw rows).
    pub no_collapse: bool,
    /// Overrides [`COARSE_INITIAL_ABOVE`] (for tests on small models).
    pub coarse_initial_above: Option<usize>,
    /// Overrides [`AUTO_GPU_TERMS`] (for tests on small models).
    pub auto_gpu_terms: Option<f64>,
}

/// Why a fit failed (a fit that did not converge is not a failure: it is
/// said in the result).
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    /// The model cannot be compiled.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// No start gave a finite log-likelihood.
    #[error("no starting values gave a finite log-likelihood: {0}")]
    NoSolution(String),
    /// The integration grid would have more than [`MAX_NODES`] nodes.
    #[error(
        "{points} integration points in each of {dims} dimensions make {nodes:.3e} nodes per cluster, more than {MAX_NODES}: use fewer points, or INTEGRATION = MONTECARLO(n)"
    )]
    TooManyNodes {
        /// Points per dimension.
        points: usize,
        /// Integration dimensions.
        dims: usize,
        /// Nodes per cluster.
        nodes: f64,
    },
}

/// Integrand terms per evaluation (rows x nodes x class combinations x
/// terms, [`CpuBackend::integrand_terms`]) from which `--backend auto`
/// tries a hardware GPU. On an NVIDIA H200 against its host's 16 cores the
/// device evaluated an LCA of 6.2e5 terms 1.9 times as fast and one of
/// 5.7e6 terms 4.9 times as fast as the CPU (docs/gpu.md); below 1e7 a
/// fit's evaluations take milliseconds on the CPU, and opening a device
/// and moving the data would cost more than the device saves.
pub const AUTO_GPU_TERMS: f64 = 1e7;

/// Builds the backend for a choice (see [`make_backend_above`]), `auto`
/// trying a GPU from [`AUTO_GPU_TERMS`] integrand terms.
pub fn make_backend(
    choice: BackendChoice,
    plan: Arc<Plan>,
    data: Arc<EngineData>,
    grid: Grid,
) -> Result<Box<dyn Backend>, BackendError> {
    make_backend_above(choice, AUTO_GPU_TERMS, plan, data, grid)
}

/// Builds the backend for a choice: `Cpu` the CPU; `Gpu` a GPU backend on
/// any adapter, a software one too (an error without one); `Auto` a GPU
/// backend on a hardware adapter where [`auto_wants_gpu`] says the model
/// is worth it (from `threshold` integrand terms), the CPU otherwise. The
/// backend's `describe` says which ran and, where `auto` considered a GPU
/// and did not take it, why.
pub fn make_backend_above(
    choice: BackendChoice,
    threshold: f64,
    plan: Arc<Plan>,
    data: Arc<EngineData>,
    grid: Grid,
) -> Result<Box<dyn Backend>, BackendError> {
    let cpu = CpuBackend::new(plan.clone(), data.clone(), grid.clone(), None)?;
    match choice {
        BackendChoice::Cpu => Ok(Box::new(cpu)),
        BackendChoice::Gpu => gpu_backend(cpu, true),
        BackendChoice::Auto => {
            let shortcut = if cpu.moment_form() {
                Some(Shortcut::MomentForm)
            } else if cpu.blocked() {
                Some(Shortcut::Blocked)
            } else {
                None
            };
            if let Err(why) = auto_wants_gpu(cpu.integrand_terms(), threshold, shortcut) {
                return Ok(Box::new(match why {
                    None => cpu,
                    Some(why) => cpu.with_note(why),
                }));
            }
            // (the GPU backend runs on a CPU backend of its own)
            let inner = CpuBackend::new(plan, data, grid, None)?;
            match gpu_backend(inner, false) {
                Ok(gpu) => Ok(gpu),
                Err(e) => {
                    let terms = cpu.integrand_terms();
                    let why = format!("{terms:.1e} integrand terms per evaluation, but {e}");
                    Ok(Box::new(cpu.with_note(why)))
                }
            }
        }
    }
}

/// The backend `options` ask for.
fn options_backend(
    options: &FitOptions,
    plan: Arc<Plan>,
    data: Arc<EngineData>,
    grid: Grid,
) -> Result<Box<dyn Backend>, BackendError> {
    let threshold = options.auto_gpu_terms.unwrap_or(AUTO_GPU_TERMS);
    make_backend_above(options.backend, threshold, plan, data, grid)
}

/// A shortcut of the CPU backend that skips most integrand terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortcut {
    /// The blocked product form (long data whose rows share the class
    /// logits' dimensions), which the GPU backend does not have.
    Blocked,
    /// The moment form (the class logits through moments every cluster
    /// shares), which the GPU backend has but which is not yet measured on
    /// a hardware GPU.
    MomentForm,
}

/// Whether `--backend auto` tries a GPU for a model of `terms` integrand
/// terms per evaluation: `Ok` from `threshold` terms, unless the CPU
/// backend takes a `shortcut` (the 4-class FMA-GoM at its default
/// integration took 0.75 s per evaluation on 2 CPU cores and more than
/// 15 s on an H200's general loop, docs/gpu.md; the device's moment form
/// is not measured on hardware yet). `Err(None)` for a model too small to
/// consider a GPU at all (the report says only `cpu`), `Err(Some(why))`
/// otherwise.
pub fn auto_wants_gpu(
    terms: f64,
    threshold: f64,
    shortcut: Option<Shortcut>,
) -> Result<(), Option<String>> {
    let head = format!("{terms:.1e} integrand terms per evaluation, but");
    match shortcut {
        _ if terms < threshold => Err(None),
        None => Ok(()),
        Some(Shortcut::Blocked) => Err(Some(format!(
            "{head} the CPU's blocked product form skips most of them, which the GPU backend does not have"
        ))),
        Some(Shortcut::MomentForm) => Err(Some(format!(
            "{head} the CPU's moment form skips most of them; the GPU backend's moment form (--backend gpu) is not measured on a hardware GPU yet"
        ))),
    }
}

#[cfg(feature = "gpu")]
fn gpu_backend(cpu: CpuBackend, software: bool) -> Result<Box<dyn Backend>, BackendError> {
    let flag = if software { "--backend gpu: " } else { "" };
    let dev = mlmix_integrate::gpu::shared_device(software)
        .map_err(|e| BackendError::Unsupported(format!("{flag}{e}")))?;
    let gpu = mlmix_integrate::GpuBackend::new(cpu, dev)?;
    if !software {
        // auto takes the device only for what it evaluates
        gpu.on_device().map_err(|why| {
            BackendError::Unsupported(format!("the GPU backend does not evaluate {why} yet"))
        })?;
    }
    Ok(Box::new(gpu))
}

#[cfg(not(feature = "gpu"))]
fn gpu_backend(_cpu: CpuBackend, software: bool) -> Result<Box<dyn Backend>, BackendError> {
    let flag = if software { "--backend gpu: " } else { "" };
    Err(BackendError::Unsupported(format!(
        "{flag}this build has no GPU backend (cargo feature gpu)"
    )))
}

/// The integration grid of a model: one dimension per random effect of the
/// plan ([`Plan::dims`]: none for a random effect whose variance is fixed at
/// zero), one node without any.
pub fn model_grid(model: &Model, plan: &Plan) -> Result<Grid, FitError> {
    grid_with_points(model, plan, model.latent.integration.points, &[])
}

/// [`model_grid`] with `points` (per dimension, or in all for Monte Carlo)
/// in place of the model's, except on the dimensions `keep` of an adapted
/// product rule, which keep the model's points.
fn grid_with_points(
    model: &Model,
    plan: &Plan,
    points: usize,
    keep: &[usize],
) -> Result<Grid, FitError> {
    let dims = plan.dims;
    let t = &model.latent;
    match dims {
        0 => Ok(Grid::single()),
        _ => {
            let m = match t.integration.method {
                IntegrationMethod::Trapezoid => Method::Trapezoid,
                IntegrationMethod::GaussHermite => Method::GaussHermite,
                IntegrationMethod::MonteCarlo => Method::MonteCarlo,
            };
            // adaptive quadrature integrates a random class logit intercept
            // on its own rule (see mlmix_integrate::StepMap)
            let mut step = vec![false; dims];
            if t.integration.adaptive {
                for s in mlmix_integrate::step_dims(plan) {
                    step[s.dim] = true;
                }
            }
            let nodes = if t.integration.adaptive {
                Grid::nodes_adapted(m, points, &step)
            } else {
                Grid::nodes_with_steps(m, points, &step)
            };
            if nodes > MAX_NODES as f64 {
                return Err(FitError::TooManyNodes {
                    points,
                    dims,
                    nodes,
                });
            }
            let grid = if t.integration.adaptive && !keep.is_empty() {
                Grid::adapted_mixed(m, points, t.integration.points, keep, &step)
            } else if t.integration.adaptive {
                Grid::adapted(m, points, &step)
            } else {
                Grid::with_steps(m, points, &step)
            };
            Ok(match m {
                Method::MonteCarlo => grid,
                _ => grid.nested(&mlmix_integrate::nesting_order(plan)),
            })
        }
    }
}

/// Integration nodes per cluster above which the initial stage of random
/// starts runs on a coarser adapted rule ([`COARSE_INITIAL_POINTS`] per
/// dimension), and each final-stage start begins again on the model's rule.
/// The initial stage only ranks the starts after a few EM iterations; on an
/// adapted rule a few points per dimension rank them much as the full
/// rule would, at a fraction of the cost: a 4-dimension model's 17⁴ =
/// 83,521 adapted nodes against 7⁴ = 2,401. Where the backend takes the
/// moment form, its cost does not grow with the inner dimensions' points
/// ([`Backend::shared_dims`]), and the coarse rule keeps the model's
/// points there: the 4-dimension FMA-GoM's EM evaluation with moments on
/// 2,000 persons took 0.44 s on its 17⁴ nodes and 0.45 s on 7⁴ in the
/// blocked loop, which a rule coarse in every dimension would have taken;
/// coarse in its factor alone (7 × 17³ nodes) it stays in the moment form
/// at 7 runs instead of 17. The report says when the initial stage was
/// coarse.
pub const COARSE_INITIAL_ABOVE: usize = 20_000;

/// Points per dimension of the coarse initial stage's rule (adapted: 7 per
/// dimension from 3 dimensions on; see `adapted_points`). Not 5: on the
/// 4-dimension FMA-GoM (2,000 persons of `cargo xtask bench`'s data, at
/// the parameters that generated it, a grid adapted again and again to
/// its own posterior) 5 adapted points per dimension gave log-likelihoods
/// that never settled (−23845.6, −23276.8, −23069.1, −22500.7, −22790.4,
/// −22411.8 on six successive grids; the full rule −22284.73): the
/// initial stage ranked its starts on which grid each happened to be on.
/// 7 points settle at −22283.83, 9 points at −22284.84.
pub const COARSE_INITIAL_POINTS: usize = 7;

/// The most integration nodes per cluster a fit takes: a million nodes
/// already cost hours per fit on a laptop (the 3-dimension bench case,
/// 3,375 nodes, takes about a minute), and a product rule grows as
/// points^dimensions.
pub const MAX_NODES: usize = 1_000_000;

/// What the engine would refuse in a loaded model before fitting it: a plan
/// that does not compile, or an integration grid over [`MAX_NODES`]. (What
/// `mlmix check` adds to the checks of the input language.)
pub fn check_engine(loaded: &Loaded) -> Result<(), FitError> {
    let data = engine_data(loaded, true);
    let plan = Plan::compile(&loaded.model, &data)?;
    model_grid(&loaded.model, &plan).map(|_| ())
}

/// What the engine evaluates a loaded model on: its data in the engine's
/// layout (`collapse`: identical rows merged), its plan and its
/// integration grid.
pub type EngineParts = (Arc<EngineData>, Arc<Plan>, Grid);

/// The [`EngineParts`] of a loaded model.
pub fn engine_parts(loaded: &Loaded, collapse: bool) -> Result<EngineParts, FitError> {
    let data = Arc::new(engine_data(loaded, collapse));
    let plan = Arc::new(Plan::compile(&loaded.model, &data)?);
    let grid = model_grid(&loaded.model, &plan)?;
    Ok((data, plan, grid))
}

/// The engine's layout of a loaded model's data, with the product columns
/// the model needs (cross-level interactions of random slopes).
pub fn engine_data(loaded: &Loaded, collapse: bool) -> EngineData {
    let data = match &loaded.data.clusters {
        Some(c) if loaded.model.two_level.is_some() => {
            EngineData::two_level(&loaded.data, c, collapse)
        }
        _ => EngineData::single_level(&loaded.data, collapse),
    };
    data.with_products(&loaded.model.product_columns())
}

/// The number of threads this machine can run at once
/// (`std::thread::available_parallelism`; 1 when it cannot be told).
pub fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// A requested number of threads (`--threads`, PROCESSORS) capped at
/// [`available_threads`] and at least 1: more threads than processors only
/// add the cost of starting and switching between them.
pub fn capped_threads(requested: usize) -> usize {
    requested.clamp(1, available_threads())
}

/// The warning for a PROCESSORS above what the machine has (a caller that
/// builds its pool from PROCESSORS caps it with [`capped_threads`], as the
/// command does).
fn processors_warning(model: &Model) -> Option<String> {
    let n = model.analysis.processors?;
    let cap = capped_threads(n);
    (cap < n).then(|| {
        format!(
            "PROCESSORS = {n} is more than the {cap} processors available to this run; it was capped at {cap}"
        )
    })
}

/// A coarse initial stage's backend and its number of nodes.
type CoarseStage = (Box<dyn Backend>, usize);

/// The backend of a coarser rule for the initial stage of random starts,
/// and its number of nodes, when the model's adapted product rule has more
/// than [`COARSE_INITIAL_ABOVE`] nodes (see there): coarse in the
/// dimensions whose points `backend`'s cost grows with.
fn coarse_initial(
    model: &Model,
    plan: &Arc<Plan>,
    data: &Arc<EngineData>,
    backend: &dyn Backend,
    options: &FitOptions,
) -> Result<Option<CoarseStage>, FitError> {
    let t = &model.latent.integration;
    let above = options.coarse_initial_above.unwrap_or(COARSE_INITIAL_ABOVE);
    let product = t.method != IntegrationMethod::MonteCarlo;
    let nodes = backend.grid().n_nodes();
    if plan.dims == 0 || !t.adaptive || !product || nodes <= above {
        return Ok(None);
    }
    let points = COARSE_INITIAL_POINTS.min(t.points);
    let grid = grid_with_points(model, plan, points, &backend.shared_dims())?;
    let n = grid.n_nodes();
    if n >= nodes {
        return Ok(None);
    }
    let backend = options_backend(options, plan.clone(), data.clone(), grid)?;
    Ok(Some((backend, n)))
}

/// The evaluations of a fit by kind: the backend's and the coarse initial
/// stage's, added.
fn eval_counts(backend: &dyn Backend, coarse: Option<&dyn Backend>) -> [EvalCount; 4] {
    let mut c = backend.counts();
    if let Some(b) = coarse {
        for (a, x) in c.iter_mut().zip(b.counts()) {
            *a += x;
        }
    }
    c
}

/// Fits a loaded model. Runs in the caller's rayon pool.
pub fn fit(
    loaded: &Loaded,
    options: &FitOptions,
    observer: &dyn Observer,
) -> Result<Fit, FitError> {
    let model = &loaded.model;
    let ds = &loaded.data;
    let (engine_data, plan, grid) = engine_parts(loaded, !options.no_collapse)?;
    let backend = options_backend(options, plan.clone(), engine_data.clone(), grid)?;
    let coarse = coarse_initial(model, &plan, &engine_data, backend.as_ref(), options)?;
    let map = param_map(model, ds);
    backend.watch_free(&map.free_of_phi);
    if let Some((b, _)) = &coarse {
        b.watch_free(&map.free_of_phi);
    }
    let n_obs = ds.n_rows();
    let adaptive = plan.dims > 0 && model.latent.integration.adaptive;
    let mut problem = Problem {
        backend: backend.as_ref(),
        map: map.clone(),
        n_obs: n_obs as f64,
        adaptive,
        fixed_adapt: None,
    };
    let a = &model.analysis;
    let settings = Settings {
        em_iterations: a.miterations,
        qn_iterations: a.qn_iterations,
        convergence: a.convergence,
        logcriterion: a.logcriterion,
    };
    // a GoM starts from its latent class model's solution
    let mut warnings: Vec<String> = processors_warning(model).into_iter().collect();
    let (start_models, nested) = match crate::nested_start::nested_starts(loaded, options, observer)
    {
        Some(Ok((m, note))) => (Some(m), Some(note)),
        Some(Err(why)) => {
            warnings.push(format!("{why}; the default starting values were used"));
            (None, None)
        }
        None => (None, None),
    };
    let (at_limit, for_random) = start_models
        .as_ref()
        .map_or((model, model), |m| (&m.at_limit, &m.for_random));
    let unperturbed = StartBuilder::new(at_limit, ds, &plan, &map).unperturbed();
    let builder = StartBuilder::new(for_random, ds, &plan, &map);
    let seed = options.seed.unwrap_or(a.stseed);
    let (points, n_final, stiter) = if let Some(s) = a.optseed {
        (
            vec![StartPoint {
                number: 1,
                seed: s,
                theta: builder.perturbed(s, a.stscale),
            }],
            1,
            0,
        )
    } else if a.starts_initial == 0 || model.n_class_combinations() == 1 {
        (
            vec![StartPoint {
                number: 0,
                seed: 0,
                theta: unperturbed.clone(),
            }],
            1,
            0,
        )
    } else {
        // with a nested model's solution, it is a start of its own too
        let nested_point = nested.as_ref().map(|_| StartPoint {
            number: 0,
            seed: 0,
            theta: unperturbed.clone(),
        });
        let pts = nested_point
            .into_iter()
            .chain((1..=a.starts_initial).map(|r| {
                let s = start_seed(seed, r);
                StartPoint {
                    number: r,
                    seed: s,
                    theta: builder.perturbed(s, a.stscale),
                }
            }))
            .collect();
        (pts, a.starts_final, a.stiterations)
    };
    // a large rule's initial stage on a coarser one (random starts only)
    let coarse = coarse.filter(|_| stiter > 0 && points.len() > 1);
    let coarse_problem = coarse.as_ref().map(|(b, _)| Problem {
        backend: b.as_ref(),
        map: map.clone(),
        n_obs: n_obs as f64,
        adaptive,
        fixed_adapt: None,
    });
    let outcome = run_starts_staged(
        &problem,
        coarse_problem.as_ref(),
        points,
        n_final,
        stiter,
        &settings,
        observer,
    )?;
    // a stop request during the starts: report the best solution so far
    let interrupted = observer.stop_requested();
    // whether the stop ended some final-stage start before it converged
    let stopped_in_starts = outcome
        .records
        .iter()
        .filter_map(|r| r.solution.as_ref())
        .any(|s| s.termination == Termination::Interrupted);
    let best = outcome.best_solution().clone();
    if !best.loglik.is_finite() {
        return Err(FitError::NoSolution(
            "check the starting values given with *".into(),
        ));
    }
    problem.fixed_adapt = best.adapt.clone();
    // the reported solution's evaluations and standard errors in f64 (a
    // GPU backend's CPU)
    problem.backend = backend.exact().unwrap_or(backend.as_ref());
    let problem = problem;

    // posterior probabilities at the best solution (and the posterior
    // moments of z for the factor scores)
    let scores = model.two_level.is_none() && !crate::factors::factors(model).is_empty();
    let want = Want {
        posteriors: true,
        moments: scores && plan.dims > 0,
        ..Want::LL
    };
    let final_eval =
        problem
            .backend
            .evaluate_adapted(&map.phi(&best.theta), want, best.adapt.as_deref())?;
    let free_idx: Vec<usize> = (0..map.n_free)
        .filter(|i| !best.at_bound.contains(i))
        .collect();
    let condition_number;
    let mut scaling = None;
    let no_se = model.output.noserror;
    let info = if interrupted || no_se {
        None
    } else {
        observed_information(&problem, &best.theta, &free_idx, observer)?
    };
    // a stop request during the standard errors ends them too
    let interrupted = interrupted || (info.is_none() && !no_se);
    let (cov, se_text) = if let Some(info) = info {
        // the outer products of the scores: MLR's meat, and for every
        // estimator the first-order check of identification
        let meat = problem
            .evaluate(
                &best.theta,
                Want {
                    meat: true,
                    ..Want::LL
                },
            )?
            .meat;
        let robust = model.analysis.estimator == Estimator::Mlr;
        match covariance(map.n_free, &free_idx, &info, robust.then_some(&meat)) {
            Ok(c) => {
                condition_number = Some(c.condition);
                let scores = score_conditioning(&meat, &free_idx);
                warnings.extend(near_singular_warning(model, &c, scores.as_ref()));
                if model.analysis.estimator == Estimator::Mlr {
                    scaling = Some(c.scaling);
                }
                let text = match model.analysis.estimator {
                    Estimator::Mlr => {
                        "MLR: sandwich of the observed information and the outer products of the scores"
                    }
                    Estimator::Ml => "ML: inverse of the observed information",
                };
                (Some(c.cov), text.to_string())
            }
            Err(SeError::NotIdentified { param, condition }) => {
                condition_number = Some(condition);
                let msg = format!(
                    "the standard errors could not be computed: the information matrix is singular (condition number {condition:.3e}); the model may not be identified; problem involving parameter {} ({})",
                    param + 1,
                    model.free[param].name
                );
                warnings.push(msg.clone());
                (None, msg)
            }
            Err(SeError::Backend(e)) => return Err(e.into()),
        }
    } else {
        condition_number = None;
        let why = if interrupted {
            "not computed: the run was interrupted"
        } else {
            "not computed (OUTPUT: NOSERROR)"
        };
        (None, why.to_string())
    };

    // posteriors per analysed row, over the model's class combinations
    // (summed over the nodes of the within-level factors' rule, the plan's
    // last class variable)
    let combos = ClassCombos::of(model);
    let nc = combos.n();
    let per = plan.n_combos / nc;
    let posteriors: Vec<Vec<f64>> = engine_data
        .engine_row
        .iter()
        .map(|&e| {
            let row = &final_eval.posteriors[e * plan.n_combos..(e + 1) * plan.n_combos];
            row.chunks(per).map(|c| c.iter().sum()).collect()
        })
        .collect();
    let n = n_obs as f64;
    let p = map.n_free as f64;
    // (a GPU backend's optimiser may have ended on a log-likelihood summed
    // from f32: the report's is the CPU's)
    let ll = if backend.exact().is_some() && final_eval.loglik.is_finite() {
        final_eval.loglik
    } else {
        best.loglik
    };
    let entropy = (nc > 1).then(|| {
        let h: f64 = posteriors
            .iter()
            .map(|row| {
                row.iter()
                    .filter(|&&x| x > 0.0)
                    .map(|x| -x * x.ln())
                    .sum::<f64>()
            })
            .sum();
        1.0 - h / (n * (nc as f64).ln())
    });

    let se_of = |f: usize| -> Option<f64> {
        cov.as_ref().and_then(|c| {
            let v = c[(f, f)];
            (v.is_finite() && v >= 0.0).then(|| v.sqrt())
        })
    };
    let normal = Normal::standard();
    let parameters = parameter_rows(
        model,
        &map.phi(&best.theta),
        &best.at_bound,
        &se_of,
        &normal,
    );
    let free: Vec<FreeEstimate> = model
        .free
        .iter()
        .enumerate()
        .map(|(f, fp)| FreeEstimate {
            number: f + 1,
            name: fp.name.clone(),
            start: unperturbed[f],
            estimate: best.theta[f],
            se: se_of(f),
        })
        .collect();

    // class counts
    let (class_marginals, most_likely) = row_marginals(&combos, &posteriors);
    let (class_proportions, class_patterns) =
        class_counts(model, &combos, &posteriors, &most_likely);
    for c in &class_proportions {
        if c.count < 1e-3 * n.max(1.0) && c.count < 1.0 {
            warnings.push(format!(
                "class {} of {} is (nearly) empty: {:.3} rows",
                c.class, c.variable, c.count
            ));
        }
    }
    let phi = map.phi(&best.theta);
    let probabilities = category_probabilities(model, &phi, cov.as_ref());
    let integration = integration_summary(
        model,
        &plan,
        backend.grid(),
        best.adapt.as_deref().filter(|_| adaptive),
    );
    let two_level = model.two_level.as_ref().map(|tl| {
        let t = &model.latent;
        // a random logit regressed (eq 15) or measuring a factor (eq 35):
        // its total variance
        let implied = random_effect_moments(model, &phi);
        TwoLevelSummary {
            cluster_variable: tl.cluster.clone(),
            clusters: engine_data.n_clusters(),
            integration: integration.integration.clone(),
            dimensions: integration.dimensions,
            points: integration.points,
            adapted_clusters: integration.adapted,
            within_dimensions: {
                let closed = mlmix_kernels::implied::ClosedForm::of(model).closed;
                model
                    .random_effects()
                    .iter()
                    .zip(&closed)
                    .filter(|(r, c)| r.within && r.kind == RandomKind::Factor && !**c)
                    .count()
            },
            within_points: plan.within_cv.map_or(0, |m| plan.class_sizes[m]),
            icc: t
                .random
                .iter()
                .enumerate()
                .filter_map(|(re, r)| match r.kind {
                    RandomKind::ClassIntercept { cv, class } => {
                        let i = model
                            .parameters
                            .iter()
                            .position(|p| p.kind == ParamKind::RandomVariance { re })?;
                        let v = implied.as_ref().map_or(phi[i], |(_, s)| s[(re, re)]);
                        Some(ClassIcc {
                            variable: model.class_vars[cv].name.to_ascii_uppercase(),
                            class: class + 1,
                            variance: v,
                            icc: v / (v + std::f64::consts::PI.powi(2) / 3.0),
                        })
                    }
                    _ => None,
                })
                .collect(),
        }
    });
    if let (Some(a), true) = (&best.adapt, adaptive) {
        let failed = a.failed.iter().filter(|x| **x).count();
        if failed > 0 {
            warnings.push(format!(
                "adaptive quadrature failed for {failed} of {} clusters, which used the plain grid",
                a.failed.len()
            ));
        }
    }
    let transitions = transition_tables(model, &phi);
    let latent_transition = crate::lta::decomposition(model, &phi, cov.as_ref(), &best.at_bound);
    let irt = crate::factors::irt_parameterization(model, &phi, cov.as_ref(), &best.at_bound);
    let factor_scores =
        crate::factors::factor_scores(model, &plan, &engine_data, &phi, &final_eval)
            .map_err(BackendError::from)?;

    // starts summary and warnings
    let ranked = outcome.ranked();
    let final_logliks: Vec<StartResult> = ranked
        .iter()
        .map(|r| {
            let s = r.solution.as_ref().expect("ranked records have solutions");
            StartResult {
                start: r.number,
                seed: r.seed,
                initial_loglikelihood: r.initial_loglik,
                loglikelihood: s.loglik,
                converged: s.converged(),
            }
        })
        .collect();
    let multi = final_logliks.len() > 1;
    let best_replicated = outcome.best_count >= 2;
    // (an interrupted run's final stage did not finish: its starts are
    // neither replicated nor converged, which the interruption says)
    if multi && !best_replicated && !interrupted {
        warnings.push(format!(
            "the best log-likelihood ({ll:.3}) was not replicated: increase the number of random starts (STARTS) to make sure it is the global maximum"
        ));
    }
    let failed = final_logliks.iter().filter(|s| !s.converged).count();
    if failed > 0 && multi && !interrupted {
        warnings.push(format!("{failed} final-stage start(s) did not converge"));
    }
    if !best.converged() {
        warnings.push(format!(
            "the model estimation did not converge ({}); the results are not trustworthy",
            match best.termination {
                Termination::MaxIterations => format!(
                    "the quasi-Newton iteration limit was reached (ITERATIONS = {}): raise ITERATIONS",
                    model.analysis.qn_iterations
                ),
                Termination::LineSearchFailed => format!(
                    "no further increase of the log-likelihood was found, largest scaled derivative {:.2e}",
                    best.max_gradient
                ),
                Termination::InvalidStart => "invalid starting values".to_string(),
                Termination::Interrupted => "the run was interrupted".to_string(),
                Termination::Converged => String::new(),
            }
        ));
    }
    if !best.at_bound.is_empty() {
        let names: Vec<String> = best
            .at_bound
            .iter()
            .map(|&f| format!("{} ({})", f + 1, model.free[f].name))
            .collect();
        warnings.push(format!(
            "one or more parameters approached extreme values and were fixed at their bound (logits at {} or {} (LOGLOW, LOGHIGH); variances at a small positive value; the variance of a random class logit intercept at {:e}, where its class variable is in effect a between-level one) to stabilise the estimation: {}",
            model.analysis.logit_low,
            model.analysis.logit_high,
            crate::starts::MAX_CLASS_LOGIT_VARIANCE,
            names.join(", ")
        ));
    }

    warnings.extend(crate::diverging::diverging_warning(
        model,
        ds,
        &phi,
        &best.at_bound,
    ));
    warnings.extend(crate::diverging::class_logit_integration_warning(
        model, &plan, &phi,
    ));
    warnings.extend(crate::diverging::class_logit_correlation_warning(
        model, &phi,
    ));
    warnings.extend(crate::diverging::identical_classes_warning(model, &phi));

    if interrupted {
        warnings.push(if best.converged() && !stopped_in_starts {
            "the run was interrupted while computing standard errors: the estimates converged, but standard errors were not computed".to_string()
        } else if best.converged() {
            // the best start converged, others were stopped on the way
            "the run was interrupted during the final stage: the best of the finished starts converged, but other starts were stopped before they did, so a higher maximum may exist; standard errors were not computed".to_string()
        } else {
            let skipped = match outcome.skipped {
                0 => String::new(),
                k => format!(
                    "; {k} of the {} random starts were not run",
                    outcome.skipped + outcome.records.len()
                ),
            };
            format!(
                "the run was interrupted: these are the best estimates found so far, not a maximum of the likelihood; standard errors were not computed{skipped}"
            )
        });
    }

    Ok(Fit {
        title: model.title.clone(),
        input_file: model.input_file.display().to_string(),
        data_file: model.data.file.display().to_string(),
        backend: backend.describe(),
        estimator: match model.analysis.estimator {
            Estimator::Ml => "ML",
            Estimator::Mlr => "MLR",
        }
        .to_string(),
        link: match model.analysis.link {
            Link::Logit => "LOGIT",
            Link::Probit => "PROBIT",
        }
        .to_string(),
        observations: n_obs,
        rows_read: ds.rows_read,
        distinct_rows: engine_data.n_rows(),
        free_parameters: map.n_free,
        loglikelihood: ll,
        scaling_correction: scaling,
        aic: -2.0 * ll + 2.0 * p,
        bic: -2.0 * ll + p * n.ln(),
        abic: -2.0 * ll + p * ((n + 2.0) / 24.0).ln(),
        entropy,
        converged: best.converged(),
        interrupted,
        termination: best.termination.clone(),
        iterations: Iterations {
            em: best.em_iterations,
            quasi_newton: best.qn_iterations,
        },
        evaluations: eval_counts(backend.as_ref(), coarse.as_ref().map(|(b, _)| b.as_ref()))
            .iter()
            .zip(mlmix_integrate::EVAL_KINDS)
            .filter(|(c, _)| c.count > 0)
            .map(|(c, kind)| EvaluationCount {
                kind: kind.to_string(),
                count: c.count,
                seconds: c.seconds,
                row_passes: c.row_passes,
            })
            .collect(),
        starts: StartsSummary {
            initial: if a.optseed.is_some() {
                1
            } else {
                a.starts_initial
            },
            final_stage: if a.optseed.is_some() {
                1
            } else {
                a.starts_final
            },
            skipped: outcome.skipped,
            stiterations: if a.optseed.is_some() || a.starts_initial == 0 {
                0
            } else {
                a.stiterations
            },
            seed,
            optseed: a.optseed,
            final_logliks,
            best_replicated,
            best_count: outcome.best_count,
            nested,
            coarse_initial_nodes: coarse.as_ref().map(|(_, n)| *n),
        },
        standard_errors: se_text,
        condition_number,
        class_proportions,
        class_patterns,
        parameters,
        probabilities,
        profiles: crate::profiles::item_profiles(model, &phi, ds),
        transitions,
        latent_transition,
        warnings,
        input_warnings: loaded.warnings.iter().map(|w| w.to_string()).collect(),
        posteriors,
        class_marginals,
        most_likely,
        n_combos: nc,
        free,
        integration: (model.two_level.is_none() && !model.latent.random.is_empty())
            .then_some(integration),
        two_level,
        irt,
        factor_scores,
    })
}

/// The integration lines of the report: the rule, its dimensions and
/// nodes, and how many units (clusters; distinct rows of a single-level
/// model) have an adapted grid at the solution (`adapt`: the solution's
/// adaptation, `None` without adaptive quadrature).
fn integration_summary(
    model: &Model,
    plan: &Plan,
    grid: &Grid,
    adapt: Option<&mlmix_integrate::Adaptation>,
) -> IntegrationSummary {
    let t = &model.latent;
    let adaptive = plan.dims > 0 && t.integration.adaptive;
    let what = if model.two_level.is_some() {
        "random effect"
    } else {
        "factor"
    };
    IntegrationSummary {
        integration: if plan.dims == 0 && t.random.is_empty() {
            format!("none (no {what}s)")
        } else if plan.dims == 0
            && mlmix_kernels::implied::ClosedForm::of(model)
                .closed
                .contains(&true)
        {
            "closed form".to_string()
        } else if plan.dims == 0 {
            format!("none (every {what}'s variance is fixed at 0)")
        } else {
            format!(
                "{}{}",
                match t.integration.method {
                    IntegrationMethod::Trapezoid => "trapezoid",
                    IntegrationMethod::GaussHermite => "Gauss-Hermite",
                    IntegrationMethod::MonteCarlo => "Monte Carlo",
                },
                if t.integration.adaptive {
                    ", adaptive"
                } else {
                    ""
                }
            )
        },
        dimensions: plan.dims,
        points: grid.n_nodes(),
        adapted: adaptive.then(|| adapt.map_or(0, |a| a.failed.iter().filter(|x| !**x).count())),
    }
}

/// The warning for standard errors computed from a near-singular matrix,
/// naming the free parameters that weigh most in the direction of its
/// smallest eigenvalue: the first-order derivative product when its
/// condition number is below [`mlmix_optim::se::SCORE_CONDITION_WARNING`],
/// else the information when it is below
/// [`mlmix_optim::se::CONDITION_WARNING`]; `None` when neither is.
fn near_singular_warning(
    model: &Model,
    cov: &mlmix_optim::Covariance,
    scores: Option<&mlmix_optim::se::Conditioning>,
) -> Option<String> {
    let (matrix, condition, limit, involved) = match scores {
        Some(s) if s.condition < mlmix_optim::se::SCORE_CONDITION_WARNING => (
            "first-order derivative product matrix",
            s.condition,
            mlmix_optim::se::SCORE_CONDITION_WARNING,
            &s.involved,
        ),
        _ if !cov.involved.is_empty() => (
            "information matrix",
            cov.condition,
            mlmix_optim::se::CONDITION_WARNING,
            &cov.involved,
        ),
        _ => return None,
    };
    let names: Vec<String> = involved
        .iter()
        .map(|&f| format!("{} ({})", f + 1, model.free[f].name))
        .collect();
    Some(format!(
        "the standard errors of the model parameter estimates may not be trustworthy for some parameters: the {matrix} is near singular (condition number {condition:.3e}, below {limit:.0e}); this may be due to the starting values but may also be an indication of model nonidentification; problem involving parameter{} {}",
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    ))
}

/// Whether random effect `re` is regressed on the between level (its mean
/// is then an intercept).
fn random_regressed(model: &Model, re: usize) -> bool {
    let intercept_of = match model.random_effects().get(re).map(|r| r.kind) {
        Some(RandomKind::Intercept { var }) => Some(var),
        _ => None,
    };
    model.parameters.iter().any(|p| match p.kind {
        ParamKind::RandomSlopeOn { re: r, .. } | ParamKind::RandomRegression { re: r, .. } => {
            r == re
        }
        // a first-order factor measured by a second-order one
        ParamKind::Loading { re: r, .. } => {
            r == re && model.random_effects()[re].kind == RandomKind::Factor
        }
        ParamKind::Slope { var, covariate } => {
            Some(var) == intercept_of && model.variables[covariate].between
        }
        _ => false,
    })
}

/// The report section of a parameter. Two-level models: parameters of the
/// between level (random effects' means, variances, covariances and
/// regressions; regressions on BETWEEN covariates; parameters of BETWEEN
/// variables) are in sections named "Between Level: ...", after the
/// within-level ones.
fn section_of(model: &Model, kind: &ParamKind) -> String {
    if model.is_factor_indicator_variance(kind) {
        return String::new();
    }
    if model.two_level.is_some() {
        if let Some(s) = two_level_factor_section(model, kind) {
            return s;
        }
        if let Some(re) = model.random_mean_of(kind) {
            return if random_regressed(model, re) {
                "Between Level: Intercepts".into()
            } else {
                "Between Level: Means".into()
            };
        }
        let between_var = match *kind {
            ParamKind::Slope { var, covariate } => {
                model.variables[var].between || model.variables[covariate].between
            }
            ParamKind::Mean { var }
            | ParamKind::Variance { var }
            | ParamKind::Threshold { var, .. } => model.variables[var].between,
            ParamKind::Covariance { a, b } => {
                model.variables[a].between && model.variables[b].between
            }
            _ => false,
        };
        if between_var {
            return format!("Between Level: {}", within_section(model, kind));
        }
    }
    within_section(model, kind)
}

/// The section of a two-level model's factor parameter: a within-level
/// factor's loadings, variance and covariances on the within level (its
/// mean, 0, is not reported), a between-level factor's on the between
/// level. None for other parameters.
fn two_level_factor_section(model: &Model, kind: &ParamKind) -> Option<String> {
    let random = model.random_effects();
    let within = |re: usize| random.get(re).is_some_and(|r| r.within);
    let factor = |re: usize| random.get(re).is_some_and(|r| r.kind == RandomKind::Factor);
    Some(match *kind {
        ParamKind::Loading { factor: f, .. } if within(f) => {
            format!("{} BY", model.random_name(f))
        }
        ParamKind::Loading { factor: f, .. } => {
            format!("Between Level: {} BY", model.random_name(f))
        }
        ParamKind::FactorMean { re } if within(re) => String::new(),
        ParamKind::FactorMean { .. } => "Between Level: Means".into(),
        ParamKind::RandomVariance { re } if within(re) && factor(re) => "Variances".into(),
        ParamKind::RandomCovariance { a, .. } if within(a) => {
            format!("{} WITH", model.random_name(a))
        }
        _ => return None,
    })
}

/// Whether dependent `var` is regressed on covariates or measures a factor
/// (its intercept is regressed on the factor) in a single-level model.
fn has_predictors(model: &Model, var: usize) -> bool {
    model
        .dependent(var)
        .is_some_and(|d| !d.covariates.is_empty())
        || (model.two_level.is_none() && model.intercept_of(var).is_some())
}

fn within_section(model: &Model, kind: &ParamKind) -> String {
    match *kind {
        ParamKind::Loading { factor, .. } => format!("{} BY", model.random_name(factor)),
        ParamKind::FactorMean { .. } => "Means".into(),
        ParamKind::FactorOn { re, .. } => format!("{} ON", model.random_name(re)),
        ParamKind::RandomRegression { re, .. } if model.two_level.is_none() => {
            format!("{} ON", model.random_name(re))
        }
        ParamKind::RandomVariance { re }
            if model.two_level.is_none()
                && model.random_effects()[re].kind == RandomKind::Factor =>
        {
            if random_regressed(model, re) {
                "Residual Variances".into()
            } else {
                "Variances".into()
            }
        }
        ParamKind::RandomCovariance { a, .. } if model.two_level.is_none() => {
            format!("{} WITH", model.random_name(a))
        }
        ParamKind::RandomVariance { re } if random_regressed(model, re) => {
            "Between Level: Residual Variances".into()
        }
        ParamKind::RandomVariance { .. } => "Between-Level Variances".into(),
        ParamKind::RandomCovariance { a, .. } => {
            format!("Between Level: {} WITH", model.random_name(a))
        }
        ParamKind::RandomSlopeOn { re, .. } | ParamKind::RandomRegression { re, .. } => {
            format!("Between Level: {} ON", model.random_name(re))
        }
        ParamKind::Threshold { .. } => "Thresholds".into(),
        ParamKind::Guessing { .. } => "Guessing (logit)".into(),
        // Mplus prints a nominal variable's intercepts as `U#1` under
        // Intercepts and its slopes under `U#1 ON`
        ParamKind::NominalIntercept { .. } => "Intercepts".into(),
        ParamKind::NominalSlope { var, category, .. } => format!(
            "{}#{category} ON",
            model.variables[var].name.to_ascii_uppercase()
        ),
        // a factor indicator's mean is an intercept and its variance a
        // residual variance, as for a variable with covariates
        ParamKind::Mean { var } => {
            if has_predictors(model, var) {
                "Intercepts".into()
            } else {
                "Means".into()
            }
        }
        ParamKind::Variance { var } => {
            if has_predictors(model, var) {
                "Residual Variances".into()
            } else {
                "Variances".into()
            }
        }
        ParamKind::Covariance { a, .. } => {
            format!("{} WITH", model.variables[a].name.to_ascii_uppercase())
        }
        ParamKind::Slope { var, .. } => {
            format!("{} ON", model.variables[var].name.to_ascii_uppercase())
        }
        ParamKind::ClassIntercept { .. } => "Means".into(),
        ParamKind::ClassSlope { cv, class, .. } => format!(
            "{}#{} ON",
            model.class_vars[cv].name.to_ascii_uppercase(),
            class + 1
        ),
        ParamKind::ClassOnClass { cv, class, .. } => format!(
            "{}#{} ON",
            model.class_vars[cv].name.to_ascii_uppercase(),
            class + 1
        ),
    }
}

fn short_name(model: &Model, kind: &ParamKind) -> String {
    let v = |i: usize| model.variables[i].name.to_ascii_uppercase();
    if model.two_level.is_some()
        && let Some(re) = model.random_mean_of(kind)
    {
        return model.random_name(re);
    }
    match *kind {
        ParamKind::Covariance { b, .. } => v(b),
        ParamKind::RandomCovariance { b, .. } => model.random_name(b),
        ParamKind::RandomRegression { on, .. } => model.random_name(on),
        ParamKind::Loading { re, .. } => model.random_name(re),
        ParamKind::FactorOn { covariate, .. } => v(covariate),
        ParamKind::RandomSlopeOn { covariate, .. } => v(covariate),
        ParamKind::Slope { covariate, .. } | ParamKind::NominalSlope { covariate, .. } => {
            v(covariate)
        }
        ParamKind::ClassSlope { covariate, .. } => v(covariate),
        ParamKind::ClassOnClass {
            parent,
            parent_class,
            ..
        } => format!(
            "{}#{}",
            model.class_vars[parent].name.to_ascii_uppercase(),
            parent_class + 1
        ),
        _ => model.param_name(kind),
    }
}

/// How the report names model parameter `i`: its section ("Thresholds",
/// "C#1 ON"), its name (`U1$1`) and its class (`C#1`, for class-specific
/// rows).
pub fn parameter_identity(model: &Model, i: usize) -> (String, String, Option<String>) {
    let p = &model.parameters[i];
    let class = match (p.class, model.param_class_var(&p.kind)) {
        (Some(k), Some(cv)) => Some(format!(
            "{}#{}",
            model.class_vars[cv].name.to_ascii_uppercase(),
            k + 1
        )),
        _ => None,
    };
    (
        section_of(model, &p.kind),
        short_name(model, &p.kind),
        class,
    )
}

fn parameter_rows(
    model: &Model,
    phi: &[f64],
    at_bound: &[usize],
    se_of: &dyn Fn(usize) -> Option<f64>,
    normal: &Normal,
) -> Vec<ParameterEstimate> {
    model
        .parameters
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (number, fixed, bound, se) = match p.value {
                ParamValue::Free(f) => {
                    let b = at_bound.contains(&f);
                    (Some(f + 1), false, b, if b { None } else { se_of(f) })
                }
                ParamValue::Fixed(_) => (None, true, false, None),
            };
            let est = phi[i];
            let est_se = se.filter(|s| *s > 0.0).map(|s| est / s);
            let p_value = est_se.map(|z| 2.0 * (1.0 - normal.cdf(z.abs())));
            let (section, name, class) = parameter_identity(model, i);
            ParameterEstimate {
                number,
                section,
                name,
                class,
                estimate: est,
                se,
                est_se,
                p_value,
                fixed,
                at_bound: bound,
                label: p.label.clone(),
            }
        })
        .collect()
}

/// The combinations of the model's class variables (mixed radix, the last
/// varying fastest, as in the plan, which may append the nodes of the
/// within-level factors' rule after them).
struct ClassCombos {
    class_sizes: Vec<usize>,
}

impl ClassCombos {
    fn of(model: &Model) -> Self {
        ClassCombos {
            class_sizes: model.class_vars.iter().map(|c| c.classes).collect(),
        }
    }

    /// Number of combinations.
    fn n(&self) -> usize {
        self.class_sizes.iter().product()
    }

    /// Class of class variable `m` in combination `combo`.
    fn class_of(&self, combo: usize, m: usize) -> usize {
        mlmix_kernels::plan::class_in_combo(&self.class_sizes, combo, m)
    }
}

/// Each row's posterior probability of every class of every class variable
/// (the combination posteriors summed over the other variables), and its
/// most likely class of each (0-based).
fn row_marginals(
    plan: &ClassCombos,
    posteriors: &[Vec<f64>],
) -> (Vec<Vec<Vec<f64>>>, Vec<Vec<usize>>) {
    let mut marginals = Vec::with_capacity(posteriors.len());
    let mut most_likely = Vec::with_capacity(posteriors.len());
    for row in posteriors {
        let mut margs = Vec::with_capacity(plan.class_sizes.len());
        let mut best = Vec::with_capacity(plan.class_sizes.len());
        for (m, &size) in plan.class_sizes.iter().enumerate() {
            let mut marg = vec![0.0; size];
            for (k, p) in row.iter().enumerate() {
                marg[plan.class_of(k, m)] += p;
            }
            let b = (0..size).fold(0, |b, c| if marg[c] > marg[b] { c } else { b });
            margs.push(marg);
            best.push(b);
        }
        marginals.push(margs);
        most_likely.push(best);
    }
    (marginals, most_likely)
}

fn class_counts(
    model: &Model,
    plan: &ClassCombos,
    posteriors: &[Vec<f64>],
    most_likely: &[Vec<usize>],
) -> (Vec<ClassProportion>, Vec<ClassPattern>) {
    let n = posteriors.len() as f64;
    let nc = plan.n();
    let mut combo_count = vec![0.0; nc];
    let mut combo_ml = vec![0.0; nc];
    let mut var_ml: Vec<Vec<f64>> = plan.class_sizes.iter().map(|&k| vec![0.0; k]).collect();
    for (row, best_classes) in posteriors.iter().zip(most_likely) {
        let mut best = 0;
        for k in 0..nc {
            combo_count[k] += row[k];
            if row[k] > row[best] {
                best = k;
            }
        }
        combo_ml[best] += 1.0;
        for (m, &b) in best_classes.iter().enumerate() {
            var_ml[m][b] += 1.0;
        }
    }
    let mut props = Vec::new();
    for (m, (cv, ml)) in model.class_vars.iter().zip(&var_ml).enumerate() {
        for (c, &ml_count) in ml.iter().enumerate() {
            let count: f64 = (0..nc)
                .filter(|&k| plan.class_of(k, m) == c)
                .map(|k| combo_count[k])
                .sum();
            props.push(ClassProportion {
                variable: cv.name.to_ascii_uppercase(),
                class: c + 1,
                count,
                proportion: count / n,
                most_likely_count: ml_count,
                most_likely_proportion: ml_count / n,
            });
        }
    }
    let patterns = if model.class_vars.len() > 1 {
        (0..nc)
            .map(|k| ClassPattern {
                classes: (0..model.class_vars.len())
                    .map(|m| plan.class_of(k, m) + 1)
                    .collect(),
                count: combo_count[k],
                proportion: combo_count[k] / n,
                most_likely_count: combo_ml[k],
            })
            .collect()
    } else {
        Vec::new()
    };
    (props, patterns)
}

/// P(u = c | class) for categorical dependents without covariates, with
/// delta-method standard errors.
fn category_probabilities(
    model: &Model,
    phi: &[f64],
    cov: Option<&DMatrix<f64>>,
) -> Vec<CategoryProbability> {
    let lk = model.analysis.link;
    // (class variable, class, variable) -> rows, so the report goes class by class
    let mut out: Vec<((usize, usize, usize), CategoryProbability)> = Vec::new();
    for v in model.dependents() {
        let Some(dep) = model.dependent(v) else {
            continue;
        };
        let Scale::Categorical { categories } = &dep.scale else {
            continue;
        };
        if !dep.covariates.is_empty() {
            continue;
        }
        let ncat = categories.len();
        let cv = dep.class_var;
        let kmax = cv.map_or(1, |c| model.class_vars[c].classes);
        for k in 0..kmax {
            let class = cv.map(|_| k);
            // thresholds and their free indices
            let mut tau = vec![0.0; ncat - 1];
            let mut fidx: Vec<Option<usize>> = vec![None; ncat - 1];
            for (i, p) in model.parameters.iter().enumerate() {
                // (a nominal variable's intercepts in place of thresholds)
                if let ParamKind::Threshold { var, index }
                | ParamKind::NominalIntercept {
                    var,
                    category: index,
                } = p.kind
                    && var == v
                    && p.class == class
                {
                    tau[index - 1] = phi[i];
                    if let ParamValue::Free(f) = p.value {
                        fidx[index - 1] = Some(f);
                    }
                }
            }
            for (c, &value) in categories.iter().enumerate() {
                let (prob, grad) = if dep.nominal {
                    nominal_probability(&tau, &fidx, c)
                } else {
                    ordered_probability(lk, &tau, &fidx, c)
                };
                let se = cov.and_then(|cm| {
                    let mut var = 0.0;
                    for &(fa, ga) in &grad {
                        for &(fb, gb) in &grad {
                            if let (Some(a), Some(b)) = (fa, fb) {
                                var += ga * gb * cm[(a, b)];
                            }
                        }
                    }
                    (var.is_finite() && var >= 0.0).then(|| var.sqrt())
                });
                out.push((
                    (cv.unwrap_or(0), k, v),
                    CategoryProbability {
                        variable: model.variables[v].name.to_ascii_uppercase(),
                        class: cv.map_or_else(String::new, |c| {
                            format!(
                                "{}#{}",
                                model.class_vars[c].name.to_ascii_uppercase(),
                                k + 1
                            )
                        }),
                        category: c + 1,
                        value,
                        probability: prob,
                        se,
                    },
                ));
            }
        }
    }
    out.sort_by_key(|(key, p)| (*key, p.category));
    out.into_iter().map(|(_, p)| p).collect()
}

/// P(u = c) of an ordered categorical variable from its thresholds `tau`,
/// with its derivatives by the free parameters `fidx` of the thresholds.
fn ordered_probability(
    lk: mlmix_spec::Link,
    tau: &[f64],
    fidx: &[Option<usize>],
    c: usize,
) -> (f64, Vec<(Option<usize>, f64)>) {
    let lower = (c > 0).then(|| tau[c - 1]);
    let upper = (c < tau.len()).then(|| tau[c]);
    let prob = link::category_prob(lk, lower, upper);
    // dP/dtau: f(upper) for tau_c, -f(lower) for tau_{c-1}
    let mut grad: Vec<(Option<usize>, f64)> = Vec::new();
    if let Some(u) = upper {
        grad.push((fidx[c], link::pdf(lk, u)));
    }
    if let Some(l) = lower {
        grad.push((fidx[c - 1], -link::pdf(lk, l)));
    }
    (prob, grad)
}

/// P(u = c) of a nominal variable from its intercepts `a` (the last
/// category's 0), the softmax, with its derivatives `p_c (δ_cj − p_j)` by
/// the free parameters `fidx` of the intercepts.
fn nominal_probability(
    a: &[f64],
    fidx: &[Option<usize>],
    c: usize,
) -> (f64, Vec<(Option<usize>, f64)>) {
    let m = a.iter().copied().fold(0.0, f64::max);
    let e: Vec<f64> = a.iter().chain([&0.0]).map(|x| (x - m).exp()).collect();
    let sum: f64 = e.iter().sum();
    let p: Vec<f64> = e.iter().map(|x| x / sum).collect();
    let grad = (0..a.len())
        .map(|j| (fidx[j], p[c] * (f64::from(j == c) - p[j])))
        .collect();
    (p[c], grad)
}

/// The between-level structural model's A = (I − B)^-1 (over the
/// regressions among random effects and the loadings) and the implied
/// covariance A Ψ A' of the random effects, in the order of
/// [`Model::latent`]'s; class-specific parameters in the first class. None
/// when I − B is singular (a model with a cycle, which the checks refuse).
pub(crate) fn random_effect_moments(
    model: &Model,
    phi: &[f64],
) -> Option<(DMatrix<f64>, DMatrix<f64>)> {
    let n = model.latent.random.len();
    let mut psi = DMatrix::<f64>::zeros(n, n);
    let mut b = DMatrix::<f64>::zeros(n, n);
    for (i, p) in model.parameters.iter().enumerate() {
        if p.class.is_some_and(|k| k > 0) {
            continue;
        }
        match p.kind {
            ParamKind::RandomVariance { re } => psi[(re, re)] = phi[i],
            ParamKind::RandomCovariance { a, b: c } => {
                psi[(a, c)] = phi[i];
                psi[(c, a)] = phi[i];
            }
            ParamKind::RandomRegression { re, on } => b[(re, on)] = phi[i],
            ParamKind::Loading { re, factor } => b[(re, factor)] = phi[i],
            _ => {}
        }
    }
    let a = (DMatrix::identity(n, n) - b).try_inverse()?;
    let sigma = &a * psi * a.transpose();
    Some((a, sigma))
}

fn transition_tables(model: &Model, phi: &[f64]) -> Vec<TransitionTable> {
    let mut out = Vec::new();
    for (cv, c) in model.class_vars.iter().enumerate() {
        if c.parents.is_empty() {
            continue;
        }
        let psizes: Vec<usize> = c
            .parents
            .iter()
            .map(|&p| model.class_vars[p].classes)
            .collect();
        let n_sets: usize = psizes.iter().product();
        let mut rows = Vec::new();
        for set in 0..n_sets {
            let mut rem = set;
            let mut pcls = vec![0; psizes.len()];
            for i in (0..psizes.len()).rev() {
                pcls[i] = rem % psizes[i];
                rem /= psizes[i];
            }
            let mut eta = vec![0.0; c.classes];
            for (i, p) in model.parameters.iter().enumerate() {
                match p.kind {
                    ParamKind::ClassIntercept { cv: x, class } if x == cv => eta[class] += phi[i],
                    ParamKind::ClassOnClass {
                        cv: x,
                        class,
                        parent,
                        parent_class,
                    } if x == cv => {
                        let pi = c.parents.iter().position(|&q| q == parent).unwrap_or(0);
                        if pcls[pi] == parent_class {
                            eta[class] += phi[i];
                        }
                    }
                    _ => {}
                }
            }
            let lse = mlmix_kernels::eval::log_sum_exp(&eta);
            rows.push(TransitionRow {
                from: pcls.iter().map(|x| x + 1).collect(),
                probabilities: eta.iter().map(|e| (e - lse).exp()).collect(),
            });
        }
        out.push(TransitionTable {
            variable: c.name.to_ascii_uppercase(),
            given: c
                .parents
                .iter()
                .map(|&p| model.class_vars[p].name.to_ascii_uppercase())
                .collect(),
            rows,
            at_zero_covariates: !c.covariates.is_empty(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_tries_a_gpu_only_above_the_threshold_and_without_shortcuts() {
        // below the threshold: the CPU, and nothing to say
        assert_eq!(auto_wants_gpu(9.9e6, AUTO_GPU_TERMS, None), Err(None));
        for form in [Shortcut::Blocked, Shortcut::MomentForm] {
            assert_eq!(auto_wants_gpu(9.9e6, AUTO_GPU_TERMS, Some(form)), Err(None));
        }
        // at and above it: a GPU, unless the CPU skips most terms
        assert_eq!(auto_wants_gpu(1e7, AUTO_GPU_TERMS, None), Ok(()));
        let Err(Some(why)) = auto_wants_gpu(8e10, AUTO_GPU_TERMS, Some(Shortcut::Blocked)) else {
            panic!("a blocked form above the threshold keeps the CPU, with a reason");
        };
        assert!(why.starts_with("8.0e10 integrand terms"), "{why}");
        assert!(why.contains("blocked product form"), "{why}");
        assert!(why.contains("does not have"), "{why}");
        let Err(Some(why)) = auto_wants_gpu(8e10, AUTO_GPU_TERMS, Some(Shortcut::MomentForm))
        else {
            panic!("a moment form above the threshold keeps the CPU, with a reason");
        };
        assert!(why.contains("moment form"), "{why}");
        assert!(why.contains("not measured on a hardware GPU"), "{why}");
    }
}
