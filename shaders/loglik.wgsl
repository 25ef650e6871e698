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
fn term_values(t: u32, r: u32, z: ptr<function, array<f32, 8>>, vals: ptr<function, array<f32, 128>>) {
    switch term_word(t, T_KIND) {
        case KIND_CATEGORICAL: {
            categorical_values(t, r, z, vals);
        }
        case KIND_NORMAL: {
            normal_values(t, r, z, vals);
        }
        default: {
            logit_values(t, r, z, vals);
        }
    }
}

@compute @workgroup_size(64)
fn pass_densities(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = gid.y * chunk.row + gid.x;
    if idx >= chunk.nj * chunk.n_pass {
        return;
    }
    let jl = idx / chunk.n_pass;
    let ps = idx % chunk.n_pass;
    let nq = plan[H_NODES];
    let b = ps / nq;
    let dims = plan[H_DIMS];
    var node = (ps % nq) * (dims + 1u);
    if chunk.per_cluster == 1u {
        node = idx * (dims + 1u);
    }
    var z: array<f32, 8>;
    for (var d = 0u; d < dims; d += 1u) {
        z[d] = nodes[node + d];
    }
    let log_w = nodes[node + dims];
    let n_terms = plan[H_TERMS];
    let n_cols = plan[H_COLS];
    let clustered = plan[H_CLUSTERED] == 1u;
    let j = chunk.j0 + jl;
    let r0 = plan[plan[H_STARTS_AT] + j];
    let r1 = plan[plan[H_STARTS_AT] + j + 1u];
    let combos_at = plan[H_BETWEEN_AT];
    let k0 = plan[combos_at + b];
    let k1 = plan[combos_at + b + 1u];
    let list = combos_at + plan[H_BETWEEN] + 1u;
    let weights = plan[H_ROWS] * n_cols;
    var vals: array<f32, 128>;
    var total = 0.0;
    for (var r = r0; r < r1; r += 1u) {
        // the terms' states, a cluster-level term's on the first row only
        for (var t = 0u; t < n_terms; t += 1u) {
            if term_word(t, T_CLUSTER_LEVEL) == 1u && r != r0 {
                let slot = term_word(t, T_SLOT);
                for (var s = 0u; s < term_word(t, T_STATES); s += 1u) {
                    vals[slot + s] = 0.0;
                }
            } else {
                term_values(t, r, &z, &vals);
            }
        }
        var acc = lse_new();
        for (var ki = k0; ki < k1; ki += 1u) {
            let k = plan[list + ki];
            var v = 0.0;
            for (var t = 0u; t < n_terms; t += 1u) {
                v += vals[plan[plan[H_SLOT_AT] + k * n_terms + t]];
            }
            lse_add(&acc, v);
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
