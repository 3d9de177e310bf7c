//! `rapid bench` as a user meets it: JSON rows, output files, argument errors. These check
//! what is reported, never how fast anything is.

use std::process::{Command, Output};

fn rapid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rapid")).args(args).output().expect("runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn positive_finite(v: &serde_json::Value) -> bool {
    v.as_f64().is_some_and(|x| x.is_finite() && x > 0.0)
}

#[test]
fn paper_json_rows_have_every_key() {
    let o = rapid(&[
        "bench",
        "paper",
        "--setups",
        "bars4",
        "--methods",
        "pid,cd:1",
        "--repeats",
        "2",
        "--warmup",
        "0",
        "--json",
        "--seed",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("bars4 pid"), "progress goes to stderr: {}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let rows: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
    assert_eq!(rows.len(), 2, "{text}");
    for (row, method, batches, batch) in [(&rows[0], "pid", 4, 3), (&rows[1], "cd:1", 10, 1)] {
        assert_eq!(row["setup"], "bars4");
        assert_eq!(row["method"], method);
        assert!(positive_finite(&row["seconds_per_epoch"]), "{row}");
        assert!(positive_finite(&row["seconds_per_batch"]), "{row}");
        let (epoch, per_batch) = (
            row["seconds_per_epoch"].as_f64().unwrap(),
            row["seconds_per_batch"].as_f64().unwrap(),
        );
        assert!((per_batch * f64::from(batches) - epoch).abs() <= 1e-9 * epoch, "{row}");
        assert_eq!(row["batches_per_epoch"], batches);
        assert_eq!(row["batch"], batch);
        assert_eq!(row["repeats"], 2);
        assert_eq!(row["seconds"].as_array().unwrap().len(), 2);
        assert_eq!((row["visible"].as_u64(), row["hidden"].as_u64()), (Some(16), Some(1000)));
        let isa = row["isa"].as_str().unwrap();
        assert!(["scalar", "avx2", "avx512"].contains(&isa), "{isa}");
        assert!(row["data"].as_str().unwrap().contains("Bars"));
    }
    assert_eq!(rows[0]["patterns"], 8);
    assert!(rows[1]["patterns"].is_null(), "dense models have no patterns");
}

#[test]
fn paper_table_names_isa_and_the_random_data() {
    let o = rapid(&[
        "bench",
        "paper",
        "--setups",
        "bars4",
        "--methods",
        "pid",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--isa",
        "scalar",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("kernels scalar"), "{text}");
    assert!(text.contains("s/epoch") && text.contains("s/batch"), "{text}");
    let row = text.lines().find(|l| l.starts_with("bars4")).expect("a bars4 row");
    assert!(row.contains("pid") && row.ends_with("scalar"), "{row}");
    let h = rapid(&["bench", "paper", "--help"]);
    let help = String::from_utf8(h.stdout).unwrap();
    for needle in ["median", "random +-1", "V=784", "--warmup", "seconds_per_batch"] {
        assert!(help.contains(needle), "help lacks {needle}");
    }
}

#[test]
fn scaling_writes_csv_json_and_figures() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sc");
    let o = rapid(&[
        "bench",
        "scaling",
        "--sizes",
        "50,100",
        "--patterns",
        "4",
        "--batch",
        "8",
        "--repeats",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(text.matches("# slope").count(), 3, "{text}");
    let csv = std::fs::read_to_string(out.join("scaling.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "method,N,V,H,seconds_per_step");
    assert_eq!(lines.len(), 1 + 3 * 2, "{csv}");
    for l in &lines[1..] {
        let f: Vec<&str> = l.split(',').collect();
        let (n, v, h): (usize, usize, usize) =
            (f[1].parse().unwrap(), f[2].parse().unwrap(), f[3].parse().unwrap());
        assert!(n == 50 || n == 100, "{l}");
        assert_eq!((v + h, 4 * v), (n, h), "V = H/4: {l}");
        let t: f64 = f[4].parse().unwrap();
        assert!(t.is_finite() && t > 0.0, "{l}");
    }
    let j: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("scaling.json")).unwrap()).unwrap();
    assert_eq!(j["sizes"], serde_json::json!([50, 100]));
    assert_eq!((j["patterns"].as_u64(), j["batch"].as_u64()), (Some(4), Some(8)));
    assert!(j["isa"].is_string());
    let methods = j["methods"].as_array().unwrap();
    let names: Vec<&str> = methods.iter().map(|m| m["method"].as_str().unwrap()).collect();
    assert_eq!(names, ["pid-lowrank", "pid-formed-w", "cd:10"]);
    for m in methods {
        assert!(m["slope"].as_f64().is_some_and(f64::is_finite), "{m}");
        assert_eq!(m["points"].as_array().unwrap().len(), 2);
    }
    let png = std::fs::read(out.join("scaling.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let svg = std::fs::read_to_string(out.join("scaling.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("CD-10"));
}

/// Bad input: exit code 2, one line on stderr, nothing on stdout, no output folder.
#[test]
fn bad_bench_input_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let out_s = out.to_str().unwrap();
    let cases: &[&[&str]] = &[
        &["bench", "paper", "--isa", "sse9"],
        &["bench", "paper", "--setups", "mnist2"],
        &["bench", "paper", "--methods", "gibbs:1"],
        &["bench", "paper", "--methods", "exact"],
        &["bench", "paper", "--repeats", "0"],
        &["bench", "paper", "--repeats", "x"],
        &["bench", "scaling", "--isa", "avx3", "--out", out_s],
        &["bench", "scaling", "--sizes", "50,52", "--out", out_s],
        &["bench", "scaling", "--sizes", "50", "--out", out_s],
        &["bench", "scaling", "--patterns", "0", "--out", out_s],
        &["bench", "scaling", "--repeats", "0", "--out", out_s],
    ];
    for args in cases {
        let o = rapid(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("rapid: error: "), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?} printed to stdout");
        assert!(!out.exists(), "{args:?} created the output folder");
    }
    assert!(stderr(&rapid(cases[0])).contains("expected auto, scalar, avx2 or avx512"));
    // A level this CPU lacks is refused the same way (only checkable where one is missing).
    for isa in ["avx2", "avx512"] {
        if !rapid_core::kernels::Isa::from_name(isa).unwrap().available() {
            let o = rapid(&["bench", "paper", "--isa", isa]);
            assert_eq!(o.status.code(), Some(2));
            assert!(stderr(&o).contains("does not support"), "{}", stderr(&o));
        }
    }
}
