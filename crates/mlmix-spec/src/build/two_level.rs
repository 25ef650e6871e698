//! Two-level models: what a statement means on each level (random
//! intercepts, slopes and class logit intercepts), the random effects the
//! model has, and the random structures the engine refuses.

use super::Builder;
use super::declarations::Decls;
use super::grammar::{Block, Level};
use super::statements::{Mention, Stated, Target};
use crate::between::IssueAt;
use crate::diag::Diagnostic;
use crate::model::*;
use crate::source::Span;

/// Names and level lists of a two-level model.
pub(super) struct TwoLevelNames<'a> {
    pub(super) use_names: &'a [String],
    pub(super) slope_names: &'a [String],
    /// Per random slope: (dependent, covariate, span); `usize::MAX` if its
    /// statement had an error.
    pub(super) slopes: &'a [(usize, usize, Span)],
    pub(super) within: &'a [usize],
    pub(super) between: &'a [usize],
    pub(super) categorical: &'a [usize],
}

impl Builder<'_> {
    /// Reports the combinations of random effects, regressions among them
    /// and class-specific parameters the engine does not handle (the same
    /// list the engine refuses), at the statements that caused them.
    pub(super) fn random_structure(&mut self, model: &Model, mentions: &[Mention]) {
        let cov = model.latent.cov_class_var;
        for issue in model.random_structure_issues() {
            let span = mentions
                .iter()
                .find(|m| match issue.at {
                    IssueAt::ClassSpecificCovariance => {
                        matches!(
                            m.target,
                            Target::RandomVariance { .. }
                                | Target::RandomCovariance { .. }
                                | Target::RandomRegression { .. }
                        ) && matches!(m.block, Block::Class(cv, _) if Some(cv) == cov)
                    }
                    IssueAt::Regression { re, on } => {
                        m.target == Target::RandomRegression { re, on }
                    }
                    // the random effect's own statement (its variance)
                    IssueAt::Nominal { re, .. } => m.target == Target::RandomVariance { re },
                })
                .or_else(|| match issue.at {
                    // else the first statement about the variable
                    IssueAt::Nominal { var, .. } => mentions.iter().find(|m| {
                        matches!(m.target, Target::Threshold { var: v, .. }
                            | Target::Slope { var: v, .. }
                            | Target::Loading { var: v, .. } if v == var)
                    }),
                    _ => None,
                })
                .map(|m| m.span);
            let help = issue.help;
            let msg = format!("not supported yet: {}", issue.message);
            match span {
                Some(span) => self.err_help(span, msg, help),
                None => self
                    .diags
                    .push(Diagnostic::error_nowhere(msg).with_help(help)),
            }
        }
    }

    /// Rewrites the mentions of a two-level model by level
    /// ([`Self::two_level_targets`]); keeps as class variables' covariates
    /// and parents only what still is one; makes every declared random slope
    /// random (its variance is free unless the between level says
    /// otherwise).
    pub(super) fn two_level_statements(&mut self, stated: &mut Stated, d: &mut Decls) {
        let mentions = std::mem::take(&mut stated.mentions);
        stated.mentions = self.two_level_targets(
            mentions,
            TwoLevelNames {
                use_names: &d.use_names,
                slope_names: &d.slope_names,
                slopes: &stated.slopes,
                within: &d.within,
                between: &d.between,
                categorical: &d.categorical,
            },
            &d.class_vars,
            &mut stated.random,
            &mut stated.cov_class_var,
        );
        // a class logit regressed on a random effect (`c#1 ON y`) or on
        // another random class logit intercept on the between level is a
        // regression among random effects, not a covariate or parent of the
        // class variable
        let mentions = &stated.mentions;
        for (cv, c) in d.class_vars.iter_mut().enumerate() {
            c.covariates.retain(|&x| {
                mentions.iter().any(|m| {
                    matches!(m.target, Target::ClassSlope { cv: c2, covariate, .. } if c2 == cv && covariate == x)
                })
            });
            c.parents.retain(|&p| {
                mentions.iter().any(|m| {
                    matches!(m.target, Target::ClassOnClass { cv: c2, parent, .. } if c2 == cv && parent == p)
                })
            });
        }
        for (i, &(y, x, _)) in stated.slopes.iter().enumerate() {
            let kind = RandomKind::Slope {
                var: y,
                covariate: x,
            };
            if y != usize::MAX && !stated.random.iter().any(|r| r.kind == kind) {
                stated.random.push(RandomEffect {
                    name: d.slope_names[i].clone(),
                    kind,
                    within: false,
                });
            }
        }
    }

    /// Rewrites the mentions of a two-level model by level: on the between
    /// level a variable alone is its random intercept's variance, `[s]` is
    /// the mean of random slope `s` (the slope `y ON x`), `c#1` alone is a
    /// random class logit intercept; checks that each statement is on a
    /// level where its variables live. Creates the random effects met.
    fn two_level_targets(
        &mut self,
        mentions: Vec<Mention>,
        n: TwoLevelNames<'_>,
        cvs: &[ClassVar],
        random: &mut Vec<RandomEffect>,
        cov_class_var: &mut Option<usize>,
    ) -> Vec<Mention> {
        let lv = Levels::new(n, cvs, &mentions);
        let mut out = Vec::with_capacity(mentions.len());
        for mut m in mentions {
            let target = match m.level {
                Some(Level::Between) => self.between_target(&lv, random, &m),
                Some(Level::Within) => self.within_target(&lv, &m),
                None => Some(m.target),
            };
            let Some(target) = target else {
                continue;
            };
            if !self.class_specific_ok(cvs, target, &m, cov_class_var) {
                continue;
            }
            m.target = target;
            out.push(m);
        }
        out
    }

    /// What a between-level mention means. None after an error.
    fn between_target(
        &mut self,
        lv: &Levels<'_>,
        random: &mut Vec<RandomEffect>,
        m: &Mention,
    ) -> Option<Target> {
        let (span, cvs) = (m.span, lv.cvs);
        let target = match m.target {
            Target::Variance { var } if lv.is_b(var) => m.target,
            Target::Variance { var } => {
                let r = self.re_of(lv, random, var, span)?;
                Target::RandomVariance { re: r }
            }
            Target::Mean { var } if lv.slope(var).is_some() => {
                let (y, x, _) = lv.n.slopes[var - lv.n_use()];
                if y == usize::MAX {
                    return None;
                }
                Target::Slope {
                    var: y,
                    covariate: x,
                    category: None,
                }
            }
            Target::Mean { var } | Target::Threshold { var, .. } if lv.is_w(var) => {
                self.err_help(
                    span,
                    format!(
                        "{} is a WITHIN variable: its intercept is a within-level parameter",
                        lv.name(var)
                    ),
                    "write it in %WITHIN%",
                );
                return None;
            }
            Target::Slope { .. }
            | Target::OnClassIntercept { .. }
            | Target::ClassSlope { .. }
            | Target::ClassOnClass { .. } => return self.between_regression(lv, random, m),
            Target::Covariance { a, b } => {
                if lv.is_b(a) && lv.is_b(b) {
                    m.target
                } else if lv.is_b(a) || lv.is_b(b) {
                    self.err(span, "covariances between random effects and between-level observed variables are not supported yet");
                    return None;
                } else {
                    let ra = self.re_of(lv, random, a, span);
                    let rb = self.re_of(lv, random, b, span);
                    let (ra, rb) = (ra?, rb?);
                    Target::RandomCovariance {
                        a: ra.min(rb),
                        b: ra.max(rb),
                    }
                }
            }
            Target::ClassCovariance { a, b } => {
                for (cv, class) in [a, b] {
                    if cvs[cv].between || class + 1 >= cvs[cv].classes {
                        self.err(
                            span,
                            format!(
                                "{}#{} has no random logit intercept",
                                cvs[cv].name,
                                class + 1
                            ),
                        );
                        return None;
                    }
                }
                let ra = class_intercept(cvs, random, a.0, a.1);
                let rb = class_intercept(cvs, random, b.0, b.1);
                Target::RandomCovariance {
                    a: ra.min(rb),
                    b: ra.max(rb),
                }
            }
            Target::ClassVariance { cv, class } => {
                if cvs[cv].between {
                    self.err(span, format!("{} is a between-level class variable: its logits have no random intercepts", cvs[cv].name));
                    return None;
                }
                let r = class_intercept(cvs, random, cv, class);
                Target::RandomVariance { re: r }
            }
            t => t,
        };
        Some(target)
    }

    /// What a between-level regression means: a regression of a BETWEEN
    /// variable or a random effect on a BETWEEN covariate, or a regression
    /// among random effects. None after an error.
    fn between_regression(
        &mut self,
        lv: &Levels<'_>,
        random: &mut Vec<RandomEffect>,
        m: &Mention,
    ) -> Option<Target> {
        let (span, cvs) = (m.span, lv.cvs);
        let target = match m.target {
            Target::Slope { var, covariate, .. } => {
                return self.between_slope(lv, random, m, (var, covariate));
            }
            Target::OnClassIntercept { var, cv, class } => {
                if lv.is_b(var) {
                    self.err_help(
                        span,
                        format!(
                            "regressing the BETWEEN variable {} on the random effect {}#{} is not supported yet",
                            lv.name(var),
                            cvs[cv].name,
                            class + 1
                        ),
                        "between-level observed variables can be regressed on BETWEEN covariates",
                    );
                    return None;
                }
                let a = self.re_of(lv, random, var, span)?;
                let b = class_intercept(cvs, random, cv, class);
                Target::RandomRegression { re: a, on: b }
            }
            Target::ClassSlope {
                cv,
                class: Some(k),
                covariate,
            } if lv.is_re_name(covariate) => {
                if cvs[cv].between {
                    self.err_help(
                        span,
                        format!(
                            "regressing the between-level class variable {} on the random effect {} is not supported yet",
                            cvs[cv].name,
                            lv.name(covariate)
                        ),
                        "between-level class variables can be regressed on BETWEEN covariates",
                    );
                    return None;
                }
                let a = class_intercept(cvs, random, cv, k);
                let b = self.re_of(lv, random, covariate, span)?;
                Target::RandomRegression { re: a, on: b }
            }
            Target::ClassOnClass {
                cv,
                class: Some(k),
                parent,
                parent_class: Some(j),
            } if !cvs[cv].between && lv.class_re.contains(&(parent, j)) => {
                // between the random logit intercepts (eq 15)
                let b = class_intercept(cvs, random, parent, j);
                let a = class_intercept(cvs, random, cv, k);
                Target::RandomRegression { re: a, on: b }
            }
            Target::ClassSlope { covariate, .. } if !lv.is_b(covariate) => {
                self.err_help(
                    span,
                    format!("{} is not a BETWEEN variable: between-level regressions are on cluster-level covariates", lv.name(covariate)),
                    "regress the class variable on within-level covariates in %WITHIN%",
                );
                return None;
            }
            t => t,
        };
        Some(target)
    }

    /// `y ON w` on the between level: a BETWEEN variable or random
    /// intercept on a BETWEEN covariate, a random slope on one (a
    /// cross-level interaction), or one random effect on another.
    fn between_slope(
        &mut self,
        lv: &Levels<'_>,
        random: &mut Vec<RandomEffect>,
        m: &Mention,
        (var, covariate): (usize, usize),
    ) -> Option<Target> {
        let span = m.span;
        if lv.is_w(var) {
            self.err(
                span,
                format!(
                    "{} is a WITHIN variable: it has no between-level part",
                    lv.name(var)
                ),
            );
            return None;
        }
        if lv.is_re_name(covariate) {
            // one random effect regressed on another
            if lv.is_b(var) {
                self.err_help(
                    span,
                    format!(
                        "regressing the BETWEEN variable {} on the random effect {} is not supported yet",
                        lv.name(var),
                        lv.name(covariate)
                    ),
                    "between-level observed variables can be regressed on BETWEEN covariates",
                );
                return None;
            }
            let a = self.re_of(lv, random, var, span);
            let b = self.re_of(lv, random, covariate, span);
            let (a, b) = (a?, b?);
            Some(Target::RandomRegression { re: a, on: b })
        } else if !lv.is_b(covariate) {
            self.err_help(
                span,
                format!("{} is not a BETWEEN variable: between-level regressions are on cluster-level covariates", lv.name(covariate)),
                format!("list {} in BETWEEN, or regress on it in %WITHIN%", lv.name(covariate)),
            );
            None
        } else if lv.slope(var).is_some() {
            // the random slope's mean varies with a cluster-level
            // covariate: a cross-level interaction
            let a = self.re_of(lv, random, var, span)?;
            Some(Target::RandomSlopeOn { re: a, covariate })
        } else {
            Some(m.target)
        }
    }

    /// Checks a within-level mention: no random slopes, no BETWEEN
    /// variables, no random intercepts' means, no between-level class
    /// variables' regressions. None after an error.
    fn within_target(&mut self, lv: &Levels<'_>, m: &Mention) -> Option<Target> {
        let (span, t, cvs) = (m.span, m.target, lv.cvs);
        let vars: Vec<usize> = match t {
            Target::Threshold { var, .. } | Target::Mean { var } | Target::Variance { var } => {
                vec![var]
            }
            Target::Slope { var, covariate, .. } => vec![var, covariate],
            Target::Covariance { a, b } => vec![a, b],
            Target::ClassSlope { covariate, .. } => vec![covariate],
            _ => Vec::new(),
        };
        if let Some(&v) = vars.iter().find(|&&v| lv.slope(v).is_some()) {
            self.err_help(
                span,
                format!("{} is a random slope: its mean, variance and regressions are between-level parameters", lv.name(v)),
                "write them in %BETWEEN%",
            );
            return None;
        }
        if let Some(&v) = vars.iter().find(|&&v| lv.is_b(v)) {
            self.err_help(
                span,
                format!(
                    "{} is a BETWEEN variable: it has no within-level part",
                    lv.name(v)
                ),
                "write statements about it in %BETWEEN%",
            );
            return None;
        }
        match t {
            Target::Mean { var } | Target::Threshold { var, .. } if !lv.is_w(var) => {
                self.err_help(
                    span,
                    format!(
                        "the intercept of {} is random: its mean is a between-level parameter",
                        lv.name(var)
                    ),
                    format!(
                        "write [{}] in %BETWEEN%, or list {} in WITHIN for a fixed intercept",
                        lv.name(var),
                        lv.name(var)
                    ),
                );
                None
            }
            Target::ClassSlope { cv, .. } | Target::ClassOnClass { cv, .. } if cvs[cv].between => {
                self.err_help(
                    span,
                    format!(
                        "{} is a between-level class variable: its regressions go in %BETWEEN%",
                        cvs[cv].name
                    ),
                    "write them in %BETWEEN%",
                );
                None
            }
            _ => Some(t),
        }
    }

    /// Checks where random-effect variances, covariances and regressions
    /// vary across classes (one between-level class variable, recorded in
    /// `cov_class_var`; the loadings of random slopes and intercepts may
    /// also vary over a within-level one), and that a between-level class
    /// variable does not depend on a within-level one. False after an
    /// error.
    fn class_specific_ok(
        &mut self,
        cvs: &[ClassVar],
        target: Target,
        m: &Mention,
        cov_class_var: &mut Option<usize>,
    ) -> bool {
        let span = m.span;
        if let (
            Target::RandomVariance { .. }
            | Target::RandomCovariance { .. }
            | Target::RandomRegression { .. }
            | Target::FactorVariance { .. }
            | Target::FactorCovariance { .. }
            | Target::FactorOnFactor { .. }
            | Target::Loading { .. }
            | Target::LoadingSlope { .. }
            | Target::LoadingClass { .. }
            | Target::LoadingFactor { .. },
            Block::Class(cv, _),
        ) = (target, m.block)
        {
            let what = match target {
                Target::RandomRegression { .. } | Target::FactorOnFactor { .. } => {
                    ("regressions among random effects", "state the regression")
                }
                Target::Loading { .. }
                | Target::LoadingSlope { .. }
                | Target::LoadingClass { .. }
                | Target::LoadingFactor { .. } => ("factor loadings", "state the loadings"),
                _ => ("random-effect variances", "state the variance"),
            };
            // a within-level class variable: the loadings of between-level
            // random effects (the FMA-GoM's item logits, eq 41 and 43) may
            // vary over the class of the row; variances, covariances and
            // regressions among random effects are the cluster's and may not
            let loading = matches!(target, Target::Loading { .. } | Target::LoadingSlope { .. });
            if !cvs[cv].between && !loading {
                self.err_help(
                    span,
                    format!(
                        "{} can vary only across the classes of a between-level class variable",
                        what.0
                    ),
                    format!(
                        "{} is a within-level class variable; {} in %OVERALL%",
                        cvs[cv].name, what.1
                    ),
                );
                return false;
            }
            match *cov_class_var {
                None => *cov_class_var = Some(cv),
                Some(c) if c != cv => {
                    self.err(
                        span,
                        format!(
                            "{} can vary across the classes of one class variable only",
                            what.0
                        ),
                    );
                    return false;
                }
                _ => {}
            }
        }
        if let (Target::FactorMean { .. }, Block::Class(cv, _)) = (target, m.block)
            && !cvs[cv].between
        {
            self.err_help(
                span,
                format!(
                    "the mean of a between-level factor cannot vary across the classes of {}, a within-level class variable",
                    cvs[cv].name
                ),
                format!(
                    "a cluster has one value of the factor (its mean is 0 in every class of {}); \
                     class-specific item parameters go on the items or their random slopes' means",
                    cvs[cv].name
                ),
            );
            return false;
        }
        if let Target::ClassOnClass { cv, parent, .. } = target
            && cvs[parent].between != cvs[cv].between
            && cvs[cv].between
        {
            self.err(
                span,
                format!(
                    "a between-level class variable ({}) cannot depend on a within-level one",
                    cvs[cv].name
                ),
            );
            return false;
        }
        true
    }

    /// The random effect a between-level name stands for (a random slope,
    /// or the random intercept of a variable that is not in WITHIN),
    /// created when first met. None after an error.
    fn re_of(
        &mut self,
        lv: &Levels<'_>,
        random: &mut Vec<RandomEffect>,
        v: usize,
        span: Span,
    ) -> Option<usize> {
        if let Some(i) = lv.slope(v) {
            let (y, x, _) = lv.n.slopes[i];
            if y == usize::MAX {
                return None;
            }
            return Some(add_re(
                random,
                RandomKind::Slope {
                    var: y,
                    covariate: x,
                },
                lv.name(v),
            ));
        }
        if lv.is_w(v) {
            self.err_help(
                span,
                format!(
                    "{} is a WITHIN variable: it has no between-level part",
                    lv.name(v)
                ),
                "remove it from WITHIN to give it a random intercept",
            );
            return None;
        }
        Some(add_re(random, RandomKind::Intercept { var: v }, lv.name(v)))
    }
}

/// A two-level model's names and levels, with what its mentions say about
/// them. Names are positions within USEVARIABLES followed by the random
/// slopes.
struct Levels<'a> {
    n: TwoLevelNames<'a>,
    cvs: &'a [ClassVar],
    /// Variables met as dependents: a name in neither WITHIN nor BETWEEN
    /// on the right of a between-level ON is then the random intercept of
    /// a dependent, not a covariate.
    dep_seen: Vec<bool>,
    /// The random class logit intercepts (class variable, class) stated on
    /// the between level.
    class_re: Vec<(usize, usize)>,
}

impl<'a> Levels<'a> {
    fn new(n: TwoLevelNames<'a>, cvs: &'a [ClassVar], mentions: &[Mention]) -> Self {
        let n_use = n.use_names.len();
        let mut dep_seen = vec![false; n_use];
        for &v in n.categorical {
            if v < n_use {
                dep_seen[v] = true;
            }
        }
        let mut class_re: Vec<(usize, usize)> = Vec::new();
        for m in mentions {
            match m.target {
                Target::Threshold { var, .. }
                | Target::Mean { var }
                | Target::Variance { var }
                | Target::Slope { var, .. }
                    if var < n_use =>
                {
                    dep_seen[var] = true;
                }
                Target::Covariance { a, b } => {
                    for v in [a, b] {
                        if v < n_use {
                            dep_seen[v] = true;
                        }
                    }
                }
                Target::ClassVariance { cv, class } if m.level == Some(Level::Between) => {
                    class_re.push((cv, class));
                }
                Target::ClassCovariance { a, b } if m.level == Some(Level::Between) => {
                    class_re.extend([a, b]);
                }
                _ => {}
            }
        }
        Levels {
            n,
            cvs,
            dep_seen,
            class_re,
        }
    }

    fn n_use(&self) -> usize {
        self.n.use_names.len()
    }

    fn name(&self, v: usize) -> String {
        if v < self.n_use() {
            self.n.use_names[v].clone()
        } else {
            self.n.slope_names[v - self.n_use()].clone()
        }
    }

    /// The random slope a name is, if it is one.
    fn slope(&self, v: usize) -> Option<usize> {
        (v >= self.n_use()).then(|| v - self.n_use())
    }

    fn is_w(&self, v: usize) -> bool {
        self.n.within.contains(&v)
    }

    fn is_b(&self, v: usize) -> bool {
        self.n.between.contains(&v)
    }

    /// Whether a name stands for a random effect on the between level.
    fn is_re_name(&self, v: usize) -> bool {
        self.slope(v).is_some()
            || (v < self.n_use() && !self.is_w(v) && !self.is_b(v) && self.dep_seen[v])
    }
}

/// The random effect of `kind`, added (named `nm`) if it is new.
fn add_re(random: &mut Vec<RandomEffect>, kind: RandomKind, nm: String) -> usize {
    match random.iter().position(|r| r.kind == kind) {
        Some(i) => i,
        None => {
            random.push(RandomEffect {
                name: nm,
                kind,
                within: false,
            });
            random.len() - 1
        }
    }
}

/// The random intercept of class `class`'s logit of class variable `cv`.
fn class_intercept(
    cvs: &[ClassVar],
    random: &mut Vec<RandomEffect>,
    cv: usize,
    class: usize,
) -> usize {
    add_re(
        random,
        RandomKind::ClassIntercept { cv, class },
        format!("{}#{}", cvs[cv].name, class + 1),
    )
}
