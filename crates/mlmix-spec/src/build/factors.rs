//! Factors (`f BY u1-u10`) in single-level models: the names BY declares,
//! what a statement about a factor means, and the latent variables a
//! factor model has.
//!
//! A factor is a latent variable of its own ([`RandomKind::Factor`]); each
//! of its indicators gets an intercept ([`RandomKind::Intercept`]) whose
//! residual variance is 0 and which is regressed on the factor (the
//! loading, [`ParamKind::Loading`]). So `u = ν + λ f + ε` is the same
//! structure as a between-level regression among random effects, and the
//! engine integrates over the factors only (an intercept with no variance
//! adds no dimension).
//!
//! Mplus's defaults, followed here: the first loading of each factor (the
//! first indicator of its first BY statement in `%OVERALL%`) is fixed at 1
//! unless it is written with `*`; the other loadings are free; factor
//! variances are free and factors covary freely; factor means are 0 without
//! classes, and in a mixture fixed at 0 in the last class and free in the
//! others. In a mixture, loadings, factor variances and covariances are held
//! equal across classes unless a class block mentions them, and so are the
//! thresholds and intercepts of the factor indicators (measurement
//! invariance, which identifies the factor means).

use super::Builder;
use super::declarations::Decls;
use super::grammar::{Block, Elem, Level, ModelStmt, Ref};
use super::statements::{Mention, Stated, Target};
use crate::model::*;
use crate::source::Span;
use crate::syntax::{Section, TokKind, Token};

/// Targets met so far, with the element that named each.
type Pending<'e> = Vec<(Target, &'e Elem)>;

impl Builder<'_> {
    /// The factors MODEL declares: the names before `BY`, in file order,
    /// each new (not a variable, class variable or random slope).
    pub(super) fn factor_names(
        &mut self,
        model_sections: &[&Section],
        taken: &[&[String]],
    ) -> Vec<(String, Span)> {
        let mut out: Vec<(String, Span)> = Vec::new();
        for sec in model_sections {
            for st in &sec.statements {
                let t = &st.tokens;
                let declared: &[Token] = if let Some(bar) = growth_bar(t) {
                    &t[..bar]
                } else if let Some(by) = t.iter().position(|x| x.is_word("BY")) {
                    if by > 1 {
                        self.err_help(
                            t[0].span.to(t[by - 1].span),
                            "one factor before BY",
                            "write one statement per factor, e.g. f1 BY u1-u5; f2 BY u6-u10;",
                        );
                    }
                    if by != 1 {
                        continue;
                    }
                    &t[..1]
                } else {
                    continue;
                };
                for tok in declared.iter().filter(|x| x.kind == TokKind::Word) {
                    let n = &tok.text;
                    if taken
                        .iter()
                        .any(|list| list.iter().any(|u| u.eq_ignore_ascii_case(n)))
                    {
                        self.err_help(
                            tok.span,
                            format!("the factor {n} has the name of a variable"),
                            "give the factor a new name, e.g. f BY u1-u5;",
                        );
                        // the name is not reported again where MODEL uses it
                        self.diags
                            .mark(&format!("not in USEVARIABLES {}", n.to_ascii_uppercase()));
                    } else if !out.iter().any(|u| u.0.eq_ignore_ascii_case(n)) {
                        out.push((n.clone(), st.span));
                    }
                }
            }
        }
        out
    }

    /// One pair of a BY statement: factor `fe` measured by `ue`. False
    /// after an error.
    pub(super) fn by_target<'e>(
        &mut self,
        (st, use_names): (&ModelStmt, &[String]),
        (fe, fr): (&Elem, Ref),
        (ue, ur): (&'e Elem, Ref),
        pending: &mut Pending<'e>,
    ) -> bool {
        let names = self.model_names;
        let f = match fr {
            Ref::Factor(f) => f,
            Ref::Var(_) | Ref::Slope(_) => {
                let v = names.model_var(fr).unwrap_or(0);
                self.err_help(
                    fe.span,
                    format!("{} is an observed variable, not a factor", use_names[v]),
                    "a factor is a new name, e.g. f BY u1-u5;",
                );
                return false;
            }
            _ => {
                self.err(fe.span, "BY needs a factor on its left");
                return false;
            }
        };
        match ur {
            Ref::Slope(slope) if self.twolevel && st.level == Some(Level::Between) => {
                pending.push((Target::LoadingSlope { factor: f, slope }, ue));
                true
            }
            Ref::Slope(s) => {
                self.err_help(
                    ue.span,
                    format!(
                        "{} is a random slope: a factor measures it on the between level",
                        use_names[names.n_use + s]
                    ),
                    "write the BY statement in %BETWEEN%",
                );
                false
            }
            Ref::Var(u) => {
                pending.push((Target::Loading { factor: f, var: u }, ue));
                true
            }
            Ref::Class(cv, class) if self.twolevel && st.level == Some(Level::Between) => {
                pending.push((
                    Target::LoadingClass {
                        factor: f,
                        cv,
                        class,
                    },
                    ue,
                ));
                true
            }
            Ref::Factor(u) if u == f => {
                self.err(
                    ue.span,
                    format!("{} BY itself", use_names[names.factor_pos(u)]),
                );
                false
            }
            Ref::Factor(u) => {
                // a second-order factor: the lower factor regressed on it
                pending.push((
                    Target::LoadingFactor {
                        factor: f,
                        lower: u,
                    },
                    ue,
                ));
                true
            }
            _ => {
                self.err(
                    ue.span,
                    "a factor is measured by observed variables (BY u1-u5)",
                );
                false
            }
        }
    }

    /// `i s q | y1@0 y2@1 ...`: the loadings of the outcomes on the growth
    /// factors (1 on the intercept factor, the time score on the slope,
    /// its square on the quadratic), their intercepts fixed at 0
    /// (continuous) or thresholds held equal over time (categorical), and
    /// the growth factors' means free (but the intercept factor's with
    /// categorical outcomes, which keeps the factor default). Appends the
    /// mentions to `out`; false after an error.
    pub(super) fn growth_targets(
        &mut self,
        (st, use_names): (&ModelStmt, &[String]),
        factors: &[(Ref, Span)],
        outcomes: &[Elem],
        categorical: &[usize],
        out: &mut Vec<Mention>,
    ) -> bool {
        let mut fs = Vec::with_capacity(factors.len());
        for &(r, span) in factors {
            match r {
                Ref::Factor(f) => fs.push((f, span)),
                _ => {
                    self.err(span, "a growth factor is a new name, e.g. i s | y1@0 y2@1;");
                    return false;
                }
            }
        }
        let mention = |target, span, fixed: Option<f64>, start: Option<Option<f64>>| Mention {
            target,
            block: st.block,
            level: st.level,
            fixed,
            start,
            label: None,
            span,
        };
        let mut any_categorical = false;
        for e in outcomes {
            let y = match e.refs[..] {
                [Ref::Var(y)] => y,
                [Ref::Slope(_) | Ref::Factor(_)] => {
                    self.err(e.span, "a growth outcome is an observed variable");
                    return false;
                }
                _ => {
                    self.err(
                        e.span,
                        "a growth outcome is one observed variable with its time score",
                    );
                    return false;
                }
            };
            let Some(score) = e.fixed.or(e.start.flatten()) else {
                self.err_help(
                    e.span,
                    format!("{} has no time score", use_names[y]),
                    format!(
                        "write {}@t (fixed) or {}*t (free, starting at t)",
                        use_names[y], use_names[y]
                    ),
                );
                return false;
            };
            let free = e.fixed.is_none();
            for (k, &(f, span)) in fs.iter().enumerate() {
                let (fixed, start) = match (k, free) {
                    (0, _) => (Some(1.0), None),
                    (1, false) => (Some(score), None),
                    (1, true) => (None, Some(Some(score))),
                    (_, false) => (Some(score * score), None),
                    (_, true) => {
                        self.err(e.span, "a quadratic growth factor needs fixed time scores");
                        return false;
                    }
                };
                let target = Target::Loading { factor: f, var: y };
                out.push(mention(target, span.to(e.span), fixed, start));
            }
            if categorical.contains(&y) {
                any_categorical = true;
                let target = Target::EqualThresholds {
                    var: y,
                    factor: fs[0].0,
                };
                out.push(mention(target, e.span, None, None));
            } else {
                out.push(mention(Target::Mean { var: y }, e.span, Some(0.0), None));
            }
        }
        let skip = usize::from(any_categorical);
        for &(f, span) in &fs[skip..] {
            out.push(mention(
                Target::FactorMean { re: f },
                span,
                None,
                Some(None),
            ));
        }
        true
    }

    /// The latent variables of a factor model: the factors (in declaration
    /// order), then an intercept for each indicator (a within-level one for
    /// a within-level factor of a two-level model); the mentions of
    /// loadings rewritten to them. Reports a factor without indicators,
    /// statements about a factor on the wrong level and factor models with
    /// several class variables.
    pub(super) fn factor_latents(&mut self, stated: &mut Stated, d: &Decls, file_span: Span) {
        let nf = d.factor_names.len();
        if nf == 0 {
            return;
        }
        let within = self.factor_levels(stated, d);
        // the factors follow the random effects met so far; the mentions
        // numbered them from 0
        let base = stated.random.len();
        for (f, (name, _)) in d.factor_names.iter().enumerate() {
            stated.random.push(RandomEffect {
                name: name.clone(),
                kind: RandomKind::Factor,
                within: within[f],
            });
        }
        let mut measured = vec![false; nf];
        let mut mentions = std::mem::take(&mut stated.mentions);
        mentions.retain(|m| self.within_factor_mention_ok(m, &within, d));
        for m in &mut mentions {
            m.target = renumber(m.target, base);
            if let Target::LoadingFactor { factor, .. } = m.target {
                measured[factor - base] = true;
                continue;
            }
            if let Target::LoadingClass { factor, cv, class } = m.target {
                measured[factor - base] = true;
                self.class_indicator(d, &mut stated.random, (cv, class), m.span);
                continue;
            }
            if let Target::LoadingSlope { factor, slope } = m.target {
                // the slope's random effect regressed on the factor (a
                // loading like a second-order factor's)
                let (var, covariate, _) = stated.slopes[slope];
                let kind = RandomKind::Slope { var, covariate };
                if let Some(re) = stated.random.iter().position(|r| r.kind == kind) {
                    measured[factor - base] = true;
                    m.target = Target::LoadingFactor { factor, lower: re };
                }
                continue;
            }
            if let Target::Loading { factor, var } | Target::OnFactor { factor, var } = m.target {
                measured[factor - base] |= matches!(m.target, Target::Loading { .. });
                let w = within[factor - base];
                if !self.indicator_level_ok(d, var, w, m.span) {
                    continue;
                }
                let kind = if w {
                    RandomKind::WithinIntercept { var }
                } else {
                    RandomKind::Intercept { var }
                };
                if !stated.random.iter().any(|r| r.kind == kind) {
                    stated.random.push(RandomEffect {
                        name: d.use_names[var].clone(),
                        kind,
                        within: w,
                    });
                }
            }
        }
        stated.mentions = mentions;
        for (f, (name, span)) in d.factor_names.iter().enumerate() {
            // (after an error in its BY statements this follows from it)
            if !measured[f] && !self.diags.has_errors() {
                self.err_help(
                    *span,
                    format!("the factor {name} has no indicators"),
                    format!("say what measures it, e.g. {name} BY u1-u5;"),
                );
            }
        }
        // (in a two-level model the between-level statements say which
        // class variable the random effects' parameters vary over)
        match d.class_vars.len() {
            _ if self.twolevel => {}
            0 => {}
            1 => stated.cov_class_var = Some(0),
            _ => self.err_help(
                file_span,
                "factors with several class variables are not supported yet",
                "a factor mixture model has one class variable",
            ),
        }
    }

    /// Which factors are within-level: in a two-level model, those whose
    /// BY statements are not in `%BETWEEN%` (a factor is on one level).
    /// The mentions still number the factors from 0.
    fn factor_levels(&mut self, stated: &Stated, d: &Decls) -> Vec<bool> {
        let nf = d.factor_names.len();
        let mut level: Vec<Option<bool>> = vec![None; nf];
        if !self.twolevel {
            return vec![false; nf];
        }
        let mut reported = vec![false; nf];
        for m in &stated.mentions {
            let factor = match m.target {
                Target::Loading { factor, .. }
                | Target::LoadingClass { factor, .. }
                | Target::LoadingFactor { factor, .. } => factor,
                _ => continue,
            };
            let w = m.level != Some(Level::Between);
            match level[factor] {
                Some(l) if l != w && !reported[factor] => {
                    reported[factor] = true;
                    self.err_help(
                    m.span,
                    format!(
                        "the factor {} is measured on both levels",
                        d.factor_names[factor].0
                    ),
                    "a factor is within-level (BY in %WITHIN%) or between-level (BY in %BETWEEN%): give each level its own factor, e.g. fw BY u1-u5 in %WITHIN% and fb BY u1-u5 in %BETWEEN%",
                    );
                }
                Some(_) => {}
                None => level[factor] = Some(w),
            }
        }
        level.into_iter().map(|l| l.unwrap_or(false)).collect()
    }

    /// Checks a mention that involves a factor against the factor's level:
    /// a within-level factor's variance and covariances are stated in
    /// `%WITHIN%`, a between-level one's in `%BETWEEN%`; what within-level
    /// factors do not support yet is reported. False after an error.
    fn within_factor_mention_ok(&mut self, m: &Mention, within: &[bool], d: &Decls) -> bool {
        if !self.twolevel {
            return true;
        }
        let name = |f: usize| d.factor_names[f].0.clone();
        let unsupported = |what: &str| Some(format!("{what} are not supported yet"));
        let (factors, what): (Vec<usize>, Option<String>) = match m.target {
            Target::FactorVariance { f } => (vec![f], None),
            Target::FactorCovariance { a, b } => (vec![a, b], None),
            Target::FactorMean { re } => (
                vec![re],
                Some(format!(
                    "the mean of the within-level factor {} is 0 in a two-level model: freeing or fixing it is not supported yet",
                    name(re)
                )),
            ),
            Target::FactorOn { re, .. } => (
                vec![re],
                unsupported("within-level factors regressed on covariates (f ON x)"),
            ),
            Target::OnFactor { factor, .. } => (
                vec![factor],
                unsupported("variables regressed on within-level factors (y ON f)"),
            ),
            Target::FactorOnFactor { re, on } => (
                vec![re, on],
                unsupported("regressions among within-level factors"),
            ),
            Target::LoadingFactor { factor, lower } => (
                vec![factor, lower],
                unsupported("second-order within-level factors"),
            ),
            Target::LoadingClass { factor, .. } => (
                vec![factor],
                unsupported("within-level factors measured by class logits"),
            ),
            _ => return true,
        };
        let w: Vec<bool> = factors.iter().map(|&f| within[f]).collect();
        if w.iter().any(|&x| x) && w.iter().any(|&x| !x) {
            self.err(
                m.span,
                "a within-level factor and a between-level factor do not covary or regress on each other",
            );
            return false;
        }
        let on_within = w[0];
        if let (true, Some(what)) = (on_within, &what) {
            self.err(m.span, what.clone());
            return false;
        }
        if what.is_none() && on_within != (m.level != Some(Level::Between)) {
            let (f, lv, other) = if on_within {
                (name(factors[0]), "within", "%WITHIN%")
            } else {
                (name(factors[0]), "between", "%BETWEEN%")
            };
            self.err_help(
                m.span,
                format!("{f} is a {lv}-level factor"),
                format!("write statements about its variance and covariances in {other}"),
            );
            return false;
        }
        true
    }

    /// One pair of an ON statement that involves a factor: `f ON x` or `y ON
    /// f`. `None` when neither side is a factor; `Some(None)` after an
    /// error.
    pub(super) fn factor_regression(
        &mut self,
        (l, lr): (&Elem, Ref),
        (e, rr): (&Elem, Ref),
    ) -> Option<Option<Target>> {
        let factor = |r: Ref| match r {
            Ref::Factor(f) => Some(f),
            _ => None,
        };
        let observed = |r: Ref| match r {
            Ref::Var(v) => Some(v),
            _ => None,
        };
        let (fl, fr) = (factor(lr), factor(rr));
        if fl.is_none() && fr.is_none() {
            return None;
        }
        let target = match (fl, fr, observed(lr), observed(rr)) {
            (Some(re), None, _, Some(covariate)) => Target::FactorOn { re, covariate },
            (None, Some(factor), Some(var), _) => Target::OnFactor { var, factor },
            (Some(re), Some(on), ..) if re == on => {
                self.err(l.span.to(e.span), "a factor ON itself");
                return Some(None);
            }
            (Some(re), Some(on), ..) => Target::FactorOnFactor { re, on },
            _ => {
                self.err(
                    l.span.to(e.span),
                    "a factor is regressed on observed covariates (f ON x), and observed variables on factors (y ON f)",
                );
                return Some(None);
            }
        };
        Some(Some(target))
    }

    /// `fb BY c#1`: the random logit intercept of class `class` of `cv` is an
    /// indicator (created if the between level has not made it random):
    /// `cv` must be a within-level class variable and `class` not its last.
    fn class_indicator(
        &mut self,
        d: &Decls,
        random: &mut Vec<RandomEffect>,
        (cv, class): (usize, usize),
        span: Span,
    ) {
        let c = &d.class_vars[cv];
        if c.between || class + 1 >= c.classes {
            self.err_help(
                span,
                format!(
                    "{}#{} has no random logit intercept for a factor to measure",
                    c.name,
                    class + 1
                ),
                "a between-level factor measures the logit intercepts of a within-level class variable's classes, the last excluded",
            );
            return;
        }
        let kind = RandomKind::ClassIntercept { cv, class };
        if !random.iter().any(|r| r.kind == kind) {
            random.push(RandomEffect {
                name: format!("{}#{}", c.name, class + 1),
                kind,
                within: false,
            });
        }
    }

    /// In a two-level model a between-level factor measures the
    /// between-level parts (random intercepts) of its indicators: an
    /// indicator listed in WITHIN has none, and BETWEEN variables are not
    /// supported as indicators yet; a within-level factor measures the
    /// within-level parts, which BETWEEN variables do not have. False
    /// after an error.
    fn indicator_level_ok(&mut self, d: &Decls, var: usize, within: bool, span: Span) -> bool {
        if !self.twolevel {
            return true;
        }
        if within {
            if d.between.contains(&var) {
                self.err_help(
                    span,
                    format!(
                        "{} is a BETWEEN variable: a within-level factor cannot measure it",
                        d.use_names[var]
                    ),
                    "a within-level factor measures variables that vary within clusters",
                );
                return false;
            }
            return true;
        }
        if d.within.contains(&var) {
            self.err_help(
                span,
                format!(
                    "{} is a WITHIN variable: a between-level factor cannot measure it",
                    d.use_names[var]
                ),
                "a between-level factor measures the random intercepts of variables with a between-level part",
            );
            return false;
        }
        if d.between.contains(&var) {
            self.err(
                span,
                format!(
                    "{} is a BETWEEN variable: between-level factors measured by BETWEEN variables are not supported yet",
                    d.use_names[var]
                ),
            );
            return false;
        }
        true
    }
}

/// A target with its factors numbered among the latent variables (the
/// factors start at `base`): a factor's variance and covariances become
/// random-effect ones.
fn renumber(t: Target, base: usize) -> Target {
    match t {
        Target::FactorVariance { f } => Target::RandomVariance { re: base + f },
        Target::FactorCovariance { a, b } => Target::RandomCovariance {
            a: base + a,
            b: base + b,
        },
        Target::FactorMean { re } => Target::FactorMean { re: base + re },
        Target::FactorOn { re, covariate } => Target::FactorOn {
            re: base + re,
            covariate,
        },
        Target::Loading { factor, var } => Target::Loading {
            factor: base + factor,
            var,
        },
        Target::OnFactor { var, factor } => Target::OnFactor {
            var,
            factor: base + factor,
        },
        Target::EqualThresholds { var, factor } => Target::EqualThresholds {
            var,
            factor: base + factor,
        },
        Target::LoadingSlope { factor, slope } => Target::LoadingSlope {
            factor: base + factor,
            slope,
        },
        Target::LoadingFactor { factor, lower } => Target::LoadingFactor {
            factor: base + factor,
            lower: base + lower,
        },
        Target::FactorOnFactor { re, on } => Target::RandomRegression {
            re: base + re,
            on: base + on,
        },
        Target::LoadingClass { factor, cv, class } => Target::LoadingClass {
            factor: base + factor,
            cv,
            class,
        },
        t => t,
    }
}

/// The loadings a factor's first BY statement in %OVERALL% fixes at 1 by
/// default: its first indicator, unless written with `*` (or `@`).
pub(super) fn first_loadings(model: &Model, mentions: &[Mention]) -> Vec<ParamKind> {
    let mut factors: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    for m in mentions.iter().filter(|m| m.block == Block::Overall) {
        if let Some(kind @ ParamKind::Loading { factor, .. }) = loading_kind(model, m.target)
            && !factors.contains(&factor)
        {
            factors.push(factor);
            out.push(kind);
        }
    }
    out
}

/// The loading a BY target names: its indicator's intercept (or random
/// class logit intercept) regressed on the factor.
pub(super) fn loading_kind(model: &Model, t: Target) -> Option<ParamKind> {
    let re = match t {
        Target::Loading { var, factor } if model.random_effects().get(factor)?.within => {
            model.within_intercept_of(var)?
        }
        Target::Loading { var, .. } => model.intercept_of(var)?,
        Target::LoadingFactor { lower, .. } => lower,
        Target::LoadingClass { cv, class, .. } => model
            .random_effects()
            .iter()
            .position(|r| r.kind == RandomKind::ClassIntercept { cv, class })?,
        _ => return None,
    };
    match t {
        Target::Loading { factor, .. }
        | Target::LoadingClass { factor, .. }
        | Target::LoadingFactor { factor, .. } => Some(ParamKind::Loading { re, factor }),
        _ => None,
    }
}

/// Where the `|` of a growth statement (`i s | y1@0 y2@1`) is: a bar with
/// no ON after it and several names before it or time scores after it
/// (`s | y ON x` is a random slope).
pub(super) fn growth_bar(t: &[Token]) -> Option<usize> {
    let bar = t.iter().position(|x| x.is_sym('|'))?;
    let growth = bar > 0
        && !t[bar..].iter().any(|x| x.is_word("ON"))
        && (bar > 1 || t[bar..].iter().any(|x| x.is_sym('@')));
    growth.then_some(bar)
}
