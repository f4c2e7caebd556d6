//! Metrics: what a person reads. Binary ones take one logit per example and 0/1 targets `[n, 1]`; `accuracy` and
//! `error_rate` also take `[n, K]` logits with class indices `[n]`.

use crate::tensor::Tensor;

/// The post's metric: is the sigmoid on the right side of 0.5? (The mean over this batch.)
pub fn batch_accuracy(predictions: &Tensor, targets: &Tensor) -> Tensor {
    let correct = predictions.sigmoid().gt_scalar(0.5).eq(targets);
    correct.mean()
}

/// Fraction of examples whose predicted class is the target: argmax over classes, or the 0.5 threshold when
/// there is one logit.
pub fn accuracy(predictions: &Tensor, targets: &Tensor) -> Tensor {
    if predictions.ndim() == 2 && predictions.shape()[1] > 1 {
        predictions.argmax(1).eq(targets).mean()
    } else {
        batch_accuracy(predictions, targets)
    }
}

pub fn error_rate(predictions: &Tensor, targets: &Tensor) -> Tensor {
    1.0 - accuracy(predictions, targets)
}

/// A named metric, for the Learner's table.
#[derive(Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub f: fn(&Tensor, &Tensor) -> Tensor,
}

impl Metric {
    pub const BATCH_ACCURACY: Metric = Metric { name: "batch_accuracy", f: batch_accuracy };
    pub const ACCURACY: Metric = Metric { name: "accuracy", f: accuracy };
    pub const ERROR_RATE: Metric = Metric { name: "error_rate", f: error_rate };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_on_known_predictions() {
        let logits = Tensor::from_vec(vec![2.0, -1.0, 0.5, -3.0], &[4, 1]);
        let y = Tensor::from_vec(vec![1.0, 0.0, 0.0, 1.0], &[4, 1]);
        assert_eq!(batch_accuracy(&logits, &y).item(), 0.5);
        let multi = Tensor::from_vec(vec![0.1, 0.9, 0.0, 3.0, 1.0, 2.0, 0.0, 0.0, 5.0], &[3, 3]);
        let labels = Tensor::from_vec(vec![1.0, 2.0, 2.0], &[3]);
        assert!((accuracy(&multi, &labels).item() - 2.0 / 3.0).abs() < 1e-6);
        assert!((error_rate(&multi, &labels).item() - 1.0 / 3.0).abs() < 1e-6);
    }
}
