//! Gradient checking: autograd's gradients against central finite differences. Used by the tests of every op,
//! and handy for checking an op of your own.

use super::{no_grad, Tensor};

/// The largest relative error between the autograd gradient of `f(inputs)` (a scalar) and finite differences,
/// over every element of every input. Inputs must be leaves that require grad.
pub fn max_grad_error(f: impl Fn(&[Tensor]) -> Tensor, inputs: &[Tensor], eps: f32) -> f32 {
    inputs.iter().for_each(Tensor::zero_grad);
    f(inputs).backward();
    let mut worst = 0.0f32;
    for x in inputs {
        let analytic = x.grad().map(|g| g.to_vec()).unwrap_or_else(|| vec![0.0; x.numel()]);
        for (i, &a) in analytic.iter().enumerate() {
            let _guard = no_grad();
            let orig = x.data()[i];
            x.data_mut()[i] = orig + eps;
            let up = f(inputs).item() as f64;
            x.data_mut()[i] = orig - eps;
            let down = f(inputs).item() as f64;
            x.data_mut()[i] = orig;
            let numeric = ((up - down) / (2.0 * eps as f64)) as f32;
            let err = (a - numeric).abs() / (a.abs().max(numeric.abs()).max(1e-2));
            worst = worst.max(err);
        }
    }
    worst
}
