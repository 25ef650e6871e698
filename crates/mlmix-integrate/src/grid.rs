//! Integration grids: nodes and log-weights over the standardised random
//! effects z (b = mu + L z, Cholesky parameterisation).
//!
//! Single-level models have no random effects: their grid is one node at
//! the origin with weight 1, and the loop over nodes runs once.
//!
//! For z ~ N(0, I_dims) a grid approximates
//! E[f(Z)] ≈ Σ_q exp(log_weights[q]) f(nodes[q]). Three rules are provided
//! (the Mplus `INTEGRATION =` options):
//!
//! * [`Method::Trapezoid`]: `points` equally spaced nodes on [-5, 5] per
//!   dimension, trapezoid rule on the normal density, product over
//!   dimensions (Mplus STANDARD / TRAPEZOID).
//! * [`Method::GaussHermite`]: probabilists' Gauss–Hermite rule with
//!   `points` nodes per dimension, product over dimensions.
//! * [`Method::MonteCarlo`]: `points` quasi-random (Halton) nodes in total,
//!   mapped to normal through the inverse normal distribution function,
//!   each with weight 1/points.
//!
//! Adaptive quadrature moves a grid to each cluster's posterior
//! ([`crate::Adaptation`]); its trapezoid rule is then the finer, wider
//! *adapted trapezoid rule* of [`Grid::adapted`] ([`adapted_points`]).

use mlmix_kernels::link::norm_quantile;
use mlmix_kernels::quadrature::{gauss_hermite_1d, ln_phi, log_sum_exp, trapezoid_on};

/// Integration method (Mplus: INTEGRATION = STANDARD(n) / TRAPEZOID(n),
/// GAUSSHERMITE(n), MONTECARLO(n)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Trapezoid rule on [-5, 5] per dimension, product over dimensions.
    Trapezoid,
    /// Probabilists' Gauss–Hermite rule per dimension, product over
    /// dimensions.
    GaussHermite,
    /// Quasi-Monte Carlo: a Halton sequence mapped to the normal.
    MonteCarlo,
}

/// Half-width R of the trapezoid rule's range [-R, R].
pub const TRAPEZOID_RANGE: f64 = 5.0;

/// The widest half-width U of the *uniform* coordinate u of an adapted
/// trapezoid rule ([`Grid::adapted`]), in which its nodes are equally
/// spaced; the nodes themselves lie at t = sinh(β u) / β
/// ([`ADAPTED_STRETCH`]), in units of the cluster's posterior standard
/// deviation, so U = 7 reaches ±9.52 of them.
///
/// Why that wide: a posterior with a heavier tail than the normal keeps
/// mass beyond 5 standard deviations. An extreme response pattern's
/// likelihood flattens towards the prior (the VerbAgg 2PL's log-likelihood
/// moves from -4016.4305 on [-5, 5] to -4016.4271 on [-7, 7], and is
/// -4016.42722 with this rule; exact: -4016.4272), and a 3PL's guessing floor makes every posterior a peak on
/// a prior-shaped floor of relative height about g^k: measured on 10,000
/// simulated 3PL persons (8 items, a 1.5-2.8, g 0.2, one fixed parameter
/// set, exact logL -47136.8203), the floor beyond 7 standard deviations of
/// the peak costs -0.066 of logL (nodes on [-7, 7] at spacing 1/2), beyond
/// 9.52 of them -0.0045.
pub const ADAPTED_TRAPEZOID_RANGE: f64 = 7.0;

/// The stretch β of the adapted trapezoid rule: node t = sinh(β u) / β for
/// u equally spaced on [-U, U] ([`ADAPTED_TRAPEZOID_RANGE`]), weight
/// ∝ h cosh(β u) φ(t). Near the centre the spacing is h, towards the ends
/// it grows by cosh(β U) = 1.70, so the same nodes reach further into a
/// heavy tail. The map keeps the trapezoid rule's geometric convergence:
/// the integrand of a normal posterior, φ(sinh(β u) / β) cosh(β u), is
/// analytic in the strip |Im u| < π / (4 β) = 3.9, so its error is of the
/// order exp(-2 π 3.9 / h) (2e-11 at h = 1). On the 3PL data above
/// (spacing 1/2): β = 0 (reach 7) errs by -0.066, β = 0.15 (8.36) by
/// -0.011, β = 0.2 (9.52) by -0.0045, β = 0.25 (11.2) by -0.0043 with a
/// larger spread over persons (0.087 against 0.064, summed absolute).
pub const ADAPTED_STRETCH: f64 = 0.2;

/// How much more than the requested rule an adapted trapezoid rule may
/// spend on its nodes ([`adapted_points`]).
pub const ADAPTED_BUDGET: f64 = 2.0;

/// Points per dimension of an adapted trapezoid rule asked for `points`
/// per dimension on `dims` dimensions that are not step dimensions: the
/// largest odd number at most `points` times [`ADAPTED_BUDGET`]^(1/dims),
/// and at least `points` (one dimension: `2 points - 1`, the requested
/// rule's nodes and the midpoints between them).
///
/// Why finer than requested: the adapted rule's unit is the posterior
/// standard deviation, and a spacing of 1 of them is exact enough for a
/// normal-shaped posterior (error about 2 exp(-2 π² / h²) = 5e-9), but not
/// for one that is the prior cut off by a steep edge. A 3PL person who
/// answers few items right has the prior as posterior below the items'
/// difficulties (the guessing floor) and a cliff of slope about a per
/// wrong item above them: the posterior standard deviation stays near the
/// prior's (0.7-1) while the integrand's analytic strip is only π / a wide
/// (1.1 at a = 2.8), and the trapezoid's error, of the order
/// exp(-2 π (π / a) / (sd h)), falls from e^-8 at h = 1 to e^-16 at
/// h = 1/2. Per person the logL erred by up to 0.03 at h = 1 (0.014 for
/// the unit test's person), and errs by 6e-6 on average, 2e-4 at worst
/// (a bimodal posterior: wrong on easy items, right on hard ones) at
/// h = 1/2 with the stretch. Measured on the
/// 3PL data above (15 points requested): 15 nodes at spacing 1 on [-7, 7]
/// (the former rule) err by +5.20 in logL (29.1 summed over persons in
/// absolute value), which a fit exploits (its logL rose by 5.0 over the
/// fit with 61 points); no 15-node rule does well (spacing 0.6 with a
/// reach of 5.4: -0.31, absolute 1.26; the plain rule on [-5, 5]: +0.13,
/// absolute 13.4); 21 nodes: -0.10 (absolute 2.5); 29 nodes (this rule):
/// -0.0045 (absolute 0.064; these in a short numpy emulation of the
/// adaptation). mlmix itself: -47131.628 before, -47136.827 now (61
/// points: -47136.823; exact -47136.820); the direct 3PL fit at the
/// default reaches -47136.549, its exact logL -47136.541, the fit with 61
/// points -47136.544 (exact -47136.541). Each evaluation costs about
/// twice what the 15 nodes did. In several dimensions the budget buys less
/// (21 points in two, 17 in three), because halving the spacing in every
/// one would cost 2^dims.
pub fn adapted_points(points: usize, dims: usize) -> usize {
    if dims == 0 || points < 2 {
        return points;
    }
    let most = (points as f64 * ADAPTED_BUDGET.powf(1.0 / dims as f64)).floor() as usize;
    let odd = if most % 2 == 1 { most } else { most - 1 };
    odd.max(points)
}

/// Points of the trapezoid rule on a *step dimension* (at least; more if
/// the grid has more points per dimension): see [`Grid::with_steps`].
pub const STEP_POINTS: usize = 61;

/// A set of integration nodes in `dims` dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Number of dimensions.
    pub dims: usize,
    /// Node coordinates, `n_nodes x dims` row-major.
    pub nodes: Vec<f64>,
    /// ln of each node's weight (the weights sum to 1).
    pub log_weights: Vec<f64>,
    /// ln of the standard normal density at each node, summed over the
    /// dimensions: Σ_d ln φ(t_qd) (0 for the zero-dimensional grid).
    ///
    /// Adaptive quadrature maps a base node t to z = m + C t with log
    /// weight `log_weights[q] + ln φ_dims(z) - log_density[q] + ln|det C|`.
    pub log_density: Vec<f64>,
    /// Per dimension: whether it is a *step dimension* (see
    /// [`Grid::with_steps`]); empty or all false for the plain rules.
    pub step: Vec<bool>,
    /// ln of the normaliser of the step dimensions' trapezoid rule
    /// (Σ h φ(t_q), ends halved), which the rule divides its weights by.
    pub step_log_norm: f64,
    /// Points of the step dimensions' trapezoid rule (0 without any).
    pub step_points: usize,
    /// The dimensions outermost first, as [`Grid::nested`] ordered the
    /// passes (empty: the plan's order). Adaptive quadrature factors each
    /// posterior covariance in this order (see [`crate::Adaptation`]), so
    /// that an outer dimension's adapted node depends on its own base
    /// node only and the terms that read it keep their values while it
    /// holds.
    pub nest: Vec<usize>,
}

impl Grid {
    /// The grid of a model without random effects: one node, weight 1.
    pub fn single() -> Self {
        Grid {
            dims: 0,
            nodes: Vec::new(),
            log_weights: vec![0.0],
            log_density: vec![0.0],
            step: Vec::new(),
            step_log_norm: 0.0,
            step_points: 0,
            nest: Vec::new(),
        }
    }

    /// Number of nodes.
    pub fn n_nodes(&self) -> usize {
        self.log_weights.len()
    }

    /// Product rule (Trapezoid, GaussHermite: `points` per dimension,
    /// `points^dims` nodes) or quasi-Monte Carlo (`points` nodes in total).
    /// `dims == 0` gives [`Grid::single`].
    ///
    /// # Panics
    ///
    /// If `points == 0` (with `dims > 0`), or if `points^dims` overflows.
    pub fn new(method: Method, points: usize, dims: usize) -> Grid {
        if dims == 0 {
            return Grid::single();
        }
        assert!(points > 0, "an integration grid needs at least one point");
        Grid::with_steps(method, points, &vec![false; dims])
    }

    /// The number of nodes [`Grid::with_steps`] would build, without
    /// building them (a float: products of many dimensions overflow).
    pub fn nodes_with_steps(method: Method, points: usize, step: &[bool]) -> f64 {
        if step.is_empty() {
            return 1.0;
        }
        if method == Method::MonteCarlo {
            return points as f64;
        }
        let n_step = points.max(STEP_POINTS) as f64;
        step.iter()
            .map(|&s| if s { n_step } else { points as f64 })
            .product()
    }

    /// The number of nodes [`Grid::adapted`] would build, without building
    /// them (a float, as [`Grid::nodes_with_steps`]): more than that for a
    /// trapezoid rule (up to [`ADAPTED_BUDGET`] times).
    pub fn nodes_adapted(method: Method, points: usize, step: &[bool]) -> f64 {
        if method != Method::Trapezoid || step.is_empty() {
            return Grid::nodes_with_steps(method, points, step);
        }
        let dims = step.iter().filter(|&&s| !s).count();
        let m = adapted_points(points, dims) as f64;
        let n_step = points.max(STEP_POINTS) as f64;
        step.iter().map(|&s| if s { n_step } else { m }).product()
    }

    /// [`Grid::new`] where some dimensions are *step dimensions*: the
    /// random logit intercept of a class variable, whose class
    /// probabilities become a step in z as its variance grows (the paper's
    /// Figures 2-3). A step dimension of a product rule gets the trapezoid
    /// rule with `max(points,` [`STEP_POINTS`]`)` points whatever the
    /// method; adaptive quadrature then moves those points per cluster to a
    /// rule dense at the step (see [`crate::StepMap`]). Quasi-Monte Carlo grids have no step
    /// dimensions (the flags are ignored).
    ///
    /// # Panics
    ///
    /// As [`Grid::new`].
    pub fn with_steps(method: Method, points: usize, step: &[bool]) -> Grid {
        Grid::with_steps_on(method, points, step, TRAPEZOID_RANGE)
    }

    /// [`Grid::with_steps`] for adaptive quadrature. A trapezoid rule's
    /// dimensions that are not step dimensions get the *adapted trapezoid
    /// rule*: [`adapted_points`] points (more than `points`: up to twice
    /// the nodes in all), equally spaced in u on [-U, U] and placed at
    /// t = sinh(β u) / β ([`ADAPTED_STRETCH`]), U = `(points - 1) / 2`
    /// kept between 5 and [`ADAPTED_TRAPEZOID_RANGE`] (15 points: 29
    /// nodes, spacing 1/2 near the centre, reaching ±9.52 posterior
    /// standard deviations). Unadapted (a cluster whose adaptation
    /// failed) it is a rule for the standard normal like any other. Step
    /// dimensions and the other methods are as in [`Grid::with_steps`].
    ///
    /// # Panics
    ///
    /// As [`Grid::new`].
    pub fn adapted(method: Method, points: usize, step: &[bool]) -> Grid {
        if method != Method::Trapezoid || step.is_empty() {
            return Grid::with_steps(method, points, step);
        }
        assert!(points > 0, "an integration grid needs at least one point");
        let dims = step.iter().filter(|&&s| !s).count();
        Grid::with_steps_base(points, step, adapted_base(points, dims))
    }

    /// [`Grid::adapted`] with `fine` points instead of `points` on the
    /// dimensions `fine_dims` (a trapezoid rule's adapted points counted
    /// as for `points`' dimensions: [`adapted_points`] of each count in
    /// the grid's dimensions). For a coarse rule whose cost does not grow
    /// with some dimensions' points (a backend's moment form integrates
    /// its inner dimensions through moments every cluster shares): those
    /// keep the model's points. Monte Carlo grids are not product rules
    /// and are returned as [`Grid::adapted`] gives them.
    ///
    /// # Panics
    ///
    /// As [`Grid::new`].
    pub fn adapted_mixed(
        method: Method,
        points: usize,
        fine: usize,
        fine_dims: &[usize],
        step: &[bool],
    ) -> Grid {
        if method == Method::MonteCarlo || step.is_empty() {
            return Grid::adapted(method, points, step);
        }
        assert!(
            points > 0 && fine > 0,
            "an integration grid needs at least one point"
        );
        let dims = step.iter().filter(|&&s| !s).count();
        let base = |p: usize| match method {
            Method::Trapezoid => adapted_base(p, dims),
            Method::GaussHermite => gauss_hermite_1d(p),
            Method::MonteCarlo => unreachable!("returned above"),
        };
        let (coarse, fine_base) = (base(points), base(fine));
        let bases = (0..step.len())
            .map(|d| {
                if fine_dims.contains(&d) {
                    &fine_base
                } else {
                    &coarse
                }
            })
            .collect::<Vec<_>>();
        Grid::with_steps_bases(points, step, &bases)
    }

    fn with_steps_on(method: Method, points: usize, step: &[bool], range: f64) -> Grid {
        if step.is_empty() {
            return Grid::single();
        }
        assert!(points > 0, "an integration grid needs at least one point");
        let base = match method {
            Method::Trapezoid => trapezoid_1d(points, range),
            Method::GaussHermite => gauss_hermite_1d(points),
            Method::MonteCarlo => {
                return Grid::monte_carlo_shifted(points, step.len(), &vec![0.0; step.len()]);
            }
        };
        Grid::with_steps_base(points, step, base)
    }

    /// The product of `base` (nodes, log weights) on the dimensions that
    /// are not step dimensions and the step dimensions' trapezoid rule
    /// (`max(points,` [`STEP_POINTS`]`)` points); `step` is not empty.
    fn with_steps_base(points: usize, step: &[bool], base: (Vec<f64>, Vec<f64>)) -> Grid {
        Grid::with_steps_bases(points, step, &vec![&base; step.len()])
    }

    /// [`Grid::with_steps_base`] with a rule per dimension (`bases[d]`,
    /// unused on the step dimensions).
    fn with_steps_bases(points: usize, step: &[bool], bases: &[&(Vec<f64>, Vec<f64>)]) -> Grid {
        let n_step = points.max(STEP_POINTS);
        let (st, slw, norm) = trapezoid_rule(n_step);
        let rules: Vec<(&[f64], &[f64])> = step
            .iter()
            .zip(bases)
            .map(|(&s, base)| {
                if s {
                    (st.as_slice(), slw.as_slice())
                } else {
                    (base.0.as_slice(), base.1.as_slice())
                }
            })
            .collect();
        let mut g = Grid::product(&rules);
        g.step = step.to_vec();
        g.step_log_norm = norm;
        g.step_points = if step.iter().any(|&s| s) { n_step } else { 0 };
        g
    }

    /// Whether dimension `d` is a step dimension.
    pub fn is_step(&self, d: usize) -> bool {
        self.step.get(d).copied().unwrap_or(false)
    }

    /// Randomised quasi-Monte Carlo: the Halton points of [`Method::MonteCarlo`]
    /// under a Cranley–Patterson rotation u_d -> frac(u_d + shift_d), mapped
    /// to the normal; each weight 1/points. A zero shift gives the grid of
    /// `Grid::new(Method::MonteCarlo, points, dims)`; repeating with
    /// independent uniform shifts gives independent unbiased estimates, whose
    /// spread estimates the integration error.
    ///
    /// The underlying sequence is the Halton sequence in the first `dims`
    /// prime bases, indices 1..=points (index 0, the origin of the unit cube,
    /// is skipped): u_id = radical inverse of i in base p_d. Uniforms that
    /// land exactly on 0 (possible only after a shift) are moved to 2^-53.
    ///
    /// # Panics
    ///
    /// If `shift.len() != dims`, or if `points == 0` with `dims > 0`.
    pub fn monte_carlo_shifted(points: usize, dims: usize, shift: &[f64]) -> Grid {
        assert_eq!(shift.len(), dims, "one shift per dimension");
        if dims == 0 {
            return Grid::single();
        }
        assert!(points > 0, "an integration grid needs at least one point");
        let primes = first_primes(dims);
        let shift: Vec<f64> = shift.iter().map(|s| s - s.floor()).collect();
        let lo = f64::EPSILON / 2.0;
        let mut nodes = Vec::with_capacity(points * dims);
        let mut log_density = Vec::with_capacity(points);
        for i in 1..=points {
            let mut ld = 0.0;
            for d in 0..dims {
                let mut u = radical_inverse(i as u64, primes[d]) + shift[d];
                u -= u.floor();
                let u = u.clamp(lo, 1.0 - lo);
                let z = norm_quantile(u);
                ld += ln_phi(z);
                nodes.push(z);
            }
            log_density.push(ld);
        }
        Grid {
            dims,
            nodes,
            log_weights: vec![-(points as f64).ln(); points],
            log_density,
            step: Vec::new(),
            step_log_norm: 0.0,
            step_points: 0,
            nest: Vec::new(),
        }
    }

    /// The same nodes in another order: a product rule's odometer with the
    /// dimensions of `outer_first` nested in that order (the last varying
    /// fastest; dimensions it leaves out follow in their own order). Only
    /// the order of the passes changes, and with it how often a term that
    /// reads some dimensions only must be recomputed
    /// ([`crate::nesting_order`]). Quasi-Monte Carlo points are left as they are.
    pub fn nested(self, outer_first: &[usize]) -> Grid {
        let dims = self.dims;
        if dims < 2 || self.nodes.is_empty() {
            return self;
        }
        let mut order: Vec<usize> = outer_first.iter().copied().filter(|&d| d < dims).collect();
        let rest: Vec<usize> = (0..dims).filter(|d| !order.contains(d)).collect();
        order.extend(rest);
        let n = self.log_weights.len();
        let mut idx: Vec<usize> = (0..n).collect();
        let coord = |q: usize, d: usize| self.nodes[q * dims + d];
        idx.sort_by(|&a, &b| {
            order
                .iter()
                .map(|&d| coord(a, d).total_cmp(&coord(b, d)))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut nodes = Vec::with_capacity(self.nodes.len());
        for &q in &idx {
            nodes.extend_from_slice(self.node(q));
        }
        Grid {
            nodes,
            log_weights: idx.iter().map(|&q| self.log_weights[q]).collect(),
            log_density: idx.iter().map(|&q| self.log_density[q]).collect(),
            nest: order,
            ..self
        }
    }

    /// The order in which adaptive quadrature factors a posterior
    /// covariance: [`Grid::nest`], or the plan's order.
    pub fn factor_order(&self) -> Vec<usize> {
        if self.nest.len() == self.dims {
            self.nest.clone()
        } else {
            (0..self.dims).collect()
        }
    }

    /// Coordinates of node q (a slice of length `dims`).
    pub fn node(&self, q: usize) -> &[f64] {
        &self.nodes[q * self.dims..(q + 1) * self.dims]
    }

    /// Product of one-dimensional rules (nodes, log weights), one per
    /// dimension, row-major with the last dimension varying fastest.
    fn product(rules: &[(&[f64], &[f64])]) -> Grid {
        let dims = rules.len();
        let n = rules
            .iter()
            .try_fold(1usize, |acc, r| acc.checked_mul(r.0.len()))
            .unwrap_or_else(|| panic!("the integration nodes overflow"));
        let ld1: Vec<Vec<f64>> = rules
            .iter()
            .map(|r| r.0.iter().map(|&x| ln_phi(x)).collect())
            .collect();
        let mut nodes = Vec::with_capacity(n * dims);
        let mut log_weights = Vec::with_capacity(n);
        let mut log_density = Vec::with_capacity(n);
        let mut idx = vec![0usize; dims];
        for _ in 0..n {
            let mut w = 0.0;
            let mut ld = 0.0;
            for (d, &k) in idx.iter().enumerate() {
                nodes.push(rules[d].0[k]);
                w += rules[d].1[k];
                ld += ld1[d][k];
            }
            log_weights.push(w);
            log_density.push(ld);
            // odometer increment, last dimension fastest
            for d in (0..dims).rev() {
                idx[d] += 1;
                if idx[d] < rules[d].0.len() {
                    break;
                }
                idx[d] = 0;
            }
        }
        Grid {
            dims,
            nodes,
            log_weights,
            log_density,
            step: vec![false; dims],
            step_log_norm: 0.0,
            step_points: 0,
            nest: Vec::new(),
        }
    }
}

/// One-dimensional trapezoid rule on the normal density over
/// [-r, r]: nodes and normalised log weights.
fn trapezoid_1d(n: usize, r: f64) -> (Vec<f64>, Vec<f64>) {
    let (t, lw, _) = trapezoid_on(n, r);
    (t, lw)
}

/// The adapted trapezoid rule of `points` in a grid of `dims` such
/// dimensions (see [`Grid::adapted`]).
fn adapted_base(points: usize, dims: usize) -> (Vec<f64>, Vec<f64>) {
    let u =
        ((points.saturating_sub(1)) as f64 / 2.0).clamp(TRAPEZOID_RANGE, ADAPTED_TRAPEZOID_RANGE);
    stretched_trapezoid(adapted_points(points, dims), u, ADAPTED_STRETCH)
}

/// The trapezoid rule in u on [-u_max, u_max] (`n` points, spacing h)
/// mapped to t = sinh(β u) / β: nodes t and normalised log weights
/// ln(h cosh(β u) φ(t)) (ends halved). β = 0 is [`trapezoid_1d`].
fn stretched_trapezoid(n: usize, u_max: f64, beta: f64) -> (Vec<f64>, Vec<f64>) {
    if n == 1 {
        return (vec![0.0], vec![0.0]);
    }
    let h = 2.0 * u_max / (n - 1) as f64;
    let map = |u: f64| {
        if beta > 0.0 {
            ((beta * u).sinh() / beta, (beta * u).cosh().ln())
        } else {
            (u, 0.0)
        }
    };
    let mut t = Vec::with_capacity(n);
    let mut lw = Vec::with_capacity(n);
    for q in 0..n {
        let u = -u_max + q as f64 * h;
        let (x, ln_dx) = map(u);
        let end = if q == 0 || q == n - 1 {
            std::f64::consts::LN_2
        } else {
            0.0
        };
        t.push(x);
        lw.push(h.ln() + ln_dx + ln_phi(x) - end);
    }
    let s = log_sum_exp(&lw);
    lw.iter_mut().for_each(|w| *w -= s);
    (t, lw)
}

/// [`trapezoid_1d`] on [-R, R], R = [`TRAPEZOID_RANGE`] (the step
/// dimensions' rule), and the ln of its normaliser Σ h φ(t_q) (ends halved).
fn trapezoid_rule(n: usize) -> (Vec<f64>, Vec<f64>, f64) {
    trapezoid_on(n, TRAPEZOID_RANGE)
}

/// The first `k` primes.
fn first_primes(k: usize) -> Vec<u64> {
    let mut primes: Vec<u64> = Vec::with_capacity(k);
    let mut c = 2u64;
    while primes.len() < k {
        if primes
            .iter()
            .take_while(|&&p| p * p <= c)
            .all(|&p| !c.is_multiple_of(p))
        {
            primes.push(c);
        }
        c += 1;
    }
    primes
}

/// Van der Corput radical inverse of `i` in base `b`, in [0, 1).
fn radical_inverse(mut i: u64, b: u64) -> f64 {
    let inv_b = 1.0 / b as f64;
    let mut f = inv_b;
    let mut v = 0.0;
    while i > 0 {
        v += f * (i % b) as f64;
        i /= b;
        f *= inv_b;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(g: &Grid, f: impl Fn(&[f64]) -> f64) -> f64 {
        (0..g.n_nodes())
            .map(|q| g.log_weights[q].exp() * f(g.node(q)))
            .sum()
    }

    fn logistic(t: f64) -> f64 {
        1.0 / (1.0 + (-t).exp())
    }

    /// E[f(Z)] by composite Simpson on [-12, 12] with 200001 points.
    fn brute(f: impl Fn(f64) -> f64) -> f64 {
        let n = 200_000usize; // intervals
        let (a, b) = (-12.0, 12.0);
        let h = (b - a) / n as f64;
        let g = |t: f64| f(t) * (ln_phi(t)).exp();
        let mut s = g(a) + g(b);
        for i in 1..n {
            let t = a + i as f64 * h;
            s += if i % 2 == 1 { 4.0 } else { 2.0 } * g(t);
        }
        s * h / 3.0
    }

    fn logit_target(z: f64) -> f64 {
        logistic(2.0 + 1.5 * z)
    }

    #[test]
    fn weights_sum_to_one() {
        for method in [Method::Trapezoid, Method::GaussHermite, Method::MonteCarlo] {
            for dims in 1..=3 {
                for points in [1, 2, 7, 15] {
                    let g = Grid::new(method, points, dims);
                    let s: f64 = g.log_weights.iter().map(|w| w.exp()).sum();
                    assert!((s - 1.0).abs() < 1e-13, "{method:?} {points} {dims}: {s}");
                    assert_eq!(g.nodes.len(), g.n_nodes() * dims);
                    assert_eq!(g.log_density.len(), g.n_nodes());
                    for q in 0..g.n_nodes() {
                        let ld: f64 = g.node(q).iter().map(|&t| ln_phi(t)).sum();
                        assert!((ld - g.log_density[q]).abs() < 1e-12);
                    }
                }
            }
        }
    }

    #[test]
    fn zero_dims_is_single() {
        for method in [Method::Trapezoid, Method::GaussHermite, Method::MonteCarlo] {
            let g = Grid::new(method, 15, 0);
            assert_eq!(g, Grid::single());
            assert_eq!(g.n_nodes(), 1);
            assert_eq!(g.log_weights, vec![0.0]);
            assert_eq!(g.log_density, vec![0.0]);
            assert!(g.node(0).is_empty());
        }
        assert_eq!(Grid::monte_carlo_shifted(10, 0, &[]), Grid::single());
    }

    /// Nesting reorders the nodes of a product rule, nothing else: the same
    /// (node, weight, density) triples, with the requested dimension the
    /// outermost (it changes least often along the passes).
    #[test]
    fn nesting_only_reorders_the_nodes() {
        let g = Grid::new(Method::GaussHermite, 3, 3);
        let n = g.clone().nested(&[2, 0]);
        let triples = |g: &Grid| {
            let mut v: Vec<(Vec<u64>, u64, u64)> = (0..g.n_nodes())
                .map(|q| {
                    (
                        g.node(q).iter().map(|x| x.to_bits()).collect(),
                        g.log_weights[q].to_bits(),
                        g.log_density[q].to_bits(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        assert_eq!(triples(&g), triples(&Grid::new(Method::GaussHermite, 3, 3)));
        assert_eq!(triples(&n), triples(&g));
        let changes = |d: usize| {
            (1..n.n_nodes())
                .filter(|&q| n.node(q)[d] != n.node(q - 1)[d])
                .count()
        };
        // dimension 2 outermost (2 changes), then 0 (8), then 1 fastest (26)
        assert_eq!((changes(2), changes(0), changes(1)), (2, 8, 26));
    }

    #[test]
    fn gauss_hermite_three_points() {
        // nodes 0, ±sqrt(3); weights 2/3, 1/6
        let (x, lw) = gauss_hermite_1d(3);
        let s3 = 3f64.sqrt();
        assert!((x[0] + s3).abs() < 1e-15 && x[1] == 0.0 && (x[2] - s3).abs() < 1e-15);
        let w: Vec<f64> = lw.iter().map(|l| l.exp()).collect();
        assert!((w[0] - 1.0 / 6.0).abs() < 1e-15);
        assert!((w[1] - 2.0 / 3.0).abs() < 1e-15);
        assert!((w[2] - 1.0 / 6.0).abs() < 1e-15);
    }

    #[test]
    fn gauss_hermite_moments() {
        let moments = [(2, 1.0), (4, 3.0), (6, 15.0), (8, 105.0)];
        for n in [5, 6, 7, 10, 20, 25, 50, 75, 100, 150] {
            let g = Grid::new(Method::GaussHermite, n, 1);
            assert!(g.log_weights.iter().all(|w| w.is_finite()));
            for (k, m) in moments {
                if k > 2 * n - 1 {
                    continue;
                }
                let e = expect(&g, |z| z[0].powi(k as i32));
                assert!(((e - m) / m).abs() < 1e-10, "n={n} k={k}: {e}");
                // odd moments vanish
                let o = expect(&g, |z| z[0].powi(k as i32 - 1));
                assert!(o.abs() < 1e-12, "n={n} k={}: {o}", k - 1);
            }
        }
    }

    #[test]
    fn gauss_hermite_exact_to_degree_2n_minus_1() {
        // E Z^{2k} = (2k-1)!!
        for n in [2, 3, 4, 8, 12] {
            let g = Grid::new(Method::GaussHermite, n, 1);
            let mut df = 1.0;
            for k in 1..n {
                df *= (2 * k - 1) as f64;
                let e = expect(&g, |z| z[0].powi(2 * k as i32));
                assert!(((e - df) / df).abs() < 1e-12, "n={n} 2k={}: {e}", 2 * k);
            }
        }
    }

    #[test]
    fn gauss_hermite_smooth_functions() {
        let target = (-0.5f64).exp();
        let brute_logit = brute(logit_target);
        for n in [25, 50, 100] {
            let g = Grid::new(Method::GaussHermite, n, 1);
            let e = expect(&g, |z| z[0].cos());
            assert!((e - target).abs() < 1e-12, "n={n}: cos {e}");
        }
        for n in [50, 100] {
            let g = Grid::new(Method::GaussHermite, n, 1);
            let e = expect(&g, |z| logit_target(z[0]));
            assert!((e - brute_logit).abs() < 1e-9, "n={n}: logistic {e}");
        }
    }

    #[test]
    fn gauss_hermite_hundred_extreme_nodes() {
        // Reference values from 80-digit arithmetic (Newton on He_100).
        let (x, lw) = gauss_hermite_1d(100);
        assert!((x[99] - 18.959_636_217_387_706).abs() < 1e-12, "{}", x[99]);
        assert!((lw[99] + 180.700_268_437_879_04).abs() < 1e-9, "{}", lw[99]);
        assert!((x[50] - 0.156_689_025_434_773_1).abs() < 1e-14, "{}", x[50]);
        assert!(
            (lw[50] + 2.091_538_888_171_283_4).abs() < 1e-12,
            "{}",
            lw[50]
        );
        assert_eq!(x[0], -x[99]);
        assert_eq!(lw[0], lw[99]);
    }

    #[test]
    fn gauss_hermite_two_dims() {
        let n = 7;
        let g = Grid::new(Method::GaussHermite, n, 2);
        assert_eq!(g.n_nodes(), n * n);
        let e = expect(&g, |z| z[0] * z[0] * z[1] * z[1]);
        assert!((e - 1.0).abs() < 1e-12, "{e}");
        let e = expect(&g, |z| z[0] * z[1]);
        assert!(e.abs() < 1e-14);
        let (x, lw) = gauss_hermite_1d(n);
        for i in 0..n {
            for j in 0..n {
                let q = i * n + j;
                assert_eq!(g.node(q), &[x[i], x[j]]);
                assert!((g.log_weights[q] - lw[i] - lw[j]).abs() < 1e-14);
            }
        }
    }

    #[test]
    fn adapted_points_at_most_double_the_nodes() {
        assert_eq!(adapted_points(15, 1), 29);
        assert_eq!(adapted_points(15, 2), 21);
        assert_eq!(adapted_points(15, 3), 17);
        assert_eq!(adapted_points(15, 0), 15);
        assert_eq!(adapted_points(1, 1), 1);
        assert_eq!(adapted_points(2, 1), 3);
        assert_eq!(adapted_points(3, 8), 3);
        for points in 1..40 {
            for dims in 1..5 {
                let m = adapted_points(points, dims);
                assert!(m >= points);
                let ratio = (m as f64 / points as f64).powi(dims as i32);
                assert!(ratio <= ADAPTED_BUDGET + 1e-12, "{points} {dims}: {m}");
            }
        }
    }

    /// A rule coarse in some dimensions is the product of the coarse and
    /// the fine rules, each as the uniform rules build it.
    #[test]
    fn a_mixed_rule_is_the_product_of_its_dimensions_rules() {
        for m in [Method::Trapezoid, Method::GaussHermite] {
            let step = [false; 3];
            let (coarse, fine) = (Grid::adapted(m, 7, &step), Grid::adapted(m, 15, &step));
            assert_eq!(Grid::adapted_mixed(m, 7, 15, &[], &step), coarse);
            assert_eq!(Grid::adapted_mixed(m, 7, 15, &[0, 1, 2], &step), fine);
            let mixed = Grid::adapted_mixed(m, 7, 15, &[1, 2], &step);
            let (nc, nf) = if m == Method::Trapezoid {
                (7, 17)
            } else {
                (7, 15)
            };
            assert_eq!(mixed.n_nodes(), nc * nf * nf);
            // node (i, j, l): the coarse rule's i-th point, the fine rule's
            // j-th and l-th, and the sum of their log weights
            for (i, j, l) in [(0, 0, 0), (3, 5, nf - 2), (6, nf - 1, 2)] {
                let q = (i * nf + j) * nf + l;
                let (qc, qf, qg) = (i * nc * nc, j * nf * nf, l * nf * nf);
                assert_eq!(mixed.node(q)[0], coarse.node(qc)[0]);
                assert_eq!(mixed.node(q)[1], fine.node(qf)[0]);
                assert_eq!(mixed.node(q)[2], fine.node(qg)[0]);
                // a 1-d rule's i-th log weight less its first's
                let one =
                    |g: &Grid, n: usize, i: usize| g.log_weights[i * n * n] - g.log_weights[0];
                let w = mixed.log_weights[q] - mixed.log_weights[0];
                let expect = one(&coarse, nc, i) + one(&fine, nf, j) + one(&fine, nf, l);
                assert!(
                    (w - expect).abs() < 1e-12,
                    "{m:?} ({i}, {j}, {l}): {w} vs {expect}"
                );
            }
        }
    }

    #[test]
    fn adapted_trapezoid_is_finer_and_wider() {
        let g = Grid::adapted(Method::Trapezoid, 15, &[false]);
        assert_eq!(g.n_nodes(), 29);
        let reach = (ADAPTED_STRETCH * ADAPTED_TRAPEZOID_RANGE).sinh() / ADAPTED_STRETCH;
        assert!((g.node(0)[0] + reach).abs() < 1e-12 && (g.node(28)[0] - reach).abs() < 1e-12);
        assert!((reach - 9.52).abs() < 0.01, "{reach}");
        // spacing 1/2 at the centre, the requested rule's u-nodes embedded
        assert_eq!(g.node(14), &[0.0]);
        assert!((g.node(15)[0] - (0.5 * ADAPTED_STRETCH).sinh() / ADAPTED_STRETCH).abs() < 1e-15);
        let s: f64 = g.log_weights.iter().map(|w| w.exp()).sum();
        assert!((s - 1.0).abs() < 1e-13);
        for q in 0..g.n_nodes() {
            assert!((ln_phi(g.node(q)[0]) - g.log_density[q]).abs() < 1e-12);
        }
        for (k, m) in [(2, 1.0), (4, 3.0), (6, 15.0)] {
            let e = expect(&g, |z| z[0].powi(k));
            assert!(((e - m) / m).abs() < 1e-9, "E z^{k} = {e}");
        }
        let b = brute(logit_target);
        assert!((expect(&g, |z| logit_target(z[0])) - b).abs() < 1e-9);
        // few points keep u on [-5, 5]; 13 points on [-6, 6]
        let r = |u: f64| (ADAPTED_STRETCH * u).sinh() / ADAPTED_STRETCH;
        let g7 = Grid::adapted(Method::Trapezoid, 7, &[false]);
        assert_eq!(g7.n_nodes(), 13);
        assert!((g7.node(0)[0] + r(5.0)).abs() < 1e-12);
        let g13 = Grid::adapted(Method::Trapezoid, 13, &[false]);
        assert!((g13.node(0)[0] + r(6.0)).abs() < 1e-12);
        // two dimensions: 21 points each
        assert_eq!(
            Grid::adapted(Method::Trapezoid, 15, &[false, false]).n_nodes(),
            21 * 21
        );
        // Gauss-Hermite and step dimensions are the same as unadapted
        let gh = Grid::adapted(Method::GaussHermite, 15, &[false]);
        assert_eq!(gh, Grid::new(Method::GaussHermite, 15, 1));
        let st = Grid::adapted(Method::Trapezoid, 15, &[true]);
        assert_eq!(st, Grid::with_steps(Method::Trapezoid, 15, &[true]));
        let mixed = Grid::adapted(Method::Trapezoid, 15, &[false, true]);
        assert_eq!(mixed.n_nodes(), 29 * STEP_POINTS);
        assert_eq!(Grid::adapted(Method::Trapezoid, 15, &[]), Grid::single());
        for (method, points, step) in [
            (Method::Trapezoid, 15, vec![false]),
            (Method::Trapezoid, 7, vec![false, true]),
            (Method::Trapezoid, 15, vec![false, false, false]),
            (Method::GaussHermite, 15, vec![false, true]),
            (Method::MonteCarlo, 100, vec![false, false]),
            (Method::Trapezoid, 15, vec![]),
        ] {
            assert_eq!(
                Grid::nodes_adapted(method, points, &step),
                Grid::adapted(method, points, &step).n_nodes() as f64
            );
        }
    }

    /// A 3PL person's posterior, the prior below a cliff of wrong answers
    /// to steep items above a guessing floor of right ones, is integrated
    /// by the adapted rule (adapted to its mean and standard deviation)
    /// to 3.3e-5 of its value; the former rule (15 nodes at spacing 1 on
    /// [-7, 7]) erred by 1.4e-2.
    #[test]
    fn adapted_trapezoid_integrates_a_guessing_posterior() {
        // (a, b, g, answer)
        let items = [
            (1.74, 1.26, 0.20, 1.0),
            (1.92, 1.35, 0.21, 1.0),
            (1.52, 1.46, 0.16, 0.0),
            (1.76, 1.61, 0.19, 0.0),
            (2.76, 1.74, 0.21, 0.0),
            (2.25, 2.02, 0.21, 0.0),
            (2.74, 1.48, 0.21, 1.0),
            (2.50, 1.76, 0.20, 0.0),
        ];
        let lik = |z: f64| {
            items
                .iter()
                .map(|&(a, b, g, u)| {
                    let p = g + (1.0 - g) * logistic(a * (z - b));
                    if u > 0.0 { p } else { 1.0 - p }
                })
                .product::<f64>()
        };
        let exact = brute(lik);
        let adapted = |g: &Grid| {
            // mean and standard deviation of the posterior
            let m = brute(|z| z * lik(z)) / exact;
            let sd = (brute(|z| (z - m) * (z - m) * lik(z)) / exact).sqrt();
            (0..g.n_nodes())
                .map(|q| {
                    let t = g.node(q)[0];
                    let z = m + sd * t;
                    (g.log_weights[q] + ln_phi(z) - g.log_density[q] + sd.ln()).exp() * lik(z)
                })
                .sum::<f64>()
        };
        let new = adapted(&Grid::adapted(Method::Trapezoid, 15, &[false]));
        let old = adapted(&Grid::with_steps_on(
            Method::Trapezoid,
            15,
            &[false],
            ADAPTED_TRAPEZOID_RANGE,
        ));
        assert!(((new - exact) / exact).abs() < 1e-4, "{new} vs {exact}");
        assert!(((old - exact) / exact).abs() > 1e-2, "{old} vs {exact}");
    }

    #[test]
    fn trapezoid_accuracy() {
        let g = Grid::new(Method::Trapezoid, 15, 1);
        assert_eq!(g.n_nodes(), 15);
        assert_eq!(g.node(0), &[-5.0]);
        assert_eq!(g.node(14), &[5.0]);
        let e = expect(&g, |z| z[0] * z[0]);
        assert!((e - 1.0).abs() < 1e-3, "{e}");

        let g = Grid::new(Method::Trapezoid, 101, 1);
        let e = expect(&g, |z| logit_target(z[0]));
        let b = brute(logit_target);
        // Dominated by truncation at |z| = 5 (tail mass 5.7e-7), not by h.
        assert!((e - b).abs() < 5e-7, "{e} vs {b}: {}", e - b);

        let g = Grid::new(Method::Trapezoid, 1, 2);
        assert_eq!(g.n_nodes(), 1);
        assert_eq!(g.node(0), &[0.0, 0.0]);
    }

    #[test]
    fn monte_carlo_balance() {
        let n = 2000;
        let g = Grid::new(Method::MonteCarlo, n, 2);
        assert_eq!(g.n_nodes(), n);
        for d in 0..2 {
            let m = expect(&g, |z| z[d]);
            let v = expect(&g, |z| (z[d] - m).powi(2));
            assert!(m.abs() < 0.01, "dim {d}: mean {m}");
            assert!((v - 1.0).abs() < 0.03, "dim {d}: var {v}");
        }
        let c = expect(&g, |z| z[0] * z[1]);
        assert!(c.abs() < 0.03, "cov {c}");
        let e = expect(&g, |z| logit_target(z[0]));
        let b = brute(logit_target);
        assert!((e - b).abs() < 0.005, "{e} vs {b}");
        assert!(g.nodes.iter().all(|z| z.is_finite()));
    }

    #[test]
    fn monte_carlo_shifted_replicates() {
        let n = 1000;
        let b = brute(logit_target);
        let zero = Grid::monte_carlo_shifted(n, 2, &[0.0, 0.0]);
        assert_eq!(zero, Grid::new(Method::MonteCarlo, n, 2));
        // deterministic pseudo-random shifts
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let reps = 20;
        let est: Vec<f64> = (0..reps)
            .map(|_| {
                let s = [uniform(), uniform()];
                let g = Grid::monte_carlo_shifted(n, 2, &s);
                assert!(g.nodes.iter().all(|z| z.is_finite()));
                expect(&g, |z| logit_target(z[0]) * logit_target(z[1]))
            })
            .collect();
        let mean = est.iter().sum::<f64>() / reps as f64;
        let sd = (est.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (reps - 1) as f64).sqrt();
        let se = sd / (reps as f64).sqrt();
        assert!(sd > 0.0 && sd < 0.01, "sd {sd}");
        assert!(
            (mean - b * b).abs() < 4.0 * se + 1e-6,
            "{mean} vs {} (se {se})",
            b * b
        );
    }
}
