//! Pooling layers (no parameters).

use super::{LayerSpec, Module};
use crate::{Error, Result, Tensor};

pub struct MaxPool2d {
    pub kernel_size: usize,
    pub stride: usize,
    /// Padding on every side, which no window's maximum ever takes (PyTorch's: at most half the kernel).
    pub padding: usize,
}

pub struct AvgPool2d {
    pub kernel_size: usize,
    pub stride: usize,
}

/// Average over all positions: `[C, H, W]` → `[C]` (PyTorch's `AdaptiveAvgPool2d(1)` + `Flatten`).
pub struct AdaptiveAvgPool2d;

/// The output shape of a `k`×`k` pool with stride `s` and padding `p`, or why it can't take `input`: what the
/// layers tell, and what a [`LayerSpec`] is checked with before anything is built.
pub(crate) fn pooled(input: &[usize], k: usize, s: usize, p: usize, name: &str) -> Result<Vec<usize>> {
    // p ≤ k/2 keeps `p` far below overflow, and every window holding an element of the image.
    let least = k.saturating_sub(2 * p);
    match *input {
        _ if k == 0 || s == 0 => {
            Err(Error::Shape(format!("{name}(kernel {k}, stride {s}) needs kernel size and stride of at least 1")))
        }
        _ if p > k / 2 => Err(Error::Shape(format!("{name}(kernel {k}) takes padding of at most {}, got {p}", k / 2))),
        [c, h, w] if h >= least && w >= least => Ok(vec![c, (h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1]),
        _ => Err(Error::Shape(format!(
            "{name}({k}) needs input [channels, height, width] of at least {least}x{least}, got {input:?}"
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
        x.max_pool2d(self.kernel_size, self.stride, self.padding)
    }
    fn spec(&self) -> Option<LayerSpec> {
        Some(LayerSpec::MaxPool2d { kernel_size: self.kernel_size, stride: self.stride, padding: self.padding })
    }
    fn output_shape(&self, input: &[usize]) -> Option<Result<Vec<usize>>> {
        Some(pooled(input, self.kernel_size, self.stride, self.padding, "MaxPool2d"))
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
        Some(pooled(input, self.kernel_size, self.stride, 0, "AvgPool2d"))
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
