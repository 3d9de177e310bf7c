//! The subcommands of `rapid`, one module each, and the helpers they share.

pub(crate) mod eval;
pub(crate) mod export;
pub(crate) mod interrupt;
pub(crate) mod reproduce;
pub(crate) mod sample;
pub(crate) mod train;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rapid_harness::checkpoint::{read_model_or_checkpoint, Provenance};
use rapid_harness::data::{Dataset, DatasetSpec, FileSource};
use rapid_harness::model::Model;
use rapid_harness::run::MAX_COUNT;

/// A JSON number holding the shortest decimal that reads back as `x` (`0.02`, not the
/// `0.019999999552965164` of `x as f64`).
pub(crate) fn json_f32(x: f32) -> serde_json::Value {
    if !x.is_finite() {
        return serde_json::Value::Null;
    }
    let shortest: f64 = x.to_string().parse().expect("a finite f32 prints as a number");
    serde_json::json!(shortest)
}

/// Parses a count for clap: a whole number ≥ 0 (negative numbers reach this parser, so the
/// message can say what is wrong instead of "unexpected argument").
pub(crate) fn whole<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.trim().parse::<T>().map_err(|_| {
        if s.trim_start().starts_with('-') {
            format!("'{s}' is negative; a whole number >= 0 is needed")
        } else {
            format!("'{s}' is not a whole number")
        }
    })
}

/// Refuses counts above [`MAX_COUNT`] (draws, steps, chains, runs): the first one too large,
/// named by its option.
pub(crate) fn check_counts(counts: &[(&str, usize)]) -> Result<(), String> {
    match counts.iter().find(|(_, n)| *n > MAX_COUNT) {
        Some((option, n)) => Err(format!(
            "{option} {n} is above the limit of {MAX_COUNT}: the work could not finish"
        )),
        None => Ok(()),
    }
}

/// One line on stderr and the exit code: 2 for bad input, 1 for a failure during work.
pub(crate) fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("rapid: error: {msg}");
    ExitCode::from(code)
}

/// Whether stderr is a terminal (where progress is a bar redrawn in place).
pub(crate) fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Progress of a long loop, on stderr: on a terminal indicatif's bar; anywhere else (a log
/// file, a pipe) a plain line now and then from a thread of its own, such as
/// `# 37/300 epochs (12 %), 4.1 s elapsed, ~29 s left; hd_test 0.1234`. Lines come at
/// least [`PLAIN_FIRST`] apart, and further apart as the run grows old (a tenth of the time
/// elapsed, at most [`PLAIN_MAX`]); a loop that is still running after [`PLAIN_FIRST`] has
/// printed a line. They start with `#`, like the comment lines of `rapid train`'s table.
pub(crate) struct Progress {
    bar: ProgressBar,
    plain: Option<Arc<Plain>>,
    /// The thread printing the plain lines, until it is stopped.
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Whether this is the progress [`clear_progress`] clears (all but [`Progress::hidden`]).
    shown: bool,
}

/// The shortest time between two plain progress lines, and the time of the first.
pub(crate) const PLAIN_FIRST: Duration = Duration::from_secs(5);
/// The longest time between two plain progress lines.
pub(crate) const PLAIN_MAX: Duration = Duration::from_secs(60);

/// The progress on stderr now, for [`clear_progress`].
static SHOWN: Mutex<Option<(ProgressBar, Option<Arc<Plain>>)>> = Mutex::new(None);

/// Clears the progress bar, or stops the plain lines, of the [`Progress`] on stderr: for a
/// thread other than the one that owns it (on a signal) before its last words.
pub(crate) fn clear_progress() {
    if let Some((bar, plain)) = SHOWN.lock().unwrap_or_else(|e| e.into_inner()).take() {
        bar.finish_and_clear();
        if let Some(p) = plain {
            p.state.lock().unwrap_or_else(|e| e.into_inner()).done = true;
            p.wake.notify_all();
        }
    }
}

/// The state a plain progress line shows, shared with its thread.
struct Plain {
    len: u64,
    unit: String,
    state: Mutex<PlainState>,
    wake: Condvar,
}

struct PlainState {
    start: Instant,
    /// Position at the start (a resumed run's epochs); the rate counts from it.
    base: u64,
    pos: u64,
    msg: String,
    done: bool,
}

/// A duration for people: `4.1 s`, `12 min 05 s`, `3 h 02 min`.
pub(crate) fn human_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 59.95 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        let s = s.round() as u64;
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        let m = (s / 60.0).round() as u64;
        format!("{} h {:02} min", m / 60, m % 60)
    }
}

impl PlainState {
    /// The line for the state at `now`.
    fn line(&self, len: u64, unit: &str, now: Instant) -> String {
        let elapsed = now - self.start;
        let pct = (self.pos.min(len) * 100).checked_div(len).unwrap_or(100);
        let mut line =
            format!("# {}/{len} {unit} ({pct} %), {} elapsed", self.pos, human_duration(elapsed));
        let done = self.pos.saturating_sub(self.base);
        if done > 0 && self.pos < len {
            let left = elapsed.mul_f64((len - self.pos) as f64 / done as f64);
            line += &format!(", ~{} left", human_duration(left));
        }
        if !self.msg.is_empty() {
            line += "; ";
            line += &self.msg;
        }
        line
    }
}

/// The time between the plain lines of a run `elapsed` old.
fn plain_interval(elapsed: Duration) -> Duration {
    (elapsed / 10).clamp(PLAIN_FIRST, PLAIN_MAX)
}

impl Progress {
    /// Progress over `len` steps of `unit` (plural, e.g. `epochs`) from step `start` (where a
    /// resumed run starts; the rate counts from there), shown as the bar on a terminal and as
    /// plain lines elsewhere.
    pub(crate) fn new(len: u64, start: u64, unit: &str) -> Self {
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{bar:40}} {{pos}}/{{len}} {unit}  {{elapsed_precise}} (eta {{eta}})  {{msg}}"
            ))
            .expect("valid template"),
        );
        bar.set_position(start);
        if stderr_is_terminal() {
            *SHOWN.lock().unwrap_or_else(|e| e.into_inner()) = Some((bar.clone(), None));
            return Progress { bar, plain: None, thread: Mutex::new(None), shown: true };
        }
        let plain = Arc::new(Plain {
            len,
            unit: unit.to_string(),
            state: Mutex::new(PlainState {
                start: Instant::now(),
                base: start,
                pos: start,
                msg: String::new(),
                done: false,
            }),
            wake: Condvar::new(),
        });
        *SHOWN.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((bar.clone(), Some(Arc::clone(&plain))));
        let shared = Arc::clone(&plain);
        let thread = std::thread::spawn(move || {
            let p = &*shared;
            let mut st = p.state.lock().unwrap_or_else(|e| e.into_inner());
            let mut last = st.start;
            loop {
                let now = Instant::now();
                let due = last + plain_interval(now - st.start);
                if st.done {
                    return;
                }
                if now < due {
                    st = p.wake.wait_timeout(st, due - now).unwrap_or_else(|e| e.into_inner()).0;
                    continue;
                }
                let line = st.line(p.len, &p.unit, now);
                last = now;
                drop(st);
                // A closed stderr must not stop the loop being watched.
                let _ = writeln!(std::io::stderr(), "{line}");
                st = p.state.lock().unwrap_or_else(|e| e.into_inner());
            }
        });
        Progress { bar, plain: Some(plain), thread: Mutex::new(Some(thread)), shown: true }
    }

    /// No progress at all (machine-readable output).
    pub(crate) fn hidden() -> Self {
        Progress { bar: ProgressBar::hidden(), plain: None, thread: Mutex::new(None), shown: false }
    }

    fn update(&self, f: impl FnOnce(&mut PlainState)) {
        if let Some(p) = &self.plain {
            f(&mut p.state.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }

    /// Moves to step `pos`.
    pub(crate) fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
        self.update(|st| st.pos = pos);
    }

    /// The text after the numbers (e.g. the latest test HD).
    pub(crate) fn set_message(&self, msg: String) {
        self.update(|st| st.msg.clone_from(&msg));
        self.bar.set_message(msg);
    }

    /// Runs `f` (which prints) with the bar out of the way.
    pub(crate) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Removes the bar, or stops the plain lines.
    pub(crate) fn finish_and_clear(&self) {
        if self.shown {
            *SHOWN.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        self.bar.finish_and_clear();
        self.update(|st| st.done = true);
        if let Some(p) = &self.plain {
            p.wake.notify_all();
        }
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish_and_clear();
    }
}

/// A model file or a checkpoint, read and decoded, with how it was made where the file says
/// (model files written by `rapid train` since settings were stored, and checkpoints); the
/// error names the file. The file is read no further than its headers say ([`read_bounded`]).
pub(crate) fn load_model(path: &Path) -> Result<(Model, Option<Provenance>), String> {
    let bytes = read_bounded(path)?;
    read_model_or_checkpoint(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The bytes of a model file or checkpoint, read no further than its headers say and no
/// larger than the memory budget (`--max-memory`).
pub(crate) fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    use rapid_harness::modelio::{read_model_or_checkpoint_bytes, ReadError};
    read_model_or_checkpoint_bytes(path, rapid_harness::limits::max_memory()).map_err(|e| match e {
        ReadError::Io(e) => format!("reading {}: {e}", path.display()),
        e => format!("{}: {e}", path.display()),
    })
}

/// The data to evaluate a model on: `--dataset` (with its file options) when given, else the
/// data the model file names, with the split seed it was trained with unless `--split-seed`
/// is given. Returns the data and where the choice came from, for the output's header.
pub(crate) fn data_for_model(
    given: Option<&DatasetSpec>,
    test: Option<FileSource>,
    binarize: Option<f32>,
    shape: Option<(usize, usize)>,
    split_seed: Option<u64>,
    made: Option<&Provenance>,
) -> Result<(Dataset, &'static str), String> {
    let (spec, seed, origin) = match (given, made) {
        (Some(spec), _) => (spec.clone(), split_seed.unwrap_or(0), "--dataset"),
        (None, Some(p)) if matches!(p.dataset, DatasetSpec::Arrays { .. }) => {
            return Err(format!(
                "the model was trained on in-memory rows ({}), not on data rapid can load: \
                 give --dataset",
                p.dataset
            ))
        }
        (None, Some(p)) => {
            let origin = if p.checkpoint {
                "the checkpoint's settings"
            } else {
                "the model file's settings"
            };
            (p.dataset.clone(), split_seed.unwrap_or(p.split_seed), origin)
        }
        (None, None) => {
            return Err("the model file does not say what it was trained on (it predates \
                        stored settings): give --dataset"
                .into())
        }
    };
    let spec = spec.with_options(test, binarize, shape)?;
    Ok((Dataset::load(&spec, seed)?, origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_show_rate_and_time_left() {
        let start = Instant::now();
        let mut st = PlainState { start, base: 0, pos: 0, msg: String::new(), done: false };
        let at = |s: f64| start + Duration::from_secs_f64(s);
        assert_eq!(st.line(300, "epochs", at(2.0)), "# 0/300 epochs (0 %), 2.0 s elapsed");
        st.pos = 37;
        st.msg = "hd_test 0.1234".into();
        assert_eq!(
            st.line(300, "epochs", at(3.7)),
            "# 37/300 epochs (12 %), 3.7 s elapsed, ~26.3 s left; hd_test 0.1234"
        );
        // A resumed run counts its rate from where it started.
        st.base = 30;
        st.msg.clear();
        assert_eq!(
            st.line(300, "epochs", at(70.0)),
            "# 37/300 epochs (12 %), 1 min 10 s elapsed, ~43 min 50 s left"
        );
        st.pos = 300;
        assert_eq!(
            st.line(300, "epochs", at(7300.0)),
            "# 300/300 epochs (100 %), 2 h 02 min elapsed"
        );
    }

    #[test]
    fn plain_lines_come_5_s_apart_then_sparser() {
        assert_eq!(plain_interval(Duration::ZERO), PLAIN_FIRST);
        assert_eq!(plain_interval(Duration::from_secs(49)), PLAIN_FIRST);
        assert_eq!(plain_interval(Duration::from_secs(200)), Duration::from_secs(20));
        assert_eq!(plain_interval(Duration::from_secs(3600)), PLAIN_MAX);
    }
}
