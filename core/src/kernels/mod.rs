//! Compute kernels over caller buffers, each with a scalar oracle and SIMD variants chosen at
//! run time.
//!
//! # Layout
//! This module is the dispatcher: each public kernel matches on the [`Isa`] and calls either
//! the scalar code or `x86` (the SIMD kernels, the only `unsafe` code). The other modules are
//! leaves that never import this one: `isa`, [`mod@gemm`], [`bulk`], and `x86` (built on them).
//!
//! # Dispatch
//! [`Isa`] names an instruction-set level. With the `std` feature the first call to
//! [`active`] detects the best level the running CPU supports (`is_x86_feature_detected!`);
//! without `std` the level is fixed at compile time from `cfg(target_feature)` (so a
//! microcontroller build is always [`Isa::Scalar`], and an x86-64 `no_std` build picks up
//! AVX2/AVX-512 only when compiled with those target features). [`force`] selects a lower
//! level, for benchmarks and for testing a variant against the scalar oracle. The default
//! build needs no `-C target-cpu=native`.
//!
//! # Numerics
//! Integer kernels are bit-exact across levels. The f32 kernels sum in a different order per
//! level (and fuse multiply-adds on AVX2/AVX-512), so results agree with the scalar oracle
//! within a rounding bound stated on each kernel, and a run is bit-reproducible for a given
//! seed *and* level. [`Isa::name`] is what benchmark output reports.

use rand_core::RngCore;

pub mod bits;
pub mod bulk;
pub mod gemm;
mod isa;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use gemm::{gemm_pack_len, MatRef, GEMM_PACK_LEN};
pub use isa::{active, force, Isa, IsaUnavailable};

/// The sizes of a product `C (m×n) += α·A (m×k)·B (k×n)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmDims {
    /// Rows of `A` and `C`.
    pub m: usize,
    /// Columns of `B` and `C`.
    pub n: usize,
    /// Columns of `A`, rows of `B` (the summed dimension).
    pub k: usize,
}

/// A mutable row-major destination: entry `(i, j)` is `data[i·rs + j]`.
#[derive(Debug)]
pub struct MatMut<'a> {
    /// The backing slice.
    pub data: &'a mut [f32],
    /// Row stride (at least the column count).
    pub rs: usize,
}

/// `C += α·A·B` with `A` `m × k`, `B` `k × n` and `C` row-major `m × n` with row stride `c.rs`,
/// at the [`active`] level (see [`gemm_with`]). `pack` needs [`gemm_pack_len`] entries for
/// that level; [`GEMM_PACK_LEN`] is enough for any level (and 0 on a build whose level is
/// always scalar, such as a microcontroller's).
///
/// # Panics
/// If a view or `C` is too short for the sizes, `c.rs < n`, or `pack` is too short for the
/// level.
pub fn gemm(
    dims: GemmDims,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: MatMut<'_>,
    pack: &mut [f32],
) {
    gemm_with(active(), dims, alpha, a, b, c, pack);
}

/// As [`gemm()`] at a given level (the level must be [`Isa::available`]); `pack` needs
/// [`gemm_pack_len`]`(isa)` entries, so it may be empty at [`Isa::Scalar`].
///
/// # Panics
/// As [`gemm()`], and if `isa` is not available.
pub fn gemm_with(
    isa: Isa,
    dims: GemmDims,
    alpha: f32,
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: MatMut<'_>,
    pack: &mut [f32],
) {
    let GemmDims { m, n, k } = dims;
    let (c, ldc) = (c.data, c.rs);
    if isa != Isa::Scalar {
        assert!(isa.available(), "the {} kernels need CPU support", isa.name());
        assert!(
            pack.len() >= gemm_pack_len(isa),
            "gemm at level {}: pack buffer has {} entries, gemm_pack_len needs {}",
            isa.name(),
            pack.len(),
            gemm_pack_len(isa)
        );
    }
    if !gemm::check_args(m, n, k, alpha, a, b, c, ldc) {
        return;
    }
    match isa {
        Isa::Scalar => gemm::gemm_scalar(m, n, k, alpha, a, b, c, ldc),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 => x86::gemm(isa, m, n, k, alpha, a, b, c, ldc, pack),
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx2 | Isa::Avx512 => unreachable!("only the scalar level exists off x86-64"),
    }
}

/// Replaces every field `x` by a ±1 spin drawn with `P(+1) = σ(2x)`, at the active level
/// (the generator and draw rule are described in [`bulk`]). Consumes 32 `next_u64` of `rng`
/// per call, whatever the length. Bit-identical at every level.
pub fn sample_pm1_in_place<R: RngCore + ?Sized>(x: &mut [f32], rng: &mut R) {
    let mut lanes = bulk::Lanes::seed(rng);
    match active() {
        #[cfg(target_arch = "x86_64")]
        isa @ (Isa::Avx2 | Isa::Avx512) => x86::sample_pm1(isa, x, &mut lanes),
        _ => bulk::sample_pm1_with(x, &mut lanes),
    }
}

/// `x ← tanh x` ([`crate::num::tanh`]) for every entry, at the active level's vector width.
/// Bit-identical at every level (the same IEEE operations per entry, never fused).
pub fn tanh_in_place(x: &mut [f32]) {
    map_in_place(x, crate::num::tanh);
}

/// `x ← σ(2x)` ([`crate::num::sigmoid`]) for every entry: the `P(+1)` of a ±1 spin with field
/// `x`. Bit-identical at every level.
pub fn sigmoid2_in_place(x: &mut [f32]) {
    map_in_place(x, |v| crate::num::sigmoid(2.0 * v));
}

/// Applies `f` to every entry, compiled for the active level.
#[inline(always)]
fn map_in_place<F: Fn(f32) -> f32>(x: &mut [f32], f: F) {
    match active() {
        #[cfg(target_arch = "x86_64")]
        isa @ (Isa::Avx2 | Isa::Avx512) => x86::map_in_place(isa, x, f),
        _ => bulk::map_scalar(x, f),
    }
}

/// `popcount(a ⊕ b)` at the active level ([`bits::xor_popcount`]). Bit-exact at every level.
///
/// # Panics
/// If `a` and `b` differ in length.
#[inline]
pub fn xor_popcount(a: &[u64], b: &[u64]) -> u32 {
    bits::xor_popcount(a, b)
}

/// `popcount(mask ∧ (a ⊕ b))` at the active level ([`bits::masked_xor_popcount`]).
///
/// # Panics
/// If the slices differ in length.
#[inline]
pub fn masked_xor_popcount(a: &[u64], b: &[u64], mask: &[u64]) -> u32 {
    bits::masked_xor_popcount(a, b, mask)
}

/// `acc_j += s_j·x` by the bits (set: `+1`) at the active level ([`bits::signed_add_i32`]).
///
/// # Panics
/// If `bits.len() != words_for(acc.len())`.
#[inline]
pub fn signed_add_i32(b: &[u64], x: i32, acc: &mut [i32]) {
    bits::signed_add_i32(b, x, acc)
}

/// `acc_j += s_j·x` in `i64` at the active level ([`bits::signed_add_i64`]).
///
/// # Panics
/// If `bits.len() != words_for(acc.len())`.
#[inline]
pub fn signed_add_i64(b: &[u64], x: i64, acc: &mut [i64]) {
    bits::signed_add_i64(b, x, acc)
}

/// `Σ_j s_j·t_j` at the active level ([`bits::signed_sum_i16`]).
///
/// # Panics
/// If `bits.len() != words_for(t.len())` or `t.len() > bits::SIGNED_SUM_MAX_LEN`.
#[inline]
pub fn signed_sum_i16(b: &[u64], t: &[i16]) -> i32 {
    bits::signed_sum_i16(b, t)
}

/// `acc_j += a·t_j` in `i64` at the active level ([`bits::axpy_i16_i64`]).
///
/// # Panics
/// If `t` and `acc` differ in length.
#[inline]
pub fn axpy_i16_i64(a: i32, t: &[i16], acc: &mut [i64]) {
    bits::axpy_i16_i64(a, t, acc)
}
