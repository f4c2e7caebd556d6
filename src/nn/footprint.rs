//! How many values training a model holds at the least, counted from its spec before any of them is allocated: an
//! allocation that fails aborts the process, so a size an option chose (an image size, a batch, a hidden width)
//! is checked against memory first.
//!
//! A lower bound: every parameter with its gradient, and per image every layer's output with its gradient. The
//! optimizer's state, unfolded convolution inputs and scratch buffers come on top, so a model that passes may still
//! not fit, but one that fails cannot.

use super::LayerSpec;
use crate::Result;

/// Counts of f32 values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// Weights and buffers: the model file's values.
    pub parameters: usize,
    /// Layer outputs for one image.
    pub activations: usize,
}

impl Footprint {
    /// Bytes for training on batches of `batch` images of `input_values` values each, at the least (`usize::MAX`
    /// for more than can be counted).
    pub fn training_bytes(&self, batch: usize, input_values: usize) -> usize {
        let per_image = input_values.saturating_add(self.activations.saturating_mul(2));
        let values = self.parameters.saturating_mul(2).saturating_add(batch.saturating_mul(per_image));
        values.saturating_mul(std::mem::size_of::<f32>())
    }
}

impl LayerSpec {
    /// The model's footprint on images of shape `input`, or why it can't take them ([`LayerSpec::shapes`]).
    pub fn footprint(&self, input: &[usize]) -> Result<Footprint> {
        let shapes = self.shapes(input)?;
        let parameters = shapes
            .tensors
            .iter()
            .fold(0usize, |n, (_, shape)| n.saturating_add(shape.iter().fold(1usize, |m, &d| m.saturating_mul(d))));
        Ok(Footprint { parameters, activations: shapes.activations })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Arch;

    #[test]
    fn counts_the_parameters_and_outputs_of_each_layer() {
        let mlp = Arch::Mlp(vec![256]).spec([1, 28, 28], 1);
        // Flatten 784, Linear 784→256, ReLU 256, Linear 256→1.
        let want = Footprint { parameters: 785 * 256 + 257, activations: 1297 };
        assert_eq!(mlp.footprint(&[1, 28, 28]).unwrap(), want);
        let cnn = Arch::Cnn.spec([1, 28, 28], 10);
        let conv = (9 + 1) * 32 + (32 * 9 + 1) * 64;
        let linear = (64 * 7 * 7 + 1) * 128 + 129 * 10;
        // Conv, ReLU, pool, conv, ReLU, pool, Flatten, Linear, ReLU, Linear.
        let outputs = 2 * 32 * 28 * 28 + 32 * 14 * 14 + 2 * 64 * 14 * 14 + 2 * 64 * 7 * 7 + 2 * 128 + 10;
        let want = Footprint { parameters: conv + linear, activations: outputs };
        assert_eq!(cnn.footprint(&[1, 28, 28]).unwrap(), want);
        assert!(cnn.footprint(&[3, 28, 28]).is_err());
        // Two values a parameter, two an output (as f32, 4 bytes each), plus the input.
        let f = Footprint { parameters: 10, activations: 3 };
        assert_eq!(f.training_bytes(5, 7), (10 * 2 + 5 * (7 + 3 * 2)) * 4);
        assert_eq!(Footprint { parameters: usize::MAX / 2, activations: 0 }.training_bytes(1, 1), usize::MAX);
    }
}
