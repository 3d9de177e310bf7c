//! The subcommands of `rapid`, one module each, and the helpers they share.

pub(crate) mod eval;
pub(crate) mod export;
pub(crate) mod reproduce;
pub(crate) mod sample;
pub(crate) mod train;

use std::path::Path;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rapid_harness::model::Model;

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

/// A model file, read and decoded; the error names the file.
pub(crate) fn load_model(path: &Path) -> Result<Model, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    Model::decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}
