//! Data generated from a population model: the model run forwards.
//!
//! The generator compiles the population model into the same [`Plan`] a fit
//! evaluates and draws from the plan's own terms, so that what is generated
//! is what the engine's likelihood says, term for term: per cluster the
//! random effects' standard normal z (the plan turns them into random
//! intercepts, slopes, class logits and factors through its node columns),
//! per row (or per cluster, for between-level ones) each class variable from
//! its logit term's probabilities given the classes drawn before it, then
//! each dependent variable from its term's density given the row's classes:
//! a categorical, nominal or 3PL item from its categories' log-densities, a
//! normal one from the mean and variance its log-density's quadratic shape
//! gives, and a block of correlated normal ones (residual covariances, or
//! factors with continuous indicators, integrated in closed form) from its
//! mean vector and covariance matrix found the same way. Covariates are
//! normal with MODEL POPULATION's means and variances.
//!
//! A within-level factor with categorical indicators is integrated by the
//! plan on a fixed per-row rule, whose nodes are the classes of one more
//! class variable ([`Plan::within_cv`]); drawing those classes would give a
//! discrete factor. So each row draws its own standard normal z instead,
//! takes the rule's first node as its class, and moves from that node to z
//! by the plan's own shifts (`within::Shifted`: intercepts and thresholds
//! linear in z): a normal indicator's draw moves by its intercept's shift,
//! and a categorical one is drawn from its latent response, u ≤ k exactly
//! when F(ε − d) ≤ P(u ≤ k | first node), with ε drawn from the link's
//! distribution F and d the thresholds' shift.

use std::collections::HashMap;

use mlmix_kernels::eval::{Scratch, Slots, term_values};
use mlmix_kernels::link::Link;
use mlmix_kernels::plan::class_in_combo;
use mlmix_kernels::{EngineData, Plan, PlanError, TermKind, prepare};
use mlmix_spec::montecarlo::{CovariateDist, Study};
use mlmix_spec::{Model, ParamValue};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Why data cannot be generated from a population model.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The plan cannot be compiled.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The population values are not a valid model.
    #[error("the population values are not valid: {0}")]
    Invalid(String),
    /// What the generator cannot do yet.
    #[error("generating data is not supported yet for {0}")]
    Unsupported(String),
    /// An external study (DATA: TYPE = MONTECARLO) has no population model.
    #[error(
        "an external Monte Carlo study (DATA: TYPE = MONTECARLO) reads its listed data sets; it generates none"
    )]
    External,
}

/// One generated data set, in the population model's variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// One column per population model variable; categorical ones hold
    /// category indices (0 = the lowest); NaN is missing (PATMISS).
    pub columns: Vec<Vec<f64>>,
    /// The cluster (0-based) of each row; None for single-level data.
    pub clusters: Option<Vec<usize>>,
}

/// The population value of every model parameter (phi): a fixed value, or
/// the value MODEL POPULATION gives a free parameter, 0 where it gives
/// none (Mplus's rule).
pub fn population_phi(model: &Model) -> Vec<f64> {
    model
        .parameters
        .iter()
        .map(|p| match p.value {
            ParamValue::Fixed(v) => v,
            ParamValue::Free(f) => model.free[f]
                .members
                .iter()
                .find_map(|&m| model.parameters[m].start)
                .unwrap_or(0.0),
        })
        .collect()
}

/// The seed of replication `rep` (1-based) of a study seeded `seed`: each
/// replication has its own stream, so that any subset of replications, run
/// in any order on any number of threads or machines, gives the same data.
pub fn replication_seed(seed: u64, rep: usize) -> u64 {
    // splitmix64 of the pair: neighbouring replications get unrelated seeds
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(rep as u64)
        .wrapping_add(0x6A09_E667_F3BC_C909);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Generates replication `rep` (1-based) of a study.
pub fn generate(study: &Study, rep: usize) -> Result<Generated, GenerateError> {
    let model = &study.population.model;
    let spec = &study.spec;
    let mut rng = ChaCha8Rng::seed_from_u64(replication_seed(spec.seed, rep));
    let n = spec.observations;
    let sizes = spec.cluster_sizes.clone().unwrap_or_else(|| vec![1; n]);
    let mut starts = vec![0];
    for s in &sizes {
        starts.push(starts.last().copied().unwrap_or(0) + s);
    }
    let cluster_of: Vec<usize> = sizes
        .iter()
        .enumerate()
        .flat_map(|(c, &s)| std::iter::repeat_n(c, s))
        .collect();
    let mut columns = vec![vec![0.0; n]; model.variables.len()];
    for d in &study.covariates {
        draw_covariate(d, &cluster_of, &mut columns[d.var], &mut rng);
    }
    let data = EngineData {
        columns,
        weights: vec![1.0; n],
        cluster_starts: starts,
        engine_row: (0..n).collect(),
        row_offset: 0,
        clustered: spec.cluster_sizes.is_some(),
    }
    .with_products(&model.product_columns());
    let plan = Plan::compile(model, &data)?;
    let mut g = Forward::new(model, plan, data)?;
    g.draw_nodes(&mut rng);
    g.draw_classes(&mut rng)?;
    g.draw_within(&mut rng);
    g.draw_dependents(&mut rng)?;
    let mut columns = g.data.columns;
    columns.truncate(model.variables.len());
    apply_patterns(study, model, &mut columns, &mut rng);
    Ok(Generated {
        columns,
        clusters: spec.cluster_sizes.as_ref().map(|_| cluster_of),
    })
}

/// A covariate's draws: per row, or per cluster for a BETWEEN one.
fn draw_covariate(d: &CovariateDist, cluster_of: &[usize], col: &mut [f64], rng: &mut ChaCha8Rng) {
    let sd = d.variance.sqrt();
    let mut last = (usize::MAX, 0.0);
    for (x, &c) in col.iter_mut().zip(cluster_of) {
        if !d.between || c != last.0 {
            let z: f64 = StandardNormal.sample(rng);
            last = (c, d.mean + sd * z);
        }
        *x = last.1;
    }
}

/// PATMISS: each row takes a pattern with PATPROBS' probabilities, and each
/// of the pattern's variables is then missing with its probability.
fn apply_patterns(study: &Study, model: &Model, columns: &mut [Vec<f64>], rng: &mut ChaCha8Rng) {
    let spec = &study.spec;
    if spec.missing_patterns.is_empty() {
        return;
    }
    let resolved: Vec<Vec<(usize, f64)>> = spec
        .missing_patterns
        .iter()
        .map(|p| {
            p.iter()
                .filter_map(|(name, q)| {
                    let v = model
                        .variables
                        .iter()
                        .position(|v| v.name.eq_ignore_ascii_case(name));
                    v.map(|v| (v, *q))
                })
                .collect()
        })
        .collect();
    let mut blank = Vec::new();
    for r in 0..spec.observations {
        let u: f64 = rng.random();
        let mut acc = 0.0;
        let mut chosen = resolved.len() - 1;
        for (k, p) in spec.pattern_probabilities.iter().enumerate() {
            acc += p;
            if u < acc {
                chosen = k;
                break;
            }
        }
        for &(v, q) in &resolved[chosen] {
            if rng.random::<f64>() < q {
                blank.push((v, r));
            }
        }
    }
    for (v, r) in blank {
        columns[v][r] = f64::NAN;
    }
}

/// The state of one forward run: the plan, the parameters prepared for
/// it, and the data being filled in (node columns appended).
struct Forward<'m> {
    model: &'m Model,
    plan: Plan,
    prep: mlmix_kernels::Prepared,
    data: EngineData,
    /// Each row's class combination.
    combo: Vec<usize>,
    scratch: Scratch,
    buf: Vec<f64>,
    /// Each row's standard normal z of the within-level dimensions (empty
    /// without within-level factors integrated per row).
    within_z: Vec<Vec<f64>>,
    /// The index in `plan.shifted` of each extended entry a within-level
    /// node shifts.
    shift_of: HashMap<u32, usize>,
}

impl<'m> Forward<'m> {
    fn new(model: &'m Model, plan: Plan, data: EngineData) -> Result<Self, GenerateError> {
        let phi = population_phi(model);
        let prep = prepare(&plan, &phi).map_err(|e| GenerateError::Invalid(e.to_string()))?;
        let n = data.n_rows();
        let shift_of = plan
            .shifted
            .iter()
            .enumerate()
            .map(|(i, sh)| (sh.ext, i))
            .collect();
        Ok(Forward {
            model,
            plan,
            prep,
            data,
            combo: vec![0; n],
            scratch: Scratch::default(),
            buf: Vec::new(),
            within_z: Vec::new(),
            shift_of,
        })
    }

    fn n(&self) -> usize {
        self.data.n_rows()
    }

    /// Per cluster, the standard normal z of the integration dimensions,
    /// written into the node columns (z times the multiplying column).
    fn draw_nodes(&mut self, rng: &mut ChaCha8Rng) {
        let n = self.n();
        let dims = self.plan.dims;
        let mut z = vec![0.0; dims];
        let mut cols = vec![vec![0.0; n]; self.plan.virtual_cols.len()];
        for c in 0..self.data.n_clusters() {
            for v in z.iter_mut() {
                *v = StandardNormal.sample(rng);
            }
            for r in self.data.cluster_starts[c]..self.data.cluster_starts[c + 1] {
                for (col, vc) in cols.iter_mut().zip(&self.plan.virtual_cols) {
                    let m = vc.mult.map_or(1.0, |m| self.data.columns[m][r]);
                    col[r] = z[vc.dim] * m;
                }
            }
        }
        self.data.columns.extend(cols);
    }

    /// Per row, the standard normal z of the within-level dimensions (the
    /// row keeps the rule's first node as its within-level class: `combo`'s
    /// digit of [`Plan::within_cv`] is 0).
    fn draw_within(&mut self, rng: &mut ChaCha8Rng) {
        let dims = self
            .plan
            .shifted
            .iter()
            .flat_map(|sh| sh.dims.iter().map(|&d| d + 1))
            .max()
            .unwrap_or(0);
        if dims == 0 {
            return;
        }
        self.within_z = (0..self.n())
            .map(|_| (0..dims).map(|_| StandardNormal.sample(rng)).collect())
            .collect();
    }

    /// How far row `r`'s draw of z moves the entry at position `pos` of
    /// term `t`'s local layout from its value at the rule's first node, if
    /// a within-level factor shifts it.
    fn within_shift(&self, t: usize, r: usize, pos: usize) -> Option<f64> {
        if self.shift_of.is_empty() {
            return None;
        }
        let term = &self.plan.terms[t];
        let set = term.set_of_state[term.state_of_combo[self.combo[r]] as usize] as usize;
        let e = term.phi_index[set * term.n_local + pos];
        let sh = &self.plan.shifted[*self.shift_of.get(&e)?];
        let z = &self.within_z[r];
        let moved: f64 =
            sh.m.iter()
                .zip(&sh.dims)
                .map(|(&(m, at), &d)| (z[d] - at) * self.prep.ext[m as usize])
                .sum();
        Some(sh.sign * moved)
    }

    /// The log-densities of term `t`'s states for every row, in `buf`
    /// (state-major, `n` per state).
    fn values(&mut self, t: usize) {
        let n = self.n();
        let term = &self.plan.terms[t];
        self.buf.clear();
        self.buf.resize(term.n_states * n, 0.0);
        let slots = Slots {
            stride: n,
            offset: 0,
        };
        term_values(
            term,
            &self.prep.terms[t],
            &self.data,
            0,
            n,
            slots,
            &mut self.scratch,
            &mut self.buf,
        );
    }

    /// The rows a term is drawn on: every row, or the first row of each
    /// cluster for a cluster-level one (the draw is then the cluster's).
    fn draw_rows(&self, cluster_level: bool) -> Vec<(usize, std::ops::Range<usize>)> {
        let s = &self.data.cluster_starts;
        if cluster_level {
            (0..self.data.n_clusters())
                .map(|c| (s[c], s[c]..s[c + 1]))
                .collect()
        } else {
            (0..self.n()).map(|r| (r, r..r + 1)).collect()
        }
    }

    /// Each class variable in turn, from its logit given the earlier ones.
    fn draw_classes(&mut self, rng: &mut ChaCha8Rng) -> Result<(), GenerateError> {
        let sizes = self.plan.class_sizes.clone();
        for m in self.class_order()? {
            let stride: usize = sizes[m + 1..].iter().product();
            let Some(t) = self
                .plan
                .terms
                .iter()
                .position(|t| matches!(t.kind, TermKind::ClassLogit { cv: c, .. } if c == m))
            else {
                continue; // one class
            };
            self.values(t);
            let n = self.n();
            let term = &self.plan.terms[t];
            let rows = self.draw_rows(term.cluster_level);
            let mut logp = vec![0.0; sizes[m]];
            for (r, range) in rows {
                for (k, lp) in logp.iter_mut().enumerate() {
                    let combo = self.combo[r] + k * stride;
                    let s = term.state_of_combo[combo] as usize;
                    *lp = self.buf[s * n + r];
                }
                let k = draw_category(&logp, rng);
                for i in range {
                    self.combo[i] += k * stride;
                }
            }
        }
        debug_assert!(
            self.combo
                .iter()
                .all(|&c| { (0..sizes.len()).all(|m| class_in_combo(&sizes, c, m) < sizes[m]) })
        );
        Ok(())
    }

    /// The class variables in an order where each comes after those it is
    /// regressed on (`c2 ON c1`), whatever their order in CLASSES.
    fn class_order(&self) -> Result<Vec<usize>, GenerateError> {
        let cvs = &self.model.class_vars;
        let mut order: Vec<usize> = Vec::with_capacity(cvs.len());
        while order.len() < cvs.len() {
            let before = order.len();
            for (m, cv) in cvs.iter().enumerate() {
                if !order.contains(&m) && cv.parents.iter().all(|p| order.contains(p)) {
                    order.push(m);
                }
            }
            if order.len() == before {
                return Err(GenerateError::Unsupported(
                    "class variables regressed on each other in a cycle".into(),
                ));
            }
        }
        Ok(order)
    }

    /// Every dependent variable, after those it is regressed on.
    fn draw_dependents(&mut self, rng: &mut ChaCha8Rng) -> Result<(), GenerateError> {
        for t in self.dependent_order()? {
            match self.plan.terms[t].kind.clone() {
                TermKind::Categorical {
                    col, ncat, link, ..
                } => self.draw_discrete(t, col, ncat, Some(link), rng)?,
                TermKind::Nominal { col, ncat, .. } => {
                    self.draw_discrete(t, col, ncat, None, rng)?
                }
                TermKind::Guessing { col, .. } => self.draw_discrete(t, col, 2, None, rng)?,
                TermKind::Normal { col, .. } => self.draw_normal_block(t, &[col], rng)?,
                TermKind::NormalBlock { cols, .. } => self.draw_normal_block(t, &cols, rng)?,
                TermKind::ClassLogit { .. } => {}
            }
        }
        Ok(())
    }

    /// The dependent terms in an order where a term comes after those whose
    /// variables it reads as covariates.
    fn dependent_order(&self) -> Result<Vec<usize>, GenerateError> {
        let terms = &self.plan.terms;
        let cols_of = |k: &TermKind| -> Vec<usize> {
            match k {
                TermKind::Categorical { col, .. }
                | TermKind::Nominal { col, .. }
                | TermKind::Guessing { col, .. }
                | TermKind::Normal { col, .. } => vec![*col],
                TermKind::NormalBlock { cols, .. } => cols.clone(),
                TermKind::ClassLogit { .. } => Vec::new(),
            }
        };
        let produced: Vec<Vec<usize>> = terms.iter().map(|t| cols_of(&t.kind)).collect();
        for t in terms {
            if matches!(t.kind, TermKind::ClassLogit { .. })
                && t.kind
                    .covs()
                    .iter()
                    .any(|c| produced.iter().flatten().any(|p| p == c))
            {
                return Err(GenerateError::Unsupported(
                    "a class variable regressed on a dependent variable".into(),
                ));
            }
        }
        let mut done = vec![false; terms.len()];
        let mut order = Vec::new();
        while order.len() < terms.len() {
            let before = order.len();
            for (t, term) in terms.iter().enumerate() {
                let ready = !done[t]
                    && term.kind.covs().iter().all(|c| {
                        produced
                            .iter()
                            .enumerate()
                            .all(|(u, p)| u == t || done[u] || !p.contains(c))
                    });
                if ready {
                    done[t] = true;
                    order.push(t);
                }
            }
            if order.len() == before {
                return Err(GenerateError::Unsupported(
                    "dependent variables regressed on each other in a cycle".into(),
                ));
            }
        }
        Ok(order)
    }

    /// A categorical (or nominal, or 3PL) item: each row's category drawn
    /// from the log-densities of all categories in the row's state; an
    /// ordered one (`link`) that a within-level factor measures, from its
    /// latent response at the row's z (the module's doc).
    fn draw_discrete(
        &mut self,
        t: usize,
        col: usize,
        ncat: usize,
        link: Option<Link>,
        rng: &mut ChaCha8Rng,
    ) -> Result<(), GenerateError> {
        let n = self.n();
        let mut logp = vec![vec![0.0; n]; ncat];
        for (k, lp) in logp.iter_mut().enumerate() {
            self.data.columns[col].fill(k as f64);
            self.values(t);
            let term = &self.plan.terms[t];
            for (r, x) in lp.iter_mut().enumerate() {
                let s = term.state_of_combo[self.combo[r]] as usize;
                *x = self.buf[s * n + r];
            }
        }
        let rows = self.draw_rows(self.plan.terms[t].cluster_level);
        let mut row_lp = vec![0.0; ncat];
        for (r, range) in rows {
            for (x, lp) in row_lp.iter_mut().zip(&logp) {
                *x = lp[r];
            }
            let k = match (self.within_shift(t, r, 0), link) {
                (None, _) => draw_category(&row_lp, rng),
                (Some(d), Some(link)) => draw_latent_response(&row_lp, link, d, rng),
                (Some(_), None) => {
                    return Err(GenerateError::Unsupported(format!(
                        "{} measured by a within-level factor (only ordered categorical and continuous indicators are)",
                        self.names(&[col])
                    )));
                }
            } as f64;
            for i in range {
                self.data.columns[col][i] = k;
            }
        }
        Ok(())
    }

    /// The log-density of term `t` at the row's state with its variables
    /// `cols` set to `y` in every row, for every row.
    fn density_at(&mut self, t: usize, cols: &[usize], y: &[f64]) -> Vec<f64> {
        for (&c, &v) in cols.iter().zip(y) {
            self.data.columns[c].fill(v);
        }
        self.values(t);
        let n = self.n();
        let term = &self.plan.terms[t];
        (0..n)
            .map(|r| self.buf[term.state_of_combo[self.combo[r]] as usize * n + r])
            .collect()
    }

    /// Normal dependents (one, or a block): the log-density is
    /// `c − ½ (y − μ)' Σ⁻¹ (y − μ)`, so its values at 0, ±e_i and e_i + e_j
    /// give Σ⁻¹ (second differences) and Σ⁻¹ μ (first differences) exactly,
    /// row by row; y = μ + chol(Σ) ε.
    fn draw_normal_block(
        &mut self,
        t: usize,
        cols: &[usize],
        rng: &mut ChaCha8Rng,
    ) -> Result<(), GenerateError> {
        let d = cols.len();
        let unit = |i: usize, s: f64| -> Vec<f64> {
            let mut y = vec![0.0; d];
            y[i] = s;
            y
        };
        let f0 = self.density_at(t, cols, &vec![0.0; d]);
        let plus: Vec<Vec<f64>> = (0..d)
            .map(|i| self.density_at(t, cols, &unit(i, 1.0)))
            .collect();
        let minus: Vec<Vec<f64>> = (0..d)
            .map(|i| self.density_at(t, cols, &unit(i, -1.0)))
            .collect();
        let mut pair = vec![vec![Vec::new(); d]; d];
        for i in 0..d {
            for j in 0..i {
                let mut y = vec![0.0; d];
                y[i] = 1.0;
                y[j] = 1.0;
                pair[i][j] = self.density_at(t, cols, &y);
            }
        }
        let rows = self.draw_rows(self.plan.terms[t].cluster_level);
        for (r, range) in rows {
            let prec = nalgebra::DMatrix::from_fn(d, d, |i, j| {
                let (a, b) = if i >= j { (i, j) } else { (j, i) };
                if a == b {
                    2.0 * f0[r] - plus[a][r] - minus[a][r]
                } else {
                    -(pair[a][b][r] - plus[a][r] - plus[b][r] + f0[r])
                }
            });
            let g = nalgebra::DVector::from_fn(d, |i, _| (plus[i][r] - minus[i][r]) / 2.0);
            let Some(chol) = prec.clone().cholesky() else {
                return Err(GenerateError::Invalid(format!(
                    "the residual covariance matrix of {} is not positive definite",
                    self.names(cols)
                )));
            };
            let cov = chol.inverse();
            let mean = &cov * g;
            let Some(l) = cov.cholesky() else {
                return Err(GenerateError::Invalid(format!(
                    "the residual covariance matrix of {} is not positive definite",
                    self.names(cols)
                )));
            };
            let eps = nalgebra::DVector::from_fn(d, |_, _| StandardNormal.sample(rng));
            let y = mean + l.l() * eps;
            for i in range {
                for (k, &c) in cols.iter().enumerate() {
                    self.data.columns[c][i] = y[k] + self.within_shift(t, i, k).unwrap_or(0.0);
                }
            }
        }
        Ok(())
    }

    fn names(&self, cols: &[usize]) -> String {
        let v: Vec<&str> = cols
            .iter()
            .filter_map(|&c| self.model.variables.get(c).map(|v| v.name.as_str()))
            .collect();
        v.join(", ")
    }
}

/// The category of an ordered item whose cumulative probabilities at the
/// rule's first node are those of `logp` and whose thresholds the row's z
/// moves by `d`: P(u ≤ k | z) = F(a_k + d) with F(a_k) the first node's, so
/// u ≤ k exactly when F(ε − d) ≤ F(a_k) for ε drawn from F.
fn draw_latent_response(logp: &[f64], link: Link, d: f64, rng: &mut ChaCha8Rng) -> usize {
    let eps = match link {
        Link::Logit => {
            let u: f64 = rng.random();
            (u / (1.0 - u)).ln()
        }
        Link::Probit => StandardNormal.sample(rng),
    };
    let x = mlmix_kernels::link::cdf(link, eps - d);
    let mut cum = 0.0;
    for (k, lp) in logp.iter().enumerate() {
        cum += lp.exp();
        if x <= cum {
            return k;
        }
    }
    logp.len() - 1
}

/// A category drawn with probabilities proportional to `exp(logp)`.
fn draw_category(logp: &[f64], rng: &mut ChaCha8Rng) -> usize {
    let m = logp.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = logp.iter().map(|l| (l - m).exp()).collect();
    let total: f64 = w.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (k, x) in w.iter().enumerate() {
        if u < *x {
            return k;
        }
        u -= x;
    }
    w.len() - 1
}
