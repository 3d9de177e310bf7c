//! Reconstruction Hamming distance.
//!
//! Reference protocol (the authors' code): keep some pixels of the image (the dataset's
//! `kept` mask: the top row for Bars), set the others to 0 (a neutral spin), make one step
//! `v → h → v`, and score `HD = mean_i |v_i − target_i| / 2` over all `V` pixels; average over
//! `repeats` draws per image and over the images. Random guessing scores 0.5.
//!
//! Variant (the paper's text): the kept pixels are clamped to their values and `steps` full
//! Gibbs steps are made.
//!
//! Image `i` draws from its own stream `(seed, Eval, tag, i)`, and the per-image scores are
//! summed in image order, so the result does not depend on the thread count.
//!
//! RA models whose patterns are all ±1 (what the `sign` projection leaves), evaluated on ±1
//! images, take the integer path of [`rapid_core::int::sample`]: packed spins, XOR + popcount
//! overlaps (the unkept pixels masked out as neutral), integer fields and threshold-table
//! draws from sixteen xoshiro128++ lanes seeded from the image's stream. It draws from the
//! exact conditionals to within `2⁻³²` (the float path: `2⁻²⁴`) but reads other random
//! numbers, so its HD agrees with the float path's in distribution, not draw for draw; it is
//! as reproducible and as independent of the thread count. Continuous patterns and dense
//! models take the float path.
//!
//! Accessibilities (the paper's Fig. 1) compare an energy with the exact
//! ground-state energy `E_GS < 0`; a ratio of 1 means the ground state was reached. Energies
//! are computed in `f64` from the same `f32` weights as `E_GS` ([`energy_f64`]), so a ratio
//! never exceeds 1 by rounding:
//! * [`gibbs_gs_accessibility`]: 10 chains from random `v`, 10 Gibbs steps each; the lowest
//!   `E(v, h)` (with `h` from the last hidden half-step) over `E_GS`.
//! * method accessibility: the lowest energy among the configurations a method uses for its
//!   negative phase, over `E_GS` — [`pattern_min_energy`] for RA (the patterns `(ξᵏ_v, ξᵏ_h)`),
//!   [`chains_min_energy`] for PCD (its chains, `h` drawn from `P(h|v)`), and
//!   [`cd_min_energy`] for CD (the training set after `k` Gibbs steps, best of 10 repeats).

use rand_core::RngCore;
use rapid_core::int::sample::{
    draw_from_thresholds, pack_pm1, sample_scratch_len, signs_len, Signs,
};
use rapid_core::int::table::{tanh_table_len, threshold_table_len, Tables};
use rapid_core::kernels::at_level;
use rapid_core::kernels::bulk::Lanes;
use rapid_core::num::{sigmoid, uniform01};
use rapid_core::ra::gibbs::sample_spins_in_place;
use rapid_core::ra::model::Dims;
use rapid_core::spins::{words_for, PackedSpins};
use rapid_core::RaModel;
use rayon::prelude::*;

use crate::exact::Bipartite;
use crate::model::ModelRef;
use crate::seed::{stream, Rng, Stream};

/// How reconstructions are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HdProtocol {
    /// Draws per image (reference: 100).
    pub repeats: usize,
    /// Gibbs steps `v → h → v` per draw (reference: 1).
    pub steps: usize,
    /// Clamp the kept pixels during the steps (reference: no).
    pub clamp: bool,
}

impl Default for HdProtocol {
    fn default() -> Self {
        HdProtocol { repeats: 100, steps: 1, clamp: false }
    }
}

/// Mean reconstruction Hamming distance of `images` (rows of `V` ±1 values) under `protocol`.
/// `tag` separates the random streams of different evaluations (e.g. the epoch).
///
/// # Panics
/// If `images.len()` is not a multiple of `V` or `kept.len() != V`.
pub fn reconstruction_hd(
    model: &ModelRef<'_>,
    images: &[f32],
    kept: &[bool],
    protocol: HdProtocol,
    seed: u64,
    tag: u64,
) -> f64 {
    let v_len = model.visible();
    assert_eq!(kept.len(), v_len, "mask must have V entries");
    assert_eq!(images.len() % v_len, 0, "images must have V entries each");
    let n = images.len() / v_len;
    if n == 0 || protocol.repeats == 0 {
        return f64::NAN;
    }
    match binary_form(model, images) {
        Some((signs, dims)) if protocol.steps > 0 => {
            reconstruction_hd_binary(&Signs::new(&signs, dims), images, kept, protocol, seed, tag)
        }
        _ => reconstruction_hd_float(model, images, kept, protocol, seed, tag),
    }
}

/// The packed signs of `model` when the integer path applies: an RA model whose patterns are
/// all ±1, and ±1 `images`.
fn binary_form(model: &ModelRef<'_>, images: &[f32]) -> Option<(Vec<u64>, Dims)> {
    let ModelRef::Ra(ra) = model else { return None };
    if !images.iter().all(|&x| x == 1.0 || x == -1.0) {
        return None;
    }
    let d = ra.dims();
    let mut signs = vec![0u64; signs_len(d)];
    pack_pm1(ra.xi(), d, &mut signs).then_some((signs, d))
}

/// [`reconstruction_hd`] in `f32` for any model (the path for continuous patterns and dense
/// models). The caller has checked the lengths and that there is at least one image and repeat.
fn reconstruction_hd_float(
    model: &ModelRef<'_>,
    images: &[f32],
    kept: &[bool],
    protocol: HdProtocol,
    seed: u64,
    tag: u64,
) -> f64 {
    let (v_len, h_len) = (model.visible(), model.hidden());
    let n = images.len() / v_len;
    let dense = DenseFields::new(model);
    let per_image: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut acc = Vec::new();
            let target = &images[i * v_len..(i + 1) * v_len];
            let mut rng = stream(seed, Stream::Eval, tag, i as u64);
            let start: Vec<f32> =
                target.iter().zip(kept).map(|(&t, &k)| if k { t } else { 0.0 }).collect();
            let mut k_buf = vec![0.0f32; model.scratch_len()];
            // The first hidden field depends only on the start: compute σ(2φ) once per image.
            let mut p0 = vec![0.0f32; h_len];
            match &dense {
                Some(d) => d.hidden(&start, &mut p0),
                None => model.hidden_field(&start, &mut p0, &mut k_buf),
            }
            for p in p0.iter_mut() {
                *p = sigmoid(2.0 * *p);
            }
            let (mut h, mut v) = (vec![0.0f32; h_len], vec![0.0f32; v_len]);
            let mut wrong = 0u64;
            for _ in 0..protocol.repeats {
                for step in 0..protocol.steps {
                    if step == 0 {
                        // The same draw as `sample_spin`, with the probability precomputed.
                        for (hj, &p) in h.iter_mut().zip(&p0) {
                            *hj = if uniform01(&mut rng) < p { 1.0 } else { -1.0 };
                        }
                    } else {
                        match &dense {
                            Some(d) => d.hidden(&v, &mut h),
                            None => model.hidden_field(&v, &mut h, &mut k_buf),
                        }
                        sample_spins_in_place(&mut h, &mut rng);
                    }
                    match &dense {
                        Some(d) => d.field(&h, &mut v, &mut acc),
                        None => model.visible_field(&h, &mut v, &mut k_buf),
                    }
                    sample_spins_in_place(&mut v, &mut rng);
                    if protocol.clamp {
                        for ((vi, &t), &k) in v.iter_mut().zip(target).zip(kept) {
                            if k {
                                *vi = t;
                            }
                        }
                    }
                }
                wrong += v.iter().zip(target).filter(|(a, b)| a != b).count() as u64;
            }
            wrong as f64 / (protocol.repeats * v_len) as f64
        })
        .collect();
    per_image.iter().sum::<f64>() / n as f64
}

/// [`reconstruction_hd`] for a ±1 RA model and ±1 images, on packed spins with integer fields
/// (same protocol; image `i` seeds its [`Lanes`] from its stream `(seed, Eval, tag, i)`).
/// Needs `protocol.steps ≥ 1`.
fn reconstruction_hd_binary(
    signs: &Signs<'_>,
    images: &[f32],
    kept: &[bool],
    protocol: HdProtocol,
    seed: u64,
    tag: u64,
) -> f64 {
    let d = signs.dims();
    let (v_len, h_len, k_len) = (d.visible, d.hidden, d.patterns);
    let n = images.len() / v_len;
    let (mut tanh, mut thr) =
        (vec![0i16; tanh_table_len(k_len)], vec![0u32; threshold_table_len(k_len)]);
    let tables = Tables::build(k_len, &mut tanh, &mut thr);
    let mut kept_bits = vec![0u64; words_for(v_len)];
    PackedSpins::new_unchecked(&mut kept_bits[..], v_len)
        .copy_from_i8(&kept.iter().map(|&k| if k { 1 } else { -1 }).collect::<Vec<i8>>());
    let per_image: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut lanes = Lanes::seed(&mut stream(seed, Stream::Eval, tag, i as u64));
            let mut target = vec![0u64; words_for(v_len)];
            PackedSpins::new_unchecked(&mut target[..], v_len)
                .copy_from_f32(&images[i * v_len..(i + 1) * v_len]);
            let mut scratch = vec![0i32; sample_scratch_len(d)];
            // The first hidden field depends only on the start (the target on the kept pixels,
            // neutral elsewhere): look its thresholds up once per image.
            let (mut m, mut f) = (vec![0i32; k_len], vec![0i32; h_len]);
            signs.overlaps_masked(&target, &kept_bits, &mut m);
            signs.hidden_field(&m, &mut f);
            let t0: Vec<u32> = f.iter().map(|&x| tables.threshold(x)).collect();
            let (mut h, mut v) = (vec![0u64; words_for(h_len)], vec![0u64; words_for(v_len)]);
            let mut wrong = 0u64;
            for _ in 0..protocol.repeats {
                for step in 0..protocol.steps {
                    if step == 0 {
                        draw_from_thresholds(&t0, &mut h, &mut lanes);
                    } else {
                        signs.sample_hidden(&v, None, &tables, &mut h, &mut scratch, &mut lanes);
                    }
                    signs.sample_visible(&h, &tables, &mut v, &mut scratch, &mut lanes);
                    if protocol.clamp {
                        for ((x, &t), &k) in v.iter_mut().zip(&target).zip(&kept_bits) {
                            *x = (*x & !k) | (t & k);
                        }
                    }
                }
                wrong += v
                    .iter()
                    .zip(&target)
                    .map(|(a, b)| u64::from((a ^ b).count_ones()))
                    .sum::<u64>();
            }
            wrong as f64 / (protocol.repeats * v_len) as f64
        })
        .collect();
    per_image.iter().sum::<f64>() / n as f64
}

/// The visible fields `ψ = W h + a` of a dense model (and its hidden fields,
/// [`DenseFields::hidden`]) with the bits of
/// `DenseRbm::visible_field` (tested), which takes each `ψ_i` as `rapid_core::num::dot` of
/// row `i` and `h` (four lane sums over `j mod 4` in order, folded as `(s₀ + s₁) + (s₂ + s₃)`,
/// then the last `H mod 4` terms in order) plus `a_i`. Here the weights are regrouped by
/// four columns (`w4[c][i][l] = W_{i,4c+l}`), so that the lane sums of four rows at a time
/// fill one 16-lane vector (sixteen rows in four vectors kept in registers): the same
/// operations per lane in the same order, at the active SIMD level ([`at_level`]).
struct DenseFields {
    visible: usize,
    hidden: usize,
    /// `W` for the columns `j < 4⌊H/4⌋`, regrouped; rows padded to a multiple of 16 with zeros.
    w4: Vec<f32>,
    /// `V` rounded up to a multiple of 16.
    vp: usize,
    /// The last `H mod 4` columns of `W` (`V` rows).
    tail: Vec<f32>,
    a: Option<Vec<f32>>,
    /// `W` as it is (V×H), and `b`, for [`DenseFields::hidden`].
    w: Vec<f32>,
    b: Option<Vec<f32>>,
}

impl DenseFields {
    /// For dense models; `None` for RA ones.
    fn new(model: &ModelRef<'_>) -> Option<Self> {
        let ModelRef::Dense(m) = model else { return None };
        let (nv, nh) = (m.dims().visible, m.dims().hidden);
        if nv == 0 {
            return None;
        }
        let w = &m.params()[..nv * nh];
        let vp = nv.div_ceil(16) * 16;
        let quads = nh / 4;
        let mut w4 = vec![0.0f32; quads * vp * 4];
        for c in 0..quads {
            for i in 0..nv {
                for l in 0..4 {
                    w4[(c * vp + i) * 4 + l] = w[i * nh + 4 * c + l];
                }
            }
        }
        let tail = (0..nv).flat_map(|i| &w[i * nh + 4 * quads..(i + 1) * nh]).copied().collect();
        Some(DenseFields {
            visible: nv,
            hidden: nh,
            w4,
            vp,
            tail,
            a: m.a().map(<[f32]>::to_vec),
            w: w.to_vec(),
            b: m.b().map(<[f32]>::to_vec),
        })
    }

    /// `phi = Wᵀv + b` with the bits of `DenseRbm::hidden_field` (`phi = b`, then
    /// `phi += v_i·W_i` row by row: the same operations per entry), at the active SIMD level.
    fn hidden(&self, v: &[f32], phi: &mut [f32]) {
        assert!(v.len() == self.visible && phi.len() == self.hidden, "state lengths");
        at_level(
            #[inline(always)]
            || {
                match &self.b {
                    Some(b) => phi.copy_from_slice(b),
                    None => phi.fill(0.0),
                }
                for (row, &vi) in self.w.chunks_exact(self.hidden).zip(v) {
                    for (p, &x) in phi.iter_mut().zip(row) {
                        *p += vi * x;
                    }
                }
            },
        );
    }

    /// `psi = W h + a`; `acc` is scratch of `4·vp` values.
    fn field(&self, h: &[f32], psi: &mut [f32], acc: &mut Vec<f32>) {
        assert!(h.len() == self.hidden && psi.len() == self.visible, "state lengths");
        acc.clear();
        acc.resize(4 * self.vp, 0.0);
        at_level(
            #[inline(always)]
            || self.field_lanes(h, psi, acc),
        );
    }

    #[inline(always)]
    fn field_lanes(&self, h: &[f32], psi: &mut [f32], acc: &mut [f32]) {
        let (nh, vp) = (self.hidden, self.vp);
        let quads = nh / 4;
        // Sixteen rows at a time, their 64 lane sums in four 16-lane locals (registers).
        for (b, out) in acc.chunks_exact_mut(64).enumerate() {
            // Four named locals (in an array of arrays LLVM adds one lane at a time).
            let (mut x0, mut x1, mut x2, mut x3) = ([0.0f32; 16], [0.0; 16], [0.0; 16], [0.0; 16]);
            for c in 0..quads {
                let hc: [f32; 4] = h[4 * c..4 * c + 4].try_into().expect("four columns");
                let hq: [f32; 16] = std::array::from_fn(|k| hc[k % 4]);
                let base = (c * vp + 16 * b) * 4;
                let wc: &[f32; 64] = self.w4[base..base + 64].try_into().expect("16 rows");
                macro_rules! group {
                    ($x:ident, $g:literal) => {
                        for k in 0..16 {
                            $x[k] += wc[$g + k] * hq[k];
                        }
                    };
                }
                group!(x0, 0);
                group!(x1, 16);
                group!(x2, 32);
                group!(x3, 48);
            }
            for (o, &y) in out.iter_mut().zip(x0.iter().chain(&x1).chain(&x2).chain(&x3)) {
                *o = y;
            }
        }
        for (i, p) in psi.iter_mut().enumerate() {
            let l = &acc[4 * i..4 * i + 4];
            let mut s = (l[0] + l[1]) + (l[2] + l[3]);
            let r = nh - 4 * quads;
            for (x, y) in self.tail[i * r..(i + 1) * r].iter().zip(&h[4 * quads..]) {
                s += x * y;
            }
            *p = s;
        }
        if let Some(a) = &self.a {
            for (p, &ai) in psi.iter_mut().zip(a) {
                *p += ai;
            }
        }
    }
}

/// Random ±1 spins.
fn random_spins(rng: &mut Rng, out: &mut [f32]) {
    for x in out.iter_mut() {
        *x = if rng.next_u32() & 1 == 1 { 1.0 } else { -1.0 };
    }
}

/// `steps` Gibbs steps `v → h → v` from `v`; `h` holds the last hidden draw. `dense` is
/// [`DenseFields::new`] of the model (the same visible fields, faster).
fn gibbs(
    model: &ModelRef<'_>,
    dense: Option<&DenseFields>,
    v: &mut [f32],
    h: &mut [f32],
    steps: usize,
    rng: &mut Rng,
) {
    let (mut s, mut acc) = (vec![0.0f32; model.scratch_len()], Vec::new());
    for _ in 0..steps {
        match dense {
            Some(d) => d.hidden(v, h),
            None => model.hidden_field(v, h, &mut s),
        }
        sample_spins_in_place(h, rng);
        match dense {
            Some(d) => d.field(h, v, &mut acc),
            None => model.visible_field(h, v, &mut s),
        }
        sample_spins_in_place(v, rng);
    }
}

/// `E(v, h) = −vᵀWh − aᵀv − bᵀh`, accumulated in `f64`: `e = 0`, then for each row `i` in
/// order `e −= v_i·s_i` with `s_i = Σ_j W_ij h_j` summed in order, then `e −= Σ_i a_i v_i` and
/// `e −= Σ_j b_j h_j` (each summed in order). Every product of two `f32` values is exact in
/// `f64`, so only the additions round. [`energies_f64`] computes many energies with these
/// bits.
///
/// # Panics
/// If `v` or `h` has the wrong length.
pub fn energy_f64(m: &Bipartite<'_>, v: &[f32], h: &[f32]) -> f64 {
    assert!(v.len() == m.visible && h.len() == m.hidden, "state lengths");
    let mut e = 0.0f64;
    for (row, &vi) in m.w.chunks_exact(m.hidden).zip(v) {
        let s: f64 = row.iter().zip(h).map(|(&w, &hj)| f64::from(w) * f64::from(hj)).sum();
        e -= f64::from(vi) * s;
    }
    if let Some(a) = m.a {
        e -= a.iter().zip(v).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum::<f64>();
    }
    if let Some(b) = m.b {
        e -= b.iter().zip(h).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum::<f64>();
    }
    e
}

/// States per group of [`energies_f64`]: one `f64` lane each (an AVX-512 register).
const E_LANES: usize = 8;
/// Rows of `W` per pass of [`energies_f64`]: independent accumulators hide the latency of the
/// additions.
const E_ROWS: usize = 8;

/// `out[c] = E(v_c, h_c)` for the states `v_c`, `h_c` (rows of `vs` and `hs`), each with the bits
/// of [`energy_f64`] (tested): the same additions in the same order per state, with
/// eight states side by side in vector lanes instead of one sum at a time (the
/// sequential `f64` sums of [`energy_f64`] do not vectorise). Runs at the active SIMD level
/// ([`at_level`]), the same bits at every level.
///
/// # Panics
/// If `vs.len() != out.len()·V` or `hs.len() != out.len()·H`, or `m`'s slices have the wrong
/// lengths.
pub fn energies_f64(m: &Bipartite<'_>, vs: &[f32], hs: &[f32], out: &mut [f64]) {
    let (nv, nh, n) = (m.visible, m.hidden, out.len());
    assert!(vs.len() == n * nv && hs.len() == n * nh, "state lengths");
    assert_eq!(m.w.len(), nv * nh, "w must have V·H entries");
    assert!(m.a.is_none_or(|a| a.len() == nv) && m.b.is_none_or(|b| b.len() == nh), "biases");
    at_level(
        #[inline(always)]
        || energies_f64_lanes(m, vs, hs, out),
    );
}

/// [`energies_f64`]'s loops (lane `c` of a group is state `c`; the unused lanes of a short last
/// group hold zeros and are not written out).
#[inline(always)]
fn energies_f64_lanes(m: &Bipartite<'_>, vs: &[f32], hs: &[f32], out: &mut [f64]) {
    type Lane = [f64; E_LANES];
    let (nv, nh) = (m.visible, m.hidden);
    // The group's states transposed: `ht[j][c] = h_c[j]`, `vt[i][c] = v_c[i]`.
    let mut ht: Vec<Lane> = vec![[0.0; E_LANES]; nh];
    let mut vt: Vec<Lane> = vec![[0.0; E_LANES]; nv];
    // `Iterator::sum` of `f64` starts from −0.0: so do the lane sums.
    let sum = |terms: &[f32], t: &[Lane]| -> Lane {
        let mut s = [-0.0f64; E_LANES];
        for (&x, y) in terms.iter().zip(t) {
            let x = f64::from(x);
            for (sc, &yc) in s.iter_mut().zip(y) {
                *sc += x * yc;
            }
        }
        s
    };
    for (g, o) in out.chunks_mut(E_LANES).enumerate() {
        let c0 = g * E_LANES;
        for c in 0..E_LANES {
            let present = c < o.len();
            for (j, x) in ht.iter_mut().enumerate() {
                x[c] = if present { f64::from(hs[(c0 + c) * nh + j]) } else { 0.0 };
            }
            for (i, x) in vt.iter_mut().enumerate() {
                x[c] = if present { f64::from(vs[(c0 + c) * nv + i]) } else { 0.0 };
            }
        }
        let mut e = [0.0f64; E_LANES];
        for (rows, vrows) in m.w.chunks(E_ROWS * nh.max(1)).zip(vt.chunks(E_ROWS)) {
            if rows.len() == E_ROWS * nh {
                let mut acc = [[-0.0f64; E_LANES]; E_ROWS];
                let r: [&[f32]; E_ROWS] = std::array::from_fn(|k| &rows[k * nh..(k + 1) * nh]);
                for (j, hj) in ht.iter().enumerate() {
                    // Written out per row and lane with constant indices, so that the
                    // accumulators stay in registers (with `for` loops LLVM keeps them in
                    // memory and multiplies one lane at a time).
                    macro_rules! lanes {
                        ($k:literal, $w:ident, $($c:literal)*) => {$(
                            acc[$k][$c] += $w * hj[$c];
                        )*};
                    }
                    macro_rules! rows {
                        ($($k:literal)*) => {$({
                            let w = f64::from(r[$k][j]);
                            lanes!($k, w, 0 1 2 3 4 5 6 7);
                        })*};
                    }
                    const _: () = assert!(E_ROWS == 8 && E_LANES == 8);
                    rows!(0 1 2 3 4 5 6 7);
                }
                for (a, vi) in acc.iter().zip(vrows) {
                    for ((ec, &ac), &vc) in e.iter_mut().zip(a).zip(vi) {
                        *ec -= vc * ac;
                    }
                }
            } else {
                for (row, vi) in rows.chunks_exact(nh).zip(vrows) {
                    let a = sum(row, &ht);
                    for ((ec, &ac), &vc) in e.iter_mut().zip(&a).zip(vi) {
                        *ec -= vc * ac;
                    }
                }
            }
        }
        for (bias, t) in [(m.a, &vt), (m.b, &ht)] {
            if let Some(bias) = bias {
                let s = sum(bias, t);
                for (ec, &sc) in e.iter_mut().zip(&s) {
                    *ec -= sc;
                }
            }
        }
        o.copy_from_slice(&e[..o.len()]);
    }
}

/// Gibbs GS accessibility: `min E(v, h) / E_GS` over `chains` chains of `steps` Gibbs steps
/// from uniform random `v` (reference: 10 chains, 10 steps). `bip` is the same model for the
/// `f64` energies.
pub fn gibbs_gs_accessibility(
    model: &ModelRef<'_>,
    bip: &Bipartite<'_>,
    e_gs: f64,
    chains: usize,
    steps: usize,
    rng: &mut Rng,
) -> f64 {
    let (nv, nh) = (model.visible(), model.hidden());
    // The chains run one after the other (the same draws as one at a time); their energies
    // are computed together.
    let (mut v, mut h) = (vec![0.0f32; chains * nv], vec![0.0f32; chains * nh]);
    let dense = DenseFields::new(model);
    for c in 0..chains {
        let (vc, hc) = (&mut v[c * nv..(c + 1) * nv], &mut h[c * nh..(c + 1) * nh]);
        random_spins(rng, vc);
        gibbs(model, dense.as_ref(), vc, hc, steps, rng);
    }
    let mut e = vec![0.0f64; chains];
    energies_f64(bip, &v, &h, &mut e);
    e.iter().fold(f64::INFINITY, |best, &x| best.min(x)) / e_gs
}

/// The lowest energy `E(ξᵏ_v, ξᵏ_h)` among the patterns of an RA model (as stored); `bip`
/// is the same model for the `f64` energies.
pub fn pattern_min_energy(model: &RaModel<&[f32]>, bip: &Bipartite<'_>) -> f64 {
    let k = model.dims().patterns;
    let (mut v, mut h) = (Vec::new(), Vec::new());
    for p in 0..k {
        v.extend_from_slice(model.xi_v(p));
        h.extend_from_slice(model.xi_h(p));
    }
    let mut e = vec![0.0f64; k];
    energies_f64(bip, &v, &h, &mut e);
    e.iter().fold(f64::INFINITY, |best, &x| best.min(x))
}

/// Chains per block of [`chains_min_energy`]: their hidden states are drawn one chain after the
/// other, then their energies computed together.
const CHAIN_BLOCK: usize = 32;

/// The lowest energy `E(v, h)` over chains `v` (rows of `V`), `h ~ P(h|v)`.
pub fn chains_min_energy(
    model: &ModelRef<'_>,
    bip: &Bipartite<'_>,
    chains: &[f32],
    rng: &mut Rng,
) -> f64 {
    let (nv, nh) = (model.visible(), model.hidden());
    let whole = chains.len() - chains.len() % nv;
    let mut h = vec![0.0f32; CHAIN_BLOCK * nh];
    let mut s = vec![0.0f32; model.scratch_len()];
    let mut e = [0.0f64; CHAIN_BLOCK];
    let mut best = f64::INFINITY;
    let dense = DenseFields::new(model);
    for vb in chains[..whole].chunks(CHAIN_BLOCK * nv) {
        let k = vb.len() / nv;
        for (v, hc) in vb.chunks_exact(nv).zip(h.chunks_exact_mut(nh)) {
            match &dense {
                Some(d) => d.hidden(v, hc),
                None => model.hidden_field(v, hc, &mut s),
            }
            sample_spins_in_place(hc, rng);
        }
        energies_f64(bip, vb, &h[..k * nh], &mut e[..k]);
        best = e[..k].iter().fold(best, |b, &x| b.min(x));
    }
    best
}

/// CD's configurations: every training image after `k` Gibbs steps, `h ~ P(h|v)`, lowest energy;
/// best of `repeats` (reference: 10).
pub fn cd_min_energy(
    model: &ModelRef<'_>,
    bip: &Bipartite<'_>,
    data: &[f32],
    k: usize,
    repeats: usize,
    rng: &mut Rng,
) -> f64 {
    let vl = model.visible();
    let mut v = data.to_vec();
    let mut h = vec![0.0f32; model.hidden()];
    let mut best = f64::INFINITY;
    let dense = DenseFields::new(model);
    for _ in 0..repeats {
        v.copy_from_slice(data);
        for row in v.chunks_exact_mut(vl) {
            gibbs(model, dense.as_ref(), row, &mut h, k, rng);
        }
        best = best.min(chains_min_energy(model, bip, &v, rng));
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use rapid_core::dense::{DenseDims, DenseRbm};
    use rapid_core::Dims;

    /// A Mattis-like model with one pattern equal to the image reconstructs it (or its
    /// negation, which the top row rules out) almost surely when the couplings are strong.
    #[test]
    fn strong_single_pattern_reconstructs_its_image() {
        let d = Dims::new(4, 200, 1);
        let img = [1.0f32, -1.0, -1.0, 1.0];
        let mut xi = img.to_vec();
        xi.extend(std::iter::repeat_n(1.0, 200));
        let model = ModelRef::Ra(RaModel::new_unchecked(&xi[..], d));
        let kept = [true, true, false, false];
        let hd = reconstruction_hd(&model, &img, &kept, HdProtocol::default(), 1, 0);
        assert!(hd < 1e-3, "hd = {hd}");
    }

    /// A model with zero weights samples fair coins: HD is 0.5 on the pixels it redraws.
    #[test]
    fn zero_model_guesses_at_random() {
        let d = Dims::new(16, 10, 2);
        let xi = vec![0.0f32; d.xi_len()];
        let model = ModelRef::Ra(RaModel::new_unchecked(&xi[..], d));
        let img: Vec<f32> = (0..32).map(|i| if i % 3 == 0 { 1.0 } else { -1.0 }).collect();
        let kept: Vec<bool> = (0..16).map(|p| p < 4).collect();
        let p = HdProtocol { repeats: 2000, ..HdProtocol::default() };
        let hd = reconstruction_hd(&model, &img, &kept, p, 3, 0);
        assert!((hd - 0.5).abs() < 0.01, "hd = {hd}");
        // Clamping the 4 kept pixels leaves 12 of 16 at random: 0.375.
        let hd = reconstruction_hd(&model, &img, &kept, HdProtocol { clamp: true, ..p }, 3, 0);
        assert!((hd - 0.375).abs() < 0.01, "hd = {hd}");
    }

    /// Bars 4×4 HD of an RA model with patterns `xi` (V=16, H=30, K=3) is the same bits on 1,
    /// 2 and 3 threads.
    fn assert_hd_independent_of_threads(xi: &[f32]) {
        let model = ModelRef::Ra(RaModel::new_unchecked(xi, Dims::new(16, 30, 3)));
        let data = crate::data::bars4();
        let run = |threads| {
            rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| {
                reconstruction_hd(&model, &data.train, &data.kept, HdProtocol::default(), 9, 4)
            })
        };
        assert_eq!(run(1).to_bits(), run(2).to_bits());
        assert_eq!(run(1).to_bits(), run(3).to_bits());
    }

    #[test]
    fn result_does_not_depend_on_the_thread_count() {
        let d = Dims::new(16, 30, 3);
        let xi: Vec<f32> = (0..d.xi_len()).map(|i| ((i * 7919) % 13) as f32 / 6.0 - 1.0).collect();
        assert_hd_independent_of_threads(&xi);
    }

    /// The mean over the images of the expected one-step HD (no clamp), and the standard
    /// deviation of that mean estimated from `repeats` draws per image, by enumerating `h`.
    fn exact_hd(xi: &[f32], d: Dims, images: &[f32], kept: &[bool], repeats: usize) -> (f64, f64) {
        let (nv, nh, nk) = (d.visible, d.hidden, d.patterns);
        let w = |i: usize, a: usize| -> f64 {
            (0..nk)
                .map(|k| f64::from(xi[k * (nv + nh) + i] * xi[k * (nv + nh) + nv + a]))
                .sum::<f64>()
                / (nk as f64).sqrt()
        };
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let n = images.len() / nv;
        let (mut total, mut var) = (0.0, 0.0);
        for t in images.chunks_exact(nv) {
            let (mut e1, mut e2) = (0.0, 0.0);
            let start: Vec<f64> =
                t.iter().zip(kept).map(|(&x, &k)| if k { f64::from(x) } else { 0.0 }).collect();
            let phi: Vec<f64> =
                (0..nh).map(|a| (0..nv).map(|i| w(i, a) * start[i]).sum()).collect();
            for hb in 0..1usize << nh {
                let h = |a: usize| if hb >> a & 1 == 1 { 1.0 } else { -1.0 };
                let ph: f64 = (0..nh).map(|a| sig(2.0 * h(a) * phi[a])).product();
                // Given h the pixels are independent: wrong with probability q_i.
                let q: Vec<f64> = (0..nv)
                    .map(|i| {
                        let psi: f64 = (0..nh).map(|a| w(i, a) * h(a)).sum();
                        sig(-2.0 * f64::from(t[i]) * psi)
                    })
                    .collect();
                let mean = q.iter().sum::<f64>() / nv as f64;
                let var_h = q.iter().map(|x| x * (1.0 - x)).sum::<f64>() / (nv * nv) as f64;
                e1 += ph * mean;
                e2 += ph * (var_h + mean * mean);
            }
            total += e1;
            var += (e2 - e1 * e1) / repeats as f64;
        }
        (total / n as f64, var.sqrt() / n as f64)
    }

    /// The binary path (a random ±1 RA model) and the float path (the same model through
    /// `f32`) both match the exact expected HD, and agree with each other on the other
    /// protocols; the dispatch takes the binary path exactly when it applies.
    #[test]
    fn binary_path_agrees_with_the_float_path_and_exact_enumeration() {
        let d = Dims::new(16, 8, 3);
        let mut rng = stream(5, Stream::Train, 0, 0);
        let mut xi = vec![0.0f32; d.xi_len()];
        random_spins(&mut rng, &mut xi);
        let model = ModelRef::Ra(RaModel::new_unchecked(&xi[..], d));
        let data = crate::data::bars4();
        let form = binary_form(&model, &data.train).expect("±1 model and images");
        let (imgs, kept) = (&data.train, &data.kept);
        let n = imgs.len() / 16;
        let p = HdProtocol { repeats: 20_000, ..HdProtocol::default() };
        let bin = reconstruction_hd_binary(&Signs::new(&form.0, form.1), imgs, kept, p, 7, 1);
        assert_eq!(bin.to_bits(), reconstruction_hd(&model, imgs, kept, p, 7, 1).to_bits());
        let flt = reconstruction_hd_float(&model, imgs, kept, p, 7, 1);
        let (want, sd) = exact_hd(&xi, d, imgs, kept, p.repeats);
        assert!(want > 0.05 && want < 0.95, "exact {want}");
        assert!((bin - want).abs() < 5.0 * sd, "binary {bin} vs exact {want}");
        assert!((flt - want).abs() < 5.0 * sd, "float {flt} vs exact {want}");
        for p in [
            HdProtocol { repeats: 5_000, steps: 3, clamp: false },
            HdProtocol { repeats: 5_000, steps: 2, clamp: true },
        ] {
            let bin = reconstruction_hd(&model, imgs, kept, p, 7, 1);
            let flt = reconstruction_hd_float(&model, imgs, kept, p, 7, 1);
            // One draw's HD is in [0, 1]: its standard deviation is at most 1/2.
            let sd = 0.5 / ((n * p.repeats) as f64).sqrt();
            assert!(bin > 0.01 && bin < 0.99, "{p:?}: hd = {bin}");
            assert!(
                (bin - flt).abs() < 5.0 * 2f64.sqrt() * sd,
                "{p:?}: binary {bin} vs float {flt}"
            );
        }
        // Non-±1 images, one pattern entry off ±1, or a dense model: the float path.
        let mut images = data.train.clone();
        images[5] = 0.0;
        assert!(binary_form(&model, &images).is_none());
        xi[3] = 0.5;
        let model = ModelRef::Ra(RaModel::new_unchecked(&xi[..], d));
        assert!(binary_form(&model, &data.train).is_none());
        let w = model.weights();
        let dense = DenseRbm::new(&w[..], DenseDims::new(16, 8, false));
        assert!(binary_form(&ModelRef::Dense(dense), &data.train).is_none());
    }

    #[test]
    fn binary_path_does_not_depend_on_the_thread_count() {
        let d = Dims::new(16, 30, 3);
        let xi: Vec<f32> =
            (0..d.xi_len()).map(|i| if (i * 7919) % 13 < 6 { 1.0 } else { -1.0 }).collect();
        assert_hd_independent_of_threads(&xi);
    }

    /// A Mattis model (one ±1 pattern) has its pattern as ground state: the pattern energy
    /// and strongly coupled Gibbs chains reach `E_GS` exactly.
    #[test]
    fn accessibilities_reach_one_on_a_mattis_model() {
        let d = Dims::new(6, 40, 1);
        let mut xi = vec![1.0f32, -1.0, 1.0, 1.0, -1.0, -1.0];
        xi.extend((0..40).map(|a| if a % 3 == 0 { -1.0 } else { 1.0 }));
        let model = RaModel::new_unchecked(&xi[..], d);
        // E_GS = −|ξ_v|²|ξ_h|²/√K... with h = sign(φ): −Σ_α |φ_α| = −V·H for ±1 patterns.
        let e_gs = -(6.0 * 40.0);
        let view = ModelRef::Ra(model);
        view.with_bipartite(|bip| {
            assert_eq!(pattern_min_energy(&model, bip), e_gs);
            assert_eq!(crate::exact::ground_state(bip).unwrap().energy, e_gs);
            let mut rng = stream(1, Stream::Eval, 0, 0);
            assert_eq!(gibbs_gs_accessibility(&view, bip, e_gs, 10, 10, &mut rng), 1.0);
            let data = [1.0f32, -1.0, 1.0, 1.0, -1.0, -1.0];
            assert_eq!(cd_min_energy(&view, bip, &data, 1, 3, &mut rng), e_gs);
        });
        // A zero model never gets below energy 0.
        let z = vec![0.0f32; d.xi_len()];
        let zero = ModelRef::Ra(RaModel::new_unchecked(&z[..], d));
        let mut rng = stream(1, Stream::Eval, 0, 0);
        let data = [1.0f32, -1.0, 1.0, 1.0, -1.0, -1.0];
        zero.with_bipartite(|bip| assert_eq!(chains_min_energy(&zero, bip, &data, &mut rng), 0.0));
    }

    /// The batched energies have the bits of one-at-a-time [`energy_f64`]: ±1 and continuous
    /// states, with and without biases, a last group and a last row block that are short.
    #[test]
    fn batched_energies_have_the_bits_of_energy_f64() {
        let mut rng = stream(11, Stream::Eval, 0, 0);
        let mut real = |n: usize| -> Vec<f32> {
            (0..n).map(|_| (rng.next_u32() as f32 / 4_294_967_296.0 - 0.5) * 3.0).collect()
        };
        for (nv, nh, n) in [(16, 1000, 37), (5, 3, 1), (9, 24, 8), (20, 7, 17), (1, 1, 3)] {
            let (w, a, b) = (real(nv * nh), real(nv), real(nh));
            let (vc, hc) = (real(n * nv), real(n * nh));
            let pm1 = |x: &Vec<f32>| -> Vec<f32> {
                x.iter().map(|&y| if y < 0.0 { -1.0 } else { 1.0 }).collect()
            };
            let (vp, hp) = (pm1(&vc), pm1(&hc));
            for biases in [false, true] {
                let m = Bipartite {
                    visible: nv,
                    hidden: nh,
                    w: &w,
                    a: biases.then_some(&a[..]),
                    b: biases.then_some(&b[..]),
                };
                for (vs, hs) in [(&vc, &hc), (&vp, &hp)] {
                    let mut got = vec![0.0f64; n];
                    energies_f64(&m, vs, hs, &mut got);
                    for (c, &e) in got.iter().enumerate() {
                        let want =
                            energy_f64(&m, &vs[c * nv..(c + 1) * nv], &hs[c * nh..(c + 1) * nh]);
                        assert_eq!(e.to_bits(), want.to_bits(), "{nv}×{nh}, state {c}: {e} {want}");
                    }
                }
            }
        }
    }

    /// [`DenseFields`] gives the bits of `DenseRbm::visible_field` and `hidden_field`: `H` and
    /// `V` multiples of 4 or not, with and without biases, ±1 and continuous states.
    #[test]
    fn dense_visible_fields_have_the_bits_of_the_model() {
        let mut rng = stream(12, Stream::Eval, 0, 0);
        let mut real = |n: usize| -> Vec<f32> {
            (0..n).map(|_| (rng.next_u32() as f32 / 4_294_967_296.0 - 0.5) * 3.0).collect()
        };
        for (nv, nh) in [(16, 1000), (5, 3), (9, 27), (1, 8), (20, 1001), (3, 4)] {
            for biases in [false, true] {
                let params = real(nv * nh + if biases { nv + nh } else { 0 });
                let m = DenseRbm::new(&params[..], DenseDims::new(nv, nh, biases));
                let model = ModelRef::Dense(m);
                let d = DenseFields::new(&model).expect("a dense model");
                let mut acc = Vec::new();
                let bits = |x: &[f32]| x.iter().map(|y| y.to_bits()).collect::<Vec<_>>();
                for h in [real(nh), real(nh).iter().map(|&x| x.signum()).collect()] {
                    let (mut got, mut want) = (vec![0.0f32; nv], vec![0.0f32; nv]);
                    d.field(&h, &mut got, &mut acc);
                    m.visible_field(&h, &mut want);
                    assert_eq!(bits(&got), bits(&want), "{nv}×{nh} biases {biases}");
                }
                for v in [real(nv), real(nv).iter().map(|&x| x.signum()).collect()] {
                    let (mut got, mut want) = (vec![0.0f32; nh], vec![0.0f32; nh]);
                    d.hidden(&v, &mut got);
                    m.hidden_field(&v, &mut want);
                    assert_eq!(bits(&got), bits(&want), "hidden {nv}×{nh} biases {biases}");
                }
            }
        }
    }

    #[test]
    fn f64_energy_matches_the_definition() {
        let w = [0.5f32, -1.0, 0.25, 2.0];
        let (a, b) = ([0.125f32, -0.25], [0.375f32, 0.5]);
        let m = Bipartite { visible: 2, hidden: 2, w: &w, a: Some(&a), b: Some(&b) };
        let (v, h) = ([1.0f32, -1.0], [-1.0f32, 1.0]);
        // vᵀWh: row 0 · h = −0.5 − 1.0 = −1.5, row 1 · h = −0.25 + 2.0 = 1.75 → 1·(−1.5) − 1·1.75.
        // aᵀv = 0.125 + 0.25 = 0.375; bᵀh = −0.375 + 0.5 = 0.125 (all exact in f32).
        let want = -(-1.5 - 1.75) - 0.375 - 0.125;
        assert!((energy_f64(&m, &v, &h) - want).abs() < 1e-12);
    }
}
