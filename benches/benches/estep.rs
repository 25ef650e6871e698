//! The E-step: one `Backend::evaluate` of the CPU backend, with the
//! gradient and expected information (`Want::EM`, what every EM iteration
//! asks for) and with the log-likelihood only (`Want::LL`), on raw rows
//! (identical rows not merged) of a 2-class LCA with 10 binary items and a
//! 2-class latent profile model with 5 continuous items, at N = 10,000 and
//! 100,000. One group, so the ratios between cases come from one run; the
//! throughput is in rows per second. The merged-rows LCA at the largest N
//! shows what merging buys the fits. The two-level case is a 2-class
//! mixture regression with a random intercept and slope (4,000 rows in 200
//! clusters, 49 Gauss-Hermite nodes): its throughput is in rows too, each
//! row evaluated at every node.
//!
//! `cargo bench -p mlmix-benches` (or `cargo xtask criterion`).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mlmix_benches::{Case, lca_case, lpa_case, twolevel_case};
use mlmix_integrate::{Backend, Want};
use std::hint::black_box;
use std::time::Duration;

const SIZES: [usize; 2] = [10_000, 100_000];

fn bench_case(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    case: &Case,
    tag: &str,
) {
    group.throughput(Throughput::Elements(case.n as u64));
    for (wname, want) in [("em", Want::EM), ("ll", Want::LL)] {
        let id = BenchmarkId::new(format!("{}{tag}/{wname}", case.name), case.n);
        group.bench_with_input(id, case, |b, case| {
            b.iter(|| {
                case.backend
                    .evaluate(black_box(&case.phi), want)
                    .expect("evaluate")
            })
        });
    }
}

fn estep(c: &mut Criterion) {
    let mut group = c.benchmark_group("estep");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for &n in &SIZES {
        bench_case(&mut group, &lca_case(n, false), "");
    }
    for &n in &SIZES {
        bench_case(&mut group, &lpa_case(n), "");
    }
    let merged = lca_case(SIZES[SIZES.len() - 1], true);
    bench_case(&mut group, &merged, "-merged");
    bench_case(&mut group, &twolevel_case(), "");
    group.finish();
}

criterion_group!(benches, estep);
criterion_main!(benches);
