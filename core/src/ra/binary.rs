//! Integer Gibbs sampling for RA models whose patterns are all ±1 (what the `sign` projection
//! leaves): overlaps by XOR + popcount, fields by integer sums, draws by a threshold table —
//! no floating point in the Gibbs step.
//!
//! # Equations
//! With every pattern entry `ξᵏ_i ∈ {−1, +1}` and spins bit-packed as in [`crate::spins`]
//! (so padding bits never count):
//!
//! ```text
//! m_k = ξᵏ_v · v = V − 2·popcount(ξᵏ_v ⊕ v)          overlap,  in [−V, V],   m_k ≡ V (mod 2)
//! f_α = √K·φ_α   = Σ_k ξᵏ_α m_k                      hidden integer field,   in [−KV, KV]
//! u_k = ξᵏ_h · h = H − 2·popcount(ξᵏ_h ⊕ h)          projection, in [−H, H]
//! g_i = √K·ψ_i   = Σ_k ξᵏ_i u_k                      visible integer field,  in [−KH, KH]
//! P(h_α = +1 | v) = σ(2 f_α / √K),   P(v_i = +1 | h) = σ(2 g_i / √K)
//! ```
//!
//! so `φ = f/√K` and `ψ = g/√K` are the fields of [`RaModel`] exactly (the float path rounds
//! them to `f32`). A visible input with neutral `0` entries (the reconstruction protocol of
//! the reconstruction test sets unkept pixels to 0) is a packed `v` plus a `mask` whose set bits mark the
//! units that count (`n = popcount(mask)`):
//!
//! ```text
//! m_k = popcount(mask ∧ ¬(ξᵏ_v ⊕ v)) − popcount(mask ∧ (ξᵏ_v ⊕ v)) = n − 2·popcount(mask ∧ (ξᵏ_v ⊕ v))
//! ```
//!
//! The sums `Σ_k ξᵏ_α c_k` run without multiplies: `Σ_k ξᵏ_α c_k = 2·Σ_{k: ξᵏ_α = +1} c_k − Σ_k c_k`,
//! where the restricted sum adds `c_k & P_kα` with a mask `P_kα` that is all ones where
//! `ξᵏ_α = +1` and zero where `ξᵏ_α = −1` (an AND and an add per entry; the loops vectorise).
//! Every intermediate stays within `±2K·max(V, H)`, which [`BinaryRa::from_model`] checks
//! fits an `i32`.
//!
//! # Threshold tables
//! A [`ThresholdTable`] for range `R` (`R = KV` on the hidden side, `KH` on the visible side)
//! holds `2R + 1` thresholds, entry `f + R` for the integer field `f ∈ [−R, R]`:
//!
//! ```text
//! p(f) = 1 / (1 + exp(−2f/√K))        evaluated in f64 (libm `exp`, `sqrt`)
//! T(f) = min(⌊p(f)·2³²⌋, 2³² − 1)
//! draw: r = a uniform u32 (one per unit);  spin = +1  iff  r < T  or  T = 2³² − 1
//! ```
//!
//! So `P(+1) = T/2³²` when `T < 2³² − 1` and `P(+1) = 1` when `T = 2³² − 1` (that is, when
//! `p ≥ 1 − 2⁻³²`; this makes `p = 1` exact, and `p = 0` gives `T = 0`, exact too). The drawn
//! probability is within `2⁻³²` of the `f64` value `p̂(f)`, and `p̂` is within `10⁻¹⁵` of
//! `σ(2f/√K)`: `|P(+1) − σ(2f/√K)| < 2⁻³² + 10⁻¹⁵ ≈ 2.3·10⁻¹⁰` (the float path,
//! [`crate::num::sample_spin`], draws 24-bit uniforms: error up to `2⁻²⁴ + 3·10⁻⁷`).
//!
//! Parity: every unmasked overlap has the parity of `V`, so an unmasked hidden field has
//! `f ≡ K·V (mod 2)` and only every other table entry is ever used; likewise `g ≡ K·H
//! (mod 2)`. A masked input with `n` counted units gives `f ≡ K·n`, the other parity when
//! `n ≢ V`, so the tables keep both parities (the full `2R + 1` entries) rather than halve.
//!
//! # Randomness
//! Draws come from the bulk generator [`Lanes`] (sixteen interleaved xoshiro128++ streams,
//! [`crate::kernels::bulk`]) that the caller seeds from its RNG ([`Lanes::seed`]: 32
//! `next_u64`) and passes in. A draw of `n` units (one half-step) takes `⌈n/16⌉` calls of
//! [`Lanes::next16`]: unit `j` uses lane `j mod 16` of call `⌊j/16⌋`, one `u32` per unit, and
//! the unused lanes of a partial last call are discarded. A Gibbs step draws the hidden units,
//! then the visible units. The lanes advance as one vector, so the draws vectorise (a
//! `next_u32` per unit from a scalar RNG was most of the time of a step), and a run is
//! reproducible from the seed, bit for bit on every target. This is not the stream of the
//! float path ([`crate::ra::gibbs`], one `next_u32` per unit), so the two paths agree in
//! distribution, not draw for draw.
//!
//! # Layout
//! [`BinaryRa`] views two caller buffers:
//! * `packed` (`u64`, [`packed_len`]): the `K` rows `ξᵏ_v` of [`words_for`]`(V)` words each,
//!   then the `K` rows `ξᵏ_h` of `words_for(H)` words each, packed as [`PackedSpins`]
//!   (bit 1 = +1, padding bits 0).
//! * `sign_masks` (`i32`, [`sign_masks_len`] = `K·(V+H)`): the masks `P`, `−1` (all bits set) where the
//!   entry is `+1` and `0` where it is `−1`: the `K × V` rows of `Ξ_v`, then the `K × H`
//!   rows of `Ξ_h`, row-major by pattern (the field sums sweep one row per pattern).
//!
//! Output spins are written to caller words (`&mut [u64]` of `words_for(n)` words, padding
//! bits written 0), so `PackedSpins::new_unchecked(words, n)` holds the result.

use core::fmt;

use super::model::{Dims, RaModel};
use crate::kernels::bulk::{Lanes, LANES};
use crate::spins::{words_for, PackedSpins, WORD_BITS};

/// An RA model that cannot take the binary path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryError {
    /// A pattern entry is not exactly `+1.0` or `−1.0`.
    NotPm1 {
        /// Pattern `k`.
        pattern: usize,
        /// Entry within the pattern row: `i < V` for `ξᵏ_v`, `V + α` for `ξᵏ_h`.
        entry: usize,
    },
    /// `2K·max(V, H)` exceeds `i32::MAX`: the integer fields could overflow.
    TooLarge,
}

impl fmt::Display for BinaryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BinaryError::NotPm1 { pattern, entry } => {
                write!(f, "pattern {pattern} entry {entry} is not exactly +1 or -1")
            }
            BinaryError::TooLarge => {
                f.write_str("2K·max(V, H) exceeds i32::MAX: integer fields could overflow")
            }
        }
    }
}

impl core::error::Error for BinaryError {}

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// Length of the `packed` buffer of [`BinaryRa`]: `K·(words_for(V) + words_for(H))`.
pub const fn packed_len(dims: Dims) -> usize {
    dims.patterns * (words_for(dims.visible) + words_for(dims.hidden))
}

/// Length of the `sign_masks` buffer of [`BinaryRa`]: `K·(V + H)`.
pub const fn sign_masks_len(dims: Dims) -> usize {
    dims.xi_len()
}

/// Scratch length (`i32`) for the sampling functions of [`BinaryRa`]: `K + max(V, H)` (the
/// overlaps or projections, then the integer field).
pub const fn scratch_len(dims: Dims) -> usize {
    dims.patterns + max(dims.visible, dims.hidden)
}

/// Length of the hidden-side [`ThresholdTable`]: `2·K·V + 1`.
pub const fn hidden_table_len(dims: Dims) -> usize {
    2 * dims.patterns * dims.visible + 1
}

/// Length of the visible-side [`ThresholdTable`]: `2·K·H + 1`.
pub const fn visible_table_len(dims: Dims) -> usize {
    2 * dims.patterns * dims.hidden + 1
}

/// Whether `2K·max(V, H) ≤ i32::MAX`, so every integer field and intermediate fits an `i32`.
fn fits_i32(dims: Dims) -> bool {
    max(dims.visible, dims.hidden)
        .checked_mul(dims.patterns)
        .and_then(|x| x.checked_mul(2))
        .is_some_and(|x| x <= i32::MAX as usize)
}

/// The threshold of probability `p`: `min(⌊p·2³²⌋, 2³² − 1)`; `p ≤ 0` and NaN give 0.
#[inline]
pub fn threshold(p: f64) -> u32 {
    // `as` saturates: NaN and negatives give 0, anything ≥ 2³² gives u32::MAX.
    (p * 4_294_967_296.0) as u32
}

/// The draw rule: `+1` iff `r < t` or `t = 2³² − 1` (which stands for probability 1).
#[inline(always)]
pub fn draw(r: u32, t: u32) -> bool {
    (r < t) | (t == u32::MAX)
}

/// Draws `thresholds.len()` spins into `out` ([`words_for`] of that many words, padding
/// bits written 0) by [`draw`], unit `j` from lane `j mod 16` of the `⌊j/16⌋`-th
/// [`Lanes::next16`] (see the module docs).
///
/// # Panics
/// If `out.len() != words_for(thresholds.len())`.
pub fn draw_spins(thresholds: &[u32], out: &mut [u64], lanes: &mut Lanes) {
    assert_eq!(out.len(), words_for(thresholds.len()), "out must hold words_for(n) words");
    for (w, chunk) in out.iter_mut().zip(thresholds.chunks(WORD_BITS)) {
        let mut bits = 0u64;
        for (g, group) in chunk.chunks(LANES).enumerate() {
            let r = lanes.next16();
            let b = match <&[u32; LANES]>::try_from(group) {
                Ok(t) => draw16(t, r),
                Err(_) => {
                    let mut t = [0u32; LANES];
                    t[..group.len()].copy_from_slice(group);
                    draw16(&t, r)
                }
            };
            bits |= b << (g * LANES);
        }
        *w = bits;
    }
}

/// Sixteen draws as the low 16 bits (bit `l` for lane `l`); a threshold of 0 gives a 0 bit, so
/// padding lanes with threshold 0 keep the padding bits 0.
#[inline(always)]
fn draw16(t: &[u32; LANES], r: [u32; LANES]) -> u64 {
    let mut bits = 0u32;
    for l in 0..LANES {
        bits |= u32::from(draw(r[l], t[l])) << l;
    }
    u64::from(bits)
}

/// Packs a real vector with neutral entries: `v` gets `+1` for `x > 0` and `−1` otherwise,
/// `mask` gets a set bit for `x > 0` or `x < 0` (so `0`, `−0` and NaN are neutral). Both are
/// [`words_for`]`(src.len())` words, padding bits written 0. For `src` in `{−1, 0, +1}`,
/// [`BinaryRa::overlaps_masked`] then equals `ξᵏ_v · src` exactly; other values count by
/// their sign.
///
/// # Panics
/// If `v` or `mask` does not hold `words_for(src.len())` words.
pub fn pack_masked(src: &[f32], v: &mut [u64], mask: &mut [u64]) {
    let n = words_for(src.len());
    assert!(v.len() == n && mask.len() == n, "v and mask must hold words_for(len) words");
    for ((chunk, vw), mw) in src.chunks(WORD_BITS).zip(v.iter_mut()).zip(mask.iter_mut()) {
        let (mut bv, mut bm) = (0u64, 0u64);
        for (b, &x) in chunk.iter().enumerate() {
            bv |= u64::from(x > 0.0) << b;
            bm |= u64::from(libm::fabsf(x) > 0.0) << b; // false for ±0 and NaN
        }
        *vw = bv;
        *mw = bm;
    }
}

/// `popcount(a ⊕ b)` over whole words.
#[inline]
fn xor_popcount(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// `popcount(mask ∧ (a ⊕ b))` over whole words.
#[inline]
fn masked_xor_popcount(a: &[u64], b: &[u64], mask: &[u64]) -> u32 {
    a.iter().zip(b).zip(mask).map(|((x, y), m)| ((x ^ y) & m).count_ones()).sum()
}

/// `out_j = Σ_k s_kj c_k` for `s = ±1` given by the masks `sign_masks` (`K` rows of `out.len()`):
/// `2·Σ_k (c_k & P_kj) − Σ_k c_k`. The caller guarantees `2·Σ|c_k|` fits an `i32`.
#[inline]
fn signed_sum(c: &[i32], plus: &[i32], out: &mut [i32]) {
    /// Outputs per block: the block's accumulators stay in registers through the `K` rows.
    const BLOCK: usize = 32;
    let n = out.len();
    debug_assert_eq!(plus.len(), c.len() * n);
    let total: i32 = c.iter().sum();
    for (b, chunk) in out.chunks_mut(BLOCK).enumerate() {
        let j0 = b * BLOCK;
        if let Ok(chunk) = <&mut [i32; BLOCK]>::try_from(&mut *chunk) {
            let mut acc = [0i32; BLOCK];
            for (k, &ck) in c.iter().enumerate() {
                let row: &[i32; BLOCK] = plus[k * n + j0..][..BLOCK].try_into().expect("BLOCK");
                for (a, &p) in acc.iter_mut().zip(row) {
                    *a += ck & p;
                }
            }
            for (o, &a) in chunk.iter_mut().zip(&acc) {
                *o = 2 * a - total;
            }
        } else {
            let len = chunk.len();
            let mut acc = [0i32; BLOCK];
            for (k, &ck) in c.iter().enumerate() {
                for (a, &p) in acc.iter_mut().zip(&plus[k * n + j0..][..len]) {
                    *a += ck & p;
                }
            }
            for (o, &a) in chunk.iter_mut().zip(&acc) {
                *o = 2 * a - total;
            }
        }
    }
}

/// A ±1 RA model in integer form: packed pattern rows and sign masks over caller buffers (see
/// the module docs for the layout and equations).
#[derive(Clone, Copy, Debug)]
pub struct BinaryRa<B, S> {
    packed: B,
    sign_masks: S,
    dims: Dims,
}

impl<B: AsRef<[u64]> + AsMut<[u64]>, S: AsRef<[i32]> + AsMut<[i32]>> BinaryRa<B, S> {
    /// Builds the integer form of `model` into `packed` ([`packed_len`] words) and `sign_masks`
    /// ([`sign_masks_len`] entries), checking first that every pattern entry is exactly `±1.0`.
    ///
    /// # Errors
    /// [`BinaryError::TooLarge`] if `2K·max(V, H) > i32::MAX`; [`BinaryError::NotPm1`] for the
    /// first entry (in row-major order) that is not `+1.0` or `−1.0` (`0`, `0.5`, NaN, …).
    /// The buffers are left untouched on error.
    ///
    /// # Panics
    /// If a buffer has the wrong length.
    pub fn from_model<X: AsRef<[f32]>>(
        model: &RaModel<X>,
        mut packed: B,
        mut sign_masks: S,
    ) -> Result<Self, BinaryError> {
        let d = model.dims();
        assert_eq!(packed.as_ref().len(), packed_len(d), "packed must hold packed_len words");
        assert_eq!(
            sign_masks.as_ref().len(),
            sign_masks_len(d),
            "sign_masks must hold sign_masks_len entries"
        );
        if !fits_i32(d) {
            return Err(BinaryError::TooLarge);
        }
        for (k, row) in model.xi().chunks_exact(d.width()).enumerate() {
            if let Some(entry) = row.iter().position(|&x| x != 1.0 && x != -1.0) {
                return Err(BinaryError::NotPm1 { pattern: k, entry });
            }
        }
        let (wv, wh) = (words_for(d.visible), words_for(d.hidden));
        // Zero first: the packing views expect zero padding bits.
        packed.as_mut().fill(0);
        let (pv, ph) = packed.as_mut().split_at_mut(d.patterns * wv);
        let (sv, sh) = sign_masks.as_mut().split_at_mut(d.patterns * d.visible);
        for k in 0..d.patterns {
            PackedSpins::new_unchecked(&mut pv[k * wv..(k + 1) * wv], d.visible)
                .copy_from_f32(model.xi_v(k));
            PackedSpins::new_unchecked(&mut ph[k * wh..(k + 1) * wh], d.hidden)
                .copy_from_f32(model.xi_h(k));
            let (rv, rh) = (k * d.visible, k * d.hidden);
            for (s, &x) in sv[rv..rv + d.visible].iter_mut().zip(model.xi_v(k)) {
                *s = -i32::from(x > 0.0);
            }
            for (s, &x) in sh[rh..rh + d.hidden].iter_mut().zip(model.xi_h(k)) {
                *s = -i32::from(x > 0.0);
            }
        }
        Ok(BinaryRa { packed, sign_masks, dims: d })
    }
}

impl<B: AsRef<[u64]>, S: AsRef<[i32]>> BinaryRa<B, S> {
    /// The sizes.
    #[inline]
    pub fn dims(&self) -> Dims {
        self.dims
    }

    /// Gives the buffers back: `(packed, sign_masks)`.
    pub fn into_inner(self) -> (B, S) {
        (self.packed, self.sign_masks)
    }

    /// `ξᵏ_v` packed ([`words_for`]`(V)` words).
    #[inline]
    pub fn xi_v_packed(&self, k: usize) -> &[u64] {
        let w = words_for(self.dims.visible);
        &self.packed.as_ref()[k * w..(k + 1) * w]
    }

    /// `ξᵏ_h` packed ([`words_for`]`(H)` words).
    #[inline]
    pub fn xi_h_packed(&self, k: usize) -> &[u64] {
        let base = self.dims.patterns * words_for(self.dims.visible);
        let w = words_for(self.dims.hidden);
        &self.packed.as_ref()[base + k * w..base + (k + 1) * w]
    }

    /// The `K × V` masks of `Ξ_v`.
    #[inline]
    fn sign_masks_v(&self) -> &[i32] {
        &self.sign_masks.as_ref()[..self.dims.patterns * self.dims.visible]
    }

    /// The `K × H` masks of `Ξ_h`.
    #[inline]
    fn sign_masks_h(&self) -> &[i32] {
        &self.sign_masks.as_ref()[self.dims.patterns * self.dims.visible..]
    }

    /// Overlaps `m_k = V − 2·popcount(ξᵏ_v ⊕ v)` (replaces `m`).
    ///
    /// # Panics
    /// If `v.len() != V` or `m.len() != K`.
    pub fn overlaps<T: AsRef<[u64]>>(&self, v: &PackedSpins<T>, m: &mut [i32]) {
        let d = self.dims;
        assert_eq!(v.len(), d.visible, "v must have V spins");
        assert_eq!(m.len(), d.patterns, "m must have K entries");
        for (k, mk) in m.iter_mut().enumerate() {
            *mk = d.visible as i32 - 2 * xor_popcount(self.xi_v_packed(k), v.as_words()) as i32;
        }
    }

    /// Overlaps of an input with neutral entries, `m_k = n − 2·popcount(mask ∧ (ξᵏ_v ⊕ v))`
    /// with `n = popcount(mask)`: the units with a clear `mask` bit count as 0 (replaces `m`).
    /// [`pack_masked`] makes `v` and `mask` from a real vector.
    ///
    /// # Panics
    /// If `v.len() != V`, `mask.len() != V` or `m.len() != K`.
    pub fn overlaps_masked<T: AsRef<[u64]>, M: AsRef<[u64]>>(
        &self,
        v: &PackedSpins<T>,
        mask: &PackedSpins<M>,
        m: &mut [i32],
    ) {
        let d = self.dims;
        assert_eq!(v.len(), d.visible, "v must have V spins");
        assert_eq!(mask.len(), d.visible, "mask must have V bits");
        assert_eq!(m.len(), d.patterns, "m must have K entries");
        let n: u32 = mask.as_words().iter().map(|w| w.count_ones()).sum();
        for (k, mk) in m.iter_mut().enumerate() {
            let x = masked_xor_popcount(self.xi_v_packed(k), v.as_words(), mask.as_words());
            *mk = n as i32 - 2 * x as i32;
        }
    }

    /// Projections `u_k = H − 2·popcount(ξᵏ_h ⊕ h)` (replaces `u`).
    ///
    /// # Panics
    /// If `h.len() != H` or `u.len() != K`.
    pub fn projections<T: AsRef<[u64]>>(&self, h: &PackedSpins<T>, u: &mut [i32]) {
        let d = self.dims;
        assert_eq!(h.len(), d.hidden, "h must have H spins");
        assert_eq!(u.len(), d.patterns, "u must have K entries");
        for (k, uk) in u.iter_mut().enumerate() {
            *uk = d.hidden as i32 - 2 * xor_popcount(self.xi_h_packed(k), h.as_words()) as i32;
        }
    }

    /// Hidden integer field `f_α = Σ_k ξᵏ_α m_k = √K·φ_α` (replaces `f`). `m` must hold
    /// overlaps (`|m_k| ≤ V`).
    ///
    /// # Panics
    /// If `m.len() != K` or `f.len() != H`.
    pub fn hidden_field_from_overlaps(&self, m: &[i32], f: &mut [i32]) {
        let d = self.dims;
        assert_eq!(m.len(), d.patterns, "m must have K entries");
        assert_eq!(f.len(), d.hidden, "f must have H entries");
        debug_assert!(m.iter().all(|x| x.unsigned_abs() as usize <= d.visible));
        signed_sum(m, self.sign_masks_h(), f);
    }

    /// Visible integer field `g_i = Σ_k ξᵏ_i u_k = √K·ψ_i` (replaces `g`). `u` must hold
    /// projections (`|u_k| ≤ H`).
    ///
    /// # Panics
    /// If `u.len() != K` or `g.len() != V`.
    pub fn visible_field_from_projections(&self, u: &[i32], g: &mut [i32]) {
        let d = self.dims;
        assert_eq!(u.len(), d.patterns, "u must have K entries");
        assert_eq!(g.len(), d.visible, "g must have V entries");
        debug_assert!(u.iter().all(|x| x.unsigned_abs() as usize <= d.hidden));
        signed_sum(u, self.sign_masks_v(), g);
    }

    /// Hidden integer field of a packed `v`; `m` (K) holds the overlaps after.
    ///
    /// # Panics
    /// On a length mismatch.
    pub fn hidden_field<T: AsRef<[u64]>>(&self, v: &PackedSpins<T>, m: &mut [i32], f: &mut [i32]) {
        self.overlaps(v, m);
        self.hidden_field_from_overlaps(m, f);
    }

    /// Hidden integer field of an input with neutral entries ([`BinaryRa::overlaps_masked`]);
    /// `m` (K) holds the overlaps after.
    ///
    /// # Panics
    /// On a length mismatch.
    pub fn hidden_field_masked<T: AsRef<[u64]>, M: AsRef<[u64]>>(
        &self,
        v: &PackedSpins<T>,
        mask: &PackedSpins<M>,
        m: &mut [i32],
        f: &mut [i32],
    ) {
        self.overlaps_masked(v, mask, m);
        self.hidden_field_from_overlaps(m, f);
    }

    /// Visible integer field of a packed `h`; `u` (K) holds the projections after.
    ///
    /// # Panics
    /// On a length mismatch.
    pub fn visible_field<T: AsRef<[u64]>>(&self, h: &PackedSpins<T>, u: &mut [i32], g: &mut [i32]) {
        self.projections(h, u);
        self.visible_field_from_projections(u, g);
    }

    fn check_table<U: AsRef<[u32]>>(&self, table: &ThresholdTable<U>, side: usize) {
        assert!(
            table.patterns() == self.dims.patterns && table.range() == self.dims.patterns * side,
            "threshold table was built for other sizes"
        );
    }

    /// Draws `h ~ P(h | v)` into `h` ([`words_for`]`(H)` words): integer field, then one draw
    /// per hidden unit from `lanes` against `table` (built by [`ThresholdTable::hidden`] for
    /// these sizes; see [`ThresholdTable::sample`]). `scratch` needs [`scratch_len`] entries.
    ///
    /// # Panics
    /// On a length mismatch, a short `scratch`, or a table built for other sizes.
    pub fn sample_hidden<T, U>(
        &self,
        v: &PackedSpins<T>,
        table: &ThresholdTable<U>,
        h: &mut [u64],
        scratch: &mut [i32],
        lanes: &mut Lanes,
    ) where
        T: AsRef<[u64]>,
        U: AsRef<[u32]>,
    {
        let d = self.dims;
        self.check_table(table, d.visible);
        let (m, rest) = scratch.split_at_mut(d.patterns);
        let f = &mut rest[..d.hidden];
        self.hidden_field(v, m, f);
        table.sample(f, h, lanes);
    }

    /// Draws `h ~ P(h | v)` for an input with neutral entries (the units with a clear `mask`
    /// bit count as 0), as [`BinaryRa::sample_hidden`] otherwise.
    ///
    /// # Panics
    /// On a length mismatch, a short `scratch`, or a table built for other sizes.
    pub fn sample_hidden_masked<T, M, U>(
        &self,
        v: &PackedSpins<T>,
        mask: &PackedSpins<M>,
        table: &ThresholdTable<U>,
        h: &mut [u64],
        scratch: &mut [i32],
        lanes: &mut Lanes,
    ) where
        T: AsRef<[u64]>,
        M: AsRef<[u64]>,
        U: AsRef<[u32]>,
    {
        let d = self.dims;
        self.check_table(table, d.visible);
        let (m, rest) = scratch.split_at_mut(d.patterns);
        let f = &mut rest[..d.hidden];
        self.hidden_field_masked(v, mask, m, f);
        table.sample(f, h, lanes);
    }

    /// Draws `v ~ P(v | h)` into `v` ([`words_for`]`(V)` words): integer field, then one draw
    /// per visible unit from `lanes` against `table` (built by [`ThresholdTable::visible`] for
    /// these sizes; see [`ThresholdTable::sample`]). `scratch` needs [`scratch_len`] entries.
    ///
    /// # Panics
    /// On a length mismatch, a short `scratch`, or a table built for other sizes.
    pub fn sample_visible<T, U>(
        &self,
        h: &PackedSpins<T>,
        table: &ThresholdTable<U>,
        v: &mut [u64],
        scratch: &mut [i32],
        lanes: &mut Lanes,
    ) where
        T: AsRef<[u64]>,
        U: AsRef<[u32]>,
    {
        let d = self.dims;
        self.check_table(table, d.hidden);
        let (u, rest) = scratch.split_at_mut(d.patterns);
        let g = &mut rest[..d.visible];
        self.visible_field(h, u, g);
        table.sample(g, v, lanes);
    }

    /// One block Gibbs step `v → h → v` in place on packed words (`v`: [`words_for`]`(V)`,
    /// `h`: `words_for(H)`, padding bits of `v` must be 0 and are written 0): the `H` hidden
    /// draws (`⌈H/16⌉` calls of [`Lanes::next16`]), then the `V` visible draws (`⌈V/16⌉`
    /// calls). `h` holds the hidden draw after.
    ///
    /// # Panics
    /// On a length mismatch, a short `scratch`, or tables built for other sizes.
    pub fn gibbs_step<U, W>(
        &self,
        v: &mut [u64],
        h: &mut [u64],
        hidden_table: &ThresholdTable<U>,
        visible_table: &ThresholdTable<W>,
        scratch: &mut [i32],
        lanes: &mut Lanes,
    ) where
        U: AsRef<[u32]>,
        W: AsRef<[u32]>,
    {
        let d = self.dims;
        self.sample_hidden(
            &PackedSpins::new_unchecked(&*v, d.visible),
            hidden_table,
            h,
            scratch,
            lanes,
        );
        self.sample_visible(
            &PackedSpins::new_unchecked(&*h, d.hidden),
            visible_table,
            v,
            scratch,
            lanes,
        );
    }
}

/// Thresholds `T(f)` for integer fields `f ∈ [−R, R]` over a caller buffer of `2R + 1`
/// entries, entry `f + R` (see the module docs for the rule and its error bound).
#[derive(Clone, Copy, Debug)]
pub struct ThresholdTable<S> {
    t: S,
    range: usize,
    patterns: usize,
}

impl<S: AsRef<[u32]> + AsMut<[u32]>> ThresholdTable<S> {
    /// Fills `buf` with `T(f) = min(⌊p(f)·2³²⌋, 2³² − 1)`, `p(f) = 1/(1 + exp(−2f/√K))` in
    /// `f64`, for `f ∈ [−range, range]`, with `K = patterns`.
    ///
    /// # Panics
    /// If `buf.len() != 2·range + 1`, `patterns = 0` or `range > i32::MAX`.
    pub fn new(mut buf: S, range: usize, patterns: usize) -> Self {
        assert!(patterns > 0, "K must be at least 1");
        assert!(range <= i32::MAX as usize, "range must fit an i32");
        assert_eq!(buf.as_ref().len(), 2 * range + 1, "table must hold 2·range + 1 entries");
        let scale = 2.0 / libm::sqrt(patterns as f64);
        for (j, t) in buf.as_mut().iter_mut().enumerate() {
            let f = j as f64 - range as f64;
            *t = threshold(1.0 / (1.0 + libm::exp(-scale * f)));
        }
        ThresholdTable { t: buf, range, patterns }
    }

    /// The hidden-side table (`R = K·V`) in `buf` ([`hidden_table_len`] entries).
    ///
    /// # Panics
    /// If `buf` has the wrong length, `K = 0` or `K·V > i32::MAX`.
    pub fn hidden(dims: Dims, buf: S) -> Self {
        Self::new(buf, dims.patterns * dims.visible, dims.patterns)
    }

    /// The visible-side table (`R = K·H`) in `buf` ([`visible_table_len`] entries).
    ///
    /// # Panics
    /// If `buf` has the wrong length, `K = 0` or `K·H > i32::MAX`.
    pub fn visible(dims: Dims, buf: S) -> Self {
        Self::new(buf, dims.patterns * dims.hidden, dims.patterns)
    }
}

impl<S: AsRef<[u32]>> ThresholdTable<S> {
    /// The field range `R`.
    #[inline]
    pub fn range(&self) -> usize {
        self.range
    }

    /// The `K` of the scale `2/√K`.
    #[inline]
    pub fn patterns(&self) -> usize {
        self.patterns
    }

    /// All thresholds, entry `f + R` for field `f`.
    #[inline]
    pub fn as_slice(&self) -> &[u32] {
        self.t.as_ref()
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> S {
        self.t
    }

    /// `T(f)`.
    ///
    /// # Panics
    /// If `|f| > R`.
    #[inline]
    pub fn threshold(&self, f: i32) -> u32 {
        self.t.as_ref()[index(f, self.range)]
    }

    /// `T(f_j)` for every field value (replaces `out`).
    ///
    /// # Panics
    /// If the lengths differ or a value is outside `[−R, R]`.
    pub fn thresholds(&self, field: &[i32], out: &mut [u32]) {
        assert_eq!(field.len(), out.len(), "lengths differ");
        for (o, &f) in out.iter_mut().zip(field) {
            *o = self.threshold(f);
        }
    }

    /// Draws one spin per field value into `out` ([`words_for`]`(field.len())` words, padding
    /// bits written 0): unit `j` is `+1` iff [`draw`]`(r_j, T(f_j))`, `r_j` from lane
    /// `j mod 16` of the `⌊j/16⌋`-th [`Lanes::next16`] (see the module docs).
    ///
    /// # Panics
    /// If `out` has the wrong length or a value is outside `[−R, R]`.
    pub fn sample(&self, field: &[i32], out: &mut [u64], lanes: &mut Lanes) {
        assert_eq!(out.len(), words_for(field.len()), "out must hold words_for(n) words");
        for (w, chunk) in out.iter_mut().zip(field.chunks(WORD_BITS)) {
            let mut bits = 0u64;
            for (g, group) in chunk.chunks(LANES).enumerate() {
                let mut t = [0u32; LANES];
                self.thresholds(group, &mut t[..group.len()]);
                bits |= draw16(&t, lanes.next16()) << (g * LANES);
            }
            *w = bits;
        }
    }
}

/// Table index `f + R`; a value below `−R` wraps to a huge index, so the lookup panics.
#[inline(always)]
fn index(f: i32, range: usize) -> usize {
    (f as isize + range as isize) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::pm1;
    use rand_core::{RngCore, SeedableRng};
    use rand_pcg::Pcg64;

    extern crate std;
    use std::vec;
    use std::vec::Vec;

    /// A random ±1 model of the given sizes, with its integer form.
    struct Fixture {
        xi: Vec<f32>,
        packed: Vec<u64>,
        plus: Vec<i32>,
        dims: Dims,
    }

    impl Fixture {
        fn random(rng: &mut Pcg64, dims: Dims) -> Self {
            let xi = pm1(rng, dims.xi_len());
            Fixture {
                xi,
                packed: vec![0; packed_len(dims)],
                plus: vec![0; sign_masks_len(dims)],
                dims,
            }
        }

        fn binary(&mut self) -> BinaryRa<&mut [u64], &mut [i32]> {
            let model = RaModel::new_unchecked(&self.xi[..], self.dims);
            BinaryRa::from_model(&model, &mut self.packed[..], &mut self.plus[..]).unwrap()
        }
    }

    fn packed(x: &[f32]) -> Vec<u64> {
        let mut w = vec![0u64; words_for(x.len())];
        PackedSpins::new_unchecked(&mut w[..], x.len()).copy_from_f32(x);
        w
    }

    /// `Σ_k ξᵏ_j c_k` in i64 straight from the f32 patterns.
    fn oracle_field(xi: &[f32], dims: Dims, hidden: bool, c: &[i32]) -> Vec<i64> {
        let (off, n) = if hidden { (dims.visible, dims.hidden) } else { (0, dims.visible) };
        (0..n)
            .map(|j| {
                (0..dims.patterns)
                    .map(|k| xi[k * dims.width() + off + j] as i64 * i64::from(c[k]))
                    .sum()
            })
            .collect()
    }

    const SIZES: [usize; 5] = [1, 63, 64, 65, 130];

    #[test]
    #[cfg_attr(miri, ignore = "25 size pairs × 3 K with float references: slow under Miri")]
    fn integer_fields_equal_float_fields_times_sqrt_k() {
        let mut rng = Pcg64::seed_from_u64(101);
        for &v_len in &SIZES {
            for &h_len in &SIZES {
                for &k in &[1usize, 3, 8] {
                    let dims = Dims::new(v_len, h_len, k);
                    let mut fx = Fixture::random(&mut rng, dims);
                    let xi = fx.xi.clone();
                    let model = RaModel::new_unchecked(&xi[..], dims);
                    let bin = fx.binary();
                    for k2 in 0..k {
                        assert_eq!(bin.xi_v_packed(k2), &packed(model.xi_v(k2))[..]);
                        assert_eq!(bin.xi_h_packed(k2), &packed(model.xi_h(k2))[..]);
                    }
                    for _ in 0..3 {
                        let v = pm1(&mut rng, v_len);
                        let h = pm1(&mut rng, h_len);
                        let (vw, hw) = (packed(&v), packed(&h));
                        let (mut m, mut f) = (vec![0i32; k], vec![0i32; h_len]);
                        let (mut u, mut g) = (vec![0i32; k], vec![0i32; v_len]);
                        bin.hidden_field(
                            &PackedSpins::new_checked(&vw[..], v_len).unwrap(),
                            &mut m,
                            &mut f,
                        );
                        bin.visible_field(
                            &PackedSpins::new_checked(&hw[..], h_len).unwrap(),
                            &mut u,
                            &mut g,
                        );
                        // Overlaps and projections of ±1 vectors are exact integers in f32.
                        let (mut mf, mut uf) = (vec![0.0f32; k], vec![0.0f32; k]);
                        let (mut phi, mut psi) = (vec![0.0f32; h_len], vec![0.0f32; v_len]);
                        model.hidden_field(&v, &mut mf, &mut phi);
                        model.visible_field(&h, &mut uf, &mut psi);
                        for kk in 0..k {
                            assert_eq!(m[kk] as f32, mf[kk], "m V={v_len} H={h_len} K={k}");
                            assert_eq!(u[kk] as f32, uf[kk], "u V={v_len} H={h_len} K={k}");
                        }
                        let sk = (k as f64).sqrt();
                        let want_f = oracle_field(&xi, dims, true, &m);
                        for a in 0..h_len {
                            assert_eq!(i64::from(f[a]), want_f[a], "f V={v_len} H={h_len} K={k}");
                            // Parity: unmasked fields have the parity of K·V.
                            assert_eq!((f[a] - (k * v_len) as i32).rem_euclid(2), 0);
                            // φ_f32·√K within f32 rounding of K terms.
                            let tol = 1e-5 * (k * v_len) as f64;
                            assert!((phi[a] as f64 * sk - f64::from(f[a])).abs() <= tol);
                        }
                        let want_g = oracle_field(&xi, dims, false, &u);
                        for i in 0..v_len {
                            assert_eq!(i64::from(g[i]), want_g[i], "g V={v_len} H={h_len} K={k}");
                            assert_eq!((g[i] - (k * h_len) as i32).rem_euclid(2), 0);
                            let tol = 1e-5 * (k * h_len) as f64;
                            assert!((psi[i] as f64 * sk - f64::from(g[i])).abs() <= tol);
                        }
                    }
                }
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "many sizes with float references: slow under Miri")]
    fn masked_overlaps_equal_float_overlaps_with_zero_entries() {
        let mut rng = Pcg64::seed_from_u64(102);
        for &v_len in &SIZES {
            let dims = Dims::new(v_len, 65, 5);
            let mut fx = Fixture::random(&mut rng, dims);
            let xi = fx.xi.clone();
            let model = RaModel::new_unchecked(&xi[..], dims);
            let bin = fx.binary();
            for trial in 0..6 {
                // Trials 0 and 1: every entry neutral, none neutral; then random thirds.
                let x: Vec<f32> = (0..v_len)
                    .map(|_| {
                        let neutral = match trial {
                            0 => true,
                            1 => false,
                            _ => rng.next_u32() % 3 == 0,
                        };
                        if neutral {
                            0.0
                        } else if rng.next_u32() & 1 == 1 {
                            1.0
                        } else {
                            -1.0
                        }
                    })
                    .collect();
                let w = words_for(v_len);
                let (mut vw, mut mw) = (vec![0u64; w], vec![0u64; w]);
                pack_masked(&x, &mut vw, &mut mw);
                let vp = PackedSpins::new_checked(&vw[..], v_len).expect("padding written 0");
                let mp = PackedSpins::new_checked(&mw[..], v_len).expect("padding written 0");
                let (mut m, mut f) = (vec![0i32; 5], vec![0i32; 65]);
                bin.hidden_field_masked(&vp, &mp, &mut m, &mut f);
                let mut mf = vec![0.0f32; 5];
                model.overlaps(&x, &mut mf);
                for kk in 0..5 {
                    assert_eq!(m[kk] as f32, mf[kk], "V={v_len} trial {trial}");
                }
                assert_eq!(
                    f.iter().map(|&a| i64::from(a)).collect::<Vec<_>>(),
                    oracle_field(&xi, dims, true, &m)
                );
                if trial == 1 {
                    // No neutral entry: the masked and unmasked overlaps agree.
                    let mut m2 = vec![0i32; 5];
                    bin.overlaps(&vp, &mut m2);
                    assert_eq!(m, m2);
                }
            }
        }
        // Neutral values: 0, −0 and NaN; signs of other values.
        let (mut vw, mut mw) = ([0u64; 1], [0u64; 1]);
        pack_masked(&[0.0, -0.0, f32::NAN, 1.0, -1.0, 0.5], &mut vw, &mut mw);
        assert_eq!((vw[0], mw[0]), (0b101000, 0b111000));
    }

    fn sigma_ref(x: f64) -> f64 {
        // σ(x) = (1 + tanh(x/2))/2: an evaluation independent of the table's.
        0.5 * (1.0 + libm::tanh(0.5 * x))
    }

    #[test]
    fn threshold_rule_edges() {
        // Exact powers of two as literals: Miri makes `powi` deliberately imprecise.
        const TWO_M32: f64 = 1.0 / 4_294_967_296.0;
        assert_eq!(threshold(0.0), 0);
        assert_eq!(threshold(-1.0), 0);
        assert_eq!(threshold(f64::NAN), 0);
        assert_eq!(threshold(0.5), 1 << 31);
        assert_eq!(threshold(1.0), u32::MAX);
        assert_eq!(threshold(1.0 - TWO_M32), u32::MAX);
        assert_eq!(threshold(1.0 - (2.0 * TWO_M32)), u32::MAX - 1);
        assert_eq!(threshold(TWO_M32), 1);
        assert_eq!(threshold(0.99 * TWO_M32), 0);
        assert!(draw(u32::MAX, u32::MAX) && draw(0, u32::MAX) && !draw(0, 0) && !draw(5, 5));
        assert!(draw(4, 5) && !draw(u32::MAX - 1, u32::MAX - 1));
    }

    #[test]
    #[cfg_attr(miri, ignore = "30k f64 exp and tanh evaluations: slow under Miri")]
    fn threshold_tables_are_within_the_stated_bound() {
        for &(v_len, h_len, k) in &[(3usize, 2usize, 3usize), (16, 40, 8), (144, 30, 40)] {
            let dims = Dims::new(v_len, h_len, k);
            let mut buf = vec![0u32; hidden_table_len(dims)];
            let t = ThresholdTable::hidden(dims, &mut buf[..]);
            let r = (k * v_len) as i32;
            assert_eq!(t.range(), r as usize);
            assert_eq!(t.threshold(0), 1 << 31);
            let sk = (k as f64).sqrt();
            let mut prev = 0u32;
            for f in -r..=r {
                let th = t.threshold(f);
                assert!(th >= prev, "monotone");
                prev = th;
                let p = sigma_ref(2.0 * f64::from(f) / sk);
                let drawn = if th == u32::MAX { 1.0 } else { f64::from(th) / 4_294_967_296.0 };
                assert!((drawn - p).abs() < 2f64.powi(-32) + 1e-15, "f = {f}: {drawn} vs {p}");
            }
            let mut vbuf = vec![0u32; visible_table_len(dims)];
            assert_eq!(ThresholdTable::visible(dims, &mut vbuf[..]).range(), k * h_len);
        }
        // A large range saturates at both ends: exactly 0 and "always".
        let dims = Dims::new(144, 10, 40);
        let mut buf = vec![0u32; hidden_table_len(dims)];
        let t = ThresholdTable::hidden(dims, &mut buf[..]);
        assert_eq!((t.threshold(-5760), t.threshold(5760)), (0, u32::MAX));
    }

    #[test]
    #[cfg_attr(miri, ignore = "a million draws: too slow under Miri")]
    fn table_draw_frequencies_match_sigmoid() {
        let k = 9usize;
        let dims = Dims::new(7, 3, k);
        let mut buf = vec![0u32; hidden_table_len(dims)];
        let t = ThresholdTable::hidden(dims, &mut buf[..]);
        // f/√K = φ: fields −2, −0.33, 0, 0.33, 1, 2.33, and a saturated 21.
        let fields = [-6i32, -1, 0, 1, 3, 7, 63];
        let per = 150_000usize;
        let field: Vec<i32> = (0..fields.len() * per).map(|j| fields[j % fields.len()]).collect();
        let mut out = vec![0u64; words_for(field.len())];
        let mut lanes = Lanes::seed(&mut Pcg64::seed_from_u64(103));
        t.sample(&field, &mut out, &mut lanes);
        let s = PackedSpins::new_checked(&out[..], field.len()).expect("padding written 0");
        for (c, &f) in fields.iter().enumerate() {
            let ups = (c..field.len()).step_by(fields.len()).filter(|&j| s.get(j) == 1).count();
            let p = crate::num::sigmoid(2.0 * f as f32 / 3.0) as f64;
            let got = ups as f64 / per as f64;
            let sd = (p * (1.0 - p) / per as f64).sqrt();
            assert!((got - p).abs() <= 5.0 * sd + 1e-6, "f = {f}: {got} vs {p}");
        }
        // The same spins from precomputed thresholds.
        let mut th = vec![0u32; field.len()];
        t.thresholds(&field, &mut th);
        let mut out2 = vec![0u64; out.len()];
        draw_spins(&th, &mut out2, &mut Lanes::seed(&mut Pcg64::seed_from_u64(103)));
        assert_eq!(out, out2);
    }

    /// Exact `P(v' | v)` of one step `v → h → v'` by enumerating `h`, in f64.
    fn exact_kernel(model: &RaModel<&[f32]>, v: &[f32]) -> Vec<f64> {
        let d = model.dims();
        let sk = (d.patterns as f64).sqrt();
        let w = |i: usize, a: usize| -> f64 {
            (0..d.patterns).map(|k| f64::from(model.xi_v(k)[i] * model.xi_h(k)[a])).sum::<f64>()
                / sk
        };
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let mut out = vec![0.0; 1 << d.visible];
        for hb in 0..(1usize << d.hidden) {
            let hs = |a: usize| if hb >> a & 1 == 1 { 1.0 } else { -1.0 };
            let mut ph = 1.0;
            for a in 0..d.hidden {
                let phi: f64 = (0..d.visible).map(|i| w(i, a) * f64::from(v[i])).sum();
                let p = sig(2.0 * phi);
                ph *= if hs(a) > 0.0 { p } else { 1.0 - p };
            }
            for (vb, o) in out.iter_mut().enumerate() {
                let mut pv = 1.0;
                for i in 0..d.visible {
                    let psi: f64 = (0..d.hidden).map(|a| w(i, a) * hs(a)).sum();
                    let p = sig(2.0 * psi);
                    pv *= if vb >> i & 1 == 1 { p } else { 1.0 - p };
                }
                *o += ph * pv;
            }
        }
        out
    }

    #[test]
    #[cfg_attr(miri, ignore = "320k Gibbs steps: too slow under Miri")]
    fn binary_gibbs_step_has_the_float_step_distribution() {
        let dims = Dims::new(3, 2, 3);
        #[rustfmt::skip]
        let xi = [
            1.0, -1.0, 1.0, 1.0, 1.0,
            1.0, 1.0, -1.0, -1.0, 1.0,
            -1.0, 1.0, 1.0, 1.0, -1.0,
        ];
        let model = RaModel::new_unchecked(&xi[..], dims);
        let (mut pk, mut pl) = (vec![0u64; packed_len(dims)], vec![0i32; sign_masks_len(dims)]);
        let bin = BinaryRa::from_model(&model, &mut pk[..], &mut pl[..]).unwrap();
        let (mut tb_h, mut tb_v) =
            (vec![0u32; hidden_table_len(dims)], vec![0u32; visible_table_len(dims)]);
        let th = ThresholdTable::hidden(dims, &mut tb_h[..]);
        let tv = ThresholdTable::visible(dims, &mut tb_v[..]);
        let mut scratch = vec![0i32; scratch_len(dims)];
        let mut rng = Pcg64::seed_from_u64(104);
        let mut lanes = Lanes::seed(&mut rng);
        let n = 20_000usize;
        for vb in 0..8usize {
            let v0: Vec<f32> = (0..3).map(|i| if vb >> i & 1 == 1 { 1.0 } else { -1.0 }).collect();
            let want = exact_kernel(&model, &v0);
            assert!((want.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let (mut bin_counts, mut float_counts) = ([0usize; 8], [0usize; 8]);
            for _ in 0..n {
                let (mut v, mut h) = ([vb as u64], [0u64]);
                bin.gibbs_step(&mut v, &mut h, &th, &tv, &mut scratch, &mut lanes);
                assert!(v[0] < 8 && h[0] < 4, "padding bits stay 0");
                bin_counts[v[0] as usize] += 1;
                let (mut vf, mut hf, mut s) = (v0.clone(), [0.0f32; 2], [0.0f32; 3]);
                crate::ra::gibbs::gibbs_step(&model, &mut vf, &mut hf, &mut s, &mut rng);
                float_counts[packed(&vf)[0] as usize] += 1;
            }
            for (c, &p) in want.iter().enumerate() {
                let sd = (p * (1.0 - p) / n as f64).sqrt();
                for (what, counts) in [("binary", &bin_counts), ("float", &float_counts)] {
                    let got = counts[c] as f64 / n as f64;
                    assert!(
                        (got - p).abs() <= 5.0 * sd + 1e-4,
                        "{what} v={vb} v'={c}: {got} vs {p}"
                    );
                }
            }
        }
    }

    #[test]
    fn gibbs_draws_whole_lane_calls_and_reproduce_from_the_seed() {
        let mut rng = Pcg64::seed_from_u64(105);
        let dims = Dims::new(65, 70, 4);
        let mut fx = Fixture::random(&mut rng, dims);
        let bin = fx.binary();
        let mut tb_h = vec![0u32; hidden_table_len(dims)];
        let mut tb_v = vec![0u32; visible_table_len(dims)];
        let th = ThresholdTable::hidden(dims, &mut tb_h[..]);
        let tv = ThresholdTable::visible(dims, &mut tb_v[..]);
        let start = packed(&pm1(&mut rng, 65));
        let run = |seed: u64| {
            let mut lanes = Lanes::seed(&mut Pcg64::seed_from_u64(seed));
            let (mut v, mut h) = (start.clone(), vec![0u64; words_for(70)]);
            let mut s = vec![0i32; scratch_len(dims)];
            for _ in 0..5 {
                bin.gibbs_step(&mut v, &mut h, &th, &tv, &mut s, &mut lanes);
                PackedSpins::new_checked(&v[..], 65).expect("v padding 0");
                PackedSpins::new_checked(&h[..], 70).expect("h padding 0");
            }
            (v, h, lanes)
        };
        let (v1, h1, mut l1) = run(7);
        let (v2, h2, _) = run(7);
        assert_eq!((&v1, &h1), (&v2, &h2));
        // Five steps used exactly 5·(⌈70/16⌉ + ⌈65/16⌉) = 50 calls of next16.
        let mut l = Lanes::seed(&mut Pcg64::seed_from_u64(7));
        for _ in 0..50 {
            l.next16();
        }
        assert_eq!(l1.next16(), l.next16());
    }

    #[test]
    fn from_model_rejects_entries_that_are_not_pm1() {
        let dims = Dims::new(2, 3, 2);
        let mut xi = [1.0f32, -1.0, 1.0, 1.0, -1.0, -1.0, 1.0, -1.0, -1.0, 1.0];
        let (mut pk, mut pl) = ([7u64; 4], [7i32; 10]);
        assert!(BinaryRa::from_model(
            &RaModel::new_unchecked(&xi[..], dims),
            &mut pk[..],
            &mut pl[..]
        )
        .is_ok());
        // Rows ξ¹ = (1, −1 | 1, 1, −1), ξ² = (−1, 1 | −1, −1, 1): Ξ_v rows, then Ξ_h rows.
        assert_eq!(pk, [0b01, 0b10, 0b011, 0b100]);
        assert_eq!(pl, [-1, 0, 0, -1, -1, -1, 0, 0, 0, -1]);
        for (bad, at) in [(0.5f32, 7usize), (0.0, 2), (-0.0, 9), (f32::NAN, 0), (1.0001, 4)] {
            let mut x = xi;
            x[at] = bad;
            let (mut pk, mut pl) = ([7u64; 4], [7i32; 10]);
            let err = BinaryRa::from_model(
                &RaModel::new_unchecked(&x[..], dims),
                &mut pk[..],
                &mut pl[..],
            )
            .unwrap_err();
            assert_eq!(err, BinaryError::NotPm1 { pattern: at / 5, entry: at % 5 });
            assert_eq!((pk, pl), ([7u64; 4], [7i32; 10]), "buffers untouched on error");
        }
        xi[7] = 0.5;
        let err =
            BinaryRa::from_model(&RaModel::new_unchecked(&xi[..], dims), &mut pk[..], &mut pl[..]);
        assert_eq!(
            std::format!("{}", err.unwrap_err()),
            "pattern 1 entry 2 is not exactly +1 or -1"
        );
        assert!(fits_i32(Dims::new(784, 3000, 200)));
        assert!(!fits_i32(Dims::new(10, 1 << 20, 1 << 10)));
        assert!(!fits_i32(Dims::new(usize::MAX / 2, 1, 4)));
    }
}
