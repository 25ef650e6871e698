// Shared by every term kind and the reductions of the log-likelihood
// kernel (crates/mlmix-integrate/src/gpu.rs lays the buffers out; the CPU
// twin of each function is named beside it). f32 throughout: the CPU sums
// the clusters' log-likelihoods in f64.

// The plan's tables (u32): a header, then the terms, covariate lists,
// the slot of each term in each class combination, the combinations of each
// between-level combination, the node columns, the clusters' first rows and
// the normal blocks' tables (block.wgsl), at the offsets the header gives.
@group(0) @binding(0) var<storage, read> plan: array<u32>;
// The data, row-major (n_rows x n_cols), then each row's frequency weight.
@group(0) @binding(1) var<storage, read> rows: array<f32>;
// Each term state's prepared parameters (per evaluation).
@group(0) @binding(2) var<storage, read> params: array<f32>;
// Per pass (or per cluster and pass): the node's dims coordinates, then the
// log of its weight.
@group(0) @binding(3) var<storage, read> nodes: array<f32>;
// Per cluster of the chunk and pass: the cluster's log-density given the
// pass plus the pass's log weight.
@group(0) @binding(4) var<storage, read_write> pass_ll: array<f32>;
// Per cluster of the chunk: its log-likelihood.
@group(0) @binding(5) var<storage, read_write> cluster_ll: array<f32>;
// Per cluster of the chunk and lane of the second sweep (`n_slice` floats
// each, interleaved: entry i of a cluster's lane l at i × SCORES_LANES + l,
// `lane_at`; scores.wgsl): its score,
// Σ over passes and rows of the posterior weight times each term state's
// derivatives, laid out as the parameters (`n_score`), their magnitudes
// (`n_score`), the term states' weight sums (`n_wsum`, with the
// information), the information blocks of the terms with covariates
// (`n_mats`), then per between-level combination the sums of the
// passes' posteriors p, p z and p z z' (1 + dims + dims² each).
@group(0) @binding(7) var<storage, read_write> sweep: array<f32>;
// Per cluster of the chunk and lane (MAX_SLOTS floats, interleaved as in
// `sweep`; scores.wgsl): the posterior weights of a row's term states at
// their slots, in the second sweep.
// (Not a private array beside `vals`: on Mesa's lavapipe the second
// private array of 128 gave garbage beyond about 64 slots in use.)
@group(0) @binding(8) var<storage, read_write> state_w: array<f32>;

// Per cluster of the chunk, its slice of `sweep` summed over its lanes
// (n_slice floats); then, with the gradient alone, per run of clusters
// and entry of the score and its magnitudes their sums (scores.wgsl:
// sum_lanes, sum_clusters, sum_runs).
@group(0) @binding(9) var<storage, read_write> totals: array<f32>;

struct Chunk {
    // first cluster of the chunk
    j0: u32,
    // clusters in the chunk
    nj: u32,
    // passes per cluster (between-level combinations x nodes)
    n_pass: u32,
    // 0: every cluster shares the nodes; 1: each has its own
    per_cluster: u32,
    // invocations per row of the 2-D dispatch (workgroups per row x 64)
    row: u32,
    // floats of a cluster's score in `sweep` (the parameters' count, or 0
    // without the gradient)
    n_score: u32,
    // floats of a cluster's slice of `sweep`: the score and its magnitudes,
    // the weight sums, the information blocks, then the moments' sums if
    // wanted
    n_slice: u32,
    // 1: `cluster_scores` writes the moments' sums; 0: not
    want_moments: u32,
    // the passes whose scores this dispatch of `cluster_scores` adds (the
    // first one also zeroes the slices and adds the moments)
    pass0: u32,
    pass1: u32,
    // floats of a cluster's state weight sums in `sweep` (the information's
    // from weights alone: scores.wgsl, add_weight_sums), or 0
    n_wsum: u32,
    // floats of a cluster's information blocks of the terms with
    // covariates in `sweep` (scores.wgsl: add_term_info), or 0
    n_mats: u32,
}
@group(0) @binding(6) var<uniform> chunk: Chunk;

// Per invocation: a row's term states' values at their slots (MAX_SLOTS).
var<private> vals: array<f32, 128>;

// header positions (gpu.rs: Header)
const H_TERMS: u32 = 0u;
const H_COMBOS: u32 = 1u;
const H_BETWEEN: u32 = 2u;
const H_DIMS: u32 = 3u;
const H_COLS: u32 = 4u;
const H_ROWS: u32 = 5u;
const H_CLUSTERED: u32 = 6u;
const H_NODES: u32 = 7u;
const H_TERMS_AT: u32 = 8u;
const H_COVS_AT: u32 = 9u;
const H_SLOT_AT: u32 = 10u;
const H_BETWEEN_AT: u32 = 11u;
const H_VIRTUAL_AT: u32 = 12u;
const H_STARTS_AT: u32 = 13u;
const H_BLOCKS_AT: u32 = 14u;
const H_WSUM_AT: u32 = 15u;
const H_MATS_AT: u32 = 16u;
// the moment form's section (moment.wgsl), 0 where the device does not
// take the form
const H_MOM_AT: u32 = 17u;

// a term's descriptor: TERM_WORDS u32 at H_TERMS_AT + t * TERM_WORDS
const TERM_WORDS: u32 = 12u;
const T_KIND: u32 = 0u;
const T_COL: u32 = 1u;
const T_NCAT: u32 = 2u;
const T_LINK: u32 = 3u;
const T_NCOVS: u32 = 4u;
const T_COVS: u32 = 5u;
const T_PARAMS: u32 = 6u;
const T_STRIDE: u32 = 7u;
const T_CLUSTER_LEVEL: u32 = 8u;
const T_CLASSES: u32 = 9u;
const T_SLOT: u32 = 10u;
const T_STATES: u32 = 11u;

const KIND_CATEGORICAL: u32 = 0u;
const KIND_NORMAL: u32 = 1u;
const KIND_LOGIT: u32 = 2u;
const KIND_GUESSING: u32 = 3u;
const KIND_NOMINAL: u32 = 4u;
const KIND_BLOCK: u32 = 5u;
const LINK_LOGIT: u32 = 0u;
const NO_COLUMN: u32 = 0xffffffffu;

// the integration dimensions a kernel holds (gpu.rs: MAX_DIMS)
const MAX_DIMS: u32 = 8u;
// the term states of a row (gpu.rs: MAX_SLOTS): each term's states at its
// slots, as the CPU's slot-major buffers (layout.rs)
const MAX_SLOTS: u32 = 128u;
// log(0) stand-in: f32 has room, and WGSL promises nothing of infinities
const LOG_ZERO: f32 = -1.0e30;

fn term_word(t: u32, w: u32) -> u32 {
    return plan[plan[H_TERMS_AT] + t * TERM_WORDS + w];
}

fn is_missing(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

// covariate column `c` of row `r` at node `z`: a data column, or a node
// column z[dim] times a data column (or 1) (plan.rs: VirtualCol)
fn covariate(r: u32, c: u32, z: ptr<function, array<f32, 8>>) -> f32 {
    let n_cols = plan[H_COLS];
    if c < n_cols {
        return rows[r * n_cols + c];
    }
    let v = plan[H_VIRTUAL_AT] + 2u * (c - n_cols);
    let zv = (*z)[plan[v]];
    let mult = plan[v + 1u];
    if mult == NO_COLUMN {
        return zv;
    }
    return zv * rows[r * n_cols + mult];
}

// the most covariates of a term whose information the device accumulates
// (gpu.rs: MAX_INFO_COVS)
const MAX_INFO_COVS: u32 = 16u;

// a term's covariates on row r (its first MAX_INFO_COVS) into x
fn gather_covariates(t: u32, r: u32, z: ptr<function, array<f32, 8>>, x: ptr<function, array<f32, 16>>) {
    let n = min(term_word(t, T_NCOVS), MAX_INFO_COVS);
    let at = plan[H_COVS_AT] + term_word(t, T_COVS);
    for (var i = 0u; i < n; i += 1u) {
        (*x)[i] = covariate(r, plan[at + i], z);
    }
}

// Σ β x over the first q covariates gathered in x, the coefficients at
// params[p..] (`linear` without reading the covariates again)
fn linear_x(p: u32, q: u32, x: ptr<function, array<f32, 16>>) -> f32 {
    var e = 0.0;
    for (var i = 0u; i < min(q, MAX_INFO_COVS); i += 1u) {
        e += params[p + i] * (*x)[i];
    }
    return e;
}

// regressor a of a term's local parameters: 1 (a = 0), covariate a − 1 (a
// in 1..=q), 1 beyond (a class logit's parent slots)
fn regressor(a: u32, q: u32, x: ptr<function, array<f32, 16>>) -> f32 {
    let k = min(select(0u, a - 1u, a > 0u), MAX_INFO_COVS - 1u);
    return select(1.0, (*x)[k], a > 0u && a <= q);
}

// Σ β x over a term's covariates, the coefficients at params[p..]
fn linear(t: u32, p: u32, r: u32, z: ptr<function, array<f32, 8>>) -> f32 {
    let n = term_word(t, T_NCOVS);
    let at = plan[H_COVS_AT] + term_word(t, T_COVS);
    var e = 0.0;
    for (var i = 0u; i < n; i += 1u) {
        let x = covariate(r, plan[at + i], z);
        if x != 0.0 {
            e += params[p + i] * x;
        }
    }
    return e;
}

// adds v to a cluster's score entry at `at` in `sweep`, and to its
// magnitude `n_score` entries on the magnitude of what v was computed
// from, `mag` (at least |v|: where v is a difference, the sum of its
// operands' magnitudes, which its rounding error is relative to; the
// rounding bound's, gpu.rs: GPU_SCORE_EPS)
fn add_score(at: u32, v: f32, mag: f32) {
    sweep[lane_at(at)] += v;
    sweep[lane_at(at + chunk.n_score)] += mag;
}

// sweep[at + i] += g x_i over a term's covariates (the score of their
// coefficients, g the derivative in the linear predictor, `mag` the
// magnitude g was computed from, as in add_score)
fn add_linear(t: u32, at: u32, r: u32, z: ptr<function, array<f32, 8>>, g: f32, mag: f32) {
    let n = term_word(t, T_NCOVS);
    let cv = plan[H_COVS_AT] + term_word(t, T_COVS);
    for (var i = 0u; i < n; i += 1u) {
        let x = covariate(r, plan[cv + i], z);
        // (an item dummy of long data is 0 on the other items' rows)
        if x != 0.0 {
            add_score(at + i, g * x, mag * abs(x));
        }
    }
}

// Σ_i |params[p + i] x_i| over a term's covariates: the magnitude of
// `linear`'s sum
fn linear_abs(t: u32, p: u32, r: u32, z: ptr<function, array<f32, 8>>) -> f32 {
    let n = term_word(t, T_NCOVS);
    let at = plan[H_COVS_AT] + term_word(t, T_COVS);
    var e = 0.0;
    for (var i = 0u; i < n; i += 1u) {
        e += abs(params[p + i] * covariate(r, plan[at + i], z));
    }
    return e;
}

// An online log-sum-exp: the running maximum and the sum of exp(v − m).
struct Lse {
    m: f32,
    s: f32,
}

fn lse_new() -> Lse {
    return Lse(LOG_ZERO, 0.0);
}

// adds v to the log-sum-exp (one exp)
fn lse_add(acc: ptr<function, Lse>, v: f32) {
    if v > (*acc).m {
        (*acc).s = (*acc).s * exp((*acc).m - v) + 1.0;
        (*acc).m = v;
    } else {
        (*acc).s += exp(v - (*acc).m);
    }
}

fn lse_value(acc: Lse) -> f32 {
    return acc.m + log(acc.s);
}

// ln(1 + e^t) (categorical.rs: softplus)
fn softplus(t: f32) -> f32 {
    return max(t, 0.0) + log(1.0 + exp(-abs(t)));
}

// ln erfc(x) for x >= 0 (Numerical Recipes' erfcc in logs: relative error
// of erfc below 1.2e-7, no underflow in the tail)
fn log_erfc(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * x);
    let poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277))))))));
    return log(t) - x * x + poly;
}

// ln F(t) of the link: the logistic or the standard normal distribution
// function (link.rs: log_cdf)
fn log_cdf(link: u32, t: f32) -> f32 {
    if link == LINK_LOGIT {
        return -softplus(-t);
    }
    let x = t * 0.70710678;
    if x <= 0.0 {
        return -0.69314718 + log_erfc(-x);
    }
    return log(1.0 - 0.5 * exp(log_erfc(x)));
}

// F(t) of the link
fn cdf(link: u32, t: f32) -> f32 {
    return exp(log_cdf(link, t));
}

// ln f(t), the link's density (link.rs: the derivative of F)
fn log_density(link: u32, t: f32) -> f32 {
    if link == LINK_LOGIT {
        return -softplus(t) - softplus(-t);
    }
    return -0.5 * t * t - 0.91893853;
}
