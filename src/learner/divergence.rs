//! When a loss that is still a number is diverging. Adam's step is bounded by its learning rate, so a learning rate
//! far too high (`--lr 1e30`) drives the loss to 1e29 and beyond without ever making it NaN, and the run would
//! otherwise end "successfully" with a model that predicts nothing.
//!
//! The rule: the training loss, smoothed as fastai's Recorder smooths it (a running average that weighs the past
//! by 0.98, debiased), rises above [`DIVERGENCE_FACTOR`] times the loss of the first batch the learner trained on.
//! fastai's `lr_find` stops at 4× the *best* smoothed loss, but an LR sweep only ever raises the learning rate,
//! while training may bump up from a small best (the warm-up of one-cycle, a new `fit`); measured against the
//! untrained model's loss, a normal run never comes near (the commit adding this lists the runs checked), and a
//! diverging one passes it within a few batches. A bounded loss (the post's `mnist_loss`, at most 1) cannot pass
//! it: such a run is left to its accuracy.

/// How many times the first batch's loss the smoothed training loss may reach before training stops.
pub const DIVERGENCE_FACTOR: f32 = 4.0;

use super::smoothed_loss::SmoothedLoss;
use crate::{Error, Result};

#[derive(Default)]
pub(crate) struct DivergenceWatch {
    pub(super) first: Option<f32>,
    pub(super) smoothed: SmoothedLoss,
}

impl DivergenceWatch {
    /// Takes batch `batch` of `epoch`'s loss, trained at `lr`: an error if it is not a number or is diverging,
    /// which ends the fit before the step it would take.
    pub fn check(&mut self, loss: f32, epoch: usize, batch: usize, lr: f32) -> Result<()> {
        if !loss.is_finite() {
            return Err(Error::NonFiniteLoss { epoch, batch, loss, lr });
        }
        match self.diverging(loss) {
            Some((smoothed, first)) => Err(Error::DivergingLoss { epoch, batch, loss: smoothed, first, lr }),
            None => Ok(()),
        }
    }

    /// Takes one batch's loss; returns the smoothed loss and the first batch's when the rule says it diverges.
    pub fn diverging(&mut self, loss: f32) -> Option<(f32, f32)> {
        let first = *self.first.get_or_insert(loss);
        let smoothed = self.smoothed.push(loss as f64);
        (smoothed > (DIVERGENCE_FACTOR * first) as f64).then_some((smoothed as f32, first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loss_that_grows_fourfold_is_diverging_and_noise_is_not() {
        let mut watch = DivergenceWatch::default();
        // A spike to 20× after a few dozen batches weighs a few percent of the average: noise, not a trend.
        for loss in [[0.7; 20].as_slice(), &[14.0], &[0.5; 20]].concat() {
            assert_eq!(watch.diverging(loss), None, "{loss}");
        }
        let mut watch = DivergenceWatch::default();
        assert_eq!(watch.diverging(0.7), None);
        let (smoothed, first) = watch.diverging(3e29).expect("diverging");
        assert_eq!(first, 0.7);
        assert!(smoothed > 1e29, "{smoothed}");
    }
}
