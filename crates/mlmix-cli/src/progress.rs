//! Progress of a fit on standard error: a bar on a terminal, and plain
//! lines (at most one every [`EVERY`]) when standard error is a file or a
//! pipe, as in batch jobs. `-q` silences both.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use mlmix::{Observer, Stage};

use crate::console::Console;

/// The least time between two plain progress lines.
pub const EVERY: Duration = Duration::from_secs(5);

/// How progress is shown.
enum Display<'a> {
    /// Nothing (`-q`).
    Quiet,
    /// A bar on a terminal.
    Bar(ProgressBar),
    /// Plain lines, for a file or a pipe.
    Lines {
        console: &'a Console,
        state: Mutex<LineState>,
    },
}

/// What the plain lines remember between events.
#[derive(Default)]
struct LineState {
    /// When the last line was written.
    last: Option<Instant>,
    /// The stage and how many of its starts are done.
    stage: String,
}

/// The observer of a fit: shows progress and tells the optimiser when the
/// user asked it to stop.
pub struct Progress<'a> {
    display: Display<'a>,
    stop: &'a AtomicBool,
    /// "starting values (factor mixture model): " while a nested model
    /// whose solution starts the model is fitted, else empty.
    nested: Mutex<String>,
}

fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Initial => "initial stage",
        Stage::Final => "final stage",
    }
}

impl<'a> Progress<'a> {
    /// Progress for a run: nothing if `quiet`, a bar if standard error is a
    /// terminal, else plain lines. `stop` is set when the run should stop.
    pub fn new(quiet: bool, terminal: bool, console: &'a Console, stop: &'a AtomicBool) -> Self {
        let display = if quiet {
            Display::Quiet
        } else if terminal {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            Display::Bar(b)
        } else {
            Display::Lines {
                console,
                state: Mutex::new(LineState::default()),
            }
        };
        Progress {
            display,
            stop,
            nested: Mutex::new(String::new()),
        }
    }

    /// `name` of a stage, after the nested model's name while one is
    /// fitted.
    fn stage_label(&self, name: &str) -> String {
        let nested = self.nested.lock().map(|n| n.clone()).unwrap_or_default();
        format!("{nested}{name}")
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Display::Bar(b) = &self.display {
            b.finish_and_clear();
        }
    }

    /// Writes a plain line if none was written in the last [`EVERY`]
    /// (the first at once); `stage` updates the remembered stage first.
    fn line(&self, stage: Option<String>, what: impl FnOnce() -> String) {
        let Display::Lines { console, state } = &self.display else {
            return;
        };
        let Ok(mut state) = state.lock() else {
            return;
        };
        if let Some(s) = stage {
            state.stage = s;
        }
        let now = Instant::now();
        if state.last.is_some_and(|t| now.duration_since(t) < EVERY) {
            return;
        }
        state.last = Some(now);
        let sep = if state.stage.is_empty() { "" } else { "; " };
        console.err(format_args!("progress: {}{sep}{}", state.stage, what()));
    }
}

impl Observer for Progress<'_> {
    fn iteration(&self, start: usize, iteration: usize, loglik: f64) {
        if let Display::Bar(bar) = &self.display {
            bar.set_message(format!(
                "start {start}: iteration {iteration}, logL {loglik:.4}"
            ));
        }
        self.line(None, || {
            format!("start {start}, iteration {iteration}, logL {loglik:.4}")
        });
    }

    fn stage_begun(&self, stage: Stage, total: usize) {
        let name = self.stage_label(stage_name(stage));
        if let Display::Bar(bar) = &self.display {
            bar.set_length(total as u64);
            bar.set_position(0);
            bar.set_prefix(name.clone());
            bar.set_message(String::new());
        }
        // remembered for the next line, not a line of its own
        if let Display::Lines { state, .. } = &self.display
            && let Ok(mut state) = state.lock()
        {
            state.stage = format!("{name}, 0/{total} starts done");
        }
    }

    fn start_done(&self, stage: Stage, done: usize, total: usize, loglik: f64) {
        let name = self.stage_label(stage_name(stage));
        if let Display::Bar(bar) = &self.display {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_prefix(name.clone());
            bar.set_message(format!("last logL {loglik:.4}"));
        }
        let stage = format!("{name}, {done}/{total} starts done");
        self.line(Some(stage), || format!("last logL {loglik:.4}"));
    }

    fn nested_model(&self, what: Option<&str>) {
        if let Ok(mut n) = self.nested.lock() {
            *n = what.map_or(String::new(), |w| format!("starting values ({w}): "));
        }
    }

    fn standard_errors(&self, done: usize, total: usize) {
        if let Display::Bar(bar) = &self.display {
            bar.set_prefix("standard errors");
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message(String::new());
        }
        self.line(Some(String::new()), || {
            format!("standard errors, {done}/{total}")
        });
    }

    fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}
