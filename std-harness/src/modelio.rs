//! Model files on disk: the core's format ([`rapid_core::format`]), written atomically.
//!
//! [`AtomicFile::prepare`] creates a temporary file beside the target before any work starts,
//! so an unwritable destination is reported up front. [`AtomicFile::commit`] writes, flushes,
//! syncs and renames it over the target: a reader sees the old file or the new one, never a
//! half-written one. Dropping an uncommitted `AtomicFile` removes the temporary file.
//! The bytes of a model file come from [`crate::model::Model::encode`].
//!
//! A process that is stopped by a signal runs no destructors, so every live temporary file is
//! also kept in a process-wide registry: [`remove_temporaries_before_exit`] deletes them all
//! (`rapid` calls it on Ctrl-C and SIGTERM). Temporary files are created, renamed and removed
//! only while holding the registry's lock, so a file is either registered or absent.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The temporary files of the live [`AtomicFile`]s (one entry per file; a path may appear
/// twice when two writers share a target).
struct TempRegistry(Mutex<Vec<PathBuf>>);

impl TempRegistry {
    const fn new() -> Self {
        TempRegistry(Mutex::new(Vec::new()))
    }

    fn lock(&self) -> MutexGuard<'_, Vec<PathBuf>> {
        // A writer that panicked leaves a consistent list: entries change in single steps.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Forgets one entry for `path`.
fn unregister(live: &mut Vec<PathBuf>, path: &Path) {
    if let Some(i) = live.iter().position(|p| p == path) {
        live.swap_remove(i);
    }
}

/// Removes every registered file and empties the list; returns how many files were removed.
fn remove_all(live: &mut Vec<PathBuf>) -> usize {
    live.drain(..).filter(|p| fs::remove_file(p).is_ok()).count()
}

static LIVE: TempRegistry = TempRegistry::new();

/// The temporary files of the [`AtomicFile`]s that are alive now.
pub fn live_temporaries() -> Vec<PathBuf> {
    LIVE.lock().clone()
}

/// Removes every live temporary file, for a process about to exit (on a signal), and returns
/// how many were removed. The registry then stays locked: any later [`AtomicFile`] operation
/// in another thread waits forever, so no new temporary file appears and no target is
/// replaced before the exit.
pub fn remove_temporaries_before_exit() -> usize {
    let mut live = LIVE.lock();
    let n = remove_all(&mut live);
    std::mem::forget(live);
    n
}

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
        let mut live = LIVE.lock();
        let file = File::create(&tmp)?;
        live.push(tmp.clone());
        Ok(AtomicFile { target: target.to_path_buf(), tmp, file: Some(file) })
    }

    /// The temporary file being written.
    pub fn temporary(&self) -> &Path {
        &self.tmp
    }

    /// Writes `bytes`, syncs, and renames over the target.
    ///
    /// # Errors
    /// Any I/O failure; the target is then untouched.
    pub fn commit(mut self, bytes: &[u8]) -> io::Result<()> {
        let f = self.file.as_mut().expect("file present until commit");
        f.write_all(bytes)?;
        f.sync_all()?;
        self.file = None;
        {
            let mut live = LIVE.lock();
            if let Err(e) = fs::rename(&self.tmp, &self.target) {
                let _ = fs::remove_file(&self.tmp);
                unregister(&mut live, &self.tmp);
                return Err(e);
            }
            unregister(&mut live, &self.tmp);
        }
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
    /// An uncommitted file (never committed, or whose write failed) removes its temporary.
    fn drop(&mut self) {
        if self.file.is_some() {
            let mut live = LIVE.lock();
            let _ = fs::remove_file(&self.tmp);
            unregister(&mut live, &self.tmp);
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

    /// Prepared files are registered until they are committed or dropped, and the registry
    /// removes what it holds. (Other tests write files concurrently: only this test's own
    /// paths are looked at, and the removal runs on a registry of its own.)
    #[test]
    fn temporaries_are_registered_while_alive() {
        let dir = tempfile::tempdir().unwrap();
        let registered = |p: &Path| live_temporaries().iter().any(|q| q == p);
        let a = AtomicFile::prepare(&dir.path().join("a")).unwrap();
        let b = AtomicFile::prepare(&dir.path().join("b")).unwrap();
        let (ta, tb) = (a.temporary().to_path_buf(), b.temporary().to_path_buf());
        assert!(ta.exists() && registered(&ta) && registered(&tb));
        assert!(ta.file_name().unwrap().to_string_lossy().starts_with(".a.tmp-"));
        a.commit(b"x").unwrap();
        assert!(!ta.exists() && !registered(&ta), "committed: renamed and forgotten");
        drop(b);
        assert!(!tb.exists() && !registered(&tb), "dropped: removed and forgotten");
        // A commit that cannot rename (the target is now a folder) removes its temporary.
        let c = AtomicFile::prepare(&dir.path().join("c")).unwrap();
        let tc = c.temporary().to_path_buf();
        std::fs::create_dir(dir.path().join("c")).unwrap();
        std::fs::write(dir.path().join("c/inside"), b"").unwrap();
        assert!(c.commit(b"y").is_err());
        assert!(!tc.exists() && !registered(&tc));

        let own = TempRegistry::new();
        let files: Vec<PathBuf> = (0..3).map(|i| dir.path().join(format!(".t{i}.tmp-1"))).collect();
        for f in &files {
            std::fs::write(f, b"").unwrap();
            own.lock().push(f.clone());
        }
        own.lock().push(dir.path().join("never-created"));
        unregister(&mut own.lock(), &files[1]);
        assert_eq!(remove_all(&mut own.lock()), 2);
        assert!(own.lock().is_empty());
        assert!(!files[0].exists() && files[1].exists() && !files[2].exists());
    }
}
