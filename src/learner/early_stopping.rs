//! fastai's `EarlyStoppingCallback`: stop a fit once the watched figure has not improved (by more than `min_delta`)
//! for `patience` epochs in a row.

use super::tracker::{Best, Monitor, Tracker};
use super::{Callback, EpochRow, FitStart};
use crate::nn::Module;
use crate::Result;
use std::ops::ControlFlow;

pub struct EarlyStoppingCallback {
    tracker: Tracker,
    patience: usize,
    /// Epochs since the last improvement.
    wait: usize,
}

impl EarlyStoppingCallback {
    /// fastai's defaults are `Monitor::ValidLoss`, `min_delta` 0 and `patience` 1; a patience of 0 stops at the
    /// first epoch that does not improve, as 1 does (as in fastai).
    pub fn new(monitor: Monitor, min_delta: f32, patience: usize) -> Self {
        EarlyStoppingCallback { tracker: Tracker::new(monitor, min_delta), patience, wait: 0 }
    }

    /// The best epoch of the last fit so far.
    pub fn best(&self) -> Option<Best> {
        self.tracker.best()
    }
}

impl Callback for EarlyStoppingCallback {
    fn before_fit(&mut self, fit: &FitStart) -> Result<()> {
        self.wait = 0;
        self.tracker.before_fit(fit, "early stopping")
    }

    fn after_epoch(&mut self, row: &EpochRow, _model: &dyn Module) -> ControlFlow<String> {
        if self.tracker.improved(row) {
            self.wait = 0;
            return ControlFlow::Continue(());
        }
        self.wait += 1;
        if self.wait < self.patience {
            return ControlFlow::Continue(());
        }
        let since = match self.tracker.best() {
            Some(best) => format!("since epoch {}", best.epoch),
            None => "since the fit began".to_string(),
        };
        ControlFlow::Break(format!(
            "no improvement in {} for {} epoch{} {since}: stopping",
            self.tracker.name(),
            self.wait,
            if self.wait == 1 { "" } else { "s" }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Linear;
    use crate::rng::Rng;

    fn fit_start<'a>(metric_names: &'a [&'static str]) -> FitStart<'a> {
        FitStart { epochs: 10, first_epoch: 0, batches: 3, metric_names, validates: true }
    }

    fn row(epoch: usize, valid_loss: f32, accuracy: f32) -> EpochRow {
        EpochRow {
            epoch,
            train_loss: 0.5,
            valid_loss: Some(valid_loss),
            metrics: vec![Some(accuracy)],
            seconds: 0.0,
            train_seconds: 0.0,
        }
    }

    /// The epoch index the callback stops after, and its reason, for a sequence of (valid loss, accuracy).
    fn stop(cb: &mut EarlyStoppingCallback, figures: &[(f32, f32)]) -> Option<(usize, String)> {
        let model = Linear::new(1, 1, &mut Rng::new(0));
        cb.before_fit(&fit_start(&["accuracy"])).unwrap();
        figures.iter().enumerate().find_map(|(epoch, &(loss, acc))| {
            match cb.after_epoch(&row(epoch, loss, acc), &model) {
                ControlFlow::Break(why) => Some((epoch, why)),
                ControlFlow::Continue(()) => None,
            }
        })
    }

    #[test]
    fn stops_after_patience_epochs_without_a_lower_valid_loss() {
        let losses = [1.0, 0.9, 0.95, 0.91, 0.8].map(|l| (l, 0.5));
        let mut cb = EarlyStoppingCallback::new(Monitor::ValidLoss, 0.0, 2);
        assert_eq!(
            stop(&mut cb, &losses),
            Some((3, "no improvement in valid_loss for 2 epochs since epoch 1: stopping".into()))
        );
        assert_eq!(cb.best(), Some(Best { monitor: "valid_loss", epoch: 1, value: 0.9 }));
        // A new fit starts afresh: the best and the count are forgotten (fastai's reset_on_fit).
        let mut patient = EarlyStoppingCallback::new(Monitor::ValidLoss, 0.0, 3);
        assert_eq!(stop(&mut patient, &losses), None);
        assert_eq!(
            stop(&mut cb, &losses[1..]),
            Some((2, "no improvement in valid_loss for 2 epochs since epoch 0: stopping".into()))
        );
    }

    #[test]
    fn an_improvement_must_beat_min_delta() {
        let mut cb = EarlyStoppingCallback::new(Monitor::ValidLoss, 0.1, 1);
        assert_eq!(
            stop(&mut cb, &[(1.0, 0.5), (0.95, 0.5)]),
            Some((1, "no improvement in valid_loss for 1 epoch since epoch 0: stopping".into()))
        );
        let mut cb = EarlyStoppingCallback::new(Monitor::ValidLoss, 0.1, 1);
        assert_eq!(stop(&mut cb, &[(1.0, 0.5), (0.85, 0.5), (0.8, 0.5)]).map(|(e, _)| e), Some(2));
    }

    #[test]
    fn accuracy_is_better_higher() {
        let figures = [(0.5, 0.5), (0.6, 0.6), (0.4, 0.6), (0.3, 0.55)];
        let mut cb = EarlyStoppingCallback::new(Monitor::Metric(0), 0.0, 2);
        assert_eq!(
            stop(&mut cb, &figures),
            Some((3, "no improvement in accuracy for 2 epochs since epoch 1: stopping".into()))
        );
        // The same epochs by valid loss keep improving.
        assert_eq!(stop(&mut EarlyStoppingCallback::new(Monitor::ValidLoss, 0.0, 2), &figures), None);
    }

    #[test]
    fn a_nan_loss_never_improves() {
        let mut cb = EarlyStoppingCallback::new(Monitor::ValidLoss, 0.0, 1);
        assert_eq!(
            stop(&mut cb, &[(f32::NAN, 0.5)]),
            Some((0, "no improvement in valid_loss for 1 epoch since the fit began: stopping".into()))
        );
    }

    #[test]
    fn a_figure_the_fit_lacks_is_refused_before_training() {
        let mut cb = EarlyStoppingCallback::new(Monitor::Metric(1), 0.0, 1);
        let e = cb.before_fit(&fit_start(&["accuracy"])).unwrap_err();
        assert_eq!(e.to_string(), "early stopping watches metric 1, and the learner has 1 metrics");
        let no_valid = FitStart { validates: false, ..fit_start(&["accuracy"]) };
        let e = EarlyStoppingCallback::new(Monitor::Metric(0), 0.0, 1).before_fit(&no_valid).unwrap_err();
        assert_eq!(e.to_string(), "early stopping watches accuracy, which needs a validation set, and there is none");
    }
}
