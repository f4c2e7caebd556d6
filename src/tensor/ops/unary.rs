//! Elementwise functions of one tensor. Each rule states its derivative in terms of the input or output.

use crate::tensor::kernels::{map, zip_map};
use crate::tensor::Tensor;

/// ReLU's gradient from its output `y`: `g` where `y > 0`, else 0. Shared with ops that end in a ReLU.
pub(crate) fn relu_grad(g: &[f32], y: &[f32]) -> Vec<f32> {
    zip_map(g, y, |g, y| if y > 0.0 { g } else { 0.0 })
}

/// `f` applied elementwise; `df(x, y)` is dy/dx given the input x and output y.
fn unary(
    t: &Tensor,
    name: &'static str,
    f: impl Fn(f32) -> f32 + Sync,
    df: impl Fn(f32, f32) -> f32 + Send + Sync + 'static,
) -> Tensor {
    let data = map(&t.data(), f);
    let input = t.clone();
    Tensor::from_op(data, t.shape(), name, &[t], move |ctx| {
        let (x, y) = (input.data(), ctx.out.data());
        vec![Some(ctx.g.iter().zip(x.iter().zip(y.iter())).map(|(g, (&x, &y))| g * df(x, y)).collect())]
    })
}

impl Tensor {
    pub fn neg(&self) -> Tensor {
        unary(self, "NegBackward", |x| -x, |_, _| -1.0)
    }

    pub fn exp(&self) -> Tensor {
        unary(self, "ExpBackward", f32::exp, |_, y| y)
    }

    pub fn log(&self) -> Tensor {
        unary(self, "LogBackward", f32::ln, |x, _| 1.0 / x)
    }

    pub fn sqrt(&self) -> Tensor {
        unary(self, "SqrtBackward", f32::sqrt, |_, y| 0.5 / y)
    }

    pub fn powf(&self, p: f32) -> Tensor {
        unary(self, "PowBackward", move |x| x.powf(p), move |x, _| p * x.powf(p - 1.0))
    }

    /// 1 / (1 + e^-x), written so neither branch overflows.
    pub fn sigmoid(&self) -> Tensor {
        unary(self, "SigmoidBackward", sigmoid, |_, y| y * (1.0 - y))
    }

    /// Not through `unary`: the gradient is a mask, so it passes `g` or 0 (as PyTorch's threshold backward,
    /// never `g·0`) from two streams instead of three, and both loops vectorise.
    pub fn relu(&self) -> Tensor {
        let data = map(&self.data(), |x| x.max(0.0));
        Tensor::from_op(data, self.shape(), "ReluBackward", &[self], move |ctx| {
            vec![Some(relu_grad(ctx.g, &ctx.out.data()))]
        })
    }

    pub fn tanh(&self) -> Tensor {
        unary(self, "TanhBackward", f32::tanh, |_, y| 1.0 - y * y)
    }

    pub fn abs(&self) -> Tensor {
        unary(self, "AbsBackward", f32::abs, |x, _| x.signum() * (x != 0.0) as u8 as f32)
    }
}

pub(crate) fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}
