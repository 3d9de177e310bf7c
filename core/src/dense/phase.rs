//! Phase terms of dense RBMs, one sample at a time: the oracle of the block phase
//! ([`crate::blocks::accumulate_phase`]) and the packed-spin phase.
//!
//! ```text
//! w · (1/|S|) Σ_s [v_s ⊗ tanh φ(v_s) | v_s | tanh φ(v_s)]      (∂W | ∂a | ∂b)
//! ```

use super::model::{DenseDims, DenseRbm};
use crate::num::axpy;
use crate::num::tanh;
use crate::spins::{words_for, PackedSpins, WORD_BITS};

/// Scratch length for [`accumulate_phase_per_sample`] and [`accumulate_phase_packed`]: `H`.
pub const fn phase_scratch_len(dims: DenseDims) -> usize {
    dims.hidden
}

/// Adds `scale·[v ⊗ T | v | T]` for one sample, with `T = tanh φ` already in `t`.
#[inline]
fn accumulate_sample_terms(d: DenseDims, v: &[f32], t: &[f32], scale: f32, grad: &mut [f32]) {
    let (gw, gbias) = grad.split_at_mut(d.weights_len());
    for (row, &vi) in gw.chunks_exact_mut(d.hidden).zip(v) {
        axpy(scale * vi, t, row);
    }
    if d.biases {
        let (ga, gb) = gbias.split_at_mut(d.visible);
        axpy(scale, v, ga);
        axpy(scale, t, gb);
    }
}

/// The block phase ([`crate::blocks::accumulate_phase`]) one sample at a time with plain loops (the oracle of the GEMM
/// path). `scratch` needs [`phase_scratch_len`] entries.
///
/// # Panics
/// If `samples.len()` is not a multiple of `V`, `grad.len() != param_len` or `scratch` is
/// shorter than [`phase_scratch_len`].
pub fn accumulate_phase_per_sample<S: AsRef<[f32]>>(
    model: &DenseRbm<S>,
    samples: &[f32],
    weight: f32,
    grad: &mut [f32],
    scratch: &mut [f32],
) {
    let d = model.dims();
    assert_eq!(samples.len() % d.visible, 0, "sample rows must have V entries");
    assert_eq!(grad.len(), d.param_len(), "grad must have param_len entries");
    assert!(scratch.len() >= phase_scratch_len(d), "scratch shorter than phase_scratch_len");
    let n = samples.len() / d.visible;
    if n == 0 {
        return;
    }
    let scale = weight / n as f32;
    let t = &mut scratch[..d.hidden];
    for v in samples.chunks_exact(d.visible) {
        model.hidden_field(v, t);
        for x in t.iter_mut() {
            *x = tanh(*x);
        }
        accumulate_sample_terms(d, v, t, scale, grad);
    }
}

/// The phase for samples stored as packed spins: `n_chains` vectors of
/// `words_for(V)` words each in `chains_words`. Fields come from
/// [`DenseRbm::hidden_field_packed`] (`colsum` of the current parameters); the `W` part adds
/// or subtracts `weight/n · tanh φ` into row `i` by the sign of `v_i`, with no multiplies.
///
/// # Panics
/// If `chains_words.len() != n_chains · words_for(V)`, `colsum.len() != H`,
/// `grad.len() != param_len` or `scratch` is shorter than [`phase_scratch_len`].
pub fn accumulate_phase_packed<S: AsRef<[f32]>>(
    model: &DenseRbm<S>,
    colsum: &[f32],
    chains_words: &[u64],
    n_chains: usize,
    weight: f32,
    grad: &mut [f32],
    scratch: &mut [f32],
) {
    let d = model.dims();
    let nw = words_for(d.visible);
    assert_eq!(chains_words.len(), n_chains * nw, "chains_words must hold n_chains·words_for(V)");
    assert_eq!(grad.len(), d.param_len(), "grad must have param_len entries");
    assert!(scratch.len() >= phase_scratch_len(d), "scratch shorter than phase_scratch_len");
    if n_chains == 0 {
        return;
    }
    let scale = weight / n_chains as f32;
    let t = &mut scratch[..d.hidden];
    let (gw, gbias) = grad.split_at_mut(d.weights_len());
    for words in chains_words.chunks_exact(nw) {
        let v = PackedSpins::new_unchecked(words, d.visible);
        model.hidden_field_packed(&v, colsum, t);
        // t ← scale·tanh φ; the W rows then take ±t.
        for x in t.iter_mut() {
            *x = scale * tanh(*x);
        }
        for (c, &word) in words.iter().enumerate() {
            let start = c * WORD_BITS;
            let end = (start + WORD_BITS).min(d.visible);
            for (b, row) in
                gw[start * d.hidden..end * d.hidden].chunks_exact_mut(d.hidden).enumerate()
            {
                if (word >> b) & 1 == 1 {
                    for (g, &x) in row.iter_mut().zip(t.iter()) {
                        *g += x;
                    }
                } else {
                    for (g, &x) in row.iter_mut().zip(t.iter()) {
                        *g -= x;
                    }
                }
            }
        }
        if d.biases {
            let (ga, gb) = gbias.split_at_mut(d.visible);
            for (c, chunk) in ga.chunks_mut(WORD_BITS).enumerate() {
                let word = words[c];
                for (b, g) in chunk.iter_mut().enumerate() {
                    if (word >> b) & 1 == 1 {
                        *g += scale;
                    } else {
                        *g -= scale;
                    }
                }
            }
            for (g, &x) in gb.iter_mut().zip(t.iter()) {
                *g += x;
            }
        }
    }
}
