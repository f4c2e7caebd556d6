//! fastai's `Learner`: data, model, optimizer, loss and metrics; `fit(epochs, lr)` trains and prints the table.
//! Callbacks ([`Callback`]: early stopping, save-best, a user's own) run at fastai's events of the fit; the learner
//! keeps a row per epoch (`recorder`) and per training batch (`batches`).
//!
//! ```no_run
//! # use crest::{data::{self, DataLoader, LoadOptions, Order}, learner::*, nn::*, rng::Rng};
//! # use std::sync::Arc;
//! # fn main() -> crest::Result<()> {
//! let split = data::load("data/mnist_sample".as_ref(), &LoadOptions::default())?;
//! let dls = DataLoaders {
//!     train: DataLoader::new(Arc::new(split.train), 64, Order::Shuffled { seed: 42 }),
//!     valid: DataLoader::new(Arc::new(split.valid), 256, Order::Sequential),
//! };
//! let model = Sequential::default().push(Flatten).push(Linear::new(784, 1, &mut Rng::new(42)));
//! let mut learn = Learner::builder(dls, Box::new(model))
//!     .metrics([crest::metrics::Metric::BATCH_ACCURACY])
//!     .callback(Box::new(EarlyStoppingCallback::new(Monitor::ValidLoss, 0.0, 3)))
//!     .callback(Box::new(SaveModelCallback::new(Monitor::ValidLoss, 0.0)))
//!     .build()?;
//! learn.fit_one_cycle(20, 3e-3)?;
//! let best = learn.callback::<SaveModelCallback>().and_then(|cb| cb.best()); // the epoch the model is now from
//! # Ok(()) }
//! ```

mod batch_row;
mod callback;
mod checkpoint;
mod divergence;
mod early_stopping;
mod fine_tune;
mod layer_groups;
mod lr_find;
mod lr_slice;
mod runs;
mod save_model;
mod schedule;
mod smoothed_loss;
mod snapshot;
mod steps;
mod stop_at;
mod table;
mod tracker;

pub use batch_row::BatchRow;
pub use callback::{Callback, FitStart};
pub use checkpoint::{data_fingerprint, Checkpointing, FitPosition};
pub use divergence::DIVERGENCE_FACTOR;
pub use early_stopping::EarlyStoppingCallback;
pub use layer_groups::LayerGroups;
pub use lr_find::{minimum, steep, suggest, valley, LrFind, LrFindOptions, Suggestion, Suggestions, SKIP_END};
pub use lr_slice::LrSlice;
pub use runs::{RunLog, Spread};
pub use save_model::SaveModelCallback;
pub use schedule::Schedule;
pub(crate) use smoothed_loss::SmoothedLoss;
pub use steps::{calc_grad, gd_step, train_epoch, validate_epoch, LossFn, Model};
pub use stop_at::StopAtCallback;
pub use table::EpochRow;
pub use tracker::{Best, Monitor};

use crate::data::{DataLoader, Inputs, Targets};
use crate::dist::{self, Communicator, Solo};
use crate::loss::{bce_with_logits, cross_entropy};
use crate::metrics::Metric;
use crate::nn::Module;
use crate::optim::{OptFunc, Optimizer};
use crate::progress::Progress;
use crate::tensor::{no_grad, Tensor};
use crate::{careful_write, interrupt, Error, Result};
use divergence::DivergenceWatch;
use std::any::Any;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

pub struct DataLoaders {
    pub train: DataLoader,
    pub valid: DataLoader,
}

/// One call of `fit`: its epochs, its peak (or constant) learning rates and schedule, and the batches of an epoch.
/// Where a fit stands in its schedule is an epoch of it and a batch of that epoch.
#[derive(Clone, Debug)]
struct FitPlan {
    epochs: usize,
    lr: LrSlice,
    schedule: Schedule,
    batches: usize,
    /// The layer group of each parameter, when the groups train at different rates.
    groups: Option<LayerGroups>,
}

impl FitPlan {
    /// The head's learning rate at batch `i` of the fit's epoch `e`.
    fn lr_at(&self, e: usize, i: usize) -> f32 {
        self.scheduled(self.lr.peak(), e, i)
    }

    fn scheduled(&self, lr: f32, e: usize, i: usize) -> f32 {
        self.schedule.lr(lr, e * self.batches + i, self.epochs * self.batches)
    }

    /// Sets the optimizer's rates for batch `i` of epoch `e`: each group's rate scheduled on its own, as fastai
    /// schedules each parameter group's. Returns the head's.
    fn set_lrs(&self, opt: &mut dyn Optimizer, e: usize, i: usize) -> f32 {
        let head = self.lr_at(e, i);
        match &self.groups {
            None => opt.set_lr(head),
            Some(g) => {
                let group_lrs: Vec<f32> = self.lr.lrs(g.count).iter().map(|&lr| self.scheduled(lr, e, i)).collect();
                opt.set_param_lrs(g.group.iter().map(|&k| group_lrs[k]).collect());
            }
        }
        head
    }
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
    inputs: Inputs,
    metric_average: MetricAverage,
    callbacks: Vec<Box<dyn Callback>>,
    print_table: bool,
    csv: Option<PathBuf>,
    comm: Arc<dyn Communicator>,
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
    /// [`LearnerBuilder::stop_at`] watches, and `Monitor::Metric(0)` names.
    pub fn metrics(mut self, metrics: impl IntoIterator<Item = Metric>) -> Self {
        self.metrics = metrics.into_iter().collect();
        self
    }

    /// How pixel bytes become the model's inputs as every batch is assembled (training, validation, lr_find):
    /// `Inputs::Scaled(1/255)` by default, to [0, 1]; a model pretrained on normalised images fine-tunes on
    /// `Inputs::Normalized` with its weights' mean and std, as fastai's `Normalize` does.
    pub fn inputs(mut self, inputs: Inputs) -> Self {
        self.inputs = inputs;
        self
    }

    /// How validation metrics are averaged over batches: per image by default.
    pub fn metric_average(mut self, average: MetricAverage) -> Self {
        self.metric_average = average;
        self
    }

    /// The post's wish: stop once the first metric reaches this value (a [`StopAtCallback`]).
    pub fn stop_at(self, goal: f32) -> Self {
        self.callback(Box::new(StopAtCallback::new(goal)))
    }

    /// Adds a callback (fastai's `cbs`); callbacks see each event in the order they were added.
    pub fn callback(mut self, callback: Box<dyn Callback>) -> Self {
        self.callbacks.push(callback);
        self
    }

    /// Adds several callbacks, in order.
    pub fn cbs(mut self, callbacks: impl IntoIterator<Item = Box<dyn Callback>>) -> Self {
        self.callbacks.extend(callbacks);
        self
    }

    /// Train without printing the table or the progress bar (the rows are still in `recorder`).
    pub fn quiet(mut self) -> Self {
        self.print_table = false;
        self
    }

    /// Also write the rows to a CSV file (fastai's `CSVLogger`). The file is written whole (see
    /// [`crate::careful_write`]) each time a `fit` ends, also when a callback ends it early (`stop_at`, early stopping); a
    /// `fit` that fails (a diverging loss, an error, a stop request) writes none, leaving an earlier file as it was,
    /// since the table it would hold is already on screen and a log beside no model would be read as a finished
    /// run's. The path is checked when the learner is built.
    pub fn csv_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.csv = Some(path.into());
        self
    }

    /// Train data-parallel with the ranks of `comm` (see [`crate::dist`]): the loaders' batches are global
    /// batches, of which this rank trains its shard; every rank must build the same learner on the same data. One
    /// process ([`Solo`]) by default.
    pub fn communicator(mut self, comm: Arc<dyn Communicator>) -> Self {
        self.comm = comm;
        self
    }

    /// Checks that the model takes the data's images and gives a fitting output before anything trains, naming
    /// both shapes if not. A model with a layer that can't tell its output shape is run on two training images
    /// (in evaluation mode, without gradients) to find it. Normalising statistics must be for the data's channels.
    pub fn build(mut self) -> Result<Learner> {
        let d = self.dls.train.dataset();
        if let Inputs::Normalized(n) = &self.inputs {
            n.check(d.channels, "the inputs' normalisation").map_err(Error::InvalidArgument)?;
        }
        let input = [d.channels, d.height, d.width];
        let classes = d.classes.len();
        let out = match self.model.output_shape(&input) {
            Some(shape) => {
                shape.map_err(|e| Error::Shape(format!("the model does not fit images of shape {input:?}: {e}")))?
            }
            None => probe_output_shape(self.model.as_mut(), &self.dls.train, &self.inputs)?,
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
            batches: Vec::new(),
            opt_func: self.opt_func,
            loss_func,
            metrics: self.metrics,
            inputs: self.inputs,
            metric_average: self.metric_average,
            callbacks: self.callbacks,
            print_table: self.print_table,
            header,
            csv: self.csv,
            divergence: DivergenceWatch::default(),
            opt: None,
            targets,
            epochs_done: 0,
            checkpointing: None,
            resume_from: 0,
            comm: self.comm,
        })
    }
}

/// The model's output shape for one image, from a forward pass over the first two training images.
fn probe_output_shape(model: &mut dyn Module, train: &DataLoader, inputs: &Inputs) -> Result<Vec<usize>> {
    let batch = train.batches(0).next().ok_or_else(|| Error::Data("there are no training images".into()))?;
    let (x, _) = batch.take(2).into_xy(inputs, Targets::Classes);
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
    /// One row per training batch, across fits as `recorder` is.
    pub batches: Vec<BatchRow>,
    opt_func: OptFunc,
    loss_func: LossFn,
    metrics: Vec<Metric>,
    inputs: Inputs,
    metric_average: MetricAverage,
    callbacks: Vec<Box<dyn Callback>>,
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
    /// The ranks training together; this process alone unless [`LearnerBuilder::communicator`] said otherwise.
    comm: Arc<dyn Communicator>,
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
            inputs: Inputs::Scaled(1.0 / 255.0),
            metric_average: MetricAverage::PerImage,
            callbacks: Vec::new(),
            print_table: true,
            csv: None,
            comm: Arc::new(Solo),
        }
    }

    /// The table's header as `fit` prints it: epoch, the losses, the metrics' names, time.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// How the batches' bytes become the model's inputs ([`LearnerBuilder::inputs`]): what a model file of the
    /// trained model must record.
    pub fn inputs(&self) -> &Inputs {
        &self.inputs
    }

    /// How the targets are shaped for this model: 0/1 for one logit, class indices for one output per class.
    pub fn targets(&self) -> Targets {
        self.targets
    }

    /// The learner's callback of type `T` (the first, if it has several), to read what it found after a fit, as
    /// fastai's `learn.<callback name>`: `learn.callback::<SaveModelCallback>().and_then(|c| c.best())`.
    pub fn callback<T: Callback>(&self) -> Option<&T> {
        self.callbacks.iter().find_map(|c| (c.as_ref() as &dyn Any).downcast_ref::<T>())
    }

    /// Predictions for a batch of images, in evaluation mode.
    pub fn predict_batch(&mut self, x: &Tensor) -> Tensor {
        let _g = no_grad();
        self.model.set_training(false);
        self.model.forward(x)
    }

    /// Trains for `epochs` at learning rate `lr`, printing a row per epoch (and, on a terminal, a progress bar while
    /// an epoch that takes more than a second trains), and calling the callbacks. The optimizer (and its state) is
    /// created on the first call and kept across calls, as in fastai.
    pub fn fit(&mut self, epochs: usize, lr: f32) -> Result<&[EpochRow]> {
        self.fit_with(epochs, lr, Schedule::Constant)
    }

    /// fastai's `fit_one_cycle`: warm up to `lr_max`, then anneal (see `Schedule::ONE_CYCLE`). `lr_max` is one
    /// rate, or one per layer group ([`LrSlice`]).
    pub fn fit_one_cycle(&mut self, epochs: usize, lr_max: impl Into<LrSlice>) -> Result<&[EpochRow]> {
        self.fit_with(epochs, lr_max, Schedule::ONE_CYCLE)
    }

    /// `epochs` epochs at `lr` (one rate, or one per layer group: [`LrSlice`]) under `schedule`.
    pub fn fit_with(&mut self, epochs: usize, lr: impl Into<LrSlice>, schedule: Schedule) -> Result<&[EpochRow]> {
        let lr = lr.into();
        let groups = LayerGroups::of(self.model.as_ref());
        let groups = (!lr.is_uniform(groups.count)).then_some(groups);
        if self.checkpointing.is_some()
            && (groups.is_some() || self.model.parameters().iter().any(|p| !p.requires_grad()))
        {
            return Err(Error::InvalidArgument(
                "checkpoints don't record layer groups yet: a fit with frozen layers or discriminative learning \
                 rates can't write them"
                    .into(),
            ));
        }
        let start = std::mem::take(&mut self.resume_from);
        let metric_names: Vec<&'static str> = self.metrics.iter().map(|m| m.name).collect();
        let fit = FitStart {
            epochs,
            first_epoch: self.epochs_done,
            batches: self.dls.train.len(),
            metric_names: &metric_names,
            validates: !self.dls.valid.is_empty(),
        };
        for cb in &mut self.callbacks {
            cb.before_fit(&fit)?;
        }
        if self.print_table {
            println!("{}", table::format_line(&self.header, &self.header));
            // A resumed fit shows the rows trained before its checkpoint, as the run never stopped would.
            for row in &self.recorder[self.recorder.len() - start..] {
                println!("{}", table::format_row(row, &self.header));
            }
        }
        dist::broadcast_parameters(self.comm.as_ref(), self.model.as_ref());
        let mut opt = self.opt.take().unwrap_or_else(|| self.opt_func.build(self.model.parameters(), lr.peak()));
        let plan = FitPlan { epochs, lr, schedule, batches: self.dls.train.len(), groups };
        let result = self.fit_epochs(&plan, start, opt.as_mut());
        self.opt = Some(opt);
        result?;
        if let Some(path) = &self.csv {
            careful_write::write(path, "the training log", table::csv(&self.header, &self.recorder).as_bytes())?;
        }
        Ok(&self.recorder[..])
    }

    /// Epochs `start..` of a fit (`start` is not 0 when resuming from a checkpoint), once the callbacks have heard it
    /// begin; then `after_fit`, unless an epoch failed.
    fn fit_epochs(&mut self, plan: &FitPlan, start: usize, opt: &mut dyn Optimizer) -> Result<()> {
        for e in start..plan.epochs {
            let row = self.fit_epoch(plan, e, opt)?;
            dist::check_same_weights(self.comm.as_ref(), self.model.as_ref(), row.epoch)?;
            if self.print_table {
                println!("{}", table::format_row(&row, &self.header));
            }
            self.epochs_done += 1;
            let mut stops = Vec::new();
            for cb in &mut self.callbacks {
                if let ControlFlow::Break(why) = cb.after_epoch(&row, self.model.as_ref()) {
                    stops.push(why);
                }
            }
            self.recorder.push(row);
            let at = FitPosition { epochs: plan.epochs, done: e + 1, lr: plan.lr.peak(), schedule: plan.schedule };
            self.checkpoint_after_epoch(at, opt)?;
            if !stops.is_empty() {
                if self.print_table {
                    stops.iter().for_each(|why| println!("{why}"));
                }
                break;
            }
        }
        for cb in &mut self.callbacks {
            cb.after_fit(self.model.as_ref());
        }
        Ok(())
    }

    /// Epoch `e` of the fit: a step on every training batch, then validation; returns the table's row. With
    /// several ranks, each batch is a global one: this rank trains on its shard, and the step is taken with the
    /// gradient (and the loss) of the whole batch, summed over the ranks.
    fn fit_epoch(&mut self, plan: &FitPlan, e: usize, opt: &mut dyn Optimizer) -> Result<EpochRow> {
        let start = Instant::now();
        let epoch = self.epochs_done;
        for cb in &mut self.callbacks {
            cb.before_epoch(epoch);
        }
        let bar = Progress::new(plan.batches, format!("epoch {epoch}"), self.print_table);
        self.model.set_training(true);
        let (mut total, mut count) = (0.0f64, 0usize);
        let (rank, ranks) = (self.comm.rank(), self.comm.size());
        let params = self.model.parameters();
        for (i, batch) in self.dls.train.batches(epoch).enumerate() {
            interrupt::check()?;
            let n = batch.n;
            let step_lr = plan.set_lrs(opt, e, i);
            let part = dist::shard(batch, rank, ranks);
            let local = part.n;
            let mut loss = 0.0;
            if local > 0 {
                let (xb, yb) = part.into_xy(&self.inputs, self.targets);
                let model = |x: &Tensor| self.model.forward(x);
                loss = calc_grad(&xb, &yb, &model, self.loss_func).item();
            }
            if ranks > 1 {
                loss = dist::all_reduce_gradients(self.comm.as_ref(), &params, local, n, loss);
            }
            if let Err(err) = self.divergence.check(loss, epoch, i, step_lr) {
                opt.zero_grad();
                return Err(err);
            }
            opt.step();
            opt.zero_grad();
            total += loss as f64 * n as f64;
            count += n;
            let row = BatchRow { epoch, batch: i, loss, lr: step_lr };
            for cb in &mut self.callbacks {
                cb.after_batch(&row);
            }
            self.batches.push(row);
            bar.inc_noting(|| format!("loss {:.4}", total / count as f64));
        }
        let train_seconds = start.elapsed().as_secs_f64();
        dist::broadcast_buffers(self.comm.as_ref(), self.model.as_ref());
        let (valid_loss, metrics) = self.validate();
        bar.finish();
        Ok(EpochRow {
            epoch,
            train_loss: (total / count.max(1) as f64) as f32,
            valid_loss,
            metrics,
            seconds: start.elapsed().as_secs_f64(),
            train_seconds,
        })
    }

    /// Loss and metrics over the validation set, per image (or per batch, as the post does, when asked). With
    /// several ranks, each evaluates its shard of every batch and the sums are added up over the ranks, so every
    /// rank gets the whole set's figures; that is exact for metrics that are means over images, as crest's are.
    pub fn validate(&mut self) -> (Option<f32>, Vec<Option<f32>>) {
        let _g = no_grad();
        self.model.set_training(false);
        let (rank, ranks) = (self.comm.rank(), self.comm.size());
        // Per batch: its size, then the sums over its images of the loss and of each metric.
        let width = 2 + self.metrics.len();
        let mut sums = Vec::with_capacity(self.dls.valid.len() * width);
        for batch in self.dls.valid.batches(0) {
            // The batch's size counted once, by rank 0, for the sum over the ranks.
            sums.push(if rank == 0 { batch.n as f64 } else { 0.0 });
            let part = dist::shard(batch, rank, ranks);
            let local = part.n;
            if local == 0 {
                sums.resize(sums.len() + width - 1, 0.0);
                continue;
            }
            let (x, y) = part.into_xy(&self.inputs, self.targets);
            let preds = self.model.forward(&x);
            sums.push((self.loss_func)(&preds, &y).item() as f64 * local as f64);
            sums.extend(self.metrics.iter().map(|m| (m.f)(&preds, &y).item() as f64 * local as f64));
        }
        if ranks > 1 {
            self.comm.all_reduce_sum_f64(&mut sums);
        }
        let batches: Vec<&[f64]> = sums.chunks_exact(width).collect();
        let images: f64 = batches.iter().map(|b| b[0]).sum();
        if images == 0.0 {
            return (None, vec![None; self.metrics.len()]);
        }
        let loss = batches.iter().map(|b| b[1]).sum::<f64>() / images;
        let metric = |m: usize| match self.metric_average {
            MetricAverage::PerImage => batches.iter().map(|b| b[2 + m]).sum::<f64>() / images,
            MetricAverage::PerBatch => batches.iter().map(|b| b[2 + m] / b[0]).sum::<f64>() / batches.len() as f64,
        };
        (Some(loss as f32), (0..self.metrics.len()).map(|m| Some(metric(m) as f32)).collect())
    }
}
