//! The between-level structural model of the random effects (eq 5, 18,
//! 25): eta = mu + B eta + Gamma w + xi, xi ~ N(0, Psi).
//!
//! mu is the parameter each random effect makes random (an intercept, the
//! mean of a slope, a class logit intercept; a categorical intercept has
//! mean 0, its thresholds carry its location), Gamma its regressions on
//! BETWEEN covariates (`y ON w` is the slope of `y` on `w`, `s ON w` a
//! [`ParamKind::RandomSlopeOn`], `c#1 ON w` a class logit slope), B the
//! [`ParamKind::RandomRegression`]s and Psi the random-effect variances and
//! covariances. These are the questions the engine and the input checks ask
//! about that structure; both use the same answers.

use crate::model::{Model, ParamKind, RandomKind, Scale};

/// A combination of between-level features the engine does not handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RandomIssue {
    /// What is wrong, in words.
    pub message: String,
    /// What the user can do about it.
    pub help: String,
    /// What caused it (for the input checks to point at a statement).
    pub at: IssueAt,
}

/// The statement behind a [`RandomIssue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueAt {
    /// The statement that made the random-effect variances class-specific.
    ClassSpecificCovariance,
    /// A regression of random effect `re` on another random effect.
    Regression {
        /// The dependent random effect.
        re: usize,
        /// The random effect it is regressed on.
        on: usize,
    },
    /// Random effect `re` acts on nominal variable `var`.
    Nominal {
        /// The random effect.
        re: usize,
        /// The nominal variable.
        var: usize,
    },
}

impl Model {
    /// The parameter kind of the regression of random effect `re` on `on`:
    /// a factor loading when the model has one, a
    /// [`ParamKind::RandomRegression`] otherwise.
    pub fn regression_kind(&self, re: usize, on: usize) -> ParamKind {
        let loading = ParamKind::Loading { re, factor: on };
        if self.parameters.iter().any(|p| p.kind == loading) {
            loading
        } else {
            ParamKind::RandomRegression { re, on }
        }
    }

    /// The regressions among random effects (factor loadings included),
    /// `(re, on)`, distinct, sorted.
    pub fn random_regressions(&self) -> Vec<(usize, usize)> {
        let mut v: Vec<(usize, usize)> = self
            .parameters
            .iter()
            .filter_map(|p| match p.kind {
                ParamKind::RandomRegression { re, on } => Some((re, on)),
                ParamKind::Loading { re, factor } => Some((re, factor)),
                _ => None,
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The random effects in an order in which every one comes after
    /// those it is regressed on (ties in index order, so without
    /// regressions this is `0..n`); `None` if the regressions form a cycle.
    pub fn random_order(&self) -> Option<Vec<usize>> {
        let n = self.random_effects().len();
        let regs = self.random_regressions();
        let mut indegree = vec![0usize; n];
        for &(re, _) in &regs {
            indegree[re] += 1;
        }
        let mut done = vec![false; n];
        let mut order = Vec::with_capacity(n);
        while order.len() < n {
            let next = (0..n).find(|&a| !done[a] && indegree[a] == 0)?;
            done[next] = true;
            order.push(next);
            for &(re, on) in &regs {
                if on == next {
                    indegree[re] -= 1;
                }
            }
        }
        Some(order)
    }

    /// The random effects that `re` depends on through regressions, `re`
    /// included, in index order (finite even if the regressions loop).
    pub fn random_ancestors(&self, re: usize) -> Vec<usize> {
        let regs = self.random_regressions();
        let mut seen = vec![false; self.random_effects().len()];
        let mut stack = vec![re];
        seen[re] = true;
        while let Some(a) = stack.pop() {
            for &(r, on) in &regs {
                if r == a && !seen[on] {
                    seen[on] = true;
                    stack.push(on);
                }
            }
        }
        (0..seen.len()).filter(|&a| seen[a]).collect()
    }

    /// The parameter that is random effect `re`'s mean (its intercept, slope
    /// or class logit intercept); `None` for the random intercept of a
    /// categorical variable, whose mean is 0 (its thresholds carry its
    /// location).
    pub fn random_mean(&self, re: usize) -> Option<ParamKind> {
        match self.random_effects().get(re)?.kind {
            RandomKind::Intercept { var } => match self.dependent(var)?.scale {
                Scale::Continuous => Some(ParamKind::Mean { var }),
                Scale::Categorical { .. } => None,
            },
            RandomKind::Slope { var, covariate } => Some(ParamKind::Slope { var, covariate }),
            RandomKind::ClassIntercept { cv, class } => {
                Some(ParamKind::ClassIntercept { cv, class })
            }
            RandomKind::Factor => Some(ParamKind::FactorMean { re }),
            // its mean is its variable's own intercept
            RandomKind::WithinIntercept { .. } => None,
        }
    }

    /// Random effect `re`'s regressions on BETWEEN covariates (its row of
    /// Gamma): `(covariate, parameter)`, in covariate order.
    pub fn random_covariate_effects(&self, re: usize) -> Vec<(usize, ParamKind)> {
        let Some(r) = self.random_effects().get(re) else {
            return Vec::new();
        };
        let between = |w: &usize| self.variables.get(*w).is_some_and(|v| v.between);
        let mut out: Vec<(usize, ParamKind)> = match r.kind {
            RandomKind::Intercept { var } => self
                .dependent(var)
                .map(|d| d.covariates.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(between)
                .map(|w| (w, ParamKind::Slope { var, covariate: w }))
                .collect(),
            RandomKind::Slope { .. } => self
                .parameters
                .iter()
                .filter_map(|p| match p.kind {
                    ParamKind::RandomSlopeOn { re: r2, covariate } if r2 == re => {
                        Some((covariate, p.kind))
                    }
                    _ => None,
                })
                .collect(),
            RandomKind::ClassIntercept { cv, class } => self
                .class_vars
                .get(cv)
                .map(|c| c.covariates.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(between)
                .map(|w| {
                    (
                        w,
                        ParamKind::ClassSlope {
                            cv,
                            class,
                            covariate: w,
                        },
                    )
                })
                .collect(),
            RandomKind::WithinIntercept { .. } => Vec::new(),
            RandomKind::Factor => self
                .parameters
                .iter()
                .filter_map(|p| match p.kind {
                    ParamKind::FactorOn { re: f, covariate } if f == re => {
                        Some((covariate, p.kind))
                    }
                    _ => None,
                })
                .collect(),
        };
        out.sort_unstable_by_key(|x| x.0);
        out.dedup_by_key(|x| x.0);
        out
    }

    /// The BETWEEN covariates random effect `re` depends on, directly or
    /// through the random effects it is regressed on, in order.
    pub fn random_covariates(&self, re: usize) -> Vec<usize> {
        let mut w: Vec<usize> = self
            .random_ancestors(re)
            .into_iter()
            .flat_map(|b| self.random_covariate_effects(b))
            .map(|x| x.0)
            .collect();
        w.sort_unstable();
        w.dedup();
        w
    }

    /// The products `x * w` of a WITHIN covariate with a BETWEEN covariate
    /// that the model needs as data columns: a random slope on `x` whose
    /// mean depends on `w` (`s ON w`, or through regressions on other random
    /// effects) puts `g x w` in its dependent's equation. The engine
    /// appends them after the variables' columns, in this order.
    pub fn product_columns(&self) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize)> = Vec::new();
        for (re, r) in self.random_effects().iter().enumerate() {
            if let RandomKind::Slope { covariate: x, .. } = r.kind {
                for w in self.random_covariates(re) {
                    if !out.contains(&(x, w)) {
                        out.push((x, w));
                    }
                }
            }
        }
        out
    }

    /// The class variable the parameters of the term random effect `re`
    /// acts on vary over: its dependent's class variable, or the one the
    /// random-effect variances vary over if the dependent has none; `None`
    /// for a class logit intercept.
    pub fn random_context(&self, re: usize) -> Option<usize> {
        let cov = self.latent.cov_class_var;
        match self.random_effects().get(re)?.kind {
            RandomKind::Intercept { var } | RandomKind::Slope { var, .. } => {
                self.dependent(var).and_then(|d| d.class_var).or(cov)
            }
            RandomKind::ClassIntercept { .. } => None,
            RandomKind::Factor | RandomKind::WithinIntercept { .. } => cov,
        }
    }

    /// Whether every class's instance of a class-specific parameter is the
    /// same number: one free parameter (held equal, the default for
    /// slopes), or fixed at one value. Such a parameter can enter a term
    /// that does not vary over its classes.
    pub fn held_equal_across_classes(&self, kind: &ParamKind) -> bool {
        let mut values = self
            .parameters
            .iter()
            .filter(|p| p.kind == *kind)
            .map(|p| p.value);
        match values.next() {
            Some(first) => values.all(|v| v == first),
            None => true,
        }
    }

    /// Random effects (random intercepts, slopes, factors through their
    /// indicators' intercepts) on a nominal variable: not supported.
    fn nominal_random_issues(&self) -> Vec<RandomIssue> {
        let mut out = Vec::new();
        for (re, r) in self.random_effects().iter().enumerate() {
            let (RandomKind::Intercept { var }
            | RandomKind::Slope { var, .. }
            | RandomKind::WithinIntercept { var }) = r.kind
            else {
                continue;
            };
            if !self.is_nominal(var) {
                continue;
            }
            let name = &self.variables[var].name;
            out.push(RandomIssue {
                message: format!(
                    "a random effect ({}) on the nominal variable {name}",
                    r.name
                ),
                help: format!(
                    "a nominal variable takes fixed intercepts and slopes only; in a two-level model list {name} in WITHIN"
                ),
                at: IssueAt::Nominal { re, var },
            });
        }
        out
    }

    /// Combinations of random effects, regressions and class-specific
    /// parameters the engine does not handle yet (empty if none).
    pub fn random_structure_issues(&self) -> Vec<RandomIssue> {
        let mut out = Vec::new();
        let random = self.random_effects();
        let cov = self.latent.cov_class_var;
        let cv_name = |c: usize| self.class_vars[c].name.clone();
        let regs = self.random_regressions();
        if self.random_order().is_none() {
            let cyclic: Vec<(usize, usize)> = regs
                .iter()
                .copied()
                .filter(|&(re, on)| self.random_ancestors(on).contains(&re))
                .collect();
            let names: Vec<String> = cyclic
                .iter()
                .map(|&(re, on)| format!("{} ON {}", random[re].name, random[on].name))
                .collect();
            if let Some(&(re, on)) = cyclic.first() {
                out.push(RandomIssue {
                    message: format!(
                        "the regressions among random effects form a cycle ({}): I - B is not invertible",
                        names.join(", ")
                    ),
                    help: "a random effect cannot depend on itself: remove one of the regressions"
                        .to_string(),
                    at: IssueAt::Regression { re, on },
                });
            }
            return out;
        }
        out.extend(self.nominal_random_issues());
        if let Some(d) = cov {
            let mut named: Vec<usize> = Vec::new();
            for r in random {
                if let RandomKind::Intercept { var } | RandomKind::Slope { var, .. } = r.kind
                    && let Some(m) = self.dependent(var).and_then(|x| x.class_var)
                    && m != d
                    && !named.contains(&var)
                {
                    named.push(var);
                    out.push(RandomIssue {
                        message: format!(
                            "{} has parameters varying over one class variable ({}) and random-effect variances varying over another ({})",
                            self.variables[var].name,
                            cv_name(m),
                            cv_name(d)
                        ),
                        help: format!(
                            "state the random-effect variances in %OVERALL%, or let {} measure {}",
                            cv_name(d),
                            self.variables[var].name
                        ),
                        at: IssueAt::ClassSpecificCovariance,
                    });
                }
            }
            let mut cvs: Vec<usize> = random
                .iter()
                .filter_map(|r| match r.kind {
                    RandomKind::ClassIntercept { cv, .. } => Some(cv),
                    _ => None,
                })
                .collect();
            cvs.sort_unstable();
            cvs.dedup();
            // (loadings varying over a within-level class variable leave
            // the random logits' distribution one for all classes)
            if self.cov_class_is_within() {
                cvs.clear();
            }
            for cv in cvs {
                out.push(RandomIssue {
                    message: format!(
                        "random logit intercepts of {} with class-specific random-effect variances",
                        cv_name(cv)
                    ),
                    help:
                        "state the random-effect variances in %OVERALL% (one value for all classes)"
                            .to_string(),
                    at: IssueAt::ClassSpecificCovariance,
                });
            }
        }
        // a random effect regressed on others takes their means and
        // covariate effects: they must vary over the classes the term it
        // acts on varies over (or over none)
        for (re, r) in random.iter().enumerate() {
            let ctx = self.random_context(re);
            let Some(&(_, on)) = regs.iter().find(|x| x.0 == re) else {
                continue;
            };
            let target = match r.kind {
                RandomKind::Intercept { var }
                | RandomKind::Slope { var, .. }
                | RandomKind::WithinIntercept { var } => self.variables[var].name.clone(),
                RandomKind::ClassIntercept { cv, .. } => {
                    format!("the logits of {}", cv_name(cv))
                }
                RandomKind::Factor => format!("the factor {}", r.name),
            };
            'ancestors: for b in self.random_ancestors(re) {
                if b == re {
                    continue;
                }
                let kinds =
                    self.random_mean(b)
                        .into_iter()
                        .map(|k| (k, "mean".to_string()))
                        .chain(self.random_covariate_effects(b).into_iter().map(|(w, k)| {
                            (k, format!("regression on {}", self.variables[w].name))
                        }));
                for (k, what) in kinds {
                    let Some(c) = self.param_class_var(&k) else {
                        continue;
                    };
                    if Some(c) == ctx || self.held_equal_across_classes(&k) {
                        continue;
                    }
                    let example = match k {
                        ParamKind::Mean { var } => format!("[{}] (m);", self.variables[var].name),
                        ParamKind::Slope { var, covariate } => format!(
                            "{} ON {} (g);",
                            self.variables[var].name, self.variables[covariate].name
                        ),
                        ParamKind::RandomSlopeOn { re: r2, covariate } => format!(
                            "{} ON {} (g);",
                            random[r2].name, self.variables[covariate].name
                        ),
                        _ => String::new(),
                    };
                    let (there, fix) = match ctx {
                        Some(m) => (
                            format!("vary across the classes of {}", cv_name(m)),
                            format!(
                                "let {} measure both, or hold {}'s {what} equal across the classes of {} with one label, e.g. {example}",
                                cv_name(m),
                                random[b].name,
                                cv_name(c)
                            ),
                        ),
                        None => (
                            "do not vary across classes".to_string(),
                            format!(
                                "hold {}'s {what} equal across the classes of {} with one label, e.g. {example}",
                                random[b].name,
                                cv_name(c),
                            ),
                        ),
                    };
                    out.push(RandomIssue {
                        message: format!(
                            "{} depends on {}, whose {what} varies across the classes of {}, but the parameters of {target} {there}",
                            random[re].name,
                            random[b].name,
                            cv_name(c),
                        ),
                        help: format!(
                            "{} takes on the mean and covariate effects of {}: {fix}",
                            random[re].name, random[b].name
                        ),
                        at: IssueAt::Regression { re, on },
                    });
                    break 'ancestors;
                }
            }
        }
        out
    }
}
