//! The `rapid` command-line program.

mod cli;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use rapid_harness::bench::{self, BenchArgs};
use rapid_harness::limits;

use cli::eval::{cmd_eval, EvalArgs};
use cli::export::{cmd_export, ExportArgs};
use cli::fail;
use cli::reproduce::{cmd_reproduce, ReproduceArgs};
use cli::sample::{cmd_sample, SampleArgs};
use cli::train::{cmd_train, explicit_settings, TrainArgs};

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
    #[arg(long, global = true, value_name = "N", allow_hyphen_values = true, value_parser = cli::whole::<usize>)]
    threads: Option<usize>,
    /// Kernel level: auto (the best this CPU runs), scalar, avx2 or avx512. Results are
    /// bit-reproducible for a seed and a level; the scalar level gives the same bits on every
    /// architecture.
    #[arg(long, global = true, value_name = "LEVEL", default_value = "auto")]
    isa: bench::IsaChoice,
    /// Memory budget (bytes, or with K, M, G, T): work that would need more is refused before
    /// it starts, in one line [default: three quarters of this machine's memory].
    #[arg(long, global = true, value_name = "SIZE", value_parser = limits::parse_size)]
    max_memory: Option<u64>,
    /// Largest exact enumeration (exact NLL, log Z, ground state; the exact method), as its
    /// cost 2^min(V,H) · max(V,H) in unit updates [default: 2147483648 = 2^31, some tens of
    /// seconds on two cores].
    #[arg(long, global = true, value_name = "N", allow_hyphen_values = true, value_parser = cli::whole::<u64>)]
    max_enum_work: Option<u64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model on a built-in dataset and report the reconstruction HD per epoch.
    Train(TrainArgs),
    /// Evaluate a model file: HD, exact NLL and ground state when enumerable, GS accessibility.
    Eval(EvalArgs),
    /// Draw samples from a model file by block Gibbs sampling: a PNG grid and/or .npy, and
    /// for BAS the share of valid and novel samples.
    Sample(SampleArgs),
    /// Export a model file's weights as NumPy .npy files (W, xi, a, b).
    Export(ExportArgs),
    /// Reproduce the paper's Figs. 1-3 on Bars 4x4: RAPID vs CD-10, PCD-10 and exact training.
    Reproduce(ReproduceArgs),
    /// Time training: the paper's set-ups per epoch (paper), and one step over a sweep of
    /// model sizes (scaling).
    Bench(BenchArgs),
}

/// The most worker threads `--threads` starts: far more than any machine's cores, and
/// each thread costs a stack.
const MAX_THREADS: usize = 1024;

fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        // Help and version go to stdout as clap prints them (as does the help clap shows when a
        // subcommand is missing).
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            e.exit()
        }
        // Every other error (unknown flag, missing or bad value, conflict) is one line: clap's
        // first line, which names the option and the problem, and where to look.
        Err(e) => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("").trim_start_matches("error: ");
            let names = ["train", "eval", "sample", "export", "reproduce", "bench"];
            let sub = std::env::args().skip(1).find(|a| names.contains(&a.as_str()));
            let help = sub.map_or_else(|| "rapid --help".into(), |s| format!("rapid {s} --help"));
            return fail(2, format_args!("{first} (see {help})"));
        }
    };
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli::interrupt::install(&matches);
    if let Some(bytes) = cli.max_memory {
        limits::set_max_memory(bytes);
    }
    if let Some(work) = cli.max_enum_work {
        limits::set_max_enum_work(work);
    }
    if let Some(n) = cli.threads {
        if n == 0 {
            return fail(2, "--threads must be at least 1");
        }
        if n > MAX_THREADS {
            return fail(
                2,
                format_args!("--threads {n} is above the limit of {MAX_THREADS} (results do not depend on the thread count)"),
            );
        }
        if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(n).build_global() {
            return fail(1, format!("could not start {n} threads: {e}"));
        }
    }
    if let Err(e) = bench::select_isa(cli.isa) {
        return fail(e.code, e.message);
    }
    let code = match cli.command {
        Command::Train(a) => {
            let sub = matches.subcommand_matches("train").expect("train subcommand");
            cmd_train(a, explicit_settings(sub))
        }
        Command::Eval(a) => cmd_eval(a),
        Command::Sample(a) => cmd_sample(a),
        Command::Export(a) => cmd_export(a),
        Command::Reproduce(a) => cmd_reproduce(a),
        Command::Bench(a) => match bench::run(a) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e.code, e.message),
        },
    };
    // Output lost to a closed or failing stdout did not stop the work (its files are
    // written); say so once. A reader that stopped reading (a closed pipe, as `| head`) is
    // not an error; any other failure to write the results is.
    match rapid_harness::stdout::failure() {
        None => code,
        Some(std::io::ErrorKind::BrokenPipe) => {
            eprintln!(
                "rapid: note: stdout was closed (broken pipe); the rest of the output was \
                 dropped, the work was finished"
            );
            code
        }
        Some(kind) => {
            let e = std::io::Error::from(kind);
            fail(1, format_args!("writing the results to stdout failed ({e}); the work was finished and its files written"))
        }
    }
}
