//! Parameter-free layers.

use super::{LayerSpec, Module};
use crate::Tensor;

pub struct ReLU;
pub struct Sigmoid;
/// [N, ...] → [N, rest].
pub struct Flatten;

impl Module for ReLU {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.relu()
    }
    fn spec(&self) -> LayerSpec {
        LayerSpec::ReLU
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(input.to_vec())
    }
}

impl Module for Sigmoid {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.sigmoid()
    }
    fn spec(&self) -> LayerSpec {
        LayerSpec::Sigmoid
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(input.to_vec())
    }
}

impl Module for Flatten {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.flatten()
    }
    fn spec(&self) -> LayerSpec {
        LayerSpec::Flatten
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(vec![input.iter().product()])
    }
}
