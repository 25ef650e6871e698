//! End-to-end tests: reference fits, recovery of simulated truths, bad
//! inputs, the command line, and thread-count independence.

#![allow(clippy::unwrap_used)]

mod determinism;
mod estimation;
mod mixreg;
mod outputs;
mod recovery;
mod reference;
