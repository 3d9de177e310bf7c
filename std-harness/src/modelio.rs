//! Model files on disk: the core's format ([`rapid_core::format`]), written atomically.
//!
//! [`AtomicFile::prepare`] creates a temporary file beside the target before any work starts,
//! so an unwritable destination is reported up front. [`AtomicFile::commit`] writes, flushes,
//! syncs and renames it over the target: a reader sees the old file or the new one, never a
//! half-written one. The bytes of a model file come from [`crate::model::Model::encode`].
//!
//! # Temporary files
//!
//! Each [`AtomicFile`] has a temporary file of its own, `.<name>.tmp-<pid>-<n>` (`n` counts
//! the process's atomic files), so two writers of one target never share one. It is removed
//! on every path that does not rename it: a failed write, sync or rename removes it before
//! [`AtomicFile::commit`] returns, and dropping an uncommitted `AtomicFile` removes it.
//!
//! A process that is stopped by a signal runs no destructors, so every live temporary file is
//! also kept in a process-wide registry: [`remove_temporaries_before_exit`] deletes them all
//! (`rapid` calls it on Ctrl-C and SIGTERM). Temporary files are created, renamed and removed
//! only while holding the registry's lock, so a file is either registered or absent.
//!
//! A process killed outright (`kill -9`, a power cut) leaves its temporary file behind.
//! [`AtomicFile::prepare`] removes such debris beside its target: a `.<name>.tmp-<pid>…` file
//! whose process is gone. A writer holds an advisory lock ([`File::try_lock`]) on its
//! temporary file while it lives, and a file is removed only when its process is not running
//! (no `/proc/<pid>`; for this process's own id, a file it does not have registered) and
//! its lock is free, so the temporary file of a live writer is never removed, even one of
//! another PID namespace sharing the folder. This needs `/proc`, so it is done on Linux only;
//! elsewhere the debris stays until removed by hand.
//!
//! # Locks
//!
//! [`lock_target`] takes an exclusive advisory lock on a destination for as long as a run
//! writes it, so that a second run writing the same file fails at once with a clear message
//! instead of both writing it in turn; see [`TargetLock`].

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// A list of files to remove if the process is stopped: the temporary files of the live
/// [`AtomicFile`]s, or the lock files of the live [`TargetLock`]s (one entry per file).
struct PathRegistry(Mutex<Vec<PathBuf>>);

impl PathRegistry {
    const fn new() -> Self {
        PathRegistry(Mutex::new(Vec::new()))
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

/// The temporary files of the live [`AtomicFile`]s. Lock order: `LIVE` before `LOCKS`.
static LIVE: PathRegistry = PathRegistry::new();
/// The lock files of the live [`TargetLock`]s.
static LOCKS: PathRegistry = PathRegistry::new();
/// Numbers the temporary files of this process.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// The temporary files of the [`AtomicFile`]s that are alive now.
pub fn live_temporaries() -> Vec<PathBuf> {
    LIVE.lock().clone()
}

/// Removes every live temporary file, for a process about to exit (on a signal), and returns
/// how many were removed; the lock files of the live [`TargetLock`]s are removed too (their
/// locks are released when the process exits). The registries then stay locked: any later
/// [`AtomicFile`] or [`TargetLock`] operation in another thread waits forever, so no new
/// temporary file appears and no target is replaced before the exit.
pub fn remove_temporaries_before_exit() -> usize {
    let mut live = LIVE.lock();
    let mut locks = LOCKS.lock();
    let n = remove_all(&mut live);
    remove_all(&mut locks);
    std::mem::forget(live);
    std::mem::forget(locks);
    n
}

/// The folder holding `target` and its file name.
fn split_target(target: &Path) -> io::Result<(PathBuf, String)> {
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
    Ok((dir, name.to_string_lossy().into_owned()))
}

/// The process id in the tail of a temporary file's name (`<pid>` or `<pid>-<n>`, after
/// `.<name>.tmp-`), if it is one.
fn temp_pid(tail: &str) -> Option<u32> {
    let (pid, n) = tail.split_once('-').unwrap_or((tail, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(pid) && digits(n) {
        pid.parse().ok()
    } else {
        None
    }
}

/// Whether process `pid` is running (an entry in `/proc`); `None` when `/proc` is missing.
#[cfg(target_os = "linux")]
fn process_running(pid: u32) -> Option<bool> {
    if !Path::new("/proc/self").exists() {
        return None;
    }
    Some(Path::new(&format!("/proc/{pid}")).exists())
}

/// Removes the temporary files `.<name>.tmp-<pid>…` in `dir` that no live writer holds (see
/// the module docs) and returns how many were removed. `live` is the locked registry.
#[cfg(target_os = "linux")]
fn remove_stale_temporaries(dir: &Path, name: &str, live: &[PathBuf]) -> usize {
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    let own = std::process::id();
    let mut removed = 0;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().and_then(|s| s.strip_prefix(&prefix)).and_then(temp_pid)
        else {
            continue;
        };
        let path = dir.join(&file_name);
        let gone =
            if pid == own { !live.contains(&path) } else { process_running(pid) == Some(false) };
        if !gone {
            continue;
        }
        // A free lock: no writer holds the file (an error, such as a file system without
        // locks, leaves it alone). The lock is held while the file is removed.
        let Ok(f) = File::open(&path) else { continue };
        if f.try_lock().is_ok() && fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(not(target_os = "linux"))]
fn remove_stale_temporaries(_dir: &Path, _name: &str, _live: &[PathBuf]) -> usize {
    0
}

/// The file-system steps of [`AtomicFile::commit`]: [`AtomicFile::commit_with`] takes them
/// as a parameter so that tests can make any step fail (a full disk at byte `n`, a failed
/// sync or rename) and check what is left behind. Each method's default is the real step.
pub trait CommitSteps {
    /// Writes all of `bytes` to the temporary file.
    ///
    /// # Errors
    /// As [`Write::write_all`].
    fn write(&mut self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        file.write_all(bytes)?;
        file.flush()
    }

    /// Makes the written bytes durable.
    ///
    /// # Errors
    /// As [`File::sync_all`].
    fn sync(&mut self, file: &File) -> io::Result<()> {
        file.sync_all()
    }

    /// Renames the temporary file over the target.
    ///
    /// # Errors
    /// As [`fs::rename`].
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
}

/// The real file-system steps, which [`AtomicFile::commit`] uses.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealSteps;

impl CommitSteps for RealSteps {}

/// A destination file that is replaced atomically.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    tmp: PathBuf,
    /// The open temporary file (locked), until it is committed or removed.
    file: Option<File>,
}

impl AtomicFile {
    /// Creates the temporary file `.<name>.tmp-<pid>-<n>` in the target's folder, after
    /// removing the stale temporary files of that target that writers killed before they
    /// could remove them (see the module docs).
    ///
    /// # Errors
    /// The folder does not exist or is not writable, or the target is a directory.
    pub fn prepare(target: &Path) -> io::Result<Self> {
        let (dir, name) = split_target(target)?;
        let mut live = LIVE.lock();
        remove_stale_temporaries(&dir, &name, &live);
        let pid = std::process::id();
        // The name is new to this process; a file already there belongs to a process of
        // another PID namespace with the same id: take the next number.
        let mut attempts = 0;
        let (tmp, file) = loop {
            let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
            let tmp = dir.join(format!(".{name}.tmp-{pid}-{n}"));
            match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(file) => break (tmp, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 100 => {
                    attempts += 1;
                }
                Err(e) => return Err(e),
            }
        };
        // Marks the file as in use for stale-file removal; a file system without locks
        // only loses that protection.
        let _ = file.try_lock();
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
    /// Any I/O failure; the target is then untouched and the temporary file removed.
    pub fn commit(self, bytes: &[u8]) -> io::Result<()> {
        self.commit_with(bytes, &mut RealSteps)
    }

    /// [`AtomicFile::commit`] with the given file-system steps, for fault-injection tests.
    ///
    /// # Errors
    /// The first step that fails; the target is then untouched and the temporary file
    /// removed (as long as the file system lets it be removed).
    pub fn commit_with(mut self, bytes: &[u8], steps: &mut impl CommitSteps) -> io::Result<()> {
        let file = self.file.as_mut().expect("file present until commit");
        let written = steps.write(file, bytes).and_then(|()| steps.sync(file));
        let renamed = {
            let mut live = LIVE.lock();
            let renamed = written.and_then(|()| steps.rename(&self.tmp, &self.target));
            if renamed.is_err() {
                let _ = fs::remove_file(&self.tmp);
            }
            unregister(&mut live, &self.tmp);
            // Closes the file (and releases its lock) once it is renamed or removed.
            self.file = None;
            renamed
        };
        renamed?;
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
    /// An uncommitted file (never committed, or whose commit panicked) removes its temporary.
    fn drop(&mut self) {
        if self.file.is_some() {
            let mut live = LIVE.lock();
            let _ = fs::remove_file(&self.tmp);
            unregister(&mut live, &self.tmp);
            self.file = None;
        }
    }
}

/// An exclusive advisory lock on a destination file, held from [`lock_target`] until it is
/// dropped (or the process ends, however it ends: the operating system releases it).
///
/// The lock is taken on a lock file beside the target, `.<name>.lock`, which holds the
/// holder's process id: the target itself is replaced by a rename on every commit, so a lock
/// on it would not outlive the first commit. Dropping the lock removes the lock file while the
/// lock is still held; a process that locks a file at the moment it is being removed notices
/// that the path no longer names the file it locked and starts again, so two processes can
/// never both hold the lock of one target. A process killed outright leaves its lock file
/// behind, unlocked: the next [`lock_target`] takes it over. (Where files cannot be compared,
/// outside Unix, the lock file is kept instead of removed.)
///
/// The lock is advisory: it keeps out other `rapid` runs that lock the target, not other
/// programs. A second lock of the same target within one process fails too.
///
/// # Examples
///
/// ```
/// use rapid_harness::modelio::{lock_target, AtomicFile};
///
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("m.rapid");
/// // At the start of a run, before the long work: fails at once if another run writes it.
/// let lock = lock_target(&path).map_err(|e| e.to_string())?;
/// assert!(lock_target(&path).unwrap_err().to_string().contains("is being written by"));
/// // ... every write of the file during the run, while `lock` lives:
/// AtomicFile::prepare(&path)?.commit(b"model bytes")?;
/// drop(lock); // at the end of the run (or let it go out of scope)
/// assert!(lock_target(&path).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TargetLock {
    target: PathBuf,
    path: PathBuf,
    /// The lock file, locked.
    file: File,
}

/// Why [`lock_target`] failed.
#[derive(Debug)]
pub enum LockError {
    /// Another holder has the lock: another process, or this one.
    Held {
        /// The destination.
        target: PathBuf,
        /// The holder's process id, when its lock file says.
        pid: Option<u32>,
    },
    /// The lock file could not be created or locked (an unwritable folder, or a file system
    /// without locks). A caller may choose to go on without the lock.
    Io {
        /// The lock file.
        lock_file: PathBuf,
        /// The failure.
        error: io::Error,
    },
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Held { target, pid: Some(pid) } if *pid == std::process::id() => write!(
                f,
                "{} is already being written by this rapid process (pid {pid}); choose another \
                 file",
                target.display()
            ),
            LockError::Held { target, pid } => {
                write!(f, "{} is being written by another rapid process", target.display())?;
                if let Some(pid) = pid {
                    write!(f, " (pid {pid})")?;
                }
                f.write_str("; wait for it or choose another file")
            }
            LockError::Io { lock_file, error } => {
                write!(f, "cannot lock {}: {error}", lock_file.display())
            }
        }
    }
}

impl std::error::Error for LockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Io { error, .. } => Some(error),
            LockError::Held { .. } => None,
        }
    }
}

/// Whether `path` still names the file open as `file` (the lock file was not removed or
/// replaced in between).
#[cfg(unix)]
fn names_same_file(path: &Path, file: &File) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let open = file.metadata()?;
    Ok(match fs::metadata(path) {
        Ok(named) => (named.dev(), named.ino()) == (open.dev(), open.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    })
}

#[cfg(not(unix))]
fn names_same_file(_path: &Path, _file: &File) -> io::Result<bool> {
    Ok(true)
}

/// The process id written in a lock file, if it holds one.
fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Takes the exclusive advisory lock of the destination `target` (see [`TargetLock`]),
/// without waiting.
///
/// # Errors
/// [`LockError::Held`] when another process, or another lock in this one, holds it;
/// [`LockError::Io`] when the lock file cannot be created or locked.
pub fn lock_target(target: &Path) -> Result<TargetLock, LockError> {
    let (dir, name) = split_target(target)
        .map_err(|error| LockError::Io { lock_file: target.to_path_buf(), error })?;
    let path = dir.join(format!(".{name}.lock"));
    let io_err = |error| LockError::Io { lock_file: path.clone(), error };
    // A lock file removed or replaced between the open and the lock is retried; a few rounds
    // suffice unless other processes keep taking and releasing it.
    for _ in 0..1000 {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    target: target.to_path_buf(),
                    pid: holder_pid(&mut file),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err(e)),
        }
        if !names_same_file(&path, &file).map_err(io_err)? {
            continue;
        }
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(pid.as_bytes()))
            .map_err(io_err)?;
        LOCKS.lock().push(path.clone());
        return Ok(TargetLock { target: target.to_path_buf(), path, file });
    }
    Err(io_err(io::Error::other("the lock file keeps being replaced")))
}

impl TargetLock {
    /// The destination this lock is for.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The lock file, `.<name>.lock` beside the target.
    pub fn lock_file(&self) -> &Path {
        &self.path
    }
}

impl Drop for TargetLock {
    /// Removes the lock file, then releases the lock (closing the file).
    fn drop(&mut self) {
        let mut locks = LOCKS.lock();
        if cfg!(unix) {
            let _ = fs::remove_file(&self.path);
        }
        unregister(&mut locks, &self.path);
        let _ = self.file.unlock();
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

        let own = PathRegistry::new();
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

    #[test]
    fn temporary_names_carry_pid_and_number() {
        assert_eq!(temp_pid("1234"), Some(1234));
        assert_eq!(temp_pid("1234-7"), Some(1234));
        for bad in ["", "-", "12-", "-3", "12-3-4", "12a", "x-1", "1234.tmp-5"] {
            assert_eq!(temp_pid(bad), None, "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.rapid");
        let (a, b) = (AtomicFile::prepare(&path).unwrap(), AtomicFile::prepare(&path).unwrap());
        assert_ne!(a.temporary(), b.temporary(), "one temporary file per writer");
        let pid = std::process::id();
        for f in [&a, &b] {
            let name = f.temporary().file_name().unwrap().to_str().unwrap().to_string();
            let tail = name.strip_prefix(".m.rapid.tmp-").unwrap();
            assert_eq!(temp_pid(tail), Some(pid), "{name}");
        }
    }

    #[test]
    fn a_target_is_locked_once_until_the_lock_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.rapid");
        let lock = lock_target(&path).unwrap();
        let lock_file = dir.path().join(".m.rapid.lock");
        assert_eq!(lock.lock_file(), lock_file);
        assert_eq!(
            std::fs::read_to_string(&lock_file).unwrap(),
            format!("{}\n", std::process::id())
        );
        assert!(LOCKS.lock().contains(&lock_file));
        let e = lock_target(&path).unwrap_err();
        assert!(matches!(e, LockError::Held { pid: Some(p), .. } if p == std::process::id()));
        assert_eq!(
            e.to_string(),
            format!(
                "{} is already being written by this rapid process (pid {}); choose another file",
                path.display(),
                std::process::id()
            )
        );
        // Another target in the same folder is not affected.
        let other = lock_target(&dir.path().join("ck.rapid")).unwrap();
        drop(lock);
        assert!(!lock_file.exists() && !LOCKS.lock().contains(&lock_file));
        let again = lock_target(&path).unwrap();
        drop((again, other));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let held = LockError::Held { target: path.clone(), pid: Some(1234) };
        assert_eq!(
            held.to_string(),
            format!(
                "{} is being written by another rapid process (pid 1234); wait for it or \
                 choose another file",
                path.display()
            )
        );
        assert!(matches!(lock_target(dir.path()), Err(LockError::Io { .. })));
    }

    /// A lock file left by a killed process (unlocked, with a stale pid) is taken over.
    #[test]
    fn a_leftover_lock_file_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.rapid");
        std::fs::write(dir.path().join(".m.rapid.lock"), "99999999\n").unwrap();
        let lock = lock_target(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(lock.lock_file()).unwrap(),
            format!("{}\n", std::process::id())
        );
    }
}
