//! x86-64 AVX2 pass of the Adam update ([`crate::optim::adam_update`]): eight parameters per
//! step with the scalar code's operations in the scalar code's order, never fused (multiply,
//! add, a correctly rounded square root and division, as IEEE 754 defines them lane by lane),
//! so every lane gets the scalar code's bits. The square root is the reason for this file:
//! the scalar code's `libm::sqrtf` is an inline `sqrtss` that no loop around it vectorises.
//! The AVX-512 level runs the same 8-lane code (the update reads and writes four arrays per
//! parameter, so wider vectors would not pay on 256-bit units). A leaf called by
//! [`crate::optim`] only after the level was checked.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::isa::Isa;
use crate::optim::{adam_one, AdamStep};

/// One Adam pass over `params` at `isa` (AVX2 or AVX-512); returns the largest magnitude bits
/// of the updated parameters, as [`adam_one`] folds them.
///
/// # Panics
/// If the level is not available, or the slices differ in length.
pub(crate) fn adam(
    isa: Isa,
    s: &AdamStep,
    params: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    grad: &[f32],
) -> u32 {
    assert!(isa.available() && isa != Isa::Scalar, "the {} kernels need CPU support", isa.name());
    let n = params.len();
    assert!(m.len() == n && v.len() == n && grad.len() == n, "Adam slices differ in length");
    // SAFETY: AVX2 is part of both vector levels, checked just above; the lengths agree.
    unsafe { adam_avx2(s, params, m, v, grad) }
}

/// # Safety
/// The CPU must support AVX2; the four slices must have the same length.
#[target_feature(enable = "avx2")]
unsafe fn adam_avx2(
    s: &AdamStep,
    params: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    grad: &[f32],
) -> u32 {
    let n = params.len();
    let full = n - n % 8;
    let b1 = _mm256_set1_ps(s.b1);
    let b2 = _mm256_set1_ps(s.b2);
    // The scalar code's `(1.0 - b1)` and `(1.0 - b2)`, rounded once as there.
    let c1 = _mm256_set1_ps(1.0 - s.b1);
    let c2 = _mm256_set1_ps(1.0 - s.b2);
    let bc1 = _mm256_set1_ps(s.inv_bc1);
    let bc2 = _mm256_set1_ps(s.inv_bc2);
    let lr = _mm256_set1_ps(s.lr);
    let eps = _mm256_set1_ps(s.eps);
    let abs = _mm256_set1_epi32(0x7fff_ffff);
    let mut largest = _mm256_setzero_si256();
    let (pp, mp, vp, gp) = (params.as_mut_ptr(), m.as_mut_ptr(), v.as_mut_ptr(), grad.as_ptr());
    let mut i = 0;
    while i < full {
        // SAFETY: i + 8 ≤ n, and every slice has n entries.
        unsafe {
            let g = _mm256_loadu_ps(gp.add(i));
            // m ← b1·m + (1 − b1)·g
            let mi =
                _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(mp.add(i))), _mm256_mul_ps(c1, g));
            // v ← b2·v + ((1 − b2)·g)·g
            let vi = _mm256_add_ps(
                _mm256_mul_ps(b2, _mm256_loadu_ps(vp.add(i))),
                _mm256_mul_ps(_mm256_mul_ps(c2, g), g),
            );
            _mm256_storeu_ps(mp.add(i), mi);
            _mm256_storeu_ps(vp.add(i), vi);
            let m_hat = _mm256_mul_ps(mi, bc1);
            let v_hat = _mm256_mul_ps(vi, bc2);
            // p ← p + (η·m̂)/(√v̂ + ε)
            let step =
                _mm256_div_ps(_mm256_mul_ps(lr, m_hat), _mm256_add_ps(_mm256_sqrt_ps(v_hat), eps));
            let p = _mm256_add_ps(_mm256_loadu_ps(pp.add(i)), step);
            _mm256_storeu_ps(pp.add(i), p);
            largest = _mm256_max_epu32(largest, _mm256_and_si256(_mm256_castps_si256(p), abs));
        }
        i += 8;
    }
    let mut lanes = [0u32; 8];
    // SAFETY: 8 lanes of 32 bits into an 8-entry array.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), largest) };
    let mut best = lanes.iter().copied().max().unwrap_or(0);
    for j in full..n {
        best = best.max(adam_one(s, &mut params[j], &mut m[j], &mut v[j], grad[j]));
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    /// The scalar pass, entry by entry, as the Scalar level runs it.
    fn scalar(s: &AdamStep, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) -> u32 {
        let mut best = 0;
        for j in 0..p.len() {
            best = best.max(adam_one(s, &mut p[j], &mut m[j], &mut v[j], g[j]));
        }
        best
    }

    /// Same bits as the scalar pass at both vector levels: every length around the 8-lane
    /// blocks, gradients from tiny to huge with zeros, signs, infinities and NaN, moments that
    /// make `v̂` zero, subnormal or large, and bias corrections of early and late steps.
    #[test]
    fn adam_pass_matches_the_scalar_pass_bit_for_bit() {
        let levels: Vec<Isa> =
            [Isa::Avx2, Isa::Avx512].into_iter().filter(|l| l.available()).collect();
        if levels.is_empty() {
            return;
        }
        let specials = [
            0.0f32,
            -0.0,
            1e-40,
            -3e-39,
            1e-20,
            7.5,
            -1e30,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MAX,
        ];
        let steps = [
            AdamStep { b1: 0.9, b2: 0.999, inv_bc1: 10.0, inv_bc2: 1000.0, lr: 1e-3, eps: 1e-8 },
            AdamStep { b1: 0.5, b2: 0.75, inv_bc1: 1.01, inv_bc2: 1.3, lr: 0.7, eps: 1e-3 },
            AdamStep { b1: 0.0, b2: 0.0, inv_bc1: 1.0, inv_bc2: 1.0, lr: 2.0, eps: 1e-30 },
        ];
        let miri = cfg!(miri);
        let lengths: Vec<usize> =
            if miri { [0, 7, 8, 9, 17].to_vec() } else { (0..40).chain([257, 1000]).collect() };
        for &isa in &levels {
            for s in &steps {
                for &n in &lengths {
                    let pick = |j: usize, a: usize, scale: f32| {
                        if (j * a).is_multiple_of(5) {
                            specials[(j * a / 5) % specials.len()]
                        } else {
                            scale * (((j * a) % 97) as f32 - 48.0) / 7.0
                        }
                    };
                    let g: Vec<f32> = (0..n).map(|j| pick(j, 3, 1.0)).collect();
                    let p0: Vec<f32> = (0..n).map(|j| pick(j, 7, 0.1)).collect();
                    let m0: Vec<f32> = (0..n).map(|j| pick(j, 11, 0.01)).collect();
                    let v0: Vec<f32> = (0..n).map(|j| pick(j, 13, 0.01).abs()).collect();
                    let (mut p1, mut m1, mut v1) = (p0.clone(), m0.clone(), v0.clone());
                    let (mut p2, mut m2, mut v2) = (p0.clone(), m0.clone(), v0.clone());
                    let want = scalar(s, &mut p1, &mut m1, &mut v1, &g);
                    let got = adam(isa, s, &mut p2, &mut m2, &mut v2, &g);
                    // Bits, except a NaN's payload and sign, which IEEE arithmetic leaves open.
                    let same =
                        |a: f32, b: f32| (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits();
                    for j in 0..n {
                        assert!(same(p1[j], p2[j]), "{isa:?} n={n} p[{j}]: {} vs {}", p1[j], p2[j]);
                        assert!(same(m1[j], m2[j]), "{isa:?} n={n} m[{j}]: {} vs {}", m1[j], m2[j]);
                        assert!(same(v1[j], v2[j]), "{isa:?} n={n} v[{j}]: {} vs {}", v1[j], v2[j]);
                    }
                    let nan = |b: u32| f32::from_bits(b).is_nan();
                    assert!(want == got || (nan(want) && nan(got)), "{isa:?} n={n}: largest");
                }
            }
        }
    }
}
