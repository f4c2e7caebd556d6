//! Shape ops: reshape/view/flatten (no copy), transpose, cat and stack.

use crate::tensor::broadcast::strided_offsets;
use crate::tensor::{autograd::Node, numel, Tensor};

impl Tensor {
    /// Same values in another shape; shares storage (like PyTorch's `view` on contiguous tensors).
    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        assert_eq!(numel(shape), self.numel(), "cannot reshape {:?} to {:?}", self.shape(), shape);
        let node = Node::new("ViewBackward", &[self], |ctx| vec![Some(ctx.g.to_vec())]);
        self.view_as_shape(shape.to_vec(), node)
    }

    /// The post's `.view(1600, -1)`: one axis may be -1, inferred from the others.
    pub fn view(&self, shape: &[isize]) -> Tensor {
        let known: usize = shape.iter().filter(|&&d| d >= 0).map(|&d| d as usize).product();
        assert!(shape.iter().filter(|&&d| d < 0).count() <= 1, "view {shape:?}: at most one -1");
        let resolved: Vec<usize> =
            shape.iter().map(|&d| if d < 0 { self.numel() / known.max(1) } else { d as usize }).collect();
        self.reshape(&resolved)
    }

    /// [N, ...] → [N, rest]: one row per example.
    pub fn flatten(&self) -> Tensor {
        let n = self.shape().first().copied().unwrap_or(1);
        self.reshape(&[n, self.numel() / n.max(1)])
    }

    pub fn unsqueeze(&self, axis: usize) -> Tensor {
        let mut s = self.shape().to_vec();
        assert!(axis <= s.len(), "unsqueeze({axis}) on shape {s:?}");
        s.insert(axis, 1);
        self.reshape(&s)
    }

    pub fn squeeze(&self, axis: usize) -> Tensor {
        let mut s = self.shape().to_vec();
        assert!(s.get(axis) == Some(&1), "squeeze({axis}) on shape {s:?}");
        s.remove(axis);
        self.reshape(&s)
    }

    /// Swaps two axes (copies).
    pub fn transpose(&self, a: usize, b: usize) -> Tensor {
        let mut perm: Vec<usize> = (0..self.ndim()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// The transpose of a 2-D tensor.
    pub fn t(&self) -> Tensor {
        assert_eq!(self.ndim(), 2, "t() needs a 2-D tensor, got {:?}", self.shape());
        self.transpose(0, 1)
    }

    /// Reorders axes: output axis i is input axis `perm[i]` (copies).
    pub fn permute(&self, perm: &[usize]) -> Tensor {
        let shape = self.shape().to_vec();
        assert_eq!(perm.len(), shape.len(), "permute {perm:?} on shape {shape:?}");
        let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        let gather = permuted_offsets(&shape, perm);
        let data = {
            let d = self.data();
            gather.iter().map(|&o| d[o]).collect()
        };
        Tensor::from_op(data, &out_shape, "PermuteBackward", &[self], move |ctx| {
            let mut g = vec![0.0; ctx.g.len()];
            for (gi, &o) in ctx.g.iter().zip(&gather) {
                g[o] = *gi;
            }
            vec![Some(g)]
        })
    }

    /// `len` entries of an axis starting at `start` (the post's `train_x[:4]` is `narrow(0, 0, 4)`).
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Tensor {
        let shape = self.shape().to_vec();
        assert!(axis < shape.len() && start + len <= shape[axis], "narrow({axis}, {start}, {len}) on shape {shape:?}");
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product();
        let (full, part) = (shape[axis] * inner, len * inner);
        let mut out_shape = shape.clone();
        out_shape[axis] = len;
        if let (Some(pixels), 0) = (self.pixels(), axis) {
            // Rows of a u8 input stay u8: the post's `train_x[:4]` must not widen the whole dataset to f32.
            let rows = pixels.bytes[start * inner..(start + len) * inner].to_vec();
            return Tensor::from_u8(rows, &out_shape, pixels.scale);
        }
        let data: Vec<f32> = {
            let d = self.data();
            (0..outer)
                .flat_map(|o| d[o * full + start * inner..o * full + start * inner + part].iter().copied())
                .collect()
        };
        Tensor::from_op(data, &out_shape, "NarrowBackward", &[self], move |ctx| {
            let mut g = vec![0.0; outer * full];
            for o in 0..outer {
                g[o * full + start * inner..o * full + start * inner + part]
                    .copy_from_slice(&ctx.g[o * part..(o + 1) * part]);
            }
            vec![Some(g)]
        })
    }

    /// Joins tensors along an existing axis; all other axes must match.
    pub fn cat(tensors: &[Tensor], axis: usize) -> Tensor {
        assert!(!tensors.is_empty(), "cat of no tensors");
        let first = tensors[0].shape().to_vec();
        for t in tensors {
            let ok = t.ndim() == first.len()
                && t.shape().iter().zip(&first).enumerate().all(|(i, (a, b))| i == axis || a == b);
            assert!(ok, "cat along axis {axis}: shapes {:?} and {:?} differ", first, t.shape());
        }
        let outer: usize = first[..axis].iter().product();
        let widths: Vec<usize> = tensors.iter().map(|t| t.numel() / outer.max(1)).collect();
        let total: usize = widths.iter().sum();
        let mut data = vec![0.0; outer * total];
        let mut start = 0;
        for (t, &w) in tensors.iter().zip(&widths) {
            let d = t.data();
            for o in 0..outer {
                data[o * total + start..o * total + start + w].copy_from_slice(&d[o * w..(o + 1) * w]);
            }
            start += w;
        }
        let mut shape = first;
        shape[axis] = tensors.iter().map(|t| t.shape()[axis]).sum();
        let refs: Vec<&Tensor> = tensors.iter().collect();
        Tensor::from_op(data, &shape, "CatBackward", &refs, move |ctx| {
            let mut start = 0;
            widths
                .iter()
                .map(|&w| {
                    let g = (0..outer).flat_map(|o| ctx.g[o * total + start..o * total + start + w].iter().copied());
                    let g = g.collect();
                    start += w;
                    Some(g)
                })
                .collect()
        })
    }

    /// Joins same-shaped tensors along a new axis.
    pub fn stack(tensors: &[Tensor], axis: usize) -> Tensor {
        let expanded: Vec<Tensor> = tensors.iter().map(|t| t.unsqueeze(axis)).collect();
        Tensor::cat(&expanded, axis)
    }
}

/// For each output element of the permutation, the input offset it comes from.
fn permuted_offsets(shape: &[usize], perm: &[usize]) -> Vec<usize> {
    let mut strides = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let out_strides: Vec<usize> = perm.iter().map(|&p| strides[p]).collect();
    strided_offsets(&out_shape, &out_strides)
}
