//! An optimizer's state as named values, as PyTorch's `optimizer.state_dict()` gives it: what `lr_find` puts back
//! after its sweep and what a checkpoint stores. The hyperparameters an optimizer was built with (momentum, betas,
//! weight decay) are not in it: they come from the `OptFunc` that builds it, which a checkpoint records as an
//! option of the run.

use crate::{Error, Result, Tensor};

/// Per-parameter memory: `S` buffers for each parameter, as the optimizers keep it.
pub(crate) type PerParam<const S: usize> = Vec<[Vec<f32>; S]>;

#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState {
    /// Which optimizer it is from (`sgd`, `adam`): a state loads only into its own kind.
    pub kind: String,
    /// The learning rate last set (a schedule sets one per step; `lr_find` sweeps it).
    pub lr: f32,
    /// Counts the updates depend on (Adam's `step`, for its bias correction).
    pub counters: Vec<(String, u64)>,
    /// Per-parameter buffers named `INDEX.NAME` (`0.exp_avg`, PyTorch's `state[0]["exp_avg"]`), each as long as
    /// its parameter; none before the first step, as in PyTorch.
    pub buffers: Vec<(String, Vec<f32>)>,
}

impl OptimizerState {
    /// The state of an optimizer of `kind` whose per-parameter memory is `per_param` (empty before the first step),
    /// each parameter's `S` buffers named by `names`.
    pub(crate) fn new<const S: usize>(
        kind: &str,
        lr: f32,
        counters: &[(&str, u64)],
        per_param: &PerParam<S>,
        names: [&str; S],
    ) -> OptimizerState {
        let buffers = per_param
            .iter()
            .enumerate()
            .flat_map(|(i, bufs)| names.iter().zip(bufs).map(move |(name, b)| (format!("{i}.{name}"), b.clone())))
            .collect();
        OptimizerState {
            kind: kind.into(),
            lr,
            counters: counters.iter().map(|&(n, v)| (n.to_string(), v)).collect(),
            buffers,
        }
    }

    /// The per-parameter memory and the counters named `counters`, checked against an optimizer of `kind` over
    /// `params`: the kind, every buffer's name and length, every counter, a finite learning rate.
    pub(crate) fn unpack<const S: usize, const C: usize>(
        &self,
        kind: &str,
        params: &[Tensor],
        names: [&str; S],
        counters: [&str; C],
    ) -> Result<(PerParam<S>, [u64; C])> {
        let bad = |why: String| Err(Error::InvalidArgument(format!("the optimizer state {why}")));
        if self.kind != kind {
            return bad(format!("is {}'s, not {kind}'s", self.kind));
        }
        if !self.lr.is_finite() {
            return bad(format!("has learning rate {}", self.lr));
        }
        let mut values = [0u64; C];
        for (value, name) in values.iter_mut().zip(counters) {
            match self.counters.iter().find(|(n, _)| n == name) {
                Some(&(_, v)) => *value = v,
                None => return bad(format!("has no {name}")),
            }
        }
        if self.counters.len() != C {
            return bad(format!("has {} counters; {kind} keeps {C}", self.counters.len()));
        }
        if self.buffers.is_empty() {
            return Ok((Vec::new(), values));
        }
        if self.buffers.len() != params.len() * S {
            return bad(format!(
                "has {} buffers; {kind} over {} parameters keeps {}",
                self.buffers.len(),
                params.len(),
                params.len() * S
            ));
        }
        let mut stored = self.buffers.iter();
        let mut per_param = Vec::with_capacity(params.len());
        for (i, p) in params.iter().enumerate() {
            let mut bufs: [Vec<f32>; S] = std::array::from_fn(|_| Vec::new());
            for (buf, name) in bufs.iter_mut().zip(names) {
                let expected = format!("{i}.{name}");
                let Some((n, values)) = stored.next().filter(|(n, _)| *n == expected) else {
                    return bad(format!("lacks {expected} where it is expected"));
                };
                if values.len() != p.numel() {
                    return bad(format!("has {} values in {n}; parameter {i} has {}", values.len(), p.numel()));
                }
                *buf = values.clone();
            }
            per_param.push(bufs);
        }
        Ok((per_param, values))
    }
}

#[cfg(test)]
mod tests {
    use crate::optim::{Adam, Optimizer, SGD};
    use crate::Tensor;

    fn params() -> Vec<Tensor> {
        vec![
            Tensor::from_vec(vec![1.0, -2.0, 0.5], &[3]).requires_grad_(),
            Tensor::from_vec(vec![0.25], &[1]).requires_grad_(),
        ]
    }

    /// A step on the loss Σ p² · (1, 2, 3, …): gradients that depend on the parameters, so later steps differ.
    fn step(opt: &mut dyn Optimizer) {
        for p in opt.params() {
            let w = Tensor::from_vec((1..=p.numel()).map(|i| i as f32).collect(), p.shape());
            (&(p * p) * &w).sum().backward();
        }
        opt.step();
        opt.zero_grad();
    }

    fn values(opt: &dyn Optimizer) -> Vec<u32> {
        opt.params().iter().flat_map(|p| p.to_vec()).map(f32::to_bits).collect()
    }

    /// Export, step twice, import (into the same optimizer, and into a fresh one over copies of the parameters as
    /// they were), step twice again: the same parameters, bit for bit.
    fn restores(make: impl Fn(Vec<Tensor>) -> Box<dyn Optimizer>) {
        let mut opt = make(params());
        step(opt.as_mut());
        opt.set_lr(0.03);
        let (state, at) = (opt.state(), opt.params().iter().map(|p| p.to_vec()).collect::<Vec<_>>());
        step(opt.as_mut());
        step(opt.as_mut());
        let first = values(opt.as_ref());

        for (p, v) in opt.params().iter().zip(&at) {
            p.data_mut().copy_from_slice(v);
        }
        opt.set_lr(1.0);
        opt.load_state(&state).unwrap();
        step(opt.as_mut());
        step(opt.as_mut());
        assert_eq!(values(opt.as_ref()), first);

        let fresh: Vec<Tensor> = at.iter().map(|v| Tensor::from_vec(v.clone(), &[v.len()]).requires_grad_()).collect();
        let mut other = make(fresh);
        other.load_state(&state).unwrap();
        step(other.as_mut());
        step(other.as_mut());
        assert_eq!(values(other.as_ref()), first);
    }

    #[test]
    fn sgd_with_momentum_state_round_trips_bit_for_bit() {
        restores(|p| Box::new(SGD::new(p, 0.1).momentum(0.9).weight_decay(0.01)));
    }

    #[test]
    fn adam_state_round_trips_bit_for_bit() {
        restores(|p| Box::new(Adam::new(p, 0.01)));
        restores(|p| Box::new(Adam::adamw(p, 0.01)));
    }

    #[test]
    fn a_state_of_another_kind_or_shape_is_refused_and_changes_nothing() {
        let mut adam = Adam::new(params(), 0.01);
        step(&mut adam);
        let state = adam.state();
        assert_eq!(state.counters, vec![("step".to_string(), 1)]);
        let names: Vec<&str> = state.buffers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["0.exp_avg", "0.exp_avg_sq", "1.exp_avg", "1.exp_avg_sq"]);

        let mut sgd = SGD::new(params(), 0.1);
        let err = sgd.load_state(&state).unwrap_err().to_string();
        assert_eq!(err, "the optimizer state is adam's, not sgd's");
        assert_eq!(sgd.state().buffers.len(), 0);

        let mut short = state.clone();
        short.buffers[2].1.push(0.0);
        let mut other = Adam::new(params(), 0.01);
        let err = other.load_state(&short).unwrap_err().to_string();
        assert_eq!(err, "the optimizer state has 2 values in 1.exp_avg; parameter 1 has 1");
        assert_eq!(other.state(), Adam::new(params(), 0.01).state());
    }
}
