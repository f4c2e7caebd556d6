//! fastai's callbacks: code of the user's (or crest's: early stopping, save-best, `stop_at`) that `Learner::fit`
//! calls at fixed points of the loop, without the loop knowing what it does.
//!
//! ```
//! use crest::learner::{Callback, EpochRow};
//! use crest::nn::Module;
//! use std::ops::ControlFlow;
//!
//! /// Stops a fit once an epoch takes longer than a limit.
//! struct TimeLimit(f64);
//!
//! impl Callback for TimeLimit {
//!     fn after_epoch(&mut self, row: &EpochRow, _model: &dyn Module) -> ControlFlow<String> {
//!         if row.seconds > self.0 {
//!             return ControlFlow::Break(format!("epoch {} took {:.0}s: stopping", row.epoch, row.seconds));
//!         }
//!         ControlFlow::Continue(())
//!     }
//! }
//! ```
//!
//! The events are fastai's, in its order: `before_fit`, then per epoch `before_epoch`, `after_batch` for each
//! training batch, `after_epoch` once the epoch is validated and its row printed, and `after_fit` at the end. A fit
//! that ends in an error (a diverging loss, a stop request) calls no more events: `after_fit` runs when the epochs
//! ran out or a callback stopped the fit, as fastai runs it after a `CancelFitException`.
//!
//! Where fastai's callbacks raise `CancelFitException` to stop, `after_epoch` here returns `ControlFlow::Break`
//! with the reason, which the learner prints under the table. Every callback sees every epoch: one that stops the
//! fit does not keep the ones after it from seeing the epoch it stopped at (a save-best beside an early stop keeps
//! the last epoch if it was the best). Stops are decided per epoch: a fit never ends with half an epoch trained.

use super::{BatchRow, EpochRow};
use crate::nn::Module;
use crate::Result;
use std::any::Any;
use std::ops::ControlFlow;

/// What a callback is told as a fit begins.
#[derive(Clone, Debug)]
pub struct FitStart<'a> {
    /// Epochs this fit trains unless a callback stops it.
    pub epochs: usize,
    /// The number of the fit's first epoch: epochs are counted across a learner's fits, as its `recorder` is.
    pub first_epoch: usize,
    /// Training batches per epoch.
    pub batches: usize,
    /// The metrics' names, in the order of `EpochRow::metrics`.
    pub metric_names: &'a [&'static str],
    /// Whether there is a validation set (without one, `valid_loss` and the metrics are `None`).
    pub validates: bool,
}

/// Code run at fixed points of [`Learner::fit`](super::Learner::fit); every method does nothing unless a callback
/// says otherwise. The model is given as `&dyn Module`: its tensors are handles, so a callback may copy its
/// parameters out or write them back (as [`SaveModelCallback`](super::SaveModelCallback) does), but it cannot swap
/// the model for another. A callback is `'static` (it is kept in the learner) and can be read back after a fit with
/// [`Learner::callback`](super::Learner::callback).
pub trait Callback: Any + Send {
    /// Before the first epoch. An error here ends the fit before anything is trained (a callback that watches a
    /// metric the learner lacks, say).
    fn before_fit(&mut self, _fit: &FitStart) -> Result<()> {
        Ok(())
    }

    /// Before each epoch's first batch, with the epoch's number.
    fn before_epoch(&mut self, _epoch: usize) {}

    /// After each training batch's optimizer step: its loss and the learning rate it was trained at.
    fn after_batch(&mut self, _batch: &BatchRow) {}

    /// After each epoch is trained, validated and printed. `Break(reason)` ends the fit here.
    fn after_epoch(&mut self, _row: &EpochRow, _model: &dyn Module) -> ControlFlow<String> {
        ControlFlow::Continue(())
    }

    /// After the last epoch, or the one a callback stopped at.
    fn after_fit(&mut self, _model: &dyn Module) {}
}
