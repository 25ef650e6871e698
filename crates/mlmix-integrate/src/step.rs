//! Step dimensions: the random logit intercept of a class variable.
//!
//! With alpha_j = mu + sigma z the class probabilities of a cluster's rows
//! change over a width of order 1/sigma in z around each row's *junction*
//! z*_i, where the random class's logit against the others crosses 0. For a
//! large variance (the paper's Model 6, Figures 2-3) that is a step, which
//! neither a plain rule nor a rule adapted to a normal posterior integrates:
//! errors of order 1 in the log-likelihood, which a fit climbs.
//!
//! Adaptive quadrature therefore gives a step dimension its own rule per
//! cluster ([`StepMap`]): points whose spacing is about [`CORE`] / 2 in
//! alpha at the centre of the cluster's junctions and grows geometrically
//! away from it, up to a spacing that still resolves the normal density
//! over [-Z, Z] ([`STEP_RANGE`]). Its accuracy does not depend on sigma:
//! with 61 points, about 1e-6 in a cluster's log-likelihood from sigma =
//! 0.5 to 1e5, for clusters whose likelihood changes by 1e30 across the
//! step (measured against a 400000-point rule while designing it; the
//! tests below check 1e-6 on a milder case: 3e-7 measured).

use mlmix_kernels::{NONE, Plan, TermKind};

use crate::grid::TRAPEZOID_RANGE;

/// Half-width Z (in z) of the range a step dimension's rule covers: the
/// normal mass beyond is 1e-15, and the map's centre is kept within
/// Z - 2, so that the rule reaches 2 past it (the likelihood may be far
/// larger past a junction than before it).
pub const STEP_RANGE: f64 = 8.0;
/// Scale of a step rule at its centre, in units of the logit (alpha):
/// s = CORE / sigma.
pub const CORE: f64 = 2.0;
/// Largest scale s.
const MAX_SCALE: f64 = 100.0;

/// Where a step dimension sits in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepDim {
    /// Integration dimension.
    pub dim: usize,
    /// The class-logit term it enters.
    pub term: usize,
    /// The class whose logit it shifts.
    pub class: usize,
    /// Index of its standard deviation (the 1x1 Cholesky factor) in the
    /// extended parameter vector.
    pub sigma: usize,
}

/// The step dimensions of a plan: a dimension qualifies when it is a random
/// effect of its own (a 1x1 covariance block: uncorrelated with the others,
/// one variance for all classes) that enters one within-level class logit,
/// as the intercept of one class, and nothing else.
pub fn step_dims(plan: &Plan) -> Vec<StepDim> {
    let mut out = Vec::new();
    for d in 0..plan.dims {
        // (one block per covariance state: the same Psi in each when the
        // states are a within-level class variable's, and the class logit
        // reads the first's)
        let blocks: Vec<_> = plan.chol.iter().filter(|b| b.dims.contains(&d)).collect();
        let block = match blocks.as_slice() {
            [block] => block,
            [block, ..] if plan.psi_shared => block,
            _ => continue,
        };
        if block.dims.len() != 1 {
            continue;
        }
        let sigma = block.l[0];
        let vcs: Vec<usize> = (0..plan.virtual_cols.len())
            .filter(|&v| plan.virtual_cols[v].dim == d)
            .collect();
        let [v] = vcs.as_slice() else {
            continue;
        };
        if plan.virtual_cols[*v].mult.is_some() {
            continue;
        }
        let col = plan.n_data_cols + v;
        let readers: Vec<usize> = (0..plan.terms.len())
            .filter(|&t| plan.terms[t].kind.covs().contains(&col))
            .collect();
        let [t] = readers.as_slice() else {
            continue;
        };
        let term = &plan.terms[*t];
        let TermKind::ClassLogit { classes, covs, .. } = &term.kind else {
            continue;
        };
        if term.cluster_level || *classes < 2 {
            continue;
        }
        let Some(i) = covs.iter().position(|&c| c == col) else {
            continue;
        };
        let per = term.n_local / classes;
        let coef = |set: usize, k: usize| term.phi_index[set * term.n_local + k * per + 1 + i];
        let with: Vec<usize> = (0..*classes).filter(|&k| coef(0, k) != NONE).collect();
        let [class] = with.as_slice() else {
            continue;
        };
        let same = (0..term.n_sets).all(|set| {
            (0..*classes).all(|k| {
                let c = coef(set, k);
                if k == *class { c == sigma } else { c == NONE }
            })
        });
        if same {
            out.push(StepDim {
                dim: d,
                term: *t,
                class: *class,
                sigma: sigma as usize,
            });
        }
    }
    out
}

/// The junctions of one step dimension at some parameters: its standard
/// deviation and, per cluster, the range of its rows' junctions in z (NaN
/// where none is defined, e.g. sigma = 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Junctions {
    /// Integration dimension.
    pub dim: usize,
    /// Its standard deviation sigma.
    pub sigma: f64,
    /// Smallest junction per cluster.
    pub lo: Vec<f64>,
    /// Largest junction per cluster.
    pub hi: Vec<f64>,
}

/// The per-cluster rule of one step dimension: its `n` base points
/// t_k = -R + k h (the grid's trapezoid points) moved to z_k with
/// U(z_k) = U(-Z) + k (U(Z) - U(-Z)) / (n - 1), where
/// U(z) = asinh((z - a) / s) + (z - a) / G:
/// spacing s Δu at the centre a, growing geometrically away from it up to
/// G Δu, so both the step and the normal density are resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct StepMap {
    /// Integration dimension.
    pub dim: usize,
    /// Points per cluster.
    pub n: usize,
    /// Per cluster: the centre a (see [`junction_centre`]).
    pub centre: Vec<f64>,
    /// Per cluster and point: z_k.
    pub z: Vec<f64>,
    /// Per cluster and point: ln of the weight ratio h_u / (h U'(z_k)),
    /// the rule's weight in z over the base trapezoid weight in t (h_u the
    /// spacing in u, h that of the base points).
    pub ln_ratio: Vec<f64>,
}

/// The centre of a cluster's step rule: the middle of its junctions' range
/// `[lo, hi]` (0 without junctions), kept within [2 - Z, Z - 2].
pub fn junction_centre(lo: f64, hi: f64) -> f64 {
    let a = if lo.is_finite() && hi.is_finite() {
        0.5 * (lo + hi)
    } else {
        0.0
    };
    a.clamp(2.0 - STEP_RANGE, STEP_RANGE - 2.0)
}

/// Largest spacing of a step rule in z, per unit of u.
const G: f64 = 1.0;

impl StepMap {
    /// The rule of each cluster from its junctions: centred on the middle
    /// of their range (kept within [2 - Z, Z - 2]), with a scale of
    /// CORE / sigma or half the range, whichever is larger. `n` points.
    pub fn new(j: &Junctions, n: usize) -> StepMap {
        let nc = j.lo.len();
        let n = n.max(2);
        let mut m = StepMap {
            dim: j.dim,
            n,
            centre: vec![0.0; nc],
            z: vec![0.0; nc * n],
            ln_ratio: vec![0.0; nc * n],
        };
        let core = if j.sigma > 0.0 && j.sigma.is_finite() {
            CORE / j.sigma
        } else {
            MAX_SCALE
        };
        let h = 2.0 * TRAPEZOID_RANGE / (n - 1) as f64;
        for c in 0..nc {
            let a = junction_centre(j.lo[c], j.hi[c]);
            m.centre[c] = a;
            let half = if j.lo[c].is_finite() && j.hi[c].is_finite() {
                0.5 * (j.hi[c] - j.lo[c])
            } else {
                0.0
            };
            let s = core.max(half).min(MAX_SCALE);
            let u_of = |z: f64| ((z - a) / s).asinh() + (z - a) / G;
            let du = |z: f64| 1.0 / (s * s + (z - a) * (z - a)).sqrt() + 1.0 / G;
            let (u0, u1) = (u_of(-STEP_RANGE), u_of(STEP_RANGE));
            let hu = (u1 - u0) / (n - 1) as f64;
            let mut z = -STEP_RANGE;
            for k in 0..n {
                let target = u0 + k as f64 * hu;
                // U is increasing and smooth: Newton from the previous point,
                // kept inside a bracket
                let (mut lo, mut hi) = (-STEP_RANGE - 1.0, STEP_RANGE + 1.0);
                for _ in 0..100 {
                    let f = u_of(z) - target;
                    if f.abs() < 1e-13 {
                        break;
                    }
                    if f > 0.0 {
                        hi = z;
                    } else {
                        lo = z;
                    }
                    let next = z - f / du(z);
                    z = if next > lo && next < hi {
                        next
                    } else {
                        0.5 * (lo + hi)
                    };
                }
                m.z[c * n + k] = z;
                m.ln_ratio[c * n + k] = (hu / h).ln() - du(z).ln();
            }
        }
        m
    }

    /// Cluster `c`'s point for base coordinate `t` (one of the base
    /// points): z and the ln weight ratio.
    #[inline]
    pub fn point(&self, c: usize, t: f64) -> (f64, f64) {
        let h = 2.0 * TRAPEZOID_RANGE / (self.n - 1) as f64;
        let k = (((t + TRAPEZOID_RANGE) / h).round() as usize).min(self.n - 1);
        (self.z[c * self.n + k], self.ln_ratio[c * self.n + k])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ln_phi(z: f64) -> f64 {
        -0.5 * z * z - 0.5 * (2.0 * std::f64::consts::PI).ln()
    }

    fn logistic(t: f64) -> f64 {
        1.0 / (1.0 + (-t).exp())
    }

    /// ∫ φ(z) f(z) dz by the step rule of one cluster with junctions at
    /// `at` (n uniform base points on [-R, R], trapezoid).
    fn step_rule(sigma: f64, lo: f64, hi: f64, n: usize, f: impl Fn(f64) -> f64) -> f64 {
        let m = StepMap::new(
            &Junctions {
                dim: 0,
                sigma,
                lo: vec![lo],
                hi: vec![hi],
            },
            n,
        );
        let r = TRAPEZOID_RANGE;
        let h = 2.0 * r / (n - 1) as f64;
        (0..n)
            .map(|q| {
                let t = -r + q as f64 * h;
                let end = if q == 0 || q == n - 1 { 0.5 } else { 1.0 };
                let (z, ln_ratio) = m.point(0, t);
                end * h * (ln_phi(z) + ln_ratio).exp() * f(z)
            })
            .sum()
    }

    /// Composite Simpson on [a, b] with `n` (even) intervals.
    fn simpson(a: f64, b: f64, n: usize, f: impl Fn(f64) -> f64) -> f64 {
        let h = (b - a) / n as f64;
        let mut s = f(a) + f(b);
        for i in 1..n {
            s += f(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        s * h / 3.0
    }

    #[test]
    fn normal_mass_over_the_range() {
        // with f = 1 the rule gives Φ(8) - Φ(-8) = 1 - 1e-15, whatever the
        // map's centre and scale
        for (sigma, lo, hi) in [
            (0.5, 0.0, 0.0),
            (30.0, 1.3, 1.3),
            (1000.0, -4.0, -2.0),
            (5.0, 9.0, 9.0),
        ] {
            let v = step_rule(sigma, lo, hi, crate::STEP_POINTS, |_| 1.0);
            assert!(
                (v - 1.0).abs() < 1e-7,
                "sigma {sigma}, junctions [{lo}, {hi}]: {v}"
            );
        }
    }

    #[test]
    fn resolves_a_step_of_any_sharpness() {
        // E[P(alpha) ^ 10 (1 - P(alpha)) ...]: a cluster of 10 rows whose
        // likelihood is f1 in class 1 and f2 in class 2, P = logistic(mu +
        // sigma z + eta_i), against Simpson with 200000 intervals
        for sigma in [1.0, 5.0, 22.0, 121.0, 1000.0] {
            for (mu, spread) in [(0.0, 0.0), (8.0, 1.0), (-30.0, 0.5)] {
                let eta: Vec<f64> = (0..10).map(|i| spread * (i as f64 - 4.5) / 4.5).collect();
                let f = |z: f64| {
                    eta.iter()
                        .enumerate()
                        .map(|(i, e)| {
                            let p = logistic(mu + sigma * z + e);
                            let (f1, f2) = (1.0 + 0.1 * i as f64, 0.3);
                            p * f1 + (1.0 - p) * f2
                        })
                        .product::<f64>()
                };
                let junction = |e: f64| -(mu + e) / sigma;
                let (lo, hi) = (junction(eta[9]), junction(eta[0]));
                let v = step_rule(sigma, lo, hi, crate::STEP_POINTS, f);
                let exact = simpson(-8.0, 8.0, 200_000, |z| ln_phi(z).exp() * f(z));
                let err = (v / exact).ln();
                assert!(
                    err.abs() < 1e-6,
                    "sigma {sigma}, mu {mu}, spread {spread}: {v} vs {exact} ({err:e})"
                );
            }
        }
    }
}
