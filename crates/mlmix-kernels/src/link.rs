//! Link functions for categorical outcomes: the distribution function F of
//! the latent response y* (eq 1), its density f, and numerically stable
//! logarithms and tail probabilities.
//!
//! Each function here is a hot kernel with a WGSL twin of the same name
//! planned in `shaders/`; keep them branch-light and allocation-free.

pub use mlmix_spec::Link;

/// ln(2π)
pub const LN_2PI: f64 = 1.837_877_066_409_345_5;
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Standard normal distribution function Φ(t).
#[inline]
pub fn norm_cdf(t: f64) -> f64 {
    0.5 * libm::erfc(-t * std::f64::consts::FRAC_1_SQRT_2)
}

/// Standard normal density φ(t).
#[inline]
pub fn norm_pdf(t: f64) -> f64 {
    FRAC_1_SQRT_2PI * (-0.5 * t * t).exp()
}

/// ln Φ(t), accurate in the far lower tail.
#[inline]
pub fn norm_log_cdf(t: f64) -> f64 {
    if t > -37.0 {
        norm_cdf(t).ln()
    } else {
        // Asymptotic series: Φ(t) ≈ φ(t)/(-t) · (1 - 1/t² + 3/t⁴ - 15/t⁶)
        let t2 = t * t;
        let s = 1.0 - 1.0 / t2 + 3.0 / (t2 * t2) - 15.0 / (t2 * t2 * t2);
        -0.5 * t2 - 0.5 * LN_2PI - (-t).ln() + s.ln()
    }
}

/// Logistic distribution function 1/(1+e^{-t}).
#[inline]
pub fn logistic_cdf(t: f64) -> f64 {
    if t >= 0.0 {
        1.0 / (1.0 + (-t).exp())
    } else {
        let e = t.exp();
        e / (1.0 + e)
    }
}

/// ln of the logistic distribution function, stable for all t.
#[inline]
pub fn logistic_log_cdf(t: f64) -> f64 {
    if t >= 0.0 {
        -(-t).exp().ln_1p()
    } else {
        t - t.exp().ln_1p()
    }
}

/// F(t) for a link.
#[inline]
pub fn cdf(link: Link, t: f64) -> f64 {
    match link {
        Link::Logit => logistic_cdf(t),
        Link::Probit => norm_cdf(t),
    }
}

/// f(t) = F'(t) for a link.
#[inline]
pub fn pdf(link: Link, t: f64) -> f64 {
    match link {
        Link::Logit => {
            let p = logistic_cdf(t);
            p * logistic_cdf(-t)
        }
        Link::Probit => norm_pdf(t),
    }
}

/// ln F(t) for a link.
#[inline]
pub fn log_cdf(link: Link, t: f64) -> f64 {
    match link {
        Link::Logit => logistic_log_cdf(t),
        Link::Probit => norm_log_cdf(t),
    }
}

/// The inverse of F, for starting values (not a hot kernel).
pub fn quantile(link: Link, p: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    match link {
        Link::Logit => (p / (1.0 - p)).ln(),
        Link::Probit => norm_quantile(p),
    }
}

/// Inverse standard normal distribution function (Wichura's AS 241,
/// accurate to about 1e-16).
#[allow(clippy::excessive_precision)]
pub fn norm_quantile(p: f64) -> f64 {
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return q
            * (((((((r * 2509.0809287301227 + 33430.57558358813) * r + 67265.7709270087) * r
                + 45921.95393154987)
                * r
                + 13731.69376550946)
                * r
                + 1971.5909503065513)
                * r
                + 133.14166789178438)
                * r
                + 3.3871328727963665)
            / (((((((r * 5226.495278852545 + 28729.085735721943) * r + 39307.89580009271) * r
                + 21213.794301586595)
                * r
                + 5394.196021424751)
                * r
                + 687.1870074920579)
                * r
                + 42.31333070160091)
                * r
                + 1.0);
    }
    let mut r = if q < 0.0 { p } else { 1.0 - p };
    r = (-r.ln()).sqrt();
    let val = if r <= 5.0 {
        r -= 1.6;
        (((((((r * 7.745450142783414e-4 + 0.022723844989269184) * r + 0.2417807251774506) * r
            + 1.2704582524523684)
            * r
            + 3.6478483247632045)
            * r
            + 5.769497221460691)
            * r
            + 4.630337846156546)
            * r
            + 1.4234371107496835)
            / (((((((r * 1.0507500716444169e-9 + 5.475938084995345e-4) * r
                + 0.015198666563616457)
                * r
                + 0.14810397642748008)
                * r
                + 0.6897673349851)
                * r
                + 1.6763848301838038)
                * r
                + 2.053191626637759)
                * r
                + 1.0)
    } else {
        r -= 5.0;
        (((((((r * 2.0103343992922881e-7 + 2.7115555687434876e-5) * r + 0.0012426609473880784)
            * r
            + 0.026532189526576124)
            * r
            + 0.2965605718285049)
            * r
            + 1.7848265399172913)
            * r
            + 5.463784911164114)
            * r
            + 6.657904643501103)
            / (((((((r * 2.0442631033899397e-15 + 1.421511758316446e-7) * r
                + 1.8463183175100548e-5)
                * r
                + 7.868691311456133e-4)
                * r
                + 0.014875361290850615)
                * r
                + 0.1369298809227358)
                * r
                + 0.599832206555888)
                * r
                + 1.0)
    };
    if q < 0.0 { -val } else { val }
}

/// Probability of an ordered category with latent bounds `lower` and
/// `upper` (τ_c − η and τ_{c+1} − η; `None` is −∞ resp. +∞), computed from the
/// tail that avoids cancellation: P = F(upper) − F(lower).
#[inline]
pub fn category_prob(link: Link, lower: Option<f64>, upper: Option<f64>) -> f64 {
    match (lower, upper) {
        (None, None) => 1.0,
        (None, Some(u)) => cdf(link, u),
        (Some(l), None) => cdf(link, -l),
        (Some(l), Some(u)) => {
            if l > 0.0 {
                cdf(link, -l) - cdf(link, -u)
            } else {
                cdf(link, u) - cdf(link, l)
            }
        }
    }
}

/// ln of [`category_prob`], with the end categories through the stable
/// log-CDF.
#[inline]
pub fn category_log_prob(link: Link, lower: Option<f64>, upper: Option<f64>) -> f64 {
    match (lower, upper) {
        (None, None) => 0.0,
        (None, Some(u)) => log_cdf(link, u),
        (Some(l), None) => log_cdf(link, -l),
        (Some(_), Some(_)) => category_prob(link, lower, upper).ln(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use statrs::distribution::{Continuous, ContinuousCDF, Normal};

    #[test]
    fn normal_matches_statrs_in_the_centre() {
        let n = Normal::standard();
        // statrs is a cross-check for gross errors (its erfc is good to about
        // 1e-10 relative); accuracy is held by the certified values below.
        for &t in &[-3.0, -1.0, 0.0, 0.5, 2.0] {
            assert!(((norm_cdf(t) - n.cdf(t)) / n.cdf(t)).abs() < 1e-9, "{t}");
            assert!((norm_pdf(t) - n.pdf(t)).abs() < 1e-15, "{t}");
        }
        for &p in &[1e-10, 0.001, 0.2, 0.5, 0.77, 0.999] {
            assert!((norm_quantile(p) - n.inverse_cdf(p)).abs() < 1e-9, "{p}");
        }
    }

    #[test]
    fn normal_tails_match_certified_values() {
        // Φ(t) to 17 digits (statrs is only good to ~1e-10 relative out here)
        let certified = [
            (-8.0, 6.220_960_574_271_784e-16),
            (-5.0, 2.866_515_718_791_939e-7),
            (-3.0, 1.349_898_031_630_094_5e-3),
            (6.0, 0.999_999_999_013_412_4),
        ];
        for (t, v) in certified {
            assert!(
                ((norm_cdf(t) - v) / v).abs() < 1e-13,
                "{t}: {}",
                norm_cdf(t)
            );
            assert!((norm_log_cdf(t) - v.ln()).abs() < 1e-13, "{t}");
        }
    }

    #[test]
    fn far_tail_log_cdf_is_continuous() {
        let a = norm_log_cdf(-36.999_999);
        let b = norm_log_cdf(-37.000_001);
        assert!((a - b).abs() < 1e-3, "{a} {b}");
        assert!(norm_log_cdf(-60.0).is_finite());
    }

    #[test]
    fn logistic_log_cdf_is_stable() {
        for &t in &[-800.0, -30.0, -1.0, 0.0, 1.0, 30.0, 800.0] {
            let direct = logistic_cdf(t).ln();
            let stable = logistic_log_cdf(t);
            if direct.is_finite() {
                assert!((direct - stable).abs() < 1e-12, "{t}");
            } else {
                assert!(stable.is_finite());
            }
        }
    }

    #[test]
    fn category_probabilities_sum_to_one() {
        for link in [Link::Logit, Link::Probit] {
            let tau = [-1.3, 0.2, 2.5];
            for &eta in &[-20.0, -2.0, 0.0, 1.0, 20.0] {
                let mut s = 0.0;
                for c in 0..=tau.len() {
                    let lo = (c > 0).then(|| tau[c - 1] - eta);
                    let hi = (c < tau.len()).then(|| tau[c] - eta);
                    let p = category_prob(link, lo, hi);
                    assert!(p >= 0.0);
                    let lp = category_log_prob(link, lo, hi);
                    if p > 1e-300 {
                        assert!((lp - p.ln()).abs() < 1e-9, "{link:?} {eta} {c}");
                    }
                    s += p;
                }
                assert!((s - 1.0).abs() < 1e-12, "{link:?} {eta}: {s}");
            }
        }
    }
}
