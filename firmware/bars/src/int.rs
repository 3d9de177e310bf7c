//! The integer run: RAPID (`pid`) on Bars 4×4 with rapid-core's integer engine
//! ([`IntEngine`], fixed-point latent `θ` and packed signs, no floating point in the step),
//! evaluated with integer fields and threshold-table draws ([`hd_int`]).
//!
//! The two lookup tables are built on the host by `build.rs` with the core's formulas and
//! linked as constant arrays ([`TANH_TABLE`], [`THRESHOLD_TABLE`], in flash), so an image
//! that runs [`run_int`] needs no floating-point code at all. The buffers are the caller's
//! `static`s ([`int_buffers!`](crate::int_buffers)), sized by the core's
//! `const fn` [`IntConfig::lengths`].

use core::fmt;
use core::num::NonZeroUsize;

use rand_core::SeedableRng;
use rand_pcg::Pcg32;
use rapid_core::int::sample::sample_scratch_len;
use rapid_core::int::{IntBuffers, IntConfig, IntEngine, IntLengths, Signs, Tables};
use rapid_core::kernels::bulk::Lanes;
use rapid_core::ra::model::Dims;
use rapid_core::spins::words_for;

use crate::{hprintln, kept, shown, shuffle, Hd, Set, BATCH, EVAL_SEED, K, N_TRAIN, REPEATS, V};

include!(concat!(env!("OUT_DIR"), "/int_tables.rs"));

/// The paper's Bars 4×4 set-up in fixed point (`pid`, η = 0.02, batch 3, γ = 0.96 down to
/// 1e−5, each in Q32).
pub const CONFIG: IntConfig = IntConfig::paper_bars();
const _: () = assert!(CONFIG.batch == BATCH);
const _: () = assert!(words_for(V) == 1, "an image is one word of spins");

/// Every buffer length of a run with `hidden` hidden units (the core's, at compile time).
pub const fn lengths(hidden: usize) -> IntLengths {
    CONFIG.lengths(Dims::new(V, hidden, K))
}

/// Bytes of RAM the buffers of [`lengths`] take (`θ` is `i8`, the spin words `u64`, the
/// scratches `i32`, `i16` and `i64`).
pub const fn buffer_bytes(len: IntLengths) -> usize {
    len.theta
        + 8 * (len.signs + len.negatives + len.words)
        + 4 * len.scratch
        + 2 * len.t
        + 8 * len.wide
}

/// Bytes of flash the two tables take.
pub const TABLE_BYTES: usize = 2 * TANH_TABLE.len() + 4 * THRESHOLD_TABLE.len();

/// The tables as the engine takes them (lengths and saturated ends checked by the core).
///
/// # Panics
/// If the generated tables do not fit `K` (a build problem).
pub fn tables() -> Tables<'static> {
    // Not `expect`: formatting the error (`ConfigError: Debug`, which has `f32` fields) would
    // link the float formatting code and its soft-float comparisons on a Cortex-M0.
    match Tables::from_slices(K, &TANH_TABLE, &THRESHOLD_TABLE) {
        Ok(t) => t,
        Err(_) => panic!("build.rs made tables for another K"),
    }
}

/// Defines the `static` buffers of an integer run with `$hidden` hidden units (one
/// `ConstStaticCell` each, in `.bss`) and takes them once: an [`IntBuffers`]. Call it once.
#[macro_export]
macro_rules! int_buffers {
    ($hidden:expr) => {{
        use $crate::static_cell::ConstStaticCell;
        const LEN: $crate::rapid_core::int::IntLengths = $crate::int::lengths($hidden);
        static THETA: ConstStaticCell<[i8; LEN.theta]> = ConstStaticCell::new([0; LEN.theta]);
        static SIGNS: ConstStaticCell<[u64; LEN.signs]> = ConstStaticCell::new([0; LEN.signs]);
        static NEGATIVES: ConstStaticCell<[u64; LEN.negatives]> =
            ConstStaticCell::new([0; LEN.negatives]);
        static WORDS: ConstStaticCell<[u64; LEN.words]> = ConstStaticCell::new([0; LEN.words]);
        static SCRATCH: ConstStaticCell<[i32; LEN.scratch]> =
            ConstStaticCell::new([0; LEN.scratch]);
        static T: ConstStaticCell<[i16; LEN.t]> = ConstStaticCell::new([0; LEN.t]);
        static WIDE: ConstStaticCell<[i64; LEN.wide]> = ConstStaticCell::new([0; LEN.wide]);
        $crate::rapid_core::int::IntBuffers {
            theta: THETA.take(),
            signs: SIGNS.take(),
            negatives: NEGATIVES.take(),
            words: WORDS.take(),
            scratch: SCRATCH.take(),
            t: T.take(),
            wide: WIDE.take(),
        }
    }};
}

/// An image as one word of spins (bit `i` set iff pixel `i` is `+1`).
pub fn pack(image: &[i8; V]) -> u64 {
    image.iter().enumerate().fold(0, |w, (i, &x)| w | (u64::from(x > 0) << i))
}

/// The reconstruction HD of `set` through integer fields (the harness's protocol, as
/// [`crate::hd_f32`]): per image, [`REPEATS`] times `h` is drawn from the start (top row kept,
/// the other pixels neutral: masked out of the overlaps) block by block against the
/// threshold table, and `v` from `P(v | h)` — the draws of the harness, which computes the
/// start's field once; here it is recomputed per draw so the scratch stays `K + 64` entries
/// (`sample_scratch_len`) whatever `H`. `h` is `words_for(H)` words.
///
/// # Panics
/// If the model's `V` is not [`V`], its `K` not [`K`], or a buffer has the wrong length.
pub fn hd_int(
    signs: &Signs<'_>,
    tables: &Tables<'_>,
    set: Set,
    scratch: &mut [i32],
    h: &mut [u64],
    lanes: &mut Lanes,
) -> Hd {
    let d = signs.dims();
    assert!(d.visible == V && d.patterns == K, "a Bars 4×4 model with K patterns");
    let mask = (0..V).filter(|&i| kept(i)).fold(0u64, |w, i| w | 1 << i);
    let mut hd = Hd::default();
    for n in 0..set.len() {
        let target = pack(&set.image(n));
        for _ in 0..REPEATS {
            signs.sample_hidden(&[target], Some(&[mask]), tables, h, scratch, lanes);
            let mut v = [0u64];
            signs.sample_visible(h, tables, &mut v, scratch, lanes);
            hd.wrong += u64::from((v[0] ^ target).count_ones());
        }
        hd.total += (REPEATS * V) as u64;
    }
    hd
}

/// A Q32 learning rate in the `{:.3e}` form of `rapid train` (`2.000e-2`), in integers.
#[derive(Clone, Copy, Debug)]
pub struct Q32Sci(pub u64);

impl fmt::Display for Q32Sci {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = u128::from(self.0);
        if x == 0 {
            return f.write_str("0.000e0");
        }
        // Four significant digits: n = round(x·10^(3−e)/2³²) ∈ [1000, 9999] for the right e.
        let digits = |e: i32| -> u128 {
            let (num, den) = if e <= 3 {
                (x * 10u128.pow((3 - e) as u32), 1u128 << 32)
            } else {
                (x, (1u128 << 32) * 10u128.pow((e - 3) as u32))
            };
            (2 * num + den) / (2 * den)
        };
        let mut e = 9;
        while e > -30 && digits(e) < 1000 {
            e -= 1;
        }
        let mut n = digits(e);
        if n >= 10_000 {
            e += 1;
            n = digits(e);
        }
        write!(f, "{}.{:03}e{}", n / 1000, n % 1000, e)
    }
}

/// What a board's integer run is.
#[derive(Clone, Copy, Debug)]
pub struct IntRun<'a> {
    /// The board and target, for the header.
    pub board: &'a str,
    /// Hidden units.
    pub hidden: usize,
    /// Training epochs.
    pub epochs: u32,
    /// Seed of the initial patterns and the shuffles.
    pub seed: u64,
}

/// Trains `run` with the integer engine on the buffers of
/// [`int_buffers!`](crate::int_buffers)`(run.hidden)`, prints the table (HD at epochs 1, 2,
/// 5, 10, 20, … and the last, from [`hd_int`]) and ends the emulator: status 0 iff the final
/// test HD is below 0.05.
///
/// # Panics
/// If the buffers were sized for another `H`.
pub fn run_int(run: &IntRun<'_>, mut bufs: IntBuffers<'_>) -> ! {
    let dims = Dims::new(V, run.hidden, K);
    let tables = tables();
    // Not `expect` (see `tables`).
    let Ok(mut engine) = IntEngine::new(dims, CONFIG) else {
        panic!("the integer set-up does not fit H = {}", run.hidden)
    };
    let len = engine.lengths();
    hprintln!(
        "# bars4 on {} (integer step, rapid_core::int::IntEngine): RA V={} H={} K={}, {} train / {} test images; method pid, sgd lr 0.02 (Q32; decay 0.96, min 0.00001), batch {} (scaled last batch), projection sign (latent θ in Q2.5), seed {}, {} epochs",
        run.board, V, run.hidden, K, N_TRAIN, Set::Test.len(), BATCH, run.seed, run.epochs
    );
    hprintln!(
        "# static buffers: {} B (theta {} i8, signs {} + negatives {} + words {} u64, scratch {} i32, t {} i16, wide {} i64); tables {} B in flash, built on the host",
        buffer_bytes(len), len.theta, len.signs, len.negatives, len.words, len.scratch, len.t,
        len.wide, TABLE_BYTES
    );
    crate::print_table_header();

    let mut rng = Pcg32::seed_from_u64(run.seed);
    engine.init_random(bufs.theta, bufs.signs, &mut rng);
    let divisor = NonZeroUsize::new(BATCH);
    let mut order = [0usize; N_TRAIN];
    let mut batch = [0u64; BATCH];
    let (mut train, mut test) = (Hd::default(), Hd::default());
    for epoch in 1..=run.epochs {
        let lr = engine.state().lr;
        shuffle(&mut order, &mut rng);
        for rows in order.chunks(BATCH) {
            for (slot, &img) in rows.iter().enumerate() {
                batch[slot] = pack(&Set::Train.image(img));
            }
            engine.step(&mut bufs, &tables, &batch[..rows.len()], divisor, &mut rng);
        }
        engine.end_epoch(bufs.theta);
        if shown(epoch, run.epochs) {
            let mut lanes = Lanes::seed(&mut Pcg32::seed_from_u64(EVAL_SEED + u64::from(epoch)));
            let signs = Signs::new(bufs.signs, dims);
            let scratch = &mut bufs.scratch[..sample_scratch_len(dims)];
            let h = &mut bufs.words[..words_for(run.hidden)];
            train = hd_int(&signs, &tables, Set::Train, scratch, h, &mut lanes);
            test = hd_int(&signs, &tables, Set::Test, scratch, h, &mut lanes);
            crate::print_row(epoch, format_args!("{}", Q32Sci(lr)), train, test);
        }
    }
    crate::finish(run.epochs, train, test)
}
