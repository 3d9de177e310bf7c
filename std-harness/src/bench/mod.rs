//! `rapid bench`: how long training takes.
//!
//! * **`rapid bench paper`** times whole training epochs of the paper's three set-ups with the
//!   real training loop ([`Trainer::train_epoch`], the code behind `rapid train`), evaluation
//!   off. Each row: `warmup` untimed epochs, then `repeats` epochs timed one by one with
//!   [`Instant`]; the median is reported, and the seconds per batch are that median over the
//!   batches (updates) per epoch.
//!
//!   | set-up | data | V | H | K | batch |
//!   | --- | --- | --- | --- | --- | --- |
//!   | `bars4` | Bars 4×4, 10 training images | 16 | 1000 | 8 | 3 (`pid*`), 1 (dense) |
//!   | `bas12` | BAS 12×12, 6550 training images | 144 | 1000 | 40 | 120 |
//!   | `mnist` | 8000 random ±1 images ([`crate::data::random`]) | 784 | 3000 | 200 | 8000 |
//!
//!   The other settings are [`TrainConfig::paper`]'s (Bars: SGD for RAPID, Adam for the dense
//!   baselines), plus the MNIST set-up's SGD η = 0.015 and `clamp:1` projection for RAPID on
//!   `mnist`. The cost of an epoch does not depend on the pixel values, so random images of
//!   the MNIST size time the MNIST set-up without the MNIST files.
//!
//!   Before the rows it measures the f32 FMA peak at the kernel level in use
//!   ([`measure_fma_peak`]: the core's register-only loops on every rayon thread at once); each
//!   row reports GFLOP/s, the flops of an epoch's matrix products ([`epoch_flops`], from
//!   [`update_flops`]) over the median seconds per epoch, and that as a fraction of the peak.
//!
//! * **`rapid bench scaling`** times one training step (one batch update) of three methods
//!   over a sweep of model sizes `N = V + H`, with `V = H/4`, fixed `K` and batch, on random
//!   ±1 data, and fits the slope of `log(time)` against `log(N)`:
//!
//!   | method | what one step does | cost |
//!   | --- | --- | --- |
//!   | `pid-lowrank` | the core's [`Engine::step`]: `pid`, SGD, `sign` after every step; `W` never formed | O((B+K)·K·(V+H)) |
//!   | `pid-formed-w` | forms `W = Ξ_vᵀΞ_h/√K`, the phases from the dense `W`, the `W` gradient chained back to `Ξ` ([`FormedW`]), then the core's [`Engine::finish`] (the same SGD and projection) | O((B+K)·V·H) |
//!   | `cd:10` | the core's [`Engine::step`]: CD-10 + Adam on a dense model of the same `V`, `H` | O(10·B·V·H) |
//!
//!   `pid-formed-w` is the cost model of an implementation that forms `W`: it computes the
//!   same gradient as `pid-lowrank` (checked by a unit test) at the dense cost. Both PID
//!   methods sign the patterns after every step (`--projection sign:1`, O(K(V+H))), so the
//!   model stays bounded however many steps a timed run takes (without it, SGD at η = 0.02
//!   diverges within a few dozen steps at N = 4000). With `V = H/4`,
//!   `V·H = 4N²/25`, so the dense methods should approach slope 2 and the low-rank one slope 1.
//!
//! Every random choice (the BAS split, the random data, initial parameters, Gibbs draws)
//! comes from the seed through [`crate::seed::stream`]. `bench paper` trains on the rayon pool
//! (`--threads`, default all cores; the results do not depend on it) and measures the FMA peak on
//! as many threads; `bench scaling` calls the core's steps on the calling thread.
//!
//! The two commands live in `paper` and `scaling`; this module holds `BenchArgs`, the error
//! type, the `--isa` choice and the helpers both print with. Every public item is re-exported
//! here.
//!
//! [`Trainer::train_epoch`]: crate::run::Trainer::train_epoch
//! [`TrainConfig::paper`]: crate::run::TrainConfig::paper
//! [`Instant`]: std::time::Instant
//! [`Engine::step`]: rapid_core::step::Engine::step
//! [`Engine::finish`]: rapid_core::step::Engine::finish
//! [`update_flops`]: rapid_core::step::update_flops

use std::fmt::Write as _;
use std::str::FromStr;

use clap::{Args, Subcommand, ValueEnum};
use rapid_core::kernels::{self, Isa};

mod paper;
mod peak;
mod scaling;

pub use paper::{batches_per_epoch, epoch_flops, time_epochs, EpochTiming, Setup, MNIST_IMAGES};
pub use peak::{measure_fma_peak, FmaPeak};
pub use scaling::{
    loglog_slope, run_scaling, FormedW, ScalingConfig, ScalingCurve, ScalingMethod, ScalingPoint,
    DEFAULT_SIZES,
};

use paper::PaperArgs;
use scaling::ScalingArgs;

/// `rapid bench`: the command-line arguments.
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    which: BenchCommand,
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Time training epochs of the paper's set-ups (Bars 4x4, BAS 12x12, MNIST sizes).
    Paper(PaperArgs),
    /// Time one training step over a sweep of sizes N = V + H: PID low rank, PID with W
    /// formed, CD-10; fit the log-log slopes.
    Scaling(ScalingArgs),
}

/// Why a benchmark could not run: the exit code (2 for bad input, 1 for a failure during
/// work) and a one-line message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchError {
    /// Process exit code.
    pub code: u8,
    /// One line, without the `rapid: error:` prefix.
    pub message: String,
}

impl BenchError {
    fn input(message: impl Into<String>) -> Self {
        BenchError { code: 2, message: message.into() }
    }

    fn work(message: impl Into<String>) -> Self {
        BenchError { code: 1, message: message.into() }
    }
}

/// Runs `rapid bench paper` or `rapid bench scaling`: results on stdout, progress on stderr.
///
/// # Errors
/// Bad arguments (code 2) or a failure during work (code 1).
pub fn run(args: BenchArgs) -> Result<(), BenchError> {
    match args.which {
        BenchCommand::Paper(a) => paper::cmd_paper(a),
        BenchCommand::Scaling(a) => scaling::cmd_scaling(a),
    }
}

/// `--isa`: `auto` (the detected level) or a level's [`Isa::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsaChoice {
    /// Keep the level the kernels detected.
    Auto,
    /// Force this level.
    Force(Isa),
}

impl FromStr for IsaChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            return Ok(IsaChoice::Auto);
        }
        Isa::from_name(s).map(IsaChoice::Force).ok_or_else(|| {
            let names = std::iter::once("auto").chain(Isa::ALL.iter().map(|isa| isa.name()));
            format!("unknown ISA '{s}' (expected {})", one_of(names))
        })
    }
}

/// Makes the kernels use `choice` and returns the level in use.
///
/// # Errors
/// A level this CPU cannot run (code 2); the level stays as it was.
pub fn select_isa(choice: IsaChoice) -> Result<Isa, BenchError> {
    if let IsaChoice::Force(isa) = choice {
        kernels::force(isa).map_err(|e| BenchError::input(format!("--isa {}: {e}", isa.name())))?;
    }
    Ok(kernels::active())
}

/// The CPU's model name from `/proc/cpuinfo`, when there is one.
fn cpu_name() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// The header line: CPU, kernel level and the threads the timed code runs on (`threads`).
fn machine_line(isa: Isa, threads: usize) -> String {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!(
        "CPU {}; kernels {} (best on this CPU: {}); training on {threads} thread{} ({cpus} available)",
        cpu_name().unwrap_or_else(|| "unknown".into()),
        isa.name(),
        Isa::detect().name(),
        if threads == 1 { "" } else { "s" },
    )
}

/// Median of the values (mean of the middle two for an even count); NaN when empty.
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// Seconds with four significant digits, in plain decimal notation.
fn secs(x: f64) -> String {
    if !(x.is_finite() && x > 0.0) {
        return format!("{x}");
    }
    let decimals = (3 - x.log10().floor() as i32).clamp(0, 12) as usize;
    format!("{x:.decimals$}")
}

/// The names as a list for a message: `a`, `a or b`, `a, b or c`.
fn one_of<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    let mut text = String::new();
    for (i, name) in names.iter().enumerate() {
        let sep = match i {
            0 => "",
            _ if i + 1 == names.len() => " or ",
            _ => ", ",
        };
        let _ = write!(text, "{sep}{name}");
    }
    text
}

/// Parses a [`ValueEnum`]'s name, or says what `what` it is not and lists the names:
/// `unknown set-up 'x' (expected bars4, bas12 or mnist)`. The options parse with this rather
/// than clap's own `ValueEnum` parser, whose error lists the names on a second line, which
/// `rapid` (one line per error) drops.
fn parse_choice<T: ValueEnum>(what: &str, s: &str) -> Result<T, String> {
    T::from_str(s, false).map_err(|_| {
        let names: Vec<_> = T::value_variants().iter().filter_map(T::to_possible_value).collect();
        format!("unknown {what} '{s}' (expected {})", one_of(names.iter().map(|v| v.get_name())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn isa_names_are_checked() {
        assert_eq!(
            "nonsense".parse::<IsaChoice>().unwrap_err(),
            "unknown ISA 'nonsense' (expected auto, scalar, avx2 or avx512)"
        );
        assert_eq!("auto".parse::<IsaChoice>(), Ok(IsaChoice::Auto));
        assert_eq!("avx2".parse::<IsaChoice>(), Ok(IsaChoice::Force(Isa::Avx2)));
        assert_eq!(select_isa(IsaChoice::Auto).unwrap(), kernels::active());
    }

    #[test]
    fn choices_are_listed() {
        assert_eq!(one_of(["a"]), "a");
        assert_eq!(one_of(["a", "b"]), "a or b");
        assert_eq!(one_of(["a", "b", "c"]), "a, b or c");
        assert_eq!(
            parse_choice::<Setup>("set-up", "mnist2").unwrap_err(),
            "unknown set-up 'mnist2' (expected bars4, bas12 or mnist)"
        );
    }
}
