//! The CPU backend: rayon across fixed-size chunks of clusters, term-major
//! kernels inside a chunk, reductions in chunk order.
//!
//! Determinism: chunks have a fixed size and are processed in waves of a
//! fixed number of chunks; each wave's results are collected in chunk order
//! and added sequentially. Neither depends on the thread count, so the sums
//! (and so every result) are the same for 1 and N threads.

use std::sync::Arc;

use mlmix_kernels::eval::{self, InfoAcc, Scratch};
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
        Ok(CpuBackend {
            plan,
            data,
            grid: Grid::single(),
            pool,
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
}

/// Per-chunk working buffers, reused across chunks of one worker.
struct Workspace {
    vals: Vec<Vec<f64>>,
    w: Vec<Vec<f64>>,
    scores: Vec<Vec<f64>>,
    lj: Vec<f64>,
    dense: Vec<f64>,
    scratch: Scratch,
}

impl Workspace {
    fn new(plan: &Plan) -> Self {
        Workspace {
            vals: plan
                .terms
                .iter()
                .map(|t| vec![0.0; CHUNK * t.n_states])
                .collect(),
            w: plan
                .terms
                .iter()
                .map(|t| vec![0.0; CHUNK * t.n_states])
                .collect(),
            scores: plan
                .terms
                .iter()
                .map(|t| vec![0.0; CHUNK * t.n_term_params()])
                .collect(),
            lj: vec![0.0; plan.n_combos],
            dense: vec![0.0; plan.n_phi],
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

impl CpuBackend {
    fn chunk(&self, prep: &Prepared, c: usize, want: Want, ws: &mut Workspace) -> ChunkOut {
        let plan = &*self.plan;
        let data = &*self.data;
        let r0 = c * CHUNK;
        let r1 = (r0 + CHUNK).min(data.n_rows());
        let nr = r1 - r0;
        let nc = plan.n_combos;
        let n_phi = plan.n_phi;
        for (t, term) in plan.terms.iter().enumerate() {
            eval::term_values(
                term,
                &prep.terms[t],
                data,
                r0,
                r1,
                &mut ws.scratch,
                &mut ws.vals[t],
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
        let need_w = want.gradient || want.information || want.meat;
        for w in ws.w.iter_mut() {
            w.iter_mut().for_each(|x| *x = 0.0);
        }
        for r in 0..nr {
            for (k, lj) in ws.lj.iter_mut().enumerate() {
                let mut s = self.grid.log_weights[0];
                for (t, term) in plan.terms.iter().enumerate() {
                    s += ws.vals[t][r * term.n_states + term.state_of_combo[k] as usize];
                }
                *lj = s;
            }
            let ll = eval::log_sum_exp(&ws.lj);
            let freq = data.weights[r0 + r];
            out.loglik += freq * ll;
            if !ll.is_finite() {
                continue;
            }
            if want.posteriors {
                out.cluster_ll[r] = ll;
            }
            for k in 0..nc {
                let p = (ws.lj[k] - ll).exp();
                if want.posteriors {
                    out.posteriors[r * nc + k] = p;
                }
                if need_w {
                    for (t, term) in plan.terms.iter().enumerate() {
                        ws.w[t][r * term.n_states + term.state_of_combo[k] as usize] += p;
                    }
                }
            }
        }
        if !out.loglik.is_finite() || !need_w {
            return out;
        }
        if want.gradient || want.meat {
            for (t, term) in plan.terms.iter().enumerate() {
                let width = term.n_term_params();
                let sc = &mut ws.scores[t][..nr * width];
                sc.iter_mut().for_each(|x| *x = 0.0);
                eval::term_scores(
                    term,
                    &prep.terms[t],
                    data,
                    r0,
                    r1,
                    &ws.w[t],
                    &mut ws.scratch,
                    sc,
                );
                if want.gradient {
                    let mut g = vec![0.0; width];
                    for r in 0..nr {
                        let f = data.weights[r0 + r];
                        for (gj, s) in g.iter_mut().zip(&sc[r * width..(r + 1) * width]) {
                            *gj += f * s;
                        }
                    }
                    out.grads.push(g);
                }
            }
            if want.meat {
                out.meat = vec![0.0; n_phi * n_phi];
                for r in 0..nr {
                    ws.dense.iter_mut().for_each(|x| *x = 0.0);
                    for (t, term) in plan.terms.iter().enumerate() {
                        let width = term.n_term_params();
                        for (j, &pi) in term.phi_index.iter().enumerate() {
                            if pi != NONE {
                                ws.dense[pi as usize] += ws.scores[t][r * width + j];
                            }
                        }
                    }
                    let f = data.weights[r0 + r];
                    for a in 0..n_phi {
                        let sa = f * ws.dense[a];
                        if sa == 0.0 {
                            continue;
                        }
                        let row = &mut out.meat[a * n_phi..(a + 1) * n_phi];
                        for (m, sb) in row[a..].iter_mut().zip(&ws.dense[a..]) {
                            *m += sa * sb;
                        }
                    }
                }
            }
        }
        if want.information {
            for (t, term) in plan.terms.iter().enumerate() {
                let ns = term.n_states;
                for r in 0..nr {
                    let f = data.weights[r0 + r];
                    for x in &mut ws.w[t][r * ns..(r + 1) * ns] {
                        *x *= f;
                    }
                }
                let mut acc = InfoAcc::new(term);
                eval::term_info(
                    term,
                    &prep.terms[t],
                    data,
                    r0,
                    r1,
                    &ws.w[t],
                    &mut ws.scratch,
                    &mut acc,
                );
                out.infos.push(acc);
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
            let outs: Vec<ChunkOut> = self.install(|| {
                (w0..w1)
                    .into_par_iter()
                    .map_init(
                        || Workspace::new(plan),
                        |ws, c| self.chunk(&prep, c, want, ws),
                    )
                    .collect()
            });
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
