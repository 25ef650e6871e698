//! Estimation: EM, quasi-Newton, random starts and standard errors.
//!
//! This crate owns the optimisation of the log-likelihood that a backend
//! evaluates: the map from free parameters to the model's parameter vector
//! ([`problem`]), the optimiser of one start ([`estimate`]: EM steps, then
//! BFGS), the two-stage random starts ([`starts`]) and the standard errors
//! ([`se`]). It knows nothing of input files or of what a parameter means;
//! the caller gives bounds and starting points. Progress goes to an
//! [`Observer`]; nothing here prints.

mod coords;
pub mod estimate;
pub mod problem;
pub mod se;
pub mod starts;

pub use estimate::{Iterate, Observer, Settings, Silent, Solution, Stage, Termination};
pub use problem::{Bound, FreeEval, ParamMap, Problem};
pub use se::{Covariance, SeError, covariance, observed_information};
pub use starts::{
    StartPoint, StartRecord, StartsOutcome, replication_tolerance, run_starts, run_starts_staged,
};
