// The second sweep on the device: each cluster's score (the gradient's
// share of the cluster, by the Fisher identity the posterior expectation
// of the complete-data score) and the posterior moments of the nodes that
// adaptive quadrature centres its grids on (the twin of the CPU backend's
// second sweep, unit_moments and term_scores: crates/mlmix-integrate/src
// /cpu.rs, crates/mlmix-kernels/src/eval/mod.rs).
//
// Work decomposition: `cluster_scores` gives SCORES_LANES invocations
// (lanes) to each cluster of the chunk, after `pass_densities` and
// `cluster_logliks` have filled `pass_ll` and `cluster_ll`. Each lane walks
// every SCORES_LANES-th of the cluster's passes, in order, into a slice of
// its own; the lanes then sum their slices (below). A pass's posterior is
// exp(pass_ll − cluster_ll). The moments add
// it, times the node and its square, to the sums of the pass's
// between-level combination. The score (passes of posterior above
// NEGLIGIBLE_PASS only) walks the cluster's rows: their terms' values at
// the pass's node, each class combination's posterior given the pass and
// the row, summed over the combinations into each term state's weight
// (times the pass's posterior and the row's frequency), then each term's
// weighted derivatives added to the lane's score in `sweep` (n_score
// floats, laid out as the parameters). The lane is the only writer of its
// slice until the lanes' sum, which gives each entry of the cluster's
// slice to one lane; the CPU sums the clusters' in f64, in cluster order.

// passes of smaller posterior add nothing to the score (lib.rs:
// NEGLIGIBLE_PASS)
const NEGLIGIBLE_PASS: f32 = 1.0e-10;

// every term's weighted derivatives on row r into the cluster's score
// (eval/mod.rs: term_scores), a cluster-level term's on the first row only
fn term_scores(t: u32, r: u32, z: ptr<function, array<f32, 8>>, w0: u32, g0: u32) {
    switch term_word(t, T_KIND) {
        case KIND_CATEGORICAL: {
            categorical_scores(t, r, z, w0, g0);
        }
        case KIND_NORMAL: {
            normal_scores(t, r, z, w0, g0);
        }
        case KIND_GUESSING: {
            guessing_scores(t, r, z, w0, g0);
        }
        case KIND_NOMINAL: {
            nominal_scores(t, r, z, w0, g0);
        }
        case KIND_BLOCK: {
            block_scores(t, r, z, w0, g0);
        }
        default: {
            logit_scores(t, r, z, w0, g0);
        }
    }
}

// the moments' sums of pass `ps` (posterior `post`, node z) at m0 in
// `sweep`
fn add_moments(m0: u32, ps: u32, post: f32, z: ptr<function, array<f32, 8>>) {
    let dims = plan[H_DIMS];
    let per = 1u + dims + dims * dims;
    let m = m0 + (ps / plan[H_NODES]) * per;
    sweep[lane_at(m)] += post;
    for (var a = 0u; a < dims; a += 1u) {
        sweep[lane_at(m + 1u + a)] += post * (*z)[a];
        for (var c = 0u; c < dims; c += 1u) {
            sweep[lane_at(m + 1u + dims + a * dims + c)] += post * (*z)[a] * (*z)[c];
        }
    }
}

// the score's share of pass `ps` (posterior `post`, node z) of the cluster
// of rows r0 .. r1, at g0 in `sweep`
fn add_pass_scores(ps: u32, post: f32, z: ptr<function, array<f32, 8>>, r0: u32, r1: u32, w0: u32, g0: u32) {
    let n_terms = plan[H_TERMS];
    let b = ps / plan[H_NODES];
    let combos_at = plan[H_BETWEEN_AT];
    let k0 = plan[combos_at + b];
    let k1 = plan[combos_at + b + 1u];
    let list = combos_at + plan[H_BETWEEN] + 1u;
    let weights = plan[H_ROWS] * plan[H_COLS];
    for (var r = r0; r < r1; r += 1u) {
        row_terms(r, r0, z, &vals);
        var acc = lse_new();
        for (var ki = k0; ki < k1; ki += 1u) {
            lse_add(&acc, combo_value(plan[list + ki], &vals));
        }
        let row_ll = lse_value(acc);
        let scale = post * rows[weights + r];
        for (var t = 0u; t < n_terms; t += 1u) {
            let slot = term_word(t, T_SLOT);
            for (var s = 0u; s < term_word(t, T_STATES); s += 1u) {
                state_w[lane_at(w0 + slot + s)] = 0.0;
            }
        }
        for (var ki = k0; ki < k1; ki += 1u) {
            let k = plan[list + ki];
            let pk = scale * exp(combo_value(k, &vals) - row_ll);
            for (var t = 0u; t < n_terms; t += 1u) {
                state_w[lane_at(w0 + plan[plan[H_SLOT_AT] + k * n_terms + t])] += pk;
            }
        }
        if chunk.n_wsum > 0u {
            add_weight_sums(r, r0, w0, g0);
        }
        if chunk.n_mats > 0u {
            add_term_info(r, r0, z, w0, g0 + 2u * chunk.n_score + chunk.n_wsum);
        }
        for (var t = 0u; t < n_terms; t += 1u) {
            if term_word(t, T_CLUSTER_LEVEL) == 0u || r == r0 {
                term_scores(t, r, z, w0, g0);
            }
        }
    }
}

// Row r's term state weights (in `state_w`) added to the cluster's weight
// sums, after the score and its magnitudes in `sweep`, at each term's
// offset (H_WSUM_AT): the expected information of a term without
// covariates is its states' weight sums times what the parameters alone
// give (eval/mod.rs: term_info, finish_info). A categorical, normal or
// nominal term's on the rows that observe it, a normal block's per state
// and missing-data pattern (state-major), a class logit's on every row; a
// cluster-level term's on the cluster's first row.
fn add_weight_sums(r: u32, r0: u32, w0: u32, g0: u32) {
    let at = g0 + 2u * chunk.n_score;
    for (var t = 0u; t < plan[H_TERMS]; t += 1u) {
        let kind = term_word(t, T_KIND);
        var take = term_word(t, T_CLUSTER_LEVEL) == 0u || r == r0;
        var stride = 1u;
        var first = 0u;
        if kind == KIND_BLOCK {
            let pat = block_pattern(t, r);
            take = take && pat.m > 0u;
            stride = term_word(t, T_LINK);
            first = pat.idx;
        } else if kind != KIND_LOGIT {
            take = take && !is_missing(rows[r * plan[H_COLS] + term_word(t, T_COL)]);
        }
        if take {
            let off = at + plan[plan[H_WSUM_AT] + t] + first;
            let slot = term_word(t, T_SLOT);
            for (var s = 0u; s < term_word(t, T_STATES); s += 1u) {
                sweep[lane_at(off + s * stride)] += state_w[lane_at(w0 + slot + s)];
            }
        }
    }
}

// Row r's share of the information of each term with covariates and of
// each 3PL guessing term (its rows' own matrices: eval/mod.rs, term_info),
// added to the cluster's blocks at `at` in `sweep` plus the term's offset
// (H_MATS_AT: offset and n_local per term, n_local 0 for the terms whose
// information comes from the weight sums: gpu.rs, rows_own_information);
// a cluster-level term's on the cluster's first row.
fn add_term_info(r: u32, r0: u32, z: ptr<function, array<f32, 8>>, w0: u32, at: u32) {
    for (var t = 0u; t < plan[H_TERMS]; t += 1u) {
        let e = plan[H_MATS_AT] + 2u * t;
        let take = plan[e + 1u] > 0u && (term_word(t, T_CLUSTER_LEVEL) == 0u || r == r0);
        if take {
            let m0 = at + plan[e];
            switch term_word(t, T_KIND) {
                case KIND_CATEGORICAL: {
                    categorical_info(t, r, z, w0, m0);
                }
                case KIND_NORMAL: {
                    normal_info(t, r, z, w0, m0);
                }
                case KIND_NOMINAL: {
                    nominal_info(t, r, z, w0, m0);
                }
                case KIND_GUESSING: {
                    guessing_info(t, r, z, w0, m0);
                }
                case KIND_BLOCK: {
                    block_info(t, r, z, w0, m0, plan[e + 1u]);
                }
                default: {
                    logit_info(t, r, z, w0, m0, plan[e + 1u]);
                }
            }
        }
    }
}

// Invocations per workgroup of `cluster_scores` (gpu.rs: SCORES_GROUP)
// and lanes per cluster (gpu.rs: scores_lanes, dividing it): a workgroup
// holds SCORES_GROUP / SCORES_LANES clusters, and lane l of a cluster
// takes its passes l, l + SCORES_LANES, ... of the dispatch's block into a
// slice of its own (interleaved with the other lanes': `lane_at`); at the
// last block the cluster's lanes sum their slices, in lane order, into
// the cluster's slice in `totals`. (An earlier form, one invocation per
// cluster and several clusters per workgroup, computed wrong posteriors
// on Mesa's lavapipe, which then ran it one invocation per workgroup;
// this one computes right there and on an H200.)
override SCORES_GROUP: u32 = 64u;
override SCORES_LANES: u32 = 64u;

// The invocation's lane (`cluster_scores` sets it). Its entry i of its
// cluster's slice and state weights is at i × SCORES_LANES + lane: the
// lanes of a warp, which do the same entry at once (the same row, term
// and state at their own passes), touch one cache line.
var<private> lane_id: u32;

fn lane_at(i: u32) -> u32 {
    return i * SCORES_LANES + lane_id;
}

// cluster jl's lanes' slices summed into its slice in `totals`, entries
// lane, lane + SCORES_LANES, ... by this lane (the lanes in order)
fn sum_lanes(lane: u32, jl: u32) {
    for (var e = lane; e < chunk.n_slice; e += SCORES_LANES) {
        let at = (jl * chunk.n_slice + e) * SCORES_LANES;
        var v = 0.0;
        for (var l = 0u; l < SCORES_LANES; l += 1u) {
            v += sweep[at + l];
        }
        totals[jl * chunk.n_slice + e] = v;
    }
}

@compute @workgroup_size(SCORES_GROUP)
fn cluster_scores(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) n_groups: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let per_group = SCORES_GROUP / SCORES_LANES;
    let jl = (wid.y * n_groups.x + wid.x) * per_group + li / SCORES_LANES;
    let lane = li % SCORES_LANES;
    lane_id = lane;
    // (no early return: every invocation reaches the barrier)
    if jl < chunk.nj {
        lane_passes(jl, lane);
    }
    if chunk.pass1 == chunk.n_pass {
        if SCORES_LANES > 1u {
            storageBarrier();
        }
        if jl < chunk.nj {
            sum_lanes(lane, jl);
        }
    }
}

// lane `lane`'s passes of cluster jl in this dispatch's block: the
// moments' sums (in the first block) and the score, into its slice
fn lane_passes(jl: u32, lane: u32) {
    // the cluster's slice: its score and magnitudes, its weight sums, then
    // its moments' sums
    let g0 = jl * chunk.n_slice;
    let m0 = g0 + 2u * chunk.n_score + chunk.n_wsum + chunk.n_mats;
    if chunk.pass0 == 0u {
        for (var i = g0; i < g0 + chunk.n_slice; i += 1u) {
            sweep[lane_at(i)] = 0.0;
        }
    }
    let ll = cluster_ll[jl];
    let j = chunk.j0 + jl;
    let r0 = plan[plan[H_STARTS_AT] + j];
    let r1 = plan[plan[H_STARTS_AT] + j + 1u];
    var z: array<f32, 8>;
    if chunk.want_moments == 1u && chunk.pass0 == 0u {
        for (var ps = lane; ps < chunk.n_pass; ps += SCORES_LANES) {
            let idx = jl * chunk.n_pass + ps;
            let post = exp(pass_ll[idx] - ll);
            _ = pass_node(idx, ps, &z);
            add_moments(m0, ps, post, &z);
        }
    }
    if chunk.n_score > 0u {
        let w0 = jl * MAX_SLOTS;
        for (var ps = chunk.pass0 + lane; ps < chunk.pass1; ps += SCORES_LANES) {
            let idx = jl * chunk.n_pass + ps;
            let post = exp(pass_ll[idx] - ll);
            _ = pass_node(idx, ps, &z);
            if post >= NEGLIGIBLE_PASS {
                add_pass_scores(ps, post, &z, r0, r1, w0, g0);
            }
        }
    }
}

// The clusters' scores summed on the device, where only the gradient is
// asked (with the moments, every cluster's slice comes down: adaptation
// needs each cluster's): `sum_clusters` gives one invocation to each
// entry of the score, its magnitudes and the weight sums (2 × n_score +
// n_wsum) and each run of
// SUM_RUN clusters, which sums the run's slices in cluster order,
// compensated (Kahan), into `totals` after the clusters' slices
// (run-major); `sum_runs` gives one to each entry, which sums the runs in
// order, compensated, into the first run's place. Fixed orders: the same
// bits every time.

// clusters per run of `sum_clusters` (gpu.rs: SUM_RUN)
const SUM_RUN: u32 = 256u;

// a compensated sum: the running sum and the low-order part lost from it
struct Kahan {
    s: f32,
    c: f32,
}

fn kahan_add(acc: ptr<function, Kahan>, v: f32) {
    let y = v - (*acc).c;
    let t = (*acc).s + y;
    (*acc).c = (t - (*acc).s) - y;
    (*acc).s = t;
}

@compute @workgroup_size(64)
fn sum_clusters(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n_entries = 2u * chunk.n_score + chunk.n_wsum + chunk.n_mats;
    let idx = gid.y * chunk.row + gid.x;
    let n_runs = (chunk.nj + SUM_RUN - 1u) / SUM_RUN;
    if idx >= n_entries * n_runs {
        return;
    }
    let e = idx % n_entries;
    let run = idx / n_entries;
    var acc = Kahan(0.0, 0.0);
    for (var jl = run * SUM_RUN; jl < min(chunk.nj, (run + 1u) * SUM_RUN); jl += 1u) {
        kahan_add(&acc, totals[jl * chunk.n_slice + e]);
    }
    totals[chunk.nj * chunk.n_slice + run * n_entries + e] = acc.s;
}

@compute @workgroup_size(64)
fn sum_runs(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n_entries = 2u * chunk.n_score + chunk.n_wsum + chunk.n_mats;
    let e = gid.y * chunk.row + gid.x;
    if e >= n_entries {
        return;
    }
    let n_runs = (chunk.nj + SUM_RUN - 1u) / SUM_RUN;
    var acc = Kahan(0.0, 0.0);
    let at = chunk.nj * chunk.n_slice;
    for (var run = 0u; run < n_runs; run += 1u) {
        kahan_add(&acc, totals[at + run * n_entries + e]);
    }
    totals[at + e] = acc.s;
}
