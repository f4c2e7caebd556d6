//! Layers applied in order, named `0`, `1`, … like PyTorch's `nn.Sequential`.

use super::{LayerSpec, Module};
use crate::Tensor;

#[derive(Default)]
pub struct Sequential {
    pub layers: Vec<Box<dyn Module>>,
}

impl Sequential {
    pub fn new(layers: Vec<Box<dyn Module>>) -> Sequential {
        Sequential { layers }
    }

    pub fn push(mut self, layer: impl Module + 'static) -> Sequential {
        self.layers.push(Box::new(layer));
        self
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.layers.iter().fold(x.clone(), |h, layer| layer.forward(&h))
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let named = self.layers.iter().enumerate();
        named.flat_map(|(i, l)| l.named_parameters().into_iter().map(move |(n, p)| (format!("{i}.{n}"), p))).collect()
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let named = self.layers.iter().enumerate();
        named.flat_map(|(i, l)| l.named_buffers().into_iter().map(move |(n, p)| (format!("{i}.{n}"), p))).collect()
    }

    fn set_training(&mut self, training: bool) {
        self.layers.iter_mut().for_each(|l| l.set_training(training));
    }

    fn spec(&self) -> LayerSpec {
        LayerSpec::Sequential { layers: self.layers.iter().map(|l| l.spec()).collect() }
    }

    /// Walks the shapes through every layer, so a model that can't take the data fails before training, naming
    /// the layer and both shapes.
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        self.layers
            .iter()
            .enumerate()
            .try_fold(input.to_vec(), |shape, (i, l)| l.output_shape(&shape).map_err(|e| format!("layer {i}: {e}")))
    }
}
