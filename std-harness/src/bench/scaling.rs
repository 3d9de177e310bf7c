//! `rapid bench scaling`: one training step of `pid-lowrank`, `pid-formed-w` and `cd:10` over
//! a sweep of sizes `N = V + H` (`V = H/4`), and the slopes of `log(time)` against `log(N)`.

use std::fmt::Write as _;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use rapid_core::blocks::{accumulate_phase, block_scratch_len, Workspace, BLOCK_ROWS};
use rapid_core::dense::{DenseDims, DenseRbm};
use rapid_core::kernels::{self, gemm, gemm_pack_len, GemmDims, MatMut, MatRef};
use rapid_core::optim::{Adam, LrSchedule, Optimizer, Projection, Sgd};
use rapid_core::spins::sign_f32;
use rapid_core::step::{Buffers, Engine, Method as CoreMethod, Shape, StepConfig};
use rapid_core::{Dims, NegativePhase, RaModel};
use serde_json::json;

use super::{machine_line, median, secs, BenchError};
use crate::data::random;
use crate::modelio::AtomicFile;
use crate::outln;
use crate::plot::{draw_loglog, Line, CD, PURPLE, RAPID};
use crate::run::initial_params;
use crate::seed::{stream, Rng, Stream};

#[derive(Args, Debug)]
#[command(after_long_help = "\
What is measured: the time of one training step (one batch update: gradient and optimiser) for
a sweep of model sizes N = V + H, with V = H/4 (V = N/5, H = 4N/5), fixed K patterns and batch
B, on seeded random +-1 data:

  pid-lowrank   the core's PID gradient (negative phase: the K signed visible patterns), SGD
                update (lr 0.02) and sign projection; W is never formed: O((B+K) K (V+H))
                per step
  pid-formed-w  the same gradient the way an implementation that forms W computes it: form
                W = Xi_v^T Xi_h / sqrt(K) (V x H), the data and pattern phases from the dense W
                (the core's dense code), the W gradient chained back to the patterns
                (g_Xi_v = Xi_h G_W^T / sqrt(K), g_Xi_h = Xi_v G_W / sqrt(K)), SGD update
                and sign projection: O((B+K) V H) per step
  cd:10         the core's CD-10 gradient and an Adam update (lr 0.001) on a dense model of the
                same V, H, W ~ N(0, 0.01^2): O(10 B V H) per step

For each size and method: one untimed step, then --repeats timed runs of S steps each (S chosen
so that a run takes at least 50 ms, at least 1); the median of the per-step times is reported.
The slope is the least-squares fit of log(seconds per step) against log(N). With V = H/4,
V H = 4 N^2 / 25: the dense methods tend to slope 2, the low-rank one to slope 1.

Writes to DIR: scaling.csv (method,N,V,H,seconds_per_step), scaling.png and scaling.svg
(log-log, one line per method) and scaling.json (sizes, K, batch, isa, per-method slopes and
points). Prints a table and the slopes.")]
pub(super) struct ScalingArgs {
    /// Output folder (created if missing).
    #[arg(long, value_name = "DIR", default_value = "bench-scaling")]
    out: PathBuf,
    /// Sizes N = V + H, comma-separated, each a multiple of 5 (V = N/5, H = 4N/5), at least
    /// two different ones [default: 250,500,1000,2000,4000,8000].
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<usize>>,
    /// Patterns K of the RA models.
    #[arg(long, default_value_t = 20, allow_hyphen_values = true)]
    patterns: usize,
    /// Images per step B.
    #[arg(long, default_value_t = 64, allow_hyphen_values = true)]
    batch: usize,
    /// Timed runs per size and method (the median is reported).
    #[arg(long, default_value_t = 3, allow_hyphen_values = true)]
    repeats: usize,
    /// Seed of every random choice (data, initial parameters, Gibbs draws).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    seed: u64,
}

/// The PID gradient computed through the formed weight matrix (the cost model of an
/// implementation that forms `W`), with its buffers.
///
/// With `W = Ξ_vᵀΞ_h/√K` (V×H) and a phase's `W` gradient
/// `G_W = Σ_phases ± (1/|S|) Σ_s v_s ⊗ tanh(Wᵀv_s)` ([`accumulate_phase`]), the chain rule
/// through `W_iα = (1/√K) Σ_k ξᵏ_{v,i} ξᵏ_{h,α}` gives
///
/// ```text
/// g_v[k][i] = (1/√K) Σ_α ξᵏ_{h,α} G_W[i][α]     (g_Ξv = Ξ_h G_Wᵀ / √K, K×V)
/// g_h[k][α] = (1/√K) Σ_i ξᵏ_{v,i} G_W[i][α]     (g_Ξh = Ξ_v G_W / √K,  K×H)
/// ```
///
/// which is the core's PID phase (`rapid_core::ra::pid`), `g_v = (1/(|S|√K)) Σ_s u_s v_sᵀ` with `u_s = Ξ_h T_s`, and
/// `g_h = (1/(|S|√K)) Σ_s m_s T_sᵀ` with `m_s = Ξ_v v_s`: the same numbers, at O(|S|·V·H)
/// instead of O(|S|·K·(V+H)).
#[derive(Clone, Debug)]
pub struct FormedW {
    dims: Dims,
    w: Vec<f32>,
    gw: Vec<f32>,
    neg: Vec<f32>,
    scratch: Vec<f32>,
    pack: Vec<f32>,
}

impl FormedW {
    /// Buffers for models of `dims`: `W` and its gradient (V·H each), the K negative samples.
    pub fn new(dims: Dims) -> Self {
        let dd = DenseDims::new(dims.visible, dims.hidden, false);
        let isa = kernels::active();
        FormedW {
            dims,
            w: vec![0.0; dims.weights_len()],
            gw: vec![0.0; dims.weights_len()],
            neg: vec![0.0; dims.patterns * dims.visible],
            scratch: vec![0.0; block_scratch_len(isa, dd.visible, dd.hidden, 0, BLOCK_ROWS)],
            pack: vec![0.0; gemm_pack_len(isa)],
        }
    }

    /// The `pid` step direction `∇ = g(batch) − g({sign ξᵏ_v})` (replaces `grad`), with the
    /// positive phase summed over the batch rows and divided by `divisor` (`None`: the row
    /// count), as the core's `pid` step computes it.
    ///
    /// # Panics
    /// If the model's sizes differ from `new`'s, `batch.len()` is not a multiple of `V` or
    /// `grad.len() != K(V+H)`.
    pub fn pid_gradient<S: AsRef<[f32]>>(
        &mut self,
        model: &RaModel<S>,
        batch: &[f32],
        divisor: Option<NonZeroUsize>,
        grad: &mut [f32],
    ) {
        let d = self.dims;
        assert_eq!(model.dims(), d, "model sizes differ from the buffers'");
        assert_eq!(batch.len() % d.visible, 0, "batch rows must have V entries");
        assert_eq!(grad.len(), d.xi_len(), "grad must have K·(V+H) entries");
        let rows = batch.len() / d.visible;
        let weight = divisor.map_or(1.0, |d| rows as f32 / d.get() as f32);
        // W = Ξ_vᵀΞ_h/√K, formed every step (the same GEMM kernels as the low-rank code).
        let (s, wd, xi) = (model.inv_sqrt_k(), d.width(), model.xi());
        let xv = MatRef { data: xi, rs: wd, cs: 1 }; // K × V
        let xh = MatRef { data: &xi[d.visible..], rs: wd, cs: 1 }; // K × H
        let (v, h, k) = (d.visible, d.hidden, d.patterns);
        self.w.fill(0.0);
        gemm(
            GemmDims { m: v, n: h, k },
            s,
            xv.t(),
            xh,
            MatMut { data: &mut self.w, rs: h },
            &mut self.pack,
        );
        for (k, row) in self.neg.chunks_exact_mut(d.visible).enumerate() {
            for (x, &p) in row.iter_mut().zip(model.xi_v(k)) {
                *x = sign_f32(p);
            }
        }
        // G_W from the dense W: data phase minus pattern phase.
        let dense = DenseRbm::new(&self.w[..], DenseDims::new(d.visible, d.hidden, false));
        self.gw.fill(0.0);
        let mut ws = Workspace::new(&mut self.scratch, BLOCK_ROWS);
        accumulate_phase(&dense, batch, weight, &mut self.gw, &mut ws);
        accumulate_phase(&dense, &self.neg, -1.0, &mut self.gw, &mut ws);
        // Chain rule back to the patterns: g_Ξv = Ξ_h G_Wᵀ/√K, g_Ξh = Ξ_v G_W/√K.
        grad.fill(0.0);
        let gw = MatRef::row_major(&self.gw, h); // V × H
        gemm(
            GemmDims { m: k, n: v, k: h },
            s,
            xh,
            gw.t(),
            MatMut { data: grad, rs: wd },
            &mut self.pack,
        );
        gemm(
            GemmDims { m: k, n: h, k: v },
            s,
            xv,
            gw,
            MatMut { data: &mut grad[v..], rs: wd },
            &mut self.pack,
        );
    }
}

/// The three methods of `rapid bench scaling`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalingMethod {
    /// The core's low-rank PID step.
    PidLowRank,
    /// The same PID step through the formed `W` ([`FormedW`]).
    PidFormedW,
    /// The core's CD-10 step on a dense model.
    Cd10,
}

impl ScalingMethod {
    /// All three, in output order.
    pub const ALL: [ScalingMethod; 3] =
        [ScalingMethod::PidLowRank, ScalingMethod::PidFormedW, ScalingMethod::Cd10];

    /// Name in files: `pid-lowrank`, `pid-formed-w`, `cd:10`.
    pub fn name(self) -> &'static str {
        match self {
            ScalingMethod::PidLowRank => "pid-lowrank",
            ScalingMethod::PidFormedW => "pid-formed-w",
            ScalingMethod::Cd10 => "cd:10",
        }
    }

    /// Legend label.
    pub fn label(self) -> &'static str {
        match self {
            ScalingMethod::PidLowRank => "PID, low rank (W never formed)",
            ScalingMethod::PidFormedW => "PID, W formed each step",
            ScalingMethod::Cd10 => "CD-10, dense W",
        }
    }

    fn color(self) -> (u8, u8, u8) {
        match self {
            ScalingMethod::PidLowRank => RAPID,
            ScalingMethod::PidFormedW => PURPLE,
            ScalingMethod::Cd10 => CD,
        }
    }
}

/// SGD of the paper's RAPID set-up (η = 0.02, no momentum, no weight decay).
const PID_SGD: Sgd = Sgd { lr: 0.02, momentum: 0.0, weight_decay: 0.0 };

/// Gibbs steps of the CD baseline.
const CD_K: u32 = 10;

/// A model in training on a fixed batch, one core step at a time: the buffers of an
/// [`Engine`], and for `pid-formed-w` the formed-`W` gradient in place of the core's phases.
struct Run {
    engine: Engine,
    params: Vec<f32>,
    opt: Vec<f32>,
    grad: Vec<f32>,
    lane_grad: Vec<f32>,
    negs: Vec<f32>,
    scratch: Vec<f32>,
    formed: Option<FormedW>,
    rng: Rng,
}

impl Run {
    /// Initial parameters as `rapid train` draws them ([`initial_params`]).
    /// The PID methods sign the patterns after every step (`--projection sign:1`).
    fn new(method: ScalingMethod, dims: Dims, batch: usize, mut rng: Rng) -> Self {
        let (shape, cfg) = match method {
            ScalingMethod::PidLowRank | ScalingMethod::PidFormedW => (
                Shape::Ra(dims),
                StepConfig {
                    method: CoreMethod::Pid(NegativePhase::Patterns),
                    optimizer: Optimizer::Sgd(PID_SGD),
                    projection: Projection::Sign { every: 1 },
                    schedule: LrSchedule { decay: 1.0, min: 0.0, start_epoch: 0 },
                    batch,
                    block_rows: BLOCK_ROWS,
                },
            ),
            ScalingMethod::Cd10 => (
                Shape::Dense(DenseDims::new(dims.visible, dims.hidden, false)),
                StepConfig {
                    method: CoreMethod::Cd { k: CD_K },
                    optimizer: Optimizer::Adam(Adam { lr: 0.001, ..Adam::default() }),
                    projection: Projection::None,
                    schedule: LrSchedule { decay: 1.0, min: 0.0, start_epoch: 0 },
                    batch,
                    block_rows: BLOCK_ROWS,
                },
            ),
        };
        let engine = Engine::new(shape, cfg).expect("the scaling sizes were validated");
        let n = engine.param_len();
        let params = initial_params(shape, &mut rng);
        Run {
            params,
            opt: vec![0.0; engine.opt_len()],
            grad: vec![0.0; n],
            lane_grad: vec![0.0; engine.lane_grad_len()],
            negs: vec![0.0; engine.negatives_len()],
            scratch: vec![0.0; engine.scratch_len(kernels::active())],
            formed: (method == ScalingMethod::PidFormedW).then(|| FormedW::new(dims)),
            engine,
            rng,
        }
    }

    /// One update on `batch`.
    fn step(&mut self, batch: &[f32]) {
        let Some(formed) = &mut self.formed else {
            let mut bufs = Buffers {
                params: &mut self.params,
                opt: &mut self.opt,
                grad: &mut self.grad,
                lane_grad: &mut self.lane_grad,
                negatives: &mut self.negs,
                chains: &mut [],
                scratch: &mut self.scratch,
            };
            self.engine.step(&mut bufs, batch, None, None, &mut self.rng);
            return;
        };
        let Shape::Ra(dims) = self.engine.shape() else { unreachable!("formed W is PID") };
        let rows = batch.len() / dims.visible;
        let (p, negs, sc) = (&self.params[..], &mut self.negs, &mut self.scratch);
        let up = self.engine.begin(p, rows, None, negs, sc, &mut self.rng);
        formed.pid_gradient(&RaModel::new_unchecked(p, dims), batch, None, &mut self.grad);
        self.engine.finish(up, &mut self.params, &mut self.opt, &mut self.grad, sc, None);
    }

    fn params_finite(&self) -> bool {
        self.params.iter().all(|x| x.is_finite())
    }
}

/// Settings of `rapid bench scaling`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalingConfig {
    /// Sizes `N = V + H`, each a multiple of 5.
    pub sizes: Vec<usize>,
    /// Patterns `K`.
    pub patterns: usize,
    /// Images per step `B`.
    pub batch: usize,
    /// Timed runs per size and method.
    pub repeats: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

/// The default sweep: `N` from 250 to 8000 (`H` from 200 to 6400).
pub const DEFAULT_SIZES: [usize; 6] = [250, 500, 1000, 2000, 4000, 8000];

/// A timed run lasts at least this long (seconds), so short steps are timed over many.
const MIN_RUN_SECONDS: f64 = 0.05;

impl ScalingConfig {
    /// `(V, H) = (N/5, 4N/5)`, so `V = H/4`.
    pub fn layers(n: usize) -> (usize, usize) {
        (n / 5, n - n / 5)
    }

    /// Checks the sizes, K, batch and repeats.
    ///
    /// # Errors
    /// A one-line message naming the problem.
    pub fn validate(&self) -> Result<(), String> {
        for &n in &self.sizes {
            if n < 5 || n % 5 != 0 {
                return Err(format!(
                    "--sizes: N = {n} is not a positive multiple of 5 (V = N/5, H = 4N/5)"
                ));
            }
        }
        let mut distinct = self.sizes.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 2 {
            return Err("--sizes needs at least two different sizes to fit a slope".into());
        }
        if self.patterns == 0 {
            return Err("--patterns must be at least 1".into());
        }
        if self.batch == 0 {
            return Err("--batch must be at least 1".into());
        }
        if self.repeats == 0 {
            return Err("--repeats must be at least 1".into());
        }
        let biggest = *distinct.last().expect("two sizes");
        let (v, h) = Self::layers(biggest);
        Dims::new(v, h, self.patterns).validate().map_err(|e| format!("N = {biggest}: {e}"))?;
        // Dense W, its gradient and Adam's two moments, plus the batch.
        let bytes = 4 * (4 * v as u128 * h as u128 + (self.batch * v) as u128);
        if bytes > 8 << 30 {
            return Err(format!("N = {biggest} needs about {} MiB, too large", bytes >> 20));
        }
        Ok(())
    }
}

/// One measured size of one method.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalingPoint {
    /// `N = V + H`.
    pub n: usize,
    /// Visible units.
    pub visible: usize,
    /// Hidden units.
    pub hidden: usize,
    /// Median seconds per step.
    pub seconds_per_step: f64,
    /// Steps per timed run.
    pub steps_per_run: usize,
}

/// One method's sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalingCurve {
    /// The method.
    pub method: ScalingMethod,
    /// One point per size, in increasing `N`.
    pub points: Vec<ScalingPoint>,
    /// Least-squares slope of `log(seconds per step)` against `log(N)`.
    pub slope: f64,
}

/// Least-squares slope of `ln y` against `ln x` over the points with positive finite
/// coordinates; NaN when fewer than two distinct `x` remain.
pub fn loglog_slope(points: &[(f64, f64)]) -> f64 {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| x.is_finite() && *x > 0.0 && y.is_finite() && *y > 0.0)
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if pts.len() < 2 || sxx <= 0.0 {
        return f64::NAN;
    }
    sxy / sxx
}

/// Times every method at every size. `progress` gets each point as it is measured.
///
/// # Errors
/// A parameter that stops being finite (named with method and size).
pub fn run_scaling(
    cfg: &ScalingConfig,
    mut progress: impl FnMut(ScalingMethod, &ScalingPoint),
) -> Result<Vec<ScalingCurve>, String> {
    let mut sizes = cfg.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let mut curves: Vec<ScalingCurve> = ScalingMethod::ALL
        .iter()
        .map(|&method| ScalingCurve { method, points: Vec::new(), slope: f64::NAN })
        .collect();
    for &n in &sizes {
        let (v, h) = ScalingConfig::layers(n);
        let dims = Dims::new(v, h, cfg.patterns);
        let batch = random(v, cfg.batch, cfg.seed).train;
        for (mi, curve) in curves.iter_mut().enumerate() {
            let method = curve.method;
            let rng = stream(cfg.seed, Stream::Train, n as u64, mi as u64);
            let mut s = Run::new(method, dims, cfg.batch, rng);
            let t0 = Instant::now();
            s.step(&batch);
            let first = t0.elapsed().as_secs_f64().max(1e-9);
            let steps = ((MIN_RUN_SECONDS / first).ceil() as usize).clamp(1, 100_000);
            let mut per_step = Vec::with_capacity(cfg.repeats);
            for _ in 0..cfg.repeats {
                let t0 = Instant::now();
                for _ in 0..steps {
                    s.step(&batch);
                }
                per_step.push(t0.elapsed().as_secs_f64() / steps as f64);
            }
            if !s.params_finite() {
                return Err(format!(
                    "{} at N = {n}: a parameter became NaN or infinite",
                    method.name()
                ));
            }
            let p = ScalingPoint {
                n,
                visible: v,
                hidden: h,
                seconds_per_step: median(&per_step),
                steps_per_run: steps,
            };
            progress(method, &p);
            curve.points.push(p);
        }
    }
    for c in &mut curves {
        let xy: Vec<(f64, f64)> =
            c.points.iter().map(|p| (p.n as f64, p.seconds_per_step)).collect();
        c.slope = loglog_slope(&xy);
    }
    Ok(curves)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), BenchError> {
    AtomicFile::prepare(path)
        .and_then(|f| f.commit(bytes))
        .map_err(|e| BenchError::work(format!("writing {}: {e}", path.display())))
}

pub(super) fn cmd_scaling(a: ScalingArgs) -> Result<(), BenchError> {
    let cfg = ScalingConfig {
        sizes: a.sizes.clone().unwrap_or_else(|| DEFAULT_SIZES.to_vec()),
        patterns: a.patterns,
        batch: a.batch,
        repeats: a.repeats,
        seed: a.seed,
    };
    cfg.validate().map_err(BenchError::input)?;
    let isa = kernels::active();
    std::fs::create_dir_all(&a.out)
        .map_err(|e| BenchError::input(format!("creating {}: {e}", a.out.display())))?;
    // Fail on an unwritable folder before the sweep.
    drop(
        AtomicFile::prepare(&a.out.join("scaling.csv"))
            .map_err(|e| BenchError::input(format!("cannot write to {}: {e}", a.out.display())))?,
    );
    let wall = Instant::now();
    let curves = run_scaling(&cfg, |m, p| {
        eprintln!(
            "rapid bench scaling: N = {:>5} (V = {}, H = {}) {:<13} {} s per step ({} steps per run)",
            p.n,
            p.visible,
            p.hidden,
            m.name(),
            secs(p.seconds_per_step),
            p.steps_per_run
        )
    })
    .map_err(BenchError::work)?;
    let wall = wall.elapsed().as_secs_f64();

    let mut csv = String::from("method,N,V,H,seconds_per_step\n");
    for c in &curves {
        for p in &c.points {
            let _ = writeln!(
                csv,
                "{},{},{},{},{:e}",
                c.method.name(),
                p.n,
                p.visible,
                p.hidden,
                p.seconds_per_step
            );
        }
    }
    write_file(&a.out.join("scaling.csv"), csv.as_bytes())?;
    let sizes: Vec<usize> = curves[0].points.iter().map(|p| p.n).collect();
    let summary = json!({
        "sizes": sizes,
        "visible": curves[0].points.iter().map(|p| p.visible).collect::<Vec<_>>(),
        "hidden": curves[0].points.iter().map(|p| p.hidden).collect::<Vec<_>>(),
        "layers": "V = H/4 (V = N/5, H = 4N/5)",
        "patterns": cfg.patterns,
        "batch": cfg.batch,
        "repeats": cfg.repeats,
        "isa": isa.name(),
        "threads": 1,
        "seed": cfg.seed,
        "data": "random ±1",
        "wall_seconds": wall,
        "methods": curves.iter().map(|c| json!({
            "method": c.method.name(),
            "label": c.method.label(),
            "slope": if c.slope.is_finite() { Some(c.slope) } else { None },
            "points": c.points.iter().map(|p| json!({
                "N": p.n,
                "V": p.visible,
                "H": p.hidden,
                "seconds_per_step": p.seconds_per_step,
                "steps_per_run": p.steps_per_run,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let mut text = serde_json::to_string_pretty(&summary).expect("JSON");
    text.push('\n');
    write_file(&a.out.join("scaling.json"), text.as_bytes())?;
    let lines: Vec<Line> = curves
        .iter()
        .map(|c| Line {
            label: format!("{} (slope {:.2})", c.method.label(), c.slope),
            color: c.method.color(),
            points: c.points.iter().map(|p| (p.n as f64, p.seconds_per_step)).collect(),
        })
        .collect();
    draw_loglog(
        &a.out.join("scaling"),
        &format!(
            "Time per training step, K = {}, batch {}, V = H/4 ({})",
            cfg.patterns,
            cfg.batch,
            isa.name()
        ),
        "N = V + H",
        "seconds per step",
        &lines,
    )
    .map_err(|e| BenchError::work(format!("drawing {}: {e}", a.out.join("scaling").display())))?;

    // The steps call the core functions directly, on the calling thread.
    outln!("# rapid bench scaling: {}", machine_line(isa, 1));
    outln!(
        "# one step = one batch update; K = {}, batch {}, V = H/4 (V = N/5, H = 4N/5), random ±1 data; median of {} runs; seed {}",
        cfg.patterns, cfg.batch, cfg.repeats, cfg.seed
    );
    let mut head = format!("{:>6} {:>5} {:>5}", "N", "V", "H");
    for c in &curves {
        let _ = write!(head, " {:>14}", c.method.name());
    }
    outln!("{head}  (seconds per step)");
    for (i, p) in curves[0].points.iter().enumerate() {
        let mut row = format!("{:>6} {:>5} {:>5}", p.n, p.visible, p.hidden);
        for c in &curves {
            let _ = write!(row, " {:>14}", secs(c.points[i].seconds_per_step));
        }
        outln!("{row}");
    }
    for c in &curves {
        outln!("# slope of log(time) vs log(N): {:<13} {:.3}", c.method.name(), c.slope);
    }
    outln!("# written to {} ({wall:.1} s)", a.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::RngCore;

    fn rel_err(a: &[f32], b: &[f32]) -> f32 {
        let scale = a.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let diff = a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        diff / scale
    }

    /// The formed-W gradient is the low-rank one: real-valued patterns, a full batch and a
    /// short batch scaled by a larger divisor.
    #[test]
    fn formed_w_gradient_matches_the_low_rank_one() {
        for (v, h, k, b, divisor) in [(7, 11, 3, 5, 0), (16, 40, 8, 3, 0), (13, 9, 5, 2, 6)] {
            let dims = Dims::new(v, h, k);
            let mut rng = stream(11, Stream::Train, v as u64, h as u64);
            let xi: Vec<f32> = (0..dims.xi_len())
                .map(|_| (rng.next_u32() as f32 / u32::MAX as f32) * 2.0 - 1.0)
                .collect();
            let batch = random(v, b, 5).train;
            let model = RaModel::new_unchecked(&xi[..], dims);
            // The core's step gradient (one lane at these sizes), before the optimiser.
            let cfg = StepConfig { batch: b, ..StepConfig::paper_bars() };
            let engine = Engine::new(Shape::Ra(dims), cfg).unwrap();
            assert_eq!(engine.lanes(), 1);
            let mut low = vec![0.0; dims.xi_len()];
            let mut negs = vec![0.0; engine.negatives_len()];
            let mut scratch = vec![0.0; engine.scratch_len(kernels::active())];
            let div = NonZeroUsize::new(divisor);
            let up = engine.begin(&xi, b, div, &mut negs, &mut scratch, &mut rng);
            let (scratch, shared) = engine.split_scratch(&mut scratch);
            let bufs =
                rapid_core::step::LaneBuffers { grad: &mut low, scratch, chains: &mut [], shared };
            engine.lane::<Rng>(&up, 0, &xi, &batch, &negs, bufs);
            let mut formed = vec![0.0; dims.xi_len()];
            FormedW::new(dims).pid_gradient(&model, &batch, div, &mut formed);
            let e = rel_err(&low, &formed);
            assert!(e < 1e-4, "V={v} H={h} K={k}: relative error {e}");
            assert!(low.iter().any(|&g| g.abs() > 1e-3), "a non-trivial gradient");
        }
    }

    #[test]
    fn loglog_slopes() {
        let pts: Vec<(f64, f64)> =
            [250.0, 500.0, 1000.0, 2000.0].iter().map(|&n: &f64| (n, 3e-9 * n.powf(1.7))).collect();
        assert!((loglog_slope(&pts) - 1.7).abs() < 1e-9);
        assert!(loglog_slope(&pts[..1]).is_nan());
        assert!(loglog_slope(&[(1.0, 1.0), (1.0, 2.0)]).is_nan());
    }

    #[test]
    fn a_tiny_sweep_measures_every_method() {
        let cfg = ScalingConfig { sizes: vec![50, 25], patterns: 4, batch: 3, repeats: 1, seed: 2 };
        cfg.validate().unwrap();
        let mut calls = 0;
        let curves = run_scaling(&cfg, |_, _| calls += 1).unwrap();
        assert_eq!(calls, 6);
        for c in &curves {
            assert_eq!(c.points.iter().map(|p| p.n).collect::<Vec<_>>(), [25, 50]);
            assert_eq!((c.points[0].visible, c.points[0].hidden), (5, 20));
            assert!(c.slope.is_finite(), "{}", c.method.name());
        }
        let bad = |f: fn(&mut ScalingConfig)| {
            let mut c = cfg.clone();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.sizes = vec![50, 51]).contains("multiple of 5"));
        assert!(bad(|c| c.sizes = vec![50, 50]).contains("two different"));
        assert!(bad(|c| c.patterns = 0).contains("--patterns"));
        assert!(bad(|c| c.repeats = 0).contains("--repeats"));
    }
}
