//! Comparison masks (1.0 where true, 0.0 elsewhere; not differentiable) and `where_`, which routes gradients.

use crate::tensor::broadcast::{broadcast_shape, layout, reduce_to_shape};
use crate::tensor::Tensor;

fn compare(a: &Tensor, b: &Tensor, f: impl Fn(f32, f32) -> bool) -> Tensor {
    let out = broadcast_shape(a.shape(), b.shape());
    let (la, lb) = (layout(a.shape(), &out), layout(b.shape(), &out));
    let (ad, bd) = (a.data(), b.data());
    let data = (0..out.iter().product()).map(|i| f(ad[la.at(i)], bd[lb.at(i)]) as u8 as f32).collect();
    Tensor::from_vec(data, &out)
}

impl Tensor {
    /// `a == b` elementwise (the post's `targets==1` is `targets.eq(&Tensor::scalar(1.))` or `eq_scalar(1.)`).
    pub fn eq(&self, other: &Tensor) -> Tensor {
        compare(self, other, |x, y| x == y)
    }
    pub fn gt(&self, other: &Tensor) -> Tensor {
        compare(self, other, |x, y| x > y)
    }
    pub fn lt(&self, other: &Tensor) -> Tensor {
        compare(self, other, |x, y| x < y)
    }
    pub fn ge(&self, other: &Tensor) -> Tensor {
        compare(self, other, |x, y| x >= y)
    }
    pub fn eq_scalar(&self, v: f32) -> Tensor {
        self.eq(&Tensor::scalar(v))
    }
    pub fn gt_scalar(&self, v: f32) -> Tensor {
        self.gt(&Tensor::scalar(v))
    }

    /// `torch.where(cond, a, b)`: a where cond is non-zero, b elsewhere, all three broadcast together.
    pub fn where_(cond: &Tensor, a: &Tensor, b: &Tensor) -> Tensor {
        let out = broadcast_shape(&broadcast_shape(cond.shape(), a.shape()), b.shape());
        let (lc, la, lb) = (layout(cond.shape(), &out), layout(a.shape(), &out), layout(b.shape(), &out));
        let n: usize = out.iter().product();
        let data = {
            let (cd, ad, bd) = (cond.data(), a.data(), b.data());
            (0..n).map(|i| if cd[lc.at(i)] != 0.0 { ad[la.at(i)] } else { bd[lb.at(i)] }).collect()
        };
        let (cc, ashape, bshape, shape) = (cond.clone(), a.shape().to_vec(), b.shape().to_vec(), out.clone());
        Tensor::from_op(data, &out, "WhereBackward", &[a, b], move |ctx| {
            let lc = layout(cc.shape(), &shape);
            let cd = cc.data();
            let pick = |take_a: bool| -> Vec<f32> {
                (0..ctx.g.len()).map(|i| if (cd[lc.at(i)] != 0.0) == take_a { ctx.g[i] } else { 0.0 }).collect()
            };
            vec![
                ctx.needs[0].then(|| reduce_to_shape(pick(true), &ashape, &shape)),
                ctx.needs[1].then(|| reduce_to_shape(pick(false), &bshape, &shape)),
            ]
        })
    }
}
