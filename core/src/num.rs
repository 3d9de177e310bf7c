//! Scalar activations and random draws.
//!
//! For ±1 spins, `P(s = +1 | field x) = σ(2x)` with `σ(x) = 1/(1 + e^{−x})`. The free energy
//! needs `log(2 cosh x)`, evaluated as `|x| + log1p(e^{−2|x|})` (since
//! `2 cosh x = e^{|x|}(1 + e^{−2|x|})`), which never overflows. DESIGN.md §1 writes an extra
//! `+ ln 2`; that would be `log(4 cosh x)`, and the tests below check the identity directly.
//! Functions call `libm` by name so that `std` and `no_std` builds agree bit for bit.

use rand_core::RngCore;

/// `σ(x) = 1 / (1 + e^{−x})`. Saturates to exactly 0 or 1 for large `|x|`.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + libm::expf(-x))
}

/// `tanh(x)` (libm).
#[inline]
pub fn tanh(x: f32) -> f32 {
    libm::tanhf(x)
}

/// `log(2 cosh x)` without overflow: `|x| + log1p(e^{−2|x|})`.
#[inline]
pub fn log_2cosh(x: f32) -> f32 {
    let a = libm::fabsf(x);
    a + libm::log1pf(libm::expf(-2.0 * a))
}

/// `log(2 cosh x)` in `f64`, for exact computations.
#[inline]
pub fn log_2cosh_f64(x: f64) -> f64 {
    let a = libm::fabs(x);
    a + libm::log1p(libm::exp(-2.0 * a))
}

/// A uniform draw in `[0, 1)` with 24 random bits (one `next_u32`).
#[inline]
pub fn uniform01<R: RngCore + ?Sized>(rng: &mut R) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Draws a ±1 spin with `P(+1) = σ(2·field)`. A NaN field gives `−1`.
#[inline]
pub fn sample_spin<R: RngCore + ?Sized>(field: f32, rng: &mut R) -> f32 {
    if uniform01(rng) < sigmoid(2.0 * field) {
        1.0
    } else {
        -1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_2cosh_matches_definition_and_never_overflows() {
        for &x in &[0.0f32, 0.1, -0.7, 1.0, 3.0, -8.0, 20.0] {
            let want = (2.0 * (x as f64).cosh()).ln();
            assert!((log_2cosh(x) as f64 - want).abs() < 1e-5 * want.abs().max(1.0), "x = {x}");
            assert!((log_2cosh_f64(x as f64) - want).abs() < 1e-12 * want.abs().max(1.0));
        }
        let big = log_2cosh(1e30);
        assert!(big.is_finite() && (big - 1e30).abs() / 1e30 < 1e-6);
        assert!(log_2cosh(-1e30).is_finite());
    }

    #[test]
    fn sigmoid_saturates_cleanly() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
        assert!((sigmoid(1.0) - 0.731_058_6).abs() < 1e-6);
    }

    #[test]
    fn spin_draws_follow_the_conditional() {
        use rand_core::SeedableRng;
        let mut rng = rand_pcg::Pcg64::seed_from_u64(7);
        let x = 0.3f32;
        let n = 200_000;
        let ups = (0..n).filter(|_| sample_spin(x, &mut rng) > 0.0).count();
        let p = sigmoid(2.0 * x) as f64;
        let se = (p * (1.0 - p) / n as f64).sqrt();
        assert!((ups as f64 / n as f64 - p).abs() < 5.0 * se);
        assert_eq!(sample_spin(f32::NAN, &mut rng), -1.0);
        assert_eq!(sample_spin(f32::INFINITY, &mut rng), 1.0);
    }
}
