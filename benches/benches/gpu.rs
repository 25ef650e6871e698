//! The GPU backend against the CPU backend in one run: one log-likelihood
//! evaluation (`Want::LL`, what the GPU evaluates today) of the E-step
//! bench's cases (a 2-class LCA of 10 binary items on 10,000 and 100,000
//! raw rows, a latent profile model on 10,000, the two-level mixture
//! regression with 49 nodes) on each backend, throughput in rows. Without
//! a GPU adapter (Mesa's lavapipe counts) it prints that it was skipped.
//!
//! `cargo bench -p mlmix-benches --bench gpu`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mlmix_benches::{Case, lca_case, lpa_case, twolevel_case};
use mlmix_integrate::gpu::shared_device;
use mlmix_integrate::{Backend, GpuBackend, Want};
use std::hint::black_box;
use std::time::Duration;

fn gpu(c: &mut Criterion) {
    let dev = match shared_device(true) {
        Ok(d) => d,
        Err(e) => {
            println!("gpu bench: skipped, no GPU adapter ({e})");
            return;
        }
    };
    println!("GPU: {}", dev.describe());
    let mut group = c.benchmark_group("gpu");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let cases: Vec<fn() -> Case> = vec![
        || lca_case(10_000, false),
        || lca_case(100_000, false),
        || lpa_case(10_000),
        twolevel_case,
    ];
    for make in cases {
        let cpu = make();
        let gpu = GpuBackend::new(make().backend, dev.clone()).expect("the GPU backend");
        group.throughput(Throughput::Elements(cpu.n as u64));
        let backends: [(&str, &dyn Backend); 2] = [("cpu", &cpu.backend), ("gpu", &gpu)];
        for (name, backend) in backends {
            let id = BenchmarkId::new(format!("{}/{name}", cpu.name), cpu.n);
            group.bench_function(id, |b| {
                b.iter(|| {
                    backend
                        .evaluate(black_box(&cpu.phi), Want::LL)
                        .expect("evaluate")
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, gpu);
criterion_main!(benches);
