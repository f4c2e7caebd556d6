//! `y = x·Wᵀ + b`, with W stored [out, in] as in PyTorch, so a saved model loads into `nn.Linear`.

use super::{kaiming_uniform, LayerSpec, Module};
use crate::rng::Rng;
use crate::Tensor;

pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Linear {
    pub fn new(in_features: usize, out_features: usize, rng: &mut Rng) -> Linear {
        Linear {
            weight: kaiming_uniform(&[out_features, in_features], in_features, rng),
            bias: kaiming_uniform(&[out_features], in_features, rng),
        }
    }

    pub fn in_features(&self) -> usize {
        self.weight.shape()[1]
    }

    pub fn out_features(&self) -> usize {
        self.weight.shape()[0]
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Tensor {
        assert!(
            x.ndim() == 2 && x.shape()[1] == self.in_features(),
            "Linear({}, {}) got input of shape {:?}",
            self.in_features(),
            self.out_features(),
            x.shape()
        );
        x.linear(&self.weight, Some(&self.bias))
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![("weight".into(), self.weight.clone()), ("bias".into(), self.bias.clone())]
    }

    fn spec(&self) -> LayerSpec {
        LayerSpec::Linear { in_features: self.in_features(), out_features: self.out_features() }
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        match input {
            [n] if *n == self.in_features() => Ok(vec![self.out_features()]),
            _ => Err(format!(
                "Linear({}, {}) needs input [{}], got {:?}",
                self.in_features(),
                self.out_features(),
                self.in_features(),
                input
            )),
        }
    }
}
