//! mlmix: multilevel mixture models by maximum likelihood.
//!
//! The library API that the `mlmix` command, the tests and other Rust code
//! call: [`fit`] a checked model ([`spec::load`] reads one), write the
//! [`report`] and the [`json`] document, and save posterior class
//! probabilities ([`savedata`]). It ties the layers together (spec → kernels
//! → integrate → optim) and adds what a statistician reads: class counts,
//! entropy, information criteria, probability-scale results and transition
//! probabilities. It does not print; progress goes to an [`Observer`].

pub mod bench;
pub mod diverging;
pub mod factors;
pub mod fit;
mod gom_3pl;
pub mod lta;
pub mod mc_summary;
pub mod montecarlo;
pub mod nested_start;
pub mod plot;
pub mod profiles;
pub mod report;
pub mod results;
pub mod savedata;
pub mod starts;

pub use fit::{FitError, FitOptions, fit};
pub use mlmix_integrate::{BackendChoice, EVAL_KINDS};
pub use mlmix_optim::{Observer, Silent, Stage};
pub use mlmix_spec as spec;
pub use results::Fit;

/// The JSON document of a fit.
pub fn json(fit: &Fit) -> String {
    serde_json::to_string_pretty(fit).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
