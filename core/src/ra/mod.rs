//! Regularized-axons (RA) models: `W = Ξ_vᵀΞ_h/√K`, never formed in the hot paths.
//!
//! * [`model`]: the sizes, the pattern view, low-rank fields (one row and blocks of rows),
//!   energy and free energy.
//! * [`gibbs`]: single-chain block Gibbs sampling on `f32` spins.
//! * [`pid`]: the PID phase term and the negative sets of `pid`, `pid-hebb`, `pid-gibbs:k`.
//!
//! The integer path for ±1 patterns (XOR + popcount overlaps, integer fields, threshold-table
//! draws) is [`crate::int::sample`].

pub mod gibbs;
pub mod model;
pub mod pid;
