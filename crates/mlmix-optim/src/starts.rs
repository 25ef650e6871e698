//! Random starts (the paper's Section 10, Mplus's STARTS = N M): N perturbed
//! starting points get a few EM iterations each (the initial stage); the M
//! with the highest log-likelihood are optimised to convergence (the final
//! stage). Every final-stage log-likelihood is reported, with whether the
//! best one was reached more than once.
//!
//! Starts run in parallel; each is deterministic given its starting point,
//! so results depend on the seeds, never on the thread count.
//!
//! A stop request ([`Observer::stop_requested`]) ends each start at its next
//! iteration, and once one start has a finite log-likelihood the starts not
//! yet begun are skipped (on a large model evaluating a starting point alone
//! takes seconds): the final stage then chooses among the starts that were
//! evaluated, and [`StartsOutcome::skipped`] counts the others.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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
    /// Every start that was evaluated, in start order (all of them unless
    /// a stop was requested: see [`StartsOutcome::skipped`]).
    pub records: Vec<StartRecord>,
    /// Index into `records` of the best final-stage solution.
    pub best: usize,
    /// How many final-stage solutions reached the best log-likelihood
    /// (within the replication tolerance), the best included.
    pub best_count: usize,
    /// Starts never begun because a stop was requested after another had
    /// been evaluated (0 unless a stop was requested); they have no record.
    pub skipped: usize,
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
/// == 0`, every point is simply optimised. After a stop request the starts
/// not yet begun are skipped once one start has a finite log-likelihood
/// (see the module's documentation).
pub fn run_starts(
    problem: &Problem<'_>,
    points: Vec<StartPoint>,
    n_final: usize,
    st_iterations: usize,
    settings: &Settings,
    observer: &dyn Observer,
) -> Result<StartsOutcome, BackendError> {
    run_starts_staged(
        problem,
        None,
        points,
        n_final,
        st_iterations,
        settings,
        observer,
    )
}

/// [`run_starts`] with the initial stage on `coarse` (the same model on a
/// coarser integration rule) when given: its starts' short runs and their
/// ranking use it, and each final-stage start begins again from its
/// initial-stage estimates on `problem` (its own adaptation and EM
/// evaluation), so that the solutions are `problem`'s.
pub fn run_starts_staged(
    problem: &Problem<'_>,
    coarse: Option<&Problem<'_>>,
    points: Vec<StartPoint>,
    n_final: usize,
    st_iterations: usize,
    settings: &Settings,
    observer: &dyn Observer,
) -> Result<StartsOutcome, BackendError> {
    let first = coarse.unwrap_or(problem);
    let total = points.len();
    let done = AtomicUsize::new(0);
    // whether some start has a finite log-likelihood: after a stop request
    // the starts not yet begun are then skipped (`None`)
    let evaluated = AtomicBool::new(false);
    // initial stage
    observer.stage_begun(Stage::Initial, total);
    let initial: Vec<(StartPoint, Option<Result<Iterate, BackendError>>)> = points
        .into_par_iter()
        .map(|p| {
            if observer.stop_requested() && evaluated.load(Ordering::Acquire) {
                return (p, None);
            }
            let r = first.start_lagged(p.theta.clone()).and_then(|mut it| {
                // a start begun before a stop request stops its EM
                // iterations at the request
                if it.eval.loglik.is_finite() {
                    first.em_iterations(&mut it, st_iterations, observer)?;
                }
                Ok(it)
            });
            if r.as_ref().is_ok_and(|i| i.eval.loglik.is_finite()) {
                evaluated.store(true, Ordering::Release);
            }
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            observer.start_done(
                Stage::Initial,
                d,
                total,
                r.as_ref().map_or(f64::NEG_INFINITY, |i| i.eval.loglik),
            );
            (p, Some(r))
        })
        .collect();
    let mut records = Vec::with_capacity(total);
    let mut iterates = Vec::with_capacity(total);
    let mut skipped = 0;
    for (p, r) in initial {
        let Some(r) = r else {
            skipped += 1;
            continue;
        };
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
    let done = AtomicUsize::new(0);
    let nf = chosen.len();
    observer.stage_begun(Stage::Final, nf);
    let work: Vec<(usize, Iterate)> = chosen
        .iter()
        .map(|&i| (i, iterates[i].take().expect("each start is chosen once")))
        .collect();
    let finals: Vec<(usize, Result<Solution, BackendError>)> = work
        .into_par_iter()
        .map(|(i, it)| {
            // from a coarser initial stage: again on the model's own rule
            let it = match coarse {
                Some(_) => problem.start(it.theta),
                None => Ok(it),
            };
            let s = it.and_then(|it| problem.optimize(it, settings, records[i].number, observer));
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
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
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use mlmix_integrate::{Adaptation, Backend, BackendError, Evaluation, Grid, Want};
    use mlmix_kernels::{EngineData, Plan};
    use nalgebra::{DMatrix, DVector};

    use super::*;
    use crate::estimate::Termination;
    use crate::problem::{Bound, ParamMap};

    /// A backend whose log-likelihood is the quadratic
    /// `-5 Σ (phi_i - 1)²` (EM reaches its maximum in one step), counting
    /// its evaluations.
    struct Quadratic {
        plan: Plan,
        data: EngineData,
        grid: Grid,
        evaluations: AtomicUsize,
    }

    const N_PHI: usize = 2;
    const CURVATURE: f64 = 10.0;

    impl Quadratic {
        fn new() -> Self {
            Quadratic {
                plan: Plan {
                    n_phi: N_PHI,
                    n_ext: N_PHI,
                    class_sizes: vec![2],
                    between_cv: vec![false],
                    n_combos: 2,
                    terms: Vec::new(),
                    dims: 0,
                    n_data_cols: 0,
                    virtual_cols: Vec::new(),
                    chol: Vec::new(),
                    derived: Vec::new(),
                    implied: Vec::new(),
                    constants: Vec::new(),
                    shifted: Vec::new(),
                    within_cv: None,
                    psi_shared: false,
                },
                data: EngineData {
                    columns: Vec::new(),
                    weights: vec![1.0],
                    cluster_starts: vec![0, 1],
                    engine_row: vec![0],
                    row_offset: 0,
                    clustered: false,
                },
                grid: Grid::single(),
                evaluations: AtomicUsize::new(0),
            }
        }
    }

    impl Backend for Quadratic {
        fn describe(&self) -> String {
            "quadratic".into()
        }
        fn plan(&self) -> &Plan {
            &self.plan
        }
        fn data(&self) -> &EngineData {
            &self.data
        }
        fn grid(&self) -> &Grid {
            &self.grid
        }
        fn evaluate_adapted(
            &self,
            phi: &[f64],
            want: Want,
            _adapt: Option<&Adaptation>,
        ) -> Result<Evaluation, BackendError> {
            self.evaluations.fetch_add(1, Ordering::SeqCst);
            let loglik = -0.5 * CURVATURE * phi.iter().map(|p| (p - 1.0).powi(2)).sum::<f64>();
            let gradient = if want.gradient {
                phi.iter().map(|p| -CURVATURE * (p - 1.0)).collect()
            } else {
                Vec::new()
            };
            let information = if want.information {
                (0..N_PHI * N_PHI)
                    .map(|k| if k % (N_PHI + 1) == 0 { CURVATURE } else { 0.0 })
                    .collect()
            } else {
                Vec::new()
            };
            Ok(Evaluation {
                loglik,
                gradient,
                information,
                meat: Vec::new(),
                posteriors: Vec::new(),
                cluster_loglik: Vec::new(),
                moments: Vec::new(),
                junctions: Vec::new(),
            })
        }
    }

    /// Asks to stop once `after` starts have finished the initial stage
    /// (0: from the beginning).
    struct StopAfter {
        after: usize,
        initial_done: AtomicUsize,
        stop: AtomicBool,
    }

    impl StopAfter {
        fn new(after: usize) -> Self {
            StopAfter {
                after,
                initial_done: AtomicUsize::new(0),
                stop: AtomicBool::new(after == 0),
            }
        }
    }

    impl Observer for StopAfter {
        fn start_done(&self, stage: Stage, _done: usize, _total: usize, _loglik: f64) {
            if stage == Stage::Initial
                && self.initial_done.fetch_add(1, Ordering::SeqCst) + 1 >= self.after
            {
                self.stop.store(true, Ordering::SeqCst);
            }
        }
        fn stop_requested(&self) -> bool {
            self.stop.load(Ordering::SeqCst)
        }
    }

    const STARTS: usize = 20;
    const ST_ITERATIONS: usize = 5;

    /// Asks to stop once the backend has made `at` evaluations.
    struct StopAtEvaluation<'a> {
        backend: &'a Quadratic,
        at: usize,
    }

    impl Observer for StopAtEvaluation<'_> {
        fn stop_requested(&self) -> bool {
            self.backend.evaluations.load(Ordering::SeqCst) >= self.at
        }
    }

    /// Runs 20 starts, 4 to the final stage, on `threads` threads: start
    /// `r` at (r/10, -r/10), so later starts are further from the maximum.
    fn run(threads: usize, observer: &dyn Observer) -> (StartsOutcome, usize) {
        run_on(&Quadratic::new(), threads, observer)
    }

    /// The problem of maximising `backend`'s quadratic within `bounds`.
    fn problem(backend: &Quadratic, bounds: Vec<Bound>) -> Problem<'_> {
        Problem {
            backend,
            map: ParamMap {
                n_free: N_PHI,
                free_of_phi: (0..N_PHI).map(Some).collect(),
                fixed_value: vec![0.0; N_PHI],
                bounds,
                log_scale: Vec::new(),
                scaled_by: Vec::new(),
            },
            n_obs: 100.0,
            adaptive: false,
            fixed_adapt: None,
        }
    }

    /// [`run`] on a given backend.
    fn run_on(
        backend: &Quadratic,
        threads: usize,
        observer: &dyn Observer,
    ) -> (StartsOutcome, usize) {
        let problem = problem(backend, vec![Bound::FREE; N_PHI]);
        let points: Vec<StartPoint> = (1..=STARTS)
            .map(|r| StartPoint {
                number: r,
                seed: r as u64,
                theta: vec![r as f64 / 10.0, -(r as f64) / 10.0],
            })
            .collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool");
        let outcome = pool
            .install(|| {
                run_starts(
                    &problem,
                    points,
                    4,
                    ST_ITERATIONS,
                    &Settings::default(),
                    observer,
                )
            })
            .expect("the quadratic never fails");
        (outcome, backend.evaluations.load(Ordering::SeqCst))
    }

    #[test]
    fn without_a_stop_request_every_start_runs() {
        let (outcome, evaluations) = run(2, &StopAfter::new(usize::MAX));
        assert_eq!(outcome.skipped, 0);
        assert_eq!(outcome.records.len(), STARTS);
        // each start: its point and its EM steps
        assert!(evaluations >= STARTS * (1 + ST_ITERATIONS), "{evaluations}");
        assert!(outcome.best_solution().converged());
        assert_eq!(outcome.best_count, 4);
    }

    #[test]
    fn a_stop_after_the_first_start_skips_the_starts_not_begun() {
        // one thread: the starts begin in order, so only the first ran
        let (outcome, evaluations) = run(1, &StopAfter::new(1));
        // its point and its EM steps (each accepted at the first try), and
        // nothing in the final stage
        assert_eq!(evaluations, 1 + ST_ITERATIONS);
        assert_eq!(outcome.skipped, STARTS - 1);
        assert_eq!(outcome.records.len(), 1);
        assert_eq!(outcome.records[0].number, 1);
        let best = outcome.best_solution();
        assert_eq!(best.termination, Termination::Interrupted);
        assert_eq!(best.loglik, outcome.records[0].initial_loglik);
    }

    #[test]
    fn a_stop_before_any_start_keeps_the_best_of_those_evaluated() {
        let threads = 3;
        let (outcome, evaluations) = run(threads, &StopAfter::new(0));
        let ran = outcome.records.len();
        // the starts begun before the first one finished, at most one per
        // thread; each evaluated its point only
        assert!((1..=threads).contains(&evaluations), "{evaluations}");
        assert_eq!(evaluations, ran);
        assert_eq!(outcome.skipped, STARTS - ran);
        let best = outcome.best_solution();
        assert_eq!(best.termination, Termination::Interrupted);
        let highest = outcome
            .records
            .iter()
            .map(|r| r.initial_loglik)
            .fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(best.loglik, highest);
        assert_eq!(outcome.records[outcome.best].initial_loglik, highest);
    }

    #[test]
    fn a_stop_during_the_em_iterations_of_a_start_ends_them() {
        // one thread: start 1 evaluates its point and makes two EM steps,
        // then the stop ends its EM iterations and skips the others
        let backend = Quadratic::new();
        let observer = StopAtEvaluation {
            backend: &backend,
            at: 3,
        };
        let (outcome, evaluations) = run_on(&backend, 1, &observer);
        assert_eq!(evaluations, 3);
        assert_eq!(outcome.records.len(), 1);
        assert_eq!(outcome.skipped, STARTS - 1);
        assert_eq!(
            outcome.best_solution().termination,
            Termination::Interrupted
        );
    }

    /// A quasi-Newton direction moves no parameter beyond a bound it sits
    /// at, even where the gradient points inside (so that the parameter is
    /// not held there): the metric's coupling can point the step outside,
    /// and clamping it would leave the line search testing a slope the
    /// step does not have.
    #[test]
    fn a_direction_leaves_a_parameter_at_a_bound_it_points_beyond() {
        let backend = Quadratic::new();
        let lower = Bound {
            lo: 0.5,
            hi: f64::INFINITY,
        };
        let problem = problem(&backend, vec![lower, Bound::FREE]);
        // at (0.5, 3) the quadratic's gradient, (5, -20), points inside
        // the first parameter's bound; the metric's direction does not
        let g = DVector::from_vec(vec![5.0, -20.0]);
        let binv = DMatrix::from_row_slice(2, 2, &[1.0, 0.9, 0.9, 1.0]);
        let free = [false, false];
        let (d, slope) = problem.direction(&binv, &g, &[0.5, 3.0], &free);
        assert_eq!(d[0], 0.0);
        assert!((d[1] + 15.5).abs() < 1e-12, "{d}");
        assert!((slope - 310.0).abs() < 1e-9, "{slope}");
        // off the bound the same metric moves it, outward
        let (d, slope) = problem.direction(&binv, &g, &[0.6, 3.0], &free);
        assert!((d[0] + 13.0).abs() < 1e-12, "{d}");
        assert!((slope - 245.0).abs() < 1e-9, "{slope}");
    }
}
