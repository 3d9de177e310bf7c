//! Model files on disk: the core's format ([`rapid_core::format`]), written atomically.
//!
//! [`AtomicFile::prepare`] creates a temporary file beside the target before any work starts,
//! so an unwritable destination is reported up front. [`AtomicFile::commit`] writes, flushes,
//! syncs and renames it over the target: a reader sees the old file or the new one, never a
//! half-written one. Dropping an uncommitted `AtomicFile` removes the temporary file.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rapid_core::format::{encode, encoded_len, ModelFile, ModelKind};
use rapid_core::{Dims, FormatError};

/// A destination file that is replaced atomically.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    /// Creates the temporary file `.<name>.tmp-<pid>` in the target's folder.
    ///
    /// # Errors
    /// The folder does not exist or is not writable, or the target is a directory.
    pub fn prepare(target: &Path) -> io::Result<Self> {
        if target.is_dir() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "is a directory"));
        }
        let name = target
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
        let file = File::create(&tmp)?;
        Ok(AtomicFile { target: target.to_path_buf(), tmp, file: Some(file) })
    }

    /// Writes `bytes`, syncs, and renames over the target.
    ///
    /// # Errors
    /// Any I/O failure; the target is then untouched.
    pub fn commit(mut self, bytes: &[u8]) -> io::Result<()> {
        let mut f = self.file.take().expect("file present until commit");
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&self.tmp, &self.target)?;
        if let Some(dir) = self.target.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Persist the rename; not every platform can open a folder, so this is best effort.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Encodes an RA model into bytes.
pub fn encode_ra(dims: Dims, xi: &[f32]) -> Vec<u8> {
    let mut buf = vec![0u8; encoded_len(ModelKind::Ra, dims)];
    encode(ModelKind::Ra, dims, xi, &mut buf);
    buf
}

/// Why a model file could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Io(io::Error),
    /// The bytes are not a valid model file.
    Format(FormatError),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io(e) => e.fmt(f),
            LoadError::Format(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for LoadError {}

/// Reads an RA model file: its sizes and patterns.
///
/// # Errors
/// I/O failure or a [`FormatError`].
pub fn load_ra(path: &Path) -> Result<(Dims, Vec<f32>), LoadError> {
    let bytes = fs::read(path).map_err(LoadError::Io)?;
    let f = ModelFile::parse(&bytes).map_err(LoadError::Format)?;
    let mut xi = vec![0.0; f.param_count()];
    f.read_params(&mut xi);
    Ok((f.dims(), xi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_round_trips_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.rapid");
        let dims = Dims::new(2, 3, 1);
        let xi = [1.0, -1.0, 0.5, 1.0, -0.25];
        AtomicFile::prepare(&path).unwrap().commit(&encode_ra(dims, &xi)).unwrap();
        let (d, back) = load_ra(&path).unwrap();
        assert_eq!((d, back.as_slice()), (dims, &xi[..]));
        // An abandoned write leaves the old file and no temporary behind.
        let pending = AtomicFile::prepare(&path).unwrap();
        drop(pending);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(load_ra(&path).unwrap().1, xi);
        assert!(AtomicFile::prepare(&dir.path().join("no/such/dir/m.rapid")).is_err());
        assert!(AtomicFile::prepare(dir.path()).is_err());
    }
}
