// The twin of crates/mlmix-kernels/src/eval/block.rs: continuous
// dependents with residual covariances, y = ν + B x + e, e ~ N(0, Σ), over
// the variables a row observes. Parameters per state: the local ones [ν
// (d), B (d × q, row-major), Σ (lower triangle packed by rows)], then per
// missing-data pattern the inverse P of Σ's observed block (m × m) and
// −(m ln 2π + ln det)/2, prepared in f64 on the host. The descriptor's
// T_COL is the block's table in the plan (after H_BLOCKS_AT: its d data
// columns, then per pattern the mask of its observed variables, the
// offset of its P within a state's parameters, and m), T_NCAT is d and
// T_LINK the number of patterns. A row's pattern is the mask of the
// variables it observes; a row observing none contributes 0.

// the block variables a kernel holds (gpu.rs: MAX_BLOCK)
const MAX_BLOCK: u32 = 16u;

// The row's pattern: its observed variables' mask, the offset of the
// pattern's P within a state's parameters, m and its index among the
// block's patterns (mask 0 and 0, 0, 0 with none observed).
struct Pattern {
    mask: u32,
    at: u32,
    m: u32,
    idx: u32,
}

// block.rs: the row's pattern (plan.rs assigns it from the same mask)
fn block_pattern(t: u32, r: u32) -> Pattern {
    let tab = plan[H_BLOCKS_AT] + term_word(t, T_COL);
    let d = term_word(t, T_NCAT);
    var mask = 0u;
    for (var i = 0u; i < d; i += 1u) {
        let y = rows[r * plan[H_COLS] + plan[tab + i]];
        mask |= select(1u << i, 0u, is_missing(y));
    }
    var pat = Pattern(mask, 0u, 0u, 0u);
    for (var k = 0u; k < term_word(t, T_LINK); k += 1u) {
        let e = tab + d + 3u * k;
        if plan[e] == mask {
            pat.at = plan[e + 1u];
            pat.m = plan[e + 2u];
            pat.idx = k;
        }
    }
    return pat;
}

// block.rs: block_residuals: y − ν − B x of the observed variables, in
// order, into res; the state's parameters at p
fn block_residuals(t: u32, r: u32, z: ptr<function, array<f32, 8>>, p: u32, mask: u32,
    res: ptr<function, array<f32, 16>>) {
    let tab = plan[H_BLOCKS_AT] + term_word(t, T_COL);
    let d = term_word(t, T_NCAT);
    let q = term_word(t, T_NCOVS);
    var a = 0u;
    for (var i = 0u; i < d; i += 1u) {
        if (mask & (1u << i)) != 0u {
            let y = rows[r * plan[H_COLS] + plan[tab + i]];
            (*res)[a] = y - params[p + i] - linear(t, p + d + i * q, r, z);
            a += 1u;
        }
    }
}

// the magnitudes of block_residuals' operands, |y| + |ν| + Σ|B x|, into
// mag (the second sweep's rounding bound only)
fn block_magnitudes(t: u32, r: u32, z: ptr<function, array<f32, 8>>, p: u32, mask: u32,
    mag: ptr<function, array<f32, 16>>) {
    let tab = plan[H_BLOCKS_AT] + term_word(t, T_COL);
    let d = term_word(t, T_NCAT);
    let q = term_word(t, T_NCOVS);
    var a = 0u;
    for (var i = 0u; i < d; i += 1u) {
        if (mask & (1u << i)) != 0u {
            let y = rows[r * plan[H_COLS] + plan[tab + i]];
            (*mag)[a] = abs(y) + abs(params[p + i]) + linear_abs(t, p + d + i * q, r, z);
            a += 1u;
        }
    }
}

// block.rs: values: every state's log-density of row r's observed
// variables, at the term's slots
fn block_values(t: u32, r: u32, z: ptr<function, array<f32, 8>>, vals: ptr<private, array<f32, 128>>) {
    let slot = term_word(t, T_SLOT);
    let n = term_word(t, T_STATES);
    let stride = term_word(t, T_STRIDE);
    let pat = block_pattern(t, r);
    let m = pat.m;
    var res: array<f32, 16>;
    for (var s = 0u; s < n; s += 1u) {
        let p = term_word(t, T_PARAMS) + s * stride;
        block_residuals(t, r, z, p, pat.mask, &res);
        let pi = p + pat.at;
        var quad = 0.0;
        for (var a = 0u; a < m; a += 1u) {
            var u = 0.0;
            for (var b = 0u; b < m; b += 1u) {
                u += params[pi + a * m + b] * res[b];
            }
            quad += res[a] * u;
        }
        let v = params[pi + m * m] - 0.5 * quad;
        (*vals)[slot + s] = select(v, 0.0, m == 0u);
    }
}

// block.rs: scores: with u = P (y − μ), w u (1, x) for the means and
// regressions and w (u u' − P), halved on the diagonal, for Σ, added to
// the cluster's score at `g0`; the magnitudes of u through |P| (no
// `continue` or early `return`: see categorical_scores)
fn block_scores(t: u32, r: u32, z: ptr<function, array<f32, 8>>, w0: u32, g0: u32) {
    let slot = term_word(t, T_SLOT);
    let stride = term_word(t, T_STRIDE);
    let d = term_word(t, T_NCAT);
    let q = term_word(t, T_NCOVS);
    let sig0 = d + d * q;
    let pat = block_pattern(t, r);
    let m = pat.m;
    let n = select(term_word(t, T_STATES), 0u, m == 0u);
    var res: array<f32, 16>;
    var mag: array<f32, 16>;
    var u: array<f32, 16>;
    var um: array<f32, 16>;
    for (var s = 0u; s < n; s += 1u) {
        let ws = state_w[lane_at(w0 + slot + s)];
        if ws != 0.0 {
            let p = term_word(t, T_PARAMS) + s * stride;
            block_residuals(t, r, z, p, pat.mask, &res);
            block_magnitudes(t, r, z, p, pat.mask, &mag);
            let pi = p + pat.at;
            for (var a = 0u; a < m; a += 1u) {
                var ua = 0.0;
                var ma = 0.0;
                for (var b = 0u; b < m; b += 1u) {
                    let pab = params[pi + a * m + b];
                    ua += pab * res[b];
                    ma += abs(pab) * mag[b];
                }
                u[a] = ua;
                um[a] = ma;
            }
            let aw = abs(ws);
            var a = 0u;
            for (var i = 0u; i < d; i += 1u) {
                if (pat.mask & (1u << i)) != 0u {
                    let g = ws * u[a];
                    add_score(g0 + p + i, g, aw * um[a]);
                    add_linear(t, g0 + p + d + i * q, r, z, g, aw * um[a]);
                    // Σ's entries (i, j), j ≤ i both observed
                    var b = 0u;
                    for (var j = 0u; j <= i; j += 1u) {
                        if (pat.mask & (1u << j)) != 0u {
                            let pab = params[pi + a * m + b];
                            let half = select(1.0, 0.5, i == j);
                            let g2 = ws * half * (u[a] * u[b] - pab);
                            let m2 = aw * half * (um[a] * um[b] + abs(pab));
                            add_score(g0 + p + sig0 + i * (i + 1u) / 2u + j, g2, m2);
                            b += 1u;
                        }
                    }
                    a += 1u;
                }
            }
        }
    }
}

// block.rs: info (with covariates): each state's w P ⊗ zz' (P the inverse
// of the row's pattern, z = (1, x)) on row r, the means' and regressions'
// block of the state's information at `m0` in `sweep` (n_local² per
// state, laid out as the CPU's InfoAcc::mats: a variable's mean at its
// index, its coefficients after the d means); the covariances' entries
// come from the weight sums. No variable observed adds nothing.
fn block_info(t: u32, r: u32, z: ptr<function, array<f32, 8>>, w0: u32, m0: u32, nl: u32) {
    let slot = term_word(t, T_SLOT);
    let stride = term_word(t, T_STRIDE);
    let d = term_word(t, T_NCAT);
    let q = term_word(t, T_NCOVS);
    let pat = block_pattern(t, r);
    let m = pat.m;
    var x: array<f32, 16>;
    gather_covariates(t, r, z, &x);
    let n = select(term_word(t, T_STATES), 0u, m == 0u);
    for (var s = 0u; s < n; s += 1u) {
        let ws = state_w[lane_at(w0 + slot + s)];
        if ws != 0.0 {
            let pi = term_word(t, T_PARAMS) + s * stride + pat.at;
            let mat = m0 + s * nl * nl;
            var a = 0u;
            for (var vi = 0u; vi < d; vi += 1u) {
                if (pat.mask & (1u << vi)) != 0u {
                    var b = 0u;
                    for (var vj = 0u; vj < d; vj += 1u) {
                        if (pat.mask & (1u << vj)) != 0u {
                            let pij = ws * params[pi + a * m + b];
                            for (var ka = 0u; ka <= q; ka += 1u) {
                                let ia = select(d + vi * q + ka - 1u, vi, ka == 0u);
                                let za = pij * regressor(ka, q, &x);
                                for (var kb = 0u; kb <= q; kb += 1u) {
                                    let jb = select(d + vj * q + kb - 1u, vj, kb == 0u);
                                    sweep[lane_at(mat + ia * nl + jb)] += za * regressor(kb, q, &x);
                                }
                            }
                            b += 1u;
                        }
                    }
                    a += 1u;
                }
            }
        }
    }
}
