//! `BatchNorm1d` / `BatchNorm2d` in one layer: per-channel normalisation of [N, C] or [N, C, H, W], with running
//! statistics (saved in the model file) used in evaluation.

use super::{Conv2d, LayerSpec, Module};
use crate::tensor::kernels::batchnorm::{affine, eval_invstd};
use crate::tensor::{is_grad_enabled, BatchNormState};
use crate::{Error, Result, Tensor};
use std::sync::{Mutex, PoisonError};

pub struct BatchNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub momentum: f32,
    pub eps: f32,
    training: bool,
    folded: FoldedCache,
}

/// The weight and bias of the convolution before a batch norm with the norm folded in, kept while the values they
/// were folded from stay the same (as a Linear layer keeps its packed weight): an inference pass reused them instead
/// of scaling a copy of every weight, 9 MB for one of a ResNet's 512-channel convolutions, and mapping it afresh.
#[derive(Default)]
struct FoldedCache(Mutex<Option<Folded>>);

struct Folded {
    /// The storages and versions of the convolution's weight and bias and of the norm's γ, β and statistics, and eps.
    from: (Vec<Option<(u64, u64)>>, u32),
    weight: Tensor,
    bias: Tensor,
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
            folded: FoldedCache::default(),
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
        let (weight, bias) = self.folded_into(conv);
        if relu {
            x.conv2d_relu(&weight, Some(&bias), conv.stride, conv.padding)
        } else {
            x.conv2d(&weight, Some(&bias), conv.stride, conv.padding)
        }
    }

    /// `conv`'s weight and bias with this norm folded in, from the cache while nothing they come from has changed.
    fn folded_into(&self, conv: &Conv2d) -> (Tensor, Tensor) {
        let sources = [Some(&conv.weight), conv.bias.as_ref(), Some(&self.weight), Some(&self.bias)];
        let sources = sources.into_iter().chain([Some(&self.running_mean), Some(&self.running_var)]);
        let from = (sources.map(|t| t.map(Tensor::values_key)).collect(), self.eps.to_bits());
        let mut slot = self.folded.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = slot.as_ref().filter(|f| f.from == from) {
            return (f.weight.clone(), f.bias.clone());
        }
        let invstd = eval_invstd(&self.running_var.data(), self.eps);
        let (scale, mut shift) = affine(&self.weight.data(), &self.bias.data(), &self.running_mean.data(), &invstd);
        if let Some(b) = &conv.bias {
            shift.iter_mut().zip(b.data().iter()).zip(&scale).for_each(|((t, &b), &a)| *t += b * a);
        }
        let w = conv.weight.data();
        let per_out = w.len() / scale.len().max(1);
        // Row by row into a vector of the final size: `flat_map` does not know its length, so `collect` grew the
        // vector by doubling (copying megabytes for a 512-channel convolution) and pushed one value at a time.
        let mut weight = Vec::with_capacity(w.len());
        for (row, &a) in w.chunks_exact(per_out).zip(&scale) {
            weight.extend(row.iter().map(|&v| v * a));
        }
        let (weight, bias) = (Tensor::from_vec(weight, conv.weight.shape()), Tensor::from_vec(shift, &[scale.len()]));
        *slot = Some(Folded { from, weight: weight.clone(), bias: bias.clone() });
        (weight, bias)
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

    /// Without gradients the norm is folded into the convolution, and the folded weights are kept between passes;
    /// a change to anything they come from (the convolution's weight or bias, γ, β, the statistics, eps) shows in
    /// the next pass, which matches the two layers run one after the other.
    #[test]
    fn folded_weights_follow_every_value_they_come_from() {
        let mut rng = crate::rng::Rng::new(3);
        let mut conv = Conv2d::new(2, 3, 3, &mut rng).padding(1);
        let mut bn = BatchNorm::new(3);
        bn.set_training(false);
        let x = Tensor::randn(&[2, 2, 5, 4], 1.0, &mut rng);
        let check = |conv: &Conv2d, bn: &BatchNorm, what: &str| {
            let want = bn.forward(&conv.forward(&x)).relu().to_vec();
            let got = {
                let _g = crate::tensor::no_grad();
                bn.after_conv(conv, &x, true).to_vec()
            };
            let worst = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0.0f32, f32::max);
            assert!(worst < 1e-5, "{what}: folded differs by {worst}");
        };
        let bump =
            |t: &Tensor, by: f32| t.data_mut().iter_mut().enumerate().for_each(|(i, v)| *v += by * (i + 1) as f32);
        check(&conv, &bn, "fresh");
        check(&conv, &bn, "again, from the cache");
        bump(&conv.weight, 0.05);
        check(&conv, &bn, "conv weight");
        conv.bias = Some(Tensor::from_vec(vec![0.3, -0.2, 0.1], &[3]));
        check(&conv, &bn, "conv bias");
        for (t, what) in
            [(&bn.weight, "gamma"), (&bn.bias, "beta"), (&bn.running_mean, "mean"), (&bn.running_var, "var")]
        {
            bump(t, 0.25);
            check(&conv, &bn, what);
        }
        bn.eps = 0.5;
        check(&conv, &bn, "eps");
    }
}
