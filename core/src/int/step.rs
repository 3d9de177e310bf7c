//! The integer PID engine: one update and the epoch end, on caller buffers (see the module
//! docs of [`crate::int`] for the equations and ranges).

use core::num::NonZeroUsize;
#[cfg(test)]
use core::slice;

use rand_core::RngCore;

use super::sample::{sample_scratch_len, Signs};
use super::table::{isqrt_u64, Tables};
#[cfg(test)]
use super::THETA_MAX;
use super::{IntConfig, IntLengths, IntNegative, BLOCK, THETA0};
use crate::error::ConfigError;
#[cfg(test)]
use crate::kernels::bits;
use crate::kernels::bits::HiddenBlock;
use crate::kernels::bulk::Lanes;
use crate::kernels::{
    apply_steps_with, hidden_block_with, overlaps_rows_with, signed_rows_add_i64_with, BitsLevel,
};
use crate::ra::model::Dims;
use crate::spins::words_for;

/// The counters of an integer run: what a checkpoint keeps besides `θ` (which equals
/// `sign·θ₀` at every epoch end, so the signs alone restore it there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntState {
    /// The learning rate of the next update, Q32.
    pub lr: u64,
    /// Updates done.
    pub updates: u64,
    /// Epochs ended.
    pub epochs: u32,
}

/// The caller's buffers of an integer run; lengths from [`IntConfig::lengths`].
#[derive(Debug)]
pub struct IntBuffers<'a> {
    /// The latent `θ` (Q2.5), `K` rows of `V + H` (exactly [`IntLengths::theta`]).
    pub theta: &'a mut [i8],
    /// The packed signs `sign(θ)` (exactly [`IntLengths::signs`]).
    pub signs: &'a mut [u64],
    /// The negative samples of the last update (at least [`IntLengths::negatives`]).
    pub negatives: &'a mut [u64],
    /// Hidden spin words for sampling (at least [`IntLengths::words`]).
    pub words: &'a mut [u64],
    /// `i32` scratch (at least [`IntLengths::scratch`]).
    pub scratch: &'a mut [i32],
    /// `i16` scratch (at least [`IntLengths::t`]).
    pub t: &'a mut [i16],
    /// `i64` scratch (at least [`IntLengths::wide`]).
    pub wide: &'a mut [i64],
}

/// The step size `μ/2^σ` for one learning rate and divisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Scale {
    lr: u64,
    divisor: usize,
    mul: i64,
    shift: u32,
}

/// Bit length of a `u128`.
fn bits(x: u128) -> i32 {
    128 - x.leading_zeros() as i32
}

/// `⌊num·2^e / den⌋` for any sign of `e` (`den > 0`; `e` small enough not to overflow).
fn scaled_quotient(num: u128, den: u128, e: i32) -> u128 {
    if e >= 0 {
        (num << e) / den
    } else {
        num / (den << -e)
    }
}

/// `μ ∈ [2¹⁵, 2¹⁶]` and `σ` with `μ/2^σ ≈ η·θ₀ / (2³²·2¹⁴·d·K·√K)` (`√K` as
/// `⌊√(K·2³²)⌋/2¹⁶`), `σ` capped at 62 (then `μ` shrinks). `None` when `σ < 1` (a step
/// size of `2¹⁵` or more per unit of `D`: no usable learning rate).
fn step_scale(lr: u64, divisor: usize, patterns: usize) -> Option<(i64, u32)> {
    if lr == 0 {
        return Some((0, 1));
    }
    let sk = u128::from(isqrt_u64((patterns as u64) << 32));
    let num = u128::from(lr) * THETA0 as u128;
    // σ = num / (den·2³⁰): the 2¹⁶ of `sk` cancels 16 of the 2⁴⁶ = 2³²·2¹⁴.
    let den = divisor as u128 * patterns as u128 * sk;
    // mul = num·2^e/den with e = shift − 30, aimed at [2¹⁵, 2¹⁶).
    let mut e = 15 + bits(den) - bits(num);
    while scaled_quotient(num, den, e) >= 1 << 16 {
        e -= 1;
    }
    while scaled_quotient(num, den, e) < 1 << 15 {
        e += 1;
    }
    // Round to nearest: ⌊(2q' + 1)/2⌋ with q' one bit finer.
    let mut mul = (scaled_quotient(num, den, e + 1) + 1) >> 1;
    let mut shift = e + 30;
    if shift < 1 {
        return None;
    }
    if shift > 62 {
        mul >>= shift - 62;
        shift = 62;
    }
    Some((mul as i64, shift as u32))
}

/// `θ ← clamp(θ + round(D·μ/2^σ), −127, 127)`, rounding half up (the step uses
/// [`crate::kernels::apply_steps`]; this is the reference's).
#[cfg(test)]
#[inline(always)]
fn apply(theta: &mut i8, d: i64, mul: i64, shift: u32) {
    let step = (d * mul + (1i64 << (shift - 1))) >> shift;
    let x = i64::from(*theta) + step.clamp(-255, 255);
    *theta = x.clamp(-i64::from(THETA_MAX), i64::from(THETA_MAX)) as i8;
}

/// The sign bits of up to 64 latents (bit `j` set iff `θ_j ≥ 0`).
#[inline]
fn sign_word(theta: &[i8]) -> u64 {
    if cfg!(target_pointer_width = "64") {
        // 8 latents at a time: the clear sign bits (bit 7 of each byte), gathered into the
        // top byte by one multiplication (byte j lands on bit 56 + j, no carries).
        let mut chunks = theta.chunks_exact(8);
        let mut w = 0u64;
        for (c, chunk) in chunks.by_ref().enumerate() {
            let bytes = u64::from_le_bytes(
                [chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7]]
                    .map(|x| x as u8),
            );
            let set = (!bytes >> 7) & 0x0101_0101_0101_0101;
            w |= (set.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * c);
        }
        let j0 = theta.len() - chunks.remainder().len();
        chunks
            .remainder()
            .iter()
            .enumerate()
            .fold(w, |w, (j, &x)| w | (u64::from(x >= 0) << (j0 + j)))
    } else {
        theta.iter().enumerate().fold(0u64, |w, (j, &x)| w | (u64::from(x >= 0) << j))
    }
}

/// Rewrites every sign word from `θ`.
fn pack_all(dims: Dims, theta: &[i8], signs: &mut [u64]) {
    let (v, h, k) = (dims.visible, dims.hidden, dims.patterns);
    let (wv, wh) = (words_for(v), words_for(h));
    let (sv, sh) = signs.split_at_mut(k * wv);
    for kk in 0..k {
        let row = &theta[kk * (v + h)..(kk + 1) * (v + h)];
        for (w, chunk) in sv[kk * wv..(kk + 1) * wv].iter_mut().zip(row[..v].chunks(64)) {
            *w = sign_word(chunk);
        }
        for (w, chunk) in sh[kk * wh..(kk + 1) * wh].iter_mut().zip(row[v..].chunks(64)) {
            *w = sign_word(chunk);
        }
    }
}

/// Integer PID: SGD on the latent `θ` with the `sign` projection at each epoch end.
#[derive(Clone, Copy, Debug)]
pub struct IntEngine {
    dims: Dims,
    cfg: IntConfig,
    state: IntState,
    scale: Scale,
}

impl IntEngine {
    /// An engine at the start of a run (learning rate `cfg.lr`, no update done).
    ///
    /// # Errors
    /// As [`IntConfig::validate`], and [`ConfigError::IntegerLearningRate`] when the larger
    /// of `η` and `η_min` gives a step of `2¹⁵` or more per unit of `D`.
    pub fn new(dims: Dims, cfg: IntConfig) -> Result<Self, ConfigError> {
        let state = IntState { lr: cfg.lr, updates: 0, epochs: 0 };
        Self::resume(dims, cfg, state)
    }

    /// An engine that continues a run from its counters.
    ///
    /// # Errors
    /// As [`IntEngine::new`], and [`ConfigError::IntegerLearningRate`] for a state learning
    /// rate of `2³¹` or more, or one with no usable step.
    pub fn resume(dims: Dims, cfg: IntConfig, state: IntState) -> Result<Self, ConfigError> {
        cfg.validate(dims)?;
        let top = cfg.lr.max(cfg.lr_min).max(state.lr);
        if state.lr >= super::LR_LIMIT || step_scale(top, 1, dims.patterns).is_none() {
            return Err(ConfigError::IntegerLearningRate);
        }
        let scale = Scale { lr: u64::MAX, divisor: 0, mul: 0, shift: 1 };
        Ok(IntEngine { dims, cfg, state, scale })
    }

    /// The sizes.
    pub fn dims(&self) -> Dims {
        self.dims
    }

    /// The configuration.
    pub fn config(&self) -> &IntConfig {
        &self.cfg
    }

    /// The counters.
    pub fn state(&self) -> IntState {
        self.state
    }

    /// Every buffer length.
    pub const fn lengths(&self) -> IntLengths {
        self.cfg.lengths(self.dims)
    }

    /// Sets `θ = sign(x)·θ₀` and the signs from real patterns `xi` (`K·(V+H)`, the `f32`
    /// layout): `x ≥ 0` gives `+θ₀` (`sign(0) = +1`), `x < 0` gives `−θ₀`, NaN gives `+θ₀`.
    ///
    /// # Panics
    /// If a length differs from [`IntLengths`].
    pub fn set_patterns(&self, xi: &[f32], theta: &mut [i8], signs: &mut [u64]) {
        let len = self.lengths();
        assert!(xi.len() == len.theta && theta.len() == len.theta, "patterns need K·(V+H)");
        assert_eq!(signs.len(), len.signs, "signs need signs_len words");
        for (t, &x) in theta.iter_mut().zip(xi) {
            *t = if x < 0.0 { -THETA0 } else { THETA0 };
        }
        pack_all(self.dims, theta, signs);
    }

    /// Uniform random ±1 patterns: one `next_u32` of `rng` per entry, in order, `+θ₀` where
    /// its lowest bit is 1.
    ///
    /// # Panics
    /// If a length differs from [`IntLengths`].
    pub fn init_random<R: RngCore + ?Sized>(
        &self,
        theta: &mut [i8],
        signs: &mut [u64],
        rng: &mut R,
    ) {
        let len = self.lengths();
        assert!(theta.len() == len.theta && signs.len() == len.signs, "buffer lengths");
        for t in theta.iter_mut() {
            *t = if rng.next_u32() & 1 == 1 { THETA0 } else { -THETA0 };
        }
        pack_all(self.dims, theta, signs);
    }

    /// The patterns `sign(θ) = ±1.0` in the `f32` layout (what a model file stores).
    ///
    /// # Panics
    /// If a length differs from [`IntLengths::theta`].
    pub fn patterns(&self, theta: &[i8], out: &mut [f32]) {
        assert!(out.len() == theta.len() && theta.len() == self.lengths().theta, "lengths");
        for (o, &t) in out.iter_mut().zip(theta) {
            *o = if t >= 0 { 1.0 } else { -1.0 };
        }
    }

    /// The step size for the current learning rate and this divisor (cached).
    fn scale_for(&mut self, divisor: usize) -> (i64, u32) {
        let s = self.scale;
        if s.lr != self.state.lr || s.divisor != divisor {
            let (mul, shift) = step_scale(self.state.lr, divisor, self.dims.patterns)
                .expect("checked at construction: the learning rate only decays to its floor");
            self.scale = Scale { lr: self.state.lr, divisor, mul, shift };
        }
        (self.scale.mul, self.scale.shift)
    }

    /// One update on a batch of packed rows (`rows × words_for(V)` words): negative samples
    /// (`pid-gibbs` draws from lanes seeded by `rng`, 32 `next_u64`; `pid` uses no
    /// randomness), then the streamed gradient and `θ` update of the module docs. `divisor`
    /// is `d` (pass the configured batch for a short last batch so each row weighs `1/b`;
    /// `None` means `d = rows`).
    ///
    /// # Panics
    /// If a buffer length differs from [`IntLengths`] (or is short, for the scratch), the batch
    /// is not whole rows, `rows` is 0 or above the configured batch, or `d` is not in
    /// `[rows, batch]`; if `tables` were built for another `K`.
    pub fn step<R: RngCore + ?Sized>(
        &mut self,
        bufs: &mut IntBuffers<'_>,
        tables: &Tables<'_>,
        batch: &[u64],
        divisor: Option<NonZeroUsize>,
        rng: &mut R,
    ) {
        self.step_at(BitsLevel::active(), bufs, tables, batch, divisor, rng);
    }

    /// [`IntEngine::step`] with the hidden-block kernel at `level` (the other kernels run at
    /// the active level; every level gives the same bits).
    pub(crate) fn step_at<R: RngCore + ?Sized>(
        &mut self,
        level: BitsLevel,
        bufs: &mut IntBuffers<'_>,
        tables: &Tables<'_>,
        batch: &[u64],
        divisor: Option<NonZeroUsize>,
        rng: &mut R,
    ) {
        let dims = self.dims;
        let (v, h, k) = (dims.visible, dims.hidden, dims.patterns);
        let (wv, wh) = (words_for(v), words_for(h));
        let len = self.lengths();
        self.check(bufs, tables);
        assert_eq!(batch.len() % wv, 0, "batch rows must be words_for(V) words");
        let rows = batch.len() / wv;
        assert!(rows > 0 && rows <= self.cfg.batch, "rows must be in 1..=batch");
        let d = divisor.map_or(rows, NonZeroUsize::get);
        assert!(rows <= d && d <= self.cfg.batch, "the divisor must be in rows..=batch");
        let (mul, shift) = self.scale_for(d);

        let IntBuffers { theta, signs, negatives, words, scratch, t, wide } = bufs;
        let negs = &mut negatives[..len.negatives];
        let s_rows = rows + k;
        let (m, rest) = scratch.split_at_mut(s_rows * k);
        let (u, rest) = rest.split_at_mut(s_rows * k);
        {
            let view = Signs::new(signs, dims);
            for c in 0..k {
                negs[c * wv..(c + 1) * wv].copy_from_slice(view.v_row(c));
            }
            if let IntNegative::Gibbs { steps } = self.cfg.negative {
                let mut lanes = Lanes::seed(rng);
                let hw = &mut words[..wh];
                let ss = &mut rest[..sample_scratch_len(dims)];
                for chain in negs.chunks_exact_mut(wv) {
                    for _ in 0..steps {
                        view.gibbs_step(chain, hw, tables, ss, &mut lanes);
                    }
                }
            }
        }
        // Overlaps m_{s,k} = V − 2·popcount(s_vᵏ ⊕ v_s), all K of a row in one call.
        for s in 0..s_rows {
            let row =
                if s < rows { &batch[s * wv..][..wv] } else { &negs[(s - rows) * wv..][..wv] };
            overlaps_rows_with(level, &signs[..k * wv], row, v as i32, &mut m[s * k..(s + 1) * k]);
        }
        let negs = &*negs;
        u.fill(0);

        // Hidden side, one block of 64 units at a time: fields, t, u, D_h (one kernel call
        // over every row; row weights K for data rows, −d for negative samples, so
        // D = K·Σ_B − d·Σ_S⁻), then θ_h.
        let (gblk, gv) = wide.split_at_mut(k * BLOCK);
        let f_all = &mut rest[..BLOCK];
        let hbase = k * wv;
        for b in 0..wh {
            let a0 = b * BLOCK;
            let n = BLOCK.min(h - a0);
            let g = &mut gblk[..k * n];
            g.fill(0);
            let blk = HiddenBlock {
                signs: &signs[hbase + b..],
                stride: wh,
                units: n,
                patterns: k,
                m: &m[..],
                data_rows: rows,
                weights: [k as i64, -(d as i64)],
                tanh: tables.tanh_table(),
            };
            hidden_block_with(level, &blk, u, g, f_all, t);
            for kk in 0..k {
                let th = &mut theta[kk * (v + h) + v + a0..][..n];
                apply_steps_with(level, th, &g[kk * n..(kk + 1) * n], mul, shift);
                signs[hbase + kk * wh + b] = sign_word(th);
            }
        }

        // Visible side, one pattern at a time: D_v[k] = Σ_s weight·u_{s,k}·v_s, then θ_v.
        let gv = &mut gv[..v];
        for kk in 0..k {
            gv.fill(0);
            signed_rows_add_i64_with(level, batch, wv, &u[kk..], k, k as i64, gv);
            signed_rows_add_i64_with(level, negs, wv, &u[rows * k + kk..], k, -(d as i64), gv);
            let tv = &mut theta[kk * (v + h)..][..v];
            apply_steps_with(level, tv, gv, mul, shift);
            for (w, chunk) in signs[kk * wv..(kk + 1) * wv].iter_mut().zip(tv.chunks(64)) {
                *w = sign_word(chunk);
            }
        }
        // Saturating, as in `step::Engine::finish`: the count cannot be reached by training.
        self.state.updates = self.state.updates.saturating_add(1);
    }

    #[cfg(test)]
    pub(crate) fn step_reference<R: RngCore + ?Sized>(
        &mut self,
        bufs: &mut IntBuffers<'_>,
        tables: &Tables<'_>,
        batch: &[u64],
        divisor: Option<NonZeroUsize>,
        rng: &mut R,
    ) {
        let dims = self.dims;
        let (v, h, k) = (dims.visible, dims.hidden, dims.patterns);
        let (wv, wh) = (words_for(v), words_for(h));
        let len = self.lengths();
        self.check(bufs, tables);
        assert_eq!(batch.len() % wv, 0, "batch rows must be words_for(V) words");
        let rows = batch.len() / wv;
        assert!(rows > 0 && rows <= self.cfg.batch, "rows must be in 1..=batch");
        let d = divisor.map_or(rows, NonZeroUsize::get);
        assert!(rows <= d && d <= self.cfg.batch, "the divisor must be in rows..=batch");
        let (mul, shift) = self.scale_for(d);

        let IntBuffers { theta, signs, negatives, words, scratch, t, wide } = bufs;
        let negs = &mut negatives[..len.negatives];
        let s_rows = rows + k;
        let (m, rest) = scratch.split_at_mut(s_rows * k);
        let (u, rest) = rest.split_at_mut(s_rows * k);
        {
            let view = Signs::new(signs, dims);
            for c in 0..k {
                negs[c * wv..(c + 1) * wv].copy_from_slice(view.v_row(c));
            }
            if let IntNegative::Gibbs { steps } = self.cfg.negative {
                let mut lanes = Lanes::seed(rng);
                let hw = &mut words[..wh];
                let ss = &mut rest[..sample_scratch_len(dims)];
                for chain in negs.chunks_exact_mut(wv) {
                    for _ in 0..steps {
                        view.gibbs_step(chain, hw, tables, ss, &mut lanes);
                    }
                }
            }
            for s in 0..s_rows {
                let row =
                    if s < rows { &batch[s * wv..][..wv] } else { &negs[(s - rows) * wv..][..wv] };
                view.overlaps(row, &mut m[s * k..(s + 1) * k]);
            }
        }
        let negs = &*negs;
        let row = |s: usize| -> &[u64] {
            if s < rows {
                &batch[s * wv..][..wv]
            } else {
                &negs[(s - rows) * wv..][..wv]
            }
        };
        // Row weights: K for data rows, −d for negative samples (D = K·Σ_B − d·Σ_S⁻).
        let weight = |s: usize| -> i32 {
            if s < rows {
                k as i32
            } else {
                -(d as i32)
            }
        };
        u.fill(0);

        // Hidden side, one block of 64 units at a time: fields, t, u, D_h, then θ_h.
        let (gblk, gv) = wide.split_at_mut(k * BLOCK);
        let f_all = &mut rest[..BLOCK];
        let hbase = k * wv;
        for b in 0..wh {
            let a0 = b * BLOCK;
            let n = BLOCK.min(h - a0);
            let g = &mut gblk[..k * n];
            g.fill(0);
            let f = &mut f_all[..n];
            let tb = &mut t[..n];
            for s in 0..s_rows {
                let ms = &m[s * k..(s + 1) * k];
                f.fill(0);
                for (kk, &mk) in ms.iter().enumerate() {
                    bits::signed_add_i32(slice::from_ref(&signs[hbase + kk * wh + b]), mk, f);
                }
                for (tj, &fj) in tb.iter_mut().zip(f.iter()) {
                    *tj = tables.tanh(fj);
                }
                let c = weight(s);
                let us = &mut u[s * k..(s + 1) * k];
                for (kk, (uk, &mk)) in us.iter_mut().zip(ms).enumerate() {
                    let w = slice::from_ref(&signs[hbase + kk * wh + b]);
                    *uk += bits::signed_sum_i16(w, tb);
                    bits::axpy_i16_i64(c * mk, tb, &mut g[kk * n..(kk + 1) * n]);
                }
            }
            for kk in 0..k {
                let th = &mut theta[kk * (v + h) + v + a0..][..n];
                for (x, &dx) in th.iter_mut().zip(&g[kk * n..(kk + 1) * n]) {
                    apply(x, dx, mul, shift);
                }
                signs[hbase + kk * wh + b] = sign_word(th);
            }
        }

        // Visible side, one pattern at a time: D_v[k] = Σ_s weight·u_{s,k}·v_s, then θ_v.
        let gv = &mut gv[..v];
        for kk in 0..k {
            gv.fill(0);
            for s in 0..s_rows {
                let x = i64::from(weight(s)) * i64::from(u[s * k + kk]);
                bits::signed_add_i64(row(s), x, gv);
            }
            let tv = &mut theta[kk * (v + h)..][..v];
            for (x, &dx) in tv.iter_mut().zip(gv.iter()) {
                apply(x, dx, mul, shift);
            }
            for (w, chunk) in signs[kk * wv..(kk + 1) * wv].iter_mut().zip(tv.chunks(64)) {
                *w = sign_word(chunk);
            }
        }
        // Saturating, as in `step::Engine::finish`: the count cannot be reached by training.
        self.state.updates = self.state.updates.saturating_add(1);
    }

    /// Ends an epoch: `θ ← sign(θ)·θ₀` (the signs do not change), then
    /// `η ← max(⌊η·γ/2³²⌋, η_min)` once more than `start_epoch` epochs have ended.
    ///
    /// # Panics
    /// If `theta` is not [`IntLengths::theta`] long.
    pub fn end_epoch(&mut self, theta: &mut [i8]) {
        assert_eq!(theta.len(), self.lengths().theta, "theta needs K·(V+H) entries");
        for x in theta.iter_mut() {
            *x = if *x >= 0 { THETA0 } else { -THETA0 };
        }
        // Saturating, as in `step::Engine::end_epoch`.
        self.state.epochs = self.state.epochs.saturating_add(1);
        self.state.lr = self.cfg.next_lr(self.state.lr, self.state.epochs);
    }

    fn check(&self, bufs: &IntBuffers<'_>, tables: &Tables<'_>) {
        let len = self.lengths();
        assert_eq!(bufs.theta.len(), len.theta, "theta needs K·(V+H) entries");
        assert_eq!(bufs.signs.len(), len.signs, "signs need signs_len words");
        assert!(bufs.negatives.len() >= len.negatives, "negatives shorter than K·words_for(V)");
        assert!(bufs.words.len() >= len.words, "words shorter than words_for(H)");
        assert!(bufs.scratch.len() >= len.scratch, "scratch shorter than IntLengths::scratch");
        assert!(bufs.t.len() >= len.t, "t shorter than 64");
        assert!(bufs.wide.len() >= len.wide, "wide shorter than K·64 + V");
        assert_eq!(tables.patterns(), self.dims.patterns, "tables were built for another K");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::float_arithmetic)] // the f32 method is the reference here
    use super::*;
    use crate::int::table::{tanh_entry, tanh_table_len, threshold_table_len};
    use crate::kernels::{active, BitsLevel};
    use crate::spins::PackedSpins;
    use crate::step::{Buffers, Engine, Shape, StepConfig};
    use crate::test_util::pm1;
    use rand_core::SeedableRng;
    use rand_pcg::Pcg64;
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    /// Owned buffers and tables of an integer run.
    struct Run {
        engine: IntEngine,
        theta: Vec<i8>,
        signs: Vec<u64>,
        negatives: Vec<u64>,
        words: Vec<u64>,
        scratch: Vec<i32>,
        t: Vec<i16>,
        wide: Vec<i64>,
        tanh: Vec<i16>,
        thr: Vec<u32>,
    }

    impl Run {
        fn new(dims: Dims, cfg: IntConfig, xi: &[f32]) -> Self {
            let engine = IntEngine::new(dims, cfg).unwrap();
            let len = engine.lengths();
            let mut run = Run {
                engine,
                theta: vec![0; len.theta],
                signs: vec![0; len.signs],
                negatives: vec![0; len.negatives],
                words: vec![0; len.words],
                scratch: vec![0; len.scratch],
                t: vec![0; len.t],
                wide: vec![0; len.wide],
                tanh: vec![0; tanh_table_len(dims.patterns)],
                thr: vec![0; threshold_table_len(dims.patterns)],
            };
            super::super::table::fill_tanh(dims.patterns, &mut run.tanh);
            super::super::table::fill_thresholds(dims.patterns, &mut run.thr);
            run.engine.set_patterns(xi, &mut run.theta, &mut run.signs);
            run
        }

        fn step(&mut self, batch: &[u64], divisor: Option<NonZeroUsize>, rng: &mut Pcg64) {
            let tables =
                Tables::from_slices(self.engine.dims().patterns, &self.tanh, &self.thr).unwrap();
            let mut bufs = IntBuffers {
                theta: &mut self.theta,
                signs: &mut self.signs,
                negatives: &mut self.negatives,
                words: &mut self.words,
                scratch: &mut self.scratch,
                t: &mut self.t,
                wide: &mut self.wide,
            };
            self.engine.step(&mut bufs, &tables, batch, divisor, rng);
        }
    }

    fn pack_rows(rows: &[f32], v: usize) -> Vec<u64> {
        let w = words_for(v);
        let mut out = vec![0u64; rows.len() / v * w];
        for (r, o) in rows.chunks_exact(v).zip(out.chunks_exact_mut(w)) {
            PackedSpins::new_unchecked(o, v).copy_from_f32(r);
        }
        out
    }

    /// `D` of the module docs straight from the definitions, in i64 on ±1 values.
    fn reference_d(dims: Dims, xi: &[f32], data: &[f32], negs: &[f32], d: usize) -> Vec<i64> {
        let (v, h, k) = (dims.visible, dims.hidden, dims.patterns);
        let w = v + h;
        let mut out = vec![0i64; k * w];
        let samples = data.chunks_exact(v).map(|r| (r, k as i64));
        let samples = samples.chain(negs.chunks_exact(v).map(|r| (r, -(d as i64))));
        for (row, c) in samples {
            let m: Vec<i64> =
                (0..k).map(|kk| (0..v).map(|i| (xi[kk * w + i] * row[i]) as i64).sum()).collect();
            let t: Vec<i64> = (0..h)
                .map(|a| {
                    let f: i64 = (0..k).map(|kk| xi[kk * w + v + a] as i64 * m[kk]).sum();
                    i64::from(tanh_entry(f, k))
                })
                .collect();
            for kk in 0..k {
                let u: i64 = (0..h).map(|a| xi[kk * w + v + a] as i64 * t[a]).sum();
                for i in 0..v {
                    out[kk * w + i] += c * u * row[i] as i64;
                }
                for a in 0..h {
                    out[kk * w + v + a] += c * m[kk] * t[a];
                }
            }
        }
        out
    }

    fn dims_cases() -> [Dims; 4] {
        [Dims::new(16, 100, 8), Dims::new(5, 3, 2), Dims::new(70, 130, 3), Dims::new(64, 64, 1)]
    }

    #[test]
    #[cfg_attr(miri, ignore = "reference sums over every entry: slow under Miri")]
    fn one_update_follows_the_definition() {
        let mut rng = Pcg64::seed_from_u64(7);
        for dims in dims_cases() {
            for (rows, divisor) in [(3usize, None), (2, NonZeroUsize::new(3)), (1, None)] {
                let cfg = IntConfig { batch: 3, ..IntConfig::paper_bars() };
                let xi = pm1(&mut rng, dims.xi_len());
                let data = pm1(&mut rng, rows * dims.visible);
                let mut run = Run::new(dims, cfg, &xi);
                let before = run.theta.clone();
                run.step(&pack_rows(&data, dims.visible), divisor, &mut rng);
                // pid: the negative samples are the visible signs.
                let negs: Vec<f32> = (0..dims.patterns)
                    .flat_map(|kk| xi[kk * dims.width()..][..dims.visible].to_vec())
                    .collect();
                let d = divisor.map_or(rows, NonZeroUsize::get);
                let want = reference_d(dims, &xi, &data, &negs, d);
                let (mul, shift) = step_scale(cfg.lr, d, dims.patterns).unwrap();
                let exact = cfg.lr as f64 * f64::from(THETA0)
                    / (2f64.powi(46) * (d * dims.patterns) as f64 * (dims.patterns as f64).sqrt());
                for (j, ((&b, &a), &dx)) in before.iter().zip(&run.theta).zip(&want).enumerate() {
                    let mut x = b;
                    apply(&mut x, dx, mul, shift);
                    assert_eq!(a, x, "{dims:?} rows {rows} entry {j}");
                    // The fixed-point step is the real one rounded (μ has 16 bits).
                    let real = (f64::from(b) + dx as f64 * exact).clamp(-127.0, 127.0);
                    assert!((f64::from(a) - real).abs() <= 0.5 + 1e-4 * real.abs(), "{j}");
                }
                // Signs follow θ.
                let mut signs = vec![0u64; run.signs.len()];
                pack_all(dims, &run.theta, &mut signs);
                assert_eq!(signs, run.signs);
            }
        }
    }

    /// Runs `updates` steps of the current step at `level` and of [`IntEngine::step_reference`]
    /// (the step before the hidden-block kernel, on the scalar oracles) from one state;
    /// asserts equal θ, signs, negatives and rng state after every update.
    fn compare_with_reference(
        dims: Dims,
        cfg: IntConfig,
        level: BitsLevel,
        updates: usize,
        rng: &mut Pcg64,
    ) {
        let xi = pm1(rng, dims.xi_len());
        let mut new = Run::new(dims, cfg, &xi);
        let mut old = Run::new(dims, cfg, &xi);
        for up in 0..updates {
            let rows = 1 + (rng.next_u32() as usize) % cfg.batch;
            let d = rows + (rng.next_u32() as usize) % (cfg.batch - rows + 1);
            let divisor = if up % 3 == 0 { None } else { NonZeroUsize::new(d) };
            let data = pack_rows(&pm1(rng, rows * dims.visible), dims.visible);
            let seed = rng.next_u64();
            let (mut r1, mut r2) = (Pcg64::seed_from_u64(seed), Pcg64::seed_from_u64(seed));
            let tables = Tables::from_slices(dims.patterns, &new.tanh, &new.thr).unwrap();
            let mut bufs = IntBuffers {
                theta: &mut new.theta,
                signs: &mut new.signs,
                negatives: &mut new.negatives,
                words: &mut new.words,
                scratch: &mut new.scratch,
                t: &mut new.t,
                wide: &mut new.wide,
            };
            new.engine.step_at(level, &mut bufs, &tables, &data, divisor, &mut r1);
            let tables = Tables::from_slices(dims.patterns, &old.tanh, &old.thr).unwrap();
            let mut bufs = IntBuffers {
                theta: &mut old.theta,
                signs: &mut old.signs,
                negatives: &mut old.negatives,
                words: &mut old.words,
                scratch: &mut old.scratch,
                t: &mut old.t,
                wide: &mut old.wide,
            };
            old.engine.step_reference(&mut bufs, &tables, &data, divisor, &mut r2);
            let what = std::format!("{dims:?} {:?} {} update {up}", cfg.negative, level.name());
            assert_eq!(new.theta, old.theta, "θ: {what}");
            assert_eq!(new.signs, old.signs, "signs: {what}");
            assert_eq!(new.negatives, old.negatives, "negatives: {what}");
            assert_eq!(r1.next_u64(), r2.next_u64(), "rng: {what}");
            assert_eq!(new.engine.state(), old.engine.state(), "{what}");
            if up % 4 == 3 {
                new.engine.end_epoch(&mut new.theta);
                old.engine.end_epoch(&mut old.theta);
            }
        }
    }

    fn levels() -> Vec<BitsLevel> {
        let (run, skip): (Vec<BitsLevel>, Vec<BitsLevel>) =
            BitsLevel::ALL.iter().partition(|l| l.available());
        for l in &skip {
            std::println!("int_step_reference: SKIP {}: not available on this CPU", l.name());
        }
        run
    }

    /// Small sizes: fast enough for Miri (which runs the scalar and POPCNT levels).
    #[test]
    fn the_step_matches_the_reference_step_on_small_sizes() {
        let mut rng = Pcg64::seed_from_u64(21);
        let gibbs = IntNegative::Gibbs { steps: 1 };
        for level in levels() {
            for (dims, negative) in
                [(Dims::new(5, 3, 2), IntNegative::Patterns), (Dims::new(9, 70, 3), gibbs)]
            {
                let cfg = IntConfig { negative, batch: 3, ..IntConfig::paper_bars() };
                compare_with_reference(dims, cfg, level, 3, &mut rng);
            }
        }
    }

    /// Random sizes (around blocks of 64 units and the kernels' pattern capacities),
    /// batches, divisors and negative phases, at every available level.
    #[test]
    #[cfg_attr(miri, ignore = "hundreds of updates: slow under Miri")]
    fn the_step_matches_the_reference_step_at_every_level() {
        let mut rng = Pcg64::seed_from_u64(22);
        let mut cases = vec![
            (Dims::new(16, 1000, 8), 3usize),
            (Dims::new(144, 200, 40), 17),
            (Dims::new(64, 64, 1), 1),
            (Dims::new(3, 129, 9), 4),
            (Dims::new(70, 130, 17), 5),
            (Dims::new(20, 65, 130), 2),
            (Dims::new(33, 127, 64), 6),
        ];
        for _ in 0..6 {
            let v = 1 + rng.next_u32() as usize % 200;
            let h = 1 + rng.next_u32() as usize % 300;
            let k = 1 + rng.next_u32() as usize % 70;
            cases.push((Dims::new(v, h, k), 1 + rng.next_u32() as usize % 12));
        }
        for level in levels() {
            for &(dims, batch) in &cases {
                for negative in [IntNegative::Patterns, IntNegative::Gibbs { steps: 2 }] {
                    // A large learning rate: the signs move, so later updates see new ones.
                    let cfg = IntConfig { negative, batch, lr: 1 << 34, ..IntConfig::paper_bars() };
                    compare_with_reference(dims, cfg, level, 6, &mut rng);
                }
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "an f32 step at paper size: slow under Miri")]
    fn the_integer_direction_is_the_f32_gradient_on_the_signs() {
        let mut rng = Pcg64::seed_from_u64(8);
        for dims in dims_cases() {
            let xi = pm1(&mut rng, dims.xi_len());
            let rows = 3;
            let data = pm1(&mut rng, rows * dims.visible);
            let cfg = StepConfig::paper_bars();
            let mut engine = Engine::new(Shape::Ra(dims), cfg).unwrap();
            let len = cfg.lengths(Shape::Ra(dims), active());
            let mut params = xi.clone();
            let (mut grad, mut lane_grad) = (vec![0f32; len.params], vec![0f32; len.lane_grad]);
            let mut negatives = vec![0f32; len.negatives];
            let mut scratch = vec![0f32; len.scratch];
            let mut bufs = Buffers {
                params: &mut params,
                opt: &mut [],
                grad: &mut grad,
                lane_grad: &mut lane_grad,
                negatives: &mut negatives,
                chains: &mut [],
                scratch: &mut scratch,
            };
            engine.step(&mut bufs, &data, None, None, &mut rng);
            let negs: Vec<f32> = (0..dims.patterns)
                .flat_map(|kk| xi[kk * dims.width()..][..dims.visible].to_vec())
                .collect();
            let d = reference_d(dims, &xi, &data, &negs, rows);
            let k = dims.patterns as f64;
            let scale = 1.0 / (rows as f64 * k * k.sqrt() * f64::from(TANH_ONE));
            let top = grad.iter().fold(0f64, |a, &g| a.max(f64::from(g).abs()));
            for (j, (&g, &dx)) in grad.iter().zip(&d).enumerate() {
                let x = dx as f64 * scale;
                // t is tanh rounded to 2⁻¹⁵: u and g_h move by at most H·2⁻¹⁵/√K, V·2⁻¹⁵/√K.
                let tol = 1e-4 * (top + 1.0) * (dims.hidden.max(dims.visible) as f64).sqrt();
                assert!((x - f64::from(g)).abs() <= tol, "{dims:?} entry {j}: {x} vs {g}");
            }
        }
    }

    use super::super::TANH_ONE;

    #[test]
    fn sign_words_follow_the_signs() {
        let mut rng = Pcg64::seed_from_u64(9);
        for n in [0usize, 1, 7, 8, 9, 63, 64] {
            let theta: Vec<i8> = (0..n).map(|_| rng.next_u32() as i8).collect();
            let want =
                theta.iter().enumerate().fold(0u64, |w, (j, &x)| w | (u64::from(x >= 0) << j));
            assert_eq!(sign_word(&theta), want, "{n}");
            let edge: Vec<i8> = (0..n).map(|j| [0, -1, 127, -128][j % 4]).collect();
            let want =
                edge.iter().enumerate().fold(0u64, |w, (j, &x)| w | (u64::from(x >= 0) << j));
            assert_eq!(sign_word(&edge), want, "{n}");
        }
    }

    #[test]
    fn epoch_end_resets_theta_and_decays_like_the_f32_schedule() {
        let dims = Dims::new(4, 3, 2);
        let cfg = IntConfig { start_epoch: 1, ..IntConfig::paper_bars() };
        let mut engine = IntEngine::new(dims, cfg).unwrap();
        let mut theta: Vec<i8> = vec![5, -1, 0, 127, -127, 31, -32, 33, 1, -5, 2, 3, 4, -6];
        engine.end_epoch(&mut theta);
        let signs: Vec<i8> = vec![1, -1, 1, 1, -1, 1, -1, 1, 1, -1, 1, 1, 1, -1];
        assert!(theta.iter().zip(&signs).all(|(&t, &s)| t == s * THETA0));
        assert_eq!(engine.state().lr, cfg.lr, "no decay before start_epoch");
        let mut lr = 0.02f32;
        for e in 2..400u32 {
            engine.end_epoch(&mut theta);
            lr = (lr * 0.96).max(1e-5);
            let q = engine.state().lr as f64 / 2f64.powi(32);
            // Q32 floors each epoch (≤ 2⁻³² per epoch) where f32 rounds (2⁻²⁴ relative).
            assert!((q - f64::from(lr)).abs() <= 2e-3 * f64::from(lr), "epoch {e}");
        }
        assert_eq!(engine.state().lr, cfg.lr_min);
        assert_eq!(cfg.lr_after(engine.state().epochs), engine.state().lr);
        assert_eq!(cfg.lr_after(1), cfg.lr);
        assert_eq!(cfg.lr_after(2), cfg.next_lr(cfg.lr, 2));
        // The replay of any epoch count ends (at the floor), without overflowing the counter.
        assert_eq!(cfg.lr_after(u32::MAX), cfg.lr_min);
        let flat = IntConfig { decay: crate::int::Q32_ONE, ..cfg };
        assert_eq!(flat.lr_after(u32::MAX), cfg.lr);
    }

    /// Counters resumed at their limits stay there: neither an update nor an epoch end wraps
    /// or panics (debug builds check overflow).
    #[test]
    fn counters_at_their_limits_saturate() {
        let dims = Dims::new(4, 3, 2);
        let cfg = IntConfig::paper_bars();
        let state = IntState { lr: cfg.lr_min, updates: u64::MAX, epochs: u32::MAX };
        let mut engine = IntEngine::resume(dims, cfg, state).unwrap();
        let mut theta = vec![THETA0; cfg.lengths(dims).theta];
        engine.end_epoch(&mut theta);
        assert_eq!(engine.state(), state);
    }

    #[test]
    fn step_scale_is_the_real_scale_to_16_bits() {
        for (lr, d, k) in
            [(85_899_346u64, 3usize, 8usize), (1, 1, 1), (42_950, 120, 40), (1 << 40, 1, 1)]
        {
            let (mul, shift) = step_scale(lr, d, k).unwrap();
            let real = lr as f64 * 32.0 / (2f64.powi(46) * (d * k) as f64 * (k as f64).sqrt());
            let got = mul as f64 / 2f64.powi(shift as i32);
            assert!(
                (got / real - 1.0).abs() < 1e-4 || shift == 62,
                "{lr} {d} {k}: {got} vs {real}"
            );
        }
        assert!(step_scale(u64::MAX >> 4, 1, 1).is_none(), "a step of 2^15 per unit is refused");
    }

    #[test]
    fn configurations_out_of_range_are_refused() {
        let ok = IntConfig::paper_bars();
        let dims = Dims::new(16, 1000, 8);
        assert!(IntEngine::new(dims, ok).is_ok());
        let bad = [
            IntConfig { batch: 0, ..ok },
            IntConfig { lr: 0, ..ok },
            IntConfig { decay: (1 << 32) + 1, ..ok },
            IntConfig { negative: IntNegative::Gibbs { steps: 0 }, ..ok },
            IntConfig { batch: 1 << 20, ..ok },
        ];
        for cfg in bad {
            assert!(IntEngine::new(dims, cfg).is_err(), "{cfg:?}");
        }
        assert_eq!(
            IntEngine::new(Dims::new(16, 70_000, 1), IntConfig { batch: 1, ..ok }).unwrap_err(),
            ConfigError::IntegerRange
        );
        let f32_cfg = StepConfig::paper_bars();
        assert_eq!(IntConfig::from_step_config(&f32_cfg).unwrap(), ok);
    }

    #[test]
    #[cfg_attr(miri, ignore = "dozens of Gibbs updates: slow under Miri")]
    fn pid_gibbs_draws_from_the_rng_and_is_reproducible() {
        let dims = Dims::new(16, 50, 4);
        let gibbs =
            IntConfig { negative: IntNegative::Gibbs { steps: 2 }, ..IntConfig::paper_bars() };
        let mut rng = Pcg64::seed_from_u64(3);
        let xi = pm1(&mut rng, dims.xi_len());
        let data = pack_rows(&pm1(&mut rng, 3 * 16), 16);
        let run = |cfg: IntConfig, seed: u64| {
            let mut r = Run::new(dims, cfg, &xi);
            let mut rng = Pcg64::seed_from_u64(seed);
            for _ in 0..5 {
                r.step(&data, None, &mut rng);
            }
            (r.theta, r.negatives, rng.next_u64())
        };
        assert_eq!(run(gibbs, 1), run(gibbs, 1));
        // 32 next_u64 per update seed the lanes; pid draws nothing.
        let mut rng = Pcg64::seed_from_u64(1);
        for _ in 0..5 * 32 {
            rng.next_u64();
        }
        assert_eq!(run(gibbs, 1).2, rng.next_u64());
        assert_eq!(run(IntConfig::paper_bars(), 1).2, Pcg64::seed_from_u64(1).next_u64());
    }
}
