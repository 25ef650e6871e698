//! Item profiles of a grade of membership model written long: for a binary
//! dependent measured by a class variable and regressed on item dummies
//! (each analysed row has exactly one of its covariates at 1, the others
//! at 0), the probability of its second category for each item and class,
//! P(u = 1 | class, item) = F(β_item − τ): the profile the paper's Figure
//! 4 plots. Items whose slope is random (the FMA-GoM) are left out: their
//! probability depends on the person's factor.

use mlmix_spec::{Dataset, Link, Model, ParamKind, RandomKind, Scale};
use serde::Serialize;

use crate::factors::param_index;

/// One item's probability in one class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemProfile {
    /// The dependent variable.
    pub variable: String,
    /// The item (its dummy).
    pub item: String,
    /// `C#1`, ...
    pub class: String,
    /// P(u = 1 | class, item).
    pub probability: f64,
}

/// Whether the columns `covs` are item dummies on the analysed rows where
/// `y` is observed: 0 or 1, exactly one at 1 per row.
fn dummies(data: &Dataset, y: usize, covs: &[usize]) -> bool {
    let n = data.columns[y].len();
    covs.len() >= 2
        && (0..n).filter(|&r| !data.columns[y][r].is_nan()).all(|r| {
            let mut ones = 0;
            for &c in covs {
                let v = data.columns[c][r];
                if v == 1.0 {
                    ones += 1;
                } else if v != 0.0 {
                    return false;
                }
            }
            ones == 1
        })
}

/// The item profiles of every qualifying dependent (see the module
/// documentation), class by class.
pub fn item_profiles(model: &Model, phi: &[f64], data: &Dataset) -> Vec<ItemProfile> {
    let link = model.analysis.link;
    let mut out = Vec::new();
    for v in model.dependents() {
        let Some(dep) = model.dependent(v) else {
            continue;
        };
        let binary =
            matches!(&dep.scale, Scale::Categorical { categories } if categories.len() == 2);
        let Some(cv) = dep.class_var else {
            continue;
        };
        let random_slope = model
            .random_effects()
            .iter()
            .any(|r| matches!(r.kind, RandomKind::Slope { var, .. } if var == v));
        if !binary || dep.guessing || random_slope || !dummies(data, v, &dep.covariates) {
            continue;
        }
        let c = &model.class_vars[cv];
        for k in 0..c.classes {
            let value = |kind: ParamKind| param_index(model, kind, Some(k)).map(|i| phi[i]);
            let Some(tau) = value(ParamKind::Threshold { var: v, index: 1 }) else {
                continue;
            };
            for &d in &dep.covariates {
                let Some(beta) = value(ParamKind::Slope {
                    var: v,
                    covariate: d,
                }) else {
                    continue;
                };
                out.push(ItemProfile {
                    variable: model.variables[v].name.to_ascii_uppercase(),
                    item: model.variables[d].name.to_ascii_uppercase(),
                    class: format!("{}#{}", c.name.to_ascii_uppercase(), k + 1),
                    probability: probability(link, beta - tau),
                });
            }
        }
    }
    out
}

/// F(t) for the model's link.
fn probability(link: Link, t: f64) -> f64 {
    mlmix_kernels::link::cdf(link, t)
}
