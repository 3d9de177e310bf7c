//! # rapid-core
//!
//! The math of RAPID — restricted Boltzmann machines with ±1 spins whose weights are built
//! from `K` patterns, `W = Ξ_vᵀ Ξ_h / √K` (regularized axons), trained by estimating the
//! negative phase from the patterns themselves (pattern-induced correlations).
//!
//! The crate is `#![no_std]` and never allocates: every buffer (patterns, spins, gradients,
//! scratch) belongs to the caller, and functions that need temporaries say how much through a
//! `*_scratch_len` function. Randomness comes in as `&mut impl rand_core::RngCore`.
//!
//! ## Layers
//! * [`spins`]: bit-packed ±1 vectors (`u64` words, LSB first, bit 1 = +1, zero padding).
//! * [`num`]: activations (`σ`, `tanh`, overflow-safe `log 2cosh`) and spin draws.
//! * [`model`]: the RA model: low-rank fields, energy, free energy, the formed `W`.
//! * [`sample`]: block Gibbs sampling.
//! * [`binary`]: integer Gibbs sampling for ±1 patterns: XOR + popcount overlaps, integer
//!   fields, threshold-table draws.
//! * [`train`]: PID gradients (`pid`, `pid-hebb`, `pid-gibbs:k`), SGD, projections, schedule.
//! * [`dense`]: dense ±1 RBMs (`W`, optional biases) over one parameter slice; packed Gibbs,
//!   CD-k and PCD-k gradients (the baselines).
//! * [`kernels`]: GEMM, popcount and sampling kernels with run-time ISA dispatch.
//! * [`optim`]: optimisers over flat parameter slices: SGD (re-exported) and Adam.
//! * [`format`]: the model file format, parsed from `&[u8]`.
//!
//! ## Errors and panics
//! Bad data or configuration returns an [`error`] enum; a caller bug (a buffer of the wrong
//! length) panics, as each function documents under `# Panics`.
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod binary;
pub mod dense;
pub mod error;
pub mod format;
pub mod kernels;
pub mod model;
pub mod num;
pub mod optim;
pub mod sample;
pub mod spins;
pub mod train;

#[cfg(test)]
mod test_util;

pub use error::{ConfigError, FormatError, SpinError};
pub use model::{Dims, RaModel};
pub use train::{NegativePhase, PidConfig, PidTrainer, Projection};
