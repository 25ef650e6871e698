//! The 3PL read off the constrained GoM-FMA of the paper's Section 9 (eq
//! 43-50): a two-level model of long item data in which each row's
//! within-level class variable has two classes, one that answers
//! correctly (the item logit's mean fixed at 15 or more, its loading fixed
//! at 0) and one that answers by a 2PL on a between-level factor (the item
//! logit a random slope of the item's dummy, loading on the factor in that
//! class only), with P(C = guessing) = expit(α + γ_q) on the item dummies
//! and no random class logit. Then P(u = 1 | θ) = g + (1 − g) Ψ(a(θ − b))
//! with g = expit(α + γ_q) (eq 48), a = λ_q √ψ (eq 49) and b = (t − μ_q) /
//! a (eq 50, τ_q2 = μ_q − t: the class's slope mean less the item's
//! threshold), which the report prints as the IRT parameterization.

use nalgebra::DMatrix;

use crate::factors::{derived_value, param_index};
use crate::results::IrtItem;
use crate::spec::{Model, ParamKind, ParamValue, RandomKind, Scale};

/// The smallest fixed logit of the answering class (P(u = 1) ≥ 1 − 5e-5):
/// the paper fixes it at 15.
const ANSWERS: f64 = 10.0;

/// The index of `kind` in exactly `class` (no class-invariant fallback).
fn exact(model: &Model, kind: ParamKind, class: usize) -> Option<usize> {
    model
        .parameters
        .iter()
        .position(|p| p.kind == kind && p.class == Some(class))
}

/// A parameter's fixed value, if it is fixed.
fn fixed(model: &Model, i: usize) -> Option<f64> {
    match model.parameters[i].value {
        ParamValue::Fixed(v) => Some(v),
        _ => None,
    }
}

/// The 3PL parameters (eq 48-50) of each item of `model` if it is the
/// GoM-FMA of Section 9 (see the module's doc), with delta-method standard
/// errors from `cov` (parameters in `at_bound` count as fixed); empty
/// otherwise. Items are named by their random slopes.
pub(crate) fn gom_fma_3pl(
    model: &Model,
    phi: &[f64],
    cov: Option<&DMatrix<f64>>,
    at_bound: &[usize],
) -> Vec<IrtItem> {
    let Some(cv) = model.latent.cov_class_var else {
        return Vec::new();
    };
    let random = model.random_effects();
    let random_logit = random
        .iter()
        .any(|r| matches!(r.kind, RandomKind::ClassIntercept { cv: c, .. } if c == cv));
    if !model.cov_class_is_within() || model.class_vars[cv].classes != 2 || random_logit {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (a, re) in random.iter().enumerate() {
        let RandomKind::Slope { var, covariate } = re.kind else {
            continue;
        };
        let Some(dep) = model.dependent(var) else {
            continue;
        };
        let binary =
            matches!(&dep.scale, Scale::Categorical { categories } if categories.len() == 2);
        if !binary || dep.class_var != Some(cv) {
            continue;
        }
        let Some(item) = item_3pl(model, phi, cov, at_bound, (a, var, covariate, cv)) else {
            continue;
        };
        out.push(item);
    }
    out
}

/// One item's 3PL parameters, if its slope `a` (of `var` on the dummy
/// `covariate`, class variable `cv`) has the Section 9 structure.
fn item_3pl(
    model: &Model,
    phi: &[f64],
    cov: Option<&DMatrix<f64>>,
    at_bound: &[usize],
    (a, var, covariate, cv): (usize, usize, usize, usize),
) -> Option<IrtItem> {
    let factor = model.parameters.iter().find_map(|p| match p.kind {
        ParamKind::Loading { re, factor } if re == a => Some(factor),
        _ => None,
    })?;
    let loading = |k: usize| exact(model, ParamKind::Loading { re: a, factor }, k);
    let mean = |k: usize| exact(model, ParamKind::Slope { var, covariate }, k);
    let threshold = |k: usize| {
        exact(model, ParamKind::Threshold { var, index: 1 }, k)
            .or_else(|| param_index(model, ParamKind::Threshold { var, index: 1 }, Some(k)))
    };
    // the answering class: loading fixed at 0, logit fixed at ANSWERS or more
    let answers = |k: usize| -> Option<bool> {
        let (il, im, it) = (loading(k)?, mean(k)?, threshold(k)?);
        Some(
            fixed(model, il) == Some(0.0)
                && matches!((fixed(model, im), fixed(model, it)), (Some(m), Some(t)) if m - t >= ANSWERS),
        )
    };
    let guess = (0..2).find(|&k| answers(k) == Some(true))?;
    let other = 1 - guess;
    if answers(other) != Some(false) {
        return None;
    }
    let (il, im, it) = (loading(other)?, mean(other)?, threshold(other)?);
    let ipsi = param_index(model, ParamKind::RandomVariance { re: factor }, Some(other))?;
    let ig = param_index(
        model,
        ParamKind::ClassSlope {
            cv,
            class: 0,
            covariate,
        },
        None,
    )?;
    let ia = param_index(model, ParamKind::ClassIntercept { cv, class: 0 }, None);
    let (lambda, mu, t, psi) = (phi[il], phi[im], phi[it], phi[ipsi]);
    let sd = psi.sqrt();
    if psi <= 0.0 || lambda == 0.0 || !sd.is_finite() {
        return None;
    }
    let disc = lambda * sd;
    let diff = (t - mu) / disc;
    // the guessing class is class 1 (logit α + γ) or the reference class
    let sign = if guess == 0 { 1.0 } else { -1.0 };
    let g = 1.0 / (1.0 + (-sign * (ia.map_or(0.0, |i| phi[i]) + phi[ig])).exp());
    let dg = sign * g * (1.0 - g);
    let value =
        |x: f64, grad: &[(Option<usize>, f64)]| derived_value(model, cov, at_bound, x, grad);
    Some(IrtItem {
        factor: model.random_name(factor),
        item: model.random_name(a),
        class: None,
        discrimination: value(disc, &[(Some(il), sd), (Some(ipsi), lambda / (2.0 * sd))]),
        difficulty: value(
            diff,
            &[
                (Some(it), 1.0 / disc),
                (Some(im), -1.0 / disc),
                (Some(il), -diff / lambda),
                (Some(ipsi), -diff / (2.0 * psi)),
            ],
        ),
        guessing: Some(value(g, &[(Some(ig), dg), (ia, dg)])),
    })
}
