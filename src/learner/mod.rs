//! fastai's `Learner`: data, model, optimizer, loss and metrics; `fit(epochs, lr)` trains and prints the table.

mod schedule;
mod steps;
mod table;

pub use schedule::Schedule;
pub use steps::{calc_grad, gd_step, train_epoch, validate_epoch, LossFn, Model};
pub use table::{CsvLogger, EpochRow};

use crate::data::DataLoader;
use crate::metrics::Metric;
use crate::nn::Module;
use crate::optim::{OptFunc, Optimizer};
use crate::tensor::{no_grad, Tensor};
use std::time::Instant;

pub struct DataLoaders {
    pub train: DataLoader,
    pub valid: DataLoader,
}

/// Why training stopped early.
#[derive(Debug)]
pub enum FitError {
    /// The loss stopped being a number: almost always a learning rate that is too high.
    NonFinite {
        epoch: usize,
        batch: usize,
        loss: f32,
        lr: f32,
    },
    Io(std::io::Error),
}

impl std::fmt::Display for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FitError::NonFinite { epoch, batch, loss, lr } => write!(
                f,
                "the loss became {loss} at epoch {epoch}, batch {batch}: the learning rate {lr} is too high for this model; try a smaller one (e.g. --lr {})",
                lr / 10.0
            ),
            FitError::Io(e) => write!(f, "writing the training log: {e}"),
        }
    }
}

impl std::error::Error for FitError {}

pub struct Learner {
    pub dls: DataLoaders,
    pub model: Box<dyn Module>,
    pub opt_func: OptFunc,
    pub loss_func: LossFn,
    pub metrics: Vec<Metric>,
    /// Pixel bytes are multiplied by this as batches are assembled (1/255: scaled once).
    pub scale: f32,
    /// Average metrics over batches as the post's `validate_epoch` does, instead of per image.
    pub batch_mean_metrics: bool,
    /// The post's wish: stop once the first metric reaches this value.
    pub stop_at: Option<f32>,
    pub verbose: bool,
    pub recorder: Vec<EpochRow>,
    csv: Option<CsvLogger>,
    opt: Option<Box<dyn Optimizer>>,
    binary: bool,
    epochs_done: usize,
}

impl Learner {
    /// Checks that the model takes the data's images before anything trains, naming both shapes if not.
    pub fn new(
        dls: DataLoaders,
        model: Box<dyn Module>,
        opt_func: OptFunc,
        loss_func: LossFn,
        metrics: Vec<Metric>,
    ) -> Result<Learner, String> {
        let d = dls.train.dataset();
        let input = [d.channels, d.height, d.width];
        let out =
            model.output_shape(&input).map_err(|e| format!("the model does not fit images of shape {input:?}: {e}"))?;
        let binary = match out[..] {
            [1] => true,
            [k] if k >= d.classes.len() => false,
            _ => {
                return Err(format!(
                    "the model outputs {out:?} per image; {} classes need [1] or [{}]",
                    d.classes.len(),
                    d.classes.len()
                ))
            }
        };
        Ok(Learner {
            dls,
            model,
            opt_func,
            loss_func,
            metrics,
            scale: 1.0 / 255.0,
            batch_mean_metrics: false,
            stop_at: None,
            verbose: true,
            recorder: Vec::new(),
            csv: None,
            opt: None,
            binary,
            epochs_done: 0,
        })
    }

    /// Also write each epoch's row to a CSV file.
    pub fn log_csv(&mut self, path: &std::path::Path) -> std::io::Result<()> {
        self.csv = Some(CsvLogger::create(path, &self.header())?);
        Ok(())
    }

    fn header(&self) -> Vec<String> {
        table::header(&self.metrics.iter().map(|m| m.name).collect::<Vec<_>>())
    }

    /// Predictions for a batch of images, in evaluation mode.
    pub fn predict_batch(&mut self, x: &Tensor) -> Tensor {
        let _g = no_grad();
        self.model.set_training(false);
        self.model.forward(x)
    }

    /// Trains for `epochs` at learning rate `lr`, printing a row per epoch. The optimizer (and its state) is
    /// created on the first call and kept across calls, as in fastai.
    pub fn fit(&mut self, epochs: usize, lr: f32) -> Result<&[EpochRow], FitError> {
        self.fit_with(epochs, lr, Schedule::Constant)
    }

    /// fastai's `fit_one_cycle`: warm up to `lr_max`, then anneal (see `Schedule::OneCycle`).
    pub fn fit_one_cycle(&mut self, epochs: usize, lr_max: f32) -> Result<&[EpochRow], FitError> {
        self.fit_with(epochs, lr_max, Schedule::OneCycle)
    }

    pub fn fit_with(&mut self, epochs: usize, lr: f32, schedule: Schedule) -> Result<&[EpochRow], FitError> {
        let header = self.header();
        if self.verbose {
            println!("{}", table::format_line(&header, &header));
        }
        let mut opt = self.opt.take().unwrap_or_else(|| self.opt_func.build(self.model.parameters(), lr));
        let result = self.fit_epochs(epochs, lr, schedule, opt.as_mut(), &header);
        self.opt = Some(opt);
        result.map(|_| &self.recorder[..])
    }

    fn fit_epochs(
        &mut self,
        epochs: usize,
        lr: f32,
        schedule: Schedule,
        opt: &mut dyn Optimizer,
        header: &[String],
    ) -> Result<(), FitError> {
        let steps = epochs * self.dls.train.len();
        for e in 0..epochs {
            let start = Instant::now();
            let epoch = self.epochs_done;
            self.model.set_training(true);
            let (mut total, mut count) = (0.0f64, 0usize);
            for (i, batch) in self.dls.train.batches(epoch).enumerate() {
                let n = batch.n;
                let step_lr = schedule.lr(lr, e * self.dls.train.len() + i, steps);
                opt.set_lr(step_lr);
                let (xb, yb) = batch.into_xy(self.scale, self.binary);
                let model = |x: &Tensor| self.model.forward(x);
                let loss = calc_grad(&xb, &yb, &model, self.loss_func).item();
                if !loss.is_finite() {
                    opt.zero_grad();
                    return Err(FitError::NonFinite { epoch, batch: i, loss, lr });
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
            if self.verbose {
                println!("{}", table::format_row(&row, header));
            }
            if let Some(csv) = &mut self.csv {
                csv.write(&row).map_err(FitError::Io)?;
            }
            self.epochs_done += 1;
            let reached = matches!((self.stop_at, row.metrics.first()), (Some(goal), Some(Some(m))) if *m >= goal);
            self.recorder.push(row);
            if reached {
                if self.verbose {
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
        for batch in self.dls.valid.batches(0) {
            let n = batch.n;
            let (x, y) = batch.into_xy(self.scale, self.binary);
            let preds = self.model.forward(&x);
            let weight = if self.batch_mean_metrics { 1.0 } else { n as f64 };
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
        let denom = if self.batch_mean_metrics { batches } else { images } as f64;
        (Some((loss / images as f64) as f32), sums.iter().map(|s| Some((s / denom) as f32)).collect())
    }
}
