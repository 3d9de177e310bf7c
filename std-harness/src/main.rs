//! The `rapid` command-line program.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rapid_core::train::{LrSchedule, NegativePhase, PidConfig, Projection, Sgd};
use rapid_harness::data::{Dataset, DatasetSpec};
use rapid_harness::metrics::HdProtocol;
use rapid_harness::modelio::{encode_ra, AtomicFile};
use rapid_harness::run::{train, EpochReport, PartialBatch, TrainConfig, TrainError};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "rapid",
    version,
    about = "RAPID restricted Boltzmann machines: regularized axons + pattern-induced correlations",
    long_about = "RAPID restricted Boltzmann machines with ±1 spins whose weights are built from \
K patterns, W = Ξ_vᵀΞ_h/√K, trained by estimating the negative phase from the patterns \
themselves.\n\nResults go to stdout, progress to stderr. Bad input exits with code 2 and a \
one-line reason."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train an RA model with PID on a built-in dataset and report the reconstruction HD.
    Train(TrainArgs),
}

/// The negative-phase estimator, parsed from `pid`, `pid-hebb` or `pid-gibbs:K`.
#[derive(Clone, Copy, Debug)]
struct Method(NegativePhase);

impl FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pid" => Ok(Method(NegativePhase::Patterns)),
            "pid-hebb" => Ok(Method(NegativePhase::Hebb)),
            _ => match s.strip_prefix("pid-gibbs:") {
                Some(k) => match k.parse::<u32>() {
                    Ok(steps) if steps >= 1 => Ok(Method(NegativePhase::Gibbs { steps })),
                    _ => Err(format!("pid-gibbs:K needs a whole number K >= 1, got '{k}'")),
                },
                None => {
                    Err(format!("unknown method '{s}' (expected pid, pid-hebb or pid-gibbs:K)"))
                }
            },
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            NegativePhase::Patterns => f.write_str("pid"),
            NegativePhase::Hebb => f.write_str("pid-hebb"),
            NegativePhase::Gibbs { steps } => write!(f, "pid-gibbs:{steps}"),
        }
    }
}

/// The projection, parsed from `sign`, `sign:N`, `clamp:X` or `none`.
#[derive(Clone, Copy, Debug)]
struct Proj(Projection);

impl FromStr for Proj {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "sign" {
            return Ok(Proj(Projection::Sign { every: 0 }));
        }
        if s == "none" {
            return Ok(Proj(Projection::None));
        }
        if let Some(n) = s.strip_prefix("sign:") {
            return match n.parse::<u32>() {
                Ok(every) if every >= 1 => Ok(Proj(Projection::Sign { every })),
                _ => Err(format!("sign:N needs a whole number N >= 1, got '{n}'")),
            };
        }
        if let Some(x) = s.strip_prefix("clamp:") {
            return match x.parse::<f32>() {
                Ok(bound) if bound.is_finite() && bound > 0.0 => {
                    Ok(Proj(Projection::Clamp { bound }))
                }
                _ => Err(format!("clamp:X needs a positive number X, got '{x}'")),
            };
        }
        Err(format!("unknown projection '{s}' (expected sign, sign:N, clamp:X or none)"))
    }
}

impl std::fmt::Display for Proj {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Projection::None => f.write_str("none"),
            Projection::Sign { every: 0 } => f.write_str("sign"),
            Projection::Sign { every } => write!(f, "sign:{every}"),
            Projection::Clamp { bound } => write!(f, "clamp:{bound}"),
        }
    }
}

#[derive(Args)]
#[command(after_long_help = "\
The defaults reproduce the paper's Bars 4x4 set-up: H=1000, K=8, batch 3, lr 0.02 decaying \
by 0.96 per epoch down to 1e-5, patterns signed at the end of each epoch.

Datasets:
  bars4    Bars 4x4, the paper's split: 10 training and 4 test images, each set closed
           under negation.
  bas:N    Bars and stripes NxN (3 <= N <= 16), 2(2^N-2) images, split 80/20 by
           negation pairs with --split-seed (bas:12 gives 6550/1638).

Methods (the negative phase of the gradient):
  pid          the signed visible patterns are the K negative samples (the authors' code)
  pid-hebb     <v h>_model ~ (1/K) sum_k xi_k xi_k^T (the paper's eq. 6)
  pid-gibbs:K  K block-Gibbs steps from each visible pattern

Metric: reconstruction Hamming distance. Keep some pixels of each image, set the rest to 0,
make one step v->h->v, count the wrong pixels over all V, average over --eval-repeats draws.
Bars keeps the top row; BAS keeps the top row and the left column, because the top row says
nothing about a stripe image. Random guessing scores 0.5.

Output: a table on stdout and a progress bar on stderr; with --json, one JSON object per
epoch on stdout ({\"epoch\", \"seconds\", \"lr\", \"hd_train\", \"hd_test\"}; \"seconds\" is the
training time of that epoch, evaluation excluded; HDs are null in epochs not evaluated),
then one object with \"final\": true.")]
struct TrainArgs {
    /// Dataset: bars4 or bas:N.
    #[arg(long, default_value = "bars4")]
    dataset: DatasetSpec,
    /// Negative phase: pid, pid-hebb or pid-gibbs:K.
    #[arg(long, default_value = "pid")]
    method: Method,
    /// Hidden units H.
    #[arg(long, default_value_t = 1000)]
    hidden: usize,
    /// Patterns K.
    #[arg(long, default_value_t = 8)]
    patterns: usize,
    /// Training epochs.
    #[arg(long, default_value_t = 300)]
    epochs: u32,
    /// Images per update.
    #[arg(long, default_value_t = 3)]
    batch: usize,
    /// The short last batch of an epoch: scaled (positive phase divided by --batch, so every
    /// image weighs the same; the authors' code), mean (plain mean), or drop.
    #[arg(long, default_value = "scaled")]
    partial_batch: PartialBatch,
    /// Initial learning rate η.
    #[arg(long, default_value_t = 0.02, allow_negative_numbers = true)]
    lr: f32,
    /// Learning-rate decay γ per epoch: η ← max(γη, η_min).
    #[arg(long, default_value_t = 0.96, allow_negative_numbers = true)]
    lr_decay: f32,
    /// Learning-rate floor η_min.
    #[arg(long, default_value_t = 1e-5, allow_negative_numbers = true)]
    lr_min: f32,
    /// Epochs before the decay starts.
    #[arg(long, default_value_t = 0)]
    lr_decay_start: u32,
    /// SGD momentum μ in [0, 1).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    momentum: f32,
    /// Weight decay λ.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    weight_decay: f32,
    /// Projection: sign (each epoch end), sign:N (every N updates), clamp:X (every update), none.
    #[arg(long, default_value = "sign")]
    projection: Proj,
    /// Seed of every random choice in training and evaluation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seed of the BAS train/test split.
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
    /// Evaluate the HD every N epochs (the last epoch is always evaluated; 0 = last only).
    #[arg(long, default_value_t = 1)]
    eval_every: u32,
    /// Draws per image in the HD evaluation.
    #[arg(long, default_value_t = 100)]
    eval_repeats: usize,
    /// Write the trained model to FILE (atomically; checked for writability before training).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Machine-readable output: one JSON object per line on stdout, no progress bar.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Train(args) => cmd_train(args),
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
    while e % 10 == 0 {
        e /= 10;
    }
    epoch == last || matches!(e, 1 | 2 | 5)
}

fn fmt_hd(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"))
}

fn cmd_train(a: TrainArgs) -> ExitCode {
    let cfg = TrainConfig {
        hidden: a.hidden,
        patterns: a.patterns,
        epochs: a.epochs,
        batch: a.batch,
        partial_batch: a.partial_batch,
        pid: PidConfig {
            negative: a.method.0,
            sgd: Sgd { lr: a.lr, momentum: a.momentum, weight_decay: a.weight_decay },
            projection: a.projection.0,
            schedule: LrSchedule {
                decay: a.lr_decay,
                min: a.lr_min,
                start_epoch: a.lr_decay_start,
            },
        },
        seed: a.seed,
        eval_every: a.eval_every,
        eval: HdProtocol { repeats: a.eval_repeats, ..HdProtocol::default() },
    };
    let data = Dataset::new(a.dataset, a.split_seed);
    if let Err(e) = cfg.validate(&data) {
        return fail(2, e);
    }
    let out = match a.out.as_deref().map(AtomicFile::prepare).transpose() {
        Ok(o) => o,
        Err(e) => {
            let path = a.out.as_deref().unwrap_or(std::path::Path::new("")).display();
            return fail(2, format_args!("cannot write --out {path}: {e}"));
        }
    };
    let dims = cfg.dims(&data);
    let header = format!(
        "{}: V={} H={} K={}, {} train / {} test images; method {}, batch {} ({} last batch), lr {} (decay {}, min {}), momentum {}, weight decay {}, projection {}, seed {}",
        a.dataset, dims.visible, dims.hidden, dims.patterns, data.n_train(), data.n_test(),
        a.method, a.batch, a.partial_batch, a.lr, a.lr_decay, a.lr_min, a.momentum, a.weight_decay, a.projection, a.seed
    );
    let pb = if a.json {
        ProgressBar::hidden()
    } else {
        println!("# {header}");
        println!(
            "# HD: reconstruction from the {}, {} draws per image",
            data.kept_description(),
            a.eval_repeats
        );
        println!(
            "{:>7} {:>11} {:>10} {:>9} {:>9}",
            "epoch", "seconds", "lr", "hd_train", "hd_test"
        );
        let pb =
            ProgressBar::with_draw_target(Some(u64::from(a.epochs)), ProgressDrawTarget::stderr());
        pb.set_style(
            ProgressStyle::with_template(
                "{bar:40} {pos}/{len} epochs  {elapsed_precise} (eta {eta})  {msg}",
            )
            .expect("valid template"),
        );
        pb
    };
    let epochs = a.epochs;
    let json = a.json;
    let result = train(&cfg, &data, |r: &EpochReport| {
        if json {
            println!(
                "{}",
                json!({"epoch": r.epoch, "seconds": r.seconds, "lr": r.lr, "hd_train": r.hd_train, "hd_test": r.hd_test})
            );
        } else {
            if let Some(t) = r.hd_test {
                pb.set_message(format!("hd_test {t:.4}"));
            }
            if shown(r.epoch, epochs) {
                pb.suspend(|| {
                    println!(
                        "{:>7} {:>11.6} {:>10.3e} {:>9} {:>9}",
                        r.epoch,
                        r.seconds,
                        r.lr,
                        fmt_hd(r.hd_train),
                        fmt_hd(r.hd_test)
                    )
                });
            }
            pb.inc(1);
        }
    });
    pb.finish_and_clear();
    let trained = match result {
        Ok(t) => t,
        Err(e @ TrainError::NonFinite { .. }) => return fail(1, e),
        Err(e) => return fail(2, e),
    };
    let last = *trained.reports.last().expect("at least one epoch");
    let total = trained.train_seconds();
    if let (Some(file), Some(path)) = (out, a.out.as_deref()) {
        if let Err(e) = file.commit(&encode_ra(trained.dims, &trained.xi)) {
            return fail(1, format_args!("writing {}: {e}", path.display()));
        }
    }
    if json {
        println!(
            "{}",
            json!({
                "final": true,
                "dataset": a.dataset.to_string(),
                "method": a.method.to_string(),
                "visible": dims.visible, "hidden": dims.hidden, "patterns": dims.patterns,
                "epochs": epochs,
                "seconds": total,
                "seconds_per_epoch": total / f64::from(epochs),
                "hd_train": last.hd_train,
                "hd_test": last.hd_test,
                "seed": a.seed,
                "model": a.out.as_ref().map(|p| p.display().to_string()),
            })
        );
    } else {
        println!(
            "# trained {epochs} epochs in {total:.3} s ({:.3} ms per epoch, evaluation excluded); final HD train {} test {}",
            1e3 * total / f64::from(epochs),
            fmt_hd(last.hd_train),
            fmt_hd(last.hd_test)
        );
        if let Some(p) = &a.out {
            println!("# model written to {}", p.display());
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_and_projection_parse() {
        assert_eq!(Method::from_str("pid-gibbs:3").unwrap().0, NegativePhase::Gibbs { steps: 3 });
        assert!(Method::from_str("pid-gibbs:0").is_err());
        assert!(Method::from_str("cd:1").unwrap_err().contains("unknown method"));
        assert_eq!(Proj::from_str("sign:4").unwrap().0, Projection::Sign { every: 4 });
        assert_eq!(Proj::from_str("clamp:1").unwrap().0, Projection::Clamp { bound: 1.0 });
        assert!(Proj::from_str("clamp:-1").is_err());
        assert!(Proj::from_str("sign:0").is_err());
        for s in ["pid", "pid-hebb", "pid-gibbs:2"] {
            assert_eq!(Method::from_str(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn table_epochs_follow_1_2_5() {
        let e: Vec<u32> = (1..=300).filter(|&e| shown(e, 300)).collect();
        assert_eq!(e, [1, 2, 5, 10, 20, 50, 100, 200, 300]);
    }
}
