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
//!
//! # Reading
//!
//! [`read_model_or_checkpoint_bytes`] reads a model file or a checkpoint no further than its
//! headers say: it reads each header, checks the length it announces against a limit, and
//! only then allocates and reads that many bytes. A file with bytes after its end, or one that
//! announces more than the limit, is refused without reading the rest, so a damaged header or
//! a wrong file (`/dev/zero`, a huge file) costs neither the time to read it nor the memory.
//! The bytes are then decoded as before ([`crate::checkpoint::read_model_or_checkpoint`]),
//! with every check of the decoders.

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
        // Only plain files (a FIFO would block the open; a link is not followed).
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
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
        self.finish(written, steps)
    }

    /// [`AtomicFile::commit`] for contents written in pieces, so a large file never has to be
    /// in memory whole: `write` gets a buffered writer to the temporary file; then the file
    /// is synced and renamed over the target.
    ///
    /// # Errors
    /// An error of `write`, or of the sync or rename; the target is then untouched and the
    /// temporary file removed.
    pub fn commit_streamed(
        mut self,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        let file = self.file.as_mut().expect("file present until commit");
        let written = {
            let mut w = io::BufWriter::with_capacity(1 << 20, &mut *file);
            write(&mut w).and_then(|()| w.flush())
        };
        let written = written.and_then(|()| RealSteps.sync(file));
        self.finish(written, &mut RealSteps)
    }

    /// Renames the written temporary over the target (when `written` is `Ok`), or removes it.
    fn finish(mut self, written: io::Result<()>, steps: &mut impl CommitSteps) -> io::Result<()> {
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
/// // At the start of a run, before the long work: fails at once if another run writes it
/// // (the error is one line for the user, naming the file and the other process).
/// let lock = lock_target(&path).map_err(|e| e.to_string())?;
/// // A second lock fails too, even in this process: lock each file once (--out and
/// // --checkpoint may name the same file).
/// assert!(lock_target(&path).unwrap_err().to_string().contains("being written by"));
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

/// A fixed limit for [`read_model_or_checkpoint_bytes`] where no memory budget applies:
/// 8 GiB, far above the files of the models the presets train (megabytes) and small enough
/// that a damaged length is refused rather than attempted. (`rapid` itself reads within its
/// memory budget, [`crate::limits::max_memory`].)
pub const DEFAULT_MAX_FILE_BYTES: u64 = 8 << 30;

/// Why [`read_model_or_checkpoint_bytes`] refused a file.
#[derive(Debug)]
pub enum ReadError {
    /// The file could not be opened or read.
    Io(io::Error),
    /// The first bytes are neither a model file's magic nor a checkpoint's.
    BadMagic,
    /// The file ends before the end its headers announce.
    Truncated {
        /// The length announced so far (at least this many bytes were needed).
        expected: u64,
        /// The length found.
        found: u64,
    },
    /// The file goes on after the end its headers announce.
    TrailingBytes {
        /// Whether the file is a checkpoint (else a model file).
        checkpoint: bool,
        /// The length the headers announce.
        expected: u64,
    },
    /// The headers announce more bytes than the limit.
    TooLarge {
        /// The length announced so far (the file is at least this long).
        announced: u64,
        /// The limit.
        limit: u64,
    },
    /// The memory for the announced length could not be allocated.
    OutOfMemory {
        /// The length that was to be held.
        bytes: u64,
    },
    /// A model file's header is invalid (an unknown version or kind, dimensions that do not
    /// match the payload length, a bad settings header).
    Model(rapid_core::FormatError),
    /// A checkpoint's version is not one this build reads.
    CheckpointVersion(u16),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => e.fmt(f),
            ReadError::BadMagic => {
                f.write_str("not a rapid model file or checkpoint (bad magic bytes)")
            }
            ReadError::Truncated { expected, found } => {
                write!(f, "truncated: the file has {found} bytes, its header announces {expected}")
            }
            ReadError::TrailingBytes { checkpoint, expected } => write!(
                f,
                "trailing bytes after the {} (the file is longer than its header says: {expected} \
                 bytes)",
                if *checkpoint { "checkpoint" } else { "model" }
            ),
            ReadError::TooLarge { announced, limit } => write!(
                f,
                "the file announces at least {announced} bytes, more than the limit of {limit} \
                 bytes (a damaged header?)"
            ),
            ReadError::OutOfMemory { bytes } => {
                write!(f, "cannot allocate the {bytes} bytes the file announces")
            }
            ReadError::Model(e) => e.fmt(f),
            ReadError::CheckpointVersion(v) => {
                write!(f, "checkpoint format version {v} is not supported by this build")
            }
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Reads a model file (with or without its settings section) or a checkpoint from `path`,
/// no further than its headers say (see the module docs), and returns its bytes for
/// [`crate::checkpoint::read_model_or_checkpoint`]. Files longer than `max_bytes` are refused
/// ([`DEFAULT_MAX_FILE_BYTES`] is a default); a regular file shorter than a length its header
/// announces is reported truncated before anything is allocated for that length.
///
/// # Errors
/// See [`ReadError`].
pub fn read_model_or_checkpoint_bytes(path: &Path, max_bytes: u64) -> Result<Vec<u8>, ReadError> {
    let file = File::open(path).map_err(ReadError::Io)?;
    let size = file.metadata().ok().filter(fs::Metadata::is_file).map(|m| m.len());
    BoundedReader::new(io::BufReader::new(file), max_bytes, size).read_any()
}

/// [`read_model_or_checkpoint_bytes`] from any reader (which is read no further than the
/// headers say, plus one byte to see whether the file ends there).
///
/// # Errors
/// See [`ReadError`].
pub fn read_model_or_checkpoint_from(
    reader: impl Read,
    max_bytes: u64,
) -> Result<Vec<u8>, ReadError> {
    BoundedReader::new(reader, max_bytes, None).read_any()
}

/// The bytes read so far, read on as the headers announce more.
struct BoundedReader<R> {
    r: R,
    buf: Vec<u8>,
    limit: u64,
    /// The file's size, when it is a regular file.
    size: Option<u64>,
}

impl<R: Read> BoundedReader<R> {
    fn new(r: R, limit: u64, size: Option<u64>) -> Self {
        BoundedReader { r, buf: Vec::new(), limit, size }
    }

    fn len(&self) -> u64 {
        self.buf.len() as u64
    }

    /// Reads on to `end` bytes in all: checked against the limit and the file's size, then
    /// allocated, then read.
    fn read_to(&mut self, end: Option<u64>) -> Result<(), ReadError> {
        // An overflowing length is beyond any limit.
        let end = end.ok_or(ReadError::TooLarge { announced: u64::MAX, limit: self.limit })?;
        if end > self.limit {
            return Err(ReadError::TooLarge { announced: end, limit: self.limit });
        }
        if let Some(size) = self.size.filter(|&s| s < end) {
            return Err(ReadError::Truncated { expected: end, found: size });
        }
        let more = end.saturating_sub(self.len());
        let add = usize::try_from(more).map_err(|_| ReadError::OutOfMemory { bytes: end })?;
        self.buf.try_reserve_exact(add).map_err(|_| ReadError::OutOfMemory { bytes: end })?;
        (&mut self.r).take(more).read_to_end(&mut self.buf).map_err(ReadError::Io)?;
        if self.len() < end {
            return Err(ReadError::Truncated { expected: end, found: self.len() });
        }
        Ok(())
    }

    /// Reads `n` more bytes and returns them.
    fn field(&mut self, n: u64) -> Result<&[u8], ReadError> {
        let start = self.buf.len();
        self.read_to(self.len().checked_add(n))?;
        Ok(&self.buf[start..])
    }

    fn u16(&mut self) -> Result<u16, ReadError> {
        Ok(u16::from_le_bytes(self.field(2)?.try_into().expect("2 bytes")))
    }

    fn u32(&mut self) -> Result<u32, ReadError> {
        Ok(u32::from_le_bytes(self.field(4)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64, ReadError> {
        Ok(u64::from_le_bytes(self.field(8)?.try_into().expect("8 bytes")))
    }

    /// Reads up to `n` more bytes, as many as there are; returns how many were read.
    fn read_up_to(&mut self, n: u64) -> Result<usize, ReadError> {
        let before = self.buf.len();
        (&mut self.r).take(n).read_to_end(&mut self.buf).map_err(ReadError::Io)?;
        Ok(self.buf.len() - before)
    }

    /// Checks that the input ends here (reading at most one byte more).
    fn end(mut self, checkpoint: bool) -> Result<Vec<u8>, ReadError> {
        let expected = self.len();
        if self.read_up_to(1)? > 0 {
            return Err(ReadError::TrailingBytes { checkpoint, expected });
        }
        Ok(self.buf)
    }

    fn read_any(mut self) -> Result<Vec<u8>, ReadError> {
        use rapid_core::format::MAGIC as MODEL_MAGIC;
        let got = self.read_up_to(8)?;
        let head = &self.buf[..got];
        let is = |magic: &[u8]| magic.starts_with(head);
        if got < 8 {
            return Err(if is(&MODEL_MAGIC) || is(&crate::checkpoint::MAGIC) {
                ReadError::Truncated { expected: 8, found: got as u64 }
            } else {
                ReadError::BadMagic
            });
        }
        if head == MODEL_MAGIC {
            self.read_model()?;
            self.read_settings()
        } else if head == crate::checkpoint::MAGIC {
            self.read_checkpoint()
        } else {
            Err(ReadError::BadMagic)
        }
    }

    /// Reads the model block after its magic: the header, then the payload and checksum it
    /// announces, once the length is checked against the kind and dimensions.
    fn read_model(&mut self) -> Result<(), ReadError> {
        use rapid_core::format::{param_count, CHECKSUM_LEN, HEADER_LEN, VERSION};
        use rapid_core::FormatError;
        let start = self.buf.len() - 8;
        self.field((HEADER_LEN - 8) as u64)?;
        let h = &self.buf[start..];
        let u16_at = |o: usize| u16::from_le_bytes([h[o], h[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().expect("4 bytes"));
        let version = u16_at(8);
        if version == 0 || version > VERSION {
            return Err(ReadError::Model(FormatError::UnsupportedVersion(version)));
        }
        let code = u16_at(10);
        let kind = rapid_core::format::ModelKind::from_code(code)
            .ok_or(ReadError::Model(FormatError::UnknownKind(code)))?;
        let dims =
            rapid_core::Dims::new(u32_at(12) as usize, u32_at(16) as usize, u32_at(20) as usize);
        if !kind.dims_valid(dims) {
            return Err(ReadError::Model(FormatError::BadDimensions));
        }
        let stated = u64::from_le_bytes(h[24..32].try_into().expect("8 bytes"));
        let expected = (param_count(kind, dims) as u64)
            .checked_mul(4)
            .ok_or(ReadError::Model(FormatError::BadDimensions))?;
        if stated != expected {
            return Err(ReadError::Model(FormatError::PayloadSize { expected, stated }));
        }
        self.field(
            stated
                .checked_add(CHECKSUM_LEN as u64)
                .ok_or(ReadError::TooLarge { announced: u64::MAX, limit: self.limit })?,
        )?;
        Ok(())
    }

    /// Reads the optional settings section after a model block, then checks the end.
    fn read_settings(mut self) -> Result<Vec<u8>, ReadError> {
        use rapid_core::format::{
            CHECKSUM_LEN, MAX_SETTINGS_LEN, SETTINGS_HEADER_LEN, SETTINGS_MAGIC, SETTINGS_VERSION,
        };
        use rapid_core::FormatError;
        let start = self.buf.len();
        let got = self.read_up_to(8)?;
        if got == 0 {
            return Ok(self.buf);
        }
        if self.buf[start..] != SETTINGS_MAGIC {
            return Err(ReadError::TrailingBytes { checkpoint: false, expected: start as u64 });
        }
        self.field((SETTINGS_HEADER_LEN - 8) as u64)?;
        let h = &self.buf[start..];
        let version = u16::from_le_bytes([h[8], h[9]]);
        if version == 0 || version > SETTINGS_VERSION {
            return Err(ReadError::Model(FormatError::BadSettings(
                "written by a newer or unknown version",
            )));
        }
        let len = u32::from_le_bytes(h[12..16].try_into().expect("4 bytes"));
        if len as usize > MAX_SETTINGS_LEN {
            return Err(ReadError::Model(FormatError::BadSettings("text longer than the limit")));
        }
        self.field(u64::from(len) + CHECKSUM_LEN as u64)?;
        self.end(false)
    }

    /// Reads a checkpoint after its magic, field by field as its layout announces
    /// ([`crate::checkpoint`]), then checks the end.
    fn read_checkpoint(mut self) -> Result<Vec<u8>, ReadError> {
        let version = self.u16()?;
        if version == 0 || version > crate::checkpoint::VERSION {
            return Err(ReadError::CheckpointVersion(version));
        }
        self.u16()?; // reserved
        let text = self.u32()?;
        self.field(u64::from(text))?;
        let model = self.u64()?;
        self.field(model)?;
        self.field(1)?; // optimiser
        let values = self.u64()?;
        self.field(values.saturating_mul(4))?;
        self.u64()?; // Adam step count
        let chains = self.u64()?;
        self.field(chains.saturating_mul(8))?;
        self.field(4 + 8 + 4 + 4)?; // epoch, updates, learning rate, CRC
        self.end(true)
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
