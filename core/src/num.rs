//! Scalar activations and random draws.
//!
//! For ±1 spins, `P(s = +1 | field x) = σ(2x)` with `σ(x) = 1/(1 + e^{−x})`. The free energy
//! needs `log(2 cosh x)`, evaluated as `|x| + log1p(e^{−2|x|})` (since
//! `2 cosh x = e^{|x|}(1 + e^{−2|x|})`), which never overflows. An extra `+ ln 2`
//! (a slip that is easy to make) would give `log(4 cosh x)`; the tests below check the identity
//! directly.
//! `σ` and `tanh` are evaluated through [`exp_fast`], a range-reduced polynomial in plain `f32`
//! arithmetic: loops over it vectorise (libm's `expf`/`tanhf` do not, and were most of the
//! time of a sampling or PID step), and, like libm called by name, it gives the same bits with
//! and without `std`. Error bounds, checked against `f64` in the tests: [`exp_fast`] relative
//! error ≤ 4·10⁻⁷; [`sigmoid`] and [`tanh`] absolute error ≤ 3·10⁻⁷.

use rand_core::RngCore;

/// `e^x` in plain `f32` arithmetic: `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2` (Cody–Waite),
/// `e^r` by its degree-7 Taylor polynomial, `2^n` by building the exponent bits. The input is
/// clamped to `[−87.3, 88.3]` (results from about `1.2·10⁻³⁸` to `2·10³⁸`, never infinite or
/// subnormal); NaN gives NaN. Relative error ≤ 4·10⁻⁷.
#[inline(always)]
pub fn exp_fast(x: f32) -> f32 {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75; // ln 2 split so that n·LN2_HI is exact for |n| ≤ 128
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5·2^23: adding and subtracting rounds to an integer
    let x = x.clamp(-87.3, 88.3);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // `t`'s low mantissa bits hold n: bits(t) = bits(1.5·2^23) + n. Integer arithmetic on the
    // bits builds 2^n without a float-to-int conversion, so loops vectorise cleanly.
    let scale = f32::from_bits(t.to_bits().wrapping_sub(0x4B40_0000).wrapping_add(127) << 23);
    p * scale
}

/// `σ(x) = 1 / (1 + e^{−x})` via [`exp_fast`]; absolute error ≤ 3·10⁻⁷. Returns exactly 1 for
/// `x ≥ 17`, and a positive number below `10⁻³⁸` for `x ≤ −88.3`; NaN gives NaN.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp_fast(-x))
}

/// `tanh(x) = sign(x)·(1 − e)/(1 + e)` with `e = e^{−2|x|}` via [`exp_fast`]; absolute error
/// ≤ 3·10⁻⁷, odd, and exactly ±1 for `|x| ≥ 9`. NaN gives NaN.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let e = exp_fast(-2.0 * x.abs());
    ((1.0 - e) / (1.0 + e)).copysign(x)
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

/// `Σ a_i b_i`, four independent accumulators (the scalar oracle for the dot kernels).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; 4];
    let (ca, ra) = a.split_at(a.len() - a.len() % 4);
    let (cb, rb) = b.split_at(ca.len());
    for (x, y) in ca.chunks_exact(4).zip(cb.chunks_exact(4)) {
        for j in 0..4 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// `y += alpha·x`.
#[inline]
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dense sweep plus edge values, checked against `f64`.
    fn sweep() -> impl Iterator<Item = f32> {
        (-200_000..=200_000)
            .map(|i| i as f32 * 4.4e-4)
            .chain([0.0, -0.0, 1e-30, -1e-30, 1e-8, 87.0, -87.0, 88.3, -87.3])
    }

    #[test]
    #[cfg_attr(miri, ignore = "400k-point sweep: too slow under Miri")]
    fn exp_fast_relative_error_is_bounded() {
        let mut worst = 0.0f64;
        // The bound holds on the unclamped domain; outside it the input is clamped.
        for x in sweep().filter(|x| (-87.3..=88.3).contains(x)) {
            let want = (x as f64).exp();
            let err = ((exp_fast(x) as f64 - want) / want).abs();
            worst = worst.max(err);
        }
        assert!(worst <= 4e-7, "worst relative error {worst:e}");
        assert_eq!(exp_fast(-88.0), exp_fast(-87.3));
        assert!(exp_fast(1000.0).is_finite() && exp_fast(-1000.0) > 0.0);
        assert!(exp_fast(f32::NAN).is_nan());
        assert_eq!(exp_fast(0.0), 1.0);
    }

    #[test]
    #[cfg_attr(miri, ignore = "400k-point sweep: too slow under Miri")]
    fn sigmoid_and_tanh_absolute_error_is_bounded() {
        let (mut ws, mut wt) = (0.0f64, 0.0f64);
        for x in sweep() {
            let xd = x as f64;
            ws = ws.max((sigmoid(x) as f64 - 1.0 / (1.0 + (-xd).exp())).abs());
            wt = wt.max((tanh(x) as f64 - xd.tanh()).abs());
            assert_eq!(tanh(-x), -tanh(x), "odd at {x}");
        }
        assert!(ws <= 3e-7, "sigmoid worst absolute error {ws:e}");
        assert!(wt <= 3e-7, "tanh worst absolute error {wt:e}");
        assert_eq!((tanh(9.0), tanh(-9.0), tanh(1e10)), (1.0, -1.0, 1.0));
        assert_eq!(sigmoid(17.0), 1.0);
        assert!(sigmoid(-1000.0) >= 0.0 && sigmoid(-1000.0) < 1e-37);
        assert!(tanh(f32::NAN).is_nan() && sigmoid(f32::NAN).is_nan());
    }

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
        assert!(sigmoid(-1000.0) < 1e-37);
        assert_eq!(sigmoid(1000.0), 1.0);
        assert!((sigmoid(1.0) - 0.731_058_6).abs() < 1e-6);
    }

    #[test]
    #[cfg_attr(miri, ignore = "200k draws: too slow under Miri")]
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
