//! Learning rates over layer groups, as fastai's `lr` argument takes them: one number, `slice(hi)` or
//! `slice(lo, hi)`. Each group's rate is then scheduled on its own (one-cycle warms each up from its rate/div), as
//! fastai schedules each parameter group's hyperparameter.

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LrSlice {
    /// Every group at this rate.
    All(f32),
    /// fastai's `slice(hi)`: the last group (the head) at `hi`, every other one at hi/10.
    Head(f32),
    /// fastai's `slice(lo, hi)`: `lo` for the first group to `hi` for the head, evenly spaced on a log scale
    /// (fastai's `even_mults`): lower rates for the early layers, whose general features need the least change.
    Range(f32, f32),
}

impl From<f32> for LrSlice {
    fn from(lr: f32) -> LrSlice {
        LrSlice::All(lr)
    }
}

impl LrSlice {
    /// The head's rate: the largest, and the one the table's learning rate column shows.
    pub fn peak(&self) -> f32 {
        match *self {
            LrSlice::All(lr) | LrSlice::Head(lr) | LrSlice::Range(_, lr) => lr,
        }
    }

    /// Whether every group trains at the same rate.
    pub fn is_uniform(&self, groups: usize) -> bool {
        let lrs = self.lrs(groups);
        lrs.iter().all(|&lr| lr == lrs[0])
    }

    /// The rate of each of `groups` groups, first to last, computed in f64 as fastai's numpy does.
    pub fn lrs(&self, groups: usize) -> Vec<f32> {
        let n = groups.max(1);
        match *self {
            LrSlice::All(lr) => vec![lr; n],
            LrSlice::Head(hi) => (0..n).map(|i| if i + 1 == n { hi } else { (hi as f64 / 10.0) as f32 }).collect(),
            LrSlice::Range(_, hi) if n == 1 => vec![hi],
            LrSlice::Range(lo, hi) => {
                let step = (hi as f64 / lo as f64).powf(1.0 / (n - 1) as f64);
                (0..n).map(|i| (lo as f64 * step.powi(i as i32)) as f32).collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_spread_like_fastai() {
        // fastai: even_mults(1e-5, 1e-3, 3) = [1e-5, 1e-4, 1e-3]; slice(1e-3) over 3 groups = [1e-4, 1e-4, 1e-3].
        let close = |lrs: Vec<f32>, expected: [f32; 3]| {
            assert!(lrs.iter().zip(expected).all(|(a, b)| (a - b).abs() <= 1e-6 * b), "{lrs:?}");
        };
        close(LrSlice::Range(1e-5, 1e-3).lrs(3), [1e-5, 1e-4, 1e-3]);
        close(LrSlice::Head(1e-3).lrs(3), [1e-4, 1e-4, 1e-3]);
        assert_eq!(LrSlice::Range(1e-5, 1e-3).lrs(1), [1e-3]);
        assert!(LrSlice::from(0.1).is_uniform(3) && !LrSlice::Head(0.1).is_uniform(2));
    }
}
