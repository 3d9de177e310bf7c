//! `rapid export`: a model file's weights as NumPy .npy files.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use rapid_harness::limits;
use rapid_harness::model::Model;
use rapid_harness::modelio::AtomicFile;
use rapid_harness::npy;
use rapid_harness::outln;

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
    /// Do not write W.npy (an RA model's patterns in xi.npy define it; W has V·H entries and
    /// is written in pieces, after checking the folder's free space).
    #[arg(long)]
    no_w: bool,
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
    // W is written in pieces of about 16 MiB, formed from the patterns piece by piece for RA
    // models, so no export needs memory for the whole V×H matrix.
    let rows = ((4 << 20) / h.max(1)).clamp(1, v.max(1));
    let write_w = |out: &mut dyn Write| -> std::io::Result<()> {
        out.write_all(&npy::header_f32(&[v, h]))?;
        let mut piece = vec![0.0f32; rows * h];
        let mut bytes = Vec::with_capacity(4 * rows * h);
        for start in (0..v).step_by(rows) {
            let end = (start + rows).min(v);
            let part = &mut piece[..(end - start) * h];
            view.weight_rows(start..end, part);
            bytes.clear();
            bytes.extend(part.iter().flat_map(|x| x.to_le_bytes()));
            out.write_all(&bytes)?;
        }
        Ok(())
    };
    let mut files: Vec<(&str, Vec<u8>)> = Vec::new();
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
    let path = a.out.join("W.npy");
    let w_bytes = 4 * v as u128 * h as u128;
    if a.no_w {
        // Nothing to write; an earlier export's W.npy is removed below.
    } else if let Some(free) = limits::free_disk_space(&a.out).filter(|&f| w_bytes > u128::from(f))
    {
        return fail(
            1,
            format_args!(
                "W.npy ({v}×{h}) would take {}, more than the {} free in {}{}",
                limits::human_bytes(w_bytes),
                limits::human_bytes(u128::from(free)),
                a.out.display(),
                if matches!(model, Model::Ra { .. }) {
                    "; --no-w exports the patterns only"
                } else {
                    ""
                }
            ),
        );
    } else {
        if let Err(e) = AtomicFile::prepare(&path).and_then(|f| f.commit_streamed(write_w)) {
            return fail(1, format_args!("writing {}: {e}", path.display()));
        }
        outln!("{}", path.display());
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
        if (name == "W.npy" && !a.no_w) || files.iter().any(|(n, _)| *n == name) {
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
