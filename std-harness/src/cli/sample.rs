//! `rapid sample`: block Gibbs samples of a model file as a PNG grid and/or `.npy`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use rapid_harness::data::{parse_shape, DatasetSpec};
use rapid_harness::limits;
use rapid_harness::modelio::AtomicFile;
use rapid_harness::npy::encode_f32;
use rapid_harness::outln;
use rapid_harness::sample::{bas_stats, draw, grid_png, Grid, Start};
use serde_json::json;

use super::{check_counts, data_for_model, fail, load_model, whole};

#[derive(Args)]
#[command(after_long_help = "\
Each chain starts from v = 0 (zero: every pixel neutral, the paper's BAS inset), from uniform
random +-1 pixels (random: the authors' MNIST grid) or from a training image (data), and
makes --steps block Gibbs steps h ~ P(h|v), v ~ P(v|h); the sample is the last visible draw.
Chain c draws from its own stream of --seed, so the samples do not depend on --threads.

The PNG shows +1 as black and -1 as white, --cols images per row, each data pixel as a
--scale x --scale block. With --dataset bas:N the samples are judged: valid (a bars or stripes
image) and, of the valid ones, novel (not a training image); novel samples are framed in the
grid. The image shape comes from --dataset (or --shape); without either, a square V is shown
as a square, any other V as one row.")]
pub(crate) struct SampleArgs {
    /// The model file.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Number of chains (samples).
    #[arg(long, default_value_t = 100, allow_hyphen_values = true, value_parser = whole::<usize>)]
    chains: usize,
    /// Gibbs steps per chain.
    #[arg(long, default_value_t = 200, allow_hyphen_values = true, value_parser = whole::<usize>)]
    steps: usize,
    /// Start of the chains: zero, random or data.
    #[arg(long, default_value = "random")]
    start: Start,
    /// Dataset (for --start data, the image shape and the BAS judgement): bars4, bas:N,
    /// mnist, idx:IMAGES[,LABELS] or npy:FILE [default: the data the model file or
    /// checkpoint was trained on, if it says].
    #[arg(long)]
    dataset: Option<DatasetSpec>,
    /// Seed of the BAS train/test split [default: the model's, else 0].
    #[arg(long, allow_hyphen_values = true, value_parser = whole::<u64>)]
    split_seed: Option<u64>,
    /// Binarisation threshold for mnist/idx:/npy: data (as in `rapid train`).
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    binarize: Option<f32>,
    /// Image shape RxC (overrides the dataset's).
    #[arg(long, value_name = "RxC", value_parser = parse_shape)]
    shape: Option<(usize, usize)>,
    /// Seed of the chains.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true, value_parser = whole::<u64>)]
    seed: u64,
    /// Write the samples as a PNG grid.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Images per row of the grid [default: 10, or fewer chains].
    #[arg(long, allow_hyphen_values = true, value_parser = whole::<usize>)]
    cols: Option<usize>,
    /// Screen pixels per data pixel in the grid [default: as many as make an image about 64
    /// pixels wide, at least 2].
    #[arg(long, allow_hyphen_values = true, value_parser = whole::<usize>)]
    scale: Option<usize>,
    /// Write the samples as an N x V float32 .npy file (+-1 values).
    #[arg(long, value_name = "FILE")]
    npy: Option<PathBuf>,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn cmd_sample(a: SampleArgs) -> ExitCode {
    if let Err(e) = check_counts(&[("--chains", a.chains), ("--steps", a.steps)]) {
        return fail(2, e);
    }
    if a.chains == 0 {
        return fail(2, "--chains must be at least 1");
    }
    if a.cols == Some(0) || a.scale == Some(0) {
        return fail(2, "--cols and --scale must be at least 1");
    }
    let (model, made) = match load_model(&a.model) {
        Ok(m) => m,
        Err(e) => return fail(2, e),
    };
    let view = model.view();
    let v = view.visible();
    // The data: --dataset, else what the model file names (when rapid can load it).
    let loadable = made.as_ref().filter(|p| !matches!(p.dataset, DatasetSpec::Arrays { .. }));
    let data = match (&a.dataset, loadable) {
        (None, None) if a.start == Start::Data => {
            return fail(
                2,
                "--start data needs --dataset (the training images): the model file does not \
                 name data rapid can load",
            )
        }
        (None, None) => None,
        (given, _) => {
            match data_for_model(given.as_ref(), None, a.binarize, None, a.split_seed, loadable) {
                Ok((d, _)) if d.visible() == v => Some(d),
                Ok((d, _)) => {
                    return fail(
                        2,
                        format_args!(
                            "the model has V={v} but {} images have {} pixels",
                            d.spec,
                            d.visible()
                        ),
                    )
                }
                Err(e) => return fail(2, e),
            }
        }
    };
    let (height, width) = match (a.shape, &data) {
        (Some((r, c)), _) if r * c != v => {
            return fail(2, format_args!("--shape {r}x{c} has {} pixels, the model V={v}", r * c))
        }
        (Some(s), _) => s,
        (None, Some(d)) => (d.height, d.width),
        (None, None) => {
            let r = (v as f64).sqrt().round() as usize;
            if r * r == v {
                (r, r)
            } else {
                (1, v)
            }
        }
    };
    let out = match a.out.as_deref().map(AtomicFile::prepare).transpose() {
        Ok(o) => o,
        Err(e) => return fail(2, format_args!("cannot write --out: {e}")),
    };
    let npy = match a.npy.as_deref().map(AtomicFile::prepare).transpose() {
        Ok(o) => o,
        Err(e) => return fail(2, format_args!("cannot write --npy: {e}")),
    };
    let train: &[f32] = data.as_ref().map_or(&[], |d| &d.train);
    let t0 = Instant::now();
    // The chains' states and fields, and the samples kept.
    let bytes = 4 * a.chains as u128 * (3 * v as u128 + 2 * view.hidden() as u128);
    if let Err(e) = limits::check_memory("sampling", bytes) {
        return fail(2, e);
    }
    let samples = draw(&view, a.chains, a.steps, a.start, train, a.seed);
    let seconds = t0.elapsed().as_secs_f64();
    let bas = match &data {
        Some(d) if matches!(d.spec, DatasetSpec::Bas(_)) => {
            Some(bas_stats(&samples, d.width, train))
        }
        _ => None,
    };
    if let (Some(file), Some(path)) = (out, a.out.as_deref()) {
        let cols = a.cols.unwrap_or(10).min(a.chains);
        let scale = a.scale.unwrap_or((64 / width.max(height)).max(2));
        let grid = Grid { height, width, cols, scale };
        let framed = bas.as_ref().map_or(Vec::new(), |b| b.novel.clone());
        if let Err(e) = file.commit(&grid_png(&samples, grid, &framed)) {
            return fail(1, format_args!("writing {}: {e}", path.display()));
        }
    }
    if let (Some(file), Some(path)) = (npy, a.npy.as_deref()) {
        if let Err(e) = file.commit(&encode_f32(&samples, &[a.chains, v])) {
            return fail(1, format_args!("writing {}: {e}", path.display()));
        }
    }
    if a.json {
        outln!(
            "{}",
            json!({
                "model": a.model.display().to_string(),
                "kind": model.describe(),
                "chains": a.chains,
                "steps": a.steps,
                "start": a.start.to_string(),
                "seed": a.seed,
                "seconds": seconds,
                "bas_valid": bas.as_ref().map(|b| b.valid_rate()),
                "bas_novel": bas.as_ref().map(|b| b.novel_rate()),
                "png": a.out.as_ref().map(|p| p.display().to_string()),
                "npy": a.npy.as_ref().map(|p| p.display().to_string()),
            })
        );
    } else {
        outln!(
            "{} samples of {} ({} Gibbs steps from {}, seed {}) in {seconds:.2} s",
            a.chains,
            model.describe(),
            a.steps,
            a.start,
            a.seed
        );
        if let Some(b) = &bas {
            let valid = b.valid.iter().filter(|&&x| x).count();
            let novel = b.novel.iter().filter(|&&x| x).count();
            outln!(
                "BAS: {valid}/{} valid ({:.1} %), of which {novel} novel (not training images: {:.1} %)",
                b.samples,
                100.0 * b.valid_rate(),
                100.0 * b.novel_rate()
            );
        }
        for (what, p) in [("grid", &a.out), ("samples", &a.npy)] {
            if let Some(p) = p {
                outln!("{what} written to {}", p.display());
            }
        }
    }
    ExitCode::SUCCESS
}
