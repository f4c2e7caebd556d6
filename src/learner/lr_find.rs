//! fastai's learning-rate finder (Smith 2015, "Cyclical Learning Rates"): train for up to `num_it` mini-batches
//! while the learning rate grows exponentially from `start_lr` to `end_lr`, record the smoothed loss at each, stop
//! once it has clearly diverged, put the model and the optimizer back as they were, and suggest learning rates
//! from the curve.
//!
//! Followed from fastai 2.8, `fastai/callback/schedule.py`: `LRFinder` (the schedule `start·(end/start)^(i/num_it)`,
//! at least 6 iterations, stop when the smoothed loss passes 4× the best so far or after `num_it` batches, no
//! validation), `Learner.lr_find` (`num_it // len(train) + 1` epochs; the suggestions read the curve without its
//! first `num_it // 10` points and its last 5, and up to the first NaN), and the suggestion functions `valley`,
//! `steep` and `minimum`. The smoothing is the Recorder's `AvgSmoothLoss(beta=0.98)`: a running average, debiased.

use super::smoothed_loss::SmoothedLoss;
use super::snapshot::ModelSnapshot;
use super::{calc_grad, Learner};
use crate::optim::Optimizer;
use crate::{interrupt, Error, Result, Tensor};

/// fastai's `lr_find` arguments, with its defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrFindOptions {
    pub start_lr: f32,
    pub end_lr: f32,
    pub num_it: usize,
    /// Stop when the smoothed loss passes 4× the best smoothed loss so far.
    pub stop_div: bool,
}

impl Default for LrFindOptions {
    fn default() -> Self {
        LrFindOptions { start_lr: 1e-7, end_lr: 10.0, num_it: 100, stop_div: true }
    }
}

/// A suggested learning rate, and the point of the curve it was read from (fastai's `(lr, (lr, loss))`; for
/// `minimum` the point is at the minimum, ten times the suggestion).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Suggestion {
    pub lr: f32,
    pub point: (f32, f32),
}

/// fastai's `SuggestedLRs(valley=…, steep=…, minimum=…)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Suggestions {
    /// fastai's default: two thirds and a half of a third of the way down the longest descending stretch.
    pub valley: Suggestion,
    /// Where the loss falls fastest against log(lr).
    pub steep: Suggestion,
    /// A tenth of the learning rate at the lowest loss.
    pub minimum: Suggestion,
}

/// The sweep: the learning rate and smoothed loss of every batch trained (the diverging ones at the end
/// included, as fastai's Recorder keeps them), and the suggestions read from it.
#[derive(Clone, Debug, PartialEq)]
pub struct LrFind {
    pub lrs: Vec<f32>,
    pub losses: Vec<f32>,
    pub suggestions: Suggestions,
}

/// How many times the best smoothed loss counts as diverged.
const DIVERGED: f64 = 4.0;
/// fastai's `LRFinder` runs at least this many iterations.
const MIN_ITERATIONS: usize = 6;
/// The points at the end of the curve that `lr_find` and `plot_lr_find` leave out (fastai's `skip_end`).
pub const SKIP_END: usize = 5;

impl Learner {
    /// fastai's `learn.lr_find()` with its defaults: see [`Learner::lr_find_with`].
    pub fn lr_find(&mut self) -> Result<LrFind> {
        self.lr_find_with(LrFindOptions::default())
    }

    /// Sweeps the learning rate and suggests one. Afterwards the model (parameters, running statistics, Dropout's
    /// generators) and the optimizer (its state, or its absence before the first `fit`) are as they were, so that
    /// a `fit` after it trains exactly as it would have without it; the table and the divergence watch are not
    /// touched. An error when the loss never decreased (nothing to suggest), as when the sweep was interrupted.
    pub fn lr_find_with(&mut self, options: LrFindOptions) -> Result<LrFind> {
        let valid = options.start_lr > 0.0 && options.end_lr > options.start_lr && options.end_lr.is_finite();
        if !valid {
            return Err(Error::InvalidArgument(format!(
                "lr_find sweeps from a positive learning rate up to a larger finite one, not from {} to {}",
                options.start_lr, options.end_lr
            )));
        }
        if self.dls.train.is_empty() {
            return Err(Error::Data("there are no training images to sweep the learning rate on".into()));
        }
        let snapshot = ModelSnapshot::take(self.model.as_ref());
        // An optimizer built for the sweep is dropped after it: the first `fit` builds its own, as without it.
        let kept = self.opt.take();
        let before = kept.as_ref().map(|opt| opt.state());
        let mut opt = kept.unwrap_or_else(|| self.opt_func.build(self.model.parameters(), options.start_lr));
        let swept = self.sweep(&options, opt.as_mut());
        opt.zero_grad();
        snapshot.restore(self.model.as_ref());
        if let Some(state) = before {
            opt.load_state(&state)?;
            self.opt = Some(opt);
        }
        let (lrs, losses) = swept?;
        let suggestions = suggest(&lrs, &losses, options.num_it)?;
        Ok(LrFind { lrs, losses, suggestions })
    }

    /// The training part: each batch's learning rate and smoothed loss.
    fn sweep(&mut self, o: &LrFindOptions, opt: &mut dyn Optimizer) -> Result<(Vec<f32>, Vec<f32>)> {
        let num_it = o.num_it.max(MIN_ITERATIONS);
        let batches = self.dls.train.len();
        let (mut lrs, mut losses) = (Vec::with_capacity(num_it), Vec::with_capacity(num_it));
        let (mut smoothing, mut best) = (SmoothedLoss::default(), f64::INFINITY);
        self.model.set_training(true);
        for epoch in 0..num_it / batches + 1 {
            for batch in self.dls.train.batches(self.epochs_done + epoch) {
                interrupt::check()?;
                let i = lrs.len();
                let lr =
                    (o.start_lr as f64 * (o.end_lr as f64 / o.start_lr as f64).powf(i as f64 / num_it as f64)) as f32;
                opt.set_lr(lr);
                let (xb, yb) = batch.into_xy(&self.inputs, self.targets);
                let model = |x: &Tensor| self.model.forward(x);
                let loss = calc_grad(&xb, &yb, &model, self.loss_func).item();
                opt.step();
                opt.zero_grad();
                let smoothed = smoothing.push(loss as f64);
                lrs.push(lr);
                losses.push(smoothed as f32);
                best = best.min(smoothed);
                // A NaN loss never compares greater: fastai goes on to `num_it`; nothing after it can be read.
                let diverged = o.stop_div && (smoothed > DIVERGED * best || smoothed.is_nan());
                if diverged || lrs.len() >= num_it {
                    return Ok((lrs, losses));
                }
            }
        }
        Ok((lrs, losses))
    }
}

/// fastai's suggestions from a sweep of `num_it` iterations: the curve without its first `num_it / 10` points and
/// its last [`SKIP_END`], cut at its first NaN. An error when too little of it is left, or when the loss never
/// decreases along it.
pub fn suggest(lrs: &[f32], losses: &[f32], num_it: usize) -> Result<Suggestions> {
    let batches = losses.len();
    let end = batches.saturating_sub(SKIP_END);
    let start = (num_it / 10).min(end);
    let end = losses[start..end].iter().position(|l| l.is_nan()).map_or(end, |nan| start + nan);
    let (lrs, losses) = (&lrs[start..end], &losses[start..end]);
    if losses.len() < 2 {
        return Err(Error::LrFind(format!(
            "the loss diverged after {batches} batches, too few to read a learning rate from (the curve is read \
             without its first {} points and its last {SKIP_END})",
            num_it / 10
        )));
    }
    if losses.windows(2).all(|w| w[1] >= w[0]) {
        return Err(Error::LrFind(format!(
            "the loss never decreased while the learning rate grew from {} to {}: there is no learning rate to \
             suggest",
            lrs[0],
            lrs[lrs.len() - 1]
        )));
    }
    Ok(Suggestions { valley: valley(lrs, losses), steep: steep(lrs, losses), minimum: minimum(lrs, losses) })
}

/// fastai's `valley`: the longest decreasing subsequence of the losses (not necessarily contiguous), and the point
/// `⌊len/3⌋ + ⌊len/6⌋` of the way along it. `losses` has at least one point.
///
/// fastai's arithmetic, kept so that the suggestions agree with its own: its start is one before the subsequence's
/// first point (−1 when that is the curve's first point), and an index of −1 (a subsequence of two points starting
/// there) reads, as Python does, the last point.
pub fn valley(lrs: &[f32], losses: &[f32]) -> Suggestion {
    let n = losses.len();
    let (mut max_start, mut max_end) = (0isize, 0usize);
    let mut lds = vec![1usize; n];
    for i in 1..n {
        for j in 0..i {
            if losses[i] < losses[j] && lds[i] < lds[j] + 1 {
                lds[i] = lds[j] + 1;
            }
            if lds[max_end] < lds[i] {
                max_end = i;
                max_start = max_end as isize - lds[max_end] as isize;
            }
        }
    }
    let sections = (max_end as isize - max_start) as f64 / 3.0;
    let idx = (max_start + sections as isize + (sections / 2.0) as isize).rem_euclid(n as isize) as usize;
    Suggestion { lr: lrs[idx], point: (lrs[idx], losses[idx]) }
}

/// fastai's `steep`: the left end of the step along which the loss falls fastest against ln(lr). `losses` has at
/// least two points.
pub fn steep(lrs: &[f32], losses: &[f32]) -> Suggestion {
    let slopes = (1..losses.len()).map(|i| (losses[i] - losses[i - 1]) / (lrs[i].ln() - lrs[i - 1].ln()));
    let i = first_min(slopes);
    Suggestion { lr: lrs[i], point: (lrs[i], losses[i]) }
}

/// fastai's `minimum`: a tenth of the learning rate at the lowest loss.
pub fn minimum(lrs: &[f32], losses: &[f32]) -> Suggestion {
    let i = first_min(losses.iter().copied());
    Suggestion { lr: lrs[i] / 10.0, point: (lrs[i], losses[i]) }
}

/// The index of the first smallest value (as `torch.argmin`), NaN never being smallest.
fn first_min(values: impl Iterator<Item = f32>) -> usize {
    let mut best = (0, f32::INFINITY);
    for (i, v) in values.enumerate() {
        if v < best.1 {
            best = (i, v);
        }
    }
    best.0
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// lrs 1e-7 · 10^(i/2), as f32.
    fn half_decades(n: usize) -> Vec<f32> {
        (0..n).map(|i| 10f64.powf(-7.0 + 0.5 * i as f64) as f32).collect()
    }

    // Expected values worked by hand from fastai's code and checked with fastai 2.8's own functions
    // (`from fastai.callback.schedule import valley, steep, minimum` on float32 tensors of the same values).

    #[test]
    fn valley_steep_and_minimum_on_a_hand_made_curve() {
        let lrs = half_decades(11);
        let losses = [3.0, 2.9, 3.1, 2.5, 2.0, 2.2, 1.5, 1.0, 1.2, 3.0, 6.0];
        // Longest decreasing run 3.0 2.9 2.5 2.0 1.5 1.0 (6 points, ending at 7): start 7 − 6 = 1, sections 2,
        // index 1 + 2 + 1 = 4. fastai: valley 9.999999747378752e-06 at loss 2.0.
        assert_eq!(valley(&lrs, &losses), Suggestion { lr: lrs[4], point: (lrs[4], 2.0) });
        // Equal steps in log(lr): the steepest is the largest drop, 2.2 → 1.5 from index 5.
        assert_eq!(steep(&lrs, &losses), Suggestion { lr: lrs[5], point: (lrs[5], 2.2) });
        assert_eq!(minimum(&lrs, &losses), Suggestion { lr: lrs[7] / 10.0, point: (lrs[7], 1.0) });
        assert_eq!(lrs[4] as f64, 9.999_999_747_378_752e-6);
    }

    #[test]
    fn valley_reads_the_last_point_where_fastai_indexes_minus_one() {
        let lrs = [1e-3, 1e-2, 1e-1, 1.0, 10.0];
        let losses = [2.0, 1.0, 3.0, 4.0, 5.0];
        // fastai: valley 10.0 (index −1), steep 0.001 (the 2 → 1 drop, from its left end), minimum 0.01 / 10.
        assert_eq!(valley(&lrs, &losses), Suggestion { lr: 10.0, point: (10.0, 5.0) });
        assert_eq!(steep(&lrs, &losses), Suggestion { lr: 1e-3, point: (1e-3, 2.0) });
        assert_eq!(minimum(&lrs, &losses), Suggestion { lr: 1e-2 / 10.0, point: (1e-2, 1.0) });
    }

    #[test]
    fn suggestions_skip_the_first_tenth_and_the_last_five_points() {
        // A 20-iteration sweep, as recorded: the suggestions read points 2..15, so neither the low first two nor
        // the low last five count. fastai on lrs[2:-5]: valley 3.981071586167673e-06 (loss 0.68), steep
        // 9.999999747378752e-06 (0.6), minimum 1.584893179824576e-05 (at 0.3).
        let lrs: Vec<f32> = (0..20).map(|i| (1e-7f64 * (10.0 / 1e-7f64).powf(i as f64 / 20.0)) as f32).collect();
        let mut losses = vec![0.1, 0.1, 0.7, 0.69, 0.68, 0.6, 0.5, 0.4, 0.3, 0.35, 0.5, 0.9, 1.5, 2.0, 3.0];
        losses.extend([0.01; 5]);
        let s = suggest(&lrs, &losses, 20).unwrap();
        assert_eq!(s.valley, Suggestion { lr: lrs[4], point: (lrs[4], 0.68) });
        assert_eq!(s.steep, Suggestion { lr: lrs[5], point: (lrs[5], 0.6) });
        assert_eq!(s.minimum, Suggestion { lr: lrs[8] / 10.0, point: (lrs[8], 0.3) });
        assert!((lrs[4] - 3.981_071_6e-6).abs() < 1e-12 && (lrs[8] / 10.0 - 1.584_893_2e-5).abs() < 1e-11);

        // A NaN ends the curve there: the minimum before it counts, not the lower value after it.
        losses[10] = f32::NAN;
        losses[12] = 0.01;
        assert_eq!(suggest(&lrs, &losses, 20).unwrap().minimum.point, (lrs[8], 0.3));
    }

    #[test]
    fn a_loss_that_never_decreases_or_diverges_at_once_suggests_nothing() {
        let lrs = half_decades(12);
        let rising: Vec<f32> = (0..12).map(|i| 1.0 + i as f32).collect();
        let e = suggest(&lrs, &rising, 10).unwrap_err().to_string();
        assert!(
            e.starts_with("lr_find suggests nothing: the loss never decreased while the learning rate grew"),
            "{e}"
        );
        let e = suggest(&lrs[..7], &rising[..7], 100).unwrap_err().to_string();
        assert!(e.contains("the loss diverged after 7 batches, too few"), "{e}");
    }

    /// 48 random 4×4 grey images of two classes, batches of 16, and an MLP with BatchNorm and Dropout.
    pub(in crate::learner) fn learner() -> Learner {
        use crate::data::{DataLoader, Dataset, Order};
        use crate::nn::{BatchNorm, Dropout, Flatten, Linear, ReLU, Sequential};
        use crate::rng::Rng;
        use std::sync::Arc;
        let rng = &mut Rng::new(5);
        let data = Arc::new(Dataset {
            pixels: (0..48 * 16).map(|_| rng.below(256) as u8).collect(),
            labels: (0..48).map(|i| i % 2).collect(),
            classes: vec!["a".into(), "b".into()],
            channels: 1,
            height: 4,
            width: 4,
            paths: Default::default(),
        });
        let dls = super::super::DataLoaders {
            train: DataLoader::new(data.clone(), 16, Order::Shuffled { seed: 1 }),
            valid: DataLoader::new(data, 48, Order::Sequential),
        };
        let model = Sequential::default()
            .push(Flatten)
            .push(Linear::new(16, 8, rng))
            .push(BatchNorm::new(8))
            .push(ReLU)
            .push(Dropout::new(0.3, rng))
            .push(Linear::new(8, 1, rng));
        Learner::builder(dls, Box::new(model)).quiet().build().unwrap()
    }

    pub(in crate::learner) fn weights(learn: &Learner) -> Vec<u32> {
        ModelSnapshot::take(learn.model.as_ref())
            .tensors
            .iter()
            .flat_map(|(_, _, v)| v.iter().map(|x| x.to_bits()))
            .collect()
    }

    #[test]
    fn lr_find_leaves_the_model_and_the_optimizer_as_they_were() {
        // Before any fit (no optimizer yet), and between two fits (Adam's moments and step count).
        for fits_before in [0, 1] {
            let (mut plain, mut swept) = (learner(), learner());
            for learn in [&mut plain, &mut swept] {
                for _ in 0..fits_before {
                    learn.fit(1, 1e-2).unwrap();
                }
            }
            let before = ModelSnapshot::take(swept.model.as_ref());
            let found = swept.lr_find_with(LrFindOptions { num_it: 20, ..Default::default() }).unwrap();
            // 20 batches over 3 per epoch: the sweep cycles through 7 epochs, stopping early only if it diverged.
            assert!(found.lrs.len() > 10 && found.lrs.len() <= 20, "{}", found.lrs.len());
            assert_eq!(found.lrs[0], 1e-7);
            assert_eq!(ModelSnapshot::take(swept.model.as_ref()), before);
            assert_eq!(swept.recorder.len(), fits_before);
            plain.fit(2, 1e-2).unwrap();
            swept.fit(2, 1e-2).unwrap();
            assert_eq!(weights(&plain), weights(&swept), "after {fits_before} fit(s) before the sweep");
            let losses = |l: &Learner| l.recorder.iter().map(|r| r.train_loss.to_bits()).collect::<Vec<_>>();
            assert_eq!(losses(&plain), losses(&swept));
        }
    }
}
