//! x86-64 AVX2 and AVX-512 kernels. The only `unsafe` code of the crate lives here: SIMD
//! intrinsics and calls into `#[target_feature]` functions, each entered only after the level
//! was checked with [`Isa::available`]. A leaf called by the dispatcher (the parent module)
//! and by `peak` (the FMA-peak loops) only: it builds on `gemm`, `bulk`, `isa` and the
//! constants of `peak`, and never calls back into the dispatcher.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::bulk::{map_scalar, sample_pm1_with, Lanes};
use super::gemm::{
    add_tile, gemm_pack_len, gemm_scalar, pack_a, pack_b, use_direct, MatRef, KC, MC, NC,
};
use super::isa::Isa;
use super::peak;

/// A micro-kernel: the `MR × NR` product `P` of an `A` panel (`kc·MR`) and a `B` panel
/// (`kc·NR`). With `Some((c, ldc, alpha))` it adds `alpha·P` to the full tile at the start of
/// `c` (row stride `ldc`); with `None` it writes `P` into `tile` (row-major, `NR` per row).
type MicroKernel =
    unsafe fn(usize, &[f32], &[f32], Option<(&mut [f32], usize, f32)>, &mut [f32; TILE]);

/// Largest `MR·NR` of the levels.
const TILE: usize = 8 * 32;

/// `C += α·A·B` at a SIMD level, for the dispatcher's `gemm_with` (which checked the views,
/// `ldc` and the length of `c`, and returns early on empty products).
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
    assert!(pack.len() >= gemm_pack_len(isa), "gemm pack buffer shorter than gemm_pack_len");
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

/// The bulk spin draws ([`sample_pm1_with`]) at a SIMD level.
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

/// # Safety
/// The CPU must support AVX-512F/BW/VL, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
unsafe fn sample_pm1_avx512(x: &mut [f32], lanes: &mut Lanes) {
    sample_pm1_with(x, lanes);
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn sample_pm1_avx2(x: &mut [f32], lanes: &mut Lanes) {
    sample_pm1_with(x, lanes);
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
            (3, 20, 3, false, false),   // skinny (k ≤ 12, n ≥ 16), masked tail
            (17, 5, 70, false, true),   // dot kernel (k-contiguous, k ≥ 64), tails
            (20, 40, 30, false, false), // packed driver, edge tiles
            (4, 3, 2, true, true),      // direct
        ];
        for isa in levels_to_test("every_path", &[Isa::Avx2, Isa::Avx512]) {
            let mut pack = vec![0.0; gemm_pack_len(isa)];
            for &(m, n, k, ta, tb) in &cases {
                let (ad, bd) = (data(m * k, 1), data(k * n, 2));
                let a = if ta { MatRef::row_major(&ad, m).t() } else { MatRef::row_major(&ad, k) };
                let b = if tb { MatRef::row_major(&bd, k).t() } else { MatRef::row_major(&bd, n) };
                let c0 = data(m * n, 3);
                let mut want = c0.clone();
                gemm_scalar(m, n, k, 0.5, a, b, &mut want, n);
                let mut got = c0.clone();
                gemm(isa, m, n, k, 0.5, a, b, &mut got, n, &mut pack);
                for (g, w) in got.iter().zip(&want) {
                    // Dyadic inputs with few terms: every path is exact.
                    assert_eq!(g, w, "{isa:?} {m}x{n}x{k}");
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
            let (mut a, mut b) = (x.clone(), x);
            sample_pm1(isa, &mut a, &mut seed());
            sample_pm1_with(&mut b, &mut seed());
            assert_eq!(a, b);
        }
    }
}
