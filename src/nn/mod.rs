//! Layers. A `Module` maps a batch to a batch and lists its parameters; `Sequential` chains them, and
//! [`Sequential::fused`] rewrites runs of built-in layers into fused ops once, before training or inference.
//!
//! The trait is open: a layer of your own implements `forward` (and `named_parameters` if it has any) and trains
//! in a `Learner` like any built-in one. Describing itself as a [`LayerSpec`], which a model file stores to rebuild
//! the model, is optional; so is telling its output shape without running.

mod activation;
mod arch;
mod batchnorm;
mod conv;
mod dropout;
mod first_layer;
mod footprint;
mod fuse;
mod init;
mod linear;
mod pool;
pub mod resnet;
mod sequential;
mod spec;
mod spec_shapes;
mod transfer;

pub use activation::{Flatten, ReLU, Sigmoid};
pub use arch::Arch;
pub use batchnorm::BatchNorm;
pub use conv::Conv2d;
pub use dropout::Dropout;
pub use first_layer::adapt_first_layer;
pub use footprint::Footprint;
pub use fuse::{Conv2dReLUMaxPool2, LinearReLU};
pub use init::{init_params, kaiming_uniform};
pub use linear::Linear;
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
pub use resnet::ResNet;
pub use sequential::{fuse, Sequential};
pub use spec::LayerSpec;
pub use spec_shapes::{SpecShapes, MAX_VALUES_PER_EXAMPLE, MAX_WORK_PER_EXAMPLE};
pub use transfer::transfer;

use crate::rng::Rng;
use crate::{Result, Tensor};
use std::sync::Mutex;

/// A layer or a model. `Send + Sync`, so a model can move to another thread and serve several threads at once;
/// `'static` (through `Any`), so an explicit step such as fusion can recognise crest's own layers by their type
/// and never mistake a user's layer for one of them.
pub trait Module: std::any::Any + Send + Sync {
    fn forward(&self, x: &Tensor) -> Tensor;

    /// Parameters with their PyTorch `state_dict` names (`weight`, `bias`); `Sequential` prefixes `0.`, `1.`, ….
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    /// State that is saved but not trained (BatchNorm's running statistics), named like PyTorch's buffers.
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    /// The random generators training draws from (Dropout's masks), named like parameters: state that is neither
    /// trained nor saved in a model file, but that a checkpoint and `lr_find` keep so that the next epoch draws
    /// what it would have drawn.
    fn named_rngs(&self) -> Vec<(String, &Mutex<Rng>)> {
        Vec::new()
    }

    fn parameters(&self) -> Vec<Tensor> {
        self.named_parameters().into_iter().map(|(_, p)| p).collect()
    }

    /// Training or evaluation mode (BatchNorm and Dropout behave differently).
    fn set_training(&mut self, _training: bool) {}

    /// How a model file describes this layer, so that `crest predict` can rebuild it. `None` (the default): the
    /// layer doesn't describe itself, and a model holding it saves its weights only
    /// ([`crate::model_io::save_weights`]).
    fn spec(&self) -> Option<LayerSpec> {
        None
    }

    /// The output shape for one example of `input` shape (no batch axis), or why the layer can't take it — when
    /// the layer can tell without running. `None` (the default): it can't, and a caller that needs the shape (the
    /// `Learner`, checking the model against the data) runs a forward pass instead.
    fn output_shape(&self, _input: &[usize]) -> Option<Result<Vec<usize>>> {
        None
    }

    /// The layer's Rust type, to name it in messages about a layer of your own, which has no other name.
    fn type_name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
}
