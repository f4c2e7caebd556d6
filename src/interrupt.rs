//! A request to stop, made from outside the work it stops: the `crest` binary turns SIGINT and SIGTERM into one, so
//! that training ends between two batches and a file being written is removed instead of renamed into place.
//!
//! The library installs no signal handler of its own (that is the program's call); a program that wants the same
//! hands [`flag`] to its handler, e.g. `signal_hook::flag::register_usize(SIGTERM, crest::interrupt::flag(), 15)`.
//! Training ([`crate::learner::Learner::fit`]) and every file crest writes ([`crate::careful_write`]) then end in
//! [`crate::Error::Interrupted`] once the flag holds a signal's number.

use crate::{Error, Result};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

static REQUEST: LazyLock<Arc<AtomicUsize>> = LazyLock::new(|| Arc::new(AtomicUsize::new(0)));

/// The process-wide request: 0 while none is made, else the number of the signal that made it.
pub fn flag() -> Arc<AtomicUsize> {
    REQUEST.clone()
}

/// Whether a stop has been requested, as the error that reports it.
pub(crate) fn check() -> Result<()> {
    match REQUEST.load(Ordering::Relaxed) {
        0 => Ok(()),
        signal => Err(Error::Interrupted { signal: i32::try_from(signal).unwrap_or(i32::MAX) }),
    }
}
