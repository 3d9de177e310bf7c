//! Files under faults: failed and killed writes leave no debris and the old file intact,
//! destinations are locked against a second writer, and model files are read no further
//! than their headers say.

mod common;

use std::fs::{self, File};
use std::io::{self, Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rapid_harness::checkpoint::read_model_or_checkpoint;
use rapid_harness::model::Model;
use rapid_harness::modelio::{
    live_temporaries, lock_target, read_model_or_checkpoint_bytes, read_model_or_checkpoint_from,
    AtomicFile, CommitSteps, LockError, ReadError,
};

use common::{rapid, Reap};

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Waits until `f` holds, for at most `secs` seconds.
fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Commit steps that fail where told: the write after `write_fails_at` bytes (the bytes
/// before it do reach the file, as on a disk that fills up), the sync, or the rename.
#[derive(Default)]
struct Faults {
    write_fails_at: Option<usize>,
    sync_fails: bool,
    rename_fails: bool,
    panics_in_write: bool,
}

impl CommitSteps for Faults {
    fn write(&mut self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        assert!(!self.panics_in_write, "injected panic");
        match self.write_fails_at {
            Some(n) if n < bytes.len() => {
                file.write_all(&bytes[..n])?;
                Err(io::Error::new(io::ErrorKind::StorageFull, format!("injected at byte {n}")))
            }
            _ => file.write_all(bytes),
        }
    }

    fn sync(&mut self, file: &File) -> io::Result<()> {
        if self.sync_fails {
            return Err(io::Error::other("injected sync failure"));
        }
        file.sync_all()
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        if self.rename_fails {
            return Err(io::Error::other("injected rename failure"));
        }
        fs::rename(from, to)
    }
}

/// A write that fails at any byte, at the sync or at the rename leaves the old file as it
/// was and no temporary file, on disk or in the registry.
#[test]
fn a_failed_commit_leaves_the_old_file_and_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.rapid");
    let old: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    AtomicFile::prepare(&path).unwrap().commit(&old).unwrap();
    let new = vec![7u8; 10_000];
    let mut cases: Vec<(String, Faults)> = [0, 1, 7, 4095, 4096, 5000, 9999]
        .into_iter()
        .map(|n| {
            (
                format!("write fails at byte {n}"),
                Faults { write_fails_at: Some(n), ..Faults::default() },
            )
        })
        .collect();
    cases.push(("sync fails".into(), Faults { sync_fails: true, ..Faults::default() }));
    cases.push(("rename fails".into(), Faults { rename_fails: true, ..Faults::default() }));
    for (what, mut faults) in cases {
        let f = AtomicFile::prepare(&path).unwrap();
        let tmp = f.temporary().to_path_buf();
        assert!(tmp.exists(), "{what}");
        let e = f.commit_with(&new, &mut faults).unwrap_err();
        assert!(e.to_string().contains("injected"), "{what}: {e}");
        assert_eq!(names(dir.path()), ["m.rapid"], "{what}: debris left");
        assert!(!live_temporaries().contains(&tmp), "{what}: still registered");
        assert_eq!(fs::read(&path).unwrap(), old, "{what}: old file changed");
    }
    // A commit that panics midway also removes its temporary (the panic unwinds through it).
    let f = AtomicFile::prepare(&path).unwrap();
    let tmp = f.temporary().to_path_buf();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        f.commit_with(&new, &mut Faults { panics_in_write: true, ..Faults::default() })
    }));
    assert!(panicked.is_err());
    assert!(!tmp.exists() && !live_temporaries().contains(&tmp));
    assert_eq!(fs::read(&path).unwrap(), old);
    // And with no fault the new bytes arrive.
    AtomicFile::prepare(&path).unwrap().commit_with(&new, &mut Faults::default()).unwrap();
    assert_eq!((fs::read(&path).unwrap(), names(dir.path())), (new, vec!["m.rapid".into()]));
}

/// A real full disk, when the caller provides a small file system (for example
/// `mount -t tmpfs -o size=64k tmpfs DIR; RAPID_TEST_SMALL_FS=DIR cargo test ...`): the
/// write fails with the disk's error and leaves only the old file.
#[test]
fn a_full_disk_leaves_the_old_file_and_no_temporary() {
    let Some(root) = std::env::var_os("RAPID_TEST_SMALL_FS") else {
        eprintln!("skipped: set RAPID_TEST_SMALL_FS to a small empty file system to run it");
        return;
    };
    let dir = tempfile::tempdir_in(root).unwrap();
    let path = dir.path().join("m.rapid");
    AtomicFile::prepare(&path).unwrap().commit(b"old").unwrap();
    let e = AtomicFile::prepare(&path).unwrap().commit(&vec![1u8; 64 << 20]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{e}");
    assert_eq!(names(dir.path()), ["m.rapid"]);
    assert_eq!(fs::read(&path).unwrap(), b"old");
}

/// Two writers of one target each have a temporary file: committing one does not take the
/// other's away (they used to share `.NAME.tmp-PID`, and the second commit failed).
#[test]
fn two_writers_of_one_target_have_their_own_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.rapid");
    let a = AtomicFile::prepare(&path).unwrap();
    let b = AtomicFile::prepare(&path).unwrap();
    assert_ne!(a.temporary(), b.temporary());
    drop(AtomicFile::prepare(&path).unwrap());
    b.commit(b"b").unwrap();
    a.commit(b"a").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"a");
    assert_eq!(names(dir.path()), ["m.rapid"]);
}

/// `rapid train` given one file as --out and --checkpoint ends with the model written (it
/// used to fail with "No such file or directory" at the end).
#[test]
fn train_with_out_equal_to_checkpoint_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.rapid");
    let p = path.to_str().unwrap();
    let o = rapid(&["train", "--dataset", "bars4", "--epochs", "3", "--out", p, "--checkpoint", p]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(names(dir.path()), ["x.rapid"]);
    let (_, made) = read_model_or_checkpoint(&fs::read(&path).unwrap()).unwrap();
    assert!(!made.unwrap().checkpoint, "the model file is written last");
}

/// A writer killed with SIGKILL leaves its temporary file; the next writer of that target
/// removes it, but never the temporary file of a writer that is still running.
#[cfg(target_os = "linux")]
#[test]
fn temporaries_of_killed_writers_are_removed_by_the_next_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.rapid");
    // The files besides the run's lock file (`.m.rapid.lock`, which a killed run leaves for
    // the next run to take over).
    let names = |d: &Path| -> Vec<String> {
        names(d).into_iter().filter(|n| n != ".m.rapid.lock").collect()
    };
    let mut child = Reap(
        Command::new(env!("CARGO_BIN_EXE_rapid"))
            .args(["train", "--dataset", "bars4", "--epochs", "100000000", "--out"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let child_tmp = format!(".m.rapid.tmp-{}-0", child.0.id());
    assert!(wait_for(30, || names(dir.path()).contains(&child_tmp)), "{:?}", names(dir.path()));
    // The child is running: its temporary file stays.
    drop(AtomicFile::prepare(&path).unwrap());
    assert_eq!(names(dir.path()), [child_tmp.as_str()]);
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert_eq!(names(dir.path()), [child_tmp.as_str()], "debris of the killed writer");
    // More debris: a file of the old naming (no number), and one of this process's id that
    // no writer of this process has (a process that had the same id before).
    let dead = child.0.id();
    let own = std::process::id();
    for name in [format!(".m.rapid.tmp-{dead}"), format!(".m.rapid.tmp-{own}-999999")] {
        fs::write(dir.path().join(name), b"partial").unwrap();
    }
    // Kept: another target's debris, a name that is not a temporary's, and a file whose
    // lock is held (a writer in another PID namespace).
    let kept =
        [format!(".n.rapid.tmp-{dead}"), format!(".m.rapid.tmp-{dead}x"), "m.rapid.tmp-1".into()];
    for name in &kept {
        fs::write(dir.path().join(name), b"").unwrap();
    }
    // A FIFO with a temporary's name is not opened (that would wait for a writer).
    let fifo = format!(".m.rapid.tmp-{dead}-6");
    assert!(Command::new("mkfifo").arg(dir.path().join(&fifo)).status().unwrap().success());
    let held_name = format!(".m.rapid.tmp-{dead}-5");
    let held = File::create(dir.path().join(&held_name)).unwrap();
    held.try_lock().unwrap();
    let f = AtomicFile::prepare(&path).unwrap();
    let mine = f.temporary().file_name().unwrap().to_string_lossy().into_owned();
    let mut expect: Vec<String> = kept.iter().cloned().chain([held_name, fifo, mine]).collect();
    expect.sort();
    assert_eq!(names(dir.path()), expect);
    f.commit(b"x").unwrap();
}

/// When run with `RAPID_IO_FAULTS_HOLD_LOCK=PATH`, takes the lock of PATH and holds it until
/// killed: the other process of [`a_lock_held_by_another_process_names_it`].
#[test]
fn lock_holder_child() {
    let Some(path) = std::env::var_os("RAPID_IO_FAULTS_HOLD_LOCK") else { return };
    let _lock = lock_target(Path::new(&path)).unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[cfg(unix)]
#[test]
fn a_lock_held_by_another_process_names_it_and_dies_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.rapid");
    let lock_file = dir.path().join(".m.rapid.lock");
    let mut child = Reap(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "lock_holder_child", "--test-threads", "1"])
            .env("RAPID_IO_FAULTS_HOLD_LOCK", &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    let holds = || fs::read_to_string(&lock_file).is_ok_and(|t| t == format!("{pid}\n"));
    assert!(wait_for(30, holds), "the child did not take the lock");
    let e = lock_target(&path).unwrap_err();
    assert!(matches!(e, LockError::Held { pid: Some(p), .. } if p == pid), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "{} is being written by another rapid process (pid {pid}); wait for it or choose \
             another file",
            path.display()
        )
    );
    // Killed outright: the lock is released with the process; its lock file is taken over.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let lock = lock_target(&path).unwrap();
    assert_eq!(fs::read_to_string(&lock_file).unwrap(), format!("{}\n", std::process::id()));
    drop(lock);
    assert!(names(dir.path()).is_empty());
}

/// The files of a short training run: a model file with settings, the same model bare, and
/// a checkpoint.
struct Files {
    _dir: tempfile::TempDir,
    with_settings: PathBuf,
    bare: PathBuf,
    checkpoint: PathBuf,
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let with_settings = dir.path().join("m.rapid");
    let checkpoint = dir.path().join("ck.rapid");
    let o = rapid(&[
        "train",
        "--dataset",
        "bars4",
        "--epochs",
        "2",
        "--out",
        with_settings.to_str().unwrap(),
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (model, text) = Model::decode_with_settings(&fs::read(&with_settings).unwrap()).unwrap();
    assert!(text.is_some());
    let bare = dir.path().join("bare.rapid");
    fs::write(&bare, model.encode()).unwrap();
    Files { _dir: dir, with_settings, bare, checkpoint }
}

/// A reader that counts the bytes it hands out.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

const LIMIT: u64 = 1 << 30;

#[test]
fn every_kind_of_file_is_read_exactly() {
    let f = files();
    for path in [&f.bare, &f.with_settings, &f.checkpoint] {
        let want = fs::read(path).unwrap();
        assert_eq!(read_model_or_checkpoint_bytes(path, LIMIT).unwrap(), want, "{path:?}");
        let mut r = Counting { inner: Cursor::new(want.clone()), count: 0 };
        assert_eq!(read_model_or_checkpoint_from(&mut r, LIMIT).unwrap(), want);
        assert_eq!(r.count, want.len() as u64);
        // The exact length is within a limit of the exact length.
        read_model_or_checkpoint_bytes(path, want.len() as u64).unwrap();
        let e = read_model_or_checkpoint_bytes(path, want.len() as u64 - 1).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { .. }), "{e}");
        read_model_or_checkpoint(&want).unwrap();
    }
}

/// A model followed by a long tail: refused as trailing bytes after reading at most a few
/// bytes of the tail (the whole tail used to be read before the error).
#[test]
fn a_tail_after_the_model_is_refused_without_reading_it() {
    let f = files();
    for (path, what) in
        [(&f.bare, "model"), (&f.with_settings, "model"), (&f.checkpoint, "checkpoint")]
    {
        let bytes = fs::read(path).unwrap();
        let tail = io::repeat(0x5A).take(1 << 40);
        let mut r = Counting { inner: Cursor::new(bytes.clone()).chain(tail), count: 0 };
        let e = read_model_or_checkpoint_from(&mut r, u64::MAX).unwrap_err();
        assert!(matches!(e, ReadError::TrailingBytes { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!(
                "trailing bytes after the {what} (the file is longer than its header says"
            )),
            "{msg}"
        );
        assert!(r.count <= bytes.len() as u64 + 8, "read {} bytes", r.count);
    }
    // Through the program: one line naming the file and the problem.
    let dir = tempfile::tempdir().unwrap();
    let long = dir.path().join("long.rapid");
    let mut bytes = fs::read(&f.with_settings).unwrap();
    bytes.extend(std::iter::repeat_n(0u8, 1 << 20));
    fs::write(&long, &bytes).unwrap();
    let o = rapid(&[
        "export",
        "--model",
        long.to_str().unwrap(),
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("trailing bytes after the model (the file is longer than its header says"),
        "{err}"
    );
}

/// Headers announcing 2^40 bytes (a model of 2^19 × 2^19, a checkpoint's embedded model)
/// are refused by the limit before anything is allocated; without a limit, an allocation
/// that fails is an error, not an abort.
#[test]
fn a_huge_announced_length_is_refused_before_allocating() {
    let f = files();
    let bare = fs::read(&f.bare).unwrap();
    let mut huge = bare[..32].to_vec();
    huge[10..12].copy_from_slice(&2u16.to_le_bytes()); // dense, no biases
    huge[12..16].copy_from_slice(&(1u32 << 19).to_le_bytes());
    huge[16..20].copy_from_slice(&(1u32 << 19).to_le_bytes());
    huge[20..24].copy_from_slice(&0u32.to_le_bytes());
    huge[24..32].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let e = read_model_or_checkpoint_from(Cursor::new(&huge), LIMIT).unwrap_err();
    assert!(
        matches!(e, ReadError::TooLarge { announced, limit: LIMIT } if announced == (1 << 40) + 36),
        "{e}"
    );
    assert!(e.to_string().contains(&format!("{}", (1u64 << 40) + 36)), "{e}");
    assert!(e.to_string().contains(&format!("limit of {LIMIT} bytes")), "{e}");
    // A payload length that does not match the dimensions is refused as such.
    huge[24..32].copy_from_slice(&(1u64 << 41).to_le_bytes());
    let e = read_model_or_checkpoint_from(Cursor::new(&huge), LIMIT).unwrap_err();
    assert!(matches!(e, ReadError::Model(rapid_core::FormatError::PayloadSize { .. })), "{e}");

    // The checkpoint's model length is the first u64 after the settings text.
    let ck = fs::read(&f.checkpoint).unwrap();
    let text = u32::from_le_bytes(ck[12..16].try_into().unwrap()) as usize;
    let at = 16 + text;
    let with_len = |len: u64| {
        let mut b = ck.clone();
        b[at..at + 8].copy_from_slice(&len.to_le_bytes());
        b
    };
    let e = read_model_or_checkpoint_from(Cursor::new(with_len(1 << 40)), LIMIT).unwrap_err();
    assert!(matches!(e, ReadError::TooLarge { .. }), "{e}");
    let e = read_model_or_checkpoint_from(Cursor::new(with_len(1 << 62)), u64::MAX).unwrap_err();
    assert!(matches!(e, ReadError::OutOfMemory { .. }), "{e}");
    let e =
        read_model_or_checkpoint_from(Cursor::new(with_len(u64::MAX - 8)), u64::MAX).unwrap_err();
    assert!(matches!(e, ReadError::TooLarge { .. }), "{e}");
    // From a file, a length beyond the file's size is a truncation, found before allocating.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ck.rapid");
    fs::write(&p, with_len(1 << 62)).unwrap();
    let e = read_model_or_checkpoint_bytes(&p, u64::MAX).unwrap_err();
    assert!(matches!(e, ReadError::Truncated { .. }), "{e}");
}

#[cfg(unix)]
#[test]
fn dev_zero_is_refused_at_once() {
    let t = Instant::now();
    let e = read_model_or_checkpoint_bytes(Path::new("/dev/zero"), u64::MAX).unwrap_err();
    assert!(matches!(e, ReadError::BadMagic), "{e}");
    assert!(e.to_string().contains("bad magic"), "{e}");
    let mut r = Counting { inner: io::repeat(0), count: 0 };
    assert!(matches!(read_model_or_checkpoint_from(&mut r, u64::MAX), Err(ReadError::BadMagic)));
    assert_eq!(r.count, 8);
    assert!(t.elapsed() < Duration::from_secs(5));
    let e = read_model_or_checkpoint_bytes(Path::new("/nonexistent/m.rapid"), LIMIT).unwrap_err();
    assert!(matches!(e, ReadError::Io(_)), "{e}");
}

/// Every cut of every kind of file is an error; past the magic, a truncation.
#[test]
fn truncated_files_are_reported_truncated() {
    let f = files();
    let dir = tempfile::tempdir().unwrap();
    let cut_path = dir.path().join("cut.rapid");
    let model_len = fs::read(&f.bare).unwrap().len();
    for path in [&f.bare, &f.with_settings, &f.checkpoint] {
        let bytes = fs::read(path).unwrap();
        let n = bytes.len();
        let cuts = (0..64).chain((64..n).step_by(997)).chain(n - 64..n);
        for cut in cuts {
            let part = &bytes[..cut];
            if path == &f.with_settings && cut == model_len {
                // A bare model block.
                assert_eq!(read_model_or_checkpoint_from(part, LIMIT).unwrap(), part);
                continue;
            }
            // A few bytes of a settings section's magic are just trailing bytes.
            let in_magic = path == &f.with_settings && (model_len..model_len + 8).contains(&cut);
            fs::write(&cut_path, part).unwrap();
            for e in [
                read_model_or_checkpoint_from(part, LIMIT).unwrap_err(),
                read_model_or_checkpoint_bytes(&cut_path, LIMIT).unwrap_err(),
            ] {
                match e {
                    ReadError::Truncated { found, .. } => {
                        assert_eq!(found, cut as u64, "{path:?} cut at {cut}");
                        assert!(e.to_string().starts_with("truncated"), "{e}");
                    }
                    ReadError::TrailingBytes { .. } if in_magic => {}
                    e => panic!("{path:?} cut at {cut}: {e}"),
                }
            }
        }
    }
}
