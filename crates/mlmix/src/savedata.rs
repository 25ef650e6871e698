//! SAVEDATA: posterior class probabilities and the most likely class of
//! every analysed row, and its factor scores, in free format, as Mplus
//! writes them: the analysis variables (with their values in the data), the
//! id variable, then with FSCORES each factor's posterior mean and standard
//! deviation (`F`, `F_SE`), then with CPROBABILITIES for each class variable
//! its posterior probabilities (CPROB) and most likely class.

use std::io::Write;

use mlmix_spec::{Dataset, Model, Role, Scale};

use crate::results::Fit;

/// The names of the saved columns, in order.
pub fn columns(model: &Model) -> Vec<String> {
    let mut c: Vec<String> = model
        .variables
        .iter()
        .map(|v| v.name.to_ascii_uppercase())
        .collect();
    if let Some(id) = &model.id_variable {
        c.push(id.to_ascii_uppercase());
    }
    if saves_fscores(model) {
        for a in crate::factors::factors(model) {
            let f = model.random_name(a);
            c.push(f.clone());
            c.push(format!("{f}_SE"));
        }
    }
    if !saves_cprobabilities(model) {
        return c;
    }
    let multi = model.class_vars.len() > 1;
    for cv in &model.class_vars {
        for k in 1..=cv.classes {
            if multi {
                c.push(format!("CPROB_{}_{}", cv.name.to_ascii_uppercase(), k));
            } else {
                c.push(format!("CPROB{k}"));
            }
        }
    }
    for cv in &model.class_vars {
        c.push(cv.name.to_ascii_uppercase());
    }
    c
}

/// Whether the class probabilities are saved: SAVE = CPROBABILITIES, or
/// no SAVEDATA command (a caller writing the file on its own).
fn saves_cprobabilities(model: &Model) -> bool {
    model.savedata.as_ref().is_none_or(|s| s.cprobabilities)
}

/// Whether the factor scores are saved (SAVE = FSCORES in a model with
/// factors).
fn saves_fscores(model: &Model) -> bool {
    model.savedata.as_ref().is_some_and(|s| s.fscores)
}

fn fmt(x: f64) -> String {
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Writes the saved data to any writer.
pub fn write(model: &Model, data: &Dataset, fit: &Fit, mut w: impl Write) -> std::io::Result<()> {
    let missflag = model
        .savedata
        .as_ref()
        .map_or_else(|| "*".to_string(), |s| s.missflag.clone());
    let fscores = saves_fscores(model);
    let cprob = saves_cprobabilities(model);
    let n_factors = crate::factors::factors(model).len();
    let mut line = String::new();
    for r in 0..data.n_rows() {
        line.clear();
        let mut fields: Vec<String> = Vec::new();
        for (v, var) in model.variables.iter().enumerate() {
            let x = data.columns[v][r];
            if x.is_nan() {
                fields.push(missflag.clone());
                continue;
            }
            let value = match &var.role {
                Role::Dependent(d) => match &d.scale {
                    Scale::Categorical { categories } => categories[x as usize],
                    Scale::Continuous => x,
                },
                Role::Covariate => x,
            };
            fields.push(fmt(value));
        }
        if let Some(ids) = &data.ids {
            fields.push(ids[r].clone());
        }
        if fscores {
            let scores = fit.factor_scores.get(r);
            for f in 0..n_factors {
                match scores.and_then(|s| s.get(f)) {
                    Some(&[m, sd]) if m.is_finite() && sd.is_finite() => {
                        fields.push(format!("{m:.6}"));
                        fields.push(format!("{sd:.6}"));
                    }
                    _ => {
                        fields.push(missflag.clone());
                        fields.push(missflag.clone());
                    }
                }
            }
        }
        if cprob {
            for marg in &fit.class_marginals[r] {
                fields.extend(marg.iter().map(|p| format!("{p:.6}")));
            }
            fields.extend(fit.most_likely[r].iter().map(|b| (b + 1).to_string()));
        }
        writeln!(w, "{}", fields.join(" "))?;
    }
    Ok(())
}
