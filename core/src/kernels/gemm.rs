//! `C += α·A·B` over strided f32 views: the view type, the scalar oracle and the packing
//! pieces of the SIMD levels' driver. The public entry points [`gemm`](super::gemm()) and
//! [`gemm_with`](super::gemm_with) dispatch on the level in the parent module.
//!
//! Every view is `(data, row stride, column stride)`, so transposes cost nothing: the PID
//! phases read `Ξ_v`, `Ξ_h`, batches and their transposes straight from the pattern and sample
//! slices without forming `W`.
//!
//! # Blocking (SIMD levels)
//! The loops follow the usual five-loop GEMM: `B` is packed in `KC × NC` blocks into
//! `NR`-column panels, `A` in `MC × KC` blocks into `MR`-row panels (zero-padded at the edges),
//! and an `MR × NR` micro-kernel keeps the tile in registers over the `KC` loop (an `MR × 8`
//! one for a last column panel with at most 8 real columns). The packing buffer is the
//! caller's ([`gemm_pack_len`] entries for the level; the scalar level needs none). Full
//! panels are packed in AVX registers (8 × 8 transposes for the transposing layouts, register
//! copies otherwise), and the micro-kernels prefetch their `C` tile. A product may replace `C`
//! instead of adding to it ([`Epilogue`]): the micro-kernels then write the first depth block
//! onto a zero register, with the bits of zero-filling `C` first.
//!
//! # Packing `B` once
//! A `B` that many products share (the patterns `Ξ` or the weights `W` over the blocks of a
//! batch and the steps of a chain) can be packed once, block by block in the driver's layout
//! ([`prepacked_b_len`] entries, [`prepack_b_with`](super::prepack_b_with)), and read by
//! [`gemm_prepacked_with`](super::gemm_prepacked_with) instead of being packed per product.
//! Only data moves: the same bits. At MNIST sizes (V = 784, H = 3000, K = 200) a 256-row
//! block of the PID phase packs 3.65 M entries, 1.36 M of them the `Ξ` operands; packing was
//! about 13 % of the `pid` step's time (perf, AVX-512, 2 threads) before it moved to AVX
//! registers and the `Ξ` operands to one packing per call.
//!
//! # Error bound
//! Each level computes every `c_ij` as a sum of `k` products in some order (in blocks of
//! `KC`, with fused multiply-adds on AVX2/AVX-512), so each is within
//! `k·2⁻²⁴·Σ_p |α a_ip b_pj|` (to first order) of the exact value, and any two levels within
//! twice that. The tests assert `2k·2⁻²⁴·Σ_p |α a_ip b_pj| + 1e-30`.

use super::isa::Isa;

/// Depth of one packed block.
pub const KC: usize = 256;
/// Rows of `A` per packed block (a multiple of every level's `MR`).
pub const MC: usize = 120;
/// Columns of `B` per packed block (a multiple of every level's `NR`).
pub const NC: usize = 1024;

/// Entries the packing buffer of [`gemm`](super::gemm()) needs at level `isa`: `KC·(MC + NC)`
/// for [`Isa::Avx2`] and [`Isa::Avx512`], 0 for [`Isa::Scalar`] (which packs nothing).
pub const fn gemm_pack_len(isa: Isa) -> usize {
    match isa {
        Isa::Scalar => 0,
        Isa::Avx2 | Isa::Avx512 => KC * (MC + NC),
    }
}

/// Entries of a whole `k × n` operand `B` packed ahead for the SIMD levels' packed driver
/// ([`prepack_b_with`](super::prepack_b_with)): `k·⌈n/NR⌉·NR` with the level's panel width
/// `NR` (32 at [`Isa::Avx512`], 16 at [`Isa::Avx2`]), 0 at [`Isa::Scalar`].
pub const fn prepacked_b_len(isa: Isa, k: usize, n: usize) -> usize {
    let nr = match isa {
        Isa::Scalar => return 0,
        Isa::Avx2 => 16,
        Isa::Avx512 => 32,
    };
    k * n.div_ceil(nr) * nr
}

/// The largest [`gemm_pack_len`] of any level this target can have, so a buffer of this length
/// serves every level: `KC·(MC + NC)` on x86-64, 0 elsewhere (a microcontroller's build is
/// always scalar).
pub const GEMM_PACK_LEN: usize = {
    let mut max = 0;
    let mut i = 0;
    while i < Isa::ALL.len() {
        let isa = Isa::ALL[i];
        if isa.on_target() && gemm_pack_len(isa) > max {
            max = gemm_pack_len(isa);
        }
        i += 1;
    }
    max
};

/// What a product does with `C` ([`gemm_epilogue_with`](super::gemm_epilogue_with)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Epilogue {
    /// `C += α·A·B`.
    Add,
    /// `C = α·A·B`: the bits of zero-filling `C` (with `+0.0`) and adding.
    Set,
}

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
    pub(super) fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }

    /// Panics unless every entry of an `rows × cols` matrix is inside `data`.
    pub(super) fn check(&self, rows: usize, cols: usize, what: &str) {
        if rows == 0 || cols == 0 {
            return;
        }
        let last = (rows - 1)
            .checked_mul(self.rs)
            .and_then(|r| (cols - 1).checked_mul(self.cs).and_then(|c| r.checked_add(c)));
        assert!(matches!(last, Some(l) if l < self.data.len()), "{what} view out of bounds");
    }
}

/// Checks the arguments of a product `C += α·A·B` (`A` `m × k`, `B` `k × n`, `C` row-major
/// `m × n` with row stride `ldc`) and says whether it changes `C` at all.
///
/// # Panics
/// If a view or `C` is too short for the sizes or `ldc < n`.
#[allow(clippy::too_many_arguments)]
pub(super) fn check_args(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: &[f32],
    ldc: usize,
) -> bool {
    if m == 0 || n == 0 {
        return false;
    }
    a.check(m, k, "A");
    b.check(k, n, "B");
    assert!(ldc >= n, "ldc must be at least n");
    assert!(c.len() >= (m - 1) * ldc + n, "C too short");
    k != 0 && alpha != 0.0
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

/// Adds `α·tile` (row-major `MR × NR`) to the `rows × cols` corner of `C` at `(i, j)`, or with
/// `set` writes `0 + α·tile` there (the bits of adding to a zero-filled `C`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn add_tile<const MR: usize, const NR: usize>(
    tile: &[f32],
    (alpha, set): (f32, bool),
    rows: usize,
    cols: usize,
    c: &mut [f32],
    at: usize,
    ldc: usize,
) {
    for r in 0..rows {
        let dst = &mut c[at + r * ldc..at + r * ldc + cols];
        for (x, &t) in dst.iter_mut().zip(&tile[r * NR..r * NR + cols]) {
            let c0 = if set { 0.0 } else { *x };
            *x = c0 + alpha * t;
        }
    }
}
