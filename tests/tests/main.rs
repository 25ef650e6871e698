//! End-to-end tests: reference fits, recovery of simulated truths, bad
//! inputs, the command line, and thread-count independence.

// Simulations and reference EMs index parameter arrays explicitly.
#![allow(clippy::unwrap_used, clippy::needless_range_loop)]

mod adaptive_tails;
mod bad_input;
mod determinism;
mod diverging;
mod estimation;
mod factor_output;
mod factor_recovery;
mod factors;
mod fuzz;
mod glmm;
mod gom;
mod gom_tables;
mod gpu;
mod growth;
mod hostile;
mod lta;
mod mixreg;
mod montecarlo;
mod nominal;
mod outputs;
mod plots;
mod recovery;
mod reference;
mod semantics;
mod threepl;
mod transforms;
mod twolevel;
mod twolevel_regress;
mod within_factors;
