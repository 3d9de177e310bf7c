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
