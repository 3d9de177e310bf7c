//! Ctrl-C (SIGINT) and SIGTERM: `rapid` removes its unfinished files, says in one line on
//! stderr where the work stands, and exits with 130 (SIGINT) or 143 (SIGTERM), the codes a
//! shell gives a process killed by these signals.
//!
//! The signals are received by a thread of their own (signal-hook writes to a pipe in the
//! signal handler; nothing else runs in the signal context). That thread sets a flag that
//! `rapid train` checks between epochs; a command that checks it ([`set_polled`]) gets
//! [`GRACE`] to stop there by itself and call [`finish`]; otherwise (a long epoch, or a
//! command that does not check) the signal thread calls [`finish`] itself. [`finish`]
//! removes every temporary file of an atomic write in progress
//! ([`rapid_harness::modelio::remove_temporaries_before_exit`]), prints the note the command
//! keeps up to date ([`set_note`]), and exits.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::ArgMatches;

/// How long a command that checks [`requested`] has to stop by itself.
pub(crate) const GRACE: Duration = Duration::from_secs(1);

/// The signal received (0: none yet).
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Whether the running command checks [`requested`] and calls [`finish`] itself.
static POLLED: AtomicBool = AtomicBool::new(false);
/// What the exit line says after "interrupted by SIGINT".
static NOTE: Mutex<String> = Mutex::new(String::new());
/// The global options to repeat in a command line printed for the user (`--isa`, `--threads`).
static GLOBALS: Mutex<Vec<String>> = Mutex::new(Vec::new());

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// Starts the thread that receives SIGINT and SIGTERM, and remembers the global options given
/// in `matches` for [`command_line`].
pub(crate) fn install(matches: &ArgMatches) {
    let mut globals = Vec::new();
    for id in ["isa", "threads"] {
        let given = matches.value_source(id) == Some(ValueSource::CommandLine)
            || matches
                .subcommand()
                .is_some_and(|(_, sub)| sub.value_source(id) == Some(ValueSource::CommandLine));
        let raw = matches
            .subcommand()
            .and_then(|(_, sub)| sub.get_raw(id))
            .or_else(|| matches.get_raw(id))
            .and_then(|mut v| v.next_back());
        if let (true, Some(v)) = (given, raw) {
            globals.push(format!("--{id}"));
            globals.push(v.to_string_lossy().into_owned());
        }
    }
    *GLOBALS.lock().unwrap_or_else(|e| e.into_inner()) = globals;
    listen();
}

#[cfg(unix)]
fn listen() {
    use signal_hook::consts::{SIGINT as INT, SIGTERM as TERM};
    debug_assert_eq!((INT, TERM), (SIGINT, SIGTERM));
    let Ok(mut signals) = signal_hook::iterator::Signals::new([INT, TERM]) else {
        // Without the thread the signals keep their default action: the process dies.
        return;
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            SIGNAL.store(sig, Ordering::SeqCst);
            if POLLED.load(Ordering::SeqCst) {
                std::thread::sleep(GRACE);
            }
            finish();
        }
    });
}

#[cfg(not(unix))]
fn listen() {}

/// Whether a signal asked the process to stop.
pub(crate) fn requested() -> bool {
    SIGNAL.load(Ordering::SeqCst) != 0
}

/// Declares that the running command checks [`requested`] at its safe points.
pub(crate) fn set_polled() {
    POLLED.store(true, Ordering::SeqCst);
}

/// Sets what the exit line says after "rapid: interrupted by SIGINT" (start it with a space
/// or a semicolon).
pub(crate) fn set_note(note: String) {
    *NOTE.lock().unwrap_or_else(|e| e.into_inner()) = note;
}

/// The exit code for `signal`: 128 + its number, as shells report a process it killed.
fn exit_code(signal: i32) -> i32 {
    128 + signal
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Removes the temporary files, prints the exit line and exits; called once a signal came
/// (by the thread that receives it, or by a command at a safe point). A second caller waits
/// here until the first one has ended the process.
pub(crate) fn finish() -> ! {
    static ONCE: Mutex<()> = Mutex::new(());
    let once = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::forget(once);
    rapid_harness::modelio::remove_temporaries_before_exit();
    let sig = SIGNAL.load(Ordering::SeqCst);
    let note = NOTE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    super::clear_progress();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "rapid: interrupted by {}{note}", signal_name(sig));
    let _ = err.flush();
    std::process::exit(exit_code(sig))
}

/// `arg` as a shell word: unchanged when it is made of safe characters, else single-quoted.
pub(crate) fn shell_word(arg: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./:=+,@%".contains(c);
    if !arg.is_empty() && arg.chars().all(safe) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// A command line for the user to run: this program as it was started, the global options
/// given to it, then `args`, each word quoted for a POSIX shell.
pub(crate) fn command_line(args: &[String]) -> String {
    let program = std::env::args().next().unwrap_or_else(|| "rapid".into());
    let globals = GLOBALS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    std::iter::once(program)
        .chain(globals)
        .chain(args.iter().cloned())
        .map(|w| shell_word(&w))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_the_shell() {
        assert_eq!(shell_word("runs/ck-1.rapid"), "runs/ck-1.rapid");
        assert_eq!(shell_word("my run.ck"), "'my run.ck'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word(""), "''");
        assert_eq!((exit_code(SIGINT), exit_code(SIGTERM)), (130, 143));
    }
}
