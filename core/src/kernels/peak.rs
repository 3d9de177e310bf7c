//! Register-only FMA loops: the peak f32 multiply-add rate of one core at a kernel level, the
//! ceiling that GEMM and training rates are compared against (the `fma_peak` bench group,
//! `rapid bench paper`).
//!
//! # Equation
//! A round updates each of `N` independent vector accumulators once with
//!
//! ```text
//! acc ← acc·A + B        one fused multiply-add: 2 flops per lane
//! ```
//!
//! and touches no memory, so the only limit is the FMA issue rate. Keeping the FMA units busy
//! takes at least latency × ports independent chains (4 × 2 = 8 on recent Intel cores); the
//! loops use more:
//!
//! | level | chains | lanes | flops per round | registers |
//! | --- | --- | --- | --- | --- |
//! | AVX-512 | 16 | 16 | 512 | 16 accumulators + 2 constants of 32 zmm |
//! | AVX2 | 12 | 8 | 192 | 12 accumulators + 2 constants of 16 ymm (16 would spill) |
//!
//! Every lane starts at 0 and follows the scalar recurrence `x ← fma(x, A, B)`, which converges
//! to `B/(1 − A) = 0.1` and stays finite; the loops return the sum of all final lanes, so they
//! cannot be optimised away. The scalar level has no such loop ([`fma_rounds`] returns `None`):
//! its "peak" would measure the compiler, not the machine.
//!
//! The loops themselves live in the x86-64 kernel file (the crate's only `unsafe` code),
//! entered only after [`Isa::available`] said yes; off x86-64 every SIMD level is unavailable.

use super::isa::Isa;

/// Multiplier `A` of the recurrence.
pub const A: f32 = 0.999_999;
/// Addend `B` of the recurrence.
pub const B: f32 = 1e-7;
/// Independent zmm accumulators of the AVX-512 loop.
pub const AVX512_CHAINS: usize = 16;
/// Independent ymm accumulators of the AVX2 loop.
pub const AVX2_CHAINS: usize = 12;

/// The f32 lanes of the loop at `isa` (independent accumulators × lanes per vector: what
/// [`fma_rounds`] sums); 0 at [`Isa::Scalar`], which has no loop.
pub const fn lanes(isa: Isa) -> usize {
    match isa {
        Isa::Scalar => 0,
        Isa::Avx2 => AVX2_CHAINS * 8,
        Isa::Avx512 => AVX512_CHAINS * 16,
    }
}

/// Flops of one round of the loop at `isa`: 2 per lane (one fused multiply-add), so 512 at
/// AVX-512 and 192 at AVX2; `None` at [`Isa::Scalar`].
pub const fn flops_per_round(isa: Isa) -> Option<u64> {
    match isa {
        Isa::Scalar => None,
        _ => Some(2 * lanes(isa) as u64),
    }
}

/// Runs `rounds` rounds of the loop at `isa` on this thread and returns the sum of the final
/// lanes; `None` at [`Isa::Scalar`] and at a level this CPU (or build) cannot run.
///
/// # Examples
/// ```
/// use rapid_core::kernels::{active, peak, Isa};
/// assert_eq!(peak::fma_rounds(Isa::Scalar, 10), None);
/// let isa = active();
/// if let (Some(sum), Some(flops)) = (peak::fma_rounds(isa, 1000), peak::flops_per_round(isa)) {
///     assert!(sum.is_finite() && flops >= 192);
/// }
/// ```
pub fn fma_rounds(isa: Isa, rounds: u64) -> Option<f32> {
    if isa == Isa::Scalar || !isa.available() {
        return None;
    }
    #[cfg(target_arch = "x86_64")]
    {
        Some(super::x86::fma_rounds(isa, rounds))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // `available` is false for every SIMD level off x86-64.
        let _ = rounds;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_has_no_loop_and_simd_levels_give_finite_sums() {
        assert_eq!(fma_rounds(Isa::Scalar, 5), None);
        assert_eq!(flops_per_round(Isa::Scalar), None);
        assert_eq!(flops_per_round(Isa::Avx512), Some(512));
        assert_eq!(flops_per_round(Isa::Avx2), Some(192));
        for isa in [Isa::Avx2, Isa::Avx512] {
            match fma_rounds(isa, 100) {
                Some(sum) => assert!(isa.available() && sum.is_finite() && sum > 0.0, "{isa:?}"),
                None => assert!(!isa.available(), "{isa:?}"),
            }
        }
    }
}
