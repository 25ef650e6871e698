//! Quick driver (development aid).
fn main() {
    let path = std::env::args().nth(1).expect("usage");
    let loaded = mlmix::spec::load(std::path::Path::new(&path)).unwrap_or_else(|e| panic!("{e}"));
    let t = std::time::Instant::now();
    let fit = mlmix::fit(&loaded, &mlmix::FitOptions::default(), &mlmix::Silent).expect("fit");
    println!(
        "LL {:.4} npar {} conv {} em {} qn {} time {:?}",
        fit.loglikelihood,
        fit.free_parameters,
        fit.converged,
        fit.iterations.em,
        fit.iterations.quasi_newton,
        t.elapsed()
    );
    for s in &fit.starts.final_logliks {
        println!(
            "  start {} seed {} init {:.3} final {:.4} conv {}",
            s.start, s.seed, s.initial_loglikelihood, s.loglikelihood, s.converged
        );
    }
    for w in &fit.warnings {
        println!("W: {w}");
    }
    for p in fit.parameters.iter().take(40) {
        println!(
            "{:?} {} {:?} {:.4} {:?}",
            p.class, p.name, p.section, p.estimate, p.se
        );
    }
}
