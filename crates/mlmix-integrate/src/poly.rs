//! Homogeneous polynomials in K variables (the class probabilities of the
//! moment form, `cpu/moment.rs`), stored packed so that multiplying by a
//! linear form is a stencil over contiguous runs.
//!
//! A monomial of degree r is named by the exponents of its first K − 1
//! variables (that of x_K is r minus their sum). Its *run* is the
//! monomials that share the exponents of the first K − 2 variables (the
//! run's *lead*, summing to s): the exponent of variable K − 1 goes 0..=r
//! − s along the run. A degree's buffer holds its runs one after another
//! in the lead's lexicographic order, each run preceded and followed by
//! a slot that holds 0, and after the last a *zero run* of n_max + 2
//! zeros. So a degree's monomials take about a sixth of the room a dense
//! array over the exponents took (for 4 variables and 17 items), which
//! keeps the stencils' buffers in the caches.
//!
//! Multiplying by a linear form reads, for each run of degree r, the
//! same exponents and one exponent less along each variable in degree r −
//! 1: each of them a contiguous stretch of degree r − 1's buffer as long
//! as the run, its first entry precomputed per run ([`Run`]): the run
//! with the same lead (the slot after it gives the 0 that the exponent
//! one beyond its end takes), the run whose lead is one less along a
//! leading variable, the same run one entry back (the slot before it
//! gives the 0 at exponent −1), or the zero run where no such run
//! exists. The reverse pass reads one exponent *more* in degree r + 1,
//! always inside a run. A buffer only ever written on degree r's runs
//! holds zeros in its slots and zero run, which the stencils rely on.

#[cfg(target_arch = "x86_64")]
mod avx;

/// One run of a degree: `len` monomials at `at` in its buffer, and where
/// the stencil reads for them in the neighbouring degree's buffer (one
/// down for the products, one up for the reverse pass): the same
/// exponents (`c`, multiplied by x_K) and one exponent less (down) or
/// more (up) along each of the first K − 1 variables (`nb`).
#[derive(Debug, Clone, Copy)]
struct Run {
    at: u32,
    len: u32,
    c: u32,
    nb: [u32; MAX_VARIABLES - 1],
}

/// The index structure of homogeneous polynomials in `k` variables of
/// degree up to `n_max` (see the module's documentation).
pub(crate) struct Triangles {
    /// Variables (at least 2).
    pub k: usize,
    /// Highest degree.
    pub n_max: usize,
    /// Entries of a polynomial's buffer (the largest degree's).
    pub size: usize,
    /// Per degree: its runs, `(offset, length)`.
    runs: Vec<Vec<(usize, usize)>>,
    /// Per degree: its runs' leads (the first K − 2 exponents).
    leads: Vec<Vec<Vec<usize>>>,
    /// Per degree r: its runs with their neighbours in degree r − 1
    /// (none at degree 0).
    down: Vec<Vec<Run>>,
    /// Per degree r < n_max: its runs with their neighbours in degree r +
    /// 1.
    up: Vec<Vec<Run>>,
}

impl Triangles {
    /// The structure for 2 to [`MAX_VARIABLES`] variables up to degree
    /// `n_max`; `None` for other numbers of variables or when a
    /// polynomial's buffer would have more than `max_size` entries.
    pub fn new(k: usize, n_max: usize, max_size: usize) -> Option<Triangles> {
        if !(2..=MAX_VARIABLES).contains(&k) {
            return None;
        }
        let mut leads = Vec::with_capacity(n_max + 1);
        let mut runs = Vec::with_capacity(n_max + 1);
        let mut starts = Vec::with_capacity(n_max + 1);
        let mut zero = Vec::with_capacity(n_max + 1);
        let mut size = 0;
        for r in 0..=n_max {
            let mut lead = Vec::new();
            all_leads(k - 2, r, &mut Vec::new(), &mut lead);
            let mut at = 1usize;
            let mut deg_runs = Vec::with_capacity(lead.len());
            let mut deg_starts = std::collections::HashMap::with_capacity(lead.len());
            for e in &lead {
                let len = r - e.iter().sum::<usize>() + 1;
                deg_runs.push((at, len));
                deg_starts.insert(e.clone(), at);
                at += len + 1;
            }
            size = size.max(at + n_max + 2);
            if size > max_size || size > u32::MAX as usize {
                return None;
            }
            zero.push(at);
            leads.push(lead);
            runs.push(deg_runs);
            starts.push(deg_starts);
        }
        let run_of = |r: usize, i: usize, c: usize, nb: [usize; MAX_VARIABLES - 1]| Run {
            at: runs[r][i].0 as u32,
            len: runs[r][i].1 as u32,
            c: c as u32,
            nb: nb.map(|x| x as u32),
        };
        let axes = k - 1;
        let mut down = vec![Vec::new()];
        for r in 1..=n_max {
            let below = |e: &[usize]| starts[r - 1].get(e).copied();
            let z = zero[r - 1];
            let table = leads[r]
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let same = below(e);
                    let mut nb = [0; MAX_VARIABLES - 1];
                    for (ax, x) in nb.iter_mut().enumerate().take(axes - 1) {
                        *x = match e[ax] {
                            0 => z,
                            _ => {
                                let mut f = e.clone();
                                f[ax] -= 1;
                                below(&f).unwrap_or(z)
                            }
                        };
                    }
                    nb[axes - 1] = same.map_or(z, |x| x - 1);
                    run_of(r, i, same.unwrap_or(z), nb)
                })
                .collect();
            down.push(table);
        }
        let up = (0..n_max)
            .map(|r| {
                let above = |e: &[usize]| starts[r + 1][e];
                leads[r]
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        let same = above(e);
                        let mut nb = [0; MAX_VARIABLES - 1];
                        for (ax, x) in nb.iter_mut().enumerate().take(axes - 1) {
                            let mut f = e.clone();
                            f[ax] += 1;
                            *x = above(&f);
                        }
                        nb[axes - 1] = same + 1;
                        run_of(r, i, same, nb)
                    })
                    .collect()
            })
            .collect();
        Some(Triangles {
            k,
            n_max,
            size,
            runs,
            leads,
            down,
            up,
        })
    }

    /// Monomials of degree `r`.
    pub fn count(&self, r: usize) -> usize {
        self.runs[r].iter().map(|&(_, l)| l).sum()
    }

    /// The entry of the degree-0 monomial (the constant 1).
    pub fn unit(&self) -> usize {
        self.runs[0][0].0
    }

    /// Each monomial of degree `r` as its entry and its exponents (all
    /// `k` of them), in run order.
    pub fn monomials(&self, r: usize) -> Vec<(usize, Vec<usize>)> {
        let mut out = Vec::with_capacity(self.count(r));
        for (&(at, len), lead) in self.runs[r].iter().zip(&self.leads[r]) {
            let s: usize = lead.iter().sum();
            for j in 0..len {
                let mut e = lead.clone();
                e.extend([j, r - s - j]);
                out.push((at + j, e));
            }
        }
        out
    }

    /// Per lane, `q` = `p` × Σ_k a_k x_k on degree `r`'s runs (`p` of
    /// degree r − 1, zero off its runs; `a` is `k x LANES`). With `unit`,
    /// a_K is 1 in every lane and is not multiplied by (a form scaled by
    /// its last coefficient: K − 1 multiplies per monomial, not K).
    #[inline(always)]
    pub fn mul_linear(&self, r: usize, p: &[f64], a: &[f64], q: &mut [f64], unit: bool) {
        stencil_of(self.k - 1, unit, &self.down[r], a, p, q);
    }

    /// Per lane, Σ p m over degree `r`'s monomials (`p` zero off its
    /// runs, as the products leave it; `m` one finite value per entry,
    /// shared by the lanes): over the stretch from the degree's first run
    /// to the end of its last, slots included, where `p` is 0, so that the
    /// loop does not stop at every run; four sums, so that each add waits
    /// on the one four entries back.
    #[inline(always)]
    pub fn dot(&self, r: usize, p: &[f64], m: &[f64]) -> [f64; LANES] {
        let (lo, hi) = self.span(r);
        let (p, _) = p.as_chunks::<LANES>();
        let (p, m) = (&p[lo..hi], &m[lo..hi]);
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            #[allow(unsafe_code)]
            // SAFETY: `avx::dot` requires only the avx2 and fma target
            // features, which `avx2` found this processor to have.
            return unsafe { avx::dot(p, m) };
        }
        let mut acc = [[0.0; LANES]; 4];
        let (pq, p_rest) = p.as_chunks::<4>();
        let (mq, m_rest) = m.as_chunks::<4>();
        for (ps, ms) in pq.iter().zip(mq) {
            for j in 0..4 {
                acc[j] = mul_add([ms[j]; LANES], ps[j], acc[j]);
            }
        }
        for (j, (pj, &mj)) in p_rest.iter().zip(m_rest).enumerate() {
            acc[j] = mul_add([mj; LANES], *pj, acc[j]);
        }
        std::array::from_fn(|lane| (acc[0][lane] + acc[1][lane]) + (acc[2][lane] + acc[3][lane]))
    }

    /// Degree `r`'s entries from its first run's to its last run's end.
    #[inline(always)]
    fn span(&self, r: usize) -> (usize, usize) {
        let runs = &self.runs[r];
        let (last, len) = runs[runs.len() - 1];
        (runs[0].0, last + len)
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
    /// by `p` into `b_prev` (on degree r − 1's runs); `unit` as there.
    #[inline(always)]
    pub fn mul_linear_back(
        &self,
        r: usize,
        (p, a, unit): (&[f64], &[f64], bool),
        b: &[f64],
        g: &mut [f64],
        b_prev: &mut [f64],
    ) {
        let axes = self.k - 1;
        macro_rules! grad {
            ($n:literal) => {{
                #[cfg(target_arch = "x86_64")]
                if avx2() {
                    #[allow(unsafe_code)]
                    // SAFETY: `avx::gradient` requires only the avx2 and
                    // fma target features, which `avx2` found here.
                    unsafe {
                        avx::gradient::<$n>(&self.down[r], p, b, g)
                    };
                } else {
                    gradient::<$n>(&self.down[r], p, b, g)
                }
                #[cfg(not(target_arch = "x86_64"))]
                gradient::<$n>(&self.down[r], p, b, g)
            }};
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
        stencil_of(axes, unit, &self.up[r - 1], a, b, b_prev);
    }
}

/// [`stencil`] for `axes` axes known at run time, with the last
/// coefficient 1 in every lane (`unit`) or any; on AVX2 where the
/// processor has it.
#[inline(always)]
fn stencil_of(axes: usize, unit: bool, runs: &[Run], a: &[f64], src: &[f64], dst: &mut [f64]) {
    macro_rules! axes {
        ($n:literal) => {{
            #[cfg(target_arch = "x86_64")]
            if avx2() {
                #[allow(unsafe_code)]
                // SAFETY: `avx::stencil` requires only the avx2 and fma
                // target features, which `avx2` found this processor to
                // have.
                unsafe {
                    match unit {
                        true => avx::stencil::<$n, true>(runs, a, src, dst),
                        false => avx::stencil::<$n, false>(runs, a, src, dst),
                    }
                }
                return;
            }
            match unit {
                true => stencil::<$n, true>(runs, a, src, dst),
                false => stencil::<$n, false>(runs, a, src, dst),
            }
        }};
    }
    match axes {
        1 => axes!(1),
        2 => axes!(2),
        3 => axes!(3),
        _ => axes!(4),
    }
}

/// Per lane over `runs`: `dst` = a_last `src` + Σ_ax a_ax `src` one
/// exponent less along ax (the runs' down neighbours: the product by a
/// linear form) or more (their up neighbours: the reverse pass's), with
/// `A` axes known when compiled so that the entries' sums interleave;
/// with `UNIT` a_last is 1 and `src` is added unmultiplied.
#[inline(always)]
fn stencil<const A: usize, const UNIT: bool>(
    runs: &[Run],
    a: &[f64],
    src: &[f64],
    dst: &mut [f64],
) {
    let last = lanes(a, A);
    let ak: [[f64; LANES]; A] = std::array::from_fn(|ax| lanes(a, ax));
    let (src, _) = src.as_chunks::<LANES>();
    let (dst, _) = dst.as_chunks_mut::<LANES>();
    for run in runs {
        let (o, l) = (run.at as usize, run.len as usize);
        let d = &mut dst[o..o + l];
        let (c, nb) = neighbours::<A>(src, run);
        for i in 0..l {
            let mut x = if UNIT { c[i] } else { mul(last, c[i]) };
            for ax in 0..A {
                x = mul_add(ak[ax], nb[ax][i], x);
            }
            d[i] = x;
        }
    }
}

/// Per lane, the derivatives of Σ b q by the coefficients of the linear
/// form, q = p × Σ_k a_k x_k, into `g` (`(A + 1) x LANES`), over `runs`
/// (degree r's, with their down neighbours in `p`), with `A` axes known
/// when compiled.
#[inline(always)]
fn gradient<const A: usize>(runs: &[Run], p: &[f64], b: &[f64], g: &mut [f64]) {
    let mut acc = [[0.0; LANES]; A];
    let mut acc_last = [0.0; LANES];
    let (p, _) = p.as_chunks::<LANES>();
    let (b, _) = b.as_chunks::<LANES>();
    for run in runs {
        let (o, l) = (run.at as usize, run.len as usize);
        let bs = &b[o..o + l];
        let (c, nb) = neighbours::<A>(p, run);
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

/// The stretches of `x` that `run` reads, as slices of the run's length
/// (its same-exponent neighbour and one per axis), so that the loops over
/// them read the entries without a bounds test each.
#[inline(always)]
fn neighbours<'a, const A: usize>(
    x: &'a [[f64; LANES]],
    run: &Run,
) -> (&'a [[f64; LANES]], [&'a [[f64; LANES]]; A]) {
    let l = run.len as usize;
    let at = |j: u32| &x[j as usize..j as usize + l];
    (at(run.c), std::array::from_fn(|ax| at(run.nb[ax])))
}

/// Whether the polynomials' loops run on AVX2 ([`avx`]): where the
/// processor has AVX2 and FMA (detected once, then a load of a cached
/// flag), unless a test turned them off on its thread.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn avx2() -> bool {
    #[cfg(test)]
    if tests::PORTABLE.with(|p| p.get()) {
        return false;
    }
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
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

/// Every lead of `axes` exponents summing to at most `r`, in
/// lexicographic order, after the exponents `prefix` chosen so far.
fn all_leads(axes: usize, r: usize, prefix: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    if prefix.len() == axes {
        out.push(prefix.clone());
        return;
    }
    let used: usize = prefix.iter().sum();
    for e in 0..=r - used {
        prefix.push(e);
        all_leads(axes, r, prefix, out);
        prefix.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Whether this thread's polynomials take the portable loops
        /// even where the processor has AVX2 ([`avx2`]).
        pub(super) static PORTABLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// Every loop of the polynomials on AVX2 gives what the portable one
    /// gives, to the bit: the products (both stencils), their dot with
    /// moments, and the reverse pass's derivatives, for 2 to 5 variables.
    /// (On a processor without AVX2 both runs take the portable loops.)
    #[test]
    fn the_vector_loops_equal_the_portable_ones() {
        let run = |k: usize, unit: bool, portable: bool| {
            PORTABLE.with(|p| p.set(portable));
            let n = 7;
            let t = Triangles::new(k, n, 1 << 20).expect("small enough");
            let a: Vec<Vec<f64>> = (0..n)
                .map(|r| {
                    let mut a: Vec<f64> = (0..k * LANES)
                        .map(|i| 0.1 + ((r * 11 + i * 7) % 13) as f64 / 7.0)
                        .collect();
                    if unit {
                        a[(k - 1) * LANES..].fill(1.0);
                    }
                    a
                })
                .collect();
            let mut p = vec![vec![0.0; t.size * LANES]; n + 1];
            p[0][t.unit() * LANES..(t.unit() + 1) * LANES].fill(1.0);
            for r in 1..=n {
                let (lo, hi) = p.split_at_mut(r);
                t.mul_linear(r, &lo[r - 1], &a[r - 1], &mut hi[0], unit);
            }
            let m: Vec<f64> = (0..t.size).map(|i| 1.0 + (i % 13) as f64 / 3.0).collect();
            let mut out = t.dot(n, &p[n], &m).to_vec();
            let mut b: Vec<f64> = m.iter().flat_map(|&x| [x; LANES]).collect();
            let mut b_prev = vec![0.0; t.size * LANES];
            let mut g = vec![0.0; k * LANES];
            for r in (1..=n).rev() {
                t.mul_linear_back(r, (&p[r - 1], &a[r - 1], unit), &b, &mut g, &mut b_prev);
                out.extend(&g);
                out.extend(&b_prev);
                std::mem::swap(&mut b, &mut b_prev);
            }
            PORTABLE.with(|p| p.set(false));
            (p.concat(), out)
        };
        for k in 2..=MAX_VARIABLES {
            for unit in [false, true] {
                let (vector, portable) = (run(k, unit, false), run(k, unit, true));
                assert!(vector.1.iter().all(|x| x.is_finite()));
                assert!(vector.1.iter().filter(|&&x| x != 0.0).count() > vector.1.len() / 2);
                assert_eq!(vector, portable, "k {k} unit {unit}");
            }
        }
    }

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
        // (the highest degree at the top of the structure and below it;
        // each row scaled to its last coefficient 1, the unit stencils, or
        // not)
        let cases = (2..=MAX_VARIABLES).flat_map(|k| [(k, 0), (k, 1)]);
        for ((k, spare), unit) in cases.flat_map(|c| [(c, false), (c, true)]) {
            let n = 5;
            let t = Triangles::new(k, n + spare, 1 << 20).expect("small enough");
            // lane l's rows: the base rows shifted by 0.05 l
            let a: Vec<Vec<Vec<f64>>> = (0..LANES)
                .map(|l| {
                    rows(k, n)
                        .into_iter()
                        .map(|row| {
                            let row: Vec<f64> = row.iter().map(|x| x + 0.05 * l as f64).collect();
                            let s = if unit { row[k - 1] } else { 1.0 };
                            row.iter().map(|x| x / s).collect()
                        })
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
                t.mul_linear(r, &lo[r - 1], &packed(r - 1), &mut hi[0], unit);
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
                // (a sum of positive terms, exact to its rounding: on the
                // rows scaled to their last coefficient 1, whose values
                // are larger, relative to its size)
                let v = value(&a[l]);
                let tol = if unit { 1e-12 * v.max(1.0) } else { 1e-12 };
                assert!((dots[l] - v).abs() < tol, "k {k}: {} vs {v}", dots[l]);
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
                t.mul_linear_back(
                    r,
                    (&p[r - 1], &packed(r - 1), unit),
                    &b,
                    &mut g,
                    &mut b_prev,
                );
                for (l, j) in (0..LANES).flat_map(|l| (0..k).map(move |j| (l, j))) {
                    let h = 1e-6;
                    let (mut up, mut down) = (a[l].clone(), a[l].clone());
                    up[r - 1][j] += h;
                    down[r - 1][j] -= h;
                    let d = (value(&up) - value(&down)) / (2.0 * h);
                    let got = g[j * LANES + l];
                    // the value is linear in each coefficient, so the
                    // difference is exact but for its rounding, which
                    // grows with the value: allowed for on the rows
                    // scaled to their last coefficient 1, whose values
                    // are larger (the unscaled keep their 1e-6)
                    let rounding = match unit {
                        true => 16.0 * f64::EPSILON * value(&a[l]).abs() / h,
                        false => 0.0,
                    };
                    assert!(
                        (got - d).abs() < 1e-6 + rounding,
                        "k {k} lane {l} row {r} var {j}: {got} vs {d}"
                    );
                }
                std::mem::swap(&mut b, &mut b_prev);
            }
        }
    }
}
