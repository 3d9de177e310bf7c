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

/// Scratch (`i32`) of the sampling functions: `K + 64` (the overlaps or projections, then the
/// field of one block of 64 units: the draws run block by block, so the scratch does not grow
/// with `V` or `H`).
pub const fn sample_scratch_len(dims: Dims) -> usize {
    dims.patterns + WORD_BITS
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
    /// with neutral units when `mask` is given, one block of 64 units at a time (the same
    /// draws as [`draw_spins`] on the whole field). `scratch`: [`sample_scratch_len`] entries.
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
        assert_eq!(h.len(), words_for(d.hidden), "h must hold words_for(H) words");
        let (m, rest) = scratch.split_at_mut(d.patterns);
        match mask {
            Some(mask) => self.overlaps_masked(v, mask, m),
            None => self.overlaps(v, m),
        }
        for (b, hw) in h.iter_mut().enumerate() {
            let f = &mut rest[..WORD_BITS.min(d.hidden - b * WORD_BITS)];
            f.fill(0);
            for (k, &mk) in m.iter().enumerate() {
                signed_add_i32(core::slice::from_ref(&self.h_row(k)[b]), mk, f);
            }
            *hw = draw_word(tables, f, lanes);
        }
    }

    /// Draws `v ~ P(v | h)` into `v` (`words_for(V)` words), one block of 64 units at a time.
    /// `scratch`: [`sample_scratch_len`] entries.
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
        assert_eq!(v.len(), words_for(d.visible), "v must hold words_for(V) words");
        let (u, rest) = scratch.split_at_mut(d.patterns);
        self.projections(h, u);
        for (b, vw) in v.iter_mut().enumerate() {
            let g = &mut rest[..WORD_BITS.min(d.visible - b * WORD_BITS)];
            g.fill(0);
            for (k, &uk) in u.iter().enumerate() {
                signed_add_i32(core::slice::from_ref(&self.v_row(k)[b]), uk, g);
            }
            *vw = draw_word(tables, g, lanes);
        }
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
        *w = draw_word(tables, chunk, lanes);
    }
}

/// The spins of up to 64 units (bit `j` for `field[j]`) by the rule of [`draw_spins`].
#[inline]
fn draw_word(tables: &Tables<'_>, field: &[i32], lanes: &mut Lanes) -> u64 {
    let mut bits = 0u64;
    for (g, group) in field.chunks(LANES).enumerate() {
        let r = lanes.next16();
        let mut b = 0u64;
        for (l, &f) in group.iter().enumerate() {
            let t = tables.threshold(f);
            b |= u64::from((r[l] < t) | (t == u32::MAX)) << l;
        }
        bits |= b << (g * LANES);
    }
    bits
}

#[cfg(test)]
mod tests {
    #![allow(clippy::float_arithmetic)] // the f32 model and exact f64 kernels are the reference
    use super::*;
    use crate::int::table::{tanh_table_len, threshold_table_len, Tables};
    use crate::ra::model::RaModel;
    use crate::spins::PackedSpins;
    use crate::test_util::pm1;
    use rand_core::{RngCore, SeedableRng};
    use rand_pcg::Pcg64;

    extern crate std;
    use std::vec;
    use std::vec::Vec;

    /// Owned `tanh` and threshold tables of one `K`.
    struct OwnedTables {
        tanh: Vec<i16>,
        thr: Vec<u32>,
        k: usize,
    }

    impl OwnedTables {
        fn new(k: usize) -> Self {
            OwnedTables {
                tanh: vec![0; tanh_table_len(k)],
                thr: vec![0; threshold_table_len(k)],
                k,
            }
        }

        fn tables(&mut self) -> Tables<'_> {
            Tables::build(self.k, &mut self.tanh, &mut self.thr)
        }
    }

    /// The packed signs of ±1 patterns `xi`.
    fn signs_of(xi: &[f32], dims: Dims) -> Vec<u64> {
        let mut w = vec![0u64; signs_len(dims)];
        assert!(pack_pm1(xi, dims, &mut w), "±1 patterns pack");
        w
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

    const SIZES: [usize; 6] = [1, 15, 63, 64, 65, 130];

    #[test]
    #[cfg_attr(miri, ignore = "36 size pairs × 4 K with float references: slow under Miri")]
    fn integer_fields_equal_float_fields_times_sqrt_k() {
        let mut rng = Pcg64::seed_from_u64(101);
        for &v_len in &SIZES {
            for &h_len in &SIZES {
                for &k in &[1usize, 3, 8, 33] {
                    let dims = Dims::new(v_len, h_len, k);
                    let xi = pm1(&mut rng, dims.xi_len());
                    let model = RaModel::new_unchecked(&xi[..], dims);
                    let words = signs_of(&xi, dims);
                    let signs = Signs::new(&words, dims);
                    assert_eq!(signs.dims(), dims);
                    for k2 in 0..k {
                        assert_eq!(signs.v_row(k2), &packed(model.xi_v(k2))[..]);
                        assert_eq!(signs.h_row(k2), &packed(model.xi_h(k2))[..]);
                    }
                    for _ in 0..3 {
                        let v = pm1(&mut rng, v_len);
                        let h = pm1(&mut rng, h_len);
                        let (vw, hw) = (packed(&v), packed(&h));
                        // Stale outputs: the functions replace, not accumulate.
                        let (mut m, mut f) = (vec![7i32; k], vec![7i32; h_len]);
                        let (mut u, mut g) = (vec![7i32; k], vec![7i32; v_len]);
                        signs.overlaps(&vw, &mut m);
                        signs.hidden_field(&m, &mut f);
                        signs.projections(&hw, &mut u);
                        signs.visible_field(&u, &mut g);
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
        let mut owned = OwnedTables::new(5);
        let tables = owned.tables();
        for &v_len in &SIZES {
            let dims = Dims::new(v_len, 65, 5);
            let xi = pm1(&mut rng, dims.xi_len());
            let model = RaModel::new_unchecked(&xi[..], dims);
            let words = signs_of(&xi, dims);
            let signs = Signs::new(&words, dims);
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
                // `v` holds the sign of each counted unit and a random bit under each neutral
                // one (the mask must hide it); `mask` marks the counted units, padding 0.
                let w = words_for(v_len);
                let (mut vw, mut mw) = (vec![0u64; w], vec![0u64; w]);
                for (i, &xi_) in x.iter().enumerate() {
                    let bit = if xi_ == 0.0 { rng.next_u32() & 1 == 1 } else { xi_ > 0.0 };
                    vw[i / 64] |= u64::from(bit) << (i % 64);
                    mw[i / 64] |= u64::from(xi_ != 0.0) << (i % 64);
                }
                let (mut m, mut f) = (vec![7i32; 5], vec![7i32; 65]);
                signs.overlaps_masked(&vw, &mw, &mut m);
                signs.hidden_field(&m, &mut f);
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
                    signs.overlaps(&vw, &mut m2);
                    assert_eq!(m, m2);
                }
                // The masked hidden draw is the table draw of this field, from the same lanes.
                let seed = 1000 + trial as u64;
                let (mut h, mut h2) = (vec![0u64; words_for(65)], vec![0u64; words_for(65)]);
                let mut scratch = vec![0i32; sample_scratch_len(dims)];
                let mut lanes = Lanes::seed(&mut Pcg64::seed_from_u64(seed));
                signs.sample_hidden(&vw, Some(&mw), &tables, &mut h, &mut scratch, &mut lanes);
                draw_spins(&tables, &f, &mut h2, &mut Lanes::seed(&mut Pcg64::seed_from_u64(seed)));
                assert_eq!(h, h2, "V={v_len} trial {trial}");
                PackedSpins::new_checked(&h[..], 65).expect("padding written 0");
            }
        }
    }

    #[test]
    fn draw_rule_edges() {
        // Thresholds built from the lanes' own outputs: `T = r` gives −1 (the rule is `r < T`),
        // `T = r + 1` gives +1, `T = 0` always −1, `T = 2³² − 1` always +1 (probability 1).
        let seed = 106;
        let mut peek = Lanes::seed(&mut Pcg64::seed_from_u64(seed));
        let r: Vec<u32> = (0..2).flat_map(|_| peek.next16()).collect();
        assert!(r.iter().all(|&x| x < u32::MAX - 1), "this seed avoids the top values");
        /// A name, the threshold as a function of the lane's output, and the expected spin.
        type Case = (&'static str, fn(u32) -> u32, bool);
        let cases: [Case; 6] = [
            ("T = r", |r| r, false),
            ("T = r + 1", |r| r + 1, true),
            ("T = r + 2", |r| r + 2, true),
            ("T = r − 1", |r| r.saturating_sub(1), false),
            ("T = 0", |_| 0, false),
            ("T = 2³² − 1", |_| u32::MAX, true),
        ];
        // 20 units: a full lane call, then a partial one whose unused lanes are dropped.
        for (what, t_of, up) in cases {
            let t: Vec<u32> = r[..20].iter().map(|&x| t_of(x)).collect();
            let mut out = [u64::MAX];
            draw_from_thresholds(&t, &mut out, &mut Lanes::seed(&mut Pcg64::seed_from_u64(seed)));
            let want = if up { (1u64 << 20) - 1 } else { 0 };
            assert_eq!(out[0], want, "{what}");
        }
        // Through the table: fields past either end draw T = 0 (never +1) or T = 2³² − 1
        // (always +1), and the table lookup clamps any i32.
        let mut owned = OwnedTables::new(1);
        let tables = owned.tables();
        let field = [i32::MIN, -13, -12, 12, 13, i32::MAX, -12, 12, -1000, 1000];
        let mut out = [u64::MAX];
        draw_spins(&tables, &field, &mut out, &mut Lanes::seed(&mut Pcg64::seed_from_u64(seed)));
        assert_eq!(out[0], 0b10_1011_1000);
        // Unit 16 uses lane 0 of the second call, not lane 16 of the first.
        let mut t = [0u32; 17];
        t[16] = r[16] + 1;
        let mut out = [0u64];
        draw_from_thresholds(&t, &mut out, &mut Lanes::seed(&mut Pcg64::seed_from_u64(seed)));
        assert_eq!(out[0], 1 << 16);
        t[16] = r[16];
        draw_from_thresholds(&t, &mut out, &mut Lanes::seed(&mut Pcg64::seed_from_u64(seed)));
        assert_eq!(out[0], 0);
    }

    #[test]
    #[cfg_attr(miri, ignore = "a million draws: too slow under Miri")]
    fn table_draw_frequencies_match_sigmoid() {
        let k = 9usize;
        let mut owned = OwnedTables::new(k);
        let tables = owned.tables();
        // f/√K = φ: fields −13.3 (past the table's end, clamped), −2, −0.33, 0, 0.33, 1, 2.33,
        // and a saturated 21 (clamped).
        let fields = [-40i32, -6, -1, 0, 1, 3, 7, 63];
        let per = 150_000usize;
        let field: Vec<i32> = (0..fields.len() * per).map(|j| fields[j % fields.len()]).collect();
        let mut out = vec![0u64; words_for(field.len())];
        let mut lanes = Lanes::seed(&mut Pcg64::seed_from_u64(103));
        draw_spins(&tables, &field, &mut out, &mut lanes);
        let s = PackedSpins::new_checked(&out[..], field.len()).expect("padding written 0");
        for (c, &f) in fields.iter().enumerate() {
            let ups = (c..field.len()).step_by(fields.len()).filter(|&j| s.get(j) == 1).count();
            let p = crate::num::sigmoid(2.0 * f as f32 / 3.0) as f64;
            let got = ups as f64 / per as f64;
            let sd = (p * (1.0 - p) / per as f64).sqrt();
            assert!((got - p).abs() <= 5.0 * sd + 1e-6, "f = {f}: {got} vs {p}");
        }
        // The same spins from thresholds looked up beforehand.
        let th: Vec<u32> = field.iter().map(|&f| tables.threshold(f)).collect();
        let mut out2 = vec![0u64; out.len()];
        draw_from_thresholds(&th, &mut out2, &mut Lanes::seed(&mut Pcg64::seed_from_u64(103)));
        assert_eq!(out, out2);
        // Both consumed ⌈n/16⌉ lane calls.
        let mut l = Lanes::seed(&mut Pcg64::seed_from_u64(103));
        for _ in 0..field.len().div_ceil(LANES) {
            l.next16();
        }
        assert_eq!(lanes.next16(), l.next16());
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
    fn integer_gibbs_step_has_the_float_step_distribution() {
        let dims = Dims::new(3, 2, 3);
        #[rustfmt::skip]
        let xi = [
            1.0, -1.0, 1.0, 1.0, 1.0,
            1.0, 1.0, -1.0, -1.0, 1.0,
            -1.0, 1.0, 1.0, 1.0, -1.0,
        ];
        let model = RaModel::new_unchecked(&xi[..], dims);
        let words = signs_of(&xi, dims);
        let signs = Signs::new(&words, dims);
        let mut owned = OwnedTables::new(3);
        let tables = owned.tables();
        let mut scratch = vec![0i32; sample_scratch_len(dims)];
        let mut rng = Pcg64::seed_from_u64(104);
        let mut lanes = Lanes::seed(&mut rng);
        let n = 20_000usize;
        for vb in 0..8usize {
            let v0: Vec<f32> = (0..3).map(|i| if vb >> i & 1 == 1 { 1.0 } else { -1.0 }).collect();
            let want = exact_kernel(&model, &v0);
            assert!((want.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let (mut int_counts, mut float_counts) = ([0usize; 8], [0usize; 8]);
            for _ in 0..n {
                let (mut v, mut h) = ([vb as u64], [0u64]);
                signs.gibbs_step(&mut v, &mut h, &tables, &mut scratch, &mut lanes);
                assert!(v[0] < 8 && h[0] < 4, "padding bits stay 0");
                int_counts[v[0] as usize] += 1;
                let (mut vf, mut hf, mut s) = (v0.clone(), [0.0f32; 2], [0.0f32; 3]);
                crate::ra::gibbs::gibbs_step(&model, &mut vf, &mut hf, &mut s, &mut rng);
                float_counts[packed(&vf)[0] as usize] += 1;
            }
            for (c, &p) in want.iter().enumerate() {
                let sd = (p * (1.0 - p) / n as f64).sqrt();
                for (what, counts) in [("integer", &int_counts), ("float", &float_counts)] {
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
        let xi = pm1(&mut rng, dims.xi_len());
        let words = signs_of(&xi, dims);
        let signs = Signs::new(&words, dims);
        let mut owned = OwnedTables::new(4);
        let tables = owned.tables();
        let start = packed(&pm1(&mut rng, 65));
        let run = |seed: u64| {
            let mut lanes = Lanes::seed(&mut Pcg64::seed_from_u64(seed));
            let (mut v, mut h) = (start.clone(), vec![0u64; words_for(70)]);
            let mut s = vec![0i32; sample_scratch_len(dims)];
            for _ in 0..5 {
                signs.gibbs_step(&mut v, &mut h, &tables, &mut s, &mut lanes);
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
        // A step is the hidden half-step, then the visible one, from the same lanes.
        let mut lanes = Lanes::seed(&mut Pcg64::seed_from_u64(8));
        let (mut v, mut h) = (start.clone(), vec![0u64; words_for(70)]);
        let mut s = vec![0i32; sample_scratch_len(dims)];
        signs.gibbs_step(&mut v, &mut h, &tables, &mut s, &mut lanes);
        let mut lanes = Lanes::seed(&mut Pcg64::seed_from_u64(8));
        let (mut v3, mut h3) = (vec![0u64; words_for(65)], vec![0u64; words_for(70)]);
        signs.sample_hidden(&start, None, &tables, &mut h3, &mut s, &mut lanes);
        signs.sample_visible(&h3, &tables, &mut v3, &mut s, &mut lanes);
        assert_eq!((v, h), (v3, h3));
    }

    #[test]
    fn pack_pm1_rejects_entries_that_are_not_pm1() {
        let dims = Dims::new(2, 3, 2);
        let xi = [1.0f32, -1.0, 1.0, 1.0, -1.0, -1.0, 1.0, -1.0, -1.0, 1.0];
        // Stale bits everywhere, padding included: packing writes whole words.
        let mut pk = [7u64; 4];
        assert_eq!(signs_len(dims), 4);
        assert!(pack_pm1(&xi, dims, &mut pk));
        // Rows ξ¹ = (1, −1 | 1, 1, −1), ξ² = (−1, 1 | −1, −1, 1): the s_v rows, then the s_h rows.
        assert_eq!(pk, [0b01, 0b10, 0b011, 0b100]);
        for (bad, at) in [(0.5f32, 7usize), (0.0, 2), (-0.0, 9), (f32::NAN, 0), (1.0001, 4)] {
            let mut x = xi;
            x[at] = bad;
            let mut pk = [7u64; 4];
            assert!(!pack_pm1(&x, dims, &mut pk), "{bad} at {at}");
            assert_eq!(pk, [7u64; 4], "buffer untouched on refusal");
        }
        // A bad entry past the first packed words is still found before anything is written.
        let dims = Dims::new(70, 3, 2);
        let mut x = pm1(&mut Pcg64::seed_from_u64(107), dims.xi_len());
        x[dims.xi_len() - 1] = f32::INFINITY;
        let mut pk = vec![7u64; signs_len(dims)];
        assert!(!pack_pm1(&x, dims, &mut pk));
        assert!(pk.iter().all(|&w| w == 7));
    }
}
