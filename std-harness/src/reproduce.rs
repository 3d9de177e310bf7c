//! `rapid reproduce`: the paper's Figs. 1–3 on Bars 4×4.
//!
//! Trains RAPID (`pid`), CD-10, PCD-10 (2048 chains) and exact-gradient training, each with
//! the paper's settings ([`TrainConfig::paper`]), for seeds `0..seeds`. The `(method, seed)`
//! runs go in parallel over the machine's cores; each run is deterministic in its seed, and
//! the aggregation runs in a fixed order, so the output does not depend on the thread count.
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

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde_json::json;

use crate::data::bars4;
use crate::modelio::AtomicFile;
use crate::plot::{draw, Panel, Series, CD, EXACT, PCD, RAPID};
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
    let results: Vec<Result<Vec<EpochReport>, TrainError>> = jobs
        .par_iter()
        .map(|&(m, seed)| {
            let tc = TrainConfig {
                hidden: cfg.hidden,
                epochs: cfg.epochs,
                seed,
                track,
                ..TrainConfig::paper(cfg.methods[m].0)
            };
            train(&tc, &data, |_| progress(done.fetch_add(1, Ordering::Relaxed) + 1, total))
                .map(|t| t.reports)
        })
        .collect();
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
