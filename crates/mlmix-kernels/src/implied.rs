//! Factors with continuous indicators only, integrated out in closed form.
//!
//! In a single-level model, the indicators y of a set of factors that only
//! continuous variables measure are, given the classes, multivariate normal
//! with mean ν + Λα and covariance ΛΨΛ' + Θ (Λ the loadings, α and Ψ the
//! factors' means and covariance matrix, ν and Θ the indicators'
//! intercepts and residual (co)variances). The plan gives such a set one
//! normal block term over its indicators whose means and covariances are
//! *implied* entries of the extended parameter vector: sums of products of
//! phi entries, with their derivatives in the chain rule (`Prepared::jac`).
//! No integration dimension is spent on these factors, as in Mplus. The
//! within-level factors of a two-level model with continuous indicators
//! are integrated so too: given the between level, a row's indicators are
//! normal with covariance ΛΨΛ' + Θ (their means are the between level's;
//! a within-level factor has mean 0 and no covariates).

use mlmix_spec::{Model, ParamKind, RandomKind, Scale};

use crate::plan::NONE;

/// An implied entry of the extended vector: `Σ_t Π_{p ∈ t} phi[p]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Implied {
    /// The entry it fills.
    pub ext: u32,
    /// The products summed, each a list of phi indices (never [`NONE`]).
    pub terms: Vec<Vec<u32>>,
}

/// The factors the plan integrates in closed form, and their indicators.
#[derive(Debug, Clone, Default)]
pub struct ClosedForm {
    /// Per latent variable: a closed-form factor, or an indicator intercept
    /// of one (neither gets an integration dimension or a node column).
    pub closed: Vec<bool>,
    /// Groups of indicators (variable indices, ascending) measured by one
    /// connected set of closed-form factors, with those factors.
    pub groups: Vec<(Vec<usize>, Vec<usize>)>,
}

impl ClosedForm {
    /// The closed-form factor sets of `model`: the connected sets of
    /// factors and indicators (through loadings) whose indicators are all
    /// continuous; in a two-level model, of within-level factors (whose
    /// indicators are then, given the between level, normal with
    /// covariance ΛΨΛ' + Θ within each row).
    pub fn of(model: &Model) -> Self {
        let random = model.random_effects();
        let n = random.len();
        let mut out = ClosedForm {
            closed: vec![false; n],
            groups: Vec::new(),
        };
        let two_level = model.two_level.is_some();
        // union-find over latent variables joined by loadings and by
        // factor covariances
        let mut comp: Vec<usize> = (0..n).collect();
        fn root(comp: &mut [usize], mut a: usize) -> usize {
            while comp[a] != a {
                comp[a] = comp[comp[a]];
                a = comp[a];
            }
            a
        }
        let links = model.parameters.iter().filter_map(|p| match p.kind {
            ParamKind::Loading { re, factor } => Some((re, factor)),
            ParamKind::RandomRegression { re, on } => Some((re, on)),
            ParamKind::RandomCovariance { a, b } => Some((a, b)),
            _ => None,
        });
        for (a, b) in links {
            let (ra, rb) = (root(&mut comp, a), root(&mut comp, b));
            comp[ra.max(rb)] = ra.min(rb);
        }
        let mut roots: Vec<usize> = Vec::new();
        for a in 0..n {
            let r = root(&mut comp, a);
            if !roots.contains(&r) {
                roots.push(r);
            }
        }
        for r in roots {
            let members: Vec<usize> = (0..n).filter(|&a| root(&mut comp, a) == r).collect();
            let mut vars = Vec::new();
            let mut factors = Vec::new();
            let mut ok = true;
            // (between-level factors of a two-level model are numeric)
            ok &= !two_level || members.iter().all(|&a| random[a].within);
            for &a in &members {
                match random[a].kind {
                    RandomKind::Factor => factors.push(a),
                    RandomKind::Intercept { var } | RandomKind::WithinIntercept { var } => {
                        ok &= model
                            .dependent(var)
                            .is_some_and(|d| d.scale == Scale::Continuous);
                        vars.push(var);
                    }
                    _ => ok = false,
                }
            }
            // a factor regressed on another (B among the factors) is
            // integrated numerically: its implied moments are not sums of
            // products
            ok &= !model.parameters.iter().any(|p| match p.kind {
                ParamKind::RandomRegression { re, .. } | ParamKind::Loading { re, .. } => {
                    members.contains(&re) && random[re].kind == RandomKind::Factor
                }
                _ => false,
            });
            if ok && !factors.is_empty() && !vars.is_empty() {
                vars.sort_unstable();
                for &a in &members {
                    out.closed[a] = true;
                }
                out.groups.push((vars, factors));
            }
        }
        out
    }

    /// The closed-form group variable `v` is an indicator in, if any.
    pub fn group_of(&self, v: usize) -> Option<usize> {
        self.groups.iter().position(|(vars, _)| vars.contains(&v))
    }
}

/// A product of phi entries, or nothing when one of them is a structural
/// zero ([`NONE`]).
pub fn product(ids: &[u32]) -> Option<Vec<u32>> {
    ids.iter().all(|&i| i != NONE).then(|| ids.to_vec())
}

/// Fills the implied entries of `ext` from `phi` and appends their
/// derivatives to `jac` (a factor repeated in a product contributes once
/// per occurrence, which the chain rule adds up).
pub fn fill(implied: &[Implied], phi: &[f64], ext: &mut [f64], jac: &mut Vec<(u32, u32, f64)>) {
    for im in implied {
        let mut total = 0.0;
        for t in &im.terms {
            total += t.iter().map(|&p| phi[p as usize]).product::<f64>();
            for (j, &pj) in t.iter().enumerate() {
                let d: f64 = t
                    .iter()
                    .enumerate()
                    .filter(|&(k, _)| k != j)
                    .map(|(_, &p)| phi[p as usize])
                    .product();
                if d != 0.0 {
                    jac.push((im.ext, pj, d));
                }
            }
        }
        ext[im.ext as usize] = total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chain rule `fill` writes is the derivative of the entry: central
    /// differences of `λ1 ψ λ2 + θ` and of `λ² ψ` (a repeated factor).
    #[test]
    fn fill_derivatives_match_central_differences() {
        let implied = vec![
            Implied {
                ext: 4,
                terms: vec![vec![0, 1, 2], vec![3]],
            },
            Implied {
                ext: 5,
                terms: vec![vec![0, 1, 0]],
            },
        ];
        let phi = [0.7, 1.3, -0.4, 0.25];
        let value = |phi: &[f64], e: usize| {
            let mut ext = vec![0.0; 6];
            fill(&implied, phi, &mut ext, &mut Vec::new());
            ext[e]
        };
        let mut ext = vec![0.0; 6];
        let mut jac = Vec::new();
        fill(&implied, &phi, &mut ext, &mut jac);
        assert!((ext[4] - (0.7 * 1.3 * -0.4 + 0.25)).abs() < 1e-15);
        assert!((ext[5] - 0.49 * 1.3).abs() < 1e-15);
        for e in [4usize, 5] {
            for p in 0..4 {
                let analytic: f64 = jac
                    .iter()
                    .filter(|&&(x, q, _)| x as usize == e && q as usize == p)
                    .map(|x| x.2)
                    .sum();
                let h = 1e-6;
                let (mut up, mut down) = (phi, phi);
                up[p] += h;
                down[p] -= h;
                let numeric = (value(&up, e) - value(&down, e)) / (2.0 * h);
                assert!(
                    (analytic - numeric).abs() < 1e-8,
                    "d ext[{e}] / d phi[{p}]: {analytic} vs {numeric}"
                );
            }
        }
    }
}
