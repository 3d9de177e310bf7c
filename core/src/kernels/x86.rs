//! x86-64 AVX2 and AVX-512 kernels. The only `unsafe` code of the crate lives here: SIMD
//! intrinsics and calls into `#[target_feature]` functions, each entered only after the level
//! was checked with [`Isa::available`].
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::gemm::{
    add_tile, gemm_scalar, pack_a, pack_b, use_direct, MatRef, GEMM_PACK_LEN, KC, MC, NC,
};
use super::Isa;

/// A micro-kernel: the `MR × NR` product `P` of an `A` panel (`kc·MR`) and a `B` panel
/// (`kc·NR`). With `Some((c, ldc, alpha))` it adds `alpha·P` to the full tile at the start of
/// `c` (row stride `ldc`); with `None` it writes `P` into `tile` (row-major, `NR` per row).
type MicroKernel =
    unsafe fn(usize, &[f32], &[f32], Option<(&mut [f32], usize, f32)>, &mut [f32; TILE]);

/// Largest `MR·NR` of the levels.
const TILE: usize = 8 * 32;

/// `C += α·A·B` (see [`super::gemm::gemm`]) at a SIMD level.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &mut [f32],
    ldc: usize,
    pack: &mut [f32],
) {
    assert!(isa.available(), "the {} kernels need CPU support", isa.name());
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
    assert!(pack.len() >= GEMM_PACK_LEN, "gemm pack buffer shorter than GEMM_PACK_LEN");
    match isa {
        Isa::Avx512 => driver::<8, 32>(m, n, k, alpha, a, b, c, ldc, pack, kernel_avx512),
        Isa::Avx2 => driver::<6, 16>(m, n, k, alpha, a, b, c, ldc, pack, kernel_avx2),
        Isa::Scalar => unreachable!("scalar gemm does not pack"),
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
    super::map_scalar(x, f);
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn map_avx2<F: Fn(f32) -> f32>(x: &mut [f32], f: F) {
    super::map_scalar(x, f);
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

/// The five GEMM loops around `kernel`. Callers have checked the sizes and the level.
#[allow(clippy::too_many_arguments)]
fn driver<const MR: usize, const NR: usize>(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &mut [f32],
    ldc: usize,
    pack: &mut [f32],
    kernel: MicroKernel,
) {
    debug_assert!(MR * NR <= TILE && MC.is_multiple_of(MR) && NC.is_multiple_of(NR));
    let (pa, pb) = pack.split_at_mut(KC * MC);
    let mut tile = [0.0f32; TILE];
    for j0 in (0..n).step_by(NC) {
        let nc = NC.min(n - j0);
        for p0 in (0..k).step_by(KC) {
            let kc = KC.min(k - p0);
            pack_b::<NR>(b, p0, kc, j0, nc, pb);
            for i0 in (0..m).step_by(MC) {
                let mc = MC.min(m - i0);
                pack_a::<MR>(a, i0, mc, p0, kc, pa);
                for jr in 0..nc.div_ceil(NR) {
                    let bp = &pb[jr * NR * kc..(jr + 1) * NR * kc];
                    let cols = NR.min(nc - jr * NR);
                    for ir in 0..mc.div_ceil(MR) {
                        let ap = &pa[ir * MR * kc..(ir + 1) * MR * kc];
                        let rows = MR.min(mc - ir * MR);
                        let at = (i0 + ir * MR) * ldc + j0 + jr * NR;
                        if rows == MR && cols == NR {
                            // SAFETY: `gemm` checked that the CPU runs this level's kernel;
                            // the kernel checks its slice lengths before touching memory.
                            unsafe {
                                kernel(kc, ap, bp, Some((&mut c[at..], ldc, alpha)), &mut tile)
                            };
                        } else {
                            // SAFETY: as above.
                            unsafe { kernel(kc, ap, bp, None, &mut tile) };
                            add_tile::<MR, NR>(&tile, alpha, rows, cols, c, at, ldc);
                        }
                    }
                }
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
    c: Option<(&mut [f32], usize, f32)>,
    tile: &mut [f32; TILE],
) {
    const MR: usize = 8;
    assert!(a.len() >= kc * MR && b.len() >= kc * 32);
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
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
        Some((c, ldc, alpha)) => {
            assert!(c.len() >= (MR - 1) * ldc + 32);
            let al = _mm512_set1_ps(alpha);
            for (i, v) in acc.iter().enumerate() {
                let at = (i / 2) * ldc + (i % 2) * 16;
                // SAFETY: row i/2 < MR, 16 lanes from column (i%2)·16 < 32: inside the assert.
                unsafe {
                    let p = c.as_mut_ptr().add(at);
                    _mm512_storeu_ps(p, _mm512_fmadd_ps(al, *v, _mm512_loadu_ps(p)));
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
    c: Option<(&mut [f32], usize, f32)>,
    tile: &mut [f32; TILE],
) {
    const MR: usize = 6;
    assert!(a.len() >= kc * MR && b.len() >= kc * 16);
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
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
        Some((c, ldc, alpha)) => {
            assert!(c.len() >= (MR - 1) * ldc + 16);
            let al = _mm256_set1_ps(alpha);
            for (i, v) in acc.iter().enumerate() {
                let at = (i / 2) * ldc + (i % 2) * 8;
                // SAFETY: row i/2 < MR, 8 lanes from column (i%2)·8 < 16: inside the assert.
                unsafe {
                    let p = c.as_mut_ptr().add(at);
                    _mm256_storeu_ps(p, _mm256_fmadd_ps(al, *v, _mm256_loadu_ps(p)));
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
