//! Log-densities and their derivatives, and the plan a model compiles to.
//!
//! This crate owns the mathematics of one row: the link functions of
//! categorical outcomes ([`link`]), the layout of the data for the engine
//! ([`data`]), the compiled [`plan::Plan`] (terms, states, the flat parameter
//! vector `phi`), and the term kernels ([`eval`]) that compute log-densities,
//! weighted scores and expected information for a range of rows.
//!
//! It is pure: no threads, no I/O, and no allocation in the hot functions
//! (they take their scratch from the caller). Each hot function is meant to
//! have a WGSL twin with the same name and argument order in `shaders/`. It
//! depends only on `mlmix-spec` (for the checked model it compiles).

// Kernels index rows, states and local parameters explicitly, as their WGSL
// twins must; the chunk functions take the whole evaluation context.
#![allow(clippy::needless_range_loop, clippy::too_many_arguments)]

pub mod data;
pub mod eval;
pub mod fastmath;
pub mod implied;
pub mod link;
pub mod plan;
pub mod quadrature;
pub mod within;

pub use data::{EngineData, RowGroups};
pub use eval::{InfoAcc, InvalidParams, Prepared, Scratch, TermPrep, prepare};
pub use plan::{NONE, Plan, PlanError, Term, TermKind};

#[cfg(test)]
mod tests;
