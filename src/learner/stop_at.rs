//! The post's wished-for stop condition: end the fit once the first metric reaches a goal.

use super::{Callback, EpochRow, FitStart};
use crate::nn::Module;
use crate::{Error, Result};
use std::ops::ControlFlow;

pub struct StopAtCallback {
    goal: f32,
    /// The first metric's name, once a fit has begun.
    metric: &'static str,
}

impl StopAtCallback {
    pub fn new(goal: f32) -> Self {
        StopAtCallback { goal, metric: "" }
    }
}

impl Callback for StopAtCallback {
    fn before_fit(&mut self, fit: &FitStart) -> Result<()> {
        self.metric = fit.metric_names.first().copied().ok_or_else(|| {
            Error::InvalidArgument("stop_at watches the first metric, and the learner has none".into())
        })?;
        Ok(())
    }

    fn after_epoch(&mut self, row: &EpochRow, _model: &dyn Module) -> ControlFlow<String> {
        match row.metrics.first() {
            Some(Some(m)) if *m >= self.goal => {
                ControlFlow::Break(format!("stopping: {} reached {}", self.metric, self.goal))
            }
            _ => ControlFlow::Continue(()),
        }
    }
}
