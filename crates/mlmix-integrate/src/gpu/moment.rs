//! The moment form's log-likelihood on the device (shaders/moment.wgsl):
//! for long data whose class logits read no data (the GoM and FMA-GoM of
//! `cpu/moment.rs`), a cluster's likelihood given a run of passes is a
//! polynomial in the class probabilities against moments every cluster
//! shares. The host computes the moments once per evaluation (the CPU's
//! own, in f64), scales each degree's by its largest and uploads them in
//! f32; the device forms each (cluster, run)'s polynomial in workgroup
//! memory and takes its dot with them; each cluster's log-sum-exp over its
//! runs comes down in f32, summed in f64 as on the general path.
//!
//! A polynomial of degree r is dense over its monomials, in the order of
//! [`Triangles::monomials`]; the plan's moment section gives, per degree,
//! each monomial's neighbour one degree down along each variable (the
//! monomial with that exponent one less, 1-based, 0 where the exponent is
//! 0), so that multiplying by a row's linear form is a gather.

use mlmix_kernels::{Plan, Prepared};

use super::{BackendError, ChunkUniform, GROUP, GpuBackend, Resident, groups_of, read_back};
use crate::layout::{Layout, MomentForm};
use crate::nodes::node_of;
use crate::poly::Triangles;
use crate::{Adaptation, Backend};

/// Monomials of one degree that a workgroup holds, less the leading 0
/// (shaders/moment.wgsl: MOM_POLY).
const MOM_POLY: usize = 1536;
/// Rows × combinations whose coefficients a workgroup holds
/// (shaders/moment.wgsl: mom_a).
const MOM_COEFS: usize = 512;

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

/// The plan's moment section, to be placed at plan word `base`: the
/// number of variables, the outer terms, the combinations (the
/// variables' order), per degree the offset of its moments (u32::MAX for
/// a degree no cluster has), and per degree 1..=n_max its neighbour
/// table's bounds and the tables (see the module's documentation).
pub(super) fn moment_words(layout: &Layout, base: usize) -> Vec<u32> {
    let (Some(mf), Some(bl)) = (layout.moments.as_ref(), layout.blocks.as_ref()) else {
        return Vec::new();
    };
    let t = &mf.poly;
    let (k, n_max) = (t.k, t.n_max);
    let combos = &layout.combos_of_between[0];
    let head = 6;
    let outer_at = base + head;
    let combos_at = outer_at + bl.outer_terms.len();
    let deg_at = combos_at + combos.len();
    let nbr_at = deg_at + n_max + 1;
    let mut w = vec![
        k as u32,
        bl.outer_terms.len() as u32,
        outer_at as u32,
        combos_at as u32,
        deg_at as u32,
        nbr_at as u32,
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
    let tables = neighbour_tables(t);
    let mut end = nbr_at + n_max + 1;
    w.push(end as u32);
    for table in &tables {
        end += table.len();
        w.push(end as u32);
    }
    for table in tables {
        w.extend(table);
    }
    w
}

/// Per degree 1..=n_max, per monomial (in [`Triangles::monomials`]'
/// order) and variable, the 1-based index of the monomial one degree down
/// with that variable's exponent one less (0 where it is 0).
fn neighbour_tables(t: &Triangles) -> Vec<Vec<u32>> {
    let index = |r: usize| -> std::collections::HashMap<Vec<usize>, usize> {
        t.monomials(r)
            .into_iter()
            .enumerate()
            .map(|(i, (_, e))| (e, i))
            .collect()
    };
    let mut below = index(0);
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
        below = index(r);
    }
    out
}

/// The shared moments `m` (per degree of `mf.degrees`, at their dense
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

impl GpuBackend {
    /// The log-likelihood at `prep` in the moment form on the device, or
    /// `None` where the form does not apply on the grid `adapt` gives
    /// (adapted in an inner dimension).
    pub(super) fn moment_loglik(
        &self,
        res: &Resident,
        prep: &Prepared,
        params: &wgpu::Buffer,
        adapt: Option<&Adaptation>,
    ) -> Result<Option<f64>, BackendError> {
        let layout = self.cpu.layout();
        let (Some(mf), Some(bl)) = (layout.moments.as_ref(), layout.blocks.as_ref()) else {
            return Ok(None);
        };
        let Some(m) = self.cpu.shared_moments(prep, adapt) else {
            return Ok(None);
        };
        let (moments, log_scale) = device_moments(mf, &m);
        let moments_buf = self.upload(&moments, wgpu::BufferUsages::STORAGE);
        let data = self.cpu.data();
        let n_clusters = data.cluster_starts.len() - 1;
        let n_runs = bl.runs.len();
        let per = (self.chunk_entries / n_runs.max(1)).max(1);
        let mut total = 0.0f64;
        let mut j0 = 0;
        while j0 < n_clusters {
            let nj = per.min(n_clusters - j0);
            let nodes = self.run_nodes((j0, nj), adapt, &log_scale);
            let ll = self.moment_chunk(res, params, &moments_buf, &nodes, (j0, nj), n_runs)?;
            total += ll.iter().map(|&l| f64::from(l)).sum::<f64>();
            j0 += nj;
        }
        Ok(Some(if total.is_finite() && total > -1e29 {
            total
        } else {
            f64::NEG_INFINITY
        }))
    }

    /// Per cluster `j0 .. j0 + nj` and run: the node of the run's first
    /// pass (the CPU's `node_of`) and its log weight plus the log scale of
    /// the cluster's degree's moments.
    fn run_nodes(
        &self,
        (j0, nj): (usize, usize),
        adapt: Option<&Adaptation>,
        log_scale: &[f64],
    ) -> Vec<f32> {
        let layout = self.cpu.layout();
        let Some(bl) = layout.blocks.as_ref() else {
            return Vec::new();
        };
        let (grid, starts) = (self.cpu.grid(), &self.cpu.data().cluster_starts);
        let dims = grid.dims;
        let mut out = Vec::with_capacity(nj * bl.runs.len() * (dims + 1));
        let mut z = vec![0.0; dims];
        for j in j0..j0 + nj {
            let shift = log_scale[starts[j + 1] - starts[j]];
            for &(q0, _) in &bl.runs {
                let lw = node_of(grid, adapt, j, 0, q0, &mut z);
                out.extend(z.iter().map(|&v| v as f32));
                out.push((lw + shift).max(-1e30) as f32);
            }
        }
        out
    }

    /// Clusters `j0 .. j0 + nj` in the moment form: their log-likelihoods.
    fn moment_chunk(
        &self,
        res: &Resident,
        params: &wgpu::Buffer,
        moments: &wgpu::Buffer,
        nodes: &[f32],
        (j0, nj): (usize, usize),
        n_runs: usize,
    ) -> Result<Vec<f32>, BackendError> {
        let dev = &self.gpu.device;
        let nodes_buf = self.upload(nodes, wgpu::BufferUsages::STORAGE);
        let uniform = ChunkUniform {
            j0: j0 as u32,
            nj: nj as u32,
            n_pass: n_runs as u32,
            per_cluster: 1,
            row: self.groups_per_row * GROUP,
            n_score: 0,
            n_slice: 0,
            want_moments: 0,
            pass0: 0,
            pass1: n_runs as u32,
            n_wsum: 0,
            n_mats: 0,
        };
        let uniform_buf = self.upload(&[uniform], wgpu::BufferUsages::UNIFORM);
        let pass_buf = self.storage("pass_ll", nj * n_runs, false);
        let out_buf = self.storage("cluster_ll", nj, true);
        let unused = [
            self.storage("sweep", 1, false),
            self.storage("totals", 1, false),
        ];
        let buffers = [
            &res.plan_buf,
            &res.rows_buf,
            params,
            &nodes_buf,
            &pass_buf,
            &out_buf,
            &uniform_buf,
            &unused[0],
            moments,
            &unused[1],
        ];
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        let group = dev.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &res.layout,
            entries: &entries,
        });
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
        }
        let read = dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read"),
            size: (nj * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        enc.copy_buffer_to_buffer(&out_buf, 0, &read, 0, (nj * 4) as u64);
        self.gpu.queue.submit([enc.finish()]);
        read_back(dev, &read)
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
}
