//! `C += α·A·B` over strided f32 views: the scalar oracle and the packed, register-tiled
//! driver behind the SIMD levels.
//!
//! Every view is `(data, row stride, column stride)`, so transposes cost nothing: the PID
//! phases read `Ξ_v`, `Ξ_h`, batches and their transposes straight from the pattern and sample
//! slices without forming `W`.
//!
//! # Blocking (SIMD levels)
//! The loops follow the usual five-loop GEMM: `B` is packed in `KC × NC` blocks into
//! `NR`-column panels, `A` in `MC × KC` blocks into `MR`-row panels (zero-padded at the edges),
//! and an `MR × NR` micro-kernel keeps the tile in registers over the `KC` loop. The packing
//! buffer is the caller's ([`GEMM_PACK_LEN`] entries); the scalar level needs none.
//!
//! # Error bound
//! Each level computes every `c_ij` as a sum of `k` products in some order (in blocks of
//! `KC`, with fused multiply-adds on AVX2/AVX-512), so each is within
//! `k·2⁻²⁴·Σ_p |α a_ip b_pj|` (to first order) of the exact value, and any two levels within
//! twice that. The tests assert `2k·2⁻²⁴·Σ_p |α a_ip b_pj| + 1e-30`.

use super::{active, Isa};

/// Depth of one packed block.
pub const KC: usize = 256;
/// Rows of `A` per packed block (a multiple of every level's `MR`).
pub const MC: usize = 120;
/// Columns of `B` per packed block (a multiple of every level's `NR`).
pub const NC: usize = 1024;
/// Entries the packing buffer of [`gemm`] needs: `KC·(MC + NC)` where a SIMD level can exist
/// (x86-64), 0 elsewhere (the scalar level packs nothing).
pub const GEMM_PACK_LEN: usize = if cfg!(target_arch = "x86_64") { KC * (MC + NC) } else { 0 };

/// A read-only strided matrix view: entry `(i, j)` is `data[i·rs + j·cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    /// The backing slice.
    pub data: &'a [f32],
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major view with `cols` entries per row (`rs = cols`, `cs = 1`).
    pub const fn row_major(data: &'a [f32], cols: usize) -> Self {
        MatRef { data, rs: cols, cs: 1 }
    }

    /// The transpose view (strides swapped).
    pub const fn t(self) -> Self {
        MatRef { data: self.data, rs: self.cs, cs: self.rs }
    }

    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }

    /// Panics unless every entry of an `rows × cols` matrix is inside `data`.
    fn check(&self, rows: usize, cols: usize, what: &str) {
        if rows == 0 || cols == 0 {
            return;
        }
        let last = (rows - 1)
            .checked_mul(self.rs)
            .and_then(|r| (cols - 1).checked_mul(self.cs).and_then(|c| r.checked_add(c)));
        assert!(matches!(last, Some(l) if l < self.data.len()), "{what} view out of bounds");
    }
}

/// `C += α·A·B` with `A` `m × k`, `B` `k × n` and `C` row-major `m × n` with row stride `ldc`,
/// at the [`active`] level. `pack` needs [`GEMM_PACK_LEN`] entries on the SIMD levels (it may
/// be empty on a build whose level is always scalar, such as a microcontroller's).
///
/// # Panics
/// If a view or `C` is too short for the sizes, `ldc < n`, or `pack` is too short for a SIMD
/// level.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
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
    gemm_with(active(), m, n, k, alpha, a, b, c, ldc, pack);
}

/// As [`gemm`] at a given level (the level must be [`Isa::available`]).
///
/// # Panics
/// As [`gemm`], and if `isa` is not available.
#[allow(clippy::too_many_arguments)]
pub fn gemm_with(
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
    if m == 0 || n == 0 {
        return;
    }
    a.check(m, k, "A");
    b.check(k, n, "B");
    assert!(ldc >= n, "ldc must be at least n");
    assert!(c.len() >= (m - 1) * ldc + n, "C too short");
    if k == 0 || alpha == 0.0 {
        return;
    }
    match isa {
        Isa::Scalar => gemm_scalar(m, n, k, alpha, a, b, c, ldc),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 => super::x86::gemm(isa, m, n, k, alpha, a, b, c, ldc, pack),
        #[cfg(not(target_arch = "x86_64"))]
        _ => {
            let _ = pack;
            unreachable!("only the scalar level exists off x86-64")
        }
    }
}

/// The scalar oracle (also the SIMD levels' path for small products, compiled there with the
/// level's target features; results are bit-identical across levels on this path because
/// Rust never fuses `a*b + c`). Loop orders by layout:
///
/// * `B` row-contiguous (`cs = 1`): for each `(i, p)`, `C_i· += (α a_ip)·B_p·`, `p` ascending;
/// * else `A` row-contiguous and `B` column-contiguous: `c_ij += α·(A_i· · B_·j)`, each dot
///   product summed in 64 interleaved partial sums;
/// * else entry by entry.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn gemm_scalar(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &mut [f32],
    ldc: usize,
) {
    if b.cs == 1 {
        for i in 0..m {
            let row = &mut c[i * ldc..i * ldc + n];
            for p in 0..k {
                let s = alpha * a.at(i, p);
                let bp = &b.data[p * b.rs..p * b.rs + n];
                for (cj, &bj) in row.iter_mut().zip(bp) {
                    *cj += s * bj;
                }
            }
        }
    } else if a.cs == 1 && b.rs == 1 {
        for i in 0..m {
            let ai = &a.data[i * a.rs..i * a.rs + k];
            for j in 0..n {
                let bj = &b.data[j * b.cs..j * b.cs + k];
                c[i * ldc + j] += alpha * dot64(ai, bj);
            }
        }
    } else {
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f32;
                for p in 0..k {
                    s += a.at(i, p) * b.at(p, j);
                }
                c[i * ldc + j] += alpha * s;
            }
        }
    }
}

/// `Σ x_p y_p` in 64 interleaved partial sums (four independent vector accumulators at
/// AVX-512 width, so the loop is not bound by the add latency), combined pairwise.
#[inline(always)]
pub fn dot64(x: &[f32], y: &[f32]) -> f32 {
    const L: usize = 64;
    let mut acc = [0.0f32; L];
    let split = x.len() - x.len() % L;
    for (xs, ys) in x[..split].chunks_exact(L).zip(y[..split].chunks_exact(L)) {
        for l in 0..L {
            acc[l] += xs[l] * ys[l];
        }
    }
    let mut w = L / 2;
    while w > 0 {
        for l in 0..w {
            acc[l] += acc[l + w];
        }
        w /= 2;
    }
    let mut s = acc[0];
    for (a, b) in x[split..].iter().zip(&y[split..]) {
        s += a * b;
    }
    s
}

/// Whether a product is too small (or too thin) for packing to pay: the direct loops of
/// [`gemm_scalar`] run instead, at the active level's vector width.
#[cfg(target_arch = "x86_64")]
pub(super) fn use_direct(m: usize, n: usize, k: usize) -> bool {
    m < 16 || n < 8 || m * n * k < 1 << 18
}

/// Packs rows `i0..i0+mc`, depth `p0..p0+kc` of `A` into `MR`-row panels: panel `r` holds, for
/// each `p`, the `MR` entries of rows `i0 + r·MR ..`, zero past `m`.
#[cfg(target_arch = "x86_64")]
pub(super) fn pack_a<const MR: usize>(
    a: MatRef<'_>,
    i0: usize,
    mc: usize,
    p0: usize,
    kc: usize,
    out: &mut [f32],
) {
    let panels = mc.div_ceil(MR);
    for r in 0..panels {
        let dst = &mut out[r * MR * kc..(r + 1) * MR * kc];
        let rows = (mc - r * MR).min(MR);
        if rows < MR {
            dst.fill(0.0);
        }
        if a.cs == 1 {
            // Rows contiguous: read each row along p, write with stride MR.
            for ii in 0..rows {
                let start = (i0 + r * MR + ii) * a.rs + p0;
                for (p, &x) in a.data[start..start + kc].iter().enumerate() {
                    dst[p * MR + ii] = x;
                }
            }
        } else {
            for p in 0..kc {
                let d = &mut dst[p * MR..p * MR + rows];
                for (ii, x) in d.iter_mut().enumerate() {
                    *x = a.at(i0 + r * MR + ii, p0 + p);
                }
            }
        }
    }
}

/// Packs depth `p0..p0+kc`, columns `j0..j0+nc` of `B` into `NR`-column panels, zero past `n`.
#[cfg(target_arch = "x86_64")]
pub(super) fn pack_b<const NR: usize>(
    b: MatRef<'_>,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    out: &mut [f32],
) {
    let panels = nc.div_ceil(NR);
    for r in 0..panels {
        let dst = &mut out[r * NR * kc..(r + 1) * NR * kc];
        let cols = (nc - r * NR).min(NR);
        if cols < NR {
            dst.fill(0.0);
        }
        if b.cs == 1 {
            for p in 0..kc {
                let s = (p0 + p) * b.rs + j0 + r * NR;
                dst[p * NR..p * NR + cols].copy_from_slice(&b.data[s..s + cols]);
            }
        } else if b.rs == 1 {
            // Columns contiguous (a transposed row-major matrix): read each column along p.
            for jj in 0..cols {
                let start = (j0 + r * NR + jj) * b.cs + p0;
                for (p, &x) in b.data[start..start + kc].iter().enumerate() {
                    dst[p * NR + jj] = x;
                }
            }
        } else {
            for p in 0..kc {
                for jj in 0..cols {
                    dst[p * NR + jj] = b.at(p0 + p, j0 + r * NR + jj);
                }
            }
        }
    }
}

/// Adds `α·tile` (row-major `MR × NR`) to the `rows × cols` corner of `C` at `(i, j)`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn add_tile<const MR: usize, const NR: usize>(
    tile: &[f32],
    alpha: f32,
    rows: usize,
    cols: usize,
    c: &mut [f32],
    at: usize,
    ldc: usize,
) {
    for r in 0..rows {
        let dst = &mut c[at + r * ldc..at + r * ldc + cols];
        for (x, &t) in dst.iter_mut().zip(&tile[r * NR..r * NR + cols]) {
            *x += alpha * t;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use crate::test_util::uniform;
    use rand_core::SeedableRng;
    use rand_pcg::Pcg64;
    use std::vec;
    use std::vec::Vec;

    /// `C += α·A·B` in f64 from the definition, with the bound's `Σ|α a b|`.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        a: MatRef<'_>,
        b: MatRef<'_>,
        c0: &[f32],
        ldc: usize,
    ) -> (Vec<f64>, Vec<f64>) {
        let mut want = vec![0.0; m * n];
        let mut mag = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                let mut g = 0.0f64;
                for p in 0..k {
                    let t = alpha as f64 * a.at(i, p) as f64 * b.at(p, j) as f64;
                    s += t;
                    g += t.abs();
                }
                want[i * n + j] = c0[i * ldc + j] as f64 + s;
                mag[i * n + j] = g + (c0[i * ldc + j] as f64).abs();
            }
        }
        (want, mag)
    }

    fn check_level(isa: Isa, seed: u64) {
        let mut rng = Pcg64::seed_from_u64(seed);
        let mut pack = vec![0.0; GEMM_PACK_LEN];
        let sizes = [0usize, 1, 2, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 121];
        let mut cases = 0;
        for (t, &m) in sizes.iter().enumerate() {
            for &n in &sizes[(t * 5) % 7..] {
                let k = sizes[(t * 3 + n) % sizes.len()] + (t % 3) * 130;
                for layout in 0..4 {
                    let (ta, tb) = (layout & 1 == 1, layout & 2 == 2);
                    let a_data: Vec<f32> = (0..m * k + 3).map(|_| uniform(&mut rng)).collect();
                    let b_data: Vec<f32> = (0..k * n + 3).map(|_| uniform(&mut rng)).collect();
                    let a = if ta {
                        MatRef::row_major(&a_data, m.max(1)).t()
                    } else {
                        MatRef::row_major(&a_data, k.max(1))
                    };
                    let b = if tb {
                        MatRef::row_major(&b_data, k.max(1)).t()
                    } else {
                        MatRef::row_major(&b_data, n.max(1))
                    };
                    let ldc = n + (layout % 3);
                    let c0: Vec<f32> = (0..m * ldc + 2).map(|_| uniform(&mut rng)).collect();
                    let alpha = 0.75 - layout as f32 * 0.5;
                    let mut c = c0.clone();
                    gemm_with(isa, m, n, k, alpha, a, b, &mut c, ldc, &mut pack);
                    let (want, mag) = reference(m, n, k, alpha, a, b, &c0, ldc);
                    let bound = |i: usize| 2.0 * (k + 1) as f64 * 2f64.powi(-24) * mag[i] + 1e-30;
                    for i in 0..m {
                        for j in 0..n {
                            let got = c[i * ldc + j] as f64;
                            let w = want[i * n + j];
                            assert!(
                                (got - w).abs() <= bound(i * n + j),
                                "{isa:?} m{m} n{n} k{k} layout{layout} ({i},{j}): {got} vs {w}"
                            );
                        }
                        // Padding between rows is untouched.
                        for j in n..ldc {
                            assert_eq!(c[i * ldc + j], c0[i * ldc + j]);
                        }
                    }
                    cases += 1;
                }
            }
        }
        assert!(cases > 100);
    }

    #[test]
    #[cfg_attr(miri, ignore = "thousands of f64 reference products: too slow under Miri")]
    fn scalar_gemm_matches_the_definition() {
        check_level(Isa::Scalar, 41);
    }

    #[test]
    #[cfg_attr(miri, ignore = "SIMD intrinsics are not what Miri checks here")]
    fn simd_gemm_matches_the_definition_on_edge_sizes() {
        for isa in [Isa::Avx2, Isa::Avx512] {
            if isa.available() {
                check_level(isa, 42 + isa as u64);
            }
        }
    }

    /// Thin products with both operands contiguous along `k` (the dot-product kernels on the
    /// SIMD levels), with `k` tails and several depth blocks.
    #[test]
    #[cfg_attr(miri, ignore = "SIMD intrinsics are not what Miri checks here")]
    fn thin_k_contiguous_products_match_the_definition() {
        let mut rng = Pcg64::seed_from_u64(44);
        let mut pack = vec![0.0; GEMM_PACK_LEN];
        for &(m, n, k) in
            &[(37, 9, 1031), (64, 64, 520), (20, 17, 533), (300, 16, 1000), (3, 8, 1000)]
        {
            let a_data: Vec<f32> = (0..m * k).map(|_| uniform(&mut rng)).collect();
            let b_data: Vec<f32> = (0..n * k).map(|_| uniform(&mut rng)).collect();
            let a = MatRef::row_major(&a_data, k);
            let b = MatRef::row_major(&b_data, k).t();
            let c0: Vec<f32> = (0..m * n).map(|_| uniform(&mut rng)).collect();
            let (want, mag) = reference(m, n, k, 0.5, a, b, &c0, n);
            for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
                let mut c = c0.clone();
                gemm_with(isa, m, n, k, 0.5, a, b, &mut c, n, &mut pack);
                for (i, (&got, &w)) in c.iter().zip(&want).enumerate() {
                    let bound = 2.0 * (k + 1) as f64 * 2f64.powi(-24) * mag[i];
                    assert!((got as f64 - w).abs() <= bound, "{isa:?} {m}x{n}x{k} [{i}]");
                }
            }
        }
    }

    /// Shallow products (`k ≤ 12`, the skinny kernel on AVX-512) with column tails.
    #[test]
    #[cfg_attr(miri, ignore = "SIMD intrinsics are not what Miri checks here")]
    fn shallow_products_match_the_definition() {
        let mut rng = Pcg64::seed_from_u64(45);
        let mut pack = vec![0.0; GEMM_PACK_LEN];
        for k in 1..=13 {
            for &(m, n) in &[(3, 1000), (8, 16), (11, 17), (5, 33), (2, 47), (1, 31)] {
                let a_data: Vec<f32> = (0..m * k).map(|_| uniform(&mut rng)).collect();
                let b_data: Vec<f32> = (0..k * (n + 5)).map(|_| uniform(&mut rng)).collect();
                for ta in [false, true] {
                    let a = if ta {
                        MatRef::row_major(&a_data, m).t()
                    } else {
                        MatRef::row_major(&a_data, k)
                    };
                    let b = MatRef { data: &b_data, rs: n + 5, cs: 1 };
                    let ldc = n + 2;
                    let c0: Vec<f32> = (0..m * ldc).map(|_| uniform(&mut rng)).collect();
                    let (want, mag) = reference(m, n, k, -1.5, a, b, &c0, ldc);
                    for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
                        let mut c = c0.clone();
                        gemm_with(isa, m, n, k, -1.5, a, b, &mut c, ldc, &mut pack);
                        for i in 0..m {
                            for j in 0..n {
                                let bound = 2.0 * (k + 1) as f64 * 2f64.powi(-24) * mag[i * n + j];
                                let got = c[i * ldc + j] as f64;
                                assert!(
                                    (got - want[i * n + j]).abs() <= bound,
                                    "{isa:?} {m}x{n}x{k}"
                                );
                            }
                            for j in n..ldc {
                                assert_eq!(c[i * ldc + j], c0[i * ldc + j], "padding");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn tiny_gemm_is_exact_on_small_integers() {
        // 2×3 · 3×2 with integers: every level is exact.
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [7.0f32, 8.0, 9.0, 10.0, 11.0, 12.0];
        let mut pack = vec![0.0; GEMM_PACK_LEN];
        for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
            let mut c = [1.0f32; 4];
            gemm_with(
                isa,
                2,
                2,
                3,
                2.0,
                MatRef::row_major(&a, 3),
                MatRef::row_major(&b, 2),
                &mut c,
                2,
                &mut pack,
            );
            assert_eq!(c, [117.0, 129.0, 279.0, 309.0], "{isa:?}");
        }
    }
}
