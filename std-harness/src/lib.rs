//! # rapid-harness
//!
//! Everything around [`rapid_core`] that needs `std`: the paper's datasets ([`data`]), the
//! reconstruction metric ([`metrics`]), the training loop ([`run`]), model files written
//! atomically ([`modelio`]), seeding ([`seed`]), and the `rapid` command-line program.
//!
//! Data flows one way: this crate calls the core, never the reverse.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod data;
pub mod linalg;
pub mod metrics;
pub mod modelio;
pub mod npy;
pub mod plot;
pub mod run;
pub mod seed;
