// The cluster-likelihood loop's log-likelihood on the device (the twin of
// the CPU backend's first sweep and pass log-sum-exp: crates/mlmix-integrate
// /src/cpu.rs, first_sweep and pass_posteriors).
//
// Work decomposition: `pass_densities` gives one invocation to each
// (cluster, pass) of the chunk; it walks the cluster's rows; for each row
// it evaluates every term's states at the pass's node into its slots (the
// terms' kinds dispatched below), then each class combination of the
// pass's between-level combination sums its terms' slots; a row's
// log-likelihood is the log-sum-exp over the combinations, and the cluster's log-density given the pass the
// (frequency-weighted) sum over its rows. `cluster_logliks` gives one
// invocation to each cluster: the log-sum-exp over its passes. Nothing sits
// in workgroup memory; each invocation holds its row's slots (MAX_SLOTS
// f32), reads the cluster's rows and the parameters (cached) and writes one
// f32.

// every state of term t on row r at its slots (eval/mod.rs: term_values)
fn term_values(t: u32, r: u32, z: ptr<function, array<f32, 8>>, vals: ptr<private, array<f32, 128>>) {
    switch term_word(t, T_KIND) {
        case KIND_CATEGORICAL: {
            categorical_values(t, r, z, vals);
        }
        case KIND_NORMAL: {
            normal_values(t, r, z, vals);
        }
        case KIND_GUESSING: {
            guessing_values(t, r, z, vals);
        }
        case KIND_NOMINAL: {
            nominal_values(t, r, z, vals);
        }
        case KIND_BLOCK: {
            block_values(t, r, z, vals);
        }
        default: {
            logit_values(t, r, z, vals);
        }
    }
}

// the node of pass `ps` of entry `idx` (cluster of the chunk × passes +
// pass) into z; returns the log of its weight
fn pass_node(idx: u32, ps: u32, z: ptr<function, array<f32, 8>>) -> f32 {
    let dims = plan[H_DIMS];
    var node = (ps % plan[H_NODES]) * (dims + 1u);
    if chunk.per_cluster == 1u {
        node = idx * (dims + 1u);
    }
    for (var d = 0u; d < dims; d += 1u) {
        (*z)[d] = nodes[node + d];
    }
    return nodes[node + dims];
}

// every term's states on row r at node z into their slots, a cluster-level
// term's on the cluster's first row r0 only (0 elsewhere)
fn row_terms(r: u32, r0: u32, z: ptr<function, array<f32, 8>>, vals: ptr<private, array<f32, 128>>) {
    for (var t = 0u; t < plan[H_TERMS]; t += 1u) {
        if term_word(t, T_CLUSTER_LEVEL) == 1u && r != r0 {
            let slot = term_word(t, T_SLOT);
            for (var s = 0u; s < term_word(t, T_STATES); s += 1u) {
                (*vals)[slot + s] = 0.0;
            }
        } else {
            term_values(t, r, z, vals);
        }
    }
}

// the log-density of class combination k on the row whose states' values
// `vals` holds: the sum of its terms' slots
fn combo_value(k: u32, vals: ptr<private, array<f32, 128>>) -> f32 {
    let n_terms = plan[H_TERMS];
    var v = 0.0;
    for (var t = 0u; t < n_terms; t += 1u) {
        v += (*vals)[plan[plan[H_SLOT_AT] + k * n_terms + t]];
    }
    return v;
}

@compute @workgroup_size(64)
fn pass_densities(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = gid.y * chunk.row + gid.x;
    if idx >= chunk.nj * chunk.n_pass {
        return;
    }
    let jl = idx / chunk.n_pass;
    let ps = idx % chunk.n_pass;
    let b = ps / plan[H_NODES];
    var z: array<f32, 8>;
    let log_w = pass_node(idx, ps, &z);
    let clustered = plan[H_CLUSTERED] == 1u;
    let j = chunk.j0 + jl;
    let r0 = plan[plan[H_STARTS_AT] + j];
    let r1 = plan[plan[H_STARTS_AT] + j + 1u];
    let combos_at = plan[H_BETWEEN_AT];
    let k0 = plan[combos_at + b];
    let k1 = plan[combos_at + b + 1u];
    let list = combos_at + plan[H_BETWEEN] + 1u;
    let weights = plan[H_ROWS] * plan[H_COLS];
    var total = 0.0;
    for (var r = r0; r < r1; r += 1u) {
        row_terms(r, r0, &z, &vals);
        var acc = lse_new();
        for (var ki = k0; ki < k1; ki += 1u) {
            lse_add(&acc, combo_value(plan[list + ki], &vals));
        }
        let row_ll = lse_value(acc);
        total += select(row_ll, rows[weights + r] * row_ll, clustered);
    }
    pass_ll[idx] = log_w + total;
}

@compute @workgroup_size(64)
fn cluster_logliks(@builtin(global_invocation_id) gid: vec3<u32>) {
    let jl = gid.y * chunk.row + gid.x;
    if jl >= chunk.nj {
        return;
    }
    let at = jl * chunk.n_pass;
    var acc = lse_new();
    for (var p = 0u; p < chunk.n_pass; p += 1u) {
        let v = pass_ll[at + p];
        lse_add(&acc, v);
    }
    cluster_ll[jl] = lse_value(acc);
}
