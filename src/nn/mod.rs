//! Layers. A `Module` maps a batch to a batch and lists its parameters; `Sequential` chains them. Every layer
//! can describe itself as a `LayerSpec`, which is what a model file stores to rebuild it.

mod activation;
mod arch;
mod batchnorm;
mod conv;
mod dropout;
mod init;
mod linear;
mod pool;
mod sequential;
mod spec;

pub use activation::{Flatten, ReLU, Sigmoid};
pub use arch::Arch;
pub use batchnorm::BatchNorm;
pub use conv::Conv2d;
pub use dropout::Dropout;
pub use init::{init_params, kaiming_uniform};
pub use linear::Linear;
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
pub use sequential::Sequential;
pub use spec::LayerSpec;

use crate::Tensor;

pub trait Module {
    fn forward(&self, x: &Tensor) -> Tensor;

    /// Parameters with their PyTorch `state_dict` names (`weight`, `bias`); `Sequential` prefixes `0.`, `1.`, ….
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    /// State that is saved but not trained (BatchNorm's running statistics), named like PyTorch's buffers.
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    fn parameters(&self) -> Vec<Tensor> {
        self.named_parameters().into_iter().map(|(_, p)| p).collect()
    }

    /// Training or evaluation mode (BatchNorm and Dropout behave differently).
    fn set_training(&mut self, _training: bool) {}

    fn spec(&self) -> LayerSpec;

    /// The output shape for one example of `input` shape (no batch axis), or why the layer can't take it.
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String>;
}
