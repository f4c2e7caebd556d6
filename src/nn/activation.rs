//! Parameter-free layers.

use super::{LayerSpec, Module};
use crate::{Error, Result, Tensor};

pub struct ReLU;
pub struct Sigmoid;
/// [N, ...] → [N, rest].
pub struct Flatten;

impl Module for ReLU {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.relu()
    }
    fn spec(&self) -> Option<LayerSpec> {
        Some(LayerSpec::ReLU)
    }
    fn output_shape(&self, input: &[usize]) -> Option<Result<Vec<usize>>> {
        Some(Ok(input.to_vec()))
    }
}

impl Module for Sigmoid {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.sigmoid()
    }
    fn spec(&self) -> Option<LayerSpec> {
        Some(LayerSpec::Sigmoid)
    }
    fn output_shape(&self, input: &[usize]) -> Option<Result<Vec<usize>>> {
        Some(Ok(input.to_vec()))
    }
}

impl Module for Flatten {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.flatten()
    }
    fn spec(&self) -> Option<LayerSpec> {
        Some(LayerSpec::Flatten)
    }
    fn output_shape(&self, input: &[usize]) -> Option<Result<Vec<usize>>> {
        Some(flattened(input))
    }
}

/// `[...]` → `[product]`, or why the product is no size at all.
pub(crate) fn flattened(input: &[usize]) -> Result<Vec<usize>> {
    match input.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) {
        Some(n) => Ok(vec![n]),
        None => Err(Error::Shape(format!("Flatten: input {input:?} holds more values than a machine can"))),
    }
}
