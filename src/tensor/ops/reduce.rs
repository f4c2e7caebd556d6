//! Reductions over all elements or one axis. An axis reduction views the tensor as [outer, axis, inner].

use crate::tensor::Tensor;

fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (shape[..axis].iter().product(), shape[axis], shape[axis + 1..].iter().product())
}

fn reduced_shape(shape: &[usize], axis: usize, keepdim: bool) -> Vec<usize> {
    let mut s = shape.to_vec();
    if keepdim {
        s[axis] = 1;
    } else {
        s.remove(axis);
    }
    s
}

impl Tensor {
    /// Sum of all elements, accumulated in f64 so that large inputs don't lose precision.
    pub fn sum(&self) -> Tensor {
        let s = self.data().iter().map(|&v| v as f64).sum::<f64>() as f32;
        let n = self.numel();
        Tensor::from_op(vec![s], &[], "SumBackward", &[self], move |ctx| vec![Some(vec![ctx.g[0]; n])])
    }

    pub fn mean(&self) -> Tensor {
        let n = self.numel() as f32;
        &self.sum() / n
    }

    /// Sums along one axis, which disappears from the shape (negative axes count from the end).
    pub fn sum_axis(&self, axis: isize) -> Tensor {
        self.sum_along(axis, false)
    }

    /// Sums along one axis, kept with size 1 (PyTorch's `keepdim=True`).
    pub fn sum_axis_keepdim(&self, axis: isize) -> Tensor {
        self.sum_along(axis, true)
    }

    fn sum_along(&self, axis: isize, keepdim: bool) -> Tensor {
        let axis = self.axis(axis);
        let (outer, len, inner) = split_at_axis(self.shape(), axis);
        let mut out = vec![0.0f32; outer * inner];
        {
            let d = self.data();
            for o in 0..outer {
                for k in 0..len {
                    let row = &d[(o * len + k) * inner..(o * len + k + 1) * inner];
                    out[o * inner..(o + 1) * inner].iter_mut().zip(row).for_each(|(a, b)| *a += b);
                }
            }
        }
        Tensor::from_op(out, &reduced_shape(self.shape(), axis, keepdim), "SumBackward", &[self], move |ctx| {
            let mut g = vec![0.0; outer * len * inner];
            for o in 0..outer {
                for k in 0..len {
                    g[(o * len + k) * inner..(o * len + k + 1) * inner]
                        .copy_from_slice(&ctx.g[o * inner..(o + 1) * inner]);
                }
            }
            vec![Some(g)]
        })
    }

    pub fn mean_axis(&self, axis: isize) -> Tensor {
        &self.sum_axis(axis) / self.dim(axis) as f32
    }

    pub fn mean_axis_keepdim(&self, axis: isize) -> Tensor {
        &self.sum_axis_keepdim(axis) / self.dim(axis) as f32
    }

    /// Largest element; its gradient goes to the first position holding it.
    pub fn max(&self) -> Tensor {
        self.reshape(&[self.numel()]).max_axis(0)
    }

    /// Largest value along an axis, which disappears from the shape; the gradient goes to the first arg-max of
    /// each slice.
    pub fn max_axis(&self, axis: isize) -> Tensor {
        self.max_along(axis, false)
    }

    /// [`Tensor::max_axis`] with the axis kept, of size 1.
    pub fn max_axis_keepdim(&self, axis: isize) -> Tensor {
        self.max_along(axis, true)
    }

    fn max_along(&self, axis: isize, keepdim: bool) -> Tensor {
        let axis = self.axis(axis);
        let (outer, len, inner) = split_at_axis(self.shape(), axis);
        let idx = argmax_along(&self.data(), outer, len, inner);
        let vals: Vec<f32> = {
            let d = self.data();
            idx.iter().enumerate().map(|(j, &k)| d[(j / inner * len + k) * inner + j % inner]).collect()
        };
        Tensor::from_op(vals, &reduced_shape(self.shape(), axis, keepdim), "MaxBackward", &[self], move |ctx| {
            let mut g = vec![0.0; outer * len * inner];
            for (j, &k) in idx.iter().enumerate() {
                g[(j / inner * len + k) * inner + j % inner] = ctx.g[j];
            }
            vec![Some(g)]
        })
    }

    pub fn min(&self) -> Tensor {
        self.neg().max().neg()
    }

    /// Index of the largest value along an axis (the first one on ties), as f32 values.
    pub fn argmax(&self, axis: isize) -> Tensor {
        let axis = self.axis(axis);
        let (outer, len, inner) = split_at_axis(self.shape(), axis);
        let idx = argmax_along(&self.data(), outer, len, inner);
        Tensor::from_vec(idx.into_iter().map(|i| i as f32).collect(), &reduced_shape(self.shape(), axis, false))
    }
}

fn argmax_along(d: &[f32], outer: usize, len: usize, inner: usize) -> Vec<usize> {
    assert!(len > 0, "reduction over an empty axis");
    (0..outer * inner)
        .map(|j| {
            let (o, i) = (j / inner, j % inner);
            let mut best = 0;
            for k in 1..len {
                if d[(o * len + k) * inner + i] > d[(o * len + best) * inner + i] {
                    best = k;
                }
            }
            best
        })
        .collect()
}
