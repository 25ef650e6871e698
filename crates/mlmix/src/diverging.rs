//! The warnings for estimates that ran off towards infinity, or towards
//! a boundary (random class logits that become one), and for classes that
//! the fit left identical (a saddle point).
//!
//! A likelihood whose supremum lies at infinity (a perfectly separated
//! logistic regression, a class whose factor loadings grow without bound)
//! still looks converged to the optimiser: the log-likelihood flattens out
//! as the parameter grows, its derivative falls below the convergence
//! criterion, and the fit stops at some huge value (loadings near 1e8 were
//! seen). The only sign is the size of the estimate, so each free parameter
//! is measured in *standard units*, the standard deviations of the
//! variables it relates, and named when it is implausibly far from zero.
//!
//! Units: an observed continuous variable's unit is its sample standard
//! deviation; a categorical dependent's is 1 (its latent response has
//! variance π²/3 or 1 under the logit or probit link); a random intercept
//! has its variable's unit, a random slope of y on x `unit(y) / sd(x)`, a
//! random class logit intercept 1, and a factor the unit of the indicator
//! whose loading is fixed at a non-zero value `c` (Mplus's default
//! identification), divided by |c|, or 1 when none is (its variance is
//! then fixed, so it is standardised). A slope or loading is measured in
//! `unit(dependent) / unit(predictor)`, a variance in `unit²`, a covariance
//! in the product of the two units, a mean in its latent variable's unit.
//!
//! Only the kinds that can run off unbounded are checked: regression
//! slopes (of dependents, factors, random slopes, class logits and the
//! log-odds of nominal variables),
//! loadings, regressions among random effects, random-effect and factor
//! variances and covariances, the means of random slopes (slopes), of
//! random class logit intercepts and of factors not on the scale of a
//! continuous variable (the mean of a class of categorical items can run
//! off like a separated logit). Thresholds, guessing parameters, class
//! logit intercepts, nominal intercepts and the slopes (or random slope
//! means) of categorical variables on 0/1 covariates (item logits on a
//! GoM's item dummies) are kept in [LOGLOW, LOGHIGH] by the optimiser and
//! reported as fixed at the bound; residual variances and covariances of
//! observed variables cannot exceed what the data allow; and the means and
//! intercepts of continuous variables, of their random intercepts and of
//! factors on their scale (a growth model's intercept) are locations of
//! the data, whose distance from zero depends on where the data's origin
//! is. Parameters held at a bound are not checked.

use mlmix_spec::{Dataset, Model, ParamKind, ParamValue, RandomKind, Scale};

/// The largest plausible |estimate| in standard units (see the module's
/// documentation) of a slope, loading or mean. A slope of 1e4 standard
/// units moves a continuous dependent by one of its standard deviations
/// within 1e-4 SD of its predictor, and a binary one from probability 1e-4
/// to 1 − 1e-4 (log odds −9.2 to 9.2) within 2e-3 SD. Estimates of real
/// data are of order 1 to 10 in these units, and the runaways seen were
/// near 1e8, so the limit leaves orders of magnitude on both sides. (It
/// misses some: a separated logistic regression stops where the nearest
/// point to the boundary has log odds near ±15, a slope of 15 over its
/// distance, which is beyond the limit only when that distance is below
/// 1.5e-3 SD.)
pub const STANDARD_UNITS_LIMIT: f64 = 1e4;

/// The largest plausible |estimate| in squared standard units of a
/// variance or covariance: [`STANDARD_UNITS_LIMIT`] squared, the variance
/// of a latent variable whose standard deviation is at that limit.
pub const SQUARED_UNITS_LIMIT: f64 = STANDARD_UNITS_LIMIT * STANDARD_UNITS_LIMIT;

/// A sample standard deviation, 1 when it is not positive (a constant
/// column) or cannot be computed.
fn sd(col: &[f64]) -> f64 {
    let (mut n, mut s) = (0.0, 0.0);
    for &x in col.iter().filter(|x| !x.is_nan()) {
        n += 1.0;
        s += x;
    }
    if n < 2.0 {
        return 1.0;
    }
    let mean = s / n;
    let ss: f64 = col
        .iter()
        .filter(|x| !x.is_nan())
        .map(|x| (x - mean) * (x - mean))
        .sum();
    let v = (ss / (n - 1.0)).sqrt();
    if v.is_finite() && v > 0.0 { v } else { 1.0 }
}

/// Standard units of the variables and latent variables of a model.
struct Units<'a> {
    model: &'a Model,
    data: &'a Dataset,
}

impl Units<'_> {
    fn categorical(&self, var: usize) -> bool {
        self.model
            .dependent(var)
            .is_some_and(|d| matches!(d.scale, Scale::Categorical { .. }))
    }

    /// An observed variable's unit: its standard deviation, 1 for a
    /// categorical dependent.
    fn var(&self, var: usize) -> f64 {
        if self.categorical(var) {
            1.0
        } else {
            self.data.columns.get(var).map_or(1.0, |c| sd(c))
        }
    }

    /// A latent variable's unit, and whether it is a location on the scale
    /// of a continuous variable (a random intercept of one, or a factor
    /// whose reference indicator is); `depth` guards against a cycle of
    /// reference loadings, which the input checks rule out.
    fn latent(&self, re: usize, depth: usize) -> (f64, bool) {
        let Some(r) = self.model.random_effects().get(re) else {
            return (1.0, false);
        };
        match r.kind {
            RandomKind::Intercept { var } | RandomKind::WithinIntercept { var } => {
                (self.var(var), !self.categorical(var))
            }
            RandomKind::Slope { var, covariate } => (self.var(var) / self.var(covariate), false),
            RandomKind::ClassIntercept { .. } => (1.0, false),
            RandomKind::Factor if depth < 8 => self
                .model
                .parameters
                .iter()
                .find_map(|p| match (p.kind, p.value) {
                    (ParamKind::Loading { re: ind, factor }, ParamValue::Fixed(c))
                        if factor == re && c != 0.0 && c.is_finite() =>
                    {
                        let (unit, location) = self.latent(ind, depth + 1);
                        Some((unit / c.abs(), location))
                    }
                    _ => None,
                })
                .unwrap_or((1.0, false)),
            RandomKind::Factor => (1.0, false),
        }
    }

    /// How far `estimate` of a parameter of kind `kind` is from zero, in
    /// its standard units, with the limit it is held to; `None` for the
    /// kinds not checked.
    fn standardised(&self, kind: &ParamKind, estimate: f64) -> Option<(f64, f64)> {
        let lat = |re: usize| self.latent(re, 0).0;
        let (value, unit, limit) = match *kind {
            ParamKind::Slope { var, covariate } => (
                estimate,
                self.var(var) / self.var(covariate),
                STANDARD_UNITS_LIMIT,
            ),
            ParamKind::ClassSlope { covariate, .. } | ParamKind::NominalSlope { covariate, .. } => {
                (estimate, 1.0 / self.var(covariate), STANDARD_UNITS_LIMIT)
            }
            ParamKind::FactorOn { re, covariate } | ParamKind::RandomSlopeOn { re, covariate } => (
                estimate,
                lat(re) / self.var(covariate),
                STANDARD_UNITS_LIMIT,
            ),
            ParamKind::RandomRegression { re, on } => {
                (estimate, lat(re) / lat(on), STANDARD_UNITS_LIMIT)
            }
            ParamKind::Loading { re, factor } => {
                (estimate, lat(re) / lat(factor), STANDARD_UNITS_LIMIT)
            }
            ParamKind::RandomVariance { re } => (estimate, lat(re).powi(2), SQUARED_UNITS_LIMIT),
            ParamKind::RandomCovariance { a, b } => {
                (estimate, lat(a) * lat(b), SQUARED_UNITS_LIMIT)
            }
            ParamKind::FactorMean { re } => match self.latent(re, 0) {
                (_, true) => return None,
                (unit, false) => (estimate, unit, STANDARD_UNITS_LIMIT),
            },
            ParamKind::ClassIntercept { cv, class } if self.model.has_random_logit(cv, class) => {
                (estimate, 1.0, STANDARD_UNITS_LIMIT)
            }
            _ => return None,
        };
        Some(((value / unit).abs(), limit))
    }
}

/// The free parameters (0-based) whose estimates are implausibly far from
/// zero in standard units (see the module's documentation), with their
/// estimates, in order: `phi` holds every parameter's estimate, `at_bound`
/// the free parameters held at a bound (not checked).
pub fn diverging_parameters(
    model: &Model,
    data: &Dataset,
    phi: &[f64],
    at_bound: &[usize],
) -> Vec<(usize, f64)> {
    let units = Units { model, data };
    let mut out: Vec<(usize, f64)> = Vec::new();
    for (p, &estimate) in model.parameters.iter().zip(phi) {
        let ParamValue::Free(f) = p.value else {
            continue;
        };
        if at_bound.contains(&f) || out.iter().any(|(g, _)| *g == f) {
            continue;
        }
        let far = units
            .standardised(&p.kind, estimate)
            .is_some_and(|(size, limit)| size > limit);
        if far {
            out.push((f, estimate));
        }
    }
    out.sort_by_key(|(f, _)| *f);
    out
}

/// The warning naming the free parameters of [`diverging_parameters`],
/// `None` when there are none.
pub fn diverging_warning(
    model: &Model,
    data: &Dataset,
    phi: &[f64],
    at_bound: &[usize],
) -> Option<String> {
    let far = diverging_parameters(model, data, phi, at_bound);
    if far.is_empty() {
        return None;
    }
    let names: Vec<String> = far
        .iter()
        .map(|&(f, est)| format!("{} ({}) = {est:.3e}", f + 1, model.free[f].name))
        .collect();
    let s = if far.len() == 1 { "" } else { "s" };
    Some(format!(
        "implausibly large estimate{s}, beyond {STANDARD_UNITS_LIMIT:.0e} in units of the standard deviations of the variables related ({SQUARED_UNITS_LIMIT:.0e} for a variance or covariance): parameter{s} {}; the likelihood may have its maximum at infinity, where the optimiser stopped only because the likelihood had flattened out: try random starts (STARTS), or fix or constrain the parameter{s}",
        names.join(", "),
    ))
}

/// The largest variance of a random class logit intercept at which the
/// integration over two or more random class logits (the K-class GoM of
/// eq 34, whose logits are not step dimensions) is trusted. Beyond it the
/// class probabilities switch between neighbouring nodes and the computed
/// log-likelihood can be off by units in either direction. Measured on
/// 1,500 simulated 3-class GoM persons × 10 items, against a brute-force
/// 401² integral, at the simulated parameters with the variances (2, 1.5)
/// scaled: × 10 (variances 20 and 15) the default adapted rule is off by
/// 0.02 and the plain grid by 0.05; × 30 by 2.4 and 12; × 100 by 24 and 95.
/// A single random class logit in its own block (the 2-class GoM) has the
/// step rule, accurate at any variance, and is not checked.
pub const CLASS_LOGIT_VARIANCE_LIMIT: f64 = 25.0;

/// The warning for random class logit intercepts whose variance is beyond
/// [`CLASS_LOGIT_VARIANCE_LIMIT`] on integration dimensions of `plan` that
/// are not step dimensions, at the estimates `phi`.
pub fn class_logit_integration_warning(
    model: &Model,
    plan: &mlmix_kernels::Plan,
    phi: &[f64],
) -> Option<String> {
    let steps: Vec<usize> = mlmix_integrate::step_dims(plan)
        .iter()
        .map(|s| s.dim)
        .collect();
    let random = model.random_effects();
    let mut wide = Vec::new();
    for block in &plan.chol {
        for (p, &d) in block.dims.iter().enumerate() {
            if d == mlmix_kernels::plan::NO_DIM || steps.contains(&d) {
                continue;
            }
            let Some(&i) = block.psi.get(p * (p + 1) / 2 + p) else {
                continue;
            };
            let i = i as usize;
            let Some(param) = model.parameters.get(i) else {
                continue;
            };
            let ParamKind::RandomVariance { re } = param.kind else {
                continue;
            };
            let logit = matches!(random[re].kind, RandomKind::ClassIntercept { .. });
            let name = random[re].name.to_ascii_uppercase();
            if logit && phi[i] > CLASS_LOGIT_VARIANCE_LIMIT && !wide.iter().any(|(n, _)| *n == name)
            {
                wide.push((name, phi[i]));
            }
        }
    }
    if wide.is_empty() {
        return None;
    }
    let list: Vec<String> = wide.iter().map(|(n, v)| format!("{n} {v:.4e}")).collect();
    Some(format!(
        "the variance of a random class logit is beyond {CLASS_LOGIT_VARIANCE_LIMIT} ({}): with two or more random class logits the integration does not resolve where the class probabilities switch at such variances, so the log-likelihood may be off by several units, and fits drift towards the latent class model (its limit); compare with the latent class model and with other starts (docs/gom.md)",
        list.join(", ")
    ))
}

/// The largest |correlation| of two random class logit intercepts at which
/// a solution is not flagged as near a singular covariance matrix. On the
/// benchmark's 4-class FMA-GoM (docs/gom.md, section 6) a start's
/// correlation of `c#2` and `c#3` went from −0.49 after 150 quasi-Newton
/// iterations to −0.98 after 450, the log-likelihood still rising about
/// 0.001 per iteration: the likelihood rose towards the model in which the
/// two logits are one, and the fit stopped at its iteration limit.
pub const CLASS_LOGIT_CORRELATION_LIMIT: f64 = 0.95;

/// The warning for pairs of random class logit intercepts whose
/// correlation at the estimates `phi` is beyond
/// [`CLASS_LOGIT_CORRELATION_LIMIT`] in absolute value (a class-specific
/// covariance matrix is checked in each class).
pub fn class_logit_correlation_warning(model: &Model, phi: &[f64]) -> Option<String> {
    let random = model.random_effects();
    let logit = |re: usize| matches!(random[re].kind, RandomKind::ClassIntercept { .. });
    // a variance in the covariance's class, else a class-invariant one
    let variance = |re: usize, class: Option<usize>| -> Option<f64> {
        let of = |c: Option<usize>| {
            model
                .parameters
                .iter()
                .position(|p| p.kind == ParamKind::RandomVariance { re } && p.class == c)
        };
        of(class).or_else(|| of(None)).map(|i| phi[i])
    };
    let mut found: Vec<(usize, usize, Option<usize>, f64)> = Vec::new();
    for (i, p) in model.parameters.iter().enumerate() {
        let ParamKind::RandomCovariance { a, b } = p.kind else {
            continue;
        };
        if !(logit(a) && logit(b)) {
            continue;
        }
        let (Some(va), Some(vb)) = (variance(a, p.class), variance(b, p.class)) else {
            continue;
        };
        let r = phi[i] / (va * vb).sqrt();
        if va > 0.0 && vb > 0.0 && r.abs() > CLASS_LOGIT_CORRELATION_LIMIT {
            found.push((a.min(b), a.max(b), p.class, r));
        }
    }
    if found.is_empty() {
        return None;
    }
    let mut list: Vec<String> = Vec::new();
    for &(a, b, class, r) in &found {
        // a class-invariant matrix repeated in every class is named once
        let same = found
            .iter()
            .filter(|f| (f.0, f.1) == (a, b))
            .all(|f| (f.3 - r).abs() < 1e-12);
        let text = match class {
            Some(k) if !same => format!(
                "{} and {} in class {}: {r:.3}",
                random[a].name.to_ascii_uppercase(),
                random[b].name.to_ascii_uppercase(),
                k + 1
            ),
            _ => format!(
                "{} and {}: {r:.3}",
                random[a].name.to_ascii_uppercase(),
                random[b].name.to_ascii_uppercase()
            ),
        };
        if !list.contains(&text) {
            list.push(text);
        }
    }
    Some(format!(
        "random class logits correlate beyond ±{CLASS_LOGIT_CORRELATION_LIMIT} ({}): their covariance matrix is nearly singular, as when the likelihood rises towards the model in which they are one; quasi-Newton then crawls towards that boundary and may stop at its iteration limit or on a flat stretch before it; compare with the model with fewer random class logits (docs/gom.md)",
        list.join(", ")
    ))
}

/// Relative difference (above 1) within which two classes' estimates of
/// the same parameter count as equal for [`identical_classes_warning`].
pub const IDENTICAL_CLASS_TOLERANCE: f64 = 1e-6;

/// The warning for latent classes that the fit left identical: classes of
/// one class variable whose class-specific measurement parameters all
/// have the same estimates at `phi` (within [`IDENTICAL_CLASS_TOLERANCE`]),
/// at least one of them a different free parameter in each. Nothing in
/// the likelihood tells such classes apart, so a start that makes them
/// equal keeps them equal at every step, and the fit ends at a saddle
/// point, not a maximum, with a singular information matrix. Seen with
/// `STARTS = 0` on the benchmark's FMA-GoM (docs/gom.md): its items'
/// class-specific logits (the means of random slopes on item dummies)
/// start at 0 in every class, and the fit stopped after 3 EM and 2
/// quasi-Newton iterations at −75537.82 with four equal classes, where
/// random starts reach −75322.
pub fn identical_classes_warning(model: &Model, phi: &[f64]) -> Option<String> {
    let mut free_of = vec![None; model.parameters.len()];
    for (f, fp) in model.free.iter().enumerate() {
        for &i in &fp.members {
            free_of[i] = Some(f);
        }
    }
    let mut found: Vec<String> = Vec::new();
    for (cv, var) in model.class_vars.iter().enumerate() {
        let kn = var.classes;
        let of_class = |k: usize| -> Vec<usize> {
            (0..model.parameters.len())
                .filter(|&i| {
                    let p = &model.parameters[i];
                    p.class == Some(k) && model.param_class_var(&p.kind) == Some(cv)
                })
                .collect()
        };
        let params: Vec<Vec<usize>> = (0..kn).map(of_class).collect();
        let same = |a: usize, b: usize| -> bool {
            let mut distinct_free = false;
            for &i in &params[a] {
                let kind = &model.parameters[i].kind;
                let Some(&j) = params[b]
                    .iter()
                    .find(|&&j| model.parameters[j].kind == *kind)
                else {
                    continue;
                };
                let (x, y) = (phi[i], phi[j]);
                if (x - y).abs() > IDENTICAL_CLASS_TOLERANCE * x.abs().max(1.0) {
                    return false;
                }
                distinct_free |=
                    free_of[i].is_some() && free_of[j].is_some() && free_of[i] != free_of[j];
            }
            distinct_free
        };
        // each class joins the group of the first earlier class it equals
        let mut group: Vec<usize> = (0..kn).collect();
        for b in 1..kn {
            if let Some(a) = (0..b).find(|&a| group[a] == a && same(a, b)) {
                group[b] = a;
            }
        }
        for g in 0..kn {
            let members: Vec<usize> = (0..kn).filter(|&k| group[k] == g).collect();
            if members.len() > 1 {
                let names: Vec<String> = members.iter().map(|k| (k + 1).to_string()).collect();
                let list = match names.split_last() {
                    Some((last, rest)) if !rest.is_empty() => {
                        format!("{} and {last}", rest.join(", "))
                    }
                    _ => names.join(""),
                };
                found.push(format!(
                    "classes {list} of {}",
                    var.name.to_ascii_uppercase()
                ));
            }
        }
    }
    if found.is_empty() {
        return None;
    }
    Some(format!(
        "{} have the same estimates in every class-specific parameter: the fit did not separate them, so this solution is a saddle point of the likelihood, not a maximum (its information matrix is singular). Starting values that are the same in every class stay so at every step; without random starts (STARTS = 0) slopes, and the means of random slopes such as a GoM's item logits, start at 0 in every class. Use random starts (STARTS) or give class-specific starting values",
        found.join("; ")
    ))
}
