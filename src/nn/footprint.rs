//! How many values training a model holds at the least, counted from its spec before any of them is allocated: an
//! allocation that fails aborts the process, so a size an option chose (an image size, a batch, a hidden width)
//! is checked against memory first.
//!
//! A lower bound: every parameter with its gradient, and per image every layer's output with its gradient. The
//! optimizer's state, unfolded convolution inputs and scratch buffers come on top, so a model that passes may still
//! not fit, but one that fails cannot.

use super::conv::conv_output_shape;
use super::LayerSpec;
use crate::rng::Rng;

/// Counts of f32 values; `usize::MAX` stands for "more than can be counted".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// Weights and buffers: the model file's values.
    pub parameters: usize,
    /// Layer outputs for one image.
    pub activations: usize,
}

impl Footprint {
    /// Bytes for training on batches of `batch` images of `input_values` values each, at the least.
    pub fn training_bytes(&self, batch: usize, input_values: usize) -> usize {
        let per_image = input_values.saturating_add(self.activations.saturating_mul(2));
        let values = self.parameters.saturating_mul(2).saturating_add(batch.saturating_mul(per_image));
        values.saturating_mul(std::mem::size_of::<f32>())
    }
}

impl LayerSpec {
    /// The model's footprint on images of shape `input`, or None if they don't fit it (building the model and
    /// [`crate::learner::LearnerBuilder::build`] say why).
    pub fn footprint(&self, input: &[usize]) -> Option<Footprint> {
        self.walk(input).map(|(footprint, _)| footprint)
    }

    /// The footprint and the output shape.
    fn walk(&self, input: &[usize]) -> Option<(Footprint, Vec<usize>)> {
        let (parameters, output) = match *self {
            LayerSpec::Sequential { ref layers } => {
                let mut total = Footprint { parameters: 0, activations: 0 };
                let mut shape = input.to_vec();
                for layer in layers {
                    let (f, next) = layer.walk(&shape)?;
                    total.parameters = total.parameters.saturating_add(f.parameters);
                    total.activations = total.activations.saturating_add(f.activations);
                    shape = next;
                }
                return Some((total, shape));
            }
            LayerSpec::Linear { in_features, out_features } if input == [in_features] => {
                (in_features.saturating_add(1).saturating_mul(out_features), vec![out_features])
            }
            LayerSpec::Linear { .. } => return None,
            LayerSpec::Conv2d { in_channels, out_channels, kernel_size, stride, padding } => {
                let k2 = kernel_size.saturating_mul(kernel_size);
                let weights = in_channels.saturating_mul(k2).saturating_add(1).saturating_mul(out_channels);
                (weights, conv_output_shape(input, in_channels, out_channels, kernel_size, stride, padding).ok()?)
            }
            LayerSpec::BatchNorm { features } => (features.saturating_mul(4), input.to_vec()),
            // The layers without parameters cost nothing to build, and know their own output shape.
            _ => (0, self.build(&mut Rng::new(0)).output_shape(input)?.ok()?),
        };
        let activations = output.iter().fold(1usize, |n, &d| n.saturating_mul(d));
        Some((Footprint { parameters, activations }, output))
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
        assert_eq!(mlp.footprint(&[1, 28, 28]), Some(Footprint { parameters: 785 * 256 + 257, activations: 1297 }));
        let cnn = Arch::Cnn.spec([1, 28, 28], 10);
        let conv = (9 + 1) * 32 + (32 * 9 + 1) * 64;
        let linear = (64 * 7 * 7 + 1) * 128 + 129 * 10;
        // Conv, ReLU, pool, conv, ReLU, pool, Flatten, Linear, ReLU, Linear.
        let outputs = 2 * 32 * 28 * 28 + 32 * 14 * 14 + 2 * 64 * 14 * 14 + 2 * 64 * 7 * 7 + 2 * 128 + 10;
        assert_eq!(cnn.footprint(&[1, 28, 28]), Some(Footprint { parameters: conv + linear, activations: outputs }));
        assert_eq!(cnn.footprint(&[3, 28, 28]), None);
        // Two values a parameter, two an output (as f32, 4 bytes each), plus the input.
        let f = Footprint { parameters: 10, activations: 3 };
        assert_eq!(f.training_bytes(5, 7), (10 * 2 + 5 * (7 + 3 * 2)) * 4);
        assert_eq!(Footprint { parameters: usize::MAX / 2, activations: 0 }.training_bytes(1, 1), usize::MAX);
    }
}
