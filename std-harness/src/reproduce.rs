//! `rapid reproduce`: the paper's Figs. 1–3 on Bars 4×4.
//!
//! Trains RAPID (`pid`), CD-10, PCD-10 (2048 chains) and exact-gradient training, each with
//! the paper's settings ([`TrainConfig::paper`]), for seeds `0..seeds`. The `(method, seed)`
//! runs go in parallel over the machine's cores, the costliest methods first, each run to the
//! next free thread; each run is deterministic in its seed, and the aggregation runs in a
//! fixed order, so the output does not depend on the thread count or the schedule.
//!
//! Every epoch of every run is evaluated: reconstruction HD (Fig. 2), Gibbs GS accessibility
//! and method accessibility (Fig. 1), and the singular values of `W` (Fig. 3, after the last
//! epoch). Outputs in the chosen folder:
//!
//! | file | content |
//! | --- | --- |
//! | `runs.csv` | one row per method, seed and epoch |
//! | `fig1.csv`, `fig2.csv` | per method and epoch: mean and standard deviation over seeds |
//! | `fig3.csv` | per method and singular-value index, after the last epoch |
//! | `fig1.{png,svg}`, `fig2.{png,svg}`, `fig3.{png,svg}` | the figures |
//! | `summary.json` | the values at epochs 1, 10, 100, 300 (when run that long), wall time |
//!
//! Standard deviations are over seeds with the `n − 1` denominator (0 for one seed).
//!
//! The figures' style (a line style per method, the legend below, bands clamped to the
//! metric's range) is described in [`crate::plot`]. [`replot`] (`rapid reproduce --replot`)
//! draws any of Figs. 1–3 and 4a/4b again from the CSV of an earlier run, without training.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde_json::json;

use crate::data::bars4;
use crate::modelio::AtomicFile;
use crate::plot::{draw, Panel, Series, CD, EXACT, PCD, PURPLE, RAPID};
use crate::run::{train, EpochReport, Method, Track, TrainConfig, TrainError};
use rapid_core::NegativePhase;

/// The methods compared, in the paper's order and colours.
pub fn paper_methods() -> Vec<(Method, (u8, u8, u8))> {
    vec![
        (Method::Pid(NegativePhase::Patterns), RAPID),
        (Method::Cd { k: 10 }, CD),
        (Method::Pcd { k: 10, chains: 2048 }, PCD),
        (Method::Exact, EXACT),
    ]
}

/// The order in which [`reproduce`] starts the runs of a method (lower first): the methods'
/// cost per epoch with the paper's settings on Bars 4×4, largest first (measured, CPU seconds
/// per epoch of training and evaluation: PCD-10 with 2048 chains about 0.28, exact about 0.21,
/// CD-10 about 0.015, RAPID about 0.007). Only the speed depends on it, never the results.
fn cost_rank(method: Method) -> u8 {
    match method {
        Method::Pcd { .. } => 0,
        Method::Exact => 1,
        Method::Cd { .. } => 2,
        Method::Pid(_) => 3,
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct ReproduceConfig {
    /// Seeds `0..seeds` per method.
    pub seeds: u64,
    /// Epochs per run.
    pub epochs: u32,
    /// Hidden units (paper: 1000).
    pub hidden: usize,
    /// Output folder (created if missing).
    pub out: PathBuf,
    /// Methods to run.
    pub methods: Vec<(Method, (u8, u8, u8))>,
}

/// Per-method, per-epoch statistics over seeds.
#[derive(Clone, Debug, Default)]
pub struct Curves {
    /// Method label.
    pub label: String,
    /// `(mean, std)` per epoch.
    pub hd_train: Vec<(f64, f64)>,
    /// `(mean, std)` per epoch.
    pub hd_test: Vec<(f64, f64)>,
    /// `(mean, std)` per epoch.
    pub gs_access: Vec<(f64, f64)>,
    /// `(mean, std)` per epoch (NaN where the method has none).
    pub method_access: Vec<(f64, f64)>,
    /// `(mean, std)` per singular-value index after the last epoch.
    pub svd: Vec<(f64, f64)>,
    /// The same for `σ_i/σ_1` (each run scaled by its largest singular value).
    pub svd_scaled: Vec<(f64, f64)>,
    /// Mean training seconds per epoch over all runs.
    pub seconds_per_epoch: f64,
}

/// Mean and standard deviation (`n − 1` denominator, 0 for one value) of the finite values;
/// NaN for none.
pub(crate) fn mean_std(xs: &[f64]) -> (f64, f64) {
    let xs: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}

fn aggregate(label: String, runs: &[Vec<EpochReport>]) -> Curves {
    let epochs = runs.first().map_or(0, |r| r.len());
    let col = |f: &dyn Fn(&EpochReport) -> Option<f64>| -> Vec<(f64, f64)> {
        (0..epochs)
            .map(|e| {
                mean_std(&runs.iter().map(|r| f(&r[e]).unwrap_or(f64::NAN)).collect::<Vec<_>>())
            })
            .collect()
    };
    let n_sv =
        runs.first().and_then(|r| r.last()).and_then(|l| l.svd.as_ref()).map_or(0, |s| s.len());
    let sv_col = |scaled: bool| -> Vec<(f64, f64)> {
        (0..n_sv)
            .map(|i| {
                mean_std(
                    &runs
                        .iter()
                        .map(|r| {
                            r.last().and_then(|l| l.svd.as_ref()).map_or(f64::NAN, |s| {
                                if scaled {
                                    s[i] / s[0]
                                } else {
                                    s[i]
                                }
                            })
                        })
                        .collect::<Vec<_>>(),
                )
            })
            .collect()
    };
    let total: f64 = runs.iter().flat_map(|r| r.iter().map(|e| e.seconds)).sum();
    let count = runs.iter().map(|r| r.len()).sum::<usize>().max(1);
    Curves {
        label,
        hd_train: col(&|r| r.hd_train),
        hd_test: col(&|r| r.hd_test),
        gs_access: col(&|r| r.gs_access),
        method_access: col(&|r| r.method_access),
        svd: sv_col(false),
        svd_scaled: sv_col(true),
        seconds_per_epoch: total / count as f64,
    }
}

fn fmt(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.6}")
    } else {
        String::new()
    }
}

/// Writes `bytes` to `path` atomically; the error names the file.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    AtomicFile::prepare(path)
        .and_then(|f| f.commit(bytes))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Runs everything, writes the outputs, and returns the curves and the wall seconds.
/// `progress(done, total)` is called after every trained epoch (from worker threads).
///
/// # Errors
/// A training failure or a file that cannot be written, as text.
pub fn reproduce(
    cfg: &ReproduceConfig,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<(Vec<Curves>, f64), String> {
    std::fs::create_dir_all(&cfg.out)
        .map_err(|e| format!("creating {}: {e}", cfg.out.display()))?;
    let t0 = Instant::now();
    let data = bars4();
    let jobs: Vec<(usize, u64)> =
        (0..cfg.methods.len()).flat_map(|m| (0..cfg.seeds).map(move |s| (m, s))).collect();
    let total = jobs.len() as u64 * u64::from(cfg.epochs);
    let done = AtomicU64::new(0);
    let track = Track { gs: true, method: true, svd: true, nll: false };
    // The runs start in the order of `schedule` (the costliest methods first), each taken by
    // the next free thread, so no long run starts last and leaves the other threads idle at
    // the end; the results go back to `jobs`' order.
    let mut schedule: Vec<usize> = (0..jobs.len()).collect();
    schedule.sort_by_key(|&k| cost_rank(cfg.methods[jobs[k].0].0));
    let mut ran: Vec<(usize, Result<Vec<EpochReport>, TrainError>)> = schedule
        .iter()
        .par_bridge()
        .map(|&k| {
            let (m, seed) = jobs[k];
            let tc = TrainConfig {
                hidden: cfg.hidden,
                epochs: cfg.epochs,
                seed,
                track,
                ..TrainConfig::paper(cfg.methods[m].0)
            };
            let r =
                train(&tc, &data, |_| progress(done.fetch_add(1, Ordering::Relaxed) + 1, total))
                    .map(|t| t.reports);
            (k, r)
        })
        .collect();
    ran.sort_by_key(|r| r.0);
    let results = ran.into_iter().map(|r| r.1);
    let mut per_method: Vec<Vec<Vec<EpochReport>>> = vec![Vec::new(); cfg.methods.len()];
    let mut runs_csv =
        String::from("method,seed,epoch,seconds,hd_train,hd_test,gs_access,method_access\n");
    for (&(m, seed), r) in jobs.iter().zip(results) {
        let reports = r.map_err(|e| format!("{} seed {seed}: {e}", cfg.methods[m].0))?;
        for r in &reports {
            let _ = writeln!(
                runs_csv,
                "{},{seed},{},{:.6e},{},{},{},{}",
                cfg.methods[m].0,
                r.epoch,
                r.seconds,
                fmt(r.hd_train.unwrap_or(f64::NAN)),
                fmt(r.hd_test.unwrap_or(f64::NAN)),
                fmt(r.gs_access.unwrap_or(f64::NAN)),
                fmt(r.method_access.unwrap_or(f64::NAN)),
            );
        }
        per_method[m].push(reports);
    }
    let curves: Vec<Curves> = per_method
        .iter()
        .zip(&cfg.methods)
        .map(|(runs, (method, _))| aggregate(method.label(), runs))
        .collect();
    let wall = t0.elapsed().as_secs_f64();

    write_file(&cfg.out.join("runs.csv"), runs_csv.as_bytes())?;
    let mut fig1 = String::from(
        "method,epoch,gs_access_mean,gs_access_std,method_access_mean,method_access_std\n",
    );
    let mut fig2 =
        String::from("method,epoch,hd_train_mean,hd_train_std,hd_test_mean,hd_test_std\n");
    let mut fig3 = String::from(
        "method,index,singular_value_mean,singular_value_std,scaled_mean,scaled_std\n",
    );
    for c in &curves {
        for e in 0..c.hd_train.len() {
            let _ = writeln!(
                fig1,
                "{},{},{},{},{},{}",
                c.label,
                e + 1,
                fmt(c.gs_access[e].0),
                fmt(c.gs_access[e].1),
                fmt(c.method_access[e].0),
                fmt(c.method_access[e].1)
            );
            let _ = writeln!(
                fig2,
                "{},{},{},{},{},{}",
                c.label,
                e + 1,
                fmt(c.hd_train[e].0),
                fmt(c.hd_train[e].1),
                fmt(c.hd_test[e].0),
                fmt(c.hd_test[e].1)
            );
        }
        for (i, (m, s)) in c.svd.iter().enumerate() {
            let (sm, ss) = c.svd_scaled[i];
            let _ = writeln!(
                fig3,
                "{},{},{},{},{},{}",
                c.label,
                i + 1,
                fmt(*m),
                fmt(*s),
                fmt(sm),
                fmt(ss)
            );
        }
    }
    write_file(&cfg.out.join("fig1.csv"), fig1.as_bytes())?;
    write_file(&cfg.out.join("fig2.csv"), fig2.as_bytes())?;
    write_file(&cfg.out.join("fig3.csv"), fig3.as_bytes())?;

    let colors: Vec<(u8, u8, u8)> = cfg.methods.iter().map(|m| m.1).collect();
    draw_fig1(&cfg.out, &curves, &colors)?;
    draw_fig2(&cfg.out, &curves, &colors)?;
    draw_fig3(&cfg.out, &curves, &colors, Some(cfg.epochs))?;

    let at: Vec<u32> = [1u32, 10, 100, 300].into_iter().filter(|&e| e <= cfg.epochs).collect();
    let pick = |v: &Vec<(f64, f64)>, e: u32| {
        let (m, s) = v[e as usize - 1];
        json!({"mean": if m.is_finite() { Some(m) } else { None }, "std": if s.is_finite() { Some(s) } else { None }})
    };
    let summary = json!({
        "seeds": cfg.seeds,
        "epochs": cfg.epochs,
        "hidden": cfg.hidden,
        "wall_seconds": wall,
        "methods": curves.iter().map(|c| json!({
            "method": c.label,
            "seconds_per_epoch": c.seconds_per_epoch,
            "at": at.iter().map(|&e| json!({
                "epoch": e,
                "hd_train": pick(&c.hd_train, e),
                "hd_test": pick(&c.hd_test, e),
                "gs_access": pick(&c.gs_access, e),
                "method_access": pick(&c.method_access, e),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    write_file(
        &cfg.out.join("summary.json"),
        serde_json::to_string_pretty(&summary).expect("serialisable").as_bytes(),
    )?;
    Ok((curves, wall))
}

/// Hamming distances: the axis shows at least `[0, 0.5]` (0.5 is a guess), bands stay in `[0, 1]`.
pub(crate) const HD_AXIS: Option<(f64, f64)> = Some((0.0, 0.5));
/// The values a Hamming distance (a share of pixels) or an accessibility can take.
pub(crate) const SHARE: (f64, f64) = (0.0, 1.0);

/// One series per curve of `curves` (`colors` in the same order), taking `pick`; with
/// `skip_empty`, the curves without any finite value are left out.
fn series_of(
    curves: &[Curves],
    colors: &[(u8, u8, u8)],
    pick: &dyn Fn(&Curves) -> &Vec<(f64, f64)>,
    skip_empty: bool,
) -> Vec<Series> {
    curves
        .iter()
        .zip(colors)
        .filter(|(c, _)| !skip_empty || pick(c).iter().any(|x| x.0.is_finite()))
        .map(|(c, color)| Series {
            label: c.label.clone(),
            color: *color,
            mean: pick(c).iter().map(|x| x.0).collect(),
            std: pick(c).iter().map(|x| x.1).collect(),
        })
        .collect()
}

fn epoch_panel(title: &str, y_label: &str, series: Vec<Series>, hd: bool) -> Panel {
    Panel {
        title: title.into(),
        x_label: "Epoch".into(),
        log_x: true,
        y_label: y_label.into(),
        series,
        y_range: if hd { HD_AXIS } else { None },
        bounds: SHARE,
    }
}

/// Fig. 1 (`fig1.png`, `fig1.svg` in `out`): Gibbs and method GS accessibility per epoch.
fn draw_fig1(out: &Path, curves: &[Curves], colors: &[(u8, u8, u8)]) -> Result<(), String> {
    draw(
        &out.join("fig1"),
        &[
            epoch_panel(
                "(a) Gibbs sampling",
                "Gibbs GS accessibility",
                series_of(curves, colors, &|c| &c.gs_access, false),
                false,
            ),
            epoch_panel(
                "(b) Negative phase",
                "Method GS accessibility",
                // Exact training has no negative-phase samples.
                series_of(curves, colors, &|c| &c.method_access, true),
                false,
            ),
        ],
    )
}

/// Fig. 2: reconstruction Hamming distance of the training and test sets per epoch.
fn draw_fig2(out: &Path, curves: &[Curves], colors: &[(u8, u8, u8)]) -> Result<(), String> {
    draw(
        &out.join("fig2"),
        &[
            epoch_panel(
                "(a) Training set",
                "Hamming distance",
                series_of(curves, colors, &|c| &c.hd_train, false),
                true,
            ),
            epoch_panel(
                "(b) Test set",
                "Hamming distance",
                series_of(curves, colors, &|c| &c.hd_test, false),
                true,
            ),
        ],
    )
}

/// Fig. 3: the singular values of `W` and, when `svd_scaled` is there, the same scaled by
/// the largest. `epochs` goes in the title.
fn draw_fig3(
    out: &Path,
    curves: &[Curves],
    colors: &[(u8, u8, u8)],
    epochs: Option<u32>,
) -> Result<(), String> {
    let index_panel = |title: String, y_label: &str, series, bounds| Panel {
        title,
        x_label: "Index".into(),
        log_x: false,
        y_label: y_label.into(),
        series,
        y_range: None,
        bounds,
    };
    let mut panels = vec![index_panel(
        match epochs {
            Some(e) => format!("Singular values of W after {e} epochs"),
            None => "Singular values of W after training".into(),
        },
        "Singular value",
        series_of(curves, colors, &|c| &c.svd, false),
        (0.0, f64::INFINITY),
    )];
    if curves.iter().any(|c| !c.svd_scaled.is_empty()) {
        panels.push(index_panel(
            "Scaled by the largest".into(),
            "σ / σ₁",
            series_of(curves, colors, &|c| &c.svd_scaled, false),
            SHARE,
        ));
    }
    draw(&out.join("fig3"), &panels)
}

/// The figures `rapid reproduce` draws, by name, and the CSV each is drawn from.
pub const FIGURES: [(&str, &str); 5] = [
    ("fig1", "fig1.csv"),
    ("fig2", "fig2.csv"),
    ("fig3", "fig3.csv"),
    ("fig4a", "fig4a.csv"),
    ("fig4b", "fig4b.csv"),
];

/// What [`replot`] wrote.
#[derive(Clone, Debug, Default)]
pub struct Replotted {
    /// The image files.
    pub files: Vec<PathBuf>,
    /// What the figure lacks because the CSV does not have it.
    pub notes: Vec<String>,
}

/// Why [`replot`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplotError {
    /// The CSV is missing or malformed, or the figure is unknown.
    Input(String),
    /// The figure could not be drawn or written.
    Output(String),
}

impl std::fmt::Display for ReplotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplotError::Input(e) | ReplotError::Output(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for ReplotError {}

/// The figures of [`FIGURES`] whose CSV is in `dir`.
pub fn replottable(dir: &Path) -> Vec<&'static str> {
    FIGURES.iter().filter(|(_, csv)| dir.join(csv).is_file()).map(|(f, _)| *f).collect()
}

/// Draws `figure` (`fig1`, `fig2`, `fig3`, `fig4a` or `fig4b`) again from the CSV that an
/// earlier `rapid reproduce` wrote in `dir` ([`FIGURES`]), without training, into the same
/// folder: the numbers are those of that run, the style that of this version. Titles that
/// need the run's settings (epochs, seeds, budget) take them from the run's summary JSON when
/// it is there.
///
/// # Errors
/// [`ReplotError::Input`] for an unknown figure or a CSV that is missing or malformed (the
/// message names the file, line and column); [`ReplotError::Output`] if drawing fails.
pub fn replot(dir: &Path, figure: &str) -> Result<Replotted, ReplotError> {
    let out = |stem: &str| Replotted {
        files: vec![dir.join(stem).with_extension("png"), dir.join(stem).with_extension("svg")],
        notes: Vec::new(),
    };
    let colors = |curves: &[Curves]| -> Vec<(u8, u8, u8)> {
        let palette = [RAPID, CD, PCD, EXACT, PURPLE];
        let methods = paper_methods();
        curves
            .iter()
            .enumerate()
            .map(|(i, c)| {
                methods
                    .iter()
                    .find(|(m, _)| m.label() == c.label)
                    .map_or(palette[i % palette.len()], |m| m.1)
            })
            .collect()
    };
    match figure {
        "fig1" => {
            let csv = Csv::read(&dir.join("fig1.csv"))?;
            let curves: Vec<Curves> = method_columns(
                &csv,
                "epoch",
                &[("gs_access_mean", "gs_access_std"), ("method_access_mean", "method_access_std")],
            )?
            .into_iter()
            .map(|(label, mut cols)| Curves {
                label,
                method_access: cols.pop().unwrap_or_default(),
                gs_access: cols.pop().unwrap_or_default(),
                ..Curves::default()
            })
            .collect();
            draw_fig1(dir, &curves, &colors(&curves)).map_err(ReplotError::Output)?;
            Ok(out("fig1"))
        }
        "fig2" => {
            let csv = Csv::read(&dir.join("fig2.csv"))?;
            let curves: Vec<Curves> = method_columns(
                &csv,
                "epoch",
                &[("hd_train_mean", "hd_train_std"), ("hd_test_mean", "hd_test_std")],
            )?
            .into_iter()
            .map(|(label, mut cols)| Curves {
                label,
                hd_test: cols.pop().unwrap_or_default(),
                hd_train: cols.pop().unwrap_or_default(),
                ..Curves::default()
            })
            .collect();
            draw_fig2(dir, &curves, &colors(&curves)).map_err(ReplotError::Output)?;
            Ok(out("fig2"))
        }
        "fig3" => {
            let csv = Csv::read(&dir.join("fig3.csv"))?;
            let scaled = csv.has("scaled_mean") || csv.has("scaled_std");
            let mut pairs = vec![("singular_value_mean", "singular_value_std")];
            if scaled {
                pairs.push(("scaled_mean", "scaled_std"));
            }
            let curves: Vec<Curves> = method_columns(&csv, "index", &pairs)?
                .into_iter()
                .map(|(label, mut cols)| {
                    let svd_scaled =
                        if scaled { cols.pop().unwrap_or_default() } else { Vec::new() };
                    Curves {
                        label,
                        svd: cols.pop().unwrap_or_default(),
                        svd_scaled,
                        ..Curves::default()
                    }
                })
                .collect();
            let epochs = summary_number(&dir.join("summary.json"), "epochs")
                .filter(|e| *e >= 1.0 && e.fract() == 0.0 && *e <= f64::from(u32::MAX))
                .map(|e| e as u32);
            draw_fig3(dir, &curves, &colors(&curves), epochs).map_err(ReplotError::Output)?;
            let mut r = out("fig3");
            if !scaled {
                r.notes.push(format!(
                    "{}: no scaled_mean/scaled_std columns (written by an older version), so only \
                     the first panel; the second needs each run's σ_i/σ_1, which no CSV keeps",
                    dir.join("fig3.csv").display()
                ));
            }
            Ok(r)
        }
        "fig4a" => crate::fig4::replot_fig4a(dir),
        "fig4b" => crate::fig4::replot_fig4b(dir),
        other => Err(ReplotError::Input(format!(
            "no figure `{other}` to replot; the figures are {}",
            FIGURES.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// A number from a summary JSON that `rapid reproduce` wrote (`None` if the file, the key or
/// the number is not there): only for titles, never for the plotted values.
pub(crate) fn summary_number(path: &Path, key: &str) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str::<serde_json::Value>(&text).ok()?.get(key)?.as_f64()
}

/// A CSV file of `rapid reproduce` read back: its header and its non-blank rows (with their
/// 1-based line numbers); every error names the file, and the line and column where it can.
pub(crate) struct Csv {
    name: String,
    header: Vec<String>,
    rows: Vec<(usize, Vec<String>)>,
}

/// The largest epoch or index a CSV may give (a guard against absurd allocations).
const MAX_KEY: usize = 1_000_000;

impl Csv {
    pub(crate) fn read(path: &Path) -> Result<Csv, ReplotError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ReplotError::Input(format!(
                "reading {name}: {e} (it is written by `rapid reproduce`; give the folder of that run)"
            ))
        })?;
        Csv::parse(name, &text)
    }

    pub(crate) fn parse(name: String, text: &str) -> Result<Csv, ReplotError> {
        let split = |l: &str| l.split(',').map(|f| f.trim().to_string()).collect::<Vec<_>>();
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
            .filter(|(_, l)| !l.trim().is_empty());
        let header = match lines.next() {
            Some((_, h)) => split(h),
            None => {
                return Err(ReplotError::Input(format!("{name}: empty, expected a header line")))
            }
        };
        let mut rows = Vec::new();
        for (n, l) in lines {
            let fields = split(l);
            if fields.len() != header.len() {
                return Err(ReplotError::Input(format!(
                    "{name} line {n}: {} fields, but the header has {}",
                    fields.len(),
                    header.len()
                )));
            }
            rows.push((n, fields));
        }
        if rows.is_empty() {
            return Err(ReplotError::Input(format!("{name}: a header but no data rows")));
        }
        Ok(Csv { name, header, rows })
    }

    pub(crate) fn has(&self, column: &str) -> bool {
        self.header.iter().any(|h| h == column)
    }

    pub(crate) fn col(&self, column: &str) -> Result<usize, ReplotError> {
        self.header.iter().position(|h| h == column).ok_or_else(|| {
            ReplotError::Input(format!(
                "{}: no column `{column}` (the header is `{}`)",
                self.name,
                self.header.join(",")
            ))
        })
    }

    pub(crate) fn rows(&self) -> impl Iterator<Item = &(usize, Vec<String>)> {
        self.rows.iter()
    }

    /// A number; an empty field (how a missing value is written) is NaN.
    pub(crate) fn num(&self, row: &(usize, Vec<String>), col: usize) -> Result<f64, ReplotError> {
        let v = &row.1[col];
        if v.is_empty() {
            return Ok(f64::NAN);
        }
        v.parse().map_err(|_| {
            ReplotError::Input(format!(
                "{} line {}, column `{}`: `{v}` is not a number",
                self.name, row.0, self.header[col]
            ))
        })
    }

    /// A whole number from 1 to [`MAX_KEY`] (an epoch or an index).
    pub(crate) fn key(&self, row: &(usize, Vec<String>), col: usize) -> Result<usize, ReplotError> {
        let v = &row.1[col];
        match v.parse::<usize>() {
            Ok(k) if (1..=MAX_KEY).contains(&k) => Ok(k),
            _ => Err(ReplotError::Input(format!(
                "{} line {}, column `{}`: `{v}` is not a whole number from 1 to {MAX_KEY}",
                self.name, row.0, self.header[col]
            ))),
        }
    }

    pub(crate) fn error(&self, row: &(usize, Vec<String>), what: &str) -> ReplotError {
        ReplotError::Input(format!("{} line {}: {what}", self.name, row.0))
    }
}

/// `(mean, std)` per epoch or index.
type Column = Vec<(f64, f64)>;

/// Per method (column `method`, in order of first appearance), each `(mean, std)` column pair
/// as a vector indexed by the 1-based `key` column (gaps are NaN).
fn method_columns(
    csv: &Csv,
    key: &str,
    pairs: &[(&str, &str)],
) -> Result<Vec<(String, Vec<Column>)>, ReplotError> {
    let method = csv.col("method")?;
    let key_col = csv.col(key)?;
    let cols: Vec<(usize, usize)> =
        pairs.iter().map(|(m, s)| Ok((csv.col(m)?, csv.col(s)?))).collect::<Result<_, _>>()?;
    // Per method: its label, its columns, and which keys it has had.
    let mut out: Vec<(String, Vec<Column>, Vec<bool>)> = Vec::new();
    for row in csv.rows() {
        let label = &row.1[method];
        if label.is_empty() {
            return Err(csv.error(row, "empty method"));
        }
        let k = csv.key(row, key_col)?;
        let at = match out.iter().position(|m| &m.0 == label) {
            Some(i) => i,
            None => {
                out.push((label.clone(), vec![Vec::new(); cols.len()], Vec::new()));
                out.len() - 1
            }
        };
        let entry = &mut out[at];
        if entry.2.len() < k {
            entry.2.resize(k, false);
            for c in &mut entry.1 {
                c.resize(k, (f64::NAN, f64::NAN));
            }
        }
        if entry.2[k - 1] {
            return Err(csv.error(row, &format!("a second row for {label}, {key} {k}")));
        }
        entry.2[k - 1] = true;
        for (c, &(m, s)) in entry.1.iter_mut().zip(&cols) {
            c[k - 1] = (csv.num(row, m)?, csv.num(row, s)?);
        }
    }
    Ok(out.into_iter().map(|(l, c, _)| (l, c)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_reproduction_writes_every_output_and_is_thread_independent() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = |out: PathBuf| ReproduceConfig {
            seeds: 2,
            epochs: 3,
            hidden: 16,
            out,
            methods: vec![
                (Method::Pid(NegativePhase::Patterns), RAPID),
                (Method::Cd { k: 2 }, CD),
                (Method::Pcd { k: 2, chains: 8 }, PCD),
                (Method::Exact, EXACT),
            ],
        };
        let a = dir.path().join("a");
        let (curves, _) = reproduce(&cfg(a.clone()), &|_, _| {}).unwrap();
        assert_eq!(curves.len(), 4);
        for f in [
            "runs.csv",
            "fig1.csv",
            "fig2.csv",
            "fig3.csv",
            "fig1.png",
            "fig1.svg",
            "fig2.png",
            "fig2.svg",
            "fig3.png",
            "fig3.svg",
            "summary.json",
        ] {
            assert!(a.join(f).exists(), "{f} missing");
        }
        let runs = std::fs::read_to_string(a.join("runs.csv")).unwrap();
        assert_eq!(runs.lines().count(), 1 + 4 * 2 * 3);
        let fig2 = std::fs::read_to_string(a.join("fig2.csv")).unwrap();
        assert_eq!(fig2.lines().count(), 1 + 4 * 3);
        assert_eq!(curves[0].svd.len(), 16);
        // Exact training has no method accessibility.
        assert!(curves[3].method_access.iter().all(|x| x.0.is_nan()));
        // One thread gives the same numbers.
        let b = dir.path().join("b");
        rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| {
            reproduce(&cfg(b.clone()), &|_, _| {}).unwrap();
        });
        for f in ["fig1.csv", "fig2.csv", "fig3.csv"] {
            assert_eq!(std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap(), "{f}");
        }
        // The run's CSVs draw its figures again.
        assert_eq!(replottable(&a), ["fig1", "fig2", "fig3"]);
        for f in ["fig1", "fig2", "fig3"] {
            let r = replot(&a, f).unwrap();
            assert!(r.notes.is_empty(), "{:?}", r.notes);
            assert!(r.files.iter().all(|p| p.exists()));
        }
    }

    const FIG2: &str = "method,epoch,hd_train_mean,hd_train_std,hd_test_mean,hd_test_std
RAPID,1,0.2,0.3,0.25,0.1
RAPID,2,0.1,0.2,0.05,0.1
RAPID,3,0.0,0.0,0.0,0.0
CD-10,1,0.45,0.01,0.46,0.01
CD-10,2,0.4,0.02,,
CD-10,3,0.35,0.02,0.36,0.02
";

    #[test]
    fn replot_draws_a_figure_from_its_csv() {
        let dir = tempfile::tempdir().unwrap();
        assert!(replottable(dir.path()).is_empty());
        std::fs::write(dir.path().join("fig2.csv"), FIG2).unwrap();
        assert_eq!(replottable(dir.path()), ["fig2"]);
        let r = replot(dir.path(), "fig2").unwrap();
        assert_eq!(r.files, [dir.path().join("fig2.png"), dir.path().join("fig2.svg")]);
        let png = std::fs::read(dir.path().join("fig2.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let svg = std::fs::read_to_string(dir.path().join("fig2.svg")).unwrap();
        assert!(
            svg.contains(">\nRAPID\n<") && svg.contains(">\nCD-10\n<") && svg.contains("Test set")
        );
        // The methods keep their colours: CD-10 is orange.
        assert!(svg.contains("#FF7F0E"), "CD-10's colour");
        // The rows and columns as read.
        let csv = Csv::parse("fig2.csv".into(), FIG2).unwrap();
        let m = method_columns(&csv, "epoch", &[("hd_test_mean", "hd_test_std")]).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].0, "RAPID");
        assert_eq!(m[0].1[0], [(0.25, 0.1), (0.05, 0.1), (0.0, 0.0)]);
        assert!(m[1].1[0][1].0.is_nan(), "an empty field is a gap");
    }

    #[test]
    fn replot_of_an_old_fig3_csv_draws_the_first_panel_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let old = "method,index,singular_value_mean,singular_value_std\nRAPID,1,9.5,1.0\nRAPID,2,3.0,4.0\nExact,1,2.0,0.5\nExact,2,0.1,0.2\n";
        std::fs::write(dir.path().join("fig3.csv"), old).unwrap();
        std::fs::write(dir.path().join("summary.json"), r#"{"epochs": 42}"#).unwrap();
        let r = replot(dir.path(), "fig3").unwrap();
        assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
        let svg = std::fs::read_to_string(dir.path().join("fig3.svg")).unwrap();
        assert!(svg.contains("after 42 epochs") && !svg.contains("Scaled by the largest"));
    }

    #[test]
    fn replot_errors_name_the_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let err = |csv: &str| {
            std::fs::write(dir.path().join("fig2.csv"), csv).unwrap();
            match replot(dir.path(), "fig2") {
                Err(ReplotError::Input(e)) => e,
                other => panic!("{other:?}"),
            }
        };
        let missing = match replot(dir.path(), "fig2") {
            Err(ReplotError::Input(e)) => e,
            other => panic!("{other:?}"),
        };
        assert!(missing.contains("reading") && missing.contains("fig2.csv"), "{missing}");
        let short = FIG2.replace("RAPID,2,0.1,0.2,0.05,0.1", "RAPID,2,0.1,0.2,0.05");
        let e = err(&short);
        assert!(e.contains("fig2.csv line 3: 5 fields, but the header has 6"), "{e}");
        let e = err(&FIG2.replace("0.45", "zero"));
        assert!(e.contains("line 5, column `hd_train_mean`: `zero` is not a number"), "{e}");
        let e = err(&FIG2.replace("hd_test_std", "hd_test_sd"));
        assert!(e.contains("no column `hd_test_std`"), "{e}");
        let e = err(&FIG2.replace("CD-10,3,", "CD-10,0,"));
        assert!(e.contains("column `epoch`: `0` is not a whole number"), "{e}");
        let e = err(&FIG2.replace("CD-10,3,", "CD-10,2,"));
        assert!(e.contains("a second row for CD-10, epoch 2"), "{e}");
        let e = err("");
        assert!(e.contains("empty"), "{e}");
        let e = err("method,epoch,hd_train_mean,hd_train_std,hd_test_mean,hd_test_std\n");
        assert!(e.contains("no data rows"), "{e}");
        let e = replot(dir.path(), "fig9").unwrap_err();
        assert!(e.to_string().contains("no figure `fig9`"), "{e}");
        assert!(!dir.path().join("fig2.png").exists(), "nothing drawn from a bad CSV");
    }

    #[test]
    fn mean_std_uses_n_minus_one_and_skips_nan() {
        let (m, s) = mean_std(&[1.0, 3.0, f64::NAN]);
        assert_eq!(m, 2.0);
        assert!((s - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(mean_std(&[5.0]), (5.0, 0.0));
        assert!(mean_std(&[]).0.is_nan());
    }
}
