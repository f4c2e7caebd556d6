//! The post's training loop by its own names. `Learner::fit` is built from the same pieces.

use crate::data::{DataLoader, Inputs, Targets};
use crate::tensor::{no_grad, Tensor};

/// The model as the post writes it: any function from a batch to predictions (`linear1`, or a module's forward).
pub type Model<'a> = &'a dyn Fn(&Tensor) -> Tensor;
pub type LossFn = fn(&Tensor, &Tensor) -> Tensor;

/// Predictions, loss, and gradients for one batch; returns the loss.
pub fn calc_grad(xb: &Tensor, yb: &Tensor, model: Model, loss: LossFn) -> Tensor {
    let preds = model(xb);
    let l = loss(&preds, yb);
    l.backward();
    l
}

/// One pass over the data: a gradient-descent step (`gd_step`) after each batch.
pub fn train_epoch(model: Model, lr: f32, params: &[Tensor], dl: &DataLoader, epoch: usize, scale: f32, loss: LossFn) {
    for batch in dl.batches(epoch) {
        let (xb, yb) = batch.into_xy(&Inputs::Scaled(scale), Targets::Binary);
        calc_grad(&xb, &yb, model, loss);
        gd_step(params, lr);
    }
}

/// The post's update, `for p in params: p.data -= p.grad*lr; p.grad.zero_()`.
pub fn gd_step(params: &[Tensor], lr: f32) {
    for p in params {
        let Some(g) = p.grad() else { continue };
        p.data_mut().iter_mut().zip(g.data().iter()).for_each(|(p, g)| *p -= g * lr);
        p.zero_grad();
    }
}

/// The post's `validate_epoch`: the mean of per-batch accuracies, rounded to 4 digits. (A short last batch weighs
/// as much as a full one; `Learner` counts per image instead.)
pub fn validate_epoch(model: Model, dl: &DataLoader, scale: f32, metric: LossFn) -> f32 {
    let _g = no_grad();
    let accs: Vec<Tensor> = dl
        .batches(0)
        .map(|b| {
            let (xb, yb) = b.into_xy(&Inputs::Scaled(scale), Targets::Binary);
            metric(&model(&xb), &yb)
        })
        .collect();
    (Tensor::stack(&accs, 0).mean().item() * 1e4).round() / 1e4
}
