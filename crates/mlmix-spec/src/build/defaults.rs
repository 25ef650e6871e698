//! Mplus's defaults: every parameter of the model, in the order of the
//! parameter vector, with its default equality across classes (measurement
//! intercepts and thresholds vary across classes; variances, covariances and
//! slopes are held equal; class logit parameters are free).

use std::collections::HashMap;

use super::factors::{first_loadings, loading_kind};
use super::statements::{Mention, Target};
use crate::model::*;

/// A parameter's default equality group.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Key {
    /// Held equal across classes: one group per kind.
    Shared(usize),
    /// A group of its own (the parameter's index).
    Own(usize),
}

/// The model's parameters, all free, with their default groups.
#[derive(Default)]
pub(super) struct Defaults {
    /// The parameters, in order.
    pub(super) params: Vec<Parameter>,
    /// The default group of each parameter.
    pub(super) keys: Vec<Key>,
    /// The group of each class-invariant kind.
    shared_ids: HashMap<ParamKind, usize>,
    /// Each parameter's index, by kind and class.
    pub(super) index: HashMap<(ParamKind, Option<usize>), usize>,
}

impl Defaults {
    /// The parameters of `model` (which has no parameters yet). `mentions`
    /// add random slopes' regressions and random effects' covariances and
    /// regressions.
    pub(super) fn new(model: &Model, mentions: &[Mention]) -> Self {
        let mut d = Defaults::default();
        d.measurement(model, mentions);
        d.class_model(model);
        d.random_effects(model, &model.latent, mentions);
        d
    }

    fn push(&mut self, kind: ParamKind, class: Option<usize>, class_varying: bool) {
        let i = self.params.len();
        self.params.push(Parameter {
            kind,
            class,
            value: ParamValue::Free(0),
            start: None,
            label: None,
        });
        let key = if class_varying {
            Key::Own(i)
        } else {
            let n = self.shared_ids.len();
            Key::Shared(*self.shared_ids.entry(kind).or_insert(n))
        };
        self.keys.push(key);
        self.index.insert((kind, class), i);
    }

    /// Measurement parameters, class by class for each class variable:
    /// intercepts or thresholds (varying across classes), slopes, random
    /// slopes' regressions, variances and covariances (held equal).
    fn measurement(&mut self, model: &Model, mentions: &[Mention]) {
        // regressions of random slopes on BETWEEN covariates (`s ON w`),
        // parameters of the slope's dependent variable
        let mut slope_on: Vec<(usize, usize, usize)> = Vec::new(); // (var, re, w)
        for m in mentions {
            if let Target::RandomSlopeOn { re, covariate } = m.target
                && let Some(RandomKind::Slope { var, .. }) =
                    model.random_effects().get(re).map(|r| r.kind)
                && !slope_on.contains(&(var, re, covariate))
            {
                slope_on.push((var, re, covariate));
            }
        }
        // every class variable's dependents, then those no class variable
        // measures (all of them without class variables; with them, a
        // BETWEEN dependent when every class variable is within-level)
        let ncv = model.class_vars.len();
        let cv_order: Vec<Option<usize>> = (0..ncv).map(Some).chain([None]).collect();
        for &cvo in &cv_order {
            let kmax = cvo.map_or(1, |c| model.class_vars[c].classes);
            for k in 0..kmax {
                let class = cvo.map(|_| k);
                self.class_measurement(model, cvo, class, &slope_on);
            }
        }
    }

    /// The measurement parameters of one class of class variable `cvo`
    /// (`None`: no class variable).
    fn class_measurement(
        &mut self,
        model: &Model,
        cvo: Option<usize>,
        class: Option<usize>,
        slope_on: &[(usize, usize, usize)],
    ) {
        for v in 0..model.variables.len() {
            let Some(dep) = model.dependent(v) else {
                continue;
            };
            if dep.class_var != cvo {
                continue;
            }
            let indicator = model.two_level.is_none() && model.intercept_of(v).is_some();
            match &dep.scale {
                // a factor indicator's thresholds or intercept are held
                // equal across classes (measurement invariance), a latent
                // class indicator's vary
                Scale::Categorical { categories } if dep.nominal => {
                    for category in 1..categories.len() {
                        let kind = ParamKind::NominalIntercept { var: v, category };
                        self.push(kind, class, !indicator);
                    }
                }
                Scale::Categorical { categories } => {
                    for t in 1..categories.len() {
                        self.push(ParamKind::Threshold { var: v, index: t }, class, !indicator);
                    }
                    if dep.guessing {
                        self.push(ParamKind::Guessing { var: v }, class, !indicator);
                    }
                }
                Scale::Continuous => self.push(ParamKind::Mean { var: v }, class, !indicator),
            }
            let ncat = model.n_categories(v).unwrap_or(0);
            for &x in dep.covariates.iter().filter(|_| dep.nominal) {
                for category in 1..ncat {
                    let kind = ParamKind::NominalSlope {
                        var: v,
                        category,
                        covariate: x,
                    };
                    self.push(kind, class, false);
                }
            }
            for &x in dep.covariates.iter().filter(|_| !dep.nominal) {
                self.push(
                    ParamKind::Slope {
                        var: v,
                        covariate: x,
                    },
                    class,
                    false,
                );
            }
            for &(_, re, w) in slope_on.iter().filter(|x| x.0 == v) {
                self.push(ParamKind::RandomSlopeOn { re, covariate: w }, class, false);
            }
        }
        for v in 0..model.variables.len() {
            let Some(dep) = model.dependent(v) else {
                continue;
            };
            if dep.class_var == cvo && dep.scale == Scale::Continuous {
                self.push(ParamKind::Variance { var: v }, class, false);
            }
        }
        for &(a, b) in &model.covariances {
            if model.dependent(a).and_then(|d| d.class_var) == cvo {
                self.push(ParamKind::Covariance { a, b }, class, false);
            }
        }
    }

    /// The class model: logit intercepts, slopes on covariates, effects of
    /// earlier class variables.
    fn class_model(&mut self, model: &Model) {
        for (cv, c) in model.class_vars.iter().enumerate() {
            for k in 0..c.classes - 1 {
                self.push(ParamKind::ClassIntercept { cv, class: k }, None, true);
            }
            for &x in &c.covariates {
                for k in 0..c.classes - 1 {
                    self.push(
                        ParamKind::ClassSlope {
                            cv,
                            class: k,
                            covariate: x,
                        },
                        None,
                        true,
                    );
                }
            }
            for &p in &c.parents {
                for k in 0..c.classes - 1 {
                    for j in 0..model.class_vars[p].classes - 1 {
                        self.push(
                            ParamKind::ClassOnClass {
                                cv,
                                class: k,
                                parent: p,
                                parent_class: j,
                            },
                            None,
                            true,
                        );
                    }
                }
            }
        }
    }

    /// Random effects: variances free, covariances where WITH names them,
    /// regressions among them; per class of `cov_class_var` when given.
    fn random_effects(&mut self, model: &Model, tl: &Latent, mentions: &[Mention]) {
        let classes: Vec<Option<usize>> = match tl.cov_class_var {
            Some(c) => (0..model.class_vars[c].classes).map(Some).collect(),
            None => vec![None],
        };
        let within_cv = model.cov_class_is_within();
        let mut pairs: Vec<(usize, usize)> = mentions
            .iter()
            .filter_map(|m| match m.target {
                Target::RandomCovariance { a, b } => Some((a, b)),
                _ => None,
            })
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let factors: Vec<usize> = (0..tl.random.len())
            .filter(|&re| tl.random[re].kind == RandomKind::Factor)
            .collect();
        // exogenous factors (regressed on no other factor) covary freely
        // (Mplus's default); a regressed factor's residual covaries with
        // nothing unless stated
        let regressed = |f: usize| {
            mentions.iter().any(|m| match m.target {
                Target::RandomRegression { re, on } => re == f && factors.contains(&on),
                Target::LoadingFactor { lower, .. } => lower == f,
                _ => false,
            })
        };
        let exogenous: Vec<usize> = factors.iter().copied().filter(|&f| !regressed(f)).collect();
        for (i, &a) in exogenous.iter().enumerate() {
            // (factors on different levels of a two-level model do not)
            for &b in exogenous[i + 1..]
                .iter()
                .filter(|&&b| tl.random[b].within == tl.random[a].within)
            {
                pairs.push((a, b));
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        let mut regressions: Vec<ParamKind> = mentions
            .iter()
            .filter_map(|m| match m.target {
                Target::RandomRegression { re, on } => Some(ParamKind::RandomRegression { re, on }),
                Target::Loading { .. }
                | Target::LoadingClass { .. }
                | Target::LoadingFactor { .. } => loading_kind(model, m.target),
                Target::OnFactor { var, factor } => Some(ParamKind::RandomRegression {
                    re: model.intercept_of(var)?,
                    on: factor,
                }),
                Target::FactorOn { re, covariate } => Some(ParamKind::FactorOn { re, covariate }),
                _ => None,
            })
            .collect();
        regressions.dedup();
        let mut seen = Vec::new();
        regressions.retain(|k| {
            let new = !seen.contains(k);
            seen.push(*k);
            new
        });
        let first = first_loadings(model, mentions);
        let n_classes = classes.len();
        for (ci, &class) in classes.iter().enumerate() {
            for re in 0..tl.random.len() {
                self.push(ParamKind::RandomVariance { re }, class, false);
                if model.is_factor_indicator_variance(&ParamKind::RandomVariance { re }) {
                    self.fix_last(0.0);
                }
            }
            for &(a, b) in &pairs {
                self.push(ParamKind::RandomCovariance { a, b }, class, false);
            }
            for &kind in &regressions {
                self.push(kind, class, false);
                if first.contains(&kind) {
                    self.fix_last(1.0);
                }
            }
            // factor means: 0 without classes and in the last class;
            // within-level factors of a two-level model: 0; 0 in every
            // class when only loadings vary over a within-level class
            // variable (a cluster's factor has one mean)
            for &re in &factors {
                self.push(ParamKind::FactorMean { re }, class, !within_cv);
                if ci + 1 == n_classes || tl.random[re].within || within_cv {
                    self.fix_last(0.0);
                }
            }
        }
    }

    /// Fixes the parameter pushed last at `v` (a default the input can
    /// free with `*`).
    fn fix_last(&mut self, v: f64) {
        if let Some(p) = self.params.last_mut() {
            p.value = ParamValue::Fixed(v);
        }
    }
}
