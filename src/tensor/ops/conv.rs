//! 2-D convolution over NCHW batches: im2col + GEMM forward, and the same for both gradients (kernels/conv.rs), or
//! for 3×3 stride-1 padding-1 kernels one GEMM per kernel tap on planes up to 3×3 (kernels/tapwise.rs) or
//! Winograd's F(2×2, 3×3) (kernels/winograd.rs);
//! and the same convolution fused with the ReLU, or the ReLU and 2×2 max-pool, that follow it in most CNNs.

use crate::tensor::kernels::conv::{conv2d_backward, conv2d_forward, Conv2dShape, ConvGrad, ConvOutput};
use crate::tensor::kernels::zeros;
use crate::tensor::ops::unary::relu_grad;
use crate::tensor::Tensor;

fn conv_shape(x: &Tensor, weight: &Tensor, stride: usize, pad: usize) -> Conv2dShape {
    let (x, w) = (x.shape(), weight.shape());
    assert!(
        x.len() == 4 && w.len() == 4 && x[1] == w[1] && x[2] + 2 * pad >= w[2] && x[3] + 2 * pad >= w[3] && stride > 0,
        "conv2d: input {x:?} and weight {w:?} don't fit (stride {stride}, padding {pad})"
    );
    Conv2dShape { n: x[0], c_in: x[1], h: x[2], w: x[3], c_out: w[0], kh: w[2], kw: w[3], stride, pad }
}

/// Runs the forward kernel on `x`, `weight` and `bias` (borrowed, not copied) into `out`.
fn forward(s: &Conv2dShape, x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, out: ConvOutput) {
    let bias = bias.map(|b| b.data());
    conv2d_forward(s, &x.data(), &weight.data(), bias.as_deref(), out);
}

/// Gradients for (x, weight, bias) from the convolution's incoming gradient, as far as `needs` asks.
fn conv_grads(s: &Conv2dShape, x: &Tensor, w: &Tensor, needs: &[bool], grad: ConvGrad) -> Vec<Option<Vec<f32>>> {
    let mut dx = needs[0].then(|| zeros(s.n * s.c_in * s.h * s.w));
    let mut dw = zeros(w.numel());
    let mut db = needs.get(2).map(|_| vec![0.0; s.c_out]);
    conv2d_backward(s, &x.data(), &w.data(), grad, dx.as_deref_mut(), &mut dw, db.as_deref_mut());
    vec![dx, needs[1].then_some(dw), db]
}

/// [`Tensor::conv2d`], then a ReLU if `relu` ([`Tensor::conv2d_relu`]).
fn conv2d_then(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, stride: usize, pad: usize, relu: bool) -> Tensor {
    let s = conv_shape(x, weight, stride, pad);
    let mut out = zeros(s.n * s.c_out * s.out_h() * s.out_w());
    // u8 pixels are widened once, for the forward pass and the weight's gradient.
    let (xc, wc) = (x.dense(), weight.clone());
    forward(&s, &xc, weight, bias, if relu { ConvOutput::Relu(&mut out) } else { ConvOutput::Plain(&mut out) });
    let mut parents = vec![x, weight];
    parents.extend(bias);
    let shape = [s.n, s.c_out, s.out_h(), s.out_w()];
    let name = if relu { "ConvReluBackward" } else { "ConvolutionBackward" };
    Tensor::from_op(out, &shape, name, &parents, move |ctx| {
        let masked = relu.then(|| relu_grad(ctx.g, &ctx.out.data()));
        conv_grads(&s, &xc, &wc, ctx.needs, ConvGrad::Plain(masked.as_deref().unwrap_or(ctx.g)))
    })
}

impl Tensor {
    /// `x [N, C, H, W]` ⊛ `weight [O, C, kh, kw]` (+ `bias [O]`), with the given stride and zero padding.
    pub fn conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, stride: usize, pad: usize) -> Tensor {
        conv2d_then(self, weight, bias, stride, pad, false)
    }

    /// `x.conv2d(weight, bias, stride, pad).relu()` as one op, with the same values and gradients: the ReLU is
    /// applied to each group's output while it is in cache, instead of in a pass of its own over the batch.
    pub fn conv2d_relu(&self, weight: &Tensor, bias: Option<&Tensor>, stride: usize, pad: usize) -> Tensor {
        conv2d_then(self, weight, bias, stride, pad, true)
    }

    /// `x.conv2d(weight, bias, stride, pad).relu().max_pool2d(2, 2, 0)` as one op, with the same values and
    /// gradients: the convolution's full-size output (4× the pooled one) only ever exists one group of images at
    /// a time, in cache, instead of making six trips to memory between three ops. `Sequential` uses it wherever
    /// those three layers follow each other.
    pub fn conv2d_relu_maxpool2(&self, weight: &Tensor, bias: Option<&Tensor>, stride: usize, pad: usize) -> Tensor {
        let s = conv_shape(self, weight, stride, pad);
        let mut out = zeros(s.n * s.pooled_image());
        let mut which = vec![0u8; out.len()];
        let (xc, wc) = (self.dense(), weight.clone());
        forward(&s, &xc, weight, bias, ConvOutput::ReluMaxPool2 { out: &mut out, which: &mut which });
        let mut parents = vec![self, weight];
        parents.extend(bias);
        let shape = [s.n, s.c_out, s.out_h() / 2, s.out_w() / 2];
        Tensor::from_op(out, &shape, "ConvReluMaxPoolBackward", &parents, move |ctx| {
            // The ReLU's mask is the pooled output itself: positive exactly where the ReLU passed the winner.
            let out = ctx.out.data();
            conv_grads(&s, &xc, &wc, ctx.needs, ConvGrad::ReluMaxPool2 { g: ctx.g, out: &out, which: &which })
        })
    }
}
