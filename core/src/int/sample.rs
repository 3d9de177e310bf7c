//! Integer fields and block Gibbs draws of a ±1 RA model held as packed signs ([`Signs`]):
//! XOR + popcount overlaps, fields as sign-selected sums ("add or subtract by the bits"),
//! draws against the clamped threshold table. No floating point.
//!
//! ```text
//! m_k = V − 2·popcount(s_vᵏ ⊕ v)       (masked: n − 2·popcount(mask ∧ (s_vᵏ ⊕ v)), n = popcount(mask))
//! f_α = Σ_k sᵏ_α m_k = √K·φ_α
//! u_k = H − 2·popcount(s_hᵏ ⊕ h)
//! g_i = Σ_k sᵏ_i u_k = √K·ψ_i
//! h_α = +1 iff r < T(f_α) or T(f_α) = 2³² − 1;  v_i likewise with T(g_i)
//! ```
//!
//! Draw order: unit `j` of a half-step uses lane `j mod 16` of the `⌊j/16⌋`-th
//! [`Lanes::next16`] (unused lanes of a partial last call are dropped); a Gibbs step draws the
//! hidden units, then the visible ones.

use crate::kernels::bulk::{Lanes, LANES};
use crate::kernels::{masked_xor_popcount, signed_add_i32, xor_popcount};
use crate::ra::model::Dims;
use crate::spins::{words_for, WORD_BITS};

use super::table::Tables;

/// Length (`u64` words) of a packed-sign model: `K·(words_for(V) + words_for(H))`, the `K`
/// rows `s_vᵏ` then the `K` rows `s_hᵏ`.
pub const fn signs_len(dims: Dims) -> usize {
    dims.patterns * (words_for(dims.visible) + words_for(dims.hidden))
}

/// Scratch (`i32`) of the sampling functions: `K + max(V, H)`.
pub const fn sample_scratch_len(dims: Dims) -> usize {
    let n = if dims.visible > dims.hidden { dims.visible } else { dims.hidden };
    dims.patterns + n
}

/// The signs `s = sign(ξ)` of an RA model's patterns, bit-packed (bit 1 = `+1`).
#[derive(Clone, Copy, Debug)]
pub struct Signs<'a> {
    words: &'a [u64],
    dims: Dims,
}

impl<'a> Signs<'a> {
    /// Views `words` ([`signs_len`] words, padding bits 0).
    ///
    /// # Panics
    /// If `words.len() != signs_len(dims)`.
    pub fn new(words: &'a [u64], dims: Dims) -> Self {
        assert_eq!(words.len(), signs_len(dims), "signs need signs_len words");
        Signs { words, dims }
    }

    /// The sizes.
    #[inline]
    pub fn dims(&self) -> Dims {
        self.dims
    }

    /// `s_vᵏ`, [`words_for`]`(V)` words.
    #[inline]
    pub fn v_row(&self, k: usize) -> &'a [u64] {
        let w = words_for(self.dims.visible);
        &self.words[k * w..(k + 1) * w]
    }

    /// `s_hᵏ`, [`words_for`]`(H)` words.
    #[inline]
    pub fn h_row(&self, k: usize) -> &'a [u64] {
        let base = self.dims.patterns * words_for(self.dims.visible);
        let w = words_for(self.dims.hidden);
        &self.words[base + k * w..base + (k + 1) * w]
    }

    /// Overlaps `m_k = V − 2·popcount(s_vᵏ ⊕ v)` of a packed `v` (replaces `m`, `K` entries).
    ///
    /// # Panics
    /// If `v` is not `words_for(V)` words or `m.len() != K`.
    pub fn overlaps(&self, v: &[u64], m: &mut [i32]) {
        let d = self.dims;
        assert_eq!(m.len(), d.patterns, "m must have K entries");
        for (k, mk) in m.iter_mut().enumerate() {
            *mk = d.visible as i32 - 2 * xor_popcount(self.v_row(k), v) as i32;
        }
    }

    /// Overlaps of an input with neutral units (clear `mask` bits count as 0):
    /// `m_k = n − 2·popcount(mask ∧ (s_vᵏ ⊕ v))`, `n = popcount(mask)`.
    ///
    /// # Panics
    /// If `v` or `mask` is not `words_for(V)` words or `m.len() != K`.
    pub fn overlaps_masked(&self, v: &[u64], mask: &[u64], m: &mut [i32]) {
        let d = self.dims;
        assert_eq!(m.len(), d.patterns, "m must have K entries");
        assert_eq!(mask.len(), words_for(d.visible), "mask must have words_for(V) words");
        let n: u32 = mask.iter().map(|w| w.count_ones()).sum();
        for (k, mk) in m.iter_mut().enumerate() {
            *mk = n as i32 - 2 * masked_xor_popcount(self.v_row(k), v, mask) as i32;
        }
    }

    /// Hidden field `f_α = Σ_k sᵏ_α m_k` (replaces `f`, `H` entries).
    ///
    /// # Panics
    /// If `m.len() != K` or `f.len() != H`.
    pub fn hidden_field(&self, m: &[i32], f: &mut [i32]) {
        assert_eq!(m.len(), self.dims.patterns, "m must have K entries");
        assert_eq!(f.len(), self.dims.hidden, "f must have H entries");
        f.fill(0);
        for (k, &mk) in m.iter().enumerate() {
            signed_add_i32(self.h_row(k), mk, f);
        }
    }

    /// Projections `u_k = H − 2·popcount(s_hᵏ ⊕ h)` of a packed `h` (replaces `u`).
    ///
    /// # Panics
    /// If `h` is not `words_for(H)` words or `u.len() != K`.
    pub fn projections(&self, h: &[u64], u: &mut [i32]) {
        let d = self.dims;
        assert_eq!(u.len(), d.patterns, "u must have K entries");
        for (k, uk) in u.iter_mut().enumerate() {
            *uk = d.hidden as i32 - 2 * xor_popcount(self.h_row(k), h) as i32;
        }
    }

    /// Visible field `g_i = Σ_k sᵏ_i u_k` (replaces `g`, `V` entries).
    ///
    /// # Panics
    /// If `u.len() != K` or `g.len() != V`.
    pub fn visible_field(&self, u: &[i32], g: &mut [i32]) {
        assert_eq!(u.len(), self.dims.patterns, "u must have K entries");
        assert_eq!(g.len(), self.dims.visible, "g must have V entries");
        g.fill(0);
        for (k, &uk) in u.iter().enumerate() {
            signed_add_i32(self.v_row(k), uk, g);
        }
    }

    /// Draws `h ~ P(h | v)` into `h` (`words_for(H)` words) for a packed `v`, or for an input
    /// with neutral units when `mask` is given. `scratch`: [`sample_scratch_len`] entries.
    ///
    /// # Panics
    /// On a length mismatch.
    pub fn sample_hidden(
        &self,
        v: &[u64],
        mask: Option<&[u64]>,
        tables: &Tables<'_>,
        h: &mut [u64],
        scratch: &mut [i32],
        lanes: &mut Lanes,
    ) {
        let d = self.dims;
        let (m, rest) = scratch.split_at_mut(d.patterns);
        let f = &mut rest[..d.hidden];
        match mask {
            Some(mask) => self.overlaps_masked(v, mask, m),
            None => self.overlaps(v, m),
        }
        self.hidden_field(m, f);
        draw_spins(tables, f, h, lanes);
    }

    /// Draws `v ~ P(v | h)` into `v` (`words_for(V)` words). `scratch`:
    /// [`sample_scratch_len`] entries.
    ///
    /// # Panics
    /// On a length mismatch.
    pub fn sample_visible(
        &self,
        h: &[u64],
        tables: &Tables<'_>,
        v: &mut [u64],
        scratch: &mut [i32],
        lanes: &mut Lanes,
    ) {
        let d = self.dims;
        let (u, rest) = scratch.split_at_mut(d.patterns);
        let g = &mut rest[..d.visible];
        self.projections(h, u);
        self.visible_field(u, g);
        draw_spins(tables, g, v, lanes);
    }

    /// One block Gibbs step `v → h → v` in place (`v`: `words_for(V)` words, `h`:
    /// `words_for(H)` words, holding the hidden draw after).
    ///
    /// # Panics
    /// On a length mismatch.
    pub fn gibbs_step(
        &self,
        v: &mut [u64],
        h: &mut [u64],
        tables: &Tables<'_>,
        scratch: &mut [i32],
        lanes: &mut Lanes,
    ) {
        self.sample_hidden(v, None, tables, h, scratch, lanes);
        self.sample_visible(h, tables, v, scratch, lanes);
    }
}

/// Packs ±1 patterns `xi` (`K·(V+H)`, the `f32` layout) into `out` ([`signs_len`] words) and
/// returns `true`, or returns `false` (and leaves `out` alone) when an entry is not exactly
/// `+1.0` or `−1.0`: only ±1 models have an integer form.
///
/// # Panics
/// If `xi.len() != K·(V+H)` or `out.len() != signs_len(dims)`.
pub fn pack_pm1(xi: &[f32], dims: Dims, out: &mut [u64]) -> bool {
    assert_eq!(xi.len(), dims.xi_len(), "patterns need K·(V+H) entries");
    assert_eq!(out.len(), signs_len(dims), "signs need signs_len words");
    if !xi.iter().all(|&x| x == 1.0 || x == -1.0) {
        return false;
    }
    let (v, h, k) = (dims.visible, dims.hidden, dims.patterns);
    let (wv, wh) = (words_for(v), words_for(h));
    let (sv, sh) = out.split_at_mut(k * wv);
    for (kk, row) in xi.chunks_exact(v + h).enumerate() {
        pack_row(&row[..v], &mut sv[kk * wv..(kk + 1) * wv]);
        pack_row(&row[v..], &mut sh[kk * wh..(kk + 1) * wh]);
    }
    true
}

/// Bit `j` set iff `x_j > 0`, padding bits 0.
fn pack_row(x: &[f32], out: &mut [u64]) {
    for (w, chunk) in out.iter_mut().zip(x.chunks(WORD_BITS)) {
        *w = chunk.iter().enumerate().fold(0, |w, (j, &x)| w | (u64::from(x > 0.0) << j));
    }
}

/// Draws one spin per threshold into `out` by the rule of [`draw_spins`] (for thresholds
/// looked up once and drawn from many times).
///
/// # Panics
/// If `out` has the wrong length.
pub fn draw_from_thresholds(thresholds: &[u32], out: &mut [u64], lanes: &mut Lanes) {
    assert_eq!(out.len(), words_for(thresholds.len()), "out must hold words_for(n) words");
    for (w, chunk) in out.iter_mut().zip(thresholds.chunks(WORD_BITS)) {
        let mut bits = 0u64;
        for (g, group) in chunk.chunks(LANES).enumerate() {
            let r = lanes.next16();
            let mut b = 0u64;
            for (l, &t) in group.iter().enumerate() {
                b |= u64::from((r[l] < t) | (t == u32::MAX)) << l;
            }
            bits |= b << (g * LANES);
        }
        *w = bits;
    }
}

/// One spin per field value into `out` (`words_for(field.len())` words, padding bits 0): unit
/// `j` is `+1` iff `r_j < T(f_j)` or `T(f_j) = 2³² − 1`, `r_j` from lane `j mod 16` of the
/// `⌊j/16⌋`-th [`Lanes::next16`].
///
/// # Panics
/// If `out` has the wrong length.
pub fn draw_spins(tables: &Tables<'_>, field: &[i32], out: &mut [u64], lanes: &mut Lanes) {
    assert_eq!(out.len(), words_for(field.len()), "out must hold words_for(n) words");
    for (w, chunk) in out.iter_mut().zip(field.chunks(WORD_BITS)) {
        let mut bits = 0u64;
        for (g, group) in chunk.chunks(LANES).enumerate() {
            let r = lanes.next16();
            let mut b = 0u64;
            for (l, &f) in group.iter().enumerate() {
                let t = tables.threshold(f);
                b |= u64::from((r[l] < t) | (t == u32::MAX)) << l;
            }
            bits |= b << (g * LANES);
        }
        *w = bits;
    }
}
