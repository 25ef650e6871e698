//! One-dimensional quadrature rules for the standard normal weight: the
//! trapezoid rule on [-r, r] and the probabilists' Gauss–Hermite rule.
//! The integration grids (`mlmix-integrate`) are products of them, and so
//! is the fixed per-row rule of within-level factors ([`crate::within`]).

use crate::link::LN_2PI;

/// ln φ(t) for the standard normal density φ.
#[inline]
pub fn ln_phi(t: f64) -> f64 {
    -0.5 * t * t - 0.5 * LN_2PI
}

/// ln Σ exp(v), stable (−∞ when every entry is −∞).
pub fn log_sum_exp(v: &[f64]) -> f64 {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + v.iter().map(|&x| (x - m).exp()).sum::<f64>().ln()
}

/// The trapezoid rule on [-r, r] and the ln of its normaliser.
pub fn trapezoid_on(n: usize, r: f64) -> (Vec<f64>, Vec<f64>, f64) {
    if n == 1 {
        return (vec![0.0], vec![0.0], 0.0);
    }
    let h = 2.0 * r / (n - 1) as f64;
    let t: Vec<f64> = (0..n).map(|q| -r + q as f64 * h).collect();
    let mut lw: Vec<f64> = t
        .iter()
        .enumerate()
        .map(|(q, &x)| {
            let end = if q == 0 || q == n - 1 {
                std::f64::consts::LN_2
            } else {
                0.0
            };
            h.ln() + ln_phi(x) - end
        })
        .collect();
    let s = log_sum_exp(&lw);
    lw.iter_mut().for_each(|w| *w -= s);
    (t, lw, s)
}

/// Orthonormal probabilists' Hermite polynomials p_k = He_k / sqrt(k!)
/// at x: returns (p_{n-1}(x), p_n(x), ln scale) with the true values
/// being the returned ones times exp(ln scale). Rescaled as it goes, so it
/// neither overflows nor underflows for any n.
fn hermite_pair(n: usize, x: f64) -> (f64, f64, f64) {
    let mut prev = 0.0; // p_{-1}
    let mut cur = 1.0; // p_0
    let mut ln_scale = 0.0;
    for k in 0..n {
        let kf = k as f64;
        let next = (x * cur - kf.sqrt() * prev) / (kf + 1.0).sqrt();
        prev = cur;
        cur = next;
        let a = cur.abs().max(prev.abs());
        if a > 1e100 || (a < 1e-100 && a > 0.0) {
            prev /= a;
            cur /= a;
            ln_scale += a.ln();
        }
    }
    (prev, cur, ln_scale)
}

/// Eigenvalues of the symmetric tridiagonal matrix with diagonal `d` and
/// off-diagonal `e` (`e[i]` couples i and i+1; `e.len() == d.len()`, last
/// entry ignored), by the implicit QL method with Wilkinson-type shifts.
/// Returns the eigenvalues in ascending order.
fn tridiagonal_eigenvalues(mut d: Vec<f64>, mut e: Vec<f64>) -> Vec<f64> {
    let n = d.len();
    if n == 0 {
        return d;
    }
    e[n - 1] = 0.0;
    for l in 0..n {
        let mut iter = 0;
        loop {
            let mut m = l;
            while m + 1 < n {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd {
                    break;
                }
                m += 1;
            }
            if m == l || iter >= 100 {
                break;
            }
            iter += 1;
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let mut r = g.hypot(1.0);
            g = d[m] - d[l] + e[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0, 1.0, 0.0);
            let mut deflated = false;
            let mut i = m;
            while i > l {
                i -= 1;
                let f = s * e[i];
                let b = c * e[i];
                r = f.hypot(g);
                e[i + 1] = r;
                if r == 0.0 {
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    deflated = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
            }
            if deflated {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    d.sort_by(f64::total_cmp);
    d
}

/// Probabilists' Gauss–Hermite rule for the N(0, 1) weight: nodes
/// (ascending) and normalised log weights.
///
/// Nodes: eigenvalues of the Jacobi matrix (zero diagonal, off-diagonal
/// sqrt(k)), polished by Newton steps on the orthonormal Hermite polynomial
/// p_n (p_n' = sqrt(n) p_{n-1}) and symmetrised. Weights:
/// w_i = 1 / (n p_{n-1}(x_i)^2), evaluated in log space, then normalised.
pub fn gauss_hermite_1d(n: usize) -> (Vec<f64>, Vec<f64>) {
    if n == 1 {
        return (vec![0.0], vec![0.0]);
    }
    let off: Vec<f64> = (1..=n).map(|k| (k as f64).sqrt()).collect();
    let mut x = tridiagonal_eigenvalues(vec![0.0; n], off);
    let sqrt_n = (n as f64).sqrt();
    for xi in x.iter_mut() {
        for _ in 0..10 {
            let (pm1, pn, _) = hermite_pair(n, *xi);
            let dx = pn / (sqrt_n * pm1);
            *xi -= dx;
            if dx.abs() <= 1e-16 * xi.abs().max(1.0) {
                break;
            }
        }
    }
    // exact symmetry about 0
    for i in 0..n / 2 {
        let a = 0.5 * (x[n - 1 - i] - x[i]);
        x[i] = -a;
        x[n - 1 - i] = a;
    }
    if n % 2 == 1 {
        x[n / 2] = 0.0;
    }
    let mut lw: Vec<f64> = x
        .iter()
        .map(|&xi| {
            let (pm1, _, ln_scale) = hermite_pair(n, xi);
            -(n as f64).ln() - 2.0 * (pm1.abs().ln() + ln_scale)
        })
        .collect();
    let s = log_sum_exp(&lw);
    lw.iter_mut().for_each(|w| *w -= s);
    (x, lw)
}
