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

/// The kernel levels this CPU runs.
pub fn available_isas() -> impl Iterator<Item = crate::kernels::Isa> {
    crate::kernels::Isa::ALL.into_iter().filter(|i| i.available())
}

/// Zeroed scratch for blocks of `rows` rows of `model` at level `isa`
/// ([`crate::blocks::block_scratch_len`]).
pub fn block_scratch<M: crate::blocks::BlockModel + ?Sized>(
    model: &M,
    isa: crate::kernels::Isa,
    rows: usize,
) -> Vec<f32> {
    let (v, h, w) = (model.visible(), model.hidden(), model.row_work());
    std::vec![0.0; crate::blocks::block_scratch_len(isa, v, h, w, rows)]
}

/// Asserts that a blocked phase `got` is within the rounding bound of its per-sample oracle
/// `want`: `8·depth·ε·(mag + 1e−3)` per entry, where `mag` is the same phase over absolute
/// values (an upper bound of `Σ_s |term|`) and `depth` the longest chain of sums behind an
/// entry (e.g. `V + H + K + n`).
pub fn assert_within_phase_bound(got: &[f32], want: &[f32], mag: &[f32], depth: usize, what: &str) {
    assert_eq!(got.len(), want.len());
    for (i, ((g, w), m)) in got.iter().zip(want).zip(mag).enumerate() {
        let bound = 8.0 * depth as f32 * f32::EPSILON * (m + 1e-3);
        assert!((g - w).abs() <= bound, "{what} [{i}]: {g} vs {w} (bound {bound})");
    }
}

/// The exact one-step Gibbs kernel `P(v' | v₀) = Σ_h P(h | v₀) P(v' | h)` of a ±1 RBM with
/// weights `w(i, α)` and biases `a` (V, or empty) and `b` (H, or empty), by enumeration in
/// `f64`. Entry `s` is the probability of the state whose bit `i` says `v'_i = +1`.
pub fn two_step_kernel(
    w: impl Fn(usize, usize) -> f64,
    a: &[f64],
    b: &[f64],
    v0: &[f64],
    hidden: usize,
) -> Vec<f64> {
    let visible = v0.len();
    let p_up = |field: f64| 1.0 / (1.0 + (-2.0 * field).exp());
    let spin = |bits: usize, i: usize| if bits >> i & 1 == 1 { 1.0 } else { -1.0 };
    let bias = |x: &[f64], i: usize| x.get(i).copied().unwrap_or(0.0);
    (0..1usize << visible)
        .map(|target| {
            let mut total = 0.0;
            for hb in 0..1usize << hidden {
                let mut p = 1.0;
                for al in 0..hidden {
                    let phi: f64 =
                        (0..visible).map(|i| w(i, al) * v0[i]).sum::<f64>() + bias(b, al);
                    let pa = p_up(phi);
                    p *= if spin(hb, al) > 0.0 { pa } else { 1.0 - pa };
                }
                for i in 0..visible {
                    let psi: f64 =
                        (0..hidden).map(|al| w(i, al) * spin(hb, al)).sum::<f64>() + bias(a, i);
                    let pi = p_up(psi);
                    p *= if spin(target, i) > 0.0 { pi } else { 1.0 - pi };
                }
                total += p;
            }
            total
        })
        .collect()
}

/// The state index of a ±1 row for [`two_step_kernel`]: bit `i` set when `v_i > 0`.
pub fn state_index(v: &[f32]) -> usize {
    v.iter().enumerate().map(|(i, &x)| usize::from(x > 0.0) << i).sum()
}

/// Asserts that `counts` (out of `n`) match the probabilities `want` within 5 standard
/// errors each.
pub fn assert_counts_match(counts: &[usize], n: usize, want: &[f64], what: &str) {
    assert!((want.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{what}: kernel must sum to 1");
    for (s, (&c, &p)) in counts.iter().zip(want).enumerate() {
        let got = c as f64 / n as f64;
        let se = (p * (1.0 - p) / n as f64).sqrt().max(1e-12);
        assert!((got - p).abs() < 5.0 * se, "{what}: state {s:b}: {got} vs exact {p} ({se})");
    }
}
