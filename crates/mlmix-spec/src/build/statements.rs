//! The meaning of MODEL statements (the fourth phase): which parameters
//! (targets) an item list, an `ON` or a `WITH` statement mentions, with
//! their values and labels, and the random slopes `s | y ON x` declares.
//! A new kind of statement gets its meaning here; [`super::defaults`] turns
//! the targets into `ParamKind`s.

use std::collections::BTreeMap;

use super::Builder;
use super::declarations::Decls;
use super::grammar::{Block, Elem, Level, ModelNames, ModelStmt, Ref, StmtKind};
use crate::model::*;
use crate::source::Span;
use crate::syntax::Section;

/// The parameter a statement element points at, before classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Target {
    Threshold {
        var: usize,
        index: usize,
    },
    Mean {
        var: usize,
    },
    Variance {
        var: usize,
    },
    /// `y ON x`; `category` is `Some(k)` for `u#k ON x` (category `k`,
    /// 1-based, of a nominal `u`), `None` for every category.
    Slope {
        var: usize,
        covariate: usize,
        category: Option<usize>,
    },
    Covariance {
        a: usize,
        b: usize,
    },
    ClassIntercept {
        cv: usize,
        class: usize,
    },
    ClassSlope {
        cv: usize,
        class: Option<usize>,
        covariate: usize,
    },
    ClassOnClass {
        cv: usize,
        class: Option<usize>,
        parent: usize,
        parent_class: Option<usize>,
    },
    /// `c#1` alone on the between level: a random class logit intercept.
    ClassVariance {
        cv: usize,
        class: usize,
    },
    /// `c#1 WITH c#2` on the between level: the covariance of two random
    /// class logit intercepts (`a`, `b`: (class variable, class)).
    ClassCovariance {
        a: (usize, usize),
        b: (usize, usize),
    },
    RandomVariance {
        re: usize,
    },
    RandomCovariance {
        a: usize,
        b: usize,
    },
    /// `s ON w` on the between level: random slope `re` on a BETWEEN
    /// covariate.
    RandomSlopeOn {
        re: usize,
        covariate: usize,
    },
    /// `s ON y` on the between level: one random effect on another.
    RandomRegression {
        re: usize,
        on: usize,
    },
    /// `f BY u`: the loading of variable `var` on factor `factor` (the
    /// factor's index, which is its latent variable's index).
    Loading {
        factor: usize,
        var: usize,
    },
    /// `fb BY c#1` on the between level: the loading of the random logit
    /// intercept of class `class` of `cv` on factor `factor` (eq 35).
    LoadingClass {
        factor: usize,
        cv: usize,
        class: usize,
    },
    /// `[f]`: the mean of factor `re`.
    FactorMean {
        re: usize,
    },
    /// A factor's variance (`f`; factors numbered from 0 until
    /// `factor_latents` gives them their latent variable indices).
    FactorVariance {
        f: usize,
    },
    /// A covariance of two factors (`f WITH g`, `a < b`), numbered as in
    /// `FactorVariance`.
    FactorCovariance {
        a: usize,
        b: usize,
    },
    /// `f ON x`: factor `re` on observed covariate `covariate`.
    FactorOn {
        re: usize,
        covariate: usize,
    },
    /// `h BY f`: factor `lower` measured by the second-order factor
    /// `factor` (numbered as in `FactorVariance`).
    /// `fb BY s` on the between level, `s` a random slope (its index among
    /// the random slope names): the slope regressed on the factor.
    LoadingSlope {
        factor: usize,
        slope: usize,
    },
    LoadingFactor {
        factor: usize,
        lower: usize,
    },
    /// `f ON g`: one factor on another (numbered as in `FactorVariance`).
    FactorOnFactor {
        re: usize,
        on: usize,
    },
    /// `y ON f`: observed variable `var` on factor `factor` (its intercept
    /// regressed on the factor).
    OnFactor {
        var: usize,
        factor: usize,
    },
    /// The thresholds of categorical growth outcome `var` are held equal
    /// over time: labelled after growth factor `factor` (`i$1`, ...).
    EqualThresholds {
        var: usize,
        factor: usize,
    },
    /// `y ON c#1` on the between level (before the levels are resolved):
    /// a variable's random effect on a random class logit intercept.
    OnClassIntercept {
        var: usize,
        cv: usize,
        class: usize,
    },
}

/// A statement's mention of one parameter (before classes), with what it
/// says about it.
pub(super) struct Mention {
    pub(super) target: Target,
    pub(super) block: Block,
    pub(super) level: Option<Level>,
    pub(super) fixed: Option<f64>,
    pub(super) start: Option<Option<f64>>,
    pub(super) label: Option<String>,
    pub(super) span: Span,
}
/// What the MODEL statements say.
pub(super) struct Stated {
    /// Every parameter mentioned, in file order.
    pub(super) mentions: Vec<Mention>,
    /// Per random slope (as in [`Decls::slope_names`]): (dependent,
    /// covariate, span); `usize::MAX` if its statement had an error.
    pub(super) slopes: Vec<(usize, usize, Span)>,
    /// The random effects of a two-level model.
    pub(super) random: Vec<RandomEffect>,
    /// The class variable across whose classes the random effects'
    /// variances and covariances vary.
    pub(super) cov_class_var: Option<usize>,
}

/// What a statement's elements are checked against.
struct Ctx<'a> {
    st: &'a ModelStmt,
    /// The names MODEL resolves (USEVARIABLES, then random slopes, then
    /// factors: [`ModelNames`]), for messages.
    use_names: &'a [String],
    categorical: &'a [usize],
    /// The NOMINAL variables (also in `categorical`).
    nominal: &'a [usize],
}

/// Targets met so far, with the element that named each.
type Pending<'e> = Vec<(Target, &'e Elem)>;

impl Builder<'_> {
    /// Parses the MODEL statements and turns them into mentions of
    /// parameters; records class variables' covariates and parents in
    /// `d.class_vars`. `file_span` stands in for statements that have none.
    pub(super) fn statements(
        &mut self,
        sections: &[&Section],
        d: &mut Decls,
        names: &[String],
        file_span: Span,
    ) -> Stated {
        let mut names_ext = d.use_names.clone();
        if self.twolevel {
            names_ext.extend(d.slope_names.iter().cloned());
        }
        // factors after every other name MODEL resolves
        let first_factor = names_ext.len();
        names_ext.extend(d.factor_names.iter().map(|f| f.0.clone()));
        self.model_names = ModelNames {
            n_use: d.usev.len(),
            first_factor,
        };
        let stmts = self.model_statements(sections, &names_ext, names, &d.class_vars);
        let mut stated = Stated {
            mentions: Vec::new(),
            slopes: vec![(usize::MAX, usize::MAX, file_span); d.slope_names.len()],
            random: Vec::new(),
            cov_class_var: None,
        };
        for st in &stmts {
            if let StmtKind::RandomSlope {
                name,
                span,
                var,
                covariate,
            } = &st.kind
            {
                self.random_slope(name, *span, (*var, *covariate), d, &mut stated);
                continue;
            }
            self.statement_targets(
                st,
                (&names_ext, &d.categorical, &d.nominal),
                &mut d.class_vars,
                &mut stated.mentions,
            );
        }
        if self.twolevel {
            self.two_level_statements(&mut stated, d);
        }
        self.factor_latents(&mut stated, d, file_span);
        // a random slope's name stands for nothing else
        let n_use = d.usev.len();
        let mut bad_slope = Vec::new();
        stated.mentions.retain(|m| {
            let vars: Vec<usize> = match m.target {
                Target::Threshold { var, .. } | Target::Mean { var } | Target::Variance { var } => {
                    vec![var]
                }
                Target::Slope { var, covariate, .. } => vec![var, covariate],
                Target::Covariance { a, b } => vec![a, b],
                Target::ClassSlope { covariate, .. } => vec![covariate],
                _ => Vec::new(),
            };
            let ok = vars.iter().all(|&v| v < n_use);
            if !ok {
                bad_slope.push(m.span);
            }
            ok
        });
        for span in bad_slope {
            self.err(span, "a random slope cannot be used here");
        }
        stated
    }

    /// `name | y ON x`: the random slope `name` is the within-level slope
    /// of `y` on `x` (`yx`, as positions in MODEL's names).
    fn random_slope(
        &mut self,
        name: &str,
        span: Span,
        (var, covariate): (usize, usize),
        d: &Decls,
        stated: &mut Stated,
    ) {
        let Some(i) = d.slope_names.iter().position(|n| n == name) else {
            return;
        };
        let n_use = d.usev.len();
        if var >= n_use || covariate >= n_use {
            self.err(
                span,
                "a random slope is the slope of a variable on a variable",
            );
            return;
        }
        if !d.within.contains(&covariate) {
            self.err_help(
                span,
                format!(
                    "the random slope {name} is on {}, which is not in WITHIN",
                    d.use_names[covariate]
                ),
                format!("list {} in VARIABLE: WITHIN = ...;", d.use_names[covariate]),
            );
            return;
        }
        stated.slopes[i] = (var, covariate, span);
        stated.mentions.push(Mention {
            target: Target::Slope {
                var,
                covariate,
                category: None,
            },
            block: Block::Overall,
            level: Some(Level::Within),
            fixed: None,
            start: None,
            label: None,
            span,
        });
    }

    /// Turns a statement into mentions of parameters, and records class
    /// variable covariates and parents. A statement with an error mentions
    /// nothing.
    fn statement_targets(
        &mut self,
        st: &ModelStmt,
        (use_names, categorical, nominal): (&[String], &[usize], &[usize]),
        cvs: &mut [ClassVar],
        out: &mut Vec<Mention>,
    ) {
        let cx = Ctx {
            st,
            use_names,
            categorical,
            nominal,
        };
        let mut pending: Pending<'_> = Vec::new();
        let ok = match &st.kind {
            // in textual order, so labels meet their parameters in order
            StmtKind::Items(elems) => {
                let mut ok = true;
                for e in elems {
                    for r in &e.refs {
                        ok &= if e.bracketed {
                            self.bracketed_target(&cx, cvs, e, *r, &mut pending)
                        } else {
                            self.bare_target(&cx, cvs, e, *r, &mut pending)
                        };
                    }
                }
                ok
            }
            StmtKind::On(lhs, rhs) => {
                let mut ok = true;
                for l in lhs {
                    for lr in &l.refs {
                        for e in rhs {
                            for rr in &e.refs {
                                ok &= self.on_target(&cx, cvs, (l, *lr), (e, *rr), &mut pending);
                            }
                        }
                    }
                }
                ok
            }
            StmtKind::By(lhs, rhs) => {
                let mut ok = true;
                for l in lhs {
                    for lr in &l.refs {
                        for e in rhs {
                            for rr in &e.refs {
                                ok &= self.by_target(
                                    (st, use_names),
                                    (l, *lr),
                                    (e, *rr),
                                    &mut pending,
                                );
                            }
                        }
                    }
                }
                ok
            }
            StmtKind::Growth { factors, outcomes } => {
                self.growth_targets((st, use_names), factors, outcomes, categorical, out)
            }
            StmtKind::RandomSlope { .. } => true,
            StmtKind::With(lhs, rhs) => {
                let mut ok = true;
                for l in lhs {
                    for lr in &l.refs {
                        for e in rhs {
                            for rr in &e.refs {
                                let names = self.model_names;
                                match (*lr, *rr) {
                                    (Ref::Factor(a), Ref::Factor(b)) => {
                                        if a != b {
                                            let (a, b) = (a.min(b), a.max(b));
                                            pending.push((Target::FactorCovariance { a, b }, e));
                                        }
                                    }
                                    (Ref::Factor(_), Ref::Var(_) | Ref::Slope(_))
                                    | (Ref::Var(_) | Ref::Slope(_), Ref::Factor(_)) => {
                                        self.err(l.span.to(e.span), "covariances between a factor and an observed variable are not supported yet");
                                        ok = false;
                                    }
                                    (Ref::Class(ca, ka), Ref::Class(cb, kb))
                                        if st.level == Some(Level::Between) =>
                                    {
                                        let (a, b) =
                                            ((ca, ka).min((cb, kb)), (ca, ka).max((cb, kb)));
                                        if a != b {
                                            pending.push((Target::ClassCovariance { a, b }, e));
                                        }
                                    }
                                    (a, b)
                                        if names.model_var(a).is_some()
                                            && names.model_var(b).is_some() =>
                                    {
                                        let (Some(a), Some(b)) =
                                            (names.model_var(a), names.model_var(b))
                                        else {
                                            continue;
                                        };
                                        if a != b {
                                            let (a, b) = (a.min(b), a.max(b));
                                            pending.push((Target::Covariance { a, b }, e));
                                        }
                                    }
                                    _ => {
                                        self.err(l.span.to(e.span), "WITH is for covariances between continuous dependent variables");
                                        ok = false;
                                    }
                                }
                            }
                        }
                    }
                }
                ok
            }
        };
        if ok {
            self.labelled_mentions(st, pending, out);
        }
    }

    /// `[y]`, `[u$1]`, `[c#1]`, `[c]`: a mean, a threshold, class logit
    /// intercepts. False after an error.
    fn bracketed_target<'e>(
        &mut self,
        cx: &Ctx<'_>,
        cvs: &[ClassVar],
        e: &'e Elem,
        r: Ref,
        pending: &mut Pending<'e>,
    ) -> bool {
        let (st, use_names) = (cx.st, cx.use_names);
        let is_cat = |v: usize| cx.categorical.contains(&v);
        match r {
            Ref::Factor(re) => pending.push((Target::FactorMean { re }, e)),
            Ref::Slope(_) => {
                let v = self.model_names.model_var(r).unwrap_or(usize::MAX);
                pending.push((Target::Mean { var: v }, e));
            }
            Ref::Var(v) if cx.nominal.contains(&v) => {
                self.err_help(
                    e.span,
                    format!(
                        "{} is nominal: it has an intercept per category, not a mean",
                        use_names[v]
                    ),
                    format!("write [{}#1]", use_names[v]),
                );
                return false;
            }
            Ref::Var(v) if is_cat(v) => {
                self.err_help(
                    e.span,
                    format!(
                        "{} is categorical: it has thresholds, not a mean",
                        use_names[v]
                    ),
                    format!("write [{}$1]", use_names[v]),
                );
                return false;
            }
            Ref::Var(v) => pending.push((Target::Mean { var: v }, e)),
            Ref::Threshold(v, _) if cx.nominal.contains(&v) => {
                self.err_help(
                    e.span,
                    format!(
                        "{} is nominal: it has category intercepts, not thresholds",
                        use_names[v]
                    ),
                    format!("write [{}#1]", use_names[v]),
                );
                return false;
            }
            Ref::Category(v, k) => {
                if !cx.nominal.contains(&v) {
                    self.not_nominal(cx, e.span, v, k);
                    return false;
                }
                pending.push((Target::Threshold { var: v, index: k }, e));
            }
            Ref::Threshold(v, k) => {
                if !is_cat(v) {
                    self.err_help(
                        e.span,
                        format!(
                            "{} is continuous: it has a mean, not thresholds",
                            use_names[v]
                        ),
                        "declare it in CATEGORICAL if it is categorical",
                    );
                    return false;
                }
                pending.push((Target::Threshold { var: v, index: k }, e));
            }
            Ref::Class(cv, k) => {
                if k + 1 == cvs[cv].classes {
                    self.err_help(
                        e.span,
                        format!(
                            "[{}#{}] is the reference class: its logit intercept is 0",
                            cvs[cv].name,
                            k + 1
                        ),
                        format!(
                            "the logits of classes 1 to {} are parameters",
                            cvs[cv].classes - 1
                        ),
                    );
                    return false;
                } else if matches!(st.block, Block::Class(b, _) if b != cv) {
                    self.err(
                        e.span,
                        "class logit intercepts that vary across the classes of another class variable are not supported yet; use c2 ON c1",
                    );
                    return false;
                } else if matches!(st.block, Block::Class(..)) {
                    self.err(e.span, "class logit intercepts belong in %OVERALL%");
                    return false;
                }
                pending.push((Target::ClassIntercept { cv, class: k }, e));
            }
            Ref::ClassVar(cv) => {
                if st.block != Block::Overall {
                    self.err(e.span, "class logit intercepts belong in %OVERALL%");
                    return false;
                }
                for k in 0..cvs[cv].classes.saturating_sub(1) {
                    pending.push((Target::ClassIntercept { cv, class: k }, e));
                }
            }
        }
        true
    }

    /// Reports `u#k` for a variable `v` that is not nominal.
    fn not_nominal(&mut self, cx: &Ctx<'_>, span: Span, v: usize, k: usize) {
        let name = &cx.use_names[v];
        let help = if cx.categorical.contains(&v) {
            format!("{name} is categorical: its thresholds are {name}$1, ...")
        } else {
            format!("declare it in NOMINAL if it is unordered categorical, NOMINAL = {name};")
        };
        self.err_help(
            span,
            format!("'{name}#{k}' names a category of a nominal variable, and {name} is not one"),
            help,
        );
    }

    /// A name alone: a variance (or, on the between level, the variance of
    /// a random class logit intercept `c#1`). False after an error.
    fn bare_target<'e>(
        &mut self,
        cx: &Ctx<'_>,
        cvs: &[ClassVar],
        e: &'e Elem,
        r: Ref,
        pending: &mut Pending<'e>,
    ) -> bool {
        let between = cx.st.level == Some(Level::Between);
        let is_cat = |v: usize| cx.categorical.contains(&v);
        match r {
            Ref::Factor(f) => pending.push((Target::FactorVariance { f }, e)),
            Ref::Slope(_) => {
                let v = self.model_names.model_var(r).unwrap_or(usize::MAX);
                pending.push((Target::Variance { var: v }, e));
            }
            Ref::Class(cv, k) if between => {
                if k + 1 == cvs[cv].classes {
                    self.err(
                        e.span,
                        "the reference (last) class has no logit intercept to make random",
                    );
                    return false;
                }
                pending.push((Target::ClassVariance { cv, class: k }, e));
            }
            Ref::Var(v) if is_cat(v) && between => pending.push((Target::Variance { var: v }, e)),
            Ref::Var(v) if is_cat(v) => {
                self.err_help(
                    e.span,
                    format!(
                        "{} is categorical and has no variance parameter",
                        cx.use_names[v]
                    ),
                    "mean and variance of a categorical variable follow from its thresholds",
                );
                return false;
            }
            Ref::Var(v) => pending.push((Target::Variance { var: v }, e)),
            _ => {
                self.err_help(
                    e.span,
                    "only variances can be listed alone",
                    "means go in brackets ([y]), thresholds as [u$1], class logits as [c#1]",
                );
                return false;
            }
        }
        true
    }

    /// One pair of an `ON` statement: `l` (left, with its reference) on
    /// `e` (right). False after an error.
    fn on_target<'e>(
        &mut self,
        cx: &Ctx<'_>,
        cvs: &mut [ClassVar],
        (l, lr): (&Elem, Ref),
        (e, rr): (&'e Elem, Ref),
        pending: &mut Pending<'e>,
    ) -> bool {
        let st = cx.st;
        if let Some(t) = self.factor_regression((l, lr), (e, rr)) {
            return match t {
                Some(t) => {
                    pending.push((t, e));
                    true
                }
                None => false,
            };
        }
        // random slopes stand where variables do (`s ON w`, `y ON s`)
        let names = self.model_names;
        let as_var = |r: Ref| match names.model_var(r) {
            Some(v) => Ref::Var(v),
            None => r,
        };
        let (lr, rr) = (as_var(lr), as_var(rr));
        match (lr, rr) {
            (Ref::Var(y), Ref::Var(x)) => {
                if x == y {
                    self.err(e.span, format!("{} ON itself", cx.use_names[y]));
                    return false;
                }
                pending.push((
                    Target::Slope {
                        var: y,
                        covariate: x,
                        category: None,
                    },
                    e,
                ));
            }
            (Ref::Category(y, k), Ref::Var(x)) => {
                if !cx.nominal.contains(&y) {
                    self.not_nominal(cx, l.span, y, k);
                    return false;
                }
                pending.push((
                    Target::Slope {
                        var: y,
                        covariate: x,
                        category: Some(k),
                    },
                    e,
                ));
            }
            (Ref::ClassVar(cv) | Ref::Class(cv, _), Ref::Var(x)) => {
                let class = match lr {
                    Ref::Class(_, k) => Some(k),
                    _ => None,
                };
                if class.is_some_and(|k| k + 1 == cvs[cv].classes) {
                    self.err(l.span, "the reference (last) class has no logit to regress");
                    return false;
                }
                if st.block != Block::Overall {
                    self.err(
                        l.span,
                        "class logit slopes that vary across classes of another class variable are not supported yet",
                    );
                    return false;
                }
                if !cvs[cv].covariates.contains(&x) {
                    cvs[cv].covariates.push(x);
                }
                // `c ON x` is every class's slope; `c#1 ON x` only
                // class 1's (the others stay fixed at 0)
                let ks: Vec<usize> =
                    class.map_or_else(|| (0..cvs[cv].classes - 1).collect(), |k| vec![k]);
                for k in ks {
                    pending.push((
                        Target::ClassSlope {
                            cv,
                            class: Some(k),
                            covariate: x,
                        },
                        e,
                    ));
                }
            }
            (Ref::ClassVar(_) | Ref::Class(..), Ref::ClassVar(_) | Ref::Class(..)) => {
                return self.class_on_class(st, cvs, (l, lr), (e, rr), pending);
            }
            (Ref::Var(y), Ref::Class(cv, k))
                if st.level == Some(Level::Between)
                    && !cvs[cv].between
                    && k + 1 < cvs[cv].classes =>
            {
                // a random effect on a random class logit intercept
                pending.push((
                    Target::OnClassIntercept {
                        var: y,
                        cv,
                        class: k,
                    },
                    e,
                ));
            }
            (Ref::Var(y), Ref::ClassVar(_) | Ref::Class(..)) => {
                self.err_help(
                    e.span,
                    format!("{} ON a class variable", cx.use_names[y]),
                    "class effects on a variable are its class-specific means or thresholds",
                );
                return false;
            }
            (Ref::Category(..), _) | (_, Ref::Category(..)) => {
                self.err_help(
                    l.span.to(e.span),
                    "a category cannot be regressed on this or be a covariate",
                    "regress a category of a nominal variable on observed covariates: u#1 ON x",
                );
                return false;
            }
            (Ref::Threshold(..), _) | (_, Ref::Threshold(..)) => {
                self.err(
                    l.span.to(e.span),
                    "thresholds cannot be regressed; regress the variable",
                );
                return false;
            }
            // (factors are taken by `factor_regression`, slopes are
            // variables here)
            (Ref::Factor(_) | Ref::Slope(_), _) | (_, Ref::Factor(_) | Ref::Slope(_)) => {
                self.err(l.span.to(e.span), "this regression is not supported");
                return false;
            }
        }
        true
    }

    /// `c2 ON c1`, `c2#1 ON c1#1`: a class variable on an earlier one.
    /// False after an error.
    fn class_on_class<'e>(
        &mut self,
        st: &ModelStmt,
        cvs: &mut [ClassVar],
        (l, lr): (&Elem, Ref),
        (e, rr): (&'e Elem, Ref),
        pending: &mut Pending<'e>,
    ) -> bool {
        let (cv, class) = match lr {
            Ref::Class(cv, k) => (cv, Some(k)),
            Ref::ClassVar(cv) => (cv, None),
            _ => return true,
        };
        let (p, parent_class) = match rr {
            Ref::Class(p, k) => (p, Some(k)),
            Ref::ClassVar(p) => (p, None),
            _ => return true,
        };
        if p >= cv {
            self.err_help(
                l.span.to(e.span),
                format!(
                    "{} ON {}: a class variable can only be regressed on class variables declared before it in CLASSES",
                    cvs[cv].name, cvs[p].name
                ),
                "list the class variables in CLASSES in time order (c1 before c2)",
            );
            return false;
        }
        if class.is_some_and(|k| k + 1 == cvs[cv].classes)
            || parent_class.is_some_and(|k| k + 1 == cvs[p].classes)
        {
            self.err(
                l.span.to(e.span),
                "the last class is the reference: its effects are 0",
            );
            return false;
        }
        if st.block != Block::Overall {
            self.err(l.span, "class-on-class regressions belong in %OVERALL%");
            return false;
        }
        if !cvs[cv].parents.contains(&p) {
            cvs[cv].parents.push(p);
            cvs[cv].parents.sort_unstable();
        }
        let ks: Vec<usize> = class.map_or_else(|| (0..cvs[cv].classes - 1).collect(), |k| vec![k]);
        let js: Vec<usize> =
            parent_class.map_or_else(|| (0..cvs[p].classes - 1).collect(), |j| vec![j]);
        for &k in &ks {
            for &j in &js {
                pending.push((
                    Target::ClassOnClass {
                        cv,
                        class: Some(k),
                        parent: p,
                        parent_class: Some(j),
                    },
                    e,
                ));
            }
        }
        true
    }

    /// Gives each pending target its label (each label group's labels go to
    /// the targets it covers, in order) and adds the mentions to `out`.
    fn labelled_mentions(&mut self, st: &ModelStmt, pending: Pending<'_>, out: &mut Vec<Mention>) {
        let mut by_group: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, (_, e)) in pending.iter().enumerate() {
            if let Some(g) = e.label_group {
                by_group.entry(g).or_default().push(i);
            }
        }
        let mut labels_of: Vec<Option<String>> = vec![None; pending.len()];
        for (g, idxs) in by_group {
            let lg = &st.labels[g];
            if lg.labels.len() == 1 {
                for i in idxs {
                    labels_of[i] = Some(lg.labels[0].clone());
                }
            } else if lg.labels.len() == idxs.len() {
                for (i, l) in idxs.into_iter().zip(&lg.labels) {
                    labels_of[i] = Some(l.clone());
                }
            } else {
                self.err(
                    lg.span,
                    format!(
                        "{} labels for {} parameter{}; give one label, or one per parameter",
                        lg.labels.len(),
                        idxs.len(),
                        if idxs.len() == 1 { "" } else { "s" }
                    ),
                );
                return;
            }
        }
        for ((target, e), label) in pending.into_iter().zip(labels_of) {
            out.push(Mention {
                target,
                block: st.block,
                level: st.level,
                fixed: e.fixed,
                start: e.start,
                label,
                span: e.span,
            });
        }
    }
}
