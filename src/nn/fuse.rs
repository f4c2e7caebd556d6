//! Fused layers: a run of built-in layers computed as one op, with the same values and gradients bit for bit.
//! [`super::Sequential::fused`] puts them in place of the runs it finds; they can also be used on their own.
//!
//! Fusion keeps a layer's intermediate result out of memory: `Conv2d → ReLU → MaxPool2d(2)` never stores the
//! convolution's full-size output (four times the pooled one) except one group of images at a time, in cache, and
//! `Linear → ReLU` applies the ReLU to the sums in registers instead of in a second pass over the output.

use super::{Conv2d, Linear, MaxPool2d, Module, ReLU};
use crate::{Result, Tensor};
use std::any::Any;

/// `Linear` then `ReLU`, as [`Tensor::linear_relu`]. Shares the Linear layer's parameters.
pub struct LinearReLU(Linear);

impl LinearReLU {
    pub fn new(linear: &Linear) -> LinearReLU {
        LinearReLU(Linear::from_parts(linear.weight.clone(), linear.bias.clone()))
    }
}

impl Module for LinearReLU {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.0.apply(x, true)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        self.0.named_parameters()
    }

    fn output_shape(&self, input: &[usize]) -> Option<Result<Vec<usize>>> {
        Some(self.0.shape_after(input))
    }
}

/// `Conv2d` then `ReLU` then `MaxPool2d(2)`, as [`Tensor::conv2d_relu_maxpool2`]. Shares the Conv2d layer's
/// parameters.
pub struct Conv2dReLUMaxPool2(Conv2d);

impl Conv2dReLUMaxPool2 {
    pub fn new(conv: &Conv2d) -> Conv2dReLUMaxPool2 {
        Conv2dReLUMaxPool2(Conv2d {
            weight: conv.weight.clone(),
            bias: conv.bias.clone(),
            stride: conv.stride,
            padding: conv.padding,
        })
    }
}

impl Module for Conv2dReLUMaxPool2 {
    fn forward(&self, x: &Tensor) -> Tensor {
        let c = &self.0;
        x.conv2d_relu_maxpool2(&c.weight, c.bias.as_ref(), c.stride, c.padding)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        self.0.named_parameters()
    }

    fn output_shape(&self, input: &[usize]) -> Option<Result<Vec<usize>>> {
        Some(self.0.shape_after(input).map(|s| vec![s[0], s[1] / 2, s[2] / 2]))
    }
}

/// A fused layer standing for `len` layers.
pub(super) struct Fused {
    pub op: Box<dyn Module>,
    pub len: usize,
    pub name: &'static str,
}

/// The fused layer for the run of layers at the head of `layers`, if they form one. Layers are recognised by their
/// type: a layer of another type never matches, whatever it computes.
pub(super) fn fuse_head(layers: &[Box<dyn Module>]) -> Option<Fused> {
    let at = |i: usize| layers.get(i).map(|l| l.as_ref() as &dyn Any);
    let relu_at = |i| at(i).is_some_and(|l| l.is::<ReLU>());
    if let Some(conv) = at(0).and_then(|l| l.downcast_ref::<Conv2d>()) {
        let pool = at(2).and_then(|l| l.downcast_ref::<MaxPool2d>());
        if relu_at(1) && pool.is_some_and(|p| (p.kernel_size, p.stride, p.padding) == (2, 2, 0)) {
            return Some(Fused { op: Box::new(Conv2dReLUMaxPool2::new(conv)), len: 3, name: "Conv2dReLUMaxPool2" });
        }
    }
    let linear = at(0)?.downcast_ref::<Linear>()?;
    relu_at(1).then(|| Fused { op: Box::new(LinearReLU::new(linear)), len: 2, name: "LinearReLU" })
}
