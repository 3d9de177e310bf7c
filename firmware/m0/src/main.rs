//! # bars-int-m0
//!
//! RAPID (`pid`) on Bars 4×4 on a Cortex-M0 (BBC micro:bit: nRF51822, 16 KiB of RAM, no FPU)
//! with rapid-core's integer engine (`rapid_core::int::IntEngine`), V = 16, K = 8, batch 3
//! and the paper's set-up in fixed point, with the largest `H` whose buffers leave the stack
//! its room ([`H`]; `memory.x` asserts the room at link time). Same table and exit status as
//! the M4F images ([`rapid_bars::int::run_int`]). The image links no floating-point code:
//! the lookup tables are built on the host (`rapid-bars`' build.rs) and every step, draw and
//! printed number is integer.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use cortex_m_rt::entry;
use panic_semihosting as _;
use rapid_bars::int::{run_int, IntRun};

/// Hidden units: the largest `H` that fits (see firmware/README.md): the buffers take
/// `buffer_bytes(lengths(H))` bytes of `.bss`, and `memory.x` keeps `_stack_reserve` bytes
/// for the stack.
const H: usize = 892;
/// Training epochs.
const EPOCHS: u32 = 100;

#[entry]
fn main() -> ! {
    let bufs = rapid_bars::int_buffers!(H);
    let run = IntRun {
        board: "Cortex-M0 (thumbv6m-none-eabi, micro:bit)",
        hidden: H,
        epochs: EPOCHS,
        seed: rapid_bars::seed_or(0),
    };
    run_int(&run, bufs)
}
