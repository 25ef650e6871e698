// The twin of crates/mlmix-kernels/src/eval/categorical.rs: an ordered
// categorical (or binary) dependent, P(u = c) = F(τ_{c+1} − η) − F(τ_c − η),
// η = Σ β x. Parameters per state: [τ_1 .. τ_{C−1}, β_1 .. β_q]. A missing
// category contributes 0.

// ln P(category c) from its lower and upper cut points (`has_lower`,
// `has_upper`: not the first or last category) (link.rs: category_log_prob)
fn category_log_prob(link: u32, lower: f32, upper: f32, has_lower: bool, has_upper: bool) -> f32 {
    if !has_lower {
        return log_cdf(link, upper);
    }
    if !has_upper {
        // 1 − F(lower) = F(−lower) (symmetric links)
        return log_cdf(link, -lower);
    }
    // in the upper tail, the difference of the complements is the exact one
    var p: f32;
    if lower > 0.0 {
        p = cdf(link, -lower) - cdf(link, -upper);
    } else {
        p = cdf(link, upper) - cdf(link, lower);
    }
    return select(LOG_ZERO, log(p), p > 0.0);
}

// categorical.rs: values: every state's log-probability of row r's
// category, at the term's slots
fn categorical_values(t: u32, r: u32, z: ptr<function, array<f32, 8>>, vals: ptr<private, array<f32, 128>>) {
    let slot = term_word(t, T_SLOT);
    let n = term_word(t, T_STATES);
    let y = rows[r * plan[H_COLS] + term_word(t, T_COL)];
    if is_missing(y) {
        for (var s = 0u; s < n; s += 1u) {
            (*vals)[slot + s] = 0.0;
        }
        return;
    }
    let ncat = term_word(t, T_NCAT);
    let link = term_word(t, T_LINK);
    let stride = term_word(t, T_STRIDE);
    let c = u32(y);
    for (var s = 0u; s < n; s += 1u) {
        let p = term_word(t, T_PARAMS) + s * stride;
        let eta = linear(t, p + ncat - 1u, r, z);
        if ncat == 2u {
            // ln P(0) = ln F(u), ln P(1) = ln F(−u), u = τ − η
            let u = params[p] - eta;
            (*vals)[slot + s] = log_cdf(link, select(-u, u, c == 0u));
        } else {
            let lower = select(0.0, params[p + max(c, 1u) - 1u] - eta, c > 0u);
            let upper = select(0.0, params[p + min(c, ncat - 2u)] - eta, c + 1u < ncat);
            (*vals)[slot + s] = category_log_prob(link, lower, upper, c > 0u, c + 1u < ncat);
        }
    }
}

// categorical.rs: scores: each state's weighted derivatives of row r's
// log-probability, w ∂ln P/∂τ and w ∂ln P/∂β, added to the cluster's score
// at `g0` (laid out as the parameters). With lower and upper cut points
// l = τ_{c−1} − η and u = τ_c − η: ∂ln P/∂τ_c = f(u)/P, ∂ln P/∂τ_{c−1} =
// −f(l)/P and ∂ln P/∂η = (f(l) − f(u))/P; ln P is the row's value of the
// state, which `row_terms` left in `vals`. (No `continue` or early
// `return`, and every store's index in range whether it is taken or not:
// Mesa's lavapipe mis-executes divergent exits from these loops.)
fn categorical_scores(t: u32, r: u32, z: ptr<function, array<f32, 8>>, w0: u32, g0: u32) {
    let slot = term_word(t, T_SLOT);
    let y = rows[r * plan[H_COLS] + term_word(t, T_COL)];
    let ncat = term_word(t, T_NCAT);
    let link = term_word(t, T_LINK);
    let stride = term_word(t, T_STRIDE);
    let c = min(u32(select(y, 0.0, is_missing(y))), ncat - 1u);
    let has_lower = c > 0u;
    let has_upper = c + 1u < ncat;
    let n = select(term_word(t, T_STATES), 0u, is_missing(y));
    for (var s = 0u; s < n; s += 1u) {
        let ws = state_w[lane_at(w0 + slot + s)];
        let p = term_word(t, T_PARAMS) + s * stride;
        let eta = linear(t, p + ncat - 1u, r, z);
        let lo = p + max(c, 1u) - 1u;
        let up = p + min(c, ncat - 2u);
        let lower = select(0.0, params[lo] - eta, has_lower);
        let upper = select(0.0, params[up] - eta, has_upper);
        let lp = vals[slot + s];
        if ws != 0.0 && lp > 0.5 * LOG_ZERO {
            let d_up = select(0.0, exp(log_density(link, upper) - lp), has_upper);
            let d_lo = select(0.0, exp(log_density(link, lower) - lp), has_lower);
            add_score(g0 + up, ws * d_up, ws * d_up);
            add_score(g0 + lo, -ws * d_lo, ws * d_lo);
            add_linear(t, g0 + p + ncat - 1u, r, z, ws * (d_lo - d_up), ws * (d_lo + d_up));
        }
    }
}

// ∂P_c/∂(local parameter a) of category c (l thresholds, then the
// coefficients of the covariates x): f(u) for τ_c, −f(l) for τ_{c−1},
// (f(l) − f(u)) x for β
fn category_deriv(a: u32, c: u32, l: u32, fl: f32, fu: f32, x: ptr<function, array<f32, 16>>) -> f32 {
    let k = min(select(0u, a - l, a >= l), MAX_INFO_COVS - 1u);
    let tau = select(0.0, fu, a == c) - select(0.0, fl, a + 1u == c);
    return select(tau, (fl - fu) * (*x)[k], a >= l);
}

// categorical.rs: info (with covariates): each state's weighted Σ_c
// (∂P_c)(∂P_c)' / P_c over the categories on row r, added to the
// cluster's information block at `m0` in `sweep` (n_local² per state, laid
// out as the CPU's InfoAcc::mats); a missing category adds nothing (no
// `continue`: see categorical_scores).
fn categorical_info(t: u32, r: u32, z: ptr<function, array<f32, 8>>, w0: u32, m0: u32) {
    let slot = term_word(t, T_SLOT);
    let y = rows[r * plan[H_COLS] + term_word(t, T_COL)];
    let ncat = term_word(t, T_NCAT);
    let link = term_word(t, T_LINK);
    let nl = term_word(t, T_STRIDE);
    let l = ncat - 1u;
    var x: array<f32, 16>;
    gather_covariates(t, r, z, &x);
    let n = select(term_word(t, T_STATES), 0u, is_missing(y));
    for (var s = 0u; s < n; s += 1u) {
        let ws = state_w[lane_at(w0 + slot + s)];
        if ws != 0.0 {
            let p = term_word(t, T_PARAMS) + s * nl;
            let eta = linear_x(p + l, nl - l, &x);
            let m = m0 + s * nl * nl;
            for (var c = 0u; c < ncat; c += 1u) {
                let has_lower = c > 0u;
                let has_upper = c + 1u < ncat;
                let lower = select(0.0, params[p + max(c, 1u) - 1u] - eta, has_lower);
                let upper = select(0.0, params[p + min(c, ncat - 2u)] - eta, has_upper);
                let pc = exp(category_log_prob(link, lower, upper, has_lower, has_upper));
                let fu = select(0.0, exp(log_density(link, upper)), has_upper);
                let fl = select(0.0, exp(log_density(link, lower)), has_lower);
                let f = ws / max(pc, 1.0e-30);
                for (var a = 0u; a < nl; a += 1u) {
                    let fa = f * category_deriv(a, c, l, fl, fu, &x);
                    for (var b = 0u; b < nl; b += 1u) {
                        sweep[lane_at(m + a * nl + b)] += fa * category_deriv(b, c, l, fl, fu, &x);
                    }
                }
            }
        }
    }
}
