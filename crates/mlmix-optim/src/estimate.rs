//! Maximising the log-likelihood from one start: EM steps, then quasi-Newton.
//!
//! **EM step.** One pass gives the log-likelihood, its gradient g (by the
//! Fisher identity, the posterior expectation of the complete-data score)
//! and the expected complete-data information I_c. The step
//! `theta + I_c^{-1} g` is one Fisher-scoring step on the expected
//! complete-data log-likelihood Q(theta | theta_old): for normal parts it is
//! the closed-form M-step, for logit and probit parts a Newton step. It is
//! accepted only if the log-likelihood does not fall (halving otherwise), so
//! the EM phase is monotone.
//!
//! **Quasi-Newton.** When EM slows down, BFGS on the marginal log-likelihood
//! with the analytic gradient takes over, starting from I_c^{-1} as its
//! inverse-Hessian approximation, with a backtracking (Armijo) line search.
//!
//! **Bounds.** Logit-type parameters are kept in [-15, 15] and variances
//! above a small positive floor. A parameter at a bound whose gradient points
//! outward is held there (the active set); it is reported as fixed at the
//! bound, as Mplus does.
//!
//! **Convergence.** The largest absolute derivative of log L / N over the
//! parameters not held at a bound is below `convergence`, and the predicted
//! gain of a further quasi-Newton step is below `logcriterion`.

use std::sync::Arc;

use mlmix_integrate::{Adaptation, BackendError, Want};
use nalgebra::{DMatrix, DVector};

use crate::coords::Coords;
use crate::problem::{Bound, FreeEval, Problem};

/// Settings of the optimiser.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Maximum EM iterations.
    pub em_iterations: usize,
    /// Maximum quasi-Newton iterations.
    pub qn_iterations: usize,
    /// Derivative criterion (on log L / N).
    pub convergence: f64,
    /// Criterion on the predicted log-likelihood gain.
    pub logcriterion: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            em_iterations: 500,
            qn_iterations: 1000,
            convergence: 1e-6,
            logcriterion: 1e-7,
        }
    }
}

/// Why the optimiser stopped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Termination {
    /// The convergence criteria were met.
    Converged,
    /// The iteration limits were reached first.
    MaxIterations,
    /// No step along the search direction increased the log-likelihood.
    LineSearchFailed,
    /// The starting values are outside the model's domain.
    InvalidStart,
    /// The observer asked to stop ([`Observer::stop_requested`]): the
    /// estimates are where the last iteration left them.
    Interrupted,
}

/// Where an optimisation stands.
#[derive(Debug, Clone)]
pub struct Iterate {
    /// The free parameters.
    pub theta: Vec<f64>,
    /// The evaluation at `theta` (with gradient and information).
    pub eval: FreeEval,
    /// EM iterations done.
    pub em_iterations: usize,
    /// Quasi-Newton iterations done.
    pub qn_iterations: usize,
    /// The adaptation of the integration grid `eval` was computed with.
    pub adapt: Option<Arc<Adaptation>>,
    /// The inverse Hessian approximation the last quasi-Newton phase ended
    /// with (in its coordinates): after the grid is renewed at a converged
    /// solution, quasi-Newton resumes from it instead of starting over
    /// from EM, since a renewed grid moves the optimum only slightly.
    pub qn_metric: Option<DMatrix<f64>>,
    /// Whether `qn_metric` is in transformed coordinates (see `coords.rs`).
    pub qn_metric_u: bool,
}

/// The result of one start.
#[derive(Debug, Clone)]
pub struct Solution {
    /// The estimates.
    pub theta: Vec<f64>,
    /// The maximised log-likelihood.
    pub loglik: f64,
    /// Why it stopped.
    pub termination: Termination,
    /// EM iterations.
    pub em_iterations: usize,
    /// Quasi-Newton iterations.
    pub qn_iterations: usize,
    /// Free parameters held at a bound.
    pub at_bound: Vec<usize>,
    /// Largest |d log L / d theta| / N over the other parameters.
    pub max_gradient: f64,
    /// The adaptation of the integration grid at the solution.
    pub adapt: Option<Arc<Adaptation>>,
}

impl Solution {
    /// Did it converge?
    pub fn converged(&self) -> bool {
        self.termination == Termination::Converged
    }
}

/// Receives progress from long computations (only the CLI prints).
pub trait Observer: Sync {
    /// An iteration of a final-stage start finished.
    fn iteration(&self, _start: usize, _iteration: usize, _loglik: f64) {}
    /// A stage of the random starts begins, with `total` starts.
    fn stage_begun(&self, _stage: Stage, _total: usize) {}
    /// A start finished a stage.
    fn start_done(&self, _stage: Stage, _done: usize, _total: usize, _loglik: f64) {}
    /// The run turns to a nested model whose solution gives the model's
    /// starting values (`Some`: what it is, e.g. "factor mixture model"),
    /// or back to the model itself (`None`); the events in between are
    /// that model's.
    fn nested_model(&self, _what: Option<&str>) {}
    /// Standard errors are being computed.
    fn standard_errors(&self, _done: usize, _total: usize) {}
    /// Whether the user asked to stop (e.g. by SIGINT): the optimiser then
    /// ends each start at its next iteration with
    /// [`Termination::Interrupted`], keeping the estimates it has.
    fn stop_requested(&self) -> bool {
        false
    }
}

/// A stage of the random-starts procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Short runs from every random start.
    Initial,
    /// Complete runs of the best initial-stage starts.
    Final,
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}

const LOGIT_BOUND_TOL: f64 = 1e-12;

impl Problem<'_> {
    /// What an evaluation of kind `want` asks the backend for: with
    /// adaptive quadrature also the posterior moments, so that every
    /// evaluation proposes the adaptation of its own posterior (see
    /// [`FreeEval::moments`]) and re-centring needs no extra pass.
    fn want(&self, want: Want) -> Want {
        Want {
            moments: self.adaptive,
            ..want
        }
    }

    /// Evaluates a starting point with gradient and information. With
    /// adaptive quadrature the grid is centred on the posterior the plain
    /// grid gives, then re-centred once if the posterior on that grid
    /// moved (see [`Adaptation::moved_from`]).
    pub fn start(&self, theta: Vec<f64>) -> Result<Iterate, BackendError> {
        let mut it = self.start_lagged(theta)?;
        self.recentre(&mut it, false)?;
        Ok(it)
    }

    /// [`Problem::start`] without its re-centring: the iterate is evaluated
    /// on the grid centred on the plain grid's posterior, and the grid its
    /// own evaluation proposes is left for [`Problem::em_iterations`] to
    /// take with its first step.
    pub fn start_lagged(&self, mut theta: Vec<f64>) -> Result<Iterate, BackendError> {
        self.map.clamp(&mut theta);
        let mut adapt = None;
        if self.adaptive {
            let phi = self.map.phi(&theta);
            if let Some((a, _)) = self.backend.adapt(&phi, None)? {
                adapt = Some(Arc::new(a));
            }
        }
        let eval = self.evaluate_with(&theta, self.want(Want::EM), adapt.as_deref())?;
        let it = Iterate {
            theta,
            eval,
            em_iterations: 0,
            qn_iterations: 0,
            adapt,
            qn_metric: None,
            qn_metric_u: false,
        };
        Ok(it)
    }

    /// The expected information at the iterate (evaluated again if the
    /// iterate's evaluation did not compute it).
    fn information(&self, it: &mut Iterate) -> Result<DMatrix<f64>, BackendError> {
        if it.eval.information.nrows() != it.theta.len() {
            let ev = self.evaluate_with(&it.theta, self.want(Want::EM), it.adapt.as_deref())?;
            if ev.loglik.is_finite() {
                it.eval = ev;
            }
        }
        Ok(it.eval.information.clone())
    }

    /// Moves the grid to the adaptation the iterate's own evaluation
    /// proposed and evaluates there: always with `always`, otherwise only
    /// if the posterior moved (see [`Adaptation::moved_from`]). Returns the
    /// change in log-likelihood it made (0 when it did not move).
    fn recentre(&self, it: &mut Iterate, always: bool) -> Result<f64, BackendError> {
        let Some(proposal) = self.proposed_grid(it, always)? else {
            return Ok(0.0);
        };
        let ev = self.evaluate_with(&it.theta, self.want(Want::EM), Some(&proposal))?;
        if !ev.loglik.is_finite() {
            return Ok(0.0);
        }
        let change = ev.loglik - it.eval.loglik;
        it.adapt = Some(proposal);
        it.eval = ev;
        Ok(change)
    }

    /// The adaptation the iterate's own evaluation proposes, if the grid
    /// is to move there: always with `always` (unless it is the same),
    /// otherwise only if the posterior moved (see
    /// [`Adaptation::moved_from`]). `None` without adaptive quadrature.
    fn proposed_grid(
        &self,
        it: &Iterate,
        always: bool,
    ) -> Result<Option<Arc<Adaptation>>, BackendError> {
        if !self.adaptive || !it.eval.loglik.is_finite() {
            return Ok(None);
        }
        let proposal = match it.eval.proposal(self.backend) {
            Some(p) => Arc::new(p),
            None => {
                let phi = self.map.phi(&it.theta);
                match self.backend.adapt(&phi, it.adapt.as_deref())? {
                    Some((a, _)) => Arc::new(a),
                    None => return Ok(None),
                }
            }
        };
        let moved = match &it.adapt {
            Some(old) => proposal.moved_from(old),
            None => true,
        };
        let same = it.adapt.as_deref() == Some(&*proposal);
        Ok((!same && (always || moved)).then_some(proposal))
    }

    /// Renews the adaptation at the current estimates (the posterior of
    /// the iterate's evaluation) and re-evaluates. Returns the change in
    /// log-likelihood it made.
    pub fn readapt(&self, it: &mut Iterate) -> Result<f64, BackendError> {
        self.recentre(it, true)
    }

    /// Parameters held at a bound: at the bound with the gradient outward.
    fn active(&self, theta: &[f64], g: &DVector<f64>) -> Vec<bool> {
        theta
            .iter()
            .zip(&self.map.bounds)
            .enumerate()
            .map(|(i, (&t, b))| outward(t, b, g[i]))
            .collect()
    }

    /// Largest |g_i| / N over the free (not active) parameters.
    fn max_gradient(&self, g: &DVector<f64>, active: &[bool]) -> f64 {
        g.iter()
            .zip(active)
            .filter(|(_, a)| !**a)
            .map(|(v, _)| v.abs())
            .fold(0.0, f64::max)
            / self.n_obs.max(1.0)
    }

    /// One EM step. Returns the log-likelihood gain, or `None` if no step
    /// along the EM direction increased it.
    pub fn em_step(&self, it: &mut Iterate) -> Result<Option<f64>, BackendError> {
        let ll0 = it.eval.loglik;
        let d = self.em_direction(it);
        let mut alpha = 1.0;
        for _ in 0..12 {
            let t = self.em_point(it, &d, alpha);
            let ev = self.evaluate_with(&t, self.want(Want::EM), it.adapt.as_deref())?;
            if let Some(gain) = accept_em(it, t, ev, ll0) {
                return Ok(Some(gain));
            }
            alpha *= 0.5;
        }
        Ok(None)
    }

    /// The EM step from the iterate, `I_c^{-1} g` over the parameters not
    /// held at a bound.
    fn em_direction(&self, it: &Iterate) -> DVector<f64> {
        let g = &it.eval.gradient;
        let active = self.active(&it.theta, g);
        solve_masked(&it.eval.information, g, &active)
    }

    /// The point at `alpha` times the step `d` from the iterate, within
    /// the bounds.
    fn em_point(&self, it: &Iterate, d: &DVector<f64>, alpha: f64) -> Vec<f64> {
        let mut t = it.theta.clone();
        for (ti, di) in t.iter_mut().zip(d.iter()) {
            *ti += alpha * di;
        }
        self.map.clamp(&mut t);
        t
    }

    /// One EM step of the initial stage, a grid behind: where the
    /// iterate's evaluation proposes a new grid, the step's point is
    /// evaluated on it directly, not after an evaluation of the iterate
    /// there (which [`Problem::em_step`] after [`Problem::recentre`]
    /// makes: half the initial stage's evaluations when, with thousands
    /// of clusters, some posterior always moves). The step is taken if its
    /// log-likelihood on the new grid is not below the iterate's on the
    /// old; otherwise the iterate is re-centred and an ordinary step
    /// (with its halving) is made from there. The initial stage only
    /// ranks starts, and each final start renews its grid before it
    /// converges. Returns the log-likelihood gain, or `None` if no step
    /// increased it.
    fn em_step_lagged(&self, it: &mut Iterate) -> Result<Option<f64>, BackendError> {
        let Some(grid) = self.proposed_grid(it, false)? else {
            return self.em_step(it);
        };
        let ll0 = it.eval.loglik;
        let t = self.em_point(it, &self.em_direction(it), 1.0);
        let ev = self.evaluate_with(&t, self.want(Want::EM), Some(&grid))?;
        if let Some(gain) = accept_em(it, t, ev, ll0) {
            it.adapt = Some(grid);
            return Ok(Some(gain));
        }
        let base = self.evaluate_with(&it.theta, self.want(Want::EM), Some(&grid))?;
        if base.loglik.is_finite() {
            it.adapt = Some(grid);
            it.eval = base;
        }
        self.em_step(it)
    }

    /// Runs `n` EM iterations (the initial stage of random starts), fewer
    /// if the observer asks to stop ([`Observer::stop_requested`]), each
    /// a grid behind (`em_step_lagged`), from an iterate of
    /// [`Problem::start_lagged`] or [`Problem::start`]. The iterate ends
    /// on the grid of its last step, not re-centred.
    pub fn em_iterations(
        &self,
        it: &mut Iterate,
        n: usize,
        observer: &dyn Observer,
    ) -> Result<(), BackendError> {
        for _ in 0..n {
            if observer.stop_requested() {
                break;
            }
            if self.em_step_lagged(it)?.is_none() {
                break;
            }
        }
        Ok(())
    }

    /// Optimises from `it` to convergence. With adaptive quadrature the
    /// grid is renewed after EM steps that moved the posterior and, once
    /// the estimates have converged on a grid, renewed again until they
    /// have converged on the grid their own posterior gives and renewing
    /// it changes logL by less than `logcriterion`. Until a renewal moves
    /// logL by less than [`PROVISIONAL_SETTLED`], the grids are
    /// provisional: the estimates converge on them only to
    /// [`PROVISIONAL_LOGCRITERION`] and [`PROVISIONAL_CONVERGENCE`], since
    /// the next renewal moves logL by more than what the settings'
    /// criteria would still gain (docs/input-language.md).
    pub fn optimize(
        &self,
        mut it: Iterate,
        settings: &Settings,
        start_id: usize,
        observer: &dyn Observer,
    ) -> Result<Solution, BackendError> {
        if !it.eval.loglik.is_finite() {
            return Ok(self.solution(&it, Termination::InvalidStart));
        }
        let provisional = Settings {
            logcriterion: settings.logcriterion.max(PROVISIONAL_LOGCRITERION),
            convergence: settings.convergence.max(PROVISIONAL_CONVERGENCE),
            ..*settings
        };
        // the settings' criteria once the grids are settled
        let mut settled = !self.adaptive;
        let criteria = |settled: bool| if settled { settings } else { &provisional };
        let mut term = self.optimize_on_grid(&mut it, criteria(settled), start_id, observer)?;
        if self.adaptive {
            for _ in 0..RENEWALS {
                if term != Termination::Converged {
                    break;
                }
                let change = self.readapt(&mut it)?;
                if !settled {
                    settled = change.abs() < PROVISIONAL_SETTLED;
                } else if change.abs() < settings.logcriterion.max(1e-12 * it.eval.loglik.abs()) {
                    // the grid is settled when renewing it moves the
                    // log-likelihood by less than the convergence criterion
                    // (a re-centring that moves the estimates little still
                    // moves logL by the integration error times the shift);
                    // a renewal that found the same grid re-evaluates
                    // nothing, and a quasi-Newton phase's last evaluation
                    // has no information matrix, which the test needs
                    self.information(&mut it)?;
                    let active = self.active(&it.theta, &it.eval.gradient);
                    if self.converged(&it, &active, settings, None) {
                        break;
                    }
                }
                term = self.optimize_on_grid(&mut it, criteria(settled), start_id, observer)?;
            }
        }
        Ok(self.solution(&it, term))
    }

    fn optimize_on_grid(
        &self,
        it: &mut Iterate,
        settings: &Settings,
        start_id: usize,
        observer: &dyn Observer,
    ) -> Result<Termination, BackendError> {
        // EM phase (skipped for models without classes but with random
        // effects: there EM only integrates out the random effects, and
        // quasi-Newton started from I_c^{-1} needs fewer passes)
        let mut iter = 0;
        let mut prev_gain = None;
        let skip_em = (self.backend.plan().n_combos == 1 && self.backend.grid().dims > 0)
            || it.qn_metric.is_some();
        loop {
            if observer.stop_requested() {
                return Ok(Termination::Interrupted);
            }
            if skip_em {
                break;
            }
            let ll = it.eval.loglik;
            let active = self.active(&it.theta, &it.eval.gradient);
            // (an iterate whose grid was renewed to the same one keeps its
            // last evaluation, which may lack the information)
            self.information(it)?;
            if self.converged(it, &active, settings, None) {
                return Ok(Termination::Converged);
            }
            if it.em_iterations >= settings.em_iterations {
                break;
            }
            match self.em_step(it)? {
                None => break,
                Some(gain) => {
                    self.recentre(it, false)?;
                    iter += 1;
                    observer.iteration(start_id, iter, it.eval.loglik);
                    if it.em_iterations >= 3 && em_is_slow(gain, prev_gain, ll) {
                        break;
                    }
                    prev_gain = Some(gain);
                }
            }
        }
        self.quasi_newton(it, settings, start_id, iter, observer)
    }

    /// The quasi-Newton phase: BFGS from `I_c^-1` (or from the inverse
    /// Hessian a converged phase left, after the grid was renewed), in the
    /// coordinates of `coords.rs`: the variance of a random class logit
    /// intercept on the log scale and its mean over its standard deviation
    /// (the paper's Model 6 needed 28 steps for V to go from 120 to 1400 on
    /// the variance scale, 13 on the log scale). Bounds, the active set and
    /// the convergence criteria stay in the original coordinates.
    fn quasi_newton(
        &self,
        it: &mut Iterate,
        settings: &Settings,
        start_id: usize,
        iter: usize,
        observer: &dyn Observer,
    ) -> Result<Termination, BackendError> {
        let n = it.theta.len();
        let coords = Coords::new(&self.map, &it.theta);
        // the inverse Hessian in u from one in theta: J^-1 B J^-T
        let to_u = |b: DMatrix<f64>, theta: &[f64]| -> DMatrix<f64> {
            let ji = coords.jac_inv(theta);
            &ji * b * ji.transpose()
        };
        let mut active = self.active(&it.theta, &it.eval.gradient);
        let mut j = coords.jac(&it.theta);
        let mut binv = match it.qn_metric.take() {
            Some(b) if b.nrows() == n && coords.is_identity() != it.qn_metric_u => b,
            _ => to_u(inverse_masked(&self.information(it)?, &active), &it.theta),
        };
        let mut fails = 0;
        while it.qn_iterations < settings.qn_iterations {
            if observer.stop_requested() {
                return Ok(Termination::Interrupted);
            }
            let g = j.transpose() * &it.eval.gradient;
            let binv_theta = &j * &binv * j.transpose();
            if self.converged(it, &active, settings, Some(&binv_theta)) {
                it.qn_metric = Some(binv);
                it.qn_metric_u = !coords.is_identity();
                return Ok(Termination::Converged);
            }
            let (mut d, mut slope) = self.direction(&binv, &g, &it.theta, &active);
            if slope <= 0.0 || !slope.is_finite() {
                binv = to_u(inverse_masked(&self.information(it)?, &active), &it.theta);
                (d, slope) = self.direction(&binv, &g, &it.theta, &active);
                if slope <= 0.0 {
                    break;
                }
            }
            // line search
            let ll0 = it.eval.loglik;
            let u0 = coords.u_of(&it.theta);
            let mut alpha = 1.0;
            let mut accepted = None;
            for _ in 0..30 {
                let u: Vec<f64> = (0..n).map(|i| u0[i] + alpha * d[i]).collect();
                let mut t = coords.theta_of(&u);
                self.map.clamp(&mut t);
                // the line search needs the gradient only; the information
                // is computed again where the inverse Hessian restarts
                let ev = self.evaluate_with(&t, self.want(Want::GRADIENT), it.adapt.as_deref())?;
                if ev.loglik.is_finite() && ev.loglik >= ll0 + 1e-4 * alpha * slope {
                    accepted = Some((t, ev));
                    break;
                }
                alpha *= 0.5;
            }
            let Some((t, ev)) = accepted else {
                // fall back to an EM step once; if that fails too, stop
                fails += 1;
                self.information(it)?;
                if fails > 2 || self.em_step(it)?.is_none() {
                    break;
                }
                active = self.active(&it.theta, &it.eval.gradient);
                j = coords.jac(&it.theta);
                binv = to_u(inverse_masked(&self.information(it)?, &active), &it.theta);
                continue;
            };
            let u1 = coords.u_of(&t);
            let s = DVector::from_iterator(n, (0..n).map(|i| u1[i] - u0[i]));
            let j_new = coords.jac(&t);
            let y = &g - j_new.transpose() * &ev.gradient;
            it.theta = t;
            it.eval = ev;
            j = j_new;
            it.qn_iterations += 1;
            observer.iteration(start_id, iter + it.qn_iterations, it.eval.loglik);
            let new_active = self.active(&it.theta, &it.eval.gradient);
            if new_active != active {
                active = new_active;
                binv = to_u(inverse_masked(&self.information(it)?, &active), &it.theta);
                continue;
            }
            let sy = s.dot(&y);
            if sy > 1e-10 * s.norm() * y.norm() {
                // BFGS update of the inverse Hessian of -log L
                let rho = 1.0 / sy;
                let by = &binv * &y;
                let yby = y.dot(&by);
                binv += (&s * s.transpose()) * (rho * (1.0 + rho * yby))
                    - (&by * s.transpose() + &s * by.transpose()) * rho;
            }
        }
        let active = self.active(&it.theta, &it.eval.gradient);
        let binv = inverse_masked(&self.information(it)?, &active);
        let term = if self.converged(it, &active, settings, Some(&binv)) {
            Termination::Converged
        } else if it.qn_iterations >= settings.qn_iterations {
            Termination::MaxIterations
        } else {
            Termination::LineSearchFailed
        };
        Ok(term)
    }

    /// The quasi-Newton direction `binv g` and its slope `g · d`, moving
    /// no parameter held at a bound (`active`) and none that sits at a
    /// bound the direction points beyond: clamping such a step would
    /// leave the line search a different direction than the one whose
    /// slope it tests. (`binv` and `g` are in the coordinates of
    /// `coords.rs`, which move a bounded parameter by an increasing
    /// function of it, so a direction's sign is the parameter's.)
    pub(crate) fn direction(
        &self,
        binv: &DMatrix<f64>,
        g: &DVector<f64>,
        theta: &[f64],
        active: &[bool],
    ) -> (DVector<f64>, f64) {
        let mut d = binv * g;
        for (i, b) in self.map.bounds.iter().enumerate() {
            if active[i] || outward(theta[i], b, d[i]) {
                d[i] = 0.0;
            }
        }
        let slope = g.dot(&d);
        (d, slope)
    }

    fn converged(
        &self,
        it: &Iterate,
        active: &[bool],
        settings: &Settings,
        binv: Option<&DMatrix<f64>>,
    ) -> bool {
        let g = &it.eval.gradient;
        if self.max_gradient(g, active) >= settings.convergence {
            return false;
        }
        let mut gm = g.clone();
        for (i, a) in active.iter().enumerate() {
            if *a {
                gm[i] = 0.0;
            }
        }
        let gain = match binv {
            Some(b) => 0.5 * gm.dot(&(b * &gm)),
            None => 0.5 * gm.dot(&solve_masked(&it.eval.information, g, active)),
        };
        gain.abs() < settings.logcriterion.max(1e-12 * it.eval.loglik.abs())
    }

    fn solution(&self, it: &Iterate, termination: Termination) -> Solution {
        let g = &it.eval.gradient;
        let (at_bound, max_gradient) = if g.len() == it.theta.len() {
            let active = self.active(&it.theta, g);
            (
                active
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| **a)
                    .map(|(i, _)| i)
                    .collect(),
                self.max_gradient(g, &active),
            )
        } else {
            (Vec::new(), f64::NAN)
        };
        Solution {
            theta: it.theta.clone(),
            loglik: it.eval.loglik,
            termination,
            em_iterations: it.em_iterations,
            qn_iterations: it.qn_iterations,
            at_bound,
            max_gradient,
            adapt: it.adapt.clone(),
        }
    }
}

/// Takes the EM trial point `t` with its evaluation `ev` if its
/// log-likelihood is not below `ll0` (within rounding), returning the gain.
fn accept_em(it: &mut Iterate, t: Vec<f64>, ev: FreeEval, ll0: f64) -> Option<f64> {
    let tol = 1e-12 * ll0.abs().max(1.0);
    if !(ev.loglik.is_finite() && ev.loglik >= ll0 - tol) {
        return None;
    }
    let gain = ev.loglik - ll0;
    it.theta = t;
    it.eval = ev;
    it.em_iterations += 1;
    Some(gain)
}

/// Whether `t` sits at one of bound `b`'s ends and `v` (a gradient or a
/// direction) points beyond it.
fn outward(t: f64, b: &Bound, v: f64) -> bool {
    (t <= b.lo + LOGIT_BOUND_TOL && v < 0.0) || (t >= b.hi - LOGIT_BOUND_TOL && v > 0.0)
}

/// Most renewals of the grid per start, provisional ones included.
const RENEWALS: usize = 40;

/// The predicted gain at which estimates count as converged on a
/// provisional grid (see [`Problem::optimize`]).
pub const PROVISIONAL_LOGCRITERION: f64 = 1e-3;

/// The largest scaled derivative at which estimates count as converged on
/// a provisional grid.
pub const PROVISIONAL_CONVERGENCE: f64 = 1e-4;

/// A renewal of the grid that moves logL by less than this ends the
/// provisional grids.
pub const PROVISIONAL_SETTLED: f64 = 1e-2;

/// Whether EM has become slow enough for quasi-Newton to take over: its
/// last gain is small against |logL| (below `1e-5 |logL| + 1e-4`), or it
/// converges linearly at a rate near 1 (a gain at least 0.9 times the one
/// before, while below `1e-3 |logL|`), where EM would need many more steps
/// than quasi-Newton.
fn em_is_slow(gain: f64, prev_gain: Option<f64>, ll: f64) -> bool {
    let small = gain < 1e-5 * ll.abs() + 1e-4;
    let linear = prev_gain.is_some_and(|p| gain >= 0.9 * p) && gain < 1e-3 * ll.abs();
    small || linear
}

/// Solves `(I + ridge) d = g` over the parameters not masked; masked ones
/// get 0. A small ridge keeps a nearly singular information usable.
fn solve_masked(info: &DMatrix<f64>, g: &DVector<f64>, active: &[bool]) -> DVector<f64> {
    let binv = inverse_masked(info, active);
    let mut d = &binv * g;
    for (i, a) in active.iter().enumerate() {
        if *a {
            d[i] = 0.0;
        }
    }
    d
}

/// Inverse of the information over the unmasked parameters (masked rows and
/// columns are 0), with a ridge that grows until the Cholesky factorisation
/// succeeds.
fn inverse_masked(info: &DMatrix<f64>, active: &[bool]) -> DMatrix<f64> {
    let n = active.len();
    let idx: Vec<usize> = (0..n).filter(|&i| !active[i]).collect();
    let m = idx.len();
    let mut out = DMatrix::zeros(n, n);
    if m == 0 {
        return out;
    }
    let mut sub = DMatrix::zeros(m, m);
    for (a, &i) in idx.iter().enumerate() {
        for (b, &j) in idx.iter().enumerate() {
            sub[(a, b)] = info[(i, j)];
        }
    }
    let maxd = (0..m)
        .map(|a| sub[(a, a)].abs())
        .fold(0.0, f64::max)
        .max(1e-300);
    let mut ridge = 1e-10;
    for _ in 0..12 {
        let mut s = sub.clone();
        for a in 0..m {
            let d = s[(a, a)].abs();
            s[(a, a)] += ridge * (d + 1e-6 * maxd);
        }
        if let Some(ch) = s.cholesky() {
            let inv = ch.inverse();
            for (a, &i) in idx.iter().enumerate() {
                for (b, &j) in idx.iter().enumerate() {
                    out[(i, j)] = inv[(a, b)];
                }
            }
            return out;
        }
        ridge *= 100.0;
    }
    // last resort: a diagonal metric
    for (a, &i) in idx.iter().enumerate() {
        out[(i, i)] = 1.0 / (sub[(a, a)].abs() + 1e-6 * maxd);
    }
    out
}
