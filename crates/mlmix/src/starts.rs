//! Starting values, bounds, and the random perturbations of random starts.
//!
//! Default starting values come from the data, as Mplus's do:
//! thresholds from the sample cumulative proportions (on the logit or probit
//! scale), a nominal variable's intercepts from the sample log-odds of each
//! category against the last, means and variances from the sample moments,
//! slopes, covariances and class logits 0. Without random starts (STARTS = 0) the classes are
//! separated by fixed offsets: thresholds (K−1)/2 − k logits apart, means
//! k − (K−1)/2 standard deviations apart, for class k = 0..K−1; nominal
//! intercepts (K−1)/2 − k logits above their log-odds, like thresholds.
//!
//! A random start perturbs the default (or user-given `*v`) values by
//! uniform draws scaled by STSCALE (s, default 5):
//! thresholds ±s/2 logits (±s/3.4 probits), sorted within each item and
//! class; means ±0.3·s standard deviations; class-specific variances by a
//! factor in [0.5, 1.5]; regression slopes ±0.2·s·sd(y)/sd(x); class logit
//! intercepts and class-on-class effects ±0.2·s; class logit slopes
//! ±0.1·s/sd(x); nominal intercepts ±s/2 and slopes ±0.1·s/sd(x). The draw depends only on the start's seed. A draw outside the
//! model's domain is redrawn with half the spread.

use std::collections::HashMap;

use mlmix_kernels::link;
use mlmix_kernels::{Plan, prepare};
use mlmix_optim::{Bound, ParamMap};
use mlmix_spec::{Dataset, Link, Model, ParamKind, ParamValue, RandomKind, Role, Scale};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Sample statistics of one variable.
#[derive(Debug, Clone, Copy, Default)]
struct Moments {
    mean: f64,
    var: f64,
}

fn moments(col: &[f64]) -> Moments {
    let (mut n, mut s) = (0.0, 0.0);
    for &x in col {
        if !x.is_nan() {
            n += 1.0;
            s += x;
        }
    }
    if n == 0.0 {
        return Moments {
            mean: 0.0,
            var: 1.0,
        };
    }
    let mean = s / n;
    let ss: f64 = col
        .iter()
        .filter(|x| !x.is_nan())
        .map(|x| (x - mean) * (x - mean))
        .sum();
    let var = if n > 1.0 { ss / (n - 1.0) } else { 1.0 };
    Moments {
        mean,
        var: if var > 0.0 { var } else { 1.0 },
    }
}

/// Cumulative proportions P(u <= c) for c = 0..C-2 of a category-index column.
fn cumulative(col: &[f64], ncat: usize) -> Vec<f64> {
    let mut counts = vec![0.0f64; ncat];
    let mut n: f64 = 0.0;
    for &x in col {
        if !x.is_nan() {
            counts[x as usize] += 1.0;
            n += 1.0;
        }
    }
    let mut out = Vec::with_capacity(ncat - 1);
    let mut acc: f64 = 0.0;
    for c in counts.iter().take(ncat - 1) {
        acc += c;
        out.push(((acc + 0.5) / (n + 1.0)).clamp(0.001, 0.999));
    }
    out
}

/// Sample log-odds ln((n_k + ½) / (n_last + ½)) of each category but the
/// last of a category-index column against the last.
fn log_odds(col: &[f64], ncat: usize) -> Vec<f64> {
    let mut counts = vec![0.5f64; ncat];
    for &x in col.iter().filter(|x| !x.is_nan()) {
        counts[x as usize] += 1.0;
    }
    let last = counts[ncat - 1];
    counts[..ncat - 1].iter().map(|c| (c / last).ln()).collect()
}

/// Everything needed to build starting points.
pub struct StartBuilder<'a> {
    model: &'a Model,
    plan: &'a Plan,
    map: &'a ParamMap,
    moments: Vec<Moments>,
    cumul: HashMap<usize, Vec<f64>>,
    /// Nominal variables' sample log-odds ([`log_odds`]).
    odds: HashMap<usize, Vec<f64>>,
}

/// The loadings and factor variances of a start near the nested latent
/// class model (small, not 0, so that the factors can grow).
pub const NESTED_LCA: f64 = 0.05;

impl<'a> StartBuilder<'a> {
    /// Computes the sample statistics.
    pub fn new(model: &'a Model, data: &Dataset, plan: &'a Plan, map: &'a ParamMap) -> Self {
        let moments = data.columns.iter().map(|c| moments(c)).collect();
        let mut cumul = HashMap::new();
        let mut odds = HashMap::new();
        for v in model.dependents() {
            if let Some(ncat) = model.n_categories(v) {
                cumul.insert(v, cumulative(&data.columns[v], ncat));
                if model.is_nominal(v) {
                    odds.insert(v, log_odds(&data.columns[v], ncat));
                }
            }
        }
        StartBuilder {
            model,
            plan,
            map,
            moments,
            cumul,
            odds,
        }
    }

    fn link_scale(&self) -> f64 {
        match self.model.analysis.link {
            Link::Logit => 1.0,
            Link::Probit => 1.0 / 1.7,
        }
    }

    /// The default value of one model parameter; `separate` adds the class
    /// offsets used without random starts.
    fn default_value(&self, i: usize, separate: bool) -> f64 {
        let p = &self.model.parameters[i];
        let offset = |kcls: Option<usize>, cv: Option<usize>| -> f64 {
            match (kcls, cv) {
                (Some(k), Some(cv)) if separate => {
                    // one unit apart, centred; with more than 7 classes
                    // squeezed into ±3 so that thresholds stay inside
                    // LOGLOW/LOGHIGH and distinct
                    let kn = self.model.class_vars[cv].classes as f64;
                    let step = (6.0 / (kn - 1.0).max(1.0)).min(1.0);
                    ((kn - 1.0) / 2.0 - k as f64) * step
                }
                _ => 0.0,
            }
        };
        let cv = self.model.param_class_var(&p.kind);
        match p.kind {
            // g = min(0.2, P(u = 1) / 2), on the logit scale
            ParamKind::Guessing { var } => {
                let p1 = 1.0 - self.cumul.get(&var).map_or(0.5, |c| c[0]);
                let g = (0.5 * p1).clamp(1e-3, 0.2);
                (g / (1.0 - g)).ln()
            }
            ParamKind::Threshold { var, index } => {
                let cum = self.cumul.get(&var).map_or(0.5, |c| c[index - 1]);
                let base = link::quantile(self.model.analysis.link, cum);
                base + offset(p.class, cv) * self.link_scale()
            }
            ParamKind::NominalIntercept { var, category } => {
                let base = self.odds.get(&var).map_or(0.0, |o| o[category - 1]);
                base + offset(p.class, cv)
            }
            ParamKind::Mean { var } => {
                let m = self.moments[var];
                m.mean - offset(p.class, cv) * m.var.sqrt()
            }
            ParamKind::Variance { var } => self.moments[var].var,
            ParamKind::RandomVariance { re } => match self.model.random_effects()[re].kind {
                // half the variance for a random intercept, a small slope
                // variance, a unit variance on the logit scale
                RandomKind::Intercept { var } => {
                    match self.model.dependent(var).map(|d| &d.scale) {
                        Some(Scale::Continuous) => 0.5 * self.moments[var].var,
                        _ => 1.0,
                    }
                }
                RandomKind::Slope { var, covariate } => {
                    0.1 * self.moments[var].var / self.moments[covariate].var.max(1e-12)
                }
                RandomKind::ClassIntercept { .. } | RandomKind::Factor => 1.0,
                // fixed at 0
                RandomKind::WithinIntercept { .. } => 0.0,
            },
            // Mplus starts loadings at 1
            ParamKind::Loading { .. } => 1.0,
            ParamKind::RandomCovariance { .. }
            | ParamKind::RandomRegression { .. }
            | ParamKind::RandomSlopeOn { .. }
            | ParamKind::Covariance { .. }
            | ParamKind::FactorMean { .. }
            | ParamKind::FactorOn { .. }
            | ParamKind::Slope { .. }
            | ParamKind::NominalSlope { .. }
            | ParamKind::ClassIntercept { .. }
            | ParamKind::ClassSlope { .. }
            | ParamKind::ClassOnClass { .. } => 0.0,
        }
    }

    /// The unperturbed starting point: user values where given, defaults
    /// (with class offsets) elsewhere.
    pub fn unperturbed(&self) -> Vec<f64> {
        let mut theta = vec![0.0; self.map.n_free];
        for (f, fp) in self.model.free.iter().enumerate() {
            let first = fp.members[0];
            theta[f] = self.model.parameters[first]
                .start
                .unwrap_or_else(|| self.default_value(first, true));
        }
        self.map.clamp(&mut theta);
        theta
    }

    /// A random start drawn from `seed`. In a mixture with factors, half
    /// of the starts (odd seeds) begin near the nested latent class model:
    /// free loadings and free factor variances at [`NESTED_LCA`], so that
    /// the classes, not the factors, carry the first EM steps (the paper's
    /// advice for factor mixtures, whose likelihood has many local maxima).
    pub fn perturbed(&self, seed: u64, stscale: f64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut spread = 1.0;
        let classes: usize = self.model.class_vars.iter().map(|c| c.classes).product();
        let nested = seed % 2 == 1 && classes > 1;
        for _ in 0..20 {
            let mut theta = self.draw(&mut rng, stscale * spread);
            if nested {
                self.nest(&mut theta);
            }
            let phi = self.map.phi(&theta);
            if prepare(self.plan, &phi).is_ok() {
                return theta;
            }
            spread *= 0.5;
        }
        self.unperturbed()
    }

    /// Moves a start towards the nested latent class model: free loadings
    /// and free factor variances at [`NESTED_LCA`].
    fn nest(&self, theta: &mut [f64]) {
        for (f, fp) in self.model.free.iter().enumerate() {
            let p = &self.model.parameters[fp.members[0]];
            let factor_variance = matches!(p.kind, ParamKind::RandomVariance { re }
                if self.model.random_effects()[re].kind == RandomKind::Factor);
            if matches!(p.kind, ParamKind::Loading { .. }) || factor_variance {
                theta[f] = NESTED_LCA;
            }
        }
    }

    fn draw(&self, rng: &mut ChaCha8Rng, s: f64) -> Vec<f64> {
        let mut theta = vec![0.0; self.map.n_free];
        for (f, fp) in self.model.free.iter().enumerate() {
            let first = fp.members[0];
            let p = &self.model.parameters[first];
            let base = p.start.unwrap_or_else(|| self.default_value(first, false));
            let u: f64 = rng.random_range(-1.0..1.0);
            theta[f] = match p.kind {
                ParamKind::Threshold { .. } | ParamKind::Guessing { .. } => {
                    base + u * 0.5 * s * self.link_scale()
                }
                ParamKind::Mean { var } => base + u * 0.3 * s * self.moments[var].var.sqrt(),
                ParamKind::Variance { .. } => {
                    if fp.members.len() == 1 && p.class.is_some() {
                        base * (1.0 + 0.5 * u)
                    } else {
                        base
                    }
                }
                ParamKind::Covariance { .. }
                | ParamKind::RandomVariance { .. }
                | ParamKind::RandomCovariance { .. }
                | ParamKind::RandomRegression { .. }
                | ParamKind::Loading { .. }
                | ParamKind::FactorOn { .. } => base,
                ParamKind::FactorMean { .. } => base + u * 0.5 * s,
                ParamKind::RandomSlopeOn { re, covariate } => {
                    // the scale of y / (x w)
                    match self.model.random_effects().get(re).map(|r| r.kind) {
                        Some(RandomKind::Slope { var, covariate: x }) => {
                            let r = (self.moments[var].var
                                / (self.moments[x].var * self.moments[covariate].var).max(1e-12))
                            .sqrt();
                            base + u * 0.1 * s * r
                        }
                        _ => base,
                    }
                }
                ParamKind::Slope { var, covariate } => {
                    let r = (self.moments[var].var / self.moments[covariate].var).sqrt();
                    base + u * 0.2 * s * r
                }
                ParamKind::ClassIntercept { .. } | ParamKind::ClassOnClass { .. } => {
                    base + u * 0.2 * s
                }
                ParamKind::ClassSlope { covariate, .. }
                | ParamKind::NominalSlope { covariate, .. } => {
                    base + u * 0.1 * s / self.moments[covariate].var.sqrt()
                }
                ParamKind::NominalIntercept { .. } => base + u * 0.5 * s,
            };
        }
        // keep each item's thresholds increasing within a class, where each
        // threshold is its own free parameter
        // (variable, class) -> [(threshold number, free parameter)]
        type Group = Vec<(usize, usize)>;
        let mut groups: HashMap<(usize, Option<usize>), Group> = HashMap::new();
        for p in &self.model.parameters {
            if let (ParamKind::Threshold { var, index }, ParamValue::Free(f)) = (p.kind, p.value) {
                groups.entry((var, p.class)).or_default().push((index, f));
            }
        }
        let mut keys: Vec<_> = groups.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            let mut g = groups.remove(&key).unwrap_or_default();
            g.sort_unstable();
            let frees: Vec<usize> = g.iter().map(|x| x.1).collect();
            let distinct = {
                let mut s = frees.clone();
                s.sort_unstable();
                s.dedup();
                s.len() == frees.len()
            };
            let exclusive = frees.iter().all(|&f| self.model.free[f].members.len() == 1);
            if distinct && exclusive {
                let mut vals: Vec<f64> = frees.iter().map(|&f| theta[f]).collect();
                vals.sort_by(f64::total_cmp);
                for (f, v) in frees.iter().zip(vals) {
                    theta[*f] = v;
                }
            }
        }
        self.map.clamp(&mut theta);
        theta
    }
}

/// The seed of random start `number` (1-based) for STSEED `stseed`: a
/// six-digit number, as Mplus prints them.
pub fn start_seed(stseed: u64, number: usize) -> u64 {
    let mut z = stseed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(number as u64);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    z % 1_000_000
}

/// The largest variance of a random class logit intercept. Its likelihood
/// rises towards the between-level class model's as the variance grows
/// without bound (the paper's Table 4: a "huge" variance makes the class
/// variable a between-level one), and beyond about 1e14 the integration's
/// nodes near the logit's zero can no longer be told apart in floating point
/// (a 1,000-cluster Model 6 fit on Model 5's data ran to 2e116 with a
/// log-likelihood 25 units above the between-level model's maximum, which
/// it can only approach). At 1e8 (a standard deviation of 10,000 logits) the
/// class probabilities are 0 or 1 outside a band of 1e-3 standard units,
/// and the log-likelihood is within about 1e-3 of the limit's.
pub const MAX_CLASS_LOGIT_VARIANCE: f64 = 1e8;

/// Whether the slope of `var` on `covariate` is an item's logit in a class
/// (a GoM's item dummies, docs/gom.md): `var` is categorical (nominal ones
/// are too) and `covariate` takes only the values 0 and 1. Such a slope is
/// a threshold written another way, so it is kept in [LOGLOW, LOGHIGH] as
/// thresholds are: a small class whose members all answer an item alike
/// would otherwise drive it towards infinity, slowly (the quasi-Newton
/// steps shrink with the derivative), for no gain in the log-likelihood.
fn is_item_logit(model: &Model, data: &Dataset, var: usize, covariate: usize) -> bool {
    let categorical = matches!(
        &model.variables[var].role,
        Role::Dependent(d) if matches!(d.scale, Scale::Categorical { .. })
    );
    categorical
        && data
            .columns
            .get(covariate)
            .is_some_and(|col| col.iter().all(|&x| x.is_nan() || x == 0.0 || x == 1.0))
}

/// The free-parameter map of a model: which phi entries each free parameter
/// sets, the fixed values, and the bounds.
pub fn param_map(model: &Model, data: &Dataset) -> ParamMap {
    let n_phi = model.parameters.len();
    let mut free_of_phi = vec![None; n_phi];
    let mut fixed_value = vec![0.0; n_phi];
    let mut bounds = vec![Bound::FREE; model.free.len()];
    // the mean of a random class logit intercept: its scale is the random
    // part's standard deviation, which may be large (the limit of a
    // between-level class), so LOGLOW and LOGHIGH do not apply
    for (i, p) in model.parameters.iter().enumerate() {
        match p.value {
            ParamValue::Fixed(v) => fixed_value[i] = v,
            ParamValue::Free(f) => {
                free_of_phi[i] = Some(f);
                let b = match p.kind {
                    ParamKind::ClassIntercept { cv, class }
                        if model.has_random_logit(cv, class) =>
                    {
                        Bound::FREE
                    }
                    ParamKind::Threshold { .. }
                    | ParamKind::NominalIntercept { .. }
                    | ParamKind::Guessing { .. }
                    | ParamKind::ClassIntercept { .. }
                    | ParamKind::ClassOnClass { .. } => Bound {
                        lo: model.analysis.logit_low,
                        hi: model.analysis.logit_high,
                    },
                    ParamKind::Slope { var, covariate }
                    | ParamKind::NominalSlope { var, covariate, .. }
                        if is_item_logit(model, data, var, covariate) =>
                    {
                        Bound {
                            lo: model.analysis.logit_low,
                            hi: model.analysis.logit_high,
                        }
                    }
                    ParamKind::Variance { var } => Bound {
                        lo: 1e-6 * moments(&data.columns[var]).var,
                        hi: f64::INFINITY,
                    },
                    // a random class logit intercept's variance may run to
                    // infinity (the limit is a between-level class
                    // variable), where its integration breaks down in
                    // floating point: it stops at MAX_CLASS_LOGIT_VARIANCE
                    ParamKind::RandomVariance { re }
                        if matches!(
                            model.random_effects()[re].kind,
                            RandomKind::ClassIntercept { .. }
                        ) =>
                    {
                        Bound {
                            lo: 1e-8,
                            hi: MAX_CLASS_LOGIT_VARIANCE,
                        }
                    }
                    ParamKind::RandomVariance { .. } => Bound {
                        lo: 1e-8,
                        hi: f64::INFINITY,
                    },
                    _ => Bound::FREE,
                };
                let cur = &mut bounds[f];
                cur.lo = cur.lo.max(b.lo);
                cur.hi = cur.hi.min(b.hi);
            }
        }
    }
    // the variances of random class logit intercepts: quasi-Newton moves
    // them on the log scale (see `mlmix_optim`'s quasi-Newton phase)
    // and their means by their standard deviations
    let mut log_scale = vec![false; model.free.len()];
    let mut scaled_by = vec![None; model.free.len()];
    for p in &model.parameters {
        if let (ParamValue::Free(f), ParamKind::RandomVariance { re }) = (p.value, &p.kind)
            && let RandomKind::ClassIntercept { cv, class } = model.random_effects()[*re].kind
        {
            log_scale[f] = true;
            for q in &model.parameters {
                if let (ParamValue::Free(m), ParamKind::ClassIntercept { cv: c, class: k }) =
                    (q.value, &q.kind)
                    && *c == cv
                    && *k == class
                {
                    scaled_by[m] = Some(f);
                }
            }
        }
    }
    ParamMap {
        n_free: model.free.len(),
        free_of_phi,
        fixed_value,
        bounds,
        log_scale,
        scaled_by,
    }
}
