//! # rapid-benches
//!
//! Helpers shared by the criterion benches of the rapid workspace: the paper's model sizes and
//! training configurations, seeded random inputs, and the buffers of a training step.
//!
//! Every random value comes from a [`Pcg64`] seeded with an explicit `u64`, so a bench run
//! measures the same work each time. Spins are `f32` values `+1.0` or `−1.0`, laid out as the
//! core expects: a batch is `B` rows of `V` spins, and the patterns `Ξ` are one row-major
//! `K × (V+H)` slice (see `rapid_core::ra::model`).
//!
//! # Training steps
//! Every training-step bench runs the core's one step implementation,
//! `rapid_core::step::Engine::step` (lanes in order, optimiser, projection), over the buffers
//! of a [`StepBuffers`]: PID through `Shape::Ra` ([`PaperSize::config`]), CD-k and PCD-k
//! through `Shape::Dense` ([`dense_config`]).
//!
//! # Instruction-set levels
//! The kernels pick their level at run time (rapid-core's `std` feature, which this package
//! enables), so the default build needs no `-C target-cpu` flags. Each bench binary starts with
//! [`report_isa`], which prints the detected level to stderr; the kernel benches run every
//! [`available_isas`] level through `rapid_core::kernels::force` and put it back with
//! [`restore_detected_isa`].

#![deny(missing_docs)]
#![deny(unsafe_code)]

use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg64;
use rapid_core::blocks::BLOCK_ROWS;
use rapid_core::dense::DenseDims;
use rapid_core::kernels::{active, force, Isa};
use rapid_core::optim::{Adam, LrSchedule, Optimizer, Projection, Sgd};
use rapid_core::ra::model::Dims;
use rapid_core::step::{Buffers, Engine, Method, Shape, StepConfig};
use rapid_core::NegativePhase;

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
    /// Images per update (also `config.batch`).
    pub batch: usize,
    /// The RAPID training configuration (method `pid`; benches may override it), with the
    /// default block size [`BLOCK_ROWS`].
    pub config: StepConfig,
}

impl PaperSize {
    /// The RA shape of this size.
    pub const fn shape(&self) -> Shape {
        Shape::Ra(self.dims)
    }

    /// [`PaperSize::config`] with another method.
    pub const fn with_method(&self, method: Method) -> StepConfig {
        StepConfig { method, ..self.config }
    }
}

/// Bars 4×4: V = 16, H = 1000, K = 8, batch 3, SGD η = 0.02, sign projection each epoch
/// (`StepConfig::paper_bars`).
pub const BARS_4X4: PaperSize = PaperSize {
    name: "bars4x4",
    dims: Dims::new(16, 1000, 8),
    batch: 3,
    config: StepConfig::paper_bars(),
};

/// BAS 12×12: V = 144, H = 1000, K = 40, batch 120, the Bars optimiser settings.
pub const BAS_12X12: PaperSize = PaperSize {
    name: "bas12x12",
    dims: Dims::new(144, 1000, 40),
    batch: 120,
    config: StepConfig { batch: 120, ..StepConfig::paper_bars() },
};

/// MNIST size: V = 784, H = 3000, K = 200, batch 8000, SGD η = 0.015, clamp(1) after every
/// update, η decay 0.99 after epoch 100 down to 1e−3. (The paper trains MNIST with
/// `pid-gibbs:1`; this constant says `pid`, like the other sizes.)
pub const MNIST: PaperSize = PaperSize {
    name: "mnist",
    dims: Dims::new(784, 3000, 200),
    batch: 8000,
    config: StepConfig {
        method: Method::Pid(NegativePhase::Patterns),
        optimizer: Optimizer::Sgd(Sgd { lr: 0.015, momentum: 0.0, weight_decay: 0.0 }),
        projection: Projection::Clamp { bound: 1.0 },
        schedule: LrSchedule { decay: 0.99, min: 1e-3, start_epoch: 100 },
        batch: 8000,
        block_rows: BLOCK_ROWS,
    },
};

/// The dense RBM of the CD/PCD baselines at a paper size: `V` and `H` of `size`, no biases
/// (the harness default for `cd`/`pcd`).
pub const fn dense_dims(size: &PaperSize) -> DenseDims {
    DenseDims::new(size.dims.visible, size.dims.hidden, false)
}

/// The training configuration of a dense baseline (`cd:k`, `pcd:k`) at a paper size: the
/// paper's Adam (η = 0.001), no projection (dense models take none), no learning-rate decay,
/// `size`'s batch and the default block size.
pub const fn dense_config(size: &PaperSize, method: Method) -> StepConfig {
    StepConfig {
        method,
        optimizer: Optimizer::Adam(Adam {
            lr: 0.001,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            by_epoch: false,
        }),
        projection: Projection::None,
        schedule: LrSchedule { decay: 1.0, min: 0.0, start_epoch: 0 },
        batch: size.batch,
        block_rows: BLOCK_ROWS,
    }
}

/// Every buffer of an [`Engine`]'s training step, allocated at the lengths its `*_len`
/// methods give for the [`active`] kernel level.
#[derive(Clone, Debug)]
pub struct StepBuffers {
    /// The parameters.
    pub params: Vec<f32>,
    /// Optimiser state (zeros).
    pub opt: Vec<f32>,
    /// The update's gradient.
    pub grad: Vec<f32>,
    /// The second gradient of multi-lane updates.
    pub lane_grad: Vec<f32>,
    /// Negative samples of `pid` and `pid-gibbs`.
    pub negatives: Vec<f32>,
    /// PCD chains (zero bits: all −1; see `rapid_core::blocks::init_chains`).
    pub chains: Vec<u64>,
    /// Scratch.
    pub scratch: Vec<f32>,
}

impl StepBuffers {
    /// Buffers for `engine` holding the parameters `params`.
    ///
    /// # Panics
    /// If `params` does not have `engine.param_len()` entries.
    pub fn new(engine: &Engine, params: Vec<f32>) -> Self {
        let n = engine.param_len();
        assert_eq!(params.len(), n, "params must have param_len entries");
        StepBuffers {
            params,
            opt: vec![0.0; engine.opt_len()],
            grad: vec![0.0; n],
            lane_grad: vec![0.0; engine.lane_grad_len()],
            negatives: vec![0.0; engine.negatives_len()],
            chains: vec![0; engine.chain_words_len()],
            scratch: vec![0.0; engine.scratch_len(active())],
        }
    }

    /// The borrowed view [`Engine::step`] takes.
    pub fn buffers(&mut self) -> Buffers<'_> {
        Buffers {
            params: &mut self.params,
            opt: &mut self.opt,
            grad: &mut self.grad,
            lane_grad: &mut self.lane_grad,
            negatives: &mut self.negatives,
            chains: &mut self.chains,
            scratch: &mut self.scratch,
        }
    }
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
            assert_eq!(s.config.batch, s.batch, "{}", s.name);
            assert!(s.config.validate(s.shape()).is_ok(), "{}", s.name);
            let dense = Shape::Dense(dense_dims(&s));
            for method in [Method::Cd { k: 10 }, Method::Pcd { k: 10, chains: 2048 }] {
                assert!(dense_config(&s, method).validate(dense).is_ok(), "{}", s.name);
            }
        }
    }

    #[test]
    fn step_buffers_fit_the_engine() {
        let size = BARS_4X4;
        let gibbs = size.with_method(Method::Pid(NegativePhase::Gibbs { steps: 1 }));
        let mut engine = Engine::new(size.shape(), gibbs).unwrap();
        let mut bufs = StepBuffers::new(&engine, random_patterns(1, size.dims));
        let batch = random_batch(2, size.dims, size.batch);
        engine.step(&mut bufs.buffers(), &batch, None, None, &mut rng(3));
        engine.end_epoch(&mut bufs.params);
        assert!(bufs.params.iter().all(|&x| x == 1.0 || x == -1.0));
        let pcd = dense_config(&size, Method::Pcd { k: 1, chains: 64 });
        let mut engine = Engine::new(Shape::Dense(dense_dims(&size)), pcd).unwrap();
        let mut bufs = StepBuffers::new(&engine, random_fields(4, engine.param_len(), 0.01));
        assert_eq!(engine.lanes(), 2);
        engine.step(&mut bufs.buffers(), &batch, None, None, &mut rng(5));
        assert!(bufs.params.iter().all(|x| x.is_finite()));
    }
}
