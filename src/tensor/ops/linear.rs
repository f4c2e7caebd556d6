//! `x·Wᵀ + b`, PyTorch's `F.linear`, fused: W is read through strides (no transposed copy), and the three
//! gradients are dx = G·W, dW = Gᵀ·x, db = Σ G over the batch. A ReLU after it can run in the same op.

use crate::tensor::kernels::linear::{linear_forward, PackedWeight};
use crate::tensor::kernels::matmul::sgemm;
use crate::tensor::kernels::matmul_u8::{matmul_u8, matmul_u8_tn};
use crate::tensor::ops::unary::relu_grad;
use crate::tensor::Tensor;
use std::sync::{Arc, Mutex, PoisonError};

/// A Linear layer's weight packed for the forward kernel, kept by the layer that owns the weight and repacked
/// only when the weight's values change (its storage's version moves): once per inference pass, once per training
/// step.
#[derive(Default)]
pub(crate) struct PackedCache(Mutex<Option<Packed>>);

/// A packed weight, with the storage and version of the values it was packed from.
struct Packed {
    from: (u64, u64),
    weight: Arc<PackedWeight>,
}

impl PackedCache {
    /// `weight` packed, from the cache while its values are the ones packed; `None` where the kernel doesn't run.
    fn get(&self, weight: &Tensor) -> Option<Arc<PackedWeight>> {
        let key = weight.values_key();
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(packed) = slot.as_ref().filter(|p| p.from == key) {
            return Some(packed.weight.clone());
        }
        let [n, k] = weight.shape() else { return None };
        let packed = Arc::new(PackedWeight::pack(*n, *k, &weight.data())?);
        *slot = Some(Packed { from: key, weight: packed.clone() });
        Some(packed)
    }
}

impl Tensor {
    /// `self [m, k]` times `weight [n, k]` transposed, plus `bias [n]`.
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
        self.linear_then(weight, bias, None, false)
    }

    /// `self.linear(weight, bias).relu()` as one op, with the same values and gradients: the ReLU is applied to
    /// the sums before they are stored, instead of in a second pass over the output.
    pub fn linear_relu(&self, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
        self.linear_then(weight, bias, None, true)
    }

    /// [`Tensor::linear`] (or [`Tensor::linear_relu`] when `relu`) with the weight packed through a layer's cache.
    pub(crate) fn linear_cached(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        cache: &PackedCache,
        relu: bool,
    ) -> Tensor {
        self.linear_then(weight, bias, Some(cache), relu)
    }

    fn linear_then(&self, weight: &Tensor, bias: Option<&Tensor>, cache: Option<&PackedCache>, relu: bool) -> Tensor {
        let (x, w) = (self.shape(), weight.shape());
        assert!(
            x.len() == 2 && w.len() == 2 && x[1] == w[1] && bias.is_none_or(|b| b.shape() == [w[0]]),
            "linear: input {x:?}, weight {w:?} and bias {:?} don't fit ([m, k], [n, k], [n])",
            bias.map(|b| b.shape().to_vec())
        );
        let (m, k, n) = (x[0], x[1], w[0]);
        // Large u8 batches stream through the u8 kernels; anything else is read as f32, widened once if needed.
        let streamed = self.streamed_pixels().is_some();
        let input = if streamed { self.clone() } else { self.dense() };
        let b = bias.map(|b| b.data());
        let out = match input.streamed_pixels() {
            Some(pixels) => {
                let mut out = vec![0.0; m * n];
                matmul_u8(m, k, n, pixels.scale, &pixels.bytes, &weight.data(), 1, k, &mut out);
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
                let packed = match cache {
                    Some(cache) => cache.get(weight),
                    None => PackedWeight::pack(n, k, &weight.data()).map(Arc::new),
                };
                linear_forward(m, k, n, &input.data(), &weight.data(), packed.as_deref(), b.as_deref(), relu)
            }
        };
        let wc = weight.clone();
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
                match input.streamed_pixels() {
                    Some(pixels) => {
                        // The u8 kernel writes xᵀ·G as [k, n]; the weight's gradient is its transpose.
                        let mut t = vec![0.0; k * n];
                        matmul_u8_tn(m, k, n, pixels.scale, &pixels.bytes, g, &mut t, 0.0);
                        for (p, row) in t.chunks_exact(n).enumerate() {
                            row.iter().enumerate().for_each(|(j, v)| dw[j * k + p] = *v);
                        }
                    }
                    None => {
                        sgemm(n, m, k, 1.0, g, 1, n as isize, &input.data(), k as isize, 1, 0.0, &mut dw, k as isize, 1)
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
    use super::PackedCache;
    use crate::rng::Rng;
    use crate::Tensor;

    /// A cached packed weight is reused only while no values change: after an update through the weight itself or
    /// through a view of it, the output follows the new values.
    #[test]
    fn cached_packed_weight_follows_every_update() {
        let mut rng = Rng::new(7);
        let (x, w) = (Tensor::randn(&[3, 5], 1.0, &mut rng), Tensor::randn(&[20, 5], 1.0, &mut rng));
        let cache = PackedCache::default();
        let check = |w: &Tensor| {
            let (got, want) = (x.linear_cached(w, None, &cache, false).to_vec(), x.matmul(&w.t()).to_vec());
            assert!(got.iter().zip(&want).all(|(g, v)| (g - v).abs() < 1e-5), "{got:?} != {want:?}");
            got
        };
        let before = check(&w);
        w.data_mut()[0] += 1.0;
        let after_weight = check(&w);
        w.reshape(&[100]).data_mut()[5] -= 2.0;
        let after_view = check(&w);
        assert!(before[0] != after_weight[0] && after_weight[1] != after_view[1], "the updates changed the output");
        // Another weight of the same shape is never served from this cache.
        let other = Tensor::randn(&[20, 5], 1.0, &mut rng);
        check(&other);
    }
}
