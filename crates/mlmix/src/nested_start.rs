//! Starting values for a grade-of-membership model from the latent class
//! model of the same data (the paper, Section 7: "a good strategy is to
//! start from the LCA estimates").
//!
//! A GoM is a two-level mixture whose within-level class variable has
//! random logit intercepts (`c#1` on the between level); its limit as their
//! variances grow is the latent class model in which every row of a cluster
//! is in the same class: the same model with the class variable on the
//! between level. That *companion* has the same parameters but the random
//! logits' variances and covariances (fixed at 0, so they are no
//! integration dimensions), and it is cheap to fit: no integration for a
//! GoM, the factor's alone for an FMA-GoM (whose companion is the FMA).
//! Its estimates become the GoM's starting values, as if the user had
//! written them with `*`, their means stretched to keep the classes'
//! shares: the companion's solution is a start of its own, with the random
//! logits at variance [`NESTED_LOGIT_VARIANCE`] (near the limit), and the
//! random starts perturb it with the variances at
//! [`RANDOM_START_LOGIT_VARIANCE`] (STSCALE), where persons' rows mix
//! classes.
//!
//! Where the companion still has integration dimensions (the FMA of an
//! FMA-GoM) and the model's rule is an adapted product rule, the companion
//! is fitted on a coarse rule ([`COMPANION_POINTS`] points per dimension,
//! adapted: 9 in one dimension) instead of the
//! model's (29 in one dimension by default): its solution only starts the
//! model, whose own fit then runs on the model's rule, and on 7,000 persons
//! the companion with the model's rule took longer than the model's
//! initial stage. For the same reason its final-stage starts stop after
//! [`COMPANION_ITERATIONS`] quasi-Newton iterations: the FMA-GoM's
//! companion climbed a flat ridge for about 300 (a class shrinking from 9%
//! to 1% of the answers), most of its time, for a few units of
//! log-likelihood that the model's own starts, perturbed from it, do not
//! need (docs/gom.md, section 6, "The whole fit on the new data").

use mlmix_spec::{IntegrationMethod, Loaded, Model, ParamKind, ParamValue, RandomKind};

use crate::fit::{FitOptions, fit};
use crate::results::NestedStart;
use mlmix_optim::{Observer, Termination};

/// The latent class model nested in a GoM, and how its free parameters
/// correspond to the GoM's.
pub struct Companion {
    /// The model: the GoM with its class variable on the between level.
    pub model: Model,
    /// For each free parameter of the GoM, the companion's free parameter
    /// with the same members (`None`: a random logit's variance or
    /// covariance, which the companion fixes at 0).
    pub free_map: Vec<Option<usize>>,
    /// The class variable it puts on the between level.
    pub class_var: usize,
    /// What it is, for the report ("latent class model", or "factor
    /// mixture model" when the GoM has other random effects).
    pub kind: &'static str,
}

/// The companion of `model`, if it is a GoM: a two-level model whose
/// within-level class variable has random logit intercepts that are
/// integration dimensions, whose class logit has no covariates but
/// between-level ones, that no other class variable is regressed on, and
/// whose random logits are regressed on nothing and measure no factor
/// (the restricted GoM of eq 35 keeps its default starts).
pub fn companion(model: &Model) -> Option<Companion> {
    model.two_level.as_ref()?;
    let random = model.random_effects();
    let logit_of = |re: usize| match random.get(re).map(|r| r.kind) {
        Some(RandomKind::ClassIntercept { cv, .. }) => Some(cv),
        _ => None,
    };
    // the class variable of the random logits with a free variance
    let mut cv = None;
    for p in &model.parameters {
        if let (ParamKind::RandomVariance { re }, ParamValue::Free(_)) = (p.kind, p.value)
            && let Some(c) = logit_of(re)
        {
            if cv.is_some_and(|x| x != c) {
                return None;
            }
            cv = Some(c);
        }
    }
    let cv = cv?;
    let class_var = &model.class_vars[cv];
    let between_covariates = class_var
        .covariates
        .iter()
        .all(|&x| model.variables[x].between);
    let is_parent = model.class_vars.iter().any(|c| c.parents.contains(&cv));
    if class_var.between || !class_var.parents.is_empty() || is_parent || !between_covariates {
        return None;
    }
    let logit = |re: usize| logit_of(re) == Some(cv);
    let mut companion = model.clone();
    for p in &mut companion.parameters {
        match p.kind {
            ParamKind::RandomVariance { re } if logit(re) => {
                p.value = ParamValue::Fixed(0.0);
            }
            ParamKind::RandomCovariance { a, b } if logit(a) || logit(b) => {
                p.value = ParamValue::Fixed(0.0);
            }
            ParamKind::RandomRegression { re, on } if logit(re) || logit(on) => return None,
            ParamKind::Loading { re, factor } if logit(re) || logit(factor) => return None,
            ParamKind::RandomSlopeOn { re, .. } | ParamKind::FactorOn { re, .. } if logit(re) => {
                return None;
            }
            _ => {}
        }
    }
    companion.class_vars[cv].between = true;
    companion.output.noserror = true;
    companion.savedata = None;
    let free_map = renumber_free(&mut companion);
    // integration dimensions left: a factor (the FMA-GoM's), random effects
    let other_random = companion.parameters.iter().any(|p| {
        matches!(p.kind, ParamKind::RandomVariance { .. }) && p.value != ParamValue::Fixed(0.0)
    });
    // starting values only: its integration on a coarse adapted rule
    let t = &mut companion.latent.integration;
    if other_random && t.adaptive && t.method != IntegrationMethod::MonteCarlo {
        t.points = t.points.min(COMPANION_POINTS);
    }
    if other_random {
        let a = &mut companion.analysis;
        a.qn_iterations = a.qn_iterations.min(COMPANION_ITERATIONS);
    }
    Some(Companion {
        model: companion,
        class_var: cv,
        free_map,
        kind: if other_random {
            "factor mixture model"
        } else {
            "latent class model"
        },
    })
}

/// Drops the free parameters left without members after some were fixed,
/// renumbering the rest (in their order); returns each old free
/// parameter's new number.
fn renumber_free(model: &mut Model) -> Vec<Option<usize>> {
    let old = std::mem::take(&mut model.free);
    let mut map = vec![None; old.len()];
    for (f, mut fp) in old.into_iter().enumerate() {
        fp.members
            .retain(|&m| model.parameters[m].value == ParamValue::Free(f));
        if !fp.members.is_empty() {
            map[f] = Some(model.free.len());
            model.free.push(fp);
        }
    }
    for p in &mut model.parameters {
        if let ParamValue::Free(f) = p.value {
            p.value = map[f].map_or(ParamValue::Fixed(0.0), ParamValue::Free);
        }
    }
    map
}

/// The most quasi-Newton iterations of a companion's start when the
/// companion still integrates (module documentation).
pub const COMPANION_ITERATIONS: usize = 50;

/// Points per dimension of the companion's adapted rule, where the model's
/// is an adapted product rule (5: 9 adapted points in the one dimension of
/// an FMA-GoM's factor, against the model's 29; see the module's text).
pub const COMPANION_POINTS: usize = 5;

/// The variance of the random class logits at the start that is the
/// nested model's solution itself (start 0, and the only start with
/// `STARTS = 0`): large enough that the start is near it (most of a
/// person's rows in one class), small enough that the logits' integration
/// is accurate (below the warning's 25, docs/gom.md).
pub const NESTED_LOGIT_VARIANCE: f64 = 10.0;

/// The variance of the random class logits that the random starts perturb
/// the nested model's solution at. From [`NESTED_LOGIT_VARIANCE`] every
/// start of the 4-class FMA-GoM of the benchmark (7,000 persons, generated
/// with variances 1.5, 1.2 and 1) drifted to the latent class limit
/// (variances above 1,000, log-likelihood -75333.45); from 1.5 its best
/// starts climbed 11 higher, to -75322.26, though without converging in
/// the default 1,000 iterations (docs/gom.md, section 6, "The default
/// since 2026-12-03"). Start 0 keeps the limit's side, so the fit is
/// never below the latent class model's basin for want of a start there.
pub const RANDOM_START_LOGIT_VARIANCE: f64 = 1.5;

/// The GoM's starting values from its nested model: `at_limit` for the
/// start that is the nested model's solution (and for `STARTS = 0`), and
/// `for_random` for the random starts to perturb. They differ only in the
/// random class logits' variances ([`NESTED_LOGIT_VARIANCE`] and
/// [`RANDOM_START_LOGIT_VARIANCE`]) and their means (stretched to keep the
/// classes' shares at each variance).
pub struct NestedModels {
    /// Starts at the nested model's solution, near the limit.
    pub at_limit: Model,
    /// The base the random starts perturb.
    pub for_random: Model,
}

/// Fits the companion of `loaded`'s model, if it has one, and returns the
/// model with the companion's estimates as starting values (where the
/// input gave none), at the two variances of [`NestedModels`], with what
/// was done for the report; or the reason the
/// companion failed (the model then keeps its default starts). A model
/// whose input gives every free parameter a starting value has no use for
/// the companion, which is then not fitted.
pub fn nested_starts(
    loaded: &Loaded,
    options: &FitOptions,
    observer: &dyn Observer,
) -> Option<Result<(NestedModels, NestedStart), String>> {
    let c = companion(&loaded.model)?;
    let given = |m: &usize| loaded.model.parameters[*m].start.is_some();
    if loaded
        .model
        .free
        .iter()
        .all(|f| f.members.iter().all(given))
    {
        return None;
    }
    let sub = Loaded {
        model: c.model,
        data: loaded.data.clone(),
        warnings: Vec::new(),
        source: loaded.source.clone(),
    };
    // its progress shows under its own name
    observer.nested_model(Some(c.kind));
    let fitted = fit(&sub, options, observer);
    observer.nested_model(None);
    let fitted = match fitted {
        Ok(f) => f,
        Err(e) => return Some(Err(format!("the {} did not fit: {e}", c.kind))),
    };
    if !fitted.loglikelihood.is_finite() {
        return Some(Err(format!("the {} did not fit", c.kind)));
    }
    let with_variance = |variance: f64| {
        let mut model = loaded.model.clone();
        // E expit(μ + σz) ≈ expit(μ / sqrt(1 + πσ²/8)) (the probit
        // approximation): the mean that keeps the classes' shares
        let stretch = (1.0 + std::f64::consts::PI * variance / 8.0).sqrt();
        for (f, new) in c.free_map.iter().enumerate() {
            for &m in &loaded.model.free[f].members {
                let p = &mut model.parameters[m];
                if p.start.is_some() {
                    continue;
                }
                p.start = match (p.kind, *new) {
                    (ParamKind::RandomVariance { .. }, None) => Some(variance),
                    (ParamKind::ClassIntercept { cv, .. }, Some(n)) if cv == c.class_var => {
                        Some(fitted.free[n].estimate * stretch)
                    }
                    (_, Some(n)) => Some(fitted.free[n].estimate),
                    (_, None) => None,
                };
            }
        }
        model
    };
    let models = NestedModels {
        at_limit: with_variance(NESTED_LOGIT_VARIANCE),
        for_random: with_variance(RANDOM_START_LOGIT_VARIANCE),
    };
    let integration = &sub.model.latent.integration;
    let note = NestedStart {
        model: c.kind.to_string(),
        integration_points: (integration.points < loaded.model.latent.integration.points)
            .then_some(integration.points),
        loglikelihood: fitted.loglikelihood,
        converged: fitted.converged,
        iteration_limit: (sub.model.analysis.qn_iterations < loaded.model.analysis.qn_iterations
            && fitted.termination == Termination::MaxIterations)
            .then_some(sub.model.analysis.qn_iterations),
        best_replicated: fitted.starts.best_replicated,
    };
    Some(Ok((models, note)))
}
