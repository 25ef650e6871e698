//! The coordinates quasi-Newton moves in.
//!
//! BFGS learns the curvature along its path, which works when the
//! log-likelihood is close to quadratic in the coordinates. Two kinds of
//! parameters are far from that on their natural scale, and are moved in
//! other coordinates `u` (bounds, the active set and the convergence
//! criteria stay on the natural scale `theta`):
//! - a parameter of [`ParamMap::log_scale`] (the variance V of a random
//!   class logit intercept) moves as `ln V`: its log-likelihood flattens
//!   like `1/sqrt(V)` as the intraclass correlation nears 1;
//! - a parameter of [`ParamMap::scaled_by`] (the mean m of such an
//!   intercept) moves as `m / sqrt(V)`: the class probability is about
//!   `Phi(m / sqrt(V))` when V is large, so along the ridge of equal class
//!   proportions m grows with sqrt(V), a curve in (ln V, m) and a straight
//!   line in (ln V, m / sqrt(V)).

use nalgebra::DMatrix;

use crate::problem::ParamMap;

/// The map between `theta` and the quasi-Newton coordinates `u`.
#[derive(Debug, Clone)]
pub(crate) struct Coords {
    /// `u_i = ln theta_i`.
    log: Vec<bool>,
    /// `u_i = theta_i / sqrt(theta_j)` (j on the log scale).
    scale: Vec<Option<usize>>,
}

impl Coords {
    /// The coordinates at `theta`: a log-scale parameter that is not
    /// positive there, and a scaled one whose scale is not on the log
    /// scale, stay on their natural scale.
    pub fn new(map: &ParamMap, theta: &[f64]) -> Coords {
        let n = theta.len();
        let log: Vec<bool> = (0..n)
            .map(|i| map.log_scale.get(i).copied().unwrap_or(false) && theta[i] > 0.0)
            .collect();
        let scale = (0..n)
            .map(|i| {
                map.scaled_by
                    .get(i)
                    .copied()
                    .flatten()
                    .filter(|&j| j != i && log[j] && !log[i])
            })
            .collect();
        Coords { log, scale }
    }

    /// Whether every coordinate is the parameter itself.
    pub fn is_identity(&self) -> bool {
        !self.log.iter().any(|&l| l) && self.scale.iter().all(Option::is_none)
    }

    /// `u` of `theta`.
    pub fn u_of(&self, theta: &[f64]) -> Vec<f64> {
        (0..theta.len())
            .map(|i| {
                if self.log[i] {
                    theta[i].ln()
                } else if let Some(j) = self.scale[i] {
                    theta[i] / theta[j].sqrt()
                } else {
                    theta[i]
                }
            })
            .collect()
    }

    /// `theta` of `u`.
    pub fn theta_of(&self, u: &[f64]) -> Vec<f64> {
        (0..u.len())
            .map(|i| {
                if self.log[i] {
                    u[i].exp()
                } else if let Some(j) = self.scale[i] {
                    u[i] * (0.5 * u[j]).exp()
                } else {
                    u[i]
                }
            })
            .collect()
    }

    /// d theta / d u at `theta`.
    pub fn jac(&self, theta: &[f64]) -> DMatrix<f64> {
        let n = theta.len();
        let mut m = DMatrix::identity(n, n);
        for i in 0..n {
            if self.log[i] {
                m[(i, i)] = theta[i];
            } else if let Some(j) = self.scale[i] {
                m[(i, i)] = theta[j].sqrt();
                m[(i, j)] = 0.5 * theta[i];
            }
        }
        m
    }

    /// d u / d theta at `theta` (the inverse of [`Coords::jac`]).
    pub fn jac_inv(&self, theta: &[f64]) -> DMatrix<f64> {
        let n = theta.len();
        let mut m = DMatrix::identity(n, n);
        for i in 0..n {
            if self.log[i] {
                m[(i, i)] = 1.0 / theta[i];
            } else if let Some(j) = self.scale[i] {
                let s = theta[j].sqrt();
                m[(i, i)] = 1.0 / s;
                m[(i, j)] = -0.5 * theta[i] / (theta[j] * s);
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Bound;

    fn map() -> ParamMap {
        ParamMap {
            n_free: 3,
            free_of_phi: vec![Some(0), Some(1), Some(2)],
            fixed_value: vec![0.0; 3],
            bounds: vec![Bound::FREE; 3],
            log_scale: vec![false, true, false],
            scaled_by: vec![None, None, Some(1)],
        }
    }

    /// The maps invert each other and the Jacobians are each other's
    /// inverses and match finite differences.
    #[test]
    fn coordinates_round_trip_and_jacobians_match() {
        let theta = [0.3, 1400.0, 0.67];
        let c = Coords::new(&map(), &theta);
        assert!(!c.is_identity());
        let u = c.u_of(&theta);
        let back = c.theta_of(&u);
        for (a, b) in theta.iter().zip(&back) {
            assert!((a - b).abs() < 1e-12 * a.abs().max(1.0), "{a} vs {b}");
        }
        let j = c.jac(&theta);
        let ji = c.jac_inv(&theta);
        let prod = &j * &ji;
        assert!((prod - DMatrix::<f64>::identity(3, 3)).amax() < 1e-12);
        for k in 0..3 {
            let h = 1e-6 * u[k].abs().max(1.0);
            let (mut up, mut dn) = (u.clone(), u.clone());
            up[k] += h;
            dn[k] -= h;
            let (tp, td) = (c.theta_of(&up), c.theta_of(&dn));
            for i in 0..3 {
                let fd = (tp[i] - td[i]) / (2.0 * h);
                assert!(
                    (fd - j[(i, k)]).abs() < 1e-6 * j[(i, k)].abs().max(1.0),
                    "d theta_{i} / d u_{k}: {fd} vs {}",
                    j[(i, k)]
                );
            }
        }
        // a non-positive variance stays on its own scale, and so does
        // the mean it would scale
        let c0 = Coords::new(&map(), &[0.3, 0.0, 0.67]);
        assert!(c0.is_identity());
    }
}
