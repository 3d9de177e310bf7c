//! PID training of RA models: gradients, SGD, projections, learning-rate schedule.
//!
//! # Equations (DESIGN.md §2)
//! For a sample set `S`, with `T_s = tanh φ(v_s)` (H), `m_s = Ξ_v v_s` (K), `u_s = Ξ_h T_s` (K):
//!
//! ```text
//! g_v[k][i] = (1/(|S|√K)) Σ_s u_{s,k} v_{s,i}
//! g_h[k][α] = (1/(|S|√K)) Σ_s m_{s,k} T_{s,α}
//! ```
//!
//! This is `−∂⟨F⟩_S/∂ξ`, the log-likelihood ascent direction of one phase. The step direction
//! is `∇ = g(batch) − g(S⁻)` with the negative set chosen by [`NegativePhase`]:
//!
//! * [`NegativePhase::Patterns`] (`pid`): `S⁻ = {sign(ξᵏ_v)}`, the K visible patterns;
//! * [`NegativePhase::Hebb`] (`pid-hebb`): the paper's eq. 6,
//!   `g_v⁻ = (Ξ_hΞ_hᵀ)Ξ_v/(K√K)`, `g_h⁻ = (Ξ_vΞ_vᵀ)Ξ_h/(K√K)`;
//! * [`NegativePhase::Gibbs`] (`pid-gibbs:k`): chains seeded at `ξᵏ_v` as stored, `k` block
//!   Gibbs steps each, `S⁻` = the final visible states.
//!
//! The update is SGD with momentum μ and weight decay λ, `Δ ← μΔ − ηλΞ + η∇; Ξ ← Ξ + Δ`,
//! followed by a [`Projection`]. The learning rate decays per epoch, `η ← max(γη, η_min)`.
//!
//! `sign(0) = +1` everywhere ([`crate::spins::sign_f32`]).
//!
//! # Computation
//! [`accumulate_phase`] takes the samples in blocks of up to [`PHASE_BLOCK`] rows and computes
//! a block's phase as five GEMMs ([`crate::kernels::gemm()`]) that never form `W`; the
//! per-sample loops ([`accumulate_phase_per_sample`]) are its oracle. [`negative_samples`] and
//! [`accumulate_hebb_negative`] are the negative phase on its own, so a caller can split the
//! rows of both phases over threads (the harness does, with a lane count fixed by the batch
//! size so results do not depend on the thread count).

use rand_core::RngCore;

use crate::error::ConfigError;
use crate::kernels::{active, gemm_with, tanh_in_place, Isa, MatRef, GEMM_PACK_LEN};
use crate::model::{axpy, dot, Dims, RaModel};
use crate::num::tanh;
use crate::sample::gibbs_rows;
use crate::spins::sign_f32;

/// How the negative (model) phase of the gradient is estimated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NegativePhase {
    /// `pid`: the signed visible patterns as the K negative samples (the authors' code).
    Patterns,
    /// `pid-hebb`: `⟨v_i h_α⟩_model ≈ (1/K)Σ_m ξᵐ_i ξᵐ_α` (the paper's eq. 6, literally).
    Hebb,
    /// `pid-gibbs:k`: `steps` block Gibbs steps from each visible pattern.
    Gibbs {
        /// Gibbs steps per chain (at least 1).
        steps: u32,
    },
}

/// SGD with momentum and weight decay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    /// Learning rate η.
    pub lr: f32,
    /// Momentum μ in `[0, 1)`.
    pub momentum: f32,
    /// Weight decay λ ≥ 0.
    pub weight_decay: f32,
}

impl Sgd {
    /// Checks the ranges.
    ///
    /// # Errors
    /// The first out-of-range value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(ConfigError::LearningRate(self.lr));
        }
        if !(self.momentum >= 0.0 && self.momentum < 1.0) {
            return Err(ConfigError::Momentum(self.momentum));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(ConfigError::WeightDecay(self.weight_decay));
        }
        Ok(())
    }
}

/// How patterns are brought back to spins (or bounded) after updates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Projection {
    /// No projection.
    None,
    /// `Ξ ← sign(Ξ)` after every `every`-th update; `every = 0` means at the end of each epoch
    /// (the reference set-up).
    Sign {
        /// Updates between projections, or 0 for once per epoch.
        every: u32,
    },
    /// `Ξ ← clamp(Ξ, −bound, bound)` after every update (reference MNIST: bound 1).
    Clamp {
        /// The bound `x > 0`.
        bound: f32,
    },
}

impl Projection {
    /// Checks the clamp bound.
    ///
    /// # Errors
    /// [`ConfigError::ClampBound`] for a bound that is not finite and positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            Projection::Clamp { bound } if !(bound.is_finite() && bound > 0.0) => {
                Err(ConfigError::ClampBound(bound))
            }
            _ => Ok(()),
        }
    }

    /// Applies the projection due after an update; `updates_done` counts updates including
    /// this one.
    pub fn after_update(&self, xi: &mut [f32], updates_done: u64) {
        match *self {
            Projection::Clamp { bound } => project_clamp(xi, bound),
            Projection::Sign { every }
                if every > 0 && updates_done.is_multiple_of(u64::from(every)) =>
            {
                project_sign(xi)
            }
            _ => {}
        }
    }

    /// Applies the projection due at the end of an epoch.
    pub fn at_epoch_end(&self, xi: &mut [f32]) {
        if let Projection::Sign { every: 0 } = *self {
            project_sign(xi);
        }
    }
}

/// `x ← sign(x)` for every entry, with `sign(0) = +1` and `sign(NaN) = +1`.
pub fn project_sign(xi: &mut [f32]) {
    for x in xi.iter_mut() {
        *x = sign_f32(*x);
    }
}

/// `x ← clamp(x, −bound, bound)` for every entry; NaN becomes 0. A non-positive or NaN bound
/// clamps everything to 0.
pub fn project_clamp(xi: &mut [f32], bound: f32) {
    let b = if bound > 0.0 { bound } else { 0.0 };
    for x in xi.iter_mut() {
        *x = if x.is_nan() { 0.0 } else { x.clamp(-b, b) };
    }
}

/// Per-epoch learning-rate decay `η ← max(γη, η_min)`, from epoch `start_epoch` on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrSchedule {
    /// Factor γ in `(0, 1]`.
    pub decay: f32,
    /// Floor η_min ≥ 0.
    pub min: f32,
    /// Number of epochs before decay starts (MNIST reference: 100).
    pub start_epoch: u32,
}

impl LrSchedule {
    /// Checks the ranges.
    ///
    /// # Errors
    /// The first out-of-range value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.decay > 0.0 && self.decay <= 1.0) {
            return Err(ConfigError::LrDecay(self.decay));
        }
        if !(self.min.is_finite() && self.min >= 0.0) {
            return Err(ConfigError::LrMin(self.min));
        }
        Ok(())
    }

    /// The learning rate after epoch number `epochs_done` (1-based) ends.
    pub fn next(&self, lr: f32, epochs_done: u32) -> f32 {
        if epochs_done > self.start_epoch {
            (lr * self.decay).max(self.min)
        } else {
            lr
        }
    }
}

/// Everything PID training needs besides buffers. `Default` is the paper's Bars 4×4 set-up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PidConfig {
    /// Negative-phase estimator.
    pub negative: NegativePhase,
    /// Optimiser (its `lr` is the initial learning rate).
    pub sgd: Sgd,
    /// Projection after updates or epochs.
    pub projection: Projection,
    /// Learning-rate schedule.
    pub schedule: LrSchedule,
}

impl Default for PidConfig {
    fn default() -> Self {
        PidConfig {
            negative: NegativePhase::Patterns,
            sgd: Sgd { lr: 0.02, momentum: 0.0, weight_decay: 0.0 },
            projection: Projection::Sign { every: 0 },
            schedule: LrSchedule { decay: 0.96, min: 1e-5, start_epoch: 0 },
        }
    }
}

impl PidConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// The first invalid value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let NegativePhase::Gibbs { steps: 0 } = self.negative {
            return Err(ConfigError::GibbsSteps);
        }
        self.sgd.validate()?;
        self.projection.validate()?;
        self.schedule.validate()
    }
}

/// Sample rows per block of [`accumulate_phase`] when the scratch allows
/// ([`phase_scratch_len`]): enough for the SIMD GEMMs to run near peak on x86-64; one row
/// elsewhere, to keep microcontroller scratch small.
pub const PHASE_BLOCK: usize = if cfg!(target_arch = "x86_64") { 256 } else { 1 };

/// Scratch length for [`accumulate_phase`] with blocks of `rows` samples:
/// `rows·(2K + H) + GEMM_PACK_LEN`.
pub const fn phase_scratch_len(dims: Dims, rows: usize) -> usize {
    rows * (2 * dims.patterns + dims.hidden) + GEMM_PACK_LEN
}

/// Scratch length for [`pid_gradient`] and [`PidTrainer`]: the `K·V` negative samples, the
/// `K` entries of the `pid-hebb` Gram row, and [`phase_scratch_len`] for [`PHASE_BLOCK`] rows
/// (which the `pid-gibbs` chains also run in).
pub const fn pid_scratch_len(dims: Dims) -> usize {
    dims.patterns * dims.visible + dims.patterns + phase_scratch_len(dims, PHASE_BLOCK)
}

/// Splits phase scratch for a set of `n ≥ 1` rows into the packing buffer and blocks of
/// `b = clamp(rows that fit, 1, n)` rows: `m` (b×K), `u` (b×K) and `t` (b×H).
///
/// # Panics
/// If `scratch` is shorter than [`phase_scratch_len`]`(dims, 1)`.
#[allow(clippy::type_complexity)]
pub(crate) fn phase_buffers(
    dims: Dims,
    scratch: &mut [f32],
    n: usize,
) -> (&mut [f32], &mut [f32], &mut [f32], &mut [f32]) {
    assert!(scratch.len() >= phase_scratch_len(dims, 1), "scratch shorter than phase_scratch_len");
    let (k, h) = (dims.patterns, dims.hidden);
    let (pack, rows) = scratch.split_at_mut(GEMM_PACK_LEN);
    let b = (rows.len() / (2 * k + h)).clamp(1, n);
    let (m, rest) = rows.split_at_mut(b * k);
    let (u, rest) = rest.split_at_mut(b * k);
    (pack, m, u, &mut rest[..b * h])
}

/// Adds `scale · [u vᵀ | m Tᵀ]` for one sample `v` to `grad` (the per-sample term of `g` before
/// the `1/(|S|√K)` factor, which the caller folds into `scale`). `scratch` needs `2K + H`.
fn accumulate_sample<S: AsRef<[f32]>>(
    model: &RaModel<S>,
    v: &[f32],
    scale: f32,
    grad: &mut [f32],
    scratch: &mut [f32],
) {
    let d = model.dims();
    let (m, rest) = scratch.split_at_mut(d.patterns);
    let (u, rest) = rest.split_at_mut(d.patterns);
    let t = &mut rest[..d.hidden];
    model.hidden_field(v, m, t);
    for x in t.iter_mut() {
        *x = tanh(*x);
    }
    model.projections(t, u);
    let w = d.width();
    for k in 0..d.patterns {
        let row = &mut grad[k * w..(k + 1) * w];
        let (gv, gh) = row.split_at_mut(d.visible);
        axpy(scale * u[k], v, gv);
        axpy(scale * m[k], t, gh);
    }
}

/// [`accumulate_phase`] one sample at a time with plain loops: the scalar oracle of the
/// blocked version. `scratch` needs `2K + H` entries.
///
/// # Panics
/// As [`accumulate_phase`].
pub fn accumulate_phase_per_sample<S: AsRef<[f32]>>(
    model: &RaModel<S>,
    samples: &[f32],
    sign: f32,
    grad: &mut [f32],
    scratch: &mut [f32],
) {
    let d = model.dims();
    assert_eq!(samples.len() % d.visible, 0, "sample rows must have V entries");
    assert_eq!(grad.len(), d.xi_len(), "grad must have K·(V+H) entries");
    assert!(scratch.len() >= 2 * d.patterns + d.hidden, "scratch shorter than 2K + H");
    let n = samples.len() / d.visible;
    if n == 0 {
        return;
    }
    let scale = sign * model.inv_sqrt_k() / n as f32;
    for v in samples.chunks_exact(d.visible) {
        accumulate_sample(model, v, scale, grad, scratch);
    }
}

/// Adds the phase term `sign · g(S)` of a sample set `S` (rows of `samples`, `V` each) to
/// `grad`. An empty set adds nothing.
///
/// The samples go in blocks of `b` rows (as many as `scratch` holds, see
/// [`phase_scratch_len`]), each as five GEMMs that never form `W`:
///
/// ```text
/// M = S Ξ_vᵀ (b×K)   Φ = M Ξ_h/√K (b×H)   T = tanh Φ   U = T Ξ_hᵀ (b×K)
/// g_v += c·Uᵀ S      g_h += c·Mᵀ T         (c = sign/(|S|√K))
/// ```
///
/// Within a rounding bound it equals [`accumulate_phase_per_sample`]; bit-for-bit it depends
/// on the kernel level and the block size (the scratch length), so a run is reproducible for
/// a given seed, level and scratch length.
///
/// # Panics
/// If `samples.len()` is not a multiple of `V`, `grad.len() != K(V+H)` or `scratch` is shorter
/// than `phase_scratch_len(dims, 1)`.
pub fn accumulate_phase<S: AsRef<[f32]>>(
    model: &RaModel<S>,
    samples: &[f32],
    sign: f32,
    grad: &mut [f32],
    scratch: &mut [f32],
) {
    accumulate_phase_at(active(), model, samples, sign, grad, scratch);
}

/// [`accumulate_phase`] at a given kernel level.
fn accumulate_phase_at<S: AsRef<[f32]>>(
    isa: Isa,
    model: &RaModel<S>,
    samples: &[f32],
    sign: f32,
    grad: &mut [f32],
    scratch: &mut [f32],
) {
    let d = model.dims();
    assert_eq!(samples.len() % d.visible, 0, "sample rows must have V entries");
    assert_eq!(grad.len(), d.xi_len(), "grad must have K·(V+H) entries");
    let n = samples.len() / d.visible;
    if n == 0 {
        return;
    }
    let (kk, v, h, w) = (d.patterns, d.visible, d.hidden, d.width());
    let (pack, m, u, t) = phase_buffers(d, scratch, n);
    let block = m.len() / kk;
    let scale = sign * model.inv_sqrt_k() / n as f32;
    for s in samples.chunks(block * v) {
        let b = s.len() / v;
        let (m, u, t) = (&mut m[..b * kk], &mut u[..b * kk], &mut t[..b * h]);
        model.hidden_fields_rows(isa, s, m, t, pack);
        tanh_in_place(t);
        model.projections_rows(isa, t, u, pack);
        let (sm, mm, um, tm) = (
            MatRef::row_major(s, v),
            MatRef::row_major(m, kk),
            MatRef::row_major(u, kk),
            MatRef::row_major(t, h),
        );
        gemm_with(isa, kk, v, b, scale, um.t(), sm, grad, w, pack);
        gemm_with(isa, kk, h, b, scale, mm.t(), tm, &mut grad[v..], w, pack);
    }
}

/// The step direction `∇ = g(batch) − g(S⁻)` (replaces `grad`).
///
/// `batch` holds `B` rows of `V` spins (±1; 0 counts as a neutral spin). The positive phase
/// sums over the rows and divides by `divisor`: pass `B` for the plain mean of DESIGN.md, or
/// the configured batch size so that a short final batch takes a proportionally smaller
/// positive step and every training image weighs the same per epoch (what the authors'
/// code does). A `divisor` of 0 means `B`. The RNG is used only by [`NegativePhase::Gibbs`].
///
/// # Panics
/// If `batch.len()` is not a multiple of `V`, `grad.len() != K(V+H)` or `scratch` is shorter
/// than [`pid_scratch_len`].
pub fn pid_gradient<S: AsRef<[f32]>, R: RngCore + ?Sized>(
    model: &RaModel<S>,
    batch: &[f32],
    divisor: usize,
    negative: NegativePhase,
    grad: &mut [f32],
    scratch: &mut [f32],
    rng: &mut R,
) {
    let d = model.dims();
    assert!(scratch.len() >= pid_scratch_len(d), "scratch shorter than pid_scratch_len");
    grad.fill(0.0);
    let rows = batch.len() / d.visible;
    let weight = if divisor == 0 { 1.0 } else { rows as f32 / divisor as f32 };
    let (negs, rest) = scratch.split_at_mut(d.patterns * d.visible);
    let (gram, phase) = rest.split_at_mut(d.patterns);
    accumulate_phase(model, batch, weight, grad, phase);
    if negative_samples(model, negative, negs, phase, rng) {
        accumulate_phase(model, negs, -1.0, grad, phase);
    } else {
        accumulate_hebb_negative(model, grad, gram);
    }
}

/// Minimum scratch length for [`negative_samples`]: [`phase_scratch_len`] for one row (more
/// runs the Gibbs chains in bigger blocks).
pub const fn negative_scratch_len(dims: Dims) -> usize {
    phase_scratch_len(dims, 1)
}

/// Writes the `K` negative samples `S⁻` of `negative` into `out` (K rows of V) and returns
/// `true`; for [`NegativePhase::Hebb`], which has no samples, returns `false` and leaves
/// `out` alone. `Patterns` gives `sign(ξᵏ_v)`; `Gibbs { steps }` starts one chain at each
/// `ξᵏ_v` and runs `steps` block Gibbs steps on all of them as GEMMs with bulk draws
/// ([`crate::sample::gibbs_rows`], blocks of chains as `scratch` allows). Split out of
/// [`pid_gradient`] so a caller can spread the phase sums over threads.
///
/// # Panics
/// If `out.len() != K·V` or `scratch` is shorter than [`negative_scratch_len`].
pub fn negative_samples<S: AsRef<[f32]>, R: RngCore + ?Sized>(
    model: &RaModel<S>,
    negative: NegativePhase,
    out: &mut [f32],
    scratch: &mut [f32],
    rng: &mut R,
) -> bool {
    let d = model.dims();
    assert_eq!(out.len(), d.patterns * d.visible, "out must have K·V entries");
    assert!(scratch.len() >= negative_scratch_len(d), "scratch shorter than negative_scratch_len");
    match negative {
        NegativePhase::Patterns => {
            for (k, row) in out.chunks_exact_mut(d.visible).enumerate() {
                for (x, &p) in row.iter_mut().zip(model.xi_v(k)) {
                    *x = sign_f32(p);
                }
            }
            true
        }
        NegativePhase::Gibbs { steps } => {
            for (k, row) in out.chunks_exact_mut(d.visible).enumerate() {
                row.copy_from_slice(model.xi_v(k));
            }
            gibbs_rows(model, out, steps, scratch, rng);
            true
        }
        NegativePhase::Hebb => false,
    }
}

/// Subtracts the eq.-6 negative phase of `pid-hebb` from `grad`:
/// `g_v⁻ = (Ξ_hΞ_hᵀ)Ξ_v/(K√K)`, `g_h⁻ = (Ξ_vΞ_vᵀ)Ξ_h/(K√K)`. `gram` needs `K` entries. Cost
/// O(K²(V+H)).
///
/// # Panics
/// If `grad.len() != K(V+H)` or `gram` is shorter than `K`.
pub fn accumulate_hebb_negative<S: AsRef<[f32]>>(
    model: &RaModel<S>,
    grad: &mut [f32],
    gram: &mut [f32],
) {
    let d = model.dims();
    assert_eq!(grad.len(), d.xi_len(), "grad must have K·(V+H) entries");
    assert!(gram.len() >= d.patterns, "gram must have K entries");
    let kk = d.patterns;
    let c = model.inv_sqrt_k() / kk as f32;
    let w = d.width();
    let gram = &mut gram[..kk];
    for k in 0..kk {
        for (m, g) in gram.iter_mut().enumerate() {
            *g = dot(model.xi_h(k), model.xi_h(m));
        }
        for (m, &g) in gram.iter().enumerate() {
            axpy(-c * g, model.xi_v(m), &mut grad[k * w..k * w + d.visible]);
        }
        for (m, g) in gram.iter_mut().enumerate() {
            *g = dot(model.xi_v(k), model.xi_v(m));
        }
        for (m, &g) in gram.iter().enumerate() {
            axpy(-c * g, model.xi_h(m), &mut grad[k * w + d.visible..(k + 1) * w]);
        }
    }
}

/// One SGD update: `Δ ← μΔ − ηλΞ + η∇; Ξ ← Ξ + Δ`.
///
/// # Panics
/// If the three slices differ in length.
pub fn sgd_update(xi: &mut [f32], velocity: &mut [f32], grad: &[f32], sgd: &Sgd) {
    assert!(xi.len() == velocity.len() && xi.len() == grad.len(), "buffer lengths differ");
    let (mu, eta, lambda) = (sgd.momentum, sgd.lr, sgd.weight_decay);
    for ((x, d), &g) in xi.iter_mut().zip(velocity.iter_mut()).zip(grad) {
        *d = mu * *d - eta * lambda * *x + eta * g;
        *x += *d;
    }
}

/// A PID training run over caller-owned buffers (`Vec<f32>` with `std`, `&mut [f32]` on a
/// microcontroller).
///
/// # Examples
/// ```
/// use rapid_core::model::Dims;
/// use rapid_core::train::{pid_scratch_len, PidConfig, PidTrainer};
/// use rand_core::SeedableRng;
///
/// let dims = Dims::new(4, 6, 2);
/// let mut xi = [1.0f32; 20];
/// xi[3] = -1.0;
/// let (mut vel, mut grad) = ([0.0f32; 20], [0.0f32; 20]);
/// let mut scratch = [0.0f32; pid_scratch_len(Dims::new(4, 6, 2))];
/// let mut t = PidTrainer::new(dims, PidConfig::default(), &mut xi[..], &mut vel[..],
///                             &mut grad[..], &mut scratch[..]).unwrap();
/// let mut rng = rand_pcg::Pcg32::seed_from_u64(1);
/// let batch = [1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0, -1.0]; // two images, V = 4
/// t.step(&batch, &mut rng);
/// t.end_epoch();
/// assert!(t.model().xi().iter().all(|&x| x == 1.0 || x == -1.0));
/// ```
#[derive(Debug)]
pub struct PidTrainer<B> {
    dims: Dims,
    config: PidConfig,
    lr: f32,
    updates: u64,
    epochs: u32,
    xi: B,
    velocity: B,
    grad: B,
    scratch: B,
}

impl<B: AsRef<[f32]> + AsMut<[f32]>> PidTrainer<B> {
    /// Starts (or continues) a run. `velocity` holds the momentum `Δ`: pass zeros to start
    /// fresh. The learning rate starts at `config.sgd.lr`.
    ///
    /// # Errors
    /// An invalid configuration or size.
    ///
    /// # Panics
    /// If `xi`, `velocity` or `grad` does not have `K(V+H)` entries, or `scratch` is shorter
    /// than [`pid_scratch_len`].
    pub fn new(
        dims: Dims,
        config: PidConfig,
        xi: B,
        velocity: B,
        grad: B,
        scratch: B,
    ) -> Result<Self, ConfigError> {
        dims.validate()?;
        config.validate()?;
        assert_eq!(xi.as_ref().len(), dims.xi_len(), "xi must have K·(V+H) entries");
        assert_eq!(velocity.as_ref().len(), dims.xi_len(), "velocity must have K·(V+H) entries");
        assert_eq!(grad.as_ref().len(), dims.xi_len(), "grad must have K·(V+H) entries");
        assert!(scratch.as_ref().len() >= pid_scratch_len(dims), "scratch too short");
        Ok(PidTrainer {
            dims,
            config,
            lr: config.sgd.lr,
            updates: 0,
            epochs: 0,
            xi,
            velocity,
            grad,
            scratch,
        })
    }

    /// The model as it stands.
    pub fn model(&self) -> RaModel<&[f32]> {
        RaModel::new(self.xi.as_ref(), self.dims)
    }

    /// The configuration.
    pub fn config(&self) -> &PidConfig {
        &self.config
    }

    /// The current learning rate.
    pub fn lr(&self) -> f32 {
        self.lr
    }

    /// Updates done so far.
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// Epochs ended so far.
    pub fn epochs(&self) -> u32 {
        self.epochs
    }

    /// The step direction of the last update.
    pub fn last_gradient(&self) -> &[f32] {
        self.grad.as_ref()
    }

    /// One update on a batch of `B` rows of `V` spins: gradient (positive phase = mean over
    /// the rows), SGD, projection.
    ///
    /// # Panics
    /// If `batch.len()` is not a multiple of `V`.
    pub fn step<R: RngCore + ?Sized>(&mut self, batch: &[f32], rng: &mut R) {
        self.step_with_divisor(batch, 0, rng);
    }

    /// As [`PidTrainer::step`], with the positive phase divided by `divisor` instead of the
    /// row count (see [`pid_gradient`]; 0 means the row count).
    ///
    /// # Panics
    /// If `batch.len()` is not a multiple of `V`.
    pub fn step_with_divisor<R: RngCore + ?Sized>(
        &mut self,
        batch: &[f32],
        divisor: usize,
        rng: &mut R,
    ) {
        let model = RaModel::new(self.xi.as_ref(), self.dims);
        pid_gradient(
            &model,
            batch,
            divisor,
            self.config.negative,
            self.grad.as_mut(),
            self.scratch.as_mut(),
            rng,
        );
        let sgd = Sgd { lr: self.lr, ..self.config.sgd };
        sgd_update(self.xi.as_mut(), self.velocity.as_mut(), self.grad.as_ref(), &sgd);
        self.updates += 1;
        self.config.projection.after_update(self.xi.as_mut(), self.updates);
    }

    /// Ends an epoch: the end-of-epoch projection, then the learning-rate decay.
    pub fn end_epoch(&mut self) {
        self.config.projection.at_epoch_end(self.xi.as_mut());
        self.epochs += 1;
        self.lr = self.config.schedule.next(self.lr, self.epochs);
    }

    /// Gives the buffers back: `(xi, velocity, grad, scratch)`.
    pub fn into_parts(self) -> (B, B, B, B) {
        (self.xi, self.velocity, self.grad, self.scratch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use crate::num::log_2cosh_f64;
    use crate::test_util::{assert_ascent_matches_finite_difference, pm1, uniform};
    use rand_core::SeedableRng;
    use rand_pcg::Pcg64;
    use std::vec;
    use std::vec::Vec;

    /// Mean free energy of the batch in f64, straight from the definition with a formed W.
    fn mean_free_energy(xi: &[f64], d: Dims, batch: &[f32]) -> f64 {
        let w = d.width();
        let sk = (d.patterns as f64).sqrt();
        let n = batch.len() / d.visible;
        let mut total = 0.0;
        for v in batch.chunks_exact(d.visible) {
            for a in 0..d.hidden {
                let mut phi = 0.0;
                for i in 0..d.visible {
                    let wia: f64 = (0..d.patterns)
                        .map(|k| xi[k * w + i] * xi[k * w + d.visible + a])
                        .sum::<f64>()
                        / sk;
                    phi += wia * v[i] as f64;
                }
                total -= log_2cosh_f64(phi);
            }
        }
        total / n as f64
    }

    /// The positive-phase gradient is `−∂⟨F⟩_batch/∂ξ`, checked by central differences.
    #[test]
    fn positive_phase_equals_finite_difference_of_free_energy() {
        let mut rng = Pcg64::seed_from_u64(21);
        for &(v, h, k, b) in &[(4, 5, 2, 3), (7, 3, 3, 2), (5, 9, 4, 1)] {
            let d = Dims::new(v, h, k);
            let xi: Vec<f32> = (0..d.xi_len()).map(|_| uniform(&mut rng)).collect();
            let batch = pm1(&mut rng, b * v);
            let model = RaModel::new(&xi[..], d);
            let mut grad = vec![0.0; d.xi_len()];
            let mut scratch = vec![0.0; pid_scratch_len(d)];
            accumulate_phase(&model, &batch, 1.0, &mut grad, &mut scratch);
            let what = std::format!("{v}x{h}x{k}");
            assert_ascent_matches_finite_difference(
                &grad,
                &xi,
                |x| mean_free_energy(x, d, &batch),
                &what,
            );
        }
    }

    /// The blocked GEMM phase equals the per-sample oracle at every kernel level, for sample
    /// counts around the block size and for small scratch (one-row blocks).
    #[test]
    #[cfg_attr(miri, ignore = "GEMMs over hundreds of samples: too slow under Miri")]
    fn blocked_phase_matches_per_sample_oracle() {
        let mut rng = Pcg64::seed_from_u64(27);
        for &(v, h, k, n) in
            &[(16, 100, 8, 3), (5, 9, 1, 1), (33, 70, 17, 129), (20, 40, 5, 300), (7, 65, 3, 128)]
        {
            let d = Dims::new(v, h, k);
            let xi: Vec<f32> = (0..d.xi_len()).map(|_| uniform(&mut rng)).collect();
            let model = RaModel::new(&xi[..], d);
            let samples = pm1(&mut rng, n * v);
            let mut want = vec![0.0; d.xi_len()];
            let mut small = vec![0.0; 2 * k + h];
            accumulate_phase_per_sample(&model, &samples, -0.5, &mut want, &mut small);
            // Magnitude of each entry's terms: |scale|·Σ_s (|u||v| or |m||T|) ≤ …; bound by the
            // sum of absolute per-sample terms.
            let mut mag = vec![0.0f32; d.xi_len()];
            let absxi: Vec<f32> = xi.iter().map(|x| x.abs()).collect();
            let absm = RaModel::new(&absxi[..], d);
            let ones = vec![1.0f32; n * v];
            accumulate_phase_per_sample(&absm, &ones, 0.5, &mut mag, &mut small);
            for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
                for len in [pid_scratch_len(d), phase_scratch_len(d, 1)] {
                    let mut got = vec![0.0; d.xi_len()];
                    let mut scratch = vec![0.0; len];
                    accumulate_phase_at(isa, &model, &samples, -0.5, &mut got, &mut scratch);
                    for (i, ((g, w), m)) in got.iter().zip(&want).zip(&mag).enumerate() {
                        let bound = 8.0 * (v + h + n) as f32 * f32::EPSILON * (m + 1e-3);
                        assert!(
                            (g - w).abs() <= bound,
                            "{isa:?} {v}x{h}x{k} n{n} len{len} [{i}]: {g} vs {w} (bound {bound})"
                        );
                    }
                }
            }
        }
    }

    /// `pid-hebb` equals its definition: ⟨v_i h_α⟩ ≈ (1/K)Σ_m ξᵐ_i ξᵐ_α, chained through
    /// ∂W_iα/∂ξᵏ_i = ξᵏ_α/√K and ∂W_iα/∂ξᵏ_α = ξᵏ_i/√K.
    #[test]
    fn hebb_negative_phase_equals_slow_definition() {
        let mut rng = Pcg64::seed_from_u64(22);
        let d = Dims::new(6, 7, 3);
        let xi: Vec<f32> = (0..d.xi_len()).map(|_| uniform(&mut rng)).collect();
        let model = RaModel::new(&xi[..], d);
        let mut grad = vec![0.0; d.xi_len()];
        let mut scratch = vec![0.0; pid_scratch_len(d)];
        // Empty batch: only the negative phase remains.
        pid_gradient(&model, &[], 0, NegativePhase::Hebb, &mut grad, &mut scratch, &mut rng);
        let (kk, sk) = (d.patterns as f64, (d.patterns as f64).sqrt());
        let corr = |i: usize, a: usize| -> f64 {
            (0..d.patterns).map(|m| model.xi_v(m)[i] as f64 * model.xi_h(m)[a] as f64).sum::<f64>()
                / kk
        };
        let w = d.width();
        for k in 0..d.patterns {
            for i in 0..d.visible {
                let want: f64 =
                    -(0..d.hidden).map(|a| corr(i, a) * model.xi_h(k)[a] as f64 / sk).sum::<f64>();
                assert!((grad[k * w + i] as f64 - want).abs() < 1e-5, "g_v[{k}][{i}]");
            }
            for a in 0..d.hidden {
                let want: f64 =
                    -(0..d.visible).map(|i| corr(i, a) * model.xi_v(k)[i] as f64 / sk).sum::<f64>();
                assert!((grad[k * w + d.visible + a] as f64 - want).abs() < 1e-5, "g_h[{k}][{a}]");
            }
        }
    }

    /// `pid` subtracts the positive-phase formula evaluated on the signed visible patterns.
    #[test]
    fn pattern_negative_phase_uses_signed_patterns() {
        let mut rng = Pcg64::seed_from_u64(23);
        let d = Dims::new(5, 4, 3);
        let mut xi: Vec<f32> = (0..d.xi_len()).map(|_| uniform(&mut rng)).collect();
        xi[0] = 0.0; // sign(0) = +1
        let model = RaModel::new(&xi[..], d);
        let batch = pm1(&mut rng, 2 * d.visible);
        let mut scratch = vec![0.0; pid_scratch_len(d)];
        let mut grad = vec![0.0; d.xi_len()];
        pid_gradient(&model, &batch, 0, NegativePhase::Patterns, &mut grad, &mut scratch, &mut rng);
        let mut negs = Vec::new();
        for k in 0..d.patterns {
            negs.extend(model.xi_v(k).iter().map(|&x| if x >= 0.0 { 1.0f32 } else { -1.0 }));
        }
        let mut want = vec![0.0; d.xi_len()];
        accumulate_phase(&model, &batch, 1.0, &mut want, &mut scratch);
        accumulate_phase(&model, &negs, -1.0, &mut want, &mut scratch);
        for (g, w) in grad.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6);
        }
    }

    /// A divisor larger than the row count scales the positive phase only: a batch of one
    /// image divided by 3 equals that image plus two neutral (all-zero) rows, which add nothing.
    #[test]
    fn divisor_scales_only_the_positive_phase() {
        let mut rng = Pcg64::seed_from_u64(26);
        let d = Dims::new(5, 4, 3);
        let xi: Vec<f32> = (0..d.xi_len()).map(|_| uniform(&mut rng)).collect();
        let model = RaModel::new(&xi[..], d);
        let one = pm1(&mut rng, d.visible);
        let mut padded = one.clone();
        padded.extend(core::iter::repeat_n(0.0, 2 * d.visible));
        let mut scratch = vec![0.0; pid_scratch_len(d)];
        let (mut a, mut b) = (vec![0.0; d.xi_len()], vec![0.0; d.xi_len()]);
        pid_gradient(&model, &one, 3, NegativePhase::Patterns, &mut a, &mut scratch, &mut rng);
        pid_gradient(&model, &padded, 0, NegativePhase::Patterns, &mut b, &mut scratch, &mut rng);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-6);
        }
    }

    #[test]
    fn gibbs_negative_phase_is_seeded_and_reproducible() {
        let d = Dims::new(6, 8, 2);
        let mut rng = Pcg64::seed_from_u64(24);
        let xi: Vec<f32> = pm1(&mut rng, d.xi_len());
        let model = RaModel::new(&xi[..], d);
        let batch = pm1(&mut rng, 3 * d.visible);
        let mut scratch = vec![0.0; pid_scratch_len(d)];
        let run = |seed: u64, scratch: &mut [f32]| {
            let mut g = vec![0.0; d.xi_len()];
            let mut r = Pcg64::seed_from_u64(seed);
            pid_gradient(
                &model,
                &batch,
                0,
                NegativePhase::Gibbs { steps: 2 },
                &mut g,
                scratch,
                &mut r,
            );
            g
        };
        let a = run(1, &mut scratch);
        assert_eq!(a, run(1, &mut scratch));
        assert!(a.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn projections_hold_their_invariants() {
        let mut xi = [0.0f32, -0.0, 0.3, -2.5, f32::NAN, 7.0, -1e-20];
        let mut c = xi;
        project_sign(&mut xi);
        assert_eq!(xi, [1.0, 1.0, 1.0, -1.0, 1.0, 1.0, -1.0]);
        project_clamp(&mut c, 1.5);
        assert_eq!(c, [0.0, -0.0, 0.3, -1.5, 0.0, 1.5, -1e-20]);
        assert!(c.iter().all(|x| (-1.5..=1.5).contains(x)));
        let mut rng = Pcg64::seed_from_u64(25);
        let mut big: Vec<f32> = (0..1000).map(|_| uniform(&mut rng) * 10.0).collect();
        let mut b2 = big.clone();
        project_clamp(&mut big, 0.25);
        assert!(big.iter().all(|x| (-0.25..=0.25).contains(x)));
        project_sign(&mut b2);
        assert!(b2.iter().all(|&x| x == 1.0 || x == -1.0));
    }

    #[test]
    fn sgd_follows_the_update_rule() {
        let mut xi = [1.0f32, -0.5];
        let mut vel = [0.1f32, 0.0];
        let grad = [2.0f32, -1.0];
        let sgd = Sgd { lr: 0.1, momentum: 0.5, weight_decay: 0.01 };
        sgd_update(&mut xi, &mut vel, &grad, &sgd);
        let d0 = 0.5 * 0.1 - 0.1 * 0.01 * 1.0 + 0.1 * 2.0;
        let d1 = 0.1 * 0.01 * 0.5 - 0.1;
        assert!((vel[0] - d0).abs() < 1e-7 && (vel[1] - d1).abs() < 1e-7);
        assert!((xi[0] - (1.0 + d0)).abs() < 1e-7 && (xi[1] - (-0.5 + d1)).abs() < 1e-7);
    }

    #[test]
    fn schedule_and_sign_cadence() {
        let s = LrSchedule { decay: 0.5, min: 0.1, start_epoch: 1 };
        assert_eq!(s.next(1.0, 1), 1.0);
        assert_eq!(s.next(1.0, 2), 0.5);
        assert_eq!(s.next(0.15, 3), 0.1);
        let p = Projection::Sign { every: 3 };
        let mut x = [0.5f32];
        p.after_update(&mut x, 2);
        assert_eq!(x, [0.5]);
        p.after_update(&mut x, 3);
        assert_eq!(x, [1.0]);
        let mut y = [0.5f32];
        Projection::Sign { every: 0 }.after_update(&mut y, 3);
        assert_eq!(y, [0.5]);
        Projection::Sign { every: 0 }.at_epoch_end(&mut y);
        assert_eq!(y, [1.0]);
    }

    #[test]
    fn config_validation_names_the_problem() {
        let mut c = PidConfig::default();
        assert!(c.validate().is_ok());
        c.sgd.lr = -0.1;
        assert_eq!(c.validate(), Err(ConfigError::LearningRate(-0.1)));
        c = PidConfig { negative: NegativePhase::Gibbs { steps: 0 }, ..PidConfig::default() };
        assert_eq!(c.validate(), Err(ConfigError::GibbsSteps));
        c = PidConfig { projection: Projection::Clamp { bound: 0.0 }, ..PidConfig::default() };
        assert_eq!(c.validate(), Err(ConfigError::ClampBound(0.0)));
        assert_eq!(Dims::new(3, 0, 2).validate(), Err(ConfigError::NoHidden));
        assert_eq!(Dims::new(3, 2, 0).validate(), Err(ConfigError::NoPatterns));
        assert_eq!(Dims::new(usize::MAX, 2, 2).validate(), Err(ConfigError::TooLarge));
    }
}
