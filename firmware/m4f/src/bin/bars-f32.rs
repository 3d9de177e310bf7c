//! # bars-f32
//!
//! RAPID (`pid`) on Bars 4×4 on a Cortex-M4F with rapid-core's `f32` training step
//! ([`Engine::step`], the one implementation the `rapid` CLI and the benches run): the paper's
//! model size (V = 16, H = 1000, K = 8) and set-up ([`StepConfig::paper_bars`]: SGD
//! η = 0.02, batch 3 with the short last batch scaled, sign projection at each epoch end,
//! η ← max(0.96 η, 1e−5)), [`EPOCHS`] epochs, the training images shuffled at each epoch as
//! the harness does.
//!
//! It prints the table of `rapid train` (epoch, learning rate, HD train, HD test at epochs
//! 1, 2, 5, 10, 20, … and the last; HD from the `f32` sampler, [`rapid_bars::hd_f32`]) over
//! semihosting, and ends QEMU with status 0 when the final test HD is below 0.05, else 1.
//!
//! Every buffer is a `static` in `.bss` ([`ConstStaticCell`], taken once at start-up, so
//! this file needs no `unsafe`); nothing lives on a heap (there is none). The lengths are the
//! core's, `StepConfig::lengths(shape, Isa::Scalar)` at compile time, checked against the
//! running engine at start-up. The kernels run at the scalar level (no `std` feature), so the
//! GEMM packing buffer is empty.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use core::num::NonZeroUsize;

use cortex_m_rt::entry;
use panic_semihosting as _;
use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg32;
use rapid_bars::{hd_f32, hprintln, Hd, Set, BATCH, EVAL_SEED, K, N_TRAIN, V};
use rapid_core::kernels::{active, Isa};
use rapid_core::ra::model::Dims;
use rapid_core::step::{Buffers, Engine, Lengths, Shape, StepConfig};
use rapid_core::RaModel;
use static_cell::ConstStaticCell;

/// Hidden units (the paper's Bars 4×4 model).
const H: usize = 1000;
/// The model sizes.
const DIMS: Dims = Dims::new(V, H, K);
/// The training set-up: the paper's, with the default block size.
const CONFIG: StepConfig = StepConfig::paper_bars();
const _: () = assert!(CONFIG.batch == BATCH);
/// Training epochs: by then the learning rate has decayed to 0.96⁹⁹·0.02 ≈ 3.5e−4 and the
/// patterns no longer change sign; the harness's runs reach test HD 0 on every seed by
/// epoch 100.
const EPOCHS: u32 = 100;
/// Seed of the generator that draws the initial patterns, the shuffles and the updates
/// (`RAPID_FIRMWARE_SEED` at build time overrides it).
const SEED: u64 = rapid_bars::seed_or(0);

/// Every buffer length, from the core at compile time (scalar level: no GEMM packing).
const LEN: Lengths = CONFIG.lengths(Shape::Ra(DIMS), Isa::Scalar);
const PARAM_LEN: usize = LEN.params;
const NEG_LEN: usize = LEN.negatives;
const SCRATCH_LEN: usize = LEN.scratch;
const _: () = assert!(LEN.lanes == 1 && LEN.lane_grad == 0, "one lane: no second gradient");
const _: () = assert!(LEN.opt == 0 && LEN.chain_words == 0, "SGD without momentum, no chains");

static PARAMS: ConstStaticCell<[f32; PARAM_LEN]> = ConstStaticCell::new([0.0; PARAM_LEN]);
static GRAD: ConstStaticCell<[f32; PARAM_LEN]> = ConstStaticCell::new([0.0; PARAM_LEN]);
static NEGATIVES: ConstStaticCell<[f32; NEG_LEN]> = ConstStaticCell::new([0.0; NEG_LEN]);
static SCRATCH: ConstStaticCell<[f32; SCRATCH_LEN]> = ConstStaticCell::new([0.0; SCRATCH_LEN]);
/// The HD evaluation's buffers: the hidden probabilities of the start, and a hidden draw.
static EVAL_P: ConstStaticCell<[f32; H]> = ConstStaticCell::new([0.0; H]);
static EVAL_H: ConstStaticCell<[f32; H]> = ConstStaticCell::new([0.0; H]);

#[entry]
fn main() -> ! {
    let params = PARAMS.take();
    let grad = GRAD.take();
    let negatives = NEGATIVES.take();
    let scratch = SCRATCH.take();
    let eval_p = EVAL_P.take();
    let eval_h = EVAL_H.take();

    let mut engine = Engine::new(Shape::Ra(DIMS), CONFIG).expect("the paper's set-up is valid");
    assert!(engine.lengths(active()) == LEN, "the buffers fit the kernel level in use");

    hprintln!(
        "# bars4 on Cortex-M4F (thumbv7em-none-eabihf, f32 step): RA V={} H={} K={}, {} train / {} test images; method pid, sgd lr 0.02 (decay 0.96, min 0.00001), batch {} (scaled last batch), projection sign, seed {}, {} epochs",
        V, H, K, N_TRAIN, Set::Test.len(), BATCH, SEED, EPOCHS
    );
    hprintln!(
        "# static buffers: params {} + grad {} + negatives {} + scratch {} + eval {} f32",
        PARAM_LEN,
        PARAM_LEN,
        NEG_LEN,
        SCRATCH_LEN,
        2 * H
    );
    rapid_bars::print_table_header();

    // The paper's initialisation: uniform random ±1 patterns.
    let mut rng = Pcg32::seed_from_u64(SEED);
    for x in params.iter_mut() {
        *x = if rng.next_u32() & 1 == 1 { 1.0 } else { -1.0 };
    }
    let mut bufs = Buffers {
        params,
        opt: &mut [],
        grad,
        lane_grad: &mut [],
        negatives,
        chains: &mut [],
        scratch,
    };
    // A short last batch weighs each image as a full one does (the harness's default).
    let divisor = NonZeroUsize::new(BATCH);
    let mut order = [0usize; N_TRAIN];
    let mut batch = [0.0f32; BATCH * V];
    let (mut train, mut test) = (Hd::default(), Hd::default());
    for epoch in 1..=EPOCHS {
        let lr = engine.state().lr;
        rapid_bars::shuffle(&mut order, &mut rng);
        for rows in order.chunks(BATCH) {
            for (slot, &img) in rows.iter().enumerate() {
                let image = Set::Train.image(img);
                for (x, &s) in batch[slot * V..(slot + 1) * V].iter_mut().zip(&image) {
                    *x = f32::from(s);
                }
            }
            engine.step(&mut bufs, &batch[..rows.len() * V], divisor, None, &mut rng);
        }
        engine.end_epoch(bufs.params);
        if rapid_bars::shown(epoch, EPOCHS) {
            let model = RaModel::new_unchecked(&*bufs.params, DIMS);
            let mut eval_rng = Pcg32::seed_from_u64(EVAL_SEED + u64::from(epoch));
            train = hd_f32(&model, Set::Train, eval_p, eval_h, &mut eval_rng);
            test = hd_f32(&model, Set::Test, eval_p, eval_h, &mut eval_rng);
            rapid_bars::print_row(epoch, format_args!("{lr:.3e}"), train, test);
        }
    }
    rapid_bars::finish(EPOCHS, train, test)
}
