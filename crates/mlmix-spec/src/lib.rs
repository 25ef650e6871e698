//! The input language of mlmix and the checked model it produces.
//!
//! This crate owns everything about input files: the Mplus-style syntax
//! ([`syntax`]), reading data files ([`data`]), and checking a model against
//! its data ([`build`]) into the one [`Model`] type the engine accepts. Nothing
//! below this crate reads files or knows the input language. It depends on no
//! other mlmix crate.
//!
//! Errors carry the file, line and column and render with the source line and
//! a caret ([`Diagnostic`]); the parser reports every problem it finds.

// Diagnostics are returned by value on the (cold) error path; boxing them
// would only add noise to every signature.
#![allow(clippy::result_large_err)]

pub mod between;
pub mod build;
pub mod data;
pub mod diag;
pub mod model;
pub mod montecarlo;
pub mod source;
pub mod syntax;

pub use between::{IssueAt, RandomIssue};
pub use build::{Dataset, Excluded, ExclusionReason, Loaded, load, load_source};
pub use diag::{Diagnostic, Diagnostics, Severity, SpecError};
pub use model::*;
pub use source::{Source, Span};
