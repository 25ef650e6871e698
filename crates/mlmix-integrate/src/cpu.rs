//! The CPU backend: rayon across fixed-size chunks of clusters, term-major
//! kernels inside a chunk, reductions in chunk order.
//!
//! Layout: a chunk's buffers are slot-major: one slot per state of every
//! term (term `t`'s states start at slot `offset[t]`), each slot holding the
//! chunk's rows contiguously. A class combination `k` reads the slots
//! `slot_of_combo[k]` (one per term), so its log-density is a sum of whole
//! slot rows, and the log-sum-exp and posterior weights are loops over rows
//! that vectorise.
//!
//! Determinism: chunks have a fixed size and are processed in waves of a
//! fixed number of chunks; each wave's results are collected in chunk order
//! and added sequentially. Neither depends on the thread count, so the sums
//! (and so every result) are the same for 1 and N threads.

use std::sync::Arc;

use mlmix_kernels::eval::{self, InfoAcc, Scratch, Slots};
use mlmix_kernels::{EngineData, NONE, Plan, Prepared};
use rayon::prelude::*;

use crate::{Backend, BackendError, Evaluation, Grid, Want};

/// Clusters per chunk.
const CHUNK: usize = 256;
/// Chunks evaluated in parallel before their results are reduced.
const WAVE: usize = 64;

/// Evaluates the cluster-likelihood loop on the CPU.
pub struct CpuBackend {
    plan: Arc<Plan>,
    data: Arc<EngineData>,
    grid: Grid,
    pool: Option<Arc<rayon::ThreadPool>>,
    /// Where each term's states start in a row buffer.
    offsets: Vec<usize>,
    /// Total states of all terms (slots per chunk buffer).
    stride: usize,
    /// For each combination, the slot of each term: `[k * n_terms + t]`.
    slot_of_combo: Vec<u32>,
}

impl CpuBackend {
    /// A backend for a plan and its data. `pool` is the thread pool to run
    /// in (`None`: the caller's current pool).
    pub fn new(
        plan: Arc<Plan>,
        data: Arc<EngineData>,
        pool: Option<Arc<rayon::ThreadPool>>,
    ) -> Result<Self, BackendError> {
        if data.cluster_starts.windows(2).any(|w| w[1] != w[0] + 1) {
            return Err(BackendError::Unsupported(
                "clusters of several rows need the two-level engine, which is not available yet"
                    .into(),
            ));
        }
        let mut offsets = Vec::with_capacity(plan.terms.len());
        let mut stride = 0;
        for t in &plan.terms {
            offsets.push(stride);
            stride += t.n_states;
        }
        let nt = plan.terms.len();
        let mut slot_of_combo = vec![0u32; plan.n_combos * nt];
        for k in 0..plan.n_combos {
            for (t, term) in plan.terms.iter().enumerate() {
                slot_of_combo[k * nt + t] = (offsets[t] + term.state_of_combo[k] as usize) as u32;
            }
        }
        Ok(CpuBackend {
            plan,
            data,
            grid: Grid::single(),
            pool,
            offsets,
            stride,
            slot_of_combo,
        })
    }

    fn threads(&self) -> usize {
        self.pool
            .as_ref()
            .map_or_else(rayon::current_num_threads, |p| p.current_num_threads())
    }

    fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(p) => p.install(f),
            None => f(),
        }
    }

    fn slots(&self, t: usize) -> Slots {
        Slots {
            stride: CHUNK,
            offset: self.offsets[t],
        }
    }
}

/// Per-chunk working buffers, reused across the chunks of one worker. All
/// are slot-major: slot (or combination) first, then the chunk's rows.
struct Workspace {
    vals: Vec<f64>,
    w: Vec<f64>,
    /// Per combination: its log-density, then exp(· − max), then the
    /// posterior probability.
    lj: Vec<f64>,
    /// Per row: the maximum over combinations, then the sum of exps.
    max: Vec<f64>,
    sum: Vec<f64>,
    row_scores: Vec<f64>,
    scratch: Scratch,
}

impl Workspace {
    fn new(plan: &Plan, stride: usize) -> Self {
        Workspace {
            vals: vec![0.0; CHUNK * stride],
            w: vec![0.0; CHUNK * stride],
            lj: vec![0.0; plan.n_combos * CHUNK],
            max: vec![0.0; CHUNK],
            sum: vec![0.0; CHUNK],
            row_scores: Vec::new(),
            scratch: Scratch::default(),
        }
    }
}

/// What one chunk adds to the totals.
struct ChunkOut {
    loglik: f64,
    grads: Vec<Vec<f64>>,
    infos: Vec<InfoAcc>,
    meat: Vec<f64>,
    posteriors: Vec<f64>,
    cluster_ll: Vec<f64>,
}

/// `acc[i] += x[i]` over a row range.
#[inline]
fn add_rows(acc: &mut [f64], x: &[f64]) {
    for (a, b) in acc.iter_mut().zip(x) {
        *a += b;
    }
}

impl CpuBackend {
    fn chunk(&self, prep: &Prepared, c: usize, want: Want, ws: &mut Workspace) -> ChunkOut {
        let plan = &*self.plan;
        let data = &*self.data;
        let r0 = c * CHUNK;
        let r1 = (r0 + CHUNK).min(data.n_rows());
        let nr = r1 - r0;
        let nc = plan.n_combos;
        let nt = plan.terms.len();
        let n_phi = plan.n_phi;
        let freq = &data.weights[r0..r1];
        for (t, term) in plan.terms.iter().enumerate() {
            eval::term_values(
                term,
                &prep.terms[t],
                data,
                r0,
                r1,
                self.slots(t),
                &mut ws.scratch,
                &mut ws.vals,
            );
        }
        let mut out = ChunkOut {
            loglik: 0.0,
            grads: Vec::new(),
            infos: Vec::new(),
            meat: Vec::new(),
            posteriors: if want.posteriors {
                vec![0.0; nr * nc]
            } else {
                Vec::new()
            },
            cluster_ll: if want.posteriors {
                vec![0.0; nr]
            } else {
                Vec::new()
            },
        };
        // log-density of each combination: a sum of its terms' slots
        let log_w0 = self.grid.log_weights[0];
        let max = &mut ws.max[..nr];
        max.fill(f64::NEG_INFINITY);
        for k in 0..nc {
            let lj = &mut ws.lj[k * CHUNK..k * CHUNK + nr];
            lj.fill(log_w0);
            for &sl in &self.slot_of_combo[k * nt..(k + 1) * nt] {
                let sl = sl as usize;
                add_rows(lj, &ws.vals[sl * CHUNK..sl * CHUNK + nr]);
            }
            for (m, &v) in max.iter_mut().zip(lj.iter()) {
                *m = m.max(v);
            }
        }
        // log-sum-exp per row; the exps become the posteriors
        let sum = &mut ws.sum[..nr];
        sum.fill(0.0);
        for k in 0..nc {
            let lj = &mut ws.lj[k * CHUNK..k * CHUNK + nr];
            for ((v, &m), s) in lj.iter_mut().zip(max.iter()).zip(sum.iter_mut()) {
                *v = (*v - m).exp();
                *s += *v;
            }
        }
        for i in 0..nr {
            let m = max[i];
            if !m.is_finite() {
                out.loglik = f64::NEG_INFINITY;
                continue;
            }
            let ll = m + sum[i].ln();
            out.loglik += freq[i] * ll;
            if want.posteriors {
                out.cluster_ll[i] = ll;
            }
        }
        if !out.loglik.is_finite() {
            return out;
        }
        for s in sum.iter_mut() {
            *s = 1.0 / *s;
        }
        for k in 0..nc {
            let lj = &mut ws.lj[k * CHUNK..k * CHUNK + nr];
            for (v, inv) in lj.iter_mut().zip(sum.iter()) {
                *v *= inv;
            }
            if want.posteriors {
                for (i, &p) in lj.iter().enumerate() {
                    out.posteriors[i * nc + k] = p;
                }
            }
        }
        let need_w = want.gradient || want.information || want.meat;
        if !need_w {
            return out;
        }
        // posterior weight of each term state: the sum over the
        // combinations that use it
        for sl in 0..self.stride {
            ws.w[sl * CHUNK..sl * CHUNK + nr].fill(0.0);
        }
        for k in 0..nc {
            for &sl in &self.slot_of_combo[k * nt..(k + 1) * nt] {
                let sl = sl as usize;
                let (w, lj) = (&mut ws.w, &ws.lj);
                add_rows(
                    &mut w[sl * CHUNK..sl * CHUNK + nr],
                    &lj[k * CHUNK..k * CHUNK + nr],
                );
            }
        }
        if want.gradient || want.information {
            for (t, term) in plan.terms.iter().enumerate() {
                let mut g = vec![
                    0.0;
                    if want.gradient {
                        term.n_term_params()
                    } else {
                        0
                    }
                ];
                let mut acc = InfoAcc::new(term);
                eval::term_accumulate(
                    term,
                    &prep.terms[t],
                    data,
                    r0,
                    r1,
                    self.slots(t),
                    &ws.w,
                    freq,
                    &mut ws.scratch,
                    want.gradient.then_some(g.as_mut_slice()),
                    want.information.then_some(&mut acc),
                );
                if want.gradient {
                    out.grads.push(g);
                }
                if want.information {
                    out.infos.push(acc);
                }
            }
        }
        if want.meat {
            // per-row scores in phi space, then their weighted outer products
            ws.row_scores.clear();
            ws.row_scores.resize(nr * n_phi, 0.0);
            for (t, term) in plan.terms.iter().enumerate() {
                let idx = &term.phi_index;
                let rs = &mut ws.row_scores;
                eval::term_scores(
                    term,
                    &prep.terms[t],
                    data,
                    r0,
                    r1,
                    self.slots(t),
                    &ws.w,
                    &mut ws.scratch,
                    |i, slot, v| {
                        let pi = idx[slot];
                        if pi != NONE {
                            rs[i * n_phi + pi as usize] += v;
                        }
                    },
                );
            }
            out.meat = vec![0.0; n_phi * n_phi];
            for i in 0..nr {
                let s = &ws.row_scores[i * n_phi..(i + 1) * n_phi];
                let f = freq[i];
                for a in 0..n_phi {
                    let sa = f * s[a];
                    if sa == 0.0 {
                        continue;
                    }
                    let row = &mut out.meat[a * n_phi..(a + 1) * n_phi];
                    for (mv, sb) in row[a..].iter_mut().zip(&s[a..]) {
                        *mv += sa * sb;
                    }
                }
            }
        }
        out
    }
}

impl Backend for CpuBackend {
    fn describe(&self) -> String {
        format!("cpu ({} threads)", self.threads())
    }

    fn plan(&self) -> &Plan {
        &self.plan
    }

    fn data(&self) -> &EngineData {
        &self.data
    }

    fn evaluate(&self, phi: &[f64], want: Want) -> Result<Evaluation, BackendError> {
        let plan = &*self.plan;
        let prep = eval::prepare(plan, phi)?;
        let n = self.data.n_rows();
        let n_chunks = n.div_ceil(CHUNK);
        let n_phi = plan.n_phi;
        let mut loglik = 0.0;
        let mut grads: Vec<Vec<f64>> = plan
            .terms
            .iter()
            .map(|t| vec![0.0; t.n_term_params()])
            .collect();
        let mut infos: Vec<InfoAcc> = plan.terms.iter().map(InfoAcc::new).collect();
        let mut meat = if want.meat {
            vec![0.0; n_phi * n_phi]
        } else {
            Vec::new()
        };
        let mut posteriors = Vec::new();
        let mut cluster_ll = Vec::new();
        if want.posteriors {
            posteriors.reserve(n * plan.n_combos);
            cluster_ll.reserve(n);
        }
        let mut w0 = 0;
        while w0 < n_chunks {
            let w1 = (w0 + WAVE).min(n_chunks);
            let outs: Vec<ChunkOut> = if w1 - w0 == 1 {
                // one chunk: no need to wake other threads
                let mut ws = Workspace::new(plan, self.stride);
                vec![self.chunk(&prep, w0, want, &mut ws)]
            } else {
                self.install(|| {
                    (w0..w1)
                        .into_par_iter()
                        .map_init(
                            || Workspace::new(plan, self.stride),
                            |ws, c| self.chunk(&prep, c, want, ws),
                        )
                        .collect()
                })
            };
            for o in outs {
                loglik += o.loglik;
                for (g, og) in grads.iter_mut().zip(&o.grads) {
                    for (a, b) in g.iter_mut().zip(og) {
                        *a += b;
                    }
                }
                for (i, oi) in infos.iter_mut().zip(&o.infos) {
                    i.add(oi);
                }
                for (a, b) in meat.iter_mut().zip(&o.meat) {
                    *a += b;
                }
                posteriors.extend_from_slice(&o.posteriors);
                cluster_ll.extend_from_slice(&o.cluster_ll);
            }
            w0 = w1;
        }
        let mut ev = Evaluation {
            loglik,
            gradient: Vec::new(),
            information: Vec::new(),
            meat: Vec::new(),
            posteriors,
            cluster_loglik: cluster_ll,
        };
        if !loglik.is_finite() {
            ev.loglik = f64::NEG_INFINITY;
            return Ok(ev);
        }
        if want.gradient {
            let mut g = vec![0.0; n_phi];
            for (term, tg) in plan.terms.iter().zip(&grads) {
                for (j, &pi) in term.phi_index.iter().enumerate() {
                    if pi != NONE {
                        g[pi as usize] += tg[j];
                    }
                }
            }
            ev.gradient = g;
        }
        if want.information {
            let mut info = vec![0.0; n_phi * n_phi];
            for ((term, acc), tp) in plan.terms.iter().zip(infos.iter_mut()).zip(&prep.terms) {
                eval::finish_info(term, tp, acc);
                let nl = term.n_local;
                for set in 0..term.n_sets {
                    let idx = &term.phi_index[set * nl..(set + 1) * nl];
                    let m = &acc.mats[set * nl * nl..(set + 1) * nl * nl];
                    for (a, &pa) in idx.iter().enumerate() {
                        if pa == NONE {
                            continue;
                        }
                        for (b, &pb) in idx.iter().enumerate() {
                            if pb != NONE {
                                info[pa as usize * n_phi + pb as usize] += m[a * nl + b];
                            }
                        }
                    }
                }
            }
            ev.information = info;
        }
        if want.meat {
            for a in 0..n_phi {
                for b in 0..a {
                    meat[a * n_phi + b] = meat[b * n_phi + a];
                }
            }
            ev.meat = meat;
        }
        Ok(ev)
    }
}
