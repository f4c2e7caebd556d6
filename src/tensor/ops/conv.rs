//! 2-D convolution over NCHW batches: im2col + GEMM forward, and the same for both gradients (kernels/conv.rs).

use crate::tensor::kernels::conv::{conv2d_backward, conv2d_forward, Conv2dShape};
use crate::tensor::Tensor;

impl Tensor {
    /// `x [N, C, H, W]` ⊛ `weight [O, C, kh, kw]` (+ `bias [O]`), with the given stride and zero padding.
    pub fn conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, stride: usize, pad: usize) -> Tensor {
        let (x, w) = (self.shape(), weight.shape());
        assert!(
            x.len() == 4
                && w.len() == 4
                && x[1] == w[1]
                && x[2] + 2 * pad >= w[2]
                && x[3] + 2 * pad >= w[3]
                && stride > 0,
            "conv2d: input {x:?} and weight {w:?} don't fit (stride {stride}, padding {pad})"
        );
        let s = Conv2dShape { n: x[0], c_in: x[1], h: x[2], w: x[3], c_out: w[0], kh: w[2], kw: w[3], stride, pad };
        let mut out = vec![0.0; s.n * s.c_out * s.out_h() * s.out_w()];
        let bias_data = bias.map(|b| b.data().clone());
        conv2d_forward(&s, &self.data(), &weight.data(), bias_data.as_deref(), &mut out);
        let (xc, wc) = (self.clone(), weight.clone());
        let mut parents = vec![self, weight];
        parents.extend(bias);
        Tensor::from_op(out, &[s.n, s.c_out, s.out_h(), s.out_w()], "ConvolutionBackward", &parents, move |ctx| {
            let mut dx = ctx.needs[0].then(|| vec![0.0; s.n * s.c_in * s.h * s.w]);
            let mut dw = vec![0.0; wc.numel()];
            let mut db = ctx.needs.get(2).map(|_| vec![0.0; s.c_out]);
            conv2d_backward(&s, &xc.data(), &wc.data(), ctx.g, dx.as_deref_mut(), &mut dw, db.as_deref_mut());
            vec![dx, ctx.needs[1].then_some(dw), db]
        })
    }
}
