//! Integer kernels on bit-packed ±1 spins at scalar level: the oracles of the SIMD variants
//! and the code a microcontroller runs.
//!
//! Spins are packed as in [`crate::spins`]: `u64` words, least significant bit first, bit 1 =
//! `+1`, bit 0 = `−1`. For a vector of `n` spins, bit `j` of the bit vector is bit `j mod 64`
//! of word `⌊j/64⌋`; a kernel that reads `n` spins takes exactly [`words_for`]`(n)` words and
//! never looks at the padding bits past `n`.
//!
//! | kernel | computes |
//! | --- | --- |
//! | [`xor_popcount`] | `popcount(a ⊕ b)`: `a·b = n − 2·popcount(a ⊕ b)` for ±1 vectors |
//! | [`masked_xor_popcount`] | `popcount(mask ∧ (a ⊕ b))` (neutral units have a clear mask bit) |
//! | [`signed_add_i32`], [`signed_add_i64`] | `acc_j += s_j·x` for spins `s_j = ±1` (bit `j`) |
//! | [`signed_sum_i16`] | `Σ_j s_j·t_j` |
//! | [`axpy_i16_i64`] | `acc_j += a·t_j` |
//!
//! Every kernel is exact integer arithmetic (the callers keep the sums within range, see
//! each kernel), so every level gives the same bits.

use crate::spins::{words_for, WORD_BITS};

/// `popcount(a ⊕ b)` over whole words.
///
/// # Panics
/// If `a` and `b` differ in length.
#[inline]
pub fn xor_popcount(a: &[u64], b: &[u64]) -> u32 {
    assert_eq!(a.len(), b.len(), "bit vectors differ in length");
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// `popcount(mask ∧ (a ⊕ b))` over whole words.
///
/// # Panics
/// If the three slices differ in length.
#[inline]
pub fn masked_xor_popcount(a: &[u64], b: &[u64], mask: &[u64]) -> u32 {
    assert!(a.len() == b.len() && a.len() == mask.len(), "bit vectors differ in length");
    a.iter().zip(b).zip(mask).map(|((x, y), m)| ((x ^ y) & m).count_ones()).sum()
}

/// The all-ones mask of bit `j` of `word`: `0` where the bit is set (spin `+1`), `−1` (all
/// bits set) where it is clear (spin `−1`). `(x ^ m) − m` is then `x` or `−x`.
#[inline(always)]
fn neg_mask32(word: u64, j: usize) -> i32 {
    ((word >> j) as i32 & 1) - 1
}

/// `acc_j += s_j·x` for `j < acc.len()`, with `s_j = +1` where bit `j` of `bits` is set and
/// `−1` where it is clear: "add or subtract `x` by the bits". Additions wrap (the callers keep
/// every sum within `i32`, so they never do).
///
/// # Panics
/// If `bits.len() != words_for(acc.len())`.
#[inline]
pub fn signed_add_i32(bits: &[u64], x: i32, acc: &mut [i32]) {
    assert_eq!(bits.len(), words_for(acc.len()), "bits must hold words_for(len) words");
    for (chunk, &w) in acc.chunks_mut(WORD_BITS).zip(bits) {
        for (j, a) in chunk.iter_mut().enumerate() {
            let m = neg_mask32(w, j);
            *a = a.wrapping_add((x ^ m).wrapping_sub(m));
        }
    }
}

/// `acc_j += s_j·x` in `i64`, as [`signed_add_i32`].
///
/// # Panics
/// If `bits.len() != words_for(acc.len())`.
#[inline]
pub fn signed_add_i64(bits: &[u64], x: i64, acc: &mut [i64]) {
    assert_eq!(bits.len(), words_for(acc.len()), "bits must hold words_for(len) words");
    for (chunk, &w) in acc.chunks_mut(WORD_BITS).zip(bits) {
        for (j, a) in chunk.iter_mut().enumerate() {
            let m = i64::from(neg_mask32(w, j));
            *a = a.wrapping_add((x ^ m).wrapping_sub(m));
        }
    }
}

/// Most entries [`signed_sum_i16`] takes: `2¹⁶` terms of magnitude `≤ 2¹⁵` sum to within
/// `[−2³¹, 2³¹]`, so the `i32` sum is exact but for the one value `+2³¹`.
pub const SIGNED_SUM_MAX_LEN: usize = 1 << 16;

/// `Σ_j s_j·t_j` for `j < t.len()`, with `s_j = ±1` from bit `j` of `bits` (set: `+1`).
/// Exact with at most [`SIGNED_SUM_MAX_LEN`] entries, except that a sum of `+2³¹` (all
/// `2¹⁶` entries `i16::MIN` with spin `−1`) wraps to `i32::MIN`: the additions wrap, so
/// every summation order gives the same bits.
///
/// # Panics
/// If `bits.len() != words_for(t.len())` or `t.len() > SIGNED_SUM_MAX_LEN`.
#[inline]
pub fn signed_sum_i16(bits: &[u64], t: &[i16]) -> i32 {
    assert_eq!(bits.len(), words_for(t.len()), "bits must hold words_for(len) words");
    assert!(t.len() <= SIGNED_SUM_MAX_LEN, "at most 2^16 entries");
    let mut sum = 0i32;
    for (chunk, &w) in t.chunks(WORD_BITS).zip(bits) {
        for (j, &x) in chunk.iter().enumerate() {
            let m = neg_mask32(w, j);
            sum = sum.wrapping_add((i32::from(x) ^ m) - m);
        }
    }
    sum
}

/// `acc_j += a·t_j` in `i64` (products of an `i32` and an `i16` never overflow an `i64`;
/// additions wrap, and the callers keep sums in range).
///
/// # Panics
/// If `t` and `acc` differ in length.
#[inline]
pub fn axpy_i16_i64(a: i32, t: &[i16], acc: &mut [i64]) {
    assert_eq!(t.len(), acc.len(), "lengths differ");
    let a = i64::from(a);
    for (y, &x) in acc.iter_mut().zip(t) {
        *y = y.wrapping_add(a * i64::from(x));
    }
}
