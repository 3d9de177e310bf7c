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
//! | [`overlaps_rows`] | `n − 2·popcount(r_k ⊕ b)` (the ±1 dot product) for every row `r_k` of a packed matrix: all `K` overlaps in one call |
//! | [`masked_xor_popcount`] | `popcount(mask ∧ (a ⊕ b))` (neutral units have a clear mask bit) |
//! | [`signed_add_i32`], [`signed_add_i64`] | `acc_j += s_j·x` for spins `s_j = ±1` (bit `j`) |
//! | [`signed_sum_i16`] | `Σ_j s_j·t_j` |
//! | [`axpy_i16_i64`] | `acc_j += a·t_j` |
//! | [`signed_rows_add_i64`] | `acc_i += Σ_s w·x_s·v_{s,i}` over packed rows `v_s` (integer PID's `D_v`) |
//! | [`apply_steps`] | `θ_j ← clamp(θ_j + clamp(round(D_j·μ/2^σ), ±255), ±127)` (the integer PID update of `i8` latents) |
//! | [`hidden_block`] | one block of ≤ 64 hidden units of integer PID over every row: fields, `tanh` lookup, `u`, `D_h` |
//!
//! Every kernel is exact integer arithmetic (the callers keep the sums within range, see
//! each kernel), so every level gives the same bits.

use core::slice;

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

/// `out[k] = n − 2·popcount(rows_k ⊕ b)` (wrapping) for the `out.len()` rows of `rows`
/// (row `k` is words `k·b.len()..(k+1)·b.len()`): the overlaps `s_k·v` of ±1 vectors of `n`
/// spins when the padding bits agree, [`xor_popcount`] once per row.
///
/// # Panics
/// If `rows.len() != out.len()·b.len()`.
#[inline]
pub fn overlaps_rows(rows: &[u64], b: &[u64], n: i32, out: &mut [i32]) {
    check_overlaps(rows, b, out);
    let w = b.len();
    for (k, o) in out.iter_mut().enumerate() {
        let c = xor_popcount(&rows[k * w..(k + 1) * w], b);
        *o = n.wrapping_sub((c as i32).wrapping_mul(2));
    }
}

/// Checks the lengths of an [`overlaps_rows`] call.
pub(crate) fn check_overlaps(rows: &[u64], b: &[u64], out: &[i32]) {
    assert_eq!(rows.len(), out.len() * b.len(), "rows must be out.len() rows of b.len() words");
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

/// The inputs of [`hidden_block`]: one block of `units ≤ 64` hidden units of the integer PID
/// step (see `crate::int`) for every row of a batch (data rows, then negative samples).
#[derive(Clone, Copy, Debug)]
pub struct HiddenBlock<'a> {
    /// The block's sign words: pattern `k`'s is `signs[k·stride]` (bit `α` set: `s_α = +1`;
    /// bits at and past `units` are ignored).
    pub signs: &'a [u64],
    /// Words between the sign words of consecutive patterns (at least 1).
    pub stride: usize,
    /// Hidden units in the block, `1..=64`.
    pub units: usize,
    /// `K`, the number of patterns (at least 1).
    pub patterns: usize,
    /// Overlaps `m_{s,k}`, `rows × K` row-major (`rows = m.len()/K`).
    pub m: &'a [i32],
    /// Rows `s < data_rows` weigh `weights[0]`, the rest `weights[1]`.
    pub data_rows: usize,
    /// Row weights: `[K, −d]` in the integer PID step.
    pub weights: [i64; 2],
    /// The `tanh` table: odd length `2R + 1`, entry `f + R` for a field `f` clamped to
    /// `[−R, R]`.
    pub tanh: &'a [i16],
}

/// `t_α = tanh[clamp(f_α, −R, R) + R]`, `R = (len − 1)/2`.
#[inline(always)]
pub(crate) fn tanh_lookup(table: &[i16], f: i32) -> i16 {
    let r = (table.len() / 2) as i32;
    table[(f.clamp(-r, r) + r) as usize]
}

impl HiddenBlock<'_> {
    /// The rows, checking the lengths of the call.
    ///
    /// # Panics
    /// As [`hidden_block`].
    pub(crate) fn check(&self, u: &[i32], g: &[i64]) -> usize {
        let k = self.patterns;
        assert!(k > 0 && self.stride > 0, "K and the stride must be positive");
        assert!(self.units > 0 && self.units <= WORD_BITS, "a block has 1..=64 units");
        assert!(self.signs.len() > (k - 1) * self.stride, "signs shorter than (K−1)·stride + 1");
        assert_eq!(self.m.len() % k, 0, "m must be rows × K");
        assert_eq!(u.len(), self.m.len(), "u must be rows × K");
        assert_eq!(g.len(), k * self.units, "g must be K × units");
        assert!(self.data_rows <= self.m.len() / k, "data_rows above the rows");
        assert!(self.tanh.len() % 2 == 1 && self.tanh.len() < 1 << 30, "tanh table length 2R + 1");
        self.m.len() / k
    }
}

/// One block of hidden units of the integer PID step over every row `s` (scalar oracle):
///
/// ```text
/// f_α = Σ_k sᵏ_α m_{s,k}                      (i32, wrapping)
/// t_α = tanh[clamp(f_α, −R, R) + R]
/// u_{s,k} += Σ_α sᵏ_α t_α                      (i32, wrapping)
/// g[k][α] += w_s·m_{s,k}·t_α                   (i64, wrapping)
/// ```
///
/// with `w_s = weights[0]` for the data rows and `weights[1]` for the others. `f` and `t` are
/// scratch (at least `units` entries; the SIMD variants use their own). Every sum is exact
/// or wraps, so any summation order gives these bits.
///
/// # Panics
/// If `K`, the stride or `units` is out of range, `signs` is shorter than
/// `(K−1)·stride + 1`, `m` is not whole rows of `K`, `u.len() != m.len()`,
/// `g.len() != K·units`, `data_rows` exceeds the rows, the table length is even, or the
/// scratch is shorter than `units`.
pub fn hidden_block(
    blk: &HiddenBlock<'_>,
    u: &mut [i32],
    g: &mut [i64],
    f: &mut [i32],
    t: &mut [i16],
) {
    let rows = blk.check(u, g);
    let (k, n) = (blk.patterns, blk.units);
    assert!(f.len() >= n && t.len() >= n, "scratch shorter than the block");
    let (f, t) = (&mut f[..n], &mut t[..n]);
    for s in 0..rows {
        let ms = &blk.m[s * k..(s + 1) * k];
        f.fill(0);
        for (kk, &mk) in ms.iter().enumerate() {
            signed_add_i32(slice::from_ref(&blk.signs[kk * blk.stride]), mk, f);
        }
        for (tj, &fj) in t.iter_mut().zip(f.iter()) {
            *tj = tanh_lookup(blk.tanh, fj);
        }
        let w = blk.weights[usize::from(s >= blk.data_rows)];
        let us = &mut u[s * k..(s + 1) * k];
        for (kk, (uk, &mk)) in us.iter_mut().zip(ms).enumerate() {
            let word = slice::from_ref(&blk.signs[kk * blk.stride]);
            *uk = uk.wrapping_add(signed_sum_i16(word, t));
            let a = w.wrapping_mul(i64::from(mk));
            for (y, &x) in g[kk * n..(kk + 1) * n].iter_mut().zip(t.iter()) {
                *y = y.wrapping_add(a.wrapping_mul(i64::from(x)));
            }
        }
    }
}

/// `acc_i += Σ_s (w·x[s·stride])·v_{s,i}` in `i64` (wrapping), over the `rows =
/// bits.len()/row_words` packed ±1 rows `v_s` of `bits` (row `s` is words
/// `s·row_words..(s+1)·row_words`): [`signed_add_i64`] once per row with `w·x[s·stride]`.
///
/// # Panics
/// If `row_words != words_for(acc.len())`, `bits` is not whole rows, or `x` has no entry
/// `(rows − 1)·stride`.
pub fn signed_rows_add_i64(
    bits: &[u64],
    row_words: usize,
    x: &[i32],
    stride: usize,
    w: i64,
    acc: &mut [i64],
) {
    let rows = check_rows(bits, row_words, x, stride, acc.len());
    for s in 0..rows {
        let c = w.wrapping_mul(i64::from(x[s * stride]));
        signed_add_i64(&bits[s * row_words..(s + 1) * row_words], c, acc);
    }
}

/// The rows of a [`signed_rows_add_i64`] call, checking its lengths.
pub(crate) fn check_rows(
    bits: &[u64],
    row_words: usize,
    x: &[i32],
    stride: usize,
    n: usize,
) -> usize {
    assert_eq!(row_words, words_for(n), "rows must be words_for(len) words");
    let rows = bits.len().checked_div(row_words).unwrap_or(0);
    assert_eq!(rows * row_words, bits.len(), "bits must be whole rows");
    assert!(rows == 0 || x.len() > (rows - 1) * stride, "x shorter than the rows");
    rows
}

/// The integer PID update of `i8` latents by their directions `D` (wrapping `i64`):
/// `θ_j ← clamp(θ_j + clamp((D_j·μ + 2^(σ−1)) >> σ, −255, 255), −127, 127)`, rounding half
/// up.
///
/// # Panics
/// If `theta` and `d` differ in length or `σ` is not in `1..=63`.
#[inline]
pub fn apply_steps(theta: &mut [i8], d: &[i64], mul: i64, shift: u32) {
    assert_eq!(theta.len(), d.len(), "lengths differ");
    assert!((1..=63).contains(&shift), "the shift must be in 1..=63");
    for (x, &dx) in theta.iter_mut().zip(d) {
        *x = apply_one(*x, dx, mul, shift);
    }
}

/// One entry of [`apply_steps`].
#[inline(always)]
pub(crate) fn apply_one(theta: i8, d: i64, mul: i64, shift: u32) -> i8 {
    let step = d.wrapping_mul(mul).wrapping_add(1i64 << (shift - 1)) >> shift;
    (i64::from(theta) + step.clamp(-255, 255)).clamp(-127, 127) as i8
}
