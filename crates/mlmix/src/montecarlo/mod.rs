//! Monte Carlo studies: generate data from the population model, fit the
//! analysis model to every replication, summarise.
//!
//! A study ([`mlmix_spec::montecarlo::Study`]) is run replication by
//! replication: replication `r` draws its data from its own random stream
//! ([`generate::replication_seed`]), writes them as the text a data file
//! would hold ([`data_text`]), checks the analysis model on them and fits it
//! from the population values (Mplus's default: no random starts). Each
//! replication's outcome depends on the study and `r` alone, so replications
//! run in parallel, in any subset ([`run`] over a range: a shard), on any
//! number of threads or machines, and give the same results; the summary
//! ([`crate::mc_summary`]) adds them up in replication order.
//!
//! An external study (DATA: TYPE = MONTECARLO, Mplus's external Monte
//! Carlo) reads replication `r`'s data from the `r`-th data set of its list
//! instead, through the ordinary input (DATA WIDETOLONG and DEFINE too), and
//! is otherwise the same: MODEL's values are the population values and the
//! starting values.

pub mod generate;

use std::ops::RangeInclusive;
use std::path::PathBuf;

use mlmix_spec::Loaded;
use mlmix_spec::montecarlo::Study;
use rayon::prelude::*;

use crate::fit::{FitOptions, parameter_identity};
use crate::mc_summary::{Outcome, ParamKey, Replication, StudyKey};
pub use generate::{GenerateError, Generated, generate, population_phi, replication_seed};

/// The generated data as the text of a free-format data file: one row per
/// line, the variables in NAMES order, then the cluster number of two-level
/// data; categorical variables as their category (0 the lowest), missing
/// values as `*`; numbers written so that they read back exactly.
pub fn data_text(study: &Study, g: &Generated) -> String {
    let model = &study.population.model;
    let cols: Vec<Option<usize>> = study
        .spec
        .names
        .iter()
        .map(|n| {
            model
                .variables
                .iter()
                .position(|v| v.name.eq_ignore_ascii_case(n))
        })
        .collect();
    let categorical: Vec<bool> = model
        .variables
        .iter()
        .map(|v| {
            matches!(&v.role, mlmix_spec::Role::Dependent(d)
                if matches!(d.scale, mlmix_spec::Scale::Categorical { .. }))
        })
        .collect();
    let n = study.spec.observations;
    let mut out = String::with_capacity(n * (cols.len() + 1) * 8);
    for r in 0..n {
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            match c.map(|c| (g.columns[c][r], categorical[c])) {
                Some((x, _)) if x.is_nan() => out.push('*'),
                Some((x, true)) => out.push_str(&format!("{}", x as i64)),
                Some((x, false)) => out.push_str(&format!("{x:?}")),
                None => out.push('*'),
            }
        }
        if let Some(cl) = &g.clusters {
            out.push_str(&format!(" {}", cl[r] + 1));
        }
        out.push('\n');
    }
    out
}

/// The data text of replication `rep` (1-based).
pub fn simulate(study: &Study, rep: usize) -> Result<String, GenerateError> {
    if !study.external.is_empty() {
        return Err(GenerateError::External);
    }
    Ok(data_text(study, &generate(study, rep)?))
}

/// The analysis model checked on replication `rep`'s data (1-based): the
/// listed data set of an external study, else the generated one (saved
/// first, when SAVE says so).
fn analysis_of(study: &Study, rep: usize) -> Result<Loaded, String> {
    if !study.external.is_empty() {
        return study
            .external_analysis(rep)
            .map_err(|e| first_line(&e.to_string()));
    }
    let text = simulate(study, rep).map_err(|e| e.to_string())?;
    if let Some(path) = save_path(study, rep) {
        std::fs::write(&path, &text)
            .map_err(|e| format!("cannot write the data to '{}': {e}", path.display()))?;
    }
    let label = format!("replication {rep}");
    study
        .analysis(text, &label)
        .map_err(|e| first_line(&e.to_string()))
}

/// The population value of each analysis model parameter: the value MODEL
/// gives it (`*` or `@`), else the value of the parameter with the same
/// name, class and section in the population model, else 0.
pub fn population_values(study: &Study, analysis: &Loaded) -> Vec<f64> {
    let pop = &study.population.model;
    let pop_phi = population_phi(pop);
    let pop_ids: Vec<_> = (0..pop.parameters.len())
        .map(|i| parameter_identity(pop, i))
        .collect();
    let model = &analysis.model;
    (0..model.parameters.len())
        .map(|i| {
            let p = &model.parameters[i];
            match p.value {
                mlmix_spec::ParamValue::Fixed(v) => v,
                mlmix_spec::ParamValue::Free(_) => p.start.unwrap_or_else(|| {
                    let id = parameter_identity(model, i);
                    pop_ids
                        .iter()
                        .position(|q| *q == id)
                        .map_or(0.0, |j| pop_phi[j])
                }),
            }
        })
        .collect()
}

/// The population value of each analysis model parameter for coverage and
/// the summary: the value `MODEL COVERAGE:` gives it (`*` or `@`), when the
/// input has that section and it does; else [`population_values`]'s.
pub fn coverage_values(study: &Study, analysis: &Loaded) -> Vec<f64> {
    let mut values = population_values(study, analysis);
    let Some(cov) = &study.coverage else {
        return values;
    };
    let cm = &cov.model;
    let ids: Vec<_> = (0..cm.parameters.len())
        .map(|j| parameter_identity(cm, j))
        .collect();
    for (i, v) in values.iter_mut().enumerate() {
        let id = parameter_identity(&analysis.model, i);
        let stated = ids.iter().position(|x| *x == id).and_then(|j| {
            let p = &cm.parameters[j];
            match p.value {
                mlmix_spec::ParamValue::Fixed(x) => Some(x),
                mlmix_spec::ParamValue::Free(_) => p.start,
            }
        });
        if let Some(x) = stated {
            *v = x;
        }
    }
    values
}

/// The summary's rows: each analysis parameter with its population value.
pub fn parameter_keys(analysis: &Loaded, population: &[f64]) -> Vec<ParamKey> {
    let model = &analysis.model;
    (0..model.parameters.len())
        .map(|i| {
            let (section, name, class) = parameter_identity(model, i);
            ParamKey {
                section,
                name,
                class,
                population: population[i],
                fixed: matches!(model.parameters[i].value, mlmix_spec::ParamValue::Fixed(_)),
            }
        })
        .collect()
}

/// What identifies a study for merging shards: the input file's text,
/// NREPS and SEED.
pub fn study_key(study: &Study) -> StudyKey {
    // FNV-1a: stable across builds and platforms (a shard may be run by
    // another build of mlmix than the one that merges)
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let listed = study.external.iter().map(|p| p.display().to_string());
    for b in std::iter::once(study.source.text().to_string())
        .chain(listed)
        .flat_map(String::into_bytes)
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    StudyKey {
        input_file: study.source.path().display().to_string(),
        fingerprint: format!("{h:016x}"),
        requested: study.spec.replications,
        seed: study.spec.seed,
        title: study.population.model.title.clone(),
    }
}

/// The analysis model of the first replication, for its parameter rows
/// (the same in every replication that generates every category).
pub fn first_analysis(study: &Study) -> Result<Loaded, String> {
    if !study.external.is_empty() {
        return Ok(study.population.clone());
    }
    let text = simulate(study, 1).map_err(|e| e.to_string())?;
    study
        .analysis(text, "replication 1")
        .map_err(|e| e.to_string())
}

/// With SAVE's `*` (several replications saved), the list of the saved
/// files that an external study reads (DATA: TYPE = MONTECARLO): SAVE
/// with `*` replaced by `list`, one file name per line (Mplus's
/// convention); None when SAVE has no `*`.
pub fn save_list(study: &Study) -> Option<(PathBuf, String)> {
    let file = study.spec.save.as_ref()?.to_string_lossy().into_owned();
    if !file.contains('*') {
        return None;
    }
    let names: String = (1..=study.spec.replications)
        .filter_map(|rep| save_path(study, rep))
        .filter_map(|p| p.file_name().map(|f| format!("{}\n", f.to_string_lossy())))
        .collect();
    let dir = save_path_dir(study);
    Some((dir.join(file.replace('*', "list")), names))
}

fn save_path_dir(study: &Study) -> &std::path::Path {
    study
        .source
        .path()
        .parent()
        .unwrap_or(std::path::Path::new(""))
}

/// Where replication `rep`'s data are saved (SAVE, with REPSAVE's `*`
/// replaced by the replication number), if they are.
pub fn save_path(study: &Study, rep: usize) -> Option<PathBuf> {
    let spec = &study.spec;
    let file = spec.save.as_ref()?;
    if !spec.repsave.contains(&rep) {
        return None;
    }
    let name = file.to_string_lossy().replace('*', &rep.to_string());
    Some(save_path_dir(study).join(name))
}

/// Runs one replication: generate, save (SAVE), check, fit from the
/// population values. A replication that cannot be generated, checked or
/// fitted, or does not converge, is a failure with its reason.
pub fn run_replication(
    study: &Study,
    keys: &[ParamKey],
    rep: usize,
    options: &FitOptions,
) -> Replication {
    let outcome = match replicate(study, keys, rep, options) {
        Ok(o) => o,
        Err(reason) => Outcome::Failed { reason },
    };
    Replication {
        number: rep,
        outcome,
    }
}

fn replicate(
    study: &Study,
    keys: &[ParamKey],
    rep: usize,
    options: &FitOptions,
) -> Result<Outcome, String> {
    let mut loaded = analysis_of(study, rep)?;
    let population = population_values(study, &loaded);
    let mine = parameter_keys(&loaded, &population);
    let same = mine.len() == keys.len()
        && mine
            .iter()
            .zip(keys)
            .all(|(a, b)| (&a.section, &a.name, &a.class) == (&b.section, &b.name, &b.class));
    if !same {
        return Err(
            "its analysis model has other parameters than replication 1's (a category of a categorical variable was not generated?)"
                .into(),
        );
    }
    for (p, v) in loaded.model.parameters.iter_mut().zip(&population) {
        if p.start.is_none() {
            p.start = Some(*v);
        }
    }
    let fit = crate::fit(&loaded, options, &crate::Silent).map_err(|e| e.to_string())?;
    if !fit.converged {
        return Err(format!("did not converge ({:?})", fit.termination));
    }
    Ok(Outcome::Completed {
        loglikelihood: fit.loglikelihood,
        aic: fit.aic,
        bic: fit.bic,
        abic: fit.abic,
        estimates: fit.parameters.iter().map(|p| p.estimate).collect(),
        standard_errors: fit.parameters.iter().map(|p| p.se).collect(),
    })
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

/// Runs replications `reps` (1-based, inclusive) in parallel, calling
/// `done` after each; the results in replication order.
pub fn run(
    study: &Study,
    keys: &[ParamKey],
    reps: RangeInclusive<usize>,
    options: &FitOptions,
    done: &(dyn Fn(&Replication) + Sync),
) -> Vec<Replication> {
    run_until(study, keys, reps, options, done, &|| false)
}

/// [`run`], starting no replication once `stop` says so (a user's
/// interrupt): the replications begun are finished and returned, in
/// replication order; the others are left out (a summary counts them as
/// requested but not in its results).
pub fn run_until(
    study: &Study,
    keys: &[ParamKey],
    reps: RangeInclusive<usize>,
    options: &FitOptions,
    done: &(dyn Fn(&Replication) + Sync),
    stop: &(dyn Fn() -> bool + Sync),
) -> Vec<Replication> {
    reps.into_par_iter()
        .filter_map(|rep| {
            if stop() {
                return None;
            }
            let r = run_replication(study, keys, rep, options);
            done(&r);
            Some(r)
        })
        .collect()
}
