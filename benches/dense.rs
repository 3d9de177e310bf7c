//! The dense RBM baselines of `rapid_core::dense`: one CD-10 gradient at the paper's three
//! sizes, one PCD-10 gradient at Bars size, and Gibbs sweeps of many chains.
//!
//! | id | call | V | H | rows | throughput unit |
//! | --- | --- | --- | --- | --- | --- |
//! | `cd_step/bars4x4/cd-10` | `cd_gradient`, k = 10 | 16 | 1000 | batch 3 | images |
//! | `cd_step/bas12x12/cd-10` | `cd_gradient`, k = 10 | 144 | 1000 | batch 120 | images |
//! | `cd_step/mnist/cd-10` | `cd_gradient`, k = 10 | 784 | 3000 | batch 8000 | images |
//! | `pcd_step/bars4x4/pcd-10` | `pcd_gradient`, k = 10 | 16 | 1000 | batch 3, 2048 chains | images |
//! | `gibbs/bars4x4/2048` | `gibbs_rows`, 1 step | 16 | 1000 | 2048 chains | chain-steps |
//! | `gibbs/bas12x12/1024` | `gibbs_rows`, 1 step | 144 | 1000 | 1024 chains | chain-steps |
//!
//! A step here is the gradient alone (positive phase, k Gibbs steps per chain, negative phase;
//! no optimiser update): steps per second are `1 / time`, and criterion's `elem/s` are
//! images per second for the steps and chain-steps (one Gibbs step `v → h → v` of one chain)
//! per second for the sweeps. The models have no biases (the harness default for `cd`/`pcd`)
//! and weights uniform in `[−0.01, 0.01)`.
//!
//! # Running
//! `cargo bench -p rapid-benches --bench dense`; add `-- --quick` for a short run, or a filter
//! such as `-- gibbs` or `-- bars4x4`. The MNIST CD-10 step does about 0.9 Tflop of GEMMs
//! (two `784 × 3000` field products per chain and Gibbs step, 9.4 Mflop, × 8000 chains × 10
//! steps, plus the two phases): about 17 s at AVX-512 on the shared 2-core dev machine. Its group therefore takes
//! criterion's minimum of 10 flat samples of one step each within a 120 s target: 11 steps
//! with the warm-up, about 3 minutes (criterion may note that it needed more than the
//! target). `--quick` still runs 7 steps (1 + 2 + 4; about 2 minutes there). Every other group
//! takes seconds; skip the MNIST one with a filter such as `-- 'gibbs|pcd|bars|bas'`.
//!
//! # Levels and inputs
//! The binary first prints the kernel level that run-time detection picked; every call here
//! uses it (rapid-core's `std` feature detects AVX2/AVX-512; no `-C target-cpu` flags needed).
//! Weights, batches and chain starts come from fixed seeds, and each bench allocates its model,
//! scratch and RNG (seeded with [`STEP_SEED`]) before timing. The calls only read the model:
//! CD restarts its chains at the batch every call and the gradient is overwritten, so every
//! iteration does the same work; the PCD chains and the Gibbs states advance from iteration
//! to iteration, as they do in training, and a step costs the same whatever the states.

#![deny(unsafe_code)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use rapid_benches::{
    configure_group, dense_dims, random_batch, random_fields, random_spins, report_isa, rng,
    PaperSize, BARS_4X4, BAS_12X12, MNIST,
};
use rapid_core::dense::{
    block_scratch_len, cd_gradient, cd_scratch_len, gibbs_rows, pcd_chain_words_len, pcd_gradient,
    pcd_init_chains, pcd_scratch_len, DenseRbm,
};

/// Seed of the weights.
const WEIGHT_SEED: u64 = 0x4445_4e53_0001;
/// Seed of the data batch.
const DATA_SEED: u64 = 0x4445_4e53_0002;
/// Seed of the RNG handed to the timed calls.
const STEP_SEED: u64 = 0x4445_4e53_0003;
/// Seed of the initial PCD chains and Gibbs states.
const CHAIN_SEED: u64 = 0x4445_4e53_0004;

/// Gibbs steps per CD/PCD gradient.
const K: u32 = 10;
/// Persistent chains of the PCD bench.
const PCD_CHAINS: usize = 2048;

/// Weights of the dense model at `size`: uniform in `[−0.01, 0.01)`.
fn weights(size: &PaperSize) -> Vec<f32> {
    random_fields(WEIGHT_SEED, dense_dims(size).param_len(), 0.01)
}

/// One CD-10 gradient at `size`, in group `cd_step/<name>`. `slow` switches to 10 flat
/// samples within the given measurement time.
fn cd_step(c: &mut Criterion, size: &PaperSize, slow: Option<Duration>) {
    let d = dense_dims(size);
    let params = weights(size);
    let model = DenseRbm::new(&params[..], d);
    let batch = random_batch(DATA_SEED, size.dims, size.batch);
    let mut grad = vec![0.0f32; d.param_len()];
    let mut scratch = vec![0.0f32; cd_scratch_len(d, size.batch)];
    let mut r = rng(STEP_SEED);
    let mut group = c.benchmark_group(format!("cd_step/{}", size.name));
    group.throughput(Throughput::Elements(size.batch as u64));
    configure_group(&mut group, slow);
    group.bench_function(format!("cd-{K}"), |b| {
        b.iter(|| {
            cd_gradient(&model, black_box(&batch), 0, K, &mut grad, &mut scratch, &mut r);
        });
    });
    group.finish();
    black_box(&grad);
}

/// One PCD-10 gradient at Bars size with [`PCD_CHAINS`] persistent chains.
fn pcd_step(c: &mut Criterion) {
    let size = BARS_4X4;
    let d = dense_dims(&size);
    let params = weights(&size);
    let model = DenseRbm::new(&params[..], d);
    let batch = random_batch(DATA_SEED, size.dims, size.batch);
    let mut chains = vec![0u64; pcd_chain_words_len(d, PCD_CHAINS)];
    pcd_init_chains(&mut chains, PCD_CHAINS, d.visible, &mut rng(CHAIN_SEED));
    let mut grad = vec![0.0f32; d.param_len()];
    let mut scratch = vec![0.0f32; pcd_scratch_len(d, PCD_CHAINS, size.batch)];
    let mut r = rng(STEP_SEED);
    let mut group = c.benchmark_group(format!("pcd_step/{}", size.name));
    group.throughput(Throughput::Elements(size.batch as u64));
    configure_group(&mut group, None);
    group.bench_function(format!("pcd-{K}"), |b| {
        b.iter(|| {
            pcd_gradient(
                &model,
                black_box(&batch),
                0,
                K,
                &mut chains,
                PCD_CHAINS,
                &mut grad,
                &mut scratch,
                &mut r,
            );
        });
    });
    group.finish();
    black_box(&grad);
}

/// One Gibbs step on `chains` chains at `size`, in group `gibbs/<name>`.
fn gibbs_sweep(c: &mut Criterion, size: &PaperSize, chains: usize) {
    let d = dense_dims(size);
    let params = weights(size);
    let model = DenseRbm::new(&params[..], d);
    let mut v = random_spins(CHAIN_SEED, chains * d.visible);
    let mut scratch = vec![0.0f32; block_scratch_len(d, chains)];
    let mut r = rng(STEP_SEED);
    let mut group = c.benchmark_group(format!("gibbs/{}", size.name));
    group.throughput(Throughput::Elements(chains as u64));
    configure_group(&mut group, None);
    group.bench_function(BenchmarkId::from_parameter(chains), |b| {
        b.iter(|| gibbs_rows(&model, &mut v, 1, &mut scratch, &mut r));
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
