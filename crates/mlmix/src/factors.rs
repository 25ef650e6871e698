//! What a fit adds for factors (`f BY u1-u10`): each row's factor scores
//! (the posterior mean and standard deviation of every factor, SAVE =
//! FSCORES), from the engine's posterior moments of z or, for factors
//! integrated in closed form, their normal posterior; and the IRT
//! parameterization of binary items.

use mlmix_integrate::Evaluation;
use mlmix_kernels::implied::ClosedForm;
use mlmix_kernels::plan::{NO_DIM, constant_random_effects};
use mlmix_kernels::{EngineData, InvalidParams, Plan};
use mlmix_spec::{Model, ParamKind, ParamValue, RandomKind, Scale};
use nalgebra::DMatrix;
use statrs::distribution::{ContinuousCDF, Normal};

use crate::results::{DerivedValue, IrtItem};

/// The factors of a model: their indices in [`Model::latent`]'s random
/// effects, in order (the order of the saved factor scores).
pub fn factors(model: &Model) -> Vec<usize> {
    model
        .latent
        .random
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kind == RandomKind::Factor)
        .map(|(a, _)| a)
        .collect()
}

/// The index in [`Model::parameters`] of the parameter `kind` in class
/// `class` of the class variable it varies over (or its only entry).
pub(crate) fn param_index(model: &Model, kind: ParamKind, class: Option<usize>) -> Option<usize> {
    let ps = &model.parameters;
    ps.iter()
        .position(|p| p.kind == kind && (p.class == class || p.class.is_none()))
        .or_else(|| ps.iter().position(|p| p.kind == kind))
}

/// How a factor's value given a row and its class is found.
enum Source {
    /// An integration dimension: f = mean + coef · z, z's posterior moments
    /// from the engine (`coef`: per class, the factor's row of
    /// M = (I - B)^-1 L over the dimensions).
    Integrated(Vec<Vec<f64>>),
    /// Variance fixed at 0: f = mean.
    Constant,
    /// Integrated in closed form (continuous indicators only): group `g`
    /// of [`ClosedForm::groups`], position `i` among its factors.
    Closed(usize, usize),
}

/// The parameters of a closed-form group in one class: the indicators'
/// intercepts, slopes, residual covariance matrix and loadings, the
/// factors' means, covariate effects and covariance matrix.
struct ClosedClass {
    nu: Vec<f64>,
    slopes: Vec<Vec<(usize, f64)>>,
    theta: DMatrix<f64>,
    lambda: DMatrix<f64>,
    alpha: Vec<f64>,
    gamma: Vec<Vec<(usize, f64)>>,
    psi: DMatrix<f64>,
}

/// Each analysed row's factor scores: per factor (in the order of
/// [`factors`]), the posterior mean and standard deviation given the row,
/// over its classes: E[f|y] = Σ_c P(c|y) E[f|y,c], the variance by the law
/// of total variance. `eval` is an evaluation at `phi` with the posteriors
/// and, when the plan has integration dimensions, the posterior moments of
/// z per unit (cluster × between-level class combination × side; see
/// [`mlmix_integrate::Adaptation`]): an integrated factor is f = α + γ'x +
/// M z given its class. A factor whose variance is fixed at 0 is α + γ'x;
/// one integrated in closed form (continuous indicators only) has the
/// normal posterior α + γ'x + ΨΛ'Σ⁻¹(y − μ), Ψ − ΨΛ'Σ⁻¹ΛΨ over the row's
/// observed indicators. Empty without factors, and for what the engine
/// does not fit (two-level factors, several class variables). A factor
/// regressed on other factors has the mean α + γ'x + Σ b (their means).
pub fn factor_scores(
    model: &Model,
    plan: &Plan,
    data: &EngineData,
    phi: &[f64],
    eval: &Evaluation,
) -> Result<Vec<Vec<[f64; 2]>>, InvalidParams> {
    let fs = factors(model);
    if fs.is_empty() || model.two_level.is_some() || model.class_vars.len() > 1 {
        return Ok(Vec::new());
    }
    let n_classes = model.class_vars.first().map_or(1, |c| c.classes);
    let class = |k: usize| (!model.class_vars.is_empty()).then_some(k);
    let value = |kind: ParamKind, k: usize| param_index(model, kind, class(k)).map(|i| phi[i]);
    let nre = model.latent.random.len();
    let closed = ClosedForm::of(model);
    let constant = constant_random_effects(model);
    // the integration dimensions, numbered as Plan::compile numbers them
    let mut dim_of = vec![None; nre];
    let mut dims = 0;
    for a in (0..nre).filter(|&a| !constant[a] && !closed.closed[a]) {
        dim_of[a] = Some(dims);
        dims += 1;
    }
    if dims != plan.dims {
        return Ok(Vec::new());
    }
    let ext = mlmix_kernels::prepare(plan, phi)?.ext;
    // per factor: how its value is found; its mean and covariate effects
    // per class
    let mut sources = Vec::with_capacity(fs.len());
    for &a in &fs {
        sources.push(if let Some(d) = dim_of[a] {
            // the blocks holding the dimension: one per covariance state,
            // in state order (one state without class-specific ones)
            let blocks: Vec<_> = plan.chol.iter().filter(|b| b.dims.contains(&d)).collect();
            if blocks.len() != 1 && blocks.len() != n_classes {
                return Ok(Vec::new());
            }
            let coef = (0..n_classes)
                .map(|k| {
                    let blk = blocks[k.min(blocks.len() - 1)];
                    let i = blk.dims.iter().position(|&x| x == d).unwrap_or(0);
                    let mut c = vec![0.0; dims];
                    for (j, &dj) in blk.dims.iter().enumerate().take(i + 1) {
                        if dj != NO_DIM {
                            c[dj] = ext[blk.m[i * (i + 1) / 2 + j] as usize];
                        }
                    }
                    c
                })
                .collect();
            Source::Integrated(coef)
        } else if closed.closed[a] {
            match closed
                .groups
                .iter()
                .enumerate()
                .find_map(|(g, (_, f))| f.iter().position(|&x| x == a).map(|i| (g, i)))
            {
                Some((g, i)) => Source::Closed(g, i),
                None => return Ok(Vec::new()),
            }
        } else {
            Source::Constant
        });
    }
    let means: Vec<Vec<FactorMean>> = fs
        .iter()
        .map(|&a| {
            (0..n_classes)
                .map(|k| factor_mean(model, a, k, &value))
                .collect()
        })
        .collect();
    let groups: Vec<Vec<ClosedClass>> = closed
        .groups
        .iter()
        .map(|(vars, gf)| {
            (0..n_classes)
                .map(|k| closed_class(model, vars, gf, k, &value))
                .collect()
        })
        .collect();
    let x = |w: usize, e: usize| data.columns[w][e];
    let mean_of = |fi: usize, k: usize, e: usize| {
        let (alpha, gamma) = &means[fi][k];
        alpha + gamma.iter().map(|&(w, g)| g * x(w, e)).sum::<f64>()
    };

    // per engine row and factor: Σ w μ, Σ w (v + μ²), Σ w
    let n_engine = data.n_rows();
    let nf = fs.len();
    let mut acc = vec![[0.0f64; 3]; n_engine * nf];
    // the closed-form posteriors of row e in class k, per group
    let closed_post = |e: usize, k: usize| -> Vec<Vec<(f64, f64)>> {
        closed
            .groups
            .iter()
            .zip(&groups)
            .map(|((vars, _), gc)| closed_posterior(vars, &gc[k], data, e))
            .collect()
    };
    let mut add =
        |e: usize, k: usize, w: f64, m: &[f64], second: &[f64], cp: &[Vec<(f64, f64)>]| {
            for (fi, src) in sources.iter().enumerate() {
                let (mu, var) = match src {
                    Source::Integrated(coef) => {
                        let c = &coef[k];
                        let mut mu = mean_of(fi, k, e);
                        let mut var = 0.0;
                        for r in 0..dims {
                            mu += c[r] * m[r];
                            for q in 0..dims {
                                var += c[r] * c[q] * (second[r * dims + q] - m[r] * m[q]);
                            }
                        }
                        (mu, var.max(0.0))
                    }
                    Source::Constant => (mean_of(fi, k, e), 0.0),
                    Source::Closed(g, i) => {
                        let (mu, var) = cp[*g][*i];
                        (mu + mean_of(fi, k, e), var)
                    }
                };
                let a = &mut acc[e * nf + fi];
                a[0] += w * mu;
                a[1] += w * (var + mu * mu);
                a[2] += w;
            }
        };
    let per = 1 + dims + dims * dims;
    if dims == 0 {
        // the classes' posterior probabilities weigh the rows' classes
        let nc = plan.n_combos;
        if eval.posteriors.len() < n_engine * nc || nc != n_classes {
            return Ok(Vec::new());
        }
        for e in 0..n_engine {
            for k in 0..nc {
                let cp = closed_post(e, k);
                add(e, k, eval.posteriors[e * nc + k], &[], &[], &cp);
            }
        }
    } else {
        // every row is a cluster; its units are its classes (and the sides
        // of step dimensions, which factors do not have)
        let n_units = eval.moments.len() / per;
        if n_engine == 0 || n_units == 0 || !n_units.is_multiple_of(n_engine) {
            return Ok(Vec::new());
        }
        let per_row = n_units / n_engine;
        let n_between = plan.n_between().max(1);
        if n_between != n_classes || !per_row.is_multiple_of(n_between) {
            return Ok(Vec::new());
        }
        let n_sides = per_row / n_between;
        for e in 0..n_engine {
            let cps: Vec<_> = (0..n_classes).map(|k| closed_post(e, k)).collect();
            for u in e * per_row..(e + 1) * per_row {
                let k = (u - e * per_row) / n_sides;
                let mo = &eval.moments[u * per..(u + 1) * per];
                if mo[0] > 0.0 {
                    add(e, k, mo[0], &mo[1..1 + dims], &mo[1 + dims..], &cps[k]);
                }
            }
        }
    }
    Ok(data
        .engine_row
        .iter()
        .map(|&e| {
            (0..nf)
                .map(|fi| {
                    let [s1, s2, w] = acc[e * nf + fi];
                    if w > 0.0 {
                        let mean = s1 / w;
                        [mean, (s2 / w - mean * mean).max(0.0).sqrt()]
                    } else {
                        [f64::NAN, f64::NAN]
                    }
                })
                .collect()
        })
        .collect())
}

/// A factor's mean in a class: its intercept α and its covariate effects
/// `(covariate, γ)` (`f ON x`), so that the mean of a row is α + γ'x.
type FactorMean = (f64, Vec<(usize, f64)>);

/// Factor `f`'s mean in class `k` (`value`: a parameter's estimate in a
/// class, if the model has it).
fn factor_mean(
    model: &Model,
    f: usize,
    k: usize,
    value: &dyn Fn(ParamKind, usize) -> Option<f64>,
) -> FactorMean {
    let mut alpha = value(ParamKind::FactorMean { re: f }, k).unwrap_or(0.0);
    let mut gamma: Vec<(usize, f64)> = model
        .random_covariate_effects(f)
        .into_iter()
        .filter_map(|(w, kind)| value(kind, k).map(|g| (w, g)))
        .collect();
    // a factor regressed on others (`f ON g`, `h BY f`) takes b times
    // their means (the regressions have no cycle: the plan compiled)
    for (re, on) in model.random_regressions() {
        let is_factor = |a: usize| model.random_effects()[a].kind == RandomKind::Factor;
        if re != f || !is_factor(on) {
            continue;
        }
        let Some(b) = value(model.regression_kind(re, on), k) else {
            continue;
        };
        let (a_on, g_on) = factor_mean(model, on, k, value);
        alpha += b * a_on;
        for (w, g) in g_on {
            match gamma.iter_mut().find(|x| x.0 == w) {
                Some(x) => x.1 += b * g,
                None => gamma.push((w, b * g)),
            }
        }
    }
    (alpha, gamma)
}

/// The parameters of closed-form group (`vars`, `gf`) in class `k`.
fn closed_class(
    model: &Model,
    vars: &[usize],
    gf: &[usize],
    k: usize,
    value: &dyn Fn(ParamKind, usize) -> Option<f64>,
) -> ClosedClass {
    let (p, q) = (vars.len(), gf.len());
    let mut theta = DMatrix::zeros(p, p);
    let mut lambda = DMatrix::zeros(p, q);
    let mut psi = DMatrix::zeros(q, q);
    for (i, &v) in vars.iter().enumerate() {
        theta[(i, i)] = value(ParamKind::Variance { var: v }, k).unwrap_or(0.0);
        for (j, &u) in vars.iter().enumerate().take(i) {
            let c = value(ParamKind::Covariance { a: u, b: v }, k).unwrap_or(0.0);
            theta[(i, j)] = c;
            theta[(j, i)] = c;
        }
        if let Some(ri) = model.intercept_of(v) {
            for (j, &f) in gf.iter().enumerate() {
                let kind = ParamKind::Loading { re: ri, factor: f };
                lambda[(i, j)] = value(kind, k).unwrap_or(0.0);
            }
        }
    }
    for (i, &f) in gf.iter().enumerate() {
        psi[(i, i)] = value(ParamKind::RandomVariance { re: f }, k).unwrap_or(0.0);
        for (j, &h) in gf.iter().enumerate().take(i) {
            let kind = ParamKind::RandomCovariance {
                a: f.min(h),
                b: f.max(h),
            };
            let c = value(kind, k).unwrap_or(0.0);
            psi[(i, j)] = c;
            psi[(j, i)] = c;
        }
    }
    let means: Vec<FactorMean> = gf
        .iter()
        .map(|&f| factor_mean(model, f, k, value))
        .collect();
    ClosedClass {
        nu: vars
            .iter()
            .map(|&v| value(ParamKind::Mean { var: v }, k).unwrap_or(0.0))
            .collect(),
        slopes: vars
            .iter()
            .map(|&v| {
                model
                    .dependent(v)
                    .map(|d| d.covariates.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|w| {
                        value(
                            ParamKind::Slope {
                                var: v,
                                covariate: w,
                            },
                            k,
                        )
                        .map(|b| (w, b))
                    })
                    .collect()
            })
            .collect(),
        theta,
        lambda,
        alpha: means.iter().map(|m| m.0).collect(),
        gamma: means.into_iter().map(|m| m.1).collect(),
        psi,
    }
}

/// The posterior of a closed-form group's factors given row `e` of the
/// data in one class, less their prior means (α + γ'x, which the caller
/// adds): per factor, ΨΛ'Σ⁻¹(y − μ) over the row's observed indicators
/// and the variance Ψ − ΨΛ'Σ⁻¹ΛΨ (the prior without observed indicators,
/// or when Σ is not positive definite).
fn closed_posterior(
    vars: &[usize],
    c: &ClosedClass,
    data: &EngineData,
    e: usize,
) -> Vec<(f64, f64)> {
    let q = c.psi.nrows();
    let prior: Vec<(f64, f64)> = (0..q).map(|i| (0.0, c.psi[(i, i)].max(0.0))).collect();
    let x = |w: usize| data.columns[w][e];
    let obs: Vec<usize> = (0..vars.len()).filter(|&i| !x(vars[i]).is_nan()).collect();
    if obs.is_empty() {
        return prior;
    }
    let n = obs.len();
    let lo = DMatrix::from_fn(n, q, |r, j| c.lambda[(obs[r], j)]);
    // y - μ, μ = ν + β'x + Λ(α + γ'x)
    let resid = nalgebra::DVector::from_fn(n, |r, _| {
        let i = obs[r];
        let mut mu = c.nu[i] + c.slopes[i].iter().map(|&(w, b)| b * x(w)).sum::<f64>();
        for j in 0..q {
            let m = c.alpha[j] + c.gamma[j].iter().map(|&(w, g)| g * x(w)).sum::<f64>();
            mu += c.lambda[(i, j)] * m;
        }
        x(vars[i]) - mu
    });
    let lpsi = &lo * &c.psi;
    let sigma = &lpsi * lo.transpose() + DMatrix::from_fn(n, n, |r, s| c.theta[(obs[r], obs[s])]);
    let Some(chol) = sigma.cholesky() else {
        return prior;
    };
    // K = ΨΛ'Σ⁻¹ (q x n)
    let k = chol.solve(&lpsi).transpose();
    let mean = &k * resid;
    let cov = &c.psi - &k * &lpsi;
    (0..q).map(|i| (mean[i], cov[(i, i)].max(0.0))).collect()
}

/// The IRT parameterization of every binary item (two categories, no
/// covariates) that loads on exactly one factor, class by class of the
/// class variable the factors vary over: discrimination a = lambda
/// sqrt(psi) and difficulty b = (tau - lambda alpha) / (lambda sqrt(psi)),
/// with delta-method standard errors from `cov` (the covariance of the
/// free parameters; those in `at_bound`, held at a bound, count as fixed).
/// Empty when no item qualifies. For a two-level model: the 3PL
/// parameters of the GoM-FMA of Section 9, if it is one
/// ([`crate::gom_3pl::gom_fma_3pl`]).
pub fn irt_parameterization(
    model: &Model,
    phi: &[f64],
    cov: Option<&DMatrix<f64>>,
    at_bound: &[usize],
) -> Vec<IrtItem> {
    if model.two_level.is_some() {
        return crate::gom_3pl::gom_fma_3pl(model, phi, cov, at_bound);
    }
    let cov_cv = model.latent.cov_class_var;
    let mut out = Vec::new();
    for &f in &factors(model) {
        for v in model.dependents() {
            let Some(dep) = model.dependent(v) else {
                continue;
            };
            match &dep.scale {
                Scale::Categorical { categories }
                    if categories.len() == 2 && dep.covariates.is_empty() => {}
                _ => continue,
            }
            let Some(ri) = model.intercept_of(v) else {
                continue;
            };
            let on: Vec<usize> = model
                .parameters
                .iter()
                .filter_map(|p| match p.kind {
                    ParamKind::Loading { re, factor } if re == ri => Some(factor),
                    _ => None,
                })
                .collect();
            if on.is_empty() || on.iter().any(|&x| x != f) {
                continue;
            }
            let cv = cov_cv.or(dep.class_var);
            let classes = cv.map_or(1, |m| model.class_vars[m].classes);
            for k in 0..classes {
                let class = cv.map(|_| k);
                let idx = |kind: ParamKind| param_index(model, kind, class);
                let (Some(il), Some(it), Some(ipsi)) = (
                    idx(ParamKind::Loading { re: ri, factor: f }),
                    idx(ParamKind::Threshold { var: v, index: 1 }),
                    idx(ParamKind::RandomVariance { re: f }),
                ) else {
                    continue;
                };
                let ia = idx(ParamKind::FactorMean { re: f });
                let (lambda, tau, psi) = (phi[il], phi[it], phi[ipsi]);
                let alpha = ia.map_or(0.0, |i| phi[i]);
                let sd = psi.sqrt();
                if psi <= 0.0 || lambda == 0.0 || !sd.is_finite() {
                    continue;
                }
                let a = lambda * sd;
                let b = (tau - lambda * alpha) / a;
                // d a / d (lambda, psi); d b / d (tau, lambda, alpha, psi)
                let grad_a = [(Some(il), sd), (Some(ipsi), lambda / (2.0 * sd))];
                let grad_b = [
                    (Some(it), 1.0 / a),
                    (Some(il), -tau / (lambda * a)),
                    (ia, -1.0 / sd),
                    (Some(ipsi), -b / (2.0 * psi)),
                ];
                let value = |x: f64, grad: &[(Option<usize>, f64)]| {
                    derived_value(model, cov, at_bound, x, grad)
                };
                out.push(IrtItem {
                    factor: model.random_name(f),
                    item: model.variables[v].name.to_ascii_uppercase(),
                    class: cv.map(|m| {
                        format!(
                            "{}#{}",
                            model.class_vars[m].name.to_ascii_uppercase(),
                            k + 1
                        )
                    }),
                    discrimination: value(a, &grad_a),
                    difficulty: value(b, &grad_b),
                    // g = expit(γ), dg/dγ = g (1 − g)
                    guessing: idx(ParamKind::Guessing { var: v }).map(|ig| {
                        let g = 1.0 / (1.0 + (-phi[ig]).exp());
                        value(g, &[(Some(ig), g * (1.0 - g))])
                    }),
                });
            }
        }
    }
    // class by class, then factor by factor, in the order of the items
    let class_rank = |c: &Option<String>| c.clone().unwrap_or_default();
    out.sort_by_key(|x| (class_rank(&x.class).len(), class_rank(&x.class)));
    out
}

/// A derived quantity `x`, a function of the model's parameters with
/// gradient `grad` (model parameter index, derivative), with its
/// delta-method standard error from `cov` (see [`delta_se`]).
pub(crate) fn derived_value(
    model: &Model,
    cov: Option<&DMatrix<f64>>,
    at_bound: &[usize],
    x: f64,
    grad: &[(Option<usize>, f64)],
) -> DerivedValue {
    let se = cov.and_then(|c| delta_se(model, c, at_bound, grad));
    let est_se = se.filter(|s| *s > 0.0).map(|s| x / s);
    DerivedValue {
        estimate: x,
        se,
        est_se,
        p_value: est_se.map(|z| 2.0 * (1.0 - Normal::standard().cdf(z.abs()))),
    }
}

/// The delta-method standard error of a function of the model's parameters
/// with gradient `grad` (model parameter index, derivative): fixed
/// parameters and those held at a bound contribute nothing, parameters
/// held equal add up.
fn delta_se(
    model: &Model,
    cov: &DMatrix<f64>,
    at_bound: &[usize],
    grad: &[(Option<usize>, f64)],
) -> Option<f64> {
    let mut g: Vec<(usize, f64)> = Vec::new();
    for &(i, d) in grad {
        let Some(i) = i else { continue };
        if let ParamValue::Free(f) = model.parameters[i].value
            && !at_bound.contains(&f)
        {
            match g.iter_mut().find(|(x, _)| *x == f) {
                Some(e) => e.1 += d,
                None => g.push((f, d)),
            }
        }
    }
    let mut var = 0.0;
    for &(a, ga) in &g {
        for &(b, gb) in &g {
            var += ga * gb * cov[(a, b)];
        }
    }
    (var.is_finite() && var >= 0.0).then(|| var.sqrt())
}
