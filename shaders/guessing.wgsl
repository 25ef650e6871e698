// The twin of crates/mlmix-kernels/src/eval/guessing.rs: a binary item
// with a guessing parameter (the 3PL), P(u = 1) = g + (1 − g) F(η − τ),
// g = 1 / (1 + e^−γ). With t = τ − η: P(u = 0) = (1 − g) F(t) and
// P(u = 1) = g + (1 − g) F(−t) (symmetric links), each formed in logs.
// Parameters per state: [τ, β_1 .. β_q, γ]. A missing response
// contributes 0.

// ln(e^a + e^b), stable
fn log_add(a: f32, b: f32) -> f32 {
    return max(a, b) + log(1.0 + exp(-abs(a - b)));
}

// guessing.rs: log_prob: ln P(u = c) at t = τ − η and logit guessing γ
fn guessing_log_prob(link: u32, t: f32, gamma: f32, c: u32) -> f32 {
    // ln(1 − g) = −ln(1 + e^γ), ln g = −ln(1 + e^−γ)
    let ln_1mg = -softplus(gamma);
    if c == 0u {
        return ln_1mg + log_cdf(link, t);
    }
    return log_add(-softplus(-gamma), ln_1mg + log_cdf(link, -t));
}

// guessing.rs: values: every state's ln P of row r's response, at the
// term's slots
fn guessing_values(t: u32, r: u32, z: ptr<function, array<f32, 8>>, vals: ptr<private, array<f32, 128>>) {
    let slot = term_word(t, T_SLOT);
    let n = term_word(t, T_STATES);
    let y = rows[r * plan[H_COLS] + term_word(t, T_COL)];
    let link = term_word(t, T_LINK);
    let stride = term_word(t, T_STRIDE);
    let q = term_word(t, T_NCOVS);
    let c = u32(select(y, 0.0, is_missing(y)));
    for (var s = 0u; s < n; s += 1u) {
        let p = term_word(t, T_PARAMS) + s * stride;
        let eta = linear(t, p + 1u, r, z);
        let v = guessing_log_prob(link, params[p] - eta, params[p + q + 1u], c);
        (*vals)[slot + s] = select(v, 0.0, is_missing(y));
    }
}

// guessing.rs: scores: each state's weighted ∂ln P_u: with sign σ = +1
// for u = 0 and −1 for u = 1, ∂P_u/∂τ = σ (1 − g) f(t), ∂P_u/∂β = −σ
// (1 − g) f(t) x and ∂P_u/∂γ = −σ g (1 − g) F(t), each divided by P_u
// (formed as the exp of a difference of logs; ln P_u is the row's value
// of the state, which `row_terms` left in `vals`), added to the cluster's
// score at `g0` (no `continue` or early `return`: see categorical_scores).
fn guessing_scores(t: u32, r: u32, z: ptr<function, array<f32, 8>>, w0: u32, g0: u32) {
    let slot = term_word(t, T_SLOT);
    let y = rows[r * plan[H_COLS] + term_word(t, T_COL)];
    let link = term_word(t, T_LINK);
    let stride = term_word(t, T_STRIDE);
    let q = term_word(t, T_NCOVS);
    let sign = select(-1.0, 1.0, select(y, 0.0, is_missing(y)) == 0.0);
    let n = select(term_word(t, T_STATES), 0u, is_missing(y));
    for (var s = 0u; s < n; s += 1u) {
        let ws = state_w[lane_at(w0 + slot + s)];
        let lp = vals[slot + s];
        if ws != 0.0 && lp > 0.5 * LOG_ZERO {
            let p = term_word(t, T_PARAMS) + s * stride;
            let gamma = params[p + q + 1u];
            let tt = params[p] - linear(t, p + 1u, r, z);
            let ln_1mg = -softplus(gamma);
            let d_t = sign * ws * exp(ln_1mg + log_density(link, tt) - lp);
            let d_g = -sign * ws * exp(-softplus(-gamma) + ln_1mg + log_cdf(link, tt) - lp);
            add_score(g0 + p, d_t, abs(d_t));
            add_linear(t, g0 + p + 1u, r, z, -d_t, abs(d_t));
            add_score(g0 + p + q + 1u, d_g, abs(d_g));
        }
    }
}

// guessing.rs: info: each state's weighted Σ_u ∂P_u ∂P_u' / P_u on row r,
// which with ∂P_1 = −∂P_0 is w ∂P_0 ∂P_0' (1/P_0 + 1/P_1), added to its
// block at `m0` in `sweep` (n_local² per state, laid out as the CPU's
// InfoAcc::mats); a missing response adds nothing (no `continue`: see
// categorical_scores).
fn guessing_info(t: u32, r: u32, z: ptr<function, array<f32, 8>>, w0: u32, m0: u32) {
    let slot = term_word(t, T_SLOT);
    let y = rows[r * plan[H_COLS] + term_word(t, T_COL)];
    let link = term_word(t, T_LINK);
    let nl = term_word(t, T_STRIDE);
    let q = term_word(t, T_NCOVS);
    var x: array<f32, 16>;
    gather_covariates(t, r, z, &x);
    let n = select(term_word(t, T_STATES), 0u, is_missing(y));
    for (var s = 0u; s < n; s += 1u) {
        let ws = state_w[lane_at(w0 + slot + s)];
        if ws != 0.0 {
            let p = term_word(t, T_PARAMS) + s * nl;
            let gamma = params[p + q + 1u];
            let tt = params[p] - linear_x(p + 1u, q, &x);
            let g = 1.0 / (1.0 + exp(-gamma));
            let omg = exp(-softplus(gamma));
            let f0 = cdf(link, tt);
            let p0 = omg * f0;
            let p1 = g + omg * cdf(link, -tt);
            let scale = ws * (1.0 / max(p0, 1.0e-30) + 1.0 / max(p1, 1.0e-30));
            let d_t = omg * exp(log_density(link, tt));
            let d_g = -g * omg * f0;
            let m = m0 + s * nl * nl;
            for (var a = 0u; a < nl; a += 1u) {
                let da = select(select(-d_t, d_t, a == 0u) * regressor(a, q, &x), d_g, a == q + 1u);
                for (var b = 0u; b < nl; b += 1u) {
                    let db = select(select(-d_t, d_t, b == 0u) * regressor(b, q, &x), d_g, b == q + 1u);
                    sweep[lane_at(m + a * nl + b)] += scale * da * db;
                }
            }
        }
    }
}
