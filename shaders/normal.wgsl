// The twin of crates/mlmix-kernels/src/eval/normal.rs: a continuous
// dependent, normal given the classes. Parameters per state: [ν, β_1 ..
// β_q, 1/θ, −(ln 2π + ln θ)/2]. A missing value contributes 0.

// normal.rs: values: every state's log-density of row r's value, at the
// term's slots
fn normal_values(t: u32, r: u32, z: ptr<function, array<f32, 8>>, vals: ptr<function, array<f32, 128>>) {
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
