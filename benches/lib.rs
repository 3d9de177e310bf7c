//! # rapid-benches
//!
//! Helpers shared by the criterion benches of the rapid workspace: the paper's model sizes and
//! seeded random inputs.
//!
//! Every random value comes from a [`Pcg64`] seeded with an explicit `u64`, so a bench run
//! measures the same work each time. Spins are `f32` values `+1.0` or `−1.0`, laid out as the
//! core expects: a batch is `B` rows of `V` spins, and the patterns `Ξ` are one row-major
//! `K × (V+H)` slice (see `rapid_core::model`).
//!
//! # Instruction-set levels
//! The kernels pick their level at run time (rapid-core's `std` feature, which this package
//! enables), so the default build needs no `-C target-cpu` flags. Each bench binary starts with
//! [`report_isa`], which prints the detected level to stderr; the kernel benches run every
//! [`available_isas`] level through `rapid_core::kernels::force` and put it back with
//! [`restore_detected_isa`].
//!
//! [`fma_peak`] (x86-64 only) holds the register-only FMA loops behind the `fma_peak` bench
//! group: the ceiling the GEMM rates are compared against.
#![deny(missing_docs)]
#![deny(unsafe_code)]

use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg64;
use rapid_core::dense::DenseDims;
use rapid_core::kernels::{active, force, Isa};
use rapid_core::model::Dims;

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)] // the module's one `unsafe` call is behind run-time feature detection
pub mod fma_peak;
use rapid_core::train::{LrSchedule, NegativePhase, PidConfig, Projection, Sgd};

/// A [`Pcg64`] seeded from `seed` (through `SeedableRng::seed_from_u64`).
pub fn rng(seed: u64) -> Pcg64 {
    Pcg64::seed_from_u64(seed)
}

/// `n` uniform random spins (±1), one bit of a `next_u32` draw each, from `seed`.
pub fn random_spins(seed: u64, n: usize) -> Vec<f32> {
    let mut r = rng(seed);
    (0..n).map(|_| if r.next_u32() & 1 == 1 { 1.0 } else { -1.0 }).collect()
}

/// `n` values uniform in `[−scale, scale)` (24 random bits each), from `seed`: fields for the
/// activation and draw kernels, real-valued GEMM operands, small dense weights.
pub fn random_fields(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut r = rng(seed);
    (0..n)
        .map(|_| ((r.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0) * 2.0 - 1.0) * scale)
        .collect()
}

/// `batch` random ±1 images of `V` spins each (`batch · V` entries, row-major), from `seed`.
pub fn random_batch(seed: u64, dims: Dims, batch: usize) -> Vec<f32> {
    random_spins(seed, batch * dims.visible)
}

/// Uniform random ±1 patterns `Ξ` (`K·(V+H)` entries), the paper's initialisation, from
/// `seed`.
pub fn random_patterns(seed: u64, dims: Dims) -> Vec<f32> {
    random_spins(seed, dims.xi_len())
}

/// One of the paper's training set-ups, as far as one update step is concerned.
#[derive(Clone, Copy, Debug)]
pub struct PaperSize {
    /// Short name for bench ids (`bars4x4`, `bas12x12`, `mnist`).
    pub name: &'static str,
    /// Layer sizes `V`, `H`, `K`.
    pub dims: Dims,
    /// Images per update.
    pub batch: usize,
    /// Training configuration (negative phase `pid`; benches may override it).
    pub config: PidConfig,
}

/// Bars 4×4: V = 16, H = 1000, K = 8, batch 3, SGD η = 0.02, sign projection each epoch.
pub const BARS_4X4: PaperSize = PaperSize {
    name: "bars4x4",
    dims: Dims::new(16, 1000, 8),
    batch: 3,
    config: PidConfig {
        negative: NegativePhase::Patterns,
        sgd: Sgd { lr: 0.02, momentum: 0.0, weight_decay: 0.0 },
        projection: Projection::Sign { every: 0 },
        schedule: LrSchedule { decay: 0.96, min: 1e-5, start_epoch: 0 },
    },
};

/// BAS 12×12: V = 144, H = 1000, K = 40, batch 120, the Bars optimiser settings.
pub const BAS_12X12: PaperSize = PaperSize {
    name: "bas12x12",
    dims: Dims::new(144, 1000, 40),
    batch: 120,
    config: BARS_4X4.config,
};

/// MNIST size: V = 784, H = 3000, K = 200, batch 8000, SGD η = 0.015, clamp(1) after every
/// update, η decay 0.99 after epoch 100 down to 1e−3. (The paper trains MNIST with
/// `pid-gibbs:1`; this constant says `pid`, like the other sizes.)
pub const MNIST: PaperSize = PaperSize {
    name: "mnist",
    dims: Dims::new(784, 3000, 200),
    batch: 8000,
    config: PidConfig {
        negative: NegativePhase::Patterns,
        sgd: Sgd { lr: 0.015, momentum: 0.0, weight_decay: 0.0 },
        projection: Projection::Clamp { bound: 1.0 },
        schedule: LrSchedule { decay: 0.99, min: 1e-3, start_epoch: 100 },
    },
};

/// The dense RBM of the CD/PCD baselines at a paper size: `V` and `H` of `size`, no biases
/// (the harness default for `cd`/`pcd`).
pub const fn dense_dims(size: &PaperSize) -> DenseDims {
    DenseDims::new(size.dims.visible, size.dims.hidden, false)
}

/// Prints `<bench>: kernel level <level> (detected; available: …)` to stderr, so a bench log
/// shows which variant the dispatched (non-forced) code used. Call it first in `main`.
pub fn report_isa(bench: &str) {
    let levels: Vec<&str> = available_isas().map(Isa::name).collect();
    eprintln!(
        "{bench}: kernel level {} (detected; available: {})",
        active().name(),
        levels.join(" ")
    );
}

/// Every level this CPU can run, lowest first (`scalar` always).
pub fn available_isas() -> impl Iterator<Item = Isa> {
    Isa::ALL.into_iter().filter(|isa| isa.available())
}

/// Makes the kernels use the detected (best) level again after a bench forced another.
pub fn restore_detected_isa() {
    force(Isa::detect()).expect("the detected level is available");
}

/// Multiply-adds of one PID step with the `pid` negative phase, `≈ (B + K)·K·(2V + 3H)`
/// (overlaps, hidden field, projections and the rank-one gradient updates per sample), for
/// turning a measured time into an arithmetic rate.
pub const fn pid_step_macs(dims: Dims, batch: usize) -> u64 {
    let per_sample = dims.patterns * (2 * dims.visible + 3 * dims.hidden);
    ((batch + dims.patterns) * per_sample) as u64
}

/// The sampling settings of a benchmark group: with `slow = Some(t)`, criterion's minimum of 10
/// flat samples within `t` (for steps that take seconds); otherwise 1 s of warm-up and 4 s of
/// measurement.
pub fn configure_group<M: criterion::measurement::Measurement>(
    group: &mut criterion::BenchmarkGroup<'_, M>,
    slow: Option<std::time::Duration>,
) {
    use std::time::Duration;
    match slow {
        Some(time) => {
            group
                .sample_size(10)
                .sampling_mode(criterion::SamplingMode::Flat)
                .warm_up_time(Duration::from_millis(1))
                .measurement_time(time);
        }
        None => {
            group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_seeded_spins() {
        let a = random_patterns(7, BARS_4X4.dims);
        assert_eq!(a.len(), BARS_4X4.dims.xi_len());
        assert!(a.iter().all(|&x| x == 1.0 || x == -1.0));
        assert_eq!(a, random_patterns(7, BARS_4X4.dims));
        assert_ne!(a, random_patterns(8, BARS_4X4.dims));
        let b = random_batch(1, BAS_12X12.dims, BAS_12X12.batch);
        assert_eq!(b.len(), 120 * 144);
    }

    #[test]
    fn fields_are_seeded_and_in_range() {
        let a = random_fields(3, 1000, 4.0);
        assert!(a.iter().all(|&x| (-4.0..4.0).contains(&x)));
        assert!(a.iter().any(|&x| x < -3.0) && a.iter().any(|&x| x > 3.0));
        assert_eq!(a, random_fields(3, 1000, 4.0));
    }

    #[test]
    fn restoring_gives_the_detected_level() {
        force(Isa::Scalar).unwrap();
        assert_eq!(active(), Isa::Scalar);
        restore_detected_isa();
        assert_eq!(active(), Isa::detect());
        assert_eq!(available_isas().next(), Some(Isa::Scalar));
    }

    #[test]
    fn paper_configs_are_valid() {
        for s in [BARS_4X4, BAS_12X12, MNIST] {
            assert!(s.dims.validate().is_ok(), "{}", s.name);
            assert!(s.config.validate().is_ok(), "{}", s.name);
            assert!(dense_dims(&s).validate().is_ok(), "{}", s.name);
        }
    }
}
