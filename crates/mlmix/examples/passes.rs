//! Times single backend passes (development aid).
use std::sync::Arc;
fn main() {
    let path = std::env::args().nth(1).expect("usage");
    let loaded = mlmix::spec::load(std::path::Path::new(&path)).unwrap_or_else(|e| panic!("{e}"));
    let data = Arc::new(mlmix_kernels::EngineData::single_level(&loaded.data, true));
    let plan = Arc::new(mlmix_kernels::Plan::compile(&loaded.model, &data).unwrap());
    let be = mlmix_integrate::CpuBackend::new(plan.clone(), data.clone(), None).unwrap();
    use mlmix_integrate::{Backend, Want};
    let map = mlmix::starts::param_map(&loaded.model, &loaded.data);
    let sb = mlmix::starts::StartBuilder::new(&loaded.model, &loaded.data, &plan, &map);
    let phi = map.phi(&sb.unperturbed());
    println!("rows {}", data.n_rows());
    for (name, want) in [("LL", Want::LL), ("GRAD", Want::GRADIENT), ("EM", Want::EM)] {
        let t = std::time::Instant::now();
        let n = 2000;
        for _ in 0..n {
            std::hint::black_box(be.evaluate(&phi, want).unwrap());
        }
        println!("{name}: {:?} per pass", t.elapsed() / n);
    }
    let t = std::time::Instant::now();
    for _ in 0..2000 {
        std::hint::black_box(mlmix_kernels::prepare(&plan, &phi).unwrap());
    }
    println!("prepare: {:?}", t.elapsed() / 2000);
}
