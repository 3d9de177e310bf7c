//! `rapid bench paper`: whole training epochs of the paper's three set-ups, timed with the
//! real training loop ([`Trainer::train_epoch`]), evaluation off, and each row's arithmetic
//! rate against the machine's FMA peak ([`epoch_flops`], [`measure_fma_peak`]).

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use rapid_core::kernels;
use rapid_core::optim::Projection;
use rapid_core::step::update_flops;
use rapid_core::NegativePhase;
use serde_json::json;

use super::peak::{measure_fma_peak, FmaPeak};
use super::{machine_line, median, parse_choice, secs, BenchError};
use crate::data::{bars4, bas, random, Dataset};
use crate::outln;
use crate::run::{Arith, Method, PartialBatch, TrainConfig, TrainError, Trainer};

#[derive(Args, Debug)]
#[command(after_long_help = "\
What is measured: whole training epochs of the real training loop (the code behind `rapid
train`), with evaluation off. For each set-up and method, --warmup epochs run untimed, then
--repeats epochs are timed one by one; the median is reported as s/epoch, and s/batch is that
median divided by the batches (updates) per epoch.

Set-ups (the other settings are `rapid train`'s defaults for the method):
  bars4   Bars 4x4, 10 training images; V=16, H=1000, K=8; batch 3 for pid methods, 1 for
          the dense baselines (the paper's); default methods pid, cd:10, pcd:10
  bas12   BAS 12x12, 6550 training images; V=144, H=1000, K=40, batch 120;
          default methods pid, cd:10
  mnist   MNIST sizes on 8000 random +-1 images (seeded; the cost of an epoch does not
          depend on the pixel values): V=784, H=3000, K=200, batch 8000, so one batch per
          epoch; pid methods with SGD lr 0.015 and clamp:1 (the paper's MNIST set-up);
          default methods pid-gibbs:1, pid, cd:10 (cd:10 takes tens of seconds per epoch)

Arithmetic rate: before the rows, the f32 FMA peak is measured at the kernel level in use
(register-only AVX-512 or AVX2 FMA loops on every training thread at once, best of 3 runs in
about 0.3 s; the scalar level has none). Each row's GFLOP/s is the flops of the matrix products
of an epoch (rapid_core::step::update_flops: 2 per multiply-add; activations, draws, the
optimiser not counted) over the median s/epoch, and % peak is that over the peak.

Output: a table on stdout (progress on stderr); with --json one object per line:
{\"setup\", \"method\", \"seconds_per_epoch\", \"seconds_per_batch\", \"isa\", \"repeats\", \"warmup\",
\"batches_per_epoch\", \"batch\", \"visible\", \"hidden\", \"patterns\", \"data\", \"seconds\" (every
timed epoch), \"threads\", \"seed\", \"gflop_per_batch\" (mean over the epoch's batches),
\"gflops\", \"peak_fraction\" (0 to 1), \"fma_peak_gflops\" (null at the scalar level)}. \"isa\" is
the kernel level in use (the global --isa).")]
pub(super) struct PaperArgs {
    /// Set-ups, comma-separated: bars4, bas12, mnist.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "bars4,bas12,mnist",
        value_parser = <Setup as FromStr>::from_str
    )]
    setups: Vec<Setup>,
    /// Methods, comma-separated (pid, pid-hebb, pid-gibbs:K, cd:K, pcd:K[:CHAINS]), run on
    /// every set-up given [default: each set-up's own list, see below].
    #[arg(long, value_delimiter = ',')]
    methods: Option<Vec<Method>>,
    /// Timed epochs per row (the median is reported).
    #[arg(long, default_value_t = 5, allow_hyphen_values = true)]
    repeats: usize,
    /// Untimed epochs before the timed ones.
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    warmup: usize,
    /// Seed of every random choice (BAS split, random data, initial parameters, draws).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    seed: u64,
    /// One JSON object per row on stdout instead of the table.
    #[arg(long)]
    json: bool,
}

/// One of the paper's set-ups; its name on the command line is the variant's in lower case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Setup {
    /// Bars 4×4: V = 16, H = 1000, K = 8.
    Bars4,
    /// BAS 12×12: V = 144, H = 1000, K = 40, batch 120.
    Bas12,
    /// MNIST sizes on random ±1 data: V = 784, H = 3000, K = 200, batch 8000.
    Mnist,
}

impl FromStr for Setup {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_choice("set-up", s)
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_possible_value().expect("no variant is skipped").get_name())
    }
}

/// Images of the MNIST-size random dataset: one batch of 8000.
pub const MNIST_IMAGES: usize = 8000;

impl Setup {
    /// The methods timed when `--methods` is not given.
    pub fn default_methods(self) -> Vec<Method> {
        let pid = Method::Pid(NegativePhase::Patterns);
        let cd10 = Method::Cd { k: 10 };
        match self {
            Setup::Bars4 => vec![pid, cd10, Method::Pcd { k: 10, chains: 2048 }],
            Setup::Bas12 => vec![pid, cd10],
            Setup::Mnist => vec![Method::Pid(NegativePhase::Gibbs { steps: 1 }), pid, cd10],
        }
    }

    /// The training images (the BAS split and the random pixels come from `seed`).
    pub fn dataset(self, seed: u64) -> Dataset {
        match self {
            Setup::Bars4 => bars4(),
            Setup::Bas12 => bas(12, seed),
            Setup::Mnist => random(784, MNIST_IMAGES, seed),
        }
    }

    /// What the data is, for the output.
    pub fn data_description(self) -> &'static str {
        match self {
            Setup::Bars4 => "Bars 4x4 (10 training images)",
            Setup::Bas12 => "BAS 12x12 (6550 training images)",
            Setup::Mnist => "random ±1 (MNIST sizes, 8000 images)",
        }
    }

    /// The training configuration of `method` on this set-up, evaluation off.
    pub fn config(self, method: Method, seed: u64) -> TrainConfig {
        let p = TrainConfig::paper(method);
        let ra = method.is_ra();
        let c = match self {
            Setup::Bars4 => p,
            Setup::Bas12 => TrainConfig { patterns: 40, batch: 120, ..p },
            Setup::Mnist => TrainConfig {
                hidden: 3000,
                patterns: 200,
                batch: MNIST_IMAGES,
                lr: if ra { 0.015 } else { p.lr },
                projection: if ra { Projection::Clamp { bound: 1.0 } } else { p.projection },
                ..p
            },
        };
        TrainConfig { seed, eval_every: 0, ..c }
    }
}

/// Updates per epoch for `n` training images in batches of `cfg.batch`.
pub fn batches_per_epoch(cfg: &TrainConfig, n: usize) -> usize {
    match cfg.partial_batch {
        PartialBatch::Drop => n / cfg.batch,
        PartialBatch::Scaled | PartialBatch::Mean => n.div_ceil(cfg.batch),
    }
}

/// Flops of the matrix products of one epoch of `cfg` on the training images of `data`: the
/// core's [`update_flops`] of each batch [`Trainer::train_epoch`] runs (full batches, then the
/// short last one unless it is dropped). `None` where the count is not defined: `exact`,
/// integer arithmetic (no floating point), a batch of 0.
pub fn epoch_flops(cfg: &TrainConfig, data: &Dataset) -> Option<u64> {
    if cfg.arith != Arith::F32 || cfg.batch == 0 {
        return None;
    }
    let (shape, method) = (cfg.shape(data), cfg.method.to_core());
    let (n, b) = (data.n_train(), cfg.batch);
    let full = update_flops(shape, method, b)?.checked_mul((n / b) as u64)?;
    match n % b {
        0 => Some(full),
        _ if cfg.partial_batch == PartialBatch::Drop => Some(full),
        r => full.checked_add(update_flops(shape, method, r)?),
    }
}

/// Time the FMA peak takes to measure.
const PEAK_BUDGET: Duration = Duration::from_millis(300);

/// One timed row of `rapid bench paper`.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochTiming {
    /// Updates per epoch.
    pub batches_per_epoch: usize,
    /// Wall seconds of each timed epoch, in order.
    pub seconds: Vec<f64>,
}

impl EpochTiming {
    /// Median seconds per epoch.
    pub fn seconds_per_epoch(&self) -> f64 {
        median(&self.seconds)
    }

    /// Median seconds per epoch over the batches per epoch.
    pub fn seconds_per_batch(&self) -> f64 {
        self.seconds_per_epoch() / self.batches_per_epoch as f64
    }
}

/// Trains `warmup` untimed epochs, then times `repeats` epochs one by one
/// ([`Trainer::train_epoch`]: no evaluation). `progress` gets each timed epoch's seconds.
///
/// # Errors
/// An invalid configuration, or a parameter that stops being finite.
pub fn time_epochs(
    cfg: &TrainConfig,
    data: &Dataset,
    warmup: usize,
    repeats: usize,
    mut progress: impl FnMut(usize, f64),
) -> Result<EpochTiming, TrainError> {
    let total = u32::try_from(warmup + repeats).unwrap_or(u32::MAX).max(1);
    let cfg = TrainConfig { epochs: total, eval_every: 0, ..*cfg };
    let mut t = Trainer::new(&cfg, data)?;
    for _ in 0..warmup {
        t.train_epoch(data)?;
    }
    let mut seconds = Vec::with_capacity(repeats);
    for i in 0..repeats {
        let t0 = Instant::now();
        t.train_epoch(data)?;
        let s = t0.elapsed().as_secs_f64();
        progress(i, s);
        seconds.push(s);
    }
    Ok(EpochTiming { batches_per_epoch: batches_per_epoch(&cfg, data.n_train()), seconds })
}

/// One set-up's rows, checked before any work.
struct Planned {
    setup: Setup,
    data: Dataset,
    rows: Vec<(Method, TrainConfig)>,
}

pub(super) fn cmd_paper(a: PaperArgs) -> Result<(), BenchError> {
    if a.repeats == 0 {
        return Err(BenchError::input("--repeats must be at least 1"));
    }
    if a.setups.is_empty() {
        return Err(BenchError::input("--setups needs at least one set-up"));
    }
    let mut setups = a.setups.clone();
    setups.dedup();
    // Every row's configuration is checked before any work.
    let mut plan: Vec<Planned> = Vec::new();
    for &s in &setups {
        let methods = a.methods.clone().unwrap_or_else(|| s.default_methods());
        if methods.is_empty() {
            return Err(BenchError::input("--methods needs at least one method"));
        }
        let data = s.dataset(a.seed);
        let mut rows = Vec::new();
        for m in methods {
            if m == Method::Exact {
                return Err(BenchError::input(
                    "bench paper times pid, pid-hebb, pid-gibbs:K, cd:K and pcd:K, not exact",
                ));
            }
            let cfg = s.config(m, a.seed);
            cfg.validate(&data).map_err(|e| BenchError::input(format!("{s} {m}: {e}")))?;
            rows.push((m, cfg));
        }
        plan.push(Planned { setup: s, data, rows });
    }
    let isa = kernels::active();
    let threads = rayon::current_num_threads();
    eprintln!("rapid bench: measuring the FMA peak ({}, {threads} threads)", isa.name());
    let peak = measure_fma_peak(isa, PEAK_BUDGET);
    if !a.json {
        outln!("# rapid bench paper: {}", machine_line(isa, threads));
        match peak {
            Some(p) => outln!(
                "# FMA peak: {:.1} GFLOP/s on {} thread{} ({})",
                p.gflops(),
                p.threads,
                if p.threads == 1 { "" } else { "s" },
                p.isa.name()
            ),
            None => outln!("# no FMA peak at the {} level", isa.name()),
        }
        outln!(
            "# GFLOP/s: flops of an epoch's matrix products (rapid_core::step::update_flops) \
             over the median s/epoch; % peak: over the FMA peak"
        );
        outln!(
            "# {} untimed + {} timed epochs per row, median reported; evaluation off; seed {}",
            a.warmup,
            a.repeats,
            a.seed
        );
        for p in &plan {
            outln!("# {}: {}", p.setup, p.setup.data_description());
        }
        outln!(
            "{:<6} {:<12} {:>4} {:>5} {:>4} {:>5} {:>8} {:>11} {:>11} {:>8} {:>6}  isa",
            "setup",
            "method",
            "V",
            "H",
            "K",
            "batch",
            "batches",
            "s/epoch",
            "s/batch",
            "GFLOP/s",
            "% peak"
        );
    }
    for Planned { setup, data, rows } in &plan {
        for (method, cfg) in rows {
            let name = method_name(*method);
            eprintln!(
                "rapid bench: {setup} {name}: {} untimed + {} timed epochs",
                a.warmup, a.repeats
            );
            let timing = time_epochs(cfg, data, a.warmup, a.repeats, |i, s| {
                eprintln!(
                    "rapid bench:   {setup} {name} epoch {}/{}: {} s",
                    i + 1,
                    a.repeats,
                    secs(s)
                )
            })
            .map_err(|e| match e {
                TrainError::NonFinite { .. } => BenchError::work(format!("{setup} {name}: {e}")),
                _ => BenchError::input(format!("{setup} {name}: {e}")),
            })?;
            let k = if method.is_ra() { Some(cfg.patterns) } else { None };
            let rate = Rate::new(epoch_flops(cfg, data), &timing, peak);
            if a.json {
                outln!(
                    "{}",
                    json!({
                        "setup": setup.to_string(),
                        "method": name,
                        "seconds_per_epoch": timing.seconds_per_epoch(),
                        "seconds_per_batch": timing.seconds_per_batch(),
                        "isa": isa.name(),
                        "repeats": a.repeats,
                        "warmup": a.warmup,
                        "batches_per_epoch": timing.batches_per_epoch,
                        "batch": cfg.batch,
                        "visible": data.visible(),
                        "hidden": cfg.hidden,
                        "patterns": k,
                        "data": setup.data_description(),
                        "seconds": timing.seconds,
                        "threads": threads,
                        "seed": a.seed,
                        "gflop_per_batch": rate.gflop_per_batch,
                        "gflops": rate.gflops,
                        "peak_fraction": rate.peak_fraction,
                        "fma_peak_gflops": peak.map(|p| p.gflops()),
                    })
                );
            } else {
                let dash = || "-".to_string();
                outln!(
                    "{:<6} {:<12} {:>4} {:>5} {:>4} {:>5} {:>8} {:>11} {:>11} {:>8} {:>6}  {}",
                    setup.to_string(),
                    name,
                    data.visible(),
                    cfg.hidden,
                    k.map_or_else(dash, |k| k.to_string()),
                    cfg.batch,
                    timing.batches_per_epoch,
                    secs(timing.seconds_per_epoch()),
                    secs(timing.seconds_per_batch()),
                    rate.gflops.map_or_else(dash, |x| format!("{x:.1}")),
                    rate.peak_fraction.map_or_else(dash, |x| format!("{:.1}", 100.0 * x)),
                    isa.name()
                );
            }
        }
    }
    Ok(())
}

/// A row's arithmetic rate; each `None` where the flops (or the peak) are not known.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Rate {
    /// GFLOP per update, the mean over the epoch's batches.
    gflop_per_batch: Option<f64>,
    /// GFLOP per second: the epoch's flops over the median seconds per epoch.
    gflops: Option<f64>,
    /// `gflops` over the FMA peak.
    peak_fraction: Option<f64>,
}

impl Rate {
    fn new(epoch_flops: Option<u64>, timing: &EpochTiming, peak: Option<FmaPeak>) -> Self {
        let gflop = epoch_flops.map(|f| f as f64 / 1e9);
        let gflops = gflop.map(|g| g / timing.seconds_per_epoch());
        Rate {
            gflop_per_batch: gflop.map(|g| g / timing.batches_per_epoch as f64),
            gflops,
            peak_fraction: gflops.zip(peak).map(|(g, p)| g / p.gflops()),
        }
    }
}

/// The method's name as `--methods` takes it; PCD with the default 2048 chains prints as
/// `pcd:K`.
fn method_name(m: Method) -> String {
    match m {
        Method::Pcd { k, chains: 2048 } => format!("pcd:{k}"),
        _ => m.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setups_have_the_papers_sizes() {
        for (s, v, h, k, b) in [
            (Setup::Bars4, 16, 1000, 8, 3),
            (Setup::Bas12, 144, 1000, 40, 120),
            (Setup::Mnist, 784, 3000, 200, 8000),
        ] {
            let d = s.dataset(0);
            let c = s.config(Method::Pid(NegativePhase::Patterns), 0);
            assert_eq!((d.visible(), c.hidden, c.patterns, c.batch, c.eval_every), (v, h, k, b, 0));
            assert!(c.validate(&d).is_ok(), "{s}");
            for m in s.default_methods() {
                assert!(s.config(m, 0).validate(&d).is_ok(), "{s} {m}");
            }
            assert_eq!(s.to_string().parse::<Setup>(), Ok(s));
        }
        assert_eq!(Setup::Bas12.dataset(0).n_train(), 6550);
        assert_eq!(batches_per_epoch(&Setup::Bas12.config(Method::Cd { k: 10 }, 0), 6550), 55);
        assert_eq!(batches_per_epoch(&Setup::Mnist.config(Method::Cd { k: 10 }, 0), 8000), 1);
        assert_eq!(batches_per_epoch(&Setup::Bars4.config(Method::Cd { k: 10 }, 0), 10), 10);
    }

    #[test]
    fn epoch_flops_sum_the_batches() {
        let pid = Method::Pid(NegativePhase::Patterns);
        let mnist = Setup::Mnist.config(pid, 0);
        let data = Setup::Mnist.dataset(0);
        // One batch of 8000: docs/speed.md's 34.7 GFLOP.
        let f = epoch_flops(&mnist, &data).unwrap();
        assert_eq!((f as f64 / 1e8).round(), 347.0);
        let cd = Setup::Mnist.config(Method::Cd { k: 10 }, 0);
        assert_eq!((epoch_flops(&cd, &data).unwrap() as f64 / 1e10).round(), 90.0);
        // Bars: 10 images in batches of 3, 3, 3 and 1; each pid update adds K = 8 samples.
        let bars = Setup::Bars4.config(pid, 0);
        let d = bars4();
        let per_row = 2 * 8 * (2 * 16 + 3 * 1000);
        assert_eq!(epoch_flops(&bars, &d), Some((3 * (3 + 8) + (1 + 8)) * per_row));
        let dropped = TrainConfig { partial_batch: PartialBatch::Drop, ..bars };
        assert_eq!(epoch_flops(&dropped, &d), Some(3 * (3 + 8) * per_row));
        let int = TrainConfig { arith: Arith::Int, ..bars };
        assert_eq!(epoch_flops(&int, &d), None);
        assert_eq!(epoch_flops(&Setup::Bars4.config(Method::Exact, 0), &d), None);
    }

    #[test]
    fn rates_need_flops_and_a_peak() {
        let timing = EpochTiming { batches_per_epoch: 4, seconds: vec![2.0, 1.0, 3.0] };
        let peak = FmaPeak { isa: kernels::Isa::Avx2, threads: 2, flops_per_second: 40e9 };
        let r = Rate::new(Some(8_000_000_000), &timing, Some(peak));
        assert_eq!(
            (r.gflop_per_batch, r.gflops, r.peak_fraction),
            (Some(2.0), Some(4.0), Some(0.1))
        );
        let r = Rate::new(Some(8_000_000_000), &timing, None);
        assert_eq!((r.gflops, r.peak_fraction), (Some(4.0), None));
        let r = Rate::new(None, &timing, Some(peak));
        assert_eq!((r.gflop_per_batch, r.gflops, r.peak_fraction), (None, None, None));
    }

    #[test]
    fn epochs_are_timed_without_evaluation() {
        let d = bars4();
        let cfg = TrainConfig { hidden: 30, ..Setup::Bars4.config(Method::Cd { k: 1 }, 0) };
        let mut seen = 0;
        let t = time_epochs(&cfg, &d, 1, 3, |_, s| {
            assert!(s > 0.0);
            seen += 1;
        })
        .unwrap();
        assert_eq!((seen, t.seconds.len(), t.batches_per_epoch), (3, 3, 10));
        assert!(t.seconds_per_batch() > 0.0 && t.seconds_per_batch() < t.seconds_per_epoch());
    }
}
