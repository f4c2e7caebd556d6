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

/// `Conv2d → ReLU → MaxPool2d(2)` at the head of `layers`, run as the one fused op that gives the same values and
/// gradients ([`Tensor::conv2d_relu_maxpool2`]).
fn conv_relu_maxpool2(layers: &[Box<dyn Module>], x: &Tensor) -> Option<Tensor> {
    let [conv, relu, pool, ..] = layers else { return None };
    let LayerSpec::Conv2d { stride, padding, .. } = conv.spec() else { return None };
    if relu.spec() != LayerSpec::ReLU || pool.spec() != (LayerSpec::MaxPool2d { kernel_size: 2, stride: 2 }) {
        return None;
    }
    let params = conv.named_parameters();
    let [(_, weight), (_, bias)] = &params[..] else { return None };
    Some(x.conv2d_relu_maxpool2(weight, Some(bias), stride, padding))
}

/// `Linear → ReLU` at the head of `layers`, run as [`Tensor::linear_relu`].
fn linear_relu(layers: &[Box<dyn Module>], x: &Tensor) -> Option<Tensor> {
    let [linear, relu, ..] = layers else { return None };
    if !matches!(linear.spec(), LayerSpec::Linear { .. }) || relu.spec() != LayerSpec::ReLU {
        return None;
    }
    let params = linear.named_parameters();
    let [(_, weight), (_, bias)] = &params[..] else { return None };
    Some(x.linear_relu(weight, Some(bias)))
}

/// The fused op for the layers at the head of `layers`, if they form one, and how many layers it ran.
fn fused_head(layers: &[Box<dyn Module>], x: &Tensor) -> Option<(Tensor, usize)> {
    conv_relu_maxpool2(layers, x).map(|y| (y, 3)).or_else(|| linear_relu(layers, x).map(|y| (y, 2)))
}

impl Module for Sequential {
    fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = x.clone();
        let mut rest = &self.layers[..];
        while let Some((layer, after)) = rest.split_first() {
            if let Some((fused, used)) = fused_head(rest, &h) {
                h = fused;
                rest = &rest[used..];
                continue;
            }
            h = layer.forward(&h);
            rest = after;
        }
        h
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Conv2d, Linear, MaxPool2d, ReLU};
    use crate::rng::Rng;

    #[test]
    fn conv_relu_maxpool_runs_fused_with_the_layers_own_results() {
        let mut rng = Rng::new(3);
        let model = Sequential::default()
            .push(Conv2d::new(2, 4, 3, 1, 1, &mut rng))
            .push(ReLU)
            .push(MaxPool2d { kernel_size: 2, stride: 2 })
            .push(ReLU);
        let x = Tensor::randn(&[2, 2, 6, 6], 1.0, &mut rng).requires_grad_();
        let y = model.forward(&x);
        let by_layer = model.layers.iter().fold(x.clone(), |h, l| l.forward(&h));
        assert_eq!(y.shape(), [2, 4, 3, 3]);
        assert_eq!(y.to_vec(), by_layer.to_vec());
        // The last ReLU runs on its own, after the fused op.
        let head = Sequential::new(model.layers.into_iter().take(3).collect()).forward(&x);
        assert!(format!("{head:?}").contains("ConvReluMaxPoolBackward"), "{head:?}");
        assert!(format!("{y:?}").contains("ReluBackward"), "{y:?}");
    }

    #[test]
    fn linear_relu_runs_fused_with_the_layers_own_results() {
        let mut rng = Rng::new(4);
        let model =
            Sequential::default().push(Linear::new(30, 70, &mut rng)).push(ReLU).push(Linear::new(70, 3, &mut rng));
        let x = Tensor::randn(&[5, 30], 1.0, &mut rng).requires_grad_();
        let y = model.forward(&x);
        let by_layer = model.layers.iter().fold(x.clone(), |h, l| l.forward(&h));
        assert_eq!(y.to_vec(), by_layer.to_vec());
        let head = Sequential::new(model.layers.into_iter().take(2).collect()).forward(&x);
        assert!(format!("{head:?}").contains("LinearReluBackward"), "{head:?}");
    }
}
