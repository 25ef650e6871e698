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
