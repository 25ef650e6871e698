// The twin of crates/mlmix-kernels/src/eval/logit.rs: the multinomial
// logit of a class variable. Its states are (parameter set, class); per
// state: [α + Σ γ (the set's class-on-class effects), β_1 .. β_q].

// logit.rs: values: every state's log-probability on row r, each set's
// logits less their log-sum-exp, at the term's slots
fn logit_values(t: u32, r: u32, z: ptr<function, array<f32, 8>>, vals: ptr<private, array<f32, 128>>) {
    let slot = term_word(t, T_SLOT);
    let n = term_word(t, T_STATES);
    let classes = term_word(t, T_CLASSES);
    let stride = term_word(t, T_STRIDE);
    let p0 = term_word(t, T_PARAMS);
    for (var first = 0u; first < n; first += classes) {
        var acc = lse_new();
        for (var k = first; k < first + classes; k += 1u) {
            let p = p0 + k * stride;
            let v = params[p] + linear(t, p + 1u, r, z);
            (*vals)[slot + k] = v;
            lse_add(&acc, v);
        }
        let lse = lse_value(acc);
        for (var k = first; k < first + classes; k += 1u) {
            (*vals)[slot + k] -= lse;
        }
    }
}

// logit.rs: scores: per parameter set with weights w_k summing to W, the
// derivative w_k − W π_k of each class's logit (π the softmax on row r),
// added to the cluster's score at `g0` for the intercept and (times x) the
// covariates' coefficients (the CPU adds the intercept's to the
// class-on-class effects folded into it; no `continue`: see
// categorical_scores). ln π_k is the row's value of the state, which
// `row_terms` left in `vals`.
fn logit_scores(t: u32, r: u32, z: ptr<function, array<f32, 8>>, w0: u32, g0: u32) {
    let slot = term_word(t, T_SLOT);
    let n = term_word(t, T_STATES);
    let classes = term_word(t, T_CLASSES);
    let stride = term_word(t, T_STRIDE);
    let p0 = term_word(t, T_PARAMS);
    for (var first = 0u; first < n; first += classes) {
        var total = 0.0;
        for (var k = first; k < first + classes; k += 1u) {
            total += state_w[lane_at(w0 + slot + k)];
        }
        let last = select(first, first + classes, total != 0.0);
        for (var k = first; k < last; k += 1u) {
            let p = p0 + k * stride;
            let prob = exp(vals[slot + k]);
            let g = state_w[lane_at(w0 + slot + k)] - total * prob;
            let mag = abs(state_w[lane_at(w0 + slot + k)]) + abs(total * prob);
            add_score(g0 + p, g, mag);
            add_linear(t, g0 + p + 1u, r, z, g, mag);
        }
    }
}

// logit.rs: info (with covariates): per parameter set with weights summing
// to W on row r, W (diag(π) − ππ') ⊗ z z' (z: 1, the covariates, 1 for
// the parent slots; `nl` local parameters per set, nl / classes per
// class), added to the set's information block at `m0` in `sweep` (laid
// out as the CPU's InfoAcc::mats). ln π_k is the row's value of the
// state, which `row_terms` left in `vals`.
fn logit_info(t: u32, r: u32, z: ptr<function, array<f32, 8>>, w0: u32, m0: u32, nl: u32) {
    let slot = term_word(t, T_SLOT);
    let n = term_word(t, T_STATES);
    let classes = term_word(t, T_CLASSES);
    let q = term_word(t, T_NCOVS);
    let per = nl / classes;
    var x: array<f32, 16>;
    gather_covariates(t, r, z, &x);
    for (var first = 0u; first < n; first += classes) {
        var total = 0.0;
        for (var k = first; k < first + classes; k += 1u) {
            total += state_w[lane_at(w0 + slot + k)];
        }
        let m = m0 + (first / classes) * nl * nl;
        let last = select(0u, classes, total != 0.0);
        for (var k1 = 0u; k1 < last; k1 += 1u) {
            let p1 = exp(vals[slot + first + k1]);
            for (var k2 = 0u; k2 < classes; k2 += 1u) {
                let p2 = exp(vals[slot + first + k2]);
                let cc = total * (select(0.0, p1, k1 == k2) - p1 * p2);
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
