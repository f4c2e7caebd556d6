//! `x·Wᵀ + b`, PyTorch's `F.linear`, fused: W is read through strides (no transposed copy), and the three
//! gradients are dx = G·W, dW = Gᵀ·x, db = Σ G over the batch.

use crate::tensor::kernels::matmul::sgemm;
use crate::tensor::kernels::matmul_u8::{matmul_u8, matmul_u8_tn};
use crate::tensor::Tensor;

impl Tensor {
    /// `self [m, k]` times `weight [n, k]` transposed, plus `bias [n]`.
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
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
                if let Some(b) = bias {
                    let b = b.data();
                    out.chunks_exact_mut(n).for_each(|row| row.iter_mut().zip(b.iter()).for_each(|(o, b)| *o += b));
                }
                out
            }
            None => {
                // The GEMM adds x·Wᵀ onto rows that already hold the bias: one pass over the output instead of two.
                let (mut out, beta) = match bias {
                    Some(b) => (b.data().repeat(m), 1.0),
                    None => (vec![0.0; m * n], 0.0),
                };
                let (x, w) = (self.data(), weight.data());
                sgemm(m, k, n, 1.0, &x, k as isize, 1, &w, 1, k as isize, beta, &mut out, n as isize, 1);
                out
            }
        };
        let (xc, wc) = (self.clone(), weight.clone());
        let mut parents = vec![self, weight];
        parents.extend(bias);
        Tensor::from_op(out, &[m, n], "AddmmBackward", &parents, move |ctx| {
            let g = ctx.g;
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
