// The twin of crates/mlmix-kernels/src/eval/normal.rs: a continuous
// dependent, normal given the classes. Parameters per state: [ν, β_1 ..
// β_q, 1/θ, −(ln 2π + ln θ)/2]. A missing value contributes 0.

// normal.rs: values: every state's log-density of row r's value, at the
// term's slots
fn normal_values(t: u32, r: u32, z: ptr<function, array<f32, 8>>, vals: ptr<private, array<f32, 128>>) {
    let slot = term_word(t, T_SLOT);
    let n = term_word(t, T_STATES);
    let y = rows[r * plan[H_COLS] + term_word(t, T_COL)];
    let q = term_word(t, T_NCOVS);
    let stride = term_word(t, T_STRIDE);
    for (var s = 0u; s < n; s += 1u) {
        let p = term_word(t, T_PARAMS) + s * stride;
        let e = y - params[p] - linear(t, p + 1u, r, z);
        let v = params[p + q + 2u] - 0.5 * e * e * params[p + q + 1u];
        (*vals)[slot + s] = select(v, 0.0, is_missing(y));
    }
}

// normal.rs: scores: each state's weighted derivatives of row r's
// log-density, w e/θ for ν and (times x) β, w (e²/θ − 1)/(2θ) for θ (at the
// slot of 1/θ), added to the cluster's score at `g0` (no `continue` or
// early `return`: see categorical_scores).
fn normal_scores(t: u32, r: u32, z: ptr<function, array<f32, 8>>, w0: u32, g0: u32) {
    let slot = term_word(t, T_SLOT);
    let y = rows[r * plan[H_COLS] + term_word(t, T_COL)];
    let q = term_word(t, T_NCOVS);
    let stride = term_word(t, T_STRIDE);
    let n = select(term_word(t, T_STATES), 0u, is_missing(y));
    for (var s = 0u; s < n; s += 1u) {
        let ws = state_w[lane_at(w0 + slot + s)];
        if ws != 0.0 {
            let p = term_word(t, T_PARAMS) + s * stride;
            let iv = params[p + q + 1u];
            let e = y - params[p] - linear(t, p + 1u, r, z);
            // the residual's magnitude: its operands'
            let a = abs(y) + abs(params[p]) + linear_abs(t, p + 1u, r, z);
            let g = ws * e * iv;
            let mag = abs(ws) * a * iv;
            add_score(g0 + p, g, mag);
            add_linear(t, g0 + p + 1u, r, z, g, mag);
            let v = ws * 0.5 * iv * (e * e * iv - 1.0);
            add_score(g0 + p + q + 1u, v, abs(ws) * 0.5 * iv * (a * a * iv + 1.0));
        }
    }
}

// normal.rs: info (with covariates): each state's w z z' / θ (z = (1, x))
// on row r, the (ν, β) block of the cluster's information at `m0` in
// `sweep` (n_local² per state, n_local = q + 2; the variance's entry
// comes from the weight sums); a missing value adds nothing.
fn normal_info(t: u32, r: u32, z: ptr<function, array<f32, 8>>, w0: u32, m0: u32) {
    let slot = term_word(t, T_SLOT);
    let y = rows[r * plan[H_COLS] + term_word(t, T_COL)];
    let q = term_word(t, T_NCOVS);
    let stride = term_word(t, T_STRIDE);
    let nl = q + 2u;
    var x: array<f32, 16>;
    gather_covariates(t, r, z, &x);
    let n = select(term_word(t, T_STATES), 0u, is_missing(y));
    for (var s = 0u; s < n; s += 1u) {
        let f = state_w[lane_at(w0 + slot + s)] * params[term_word(t, T_PARAMS) + s * stride + q + 1u];
        let m = m0 + s * nl * nl;
        for (var a = 0u; a <= q; a += 1u) {
            let fa = f * regressor(a, q, &x);
            for (var b = 0u; b <= q; b += 1u) {
                sweep[lane_at(m + a * nl + b)] += fa * regressor(b, q, &x);
            }
        }
    }
}
