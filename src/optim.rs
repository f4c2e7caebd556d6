//! Optimizers: `step()` moves each parameter against its gradient; `zero_grad()` clears the gradients.
//! Updates happen outside the graph, on the parameters' data, as the post's `p.data -= p.grad*lr` does.

use crate::tensor::Tensor;
use crate::{Error, Result};
use rayon::prelude::*;

pub use crate::optim_state::OptimizerState;

pub trait Optimizer: Send {
    fn step(&mut self);
    fn params(&self) -> &[Tensor];

    /// Every parameter's learning rate, until [`Optimizer::set_param_lrs`].
    fn set_lr(&mut self, lr: f32);

    /// Discriminative learning rates (fastai's layer groups, PyTorch's param groups): parameter `i` is trained at
    /// `lrs[i]`, until the next [`Optimizer::set_lr`]. One positive rate per parameter; the last one's (the head's)
    /// is the state's `lr`.
    fn set_param_lrs(&mut self, lrs: Vec<f32>);

    /// Everything the next steps depend on besides the parameters and the hyperparameters it was built with:
    /// the learning rate last set, step counts, per-parameter buffers (momentum, Adam's moments), so that
    /// [`Optimizer::load_state`] can put it back (after `lr_find`, or from a checkpoint).
    fn state(&self) -> OptimizerState;

    /// Puts back a state from [`Optimizer::state`] of an optimizer of the same kind over parameters of the same
    /// shapes; an error naming what differs otherwise (a checkpoint's state is untrusted input), leaving `self` as
    /// it was.
    fn load_state(&mut self, state: &OptimizerState) -> Result<()>;

    fn zero_grad(&self) {
        self.params().iter().for_each(Tensor::zero_grad);
    }
}

/// Applies `update(param, grad, lr, state)` to each parameter that has a gradient (a frozen one has none, so it
/// gets neither a step nor weight decay), with its learning rate `param_lrs[i]` (`lr` when `param_lrs` is empty);
/// `state` is per-parameter memory (momentum, Adam's moments) created on first use.
///
/// Updates are elementwise, so a large parameter is updated in chunks on both threads (ResNet-18's largest weight
/// holds 2.4 million values); the values do not depend on the split.
fn for_each_param<const S: usize>(
    params: &[Tensor],
    lr: f32,
    param_lrs: &[f32],
    state: &mut Vec<[Vec<f32>; S]>,
    update: impl Fn(&mut [f32], &[f32], f32, [&mut [f32]; S]) + Sync,
) {
    if state.is_empty() {
        *state = params.iter().map(|p| std::array::from_fn(|_| vec![0.0; p.numel()])).collect();
    }
    for (i, (p, st)) in params.iter().zip(state.iter_mut()).enumerate() {
        let grad = p.grad_ref();
        let Some(g) = grad.as_ref() else { continue };
        let lr = param_lrs.get(i).copied().unwrap_or(lr);
        let mut data = p.data_mut();
        let mut chunks = st.each_mut().map(|s| s.chunks_mut(STEP_CHUNK));
        let mut tasks = Vec::with_capacity(data.len().div_ceil(STEP_CHUNK));
        for (pc, gc) in data.chunks_mut(STEP_CHUNK).zip(g.chunks(STEP_CHUNK)) {
            // A state as long as its parameter (`load_state` checks shapes), so every chunk has its match.
            let sc: [&mut [f32]; S] = std::array::from_fn(|j| chunks[j].next().unwrap_or_default());
            tasks.push((pc, gc, sc));
        }
        if tasks.len() == 1 {
            tasks.into_iter().for_each(|(pc, gc, sc)| update(pc, gc, lr, sc));
        } else {
            tasks.into_par_iter().for_each(|(pc, gc, sc)| update(pc, gc, lr, sc));
        }
    }
}

/// Values per task of an optimizer's step: enough to outweigh handing a chunk to the other thread.
const STEP_CHUNK: usize = 1 << 16;

/// `lrs` checked to hold one positive, finite learning rate per parameter, with the last one (the head's), which
/// the optimizer's state reports as its `lr`. A caller's mistake, so a panic.
fn checked_param_lrs(params: &[Tensor], lrs: Vec<f32>) -> (Vec<f32>, f32) {
    assert_eq!(lrs.len(), params.len(), "one learning rate per parameter");
    assert!(lrs.iter().all(|lr| lr.is_finite() && *lr > 0.0), "learning rates must be positive: {lrs:?}");
    let last = *lrs.last().expect("an optimizer over no parameters has no learning rates to set");
    (lrs, last)
}

/// Stochastic gradient descent, with optional momentum and (L2) weight decay, as `torch.optim.SGD`.
pub struct SGD {
    params: Vec<Tensor>,
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    /// Set by `set_param_lrs`; empty: every parameter at `lr`.
    param_lrs: Vec<f32>,
    velocity: Vec<[Vec<f32>; 1]>,
}

impl SGD {
    pub fn new(params: Vec<Tensor>, lr: f32) -> SGD {
        SGD { params, lr, momentum: 0.0, weight_decay: 0.0, param_lrs: Vec::new(), velocity: Vec::new() }
    }

    pub fn momentum(mut self, momentum: f32) -> SGD {
        self.momentum = momentum;
        self
    }

    pub fn weight_decay(mut self, wd: f32) -> SGD {
        self.weight_decay = wd;
        self
    }
}

impl Optimizer for SGD {
    fn step(&mut self) {
        let (mom, wd) = (self.momentum, self.weight_decay);
        // Iterators without index checks, and the momentum branch outside the loop, so the update vectorises.
        for_each_param(&self.params, self.lr, &self.param_lrs, &mut self.velocity, |p, g, lr, [v]| {
            if mom == 0.0 {
                for (p, &g) in p.iter_mut().zip(g) {
                    *p -= lr * (g + wd * *p);
                }
                return;
            }
            for ((p, &g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
                *v = mom * *v + (g + wd * *p);
                *p -= lr * *v;
            }
        });
    }

    fn params(&self) -> &[Tensor] {
        &self.params
    }

    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
        self.param_lrs.clear();
    }

    fn set_param_lrs(&mut self, lrs: Vec<f32>) {
        (self.param_lrs, self.lr) = checked_param_lrs(&self.params, lrs);
    }

    fn state(&self) -> OptimizerState {
        OptimizerState::new("sgd", self.lr, &[], &self.velocity, ["momentum_buffer"])
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        let (velocity, []) = state.unpack("sgd", &self.params, ["momentum_buffer"], [])?;
        self.velocity = velocity;
        self.lr = state.lr;
        Ok(())
    }
}

/// Adam (Kingma & Ba), as `torch.optim.Adam`; `decoupled` weight decay makes it AdamW (Loshchilov & Hutter).
pub struct Adam {
    params: Vec<Tensor>,
    pub lr: f32,
    pub betas: (f32, f32),
    pub eps: f32,
    pub weight_decay: f32,
    pub decoupled: bool,
    /// Set by `set_param_lrs`; empty: every parameter at `lr`.
    param_lrs: Vec<f32>,
    t: i32,
    moments: Vec<[Vec<f32>; 2]>,
}

impl Adam {
    pub fn new(params: Vec<Tensor>, lr: f32) -> Adam {
        Adam {
            params,
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            param_lrs: Vec::new(),
            t: 0,
            moments: Vec::new(),
        }
    }

    /// AdamW: weight decay applied to the weights directly, not through the gradient (default 0.01, as PyTorch).
    pub fn adamw(params: Vec<Tensor>, lr: f32) -> Adam {
        Adam { decoupled: true, weight_decay: 0.01, ..Adam::new(params, lr) }
    }

    pub fn weight_decay(mut self, wd: f32) -> Adam {
        self.weight_decay = wd;
        self
    }
}

impl Optimizer for Adam {
    fn step(&mut self) {
        self.t += 1;
        let ((b1, b2), eps, wd, decoupled) = (self.betas, self.eps, self.weight_decay, self.decoupled);
        // The bias corrections in f64, as PyTorch computes them: in f32, 1 − β2^t cancels to a few digits.
        let (c1, c2) = (1.0 - (b1 as f64).powi(self.t), 1.0 - (b2 as f64).powi(self.t));
        // PyTorch's arrangement: p -= (lr/c1)·m / (√v/√c2 + eps). Iterators without index checks, and the
        // decoupled branch outside the loop, so the update vectorises.
        let inv_sqrt_c2 = (1.0 / c2.sqrt()) as f32;
        for_each_param(&self.params, self.lr, &self.param_lrs, &mut self.moments, |p, g, lr, [m, v]| {
            let step = (lr as f64 / c1) as f32;
            let l2 = if decoupled {
                p.iter_mut().for_each(|x| *x *= 1.0 - lr * wd);
                0.0
            } else {
                wd
            };
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                let g = g + l2 * *p;
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *p -= step * *m / (v.sqrt() * inv_sqrt_c2 + eps);
            }
        });
    }

    fn params(&self) -> &[Tensor] {
        &self.params
    }

    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
        self.param_lrs.clear();
    }

    fn set_param_lrs(&mut self, lrs: Vec<f32>) {
        (self.param_lrs, self.lr) = checked_param_lrs(&self.params, lrs);
    }

    fn state(&self) -> OptimizerState {
        OptimizerState::new("adam", self.lr, &[("step", self.t as u64)], &self.moments, ["exp_avg", "exp_avg_sq"])
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        let (moments, [t]) = state.unpack("adam", &self.params, ["exp_avg", "exp_avg_sq"], ["step"])?;
        self.t =
            i32::try_from(t).map_err(|_| Error::InvalidArgument(format!("the optimizer's step {t} is too large")))?;
        self.moments = moments;
        self.lr = state.lr;
        Ok(())
    }
}

/// Which optimizer a Learner builds over the model's parameters (fastai's `opt_func`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptFunc {
    Sgd { momentum: f32, weight_decay: f32 },
    Adam { weight_decay: f32 },
    AdamW { weight_decay: f32 },
}

impl OptFunc {
    /// SGD without momentum or weight decay: the post's `p -= lr·grad`.
    pub fn sgd() -> OptFunc {
        OptFunc::Sgd { momentum: 0.0, weight_decay: 0.0 }
    }

    /// Adam without weight decay (fastai's and crest's default).
    pub fn adam() -> OptFunc {
        OptFunc::Adam { weight_decay: 0.0 }
    }

    /// AdamW with PyTorch's default decoupled weight decay, 0.01.
    pub fn adamw() -> OptFunc {
        OptFunc::AdamW { weight_decay: 0.01 }
    }

    pub fn build(&self, params: Vec<Tensor>, lr: f32) -> Box<dyn Optimizer> {
        match *self {
            OptFunc::Sgd { momentum, weight_decay } => {
                Box::new(SGD::new(params, lr).momentum(momentum).weight_decay(weight_decay))
            }
            OptFunc::Adam { weight_decay } => Box::new(Adam::new(params, lr).weight_decay(weight_decay)),
            OptFunc::AdamW { weight_decay } => Box::new(Adam::adamw(params, lr).weight_decay(weight_decay)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(v: &[f32]) -> Tensor {
        Tensor::from_vec(v.to_vec(), &[v.len()]).requires_grad_()
    }

    #[test]
    fn sgd_step_is_p_minus_lr_grad_and_momentum_accumulates() {
        let p = param(&[1.0, -2.0]);
        let mut opt = SGD::new(vec![p.clone()], 0.1).momentum(0.9);
        (&p * &Tensor::from_vec(vec![3.0, 4.0], &[2])).sum().backward();
        opt.step();
        assert_eq!(p.to_vec(), vec![1.0 - 0.3, -2.0 - 0.4]);
        opt.step(); // same gradient again: velocity 0.9*g + g
        let expect = [0.7 - 0.1 * 1.9 * 3.0, -2.4 - 0.1 * 1.9 * 4.0];
        p.to_vec().iter().zip(expect).for_each(|(a, b)| assert!((a - b).abs() < 1e-6));
        opt.zero_grad();
        assert!(p.grad().is_none());
    }

    #[test]
    fn adam_first_step_moves_each_weight_by_lr() {
        // With bias correction, Adam's first step is lr·g/|g| (up to eps) whatever the gradient's scale.
        let p = param(&[1.0, 1.0]);
        let mut opt = Adam::new(vec![p.clone()], 0.01);
        (&p * &Tensor::from_vec(vec![1000.0, -0.001], &[2])).sum().backward();
        opt.step();
        let v = p.to_vec();
        assert!((v[0] - 0.99).abs() < 1e-5 && (v[1] - 1.01).abs() < 1e-4, "{v:?}");
    }

    /// A parameter larger than one task is updated in chunks on both threads: bit for bit what the same values
    /// get as parameters of one chunk each.
    #[test]
    #[cfg_attr(miri, ignore)] // hundreds of thousands of values
    fn large_parameters_step_in_chunks_as_small_ones_do() {
        let len = 2 * STEP_CHUNK + 3;
        let values: Vec<f32> = (0..len).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
        let grads = Tensor::from_vec((0..len).map(|i| ((i * 104_729) % 997) as f32 / 499.0 - 1.0).collect(), &[len]);
        let whole = param(&values);
        let pieces: Vec<Tensor> = values.chunks(1000).map(param).collect();
        let optimizers: [(Box<dyn Optimizer>, Box<dyn Optimizer>); 2] = [
            (
                Box::new(SGD::new(vec![whole.clone()], 0.1).momentum(0.9).weight_decay(0.01)),
                Box::new(SGD::new(pieces.clone(), 0.1).momentum(0.9).weight_decay(0.01)),
            ),
            (
                Box::new(Adam::adamw(vec![whole.clone()], 0.01).weight_decay(0.1)),
                Box::new(Adam::adamw(pieces.clone(), 0.01).weight_decay(0.1)),
            ),
        ];
        for (mut one, mut many) in optimizers {
            for _ in 0..3 {
                one.zero_grad();
                many.zero_grad();
                (&whole * &grads).sum().backward();
                for (k, piece) in pieces.iter().enumerate() {
                    let g = grads.to_vec()[k * 1000..(k * 1000 + 1000).min(len)].to_vec();
                    let n = g.len();
                    (piece * &Tensor::from_vec(g, &[n])).sum().backward();
                }
                one.step();
                many.step();
            }
            let joined: Vec<f32> = pieces.iter().flat_map(|p| p.to_vec()).collect();
            assert!(whole.to_vec() != values, "the steps moved the weights");
            assert!(whole.to_vec().iter().zip(&joined).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    #[test]
    fn adamw_decays_weights_without_gradient_coupling() {
        let p = param(&[2.0]);
        let mut opt = Adam::adamw(vec![p.clone()], 0.1).weight_decay(0.5);
        (&p * 0.0).sum().backward();
        opt.step();
        assert!((p.item() - 2.0 * (1.0 - 0.05)).abs() < 1e-6);
    }
}
