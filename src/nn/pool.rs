//! Pooling layers (no parameters).

use super::{LayerSpec, Module};
use crate::{Error, Result, Tensor};

pub struct MaxPool2d {
    pub kernel_size: usize,
    pub stride: usize,
}

pub struct AvgPool2d {
    pub kernel_size: usize,
    pub stride: usize,
}

/// Average over all positions: `[C, H, W]` → `[C]` (PyTorch's `AdaptiveAvgPool2d(1)` + `Flatten`).
pub struct AdaptiveAvgPool2d;

/// The output shape of a `k`×`k` pool with stride `s`, or why it can't take `input`: what the layers tell, and what
/// a [`LayerSpec`] is checked with before anything is built.
pub(crate) fn pooled(input: &[usize], k: usize, s: usize, name: &str) -> Result<Vec<usize>> {
    match *input {
        _ if k == 0 || s == 0 => {
            Err(Error::Shape(format!("{name}(kernel {k}, stride {s}) needs kernel size and stride of at least 1")))
        }
        [c, h, w] if h >= k && w >= k => Ok(vec![c, (h - k) / s + 1, (w - k) / s + 1]),
        _ => Err(Error::Shape(format!(
            "{name}({k}) needs input [channels, height, width] of at least {k}x{k}, got {input:?}"
        ))),
    }
}

/// `[C, H, W]` → `[C]`, or why `input` has no such shape.
pub(crate) fn averaged_over_positions(input: &[usize]) -> Result<Vec<usize>> {
    match *input {
        [c, _, _] => Ok(vec![c]),
        _ => Err(Error::Shape(format!("AdaptiveAvgPool2d needs input [channels, height, width], got {input:?}"))),
    }
}

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.max_pool2d(self.kernel_size, self.stride, 0)
    }
    fn spec(&self) -> Option<LayerSpec> {
        Some(LayerSpec::MaxPool2d { kernel_size: self.kernel_size, stride: self.stride })
    }
    fn output_shape(&self, input: &[usize]) -> Option<Result<Vec<usize>>> {
        Some(pooled(input, self.kernel_size, self.stride, "MaxPool2d"))
    }
}

impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.avg_pool2d(self.kernel_size, self.stride, 0)
    }
    fn spec(&self) -> Option<LayerSpec> {
        Some(LayerSpec::AvgPool2d { kernel_size: self.kernel_size, stride: self.stride })
    }
    fn output_shape(&self, input: &[usize]) -> Option<Result<Vec<usize>>> {
        Some(pooled(input, self.kernel_size, self.stride, "AvgPool2d"))
    }
}

impl Module for AdaptiveAvgPool2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.global_avg_pool2d()
    }
    fn spec(&self) -> Option<LayerSpec> {
        Some(LayerSpec::AdaptiveAvgPool2d)
    }
    fn output_shape(&self, input: &[usize]) -> Option<Result<Vec<usize>>> {
        Some(averaged_over_positions(input))
    }
}
