//! The [`Trainer`]: epochs (shuffle, batches, updates, the end-of-epoch step), each update's
//! lanes on the rayon pool through the core's `Engine::begin`/`lane`/`finish`, and the state
//! that a checkpoint saves and [`Trainer::restore`] reads back.
//!
//! # Fixed costs of an update
//! Small problems (Bars 4×4 `pid`: `V = 16`, `H = 1000`, `K = 8`, batch 3, 8 128 parameters,
//! about 0.5 MFLOP an update) spend most of an update outside the matrix products unless
//! every per-update pass over the parameters is one that must be there. So an update makes
//! no allocation of its own, sums lane gradients into the first lane's buffer (no copy with
//! one lane), runs the lanes on the calling thread when the update's products are below
//! [`PARALLEL_MIN_FLOPS`] (a rayon hand-off costs microseconds), and checks divergence on
//! the largest magnitude that the optimiser (or the projection) returns as it writes the
//! parameters, instead of scanning them again: the scan was about a quarter of a Bars `pid`
//! epoch, because its early exit kept it from vectorising. Measured on an AMD EPYC Zen 4
//! (avx512, `rapid bench paper --setups bars4 --methods pid`, fastest of 10 alternating runs
//! each): 83 µs an epoch before, 65 µs after. What is left is the kernels' (`tanh`, the
//! skinny GEMMs of the fields and the gradient, the `H`-long dot products of `U = T Ξ_hᵀ`)
//! and the optimiser's pass, all on one thread: a batch of 3 rows and 8 patterns is one lane.

use std::num::NonZeroUsize;
use std::time::Instant;

use rand_core::RngCore;
use rapid_core::blocks::init_chains;
use rapid_core::int::{IntBuffers, IntConfig, IntEngine, IntState, Tables};
use rapid_core::kernels;
use rapid_core::optim::largest_magnitude;
use rapid_core::spins::words_for;
use rapid_core::step::{update_flops, Engine, LaneBuffers, ModelAverage, Shape, TrainState};
use rayon::prelude::*;

use super::config::{Arith, Method, Optimizer, PartialBatch, TrainConfig, TrainError, MAX_PARAM};
use crate::data::Dataset;
use crate::exact::{self, FastAverage};
use crate::limits;
use crate::model::Model;
use crate::seed::{stream, Rng, Stream};

/// A copy of the optimiser state.
#[derive(Clone, Debug, PartialEq)]
pub enum OptSnapshot {
    /// SGD momentum buffer `Δ`.
    Sgd {
        /// `Δ`, one entry per parameter.
        velocity: Vec<f32>,
    },
    /// Adam moments and step count.
    Adam {
        /// First moments.
        m: Vec<f32>,
        /// Second moments.
        v: Vec<f32>,
        /// Updates done.
        t: u64,
    },
}

/// Everything a [`Trainer`] needs, besides its configuration and data, to continue a run
/// bit-identically: training randomness is re-derived from `(seed, epoch)`.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainerState {
    /// The model.
    pub model: Model,
    /// The optimiser state.
    pub opt: OptSnapshot,
    /// The packed chains (PCD; CD scratch, whose content does not matter, otherwise empty).
    pub chains: Vec<u64>,
    /// Epochs done.
    pub epoch: u32,
    /// Updates done.
    pub updates: u64,
    /// The learning rate for the next epoch.
    pub lr: f32,
}

pub use rapid_core::step::{lane_range, lanes_for, MAX_LANES, MIN_LANE_ROWS};

/// Updates whose matrix products ([`update_flops`]) are fewer flops than this run their lanes
/// one after another on the calling thread instead of on the rayon pool. The lanes and their
/// summing order are the same either way, so the bits are too. Measured with `rapid train
/// --dataset bas:8 --patterns 4 --batch 128` (4 lanes) on an AMD EPYC Zen 4 with 2 threads,
/// fastest of 4 alternating runs: at `--hidden 16` (0.19 MFLOP an update) 0.042 ms an epoch
/// on the calling thread against 0.098 ms on the pool, at `--hidden 100` (0.45 MFLOP) 0.106
/// against 0.185 ms; at `--hidden 200` (0.77 MFLOP) the two are within the noise.
pub const PARALLEL_MIN_FLOPS: u64 = 1 << 20;

/// One lane of an update: its share of the gradient and its own scratch.
struct Lane {
    grad: Vec<f32>,
    scratch: Vec<f32>,
}

/// The buffers of an integer run ([`Arith::Int`]): the core's [`IntEngine`], `θ` and the
/// packed signs, scratch, tables, and the training images packed once.
struct IntRun {
    engine: IntEngine,
    theta: Vec<i8>,
    signs: Vec<u64>,
    negatives: Vec<u64>,
    words: Vec<u64>,
    scratch: Vec<i32>,
    t: Vec<i16>,
    wide: Vec<i64>,
    tanh: Vec<i16>,
    thresholds: Vec<u32>,
    /// The training images, `words_for(V)` words each.
    train: Vec<u64>,
    /// The batch being trained, packed.
    batch: Vec<u64>,
}

impl IntRun {
    fn new(cfg: &TrainConfig, data: &Dataset, xi: &[f32]) -> Result<Self, TrainError> {
        let Shape::Ra(dims) = cfg.shape(data) else {
            return Err(rapid_core::ConfigError::IntegerMethod.into());
        };
        let engine = IntEngine::new(dims, IntConfig::from_step_config(&cfg.step_config())?)?;
        let len = engine.lengths();
        let words = words_for(dims.visible);
        let mut train = vec![0u64; data.n_train() * words];
        for (img, out) in data.train.chunks_exact(dims.visible).zip(train.chunks_exact_mut(words)) {
            rapid_core::spins::PackedSpins::new_unchecked(out, dims.visible).copy_from_f32(img);
        }
        let mut run = IntRun {
            engine,
            theta: vec![0; len.theta],
            signs: vec![0; len.signs],
            negatives: vec![0; len.negatives],
            words: vec![0; len.words],
            scratch: vec![0; len.scratch],
            t: vec![0; len.t],
            wide: vec![0; len.wide],
            tanh: vec![0; len.tanh_table],
            thresholds: vec![0; len.threshold_table],
            train,
            batch: vec![0; cfg.batch * words],
        };
        rapid_core::int::table::fill_tanh(dims.patterns, &mut run.tanh);
        rapid_core::int::table::fill_thresholds(dims.patterns, &mut run.thresholds);
        run.engine.set_patterns(xi, &mut run.theta, &mut run.signs);
        Ok(run)
    }

    /// One update on the packed rows in `self.batch[..rows]`.
    fn update(&mut self, rows: usize, divisor: usize, rng: &mut Rng) {
        let k = self.engine.dims().patterns;
        let tables = Tables::from_slices(k, &self.tanh, &self.thresholds)
            .expect("the tables were built for this K");
        let words = words_for(self.engine.dims().visible);
        let mut bufs = IntBuffers {
            theta: &mut self.theta,
            signs: &mut self.signs,
            negatives: &mut self.negatives,
            words: &mut self.words,
            scratch: &mut self.scratch,
            t: &mut self.t,
            wide: &mut self.wide,
        };
        let batch = &self.batch[..rows * words];
        self.engine.step(&mut bufs, &tables, batch, NonZeroUsize::new(divisor), rng);
    }
}

/// A training run in progress: the core's [`Engine`] (counters and configuration) and the
/// buffers it trains: the model, optimiser state, chains, gradients and scratch.
///
/// # Threads
/// An update splits the batch (and the negative samples or chains) into the engine's lanes
/// ([`lanes_for`]), runs [`Engine::lane`] for each on the rayon pool, and adds their
/// gradients in lane order; the lane count depends on the sizes only, so a run gives the same
/// bits on any number of threads (and the same as the core's sequential [`Engine::step`]).
pub struct Trainer {
    cfg: TrainConfig,
    engine: Engine,
    model: Model,
    /// SGD: the velocity `Δ` (kept even without momentum, for checkpoints); Adam: `m` then `v`.
    opt: Vec<f32>,
    scratch: Vec<f32>,
    /// The lanes; the update's gradient is summed into the first lane's.
    lanes: Vec<Lane>,
    negs: Vec<f32>,
    chain_words: Vec<u64>,
    avg: FastAverage,
    batch_buf: Vec<f32>,
    order: Vec<usize>,
    rng: Rng,
    /// The integer engine and its buffers when `cfg.arith` is [`Arith::Int`]; `model` then
    /// holds `sign(θ)` as of the last epoch end.
    int: Option<Box<IntRun>>,
}

/// Box–Muller normal draw.
fn normal(rng: &mut Rng) -> f32 {
    let u1 = ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// The initial parameters of a run, drawn from `rng`: uniform random ±1 patterns for an RA
/// model (the paper), `W ~ N(0, 0.01²)` with zero biases for a dense one (the authors' code).
/// `rapid train` and `rapid bench scaling` start from these.
pub fn initial_params(shape: Shape, rng: &mut Rng) -> Vec<f32> {
    match shape {
        Shape::Ra(d) => {
            (0..d.xi_len()).map(|_| if rng.next_u32() & 1 == 1 { 1.0 } else { -1.0 }).collect()
        }
        Shape::Dense(d) => {
            let mut params = vec![0.0f32; d.param_len()];
            for w in params[..d.weights_len()].iter_mut() {
                *w = 0.01 * normal(rng);
            }
            params
        }
    }
}

impl Trainer {
    /// Validates the configuration and initialises the model from the seed.
    ///
    /// # Errors
    /// A configuration problem.
    pub fn new(cfg: &TrainConfig, data: &Dataset) -> Result<Self, TrainError> {
        cfg.validate(data)?;
        let engine = Engine::new(cfg.shape(data), cfg.step_config())?;
        limits::check_memory("training", Self::buffer_bytes(cfg, data, &engine))
            .map_err(TrainError::TooLarge)?;
        let mut rng = stream(cfg.seed, Stream::Train, 0, 0);
        let v = data.visible();
        let model = match engine.shape() {
            Shape::Ra(dims) => Model::Ra { dims, xi: initial_params(engine.shape(), &mut rng) },
            Shape::Dense(dims) => {
                Model::Dense { dims, params: initial_params(engine.shape(), &mut rng) }
            }
        };
        let n = engine.param_len();
        let opt = match cfg.optimizer {
            Optimizer::Sgd => vec![0.0; n],
            Optimizer::Adam | Optimizer::AdamByEpoch => vec![0.0; 2 * n],
        };
        let mut chain_words = vec![0u64; engine.chain_words_len()];
        init_chains(&mut chain_words, v, &mut rng);
        let scratch_len = engine.scratch_len(kernels::active());
        let lane_len = engine.lane_scratch_len(kernels::active());
        let lanes = (0..engine.lanes())
            .map(|_| Lane { grad: vec![0.0; n], scratch: vec![0.0; lane_len] })
            .collect();
        let int = match cfg.arith {
            Arith::Int => Some(Box::new(IntRun::new(cfg, data, model.params())?)),
            Arith::F32 => None,
        };
        Ok(Trainer {
            cfg: *cfg,
            engine,
            model,
            opt,
            scratch: vec![0.0; scratch_len],
            lanes,
            negs: vec![0.0; engine.negatives_len()],
            chain_words,
            avg: if cfg.method == Method::Exact {
                FastAverage::new(v, cfg.hidden)
            } else {
                FastAverage::default()
            },
            batch_buf: vec![0.0; cfg.batch * v],
            order: (0..data.n_train()).collect(),
            rng,
            int,
        })
    }

    /// The bytes [`Trainer::new`] allocates: model, optimiser state, scratch (with the operands
    /// packed once per update for all lanes), each lane's gradient and scratch, the chains (integer runs: their buffers are
    /// counted as the f32 ones, an over-estimate), and the exact method's `V×H` average.
    fn buffer_bytes(cfg: &TrainConfig, data: &Dataset, engine: &Engine) -> u128 {
        let n = engine.param_len() as u128;
        let lanes = engine.lanes() as u128;
        let scratch = engine.scratch_len(kernels::active()) as u128;
        let lane_scratch = engine.lane_scratch_len(kernels::active()) as u128;
        let opt = match cfg.optimizer {
            Optimizer::Sgd => 1,
            Optimizer::Adam | Optimizer::AdamByEpoch => 2,
        };
        let v = data.visible() as u128;
        let exact = if cfg.method == Method::Exact { v * cfg.hidden as u128 } else { 0 };
        let floats = n * (1 + opt + lanes)
            + scratch
            + lane_scratch * lanes
            + engine.negatives_len() as u128
            + cfg.batch as u128 * v
            + exact;
        4 * floats + 8 * engine.chain_words_len() as u128 + 8 * data.n_train() as u128
    }

    /// The model as it stands.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Epochs done.
    pub fn epochs_done(&self) -> u32 {
        match &self.int {
            Some(run) => run.engine.state().epochs,
            None => self.engine.state().epochs,
        }
    }

    /// The current learning rate (an integer run's Q32 value, rounded to `f32`).
    pub fn lr(&self) -> f32 {
        match &self.int {
            Some(run) => (run.engine.state().lr as f64 / 4_294_967_296.0) as f32,
            None => self.engine.state().lr,
        }
    }

    /// The persistent PCD chains as ±1 rows (empty for other methods).
    pub fn pcd_chains(&self) -> Vec<f32> {
        match (self.cfg.method, &self.model) {
            (Method::Pcd { chains, .. }, Model::Dense { dims, .. }) => {
                let wpc = words_for(dims.visible);
                let mut out = vec![0.0f32; chains * dims.visible];
                for (c, row) in out.chunks_exact_mut(dims.visible).enumerate() {
                    let words = &self.chain_words[c * wpc..(c + 1) * wpc];
                    rapid_core::spins::PackedSpins::new_unchecked(words, dims.visible).to_f32(row);
                }
                out
            }
            _ => Vec::new(),
        }
    }

    /// One update on a batch of images (rows of `V`), the positive phase divided by `divisor`:
    /// the core's [`Engine::begin`], its lanes on the rayon pool (on this thread below
    /// [`PARALLEL_MIN_FLOPS`]), their gradients summed in lane order into the first lane's,
    /// [`Engine::finish`]. Returns the largest parameter magnitude after the update (NaN when
    /// a parameter is NaN), as [`Engine::finish`] returns it.
    fn update(&mut self, rows: usize, divisor: usize) -> f32 {
        let engine = &self.engine;
        let v = engine.shape().visible();
        let batch = &self.batch_buf[..rows * v];
        let params = self.model.params();
        let up = engine.begin(
            params,
            rows,
            NonZeroUsize::new(divisor),
            &mut self.negs,
            &mut self.scratch,
            &mut self.rng,
        );
        // Each lane takes its own slice of the persistent chains (PCD; empty otherwise).
        let words = words_for(v);
        let mut chains: [&mut [u64]; MAX_LANES] = Default::default();
        let mut rest = &mut self.chain_words[..];
        for (l, part) in chains.iter_mut().enumerate().take(up.lanes()) {
            let (here, tail) = rest.split_at_mut(engine.chain_range(up.lanes(), l).len() * words);
            *part = here;
            rest = tail;
        }
        let chains = &mut chains[..up.lanes()];
        let negs = &self.negs;
        // The operands `begin` packed into the end of its scratch, read by every lane.
        let shared = engine.split_scratch(&mut self.scratch).1;
        let work = |(l, (lane, chains)): (usize, (&mut Lane, &mut &mut [u64]))| {
            let chains = &mut **chains;
            let (grad, scratch) = (&mut lane.grad, &mut lane.scratch);
            let bufs = LaneBuffers { grad, scratch, chains, shared };
            engine.lane::<Rng>(&up, l, params, batch, negs, bufs);
        };
        let lanes = &mut self.lanes[..up.lanes()];
        let small = update_flops(engine.shape(), engine.config().method, rows)
            .is_some_and(|f| f < PARALLEL_MIN_FLOPS);
        if lanes.len() == 1 || small {
            lanes.iter_mut().zip(chains.iter_mut()).enumerate().for_each(work);
        } else {
            lanes.par_iter_mut().zip(chains.par_iter_mut()).enumerate().for_each(work);
        }
        // ((g₀ + g₁) + g₂) + …: the lane order of the core's `Engine::step`.
        let (first, rest) = lanes.split_first_mut().expect("at least one lane");
        for lane in rest.iter() {
            for (g, &x) in first.grad.iter_mut().zip(&lane.grad) {
                *g += x;
            }
        }
        let average = if self.cfg.method == Method::Exact {
            let avg = &mut self.avg;
            self.model
                .view()
                .with_bipartite(|b| exact::model_average_fast(b, avg))
                .expect("the enumeration size was validated");
            Some(ModelAverage { vh: &avg.vh, v: &avg.v, h: &avg.h })
        } else {
            None
        };
        let params = self.model.params_mut();
        let grad = &mut first.grad;
        let largest =
            self.engine.finish(up, params, &mut self.opt, grad, &mut self.scratch, average);
        debug_assert_eq!(
            largest.to_bits(),
            largest_magnitude(self.model.params()).to_bits(),
            "the running magnitude is the scan's"
        );
        largest
    }

    /// Trains one epoch and returns its wall seconds.
    ///
    /// # Errors
    /// [`TrainError::NonFinite`] when a parameter stops being finite or exceeds ±[`MAX_PARAM`].
    pub fn train_epoch(&mut self, data: &Dataset) -> Result<f64, TrainError> {
        let t0 = Instant::now();
        let epoch = self.epochs_done() + 1;
        self.rng = stream(self.cfg.seed, Stream::Train, u64::from(epoch), 0);
        let (v, n, b) = (data.visible(), data.n_train(), self.cfg.batch);
        // Each epoch shuffles from the identity: its order depends on (seed, epoch) only. (The
        // data may differ in size between epochs when a library caller trains epoch by epoch
        // on new rows.)
        self.order.clear();
        self.order.extend(0..n);
        for i in (1..n).rev() {
            let j = (self.rng.next_u64() % (i as u64 + 1)) as usize;
            self.order.swap(i, j);
        }
        for start in (0..n).step_by(b) {
            let rows = b.min(n - start);
            let divisor = match self.cfg.partial_batch {
                _ if rows == b => rows,
                PartialBatch::Scaled => b,
                PartialBatch::Mean => rows,
                PartialBatch::Drop => continue,
            };
            if let Some(run) = self.int.as_deref_mut() {
                let w = words_for(v);
                for slot in 0..rows {
                    let img = self.order[start + slot];
                    run.batch[slot * w..(slot + 1) * w]
                        .copy_from_slice(&run.train[img * w..(img + 1) * w]);
                }
                run.update(rows, divisor, &mut self.rng);
                continue;
            }
            for slot in 0..rows {
                let img = self.order[start + slot];
                self.batch_buf[slot * v..(slot + 1) * v]
                    .copy_from_slice(&data.train[img * v..(img + 1) * v]);
            }
            let largest = self.update(rows, divisor);
            self.check_healthy(largest, epoch, start / b + 1)?;
        }
        if let Some(run) = self.int.as_deref_mut() {
            run.engine.end_epoch(&mut run.theta);
            run.engine.patterns(&run.theta, self.model.params_mut());
        } else {
            // The parameters as the epoch leaves them: projected, or as the last update left
            // them (also an epoch without updates, all of its batches dropped: one scan).
            let largest = match self.engine.end_epoch(self.model.params_mut()) {
                Some(projected) => projected,
                None => largest_magnitude(self.model.params()),
            };
            self.check_healthy(largest, epoch, 0)?;
        }
        Ok(t0.elapsed().as_secs_f64())
    }

    /// [`TrainError::NonFinite`] unless every parameter is within ±[`MAX_PARAM`], given their
    /// largest magnitude `largest` (NaN when a parameter is NaN, which fails the comparison).
    fn check_healthy(&self, largest: f32, epoch: u32, batch: usize) -> Result<(), TrainError> {
        if largest <= MAX_PARAM {
            return Ok(());
        }
        Err(TrainError::NonFinite { epoch, batch, largest: self.model.largest_param() })
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// Sets the total number of epochs (to extend a resumed run).
    pub fn set_epochs(&mut self, epochs: u32) {
        self.cfg.epochs = epochs;
    }

    /// Everything needed to continue this run bit-identically (see [`Trainer::restore`]).
    pub fn state(&self) -> TrainerState {
        let st = self.engine.state();
        let n = self.model.params().len();
        TrainerState {
            model: self.model.clone(),
            opt: match self.cfg.optimizer {
                Optimizer::Sgd => OptSnapshot::Sgd { velocity: self.opt.clone() },
                Optimizer::Adam | Optimizer::AdamByEpoch => OptSnapshot::Adam {
                    m: self.opt[..n].to_vec(),
                    v: self.opt[n..].to_vec(),
                    t: st.updates,
                },
            },
            chains: self.chain_words.clone(),
            epoch: self.epochs_done(),
            updates: self.int.as_ref().map_or(st.updates, |r| r.engine.state().updates),
            lr: self.lr(),
        }
    }

    /// Rebuilds a trainer from its configuration and a saved state.
    ///
    /// Every part of the state is checked against the configuration and the data before it is
    /// used: the model's kind and every dimension, the chains, the optimiser state (finite
    /// moments, `v ≥ 0`, Adam's step equal to the update count) and the counters (the update
    /// count at most `epoch ×` batches per epoch, the learning rate within the schedule's
    /// range), so a state that decodes but does not fit is an error, never a panic later.
    /// The batches per epoch are those of `data`: a state trained epoch by epoch on more rows
    /// than `data` holds is refused.
    ///
    /// # Errors
    /// An invalid configuration, or a state that does not fit it (the field and both values
    /// named in the message).
    pub fn restore(cfg: &TrainConfig, data: &Dataset, st: TrainerState) -> Result<Self, String> {
        let mut t = Trainer::new(cfg, data).map_err(|e| e.to_string())?;
        check_saved_model(cfg, &t.model, &st.model)?;
        check_saved_counters(cfg, data, &st)?;
        let n = st.model.params().len();
        t.opt = match (st.opt, cfg.optimizer) {
            (OptSnapshot::Sgd { velocity }, Optimizer::Sgd) => {
                check_saved_moments("SGD velocity", &velocity, n, false)?;
                velocity
            }
            (
                OptSnapshot::Adam { mut m, v, t: steps },
                Optimizer::Adam | Optimizer::AdamByEpoch,
            ) => {
                check_saved_moments("Adam m", &m, n, false)?;
                check_saved_moments("Adam v", &v, n, true)?;
                if steps != st.updates {
                    return Err(format!(
                        "the saved Adam step count ({steps}) differs from the update count ({})",
                        st.updates
                    ));
                }
                m.extend_from_slice(&v);
                m
            }
            (OptSnapshot::Sgd { .. }, o) | (OptSnapshot::Adam { .. }, o) => {
                let saved = if matches!(o, Optimizer::Sgd) { "Adam" } else { "SGD" };
                return Err(format!(
                    "the saved optimiser state is {saved}'s, the settings say optimizer={o}"
                ));
            }
        };
        let st_chains = check_saved_chains(cfg, data, t.chain_words.len(), st.chains)?;
        let state = TrainState { lr: st.lr, updates: st.updates, epochs: st.epoch };
        t.engine = Engine::resume(t.engine.shape(), *t.engine.config(), state)
            .map_err(|e| format!("the saved state: {e}"))?;
        t.model = st.model;
        t.chain_words = st_chains;
        if let Some(run) = t.int.as_deref_mut() {
            // At an epoch end θ = sign·θ₀ and the learning rate is the schedule replayed, so
            // the ±1 patterns and the counters restore an integer run exactly.
            let (dims, icfg) = (run.engine.dims(), *run.engine.config());
            let state =
                IntState { lr: icfg.lr_after(st.epoch), updates: st.updates, epochs: st.epoch };
            run.engine = IntEngine::resume(dims, icfg, state)
                .map_err(|e| format!("the saved state: {e}"))?;
            if !t.model.params().iter().all(|&x| x == 1.0 || x == -1.0) {
                return Err("an integer run's saved patterns must all be +1 or -1".into());
            }
            run.engine.set_patterns(t.model.params(), &mut run.theta, &mut run.signs);
        }
        Ok(t)
    }

    /// Gives up the trainer for its model.
    pub(super) fn into_model(self) -> Model {
        self.model
    }
}

/// The saved model against the one the configuration builds (`fresh`): the kind (RA, dense,
/// dense with biases) and every dimension, each mismatch named with both values.
fn check_saved_model(cfg: &TrainConfig, fresh: &Model, saved: &Model) -> Result<(), String> {
    let kind = |m: &Model| match m {
        Model::Ra { .. } => "an RA model",
        Model::Dense { dims, .. } if dims.biases => "a dense model with biases",
        Model::Dense { .. } => "a dense model without biases",
    };
    if kind(fresh) != kind(saved) {
        return Err(format!(
            "the saved model is {} ({}), the settings (method={}, biases={}) train {}",
            kind(saved),
            saved.describe(),
            cfg.method,
            cfg.biases,
            kind(fresh)
        ));
    }
    let (f, s) = (fresh.view(), saved.view());
    if f.visible() != s.visible() {
        return Err(format!(
            "the saved model has V={}, the data has {} pixels per image",
            s.visible(),
            f.visible()
        ));
    }
    if f.hidden() != s.hidden() {
        return Err(format!(
            "the saved model has H={}, the settings say hidden={}",
            s.hidden(),
            f.hidden()
        ));
    }
    if let (Model::Ra { dims: fd, .. }, Model::Ra { dims: sd, .. }) = (fresh, saved) {
        if fd.patterns != sd.patterns {
            return Err(format!(
                "the saved model has K={}, the settings say patterns={}",
                sd.patterns, fd.patterns
            ));
        }
    }
    if fresh.params().len() != saved.params().len() {
        // Equal kinds and dimensions give equal lengths; a hand-built state may not.
        return Err(format!(
            "the saved model holds {} parameters, its dimensions need {}",
            saved.params().len(),
            fresh.params().len()
        ));
    }
    Ok(())
}

/// A saved optimiser buffer (`what`): `n` entries, all finite, and with `non_negative` (Adam's
/// second moments) none below 0.
fn check_saved_moments(what: &str, x: &[f32], n: usize, non_negative: bool) -> Result<(), String> {
    if x.len() != n {
        return Err(format!(
            "the saved {what} has {} entries, the model has {n} parameters",
            x.len()
        ));
    }
    match x.iter().position(|&x| !x.is_finite() || (non_negative && x < 0.0)) {
        None => Ok(()),
        Some(i) => Err(format!(
            "the saved {what}[{i}] is {}, it must be finite{}",
            x[i],
            if non_negative { " and at least 0" } else { "" }
        )),
    }
}

/// Updates an epoch over `data` makes with these settings (the short last batch counts
/// unless it is dropped).
fn batches_per_epoch(cfg: &TrainConfig, data: &Dataset) -> u64 {
    let (n, b) = (data.n_train(), cfg.batch.max(1));
    let batches = match cfg.partial_batch {
        PartialBatch::Drop => n / b,
        PartialBatch::Scaled | PartialBatch::Mean => n.div_ceil(b),
    };
    batches as u64
}

/// The saved counters: the epoch within the run, the update count at most `epoch ×` batches
/// per epoch (so it cannot reach the end of its range however long the run goes on: the
/// run's whole count, `epochs ×` batches, must fit in a `u64`), the learning rate finite,
/// at least 0 and within the schedule's range `[min(η₀, η_min), max(η₀, η_min)]`.
fn check_saved_counters(
    cfg: &TrainConfig,
    data: &Dataset,
    st: &TrainerState,
) -> Result<(), String> {
    if st.epoch > cfg.epochs {
        return Err(format!(
            "the saved epoch {} is after the run's last epoch, epochs={}",
            st.epoch, cfg.epochs
        ));
    }
    let per_epoch = batches_per_epoch(cfg, data);
    if u64::from(cfg.epochs).checked_mul(per_epoch).is_none() {
        return Err(format!(
            "epochs={} × {per_epoch} updates per epoch overflows the update counter",
            cfg.epochs
        ));
    }
    let most = u64::from(st.epoch) * per_epoch;
    if st.updates > most {
        return Err(format!(
            "the saved update count {} is more than epoch {} × {per_epoch} updates per epoch = {most}",
            st.updates, st.epoch
        ));
    }
    // 0 is a rate a schedule without a floor can decay to.
    if !(st.lr.is_finite() && st.lr >= 0.0) {
        return Err(format!(
            "the saved learning rate is {}, it must be finite and at least 0",
            st.lr
        ));
    }
    // An integer run's rate is its Q32 value rounded, and is replayed from the schedule on
    // restore; an f32 run's only decays from η₀ towards η_min (or rises to it once).
    let (lo, hi) = (cfg.lr.min(cfg.schedule.min), cfg.lr.max(cfg.schedule.min));
    if cfg.arith == Arith::F32 && !(lo..=hi).contains(&st.lr) {
        return Err(format!(
            "the saved learning rate {} is outside the schedule's range [{lo}, {hi}] (lr={}, lr_min={})",
            st.lr, cfg.lr, cfg.schedule.min
        ));
    }
    Ok(())
}

/// The saved chain words: PCD's persistent chains (`needed` words, each chain's padding bits
/// zero); none for the other methods. CD keeps no chains between batches (they restart at
/// the batch), but older CD checkpoints carry `batch × ⌈V/64⌉` words from when the trainer
/// held them: that block is accepted and ignored. Any other count is refused, so a PCD
/// state relabelled as CD does not silently lose its chains.
fn check_saved_chains(
    cfg: &TrainConfig,
    data: &Dataset,
    needed: usize,
    chains: Vec<u64>,
) -> Result<Vec<u64>, String> {
    let (v, found) = (data.visible(), chains.len());
    let words = words_for(v);
    if let Method::Cd { .. } = cfg.method {
        let older = cfg.batch.checked_mul(words);
        if found == 0 || Some(found) == older {
            return Ok(Vec::new());
        }
        return Err(format!(
            "the saved state has {found} chain words; method={} keeps no chains (older \
             checkpoints: batch={} × {words} words per image = {})",
            cfg.method,
            cfg.batch,
            older.map_or("too many".into(), |n| n.to_string())
        ));
    }
    if found != needed {
        let why = match cfg.method {
            Method::Pcd { chains, .. } => format!("{chains} chains × {words} words per image"),
            _ => "no chains".into(),
        };
        return Err(format!(
            "the saved state has {found} chain words, method={} on V={v} needs {needed} ({why})",
            cfg.method
        ));
    }
    for (c, chain) in chains.chunks_exact(words.max(1)).enumerate() {
        if rapid_core::spins::PackedSpins::new_checked(chain, v).is_err() {
            return Err(format!("the saved chain {c} has padding bits set past V={v}"));
        }
    }
    Ok(chains)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{bars4, DatasetSpec};
    use rapid_core::optim::Projection;
    use rapid_core::NegativePhase;

    /// Trains `cfg.epochs` epochs without evaluating.
    fn train_model(cfg: &TrainConfig, data: &Dataset) -> Result<Model, TrainError> {
        let mut t = Trainer::new(cfg, data)?;
        while t.epochs_done() < cfg.epochs {
            t.train_epoch(data)?;
        }
        Ok(t.into_model())
    }

    /// Batches large enough for several lanes give the same model bits on 1, 2 and 3 threads.
    #[test]
    fn training_does_not_depend_on_the_thread_count() {
        let d = Dataset::new(DatasetSpec::Bas(6), 0);
        assert!(lanes_for(96) > 1 && lanes_for(256) > 1, "the test needs several lanes");
        for method in [
            Method::Pid(NegativePhase::Patterns),
            Method::Pid(NegativePhase::Gibbs { steps: 1 }),
            Method::Pid(NegativePhase::Hebb),
            Method::Cd { k: 2 },
            Method::Pcd { k: 1, chains: 256 },
        ] {
            let cfg = TrainConfig {
                epochs: 2,
                hidden: 50,
                patterns: 64,
                batch: 96,
                eval_every: 0,
                ..TrainConfig::paper(method)
            };
            let run = |threads| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| train_model(&cfg, &d).unwrap())
            };
            let one = run(1);
            for threads in [2, 3] {
                assert_eq!(one, run(threads), "{method} on {threads} threads");
            }
        }
    }

    /// An integer run restored from its state at an epoch end continues bit-identically.
    #[test]
    fn integer_runs_resume_bit_identically() {
        let d = bars4();
        for method in
            [Method::Pid(NegativePhase::Patterns), Method::Pid(NegativePhase::Gibbs { steps: 1 })]
        {
            let cfg =
                TrainConfig { epochs: 8, arith: Arith::Int, seed: 5, ..TrainConfig::paper(method) };
            let full = train_model(&cfg, &d).unwrap();
            let mut t = Trainer::new(&cfg, &d).unwrap();
            for _ in 0..4 {
                t.train_epoch(&d).unwrap();
            }
            let mut r = Trainer::restore(&cfg, &d, t.state()).unwrap();
            {
                let (a, b) = (t.int.as_ref().unwrap(), r.int.as_ref().unwrap());
                assert_eq!(a.engine.state(), b.engine.state());
                assert!(a.theta == b.theta && a.signs == b.signs, "restored θ");
            }
            for _ in 0..4 {
                r.train_epoch(&d).unwrap();
            }
            let same = r.into_model() == full;
            assert!(same, "{method}: the resumed run differs");
        }
    }

    #[test]
    fn lanes_are_powers_of_two_within_bounds() {
        assert_eq!(lanes_for(0), 1);
        assert_eq!(lanes_for(63), 1);
        assert_eq!(lanes_for(64), 2);
        assert_eq!(lanes_for(120), 2);
        assert_eq!(lanes_for(128), 4);
        assert_eq!(lanes_for(100_000), MAX_LANES);
        let n = 1001;
        let mut next = 0;
        for l in 0..7 {
            let r = lane_range(n, 7, l);
            assert_eq!(r.start, next);
            next = r.end;
        }
        assert_eq!(next, n);
    }

    #[test]
    fn divergence_is_reported_with_epoch_and_batch() {
        let d = bars4();
        let cfg = TrainConfig {
            epochs: 3,
            hidden: 20,
            projection: Projection::None,
            lr: 1e30,
            ..TrainConfig::default()
        };
        let e = train_model(&cfg, &d).unwrap_err();
        assert!(matches!(e, TrainError::NonFinite { .. }), "{e}");
    }

    /// The divergence check reads the largest magnitude the update returns: a run stops at the
    /// first batch that leaves a parameter beyond ±[`MAX_PARAM`] (Adam moves each parameter
    /// by about η a step, so η = 3·10⁵ crosses 10⁶ after a few batches, not the first), with
    /// the model as that update left it; a clamp to a bound beyond [`MAX_PARAM`] fails at the
    /// first batch, one within it never does, however large the step.
    #[test]
    fn divergence_stops_at_the_first_batch_beyond_the_bound() {
        let d = bars4();
        let base = TrainConfig { epochs: 3, eval_every: 0, ..TrainConfig::default() };
        let adam = TrainConfig {
            optimizer: Optimizer::Adam,
            lr: 3e5,
            projection: Projection::None,
            ..base
        };
        let mut t = Trainer::new(&adam, &d).unwrap();
        let e = loop {
            match t.train_epoch(&d) {
                Ok(_) => assert!(t.epochs_done() < adam.epochs, "Adam with lr 3e5 must diverge"),
                Err(e) => break e,
            }
        };
        let TrainError::NonFinite { epoch, batch, largest } = e else { panic!("{e}") };
        assert!((epoch, batch) > (1, 1), "diverged at epoch {epoch} batch {batch}");
        assert!(largest > MAX_PARAM && largest.is_finite(), "{largest}");
        // The model is the one the failing update left (the batches before it passed the
        // check): Bars has 4 batches per epoch.
        assert_eq!(largest, t.model().largest_param());
        let updates = t.engine.state().updates;
        assert_eq!(updates, u64::from(epoch - 1) * 4 + batch as u64, "the failing update");
        let clamped = |bound, lr| TrainConfig {
            projection: Projection::Clamp { bound },
            lr,
            optimizer: Optimizer::Sgd,
            ..base
        };
        let e = train_model(&clamped(1e7, 1e30), &d).unwrap_err();
        assert!(
            matches!(e, TrainError::NonFinite { epoch: 1, batch: 1, largest } if largest == 1e7),
            "{e}"
        );
        assert!(train_model(&clamped(2.0, 1e30), &d).is_ok(), "a clamp within the bound");
    }

    /// Updates below [`PARALLEL_MIN_FLOPS`] run their lanes on the calling thread, above it on
    /// the pool; both give the bits of one thread.
    #[test]
    fn small_updates_with_several_lanes_do_not_depend_on_the_thread_count() {
        let d = Dataset::new(DatasetSpec::Bas(6), 0);
        let method = Method::Pid(NegativePhase::Patterns);
        let small = TrainConfig {
            epochs: 2,
            hidden: 4,
            patterns: 2,
            batch: 96,
            eval_every: 0,
            ..TrainConfig::paper(method)
        };
        let big = TrainConfig { hidden: 200, patterns: 16, ..small };
        let flops = |c: &TrainConfig| {
            let engine = Engine::new(c.shape(&d), c.step_config()).unwrap();
            assert!(engine.lanes() > 1, "the test needs several lanes");
            update_flops(engine.shape(), engine.config().method, c.batch).unwrap()
        };
        assert!(flops(&small) < PARALLEL_MIN_FLOPS && flops(&big) >= PARALLEL_MIN_FLOPS);
        for cfg in [small, big] {
            let run = |threads| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| train_model(&cfg, &d).unwrap())
            };
            let one = run(1);
            assert_eq!(one, run(2), "H={} on 2 threads", cfg.hidden);
        }
    }
}
