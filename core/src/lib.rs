//! # rapid-core
//!
//! RAPID — restricted Boltzmann machines with ±1 spins whose weights are built from `K`
//! patterns, `W = Ξ_vᵀ Ξ_h / √K` (regularized axons), trained by estimating the negative phase
//! from the patterns themselves (pattern-induced correlations) — and the baselines it is
//! measured against (CD-k, PCD-k, exact gradient on dense models).
//!
//! The crate is `#![no_std]` and never allocates: every buffer (parameters, spins, gradients,
//! scratch) belongs to the caller, and each function or type that needs one says how long
//! through a `*_len` function. Randomness comes in as `&mut impl rand_core::RngCore`.
//!
//! **The training step lives here** ([`step::Engine`]): the `rapid` command-line program, the
//! benchmarks and firmware all run it. A caller with threads splits an update into lanes
//! through the same engine ([`step::Engine::begin`], [`step::Engine::lane`],
//! [`step::Engine::finish`]); the result never depends on the thread count.
//!
//! ## Where each equation lives
//!
//! | equation or method | module |
//! | --- | --- |
//! | ±1 spins as bits: LSB-first `u64` words, bit 1 = +1, zero padding | [`spins`] |
//! | `σ`, `tanh`, `log 2cosh x = |x| + log1p(e^{−2|x|})`, spin draws, `dot`, `axpy` | [`num`] |
//! | RA fields `m = Ξ_v v`, `φ = Ξ_hᵀm/√K`, `ψ = Ξ_vᵀ(Ξ_h h)/√K`; `E`, `F(v)` | [`ra::model`] |
//! | RA single-chain Gibbs `P(h_α=+1|v) = σ(2φ_α)` | [`ra::gibbs`] |
//! | PID phase `g_v = Σ u vᵀ/(|S|√K)`, `g_h = Σ m Tᵀ/(|S|√K)`; `pid`, `pid-hebb` (eq. 6), `pid-gibbs:k` | [`ra::pid`] |
//! | integer RA fields `m_k = V − 2·popcount(sᵏ ⊕ v)`, `f = √K·φ` on packed signs, threshold-table Gibbs draws | [`int::sample`] |
//! | integer PID: latent `θ` (Q2.5) + packed signs, `θ += round(η·D)`, clamped `tanh`/σ tables | [`int`] ([`int::step`], [`int::table`]) |
//! | dense fields `φ = Wᵀv + b`, `ψ = Wh + a`, packed `φ = 2Σ_{v_i=+1} W_i − colsum + b` | [`dense::model`] |
//! | dense single-chain Gibbs | [`dense::gibbs`] |
//! | dense phase `⟨v tanh φ⟩`, `⟨v⟩`, `⟨tanh φ⟩` per sample and packed | [`dense::phase`] |
//! | block fields of either model ([`blocks::BlockModel`]), block Gibbs chains, block phase, CD-k and PCD-k negative phases | [`blocks`] |
//! | SGD `Δ ← μΔ − ηλθ + ηg`, Adam, `sign`/`clamp` projections, `η ← max(γη, η_min)` | [`optim`] |
//! | one update `∇ = (|B|/d)g(B) − g(S⁻)` → optimiser → projection; lanes; epochs | [`step`] |
//! | GEMM `C += αAB`, `tanh`/`σ` maps, bulk Bernoulli draws, ISA dispatch | [`kernels`] |
//! | the model file format | [`format`] |
//!
//! No two modules import each other. From the top: `step` uses `blocks`, `ra`, `dense` and
//! `optim`; `ra` and `dense` implement `blocks::BlockModel` (and `dense::gibbs` reuses
//! `ra::gibbs`'s bulk-of-units draw); `blocks` uses only `kernels` and `spins`; `kernels` uses
//! `num` (scalars, `dot`, `axpy`, activations); `num`, `spins` and `error` are leaves.
//!
//! ## Errors and panics
//! Bad data or configuration returns an [`error`] enum; a caller bug (a buffer of the wrong
//! length) panics, as each function documents under `# Panics`.
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod blocks;
pub mod dense;
pub mod error;
pub mod format;
pub mod int;
pub mod kernels;
pub mod num;
pub mod optim;
pub mod ra;
pub mod spins;
pub mod step;

#[cfg(test)]
mod test_util;

pub use error::{ConfigError, FormatError, SpinError};
pub use ra::model::{Dims, RaModel};
pub use ra::pid::NegativePhase;
pub use step::{Engine, Method, Shape, StepConfig};
