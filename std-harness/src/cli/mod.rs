//! The subcommands of `rapid`, one module each, and the helpers they share.

pub(crate) mod eval;
pub(crate) mod export;
pub(crate) mod reproduce;
pub(crate) mod sample;
pub(crate) mod train;

use std::path::Path;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rapid_harness::checkpoint::{read_model_or_checkpoint, Provenance};
use rapid_harness::data::{Dataset, DatasetSpec, FileSource};
use rapid_harness::model::Model;

/// A JSON number holding the shortest decimal that reads back as `x` (`0.02`, not the
/// `0.019999999552965164` of `x as f64`).
pub(crate) fn json_f32(x: f32) -> serde_json::Value {
    if !x.is_finite() {
        return serde_json::Value::Null;
    }
    let shortest: f64 = x.to_string().parse().expect("a finite f32 prints as a number");
    serde_json::json!(shortest)
}

/// Parses a count for clap: a whole number ≥ 0 (negative numbers reach this parser, so the
/// message can say what is wrong instead of "unexpected argument").
pub(crate) fn whole<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.trim().parse::<T>().map_err(|_| {
        if s.trim_start().starts_with('-') {
            format!("'{s}' is negative; a whole number >= 0 is needed")
        } else {
            format!("'{s}' is not a whole number")
        }
    })
}

/// One line on stderr and the exit code: 2 for bad input, 1 for a failure during work.
pub(crate) fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("rapid: error: {msg}");
    ExitCode::from(code)
}

pub(crate) fn progress_bar(len: u64, unit: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {unit}  {{elapsed_precise}} (eta {{eta}})  {{msg}}"
        ))
        .expect("valid template"),
    );
    pb
}

/// A model file or a checkpoint, read and decoded, with how it was made where the file says
/// (model files written by `rapid train` since settings were stored, and checkpoints); the
/// error names the file.
pub(crate) fn load_model(path: &Path) -> Result<(Model, Option<Provenance>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    read_model_or_checkpoint(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The data to evaluate a model on: `--dataset` (with its file options) when given, else the
/// data the model file names, with the split seed it was trained with unless `--split-seed`
/// is given. Returns the data and where the choice came from, for the output's header.
pub(crate) fn data_for_model(
    given: Option<&DatasetSpec>,
    test: Option<FileSource>,
    binarize: Option<f32>,
    shape: Option<(usize, usize)>,
    split_seed: Option<u64>,
    made: Option<&Provenance>,
) -> Result<(Dataset, &'static str), String> {
    let (spec, seed, origin) = match (given, made) {
        (Some(spec), _) => (spec.clone(), split_seed.unwrap_or(0), "--dataset"),
        (None, Some(p)) if matches!(p.dataset, DatasetSpec::Arrays { .. }) => {
            return Err(format!(
                "the model was trained on in-memory rows ({}), not on data rapid can load: \
                 give --dataset",
                p.dataset
            ))
        }
        (None, Some(p)) => {
            let origin = if p.checkpoint {
                "the checkpoint's settings"
            } else {
                "the model file's settings"
            };
            (p.dataset.clone(), split_seed.unwrap_or(p.split_seed), origin)
        }
        (None, None) => {
            return Err("the model file does not say what it was trained on (it predates \
                        stored settings): give --dataset"
                .into())
        }
    };
    let spec = spec.with_options(test, binarize, shape)?;
    Ok((Dataset::load(&spec, seed)?, origin))
}
