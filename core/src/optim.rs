//! Optimisers over flat parameter slices, in the ascent direction: `θ ← θ + step`, where the
//! gradient `g` is a log-likelihood ascent direction (as [`crate::train::pid_gradient`] and
//! [`crate::dense::cd_gradient`] return it).
//!
//! # Equations
//! SGD with momentum μ and weight decay λ ([`sgd_update`], re-exported from [`crate::train`]):
//!
//! ```text
//! Δ ← μΔ − ηλθ + ηg;   θ ← θ + Δ
//! ```
//!
//! Adam ([`adam_update`]), with the 1-based step count `t`:
//!
//! ```text
//! m ← β₁m + (1 − β₁)g          m̂ = m / (1 − β₁ᵗ)
//! v ← β₂v + (1 − β₂)g²         v̂ = v / (1 − β₂ᵗ)
//! θ ← θ + η · m̂ / (√v̂ + ε)
//! ```
//!
//! The bias correction uses the number of updates done, as in Kingma & Ba. The authors'
//! reference code corrects by the epoch number instead (so within an epoch every step shares
//! one correction); we use the step count, which is what the corrections are derived for.

use crate::error::ConfigError;

pub use crate::train::{sgd_update, Sgd};

/// Adam hyper-parameters. `Default` is `η = 0.001, β₁ = 0.9, β₂ = 0.999, ε = 1e−8` (the
/// paper's baselines use `η = 0.001`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    /// Learning rate η > 0.
    pub lr: f32,
    /// Decay of the first-moment average, β₁ in `[0, 1)`.
    pub beta1: f32,
    /// Decay of the second-moment average, β₂ in `[0, 1)`.
    pub beta2: f32,
    /// Denominator offset ε > 0.
    pub eps: f32,
}

impl Default for Adam {
    fn default() -> Self {
        Adam { lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

impl Adam {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`ConfigError::LearningRate`] if `lr` is not finite and positive. [`ConfigError`] has no
    /// Adam-specific variants, so the other problems report as [`ConfigError::Momentum`] with
    /// the offending value: `beta1` or `beta2` outside `[0, 1)`, or `eps` not finite and
    /// positive (checked in that order).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(ConfigError::LearningRate(self.lr));
        }
        for beta in [self.beta1, self.beta2] {
            if !(0.0..1.0).contains(&beta) {
                return Err(ConfigError::Momentum(beta));
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(ConfigError::Momentum(self.eps));
        }
        Ok(())
    }
}

/// One Adam update in the ascent direction, `θ ← θ + η·m̂/(√v̂ + ε)` (see the module docs).
///
/// `m` and `v` are the moment averages, owned by the caller: pass zeros to start. `t` is the
/// 1-based number of this update (the first call passes 1); `t = 0` is treated as 1. The
/// corrections `1 − βᵗ` are computed in `f64`.
///
/// # Panics
/// If `m`, `v` or `grad` differs in length from `params`.
pub fn adam_update(
    params: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    grad: &[f32],
    adam: &Adam,
    t: u64,
) {
    let n = params.len();
    assert!(m.len() == n && v.len() == n && grad.len() == n, "Adam slices differ in length");
    let t = t.max(1) as f64;
    let (b1, b2) = (adam.beta1, adam.beta2);
    let inv_bc1 = (1.0 / (1.0 - libm::pow(f64::from(b1), t))) as f32;
    let inv_bc2 = (1.0 / (1.0 - libm::pow(f64::from(b2), t))) as f32;
    for (((p, mi), vi), &g) in params.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(grad) {
        *mi = b1 * *mi + (1.0 - b1) * g;
        *vi = b2 * *vi + (1.0 - b2) * g * g;
        let m_hat = *mi * inv_bc1;
        let v_hat = *vi * inv_bc2;
        *p += adam.lr * m_hat / (libm::sqrtf(v_hat) + adam.eps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_step_moves_each_parameter_by_lr_times_sign() {
        let adam = Adam { lr: 0.01, ..Adam::default() };
        let grad = [3.0f32, -0.002, 0.0, 1e6, -7.5];
        let mut p = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        let (mut m, mut v) = ([0.0f32; 5], [0.0f32; 5]);
        adam_update(&mut p, &mut m, &mut v, &grad, &adam, 1);
        let start = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        for j in 0..5 {
            let want = if grad[j] == 0.0 { 0.0 } else { adam.lr * grad[j].signum() };
            assert!(
                (p[j] - start[j] - want).abs() < 1e-5,
                "parameter {j}: moved {}",
                p[j] - start[j]
            );
        }
        // t = 0 is the first step too.
        let mut q = start;
        let (mut m0, mut v0) = ([0.0f32; 5], [0.0f32; 5]);
        adam_update(&mut q, &mut m0, &mut v0, &grad, &adam, 0);
        assert_eq!(q, p);
    }

    /// Two steps worked by hand with η = 0.1, β₁ = 0.5, β₂ = 0.75.
    ///
    /// Parameter 0, g = 1 then −2: step 1 has m = 0.5, v = 0.25, m̂ = v̂ = 1, θ = 0.1.
    /// Step 2: m = 0.25 − 1 = −0.75, v = 0.1875 + 1 = 1.1875, m̂ = −0.75/0.75 = −1,
    /// v̂ = 1.1875/0.4375 = 19/7, θ = 0.1 − 0.1/√(19/7) = 0.039 302 30.
    /// Parameter 1, g = −3 twice: m̂ = −3 and v̂ = 9 at both steps, θ = −0.2.
    #[test]
    fn two_steps_match_hand_computation() {
        let adam = Adam { lr: 0.1, beta1: 0.5, beta2: 0.75, eps: 1e-8 };
        let mut p = [0.0f32; 2];
        let (mut m, mut v) = ([0.0f32; 2], [0.0f32; 2]);
        adam_update(&mut p, &mut m, &mut v, &[1.0, -3.0], &adam, 1);
        assert!((p[0] - 0.1).abs() < 1e-6 && (p[1] + 0.1).abs() < 1e-6);
        adam_update(&mut p, &mut m, &mut v, &[-2.0, -3.0], &adam, 2);
        assert!((m[0] + 0.75).abs() < 1e-7 && (v[0] - 1.1875).abs() < 1e-7);
        assert!((p[0] - 0.039_302_3).abs() < 1e-6, "{}", p[0]);
        assert!((p[1] + 0.2).abs() < 1e-6, "{}", p[1]);
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(Adam::default().validate().is_ok());
        let bad = |a: Adam| a.validate();
        assert_eq!(bad(Adam { lr: 0.0, ..Adam::default() }), Err(ConfigError::LearningRate(0.0)));
        assert_eq!(bad(Adam { beta1: 1.0, ..Adam::default() }), Err(ConfigError::Momentum(1.0)));
        assert_eq!(bad(Adam { beta2: -0.1, ..Adam::default() }), Err(ConfigError::Momentum(-0.1)));
        assert_eq!(bad(Adam { eps: 0.0, ..Adam::default() }), Err(ConfigError::Momentum(0.0)));
        assert!(bad(Adam { beta1: f32::NAN, ..Adam::default() }).is_err());
        assert!(bad(Adam { beta1: 0.0, beta2: 0.0, ..Adam::default() }).is_ok());
    }

    #[test]
    fn sgd_is_reexported() {
        let sgd = Sgd { lr: 0.5, momentum: 0.0, weight_decay: 0.0 };
        let (mut p, mut d) = ([1.0f32], [0.0f32]);
        sgd_update(&mut p, &mut d, &[2.0], &sgd);
        assert_eq!(p, [2.0]);
    }
}
