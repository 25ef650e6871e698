// The twin of crates/mlmix-kernels/src/eval/nominal.rs: a nominal
// (unordered categorical) dependent, P(u = k) the softmax over the
// categories of η_k = a_k + b_k'x, the last category the reference (its
// entries are zeros). Parameters per state, per category k: [a_k, b_k
// (q)]. A missing category contributes 0.

// nominal.rs: values: every state's ln P of row r's category, η_u less
// the log-sum-exp of the η_k, at the term's slots
fn nominal_values(t: u32, r: u32, z: ptr<function, array<f32, 8>>, vals: ptr<private, array<f32, 128>>) {
    let slot = term_word(t, T_SLOT);
    let n = term_word(t, T_STATES);
    let y = rows[r * plan[H_COLS] + term_word(t, T_COL)];
    let ncat = term_word(t, T_NCAT);
    let stride = term_word(t, T_STRIDE);
    let per = 1u + term_word(t, T_NCOVS);
    let c = min(u32(select(y, 0.0, is_missing(y))), ncat - 1u);
    for (var s = 0u; s < n; s += 1u) {
        let p = term_word(t, T_PARAMS) + s * stride;
        var acc = lse_new();
        var own = 0.0;
        for (var k = 0u; k < ncat; k += 1u) {
            let pk = p + k * per;
            let eta = params[pk] + linear(t, pk + 1u, r, z);
            lse_add(&acc, eta);
            own = select(own, eta, k == c);
        }
        (*vals)[slot + s] = select(own - lse_value(acc), 0.0, is_missing(y));
    }
}

// nominal.rs: scores: per state of weight w and category k, w (1[u = k] −
// p_k) for a_k and (times x) b_k, added to the cluster's score at `g0`
// (the reference category's too: the CPU's finish drops them); p_k =
// exp(η_k − η_u + ln P(u)), ln P(u) the row's value of the state, which
// `row_terms` left in `vals` (no `continue` or early `return`: see
// categorical_scores).
fn nominal_scores(t: u32, r: u32, z: ptr<function, array<f32, 8>>, w0: u32, g0: u32) {
    let slot = term_word(t, T_SLOT);
    let y = rows[r * plan[H_COLS] + term_word(t, T_COL)];
    let ncat = term_word(t, T_NCAT);
    let stride = term_word(t, T_STRIDE);
    let per = 1u + term_word(t, T_NCOVS);
    let c = min(u32(select(y, 0.0, is_missing(y))), ncat - 1u);
    let n = select(term_word(t, T_STATES), 0u, is_missing(y));
    for (var s = 0u; s < n; s += 1u) {
        let ws = state_w[lane_at(w0 + slot + s)];
        if ws != 0.0 {
            let p = term_word(t, T_PARAMS) + s * stride;
            let pc = p + c * per;
            // ln of the normaliser: η_u − ln P(u)
            let lse = params[pc] + linear(t, pc + 1u, r, z) - vals[slot + s];
            for (var k = 0u; k < ncat; k += 1u) {
                let pk = p + k * per;
                let prob = exp(params[pk] + linear(t, pk + 1u, r, z) - lse);
                let hit = select(0.0, 1.0, k == c);
                let g = ws * (hit - prob);
                let mag = abs(ws) * (hit + prob);
                add_score(g0 + pk, g, mag);
                add_linear(t, g0 + pk + 1u, r, z, g, mag);
            }
        }
    }
}

// nominal.rs: info (with covariates): each state's w (diag(p) − pp') ⊗
// zz' (z = (1, x), p the categories' probabilities on row r) added to its
// block at `m0` in `sweep` (n_local² per state, laid out as the CPU's
// InfoAcc::mats); a missing category adds nothing (no `continue`: see
// categorical_scores).
fn nominal_info(t: u32, r: u32, z: ptr<function, array<f32, 8>>, w0: u32, m0: u32) {
    let slot = term_word(t, T_SLOT);
    let y = rows[r * plan[H_COLS] + term_word(t, T_COL)];
    let ncat = term_word(t, T_NCAT);
    let nl = term_word(t, T_STRIDE);
    let q = term_word(t, T_NCOVS);
    let per = 1u + q;
    let c = min(u32(select(y, 0.0, is_missing(y))), ncat - 1u);
    var x: array<f32, 16>;
    gather_covariates(t, r, z, &x);
    let n = select(term_word(t, T_STATES), 0u, is_missing(y));
    for (var s = 0u; s < n; s += 1u) {
        let ws = state_w[lane_at(w0 + slot + s)];
        if ws != 0.0 {
            let p = term_word(t, T_PARAMS) + s * nl;
            let pc = p + c * per;
            let lse = params[pc] + linear_x(pc + 1u, q, &x) - vals[slot + s];
            let m = m0 + s * nl * nl;
            for (var k1 = 0u; k1 < ncat; k1 += 1u) {
                let p1 = exp(params[p + k1 * per] + linear_x(p + k1 * per + 1u, q, &x) - lse);
                for (var k2 = 0u; k2 < ncat; k2 += 1u) {
                    let p2 = exp(params[p + k2 * per] + linear_x(p + k2 * per + 1u, q, &x) - lse);
                    let cc = ws * (select(0.0, p1, k1 == k2) - p1 * p2);
                    for (var a = 0u; a < per; a += 1u) {
                        let ca = cc * regressor(a, q, &x);
                        for (var b = 0u; b < per; b += 1u) {
                            sweep[lane_at(m + (k1 * per + a) * nl + k2 * per + b)] += ca * regressor(b, q, &x);
                        }
                    }
                }
            }
        }
    }
}
