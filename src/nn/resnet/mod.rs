//! torchvision's ResNets, layer for layer and name for name (`conv1`, `bn1`, `layer1.0.conv1`, …,
//! `layer2.0.downsample.0`, `fc`), so that a torchvision `state_dict` saved as safetensors loads into one as it is
//! ([`crate::model_io::load_weights`]) and a crest ResNet's weights load into torchvision's.
//!
//! torchvision's BatchNorms also keep `num_batches_tracked`, which PyTorch only reads when `momentum` is `None` (a
//! cumulative average crest does not offer): crest keeps no such buffer. Its files lack those keys, and PyTorch's
//! BatchNorm fills them in when a plain dict lacks them, so `load_state_dict` takes crest's files strictly
//! (bench/torch_resnet_check.py); a reader of torchvision's files skips them ([`crate::model_io::load_weights`]
//! ignores tensors the model doesn't name).

mod block;
mod layout;

pub(crate) use layout::{plan, BlockShape, ConvShape, Plan};
pub use layout::{DEPTHS, MIN_SIZE};

use super::{BatchNorm, Conv2d, LayerSpec, Linear, Module, Sequential};
use crate::rng::Rng;
use crate::{Result, Tensor};
use block::{conv_bn, Block};

pub struct ResNet {
    depth: usize,
    width: usize,
    conv1: Conv2d,
    bn1: BatchNorm,
    /// `layer1` … `layer4`, each a `Sequential` of blocks, as in torchvision.
    layers: Vec<Sequential>,
    fc: Linear,
}

impl ResNet {
    /// torchvision's `resnet{depth}(num_classes=classes)` (depth 18, 34 or 50) for images of `in_channels`
    /// channels, initialised as torchvision does, or why there is none.
    ///
    /// ```
    /// # let mut rng = crest::rng::Rng::new(0);
    /// let net = crest::nn::ResNet::new(18, 3, 10, &mut rng).unwrap();
    /// assert_eq!(net.named_parameters()[0].0, "conv1.weight");
    /// # use crest::nn::Module;
    /// ```
    pub fn new(depth: usize, in_channels: usize, classes: usize, rng: &mut Rng) -> Result<ResNet> {
        ResNet::with_width(depth, in_channels, classes, 64, rng)
    }

    /// [`ResNet::new`] with `width` channels after the stem instead of torchvision's 64 (stage `i` has
    /// `width·2^i` planes): the same layers and names, narrower.
    pub fn with_width(depth: usize, in_channels: usize, classes: usize, width: usize, rng: &mut Rng) -> Result<ResNet> {
        let spec = LayerSpec::ResNet { depth, in_channels, classes, width };
        // Every number is checked once, the spec's way, on the smallest image it takes.
        spec.shapes(&[in_channels, MIN_SIZE, MIN_SIZE])?;
        Ok(ResNet::build(&plan(depth, in_channels, width)?, depth, width, classes, rng))
    }

    /// The network `plan` describes: called with a plan whose spec has passed [`LayerSpec::shapes`].
    pub(crate) fn build(plan: &Plan, depth: usize, width: usize, classes: usize, rng: &mut Rng) -> ResNet {
        let (conv1, bn1) = conv_bn(&plan.stem, rng);
        let stage = |blocks: &Vec<BlockShape>, rng: &mut Rng| {
            Sequential::new(blocks.iter().map(|b| Box::new(Block::new(b, rng)) as Box<dyn Module>).collect())
        };
        let layers = plan.stages.iter().map(|blocks| stage(blocks, rng)).collect();
        ResNet { depth, width, conv1, bn1, layers, fc: Linear::new(plan.features, classes, rng) }
    }

    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The first convolution, `conv1`: the layer whose input channels follow the images'.
    pub fn conv1(&self) -> &Conv2d {
        &self.conv1
    }

    /// The layers under their torchvision names, in torchvision's order.
    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut named: Vec<(String, &dyn Module)> = vec![("conv1".into(), &self.conv1), ("bn1".into(), &self.bn1)];
        named.extend(self.layers.iter().enumerate().map(|(i, l)| (format!("layer{}", i + 1), l as &dyn Module)));
        named.push(("fc".into(), &self.fc));
        named
    }
}

/// Each child's tensors under `child.`.
fn prefixed(
    children: Vec<(String, &dyn Module)>,
    tensors: impl Fn(&dyn Module) -> Vec<(String, Tensor)>,
) -> Vec<(String, Tensor)> {
    let mut named = Vec::new();
    for (child, m) in children {
        named.extend(tensors(m).into_iter().map(|(n, t)| (format!("{child}.{n}"), t)));
    }
    named
}

impl Module for ResNet {
    fn forward(&self, x: &Tensor) -> Tensor {
        let stem = self.bn1.after_conv(&self.conv1, x, true).max_pool2d(3, 2, 1);
        let features = self.layers.iter().fold(stem, |h, layer| layer.forward(&h));
        self.fc.forward(&features.global_avg_pool2d())
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        prefixed(self.children(), |m| m.named_parameters())
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        prefixed(self.children(), |m| m.named_buffers())
    }

    fn set_training(&mut self, training: bool) {
        self.bn1.set_training(training);
        self.layers.iter_mut().for_each(|l| l.set_training(training));
    }

    fn spec(&self) -> Option<LayerSpec> {
        let in_channels = self.conv1.weight.shape()[1];
        let classes = self.fc.out_features();
        Some(LayerSpec::ResNet { depth: self.depth, in_channels, classes, width: self.width })
    }

    fn output_shape(&self, input: &[usize]) -> Option<Result<Vec<usize>>> {
        Some(self.spec()?.shapes(input).map(|s| s.output))
    }
}
