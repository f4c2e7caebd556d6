//! fastai's `Learner`: data, model, optimizer, loss and metrics; `fit(epochs, lr)` trains and prints the table.
//!
//! ```no_run
//! # use crest::{data::{self, DataLoader, LoadOptions, Order}, learner::{DataLoaders, Learner}, nn::*, rng::Rng};
//! # use std::sync::Arc;
//! # fn main() -> crest::Result<()> {
//! let split = data::load("data/mnist_sample".as_ref(), &LoadOptions::default())?;
//! let dls = DataLoaders {
//!     train: DataLoader::new(Arc::new(split.train), 64, Order::Shuffled { seed: 42 }),
//!     valid: DataLoader::new(Arc::new(split.valid), 256, Order::Sequential),
//! };
//! let model = Sequential::default().push(Flatten).push(Linear::new(784, 1, &mut Rng::new(42)));
//! let mut learn = Learner::builder(dls, Box::new(model)).metrics([crest::metrics::Metric::BATCH_ACCURACY]).build()?;
//! learn.fit_one_cycle(5, 3e-3)?;
//! # Ok(()) }
//! ```

mod checkpoint;
mod divergence;
mod lr_find;
mod schedule;
mod snapshot;
mod steps;
mod table;

pub use checkpoint::{data_fingerprint, Checkpointing, FitPosition};
pub use divergence::DIVERGENCE_FACTOR;
pub use lr_find::{minimum, steep, suggest, valley, LrFind, LrFindOptions, Suggestion, Suggestions, SKIP_END};
pub use schedule::Schedule;
pub use steps::{calc_grad, gd_step, train_epoch, validate_epoch, LossFn, Model};
pub use table::EpochRow;

use crate::data::{DataLoader, Targets};
use crate::loss::{bce_with_logits, cross_entropy};
use crate::metrics::Metric;
use crate::nn::Module;
use crate::optim::{OptFunc, Optimizer};
use crate::tensor::{no_grad, Tensor};
use crate::{careful_write, interrupt, Error, Result};
use divergence::DivergenceWatch;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Instant;

pub struct DataLoaders {
    pub train: DataLoader,
    pub valid: DataLoader,
}

/// How a metric is averaged over the validation set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricAverage {
    /// Over images: every image counts once (fastai's way).
    PerImage,
    /// The mean of per-batch values, as the post's `validate_epoch` does: a short last batch weighs as much as a
    /// full one.
    PerBatch,
}

/// What a [`Learner`] is made of besides the data and the model; every setting has a default
/// (`Learner::builder(dls, model).build()` trains with Adam and the loss that suits the model's output).
pub struct LearnerBuilder {
    dls: DataLoaders,
    model: Box<dyn Module>,
    opt_func: OptFunc,
    loss_func: Option<LossFn>,
    metrics: Vec<Metric>,
    pixel_scale: f32,
    metric_average: MetricAverage,
    stop_at: Option<f32>,
    print_table: bool,
    csv: Option<PathBuf>,
}

impl LearnerBuilder {
    /// The optimizer (fastai's `opt_func`); Adam by default.
    pub fn opt_func(mut self, opt_func: OptFunc) -> Self {
        self.opt_func = opt_func;
        self
    }

    /// The loss; by default binary cross-entropy on the logit for a model with one output, cross-entropy for one
    /// with an output per class.
    pub fn loss_func(mut self, loss_func: LossFn) -> Self {
        self.loss_func = Some(loss_func);
        self
    }

    /// Metrics for the table, computed on the validation set after each epoch; the first one is what
    /// [`LearnerBuilder::stop_at`] watches.
    pub fn metrics(mut self, metrics: impl IntoIterator<Item = Metric>) -> Self {
        self.metrics = metrics.into_iter().collect();
        self
    }

    /// What pixel bytes are multiplied by as batches are assembled: 1/255 by default (scaled once, to [0, 1]).
    pub fn pixel_scale(mut self, scale: f32) -> Self {
        self.pixel_scale = scale;
        self
    }

    /// How validation metrics are averaged over batches: per image by default.
    pub fn metric_average(mut self, average: MetricAverage) -> Self {
        self.metric_average = average;
        self
    }

    /// The post's wish: stop once the first metric reaches this value.
    pub fn stop_at(mut self, goal: f32) -> Self {
        self.stop_at = Some(goal);
        self
    }

    /// Train without printing the table (the rows are still in `recorder`).
    pub fn quiet(mut self) -> Self {
        self.print_table = false;
        self
    }

    /// Also write the rows to a CSV file (fastai's `CSVLogger`). The file is written whole (see
    /// [`crate::careful_write`]) each time a `fit` ends, also when it ends early at [`LearnerBuilder::stop_at`]; a
    /// `fit` that fails (a diverging loss, an error, a stop request) writes none, leaving an earlier file as it was,
    /// since the table it would hold is already on screen and a log beside no model would be read as a finished
    /// run's. The path is checked when the learner is built.
    pub fn csv_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.csv = Some(path.into());
        self
    }

    /// Checks that the model takes the data's images and gives a fitting output before anything trains, naming
    /// both shapes if not. A model with a layer that can't tell its output shape is run on two training images
    /// (in evaluation mode, without gradients) to find it.
    pub fn build(mut self) -> Result<Learner> {
        let d = self.dls.train.dataset();
        let input = [d.channels, d.height, d.width];
        let classes = d.classes.len();
        let out = match self.model.output_shape(&input) {
            Some(shape) => {
                shape.map_err(|e| Error::Shape(format!("the model does not fit images of shape {input:?}: {e}")))?
            }
            None => probe_output_shape(self.model.as_mut(), &self.dls.train, self.pixel_scale)?,
        };
        let targets = match out[..] {
            [1] if classes <= 2 => Targets::Binary,
            [k] if k >= classes => Targets::Classes,
            _ => {
                return Err(Error::Shape(format!(
                    "the model outputs {out:?} per image; {classes} classes need [1] or [{classes}]"
                )))
            }
        };
        let loss_func = self.loss_func.unwrap_or(match targets {
            Targets::Binary => bce_with_logits,
            Targets::Classes => cross_entropy,
        });
        let header = table::header(&self.metrics.iter().map(|m| m.name).collect::<Vec<_>>());
        if let Some(path) = &self.csv {
            careful_write::check(path, "the training log")?;
        }
        Ok(Learner {
            dls: self.dls,
            model: self.model,
            recorder: Vec::new(),
            opt_func: self.opt_func,
            loss_func,
            metrics: self.metrics,
            pixel_scale: self.pixel_scale,
            metric_average: self.metric_average,
            stop_at: self.stop_at,
            print_table: self.print_table,
            header,
            csv: self.csv,
            divergence: DivergenceWatch::default(),
            opt: None,
            targets,
            epochs_done: 0,
            checkpointing: None,
            resume_from: 0,
        })
    }
}

/// The model's output shape for one image, from a forward pass over the first two training images.
fn probe_output_shape(model: &mut dyn Module, train: &DataLoader, scale: f32) -> Result<Vec<usize>> {
    let batch = train.batches(0).next().ok_or_else(|| Error::Data("there are no training images".into()))?;
    let (x, _) = batch.take(2).into_xy(scale, Targets::Classes);
    let _g = no_grad();
    model.set_training(false);
    let y = model.forward(&x);
    model.set_training(true);
    Ok(y.shape()[1..].to_vec())
}

pub struct Learner {
    pub dls: DataLoaders,
    pub model: Box<dyn Module>,
    /// One row per epoch trained, as printed.
    pub recorder: Vec<EpochRow>,
    opt_func: OptFunc,
    loss_func: LossFn,
    metrics: Vec<Metric>,
    pixel_scale: f32,
    metric_average: MetricAverage,
    stop_at: Option<f32>,
    print_table: bool,
    header: Vec<String>,
    csv: Option<PathBuf>,
    divergence: DivergenceWatch,
    opt: Option<Box<dyn Optimizer>>,
    targets: Targets,
    epochs_done: usize,
    /// Where and how often checkpoints are written ([`Learner::checkpoint_every`]).
    checkpointing: Option<Checkpointing>,
    /// Epochs of the next `fit` already trained before a checkpoint was written ([`Learner::resume`]).
    resume_from: usize,
}

impl Learner {
    /// fastai's `Learner(dls, model, ...)`: set the rest on the builder, then `build()`.
    pub fn builder(dls: DataLoaders, model: Box<dyn Module>) -> LearnerBuilder {
        LearnerBuilder {
            dls,
            model,
            opt_func: OptFunc::adam(),
            loss_func: None,
            metrics: Vec::new(),
            pixel_scale: 1.0 / 255.0,
            metric_average: MetricAverage::PerImage,
            stop_at: None,
            print_table: true,
            csv: None,
        }
    }

    /// How the targets are shaped for this model: 0/1 for one logit, class indices for one output per class.
    pub fn targets(&self) -> Targets {
        self.targets
    }

    /// Predictions for a batch of images, in evaluation mode.
    pub fn predict_batch(&mut self, x: &Tensor) -> Tensor {
        let _g = no_grad();
        self.model.set_training(false);
        self.model.forward(x)
    }

    /// Trains for `epochs` at learning rate `lr`, printing a row per epoch. The optimizer (and its state) is
    /// created on the first call and kept across calls, as in fastai.
    pub fn fit(&mut self, epochs: usize, lr: f32) -> Result<&[EpochRow]> {
        self.fit_with(epochs, lr, Schedule::Constant)
    }

    /// fastai's `fit_one_cycle`: warm up to `lr_max`, then anneal (see `Schedule::OneCycle`).
    pub fn fit_one_cycle(&mut self, epochs: usize, lr_max: f32) -> Result<&[EpochRow]> {
        self.fit_with(epochs, lr_max, Schedule::OneCycle)
    }

    pub fn fit_with(&mut self, epochs: usize, lr: f32, schedule: Schedule) -> Result<&[EpochRow]> {
        let start = std::mem::take(&mut self.resume_from);
        if self.print_table {
            println!("{}", table::format_line(&self.header, &self.header));
            // A resumed fit shows the rows trained before its checkpoint, as the run never stopped would.
            for row in &self.recorder[self.recorder.len() - start..] {
                println!("{}", table::format_row(row, &self.header));
            }
        }
        let mut opt = self.opt.take().unwrap_or_else(|| self.opt_func.build(self.model.parameters(), lr));
        let result = self.fit_epochs(start..epochs, lr, schedule, opt.as_mut());
        self.opt = Some(opt);
        result?;
        if let Some(path) = &self.csv {
            careful_write::write(path, "the training log", table::csv(&self.header, &self.recorder).as_bytes())?;
        }
        Ok(&self.recorder[..])
    }

    fn fit_epochs(&mut self, range: Range<usize>, lr: f32, schedule: Schedule, opt: &mut dyn Optimizer) -> Result<()> {
        let epochs = range.end;
        let steps = epochs * self.dls.train.len();
        for e in range {
            let start = Instant::now();
            let epoch = self.epochs_done;
            self.model.set_training(true);
            let (mut total, mut count) = (0.0f64, 0usize);
            for (i, batch) in self.dls.train.batches(epoch).enumerate() {
                interrupt::check()?;
                let n = batch.n;
                let step_lr = schedule.lr(lr, e * self.dls.train.len() + i, steps);
                opt.set_lr(step_lr);
                let (xb, yb) = batch.into_xy(self.pixel_scale, self.targets);
                let model = |x: &Tensor| self.model.forward(x);
                let loss = calc_grad(&xb, &yb, &model, self.loss_func).item();
                if !loss.is_finite() {
                    opt.zero_grad();
                    return Err(Error::NonFiniteLoss { epoch, batch: i, loss, lr });
                }
                if let Some((smoothed, first)) = self.divergence.diverging(loss) {
                    opt.zero_grad();
                    return Err(Error::DivergingLoss { epoch, batch: i, loss: smoothed, first, lr });
                }
                opt.step();
                opt.zero_grad();
                total += loss as f64 * n as f64;
                count += n;
            }
            let train_seconds = start.elapsed().as_secs_f64();
            let (valid_loss, metrics) = self.validate();
            let row = EpochRow {
                epoch,
                train_loss: (total / count.max(1) as f64) as f32,
                valid_loss,
                metrics,
                seconds: start.elapsed().as_secs_f64(),
                train_seconds,
            };
            if self.print_table {
                println!("{}", table::format_row(&row, &self.header));
            }
            self.epochs_done += 1;
            let reached = matches!((self.stop_at, row.metrics.first()), (Some(goal), Some(Some(m))) if *m >= goal);
            self.recorder.push(row);
            self.checkpoint_after_epoch(FitPosition { epochs, done: e + 1, lr, schedule }, opt)?;
            if reached {
                if self.print_table {
                    println!("stopping: {} reached {}", self.metrics[0].name, self.stop_at.unwrap_or_default());
                }
                break;
            }
        }
        Ok(())
    }

    /// Loss and metrics over the validation set, per image (or per batch, as the post does, when asked).
    pub fn validate(&mut self) -> (Option<f32>, Vec<Option<f32>>) {
        let _g = no_grad();
        self.model.set_training(false);
        let mut loss = 0.0f64;
        let mut sums = vec![0.0f64; self.metrics.len()];
        let (mut images, mut batches) = (0usize, 0usize);
        let per_batch = self.metric_average == MetricAverage::PerBatch;
        for batch in self.dls.valid.batches(0) {
            let n = batch.n;
            let (x, y) = batch.into_xy(self.pixel_scale, self.targets);
            let preds = self.model.forward(&x);
            let weight = if per_batch { 1.0 } else { n as f64 };
            loss += (self.loss_func)(&preds, &y).item() as f64 * n as f64;
            for (s, m) in sums.iter_mut().zip(&self.metrics) {
                *s += (m.f)(&preds, &y).item() as f64 * weight;
            }
            images += n;
            batches += 1;
        }
        if images == 0 {
            return (None, vec![None; self.metrics.len()]);
        }
        let denom = if per_batch { batches } else { images } as f64;
        (Some((loss / images as f64) as f32), sums.iter().map(|s| Some((s / denom) as f32)).collect())
    }
}
