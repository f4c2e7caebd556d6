//! Batch normalisation over [N, C] or [N, C, H, W]: per channel, with batch statistics while training (and the
//! running statistics updated as PyTorch does) or the running statistics in evaluation.

use crate::tensor::kernels::batchnorm::{
    affine, batchnorm_backward, batchnorm_forward_eval, batchnorm_forward_train, unbiased_var,
};
use crate::tensor::kernels::zeros;
use crate::tensor::Tensor;

/// What batch norm needs besides the input: the affine parameters and the running statistics it keeps.
pub struct BatchNormState<'a> {
    pub gamma: &'a Tensor,
    pub beta: &'a Tensor,
    pub running_mean: &'a Tensor,
    pub running_var: &'a Tensor,
    pub momentum: f32,
    pub eps: f32,
}

/// `[n, c, h·w]` of an input of `[N, C]` or `[N, C, H, W]` with as many channels as `st` normalises.
fn channels(x: &Tensor, st: &BatchNormState) -> (usize, usize, usize) {
    let s = x.shape();
    assert!(
        (s.len() == 2 || s.len() == 4) && s[1] == st.gamma.numel(),
        "batch_norm: input {s:?} doesn't have {} channels on axis 1",
        st.gamma.numel()
    );
    (s[0], s[1], s[2..].iter().product::<usize>())
}

impl Tensor {
    /// Evaluation mode: normalised with the running statistics, which stay as they are.
    pub fn batch_norm_eval(&self, st: &BatchNormState) -> Tensor {
        let (n, c, hw) = channels(self, st);
        let s = self.shape().to_vec();
        let mut out = zeros(self.numel());
        let (rm, rv) = (st.running_mean.data(), st.running_var.data());
        batchnorm_forward_eval(n, c, hw, &self.data(), &st.gamma.data(), &st.beta.data(), &rm, &rv, st.eps, &mut out);
        let (x, gamma, invstd) = (self.clone(), st.gamma.clone(), rv.iter().map(|v| 1.0 / (v + st.eps).sqrt()));
        let invstd: Vec<f32> = invstd.collect();
        let mean = rm.to_vec();
        // In evaluation the statistics are constants: y = γ·(x−μ)·invstd + β is affine in x.
        Tensor::from_op(out, &s, "NativeBatchNormBackward", &[self, st.gamma, st.beta], move |ctx| {
            let xd = x.data();
            let g = gamma.data();
            let ch = |i: usize| i / hw % c;
            let dx =
                ctx.needs[0].then(|| ctx.g.iter().enumerate().map(|(i, d)| d * g[ch(i)] * invstd[ch(i)]).collect());
            let mut dgamma = vec![0.0; c];
            let mut dbeta = vec![0.0; c];
            for (i, d) in ctx.g.iter().enumerate() {
                dgamma[ch(i)] += d * (xd[i] - mean[ch(i)]) * invstd[ch(i)];
                dbeta[ch(i)] += d;
            }
            vec![dx, Some(dgamma), Some(dbeta)]
        })
    }

    /// Training mode: normalised with this batch's statistics, which also update the running ones (PyTorch's
    /// momentum, unbiased variance).
    pub fn batch_norm_train(&self, st: &BatchNormState) -> Tensor {
        self.batch_norm_train_then(st, false)
    }

    /// `self.batch_norm_train(st).relu()` as one op, with the same values and gradients: the ReLU is applied in
    /// the normalising pass and its gradient mask in the backward's, instead of in a pass of their own each.
    pub fn batch_norm_relu_train(&self, st: &BatchNormState) -> Tensor {
        self.batch_norm_train_then(st, true)
    }

    fn batch_norm_train_then(&self, st: &BatchNormState, relu: bool) -> Tensor {
        let (n, c, hw) = channels(self, st);
        let s = self.shape().to_vec();
        let mut out = zeros(self.numel());
        assert!(n * hw > 1, "batch_norm in training needs more than one value per channel, got input {s:?}");
        let (mut mean, mut invstd) = (vec![0.0; c], vec![0.0; c]);
        batchnorm_forward_train(
            n,
            c,
            hw,
            &self.data(),
            &st.gamma.data(),
            &st.beta.data(),
            st.eps,
            relu,
            &mut out,
            &mut mean,
            &mut invstd,
        );
        {
            let (mut rm, mut rv) = (st.running_mean.data_mut(), st.running_var.data_mut());
            for ch in 0..c {
                rm[ch] = (1.0 - st.momentum) * rm[ch] + st.momentum * mean[ch];
                rv[ch] = (1.0 - st.momentum) * rv[ch] + st.momentum * unbiased_var(invstd[ch], st.eps, n * hw);
            }
        }
        let (x, gamma) = (self.clone(), st.gamma.clone());
        // What the ReLU's mask is computed from in the backward pass, as the forward pass's γ and β made it.
        let relu_affine = relu.then(|| affine(&st.gamma.data(), &st.beta.data(), &mean, &invstd));
        let name = if relu { "BatchNormReluBackward" } else { "NativeBatchNormBackward" };
        Tensor::from_op(out, &s, name, &[self, st.gamma, st.beta], move |ctx| {
            let (mut dx, mut dgamma, mut dbeta) = (zeros(n * c * hw), vec![0.0; c], vec![0.0; c]);
            batchnorm_backward(
                n,
                c,
                hw,
                &x.data(),
                &gamma.data(),
                &mean,
                &invstd,
                ctx.g,
                relu_affine.as_ref().map(|(scale, shift)| (&scale[..], &shift[..])),
                &mut dx,
                &mut dgamma,
                &mut dbeta,
            );
            vec![Some(dx), Some(dgamma), Some(dbeta)]
        })
    }
}
