//! SIGINT and SIGTERM (and SIGHUP): the first asks the fit to stop at the
//! next iteration, so that the best solution so far is still reported; a
//! second ends the process at once.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Exit status after a second signal: 128 + SIGINT, as shells report it.
const EXIT_AT_ONCE: i32 = 130;

/// Installs the handler; the returned flag is set by the first signal.
/// Without a handler (it could not be installed) the flag stays unset and
/// a signal ends the process as usual.
pub fn install() -> Arc<AtomicBool> {
    install_saying(
        "interrupted: stopping at the next iteration and writing the best solution so far (interrupt again to quit at once)",
    )
}

/// [`install`] with the line printed at the first interrupt.
pub fn install_saying(message: &'static str) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(EXIT_AT_ONCE);
        }
        let _ = writeln!(std::io::stderr(), "{message}");
    });
    stop
}
