// The moment form's log-likelihood on the device: the twin of the CPU
// backend's first sweep in the moment form (crates/mlmix-integrate/src/cpu
// /moment.rs: first_sweep_moments, row_coefs and group_forward; the
// polynomials' stencil is poly.rs: mul_linear, the dot poly.rs: dot).
//
// A cluster's likelihood given a run of passes (the outer dimensions'
// node, the FMA-GoM's factor) is e^{log w} Π_r s_r Σ_a e_a M_a: s_r the
// sum over the combinations of row r's outer terms' probabilities, e_a the
// coefficients of Π_r Σ_k (a_rk / s_r) x_k, M_a the moments every cluster
// shares (computed by the host per evaluation, scaled per degree; the
// scale's log rides in the run's log weight: gpu/moment.rs).
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

// the plan's moment section (gpu/moment.rs: moment_words), at plan[H_MOM_AT]
const M_K: u32 = 0u;
const M_OUTER: u32 = 1u;
const M_OUTER_AT: u32 = 2u;
const M_COMBOS_AT: u32 = 3u;
const M_DEG_AT: u32 = 4u;
const M_NBR_AT: u32 = 5u;

// workgroup memory: two degrees of a polynomial (MOM_POLY entries each,
// gpu/moment.rs: MOM_POLY), the rows' scaled coefficients, partial sums
const MOM_POLY: u32 = 1536u;
var<workgroup> mom_p: array<f32, 3072>;
var<workgroup> mom_a: array<f32, 512>;
var<workgroup> mom_red: array<f32, 64>;

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
    let at = plan[plan[m + M_DEG_AT] + n];
    let count = (plan[nbr_at + n] - plan[nbr_at + n - 1u]) / k;
    let p0 = (n % 2u) * MOM_POLY + 1u;
    var dot = 0.0;
    for (var i = li; i < count; i += 64u) {
        dot += mom_p[p0 + i] * state_w[at + i];
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
