//! A progress bar that stays out of sight for quick loads.

use std::sync::Once;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const TEMPLATE: &str = "{msg} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})";

/// A bar on stderr that appears only once the work has taken more than a second, so that small loads and tests
/// print nothing. Safe to tick from rayon's threads.
pub(crate) struct Progress {
    bar: ProgressBar,
    start: Instant,
    shown: Once,
    enabled: bool,
}

impl Progress {
    pub fn new(len: usize, message: &'static str, enabled: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::hidden()).with_message(message);
        // The template is a constant, checked by the test below; a bad one would only cost the styling.
        if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
            bar.set_style(style.progress_chars("=> "));
        }
        Self { bar, start: Instant::now(), shown: Once::new(), enabled }
    }

    pub fn set_message(&self, message: &'static str) {
        self.bar.set_message(message);
    }

    pub fn inc(&self) {
        self.bar.inc(1);
        if self.enabled && !self.shown.is_completed() && self.start.elapsed() > Duration::from_secs(1) {
            self.shown.call_once(|| self.bar.set_draw_target(ProgressDrawTarget::stderr()));
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_and_bar_stays_hidden_when_quick() {
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
        let p = Progress::new(3, "testing", true);
        p.inc();
        assert!(p.bar.is_hidden());
        p.finish();
    }
}
