//! fastai's `TrackerCallback`: which epoch was best so far by one figure of the table. Early stopping and save-best
//! both build on it.
//!
//! As in fastai: the best is forgotten when a fit begins (`reset_on_fit=True`); a figure whose name has `loss` or
//! `error` in it is better lower, any other (accuracy) higher; an epoch improves on the best only by more than
//! `min_delta` (`value + min_delta < best` for a loss); and the first epoch of a fit always improves, unless its
//! figure is NaN or infinitely bad.

use super::{EpochRow, FitStart};
use crate::{Error, Result};

/// The figure a tracker watches (fastai's `monitor`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Monitor {
    /// The validation loss, lower is better (fastai's default).
    ValidLoss,
    /// The learner's metric at this index (the table's order): better higher, or lower if its name says `loss` or
    /// `error`.
    Metric(usize),
}

/// The best epoch a tracker has seen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Best {
    /// The figure's name in the table (`valid_loss`, `accuracy`, …).
    pub monitor: &'static str,
    pub epoch: usize,
    pub value: f32,
}

pub(crate) struct Tracker {
    monitor: Monitor,
    min_delta: f32,
    /// Known once a fit has begun and named the metrics.
    name: &'static str,
    lower_is_better: bool,
    best: Option<Best>,
}

impl Tracker {
    /// `min_delta` is how much an epoch must improve on the best to count (a magnitude: its sign is ignored).
    pub fn new(monitor: Monitor, min_delta: f32) -> Self {
        Tracker { monitor, min_delta: min_delta.abs(), name: "valid_loss", lower_is_better: true, best: None }
    }

    /// Forgets the best and finds the figure among the fit's. `who` names the callback in errors.
    pub fn before_fit(&mut self, fit: &FitStart, who: &str) -> Result<()> {
        self.best = None;
        self.name = match self.monitor {
            Monitor::ValidLoss => "valid_loss",
            Monitor::Metric(i) => *fit.metric_names.get(i).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{who} watches metric {i}, and the learner has {} metrics",
                    fit.metric_names.len()
                ))
            })?,
        };
        if !fit.validates {
            return Err(Error::InvalidArgument(format!(
                "{who} watches {}, which needs a validation set, and there is none",
                self.name
            )));
        }
        self.lower_is_better = self.name.contains("loss") || self.name.contains("error");
        Ok(())
    }

    /// Takes an epoch's row; whether it is the new best.
    pub fn improved(&mut self, row: &EpochRow) -> bool {
        let value = match self.monitor {
            Monitor::ValidLoss => row.valid_loss,
            Monitor::Metric(i) => row.metrics.get(i).copied().flatten(),
        };
        let Some(value) = value else { return false };
        let better = match (self.best, self.lower_is_better) {
            (None, lower) => {
                if lower {
                    value < f32::INFINITY
                } else {
                    value > f32::NEG_INFINITY
                }
            }
            (Some(best), true) => value + self.min_delta < best.value,
            (Some(best), false) => value - self.min_delta > best.value,
        };
        if better {
            self.best = Some(Best { monitor: self.name, epoch: row.epoch, value });
        }
        better
    }

    pub fn best(&self) -> Option<Best> {
        self.best
    }

    /// The watched figure's name in the table.
    pub fn name(&self) -> &'static str {
        self.name
    }
}
