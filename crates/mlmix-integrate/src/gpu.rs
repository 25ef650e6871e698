//! The GPU backend (cargo feature `gpu`): the cluster-likelihood loop's
//! log-likelihood, gradient and posterior moments in WGSL compute shaders
//! through wgpu.
//!
//! What runs on the device: evaluations of the log-likelihood, the
//! gradient, the posterior moments (these on grids without step
//! dimensions) and EM steps' information ([`information_on_device`]: the
//! term states' weight sums, and the rows' own matrices of terms with
//! covariates and of 3PL guessing terms) of plans whose terms are
//! categorical (binary or ordered, logit or probit), 3PL guessing,
//! nominal, normal, normal blocks with residual covariances (up to
//! [`MAX_BLOCK`] variables) or class logits, on the plain or the adapted
//! grid. Where the CPU takes the moment form (GoM and FMA-GoM long data:
//! `cpu/moment.rs`), the device takes it too for the log-likelihood, the
//! gradient and the posterior moments (`gpu/moment.rs`,
//! shaders/moment.wgsl) and leaves the EM steps' information to the CPU's
//! moment form ([`device_evaluates`]). Each
//! gradient comes with a bound on its rounding ([`GPU_SCORE_EPS`],
//! [`GPU_LL_EPS`]); a gradient not resolved against it
//! ([`GPU_RESOLVE`]) is made again on the CPU, as are the evaluations
//! after it for a while ([`GPU_BACKOFF`]). Everything else an evaluation
//! can ask for (the information of terms with more than
//! [`MAX_INFO_COVS`] covariates, posteriors, the MLR meat, moments on grids
//! with step dimensions) and plans beyond the shaders' limits run on the CPU backend the
//! GPU backend holds, and so do the reported solution's evaluations
//! ([`Backend::exact`]): the answers are the CPU's, in f64. The
//! log-likelihoods are f32 per cluster, summed in f64 (1e-6 relative,
//! [`GPU_TOLERANCE`]).
//!
//! Layout (shaders/common.wgsl names the bindings): the plan's tables and
//! the clusters' row ranges in one u32 buffer, the data in one f32 buffer
//! (row-major, then the rows' frequency weights), both uploaded once; per
//! evaluation the terms' prepared parameters (f32, per state) go up; per
//! chunk of clusters the nodes (shared by every cluster on the plain grid,
//! per cluster and pass on an adapted one, mapped by the CPU's
//! `nodes_of`) go up and one f32 per cluster comes down.
//!
//! Work (shaders/loglik.wgsl): one invocation per (cluster, pass) sums the
//! cluster's rows' log-sum-exps over the class combinations at the pass's
//! node, and one per cluster takes the log-sum-exp over its passes. The
//! second sweep (shaders/scores.wgsl) spreads each cluster's passes over
//! up to [`SCORES_GROUP`] lanes (in one dispatch; on a software adapter in
//! blocks of `PASS_BLOCK` passes per lane), each adding the posterior moments and
//! the cluster's score with its terms' magnitudes into a slice of its
//! own, summed in lane order at the end. With the moments, every
//! cluster's slice comes down (2 × the parameters' f32, and the moments')
//! to be summed in f64 in cluster order; with the gradient alone the
//! device sums the clusters' scores (compensated, in runs of `SUM_RUN`
//! clusters, then the runs, each in order) and 2 × the parameters' f32
//! come down per chunk. Per
//! integrand term (a row, a combination, a term) the device reads the
//! term's parameters (about 4 + 4q bytes, cached) and the row's columns it
//! reads (4 bytes each); it writes 4 bytes per (cluster, pass).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use mlmix_kernels::eval::{InfoAcc, TermPrep};
use mlmix_kernels::{EngineData, Plan, Prepared, Term, TermKind, prepare};
use mlmix_spec::Link;
use wgpu::util::DeviceExt;

use crate::SHADER;
use crate::cpu::TermVecs;
use crate::finish::{finish_gradient, finish_gradient_bound, finish_information};
use crate::layout::Layout;
use crate::nodes::nodes_of;
use crate::{Adaptation, Backend, BackendError, CpuBackend, EvalCount, Evaluation, Grid, Want};

mod moment;

/// Relative difference between the GPU's log-likelihood (f32 per
/// cluster) and the CPU's (f64) that the tests allow.
pub const GPU_TOLERANCE: f64 = 1e-6;

/// The rounding of a cluster's score in f32 that the GPU backend allows
/// for, relative to the magnitude of its terms: the bound on the
/// gradient's rounding is this times the sum, over clusters, passes, rows
/// and states, of the magnitudes each term w ∂ℓ/∂θ was computed from (the
/// shaders add them up beside the score: common.wgsl, add_score). Where a
/// term is a difference (a class logit's w_k − p_k Σ w, a residual) that
/// is the sum of its operands' magnitudes: at equal classes the logit's
/// terms are each zero up to rounding, all of the same sign, and their
/// own sizes bound nothing (`examples/gom.inp` at its unperturbed start:
/// −6.0e-5 on the device where the CPU has 1e-14 and the terms' sizes
/// sum to 7.6e-5). f32 carries 6e-8, but the parameters' own rounding to f32
/// moves every cluster's score the same way (in a categorical item's
/// cut point less its linear predictor, most), and the shaders' `exp`,
/// `log` and probit approximations lose more: measured on the shipped
/// examples and simulated ordered probit models (`tests/tests/gpu.rs`),
/// the error reached 1.5e-6 of the magnitude, 0.15 of this bound
/// (`examples/gom_3pl.inp`, items fixed at a logit of 15 in one class:
/// 0.43).
pub const GPU_SCORE_EPS: f64 = 1e-5;

/// The rounding of a cluster's log-density given a pass in f32, relative
/// to its size (4 units in the last place): the passes' posteriors,
/// exp(pass − cluster log-likelihood), carry a relative error of about
/// |l_j| times this, the same in every term of the cluster's score, and
/// where the largest |l_j| makes that exceed [`GPU_SCORE_EPS`] the
/// gradient's bound takes it instead ([`score_eps`]). It matters at sharp
/// points only: the moment form's test point with items so sharp that a
/// person's log-likelihood is −2,200 moved a class logit's gradient by
/// 3.4e-5 of its magnitude (`tests/tests/gpu.rs`:
/// gpu_moment_form_equals_the_cpu).
pub const GPU_LL_EPS: f64 = 2.4e-7;

/// The relative rounding the gradient's bound allows for, given the
/// clusters' log-likelihoods (see [`GPU_LL_EPS`]).
fn score_eps(max_abs_ll: f64) -> f64 {
    GPU_SCORE_EPS.max(max_abs_ll * GPU_LL_EPS)
}

/// How many times its rounding bound a gradient from the device must be
/// (in Euclidean norm, with respect to the free parameters:
/// [`Backend::watch_free`]) for the optimiser to have it: closer to an
/// optimum, where the gradient shrinks to its rounding, the evaluation is
/// made again on the CPU in f64, the log-likelihoods that follow are the
/// CPU's too until a gradient from the device is resolved again, and so
/// are the next gradients for a while ([`GPU_BACKOFF`]). So the
/// quasi-Newton steps far from an optimum run on the device with
/// directions accurate to 1% (0.17% as measured), and the last ones, the
/// convergence test and the line searches near the optimum, in f64. The
/// judgement must be on the free parameters: phi's gradient stays large
/// at an optimum where parameters are held equal across classes (its
/// entries per class cancel), and judged on phi the device's gradients
/// went on to the end (`examples/ex10.2.inp` took 30 quasi-Newton
/// iterations instead of the CPU's 13; a factor mixture's start did not
/// converge). Judged on the free parameters, the fits of
/// `gpu_fits_equal_the_cpu` take the CPU's iterations, to the one.
pub const GPU_RESOLVE: f64 = 100.0;

/// After a gradient from the device that was not resolved
/// ([`GPU_RESOLVE`]), how many gradients go to the CPU before the device
/// is tried again, at most: 1 after the first, doubling with each
/// unresolved one up to this, back to 0 after a resolved one. Near an
/// optimum gradients only shrink, so trying the device every time would
/// evaluate each point twice; a new start far from it waits at most this
/// many evaluations for the device.
pub const GPU_BACKOFF: u32 = 16;

/// Invocations per workgroup of the second sweep (shaders/scores.wgsl:
/// SCORES_GROUP). A cluster's passes are spread over up to this many of
/// them (its lanes: [`scores_lanes`]), each adding into a slice of its
/// own, summed in lane order at the end: one invocation per cluster left
/// an H200 nearly idle on 7,000 clusters (the gradient took 6 to 30 times
/// the log-likelihood, docs/gpu.md).
pub const SCORES_GROUP: u32 = 64;

/// Passes per lane and dispatch of the second sweep (`cluster_scores`)
/// on a software adapter: its passes are cut into blocks of this many
/// times the lanes, one dispatch each, adding to the lanes' slices. On
/// Mesa's lavapipe a loop over 29 passes in one invocation was
/// miscompiled (it stopped early, right after a pass's scores:
/// docs/gpu.md); in blocks of 1 or 4 per invocation the gradients of every
/// shipped example are within their bound. On a hardware adapter one
/// dispatch takes all passes (the tests held its gradients to the same
/// bounds on an H200).
const PASS_BLOCK: usize = 4;

/// Most f32 of the second sweep's slices (every lane's score, magnitudes
/// and moments, and its row's state weights) per chunk, beside the
/// adapter's binding limit: 1 GiB.
const MAX_SWEEP_FLOATS: usize = 1 << 28;

/// Clusters per run of the device's sum of the clusters' scores
/// (shaders/scores.wgsl: SUM_RUN).
const SUM_RUN: usize = 256;

/// Integration dimensions the shaders hold (shaders/common.wgsl: MAX_DIMS).
pub const MAX_DIMS: usize = 8;

/// Term states a row holds in the shaders (shaders/common.wgsl:
/// MAX_SLOTS).
pub const MAX_SLOTS: usize = 128;

/// Variables of a normal block the shaders hold (shaders/block.wgsl:
/// MAX_BLOCK; its patterns are masks of 32 bits).
pub const MAX_BLOCK: usize = 16;

/// Words per term descriptor (shaders/common.wgsl: TERM_WORDS).
const TERM_WORDS: usize = 12;

/// Most (cluster, pass) entries per chunk: 16 Mi f32, 64 MiB.
const MAX_PASS_ENTRIES: usize = 1 << 24;

/// Invocations per workgroup (shaders/loglik.wgsl: workgroup_size), and
/// the most workgroups in one dimension of a dispatch: more go in rows
/// (the y dimension) of this many.
const GROUP: u32 = 64;
const GROUPS_PER_ROW: u32 = 65_535;

/// A GPU adapter and its device.
pub struct GpuDevice {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
}

/// Why no GPU could be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct GpuError(pub String);

impl GpuDevice {
    /// The best adapter: a discrete, then an integrated, then a virtual
    /// GPU; a software one (Mesa's lavapipe) only with `software`.
    pub fn find(software: bool) -> Result<GpuDevice, GpuError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        let rank = |a: &wgpu::Adapter| match a.get_info().device_type {
            wgpu::DeviceType::DiscreteGpu => Some(0),
            wgpu::DeviceType::IntegratedGpu => Some(1),
            wgpu::DeviceType::VirtualGpu | wgpu::DeviceType::Other => Some(2),
            wgpu::DeviceType::Cpu => software.then_some(3),
        };
        let seen: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        let adapter = adapters
            .into_iter()
            .filter_map(|a| rank(&a).map(|r| (r, a)))
            .min_by_key(|(r, _)| *r)
            .map(|(_, a)| a)
            .ok_or_else(|| {
                GpuError(if seen.is_empty() {
                    "no GPU adapter found (no Vulkan driver)".into()
                } else {
                    format!(
                        "no hardware GPU adapter found (only software: {})",
                        seen.join(", ")
                    )
                })
            })?;
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor {
            label: Some("mlmix"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| GpuError(format!("the GPU device could not be opened: {e}")))?;
        Ok(GpuDevice {
            device,
            queue,
            info: adapter.get_info(),
            limits,
        })
    }

    /// The adapter, its API and driver, for reports.
    pub fn describe(&self) -> String {
        let i = &self.info;
        let driver = [i.driver.as_str(), i.driver_info.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        format!("{} ({:?}, {driver})", i.name, i.backend)
    }

    /// Whether the adapter is a software rasteriser.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }
}

/// The process's GPU device, opened once (`software`: a software adapter
/// will do; see [`GpuDevice::find`]).
pub fn shared_device(software: bool) -> Result<Arc<GpuDevice>, GpuError> {
    static HARDWARE: OnceLock<Result<Arc<GpuDevice>, GpuError>> = OnceLock::new();
    static ANY: OnceLock<Result<Arc<GpuDevice>, GpuError>> = OnceLock::new();
    let cell = if software { &ANY } else { &HARDWARE };
    cell.get_or_init(|| GpuDevice::find(software).map(Arc::new))
        .clone()
}

/// The plan's tables for the shader (shaders/common.wgsl: the header).
fn plan_words(plan: &Plan, data: &EngineData, layout: &Layout, nq: usize) -> Vec<u32> {
    let nt = plan.terms.len();
    let mut w = vec![0u32; 18];
    let header = [
        nt,
        plan.n_combos,
        layout.combos_of_between.len(),
        plan.dims,
        plan.n_data_cols,
        data.weights.len(),
        usize::from(data.clustered),
        nq,
    ];
    for (i, v) in header.into_iter().enumerate() {
        w[i] = v as u32;
    }
    // terms
    w[8] = w.len() as u32;
    let mut covs = Vec::new();
    let mut blocks = Vec::new();
    let mut param_at = 0usize;
    for (t, term) in plan.terms.iter().enumerate() {
        let (kind, mut col, ncat, link, stride, classes) = term_shape(term);
        if let TermKind::NormalBlock { cols, patterns, .. } = &term.kind {
            col = blocks.len();
            blocks.extend(block_table(term.n_local, cols, patterns));
        }
        let c = term.kind.covs();
        let words = [
            kind,
            col,
            ncat,
            link,
            c.len(),
            covs.len(),
            param_at,
            stride,
            usize::from(term.cluster_level),
            classes,
            layout.offsets[t],
            term.n_states,
        ];
        debug_assert_eq!(words.len(), TERM_WORDS);
        w.extend(words.iter().map(|&v| v as u32));
        covs.extend(c.iter().map(|&v| v as u32));
        param_at += term.n_states * stride;
    }
    w[9] = w.len() as u32;
    w.extend(covs);
    // the slot of each term in each combination
    w[10] = w.len() as u32;
    w.extend(layout.slot_of_combo.iter().copied());
    // the combinations of each between-level combination: offsets, list
    w[11] = w.len() as u32;
    let mut at = 0;
    for list in &layout.combos_of_between {
        w.push(at as u32);
        at += list.len();
    }
    w.push(at as u32);
    for list in &layout.combos_of_between {
        w.extend(list.iter().map(|&k| k as u32));
    }
    w[12] = w.len() as u32;
    for vc in &plan.virtual_cols {
        w.push(vc.dim as u32);
        w.push(vc.mult.map_or(u32::MAX, |m| m as u32));
    }
    w[13] = w.len() as u32;
    w.extend(data.cluster_starts.iter().map(|&s| s as u32));
    w[14] = w.len() as u32;
    w.extend(blocks);
    w[15] = w.len() as u32;
    let (offsets, _) = weight_sum_layout(plan);
    w.extend(offsets.iter().map(|&o| o as u32));
    w[16] = w.len() as u32;
    let (offsets, _) = info_block_layout(plan);
    for (o, term) in offsets.iter().zip(&plan.terms) {
        w.push(*o as u32);
        // 0: the term's information comes from its weight sums
        w.push(if rows_own_information(term) {
            term.n_local as u32
        } else {
            0
        });
    }
    // the moment form's tables where the device takes it (gpu/moment.rs)
    if moment::moment_unsupported(plan, layout).is_none() {
        w[17] = w.len() as u32;
        let at = w.len();
        w.extend(moment::moment_words(layout, at));
    }
    w
}

/// Each term's offset among a cluster's state weight sums
/// (shaders/scores.wgsl: add_weight_sums, laid out as the terms'
/// [`InfoAcc::wsum`]: per state, per state and pattern for a normal
/// block), and their count.
fn weight_sum_layout(plan: &Plan) -> (Vec<usize>, usize) {
    offsets_of(plan, |term| InfoAcc::new(term).wsum.len())
}

/// Each term's offset among a cluster's information blocks
/// (shaders/scores.wgsl: add_term_info, laid out as the terms'
/// [`InfoAcc::mats`]; only the terms of [`rows_own_information`] have
/// any: the others' come from the weight sums), and their count.
fn info_block_layout(plan: &Plan) -> (Vec<usize>, usize) {
    offsets_of(plan, |term| {
        if rows_own_information(term) {
            InfoAcc::new(term).mats.len()
        } else {
            0
        }
    })
}

/// Whether each row of `term` has its own information matrix (the term
/// has covariates, or is a 3PL guessing term), which the device adds up
/// row by row, rather than one that follows from its states' weight sums.
fn rows_own_information(term: &Term) -> bool {
    !term.kind.covs().is_empty() || matches!(term.kind, TermKind::Guessing { .. })
}

/// The offsets of consecutive runs of `len(term)` floats, one per term of
/// `plan`, and their total.
fn offsets_of(plan: &Plan, len: impl Fn(&Term) -> usize) -> (Vec<usize>, usize) {
    let mut at = 0;
    let offsets = plan
        .terms
        .iter()
        .map(|term| {
            let o = at;
            at += len(term);
            o
        })
        .collect();
    (offsets, at)
}

/// The most covariates (node columns included) of a term whose expected
/// information the device accumulates row by row (shaders/common.wgsl:
/// MAX_INFO_COVS).
pub const MAX_INFO_COVS: usize = 16;

/// Whether the device computes an EM step's expected information for
/// `plan`: every term either has no covariates (node columns count as
/// covariates) and is not a 3PL guessing term, so that its information
/// follows from its states' weight sums and its parameters (eval/mod.rs,
/// term_info), or has at most [`MAX_INFO_COVS`] covariates, whose rows'
/// own matrices the device adds up (shaders/scores.wgsl: add_term_info).
pub fn information_on_device(plan: &Plan) -> bool {
    plan.terms
        .iter()
        .all(|t| t.kind.covs().len() <= MAX_INFO_COVS)
}

/// A normal block's table (shaders/block.wgsl): its data columns, then per
/// missing-data pattern the mask of its observed variables, the offset of
/// its inverse within a state's parameters ([`block_param_floats`]) and
/// its size.
fn block_table(n_local: usize, cols: &[usize], patterns: &[Vec<usize>]) -> Vec<u32> {
    let mut w: Vec<u32> = cols.iter().map(|&c| c as u32).collect();
    let mut at = n_local;
    for pat in patterns {
        let mask = pat.iter().fold(0u32, |m, &i| m | (1 << i));
        w.extend([mask, at as u32, pat.len() as u32]);
        at += pat.len() * pat.len() + 1;
    }
    w
}

/// A normal block's parameters per state for the shader: the local ones,
/// then per pattern the inverse of the observed covariance block and the
/// log normalising constant (eval/block.rs: prepare).
fn block_param_floats(
    n_states: usize,
    nl: usize,
    n_patterns: usize,
    (params, inv, inv_offset, log_norm): (&[f64], &[f64], &[usize], &[f64]),
    out: &mut Vec<f32>,
) {
    for s in 0..n_states {
        out.extend(params[s * nl..(s + 1) * nl].iter().map(|&v| v as f32));
        for pat in 0..n_patterns {
            let k = s * n_patterns + pat;
            let end = inv_offset.get(k + 1).copied().unwrap_or(inv.len());
            out.extend(inv[inv_offset[k]..end].iter().map(|&v| v as f32));
            out.push(log_norm[k] as f32);
        }
    }
}

/// A term's kind code, column, categories, link, parameters per state
/// and classes (shaders/common.wgsl: the descriptor).
fn term_shape(term: &Term) -> (usize, usize, usize, usize, usize, usize) {
    let q = term.kind.covs().len();
    match &term.kind {
        TermKind::Categorical {
            col, ncat, link, ..
        } => (0, *col, *ncat, link_code(*link), ncat - 1 + q, 0),
        TermKind::Normal { col, .. } => (1, *col, 0, 0, q + 3, 0),
        TermKind::ClassLogit { classes, .. } => (2, 0, 0, 0, q + 1, *classes),
        TermKind::Guessing { col, link, .. } => (3, *col, 2, link_code(*link), q + 2, 0),
        TermKind::Nominal { col, ncat, .. } => (4, *col, *ncat, 0, ncat * (1 + q), 0),
        TermKind::NormalBlock { cols, patterns, .. } => {
            // the table's offset goes in the column word (plan_words)
            let inverses: usize = patterns.iter().map(|p| p.len() * p.len() + 1).sum();
            (5, 0, cols.len(), patterns.len(), term.n_local + inverses, 0)
        }
    }
}

fn link_code(link: Link) -> usize {
    match link {
        Link::Logit => 0,
        Link::Probit => 1,
    }
}

/// Why the shaders cannot evaluate a plan, if they cannot.
pub fn unsupported(plan: &Plan) -> Option<String> {
    let states: usize = plan.terms.iter().map(|t| t.n_states).sum();
    if states > MAX_SLOTS {
        return Some(format!(
            "{states} term states per row (the GPU backend holds {MAX_SLOTS})"
        ));
    }
    if plan.dims > MAX_DIMS {
        return Some(format!(
            "{} integration dimensions (the GPU backend holds {MAX_DIMS})",
            plan.dims
        ));
    }
    plan.terms.iter().find_map(|t| match &t.kind {
        TermKind::NormalBlock { cols, .. } if cols.len() > MAX_BLOCK => Some(format!(
            "a block of {} continuous variables with residual covariances (the GPU backend holds {MAX_BLOCK})",
            cols.len()
        )),
        _ => None,
    })
}

/// Each term state's parameters for the shader, in term order (see
/// [`term_shape`] for the layouts).
fn param_floats(plan: &Plan, prep: &Prepared) -> Result<Vec<f32>, BackendError> {
    let mut out = Vec::new();
    for (term, tp) in plan.terms.iter().zip(&prep.terms) {
        let nl = term.n_local;
        match (&term.kind, tp) {
            (TermKind::Categorical { .. }, TermPrep::Categorical { params, .. })
            | (TermKind::Guessing { .. }, TermPrep::Guessing { params })
            | (TermKind::Nominal { .. }, TermPrep::Nominal { params, .. }) => {
                out.extend(params.iter().map(|&v| v as f32));
            }
            (
                TermKind::Normal { .. },
                TermPrep::Normal {
                    params,
                    inv_var,
                    log_norm,
                },
            ) => {
                for s in 0..term.n_states {
                    let p = &params[s * nl..(s + 1) * nl];
                    out.extend(p[..nl - 1].iter().map(|&v| v as f32));
                    out.push(inv_var[s] as f32);
                    out.push(log_norm[s] as f32);
                }
            }
            (
                TermKind::NormalBlock { patterns, .. },
                TermPrep::NormalBlock {
                    params,
                    inv,
                    inv_offset,
                    log_norm,
                },
            ) => {
                let prep = (&params[..], &inv[..], &inv_offset[..], &log_norm[..]);
                block_param_floats(term.n_states, nl, patterns.len(), prep, &mut out);
            }
            (TermKind::ClassLogit { classes, covs, .. }, TermPrep::ClassLogit { params, .. }) => {
                let per = nl / classes;
                let q = covs.len();
                for s in 0..term.n_states {
                    let (set, k) = (s / classes, s % classes);
                    let c = &params[set * nl + k * per..set * nl + (k + 1) * per];
                    out.push((c[0] + c[1 + q..].iter().sum::<f64>()) as f32);
                    out.extend(c[1..1 + q].iter().map(|&v| v as f32));
                }
            }
            _ => {
                return Err(BackendError::Unsupported(
                    "a term kind the GPU backend does not evaluate".into(),
                ));
            }
        }
    }
    // a binding may not be empty
    if out.is_empty() {
        out.push(0.0);
    }
    Ok(out)
}

/// The terms' gradients (per term, over its parameters, as
/// [`finish_gradient`] takes them) from a score laid out as the shaders'
/// parameters (see [`term_shape`]): a categorical term's are its
/// parameters; a normal term's hold θ's at the slot of 1/θ; a class
/// logit's intercept slot is also each class-on-class effect's (they are
/// folded into it).
fn term_grads(plan: &Plan, score: &[f64]) -> Vec<Vec<f64>> {
    let mut at = 0;
    let mut out = Vec::with_capacity(plan.terms.len());
    for term in &plan.terms {
        let nl = term.n_local;
        let stride = term_shape(term).4;
        let mut g = vec![0.0; term.n_term_params()];
        for s in 0..term.n_states {
            let src = &score[at + s * stride..at + (s + 1) * stride];
            match &term.kind {
                TermKind::ClassLogit { classes, covs, .. } => {
                    let (set, k) = (s / classes, s % classes);
                    let per = nl / classes;
                    let base = set * nl + k * per;
                    g[base..base + 1 + covs.len()].copy_from_slice(src);
                    g[base + 1 + covs.len()..base + per].fill(src[0]);
                }
                _ => g[s * nl..(s + 1) * nl].copy_from_slice(&src[..nl]),
            }
        }
        at += term.n_states * stride;
        out.push(g);
    }
    out
}

/// The gradient and its rounding bound ([`score_eps`] of the clusters'
/// largest |log-likelihood| times the magnitudes) from the score and
/// magnitudes the device summed (laid out as the shaders' parameters),
/// plus per-term gradients and magnitudes formed on the host (`host`, as
/// [`finish_gradient`] takes them).
fn device_gradient(
    plan: &Plan,
    prep: &Prepared,
    (score, magnitude): (&[f64], &[f64]),
    host: Option<&(TermVecs, TermVecs)>,
    max_abs_ll: f64,
) -> (Vec<f64>, Vec<f64>) {
    let mut grads = term_grads(plan, score);
    let mut bound = term_grads(plan, magnitude);
    if let Some((g_host, m_host)) = host {
        for (to, from) in grads
            .iter_mut()
            .zip(g_host)
            .chain(bound.iter_mut().zip(m_host))
        {
            to.iter_mut().zip(from).for_each(|(a, b)| *a += b);
        }
    }
    let eps = score_eps(max_abs_ll);
    bound.iter_mut().flatten().for_each(|v| *v *= eps);
    (
        finish_gradient(plan, prep, &grads),
        finish_gradient_bound(plan, prep, &bound),
    )
}

/// Whether the device computes what `want` asks of `backend`'s plan: the
/// log-likelihood, the gradient, the posterior moments (these on grids
/// without step dimensions) and, with the gradient, the information
/// ([`information_on_device`]); not the meat or the posterior
/// probabilities. Where the CPU takes the moment form (GoM and FMA-GoM
/// long data), the log-likelihood, the gradient and the posterior moments
/// (the CPU's, formed on the host from the runs' log-densities the device
/// gives: they keep the adaptation off the inner dimensions, as the form
/// needs), and only where the device takes that form on this grid too
/// (`moment`: for the log-likelihood, and for the gradient): its general
/// loop would evaluate every row at every pass, tens of times the CPU's
/// work there (an FMA-GoM's log-likelihood took over 15 s on an H200
/// against 0.75 s on two cores).
fn device_evaluates(want: Want, cpu: &CpuBackend, moment: (bool, bool)) -> bool {
    if cpu.moment_form() {
        return moment.0
            && (!want.gradient || moment.1)
            && !(want.information
                || want.meat
                || want.posteriors
                || (want.moments && !cpu.layout().steps.is_empty()));
    }
    !((want.information && !(want.gradient && information_on_device(cpu.plan())))
        || want.meat
        || want.posteriors
        || (want.moments && !cpu.layout().steps.is_empty()))
}

/// Whether a gradient from the device is resolved: its norm at least
/// [`GPU_RESOLVE`] times its rounding bound's, both with respect to the
/// free parameters (the sums of their phi entries' gradients and bounds,
/// `free_of_phi`; empty: phi's own).
fn resolved(gradient: &[f64], bound: &[f64], free_of_phi: &[Option<usize>]) -> bool {
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let (g, b) = if free_of_phi.len() == gradient.len() {
        let n = free_of_phi
            .iter()
            .flatten()
            .map(|&i| i + 1)
            .max()
            .unwrap_or(0);
        let (mut g, mut b) = (vec![0.0; n], vec![0.0; n]);
        for ((f, x), y) in free_of_phi.iter().zip(gradient).zip(bound) {
            if let Some(i) = *f {
                g[i] += x;
                b[i] += y;
            }
        }
        (norm(&g), norm(&b))
    } else {
        (norm(gradient), norm(bound))
    };
    g.is_finite() && g >= GPU_RESOLVE * b
}

/// The per-chunk parameters (shaders/common.wgsl: Chunk).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ChunkUniform {
    j0: u32,
    nj: u32,
    n_pass: u32,
    per_cluster: u32,
    row: u32,
    n_score: u32,
    n_slice: u32,
    want_moments: u32,
    pass0: u32,
    pass1: u32,
    n_wsum: u32,
    n_mats: u32,
}

/// What a chunk computes beyond its clusters' log-likelihoods: their
/// scores (`n_score` floats each, laid out as the parameters), their
/// state weight sums (`n_wsum`) and their terms' information blocks
/// (`n_mats`, of the terms with covariates), for the information, and the
/// posterior moments' sums per between-level combination.
#[derive(Clone, Copy)]
struct Sweep {
    n_score: usize,
    grad: bool,
    n_wsum: usize,
    n_mats: usize,
    moments: bool,
}

impl Sweep {
    /// Floats of a cluster's score (0 without the gradient).
    fn score_len(&self) -> usize {
        if self.grad { self.n_score } else { 0 }
    }

    /// Floats of a cluster's score, its magnitudes, its weight sums and
    /// its information blocks: what the device sums over clusters ([`Sweep::summed`]).
    fn summed_len(&self) -> usize {
        2 * self.score_len() + self.n_wsum + self.n_mats
    }

    /// Floats of a cluster's slice, with `n_moments` moments' sums.
    fn slice(&self, n_moments: usize) -> usize {
        self.summed_len() + if self.moments { n_moments } else { 0 }
    }

    /// Whether the device sums the clusters' scores: with the gradient
    /// and without the moments (which adaptation needs per cluster).
    fn summed(&self) -> bool {
        self.grad && !self.moments
    }
}

/// What a chunk brings back: per cluster its log-likelihood, and as the
/// [`Sweep`] asks either each cluster's slice (its score, its
/// magnitudes, then its moments' sums) or the score and magnitudes summed
/// over the chunk's clusters ([`Sweep::summed`]).
struct ChunkBack {
    ll: Vec<f32>,
    slices: Vec<f32>,
    totals: Vec<f32>,
}

/// What stays on the device for one plan and its data.
struct Resident {
    plan_buf: wgpu::Buffer,
    rows_buf: wgpu::Buffer,
    layout: wgpu::BindGroupLayout,
    densities: wgpu::ComputePipeline,
    reduce: wgpu::ComputePipeline,
    scores: wgpu::ComputePipeline,
    sum_clusters: wgpu::ComputePipeline,
    sum_runs: wgpu::ComputePipeline,
    /// The moment form's first sweep (shaders/moment.wgsl), and whether
    /// the plan's words hold its tables (gpu/moment.rs).
    moment_densities: wgpu::ComputePipeline,
    moment_form: bool,
    /// The moment form's second sweep, where the device takes the form,
    /// its workgroup holds the plan's polynomials and the adapter gives
    /// it the workgroup memory it needs ([`moment::MOMENT_SCORES_SHARED`]).
    moment_scores: Option<wgpu::ComputePipeline>,
    /// Lanes per cluster of `scores` ([`scores_lanes`]) and passes per
    /// dispatch.
    scores_lanes: u32,
    pass_block: usize,
    /// Most f32 the adapter binds at once.
    bind_floats: usize,
    /// The plain grid's nodes: per node its coordinates, then ln weight
    /// (every chunk reads them).
    plain_nodes: wgpu::Buffer,
    n_pass: usize,
}

/// The GPU backend: log-likelihood evaluations on the device, the rest on
/// the CPU backend it holds (see the module's documentation).
pub struct GpuBackend {
    cpu: CpuBackend,
    gpu: Arc<GpuDevice>,
    /// `None` when the plan has what the shaders do not evaluate (why:
    /// `unsupported`).
    resident: Option<Resident>,
    unsupported: Option<String>,
    counts: Mutex<[EvalCount; 4]>,
    /// The last gradient from the device was not resolved (see
    /// [`GPU_RESOLVE`]): log-likelihoods go to the CPU until one is.
    near_optimum: AtomicBool,
    /// How many more gradients go to the CPU before the device is tried
    /// again, and how many will after the next unresolved one
    /// ([`GPU_BACKOFF`]).
    cpu_turns: AtomicU32,
    backoff: AtomicU32,
    /// The free parameter of each phi entry ([`Backend::watch_free`]);
    /// empty: each phi entry its own.
    free_of_phi: Mutex<Vec<Option<usize>>>,
    /// Most (cluster, pass) entries, and node values, per chunk.
    chunk_entries: usize,
    /// Workgroups per row of a dispatch.
    groups_per_row: u32,
}

/// What the device gets, as [`GpuBackend::debug_dump`] returns it: the
/// plan's words, the rows, the parameters and the plain grid's nodes.
pub type DeviceInputs = (Vec<u32>, Vec<f32>, Vec<f32>, Vec<f32>);

impl GpuBackend {
    /// A GPU backend for `cpu`'s plan and data on `gpu`: uploads them and
    /// builds the pipelines. A plan the shaders do not evaluate is
    /// evaluated by the CPU (see [`GpuBackend::on_device`]).
    pub fn new(cpu: CpuBackend, gpu: Arc<GpuDevice>) -> Result<GpuBackend, BackendError> {
        let unsupported = unsupported(cpu.plan());
        let resident = match unsupported {
            None => Some(Resident::new(&cpu, &gpu)?),
            Some(_) => None,
        };
        Ok(GpuBackend {
            cpu,
            gpu,
            resident,
            unsupported,
            counts: Mutex::new([EvalCount::default(); 4]),
            near_optimum: AtomicBool::new(false),
            cpu_turns: AtomicU32::new(0),
            free_of_phi: Mutex::new(Vec::new()),
            backoff: AtomicU32::new(1),
            chunk_entries: MAX_PASS_ENTRIES,
            groups_per_row: GROUPS_PER_ROW,
        })
    }

    /// The same backend with chunks of at most `entries` (cluster, pass)
    /// entries and node values (at least one cluster each): for tests of
    /// the streaming of large problems on small ones.
    pub fn with_chunk_entries(mut self, entries: usize) -> GpuBackend {
        self.chunk_entries = entries;
        self
    }

    /// The same backend dispatching at most `groups` workgroups per row
    /// (1 to 65,535): for tests of the 2-D dispatch of large problems on
    /// small ones.
    pub fn with_groups_per_row(mut self, groups: u32) -> GpuBackend {
        self.groups_per_row = groups.clamp(1, GROUPS_PER_ROW);
        self
    }

    /// Whether log-likelihood evaluations run on the device (else: why
    /// not).
    pub fn on_device(&self) -> Result<(), String> {
        match &self.unsupported {
            None => Ok(()),
            Some(why) => Err(why.clone()),
        }
    }

    /// Whether the device evaluates log-likelihoods in the moment form
    /// (gpu/moment.rs) where the CPU backend it holds takes that form.
    pub fn moment_form_on_device(&self) -> bool {
        self.resident.as_ref().is_some_and(|r| r.moment_form)
    }

    /// Whether the device also takes the moment form's gradients (its
    /// second sweep fits the plan's polynomials and the adapter's
    /// workgroup memory).
    pub fn moment_gradient_on_device(&self) -> bool {
        self.resident
            .as_ref()
            .is_some_and(|r| r.moment_scores.is_some())
    }

    /// For debugging the shaders off the device: the plan's words, the
    /// rows, the parameters at `phi` and the plain grid's nodes, as the
    /// device gets them (`tools/emulate_scores.py` runs the second sweep's
    /// arithmetic on them in f64).
    pub fn debug_dump(&self, phi: &[f64]) -> Result<DeviceInputs, BackendError> {
        let (plan, data, grid) = (self.cpu.plan(), self.cpu.data(), self.cpu.grid());
        let words = plan_words(plan, data, self.cpu.layout(), grid.n_nodes());
        let n_cols = plan.n_data_cols;
        let n_rows = data.weights.len();
        let mut rows = Vec::new();
        for r in 0..n_rows {
            rows.extend((0..n_cols).map(|c| data.columns[c][r] as f32));
        }
        rows.extend(data.weights.iter().map(|&w| w as f32));
        let prep = prepare(plan, phi)?;
        let params = param_floats(plan, &prep)?;
        let mut nodes = Vec::new();
        for q in 0..grid.n_nodes() {
            nodes.extend(grid.node(q).iter().map(|&v| v as f32));
            nodes.push(grid.log_weights[q] as f32);
        }
        Ok((words, rows, params, nodes))
    }

    /// The log-likelihood at `phi` on the device: each cluster's in f32,
    /// summed in f64 with the clusters' weights.
    pub fn device_loglik(
        &self,
        phi: &[f64],
        adapt: Option<&Adaptation>,
    ) -> Result<f64, BackendError> {
        Ok(self.device_eval(phi, Want::LL, adapt)?.0.loglik)
    }

    /// An evaluation on the device: the log-likelihood, and as `want`
    /// asks the gradient and the posterior moments (not the information,
    /// the meat or the posteriors: [`device_evaluates`]). With the gradient
    /// comes a bound on its rounding per parameter: [`GPU_SCORE_EPS`] times
    /// the sum of the clusters' scores' magnitudes, carried to phi like the
    /// gradient (with the magnitudes of the chain rule's factors).
    pub fn device_eval(
        &self,
        phi: &[f64],
        want: Want,
        adapt: Option<&Adaptation>,
    ) -> Result<(Evaluation, Vec<f64>), BackendError> {
        let Some(res) = &self.resident else {
            return Err(BackendError::Unsupported(format!(
                "the GPU backend does not evaluate {} yet",
                self.unsupported.as_deref().unwrap_or("this model")
            )));
        };
        let plan = self.cpu.plan();
        let prep = prepare(plan, phi)?;
        let params = param_floats(plan, &prep)?;
        let params_buf = self.upload(&params, wgpu::BufferUsages::STORAGE);
        let moment_grad = want.gradient && res.moment_scores.is_some();
        if res.moment_form
            && !(want.information || (want.gradient && !moment_grad))
            && let Some(out) =
                self.moment_eval(res, &prep, (&params_buf, params.len()), want, adapt)?
        {
            return Ok(out);
        }
        let (wsum_at, n_wsum) = weight_sum_layout(plan);
        let (mats_at, n_mats) = info_block_layout(plan);
        let info = want.information && want.gradient;
        let sweep = Sweep {
            n_score: params.len(),
            grad: want.gradient,
            n_wsum: if info { n_wsum } else { 0 },
            n_mats: if info { n_mats } else { 0 },
            moments: want.moments,
        };
        let data = self.cpu.data();
        let n_clusters = data.cluster_starts.len() - 1;
        // the chunk's (cluster, pass) entries, its nodes and its scores
        // within bounds
        let dims = self.cpu.grid().dims;
        let n_between = self.cpu.layout().combos_of_between.len();
        let per_unit = 1 + dims + dims * dims;
        let width = res.n_pass.max(1) * (dims + 1);
        // each lane's slice and state weights
        let lane_floats =
            sweep.slice(n_between * per_unit) + if sweep.grad { MAX_SLOTS } else { 0 };
        let sweep_cap = MAX_SWEEP_FLOATS.min(res.bind_floats);
        let per = (self.chunk_entries / width)
            .min(sweep_cap / (res.scores_lanes as usize * lane_floats).max(1))
            .max(1);
        let mut total = 0.0f64;
        let mut max_abs_ll = 0.0f64;
        let mut score = vec![0.0f64; sweep.n_score];
        let mut magnitude = vec![0.0f64; sweep.n_score];
        let mut wsum = vec![0.0f64; sweep.n_wsum];
        let mut mats = vec![0.0f64; sweep.n_mats];
        let mut moments = Vec::new();
        let mut j0 = 0;
        while j0 < n_clusters {
            let nj = per.min(n_clusters - j0);
            let back = self.chunk(res, &params_buf, (j0, nj), adapt, sweep)?;
            for (i, &l) in back.ll.iter().enumerate() {
                let j = j0 + i;
                let weight = if data.clustered {
                    1.0
                } else {
                    data.weights[data.cluster_starts[j]]
                };
                total += weight * f64::from(l);
                max_abs_ll = max_abs_ll.max(f64::from(l).abs());
            }
            // the chunk's sums ([`Sweep::summed`]) or each cluster's
            // slice: the score, its magnitudes, the weight sums (then the
            // moments' sums)
            let n_slice = sweep.slice(n_between * per_unit);
            let summed = (!back.totals.is_empty()).then_some(&back.totals[..]);
            for slice in summed
                .into_iter()
                .chain(back.slices.chunks_exact(n_slice.max(1)))
            {
                let (cluster, rest) = slice.split_at(sweep.score_len());
                let (magnitudes, rest) = rest.split_at(sweep.score_len());
                let (weights, rest) = rest.split_at(sweep.n_wsum);
                let (blocks, sums) = rest.split_at(sweep.n_mats);
                let add = |to: &mut [f64], from: &[f32]| {
                    to.iter_mut()
                        .zip(from)
                        .for_each(|(t, &v)| *t += f64::from(v));
                };
                add(&mut score, cluster);
                add(&mut magnitude, magnitudes);
                add(&mut wsum, weights);
                add(&mut mats, blocks);
                for unit in sums.chunks_exact(per_unit) {
                    let p = f64::from(unit[0]);
                    moments.push(p);
                    let inv = if p > 0.0 { 1.0 / p } else { 0.0 };
                    moments.extend(unit[1..].iter().map(|&v| f64::from(v) * inv));
                }
            }
            j0 += nj;
        }
        debug_assert!(!want.moments || moments.len() == n_clusters * n_between * per_unit);
        let loglik = if total.is_finite() && total > -1e29 {
            total
        } else {
            f64::NEG_INFINITY
        };
        let (gradient, noise) = if want.gradient && loglik.is_finite() {
            device_gradient(plan, &prep, (&score, &magnitude), None, max_abs_ll)
        } else {
            (Vec::new(), Vec::new())
        };
        let information = if info && loglik.is_finite() {
            let mut infos: Vec<InfoAcc> = plan.terms.iter().map(InfoAcc::new).collect();
            for ((acc, &at), (&m, term)) in infos
                .iter_mut()
                .zip(&wsum_at)
                .zip(mats_at.iter().zip(&plan.terms))
            {
                let n = acc.wsum.len();
                acc.wsum.copy_from_slice(&wsum[at..at + n]);
                if rows_own_information(term) {
                    let n = acc.mats.len();
                    acc.mats.copy_from_slice(&mats[m..m + n]);
                }
            }
            finish_information(plan, &prep, &mut infos)
        } else {
            Vec::new()
        };
        let ev = Evaluation {
            loglik,
            gradient,
            information,
            meat: Vec::new(),
            posteriors: Vec::new(),
            cluster_loglik: Vec::new(),
            moments: if want.moments { moments } else { Vec::new() },
            junctions: Vec::new(),
        };
        Ok((ev, noise))
    }

    fn upload<T: bytemuck::Pod>(&self, data: &[T], usage: wgpu::BufferUsages) -> wgpu::Buffer {
        self.gpu
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytemuck::cast_slice(data),
                usage,
            })
    }

    /// A storage buffer of `floats` f32 (at least one: a binding may not
    /// be empty), copied out if `readable`.
    fn storage(&self, label: &str, floats: usize, readable: bool) -> wgpu::Buffer {
        let mut usage = wgpu::BufferUsages::STORAGE;
        if readable {
            usage |= wgpu::BufferUsages::COPY_SRC;
        }
        self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (floats.max(1) * 4) as u64,
            usage,
            mapped_at_creation: false,
        })
    }

    /// The bind group of `buffers`, in binding order (shaders/common.wgsl).
    fn bind_group(&self, res: &Resident, buffers: [&wgpu::Buffer; 10]) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        self.gpu
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &res.layout,
                entries: &entries,
            })
    }

    /// Clusters `j0 .. j0 + nj`: their log-likelihoods, and their scores
    /// and moments' sums as `sweep` asks.
    fn chunk(
        &self,
        res: &Resident,
        params: &wgpu::Buffer,
        (j0, nj): (usize, usize),
        adapt: Option<&Adaptation>,
        sweep: Sweep,
    ) -> Result<ChunkBack, BackendError> {
        let dev = &self.gpu.device;
        // the plain grid's are resident; an adapted grid's are each chunk's own
        let adapted = adapt.map(|a| {
            let nodes = self.adapted_nodes(res, a, j0, nj);
            self.upload(&nodes, wgpu::BufferUsages::STORAGE)
        });
        let nodes_buf = adapted.as_ref().unwrap_or(&res.plain_nodes);
        let dims = self.cpu.grid().dims;
        let n_between = self.cpu.layout().combos_of_between.len();
        let n_slice = sweep.slice(n_between * (1 + dims + dims * dims));
        let uniform = ChunkUniform {
            j0: j0 as u32,
            nj: nj as u32,
            n_pass: res.n_pass as u32,
            per_cluster: u32::from(adapt.is_some()),
            row: self.groups_per_row * GROUP,
            n_score: sweep.score_len() as u32,
            n_slice: n_slice as u32,
            want_moments: u32::from(sweep.moments),
            pass0: 0,
            pass1: res.n_pass as u32,
            n_wsum: sweep.n_wsum as u32,
            n_mats: sweep.n_mats as u32,
        };
        let uniform_buf = self.upload(&[uniform], wgpu::BufferUsages::UNIFORM);
        let pass_buf = self.storage("pass_ll", nj * res.n_pass, false);
        let out_buf = self.storage("cluster_ll", nj, true);
        let lanes = res.scores_lanes as usize;
        let sweep_buf = self.storage("sweep", lanes * nj * n_slice, false);
        let weights_len = if sweep.grad {
            lanes * nj * MAX_SLOTS
        } else {
            0
        };
        let weights_buf = self.storage("weights", weights_len, false);
        // the clusters' slices summed over their lanes, then with the
        // gradient alone the runs' sums (the first run's: the chunk's)
        let n_entries = sweep.summed_len();
        let n_run_sums = if sweep.summed() {
            nj.div_ceil(SUM_RUN) * n_entries
        } else {
            0
        };
        let totals_buf = self.storage("totals", nj * n_slice + n_run_sums, true);
        let buffers = [
            &res.plan_buf,
            &res.rows_buf,
            params,
            nodes_buf,
            &pass_buf,
            &out_buf,
            &uniform_buf,
            &sweep_buf,
            &weights_buf,
            &totals_buf,
        ];
        let bind = |uniform: &wgpu::Buffer| {
            let mut bufs = buffers;
            bufs[6] = uniform;
            self.bind_group(res, bufs)
        };
        let group = bind(&uniform_buf);
        // the second sweep's passes in blocks, one dispatch each
        let block = res.pass_block;
        let blocks: Vec<(wgpu::Buffer, wgpu::BindGroup)> = (0..res.n_pass)
            .step_by(block)
            .map(|p0| {
                let u = ChunkUniform {
                    pass0: p0 as u32,
                    pass1: (p0 + block).min(res.n_pass) as u32,
                    ..uniform
                };
                let buf = self.upload(&[u], wgpu::BufferUsages::UNIFORM);
                let g = bind(&buf);
                (buf, g)
            })
            .collect();
        let mut enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            pass.set_bind_group(0, &group, &[]);
            pass.set_pipeline(&res.densities);
            let (x, y) = groups(nj * res.n_pass, self.groups_per_row);
            pass.dispatch_workgroups(x, y, 1);
            pass.set_pipeline(&res.reduce);
            let (x, y) = groups(nj, self.groups_per_row);
            pass.dispatch_workgroups(x, y, 1);
        }
        if n_slice > 0 {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            pass.set_pipeline(&res.scores);
            let clusters_per_group = SCORES_GROUP / res.scores_lanes;
            let (x, y) = groups_of(nj, clusters_per_group, self.groups_per_row);
            for (_, g) in &blocks {
                pass.set_bind_group(0, g, &[]);
                pass.dispatch_workgroups(x, y, 1);
            }
            if sweep.summed() {
                pass.set_bind_group(0, &group, &[]);
                pass.set_pipeline(&res.sum_clusters);
                let (x, y) = groups(n_run_sums, self.groups_per_row);
                pass.dispatch_workgroups(x, y, 1);
                pass.set_pipeline(&res.sum_runs);
                let (x, y) = groups(n_entries, self.groups_per_row);
                pass.dispatch_workgroups(x, y, 1);
            }
        }
        // `floats` f32 of `src` from f32 `at` on
        let read =
            |enc: &mut wgpu::CommandEncoder, src: &wgpu::Buffer, at: usize, floats: usize| {
                let buf = dev.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("read"),
                    size: (floats * 4) as u64,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                enc.copy_buffer_to_buffer(src, (at * 4) as u64, &buf, 0, (floats * 4) as u64);
                buf
            };
        let read_ll = read(&mut enc, &out_buf, 0, nj);
        let read_sweep =
            (n_slice > 0 && !sweep.summed()).then(|| read(&mut enc, &totals_buf, 0, nj * n_slice));
        let read_totals = sweep
            .summed()
            .then(|| read(&mut enc, &totals_buf, nj * n_slice, n_entries));
        self.gpu.queue.submit([enc.finish()]);
        let back = |b: Option<wgpu::Buffer>| b.map_or(Ok(Vec::new()), |b| read_back(dev, &b));
        Ok(ChunkBack {
            ll: read_back(dev, &read_ll)?,
            slices: back(read_sweep)?,
            totals: back(read_totals)?,
        })
    }

    /// The adapted nodes of clusters `j0 .. j0 + nj` (the CPU's
    /// `nodes_of`), per cluster and pass: coordinates, then ln weight.
    fn adapted_nodes(&self, res: &Resident, a: &Adaptation, j0: usize, nj: usize) -> Vec<f32> {
        let grid = self.cpu.grid();
        let (dims, nq) = (grid.dims, grid.n_nodes());
        let n_between = res.n_pass / nq.max(1);
        let mut out = Vec::with_capacity(nj * res.n_pass * (dims + 1));
        let mut z = vec![0.0; nq * dims];
        let mut log_w = vec![0.0; nq];
        for j in j0..j0 + nj {
            for b in 0..n_between {
                nodes_of(grid, Some(a), j, b, &mut z, &mut log_w);
                for q in 0..nq {
                    out.extend(z[q * dims..(q + 1) * dims].iter().map(|&v| v as f32));
                    out.push(log_w[q] as f32);
                }
            }
        }
        out
    }
}

/// Workgroups of [`GROUP`] invocations for `n` invocations: rows of at
/// most `per_row`.
fn groups(n: usize, per_row: u32) -> (u32, u32) {
    groups_of(n, GROUP, per_row)
}

/// Workgroups of `size` invocations for `n` invocations: rows of at most
/// `per_row`.
fn groups_of(n: usize, size: u32, per_row: u32) -> (u32, u32) {
    let g = n.div_ceil(size as usize).max(1) as u32;
    if g <= per_row {
        (g, 1)
    } else {
        (per_row, g.div_ceil(per_row))
    }
}

/// Waits for `buf` to map and reads it as f32.
fn read_back(device: &wgpu::Device, buf: &wgpu::Buffer) -> Result<Vec<f32>, BackendError> {
    let slice = buf.slice(..);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| BackendError::Unsupported(format!("the GPU did not finish: {e}")))?;
    rx.recv()
        .map_err(|e| BackendError::Unsupported(format!("the GPU result was lost: {e}")))?
        .map_err(|e| BackendError::Unsupported(format!("the GPU result could not be read: {e}")))?;
    let view = slice
        .get_mapped_range()
        .map_err(|e| BackendError::Unsupported(format!("the GPU result could not be read: {e}")))?;
    let out = bytemuck::cast_slice::<u8, f32>(&view).to_vec();
    drop(view);
    buf.unmap();
    Ok(out)
}

impl Resident {
    fn new(cpu: &CpuBackend, gpu: &GpuDevice) -> Result<Resident, BackendError> {
        let (plan, data, grid) = (cpu.plan(), cpu.data(), cpu.grid());
        let layout = cpu.layout();
        let nq = grid.n_nodes();
        let words = plan_words(plan, data, layout, nq);
        let n_cols = plan.n_data_cols;
        let n_rows = data.weights.len();
        let mut rows = Vec::with_capacity(n_rows * n_cols + n_rows);
        for r in 0..n_rows {
            rows.extend((0..n_cols).map(|c| data.columns[c][r] as f32));
        }
        rows.extend(data.weights.iter().map(|&w| w as f32));
        let limit = gpu.limits.max_storage_buffer_binding_size as usize;
        if rows.len() * 4 > limit || words.len() * 4 > limit {
            return Err(BackendError::Unsupported(format!(
                "the data ({} MB) exceed what the GPU binds at once ({} MB)",
                (rows.len() * 4) >> 20,
                limit >> 20
            )));
        }
        let dev = &gpu.device;
        let upload = |bytes: &[u8]| {
            dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: bytes,
                usage: wgpu::BufferUsages::STORAGE,
            })
        };
        let plan_buf = upload(bytemuck::cast_slice(&words));
        let rows_buf = upload(bytemuck::cast_slice(&rows));
        let software = gpu.is_software();
        let scores_lanes = scores_lanes(layout.n_passes());
        let (
            shaders,
            [
                densities,
                reduce,
                scores,
                sum_clusters,
                sum_runs,
                moment_densities,
            ],
        ) = pipelines(dev, SCORES_GROUP, scores_lanes)?;
        let moment_form = moment::moment_unsupported(plan, layout).is_none();
        let moment_scores = if moment_form
            && moment::moment_scores_fit(layout)
            && gpu.limits.max_compute_workgroup_storage_size >= moment::MOMENT_SCORES_SHARED
        {
            moment_scores_pipeline(dev, &shaders)
        } else {
            None
        };
        let mut plain_nodes = Vec::with_capacity(nq * (grid.dims + 1));
        for q in 0..nq {
            plain_nodes.extend(grid.node(q).iter().map(|&v| v as f32));
            plain_nodes.push(grid.log_weights[q] as f32);
        }
        Ok(Resident {
            plan_buf,
            rows_buf,
            layout: shaders.bind,
            densities,
            reduce,
            scores,
            sum_clusters,
            sum_runs,
            moment_densities,
            moment_form,
            moment_scores,
            scores_lanes,
            pass_block: if software {
                PASS_BLOCK * scores_lanes as usize
            } else {
                layout.n_passes().max(1)
            },
            bind_floats: limit / 4,
            plain_nodes: upload(bytemuck::cast_slice(&plain_nodes)),
            n_pass: layout.n_passes(),
        })
    }
}

/// Lanes per cluster of the second sweep: the passes rounded up to a
/// power of 2, at most [`SCORES_GROUP`] (which they divide).
fn scores_lanes(n_pass: usize) -> u32 {
    n_pass.next_power_of_two().min(SCORES_GROUP as usize) as u32
}

/// The shader module, its layouts and the six pipelines (`pass_densities`,
/// `cluster_logliks`, `cluster_scores`, `sum_clusters`, `sum_runs`,
/// `moment_densities`), built
/// inside an error scope (a shader wgpu rejects is an error, not a
/// panic).
fn pipelines(
    dev: &wgpu::Device,
    scores_group: u32,
    scores_lanes: u32,
) -> Result<(Shaders, [wgpu::ComputePipeline; 6]), BackendError> {
    let scope = dev.push_error_scope(wgpu::ErrorFilter::Validation);
    let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("loglik"),
        source: wgpu::ShaderSource::Wgsl(SHADER.into()),
    });
    let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    };
    let mut entries: Vec<wgpu::BindGroupLayoutEntry> = (0..6).map(|b| storage(b, b < 4)).collect();
    entries.push(wgpu::BindGroupLayoutEntry {
        binding: 6,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    });
    entries.extend([storage(7, false), storage(8, false), storage(9, false)]);
    let layout = dev.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: None,
        entries: &entries,
    });
    let pl = dev.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: None,
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let group = [
        ("SCORES_GROUP", f64::from(scores_group)),
        ("SCORES_LANES", f64::from(scores_lanes)),
    ];
    let pipeline = |entry: &str| {
        dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: Some(&pl),
            module: &module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: if entry == "cluster_scores" {
                    &group
                } else {
                    &[]
                },
                ..Default::default()
            },
            cache: None,
        })
    };
    let pipelines = [
        "pass_densities",
        "cluster_logliks",
        "cluster_scores",
        "sum_clusters",
        "sum_runs",
        "moment_densities",
    ]
    .map(pipeline);
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(BackendError::Unsupported(format!(
            "the GPU rejected the shaders: {e}"
        )));
    }
    let shaders = Shaders {
        bind: layout,
        pipeline: pl,
        module,
    };
    Ok((shaders, pipelines))
}

/// The shader module and the layouts its pipelines share, kept for the
/// pipelines built apart ([`moment_scores_pipeline`]).
struct Shaders {
    bind: wgpu::BindGroupLayout,
    pipeline: wgpu::PipelineLayout,
    module: wgpu::ShaderModule,
}

/// The moment form's second sweep (shaders/moment.wgsl: `moment_scores`,
/// [`SCORES_GROUP`] lanes per cluster), in its own error scope: `None`
/// where the device rejects it (the form's gradients then stay on the
/// CPU).
fn moment_scores_pipeline(dev: &wgpu::Device, shaders: &Shaders) -> Option<wgpu::ComputePipeline> {
    let scope = dev.push_error_scope(wgpu::ErrorFilter::Validation);
    let lanes = [
        ("SCORES_GROUP", f64::from(SCORES_GROUP)),
        ("SCORES_LANES", moment::MOMENT_LANES as f64),
    ];
    let pipeline = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("moment_scores"),
        layout: Some(&shaders.pipeline),
        module: &shaders.module,
        entry_point: Some("moment_scores"),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants: &lanes,
            ..Default::default()
        },
        cache: None,
    });
    pollster::block_on(scope.pop())
        .is_none()
        .then_some(pipeline)
}

impl GpuBackend {
    /// Whether an evaluation of `want` goes to the CPU near an optimum:
    /// a log-likelihood after an unresolved gradient from the device, a
    /// gradient while the backoff lasts (counting it down).
    fn cpu_turn(&self, want: Want) -> bool {
        if !want.gradient {
            return self.near_optimum.load(Ordering::Relaxed);
        }
        let turns = self.cpu_turns.load(Ordering::Relaxed);
        if turns > 0 {
            self.cpu_turns.store(turns - 1, Ordering::Relaxed);
        }
        turns > 0
    }
}

impl Backend for GpuBackend {
    fn describe(&self) -> String {
        match &self.unsupported {
            None => {
                // what ran where so far (a fit describes its backend at the end)
                let on_gpu = self.counts.lock().map_or([0; 4], |c| c.map(|k| k.count));
                let on_cpu: usize = self.cpu.counts().iter().map(|c| c.count).sum();
                format!(
                    "gpu: {}; {} log-likelihood, {} gradient and {} EM evaluation(s) on the GPU, {on_cpu} on the {} (EM steps the device does not take, posteriors, the meat, and the evaluations near an optimum)",
                    self.gpu.describe(),
                    on_gpu[0],
                    on_gpu[1],
                    on_gpu[2],
                    self.cpu.describe()
                )
            }
            Some(why) => format!(
                "gpu: {}; not used (it does not evaluate {why} yet): {}",
                self.gpu.describe(),
                self.cpu.describe()
            ),
        }
    }

    fn plan(&self) -> &Plan {
        self.cpu.plan()
    }

    fn data(&self) -> &EngineData {
        self.cpu.data()
    }

    fn grid(&self) -> &Grid {
        self.cpu.grid()
    }

    /// The CPU's, which makes the evaluations the device does not.
    fn shared_dims(&self) -> Vec<usize> {
        self.cpu.shared_dims()
    }

    fn counts(&self) -> [EvalCount; 4] {
        let mut c = self.cpu.counts();
        if let Ok(g) = self.counts.lock() {
            for (a, b) in c.iter_mut().zip(g.iter()) {
                *a += *b;
            }
        }
        c
    }

    /// On the device where it computes what `want` asks (see
    /// [`device_evaluates`]); a gradient only where it is resolved (else
    /// again on the CPU), and log-likelihoods on the CPU while the last
    /// gradient was not (see [`GPU_RESOLVE`]).
    fn evaluate_adapted(
        &self,
        phi: &[f64],
        want: Want,
        adapt: Option<&Adaptation>,
    ) -> Result<Evaluation, BackendError> {
        let Some(res) = &self.resident else {
            return self.cpu.evaluate_adapted(phi, want, adapt);
        };
        // (a grid adapted in an inner dimension, where the moment form does
        // not apply, goes to the CPU: the device's general loop does tens
        // to thousands of times its work)
        let applies = self.cpu.moment_form_applies(adapt);
        let moment = (
            res.moment_form && applies,
            res.moment_scores.is_some() && applies,
        );
        if !device_evaluates(want, &self.cpu, moment) || self.cpu_turn(want) {
            return self.cpu.evaluate_adapted(phi, want, adapt);
        }
        let start = Instant::now();
        let (ev, bound) = self.device_eval(phi, want, adapt)?;
        if want.gradient && ev.loglik.is_finite() {
            let free = self
                .free_of_phi
                .lock()
                .map(|f| f.clone())
                .unwrap_or_default();
            let ok = resolved(&ev.gradient, &bound, &free);
            self.near_optimum.store(!ok, Ordering::Relaxed);
            if !ok {
                let wait = self.backoff.load(Ordering::Relaxed);
                self.cpu_turns.store(wait, Ordering::Relaxed);
                self.backoff
                    .store((2 * wait).min(GPU_BACKOFF), Ordering::Relaxed);
                return self.cpu.evaluate_adapted(phi, want, adapt);
            }
            self.backoff.store(1, Ordering::Relaxed);
        }
        if let Ok(mut c) = self.counts.lock() {
            let n_pass = self.cpu.layout().n_passes();
            let k = &mut c[want.kind()];
            k.count += 1;
            k.seconds += start.elapsed().as_secs_f64();
            k.row_passes += (self.cpu.data().weights.len() * n_pass) as f64;
        }
        Ok(ev)
    }

    fn exact(&self) -> Option<&dyn Backend> {
        Some(&self.cpu)
    }

    fn watch_free(&self, free_of_phi: &[Option<usize>]) {
        if let Ok(mut f) = self.free_of_phi.lock() {
            *f = free_of_phi.to_vec();
        }
    }
}
