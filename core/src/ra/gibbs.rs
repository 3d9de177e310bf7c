//! Block Gibbs sampling of RA models.
//!
//! # Equations
//! `P(h_α = +1 | v) = σ(2φ_α)`, `φ = Wᵀv`; `P(v_i = +1 | h) = σ(2ψ_i)`, `ψ = W h`
//! (DESIGN.md §1; the factor 2 comes from ±1 spins). Fields are computed low-rank
//! ([`RaModel::hidden_field`]), so one half-step costs O(K(V+H)).
//!
//! The single-chain functions draw exactly one `next_u32` per unit, in unit order;
//! [`gibbs_rows`] runs many chains as GEMMs with bulk draws
//! ([`crate::kernels::sample_pm1_in_place`]). Either way a run is reproducible from the RNG's
//! seed.

use rand_core::RngCore;

use crate::model::RaModel;
use crate::num::uniform01;

/// Scratch length for the Gibbs functions: `K`.
pub const fn gibbs_scratch_len(dims: crate::model::Dims) -> usize {
    dims.patterns
}

/// Replaces each field value by a ±1 spin drawn with `P(+1) = σ(2·field)`, exactly as
/// [`crate::num::sample_spin`] would, unit by unit (one `next_u32` each, in order). The
/// probabilities are computed first in one vectorisable pass.
pub fn sample_spins_in_place<R: RngCore + ?Sized>(x: &mut [f32], rng: &mut R) {
    crate::kernels::sigmoid2_in_place(x);
    for xi in x.iter_mut() {
        *xi = if uniform01(rng) < *xi { 1.0 } else { -1.0 };
    }
}

/// Draws `h ~ P(h | v)` into `h`. `v` may hold any reals (0 acts as a neutral spin).
///
/// # Panics
/// If `v.len() != V`, `h.len() != H` or `scratch.len() < K`.
pub fn sample_hidden<S: AsRef<[f32]>, R: RngCore + ?Sized>(
    model: &RaModel<S>,
    v: &[f32],
    h: &mut [f32],
    scratch: &mut [f32],
    rng: &mut R,
) {
    let k = model.dims().patterns;
    model.hidden_field(v, &mut scratch[..k], h);
    sample_spins_in_place(h, rng);
}

/// Draws `v ~ P(v | h)` into `v`.
///
/// # Panics
/// If `h.len() != H`, `v.len() != V` or `scratch.len() < K`.
pub fn sample_visible<S: AsRef<[f32]>, R: RngCore + ?Sized>(
    model: &RaModel<S>,
    h: &[f32],
    v: &mut [f32],
    scratch: &mut [f32],
    rng: &mut R,
) {
    let k = model.dims().patterns;
    model.visible_field(h, &mut scratch[..k], v);
    sample_spins_in_place(v, rng);
}

/// One block Gibbs step `v → h → v`: `h ~ P(h|v)`, then `v ~ P(v|h)`.
///
/// # Panics
/// If `v.len() != V`, `h.len() != H` or `scratch.len() < K`.
pub fn gibbs_step<S: AsRef<[f32]>, R: RngCore + ?Sized>(
    model: &RaModel<S>,
    v: &mut [f32],
    h: &mut [f32],
    scratch: &mut [f32],
    rng: &mut R,
) {
    sample_hidden(model, v, h, scratch, rng);
    sample_visible(model, h, v, scratch, rng);
}

/// Runs `steps` block Gibbs steps on every row of `v` (rows of `V` spins, ±1 or 0 for a
/// neutral spin on entry; ±1 after a step), in place, in blocks of rows — as many as `scratch`
/// holds, see [`crate::train::phase_scratch_len`] (`b·(2K + H) + GEMM_PACK_LEN` for `b` rows).
/// Each block makes all its steps, then the next block starts. Per step the fields are four
/// GEMMs that never form `W` (`M = V Ξ_vᵀ`, `Φ = M Ξ_h/√K`, `U = H Ξ_hᵀ`, `Ψ = U Ξ_v/√K`), and the
/// draws are [`crate::kernels::sample_pm1_in_place`] over the block's hidden units, then over
/// its visible units. Reproducible from the RNG's seed for a given scratch length.
///
/// # Panics
/// If `v.len()` is not a multiple of `V` or `scratch` holds less than one row.
pub fn gibbs_rows<S: AsRef<[f32]>, R: RngCore + ?Sized>(
    model: &RaModel<S>,
    v: &mut [f32],
    steps: u32,
    scratch: &mut [f32],
    rng: &mut R,
) {
    use crate::kernels::{active, sample_pm1_in_place};
    let d = model.dims();
    assert_eq!(v.len() % d.visible, 0, "chain rows must have V entries");
    let n = v.len() / d.visible;
    if n == 0 || steps == 0 {
        return;
    }
    let (kk, vv, hh) = (d.patterns, d.visible, d.hidden);
    let (pack, m, u, h) = crate::train::phase_buffers(d, scratch, n);
    let b = m.len() / kk;
    let isa = active();
    for block in v.chunks_mut(b * vv) {
        let r = block.len() / vv;
        let (m, u, h) = (&mut m[..r * kk], &mut u[..r * kk], &mut h[..r * hh]);
        for _ in 0..steps {
            model.hidden_fields_rows(isa, block, m, h, pack);
            sample_pm1_in_place(h, rng);
            // Ψ replaces the block in place: the fields are read from `u`, not from `block`.
            model.visible_fields_rows(isa, h, u, block, pack);
            sample_pm1_in_place(block, rng);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dims;
    use crate::num::sigmoid;
    use rand_core::SeedableRng;
    use rand_pcg::Pcg64;

    #[test]
    #[cfg_attr(miri, ignore = "100k draws: too slow under Miri")]
    fn hidden_draws_match_conditional_probabilities() {
        let dims = Dims::new(3, 2, 2);
        // ξ¹ = (1, −1, 1 | 0.5, −1), ξ² = (0.2, 1, 1 | 1, 0.3)
        let xi = [1.0, -1.0, 1.0, 0.5, -1.0, 0.2, 1.0, 1.0, 1.0, 0.3];
        let model = RaModel::new(&xi[..], dims);
        let v = [1.0, 1.0, -1.0];
        let (mut m, mut phi) = ([0.0; 2], [0.0; 2]);
        model.hidden_field(&v, &mut m, &mut phi);
        let mut rng = Pcg64::seed_from_u64(3);
        let n = 100_000;
        let mut ups = [0usize; 2];
        let mut h = [0.0; 2];
        let mut s = [0.0; 2];
        for _ in 0..n {
            sample_hidden(&model, &v, &mut h, &mut s, &mut rng);
            for a in 0..2 {
                ups[a] += usize::from(h[a] > 0.0);
                assert!(h[a] == 1.0 || h[a] == -1.0);
            }
        }
        for a in 0..2 {
            let p = sigmoid(2.0 * phi[a]) as f64;
            let se = (p * (1.0 - p) / n as f64).sqrt();
            assert!((ups[a] as f64 / n as f64 - p).abs() < 5.0 * se, "unit {a}");
        }
    }

    #[test]
    fn bulk_draws_equal_unit_draws() {
        let fields: [f32; 7] = [0.0, 0.3, -2.0, 9.0, -9.0, 0.01, f32::NAN];
        let mut a = fields;
        let mut r1 = Pcg64::seed_from_u64(8);
        sample_spins_in_place(&mut a, &mut r1);
        let mut r2 = Pcg64::seed_from_u64(8);
        let b: [f32; 7] = core::array::from_fn(|i| crate::num::sample_spin(fields[i], &mut r2));
        assert_eq!(a, b);
    }

    #[test]
    fn gibbs_is_reproducible_from_the_seed() {
        let dims = Dims::new(4, 3, 2);
        let xi = [1.0, -1.0, 1.0, 1.0, -1.0, 1.0, 1.0, -1.0, 1.0, 1.0, 1.0, -1.0, 1.0, -1.0];
        let model = RaModel::new(&xi[..], dims);
        let run = |seed| {
            let mut rng = Pcg64::seed_from_u64(seed);
            let (mut v, mut h, mut s) = ([1.0f32; 4], [0.0f32; 3], [0.0f32; 2]);
            for _ in 0..10 {
                gibbs_step(&model, &mut v, &mut h, &mut s, &mut rng);
            }
            (v, h)
        };
        assert_eq!(run(5), run(5));
    }

    /// Batched steps follow the exact two-step kernel: from a fixed `v` on a model with V = 2,
    /// H = 2, `P(v' | v) = Σ_h P(h | v) P(v' | h)` by enumeration, against 200k chains (one
    /// block of GEMMs and bulk draws per half-step).
    #[test]
    #[cfg_attr(miri, ignore = "statistical: too slow under Miri")]
    fn gibbs_rows_follow_the_two_step_kernel() {
        extern crate std;
        use std::vec;
        let dims = crate::model::Dims::new(2, 2, 2);
        let xi = [0.9f32, -0.3, 0.5, 1.2, -0.7, 0.4, -1.1, 0.8];
        let model = RaModel::new(&xi[..], dims);
        let v0 = [1.0f32, -1.0];
        let n = 200_000;
        let mut v: std::vec::Vec<f32> = (0..n).flat_map(|_| v0).collect();
        let mut scratch = vec![0.0; crate::train::phase_scratch_len(dims, n)];
        gibbs_rows(&model, &mut v, 1, &mut scratch, &mut Pcg64::seed_from_u64(9));
        // Exact kernel in f64 through the formed W.
        let k = 2.0f64.sqrt();
        let w = |i: usize, a: usize| {
            (0..2).map(|m| xi[m * 4 + i] as f64 * xi[m * 4 + 2 + a] as f64).sum::<f64>() / k
        };
        let p_up = |field: f64| 1.0 / (1.0 + (-2.0 * field).exp());
        let spin = |bit: usize, i: usize| if bit >> i & 1 == 1 { 1.0 } else { -1.0 };
        for target in 0..4usize {
            let mut want = 0.0;
            for hb in 0..4usize {
                let mut p = 1.0;
                for a in 0..2 {
                    let phi: f64 = (0..2).map(|i| w(i, a) * v0[i] as f64).sum();
                    let pa = p_up(phi);
                    p *= if spin(hb, a) > 0.0 { pa } else { 1.0 - pa };
                }
                for i in 0..2 {
                    let psi: f64 = (0..2).map(|a| w(i, a) * spin(hb, a)).sum();
                    let pi = p_up(psi);
                    p *= if spin(target, i) > 0.0 { pi } else { 1.0 - pi };
                }
                want += p;
            }
            let got = v
                .chunks_exact(2)
                .filter(|r| (0..2).all(|i| r[i] as f64 == spin(target, i)))
                .count() as f64
                / n as f64;
            let sd = (want * (1.0 - want) / n as f64).sqrt();
            assert!((got - want).abs() < 5.0 * sd, "v' = {target:02b}: {got} vs {want}");
        }
    }
}
