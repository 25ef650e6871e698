//! Standard output and standard error, with every write checked.
//!
//! `print!` and `eprintln!` panic when the stream is closed or the disk is
//! full (`mlmix fit x.inp | head -1`, `> /dev/full`). Here a failed write to
//! standard output is an error for the caller (a closed pipe is reported as
//! [`Closed`], which ends the run quietly, as other Unix tools do), and a
//! failed write to standard error is remembered: there is nowhere left to
//! say it, but the run then exits non-zero.

use std::fmt;
use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Standard output and standard error of the command.
#[derive(Default)]
pub struct Console {
    stderr_failed: AtomicBool,
}

/// Standard output was closed by its reader (a broken pipe): nothing more
/// can be shown, and the command exits non-zero without a message.
#[derive(Debug)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for Closed {}

impl Console {
    /// Writes `text` to standard output and flushes it.
    pub fn out(&self, text: &str) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::BrokenPipe => Err(Closed.into()),
            Err(e) => Err(anyhow::Error::new(e).context("writing to standard output")),
        }
    }

    /// Writes a line to standard error; a failure is remembered (see
    /// [`Console::stderr_failed`]).
    pub fn err(&self, line: fmt::Arguments<'_>) {
        let mut err = std::io::stderr().lock();
        if writeln!(err, "{line}").and_then(|()| err.flush()).is_err() {
            self.stderr_failed.store(true, Ordering::Relaxed);
        }
    }

    /// Whether a write to standard error failed.
    pub fn stderr_failed(&self) -> bool {
        self.stderr_failed.load(Ordering::Relaxed)
    }
}
