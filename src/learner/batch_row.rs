//! The per-batch log: what the report draws the loss and learning-rate curves from, batch by batch.

/// One training batch, as `Learner::fit` trained it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchRow {
    /// The epoch's number, as in the table.
    pub epoch: usize,
    /// The batch's index within its epoch.
    pub batch: usize,
    /// The batch's mean loss, before the optimizer's step.
    pub loss: f32,
    /// The learning rate the step was taken at (the schedule's value for this batch).
    pub lr: f32,
}
