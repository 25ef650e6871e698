//! The GPU backend against the CPU on the same inputs: each shipped
//! example's log-likelihood at several parameter points, on the plain and
//! the adapted grid, within GPU_TOLERANCE (f32 per cluster, summed in
//! f64), and the choice of backend from the command line. Without a GPU
//! adapter (software ones count here: CI runs Mesa's lavapipe) the tests
//! say they were skipped and pass.

#![cfg(feature = "gpu")]

use std::sync::Arc;

use mlmix::starts::{StartBuilder, param_map};
use mlmix_integrate::gpu::{GPU_TOLERANCE, information_on_device, shared_device, unsupported};
use mlmix_integrate::{Backend, CpuBackend, GpuBackend, GpuDevice};

/// The device, or `None` (and a line saying the test was skipped).
fn device(test: &str) -> Option<Arc<GpuDevice>> {
    match shared_device(true) {
        Ok(d) => Some(d),
        Err(e) => {
            println!("{test}: skipped, no GPU adapter ({e})");
            None
        }
    }
}

/// A CPU and a GPU backend for an example.
fn backends(name: &str, dev: &Arc<GpuDevice>) -> (mlmix::spec::Loaded, CpuBackend, GpuBackend) {
    backends_of(
        &mlmix_tests::tests_dir().join("../examples").join(name),
        dev,
    )
}

/// A CPU and a GPU backend for an input file.
fn backends_of(
    path: &std::path::Path,
    dev: &Arc<GpuDevice>,
) -> (mlmix::spec::Loaded, CpuBackend, GpuBackend) {
    let loaded = mlmix::spec::load(path).unwrap_or_else(|e| panic!("{e}"));
    let (data, plan, grid) = mlmix::fit::engine_parts(&loaded, true).unwrap();
    let cpu = CpuBackend::new(plan.clone(), data.clone(), grid.clone(), None).unwrap();
    let inner = CpuBackend::new(plan, data, grid, None).unwrap();
    let gpu = GpuBackend::new(inner, dev.clone()).unwrap();
    (loaded, cpu, gpu)
}

/// The log-likelihood of `name` on both backends at its unperturbed start
/// and three random starts, on the plain grid and adapted at each point:
/// within [`GPU_TOLERANCE`] relative. Returns how many were compared.
fn same_loglik(name: &str, dev: &Arc<GpuDevice>) -> usize {
    same_loglik_of(name, backends(name, dev))
}

/// [`same_loglik`] on given backends.
fn same_loglik_of(
    name: &str,
    (loaded, cpu, gpu): (mlmix::spec::Loaded, CpuBackend, GpuBackend),
) -> usize {
    assert!(gpu.on_device().is_ok(), "{name}: {:?}", gpu.on_device());
    let map = param_map(&loaded.model, &loaded.data);
    let builder = StartBuilder::new(&loaded.model, &loaded.data, cpu.plan(), &map);
    let points = [
        builder.unperturbed(),
        builder.perturbed(11, 5.0),
        builder.perturbed(12, 5.0),
        builder.perturbed(13, 5.0),
    ];
    let mut compared = 0;
    for (i, theta) in points.iter().enumerate() {
        let phi = map.phi(theta);
        let adapt = if cpu.plan().dims > 0 {
            cpu.adapt(&phi, None).unwrap().map(|(a, _)| a)
        } else {
            None
        };
        for a in std::iter::once(None).chain(adapt.as_ref().map(Some)) {
            let want = cpu
                .evaluate_adapted(&phi, mlmix_integrate::Want::LL, a)
                .unwrap();
            let got = gpu
                .evaluate_adapted(&phi, mlmix_integrate::Want::LL, a)
                .unwrap();
            // reductions in a fixed order: the same run twice, the same bits
            let again = gpu
                .evaluate_adapted(&phi, mlmix_integrate::Want::LL, a)
                .unwrap();
            assert_eq!(again.loglik.to_bits(), got.loglik.to_bits(), "{name}");
            let rel = (got.loglik - want.loglik).abs() / want.loglik.abs().max(1.0);
            println!(
                "{name} point {i} adapted {}: cpu {} gpu {} (relative {rel:.2e})",
                a.is_some(),
                want.loglik,
                got.loglik
            );
            assert!(
                rel < GPU_TOLERANCE,
                "{name} point {i} (adapted: {}): cpu {} gpu {} relative {rel:e}",
                a.is_some(),
                want.loglik,
                got.loglik
            );
            same_gradient_and_moments(name, i, (&cpu, &gpu), &phi, a);
            compared += 1;
        }
    }
    compared
}

/// The gradient and (on grids without step dimensions, with random
/// effects) the posterior moments from the device against the CPU's at
/// `phi`: each gradient entry within the rounding bound the device states
/// for it (`GPU_SCORE_EPS` times the magnitudes its terms were computed
/// from), each
/// moment within 1e-4 of the CPU's (relative above 1).
fn same_gradient_and_moments(
    name: &str,
    point: usize,
    (cpu, gpu): (&CpuBackend, &GpuBackend),
    phi: &[f64],
    a: Option<&mlmix_integrate::Adaptation>,
) {
    let dims = cpu.plan().dims;
    let moments = dims > 0 && (0..dims).all(|d| !cpu.grid().is_step(d));
    let want = mlmix_integrate::Want {
        moments,
        ..mlmix_integrate::Want::GRADIENT
    };
    let want = mlmix_integrate::Want {
        information: information_on_device(cpu.plan()),
        ..want
    };
    let exact = cpu.evaluate_adapted(phi, want, a).unwrap();
    let (got, bound) = gpu.device_eval(phi, want, a).unwrap();
    // reductions in a fixed order: the same run twice, the same bits
    let (again, _) = gpu.device_eval(phi, want, a).unwrap();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&again.gradient), bits(&got.gradient), "{name}");
    assert_eq!(bits(&again.moments), bits(&got.moments), "{name}");
    assert_eq!(got.gradient.len(), exact.gradient.len(), "{name}");
    let mut worst = 0.0f64;
    for (i, ((g, e), b)) in got
        .gradient
        .iter()
        .zip(&exact.gradient)
        .zip(&bound)
        .enumerate()
    {
        let err = (g - e).abs();
        worst = worst.max(err / b.max(f64::MIN_POSITIVE));
        assert!(
            err <= *b,
            "{name} point {point} (adapted: {}): gradient entry {i}: cpu {e} gpu {g}, \
             error {err:e} beyond the stated bound {b:e}",
            a.is_some()
        );
    }
    assert_eq!(got.moments.len(), exact.moments.len(), "{name}");
    for (i, (g, e)) in got.moments.iter().zip(&exact.moments).enumerate() {
        assert!(
            (g - e).abs() <= 1e-4 * e.abs().max(1.0),
            "{name} point {point} (adapted: {}): moment entry {i}: cpu {e} gpu {g}",
            a.is_some()
        );
    }
    let info_worst = same_information(name, point, &got.information, &exact.information);
    assert_eq!(bits(&again.information), bits(&got.information), "{name}");
    println!(
        "{name} point {point} adapted {}: gradient error at most {worst:.2e} of its bound, {} moments, \
         information ({} entries) within {info_worst:.2e}",
        a.is_some(),
        got.moments.len(),
        got.information.len()
    );
}

/// The expected information from the device (weight sums, and the rows'
/// own matrices of terms with covariates) against the CPU's: entry (a, b) within [`INFO_TOLERANCE`] of √(I_aa I_bb), the
/// entries' scale. Returns the largest error on that scale.
fn same_information(name: &str, point: usize, got: &[f64], exact: &[f64]) -> f64 {
    assert_eq!(got.len(), exact.len(), "{name} point {point}: information");
    let n = (exact.len() as f64).sqrt() as usize;
    let mut worst = 0.0f64;
    for a in 0..n {
        for b in 0..n {
            let (g, e) = (got[a * n + b], exact[a * n + b]);
            let scale = (exact[a * n + a] * exact[b * n + b])
                .abs()
                .sqrt()
                .max(1e-300);
            let err = (g - e).abs() / scale;
            worst = worst.max(err);
            assert!(
                err <= INFO_TOLERANCE,
                "{name} point {point}: information ({a}, {b}): cpu {e} gpu {g}"
            );
        }
    }
    worst
}

/// The information's error that the tests allow, relative to its
/// entries' scale: f32 posteriors per cluster, their sums compensated.
const INFO_TOLERANCE: f64 = 1e-5;

/// Every model family the shaders evaluate, from the shipped examples:
/// a latent class analysis (binary items), a two-level mixture
/// regression (normal outcomes, random slopes), single-level factor models (the 2PL, a mixture IRT), a
/// two-level factor model and a grade of membership model (a random class
/// logit, within-between).
#[test]
fn gpu_log_likelihoods_equal_the_cpu() {
    let Some(dev) = device("gpu_log_likelihoods_equal_the_cpu") else {
        return;
    };
    println!("adapter: {}", dev.describe());
    for name in [
        "lca_carcinoma.inp",
        "ex10.2.inp",
        "irt_2pl.inp",
        "mixture_irt.inp",
        "twolevel_factor.inp",
        "twolevel_irt.inp",
        "gom.inp",
    ] {
        assert!(same_loglik(name, &dev) >= 4, "{name}");
    }
}

/// A problem streamed in many chunks of clusters (here 41 clusters' nodes
/// each, and one cluster per chunk), or dispatched in rows of a few
/// workgroups, gives the bits of one chunk in one row: each cluster's f32
/// log-likelihood does not depend on its chunk or place, and the CPU sums
/// them in cluster order.
#[test]
fn gpu_chunks_give_the_same_bits() {
    let Some(dev) = device("gpu_chunks_give_the_same_bits") else {
        return;
    };
    let (loaded, cpu, whole) = backends("gom.inp", &dev);
    let per_node = cpu.grid().n_nodes() * (cpu.plan().dims + 1);
    let map = param_map(&loaded.model, &loaded.data);
    let builder = StartBuilder::new(&loaded.model, &loaded.data, cpu.plan(), &map);
    let phi = map.phi(&builder.perturbed(5, 5.0));
    let adapt = cpu.adapt(&phi, None).unwrap().map(|(a, _)| a);
    // and in rows of 3 workgroups (the 2-D dispatch of large problems)
    for (entries, rows) in [(41 * per_node, 65_535), (1, 65_535), (usize::MAX, 3)] {
        let chunked = backends("gom.inp", &dev)
            .2
            .with_chunk_entries(entries)
            .with_groups_per_row(rows);
        for a in [None, adapt.as_ref()] {
            let one = whole
                .evaluate_adapted(&phi, mlmix_integrate::Want::LL, a)
                .unwrap();
            let many = chunked
                .evaluate_adapted(&phi, mlmix_integrate::Want::LL, a)
                .unwrap();
            assert_eq!(
                one.loglik.to_bits(),
                many.loglik.to_bits(),
                "chunks of {entries}: {} vs {}",
                one.loglik,
                many.loglik
            );
        }
    }
}

/// Ordered categories (three per item) and the probit link, on simulated
/// data: a 2-class latent class model and a factor mixture.
#[test]
fn gpu_ordered_probit_equals_the_cpu() {
    let Some(dev) = device("gpu_ordered_probit_equals_the_cpu") else {
        return;
    };
    let scratch = mlmix_tests::Scratch::new("gpu-probit");
    for path in ordered_probit_inputs(&scratch) {
        let name = path.display().to_string();
        assert!(
            same_loglik_of(&name, backends_of(&path, &dev)) >= 4,
            "{name}"
        );
    }
}

/// Simulated ordered items (three categories, five items, 300 persons)
/// under the probit link in `scratch`: the input files of a 2-class
/// latent class model and of a factor mixture.
fn ordered_probit_inputs(scratch: &mlmix_tests::Scratch) -> [std::path::PathBuf; 2] {
    let mut sim = mlmix_tests::Sim::new(707);
    let rows: Vec<Vec<f64>> = (0..300)
        .map(|_| {
            let c = sim.uniform() < 0.4;
            let f = sim.normal();
            (0..5)
                .map(|i| {
                    let eta = if c { 0.8 } else { -0.6 } + 0.7 * f + 0.1 * i as f64;
                    let u = eta + sim.normal();
                    f64::from(u > -0.5) + f64::from(u > 0.7)
                })
                .collect()
        })
        .collect();
    scratch.write("ord.dat", &mlmix_tests::free_format(&rows, "-99"));
    let head = "DATA: FILE = ord.dat;\n\
                VARIABLE: NAMES = u1-u5; CATEGORICAL = u1-u5; CLASSES = c(2);\n\
                ANALYSIS: TYPE = MIXTURE; LINK = PROBIT; ALGORITHM = INTEGRATION;\n";
    let lca = scratch.write("lca.inp", head);
    let fmm = scratch.write("fmm.inp", &format!("{head}MODEL: %OVERALL%\nf BY u1-u5;\n"));
    [lca, fmm]
}

/// Whole fits from the command line on both backends, one per model
/// family: a latent class analysis, a two-level mixture regression with
/// random effects, a within-between model with a random class logit (the
/// GoM), the 2PL, a two-level factor model and a factor mixture (ordered
/// probit). The same log-likelihood (GPU_TOLERANCE relative: the reported
/// one is evaluated in f64 on the CPU on both), estimates within 1e-4
/// (relative above 1), standard errors within 1e-3 relative, and the
/// same number of EM and quasi-Newton iterations to within 3.
#[test]
fn gpu_fits_equal_the_cpu() {
    let Some(dev) = device("gpu_fits_equal_the_cpu") else {
        return;
    };
    println!("adapter: {}", dev.describe());
    let scratch = mlmix_tests::Scratch::new("gpu-fits");
    let examples = mlmix_tests::tests_dir().join("../examples");
    let mut inputs: Vec<std::path::PathBuf> = [
        "lca_carcinoma.inp",
        "ex10.2.inp",
        "gom.inp",
        "irt_2pl.inp",
        "twolevel_factor.inp",
        "threepl.inp",
        "gom_nominal.inp",
    ]
    .iter()
    .map(|n| examples.join(n))
    .collect();
    inputs.push(ordered_probit_inputs(&scratch)[1].clone());
    let mut on_device = 0;
    for input in &inputs {
        let name = input.file_name().unwrap().to_string_lossy().into_owned();
        let (cpu, gpu) = (fit_json(input, "cpu"), fit_json(input, "gpu"));
        let ll = |d: &serde_json::Value| d["loglikelihood"].as_f64().unwrap();
        let (a, b) = (ll(&cpu), ll(&gpu));
        assert!(
            (a - b).abs() <= GPU_TOLERANCE * a.abs(),
            "{name}: logL cpu {a} gpu {b}"
        );
        let column = |d: &serde_json::Value, key: &str| -> Vec<Option<f64>> {
            let ps = d["parameters"].as_array().unwrap();
            ps.iter().map(|p| p[key].as_f64()).collect()
        };
        for (key, tol) in [("estimate", 1e-4), ("se", 1e-3)] {
            let (x, y) = (column(&cpu, key), column(&gpu, key));
            assert_eq!(x.len(), y.len(), "{name}: {key}");
            for (i, (x, y)) in x.iter().zip(&y).enumerate() {
                let close = match (x, y) {
                    (Some(x), Some(y)) => (x - y).abs() <= tol * x.abs().max(1.0),
                    _ => x.is_none() && y.is_none(),
                };
                assert!(close, "{name}: {key} {i}: cpu {x:?} gpu {y:?}");
            }
        }
        for phase in ["em", "quasi_newton"] {
            let it = |d: &serde_json::Value| d["iterations"][phase].as_i64().unwrap();
            assert!(
                (it(&cpu) - it(&gpu)).abs() <= 3,
                "{name}: {phase} iterations: cpu {} gpu {} (starts: cpu {}, gpu {})",
                it(&cpu),
                it(&gpu),
                cpu["starts"],
                gpu["starts"]
            );
        }
        let backend = gpu["backend"].as_str().unwrap();
        println!("{name}: logL {b}, {backend}");
        on_device += device_evaluations(backend);
    }
    // the device took part (at the starts, far from the optima)
    assert!(on_device > 0);
}

/// How many evaluations ran on the device, from a GPU backend's
/// description ("gpu: ...; 3 log-likelihood, 5 gradient and 2 EM
/// evaluation(s) on the GPU, ..."): log-likelihood, gradient and EM.
fn device_counts(backend: &str) -> [usize; 3] {
    let words: Vec<&str> = backend
        .split("; ")
        .nth(1)
        .map(|part| part.split_whitespace().collect())
        .unwrap_or_default();
    [0usize, 2, 5].map(|i| {
        words
            .get(i)
            .and_then(|w| w.parse::<usize>().ok())
            .unwrap_or(0)
    })
}

/// How many evaluations of any kind ran on the device ([`device_counts`]).
fn device_evaluations(backend: &str) -> usize {
    device_counts(backend).iter().sum()
}

/// The JSON document of `mlmix fit --backend <backend> <input>`.
fn fit_json(input: &std::path::Path, backend: &str) -> serde_json::Value {
    let out_dir = mlmix_tests::Scratch::new(&format!("gpu-fit-{backend}"));
    let json = out_dir.path().join("fit.json");
    let out = std::process::Command::new(crate::bad_input::mlmix_exe())
        .args(["fit", "-q", "--backend", backend, "--json"])
        .arg(&json)
        .arg(input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        input.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

/// The 3PL (guessing parameters, logit and probit) and nominal items, on
/// the shipped examples: the 3PL fitted directly, the same model as the
/// constrained GoM-FMA of the paper's Section 9 (a class logit on item
/// dummies), and a GoM with polytomous items as a nominal variable; the
/// probit 3PL on the direct example's data. The 3PL's on its first
/// [`THREEPL_PERSONS`] persons.
#[test]
fn gpu_guessing_and_nominal_equal_the_cpu() {
    let Some(dev) = device("gpu_guessing_and_nominal_equal_the_cpu") else {
        return;
    };
    let scratch = mlmix_tests::Scratch::new("gpu-3pl");
    let [direct, gom] = threepl_inputs(&scratch);
    for (name, path) in [("threepl", &direct), ("gom_3pl", &gom)] {
        assert!(same_loglik_of(name, backends_of(path, &dev)) >= 4, "{name}");
    }
    assert!(same_loglik("gom_nominal.inp", &dev) >= 4);
    let text = std::fs::read_to_string(&direct).unwrap();
    let probit = text.replace("ESTIMATOR = ML;", "ESTIMATOR = ML; LINK = PROBIT;");
    assert_ne!(probit, text);
    let path = scratch.write("threepl_probit.inp", &probit);
    assert!(same_loglik_of("threepl probit", backends_of(&path, &dev)) >= 4);
}

/// The persons of the 3PL examples that the GPU tests take: a fifth of
/// the 5,000, as the software adapter of a machine without a GPU runs
/// these tests (the kernels, shaders and paths are those of the whole).
const THREEPL_PERSONS: usize = 1000;

/// `examples/threepl.inp` and `examples/gom_3pl.inp` in `scratch`, beside
/// the first [`THREEPL_PERSONS`] persons of their data.
fn threepl_inputs(scratch: &mlmix_tests::Scratch) -> [std::path::PathBuf; 2] {
    let examples = mlmix_tests::tests_dir().join("../examples");
    let data = std::fs::read_to_string(examples.join("threepl_wide.dat")).unwrap();
    let first: String = data
        .lines()
        .take(THREEPL_PERSONS)
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(first.lines().count(), THREEPL_PERSONS);
    scratch.write("threepl_wide.dat", &first);
    ["threepl.inp", "gom_3pl.inp"].map(|name| {
        let text = std::fs::read_to_string(examples.join(name)).unwrap();
        scratch.write(name, &text)
    })
}

/// Continuous variables with residual covariances (a normal block): a
/// 2-class mixture of three variables regressed on a covariate, with
/// class-specific covariances and four missing-data patterns (one row
/// observing none), on both backends.
#[test]
fn gpu_normal_blocks_equal_the_cpu() {
    let Some(dev) = device("gpu_normal_blocks_equal_the_cpu") else {
        return;
    };
    let scratch = mlmix_tests::Scratch::new("gpu-block");
    let mut sim = mlmix_tests::Sim::new(31);
    let rows: Vec<Vec<f64>> = (0..120)
        .map(|r| {
            let x = sim.normal();
            let shift = if r % 3 == 0 { 2.0 } else { 0.0 };
            let e = sim.normal();
            let mut row = vec![
                x,
                shift + 0.5 * x + e + 0.3 * sim.normal(),
                shift + e + 0.4 * sim.normal(),
                -shift + 0.8 * e + 0.5 * sim.normal(),
            ];
            match r % 7 {
                1 => row[1] = f64::NAN,
                2 => (row[2], row[3]) = (f64::NAN, f64::NAN),
                3 if r == 3 => (row[1], row[2], row[3]) = (f64::NAN, f64::NAN, f64::NAN),
                _ => {}
            }
            row
        })
        .collect();
    scratch.write("y.dat", &mlmix_tests::free_format(&rows, "-99"));
    let path = scratch.write(
        "block.inp",
        "DATA: FILE = y.dat;\nVARIABLE: NAMES = x y1-y3; CLASSES = c(2); MISSING = ALL(-99);\n\
         ANALYSIS: TYPE = MIXTURE;\nMODEL: %OVERALL%\ny1-y3 ON x;\ny1 WITH y2 y3; y2 WITH y3;\n\
         %c#2%\ny1 WITH y2 y3; y2 WITH y3;\n",
    );
    let (loaded, cpu, gpu) = backends_of(&path, &dev);
    let blocks = cpu
        .plan()
        .terms
        .iter()
        .filter(|t| matches!(t.kind, mlmix_kernels::plan::TermKind::NormalBlock { .. }))
        .count();
    assert!(blocks > 0);
    assert!(same_loglik_of("normal block", (loaded, cpu, gpu)) >= 4);
}

/// Normal blocks whose means move with a random effect: a between-level
/// factor measured by the random intercepts of three correlated
/// variables, so the block's linear predictor reads the node (plain and
/// adapted grids), in two classes with missing data.
#[test]
fn gpu_normal_blocks_with_a_random_effect_equal_the_cpu() {
    let Some(dev) = device("gpu_normal_blocks_with_a_random_effect_equal_the_cpu") else {
        return;
    };
    let scratch = mlmix_tests::Scratch::new("gpu-block-re");
    let mut sim = mlmix_tests::Sim::new(37);
    let mut rows = Vec::new();
    for j in 0..40 {
        let f = sim.normal();
        for i in 0..6 {
            let x = sim.normal();
            let shift = if (j + i) % 3 == 0 { 1.5 } else { 0.0 };
            let e = sim.normal();
            let mut row = vec![
                x,
                shift + 0.5 * x + f + e + 0.3 * sim.normal(),
                shift + 0.8 * f + e + 0.4 * sim.normal(),
                -shift + 1.2 * f + 0.8 * e + 0.5 * sim.normal(),
                j as f64,
            ];
            match (j * 6 + i) % 7 {
                1 => row[1] = f64::NAN,
                2 => (row[2], row[3]) = (f64::NAN, f64::NAN),
                _ => {}
            }
            rows.push(row);
        }
    }
    scratch.write("y.dat", &mlmix_tests::free_format(&rows, "-99"));
    let path = scratch.write(
        "block_re.inp",
        "DATA: FILE = y.dat;\nVARIABLE: NAMES = x y1-y3 cl; CLASSES = c(2); MISSING = ALL(-99);\n\
         CLUSTER = cl; WITHIN = x;\nANALYSIS: TYPE = TWOLEVEL MIXTURE;\n\
         MODEL: %WITHIN%\n%OVERALL%\ny1-y3 ON x;\ny1 WITH y2 y3; y2 WITH y3;\n\
         %c#2%\ny1 WITH y2 y3; y2 WITH y3;\n%BETWEEN%\n%OVERALL%\nfb BY y1-y3; y1-y3@0;\n",
    );
    let (loaded, cpu, gpu) = backends_of(&path, &dev);
    assert_eq!(cpu.plan().dims, 1);
    let blocks = cpu
        .plan()
        .terms
        .iter()
        .filter(|t| matches!(t.kind, mlmix_kernels::plan::TermKind::NormalBlock { .. }))
        .count();
    assert!(blocks > 0);
    // each point on the plain grid and adapted: 8 comparisons
    assert!(same_loglik_of("normal block, random effect", (loaded, cpu, gpu)) >= 8);
}

/// An EM step's information on the device, from its states' weight sums:
/// a three-class latent profile model with a normal block (two correlated
/// variables, class-specific covariances), a normal variable, a nominal
/// and an ordered categorical item, each with missing values: the
/// information of every term kind without covariates against the CPU's at
/// four points, and a whole fit on both backends.
#[test]
fn gpu_em_information_equals_the_cpu() {
    let Some(dev) = device("gpu_em_information_equals_the_cpu") else {
        return;
    };
    let scratch = mlmix_tests::Scratch::new("gpu-em-info");
    let mut sim = mlmix_tests::Sim::new(41);
    let rows: Vec<Vec<f64>> = (0..300)
        .map(|r| {
            let c = (r % 3) as f64;
            let e = sim.normal();
            let cat = |x: f64| {
                if x < -0.5 {
                    0.0
                } else if x < 0.7 {
                    1.0
                } else {
                    2.0
                }
            };
            let mut row = vec![
                2.0 * c + e + 0.5 * sim.normal(),
                -c + 0.7 * e + 0.6 * sim.normal(),
                c + sim.normal(),
                cat(c - 1.0 + sim.normal()),
                cat(1.0 - c + sim.normal()),
            ];
            if r % 11 == 1 {
                row[0] = f64::NAN;
            }
            if r % 13 == 2 {
                (row[0], row[1]) = (f64::NAN, f64::NAN);
            }
            if r % 7 == 3 {
                row[r % 5] = f64::NAN;
            }
            row
        })
        .collect();
    scratch.write("y.dat", &mlmix_tests::free_format(&rows, "-99"));
    let path = scratch.write(
        "em_info.inp",
        "DATA: FILE = y.dat;\nVARIABLE: NAMES = y1-y3 u v; CLASSES = c(3); MISSING = ALL(-99);\n\
         NOMINAL = u; CATEGORICAL = v;\nANALYSIS: TYPE = MIXTURE; STARTS = 0;\n\
         MODEL: %OVERALL%\ny1 WITH y2;\n%c#2%\ny1 WITH y2;\n",
    );
    let (loaded, cpu, gpu) = backends_of(&path, &dev);
    assert!(information_on_device(cpu.plan()));
    let kinds: std::collections::BTreeSet<&str> = cpu
        .plan()
        .terms
        .iter()
        .map(|t| match t.kind {
            mlmix_kernels::plan::TermKind::NormalBlock { .. } => "block",
            mlmix_kernels::plan::TermKind::Normal { .. } => "normal",
            mlmix_kernels::plan::TermKind::Nominal { .. } => "nominal",
            mlmix_kernels::plan::TermKind::Categorical { .. } => "categorical",
            mlmix_kernels::plan::TermKind::ClassLogit { .. } => "class logit",
            mlmix_kernels::plan::TermKind::Guessing { .. } => "guessing",
        })
        .collect();
    assert_eq!(kinds.len(), 5, "{kinds:?}");
    assert!(same_loglik_of("EM information", (loaded, cpu, gpu)) >= 4);
    same_fit_with_em_on_device("EM information", &path);
}

/// An EM step's information on the device where the terms have
/// covariates (each row's own matrix, summed over the rows): a two-class
/// mixture regression with a normal outcome, an ordered and a nominal item
/// regressed on covariates with class-specific coefficients, the class
/// logit on x, and a binary item without covariates, with missing values: the information
/// against the CPU's at four points, and a whole fit on both backends
/// with its EM steps on the device.
#[test]
fn gpu_em_information_with_covariates_equals_the_cpu() {
    let Some(dev) = device("gpu_em_information_with_covariates_equals_the_cpu") else {
        return;
    };
    let scratch = mlmix_tests::Scratch::new("gpu-em-info-covs");
    let mut sim = mlmix_tests::Sim::new(43);
    let rows: Vec<Vec<f64>> = (0..400)
        .map(|r| {
            let x = sim.normal();
            let x2 = sim.uniform();
            let c = if sim.uniform() < 1.0 / (1.0 + (-0.8 * x).exp()) {
                1.0
            } else {
                0.0
            };
            let cat = |v: f64| {
                if v < -0.5 {
                    0.0
                } else if v < 0.7 {
                    1.0
                } else {
                    2.0
                }
            };
            let mut row = vec![
                x,
                x2,
                1.0 + 2.0 * c + (0.5 + c) * x - x2 + sim.normal(),
                cat(c - 0.5 + (1.0 - 2.0 * c) * x + sim.normal()),
                f64::from(u8::from(sim.uniform() < 0.2 + 0.6 * c)),
                cat(1.0 - c + (c - 0.5) * x2 + sim.normal()),
            ];
            if r % 9 == 4 {
                row[2 + r % 4] = f64::NAN;
            }
            row
        })
        .collect();
    scratch.write("y.dat", &mlmix_tests::free_format(&rows, "-99"));
    let path = scratch.write(
        "em_info_covs.inp",
        "DATA: FILE = y.dat;\nVARIABLE: NAMES = x x2 y v b w; CLASSES = c(2); MISSING = ALL(-99);\n\
         CATEGORICAL = v b; NOMINAL = w;\nANALYSIS: TYPE = MIXTURE; STARTS = 0;\n\
         MODEL: %OVERALL%\ny ON x x2; v ON x; w ON x2; c ON x;\n%c#2%\ny ON x x2; v ON x; w ON x2;\n",
    );
    let (loaded, cpu, gpu) = backends_of(&path, &dev);
    assert!(information_on_device(cpu.plan()));
    let with_covs: std::collections::BTreeSet<&str> = cpu
        .plan()
        .terms
        .iter()
        .filter(|t| !t.kind.covs().is_empty())
        .map(|t| match t.kind {
            mlmix_kernels::plan::TermKind::Normal { .. } => "normal",
            mlmix_kernels::plan::TermKind::Categorical { .. } => "categorical",
            mlmix_kernels::plan::TermKind::ClassLogit { .. } => "class logit",
            mlmix_kernels::plan::TermKind::Nominal { .. } => "nominal",
            _ => "other",
        })
        .collect();
    assert_eq!(
        with_covs,
        ["categorical", "class logit", "nominal", "normal"]
            .into_iter()
            .collect(),
        "{with_covs:?}"
    );
    assert!(same_loglik_of("EM information with covariates", (loaded, cpu, gpu)) >= 4);
    same_fit_with_em_on_device("EM information with covariates", &path);
}

/// A whole fit of `path` on both backends: the same log-likelihood within
/// [`GPU_TOLERANCE`], and EM evaluations on the device, as the GPU fit's
/// backend line states them ([`device_counts`]).
fn same_fit_with_em_on_device(name: &str, path: &std::path::Path) {
    let (a, b) = (fit_json(path, "cpu"), fit_json(path, "gpu"));
    let ll = |d: &serde_json::Value| d["loglikelihood"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (ll(&a) - ll(&b)).abs() <= GPU_TOLERANCE * ll(&a).abs(),
        "{name}: cpu {} gpu {}",
        ll(&a),
        ll(&b)
    );
    let backend = b["backend"].as_str().unwrap_or_default();
    println!("{name} fit: logL {}, {backend}", ll(&b));
    assert!(device_counts(backend)[2] > 0, "{name}: {backend}");
}

/// A plan the shaders do not hold (more term states per row than their
/// slots) stays on the CPU, and says why.
#[test]
fn gpu_backend_names_what_it_does_not_evaluate() {
    let Some(dev) = device("gpu_backend_names_what_it_does_not_evaluate") else {
        return;
    };
    let scratch = mlmix_tests::Scratch::new("gpu-unsupported");
    let mut sim = mlmix_tests::Sim::new(31);
    let rows: Vec<Vec<f64>> = (0..50).map(|_| vec![sim.normal()]).collect();
    scratch.write("y.dat", &mlmix_tests::free_format(&rows, "-99"));
    let path = scratch.write(
        "slots.inp",
        "DATA: FILE = y.dat;\nVARIABLE: NAMES = y; CLASSES = c(65);\n\
         ANALYSIS: TYPE = MIXTURE;\nMODEL: %OVERALL%\n",
    );
    let (_, cpu, gpu) = backends_of(&path, &dev);
    let why = unsupported(cpu.plan()).unwrap_or_default();
    let what = "term states per row";
    assert!(why.contains(what), "{why}");
    assert!(gpu.describe().contains(what), "{}", gpu.describe());
}

/// Fits the carcinoma LCA from the command line with `--backend
/// <backend>` and `env`; returns the exit code, standard error and the
/// JSON document (if written).
fn cli_fit(
    backend: &str,
    env: &[(&str, &str)],
) -> (Option<i32>, String, Option<serde_json::Value>) {
    let scratch = mlmix_tests::Scratch::new(&format!("gpu-cli-{backend}"));
    let json = scratch.path().join("fit.json");
    let example = mlmix_tests::tests_dir().join("../examples/lca_carcinoma.inp");
    let mut cmd = std::process::Command::new(crate::bad_input::mlmix_exe());
    cmd.args(["fit", "-q", "--backend", backend, "--json"])
        .arg(&json)
        .arg(&example);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let doc = std::fs::read_to_string(&json)
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap());
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        doc,
    )
}

/// `--backend gpu` fits on any adapter (lavapipe in CI) to the CPU's
/// log-likelihood, and the JSON says which backend and adapter ran;
/// `auto` takes the CPU for a model this small without looking for a GPU.
#[test]
fn command_line_backend_choice() {
    let Some(dev) = device("command_line_backend_choice") else {
        return;
    };
    let (code, err, cpu) = cli_fit("cpu", &[]);
    assert_eq!(code, Some(0), "{err}");
    let (code, err, gpu) = cli_fit("gpu", &[]);
    assert_eq!(code, Some(0), "{err}");
    let (cpu, gpu) = (cpu.unwrap(), gpu.unwrap());
    let backend = gpu["backend"].as_str().unwrap();
    assert!(
        backend.starts_with("gpu: ") && backend.contains(&dev.describe()),
        "{backend}"
    );
    let (a, b) = (
        cpu["loglikelihood"].as_f64().unwrap(),
        gpu["loglikelihood"].as_f64().unwrap(),
    );
    assert!((a - b).abs() <= GPU_TOLERANCE * a.abs(), "cpu {a}, gpu {b}");
    let (code, err, auto) = cli_fit("auto", &[]);
    assert_eq!(code, Some(0), "{err}");
    let auto = auto.unwrap();
    let backend = auto["backend"].as_str().unwrap();
    // the carcinoma LCA is far below AUTO_GPU_TERMS: auto does not even
    // look for a GPU, and says only which CPU backend ran
    assert!(
        backend.starts_with("cpu (") && !backend.contains("auto"),
        "{backend}"
    );
}

/// `auto` on a model above its threshold (lowered to 0 here) takes a
/// hardware GPU where there is one and never a software adapter: with only
/// lavapipe (CI), or none, the fit runs on the CPU and its backend line
/// says why; where the CPU backend's blocked product or moment form skips
/// most integrand terms (a GoM on long data) it keeps the CPU and says
/// which, without looking for a device.
#[test]
fn auto_takes_only_a_hardware_gpu_and_says_why_not() {
    let examples = mlmix_tests::tests_dir().join("../examples");
    let options = mlmix::FitOptions {
        auto_gpu_terms: Some(0.0),
        ..Default::default()
    };
    let loaded = mlmix::spec::load(&examples.join("lca_carcinoma.inp")).unwrap();
    let fit = mlmix::fit(&loaded, &options, &mlmix::Silent).unwrap();
    let backend = &fit.backend;
    match shared_device(false) {
        Ok(dev) => assert!(
            backend.starts_with("gpu: ") && backend.contains(&dev.describe()),
            "{backend}"
        ),
        Err(e) => {
            assert!(
                backend.starts_with("cpu (")
                    && backend.contains("; auto: ")
                    && backend.contains(&e.to_string()),
                "{backend} / {e}"
            );
            println!("{backend}");
        }
    }
    let report = mlmix::report::text(&fit, &loaded.model);
    assert!(report.contains(backend.as_str()), "{report}");
    // the same as the report's, and the CPU's log-likelihood
    let cpu = mlmix::fit(&loaded, &mlmix::FitOptions::default(), &mlmix::Silent).unwrap();
    let (a, b) = (cpu.loglikelihood, fit.loglikelihood);
    assert!(
        (a - b).abs() <= GPU_TOLERANCE * a.abs(),
        "cpu {a}, auto {b}"
    );

    // the GoM on long data: the blocked product form
    let loaded = mlmix::spec::load(&examples.join("gom.inp")).unwrap();
    let (data, plan, grid) = mlmix::fit::engine_parts(&loaded, true).unwrap();
    let cpu = CpuBackend::new(plan.clone(), data.clone(), grid.clone(), None).unwrap();
    assert!(cpu.blocked(), "gom.inp no longer takes the blocked form");
    let auto =
        mlmix::fit::make_backend_above(mlmix::BackendChoice::Auto, 0.0, plan, data, grid).unwrap();
    let backend = auto.describe();
    let form = if cpu.moment_form() {
        "the CPU's moment form"
    } else {
        "the CPU's blocked product form"
    };
    assert!(
        backend.starts_with("cpu (") && backend.contains(form),
        "{backend}"
    );
}

/// `--backend gpu` where no adapter exists (the Vulkan loader pointed at
/// no driver): exit status 1 and a message saying so, no report.
#[test]
fn command_line_gpu_without_adapter_fails_clearly() {
    let none = "/nonexistent/icd.json";
    let (code, err, doc) = cli_fit(
        "gpu",
        &[("VK_DRIVER_FILES", none), ("VK_ICD_FILENAMES", none)],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--backend gpu: no GPU adapter found"), "{err}");
    assert!(doc.is_none());
}

/// `mlmix bench MODEL.inp` times the model's log-likelihood on the CPU
/// and on the GPU, with both log-likelihoods; without an adapter it says
/// why there is no GPU figure, and succeeds.
#[test]
fn command_line_bench_compares_the_backends() {
    let example = mlmix_tests::tests_dir().join("../examples/gom.inp");
    let run = |env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(crate::bad_input::mlmix_exe());
        cmd.args(["bench", "-n", "2"]).arg(&example);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code(), stdout)
    };
    let none = "/nonexistent/icd.json";
    let (code, out) = run(&[("VK_DRIVER_FILES", none), ("VK_ICD_FILENAMES", none)]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("cpu (") && out.contains("no GPU figure: no GPU adapter found"),
        "{out}"
    );
    if device("command_line_bench_compares_the_backends").is_none() {
        return;
    }
    let (code, out) = run(&[]);
    assert_eq!(code, Some(0), "{out}");
    let logliks: Vec<f64> = out
        .lines()
        .filter_map(|l| l.split("logL ").nth(1))
        .map(|v| v.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(logliks.len(), 2, "{out}");
    assert!(
        (logliks[0] - logliks[1]).abs() <= GPU_TOLERANCE * logliks[0].abs(),
        "{out}"
    );
    assert!(out.contains("gpu: "), "{out}");
}

/// Writes what the device gets for `examples/twolevel_irt.inp` at its
/// unperturbed start, with both backends' gradients, to
/// `$MLMIX_GPU_DUMP` (for `tools/emulate_scores.py`); without the variable
/// it does nothing. A tool, not a check: run it by name.
#[test]
#[ignore = "a tool for tools/emulate_scores.py: MLMIX_GPU_DUMP=out.json, run by name"]
fn gpu_dump_for_emulation() {
    let Ok(out) = std::env::var("MLMIX_GPU_DUMP") else {
        return;
    };
    let Some(dev) = device("gpu_dump_for_emulation") else {
        return;
    };
    let (loaded, cpu, gpu) = backends("twolevel_irt.inp", &dev);
    let map = param_map(&loaded.model, &loaded.data);
    let builder = StartBuilder::new(&loaded.model, &loaded.data, cpu.plan(), &map);
    let phi = map.phi(&builder.unperturbed());
    let (w, r, p, n) = gpu.debug_dump(&phi).unwrap();
    let want = mlmix_integrate::Want::GRADIENT;
    let e = cpu.evaluate_adapted(&phi, want, None).unwrap();
    let (g, _) = gpu.device_eval(&phi, want, None).unwrap();
    let doc = serde_json::json!({"words": w, "rows": r, "params": p, "nodes": n,
        "cpu": e.gradient, "gpu": g.gradient});
    std::fs::write(out, doc.to_string()).unwrap();
}

/// The moment form on the device (a 3-class FMA-GoM on 40 persons: the
/// class logits' integral through moments every person shares, the
/// polynomials formed in workgroup memory) against the CPU's moment form
/// and against the device's general loop (every row at every pass), at a
/// moderate point, one with items so sharp that rows' likelihoods
/// underflow and one with class logits of variance 1e6, on the plain grid
/// and on one adapted in the factor: within [`GPU_TOLERANCE`]; the same
/// bits again, in chunks of three clusters and in rows of two workgroups.
#[test]
fn gpu_moment_form_equals_the_cpu() {
    use mlmix_integrate::{Adaptation, Grid, Method, Want};
    let Some(dev) = device("gpu_moment_form_equals_the_cpu") else {
        return;
    };
    let (ev, points, _) = crate::gom::shortcut_points(false);
    let grid = Grid::new(Method::GaussHermite, 9, ev.plan.dims)
        .nested(&mlmix_integrate::nesting_order(&ev.plan));
    let new = || CpuBackend::new(ev.plan.clone(), ev.data.clone(), grid.clone(), None).unwrap();
    let cpu = new();
    assert!(cpu.moment_form());
    let gpu = GpuBackend::new(new(), dev.clone()).unwrap();
    assert!(gpu.moment_form_on_device());
    assert!(gpu.moment_gradient_on_device());
    let general = GpuBackend::new(new().without_moment_form(), dev.clone()).unwrap();
    assert!(!general.moment_form_on_device());
    let chunked = GpuBackend::new(new(), dev.clone())
        .unwrap()
        .with_chunk_entries(3 * 9)
        .with_groups_per_row(2);
    let em = Want {
        moments: true,
        ..Want::GRADIENT
    };
    for (case, phi) in &points {
        let m = cpu.evaluate(phi, em).unwrap();
        let (adapt, failed) =
            Adaptation::from_moments(&grid, ev.plan.n_between(), &m.moments, &m.junctions);
        assert_eq!(failed, 0, "{case}");
        for (rule, a) in [("plain", None), ("adapted", Some(&adapt))] {
            let exact = cpu.evaluate_adapted(phi, Want::LL, a).unwrap().loglik;
            let got = gpu.device_loglik(phi, a).unwrap();
            let loop_ll = general.device_loglik(phi, a).unwrap();
            let again = chunked.device_loglik(phi, a).unwrap();
            assert_eq!(again.to_bits(), got.to_bits(), "{case} {rule}");
            let rel = |x: f64| (x - exact).abs() / exact.abs().max(1.0);
            println!(
                "moment form {case} {rule}: cpu {exact} gpu {got} ({:.2e}), general loop on the gpu {loop_ll} ({:.2e})",
                rel(got),
                rel(loop_ll)
            );
            assert!(
                rel(got) < GPU_TOLERANCE,
                "{case} {rule}: cpu {exact} gpu {got}"
            );
            assert!(
                rel(loop_ll) < GPU_TOLERANCE,
                "{case} {rule}: cpu {exact} general loop {loop_ll}"
            );
            moment_gradient_agrees(&cpu, (&gpu, &chunked), phi, a, &format!("{case} {rule}"));
            moment_posteriors_agree(&cpu, (&gpu, &chunked), phi, a, &format!("{case} {rule}"));
            if *case == "moderate" {
                // what an adaptive quasi-Newton step asks (the gradient and
                // the moments) runs on the device, not the CPU
                let gradients = |g: &GpuBackend| device_counts(&g.describe())[1];
                let before = gradients(&gpu);
                let ev = gpu.evaluate_adapted(phi, em, a).unwrap();
                assert_eq!(
                    gradients(&gpu),
                    before + 1,
                    "{case} {rule}: {}",
                    gpu.describe()
                );
                assert_eq!(ev.moments.len(), m.moments.len(), "{case} {rule}");
            }
        }
    }
}

/// The moment form's gradient on the device (its second sweep, and the
/// inner terms' gradient the host forms from the polynomials it sums)
/// against the CPU's: every entry within the bound the device states (and
/// what f32 cannot hold: each row's share below f32's smallest normal,
/// such as a class's weight of 1e-115 on a sharp item, comes back 0), the
/// same bits again and in chunks.
fn moment_gradient_agrees(
    cpu: &CpuBackend,
    (gpu, chunked): (&GpuBackend, &GpuBackend),
    phi: &[f64],
    a: Option<&mlmix_integrate::Adaptation>,
    what: &str,
) {
    use mlmix_integrate::Want;
    let exact = cpu.evaluate_adapted(phi, Want::GRADIENT, a).unwrap();
    let (got, bound) = gpu.device_eval(phi, Want::GRADIENT, a).unwrap();
    let (again, _) = gpu.device_eval(phi, Want::GRADIENT, a).unwrap();
    let (split, _) = chunked.device_eval(phi, Want::GRADIENT, a).unwrap();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&again.gradient), bits(&got.gradient), "{what}");
    assert_eq!(got.gradient.len(), exact.gradient.len(), "{what}");
    assert_eq!(split.gradient.len(), exact.gradient.len(), "{what}");
    let floor = f64::from(f32::MIN_POSITIVE) * cpu.data().weights.len() as f64;
    let (mut worst, mut worst_split) = (0.0f64, 0.0f64);
    for (i, (((g, s), e), b)) in got
        .gradient
        .iter()
        .zip(&split.gradient)
        .zip(&exact.gradient)
        .zip(&bound)
        .enumerate()
    {
        let (err, err_split) = ((g - e).abs(), (s - e).abs());
        worst = worst.max(err / (b + floor));
        worst_split = worst_split.max(err_split / (b + floor));
        assert!(
            err <= b + floor && err_split <= b + floor,
            "{what}: gradient entry {i}: cpu {e} gpu {g} (in chunks {s}), error beyond the stated bound {b:e}"
        );
    }
    println!(
        "moment form gradient {what}: {} entries, worst error {worst:.2e} of the stated bound ({worst_split:.2e} in chunks)",
        got.gradient.len()
    );
}

/// The moment form's posterior moments from the device (the host's, from
/// the runs' log-densities the device gives) against the CPU's: each
/// within 1e-4 (relative above 1) as on the general path, or where a
/// cluster is sharp within what f32 log-densities allow: each run's
/// log-density rounded by δ = GPU_LL_EPS |l_j| moves each posterior by a
/// factor within e^{±2δ}, so a moment E[g] by at most (e^{2δ} − 1) E|g|
/// (E|z_d| ≤ √E[z_d²], E|z_d z_e| ≤ √(E[z_d²] E[z_e²]), the CPU's); the
/// inner dimensions' the standard normal's on both; the same bits again,
/// in chunks and with the gradient.
fn moment_posteriors_agree(
    cpu: &CpuBackend,
    (gpu, chunked): (&GpuBackend, &GpuBackend),
    phi: &[f64],
    a: Option<&mlmix_integrate::Adaptation>,
    what: &str,
) {
    use mlmix_integrate::Want;
    let want = Want {
        moments: true,
        ..Want::LL
    };
    let exact = cpu
        .evaluate_adapted(
            phi,
            Want {
                posteriors: true,
                ..want
            },
            a,
        )
        .unwrap();
    let (got, _) = gpu.device_eval(phi, want, a).unwrap();
    let (split, _) = chunked.device_eval(phi, want, a).unwrap();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&split.moments), bits(&got.moments), "{what}");
    assert_eq!(got.moments.len(), exact.moments.len(), "{what}");
    let dims = cpu.plan().dims;
    let per = 1 + dims + dims * dims;
    assert_eq!(
        got.moments.len(),
        exact.cluster_loglik.len() * per,
        "{what}"
    );
    let (mut worst, mut sharp) = (0.0f64, 0usize);
    for (j, (g, e)) in got
        .moments
        .chunks_exact(per)
        .zip(exact.moments.chunks_exact(per))
        .enumerate()
    {
        let delta = mlmix_integrate::gpu::GPU_LL_EPS * exact.cluster_loglik[j].abs();
        let spread = (2.0 * delta).exp_m1();
        let rms = |d: usize| e[1 + dims + d * dims + d].abs().sqrt();
        for (i, (&g, &e)) in g.iter().zip(e).enumerate() {
            let scale = match i {
                0 => 1.0,
                i if i <= dims => rms(i - 1),
                i => rms((i - 1 - dims) / dims) * rms((i - 1 - dims) % dims),
            };
            let (err, tol) = ((g - e).abs(), 1e-4 * e.abs().max(1.0));
            let bound = tol.max(spread * scale);
            sharp += usize::from(err > tol);
            worst = worst.max(err / bound);
            assert!(
                err <= bound,
                "{what}: cluster {j} moment entry {i}: cpu {e} gpu {g}, beyond {bound:e} \
                 (log-likelihood {})",
                exact.cluster_loglik[j]
            );
        }
    }
    // with the gradient too, the same moments
    let both = Want {
        moments: true,
        ..Want::GRADIENT
    };
    let (with_gradient, _) = gpu.device_eval(phi, both, a).unwrap();
    assert_eq!(bits(&with_gradient.moments), bits(&got.moments), "{what}");
    println!(
        "moment form posterior moments {what}: {} entries, worst error {worst:.2e} of the bound, \
         {sharp} beyond 1e-4 within the sharp clusters' bound",
        got.moments.len()
    );
}
