//! Helpers shared by the unit tests (compiled for tests only).

extern crate std;
use std::vec::Vec;

use rand_core::RngCore;
use rand_pcg::Pcg64;

/// A uniform draw in `[−1, 1)`.
pub fn uniform(rng: &mut Pcg64) -> f32 {
    crate::num::uniform01(rng) * 2.0 - 1.0
}

/// `n` random ±1 spins.
pub fn pm1(rng: &mut Pcg64, n: usize) -> Vec<f32> {
    (0..n).map(|_| if rng.next_u32() & 1 == 1 { 1.0 } else { -1.0 }).collect()
}

/// Checks `analytic[j] ≈ −∂f/∂params[j]` for every `j` by central differences in `f64`
/// (step 1e−5, tolerance 1e−4·(1 + |fd|)); `f` is the mean free energy of a batch.
pub fn assert_ascent_matches_finite_difference(
    analytic: &[f32],
    params: &[f32],
    f: impl Fn(&[f64]) -> f64,
    what: &str,
) {
    let p64: Vec<f64> = params.iter().map(|&x| f64::from(x)).collect();
    let eps = 1e-5;
    for j in 0..params.len() {
        let (mut hi, mut lo) = (p64.clone(), p64.clone());
        hi[j] += eps;
        lo[j] -= eps;
        let fd = -(f(&hi) - f(&lo)) / (2.0 * eps);
        let g = f64::from(analytic[j]);
        assert!(
            (g - fd).abs() < 1e-4 * (1.0 + fd.abs()),
            "{what}: entry {j}: analytic {g} vs finite difference {fd}"
        );
    }
}

/// `−log Σ_h e^{−E(v,h)}` for a fixed `v`, by enumerating all `2^hidden` states `h` in `f64`:
/// the free energy `F(v)` by its definition.
pub fn free_energy_by_enumeration(hidden: usize, energy: impl Fn(&[f32]) -> f32) -> f64 {
    let mut z = 0.0f64;
    for bits in 0..(1u32 << hidden) {
        let h: Vec<f32> =
            (0..hidden).map(|a| if bits >> a & 1 == 1 { 1.0 } else { -1.0 }).collect();
        z += (-f64::from(energy(&h))).exp();
    }
    -z.ln()
}
