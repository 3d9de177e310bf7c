//! The fast `f32` path used for training: [`model_average_fast`] (how it is fast is in its
//! docs), the model layout `FastNet`, the per-chunk walk and its sweep kernels (`sweep`,
//! `sweep_odd`, the `f32` exponential `exp_neg2`); and the vectorised `f64` walks `Net64`
//! behind [`log_z`](super::log_z) (`sweep64`, the `f64` exponential `exp_neg2_f64`, one `ln`
//! per 512 fields) and [`ground_state`](super::ground_state) (an approximate walk in `f32`,
//! `walk32`, or in `f64` where `f32` could overflow; candidates re-evaluated exactly).

use rapid_core::kernels::at_level;
use rayon::prelude::*;

use super::gray::{gray_code, inverse_gray, spin, Plan};
use super::oracle::Lse;
use super::{transpose, Bipartite, ExactError, Net};

/// Model averages from [`model_average_fast`] (`f32`, `log Z` in `f64`); the buffers are
/// reused across calls.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FastAverage {
    /// `⟨v_i h_α⟩_model`, V×H row-major.
    pub vh: Vec<f32>,
    /// `⟨v_i⟩_model` (V).
    pub v: Vec<f32>,
    /// `⟨h_α⟩_model` (H).
    pub h: Vec<f32>,
    /// `log Z`.
    pub log_z: f64,
}

impl FastAverage {
    /// Zeroed buffers for a V×H model.
    pub fn new(visible: usize, hidden: usize) -> Self {
        FastAverage {
            vh: vec![0.0; visible * hidden],
            v: vec![0.0; visible],
            h: vec![0.0; hidden],
            log_z: 0.0,
        }
    }
}

/// The training path: the same averages as [`model_average`], accumulated in `f32` (`log Z`
/// and the normalisation in `f64`), written into `out` (its vectors are resized to V×H, V, H
/// and overwritten).
///
/// How it is fast (one pass over the states, no `unsafe`, loops that autovectorise, run at
/// the active SIMD level by [`at_level`] with the same bits as plain code):
/// * **Symmetry.** Without biases (absent or all zero) `P(s) = P(−s)` and `s_i tanh f_j` is
///   even, so only the half with the last enumerated spin at `+1` is walked; `⟨v⟩ = ⟨h⟩ = 0`.
/// * **One exponential per field, on even states only.** `e = e^{−2|f|}` by range reduction
///   and a polynomial in plain `f32` arithmetic (absolute error ≤ 1.3e−7, tested), then
///   `tanh f = sign(f)(1 − e)/(1 + e)` and `log 2cosh f = |f| + log(1 + e)`, the logs summed
///   as the log of a product kept in 16 `f32` lanes (renormalised by exponent bits). The odd
///   state that follows differs by spin 0 only, and `e^{−2σf'} = e·e^{−2σδ}` (`σ = sign f`,
///   `δ = ±2R_0`) comes from a table: no exponential (used when `|2R_0j| ≤ 12`).
/// * **Gray-code blocks.** In an aligned block of `2^ℓ` consecutive states, spins `ℓ, ℓ+1,…`
///   are constant, so `Σ_s p s_i tanh f` is assembled from block sums of `p·tanh f`: one pass
///   per 4 states adds them to spins 0, 1, 2 and forms their sum, and the higher spins get
///   pairwise block sums, instead of `n` multiply-adds per state.
/// * **Running reference.** Each chunk weights states by `e^{lw − ref}`, with `ref` raised
///   (and the accumulators rescaled) whenever `lw` exceeds it by 32, so `f32` never
///   overflows; states 60 below it count as 0 and no subnormal number is formed (they are
///   slow on x86).
/// * **Exact anchors.** Every 16 states the `f32` fields are rounded afresh from `f64` ones,
///   so `f32` rounding never accumulates over more than 15 flips.
/// * Both cores, via fixed chunks as in the oracle (bit-identical for any thread count).
///
/// Accuracy against [`model_average`]: max abs error on `⟨v h⟩`, `⟨v⟩`, `⟨h⟩` ≤ 2.1e−6 on
/// the unit-test models (asserted ≤ 1e−5), 1.2e−5 for V = 16, H = 1000, `W ~ 0.3·N(0, 1)`.
/// Cost: about 20 ms of CPU time per call for V = 16, H = 1000 (level `avx512`, see "Limit
/// and cost" in [`crate::exact`]); about twice that with biases (no symmetry).
///
/// # Errors
/// [`ExactError::TooLarge`] if `min(V, H) > MAX_ENUM_BITS`; `out` is then untouched.
///
/// # Panics
/// If the lengths of `m`'s slices disagree with its sizes.
///
/// [`model_average`]: super::model_average
pub fn model_average_fast(m: &Bipartite, out: &mut FastAverage) -> Result<(), ExactError> {
    let net = m.net();
    net.ensure_small()?;
    FastNet::new(&net).model_average(out, Level::Active);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Internals.

/// Where the walks run: at the active SIMD level ([`at_level`]: the loops compiled for
/// AVX2/AVX-512 where the CPU has them) or as plain code of the default build (x86-64
/// baseline); the tests check that both give the same bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Level {
    Active,
    #[cfg(test)]
    Plain,
}

impl Level {
    #[inline(always)]
    fn run<R>(self, f: impl FnOnce() -> R) -> R {
        match self {
            Level::Active => at_level(f),
            #[cfg(test)]
            Level::Plain => f(),
        }
    }
}

/// Lanes of the reductions (four SSE registers: independent chains hide the latency).
const LANES: usize = 16;
/// Groups of `LANES` fields between folds of the lane reductions: the `f32` partial sums
/// (at most 32 terms each) are added into `f64` lanes, and the `Π(1 + e)` lanes are
/// renormalised (factors in `[1, 2]`: a lane stays below `2^32`).
const FOLD_GROUPS: usize = 32;
/// Every `2^ANCHOR_BITS` states the `f32` fields are rounded afresh from exact (`f64`) ones,
/// so that the rounding of the incremental `f32` updates never accumulates over more than
/// 15 flips (unchecked, `f32` drift over a 1024-state chunk gave 6e−5 errors on `⟨v h⟩`).
const ANCHOR_BITS: usize = 4;
/// The reference log-weight is raised when a state exceeds it by this much.
const RESCALE_MARGIN: f64 = 32.0;
/// States with a log-weight this far below the reference get weight 0.
const NEGLIGIBLE: f64 = 60.0;
/// Accumulators that shrink below this when the reference is raised are set to 0.
const TINY: f32 = 1e-30;
/// `e^{−2a}` is computed for `a ≤ CLAMP`, so `e ≥ e^{−60}` and every product formed with it
/// stays a normal `f32` (subnormal arithmetic is slow on x86); the error is below `e^{−60}`.
const CLAMP: f32 = 30.0;

/// `e^{−2a}` for `a ≥ 0`, in plain `f32` arithmetic that autovectorises (no libm, no
/// branches): `x = −2a·log₂e` (with `a` clamped to [`CLAMP`]), `x = k + r` with `k` the
/// nearest integer (added to 1.5·2²³, it lands in the low mantissa bits) and `|r| ≤ 1/2`,
/// `2^r` by a degree-5 minimax polynomial with `p(0) = 1` (relative error 9e−8 in exact
/// arithmetic), `2^k` written into the exponent bits. Measured (test `fast_exp_is_accurate`):
/// absolute error ≤ 1.3e−7 on `[0, ∞)`; relative error ≤ 2.1e−7 for `a ≤ 1/2`, ≤ 5.8e−7 for
/// `a ≤ 4` and ≤ 3.6e−6 up to the clamp (the rounding of `x` grows with `|x|`). `e(0) = 1`
/// exactly, so `tanh 0 = 0`.
#[inline(always)]
fn exp_neg2(a: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    const MAGIC_BITS: u32 = 0x4B40_0000;
    // Minimax coefficients (c₁ is close to, but not, ln 2).
    #[allow(clippy::approx_constant)]
    const C: [f32; 6] =
        [1.0, 0.693_147, 0.240_222_42, 0.055_507_336, 0.009_671_513, 0.001_326_472_7];
    let a = if a < CLAMP { a } else { CLAMP };
    let x = a * (-2.0 * std::f32::consts::LOG2_E);
    let q = x + MAGIC;
    let r = x - (q - MAGIC);
    let p = ((((C[5] * r + C[4]) * r + C[3]) * r + C[2]) * r + C[1]) * r + C[0];
    let scale = f32::from_bits(q.to_bits().wrapping_add(127u32.wrapping_sub(MAGIC_BITS)) << 23);
    p * scale
}

/// Runs `$body` for `$l = 0, 1, …, 15` (`LANES`, [`L64`]) written out with constant indices,
/// so that lane accumulators (`[f32; LANES]`, `[f64; L64]` locals) become registers (with a `for` loop LLVM keeps
/// them in memory and every group pays a store-to-load round trip). Same operations, same
/// order as the loop.
macro_rules! each_lane {
    ($l:ident, $body:block) => {{
        const _: () = assert!(LANES == 16 && L64 == 16);
        each_lane!(@ $l, $body, 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
    }};
    (@ $l:ident, $body:block, $($k:literal)*) => {
        $({
            let $l: usize = $k;
            $body
        })*
    };
}

/// A group of `LANES` values (from `chunks_exact(LANES)`).
#[inline(always)]
fn lanes(x: &[f32]) -> &[f32; LANES] {
    x.try_into().expect("a group of LANES values")
}

/// `LANES` running products of positive `f32` factors, each kept as `prod·2^exp`: [`renorm`]
/// (vectorised integer operations) moves the binary exponents into `exp`, so a lane never
/// overflows or underflows as long as the factors between two calls multiply to a normal
/// number.
///
/// [`renorm`]: LaneProd::renorm
#[derive(Clone, Copy, Debug)]
struct LaneProd {
    prod: [f32; LANES],
    exp: [i32; LANES],
}

impl LaneProd {
    const ONE: LaneProd = LaneProd { prod: [1.0; LANES], exp: [0; LANES] };

    #[inline(always)]
    fn renorm(&mut self) {
        for (p, e) in self.prod.iter_mut().zip(self.exp.iter_mut()) {
            let bits = p.to_bits();
            *e += (bits >> 23) as i32 - 127;
            *p = f32::from_bits((bits & 0x007F_FFFF) | 0x3F80_0000);
        }
    }

    /// `ln` of the whole product (call after [`LaneProd::renorm`]).
    fn ln(&self) -> f64 {
        let mant: f64 = self.prod.iter().map(|&p| f64::from(p)).product();
        let exp: i64 = self.exp.iter().map(|&e| i64::from(e)).sum();
        exp as f64 * std::f64::consts::LN_2 + mant.ln()
    }
}

/// A state's pass over the fields: optionally `f += ra + rb` first (`±2R_i` rows), then
/// `e = e^{−2|f|}` and `t = tanh f = sign(f)(1 − e)/(1 + e)`; returns
/// `Σ_j log 2cosh f_j = Σ|f| + log Π(1 + e)`. Two simple loops, so that each autovectorises:
/// an element-wise map writing `t` and `e`, then the two reductions in `LANES` lanes.
#[inline(always)]
fn sweep<const UPDATE: bool>(
    f: &mut [f32],
    ra: &[f32],
    rb: &[f32],
    t: &mut [f32],
    e: &mut [f32],
) -> f64 {
    for ((fj, (&a, &b)), (tj, ej)) in
        f.iter_mut().zip(ra.iter().zip(rb)).zip(t.iter_mut().zip(e.iter_mut()))
    {
        let mut x = *fj;
        if UPDATE {
            x = x + a + b;
            *fj = x;
        }
        let y = exp_neg2(x.abs());
        *ej = y;
        let th = (1.0 - y) / (1.0 + y);
        *tj = f32::from_bits(th.to_bits() | (x.to_bits() & SIGN));
    }
    let block = LANES * FOLD_GROUPS;
    let mut sum = [0.0f64; LANES];
    let mut prod = LaneProd::ONE;
    for (fb, eb) in f.chunks(block).zip(e.chunks(block)) {
        let mut sum_abs = [0.0f32; LANES];
        // A local copy: LLVM keeps a struct's array field in memory.
        let mut pp = prod.prod;
        for (fc, ec) in fb.chunks_exact(LANES).zip(eb.chunks_exact(LANES)) {
            let (fc, ec) = (lanes(fc), lanes(ec));
            each_lane!(l, {
                sum_abs[l] += fc[l].abs();
                pp[l] *= 1.0 + ec[l];
            });
        }
        prod.prod = pp;
        add_lanes(&mut sum, &sum_abs);
        prod.renorm();
    }
    sum.iter().sum::<f64>() + prod.ln()
}

/// `acc += k·row` in `f64`.
#[inline(always)]
fn add_row(acc: &mut [f64], k: f64, row: &[f32]) {
    for (a, &r) in acc.iter_mut().zip(row) {
        *a += k * f64::from(r);
    }
}

/// `acc += x`, lane by lane, in `f64`.
#[inline(always)]
fn add_lanes(acc: &mut [f64; LANES], x: &[f32; LANES]) {
    for (a, &b) in acc.iter_mut().zip(x) {
        *a += f64::from(b);
    }
}

/// The pass of an odd state, which differs from the preceding even state (fields `f`,
/// `e = e^{−2|f|}`) only by spin 0: `f' = f + δ`, `δ = ±2R_0`. With `σ = sign f`,
/// `u = e^{−2σf'} = e·g` where `g = e^{−2σδ}` is tabulated (`g_pos` for `σ = +1`, `g_neg`
/// for `σ = −1`), so no exponential is needed: `r = 1/(1 + u)`, `tanh f' = σ(1 − u)r`, and
/// `log 2cosh f' = σf' + log(1 + u) = |f| + σδ − log r` (valid whatever the sign of `f'`).
/// `r ≥ 1/(1 + e^{2|δ|max})`, so `fold` groups keep a lane product above `2^−100`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn sweep_odd(
    f: &[f32],
    delta: &[f32],
    e: &[f32],
    g_pos: &[f32],
    g_neg: &[f32],
    t: &mut [f32],
    r: &mut [f32],
    fold: usize,
) -> f64 {
    for ((tj, rj), ((&x, &ej), (&gp, &gn))) in
        t.iter_mut().zip(r.iter_mut()).zip(f.iter().zip(e).zip(g_pos.iter().zip(g_neg)))
    {
        let mask = ((x.to_bits() as i32) >> 31) as u32;
        let g = f32::from_bits((gp.to_bits() & !mask) | (gn.to_bits() & mask));
        let u = ej * g;
        let rr = 1.0 / (1.0 + u);
        *rj = rr;
        *tj = f32::from_bits(((1.0 - u) * rr).to_bits() ^ (x.to_bits() & SIGN));
    }
    let block = LANES * fold.min(FOLD_GROUPS);
    let mut sum = [0.0f64; LANES];
    let mut prod = LaneProd::ONE;
    for ((fb, db), rb) in f.chunks(block).zip(delta.chunks(block)).zip(r.chunks(block)) {
        let mut part = [0.0f32; LANES];
        let mut pp = prod.prod;
        let groups = fb.chunks_exact(LANES).zip(db.chunks_exact(LANES));
        for ((fc, dc), rc) in groups.zip(rb.chunks_exact(LANES)) {
            let (fc, dc, rc) = (lanes(fc), lanes(dc), lanes(rc));
            each_lane!(l, {
                let sign = fc[l].to_bits() & SIGN;
                part[l] += fc[l].abs() + f32::from_bits(dc[l].to_bits() ^ sign);
                pp[l] *= rc[l];
            });
        }
        prod.prod = pp;
        add_lanes(&mut sum, &part);
        prod.renorm();
    }
    sum.iter().sum::<f64>() - prod.ln()
}

/// The sign bit of an `f32`.
const SIGN: u32 = 0x8000_0000;
/// The pair trick is used when `|δ| = |2R_0j| ≤ PAIR_DELTA_MAX` for all `j`.
pub(super) const PAIR_DELTA_MAX: f64 = 12.0;

/// Tables of the pair trick: `g[0] = e^{−4R_0}`, `g[1] = e^{+4R_0}`; `fold` as in
/// [`sweep_odd`].
struct PairTables {
    g: [Vec<f32>; 2],
    fold: usize,
}

/// The model for the fast path: `f32`, the summed side padded to `mp` (a multiple of
/// `LANES`) with zero couplings; `rows[2i + 1] = 2R_i`, `rows[2i] = −2R_i` (the field change
/// when spin `i` flips to `+1` or `−1`).
struct FastNet {
    n: usize,
    m: usize,
    mp: usize,
    rows: Vec<f32>,
    zero: Vec<f32>,
    c: Vec<f64>,
    d: Vec<f64>,
    pair: Option<PairTables>,
    transposed: bool,
    symmetric: bool,
}

/// One chunk's partial sums (weights `e^{lw − lref}`).
struct FastChunk {
    cross: Vec<f32>,
    t: Vec<f32>,
    s: Vec<f64>,
    z: f64,
    lref: f64,
}

/// Work buffers of one chunk.
struct FastScratch {
    f: Vec<f32>,
    /// `tanh f` of the states of the current quad (state `j` in `t[j mod 4]`).
    t: [Vec<f32>; 4],
    /// `e^{−2|f|}` of the even state.
    e: Vec<f32>,
    /// Scratch of the odd pass.
    r: Vec<f32>,
    /// The block sum being carried up the tree.
    val: Vec<f32>,
    /// `slots[ℓ]`: the sum of the pending left block of level `ℓ` (`slots[0..2]` unused).
    slots: Vec<Vec<f32>>,
}

impl FastNet {
    fn new(net: &Net<'_, f32>) -> Self {
        let (nv, nh) = (net.visible, net.hidden);
        let transposed = nh < nv;
        let (n, m) = if transposed { (nh, nv) } else { (nv, nh) };
        let mp = m.div_ceil(LANES) * LANES;
        let mut rows = vec![0.0f32; 2 * n * mp];
        for i in 0..nv {
            for al in 0..nh {
                let x = 2.0 * net.w[i * nh + al];
                let (r, col) = if transposed { (al, i) } else { (i, al) };
                rows[(2 * r + 1) * mp + col] = x;
                rows[2 * r * mp + col] = -x;
            }
        }
        let bias = |x: Option<&[f32]>, len: usize| {
            let mut y = vec![0.0f64; len];
            if let Some(x) = x {
                for (yi, &xi) in y.iter_mut().zip(x) {
                    *yi = f64::from(xi);
                }
            }
            y
        };
        let (mut c, mut d) = (bias(net.a, nv), bias(net.b, nh));
        if transposed {
            std::mem::swap(&mut c, &mut d);
        }
        d.resize(mp, 0.0);
        let symmetric = n > 0 && c.iter().chain(&d).all(|&x| x == 0.0);
        let pair = if n > usize::from(symmetric) {
            let delta = &rows[mp..2 * mp];
            let max = delta.iter().fold(0.0f64, |a, &x| a.max(f64::from(x).abs()));
            (max <= PAIR_DELTA_MAX).then(|| {
                let bits = (1.0 + (2.0 * max).exp()).log2();
                let fold = ((100.0 / bits) as usize).max(1);
                let g = |sign: f64| {
                    delta.iter().map(move |&x| (sign * 2.0 * f64::from(x)).exp() as f32)
                };
                PairTables { g: [g(-1.0).collect(), g(1.0).collect()], fold }
            })
        } else {
            None
        };
        FastNet { n, m, mp, rows, zero: vec![0.0; mp], c, d, pair, transposed, symmetric }
    }

    /// The field change when spin `i` flips to `s`: `2 s R_i`.
    fn row(&self, i: usize, s: f64) -> &[f32] {
        let k = 2 * i + usize::from(s > 0.0);
        &self.rows[k * self.mp..(k + 1) * self.mp]
    }

    /// `acc = d + Σ_{i ≥ from} s_i R_i` for the state `code`, in `f64`; returns `cᵀs`.
    fn high_fields(&self, code: u64, from: usize, acc: &mut [f64]) -> f64 {
        acc.copy_from_slice(&self.d);
        let mut cs = 0.0;
        for i in 0..self.n {
            let s = spin(code, i);
            cs += s * self.c[i];
            if i >= from {
                add_row(acc, 0.5 * s, self.row(i, 1.0));
            }
        }
        cs
    }

    /// The two possible `Σ_{i < lo} s_i R_i` at the start of an aligned block of `2^lo`
    /// states: there the Gray code has its low `lo` bits clear except perhaps bit `lo − 1`,
    /// so `[0]` has all `s_i = −1` and `[1]` has `s_{lo−1} = +1`.
    fn low_fields(&self, lo: usize) -> [Vec<f64>; 2] {
        let mut low = [vec![0.0f64; self.mp], vec![0.0f64; self.mp]];
        for (k, acc) in low.iter_mut().enumerate() {
            for i in 0..lo {
                let s = if i + 1 == lo && k == 1 { 1.0 } else { -1.0 };
                add_row(acc, 0.5 * s, self.row(i, 1.0));
            }
        }
        low
    }

    fn plan(&self) -> Plan {
        if self.symmetric {
            Plan::new(self.n - 1, 1 << (self.n - 1))
        } else {
            Plan::new(self.n, 0)
        }
    }

    #[inline(always)]
    fn chunk(&self, plan: Plan, chunk: usize) -> FastChunk {
        let (n, mp, local) = (self.n, self.mp, plan.local);
        let buf = || vec![0.0f32; mp];
        let mut sc = FastScratch {
            f: buf(),
            t: [buf(), buf(), buf(), buf()],
            e: buf(),
            r: buf(),
            val: buf(),
            slots: vec![buf(); local],
        };
        let mut cross = vec![0.0f32; n * mp];
        let mut s_sum = vec![0.0f64; n];
        let (mut z, mut lref, mut ps) = (0.0f64, f64::NEG_INFINITY, [0.0f64; 4]);
        let mut code = plan.start(chunk);
        // Exact fields: of the spins from `lo` on (constant within an anchor block), and the
        // two possible contributions of the low spins at the start of a block.
        let lo = ANCHOR_BITS.min(local);
        let mut high = vec![0.0f64; mp];
        let mut cs = self.high_fields(code, lo, &mut high);
        let low = self.low_fields(lo);
        // With the pair trick, odd states leave `f` at the even state's fields, and the next
        // even state applies both flips.
        let mut pending: &[f32] = &self.zero;
        for j in 0..1u64 << local {
            let odd = (j & 1) as usize;
            let slot = (j & 3) as usize;
            let i = j.trailing_zeros() as usize;
            if j > 0 {
                code ^= 1 << i;
                cs += 2.0 * spin(code, i) * self.c[i];
            }
            let log_cosh = if j & ((1 << lo) - 1) == 0 {
                if j > 0 {
                    // Spin `i ≥ lo` flipped: `R_i` moves to the exact high fields.
                    add_row(&mut high, 1.0, self.row(i, spin(code, i)));
                }
                debug_assert!(lo == 0 || code & ((1u64 << (lo - 1)) - 1) == 0);
                let low = &low[usize::from(lo > 0 && (code >> (lo - 1)) & 1 == 1)];
                for (fj, (&h, &l)) in sc.f.iter_mut().zip(high.iter().zip(low)) {
                    *fj = (h + l) as f32;
                }
                pending = &self.zero;
                sweep::<false>(&mut sc.f, &self.zero, &self.zero, &mut sc.t[slot], &mut sc.e)
            } else if odd == 0 {
                let row = self.row(i, spin(code, i));
                let lc = sweep::<true>(&mut sc.f, pending, row, &mut sc.t[slot], &mut sc.e);
                pending = &self.zero;
                lc
            } else {
                let s = spin(code, 0);
                match &self.pair {
                    Some(pt) => {
                        pending = self.row(0, s);
                        let (gp, gn) =
                            if s > 0.0 { (&pt.g[0], &pt.g[1]) } else { (&pt.g[1], &pt.g[0]) };
                        let FastScratch { f, t, e, r, .. } = &mut sc;
                        sweep_odd(f, pending, e, gp, gn, &mut t[slot], r, pt.fold)
                    }
                    None => {
                        let t = &mut sc.t[slot];
                        sweep::<true>(&mut sc.f, self.row(0, s), &self.zero, t, &mut sc.r)
                    }
                }
            };
            let lw = cs + log_cosh;
            if lw > lref + RESCALE_MARGIN {
                if z > 0.0 {
                    let g = (lref - lw).exp();
                    z *= g;
                    ps.iter_mut().for_each(|x| *x *= g);
                    s_sum.iter_mut().for_each(|x| *x *= g);
                    let g = g as f32;
                    let scale = |x: &mut f32| {
                        let y = *x * g;
                        *x = if y.abs() < TINY { 0.0 } else { y };
                    };
                    cross[..local * mp].iter_mut().for_each(scale);
                    sc.slots.iter_mut().flatten().for_each(scale);
                }
                lref = lw;
            }
            // Far below the reference a state is negligible; flushing it to 0 also keeps
            // subnormal numbers (slow on x86) out of the f32 sums.
            let p = if lw - lref > -NEGLIGIBLE { (lw - lref).exp() } else { 0.0 };
            z += p;
            if !self.symmetric {
                for (i, x) in s_sum.iter_mut().enumerate() {
                    *x += p * spin(code, i);
                }
            }
            ps[slot] = p;
            if local == 0 {
                let pf = p as f32;
                for (v, &x) in sc.val.iter_mut().zip(&sc.t[0]) {
                    *v = pf * x;
                }
            } else if local == 1 && odd == 1 {
                self.accumulate_pair([ps[0] as f32, ps[1] as f32], code, &mut sc, &mut cross);
            } else if slot == 3 {
                let p4 = ps.map(|p| p as f32);
                self.accumulate_quad(p4, j, code, &mut sc, &mut cross);
            }
        }
        // `val` is now the chunk's Σ p·t; spins from `local` on are constant in the chunk.
        for i in local..n {
            let s = spin(code, i) as f32;
            for (x, &y) in cross[i * mp..(i + 1) * mp].iter_mut().zip(&sc.val) {
                *x = s * y;
            }
        }
        FastChunk { cross, t: sc.val, s: s_sum, z, lref }
    }

    /// The whole chunk is the pair of states 0, 1 (weights `p`, `tanh f` in `sc.t[0..2]`):
    /// spin 0 is `−s₀, s₀`, so `cross_0 += s₀(p₁t₁ − p₀t₀)` and `val = p₀t₀ + p₁t₁`.
    #[inline(always)]
    fn accumulate_pair(&self, p: [f32; 2], code: u64, sc: &mut FastScratch, cross: &mut [f32]) {
        let s0 = spin(code, 0) as f32;
        let (a0, a1) = (-s0 * p[0], s0 * p[1]);
        let [t0, t1, ..] = &sc.t;
        let c0 = &mut cross[..self.mp];
        for ((c, v), (&x0, &x1)) in c0.iter_mut().zip(&mut sc.val).zip(t0.iter().zip(t1)) {
            *c += a0 * x0 + a1 * x1;
            *v = p[0] * x0 + p[1] * x1;
        }
    }

    /// Adds the quad of states `j − 3 … j` (weights `p`, `tanh f` in `sc.t`) to the block tree.
    ///
    /// The quad is an aligned level-2 block: spins from 2 on are shared, and with `(s₀, s₁)`
    /// the spins 0 and 1 of state `j`, the four states have `(s₀, −s₁), (−s₀, −s₁), (−s₀, s₁),
    /// (s₀, s₁)` (Gray order). One pass over the summed side adds the quad to `cross_0`,
    /// `cross_1`, `cross_2` and forms its sum `Σ p·t`; above, when a level-`ℓ` block completes,
    /// `cross_ℓ += s_ℓ·(its Σ p·t)`, and left blocks wait in `slots[ℓ]` for their sibling.
    #[inline(always)]
    fn accumulate_quad(
        &self,
        p: [f32; 4],
        j: u64,
        code: u64,
        sc: &mut FastScratch,
        cross: &mut [f32],
    ) {
        let (mp, local) = (self.mp, sc.slots.len());
        let (s0, s1) = (spin(code, 0) as f32, spin(code, 1) as f32);
        let a = [s0 * p[0], -s0 * p[1], -s0 * p[2], s0 * p[3]];
        let b = [-s1 * p[0], -s1 * p[1], s1 * p[2], s1 * p[3]];
        let [t0, t1, t2, t3] = &sc.t;
        let (c0, rest) = cross.split_at_mut(mp);
        let (c1, rest) = rest.split_at_mut(mp);
        let ts = t0.iter().zip(t1).zip(t2.iter().zip(t3));
        let cs = c0.iter_mut().zip(c1.iter_mut());
        if local == 2 {
            // The quad is the whole chunk.
            for ((c0, c1), (((&x0, &x1), (&x2, &x3)), v)) in cs.zip(ts.zip(sc.val.iter_mut())) {
                *c0 += (a[0] * x0 + a[1] * x1) + (a[2] * x2 + a[3] * x3);
                *c1 += (b[0] * x0 + b[1] * x1) + (b[2] * x2 + b[3] * x3);
                *v = (p[0] * x0 + p[1] * x1) + (p[2] * x2 + p[3] * x3);
            }
            return;
        }
        let s2 = spin(code, 2) as f32;
        let cs = cs.zip(rest[..mp].iter_mut());
        if (j >> 2) & 1 == 0 {
            // A left block of level 3: park the quad's sum.
            let out = sc.slots[2].iter_mut();
            for (((c0, c1), c2), (((&x0, &x1), (&x2, &x3)), v)) in cs.zip(ts.zip(out)) {
                *c0 += (a[0] * x0 + a[1] * x1) + (a[2] * x2 + a[3] * x3);
                *c1 += (b[0] * x0 + b[1] * x1) + (b[2] * x2 + b[3] * x3);
                let y = (p[0] * x0 + p[1] * x1) + (p[2] * x2 + p[3] * x3);
                *c2 += s2 * y;
                *v = y;
            }
            return;
        }
        let out = sc.val.iter_mut().zip(&sc.slots[2]);
        for (((c0, c1), c2), (((&x0, &x1), (&x2, &x3)), (v, &sl))) in cs.zip(ts.zip(out)) {
            *c0 += (a[0] * x0 + a[1] * x1) + (a[2] * x2 + a[3] * x3);
            *c1 += (b[0] * x0 + b[1] * x1) + (b[2] * x2 + b[3] * x3);
            let y = (p[0] * x0 + p[1] * x1) + (p[2] * x2 + p[3] * x3);
            *c2 += s2 * y;
            *v = y + sl;
        }
        for l in 3..local {
            let s = spin(code, l) as f32;
            let cl = &mut cross[l * mp..(l + 1) * mp];
            if (j >> l) & 1 == 0 {
                for (c, &v) in cl.iter_mut().zip(&sc.val) {
                    *c += s * v;
                }
                std::mem::swap(&mut sc.slots[l], &mut sc.val);
                return;
            }
            for ((c, v), &sl) in cl.iter_mut().zip(sc.val.iter_mut()).zip(&sc.slots[l]) {
                *c += s * *v;
                *v += sl;
            }
        }
    }

    fn model_average(&self, out: &mut FastAverage, level: Level) {
        let (n, m, mp) = (self.n, self.m, self.mp);
        let plan = self.plan();
        let parts: Vec<FastChunk> = (0..plan.chunks())
            .into_par_iter()
            .map(|k| {
                level.run(
                    #[inline(always)]
                    || self.chunk(plan, k),
                )
            })
            .collect();
        let top = parts.iter().map(|p| p.lref + p.z.ln()).fold(f64::NEG_INFINITY, f64::max);
        let mut cross = vec![0.0f64; n * m];
        let mut s = vec![0.0f64; n];
        let mut t = vec![0.0f64; m];
        let mut z = 0.0f64;
        for part in &parts {
            let g = (part.lref - top).exp();
            z += g * part.z;
            for i in 0..n {
                let src = &part.cross[i * mp..i * mp + m];
                for (x, &y) in cross[i * m..(i + 1) * m].iter_mut().zip(src) {
                    *x += g * f64::from(y);
                }
            }
            for (x, &y) in s.iter_mut().zip(&part.s) {
                *x += g * y;
            }
            for (x, &y) in t.iter_mut().zip(&part.t) {
                *x += g * f64::from(y);
            }
        }
        let inv = 1.0 / z;
        let scale = |x: &[f64]| -> Vec<f32> { x.iter().map(|&y| (y * inv) as f32).collect() };
        let vh = scale(&cross);
        let (s, t) =
            if self.symmetric { (vec![0.0; n], vec![0.0; m]) } else { (scale(&s), scale(&t)) };
        let pad = (mp - m) as f64 * std::f64::consts::LN_2;
        let half = if self.symmetric { std::f64::consts::LN_2 } else { 0.0 };
        out.log_z = top + z.ln() + half - pad;
        let (vh, v, h) = if self.transposed { (transpose(&vh, n, m), t, s) } else { (vh, s, t) };
        for (dst, src) in [(&mut out.vh, vh), (&mut out.v, v), (&mut out.h, h)] {
            dst.clear();
            dst.extend_from_slice(&src);
        }
    }
}

/// Whether [`model_average_fast`] uses the pair trick (odd states from tables) on `m`.
#[cfg(test)]
pub(super) fn uses_pair_trick(m: &Bipartite) -> bool {
    FastNet::new(&m.net()).pair.is_some()
}

/// [`model_average_fast`], `log Z` and the ground state's `(energy, code)` run at `level`.
#[cfg(test)]
pub(super) fn run_at(m: &Bipartite, level: Level) -> (FastAverage, f64, (f64, u64)) {
    let net = m.net();
    let mut out = FastAverage::default();
    FastNet::new(&net).model_average(&mut out, level);
    let n64 = Net64::new(&net);
    (out, n64.log_z(level), n64.ground_state(level))
}

// ---------------------------------------------------------------------------------------------
// The f64 walks: `log Z` and the ground state.

/// `f64` lanes of the `log Z` and ground-state sweeps (two AVX-512 registers, eight SSE2 ones:
/// independent chains hide the latency of the additions).
const L64: usize = 16;
/// Groups of [`L64`] fields whose `1 + e` factors are multiplied in a lane before the lanes are
/// folded into one logarithm: each factor is in `[1, 2]`, so a lane stays below `2^32` and
/// the product of the lanes below `2^512`.
const PROD_GROUPS: usize = 32;
/// The `f64` walks compute their fields directly (not incrementally) every `2^WALK_ANCHOR_BITS`
/// states, so incremental rounding never accumulates over more than 1023 flips.
const WALK_ANCHOR_BITS: usize = 10;

/// `e^{−2a}` for `a ≥ 0` in `f64`, in plain arithmetic that autovectorises (no libm, no
/// branches): `y = 2a` (clamped to 700, so the result stays normal), `y = k ln 2 + r` with `k`
/// the nearest integer to `y/ln 2` (read from the low mantissa bits of `y·log₂e + 1.5·2⁵²`)
/// and `|r| ≤ 0.35` (Cody–Waite: `ln 2` split so that `k·LN2_HI` is exact), then
/// `e^{−y} = 2^{−k}·e^{−r}` with `e^{−r}` by its Taylor polynomial of degree 13 (truncation
/// below 1e−17). Measured (test `fast_exp_f64_is_accurate`): relative error ≤ 4e−16 against
/// `libm::exp` for `a ≤ 350`.
#[inline(always)]
fn exp_neg2_f64(a: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5·2⁵²
    const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
    // (−1)^k / k!, k = 0 … 13.
    const C: [f64; 14] = [
        1.0,
        -1.0,
        0.5,
        -1.0 / 6.0,
        1.0 / 24.0,
        -1.0 / 120.0,
        1.0 / 720.0,
        -1.0 / 5040.0,
        1.0 / 40_320.0,
        -1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        -1.0 / 39_916_800.0,
        1.0 / 479_001_600.0,
        -1.0 / 6_227_020_800.0,
    ];
    let y = if a < 350.0 { 2.0 * a } else { 700.0 };
    let q = y * std::f64::consts::LOG2_E + MAGIC;
    let k = q - MAGIC;
    let r = (y - k * LN2_HI) - k * LN2_LO;
    let mut p = C[13];
    for &c in C[..13].iter().rev() {
        p = p * r + c;
    }
    let kbits = q.to_bits().wrapping_sub(MAGIC.to_bits());
    p * f64::from_bits(1023u64.wrapping_sub(kbits) << 52)
}

/// `f += row` (if `UPDATE`), then the sums of one state: returns `Σ_j |f_j|` and, if
/// `LOGCOSH`, `Σ_j log(1 + e^{−2|f_j|})` (else 0), the latter as one `ln` of the product of
/// the `1 + e` factors per [`PROD_GROUPS`] groups ([`L64`] lanes). `f.len()` is a multiple of
/// [`L64`]; the padding fields are 0 and add `log 2` each with `LOGCOSH`. Three simple loops
/// (update, factors into `e`, lane reductions) so that each vectorises.
#[inline(always)]
fn sweep64<const UPDATE: bool, const LOGCOSH: bool>(
    f: &mut [f64],
    row: &[f64],
    e: &mut [f64],
) -> (f64, f64) {
    if UPDATE {
        for (x, &r) in f.iter_mut().zip(row) {
            *x += r;
        }
    }
    if LOGCOSH {
        for (y, &x) in e.iter_mut().zip(f.iter()) {
            *y = 1.0 + exp_neg2_f64(x.abs());
        }
    }
    let mut abs = [0.0f64; L64];
    for fc in f.chunks_exact(L64) {
        let fc: &[f64; L64] = fc.try_into().expect("a group of L64 values");
        each_lane!(l, {
            abs[l] += fc[l].abs();
        });
    }
    let mut ln = 0.0f64;
    if LOGCOSH {
        for eb in e.chunks(L64 * PROD_GROUPS) {
            let mut prod = [1.0f64; L64];
            for ec in eb.chunks_exact(L64) {
                let ec: &[f64; L64] = ec.try_into().expect("a group of L64 values");
                each_lane!(l, {
                    prod[l] *= ec[l];
                });
            }
            ln += prod.iter().product::<f64>().ln();
        }
    }
    (abs.iter().sum(), ln)
}

/// The ground state's `f32` walk sets its fields from `f64` ones every `2^GS_ANCHOR_BITS`
/// states (see [`Net64::gs_tol32`]).
const GS_ANCHOR_BITS: usize = 6;
/// The `f32` walk is used when `Σ|c| + Σ|d| + Σ|R|` is below this (no field or sum can then
/// overflow `f32`, whose largest value is about `3.4·10³⁸`); above, the `f64` walk.
const GS_F32_SCALE_MAX: f64 = 1e30;

/// `acc += s·row` in `f64`.
#[inline(always)]
fn add_row64(acc: &mut [f64], s: f64, row: &[f64]) {
    for (a, &r) in acc.iter_mut().zip(row) {
        *a += s * r;
    }
}

/// `f += row` (if `UPDATE`), then `Σ_j |f_j|` summed in [`LANES`] `f32` lanes (added in `f64`
/// at the end). `f.len()` is a multiple of [`LANES`].
#[inline(always)]
fn sum_abs32<const UPDATE: bool>(f: &mut [f32], row: &[f32]) -> f64 {
    let mut acc = [0.0f32; LANES];
    if UPDATE {
        for (fc, rc) in f.chunks_exact_mut(LANES).zip(row.chunks_exact(LANES)) {
            let fc: &mut [f32; LANES] = fc.try_into().expect("a group of LANES values");
            // A local copy: through the reference LLVM updates one lane at a time.
            let (mut x, rc) = (*fc, lanes(rc));
            each_lane!(l, {
                x[l] += rc[l];
                acc[l] += x[l].abs();
            });
            *fc = x;
        }
    } else {
        for fc in f.chunks_exact(LANES) {
            let fc = lanes(fc);
            each_lane!(l, {
                acc[l] += fc[l].abs();
            });
        }
    }
    acc.iter().map(|&x| f64::from(x)).sum()
}

/// The model for the `f64` walks: `r` the `n×mp` coupling (the summed side padded to a
/// multiple of [`L64`] with zeros), `two[2i + 1] = 2R_i`, `two[2i] = −2R_i`.
pub(super) struct Net64 {
    n: usize,
    m: usize,
    mp: usize,
    r: Vec<f64>,
    two: Vec<f64>,
    /// `two` rounded to `f32`, for the ground state's approximate walk.
    two32: Vec<f32>,
    c: Vec<f64>,
    d: Vec<f64>,
    symmetric: bool,
}

impl Net64 {
    pub(super) fn new<T: Copy + Into<f64>>(net: &Net<'_, T>) -> Self {
        let (nv, nh) = (net.visible, net.hidden);
        let transposed = nh < nv;
        let (n, m) = if transposed { (nh, nv) } else { (nv, nh) };
        let mp = m.div_ceil(L64) * L64;
        let mut r = vec![0.0f64; n * mp];
        let mut two = vec![0.0f64; 2 * n * mp];
        for i in 0..nv {
            for al in 0..nh {
                let x: f64 = net.w[i * nh + al].into();
                let (row, col) = if transposed { (al, i) } else { (i, al) };
                r[row * mp + col] = x;
                two[(2 * row + 1) * mp + col] = 2.0 * x;
                two[2 * row * mp + col] = -2.0 * x;
            }
        }
        let bias = |x: Option<&[T]>, len: usize| {
            x.map_or_else(|| vec![0.0; len], |x| x.iter().map(|&y| y.into()).collect())
        };
        let (mut c, mut d) = (bias(net.a, nv), bias(net.b, nh));
        if transposed {
            std::mem::swap(&mut c, &mut d);
        }
        d.resize(mp, 0.0);
        let symmetric = n > 0 && c.iter().chain(&d).all(|&x| x == 0.0);
        let two32 = two.iter().map(|&x| x as f32).collect();
        Net64 { n, m, mp, r, two, two32, c, d, symmetric }
    }

    /// `2 s R_i`, the field change when spin `i` flips to `s`.
    #[inline(always)]
    fn two_row(&self, i: usize, s: f64) -> &[f64] {
        let k = 2 * i + usize::from(s > 0.0);
        &self.two[k * self.mp..(k + 1) * self.mp]
    }

    /// Fields `f = Rᵀs + d` of the state `code`, computed directly in the oracle's order (so
    /// `f[..m]` has the oracle's bits); returns `cᵀs`.
    #[inline(always)]
    fn fields(&self, code: u64, f: &mut [f64]) -> f64 {
        f.copy_from_slice(&self.d);
        let mut cs = 0.0;
        for i in 0..self.n {
            let s = spin(code, i);
            cs += s * self.c[i];
            for (fj, &r) in f.iter_mut().zip(&self.r[i * self.mp..(i + 1) * self.mp]) {
                *fj += s * r;
            }
        }
        cs
    }

    /// The energy `−cᵀs − Σ_j |f_j|` of `code`, from direct fields, summed in order: the
    /// ground state's definition of a state's energy.
    #[inline(always)]
    fn direct_energy(&self, code: u64, f: &mut [f64]) -> f64 {
        let cs = self.fields(code, f);
        -cs - f[..self.m].iter().map(|x| x.abs()).sum::<f64>()
    }

    /// The enumeration: all states, or without biases the half with the last spin `+1`.
    fn plan(&self) -> Plan {
        if self.symmetric {
            Plan::new(self.n - 1, 1 << (self.n - 1))
        } else {
            Plan::new(self.n, 0)
        }
    }

    /// Walks chunk `chunk` of `plan` in Gray order with fields anchored every
    /// `2^WALK_ANCHOR_BITS` states, calling `visit(code, cᵀs, Σ|f|, Σ log(1 + e^{−2|f|}))`
    /// (the last 0 unless `LOGCOSH`; `cᵀs` is incremental between anchors).
    #[inline(always)]
    fn walk<const LOGCOSH: bool>(
        &self,
        plan: Plan,
        chunk: usize,
        mut visit: impl FnMut(u64, f64, f64, f64),
    ) {
        let mut f = vec![0.0f64; self.mp];
        let mut e = vec![0.0f64; if LOGCOSH { self.mp } else { 0 }];
        let mut code = plan.start(chunk);
        let mut cs = 0.0;
        for j in 0..1u64 << plan.local {
            let i = j.trailing_zeros() as usize;
            if j > 0 {
                code ^= 1 << i;
            }
            let (abs, ln) = if j & ((1 << WALK_ANCHOR_BITS) - 1) == 0 {
                cs = self.fields(code, &mut f);
                sweep64::<false, LOGCOSH>(&mut f, &[], &mut e)
            } else {
                let s = spin(code, i);
                cs += 2.0 * s * self.c[i];
                sweep64::<true, LOGCOSH>(&mut f, self.two_row(i, s), &mut e)
            };
            visit(code, cs, abs, ln);
        }
    }

    /// The ground state's approximate walk of chunk `chunk` of `plan`, in `f32`: calls
    /// `visit(code, cᵀs, Σ_j |f_j|)` for every state in Gray order. `cᵀs` is `f64`
    /// (incremental); the fields are `f32`, set every `2^GS_ANCHOR_BITS` states from `f64`
    /// fields (the high spins' part incremental in `f64` over the chunk, the low spins' part
    /// one of two precomputed rows) and updated in between by the `f32` rows `±2R_i`; `Σ|f_j|`
    /// is summed in [`LANES`] `f32` lanes. [`Net64::gs_tol32`] bounds its error.
    #[inline(always)]
    fn walk32(&self, plan: Plan, chunk: usize, mut visit: impl FnMut(u64, f64, f64)) {
        let (n, mp) = (self.n, self.mp);
        let lo = GS_ANCHOR_BITS.min(plan.local);
        let mut code = plan.start(chunk);
        // `high = d + Σ_{i ≥ lo} s_i R_i`, and the two possible `Σ_{i < lo} s_i R_i` at the
        // start of an anchor block (the Gray code has its low `lo` bits clear there, except
        // perhaps bit `lo − 1`).
        let mut high = self.d.clone();
        let mut cs = 0.0;
        for i in 0..n {
            let s = spin(code, i);
            cs += s * self.c[i];
            if i >= lo {
                add_row64(&mut high, s, &self.r[i * mp..(i + 1) * mp]);
            }
        }
        let mut low = [vec![0.0f64; mp], vec![0.0f64; mp]];
        for (k, acc) in low.iter_mut().enumerate() {
            for i in 0..lo {
                let s = if i + 1 == lo && k == 1 { 1.0 } else { -1.0 };
                add_row64(acc, s, &self.r[i * mp..(i + 1) * mp]);
            }
        }
        let mut f = vec![0.0f32; mp];
        for j in 0..1u64 << plan.local {
            let i = j.trailing_zeros() as usize;
            if j > 0 {
                code ^= 1 << i;
                cs += 2.0 * spin(code, i) * self.c[i];
            }
            let abs = if j & ((1 << lo) - 1) == 0 {
                if j > 0 {
                    // Spin `i ≥ lo` flipped: `2 s R_i` moves to the high fields.
                    add_row64(&mut high, 1.0, self.two_row(i, spin(code, i)));
                }
                debug_assert!(lo == 0 || code & ((1u64 << (lo - 1)) - 1) == 0);
                let low = &low[usize::from(lo > 0 && (code >> (lo - 1)) & 1 == 1)];
                for (fj, (&h, &l)) in f.iter_mut().zip(high.iter().zip(low)) {
                    *fj = (h + l) as f32;
                }
                sum_abs32::<false>(&mut f, &[])
            } else {
                let k = 2 * i + usize::from(spin(code, i) > 0.0);
                sum_abs32::<true>(&mut f, &self.two32[k * mp..(k + 1) * mp])
            };
            visit(code, cs, abs);
        }
    }

    /// A bound on `|approximate − direct energy|` for [`Net64::walk32`] against
    /// [`Net64::direct_energy`], given `scale = Σ|c| + Σ|d| + Σ|R|` (which bounds every
    /// `M_j = |d_j| + Σ_i |R_ij| ≥ |f_j|` and their sum). With `u = 2⁻²⁴` the unit roundoff
    /// of `f32`: a field is rounded once to `f32` at an anchor (`u·M_j`, after the `f64`
    /// rounding of its parts: `(n + 2^(local − anchor bits) + 2)·2⁻⁵³·M_j`) and then
    /// takes at most `2^GS_ANCHOR_BITS − 1` updates, each adding a row rounded to `f32`
    /// (`2u·|R_ij| ≤ 2u·M_j`) and rounding the sum (`u·(1 + 1%)·M_j`); the `|f_j|` are summed
    /// in lanes of at most `⌈mp/LANES⌉` terms (`⌈mp/LANES⌉·u·(1 + 1%)·Σ M_j`); `cᵀs` is an
    /// `f64` sum over at most `n + 2^local` flips. The direct energy's own rounding is the
    /// `f64` bound of the ground state. Twice the sum, to spare.
    fn gs_tol32(&self, plan: Plan, scale: f64) -> f64 {
        let u = f64::from(f32::EPSILON) / 2.0;
        let lo = GS_ANCHOR_BITS.min(plan.local);
        let updates = ((1u64 << lo) - 1) as f64;
        let lanes = self.mp.div_ceil(LANES) as f64;
        let high = (self.n as f64 + (1u64 << (plan.local - lo)) as f64 + 2.0) * f64::EPSILON;
        let fields = u * (1.0 + updates * 3.1) * 1.01 + lanes * u * 1.01 + high;
        let cs = (self.n as f64 + (1u64 << plan.local) as f64 + 2.0) * f64::EPSILON;
        2.0 * (fields + cs) * scale
    }

    /// `log Z` (see [`super::log_z`]).
    pub(super) fn log_z(&self, level: Level) -> f64 {
        let plan = self.plan();
        let pad = (self.mp - self.m) as f64 * std::f64::consts::LN_2;
        let parts: Vec<Lse> = (0..plan.chunks())
            .into_par_iter()
            .map(|k| {
                level.run(
                    #[inline(always)]
                    || {
                        let mut acc = Lse::EMPTY;
                        self.walk::<true>(plan, k, |_, cs, abs, ln| acc.push(cs + abs + ln));
                        acc
                    },
                )
            })
            .collect();
        let half = if self.symmetric { std::f64::consts::LN_2 } else { 0.0 };
        parts.into_iter().fold(Lse::EMPTY, Lse::merge).ln() + half - pad
    }

    /// The position of a state in the full enumeration order (`Plan::new(n, 0)`); without
    /// biases a walked state `s` stands for `−s`, which comes first in that order.
    fn order(&self, code: u64) -> u64 {
        inverse_gray(self.representative(code))
    }

    /// The state reported for the walked `code`: itself, or `−s` without biases.
    fn representative(&self, code: u64) -> u64 {
        if self.symmetric {
            code ^ ((1u64 << self.n) - 1)
        } else {
            code
        }
    }

    /// The ground state (see [`super::ground_state`]): `(energy, code)`.
    pub(super) fn ground_state(&self, level: Level) -> (f64, u64) {
        // |approximate − direct energy| ≤ tol: the fields are sums of at most n + 1023 terms
        // bounded by M_j = |d_j| + Σ_i |R_ij|, and the energies sums of n + m terms, each with
        // a rounding error below ε = 2⁻⁵²; a factor 4 to spare.
        let scale: f64 = self.c.iter().map(|x| x.abs()).sum::<f64>()
            + self.d.iter().map(|x| x.abs()).sum::<f64>()
            + self.r.iter().map(|x| x.abs()).sum::<f64>();
        let terms = (2 * (self.n + self.m) + (1 << WALK_ANCHOR_BITS) + 8) as f64;
        let tol = 4.0 * terms * f64::EPSILON * scale;
        let plan = self.plan();
        // The `f32` walk (twice the lanes of `f64`) where its fields cannot overflow.
        let tol32 = (scale < GS_F32_SCALE_MAX).then(|| tol + self.gs_tol32(plan, scale));
        let parts: Vec<(f64, u64)> = (0..plan.chunks())
            .into_par_iter()
            .map(|k| {
                level.run(
                    #[inline(always)]
                    || {
                        let mut direct = vec![0.0f64; self.mp];
                        // (energy, order, code)
                        let start = plan.start(k);
                        let mut best = (f64::INFINITY, self.order(start), start);
                        let mut visit = |code: u64, approx: f64, tol: f64| {
                            if approx <= best.0 + tol {
                                let e = self.direct_energy(code, &mut direct);
                                let order = self.order(code);
                                if e < best.0 || (e == best.0 && order < best.1) {
                                    best = (e, order, code);
                                }
                            }
                        };
                        match tol32 {
                            Some(t) => {
                                self.walk32(plan, k, |code, cs, abs| visit(code, -cs - abs, t))
                            }
                            None => self.walk::<false>(plan, k, |code, cs, abs, _| {
                                visit(code, -cs - abs, tol);
                            }),
                        }
                        (best.0, best.1)
                    },
                )
            })
            .collect();
        let mut best = parts[0];
        for &p in &parts[1..] {
            if p.0 < best.0 || (p.0 == best.0 && p.1 < best.1) {
                best = p;
            }
        }
        (best.0, gray_code(best.1))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{bip, random_model};
    use super::*;

    /// The ground state's `f32` walk stays within [`Net64::gs_tol32`] of the direct energy of
    /// every state (the bound that makes the ground state exact), on models whose couplings
    /// span six orders of magnitude, with and without biases, on either side.
    #[test]
    fn f32_walk_is_within_its_bound() {
        let mut worst = 0.0f64;
        for (seed, &(nv, nh, biases)) in
            [(12, 300, false), (11, 40, true), (40, 9, true), (15, 1000, false)].iter().enumerate()
        {
            let (mut w, a, b) = random_model(nv, nh, 1.0, 2.0, 300 + seed as u64);
            for (k, x) in w.iter_mut().enumerate() {
                *x *= 10f32.powi((k * 7919 % 7) as i32 - 3);
            }
            let m = bip(nv, nh, &w, &a, &b, biases);
            let net = Net64::new(&m.net());
            let scale: f64 =
                [&net.c, &net.d, &net.r].iter().flat_map(|x| x.iter()).map(|x| x.abs()).sum();
            let plan = net.plan();
            let tol = net.gs_tol32(plan, scale);
            let mut direct = vec![0.0f64; net.mp];
            for k in [0, plan.chunks() - 1] {
                net.walk32(plan, k, |code, cs, abs| {
                    let e = net.direct_energy(code, &mut direct);
                    let err = (-cs - abs - e).abs();
                    worst = worst.max(err / tol);
                    assert!(err <= tol, "{nv}x{nh}: error {err:e} above the bound {tol:e}");
                });
            }
        }
        eprintln!("f32 ground-state walk: worst error {worst:.3} of the bound");
    }

    /// States whose energies differ by less than the `f32` walk resolves (a coarse grid of
    /// couplings, full of exact ties; the zero couplings nudged by at most 1e−9, which the `f32`
    /// fields lose and the `f64` ones keep): the ground state is still the oracle's, to the bit.
    /// (With no tolerance for the walk's error this test fails.)
    #[test]
    fn ground_state_resolves_differences_below_f32_precision() {
        for (seed, &(nv, nh)) in [(10, 200), (11, 11), (14, 60), (60, 9)].iter().enumerate() {
            let grid = |k: usize| ((k * 7 + seed * 3) % 5) as f32 * 0.5 - 1.0;
            let nudge = |k: usize| ((k * 2_654_435_761) % 1000) as f32 * 1e-12;
            // Each row on the grid (every column the same: large groups of tied states).
            let w: Vec<f32> = (0..nv * nh).map(|k| grid(k / nh) + nudge(k)).collect();
            let a: Vec<f32> = (0..nv).map(|k| grid(k + 2) + nudge(k + 7)).collect();
            let b: Vec<f32> = (0..nh).map(|k| grid(k + 4) + nudge(k + 11)).collect();
            for biases in [false, true] {
                let m = bip(nv, nh, &w, &a, &b, biases);
                let got = super::super::ground_state(&m).unwrap();
                let want = super::super::oracle::ground_state_oracle(&m).unwrap();
                assert_eq!(got.energy.to_bits(), want.energy.to_bits(), "{nv}x{nh} {biases}");
            }
        }
    }

    #[test]
    fn fast_exp_f64_is_accurate() {
        let mut worst = 0.0f64;
        let n = 2_000_000;
        for k in 0..=n {
            let a = 350.0 * k as f64 / n as f64;
            let want = (-2.0 * a).exp();
            let rel = (exp_neg2_f64(a) - want).abs() / want;
            worst = worst.max(rel);
        }
        eprintln!("exp_neg2_f64: max relative error {worst:.2e}");
        assert!(worst < 5e-16, "{worst:e}");
        assert_eq!(exp_neg2_f64(0.0), 1.0);
        let e = exp_neg2_f64(f64::INFINITY);
        assert!(e.is_normal() && (e / (-700.0f64).exp() - 1.0).abs() < 1e-15);
    }

    #[test]
    fn fast_exp_is_accurate() {
        // (max absolute error, max relative error for a ≤ 1/2, for a ≤ 4, for a ≤ 30)
        let mut err = [0.0f64; 4];
        let n = 3_000_000;
        for k in 0..=n {
            let a = 30.0 * k as f32 / n as f32;
            let want = (-2.0 * f64::from(a)).exp();
            let got = f64::from(exp_neg2(a));
            let rel = (got - want).abs() / want;
            err[0] = err[0].max((got - want).abs());
            for (e, bound) in err[1..].iter_mut().zip([0.5, 4.0, 30.0]) {
                if a <= bound {
                    *e = e.max(rel);
                }
            }
        }
        let shown: Vec<String> = err.iter().map(|e| format!("{e:.2e}")).collect();
        eprintln!("exp_neg2 errors: abs, rel (a ≤ 1/2, 4, 30): {shown:?}");
        assert!(err[0] < 1.5e-7, "{err:?}");
        assert!(err[1] < 2.5e-7, "{err:?}");
        assert!(err[2] < 7e-7, "{err:?}");
        assert!(err[3] < 5e-6, "{err:?}");
        assert_eq!(exp_neg2(0.0), 1.0);
        // Clamped: e^{−60}, a normal number.
        for a in [30.0f32, 31.0, 1e30, f32::INFINITY] {
            let e = exp_neg2(a);
            assert!(e.is_normal() && (f64::from(e) / (-60.0f64).exp() - 1.0).abs() < 1e-5);
        }
    }
}
