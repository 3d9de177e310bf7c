//! Model files on disk: the core's format ([`rapid_core::format`]), written atomically.
//!
//! [`AtomicFile::prepare`] creates a temporary file beside the target before any work starts,
//! so an unwritable destination is reported up front. [`AtomicFile::commit`] writes, flushes,
//! syncs and renames it over the target: a reader sees the old file or the new one, never a
//! half-written one. Dropping an uncommitted `AtomicFile` removes the temporary file.
//! The bytes of a model file come from [`crate::model::Model::encode`].

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.rapid");
        AtomicFile::prepare(&path).unwrap().commit(b"first").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        AtomicFile::prepare(&path).unwrap().commit(b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        // An abandoned write leaves the old file and no temporary behind.
        let pending = AtomicFile::prepare(&path).unwrap();
        drop(pending);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert!(AtomicFile::prepare(&dir.path().join("no/such/dir/m.rapid")).is_err());
        assert!(AtomicFile::prepare(dir.path()).is_err());
    }
}
