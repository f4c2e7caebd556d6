//! `+ - * /` with broadcasting, as methods and as operators on `&Tensor`, `Tensor` and `f32`.

use crate::tensor::broadcast::{broadcast_shape, layout, reduce_to_shape, Layout};
use crate::tensor::kernels::zip_map;
use crate::tensor::ops::unary::relu_grad;
use crate::tensor::Tensor;

#[derive(Clone, Copy)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

fn binary(a: &Tensor, b: &Tensor, op: Op) -> Tensor {
    let out_shape = broadcast_shape(a.shape(), b.shape());
    let (la, lb) = (layout(a.shape(), &out_shape), layout(b.shape(), &out_shape));
    let n: usize = out_shape.iter().product();
    let data = {
        let (ad, bd) = (a.data(), b.data());
        let f = |x: f32, y: f32| match op {
            Op::Add => x + y,
            Op::Sub => x - y,
            Op::Mul => x * y,
            Op::Div => x / y,
        };
        match (&la, &lb) {
            // Same shapes (a residual add): a plain loop over both, which vectorises and runs on both threads.
            (Layout::Same, Layout::Same) => zip_map(&ad, &bd, f),
            _ => (0..n).map(|i| f(ad[la.at(i)], bd[lb.at(i)])).collect(),
        }
    };
    let (ac, bc) = (a.clone(), b.clone());
    let name = match op {
        Op::Add => "AddBackward",
        Op::Sub => "SubBackward",
        Op::Mul => "MulBackward",
        Op::Div => "DivBackward",
    };
    let shape = out_shape.clone();
    Tensor::from_op(data, &out_shape, name, &[a, b], move |ctx| {
        let g = ctx.g;
        let (la, lb) = (layout(ac.shape(), &shape), layout(bc.shape(), &shape));
        // d(a∘b)/da and d(a∘b)/db per element, then summed back over broadcast axes.
        // `f(g, other)` per element, with a plain loop (vectorised, on both threads) where `other` has g's shape.
        let with = |l: &Layout, other: &[f32], f: fn(f32, f32) -> f32| match l {
            Layout::Same => zip_map(g, other, f),
            _ => g.iter().enumerate().map(|(i, &gi)| f(gi, other[l.at(i)])).collect(),
        };
        let (ga, gb): (Option<Vec<f32>>, Option<Vec<f32>>) = match op {
            Op::Add => (Some(g.to_vec()), Some(g.to_vec())),
            Op::Sub => (Some(g.to_vec()), Some(g.iter().map(|v| -v).collect())),
            Op::Mul => {
                let (ad, bd) = (ac.data(), bc.data());
                let ga = ctx.needs[0].then(|| with(&lb, &bd, |g, b| g * b));
                let gb = ctx.needs[1].then(|| with(&la, &ad, |g, a| g * a));
                (ga, gb)
            }
            Op::Div => {
                let (ad, bd) = (ac.data(), bc.data());
                let ga = ctx.needs[0].then(|| with(&lb, &bd, |g, b| g / b));
                let gb = ctx.needs[1].then(|| {
                    g.iter()
                        .enumerate()
                        .map(|(i, gi)| {
                            let y = bd[lb.at(i)];
                            -gi * ad[la.at(i)] / (y * y)
                        })
                        .collect()
                });
                (ga, gb)
            }
        };
        vec![ga.map(|v| reduce_to_shape(v, ac.shape(), &shape)), gb.map(|v| reduce_to_shape(v, bc.shape(), &shape))]
    })
}

impl Tensor {
    pub fn add(&self, other: &Tensor) -> Tensor {
        binary(self, other, Op::Add)
    }

    /// `self.add(other).relu()` for two tensors of one shape (a residual block's end), as one op with the same
    /// values and gradients: one pass each way instead of two, and the one masked gradient serves both operands.
    pub fn add_relu(&self, other: &Tensor) -> Tensor {
        assert_eq!(self.shape(), other.shape(), "add_relu: shapes differ");
        let data = zip_map(&self.data(), &other.data(), |x, y| (x + y).max(0.0));
        Tensor::from_op(data, self.shape(), "AddReluBackward", &[self, other], move |ctx| {
            let g = relu_grad(ctx.g, &ctx.out.data());
            vec![ctx.needs[0].then(|| g.clone()), ctx.needs[1].then_some(g)]
        })
    }
    pub fn sub(&self, other: &Tensor) -> Tensor {
        binary(self, other, Op::Sub)
    }
    pub fn mul(&self, other: &Tensor) -> Tensor {
        binary(self, other, Op::Mul)
    }
    pub fn div(&self, other: &Tensor) -> Tensor {
        binary(self, other, Op::Div)
    }
}

macro_rules! operators {
    ($trait:ident, $method:ident) => {
        impl std::ops::$trait<&Tensor> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                Tensor::$method(self, rhs)
            }
        }
        impl std::ops::$trait<Tensor> for Tensor {
            type Output = Tensor;
            fn $method(self, rhs: Tensor) -> Tensor {
                Tensor::$method(&self, &rhs)
            }
        }
        impl std::ops::$trait<&Tensor> for Tensor {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                Tensor::$method(&self, rhs)
            }
        }
        impl std::ops::$trait<Tensor> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: Tensor) -> Tensor {
                Tensor::$method(self, &rhs)
            }
        }
        impl std::ops::$trait<f32> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: f32) -> Tensor {
                Tensor::$method(self, &Tensor::scalar(rhs))
            }
        }
        impl std::ops::$trait<f32> for Tensor {
            type Output = Tensor;
            fn $method(self, rhs: f32) -> Tensor {
                Tensor::$method(&self, &Tensor::scalar(rhs))
            }
        }
        impl std::ops::$trait<&Tensor> for f32 {
            type Output = Tensor;
            fn $method(self, rhs: &Tensor) -> Tensor {
                Tensor::$method(&Tensor::scalar(self), rhs)
            }
        }
        impl std::ops::$trait<Tensor> for f32 {
            type Output = Tensor;
            fn $method(self, rhs: Tensor) -> Tensor {
                Tensor::$method(&Tensor::scalar(self), &rhs)
            }
        }
    };
}

operators!(Add, add);
operators!(Sub, sub);
operators!(Mul, mul);
operators!(Div, div);

impl std::ops::Neg for &Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        self.neg()
    }
}

impl std::ops::Neg for Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        Tensor::neg(&self)
    }
}
