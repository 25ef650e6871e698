//! Random starts (the paper's Section 10, Mplus's STARTS = N M): N perturbed
//! starting points get a few EM iterations each (the initial stage); the M
//! with the highest log-likelihood are optimised to convergence (the final
//! stage). Every final-stage log-likelihood is reported, with whether the
//! best one was reached more than once.
//!
//! Starts run in parallel; each is deterministic given its starting point,
//! so results depend on the seeds, never on the thread count.

use mlmix_integrate::BackendError;
use rayon::prelude::*;

use crate::estimate::{Iterate, Observer, Settings, Solution, Stage};
use crate::problem::Problem;

/// One starting point.
#[derive(Debug, Clone)]
pub struct StartPoint {
    /// Its number (1-based, as reported).
    pub number: usize,
    /// The seed it was drawn with (reported so it can be rerun: OPTSEED).
    pub seed: u64,
    /// The free parameters.
    pub theta: Vec<f64>,
}

/// What happened to one start.
#[derive(Debug, Clone)]
pub struct StartRecord {
    /// Start number.
    pub number: usize,
    /// Its seed.
    pub seed: u64,
    /// Log-likelihood after the initial stage.
    pub initial_loglik: f64,
    /// The final-stage result, if it was chosen for the final stage.
    pub solution: Option<Solution>,
}

/// The outcome of all starts.
#[derive(Debug, Clone)]
pub struct StartsOutcome {
    /// Every start, in start order.
    pub records: Vec<StartRecord>,
    /// Index into `records` of the best final-stage solution.
    pub best: usize,
    /// How many final-stage solutions reached the best log-likelihood
    /// (within the replication tolerance), the best included.
    pub best_count: usize,
}

impl StartsOutcome {
    /// The best solution.
    pub fn best_solution(&self) -> &Solution {
        self.records[self.best]
            .solution
            .as_ref()
            .expect("the best record has a solution")
    }

    /// Final-stage solutions, best first.
    pub fn ranked(&self) -> Vec<&StartRecord> {
        let mut v: Vec<&StartRecord> = self
            .records
            .iter()
            .filter(|r| r.solution.is_some())
            .collect();
        v.sort_by(|a, b| {
            let la = a.solution.as_ref().map_or(f64::NEG_INFINITY, |s| s.loglik);
            let lb = b.solution.as_ref().map_or(f64::NEG_INFINITY, |s| s.loglik);
            lb.total_cmp(&la).then(a.number.cmp(&b.number))
        });
        v
    }
}

/// Two log-likelihoods are the same optimum when they differ by less than this.
pub fn replication_tolerance(loglik: f64) -> f64 {
    1e-3_f64.max(1e-9 * loglik.abs())
}

/// Runs the two stages. With `n_final == points.len()` and `st_iterations
/// == 0`, every point is simply optimised.
pub fn run_starts(
    problem: &Problem<'_>,
    points: Vec<StartPoint>,
    n_final: usize,
    st_iterations: usize,
    settings: &Settings,
    observer: &dyn Observer,
) -> Result<StartsOutcome, BackendError> {
    let total = points.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    // initial stage
    let initial: Vec<(StartPoint, Result<Iterate, BackendError>)> = points
        .into_par_iter()
        .map(|p| {
            let r = problem.start(p.theta.clone()).and_then(|mut it| {
                // after a stop request the remaining starts only evaluate
                // their starting point
                if it.eval.loglik.is_finite() && !observer.stop_requested() {
                    problem.em_iterations(&mut it, st_iterations)?;
                }
                Ok(it)
            });
            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            observer.start_done(
                Stage::Initial,
                d,
                total,
                r.as_ref().map_or(f64::NEG_INFINITY, |i| i.eval.loglik),
            );
            (p, r)
        })
        .collect();
    let mut records = Vec::with_capacity(total);
    let mut iterates = Vec::with_capacity(total);
    for (p, r) in initial {
        let it = r?;
        records.push(StartRecord {
            number: p.number,
            seed: p.seed,
            initial_loglik: it.eval.loglik,
            solution: None,
        });
        iterates.push(Some(it));
    }
    // choose the final-stage starts: highest initial log-likelihood, ties by number
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_by(|&a, &b| {
        records[b]
            .initial_loglik
            .total_cmp(&records[a].initial_loglik)
            .then(records[a].number.cmp(&records[b].number))
    });
    let chosen: Vec<usize> = order.into_iter().take(n_final.max(1)).collect();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let nf = chosen.len();
    let work: Vec<(usize, Iterate)> = chosen
        .iter()
        .map(|&i| (i, iterates[i].take().expect("each start is chosen once")))
        .collect();
    let finals: Vec<(usize, Result<Solution, BackendError>)> = work
        .into_par_iter()
        .map(|(i, it)| {
            let s = problem.optimize(it, settings, records[i].number, observer);
            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            observer.start_done(
                Stage::Final,
                d,
                nf,
                s.as_ref().map_or(f64::NEG_INFINITY, |s| s.loglik),
            );
            (i, s)
        })
        .collect();
    for (i, s) in finals {
        records[i].solution = Some(s?);
    }
    // the best: highest log-likelihood among converged solutions, else among all
    let pick = |need_conv: bool| {
        records
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.solution.as_ref().map(|s| (i, s)))
            .filter(|(_, s)| s.loglik.is_finite() && (!need_conv || s.converged()))
            .max_by(|(ia, a), (ib, b)| a.loglik.total_cmp(&b.loglik).then(ib.cmp(ia)))
            .map(|(i, _)| i)
    };
    let best = pick(true).or_else(|| pick(false)).unwrap_or(chosen[0]);
    let best_ll = records[best]
        .solution
        .as_ref()
        .map_or(f64::NEG_INFINITY, |s| s.loglik);
    let tol = replication_tolerance(best_ll);
    let best_count = records
        .iter()
        .filter_map(|r| r.solution.as_ref())
        .filter(|s| (s.loglik - best_ll).abs() < tol)
        .count();
    Ok(StartsOutcome {
        records,
        best,
        best_count,
    })
}
