//! The `rapid` command-line program.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rapid_core::optim::LrSchedule;
use rapid_core::optim::Projection;
use rapid_harness::bench::{self, BenchArgs};
use rapid_harness::checkpoint::Checkpoint;
use rapid_harness::data::{Dataset, DatasetSpec};
use rapid_harness::exact::MAX_ENUM_BITS;
use rapid_harness::metrics::HdProtocol;
use rapid_harness::model::Model;
use rapid_harness::modelio::AtomicFile;
use rapid_harness::npy;
use rapid_harness::reproduce::{paper_methods, reproduce, ReproduceConfig};
use rapid_harness::run::{
    evaluate, parse_projection, projection_name, EpochReport, Method, Optimizer, PartialBatch,
    Track, TrainConfig, TrainError, Trainer,
};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "rapid",
    version,
    about = "RAPID restricted Boltzmann machines: regularized axons + pattern-induced correlations",
    long_about = "RAPID restricted Boltzmann machines with ±1 spins whose weights are built from \
K patterns, W = Ξ_vᵀΞ_h/√K, trained by estimating the negative phase from the patterns \
themselves; with CD-k, PCD-k and exact-gradient baselines checked by exact enumeration.\n\n\
Results go to stdout, progress to stderr. Bad input exits with code 2 and a one-line reason."
)]
struct Cli {
    /// Worker threads for training, evaluation and reproduction [default: all cores]. Results
    /// do not depend on it.
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
    /// Kernel level: auto (the best this CPU runs), scalar, avx2 or avx512. Results are
    /// bit-reproducible for a seed and a level; the scalar level gives the same bits on every
    /// architecture.
    #[arg(long, global = true, value_name = "LEVEL", default_value = "auto")]
    isa: bench::IsaChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model on a built-in dataset and report the reconstruction HD per epoch.
    Train(TrainArgs),
    /// Evaluate a model file: HD, exact NLL and ground state when enumerable, GS accessibility.
    Eval(EvalArgs),
    /// Export a model file's weights as NumPy .npy files (W, xi, a, b).
    Export(ExportArgs),
    /// Reproduce the paper's Figs. 1-3 on Bars 4x4: RAPID vs CD-10, PCD-10 and exact training.
    Reproduce(ReproduceArgs),
    /// Time training: the paper's set-ups per epoch (paper), and one step over a sweep of
    /// model sizes (scaling).
    Bench(BenchArgs),
}

#[derive(Args)]
#[command(after_long_help = "\
Defaults follow the paper's Bars 4x4 set-up for the chosen method. RAPID (pid methods): RA model
with H=1000, K=8, SGD lr 0.02, batch 3, lr decay 0.96 per epoch down to 1e-5, patterns signed at
the end of each epoch. Baselines (cd, pcd, exact): dense W ~ N(0, 0.01^2), no biases, Adam
lr 0.001, batch 1, no decay. Any option given overrides the default.

Datasets:
  bars4    Bars 4x4, the paper's split: 10 training and 4 test images, each set closed
           under negation.
  bas:N    Bars and stripes NxN (3 <= N <= 16), 2(2^N-2) images, split 80/20 by
           negation pairs with --split-seed (bas:12 gives 6550/1638).

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
nothing about a stripe image. Random guessing scores 0.5.

--track gs,method,svd,nll adds per evaluated epoch: the Gibbs GS accessibility (10 chains from
random v, 10 Gibbs steps, lowest energy over the exact ground-state energy), the method
accessibility (lowest energy among the negative-phase configurations over the ground state),
the singular values of W, and the exact mean NLL of the training and test sets.

Output: a table on stdout and a progress bar on stderr; with --json, one JSON object per
epoch on stdout ({\"epoch\", \"seconds\", \"lr\", \"hd_train\", \"hd_test\", plus tracked keys;
\"seconds\" is the training time of that epoch, evaluation excluded; values are null in
epochs not evaluated), then one object with \"final\": true.")]
struct TrainArgs {
    /// Dataset: bars4 or bas:N.
    #[arg(long, default_value = "bars4")]
    dataset: DatasetSpec,
    /// Method: pid, pid-hebb, pid-gibbs:K, cd:K, pcd:K[:CHAINS] or exact.
    #[arg(long, default_value = "pid")]
    method: Method,
    /// Hidden units H [default: 1000].
    #[arg(long)]
    hidden: Option<usize>,
    /// Patterns K, RA models [default: 8].
    #[arg(long)]
    patterns: Option<usize>,
    /// Visible and hidden biases, dense models.
    #[arg(long)]
    biases: bool,
    /// Training epochs [default: 300].
    #[arg(long)]
    epochs: Option<u32>,
    /// Images per update [default: 3 for pid, 1 otherwise].
    #[arg(long)]
    batch: Option<usize>,
    /// The short last batch of an epoch: scaled (positive phase divided by --batch, so every
    /// image weighs the same; the authors' code), mean (plain mean), or drop.
    #[arg(long, default_value = "scaled")]
    partial_batch: PartialBatch,
    /// Optimizer: sgd or adam [default: sgd for pid, adam otherwise].
    #[arg(long)]
    optimizer: Option<Optimizer>,
    /// Initial learning rate [default: 0.02 for pid, 0.001 otherwise].
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f32>,
    /// Learning-rate decay γ per epoch: lr ← max(γ·lr, lr_min) [default: 0.96 for pid, 1].
    #[arg(long, allow_negative_numbers = true)]
    lr_decay: Option<f32>,
    /// Learning-rate floor [default: 1e-5 for pid, 0].
    #[arg(long, allow_negative_numbers = true)]
    lr_min: Option<f32>,
    /// Epochs before the decay starts.
    #[arg(long, default_value_t = 0)]
    lr_decay_start: u32,
    /// SGD momentum in [0, 1).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    momentum: f32,
    /// SGD weight decay.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    weight_decay: f32,
    /// RA projection: sign (each epoch end), sign:N (every N updates), clamp:X (every update),
    /// none [default: sign for pid, none otherwise].
    #[arg(long, value_parser = parse_projection)]
    projection: Option<Projection>,
    /// Seed of every random choice in training and evaluation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seed of the BAS train/test split.
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
    /// Evaluate every N epochs (the last epoch is always evaluated; 0 = last only).
    #[arg(long, default_value_t = 1)]
    eval_every: u32,
    /// Draws per image in the HD evaluation.
    #[arg(long, default_value_t = 100)]
    eval_repeats: usize,
    /// Also track, comma-separated: gs, method, svd, nll.
    #[arg(long, default_value = "")]
    track: Track,
    /// Write the trained model to FILE (atomically; checked for writability before training).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Save a checkpoint to FILE (atomically) every --checkpoint-every epochs and at the end:
    /// model, optimiser state, PCD chains, epoch. A failed run leaves the last good one.
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Epochs between checkpoints.
    #[arg(long, value_name = "N", requires = "checkpoint")]
    checkpoint_every: Option<u32>,
    /// Continue the run saved in FILE; it ends bit-identical to an uninterrupted run. The
    /// settings come from the checkpoint (only --epochs may extend it; --out, --checkpoint,
    /// --checkpoint-every and --json apply as usual).
    #[arg(long, value_name = "FILE")]
    resume: Option<PathBuf>,
    /// Machine-readable output: one JSON object per line on stdout, no progress bar.
    #[arg(long)]
    json: bool,
}

/// Training settings that a checkpoint fixes (refused together with --resume).
const SETTINGS: [&str; 20] = [
    "dataset",
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
    "track",
];

#[derive(Args)]
struct EvalArgs {
    /// The model file.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Dataset: bars4 or bas:N (its V must match the model's).
    #[arg(long, default_value = "bars4")]
    dataset: DatasetSpec,
    /// Seed of the BAS train/test split.
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
    /// Seed of the evaluation draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Draws per image in the HD evaluation.
    #[arg(long, default_value_t = 100)]
    eval_repeats: usize,
    /// Largest layer to enumerate for the exact NLL and ground state (at most 30).
    #[arg(long, default_value_t = 24)]
    max_enum: usize,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ExportArgs {
    /// The model file.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Output folder (created if missing): W.npy (V×H f32), xi.npy (K×(V+H)) for RA models,
    /// a.npy and b.npy for models with biases.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

#[derive(Args)]
#[command(after_long_help = "\
Trains RAPID (pid), CD-10, PCD-10 (2048 chains) and exact-gradient training on Bars 4x4 with
the paper's settings, for seeds 0..N, in parallel over the cores; every run is deterministic in
its seed and the output does not depend on the thread count. Every epoch is evaluated.
Writes to DIR: runs.csv, fig1.csv, fig2.csv, fig3.csv, fig1/fig2/fig3 .png and .svg (mean over
seeds with ±1 standard deviation bands, log epoch axis), and summary.json (values at epochs 1,
10, 100, 300 and the wall time). All figures come from the same runs, so naming several costs
nothing extra.")]
struct ReproduceArgs {
    /// Figures: fig1, fig2, fig3 or all (the runs are shared; all figures are written).
    #[arg(required = true, value_parser = ["fig1", "fig2", "fig3", "all"])]
    figures: Vec<String>,
    /// Seeds per method.
    #[arg(long, default_value_t = 10)]
    seeds: u64,
    /// Epochs per run.
    #[arg(long, default_value_t = 300)]
    epochs: u32,
    /// Hidden units.
    #[arg(long, default_value_t = 1000)]
    hidden: usize,
    /// Output folder.
    #[arg(long, value_name = "DIR", default_value = "figures")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        // A bad value names the option and the problem on its first line: keep that line.
        Err(e) if matches!(e.kind(), ErrorKind::InvalidValue | ErrorKind::ValueValidation) => {
            let text = e.render().to_string();
            return fail(2, text.lines().next().unwrap_or("").trim_start_matches("error: "));
        }
        Err(e) => e.exit(),
    };
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Some(n) = cli.threads {
        if n == 0 {
            return fail(2, "--threads must be at least 1");
        }
        if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(n).build_global() {
            return fail(1, format!("could not start {n} threads: {e}"));
        }
    }
    if let Err(e) = bench::select_isa(cli.isa) {
        return fail(e.code, e.message);
    }
    match cli.command {
        Command::Train(a) => {
            let sub = matches.subcommand_matches("train").expect("train subcommand");
            cmd_train(a, explicit_settings(sub))
        }
        Command::Eval(a) => cmd_eval(a),
        Command::Export(a) => cmd_export(a),
        Command::Reproduce(a) => cmd_reproduce(a),
        Command::Bench(a) => match bench::run(a) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e.code, e.message),
        },
    }
}

/// One line on stderr and the exit code: 2 for bad input, 1 for a failure during work.
fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("rapid: error: {msg}");
    ExitCode::from(code)
}

/// Epochs shown in the human-readable table: 1, 2, 5, 10, 20, 50, … and the last.
fn shown(epoch: u32, last: u32) -> bool {
    let mut e = epoch;
    while e.is_multiple_of(10) {
        e /= 10;
    }
    epoch == last || matches!(e, 1 | 2 | 5)
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"))
}

fn progress_bar(len: u64, unit: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {unit}  {{elapsed_precise}} (eta {{eta}})  {{msg}}"
        ))
        .expect("valid template"),
    );
    pb
}

/// The training settings given on the command line (not defaulted).
fn explicit_settings(m: &ArgMatches) -> Vec<&'static str> {
    SETTINGS.into_iter().filter(|id| m.value_source(id) == Some(ValueSource::CommandLine)).collect()
}

fn train_config(a: &TrainArgs) -> TrainConfig {
    let p = TrainConfig::paper(a.method);
    TrainConfig {
        method: a.method,
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
            start_epoch: a.lr_decay_start,
        },
        seed: a.seed,
        eval_every: a.eval_every,
        eval: HdProtocol { repeats: a.eval_repeats, ..HdProtocol::default() },
        track: a.track,
    }
}

fn report_json(r: &EpochReport) -> serde_json::Value {
    let mut j = json!({"epoch": r.epoch, "seconds": r.seconds, "lr": r.lr, "hd_train": r.hd_train, "hd_test": r.hd_test});
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

/// Where a run starts: fresh from the arguments, or from a checkpoint.
fn start(
    a: &TrainArgs,
    explicit: &[&str],
) -> Result<(DatasetSpec, u64, TrainConfig, Dataset, Trainer), String> {
    let Some(path) = &a.resume else {
        let cfg = train_config(a);
        let data = Dataset::new(a.dataset, a.split_seed);
        let t = Trainer::new(&cfg, &data).map_err(|e| e.to_string())?;
        return Ok((a.dataset, a.split_seed, cfg, data, t));
    };
    if !explicit.is_empty() {
        let flags: Vec<String> =
            explicit.iter().map(|id| format!("--{}", id.replace('_', "-"))).collect();
        return Err(format!(
            "--resume takes the settings from the checkpoint; remove {}",
            flags.join(", ")
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let ck = Checkpoint::decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut cfg = ck.config;
    if let Some(e) = a.epochs {
        if e < ck.state.epoch {
            return Err(format!(
                "--epochs {e} is before the checkpoint's epoch {}",
                ck.state.epoch
            ));
        }
        cfg.epochs = e;
    }
    let data = Dataset::new(ck.dataset, ck.split_seed);
    cfg.validate(&data).map_err(|e| e.to_string())?;
    let t =
        Trainer::restore(&cfg, &data, ck.state).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((ck.dataset, ck.split_seed, cfg, data, t))
}

fn cmd_train(a: TrainArgs, explicit: Vec<&'static str>) -> ExitCode {
    if a.checkpoint_every == Some(0) {
        return fail(2, "--checkpoint-every must be at least 1");
    }
    let (dataset, split_seed, cfg, data, mut trainer) = match start(&a, &explicit) {
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
        "{}: {model_desc}, {} train / {} test images; method {}, {} lr {} (decay {}, min {}), batch {} ({} last batch), momentum {}, weight decay {}, projection {}, seed {}{}",
        dataset,
        data.n_train(),
        data.n_test(),
        cfg.method,
        cfg.optimizer,
        cfg.lr,
        cfg.schedule.decay,
        cfg.schedule.min,
        cfg.batch,
        cfg.partial_batch,
        cfg.momentum,
        cfg.weight_decay,
        projection_name(cfg.projection),
        cfg.seed,
        if trainer.epochs_done() > 0 {
            format!("; resumed after epoch {}", trainer.epochs_done())
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
        ProgressBar::hidden()
    } else {
        println!("# {header}");
        println!(
            "# HD: reconstruction from the {}, {} draws per image",
            data.kept_description(),
            cfg.eval.repeats
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
        println!("{cols}");
        progress_bar(u64::from(cfg.epochs), "epochs")
    };
    let epochs = cfg.epochs;
    let show = |r: &EpochReport| {
        if json {
            println!("{}", report_json(r));
        } else {
            if let Some(t) = r.hd_test {
                pb.set_message(format!("hd_test {t:.4}"));
            }
            if shown(r.epoch, epochs) {
                pb.suspend(|| {
                    println!(
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
            pb.inc(1);
        }
    };
    pb.inc(u64::from(trainer.epochs_done()));
    let mut reports = Vec::new();
    while trainer.epochs_done() < epochs {
        let r = match trainer.next_epoch(&data) {
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
        show(&r);
        if let Some(path) = &a.checkpoint {
            if r.epoch % every == 0 || r.epoch == epochs {
                let ck = Checkpoint { dataset, split_seed, config: cfg, state: trainer.state() };
                if let Err(e) = AtomicFile::prepare(path).and_then(|f| f.commit(&ck.encode())) {
                    pb.finish_and_clear();
                    return fail(1, format_args!("writing checkpoint {}: {e}", path.display()));
                }
            }
        }
        reports.push(r);
    }
    pb.finish_and_clear();
    let model = trainer.model();
    let Some(last) = reports.last().cloned() else {
        // Resumed at the last epoch: nothing left to train; evaluate the model as it is.
        if let (Some(file), Some(path)) = (out, a.out.as_deref()) {
            if let Err(e) = file.commit(&model.encode()) {
                return fail(1, format_args!("writing {}: {e}", path.display()));
            }
        }
        eprintln!("rapid: the checkpoint already has all {epochs} epochs; nothing to train");
        return ExitCode::SUCCESS;
    };
    let total: f64 = reports.iter().map(|r| r.seconds).sum();
    let trained_epochs = reports.len() as u32;
    if let (Some(file), Some(path)) = (out, a.out.as_deref()) {
        if let Err(e) = file.commit(&model.encode()) {
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
        println!("{fin}");
    } else {
        println!(
            "# trained {trained_epochs} epochs in {total:.3} s ({:.3} ms per epoch, evaluation excluded); final HD train {} test {}",
            1e3 * total / f64::from(trained_epochs),
            fmt_opt(last.hd_train),
            fmt_opt(last.hd_test)
        );
        if let Some(p) = &a.out {
            println!("# model written to {}", p.display());
        }
    }
    ExitCode::SUCCESS
}

fn load_model(path: &Path) -> Result<Model, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    Model::decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn cmd_eval(a: EvalArgs) -> ExitCode {
    let model = match load_model(&a.model) {
        Ok(m) => m,
        Err(e) => return fail(2, e),
    };
    let data = Dataset::new(a.dataset, a.split_seed);
    let view = model.view();
    if view.visible() != data.visible() {
        return fail(
            2,
            format_args!(
                "the model has V={} but {} images have {} pixels",
                view.visible(),
                a.dataset,
                data.visible()
            ),
        );
    }
    if a.eval_repeats == 0 {
        return fail(2, "--eval-repeats must be at least 1");
    }
    let enumerable = view.visible().min(view.hidden()) <= a.max_enum.min(MAX_ENUM_BITS);
    let track = Track { gs: enumerable, method: false, svd: true, nll: enumerable };
    let protocol = HdProtocol { repeats: a.eval_repeats, ..HdProtocol::default() };
    let method = if matches!(model, Model::Ra { .. }) {
        Method::Pid(rapid_core::NegativePhase::Patterns)
    } else {
        Method::Exact
    };
    let e = match evaluate(&model, method, &[], &data, protocol, track, a.seed, 0) {
        Ok(e) => e,
        Err(e) => return fail(1, e),
    };
    if a.json {
        println!(
            "{}",
            json!({
                "model": a.model.display().to_string(),
                "kind": model.describe(),
                "dataset": a.dataset.to_string(),
                "hd_train": e.hd_train,
                "hd_test": e.hd_test,
                "nll_train": e.nll_train,
                "nll_test": e.nll_test,
                "ground_state_energy": e.e_gs,
                "gs_access": e.gs_access,
                "singular_values": e.svd,
            })
        );
    } else {
        println!("model            {} ({})", a.model.display(), model.describe());
        println!(
            "dataset          {} ({} train / {} test)",
            a.dataset,
            data.n_train(),
            data.n_test()
        );
        println!(
            "HD train / test  {:.4} / {:.4}  ({} draws per image)",
            e.hd_train, e.hd_test, a.eval_repeats
        );
        match (e.nll_train, e.nll_test, e.e_gs, e.gs_access) {
            (Some(tr), Some(te), Some(gs), Some(acc)) => {
                println!("exact NLL        {tr:.4} train / {te:.4} test (nats per image)");
                println!("ground state     E_GS = {gs:.4}");
                println!("Gibbs GS access  {acc:.4}");
            }
            _ => println!(
                "exact NLL        not computed: min(V, H) = {} is above --max-enum {}",
                view.visible().min(view.hidden()),
                a.max_enum
            ),
        }
        if let Some(sv) = &e.svd {
            let shown: Vec<String> = sv.iter().take(8).map(|x| format!("{x:.3}")).collect();
            println!(
                "singular values  {}{}",
                shown.join(" "),
                if sv.len() > 8 { " …" } else { "" }
            );
        }
    }
    ExitCode::SUCCESS
}

fn cmd_export(a: ExportArgs) -> ExitCode {
    let model = match load_model(&a.model) {
        Ok(m) => m,
        Err(e) => return fail(2, e),
    };
    if let Err(e) = std::fs::create_dir_all(&a.out) {
        return fail(2, format_args!("creating {}: {e}", a.out.display()));
    }
    let view = model.view();
    let (v, h) = (view.visible(), view.hidden());
    let mut files: Vec<(&str, Vec<u8>)> =
        vec![("W.npy", npy::encode_f32(&view.weights(), &[v, h]))];
    match &model {
        Model::Ra { dims, xi } => {
            files.push(("xi.npy", npy::encode_f32(xi, &[dims.patterns, dims.width()])))
        }
        Model::Dense { .. } => {
            if let (Some(av), Some(bv)) = view.biases() {
                files.push(("a.npy", npy::encode_f32(av, &[v])));
                files.push(("b.npy", npy::encode_f32(bv, &[h])));
            }
        }
    }
    for (name, bytes) in files {
        let path = a.out.join(name);
        if let Err(e) = AtomicFile::prepare(&path).and_then(|f| f.commit(&bytes)) {
            return fail(1, format_args!("writing {}: {e}", path.display()));
        }
        println!("{}", path.display());
    }
    ExitCode::SUCCESS
}

fn cmd_reproduce(a: ReproduceArgs) -> ExitCode {
    if a.seeds == 0 || a.epochs == 0 {
        return fail(2, "--seeds and --epochs must be at least 1");
    }
    if a.hidden == 0 {
        return fail(2, "--hidden must be at least 1");
    }
    let cfg = ReproduceConfig {
        seeds: a.seeds,
        epochs: a.epochs,
        hidden: a.hidden,
        out: a.out.clone(),
        methods: paper_methods(),
    };
    eprintln!(
        "rapid reproduce {}: {} methods x {} seeds x {} epochs on {} threads",
        a.figures.join(","),
        cfg.methods.len(),
        a.seeds,
        a.epochs,
        rayon::current_num_threads()
    );
    let pb = progress_bar(cfg.methods.len() as u64 * a.seeds * u64::from(a.epochs), "epochs");
    let result = reproduce(&cfg, &|done, _| pb.set_position(done));
    pb.finish_and_clear();
    match result {
        Ok((curves, wall)) => {
            println!(
                "# Bars 4x4, {} seeds, {} epochs, wall time {wall:.1} s; written to {}",
                a.seeds,
                a.epochs,
                a.out.display()
            );
            println!(
                "{:>14} {:>6} {:>15} {:>15} {:>15} {:>15}",
                "method", "epoch", "hd_train", "hd_test", "gs_access", "method_access"
            );
            let ms = |x: (f64, f64)| {
                if x.0.is_finite() {
                    format!("{:.3}±{:.3}", x.0, x.1)
                } else {
                    "-".into()
                }
            };
            for c in &curves {
                for e in [1u32, 10, 100, 300].into_iter().filter(|&e| e <= a.epochs) {
                    let i = e as usize - 1;
                    println!(
                        "{:>14} {:>6} {:>15} {:>15} {:>15} {:>15}",
                        c.label,
                        e,
                        ms(c.hd_train[i]),
                        ms(c.hd_test[i]),
                        ms(c.gs_access[i]),
                        ms(c.method_access[i])
                    );
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, e),
    }
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
        let e: Vec<u32> = (1..=300).filter(|&e| shown(e, 300)).collect();
        assert_eq!(e, [1, 2, 5, 10, 20, 50, 100, 200, 300]);
    }
}
