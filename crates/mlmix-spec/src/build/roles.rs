//! The role of each variable (the fifth phase): dependent variable or
//! covariate, the covariates of each dependent, the class variable that
//! measures it, residual covariances, and the random intercepts a two-level
//! model has by default.

use super::Builder;
use super::declarations::Decls;
use super::grammar::Block;
use super::statements::{Mention, Stated, Target};
use crate::model::*;
use crate::source::Span;

/// What the mentions say about each USEVARIABLES entry.
struct Uses {
    /// Mentioned as a dependent variable.
    dep: Vec<bool>,
    /// Mentioned as a covariate.
    cov: Vec<bool>,
    /// The class variable of the first class block that mentions it.
    class_var: Vec<Option<(usize, Span)>>,
    /// Its covariates, in order of mention.
    covariates: Vec<Vec<usize>>,
    /// The residual covariances (`WITH`), in order of mention.
    covariances: Vec<(usize, usize)>,
}

/// The role of each USEVARIABLES entry.
pub(super) struct Roles {
    /// True for a dependent variable, false for a covariate.
    pub(super) is_dep: Vec<bool>,
    /// The class variable that measures each dependent variable.
    pub(super) dep_class: Vec<Option<usize>>,
    /// The covariates of each dependent variable.
    pub(super) dep_covs: Vec<Vec<usize>>,
    /// The residual covariances.
    pub(super) covariances: Vec<(usize, usize)>,
}

impl Builder<'_> {
    /// Gives each variable its role and reports roles the model cannot
    /// have; adds a two-level model's default random intercepts to
    /// `stated.random`. `file_span` stands in where no statement is to
    /// blame.
    pub(super) fn roles(
        &mut self,
        d: &Decls,
        stated: &mut Stated,
        classes_span: Option<Span>,
        file_span: Span,
    ) -> Roles {
        let n_use = d.usev.len();
        let uses = self.uses(d, stated);
        self.role_conflicts(d, &uses, &stated.mentions, file_span);
        let is_dep: Vec<bool> = (0..n_use).map(|v| !uses.cov[v]).collect(); // true = dependent
        let deps: Vec<usize> = (0..n_use).filter(|&v| is_dep[v]).collect();
        if self.twolevel {
            self.two_level_roles(
                d,
                &is_dep,
                stated,
                classes_span.unwrap_or(file_span),
                file_span,
            );
        }
        if deps.is_empty() && !self.diags.has_errors() {
            self.err(file_span, "the model has no dependent variables");
        }
        let dep_class = self.dep_classes(
            d,
            &deps,
            &uses,
            &stated.mentions,
            classes_span.unwrap_or(file_span),
        );
        for &(a, b) in &uses.covariances {
            if dep_class[a] != dep_class[b] {
                let span = stated
                    .mentions
                    .iter()
                    .find(|m| m.target == Target::Covariance { a, b })
                    .map_or(file_span, |m| m.span);
                self.err(
                    span,
                    format!(
                        "{} and {} are measured by different class variables; their covariance is not supported",
                        d.use_names[a], d.use_names[b]
                    ),
                );
            }
        }
        Roles {
            is_dep,
            dep_class,
            dep_covs: uses.covariates,
            covariances: uses.covariances,
        }
    }

    /// What the mentions say about each variable; reports a variable given
    /// class-specific parameters by two class variables.
    fn uses(&mut self, d: &Decls, stated: &Stated) -> Uses {
        let n_use = d.usev.len();
        let mut u = Uses {
            dep: vec![false; n_use],
            cov: vec![false; n_use],
            class_var: vec![None; n_use],
            covariates: vec![Vec::new(); n_use],
            covariances: Vec::new(),
        };
        let random = &stated.random;
        let re_var = |re: usize| match random[re].kind {
            RandomKind::Intercept { var }
            | RandomKind::Slope { var, .. }
            | RandomKind::WithinIntercept { var } => Some(var),
            RandomKind::ClassIntercept { .. } | RandomKind::Factor => None,
        };
        for m in &stated.mentions {
            match m.target {
                Target::RandomVariance { re } | Target::RandomCovariance { a: re, .. } => {
                    if let Some(var) = re_var(re) {
                        u.dep[var] = true;
                    }
                }
                Target::RandomRegression { re, on } => {
                    for var in [re_var(re), re_var(on)].into_iter().flatten() {
                        u.dep[var] = true;
                    }
                }
                Target::RandomSlopeOn { re, covariate } => {
                    if let Some(var) = re_var(re) {
                        u.dep[var] = true;
                    }
                    u.cov[covariate] = true;
                }
                Target::OnClassIntercept { .. }
                | Target::FactorMean { .. }
                | Target::LoadingClass { .. }
                | Target::FactorVariance { .. }
                | Target::FactorOnFactor { .. }
                | Target::LoadingFactor { .. }
                | Target::FactorCovariance { .. } => {}
                Target::Loading { var, .. }
                | Target::EqualThresholds { var, .. }
                | Target::OnFactor { var, .. } => u.dep[var] = true,
                Target::FactorOn { covariate, .. } => u.cov[covariate] = true,
                Target::ClassVariance { .. }
                | Target::ClassCovariance { .. }
                | Target::LoadingSlope { .. } => {}
                Target::Threshold { var, .. } | Target::Mean { var } | Target::Variance { var } => {
                    u.dep[var] = true
                }
                Target::Slope { var, covariate, .. } => {
                    u.dep[var] = true;
                    u.cov[covariate] = true;
                    if !u.covariates[var].contains(&covariate) {
                        u.covariates[var].push(covariate);
                    }
                }
                Target::Covariance { a, b } => {
                    u.dep[a] = true;
                    u.dep[b] = true;
                    if !u.covariances.contains(&(a, b)) {
                        u.covariances.push((a, b));
                    }
                }
                Target::ClassSlope { covariate, .. } => u.cov[covariate] = true,
                Target::ClassIntercept { .. } | Target::ClassOnClass { .. } => {}
            }
            if let Block::Class(cv, _) = m.block {
                let var = match m.target {
                    Target::Threshold { var, .. }
                    | Target::Mean { var }
                    | Target::Variance { var }
                    | Target::Slope { var, .. } => Some(var),
                    Target::Covariance { a, .. } => Some(a),
                    Target::RandomSlopeOn { re, .. } => re_var(re),
                    _ => None,
                };
                let vars: Vec<usize> = match m.target {
                    Target::Covariance { a, b } => vec![a, b],
                    _ => var.into_iter().collect(),
                };
                for v in vars {
                    self.class_block_var(d, &mut u.class_var[v], v, (cv, m.span));
                }
            }
        }
        u
    }

    /// Records that a class block of class variable `cv` (at `span`) gives
    /// variable `v` parameters; reports a second class variable.
    fn class_block_var(
        &mut self,
        d: &Decls,
        seen: &mut Option<(usize, Span)>,
        v: usize,
        (cv, span): (usize, Span),
    ) {
        match *seen {
            None => *seen = Some((cv, span)),
            Some((c0, _)) if c0 != cv => {
                self.err_help(
                    span,
                    format!(
                        "{} is given class-specific parameters for both {} and {}",
                        d.use_names[v], d.class_vars[c0].name, d.class_vars[cv].name
                    ),
                    "a dependent variable is measured by one class variable; parameters that vary over combinations of classes are not supported yet",
                );
            }
            _ => {}
        }
    }

    /// Reports variables that are both dependent and covariate, categorical
    /// covariates, and covariances of categorical variables.
    fn role_conflicts(&mut self, d: &Decls, u: &Uses, mentions: &[Mention], file_span: Span) {
        for v in 0..d.usev.len() {
            if u.dep[v] && u.cov[v] {
                let span = mentions
                    .iter()
                    .find(|m| matches!(m.target, Target::Slope { covariate, .. } | Target::ClassSlope { covariate, .. } | Target::RandomSlopeOn { covariate, .. } if covariate == v))
                    .map_or(file_span, |m| m.span);
                self.err_help(
                    span,
                    format!(
                        "{} is both a dependent variable and a covariate",
                        d.use_names[v]
                    ),
                    "regressions among dependent variables are not supported yet",
                );
            }
            if u.cov[v] && d.categorical.contains(&v) {
                let span = mentions
                    .iter()
                    .find(|m| matches!(m.target, Target::Slope { covariate, .. } | Target::ClassSlope { covariate, .. } if covariate == v))
                    .map_or(file_span, |m| m.span);
                self.err_help(
                    span,
                    format!("{} is CATEGORICAL but is used as a covariate", d.use_names[v]),
                    "covariates are taken as they are (use 0/1 dummies); remove it from CATEGORICAL",
                );
            }
        }
        for &(a, b) in &u.covariances {
            for v in [a, b] {
                if d.categorical.contains(&v) {
                    let span = mentions
                        .iter()
                        .find(|m| m.target == Target::Covariance { a, b })
                        .map_or(file_span, |m| m.span);
                    self.err_help(
                        span,
                        format!(
                            "WITH between categorical variables ({}) is not supported",
                            d.use_names[v]
                        ),
                        "residual covariances are for continuous dependent variables",
                    );
                }
            }
        }
    }

    /// Two-level roles: a dependent in neither WITHIN nor BETWEEN has a
    /// random intercept (Mplus's default); a covariate must be in one of
    /// them; a between-level class variable's covariates in BETWEEN.
    fn two_level_roles(
        &mut self,
        d: &Decls,
        is_dep: &[bool],
        stated: &mut Stated,
        classes_span: Span,
        file_span: Span,
    ) {
        for (v, &dep) in is_dep.iter().enumerate() {
            let lists = d.within.contains(&v) || d.between.contains(&v);
            if dep
                && !lists
                && !stated
                    .random
                    .iter()
                    .any(|r| r.kind == RandomKind::Intercept { var: v })
            {
                // a within-level dependent with a between-level part:
                // its intercept is random (Mplus's default)
                stated.random.push(RandomEffect {
                    name: d.use_names[v].clone(),
                    kind: RandomKind::Intercept { var: v },
                    within: false,
                });
            }
            if !dep && !lists {
                let span = stated
                    .mentions
                    .iter()
                    .find(|m| matches!(m.target, Target::Slope { covariate, .. } | Target::ClassSlope { covariate, .. } if covariate == v))
                    .map_or(file_span, |m| m.span);
                self.err_help(
                    span,
                    format!(
                        "the covariate {} must be listed in WITHIN or BETWEEN",
                        d.use_names[v]
                    ),
                    "splitting a covariate into within and between parts is not supported yet",
                );
            }
        }
        for cv in d.class_vars.iter().filter(|c| c.between) {
            for &x in &cv.covariates {
                if !d.between.contains(&x) {
                    self.err(
                        classes_span,
                        format!("{} is a between-level class variable; its covariate {} must be in BETWEEN", cv.name, d.use_names[x]),
                    );
                }
            }
        }
    }

    /// The class variable that measures each dependent variable: the one
    /// whose class blocks mention it, or the only (between-level) class
    /// variable.
    fn dep_classes(
        &mut self,
        d: &Decls,
        deps: &[usize],
        u: &Uses,
        mentions: &[Mention],
        classes_span: Span,
    ) -> Vec<Option<usize>> {
        let class_vars = &d.class_vars;
        let mut dep_class: Vec<Option<usize>> = vec![None; d.usev.len()];
        let mut unassigned = Vec::new();
        let between_cvs: Vec<usize> = (0..class_vars.len())
            .filter(|&c| class_vars[c].between)
            .collect();
        for &v in deps {
            if d.between.contains(&v) {
                // a between-level dependent is measured by a between-level
                // class variable (or none)
                dep_class[v] = match u.class_var[v] {
                    Some((cv, span)) if !class_vars[cv].between => {
                        self.err_help(
                            span,
                            format!(
                                "{} is a BETWEEN variable: its parameters can vary only across the classes of a between-level class variable",
                                d.use_names[v]
                            ),
                            format!("{} is a within-level class variable", class_vars[cv].name),
                        );
                        None
                    }
                    Some((cv, _)) => Some(cv),
                    None if between_cvs.len() == 1 => Some(between_cvs[0]),
                    None => None,
                };
                continue;
            }
            dep_class[v] = match (u.class_var[v], class_vars.len()) {
                (Some((cv, _)), _) => Some(cv),
                (None, 1) => Some(0),
                (None, 0) => None,
                (None, _) => {
                    let span = mentions
                        .iter()
                        .find(|m| matches!(m.target, Target::Threshold{var,..} | Target::Mean{var} | Target::Variance{var} if var == v))
                        .map_or(classes_span, |m| m.span);
                    unassigned.push((span, v));
                    None
                }
            };
        }
        self.report_unassigned(d, &unassigned, classes_span);
        dep_class
    }

    /// One error per place for the dependents no class variable measures
    /// when there are several: the ones never mentioned together, at
    /// CLASSES (one error, not one per variable).
    fn report_unassigned(&mut self, d: &Decls, unassigned: &[(Span, usize)], classes_span: Span) {
        let mut at_classes = Vec::new();
        for &(span, v) in unassigned {
            if span == classes_span {
                at_classes.push(v);
            } else {
                self.unassigned_error(d, span, &[v]);
            }
        }
        if !at_classes.is_empty() {
            self.unassigned_error(d, classes_span, &at_classes);
        }
    }

    fn unassigned_error(&mut self, d: &Decls, span: Span, vars: &[usize]) {
        const SHOWN: usize = 8;
        let mut names: Vec<&str> = vars
            .iter()
            .take(SHOWN)
            .map(|&v| d.use_names[v].as_str())
            .collect();
        let more = vars.len().saturating_sub(SHOWN);
        let more_text = format!("{more} more");
        if more > 0 {
            names.push(&more_text);
        }
        let list = match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => names.concat(),
        };
        let v = vars[0];
        self.err_help(
            span,
            format!("with several class variables, say which one measures {list}"),
            format!(
                "mention its thresholds or mean in a class block, e.g. MODEL {}: %{}#1% [{}{}];",
                d.class_vars[0].name,
                d.class_vars[0].name,
                d.use_names[v],
                if d.categorical.contains(&v) { "$1" } else { "" }
            ),
        );
    }
}
