//! # rapid-bars
//!
//! What the firmware images share: Bars 4×4 with the paper's split, the reconstruction
//! Hamming distance (HD) of `rapid train`, the table it prints, the stack's high-water mark
//! and the exit status, all over semihosting.
//!
//! The definitions are the harness's (`std-harness/src/data.rs`, `metrics.rs`):
//! * an image is a row `r ∈ {±1}⁴` repeated on all 4 rows (row-major, `V = 16`); the training
//!   set is the rows `[+−−−]`, `[++−−]`, `[+++−]`, `[+−++]`, `[++−+]`, the test set `[+−+−]`,
//!   `[+−−+]`, each row followed by its negation (10 and 4 images, in the harness's order);
//! * HD: keep the top row of the image, set the other 12 pixels to 0 (a neutral spin), make one
//!   step `v → h → v` ([`REPEATS`] draws per image), and count the pixels that differ from the
//!   image over **all** `V` pixels (the kept ones are not clamped), so HD is the number of wrong
//!   pixels over `REPEATS · V · images`. Random guessing scores 0.5.
//!
//! HD is kept as a count ([`Hd`]) and printed with integer arithmetic, so an image that trains
//! with integers only links no floating-point formatting for it. [`hd_f32`] is the `f32`
//! sampler (the model's fields, as the harness's float path); [`int::hd_int`] the integer one
//! (integer fields, threshold-table draws), and [`int::run_int`] the whole integer run.
#![no_std]
#![deny(unsafe_code)]

use core::fmt;

use rand_core::RngCore;

pub use cortex_m_semihosting::hprintln;
/// For [`int_buffers!`]: the core's types and the cells, as the macro names them.
pub use rapid_core;
pub use static_cell;

pub mod int;

/// Pixels per image (4×4).
pub const V: usize = 16;
/// Pixels per row; the top row is what an HD reconstruction keeps.
pub const ROW: usize = 4;
/// Patterns of every image's model.
pub const K: usize = 8;
/// Images per update (the paper's batch).
pub const BATCH: usize = 3;
/// Draws per image in an HD evaluation (the reference protocol).
pub const REPEATS: usize = 100;
/// Seed of the evaluation draws: epoch `e` uses `EVAL_SEED + e`, apart from training's
/// generator, so evaluating never shifts training.
pub const EVAL_SEED: u64 = 0x4844_0000;
/// A run passes when its final test HD is below `1 / PASS_DENOMINATOR` (0.05).
pub const PASS_DENOMINATOR: u64 = 20;

/// The distinct training rows (`+1`/`−1`); each image is one of them or its negation.
const TRAIN_ROWS: [[i8; ROW]; 5] =
    [[1, -1, -1, -1], [1, 1, -1, -1], [1, 1, 1, -1], [1, -1, 1, 1], [1, 1, -1, 1]];
/// The distinct test rows.
const TEST_ROWS: [[i8; ROW]; 2] = [[1, -1, 1, -1], [1, -1, -1, 1]];

/// Training images.
pub const N_TRAIN: usize = 2 * TRAIN_ROWS.len();
/// Test images.
pub const N_TEST: usize = 2 * TEST_ROWS.len();

/// A split of the dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Set {
    /// The 10 training images.
    Train,
    /// The 4 test images.
    Test,
}

impl Set {
    /// Images in the set.
    pub const fn len(self) -> usize {
        match self {
            Set::Train => N_TRAIN,
            Set::Test => N_TEST,
        }
    }

    /// Never empty (for clippy's `len_without_is_empty`).
    pub const fn is_empty(self) -> bool {
        false
    }

    /// Image `n` of the set as ±1 spins: row `n / 2`, negated for odd `n` (the harness's order).
    ///
    /// # Panics
    /// If `n` is out of range.
    pub fn image(self, n: usize) -> [i8; V] {
        let row = match self {
            Set::Train => TRAIN_ROWS[n / 2],
            Set::Test => TEST_ROWS[n / 2],
        };
        let sign = if n.is_multiple_of(2) { 1 } else { -1 };
        core::array::from_fn(|i| sign * row[i % ROW])
    }
}

/// The training seed: `RAPID_FIRMWARE_SEED` (decimal) when it was set at build time, else
/// `default`. Lets a script try seeds without editing the source.
///
/// # Panics
/// At compile time (in a `const`), if the variable is not a decimal `u64`.
pub const fn seed_or(default: u64) -> u64 {
    let Some(s) = option_env!("RAPID_FIRMWARE_SEED") else { return default };
    let b = s.as_bytes();
    assert!(!b.is_empty(), "RAPID_FIRMWARE_SEED must be a decimal u64");
    let mut x: u64 = 0;
    let mut i = 0;
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "RAPID_FIRMWARE_SEED must be a decimal u64");
        x = x * 10 + (b[i] - b'0') as u64;
        i += 1;
    }
    x
}

/// Whether the reconstruction keeps pixel `i` (the top row).
pub const fn kept(i: usize) -> bool {
    i < ROW
}

/// The epochs shown in the table, as `rapid train` shows them: 1, 2, 5, 10, 20, 50, … and
/// the last.
pub fn shown(epoch: u32, last: u32) -> bool {
    let mut e = epoch;
    while e != 0 && e.is_multiple_of(10) {
        e /= 10;
    }
    epoch == last || matches!(e, 1 | 2 | 5)
}

/// Shuffles `order` from the identity (Fisher–Yates, `j = next_u64 mod (i + 1)`), as the
/// harness does at the start of each epoch.
pub fn shuffle<R: RngCore + ?Sized>(order: &mut [usize; N_TRAIN], rng: &mut R) {
    for (i, o) in order.iter_mut().enumerate() {
        *o = i;
    }
    for i in (1..N_TRAIN).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
}

/// A reconstruction Hamming distance as a count: `wrong` pixels out of `total`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hd {
    /// Reconstructed pixels that differ from the image.
    pub wrong: u64,
    /// Pixels scored: `REPEATS · V · images`.
    pub total: u64,
}

impl Hd {
    /// `wrong / total < 1 / PASS_DENOMINATOR`, in integers.
    pub fn passes(&self) -> bool {
        self.total > 0 && self.wrong * PASS_DENOMINATOR < self.total
    }
}

/// `wrong / total` with 4 decimals (rounded half up), in integer arithmetic.
impl fmt::Display for Hd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.total == 0 {
            return f.pad("-");
        }
        let e4 = (2 * 10_000 * self.wrong + self.total) / (2 * self.total);
        let mut buf = [0u8; 24];
        let s = fmt_fixed(&mut buf, e4, 4);
        f.pad(s)
    }
}

/// Writes `x / 10^decimals` as decimal text into `buf`; returns the text.
fn fmt_fixed(buf: &mut [u8; 24], x: u64, decimals: u32) -> &str {
    let mut n = 0;
    let mut digits = [0u8; 20];
    let mut y = x;
    loop {
        digits[n] = b'0' + (y % 10) as u8;
        y /= 10;
        n += 1;
        if y == 0 {
            break;
        }
    }
    while n <= decimals as usize {
        digits[n] = b'0';
        n += 1;
    }
    let mut len = 0;
    for i in (0..n).rev() {
        buf[len] = digits[i];
        len += 1;
        if i == decimals as usize && decimals > 0 {
            buf[len] = b'.';
            len += 1;
        }
    }
    core::str::from_utf8(&buf[..len]).unwrap_or("?")
}

/// The `f32` reconstruction HD of `set` (the harness's float path): per image, the hidden
/// probabilities `σ(2φ)` of the start (top row kept, the rest 0) are computed once, then
/// [`REPEATS`] times `h` is drawn from them and `v` from `P(v | h)` with the core's sampler.
/// `p0` and `h` are `H`-entry buffers.
///
/// # Panics
/// If the model's `V` is not [`V`], its `K` not [`K`], or a buffer is not `H` long.
pub fn hd_f32<S: AsRef<[f32]>, R: RngCore + ?Sized>(
    model: &rapid_core::RaModel<S>,
    set: Set,
    p0: &mut [f32],
    h: &mut [f32],
    rng: &mut R,
) -> Hd {
    use rapid_core::num::{sigmoid, uniform01};
    use rapid_core::ra::gibbs::sample_spins_in_place;
    let d = model.dims();
    assert!(d.visible == V && d.patterns == K, "a Bars 4×4 model with K patterns");
    let mut hd = Hd::default();
    let mut m = [0.0f32; K];
    for n in 0..set.len() {
        let image = set.image(n);
        let target: [f32; V] = core::array::from_fn(|i| f32::from(image[i]));
        let start: [f32; V] = core::array::from_fn(|i| if kept(i) { target[i] } else { 0.0 });
        model.hidden_field(&start, &mut m, p0);
        for p in p0.iter_mut() {
            *p = sigmoid(2.0 * *p);
        }
        let mut v = [0.0f32; V];
        for _ in 0..REPEATS {
            for (hj, &p) in h.iter_mut().zip(p0.iter()) {
                *hj = if uniform01(rng) < p { 1.0 } else { -1.0 };
            }
            model.visible_field(h, &mut m, &mut v);
            sample_spins_in_place(&mut v, rng);
            hd.wrong += v.iter().zip(&target).filter(|(a, b)| a != b).count() as u64;
        }
        hd.total += (REPEATS * V) as u64;
    }
    hd
}

/// The table's header lines after the set-up line: the HD protocol and the column names.
pub fn print_table_header() {
    hprintln!("# HD: reconstruction from the top row, {} draws per image", REPEATS);
    hprintln!("{:>7} {:>10} {:>9} {:>9}", "epoch", "lr", "hd_train", "hd_test");
}

/// One row of the table. `lr` is formatted into a short buffer first (an `f32` as
/// `format_args!("{lr:.3e}")`, or the integer engine's own form), then right-aligned.
pub fn print_row(epoch: u32, lr: fmt::Arguments<'_>, train: Hd, test: Hd) {
    let mut buf = Text { buf: [0; 32], len: 0 };
    let lr = if fmt::write(&mut buf, lr).is_ok() { buf.as_str() } else { "?" };
    hprintln!("{:>7} {:>10} {:>9} {:>9}", epoch, lr, train, test);
}

/// A fixed buffer that `fmt::write` fills (fails when full).
struct Text {
    buf: [u8; 32],
    len: usize,
}

impl Text {
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// How much of the stack the run used, from the paint of cortex-m-rt's `paint-stack`.
#[derive(Clone, Copy, Debug)]
pub struct StackUse {
    /// Bytes from the top of the stack down to the lowest word that lost its paint.
    pub used: usize,
    /// Bytes between the end of `.bss` and the top of RAM (the stack's whole room).
    pub size: usize,
}

/// The stack's high-water mark: cortex-m-rt paints `_stack_end.._stack_start` with
/// `0xCCCC_CCCC` before `main`; the first word from the bottom that no longer holds the
/// paint marks the deepest use.
#[allow(unsafe_code)]
pub fn stack_used() -> StackUse {
    extern "C" {
        static _stack_start: u32;
        static _stack_end: u32;
    }
    // The two symbols come from cortex-m-rt's `link.x`; only their addresses are taken.
    let (top, bottom) =
        (core::ptr::addr_of!(_stack_start) as usize, core::ptr::addr_of!(_stack_end) as usize);
    let mut p = bottom;
    // SAFETY: the words in `bottom..top` are the stack's RAM, always readable; `p` stays in
    // that range, 4-byte aligned (link.x aligns both ends). Words below the current stack
    // pointer are in use by no one, and a volatile read of them has no effect.
    while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == 0xCCCC_CCCC {
        p += 4;
    }
    StackUse { used: top - p, size: top - bottom }
}

/// Prints the closing line (final HD, stack use) and ends the emulator: exit status 0 when the
/// final test HD is below 0.05, else 1.
pub fn finish(epochs: u32, train: Hd, test: Hd) -> ! {
    let stack = stack_used();
    let pass = test.passes();
    hprintln!(
        "# trained {} epochs; final HD train {} test {}; stack used {} of {} bytes",
        epochs,
        train,
        test,
        stack.used,
        stack.size
    );
    hprintln!(
        "# {}: final test HD {} 0.05",
        if pass { "PASS" } else { "FAIL" },
        if pass { "<" } else { ">=" }
    );
    exit(pass)
}

/// Ends the emulator through semihosting with status 0 (`ok`) or 1.
pub fn exit(ok: bool) -> ! {
    use cortex_m_semihosting::debug;
    debug::exit(if ok { debug::EXIT_SUCCESS } else { debug::EXIT_FAILURE });
    // Not reached under an emulator with semihosting; on a board without a debugger, spin.
    loop {
        core::hint::spin_loop();
    }
}
