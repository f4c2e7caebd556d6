//! `x·Wᵀ + b`, PyTorch's `F.linear`, fused: W is read through strides (no transposed copy), and the three
//! gradients are dx = G·W, dW = Gᵀ·x, db = Σ G over the batch. A ReLU after it can run in the same op.

use crate::tensor::kernels::linear::{linear_forward, pack_weight};
use crate::tensor::kernels::matmul::sgemm;
use crate::tensor::kernels::matmul_u8::{matmul_u8, matmul_u8_tn};
use crate::tensor::ops::unary::relu_grad;
use crate::tensor::Tensor;

impl Tensor {
    /// `self [m, k]` times `weight [n, k]` transposed, plus `bias [n]`.
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
        self.linear_then(weight, bias, false)
    }

    /// `self.linear(weight, bias).relu()` as one op, with the same values and gradients: the ReLU is applied to
    /// the sums before they are stored, instead of in a second pass over the output.
    pub fn linear_relu(&self, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
        self.linear_then(weight, bias, true)
    }

    fn linear_then(&self, weight: &Tensor, bias: Option<&Tensor>, relu: bool) -> Tensor {
        let (x, w) = (self.shape(), weight.shape());
        assert!(
            x.len() == 2 && w.len() == 2 && x[1] == w[1] && bias.is_none_or(|b| b.shape() == [w[0]]),
            "linear: input {x:?}, weight {w:?} and bias {:?} don't fit ([m, k], [n, k], [n])",
            bias.map(|b| b.shape().to_vec())
        );
        let (m, k, n) = (x[0], x[1], w[0]);
        let out = match self.streamed_bytes() {
            Some(bytes) => {
                let mut out = vec![0.0; m * n];
                matmul_u8(m, k, n, bytes.scale, &bytes.data, &weight.data(), 1, k, &mut out);
                let b = bias.map(|b| b.data());
                for row in out.chunks_exact_mut(n) {
                    if let Some(b) = &b {
                        row.iter_mut().zip(b.iter()).for_each(|(o, b)| *o += b);
                    }
                    if relu {
                        row.iter_mut().for_each(|o| *o = o.max(0.0));
                    }
                }
                out
            }
            None => {
                let packed = weight.packed_with(|w| pack_weight(n, k, w));
                let b = bias.map(|b| b.data());
                linear_forward(m, k, n, &self.data(), &weight.data(), &packed, b.as_deref().map(|b| &b[..]), relu)
            }
        };
        let (xc, wc) = (self.clone(), weight.clone());
        let mut parents = vec![self, weight];
        parents.extend(bias);
        let name = if relu { "LinearReluBackward" } else { "AddmmBackward" };
        Tensor::from_op(out, &[m, n], name, &parents, move |ctx| {
            // Through the ReLU first: the gradient passes where the output is positive.
            let masked = relu.then(|| relu_grad(ctx.g, &ctx.out.data()));
            let g = masked.as_deref().unwrap_or(ctx.g);
            let dx = ctx.needs[0].then(|| {
                let mut dx = vec![0.0; m * k];
                sgemm(m, n, k, 1.0, g, n as isize, 1, &wc.data(), k as isize, 1, 0.0, &mut dx, k as isize, 1);
                dx
            });
            let dw = ctx.needs[1].then(|| {
                let mut dw = vec![0.0; n * k];
                match xc.streamed_bytes() {
                    Some(bytes) => {
                        // The u8 kernel writes xᵀ·G as [k, n]; the weight's gradient is its transpose.
                        let mut t = vec![0.0; k * n];
                        matmul_u8_tn(m, k, n, bytes.scale, &bytes.data, g, &mut t, 0.0);
                        for (p, row) in t.chunks_exact(n).enumerate() {
                            row.iter().enumerate().for_each(|(j, v)| dw[j * k + p] = *v);
                        }
                    }
                    None => {
                        sgemm(n, m, k, 1.0, g, 1, n as isize, &xc.data(), k as isize, 1, 0.0, &mut dw, k as isize, 1)
                    }
                }
                dw
            });
            let db = ctx.needs.get(2).map(|_| {
                let mut db = vec![0.0; n];
                g.chunks_exact(n).for_each(|row| db.iter_mut().zip(row).for_each(|(d, v)| *d += v));
                db
            });
            vec![dx, dw, db]
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::rng::Rng;
    use crate::Tensor;

    /// The packed weight is reused only while no values change: after an update through the weight itself or
    /// through a view of it, the output follows the new values.
    #[test]
    fn packed_weight_follows_every_update() {
        let mut rng = Rng::new(7);
        let (x, w) = (Tensor::randn(&[3, 5], 1.0, &mut rng), Tensor::randn(&[20, 5], 1.0, &mut rng));
        let check = |w: &Tensor| {
            let (got, want) = (x.linear(w, None).to_vec(), x.matmul(&w.t()).to_vec());
            assert!(got.iter().zip(&want).all(|(g, v)| (g - v).abs() < 1e-5), "{got:?} != {want:?}");
            got
        };
        let before = check(&w);
        w.data_mut()[0] += 1.0;
        let after_weight = check(&w);
        w.reshape(&[100]).data_mut()[5] -= 2.0;
        let after_view = check(&w);
        assert!(before[0] != after_weight[0] && after_weight[1] != after_view[1], "the updates changed the output");
    }
}
