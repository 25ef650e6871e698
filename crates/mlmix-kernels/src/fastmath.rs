//! `exp` and `ln` for the hot loops: branch-free, so that loops over rows
//! that call them vectorise (libm's are calls the compiler cannot inline or
//! vectorise), accurate to a few units in the last place; and sums and dot
//! products in four running sums, which vectorise too.
//!
//! Accuracy, tested against libm below: relative error below 1e-14 for
//! `exp` on [-708, 709] and for `ln` on normal positive numbers. Outside
//! that, `exp` gives 0 below about -708.4 (where libm gives subnormal
//! numbers below 2.2e-308, which no likelihood sum can tell from 0), +inf
//! above 709.78 and NaN for NaN; `ln` gives -inf for 0 (and for subnormal
//! numbers), NaN for negative numbers and NaN, +inf for +inf.

/// Σ a_i in four running sums, so that the loop vectorises (a single
/// running sum is a chain the compiler may not reorder).
#[inline(always)]
pub fn sum(a: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let ca = a.chunks_exact(4);
    let tail: f64 = ca.remainder().iter().sum();
    for x in ca {
        for i in 0..4 {
            acc[i] += x[i];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Σ a_i b_i in four running sums (see [`sum`]).
#[inline(always)]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = (ca.remainder().iter().zip(cb.remainder()))
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..4 {
            acc[i] += x[i] * y[i];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Σ a_i b_i c_i in four running sums (see [`sum`]).
#[inline(always)]
pub fn dot3(a: &[f64], b: &[f64], c: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (ca, cb, cc) = (a.chunks_exact(4), b.chunks_exact(4), c.chunks_exact(4));
    let tail: f64 = (ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .zip(cc.remainder()))
    .map(|((x, y), z)| x * y * z)
    .sum();
    for ((x, y), z) in ca.zip(cb).zip(cc) {
        for i in 0..4 {
            acc[i] += x[i] * y[i] * z[i];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// ln 2 split fdlibm's way: the high part has 32 trailing zero bits, so
/// n * LN2_HI is exact for every exponent n.
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
const LOG2E: f64 = std::f64::consts::LOG2_E;
/// 1.5 * 2^52: adding it rounds to an integer held in the low mantissa bits.
const SHIFT: f64 = 6_755_399_441_055_744.0;

/// e^x (see the module documentation for its range and accuracy).
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    // clamp so the exponent arithmetic stays in range; the ends are fixed
    // up below without branches the vectoriser cannot turn into selects
    let xc = x.clamp(-708.39, 709.78);
    let t = xc * LOG2E + SHIFT;
    let n = t - SHIFT;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    // e^r on |r| <= ln(2)/2 by its Taylor series to degree 13 (the
    // remainder is below 2e-17 relative), Horner's scheme
    let mut p = 1.0 / 6_227_020_800.0;
    p = p * r + 1.0 / 479_001_600.0;
    p = p * r + 1.0 / 39_916_800.0;
    p = p * r + 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // 2^n from the integer in t's low bits
    let k = t.to_bits().wrapping_sub(SHIFT.to_bits());
    let scale = f64::from_bits(k.wrapping_add(1023) << 52);
    let y = p * scale;
    let y = if x < -708.39 { 0.0 } else { y };
    let y = if x > 709.78 { f64::INFINITY } else { y };
    if x.is_nan() { x } else { y }
}

/// ln x (see the module documentation for its range and accuracy).
#[inline(always)]
pub fn ln(x: f64) -> f64 {
    // x = 2^e m with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(s), s =
    // (m - 1) / (m + 1), |s| <= 0.1716, by its odd series to s^23 (the
    // remainder is below 1e-19)
    let bits = x.to_bits();
    // shift the mantissa range so that m lands in [sqrt(1/2), sqrt(2))
    let adj = bits.wrapping_sub(0x3FE6_A09E_667F_3BCD);
    // the exponent as a float without an integer conversion (which AVX2
    // cannot vectorise): SHIFT + n has n in its low mantissa bits
    let n = ((adj as i64) >> 52) as u64;
    let e = f64::from_bits(SHIFT.to_bits().wrapping_add(n)) - SHIFT;
    let m = f64::from_bits(bits.wrapping_sub(adj & 0xFFF0_0000_0000_0000));
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut p = 1.0 / 23.0;
    p = p * s2 + 1.0 / 21.0;
    p = p * s2 + 1.0 / 19.0;
    p = p * s2 + 1.0 / 17.0;
    p = p * s2 + 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    p = p * s2 + 1.0;
    let y = e * LN2_HI + (e * LN2_LO + 2.0 * s * p);
    let y = if x < f64::MIN_POSITIVE {
        if x >= 0.0 {
            f64::NEG_INFINITY
        } else {
            f64::NAN
        }
    } else {
        y
    };
    let y = if x == f64::INFINITY { x } else { y };
    if x.is_nan() { x } else { y }
}

/// ln(1 + x) for x > -1, accurate for small x too (Goldberg's
/// correction: ln(u) x / (u - 1) with u = 1 + x rounded), branch-free.
#[inline(always)]
pub fn ln_1p(x: f64) -> f64 {
    let u = 1.0 + x;
    let d = u - 1.0;
    let y = ln(u) * (x / d);
    if d == 0.0 { x } else { y }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic spread of test points over `[lo, hi]`.
    fn points(lo: f64, hi: f64, n: usize) -> impl Iterator<Item = f64> {
        let mut s: u64 = 0x1234_5678_9ABC_DEF0;
        (0..n).map(move |_| {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            lo + (hi - lo) * ((s >> 11) as f64 / (1u64 << 53) as f64)
        })
    }

    #[test]
    fn exp_matches_libm() {
        let mut worst: f64 = 0.0;
        for x in points(-708.0, 709.0, 200_000)
            .chain(points(-1.0, 1.0, 100_000))
            .chain([0.0, -0.0, 1e-300, -1e-300, 0.5 * std::f64::consts::LN_2])
        {
            let (a, b) = (exp(x), x.exp());
            worst = worst.max(((a - b) / b).abs());
        }
        assert!(worst < 1e-14, "worst relative error {worst:e}");
        assert_eq!(exp(-800.0), 0.0);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp(710.0), f64::INFINITY);
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert!(exp(f64::NAN).is_nan());
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn ln_1p_matches_libm() {
        let mut worst: f64 = 0.0;
        for x in points(0.0, 1.0, 100_000)
            .chain(points(-20.0, 0.0, 100_000).map(f64::exp))
            .chain(points(-700.0, -20.0, 10_000).map(f64::exp))
            .chain(points(-0.999, 5.0, 100_000))
            .chain([1e-300, 1e-17, 1e-16, 2.3e-16, 1e-8, 1.0])
        {
            let (a, b) = (ln_1p(x), x.ln_1p());
            worst = worst.max(((a - b) / b).abs());
        }
        assert!(worst < 1e-14, "worst relative error {worst:e}");
        assert_eq!(ln_1p(0.0), 0.0);
    }

    #[test]
    fn ln_matches_libm() {
        let mut worst: f64 = 0.0;
        for x in points(1e-300, 1.0, 100_000)
            .chain(points(0.5, 2.0, 100_000))
            .chain(points(1.0, 1e300, 100_000))
            .chain(points(-700.0, 700.0, 100_000).map(f64::exp))
            .chain([f64::MIN_POSITIVE, f64::MAX, 1.0 + 1e-15, 1.0 - 1e-15, 2.0])
        {
            let (a, b) = (ln(x), x.ln());
            let err = if b == 0.0 {
                a.abs()
            } else {
                ((a - b) / b).abs()
            };
            worst = worst.max(err);
        }
        assert!(worst < 1e-14, "worst relative error {worst:e}");
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert_eq!(ln(f64::INFINITY), f64::INFINITY);
        assert!(ln(-1.0).is_nan());
        assert!(ln(f64::NAN).is_nan());
    }
}
