//! x86-64 AVX2 and AVX-512 kernels. The only `unsafe` code of the crate lives here: SIMD
//! intrinsics and calls into `#[target_feature]` functions, each entered only after the level
//! was checked with [`Isa::available`]. A leaf called by the dispatcher (the parent module)
//! and by `peak` (the FMA-peak loops) only: it builds on `gemm`, `bulk`, `isa` and the
//! constants of `peak`, and never calls back into the dispatcher.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

#[cfg(test)]
use super::bulk::sample_pm1_with;
use super::bulk::{draw16, map_scalar, Lanes, LANES};
use super::gemm::{
    add_tile, gemm_pack_len, gemm_scalar, pack_a, pack_b, prepacked_b_len, use_direct, Epilogue,
    MatRef, KC, MC, NC,
};
use super::isa::Isa;
use super::peak;

/// A micro-kernel: the `MR × NR` product `P` of an `A` panel (`kc·MR`) and a `B` panel
/// (`kc·NR`). With `Some(tile_c)` it finishes the full tile at the start of `tile_c.c`
/// ([`TileC`]); with `None` it writes `P` into `tile` (row-major, `NR` per row).
type MicroKernel = unsafe fn(usize, &[f32], &[f32], Option<TileC<'_>>, &mut [f32; TILE]);

/// The full `MR × NR` tile of `C` at the start of `c` (row stride `ldc`) that a micro-kernel
/// finishes with its product `P`: each entry becomes `fma(alpha, P, c)`, with `c` read from
/// memory, or with `set` a zero register instead (the bits of a zero-filled `C`, signed zeros
/// included, as it is the same operation on `+0.0`).
struct TileC<'a> {
    c: &'a mut [f32],
    ldc: usize,
    alpha: f32,
    set: bool,
}

/// Largest `MR·NR` of the levels.
const TILE: usize = 8 * 32;

/// `C += α·A·B` at a SIMD level, for the dispatcher's `gemm_impl` (which checked the views,
/// `ldc` and the length of `c`, and returns early on empty products). An `epilogue` other
/// than [`Epilogue::Add`] is for products that take the packed driver ([`takes_driver`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    (a, b): (MatRef<'_>, MatRef<'_>),
    (c, ldc): (&mut [f32], usize),
    (pack, packed_b): (&mut [f32], Option<&[f32]>),
    epilogue: Epilogue,
) {
    assert!(isa.available(), "the {} kernels need CPU support", isa.name());
    assert!(
        epilogue == Epilogue::Add || takes_driver(isa, m, n, k, a, b),
        "only the packed driver writes an epilogue"
    );
    if isa == Isa::Avx512 && b.cs == 1 && (1..=SKINNY_MAX_K).contains(&k) && n >= 16 {
        // SAFETY (every arm): the level was checked just above and the caller (`gemm_with`)
        // bounds-checked the views and `c`.
        match k {
            1 => unsafe { skinny_avx512::<1>(m, n, alpha, a, b, c, ldc) },
            2 => unsafe { skinny_avx512::<2>(m, n, alpha, a, b, c, ldc) },
            3 => unsafe { skinny_avx512::<3>(m, n, alpha, a, b, c, ldc) },
            4 => unsafe { skinny_avx512::<4>(m, n, alpha, a, b, c, ldc) },
            5 => unsafe { skinny_avx512::<5>(m, n, alpha, a, b, c, ldc) },
            6 => unsafe { skinny_avx512::<6>(m, n, alpha, a, b, c, ldc) },
            7 => unsafe { skinny_avx512::<7>(m, n, alpha, a, b, c, ldc) },
            8 => unsafe { skinny_avx512::<8>(m, n, alpha, a, b, c, ldc) },
            9 => unsafe { skinny_avx512::<9>(m, n, alpha, a, b, c, ldc) },
            10 => unsafe { skinny_avx512::<10>(m, n, alpha, a, b, c, ldc) },
            11 => unsafe { skinny_avx512::<11>(m, n, alpha, a, b, c, ldc) },
            _ => unsafe { skinny_avx512::<12>(m, n, alpha, a, b, c, ldc) },
        }
        return;
    }
    if isa == Isa::Avx512 && a.cs == 1 && b.rs == 1 && n <= DOT_MAX_N && k >= 16 {
        let (a, b) = ((a.data, a.rs), (b.data, b.cs));
        // SAFETY: as above.
        unsafe { dot_driver_avx512(m, n, k, alpha, a, b, c, ldc) };
        return;
    }
    if use_direct(m, n, k) {
        match isa {
            // SAFETY: the level was checked just above.
            Isa::Avx512 => unsafe { direct_avx512(m, n, k, alpha, a, b, c, ldc) },
            // SAFETY: as above.
            Isa::Avx2 => unsafe { direct_avx2(m, n, k, alpha, a, b, c, ldc) },
            Isa::Scalar => unreachable!("scalar gemm does not come here"),
        }
        return;
    }
    if isa == Isa::Avx512 && a.cs == 1 && b.rs == 1 && n <= DOT_MAX_N {
        let (a, b) = ((a.data, a.rs), (b.data, b.cs));
        // SAFETY: the level was checked just above; the views were bounds-checked by the
        // caller (`gemm_with`).
        unsafe { dot_driver_avx512(m, n, k, alpha, a, b, c, ldc) };
        return;
    }
    debug_assert!(takes_driver(isa, m, n, k, a, b));
    assert!(pack.len() >= gemm_pack_len(isa), "gemm pack buffer shorter than gemm_pack_len");
    if let Some(pb) = packed_b {
        assert!(pb.len() >= prepacked_b_len(isa, k, n), "prepacked B shorter than its length");
    }
    let kernels = (pack, packed_b);
    let (c, ops) = ((c, ldc, epilogue), (a, b));
    match isa {
        Isa::Avx512 => driver::<8, 32>(m, n, k, alpha, ops, c, kernels, kernel_avx512),
        Isa::Avx2 => driver::<6, 16>(m, n, k, alpha, ops, c, kernels, kernel_avx2),
        Isa::Scalar => unreachable!("scalar gemm does not pack"),
    }
}

/// Whether [`gemm`] at level `isa` runs the product `m × n × k` with these layouts through the
/// packed driver (the path that packs `B`, and reads a prepacked `B` instead when given one).
/// Only the strides of the views matter.
pub(super) fn takes_driver(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_>,
    b: MatRef<'_>,
) -> bool {
    let skinny = isa == Isa::Avx512 && b.cs == 1 && (1..=SKINNY_MAX_K).contains(&k) && n >= 16;
    let dot = isa == Isa::Avx512 && a.cs == 1 && b.rs == 1 && n <= DOT_MAX_N;
    isa != Isa::Scalar && !skinny && !dot && !use_direct(m, n, k)
}

/// Packs all of `B` (`k × n`) for [`gemm`]'s packed driver at level `isa`, every `KC × NC`
/// block as the driver would pack it, block `(j0, p0)` at `j0·k + p0·ncp` with `ncp` the
/// block's columns rounded up to `NR` ([`prepacked_b_len`] entries). A product that takes the
/// driver reads this instead of packing `B` again: the same bits, less work when one `B`
/// serves many products.
pub(super) fn prepack_b(isa: Isa, k: usize, n: usize, b: MatRef<'_>, out: &mut [f32]) {
    assert!(isa.available(), "the {} kernels need CPU support", isa.name());
    b.check(k, n, "B");
    assert!(out.len() >= prepacked_b_len(isa, k, n), "prepacked B buffer too short");
    match isa {
        Isa::Avx512 => prepack_blocks::<32>(k, n, b, out),
        Isa::Avx2 => prepack_blocks::<16>(k, n, b, out),
        Isa::Scalar => {}
    }
}

/// The blocks of [`prepack_b`] for panels of `NR` columns.
fn prepack_blocks<const NR: usize>(k: usize, n: usize, b: MatRef<'_>, out: &mut [f32]) {
    for j0 in (0..n).step_by(NC) {
        let nc = NC.min(n - j0);
        let ncp = nc.div_ceil(NR) * NR;
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            let at = j0 * k + p0 * ncp;
            // SAFETY: `prepack_b` checked the level; both SIMD levels run AVX2.
            unsafe { pack_b_avx2::<NR>(b, p0, kc, j0, nc, &mut out[at..at + ncp * kc]) };
        }
    }
}

/// Applies `f` to every entry with the level's vector width.
#[inline(always)]
pub(super) fn map_in_place<F: Fn(f32) -> f32>(isa: Isa, x: &mut [f32], f: F) {
    assert!(isa.available(), "the {} kernels need CPU support", isa.name());
    match isa {
        // SAFETY: the level was checked just above.
        Isa::Avx512 => unsafe { map_avx512(x, f) },
        // SAFETY: as above.
        Isa::Avx2 => unsafe { map_avx2(x, f) },
        Isa::Scalar => unreachable!("scalar maps do not come here"),
    }
}

/// # Safety
/// The CPU must support AVX-512F/BW/VL, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
unsafe fn map_avx512<F: Fn(f32) -> f32>(x: &mut [f32], f: F) {
    map_scalar(x, f);
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn map_avx2<F: Fn(f32) -> f32>(x: &mut [f32], f: F) {
    map_scalar(x, f);
}

/// `rounds` rounds of the register-only FMA loop of [`super::peak`] at a SIMD level; the sum
/// of the final lanes.
pub(super) fn fma_rounds(isa: Isa, rounds: u64) -> f32 {
    assert!(isa.available(), "the {} kernels need CPU support", isa.name());
    match isa {
        // SAFETY: the level was checked just above.
        Isa::Avx512 => unsafe { fma_rounds_avx512(rounds) },
        // SAFETY: as above.
        Isa::Avx2 => unsafe { fma_rounds_avx2(rounds) },
        Isa::Scalar => unreachable!("the scalar level has no FMA loop"),
    }
}

/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn fma_rounds_avx512(rounds: u64) -> f32 {
    let (a, b) = (_mm512_set1_ps(peak::A), _mm512_set1_ps(peak::B));
    let mut acc = [_mm512_setzero_ps(); peak::AVX512_CHAINS];
    for _ in 0..rounds {
        for r in acc.iter_mut() {
            *r = _mm512_fmadd_ps(*r, a, b);
        }
    }
    let mut s = acc[0];
    for &r in &acc[1..] {
        s = _mm512_add_ps(s, r);
    }
    _mm512_reduce_add_ps(s)
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_rounds_avx2(rounds: u64) -> f32 {
    let (a, b) = (_mm256_set1_ps(peak::A), _mm256_set1_ps(peak::B));
    let mut acc = [_mm256_setzero_ps(); peak::AVX2_CHAINS];
    for _ in 0..rounds {
        for r in acc.iter_mut() {
            *r = _mm256_fmadd_ps(*r, a, b);
        }
    }
    let mut s = acc[0];
    for &r in &acc[1..] {
        s = _mm256_add_ps(s, r);
    }
    let q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
    let q = _mm_hadd_ps(q, q);
    _mm_cvtss_f32(_mm_hadd_ps(q, q))
}

/// The bulk spin draws ([`super::bulk`]'s generator and rule) at a SIMD level, bit for bit.
///
/// # A cheap test with an exact fallback
/// Lane `l` of a chunk has a field `x`, a word `w` and `m = w >> 8`, `u = m·2⁻²⁴`; the rule is
/// `+1` iff `fl(u·fl(1 + E)) < 1` with `E = exp_fast(−2x)`. Both levels first evaluate
///
/// ```text
/// y = fl(−2·log₂e · x),  n = round(y),  f = y − n ∈ [−½, ½],  e′ = p(f)·2ⁿ,  Q = fl(m·e′ + m)
/// ```
///
/// with `p` the degree-3 relative-minimax fit of `2^f` ([`EXP2_P`], fused multiply-adds), and
/// decide `+1` if `Q < 2²⁴(1 − δ)`, `−1` if `Q > 2²⁴(1 + δ)`, with `δ = 2⁻¹³` ([`DRAW_DELTA`]).
/// A chunk with any other lane (between the two, or `Q` NaN) is redrawn by the exact rule
/// (`draw16`, the scalar loop), so every level gives the scalar level's bits.
///
/// Why the two definite answers are the rule's (`ρ`, `δ` below are checked by the tests):
/// 1. The rule. `a = fl(1 + E) = (1 + E)(1 + η₁)`, `|η₁| ≤ 2⁻²⁴`, and `fl(u·a) < 1` iff
///    `u·a < 1 − 2⁻²⁵` (values in `[1 − 2⁻²⁵, 1)` round to 1). Hence
///    `m(1 + E) ≤ 2²⁴(1 − 2⁻²²)` gives `+1` (`u·a ≤ (1 − 2⁻²²)(1 + 2⁻²⁴) < 1 − 2⁻²⁵`) and
///    `m(1 + E) ≥ 2²⁴(1 + 2⁻²⁴)` gives `−1` (`u·a ≥ (1 + 2⁻²⁴)(1 − 2⁻²⁴) > 1 − 2⁻²⁵`).
/// 2. `|2x| ≤ 17` (no clamping in `exp_fast`, no overflow or subnormals here):
///    `e′ = E(1 + θ)` with `|θ| ≤ ρ = 8·10⁻⁵`: the fit's error `7.5·10⁻⁵` (with the f32
///    evaluation of `p`), the rounding of `y` (`|y| ≤ 24.6`, so `≤ 2·10⁻⁶` in `2^y`), and
///    `exp_fast`'s `4·10⁻⁷`. Then `(1 + E)/(1 + e′) ∈ [1/(1 + ρ), 1/(1 − ρ)]`, and with
///    `Q = m(1 + e′)(1 + η₂)` (one rounding, `|η₂| ≤ 2⁻²⁴`):
///    `Q < 2²⁴(1 − δ)` ⇒ `m(1 + E) < 2²⁴(1 − δ)/((1 − ρ)(1 − 2⁻²⁴)) ≤ 2²⁴(1 − 2⁻²²)` and
///    `Q > 2²⁴(1 + δ)` ⇒ `m(1 + E) > 2²⁴(1 + δ)/((1 + ρ)(1 + 2⁻²⁴)) ≥ 2²⁴(1 + 2⁻²⁴)`, both
///    because `δ ≥ ρ + 2⁻²¹`.
/// 3. `2x < −17`: `E` and `e′` both exceed `e¹⁷(1 − ρ) > 1.4·2²⁴` (or `e′ = ∞`), so for
///    `m ≥ 1` both the rule and `Q > 2²⁴(1 + δ)` say `−1`; for `m = 0` the rule says `+1` and
///    `Q` is `0` (`+1`) or NaN (`∞·0`: fallback).
/// 4. `2x > 17`: `E < 2⁻²⁴`, so `fl(1 + E) = 1` and the rule says `+1` for every `m`; `e′ <
///    2⁻²⁴` too, so `Q ≤ fl((2²⁴ − 1)(1 + 2⁻²⁴)) = 2²⁴`: never `−1`.
/// 5. NaN and ±∞ fields give a NaN `f` or `e′` (`∞ − ∞`, NaN in, NaN out) unless case 3 or 4
///    applies with a finite `e′` (the AVX2 level clamps `y`); a NaN `Q` goes to the fallback.
///
/// A lane is undecided with probability at most about `2δ = 2.4·10⁻⁴` whatever its field
/// (`m` uniform, the undecided band of `m` has width `2δ·2²⁴/(1 + e′)`), so about 0.4 % of
/// the chunks take the fallback.
pub(super) fn sample_pm1(isa: Isa, x: &mut [f32], lanes: &mut Lanes) {
    assert!(isa.available(), "the {} kernels need CPU support", isa.name());
    match isa {
        // SAFETY: the level was checked just above.
        Isa::Avx512 => unsafe { sample_pm1_avx512(x, lanes) },
        // SAFETY: as above.
        Isa::Avx2 => unsafe { sample_pm1_avx2(x, lanes) },
        Isa::Scalar => unreachable!("scalar draws do not come here"),
    }
}

/// The margin `δ` of the cheap test (see [`sample_pm1`]).
pub(super) const DRAW_DELTA: f32 = 1.0 / 8192.0;
/// `2²⁴(1 − δ)`: below it a lane is `+1` (exact in f32).
pub(super) const DRAW_LO: f32 = 16_777_216.0 * (1.0 - DRAW_DELTA);
/// `2²⁴(1 + δ)`: above it a lane is `−1` (exact in f32).
pub(super) const DRAW_HI: f32 = 16_777_216.0 * (1.0 + DRAW_DELTA);
/// `−2·log₂e`: `y = −2x·log₂e` and `e^{−2x} = 2^y`.
const NEG2_LOG2E: f32 = -2.0 * core::f32::consts::LOG2_E;
/// `p(f) = c₀ + c₁f + c₂f² + c₃f³ ≈ 2^f` on `[−½, ½]`, relative error ≤ 7.5·10⁻⁵ (a
/// relative-minimax fit, rounded to f32 and evaluated with fused multiply-adds).
const EXP2_P: [f32; 4] = [0.999_928_06, 0.693_260_97, 0.242_611_17, 0.055_171_665];
/// The AVX2 level clamps `y` to `±DRAW_Y_MAX` (case 3 and 4 of [`sample_pm1`] still hold:
/// `2³⁰ > 1.4·2²⁴`, `2⁻³⁰ < 2⁻²⁴`) so that `2ⁿ` can be built from exponent bits.
const DRAW_Y_MAX: f32 = 30.0;

/// `(e′, Q)` of [`sample_pm1`] for sixteen lanes (AVX-512: `vscalefps` applies `2ⁿ`, giving
/// `∞` or `0` outside the normal range, so no clamp is needed).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
fn cheap_avx512(x: __m512, bits: __m512i) -> (__m512, __m512) {
    let y = _mm512_mul_ps(x, _mm512_set1_ps(NEG2_LOG2E));
    let n = avx512_ops::round(y);
    let f = _mm512_sub_ps(y, n);
    let c = |i: usize| _mm512_set1_ps(EXP2_P[i]);
    let p = _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_fmadd_ps(c(3), f, c(2)), f, c(1)), f, c(0));
    let e = avx512_ops::scalef(p, n);
    let m = _mm512_cvtepi32_ps(_mm512_srli_epi32::<8>(bits));
    (e, _mm512_fmadd_ps(m, e, m))
}

/// The AVX-512 instructions of the draws that Miri cannot interpret (`vrndscaleps`,
/// `vscalefps`, `vcmpps`), and under Miri the same operations lane by lane, so that Miri still
/// checks the loads and stores around them.
mod avx512_ops {
    #[cfg(not(miri))]
    use core::arch::x86_64::*;
    #[cfg(miri)]
    pub(super) use miri::*;

    /// Each lane rounded to the nearest integer (ties to even).
    #[cfg(not(miri))]
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn round(y: __m512) -> __m512 {
        _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(y)
    }

    /// `p·2ⁿ` for an integral `n` (`∞` or `0` beyond the range, NaN for a NaN operand).
    #[cfg(not(miri))]
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn scalef(p: __m512, n: __m512) -> __m512 {
        _mm512_scalef_ps(p, n)
    }

    /// The lanes where `!(a > b)` (NaN included).
    #[cfg(not(miri))]
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn not_greater(a: __m512, b: __m512) -> __mmask16 {
        _mm512_cmp_ps_mask::<_CMP_NGT_UQ>(a, b)
    }

    /// The lanes of `k` where `!(a < b)` (NaN included).
    #[cfg(not(miri))]
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn mask_not_less(k: __mmask16, a: __m512, b: __m512) -> __mmask16 {
        _mm512_mask_cmp_ps_mask::<_CMP_NLT_UQ>(k, a, b)
    }

    #[cfg(miri)]
    mod miri {
        use core::arch::x86_64::*;

        fn lanes(v: __m512) -> [f32; 16] {
            let mut a = [0.0f32; 16];
            // SAFETY: sixteen lanes into a sixteen-entry array (AVX-512F is enabled for Miri).
            unsafe { _mm512_storeu_ps(a.as_mut_ptr(), v) };
            a
        }

        fn vector(a: [f32; 16]) -> __m512 {
            // SAFETY: as above.
            unsafe { _mm512_loadu_ps(a.as_ptr()) }
        }

        fn mask(f: impl Fn(usize) -> bool) -> __mmask16 {
            (0..16).filter(|&l| f(l)).fold(0, |k, l| k | 1 << l)
        }

        pub(in super::super) fn round(y: __m512) -> __m512 {
            vector(lanes(y).map(libm::rintf))
        }

        pub(in super::super) fn scalef(p: __m512, n: __m512) -> __m512 {
            let (p, n) = (lanes(p), lanes(n));
            vector(core::array::from_fn(|l| {
                if n[l].is_nan() {
                    f32::NAN
                } else {
                    libm::scalbnf(p[l], n[l].clamp(-300.0, 300.0) as i32)
                }
            }))
        }

        pub(in super::super) fn not_greater(a: __m512, b: __m512) -> __mmask16 {
            let (a, b) = (lanes(a), lanes(b));
            mask(|l| !(a[l] > b[l]))
        }

        pub(in super::super) fn mask_not_less(k: __mmask16, a: __m512, b: __m512) -> __mmask16 {
            let (a, b) = (lanes(a), lanes(b));
            mask(|l| k >> l & 1 == 1 && !(a[l] < b[l]))
        }
    }
}

/// The next sixteen xoshiro128++ outputs from the state in `s` (as `Lanes::next16`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
fn xoshiro_avx512(s: &mut [__m512i; 4]) -> __m512i {
    let [a0, a1, a2, a3] = *s;
    let out = _mm512_add_epi32(_mm512_rol_epi32::<7>(_mm512_add_epi32(a0, a3)), a0);
    let t = _mm512_slli_epi32::<9>(a1);
    let x31 = _mm512_xor_si512(a3, a1);
    // 0x96 is the three-way xor.
    *s = [
        _mm512_xor_si512(a0, x31),
        _mm512_ternarylogic_epi32::<0x96>(a1, a2, a0),
        _mm512_ternarylogic_epi32::<0x96>(a2, a0, t),
        _mm512_rol_epi32::<11>(x31),
    ];
    out
}

/// One chunk of sixteen draws at AVX-512: the cheap test, else the exact rule.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
fn draw16_avx512(x: &mut [f32; LANES], bits: __m512i) {
    // SAFETY: sixteen lanes of a sixteen-entry array.
    let xv = unsafe { _mm512_loadu_ps(x.as_ptr()) };
    let (_, q) = cheap_avx512(xv, bits);
    // Lanes that are not a definite −1 (NaN included), and among them those not a definite +1.
    let not_minus = avx512_ops::not_greater(q, _mm512_set1_ps(DRAW_HI));
    let undecided = avx512_ops::mask_not_less(not_minus, q, _mm512_set1_ps(DRAW_LO));
    if undecided == 0 {
        let s = _mm512_mask_blend_ps(not_minus, _mm512_set1_ps(-1.0), _mm512_set1_ps(1.0));
        // SAFETY: as above.
        unsafe { _mm512_storeu_ps(x.as_mut_ptr(), s) };
    } else {
        let mut w = [0u32; LANES];
        // SAFETY: sixteen u32 lanes into a sixteen-entry array.
        unsafe { _mm512_storeu_si512(w.as_mut_ptr().cast(), bits) };
        draw16(x, w);
    }
}

/// # Safety
/// The CPU must support AVX-512F/BW/VL, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
unsafe fn sample_pm1_avx512(x: &mut [f32], lanes: &mut Lanes) {
    // SAFETY: each row of the state is sixteen u32.
    let mut s = lanes.s.map(|row| unsafe { _mm512_loadu_si512(row.as_ptr().cast()) });
    let mut chunks = x.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        let chunk: &mut [f32; LANES] = chunk.try_into().expect("chunks_exact gives LANES");
        draw16_avx512(chunk, xoshiro_avx512(&mut s));
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let mut tail = [0.0f32; LANES];
        tail[..rest.len()].copy_from_slice(rest);
        draw16_avx512(&mut tail, xoshiro_avx512(&mut s));
        rest.copy_from_slice(&tail[..rest.len()]);
    }
    for (row, v) in lanes.s.iter_mut().zip(s) {
        // SAFETY: as above.
        unsafe { _mm512_storeu_si512(row.as_mut_ptr().cast(), v) };
    }
}

/// `(e′, Q)` of [`sample_pm1`] for eight lanes (AVX2: `y` clamped to `±DRAW_Y_MAX`, `2ⁿ`
/// added to the exponent bits of `p`). The clamp keeps a NaN `y` (`maxps` returns its second
/// operand when either is NaN).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn cheap_avx2(x: __m256, bits: __m256i) -> (__m256, __m256) {
    let y = _mm256_mul_ps(x, _mm256_set1_ps(NEG2_LOG2E));
    let y = _mm256_max_ps(_mm256_set1_ps(-DRAW_Y_MAX), y);
    let y = _mm256_min_ps(_mm256_set1_ps(DRAW_Y_MAX), y);
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(y);
    let f = _mm256_sub_ps(y, n);
    let c = |i: usize| _mm256_set1_ps(EXP2_P[i]);
    let p = _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_fmadd_ps(c(3), f, c(2)), f, c(1)), f, c(0));
    // A NaN n converts to i32::MIN, whose shifted bits are 0: p stays NaN.
    let scale = _mm256_slli_epi32::<23>(_mm256_cvtps_epi32(n));
    let e = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), scale));
    let m = _mm256_cvtepi32_ps(_mm256_srli_epi32::<8>(bits));
    (e, _mm256_fmadd_ps(m, e, m))
}

/// `rotl(v, K)` on eight u32 lanes (`L = 32 − K`).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn rotl_avx2<const K: i32, const L: i32>(v: __m256i) -> __m256i {
    _mm256_or_si256(_mm256_slli_epi32::<K>(v), _mm256_srli_epi32::<L>(v))
}

/// The next eight outputs of eight xoshiro128++ streams (one half of `Lanes`).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn xoshiro_avx2(s: &mut [__m256i; 4]) -> __m256i {
    let [a0, a1, a2, a3] = *s;
    let out = _mm256_add_epi32(rotl_avx2::<7, 25>(_mm256_add_epi32(a0, a3)), a0);
    let t = _mm256_slli_epi32::<9>(a1);
    let x31 = _mm256_xor_si256(a3, a1);
    let x20 = _mm256_xor_si256(a2, a0);
    *s = [
        _mm256_xor_si256(a0, x31),
        _mm256_xor_si256(a1, x20),
        _mm256_xor_si256(x20, t),
        rotl_avx2::<11, 21>(x31),
    ];
    out
}

/// One chunk of sixteen draws at AVX2 (two halves of eight): the cheap test, else the exact
/// rule.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn draw16_avx2(x: &mut [f32; LANES], bits: [__m256i; 2]) {
    let (lo, hi) = (_mm256_set1_ps(DRAW_LO), _mm256_set1_ps(DRAW_HI));
    let mut out = [_mm256_setzero_ps(); 2];
    let mut undecided = 0;
    for (h, o) in out.iter_mut().enumerate() {
        // SAFETY: eight lanes from 8·h, h < 2, of a sixteen-entry array.
        let xv = unsafe { _mm256_loadu_ps(x.as_ptr().add(8 * h)) };
        let (_, q) = cheap_avx2(xv, bits[h]);
        let not_minus = _mm256_cmp_ps::<_CMP_NGT_UQ>(q, hi);
        let not_plus = _mm256_cmp_ps::<_CMP_NLT_UQ>(q, lo);
        undecided |= _mm256_movemask_ps(_mm256_and_ps(not_minus, not_plus));
        *o = _mm256_blendv_ps(_mm256_set1_ps(-1.0), _mm256_set1_ps(1.0), not_minus);
    }
    if undecided == 0 {
        for (h, o) in out.iter().enumerate() {
            // SAFETY: as above.
            unsafe { _mm256_storeu_ps(x.as_mut_ptr().add(8 * h), *o) };
        }
    } else {
        let mut w = [0u32; LANES];
        for (h, b) in bits.iter().enumerate() {
            // SAFETY: eight u32 lanes from 8·h of a sixteen-entry array.
            unsafe { _mm256_storeu_si256(w.as_mut_ptr().add(8 * h).cast(), *b) };
        }
        draw16(x, w);
    }
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn sample_pm1_avx2(x: &mut [f32], lanes: &mut Lanes) {
    // SAFETY (all loads and stores of the state): eight u32 lanes from 0 or 8 of a row of 16.
    let half =
        |h: usize| lanes.s.map(|row| unsafe { _mm256_loadu_si256(row.as_ptr().add(8 * h).cast()) });
    let mut s = [half(0), half(1)];
    let next = |s: &mut [[__m256i; 4]; 2]| [xoshiro_avx2(&mut s[0]), xoshiro_avx2(&mut s[1])];
    let mut chunks = x.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        let chunk: &mut [f32; LANES] = chunk.try_into().expect("chunks_exact gives LANES");
        draw16_avx2(chunk, next(&mut s));
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let mut tail = [0.0f32; LANES];
        tail[..rest.len()].copy_from_slice(rest);
        draw16_avx2(&mut tail, next(&mut s));
        rest.copy_from_slice(&tail[..rest.len()]);
    }
    for (k, row) in lanes.s.iter_mut().enumerate() {
        for (h, half) in s.iter().enumerate() {
            unsafe { _mm256_storeu_si256(row.as_mut_ptr().add(8 * h).cast(), half[k]) };
        }
    }
}

/// Test access to the cheap test of a level: `(e′, Q)` per lane, and the level's draws for
/// given words instead of generated ones.
#[cfg(test)]
pub(super) mod draw_probe {
    use super::*;

    /// `(e′, Q)` of [`sample_pm1`] for sixteen lanes.
    pub fn cheap(isa: Isa, x: &[f32; LANES], bits: &[u32; LANES]) -> ([f32; LANES], [f32; LANES]) {
        assert!(isa.available() && isa != Isa::Scalar);
        let (mut e, mut q) = ([0.0f32; LANES], [0.0f32; LANES]);
        // SAFETY: the level was checked; loads and stores of sixteen lanes.
        unsafe {
            if isa == Isa::Avx512 {
                let (ev, qv) = cheap_avx512(
                    _mm512_loadu_ps(x.as_ptr()),
                    _mm512_loadu_si512(bits.as_ptr().cast()),
                );
                _mm512_storeu_ps(e.as_mut_ptr(), ev);
                _mm512_storeu_ps(q.as_mut_ptr(), qv);
            } else {
                for h in 0..2 {
                    let b = _mm256_loadu_si256(bits.as_ptr().add(8 * h).cast());
                    let (ev, qv) = cheap_avx2(_mm256_loadu_ps(x.as_ptr().add(8 * h)), b);
                    _mm256_storeu_ps(e.as_mut_ptr().add(8 * h), ev);
                    _mm256_storeu_ps(q.as_mut_ptr().add(8 * h), qv);
                }
            }
        }
        (e, q)
    }

    /// The level's draws of sixteen fields with the given words.
    pub fn draw(isa: Isa, x: &mut [f32; LANES], bits: &[u32; LANES]) {
        assert!(isa.available() && isa != Isa::Scalar);
        // SAFETY: the level was checked; loads of sixteen lanes.
        unsafe {
            if isa == Isa::Avx512 {
                draw16_avx512(x, _mm512_loadu_si512(bits.as_ptr().cast()));
            } else {
                let b = |h: usize| _mm256_loadu_si256(bits.as_ptr().add(8 * h).cast());
                draw16_avx2(x, [b(0), b(1)]);
            }
        }
    }
}

/// [`gemm_scalar`] compiled for AVX-512 (the direct path for small products).
///
/// # Safety
/// The CPU must support AVX-512F/BW/VL, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn direct_avx512(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &mut [f32],
    ldc: usize,
) {
    gemm_scalar(m, n, k, alpha, a, b, c, ldc);
}

/// [`gemm_scalar`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn direct_avx2(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &mut [f32],
    ldc: usize,
) {
    gemm_scalar(m, n, k, alpha, a, b, c, ldc);
}

/// The five GEMM loops around `kernel`. Callers have checked the sizes and the level. With
/// an `epilogue` other than [`Epilogue::Add`] the first depth block writes each tile as if
/// onto zeros.
#[allow(clippy::too_many_arguments)]
fn driver<const MR: usize, const NR: usize>(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    (a, b): (MatRef<'_>, MatRef<'_>),
    (c, ldc, epilogue): (&mut [f32], usize, Epilogue),
    (pack, packed_b): (&mut [f32], Option<&[f32]>),
    kernel: MicroKernel,
) {
    debug_assert!(MR * NR <= TILE && MC.is_multiple_of(MR) && NC.is_multiple_of(NR));
    let (pa, pbuf) = pack.split_at_mut(KC * MC);
    let mut tile = [0.0f32; TILE];
    for j0 in (0..n).step_by(NC) {
        let nc = NC.min(n - j0);
        let ncp = nc.div_ceil(NR) * NR;
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            let set = epilogue != Epilogue::Add && p0 == 0;
            let pb: &[f32] = match packed_b {
                Some(all) => &all[j0 * k + p0 * ncp..j0 * k + (p0 + kc) * ncp],
                None => {
                    // SAFETY: `gemm` checked the level, and both SIMD levels run AVX2.
                    unsafe { pack_b_avx2::<NR>(b, p0, kc, j0, nc, pbuf) };
                    pbuf
                }
            };
            for i0 in (0..m).step_by(MC) {
                let mc = MC.min(m - i0);
                // SAFETY: as above.
                unsafe { pack_a_avx2::<MR>(a, i0, mc, p0, kc, pa) };
                for jr in 0..nc.div_ceil(NR) {
                    let bp = &pb[jr * NR * kc..(jr + 1) * NR * kc];
                    let cols = NR.min(nc - jr * NR);
                    for ir in 0..mc.div_ceil(MR) {
                        let ap = &pa[ir * MR * kc..(ir + 1) * MR * kc];
                        let rows = MR.min(mc - ir * MR);
                        let at = (i0 + ir * MR) * ldc + j0 + jr * NR;
                        if cols <= 8 && NR > 8 {
                            // A last panel with at most 8 real columns: the narrow kernel does
                            // a quarter (AVX-512) or half (AVX2) of the full kernel's work.
                            // SAFETY: as below.
                            unsafe { kernel_narrow::<MR, NR>(kc, ap, bp, &mut tile) };
                            add_tile::<MR, NR>(&tile, (alpha, set), rows, cols, c, at, ldc);
                        } else if rows == MR && cols == NR {
                            let tc = TileC { c: &mut c[at..], ldc, alpha, set };
                            // SAFETY: `gemm` checked that the CPU runs this level's kernel;
                            // the kernel checks its slice lengths before touching memory.
                            unsafe { kernel(kc, ap, bp, Some(tc), &mut tile) };
                        } else {
                            // SAFETY: as above.
                            unsafe { kernel(kc, ap, bp, None, &mut tile) };
                            add_tile::<MR, NR>(&tile, (alpha, set), rows, cols, c, at, ldc);
                        }
                    }
                }
            }
        }
    }
}

/// [`pack_a`] with full panels in AVX registers: rows of `A` contiguous (`cs = 1`, `MR = 8`, or
/// `MR = 6` through a buffer of groups of eight) in 8 × 8 transposes, columns contiguous (`rs = 1`) copied `MR` entries a step (a fixed-length
/// copy, no `memcpy` call); every other case is [`pack_a`] itself. Pure data movement: the packed
/// buffer holds the same bits.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_a_avx2<const MR: usize>(
    a: MatRef<'_>,
    i0: usize,
    mc: usize,
    p0: usize,
    kc: usize,
    out: &mut [f32],
) {
    if !(a.cs == 1 && (MR == 8 || MR == 6) || a.cs != 1 && a.rs == 1) {
        pack_a::<MR>(a, i0, mc, p0, kc, out);
        return;
    }
    for r in 0..mc.div_ceil(MR) {
        let dst = &mut out[r * MR * kc..(r + 1) * MR * kc];
        let rows = (mc - r * MR).min(MR);
        if rows < MR {
            pack_a::<MR>(a, i0 + r * MR, rows, p0, kc, dst);
            continue;
        }
        if a.cs != 1 {
            // Columns contiguous (a transposed row-major matrix): `MR` entries a step.
            for (p, d) in dst.chunks_exact_mut(MR).enumerate() {
                let s = (p0 + p) * a.cs + i0 + r * MR;
                d.copy_from_slice(&a.data[s..s + MR]);
            }
            continue;
        }
        let start = |ii: usize| (i0 + r * MR + ii) * a.rs + p0;
        // Rows past MR (MR = 6) repeat the last one; their columns are dropped below.
        let src: [&[f32]; 8] =
            core::array::from_fn(|ii| &a.data[start(ii.min(MR - 1))..start(ii.min(MR - 1)) + kc]);
        if MR == 8 {
            // SAFETY: the CPU runs AVX2 (this function's contract); the slices bound the reads.
            unsafe { transpose_lines(&src, kc, dst, MR) };
        } else {
            // Eight lines into groups of eight, then the first MR of each group.
            let mut tmp = [0.0f32; 8 * KC];
            // SAFETY: as above; `tmp` holds (kc−1)·8 + 8 entries as kc ≤ KC.
            unsafe { transpose_lines(&src, kc, &mut tmp, 8) };
            for (d, t) in dst.chunks_exact_mut(MR).zip(tmp.chunks_exact(8)) {
                d.copy_from_slice(&t[..MR]);
            }
        }
    }
}

/// [`pack_b`] with full panels in AVX registers: rows of `B` contiguous (`cs = 1`) copied `NR`
/// entries at a time (no `memcpy` call per row), columns contiguous (`rs = 1`) in 8 × 8
/// transposes; every other case is [`pack_b`] itself. Pure data movement: the packed buffer
/// holds the same bits.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_b_avx2<const NR: usize>(
    b: MatRef<'_>,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    out: &mut [f32],
) {
    if (b.cs != 1 && b.rs != 1) || !NR.is_multiple_of(8) {
        pack_b::<NR>(b, p0, kc, j0, nc, out);
        return;
    }
    for r in 0..nc.div_ceil(NR) {
        let dst = &mut out[r * NR * kc..(r + 1) * NR * kc];
        let cols = (nc - r * NR).min(NR);
        if cols < NR {
            pack_b::<NR>(b, p0, kc, j0 + r * NR, cols, dst);
            continue;
        }
        if b.cs == 1 {
            for (p, d) in dst.chunks_exact_mut(NR).enumerate() {
                let s = (p0 + p) * b.rs + j0 + r * NR;
                let row = &b.data[s..s + NR];
                for q in 0..NR / 8 {
                    // SAFETY: 8 entries from 8q < NR in both `row` and `d` (NR entries each).
                    unsafe {
                        let v = _mm256_loadu_ps(row.as_ptr().add(8 * q));
                        _mm256_storeu_ps(d.as_mut_ptr().add(8 * q), v);
                    }
                }
            }
            continue;
        }
        for g in 0..NR / 8 {
            let start = |q: usize| (j0 + r * NR + g * 8 + q) * b.cs + p0;
            let src: [&[f32]; 8] = core::array::from_fn(|q| &b.data[start(q)..start(q) + kc]);
            // SAFETY: the CPU runs AVX2 (this function's contract); the slices bound the reads.
            unsafe { transpose_lines(&src, kc, &mut dst[g * 8..], NR) };
        }
    }
}

/// [`pack_a_avx2`] (`b = false`, `(i0, mc, p0, kc)`) or [`pack_b_avx2`] (`b = true`,
/// `(p0, kc, j0, nc)`) behind a check that the CPU runs AVX2, for the tests.
#[cfg(test)]
pub(super) fn pack_avx2<const R: usize>(
    b: bool,
    x: MatRef<'_>,
    at: (usize, usize, usize, usize),
    out: &mut [f32],
) {
    assert!(Isa::Avx2.available(), "AVX2 packing needs AVX2");
    let (s0, s1, s2, s3) = at;
    // SAFETY: the CPU runs AVX2 and FMA (checked just above).
    unsafe {
        if b {
            pack_b_avx2::<R>(x, s0, s1, s2, s3, out)
        } else {
            pack_a_avx2::<R>(x, s0, s1, s2, s3, out)
        }
    }
}

/// `dst[p·ld + q] = src[q][p]` for `q < 8`, `p < kc`: eight lines of `kc` entries into `kc`
/// groups of eight, `ld` apart, in 8 × 8 register transposes (the last `kc mod 8` entries one
/// by one).
///
/// # Safety
/// The CPU must support AVX2. Every `src[q]` holds `kc` entries and `dst` at least
/// `(kc−1)·ld + 8` when `kc > 0`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn transpose_lines(src: &[&[f32]; 8], kc: usize, dst: &mut [f32], ld: usize) {
    if kc == 0 {
        return;
    }
    assert!(src.iter().all(|l| l.len() >= kc) && dst.len() >= (kc - 1) * ld + 8);
    let full = kc - kc % 8;
    let dp = dst.as_mut_ptr();
    let mut p = 0;
    while p < full {
        // SAFETY: p + 8 ≤ kc bounds the loads by the assert, and (p+7)·ld + 8 ≤ dst.len()
        // the stores.
        unsafe {
            let r: [__m256; 8] = core::array::from_fn(|q| _mm256_loadu_ps(src[q].as_ptr().add(p)));
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let o = [
                _mm256_permute2f128_ps::<0x20>(s0, s4),
                _mm256_permute2f128_ps::<0x20>(s1, s5),
                _mm256_permute2f128_ps::<0x20>(s2, s6),
                _mm256_permute2f128_ps::<0x20>(s3, s7),
                _mm256_permute2f128_ps::<0x31>(s0, s4),
                _mm256_permute2f128_ps::<0x31>(s1, s5),
                _mm256_permute2f128_ps::<0x31>(s2, s6),
                _mm256_permute2f128_ps::<0x31>(s3, s7),
            ];
            for (q, v) in o.iter().enumerate() {
                _mm256_storeu_ps(dp.add((p + q) * ld), *v);
            }
        }
        p += 8;
    }
    for p in full..kc {
        for (q, line) in src.iter().enumerate() {
            dst[p * ld + q] = line[p];
        }
    }
}

/// Prefetches the cache lines of the `MR × NR` tile at the start of `c` (row stride `ldc`)
/// into L1 (first, middle and last entry of each row: every line an unaligned row touches).
/// Only hints: entries past the end of `c` are skipped.
#[inline(always)]
fn prefetch_tile<const MR: usize, const NR: usize>(c: &[f32], ldc: usize) {
    for r in 0..MR {
        for off in [r * ldc, r * ldc + NR / 2, r * ldc + NR - 1] {
            if let Some(x) = c.get(off) {
                // SAFETY: a prefetch reads nothing architecturally; the pointer is in `c`.
                unsafe { _mm_prefetch::<_MM_HINT_T0>((x as *const f32).cast::<i8>()) };
            }
        }
    }
}

/// 8 × 32 AVX-512 micro-kernel: 16 zmm accumulators, two `B` loads and eight broadcasts per
/// depth step.
///
/// # Safety
/// The CPU must support AVX-512F and FMA.
#[target_feature(enable = "avx512f,fma")]
unsafe fn kernel_avx512(
    kc: usize,
    a: &[f32],
    b: &[f32],
    c: Option<TileC<'_>>,
    tile: &mut [f32; TILE],
) {
    const MR: usize = 8;
    assert!(a.len() >= kc * MR && b.len() >= kc * 32);
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    if let Some(t) = &c {
        // Start loading the C tile (far from L1 in the big products) while the k loop runs.
        prefetch_tile::<MR, 32>(t.c, t.ldc);
    }
    let mut acc = [_mm512_setzero_ps(); 2 * MR];
    for p in 0..kc {
        // SAFETY: p < kc and the asserts above bound every read.
        unsafe {
            let b0 = _mm512_loadu_ps(bp.add(p * 32));
            let b1 = _mm512_loadu_ps(bp.add(p * 32 + 16));
            for i in 0..MR {
                let ai = _mm512_set1_ps(*ap.add(p * MR + i));
                acc[2 * i] = _mm512_fmadd_ps(ai, b0, acc[2 * i]);
                acc[2 * i + 1] = _mm512_fmadd_ps(ai, b1, acc[2 * i + 1]);
            }
        }
    }
    match c {
        Some(TileC { c, ldc, alpha, set }) => {
            assert!(c.len() >= (MR - 1) * ldc + 32);
            let al = _mm512_set1_ps(alpha);
            for (i, v) in acc.iter().enumerate() {
                let at = (i / 2) * ldc + (i % 2) * 16;
                // SAFETY: row i/2 < MR, 16 lanes from column (i%2)·16 < 32: inside the assert.
                unsafe {
                    let p = c.as_mut_ptr().add(at);
                    let c0 = if set { _mm512_setzero_ps() } else { _mm512_loadu_ps(p) };
                    _mm512_storeu_ps(p, _mm512_fmadd_ps(al, *v, c0));
                }
            }
        }
        None => {
            for (i, v) in acc.iter().enumerate() {
                // SAFETY: 16 stores of 16 lanes fill exactly the 256-entry tile.
                unsafe { _mm512_storeu_ps(tile.as_mut_ptr().add(i * 16), *v) };
            }
        }
    }
}

/// `MR × 8` micro-kernel in 256-bit registers for a last panel with at most 8 real columns
/// (of `NR`, zero-padded): the first 8 columns of each `B` row (row stride `NR`) against the
/// `A` panel, into the first 8 entries of each tile row (row stride `NR`). Every entry is the
/// same chain of fused multiply-adds from zero as in the full kernels, so the same bits.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_narrow<const MR: usize, const NR: usize>(
    kc: usize,
    a: &[f32],
    b: &[f32],
    tile: &mut [f32; TILE],
) {
    assert!(a.len() >= kc * MR && b.len() >= kc * NR && NR >= 8 && MR * NR <= TILE);
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); MR];
    for p in 0..kc {
        // SAFETY: p < kc and the assert bound every read (8 ≤ NR entries from p·NR).
        unsafe {
            let b0 = _mm256_loadu_ps(bp.add(p * NR));
            for (i, x) in acc.iter_mut().enumerate() {
                *x = _mm256_fmadd_ps(_mm256_set1_ps(*ap.add(p * MR + i)), b0, *x);
            }
        }
    }
    for (i, v) in acc.iter().enumerate() {
        // SAFETY: row i < MR of the tile, 8 ≤ NR entries from i·NR, inside MR·NR ≤ TILE.
        unsafe { _mm256_storeu_ps(tile.as_mut_ptr().add(i * NR), *v) };
    }
}

/// 6 × 16 AVX2 micro-kernel: 12 ymm accumulators, two `B` loads and six broadcasts per depth
/// step.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_avx2(
    kc: usize,
    a: &[f32],
    b: &[f32],
    c: Option<TileC<'_>>,
    tile: &mut [f32; TILE],
) {
    const MR: usize = 6;
    assert!(a.len() >= kc * MR && b.len() >= kc * 16);
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    if let Some(t) = &c {
        // Start loading the C tile (far from L1 in the big products) while the k loop runs.
        prefetch_tile::<MR, 16>(t.c, t.ldc);
    }
    let mut acc = [_mm256_setzero_ps(); 2 * MR];
    for p in 0..kc {
        // SAFETY: p < kc and the asserts above bound every read.
        unsafe {
            let b0 = _mm256_loadu_ps(bp.add(p * 16));
            let b1 = _mm256_loadu_ps(bp.add(p * 16 + 8));
            for i in 0..MR {
                let ai = _mm256_set1_ps(*ap.add(p * MR + i));
                acc[2 * i] = _mm256_fmadd_ps(ai, b0, acc[2 * i]);
                acc[2 * i + 1] = _mm256_fmadd_ps(ai, b1, acc[2 * i + 1]);
            }
        }
    }
    match c {
        Some(TileC { c, ldc, alpha, set }) => {
            assert!(c.len() >= (MR - 1) * ldc + 16);
            let al = _mm256_set1_ps(alpha);
            for (i, v) in acc.iter().enumerate() {
                let at = (i / 2) * ldc + (i % 2) * 8;
                // SAFETY: row i/2 < MR, 8 lanes from column (i%2)·8 < 16: inside the assert.
                unsafe {
                    let p = c.as_mut_ptr().add(at);
                    let c0 = if set { _mm256_setzero_ps() } else { _mm256_loadu_ps(p) };
                    _mm256_storeu_ps(p, _mm256_fmadd_ps(al, *v, c0));
                }
            }
        }
        None => {
            for (i, v) in acc.iter().enumerate() {
                // SAFETY: 12 stores of 8 lanes fill the first 96 entries of the tile.
                unsafe { _mm256_storeu_ps(tile.as_mut_ptr().add(i * 8), *v) };
            }
        }
    }
}

/// Widest `n` for which the AVX-512 dot-product kernel runs instead of the packed GEMM (both
/// operands contiguous along `k`): thin products such as `H Wᵀ` with few visible units, where
/// packing the big operand costs as much as the product. (AVX2 has too few registers for the
/// 4 × 4 tile and always packs.)
const DOT_MAX_N: usize = 160;

/// Depth of one block of the dot-product kernels (4 rows of `A` and of `B` stay in L1).
const DOT_KC: usize = 512;

/// `c_ij += α·Σ_p a[i·lda + p]·b[j·ldb + p]` in 4 × 4 tiles of 16-lane partial sums, `k` in
/// blocks of [`DOT_KC`], tails by masked loads.
///
/// # Safety
/// The CPU must support AVX-512F and FMA; every index `i·lda + p` (`i < m`, `p < k`) must be
/// inside `a`, likewise for `b`, and `c` must hold `(m−1)·ldc + n` entries.
#[target_feature(enable = "avx512f,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn dot_driver_avx512(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    (a, lda): (&[f32], usize),
    (b, ldb): (&[f32], usize),
    c: &mut [f32],
    ldc: usize,
) {
    for p0 in (0..k).step_by(DOT_KC) {
        let kc = DOT_KC.min(k - p0);
        let mut i = 0;
        while i < m {
            let rows = (m - i).min(4);
            let mut j = 0;
            while j < n {
                let cols = (n - j).min(4);
                let mut out = [[0.0f32; 4]; 4];
                // SAFETY: rows `i..i+rows` of A and `j..j+cols` of B over `p0..p0+kc` are inside
                // the slices by the caller's contract.
                unsafe {
                    dot_tile_avx512(
                        rows,
                        cols,
                        kc,
                        a,
                        i * lda + p0,
                        lda,
                        b,
                        j * ldb + p0,
                        ldb,
                        &mut out,
                    )
                };
                for (r, o) in out.iter().enumerate().take(rows) {
                    let row = &mut c[(i + r) * ldc + j..(i + r) * ldc + j + cols];
                    for (x, &v) in row.iter_mut().zip(o) {
                        *x += alpha * v;
                    }
                }
                j += cols;
            }
            i += rows;
        }
    }
}

/// One tile of up to 4 × 4 dot products of length `kc`.
///
/// # Safety
/// AVX-512F and FMA; `a[a0 + r·lda + p]` and `b[b0 + q·ldb + p]` in bounds for `r < rows`,
/// `q < cols`, `p < kc`.
#[target_feature(enable = "avx512f,fma")]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
#[inline]
unsafe fn dot_tile_avx512(
    rows: usize,
    cols: usize,
    kc: usize,
    a: &[f32],
    a0: usize,
    lda: usize,
    b: &[f32],
    b0: usize,
    ldb: usize,
    out: &mut [[f32; 4]; 4],
) {
    let mut acc = [[_mm512_setzero_ps(); 4]; 4];
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    let full = kc - kc % 16;
    let mut p = 0;
    while p < full {
        // SAFETY: p + 16 ≤ kc, inside the caller's bounds.
        unsafe {
            let mut bv = [_mm512_setzero_ps(); 4];
            for (q, v) in bv.iter_mut().enumerate().take(cols) {
                *v = _mm512_loadu_ps(bp.add(b0 + q * ldb + p));
            }
            for r in 0..rows {
                let av = _mm512_loadu_ps(ap.add(a0 + r * lda + p));
                for q in 0..cols {
                    acc[r][q] = _mm512_fmadd_ps(av, bv[q], acc[r][q]);
                }
            }
        }
        p += 16;
    }
    if full < kc {
        let mask: __mmask16 = (1u16 << (kc - full)) - 1;
        // SAFETY: masked loads touch only the `kc − full` valid entries.
        unsafe {
            let mut bv = [_mm512_setzero_ps(); 4];
            for (q, v) in bv.iter_mut().enumerate().take(cols) {
                *v = _mm512_maskz_loadu_ps(mask, bp.add(b0 + q * ldb + full));
            }
            for r in 0..rows {
                let av = _mm512_maskz_loadu_ps(mask, ap.add(a0 + r * lda + full));
                for q in 0..cols {
                    acc[r][q] = _mm512_fmadd_ps(av, bv[q], acc[r][q]);
                }
            }
        }
    }
    for r in 0..rows {
        for q in 0..cols {
            out[r][q] = _mm512_reduce_add_ps(acc[r][q]);
        }
    }
}

/// Deepest `k` for the AVX-512 skinny kernel.
const SKINNY_MAX_K: usize = 12;

/// `C += α·A·B` for a shallow `k = K ≤ 12` with `B` rows contiguous: the `K × 32` block of `B`
/// for 32 columns stays in 2K registers while every row of `A` passes (no packing), the last
/// block masked. The PID phases of small models (Bars: K = 8, batch 3) are such products.
///
/// # Safety
/// The CPU must support AVX-512F and FMA; the views must hold an `m × K` and a `K × n` matrix
/// and `c` must hold `(m−1)·ldc + n` entries.
#[target_feature(enable = "avx512f,fma")]
#[allow(clippy::needless_range_loop)]
unsafe fn skinny_avx512<const K: usize>(
    m: usize,
    n: usize,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &mut [f32],
    ldc: usize,
) {
    let al = _mm512_set1_ps(alpha);
    let mut j = 0;
    while j < n {
        let cols = (n - j).min(32);
        let m0: __mmask16 = if cols >= 16 { 0xFFFF } else { (1u16 << cols) - 1 };
        let m1: __mmask16 = if cols >= 32 {
            0xFFFF
        } else if cols > 16 {
            (1u16 << (cols - 16)) - 1
        } else {
            0
        };
        let mut bv = [[_mm512_setzero_ps(); 2]; K];
        for p in 0..K {
            let row = &b.data[p * b.rs + j..p * b.rs + j + cols];
            // SAFETY: masked loads read only the `cols` entries of `row`.
            unsafe {
                bv[p][0] = _mm512_maskz_loadu_ps(m0, row.as_ptr());
                if m1 != 0 {
                    bv[p][1] = _mm512_maskz_loadu_ps(m1, row.as_ptr().add(16));
                }
            }
        }
        for i in 0..m {
            let mut acc0 = _mm512_setzero_ps();
            let mut acc1 = _mm512_setzero_ps();
            for p in 0..K {
                let ai = _mm512_set1_ps(a.data[i * a.rs + p * a.cs]);
                acc0 = _mm512_fmadd_ps(ai, bv[p][0], acc0);
                acc1 = _mm512_fmadd_ps(ai, bv[p][1], acc1);
            }
            let out = &mut c[i * ldc + j..i * ldc + j + cols];
            // SAFETY: masked loads and stores touch only the `cols` entries of `out`.
            unsafe {
                let cp = out.as_mut_ptr();
                let c0 = _mm512_maskz_loadu_ps(m0, cp);
                _mm512_mask_storeu_ps(cp, m0, _mm512_fmadd_ps(al, acc0, c0));
                if m1 != 0 {
                    let c1 = _mm512_maskz_loadu_ps(m1, cp.add(16));
                    _mm512_mask_storeu_ps(cp.add(16), m1, _mm512_fmadd_ps(al, acc1, c1));
                }
            }
        }
        j += cols;
    }
}

#[cfg(test)]
mod tests {
    //! Every SIMD path on small inputs against the scalar oracle. Small enough for Miri, which
    //! checks the unsafe code when the crate is built with the AVX-512 target features (see
    //! `.ci/run`); each test prints the levels it ran and a `SKIP` line for each one the CPU
    //! lacks.
    use super::*;
    use crate::kernels::isa::levels_to_test;
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    fn data(n: usize, salt: u32) -> Vec<f32> {
        (0..n as u32)
            .map(|i| ((i.wrapping_mul(2_654_435_761) ^ salt) % 17) as f32 / 8.0 - 1.0)
            .collect()
    }

    /// Each path: (m, n, k, A transposed, B transposed) chosen to land in it.
    #[test]
    fn every_path_matches_the_scalar_oracle() {
        // A build with the features enabled (the Miri run of .ci/run) must exercise them.
        if cfg!(all(target_feature = "avx512f", target_feature = "avx512bw")) {
            assert!(Isa::Avx512.available(), "compiled for AVX-512 but the level is unavailable");
        }
        let cases = [
            (3, 20, 3, false, false),    // skinny (k ≤ 12, n ≥ 16), masked tail
            (17, 5, 70, false, true),    // dot kernel (k-contiguous, k ≥ 64), tails
            (20, 40, 330, false, false), // packed driver: edge tiles, narrow panel, 2 depth blocks
            (4, 3, 2, true, true),       // direct
        ];
        for isa in levels_to_test("every_path", &[Isa::Avx2, Isa::Avx512]) {
            let (a, b) = (MatRef::row_major(&[0.0; 20 * 330], 330), MatRef::row_major(&[], 40));
            assert!(takes_driver(isa, 20, 40, 330, a, b), "the driver case takes the driver");
            let mut pack = vec![0.0; gemm_pack_len(isa)];
            for &(m, n, k, ta, tb) in &cases {
                let (ad, bd) = (data(m * k, 1), data(k * n, 2));
                let a = if ta { MatRef::row_major(&ad, m).t() } else { MatRef::row_major(&ad, k) };
                let b = if tb { MatRef::row_major(&bd, k).t() } else { MatRef::row_major(&bd, n) };
                let c0 = data(m * n, 3);
                let mut want = c0.clone();
                gemm_scalar(m, n, k, 0.5, a, b, &mut want, n);
                let mut got = c0.clone();
                let ops = (a, b);
                gemm(isa, m, n, k, 0.5, ops, (&mut got, n), (&mut pack, None), Epilogue::Add);
                for (g, w) in got.iter().zip(&want) {
                    // Dyadic inputs with few terms: every path is exact.
                    assert_eq!(g, w, "{isa:?} {m}x{n}x{k}");
                }
                if !takes_driver(isa, m, n, k, a, b) {
                    continue;
                }
                // The driver's Set epilogue over garbage: the oracle on zeros.
                let mut want = vec![0.0; m * n];
                gemm_scalar(m, n, k, 0.5, a, b, &mut want, n);
                let mut got = vec![f32::NAN; m * n];
                gemm(isa, m, n, k, 0.5, ops, (&mut got[..], n), (&mut pack, None), Epilogue::Set);
                let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "{isa:?} {m}x{n}x{k} Set");
            }
        }
    }

    /// The last column panel of a driver product (the narrow kernel for at most 8 columns,
    /// the full kernel into the tile for more) gives each entry `c + α·acc` per depth block,
    /// `acc` the chain of fused multiply-adds from zero over the block in order: checked bit
    /// for bit on inputs whose sums round.
    #[test]
    fn last_panels_are_the_fused_chain_per_depth_block() {
        let rand = |len: usize, salt: u32| -> Vec<f32> {
            (0..len as u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) ^ salt).wrapping_mul(40_503) % 1999)
                .map(|x| x as f32 / 997.0 - 1.0)
                .collect()
        };
        for isa in levels_to_test("last_panels", &[Isa::Avx2, Isa::Avx512]) {
            let nr = if isa == Isa::Avx512 { 32 } else { 16 };
            let mut pack = vec![0.0; gemm_pack_len(isa)];
            let (m, k, alpha) = (40, 340, 0.3f32);
            // Under Miri one narrow panel (the products must be large enough for the driver).
            let widths: &[usize] = if cfg!(miri) { &[nr + 5] } else { &[nr + 8, nr + 5, nr + 12] };
            for &n in widths {
                let (ad, bd) = (rand(m * k, 1), rand(k * n, 2));
                let (a, b) = (MatRef::row_major(&ad, k), MatRef::row_major(&bd, n));
                assert!(takes_driver(isa, m, n, k, a, b), "{m}x{n}x{k} takes the driver");
                let c0 = rand(m * n, 3);
                let mut got = c0.clone();
                gemm(isa, m, n, k, alpha, (a, b), (&mut got, n), (&mut pack, None), Epilogue::Add);
                for i in 0..m {
                    for j in nr..n {
                        let mut c = c0[i * n + j];
                        for p0 in (0..k).step_by(KC) {
                            let mut acc = 0.0f32;
                            for p in p0..(p0 + KC).min(k) {
                                acc = a.at(i, p).mul_add(b.at(p, j), acc);
                            }
                            c += alpha * acc;
                        }
                        let g = got[i * n + j];
                        assert_eq!(g.to_bits(), c.to_bits(), "{isa:?} n{n} ({i},{j}): {g} vs {c}");
                    }
                }
            }
        }
    }

    /// Every lane follows the scalar recurrence with `f32::mul_add` (the same fused rounding),
    /// so the sum is `lanes ×` the scalar value up to the rounding of the final additions.
    #[test]
    fn fma_loops_compute_the_recurrence() {
        let rounds: &[u64] = if cfg!(miri) { &[0, 1, 3] } else { &[0, 1, 7, 1000] };
        for isa in levels_to_test("fma_loops", &[Isa::Avx2, Isa::Avx512]) {
            for &n in rounds {
                let lane = (0..n).fold(0.0f32, |x, _| x.mul_add(peak::A, peak::B)) as f64;
                let want = lane * peak::lanes(isa) as f64;
                let got = fma_rounds(isa, n) as f64;
                assert!((got - want).abs() <= 1e-5 * want, "{isa:?} {n}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn maps_and_draws_match_the_scalar_loops() {
        for isa in levels_to_test("maps_and_draws", &[Isa::Avx2, Isa::Avx512]) {
            let x = data(37, 4);
            let (mut a, mut b) = (x.clone(), x.clone());
            map_in_place(isa, &mut a, crate::num::tanh);
            map_scalar(&mut b, crate::num::tanh);
            assert_eq!(a, b);
            let seed = || Lanes::seed(&mut rand_pcg::Pcg32::new(7, 9));
            // A NaN and an infinite field send their chunks to the exact fallback.
            let mut x = x;
            (x[3], x[20]) = (f32::NAN, f32::NEG_INFINITY);
            let (mut a, mut b) = (x.clone(), x);
            sample_pm1(isa, &mut a, &mut seed());
            sample_pm1_with(&mut b, &mut seed());
            assert_eq!(a, b);
        }
    }
}
