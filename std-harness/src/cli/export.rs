//! `rapid export`: a model file's weights as NumPy .npy files.

use rapid_harness::outln;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use rapid_harness::model::Model;
use rapid_harness::modelio::AtomicFile;
use rapid_harness::npy;

use super::{fail, load_model};

#[derive(Args)]
pub(crate) struct ExportArgs {
    /// The model file, or a checkpoint.
    #[arg(long, value_name = "FILE")]
    model: PathBuf,
    /// Output folder (created if missing): W.npy (V×H f32), xi.npy (K×(V+H)) for RA models,
    /// a.npy and b.npy for models with biases. Those of the four a model does not have are
    /// removed from the folder, so it never mixes two exports.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// Every file `rapid export` may write.
const OWNED: [&str; 4] = ["W.npy", "xi.npy", "a.npy", "b.npy"];

pub(crate) fn cmd_export(a: ExportArgs) -> ExitCode {
    let (model, _) = match load_model(&a.model) {
        Ok(m) => m,
        Err(e) => return fail(2, e),
    };
    if let Err(e) = std::fs::create_dir_all(&a.out) {
        return fail(2, format_args!("creating {}: {e}", a.out.display()));
    }
    let view = model.view();
    let (v, h) = (view.visible(), view.hidden());
    let mut files: Vec<(&str, Vec<u8>)> =
        vec![("W.npy", npy::encode_f32(&view.weights(), &[v, h]))];
    match &model {
        Model::Ra { dims, xi } => {
            files.push(("xi.npy", npy::encode_f32(xi, &[dims.patterns, dims.width()])))
        }
        Model::Dense { .. } => {
            if let (Some(av), Some(bv)) = view.biases() {
                files.push(("a.npy", npy::encode_f32(av, &[v])));
                files.push(("b.npy", npy::encode_f32(bv, &[h])));
            }
        }
    }
    for (name, bytes) in &files {
        let path = a.out.join(name);
        if let Err(e) = AtomicFile::prepare(&path).and_then(|f| f.commit(bytes)) {
            return fail(1, format_args!("writing {}: {e}", path.display()));
        }
        outln!("{}", path.display());
    }
    // The files an export owns that this model does not have (an earlier export of another
    // kind of model into the same folder) would be read as this model's: remove them.
    for name in OWNED {
        if files.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let path = a.out.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => eprintln!("rapid: removed {} from an earlier export", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return fail(1, format_args!("removing stale {}: {e}", path.display())),
        }
    }
    ExitCode::SUCCESS
}
