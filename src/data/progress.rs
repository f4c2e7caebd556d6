//! A progress line on stderr that stays out of sight for quick loads and for output that is not a terminal.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Work shorter than this shows nothing.
const QUIET_FOR: Duration = Duration::from_secs(1);
/// The line is redrawn at most this often.
const REDRAW_EVERY_MS: u64 = 100;
const BAR: usize = 30;

/// Safe to tick from rayon's threads: the count is atomic and one thread at a time redraws.
pub(crate) struct Progress {
    len: usize,
    done: AtomicUsize,
    message: Mutex<&'static str>,
    start: Instant,
    last_draw_ms: AtomicU64,
    drawn: AtomicBool,
    enabled: bool,
}

impl Progress {
    pub fn new(len: usize, message: &'static str, enabled: bool) -> Self {
        Self {
            len,
            done: AtomicUsize::new(0),
            message: Mutex::new(message),
            start: Instant::now(),
            last_draw_ms: AtomicU64::new(0),
            drawn: AtomicBool::new(false),
            enabled: enabled && std::io::stderr().is_terminal(),
        }
    }

    pub fn set_message(&self, message: &'static str) {
        *self.message.lock().unwrap_or_else(|e| e.into_inner()) = message;
    }

    pub fn inc(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let elapsed = self.start.elapsed();
        if !self.enabled || elapsed < QUIET_FOR {
            return;
        }
        let (now, last) = (elapsed.as_millis() as u64, self.last_draw_ms.load(Ordering::Relaxed));
        let due = now >= last + REDRAW_EVERY_MS || done == self.len;
        if due && self.last_draw_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            self.drawn.store(true, Ordering::Relaxed);
            let line = self.line(done, elapsed);
            let _ = write!(std::io::stderr(), "\r{line}");
        }
    }

    /// `message [=====>    ] done/len (rate/s, eta Ns)`.
    fn line(&self, done: usize, elapsed: Duration) -> String {
        let message = *self.message.lock().unwrap_or_else(|e| e.into_inner());
        let filled = (done * BAR).checked_div(self.len).unwrap_or(BAR).min(BAR);
        let bar = format!("{}>{}", "=".repeat(filled), " ".repeat(BAR - filled));
        let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
        let eta = self.len.saturating_sub(done) as f64 / rate.max(1e-9);
        format!("{message} [{}] {done}/{} ({rate:.0}/s, eta {eta:.0}s)", &bar[..BAR], self.len)
    }

    /// Clears the line, if one was drawn.
    pub fn finish(&self) {
        if self.drawn.load(Ordering::Relaxed) {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_work_draws_nothing_and_the_line_reads_right() {
        let p = Progress::new(4, "reading", true);
        p.inc();
        assert!(!p.drawn.load(Ordering::Relaxed));
        p.finish();
        assert_eq!(
            p.line(2, Duration::from_secs(2)),
            format!("reading [{}>{}] 2/4 (1/s, eta 2s)", "=".repeat(15), " ".repeat(14))
        );
    }
}
