//! Assembly of the [`Model`] (the seventh phase): the variables with their
//! roles and categories, categorical columns recoded to category indices,
//! and the options; the parameters are added by [`super::defaults`] and
//! [`super::equalities`].

use super::dataset::DataFile;
use super::declarations::Decls;
use super::options::Commands;
use super::roles::Roles;
use super::statements::Stated;
use super::{Builder, Dataset};
use crate::diag::Diagnostic;
use crate::model::*;

impl Builder<'_> {
    /// The model without its parameters; recodes the categorical columns of
    /// `dataset` to category indices.
    pub(super) fn assemble(
        &mut self,
        cmds: Commands<'_>,
        file: DataFile,
        d: Decls,
        stated: &Stated,
        roles: Roles,
        dataset: &mut Dataset,
    ) -> Option<Model> {
        let variables = self.variables(&d, &roles, dataset)?;
        recode_categories(&variables, dataset);
        let mut covariances = roles.covariances;
        covariances.iter_mut().for_each(|p| {
            if p.0 > p.1 {
                *p = (p.1, p.0)
            }
        });
        covariances.sort_unstable();
        covariances.dedup();
        let opts = cmds.opts;
        let base = self.base_dir();
        let names = &file.names;
        let model = Model {
            title: cmds.title,
            input_file: self.src.path().to_path_buf(),
            data: DataSpec {
                file: file.path,
                file_as_written: file.written,
                names: opts
                    .names
                    .as_ref()
                    .map(|v| v.iter().map(|x| x.0.clone()).collect()),
                missing: d.missing,
                listwise: opts.listwise,
            },
            variables,
            id_variable: d.id_col.map(|c| names[c.0].clone()),
            class_vars: d.class_vars,
            covariances,
            parameters: Vec::new(),
            free: Vec::new(),
            analysis: opts.analysis.clone(),
            output: opts.output.clone(),
            savedata: opts.save_file.as_ref().map(|(f, _)| SaveData {
                file: base.join(f),
                file_as_written: f.clone(),
                cprobabilities: opts.save_cprob,
                missflag: opts.missflag.clone().unwrap_or_else(|| "*".to_string()),
            }),
            two_level: self.twolevel.then(|| TwoLevel {
                cluster: d
                    .cluster_col
                    .map(|c| names[c.0].clone())
                    .unwrap_or_default(),
                random: stated.random.clone(),
                cov_class_var: stated.cov_class_var,
                integration: opts.integration,
            }),
        };
        if let Some((_, span)) = &opts.save_file {
            if !opts.save_cprob {
                self.warn(
                    *span,
                    "SAVEDATA: FILE is given without SAVE = CPROBABILITIES; nothing will be saved",
                );
            }
        } else if opts.save_cprob {
            self.diags.push(Diagnostic::warning_nowhere(
                "SAVE = CPROBABILITIES needs SAVEDATA: FILE = ...; nothing will be saved",
            ));
        }
        Some(model)
    }

    /// One variable per USEVARIABLES entry; a categorical dependent's
    /// categories are the values found in the data.
    fn variables(&mut self, d: &Decls, roles: &Roles, dataset: &Dataset) -> Option<Vec<Variable>> {
        let n_use = d.usev.len();
        let mut variables: Vec<Variable> = Vec::with_capacity(n_use);
        for v in 0..n_use {
            let role = if roles.is_dep[v] {
                let scale = if d.categorical.contains(&v) {
                    Scale::Categorical {
                        categories: self.categories_of(dataset, v, &d.use_names)?,
                    }
                } else {
                    Scale::Continuous
                };
                Role::Dependent(Dependent {
                    scale,
                    class_var: roles.dep_class[v],
                    covariates: roles.dep_covs[v].clone(),
                })
            } else {
                Role::Covariate
            };
            variables.push(Variable {
                name: d.use_names[v].clone(),
                role,
                between: d.between.contains(&v),
            });
        }
        Some(variables)
    }
}

/// Recodes categorical columns to category indices (0, 1, ...).
fn recode_categories(variables: &[Variable], dataset: &mut Dataset) {
    for (v, var) in variables.iter().enumerate() {
        if let Role::Dependent(Dependent {
            scale: Scale::Categorical { categories },
            ..
        }) = &var.role
        {
            for x in dataset.columns[v].iter_mut() {
                if !x.is_nan() {
                    *x = categories
                        .iter()
                        .position(|c| c == x)
                        .map_or(f64::NAN, |i| i as f64);
                }
            }
        }
    }
}
