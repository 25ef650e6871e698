//! Assembly of the [`Model`] (the seventh phase): the variables with their
//! roles and categories, categorical columns recoded to category indices,
//! and the options; the parameters are added by [`super::defaults`] and
//! [`super::equalities`].

use std::path::Path;

use super::dataset::DataFile;
use super::declarations::Decls;
use super::options::Commands;
use super::roles::Roles;
use super::statements::Stated;
use super::{Builder, Dataset};
use crate::diag::Diagnostic;
use crate::model::*;
use crate::source::{Span, file_kind};
use crate::syntax::Token;

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
        let cat_at = CategoricalAt {
            tokens: cmds.opts.categorical.unwrap_or_default(),
            nominal: cmds.opts.nominal.unwrap_or_default(),
            fallback: file.span,
            data_file: &file.written,
        };
        let variables = self.variables(&d, &roles, dataset, &cat_at)?;
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
        let has_factors = stated.random.iter().any(|r| r.kind == RandomKind::Factor);
        // factor scores: single-level models with factors
        let fscores = opts.save_fscores.is_some() && has_factors && !self.twolevel;
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
                fscores,
                missflag: opts.missflag.clone().unwrap_or_else(|| "*".to_string()),
            }),
            two_level: self.twolevel.then(|| TwoLevel {
                cluster: d
                    .cluster_col
                    .map(|c| names[c.0].clone())
                    .unwrap_or_default(),
            }),
            latent: Latent {
                random: stated.random.clone(),
                cov_class_var: stated.cov_class_var,
                integration: opts.integration,
            },
        };
        if let Some(span) = opts.save_fscores {
            if !has_factors {
                self.warn(
                    span,
                    "SAVE = FSCORES is ignored: the model has no factors (f BY ...), and factor scores are saved only for factors",
                );
            } else if self.twolevel {
                self.warn(
                    span,
                    "SAVE = FSCORES is not available for TYPE = TWOLEVEL models yet; it is ignored",
                );
            }
        }
        let save_fscores = fscores;
        if let Some((written, span)) = &opts.save_file {
            if let Some(s) = model.savedata.as_ref().filter(|s| s.writes_file()) {
                self.check_save_file(written, *span, &s.file, &model.data.file);
            }
            if !opts.save_cprob && !save_fscores {
                self.warn(
                    *span,
                    "SAVEDATA: FILE is given without SAVE = CPROBABILITIES or FSCORES; nothing will be saved",
                );
            }
        } else if opts.save_cprob || save_fscores {
            let words = match (opts.save_cprob, save_fscores) {
                (true, true) => "CPROBABILITIES FSCORES",
                (true, false) => "CPROBABILITIES",
                _ => "FSCORES",
            };
            self.diags.push(Diagnostic::warning_nowhere(format!(
                "SAVE = {words} needs SAVEDATA: FILE = ...; nothing will be saved"
            )));
        }
        Some(model)
    }

    /// Checks the SAVEDATA file before any fit, as the command checks it
    /// again before writing: it is not a folder, a FIFO or a socket (a
    /// device such as /dev/null is written in place), its folder exists,
    /// and it is neither the input file nor the data file.
    fn check_save_file(&mut self, written: &str, span: Span, path: &Path, data: &Path) {
        let why = match std::fs::metadata(path) {
            Ok(m) if m.is_file() => {
                let same = |other: &Path| matches!((path.canonicalize(), other.canonicalize()), (Ok(a), Ok(b)) if a == b);
                if same(self.src.path()) {
                    Some(
                        "it is the input file: writing it would destroy the input file".to_string(),
                    )
                } else if same(data) {
                    Some("it is the data file: writing it would destroy the data file".to_string())
                } else {
                    None
                }
            }
            Ok(m) if is_char_device(&m) => None,
            Ok(m) => Some(format!("it is {}", file_kind(&m.file_type()))),
            Err(_) => {
                let folder = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                match std::fs::metadata(folder) {
                    Ok(m) if m.is_dir() => None,
                    Ok(_) => Some(format!("'{}' is not a folder", folder.display())),
                    Err(_) => Some(format!("the folder '{}' does not exist", folder.display())),
                }
            }
        };
        if let Some(why) = why {
            self.err_help(
                span,
                format!("cannot write the SAVEDATA file '{written}': {why}"),
                "give the name of a file in an existing folder (FILE is relative to the folder of the input file)",
            );
        }
    }

    /// One variable per USEVARIABLES entry; a categorical dependent's
    /// categories are the values found in the data (a problem with them is
    /// reported at the CATEGORICAL statement, `cat_at`).
    fn variables(
        &mut self,
        d: &Decls,
        roles: &Roles,
        dataset: &Dataset,
        cat_at: &CategoricalAt<'_>,
    ) -> Option<Vec<Variable>> {
        let n_use = d.usev.len();
        let mut variables: Vec<Variable> = Vec::with_capacity(n_use);
        for v in 0..n_use {
            let role = if roles.is_dep[v] {
                let scale = if d.categorical.contains(&v) {
                    let span = cat_at.span_of(&d.use_names[v]);
                    let categories =
                        self.categories_of(dataset, v, &d.use_names, (span, cat_at.data_file))?;
                    if d.guessing.contains(&v) && categories.len() != 2 {
                        self.err_help(
                            span,
                            format!(
                                "{} has {} categories in the data: the 3PL is for binary items",
                                d.use_names[v],
                                categories.len()
                            ),
                            "declare it without (3pl)",
                        );
                        return None;
                    }
                    Scale::Categorical { categories }
                } else {
                    Scale::Continuous
                };
                Role::Dependent(Dependent {
                    scale,
                    class_var: roles.dep_class[v],
                    covariates: roles.dep_covs[v].clone(),
                    guessing: d.guessing.contains(&v),
                    nominal: d.nominal.contains(&v),
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

/// Where the categories of a CATEGORICAL (or NOMINAL) variable are
/// reported: its name in the CATEGORICAL or NOMINAL list, else the whole list (a range such as `u1-u4`),
/// else the data file's FILE statement.
struct CategoricalAt<'a> {
    /// The tokens of CATEGORICAL = ...
    tokens: &'a [Token],
    /// The tokens of NOMINAL = ...
    nominal: &'a [Token],
    /// The FILE statement, when CATEGORICAL has no tokens.
    fallback: Span,
    /// The data file as written in FILE.
    data_file: &'a str,
}

impl CategoricalAt<'_> {
    /// The span to report a problem with variable `name` at.
    fn span_of(&self, name: &str) -> Span {
        if let Some(t) = self
            .tokens
            .iter()
            .chain(self.nominal)
            .find(|t| t.text.eq_ignore_ascii_case(name))
        {
            return t.span;
        }
        match (self.tokens.first(), self.tokens.last()) {
            (Some(a), Some(b)) => a.span.to(b.span),
            _ => self.fallback,
        }
    }
}

/// Whether `meta` is a character device (`/dev/null`).
fn is_char_device(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        meta.file_type().is_char_device()
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
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
