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
//! ## Quick start: Bars 4×4
//!
//! The paper's Bars 4×4 set-up ([`StepConfig::paper_bars`]: `pid`, SGD η = 0.02 decaying by
//! 0.96 per epoch, 3 images per update, sign projection at each epoch end; `V = 16`,
//! `H = 1000`, `K = 8`), trained for 100 epochs over the caller's own buffers, then checked:
//! each of the 14 images, the 4 test images never seen in training included, is completed
//! from its top row.
//!
//! ```
//! use core::num::NonZeroUsize;
//! use rapid_core::rand_core::SeedableRng;
//! use rapid_core::step::{Buffers, Engine, Shape, StepConfig};
//! use rapid_core::{kernels, ra, Dims, RaModel};
//! # if cfg!(miri) { return; } // 100 epochs at H = 1000 are too slow for the interpreter
//!
//! // Bars 4×4: one row of 4 spins repeated on all 4 rows. 10 training images: 5 rows and
//! // their negations; 4 test images: +-+- and +--+ and their negations.
//! let image = |row: &str, s: f32| -> Vec<f32> {
//!     row.chars().cycle().take(16).map(|c| if c == '+' { s } else { -s }).collect()
//! };
//! let set = |rows: &[&str]| -> Vec<f32> {
//!     rows.iter().flat_map(|r| [image(r, 1.0), image(r, -1.0)]).flatten().collect()
//! };
//! let (train, test) = (set(&["+---", "++--", "+++-", "+-++", "++-+"]), set(&["+-+-", "+--+"]));
//!
//! let dims = Dims::new(16, 1000, 8); // V visible units, H hidden units, K patterns
//! let mut engine = Engine::new(Shape::Ra(dims), StepConfig::paper_bars()).unwrap();
//! let mut rng = rand_pcg::Pcg64::seed_from_u64(0);
//! let mut xi = vec![0.0; engine.param_len()]; // the patterns Ξ: K rows of V + H entries
//! ra::random_patterns(&mut xi, &mut rng);
//! let mut grad = vec![0.0; engine.param_len()];
//! let mut opt = vec![0.0; engine.opt_len()]; // empty here: no momentum
//! let mut lane_grad = vec![0.0; engine.lane_grad_len()]; // empty with one lane
//! let mut negatives = vec![0.0; engine.negatives_len()];
//! let mut scratch = vec![0.0; engine.scratch_len(kernels::active())];
//! let mut bufs = Buffers {
//!     params: &mut xi, opt: &mut opt, grad: &mut grad, lane_grad: &mut lane_grad,
//!     negatives: &mut negatives, chains: &mut [], scratch: &mut scratch,
//! };
//! for _epoch in 0..100 {
//!     for batch in train.chunks(3 * 16) { // 3 images per update; the last batch has 1
//!         engine.step(&mut bufs, batch, NonZeroUsize::new(3), None, &mut rng);
//!     }
//!     engine.end_epoch(bufs.params); // sign projection, learning-rate decay
//! }
//!
//! // Keep the top row, set the other 12 spins to 0, one mean-field step v → h → v.
//! let model = RaModel::new(&xi[..], dims).unwrap();
//! let (mut m, mut u) = (vec![0.0; 8], vec![0.0; 8]); // overlaps Ξ_v v, projections Ξ_h h
//! let (mut phi, mut psi) = (vec![0.0; 1000], vec![0.0; 16]); // hidden and visible fields
//! for image in train.chunks(16).chain(test.chunks(16)) {
//!     let top_row: Vec<f32> = (0..16).map(|p| if p < 4 { image[p] } else { 0.0 }).collect();
//!     model.hidden_field(&top_row, &mut m, &mut phi); // φ = Wᵀv
//!     let h: Vec<f32> = phi.iter().map(|f| f.tanh()).collect(); // E[h | v]
//!     model.visible_field(&h, &mut u, &mut psi); // ψ = W h
//!     assert!(psi.iter().zip(image).all(|(f, x)| f * x > 0.0), "sign ψ is the image");
//! }
//! ```
//!
//! The batches here keep the training order; the `rapid` program (`rapid train --dataset
//! bars4`, in `rapid-harness`) also shuffles every epoch, measures the reconstruction by
//! sampling, and runs 300 epochs. The check above does not depend on luck: the run is fixed
//! by its seed, it gave the same result at the scalar, AVX2 and AVX-512 kernel levels (the
//! patterns are ±1 after each epoch), and every `ψ_i x_i` it tests was at least 25 on seeds
//! 0–9 (126 on seed 0), far from the sign change.
//!
//! ## Random numbers: which `rand_core`
//!
//! Randomness comes in through the traits of [`rand_core`] 0.9, which this crate re-exports
//! (`rapid_core::rand_core`) so a caller can name exactly the version it uses. A generator
//! must implement `rapid_core::rand_core::RngCore` (and `SeedableRng` for
//! [`step::Engine::step`], which seeds one generator per lane). `rand_pcg` 0.9, which the
//! examples use, does: it is built on `rand_core` 0.9. `rand_pcg` 0.10 implements the traits
//! of `rand_core` 0.10, a different crate to the compiler, so passing its generators fails
//! with E0277 (trait bound not satisfied). Use `rand_pcg = "0.9"` (or another generator crate
//! built on `rand_core` 0.9), or implement
//! `rapid_core::rand_core::RngCore` for your own generator.
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

/// The random-number traits this crate takes (`RngCore`, `SeedableRng`), version 0.9: see
/// [Random numbers](crate#random-numbers-which-rand_core) on the front page.
pub use rand_core;

pub use error::{ConfigError, FormatError, SpinError};
pub use ra::model::{Dims, RaModel};
pub use ra::pid::NegativePhase;
pub use step::{Engine, Method, Shape, StepConfig};
