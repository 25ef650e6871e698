//! `mlmix bench`: a model's log-likelihood and gradient evaluations on
//! each backend this build and machine have (the CPU; a GPU adapter, a
//! software one too), timed at the default starting values on the plain
//! grid, so that a user compares them on their own machine and model with
//! one command. The gradient evaluations are what a fit's quasi-Newton
//! steps ask for; on the GPU backend they run on the device where its
//! gradient is resolved (at the starting values it is), and its
//! description says how many did.

use std::time::Instant;

use mlmix_integrate::{Backend, CpuBackend, Want};
use mlmix_spec::Loaded;

use crate::fit::{FitError, engine_parts};
use crate::starts::{StartBuilder, param_map};

/// One backend's figures.
#[derive(Debug, Clone)]
pub struct BackendTiming {
    /// What ran (the backend's description).
    pub backend: String,
    /// Median seconds per log-likelihood evaluation.
    pub seconds: f64,
    /// Median seconds per evaluation of the log-likelihood and its
    /// gradient.
    pub gradient_seconds: f64,
    /// The log-likelihood it computed.
    pub loglik: f64,
}

/// What `mlmix bench` measured.
#[derive(Debug, Clone)]
pub struct Timings {
    /// Integrand terms per evaluation: rows × passes × class
    /// combinations (of a pass) × terms.
    pub terms: f64,
    /// The CPU's, then the GPU's where there is one.
    pub backends: Vec<BackendTiming>,
    /// Why there is no GPU figure, if there is none.
    pub no_gpu: Option<String>,
}

/// Times `evaluations` log-likelihood evaluations of `loaded`'s model on
/// each backend (median).
pub fn time_backends(loaded: &Loaded, evaluations: usize) -> Result<Timings, FitError> {
    let (data, plan, grid) = engine_parts(loaded, true)?;
    let map = param_map(&loaded.model, &loaded.data);
    let phi = map.phi(&StartBuilder::new(&loaded.model, &loaded.data, &plan, &map).unperturbed());
    // passes (nodes × between-level combinations) × each pass's share of
    // the combinations
    let terms = (data.n_rows() * grid.n_nodes() * plan.n_combos * plan.terms.len()) as f64;
    let cpu = CpuBackend::new(plan.clone(), data.clone(), grid.clone(), None)?;
    let mut backends = vec![timing(&cpu, &phi, evaluations)?];
    let no_gpu = match gpu_backend(CpuBackend::new(plan, data, grid, None)?) {
        Ok(gpu) => {
            backends.push(timing(gpu.as_ref(), &phi, evaluations)?);
            None
        }
        Err(why) => Some(why),
    };
    Ok(Timings {
        terms,
        backends,
        no_gpu,
    })
}

fn timing(backend: &dyn Backend, phi: &[f64], n: usize) -> Result<BackendTiming, FitError> {
    let loglik = backend.evaluate(phi, Want::LL)?.loglik;
    let seconds = median_seconds(backend, phi, Want::LL, n)?;
    let gradient_seconds = median_seconds(backend, phi, Want::GRADIENT, n)?;
    Ok(BackendTiming {
        backend: backend.describe(),
        seconds,
        gradient_seconds,
        loglik,
    })
}

/// The median seconds of `n` (at least one) evaluations of `want`.
fn median_seconds(
    backend: &dyn Backend,
    phi: &[f64],
    want: Want,
    n: usize,
) -> Result<f64, FitError> {
    let mut seconds = Vec::with_capacity(n.max(1));
    for _ in 0..n.max(1) {
        let t = Instant::now();
        backend.evaluate(phi, want)?;
        seconds.push(t.elapsed().as_secs_f64());
    }
    seconds.sort_by(f64::total_cmp);
    Ok(seconds[seconds.len() / 2])
}

#[cfg(feature = "gpu")]
fn gpu_backend(cpu: CpuBackend) -> Result<Box<dyn Backend>, String> {
    use mlmix_integrate::gpu;
    let dev = gpu::shared_device(true).map_err(|e| e.to_string())?;
    let backend = mlmix_integrate::GpuBackend::new(cpu, dev).map_err(|e| e.to_string())?;
    backend
        .on_device()
        .map_err(|why| format!("the GPU backend does not evaluate {why} yet"))?;
    Ok(Box::new(backend))
}

#[cfg(not(feature = "gpu"))]
fn gpu_backend(_cpu: CpuBackend) -> Result<Box<dyn Backend>, String> {
    Err("this build has no GPU backend (cargo feature gpu)".into())
}
