//! Shared set-up for the criterion benches: simulated data sets written with
//! an input file into a scratch folder, loaded through the input language,
//! compiled to a plan and wrapped in a CPU backend, with phi at the true
//! values of the simulation.
//!
//! Two models are built: a 2-class latent class model with 10 binary items
//! ([`lca_case`]) and a 2-class latent profile model with 5 continuous items
//! and class-invariant variances ([`lpa_case`]). Identical rows are merged
//! only when asked (`collapse`), so the E-step sees every row.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use mlmix::spec::{Loaded, ParamKind, ParamValue};
use mlmix_integrate::CpuBackend;
use mlmix_kernels::{EngineData, Plan};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Number of items of the latent class model.
pub const LCA_ITEMS: usize = 10;
/// Number of items of the latent profile model.
pub const LPA_ITEMS: usize = 5;
/// Proportion of class 1 in both simulations.
pub const CLASS1_PROPORTION: f64 = 0.4;

/// P(item `j` = 1 | class `k`) in the latent class simulation.
pub fn lca_prob(j: usize, k: usize) -> f64 {
    let hi = 0.65 + 0.03 * j as f64;
    if k == 0 { hi } else { 1.0 - hi }
}

/// Mean of item `j` in class `k` in the latent profile simulation (the
/// variance is 1 in both classes).
pub fn lpa_mean(j: usize, k: usize) -> f64 {
    if k == 0 { 0.0 } else { 1.0 + 0.25 * j as f64 }
}

/// One benchmark case: a backend over its data and a parameter vector.
pub struct Case {
    /// Short name (`lca10`, `lpa5`).
    pub name: &'static str,
    /// Rows of the data set.
    pub n: usize,
    /// Rows the engine evaluates (after merging, if asked).
    pub engine_rows: usize,
    /// The backend (in the caller's rayon pool).
    pub backend: CpuBackend,
    /// Phi at the simulation's true values.
    pub phi: Vec<f64>,
}

/// A scratch folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "mlmix-bench-{}-{}-{}",
            std::process::id(),
            tag,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `input` and `data` into a scratch folder and loads the input.
fn load(tag: &str, input: &str, data: &str) -> Loaded {
    let dir = Scratch::new(tag).expect("creating a scratch folder");
    std::fs::write(dir.0.join("data.csv"), data).expect("writing the data");
    let inp = dir.0.join("model.inp");
    std::fs::write(&inp, input).expect("writing the input");
    mlmix::spec::load(&inp).unwrap_or_else(|e| panic!("loading the {tag} input: {e}"))
}

fn backend(loaded: &Loaded, collapse: bool) -> (CpuBackend, usize) {
    let data = Arc::new(EngineData::single_level(&loaded.data, collapse));
    let rows = data.n_rows();
    let plan = Arc::new(Plan::compile(&loaded.model, &data).expect("compiling the plan"));
    let be = CpuBackend::new(plan, data, mlmix_integrate::Grid::single(), None)
        .expect("building the CPU backend");
    (be, rows)
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// Phi with every parameter set by `value(kind, class)`; fixed parameters
/// keep their value.
fn phi_of(loaded: &Loaded, value: impl Fn(&ParamKind, Option<usize>) -> f64) -> Vec<f64> {
    loaded
        .model
        .parameters
        .iter()
        .map(|p| match p.value {
            ParamValue::Fixed(v) => v,
            ParamValue::Free(_) => value(&p.kind, p.class),
        })
        .collect()
}

/// Draws a class: 0 with probability [`CLASS1_PROPORTION`].
fn draw_class(rng: &mut ChaCha8Rng) -> usize {
    usize::from(rng.random::<f64>() >= CLASS1_PROPORTION)
}

/// The simulated latent class data set (CSV text with a header), `n` rows.
pub fn lca_csv(n: usize, seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut s = String::with_capacity(n * (2 * LCA_ITEMS + 1));
    let names: Vec<String> = (1..=LCA_ITEMS).map(|j| format!("u{j}")).collect();
    s.push_str(&names.join(","));
    s.push('\n');
    for _ in 0..n {
        let k = draw_class(&mut rng);
        for j in 0..LCA_ITEMS {
            let y = u8::from(rng.random::<f64>() < lca_prob(j, k));
            if j > 0 {
                s.push(',');
            }
            s.push(char::from(b'0' + y));
        }
        s.push('\n');
    }
    s
}

/// The simulated latent profile data set (CSV text with a header), `n` rows.
pub fn lpa_csv(n: usize, seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut s = String::with_capacity(n * LPA_ITEMS * 8);
    let names: Vec<String> = (1..=LPA_ITEMS).map(|j| format!("y{j}")).collect();
    s.push_str(&names.join(","));
    s.push('\n');
    for _ in 0..n {
        let k = draw_class(&mut rng);
        for j in 0..LPA_ITEMS {
            // Box-Muller
            let u1 = rng.random::<f64>().max(1e-300);
            let u2 = rng.random::<f64>();
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            if j > 0 {
                s.push(',');
            }
            let _ = write!(s, "{:.4}", lpa_mean(j, k) + z);
        }
        s.push('\n');
    }
    s
}

/// The 2-class latent class model with [`LCA_ITEMS`] binary items on `n`
/// simulated rows; `collapse` merges identical rows.
pub fn lca_case(n: usize, collapse: bool) -> Case {
    let input = "TITLE: bench lca\n\
                 DATA: FILE = data.csv;\n\
                 VARIABLE: USEVARIABLES = u1-u10;\n  CATEGORICAL = u1-u10;\n  CLASSES = c(2);\n\
                 ANALYSIS: TYPE = MIXTURE;\n";
    let loaded = load("lca", input, &lca_csv(n, 20240611));
    assert_eq!(loaded.data.n_rows(), n);
    // P(u = 0 | class) = F(tau), so tau = logit(1 - p)
    let phi = phi_of(&loaded, |kind, class| match *kind {
        ParamKind::Threshold { var, .. } => -logit(lca_prob(var, class.unwrap_or(0))),
        ParamKind::ClassIntercept { .. } => logit(CLASS1_PROPORTION),
        ref other => panic!("unexpected parameter {other:?} in the LCA"),
    });
    let (backend, engine_rows) = backend(&loaded, collapse);
    Case {
        name: "lca10",
        n,
        engine_rows,
        backend,
        phi,
    }
}

/// The 2-class latent profile model with [`LPA_ITEMS`] continuous items
/// (class-specific means, class-invariant variances) on `n` simulated rows.
pub fn lpa_case(n: usize) -> Case {
    let input = "TITLE: bench lpa\n\
                 DATA: FILE = data.csv;\n\
                 VARIABLE: USEVARIABLES = y1-y5;\n  CLASSES = c(2);\n\
                 ANALYSIS: TYPE = MIXTURE;\n";
    let loaded = load("lpa", input, &lpa_csv(n, 20240612));
    assert_eq!(loaded.data.n_rows(), n);
    let phi = phi_of(&loaded, |kind, class| match *kind {
        ParamKind::Mean { var } => lpa_mean(var, class.unwrap_or(0)),
        ParamKind::Variance { .. } => 1.0,
        ParamKind::ClassIntercept { .. } => logit(CLASS1_PROPORTION),
        ref other => panic!("unexpected parameter {other:?} in the LPA"),
    });
    let (backend, engine_rows) = backend(&loaded, false);
    Case {
        name: "lpa5",
        n,
        engine_rows,
        backend,
        phi,
    }
}

/// Clusters and rows per cluster of the two-level case.
pub const TL_CLUSTERS: usize = 200;
/// Rows per cluster of the two-level case.
pub const TL_CLUSTER_SIZE: usize = 20;

/// The two-level data (CSV with a header `clus,y,x`): y = mu_c + beta x +
/// u0 + u1 x + e, a within-level class c (1/2 each, mu = -1, 1, beta 0.5),
/// u0, u1 ~ N(0, 0.3) per cluster, x, e standard normal.
pub fn twolevel_csv(seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut normal = || {
        let u1 = rng.random::<f64>().max(1e-300);
        let u2 = rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    };
    let mut s = String::from("clus,y,x\n");
    let sd = 0.3f64.sqrt();
    for j in 1..=TL_CLUSTERS {
        let (u0, u1) = (sd * normal(), sd * normal());
        for i in 0..TL_CLUSTER_SIZE {
            let mu = if (i + j) % 2 == 0 { -1.0 } else { 1.0 };
            let x = normal();
            let y = mu + 0.5 * x + u0 + u1 * x + normal();
            let _ = writeln!(s, "{j},{y:.4},{x:.4}");
        }
    }
    s
}

/// A two-level 2-class mixture regression with a random intercept and a
/// random slope of x (2 integration dimensions, 7-point Gauss-Hermite: 49
/// nodes, not adaptive) on [`TL_CLUSTERS`] clusters of
/// [`TL_CLUSTER_SIZE`] rows, at parameters near the truth.
pub fn twolevel_case() -> Case {
    let input = "TITLE: bench two-level\n\
                 DATA: FILE = data.csv;\n\
                 VARIABLE: USEVARIABLES = y x; CLASSES = c(2);\n  WITHIN = x; CLUSTER = clus;\n\
                 ANALYSIS: TYPE = TWOLEVEL MIXTURE; INTEGRATION = GAUSSHERMITE(7); ADAPTIVE = OFF;\n\
                 MODEL:\n  %WITHIN%\n  %OVERALL%\n  s | y ON x;\n\
                 \x20 %BETWEEN%\n  %OVERALL%\n  y*0.3; s*0.3;\n\
                 \x20 %c#1%\n  [y*-1];\n  %c#2%\n  [y*1];\n";
    let loaded = load("twolevel", input, &twolevel_csv(20261129));
    let n = loaded.data.n_rows();
    assert_eq!(n, TL_CLUSTERS * TL_CLUSTER_SIZE);
    let data = Arc::new(mlmix::fit::engine_data(&loaded, true));
    let rows = data.n_rows();
    let plan = Arc::new(Plan::compile(&loaded.model, &data).expect("compiling the plan"));
    let grid = mlmix::fit::model_grid(&loaded.model, &plan).expect("a grid of the bench size");
    let phi = loaded
        .model
        .parameters
        .iter()
        .map(|p| match p.value {
            ParamValue::Fixed(v) => v,
            ParamValue::Free(_) => p.start.unwrap_or(match p.kind {
                ParamKind::Variance { .. } | ParamKind::RandomVariance { .. } => 0.5,
                _ => 0.0,
            }),
        })
        .collect();
    let backend = CpuBackend::new(plan, data, grid, None).expect("building the CPU backend");
    Case {
        name: "twolevel-d2-gh7",
        n,
        engine_rows: rows,
        backend,
        phi,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlmix_integrate::{Backend, Want};

    #[test]
    fn cases_evaluate() {
        for case in [
            lca_case(500, false),
            lca_case(500, true),
            lpa_case(500),
            twolevel_case(),
        ] {
            let ev = case
                .backend
                .evaluate(&case.phi, Want::EM)
                .expect("evaluating");
            assert!(ev.loglik.is_finite(), "{}", case.name);
            assert_eq!(ev.gradient.len(), case.phi.len());
        }
        let a = lca_case(500, false);
        let b = lca_case(500, true);
        assert!(b.engine_rows < a.engine_rows);
        let la = a.backend.evaluate(&a.phi, Want::LL).expect("ll").loglik;
        let lb = b.backend.evaluate(&b.phi, Want::LL).expect("ll").loglik;
        assert!((la - lb).abs() < 1e-8 * la.abs());
    }
}
