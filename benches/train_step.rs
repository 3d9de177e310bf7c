//! One PID training step at the paper's three sizes, through the core's one step
//! implementation: `rapid_core::step::Engine::step` on `Shape::Ra` (negative samples, the
//! lanes' phase terms, SGD update, projection).
//!
//! | group | V | H | K | batch | negative phases |
//! | --- | --- | --- | --- | --- | --- |
//! | `train_step/bars4x4` | 16 | 1000 | 8 | 3 | `pid` |
//! | `train_step/bas12x12` | 144 | 1000 | 40 | 120 | `pid`, `pid-gibbs:1` |
//! | `train_step/mnist` | 784 | 3000 | 200 | 8000 | `pid` |
//!
//! Throughput is reported in images (batch rows) per second. Every measured step starts from
//! the same state: a fresh `Engine` (no update done), patterns `Ξ` drawn uniformly at random
//! from [`PATTERN_SEED`] (the paper's initialisation), the other buffers zeroed
//! ([`StepBuffers`]), a fresh RNG seeded with [`STEP_SEED`] (used by `pid-gibbs:k`), and a
//! random ±1 batch from [`DATA_SEED`]. Blocks have the default `StepConfig::block_rows`
//! (`rapid_core::blocks::BLOCK_ROWS`, 256 rows); an update of 64 rows or more is split into
//! lanes (`Engine::lanes`), which `step` runs one after another on the bench thread. The
//! set-up runs outside the timed region ([`BatchSize::PerIteration`]; a step takes tens of
//! microseconds at least, so the per-iteration timing overhead is small).
//!
//! The MNIST-size step is slow: about 0.74 s at AVX-512 on the shared 2-core dev machine
//! (`--quick`, measured before the step moved into `Engine`), and about 3.4 s at the scalar
//! level, which is what this bench ran before `benches/Cargo.toml` enabled rapid-core's `std`
//! feature. Its group takes criterion's minimum of 10 flat samples within a 40 s target; the
//! whole run takes about a minute. Run with `cargo bench -p rapid-benches --bench train_step`,
//! add `-- --quick` for a shorter run or `-- mnist` to pick a group.
//!
//! The binary first prints the kernel level that run-time detection picked (the `std` feature;
//! the default build needs no `-C target-cpu` flags); every step runs at that level.

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput};
use rand_pcg::Pcg64;
use rapid_benches::{
    configure_group, random_batch, random_patterns, report_isa, rng, PaperSize, StepBuffers,
    BARS_4X4, BAS_12X12, MNIST,
};
use rapid_core::step::{Engine, Method};
use rapid_core::NegativePhase;

/// Seed of the initial patterns.
const PATTERN_SEED: u64 = 0x5241_5049_0001;
/// Seed of the data batch.
const DATA_SEED: u64 = 0x5241_5049_0002;
/// Seed of the RNG handed to `step` (drives the Gibbs chains of `pid-gibbs:k`).
const STEP_SEED: u64 = 0x5241_5049_0003;

/// An engine over freshly allocated buffers and its RNG, in the state every step starts from.
fn fresh(size: &PaperSize, method: Method, xi0: &[f32]) -> (Engine, StepBuffers, Pcg64) {
    let engine =
        Engine::new(size.shape(), size.with_method(method)).expect("paper configuration is valid");
    let bufs = StepBuffers::new(&engine, xi0.to_vec());
    (engine, bufs, rng(STEP_SEED))
}

/// Benchmarks one step of `size` for each `(label, method)`, in group
/// `train_step/<name>`. `slow` switches to 10 flat samples within the given measurement time.
fn bench_size(
    c: &mut Criterion,
    size: &PaperSize,
    methods: &[(&str, Method)],
    slow: Option<Duration>,
) {
    let xi0 = random_patterns(PATTERN_SEED, size.dims);
    let batch = random_batch(DATA_SEED, size.dims, size.batch);
    let mut group = c.benchmark_group(format!("train_step/{}", size.name));
    group.throughput(Throughput::Elements(size.batch as u64));
    configure_group(&mut group, slow);
    for &(label, method) in methods {
        group.bench_function(label, |b| {
            b.iter_batched_ref(
                || fresh(size, method, &xi0),
                |(engine, bufs, rng)| {
                    engine.step(&mut bufs.buffers(), std::hint::black_box(&batch), None, None, rng)
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

fn train_step(c: &mut Criterion) {
    let pid = ("pid", Method::Pid(NegativePhase::Patterns));
    let gibbs1 = ("pid-gibbs:1", Method::Pid(NegativePhase::Gibbs { steps: 1 }));
    bench_size(c, &BARS_4X4, &[pid], None);
    bench_size(c, &BAS_12X12, &[pid, gibbs1], None);
    bench_size(c, &MNIST, &[pid], Some(Duration::from_secs(40)));
}

fn main() {
    report_isa("train_step");
    let mut c = Criterion::default().configure_from_args();
    train_step(&mut c);
    c.final_summary();
}
