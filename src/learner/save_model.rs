//! fastai's `SaveModelCallback` (with `every_epoch=False, at_end=False`): keep the best epoch's model and end the
//! fit with it. fastai writes each new best to a file and loads it back after the fit; crest keeps the copy in
//! memory (a model file is written once, by whoever saves the learner's model), which is the same in the end: the
//! model the fit leaves is the best epoch's.
//!
//! The copy is all the state a model file holds: the parameters and the buffers (BatchNorm's running statistics,
//! without which the best epoch's weights would be evaluated with the last epoch's statistics). The optimizer's
//! state is not restored (fastai's `with_opt=False`).

use super::tracker::{Best, Monitor, Tracker};
use super::{Callback, EpochRow, FitStart};
use crate::model_io;
use crate::nn::Module;
use crate::Result;
use std::ops::ControlFlow;

pub struct SaveModelCallback {
    tracker: Tracker,
    /// The best epoch's state, in `model_io::state`'s order; buffers reused from one best to the next.
    best_state: Vec<Vec<f32>>,
}

impl SaveModelCallback {
    /// fastai's defaults are `Monitor::ValidLoss` and `min_delta` 0.
    pub fn new(monitor: Monitor, min_delta: f32) -> Self {
        SaveModelCallback { tracker: Tracker::new(monitor, min_delta), best_state: Vec::new() }
    }

    /// The epoch whose model the last fit ended with (None if no epoch had a figure to compare, and the model was
    /// left as the last epoch made it).
    pub fn best(&self) -> Option<Best> {
        self.tracker.best()
    }
}

impl Callback for SaveModelCallback {
    fn before_fit(&mut self, fit: &FitStart) -> Result<()> {
        self.best_state.clear();
        self.tracker.before_fit(fit, "save-best")
    }

    fn after_epoch(&mut self, row: &EpochRow, model: &dyn Module) -> ControlFlow<String> {
        if self.tracker.improved(row) {
            let state = model_io::state(model);
            self.best_state.resize_with(state.len(), Vec::new);
            for (copy, (_, t)) in self.best_state.iter_mut().zip(&state) {
                copy.clear();
                copy.extend_from_slice(&t.data());
            }
        }
        ControlFlow::Continue(())
    }

    fn after_fit(&mut self, model: &dyn Module) {
        if self.best_state.is_empty() {
            return;
        }
        for (copy, (_, t)) in self.best_state.iter().zip(model_io::state(model)) {
            t.data_mut().copy_from_slice(copy);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{BatchNorm, Linear, Sequential};
    use crate::rng::Rng;

    fn row(epoch: usize, valid_loss: f32) -> EpochRow {
        EpochRow {
            epoch,
            train_loss: 0.5,
            valid_loss: Some(valid_loss),
            metrics: vec![],
            seconds: 0.0,
            train_seconds: 0.0,
        }
    }

    /// Sets every parameter and buffer of the model to `v`.
    fn fill(model: &dyn Module, v: f32) {
        model_io::state(model).iter().for_each(|(_, t)| t.data_mut().fill(v));
    }

    #[test]
    fn the_fit_ends_with_the_best_epochs_parameters_and_running_statistics() {
        let model = Sequential::default().push(Linear::new(2, 2, &mut Rng::new(0))).push(BatchNorm::new(2));
        let names: Vec<String> = model_io::state(&model).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var"]);
        let mut cb = SaveModelCallback::new(Monitor::ValidLoss, 0.0);
        cb.before_fit(&FitStart { epochs: 4, first_epoch: 0, batches: 1, metric_names: &[], validates: true }).unwrap();
        for (epoch, loss) in [0.9, 0.5, 0.7, 0.6].into_iter().enumerate() {
            fill(&model, epoch as f32);
            assert_eq!(cb.after_epoch(&row(epoch, loss), &model), ControlFlow::Continue(()));
        }
        cb.after_fit(&model);
        assert_eq!(cb.best(), Some(Best { monitor: "valid_loss", epoch: 1, value: 0.5 }));
        for (name, t) in model_io::state(&model) {
            assert!(t.data().iter().all(|&v| v == 1.0), "{name} is not epoch 1's");
        }
    }
}
