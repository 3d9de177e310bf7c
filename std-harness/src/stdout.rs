//! Standard output that a closed pipe cannot stop.
//!
//! `println!` panics when stdout fails (`rapid train | head -1` closes the pipe after one
//! line), which would end a run before its model is written. [`line()`] (and the [`outln!`](crate::outln)
//! macro) writes one line instead and, on the first failure, records it and drops every later
//! line: the work goes on, its files are written, and the program reports the lost output
//! once at the end ([`failure`]).

use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;

/// The first stdout failure, if any.
static FAILED: Mutex<Option<io::ErrorKind>> = Mutex::new(None);

/// Writes `args` and a newline to stdout, unless an earlier write failed; a failure is
/// recorded, never a panic.
pub fn line(args: fmt::Arguments<'_>) {
    let mut failed = FAILED.lock().unwrap_or_else(|e| e.into_inner());
    if failed.is_some() {
        return;
    }
    let mut out = io::stdout().lock();
    let result = out.write_fmt(args).and_then(|()| out.write_all(b"\n"));
    if let Err(e) = result {
        *failed = Some(e.kind());
    }
}

/// Flushes stdout (a failure is recorded like a failed line) and returns the first failure:
/// `Some(kind)` when some output was lost.
pub fn failure() -> Option<io::ErrorKind> {
    let mut failed = FAILED.lock().unwrap_or_else(|e| e.into_inner());
    if failed.is_none() {
        if let Err(e) = io::stdout().lock().flush() {
            *failed = Some(e.kind());
        }
    }
    *failed
}

/// `println!` for results: one line on stdout through [`line()`], so a closed or full stdout
/// drops the output instead of panicking.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::stdout::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::stdout::line(format_args!($($arg)*))
    };
}
