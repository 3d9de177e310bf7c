//! Integer PID: RAPID training with no floating point in the step, for ±1 patterns (the
//! `sign` projection), on bit-packed signs with popcount and "add or subtract by the bits"
//! kernels. It runs on microcontrollers without an FPU and is the popcount training path on
//! a PC (`rapid train --arith int`).
//!
//! # State: signs and a fixed-point latent
//! Each pattern entry has a latent `θ` (`i8`, Q2.5: `θ/32`, so `θ₀ = 32` stands for `1.0`,
//! range `±127/32 ≈ ±3.97`) that receives the updates, and its sign `s = sign(θ)` (`sign(0) =
//! +1`) bit-packed ([`sample::Signs`]) for the forward pass: the straight-through rule. At
//! each epoch end `θ ← sign(θ)·θ₀`, which is what the `sign` projection does to `f32`
//! patterns; for a small learning rate the run follows the `f32` method closely. Model state:
//! 1 byte + 1 bit per pattern entry (1.125 bytes; `f32` patterns take 4), plus `O((b+K)·K)`
//! scratch. There is no gradient buffer: the step streams over blocks of 64 hidden units and
//! then over patterns, updating each block of `θ` as soon as its gradient is complete.
//!
//! # The step, in integers
//! For the `b` rows of a batch (data, weight `+1/d` with `d` the configured batch) and the `K`
//! negative samples `S⁻` (`pid`: the visible signs `s_vᵏ`; `pid-gibbs:k`: `k` block Gibbs
//! steps from them, [`sample`]), with `t` in Q1.14 from the [`table`]:
//!
//! ```text
//! m_{s,k} = V − 2·popcount(s_vᵏ ⊕ v_s)                 overlaps (|m| ≤ V)
//! f_{s,α} = Σ_k sᵏ_α m_{s,k}                           √K·φ, sign-selected sums (|f| ≤ KV)
//! t_{s,α} = round(2¹⁴·tanh(f/√K))                      table lookup, clamped where it saturates
//! u_{s,k} = Σ_α sᵏ_α t_{s,α}                           |u| ≤ H·2¹⁴
//! D_v[k][i] = K·Σ_{s∈B} v_{s,i} u_{s,k} − d·Σ_{s∈S⁻} v_{s,i} u_{s,k}        (i64)
//! D_h[k][α] = K·Σ_{s∈B} m_{s,k} t_{s,α} − d·Σ_{s∈S⁻} m_{s,k} t_{s,α}        (i64)
//! θ ← clamp(θ + round(D·μ / 2^σ), −127, 127),   μ/2^σ ≈ η·θ₀ / (2³²·2¹⁴·d·K·√K)
//! ```
//!
//! `D/(d·K·√K·2¹⁴)` is the `f32` method's `∇ = g(B)·b/d − g(S⁻)` on the signs, so the step
//! is `θ/θ₀ += η∇` rounded to the Q2.5 grid (round half up). The learning rate is `η` in
//! Q32 (`u64`); `μ ∈ [2¹⁵, 2¹⁶)` and `σ` are recomputed in integers (`√K` by integer square
//! root to 16 fractional bits) whenever `η` or `d` changes. The schedule is
//! `η ← max(⌊η·γ/2³²⌋, η_min)` per epoch after `start_epoch`, `γ` in Q32.
//!
//! Ranges, checked by [`IntConfig::validate`]: `K·b·max(V, H) < 2³²` (so `|D| < 2⁴⁷` and
//! `|D·μ| < 2⁶³`), `H ≤ 2¹⁶` (so `|u| < 2³¹`), `K·max(V, H) < 2³⁰` (fields fit `i32`).
//!
//! # No floating point
//! This module is `#![deny(clippy::float_arithmetic)]`. The exceptions, each marked
//! `#[allow(clippy::float_arithmetic)]`, run once before training: building the tables
//! ([`table::fill_tanh`], [`table::fill_thresholds`]) and converting an `f32` configuration
//! ([`IntConfig::from_step_config`]). Firmware can build the tables on the host and pass them
//! in ([`table::Tables::from_slices`]) to link no floating-point code at all.
//!
//! # Kernels
//! The step makes a few calls per block, each over every row and pattern:
//! [`crate::kernels::overlaps_rows`] (all `K` overlaps of a row by XOR + popcount),
//! [`crate::kernels::hidden_block`] (fields, the `tanh` lookup, `u` and `D_h` of one block of
//! 64 hidden units for every row: the sign words expanded once per block, `i32` partial sums
//! flushed to `i64` before they can overflow), [`crate::kernels::signed_rows_add_i64`] (one
//! pattern's `D_v` over every row) and [`crate::kernels::apply_steps`] (the rounded, saturated
//! `θ` update). The sampling of [`sample`] uses [`crate::kernels::xor_popcount`],
//! [`crate::kernels::masked_xor_popcount`] and [`crate::kernels::signed_add_i32`]. All are
//! exact integer kernels with a scalar oracle, dispatched by CPU level and bit-exact across
//! levels (the step keeps its per-kernel form as a test oracle), so a seed gives the same bits
//! on every target and at every level.
#![deny(clippy::float_arithmetic)]

pub mod sample;
pub mod step;
pub mod table;

pub use sample::{sample_scratch_len, signs_len, Signs};
pub use step::{IntBuffers, IntEngine, IntState};
pub use table::{tanh_table_len, threshold_table_len, Tables, TANH_ONE};

use crate::error::ConfigError;
use crate::optim::{Optimizer, Projection};
use crate::ra::model::Dims;
use crate::ra::pid::NegativePhase;
use crate::spins::words_for;
use crate::step::{Method, StepConfig};

/// `θ₀`: `1.0` in the Q2.5 format of the latent `θ`.
pub const THETA0: i8 = 32;
/// Largest `|θ|`.
pub const THETA_MAX: i8 = 127;
/// `1.0` in Q32, the format of the learning rate and the decay factor.
pub const Q32_ONE: u64 = 1 << 32;
/// Learning rates (Q32) must be below `2⁶³` (`η < 2³¹`).
pub const LR_LIMIT: u64 = 1 << 63;
/// Hidden units per block of the streamed step (one word of signs).
pub const BLOCK: usize = 64;

/// The negative phase of integer PID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntNegative {
    /// `pid`: the visible signs `s_vᵏ` are the `K` negative samples.
    Patterns,
    /// `pid-gibbs:k`: `steps` block Gibbs steps from each `s_vᵏ`.
    Gibbs {
        /// Gibbs steps per chain (at least 1).
        steps: u32,
    },
}

/// The configuration of an integer PID run (SGD, `sign` at each epoch end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntConfig {
    /// The negative phase.
    pub negative: IntNegative,
    /// The initial learning rate `η` in Q32 (`η·2³²`).
    pub lr: u64,
    /// The per-epoch decay `γ` in Q32 (`≤ 2³²`).
    pub decay: u64,
    /// The floor `η_min` in Q32.
    pub lr_min: u64,
    /// Epochs before the decay starts.
    pub start_epoch: u32,
    /// The configured batch size `b` (rows per update; the last batch may be shorter).
    pub batch: usize,
}

/// Every buffer length of an integer PID run (see [`IntBuffers`] and [`table::Tables`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntLengths {
    /// `θ` (`i8`): `K·(V+H)`, pattern-major like the `f32` patterns.
    pub theta: usize,
    /// Packed signs (`u64`): [`signs_len`].
    pub signs: usize,
    /// Negative samples (`u64`): `K·words_for(V)`.
    pub negatives: usize,
    /// Spin words for sampling (`u64`): `words_for(H)`.
    pub words: usize,
    /// `i32` scratch: `2·(b+K)·K` (overlaps and `u`) `+ K + 64` (one block's fields, or the sampling
    /// scratch of `pid-gibbs`).
    pub scratch: usize,
    /// `i16` scratch for `t` of one block: 64.
    pub t: usize,
    /// `i64` scratch: `K·64 + V` (the block's `D_h`, one pattern's `D_v`).
    pub wide: usize,
    /// The `tanh` table (`i16`).
    pub tanh_table: usize,
    /// The threshold table (`u32`).
    pub threshold_table: usize,
}

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

impl IntConfig {
    /// The paper's Bars 4×4 set-up in fixed point: `pid`, `η = 0.02`, batch 3, `γ = 0.96`
    /// down to `10⁻⁵` — the `f32` values of [`StepConfig::paper_bars`] rounded to the
    /// nearest Q32 value, so this equals `from_step_config(&StepConfig::paper_bars())`.
    pub const fn paper_bars() -> Self {
        IntConfig {
            negative: IntNegative::Patterns,
            lr: 85_899_344,       // round(f32(0.02)·2³²)
            decay: 4_123_168_512, // round(f32(0.96)·2³²)
            lr_min: 42_950,       // round(f32(1e−5)·2³²)
            start_epoch: 0,
            batch: 3,
        }
    }

    /// The integer form of an `f32` configuration: its method must be `pid` or `pid-gibbs:k`,
    /// its optimiser plain SGD, its projection `sign` at each epoch end; `η`, `γ` and
    /// `η_min` are rounded to the nearest Q32 value. Runs once, before training (the only
    /// floating point of integer PID besides building the tables).
    ///
    /// # Errors
    /// [`ConfigError::IntegerMethod`], [`ConfigError::IntegerSgdOnly`],
    /// [`ConfigError::IntegerNeedsSign`], [`ConfigError::IntegerLearningRate`] as named; the
    /// `f32` configuration's own errors ([`StepConfig::validate`] is not run here).
    #[allow(clippy::float_arithmetic)]
    pub fn from_step_config(cfg: &StepConfig) -> Result<Self, ConfigError> {
        let negative = match cfg.method {
            Method::Pid(NegativePhase::Patterns) => IntNegative::Patterns,
            Method::Pid(NegativePhase::Gibbs { steps }) => IntNegative::Gibbs { steps },
            _ => return Err(ConfigError::IntegerMethod),
        };
        let sgd = match cfg.optimizer {
            Optimizer::Sgd(s) if s.momentum == 0.0 && s.weight_decay == 0.0 => s,
            _ => return Err(ConfigError::IntegerSgdOnly),
        };
        if cfg.projection != (Projection::Sign { every: 0 }) {
            return Err(ConfigError::IntegerNeedsSign);
        }
        let q32 = |x: f32| -> Result<u64, ConfigError> {
            let q = libm::round(f64::from(x) * Q32_ONE as f64);
            if q.is_finite() && (0.0..(u64::MAX >> 1) as f64).contains(&q) {
                Ok(q as u64)
            } else {
                Err(ConfigError::IntegerLearningRate)
            }
        };
        Ok(IntConfig {
            negative,
            lr: q32(sgd.lr)?,
            decay: q32(cfg.schedule.decay)?,
            lr_min: q32(cfg.schedule.min)?,
            start_epoch: cfg.schedule.start_epoch,
            batch: cfg.batch,
        })
    }

    /// Checks the configuration against the sizes.
    ///
    /// # Errors
    /// A size error of [`Dims::validate`]; [`ConfigError::Batch`] for a batch of 0;
    /// [`ConfigError::GibbsSteps`] for `pid-gibbs:0`; [`ConfigError::IntegerRange`] when
    /// the sizes exceed the ranges of the module docs; [`ConfigError::IntegerLearningRate`]
    /// for `η = 0`, `η ≥ 2³¹`, `γ = 0`, `γ > 1` or `η_min ≥ 2³¹`.
    pub fn validate(&self, dims: Dims) -> Result<(), ConfigError> {
        dims.validate()?;
        if self.batch == 0 {
            return Err(ConfigError::Batch);
        }
        if self.negative == (IntNegative::Gibbs { steps: 0 }) {
            return Err(ConfigError::GibbsSteps);
        }
        let wide = max(dims.visible, dims.hidden) as u128;
        let k = dims.patterns as u128;
        if k * self.batch as u128 * wide >= 1 << 32 || dims.hidden > 1 << 16 || k * wide >= 1 << 30
        {
            return Err(ConfigError::IntegerRange);
        }
        if self.lr == 0
            || self.lr >= LR_LIMIT
            || self.decay == 0
            || self.decay > Q32_ONE
            || self.lr_min >= LR_LIMIT
        {
            return Err(ConfigError::IntegerLearningRate);
        }
        Ok(())
    }

    /// The learning rate after epoch number `epochs_done` (1-based) ends, from `lr`:
    /// `max(⌊lr·γ/2³²⌋, η_min)` once `epochs_done > start_epoch`, else `lr`.
    pub const fn next_lr(&self, lr: u64, epochs_done: u32) -> u64 {
        if epochs_done <= self.start_epoch {
            return lr;
        }
        let next = ((lr as u128 * self.decay as u128) >> 32) as u64;
        if next > self.lr_min {
            next
        } else {
            self.lr_min
        }
    }

    /// The learning rate after `epochs` epochs from the start (the schedule replayed, so a
    /// checkpoint taken at an epoch end needs only the epoch count). Past `start_epoch` the
    /// next rate depends on the rate alone, so the replay stops at a fixed point (the floor):
    /// `epochs` up to `u32::MAX` costs no more steps than the decay takes to get there, and
    /// the epoch counter never overflows.
    pub const fn lr_after(&self, epochs: u32) -> u64 {
        let mut lr = self.lr;
        let mut e = 0;
        while e < epochs {
            e += 1;
            let next = self.next_lr(lr, e);
            if next == lr && e > self.start_epoch {
                break;
            }
            lr = next;
        }
        lr
    }

    /// Every buffer length for these sizes (`const`: firmware sizes `static` buffers with
    /// it).
    pub const fn lengths(&self, dims: Dims) -> IntLengths {
        let (v, h, k) = (dims.visible, dims.hidden, dims.patterns);
        IntLengths {
            theta: k * (v + h),
            signs: signs_len(dims),
            negatives: k * words_for(v),
            words: words_for(h),
            scratch: 2 * (self.batch + k) * k + max(BLOCK, sample_scratch_len(dims)),
            t: BLOCK,
            wide: k * BLOCK + v,
            tanh_table: tanh_table_len(k),
            threshold_table: threshold_table_len(k),
        }
    }
}
