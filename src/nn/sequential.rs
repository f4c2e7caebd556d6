//! Layers applied in order, named `0`, `1`, … like PyTorch's `nn.Sequential`.

use super::fuse::fuse_head;
use super::{LayerSpec, Module};
use crate::rng::Rng;
use crate::{Error, Result, Tensor};
use std::any::Any;
use std::ops::Range;
use std::sync::Mutex;

#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
    /// Runs of layers computed as one fused op each, in order (see [`Sequential::fused`]).
    fused: Vec<FusedRun>,
}

struct FusedRun {
    layers: Range<usize>,
    name: &'static str,
    op: Box<dyn Module>,
}

impl Sequential {
    pub fn new(layers: Vec<Box<dyn Module>>) -> Sequential {
        Sequential { layers, fused: Vec::new() }
    }

    pub fn push(mut self, layer: impl Module) -> Sequential {
        self.layers.push(Box::new(layer));
        self.fused.clear();
        self
    }

    pub fn layers(&self) -> &[Box<dyn Module>] {
        &self.layers
    }

    /// The layers, to change: the fusion of [`Sequential::fused`] is undone (run it again after).
    pub fn layers_mut(&mut self) -> &mut Vec<Box<dyn Module>> {
        self.fused.clear();
        &mut self.layers
    }

    /// The same model with each run of built-in layers that has a fused op — `Conv2d → ReLU → MaxPool2d(2)` and
    /// `Linear → ReLU` — computed as that one op from now on ([`super::Conv2dReLUMaxPool2`], [`super::LinearReLU`]):
    /// the same values and gradients bit for bit, with less memory traffic. Layers are recognised by type, so a
    /// layer of your own is never fused; nested `Sequential`s are fused too. The layers themselves, their
    /// parameters, names and saved form do not change. Done once, here: the forward pass only follows the plan.
    pub fn fused(mut self) -> Sequential {
        self.layers = std::mem::take(&mut self.layers).into_iter().map(fuse).collect();
        self.fused.clear();
        let mut start = 0;
        while start < self.layers.len() {
            match fuse_head(&self.layers[start..]) {
                Some(fused) => {
                    let layers = start..start + fused.len;
                    start = layers.end;
                    self.fused.push(FusedRun { layers, name: fused.name, op: fused.op });
                }
                None => start += 1,
            }
        }
        self
    }

    /// The runs of layers that run fused, with the fused layer's name: what [`Sequential::fused`] did.
    pub fn fusions(&self) -> Vec<(Range<usize>, &'static str)> {
        self.fused.iter().map(|r| (r.layers.clone(), r.name)).collect()
    }
}

/// `model` with [`Sequential::fused`] applied if it is a `Sequential` (a model built from a [`LayerSpec`], or read
/// by `model_io::load`); any other module as it is.
pub fn fuse(model: Box<dyn Module>) -> Box<dyn Module> {
    if !(model.as_ref() as &dyn Any).is::<Sequential>() {
        return model;
    }
    match (model as Box<dyn Any>).downcast::<Sequential>() {
        Ok(inner) => Box::new(inner.fused()),
        Err(_) => unreachable!("checked to be a Sequential"),
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = x.clone();
        let mut runs = self.fused.iter().peekable();
        let mut i = 0;
        while i < self.layers.len() {
            match runs.next_if(|r| r.layers.start == i) {
                Some(run) => {
                    h = run.op.forward(&h);
                    i = run.layers.end;
                }
                None => {
                    h = self.layers[i].forward(&h);
                    i += 1;
                }
            }
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

    fn named_rngs(&self) -> Vec<(String, &Mutex<Rng>)> {
        let named = self.layers.iter().enumerate();
        named.flat_map(|(i, l)| l.named_rngs().into_iter().map(move |(n, r)| (format!("{i}.{n}"), r))).collect()
    }

    fn set_training(&mut self, training: bool) {
        // The fused ops hold no mode of their own: only BatchNorm and Dropout do, and they are never fused.
        self.layers.iter_mut().for_each(|l| l.set_training(training));
    }

    /// Every layer's spec, or `None` if one of them doesn't describe itself.
    fn spec(&self) -> Option<LayerSpec> {
        let layers = self.layers.iter().map(|l| l.spec()).collect::<Option<Vec<_>>>()?;
        Some(LayerSpec::Sequential { layers })
    }

    /// Walks the shapes through every layer, so a model that can't take the data fails before training, naming
    /// the layer and both shapes; `None` from the first layer that can't tell.
    fn output_shape(&self, input: &[usize]) -> Option<Result<Vec<usize>>> {
        let mut shape = input.to_vec();
        for (i, layer) in self.layers.iter().enumerate() {
            shape = match layer.output_shape(&shape)? {
                Ok(s) => s,
                Err(e) => return Some(Err(Error::Shape(format!("layer {i}: {e}")))),
            };
        }
        Some(Ok(shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Conv2d, Linear, MaxPool2d, ReLU};
    use crate::rng::Rng;

    /// What the forward pass of `model` records as the last op, e.g. `ConvReluMaxPoolBackward`.
    fn last_op(model: &Sequential, x: &Tensor) -> String {
        format!("{:?}", model.forward(x))
    }

    #[test]
    fn fusion_is_explicit_and_keeps_values_names_and_spec() {
        let mut rng = Rng::new(3);
        let model = Sequential::default()
            .push(Conv2d::new(2, 4, 3, &mut rng).padding(1))
            .push(ReLU)
            .push(MaxPool2d { kernel_size: 2, stride: 2, padding: 0 })
            .push(ReLU)
            .push(crate::nn::Flatten)
            .push(Linear::new(36, 20, &mut rng))
            .push(ReLU);
        let x = Tensor::randn(&[2, 2, 6, 6], 1.0, &mut rng).requires_grad_();
        let (names, spec) = (model.named_parameters().into_iter().map(|(n, _)| n).collect::<Vec<_>>(), model.spec());
        let plain = model.forward(&x).to_vec();
        assert!(model.fusions().is_empty() && last_op(&model, &x).contains("ReluBackward"));
        let fused = model.fused();
        assert_eq!(fused.fusions(), vec![(0..3, "Conv2dReLUMaxPool2"), (5..7, "LinearReLU")]);
        assert!(last_op(&fused, &x).contains("LinearReluBackward"));
        assert_eq!(fused.forward(&x).to_vec(), plain);
        assert_eq!(fused.named_parameters().into_iter().map(|(n, _)| n).collect::<Vec<_>>(), names);
        assert_eq!(fused.spec(), spec);
        // Changing the layers undoes the fusion.
        let mut fused = fused;
        fused.layers_mut().push(Box::new(ReLU));
        assert!(fused.fusions().is_empty());
    }

    /// A layer of a user's own that computes a ReLU, and even describes itself as one, is not fused.
    #[test]
    fn a_users_layer_is_never_fused() {
        struct MyReLU;
        impl Module for MyReLU {
            fn forward(&self, x: &Tensor) -> Tensor {
                x.relu()
            }
            fn spec(&self) -> Option<LayerSpec> {
                Some(LayerSpec::ReLU)
            }
        }
        let mut rng = Rng::new(4);
        let model = Sequential::default().push(Linear::new(30, 70, &mut rng)).push(MyReLU).fused();
        assert!(model.fusions().is_empty());
        let x = Tensor::randn(&[5, 30], 1.0, &mut rng).requires_grad_();
        assert!(last_op(&model, &x).contains("ReluBackward") && !last_op(&model, &x).contains("LinearRelu"));
        // Nested Sequentials are fused too.
        let nested = Sequential::default().push(Sequential::default().push(Linear::new(30, 70, &mut rng)).push(ReLU));
        let nested = nested.fused();
        let inner = (nested.layers()[0].as_ref() as &dyn Any).downcast_ref::<Sequential>().unwrap();
        assert_eq!(inner.fusions(), vec![(0..2, "LinearReLU")]);
    }
}
