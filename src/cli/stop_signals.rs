//! SIGINT (Ctrl-C) and SIGTERM while crest trains or saves: training stops between two batches, a file being
//! written is removed instead of renamed into place, and crest exits with the shell's code for the signal (128 + its
//! number: 130, 143) after one line. A second signal ends crest at once, for a stop that takes too long; the
//! temporary file that may leave is removed by the next save into its folder.
//!
//! signal-hook, not ctrlc: its handlers tell which signal came (ctrlc's `termination` feature runs one handler for
//! both), and they only set atomics, the one thing a signal handler may safely do.

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Called as training starts: until then crest has written nothing, and a signal's default action (ending the
/// process at once, with the same code) is what a user wants while images load.
pub fn stop_on_signals() -> crest::Result<()> {
    let requested = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        let register = || -> std::io::Result<()> {
            // The order matters: the shutdown checks the flag before the same signal sets it, so only a second
            // signal finds it set.
            flag::register_conditional_shutdown(signal, 128 + signal, requested.clone())?;
            flag::register(signal, requested.clone())?;
            flag::register_usize(signal, crest::interrupt::flag(), signal as usize)?;
            Ok(())
        };
        register().map_err(|e| crest::Error::Io { what: "cannot handle stop signals".into(), source: e })?;
    }
    Ok(())
}
