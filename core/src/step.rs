//! The training step: one engine for every method, run by the `rapid` CLI, the benches and
//! firmware alike.
//!
//! # One update
//! For a batch `B` of rows and the configured batch size `b₀`:
//!
//! ```text
//! ∇ = (|B|/d)·g(B) − g(S⁻)              d = the divisor (default |B|)
//! θ ← optimiser(θ, ∇)  (SGD+momentum+decay, or Adam)      then the projection
//! ```
//!
//! with `g(S)` the phase term of a sample set ([`crate::blocks::accumulate_phase`]) and the
//! negative term by [`Method`]: `pid` (`S⁻ = sign ξᵏ_v`), `pid-hebb` (eq. 6, no samples),
//! `pid-gibbs:k` (k Gibbs steps from `ξᵏ_v`), `cd:k` (k steps from the batch), `pcd:k`
//! (persistent chains), `exact` (the model average, computed by the caller, e.g. by
//! enumeration). At each epoch end: the end-of-epoch projection, then `η ← max(γη, η_min)`.
//!
//! # Lanes
//! An update splits its rows (batch rows, negative samples, chains) into
//! [`Engine::lanes`] contiguous lanes ([`lanes_for`]: fixed by the configured sizes, never by
//! the thread count). Each lane's gradient is computed from zero by [`Engine::lane`]; the
//! update's gradient is their sum in lane order. A caller with threads runs the lanes in
//! parallel ([`Engine::begin`] → [`Engine::lane`] per lane → sum → [`Engine::finish`]); a
//! caller without runs [`Engine::step`], which does the same in order and gives the same bits.
//! Lanes that draw random numbers (CD, PCD) get their own generator, seeded in lane order from
//! the caller's. The model's fixed GEMM operands (RA: `Ξ`, dense: `W`) are packed once per
//! update by [`Engine::begin`], into the end of its scratch, and every lane reads that one copy
//! ([`LaneBuffers::shared`]) instead of packing its own.
//!
//! # Buffers
//! Everything belongs to the caller ([`Buffers`]); each length comes from an [`Engine`]
//! method (`*_len`). Block sizes come from [`StepConfig::block_rows`], so a seed gives the
//! same bits at the scalar level on every architecture.

use core::num::NonZeroUsize;
use core::ops::Range;

use rand_core::{RngCore, SeedableRng};

use crate::blocks::{
    accumulate_phase, block_scratch_len, cd_negative_phase, chain_words_len, pcd_negative_phase,
    BlockModel, Workspace, BLOCK_ROWS,
};
use crate::dense::{DenseDims, DenseRbm};
use crate::error::ConfigError;
use crate::kernels::{active, Isa};
use crate::optim::{LrSchedule, Optimizer, Projection, Sgd};
use crate::ra::model::{Dims, RaModel};
use crate::ra::pid::{accumulate_hebb_negative, negative_samples, NegativePhase};

/// A training method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Method {
    /// RAPID: PID on an RA model with this negative phase.
    Pid(NegativePhase),
    /// CD-k: chains start at the batch rows.
    Cd {
        /// Gibbs steps.
        k: u32,
    },
    /// PCD-k: persistent chains.
    Pcd {
        /// Gibbs steps per update.
        k: u32,
        /// Number of chains.
        chains: usize,
    },
    /// Exact gradient of a dense model: the caller supplies the model average.
    Exact,
}

/// The sizes of the model a step trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// An RA model (`K` patterns).
    Ra(Dims),
    /// A dense model.
    Dense(DenseDims),
}

impl Shape {
    /// Visible units.
    pub const fn visible(&self) -> usize {
        match self {
            Shape::Ra(d) => d.visible,
            Shape::Dense(d) => d.visible,
        }
    }

    /// Hidden units.
    pub const fn hidden(&self) -> usize {
        match self {
            Shape::Ra(d) => d.hidden,
            Shape::Dense(d) => d.hidden,
        }
    }

    /// Parameter (and gradient) entries.
    pub const fn param_len(&self) -> usize {
        match self {
            Shape::Ra(d) => d.xi_len(),
            Shape::Dense(d) => d.param_len(),
        }
    }

    /// Per-row block workspace ([`BlockModel::row_work`]).
    pub const fn row_work(&self) -> usize {
        match self {
            Shape::Ra(d) => 2 * d.patterns,
            Shape::Dense(_) => 0,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Shape::Ra(d) => d.validate(),
            Shape::Dense(d) => d.validate(),
        }
    }
}

/// Everything a training run needs besides buffers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepConfig {
    /// The method.
    pub method: Method,
    /// The optimiser (its learning rate is the initial one).
    pub optimizer: Optimizer,
    /// The projection after updates or epochs (`None` for dense models).
    pub projection: Projection,
    /// The learning-rate schedule.
    pub schedule: LrSchedule,
    /// The configured batch size `b₀` (rows per update; the last batch may be shorter). It
    /// fixes the lane count and the scratch.
    pub batch: usize,
    /// Rows per block of the GEMM phases and Gibbs chains ([`BLOCK_ROWS`] by default). Part
    /// of the result: a different value gives different bits.
    pub block_rows: usize,
}

impl StepConfig {
    /// The paper's Bars 4×4 RAPID set-up: `pid`, SGD η = 0.02, batch 3, sign at each epoch
    /// end, γ = 0.96 down to 1e−5.
    pub const fn paper_bars() -> Self {
        StepConfig {
            method: Method::Pid(NegativePhase::Patterns),
            optimizer: Optimizer::Sgd(Sgd { lr: 0.02, momentum: 0.0, weight_decay: 0.0 }),
            projection: Projection::Sign { every: 0 },
            schedule: LrSchedule { decay: 0.96, min: 1e-5, start_epoch: 0 },
            batch: 3,
            block_rows: BLOCK_ROWS,
        }
    }

    /// Checks the configuration against the model shape.
    ///
    /// # Errors
    /// The first problem: a size, a hyper-parameter, a method that does not fit the model
    /// kind (`pid*` needs an RA model, `exact` a dense one; dense models take no projection).
    pub fn validate(&self, shape: Shape) -> Result<(), ConfigError> {
        shape.validate()?;
        match (self.method, shape) {
            (Method::Pid(_), Shape::Dense(_)) => return Err(ConfigError::PidNeedsRa),
            (Method::Exact, Shape::Ra(_)) => return Err(ConfigError::ExactNeedsDense),
            (Method::Pid(NegativePhase::Gibbs { steps: 0 }), _) => {
                return Err(ConfigError::GibbsSteps)
            }
            _ => {}
        }
        if let Method::Pcd { chains: 0, .. } = self.method {
            return Err(ConfigError::NoChains);
        }
        if matches!(shape, Shape::Dense(_)) && self.projection != Projection::None {
            return Err(ConfigError::ProjectionOnDense);
        }
        if self.batch == 0 {
            return Err(ConfigError::Batch);
        }
        if self.block_rows == 0 {
            return Err(ConfigError::BlockRows);
        }
        self.optimizer.validate()?;
        self.projection.validate()?;
        self.schedule.validate()
    }
}

/// The buffer lengths of a run ([`StepConfig::lengths`]), in entries (`f32`, chains `u64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lengths {
    /// Parameters, and the gradient.
    pub params: usize,
    /// Optimiser state ([`Optimizer::state_len`]).
    pub opt: usize,
    /// Negative samples: `K·V` for `pid` and `pid-gibbs`, else 0.
    pub negatives: usize,
    /// Persistent chain words (PCD), else 0.
    pub chain_words: usize,
    /// Lanes per update.
    pub lanes: usize,
    /// The second gradient of [`Engine::step`]: the parameter length with more than one
    /// lane, else 0.
    pub lane_grad: usize,
    /// Scratch for [`Engine::begin`]/[`Engine::finish`] and [`Engine::step`]: a lane's
    /// scratch followed by the model's operands that `begin` packs once for all lanes.
    pub scratch: usize,
    /// Scratch for one lane ([`Engine::lane`]): blocks of `min(block_rows, most rows)` rows
    /// and the `pid-hebb` Gram row.
    pub lane_scratch: usize,
}

impl StepConfig {
    /// Rows of the largest block an update of a model of `shape` runs:
    /// `min(block_rows, most rows)`, with the most rows the batch, the `K` negative samples
    /// of `pid`/`pid-gibbs`/`pid-hebb` or the PCD chains.
    const fn largest_block(&self, shape: Shape) -> usize {
        let extra = match (self.method, shape) {
            (Method::Pid(_), Shape::Ra(d)) => d.patterns,
            (Method::Pcd { chains, .. }, _) => chains,
            _ => 0,
        };
        let max_rows = if self.batch > extra { self.batch } else { extra };
        if self.block_rows < max_rows {
            self.block_rows
        } else {
            max_rows
        }
    }

    /// Every buffer length for a model of `shape` at kernel level `isa`, as a `const fn` so
    /// that firmware can size `static` buffers at compile time. Meaningful for a configuration
    /// that [`StepConfig::validate`] accepts.
    pub const fn lengths(&self, shape: Shape, isa: Isa) -> Lengths {
        let params = shape.param_len();
        let (negatives, extra) = match (self.method, shape) {
            (Method::Pid(NegativePhase::Hebb), Shape::Ra(d)) => (0, d.patterns),
            (Method::Pid(_), Shape::Ra(d)) => (d.patterns * d.visible, d.patterns),
            (Method::Pcd { chains, .. }, _) => (0, chains),
            _ => (0, 0),
        };
        let chain_words = match self.method {
            Method::Pcd { chains, .. } => chain_words_len(shape.visible(), chains),
            _ => 0,
        };
        let max_rows = if self.batch > extra { self.batch } else { extra };
        let lanes = lanes_for(max_rows);
        let b = self.largest_block(shape);
        // The patterns' Gram row, and the operands the blocks pack once ahead.
        let (gram, prepack) = match shape {
            Shape::Ra(d) => (d.patterns, crate::ra::model::prepack_len(isa, d)),
            Shape::Dense(d) => (0, crate::dense::model::prepack_len(isa, d)),
        };
        let (v, h, w) = (shape.visible(), shape.hidden(), shape.row_work());
        let lane_scratch = block_scratch_len(isa, v, h, w, b) + gram;
        Lengths {
            params,
            opt: self.optimizer.state_len(params),
            negatives,
            chain_words,
            lanes,
            lane_grad: if lanes > 1 { params } else { 0 },
            scratch: lane_scratch + prepack,
            lane_scratch,
        }
    }
}

/// The counters of a run: what a checkpoint must keep besides the buffers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainState {
    /// The learning rate of the next update.
    pub lr: f32,
    /// Updates done (Adam's step count).
    pub updates: u64,
    /// Epochs ended.
    pub epochs: u32,
}

/// Most lanes an update is split into ([`lanes_for`]).
pub const MAX_LANES: usize = 8;
/// Fewest rows per lane.
pub const MIN_LANE_ROWS: usize = 32;

/// Lanes for a set of `rows` rows: the largest power of two `≤ rows / MIN_LANE_ROWS`, between
/// 1 and [`MAX_LANES`].
pub const fn lanes_for(rows: usize) -> usize {
    let mut l = 1;
    while l < MAX_LANES && 2 * l * MIN_LANE_ROWS <= rows {
        l *= 2;
    }
    l
}

/// The `lane`-th of `lanes` contiguous, near-equal parts of `0..n`.
pub const fn lane_range(n: usize, lanes: usize, lane: usize) -> Range<usize> {
    (n * lane / lanes)..(n * (lane + 1) / lanes)
}

// ---------------------------------------------------------------------------------------
// Arithmetic cost.

/// Flops of the phase term of one sample row (`accumulate_phase`: fields, `tanh`, the block's
/// gradient products), counting the matrix products only, 2 flops per multiply-add:
///
/// * RA (`K` patterns): `M = S Ξ_vᵀ` (`KV`), `Φ = M Ξ_h/√K` (`KH`), `U = T Ξ_hᵀ` (`KH`),
///   `g_v += c·Uᵀ S` (`KV`), `g_h += c·Mᵀ T` (`KH`): `2K(2V + 3H)`. `W` is never formed.
/// * Dense: `F = S W` (`VH`), `∂W += c·Sᵀ T` (`VH`): `4VH`.
pub const fn phase_flops_per_row(shape: Shape) -> u64 {
    match shape {
        Shape::Ra(d) => mul3(2, d.patterns as u64, 2 * d.visible as u64 + 3 * d.hidden as u64),
        Shape::Dense(d) => mul3(4, d.visible as u64, d.hidden as u64),
    }
}

/// Flops of one block Gibbs step `v → h → v` of one chain (the fields of both layers; the
/// draws are not counted), 2 flops per multiply-add:
///
/// * RA: `M = S Ξ_vᵀ` (`KV`), `Φ = M Ξ_h/√K` (`KH`), `U = H Ξ_hᵀ` (`KH`), `Ψ = U Ξ_v/√K`
///   (`KV`): `4K(V + H)`.
/// * Dense: `F = S W` (`VH`), `G = H Wᵀ` (`VH`): `4VH`.
pub const fn gibbs_flops_per_row(shape: Shape) -> u64 {
    match shape {
        Shape::Ra(d) => mul3(4, d.patterns as u64, d.visible as u64 + d.hidden as u64),
        Shape::Dense(d) => mul3(4, d.visible as u64, d.hidden as u64),
    }
}

/// Flops of the matrix products of one update on `rows` batch rows (what [`Engine::step`]
/// computes), 2 per multiply-add, from [`phase_flops_per_row`] (`P`) and
/// [`gibbs_flops_per_row`] (`G`):
///
/// | method | flops |
/// | --- | --- |
/// | `pid` | `(rows + K)·P` (the batch and the `K` negative samples) |
/// | `pid-gibbs:k` | `(rows + K)·P + K·k·G` (plus `k` Gibbs steps of `K` chains) |
/// | `pid-hebb` | `rows·P + 4K²(V + H)` (eq. 6 by `accumulate_hebb_negative`, no samples) |
/// | `cd:k` | `rows·(2P + k·G)` (one chain per batch row) |
/// | `pcd:k` with `C` chains | `rows·P + C·(k·G + P)` |
///
/// So the MNIST-size `pid` step (`V = 784`, `H = 3000`, `K = 200`, 8000 rows) is 34.7 GFLOP,
/// and CD-10 on a dense model of those sizes `8000·12·4VH` = 0.90 TFLOP.
///
/// Not counted: activations (`tanh`), draws, bias additions, the negative samples' signs, the
/// optimiser, the projection and the summing of lane gradients — all `O(rows·(V + H))` or
/// `O(param_len)`, against the products' `O(rows·K·(V + H))` or `O(rows·V·H)`. A count is
/// an arithmetic lower bound on the work, for turning a time into a rate, not a model of
/// the time.
///
/// `None` where the count is not defined by the step: `exact` (the model average comes from
/// the caller) and `pid` on a dense shape (invalid). Saturates at `u64::MAX`.
pub const fn update_flops(shape: Shape, method: Method, rows: usize) -> Option<u64> {
    let (p, g, rows) = (phase_flops_per_row(shape), gibbs_flops_per_row(shape), rows as u64);
    let flops = match (method, shape) {
        (Method::Pid(neg), Shape::Ra(d)) => {
            let k = d.patterns as u64;
            match neg {
                NegativePhase::Patterns => mul3(rows.saturating_add(k), p, 1),
                NegativePhase::Gibbs { steps } => {
                    mul3(rows.saturating_add(k), p, 1).saturating_add(mul3(k, steps as u64, g))
                }
                NegativePhase::Hebb => {
                    let hebb = mul3(4 * k, k, d.visible as u64 + d.hidden as u64);
                    mul3(rows, p, 1).saturating_add(hebb)
                }
            }
        }
        (Method::Pid(_), Shape::Dense(_)) | (Method::Exact, _) => return None,
        (Method::Cd { k }, _) => mul3(rows, mul3(2, p, 1).saturating_add(mul3(k as u64, g, 1)), 1),
        (Method::Pcd { k, chains }, _) => {
            let per_chain = mul3(k as u64, g, 1).saturating_add(p);
            mul3(rows, p, 1).saturating_add(mul3(chains as u64, per_chain, 1))
        }
    };
    Some(flops)
}

/// `a·b·c`, saturating.
const fn mul3(a: u64, b: u64, c: u64) -> u64 {
    a.saturating_mul(b).saturating_mul(c)
}

/// The model average `⟨v_i tanh φ_α⟩`, `⟨v_i⟩`, `⟨tanh φ_α⟩` under the model, for `exact`.
#[derive(Clone, Copy, Debug)]
pub struct ModelAverage<'a> {
    /// `V·H`, row-major like `W`.
    pub vh: &'a [f32],
    /// `V` (read only when the model has biases).
    pub v: &'a [f32],
    /// `H` (read only when the model has biases).
    pub h: &'a [f32],
}

/// What [`Engine::begin`] prepared for the lanes of one update.
#[derive(Clone, Copy, Debug)]
#[must_use = "an update must be finished with Engine::finish"]
pub struct Update {
    rows: usize,
    weight: f32,
    lanes: usize,
    seeds: [u64; MAX_LANES],
    has_negatives: bool,
    prepacked: bool,
}

impl Update {
    /// Lanes of this update.
    pub fn lanes(&self) -> usize {
        self.lanes
    }

    /// Batch rows of this update.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

/// One lane's buffers.
#[derive(Debug)]
pub struct LaneBuffers<'a> {
    /// The lane's gradient (replaced): [`Engine::param_len`] entries.
    pub grad: &'a mut [f32],
    /// The lane's scratch: [`Engine::lane_scratch_len`] entries.
    pub scratch: &'a mut [f32],
    /// What [`Engine::begin`] packed for all lanes, read only: the second part of
    /// [`Engine::split_scratch`] of the scratch `begin` was given.
    pub shared: &'a [f32],
    /// The lane's persistent chains (PCD: the words of [`Engine::chain_range`]; else empty).
    pub chains: &'a mut [u64],
}

/// All buffers of a run, for [`Engine::step`].
#[derive(Debug)]
pub struct Buffers<'a> {
    /// The parameters (RA: `Ξ`, dense: `W`, `a`, `b`): [`Engine::param_len`].
    pub params: &'a mut [f32],
    /// Optimiser state: [`Engine::opt_len`] (SGD velocity, or Adam `m` then `v`).
    pub opt: &'a mut [f32],
    /// The update's gradient: [`Engine::param_len`].
    pub grad: &'a mut [f32],
    /// A second gradient for lanes after the first: [`Engine::lane_grad_len`] (empty with one
    /// lane).
    pub lane_grad: &'a mut [f32],
    /// The negative samples of `pid` and `pid-gibbs`: [`Engine::negatives_len`].
    pub negatives: &'a mut [f32],
    /// The persistent chains of PCD: [`Engine::chain_words_len`].
    pub chains: &'a mut [u64],
    /// Scratch: [`Engine::scratch_len`].
    pub scratch: &'a mut [f32],
}

/// A model in training, described by its shape, configuration and counters; the buffers stay
/// with the caller.
///
/// # Examples
/// ```
/// use rapid_core::step::{Buffers, Engine, Shape, StepConfig};
/// use rapid_core::ra::model::Dims;
/// use rand_core::SeedableRng;
///
/// const SHAPE: Shape = Shape::Ra(Dims::new(4, 6, 2));
/// let mut engine = Engine::new(SHAPE, StepConfig { batch: 2, ..StepConfig::paper_bars() }).unwrap();
/// let isa = rapid_core::kernels::active();
/// let mut params = [1.0f32; 20];
/// params[3] = -1.0;
/// let (mut grad, mut negs) = ([0.0f32; 20], [0.0f32; 8]);
/// let mut scratch = vec![0.0f32; engine.scratch_len(isa)];
/// assert_eq!((engine.opt_len(), engine.lane_grad_len(), engine.chain_words_len()), (0, 0, 0));
/// let mut bufs = Buffers {
///     params: &mut params, opt: &mut [], grad: &mut grad, lane_grad: &mut [],
///     negatives: &mut negs, chains: &mut [], scratch: &mut scratch,
/// };
/// let mut rng = rand_pcg::Pcg32::seed_from_u64(1);
/// let batch = [1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0, -1.0]; // two images, V = 4
/// engine.step(&mut bufs, &batch, None, None, &mut rng);
/// engine.end_epoch(bufs.params);
/// assert!(params.iter().all(|&x| x == 1.0 || x == -1.0));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Engine {
    shape: Shape,
    cfg: StepConfig,
    state: TrainState,
}

/// The model behind a parameter slice, as a [`BlockModel`].
enum View<'a> {
    Ra(RaModel<&'a [f32]>),
    Dense(DenseRbm<&'a [f32]>),
}

impl BlockModel for View<'_> {
    fn visible(&self) -> usize {
        match self {
            View::Ra(m) => m.visible(),
            View::Dense(m) => m.visible(),
        }
    }
    fn hidden(&self) -> usize {
        match self {
            View::Ra(m) => BlockModel::hidden(m),
            View::Dense(m) => BlockModel::hidden(m),
        }
    }
    fn param_len(&self) -> usize {
        match self {
            View::Ra(m) => m.param_len(),
            View::Dense(m) => m.param_len(),
        }
    }
    fn row_work(&self) -> usize {
        match self {
            View::Ra(m) => m.row_work(),
            View::Dense(m) => m.row_work(),
        }
    }
    fn phase_scale(&self, weight: f32, n: usize) -> f32 {
        match self {
            View::Ra(m) => m.phase_scale(weight, n),
            View::Dense(m) => m.phase_scale(weight, n),
        }
    }
    fn prepack_len(&self, isa: Isa) -> usize {
        match self {
            View::Ra(m) => m.prepack_len(isa),
            View::Dense(m) => m.prepack_len(isa),
        }
    }
    fn prepack(&self, isa: Isa, rows: usize, gibbs: bool, out: &mut [f32]) {
        match self {
            View::Ra(m) => m.prepack(isa, rows, gibbs, out),
            View::Dense(m) => m.prepack(isa, rows, gibbs, out),
        }
    }
    fn hidden_fields_pre(
        &self,
        isa: Isa,
        s: &[f32],
        phi: &mut [f32],
        work: &mut [f32],
        pack: (&mut [f32], &[f32]),
    ) {
        match self {
            View::Ra(m) => m.hidden_fields_pre(isa, s, phi, work, pack),
            View::Dense(m) => m.hidden_fields_pre(isa, s, phi, work, pack),
        }
    }
    fn visible_fields_pre(
        &self,
        isa: Isa,
        h: &[f32],
        psi: &mut [f32],
        work: &mut [f32],
        pack: (&mut [f32], &[f32]),
    ) {
        match self {
            View::Ra(m) => m.visible_fields_pre(isa, h, psi, work, pack),
            View::Dense(m) => m.visible_fields_pre(isa, h, psi, work, pack),
        }
    }
    fn accumulate_block_pre(
        &self,
        isa: Isa,
        s: &[f32],
        t: &[f32],
        work: &mut [f32],
        scale: f32,
        grad: &mut [f32],
        pack: (&mut [f32], &[f32]),
    ) {
        match self {
            View::Ra(m) => m.accumulate_block_pre(isa, s, t, work, scale, grad, pack),
            View::Dense(m) => m.accumulate_block_pre(isa, s, t, work, scale, grad, pack),
        }
    }
}

impl Engine {
    /// Starts a run: learning rate from the optimiser, no update or epoch done.
    ///
    /// # Errors
    /// An invalid configuration for the shape ([`StepConfig::validate`]).
    pub fn new(shape: Shape, cfg: StepConfig) -> Result<Self, ConfigError> {
        let state = TrainState { lr: cfg.optimizer.lr(), updates: 0, epochs: 0 };
        Self::resume(shape, cfg, state)
    }

    /// Continues a run from its counters (e.g. from a checkpoint).
    ///
    /// The learning rate may be 0: a schedule without a floor (`min = 0`) decays it to 0 in
    /// `f32` after enough epochs, and such a run must resume like any other.
    ///
    /// # Errors
    /// An invalid configuration, or a learning rate that is negative or not finite
    /// ([`ConfigError::LearningRate`]).
    pub fn resume(shape: Shape, cfg: StepConfig, state: TrainState) -> Result<Self, ConfigError> {
        cfg.validate(shape)?;
        if !(state.lr.is_finite() && state.lr >= 0.0) {
            return Err(ConfigError::LearningRate(state.lr));
        }
        Ok(Engine { shape, cfg, state })
    }

    /// The model shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The configuration.
    pub fn config(&self) -> &StepConfig {
        &self.cfg
    }

    /// The counters.
    pub fn state(&self) -> TrainState {
        self.state
    }

    /// Every buffer length of this run at kernel level `isa` ([`StepConfig::lengths`]).
    pub const fn lengths(&self, isa: Isa) -> Lengths {
        self.cfg.lengths(self.shape, isa)
    }

    /// Parameter (and gradient) entries.
    pub const fn param_len(&self) -> usize {
        self.shape.param_len()
    }

    /// Optimiser state entries ([`Optimizer::state_len`]).
    pub const fn opt_len(&self) -> usize {
        self.lengths(Isa::Scalar).opt
    }

    /// Negative-sample entries: `K·V` for `pid` and `pid-gibbs`, else 0.
    pub const fn negatives_len(&self) -> usize {
        self.lengths(Isa::Scalar).negatives
    }

    /// Persistent chain words (PCD), else 0.
    pub const fn chain_words_len(&self) -> usize {
        self.lengths(Isa::Scalar).chain_words
    }

    /// Lanes per update (fixed by the configured sizes).
    pub const fn lanes(&self) -> usize {
        self.lengths(Isa::Scalar).lanes
    }

    /// Entries of a second gradient buffer for [`Engine::step`]: the parameter length when
    /// an update has more than one lane, else 0.
    pub const fn lane_grad_len(&self) -> usize {
        self.lengths(Isa::Scalar).lane_grad
    }

    /// Scratch entries at kernel level `isa` for [`Engine::begin`]/[`Engine::finish`] and
    /// [`Engine::step`]: a lane's scratch ([`Engine::lane_scratch_len`]) followed by the
    /// model's fixed operands (RA: `Ξ`, dense: `W`, in the level's packed panels; none at the
    /// scalar level), which `begin` packs once per update for all lanes to read.
    pub const fn scratch_len(&self, isa: Isa) -> usize {
        self.lengths(isa).scratch
    }

    /// Scratch entries of one lane at kernel level `isa`: blocks of `min(block_rows, most
    /// rows)` rows, plus the `K` entries of the `pid-hebb` Gram row.
    pub const fn lane_scratch_len(&self, isa: Isa) -> usize {
        self.lengths(isa).lane_scratch
    }

    /// Splits the scratch of [`Engine::begin`] (at the active level) into a lane's scratch
    /// and the operands `begin` packed for all lanes ([`LaneBuffers::shared`]).
    ///
    /// # Panics
    /// If `scratch` is shorter than [`Engine::lane_scratch_len`].
    pub fn split_scratch<'s>(&self, scratch: &'s mut [f32]) -> (&'s mut [f32], &'s [f32]) {
        let (lane, shared) = scratch.split_at_mut(self.lane_scratch_len(active()));
        (lane, shared)
    }

    /// The chains of lane `lane` of `lanes` (PCD; empty otherwise), as a range of chains: its
    /// words are `range × words_for(V)`.
    pub fn chain_range(&self, lanes: usize, lane: usize) -> Range<usize> {
        match self.cfg.method {
            Method::Pcd { chains, .. } => lane_range(chains, lanes, lane),
            _ => 0..0,
        }
    }

    fn view<'a>(&self, params: &'a [f32]) -> View<'a> {
        match self.shape {
            Shape::Ra(d) => View::Ra(RaModel::new_unchecked(params, d)),
            Shape::Dense(d) => View::Dense(DenseRbm::new(params, d)),
        }
    }

    /// Starts an update on a batch of `rows` rows: packs the model's fixed operands into the
    /// end of `scratch` (at a SIMD level; [`Engine::scratch_len`]), writes the negative samples
    /// that all lanes share (`pid`, `pid-gibbs`; the latter draws from `rng`) and draws one
    /// seed per lane (CD, PCD). `divisor` divides the positive phase instead of `rows` (pass the configured
    /// batch size for a short last batch to weigh each image the same).
    ///
    /// # Panics
    /// If `params`, `negatives` or `scratch` is shorter than its `*_len`, or `rows` is 0 or
    /// more than the configured batch.
    pub fn begin<R: RngCore + ?Sized>(
        &self,
        params: &[f32],
        rows: usize,
        divisor: Option<NonZeroUsize>,
        negatives: &mut [f32],
        scratch: &mut [f32],
        rng: &mut R,
    ) -> Update {
        assert_eq!(params.len(), self.param_len(), "params must have param_len entries");
        assert!(rows > 0, "an update needs at least one row");
        assert!(
            rows <= self.cfg.batch,
            "{rows} rows exceed the configured batch of {} (the scratch is sized for it)",
            self.cfg.batch
        );
        let weight = match divisor {
            Some(d) => rows as f32 / d.get() as f32,
            None => 1.0,
        };
        let lanes = self.lanes();
        let mut seeds = [0u64; MAX_LANES];
        let mut has_negatives = false;
        let isa = active();
        let (scratch, shared) = scratch.split_at_mut(self.lane_scratch_len(isa));
        let shared = self.prepack(isa, params, shared);
        let prepacked = !shared.is_empty();
        match (self.cfg.method, self.shape) {
            (Method::Pid(NegativePhase::Hebb), _) => {}
            (Method::Pid(neg), Shape::Ra(d)) => {
                let model = RaModel::new_unchecked(params, d);
                let block_rows = self.cfg.block_rows;
                let mut ws = Workspace::with_prepacked(scratch, block_rows, isa, shared);
                let negs = &mut negatives[..self.negatives_len()];
                has_negatives = negative_samples(&model, neg, negs, &mut ws, rng);
            }
            (Method::Cd { .. } | Method::Pcd { .. }, _) => {
                for s in seeds.iter_mut().take(lanes) {
                    *s = rng.next_u64();
                }
            }
            (Method::Exact, _) => {}
            (Method::Pid(_), Shape::Dense(_)) => unreachable!("validated: pid runs on RA models"),
        }
        Update { rows, weight, lanes, seeds, has_negatives, prepacked }
    }

    /// Packs the fixed operands of the model `params` into `out` for blocks of the update's
    /// largest size (the visible-field operands too when the method runs Gibbs steps) and
    /// returns them, or returns nothing when the level packs nothing ahead.
    ///
    /// # Panics
    /// If `out` is shorter than the model's prepacked length at `isa`.
    fn prepack<'s>(&self, isa: Isa, params: &[f32], out: &'s mut [f32]) -> &'s [f32] {
        let model = self.view(params);
        let len = model.prepack_len(isa);
        if len == 0 {
            return &[];
        }
        assert!(out.len() >= len, "scratch shorter than scratch_len");
        let gibbs = matches!(
            self.cfg.method,
            Method::Pid(NegativePhase::Gibbs { .. }) | Method::Cd { .. } | Method::Pcd { .. }
        );
        let out = &mut out[..len];
        model.prepack(isa, self.cfg.largest_block(self.shape), gibbs, out);
        out
    }

    /// Lane `lane` of an update: replaces `bufs.grad` by the lane's share of the gradient
    /// (positive phase of its batch rows, negative phase of its negative samples or chains).
    /// `batch` is the whole batch (`rows × V`), `negatives` what [`Engine::begin`] wrote.
    ///
    /// # Panics
    /// On buffer lengths that do not match the `*_len` methods, or `lane ≥ up.lanes()`.
    pub fn lane<R: RngCore + SeedableRng>(
        &self,
        up: &Update,
        lane: usize,
        params: &[f32],
        batch: &[f32],
        negatives: &[f32],
        bufs: LaneBuffers<'_>,
    ) {
        assert!(lane < up.lanes, "lane out of range");
        let v = self.shape.visible();
        assert_eq!(batch.len(), up.rows * v, "batch must have rows·V entries");
        let model = self.view(params);
        let grad = bufs.grad;
        grad.fill(0.0);
        let isa = active();
        let shared = if up.prepacked {
            let len = model.prepack_len(isa);
            assert!(bufs.shared.len() >= len, "shared must be what begin packed");
            &bufs.shared[..len]
        } else {
            &[]
        };
        let mut ws = Workspace::with_prepacked(bufs.scratch, self.cfg.block_rows, isa, shared);
        let (rows, n_lanes, weight) = (up.rows, up.lanes, up.weight);
        let r = lane_range(rows, n_lanes, lane);
        let part = &batch[r.start * v..r.end * v];
        match self.cfg.method {
            Method::Pid(_) => {
                let k = match self.shape {
                    Shape::Ra(d) => d.patterns,
                    Shape::Dense(_) => unreachable!("validated: pid runs on RA models"),
                };
                let w = weight * r.len() as f32 / rows as f32;
                accumulate_phase(&model, part, w, grad, &mut ws);
                if up.has_negatives {
                    let neg = lane_range(k, n_lanes, lane);
                    let w = -(neg.len() as f32) / k as f32;
                    let part = &negatives[neg.start * v..neg.end * v];
                    accumulate_phase(&model, part, w, grad, &mut ws);
                }
            }
            Method::Cd { k } => {
                let share = r.len() as f32 / rows as f32;
                let mut rng = R::seed_from_u64(up.seeds[lane]);
                accumulate_phase(&model, part, weight * share, grad, &mut ws);
                cd_negative_phase(&model, part, k, -share, grad, &mut ws, &mut rng);
            }
            Method::Pcd { k, chains } => {
                let w = weight * r.len() as f32 / rows as f32;
                accumulate_phase(&model, part, w, grad, &mut ws);
                let c = lane_range(chains, n_lanes, lane).len();
                assert_eq!(
                    bufs.chains.len(),
                    chain_words_len(v, c),
                    "the lane's chains must be its chain_range"
                );
                let mut rng = R::seed_from_u64(up.seeds[lane]);
                let w = -(c as f32) / chains as f32;
                pcd_negative_phase(&model, k, bufs.chains, w, grad, &mut ws, &mut rng);
            }
            Method::Exact => {
                let share = r.len() as f32 / rows as f32;
                accumulate_phase(&model, part, weight * share, grad, &mut ws);
            }
        }
    }

    /// Ends an update whose lane gradients the caller summed, in lane order, into `grad`: adds
    /// the terms that need no lanes (`pid-hebb`'s eq. 6; `exact`'s model average, which
    /// `average` must then hold), applies the optimiser at the current learning rate, counts
    /// the update and applies the projection due after it.
    ///
    /// Returns the largest parameter magnitude after the update, `max |θ_j|`, NaN when a
    /// parameter is NaN ([`crate::optim::largest_magnitude`]): taken by the optimiser, or by
    /// the projection when one ran, as they write the parameters, so a caller that guards
    /// against divergence (`largest <= bound`, false for NaN) needs no scan of its own.
    ///
    /// # Panics
    /// On buffer lengths that do not match, or a missing `average` for `exact`.
    pub fn finish(
        &mut self,
        up: Update,
        params: &mut [f32],
        opt: &mut [f32],
        grad: &mut [f32],
        scratch: &mut [f32],
        average: Option<ModelAverage<'_>>,
    ) -> f32 {
        let n = self.param_len();
        assert!(params.len() == n && grad.len() == n, "params and grad must have param_len");
        match (self.cfg.method, self.shape) {
            (Method::Pid(NegativePhase::Hebb), Shape::Ra(d)) if !up.has_negatives => {
                let model = RaModel::new_unchecked(&params[..], d);
                accumulate_hebb_negative(&model, grad, &mut scratch[..d.patterns]);
            }
            (Method::Exact, Shape::Dense(d)) => {
                let avg = average.expect("exact training needs the model average");
                let vh = d.weights_len();
                assert_eq!(avg.vh.len(), vh, "the model average needs V·H entries");
                if d.biases {
                    assert!(avg.v.len() == d.visible && avg.h.len() == d.hidden, "bias averages");
                }
                for (g, &x) in grad[..vh].iter_mut().zip(avg.vh) {
                    *g -= x;
                }
                if d.biases {
                    let (ga, gb) = grad[vh..].split_at_mut(d.visible);
                    for (g, &x) in ga.iter_mut().zip(avg.v) {
                        *g -= x;
                    }
                    for (g, &x) in gb.iter_mut().zip(avg.h) {
                        *g -= x;
                    }
                }
            }
            _ => {}
        }
        // Saturating: 2⁶⁴ updates cannot be reached by training (585 years at 10⁹ updates a
        // second); only a resumed state can start near the limit, and callers that resume
        // untrusted counters check them (the harness bounds them by epochs × batches). At the
        // limit the step stays defined: Adam's correction is 1 to f64 precision long before.
        self.state.updates = self.state.updates.saturating_add(1);
        let t =
            self.cfg.optimizer.correction_step(self.state.updates, u64::from(self.state.epochs));
        let largest = self.cfg.optimizer.update(params, opt, grad, self.state.lr, t);
        self.cfg.projection.after_update(params, self.state.updates).unwrap_or(largest)
    }

    /// One whole update, lanes in order on this thread: [`Engine::begin`], every
    /// [`Engine::lane`] (the first into `bufs.grad`, the others into `bufs.lane_grad` and added),
    /// [`Engine::finish`]. The same bits as the lanes run on threads and summed in order.
    /// Afterwards `bufs.grad` holds the step direction `∇` of this update (before the
    /// optimiser), for callers that inspect it. Returns what [`Engine::finish`] returns, the
    /// largest parameter magnitude after the update.
    ///
    /// # Panics
    /// As [`Engine::begin`], [`Engine::lane`] and [`Engine::finish`].
    pub fn step<R: RngCore + SeedableRng>(
        &mut self,
        bufs: &mut Buffers<'_>,
        batch: &[f32],
        divisor: Option<NonZeroUsize>,
        average: Option<ModelAverage<'_>>,
        rng: &mut R,
    ) -> f32 {
        let v = self.shape.visible();
        assert_eq!(batch.len() % v, 0, "batch rows must have V entries");
        let rows = batch.len() / v;
        let up = self.begin(bufs.params, rows, divisor, bufs.negatives, bufs.scratch, rng);
        let words = crate::spins::words_for(v);
        for lane in 0..up.lanes {
            let c = self.chain_range(up.lanes, lane);
            let chains = &mut bufs.chains[c.start * words..c.end * words];
            let grad = if lane == 0 { &mut *bufs.grad } else { &mut *bufs.lane_grad };
            let (scratch, shared) = self.split_scratch(bufs.scratch);
            let lb = LaneBuffers { grad, scratch, chains, shared };
            self.lane::<R>(&up, lane, bufs.params, batch, bufs.negatives, lb);
            if lane > 0 {
                for (g, &x) in bufs.grad.iter_mut().zip(bufs.lane_grad.iter()) {
                    *g += x;
                }
            }
        }
        self.finish(up, bufs.params, bufs.opt, bufs.grad, bufs.scratch, average)
    }

    /// Ends an epoch: the end-of-epoch projection, then the learning-rate decay. Returns the
    /// largest parameter magnitude after the projection when one ran (as [`Engine::finish`]
    /// does), `None` when the parameters were left alone.
    pub fn end_epoch(&mut self, params: &mut [f32]) -> Option<f32> {
        let largest = self.cfg.projection.at_epoch_end(params);
        // Saturating: at 2³² − 1 epochs the schedule has long reached its floor (or stays
        // put), and a resumed run's epoch is checked against its settings by the caller.
        self.state.epochs = self.state.epochs.saturating_add(1);
        self.state.lr = self.cfg.schedule.next(self.state.lr, self.state.epochs);
        largest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use crate::blocks::init_chains;
    use crate::optim::Adam;
    use crate::ra::pid::accumulate_phase_per_sample;
    use crate::spins::words_for;
    use crate::test_util::{assert_counts_match, pm1, state_index, two_step_kernel, uniform};
    use rand_pcg::Pcg64;
    use std::vec;
    use std::vec::Vec;

    const SGD_MOMENTUM: Optimizer =
        Optimizer::Sgd(Sgd { lr: 0.05, momentum: 0.9, weight_decay: 0.001 });
    const ADAM: Optimizer =
        Optimizer::Adam(Adam { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, by_epoch: false });
    const PLAIN_SGD: Optimizer = Optimizer::Sgd(Sgd { lr: 0.5, momentum: 0.0, weight_decay: 0.0 });

    fn config(
        method: Method,
        optimizer: Optimizer,
        projection: Projection,
        batch: usize,
    ) -> StepConfig {
        StepConfig {
            method,
            optimizer,
            projection,
            schedule: LrSchedule { decay: 0.9, min: 1e-4, start_epoch: 0 },
            batch,
            block_rows: 48,
        }
    }

    /// Everything a run keeps between updates.
    #[derive(Clone)]
    struct Run {
        engine: Engine,
        params: Vec<f32>,
        opt: Vec<f32>,
        negatives: Vec<f32>,
        chains: Vec<u64>,
    }

    impl Run {
        fn new(engine: Engine, params: Vec<f32>, seed: u64) -> Self {
            let mut chains = vec![0u64; engine.chain_words_len()];
            init_chains(&mut chains, engine.shape().visible(), &mut Pcg64::seed_from_u64(seed));
            let (opt, negatives) = (vec![0.0; engine.opt_len()], vec![0.0; engine.negatives_len()]);
            Run { engine, params, opt, negatives, chains }
        }

        /// One update by [`Engine::step`].
        fn step(
            &mut self,
            batch: &[f32],
            div: Option<NonZeroUsize>,
            avg: Option<ModelAverage<'_>>,
            rng: &mut Pcg64,
        ) {
            let e = &mut self.engine;
            let mut grad = vec![0.0; e.param_len()];
            let mut lane_grad = vec![0.0; e.lane_grad_len()];
            let mut scratch = vec![0.0; e.scratch_len(active())];
            let mut bufs = Buffers {
                params: &mut self.params,
                opt: &mut self.opt,
                grad: &mut grad,
                lane_grad: &mut lane_grad,
                negatives: &mut self.negatives,
                chains: &mut self.chains,
                scratch: &mut scratch,
            };
            let largest = e.step(&mut bufs, batch, div, avg, rng);
            assert_largest(largest, &self.params);
        }

        /// One update as a threaded caller runs it: `begin`, every lane into its own gradient
        /// and scratch (garbage-filled, run last lane first), the sum in lane order, `finish`.
        /// Returns the update's gradient as `finish` left it.
        fn lanes(
            &mut self,
            batch: &[f32],
            div: Option<NonZeroUsize>,
            avg: Option<ModelAverage<'_>>,
            rng: &mut Pcg64,
        ) -> Vec<f32> {
            let e = &mut self.engine;
            let (n, v) = (e.param_len(), e.shape().visible());
            let len = e.scratch_len(active());
            let lane_len = e.lane_scratch_len(active());
            let mut scratch = vec![f32::NAN; len];
            let rows = batch.len() / v;
            let up = e.begin(&self.params, rows, div, &mut self.negatives, &mut scratch, rng);
            assert_eq!((up.lanes(), up.rows()), (e.lanes(), rows));
            let mut parts: Vec<&mut [u64]> = Vec::new();
            let mut rest = &mut self.chains[..];
            for lane in 0..up.lanes() {
                let c = e.chain_range(up.lanes(), lane);
                let (mine, tail) = rest.split_at_mut(c.len() * words_for(v));
                parts.push(mine);
                rest = tail;
            }
            assert!(rest.is_empty());
            let mut grads = vec![vec![f32::NAN; n]; up.lanes()];
            let shared = e.split_scratch(&mut scratch).1.to_vec();
            for (lane, chains) in parts.into_iter().enumerate().rev() {
                let mut s = vec![f32::NAN; lane_len];
                let grad = &mut grads[lane];
                let bufs = LaneBuffers { grad, scratch: &mut s, chains, shared: &shared };
                e.lane::<Pcg64>(&up, lane, &self.params, batch, &self.negatives, bufs);
            }
            let mut total = grads[0].clone();
            for g in &grads[1..] {
                for (t, &x) in total.iter_mut().zip(g) {
                    *t += x;
                }
            }
            let largest =
                e.finish(up, &mut self.params, &mut self.opt, &mut total, &mut scratch, avg);
            assert_largest(largest, &self.params);
            total
        }
    }

    /// What `finish` returned is the largest magnitude of the parameters it left, from the
    /// definition: `max |θ_j|`, or NaN when one is NaN.
    fn assert_largest(got: f32, params: &[f32]) {
        let want = if params.iter().any(|x| x.is_nan()) {
            f32::NAN
        } else {
            params.iter().fold(0.0f32, |m, x| m.max(x.abs()))
        };
        assert!(got == want || (got.is_nan() && want.is_nan()), "finish gave {got}, want {want}");
    }

    /// The largest magnitude `finish` returns follows a run into overflow and NaN, through
    /// every projection: finite, then `+∞` once a parameter overflows, NaN after `∞ − ∞`;
    /// a clamp or sign projection brings it back within its bound.
    #[test]
    fn finish_returns_the_largest_magnitude_as_a_run_diverges() {
        let shape = Shape::Ra(Dims::new(6, 9, 3));
        let mut rng = Pcg64::seed_from_u64(67);
        let batch = pm1(&mut rng, 4 * 6);
        let huge = Optimizer::Sgd(Sgd { lr: 1e37, momentum: 0.0, weight_decay: 0.0 });
        for projection in [
            Projection::None,
            Projection::Clamp { bound: 2.0 },
            Projection::Sign { every: 2 },
            Projection::Sign { every: 0 },
        ] {
            for optimizer in [huge, ADAM, SGD_MOMENTUM] {
                let method = Method::Pid(NegativePhase::Patterns);
                let engine = Engine::new(shape, config(method, optimizer, projection, 4)).unwrap();
                let params: Vec<f32> = (0..shape.param_len()).map(|_| uniform(&mut rng)).collect();
                let mut run = Run::new(engine, params, 1);
                let mut seen_nan = false;
                for u in 0..6 {
                    // `Run::step` checks the returned value against the parameters.
                    run.step(&batch, None, None, &mut rng);
                    seen_nan |= run.params.iter().any(|x| x.is_nan());
                    if u == 2 {
                        let projected = run.engine.end_epoch(&mut run.params);
                        if let Some(largest) = projected {
                            assert_largest(largest, &run.params);
                        }
                        let sign_at_end = projection == Projection::Sign { every: 0 };
                        assert_eq!(projected.is_some(), sign_at_end, "{projection:?}");
                    }
                }
                if optimizer == huge && projection == Projection::None {
                    assert!(seen_nan, "lr 1e37 without a projection reaches NaN");
                }
            }
        }
    }

    fn bits(x: &[f32]) -> Vec<u32> {
        x.iter().map(|v| v.to_bits()).collect()
    }

    /// `Engine::step` gives the same bits as `begin`, lanes into their own gradients (in any
    /// order, each with its own scratch), the sum in lane order and `finish`, for every
    /// method, with Adam and SGD with momentum, over several updates, a short last batch with
    /// a divisor, and an epoch end.
    #[test]
    #[cfg_attr(miri, ignore = "hundreds of rows through GEMMs: too slow under Miri")]
    fn step_equals_lanes_summed_in_order() {
        let mut rng = Pcg64::seed_from_u64(61);
        let ra = Shape::Ra(Dims::new(20, 30, 5));
        let dense = Shape::Dense(DenseDims::new(24, 16, true));
        let cases = [
            (ra, Method::Pid(NegativePhase::Patterns), Projection::Clamp { bound: 1.5 }),
            (ra, Method::Pid(NegativePhase::Gibbs { steps: 1 }), Projection::None),
            (ra, Method::Pid(NegativePhase::Hebb), Projection::Sign { every: 0 }),
            (dense, Method::Cd { k: 2 }, Projection::None),
            (dense, Method::Pcd { k: 2, chains: 100 }, Projection::None),
            (dense, Method::Exact, Projection::None),
        ];
        let (vh, av, ah): (Vec<f32>, Vec<f32>, Vec<f32>) = (
            (0..24 * 16).map(|_| 0.1 * uniform(&mut rng)).collect(),
            (0..24).map(|_| 0.1 * uniform(&mut rng)).collect(),
            (0..16).map(|_| 0.1 * uniform(&mut rng)).collect(),
        );
        for (shape, method, projection) in cases {
            for optimizer in [ADAM, SGD_MOMENTUM] {
                let what = std::format!("{method:?} {optimizer:?}");
                let engine =
                    Engine::new(shape, config(method, optimizer, projection, 200)).unwrap();
                assert_eq!(engine.lanes(), 4, "{what}");
                assert_eq!(engine.lane_grad_len(), engine.param_len());
                let params: Vec<f32> = (0..engine.param_len()).map(|_| uniform(&mut rng)).collect();
                let mut a = Run::new(engine, params.clone(), 5);
                let mut b = a.clone();
                let avg = matches!(method, Method::Exact).then_some(ModelAverage {
                    vh: &vh,
                    v: &av,
                    h: &ah,
                });
                let v = shape.visible();
                let div = NonZeroUsize::new(200);
                for (u, rows) in [200usize, 200, 130, 200].into_iter().enumerate() {
                    let batch = pm1(&mut rng, rows * v);
                    let seed = rng.next_u64();
                    let d = if rows < 200 { div } else { None };
                    a.step(&batch, d, avg, &mut Pcg64::seed_from_u64(seed));
                    b.lanes(&batch, d, avg, &mut Pcg64::seed_from_u64(seed));
                    assert_eq!(bits(&a.params), bits(&b.params), "{what}: update {u}");
                    assert_eq!(bits(&a.opt), bits(&b.opt), "{what}: update {u}");
                    assert_eq!(bits(&a.negatives), bits(&b.negatives), "{what}: update {u}");
                    assert_eq!(a.chains, b.chains, "{what}: update {u}");
                    if u == 1 {
                        a.engine.end_epoch(&mut a.params);
                        b.engine.end_epoch(&mut b.params);
                    }
                }
                assert_eq!(a.engine.state(), b.engine.state());
                assert_eq!(a.engine.state().updates, 4);
                assert!(a.params.iter().all(|x| x.is_finite()), "{what}");
                assert_ne!(bits(&a.params), bits(&params), "{what}: the parameters must move");
            }
        }
    }

    /// The gradient `finish` hands to the optimiser is the method's definition:
    /// `pid` = phase(batch) − phase(sign ξ_v), `pid-hebb` = phase(batch) − eq. 6,
    /// `exact` = phase(batch) − the given model average; and plain SGD moves the
    /// parameters by `lr·∇`.
    #[test]
    fn finish_gradient_is_the_method_definition() {
        let mut rng = Pcg64::seed_from_u64(62);
        // RA: pid and pid-hebb.
        let d = Dims::new(6, 5, 3);
        let xi: Vec<f32> = (0..d.xi_len()).map(|_| uniform(&mut rng)).collect();
        let batch = pm1(&mut rng, 4 * d.visible);
        let model = RaModel::new_unchecked(&xi[..], d);
        let mut pos = vec![0.0; d.xi_len()];
        let mut small = vec![0.0; 2 * d.patterns + d.hidden];
        accumulate_phase_per_sample(&model, &batch, 1.0, &mut pos, &mut small);
        let signs: Vec<f32> = (0..d.patterns)
            .flat_map(|k| model.xi_v(k).iter().map(|&x| crate::spins::sign_f32(x)))
            .collect();
        let mut pid = pos.clone();
        accumulate_phase_per_sample(&model, &signs, -1.0, &mut pid, &mut small);
        let mut hebb = pos.clone();
        crate::ra::pid::accumulate_hebb_negative(&model, &mut hebb, &mut small);
        for (neg, want) in [(NegativePhase::Patterns, &pid), (NegativePhase::Hebb, &hebb)] {
            let cfg = config(Method::Pid(neg), PLAIN_SGD, Projection::None, 4);
            let mut run = Run::new(Engine::new(Shape::Ra(d), cfg).unwrap(), xi.clone(), 0);
            let grad = run.lanes(&batch, None, None, &mut rng);
            for j in 0..d.xi_len() {
                assert!(
                    (grad[j] - want[j]).abs() < 1e-5,
                    "{neg:?} [{j}]: {} vs {}",
                    grad[j],
                    want[j]
                );
                let moved = run.params[j] - xi[j];
                assert!((moved - 0.5 * want[j]).abs() < 1e-5, "{neg:?} [{j}] moved {moved}");
            }
        }
        // Dense with biases: exact.
        let dd = DenseDims::new(3, 2, true);
        let p: Vec<f32> = (0..dd.param_len()).map(|_| uniform(&mut rng)).collect();
        let mut batch = pm1(&mut rng, 5 * 3);
        batch[4] = 0.0;
        let (vh, av, ah) =
            ([0.1f32, -0.2, 0.3, 0.05, -0.4, 0.25], [0.3f32, -0.1, 0.2], [-0.35f32, 0.15]);
        let avg = ModelAverage { vh: &vh, v: &av, h: &ah };
        // The positive phase in f64 from its definition: ⟨v tanh φ⟩, ⟨v⟩, ⟨tanh φ⟩.
        let mut want = vec![0.0f64; dd.param_len()];
        for v in batch.chunks_exact(3) {
            for a in 0..2 {
                let phi: f64 = (0..3).map(|i| f64::from(p[i * 2 + a] * v[i])).sum::<f64>()
                    + f64::from(p[9 + a]);
                let t = phi.tanh() / 5.0;
                for i in 0..3 {
                    want[i * 2 + a] += f64::from(v[i]) * t;
                }
                want[9 + a] += t;
            }
            for i in 0..3 {
                want[6 + i] += f64::from(v[i]) / 5.0;
            }
        }
        let avg_flat: Vec<f32> = vh.iter().chain(&av).chain(&ah).copied().collect();
        for (w, &x) in want.iter_mut().zip(&avg_flat) {
            *w -= f64::from(x);
        }
        let cfg = config(Method::Exact, PLAIN_SGD, Projection::None, 5);
        let mut run = Run::new(Engine::new(Shape::Dense(dd), cfg).unwrap(), p.clone(), 0);
        let grad = run.lanes(&batch, None, Some(avg), &mut rng);
        for j in 0..dd.param_len() {
            assert!(
                (f64::from(grad[j]) - want[j]).abs() < 1e-5,
                "exact [{j}]: {} vs {}",
                grad[j],
                want[j]
            );
            let moved = f64::from(run.params[j] - p[j]);
            assert!((moved - 0.5 * want[j]).abs() < 1e-5, "exact [{j}] moved {moved}");
        }
    }

    /// A divisor larger than the row count scales only the positive phase: one image divided
    /// by 3 equals that image plus two neutral (all-zero) rows, which add nothing.
    #[test]
    fn divisor_scales_only_the_positive_phase() {
        let mut rng = Pcg64::seed_from_u64(63);
        let d = Dims::new(5, 4, 3);
        let xi: Vec<f32> = (0..d.xi_len()).map(|_| uniform(&mut rng)).collect();
        let one = pm1(&mut rng, d.visible);
        let mut padded = one.clone();
        padded.extend(core::iter::repeat_n(0.0, 2 * d.visible));
        let cfg = config(Method::Pid(NegativePhase::Patterns), PLAIN_SGD, Projection::None, 3);
        let engine = Engine::new(Shape::Ra(d), cfg).unwrap();
        let mut a = Run::new(engine, xi.clone(), 0);
        let mut b = a.clone();
        let ga = a.lanes(&one, NonZeroUsize::new(3), None, &mut rng);
        let gb = b.lanes(&padded, None, None, &mut rng);
        let mut c = Run::new(engine, xi.clone(), 0);
        let gc = c.lanes(&one, None, None, &mut rng);
        let mut differs = false;
        for j in 0..d.xi_len() {
            assert!((ga[j] - gb[j]).abs() < 1e-6, "[{j}]: {} vs {}", ga[j], gb[j]);
            differs |= (ga[j] - gc[j]).abs() > 1e-3;
        }
        assert!(differs, "the divisor must change the gradient");
    }

    /// `pid-gibbs:1` starts its chains at the stored `ξᵏ_v` (real-valued, not its sign) and
    /// makes one exact Gibbs step: over 20k updates on V = H = K = 2, the negatives of
    /// `Engine::begin` follow `P(v'|ξᵏ_v) = Σ_h P(h|ξᵏ_v) P(v'|h)` within 5 standard
    /// errors, and a start at `sign(ξᵏ_v)` would be far outside.
    #[test]
    #[cfg_attr(miri, ignore = "statistical: too slow under Miri")]
    fn pid_gibbs_negatives_follow_the_two_step_kernel_from_the_stored_patterns() {
        let d = Dims::new(2, 2, 2);
        // ξ¹ = (0.3, −1.6 | 1.5, −1.0), ξ² = (1.4, 0.25 | 0.9, 1.3).
        let xi = [0.3f32, -1.6, 1.5, -1.0, 1.4, 0.25, 0.9, 1.3];
        let cfg =
            config(Method::Pid(NegativePhase::Gibbs { steps: 1 }), PLAIN_SGD, Projection::None, 1);
        let engine = Engine::new(Shape::Ra(d), cfg).unwrap();
        assert_eq!(engine.negatives_len(), 4);
        let mut negs = [0.0f32; 4];
        let mut scratch = vec![0.0; engine.scratch_len(active())];
        let mut rng = Pcg64::seed_from_u64(64);
        let n = 20_000;
        let mut counts = [[0usize; 4]; 2];
        for _ in 0..n {
            let _up = engine.begin(&xi, 1, None, &mut negs, &mut scratch, &mut rng);
            for k in 0..2 {
                counts[k][state_index(&negs[2 * k..2 * k + 2])] += 1;
            }
        }
        let sk = 2.0f64.sqrt();
        let w = |i: usize, a: usize| {
            (0..2).map(|m| f64::from(xi[m * 4 + i]) * f64::from(xi[m * 4 + 2 + a])).sum::<f64>()
                / sk
        };
        for k in 0..2 {
            let start = [f64::from(xi[4 * k]), f64::from(xi[4 * k + 1])];
            let want = two_step_kernel(w, &[], &[], &start, 2);
            let signed =
                two_step_kernel(w, &[], &[], &start.map(|x| if x < 0.0 { -1.0 } else { 1.0 }), 2);
            let gap = want.iter().zip(&signed).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(gap > 20.0 * (0.25 / n as f64).sqrt(), "the test must tell the starts apart");
            assert_counts_match(&counts[k], n, &want, &std::format!("chain {k}"));
        }
    }

    /// `StepConfig::validate` (and so `Engine::new`) names each problem; `RaModel::new`
    /// refuses K = 0.
    #[test]
    fn validation_names_each_problem() {
        let ra = Shape::Ra(Dims::new(4, 3, 2));
        let dense = Shape::Dense(DenseDims::new(4, 3, true));
        let pid = Method::Pid(NegativePhase::Patterns);
        let ok = config(pid, PLAIN_SGD, Projection::None, 10);
        assert_eq!(ok.validate(ra), Ok(()));
        assert_eq!(StepConfig::paper_bars().validate(ra), Ok(()));
        assert_eq!(config(Method::Cd { k: 1 }, ADAM, Projection::None, 10).validate(dense), Ok(()));
        assert_eq!(config(Method::Exact, ADAM, Projection::None, 10).validate(dense), Ok(()));
        assert_eq!(
            config(Method::Cd { k: 1 }, ADAM, Projection::Sign { every: 0 }, 10).validate(ra),
            Ok(())
        );
        let cases: [(StepConfig, Shape, ConfigError); 12] = [
            (ok, dense, ConfigError::PidNeedsRa),
            (
                StepConfig { method: Method::Pid(NegativePhase::Hebb), ..ok },
                dense,
                ConfigError::PidNeedsRa,
            ),
            (StepConfig { method: Method::Exact, ..ok }, ra, ConfigError::ExactNeedsDense),
            (
                StepConfig {
                    method: Method::Cd { k: 1 },
                    projection: Projection::Sign { every: 0 },
                    ..ok
                },
                dense,
                ConfigError::ProjectionOnDense,
            ),
            (
                StepConfig {
                    method: Method::Exact,
                    projection: Projection::Clamp { bound: 1.0 },
                    ..ok
                },
                dense,
                ConfigError::ProjectionOnDense,
            ),
            (StepConfig { batch: 0, ..ok }, ra, ConfigError::Batch),
            (StepConfig { block_rows: 0, ..ok }, ra, ConfigError::BlockRows),
            (
                StepConfig { method: Method::Pid(NegativePhase::Gibbs { steps: 0 }), ..ok },
                ra,
                ConfigError::GibbsSteps,
            ),
            (
                config(
                    pid,
                    Optimizer::Sgd(Sgd { lr: -0.1, momentum: 0.0, weight_decay: 0.0 }),
                    Projection::None,
                    1,
                ),
                ra,
                ConfigError::LearningRate(-0.1),
            ),
            (
                config(
                    pid,
                    Optimizer::Adam(Adam { lr: 0.0, ..Adam::default() }),
                    Projection::None,
                    1,
                ),
                ra,
                ConfigError::LearningRate(0.0),
            ),
            (
                StepConfig { projection: Projection::Clamp { bound: 0.0 }, ..ok },
                ra,
                ConfigError::ClampBound(0.0),
            ),
            (ok, Shape::Ra(Dims::new(4, 3, 0)), ConfigError::NoPatterns),
        ];
        for (cfg, shape, err) in cases {
            assert_eq!(cfg.validate(shape), Err(err), "{cfg:?} on {shape:?}");
            assert_eq!(Engine::new(shape, cfg).map(|_| ()), Err(err));
        }
        let bad_lr = TrainState { lr: f32::NAN, updates: 0, epochs: 0 };
        assert!(
            matches!(Engine::resume(ra, ok, bad_lr), Err(ConfigError::LearningRate(x)) if x.is_nan())
        );
        let state = TrainState { lr: 0.01, updates: 7, epochs: 2 };
        assert_eq!(Engine::resume(ra, ok, state).unwrap().state(), state);
        // A rate the schedule decayed to 0 (no floor, and a decay of at most 1/2: a larger one
        // stops at the smallest subnormal) resumes; a negative one does not.
        let schedule = LrSchedule { decay: 0.5, min: 0.0, start_epoch: 0 };
        let floorless = StepConfig { schedule, ..ok };
        let mut e = Engine::new(ra, floorless).unwrap();
        let mut xi = vec![1.0f32; ra.param_len()];
        while e.state().lr > 0.0 {
            e.end_epoch(&mut xi);
        }
        let decayed = e.state();
        assert_eq!(Engine::resume(ra, floorless, decayed).unwrap().state(), decayed);
        let negative = TrainState { lr: -0.01, ..state };
        assert_eq!(
            Engine::resume(ra, ok, negative).map(|_| ()),
            Err(ConfigError::LearningRate(-0.01))
        );
        assert_eq!(
            RaModel::new(&[][..], Dims::new(4, 3, 0)).map(|_| ()),
            Err(ConfigError::NoPatterns)
        );
        assert_eq!(
            RaModel::new(&[0.0; 7][..], Dims::new(4, 3, 1)).map(|m| m.dims()),
            Ok(Dims::new(4, 3, 1))
        );
    }

    /// Lanes: powers of two from the configured sizes, contiguous near-equal ranges.
    #[test]
    fn update_flops_follow_the_products() {
        let mnist = Shape::Ra(Dims::new(784, 3000, 200));
        let pid = Method::Pid(NegativePhase::Patterns);
        // docs/speed.md: 2K(2V + 3H) per sample over 8000 + 200 samples = 34.7 GFLOP.
        let f = update_flops(mnist, pid, 8000).unwrap();
        assert_eq!(f, 8200 * 2 * 200 * (2 * 784 + 3 * 3000));
        assert_eq!((f as f64 / 1e9 * 10.0).round(), 347.0);
        // CD-10 on the dense model of those sizes: 12 · 4VH per sample over 8000 = 0.90 TFLOP.
        let dense = Shape::Dense(DenseDims::new(784, 3000, false));
        let f = update_flops(dense, Method::Cd { k: 10 }, 8000).unwrap();
        assert_eq!(f, 8000 * 12 * 4 * 784 * 3000);
        assert_eq!((f as f64 / 1e12 * 100.0).round(), 90.0);
        // Each term on a small shape, by hand.
        let (v, h, k) = (5u64, 7u64, 3u64);
        let ra = Shape::Ra(Dims::new(5, 7, 3));
        let p = 2 * k * (2 * v + 3 * h);
        let g = 4 * k * (v + h);
        assert_eq!(update_flops(ra, pid, 4), Some((4 + k) * p));
        let gibbs = Method::Pid(NegativePhase::Gibbs { steps: 2 });
        assert_eq!(update_flops(ra, gibbs, 4), Some((4 + k) * p + k * 2 * g));
        let hebb = Method::Pid(NegativePhase::Hebb);
        assert_eq!(update_flops(ra, hebb, 4), Some(4 * p + 4 * k * k * (v + h)));
        assert_eq!(update_flops(ra, Method::Cd { k: 3 }, 4), Some(4 * (2 * p + 3 * g)));
        let small = Shape::Dense(DenseDims::new(5, 7, true));
        let pcd = Method::Pcd { k: 2, chains: 6 };
        assert_eq!(update_flops(small, pcd, 4), Some(4 * 4 * v * h + 6 * (2 + 1) * 4 * v * h));
        assert_eq!(update_flops(small, Method::Exact, 4), None);
        assert_eq!(update_flops(small, pid, 4), None);
        let huge = Shape::Dense(DenseDims::new(usize::MAX, usize::MAX, false));
        assert_eq!(update_flops(huge, Method::Cd { k: 1 }, 1), Some(u64::MAX));
    }

    #[test]
    fn lanes_and_lane_ranges() {
        assert_eq!(
            [1, 63, 64, 127, 128, 200, 256, 10_000].map(lanes_for),
            [1, 1, 2, 2, 4, 4, 8, 8]
        );
        for (n, lanes) in [(200, 4), (5, 4), (130, 4), (0, 2), (7, 8)] {
            let mut next = 0;
            for lane in 0..lanes {
                let r = lane_range(n, lanes, lane);
                assert_eq!(r.start, next);
                assert!(r.len() == n / lanes || r.len() == n / lanes + 1);
                next = r.end;
            }
            assert_eq!(next, n);
        }
    }

    /// A model average shorter than the parameters is a caller bug that `finish` catches.
    #[test]
    #[should_panic(expected = "the model average needs V·H entries")]
    fn exact_finish_rejects_a_short_model_average() {
        let dd = DenseDims::new(3, 2, true);
        let cfg = config(Method::Exact, PLAIN_SGD, Projection::None, 2);
        let mut run = Run::new(Engine::new(Shape::Dense(dd), cfg).unwrap(), vec![0.1; 11], 0);
        let avg = ModelAverage { vh: &[0.5; 4], v: &[0.5; 1], h: &[] };
        let batch = [1.0f32, -1.0, 1.0, -1.0, -1.0, 1.0];
        run.lanes(&batch, None, Some(avg), &mut Pcg64::seed_from_u64(1));
    }

    /// PCD without chains has no negative phase at all: the configuration is refused.
    #[test]
    fn pcd_without_chains_is_refused() {
        let dense = Shape::Dense(DenseDims::new(4, 3, true));
        let cfg = config(Method::Pcd { k: 1, chains: 0 }, ADAM, Projection::None, 10);
        assert_eq!(cfg.validate(dense), Err(ConfigError::NoChains));
    }

    /// Counters resumed at their limits stay there: an update and an epoch end neither wrap
    /// nor panic (debug builds check overflow), and Adam's step stays finite.
    #[test]
    fn counters_at_their_limits_saturate() {
        let shape = Shape::Dense(DenseDims::new(3, 2, true));
        let adam_epoch =
            Optimizer::Adam(Adam { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, by_epoch: true });
        for opt in [ADAM, adam_epoch] {
            let cfg = config(Method::Cd { k: 1 }, opt, Projection::None, 2);
            let state = TrainState { lr: 0.01, updates: u64::MAX, epochs: u32::MAX };
            let engine = Engine::resume(shape, cfg, state).unwrap();
            let mut run = Run::new(engine, vec![0.1; 11], 0);
            run.step(&[1.0, -1.0, 1.0, -1.0, -1.0, 1.0], None, None, &mut Pcg64::seed_from_u64(2));
            run.engine.end_epoch(&mut run.params);
            assert_eq!(run.engine.state(), TrainState { lr: 0.01 * 0.9, ..state });
            assert!(run.params.iter().all(|x| x.is_finite()), "{:?}", run.params);
        }
        assert_eq!(adam_epoch.correction_step(1, u64::MAX), u64::MAX);
    }
}
