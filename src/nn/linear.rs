//! `y = x·Wᵀ + b`, with W stored [out, in] as in PyTorch, so a saved model loads into `nn.Linear`.

use super::{kaiming_uniform, LayerSpec, Module};
use crate::rng::Rng;
use crate::tensor::PackedCache;
use crate::{Error, Result, Tensor};

pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
    /// The weight packed for the forward kernel, repacked whenever its values change.
    packed: PackedCache,
}

impl Linear {
    /// PyTorch's initialisation: weight and bias uniform in ±1/√in_features.
    pub fn new(in_features: usize, out_features: usize, rng: &mut Rng) -> Linear {
        Linear::from_parts(
            kaiming_uniform(&[out_features, in_features], in_features, rng),
            kaiming_uniform(&[out_features], in_features, rng),
        )
    }

    /// A layer over given parameters: weight `[out, in]`, bias `[out]`.
    pub fn from_parts(weight: Tensor, bias: Tensor) -> Linear {
        assert!(
            weight.ndim() == 2 && bias.shape() == [weight.shape()[0]],
            "Linear: weight {:?} and bias {:?} don't fit ([out, in], [out])",
            weight.shape(),
            bias.shape()
        );
        Linear { weight, bias, packed: PackedCache::default() }
    }

    pub fn in_features(&self) -> usize {
        self.weight.shape()[1]
    }

    pub fn out_features(&self) -> usize {
        self.weight.shape()[0]
    }

    /// `Linear(in, out)`, for messages.
    pub(crate) fn name(&self) -> String {
        LayerSpec::Linear { in_features: self.in_features(), out_features: self.out_features() }.to_string()
    }

    /// The forward pass, followed by a ReLU in the same op when `relu` (see [`super::LinearReLU`]).
    pub(crate) fn apply(&self, x: &Tensor, relu: bool) -> Tensor {
        assert!(
            x.ndim() == 2 && x.shape()[1] == self.in_features(),
            "{} got input of shape {:?}",
            self.name(),
            x.shape()
        );
        x.linear_cached(&self.weight, Some(&self.bias), &self.packed, relu)
    }

    pub(crate) fn shape_after(&self, input: &[usize]) -> Result<Vec<usize>> {
        linear_output(self.in_features(), self.out_features(), input)
    }
}

/// The output shape of `Linear(in_features, out_features)` for one example of `input` shape, or why it can't take
/// it: what the layer tells, and what a [`LayerSpec`] is checked with before anything is built.
pub(crate) fn linear_output(in_features: usize, out_features: usize, input: &[usize]) -> Result<Vec<usize>> {
    let name = LayerSpec::Linear { in_features, out_features };
    match input {
        _ if in_features == 0 || out_features == 0 => {
            Err(Error::Shape(format!("{name} needs at least one input and one output feature")))
        }
        [n] if *n == in_features => Ok(vec![out_features]),
        _ => Err(Error::Shape(format!("{name} needs input [{in_features}], got {input:?}"))),
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.apply(x, false)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![("weight".into(), self.weight.clone()), ("bias".into(), self.bias.clone())]
    }

    fn spec(&self) -> Option<LayerSpec> {
        Some(LayerSpec::Linear { in_features: self.in_features(), out_features: self.out_features() })
    }

    fn output_shape(&self, input: &[usize]) -> Option<Result<Vec<usize>>> {
        Some(self.shape_after(input))
    }
}
