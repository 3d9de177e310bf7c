//! Per-chain Gibbs sampling of dense RBMs, on `f32` rows or packed spins.
//!
//! `P(h_α = +1 | v) = σ(2φ_α)`, `P(v_i = +1 | h) = σ(2ψ_i)`. Each function draws one
//! `next_u32` per unit ([`crate::num::sample_spin`]): hidden units in order, then visible units
//! in order, so a chain is reproducible from the RNG's seed. The block chains that training
//! runs are [`crate::blocks::gibbs_rows`].

use rand_core::RngCore;

use super::model::{DenseDims, DenseRbm};
use crate::num::dot;
use crate::num::sample_spin;
use crate::ra::gibbs::sample_spins_in_place;
use crate::spins::PackedSpins;

/// Scratch length for [`gibbs_packed`]: `H` (holds the last hidden state after the call).
pub const fn gibbs_scratch_len(dims: DenseDims) -> usize {
    dims.hidden
}

/// Draws `h ~ P(h | v)` into `h` for a real-valued `v` (0 acts as a neutral spin, as in the
/// reconstruction test, which zeroes the unkept pixels). One `next_u32` per hidden unit, in order.
///
/// # Panics
/// If `v.len() != V` or `h.len() != H`.
pub fn sample_hidden<S: AsRef<[f32]>, R: RngCore + ?Sized>(
    model: &DenseRbm<S>,
    v: &[f32],
    h: &mut [f32],
    rng: &mut R,
) {
    model.hidden_field(v, h);
    sample_spins_in_place(h, rng);
}

/// Draws `v ~ P(v | h)` into `v` as `±1.0`. One `next_u32` per visible unit, in order.
///
/// # Panics
/// If `h.len() != H` or `v.len() != V`.
pub fn sample_visible<S: AsRef<[f32]>, R: RngCore + ?Sized>(
    model: &DenseRbm<S>,
    h: &[f32],
    v: &mut [f32],
    rng: &mut R,
) {
    model.visible_field(h, v);
    sample_spins_in_place(v, rng);
}

/// Draws `h ~ P(h | v)` into `h` for a packed `v` (fields by
/// [`DenseRbm::hidden_field_packed`]). One `next_u32` per hidden unit, in order.
///
/// # Panics
/// If `v.len() != V`, `colsum.len() != H` or `h.len() != H`.
pub fn sample_hidden_packed<S, T, R>(
    model: &DenseRbm<S>,
    colsum: &[f32],
    v: &PackedSpins<T>,
    h: &mut [f32],
    rng: &mut R,
) where
    S: AsRef<[f32]>,
    T: AsRef<[u64]>,
    R: RngCore + ?Sized,
{
    model.hidden_field_packed(v, colsum, h);
    sample_spins_in_place(h, rng);
}

/// Draws `v ~ P(v | h)` into the packed `v` (padding bits stay 0). One `next_u32` per visible
/// unit, in order.
///
/// # Panics
/// If `h.len() != H` or `v.len() != V`.
pub fn sample_visible_packed<S, T, R>(
    model: &DenseRbm<S>,
    h: &[f32],
    v: &mut PackedSpins<T>,
    rng: &mut R,
) where
    S: AsRef<[f32]>,
    T: AsRef<[u64]> + AsMut<[u64]>,
    R: RngCore + ?Sized,
{
    let d = model.dims();
    assert_eq!(h.len(), d.hidden, "h must have H entries");
    assert_eq!(v.len(), d.visible, "v must have V spins");
    let a = model.a();
    for i in 0..d.visible {
        let psi = dot(model.row(i), h) + a.map_or(0.0, |a| a[i]);
        v.set(i, sample_spin(psi, rng) > 0.0);
    }
}

/// Runs `steps` block Gibbs steps `v → h → v` on a packed visible state, in place. `h` lives
/// in `scratch[..H]` as `±1.0` and holds the last hidden draw after the call (untouched when
/// `steps = 0`); `v` is written back as bits, padding bits stay 0. Each step draws one
/// `next_u32` per hidden unit in order, then one per visible unit in order.
///
/// `colsum` must be [`DenseRbm::column_sums`] of the current parameters.
///
/// # Panics
/// If `v.len() != V`, `colsum.len() != H` or `scratch` is shorter than [`gibbs_scratch_len`].
pub fn gibbs_packed<S, T, R>(
    model: &DenseRbm<S>,
    colsum: &[f32],
    v: &mut PackedSpins<T>,
    steps: u32,
    scratch: &mut [f32],
    rng: &mut R,
) where
    S: AsRef<[f32]>,
    T: AsRef<[u64]> + AsMut<[u64]>,
    R: RngCore + ?Sized,
{
    let d = model.dims();
    assert!(scratch.len() >= gibbs_scratch_len(d), "scratch shorter than gibbs_scratch_len");
    assert_eq!(v.len(), d.visible, "v must have V spins");
    assert_eq!(colsum.len(), d.hidden, "colsum must have H entries");
    let h = &mut scratch[..d.hidden];
    for _ in 0..steps {
        sample_hidden_packed(model, colsum, v, h, rng);
        sample_visible_packed(model, h, v, rng);
    }
}
