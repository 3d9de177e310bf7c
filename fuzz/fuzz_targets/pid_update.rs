//! One PID step, `pid_gradient` then `sgd_update`, on small models built from the input.
//!
//! Sizes `V, H, K ∈ 1..=8` and `B ∈ 0..=4` rows; patterns, batch and velocity are dyadic values
//! in `[−2, 2)` (one byte each; the batch may instead be ±1 spins); learning rate in `(0, 1]`,
//! momentum in `[0, 1)`, weight decay in `[0, 0.1]`; the negative phase is `pid`, `pid-hebb` or
//! `pid-gibbs:k` with `k ∈ 1..=3`. Checks:
//! * no panic, and every gradient, velocity and pattern entry stays finite;
//! * the low-rank positive phase (`accumulate_phase`) equals the same gradient computed in
//!   `f64` from the explicitly formed `W = Ξ_vᵀΞ_h/√K` (`RaModel::weights`):
//!   `g_v[k][i] = (1/(B√K)) Σ_s v_i Σ_α ξᵏ_α tanh φ_α`, `g_h[k][α] = (1/(B√K)) Σ_s (ξᵏ_v·v) tanh φ_α`,
//!   `φ = Wᵀv`, within `1e−3·(1 + |g|)` plus a rounding allowance for cancellation;
//! * the same seed gives the same step direction.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand_core::SeedableRng;
use rand_pcg::Pcg32;
use rapid_core::model::{Dims, RaModel};
use rapid_core::train::{
    accumulate_phase, pid_gradient, pid_scratch_len, sgd_update, NegativePhase, Sgd,
};

#[path = "../common/bytes.rs"]
mod bytes;
use bytes::Bytes;

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes(data);
    let dims = Dims::new(input.size(8), input.size(8), input.size(8));
    let (nv, nh, nk) = (dims.visible, dims.hidden, dims.patterns);
    let rows = usize::from(input.u8() % 5);
    let divisor = usize::from(input.u8() % 6);
    let negative = match input.u8() % 5 {
        0 => NegativePhase::Patterns,
        1 => NegativePhase::Hebb,
        s => NegativePhase::Gibbs { steps: u32::from(s - 1) },
    };
    let spin_batch = input.u8() & 1 == 1;
    let sgd = Sgd {
        lr: (f32::from(input.u16()) + 1.0) / 65_536.0,
        momentum: f32::from(input.u16()) / 65_536.0,
        weight_decay: f32::from(input.u8()) / 2550.0,
    };
    assert!(sgd.validate().is_ok(), "{sgd:?}");
    let seed = u64::from(input.u16());

    let mut xi: Vec<f32> = (0..dims.xi_len()).map(|_| input.unit()).collect();
    let batch: Vec<f32> = (0..rows * nv)
        .map(|_| {
            let x = input.unit();
            if spin_batch {
                if x < 0.0 {
                    -1.0
                } else {
                    1.0
                }
            } else {
                x
            }
        })
        .collect();
    let mut velocity: Vec<f32> = (0..dims.xi_len()).map(|_| input.unit()).collect();

    let mut scratch = vec![0.0f32; pid_scratch_len(dims)];
    let model = RaModel::new(&xi[..], dims);

    // The positive phase against a formed-W computation in f64.
    let mut pos = vec![0.0f32; dims.xi_len()];
    accumulate_phase(&model, &batch, 1.0, &mut pos, &mut scratch);
    if rows == 0 {
        assert!(pos.iter().all(|&g| g == 0.0), "an empty batch must add nothing");
    } else {
        let mut w = vec![0.0f32; dims.weights_len()];
        model.weights(&mut w);
        let scale = 1.0 / (rows as f64 * (nk as f64).sqrt());
        // want[j] and the sum of |terms| behind it (for the cancellation allowance).
        let mut want = vec![0.0f64; dims.xi_len()];
        let mut mass = vec![0.0f64; dims.xi_len()];
        let width = dims.width();
        for v in batch.chunks_exact(nv) {
            let t: Vec<f64> = (0..nh)
                .map(|a| (0..nv).map(|i| f64::from(w[i * nh + a]) * f64::from(v[i])).sum::<f64>())
                .map(f64::tanh)
                .collect();
            for k in 0..nk {
                let xv = model.xi_v(k);
                let xh = model.xi_h(k);
                let u: f64 = (0..nh).map(|a| f64::from(xh[a]) * t[a]).sum();
                let u_abs: f64 = (0..nh).map(|a| (f64::from(xh[a]) * t[a]).abs()).sum();
                let m: f64 = (0..nv).map(|i| f64::from(xv[i]) * f64::from(v[i])).sum();
                let m_abs: f64 = (0..nv).map(|i| (f64::from(xv[i]) * f64::from(v[i])).abs()).sum();
                for i in 0..nv {
                    want[k * width + i] += scale * f64::from(v[i]) * u;
                    mass[k * width + i] += scale * f64::from(v[i]).abs() * u_abs;
                }
                for a in 0..nh {
                    want[k * width + nv + a] += scale * m * t[a];
                    mass[k * width + nv + a] += scale * m_abs * t[a].abs();
                }
            }
        }
        for j in 0..dims.xi_len() {
            let (got, want, mass) = (f64::from(pos[j]), want[j], mass[j]);
            let tol = 1e-3 * (1.0 + want.abs()) + 1e-4 * mass;
            assert!(
                (got - want).abs() <= tol,
                "positive phase entry {j} of V={nv} H={nh} K={nk} B={rows}: \
                 low-rank {got} vs formed W {want} (tolerance {tol})"
            );
        }
    }

    // The full step direction, twice from the same seed: finite and reproducible.
    let mut grad = vec![0.0f32; dims.xi_len()];
    pid_gradient(
        &model,
        &batch,
        divisor,
        negative,
        &mut grad,
        &mut scratch,
        &mut Pcg32::seed_from_u64(seed),
    );
    assert!(grad.iter().all(|g| g.is_finite()), "non-finite gradient {grad:?}");
    let mut again = vec![1.0f32; dims.xi_len()];
    pid_gradient(
        &model,
        &batch,
        divisor,
        negative,
        &mut again,
        &mut scratch,
        &mut Pcg32::seed_from_u64(seed),
    );
    assert!(grad.iter().zip(&again).all(|(a, b)| a.to_bits() == b.to_bits()), "not reproducible");

    sgd_update(&mut xi, &mut velocity, &grad, &sgd);
    assert!(velocity.iter().all(|d| d.is_finite()), "non-finite velocity {velocity:?}");
    assert!(xi.iter().all(|x| x.is_finite()), "non-finite patterns {xi:?}");
});
