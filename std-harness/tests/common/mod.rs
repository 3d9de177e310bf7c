//! Helpers shared by the integration tests that run the `rapid` program.
// Each test crate that includes this module uses only some of it.
#![allow(dead_code)]

use std::process::{Child, Command, Output};

/// Runs `rapid` with `args` to the end.
pub fn rapid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rapid")).args(args).output().expect("runs")
}

/// A run's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A child process that is killed when the test ends, however it ends (a failed assertion
/// included), so a long run never outlives its test.
pub struct Reap(pub Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
