//! The block engine that RA and dense models share: Gibbs chains and phase sums over blocks
//! of rows, written once against the [`BlockModel`] trait.
//!
//! # Equations
//! For ±1 spins, `P(h_α = +1 | v) = σ(2φ_α)` and `P(v_i = +1 | h) = σ(2ψ_i)`, with the fields
//! `φ = Wᵀv (+ b)` and `ψ = W h (+ a)` that a model computes for a block of rows
//! ([`BlockModel::hidden_fields`], [`BlockModel::visible_fields`]). The phase term of a sample
//! set `S` with weight `w` is
//!
//! ```text
//! w · (−∂⟨F⟩_S/∂θ) = (w/|S|) Σ_s ∂/∂θ Σ_α log 2cosh φ_α(v_s),   ∂/∂φ_α log 2cosh φ_α = tanh φ_α
//! ```
//!
//! so a block's term needs its rows `S`, `T = tanh Φ`, and whatever the model kept from the
//! field computation ([`BlockModel::accumulate_block`]). The RA model never forms `W`.
//!
//! # Blocks and reproducibility
//! Rows go in blocks of `b = min(block_rows, rows)` ([`Workspace`]); `block_rows` comes from
//! the configuration, never from the target, so a seed gives the same bits at the scalar level
//! on every architecture. Each block makes all its Gibbs steps before the next block starts,
//! drawing its spins in bulk ([`crate::kernels::sample_pm1_in_place`]: hidden units, then
//! visible units, per step).
//!
//! # Operands packed once
//! A model may pack its fixed GEMM operands ahead ([`BlockModel::prepack`]: `Ξ_vᵀ`, `Ξ_h`,
//! `Ξ_hᵀ`, `Ξ_v` for RA models, `W` and `Wᵀ` for dense ones) when the scratch has room for
//! [`BlockModel::prepack_len`] entries past [`block_scratch_len`]: each call here then packs
//! them once instead of in every block and Gibbs step (only when more than one block product
//! reads them). A caller that runs many such calls on one model (the lanes of a training
//! step, [`crate::step`]) packs them once itself and hands the packed copy to every workspace
//! instead. The results do not depend on it: packing only moves data.
//!
//! # Negative phases
//! [`cd_negative_phase`] (chains start at the batch) and [`pcd_negative_phase`] (persistent
//! packed chains) work on any [`BlockModel`], RA or dense.

use rand_core::RngCore;

use crate::kernels::{active, gemm_pack_len, sample_pm1_in_place, tanh_in_place, Isa};
use crate::spins::{sign_f32, word_mask, words_for, PackedSpins};

/// Rows per block of the default configuration: enough for the SIMD GEMMs to run near peak.
pub const BLOCK_ROWS: usize = 256;

/// A model whose fields and phase terms can be computed for a block of rows at once.
///
/// Rows are row-major `f32`: visible rows of `V` entries (±1, or 0 for a neutral spin),
/// hidden rows of `H`. `work` is per-row workspace of [`BlockModel::row_work`] entries a row;
/// `pack` is the GEMM packing buffer of the level (`gemm_pack_len(isa)` entries).
pub trait BlockModel {
    /// Visible units `V`.
    fn visible(&self) -> usize;
    /// Hidden units `H`.
    fn hidden(&self) -> usize;
    /// Length of the parameter (and gradient) slice.
    fn param_len(&self) -> usize;
    /// Workspace entries per row beside the row's visible and hidden values.
    fn row_work(&self) -> usize;
    /// [`BlockModel::hidden_fields_pre`] without prepacked operands (each product packs its
    /// own).
    fn hidden_fields(
        &self,
        isa: Isa,
        s: &[f32],
        phi: &mut [f32],
        work: &mut [f32],
        pack: &mut [f32],
    ) {
        self.hidden_fields_pre(isa, s, phi, work, (pack, &[]));
    }
    /// [`BlockModel::visible_fields_pre`] without prepacked operands.
    fn visible_fields(
        &self,
        isa: Isa,
        h: &[f32],
        psi: &mut [f32],
        work: &mut [f32],
        pack: &mut [f32],
    ) {
        self.visible_fields_pre(isa, h, psi, work, (pack, &[]));
    }
    /// The factor `c` that [`BlockModel::accumulate_block`] takes for a phase of weight
    /// `weight` over `n` rows.
    fn phase_scale(&self, weight: f32, n: usize) -> f32;
    /// Entries of the buffer [`BlockModel::prepack`] fills at level `isa`; 0 (the default)
    /// for a model that packs nothing ahead.
    fn prepack_len(&self, _isa: Isa) -> usize {
        0
    }
    /// Packs the model's fixed GEMM operands (the `B` of its block products) once, for blocks
    /// of at most `rows` rows, into `out` ([`BlockModel::prepack_len`] entries): the block
    /// methods `*_pre` then read them instead of packing them again in every block. With
    /// `gibbs` false only the operands of the phase (hidden fields, phase term) are packed,
    /// and [`BlockModel::visible_fields_pre`] must not be given `out`. The default packs
    /// nothing.
    fn prepack(&self, _isa: Isa, _rows: usize, _gibbs: bool, _out: &mut [f32]) {}
    /// Replaces `phi` (r×H) by the hidden fields of the rows of `s` (r×V). `work` holds at
    /// least `r·row_work` entries and keeps what [`BlockModel::accumulate_block_pre`] reuses.
    /// `pre` is what [`BlockModel::prepack`] wrote for this model, level and at least this
    /// block's rows, or empty: then each product packs its own operands. The same bits either
    /// way; a model that packs nothing ahead ignores `pre`.
    fn hidden_fields_pre(
        &self,
        isa: Isa,
        s: &[f32],
        phi: &mut [f32],
        work: &mut [f32],
        pack_pre: (&mut [f32], &[f32]),
    );
    /// Replaces `psi` (r×V) by the visible fields of the hidden rows `h` (r×H); `pre` as for
    /// [`BlockModel::hidden_fields_pre`] (packed with `gibbs` true).
    fn visible_fields_pre(
        &self,
        isa: Isa,
        h: &[f32],
        psi: &mut [f32],
        work: &mut [f32],
        pack_pre: (&mut [f32], &[f32]),
    );
    /// Adds `scale ·` the phase term of the block `s` to `grad`, with `t = tanh Φ(s)` and
    /// `work` as [`BlockModel::hidden_fields_pre`] left it; `pre` as there.
    #[allow(clippy::too_many_arguments)]
    fn accumulate_block_pre(
        &self,
        isa: Isa,
        s: &[f32],
        t: &[f32],
        work: &mut [f32],
        scale: f32,
        grad: &mut [f32],
        pack_pre: (&mut [f32], &[f32]),
    );
    /// [`BlockModel::accumulate_block_pre`] without prepacked operands.
    #[allow(clippy::too_many_arguments)]
    fn accumulate_block(
        &self,
        isa: Isa,
        s: &[f32],
        t: &[f32],
        work: &mut [f32],
        scale: f32,
        grad: &mut [f32],
        pack: &mut [f32],
    ) {
        self.accumulate_block_pre(isa, s, t, work, scale, grad, (pack, &[]));
    }
}

/// Scratch entries for blocks of `rows` rows of a model with `V`, `H` and `row_work`
/// ([`BlockModel::row_work`]) at kernel level `isa`:
/// `gemm_pack_len(isa) + max(rows, 1)·(V + H + row_work)`.
pub const fn block_scratch_len(
    isa: Isa,
    visible: usize,
    hidden: usize,
    row_work: usize,
    rows: usize,
) -> usize {
    let rows = if rows == 0 { 1 } else { rows };
    gemm_pack_len(isa) + rows * (visible + hidden + row_work)
}

/// Caller scratch split for blocks of at most `block_rows` rows, with the model's operands
/// packed ahead by the caller if it has them (`Workspace::with_prepacked`, inside the crate).
#[derive(Debug)]
pub struct Workspace<'a> {
    scratch: &'a mut [f32],
    block_rows: usize,
    isa: Isa,
    /// The operands the caller packed ahead ([`Workspace::with_prepacked`]; empty if none).
    shared: &'a [f32],
}

impl<'a> Workspace<'a> {
    /// Wraps `scratch` for blocks of at most `block_rows` rows (0 counts as 1) at the active
    /// kernel level ([`active`]).
    pub fn new(scratch: &'a mut [f32], block_rows: usize) -> Self {
        Self::with_isa(scratch, block_rows, active())
    }

    /// As [`Workspace::new`] at a given level.
    ///
    /// # Panics
    /// If the level is not available ([`Isa::available`]).
    pub fn with_isa(scratch: &'a mut [f32], block_rows: usize, isa: Isa) -> Self {
        assert!(isa.available(), "kernel level {} is not available", isa.name());
        Workspace { scratch, block_rows: block_rows.max(1), isa, shared: &[] }
    }

    /// As [`Workspace::with_isa`], with the operands already packed: `shared` is what
    /// [`BlockModel::prepack`] wrote for the model the workspace will serve, at level `isa`,
    /// for blocks of at least `block_rows` rows (`gibbs` true if Gibbs steps run), or empty.
    /// The blocks then read it and pack no operand ahead themselves, so one packed copy can
    /// serve several workspaces (the lanes of a training step). The results do not depend
    /// on it.
    pub(crate) fn with_prepacked(
        scratch: &'a mut [f32],
        block_rows: usize,
        isa: Isa,
        shared: &'a [f32],
    ) -> Self {
        Workspace { shared, ..Self::with_isa(scratch, block_rows, isa) }
    }

    /// The kernel level the blocks run at.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The configured rows per block.
    pub fn block_rows(&self) -> usize {
        self.block_rows
    }

    /// Splits for a set of `n ≥ 1` rows: the block size `b = min(block_rows, n)`, the packing
    /// buffer, `b` visible rows, `b` hidden rows, `b` rows of work, and the prepacking buffer
    /// ([`BlockModel::prepack_len`] entries past [`block_scratch_len`] if the scratch holds
    /// them, else empty).
    ///
    /// # Panics
    /// If the scratch is shorter than [`block_scratch_len`] for `b` rows.
    #[allow(clippy::type_complexity)]
    fn split<M: BlockModel + ?Sized>(
        &mut self,
        model: &M,
        n: usize,
    ) -> (usize, &mut [f32], &mut [f32], &mut [f32], &mut [f32], &mut [f32]) {
        let isa = self.isa;
        let b = self.block_rows.min(n).max(1);
        let (v, h, w) = (model.visible(), model.hidden(), model.row_work());
        let need = block_scratch_len(isa, v, h, w, b);
        assert!(
            self.scratch.len() >= need,
            "scratch holds {} entries, blocks of {b} rows need {need}",
            self.scratch.len()
        );
        let (pack, rest) = self.scratch.split_at_mut(gemm_pack_len(isa));
        let (vbuf, rest) = rest.split_at_mut(b * v);
        let (hbuf, rest) = rest.split_at_mut(b * h);
        let (work, rest) = rest.split_at_mut(b * w);
        let pre_len = model.prepack_len(isa);
        let pre = if rest.len() >= pre_len { &mut rest[..pre_len] } else { &mut rest[..0] };
        (b, pack, vbuf, hbuf, work, pre)
    }
}

/// Adds the phase term `weight · (−∂⟨F⟩_S/∂θ)` of the sample set `S` (rows of `samples`) to
/// `grad`, block by block: fields, `tanh`, [`BlockModel::accumulate_block`]. An empty set adds
/// nothing.
///
/// # Panics
/// If `samples.len()` is not a multiple of `V`, `grad.len()` is not the parameter length, or
/// the scratch is too short for one block.
pub fn accumulate_phase<M: BlockModel + ?Sized>(
    model: &M,
    samples: &[f32],
    weight: f32,
    grad: &mut [f32],
    ws: &mut Workspace<'_>,
) {
    let v = model.visible();
    assert_eq!(samples.len() % v, 0, "sample rows must have V entries");
    assert_eq!(grad.len(), model.param_len(), "grad must have param_len entries");
    let n = samples.len() / v;
    if n == 0 {
        return;
    }
    let (isa, shared) = (ws.isa, ws.shared);
    let scale = model.phase_scale(weight, n);
    let (b, pack, _, t, work, pre) = ws.split(model, n);
    let pre = prepacked(model, isa, b, n.div_ceil(b), (false, shared), pre);
    for s in samples.chunks(b * v) {
        phase_block(model, isa, s, scale, grad, (&mut *t, &mut *work, (&mut *pack, pre)));
    }
}

/// The operands the caller packed ahead (`shared`, if not empty); else prepacks the model's
/// operands into `pre` when the scratch holds them, the level packs, and more than one block
/// product will read them (`uses`). Returns what the blocks pass on (empty: they pack per
/// product). The results do not depend on it.
fn prepacked<'p, M: BlockModel + ?Sized>(
    model: &M,
    isa: Isa,
    b: usize,
    uses: usize,
    (gibbs, shared): (bool, &'p [f32]),
    pre: &'p mut [f32],
) -> &'p [f32] {
    if !shared.is_empty() {
        return shared;
    }
    if uses < 2 || pre.is_empty() {
        return &[];
    }
    model.prepack(isa, b, gibbs, pre);
    pre
}

/// A block's buffers: the hidden rows, the work rows, and the packing buffer with the
/// prepacked operands (empty if none).
type BlockBufs<'a> = (&'a mut [f32], &'a mut [f32], (&'a mut [f32], &'a [f32]));

/// Adds `scale ·` the phase term of one block of rows `s`: hidden fields into `t`, `tanh`,
/// then [`BlockModel::accumulate_block`]. `bufs` is `(t, work, (pack, prepacked))`.
fn phase_block<M: BlockModel + ?Sized>(
    model: &M,
    isa: Isa,
    s: &[f32],
    scale: f32,
    grad: &mut [f32],
    bufs: BlockBufs<'_>,
) {
    let (t, work, (pack, pre)) = bufs;
    let r = s.len() / model.visible();
    let (t, work) = (&mut t[..r * model.hidden()], &mut work[..r * model.row_work()]);
    model.hidden_fields_pre(isa, s, t, work, (&mut *pack, pre));
    tanh_in_place(t);
    model.accumulate_block_pre(isa, s, t, work, scale, grad, (pack, pre));
}

/// `steps` block Gibbs steps `v → h → v` on one block of rows, in place.
fn gibbs_block<M: BlockModel + ?Sized, R: RngCore + ?Sized>(
    model: &M,
    isa: Isa,
    v: &mut [f32],
    steps: u32,
    bufs: BlockBufs<'_>,
    rng: &mut R,
) {
    let (h, work, (pack, pre)) = bufs;
    let r = v.len() / model.visible();
    let (h, work) = (&mut h[..r * model.hidden()], &mut work[..r * model.row_work()]);
    for _ in 0..steps {
        model.hidden_fields_pre(isa, v, h, work, (&mut *pack, pre));
        sample_pm1_in_place(h, rng);
        model.visible_fields_pre(isa, h, v, work, (&mut *pack, pre));
        sample_pm1_in_place(v, rng);
    }
}

/// Runs `steps` block Gibbs steps on every row of `v` (rows of `V` spins, ±1 or 0 for a
/// neutral spin on entry; ±1 after a step), in place, block after block.
///
/// # Panics
/// If `v.len()` is not a multiple of `V` or the scratch is too short for one block.
pub fn gibbs_rows<M: BlockModel + ?Sized, R: RngCore + ?Sized>(
    model: &M,
    v: &mut [f32],
    steps: u32,
    ws: &mut Workspace<'_>,
    rng: &mut R,
) {
    let vv = model.visible();
    assert_eq!(v.len() % vv, 0, "chain rows must have V entries");
    let n = v.len() / vv;
    if n == 0 || steps == 0 {
        return;
    }
    let (isa, shared) = (ws.isa, ws.shared);
    let (b, pack, _, h, work, pre) = ws.split(model, n);
    let pre = prepacked(model, isa, b, n.div_ceil(b) * steps as usize, (true, shared), pre);
    for block in v.chunks_mut(b * vv) {
        gibbs_block(model, isa, block, steps, (&mut *h, &mut *work, (&mut *pack, pre)), rng);
    }
}

/// The CD-k negative phase: one chain starts at each row of `batch` (a 0 entry starts at `+1`,
/// [`sign_f32`]), runs `k` Gibbs steps, and the phase term of the final states with weight
/// `weight` (negative for a negative phase) is added to `grad`.
///
/// # Panics
/// If `batch.len()` is not a multiple of `V`, `grad.len()` is not the parameter length or the
/// scratch is too short for one block.
pub fn cd_negative_phase<M: BlockModel + ?Sized, R: RngCore + ?Sized>(
    model: &M,
    batch: &[f32],
    k: u32,
    weight: f32,
    grad: &mut [f32],
    ws: &mut Workspace<'_>,
    rng: &mut R,
) {
    let vv = model.visible();
    assert_eq!(batch.len() % vv, 0, "batch rows must have V entries");
    assert_eq!(grad.len(), model.param_len(), "grad must have param_len entries");
    let rows = batch.len() / vv;
    if rows == 0 {
        return;
    }
    let (isa, shared) = (ws.isa, ws.shared);
    let scale = model.phase_scale(weight, rows);
    let (b, pack, vbuf, h, work, pre) = ws.split(model, rows);
    let pre = prepacked(model, isa, b, rows.div_ceil(b) * (k as usize + 1), (true, shared), pre);
    for s in batch.chunks(b * vv) {
        let v = &mut vbuf[..s.len()];
        for (x, &y) in v.iter_mut().zip(s) {
            *x = sign_f32(y);
        }
        gibbs_block(model, isa, v, k, (&mut *h, &mut *work, (&mut *pack, pre)), rng);
        phase_block(model, isa, v, scale, grad, (&mut *h, &mut *work, (&mut *pack, pre)));
    }
}

/// The PCD-k negative phase: the packed chains in `chains` (`words_for(V)` words each) advance
/// `k` Gibbs steps in place (block by block: unpacked, stepped, packed back) and the phase
/// term of their new states with weight `weight` is added to `grad`. No chains, no term.
///
/// # Panics
/// If `chains.len()` is not a multiple of `words_for(V)`, `grad.len()` is not the parameter
/// length or the scratch is too short for one block.
pub fn pcd_negative_phase<M: BlockModel + ?Sized, R: RngCore + ?Sized>(
    model: &M,
    k: u32,
    chains: &mut [u64],
    weight: f32,
    grad: &mut [f32],
    ws: &mut Workspace<'_>,
    rng: &mut R,
) {
    let vv = model.visible();
    let nw = words_for(vv);
    assert_eq!(chains.len() % nw, 0, "chains must hold whole chains of words_for(V) words");
    assert_eq!(grad.len(), model.param_len(), "grad must have param_len entries");
    let n_chains = chains.len() / nw;
    if n_chains == 0 {
        return;
    }
    let (isa, shared) = (ws.isa, ws.shared);
    let scale = model.phase_scale(weight, n_chains);
    let (b, pack, vbuf, h, work, pre) = ws.split(model, n_chains);
    let pre =
        prepacked(model, isa, b, n_chains.div_ceil(b) * (k as usize + 1), (true, shared), pre);
    for words in chains.chunks_mut(b * nw) {
        let r = words.len() / nw;
        let v = &mut vbuf[..r * vv];
        for (w, row) in words.chunks_exact(nw).zip(v.chunks_exact_mut(vv)) {
            PackedSpins::new_unchecked(w, vv).to_f32(row);
        }
        gibbs_block(model, isa, v, k, (&mut *h, &mut *work, (&mut *pack, pre)), rng);
        for (w, row) in words.chunks_exact_mut(nw).zip(v.chunks_exact(vv)) {
            PackedSpins::new_unchecked(w, vv).copy_from_f32(row);
        }
        phase_block(model, isa, v, scale, grad, (&mut *h, &mut *work, (&mut *pack, pre)));
    }
}

/// Words for `n_chains` packed chains of `visible` spins: `n_chains · words_for(visible)`.
pub const fn chain_words_len(visible: usize, n_chains: usize) -> usize {
    n_chains * words_for(visible)
}

/// Fills packed chains of `visible` spins with uniform random ±1 spins (padding bits 0): one
/// `next_u64` per word, chain after chain.
///
/// # Panics
/// If `chains.len()` is not a multiple of `words_for(visible)`.
pub fn init_chains<R: RngCore + ?Sized>(chains: &mut [u64], visible: usize, rng: &mut R) {
    let nw = words_for(visible);
    assert_eq!(chains.len() % nw.max(1), 0, "chains must hold whole chains");
    for words in chains.chunks_exact_mut(nw.max(1)) {
        for (c, w) in words.iter_mut().enumerate() {
            *w = rng.next_u64() & word_mask(c, visible);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use crate::dense::{DenseDims, DenseRbm};
    use crate::ra::model::{Dims, RaModel};
    use crate::ra::pid::accumulate_phase_per_sample;
    use crate::test_util::{
        assert_within_phase_bound, available_isas, block_scratch, pm1, two_step_kernel, uniform,
    };
    use core::cell::RefCell;
    use rand_core::SeedableRng;
    use rand_pcg::Pcg64;
    use std::vec;
    use std::vec::Vec;

    fn random(rng: &mut Pcg64, n: usize) -> Vec<f32> {
        (0..n).map(|_| uniform(rng)).collect()
    }

    /// A model that records the rows of every block its phase sees.
    struct Counting<'a, M> {
        inner: &'a M,
        blocks: RefCell<Vec<usize>>,
    }

    impl<M: BlockModel> BlockModel for Counting<'_, M> {
        fn visible(&self) -> usize {
            self.inner.visible()
        }
        fn hidden(&self) -> usize {
            self.inner.hidden()
        }
        fn param_len(&self) -> usize {
            self.inner.param_len()
        }
        fn row_work(&self) -> usize {
            self.inner.row_work()
        }
        fn hidden_fields_pre(
            &self,
            isa: Isa,
            s: &[f32],
            phi: &mut [f32],
            work: &mut [f32],
            (pack, _): (&mut [f32], &[f32]),
        ) {
            self.inner.hidden_fields(isa, s, phi, work, pack);
        }
        fn visible_fields_pre(
            &self,
            isa: Isa,
            h: &[f32],
            psi: &mut [f32],
            work: &mut [f32],
            (pack, _): (&mut [f32], &[f32]),
        ) {
            self.inner.visible_fields(isa, h, psi, work, pack);
        }
        fn phase_scale(&self, weight: f32, n: usize) -> f32 {
            self.inner.phase_scale(weight, n)
        }
        fn accumulate_block_pre(
            &self,
            isa: Isa,
            s: &[f32],
            t: &[f32],
            work: &mut [f32],
            scale: f32,
            grad: &mut [f32],
            (pack, _): (&mut [f32], &[f32]),
        ) {
            self.blocks.borrow_mut().push(s.len() / self.inner.visible());
            self.inner.accumulate_block(isa, s, t, work, scale, grad, pack);
        }
    }

    /// `n` rows in blocks of `b = min(block_rows, n)`: full blocks, then the rest.
    fn split(n: usize, block_rows: usize) -> Vec<usize> {
        let b = block_rows.min(n);
        (0..n.div_ceil(b)).map(|j| b.min(n - j * b)).collect()
    }

    /// `block_rows` sets the block split (1, 7, n rows per block), and the blocked phase
    /// stays within the rounding bound of the per-sample oracle for each split, at every
    /// available level, on RA and dense models.
    #[test]
    #[cfg_attr(miri, ignore = "GEMMs over a hundred rows: too slow under Miri")]
    fn block_rows_sets_the_split_and_the_phase_stays_within_the_bound() {
        let mut rng = Pcg64::seed_from_u64(51);
        let n = 101;
        // RA: V = 30, H = 50, K = 6.
        let d = Dims::new(30, 50, 6);
        let xi = random(&mut rng, d.xi_len());
        let ra = RaModel::new_unchecked(&xi[..], d);
        let samples = pm1(&mut rng, n * d.visible);
        let mut small = vec![0.0; 2 * d.patterns + d.hidden];
        let mut want = vec![0.0; d.xi_len()];
        accumulate_phase_per_sample(&ra, &samples, 0.7, &mut want, &mut small);
        let (absxi, ones) =
            (xi.iter().map(|x| x.abs()).collect::<Vec<_>>(), vec![1.0; samples.len()]);
        let mut mag = vec![0.0; d.xi_len()];
        accumulate_phase_per_sample(
            &RaModel::new_unchecked(&absxi[..], d),
            &ones,
            0.7,
            &mut mag,
            &mut small,
        );
        // Dense with biases: V = 30, H = 50.
        let dd = DenseDims::new(30, 50, true);
        let p: Vec<f32> = random(&mut rng, dd.param_len()).iter().map(|x| 0.3 * x).collect();
        let dense = DenseRbm::new(&p[..], dd);
        let mut dwant = vec![0.0; dd.param_len()];
        let mut dsmall = vec![0.0; dd.hidden];
        crate::dense::accumulate_phase_per_sample(&dense, &samples, 0.7, &mut dwant, &mut dsmall);
        let absp: Vec<f32> = p.iter().map(|x| x.abs()).collect();
        let mut dmag = vec![0.0; dd.param_len()];
        let absm = DenseRbm::new(&absp[..], dd);
        crate::dense::accumulate_phase_per_sample(&absm, &ones, 0.7, &mut dmag, &mut dsmall);
        for isa in available_isas() {
            for rows in [1, 7, n] {
                let what = std::format!("{isa:?} block_rows {rows}");
                let counting = Counting { inner: &ra, blocks: RefCell::new(Vec::new()) };
                let mut scratch = block_scratch(&ra, isa, rows);
                let mut ws = Workspace::with_isa(&mut scratch, rows, isa);
                assert_eq!((ws.block_rows(), ws.isa()), (rows, isa));
                let mut got = vec![0.0; d.xi_len()];
                accumulate_phase(&counting, &samples, 0.7, &mut got, &mut ws);
                assert_eq!(*counting.blocks.borrow(), split(n, rows), "RA {what}");
                assert_within_phase_bound(&got, &want, &mag, 30 + 50 + 6 + n, &what);

                let counting = Counting { inner: &dense, blocks: RefCell::new(Vec::new()) };
                let mut scratch = block_scratch(&dense, isa, rows);
                let mut ws = Workspace::with_isa(&mut scratch, rows, isa);
                let mut got = vec![0.0; dd.param_len()];
                accumulate_phase(&counting, &samples, 0.7, &mut got, &mut ws);
                assert_eq!(*counting.blocks.borrow(), split(n, rows), "dense {what}");
                assert_within_phase_bound(&got, &dwant, &dmag, 30 + 50 + n, &what);
            }
        }
    }

    /// A scratch of one block of `b` rows is enough, and one entry less is a caller bug.
    #[test]
    #[should_panic(expected = "blocks of 3 rows need")]
    fn short_scratch_panics() {
        let d = Dims::new(4, 5, 2);
        let xi = [0.5f32; 18];
        let ra = RaModel::new_unchecked(&xi[..], d);
        let isa = crate::kernels::active();
        let mut scratch = block_scratch(&ra, isa, 3);
        let mut grad = vec![0.0; d.xi_len()];
        let rows = [1.0f32; 40];
        accumulate_phase(&ra, &rows, 1.0, &mut grad, &mut Workspace::new(&mut scratch, 3));
        scratch.pop();
        accumulate_phase(&ra, &rows, 1.0, &mut grad, &mut Workspace::new(&mut scratch, 3));
    }

    /// CD-0 on an RA model: the chains are the batch, so the negative phase cancels the
    /// positive phase for ±1 rows (to rounding). A row with entries off ±1 starts its chain at
    /// its sign, so it does not cancel.
    #[test]
    fn cd0_on_ra_cancels_the_positive_phase_for_pm1_rows() {
        let mut rng = Pcg64::seed_from_u64(52);
        let d = Dims::new(12, 9, 4);
        let xi = random(&mut rng, d.xi_len());
        let ra = RaModel::new_unchecked(&xi[..], d);
        let mut scratch = block_scratch(&ra, crate::kernels::active(), 3);
        let mut ws = Workspace::new(&mut scratch, 3);
        let mut batch = pm1(&mut rng, 5 * d.visible);
        let mut pos = vec![0.0; d.xi_len()];
        accumulate_phase(&ra, &batch, 1.0, &mut pos, &mut ws);
        let mut grad = pos.clone();
        cd_negative_phase(&ra, &batch, 0, -1.0, &mut grad, &mut ws, &mut rng);
        assert!(pos.iter().any(|&x| x.abs() > 1e-2));
        for (g, p) in grad.iter().zip(&pos) {
            assert!(g.abs() <= 1e-6 * (1.0 + p.abs()), "{g} left of {p}");
        }
        // Real-valued entries: the chain starts at sign(row), not at the row.
        for x in batch.iter_mut().step_by(3) {
            *x *= 0.3;
        }
        let mut pos = vec![0.0; d.xi_len()];
        accumulate_phase(&ra, &batch, 1.0, &mut pos, &mut ws);
        let mut signed = vec![0.0; d.xi_len()];
        let sb: Vec<f32> = batch.iter().map(|&x| sign_f32(x)).collect();
        accumulate_phase(&ra, &sb, 1.0, &mut signed, &mut ws);
        let mut grad = vec![0.0; d.xi_len()];
        cd_negative_phase(&ra, &batch, 0, 1.0, &mut grad, &mut ws, &mut rng);
        assert_eq!(grad, signed);
        assert!(grad.iter().zip(&pos).any(|(g, p)| (g - p).abs() > 1e-3));
    }

    /// CD-k on an RA model is `gibbs_rows` from the signed batch with the same stream and
    /// block size, then the phase of the final states: bit for bit. It is reproducible from
    /// the seed, and k = 1 differs from k = 0.
    #[test]
    fn cd_on_ra_is_block_gibbs_then_phase() {
        let mut rng = Pcg64::seed_from_u64(53);
        let d = Dims::new(10, 7, 3);
        let xi = random(&mut rng, d.xi_len());
        let ra = RaModel::new_unchecked(&xi[..], d);
        let mut batch = pm1(&mut rng, 10 * d.visible);
        batch[3] = 0.0;
        let mut scratch = block_scratch(&ra, crate::kernels::active(), 4);
        let mut ws = Workspace::new(&mut scratch, 4);
        let cd = |k: u32, seed: u64, ws: &mut Workspace<'_>| {
            let mut g = vec![0.0; d.xi_len()];
            cd_negative_phase(&ra, &batch, k, -0.5, &mut g, ws, &mut Pcg64::seed_from_u64(seed));
            g
        };
        let a = cd(2, 7, &mut ws);
        assert_eq!(a, cd(2, 7, &mut ws));
        assert_ne!(a, cd(2, 8, &mut ws));
        assert_ne!(cd(1, 7, &mut ws), cd(0, 7, &mut ws));
        let mut v: Vec<f32> = batch.iter().map(|&x| sign_f32(x)).collect();
        gibbs_rows(&ra, &mut v, 2, &mut ws, &mut Pcg64::seed_from_u64(7));
        assert!(v.iter().all(|&x| x == 1.0 || x == -1.0));
        let mut want = vec![0.0; d.xi_len()];
        accumulate_phase(&ra, &v, -0.5, &mut want, &mut ws);
        assert_eq!(a, want);
    }

    /// CD-1 on an RA model with V = H = K = 2 follows the exact two-step kernel: over 100k
    /// chains from one ±1 row, the negative phase is the kernel's average of the per-state
    /// phase terms within 5 standard errors per entry.
    #[test]
    #[cfg_attr(miri, ignore = "statistical: too slow under Miri")]
    fn cd1_on_ra_follows_the_two_step_kernel() {
        let d = Dims::new(2, 2, 2);
        let xi = [0.9f32, -0.3, 0.5, 1.2, -0.7, 0.4, -1.1, 0.8];
        let ra = RaModel::new_unchecked(&xi[..], d);
        let v0 = [1.0f32, -1.0];
        let n = 100_000;
        let batch: Vec<f32> = (0..n).flat_map(|_| v0).collect();
        let isa = crate::kernels::active();
        let mut scratch = block_scratch(&ra, isa, 4096);
        let mut ws = Workspace::new(&mut scratch, 4096);
        let mut grad = vec![0.0; d.xi_len()];
        cd_negative_phase(&ra, &batch, 1, 1.0, &mut grad, &mut ws, &mut Pcg64::seed_from_u64(54));
        let sk = 2.0f64.sqrt();
        let w = |i: usize, a: usize| {
            (0..2).map(|m| f64::from(xi[m * 4 + i]) * f64::from(xi[m * 4 + 2 + a])).sum::<f64>()
                / sk
        };
        let kernel = two_step_kernel(w, &[], &[], &[1.0, -1.0], 2);
        // The phase term of each final state, and its mean and spread under the kernel.
        let (mut mean, mut sq) = (vec![0.0f64; 8], vec![0.0f64; 8]);
        let mut small = [0.0f32; 6];
        for (s, &p) in kernel.iter().enumerate() {
            let row = [if s & 1 == 1 { 1.0 } else { -1.0 }, if s & 2 == 2 { 1.0 } else { -1.0 }];
            let mut term = vec![0.0; 8];
            accumulate_phase_per_sample(&ra, &row, 1.0, &mut term, &mut small);
            for j in 0..8 {
                mean[j] += p * f64::from(term[j]);
                sq[j] += p * f64::from(term[j]).powi(2);
            }
        }
        // The sign-symmetric states have equal terms: the check sees P(++) + P(−−).
        assert!(kernel[0] + kernel[3] > 0.05 && kernel[1] + kernel[2] > 0.05);
        for j in 0..8 {
            let se = ((sq[j] - mean[j] * mean[j]).max(0.0) / n as f64).sqrt();
            let got = f64::from(grad[j]);
            assert!((got - mean[j]).abs() < 5.0 * se + 1e-5, "[{j}]: {got} vs {} ({se})", mean[j]);
        }
    }

    /// PCD-k on an RA model: the packed chains advance exactly as `gibbs_rows` on their
    /// unpacked states (same stream, same blocks), keep their padding zero, and the phase is
    /// that of the new states.
    #[test]
    fn pcd_on_ra_advances_packed_chains_like_gibbs_rows() {
        let mut rng = Pcg64::seed_from_u64(55);
        let d = Dims::new(70, 6, 3);
        let xi = random(&mut rng, d.xi_len());
        let ra = RaModel::new_unchecked(&xi[..], d);
        let c = 9;
        let mut chains = vec![0u64; chain_words_len(70, c)];
        assert_eq!(chains.len(), 18);
        init_chains(&mut chains, 70, &mut rng);
        for w in chains.chunks_exact(2) {
            PackedSpins::new_checked(w, 70).expect("init keeps padding zero");
        }
        let mut direct = vec![0.0f32; c * 70];
        for (w, row) in chains.chunks_exact(2).zip(direct.chunks_exact_mut(70)) {
            PackedSpins::new_unchecked(w, 70).to_f32(row);
        }
        let mut scratch = block_scratch(&ra, crate::kernels::active(), 4);
        let mut ws = Workspace::new(&mut scratch, 4);
        let mut grad = vec![0.0; d.xi_len()];
        pcd_negative_phase(
            &ra,
            3,
            &mut chains,
            -1.0,
            &mut grad,
            &mut ws,
            &mut Pcg64::seed_from_u64(3),
        );
        gibbs_rows(&ra, &mut direct, 3, &mut ws, &mut Pcg64::seed_from_u64(3));
        for (w, row) in chains.chunks_exact(2).zip(direct.chunks_exact(70)) {
            let p = PackedSpins::new_checked(w, 70).expect("padding stays zero");
            let mut back = [0.0f32; 70];
            p.to_f32(&mut back);
            assert_eq!(&back[..], row);
        }
        let mut want = vec![0.0; d.xi_len()];
        accumulate_phase(&ra, &direct, -1.0, &mut want, &mut ws);
        assert_eq!(grad, want);
        assert!(grad.iter().any(|&g| g != 0.0));
    }

    /// The phase, Gibbs rows, CD and PCD of `model` at `isa` in blocks of `rows`, with or
    /// without room for the prepacked operands: the gradients' and chains' bits, and whether
    /// the prepacked buffer was written.
    fn run_all<M: BlockModel>(
        model: &M,
        isa: Isa,
        batch: &[f32],
        rows: usize,
        prepack: bool,
    ) -> (Vec<u32>, bool) {
        let (v, n) = (model.visible(), batch.len() / model.visible());
        let base = block_scratch(model, isa, rows).len();
        let extra = if prepack { model.prepack_len(isa) } else { 0 };
        let mut scratch = vec![7.5; base + extra];
        let mut ws = Workspace::with_isa(&mut scratch, rows, isa);
        let mut rng = Pcg64::seed_from_u64(78);
        let mut grad = vec![0.0; model.param_len()];
        accumulate_phase(model, batch, 0.7, &mut grad, &mut ws);
        let mut chains = batch.to_vec();
        gibbs_rows(model, &mut chains, 2, &mut ws, &mut rng);
        cd_negative_phase(model, batch, 1, -0.7, &mut grad, &mut ws, &mut rng);
        let mut words = vec![0u64; crate::spins::words_for(v) * n];
        init_chains(&mut words, v, &mut rng);
        pcd_negative_phase(model, 1, &mut words, -0.5, &mut grad, &mut ws, &mut rng);
        let written = scratch[base..].iter().any(|&x| x != 7.5);
        let mut bits: Vec<u32> = grad.iter().chain(&chains).map(|x| x.to_bits()).collect();
        bits.extend(words.iter().map(|&w| w as u32));
        (bits, written)
    }

    /// Packing the models' fixed operands once ahead gives the bits of packing them in every
    /// block (phase, Gibbs, CD, PCD; RA and dense; every level), with sizes that take the packed
    /// GEMM path in every block product, depths past one `KC` block, widths past one `NC`
    /// block and a short last block; at the SIMD levels the prepacked buffer is really used.
    #[test]
    #[cfg_attr(miri, ignore = "GEMMs over a hundred rows: too slow under Miri")]
    fn prepacked_operands_give_the_same_bits() {
        let mut rng = Pcg64::seed_from_u64(77);
        let (n, rows) = (150, 64);
        let d = Dims::new(200, 1100, 170);
        let xi: Vec<f32> = random(&mut rng, d.xi_len()).iter().map(|x| 0.2 * x).collect();
        let ra = RaModel::new_unchecked(&xi[..], d);
        let dd = DenseDims::new(200, 1100, true);
        let p: Vec<f32> = random(&mut rng, dd.param_len()).iter().map(|x| 0.05 * x).collect();
        let dense = DenseRbm::new(&p[..], dd);
        let batch = pm1(&mut rng, n * d.visible);
        for isa in available_isas() {
            let (want, _) = run_all(&ra, isa, &batch, rows, false);
            let (got, written) = run_all(&ra, isa, &batch, rows, true);
            assert!(got == want, "RA {isa:?}: prepacked bits differ");
            assert_eq!(written, isa != Isa::Scalar, "RA {isa:?}");
            let (want, _) = run_all(&dense, isa, &batch, rows, false);
            let (got, written) = run_all(&dense, isa, &batch, rows, true);
            assert!(got == want, "dense {isa:?}: prepacked bits differ");
            assert_eq!(written, isa != Isa::Scalar, "dense {isa:?}");
        }
    }
}
