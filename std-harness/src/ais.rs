//! Annealed importance sampling: a stochastic estimate of `log Z` for models too large to
//! enumerate ([`ais_log_z`], Salakhutdinov & Murray 2008, adapted to ±1 spins), and its
//! reverse, RAISE ([`raise_nll`], Burda, Grosse & Salakhutdinov 2015), for the other side of
//! the log-likelihood.
//!
//! # Which number is which
//! * **AIS** gives `Ẑ` with `E[Ẑ] = Z`, so `E[log Ẑ] ≤ log Z` (Jensen): a *stochastic lower
//!   bound* on `log Z`. The NLL computed from it, [`mean_nll`]`(model, images, log Ẑ)`
//!   `= mean_v [log Ẑ − log p*(v)]`, is therefore **in expectation a lower bound on the true
//!   NLL**: optimistic, too low when the chains mix badly.
//! * **RAISE** gives, for each test image `v`, `p̂(v)` with `E[p̂(v)] = p_ann(v)`, the
//!   likelihood of the *annealed model* (defined below), so `E[−log p̂(v)] ≥ −log p_ann(v)`:
//!   the RAISE NLL is **in expectation an upper bound on the annealed model's NLL**,
//!   conservative for that model. `p_ann → p` as the schedule gets finer, and where the
//!   chains mix the two estimates bracket the true NLL, their gap saying how far to trust
//!   either. For a finite schedule `p_ann` is a different model, though, and not always a
//!   worse one: on an over-confident model it can be far *better* on held-out images, and
//!   then the RAISE NLL falls below the true NLL. RAPID on Bars 4×4 after 20 epochs (exact
//!   test NLL 2314 nats: the model puts almost all its mass on a few states; AIS within
//!   0.1) gets a RAISE test NLL of 95 with 1000 intervals and 155 with 10 000
//!   (`raise_on_trained_bars` in the tests). Compare both with the exact NLL wherever the
//!   model can be enumerated.
//!
//! # Model and intermediate distributions
//! `E(v,h) = −vᵀWh − aᵀv − bᵀh`, spins ±1, biases optional (RA models have none). Summing
//! `h` out, `log p*(v) = aᵀv + Σ_j log 2cosh φ_j` with `φ = Wᵀv + b` ([`log_p_star`]), and
//! `Z = Σ_v p*(v) = Σ_{v,h} e^{−E(v,h)}`.
//!
//! The base model `A` has independent visible units with biases `a_A` ([`Base`]): uniform
//! (`a_A = 0`) or the data's base rate, `a_A,i = atanh(m̄_i)` with `m̄_i` the mean of pixel `i`
//! over the training images clamped to `[−1 + 10⁻³, 1 − 10⁻³]` (so `|a_A,i| ≤ 3.80`). With
//! `m = a_Aᵀv`, the unnormalised marginals over `v` for `β ∈ [0, 1]` are
//!
//! ```text
//! log f_β(v) = c_β(v) + β aᵀv + Σ_j log 2cosh(β φ_j(v)),
//! c_β(v) = (1 − β) m                  (plain base)
//! c_β(v) = log cosh((1 − β) m)        (symmetrised base, see below)
//! ```
//!
//! `f_1 = p*` (`c_1 = 0` in both forms), and `f_0(v) = 2^H e^{c_0(v)}` (the `2^H` is the
//! hidden layer at `β = 0`), whose normaliser is `Z_A = 2^H Π_i 2cosh a_A,i` for both forms
//! ([`Base::log_z`]); so the partition function at `β = 1` is exactly the model's `Z`.
//!
//! `f_β` is the `v`-marginal of `p_β(v,h) ∝ exp((1−β) a_Aᵀv + β(vᵀWh + aᵀv + bᵀh))`. One
//! transition `T_β` is a block Gibbs step of it: `h ~ P(h|v)` with fields `β φ`, then
//! `v ~ P(v|h)` with fields `β(Wh + a) + (1−β) a_A`, each spin `+1` with probability
//! `1/(1 + e^{−2x})`. Summing `h` out, `T_β(v → v') = Σ_h p_β(h|v) p_β(v'|h)`, and
//! `f_β(v) T_β(v → v') = Σ_h p_β(v,h) p_β(v',h) / p_β(h)` is symmetric in `v, v'`: `T_β`
//! leaves `f_β` invariant and is reversible, which RAISE needs.
//!
//! ## The symmetrised base
//! A model without biases is invariant under `(v, h) → (−v, −h)`: every mode has a mirror
//! image of equal mass. The base-rate model is not (MNIST's is mostly `−1`), so along the
//! plain path the mirror modes only gain their mass near `β = 1`, when block Gibbs can no
//! longer reach them, and AIS then estimates about `log Z − ln 2` with high probability.
//! For such models [`Base::for_model`] symmetrises the base: an extra spin `s = ±1` enters
//! as `p_β(v,h,s) ∝ exp((1−β) s a_Aᵀv + β(…))`. Summing `s` out gives
//! `2cosh((1−β) m)`; the `½` in `c_β = log cosh` keeps `Z_A` as above and `f_1 = p*`. The
//! transition draws `s ~ P(s|v)` (field `(1−β) m`) together with `h` (both depend on `v`
//! only) and uses fields `β(Wh + a) + (1−β) s a_A` for `v`: still a two-block Gibbs step
//! on `(v, (h, s))`, hence reversible on `v` as above. Every `p_β` is then mirror-symmetric,
//! so no mass has to cross between mirror modes. With `a_A = 0` both forms coincide.
//!
//! # Forward AIS (log Z)
//! Schedule `0 = β_0 ≤ β_1 ≤ … ≤ β_N = 1` ([`Schedule`]); write `f_k = f_{β_k}`,
//! `T_k = T_{β_k}` and `D_k(v) = log f_{k+1}(v) − log f_k(v)`. Each run draws
//! `v_0 ~ p_A = f_0/Z_A` exactly, then `v_k ~ T_k(v_{k−1}, ·)` for `k = 1 … N−1`, and has
//! log weight `log w = Σ_{k=0}^{N−1} D_k(v_k)`, with `E[w] = Z/Z_A`. Over `M` independent
//! runs, `log Ẑ = log Z_A + logmeanexp_r(log w_r)` ([`AisEstimate`]).
//!
//! **Spread** (delta method, deterministic): with `w̄` and `s_w` the mean and sample standard
//! deviation (`M − 1` denominator) of the `M` weights, the standard error of `log Ẑ` is
//! `σ̂ = s_w / (√M · w̄)` ([`AisEstimate::std_err`]); Salakhutdinov & Murray's interval
//! `log Z_A + log(w̄ ± 3 s_w/√M)` is also given ([`AisEstimate::log_z_low`],
//! [`AisEstimate::log_z_high`]; the low end is `−∞` when `w̄ < 3 s_w/√M`), with the
//! effective sample size `(Σw)²/Σw²`. These only see the spread of the weights the runs
//! found: a mode no run reached is invisible to them (the usual caveat of AIS).
//!
//! # RAISE (reverse AIS, per test image)
//! Define the *annealed model* as the law of the last state of the forward chain with one
//! more transition at `β_N = 1`:
//!
//! ```text
//! q(v_0 … v_N) = p_A(v_0) Π_{k=1}^{N} T_k(v_{k−1}, v_k)
//! p_ann(v)     = Σ_{v_0 … v_{N−1}} q(v_0 … v_{N−1}, v)
//! ```
//!
//! (forward AIS followed by a last transition `T_N` at `β = 1`). For a test image `v`, RAISE
//! starts at `v_N = v` and runs the transitions in reverse order, `v_{k−1} ~ T̃_k(v_k, ·)` for
//! `k = N … 1`, where `T̃_k(v_k → v_{k−1}) = T_k(v_{k−1} → v_k) f_k(v_{k−1}) / f_k(v_k)` is the
//! reversal of `T_k` with respect to `f_k`; since `T_k` is reversible, `T̃_k = T_k` (the first
//! reverse step is the `β = 1` transition). The importance weight of the reverse path
//! `r(v_0 … v_{N−1} | v) = Π_k T̃_k(v_k, v_{k−1})` against `q` is
//!
//! ```text
//! q / r = p_A(v_0) Π_{k=1}^{N} T_k(v_{k−1}, v_k) / T̃_k(v_k, v_{k−1})
//!       = p_A(v_0) Π_{k=1}^{N} f_k(v_k) / f_k(v_{k−1})           (the normalisers cancel per k)
//! ```
//!
//! and `E_r[q/r] = Σ_{v_0…v_{N−1}} q(…, v) = p_ann(v)`: unbiased for `p_ann(v)`, so
//! `E[log(q/r)] ≤ log p_ann(v)`. Regrouping with `p_A = f_0/Z_A` and `f_N = p*`:
//!
//! ```text
//! log(q/r) = log p*(v) − log Z_A − Σ_{k=0}^{N−1} D_k(v_k)
//! ```
//!
//! the same increments `D_k` as forward AIS, now summed along the reverse chain (each `D_k`
//! at the state the transition `T_{k+1}` produced). Per image, `M_r` reverse runs are
//! averaged: `log p̂(v) = logmeanexp_r log(q/r)_r`, and the NLL of the image is `−log p̂(v)`
//! ([`RaiseEstimate`]).
//!
//! # Randomness, determinism and speed
//! Forward run `r` draws from `stream(seed, Ais, r, 0)`; reverse run `r` of image `i` from
//! `stream(seed, Ais, i, 2³² + r)`. Rows (runs, or image × run pairs) are cut into fixed
//! blocks of at most [`AisOptions::block_rows`] consecutive rows; a block runs all its steps with
//! its fields computed as GEMMs (the core's [`BlockModel`]; the RA model never forms `W`, and
//! a row costs `2K(V + H)` multiply-adds per step, against `2VH` for a dense one), blocks run in parallel on the rayon pool, and the
//! results are combined in row order. So a result depends on the seed, the options (the
//! block size included) and the kernel level, never on the thread count.
//!
//! Weights accumulate in `f64` from the `f32` fields. Per hidden unit and step, the
//! increment needs `log 2cosh` at two temperatures: `β|φ| + log1p(e^{−2β|φ|})`, the
//! `log1p(e^{−t})` part by a branch-free polynomial routine in plain `f64` arithmetic
//! (accurate to a few ulp; it vectorises, unlike `libm`'s `exp` and `log1p`).
//!
//! Cost: `N · M` chain steps for `log Z`, `N · M_r` per test image for RAISE; at MNIST size
//! a chain step costs 140–175 µs of CPU in blocks of 50 rows, and 260–300 µs in blocks of
//! fewer than 16 rows (the GEMMs' unpacked path; see [`AisOptions`]), so RAISE is best given
//! many images at once.

use std::ops::Range;

use rapid_core::blocks::BlockModel;
use rapid_core::kernels::{active, gemm_pack_len, Isa};
use rapid_core::num::{sample_spin, uniform01};
use rapid_core::ra::gibbs::sample_spins_in_place;
use rayon::prelude::*;

use crate::model::ModelRef;
use crate::seed::{stream, Rng, Stream};

#[cfg(test)]
mod tests;

/// The inverse temperatures `0 = β_0 ≤ β_1 ≤ … ≤ β_N = 1` of an annealing path; each
/// interval is one chain step.
///
/// Which schedule works best depends on where the model's distribution changes fastest:
/// near `β = 1` for weakly coupled models (Salakhutdinov & Murray's MNIST RBMs), near
/// `β ≈ 1/|φ|` for strongly coupled ones (sign-projected RA patterns make `|φ|` large, so
/// close to 0). The default, a sigmoid with `δ = 4`, refines both ends. On the test models
/// (random couplings of order `2/√V`, and RAPID trained on Bars 4×4) its standard errors
/// were within 1.6× of the best schedule tried for each model, the Salakhutdinov–Murray
/// schedule's (same length) 1.8–10×, and its error on the trained model reached 4 nats
/// (`compare_schedules` in the tests).
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// `N` intervals along a rescaled logistic (Grosse, Maddison & Salakhutdinov 2013):
    /// `β_k = (σ(δ(2k/N − 1)) − σ(−δ)) / (σ(δ) − σ(−δ))`. With `δ = 4` the steps at the ends
    /// are 14 times finer than in the middle (about `0.15/N` against `2.1/N`). Needs
    /// `N ≥ 1`, `δ > 0`.
    Sigmoid {
        /// `N`.
        intervals: usize,
        /// `δ`.
        delta: f64,
    },
    /// Salakhutdinov & Murray's piecewise-linear schedule with `N` intervals in all: equal
    /// steps on `[0, 0.5]`, `[0.5, 0.9]` and `[0.9, 1]`, with `N/29`, `8N/29` and the rest
    /// (rounded, at least one each) of the intervals. `N = 14 500` is their schedule exactly
    /// (steps of 10⁻³, 10⁻⁴ and 10⁻⁵). Needs `N ≥ 3`.
    SalakhutdinovMurray(usize),
    /// `N ≥ 1` equal steps on `[0, 1]`.
    Linear(usize),
    /// `β_0 = 0`, then `N ≥ 2` betas in geometric progression from `first` (in `(0, 1)`) to
    /// 1: for the most strongly coupled models.
    Geometric {
        /// `N`.
        intervals: usize,
        /// `β_1`.
        first: f64,
    },
    /// Given explicitly: starts at 0, ends at 1, non-decreasing, at least two entries.
    Explicit(Vec<f64>),
}

impl Default for Schedule {
    /// `Sigmoid { intervals: 10_000, delta: 4.0 }`.
    fn default() -> Self {
        Schedule::Sigmoid { intervals: 10_000, delta: 4.0 }
    }
}

impl Schedule {
    /// The betas, `β_0 = 0` to `β_N = 1`.
    ///
    /// # Panics
    /// If the schedule is invalid (see the variants).
    pub fn betas(&self) -> Vec<f64> {
        let mut betas = match *self {
            Schedule::Sigmoid { intervals: n, delta } => {
                assert!(n >= 1 && delta > 0.0, "a sigmoid schedule needs N ≥ 1 and δ > 0");
                let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
                let (lo, hi) = (sig(-delta), sig(delta));
                (0..=n)
                    .map(|k| (sig(delta * (2.0 * k as f64 / n as f64 - 1.0)) - lo) / (hi - lo))
                    .collect()
            }
            Schedule::SalakhutdinovMurray(n) => {
                assert!(n >= 3, "the Salakhutdinov–Murray schedule needs at least 3 intervals");
                let n1 = ((n as f64 / 29.0).round() as usize).max(1);
                let n2 = ((8.0 * n as f64 / 29.0).round() as usize).clamp(1, n - n1 - 1);
                let n3 = n - n1 - n2;
                let mut b = vec![0.0];
                for (lo, hi, steps) in [(0.0, 0.5, n1), (0.5, 0.9, n2), (0.9, 1.0, n3)] {
                    b.extend((1..=steps).map(|i| lo + (hi - lo) * i as f64 / steps as f64));
                }
                b
            }
            Schedule::Linear(n) => {
                assert!(n >= 1, "a linear schedule needs at least one step");
                (0..=n).map(|i| i as f64 / n as f64).collect()
            }
            Schedule::Geometric { intervals: n, first } => {
                assert!(
                    n >= 2 && first > 0.0 && first < 1.0,
                    "a geometric schedule needs N ≥ 2 and 0 < first < 1"
                );
                let mut b = vec![0.0];
                b.extend((0..n).map(|i| first.powf(1.0 - i as f64 / (n - 1) as f64)));
                b
            }
            Schedule::Explicit(ref b) => b.clone(),
        };
        // Rounding must not move the ends.
        if !matches!(self, Schedule::Explicit(_)) {
            let n = betas.len() - 1;
            betas[0] = 0.0;
            betas[n] = 1.0;
        }
        check_betas(&betas);
        betas
    }

    /// The number of intervals `N` (one chain step each).
    pub fn intervals(&self) -> usize {
        self.betas().len() - 1
    }
}

fn check_betas(b: &[f64]) {
    assert!(b.len() >= 2, "a schedule needs at least two betas");
    assert!(b[0] == 0.0 && b[b.len() - 1] == 1.0, "betas must run from 0 to 1");
    assert!(b.windows(2).all(|w| w[0] <= w[1]), "betas must be non-decreasing");
}

/// The base model `A`: independent visible units with biases `a_A`, plain or symmetrised
/// (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Base {
    /// `a_A` (V entries).
    pub biases: Vec<f64>,
    /// Symmetrised: the mixture `½(A(a_A) + A(−a_A))`, for mirror-symmetric models.
    pub symmetric: bool,
}

/// Pixel means are clamped to `±(1 − BASE_CLAMP)` before `atanh`.
pub const BASE_CLAMP: f64 = 1e-3;

impl Base {
    /// The uniform base, `a_A = 0`.
    pub fn uniform(visible: usize) -> Base {
        Base { biases: vec![0.0; visible], symmetric: false }
    }

    /// The base rate of `images` (rows of `V` ±1 values): `a_A,i = atanh(m̄_i)`, `m̄_i` the
    /// mean of pixel `i` clamped to `±(1 − `[`BASE_CLAMP`]`)`. Uniform for no images.
    ///
    /// # Panics
    /// If `images.len()` is not a multiple of `visible`.
    pub fn from_data(images: &[f32], visible: usize, symmetric: bool) -> Base {
        assert!(
            visible > 0 && images.len().is_multiple_of(visible),
            "images must have V entries each"
        );
        let n = images.len() / visible;
        if n == 0 {
            return Base { biases: vec![0.0; visible], symmetric };
        }
        let mut sum = vec![0.0f64; visible];
        for row in images.chunks_exact(visible) {
            for (s, &x) in sum.iter_mut().zip(row) {
                *s += f64::from(x);
            }
        }
        let means: Vec<f64> = sum.iter().map(|&s| s / n as f64).collect();
        Base::from_means(&means, symmetric)
    }

    /// The base rate of data with pixel means `means` (each in `[−1, 1]`; clamped to
    /// `±(1 − `[`BASE_CLAMP`]`)` before `atanh`), for callers that keep the means, not the
    /// images. A NaN mean gives a uniform pixel.
    pub fn from_means(means: &[f64], symmetric: bool) -> Base {
        let lim = 1.0 - BASE_CLAMP;
        let biases = means
            .iter()
            .map(|&m| if m.is_nan() { 0.0 } else { m.clamp(-lim, lim).atanh() })
            .collect();
        Base { biases, symmetric }
    }

    /// Whether [`Base::for_model`] symmetrises the base of `model`: no biases, or all of them
    /// zero, so `(v, h) → (−v, −h)` leaves the energy unchanged.
    pub fn is_mirror_symmetric(model: &ModelRef<'_>) -> bool {
        mirror_symmetric(model)
    }

    /// The base for `model`: uniform without `train`, else the base rate of `train`,
    /// symmetrised when the model is mirror-symmetric (no biases, or all biases zero).
    ///
    /// # Panics
    /// If `train.len()` is not a multiple of `V`.
    pub fn for_model(model: &ModelRef<'_>, train: Option<&[f32]>) -> Base {
        match train {
            None => Base::uniform(model.visible()),
            Some(t) => Base::from_data(t, model.visible(), mirror_symmetric(model)),
        }
    }

    /// `log Z_A = H ln 2 + Σ_i log 2cosh a_A,i` for `hidden` hidden units.
    pub fn log_z(&self, hidden: usize) -> f64 {
        hidden as f64 * std::f64::consts::LN_2
            + self.biases.iter().map(|&a| rapid_core::num::log_2cosh_f64(a)).sum::<f64>()
    }
}

/// No biases, or all of them zero: `(v, h) → (−v, −h)` leaves the energy unchanged.
fn mirror_symmetric(model: &ModelRef<'_>) -> bool {
    let (a, b) = model.biases();
    a.into_iter().chain(b).flatten().all(|&x| x == 0.0)
}

/// Forward AIS settings ([`ais_log_z`]).
///
/// Cost: with the defaults (10 000 intervals, 100 runs in two blocks of 50), `ais_log_z` on
/// an RA model of MNIST size (V = 784, H = 3000, K = 200, patterns `0.1·N(0,1)`) makes 10⁶
/// chain steps at 140–175 µs of CPU each (release build, AVX2; the GEMMs and their packing
/// of `Ξ` take 65 % of it, the `f64` increments 23 %, the draws 10 %). Measured on the
/// shared 2-core development machine, where other jobs left it about one core: 155 s wall
/// clock for 166 s of CPU (`mnist_size_timing` in the tests); with both cores free, expect
/// about half the CPU time.
#[derive(Clone, Debug, PartialEq)]
pub struct AisOptions {
    /// The annealing schedule (default: [`Schedule::default`], a sigmoid with 10 000
    /// intervals).
    pub schedule: Schedule,
    /// Independent runs `M` (default 100).
    pub runs: usize,
    /// Seed of the runs' streams (default 0).
    pub seed: u64,
    /// Most runs per block (default 50): the runs are cut into `⌈M/block_rows⌉` blocks of
    /// nearly equal size, each one rayon task whose fields are GEMMs over its rows. Larger
    /// blocks amortise the packing of the weights: at MNIST size, with 100 runs on one core, a
    /// chain step cost 260 µs in blocks of one row (no batching), 274 µs in blocks of 14–15
    /// (below 16 rows the GEMMs take their unpacked path), 139 µs in blocks of 50 and 141 µs
    /// in one block of 100 (release build). The default gives the default 100 runs two
    /// blocks, one per core of a two-core machine (more cores need smaller blocks, of at
    /// least 16 rows, to be used). Part of what fixes the result bits; the thread count is
    /// not.
    pub block_rows: usize,
}

impl Default for AisOptions {
    fn default() -> Self {
        AisOptions { schedule: Schedule::default(), runs: 100, seed: 0, block_rows: 50 }
    }
}

/// RAISE settings ([`raise_nll`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RaiseOptions {
    /// The annealing schedule (default: [`Schedule::default`]).
    pub schedule: Schedule,
    /// Reverse runs `M_r` per image (default 10).
    pub runs: usize,
    /// Seed of the runs' streams (default 0).
    pub seed: u64,
    /// Most (image, run) rows per block (default 50), as [`AisOptions::block_rows`].
    pub block_rows: usize,
}

impl Default for RaiseOptions {
    fn default() -> Self {
        RaiseOptions { schedule: Schedule::default(), runs: 10, seed: 0, block_rows: 50 }
    }
}

/// The result of [`ais_log_z`].
#[derive(Clone, Debug, PartialEq)]
pub struct AisEstimate {
    /// `log Ẑ = log Z_A + logmeanexp_r log w_r` (in expectation `≤ log Z`).
    pub log_z: f64,
    /// `log Z_A` of the base.
    pub log_z_base: f64,
    /// `log w_r` of every run, in run order.
    pub log_weights: Vec<f64>,
    /// Delta-method standard error of `log Ẑ`: `s_w / (√M · w̄)` (NaN for one run).
    pub std_err: f64,
    /// `log Z_A + log(w̄ − 3 s_w/√M)` (`−∞` when negative, NaN for one run).
    pub log_z_low: f64,
    /// `log Z_A + log(w̄ + 3 s_w/√M)` (NaN for one run).
    pub log_z_high: f64,
    /// Effective sample size `(Σ w)² / Σ w²`, between 1 and `M`.
    pub ess: f64,
}

impl AisEstimate {
    fn from_log_weights(log_z_base: f64, log_weights: Vec<f64>) -> Self {
        let s = WeightStats::new(&log_weights);
        let low = s.mean - 3.0 * s.sd_scaled();
        AisEstimate {
            log_z: log_z_base + s.log_mean,
            log_z_base,
            std_err: s.std_err(),
            log_z_low: log_z_base + s.shift + if low < 0.0 { f64::NEG_INFINITY } else { low.ln() },
            log_z_high: log_z_base + s.shift + (s.mean + 3.0 * s.sd_scaled()).ln(),
            ess: s.ess,
            log_weights,
        }
    }
}

/// The result of [`raise_nll`].
#[derive(Clone, Debug, PartialEq)]
pub struct RaiseEstimate {
    /// `−log p̂(v)` per image, in image order.
    pub nll: Vec<f64>,
    /// Mean of `nll` (in expectation `≥` the annealed model's mean NLL).
    pub mean_nll: f64,
    /// Standard error of `mean_nll` over the images, `sd(nll)/√n` (the test set's sampling
    /// error; NaN for one image).
    pub std_err: f64,
    /// Standard error of `mean_nll` from the runs: `√(Σ_i σ̂_i²)/n`, `σ̂_i` the delta-method
    /// standard error of image `i`'s estimate (as [`AisEstimate::std_err`]).
    pub chain_std_err: f64,
    /// `log(q/r)` of every run, image-major (`runs` per image).
    pub log_weights: Vec<f64>,
}

/// `log Σ e^{x}/n` and friends of a set of log weights, relative to their maximum.
struct WeightStats {
    n: usize,
    /// The maximum log weight.
    shift: f64,
    /// Mean of `e^{x − shift}`.
    mean: f64,
    /// Sample standard deviation of `e^{x − shift}` (`n − 1` denominator).
    sd: f64,
    /// `shift + ln mean`.
    log_mean: f64,
    ess: f64,
}

impl WeightStats {
    fn new(x: &[f64]) -> Self {
        let n = x.len();
        let shift = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !shift.is_finite() || x.iter().any(|v| v.is_nan()) {
            let v = if x.iter().any(|v| v.is_nan()) { f64::NAN } else { shift };
            return WeightStats {
                n,
                shift: v,
                mean: 1.0,
                sd: f64::NAN,
                log_mean: v,
                ess: f64::NAN,
            };
        }
        let w: Vec<f64> = x.iter().map(|&v| (v - shift).exp()).collect();
        let sum: f64 = w.iter().sum();
        let sum2: f64 = w.iter().map(|v| v * v).sum();
        let mean = sum / n as f64;
        let var = w.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n as f64 - 1.0);
        WeightStats {
            n,
            shift,
            mean,
            sd: var.sqrt(),
            log_mean: shift + mean.ln(),
            ess: sum * sum / sum2,
        }
    }

    /// `s_w/√n` in the shifted scale.
    fn sd_scaled(&self) -> f64 {
        self.sd / (self.n as f64).sqrt()
    }

    /// The delta-method standard error of `log_mean`, `s_w/(√n · w̄)`.
    fn std_err(&self) -> f64 {
        self.sd_scaled() / self.mean
    }
}

/// `log p*(v) = aᵀv + Σ_j log 2cosh φ_j = −F(v)`, `φ = Wᵀv + b`, with the `f32` fields of
/// [`ModelRef::hidden_field`] (no `W` formed) summed in `f64`.
///
/// # Panics
/// If `v.len() != V`.
pub fn log_p_star(model: &ModelRef<'_>, v: &[f32]) -> f64 {
    assert_eq!(v.len(), model.visible(), "v must have V entries");
    let mut phi = vec![0.0f32; model.hidden()];
    let mut scratch = vec![0.0f32; model.scratch_len()];
    model.hidden_field(v, &mut phi, &mut scratch);
    let bias = model.biases().0.map_or(0.0, |a| dot64(a, v));
    bias + log_2cosh_sum(&phi, 1.0)
}

/// Mean NLL of `images` (rows of `V` ±1 values) for a given `log_z`:
/// `mean_v [log_z − log p*(v)]`. With the AIS estimate this is in expectation a lower bound
/// on the true NLL (see the module docs). NaN for no images.
///
/// # Panics
/// If `images.len()` is not a multiple of `V`.
pub fn mean_nll(model: &ModelRef<'_>, images: &[f32], log_z: f64) -> f64 {
    let nv = model.visible();
    assert!(images.len().is_multiple_of(nv), "images must have V entries each");
    let lp: Vec<f64> = images.par_chunks(nv).map(|v| log_p_star(model, v)).collect();
    if lp.is_empty() {
        return f64::NAN;
    }
    log_z - lp.iter().sum::<f64>() / lp.len() as f64
}

/// Forward AIS estimate of `log Z` (see the module docs for the path, the spread and the
/// streams). `base` is usually [`Base::for_model`]`(model, Some(train))`.
///
/// # Panics
/// If `base.biases.len() != V`, `opts.runs == 0`, or the schedule is invalid.
pub fn ais_log_z(model: &ModelRef<'_>, base: &Base, opts: &AisOptions) -> AisEstimate {
    assert!(opts.runs > 0, "AIS needs at least one run");
    let betas = opts.schedule.betas();
    let ctx = Ctx::new(model, base);
    let n = betas.len() - 1;
    let log_weights = by_blocks(opts.runs, opts.block_rows, |rows| {
        let mut ch = Chains::new(&ctx, rows.len());
        for r in rows {
            ch.rngs.push(stream(opts.seed, Stream::Ais, r as u64, FORWARD));
        }
        ch.draw_base();
        let mut sum = vec![0.0f64; ch.rows];
        for k in 0..n {
            ch.add_increments(betas[k + 1], betas[k], &mut sum);
            if k + 1 < n {
                ch.transition(betas[k + 1]);
            }
        }
        sum
    });
    AisEstimate::from_log_weights(base.log_z(model.hidden()), log_weights)
}

/// RAISE estimate of the NLL of each of `images` (rows of `V` ±1 values) under the annealed
/// model (see the module docs): in expectation an upper bound on the annealed model's NLL.
/// `base` is usually the same as for [`ais_log_z`]. Returns NaN means for no images.
///
/// # Panics
/// If `images.len()` is not a multiple of `V`, `base.biases.len() != V`, `opts.runs == 0`, or
/// the schedule is invalid.
pub fn raise_nll(
    model: &ModelRef<'_>,
    base: &Base,
    images: &[f32],
    opts: &RaiseOptions,
) -> RaiseEstimate {
    let nv = model.visible();
    assert!(images.len().is_multiple_of(nv), "images must have V entries each");
    assert!(opts.runs > 0, "RAISE needs at least one run per image");
    let betas = opts.schedule.betas();
    let ctx = Ctx::new(model, base);
    let log_z_base = base.log_z(model.hidden());
    let (n, runs) = (betas.len() - 1, opts.runs);
    let n_images = images.len() / nv;
    let log_weights = by_blocks(n_images * runs, opts.block_rows, |rows| {
        let mut ch = Chains::new(&ctx, rows.len());
        for (slot, r) in rows.enumerate() {
            let (image, run) = (r / runs, r % runs);
            ch.rngs.push(stream(opts.seed, Stream::Ais, image as u64, REVERSE + run as u64));
            ch.v[slot * nv..(slot + 1) * nv].copy_from_slice(&images[image * nv..][..nv]);
        }
        ch.refresh();
        let top: Vec<f64> = (0..ch.rows).map(|s| ch.log_p_star(s)).collect();
        let mut sum = vec![0.0f64; ch.rows];
        for k in (0..n).rev() {
            ch.transition(betas[k + 1]);
            ch.add_increments(betas[k + 1], betas[k], &mut sum);
        }
        top.iter().zip(&sum).map(|(t, s)| t - log_z_base - s).collect()
    });
    let stats: Vec<WeightStats> = log_weights.chunks(runs).map(WeightStats::new).collect();
    let nll: Vec<f64> = stats.iter().map(|s| -s.log_mean).collect();
    let m = nll.len() as f64;
    let mean_nll = nll.iter().sum::<f64>() / m;
    let var = nll.iter().map(|x| (x - mean_nll) * (x - mean_nll)).sum::<f64>() / (m - 1.0);
    let chain_var: f64 = stats.iter().map(|s| s.std_err().powi(2)).sum();
    RaiseEstimate {
        mean_nll,
        std_err: (var / m).sqrt(),
        chain_std_err: chain_var.sqrt() / m,
        nll,
        log_weights,
    }
}

/// Purpose words of the streams (the `b` of `stream(seed, Ais, a, b)`).
const FORWARD: u64 = 0;
const REVERSE: u64 = 1 << 32;

/// Cuts `total` rows into `c = ⌈total/block_rows⌉` blocks of consecutive rows, as even as
/// possible (block `i` is `i·total/c .. (i+1)·total/c`), runs `f` on them in parallel and
/// concatenates the results in row order.
fn by_blocks<F>(total: usize, block_rows: usize, f: F) -> Vec<f64>
where
    F: Fn(Range<usize>) -> Vec<f64> + Sync,
{
    let c = total.div_ceil(block_rows.max(1));
    let parts: Vec<Vec<f64>> =
        (0..c).into_par_iter().map(|i| f(i * total / c..(i + 1) * total / c)).collect();
    parts.concat()
}

/// What every block shares: the model, the kernel level and the base.
struct Ctx<'a> {
    model: &'a (dyn BlockModel + Sync),
    isa: Isa,
    /// Visible biases of the model.
    a: Option<&'a [f32]>,
    base: &'a Base,
    base32: Vec<f32>,
}

impl<'a> Ctx<'a> {
    fn new(model: &'a ModelRef<'_>, base: &'a Base) -> Self {
        assert_eq!(base.biases.len(), model.visible(), "base biases must have V entries");
        let block: &'a (dyn BlockModel + Sync) = match model {
            ModelRef::Ra(m) => m,
            ModelRef::Dense(m) => m,
        };
        Ctx {
            model: block,
            isa: active(),
            a: model.biases().0,
            base,
            base32: base.biases.iter().map(|&x| x as f32).collect(),
        }
    }
}

/// A block of chains, each with its own stream. `phi` holds `φ(v)` of the current states
/// (unscaled), `m_base` and `m_bias` their `a_Aᵀv` and `aᵀv`.
struct Chains<'c, 'a> {
    ctx: &'c Ctx<'a>,
    rows: usize,
    v: Vec<f32>,
    field: Vec<f32>,
    phi: Vec<f32>,
    work: Vec<f32>,
    pack: Vec<f32>,
    sign: Vec<f32>,
    m_base: Vec<f64>,
    m_bias: Vec<f64>,
    rngs: Vec<Rng>,
}

impl<'c, 'a> Chains<'c, 'a> {
    fn new(ctx: &'c Ctx<'a>, rows: usize) -> Self {
        let (nv, nh) = (ctx.model.visible(), ctx.model.hidden());
        Chains {
            ctx,
            rows,
            v: vec![0.0; rows * nv],
            field: vec![0.0; rows * nv],
            phi: vec![0.0; rows * nh],
            work: vec![0.0; rows * ctx.model.row_work()],
            pack: vec![0.0; gemm_pack_len(ctx.isa)],
            sign: vec![1.0; rows],
            m_base: vec![0.0; rows],
            m_bias: vec![0.0; rows],
            rngs: Vec::with_capacity(rows),
        }
    }

    /// Recomputes `phi`, `m_base` and `m_bias` from `v`.
    fn refresh(&mut self) {
        let c = self.ctx;
        let nv = c.model.visible();
        c.model.hidden_fields(c.isa, &self.v, &mut self.phi, &mut self.work, &mut self.pack);
        for (r, v) in self.v.chunks_exact(nv).enumerate() {
            self.m_base[r] = c.base.biases.iter().zip(v).map(|(&a, &x)| a * f64::from(x)).sum();
            self.m_bias[r] = c.a.map_or(0.0, |a| dot64(a, v));
        }
    }

    /// Draws every `v` from the base (after `s`, for a symmetrised base), then refreshes.
    fn draw_base(&mut self) {
        let nv = self.ctx.model.visible();
        for (r, rng) in self.rngs.iter_mut().enumerate() {
            if self.ctx.base.symmetric {
                self.sign[r] = if uniform01(rng) < 0.5 { 1.0 } else { -1.0 };
            }
            let v = &mut self.v[r * nv..(r + 1) * nv];
            for (x, &a) in v.iter_mut().zip(&self.ctx.base32) {
                *x = self.sign[r] * a;
            }
            sample_spins_in_place(v, rng);
        }
        self.refresh();
    }

    /// One transition `T_β` of every chain, then a refresh.
    fn transition(&mut self, beta: f64) {
        let c = self.ctx;
        let (nv, nh) = (c.model.visible(), c.model.hidden());
        let b = beta as f32;
        let rest = (1.0 - beta) as f32;
        for (r, rng) in self.rngs.iter_mut().enumerate() {
            let h = &mut self.phi[r * nh..(r + 1) * nh];
            for x in h.iter_mut() {
                *x *= b;
            }
            sample_spins_in_place(h, rng);
            if c.base.symmetric {
                self.sign[r] = sample_spin(((1.0 - beta) * self.m_base[r]) as f32, rng);
            }
        }
        c.model.visible_fields(c.isa, &self.phi, &mut self.field, &mut self.work, &mut self.pack);
        for (r, rng) in self.rngs.iter_mut().enumerate() {
            let f = &mut self.field[r * nv..(r + 1) * nv];
            let s = rest * self.sign[r];
            for (x, &a) in f.iter_mut().zip(&c.base32) {
                *x = b * *x + s * a;
            }
            sample_spins_in_place(f, rng);
        }
        std::mem::swap(&mut self.v, &mut self.field);
        self.refresh();
    }

    /// Adds `D(v) = log f_hi(v) − log f_lo(v)` of every chain to `sum`.
    fn add_increments(&self, hi: f64, lo: f64, sum: &mut [f64]) {
        let nh = self.ctx.model.hidden();
        let d = hi - lo;
        for (r, s) in sum.iter_mut().enumerate() {
            let m = self.m_base[r];
            let base = if self.ctx.base.symmetric {
                // log cosh((1−β)m) = (1−β)|m| + log1p(e^{−2(1−β)|m|}) − ln 2.
                let am = m.abs();
                -d * am + log1p_exp_neg(2.0 * (1.0 - hi) * am)
                    - log1p_exp_neg(2.0 * (1.0 - lo) * am)
            } else {
                -d * m
            };
            let phi = &self.phi[r * nh..(r + 1) * nh];
            *s += base + d * self.m_bias[r] + log_2cosh_diff(phi, hi, lo);
        }
    }

    /// `log p*(v)` of chain `r` (its `φ` must be current).
    fn log_p_star(&self, r: usize) -> f64 {
        let nh = self.ctx.model.hidden();
        self.m_bias[r] + log_2cosh_sum(&self.phi[r * nh..(r + 1) * nh], 1.0)
    }
}

/// `Σ a_i v_i` in `f64`.
fn dot64(a: &[f32], v: &[f32]) -> f64 {
    a.iter().zip(v).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum()
}

/// Lanes of the `f64` sums below (independent accumulators, so the loops vectorise).
const LANES: usize = 8;

/// `Σ_j log 2cosh(β φ_j)` in `f64`.
fn log_2cosh_sum(phi: &[f32], beta: f64) -> f64 {
    let mut abs = [0.0f64; LANES];
    let mut acc = [0.0f64; LANES];
    let (head, tail) = phi.split_at(phi.len() - phi.len() % LANES);
    for c in head.chunks_exact(LANES) {
        for l in 0..LANES {
            let x = beta * f64::from(c[l]).abs();
            abs[l] += x;
            acc[l] += log1p_exp_neg(2.0 * x);
        }
    }
    let mut s = abs.iter().sum::<f64>() + acc.iter().sum::<f64>();
    for &p in tail {
        let x = beta * f64::from(p).abs();
        s += x + log1p_exp_neg(2.0 * x);
    }
    s
}

/// Up to this `δ = 2(hi − lo)|φ|`, [`log_2cosh_diff`] takes the midpoint expansion.
const MIDPOINT_MAX: f64 = 1.0 / 32.0;

/// `Σ_j [log 2cosh(hi·φ_j) − log 2cosh(lo·φ_j)]` in `f64` (`hi ≥ lo`), as
/// `(hi − lo) Σ|φ_j| + Σ_j D(|φ_j|)`, `D(x) = L(2hi·x) − L(2lo·x)`, `L(t) = log1p(e^{−t})`.
///
/// `D` is `−∫ σ(−t) dt` over `[2lo·x, 2hi·x]` (since `L'(t) = −σ(−t)`). Where a chunk of units
/// has every `δ = 2(hi − lo)x ≤ 1/32` (fine schedules: nearly always), `D` comes from the
/// midpoint expansion, one exponential a unit:
///
/// ```text
/// D = −δ [s + δ² q (1 − 2s) (1/24 + δ² (1 − 12q)/1920)],   s = σ(−(hi + lo)x),  q = s(1 − s)
/// ```
///
/// (the `δ³` and `δ⁵` terms carry the second and fourth derivatives of `σ`; the next one is
/// below `2·10⁻¹⁶` for `δ ≤ 1/32`). Elsewhere `D` is the difference of two
/// [`log1p_exp_neg`].
fn log_2cosh_diff(phi: &[f32], hi: f64, lo: f64) -> f64 {
    let d = 2.0 * (hi - lo);
    let mut abs = [0.0f64; LANES];
    let mut acc = [0.0f64; LANES];
    let (head, tail) = phi.split_at(phi.len() - phi.len() % LANES);
    for c in head.chunks_exact(LANES) {
        let mut x = [0.0f64; LANES];
        for l in 0..LANES {
            x[l] = f64::from(c[l]).abs();
            abs[l] += x[l];
        }
        if d * x.iter().fold(0.0f64, |m, &v| m.max(v)) <= MIDPOINT_MAX {
            for l in 0..LANES {
                acc[l] += midpoint_diff(x[l], hi, lo);
            }
        } else {
            for l in 0..LANES {
                acc[l] += log1p_exp_neg(2.0 * hi * x[l]) - log1p_exp_neg(2.0 * lo * x[l]);
            }
        }
    }
    let mut sum_abs = abs.iter().sum::<f64>();
    let mut s = acc.iter().sum::<f64>();
    for &p in tail {
        let x = f64::from(p).abs();
        sum_abs += x;
        s += if d * x <= MIDPOINT_MAX {
            midpoint_diff(x, hi, lo)
        } else {
            log1p_exp_neg(2.0 * hi * x) - log1p_exp_neg(2.0 * lo * x)
        };
    }
    (hi - lo) * sum_abs + s
}

/// `L(2hi·x) − L(2lo·x)` by the midpoint expansion of [`log_2cosh_diff`] (`x ≥ 0`,
/// `2(hi − lo)x ≤ 1/32`).
#[inline(always)]
fn midpoint_diff(x: f64, hi: f64, lo: f64) -> f64 {
    let d = 2.0 * (hi - lo) * x;
    let y = exp_neg((hi + lo) * x);
    let s = y / (1.0 + y);
    let q = s * (1.0 - s);
    let d2 = d * d;
    -d * (s + d2 * q * (1.0 - 2.0 * s) * (1.0 / 24.0 + d2 * (1.0 - 12.0 * q) / 1920.0))
}

/// `1/k!`, `k = 0 … 12`.
const INV_FACT: [f64; 13] = {
    let mut c = [1.0f64; 13];
    let mut k = 1;
    while k < 13 {
        c[k] = c[k - 1] / k as f64;
        k += 1;
    }
    c
};

/// `1/(2k + 1)`, `k = 0 … 9`.
const INV_ODD: [f64; 10] = {
    let mut c = [1.0f64; 10];
    let mut k = 0;
    while k < 10 {
        c[k] = 1.0 / (2 * k + 1) as f64;
        k += 1;
    }
    c
};

/// `e^{−t}` for `t ≥ 0`, branch-free in plain `f64` arithmetic (so loops over it vectorise):
/// `e^{−t} = 2ⁿ e^r` with `|r| ≤ ln 2 / 2` (Cody–Waite) and `e^r` by its degree-12 Taylor
/// polynomial (truncation below `2·10⁻¹⁶` relative). `t` above 700 is taken as 700 (the
/// result is below `10⁻³⁰⁴`); NaN gives NaN.
#[inline(always)]
fn exp_neg(t: f64) -> f64 {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    // ln 2 = LN2_HI + LN2_LO; LN2_HI has 21 trailing zero bits, so n·LN2_HI is exact.
    const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
    const ROUND: f64 = 6_755_399_441_055_744.0; // 1.5·2^52
    let t = if t > 700.0 { 700.0 } else { t };
    let z = -t * LOG2E + ROUND;
    let n = z - ROUND;
    let r = (-t - n * LN2_HI) - n * LN2_LO;
    let mut p = INV_FACT[12];
    for &c in INV_FACT[..12].iter().rev() {
        p = p * r + c;
    }
    // bits(z) = bits(1.5·2^52) + n: the exponent of 2ⁿ without a float-to-int conversion.
    p * f64::from_bits(z.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(1023) << 52)
}

/// `log1p(e^{−t})` for `t ≥ 0`, branch-free in plain `f64` arithmetic: `y = e^{−t}` by
/// [`exp_neg`], then `log1p(y) = 2 atanh(u)` with `u = y/(2 + y)` for `y < √2 − 1`, else
/// `log1p(y) = ln 2 + 2 atanh(u)` with `u = (y − 1)/(y + 3)` (that is, `1 + y = 2m`); either
/// way `|u| ≤ 3 − 2√2 ≈ 0.172`, and ten terms of the odd series leave `3·10⁻¹⁷`. Relative
/// error a few ulp (checked against `std` in the tests).
#[inline(always)]
fn log1p_exp_neg(t: f64) -> f64 {
    const SQRT2_M1: f64 = std::f64::consts::SQRT_2 - 1.0;
    let y = exp_neg(t);
    let big = y >= SQRT2_M1;
    let u = if big { (y - 1.0) / (y + 3.0) } else { y / (y + 2.0) };
    let w = u * u;
    let mut s = INV_ODD[9];
    for &c in INV_ODD[..9].iter().rev() {
        s = s * w + c;
    }
    let e = if big { std::f64::consts::LN_2 } else { 0.0 };
    e + 2.0 * u * s
}
