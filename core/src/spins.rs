//! Bit-packed ±1 spin vectors over caller-owned `u64` words.
//!
//! # Layout
//! Spin `i` lives in word `i / 64`, bit `i % 64` (least significant bit first). A set bit is
//! `+1`, a clear bit is `−1`. The bits past `len` in the last word (the padding) are always
//! zero. With that invariant the dot product of two spin vectors of length `n` is
//!
//! ```text
//! s·t = n − 2·popcount(a ⊕ b)
//! ```
//!
//! with no masking, because padding bits agree (both zero) and never count.
//!
//! [`PackedSpins`] is a typed view that carries the invariant: [`PackedSpins::new_checked`]
//! validates it once at the boundary, and every mutating method keeps it.

use crate::error::SpinError;

/// Bits per storage word.
pub const WORD_BITS: usize = 64;

/// Number of `u64` words needed to hold `len` spins.
#[inline]
pub const fn words_for(len: usize) -> usize {
    len.div_ceil(WORD_BITS)
}

/// The sign convention used everywhere in this crate: `sign(x) = +1` for `x ≥ 0` (so
/// `sign(0) = +1`) and for NaN, `−1` for `x < 0`.
#[inline]
pub fn sign_f32(x: f32) -> f32 {
    if x < 0.0 {
        -1.0
    } else {
        1.0
    }
}

/// Mask of the valid bits in the last word of a vector of `len` spins (all ones when `len`
/// is a multiple of 64 and non-zero).
#[inline]
const fn last_word_mask(len: usize) -> u64 {
    let r = len % WORD_BITS;
    if r == 0 {
        u64::MAX
    } else {
        (1u64 << r) - 1
    }
}

/// A vector of `len` ±1 spins stored in caller-owned `u64` words (see the module docs for
/// the layout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackedSpins<S> {
    words: S,
    len: usize,
}

impl<S: AsRef<[u64]>> PackedSpins<S> {
    /// Wraps `words` as `len` spins, checking the word count and that the padding bits are 0.
    ///
    /// # Errors
    /// [`SpinError::WordCount`] if `words` does not hold exactly [`words_for`]`(len)` words;
    /// [`SpinError::Padding`] if a padding bit is set.
    pub fn new_checked(words: S, len: usize) -> Result<Self, SpinError> {
        let w = words.as_ref();
        if w.len() != words_for(len) {
            return Err(SpinError::WordCount { expected: words_for(len), found: w.len() });
        }
        if let Some(last) = w.last() {
            if last & !last_word_mask(len) != 0 {
                return Err(SpinError::Padding);
            }
        }
        Ok(PackedSpins { words, len })
    }

    /// Wraps `words` without checking the padding bits. The caller promises the invariant;
    /// a violation gives wrong dot products, never undefined behaviour.
    ///
    /// # Panics
    /// If `words` does not hold exactly [`words_for`]`(len)` words.
    pub fn new_unchecked(words: S, len: usize) -> Self {
        assert_eq!(words.as_ref().len(), words_for(len), "word count does not match length");
        debug_assert!(words.as_ref().last().is_none_or(|l| l & !last_word_mask(len) == 0));
        PackedSpins { words, len }
    }

    /// Number of spins.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the vector holds no spin.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The storage words.
    #[inline]
    pub fn as_words(&self) -> &[u64] {
        self.words.as_ref()
    }

    /// Gives the storage back.
    #[inline]
    pub fn into_inner(self) -> S {
        self.words
    }

    /// Spin `i` as `+1` or `−1`.
    ///
    /// # Panics
    /// If `i >= len`.
    #[inline]
    pub fn get(&self, i: usize) -> i8 {
        assert!(i < self.len, "spin index out of range");
        let bit = (self.words.as_ref()[i / WORD_BITS] >> (i % WORD_BITS)) & 1;
        (bit as i8) * 2 - 1
    }

    /// The dot product `Σ s_i t_i` of two spin vectors, `len − 2·popcount(a ⊕ b)`.
    ///
    /// # Panics
    /// If the lengths differ.
    #[inline]
    pub fn dot<T: AsRef<[u64]>>(&self, other: &PackedSpins<T>) -> i32 {
        assert_eq!(self.len, other.len, "spin vectors differ in length");
        let d: u32 = self
            .words
            .as_ref()
            .iter()
            .zip(other.words.as_ref())
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        self.len as i32 - 2 * d as i32
    }

    /// Writes the spins as `±1` into `out`.
    ///
    /// # Panics
    /// If `out.len() != len`.
    pub fn to_i8(&self, out: &mut [i8]) {
        assert_eq!(out.len(), self.len, "output length does not match");
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.get(i);
        }
    }

    /// Writes the spins as `±1.0` into `out`.
    ///
    /// # Panics
    /// If `out.len() != len`.
    pub fn to_f32(&self, out: &mut [f32]) {
        assert_eq!(out.len(), self.len, "output length does not match");
        for (c, chunk) in out.chunks_mut(WORD_BITS).enumerate() {
            let w = self.words.as_ref()[c];
            for (b, o) in chunk.iter_mut().enumerate() {
                *o = if (w >> b) & 1 == 1 { 1.0 } else { -1.0 };
            }
        }
    }
}

impl<S: AsRef<[u64]> + AsMut<[u64]>> PackedSpins<S> {
    /// Sets spin `i` to `+1` when `up`, else to `−1`.
    ///
    /// # Panics
    /// If `i >= len`.
    #[inline]
    pub fn set(&mut self, i: usize, up: bool) {
        assert!(i < self.len, "spin index out of range");
        let w = &mut self.words.as_mut()[i / WORD_BITS];
        let m = 1u64 << (i % WORD_BITS);
        if up {
            *w |= m;
        } else {
            *w &= !m;
        }
    }

    /// Packs `±1` values (any `x ≥ 0` counts as `+1`, following [`sign_f32`]).
    ///
    /// # Panics
    /// If `src.len() != len`.
    pub fn copy_from_i8(&mut self, src: &[i8]) {
        assert_eq!(src.len(), self.len, "input length does not match");
        for (c, chunk) in src.chunks(WORD_BITS).enumerate() {
            let mut w = 0u64;
            for (b, &s) in chunk.iter().enumerate() {
                w |= u64::from(s >= 0) << b;
            }
            self.words.as_mut()[c] = w;
        }
    }

    /// Packs the signs of `src` ([`sign_f32`]: `sign(0) = +1`, NaN counts as `+1`).
    ///
    /// # Panics
    /// If `src.len() != len`.
    pub fn copy_from_f32(&mut self, src: &[f32]) {
        assert_eq!(src.len(), self.len, "input length does not match");
        for (c, chunk) in src.chunks(WORD_BITS).enumerate() {
            let mut w = 0u64;
            for (b, &s) in chunk.iter().enumerate() {
                w |= u64::from(sign_f32(s) > 0.0) << b;
            }
            self.words.as_mut()[c] = w;
        }
    }
}

/// The ±1 dot product of a spin vector with a real vector, `Σ_i s_i x_i`.
///
/// # Panics
/// If the lengths differ.
pub fn dot_f32<S: AsRef<[u64]>>(s: &PackedSpins<S>, x: &[f32]) -> f32 {
    assert_eq!(s.len(), x.len(), "lengths differ");
    let mut acc = 0.0f32;
    for (c, chunk) in x.chunks(WORD_BITS).enumerate() {
        let w = s.as_words()[c];
        for (b, &xi) in chunk.iter().enumerate() {
            acc += if (w >> b) & 1 == 1 { xi } else { -xi };
        }
    }
    acc
}

/// Mask of the valid bits in word `c` of a vector of `len` spins.
#[inline]
pub(crate) fn word_mask(c: usize, len: usize) -> u64 {
    let start = c * WORD_BITS;
    if len >= start + WORD_BITS {
        u64::MAX
    } else if len <= start {
        0
    } else {
        (1u64 << (len - start)) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::{RngCore, SeedableRng};
    use rand_pcg::Pcg64;

    const LENS: [usize; 9] = [0, 1, 2, 63, 64, 65, 127, 128, 200];

    fn random_i8(rng: &mut Pcg64, n: usize) -> [i8; 256] {
        let mut a = [0i8; 256];
        for x in a.iter_mut().take(n) {
            *x = if rng.next_u32() & 1 == 1 { 1 } else { -1 };
        }
        a
    }

    #[test]
    fn pack_round_trips_and_keeps_padding_zero() {
        let mut rng = Pcg64::seed_from_u64(1);
        for &n in &LENS {
            let src = random_i8(&mut rng, n);
            let mut words = [0u64; 4];
            let nw = words_for(n);
            let mut p = PackedSpins::new_checked(&mut words[..nw], n).unwrap();
            p.copy_from_i8(&src[..n]);
            let mut back = [0i8; 256];
            p.to_i8(&mut back[..n]);
            assert_eq!(&back[..n], &src[..n]);
            let mut f = [0f32; 256];
            p.to_f32(&mut f[..n]);
            for i in 0..n {
                assert_eq!(f[i], f32::from(src[i]));
            }
            // Re-checking validates the padding the writer left.
            PackedSpins::new_checked(&words[..nw], n).unwrap();
        }
    }

    #[test]
    fn f32_packing_uses_sign_with_zero_positive() {
        let src = [0.0f32, -0.0, -1e-30, 3.0, f32::NAN, -f32::INFINITY];
        let mut w = [0u64; 1];
        let mut p = PackedSpins::new_checked(&mut w[..], src.len()).unwrap();
        p.copy_from_f32(&src);
        let mut out = [0i8; 6];
        p.to_i8(&mut out);
        assert_eq!(out, [1, 1, -1, 1, 1, -1]);
        assert_eq!(sign_f32(0.0), 1.0);
        assert_eq!(sign_f32(-0.0), 1.0);
        assert_eq!(sign_f32(f32::NAN), 1.0);
        assert_eq!(sign_f32(-2.0), -1.0);
    }

    #[test]
    fn overlaps_equal_pm1_dot_products() {
        let mut rng = Pcg64::seed_from_u64(2);
        for &n in &LENS {
            for _ in 0..20 {
                let a = random_i8(&mut rng, n);
                let b = random_i8(&mut rng, n);
                let (mut wa, mut wb) = ([0u64; 4], [0u64; 4]);
                let nw = words_for(n);
                let mut pa = PackedSpins::new_checked(&mut wa[..nw], n).unwrap();
                let mut pb = PackedSpins::new_checked(&mut wb[..nw], n).unwrap();
                pa.copy_from_i8(&a[..n]);
                pb.copy_from_i8(&b[..n]);
                let want: i32 = (0..n).map(|i| i32::from(a[i]) * i32::from(b[i])).sum();
                assert_eq!(pa.dot(&pb), want, "n = {n}");
                let xf: [f32; 256] = core::array::from_fn(|i| f32::from(b[i]) * 0.5);
                assert_eq!(dot_f32(&pa, &xf[..n]), want as f32 * 0.5);
            }
        }
    }

    #[test]
    fn checked_constructor_rejects_bad_buffers() {
        let w = [0u64; 2];
        assert_eq!(
            PackedSpins::new_checked(&w[..], 64),
            Err(SpinError::WordCount { expected: 1, found: 2 })
        );
        let w = [1u64 << 10];
        assert_eq!(PackedSpins::new_checked(&w[..], 10), Err(SpinError::Padding));
        assert!(PackedSpins::new_checked(&w[..], 11).is_ok());
        let mut w = [0u64; 1];
        let mut p = PackedSpins::new_checked(&mut w[..], 3).unwrap();
        p.set(2, true);
        p.set(0, true);
        p.set(0, false);
        assert_eq!(p.get(2), 1);
        assert_eq!(p.get(0), -1);
        assert_eq!(w[0], 0b100);
    }
}
