//! Homogeneous polynomials in K variables (the class probabilities of the
//! moment form, `cpu/moment.rs`), stored densely so that multiplying by a
//! linear form is a stencil over contiguous runs.
//!
//! A homogeneous polynomial of degree r in x_1..x_K is stored by the
//! exponents of its first K − 1 variables (that of x_K is r minus their
//! sum) in a dense array with K − 1 axes of extent n_max + 2. Index 0 of
//! every axis is a *ghost* that holds 0, so that "the coefficient at one
//! exponent less along axis a" is the entry `stride[a]` before, with no
//! bounds test. The monomials of degree r are the entries whose exponents
//! sum to at most r: runs along the last (contiguous) axis, [`Triangles`]
//! lists them. A buffer only ever written on degree r's runs holds zeros
//! elsewhere, which the stencils rely on.

/// The index structure of homogeneous polynomials in `k` variables of
/// degree up to `n_max` (see the module's documentation).
pub(crate) struct Triangles {
    /// Variables (at least 2).
    pub k: usize,
    /// Highest degree.
    pub n_max: usize,
    /// Entries of a dense polynomial.
    pub size: usize,
    /// Per axis (the first k − 1 variables): its stride; the last is 1.
    strides: Vec<usize>,
    /// Per degree: its runs, `(offset, length)`.
    runs: Vec<Vec<(usize, usize)>>,
}

impl Triangles {
    /// The structure for `k ≥ 2` variables up to degree `n_max`; `None`
    /// when a dense polynomial would have more than `max_size` entries.
    pub fn new(k: usize, n_max: usize, max_size: usize) -> Option<Triangles> {
        if k < 2 {
            return None;
        }
        let e = n_max + 2;
        let axes = k - 1;
        let mut size = 1usize;
        for _ in 0..axes {
            size = size.checked_mul(e).filter(|&s| s <= max_size)?;
        }
        let mut strides = vec![1usize; axes];
        for a in (0..axes - 1).rev() {
            strides[a] = strides[a + 1] * e;
        }
        let runs = (0..=n_max)
            .map(|r| {
                let mut out = Vec::new();
                leading_runs(&strides, 0, 0, 0, r, &mut out);
                out
            })
            .collect();
        Some(Triangles {
            k,
            n_max,
            size,
            strides,
            runs,
        })
    }

    /// Monomials of degree `r`.
    pub fn count(&self, r: usize) -> usize {
        self.runs[r].iter().map(|&(_, l)| l).sum()
    }

    /// The entry of the degree-0 monomial (the constant 1).
    pub fn unit(&self) -> usize {
        self.strides.iter().sum()
    }

    /// Each monomial of degree `r` as its entry and its exponents (all
    /// `k` of them), in run order.
    pub fn monomials(&self, r: usize) -> Vec<(usize, Vec<usize>)> {
        let axes = self.k - 1;
        let mut out = Vec::with_capacity(self.count(r));
        for &(off, len) in &self.runs[r] {
            for i in off..off + len {
                let mut e = Vec::with_capacity(self.k);
                let mut rest = i;
                for a in 0..axes {
                    e.push(rest / self.strides[a] - 1);
                    rest %= self.strides[a];
                }
                let s: usize = e.iter().sum();
                e.push(r - s);
                out.push((i, e));
            }
        }
        out
    }

    /// `q` = `p` × Σ_k a_k x_k on degree `r`'s runs (`p` of degree r − 1,
    /// zero off its runs).
    #[inline(always)]
    pub fn mul_linear(&self, r: usize, p: &[f64], a: &[f64], q: &mut [f64]) {
        macro_rules! fused {
            ($n:literal) => {{
                let s: [usize; $n] = std::array::from_fn(|i| self.strides[i]);
                mul_fused::<$n>(&self.runs[r], &s, p, a, q)
            }};
        }
        match self.k - 1 {
            1 => fused!(1),
            2 => fused!(2),
            3 => fused!(3),
            4 => fused!(4),
            5 => fused!(5),
            _ => self.mul_general(r, p, a, q),
        }
    }

    /// [`Self::mul_linear`] for any number of variables, a pass per one.
    fn mul_general(&self, r: usize, p: &[f64], a: &[f64], q: &mut [f64]) {
        let axes = self.k - 1;
        let last = a[axes];
        for &(o, l) in &self.runs[r] {
            let qs = &mut q[o..o + l];
            for (x, &y) in qs.iter_mut().zip(&p[o..o + l]) {
                *x = last * y;
            }
            for (&s, &ak) in self.strides.iter().zip(&a[..axes]) {
                for (x, &y) in qs.iter_mut().zip(&p[o - s..o - s + l]) {
                    *x += ak * y;
                }
            }
        }
    }

    /// Σ p m over degree `r`'s monomials.
    #[inline(always)]
    pub fn dot(&self, r: usize, p: &[f64], m: &[f64]) -> f64 {
        let mut s = 0.0;
        for &(o, l) in &self.runs[r] {
            s += p[o..o + l]
                .iter()
                .zip(&m[o..o + l])
                .map(|(x, y)| x * y)
                .sum::<f64>();
        }
        s
    }

    /// `acc += c p` over degree `r`'s monomials.
    #[inline(always)]
    pub fn add_scaled(&self, r: usize, c: f64, p: &[f64], acc: &mut [f64]) {
        for &(o, l) in &self.runs[r] {
            for (x, &y) in acc[o..o + l].iter_mut().zip(&p[o..o + l]) {
                *x += c * y;
            }
        }
    }

    /// `dst = src` over degree `r`'s monomials.
    #[inline(always)]
    pub fn copy(&self, r: usize, src: &[f64], dst: &mut [f64]) {
        for &(o, l) in &self.runs[r] {
            dst[o..o + l].copy_from_slice(&src[o..o + l]);
        }
    }

    /// The reverse of [`Self::mul_linear`]: given `b`, the derivative of
    /// a scalar by the degree-r product `q` = `p` × Σ_k a_k x_k, the
    /// derivative by each a_k into `g` and by `p` into `b_prev` (on degree
    /// r − 1's runs).
    #[inline(always)]
    pub fn mul_linear_back(
        &self,
        r: usize,
        p: &[f64],
        a: &[f64],
        b: &[f64],
        g: &mut [f64],
        b_prev: &mut [f64],
    ) {
        macro_rules! fused {
            ($n:literal) => {{
                let s: [usize; $n] = std::array::from_fn(|i| self.strides[i]);
                grad_fused::<$n>(&self.runs[r], &s, p, b, g);
                if r > 0 {
                    back_fused::<$n>(&self.runs[r - 1], &s, a, b, b_prev);
                }
            }};
        }
        match self.k - 1 {
            1 => fused!(1),
            2 => fused!(2),
            3 => fused!(3),
            4 => fused!(4),
            5 => fused!(5),
            _ => self.back_general(r, p, a, b, g, b_prev),
        }
    }

    /// [`Self::mul_linear_back`] for any number of variables.
    fn back_general(
        &self,
        r: usize,
        p: &[f64],
        a: &[f64],
        b: &[f64],
        g: &mut [f64],
        b_prev: &mut [f64],
    ) {
        let axes = self.k - 1;
        g[..self.k].fill(0.0);
        for &(o, l) in &self.runs[r] {
            let bs = &b[o..o + l];
            g[axes] += bs.iter().zip(&p[o..o + l]).map(|(x, y)| x * y).sum::<f64>();
            for (gk, &s) in g.iter_mut().zip(&self.strides) {
                *gk += bs
                    .iter()
                    .zip(&p[o - s..o - s + l])
                    .map(|(x, y)| x * y)
                    .sum::<f64>();
            }
        }
        if r == 0 {
            return;
        }
        let last = a[axes];
        for &(o, l) in &self.runs[r - 1] {
            let dst = &mut b_prev[o..o + l];
            for (x, &y) in dst.iter_mut().zip(&b[o..o + l]) {
                *x = last * y;
            }
            for (&s, &ak) in self.strides.iter().zip(&a[..axes]) {
                for (x, &y) in dst.iter_mut().zip(&b[o + s..o + s + l]) {
                    *x += ak * y;
                }
            }
        }
    }
}

/// [`Triangles::mul_linear`] with `A` = k − 1 axes: one pass over each
/// range, every term of an entry at once.
#[inline(always)]
fn mul_fused<const A: usize>(
    runs: &[(usize, usize)],
    strides: &[usize; A],
    p: &[f64],
    a: &[f64],
    q: &mut [f64],
) {
    let last = a[A];
    let ak: [f64; A] = std::array::from_fn(|i| a[i]);
    for &(o, l) in runs {
        let qs = &mut q[o..o + l];
        let ps = &p[o..o + l];
        let sh: [&[f64]; A] = std::array::from_fn(|i| &p[o - strides[i]..o - strides[i] + l]);
        for i in 0..l {
            let mut x = last * ps[i];
            for ax in 0..A {
                x += ak[ax] * sh[ax][i];
            }
            qs[i] = x;
        }
    }
}

/// The derivatives by the coefficients of [`Triangles::mul_linear_back`]
/// with `A` axes: every dot product in one pass.
#[inline(always)]
fn grad_fused<const A: usize>(
    runs: &[(usize, usize)],
    strides: &[usize; A],
    p: &[f64],
    b: &[f64],
    g: &mut [f64],
) {
    let mut acc = [0.0f64; A];
    let mut acc_last = 0.0;
    for &(o, l) in runs {
        let bs = &b[o..o + l];
        let ps = &p[o..o + l];
        let sh: [&[f64]; A] = std::array::from_fn(|i| &p[o - strides[i]..o - strides[i] + l]);
        for i in 0..l {
            acc_last += bs[i] * ps[i];
            for ax in 0..A {
                acc[ax] += bs[i] * sh[ax][i];
            }
        }
    }
    g[..A].copy_from_slice(&acc);
    g[A] = acc_last;
}

/// The derivatives by the factor of [`Triangles::mul_linear_back`] with
/// `A` axes, on degree r − 1's ranges.
#[inline(always)]
fn back_fused<const A: usize>(
    runs: &[(usize, usize)],
    strides: &[usize; A],
    a: &[f64],
    b: &[f64],
    b_prev: &mut [f64],
) {
    let last = a[A];
    let ak: [f64; A] = std::array::from_fn(|i| a[i]);
    for &(o, l) in runs {
        let dst = &mut b_prev[o..o + l];
        let bs = &b[o..o + l];
        let sh: [&[f64]; A] = std::array::from_fn(|i| &b[o + strides[i]..o + strides[i] + l]);
        for i in 0..l {
            let mut x = last * bs[i];
            for ax in 0..A {
                x += ak[ax] * sh[ax][i];
            }
            dst[i] = x;
        }
    }
}

/// The runs of degree `r` whose axes from `axis` on are still to be
/// chosen, at flat offset `base` with exponents summing to `used` so far.
fn leading_runs(
    strides: &[usize],
    axis: usize,
    base: usize,
    used: usize,
    r: usize,
    out: &mut Vec<(usize, usize)>,
) {
    if axis + 1 == strides.len() {
        // the last axis: exponents 0..=r − used at indices 1..
        out.push((base + 1, r - used + 1));
        return;
    }
    for e in 0..=r - used {
        let at = base + (e + 1) * strides[axis];
        leading_runs(strides, axis + 1, at, used + e, r, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The coefficients of Π_r Σ_k a_rk x_k by brute force: every choice
    /// of one variable per factor.
    fn expand(k: usize, rows: &[Vec<f64>]) -> std::collections::HashMap<Vec<usize>, f64> {
        let mut out = std::collections::HashMap::new();
        let n = rows.len();
        let total = k.pow(n as u32);
        for mut code in 0..total {
            let mut e = vec![0usize; k];
            let mut c = 1.0;
            for row in rows {
                let v = code % k;
                code /= k;
                e[v] += 1;
                c *= row[v];
            }
            *out.entry(e).or_insert(0.0) += c;
        }
        out
    }

    fn rows(k: usize, n: usize) -> Vec<Vec<f64>> {
        (0..n)
            .map(|r| {
                (0..k)
                    .map(|i| 0.1 + ((r * 7 + i * 3) % 5) as f64 * 0.2)
                    .collect()
            })
            .collect()
    }

    /// The product of linear forms, its coefficients and monomial count
    /// against the brute-force expansion, for 2 to 4 variables; and the
    /// reverse pass's derivatives against differences.
    #[test]
    fn products_and_their_derivatives() {
        // (the highest degree at the top of the structure and below it)
        for (k, spare) in (2..=4).flat_map(|k| [(k, 0), (k, 1)]) {
            let n = 5;
            let t = Triangles::new(k, n + spare, 1 << 20).unwrap();
            let a = rows(k, n);
            let mut p = vec![vec![0.0; t.size]; n + 1];
            p[0][t.unit()] = 1.0;
            for r in 1..=n {
                let (lo, hi) = p.split_at_mut(r);
                t.mul_linear(r, &lo[r - 1], &a[r - 1], &mut hi[0]);
            }
            let want = expand(k, &a);
            let mono = t.monomials(n);
            assert_eq!(mono.len(), want.len(), "k {k}");
            assert_eq!(t.count(n), want.len());
            for (i, e) in &mono {
                let w = want[e];
                assert!(
                    (p[n][*i] - w).abs() < 1e-12,
                    "k {k} {e:?}: {} vs {w}",
                    p[n][*i]
                );
            }
            // a scalar: Σ m_a coef_a with arbitrary m, and its derivative
            // by each a_rk
            let m: Vec<f64> = (0..t.size).map(|i| 1.0 + (i % 13) as f64 * 0.1).collect();
            let value = |a: &[Vec<f64>]| {
                let e = expand(k, a);
                mono.iter().map(|(i, ex)| m[*i] * e[ex]).sum::<f64>()
            };
            assert!((t.dot(n, &p[n], &m) - value(&a)).abs() < 1e-12);
            let mut b = m.clone();
            let mut b_prev = vec![0.0; t.size];
            let mut g = vec![0.0; k];
            for r in (1..=n).rev() {
                t.mul_linear_back(r, &p[r - 1], &a[r - 1], &b, &mut g, &mut b_prev);
                for j in 0..k {
                    let h = 1e-6;
                    let (mut up, mut down) = (a.clone(), a.clone());
                    up[r - 1][j] += h;
                    down[r - 1][j] -= h;
                    let d = (value(&up) - value(&down)) / (2.0 * h);
                    assert!(
                        (g[j] - d).abs() < 1e-6,
                        "k {k} row {r} var {j}: {} vs {d}",
                        g[j]
                    );
                }
                std::mem::swap(&mut b, &mut b_prev);
            }
        }
    }
}
