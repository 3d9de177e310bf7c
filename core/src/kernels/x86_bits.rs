//! x86-64 variants of the integer bit kernels of [`bits`]: the POPCNT build of the oracles,
//! AVX2, and AVX-512 (F/BW/VL, with VPOPCNTDQ popcounts where the CPU has them). Every
//! variant gives the oracle's bits: the same wrapping integer sums, in another order.
//!
//! `unsafe` is confined to SIMD loads and stores and to calls into `#[target_feature]`
//! functions, each entered only after [`Variant::available`] said the CPU (or, without
//! `std`, the build) runs it. A leaf: it builds on [`bits`] and `isa` and never calls back
//! into the dispatcher (the parent module), which maps its `BitsLevel` onto [`Variant`].
//!
//! | kernel | AVX2 | AVX-512 |
//! | --- | --- | --- |
//! | popcounts | nibble table (`vpshufb`) + `vpsadbw` from [`AVX2_POPCOUNT_MIN_WORDS`] words, POPCNT below | `vpopcntq` (VPOPCNTDQ), else the 512-bit nibble table |
//! | `signed_add_*` | bits → lane masks (`and` + `cmpeq`), `blendv(−x, x)` | bits are the blend mask |
//! | `signed_sum_i16` | bits → ±1 words, `vpmaddwd` | bits → ±1 by mask blend, `vpmaddwd` |
//! | `axpy_i16_i64` | `vpmovsxwq` + `vpmuldq` | the same on 8 lanes, masked tail |
//! | `overlaps_rows` | POPCNT per row below [`AVX2_POPCOUNT_MIN_WORDS`] words, else the popcount above per row | the same |
//! | `signed_rows_add_i64` | 16 entries in four `i64` registers over every row, `blendv(−x, x)` | the AVX2 code (AVX-512 build) |
//! | `apply_steps` | `D·μ` by two `vpmuldq`, shift by sign-mask xor, clamps by `blendv`, 8 entries | the AVX2 code |
//! | `hidden_block` | ±1 `i16` sign vectors once per block; fields, `u`, `D_h` by `vpmaddwd` into `i32`; `t` by `vpgatherdd` | the AVX2 code (AVX-512 build) |
//!
//! The block kernels (`signed_rows_add_i64`, `hidden_block`) run the same AVX2 intrinsics at
//! the AVX-512 levels, compiled with the AVX-512 features (so the bits are the AVX2 ones by
//! construction; there is no AVX-512 hardware to tune a 512-bit variant on yet).
//!
//! AVX2 tails (the entries past the last full vector of a word) go to the oracle on the
//! sub-slice; AVX-512 tails are masked loads and stores.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::bits;
use super::isa::Isa;
use crate::spins::WORD_BITS;

/// Fewest words for which the AVX2 (and AVX-512 without VPOPCNTDQ) popcounts use the nibble
/// table instead of POPCNT. Measured on AMD Zen 3 (EPYC, KVM): the two tie within noise from
/// 1 to 8 words (the table needs a whole 4-word vector and its setup), the table is ahead
/// from 12–16 words on (1.7× at 32 words, 2× at 64, 2.3× at 128).
pub(super) const AVX2_POPCOUNT_MIN_WORDS: usize = 8;

/// An x86-64 variant of the bit kernels (the dispatcher's levels above the portable one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Variant {
    /// The oracles compiled with POPCNT: only the popcounts change.
    Popcnt,
    /// AVX2 (+ POPCNT).
    Avx2,
    /// AVX-512F/BW/VL; popcounts by the 512-bit nibble table.
    Avx512,
    /// As [`Variant::Avx512`], popcounts with VPOPCNTDQ.
    Avx512Vpopcnt,
}

impl Variant {
    const fn bit(self) -> u8 {
        match self {
            Variant::Popcnt => 1,
            Variant::Avx2 => 2,
            Variant::Avx512 => 4,
            Variant::Avx512Vpopcnt => 8,
        }
    }

    /// Whether this CPU (with `std`) or this build (without) runs the variant.
    #[inline]
    pub(super) fn available(self) -> bool {
        available_mask() & self.bit() != 0
    }

    #[inline]
    fn check(self) {
        assert!(self.available(), "the {self:?} bit kernels need CPU support");
    }
}

/// The [`Variant::bit`]s of the available variants.
fn detect() -> u8 {
    let avx512 = Isa::Avx512.available();
    let mut mask = 0;
    if has_popcnt() {
        mask |= Variant::Popcnt.bit();
    }
    if Isa::Avx2.available() {
        mask |= Variant::Avx2.bit();
    }
    if avx512 {
        mask |= Variant::Avx512.bit();
    }
    if avx512 && has_vpopcntdq() {
        mask |= Variant::Avx512Vpopcnt.bit();
    }
    mask
}

#[cfg(any(feature = "std", test))]
fn has_popcnt() -> bool {
    extern crate std;
    std::is_x86_feature_detected!("popcnt")
}

#[cfg(any(feature = "std", test))]
fn has_vpopcntdq() -> bool {
    extern crate std;
    std::is_x86_feature_detected!("avx512vpopcntdq")
}

#[cfg(not(any(feature = "std", test)))]
fn has_popcnt() -> bool {
    cfg!(target_feature = "popcnt")
}

#[cfg(not(any(feature = "std", test)))]
fn has_vpopcntdq() -> bool {
    cfg!(target_feature = "avx512vpopcntdq")
}

/// The cached run-time detection: 0 = not yet, else `0x80 | mask`.
#[cfg(any(feature = "std", test))]
static MASK: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

/// [`detect`], run once (the load is all a call costs after the first).
#[cfg(any(feature = "std", test))]
#[inline]
fn available_mask() -> u8 {
    match MASK.load(core::sync::atomic::Ordering::Relaxed) {
        0 => detect_and_cache(),
        m => m,
    }
}

#[cfg(any(feature = "std", test))]
#[cold]
#[inline(never)]
fn detect_and_cache() -> u8 {
    let m = 0x80 | detect();
    MASK.store(m, core::sync::atomic::Ordering::Relaxed);
    m
}

/// Without `std` the answer is fixed by `cfg(target_feature)`.
#[cfg(not(any(feature = "std", test)))]
#[inline]
fn available_mask() -> u8 {
    detect()
}

// ---------------------------------------------------------------------------------------
// Safe entry points: check the variant and the lengths, then enter the variant.

/// [`bits::xor_popcount`] at `variant`.
#[inline]
pub(super) fn xor_popcount(variant: Variant, a: &[u64], b: &[u64]) -> u32 {
    assert_eq!(a.len(), b.len(), "bit vectors differ in length");
    variant.check();
    match variant {
        // SAFETY (every arm): the variant is available (checked above); `a` and `b` have the
        // same length and the unmasked kernels never read the third slice.
        Variant::Popcnt => unsafe { popcount_popcnt::<false>(a, b, a) },
        Variant::Avx2 => unsafe { popcount_avx2::<false>(a, b, a) },
        Variant::Avx512 => unsafe { popcount_avx512::<false>(a, b, a) },
        Variant::Avx512Vpopcnt => unsafe { popcount_vpopcnt::<false>(a, b, a) },
    }
}

/// [`bits::overlaps_rows`] at `variant`: rows shorter than [`AVX2_POPCOUNT_MIN_WORDS`] by
/// POPCNT at every variant (what [`xor_popcount`] runs for them), in one call; longer rows by
/// the variant's popcount, row by row.
#[inline]
pub(super) fn overlaps_rows(variant: Variant, rows: &[u64], b: &[u64], n: i32, out: &mut [i32]) {
    bits::check_overlaps(rows, b, out);
    variant.check();
    let w = b.len();
    let finish = |c: u32| n.wrapping_sub((c as i32).wrapping_mul(2));
    if w < AVX2_POPCOUNT_MIN_WORDS || variant == Variant::Popcnt {
        // SAFETY: every variant has POPCNT (checked above); the lengths were checked.
        unsafe { overlaps_popcnt(rows, b, n, out) };
    } else {
        for (k, o) in out.iter_mut().enumerate() {
            *o = finish(xor_popcount(variant, &rows[k * w..(k + 1) * w], b));
        }
    }
}

/// [`bits::overlaps_rows`] with POPCNT ([`popcount_words`] per row).
///
/// # Safety
/// The CPU must support POPCNT; `rows.len() == out.len()·b.len()`.
#[target_feature(enable = "popcnt")]
unsafe fn overlaps_popcnt(rows: &[u64], b: &[u64], n: i32, out: &mut [i32]) {
    let w = b.len();
    for (k, o) in out.iter_mut().enumerate() {
        let c = popcount_words::<false>(&rows[k * w..(k + 1) * w], b, b) as u32;
        *o = n.wrapping_sub((c as i32).wrapping_mul(2));
    }
}

/// [`bits::masked_xor_popcount`] at `variant`.
#[inline]
pub(super) fn masked_xor_popcount(variant: Variant, a: &[u64], b: &[u64], m: &[u64]) -> u32 {
    assert!(a.len() == b.len() && a.len() == m.len(), "bit vectors differ in length");
    variant.check();
    match variant {
        // SAFETY (every arm): the variant is available; the three slices have one length.
        Variant::Popcnt => unsafe { popcount_popcnt::<true>(a, b, m) },
        Variant::Avx2 => unsafe { popcount_avx2::<true>(a, b, m) },
        Variant::Avx512 => unsafe { popcount_avx512::<true>(a, b, m) },
        Variant::Avx512Vpopcnt => unsafe { popcount_vpopcnt::<true>(a, b, m) },
    }
}

/// [`bits::signed_add_i32`] at `variant`.
#[inline]
pub(super) fn signed_add_i32(variant: Variant, b: &[u64], x: i32, acc: &mut [i32]) {
    assert_eq!(b.len(), acc.len().div_ceil(WORD_BITS), "bits must hold words_for(len) words");
    variant.check();
    match variant {
        Variant::Popcnt => bits::signed_add_i32(b, x, acc),
        // SAFETY: AVX2 is available (checked above).
        Variant::Avx2 => unsafe { signed_add_i32_avx2(b, x, acc) },
        // SAFETY: AVX-512F/BW/VL are available (checked above).
        Variant::Avx512 | Variant::Avx512Vpopcnt => unsafe { signed_add_i32_avx512(b, x, acc) },
    }
}

/// [`bits::signed_add_i64`] at `variant`.
#[inline]
pub(super) fn signed_add_i64(variant: Variant, b: &[u64], x: i64, acc: &mut [i64]) {
    assert_eq!(b.len(), acc.len().div_ceil(WORD_BITS), "bits must hold words_for(len) words");
    variant.check();
    match variant {
        Variant::Popcnt => bits::signed_add_i64(b, x, acc),
        // SAFETY: AVX2 is available (checked above).
        Variant::Avx2 => unsafe { signed_add_i64_avx2(b, x, acc) },
        // SAFETY: AVX-512F/BW/VL are available (checked above).
        Variant::Avx512 | Variant::Avx512Vpopcnt => unsafe { signed_add_i64_avx512(b, x, acc) },
    }
}

/// [`bits::signed_sum_i16`] at `variant`.
#[inline]
pub(super) fn signed_sum_i16(variant: Variant, b: &[u64], t: &[i16]) -> i32 {
    assert_eq!(b.len(), t.len().div_ceil(WORD_BITS), "bits must hold words_for(len) words");
    assert!(t.len() <= bits::SIGNED_SUM_MAX_LEN, "at most 2^16 entries");
    variant.check();
    match variant {
        Variant::Popcnt => bits::signed_sum_i16(b, t),
        // SAFETY: AVX2 is available (checked above).
        Variant::Avx2 => unsafe { signed_sum_i16_avx2(b, t) },
        // SAFETY: AVX-512F/BW/VL are available (checked above).
        Variant::Avx512 | Variant::Avx512Vpopcnt => unsafe { signed_sum_i16_avx512(b, t) },
    }
}

/// [`bits::axpy_i16_i64`] at `variant`.
#[inline]
pub(super) fn axpy_i16_i64(variant: Variant, a: i32, t: &[i16], acc: &mut [i64]) {
    assert_eq!(t.len(), acc.len(), "lengths differ");
    variant.check();
    match variant {
        Variant::Popcnt => bits::axpy_i16_i64(a, t, acc),
        // SAFETY: AVX2 is available (checked above).
        Variant::Avx2 => unsafe { axpy_i16_i64_avx2(a, t, acc) },
        // SAFETY: AVX-512F/BW/VL are available (checked above).
        Variant::Avx512 | Variant::Avx512Vpopcnt => unsafe { axpy_i16_i64_avx512(a, t, acc) },
    }
}

// ---------------------------------------------------------------------------------------
// Popcounts. `MASKED` selects `popcount(m ∧ (a ⊕ b))`; unmasked, `m` is never read.

/// `popcount(m ∧ (a ⊕ b))` (unmasked: `popcount(a ⊕ b)`) over whole words, with four
/// independent sums: compiled into a caller with POPCNT, one `popcnt` per word and no chain
/// of dependent adds.
#[inline(always)]
fn popcount_words<const MASKED: bool>(a: &[u64], b: &[u64], m: &[u64]) -> u64 {
    let n = a.len();
    // One length for all three: the indexing below needs no bounds checks.
    let (a, b, m) = (&a[..n], &b[..n], if MASKED { &m[..n] } else { m });
    let word = |i: usize| {
        let x = a[i] ^ b[i];
        u64::from(if MASKED { x & m[i] } else { x }.count_ones())
    };
    let (mut s0, mut s1, mut s2, mut s3) = (0, 0, 0, 0);
    let mut i = 0;
    while i + 4 <= n {
        s0 += word(i);
        s1 += word(i + 1);
        s2 += word(i + 2);
        s3 += word(i + 3);
        i += 4;
    }
    while i < n {
        s0 += word(i);
        i += 1;
    }
    s0 + s1 + s2 + s3
}

/// [`popcount_words`] with POPCNT.
///
/// # Safety
/// The CPU must support POPCNT; `a` and `b` (and `m` if `MASKED`) have one length.
#[target_feature(enable = "popcnt")]
unsafe fn popcount_popcnt<const MASKED: bool>(a: &[u64], b: &[u64], m: &[u64]) -> u32 {
    popcount_words::<MASKED>(a, b, m) as u32
}

/// The popcount of each byte of `x`, by the nibble table `lut`.
#[target_feature(enable = "avx2")]
#[inline]
fn byte_counts_avx2(x: __m256i, lut: __m256i) -> __m256i {
    let low = _mm256_set1_epi8(0x0f);
    let lo = _mm256_and_si256(x, low);
    let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(x), low);
    _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi))
}

/// Vectors per block of byte counters: each byte adds at most 8 per vector, `31·8 ≤ 255`.
const BYTE_BLOCK: usize = 31;

/// Nibble-table popcount on 4-word vectors from [`AVX2_POPCOUNT_MIN_WORDS`] words (POPCNT
/// below, and for the last `len mod 4` words). Byte counters are summed into 64-bit lanes
/// (`vpsadbw`) every [`BYTE_BLOCK`] vectors.
///
/// # Safety
/// The CPU must support AVX2 and POPCNT; `a` and `b` (and `m` if `MASKED`) have one length.
#[target_feature(enable = "avx2,popcnt")]
unsafe fn popcount_avx2<const MASKED: bool>(a: &[u64], b: &[u64], m: &[u64]) -> u32 {
    let n = a.len();
    if n < AVX2_POPCOUNT_MIN_WORDS {
        return popcount_words::<MASKED>(a, b, m) as u32;
    }
    #[rustfmt::skip]
    let lut = _mm256_setr_epi8(
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
    );
    let vecs = n / 4;
    let (pa, pb, pm) = (a.as_ptr(), b.as_ptr(), m.as_ptr());
    let mut total = _mm256_setzero_si256();
    let mut v = 0;
    while v < vecs {
        let end = vecs.min(v + BYTE_BLOCK);
        let mut counts = _mm256_setzero_si256();
        while v < end {
            // SAFETY: v < vecs = ⌊n/4⌋, so words 4v..4v+4 are inside each slice of length n.
            let x = unsafe {
                let x = _mm256_xor_si256(
                    _mm256_loadu_si256(pa.add(4 * v).cast()),
                    _mm256_loadu_si256(pb.add(4 * v).cast()),
                );
                if MASKED {
                    _mm256_and_si256(x, _mm256_loadu_si256(pm.add(4 * v).cast()))
                } else {
                    x
                }
            };
            counts = _mm256_add_epi8(counts, byte_counts_avx2(x, lut));
            v += 1;
        }
        total = _mm256_add_epi64(total, _mm256_sad_epu8(counts, _mm256_setzero_si256()));
    }
    let mut lanes = [0u64; 4];
    // SAFETY: 32 bytes into a 32-byte array.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), total) };
    let t = 4 * vecs;
    let tail = popcount_words::<MASKED>(&a[t..], &b[t..], if MASKED { &m[t..] } else { m });
    (lanes.iter().sum::<u64>() + tail) as u32
}

/// The 512-bit nibble-table popcount (AVX-512BW `vpshufb`, `vpsadbw`) on 8-word vectors from
/// [`AVX2_POPCOUNT_MIN_WORDS`] words; POPCNT below and for the last `len mod 8` words.
///
/// # Safety
/// The CPU must support AVX-512F/BW and POPCNT; `a` and `b` (and `m` if `MASKED`) have one
/// length.
#[target_feature(enable = "avx512f,avx512bw,popcnt")]
unsafe fn popcount_avx512<const MASKED: bool>(a: &[u64], b: &[u64], m: &[u64]) -> u32 {
    let n = a.len();
    if n < AVX2_POPCOUNT_MIN_WORDS {
        return popcount_words::<MASKED>(a, b, m) as u32;
    }
    #[rustfmt::skip]
    let lut = _mm512_set_epi64(
        0x0403_0302_0302_0201, 0x0302_0201_0201_0100,
        0x0403_0302_0302_0201, 0x0302_0201_0201_0100,
        0x0403_0302_0302_0201, 0x0302_0201_0201_0100,
        0x0403_0302_0302_0201, 0x0302_0201_0201_0100,
    );
    let low = _mm512_set1_epi8(0x0f);
    let vecs = n / 8;
    let (pa, pb, pm) = (a.as_ptr(), b.as_ptr(), m.as_ptr());
    let mut total = _mm512_setzero_si512();
    let mut v = 0;
    while v < vecs {
        let end = vecs.min(v + BYTE_BLOCK);
        let mut counts = _mm512_setzero_si512();
        while v < end {
            // SAFETY: v < vecs = ⌊n/8⌋, so words 8v..8v+8 are inside each slice of length n.
            let x = unsafe {
                let x = _mm512_xor_si512(
                    _mm512_loadu_epi64(pa.add(8 * v).cast()),
                    _mm512_loadu_epi64(pb.add(8 * v).cast()),
                );
                if MASKED {
                    _mm512_and_si512(x, _mm512_loadu_epi64(pm.add(8 * v).cast()))
                } else {
                    x
                }
            };
            let lo = _mm512_and_si512(x, low);
            let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(x), low);
            let c = _mm512_add_epi8(_mm512_shuffle_epi8(lut, lo), _mm512_shuffle_epi8(lut, hi));
            counts = _mm512_add_epi8(counts, c);
            v += 1;
        }
        total = _mm512_add_epi64(total, _mm512_sad_epu8(counts, _mm512_setzero_si512()));
    }
    let t = 8 * vecs;
    let tail = popcount_words::<MASKED>(&a[t..], &b[t..], if MASKED { &m[t..] } else { m });
    (_mm512_reduce_add_epi64(total) as u64 + tail) as u32
}

/// VPOPCNTDQ popcount on 8-word vectors, the last `len mod 8` words by masked loads.
///
/// # Safety
/// The CPU must support AVX-512F and VPOPCNTDQ; `a` and `b` (and `m` if `MASKED`) have one
/// length.
#[target_feature(enable = "avx512f,avx512vpopcntdq,popcnt")]
unsafe fn popcount_vpopcnt<const MASKED: bool>(a: &[u64], b: &[u64], m: &[u64]) -> u32 {
    let n = a.len();
    let (pa, pb, pm) = (a.as_ptr(), b.as_ptr(), m.as_ptr());
    let mut acc = _mm512_setzero_si512();
    let mut j = 0;
    while j < n {
        let k: __mmask8 = if n - j >= 8 { 0xff } else { (1u8 << (n - j)) - 1 };
        // SAFETY: j < n; the mask keeps the loads to words j..min(j+8, n) of each slice of
        // length n (masked-off lanes are not read).
        let x = unsafe {
            let x = _mm512_xor_si512(
                _mm512_maskz_loadu_epi64(k, pa.add(j).cast()),
                _mm512_maskz_loadu_epi64(k, pb.add(j).cast()),
            );
            if MASKED {
                _mm512_and_si512(x, _mm512_maskz_loadu_epi64(k, pm.add(j).cast()))
            } else {
                x
            }
        };
        acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(x));
        j += 8;
    }
    _mm512_reduce_add_epi64(acc) as u32
}

// ---------------------------------------------------------------------------------------
// Add or subtract by the bits.

/// AVX2 `acc_j += ±x`: per 8 entries, the lanes of a broadcast 32-bit half-word are ANDed
/// with a one-bit selector (shifted by 8 per vector) and compared, which gives the lane mask
/// of `blendv(−x, x)`. Entries past the last full vector of a word go to the oracle.
///
/// # Safety
/// The CPU must support AVX2; `bits.len() == words_for(acc.len())`.
#[target_feature(enable = "avx2")]
unsafe fn signed_add_i32_avx2(bits_: &[u64], x: i32, acc: &mut [i32]) {
    let px = _mm256_set1_epi32(x);
    let nx = _mm256_set1_epi32(x.wrapping_neg());
    let sel0 = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    for (chunk, &w) in acc.chunks_mut(WORD_BITS).zip(bits_) {
        let groups = chunk.len() / 8;
        let p = chunk.as_mut_ptr();
        let mut half = _mm256_set1_epi32(w as i32);
        let mut sel = sel0;
        for g in 0..groups {
            if g == 4 {
                half = _mm256_set1_epi32((w >> 32) as i32);
                sel = sel0;
            }
            let set = _mm256_cmpeq_epi32(_mm256_and_si256(half, sel), sel);
            let val = _mm256_blendv_epi8(nx, px, set);
            // SAFETY: g < ⌊len/8⌋: entries 8g..8g+8 are inside the chunk.
            unsafe {
                let q = p.add(8 * g).cast::<__m256i>();
                _mm256_storeu_si256(q, _mm256_add_epi32(_mm256_loadu_si256(q), val));
            }
            sel = _mm256_slli_epi32::<8>(sel);
        }
        let j0 = 8 * groups;
        if j0 < chunk.len() {
            bits::signed_add_i32(&[w >> j0], x, &mut chunk[j0..]);
        }
    }
}

/// AVX2 `acc_j += ±x` in `i64`: as [`signed_add_i32_avx2`] on 4 lanes, the selector shifted
/// by 4 per vector over the broadcast word.
///
/// # Safety
/// The CPU must support AVX2; `bits.len() == words_for(acc.len())`.
#[target_feature(enable = "avx2")]
unsafe fn signed_add_i64_avx2(bits_: &[u64], x: i64, acc: &mut [i64]) {
    let px = _mm256_set1_epi64x(x);
    let nx = _mm256_set1_epi64x(x.wrapping_neg());
    let sel0 = _mm256_setr_epi64x(1, 2, 4, 8);
    for (chunk, &w) in acc.chunks_mut(WORD_BITS).zip(bits_) {
        let groups = chunk.len() / 4;
        let p = chunk.as_mut_ptr();
        let word = _mm256_set1_epi64x(w as i64);
        let mut sel = sel0;
        for g in 0..groups {
            let set = _mm256_cmpeq_epi64(_mm256_and_si256(word, sel), sel);
            let val = _mm256_blendv_epi8(nx, px, set);
            // SAFETY: g < ⌊len/4⌋: entries 4g..4g+4 are inside the chunk.
            unsafe {
                let q = p.add(4 * g).cast::<__m256i>();
                _mm256_storeu_si256(q, _mm256_add_epi64(_mm256_loadu_si256(q), val));
            }
            sel = _mm256_slli_epi64::<4>(sel);
        }
        let j0 = 4 * groups;
        if j0 < chunk.len() {
            bits::signed_add_i64(&[w >> j0], x, &mut chunk[j0..]);
        }
    }
}

/// AVX-512 `acc_j += ±x`: 16 bits of the word are the blend mask of 16 lanes; the last
/// vector of a word is masked to the entries left.
///
/// # Safety
/// The CPU must support AVX-512F; `bits.len() == words_for(acc.len())`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,popcnt")]
unsafe fn signed_add_i32_avx512(bits_: &[u64], x: i32, acc: &mut [i32]) {
    let px = _mm512_set1_epi32(x);
    let nx = _mm512_set1_epi32(x.wrapping_neg());
    for (chunk, &w) in acc.chunks_mut(WORD_BITS).zip(bits_) {
        let (n, p) = (chunk.len(), chunk.as_mut_ptr());
        let mut j = 0;
        while j < n {
            let tail: __mmask16 = if n - j >= 16 { 0xffff } else { (1u16 << (n - j)) - 1 };
            let val = _mm512_mask_blend_epi32((w >> j) as __mmask16, nx, px);
            // SAFETY: j < n; the mask keeps the load and store to entries j..min(j+16, n).
            unsafe {
                let old = _mm512_maskz_loadu_epi32(tail, p.add(j));
                _mm512_mask_storeu_epi32(p.add(j), tail, _mm512_add_epi32(old, val));
            }
            j += 16;
        }
    }
}

/// AVX-512 `acc_j += ±x` in `i64`: 8 bits per vector as the blend mask, the last vector of a
/// word masked.
///
/// # Safety
/// The CPU must support AVX-512F; `bits.len() == words_for(acc.len())`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,popcnt")]
unsafe fn signed_add_i64_avx512(bits_: &[u64], x: i64, acc: &mut [i64]) {
    let px = _mm512_set1_epi64(x);
    let nx = _mm512_set1_epi64(x.wrapping_neg());
    for (chunk, &w) in acc.chunks_mut(WORD_BITS).zip(bits_) {
        let (n, p) = (chunk.len(), chunk.as_mut_ptr());
        let mut j = 0;
        while j < n {
            let tail: __mmask8 = if n - j >= 8 { 0xff } else { (1u8 << (n - j)) - 1 };
            let val = _mm512_mask_blend_epi64((w >> j) as __mmask8, nx, px);
            // SAFETY: j < n; the mask keeps the load and store to entries j..min(j+8, n).
            unsafe {
                let old = _mm512_maskz_loadu_epi64(tail, p.add(j));
                _mm512_mask_storeu_epi64(p.add(j), tail, _mm512_add_epi64(old, val));
            }
            j += 8;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Signed sum and axpy.

/// AVX2 `Σ s_j·t_j`: 16 bits broadcast to 16-bit lanes, ANDed with a one-bit selector, give
/// ±1 words (`−1 | 1 = −1`); `vpmaddwd` multiplies and sums pairs exactly into `i32` lanes.
/// Entries past the last full vector of a word go to the oracle.
///
/// # Safety
/// The CPU must support AVX2; `bits.len() == words_for(t.len())`.
#[target_feature(enable = "avx2")]
unsafe fn signed_sum_i16_avx2(bits_: &[u64], t: &[i16]) -> i32 {
    let ones = _mm256_set1_epi16(1);
    #[rustfmt::skip]
    let sel = _mm256_setr_epi16(
        1, 2, 4, 8, 16, 32, 64, 128,
        256, 512, 1024, 2048, 4096, 8192, 16384, i16::MIN,
    );
    let mut acc = _mm256_setzero_si256();
    let mut tail = 0i32;
    for (chunk, &w) in t.chunks(WORD_BITS).zip(bits_) {
        let groups = chunk.len() / 16;
        let p = chunk.as_ptr();
        for g in 0..groups {
            let v = _mm256_set1_epi16((w >> (16 * g)) as i16);
            let clear = _mm256_cmpeq_epi16(_mm256_and_si256(v, sel), _mm256_setzero_si256());
            let s = _mm256_or_si256(clear, ones);
            // SAFETY: g < ⌊len/16⌋: entries 16g..16g+16 are inside the chunk.
            let tv = unsafe { _mm256_loadu_si256(p.add(16 * g).cast()) };
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(tv, s));
        }
        let j0 = 16 * groups;
        if j0 < chunk.len() {
            tail = tail.wrapping_add(bits::signed_sum_i16(&[w >> j0], &chunk[j0..]));
        }
    }
    let mut lanes = [0i32; 8];
    // SAFETY: 32 bytes into a 32-byte array.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), acc) };
    lanes.iter().fold(tail, |s, &l| s.wrapping_add(l))
}

/// AVX-512 `Σ s_j·t_j`: 32 bits of the word blend ±1 words, `vpmaddwd` into `i32` lanes; the
/// last vector of a word is a masked load (zeros add nothing).
///
/// # Safety
/// The CPU must support AVX-512F/BW; `bits.len() == words_for(t.len())`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,popcnt")]
unsafe fn signed_sum_i16_avx512(bits_: &[u64], t: &[i16]) -> i32 {
    let ones = _mm512_set1_epi16(1);
    let minus = _mm512_set1_epi16(-1);
    let mut acc = _mm512_setzero_si512();
    for (chunk, &w) in t.chunks(WORD_BITS).zip(bits_) {
        let (n, p) = (chunk.len(), chunk.as_ptr());
        let mut j = 0;
        while j < n {
            let tail: __mmask32 = if n - j >= 32 { u32::MAX } else { (1u32 << (n - j)) - 1 };
            let s = _mm512_mask_blend_epi16((w >> j) as __mmask32, minus, ones);
            // SAFETY: j < n; the mask keeps the load to entries j..min(j+32, n).
            let tv = unsafe { _mm512_maskz_loadu_epi16(tail, p.add(j)) };
            acc = _mm512_add_epi32(acc, _mm512_madd_epi16(tv, s));
            j += 32;
        }
    }
    _mm512_reduce_add_epi32(acc)
}

/// AVX2 `acc_j += a·t_j`: 4 entries sign-extended to 64-bit lanes, `vpmuldq` (exact
/// `i32 × i32 → i64` of the low halves), `vpaddq`; the last `len mod 4` by the oracle.
///
/// # Safety
/// The CPU must support AVX2; `t.len() == acc.len()`.
#[target_feature(enable = "avx2")]
unsafe fn axpy_i16_i64_avx2(a: i32, t: &[i16], acc: &mut [i64]) {
    let av = _mm256_set1_epi64x(i64::from(a));
    let vecs = t.len() / 4;
    let (pt, pa) = (t.as_ptr(), acc.as_mut_ptr());
    for v in 0..vecs {
        // SAFETY: v < ⌊len/4⌋: entries 4v..4v+4 of `t` (8 bytes) and of `acc` are inside.
        unsafe {
            let tv = _mm256_cvtepi16_epi64(_mm_loadl_epi64(pt.add(4 * v).cast()));
            let q = pa.add(4 * v).cast::<__m256i>();
            let y = _mm256_add_epi64(_mm256_loadu_si256(q), _mm256_mul_epi32(tv, av));
            _mm256_storeu_si256(q, y);
        }
    }
    let j0 = 4 * vecs;
    bits::axpy_i16_i64(a, &t[j0..], &mut acc[j0..]);
}

/// AVX-512 `acc_j += a·t_j` on 8 lanes, the last vector masked.
///
/// # Safety
/// The CPU must support AVX-512F/BW/VL; `t.len() == acc.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,popcnt")]
unsafe fn axpy_i16_i64_avx512(a: i32, t: &[i16], acc: &mut [i64]) {
    let av = _mm512_set1_epi64(i64::from(a));
    let n = t.len();
    let (pt, pa) = (t.as_ptr(), acc.as_mut_ptr());
    let mut j = 0;
    while j < n {
        let k: __mmask8 = if n - j >= 8 { 0xff } else { (1u8 << (n - j)) - 1 };
        // SAFETY: j < n; the mask keeps every load and store to entries j..min(j+8, n) of
        // `t` and `acc` (both of length n).
        unsafe {
            let tv = _mm512_cvtepi16_epi64(_mm_maskz_loadu_epi16(k, pt.add(j)));
            let old = _mm512_maskz_loadu_epi64(k, pa.add(j));
            _mm512_mask_storeu_epi64(pa.add(j), k, _mm512_add_epi64(old, _mm512_mul_epi32(tv, av)));
        }
        j += 8;
    }
}

// ---------------------------------------------------------------------------------------
// One block of hidden units of the integer PID step.

/// Most patterns the SIMD [`hidden_block`] variants hold on the stack (their buffers take
/// about `544·K + 2048` bytes, `K` rounded up to a capacity of 8, 16, 24, 32, 40, 48, 64, 96
/// or 128: at most about 70 KiB; x86-64 threads have megabytes of stack); above it, for
/// overlaps outside `i16` and for a one-entry table, the oracle runs.
pub(super) const BLOCK_MAX_PATTERNS: usize = 128;

/// [`bits::hidden_block`] at `variant`. AVX2 and AVX-512 run the same `vpmaddwd` code (the
/// AVX-512 build lets the compiler use the wider register file; the operations, hence the
/// bits, are the AVX2 ones).
pub(super) fn hidden_block(
    variant: Variant,
    blk: &bits::HiddenBlock<'_>,
    u: &mut [i32],
    g: &mut [i64],
    f: &mut [i32],
    t: &mut [i16],
) {
    let rows = blk.check(u, g);
    assert!(f.len() >= blk.units && t.len() >= blk.units, "scratch shorter than the block");
    variant.check();
    let k = blk.patterns;
    if variant == Variant::Popcnt || k > BLOCK_MAX_PATTERNS || blk.tanh.len() < 3 {
        return bits::hidden_block(blk, u, g, f, t);
    }
    // SAFETY: AVX2 is available at every variant but POPCNT (checked above).
    let mmax = u64::from(unsafe { max_abs_avx2(blk.m) });
    if mmax > i16::MAX as u64 {
        return bits::hidden_block(blk, u, g, f, t);
    }
    // Row pairs per flush of the i32 accumulators: a pair adds at most 2·|m|·2¹⁵ per lane.
    let pairs =
        if mmax == 0 { usize::MAX } else { (i32::MAX as u64 / ((2 * mmax) << 15)) as usize };
    debug_assert!(pairs >= 1);
    let avx512 = variant != Variant::Avx2;
    macro_rules! run {
        ($cap:literal) => {
            if avx512 {
                // SAFETY: AVX-512F/BW/VL (and AVX2) are available (checked above); the
                // lengths were checked by `blk.check`, K ≤ the capacity, |m| < 2¹⁵.
                unsafe { hidden_block_avx512::<$cap>(blk, rows, pairs, u, g) }
            } else {
                // SAFETY: AVX2 is available (checked above); as above.
                unsafe { hidden_block_avx2::<$cap>(blk, rows, pairs, u, g) }
            }
        };
    }
    match k {
        0..=8 => run!(8),
        9..=16 => run!(16),
        17..=24 => run!(24),
        25..=32 => run!(32),
        33..=40 => run!(40),
        41..=48 => run!(48),
        49..=64 => run!(64),
        65..=96 => run!(96),
        _ => run!(128),
    }
}

/// `max |x|` (auto-vectorised with AVX2).
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn max_abs_avx2(m: &[i32]) -> u32 {
    m.iter().fold(0, |a, &x| a.max(x.unsigned_abs()))
}

/// The `vpmaddwd` hidden block, compiled for one set of target features.
///
/// Once per block the `K` sign words become ±1 `i16` vectors (`0` past `units`): `sp[k]`, 16
/// units per vector, and `si`, the patterns `2p, 2p+1` interleaved per unit (8 units per
/// vector). Per row: fields `f` as `vpmaddwd` of `si` with the overlap pair
/// `(m_{2p}, m_{2p+1})`; `t` by table lookup; `u_k` as `vpmaddwd` of `t` with `sp[k]`,
/// reduced 8 patterns at a time by `vphaddd`. Per pair of rows of one weight: `t` of the two
/// rows interleaved per unit, `vpmaddwd` with `(m_{s,k}, m_{s+1,k})` into `i32` accumulators,
/// which are multiplied by the row weight and added to `g` (in `i64`) at the end of each
/// weight's rows and every `pairs` pairs (so no `i32` sum overflows: every sum is exact).
macro_rules! hidden_block_simd {
    ($name:ident, $features:literal) => {
        /// # Safety
        /// The CPU must support the target features; `blk` passed [`bits::HiddenBlock::check`]
        /// for `rows` rows with `u` and `g`, and its table has at least 3 entries;
        /// `K ≤ CAP`, `CAP` a multiple of 8; every
        /// `|m| ≤ 2¹⁵ − 1`; `pairs ≥ 1` row pairs keep every `i32` accumulator in range.
        #[target_feature(enable = $features)]
        unsafe fn $name<const CAP: usize>(
            blk: &bits::HiddenBlock<'_>,
            rows: usize,
            pairs: usize,
            u: &mut [i32],
            g: &mut [i64],
        ) {
            let (k, n) = (blk.patterns, blk.units);
            let zero = _mm256_setzero_si256();
            let ones = _mm256_set1_epi16(1);
            #[rustfmt::skip]
            let sel = _mm256_setr_epi16(
                1, 2, 4, 8, 16, 32, 64, 128,
                256, 512, 1024, 2048, 4096, 8192, 16384, i16::MIN,
            );
            let valid_word = if n == WORD_BITS { !0u64 } else { (1u64 << n) - 1 };
            // Lane masks of 16 bits of a word: −1 where set.
            let lanes = |w: u64, j: usize| {
                let v = _mm256_set1_epi16((w >> (16 * j)) as i16);
                _mm256_cmpeq_epi16(_mm256_and_si256(v, sel), sel)
            };
            let mut sp = [[zero; 4]; CAP];
            for (kk, spk) in sp.iter_mut().enumerate().take(k) {
                let w = blk.signs[kk * blk.stride];
                for (j, x) in spk.iter_mut().enumerate() {
                    // set → 0 | 1 = +1, clear → −1 | 1 = −1; then 0 past `units`.
                    let clear = _mm256_cmpeq_epi16(lanes(w, j), zero);
                    *x = _mm256_and_si256(_mm256_or_si256(clear, ones), lanes(valid_word, j));
                }
            }
            // Pair p: vectors 2j, 2j+1 (units 16j..16j+7, 16j+8..16j+15) in si[2p][j/2].. :
            // stored as si[2p + v/4][v % 4] for vector v = 0..8.
            let mut si = [[zero; 4]; CAP];
            for p in 0..k.div_ceil(2) {
                for j in 0..4 {
                    let a = _mm256_permute4x64_epi64::<0xd8>(sp[2 * p][j]);
                    let b = _mm256_permute4x64_epi64::<0xd8>(sp[2 * p + 1][j]);
                    let (v0, v1) = (2 * j, 2 * j + 1);
                    si[2 * p + v0 / 4][v0 % 4] = _mm256_unpacklo_epi16(a, b);
                    si[2 * p + v1 / 4][v1 % 4] = _mm256_unpackhi_epi16(a, b);
                }
            }
            let mut acc = [[_mm256_setzero_si256(); 8]; CAP];
            let r = (blk.tanh.len() / 2) as i32;
            let (lo, hi, off) = (_mm256_set1_epi32(-r), _mm256_set1_epi32(r), _mm256_set1_epi32(r));
            let last = _mm256_set1_epi32(2 * r - 1);
            let table = blk.tanh.as_ptr();
            let pair16 =
                |a: i32, b: i32| -> i32 { (a as u16 as u32 | (b as u16 as u32) << 16) as i32 };
            let zero4 = [zero; 4];
            const PAIRS: usize = 8;
            let mut tint = [[zero; 8]; PAIRS];
            let mut mps = [[0i32; CAP]; PAIRS];

            // The fields of row `s`, 8 units per vector.
            let fields = |s: usize| -> [__m256i; 8] {
                let ms = &blk.m[s * k..(s + 1) * k];
                let mut f = [zero; 8];
                for p in 0..k.div_ceil(2) {
                    let b = if 2 * p + 1 < k { ms[2 * p + 1] } else { 0 };
                    let mp = _mm256_set1_epi32(pair16(ms[2 * p], b));
                    for (v, fv) in f.iter_mut().enumerate() {
                        *fv =
                            _mm256_add_epi32(*fv, _mm256_madd_epi16(si[2 * p + v / 4][v % 4], mp));
                    }
                }
                f
            };
            // `t` of a row's fields, 16 units per vector: by gathering the 32 bits at entry
            // j = min(idx, 2R − 1) (inside the table: R ≥ 1) and taking the high half where
            // idx = 2R.
            let lookup = |f: &[__m256i; 8]| -> [__m256i; 4] {
                let mut tl = [zero; 8];
                for (x, fv) in tl.iter_mut().zip(f) {
                    let idx =
                        _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(*fv, lo), hi), off);
                    let j = _mm256_min_epi32(idx, last);
                    // SAFETY: 0 ≤ j ≤ 2R − 1: bytes 2j..2j+4 are inside the 2R + 1 entries.
                    let word = unsafe { _mm256_i32gather_epi32::<2>(table.cast(), j) };
                    let shift = _mm256_slli_epi32::<4>(_mm256_sub_epi32(idx, j));
                    *x = _mm256_srai_epi32::<16>(_mm256_slli_epi32::<16>(_mm256_srlv_epi32(
                        word, shift,
                    )));
                }
                let mut tv = [zero; 4];
                for (j, x) in tv.iter_mut().enumerate() {
                    let packed = _mm256_packs_epi32(tl[2 * j], tl[2 * j + 1]);
                    *x = _mm256_permute4x64_epi64::<0xd8>(packed);
                }
                tv
            };
            // `u_{s,k} += Σ_α sᵏ_α t_α`, 8 patterns per `vphaddd` reduction.
            let project = |s: usize, tv: &[__m256i; 4], u: &mut [i32]| {
                let us = &mut u[s * k..(s + 1) * k];
                for k0 in (0..k).step_by(8) {
                    let mut sums = [zero; 8];
                    for (i, sum) in sums.iter_mut().enumerate() {
                        let spk = &sp[k0 + i];
                        let a = _mm256_add_epi32(
                            _mm256_madd_epi16(tv[0], spk[0]),
                            _mm256_madd_epi16(tv[1], spk[1]),
                        );
                        let b = _mm256_add_epi32(
                            _mm256_madd_epi16(tv[2], spk[2]),
                            _mm256_madd_epi16(tv[3], spk[3]),
                        );
                        *sum = _mm256_add_epi32(a, b);
                    }
                    let h01 = _mm256_hadd_epi32(sums[0], sums[1]);
                    let h23 = _mm256_hadd_epi32(sums[2], sums[3]);
                    let h45 = _mm256_hadd_epi32(sums[4], sums[5]);
                    let h67 = _mm256_hadd_epi32(sums[6], sums[7]);
                    let h0 = _mm256_hadd_epi32(h01, h23);
                    let h1 = _mm256_hadd_epi32(h45, h67);
                    let total = _mm256_add_epi32(
                        _mm256_permute2x128_si256::<0x20>(h0, h1),
                        _mm256_permute2x128_si256::<0x31>(h0, h1),
                    );
                    let mut out = [0i32; 8];
                    // SAFETY: 8 lanes into an 8-entry array.
                    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), total) };
                    for (uk, &o) in us[k0..].iter_mut().zip(&out) {
                        *uk = uk.wrapping_add(o);
                    }
                }
            };

            // Adds w·acc to g (units < n) and clears acc.
            // A weight in i32 multiplies whole vectors of 8 units (`vpmuldq`: the exact
            // product of the low 32 bits); any other weight, and a partial vector, by scalars.
            let flush = |acc: &mut [[__m256i; 8]; CAP], w: i64, g: &mut [i64]| {
                let narrow = i32::try_from(w).is_ok();
                let wv = _mm256_set1_epi64x(w);
                for (kk, acck) in acc.iter_mut().enumerate().take(k) {
                    let gk = &mut g[kk * n..(kk + 1) * n];
                    for (v, a) in acck.iter_mut().enumerate() {
                        if narrow && 8 * v + 8 <= n {
                            let a0 = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(*a));
                            let a1 = _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(*a));
                            let p = gk[8 * v..8 * v + 8].as_mut_ptr();
                            // SAFETY: entries 8v..8v+8 of `gk` (checked by the slice above).
                            unsafe {
                                let y0 = _mm256_loadu_si256(p.cast());
                                let y1 = _mm256_loadu_si256(p.add(4).cast());
                                let y0 = _mm256_add_epi64(y0, _mm256_mul_epi32(a0, wv));
                                let y1 = _mm256_add_epi64(y1, _mm256_mul_epi32(a1, wv));
                                _mm256_storeu_si256(p.cast(), y0);
                                _mm256_storeu_si256(p.add(4).cast(), y1);
                            }
                        } else if 8 * v < n {
                            let mut out = [0i32; 8];
                            // SAFETY: 8 lanes into an 8-entry array.
                            unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), *a) };
                            for (y, &x) in gk[8 * v..(8 * v + 8).min(n)].iter_mut().zip(&out) {
                                *y = y.wrapping_add(w.wrapping_mul(i64::from(x)));
                            }
                        }
                        *a = _mm256_setzero_si256();
                    }
                }
            };

            for (range, w) in
                [(0..blk.data_rows, blk.weights[0]), (blk.data_rows..rows, blk.weights[1])]
            {
                let mut done = 0;
                let mut s = range.start;
                while s < range.end {
                    // Up to PAIRS row pairs: their `t` interleaved and overlap pairs staged,
                    // then each pattern's 8 accumulators stay in registers over them.
                    let np = PAIRS.min((range.end - s).div_ceil(2)).min(pairs - done);
                    for p in 0..np {
                        let r0 = s + 2 * p;
                        let second = r0 + 1 < range.end;
                        let ta = lookup(&fields(r0));
                        project(r0, &ta, u);
                        let tb = if second { lookup(&fields(r0 + 1)) } else { zero4 };
                        if second {
                            project(r0 + 1, &tb, u);
                        }
                        for j in 0..4 {
                            let a = _mm256_permute4x64_epi64::<0xd8>(ta[j]);
                            let b = _mm256_permute4x64_epi64::<0xd8>(tb[j]);
                            tint[p][2 * j] = _mm256_unpacklo_epi16(a, b);
                            tint[p][2 * j + 1] = _mm256_unpackhi_epi16(a, b);
                        }
                        let ma = &blk.m[r0 * k..(r0 + 1) * k];
                        for (kk, x) in mps[p].iter_mut().enumerate().take(k) {
                            let b = if second { blk.m[(r0 + 1) * k + kk] } else { 0 };
                            *x = pair16(ma[kk], b);
                        }
                    }
                    for (kk, acck) in acc.iter_mut().enumerate().take(k) {
                        let mut a = *acck;
                        for (tp, mp) in tint.iter().zip(&mps).take(np) {
                            let b = _mm256_set1_epi32(mp[kk]);
                            for (av, &tv) in a.iter_mut().zip(tp) {
                                *av = _mm256_add_epi32(*av, _mm256_madd_epi16(tv, b));
                            }
                        }
                        *acck = a;
                    }
                    done += np;
                    s += 2 * np;
                    if done == pairs {
                        flush(&mut acc, w, g);
                        done = 0;
                    }
                }
                if done > 0 {
                    flush(&mut acc, w, g);
                }
            }
        }
    };
}

hidden_block_simd!(hidden_block_avx2, "avx2");
hidden_block_simd!(hidden_block_avx512, "avx512f,avx512bw,avx512vl,avx2,popcnt");

// ---------------------------------------------------------------------------------------
// Sums of packed rows.

/// [`bits::signed_rows_add_i64`] at `variant`.
pub(super) fn signed_rows_add_i64(
    variant: Variant,
    b: &[u64],
    row_words: usize,
    x: &[i32],
    stride: usize,
    w: i64,
    acc: &mut [i64],
) {
    let rows = bits::check_rows(b, row_words, x, stride, acc.len());
    variant.check();
    match variant {
        Variant::Popcnt => bits::signed_rows_add_i64(b, row_words, x, stride, w, acc),
        // SAFETY: AVX2 is available (checked above); the lengths were checked.
        Variant::Avx2 => unsafe { signed_rows_avx2(b, rows, row_words, x, stride, w, acc) },
        // SAFETY: AVX-512F/BW/VL and AVX2 are available (checked above); as above.
        Variant::Avx512 | Variant::Avx512Vpopcnt => unsafe {
            signed_rows_avx512(b, rows, row_words, x, stride, w, acc)
        },
    }
}

/// Sums of packed rows, 16 entries (four 4-lane `i64` accumulators, kept in registers over
/// every row) at a time: per row, the 16 bits of the row word select `±w·x_s` by
/// `blendv`, as [`signed_add_i64_avx2`]. The entries past the last group of 16 go to the
/// oracle, row by row.
macro_rules! signed_rows_simd {
    ($name:ident, $features:literal) => {
        /// # Safety
        /// The CPU must support the target features; the lengths passed
        /// [`bits::check_rows`] with `rows` rows.
        #[target_feature(enable = $features)]
        unsafe fn $name(
            b: &[u64],
            rows: usize,
            row_words: usize,
            x: &[i32],
            stride: usize,
            w: i64,
            acc: &mut [i64],
        ) {
            let n = acc.len();
            let sel0 = _mm256_setr_epi64x(1, 2, 4, 8);
            let groups = n / 16;
            for grp in 0..groups {
                let (word, bit) = (grp / 4, 16 * (grp % 4));
                let p = acc[16 * grp..16 * grp + 16].as_mut_ptr();
                // SAFETY: entries 16·grp..16·grp + 16 are inside `acc` (grp < ⌊n/16⌋).
                let mut a: [__m256i; 4] =
                    core::array::from_fn(|q| unsafe { _mm256_loadu_si256(p.add(4 * q).cast()) });
                for s in 0..rows {
                    let c = w.wrapping_mul(i64::from(x[s * stride]));
                    let (px, nx) = (_mm256_set1_epi64x(c), _mm256_set1_epi64x(c.wrapping_neg()));
                    let bits_ = _mm256_set1_epi64x((b[s * row_words + word] >> bit) as i64);
                    let mut sel = sel0;
                    for aq in a.iter_mut() {
                        let set = _mm256_cmpeq_epi64(_mm256_and_si256(bits_, sel), sel);
                        *aq = _mm256_add_epi64(*aq, _mm256_blendv_epi8(nx, px, set));
                        sel = _mm256_slli_epi64::<4>(sel);
                    }
                }
                for (q, aq) in a.iter().enumerate() {
                    // SAFETY: as the loads.
                    unsafe { _mm256_storeu_si256(p.add(4 * q).cast(), *aq) };
                }
            }
            let j0 = 16 * groups;
            if j0 < n {
                let (word, bit) = (j0 / 64, j0 % 64);
                for s in 0..rows {
                    let c = w.wrapping_mul(i64::from(x[s * stride]));
                    bits::signed_add_i64(&[b[s * row_words + word] >> bit], c, &mut acc[j0..]);
                }
            }
        }
    };
}

signed_rows_simd!(signed_rows_avx2, "avx2");
signed_rows_simd!(signed_rows_avx512, "avx512f,avx512bw,avx512vl,avx2,popcnt");

// ---------------------------------------------------------------------------------------
// The latent update.

/// [`bits::apply_steps`] at `variant`: AVX2 (also at the AVX-512 levels) for `0 ≤ μ < 2³¹`,
/// else the oracle.
pub(super) fn apply_steps(variant: Variant, theta: &mut [i8], d: &[i64], mul: i64, shift: u32) {
    assert_eq!(theta.len(), d.len(), "lengths differ");
    assert!((1..=63).contains(&shift), "the shift must be in 1..=63");
    variant.check();
    if variant == Variant::Popcnt || !(0..1 << 31).contains(&mul) {
        return bits::apply_steps(theta, d, mul, shift);
    }
    // SAFETY: AVX2 is available at every variant but POPCNT (checked above); equal lengths,
    // 0 ≤ μ < 2³¹, 1 ≤ σ ≤ 63.
    unsafe { apply_steps_avx2(theta, d, mul, shift) }
}

/// 8 entries at a time: `D·μ` exactly mod 2⁶⁴ from two `vpmuldq`/`vpmuludq` halves, the
/// arithmetic shift as `((x ⊕ s) >> σ) ⊕ s` with `s` the sign mask, the clamps by compare and
/// blend, then packed to bytes. The last `len mod 8` by the oracle.
///
/// # Safety
/// The CPU must support AVX2; `theta.len() == d.len()`, `0 ≤ mul < 2³¹`, `1 ≤ shift ≤ 63`.
#[target_feature(enable = "avx2")]
unsafe fn apply_steps_avx2(theta: &mut [i8], d: &[i64], mul: i64, shift: u32) {
    let n = theta.len();
    let mv = _mm256_set1_epi64x(mul);
    let round = _mm256_set1_epi64x(1i64 << (shift - 1));
    let count = _mm_set_epi64x(0, i64::from(shift));
    let zero = _mm256_setzero_si256();
    let (p255, n255) = (_mm256_set1_epi64x(255), _mm256_set1_epi64x(-255));
    let (p127, n127) = (_mm256_set1_epi64x(127), _mm256_set1_epi64x(-127));
    let even = _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0);
    let clamp = |x: __m256i, lo: __m256i, hi: __m256i| {
        let x = _mm256_blendv_epi8(x, hi, _mm256_cmpgt_epi64(x, hi));
        _mm256_blendv_epi8(x, lo, _mm256_cmpgt_epi64(lo, x))
    };
    let step = |dv: __m256i| {
        let lo = _mm256_mul_epu32(dv, mv);
        let hi = _mm256_slli_epi64::<32>(_mm256_mul_epi32(_mm256_srli_epi64::<32>(dv), mv));
        let x = _mm256_add_epi64(_mm256_add_epi64(lo, hi), round);
        let s = _mm256_cmpgt_epi64(zero, x);
        let q = _mm256_xor_si256(_mm256_srl_epi64(_mm256_xor_si256(x, s), count), s);
        clamp(q, n255, p255)
    };
    let groups = n / 8;
    let (pt, pd) = (theta.as_mut_ptr(), d.as_ptr());
    for g in 0..groups {
        // SAFETY: g < ⌊n/8⌋: entries 8g..8g+8 of `theta` (8 bytes) and `d` are inside.
        unsafe {
            let t8 = _mm_loadl_epi64(pt.add(8 * g).cast());
            let t0 = _mm256_cvtepi8_epi64(t8);
            let t1 = _mm256_cvtepi8_epi64(_mm_srli_si128::<4>(t8));
            let d0 = _mm256_loadu_si256(pd.add(8 * g).cast());
            let d1 = _mm256_loadu_si256(pd.add(8 * g + 4).cast());
            let x0 = clamp(_mm256_add_epi64(t0, step(d0)), n127, p127);
            let x1 = clamp(_mm256_add_epi64(t1, step(d1)), n127, p127);
            let a = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(x0, even));
            let b = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(x1, even));
            let w16 = _mm_packs_epi32(a, b);
            _mm_storel_epi64(pt.add(8 * g).cast(), _mm_packs_epi16(w16, w16));
        }
    }
    let j0 = 8 * groups;
    bits::apply_steps(&mut theta[j0..], &d[j0..], mul, shift);
}

#[cfg(test)]
mod tests {
    //! Every variant this CPU (or, under Miri, this build) runs against the oracle, on small
    //! inputs: lengths around the vector widths and a word. Small enough for Miri, which runs
    //! them in `.ci/run`'s AVX-512 build (`-- kernels::x86`); the long and extreme inputs are
    //! in `bits_tests`. Variants the CPU lacks are skipped with a printed note.
    use super::*;
    extern crate std;
    use std::vec::Vec;

    const ALL: [Variant; 4] =
        [Variant::Popcnt, Variant::Avx2, Variant::Avx512, Variant::Avx512Vpopcnt];

    fn variants(test: &str) -> Vec<Variant> {
        let (run, skip): (Vec<Variant>, Vec<Variant>) = ALL.iter().partition(|v| v.available());
        for v in &skip {
            std::println!("{test}: SKIP {v:?}: not available on this CPU");
        }
        std::println!("{test}: variants tested: {run:?}");
        run
    }

    /// A fixed, well-mixed sequence (splitmix64).
    fn words(n: usize, seed: u64) -> Vec<u64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = s;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            })
            .collect()
    }

    #[test]
    fn every_variant_matches_the_oracle_on_small_inputs() {
        if cfg!(all(target_feature = "avx512f", target_feature = "avx512bw")) {
            assert!(Variant::Avx512.available(), "compiled for AVX-512 but it is unavailable");
        }
        for v in variants("x86_bits_small") {
            for n in [0usize, 1, 3, 8, 17, 33, 64, 71, 8 * BYTE_BLOCK + 9] {
                // Popcounts over n words, the element kernels over n entries.
                let (a, b, m) = (words(n, 1), words(n, 2), words(n, 3));
                assert_eq!(xor_popcount(v, &a, &b), bits::xor_popcount(&a, &b), "{v:?} {n}");
                let want = bits::masked_xor_popcount(&a, &b, &m);
                assert_eq!(masked_xor_popcount(v, &a, &b, &m), want, "{v:?} {n}");
                let s = words(n.div_ceil(WORD_BITS), 4 + n as u64);
                let raw = words(n, 5);
                let acc32: Vec<i32> = raw.iter().map(|&r| r as i32).collect();
                let acc64: Vec<i64> = raw.iter().map(|&r| r as i64).collect();
                let t: Vec<i16> = raw.iter().map(|&r| (r >> 20) as i16).collect();
                for x in [i32::MIN, -7, 0, 12_345, i32::MAX] {
                    let (mut got, mut want) = (acc32.clone(), acc32.clone());
                    signed_add_i32(v, &s, x, &mut got);
                    bits::signed_add_i32(&s, x, &mut want);
                    assert_eq!(got, want, "{v:?} {n} {x}");
                    let x = i64::from(x) << (x & 31);
                    let (mut got, mut want) = (acc64.clone(), acc64.clone());
                    signed_add_i64(v, &s, x, &mut got);
                    bits::signed_add_i64(&s, x, &mut want);
                    assert_eq!(got, want, "{v:?} {n} {x}");
                }
                assert_eq!(signed_sum_i16(v, &s, &t), bits::signed_sum_i16(&s, &t), "{v:?} {n}");
                for a in [i32::MIN, -3, i32::MAX] {
                    let (mut got, mut want) = (acc64.clone(), acc64.clone());
                    axpy_i16_i64(v, a, &t, &mut got);
                    bits::axpy_i16_i64(a, &t, &mut want);
                    assert_eq!(got, want, "{v:?} {n} {a}");
                }
            }
        }
    }
}
