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
use super::grammar::{Block, Elem, ModelStmt, Ref};
use super::statements::{Mention, Stated, Target};
use crate::model::*;
use crate::source::Span;
use crate::syntax::{Section, TokKind};

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
                let Some(by) = t.iter().position(|x| x.is_word("BY")) else {
                    continue;
                };
                if by != 1 || t[0].kind != TokKind::Word {
                    if by > 1 {
                        self.err_help(
                            t[0].span.to(t[by - 1].span),
                            "one factor before BY",
                            "write one statement per factor, e.g. f1 BY u1-u5; f2 BY u6-u10;",
                        );
                    }
                    continue;
                }
                let n = &t[0].text;
                if taken
                    .iter()
                    .any(|list| list.iter().any(|u| u.eq_ignore_ascii_case(n)))
                {
                    self.err_help(
                        t[0].span,
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
        out
    }

    /// One pair of a BY statement: factor `fe` measured by `ue`. `first`
    /// is where MODEL's names of factors begin. False after an error.
    pub(super) fn by_target<'e>(
        &mut self,
        (st, use_names, first): (&ModelStmt, &[String], usize),
        (fe, fr): (&Elem, Ref),
        (ue, ur): (&'e Elem, Ref),
        pending: &mut Pending<'e>,
    ) -> bool {
        let Ref::Var(f) = fr else {
            self.err(fe.span, "BY needs a factor on its left");
            return false;
        };
        if f < first {
            self.err_help(
                fe.span,
                format!("{} is an observed variable, not a factor", use_names[f]),
                "a factor is a new name, e.g. f BY u1-u5;",
            );
            return false;
        }
        match ur {
            Ref::Var(u) if u < first && u < use_names.len() => {
                let _ = st;
                pending.push((
                    Target::Loading {
                        factor: f - first,
                        var: u,
                    },
                    ue,
                ));
                true
            }
            Ref::Var(u) if u >= first => {
                self.err(
                    ue.span,
                    format!(
                        "{} is a factor: second-order factors are not supported yet",
                        use_names[u]
                    ),
                );
                false
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

    /// The latent variables of a single-level factor model: the factors
    /// (in declaration order), then an intercept for each indicator; the
    /// mentions of loadings rewritten to them. Reports a factor without
    /// indicators and factor models with several class variables.
    pub(super) fn factor_latents(&mut self, stated: &mut Stated, d: &Decls, file_span: Span) {
        let nf = d.factor_names.len();
        if nf == 0 {
            return;
        }
        for (name, _) in &d.factor_names {
            stated.random.push(RandomEffect {
                name: name.clone(),
                kind: RandomKind::Factor,
            });
        }
        let mut measured = vec![false; nf];
        for m in &mut stated.mentions {
            if let Target::Loading { factor, var } = m.target {
                measured[factor] = true;
                let kind = RandomKind::Intercept { var };
                if !stated.random.iter().any(|r| r.kind == kind) {
                    stated.random.push(RandomEffect {
                        name: d.use_names[var].clone(),
                        kind,
                    });
                }
            }
        }
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
        match d.class_vars.len() {
            0 => {}
            1 => stated.cov_class_var = Some(0),
            _ => self.err_help(
                file_span,
                "factors with several class variables are not supported yet",
                "a factor mixture model has one class variable",
            ),
        }
    }

    /// A mention of a factor in an item list (`[f]`, `f`) or a WITH
    /// statement, as its target; `None` when the reference is no factor.
    pub(super) fn factor_item(first: usize, r: Ref, bracketed: bool) -> Option<Target> {
        match r {
            Ref::Var(f) if f >= first && bracketed => Some(Target::FactorMean { re: f - first }),
            Ref::Var(f) if f >= first => Some(Target::RandomVariance { re: f - first }),
            _ => None,
        }
    }
}

/// The loadings a factor's first BY statement in %OVERALL% fixes at 1 by
/// default: its first indicator, unless written with `*` (or `@`).
pub(super) fn first_loadings(mentions: &[Mention]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for m in mentions {
        if let Target::Loading { factor, var } = m.target
            && m.block == Block::Overall
            && !out.iter().any(|x| x.0 == factor)
        {
            out.push((factor, var));
        }
    }
    out
}
