//! `a @ b` for 2-D tensors. Backward: dA = G·Bᵀ, dB = Aᵀ·G, both as strided GEMMs (no transposed copies).
//! A u8 left operand (a batch of pixels) is read as bytes by the kernel, never materialised as f32.

use crate::tensor::kernels::matmul::sgemm;
use crate::tensor::kernels::matmul_u8::{matmul_u8, matmul_u8_tn};
use crate::tensor::Tensor;

impl Tensor {
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        assert!(
            self.ndim() == 2 && other.ndim() == 2 && self.shape()[1] == other.shape()[0],
            "matmul: shapes {:?} and {:?} don't fit ([m, k] @ [k, n])",
            self.shape(),
            other.shape()
        );
        let (m, k, n) = (self.shape()[0], self.shape()[1], other.shape()[1]);
        let mut out = vec![0.0; m * n];
        // Large u8 batches stream through the u8 kernels; anything else is read as f32, widened once if needed.
        let a = if self.streamed_pixels().is_some() { self.clone() } else { self.dense() };
        match a.streamed_pixels() {
            Some(pixels) => matmul_u8(m, k, n, pixels.scale, &pixels.bytes, &other.data(), n, 1, &mut out),
            None => sgemm(
                m,
                k,
                n,
                1.0,
                &a.data(),
                k as isize,
                1,
                &other.data(),
                n as isize,
                1,
                0.0,
                &mut out,
                n as isize,
                1,
            ),
        }
        let b = other.clone();
        Tensor::from_op(out, &[m, n], "MmBackward", &[self, other], move |ctx| {
            let g = ctx.g;
            let ga = ctx.needs[0].then(|| {
                let mut ga = vec![0.0; m * k];
                sgemm(m, n, k, 1.0, g, n as isize, 1, &b.data(), 1, n as isize, 0.0, &mut ga, k as isize, 1);
                ga
            });
            let gb = ctx.needs[1].then(|| {
                let mut gb = vec![0.0; k * n];
                match a.streamed_pixels() {
                    Some(pixels) => matmul_u8_tn(m, k, n, pixels.scale, &pixels.bytes, g, &mut gb, 0.0),
                    None => {
                        sgemm(k, m, n, 1.0, &a.data(), 1, k as isize, g, n as isize, 1, 0.0, &mut gb, n as isize, 1)
                    }
                }
                gb
            });
            vec![ga, gb]
        })
    }
}
