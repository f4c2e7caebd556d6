//! Pooling over NCHW batches: max (the gradient goes to the chosen element), average, and global average.

use crate::tensor::kernels::pool::{
    avgpool2d_backward, avgpool2d_forward, global_avgpool2d_backward, global_avgpool2d_forward, maxpool2d_backward,
    maxpool2d_forward,
};
use crate::tensor::kernels::zeros;
use crate::tensor::Tensor;

fn pooled_shape(t: &Tensor, k: usize, stride: usize, pad: usize, what: &str) -> [usize; 6] {
    let s = t.shape();
    assert!(
        s.len() == 4 && k > 0 && stride > 0 && s[2] + 2 * pad >= k && s[3] + 2 * pad >= k && pad * 2 <= k,
        "{what}: input {s:?} doesn't fit kernel {k}, stride {stride}, padding {pad}"
    );
    [s[0], s[1], s[2], s[3], (s[2] + 2 * pad - k) / stride + 1, (s[3] + 2 * pad - k) / stride + 1]
}

impl Tensor {
    pub fn max_pool2d(&self, k: usize, stride: usize, pad: usize) -> Tensor {
        let [n, c, h, w, oh, ow] = pooled_shape(self, k, stride, pad, "max_pool2d");
        let mut out = zeros(n * c * oh * ow);
        let mut argmax = vec![0u32; out.len()];
        maxpool2d_forward(n, c, h, w, k, stride, pad, &self.data(), &mut out, &mut argmax);
        Tensor::from_op(out, &[n, c, oh, ow], "MaxPool2DBackward", &[self], move |ctx| {
            vec![Some(maxpool2d_backward(&argmax, ctx.g, n * c, n * c * h * w))]
        })
    }

    pub fn avg_pool2d(&self, k: usize, stride: usize, pad: usize) -> Tensor {
        let [n, c, h, w, oh, ow] = pooled_shape(self, k, stride, pad, "avg_pool2d");
        let mut out = zeros(n * c * oh * ow);
        avgpool2d_forward(n, c, h, w, k, stride, pad, &self.data(), &mut out);
        Tensor::from_op(out, &[n, c, oh, ow], "AvgPool2DBackward", &[self], move |ctx| {
            let mut dx = zeros(n * c * h * w);
            avgpool2d_backward(n, c, h, w, k, stride, pad, ctx.g, &mut dx);
            vec![Some(dx)]
        })
    }

    /// [N, C, H, W] → [N, C]: PyTorch's `AdaptiveAvgPool2d(1)` followed by a flatten.
    pub fn global_avg_pool2d(&self) -> Tensor {
        let s = self.shape();
        assert_eq!(s.len(), 4, "global_avg_pool2d needs [N, C, H, W], got {s:?}");
        let (n, c, hw) = (s[0], s[1], s[2] * s[3]);
        let mut out = vec![0.0; n * c];
        global_avgpool2d_forward(n, c, hw, &self.data(), &mut out);
        Tensor::from_op(out, &[n, c], "MeanBackward", &[self], move |ctx| {
            let mut dx = zeros(n * c * hw);
            global_avgpool2d_backward(n, c, hw, ctx.g, &mut dx);
            vec![Some(dx)]
        })
    }
}
