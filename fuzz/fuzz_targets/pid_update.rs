//! Training updates through the core's one step implementation, `step::Engine::step`, on
//! small models and configurations built from the input (named for its first job, the PID
//! update; it drives every method).
//!
//! # Input layout
//! The first part is the layout of the earlier `pid_gradient` target, so the committed seeds
//! keep their meaning (each describes a `pid*` step on an RA model; past the end of the input
//! every byte reads as 0, which selects the defaults below):
//! 1. `V, H, K ∈ 1..=8` (one byte each), rows `B ∈ 0..=4`, divisor `0..=5` (0: none), the
//!    negative phase (`pid`, `pid-hebb`, `pid-gibbs:1..3`), a flag for a ±1 batch;
//! 2. SGD: learning rate in `(0, 1]`, momentum in `[0, 1)` (two bytes each), weight decay in
//!    `[0, 0.1]`; a seed (two bytes);
//! 3. patterns `Ξ`, batch and velocity, dyadic values in `[−2, 2)` (one byte each).
//!
//! Then: the method family (`pid*` as above, `cd:k`, `pcd:k` with `0..=130` chains, 0 refused, `exact`),
//! the model kind (RA, dense, dense with biases), the projection (none, `sign` every `0..=3`
//! updates, `clamp` with a bound in `(0, 4]`), the optimiser (SGD as above, or Adam with
//! β₁, β₂ in `[0, 1)`), extra configured batch rows `0..=79` (so the update may be a short
//! last batch and several lanes run), the block size (`1..=255`, 0 for the default 256),
//! updates per epoch `1..=3`, epochs `1..=2`, and one configuration value to make invalid (or
//! none). A dense model takes its parameters from the pattern bytes, repeated.
//!
//! # Checks
//! * `Engine::new` returns `Err` exactly when the configuration breaks a documented rule
//!   (zero size, bad hyper-parameter, `pid` on a dense model, `exact` on an RA model, a
//!   projection on a dense model, `pid-gibbs:0`, PCD without chains, zero batch or block
//!   size), and never panics;
//! * no panic in any update; a step from moderate values (every parameter and optimiser entry
//!   within ±1000) leaves every gradient, parameter and optimiser entry finite (a large
//!   learning rate may still diverge later, as training does);
//! * the projection holds: `clamp(b)` leaves every entry in `[−b, b]` after each update;
//!   `sign` leaves exactly ±1 after each due update (every `n`) or epoch end (every 0);
//! * PCD chains keep zero padding bits (`PackedSpins::new_checked`);
//! * the first update's gradient (`pid*`, `exact`) equals the per-sample oracles
//!   (`ra::pid::accumulate_phase_per_sample`, `accumulate_hebb_negative`,
//!   `dense::accumulate_phase_per_sample`) within `1e−3·(1 + |pos| + |neg|)`;
//! * the block positive phase (`blocks::accumulate_phase`) of an RA model equals the same
//!   gradient computed in `f64` from the formed `W = Ξ_vᵀΞ_h/√K` (`RaModel::weights`), within
//!   `1e−3·(1 + |g|)` plus a rounding allowance for cancellation;
//! * the same seed gives the same bits.
#![no_main]

use std::num::NonZeroUsize;

use libfuzzer_sys::fuzz_target;
use rand_core::SeedableRng;
use rand_pcg::Pcg32;
use rapid_core::blocks::{accumulate_phase, block_scratch_len, init_chains, Workspace, BLOCK_ROWS};
use rapid_core::dense::{self, DenseDims, DenseRbm};
use rapid_core::kernels::active;
use rapid_core::optim::{Adam, LrSchedule, Optimizer, Projection, Sgd};
use rapid_core::ra::model::{Dims, RaModel};
use rapid_core::ra::pid::{accumulate_hebb_negative, accumulate_phase_per_sample};
use rapid_core::spins::{words_for, PackedSpins};
use rapid_core::step::{Buffers, Engine, Method, ModelAverage, Shape, StepConfig};
use rapid_core::NegativePhase;

#[path = "../common/bytes.rs"]
mod bytes;
use bytes::Bytes;

/// Whether the documented rules accept `cfg` for `shape` (independent of `validate`).
fn documented_valid(shape: Shape, cfg: &StepConfig) -> bool {
    let sizes = match shape {
        Shape::Ra(d) => d.visible > 0 && d.hidden > 0 && d.patterns > 0,
        Shape::Dense(d) => d.visible > 0 && d.hidden > 0,
    };
    let dense = matches!(shape, Shape::Dense(_));
    let method = match cfg.method {
        Method::Pid(NegativePhase::Gibbs { steps }) => !dense && steps > 0,
        Method::Pid(_) => !dense,
        Method::Exact => dense,
        Method::Pcd { chains, .. } => chains > 0,
        _ => true,
    };
    let finite_pos = |x: f32| x.is_finite() && x > 0.0;
    let optimizer = match cfg.optimizer {
        Optimizer::Sgd(s) => {
            finite_pos(s.lr)
                && (0.0..1.0).contains(&s.momentum)
                && s.weight_decay.is_finite()
                && s.weight_decay >= 0.0
        }
        Optimizer::Adam(a) => {
            finite_pos(a.lr)
                && (0.0..1.0).contains(&a.beta1)
                && (0.0..1.0).contains(&a.beta2)
                && finite_pos(a.eps)
        }
    };
    let projection = match cfg.projection {
        Projection::None => true,
        Projection::Sign { .. } => !dense,
        Projection::Clamp { bound } => !dense && finite_pos(bound),
    };
    let schedule = cfg.schedule.decay > 0.0
        && cfg.schedule.decay <= 1.0
        && cfg.schedule.min.is_finite()
        && cfg.schedule.min >= 0.0;
    sizes && method && optimizer && projection && schedule && cfg.batch > 0 && cfg.block_rows > 0
}

fn is_pm1(x: f32) -> bool {
    x.to_bits() == 1.0f32.to_bits() || x.to_bits() == (-1.0f32).to_bits()
}

/// One run's buffers.
#[derive(Clone)]
struct Run {
    params: Vec<f32>,
    opt: Vec<f32>,
    grad: Vec<f32>,
    lane_grad: Vec<f32>,
    negatives: Vec<f32>,
    chains: Vec<u64>,
    scratch: Vec<f32>,
}

impl Run {
    fn buffers(&mut self) -> Buffers<'_> {
        Buffers {
            params: &mut self.params,
            opt: &mut self.opt,
            grad: &mut self.grad,
            lane_grad: &mut self.lane_grad,
            negatives: &mut self.negatives,
            chains: &mut self.chains,
            scratch: &mut self.scratch,
        }
    }
}

/// The block positive phase of an RA model against a formed-W computation in `f64`.
fn check_positive_phase(dims: Dims, xi: &[f32], batch: &[f32], block_rows: usize) {
    let (nv, nh, nk) = (dims.visible, dims.hidden, dims.patterns);
    let rows = batch.len() / nv;
    let model = RaModel::new(xi, dims).expect("validated sizes");
    let b = block_rows.min(rows);
    let mut scratch = vec![0.0f32; block_scratch_len(active(), nv, nh, 2 * nk, b)];
    let mut ws = Workspace::new(&mut scratch, block_rows);
    let mut pos = vec![0.0f32; dims.xi_len()];
    accumulate_phase(&model, batch, 1.0, &mut pos, &mut ws);
    if rows == 0 {
        assert!(pos.iter().all(|&g| g == 0.0), "an empty batch must add nothing");
        return;
    }
    let mut w = vec![0.0f32; dims.weights_len()];
    model.weights(&mut w);
    let scale = 1.0 / (rows as f64 * (nk as f64).sqrt());
    // want[j] and the sum of |terms| behind it (for the cancellation allowance).
    let mut want = vec![0.0f64; dims.xi_len()];
    let mut mass = vec![0.0f64; dims.xi_len()];
    let width = dims.width();
    for v in batch.chunks_exact(nv) {
        let t: Vec<f64> = (0..nh)
            .map(|a| (0..nv).map(|i| f64::from(w[i * nh + a]) * f64::from(v[i])).sum::<f64>())
            .map(f64::tanh)
            .collect();
        for k in 0..nk {
            let xv = model.xi_v(k);
            let xh = model.xi_h(k);
            let u: f64 = (0..nh).map(|a| f64::from(xh[a]) * t[a]).sum();
            let u_abs: f64 = (0..nh).map(|a| (f64::from(xh[a]) * t[a]).abs()).sum();
            let m: f64 = (0..nv).map(|i| f64::from(xv[i]) * f64::from(v[i])).sum();
            let m_abs: f64 = (0..nv).map(|i| (f64::from(xv[i]) * f64::from(v[i])).abs()).sum();
            for i in 0..nv {
                want[k * width + i] += scale * f64::from(v[i]) * u;
                mass[k * width + i] += scale * f64::from(v[i]).abs() * u_abs;
            }
            for a in 0..nh {
                want[k * width + nv + a] += scale * m * t[a];
                mass[k * width + nv + a] += scale * m_abs * t[a].abs();
            }
        }
    }
    for j in 0..dims.xi_len() {
        let (got, want, mass) = (f64::from(pos[j]), want[j], mass[j]);
        let tol = 1e-3 * (1.0 + want.abs()) + 1e-4 * mass;
        assert!(
            (got - want).abs() <= tol,
            "positive phase entry {j} of V={nv} H={nh} K={nk} B={rows}: \
             low-rank {got} vs formed W {want} (tolerance {tol})"
        );
    }
}

/// The gradient of the first update from the per-sample oracles, as `(pos, neg)` with the
/// gradient `pos − neg`; `None` for the methods whose negative phase is random (CD, PCD).
fn oracle(
    shape: Shape,
    method: Method,
    params: &[f32],
    batch: &[f32],
    weight: f32,
    negatives: &[f32],
    average: &[f32],
) -> Option<(Vec<f32>, Vec<f32>)> {
    let n = shape.param_len();
    let (mut pos, mut neg) = (vec![0.0f32; n], vec![0.0f32; n]);
    match (shape, method) {
        (Shape::Ra(d), Method::Pid(negative)) => {
            let model = RaModel::new(params, d).expect("validated sizes");
            let mut scratch = vec![0.0f32; 2 * d.patterns + d.hidden];
            accumulate_phase_per_sample(&model, batch, weight, &mut pos, &mut scratch);
            if negative == NegativePhase::Hebb {
                accumulate_hebb_negative(&model, &mut neg, &mut scratch);
                for g in &mut neg {
                    *g = -*g;
                }
            } else {
                accumulate_phase_per_sample(&model, negatives, 1.0, &mut neg, &mut scratch);
            }
        }
        (Shape::Dense(d), Method::Exact) => {
            let model = DenseRbm::new(params, d);
            let mut scratch = vec![0.0f32; dense::phase_scratch_len(d)];
            dense::accumulate_phase_per_sample(&model, batch, weight, &mut pos, &mut scratch);
            neg.copy_from_slice(&average[..n]);
        }
        _ => return None,
    }
    Some((pos, neg))
}

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes(data);
    // The earlier target's layout.
    let mut ra = Dims::new(input.size(8), input.size(8), input.size(8));
    let rows = usize::from(input.u8() % 5);
    let divisor = NonZeroUsize::new(usize::from(input.u8() % 6));
    let negative = match input.u8() % 5 {
        0 => NegativePhase::Patterns,
        1 => NegativePhase::Hebb,
        s => NegativePhase::Gibbs { steps: u32::from(s - 1) },
    };
    let spin_batch = input.u8() & 1 == 1;
    let mut sgd = Sgd {
        lr: (f32::from(input.u16()) + 1.0) / 65_536.0,
        momentum: f32::from(input.u16()) / 65_536.0,
        weight_decay: f32::from(input.u8()) / 2550.0,
    };
    let seed = u64::from(input.u16());
    let xi: Vec<f32> = (0..ra.xi_len()).map(|_| input.unit()).collect();
    let batch: Vec<f32> = (0..rows * ra.visible)
        .map(|_| {
            let x = input.unit();
            if spin_batch {
                if x < 0.0 {
                    -1.0
                } else {
                    1.0
                }
            } else {
                x
            }
        })
        .collect();
    let velocity: Vec<f32> = (0..ra.xi_len()).map(|_| input.unit()).collect();

    // The configuration beyond the earlier target.
    let family = input.u8();
    let k = u32::from(input.u8() % 4);
    let chains = usize::from(input.u8() % 131);
    let kind = input.u8() % 3;
    let proj = input.u8();
    let mut projection = match proj % 4 {
        0 => Projection::None,
        1 => Projection::Sign { every: u32::from(proj / 4 % 4) },
        2 => Projection::Clamp { bound: f32::from(proj / 4 % 16 + 1) / 4.0 },
        _ => Projection::Sign { every: 0 },
    };
    let use_adam = input.u8() & 1 == 1;
    let (beta1, beta2) = (f32::from(input.u8()) / 256.0, f32::from(input.u8()) / 256.0);
    let extra_rows = usize::from(input.u8() % 80);
    let block_rows = match input.u8() {
        0 => BLOCK_ROWS,
        b => usize::from(b),
    };
    let updates = usize::from(input.u8() % 3) + 1;
    let epochs = input.u8() % 2 + 1;
    let invalid = input.u8();

    let mut method = match family % 4 {
        0 => Method::Pid(negative),
        1 => Method::Cd { k },
        2 => Method::Pcd { k, chains },
        _ => Method::Exact,
    };
    let mut dd = DenseDims::new(ra.visible, ra.hidden, kind == 2);
    let mut batch_size = rows.max(1) + extra_rows;
    let mut block_rows = block_rows;
    let mut schedule = LrSchedule { decay: 0.96, min: 1e-5, start_epoch: 0 };
    let mut adam = Adam { lr: sgd.lr, beta1, beta2, eps: 1e-8, by_epoch: false };
    match invalid {
        1 => (ra.visible, dd.visible) = (0, 0),
        2 => (ra.hidden, dd.hidden) = (0, 0),
        3 => ra.patterns = 0,
        4 => (sgd.lr, adam.lr) = (0.0, f32::NAN),
        5 => (sgd.lr, adam.lr) = (-sgd.lr, f32::INFINITY),
        6 => (sgd.momentum, adam.beta1) = (1.0, 1.0),
        7 => (sgd.momentum, adam.beta2) = (f32::NAN, -0.5),
        8 => (sgd.weight_decay, adam.eps) = (-0.1, 0.0),
        9 => (sgd.weight_decay, adam.eps) = (f32::INFINITY, f32::NAN),
        10 => batch_size = 0,
        11 => block_rows = 0,
        12 => method = Method::Pid(NegativePhase::Gibbs { steps: 0 }),
        13 => projection = Projection::Clamp { bound: -1.0 },
        14 => projection = Projection::Clamp { bound: f32::NAN },
        15 => schedule.decay = 0.0,
        16 => schedule.decay = 1.5,
        17 => schedule.min = f32::NAN,
        18 => schedule.min = -1.0,
        19 => method = Method::Exact,
        20 => method = Method::Pid(negative),
        _ => {}
    }
    let shape = if kind == 0 { Shape::Ra(ra) } else { Shape::Dense(dd) };
    let optimizer = if use_adam { Optimizer::Adam(adam) } else { Optimizer::Sgd(sgd) };
    let cfg = StepConfig { method, optimizer, projection, schedule, batch: batch_size, block_rows };

    // Validation first: Err exactly on a broken rule, never a panic.
    let engine = Engine::new(shape, cfg);
    assert_eq!(
        engine.is_ok(),
        documented_valid(shape, &cfg),
        "Engine::new({shape:?}, {cfg:?}) = {engine:?}"
    );
    let Ok(engine) = engine else { return };
    assert_eq!(engine.shape(), shape);
    assert_eq!(engine.config(), &cfg);

    if let Shape::Ra(d) = shape {
        check_positive_phase(d, &xi, &batch, block_rows);
    }
    if rows == 0 {
        return; // An update needs a row (a caller bug otherwise).
    }

    let n = engine.param_len();
    let params: Vec<f32> = match shape {
        Shape::Ra(_) => xi.clone(),
        Shape::Dense(_) => xi.iter().copied().cycle().take(n).collect(),
    };
    let opt = match cfg.optimizer {
        Optimizer::Sgd(_) => velocity.iter().copied().cycle().take(engine.opt_len()).collect(),
        Optimizer::Adam(_) => vec![0.0; engine.opt_len()],
    };
    let mut chain_words = vec![0u64; engine.chain_words_len()];
    init_chains(&mut chain_words, shape.visible(), &mut Pcg32::seed_from_u64(seed ^ 0x5a5a));
    let fresh = Run {
        params,
        opt,
        grad: vec![0.0; n],
        lane_grad: vec![0.0; engine.lane_grad_len()],
        negatives: vec![0.0; engine.negatives_len()],
        chains: chain_words,
        scratch: vec![0.0; engine.scratch_len(active())],
    };
    // The exact model average: half the velocity bytes, repeated.
    let (vh, vv, hh) = (shape.visible() * shape.hidden(), shape.visible(), shape.hidden());
    let average: Vec<f32> = velocity.iter().map(|x| 0.5 * x).cycle().take(vh + vv + hh).collect();
    let avg = ModelAverage { vh: &average[..vh], v: &average[vh..vh + vv], h: &average[vh + vv..] };
    let average_arg = || matches!(method, Method::Exact).then_some(avg);

    let train = |mut run: Run| -> Run {
        let mut engine = engine;
        let mut rng = Pcg32::seed_from_u64(seed);
        let nw = words_for(shape.visible());
        for epoch in 0..epochs {
            for update in 0..updates {
                let before = run.params.clone();
                // A large learning rate may diverge (pid-hebb's term is cubic in Ξ): finiteness
                // is promised only for a step from moderate parameters and optimiser state,
                // where no intermediate of these small models can overflow f32.
                let tame = before.iter().chain(&run.opt).all(|x| x.abs() <= 1e3);
                engine.step(&mut run.buffers(), &batch, divisor, average_arg(), &mut rng);
                let done = engine.state().updates;
                if tame {
                    assert!(
                        run.grad.iter().all(|g| g.is_finite()),
                        "non-finite gradient {:?}",
                        run.grad
                    );
                    assert!(
                        run.params.iter().all(|x| x.is_finite()),
                        "non-finite params {:?}",
                        run.params
                    );
                    assert!(run.opt.iter().all(|x| x.is_finite()), "non-finite optimiser state");
                }
                if tame && epoch == 0 && update == 0 {
                    let weight = divisor.map_or(1.0, |d| rows as f32 / d.get() as f32);
                    let negs = &run.negatives;
                    if let Some((pos, neg)) =
                        oracle(shape, method, &before, &batch, weight, negs, &average)
                    {
                        for j in 0..n {
                            let (got, want) = (run.grad[j], pos[j] - neg[j]);
                            let tol = 1e-3 * (1.0 + pos[j].abs() + neg[j].abs());
                            assert!(
                                (got - want).abs() <= tol,
                                "gradient entry {j} of {shape:?} {method:?}: step {got}, \
                                 oracle {want} (tolerance {tol})"
                            );
                        }
                    }
                }
                match projection {
                    Projection::Clamp { bound } => assert!(
                        run.params.iter().all(|x| x.abs() <= bound),
                        "clamp({bound}) broken: {:?}",
                        run.params
                    ),
                    Projection::Sign { every } if every > 0 && done % u64::from(every) == 0 => {
                        assert!(run.params.iter().all(|&x| is_pm1(x)), "sign broken")
                    }
                    _ => {}
                }
                for c in run.chains.chunks_exact(nw) {
                    PackedSpins::new_checked(c, shape.visible()).expect("chain padding stays 0");
                }
            }
            let lr = engine.state().lr;
            engine.end_epoch(&mut run.params);
            assert_eq!(engine.state().epochs, u32::from(epoch) + 1);
            assert!(engine.state().lr <= lr && engine.state().lr > 0.0);
            if projection == (Projection::Sign { every: 0 }) {
                assert!(run.params.iter().all(|&x| is_pm1(x)), "sign at epoch end broken");
            }
        }
        run
    };
    let a = train(fresh.clone());
    let b = train(fresh);
    let same = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits());
    assert!(same(&a.params, &b.params) && same(&a.grad, &b.grad), "same seed, different bits");
    assert_eq!(a.chains, b.chains, "same seed, different chains");
});
