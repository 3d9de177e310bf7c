//! `rapid train`: the options, the settings a checkpoint fixes, the run and its table or JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use rapid_core::optim::LrSchedule;
use rapid_core::optim::Projection;
use rapid_harness::checkpoint::{settings_text, Checkpoint};
use rapid_harness::data::{parse_shape, Dataset, DatasetSpec, FileSource};
use rapid_harness::metrics::HdProtocol;
use rapid_harness::modelio::{lock_target, AtomicFile, TargetLock};
use rapid_harness::outln;
use rapid_harness::run::{
    parse_projection, projection_name, Arith, EpochReport, Method, Optimizer, PartialBatch, Preset,
    Track, TrainConfig, TrainError, Trainer,
};
use serde_json::json;

use super::interrupt::{self, command_line};
use super::{fail, json_f32, read_bounded, whole, Progress};

#[derive(Args)]
#[command(after_long_help = "\
Each dataset has a preset, named in the output's first line; any option given overrides it.
  bars4   the paper's Bars 4x4 set-up. RAPID (pid methods): RA model with H=1000, K=8, SGD
          lr 0.02, batch 3, lr decay 0.96 per epoch down to 1e-5, patterns signed at the end
          of each epoch. Baselines (cd, pcd, exact): dense W ~ N(0, 0.01^2), no biases, Adam
          lr 0.001, batch 1, no decay. 300 epochs.
  bas:N   the paper's BAS 12x12 set-up: as bars4 with K=40 and batch 120 (baselines: batch
          120); smaller N: batch ceil(n/55), about 55 updates per epoch as on 12x12. For
          N <= 5 the held-out images (2, 6, 12) are too few to generalise to: the training HD
          falls, the test HD stays near the untrained model's (about 0.3) for every method.
  mnist, idx:, npy:   the authors' MNIST notebook: method pid-gibbs:1, H=3000, K=200, SGD
          lr 0.015, x0.99 per epoch after epoch 100 down to 1e-3, patterns clamped to [-1, 1]
          after every update, 500 epochs, batch 8000 (ceil(n/8) below 16000 training images:
          1000 for mnist); baselines (cd, pcd, exact): dense with biases, H=500, batch
          100, Adam lr 0.001 (the AIS literature's MNIST size). Evaluated with one draw per
          image.

Datasets:
  bars4    Bars 4x4, the paper's split: 10 training and 4 test images, each set closed
           under negation.
  bas:N    Bars and stripes NxN (3 <= N <= 16), 2(2^N-2) images, split 80/20 by
           negation pairs with --split-seed (bas:12 gives 6550/1638).
  mnist    10000 MNIST digits shipped with rapid: 8000 train / 2000 test, 28x28, pixel
           x/255 > 0.3 -> +1 (--binarize T changes 0.3).
  idx:IMAGES[,LABELS]
           IDX files (gzip or plain), e.g. the full MNIST; binarised as mnist; --test idx:...
           for a test set.
  npy:FILE N x V (or N x R x C) NumPy array of +-1 or 0/1 values, any dtype (other values
           need --binarize T: x > T -> +1); --shape RxC for pictures, --test npy:FILE.

Methods:
  pid              RAPID; negative phase from the K signed visible patterns (authors' code)
  pid-hebb         RAPID; <v h>_model ~ (1/K) sum_k xi_k xi_k^T (the paper's eq. 6)
  pid-gibbs:K      RAPID; K block-Gibbs steps from each visible pattern
  cd:K             contrastive divergence, chains start at the batch
  pcd:K[:CHAINS]   persistent contrastive divergence (default 2048 chains)
  exact            exact gradient, model average by enumeration (min(V,H) <= 30)

Metric: reconstruction Hamming distance. Keep some pixels of each image, set the rest to 0,
make one step v->h->v, count the wrong pixels over all V, average over --eval-repeats draws.
Bars keeps the top row; BAS keeps the top row and the left column, because the top row says
nothing about a stripe image; other images keep their top half (flat data: the first half of
the pixels). Random guessing scores 0.5.

--track gs,method,svd,nll adds per evaluated epoch: the Gibbs GS accessibility (10 chains from
random v, 10 Gibbs steps, lowest energy over the exact ground-state energy), the method
accessibility (lowest energy among the negative-phase configurations over the ground state),
the singular values of W, and the exact mean NLL of the training and test sets.

Output: a table on stdout and progress on stderr (a bar on a terminal; elsewhere, such as a
log file, a line starting with # every 5 s at first, less often in long runs, at least once a
minute); with --json, one JSON object per epoch on stdout ({\"epoch\", \"seconds\", \"lr\",
\"hd_train\", \"hd_test\", plus tracked keys; \"seconds\" is the training time of that epoch,
evaluation excluded; values are null in epochs not evaluated), then one object with
\"final\": true, and no progress.

Evaluating an epoch (the HD's draws per image, and --track) can cost more than training it,
so only some epochs are evaluated: by default those the table prints (1, 2, 5, 10, 20, 50, ...
or every --log-every epochs, the first and the last), also with --json; --eval-every N
evaluates every N-th epoch and the last instead. An epoch's numbers do not depend on which other epochs are
evaluated: the evaluation's random draws come from the seed and the epoch.

Ctrl-C (SIGINT) or SIGTERM stops a run: unfinished files are removed, one line on stderr
gives the last finished epoch, the last checkpoint, and the command that resumes from it;
exit code 130 (SIGINT) or 143 (SIGTERM). The run stops at the end of an epoch, or within a
second when an epoch takes longer.")]
pub(crate) struct TrainArgs {
    /// Dataset: bars4, bas:N, mnist, idx:IMAGES[,LABELS] or npy:FILE.
    #[arg(long, default_value = "bars4")]
    dataset: DatasetSpec,
    /// Test images for idx:/npy: data (idx:IMAGES[,LABELS] or npy:FILE).
    #[arg(long, value_name = "FILE")]
    test: Option<FileSource>,
    /// Binarisation threshold of grey levels: x > T -> +1 (IDX u8 pixels are divided by 255
    /// first) [default: 0.3 for mnist and idx:; npy: values must be +-1 or 0/1].
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    binarize: Option<f32>,
    /// Image shape RxC of flat npy: rows (for pictures and the HD mask).
    #[arg(long, value_name = "RxC", value_parser = parse_shape)]
    shape: Option<(usize, usize)>,
    /// Method: pid, pid-hebb, pid-gibbs:K, cd:K, pcd:K[:CHAINS] or exact [default: the
    /// dataset's preset: pid, or pid-gibbs:1 for mnist, idx: and npy:].
    #[arg(long)]
    method: Option<Method>,
    /// Hidden units H [default: 1000].
    #[arg(long, allow_hyphen_values = true, value_parser = whole::<usize>)]
    hidden: Option<usize>,
    /// Patterns K, RA models [default: 8].
    #[arg(long, allow_hyphen_values = true, value_parser = whole::<usize>)]
    patterns: Option<usize>,
    /// Visible and hidden biases, dense models.
    #[arg(long)]
    biases: bool,
    /// Training epochs [default: 300; 500 for mnist, idx:, npy:].
    #[arg(long, allow_hyphen_values = true, value_parser = whole::<u32>)]
    epochs: Option<u32>,
    /// Images per update [default: 3 for pid, 1 otherwise].
    #[arg(long, allow_hyphen_values = true, value_parser = whole::<usize>)]
    batch: Option<usize>,
    /// The short last batch of an epoch: scaled (positive phase divided by --batch, so every
    /// image weighs the same; the authors' code), mean (plain mean), or drop.
    #[arg(long, default_value = "scaled")]
    partial_batch: PartialBatch,
    /// Optimizer: sgd, adam, or adam-epoch (Adam with the authors' reference code's bias
    /// correction by epoch number instead of update count) [default: sgd for pid, adam
    /// otherwise].
    #[arg(long)]
    optimizer: Option<Optimizer>,
    /// Initial learning rate [default: 0.02 for pid, 0.001 otherwise].
    #[arg(long, allow_hyphen_values = true)]
    lr: Option<f32>,
    /// Learning-rate decay γ per epoch: lr ← max(γ·lr, lr_min) [default: 0.96 for pid, 1].
    #[arg(long, allow_hyphen_values = true)]
    lr_decay: Option<f32>,
    /// Learning-rate floor [default: 1e-5 for pid, 0].
    #[arg(long, allow_hyphen_values = true)]
    lr_min: Option<f32>,
    /// Epochs before the decay starts [default: 0; 100 for mnist, idx:, npy:].
    #[arg(long, allow_hyphen_values = true, value_parser = whole::<u32>)]
    lr_decay_start: Option<u32>,
    /// SGD momentum in [0, 1).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    momentum: f32,
    /// SGD weight decay.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    weight_decay: f32,
    /// RA projection: sign (each epoch end), sign:N (every N updates), clamp:X (every update),
    /// none [default: sign for pid, none otherwise].
    #[arg(long, value_parser = parse_projection)]
    projection: Option<Projection>,
    /// Arithmetic of the training step: f32, or int (integer PID: i8 fixed-point latents
    /// with bit-packed signs, popcount kernels, no floating point in the step; pid and
    /// pid-gibbs:K with plain SGD and the sign projection on ±1 data; single-threaded).
    #[arg(long, default_value = "f32", value_name = "ARITH")]
    arith: Arith,
    /// Seed of every random choice in training and evaluation.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true, value_parser = whole::<u64>)]
    seed: u64,
    /// Seed of the BAS train/test split.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true, value_parser = whole::<u64>)]
    split_seed: u64,
    /// Evaluate every N-th epoch and the last (0: the last only) instead of the epochs the
    /// table prints; table rows of epochs not evaluated show - [default: the epochs the table
    /// prints, see --log-every; also with --json].
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = whole::<u32>)]
    eval_every: Option<u32>,
    /// Draws per image in the HD evaluation [default: 100; 1 for mnist, idx:, npy:].
    #[arg(long, allow_hyphen_values = true, value_parser = whole::<usize>)]
    eval_repeats: Option<usize>,
    /// Gibbs steps v -> h -> v per HD draw [default: 1, the paper's protocol].
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = whole::<usize>)]
    eval_steps: Option<usize>,
    /// Hold the kept pixels at the image's values during the HD steps (image completion).
    #[arg(long)]
    eval_clamp: bool,
    /// Also track, comma-separated: gs, method, svd, nll.
    #[arg(long, default_value = "")]
    track: Track,
    /// Write the trained model to FILE (atomically; checked for writability before training).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Save a checkpoint to FILE (atomically) every --checkpoint-every epochs and at the end:
    /// model, optimiser state, PCD chains, epoch. A failed run (one that diverges: a
    /// parameter beyond ±1e6, NaN or infinite) leaves the last good one.
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Epochs between checkpoints.
    #[arg(long, value_name = "N", requires = "checkpoint", allow_hyphen_values = true, value_parser = whole::<u32>)]
    checkpoint_every: Option<u32>,
    /// Continue the run saved in FILE; it ends bit-identical to an uninterrupted run (unless an
    /// optimiser setting changes). The
    /// settings come from the checkpoint: training options may be repeated with the same
    /// values (a different value is refused, naming both), --epochs may extend the run, the
    /// evaluation options (--eval-*, --track) may change, the optimiser's (--lr, --lr-decay,
    /// --lr-min, --lr-decay-start, --momentum, --weight-decay) may change too (a new --lr is
    /// the next epoch's; the header names each change: how a diverged run is recovered), and
    /// --out, --checkpoint, --checkpoint-every and --json apply as usual.
    #[arg(long, value_name = "FILE")]
    resume: Option<PathBuf>,
    /// Machine-readable output: one JSON object per line on stdout, no progress bar.
    #[arg(long)]
    json: bool,
    /// Print every N-th epoch in the table, and the first and the last [default: epochs 1,
    /// 2, 5, 10, 20, 50, ... and the last]. Unless --eval-every is given, these are the
    /// epochs evaluated (also with --json).
    #[arg(long, value_name = "N", allow_hyphen_values = true, value_parser = whole::<u32>)]
    log_every: Option<u32>,
}

/// The settings a checkpoint records: on --resume, the training ones must equal the
/// checkpoint's, the evaluation ones (`eval_*`, `track`) may change.
const SETTINGS: [&str; 26] = [
    "dataset",
    "test",
    "binarize",
    "shape",
    "arith",
    "method",
    "hidden",
    "patterns",
    "biases",
    "batch",
    "partial_batch",
    "optimizer",
    "lr",
    "lr_decay",
    "lr_min",
    "lr_decay_start",
    "momentum",
    "weight_decay",
    "projection",
    "seed",
    "split_seed",
    "eval_every",
    "eval_repeats",
    "eval_steps",
    "eval_clamp",
    "track",
];

/// Epochs shown in the human-readable table: every `log_every`-th, or by default 1, 2, 5, 10,
/// 20, 50, …; and the first and the last.
fn shown(epoch: u32, last: u32, log_every: Option<u32>) -> bool {
    if epoch == 1 || epoch == last {
        return true;
    }
    if let Some(n) = log_every {
        return epoch.is_multiple_of(n);
    }
    let mut e = epoch;
    while e.is_multiple_of(10) {
        e /= 10;
    }
    matches!(e, 1 | 2 | 5)
}

/// `TrainConfig::eval_every` of a run that evaluates the epochs the table prints (the
/// default; kept so in its checkpoints). The library reads it as "every 2³² − 1 epochs",
/// that is the last only.
const EVAL_SHOWN: u32 = u32::MAX;

/// Whether `rapid train` evaluates `epoch`: the last always; with `eval_every` =
/// [`EVAL_SHOWN`] the epochs the table prints, else every `eval_every`-th (none for 0).
fn evaluated(epoch: u32, last: u32, eval_every: u32, log_every: Option<u32>) -> bool {
    match eval_every {
        _ if epoch == last => true,
        EVAL_SHOWN => shown(epoch, last, log_every),
        0 => false,
        n => epoch.is_multiple_of(n),
    }
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"))
}

/// The training settings given on the command line (not defaulted).
pub(crate) fn explicit_settings(m: &ArgMatches) -> Vec<&'static str> {
    SETTINGS.into_iter().filter(|id| m.value_source(id) == Some(ValueSource::CommandLine)).collect()
}

fn train_config(a: &TrainArgs, data: &Dataset) -> (Preset, TrainConfig) {
    let preset = Preset::for_data(data, a.method);
    let p = preset.config;
    let cfg = TrainConfig {
        method: preset.method,
        hidden: a.hidden.unwrap_or(p.hidden),
        patterns: a.patterns.unwrap_or(p.patterns),
        biases: a.biases,
        epochs: a.epochs.unwrap_or(p.epochs),
        batch: a.batch.unwrap_or(p.batch),
        partial_batch: a.partial_batch,
        optimizer: a.optimizer.unwrap_or(p.optimizer),
        lr: a.lr.unwrap_or(p.lr),
        momentum: a.momentum,
        weight_decay: a.weight_decay,
        projection: a.projection.unwrap_or(p.projection),
        schedule: LrSchedule {
            decay: a.lr_decay.unwrap_or(p.schedule.decay),
            min: a.lr_min.unwrap_or(p.schedule.min),
            start_epoch: a.lr_decay_start.unwrap_or(p.schedule.start_epoch),
        },
        seed: a.seed,
        eval_every: a.eval_every.unwrap_or(EVAL_SHOWN),
        eval: HdProtocol {
            repeats: a.eval_repeats.unwrap_or(p.eval.repeats),
            steps: a.eval_steps.unwrap_or(p.eval.steps),
            clamp: a.eval_clamp || p.eval.clamp,
        },
        track: a.track,
        arith: a.arith,
    };
    (preset, cfg)
}

/// Reads the dataset a run names.
fn load_data(spec: &DatasetSpec, split_seed: u64) -> Result<Dataset, String> {
    Dataset::load(spec, split_seed)
}

fn report_json(r: &EpochReport) -> serde_json::Value {
    let mut j = json!({"epoch": r.epoch, "seconds": r.seconds, "lr": json_f32(r.lr), "hd_train": r.hd_train, "hd_test": r.hd_test});
    let o = j.as_object_mut().expect("object");
    if r.gs_access.is_some() {
        o.insert("gs_access".into(), json!(r.gs_access));
    }
    if r.method_access.is_some() {
        o.insert("method_access".into(), json!(r.method_access));
    }
    if let Some(s) = &r.svd {
        o.insert("singular_values".into(), json!(s));
    }
    if r.nll_train.is_some() {
        o.insert("nll_train".into(), json!(r.nll_train));
        o.insert("nll_test".into(), json!(r.nll_test));
    }
    j
}

/// A run about to start: its data, settings and trainer, and the preset it came from
/// (`None` when resumed).
struct Started {
    dataset: DatasetSpec,
    split_seed: u64,
    cfg: TrainConfig,
    data: Dataset,
    trainer: Trainer,
    preset: Option<Preset>,
    /// The settings a resumed run changes, as `--lr 0.01 (was 0.02)`.
    changes: Vec<String>,
}

/// Where a run starts: fresh from the arguments, or from a checkpoint.
fn start(a: &TrainArgs, explicit: &[&str]) -> Result<Started, String> {
    let Some(path) = &a.resume else {
        let spec = a.dataset.clone().with_options(a.test.clone(), a.binarize, a.shape)?;
        let data = load_data(&spec, a.split_seed)?;
        let (preset, cfg) = train_config(a, &data);
        let trainer = Trainer::new(&cfg, &data).map_err(|e| e.to_string())?;
        return Ok(Started {
            dataset: spec,
            split_seed: a.split_seed,
            cfg,
            data,
            trainer,
            preset: Some(preset),
            changes: Vec::new(),
        });
    };
    let bytes = read_bounded(path)?;
    let ck = Checkpoint::decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut ck = ck;
    let (mut cfg, changes) = resumed_config(a, explicit, &ck)
        .map_err(|c| format!("--resume {}: {}", path.display(), c.join("; ")))?;
    // A new learning rate is the next epoch's; the schedule goes on from it.
    if cfg.lr != ck.config.lr {
        ck.state.lr = cfg.lr;
    }
    if let Some(e) = a.epochs {
        if e < ck.state.epoch {
            return Err(format!(
                "--epochs {e} is before the checkpoint's epoch {}",
                ck.state.epoch
            ));
        }
        cfg.epochs = e;
    }
    let data = load_data(&ck.dataset, ck.split_seed)?;
    cfg.validate(&data).map_err(|e| e.to_string())?;
    let trainer =
        Trainer::restore(&cfg, &data, ck.state).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Started {
        dataset: ck.dataset,
        split_seed: ck.split_seed,
        cfg,
        data,
        trainer,
        preset: None,
        changes,
    })
}

/// The settings of a resumed run: the checkpoint's, with the evaluation options given on the
/// command line (they change what is measured, not what is trained) and the optimiser's
/// (learning rate, its schedule, momentum, weight decay: returned as changes, with both
/// values). Any other training setting given on the command line must equal the
/// checkpoint's; every one that does not is returned, with both values.
fn resumed_config(
    a: &TrainArgs,
    explicit: &[&str],
    ck: &Checkpoint,
) -> Result<(TrainConfig, Vec<String>), Vec<String>> {
    let mut cfg = ck.config;
    let c = ck.config;
    let mut conflicts = Vec::new();
    let data_ids = ["dataset", "test", "binarize", "shape"];
    if explicit.iter().any(|id| data_ids.contains(id)) {
        let base =
            if explicit.contains(&"dataset") { a.dataset.clone() } else { ck.dataset.clone() };
        match base.with_options(a.test.clone(), a.binarize, a.shape) {
            Ok(given) if given == ck.dataset => {}
            Ok(given) => {
                let shown = if given.to_string() == ck.dataset.to_string() {
                    format!("{given} with another test file, threshold or shape")
                } else {
                    given.to_string()
                };
                conflicts.push(format!("--dataset {shown} (the checkpoint has {})", ck.dataset));
            }
            Err(e) => conflicts.push(e),
        }
    }
    let mut check = |id: &str, given: String, saved: String| {
        if given != saved {
            conflicts
                .push(format!("--{} {given} (the checkpoint has {saved})", id.replace('_', "-")));
        }
    };
    let opt = |x: Option<String>| x.unwrap_or_default();
    let mut changes = Vec::new();
    let mut changed = |id: &str, given: String, saved: String| {
        if given != saved {
            changes.push(format!("--{} {given} (was {saved})", id.replace('_', "-")));
        }
    };
    for &id in explicit {
        match id {
            "arith" => check(id, a.arith.to_string(), c.arith.to_string()),
            "method" => check(id, opt(a.method.map(|m| m.to_string())), c.method.to_string()),
            "hidden" => check(id, opt(a.hidden.map(|x| x.to_string())), c.hidden.to_string()),
            "patterns" => check(id, opt(a.patterns.map(|x| x.to_string())), c.patterns.to_string()),
            "biases" => check(id, a.biases.to_string(), c.biases.to_string()),
            "batch" => check(id, opt(a.batch.map(|x| x.to_string())), c.batch.to_string()),
            "partial_batch" => check(id, a.partial_batch.to_string(), c.partial_batch.to_string()),
            "optimizer" => {
                check(id, opt(a.optimizer.map(|x| x.to_string())), c.optimizer.to_string())
            }
            // The optimiser's settings may change (lowering the learning rate is how a run
            // that diverged is recovered); each change is named in the header.
            "lr" => {
                let lr = a.lr.unwrap_or(c.lr);
                changed(id, lr.to_string(), c.lr.to_string());
                cfg.lr = lr;
            }
            "lr_decay" => {
                let d = a.lr_decay.unwrap_or(c.schedule.decay);
                changed(id, d.to_string(), c.schedule.decay.to_string());
                cfg.schedule.decay = d;
            }
            "lr_min" => {
                let m = a.lr_min.unwrap_or(c.schedule.min);
                changed(id, m.to_string(), c.schedule.min.to_string());
                cfg.schedule.min = m;
            }
            "lr_decay_start" => {
                let e = a.lr_decay_start.unwrap_or(c.schedule.start_epoch);
                changed(id, e.to_string(), c.schedule.start_epoch.to_string());
                cfg.schedule.start_epoch = e;
            }
            "momentum" => {
                changed(id, a.momentum.to_string(), c.momentum.to_string());
                cfg.momentum = a.momentum;
            }
            "weight_decay" => {
                changed(id, a.weight_decay.to_string(), c.weight_decay.to_string());
                cfg.weight_decay = a.weight_decay;
            }
            "projection" => {
                check(id, opt(a.projection.map(projection_name)), projection_name(c.projection))
            }
            "seed" => check(id, a.seed.to_string(), c.seed.to_string()),
            "split_seed" => check(id, a.split_seed.to_string(), ck.split_seed.to_string()),
            // What is measured may change.
            "eval_every" => cfg.eval_every = a.eval_every.unwrap_or(c.eval_every),
            "eval_repeats" => cfg.eval.repeats = a.eval_repeats.unwrap_or(c.eval.repeats),
            "eval_steps" => cfg.eval.steps = a.eval_steps.unwrap_or(c.eval.steps),
            "eval_clamp" => cfg.eval.clamp = a.eval_clamp,
            "track" => cfg.track = a.track,
            _ => {} // the data options, above
        }
    }
    if conflicts.is_empty() {
        Ok((cfg, changes))
    } else {
        Err(conflicts)
    }
}

/// The last checkpoint of a run: its file, its epoch, and whether this run wrote it (or it
/// is the one resumed).
type Saved<'a> = Option<(&'a Path, u32, bool)>;

/// What the line printed on Ctrl-C says after "rapid: interrupted by SIGINT": the epochs
/// done, the last checkpoint (`saved`: its file, its epoch, and whether this run wrote it),
/// and the command that resumes it.
fn interrupt_note(a: &TrainArgs, done: u32, epochs: u32, saved: Saved) -> String {
    let mut s = format!(" after epoch {done} of {epochs}");
    let Some((path, epoch, written)) = saved else {
        match (&a.checkpoint, a.checkpoint_every) {
            (Some(_), every) => {
                let every = every.unwrap_or(1);
                let due = ((done / every + 1) * every).min(epochs);
                s += &format!("; no checkpoint written yet (the first was due after epoch {due})");
            }
            (None, _) => s += "; nothing saved (--checkpoint FILE saves a run to resume)",
        }
        return s;
    };
    let mut args: Vec<String> = vec!["train".into(), "--resume".into(), path.display().to_string()];
    // The checkpoint resumed holds its own total of epochs; one this run wrote holds this run's.
    if let (false, Some(e)) = (written, a.epochs) {
        args.extend(["--epochs".into(), e.to_string()]);
    }
    if let Some(c) = &a.checkpoint {
        args.extend(["--checkpoint".into(), c.display().to_string()]);
    }
    if let Some(n) = a.checkpoint_every {
        args.extend(["--checkpoint-every".into(), n.to_string()]);
    }
    if let Some(o) = &a.out {
        args.extend(["--out".into(), o.display().to_string()]);
    }
    if let Some(n) = a.log_every {
        args.extend(["--log-every".into(), n.to_string()]);
    }
    if a.json {
        args.push("--json".into());
    }
    s += &format!(
        "; checkpoint {} holds epoch {epoch}; resume with: {}",
        path.display(),
        command_line(&args)
    );
    s
}

pub(crate) fn cmd_train(a: TrainArgs, explicit: Vec<&'static str>) -> ExitCode {
    if a.checkpoint_every == Some(0) {
        return fail(2, "--checkpoint-every must be at least 1");
    }
    if a.log_every == Some(0) {
        return fail(2, "--log-every must be at least 1");
    }
    let Started { dataset, split_seed, cfg, data, mut trainer, preset, changes } =
        match start(&a, &explicit) {
            Ok(x) => x,
            Err(e) => return fail(2, e),
        };
    let out = match a.out.as_deref().map(AtomicFile::prepare).transpose() {
        Ok(o) => o,
        Err(e) => {
            let path = a.out.as_deref().unwrap_or(Path::new("")).display();
            return fail(2, format_args!("cannot write --out {path}: {e}"));
        }
    };
    if let Some(ck) = &a.checkpoint {
        if let Err(e) = AtomicFile::prepare(ck) {
            return fail(2, format_args!("cannot write --checkpoint {}: {e}", ck.display()));
        }
    }
    // Another run writing the same files would replace them under this one: each target is
    // locked for the whole run (once, when --out and --checkpoint name the same file).
    let mut locks: Vec<TargetLock> = Vec::new();
    for (flag, path) in [("--out", &a.out), ("--checkpoint", &a.checkpoint)] {
        let Some(path) = path else { continue };
        if locks.iter().any(|l| l.target() == path.as_path()) {
            continue;
        }
        match lock_target(path) {
            Ok(l) => locks.push(l),
            Err(e) => return fail(2, format_args!("{flag}: {e}")),
        }
    }
    let every = a.checkpoint_every.unwrap_or(1);
    let model_desc = if cfg.method.is_ra() {
        format!("RA V={} H={} K={}", data.visible(), cfg.hidden, cfg.patterns)
    } else {
        format!(
            "dense V={} H={}{}",
            data.visible(),
            cfg.hidden,
            if cfg.biases { " with biases" } else { "" }
        )
    };
    let header = format!(
        "{}{}: {model_desc}, {} train / {} test images; method {}{}, {} lr {} (decay {}{}, min {}), batch {} ({} last batch), momentum {}, weight decay {}, projection {}, seed {}{}",
        dataset,
        preset.map_or_else(String::new, |p| format!(" (preset {}: {})", p.name, p.origin)),
        data.n_train(),
        data.n_test(),
        cfg.method,
        if cfg.arith == Arith::Int { " (integer arithmetic)" } else { "" },
        cfg.optimizer,
        cfg.lr,
        cfg.schedule.decay,
        if cfg.schedule.start_epoch > 0 {
            format!(" after epoch {}", cfg.schedule.start_epoch)
        } else {
            String::new()
        },
        cfg.schedule.min,
        cfg.batch,
        cfg.partial_batch,
        cfg.momentum,
        cfg.weight_decay,
        projection_name(cfg.projection),
        cfg.seed,
        if trainer.epochs_done() > 0 {
            let mut s = format!("; resumed after epoch {}", trainer.epochs_done());
            if !changes.is_empty() {
                s += &format!(" with {}", changes.join(", "));
            }
            s
        } else {
            String::new()
        }
    );
    let json = a.json;
    let extra = |r: &EpochReport| -> String {
        let mut s = String::new();
        if let Some(x) = r.gs_access {
            s += &format!(" {:>9.4}", x);
        }
        if cfg.track.method {
            s += &format!(" {:>9}", fmt_opt(r.method_access));
        }
        if let Some(x) = r.nll_test {
            s += &format!(" {:>9.4} {:>9.4}", r.nll_train.unwrap_or(f64::NAN), x);
        }
        if let Some(sv) = &r.svd {
            s += &format!(
                "  [{}]",
                sv.iter().take(6).map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(" ")
            );
        }
        s
    };
    let pb = if json {
        Progress::hidden()
    } else {
        outln!("# {header}");
        outln!(
            "# HD: reconstruction from the {}, {} draws per image, {} Gibbs step{}{}",
            data.kept_description(),
            cfg.eval.repeats,
            cfg.eval.steps,
            if cfg.eval.steps == 1 { "" } else { "s" },
            if cfg.eval.clamp { " with the kept pixels clamped" } else { "" }
        );
        let mut cols = format!(
            "{:>7} {:>11} {:>10} {:>9} {:>9}",
            "epoch", "seconds", "lr", "hd_train", "hd_test"
        );
        if cfg.track.gs {
            cols += &format!(" {:>9}", "gs_acc");
        }
        if cfg.track.method {
            cols += &format!(" {:>9}", "meth_acc");
        }
        if cfg.track.nll {
            cols += &format!(" {:>9} {:>9}", "nll_trn", "nll_tst");
        }
        if cfg.track.svd {
            cols += "  singular values";
        }
        outln!("{cols}");
        Progress::new(u64::from(cfg.epochs), u64::from(trainer.epochs_done()), "epochs")
    };
    let epochs = cfg.epochs;
    let log_every = a.log_every;
    let show = |r: &EpochReport| {
        if json {
            outln!("{}", report_json(r));
        } else {
            if let Some(t) = r.hd_test {
                pb.set_message(format!("hd_test {t:.4}"));
            }
            if shown(r.epoch, epochs, log_every) {
                pb.suspend(|| {
                    outln!(
                        "{:>7} {:>11.6} {:>10.3e} {:>9} {:>9}{}",
                        r.epoch,
                        r.seconds,
                        r.lr,
                        fmt_opt(r.hd_train),
                        fmt_opt(r.hd_test),
                        extra(r)
                    )
                });
            }
            pb.set_position(u64::from(r.epoch));
        }
    };
    // What Ctrl-C reports: the last finished epoch and the checkpoint to resume from (the
    // one resumed, until this run writes one).
    interrupt::set_polled();
    let mut saved: Saved = a.resume.as_deref().map(|p| (p, trainer.epochs_done(), false));
    let note = |done: u32, saved: Saved| interrupt_note(&a, done, epochs, saved);
    interrupt::set_note(note(trainer.epochs_done(), saved));
    let mut reports = Vec::new();
    while trainer.epochs_done() < epochs {
        let lr = trainer.lr();
        let trained = trainer.train_epoch(&data);
        let epoch = trainer.epochs_done();
        interrupt::set_note(note(epoch, saved));
        // Interrupted: no evaluation; the checkpoint, when due, is still written.
        let stop = interrupt::requested();
        let r = trained.and_then(|seconds| {
            let eval = !stop && evaluated(epoch, epochs, cfg.eval_every, log_every);
            trainer.epoch_report(&data, seconds, lr, eval)
        });
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                pb.finish_and_clear();
                let code = if matches!(e, TrainError::NonFinite { .. }) { 1 } else { 2 };
                let kept = match &a.checkpoint {
                    Some(c) if c.exists() => {
                        format!(" (the last good checkpoint, {}, is kept)", c.display())
                    }
                    _ => String::new(),
                };
                return fail(code, format_args!("{e}{kept}"));
            }
        };
        if !stop {
            show(&r);
        }
        if let Some(path) = &a.checkpoint {
            if r.epoch % every == 0 || r.epoch == epochs {
                let ck = Checkpoint {
                    dataset: dataset.clone(),
                    split_seed,
                    config: cfg,
                    state: trainer.state(),
                };
                if let Err(e) = AtomicFile::prepare(path).and_then(|f| f.commit(&ck.encode())) {
                    pb.finish_and_clear();
                    return fail(1, format_args!("writing checkpoint {}: {e}", path.display()));
                }
                saved = Some((path, r.epoch, true));
                interrupt::set_note(note(r.epoch, saved));
            }
        }
        reports.push(r);
        if interrupt::requested() {
            pb.finish_and_clear();
            interrupt::finish();
        }
    }
    pb.finish_and_clear();
    let model = trainer.model();
    // The model file says how it was made (the checkpoint's settings lines).
    let settings = settings_text(&dataset, split_seed, &cfg);
    let Some(last) = reports.last().cloned() else {
        // Resumed at the last epoch: nothing left to train; evaluate the model as it is.
        if let (Some(file), Some(path)) = (out, a.out.as_deref()) {
            if let Err(e) = file.commit(&model.encode_with_settings(&settings)) {
                return fail(1, format_args!("writing {}: {e}", path.display()));
            }
        }
        eprintln!("rapid: the checkpoint already has all {epochs} epochs; nothing to train");
        return ExitCode::SUCCESS;
    };
    let total: f64 = reports.iter().map(|r| r.seconds).sum();
    let trained_epochs = reports.len() as u32;
    if let (Some(file), Some(path)) = (out, a.out.as_deref()) {
        if let Err(e) = file.commit(&model.encode_with_settings(&settings)) {
            return fail(1, format_args!("writing {}: {e}", path.display()));
        }
    }
    if json {
        let mut fin = report_json(&last);
        let o = fin.as_object_mut().expect("object");
        o.remove("seconds");
        o.remove("lr");
        for (k, v) in [
            ("final", json!(true)),
            ("dataset", json!(dataset.to_string())),
            ("method", json!(cfg.method.to_string())),
            ("visible", json!(data.visible())),
            ("hidden", json!(cfg.hidden)),
            ("patterns", json!(if cfg.method.is_ra() { Some(cfg.patterns) } else { None })),
            ("epochs", json!(epochs)),
            ("seconds", json!(total)),
            ("seconds_per_epoch", json!(total / f64::from(trained_epochs))),
            ("seed", json!(cfg.seed)),
            ("model", json!(a.out.as_ref().map(|p| p.display().to_string()))),
        ] {
            o.insert(k.into(), v);
        }
        outln!("{fin}");
    } else {
        outln!(
            "# trained {trained_epochs} epochs in {total:.3} s ({:.3} ms per epoch, evaluation excluded); final HD train {} test {}",
            1e3 * total / f64::from(trained_epochs),
            fmt_opt(last.hd_train),
            fmt_opt(last.hd_test)
        );
        if let Some(p) = &a.out {
            outln!("# model written to {}", p.display());
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_parses() {
        assert_eq!(parse_projection("sign:4").unwrap(), Projection::Sign { every: 4 });
        assert_eq!(parse_projection("clamp:1").unwrap(), Projection::Clamp { bound: 1.0 });
        assert!(parse_projection("clamp:-1").is_err());
        assert!(parse_projection("sign:0").is_err());
        assert_eq!(projection_name(Projection::Sign { every: 0 }), "sign");
        for p in ["sign", "sign:3", "clamp:0.1", "none"] {
            assert_eq!(projection_name(parse_projection(p).unwrap()), p);
        }
    }

    #[test]
    fn table_epochs_follow_1_2_5() {
        let e: Vec<u32> = (1..=300).filter(|&e| shown(e, 300, None)).collect();
        assert_eq!(e, [1, 2, 5, 10, 20, 50, 100, 200, 300]);
        let e: Vec<u32> = (1..=25).filter(|&e| shown(e, 25, Some(10))).collect();
        assert_eq!(e, [1, 10, 20, 25]);
    }

    #[test]
    fn evaluated_epochs_follow_the_table_or_eval_every() {
        let pick = |last, every, log| -> Vec<u32> {
            (1..=last).filter(|&e| evaluated(e, last, every, log)).collect()
        };
        assert_eq!(pick(12, EVAL_SHOWN, None), [1, 2, 5, 10, 12]);
        assert_eq!(pick(12, EVAL_SHOWN, Some(4)), [1, 4, 8, 12]);
        assert_eq!(pick(12, 0, None), [12]);
        assert_eq!(pick(12, 5, Some(4)), [5, 10, 12]);
        assert_eq!(pick(3, 1, None), [1, 2, 3]);
    }
}
