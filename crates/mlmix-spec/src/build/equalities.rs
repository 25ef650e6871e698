//! Labels and equality constraints: what MODEL statements fix, start and
//! label (class blocks free a parameter in their class), and the grouping of
//! the parameters into free parameters: a label ties parameters, a class
//! block's mention stands alone, and the rest follow the defaults of
//! [`super::defaults`].

use std::collections::HashMap;

use super::Builder;
use super::defaults::{Defaults, Key};
use super::grammar::Block;
use super::statements::{Mention, Target};
use crate::model::*;
use crate::source::Span;

/// A free parameter's group: a label, or the default key.
#[derive(Clone, PartialEq, Eq, Hash)]
enum G {
    Label(String),
    Key(Key),
}

impl Builder<'_> {
    /// Numbers the parameters of `model`: Mplus's defaults, then what the
    /// mentions say, grouped into free parameters.
    pub(super) fn parameters(&mut self, model: &mut Model, mentions: &[Mention]) {
        let Defaults {
            mut params,
            keys,
            index,
            ..
        } = Defaults::new(model, mentions);
        let mut split = vec![false; params.len()];
        let mut origin = vec![None; params.len()];
        let mentioned = self.apply_mentions(
            model,
            mentions,
            &index,
            (&mut params, &mut split, &mut origin),
        );
        // class logit slopes and class-on-class effects exist only where a
        // statement names them (`c#1 ON x` frees class 1's slope alone); the
        // others are fixed at 0, as in Mplus
        for (i, p) in params.iter_mut().enumerate() {
            if matches!(
                p.kind,
                ParamKind::ClassSlope { .. } | ParamKind::ClassOnClass { .. }
            ) && !mentioned[i]
            {
                p.value = ParamValue::Fixed(0.0);
            }
        }
        growth_equalities(model, mentions, &mut params, &mentioned);
        let mut free = self.free_parameters(&mut params, &keys, &split, mentions);
        self.check_values(model, &params, &origin);
        // starting values within a group must agree
        for f in &free {
            let starts: Vec<f64> = f.members.iter().filter_map(|&i| params[i].start).collect();
            if let Some(&s0) = starts.first() {
                for &i in &f.members {
                    params[i].start = Some(s0);
                }
            }
        }
        model.parameters = params;
        for f in &mut free {
            f.name = free_name(model, f);
        }
        model.free = free;
    }

    /// Applies the mentions to the parameters, %OVERALL% first, then class
    /// blocks, each in file order; a class block's mention of a measurement
    /// parameter splits it from its default group. Returns which
    /// parameters were mentioned, and sets the span of the mention that gave
    /// each parameter its value (`@` or `*`) in `origin`.
    fn apply_mentions(
        &mut self,
        model: &Model,
        mentions: &[Mention],
        index: &HashMap<(ParamKind, Option<usize>), usize>,
        (params, split, origin): (&mut [Parameter], &mut [bool], &mut [Option<Span>]),
    ) -> Vec<bool> {
        let mut mentioned = vec![false; params.len()];
        for pass in 0..2 {
            for m in mentions {
                let in_class = matches!(m.block, Block::Class(..));
                if (pass == 0) == in_class {
                    continue;
                }
                let class_filter = match m.block {
                    Block::Class(_, k) => Some(k),
                    Block::Overall => None,
                };
                let Some(kinds) = self.kinds_of(model, m) else {
                    continue;
                };
                for kind in kinds {
                    let measured = model.param_class_var(&kind).is_some();
                    let classes: Vec<Option<usize>> = if measured {
                        let cv = model.param_class_var(&kind).unwrap_or(0);
                        match class_filter {
                            Some(k) => vec![Some(k)],
                            None => (0..model.class_vars[cv].classes).map(Some).collect(),
                        }
                    } else {
                        vec![None]
                    };
                    for c in classes {
                        match index.get(&(kind, c)) {
                            Some(&i) => {
                                mentioned[i] = true;
                                apply(&mut params[i], m);
                                // `[f];` frees a factor mean, 0 by default
                                // (Mplus's rule; a loading named in BY
                                // without `*` stays as it is)
                                if matches!(kind, ParamKind::FactorMean { .. })
                                    && m.fixed.is_none()
                                    && m.start.is_none()
                                {
                                    params[i].value = ParamValue::Free(0);
                                }
                                if m.fixed.is_some() || m.start.is_some() {
                                    origin[i] = Some(m.span);
                                }
                                if in_class && measured {
                                    split[i] = true;
                                }
                            }
                            None => self.err(
                                m.span,
                                format!(
                                    "{} is not a parameter of this model",
                                    model.param_name(&kind)
                                ),
                            ),
                        }
                    }
                }
            }
        }
        mentioned
    }

    /// Checks that category `k` (1-based) of nominal variable `var` has
    /// parameters: it exists and is not the last (the reference). None
    /// after reporting it at `span`.
    fn nominal_category(&mut self, model: &Model, span: Span, var: usize, k: usize) -> Option<()> {
        let ncat = model.n_categories(var).unwrap_or(0);
        if k < ncat {
            return Some(());
        }
        let name = &model.variables[var].name;
        let msg = if k == ncat {
            format!("{name}#{k} is the reference (last) category of {name}: its log-odds are 0")
        } else {
            format!("{name}#{k} does not exist: {name} has {ncat} categories in the data")
        };
        self.err_help(
            span,
            msg,
            format!(
                "the categories with parameters are {name}#1 to {name}#{}",
                ncat.saturating_sub(1)
            ),
        );
        None
    }

    /// The kinds of parameter a mention names (before classes); None for
    /// none (after an error, or for a target that is no parameter).
    fn kinds_of(&mut self, model: &Model, m: &Mention) -> Option<Vec<ParamKind>> {
        let kinds = match m.target {
            Target::Threshold { var, index } if model.is_nominal(var) => {
                self.nominal_category(model, m.span, var, index)?;
                vec![ParamKind::NominalIntercept {
                    var,
                    category: index,
                }]
            }
            Target::Slope {
                var,
                covariate,
                category,
            } if model.is_nominal(var) => {
                let ncat = model.n_categories(var).unwrap_or(0);
                let cats: Vec<usize> = match category {
                    Some(k) => {
                        self.nominal_category(model, m.span, var, k)?;
                        vec![k]
                    }
                    None => (1..ncat).collect(),
                };
                cats.into_iter()
                    .map(|category| ParamKind::NominalSlope {
                        var,
                        category,
                        covariate,
                    })
                    .collect()
            }
            Target::Threshold { var, index } => {
                let ncat = model.n_categories(var).unwrap_or(0);
                if index >= ncat {
                    let name = &model.variables[var].name;
                    self.err_help(
                        m.span,
                        format!(
                            "{name}${index} does not exist: {name} has {ncat} categories in the data"
                        ),
                        if ncat <= 2 {
                            format!("its only threshold is {name}$1")
                        } else {
                            format!("its thresholds are {name}$1 to {name}${}", ncat - 1)
                        },
                    );
                    return None;
                }
                vec![ParamKind::Threshold { var, index }]
            }
            Target::Mean { var } => vec![ParamKind::Mean { var }],
            Target::Variance { var } => vec![ParamKind::Variance { var }],
            Target::Slope { var, covariate, .. } => vec![ParamKind::Slope { var, covariate }],
            Target::Covariance { a, b } => vec![ParamKind::Covariance { a, b }],
            Target::RandomVariance { re } => vec![ParamKind::RandomVariance { re }],
            Target::FactorMean { re } => vec![ParamKind::FactorMean { re }],
            Target::FactorOn { re, covariate } => vec![ParamKind::FactorOn { re, covariate }],
            Target::OnFactor { var, factor } => vec![ParamKind::RandomRegression {
                re: model.intercept_of(var)?,
                on: factor,
            }],
            Target::Loading { .. } | Target::LoadingClass { .. } | Target::LoadingFactor { .. } => {
                vec![super::factors::loading_kind(model, m.target)?]
            }
            Target::RandomCovariance { a, b } => vec![ParamKind::RandomCovariance { a, b }],
            Target::RandomSlopeOn { re, covariate } => {
                vec![ParamKind::RandomSlopeOn { re, covariate }]
            }
            Target::RandomRegression { re, on } => {
                vec![ParamKind::RandomRegression { re, on }]
            }
            Target::ClassVariance { .. }
            | Target::ClassCovariance { .. }
            | Target::LoadingSlope { .. }
            | Target::OnClassIntercept { .. }
            | Target::EqualThresholds { .. }
            | Target::FactorVariance { .. }
            | Target::FactorOnFactor { .. }
            | Target::FactorCovariance { .. } => return None,
            Target::ClassIntercept { cv, class } => {
                vec![ParamKind::ClassIntercept { cv, class }]
            }
            Target::ClassSlope {
                cv,
                class,
                covariate,
            } => {
                let ks: Vec<usize> = class.map_or_else(
                    || (0..model.class_vars[cv].classes - 1).collect(),
                    |k| vec![k],
                );
                ks.into_iter()
                    .map(|k| ParamKind::ClassSlope {
                        cv,
                        class: k,
                        covariate,
                    })
                    .collect()
            }
            Target::ClassOnClass {
                cv,
                class,
                parent,
                parent_class,
            } => {
                let ks: Vec<usize> = class.map_or_else(
                    || (0..model.class_vars[cv].classes - 1).collect(),
                    |k| vec![k],
                );
                let js: Vec<usize> = parent_class.map_or_else(
                    || (0..model.class_vars[parent].classes - 1).collect(),
                    |j| vec![j],
                );
                let mut v = Vec::new();
                for &k in &ks {
                    for &j in &js {
                        v.push(ParamKind::ClassOnClass {
                            cv,
                            class: k,
                            parent,
                            parent_class: j,
                        });
                    }
                }
                v
            }
        };
        Some(kinds)
    }

    /// Groups the parameters into free parameters: label > split (own) >
    /// default key, in order of first member. A group whose members are all
    /// fixed is no free parameter; a default group with some members fixed
    /// keeps its free ones; a label may not tie fixed and free parameters.
    fn free_parameters(
        &mut self,
        params: &mut [Parameter],
        keys: &[Key],
        split: &[bool],
        mentions: &[Mention],
    ) -> Vec<FreeParameter> {
        let mut order: Vec<G> = Vec::new();
        let mut members: HashMap<G, Vec<usize>> = HashMap::new();
        for (i, p) in params.iter().enumerate() {
            let g = match (&p.label, split[i]) {
                (Some(l), _) => G::Label(l.clone()),
                (None, true) => G::Key(Key::Own(i)),
                (None, false) => G::Key(keys[i]),
            };
            if !members.contains_key(&g) {
                order.push(g.clone());
            }
            members.entry(g).or_default().push(i);
        }
        let label_span = |l: &str| {
            mentions
                .iter()
                .find(|m| m.label.as_deref() == Some(l))
                .map_or(Span::default(), |m| m.span)
        };
        let mut free: Vec<FreeParameter> = Vec::new();
        for g in order {
            let mem = &members[&g];
            let fixed: Vec<f64> = mem
                .iter()
                .filter_map(|&i| match params[i].value {
                    ParamValue::Fixed(v) => Some(v),
                    ParamValue::Free(_) => None,
                })
                .collect();
            if !fixed.is_empty() {
                if fixed.len() != mem.len() {
                    if let G::Label(l) = &g {
                        self.err(
                            label_span(l),
                            format!("label ({l}) ties fixed and free parameters together"),
                        );
                        continue;
                    }
                    // a shared default group with some classes fixed: the fixed ones stand alone
                    let free_mem: Vec<usize> = mem
                        .iter()
                        .copied()
                        .filter(|&i| matches!(params[i].value, ParamValue::Free(_)))
                        .collect();
                    if !free_mem.is_empty() {
                        push_free(params, &mut free, free_mem, None);
                    }
                } else if fixed.iter().any(|v| *v != fixed[0])
                    && let G::Label(l) = &g
                {
                    self.err(
                        label_span(l),
                        format!("label ({l}) ties parameters fixed at different values"),
                    );
                }
                continue;
            }
            let label = match &g {
                G::Label(l) => Some(l.clone()),
                G::Key(_) => None,
            };
            push_free(params, &mut free, mem.clone(), label);
        }
        free
    }
}

/// Growth models' defaults that tie parameters together: the thresholds of
/// categorical outcomes held equal over time (labelled `i$1`, `i$2`, ...
/// after the intercept factor, unless the input labels them), and the
/// covariances of a growth factor whose variance is fixed at 0 in every
/// class fixed at 0 too (latent class growth analysis: `i-s@0;`), unless
/// a statement mentions them.
fn growth_equalities(
    model: &Model,
    mentions: &[Mention],
    params: &mut [Parameter],
    mentioned: &[bool],
) {
    for m in mentions {
        if let Target::EqualThresholds { var, factor } = m.target {
            let base = model.random_name(factor).to_ascii_lowercase();
            for p in params.iter_mut() {
                if let ParamKind::Threshold { var: v, index } = p.kind
                    && v == var
                    && p.label.is_none()
                {
                    p.label = Some(format!("{base}${index}"));
                }
            }
        }
    }
    let zero_variance = |re: usize, params: &[Parameter]| {
        params
            .iter()
            .any(|p| p.kind == ParamKind::RandomVariance { re })
            && params.iter().all(|p| {
                p.kind != ParamKind::RandomVariance { re } || p.value == ParamValue::Fixed(0.0)
            })
    };
    let fix: Vec<usize> = (0..params.len())
        .filter(|&i| match params[i].kind {
            ParamKind::RandomCovariance { a, b } => {
                !mentioned[i]
                    && model.two_level.is_none()
                    && (zero_variance(a, params) || zero_variance(b, params))
            }
            _ => false,
        })
        .collect();
    for i in fix {
        params[i].value = ParamValue::Fixed(0.0);
        params[i].start = None;
    }
}

/// What a mention says about a parameter: fixed, a starting value, a label.
fn apply(p: &mut Parameter, m: &Mention) {
    if let Some(v) = m.fixed {
        p.value = ParamValue::Fixed(v);
        p.start = None;
    }
    if let Some(s) = m.start {
        p.value = ParamValue::Free(0);
        p.start = s;
    }
    if let Some(l) = &m.label {
        p.label = Some(l.clone());
    }
}

/// Adds a free parameter of `members` (named later).
fn push_free(
    params: &mut [Parameter],
    free: &mut Vec<FreeParameter>,
    members: Vec<usize>,
    label: Option<String>,
) {
    let idx = free.len();
    for &i in &members {
        params[i].value = ParamValue::Free(idx);
    }
    free.push(FreeParameter {
        name: String::new(),
        label,
        members,
    });
}

/// The name of a free parameter: its members' kind and classes, or their
/// names joined by `=`, with its label.
fn free_name(model: &Model, f: &FreeParameter) -> String {
    let first = &model.parameters[f.members[0]];
    let same_kind = f
        .members
        .iter()
        .all(|&i| model.parameters[i].kind == first.kind);
    let mut name = if same_kind && f.members.len() > 1 {
        let base = match first.kind {
            ParamKind::Threshold { .. }
            | ParamKind::NominalIntercept { .. }
            | ParamKind::Mean { .. }
            | ParamKind::ClassIntercept { .. } => {
                format!("[{}]", model.param_name(&first.kind))
            }
            ParamKind::Variance { .. } => format!("{} (variance)", model.param_name(&first.kind)),
            _ => model.param_name(&first.kind),
        };
        let classes: Vec<String> = f
            .members
            .iter()
            .filter_map(|&i| model.parameters[i].class.map(|k| (k + 1).to_string()))
            .collect();
        let cvname = model
            .param_class_var(&first.kind)
            .map(|c| model.class_vars[c].name.to_ascii_uppercase())
            .unwrap_or_default();
        let ncls = model
            .param_class_var(&first.kind)
            .map_or(0, |c| model.class_vars[c].classes);
        if classes.len() == ncls {
            format!("{base}, all classes of {cvname}")
        } else {
            format!("{base} in classes {} of {cvname}", classes.join(", "))
        }
    } else if f.members.len() == 1 {
        model.param_full_name(first)
    } else {
        let names: Vec<String> = f
            .members
            .iter()
            .map(|&i| model.param_full_name(&model.parameters[i]))
            .collect();
        names.join(" = ")
    };
    if let Some(l) = &f.label {
        name.push_str(&format!(" ({l})"));
    }
    name
}

/// The largest magnitude of a value given with `@` or `*`: beyond it the
/// squares and sums of the log-likelihood overflow (a mean fixed at 1e200
/// gives a squared residual of infinity).
pub(super) const MAX_VALUE: f64 = 1e100;

impl Builder<'_> {
    /// Reports, at the statement that gave them, the values the engine
    /// would refuse during the fit (`origin`: the span of the mention that
    /// fixed or started each parameter): values that are not finite or
    /// beyond [`MAX_VALUE`], logit-scale values fixed outside LOGLOW and
    /// LOGHIGH, residual variances fixed at 0 or less, random-effect
    /// variances fixed below 0, covariances fixed beyond what their fixed
    /// variances allow, and thresholds given out of order. One error per
    /// statement and parameter kind (a statement in %OVERALL% fixes every
    /// class).
    fn check_values(&mut self, model: &Model, params: &[Parameter], origin: &[Option<Span>]) {
        let mut seen: Vec<(Span, ParamKind)> = Vec::new();
        let mut found = false;
        for (i, p) in params.iter().enumerate() {
            let Some(span) = origin[i] else {
                continue;
            };
            let problem = match p.value {
                ParamValue::Fixed(v) => fixed_problem(model, p, v),
                ParamValue::Free(_) => p.start.and_then(|s| start_problem(model, p, s)),
            };
            if let Some((msg, help)) = problem
                && !seen.contains(&(span, p.kind))
            {
                seen.push((span, p.kind));
                found = true;
                self.err_help(span, msg, help);
            }
        }
        if found {
            return;
        }
        // one error per statement
        let mut said: Vec<Span> = Vec::new();
        for (i, msg) in covariance_problems(model, params) {
            if let Some(span) = origin[i].filter(|s| !said.contains(s)) {
                said.push(span);
                self.err_help(
                    span,
                    msg,
                    "a covariance fixed with both variances must not exceed the square root of their product",
                );
            }
        }
        for (i, msg) in threshold_order_problems(model, params) {
            if let Some(span) = origin[i].filter(|s| !said.contains(s)) {
                said.push(span);
                self.err_help(
                    span,
                    msg,
                    "the thresholds of a variable must increase: $1 < $2 < ...",
                );
            }
        }
    }
}

/// A value as a reader wants it: plain when of moderate size, in
/// scientific notation otherwise (1e308, not 309 digits).
pub(super) fn show(v: f64) -> String {
    if v != 0.0 && v.is_finite() && !(1e-4..1e6).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// The name of a parameter without its class: one statement in %OVERALL%
/// names it in every class.
fn classless_name(model: &Model, p: &Parameter) -> String {
    let p = Parameter {
        class: None,
        ..p.clone()
    };
    model.param_full_name(&p)
}

/// Whether a parameter is on the logit (or probit) scale and held within
/// LOGLOW and LOGHIGH by the engine: thresholds, class logit intercepts
/// (but the mean of a random one) and class-on-class effects.
fn logit_bounded(model: &Model, kind: &ParamKind) -> bool {
    match *kind {
        ParamKind::Threshold { .. }
        | ParamKind::NominalIntercept { .. }
        | ParamKind::ClassOnClass { .. } => true,
        ParamKind::ClassIntercept { cv, class } => !model.has_random_logit(cv, class),
        _ => false,
    }
}

/// Why the engine would refuse parameter `p` fixed at `v` (message, help).
fn fixed_problem(model: &Model, p: &Parameter, v: f64) -> Option<(String, String)> {
    let name = classless_name(model, p);
    let (lo, hi) = (model.analysis.logit_low, model.analysis.logit_high);
    let fixed = format!("{name} is fixed at {}", show(v));
    if !v.is_finite() {
        return Some((
            format!("{fixed}, which is not a finite number"),
            "give a finite value after '@'".into(),
        ));
    }
    if logit_bounded(model, &p.kind) && !(lo..=hi).contains(&v) {
        return Some((
            format!(
                "{fixed}, outside [{}, {}], the logit range the engine keeps thresholds and class logits in",
                show(lo),
                show(hi)
            ),
            "a value at LOGLOW or LOGHIGH already means a probability of (almost) 0 or 1; LOGLOW and LOGHIGH in ANALYSIS change the range".into(),
        ));
    }
    if v.abs() > MAX_VALUE {
        return Some((
            format!(
                "{fixed}, beyond ±{}, where the log-likelihood overflows",
                show(MAX_VALUE)
            ),
            "give a value of a sensible size for the variable's scale".into(),
        ));
    }
    match p.kind {
        ParamKind::Variance { .. } if v <= 0.0 || !(1.0 / v).is_finite() => Some((
            format!("{fixed}; a residual variance must be positive"),
            "fix it at a positive value, or leave it free".into(),
        )),
        ParamKind::RandomVariance { .. } if v < 0.0 => Some((
            format!("{fixed}; a random-effect variance cannot be negative"),
            "fix it at 0 to make the random effect a constant, or at a positive value".into(),
        )),
        _ => None,
    }
}

/// Why the engine would refuse the starting value `s` of parameter `p`
/// (message, help). A starting value outside a parameter's bounds is moved
/// inside them by the engine, so only its size matters.
fn start_problem(model: &Model, p: &Parameter, s: f64) -> Option<(String, String)> {
    let name = classless_name(model, p);
    if !s.is_finite() {
        return Some((
            format!(
                "the starting value {} of {name} is not a finite number",
                show(s)
            ),
            "give a finite value after '*'".into(),
        ));
    }
    (s.abs() > MAX_VALUE).then(|| {
        (
            format!(
                "the starting value {} of {name} is beyond ±{}, where the log-likelihood overflows",
                show(s),
                show(MAX_VALUE)
            ),
            "give a value of a sensible size for the variable's scale".into(),
        )
    })
}

/// The fixed value of parameter `kind` in `class`, if it is fixed.
fn fixed_of(params: &[Parameter], kind: ParamKind, class: Option<usize>) -> Option<f64> {
    params
        .iter()
        .find(|q| q.kind == kind && q.class == class)
        .and_then(|q| match q.value {
            ParamValue::Fixed(v) => Some(v),
            ParamValue::Free(_) => None,
        })
}

/// Covariances fixed together with both their variances at values no
/// covariance matrix has: `(parameter, message)`. A residual covariance
/// matrix must be positive definite (|c| < sqrt(va vb)); a random-effect
/// one positive semi-definite (|c| <= sqrt(va vb)).
fn covariance_problems(model: &Model, params: &[Parameter]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, p) in params.iter().enumerate() {
        let ParamValue::Fixed(c) = p.value else {
            continue;
        };
        let (va, vb, strict) = match p.kind {
            ParamKind::Covariance { a, b } => (
                ParamKind::Variance { var: a },
                ParamKind::Variance { var: b },
                true,
            ),
            ParamKind::RandomCovariance { a, b } => (
                ParamKind::RandomVariance { re: a },
                ParamKind::RandomVariance { re: b },
                false,
            ),
            _ => continue,
        };
        let (Some(x), Some(y)) = (fixed_of(params, va, p.class), fixed_of(params, vb, p.class))
        else {
            continue;
        };
        let bound = (x * y).max(0.0).sqrt();
        let bad = if strict {
            c.abs() >= bound
        } else {
            c.abs() > bound * (1.0 + 1e-12)
        };
        if bad {
            out.push((
                i,
                format!(
                    "{} is fixed at {}, but the variances are fixed at {} and {}: no covariance matrix has these entries",
                    classless_name(model, p),
                    show(c),
                    show(x),
                    show(y)
                ),
            ));
        }
    }
    out
}

/// Thresholds whose values, fixed or starting, are given and do not
/// increase with the threshold number within a class: `(parameter,
/// message)`, naming the later threshold.
fn threshold_order_problems(model: &Model, params: &[Parameter]) -> Vec<(usize, String)> {
    let given = |q: &Parameter| match q.value {
        ParamValue::Fixed(v) => Some(v),
        ParamValue::Free(_) => q.start,
    };
    let mut out = Vec::new();
    for (i, p) in params.iter().enumerate() {
        let (ParamKind::Threshold { var, index }, Some(v)) = (p.kind, given(p)) else {
            continue;
        };
        // the nearest lower threshold with a given value
        let below = (1..index).rev().find_map(|k| {
            params
                .iter()
                .find(|q| q.kind == (ParamKind::Threshold { var, index: k }) && q.class == p.class)
                .and_then(|q| given(q).map(|w| (k, w)))
        });
        if let Some((k, w)) = below
            && v <= w
        {
            let name = &model.variables[var].name.to_ascii_uppercase();
            out.push((
                i,
                format!(
                    "{name}${index} is given the value {}, not above {name}${k} ({}): thresholds must increase",
                    show(v),
                    show(w)
                ),
            ));
        }
    }
    out
}
