//! `rapid reproduce fig4a|fig4b`: the paper's large experiments.
//!
//! * **Fig. 4a** ([`fig4a`]): RAPID on bars and stripes 12×12 with the BAS preset (K = 40,
//!   H = 1000, batch 120, 80/20 split by negation pairs), seeds `0..seeds` in parallel. The
//!   reconstruction HD of the training and test sets is measured at roughly logarithmically
//!   spaced epochs (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, … and the last), with
//!   `eval_repeats` draws per image. After the last epoch each seed's model draws `chains`
//!   samples from `v = 0` (`steps` block Gibbs steps); the share of valid BAS images and, of
//!   those, of novel ones (not training images) is reported per seed, and seed 0's first 40
//!   samples make the inset, novel samples framed.
//! * **Fig. 4b** ([`fig4b`]): on the MNIST subset, RAPID (`pid-gibbs:1`, `pid-gibbs:10`),
//!   PCD-10 (100 persistent chains) and CD-10 each train for the same budget of training
//!   seconds on the whole machine, one method after the other, each with the MNIST preset
//!   for its method. Models are
//!   kept at `snapshots` evenly spaced points of the budget (the first epoch that crosses
//!   each), and each is then measured by AIS ([`crate::ais`]): `log Ẑ` and the mean test NLL
//!   per image in nats, which in expectation is a lower bound on the true NLL; the final
//!   models also get RAISE's conservative estimate on `raise_images` test images, and a
//!   certain lower bound on the test NLL: `Z ≥ p*(s)` for any state, so `log Z` is at least
//!   the largest `log p*` among 100 samples of the model (random start, 200 steps). The
//!   evaluation is not on the clock. A 10×10 grid of samples of the final `pid-gibbs:1` model
//!   (random start, 200 steps, the authors' notebook) goes with it.
//!
//! Every random choice flows from the seeds; outputs are CSV, PNG, SVG and `summary.json`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde_json::json;

use crate::ais::{
    ais_log_z, log_p_star, mean_nll, raise_nll, AisOptions, Base, RaiseOptions, Schedule,
};
use crate::data::{bas, mnist, Dataset, DEFAULT_THRESHOLD};
use crate::model::Model;
use crate::plot::{draw, draw_xy, Line, Panel, Series, CD, EXACT, PCD, PURPLE, RAPID};
use crate::reproduce::{
    mean_std, summary_number, write_file, Csv, ReplotError, Replotted, HD_AXIS, SHARE,
};
use crate::run::{Method, Preset, Trainer};
use crate::sample::{bas_stats, draw as draw_samples, grid_png, Grid, Start};
use rapid_core::NegativePhase;

/// The epochs at which Fig. 4a measures: 1, 2, 3, 5, 7 times powers of ten up to `last`,
/// and `last`.
pub fn log_epochs(last: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut p = 1u32;
    'outer: loop {
        for m in [1u32, 2, 3, 5, 7] {
            let e = m.saturating_mul(p);
            if e > last {
                break 'outer;
            }
            out.push(e);
        }
        p = p.saturating_mul(10);
        if p > last {
            break;
        }
    }
    if out.last() != Some(&last) {
        out.push(last);
    }
    out
}

/// What Fig. 4a runs.
#[derive(Clone, Debug)]
pub struct Fig4aConfig {
    /// Seeds `0..seeds`.
    pub seeds: u64,
    /// Epochs per seed.
    pub epochs: u32,
    /// HD draws per image.
    pub eval_repeats: usize,
    /// Samples per seed after training.
    pub chains: usize,
    /// Gibbs steps per sample.
    pub steps: usize,
    /// Output folder.
    pub out: PathBuf,
}

/// One seed of Fig. 4a.
struct Bas4a {
    hd: Vec<(f64, f64)>,
    valid: f64,
    novel: f64,
    seconds: f64,
    samples: Vec<f32>,
    novel_flags: Vec<bool>,
}

/// Runs Fig. 4a and writes `fig4a.csv`, `fig4a-runs.csv`, `fig4a.{png,svg}`,
/// `fig4a-samples.png` and `fig4a-summary.json` into `cfg.out`. `progress(done, total)` counts
/// epochs.
///
/// # Errors
/// A training failure or an output that cannot be written, as text.
pub fn fig4a(
    cfg: &Fig4aConfig,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<serde_json::Value, String> {
    std::fs::create_dir_all(&cfg.out)
        .map_err(|e| format!("creating {}: {e}", cfg.out.display()))?;
    let t0 = Instant::now();
    let data = bas(12, 0);
    let preset = Preset::for_data(&data, None);
    let at = log_epochs(cfg.epochs);
    let total = cfg.seeds * u64::from(cfg.epochs);
    let done = std::sync::atomic::AtomicU64::new(0);
    let runs: Vec<Result<Bas4a, String>> = (0..cfg.seeds)
        .into_par_iter()
        .map(|seed| {
            let mut tc = preset.config;
            tc.epochs = cfg.epochs;
            tc.seed = seed;
            tc.eval.repeats = cfg.eval_repeats;
            tc.eval_every = 0;
            let mut t = Trainer::new(&tc, &data).map_err(|e| format!("seed {seed}: {e}"))?;
            let mut hd = Vec::new();
            let mut seconds = 0.0;
            for e in 1..=cfg.epochs {
                seconds += t.train_epoch(&data).map_err(|e| format!("seed {seed}: {e}"))?;
                if at.contains(&e) {
                    let ev = t.evaluate(&data, Default::default()).map_err(|e| e.to_string())?;
                    hd.push((ev.hd_train, ev.hd_test));
                }
                progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1, total);
            }
            let samples =
                draw_samples(&t.model().view(), cfg.chains, cfg.steps, Start::Zero, &[], seed);
            let s = bas_stats(&samples, 12, &data.train);
            Ok(Bas4a {
                hd,
                valid: s.valid_rate(),
                novel: s.novel_rate(),
                seconds,
                novel_flags: s.novel,
                samples,
            })
        })
        .collect();
    let runs: Vec<Bas4a> = runs.into_iter().collect::<Result<_, _>>()?;
    let wall = t0.elapsed().as_secs_f64();

    let mut runs_csv = String::from("seed,epoch,hd_train,hd_test\n");
    for (seed, r) in runs.iter().enumerate() {
        for (&e, (tr, te)) in at.iter().zip(&r.hd) {
            let _ = writeln!(runs_csv, "{seed},{e},{tr},{te}");
        }
    }
    write_file(&cfg.out.join("fig4a-runs.csv"), runs_csv.as_bytes())?;
    let mut csv = String::from("epoch,hd_train_mean,hd_train_std,hd_test_mean,hd_test_std\n");
    let mut train_curve = vec![(f64::NAN, f64::NAN); cfg.epochs as usize];
    let mut test_curve = train_curve.clone();
    let mut points = Vec::new();
    for (i, &e) in at.iter().enumerate() {
        let tr = mean_std(&runs.iter().map(|r| r.hd[i].0).collect::<Vec<_>>());
        let te = mean_std(&runs.iter().map(|r| r.hd[i].1).collect::<Vec<_>>());
        let _ = writeln!(csv, "{e},{},{},{},{}", tr.0, tr.1, te.0, te.1);
        train_curve[e as usize - 1] = tr;
        test_curve[e as usize - 1] = te;
        points.push(json!({"epoch": e, "hd_train": {"mean": tr.0, "std": tr.1}, "hd_test": {"mean": te.0, "std": te.1}}));
    }
    write_file(&cfg.out.join("fig4a.csv"), csv.as_bytes())?;
    draw_fig4a(&cfg.out, &train_curve, &test_curve, Some(cfg.seeds))?;
    let inset = 40.min(runs[0].samples.len() / 144);
    let png = grid_png(
        &runs[0].samples[..inset * 144],
        Grid { height: 12, width: 12, cols: 10, scale: 4 },
        &runs[0].novel_flags[..inset],
    );
    write_file(&cfg.out.join("fig4a-samples.png"), &png)?;
    let valid = mean_std(&runs.iter().map(|r| r.valid).collect::<Vec<_>>());
    let novel = mean_std(&runs.iter().map(|r| r.novel).collect::<Vec<_>>());
    let c = preset.config;
    let summary = json!({
        "figure": "fig4a",
        "dataset": "bas:12",
        "train_images": data.n_train(),
        "test_images": data.n_test(),
        "settings": {
            "method": c.method.to_string(), "hidden": c.hidden, "patterns": c.patterns,
            "batch": c.batch, "lr": c.lr, "lr_decay": c.schedule.decay, "lr_min": c.schedule.min,
            "projection": crate::run::projection_name(c.projection),
            "eval_repeats": cfg.eval_repeats,
        },
        "seeds": cfg.seeds,
        "epochs": cfg.epochs,
        "hd": points,
        "samples": {"chains": cfg.chains, "steps": cfg.steps, "start": "zero",
            "valid": {"mean": valid.0, "std": valid.1},
            "novel_of_valid": {"mean": novel.0, "std": novel.1},
            "per_seed": runs.iter().map(|r| json!({"valid": r.valid, "novel": r.novel})).collect::<Vec<_>>()},
        "train_seconds_per_seed": runs.iter().map(|r| r.seconds).collect::<Vec<_>>(),
        "wall_seconds": wall,
        "threads": rayon::current_num_threads(),
    });
    write_file(
        &cfg.out.join("fig4a-summary.json"),
        serde_json::to_string_pretty(&summary).expect("serialisable").as_bytes(),
    )?;
    Ok(summary)
}

/// What Fig. 4b runs.
#[derive(Clone, Debug)]
pub struct Fig4bConfig {
    /// Training seconds per method.
    pub budget: f64,
    /// Models kept per method (evenly spaced over the budget).
    pub snapshots: usize,
    /// AIS betas (Salakhutdinov–Murray schedule) for each snapshot.
    pub ais_betas: usize,
    /// AIS runs for each snapshot.
    pub ais_runs: usize,
    /// Test images for RAISE on the final models (0: none).
    pub raise_images: usize,
    /// Seed of training and of the estimates.
    pub seed: u64,
    /// Output folder.
    pub out: PathBuf,
}

/// The methods of Fig. 4b with their colours.
pub fn fig4b_methods() -> Vec<(Method, (u8, u8, u8))> {
    vec![
        (Method::Pid(NegativePhase::Gibbs { steps: 1 }), RAPID),
        (Method::Pid(NegativePhase::Gibbs { steps: 10 }), PURPLE),
        // As many persistent chains as images per batch (Tieleman 2008), not Bars' 2048.
        (Method::Pcd { k: 10, chains: 100 }, PCD),
        (Method::Cd { k: 10 }, CD),
    ]
}

/// One measured snapshot of Fig. 4b.
#[derive(Clone, Debug)]
struct Snap {
    seconds: f64,
    epochs: u32,
    model: Model,
}

/// Runs Fig. 4b and writes `fig4b.csv`, `fig4b.{png,svg}`, `fig4b-samples.png` and
/// `fig4b-summary.json` into `cfg.out`. `log` receives one line per milestone.
///
/// # Errors
/// A training failure or an output that cannot be written, as text.
pub fn fig4b(
    cfg: &Fig4bConfig,
    log: &(dyn Fn(String) + Sync),
) -> Result<serde_json::Value, String> {
    std::fs::create_dir_all(&cfg.out)
        .map_err(|e| format!("creating {}: {e}", cfg.out.display()))?;
    let t0 = Instant::now();
    let data: Dataset = mnist(DEFAULT_THRESHOLD);
    let methods = fig4b_methods();
    let mut csv = String::from(
        "method,snapshot,train_seconds,epochs,log_z,log_z_std_err,ais_ess,nll_test,nll_train\n",
    );
    let mut lines = Vec::new();
    let mut table = Vec::new();
    let mut final_pid: Option<Model> = None;
    // A fixed subset of training images for the training NLL (the same 2000 for all).
    let train_subset = &data.train[..2000.min(data.n_train()) * data.visible()];
    for (method, color) in &methods {
        let preset = Preset::for_data(&data, Some(*method));
        let mut tc = preset.config;
        tc.seed = cfg.seed;
        tc.epochs = u32::MAX;
        tc.eval_every = 0;
        let mut t = Trainer::new(&tc, &data).map_err(|e| format!("{method}: {e}"))?;
        let marks: Vec<f64> =
            (1..=cfg.snapshots).map(|j| cfg.budget * j as f64 / cfg.snapshots as f64).collect();
        let mut snaps: Vec<Snap> = Vec::new();
        let mut clock = 0.0;
        while clock < cfg.budget {
            clock += t.train_epoch(&data).map_err(|e| format!("{method}: {e}"))?;
            let due = t.epochs_done() == 1
                || marks.iter().any(|&m| clock >= m && snaps.last().is_none_or(|s| s.seconds < m));
            if due {
                snaps.push(Snap {
                    seconds: clock,
                    epochs: t.epochs_done(),
                    model: t.model().clone(),
                });
                log(format!(
                    "fig4b: {method}: epoch {}, {clock:.1} of {:.0} training seconds",
                    t.epochs_done(),
                    cfg.budget
                ));
            }
        }
        let mut pts = Vec::new();
        for (i, s) in snaps.iter().enumerate() {
            let view = s.model.view();
            let base = Base::for_model(&view, Some(&data.train));
            let opts = AisOptions {
                schedule: Schedule::SalakhutdinovMurray(cfg.ais_betas),
                runs: cfg.ais_runs,
                seed: cfg.seed,
                ..AisOptions::default()
            };
            let est = ais_log_z(&view, &base, &opts);
            let nll_test = mean_nll(&view, &data.test, est.log_z);
            let nll_train = mean_nll(&view, train_subset, est.log_z);
            let _ = writeln!(
                csv,
                "{method},{},{},{},{},{},{},{},{}",
                i + 1,
                s.seconds,
                s.epochs,
                est.log_z,
                est.std_err,
                est.ess,
                nll_test,
                nll_train
            );
            log(format!(
                "fig4b: {method}: {:.1} s, epoch {}: log Z {:.2} ± {:.2}, test NLL {nll_test:.2} nats",
                s.seconds, s.epochs, est.log_z, est.std_err
            ));
            pts.push((s.seconds, nll_test));
        }
        let last = snaps.last().expect("at least one epoch was trained");
        // A certain bound: Z ≥ p*(s) for any state s, so log Z ≥ max over the model's own
        // samples of log p*(s), and the test NLL ≥ that − mean log p*(v_test).
        let certain = {
            let view = last.model.view();
            let samples = draw_samples(&view, 100, 200, Start::Random, &[], cfg.seed);
            let best = samples
                .chunks_exact(data.visible())
                .map(|s| log_p_star(&view, s))
                .fold(f64::NEG_INFINITY, f64::max);
            (best, mean_nll(&view, &data.test, best))
        };
        let raise = if cfg.raise_images > 0 {
            let view = last.model.view();
            let base = Base::for_model(&view, Some(&data.train));
            let n = cfg.raise_images.min(data.n_test());
            log(format!("fig4b: {method}: RAISE on {n} test images"));
            let r = raise_nll(
                &view,
                &base,
                &data.test[..n * data.visible()],
                &RaiseOptions {
                    schedule: Schedule::SalakhutdinovMurray(cfg.ais_betas),
                    runs: 1,
                    seed: cfg.seed,
                    ..RaiseOptions::default()
                },
            );
            Some((r.mean_nll, r.std_err, n))
        } else {
            None
        };
        table.push(json!({
            "method": method.to_string(),
            "label": method.label(),
            "preset": {"hidden": tc.hidden, "patterns": if method.is_ra() { Some(tc.patterns) } else { None },
                "batch": tc.batch, "optimizer": tc.optimizer.to_string(), "lr": tc.lr, "biases": tc.biases},
            "epochs": last.epochs,
            "train_seconds": last.seconds,
            "nll_test_ais": pts.last().map(|p| p.1),
            "log_z_at_least": certain.0,
            "nll_test_at_least": certain.1,
            "raise": raise.map(|(m, se, n)| json!({"images": n, "mean_nll": m, "std_err": se})),
            "points": pts.iter().map(|p| json!({"seconds": p.0, "nll_test": p.1})).collect::<Vec<_>>(),
        }));
        lines.push(Line { label: method.label(), color: *color, points: pts });
        if *method == Method::Pid(NegativePhase::Gibbs { steps: 1 }) {
            final_pid = Some(last.model.clone());
        }
    }
    write_file(&cfg.out.join("fig4b.csv"), csv.as_bytes())?;
    draw_fig4b(&cfg.out, &lines, Some(cfg.budget))?;
    if let Some(m) = &final_pid {
        let samples = draw_samples(&m.view(), 100, 200, Start::Random, &[], cfg.seed);
        let png = grid_png(&samples, Grid { height: 28, width: 28, cols: 10, scale: 2 }, &[]);
        write_file(&cfg.out.join("fig4b-samples.png"), &png)?;
    }
    let summary = json!({
        "figure": "fig4b",
        "dataset": "mnist (8000 train / 2000 test, x/255 > 0.3)",
        "budget_seconds": cfg.budget,
        "snapshots": cfg.snapshots,
        "ais": {"betas": cfg.ais_betas, "runs": cfg.ais_runs, "schedule": "Salakhutdinov-Murray", "base": "base rate of the training images (symmetrised for bias-free models)"},
        "uniform_nll": data.visible() as f64 * std::f64::consts::LN_2,
        "methods": table,
        "wall_seconds": t0.elapsed().as_secs_f64(),
        "threads": rayon::current_num_threads(),
        "colors_unused": [EXACT.0],
    });
    write_file(
        &cfg.out.join("fig4b-summary.json"),
        serde_json::to_string_pretty(&summary).expect("serialisable").as_bytes(),
    )?;
    Ok(summary)
}

/// Fig. 4a (`fig4a.png`, `fig4a.svg` in `out`): the mean HD of the training and test sets with
/// ±1 std bands, per epoch (NaN where not measured); `seeds` goes in the title.
fn draw_fig4a(
    out: &Path,
    train: &[(f64, f64)],
    test: &[(f64, f64)],
    seeds: Option<u64>,
) -> Result<(), String> {
    let series = |label: &str, color, c: &[(f64, f64)]| Series {
        label: label.into(),
        color,
        mean: c.iter().map(|x| x.0).collect(),
        std: c.iter().map(|x| x.1).collect(),
    };
    draw(
        &out.join("fig4a"),
        &[Panel {
            title: match seeds {
                Some(n) => format!("BAS 12x12, RAPID, {n} seeds"),
                None => "BAS 12x12, RAPID".into(),
            },
            x_label: "Epoch".into(),
            log_x: true,
            y_label: "Hamming distance".into(),
            series: vec![series("Training set", RAPID, train), series("Test set", CD, test)],
            y_range: HD_AXIS,
            bounds: SHARE,
        }],
    )
}

/// Fig. 4b (`fig4b.png`, `fig4b.svg` in `out`): the test NLL of each method's snapshots
/// against training seconds; `budget` goes in the title.
fn draw_fig4b(out: &Path, lines: &[Line], budget: Option<f64>) -> Result<(), String> {
    draw_xy(
        &out.join("fig4b"),
        &match budget {
            Some(b) => format!("MNIST subset: test NLL (AIS) vs training time, budget {b:.0} s"),
            None => "MNIST subset: test NLL (AIS) vs training time".into(),
        },
        "Training seconds",
        "Test NLL per image (nats, log scale)",
        lines,
    )
}

fn replotted(dir: &Path, stem: &str) -> Replotted {
    Replotted {
        files: vec![dir.join(stem).with_extension("png"), dir.join(stem).with_extension("svg")],
        notes: Vec::new(),
    }
}

/// Fig. 4a again from `fig4a.csv` in `dir` (see [`crate::reproduce::replot`]).
pub(crate) fn replot_fig4a(dir: &Path) -> Result<Replotted, ReplotError> {
    let csv = Csv::read(&dir.join("fig4a.csv"))?;
    let cols = ["epoch", "hd_train_mean", "hd_train_std", "hd_test_mean", "hd_test_std"]
        .map(|c| csv.col(c));
    let [epoch, trm, trs, tem, tes] = cols;
    let (epoch, trm, trs, tem, tes) = (epoch?, trm?, trs?, tem?, tes?);
    let mut train: Vec<(f64, f64)> = Vec::new();
    let mut test: Vec<(f64, f64)> = Vec::new();
    let mut seen: Vec<bool> = Vec::new();
    for row in csv.rows() {
        let e = csv.key(row, epoch)?;
        if seen.len() < e {
            seen.resize(e, false);
            train.resize(e, (f64::NAN, f64::NAN));
            test.resize(e, (f64::NAN, f64::NAN));
        }
        if seen[e - 1] {
            return Err(csv.error(row, &format!("a second row for epoch {e}")));
        }
        seen[e - 1] = true;
        train[e - 1] = (csv.num(row, trm)?, csv.num(row, trs)?);
        test[e - 1] = (csv.num(row, tem)?, csv.num(row, tes)?);
    }
    let seeds = summary_number(&dir.join("fig4a-summary.json"), "seeds")
        .filter(|s| *s >= 1.0 && s.fract() == 0.0 && *s < 1e15)
        .map(|s| s as u64);
    draw_fig4a(dir, &train, &test, seeds).map_err(ReplotError::Output)?;
    Ok(replotted(dir, "fig4a"))
}

/// Fig. 4b again from `fig4b.csv` in `dir` (see [`crate::reproduce::replot`]).
pub(crate) fn replot_fig4b(dir: &Path) -> Result<Replotted, ReplotError> {
    let csv = Csv::read(&dir.join("fig4b.csv"))?;
    let (method, seconds, nll) =
        (csv.col("method")?, csv.col("train_seconds")?, csv.col("nll_test")?);
    let known = fig4b_methods();
    let palette = [RAPID, PURPLE, PCD, CD, EXACT];
    let mut keys: Vec<String> = Vec::new();
    let mut lines: Vec<Line> = Vec::new();
    for row in csv.rows() {
        let name = &row.1[method];
        if name.is_empty() {
            return Err(csv.error(row, "empty method"));
        }
        let point = (csv.num(row, seconds)?, csv.num(row, nll)?);
        match keys.iter().position(|k| k == name) {
            Some(i) => lines[i].points.push(point),
            None => {
                let parsed = name.parse::<Method>().ok();
                let color = parsed
                    .and_then(|m| known.iter().find(|k| k.0 == m).map(|k| k.1))
                    .unwrap_or(palette[keys.len() % palette.len()]);
                lines.push(Line {
                    label: parsed.map_or_else(|| name.clone(), |m| m.label()),
                    color,
                    points: vec![point],
                });
                keys.push(name.clone());
            }
        }
    }
    let budget =
        summary_number(&dir.join("fig4b-summary.json"), "budget_seconds").filter(|b| *b > 0.0);
    draw_fig4b(dir, &lines, budget).map_err(ReplotError::Output)?;
    Ok(replotted(dir, "fig4b"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fig4_figures_replot_from_their_csvs() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("fig4a.csv"),
            "epoch,hd_train_mean,hd_train_std,hd_test_mean,hd_test_std\n1,0.34,0.05,0.35,0.05\n\
             2,0.3,0.01,0.31,0.01\n5,0.02,0.04,0.03,NaN\n",
        )
        .unwrap();
        std::fs::write(d.join("fig4a-summary.json"), r#"{"seeds": 3}"#).unwrap();
        std::fs::write(
            d.join("fig4b.csv"),
            "method,snapshot,train_seconds,epochs,log_z,log_z_std_err,ais_ess,nll_test,nll_train\n\
             pid-gibbs:1,1,1.5,1,10,1,1,120,121\npid-gibbs:1,2,3.0,2,10,1,1,90,91\n\
             cd:10,1,1.6,1,10,1,1,200,201\ncd:10,2,3.1,2,10,1,1,150,151\n",
        )
        .unwrap();
        assert_eq!(crate::reproduce::replottable(d), ["fig4a", "fig4b"]);
        crate::reproduce::replot(d, "fig4a").unwrap();
        let svg = std::fs::read_to_string(d.join("fig4a.svg")).unwrap();
        assert!(svg.contains("RAPID, 3 seeds") && svg.contains(">\nTest set\n<"));
        crate::reproduce::replot(d, "fig4b").unwrap();
        let svg = std::fs::read_to_string(d.join("fig4b.svg")).unwrap();
        assert!(svg.contains(">\nRAPID (pid-gibbs:1)\n<") && svg.contains(">\nCD-10\n<"));
        assert!(!svg.contains("budget"), "no summary, no budget in the title");
        // A malformed CSV is an input error that names the place.
        std::fs::write(d.join("fig4b.csv"), "method,train_seconds\ncd:10,1\n").unwrap();
        let e = crate::reproduce::replot(d, "fig4b").unwrap_err();
        assert!(matches!(e, ReplotError::Input(_)) && e.to_string().contains("`nll_test`"), "{e}");
        std::fs::write(d.join("fig4a.csv"), "epoch,hd_train_mean,hd_train_std,hd_test_mean,hd_test_std\n1,0.3,0.1,0.3,0.1\n1,0.3,0.1,0.3,0.1\n").unwrap();
        let e = crate::reproduce::replot(d, "fig4a").unwrap_err();
        assert!(e.to_string().contains("line 3: a second row for epoch 1"), "{e}");
    }

    #[test]
    fn log_epochs_are_spaced_and_end_at_the_last() {
        assert_eq!(log_epochs(100), [1, 2, 3, 5, 7, 10, 20, 30, 50, 70, 100]);
        assert_eq!(log_epochs(12), [1, 2, 3, 5, 7, 10, 12]);
        assert_eq!(log_epochs(1), [1]);
    }

    #[test]
    fn fig4a_small_run_writes_its_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Fig4aConfig {
            seeds: 2,
            epochs: 2,
            eval_repeats: 1,
            chains: 20,
            steps: 5,
            out: dir.path().to_path_buf(),
        };
        let s = fig4a(&cfg, &|_, _| {}).unwrap();
        for f in [
            "fig4a.csv",
            "fig4a-runs.csv",
            "fig4a.png",
            "fig4a.svg",
            "fig4a-samples.png",
            "fig4a-summary.json",
        ] {
            assert!(dir.path().join(f).exists(), "{f}");
        }
        let v = s["samples"]["valid"]["mean"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v));
        let hd = s["hd"][1]["hd_test"]["mean"].as_f64().unwrap();
        assert!(hd > 0.0 && hd < 0.5, "two epochs already beat guessing: {hd}");
    }
}
