//! `rapid reproduce`: the paper's Figs. 1-3 and a summary table.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use rapid_harness::reproduce::{paper_methods, reproduce, ReproduceConfig};

use super::{fail, progress_bar};

#[derive(Args)]
#[command(after_long_help = "\
Trains RAPID (pid), CD-10, PCD-10 (2048 chains) and exact-gradient training on Bars 4x4 with
the paper's settings, for seeds 0..N, in parallel over the cores; every run is deterministic in
its seed and the output does not depend on the thread count. Every epoch is evaluated.
Writes to DIR: runs.csv, fig1.csv, fig2.csv, fig3.csv, fig1/fig2/fig3 .png and .svg (mean over
seeds with ±1 standard deviation bands, log epoch axis), and summary.json (values at epochs 1,
10, 100, 300 and the wall time). All figures come from the same runs, so naming several costs
nothing extra.")]
pub(crate) struct ReproduceArgs {
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

pub(crate) fn cmd_reproduce(a: ReproduceArgs) -> ExitCode {
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
