//! The `rapid` program as a user meets it: exit codes, error lines, JSON output, model files.

use std::path::Path;
use std::process::{Command, Output};

fn rapid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rapid")).args(args).output().expect("runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Bad input: exit code 2, one line on stderr, no model file left behind.
#[test]
fn bad_input_exits_2_with_one_line_and_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.rapid");
    let out_s = out.to_str().unwrap();
    let cases: &[&[&str]] = &[
        &["train", "--dataset", "mnist9"],
        &["train", "--method", "gibbs:1"],
        &["train", "--method", "cd:0"],
        &["train", "--method", "exact", "--projection", "sign"],
        &["train", "--optimizer", "rmsprop"],
        &["train", "--method", "pid-gibbs:0"],
        &["train", "--patterns", "0"],
        &["train", "--hidden", "0"],
        &["train", "--lr", "-0.1"],
        &["train", "--batch", "11"],
        &["train", "--batch", "0"],
        &["train", "--projection", "clamp:0"],
        &["train", "--momentum", "1.5"],
        &["train", "--epochs", "0"],
        &["--threads", "0", "train"],
    ];
    for args in cases {
        let mut a = args.to_vec();
        a.extend(["--out", out_s]);
        let o = rapid(&a);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        let first = err.lines().next().unwrap_or("");
        assert!(first.contains("error"), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?} printed to stdout");
        assert!(!out.exists(), "{args:?} left a model file");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "{args:?} left a temp file");
    }
    // Our own validation errors are exactly one line.
    let o = rapid(&["train", "--lr", "-0.1"]);
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("learning rate"));
    let o = rapid(&["train", "--batch", "11"]);
    assert!(stderr(&o).contains("larger than the training set"), "{}", stderr(&o));
}

#[test]
fn unwritable_out_fails_before_training() {
    let o = rapid(&["train", "--out", "/nonexistent-dir/x/m.rapid", "--epochs", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot write --out"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
}

#[test]
fn json_output_has_one_object_per_epoch_then_final() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.rapid");
    let run_to = |path: &Path| {
        rapid(&[
            "train",
            "--epochs",
            "3",
            "--hidden",
            "50",
            "--json",
            "--seed",
            "4",
            "--out",
            path.to_str().unwrap(),
        ])
    };
    let o = run_to(&out);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
    assert_eq!(lines.len(), 4);
    for (i, l) in lines[..3].iter().enumerate() {
        assert_eq!(l["epoch"], i as u64 + 1);
        assert!(l["seconds"].as_f64().unwrap() >= 0.0);
        for k in ["hd_train", "hd_test"] {
            let h = l[k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&h), "{k} = {h}");
        }
    }
    assert_eq!(lines[3]["final"], true);
    assert_eq!(lines[3]["hd_test"], lines[2]["hd_test"]);
    // The model file is valid and the same seed writes the same bytes.
    let model = rapid_harness::model::Model::decode(&std::fs::read(&out).unwrap()).unwrap();
    let rapid_harness::model::Model::Ra { dims, xi } = model else { panic!("an RA model") };
    assert_eq!((dims.visible, dims.hidden, dims.patterns), (16, 50, 8));
    assert!(xi.iter().all(|&x| x == 1.0 || x == -1.0), "sign projection at epoch end");
    let out2 = dir.path().join("m2.rapid");
    let o2 = run_to(&out2);
    assert!(o2.status.success());
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap());
    assert!(!Path::new(&dir.path().join(".m.rapid.tmp")).exists());
}

#[test]
fn human_output_is_a_table_and_help_explains_the_metric() {
    let o =
        rapid(&["train", "--epochs", "2", "--hidden", "40", "--dataset", "bas:4", "--batch", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("hd_test"), "{text}");
    assert!(text.contains("top row and left column"), "{text}");
    let h = rapid(&["train", "--help"]);
    let help = String::from_utf8(h.stdout).unwrap();
    for needle in ["bars4", "bas:N", "pid-gibbs:K", "left column", "--partial-batch", "--json"] {
        assert!(help.contains(needle), "help lacks {needle}");
    }
}

#[test]
fn eval_and_export_read_what_train_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m.rapid");
    let ms = m.to_str().unwrap();
    for (method, extra) in [("pid", &[][..]), ("cd:2", &["--biases"][..])] {
        let mut args = vec![
            "train", "--method", method, "--epochs", "2", "--hidden", "20", "--json", "--out", ms,
        ];
        args.extend(extra);
        assert!(rapid(&args).status.success(), "train {method}");
        let o = rapid(&["eval", "--model", ms, "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        for k in
            ["hd_train", "hd_test", "nll_train", "nll_test", "ground_state_energy", "gs_access"]
        {
            assert!(j[k].as_f64().is_some(), "eval lacks {k}: {j}");
        }
        let ex = dir.path().join(format!("export-{}", method.replace(':', "")));
        let o = rapid(&["export", "--model", ms, "--out", ex.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let w = std::fs::read(ex.join("W.npy")).unwrap();
        assert_eq!(&w[..6], b"\x93NUMPY");
        assert!(String::from_utf8_lossy(&w[..128]).contains("'shape': (16, 20)"));
        assert_eq!(ex.join("xi.npy").exists(), method == "pid");
        assert_eq!(ex.join("a.npy").exists(), method != "pid");
    }
    // Wrong dataset size, a corrupted file and a missing file are refused with exit code 2.
    let o = rapid(&["eval", "--model", ms, "--dataset", "bas:5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("V=16"), "{}", stderr(&o));
    let mut bytes = std::fs::read(&m).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    let bad = dir.path().join("bad.rapid");
    std::fs::write(&bad, &bytes).unwrap();
    let o = rapid(&["eval", "--model", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("checksum"), "{}", stderr(&o));
    let o =
        rapid(&["export", "--model", "/nonexistent.rapid", "--out", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn reproduce_writes_csv_figures_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("figs");
    let o = rapid(&[
        "reproduce",
        "all",
        "--seeds",
        "1",
        "--epochs",
        "2",
        "--hidden",
        "8",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8(o.stdout).unwrap();
    for m in ["RAPID", "CD-10", "PCD-10", "Exact"] {
        assert!(table.contains(m), "{table}");
    }
    for f in ["fig1.png", "fig2.svg", "fig3.png", "fig2.csv", "runs.csv", "summary.json"] {
        assert!(out.join(f).exists(), "{f}");
    }
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["methods"].as_array().unwrap().len(), 4);
    let o = rapid(&["reproduce", "fig4", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

/// A run stopped after epoch 3 and resumed to epoch 6 writes the same model bytes as an
/// uninterrupted 6-epoch run, for each optimiser and chain state.
#[test]
fn resumed_run_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    for (method, extra) in [
        ("pid", &["--projection", "sign:2", "--momentum", "0.5"][..]),
        ("pcd:2:16", &["--biases"][..]),
        ("exact", &[][..]),
    ] {
        let base = [
            "train",
            "--method",
            method,
            "--hidden",
            "12",
            "--seed",
            "3",
            "--eval-every",
            "0",
            "--json",
        ];
        let mut full: Vec<&str> = base.to_vec();
        let (full_out, part_ck, resumed_out) = (p("full.rapid"), p("part.ck"), p("resumed.rapid"));
        full.extend(extra);
        full.extend(["--epochs", "6", "--out", &full_out]);
        assert!(rapid(&full).status.success(), "{method}");
        let mut part: Vec<&str> = base.to_vec();
        part.extend(extra);
        part.extend(["--epochs", "3", "--checkpoint", &part_ck]);
        assert!(rapid(&part).status.success(), "{method}");
        let o = rapid(&[
            "train",
            "--resume",
            &part_ck,
            "--epochs",
            "6",
            "--out",
            &resumed_out,
            "--json",
        ]);
        assert!(o.status.success(), "{method}: {}", stderr(&o));
        let lines = String::from_utf8(o.stdout).unwrap();
        assert!(lines.starts_with("{\"epoch\":4,"), "{method}: resumed at epoch 4: {lines}");
        assert_eq!(
            std::fs::read(&full_out).unwrap(),
            std::fs::read(&resumed_out).unwrap(),
            "{method}"
        );
    }
    // Training settings other than the optimiser's cannot change on resume (the conflict
    // names both values).
    let o = rapid(&["train", "--resume", &p("part.ck"), "--hidden", "7"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--hidden 7 (the checkpoint has "), "{}", stderr(&o));
}

/// The process is killed while it writes checkpoints every epoch; the checkpoint on disk is
/// always complete, and resuming it ends bit-identical to an uninterrupted run.
#[test]
fn killed_run_resumes_bit_identically() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("run.ck");
    let args = [
        "train",
        "--method",
        "pcd:5:256",
        "--hidden",
        "100",
        "--epochs",
        "30",
        "--eval-every",
        "0",
        "--json",
    ];
    let full = dir.path().join("full.rapid");
    let mut a = args.to_vec();
    a.extend(["--out", full.to_str().unwrap()]);
    assert!(rapid(&a).status.success());
    let mut a = args.to_vec();
    a.extend(["--checkpoint", ck.to_str().unwrap(), "--checkpoint-every", "1"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_rapid"))
        .args(&a)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !ck.exists() && t0.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    std::thread::sleep(std::time::Duration::from_millis(30));
    child.kill().unwrap();
    child.wait().unwrap();
    let saved = rapid_harness::checkpoint::Checkpoint::decode(&std::fs::read(&ck).unwrap())
        .expect("the checkpoint on disk is complete");
    eprintln!("killed after epoch {}", saved.state.epoch);
    let resumed = dir.path().join("resumed.rapid");
    let o = rapid(&[
        "train",
        "--resume",
        ck.to_str().unwrap(),
        "--out",
        resumed.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&full).unwrap(), std::fs::read(&resumed).unwrap());
    // No temporary file is left behind by the killed writer except possibly its own.
    assert!(std::fs::read_dir(dir.path()).unwrap().count() <= 5);
}

/// Divergence (patterns growing without a projection until one passes ±1e6) stops training
/// with the epoch and batch, exit code 1, and the last good checkpoint untouched.
#[test]
fn nan_stops_training_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("run.ck");
    let out = dir.path().join("m.rapid");
    let o = rapid(&[
        "train",
        "--lr",
        "1",
        "--projection",
        "none",
        "--hidden",
        "50",
        "--epochs",
        "8",
        "--eval-every",
        "0",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("last good checkpoint"), "{err}");
    // "… at epoch E, batch B …": the checkpoint on disk is the one from epoch E − 1.
    let e: u32 =
        err.split("at epoch ").nth(1).and_then(|t| t.split(',').next()).unwrap().parse().unwrap();
    assert!(e >= 2 && err.contains(", batch "), "{err}");
    let saved =
        rapid_harness::checkpoint::Checkpoint::decode(&std::fs::read(&ck).unwrap()).unwrap();
    assert_eq!(saved.state.epoch, e - 1);
    assert!(saved.state.model.params().iter().all(|x| x.abs() <= rapid_harness::run::MAX_PARAM));
    assert!(!out.exists(), "no model file from a failed run");
}

/// `--threads` changes the speed, never the bits: PID and PCD with batches split into several
/// lanes write identical model files on 1 and 2 threads.
#[test]
fn model_files_do_not_depend_on_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    for method in ["pid", "pcd:2:256"] {
        let mut files = Vec::new();
        for threads in ["1", "2"] {
            let out = dir.path().join(format!("{method}-{threads}.rapid"));
            let o = rapid(&[
                "--threads",
                threads,
                "train",
                "--dataset",
                "bas:6",
                "--method",
                method,
                "--batch",
                "96",
                "--epochs",
                "3",
                "--eval-every",
                "0",
                "--json",
                "--out",
                out.to_str().unwrap(),
            ]);
            assert!(o.status.success(), "{method} on {threads}: {}", stderr(&o));
            files.push(std::fs::read(&out).unwrap());
        }
        assert_eq!(files[0], files[1], "{method}: 1 and 2 threads differ");
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The datasets' presets are named in the header; file data load, and their errors are one
/// line with exit 2.
#[test]
fn presets_and_file_data() {
    let o = rapid(&[
        "train",
        "--dataset",
        "mnist",
        "--epochs",
        "1",
        "--hidden",
        "50",
        "--patterns",
        "10",
        "--eval-every",
        "0",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let last: serde_json::Value = serde_json::from_str(stdout(&o).lines().last().unwrap()).unwrap();
    assert_eq!(last["dataset"], "mnist");
    assert_eq!(last["method"], "pid-gibbs:1", "the MNIST preset's method");
    assert_eq!(last["visible"], 784);
    let hd = last["hd_test"].as_f64().unwrap();
    assert!(hd > 0.0 && hd < 0.5, "{hd}");
    let o = rapid(&["train", "--dataset", "bas:5", "--epochs", "1", "--eval-every", "0"]);
    assert!(stdout(&o).starts_with("# bas:5 (preset bas: "), "{}", stdout(&o));
    assert!(stdout(&o).contains("K=40"), "{}", stdout(&o));

    let dir = tempfile::tempdir().unwrap();
    // Bars 4x4 as a {0, 1} uint8-like float array in a .npy file, trained on as a user's data.
    let mut img = Vec::new();
    for row in ["1000", "1100", "1110", "1011", "1101"] {
        for neg in [false, true] {
            for _ in 0..4 {
                img.extend(row.chars().map(|c| if (c == '1') != neg { 1.0f32 } else { 0.0 }));
            }
        }
    }
    let npy = dir.path().join("bars.npy");
    std::fs::write(&npy, rapid_harness::npy::encode_f32(&img, &[10, 16])).unwrap();
    let spec = format!("npy:{}", npy.display());
    let o = rapid(&[
        "train",
        "--dataset",
        &spec,
        "--shape",
        "4x4",
        "--method",
        "pid",
        "--hidden",
        "100",
        "--patterns",
        "8",
        "--batch",
        "3",
        "--lr",
        "0.02",
        "--epochs",
        "3",
        "--projection",
        "sign",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let bad = [
        vec!["train", "--dataset", "npy:/nonexistent/x.npy"],
        vec!["train", "--dataset", "bars4", "--binarize", "0.5"],
        vec!["train", "--dataset", &spec, "--shape", "3x3"],
        vec!["train", "--dataset", "idx:"],
    ];
    for args in bad {
        let o = rapid(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "{args:?}: {}", stderr(&o));
    }
}

/// `rapid sample` writes a PNG grid and an .npy of ±1 samples and judges BAS samples.
#[test]
fn sample_writes_grid_npy_and_bas_rates() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.rapid");
    let m = model.to_str().unwrap();
    let o = rapid(&[
        "train",
        "--dataset",
        "bas:4",
        "--epochs",
        "20",
        "--eval-every",
        "0",
        "--hidden",
        "200",
        "--out",
        m,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let png = dir.path().join("g.png");
    let npy = dir.path().join("s.npy");
    let o = rapid(&[
        "sample",
        "--model",
        m,
        "--dataset",
        "bas:4",
        "--start",
        "zero",
        "--chains",
        "30",
        "--steps",
        "20",
        "--out",
        png.to_str().unwrap(),
        "--npy",
        npy.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let valid = j["bas_valid"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&valid) && j["bas_novel"].as_f64().is_some());
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    let a = rapid_harness::npy::read(&npy).unwrap();
    assert_eq!(a.shape, [30, 16]);
    assert!(a.data.iter().all(|&x| x == 1.0 || x == -1.0));
    // The same seed gives the same samples.
    let npy2 = dir.path().join("s2.npy");
    rapid(&[
        "sample",
        "--model",
        m,
        "--dataset",
        "bas:4",
        "--start",
        "zero",
        "--chains",
        "30",
        "--steps",
        "20",
        "--npy",
        npy2.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&npy).unwrap(), std::fs::read(&npy2).unwrap());
    // The model file names its training data, so --start data needs no --dataset.
    let o = rapid(&["sample", "--model", m, "--start", "data", "--chains", "3", "--steps", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `rapid eval --ais` on an enumerable model: the AIS estimate is close to the exact log Z,
/// and both NLLs are reported.
#[test]
fn eval_ais_agrees_with_exact_on_bars() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.rapid");
    let m = model.to_str().unwrap();
    let o = rapid(&[
        "train",
        "--method",
        "cd:1",
        "--epochs",
        "30",
        "--hidden",
        "12",
        "--biases",
        "--eval-every",
        "0",
        "--out",
        m,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = rapid(&[
        "eval",
        "--model",
        m,
        "--ais",
        "--ais-betas",
        "2000",
        "--ais-runs",
        "50",
        "--raise-images",
        "4",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let exact = j["nll_test"].as_f64().unwrap();
    let ais = j["ais"]["nll_test"].as_f64().unwrap();
    let raise = j["ais"]["raise_nll_test"].as_f64().unwrap();
    assert!((exact - ais).abs() < 0.05, "exact {exact} vs AIS {ais}");
    assert!((exact - raise).abs() < 0.2, "exact {exact} vs RAISE {raise}");
    assert!((j["uniform_nll"].as_f64().unwrap() - 16.0 * std::f64::consts::LN_2).abs() < 1e-9);
}
