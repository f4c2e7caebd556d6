//! The loss as fastai's Recorder smooths it (`AvgSmoothLoss(beta=0.98)`): a running average that weighs the past by
//! 0.98, debiased as Adam's moments are, so that the first value is the first loss itself. The divergence watch,
//! `lr_find` and the report's per-batch chart all read this one curve.

/// The running average's weight on the past.
pub(crate) const BETA: f64 = 0.98;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct SmoothedLoss {
    /// The running average, not yet debiased.
    pub average: f64,
    /// How many losses it has taken.
    pub count: i32,
}

impl SmoothedLoss {
    /// Takes the next loss; returns the smoothed loss so far.
    pub fn push(&mut self, loss: f64) -> f64 {
        self.count = self.count.saturating_add(1);
        self.average = BETA * self.average + (1.0 - BETA) * loss;
        self.average / (1.0 - BETA.powi(self.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_value_is_the_first_loss_and_the_second_is_debiased() {
        let mut s = SmoothedLoss::default();
        assert_eq!(s.push(2.0), 2.0);
        let expected = (0.98 * 0.02 * 2.0 + 0.02 * 1.0) / (1.0 - 0.98f64 * 0.98);
        assert!((s.push(1.0) - expected).abs() < 1e-12);
        assert_eq!(s.count, 2);
    }
}
