//! # rapid-firmware
//!
//! rapid-core's training step ([`Engine::step`], the one implementation the CLI and benches
//! run) on a Cortex-M4F: RAPID (`pid`) on Bars 4×4 with the paper's RA model size
//! (V = 16, H = 1000, K = 8) and set-up ([`StepConfig::paper_bars`]: SGD η = 0.02, batch 3,
//! sign projection at each epoch end, η decay 0.96), for [`EPOCHS`] epochs.
//!
//! Every buffer is a `static` in `.bss` ([`ConstStaticCell`], taken once at start-up, so the
//! code needs no `unsafe` and no `static mut`); nothing lives on the heap (there is none). The
//! buffer lengths are computed at compile time with the formulas of the `Engine::*_len`
//! methods, and checked against them at start-up. The kernels run at the scalar level (no
//! `std` feature: the level is fixed at compile time), so the GEMM packing buffer is empty.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use core::hint::black_box;
use core::num::NonZeroUsize;

use cortex_m_rt::entry;
use panic_halt as _;
use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg32;
use rapid_core::kernels::{active, Isa};
use rapid_core::ra::model::Dims;
use rapid_core::step::{Buffers, Engine, Lengths, Shape, StepConfig};
use static_cell::ConstStaticCell;

/// Visible units: a 4×4 image.
const V: usize = 16;
/// Hidden units (the paper's Bars 4×4 model).
const H: usize = 1000;
/// Patterns.
const K: usize = 8;
/// The model sizes.
const DIMS: Dims = Dims::new(V, H, K);
/// The training set-up: the paper's, with the default block size (`BLOCK_ROWS`, 256 rows).
const CONFIG: StepConfig = StepConfig::paper_bars();
/// Images per update.
const BATCH: usize = CONFIG.batch;
/// Training epochs.
const EPOCHS: u32 = 5;
/// Seed of the generator that draws the initial patterns and drives the run.
const SEED: u64 = 0x5241_5049_4446_4d31;

/// The distinct rows of a Bars 4×4 image (`+` = +1); an image repeats one of them, or its
/// negation, on all 4 rows.
const ROWS: [[i8; 4]; 5] =
    [[1, -1, -1, -1], [1, 1, -1, -1], [1, 1, 1, -1], [1, -1, 1, 1], [1, 1, -1, 1]];
/// Training images: the 5 rows and their negations.
const IMAGES: usize = 2 * ROWS.len();

/// Every buffer length, from the core at compile time (the scalar level: no GEMM packing).
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
static DATA: ConstStaticCell<[f32; IMAGES * V]> = ConstStaticCell::new([0.0; IMAGES * V]);

/// Writes the Bars 4×4 training images, one row of `V` spins each.
fn bars_images(data: &mut [f32; IMAGES * V]) {
    for (n, image) in data.chunks_exact_mut(V).enumerate() {
        let sign = if n < ROWS.len() { 1.0 } else { -1.0 };
        let row = &ROWS[n % ROWS.len()];
        for (i, x) in image.iter_mut().enumerate() {
            *x = sign * f32::from(row[i % 4]);
        }
    }
}

#[entry]
fn main() -> ! {
    let params = PARAMS.take();
    let grad = GRAD.take();
    let negatives = NEGATIVES.take();
    let scratch = SCRATCH.take();
    let data = DATA.take();
    bars_images(data);

    let mut engine = Engine::new(Shape::Ra(DIMS), CONFIG).expect("the paper's set-up is valid");
    // The level in use on this target is the scalar one, which the buffers were sized for.
    assert!(engine.lengths(active()) == LEN);

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
    // A short last batch weighs each image as a full one does.
    let divisor = NonZeroUsize::new(BATCH);
    for _ in 0..EPOCHS {
        for batch in data.chunks(BATCH * V) {
            engine.step(&mut bufs, batch, divisor, None, &mut rng);
        }
        engine.end_epoch(bufs.params);
    }
    black_box(&*bufs.params);
    loop {
        core::hint::spin_loop();
    }
}
