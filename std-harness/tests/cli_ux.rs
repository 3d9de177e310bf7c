//! What a new user meets: resuming with the same command line, model files that remember how
//! they were made, and one-line errors for whatever clap or rapid refuses.

use std::path::Path;
use std::process::{Command, Output};

fn rapid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rapid")).args(args).output().expect("runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_string()
}

/// `--resume` with the very command line of the first run continues it (bit-identical to an
/// uninterrupted run); evaluation options may change; a conflicting training option is
/// refused with both values named.
#[test]
fn resume_accepts_the_same_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (full, ck, resumed) =
        (path(dir.path(), "full"), path(dir.path(), "ck"), path(dir.path(), "res"));
    let base = ["train", "--dataset", "bas:4", "--patterns", "6", "--batch", "2", "--lr", "0.01"];
    let run = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend(extra);
        rapid(&a)
    };
    assert!(run(&["--epochs", "4", "--out", &full]).status.success());
    assert!(run(&["--epochs", "2", "--checkpoint", &ck]).status.success());
    let o = run(&["--epochs", "4", "--resume", &ck, "--out", &resumed, "--eval-repeats", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("resumed after epoch 2"), "{}", stdout(&o));
    // The same model; the settings sections differ in the evaluation draws (100 and 3).
    let block = |f: &str| {
        let b = std::fs::read(f).unwrap();
        let n = 36 + u64::from_le_bytes(b[24..32].try_into().unwrap()) as usize;
        b[..n].to_vec()
    };
    assert_eq!(block(&full), block(&resumed));

    let o = rapid(&[
        "train",
        "--dataset",
        "bas:4",
        "--batch",
        "3",
        "--seed",
        "9",
        "--epochs",
        "4",
        "--resume",
        &ck,
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--batch 3 (the checkpoint has 2)"), "{err}");
    assert!(err.contains("--seed 9 (the checkpoint has 0)"), "{err}");
    let o = rapid(&["train", "--resume", &ck, "--dataset", "bars4"]);
    assert!(stderr(&o).contains("--dataset bars4 (the checkpoint has bas:4)"), "{}", stderr(&o));
}

/// A model file says how it was made: `eval`, `sample` and `export` need no `--dataset`, and
/// take checkpoints too; a file without settings (as written before they were stored) still
/// loads, and `eval` then asks for `--dataset`.
#[test]
fn model_files_remember_their_settings() {
    let dir = tempfile::tempdir().unwrap();
    let (m, ck) = (path(dir.path(), "m.rapid"), path(dir.path(), "run.ck"));
    let o = rapid(&[
        "train",
        "--dataset",
        "bas:5",
        "--epochs",
        "3",
        "--seed",
        "4",
        "--out",
        &m,
        "--checkpoint",
        &ck,
        "--eval-every",
        "0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for file in [&m, &ck] {
        let o = rapid(&["eval", "--model", file, "--json", "--eval-repeats", "2"]);
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        assert_eq!(j["dataset"], "bas:5", "{j}");
        assert_eq!(j["trained"]["method"], "pid");
        assert_eq!(j["trained"]["seed"], 4);
        assert_eq!(j["trained"]["checkpoint"], file == &ck);
        let o = rapid(&["sample", "--model", file, "--chains", "4", "--steps", "2", "--json"]);
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        assert!(stdout(&o).contains("valid"), "BAS judged from the stored dataset: {}", stdout(&o));
        let out = path(dir.path(), "export");
        assert!(rapid(&["export", "--model", file, "--out", &out]).status.success());
    }
    // The same model with its settings section cut off: the bytes of a file from before.
    let bytes = std::fs::read(&m).unwrap();
    let payload = u64::from_le_bytes(bytes[24..32].try_into().unwrap()) as usize;
    assert_eq!(&bytes[36 + payload..36 + payload + 8], b"RAPIDSET");
    let bare = path(dir.path(), "bare.rapid");
    std::fs::write(&bare, &bytes[..36 + payload]).unwrap();
    let o = rapid(&["eval", "--model", &bare]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("give --dataset"), "{}", stderr(&o));
    let o = rapid(&["eval", "--model", &bare, "--dataset", "bas:5", "--eval-repeats", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("0.5 = guessing"), "{}", stdout(&o));
}

/// clap's own errors are one `rapid: error:` line with exit 2, negative counts say what is
/// wrong, `--max-enum` above 30 is refused.
#[test]
fn every_refusal_is_one_line_with_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["train", "--bogus"], "unexpected argument '--bogus'"),
        (&["train", "--epochs"], "a value is required for '--epochs"),
        (&["train", "--epochs", "-1"], "'-1' is negative"),
        (&["train", "--hidden", "-5"], "'-5' is negative"),
        (&["train", "--batch", "two"], "'two' is not a whole number"),
        (&["frobnicate"], "unrecognized subcommand"),
        (&["eval", "--model", "x.rapid", "--max-enum", "40"], "above the limit of 30"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let m = path(dir.path(), "x.rapid");
    assert!(rapid(&["train", "--epochs", "1", "--hidden", "8", "--out", &m]).status.success());
    for (args, want) in cases {
        let args: Vec<&str> =
            args.iter().map(|a| if *a == "x.rapid" { m.as_str() } else { a }).collect();
        let o = rapid(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("rapid: error: ") && err.contains(want), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    // Help and version still print normally.
    assert!(rapid(&["train", "--help"]).status.success());
    assert!(rapid(&["--version"]).status.success());
}

/// JSON floats are the shortest text that reads back as the f32 (`0.02`, not
/// `0.019999999552965164`).
#[test]
fn json_learning_rates_print_shortest() {
    let o = rapid(&["train", "--epochs", "1", "--hidden", "8", "--json"]);
    let first = stdout(&o).lines().next().unwrap().to_string();
    assert!(first.contains("\"lr\":0.02,"), "{first}");
}

/// `export` into a folder holding an earlier export of another kind of model leaves only this
/// model's files.
#[test]
fn export_removes_files_of_an_earlier_export() {
    let dir = tempfile::tempdir().unwrap();
    let (ra, dense, out) =
        (path(dir.path(), "ra.rapid"), path(dir.path(), "dense.rapid"), path(dir.path(), "npy"));
    assert!(rapid(&["train", "--epochs", "1", "--hidden", "8", "--out", &ra]).status.success());
    let o = rapid(&[
        "train", "--method", "cd:1", "--biases", "--epochs", "1", "--hidden", "8", "--out", &dense,
    ]);
    assert!(o.status.success());
    assert!(rapid(&["export", "--model", &dense, "--out", &out]).status.success());
    let names = |d: &str| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&out), ["W.npy", "a.npy", "b.npy"]);
    let o = rapid(&["export", "--model", &ra, "--out", &out]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("removed"), "{}", stderr(&o));
    assert_eq!(names(&out), ["W.npy", "xi.npy"]);
}
