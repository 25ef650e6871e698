//! The moment form on the device (shaders/moment.wgsl): for long data
//! whose class logits read no data (the GoM and FMA-GoM of
//! `cpu/moment.rs`), a cluster's likelihood given a run of passes is a
//! polynomial in the class probabilities against moments every cluster
//! shares. The host computes the moments once per evaluation (the CPU's
//! own, in f64), scales each degree's by its largest and uploads them in
//! f32 after the chunk's nodes; the device forms each (cluster, run)'s
//! polynomial in workgroup memory and takes its dot with them; each
//! cluster's log-sum-exp over its runs comes down in f32, summed in f64 as
//! on the general path. For the adaptation's posterior moments the runs'
//! log-densities come down too (one f32 per cluster and run, fewer bytes
//! than the moments themselves), and the host forms the moments from them
//! in f64 as the CPU does (`run_moments`).
//!
//! With the gradient, a second sweep (`moment_scores`) walks each
//! cluster's runs again: the products of its rows' linear forms, every
//! degree kept, then backwards the rows' posteriors over the combinations
//! (the outer terms' state weights, whose scores it adds as the general
//! sweep does) and the polynomial weighted by post / F (Ḡ). The device
//! sums the clusters' scores and Ḡ (compensated, as on the general
//! path); the host turns Ḡ into the inner terms' (the class logits')
//! gradient through the CPU's derivatives of the moments
//! (`CpuBackend::moment_inner_gradient`).
//!
//! A polynomial of degree r is dense over its monomials, in the order of
//! [`Triangles::monomials`]; the plan's moment section gives, per degree,
//! each monomial's neighbour one degree down along each variable (the
//! monomial with that exponent one less, 1-based, 0 where the exponent is
//! 0), so that multiplying by a row's linear form is a gather, and each
//! monomial's neighbour one degree up (the reverse pass's gather).

use std::collections::HashMap;

use mlmix_kernels::{Plan, Prepared};

use super::{
    BackendError, ChunkUniform, GROUP, GpuBackend, MAX_SLOTS, MAX_SWEEP_FLOATS, Resident, SUM_RUN,
    device_gradient, groups_of, read_back,
};
use crate::cpu::run_moments;
use crate::layout::{Layout, MomentForm};
use crate::nodes::node_of;
use crate::poly::Triangles;
use crate::{Adaptation, Backend, Evaluation, Want};

/// Monomials of one degree that a workgroup holds, less the leading 0
/// (shaders/moment.wgsl: MOM_POLY).
const MOM_POLY: usize = 1536;
/// Rows × combinations whose coefficients a workgroup holds
/// (shaders/moment.wgsl: mom_a).
const MOM_COEFS: usize = 512;
/// Monomials of every degree (each with a leading 0) and combinations
/// that the second sweep's workgroup holds (shaders/moment.wgsl: MOM_ALL,
/// MOM_K).
const MOM_ALL: usize = 6144;
const MOM_K: usize = 8;
/// Lanes of the second sweep's workgroup (shaders/moment.wgsl:
/// moment_scores' workgroup size, SCORES_LANES).
pub(super) const MOMENT_LANES: usize = 64;
/// Workgroup memory the second sweep needs, in bytes: `mom_all`,
/// `mom_part`, `mom_w`, `mom_a`, `mom_red` and `mom_busy`.
pub(super) const MOMENT_SCORES_SHARED: u32 = 4 * (6144 + 512 + 512 + 512 + 64 + 1);

/// Why the device does not take the moment form of `layout` (`None`: it
/// does; the form itself absent is a reason too).
pub(super) fn moment_unsupported(plan: &Plan, layout: &Layout) -> Option<String> {
    let (Some(mf), Some(bl)) = (layout.moments.as_ref(), layout.blocks.as_ref()) else {
        return Some("no moment form".into());
    };
    let (k, n_max) = (mf.poly.k, mf.poly.n_max);
    if mf.poly.count(n_max) >= MOM_POLY || n_max * k > MOM_COEFS {
        return Some(format!(
            "polynomials of {} monomials in {k} variables (the device holds {})",
            mf.poly.count(n_max),
            MOM_POLY - 1
        ));
    }
    if bl.outer_terms.iter().any(|&t| plan.terms[t].cluster_level) {
        return Some("a cluster-level term outside the class logits".into());
    }
    None
}

/// Whether the second sweep's workgroup holds `layout`'s polynomials:
/// every degree up to the largest, and the combinations.
pub(super) fn moment_scores_fit(layout: &Layout) -> bool {
    layout.moments.as_ref().is_some_and(|mf| {
        let t = &mf.poly;
        let all: usize = (0..=t.n_max).map(|r| t.count(r) + 1).sum();
        t.k <= MOM_K && all <= MOM_ALL
    })
}

/// The plan's moment section, to be placed at plan word `base`: the
/// number of variables, the outer terms, the combinations (the
/// variables' order), per degree the offset of its moments (u32::MAX for
/// a degree no cluster has), per degree 1..=n_max its neighbour table's
/// bounds and the tables, and per degree 0..n_max its table one degree up
/// (see the module's documentation).
pub(super) fn moment_words(layout: &Layout, base: usize) -> Vec<u32> {
    let (Some(mf), Some(bl)) = (layout.moments.as_ref(), layout.blocks.as_ref()) else {
        return Vec::new();
    };
    let t = &mf.poly;
    let (k, n_max) = (t.k, t.n_max);
    let combos = &layout.combos_of_between[0];
    let head = 7;
    let outer_at = base + head;
    let combos_at = outer_at + bl.outer_terms.len();
    let deg_at = combos_at + combos.len();
    let nbr_at = deg_at + n_max + 1;
    let down = neighbour_tables(t);
    let up = up_tables(t);
    let up_at = nbr_at + n_max + 1 + down.iter().map(Vec::len).sum::<usize>();
    let mut w = vec![
        k as u32,
        bl.outer_terms.len() as u32,
        outer_at as u32,
        combos_at as u32,
        deg_at as u32,
        nbr_at as u32,
        up_at as u32,
    ];
    w.extend(bl.outer_terms.iter().map(|&t| t as u32));
    w.extend(combos.iter().map(|&c| c as u32));
    let mut deg = vec![u32::MAX; n_max + 1];
    let mut at = 0;
    for &n in &mf.degrees {
        deg[n] = at as u32;
        at += t.count(n);
    }
    w.extend(deg);
    for (tables, at) in [(down, nbr_at), (up, up_at)] {
        let mut end = at + tables.len() + 1;
        w.push(end as u32);
        for table in &tables {
            end += table.len();
            w.push(end as u32);
        }
        for table in tables {
            w.extend(table);
        }
    }
    w
}

/// Per monomial of degree `r` (its exponents): its position in
/// [`Triangles::monomials`]' order.
fn positions(t: &Triangles, r: usize) -> HashMap<Vec<usize>, usize> {
    t.monomials(r)
        .into_iter()
        .enumerate()
        .map(|(i, (_, e))| (e, i))
        .collect()
}

/// Per degree 1..=n_max, per monomial (in [`Triangles::monomials`]'
/// order) and variable, the 1-based index of the monomial one degree down
/// with that variable's exponent one less (0 where it is 0).
fn neighbour_tables(t: &Triangles) -> Vec<Vec<u32>> {
    let mut below = positions(t, 0);
    let mut out = Vec::with_capacity(t.n_max);
    for r in 1..=t.n_max {
        let mono = t.monomials(r);
        let mut table = Vec::with_capacity(mono.len() * t.k);
        for (_, e) in &mono {
            for c in 0..t.k {
                if e[c] == 0 {
                    table.push(0);
                    continue;
                }
                let mut d = e.clone();
                d[c] -= 1;
                table.push(below[&d] as u32 + 1);
            }
        }
        out.push(table);
        below = positions(t, r);
    }
    out
}

/// Per degree 0..n_max, per monomial (in [`Triangles::monomials`]' order)
/// and variable, the 1-based index of the monomial one degree up with
/// that variable's exponent one more.
fn up_tables(t: &Triangles) -> Vec<Vec<u32>> {
    (0..t.n_max)
        .map(|r| {
            let above = positions(t, r + 1);
            let mut table = Vec::with_capacity(t.count(r) * t.k);
            for (_, e) in t.monomials(r) {
                for c in 0..t.k {
                    let mut u = e.clone();
                    u[c] += 1;
                    table.push(above[&u] as u32 + 1);
                }
            }
            table
        })
        .collect()
}

/// The shared moments `m` (per degree of `mf.degrees`, at their
/// entries) as the device reads them: per degree, in monomial order,
/// divided by their largest; and per degree (indexed by the degree
/// itself) the log of that divisor (−∞ for a degree whose moments are all
/// 0 or that no cluster has).
fn device_moments(mf: &MomentForm, m: &[Vec<f64>]) -> (Vec<f32>, Vec<f64>) {
    let mut out = Vec::new();
    let mut log_scale = vec![f64::NEG_INFINITY; mf.poly.n_max + 1];
    for ((&n, entries), mi) in mf.degrees.iter().zip(&mf.entries).zip(m) {
        let big = entries.iter().map(|&e| mi[e]).fold(0.0f64, f64::max);
        let inv = if big > 0.0 && big.is_finite() {
            log_scale[n] = big.ln();
            1.0 / big
        } else {
            0.0
        };
        out.extend(entries.iter().map(|&e| (mi[e] * inv) as f32));
    }
    (out, log_scale)
}

/// Ḡ as the device sums it (per degree, in monomial order, against the
/// scaled moments) as the CPU's second sweep sums it: per degree at the
/// CPU's entries (`MomentForm::entries`), against the moments themselves.
fn host_poly(mf: &MomentForm, dev: &[f64], log_scale: &[f64]) -> Vec<Vec<f64>> {
    let mut at = 0;
    mf.degrees
        .iter()
        .zip(&mf.entries)
        .map(|(&n, entries)| {
            let inv = if log_scale[n].is_finite() {
                (-log_scale[n]).exp()
            } else {
                0.0
            };
            let mut g = vec![0.0; mf.poly.size];
            for (&e, &v) in entries.iter().zip(&dev[at..at + entries.len()]) {
                g[e] = v * inv;
            }
            at += entries.len();
            g
        })
        .collect()
}

/// What one chunk of the moment form computes: with `n_score` the score
/// (floats per cluster) and the polynomials' entries, the second sweep
/// too.
#[derive(Clone, Copy)]
struct MomentSweep {
    n_runs: usize,
    n_score: usize,
    n_poly: usize,
}

impl MomentSweep {
    /// Floats of a cluster's slice of `totals`: its score, magnitudes and
    /// Ḡ (0 without the second sweep).
    fn n_slice(&self) -> usize {
        if self.n_score > 0 {
            2 * self.n_score + self.n_poly
        } else {
            0
        }
    }
}

/// What one chunk of the moment form brings back: per cluster its
/// log-likelihood; the sums of the second sweep (empty without it); per
/// cluster and run its log-density (empty unless asked for).
struct MomentBack {
    ll: Vec<f32>,
    totals: Vec<f32>,
    pass: Vec<f32>,
}

/// Appends to `out`, per cluster of a chunk, its posterior mass and the
/// posterior moments of the outer dimensions `outer` of `dims` over its
/// `n_runs` runs (the CPU's [`run_moments`]), from the runs'
/// log-densities `pass` and nodes `z` (f64, `dims` each); a cluster whose
/// densities are all 0 gets zeros.
fn add_run_moments(
    (outer, dims): (&[usize], usize),
    n_runs: usize,
    (pass, z): (&[f32], &[f64]),
    out: &mut Vec<f64>,
) {
    let per = 1 + dims + dims * dims;
    let mut post = vec![0.0; n_runs];
    for (l, z) in pass.chunks_exact(n_runs).zip(z.chunks_exact(n_runs * dims)) {
        let m = l
            .iter()
            .map(|&v| f64::from(v))
            .fold(f64::NEG_INFINITY, f64::max);
        let at = out.len();
        out.resize(at + per, 0.0);
        if !m.is_finite() {
            continue;
        }
        post.iter_mut()
            .zip(l)
            .for_each(|(p, &v)| *p = (f64::from(v) - m).exp());
        let s: f64 = post.iter().sum();
        post.iter_mut().for_each(|p| *p /= s);
        run_moments((outer, dims), &post, z, &mut out[at..]);
    }
}

impl GpuBackend {
    /// An evaluation at `prep` in the moment form on the device: the
    /// log-likelihood, with `want.gradient` the gradient and its rounding
    /// bound (as [`GpuBackend::device_eval`] gives them) and with
    /// `want.moments` the posterior moments (the CPU's
    /// [`run_moments`] from the runs' log-densities the device gives);
    /// `None` where the form does not apply on the grid `adapt` gives
    /// (adapted in an inner dimension).
    pub(super) fn moment_eval(
        &self,
        res: &Resident,
        prep: &Prepared,
        (params, n_params): (&wgpu::Buffer, usize),
        want: Want,
        adapt: Option<&Adaptation>,
    ) -> Result<Option<(Evaluation, Vec<f64>)>, BackendError> {
        let gradient = want.gradient;
        let layout = self.cpu.layout();
        let (Some(mf), Some(bl)) = (layout.moments.as_ref(), layout.blocks.as_ref()) else {
            return Ok(None);
        };
        let Some(sh) = self.cpu.gpu_shared(prep, adapt) else {
            return Ok(None);
        };
        let (moments, log_scale) = device_moments(mf, sh.moments());
        let sweep = MomentSweep {
            n_runs: bl.runs.len(),
            n_score: if gradient { n_params } else { 0 },
            n_poly: moments.len(),
        };
        let n_clusters = self.cpu.data().cluster_starts.len() - 1;
        let lane_floats = 2 * sweep.n_score + MAX_SLOTS;
        let sweep_cap = MAX_SWEEP_FLOATS.min(res.bind_floats);
        let mut per = (self.chunk_entries / sweep.n_runs.max(1)).max(1);
        if gradient {
            per = per
                .min(sweep_cap / (MOMENT_LANES * lane_floats))
                .min(res.bind_floats / (sweep.n_slice() + 1))
                .max(1);
        }
        let (mut total, mut max_abs_ll) = (0.0f64, 0.0f64);
        let mut sums = vec![0.0f64; 2 * sweep.n_score + sweep.n_poly];
        let mut post_moments = Vec::new();
        let mut j0 = 0;
        while j0 < n_clusters {
            let nj = per.min(n_clusters - j0);
            let (mut nodes, z) = self.run_nodes((j0, nj), adapt, &log_scale, want.moments);
            nodes.extend_from_slice(&moments);
            let back = self.moment_chunk(res, params, &nodes, (j0, nj), (sweep, want.moments))?;
            let (ll, totals) = (back.ll, back.totals);
            if want.moments {
                let outer = (&bl.outer_dims[..], self.cpu.grid().dims);
                add_run_moments(outer, sweep.n_runs, (&back.pass, &z), &mut post_moments);
            }
            for &l in &ll {
                total += f64::from(l);
                max_abs_ll = max_abs_ll.max(f64::from(l).abs());
            }
            for (s, &v) in sums.iter_mut().zip(&totals) {
                *s += f64::from(v);
            }
            j0 += nj;
        }
        let loglik = if total.is_finite() && total > -1e29 {
            total
        } else {
            f64::NEG_INFINITY
        };
        let mut ev = Evaluation {
            loglik,
            gradient: Vec::new(),
            information: Vec::new(),
            meat: Vec::new(),
            posteriors: Vec::new(),
            cluster_loglik: Vec::new(),
            moments: Vec::new(),
            junctions: Vec::new(),
        };
        if want.moments {
            self.cpu.plain_inner_moments(mf, &mut post_moments);
            ev.moments = post_moments;
        }
        if !gradient || !loglik.is_finite() {
            return Ok(Some((ev, Vec::new())));
        }
        let (score, rest) = sums.split_at(sweep.n_score);
        let (magnitude, g_dev) = rest.split_at(sweep.n_score);
        let agg = host_poly(mf, g_dev, &log_scale);
        let plan = self.cpu.plan();
        let Some(inner) = self.cpu.moment_inner_gradient(prep, &sh, &agg) else {
            return Ok(None);
        };
        let (gradient, bound) =
            device_gradient(plan, prep, (score, magnitude), Some(&inner), max_abs_ll);
        ev.gradient = gradient;
        Ok(Some((ev, bound)))
    }

    /// Per cluster `j0 .. j0 + nj` and run: the node of the run's first
    /// pass (the CPU's `node_of`) and its log weight plus the log scale of
    /// the cluster's degree's moments; with `keep`, the nodes in f64 too.
    fn run_nodes(
        &self,
        (j0, nj): (usize, usize),
        adapt: Option<&Adaptation>,
        log_scale: &[f64],
        keep: bool,
    ) -> (Vec<f32>, Vec<f64>) {
        let layout = self.cpu.layout();
        let Some(bl) = layout.blocks.as_ref() else {
            return (Vec::new(), Vec::new());
        };
        let (grid, starts) = (self.cpu.grid(), &self.cpu.data().cluster_starts);
        let dims = grid.dims;
        let mut out = Vec::with_capacity(nj * bl.runs.len() * (dims + 1));
        let mut kept = Vec::new();
        let mut z = vec![0.0; dims];
        for j in j0..j0 + nj {
            let shift = log_scale[starts[j + 1] - starts[j]];
            for &(q0, _) in &bl.runs {
                let lw = node_of(grid, adapt, j, 0, q0, &mut z);
                out.extend(z.iter().map(|&v| v as f32));
                out.push((lw + shift).max(-1e30) as f32);
                if keep {
                    kept.extend_from_slice(&z);
                }
            }
        }
        (out, kept)
    }

    /// Clusters `j0 .. j0 + nj` in the moment form (`nodes`: their runs'
    /// nodes, then the moments): their log-likelihoods, with the second
    /// sweep their scores, magnitudes and Ḡ summed over them, and with
    /// `runs` their runs' log-densities.
    fn moment_chunk(
        &self,
        res: &Resident,
        params: &wgpu::Buffer,
        nodes: &[f32],
        (j0, nj): (usize, usize),
        (sweep, runs): (MomentSweep, bool),
    ) -> Result<MomentBack, BackendError> {
        let dev = &self.gpu.device;
        let n_runs = sweep.n_runs;
        let n_slice = sweep.n_slice();
        let second = res.moment_scores.as_ref().filter(|_| n_slice > 0);
        let nodes_buf = self.upload(nodes, wgpu::BufferUsages::STORAGE);
        let uniform = ChunkUniform {
            j0: j0 as u32,
            nj: nj as u32,
            n_pass: n_runs as u32,
            per_cluster: 1,
            row: self.groups_per_row * GROUP,
            n_score: sweep.n_score as u32,
            n_slice: n_slice as u32,
            want_moments: 0,
            pass0: 0,
            pass1: n_runs as u32,
            n_wsum: sweep.n_poly as u32,
            n_mats: 0,
        };
        let uniform_buf = self.upload(&[uniform], wgpu::BufferUsages::UNIFORM);
        let pass_buf = self.storage("pass_ll", nj * n_runs, runs);
        let out_buf = self.storage("cluster_ll", nj, true);
        // each lane's score and magnitudes and its row's state weights;
        // the clusters' slices, then the runs' sums of them
        let n_entries = n_slice;
        let n_run_sums = nj.div_ceil(SUM_RUN) * n_entries;
        let lanes = if second.is_some() {
            MOMENT_LANES * nj
        } else {
            0
        };
        let sweep_buf = self.storage("sweep", lanes * 2 * sweep.n_score, false);
        let weights_buf = self.storage("weights", lanes * MAX_SLOTS, false);
        let totals_buf = self.storage("totals", nj * n_slice + n_run_sums, true);
        let buffers = [
            &res.plan_buf,
            &res.rows_buf,
            params,
            &nodes_buf,
            &pass_buf,
            &out_buf,
            &uniform_buf,
            &sweep_buf,
            &weights_buf,
            &totals_buf,
        ];
        let group = self.bind_group(res, buffers);
        let mut enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            pass.set_bind_group(0, &group, &[]);
            pass.set_pipeline(&res.moment_densities);
            let (x, y) = groups_of(nj * n_runs, 1, self.groups_per_row);
            pass.dispatch_workgroups(x, y, 1);
            pass.set_pipeline(&res.reduce);
            let (x, y) = groups_of(nj, GROUP, self.groups_per_row);
            pass.dispatch_workgroups(x, y, 1);
            if let Some(scores) = second {
                pass.set_pipeline(scores);
                let (x, y) = groups_of(nj, 1, self.groups_per_row);
                pass.dispatch_workgroups(x, y, 1);
                pass.set_pipeline(&res.sum_clusters);
                let (x, y) = groups_of(n_run_sums, GROUP, self.groups_per_row);
                pass.dispatch_workgroups(x, y, 1);
                pass.set_pipeline(&res.sum_runs);
                let (x, y) = groups_of(n_entries, GROUP, self.groups_per_row);
                pass.dispatch_workgroups(x, y, 1);
            }
        }
        let read =
            |enc: &mut wgpu::CommandEncoder, src: &wgpu::Buffer, at: usize, floats: usize| {
                let buf = dev.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("read"),
                    size: (floats.max(1) * 4) as u64,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                enc.copy_buffer_to_buffer(src, (at * 4) as u64, &buf, 0, (floats * 4) as u64);
                buf
            };
        let read_ll = read(&mut enc, &out_buf, 0, nj);
        let read_totals = second.map(|_| read(&mut enc, &totals_buf, nj * n_slice, n_entries));
        let read_pass = runs.then(|| read(&mut enc, &pass_buf, 0, nj * n_runs));
        self.gpu.queue.submit([enc.finish()]);
        let back = |b: Option<wgpu::Buffer>| match b {
            Some(b) => read_back(dev, &b),
            None => Ok(Vec::new()),
        };
        Ok(MomentBack {
            totals: back(read_totals)?,
            pass: back(read_pass)?,
            ll: read_back(dev, &read_ll)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each neighbour names the monomial with that exponent one less, and
    /// the tables of degree r hold C(r + k − 1, k − 1) monomials.
    #[test]
    fn neighbours_are_one_exponent_down() {
        let t = Triangles::new(4, 6, 1 << 20).expect("4 variables to degree 6");
        let tables = neighbour_tables(&t);
        for r in 1..=6 {
            let mono = t.monomials(r);
            let down = t.monomials(r - 1);
            assert_eq!(tables[r - 1].len(), mono.len() * 4);
            for (i, (_, e)) in mono.iter().enumerate() {
                for c in 0..4 {
                    let n = tables[r - 1][i * 4 + c] as usize;
                    if e[c] == 0 {
                        assert_eq!(n, 0);
                    } else {
                        let mut d = e.clone();
                        d[c] -= 1;
                        assert_eq!(down[n - 1].1, d);
                    }
                }
            }
        }
        assert_eq!(t.count(6), 84);
    }

    /// Each neighbour one degree up names the monomial with that exponent
    /// one more, and going up then down along a variable comes back.
    #[test]
    fn up_neighbours_are_one_exponent_up() {
        let t = Triangles::new(3, 5, 1 << 20).expect("3 variables to degree 5");
        let up = up_tables(&t);
        let down = neighbour_tables(&t);
        assert_eq!(up.len(), 5);
        for r in 0..5 {
            let mono = t.monomials(r);
            let above = t.monomials(r + 1);
            assert_eq!(up[r].len(), mono.len() * 3);
            for (i, (_, e)) in mono.iter().enumerate() {
                for c in 0..3 {
                    let u = up[r][i * 3 + c] as usize;
                    let mut d = e.clone();
                    d[c] += 1;
                    assert_eq!(above[u - 1].1, d);
                    assert_eq!(down[r][(u - 1) * 3 + c] as usize, i + 1);
                }
            }
        }
    }

    /// The second sweep's workgroup holds the bench's 4-class FMA-GoM on
    /// 17 items (every degree to 17 in 4 variables) and the sizes agree
    /// with the shader's.
    #[test]
    fn second_sweep_holds_four_classes_and_seventeen_items() {
        let t = Triangles::new(4, 17, 1 << 20).expect("4 variables to degree 17");
        let all: usize = (0..=17).map(|r| t.count(r) + 1).sum();
        assert!(all <= MOM_ALL, "{all}");
        let shader = crate::SHADER;
        assert!(shader.contains(&format!("const MOM_ALL: u32 = {MOM_ALL}u;")));
        assert!(shader.contains(&format!("const MOM_K: u32 = {MOM_K}u;")));
        assert!(shader.contains(&format!("const MOM_POLY: u32 = {MOM_POLY}u;")));
        assert!(shader.contains(&format!("var<workgroup> mom_all: array<f32, {MOM_ALL}>;")));
    }
}
