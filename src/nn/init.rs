//! PyTorch's default initialisation, so that crest's models start where PyTorch's do.

use crate::rng::Rng;
use crate::Tensor;

/// `kaiming_uniform_(a=√5)` as `nn.Linear` and `nn.Conv2d` use it: U(-1/√fan_in, 1/√fan_in). The bias uses the
/// same bound, so this serves both.
pub fn kaiming_uniform(shape: &[usize], fan_in: usize, rng: &mut Rng) -> Tensor {
    let bound = 1.0 / (fan_in as f32).sqrt();
    Tensor::rand_uniform(shape, -bound, bound, rng).requires_grad_()
}

/// The post's `init_params`: `(torch.randn(size)*std).requires_grad_()`.
pub fn init_params(shape: &[usize], std: f32, rng: &mut Rng) -> Tensor {
    Tensor::randn(shape, std, rng).requires_grad_()
}
