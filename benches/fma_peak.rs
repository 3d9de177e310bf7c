//! Register-only FMA loops: the peak f32 multiply-add rate of one core, the ceiling for the
//! GEMM rates of the `kernels` bench.
//!
//! A round updates each of `N` independent vector accumulators once with
//! `acc ← acc·a + b` (one fused multiply-add: 2 flops per lane) and touches no memory, so the
//! only limit is the FMA issue rate. Keeping the FMA units busy takes at least
//! latency × ports independent chains (4 × 2 = 8 on recent Intel cores); the loops use more:
//!
//! | level | chains | lanes | flops per round | registers |
//! | --- | --- | --- | --- | --- |
//! | AVX-512 | 16 | 16 | 512 | 16 accumulators + 2 constants of 32 zmm |
//! | AVX2 | 12 | 8 | 192 | 12 accumulators + 2 constants of 16 ymm (16 would spill) |
//!
//! Each function checks the CPU with `is_x86_feature_detected!` and returns `None` when the
//! level is missing; the result (the sum of all lanes) is returned so the loop cannot be
//! optimised away. The recurrence converges to `b/(1 − a) = 0.1` and stays finite.

use std::arch::x86_64::{
    __m256, __m512, _mm256_add_ps, _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_fmadd_ps,
    _mm256_set1_ps, _mm512_add_ps, _mm512_fmadd_ps, _mm512_reduce_add_ps, _mm512_set1_ps,
    _mm_add_ps, _mm_cvtss_f32, _mm_hadd_ps,
};

/// Multiplier of the recurrence.
pub const A: f32 = 0.999_999;
/// Addend of the recurrence.
pub const B: f32 = 1e-7;
/// Independent zmm accumulators of [`avx512`].
pub const AVX512_CHAINS: usize = 16;
/// Independent ymm accumulators of [`avx2`].
pub const AVX2_CHAINS: usize = 12;
/// Flops per round of [`avx512`]: 16 chains × 16 lanes × 2.
pub const AVX512_FLOPS_PER_ROUND: u64 = (AVX512_CHAINS * 16 * 2) as u64;
/// Flops per round of [`avx2`]: 12 chains × 8 lanes × 2.
pub const AVX2_FLOPS_PER_ROUND: u64 = (AVX2_CHAINS * 8 * 2) as u64;

/// `rounds` rounds of 16 independent AVX-512 FMA chains; the sum of the final lanes, or
/// `None` without AVX-512F.
pub fn avx512(rounds: u64) -> Option<f32> {
    if !std::is_x86_feature_detected!("avx512f") {
        return None;
    }
    // SAFETY: `avx512_rounds` needs AVX-512F, which the CPU was just checked to support.
    Some(unsafe { avx512_rounds(rounds) })
}

/// `rounds` rounds of 12 independent AVX2 FMA chains; the sum of the final lanes, or `None`
/// without AVX2 and FMA.
pub fn avx2(rounds: u64) -> Option<f32> {
    if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")) {
        return None;
    }
    // SAFETY: `avx2_rounds` needs AVX2 and FMA, which the CPU was just checked to support.
    Some(unsafe { avx2_rounds(rounds) })
}

#[target_feature(enable = "avx512f")]
fn avx512_rounds(rounds: u64) -> f32 {
    let (a, b) = (_mm512_set1_ps(A), _mm512_set1_ps(B));
    let mut acc: [__m512; AVX512_CHAINS] = [_mm512_set1_ps(0.0); AVX512_CHAINS];
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

#[target_feature(enable = "avx2,fma")]
fn avx2_rounds(rounds: u64) -> f32 {
    let (a, b) = (_mm256_set1_ps(A), _mm256_set1_ps(B));
    let mut acc: [__m256; AVX2_CHAINS] = [_mm256_set1_ps(0.0); AVX2_CHAINS];
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every lane follows the scalar recurrence with `f32::mul_add` (the same fused rounding).
    fn lane_after(rounds: u64) -> f32 {
        (0..rounds).fold(0.0f32, |x, _| x.mul_add(A, B))
    }

    #[test]
    fn loops_compute_the_recurrence() {
        for rounds in [0, 1, 7, 1000] {
            let lane = lane_after(rounds) as f64;
            let cases = [(avx512(rounds), AVX512_CHAINS * 16), (avx2(rounds), AVX2_CHAINS * 8)];
            for (got, lanes) in cases {
                if let Some(got) = got {
                    let want = lane * lanes as f64;
                    assert!((got as f64 - want).abs() <= 1e-5 * want, "{rounds}: {got} vs {want}");
                }
            }
        }
    }
}
