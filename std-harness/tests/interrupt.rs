//! Ctrl-C and SIGTERM stop `rapid train` with one line that says where the run stands, exit
//! code 130 or 143, and no temporary file left beside the outputs.
#![cfg(unix)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rapid"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs")
}

/// Waits up to `limit` for `ready`.
fn wait_for(limit: Duration, ready: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !ready() {
        assert!(t0.elapsed() < limit, "not ready after {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn send(child: &Child, signal: &str) -> Instant {
    let ok = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(ok.success(), "kill {signal}");
    Instant::now()
}

/// The exit code, the seconds from `sent` to the exit, and stderr.
fn finish(mut child: Child, sent: Instant) -> (Option<i32>, f64, String) {
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if sent.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("still running 30 s after the signal");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let seconds = sent.elapsed().as_secs_f64();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status.code(), seconds, err)
}

/// The hidden temporaries of atomic writes (`.NAME.tmp-PID`) in `dir`.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n.contains(".tmp-"))
        .collect()
}

/// Ctrl-C between epochs of a checkpointed run: exit 130, one line naming the last finished
/// epoch, the checkpoint on disk and the command that resumes it (which works), and no
/// temporary file of the model or the checkpoint left behind.
#[test]
fn ctrl_c_names_the_checkpoint_and_the_command_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (ck, out) = (dir.path().join("run.ck"), dir.path().join("m.rapid"));
    let (ck_s, out_s) = (ck.to_str().unwrap(), out.to_str().unwrap());
    let child = spawn(&[
        "train",
        "--dataset",
        "bas:12",
        "--epochs",
        "100000",
        "--eval-every",
        "0",
        "--checkpoint",
        ck_s,
        "--checkpoint-every",
        "2",
        "--out",
        out_s,
        "--json",
    ]);
    wait_for(Duration::from_secs(120), || ck.exists());
    std::thread::sleep(Duration::from_millis(300));
    let sent = send(&child, "-INT");
    let (code, seconds, err) = finish(child, sent);
    assert_eq!(code, Some(130), "{err}");
    eprintln!("exited {seconds:.2} s after SIGINT: {err}");
    assert!(seconds < 5.0, "took {seconds:.2} s to exit");
    assert_eq!(err.lines().count(), 1, "{err}");
    let saved = rapid_harness::checkpoint::Checkpoint::decode(&std::fs::read(&ck).unwrap())
        .expect("a complete checkpoint");
    let epoch = saved.state.epoch;
    assert!(epoch >= 2 && epoch.is_multiple_of(2), "{epoch}");
    // "rapid: interrupted by SIGINT after epoch E of 100000; checkpoint CK holds epoch C;
    // resume with: RAPID train --resume CK --checkpoint CK --checkpoint-every 2 --out M --json"
    let line = err.trim_end();
    let done: u32 = line
        .strip_prefix("rapid: interrupted by SIGINT after epoch ")
        .and_then(|t| t.split(' ').next())
        .unwrap_or_else(|| panic!("{line}"))
        .parse()
        .unwrap();
    assert!(done >= epoch && done < epoch + 2, "{line}");
    assert!(
        line.contains(&format!(" of 100000; checkpoint {ck_s} holds epoch {epoch}; ")),
        "{line}"
    );
    let resume = line.split("; resume with: ").nth(1).unwrap_or_else(|| panic!("{line}"));
    let want = format!(
        "{} train --resume {ck_s} --checkpoint {ck_s} --checkpoint-every 2 --out {out_s} --json",
        env!("CARGO_BIN_EXE_rapid")
    );
    assert_eq!(resume, want);
    assert!(temporaries(dir.path()).is_empty(), "{:?}", temporaries(dir.path()));
    assert!(!out.exists(), "no model from an interrupted run");

    // The command resumes the run (here told to stop two epochs later).
    let words: Vec<&str> = resume.split(' ').collect();
    let more = (epoch + 2).to_string();
    let o = Command::new(words[0]).args(&words[1..]).args(["--epochs", &more]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let last = String::from_utf8(o.stdout).unwrap();
    assert!(last.starts_with(&format!("{{\"epoch\":{},", epoch + 1)), "{last}");
    assert!(out.exists() && temporaries(dir.path()).is_empty());
}

/// SIGTERM in the middle of a long first epoch: the run does not wait for the epoch to end;
/// exit 143 within about a second, no temporary file left, and the line says nothing was
/// saved.
#[test]
fn sigterm_during_a_long_epoch_exits_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.rapid");
    // MNIST with 10000 hidden units: about 4 s an epoch on 2 cores.
    let child = spawn(&[
        "train",
        "--dataset",
        "mnist",
        "--hidden",
        "10000",
        "--epochs",
        "1000",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    wait_for(Duration::from_secs(60), || !temporaries(dir.path()).is_empty());
    std::thread::sleep(Duration::from_millis(300));
    let sent = send(&child, "-TERM");
    let (code, seconds, err) = finish(child, sent);
    assert_eq!(code, Some(143), "{err}");
    eprintln!("exited {seconds:.2} s after SIGTERM: {err}");
    assert!(seconds < 5.0, "took {seconds:.2} s to exit");
    assert_eq!(
        err.trim_end(),
        "rapid: interrupted by SIGTERM after epoch 0 of 1000; nothing saved (--checkpoint FILE \
         saves a run to resume)"
    );
    assert!(temporaries(dir.path()).is_empty(), "{:?}", temporaries(dir.path()));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
