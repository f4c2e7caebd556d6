//! A residual block, torchvision's `BasicBlock` (two 3×3 convolutions) or `Bottleneck` (1×1, 3×3, 1×1): the two
//! differ only in their [`BlockShape`], so one type serves both.

use super::layout::{BlockShape, ConvShape};
use crate::nn::{BatchNorm, Conv2d, Module};
use crate::rng::Rng;
use crate::Tensor;

pub(super) struct Block {
    /// `conv1`+`bn1`, `conv2`+`bn2`, …
    main: Vec<(Conv2d, BatchNorm)>,
    /// `downsample.0` (a 1×1 convolution) and `downsample.1` (its BatchNorm), named as in torchvision's
    /// `nn.Sequential`.
    downsample: Option<(Conv2d, BatchNorm)>,
}

/// A convolution without bias initialised as torchvision's ResNets do (`kaiming_normal_`, mode `fan_out`, for
/// ReLU: N(0, 2/(out·k²))), with the BatchNorm that follows it (γ = 1, β = 0).
pub(super) fn conv_bn(c: &ConvShape, rng: &mut Rng) -> (Conv2d, BatchNorm) {
    let std = (2.0 / (c.out * c.kernel * c.kernel) as f32).sqrt();
    let weight = Tensor::randn(&[c.out, c.input, c.kernel, c.kernel], std, rng).requires_grad_();
    (Conv2d::from_weight(weight).stride(c.stride).padding(c.padding), BatchNorm::new(c.out))
}

impl Block {
    pub(super) fn new(shape: &BlockShape, rng: &mut Rng) -> Block {
        let main = shape.main.iter().map(|c| conv_bn(c, rng)).collect();
        let downsample = shape.downsample.map(|c| conv_bn(&c, rng));
        Block { main, downsample }
    }

    /// The layers under their torchvision names, in torchvision's order.
    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut named: Vec<(String, &dyn Module)> = Vec::new();
        for (i, (conv, bn)) in self.main.iter().enumerate() {
            named.push((format!("conv{}", i + 1), conv));
            named.push((format!("bn{}", i + 1), bn));
        }
        if let Some((conv, bn)) = &self.downsample {
            named.push(("downsample.0".to_string(), conv));
            named.push(("downsample.1".to_string(), bn));
        }
        named
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = x.clone();
        for (i, (conv, bn)) in self.main.iter().enumerate() {
            // The last pair's ReLU comes after the residual add.
            h = bn.after_conv(conv, &h, i + 1 < self.main.len());
        }
        let identity = self.downsample.as_ref().map_or_else(|| x.clone(), |(conv, bn)| bn.after_conv(conv, x, false));
        h.add_relu(&identity)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        super::prefixed(self.children(), |m| m.named_parameters())
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        super::prefixed(self.children(), |m| m.named_buffers())
    }

    fn set_training(&mut self, training: bool) {
        for (conv, bn) in &mut self.main {
            conv.set_training(training);
            bn.set_training(training);
        }
        if let Some((conv, bn)) = &mut self.downsample {
            conv.set_training(training);
            bn.set_training(training);
        }
    }
}
