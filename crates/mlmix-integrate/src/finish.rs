//! From what the chunks of a pass over the data return to an
//! [`Evaluation`]: the reduction of the chunks' outputs in chunk order, and
//! the chain rule from the terms' parameters and the extended parameters to
//! phi (the gradient, the expected information and the meat). It does not
//! depend on the backend: any backend that hands over [`ChunkOut`]s in
//! chunk order gets the same results.

use mlmix_kernels::eval::{self, InfoAcc};
use mlmix_kernels::{NONE, Plan, Prepared};

use crate::{Evaluation, Junctions, StepDim, Want};

/// What one chunk adds to the totals.
pub(crate) struct ChunkOut {
    pub loglik: f64,
    pub grads: Vec<Vec<f64>>,
    pub infos: Vec<InfoAcc>,
    pub meat: Vec<f64>,
    pub posteriors: Vec<f64>,
    pub cluster_ll: Vec<f64>,
    pub moments: Vec<f64>,
    /// Per step dimension: the junction range of each cluster.
    pub junctions: Vec<(Vec<f64>, Vec<f64>)>,
    /// In the moment form: per degree, the chunk's clusters' polynomials
    /// summed with weights post / L (see `cpu/moment.rs`).
    pub poly: Vec<Vec<f64>>,
}

impl ChunkOut {
    /// Nothing yet, with room for the posteriors of `n_post` (row,
    /// combination) pairs and `nj` clusters' log-likelihoods if wanted.
    pub fn empty(want: Want, n_post: usize, nj: usize) -> ChunkOut {
        let (posteriors, cluster_ll) = if want.posteriors {
            (vec![0.0; n_post], vec![0.0; nj])
        } else {
            (Vec::new(), Vec::new())
        };
        ChunkOut {
            loglik: 0.0,
            grads: Vec::new(),
            infos: Vec::new(),
            meat: Vec::new(),
            posteriors,
            cluster_ll,
            moments: Vec::new(),
            junctions: Vec::new(),
            poly: Vec::new(),
        }
    }
}

/// The sums of the chunks' outputs so far.
pub(crate) struct Totals {
    loglik: f64,
    grads: Vec<Vec<f64>>,
    infos: Vec<InfoAcc>,
    meat: Vec<f64>,
    posteriors: Vec<f64>,
    cluster_ll: Vec<f64>,
    moments: Vec<f64>,
    junctions: Vec<Junctions>,
}

impl Totals {
    /// Empty totals for a pass at `prep` over `n_rows` rows in `n_clusters`
    /// clusters, on a grid with step dimensions `steps`.
    pub fn new(
        plan: &Plan,
        prep: &Prepared,
        steps: &[StepDim],
        want: Want,
        n_rows: usize,
        n_clusters: usize,
    ) -> Self {
        let n_ext = plan.n_ext;
        let grads: Vec<Vec<f64>> = plan
            .terms
            .iter()
            .map(|t| vec![0.0; t.n_term_params()])
            .collect();
        let infos: Vec<InfoAcc> = plan.terms.iter().map(InfoAcc::new).collect();
        let meat = if want.meat {
            vec![0.0; n_ext * n_ext]
        } else {
            Vec::new()
        };
        let mut posteriors = Vec::new();
        let mut cluster_ll = Vec::new();
        let moments = Vec::new();
        let junctions: Vec<Junctions> = steps
            .iter()
            .map(|st| Junctions {
                dim: st.dim,
                sigma: prep.ext[st.sigma],
                lo: Vec::new(),
                hi: Vec::new(),
            })
            .collect();
        if want.posteriors {
            posteriors.reserve(n_rows * plan.n_combos);
            cluster_ll.reserve(n_clusters);
        }
        Totals {
            loglik: 0.0,
            grads,
            infos,
            meat,
            posteriors,
            cluster_ll,
            moments,
            junctions,
        }
    }

    /// Adds the next chunk's output (chunks in order).
    pub fn add(&mut self, o: &ChunkOut) {
        self.loglik += o.loglik;
        for (g, og) in self.grads.iter_mut().zip(&o.grads) {
            for (a, b) in g.iter_mut().zip(og) {
                *a += b;
            }
        }
        for (i, oi) in self.infos.iter_mut().zip(&o.infos) {
            i.add(oi);
        }
        for (a, b) in self.meat.iter_mut().zip(&o.meat) {
            *a += b;
        }
        self.posteriors.extend_from_slice(&o.posteriors);
        self.cluster_ll.extend_from_slice(&o.cluster_ll);
        self.moments.extend_from_slice(&o.moments);
        for (acc, (lo, hi)) in self.junctions.iter_mut().zip(&o.junctions) {
            acc.lo.extend_from_slice(lo);
            acc.hi.extend_from_slice(hi);
        }
    }

    /// The evaluation: the totals, with the gradient, the information and
    /// the meat (as wanted) carried to phi.
    pub fn finish(self, plan: &Plan, prep: &Prepared, want: Want) -> Evaluation {
        let Totals {
            loglik,
            grads,
            mut infos,
            meat,
            posteriors,
            cluster_ll,
            moments,
            junctions,
        } = self;
        let mut ev = Evaluation {
            loglik,
            gradient: Vec::new(),
            information: Vec::new(),
            meat: Vec::new(),
            posteriors,
            cluster_loglik: cluster_ll,
            moments,
            // one per step dimension of the grid
            junctions: if want.moments && !junctions.is_empty() {
                junctions
            } else {
                Vec::new()
            },
        };
        if !loglik.is_finite() {
            ev.loglik = f64::NEG_INFINITY;
            return ev;
        }
        if want.gradient {
            ev.gradient = finish_gradient(plan, prep, &grads);
        }
        if want.information {
            ev.information = finish_information(plan, prep, &mut infos);
        }
        if want.meat {
            ev.meat = finish_meat(plan, prep, meat);
        }
        ev
    }
}

/// d logL / d phi from the terms' gradients (per term, over its
/// parameters): gathered into the extended parameters through each term's
/// `phi_index`, then carried to phi through `prep.jac`.
pub(crate) fn finish_gradient(plan: &Plan, prep: &Prepared, grads: &[Vec<f64>]) -> Vec<f64> {
    carry_to_phi(plan, prep, grads, |d| d)
}

/// Per-term vectors over the terms' parameters gathered into the extended
/// parameters and carried to phi through `prep.jac`, each factor as
/// `factor` makes it.
fn carry_to_phi(
    plan: &Plan,
    prep: &Prepared,
    per_term: &[Vec<f64>],
    factor: fn(f64) -> f64,
) -> Vec<f64> {
    let mut g = vec![0.0; plan.n_ext];
    for (term, tg) in plan.terms.iter().zip(per_term) {
        for (j, &pi) in term.phi_index.iter().enumerate() {
            if pi != NONE {
                g[pi as usize] += tg[j];
            }
        }
    }
    for &(e, p, d) in &prep.jac {
        g[p as usize] += factor(d) * g[e as usize];
    }
    g.truncate(plan.n_phi);
    g
}

/// A bound on the gradient's error in phi from bounds on the terms'
/// gradients' errors (non-negative): [`finish_gradient`] with the chain
/// rule's factors taken in magnitude.
#[cfg_attr(not(feature = "gpu"), allow(dead_code))]
pub(crate) fn finish_gradient_bound(plan: &Plan, prep: &Prepared, bounds: &[Vec<f64>]) -> Vec<f64> {
    carry_to_phi(plan, prep, bounds, f64::abs)
}

/// The expected information in phi (`n_phi x n_phi`) from the terms'
/// accumulators: each finished (see [`eval::finish_info`], which changes
/// them), gathered into the extended parameters, then contracted to phi.
pub(crate) fn finish_information(plan: &Plan, prep: &Prepared, infos: &mut [InfoAcc]) -> Vec<f64> {
    let n_ext = plan.n_ext;
    let mut info = vec![0.0; n_ext * n_ext];
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
                        info[pa as usize * n_ext + pb as usize] += m[a * nl + b];
                    }
                }
            }
        }
    }
    if n_ext == plan.n_phi {
        info
    } else {
        contract(&info, n_ext, plan.n_phi, &prep.jac)
    }
}

/// The meat in phi (`n_phi x n_phi`) from its upper triangle in the
/// extended parameters (`n_ext x n_ext`, as the chunks add it up):
/// symmetrised, then contracted to phi.
pub(crate) fn finish_meat(plan: &Plan, prep: &Prepared, mut meat: Vec<f64>) -> Vec<f64> {
    let n_ext = plan.n_ext;
    for a in 0..n_ext {
        for b in 0..a {
            meat[a * n_ext + b] = meat[b * n_ext + a];
        }
    }
    if n_ext == plan.n_phi {
        meat
    } else {
        contract(&meat, n_ext, plan.n_phi, &prep.jac)
    }
}

/// `K' M K` for the chain rule from the extended parameters to phi, where
/// `K` is the identity on phi and `jac` below it.
fn contract(m: &[f64], n_ext: usize, n_phi: usize, jac: &[(u32, u32, f64)]) -> Vec<f64> {
    // K as dense rows: ext entry e -> list of (p, d)
    let mut rows: Vec<Vec<(usize, f64)>> = (0..n_ext)
        .map(|e| {
            if e < n_phi {
                vec![(e, 1.0)]
            } else {
                Vec::new()
            }
        })
        .collect();
    for &(e, p, d) in jac {
        rows[e as usize].push((p as usize, d));
    }
    let mut out = vec![0.0; n_phi * n_phi];
    for a in 0..n_ext {
        if rows[a].is_empty() {
            continue;
        }
        for b in 0..n_ext {
            let v = m[a * n_ext + b];
            if v == 0.0 || rows[b].is_empty() {
                continue;
            }
            for &(pa, da) in &rows[a] {
                for &(pb, db) in &rows[b] {
                    out[pa * n_phi + pb] += da * v * db;
                }
            }
        }
    }
    out
}
