//! `rapid reproduce`: the paper's Figs. 1-3 and 4 and their summary tables.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use rapid_harness::fig4::{fig4a, fig4b, Fig4aConfig, Fig4bConfig};
use rapid_harness::outln;
use rapid_harness::reproduce::{
    paper_methods, replot, replottable, reproduce, ReplotError, ReproduceConfig,
};
use serde_json::Value;

use super::{check_counts, fail, whole, Progress};

#[derive(Args)]
#[command(after_long_help = "\
Trains RAPID (pid), CD-10, PCD-10 (2048 chains) and exact-gradient training on Bars 4x4 with
the paper's settings, for seeds 0..N, in parallel over the cores; every run is deterministic in
its seed and the output does not depend on the thread count. Every epoch is evaluated.
Writes to DIR: runs.csv, fig1.csv, fig2.csv, fig3.csv, fig1/fig2/fig3 .png and .svg (mean over
seeds with ±1 standard deviation bands, log epoch axis), and summary.json (values at epochs 1,
10, 100, 300 and the wall time). All figures come from the same runs, so naming several costs
nothing extra.

fig4a: RAPID on BAS 12x12 with its preset (K=40, H=1000, batch 120, 80/20 split) for seeds
0..N in parallel: HD of the training and test sets at epochs 1, 2, 3, 5, 7, 10, 20, ... and the
last (--eval-repeats draws per image), then --chains samples per seed from v = 0 (--steps Gibbs
steps): the share of valid BAS images and of novel ones among them. Writes fig4a.csv,
fig4a-runs.csv, fig4a.png/svg, fig4a-samples.png (seed 0, novel samples framed) and
fig4a-summary.json.

fig4b: on the MNIST subset, RAPID (pid-gibbs:1, pid-gibbs:10), PCD-10 (100 chains) and CD-10, each with the
MNIST preset for its method, train one after the other for --budget training seconds on the
whole machine; --snapshots models per method, evenly spaced over the budget, are measured by
AIS (test NLL per image in nats, an estimate that is low in expectation) and the final models
by RAISE on --raise-images test images (high in expectation). Evaluation is off the clock.
Writes fig4b.csv, fig4b.png/svg (test NLL against training seconds), fig4b-samples.png (10x10
samples of pid-gibbs:1, random start, 200 steps) and fig4b-summary.json. Times depend on the
machine and on what else runs on it.

Figure style: each method has one colour and one line style in every figure (RAPID blue solid
with circles, CD-10 orange dashed with triangles, PCD-10 green dotted with squares, Exact red
dash-dot with crosses, pid-gibbs:10 purple long dashes with diamonds), so curves that coincide
stay visible; fig4a draws the training set like RAPID and the test set like CD-10. The legend
sits below the plots. Bands are clamped to the metric's range (a Hamming distance or an
accessibility to [0, 1], singular values to [0, inf)).

--replot draws the figures again from the CSVs of an earlier run in --out DIR, without
training, and writes the .png and .svg beside them: the numbers stay those of that run, the
style is this version's. Name the figures (all = fig1, fig2, fig3), or none for every figure
whose CSV is in DIR: fig1.csv, fig2.csv, fig3.csv, fig4a.csv, fig4b.csv. Titles take the epochs,
seeds or budget from summary.json, fig4a-summary.json, fig4b-summary.json when they are there.
A fig3.csv without the scaled_mean/scaled_std columns gives the first panel only. A missing or
malformed CSV is an error (exit 2) that names the file, line and column.

Example: rapid reproduce --replot --out docs/figures")]
pub(crate) struct ReproduceArgs {
    /// Figures: fig1, fig2, fig3 or all (Bars 4x4; the runs are shared, all three are
    /// written), fig4a (BAS 12x12), fig4b (MNIST).
    #[arg(
        required_unless_present = "replot",
        value_parser = ["fig1", "fig2", "fig3", "all", "fig4a", "fig4b"]
    )]
    figures: Vec<String>,
    /// Draw the figures again from the CSVs of an earlier run in --out DIR, without training
    /// (no figure named: every one whose CSV is there).
    #[arg(
        long,
        conflicts_with_all = [
            "seeds", "epochs", "eval_repeats", "chains", "steps", "budget", "snapshots",
            "ais_betas", "ais_runs", "raise_images", "hidden",
        ]
    )]
    replot: bool,
    /// Seeds per method (figs 1-3, 4a).
    #[arg(long, default_value_t = 10, allow_hyphen_values = true, value_parser = whole::<u64>)]
    seeds: u64,
    /// Epochs per run [default: 300 for figs 1-3, 100 for fig4a].
    #[arg(long, allow_hyphen_values = true, value_parser = whole::<u32>)]
    epochs: Option<u32>,
    /// HD draws per image (fig4a).
    #[arg(long, default_value_t = 20, allow_hyphen_values = true, value_parser = whole::<usize>)]
    eval_repeats: usize,
    /// Samples per seed (fig4a).
    #[arg(long, default_value_t = 1000, allow_hyphen_values = true, value_parser = whole::<usize>)]
    chains: usize,
    /// Gibbs steps per sample (fig4a).
    #[arg(long, default_value_t = 200, allow_hyphen_values = true, value_parser = whole::<usize>)]
    steps: usize,
    /// Training seconds per method (fig4b).
    #[arg(long, default_value_t = 120.0, allow_hyphen_values = true)]
    budget: f64,
    /// Models measured per method (fig4b).
    #[arg(long, default_value_t = 6, allow_hyphen_values = true, value_parser = whole::<usize>)]
    snapshots: usize,
    /// AIS inverse temperatures per measurement (fig4b).
    #[arg(long, default_value_t = 3000, allow_hyphen_values = true, value_parser = whole::<usize>)]
    ais_betas: usize,
    /// AIS runs per measurement (fig4b).
    #[arg(long, default_value_t = 32, allow_hyphen_values = true, value_parser = whole::<usize>)]
    ais_runs: usize,
    /// Test images for RAISE on the final models (fig4b; 0: none).
    #[arg(long, default_value_t = 100, allow_hyphen_values = true, value_parser = whole::<usize>)]
    raise_images: usize,
    /// Hidden units.
    #[arg(long, default_value_t = 1000, allow_hyphen_values = true, value_parser = whole::<usize>)]
    hidden: usize,
    /// Output folder.
    #[arg(long, value_name = "DIR", default_value = "figures")]
    out: PathBuf,
}

pub(crate) fn cmd_reproduce(a: ReproduceArgs) -> ExitCode {
    if a.replot {
        return cmd_replot(&a.figures, &a.out);
    }
    if let Err(e) = check_counts(&[
        ("--seeds", usize::try_from(a.seeds).unwrap_or(usize::MAX)),
        ("--eval-repeats", a.eval_repeats),
        ("--chains", a.chains),
        ("--steps", a.steps),
        ("--snapshots", a.snapshots),
        ("--ais-betas", a.ais_betas),
        ("--ais-runs", a.ais_runs),
        ("--raise-images", a.raise_images),
    ]) {
        return fail(2, e);
    }
    if a.seeds == 0 || a.epochs == Some(0) {
        return fail(2, "--seeds and --epochs must be at least 1");
    }
    let wants = |f: &str| a.figures.iter().any(|x| x == f);
    if wants("fig4a") || wants("fig4b") {
        if a.eval_repeats == 0 || a.chains == 0 || a.snapshots == 0 || a.ais_runs == 0 {
            return fail(
                2,
                "--eval-repeats, --chains, --snapshots and --ais-runs must be at least 1",
            );
        }
        if !(a.budget.is_finite() && a.budget > 0.0) || a.ais_betas < 3 {
            return fail(2, "--budget must be positive and --ais-betas at least 3");
        }
    }
    if wants("fig4a") {
        let cfg = Fig4aConfig {
            seeds: a.seeds,
            epochs: a.epochs.unwrap_or(100),
            eval_repeats: a.eval_repeats,
            chains: a.chains,
            steps: a.steps,
            out: a.out.clone(),
        };
        eprintln!(
            "rapid reproduce fig4a: BAS 12x12, {} seeds x {} epochs on {} threads",
            cfg.seeds,
            cfg.epochs,
            rayon::current_num_threads()
        );
        let pb = Progress::new(cfg.seeds * u64::from(cfg.epochs), 0, "epochs");
        let r = fig4a(&cfg, &|done, _| pb.set_position(done));
        pb.finish_and_clear();
        match r {
            Ok(s) => print_fig4a(&s, &a.out),
            Err(e) => return fail(1, e),
        }
    }
    if wants("fig4b") {
        let cfg = Fig4bConfig {
            budget: a.budget,
            snapshots: a.snapshots,
            ais_betas: a.ais_betas,
            ais_runs: a.ais_runs,
            raise_images: a.raise_images,
            seed: 0,
            out: a.out.clone(),
        };
        eprintln!(
            "rapid reproduce fig4b: MNIST subset, 4 methods x {:.0} training seconds on {} threads, then AIS",
            cfg.budget,
            rayon::current_num_threads()
        );
        match fig4b(&cfg, &|line| eprintln!("{line}")) {
            Ok(s) => print_fig4b(&s, &a.out),
            Err(e) => return fail(1, e),
        }
    }
    if !(wants("fig1") || wants("fig2") || wants("fig3") || wants("all")) {
        return ExitCode::SUCCESS;
    }
    let epochs = a.epochs.unwrap_or(300);
    if a.hidden == 0 {
        return fail(2, "--hidden must be at least 1");
    }
    let cfg = ReproduceConfig {
        seeds: a.seeds,
        epochs,
        hidden: a.hidden,
        out: a.out.clone(),
        methods: paper_methods(),
    };
    eprintln!(
        "rapid reproduce {}: {} methods x {} seeds x {} epochs on {} threads",
        a.figures.join(","),
        cfg.methods.len(),
        a.seeds,
        epochs,
        rayon::current_num_threads()
    );
    let pb = Progress::new(cfg.methods.len() as u64 * a.seeds * u64::from(epochs), 0, "epochs");
    let result = reproduce(&cfg, &|done, _| pb.set_position(done));
    pb.finish_and_clear();
    match result {
        Ok((curves, wall)) => {
            outln!(
                "# Bars 4x4, {} seeds, {} epochs, wall time {wall:.1} s; written to {}",
                a.seeds,
                epochs,
                a.out.display()
            );
            outln!(
                "{:>14} {:>6} {:>15} {:>15} {:>15} {:>15}",
                "method",
                "epoch",
                "hd_train",
                "hd_test",
                "gs_access",
                "method_access"
            );
            let ms = |x: (f64, f64)| {
                if x.0.is_finite() {
                    format!("{:.3}±{:.3}", x.0, x.1)
                } else {
                    "-".into()
                }
            };
            for c in &curves {
                for e in [1u32, 10, 100, 300].into_iter().filter(|&e| e <= epochs) {
                    let i = e as usize - 1;
                    outln!(
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

/// `rapid reproduce --replot`: the named figures (or every one with a CSV in `dir`) drawn
/// again from their CSVs.
fn cmd_replot(figures: &[String], dir: &Path) -> ExitCode {
    let mut names: Vec<&str> = Vec::new();
    for f in figures {
        let add: &[&str] = if f == "all" { &["fig1", "fig2", "fig3"] } else { &[f.as_str()] };
        for &n in add {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    if names.is_empty() {
        names = replottable(dir);
        if names.is_empty() {
            return fail(
                2,
                format!(
                    "{}: no figure CSV to replot (fig1.csv, fig2.csv, fig3.csv, fig4a.csv, \
                     fig4b.csv); give --out the folder of an earlier `rapid reproduce` run",
                    dir.display()
                ),
            );
        }
    }
    for name in names {
        match replot(dir, name) {
            Ok(r) => {
                let files: Vec<String> = r.files.iter().map(|f| f.display().to_string()).collect();
                outln!("{name}: {}", files.join(", "));
                for note in &r.notes {
                    eprintln!("rapid: note: {note}");
                }
            }
            Err(e @ ReplotError::Input(_)) => return fail(2, e),
            Err(e @ ReplotError::Output(_)) => return fail(1, e),
        }
    }
    ExitCode::SUCCESS
}

fn num(v: &Value) -> String {
    v.as_f64().map_or_else(|| "-".into(), |x| format!("{x:.4}"))
}

fn print_fig4a(s: &Value, out: &std::path::Path) {
    outln!(
        "# fig4a: BAS 12x12, RAPID, {} seeds, {} epochs, wall time {:.1} s; written to {}",
        s["seeds"],
        s["epochs"],
        s["wall_seconds"].as_f64().unwrap_or(f64::NAN),
        out.display()
    );
    outln!("{:>7} {:>17} {:>17}", "epoch", "hd_train", "hd_test");
    for p in s["hd"].as_array().into_iter().flatten() {
        outln!(
            "{:>7} {:>8}±{:<8} {:>8}±{:<8}",
            p["epoch"].as_u64().unwrap_or(0),
            num(&p["hd_train"]["mean"]),
            num(&p["hd_train"]["std"]),
            num(&p["hd_test"]["mean"]),
            num(&p["hd_test"]["std"])
        );
    }
    let smp = &s["samples"];
    outln!(
        "# samples from v = 0 ({} per seed, {} steps): valid {}±{}, novel among the valid {}±{}",
        smp["chains"],
        smp["steps"],
        num(&smp["valid"]["mean"]),
        num(&smp["valid"]["std"]),
        num(&smp["novel_of_valid"]["mean"]),
        num(&smp["novel_of_valid"]["std"])
    );
}

fn print_fig4b(s: &Value, out: &std::path::Path) {
    outln!(
        "# fig4b: MNIST subset, {:.0} training seconds per method, wall time {:.1} s; written to {}",
        s["budget_seconds"].as_f64().unwrap_or(f64::NAN),
        s["wall_seconds"].as_f64().unwrap_or(f64::NAN),
        out.display()
    );
    outln!(
        "# test NLL per image in nats (uniform model: {}); AIS is low in expectation, RAISE high, the last column certain",
        num(&s["uniform_nll"])
    );
    outln!(
        "{:>16} {:>7} {:>9} {:>12} {:>12} {:>12}",
        "method",
        "epochs",
        "seconds",
        "nll_ais",
        "nll_raise",
        "nll_at_least"
    );
    for m in s["methods"].as_array().into_iter().flatten() {
        outln!(
            "{:>16} {:>7} {:>9.1} {:>12} {:>12} {:>12}",
            m["method"].as_str().unwrap_or("?"),
            m["epochs"].as_u64().unwrap_or(0),
            m["train_seconds"].as_f64().unwrap_or(f64::NAN),
            num(&m["nll_test_ais"]),
            num(&m["raise"]["mean_nll"]),
            num(&m["nll_test_at_least"])
        );
    }
}
