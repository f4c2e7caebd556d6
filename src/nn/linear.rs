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
        format!("Linear({}, {})", self.in_features(), self.out_features())
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
        match input {
            [n] if *n == self.in_features() => Ok(vec![self.out_features()]),
            _ => Err(Error::Shape(format!("{} needs input [{}], got {input:?}", self.name(), self.in_features()))),
        }
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
