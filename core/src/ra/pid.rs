//! PID on RA models: the phase term, the negative sets of `pid`, `pid-hebb` and
//! `pid-gibbs:k`.
//!
//! # Equations
//! For a sample set `S`, with `T_s = tanh φ(v_s)` (H), `m_s = Ξ_v v_s` (K), `u_s = Ξ_h T_s` (K):
//!
//! ```text
//! g_v[k][i] = (1/(|S|√K)) Σ_s u_{s,k} v_{s,i}
//! g_h[k][α] = (1/(|S|√K)) Σ_s m_{s,k} T_{s,α}
//! ```
//!
//! This is `−∂⟨F⟩_S/∂ξ`, the log-likelihood ascent direction of one phase. The step direction
//! is `∇ = g(batch) − g(S⁻)` with the negative set chosen by [`NegativePhase`]:
//!
//! * [`NegativePhase::Patterns`] (`pid`): `S⁻ = {sign(ξᵏ_v)}`, the K visible patterns;
//! * [`NegativePhase::Hebb`] (`pid-hebb`): the paper's eq. 6,
//!   `g_v⁻ = (Ξ_hΞ_hᵀ)Ξ_v/(K√K)`, `g_h⁻ = (Ξ_vΞ_vᵀ)Ξ_h/(K√K)`;
//! * [`NegativePhase::Gibbs`] (`pid-gibbs:k`): chains seeded at `ξᵏ_v` as stored, `k` block
//!   Gibbs steps each, `S⁻` = the final visible states.
//!
//! `sign(0) = +1` everywhere ([`crate::spins::sign_f32`]).
//!
//! # Computation
//! The phase term runs in blocks of rows as five GEMMs that never form `W`
//! ([`crate::blocks::accumulate_phase`] with the RA model's [`crate::blocks::BlockModel`]
//! fields); [`accumulate_phase_per_sample`] is its oracle. The training step that combines
//! the phases with the optimiser is [`crate::step`].

use rand_core::RngCore;

use super::model::RaModel;
use crate::blocks::{gibbs_rows, Workspace};
use crate::num::tanh;
use crate::num::{axpy, dot};
use crate::spins::sign_f32;

/// How the negative (model) phase of the gradient is estimated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NegativePhase {
    /// `pid`: the signed visible patterns as the K negative samples (the authors' code).
    Patterns,
    /// `pid-hebb`: `⟨v_i h_α⟩_model ≈ (1/K)Σ_m ξᵐ_i ξᵐ_α` (the paper's eq. 6, literally).
    Hebb,
    /// `pid-gibbs:k`: `steps` block Gibbs steps from each visible pattern.
    Gibbs {
        /// Gibbs steps per chain (at least 1).
        steps: u32,
    },
}

/// Adds `scale · [u vᵀ | m Tᵀ]` for one sample `v` to `grad` (the per-sample term of `g` before
/// the `1/(|S|√K)` factor, which the caller folds into `scale`). `scratch` needs `2K + H`.
fn accumulate_sample<S: AsRef<[f32]>>(
    model: &RaModel<S>,
    v: &[f32],
    scale: f32,
    grad: &mut [f32],
    scratch: &mut [f32],
) {
    let d = model.dims();
    let (m, rest) = scratch.split_at_mut(d.patterns);
    let (u, rest) = rest.split_at_mut(d.patterns);
    let t = &mut rest[..d.hidden];
    model.hidden_field(v, m, t);
    for x in t.iter_mut() {
        *x = tanh(*x);
    }
    model.projections(t, u);
    let w = d.width();
    for k in 0..d.patterns {
        let row = &mut grad[k * w..(k + 1) * w];
        let (gv, gh) = row.split_at_mut(d.visible);
        axpy(scale * u[k], v, gv);
        axpy(scale * m[k], t, gh);
    }
}

/// The phase term of a sample set one sample at a time with plain loops: the scalar oracle
/// of the block phase ([`crate::blocks::accumulate_phase`]). `scratch` needs `2K + H` entries.
///
/// # Panics
/// If `samples.len()` is not a multiple of `V`, `grad.len() != K(V+H)` or `scratch` is
/// shorter than `2K + H`.
pub fn accumulate_phase_per_sample<S: AsRef<[f32]>>(
    model: &RaModel<S>,
    samples: &[f32],
    sign: f32,
    grad: &mut [f32],
    scratch: &mut [f32],
) {
    let d = model.dims();
    assert_eq!(samples.len() % d.visible, 0, "sample rows must have V entries");
    assert_eq!(grad.len(), d.xi_len(), "grad must have K·(V+H) entries");
    assert!(scratch.len() >= 2 * d.patterns + d.hidden, "scratch shorter than 2K + H");
    let n = samples.len() / d.visible;
    if n == 0 {
        return;
    }
    let scale = sign * model.inv_sqrt_k() / n as f32;
    for v in samples.chunks_exact(d.visible) {
        accumulate_sample(model, v, scale, grad, scratch);
    }
}

/// Writes the `K` negative samples `S⁻` of `negative` into `out` (K rows of V) and returns
/// `true`; for [`NegativePhase::Hebb`], which has no samples, returns `false` and leaves
/// `out` alone. `Patterns` gives `sign(ξᵏ_v)`; `Gibbs { steps }` starts one chain at each
/// `ξᵏ_v` and runs `steps` block Gibbs steps on all of them as GEMMs with bulk draws
/// ([`crate::blocks::gibbs_rows`], in blocks of the workspace's rows).
///
/// # Panics
/// If `out.len() != K·V` or, for `Gibbs`, the workspace is too short for one block.
#[must_use = "false means there are no negative samples: add the Hebb term instead"]
pub fn negative_samples<S: AsRef<[f32]>, R: RngCore + ?Sized>(
    model: &RaModel<S>,
    negative: NegativePhase,
    out: &mut [f32],
    ws: &mut Workspace<'_>,
    rng: &mut R,
) -> bool {
    let d = model.dims();
    assert_eq!(out.len(), d.patterns * d.visible, "out must have K·V entries");
    match negative {
        NegativePhase::Patterns => {
            for (k, row) in out.chunks_exact_mut(d.visible).enumerate() {
                for (x, &p) in row.iter_mut().zip(model.xi_v(k)) {
                    *x = sign_f32(p);
                }
            }
            true
        }
        NegativePhase::Gibbs { steps } => {
            for (k, row) in out.chunks_exact_mut(d.visible).enumerate() {
                row.copy_from_slice(model.xi_v(k));
            }
            gibbs_rows(model, out, steps, ws, rng);
            true
        }
        NegativePhase::Hebb => false,
    }
}

/// Subtracts the eq.-6 negative phase of `pid-hebb` from `grad`:
/// `g_v⁻ = (Ξ_hΞ_hᵀ)Ξ_v/(K√K)`, `g_h⁻ = (Ξ_vΞ_vᵀ)Ξ_h/(K√K)`. `gram` needs `K` entries. Cost
/// O(K²(V+H)).
///
/// # Panics
/// If `grad.len() != K(V+H)` or `gram` is shorter than `K`.
pub fn accumulate_hebb_negative<S: AsRef<[f32]>>(
    model: &RaModel<S>,
    grad: &mut [f32],
    gram: &mut [f32],
) {
    let d = model.dims();
    assert_eq!(grad.len(), d.xi_len(), "grad must have K·(V+H) entries");
    assert!(gram.len() >= d.patterns, "gram must have K entries");
    let kk = d.patterns;
    let c = model.inv_sqrt_k() / kk as f32;
    let w = d.width();
    let gram = &mut gram[..kk];
    for k in 0..kk {
        for (m, g) in gram.iter_mut().enumerate() {
            *g = dot(model.xi_h(k), model.xi_h(m));
        }
        for (m, &g) in gram.iter().enumerate() {
            axpy(-c * g, model.xi_v(m), &mut grad[k * w..k * w + d.visible]);
        }
        for (m, g) in gram.iter_mut().enumerate() {
            *g = dot(model.xi_v(k), model.xi_v(m));
        }
        for (m, &g) in gram.iter().enumerate() {
            axpy(-c * g, model.xi_h(m), &mut grad[k * w + d.visible..(k + 1) * w]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use crate::blocks::accumulate_phase;
    use crate::num::log_2cosh_f64;
    use crate::ra::model::Dims;
    use crate::test_util::{
        assert_ascent_matches_finite_difference, assert_within_phase_bound, available_isas,
        block_scratch, pm1, uniform,
    };
    use rand_core::SeedableRng;
    use rand_pcg::Pcg64;
    use std::vec;
    use std::vec::Vec;

    fn random_xi(rng: &mut Pcg64, d: Dims) -> Vec<f32> {
        (0..d.xi_len()).map(|_| uniform(rng)).collect()
    }

    /// Mean free energy of the batch in f64, straight from the definition with a formed W.
    fn mean_free_energy(xi: &[f64], d: Dims, batch: &[f32]) -> f64 {
        let w = d.width();
        let sk = (d.patterns as f64).sqrt();
        let n = batch.len() / d.visible;
        let mut total = 0.0;
        for v in batch.chunks_exact(d.visible) {
            for a in 0..d.hidden {
                let mut phi = 0.0;
                for (i, &vi) in v.iter().enumerate() {
                    let wia: f64 = (0..d.patterns)
                        .map(|k| xi[k * w + i] * xi[k * w + d.visible + a])
                        .sum::<f64>()
                        / sk;
                    phi += wia * f64::from(vi);
                }
                total -= log_2cosh_f64(phi);
            }
        }
        total / n as f64
    }

    /// Both the blocked phase and its per-sample oracle are `−∂⟨F⟩_batch/∂ξ`, checked by
    /// central differences (a neutral 0 spin included).
    #[test]
    fn phase_equals_finite_difference_of_free_energy() {
        let mut rng = Pcg64::seed_from_u64(21);
        for &(v, h, k, b) in &[(4, 5, 2, 3), (7, 3, 3, 2), (5, 9, 4, 1)] {
            let d = Dims::new(v, h, k);
            let xi = random_xi(&mut rng, d);
            let mut batch = pm1(&mut rng, b * v);
            batch[1] = 0.0;
            let model = RaModel::new_unchecked(&xi[..], d);
            let f = |x: &[f64]| mean_free_energy(x, d, &batch);
            let mut grad = vec![0.0; d.xi_len()];
            let mut scratch = block_scratch(&model, crate::kernels::active(), b);
            accumulate_phase(&model, &batch, 1.0, &mut grad, &mut Workspace::new(&mut scratch, b));
            assert_ascent_matches_finite_difference(&grad, &xi, f, &std::format!("{v}x{h}x{k}"));
            let mut oracle = vec![0.0; d.xi_len()];
            let mut small = vec![0.0; 2 * k + h];
            accumulate_phase_per_sample(&model, &batch, 1.0, &mut oracle, &mut small);
            assert_ascent_matches_finite_difference(&oracle, &xi, f, "per sample");
        }
    }

    /// The blocked GEMM phase equals the per-sample oracle within the rounding bound at every
    /// available kernel level, for one block of all rows and for one-row blocks, with sample
    /// counts around the GEMM block sizes.
    #[test]
    #[cfg_attr(miri, ignore = "GEMMs over hundreds of samples: too slow under Miri")]
    fn blocked_phase_matches_per_sample_oracle() {
        let mut rng = Pcg64::seed_from_u64(27);
        for &(v, h, k, n) in
            &[(16, 100, 8, 3), (5, 9, 1, 1), (33, 70, 17, 129), (20, 40, 5, 300), (7, 65, 3, 128)]
        {
            let d = Dims::new(v, h, k);
            let xi = random_xi(&mut rng, d);
            let model = RaModel::new_unchecked(&xi[..], d);
            let samples = pm1(&mut rng, n * v);
            let mut want = vec![0.0; d.xi_len()];
            let mut small = vec![0.0; 2 * k + h];
            accumulate_phase_per_sample(&model, &samples, -0.5, &mut want, &mut small);
            // Σ_s |term| ≤ the same phase over |ξ| and all-ones rows.
            let mut mag = vec![0.0f32; d.xi_len()];
            let absxi: Vec<f32> = xi.iter().map(|x| x.abs()).collect();
            let ones = vec![1.0f32; n * v];
            let absm = RaModel::new_unchecked(&absxi[..], d);
            accumulate_phase_per_sample(&absm, &ones, 0.5, &mut mag, &mut small);
            assert!(want.iter().any(|&x| x != 0.0));
            for isa in available_isas() {
                for rows in [n, 1] {
                    let mut got = vec![0.0; d.xi_len()];
                    let mut scratch = block_scratch(&model, isa, rows);
                    let mut ws = Workspace::with_isa(&mut scratch, rows, isa);
                    accumulate_phase(&model, &samples, -0.5, &mut got, &mut ws);
                    let what = std::format!("{isa:?} {v}x{h}x{k} n{n} block_rows {rows}");
                    assert_within_phase_bound(&got, &want, &mag, v + h + k + n, &what);
                }
            }
        }
    }

    /// `pid-hebb` subtracts its definition: ⟨v_i h_α⟩ ≈ (1/K)Σ_m ξᵐ_i ξᵐ_α, chained through
    /// ∂W_iα/∂ξᵏ_i = ξᵏ_α/√K and ∂W_iα/∂ξᵏ_α = ξᵏ_i/√K; it adds to what `grad` held.
    #[test]
    fn hebb_negative_phase_equals_slow_definition() {
        let mut rng = Pcg64::seed_from_u64(22);
        let d = Dims::new(6, 7, 3);
        let xi = random_xi(&mut rng, d);
        let model = RaModel::new_unchecked(&xi[..], d);
        let mut grad = vec![0.25; d.xi_len()];
        let mut gram = vec![0.0; d.patterns];
        accumulate_hebb_negative(&model, &mut grad, &mut gram);
        let (kk, sk) = (d.patterns as f64, (d.patterns as f64).sqrt());
        let corr = |i: usize, a: usize| -> f64 {
            (0..d.patterns)
                .map(|m| f64::from(model.xi_v(m)[i]) * f64::from(model.xi_h(m)[a]))
                .sum::<f64>()
                / kk
        };
        let w = d.width();
        for k in 0..d.patterns {
            for i in 0..d.visible {
                let want: f64 = 0.25
                    - (0..d.hidden)
                        .map(|a| corr(i, a) * f64::from(model.xi_h(k)[a]) / sk)
                        .sum::<f64>();
                assert!((f64::from(grad[k * w + i]) - want).abs() < 1e-5, "g_v[{k}][{i}]");
            }
            for a in 0..d.hidden {
                let want: f64 = 0.25
                    - (0..d.visible)
                        .map(|i| corr(i, a) * f64::from(model.xi_v(k)[i]) / sk)
                        .sum::<f64>();
                let got = f64::from(grad[k * w + d.visible + a]);
                assert!((got - want).abs() < 1e-5, "g_h[{k}][{a}]");
            }
        }
    }

    /// `pid` takes `sign(ξᵏ_v)` as its negatives (`sign(±0) = +1`); `pid-hebb` has none and
    /// leaves the buffer alone.
    #[test]
    fn pattern_negatives_are_signed_visible_patterns() {
        let mut rng = Pcg64::seed_from_u64(23);
        let d = Dims::new(5, 4, 3);
        let mut xi = random_xi(&mut rng, d);
        xi[0] = 0.0;
        xi[d.width() + 1] = -0.0;
        let model = RaModel::new_unchecked(&xi[..], d);
        let mut scratch = block_scratch(&model, crate::kernels::active(), d.patterns);
        let mut ws = Workspace::new(&mut scratch, d.patterns);
        let mut out = vec![7.0; d.patterns * d.visible];
        assert!(negative_samples(&model, NegativePhase::Patterns, &mut out, &mut ws, &mut rng));
        for k in 0..d.patterns {
            for (i, &p) in model.xi_v(k).iter().enumerate() {
                let want = if p < 0.0 { -1.0 } else { 1.0 };
                assert_eq!(out[k * d.visible + i], want, "pattern {k} entry {i} ({p})");
            }
        }
        assert_eq!(out[d.visible + 1], 1.0, "sign(−0) = +1");
        let mut untouched = vec![7.0; d.patterns * d.visible];
        assert!(!negative_samples(&model, NegativePhase::Hebb, &mut untouched, &mut ws, &mut rng));
        assert!(untouched.iter().all(|&x| x == 7.0));
    }

    /// `pid-gibbs` negatives are ±1, reproducible from the seed, and change with it.
    #[test]
    #[cfg_attr(miri, ignore = "65 s under Miri; the Gibbs negatives run there in blocks::tests")]
    fn gibbs_negatives_are_seeded_and_reproducible() {
        let d = Dims::new(6, 8, 20);
        let mut rng = Pcg64::seed_from_u64(24);
        let xi = random_xi(&mut rng, d);
        let model = RaModel::new_unchecked(&xi[..], d);
        let run = |seed: u64, block_rows: usize| {
            let mut scratch = block_scratch(&model, crate::kernels::active(), block_rows);
            let mut ws = Workspace::new(&mut scratch, block_rows);
            let mut out = vec![0.0; d.patterns * d.visible];
            let mut r = Pcg64::seed_from_u64(seed);
            let neg = NegativePhase::Gibbs { steps: 2 };
            assert!(negative_samples(&model, neg, &mut out, &mut ws, &mut r));
            out
        };
        let a = run(1, 7);
        assert_eq!(a, run(1, 7));
        assert_ne!(a, run(2, 7));
        assert!(a.iter().all(|&x| x == 1.0 || x == -1.0));
    }
}
