//! The polynomials' loops ([`super::stencil`], [`super::gradient`],
//! [`super::Triangles::dot`]) written with AVX2 vectors, one entry's
//! [`LANES`] values per register. Compiled from `[f64; 4]` arrays, LLVM
//! vectorised them across a run's entries instead, transposing four
//! entries in and out of registers with shuffles: about 1.6 ns an entry
//! for the forward product of 17 items in 4 variables, 1.17 ns here
//! (Zen 4, 2.6 GHz). Each register operation is the arrays' operation on
//! the same values in the same order (a multiply, then an add: never
//! fused), so the results are the same to the bit, as
//! `the_vector_loops_equal_the_portable_ones` checks.

use std::arch::x86_64::{__m256d, _mm256_add_pd, _mm256_mul_pd, _mm256_set1_pd};

use super::{LANES, Run, neighbours};

/// An entry's lanes as one register (the same bytes).
#[inline(always)]
fn v(x: &[f64; LANES]) -> __m256d {
    bytemuck::cast(*x)
}

/// [`super::stencil`], the same values.
#[target_feature(enable = "avx2,fma")]
pub(super) fn stencil<const A: usize, const UNIT: bool>(
    runs: &[Run],
    a: &[f64],
    src: &[f64],
    dst: &mut [f64],
) {
    let (a, _) = a.as_chunks::<LANES>();
    let last = v(&a[A]);
    let ak: [__m256d; A] = std::array::from_fn(|ax| v(&a[ax]));
    let (src, _) = src.as_chunks::<LANES>();
    let (dst, _) = dst.as_chunks_mut::<LANES>();
    for run in runs {
        let (o, l) = (run.at as usize, run.len as usize);
        let d = &mut dst[o..o + l];
        let (c, nb) = neighbours::<A>(src, run);
        for i in 0..l {
            let mut x = if UNIT {
                v(&c[i])
            } else {
                _mm256_mul_pd(last, v(&c[i]))
            };
            for ax in 0..A {
                x = _mm256_add_pd(_mm256_mul_pd(ak[ax], v(&nb[ax][i])), x);
            }
            d[i] = bytemuck::cast(x);
        }
    }
}

/// [`super::gradient`], the same values.
#[target_feature(enable = "avx2,fma")]
pub(super) fn gradient<const A: usize>(runs: &[Run], p: &[f64], b: &[f64], g: &mut [f64]) {
    let zero = _mm256_set1_pd(0.0);
    let mut acc = [zero; A];
    let mut acc_last = zero;
    let (p, _) = p.as_chunks::<LANES>();
    let (b, _) = b.as_chunks::<LANES>();
    for run in runs {
        let (o, l) = (run.at as usize, run.len as usize);
        let bs = &b[o..o + l];
        let (c, nb) = neighbours::<A>(p, run);
        for i in 0..l {
            let bi = v(&bs[i]);
            acc_last = _mm256_add_pd(_mm256_mul_pd(bi, v(&c[i])), acc_last);
            for ax in 0..A {
                acc[ax] = _mm256_add_pd(_mm256_mul_pd(bi, v(&nb[ax][i])), acc[ax]);
            }
        }
    }
    let (g, _) = g.as_chunks_mut::<LANES>();
    for (ax, x) in acc.iter().enumerate() {
        g[ax] = bytemuck::cast(*x);
    }
    g[A] = bytemuck::cast(acc_last);
}

/// [`super::Triangles::dot`] over its stretch (`p` and `m`), the same
/// values.
#[target_feature(enable = "avx2,fma")]
pub(super) fn dot(p: &[[f64; LANES]], m: &[f64]) -> [f64; LANES] {
    let zero = _mm256_set1_pd(0.0);
    let mut acc = [zero; 4];
    let (pq, p_rest) = p.as_chunks::<4>();
    let (mq, m_rest) = m.as_chunks::<4>();
    for (ps, ms) in pq.iter().zip(mq) {
        for j in 0..4 {
            acc[j] = _mm256_add_pd(_mm256_mul_pd(_mm256_set1_pd(ms[j]), v(&ps[j])), acc[j]);
        }
    }
    for (j, (pj, &mj)) in p_rest.iter().zip(m_rest).enumerate() {
        acc[j] = _mm256_add_pd(_mm256_mul_pd(_mm256_set1_pd(mj), v(pj)), acc[j]);
    }
    bytemuck::cast(_mm256_add_pd(
        _mm256_add_pd(acc[0], acc[1]),
        _mm256_add_pd(acc[2], acc[3]),
    ))
}
