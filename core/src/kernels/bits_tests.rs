//! The integer bit kernels: the scalar oracles against their plain definitions (small, for
//! Miri), and every [`BitsLevel`] this CPU has against the oracles, bit-exact, on random and
//! extreme inputs. Level loops print the levels they ran and a `SKIP` line for each one the
//! CPU lacks (see them with `--nocapture`).

use super::bits::SIGNED_SUM_MAX_LEN;
use super::*;
use crate::spins::words_for;
extern crate std;
use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg64;
use std::vec;
use std::vec::Vec;

/// The levels above the oracle that this CPU runs, printing a `SKIP` line for the others.
fn simd_levels(test: &str) -> Vec<BitsLevel> {
    let (run, skip): (Vec<BitsLevel>, Vec<BitsLevel>) =
        BitsLevel::ALL[1..].iter().partition(|l| l.available());
    for l in &skip {
        std::println!("{test}: SKIP {}: not available on this CPU", l.name());
    }
    let names: Vec<&str> = run.iter().map(|l| l.name()).collect();
    std::println!("{test}: levels tested: [{}]", names.join(", "));
    run
}

/// The lengths every kernel is tested at: around words and vector widths.
const LENS: [usize; 11] = [0, 1, 63, 64, 65, 127, 128, 129, 200, 1000, 1025];

fn words(rng: &mut Pcg64, n: usize) -> Vec<u64> {
    (0..n).map(|_| rng.next_u64()).collect()
}

/// Spin `j` (±1) of a bit vector.
fn spin(bits: &[u64], j: usize) -> i64 {
    if (bits[j / 64] >> (j % 64)) & 1 == 1 {
        1
    } else {
        -1
    }
}

// ---------------------------------------------------------------------------------------
// The oracles against the definitions (small: these run under Miri).

#[test]
fn scalar_popcounts_match_the_definition() {
    let mut rng = Pcg64::seed_from_u64(71);
    for n in [0usize, 1, 2, 5] {
        let (a, b, m) = (words(&mut rng, n), words(&mut rng, n), words(&mut rng, n));
        let (mut diff, mut masked) = (0u32, 0u32);
        for j in 0..64 * n {
            let (x, y, k) = (
                (a[j / 64] >> (j % 64)) & 1,
                (b[j / 64] >> (j % 64)) & 1,
                (m[j / 64] >> (j % 64)) & 1,
            );
            diff += u32::from(x != y);
            masked += u32::from(x != y && k == 1);
        }
        assert_eq!(bits::xor_popcount(&a, &b), diff);
        assert_eq!(bits::masked_xor_popcount(&a, &b, &m), masked);
        // a·b = n − 2·popcount(a ⊕ b) for ±1 vectors.
        let dot: i64 = (0..64 * n).map(|j| spin(&a, j) * spin(&b, j)).sum();
        assert_eq!(dot, 64 * n as i64 - 2 * i64::from(diff));
    }
}

#[test]
fn scalar_signed_kernels_match_an_explicit_pm1_vector() {
    let mut rng = Pcg64::seed_from_u64(72);
    for n in [0usize, 1, 63, 64, 65, 130] {
        let b = words(&mut rng, words_for(n));
        let s: Vec<i64> = (0..n).map(|j| spin(&b, j)).collect();
        let x = rng.next_u32() as i32 >> 4;
        let acc0: Vec<i32> = (0..n).map(|_| rng.next_u32() as i32 >> 4).collect();
        let mut acc = acc0.clone();
        bits::signed_add_i32(&b, x, &mut acc);
        for j in 0..n {
            assert_eq!(i64::from(acc[j]), i64::from(acc0[j]) + s[j] * i64::from(x), "{n} {j}");
        }
        let x64 = i64::from(x) << 20;
        let acc0: Vec<i64> = acc0.iter().map(|&a| i64::from(a) << 20).collect();
        let mut acc = acc0.clone();
        bits::signed_add_i64(&b, x64, &mut acc);
        for j in 0..n {
            assert_eq!(acc[j], acc0[j] + s[j] * x64, "{n} {j}");
        }
        let t: Vec<i16> = (0..n).map(|_| rng.next_u32() as i16).collect();
        let want: i64 = (0..n).map(|j| s[j] * i64::from(t[j])).sum();
        assert_eq!(i64::from(bits::signed_sum_i16(&b, &t)), want, "{n}");
        let a = rng.next_u32() as i32;
        let mut acc = acc0.clone();
        bits::axpy_i16_i64(a, &t, &mut acc);
        for j in 0..n {
            assert_eq!(acc[j], acc0[j] + i64::from(a) * i64::from(t[j]), "{n} {j}");
        }
    }
}

#[test]
fn scalar_signed_kernels_wrap_and_ignore_padding_bits() {
    // ±i32::MIN is i32::MIN; MAX + MAX wraps.
    let mut acc = [i32::MAX, i32::MIN, 0];
    bits::signed_add_i32(&[0b001], i32::MIN, &mut acc);
    assert_eq!(acc, [-1, 0, i32::MIN]);
    let mut acc = [i32::MAX, i32::MIN];
    bits::signed_add_i32(&[0b01 | !0b11], i32::MAX, &mut acc);
    assert_eq!(acc, [-2, 1]);
    let mut acc = [i64::MAX, i64::MIN];
    bits::signed_add_i64(&[0b01], i64::MIN, &mut acc);
    assert_eq!(acc, [-1, 0]);
    // Σ s·t with i16::MIN entries: −(−2¹⁵) = 2¹⁵ in i32.
    assert_eq!(bits::signed_sum_i16(&[0b10 | !0b11], &[i16::MIN, i16::MIN]), 0);
    assert_eq!(bits::signed_sum_i16(&[0], &[i16::MIN; 3]), 3 << 15);
    let mut acc = [i64::MAX, 0];
    bits::axpy_i16_i64(i32::MIN, &[-1, i16::MIN], &mut acc);
    assert_eq!(acc, [i64::MAX.wrapping_add(1 << 31), 1 << 46]);
}

/// The one input whose signed sum leaves `i32`: `2¹⁶ · 2¹⁵ = 2³¹` wraps to `i32::MIN`.
#[test]
#[cfg_attr(miri, ignore = "2^16 entries: slow under Miri")]
fn scalar_signed_sum_wraps_at_the_length_limit() {
    let t = vec![i16::MIN; SIGNED_SUM_MAX_LEN];
    let clear = vec![0u64; words_for(t.len())];
    assert_eq!(bits::signed_sum_i16(&clear, &t), i32::MIN);
    let set = vec![!0u64; words_for(t.len())];
    assert_eq!(bits::signed_sum_i16(&set, &t), i32::MIN);
}

// ---------------------------------------------------------------------------------------
// Every level against the oracles.

/// Runs every kernel at `level` and at the oracle on the same inputs, asserting equal bits.
struct Case {
    bits: Vec<u64>,
    acc32: Vec<i32>,
    acc64: Vec<i64>,
    t: Vec<i16>,
}

impl Case {
    fn check(&self, level: BitsLevel, x: i32, x64: i64, a: i32, what: &str) {
        let n = self.t.len();
        let mut got = self.acc32.clone();
        let mut want = self.acc32.clone();
        signed_add_i32_with(level, &self.bits, x, &mut got);
        bits::signed_add_i32(&self.bits, x, &mut want);
        assert_eq!(got, want, "signed_add_i32 {} n={n} x={x} {what}", level.name());
        let mut got = self.acc64.clone();
        let mut want = self.acc64.clone();
        signed_add_i64_with(level, &self.bits, x64, &mut got);
        bits::signed_add_i64(&self.bits, x64, &mut want);
        assert_eq!(got, want, "signed_add_i64 {} n={n} x={x64} {what}", level.name());
        let got = signed_sum_i16_with(level, &self.bits, &self.t);
        let want = bits::signed_sum_i16(&self.bits, &self.t);
        assert_eq!(got, want, "signed_sum_i16 {} n={n} {what}", level.name());
        let mut got = self.acc64.clone();
        let mut want = self.acc64.clone();
        axpy_i16_i64_with(level, a, &self.t, &mut got);
        bits::axpy_i16_i64(a, &self.t, &mut want);
        assert_eq!(got, want, "axpy_i16_i64 {} n={n} a={a} {what}", level.name());
    }
}

#[test]
#[cfg_attr(miri, ignore = "SIMD intrinsics are not what Miri checks here")]
fn popcounts_agree_with_the_oracle_at_every_level() {
    let levels = simd_levels("bits_popcounts");
    let mut rng = Pcg64::seed_from_u64(73);
    // Word counts: the element lengths, and every count up to 70 (vector and block edges).
    let counts = LENS.iter().copied().chain(0..70).chain([31 * 4, 31 * 4 + 3, 31 * 8 + 9]);
    for n in counts {
        let (a, b, m) = (words(&mut rng, n), words(&mut rng, n), words(&mut rng, n));
        let want = bits::xor_popcount(&a, &b);
        let want_m = bits::masked_xor_popcount(&a, &b, &m);
        for &l in &levels {
            assert_eq!(xor_popcount_with(l, &a, &b), want, "{} n={n}", l.name());
            assert_eq!(masked_xor_popcount_with(l, &a, &b, &m), want_m, "{} n={n}", l.name());
        }
        // All ones: the byte counters reach their bound.
        let ones = vec![!0u64; n];
        let zeros = vec![0u64; n];
        for &l in &levels {
            assert_eq!(xor_popcount_with(l, &ones, &zeros), 64 * n as u32, "{} n={n}", l.name());
            let got = masked_xor_popcount_with(l, &zeros, &ones, &ones);
            assert_eq!(got, 64 * n as u32, "{} n={n}", l.name());
            assert_eq!(masked_xor_popcount_with(l, &ones, &zeros, &zeros), 0, "{}", l.name());
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "SIMD intrinsics are not what Miri checks here")]
fn signed_kernels_agree_with_the_oracle_at_every_level() {
    let levels = simd_levels("bits_signed_random");
    let mut rng = Pcg64::seed_from_u64(74);
    for n in LENS.iter().copied().chain([2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 96, 3000]) {
        // Random words: the padding bits past n are random too (and must be ignored).
        let case = Case {
            bits: words(&mut rng, words_for(n)),
            acc32: (0..n).map(|_| rng.next_u32() as i32).collect(),
            acc64: (0..n).map(|_| rng.next_u64() as i64).collect(),
            t: (0..n).map(|_| rng.next_u32() as i16).collect(),
        };
        for &l in &levels {
            case.check(
                l,
                rng.next_u32() as i32,
                rng.next_u64() as i64,
                rng.next_u32() as i32,
                "random",
            );
            case.check(l, -5, 1 << 40, 3, "small");
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "SIMD intrinsics are not what Miri checks here")]
fn signed_kernels_agree_on_extreme_values() {
    let levels = simd_levels("bits_signed_extreme");
    let mut rng = Pcg64::seed_from_u64(75);
    for n in LENS {
        for pattern in 0..4 {
            let bits: Vec<u64> = match pattern {
                0 => vec![0; words_for(n)],
                1 => vec![!0; words_for(n)],
                2 => vec![0xaaaa_aaaa_aaaa_aaaa; words_for(n)],
                _ => words(&mut rng, words_for(n)),
            };
            let pick32 = [i32::MAX, i32::MIN, -1, 0];
            let pick64 = [i64::MAX, i64::MIN, -1, 0];
            let pick16 = [i16::MIN, i16::MAX, -1, i16::MIN];
            let case = Case {
                bits,
                acc32: (0..n).map(|j| pick32[(j * 7 + pattern) % 4]).collect(),
                acc64: (0..n).map(|j| pick64[(j * 5 + pattern) % 4]).collect(),
                t: (0..n).map(|j| pick16[(j * 3 + pattern) % 4]).collect(),
            };
            let all_min = Case { t: vec![i16::MIN; n], ..case_clone(&case) };
            for &l in &levels {
                for (x, x64, a) in [
                    (i32::MAX, i64::MAX, i32::MAX),
                    (i32::MIN, i64::MIN, i32::MIN),
                    (-1, -1, -1),
                    (0, 0, 0),
                ] {
                    case.check(l, x, x64, a, "extreme");
                    all_min.check(l, x, x64, a, "i16::MIN entries");
                }
            }
        }
    }
    // The longest signed sums, including the one that wraps (every entry i16::MIN, spin −1).
    let n = SIGNED_SUM_MAX_LEN;
    let t_min = vec![i16::MIN; n];
    let t_rand: Vec<i16> = (0..n).map(|_| rng.next_u32() as i16).collect();
    for b in [vec![0u64; words_for(n)], vec![!0u64; words_for(n)], words(&mut rng, words_for(n))] {
        for t in [&t_min, &t_rand] {
            let want = bits::signed_sum_i16(&b, t);
            for &l in &levels {
                assert_eq!(signed_sum_i16_with(l, &b, t), want, "{} n={n}", l.name());
            }
        }
    }
}

fn case_clone(c: &Case) -> Case {
    Case { bits: c.bits.clone(), acc32: c.acc32.clone(), acc64: c.acc64.clone(), t: c.t.clone() }
}

/// The dispatched entry points run [`BitsLevel::active`], which follows [`active`].
#[test]
#[cfg_attr(miri, ignore = "SIMD intrinsics are not what Miri checks here")]
fn dispatched_entry_points_match_the_oracle() {
    let level = BitsLevel::active();
    assert!(level.available(), "{level:?}");
    assert_eq!(level, BitsLevel::for_isa(active()));
    std::println!("bits_dispatch: active level {}", level.name());
    let mut rng = Pcg64::seed_from_u64(76);
    let n = 777;
    let (a, b, m) = (words(&mut rng, n), words(&mut rng, n), words(&mut rng, n));
    assert_eq!(xor_popcount(&a, &b), bits::xor_popcount(&a, &b));
    assert_eq!(masked_xor_popcount(&a, &b, &m), bits::masked_xor_popcount(&a, &b, &m));
    let s = &a[..words_for(n)];
    let t: Vec<i16> = (0..n).map(|_| rng.next_u32() as i16).collect();
    let (mut x, mut y) = (vec![3i32; n], vec![3i32; n]);
    signed_add_i32(s, -9, &mut x);
    bits::signed_add_i32(s, -9, &mut y);
    assert_eq!(x, y);
    let (mut x, mut y) = (vec![3i64; n], vec![3i64; n]);
    signed_add_i64(s, -9, &mut x);
    bits::signed_add_i64(s, -9, &mut y);
    assert_eq!(x, y);
    assert_eq!(signed_sum_i16(s, &t), bits::signed_sum_i16(s, &t));
    axpy_i16_i64(77, &t, &mut x);
    bits::axpy_i16_i64(77, &t, &mut y);
    assert_eq!(x, y);
}

#[test]
fn levels_have_names_and_the_scalar_one_is_everywhere() {
    for l in BitsLevel::ALL {
        assert!(!l.name().is_empty());
    }
    assert!(BitsLevel::Scalar.available());
    for isa in Isa::ALL {
        if isa.available() {
            let l = BitsLevel::for_isa(isa);
            assert!(l.available(), "{isa:?} → {l:?}");
        }
    }
    if !cfg!(target_arch = "x86_64") {
        assert_eq!(BitsLevel::ALL.iter().filter(|l| l.available()).count(), 1);
    }
}

/// Every level keeps the oracle's length checks.
#[test]
#[cfg_attr(miri, ignore = "panics and unwinding: not what Miri checks here")]
fn every_level_rejects_mismatched_lengths() {
    let mut levels = simd_levels("bits_lengths");
    levels.insert(0, BitsLevel::Scalar);
    for l in levels {
        let panics =
            |f: &dyn Fn()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err();
        assert!(panics(&|| {
            xor_popcount_with(l, &[1, 2], &[1]);
        }));
        assert!(panics(&|| {
            masked_xor_popcount_with(l, &[1], &[1], &[]);
        }));
        assert!(panics(&|| signed_add_i32_with(l, &[1], 1, &mut [0; 65])));
        assert!(panics(&|| signed_add_i64_with(l, &[1, 2], 1, &mut [0; 64])));
        assert!(panics(&|| {
            signed_sum_i16_with(l, &[], &[1]);
        }));
        let long = vec![0i16; SIGNED_SUM_MAX_LEN + 1];
        let b = vec![0u64; words_for(long.len())];
        assert!(panics(&|| {
            signed_sum_i16_with(l, &b, &long);
        }));
        assert!(panics(&|| axpy_i16_i64_with(l, 1, &[1, 2], &mut [0; 3])));
    }
}

/// A level this CPU lacks panics instead of running.
#[test]
#[cfg_attr(miri, ignore = "panics and unwinding: not what Miri checks here")]
fn unavailable_levels_panic() {
    for l in BitsLevel::ALL.into_iter().filter(|l| !l.available()) {
        let r = std::panic::catch_unwind(|| xor_popcount_with(l, &[1], &[2]));
        assert!(r.is_err(), "{l:?}");
    }
}

// ---------------------------------------------------------------------------------------
// The integer PID block kernels.

/// `hidden_block` straight from its definition, in `i64` on explicit ±1 values.
fn hidden_block_definition(blk: &bits::HiddenBlock<'_>, u: &mut [i32], g: &mut [i64]) {
    let (k, n) = (blk.patterns, blk.units);
    let rows = blk.m.len() / k;
    let r = (blk.tanh.len() / 2) as i64;
    let s = |kk: usize, a: usize| spin(&[blk.signs[kk * blk.stride]], a);
    for row in 0..rows {
        let m = &blk.m[row * k..(row + 1) * k];
        let t: Vec<i64> = (0..n)
            .map(|a| {
                let f: i64 = (0..k).map(|kk| s(kk, a) * i64::from(m[kk])).sum();
                let f = i64::from(f as i32); // the kernel's i32 field wraps
                i64::from(blk.tanh[(f.clamp(-r, r) + r) as usize])
            })
            .collect();
        let w = blk.weights[usize::from(row >= blk.data_rows)];
        for kk in 0..k {
            let uk: i64 = (0..n).map(|a| s(kk, a) * t[a]).sum();
            u[row * k + kk] = u[row * k + kk].wrapping_add(uk as i32);
            for a in 0..n {
                let x = w.wrapping_mul(i64::from(m[kk])).wrapping_mul(t[a]);
                g[kk * n + a] = g[kk * n + a].wrapping_add(x);
            }
        }
    }
}

/// One random `hidden_block` case: owned inputs.
struct BlockCase {
    signs: Vec<u64>,
    stride: usize,
    units: usize,
    patterns: usize,
    m: Vec<i32>,
    data_rows: usize,
    weights: [i64; 2],
    tanh: Vec<i16>,
    u: Vec<i32>,
    g: Vec<i64>,
}

impl BlockCase {
    fn random(rng: &mut Pcg64, patterns: usize, units: usize, rows: usize, mmax: i32) -> Self {
        let stride = 1 + rng.next_u32() as usize % 3;
        let r = [0usize, 1, 2, 90, 400][rng.next_u32() as usize % 5];
        let tanh: Vec<i16> = if rng.next_u32().is_multiple_of(2) {
            (0..2 * r + 1)
                .map(|j| ((j as i64 - r as i64) * 16384 / (r as i64).max(1)) as i16)
                .collect()
        } else {
            (0..2 * r + 1).map(|_| rng.next_u32() as i16).collect()
        };
        let span = 2 * i64::from(mmax) + 1;
        let extra = rng.next_u32() as usize % 2;
        BlockCase {
            signs: words(rng, (patterns - 1) * stride + 1 + extra),
            stride,
            units,
            patterns,
            m: (0..rows * patterns)
                .map(|_| ((rng.next_u64() % span as u64) as i64 - i64::from(mmax)) as i32)
                .collect(),
            data_rows: rng.next_u32() as usize % (rows + 1),
            weights: [i64::from(rng.next_u32() as i32 >> 8), -i64::from(rng.next_u32() >> 12)],
            tanh,
            u: (0..rows * patterns).map(|_| rng.next_u32() as i32).collect(),
            g: (0..patterns * units).map(|_| rng.next_u64() as i64 >> 8).collect(),
        }
    }

    fn blk(&self) -> bits::HiddenBlock<'_> {
        bits::HiddenBlock {
            signs: &self.signs,
            stride: self.stride,
            units: self.units,
            patterns: self.patterns,
            m: &self.m,
            data_rows: self.data_rows,
            weights: self.weights,
            tanh: &self.tanh,
        }
    }

    /// `(u, g)` after the kernel at `level` (`None`: the oracle).
    fn run(&self, level: Option<BitsLevel>) -> (Vec<i32>, Vec<i64>) {
        let (mut u, mut g) = (self.u.clone(), self.g.clone());
        let (mut f, mut t) = (vec![0i32; 64], vec![0i16; 64]);
        match level {
            None => bits::hidden_block(&self.blk(), &mut u, &mut g, &mut f, &mut t),
            Some(l) => hidden_block_with(l, &self.blk(), &mut u, &mut g, &mut f, &mut t),
        }
        (u, g)
    }
}

#[test]
fn scalar_hidden_block_matches_the_definition() {
    let mut rng = Pcg64::seed_from_u64(81);
    for (k, n, rows) in [(1usize, 1usize, 1usize), (3, 5, 4), (2, 64, 3), (5, 17, 0)] {
        for mmax in [3, 40_000] {
            let case = BlockCase::random(&mut rng, k, n, rows, mmax);
            let (mut u, mut g) = (case.u.clone(), case.g.clone());
            hidden_block_definition(&case.blk(), &mut u, &mut g);
            assert_eq!(case.run(None), (u, g), "K={k} n={n} rows={rows}");
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "SIMD intrinsics are not what Miri checks here")]
fn hidden_block_agrees_with_the_oracle_at_every_level() {
    let levels = simd_levels("bits_hidden_block");
    let mut rng = Pcg64::seed_from_u64(82);
    let mut shapes = vec![(40usize, 64usize, 160usize), (8, 40, 11), (1, 1, 1), (130, 20, 5)];
    for k in [2usize, 7, 8, 9, 16, 17, 24, 33, 41, 48, 63, 64, 65, 96, 97, 128, 129] {
        shapes.push((k, 1 + rng.next_u32() as usize % 64, 1 + rng.next_u32() as usize % 9));
    }
    for (k, n, rows) in shapes {
        // Overlaps: small, at the i16 limit, and past it (where the oracle runs).
        for mmax in [1, 144, 32_767, 32_768, 1 << 20] {
            let case = BlockCase::random(&mut rng, k, n, rows, mmax);
            let want = case.run(None);
            for &l in &levels {
                assert_eq!(
                    case.run(Some(l)),
                    want,
                    "{} K={k} n={n} rows={rows} m≤{mmax}",
                    l.name()
                );
            }
        }
    }
    // Extremes: every overlap ±(2¹⁵ − 1), every entry i16::MIN, many rows (several flushes
    // of the i32 accumulators), all signs set or clear.
    for fill in [0u64, !0] {
        let mut case = BlockCase::random(&mut rng, 9, 64, 70, 1);
        case.m
            .iter_mut()
            .enumerate()
            .for_each(|(j, x)| *x = if j % 3 == 0 { -32_767 } else { 32_767 });
        case.tanh = vec![i16::MIN; 5];
        case.signs.fill(fill);
        case.weights = [i64::from(i32::MAX), i64::from(i32::MIN)];
        let want = case.run(None);
        for &l in &levels {
            assert_eq!(case.run(Some(l)), want, "{} extremes", l.name());
        }
    }
}

#[test]
fn scalar_signed_rows_add_is_one_signed_add_per_row() {
    let mut rng = Pcg64::seed_from_u64(83);
    for n in [0usize, 1, 16, 70] {
        let (rw, rows, stride) = (words_for(n), 3usize, 2usize);
        let b = words(&mut rng, rw * rows);
        let x: Vec<i32> = (0..rows * stride).map(|_| rng.next_u32() as i32).collect();
        let acc0: Vec<i64> = (0..n).map(|_| rng.next_u64() as i64).collect();
        let mut acc = acc0.clone();
        bits::signed_rows_add_i64(&b, rw, &x, stride, -7, &mut acc);
        for j in 0..n {
            let mut want = acc0[j];
            for s in 0..rows {
                let c = (-7i64).wrapping_mul(i64::from(x[s * stride]));
                want = want.wrapping_add(c.wrapping_mul(spin(&b[s * rw..(s + 1) * rw], j)));
            }
            assert_eq!(acc[j], want, "{n} {j}");
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "SIMD intrinsics are not what Miri checks here")]
fn signed_rows_add_agrees_with_the_oracle_at_every_level() {
    let levels = simd_levels("bits_signed_rows");
    let mut rng = Pcg64::seed_from_u64(84);
    for n in LENS.iter().copied().chain([15, 16, 17, 31, 32, 48, 144, 784]) {
        for rows in [0usize, 1, 2, 7, 160] {
            let rw = words_for(n);
            let stride = 1 + rng.next_u32() as usize % 40;
            let b = words(&mut rng, rw * rows);
            let x: Vec<i32> = (0..rows * stride).map(|_| rng.next_u32() as i32).collect();
            let acc: Vec<i64> = (0..n).map(|_| rng.next_u64() as i64).collect();
            for w in [1i64, -120, i64::MAX, i64::MIN, rng.next_u64() as i64] {
                let mut want = acc.clone();
                bits::signed_rows_add_i64(&b, rw, &x, stride, w, &mut want);
                for &l in &levels {
                    let mut got = acc.clone();
                    signed_rows_add_i64_with(l, &b, rw, &x, stride, w, &mut got);
                    assert_eq!(got, want, "{} n={n} rows={rows} w={w}", l.name());
                }
            }
        }
    }
}

/// The block kernels keep the oracle's length checks at every level.
#[test]
#[cfg_attr(miri, ignore = "panics and unwinding: not what Miri checks here")]
fn block_kernels_reject_mismatched_lengths() {
    let mut levels = simd_levels("bits_block_lengths");
    levels.insert(0, BitsLevel::Scalar);
    let panics = |f: &dyn Fn()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err();
    let tanh = [0i16; 3];
    let m = [1i32; 6];
    let ok = bits::HiddenBlock {
        signs: &[0, 0],
        stride: 1,
        units: 4,
        patterns: 2,
        m: &m,
        data_rows: 1,
        weights: [2, -3],
        tanh: &tanh,
    };
    for l in levels {
        let run = |blk: bits::HiddenBlock<'_>, u: usize, g: usize| {
            let (mut u, mut g) = (vec![0i32; u], vec![0i64; g]);
            hidden_block_with(l, &blk, &mut u, &mut g, &mut [0; 64], &mut [0; 64]);
        };
        assert!(!panics(&|| run(ok, 6, 8)), "{}", l.name());
        assert!(panics(&|| run(ok, 5, 8)));
        assert!(panics(&|| run(ok, 6, 7)));
        assert!(panics(&|| run(bits::HiddenBlock { units: 65, ..ok }, 6, 130)));
        assert!(panics(&|| run(bits::HiddenBlock { signs: &[0], ..ok }, 6, 8)));
        assert!(panics(&|| run(bits::HiddenBlock { data_rows: 4, ..ok }, 6, 8)));
        assert!(panics(&|| run(bits::HiddenBlock { tanh: &tanh[..2], ..ok }, 6, 8)));
        assert!(panics(&|| signed_rows_add_i64_with(l, &[0; 3], 1, &[0; 3], 1, 1, &mut [0; 65])));
        assert!(panics(&|| signed_rows_add_i64_with(l, &[0; 3], 1, &[0; 2], 1, 1, &mut [0; 64])));
    }
}

#[test]
fn scalar_overlaps_rows_are_pm1_dot_products() {
    let mut rng = Pcg64::seed_from_u64(85);
    for n in [0usize, 1, 16, 64, 70, 144] {
        let (w, k) = (words_for(n), 5usize);
        // Padding bits clear in both: the overlap is the dot product of the n spins.
        let mask = |j: usize| if n >= 64 * (j + 1) { !0 } else { (1u64 << (n % 64)) - 1 };
        let rows: Vec<u64> = (0..k * w).map(|i| rng.next_u64() & mask(i % w.max(1))).collect();
        let b: Vec<u64> = (0..w).map(|i| rng.next_u64() & mask(i)).collect();
        let mut out = vec![0i32; k];
        bits::overlaps_rows(&rows, &b, n as i32, &mut out);
        for kk in 0..k {
            let dot: i64 = (0..n).map(|j| spin(&rows[kk * w..(kk + 1) * w], j) * spin(&b, j)).sum();
            assert_eq!(i64::from(out[kk]), dot, "n={n} k={kk}");
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "SIMD intrinsics are not what Miri checks here")]
fn overlaps_rows_agree_with_the_oracle_at_every_level() {
    let levels = simd_levels("bits_overlaps_rows");
    let mut rng = Pcg64::seed_from_u64(86);
    for w in [0usize, 1, 3, 7, 8, 9, 13, 40] {
        for k in [0usize, 1, 8, 40] {
            let (rows, b) = (words(&mut rng, k * w), words(&mut rng, w));
            let n = [64 * w as i32, 5, i32::MAX, i32::MIN][rng.next_u32() as usize % 4];
            let mut want = vec![0i32; k];
            bits::overlaps_rows(&rows, &b, n, &mut want);
            for &l in &levels {
                let mut got = vec![7i32; k];
                overlaps_rows_with(l, &rows, &b, n, &mut got);
                assert_eq!(got, want, "{} w={w} k={k}", l.name());
            }
        }
    }
    let mut levels = levels;
    levels.insert(0, BitsLevel::Scalar);
    for l in levels {
        let r =
            std::panic::catch_unwind(|| overlaps_rows_with(l, &[0; 5], &[0; 2], 0, &mut [0; 2]));
        assert!(r.is_err(), "{}", l.name());
    }
}

#[test]
fn scalar_apply_steps_follow_the_definition() {
    let mut rng = Pcg64::seed_from_u64(87);
    for (mul, shift) in [(40_000i64, 40u32), (1 << 15, 1), (65_535, 62), (3, 63)] {
        let theta: Vec<i8> = (0..20).map(|_| rng.next_u32() as i8).collect();
        let d: Vec<i64> = (0..20).map(|_| (rng.next_u64() as i64) >> 17).collect();
        let mut got = theta.clone();
        bits::apply_steps(&mut got, &d, mul, shift);
        for j in 0..20 {
            // Exact in i128: round half up, then the two clamps.
            let x = (i128::from(d[j]) * i128::from(mul) + (1i128 << (shift - 1))) >> shift;
            let want = (i128::from(theta[j]) + x.clamp(-255, 255)).clamp(-127, 127);
            assert_eq!(i128::from(got[j]), want, "{mul} {shift} {j}");
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "SIMD intrinsics are not what Miri checks here")]
fn apply_steps_agree_with_the_oracle_at_every_level() {
    let levels = simd_levels("bits_apply_steps");
    let mut rng = Pcg64::seed_from_u64(88);
    for n in [0usize, 1, 7, 8, 9, 16, 63, 64, 65, 1000] {
        let theta: Vec<i8> = (0..n).map(|_| rng.next_u32() as i8).collect();
        for (mul, shift) in [
            (40_000i64, 40u32),
            (1 << 15, 1),
            (65_535, 62),
            (3, 63),
            (1 << 30, 20),
            ((1 << 31) - 1, 33),
            (1 << 31, 45),
            (-5, 3),
        ] {
            for scale in [0u32, 17, 40, 63] {
                let d: Vec<i64> = (0..n).map(|_| (rng.next_u64() as i64) >> scale).collect();
                let mut want = theta.clone();
                bits::apply_steps(&mut want, &d, mul, shift);
                for &l in &levels {
                    let mut got = theta.clone();
                    apply_steps_with(l, &mut got, &d, mul, shift);
                    assert_eq!(got, want, "{} n={n} μ={mul} σ={shift} d>>{scale}", l.name());
                }
            }
        }
    }
    // Entries near the clamps and the rounding edges.
    let d: Vec<i64> = (-40..40).map(|j| j << 20).chain([i64::MAX, i64::MIN, -1, 0, 1]).collect();
    let theta: Vec<i8> = (0..d.len()).map(|j| [127i8, -127, 0, -128, 5][j % 5]).collect();
    let mut want = theta.clone();
    bits::apply_steps(&mut want, &d, 1 << 15, 35);
    for &l in &levels {
        let mut got = theta.clone();
        apply_steps_with(l, &mut got, &d, 1 << 15, 35);
        assert_eq!(got, want, "{} edges", l.name());
    }
}
