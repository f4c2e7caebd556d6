//! `BatchNorm1d` / `BatchNorm2d` in one layer: per-channel normalisation of [N, C] or [N, C, H, W], with running
//! statistics (saved in the model file) used in evaluation.

use super::{Conv2d, LayerSpec, Module};
use crate::tensor::kernels::batchnorm::{affine, eval_invstd};
use crate::tensor::{is_grad_enabled, BatchNormState};
use crate::{Error, Result, Tensor};

pub struct BatchNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub momentum: f32,
    pub eps: f32,
    training: bool,
}

impl BatchNorm {
    /// PyTorch's default eps, and the one a model file's BatchNorm has: its [`LayerSpec`] stores no other.
    pub const EPS: f32 = 1e-5;

    /// PyTorch's defaults: γ = 1, β = 0, momentum 0.1, eps [`BatchNorm::EPS`].
    pub fn new(features: usize) -> BatchNorm {
        BatchNorm {
            weight: Tensor::ones(&[features]).requires_grad_(),
            bias: Tensor::zeros(&[features]).requires_grad_(),
            running_mean: Tensor::zeros(&[features]),
            running_var: Tensor::ones(&[features]),
            momentum: 0.1,
            eps: BatchNorm::EPS,
            training: true,
        }
    }

    fn state(&self) -> BatchNormState<'_> {
        BatchNormState {
            gamma: &self.weight,
            beta: &self.bias,
            running_mean: &self.running_mean,
            running_var: &self.running_var,
            momentum: self.momentum,
            eps: self.eps,
        }
    }

    /// `self.forward(&conv.forward(x))`, then a ReLU if `relu`. In evaluation without gradients the normalisation
    /// is an affine map with constant coefficients, so it is folded into the convolution, as PyTorch's
    /// `fuse_conv_bn_eval` does: weights scaled per output channel by γ/σ, bias β − μ·γ/σ + b·γ/σ; and the ReLU is
    /// the convolution's ([`Tensor::conv2d_relu`]). One pass over the output instead of three, equal to the
    /// layers up to rounding. In training the ReLU is the batch norm's ([`Tensor::batch_norm_relu_train`]).
    pub fn after_conv(&self, conv: &Conv2d, x: &Tensor, relu: bool) -> Tensor {
        if self.training && relu {
            return conv.forward(x).batch_norm_relu_train(&self.state());
        }
        if self.training || is_grad_enabled() {
            let y = self.forward(&conv.forward(x));
            return if relu { y.relu() } else { y };
        }
        let invstd = eval_invstd(&self.running_var.data(), self.eps);
        let (scale, mut shift) = affine(&self.weight.data(), &self.bias.data(), &self.running_mean.data(), &invstd);
        if let Some(b) = &conv.bias {
            shift.iter_mut().zip(b.data().iter()).zip(&scale).for_each(|((t, &b), &a)| *t += b * a);
        }
        let w = conv.weight.data();
        let per_out = w.len() / scale.len().max(1);
        let weight =
            w.chunks_exact(per_out).zip(&scale).flat_map(|(row, &a)| row.iter().map(move |&v| v * a)).collect();
        let weight = Tensor::from_vec(weight, conv.weight.shape());
        let bias = Tensor::from_vec(shift, &[scale.len()]);
        if relu {
            x.conv2d_relu(&weight, Some(&bias), conv.stride, conv.padding)
        } else {
            x.conv2d(&weight, Some(&bias), conv.stride, conv.padding)
        }
    }
}

impl Module for BatchNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        let st = self.state();
        if self.training {
            x.batch_norm_train(&st)
        } else {
            x.batch_norm_eval(&st)
        }
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![("weight".into(), self.weight.clone()), ("bias".into(), self.bias.clone())]
    }

    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        vec![("running_mean".into(), self.running_mean.clone()), ("running_var".into(), self.running_var.clone())]
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    fn spec(&self) -> Option<LayerSpec> {
        Some(LayerSpec::BatchNorm { features: self.weight.numel() })
    }

    fn output_shape(&self, input: &[usize]) -> Option<Result<Vec<usize>>> {
        Some(batchnorm_output(self.weight.numel(), input))
    }
}

/// BatchNorm over `c` channels keeps the shape of an `input` it can take: what the layer tells, and what a
/// [`LayerSpec`] is checked with before anything is built.
pub(crate) fn batchnorm_output(c: usize, input: &[usize]) -> Result<Vec<usize>> {
    match input.first() {
        _ if c == 0 => Err(Error::Shape("BatchNorm(0) has no channels to normalise".into())),
        Some(&ch) if ch == c && (input.len() == 1 || input.len() == 3) => Ok(input.to_vec()),
        _ => Err(Error::Shape(format!("BatchNorm({c}) needs input [{c}] or [{c}, height, width], got {input:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_updates_running_statistics_and_eval_uses_them() {
        let mut bn = BatchNorm::new(2);
        // Channel 0 holds 1, 3 (mean 2, unbiased var 2); channel 1 holds 10, 10.
        let x = Tensor::from_vec(vec![1.0, 10.0, 3.0, 10.0], &[2, 2]);
        let y = bn.forward(&x).to_vec();
        assert!((y[0] + 1.0).abs() < 1e-3 && (y[2] - 1.0).abs() < 1e-3, "{y:?}");
        assert_eq!(bn.running_mean.to_vec(), vec![0.2, 1.0]);
        let rv = bn.running_var.to_vec();
        assert!((rv[0] - (0.9 + 0.1 * 2.0)).abs() < 1e-5 && (rv[1] - 0.9).abs() < 1e-5, "{rv:?}");
        bn.set_training(false);
        let e = bn.forward(&x).to_vec();
        assert!((e[0] - (1.0 - 0.2) / (1.1f32 + 1e-5).sqrt()).abs() < 1e-5, "{e:?}");
    }
}
