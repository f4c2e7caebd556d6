//! Fine-tuning a pretrained model, fastai's way: freeze the body, train the new head (and the BatchNorm layers)
//! for an epoch, then unfreeze and train everything, the early layers at lower rates (see [`LayerGroups`] for how
//! a model is split and [`LrSlice`] for the rates).

use super::{EpochRow, LayerGroups, Learner, LrSlice, Schedule};
use crate::{Error, Result};

/// fastai's `fine_tune` defaults (fastai 2.8, `callback/schedule.py`).
const FREEZE_EPOCHS: usize = 1;
const LR_MULT: f32 = 100.0;
/// The frozen epoch warms up for almost all of it: the new head starts random, so its rate rises slowly.
const FROZEN: Schedule = Schedule::OneCycle { pct_start: 0.99, div: 25.0 };
/// The unfrozen epochs start from lr/5, not lr/25: the model is already good, so it needs less warming up.
const UNFROZEN: Schedule = Schedule::OneCycle { pct_start: 0.3, div: 5.0 };

impl Learner {
    /// fastai's `freeze_to(n)`: the parameters of layer groups `0..n` get no gradient, so no update and no weight
    /// decay, except the normalisation layers' (fastai's `train_bn`); the groups from `n` on train. The optimizer's
    /// state (momentum, Adam's moments and step) starts again from zero, as fastai's `freeze_to` clears it.
    pub fn freeze_to(&mut self, n: usize) -> Result<()> {
        let groups = LayerGroups::of(self.model.as_ref());
        if n >= groups.count {
            return Err(Error::InvalidArgument(format!(
                "can't freeze {n} layer groups of a model that has {}: its head would not train",
                groups.count
            )));
        }
        for ((p, &group), &norm) in self.model.parameters().iter().zip(&groups.group).zip(&groups.norm) {
            p.set_requires_grad(group >= n || norm);
        }
        self.opt = None;
        Ok(())
    }

    /// Freezes every layer group but the last (the head).
    pub fn freeze(&mut self) -> Result<()> {
        let count = LayerGroups::of(self.model.as_ref()).count;
        self.freeze_to(count.saturating_sub(1).max(1))
    }

    /// Trains every layer again.
    pub fn unfreeze(&mut self) -> Result<()> {
        self.freeze_to(0)
    }

    /// fastai's `fine_tune(epochs, base_lr)` (its default `base_lr` is 2e-3): one epoch with the body frozen, the
    /// head at `base_lr` under one-cycle (`pct_start` 0.99), then `epochs` epochs of the whole model, unfrozen, at
    /// rates from `base_lr`/200 for the first layers to `base_lr`/2 for the head (one-cycle, `pct_start` 0.3,
    /// `div` 5). Prints a table per phase, each under a line that says what trains; epochs are numbered on across
    /// both, as the recorder keeps them.
    pub fn fine_tune(&mut self, epochs: usize, base_lr: f32) -> Result<&[EpochRow]> {
        self.freeze()?;
        self.announce(format!(
            "frozen: the head and any BatchNorm layers train, {FREEZE_EPOCHS} epoch at lr {base_lr}"
        ));
        self.fit_with(FREEZE_EPOCHS, LrSlice::Head(base_lr), FROZEN)?;
        let base_lr = base_lr / 2.0;
        self.unfreeze()?;
        let (lo, hi) = (base_lr / LR_MULT, base_lr);
        let plural = if epochs == 1 { "" } else { "s" };
        self.announce(format!(
            "unfrozen: every layer trains, {epochs} epoch{plural} at lr {lo:.1e} (first layers) to {hi:.1e} (head)"
        ));
        self.fit_with(epochs, LrSlice::Range(lo, hi), UNFROZEN)
    }

    fn announce(&self, line: String) {
        if self.print_table {
            println!("{line}");
        }
    }
}
