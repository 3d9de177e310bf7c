//! # bars-int
//!
//! RAPID (`pid`) on Bars 4×4 on a Cortex-M4F with rapid-core's integer engine
//! (`rapid_core::int::IntEngine`: latent `θ` in Q2.5 and packed signs, popcount overlaps,
//! table `tanh`, no floating point in the step), the paper's model size (V = 16, H = 1000,
//! K = 8) and set-up in fixed point (`IntConfig::paper_bars`). Same table and exit status as
//! `bars-f32` ([`rapid_bars::int::run_int`]); HD through integer fields and threshold-table
//! draws. The tables are built on the host (`rapid-bars`' build.rs); the buffers are
//! `static`s sized by the core's `const fn` `IntConfig::lengths`.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use cortex_m_rt::entry;
use panic_semihosting as _;
use rapid_bars::int::{run_int, IntRun};

/// Hidden units (the paper's Bars 4×4 model).
const H: usize = 1000;
/// Training epochs (as `bars-f32`).
const EPOCHS: u32 = 100;

#[entry]
fn main() -> ! {
    let bufs = rapid_bars::int_buffers!(H);
    let run = IntRun {
        board: "Cortex-M4F (thumbv7em-none-eabihf)",
        hidden: H,
        epochs: EPOCHS,
        seed: rapid_bars::seed_or(0),
    };
    run_int(&run, bufs)
}
