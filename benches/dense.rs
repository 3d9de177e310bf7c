//! The dense RBM baselines: one CD-10 training step at the paper's three sizes, one PCD-10
//! step at Bars size (both through the core's one step implementation,
//! `rapid_core::step::Engine::step` on `Shape::Dense`), and Gibbs sweeps of many chains
//! (`rapid_core::blocks::gibbs_rows`).
//!
//! | id | call | V | H | rows | throughput unit |
//! | --- | --- | --- | --- | --- | --- |
//! | `cd_step/bars4x4/cd-10` | `Engine::step`, `cd:10` | 16 | 1000 | batch 3 | images |
//! | `cd_step/bas12x12/cd-10` | `Engine::step`, `cd:10` | 144 | 1000 | batch 120 | images |
//! | `cd_step/mnist/cd-10` | `Engine::step`, `cd:10` | 784 | 3000 | batch 8000 | images |
//! | `pcd_step/bars4x4/pcd-10` | `Engine::step`, `pcd:10`, 2048 chains | 16 | 1000 | batch 3 | images |
//! | `gibbs/bars4x4/2048` | `gibbs_rows`, 1 step | 16 | 1000 | 2048 chains | chain-steps |
//! | `gibbs/bas12x12/1024` | `gibbs_rows`, 1 step | 144 | 1000 | 1024 chains | chain-steps |
//!
//! A step is a whole update: positive phase, k Gibbs steps per chain, negative phase, then the
//! optimiser (the paper's Adam, η = 0.001, [`rapid_benches::dense_config`]); dense models take
//! no projection. Steps per second are `1 / time`, and criterion's `elem/s` are images per
//! second for the steps and chain-steps (one Gibbs step `v → h → v` of one chain) per second
//! for the sweeps. Blocks have the default `StepConfig::block_rows`
//! (`rapid_core::blocks::BLOCK_ROWS`, 256 rows, for the sweeps too); an update with 64 rows or
//! chains or more is split into lanes (`Engine::lanes`: 8 for the MNIST batch and the 2048 PCD
//! chains), run one after another on the bench thread. The models have no biases (the
//! harness default for `cd`/`pcd`) and start from weights uniform in `[−0.01, 0.01)`.
//!
//! # Running
//! `cargo bench -p rapid-benches --bench dense`; add `-- --quick` for a short run, or a filter
//! such as `-- gibbs` or `-- bars4x4`. The MNIST CD-10 step does about 0.9 Tflop of GEMMs
//! (two `784 × 3000` field products per chain and Gibbs step, 9.4 Mflop, × 8000 chains × 10
//! steps, plus the two phases): about 17 s at AVX-512 on the shared 2-core dev machine
//! (measured before the step moved into `Engine`). Its group therefore takes criterion's
//! minimum of 10 flat samples of one step each within a 120 s target: 11 steps with the
//! warm-up, about 3 minutes (criterion may note that it needed more than the target).
//! `--quick` still runs 7 steps (1 + 2 + 4; about 2 minutes there). Every other group takes
//! seconds; skip the MNIST one with a filter such as `-- 'gibbs|pcd|bars|bas'`.
//!
//! # Levels and inputs
//! The binary first prints the kernel level that run-time detection picked; every call here
//! uses it (rapid-core's `std` feature detects AVX2/AVX-512; no `-C target-cpu` flags needed).
//! Weights, batches and chain starts come from fixed seeds, and each bench allocates its
//! engine, buffers and RNG (seeded with [`STEP_SEED`]) before timing. The state advances from
//! iteration to iteration, as it does in training: the weights and Adam moments take one
//! update per step, the PCD chains and the Gibbs states move on; CD restarts its chains at the
//! batch every step. A step costs the same whatever the values, so every iteration does the
//! same work.

#![deny(unsafe_code)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use rapid_benches::{
    configure_group, dense_config, dense_dims, random_batch, random_fields, random_spins,
    report_isa, rng, PaperSize, StepBuffers, BARS_4X4, BAS_12X12, MNIST,
};
use rapid_core::blocks::{block_scratch_len, gibbs_rows, init_chains, Workspace, BLOCK_ROWS};
use rapid_core::dense::DenseRbm;
use rapid_core::kernels::active;
use rapid_core::step::{Engine, Method, Shape};

/// Seed of the weights.
const WEIGHT_SEED: u64 = 0x4445_4e53_0001;
/// Seed of the data batch.
const DATA_SEED: u64 = 0x4445_4e53_0002;
/// Seed of the RNG handed to the timed calls.
const STEP_SEED: u64 = 0x4445_4e53_0003;
/// Seed of the initial PCD chains and Gibbs states.
const CHAIN_SEED: u64 = 0x4445_4e53_0004;

/// Gibbs steps per CD/PCD update.
const K: u32 = 10;
/// Persistent chains of the PCD bench.
const PCD_CHAINS: usize = 2048;

/// Weights of the dense model at `size`: uniform in `[−0.01, 0.01)`.
fn weights(size: &PaperSize) -> Vec<f32> {
    random_fields(WEIGHT_SEED, dense_dims(size).param_len(), 0.01)
}

/// An engine for the dense model at `size` trained by `method`, and its buffers holding
/// [`weights`].
fn dense_engine(size: &PaperSize, method: Method) -> (Engine, StepBuffers) {
    let shape = Shape::Dense(dense_dims(size));
    let engine = Engine::new(shape, dense_config(size, method)).expect("valid dense set-up");
    let bufs = StepBuffers::new(&engine, weights(size));
    (engine, bufs)
}

/// Times `Engine::step` of `engine` on a random batch of `size`, as `<group>/<label>`.
/// `slow` switches to 10 flat samples within the given measurement time.
fn bench_step(
    c: &mut Criterion,
    group: &str,
    label: &str,
    size: &PaperSize,
    (mut engine, mut bufs): (Engine, StepBuffers),
    slow: Option<Duration>,
) {
    let batch = random_batch(DATA_SEED, size.dims, size.batch);
    let mut r = rng(STEP_SEED);
    let mut group = c.benchmark_group(format!("{group}/{}", size.name));
    group.throughput(Throughput::Elements(size.batch as u64));
    configure_group(&mut group, slow);
    group.bench_function(label, |b| {
        b.iter(|| engine.step(&mut bufs.buffers(), black_box(&batch), None, None, &mut r));
    });
    group.finish();
    black_box(&bufs.params);
}

/// One CD-10 update at `size`, in group `cd_step/<name>`.
fn cd_step(c: &mut Criterion, size: &PaperSize, slow: Option<Duration>) {
    let run = dense_engine(size, Method::Cd { k: K });
    bench_step(c, "cd_step", &format!("cd-{K}"), size, run, slow);
}

/// One PCD-10 update at Bars size with [`PCD_CHAINS`] persistent chains, started uniformly at
/// random.
fn pcd_step(c: &mut Criterion) {
    let size = BARS_4X4;
    let (engine, mut bufs) = dense_engine(&size, Method::Pcd { k: K, chains: PCD_CHAINS });
    init_chains(&mut bufs.chains, size.dims.visible, &mut rng(CHAIN_SEED));
    bench_step(c, "pcd_step", &format!("pcd-{K}"), &size, (engine, bufs), None);
}

/// One Gibbs step on `chains` chains at `size`, in group `gibbs/<name>`, in blocks of
/// [`BLOCK_ROWS`] chains.
fn gibbs_sweep(c: &mut Criterion, size: &PaperSize, chains: usize) {
    let d = dense_dims(size);
    let params = weights(size);
    let model = DenseRbm::new(&params[..], d);
    let mut v = random_spins(CHAIN_SEED, chains * d.visible);
    let (rows, work) = (BLOCK_ROWS.min(chains), Shape::Dense(d).row_work());
    let mut scratch = vec![0.0f32; block_scratch_len(active(), d.visible, d.hidden, work, rows)];
    let mut ws = Workspace::new(&mut scratch, BLOCK_ROWS);
    let mut r = rng(STEP_SEED);
    let mut group = c.benchmark_group(format!("gibbs/{}", size.name));
    group.throughput(Throughput::Elements(chains as u64));
    configure_group(&mut group, None);
    group.bench_function(BenchmarkId::from_parameter(chains), |b| {
        b.iter(|| gibbs_rows(&model, &mut v, 1, &mut ws, &mut r));
    });
    group.finish();
    black_box(&v);
}

fn main() {
    report_isa("dense");
    let mut c = Criterion::default().configure_from_args();
    gibbs_sweep(&mut c, &BARS_4X4, 2048);
    gibbs_sweep(&mut c, &BAS_12X12, 1024);
    pcd_step(&mut c);
    cd_step(&mut c, &BARS_4X4, None);
    cd_step(&mut c, &BAS_12X12, None);
    cd_step(&mut c, &MNIST, Some(Duration::from_secs(120)));
    c.final_summary();
}
