//! Compute kernels over caller buffers, each with a scalar oracle and SIMD variants chosen at
//! run time.
//!
//! # Layout
//! This module is the dispatcher: each public kernel matches on the [`Isa`] and calls either
//! the scalar code or `x86` (the SIMD kernels, the only `unsafe` code); the integer kernels
//! on bit-packed spins match on a [`BitsLevel`] and call [`bits`] or `x86_bits`. The other
//! modules are leaves that never import this one: `isa`, [`mod@gemm`], [`bulk`], [`bits`],
//! and `x86`, `x86_bits` (built on them), `x86_level` (the `#[target_feature]` entry of
//! [`at_level`]). [`peak`] (the register-only FMA loops that measure
//! the machine's peak) holds their constants and dispatches into `x86` itself.
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
#[cfg(test)]
mod bits_tests;
pub mod bulk;
pub mod gemm;
mod isa;
pub mod peak;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;
#[cfg(target_arch = "x86_64")]
mod x86_bits;
#[cfg(target_arch = "x86_64")]
mod x86_level;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_optim;

pub use gemm::{gemm_pack_len, prepacked_b_len, Epilogue, MatRef, GEMM_PACK_LEN};
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
    gemm_impl(isa, dims, alpha, (a, b), c, pack, None, Epilogue::Add);
}

/// `C = α·A·B` or `C += α·A·B`, as `epilogue` says, at level `isa`,
/// with `B` packed ahead when `packed_b` is not empty (as [`gemm_prepacked_with`]; it must
/// then be what [`prepack_b_with`] wrote for this `B`, and is read only where the product
/// packs `B`, [`gemm_packs_b`]). The same bits as zero-filling the `m × n` entries of `C`,
/// [`gemm_with`]; the packed driver writes the first depth block straight onto zeros.
///
/// # Panics
/// As [`gemm_prepacked_with`].
pub fn gemm_epilogue_with(
    isa: Isa,
    dims: GemmDims,
    alpha: f32,
    (a, b): (MatRef<'_>, MatRef<'_>),
    c: MatMut<'_>,
    (pack, packed_b): (&mut [f32], &[f32]),
    epilogue: Epilogue,
) {
    let packed_b = if packed_b.is_empty() {
        None
    } else {
        assert_prepacked_b_len(isa, dims, packed_b);
        Some(packed_b)
    };
    gemm_impl(isa, dims, alpha, (a, b), c, pack, packed_b, epilogue);
}

/// Packs all of `B` (`k × n`) at level `isa` for [`gemm_prepacked_with`] into `out`
/// ([`prepacked_b_len`]`(isa, k, n)` entries; nothing at [`Isa::Scalar`]).
///
/// # Panics
/// If `isa` is not available, `b` is too short for `k × n`, or `out` is too short.
pub fn prepack_b_with(isa: Isa, k: usize, n: usize, b: MatRef<'_>, out: &mut [f32]) {
    match isa {
        Isa::Scalar => {}
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 => x86::prepack_b(isa, k, n, b, out),
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx2 | Isa::Avx512 => {
            let _ = (k, n, b, out);
            unreachable!("only the scalar level exists off x86-64")
        }
    }
}

/// [`gemm_with`] with `B` packed ahead: `packed_b` is what [`prepack_b_with`] wrote for the
/// same `B`, `k`, `n` and level, and the product reads it wherever [`gemm_with`] would pack
/// `B`. The same bits as [`gemm_with`] (packing only moves data), without packing `B` again
/// for each product that shares it.
///
/// # Panics
/// As [`gemm_with`], and if `packed_b` is shorter than [`prepacked_b_len`].
pub fn gemm_prepacked_with(
    isa: Isa,
    dims: GemmDims,
    alpha: f32,
    (a, b): (MatRef<'_>, MatRef<'_>),
    packed_b: &[f32],
    c: MatMut<'_>,
    pack: &mut [f32],
) {
    assert_prepacked_b_len(isa, dims, packed_b);
    gemm_impl(isa, dims, alpha, (a, b), c, pack, Some(packed_b), Epilogue::Add);
}

/// Panics unless `packed_b` holds the [`prepacked_b_len`] entries of a `B` of `dims` at `isa`.
fn assert_prepacked_b_len(isa: Isa, dims: GemmDims, packed_b: &[f32]) {
    let need = prepacked_b_len(isa, dims.k, dims.n);
    assert!(
        packed_b.len() >= need,
        "prepacked B has {} entries, prepacked_b_len needs {need}",
        packed_b.len()
    );
}

/// Whether the product `dims` with the layouts (strides) of `a` and `b` packs `B` at level
/// `isa`, that is, whether [`gemm_prepacked_with`] reads its prepacked `B` (otherwise it runs
/// as [`gemm_with`] and ignores it). Never at [`Isa::Scalar`]; not for products small or thin
/// enough for the direct, skinny or dot-product paths. Monotone in `dims.m`: if it holds for
/// `m` rows it holds for more.
pub fn gemm_packs_b(isa: Isa, dims: GemmDims, a: MatRef<'_>, b: MatRef<'_>) -> bool {
    match isa {
        Isa::Scalar => false,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 => x86::takes_driver(isa, dims.m, dims.n, dims.k, a, b),
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx2 | Isa::Avx512 => {
            let _ = (dims, a, b);
            false
        }
    }
}

/// The body of [`gemm_with`], [`gemm_prepacked_with`] and [`gemm_epilogue_with`].
#[allow(clippy::too_many_arguments)]
fn gemm_impl(
    isa: Isa,
    dims: GemmDims,
    alpha: f32,
    (a, b): (MatRef<'_>, MatRef<'_>),
    c: MatMut<'_>,
    pack: &mut [f32],
    packed_b: Option<&[f32]>,
    epilogue: Epilogue,
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
    let changes = gemm::check_args(m, n, k, alpha, a, b, c, ldc);
    #[cfg(target_arch = "x86_64")]
    if changes && isa != Isa::Scalar && x86::takes_driver(isa, m, n, k, a, b) {
        // The packed driver writes the epilogue itself.
        x86::gemm(isa, m, n, k, alpha, (a, b), (c, ldc), (pack, packed_b), epilogue);
        return;
    }
    // Elsewhere: zero-fill and add, literally.
    if epilogue != Epilogue::Add && m > 0 && n > 0 {
        for row in c.chunks_mut(ldc).take(m) {
            row[..n].fill(0.0);
        }
    }
    if changes {
        match isa {
            Isa::Scalar => gemm::gemm_scalar(m, n, k, alpha, a, b, c, ldc),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512 => {
                x86::gemm(isa, m, n, k, alpha, (a, b), (c, ldc), (pack, packed_b), Epilogue::Add)
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => {
                let _ = packed_b;
                unreachable!("only the scalar level exists off x86-64")
            }
        }
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

/// Runs `f` compiled for the active level: on x86-64 AVX2/AVX-512, `f` is called from a
/// `#[target_feature]` function, so the loops of `f` and of what it inlines (mark the callees
/// `#[inline(always)]`) may use the wider vectors; elsewhere, and at [`Isa::Scalar`], it is a
/// plain call. The same IEEE operations run at every level (Rust never fuses a multiply and
/// an add by itself), so code without `mul_add` or intrinsics gives the same bits at every
/// level; only its speed changes. For the safe callers of the harness (`exact`), whose loops
/// are written to autovectorise.
#[inline(always)]
pub fn at_level<R, F: FnOnce() -> R>(f: F) -> R {
    match active() {
        #[cfg(target_arch = "x86_64")]
        isa @ (Isa::Avx2 | Isa::Avx512) => x86_level::run(isa, f),
        _ => f(),
    }
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

// ---------------------------------------------------------------------------------------
// Integer kernels on bit-packed spins.

/// A variant of the integer bit kernels ([`bits`]): the portable oracle, or an x86-64
/// variant. [`BitsLevel::active`] is the one the dispatched entry points ([`xor_popcount`],
/// …) run; the `*_with` entry points ([`xor_popcount_with`], …) run a given one, for tests
/// and benchmarks. Every level gives the oracle's bits.
///
/// The dispatched level follows [`active`]: [`Isa::Scalar`] runs [`BitsLevel::Popcnt`] where
/// the CPU has POPCNT (the oracle with the popcount instruction), [`Isa::Avx512`] runs
/// [`BitsLevel::Avx512Vpopcnt`] where it has VPOPCNTDQ. With `std`, POPCNT and VPOPCNTDQ are
/// detected once at run time; without, they are fixed by `cfg(target_feature)`, as the
/// [`Isa`] levels are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BitsLevel {
    /// The portable oracles of [`bits`] (what microcontrollers run).
    Scalar,
    /// x86-64: the oracles compiled with POPCNT. Only the popcounts differ from
    /// [`BitsLevel::Scalar`].
    Popcnt,
    /// x86-64 AVX2 + POPCNT (the popcounts use POPCNT on short vectors).
    Avx2,
    /// x86-64 AVX-512F/BW/VL (the [`Isa::Avx512`] features); popcounts by a 512-bit nibble
    /// table.
    Avx512,
    /// [`BitsLevel::Avx512`] with AVX-512 VPOPCNTDQ popcounts.
    Avx512Vpopcnt,
}

impl BitsLevel {
    /// Every level, lowest first.
    pub const ALL: [BitsLevel; 5] = [
        BitsLevel::Scalar,
        BitsLevel::Popcnt,
        BitsLevel::Avx2,
        BitsLevel::Avx512,
        BitsLevel::Avx512Vpopcnt,
    ];

    /// Short name for reports: `scalar`, `popcnt`, `avx2`, `avx512`, `avx512vpopcnt`.
    pub const fn name(self) -> &'static str {
        match self {
            BitsLevel::Scalar => "scalar",
            BitsLevel::Popcnt => "popcnt",
            BitsLevel::Avx2 => "avx2",
            BitsLevel::Avx512 => "avx512",
            BitsLevel::Avx512Vpopcnt => "avx512vpopcnt",
        }
    }

    /// Whether this CPU (with `std`) or this build (without) can run the level.
    #[inline]
    pub fn available(self) -> bool {
        match self.x86() {
            None => true,
            #[cfg(target_arch = "x86_64")]
            Some(v) => v.available(),
            #[cfg(not(target_arch = "x86_64"))]
            Some(_) => false,
        }
    }

    /// The level the dispatched bit kernels run at instruction-set level `isa` (see the type
    /// docs). Available whenever `isa` is.
    #[inline]
    pub fn for_isa(isa: Isa) -> BitsLevel {
        let pick = |better: BitsLevel, base: BitsLevel| {
            if better.available() {
                better
            } else {
                base
            }
        };
        match isa {
            Isa::Scalar => pick(BitsLevel::Popcnt, BitsLevel::Scalar),
            Isa::Avx2 => BitsLevel::Avx2,
            Isa::Avx512 => pick(BitsLevel::Avx512Vpopcnt, BitsLevel::Avx512),
        }
    }

    /// The level of the dispatched bit kernels: [`BitsLevel::for_isa`]`(`[`active`]`())`.
    #[inline]
    pub fn active() -> BitsLevel {
        BitsLevel::for_isa(active())
    }

    /// The x86-64 variant, `None` for the portable oracle.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    fn x86(self) -> Option<x86_bits::Variant> {
        match self {
            BitsLevel::Scalar => None,
            BitsLevel::Popcnt => Some(x86_bits::Variant::Popcnt),
            BitsLevel::Avx2 => Some(x86_bits::Variant::Avx2),
            BitsLevel::Avx512 => Some(x86_bits::Variant::Avx512),
            BitsLevel::Avx512Vpopcnt => Some(x86_bits::Variant::Avx512Vpopcnt),
        }
    }

    /// Off x86-64 only the portable level exists: `Some(())` marks the others.
    #[cfg(not(target_arch = "x86_64"))]
    #[inline]
    fn x86(self) -> Option<()> {
        (self != BitsLevel::Scalar).then_some(())
    }
}

/// Panics for a level this target does not have (every level but the scalar one off x86-64).
#[cfg(not(target_arch = "x86_64"))]
#[cold]
fn no_bits_level(level: BitsLevel) -> ! {
    panic!("the {} bit kernels need CPU support", level.name())
}

/// `popcount(a ⊕ b)` at [`BitsLevel::active`] ([`bits::xor_popcount`]). Bit-exact at every
/// level.
///
/// # Panics
/// If `a` and `b` differ in length.
#[inline]
pub fn xor_popcount(a: &[u64], b: &[u64]) -> u32 {
    xor_popcount_with(BitsLevel::active(), a, b)
}

/// As [`xor_popcount`] at a given level.
///
/// # Panics
/// As [`xor_popcount`], and if `level` is not [`BitsLevel::available`].
#[inline]
pub fn xor_popcount_with(level: BitsLevel, a: &[u64], b: &[u64]) -> u32 {
    match level.x86() {
        None => bits::xor_popcount(a, b),
        #[cfg(target_arch = "x86_64")]
        Some(v) => x86_bits::xor_popcount(v, a, b),
        #[cfg(not(target_arch = "x86_64"))]
        Some(_) => no_bits_level(level),
    }
}

/// `popcount(mask ∧ (a ⊕ b))` at [`BitsLevel::active`] ([`bits::masked_xor_popcount`]).
///
/// # Panics
/// If the slices differ in length.
#[inline]
pub fn masked_xor_popcount(a: &[u64], b: &[u64], mask: &[u64]) -> u32 {
    masked_xor_popcount_with(BitsLevel::active(), a, b, mask)
}

/// As [`masked_xor_popcount`] at a given level.
///
/// # Panics
/// As [`masked_xor_popcount`], and if `level` is not [`BitsLevel::available`].
#[inline]
pub fn masked_xor_popcount_with(level: BitsLevel, a: &[u64], b: &[u64], mask: &[u64]) -> u32 {
    match level.x86() {
        None => bits::masked_xor_popcount(a, b, mask),
        #[cfg(target_arch = "x86_64")]
        Some(v) => x86_bits::masked_xor_popcount(v, a, b, mask),
        #[cfg(not(target_arch = "x86_64"))]
        Some(_) => no_bits_level(level),
    }
}

/// `acc_j += s_j·x` by the bits (set: `+1`) at [`BitsLevel::active`]
/// ([`bits::signed_add_i32`]).
///
/// # Panics
/// If `bits.len() != words_for(acc.len())`.
#[inline]
pub fn signed_add_i32(b: &[u64], x: i32, acc: &mut [i32]) {
    signed_add_i32_with(BitsLevel::active(), b, x, acc)
}

/// As [`signed_add_i32`] at a given level.
///
/// # Panics
/// As [`signed_add_i32`], and if `level` is not [`BitsLevel::available`].
#[inline]
pub fn signed_add_i32_with(level: BitsLevel, b: &[u64], x: i32, acc: &mut [i32]) {
    match level.x86() {
        None => bits::signed_add_i32(b, x, acc),
        #[cfg(target_arch = "x86_64")]
        Some(v) => x86_bits::signed_add_i32(v, b, x, acc),
        #[cfg(not(target_arch = "x86_64"))]
        Some(_) => no_bits_level(level),
    }
}

/// `acc_j += s_j·x` in `i64` at [`BitsLevel::active`] ([`bits::signed_add_i64`]).
///
/// # Panics
/// If `bits.len() != words_for(acc.len())`.
#[inline]
pub fn signed_add_i64(b: &[u64], x: i64, acc: &mut [i64]) {
    signed_add_i64_with(BitsLevel::active(), b, x, acc)
}

/// As [`signed_add_i64`] at a given level.
///
/// # Panics
/// As [`signed_add_i64`], and if `level` is not [`BitsLevel::available`].
#[inline]
pub fn signed_add_i64_with(level: BitsLevel, b: &[u64], x: i64, acc: &mut [i64]) {
    match level.x86() {
        None => bits::signed_add_i64(b, x, acc),
        #[cfg(target_arch = "x86_64")]
        Some(v) => x86_bits::signed_add_i64(v, b, x, acc),
        #[cfg(not(target_arch = "x86_64"))]
        Some(_) => no_bits_level(level),
    }
}

/// `Σ_j s_j·t_j` at [`BitsLevel::active`] ([`bits::signed_sum_i16`]).
///
/// # Panics
/// If `bits.len() != words_for(t.len())` or `t.len() > bits::SIGNED_SUM_MAX_LEN`.
#[inline]
pub fn signed_sum_i16(b: &[u64], t: &[i16]) -> i32 {
    signed_sum_i16_with(BitsLevel::active(), b, t)
}

/// As [`signed_sum_i16`] at a given level.
///
/// # Panics
/// As [`signed_sum_i16`], and if `level` is not [`BitsLevel::available`].
#[inline]
pub fn signed_sum_i16_with(level: BitsLevel, b: &[u64], t: &[i16]) -> i32 {
    match level.x86() {
        None => bits::signed_sum_i16(b, t),
        #[cfg(target_arch = "x86_64")]
        Some(v) => x86_bits::signed_sum_i16(v, b, t),
        #[cfg(not(target_arch = "x86_64"))]
        Some(_) => no_bits_level(level),
    }
}

/// `acc_j += a·t_j` in `i64` at [`BitsLevel::active`] ([`bits::axpy_i16_i64`]).
///
/// # Panics
/// If `t` and `acc` differ in length.
#[inline]
pub fn axpy_i16_i64(a: i32, t: &[i16], acc: &mut [i64]) {
    axpy_i16_i64_with(BitsLevel::active(), a, t, acc)
}

/// As [`axpy_i16_i64`] at a given level.
///
/// # Panics
/// As [`axpy_i16_i64`], and if `level` is not [`BitsLevel::available`].
#[inline]
pub fn axpy_i16_i64_with(level: BitsLevel, a: i32, t: &[i16], acc: &mut [i64]) {
    match level.x86() {
        None => bits::axpy_i16_i64(a, t, acc),
        #[cfg(target_arch = "x86_64")]
        Some(v) => x86_bits::axpy_i16_i64(v, a, t, acc),
        #[cfg(not(target_arch = "x86_64"))]
        Some(_) => no_bits_level(level),
    }
}

/// One block of hidden units of the integer PID step over every row, at
/// [`BitsLevel::active`] ([`bits::hidden_block`]). Bit-exact at every level.
///
/// # Panics
/// As [`bits::hidden_block`].
#[inline]
pub fn hidden_block(
    blk: &bits::HiddenBlock<'_>,
    u: &mut [i32],
    g: &mut [i64],
    f: &mut [i32],
    t: &mut [i16],
) {
    hidden_block_with(BitsLevel::active(), blk, u, g, f, t)
}

/// As [`hidden_block`] at a given level.
///
/// # Panics
/// As [`bits::hidden_block`], and if `level` is not [`BitsLevel::available`].
#[inline]
pub fn hidden_block_with(
    level: BitsLevel,
    blk: &bits::HiddenBlock<'_>,
    u: &mut [i32],
    g: &mut [i64],
    f: &mut [i32],
    t: &mut [i16],
) {
    match level.x86() {
        None => bits::hidden_block(blk, u, g, f, t),
        #[cfg(target_arch = "x86_64")]
        Some(v) => x86_bits::hidden_block(v, blk, u, g, f, t),
        #[cfg(not(target_arch = "x86_64"))]
        Some(_) => no_bits_level(level),
    }
}

/// `acc_i += Σ_s (w·x[s·stride])·v_{s,i}` over packed rows at [`BitsLevel::active`]
/// ([`bits::signed_rows_add_i64`]). Bit-exact at every level.
///
/// # Panics
/// As [`bits::signed_rows_add_i64`].
#[inline]
pub fn signed_rows_add_i64(
    b: &[u64],
    row_words: usize,
    x: &[i32],
    stride: usize,
    w: i64,
    acc: &mut [i64],
) {
    signed_rows_add_i64_with(BitsLevel::active(), b, row_words, x, stride, w, acc)
}

/// As [`signed_rows_add_i64`] at a given level.
///
/// # Panics
/// As [`bits::signed_rows_add_i64`], and if `level` is not [`BitsLevel::available`].
#[inline]
pub fn signed_rows_add_i64_with(
    level: BitsLevel,
    b: &[u64],
    row_words: usize,
    x: &[i32],
    stride: usize,
    w: i64,
    acc: &mut [i64],
) {
    match level.x86() {
        None => bits::signed_rows_add_i64(b, row_words, x, stride, w, acc),
        #[cfg(target_arch = "x86_64")]
        Some(v) => x86_bits::signed_rows_add_i64(v, b, row_words, x, stride, w, acc),
        #[cfg(not(target_arch = "x86_64"))]
        Some(_) => no_bits_level(level),
    }
}

/// `out[k] = n − 2·popcount(rows_k ⊕ b)` for every row at [`BitsLevel::active`]
/// ([`bits::overlaps_rows`]). Bit-exact at every level.
///
/// # Panics
/// If `rows.len() != out.len()·b.len()`.
#[inline]
pub fn overlaps_rows(rows: &[u64], b: &[u64], n: i32, out: &mut [i32]) {
    overlaps_rows_with(BitsLevel::active(), rows, b, n, out)
}

/// As [`overlaps_rows`] at a given level.
///
/// # Panics
/// As [`overlaps_rows`], and if `level` is not [`BitsLevel::available`].
#[inline]
pub fn overlaps_rows_with(level: BitsLevel, rows: &[u64], b: &[u64], n: i32, out: &mut [i32]) {
    match level.x86() {
        None => bits::overlaps_rows(rows, b, n, out),
        #[cfg(target_arch = "x86_64")]
        Some(v) => x86_bits::overlaps_rows(v, rows, b, n, out),
        #[cfg(not(target_arch = "x86_64"))]
        Some(_) => no_bits_level(level),
    }
}

/// The integer PID update of `i8` latents at [`BitsLevel::active`]
/// ([`bits::apply_steps`]). Bit-exact at every level.
///
/// # Panics
/// As [`bits::apply_steps`].
#[inline]
pub fn apply_steps(theta: &mut [i8], d: &[i64], mul: i64, shift: u32) {
    apply_steps_with(BitsLevel::active(), theta, d, mul, shift)
}

/// As [`apply_steps`] at a given level.
///
/// # Panics
/// As [`bits::apply_steps`], and if `level` is not [`BitsLevel::available`].
#[inline]
pub fn apply_steps_with(level: BitsLevel, theta: &mut [i8], d: &[i64], mul: i64, shift: u32) {
    match level.x86() {
        None => bits::apply_steps(theta, d, mul, shift),
        #[cfg(target_arch = "x86_64")]
        Some(v) => x86_bits::apply_steps(v, theta, d, mul, shift),
        #[cfg(not(target_arch = "x86_64"))]
        Some(_) => no_bits_level(level),
    }
}
