//! Block Gibbs sampling of RA models.
//!
//! # Equations
//! `P(h_α = +1 | v) = σ(2φ_α)`, `φ = Wᵀv`; `P(v_i = +1 | h) = σ(2ψ_i)`, `ψ = W h`
//! (the factor 2 comes from ±1 spins). Fields are computed low-rank
//! ([`RaModel::hidden_field`]), so one half-step costs O(K(V+H)).
//!
//! These single-chain functions draw exactly one `next_u32` per unit, in unit order, so a run
//! is reproducible from the RNG's seed. Many chains at once, as GEMMs with bulk draws, are
//! [`crate::blocks::gibbs_rows`].

use rand_core::RngCore;

use super::model::RaModel;
use crate::num::uniform01;

/// Scratch length for the Gibbs functions: `K`.
pub const fn gibbs_scratch_len(dims: super::model::Dims) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::num::sigmoid;
    use crate::ra::model::Dims;
    use rand_core::SeedableRng;
    use rand_pcg::Pcg64;

    #[test]
    #[cfg_attr(miri, ignore = "100k draws: too slow under Miri")]
    fn hidden_draws_match_conditional_probabilities() {
        let dims = Dims::new(3, 2, 2);
        // ξ¹ = (1, −1, 1 | 0.5, −1), ξ² = (0.2, 1, 1 | 1, 0.3)
        let xi = [1.0, -1.0, 1.0, 0.5, -1.0, 0.2, 1.0, 1.0, 1.0, 0.3];
        let model = RaModel::new_unchecked(&xi[..], dims);
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
        let model = RaModel::new_unchecked(&xi[..], dims);
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
        let dims = Dims::new(2, 2, 2);
        let xi = [0.9f32, -0.3, 0.5, 1.2, -0.7, 0.4, -1.1, 0.8];
        let model = RaModel::new_unchecked(&xi[..], dims);
        let v0 = [1.0f32, -1.0];
        let n = 200_000;
        let mut v: std::vec::Vec<f32> = (0..n).flat_map(|_| v0).collect();
        let isa = crate::kernels::active();
        let mut scratch = vec![0.0; crate::blocks::block_scratch_len(isa, 2, 2, 4, n)];
        let mut ws = crate::blocks::Workspace::with_isa(&mut scratch, n, isa);
        crate::blocks::gibbs_rows(&model, &mut v, 1, &mut ws, &mut Pcg64::seed_from_u64(9));
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
