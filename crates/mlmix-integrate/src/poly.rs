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
    /// The structure for 2 to [`MAX_VARIABLES`] variables up to degree
    /// `n_max`; `None` for other numbers of variables or when a dense
    /// polynomial would have more than `max_size` entries.
    pub fn new(k: usize, n_max: usize, max_size: usize) -> Option<Triangles> {
        if !(2..=MAX_VARIABLES).contains(&k) {
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

    /// Per lane, `q` = `p` × Σ_k a_k x_k on degree `r`'s runs (`p` of
    /// degree r − 1, zero off its runs; `a` is `k x LANES`).
    #[inline(always)]
    pub fn mul_linear(&self, r: usize, p: &[f64], a: &[f64], q: &mut [f64]) {
        macro_rules! axes {
            ($n:literal) => {
                stencil::<$n>(&self.runs[r], &self.strides, a, p, q, false)
            };
        }
        match self.k - 1 {
            1 => axes!(1),
            2 => axes!(2),
            3 => axes!(3),
            _ => axes!(4),
        }
    }

    /// Per lane, Σ p m over degree `r`'s monomials (`m` one value per
    /// entry, shared by the lanes).
    #[inline(always)]
    pub fn dot(&self, r: usize, p: &[f64], m: &[f64]) -> [f64; LANES] {
        // two sums, over a run's even and odd entries, so that each add
        // waits on the one two entries back; a run as slices (no bounds
        // test per entry)
        let mut acc = [[0.0; LANES]; 2];
        let (p, _) = p.as_chunks::<LANES>();
        for &(o, l) in &self.runs[r] {
            let (ps, ms) = (&p[o..o + l], &m[o..o + l]);
            for i in 0..l {
                acc[i & 1] = mul_add([ms[i]; LANES], ps[i], acc[i & 1]);
            }
        }
        std::array::from_fn(|lane| acc[0][lane] + acc[1][lane])
    }

    /// `acc += c p[lane]` over degree `r`'s monomials: one lane's
    /// polynomial, scaled, added to one value per entry.
    #[inline(always)]
    pub fn add_lane(&self, r: usize, lane: usize, c: f64, p: &[f64], acc: &mut [f64]) {
        for &(o, l) in &self.runs[r] {
            for i in o..o + l {
                acc[i] += c * p[i * LANES + lane];
            }
        }
    }

    /// `acc *= c` over degree `r`'s monomials (one value per entry).
    #[inline(always)]
    pub fn scale(&self, r: usize, c: f64, acc: &mut [f64]) {
        for &(o, l) in &self.runs[r] {
            acc[o..o + l].iter_mut().for_each(|x| *x *= c);
        }
    }

    /// `g *= c`, then `acc += g`, over degree `r`'s monomials (one value
    /// per entry each).
    #[inline(always)]
    pub fn scale_into(&self, r: usize, c: f64, g: &mut [f64], acc: &mut [f64]) {
        for &(o, l) in &self.runs[r] {
            for (x, y) in g[o..o + l].iter_mut().zip(&mut acc[o..o + l]) {
                *x *= c;
                *y += *x;
            }
        }
    }

    /// `dst` = `src` in every lane over degree `r`'s monomials.
    #[inline(always)]
    pub fn broadcast(&self, r: usize, src: &[f64], dst: &mut [f64]) {
        for &(o, l) in &self.runs[r] {
            for i in o..o + l {
                dst[i * LANES..(i + 1) * LANES].fill(src[i]);
            }
        }
    }

    /// The reverse of [`Self::mul_linear`], per lane: given `b`, the
    /// derivative of a scalar by the degree-r product `q` = `p` ×
    /// Σ_k a_k x_k, the derivative by each a_k into `g` (`k x LANES`) and
    /// by `p` into `b_prev` (on degree r − 1's runs).
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
        let axes = self.k - 1;
        macro_rules! grad {
            ($n:literal) => {
                gradient::<$n>(&self.runs[r], &self.strides, p, b, g)
            };
        }
        match axes {
            1 => grad!(1),
            2 => grad!(2),
            3 => grad!(3),
            _ => grad!(4),
        }
        if r == 0 {
            return;
        }
        macro_rules! axes {
            ($n:literal) => {
                stencil::<$n>(&self.runs[r - 1], &self.strides, a, b, b_prev, true)
            };
        }
        match axes {
            1 => axes!(1),
            2 => axes!(2),
            3 => axes!(3),
            _ => axes!(4),
        }
    }
}

/// Per lane over the entries of `runs`: `dst` = a_last `src` + Σ_ax a_ax
/// `src` one exponent less along ax (`up`: more, the reverse pass's) —
/// the product by a linear form, with `A` axes known when compiled so
/// that the entries' sums interleave.
#[inline(always)]
fn stencil<const A: usize>(
    runs: &[(usize, usize)],
    strides: &[usize],
    a: &[f64],
    src: &[f64],
    dst: &mut [f64],
    up: bool,
) {
    let last = lanes(a, A);
    let ak: [[f64; LANES]; A] = std::array::from_fn(|ax| lanes(a, ax));
    let s: [usize; A] = std::array::from_fn(|ax| strides[ax]);
    let (src, _) = src.as_chunks::<LANES>();
    let (dst, _) = dst.as_chunks_mut::<LANES>();
    for &(o, l) in runs {
        let d = &mut dst[o..o + l];
        let (c, nb) = neighbours(src, (o, l), &s, up);
        for i in 0..l {
            let mut x = mul(last, c[i]);
            for ax in 0..A {
                x = mul_add(ak[ax], nb[ax][i], x);
            }
            d[i] = x;
        }
    }
}

/// Per lane, the derivatives of Σ b q by the coefficients of the linear
/// form, q = p × Σ_k a_k x_k, into `g` (`(A + 1) x LANES`), with `A` axes
/// known when compiled.
#[inline(always)]
fn gradient<const A: usize>(
    runs: &[(usize, usize)],
    strides: &[usize],
    p: &[f64],
    b: &[f64],
    g: &mut [f64],
) {
    let s: [usize; A] = std::array::from_fn(|ax| strides[ax]);
    let mut acc = [[0.0; LANES]; A];
    let mut acc_last = [0.0; LANES];
    let (p, _) = p.as_chunks::<LANES>();
    let (b, _) = b.as_chunks::<LANES>();
    for &(o, l) in runs {
        let bs = &b[o..o + l];
        let (c, nb) = neighbours(p, (o, l), &s, false);
        for i in 0..l {
            acc_last = mul_add(bs[i], c[i], acc_last);
            for ax in 0..A {
                acc[ax] = mul_add(bs[i], nb[ax][i], acc[ax]);
            }
        }
    }
    for (ax, v) in acc.iter().enumerate() {
        g[ax * LANES..(ax + 1) * LANES].copy_from_slice(v);
    }
    g[A * LANES..(A + 1) * LANES].copy_from_slice(&acc_last);
}

/// The run `(o, l)` of `x` and its neighbours one exponent less along
/// each axis (`up`: more) as slices of the run's length, so that the
/// loops over them read the entries without a bounds test each.
#[inline(always)]
fn neighbours<'a, const A: usize>(
    x: &'a [[f64; LANES]],
    (o, l): (usize, usize),
    s: &[usize; A],
    up: bool,
) -> (&'a [[f64; LANES]], [&'a [[f64; LANES]]; A]) {
    let c = &x[o..o + l];
    let mut nb = [c; A];
    for ax in 0..A {
        let j = if up { o + s[ax] } else { o - s[ax] };
        nb[ax] = &x[j..j + l];
    }
    (c, nb)
}

/// The most variables (class combinations) a polynomial may have: the
/// stencils are compiled for 1 to 4 axes, and beyond 5 classes the
/// monomials of 17 items outnumber what the moment form saves.
pub(crate) const MAX_VARIABLES: usize = 5;

/// Clusters that the polynomials' arithmetic takes at once, one per lane
/// of a vector: a buffer holds `LANES` values per entry.
pub(crate) const LANES: usize = 4;

/// Entry `i`'s lanes.
#[inline(always)]
fn lanes(x: &[f64], i: usize) -> [f64; LANES] {
    let v = &x[i * LANES..(i + 1) * LANES];
    [v[0], v[1], v[2], v[3]]
}

#[inline(always)]
fn mul(a: [f64; LANES], b: [f64; LANES]) -> [f64; LANES] {
    [a[0] * b[0], a[1] * b[1], a[2] * b[2], a[3] * b[3]]
}

/// a b + c, lane by lane (a multiply and an add: the same on every
/// processor). Written out lane by lane, as `mul` and `lanes` are: an
/// `array::from_fn` here was left uninlined in the reverse pass, a fifth
/// of an EM evaluation.
#[inline(always)]
fn mul_add(a: [f64; LANES], b: [f64; LANES], c: [f64; LANES]) -> [f64; LANES] {
    [
        a[0] * b[0] + c[0],
        a[1] * b[1] + c[1],
        a[2] * b[2] + c[2],
        a[3] * b[3] + c[3],
    ]
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
    /// against the brute-force expansion, for 2 to 5 variables, in each
    /// lane (each its own coefficients); and the reverse pass's
    /// derivatives against differences.
    #[test]
    fn products_and_their_derivatives() {
        // (the highest degree at the top of the structure and below it)
        for (k, spare) in (2..=MAX_VARIABLES).flat_map(|k| [(k, 0), (k, 1)]) {
            let n = 5;
            let t = Triangles::new(k, n + spare, 1 << 20).expect("small enough");
            // lane l's rows: the base rows shifted by 0.05 l
            let a: Vec<Vec<Vec<f64>>> = (0..LANES)
                .map(|l| {
                    rows(k, n)
                        .into_iter()
                        .map(|row| row.iter().map(|x| x + 0.05 * l as f64).collect())
                        .collect()
                })
                .collect();
            let packed = |r: usize| -> Vec<f64> {
                (0..k)
                    .flat_map(|j| (0..LANES).map(move |l| (j, l)))
                    .map(|(j, l)| a[l][r][j])
                    .collect()
            };
            let mut p = vec![vec![0.0; t.size * LANES]; n + 1];
            p[0][t.unit() * LANES..(t.unit() + 1) * LANES].fill(1.0);
            for r in 1..=n {
                let (lo, hi) = p.split_at_mut(r);
                t.mul_linear(r, &lo[r - 1], &packed(r - 1), &mut hi[0]);
            }
            let mono = t.monomials(n);
            assert_eq!(t.count(n), mono.len());
            let m: Vec<f64> = (0..t.size).map(|i| 1.0 + (i % 13) as f64 * 0.1).collect();
            let value = |rows: &[Vec<f64>]| {
                let e = expand(k, rows);
                mono.iter().map(|(i, ex)| m[*i] * e[ex]).sum::<f64>()
            };
            let dots = t.dot(n, &p[n], &m);
            for l in 0..LANES {
                let want = expand(k, &a[l]);
                assert_eq!(mono.len(), want.len(), "k {k}");
                for (i, e) in &mono {
                    let (got, w) = (p[n][i * LANES + l], want[e]);
                    assert!(
                        (got - w).abs() < 1e-12,
                        "k {k} lane {l} {e:?}: {got} vs {w}"
                    );
                }
                assert!((dots[l] - value(&a[l])).abs() < 1e-12);
            }
            // the lanes, each scaled, added into one value per entry; then
            // scaled and added on (`scale_into`)
            let c: [f64; LANES] = std::array::from_fn(|l| 0.5 + l as f64);
            let mut one = vec![0.25; t.size];
            for (l, &cl) in c.iter().enumerate() {
                t.add_lane(n, l, cl, &p[n], &mut one);
            }
            let mut acc = vec![1.0; t.size];
            t.scale_into(n, 2.0, &mut one, &mut acc);
            for (i, e) in &mono {
                let direct: f64 = (0..LANES).map(|l| c[l] * expand(k, &a[l])[e]).sum();
                let want = 2.0 * (0.25 + direct);
                assert!((one[*i] - want).abs() < 1e-12, "k {k} {e:?}");
                assert!((acc[*i] - 1.0 - want).abs() < 1e-12, "k {k} {e:?}");
            }
            // the reverse pass from derivatives set everywhere (off the
            // runs too, where they must not matter)
            let mut b: Vec<f64> = m.iter().flat_map(|&x| [x; LANES]).collect();
            let mut b_prev = vec![0.5; t.size * LANES];
            let mut g = vec![0.0; k * LANES];
            for r in (1..=n).rev() {
                t.mul_linear_back(r, &p[r - 1], &packed(r - 1), &b, &mut g, &mut b_prev);
                for (l, j) in (0..LANES).flat_map(|l| (0..k).map(move |j| (l, j))) {
                    let h = 1e-6;
                    let (mut up, mut down) = (a[l].clone(), a[l].clone());
                    up[r - 1][j] += h;
                    down[r - 1][j] -= h;
                    let d = (value(&up) - value(&down)) / (2.0 * h);
                    let got = g[j * LANES + l];
                    assert!(
                        (got - d).abs() < 1e-6,
                        "k {k} lane {l} row {r} var {j}: {got} vs {d}"
                    );
                }
                std::mem::swap(&mut b, &mut b_prev);
            }
        }
    }
}
