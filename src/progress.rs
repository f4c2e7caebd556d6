//! A progress line on stderr (loading images, training an epoch) that stays out of sight for quick work and for
//! output that is not a terminal, and is gone before whatever is printed next: the table's rows stay clean.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Work shorter than this shows nothing.
const QUIET_FOR: Duration = Duration::from_secs(1);
/// The line is redrawn at most this often.
const REDRAW_EVERY_MS: u64 = 100;
const BAR: usize = 30;

/// Safe to tick from rayon's threads: the count is atomic and one thread at a time redraws. Dropping it clears the
/// line, so an error that ends the work early is printed on a clean line.
pub(crate) struct Progress {
    len: usize,
    done: AtomicUsize,
    message: Mutex<String>,
    start: Instant,
    last_draw_ms: AtomicU64,
    drawn: AtomicBool,
    enabled: bool,
}

impl Progress {
    pub fn new(len: usize, message: impl Into<String>, enabled: bool) -> Self {
        Self {
            len,
            done: AtomicUsize::new(0),
            message: Mutex::new(message.into()),
            start: Instant::now(),
            last_draw_ms: AtomicU64::new(0),
            drawn: AtomicBool::new(false),
            enabled: enabled && std::io::stderr().is_terminal(),
        }
    }

    pub fn set_message(&self, message: &str) {
        *self.message.lock().unwrap_or_else(|e| e.into_inner()) = message.to_string();
    }

    /// One more step done.
    pub fn inc(&self) {
        self.inc_noting(String::new);
    }

    /// One more step done, with a note after the counts (an epoch's running loss). The note is only made when the
    /// line is redrawn.
    pub fn inc_noting(&self, note: impl FnOnce() -> String) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let elapsed = self.start.elapsed();
        if !self.enabled || elapsed < QUIET_FOR {
            return;
        }
        let (now, last) = (elapsed.as_millis() as u64, self.last_draw_ms.load(Ordering::Relaxed));
        let due = now >= last + REDRAW_EVERY_MS || done == self.len;
        if due && self.last_draw_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            self.drawn.store(true, Ordering::Relaxed);
            let line = self.line(done, elapsed, &note());
            // Cleared to the end as well, since a shorter note would leave the tail of a longer one.
            let _ = write!(std::io::stderr(), "\r{line}\x1b[K");
        }
    }

    /// `message [=====>    ] done/len elapsed<eta note`, times as the table writes them (fastai's bar shows the
    /// same counts and times).
    fn line(&self, done: usize, elapsed: Duration, note: &str) -> String {
        let message = self.message.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let filled = (done * BAR).checked_div(self.len).unwrap_or(BAR).min(BAR);
        let bar = format!("{}>{}", "=".repeat(filled), " ".repeat(BAR - filled));
        let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
        let eta = self.len.saturating_sub(done) as f64 / rate.max(1e-9);
        let line = format!(
            "{message} [{}] {done}/{} {}<{}",
            &bar[..BAR],
            self.len,
            minutes_seconds(elapsed.as_secs_f64()),
            minutes_seconds(eta)
        );
        if note.is_empty() {
            line
        } else {
            format!("{line} {note}")
        }
    }

    /// Clears the line, if one was drawn.
    pub fn finish(&self) {
        if self.drawn.swap(false, Ordering::Relaxed) {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `mm:ss`, as the table's time column.
fn minutes_seconds(seconds: f64) -> String {
    let s = seconds.round().min(u32::MAX as f64) as u64;
    format!("{:02}:{:02}", s / 60, s % 60)
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
        let bar = |filled: usize| format!("{}>{}", "=".repeat(filled), " ".repeat(BAR - 1 - filled));
        assert_eq!(p.line(2, Duration::from_secs(2), ""), format!("reading [{}] 2/4 00:02<00:02", bar(15)));
        p.set_message("epoch 3");
        assert_eq!(
            p.line(1, Duration::from_secs(65), "loss 0.1234"),
            format!("epoch 3 [{}] 1/4 01:05<03:15 loss 0.1234", bar(7))
        );
    }
}
