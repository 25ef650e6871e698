// The moment form on the device: its log-likelihood, the twin of the CPU
// backend's first sweep in the moment form (crates/mlmix-integrate/src/cpu
// /moment.rs: first_sweep_moments, row_coefs and group_forward; the
// polynomials' stencil is poly.rs: mul_linear, the dot poly.rs: dot), and
// its gradient, the twin of the second sweep (below).
//
// A cluster's likelihood given a run of passes (the outer dimensions'
// node, the FMA-GoM's factor) is e^{log w} Π_r s_r Σ_a e_a M_a: s_r the
// sum over the combinations of row r's outer terms' probabilities, e_a the
// coefficients of Π_r Σ_k (a_rk / s_r) x_k, M_a the moments every cluster
// shares (computed by the host per evaluation, scaled per degree; the
// scale's log rides in the run's log weight: gpu/moment.rs). The moments
// follow the chunk's nodes in `nodes` (per degree at the plan's offsets).
//
// Work decomposition: `moment_densities` gives one workgroup to each
// (cluster, run) of the chunk. Its invocations take the cluster's rows in
// turn (their outer terms at the run's node, the coefficients scaled into
// workgroup memory), then the polynomial one row at a time, each
// invocation a share of the degree's monomials, a barrier between rows;
// the dot with the moments is summed in invocation order. The polynomials
// are dense over the monomials of one degree (1-based: entry 0 holds 0,
// which the neighbour tables name for a monomial without that variable),
// two degrees in workgroup memory. `cluster_logliks` (loglik.wgsl) then
// takes the log-sum-exp over the runs as over passes.
//
// The second sweep, `moment_scores` (below), gives one workgroup to each
// cluster and walks its runs.

// the plan's moment section (gpu/moment.rs: moment_words), at plan[H_MOM_AT]
const M_K: u32 = 0u;
const M_OUTER: u32 = 1u;
const M_OUTER_AT: u32 = 2u;
const M_COMBOS_AT: u32 = 3u;
const M_DEG_AT: u32 = 4u;
const M_NBR_AT: u32 = 5u;
const M_UP_AT: u32 = 6u;

// workgroup memory: two degrees of a polynomial (MOM_POLY entries each,
// gpu/moment.rs: MOM_POLY), the rows' scaled coefficients, partial sums
const MOM_POLY: u32 = 1536u;
var<workgroup> mom_p: array<f32, 3072>;
var<workgroup> mom_a: array<f32, 512>;
var<workgroup> mom_red: array<f32, 64>;

// where the moments start in `nodes`: after the chunk's (cluster, run)
// nodes, each `dims` coordinates and a log weight
fn moments_at(dims: u32) -> u32 {
    return chunk.nj * chunk.n_pass * (dims + 1u);
}

// monomials of degree r (the neighbour tables' rows; 1 at degree 0)
fn degree_count(m: u32, r: u32) -> u32 {
    let nbr_at = plan[m + M_NBR_AT];
    if r == 0u {
        return 1u;
    }
    return (plan[nbr_at + r] - plan[nbr_at + r - 1u]) / plan[m + M_K];
}

// the log-density of combination `c` (plan's list) on row r from its outer
// terms' values at their slots
fn outer_value(m: u32, c: u32, vals: ptr<private, array<f32, 128>>) -> f32 {
    let n_terms = plan[H_TERMS];
    var v = 0.0;
    for (var i = 0u; i < plan[m + M_OUTER]; i += 1u) {
        let t = plan[plan[m + M_OUTER_AT] + i];
        v += (*vals)[plan[plan[H_SLOT_AT] + c * n_terms + t]];
    }
    return v;
}

// row r's coefficients at node z, scaled to sum to 1, into mom_a from
// `at`; returns the log of their sum (LOG_ZERO where it is 0)
fn row_coefs(m: u32, r: u32, z: ptr<function, array<f32, 8>>, at: u32) -> f32 {
    for (var i = 0u; i < plan[m + M_OUTER]; i += 1u) {
        term_values(plan[plan[m + M_OUTER_AT] + i], r, z, &vals);
    }
    let k = plan[m + M_K];
    var acc = lse_new();
    for (var c = 0u; c < k; c += 1u) {
        let v = outer_value(m, plan[plan[m + M_COMBOS_AT] + c], &vals);
        mom_a[at + c] = v;
        lse_add(&acc, v);
    }
    let s = lse_value(acc);
    let alive = s > 0.5 * LOG_ZERO;
    for (var c = 0u; c < k; c += 1u) {
        mom_a[at + c] = select(0.0, exp(mom_a[at + c] - s), alive);
    }
    return select(LOG_ZERO, s, alive);
}

@compute @workgroup_size(64)
fn moment_densities(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let idx = wid.y * (chunk.row / 64u) + wid.x;
    let entries = chunk.nj * chunk.n_pass;
    // (every invocation of a workgroup has the same idx: the barriers
    // below stay in uniform control flow)
    let live = idx < entries;
    let e = min(idx, entries - 1u);
    let m = plan[H_MOM_AT];
    let k = plan[m + M_K];
    let j = chunk.j0 + e / chunk.n_pass;
    let r0 = plan[plan[H_STARTS_AT] + j];
    let n = plan[plan[H_STARTS_AT] + j + 1u] - r0;
    let dims = plan[H_DIMS];
    var z: array<f32, 8>;
    let node = e * (dims + 1u);
    for (var d = 0u; d < dims; d += 1u) {
        z[d] = nodes[node + d];
    }
    // the rows' coefficients; their logs' sum in invocation order
    var scale = 0.0;
    for (var i = li; i < n; i += 64u) {
        scale += row_coefs(m, r0 + i, &z, i * k);
    }
    mom_red[li] = scale;
    if li == 0u {
        mom_p[0] = 0.0;
        mom_p[1] = 1.0;
        mom_p[MOM_POLY] = 0.0;
    }
    workgroupBarrier();
    var total = 0.0;
    if li == 0u {
        for (var i = 0u; i < 64u; i += 1u) {
            total += mom_red[i];
        }
    }
    // the product of the rows' linear forms, one degree per row
    let nbr_at = plan[m + M_NBR_AT];
    for (var r = 1u; r <= n; r += 1u) {
        let src = ((r - 1u) % 2u) * MOM_POLY;
        let dst = (r % 2u) * MOM_POLY;
        let t0 = plan[nbr_at + r - 1u];
        let count = (plan[nbr_at + r] - t0) / k;
        let a = (r - 1u) * k;
        for (var i = li; i < count; i += 64u) {
            var q = 0.0;
            for (var c = 0u; c < k; c += 1u) {
                q += mom_a[a + c] * mom_p[src + plan[t0 + i * k + c]];
            }
            mom_p[dst + 1u + i] = q;
        }
        workgroupBarrier();
    }
    // Σ_a e_a M_a over degree n's monomials
    let at = moments_at(dims) + plan[plan[m + M_DEG_AT] + n];
    let count = (plan[nbr_at + n] - plan[nbr_at + n - 1u]) / k;
    let p0 = (n % 2u) * MOM_POLY + 1u;
    var dot = 0.0;
    for (var i = li; i < count; i += 64u) {
        dot += mom_p[p0 + i] * nodes[at + i];
    }
    mom_red[li] = dot;
    workgroupBarrier();
    if li == 0u && live {
        var l = 0.0;
        for (var i = 0u; i < 64u; i += 1u) {
            l += mom_red[i];
        }
        let ok = l > 0.0 && total > 0.5 * LOG_ZERO;
        pass_ll[e] = select(LOG_ZERO, nodes[node + dims] + total + log(l), ok);
    }
}

// ---------------------------------------------------------------------
// The second sweep in the moment form: the twin of the CPU backend's
// second_sweep_moments (cpu/moment.rs; the reverse pass is poly.rs:
// mul_linear_back). `moment_scores` gives one workgroup (SCORES_LANES =
// 64 lanes) to each cluster of the chunk, after `moment_densities` and
// `cluster_logliks` have filled `pass_ll` and `cluster_ll`. Per run of
// posterior above NEGLIGIBLE_PASS (the workgroup decides together) it forms the products P_0 .. P_n of the rows'
// linear forms, every degree kept in workgroup memory (mom_all), takes
// F = Σ_a e_a M_a, adds (post / F) P_n to the cluster's Ḡ (in `totals`,
// after its score), then runs the product backwards: B_n = M, and for
// r = n .. 1 row r's derivatives g_rk = Σ_a B_r[a] P_{r−1}[a − e_k]
// (each lane a share of the monomials, summed in lane order) and B_{r−1}
// = Σ_k a_rk B_r[· + e_k] (a gather through the tables one exponent up)
// into P_{r−1}'s place. Row r's weight of combination k is post a_rk g_rk
// / Σ_k a_rk g_rk; each lane then takes rows lane, lane + 64, ...: their
// outer terms' state weights from those, and their scores into the lane's
// slice of `sweep` (`state_w` per lane, as in cluster_scores). At the end
// the lanes' slices are summed, in lane order, into the cluster's slice
// of `totals` (its score and magnitudes, then Ḡ: `chunk.n_wsum` floats,
// so that sum_clusters and sum_runs sum it over the clusters too).

// workgroup memory: every degree of the products (1-based per degree:
// entry 0 holds 0), the lanes' partial sums per combination, the rows'
// weights per combination
const MOM_ALL: u32 = 6144u;
const MOM_K: u32 = 8u;
var<workgroup> mom_all: array<f32, 6144>;
var<workgroup> mom_part: array<f32, 512>;
var<workgroup> mom_w: array<f32, 512>;
var<workgroup> mom_busy: u32;

// lane li's share of `count` entries from `dst` in mom_all: entry i is
// Σ_c a_c mom_all[src + table[i k + c]] (the row's coefficients at `a` in
// mom_a, the table at plan word t0): the product by a row's linear form
// (the tables one exponent down) or its reverse (one up)
fn gather_all(li: u32, k: u32, a: u32, src: u32, t0: u32, count: u32, dst: u32) {
    for (var i = li; i < count; i += 64u) {
        var q = 0.0;
        for (var c = 0u; c < k; c += 1u) {
            q += mom_a[a + c] * mom_all[src + plan[t0 + i * k + c]];
        }
        mom_all[dst + i] = q;
    }
}

@compute @workgroup_size(64)
fn moment_scores(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let raw = wid.y * (chunk.row / 64u) + wid.x;
    // (every invocation of a workgroup has the same cluster: the barriers
    // stay in uniform control flow)
    let live = raw < chunk.nj;
    let jl = min(raw, chunk.nj - 1u);
    lane_id = li;
    let m = plan[H_MOM_AT];
    let k = plan[m + M_K];
    let j = chunk.j0 + jl;
    let r0 = plan[plan[H_STARTS_AT] + j];
    let n = plan[plan[H_STARTS_AT] + j + 1u] - r0;
    let dims = plan[H_DIMS];
    let n_runs = chunk.n_pass;
    let nbr_at = plan[m + M_NBR_AT];
    let up_at = plan[m + M_UP_AT];
    // the lane's slice (score and magnitudes) and state weights
    let g0 = jl * 2u * chunk.n_score;
    let w0 = jl * MAX_SLOTS;
    for (var i = 0u; i < 2u * chunk.n_score; i += 1u) {
        sweep[lane_at(g0 + i)] = 0.0;
    }
    // the cluster's Ḡ in its slice of `totals` (every degree's entries
    // zeroed, its own degree's summed below)
    let count_n = degree_count(m, n);
    let g_at = jl * chunk.n_slice + 2u * chunk.n_score + plan[plan[m + M_DEG_AT] + n];
    let mom = moments_at(dims) + plan[plan[m + M_DEG_AT] + n];
    for (var i = li; i < chunk.n_wsum; i += 64u) {
        if live {
            totals[jl * chunk.n_slice + 2u * chunk.n_score + i] = 0.0;
        }
    }
    storageBarrier();
    // the runs' posteriors, normalised to sum to 1: a cluster's
    // log-likelihood of a few thousand carries an f32 rounding of 1e-4,
    // which exp(pass_ll − ll) alone would pass to every posterior alike
    let ll = cluster_ll[jl];
    var post_sum = 0.0;
    for (var run = 0u; run < n_runs; run += 1u) {
        post_sum += exp(pass_ll[jl * n_runs + run] - ll);
    }
    let weights = plan[H_ROWS] * plan[H_COLS];
    let n_terms = plan[H_TERMS];
    for (var run = 0u; run < n_runs; run += 1u) {
        let idx = jl * n_runs + run;
        let post = exp(pass_ll[idx] - ll) / post_sum;
        // a run of negligible posterior adds nothing (as on the CPU): the
        // workgroup skips it together (the flag, loaded uniformly, keeps
        // the barriers below in uniform control flow)
        if li == 0u {
            mom_busy = select(0u, 1u, post >= NEGLIGIBLE_PASS);
        }
        let busy = workgroupUniformLoad(&mom_busy) == 1u;
        workgroupBarrier();
        if busy {
            var z: array<f32, 8>;
            for (var d = 0u; d < dims; d += 1u) {
                z[d] = nodes[idx * (dims + 1u) + d];
            }
            // the rows' scaled coefficients, then the products, every degree
            for (var i = li; i < n; i += 64u) {
                _ = row_coefs(m, r0 + i, &z, i * k);
            }
            if li == 0u {
                mom_all[0] = 0.0;
                mom_all[1] = 1.0;
            }
            workgroupBarrier();
            var lo = 0u;
            var hi = 2u;
            for (var r = 1u; r <= n; r += 1u) {
                let t0 = plan[nbr_at + r - 1u];
                let count = degree_count(m, r);
                let a = (r - 1u) * k;
                if li == 0u {
                    mom_all[hi] = 0.0;
                }
                gather_all(li, k, a, lo, t0, count, hi + 1u);
                workgroupBarrier();
                lo = hi;
                hi += count + 1u;
            }
            // F, in lane order; post / F, 0 for an impossible run
            var dot = 0.0;
            for (var i = li; i < count_n; i += 64u) {
                dot += mom_all[lo + 1u + i] * nodes[mom + i];
            }
            mom_red[li] = dot;
            workgroupBarrier();
            var f_big = 0.0;
            for (var l = 0u; l < 64u; l += 1u) {
                f_big += mom_red[l];
            }
            let f = select(0.0, post / f_big, f_big > 0.0);
            // Ḡ += f P_n; then B_n = M in P_n's place
            for (var i = li; i < count_n; i += 64u) {
                if live {
                    totals[g_at + i] += f * mom_all[lo + 1u + i];
                }
                mom_all[lo + 1u + i] = nodes[mom + i];
            }
            workgroupBarrier();
            // backwards: row r's derivatives, then B_{r−1} in P_{r−1}'s place
            var b_hi = lo;
            for (var r = n; r >= 1u; r -= 1u) {
                let count = degree_count(m, r);
                let count_lo = degree_count(m, r - 1u);
                let b_lo = b_hi - count_lo - 1u;
                let t0 = plan[nbr_at + r - 1u];
                let a = (r - 1u) * k;
                var part: array<f32, 8>;
                for (var i = li; i < count; i += 64u) {
                    let b = mom_all[b_hi + 1u + i];
                    for (var c = 0u; c < k; c += 1u) {
                        part[c] += b * mom_all[b_lo + plan[t0 + i * k + c]];
                    }
                }
                for (var c = 0u; c < k; c += 1u) {
                    mom_part[li * MOM_K + c] = part[c];
                }
                workgroupBarrier();
                if li < k {
                    var g = 0.0;
                    for (var l = 0u; l < 64u; l += 1u) {
                        g += mom_part[l * MOM_K + li];
                    }
                    mom_w[a + li] = mom_a[a + li] * g;
                }
                gather_all(li, k, a, b_hi, plan[up_at + r - 1u], count_lo, b_lo + 1u);
                workgroupBarrier();
                b_hi = b_lo;
            }
            // each lane's rows: their outer terms' state weights and scores
            let combos_at = plan[m + M_COMBOS_AT];
            for (var i = li; i < n; i += 64u) {
                let r = r0 + i;
                var total = 0.0;
                for (var c = 0u; c < k; c += 1u) {
                    total += mom_w[i * k + c];
                }
                let scale = select(0.0, post * rows[weights + r] / total, total > 0.0 && f > 0.0);
                for (var o = 0u; o < plan[m + M_OUTER]; o += 1u) {
                    let t = plan[plan[m + M_OUTER_AT] + o];
                    term_values(t, r, &z, &vals);
                    let slot = term_word(t, T_SLOT);
                    for (var s = 0u; s < term_word(t, T_STATES); s += 1u) {
                        state_w[lane_at(w0 + slot + s)] = 0.0;
                    }
                }
                for (var c = 0u; c < k; c += 1u) {
                    let combo = plan[combos_at + c];
                    for (var o = 0u; o < plan[m + M_OUTER]; o += 1u) {
                        let t = plan[plan[m + M_OUTER_AT] + o];
                        let at = plan[plan[H_SLOT_AT] + combo * n_terms + t];
                        state_w[lane_at(w0 + at)] += scale * mom_w[i * k + c];
                    }
                }
                for (var o = 0u; o < plan[m + M_OUTER]; o += 1u) {
                    term_scores(plan[plan[m + M_OUTER_AT] + o], r, &z, w0, g0);
                }
            }
            workgroupBarrier();
        }
    }
    // the lanes' slices summed, in lane order
    storageBarrier();
    for (var e = li; e < 2u * chunk.n_score; e += 64u) {
        var v = 0.0;
        for (var l = 0u; l < SCORES_LANES; l += 1u) {
            v += sweep[(g0 + e) * SCORES_LANES + l];
        }
        if live {
            totals[jl * chunk.n_slice + e] = v;
        }
    }
}
