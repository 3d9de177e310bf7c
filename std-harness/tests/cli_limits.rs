//! What the program does with inputs that would crash, exhaust or silently corrupt it: a
//! closed stdout, negative numbers, runaway training, models too large to evaluate, work
//! that could not finish, memory it does not have.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use rapid_core::Dims;
use rapid_harness::model::Model;

use common::{rapid, stderr, Reap};

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_string()
}

/// An RA model file with V = 16 whose patterns are all `x` (for Bars 4×4).
fn ra_file(dir: &Path, name: &str, hidden: usize, patterns: usize, x: f32) -> String {
    let dims = Dims::new(16, hidden, patterns);
    let model = Model::Ra { dims, xi: vec![x; dims.xi_len()] };
    let p = path(dir, name);
    std::fs::write(&p, model.encode()).unwrap();
    p
}

/// A closed stdout (`rapid train … | head -1`) drops the rest of the output but not the work:
/// the model is written, equal to an undisturbed run's, and the exit is 0 with one note. A
/// full stdout (`> /dev/full`) also finishes the work, and exits 1.
#[test]
fn a_closed_stdout_does_not_lose_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let (piped, plain) = (path(dir.path(), "piped"), path(dir.path(), "plain"));
    let args = ["train", "--dataset", "bars4", "--epochs", "20", "--log-every", "1"];
    let o = rapid(&[&args[..], &["--out", &plain]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let mut child = Command::new(env!("CARGO_BIN_EXE_rapid"))
        .args([&args[..], &["--out", &piped]].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the program writes its first line.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("stdout was closed (broken pipe)"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&piped).unwrap(), std::fs::read(&plain).unwrap());

    if Path::new("/dev/full").exists() {
        let full = path(dir.path(), "full");
        let o = Command::new(env!("CARGO_BIN_EXE_rapid"))
            .args([&args[..], &["--out", &full]].concat())
            .stdout(std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains("writing the results to stdout failed"), "{}", stderr(&o));
        assert_eq!(std::fs::read(&full).unwrap(), std::fs::read(&plain).unwrap());
    }
}

/// Negative numbers reach the option's own check, which says what is wrong.
#[test]
fn negative_numbers_meet_the_range_checks() {
    for (args, says) in [
        (&["train", "--lr", "-inf"][..], "learning rate must be finite and positive, got -inf"),
        (&["train", "--momentum", "-0.5"], "momentum must be in [0, 1), got -0.5"),
        (&["train", "--hidden", "-1"], "'-1' is negative"),
        (&["--threads", "-2", "train"], "'-2' is negative"),
        (&["eval", "--model", "m", "--eval-repeats", "-3"], "'-3' is negative"),
    ] {
        let o = rapid(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(err.contains(says) && err.lines().count() == 1, "{args:?}: {err}");
    }
}

/// A run whose parameters pass ±1e6 has diverged: it stops (exit 1) before any checkpoint or
/// model is written from that state; the last good checkpoint resumes with a lower --lr,
/// which the header names.
#[test]
fn runaway_training_stops_and_resumes_with_a_new_learning_rate() {
    let dir = tempfile::tempdir().unwrap();
    let (ck, out) = (path(dir.path(), "ck"), path(dir.path(), "out"));
    let base = ["train", "--dataset", "bars4", "--method", "cd:1", "--optimizer", "sgd"];
    let o = rapid(&[&base[..], &["--lr", "0.02", "--epochs", "5", "--checkpoint", &ck]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let good = std::fs::read(&ck).unwrap();
    // Finite but runaway: |w| passes 1e6 long before it overflows.
    let o = rapid(&[
        "train",
        "--resume",
        &ck,
        "--epochs",
        "10",
        "--lr",
        "1e7",
        "--checkpoint",
        &ck,
        "--out",
        &out,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("training diverged at epoch 6, batch 1: a parameter reached"), "{err}");
    assert!(err.contains("beyond the bound 1e6") && err.contains("last good checkpoint"), "{err}");
    assert_eq!(std::fs::read(&ck).unwrap(), good, "the checkpoint is the good one");
    assert!(!Path::new(&out).exists());
    let o = rapid(&[
        "train",
        "--resume",
        &ck,
        "--epochs",
        "10",
        "--lr",
        "0.01",
        "--checkpoint",
        &ck,
        "--out",
        &out,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("resumed after epoch 5 with --lr 0.01 (was 0.02)"), "{text}");
    let o = rapid(&["eval", "--model", &out, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The resumed run's settings are the new ones: the same command line resumes it again.
    let o = rapid(&["train", "--resume", &ck, "--epochs", "10", "--lr", "0.01"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("already has all 10 epochs"), "{}", stderr(&o));

    // Overflow on the first update (f32 infinity) is caught the same way.
    let o = rapid(&[&base[..], &["--lr", "1e30", "--epochs", "3", "--out", &out]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("training diverged at epoch 1, batch 1"), "{}", stderr(&o));
}

/// Finite parameters so large that the f32 sums overflow are refused; no NaN is printed.
#[test]
fn eval_refuses_models_it_cannot_compute() {
    let dir = tempfile::tempdir().unwrap();
    for x in [f32::MAX, -1e20] {
        let m = ra_file(dir.path(), "big", 16, 4, x);
        for json in [false, true] {
            let mut args = vec!["eval", "--model", &m, "--dataset", "bars4"];
            if json {
                args.push("--json");
            }
            let o = rapid(&args);
            assert_eq!(o.status.code(), Some(1), "{x}: {}", stderr(&o));
            assert!(stderr(&o).contains("beyond what f32 arithmetic holds"), "{}", stderr(&o));
            assert!(o.stdout.is_empty(), "{x}: nothing printed");
        }
    }
    // Large but computable: every number printed is finite.
    let m = ra_file(dir.path(), "ok", 16, 4, 1e3);
    let o = rapid(&["eval", "--model", &m, "--dataset", "bars4", "--eval-repeats", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("NaN"));
}

/// Work that could not finish is refused or skipped before it starts, with the reason and the
/// option that changes it.
#[test]
fn work_is_bounded_by_its_cost() {
    let dir = tempfile::tempdir().unwrap();
    // 256 KiB of patterns, 2^16 · 65 536 unit updates to enumerate: skipped, with the reason.
    let m = ra_file(dir.path(), "wide", 65_536, 1, 1.0);
    let o = rapid(&["eval", "--model", &m, "--dataset", "bars4", "--eval-repeats", "1", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let why = j["exact_skipped"].as_str().unwrap();
    assert!(why.contains("2^16 states x 65536 units") && why.contains("--max-enum-work"), "{why}");
    assert!(j["nll_test"].is_null());
    // The same limit stops training that would enumerate every update.
    let o = rapid(&["train", "--method", "exact", "--hidden", "70000"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--max-enum-work"), "{}", stderr(&o));
    let o = rapid(&["--max-enum-work", "1000", "train", "--track", "nll", "--epochs", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("above the limit of 1.00e3"), "{}", stderr(&o));
    for (args, says) in [
        (&["train", "--method", "cd:4294967296"][..], ""),
        (&["train", "--method", "cd:2000000"], "2000000 Gibbs steps per update is above the limit"),
        (&["train", "--eval-repeats", "4294967296"], "above the limit of 1000000"),
        (&["eval", "--model", "m", "--eval-repeats", "4294967296"], "--eval-repeats 4294967296"),
        (&["sample", "--model", "m", "--steps", "99999999"], "--steps 99999999 is above"),
        (&["--threads", "100000", "train"], "--threads 100000 is above the limit of 1024"),
    ] {
        let o = rapid(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says) && stderr(&o).lines().count() == 1, "{args:?}");
    }
}

/// Memory is estimated before it is allocated, per-lane buffers included, against the
/// budget; beyond it the run is refused in one line.
#[test]
fn memory_beyond_the_budget_is_refused_up_front() {
    let o = rapid(&["--max-memory", "1G", "train", "--hidden", "100000000"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("more than the memory budget of 1.0 GiB (--max-memory"), "{err}");
    // The default budget is a share of the machine's memory: 10^10 hidden units need
    // terabytes.
    let o = rapid(&["train", "--hidden", "10000000000"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("more than the memory budget"), "{}", stderr(&o));
    // What the trainer itself allocates is counted (per-lane gradients included): a budget
    // that holds the model but not its lanes refuses.
    let big =
        ["train", "--dataset", "bas:8", "--method", "cd:1", "--hidden", "200000", "--batch", "256"];
    let o = rapid(&[&["--max-memory", "300M"], &big[..]].concat());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("training needs about"), "{}", stderr(&o));
    // Sampling counts its chains: a million chains of 2^21 units is terabytes.
    let dir = tempfile::tempdir().unwrap();
    let huge = Dims::new(1 << 20, 1 << 20, 1);
    let m = path(dir.path(), "huge.rapid");
    std::fs::write(&m, Model::Ra { dims: huge, xi: vec![1.0; huge.xi_len()] }.encode()).unwrap();
    let o = rapid(&["sample", "--model", &m, "--chains", "1000000", "--steps", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("sampling needs about"), "{}", stderr(&o));
    for bad in ["0", "-1G", "12Q"] {
        let o = rapid(&["--max-memory", bad, "train"]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
    }
}

/// `export` streams W in pieces (memory for a piece, not for V×H; the same bytes as W formed
/// at once), checks the folder's free space first, and `--no-w` exports the patterns only.
#[test]
fn export_streams_w_and_checks_the_free_space() {
    let dir = tempfile::tempdir().unwrap();
    let out = path(dir.path(), "exp");
    // V = 16, H = 300 000: W is 18 MiB, written in pieces of 4 MiB.
    let dims = Dims::new(16, 300_000, 3);
    let xi: Vec<f32> = (0..dims.xi_len()).map(|i| ((i * 7919 % 13) as f32 - 6.0) / 5.0).collect();
    let model = Model::Ra { dims, xi };
    let m = path(dir.path(), "m.rapid");
    std::fs::write(&m, model.encode()).unwrap();
    let o = rapid(&["export", "--model", &m, "--out", &out]);
    assert!(o.status.success(), "{}", stderr(&o));
    let w = rapid_harness::npy::read(&Path::new(&out).join("W.npy")).unwrap();
    assert_eq!(w.shape, vec![16, 300_000]);
    assert_eq!(w.data, model.view().weights(), "the bits of W formed at once");
    // 16 TiB of W from 20 MiB of patterns: refused before writing, with the way out.
    let huge = Dims::new(1 << 20, 1 << 22, 1);
    let big = Model::Ra { dims: huge, xi: vec![1.0; huge.xi_len()] };
    let b = path(dir.path(), "big.rapid");
    std::fs::write(&b, big.encode()).unwrap();
    drop(big);
    let o = rapid(&["export", "--model", &b, "--out", &out]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("would take 16.0 TiB") && stderr(&o).contains("--no-w"));
    let o = rapid(&["export", "--model", &b, "--out", &out, "--no-w"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["xi.npy"], "the earlier W.npy is not this model's: removed");
}

/// Two runs writing one file: the second stops at once, naming the first.
#[test]
fn a_second_run_on_the_same_files_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = path(dir.path(), "m.rapid");
    let mut first = Reap(
        Command::new(env!("CARGO_BIN_EXE_rapid"))
            .args(["train", "--dataset", "bars4", "--epochs", "1000000", "--out", &m])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let lock = dir.path().join(".m.rapid.lock");
    let t0 = std::time::Instant::now();
    while !lock.exists() && t0.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for flag in ["--out", "--checkpoint"] {
        let o = rapid(&["train", "--epochs", "1", flag, &m]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let want =
            format!("{flag}: {m} is being written by another rapid process (pid {})", first.0.id());
        assert!(stderr(&o).contains(&want), "{}", stderr(&o));
    }
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    // The killed run's lock is free: the next run takes it over.
    let o = rapid(&["train", "--epochs", "1", "--out", &m, "--checkpoint", &m]);
    assert!(o.status.success(), "{}", stderr(&o));
}
