//! Checkpoints: everything a `fit` carries from one epoch to the next, written after every N epochs, so that a run
//! cut off (killed, a power cut) can continue where the last one was written and end with the same numbers and
//! the same model, bit for bit, as a run never cut off.
//!
//! What makes epoch k+1 what it is, and so what a checkpoint holds: the model's parameters and buffers (BatchNorm's
//! running statistics) and its random generators (Dropout's); the optimizer's state (momentum, Adam's moments and
//! step); the schedule's position (epochs done of how many, the peak learning rate, the schedule's kind); the
//! epochs trained in all (shuffling and augmentation are drawn from (seed, epoch), so that number is all they
//! need); the table so far (the resumed run prints and logs the whole table); the divergence watch's average.
//!
//! And what identifies the run, so that a checkpoint is not resumed into another: name–value pairs the caller
//! gives (the command line gives its data's fingerprint, classes and counts, `--arch` and the options that change
//! the numbers), all of which must match.
//!
//! The file is a safetensors file as a model file is (tensors `model.NAME` and `optimizer.INDEX.BUFFER`, JSON
//! under `crest_checkpoint`, a checksum of both), written whole by [`crate::careful_write`], and read as untrusted
//! input: everything in it is checked before anything in the learner changes.

use super::divergence::DivergenceWatch;
use super::smoothed_loss::SmoothedLoss;
use super::snapshot::ModelSnapshot;
use super::{EpochRow, Learner, Schedule};
use crate::data::Dataset;
use crate::model_io::{self, TensorFile};
use crate::optim::{Optimizer, OptimizerState};
use crate::text::printable;
use crate::{careful_write, Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Bumped when what a checkpoint holds changes; other formats are refused.
const FORMAT: u32 = 1;
const META_KEY: &str = "crest_checkpoint";

/// Where a learner writes its checkpoints, how often, and what identifies its run.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpointing {
    pub path: PathBuf,
    /// After every this many epochs of a fit (at least 1).
    pub every: usize,
    /// What a checkpoint must match to be resumed in a run: names and values (`("--arch", "mlp")`), in order.
    pub run: Vec<(String, String)>,
}

/// Where a fit was: `done` of `epochs` epochs trained, at peak (or constant) learning rate `lr` under `schedule`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitPosition {
    pub epochs: usize,
    pub done: usize,
    pub lr: f32,
    pub schedule: Schedule,
}

/// The checkpoint's JSON.
#[derive(Serialize, Deserialize)]
struct Contents {
    format: u32,
    crest_version: String,
    run: Vec<(String, String)>,
    fit: FitPosition,
    epochs_done: usize,
    table: Vec<EpochRow>,
    divergence: Divergence,
    optimizer: Optim,
    rngs: Vec<(String, u64)>,
}

/// The divergence watch; its average as the bits of the f64 (JSON numbers are read back to the nearest f64 only
/// up to serde_json's precision).
#[derive(Serialize, Deserialize)]
struct Divergence {
    first: Option<f32>,
    average_bits: u64,
    steps: i32,
}

/// The optimizer's state but its buffers, which are tensors of the file.
#[derive(Serialize, Deserialize)]
struct Optim {
    kind: String,
    lr: f32,
    counters: Vec<(String, u64)>,
    buffers: Vec<String>,
}

/// A fingerprint of a data set's images, labels, classes and shape: CRC-32 of them all, as 8 hex digits. It
/// tells data sets apart (a folder with one image more, or changed), not a defence against crafted data.
pub fn data_fingerprint(d: &Dataset) -> String {
    let mut crc = crc32fast::Hasher::new();
    for n in [d.channels, d.height, d.width, d.len(), d.classes.len()] {
        crc.update(&(n as u64).to_le_bytes());
    }
    for c in &d.classes {
        crc.update(&(c.len() as u64).to_le_bytes());
        crc.update(c.as_bytes());
    }
    d.labels.iter().for_each(|l| crc.update(&l.to_le_bytes()));
    d.read_through(|image| crc.update(image));
    format!("{:08x}", crc.finalize())
}

impl Learner {
    /// Writes a checkpoint to `c.path` after every `c.every` epochs of each fit from now on (replacing it whole
    /// each time). The path is checked now, so a long run doesn't end in "cannot write".
    pub fn checkpoint_every(&mut self, c: Checkpointing) -> Result<()> {
        if c.every == 0 {
            return Err(Error::InvalidArgument("checkpoints are written every 1 or more epochs, not every 0".into()));
        }
        careful_write::check(&c.path, "the checkpoint")?;
        self.checkpointing = Some(c);
        Ok(())
    }

    /// Called by the fit loop after each epoch: writes the checkpoint when one is due.
    pub(super) fn checkpoint_after_epoch(&self, fit: FitPosition, opt: &dyn Optimizer) -> Result<()> {
        let Some(c) = &self.checkpointing else { return Ok(()) };
        if !fit.done.is_multiple_of(c.every) {
            return Ok(());
        }
        let model = ModelSnapshot::take(self.model.as_ref());
        let state = opt.state();
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = model
            .tensors
            .iter()
            .map(|(n, shape, v)| (format!("model.{n}"), shape.clone(), model_io::le_bytes(v)))
            .collect();
        tensors.extend(
            state.buffers.iter().map(|(n, v)| (format!("optimizer.{n}"), vec![v.len()], model_io::le_bytes(v))),
        );
        let contents = Contents {
            format: FORMAT,
            crest_version: env!("CARGO_PKG_VERSION").into(),
            run: c.run.clone(),
            fit,
            epochs_done: self.epochs_done,
            table: self.recorder.clone(),
            divergence: Divergence {
                first: self.divergence.first,
                average_bits: self.divergence.smoothed.average.to_bits(),
                steps: self.divergence.smoothed.count,
            },
            optimizer: Optim {
                kind: state.kind,
                lr: state.lr,
                counters: state.counters,
                buffers: state.buffers.into_iter().map(|(n, _)| n).collect(),
            },
            rngs: model.rngs,
        };
        let json = serde_json::to_string(&contents)
            .map_err(|e| Error::InvalidArgument(format!("cannot describe the checkpoint: {e}")))?;
        careful_write::write(&c.path, "the checkpoint", &model_io::encode(&tensors, META_KEY, Some(json))?)
    }

    /// Puts the learner (built as the run that wrote the checkpoint built it) back where the checkpoint at `path`
    /// was written, after checking that it is whole (its checksum), crest's, of this format, from this run (every
    /// one of `run` matches what it records) and fits the model; returns the fit to continue, which
    /// [`Learner::fit_with`] then continues: `fit_with(at.epochs, at.lr, at.schedule)` trains the epochs left.
    /// Nothing in the learner changes unless every check passes.
    pub fn resume(&mut self, path: &Path, run: &[(String, String)]) -> Result<FitPosition> {
        let refuse = |reason: String| Error::Checkpoint { path: path.to_path_buf(), reason };
        let bytes = model_io::read_file(path).map_err(|e| match e {
            Error::ModelFile { reason, .. } => refuse(reason),
            Error::Io { source, .. } => Error::io("cannot read checkpoint", path, source),
            e => e,
        })?;
        let file = TensorFile::parse(&bytes, META_KEY)
            .map_err(|why| refuse(format!("it is not a crest checkpoint: {why}")))?;
        let format = serde_json::from_str::<serde_json::Value>(file.meta()).ok().and_then(|v| v["format"].as_u64());
        if format != Some(FORMAT as u64) {
            return Err(refuse(format!("it is in checkpoint format {format:?}; this crest reads format {FORMAT}")));
        }
        let c: Contents = serde_json::from_str(file.meta()).map_err(|e| {
            refuse(format!("its metadata does not describe a checkpoint ({})", printable(&e.to_string())))
        })?;
        other_run(&c.run, run).map_or(Ok(()), |why| Err(refuse(format!("it is from another run: {why}"))))?;
        check_position(&c).map_err(refuse)?;
        let (model, state) = self.read_state(&c, &file).map_err(refuse)?;
        let mut opt = self.opt_func.build(self.model.parameters(), c.fit.lr);
        opt.load_state(&state).map_err(|e| refuse(e.to_string()))?;

        model.restore(self.model.as_ref());
        self.opt = Some(opt);
        self.recorder = c.table;
        self.epochs_done = c.epochs_done;
        self.divergence = DivergenceWatch {
            first: c.divergence.first,
            smoothed: SmoothedLoss { average: f64::from_bits(c.divergence.average_bits), count: c.divergence.steps },
        };
        self.resume_from = c.fit.done;
        Ok(c.fit)
    }

    /// The model's state and the optimizer's, from the file, checked against this learner's model.
    fn read_state(&self, c: &Contents, file: &TensorFile) -> Result<(ModelSnapshot, OptimizerState), String> {
        let params = self.model.parameters();
        let mut expected: Vec<(String, Vec<usize>)> = model_io::state(self.model.as_ref())
            .into_iter()
            .map(|(n, t)| (format!("model.{n}"), t.shape().to_vec()))
            .collect();
        let model_tensors = expected.len();
        for name in &c.optimizer.buffers {
            let param = name.split_once('.').and_then(|(i, _)| i.parse::<usize>().ok()).and_then(|i| params.get(i));
            let Some(p) = param else {
                return Err(format!("its optimizer buffer {} belongs to no parameter of the model", printable(name)));
            };
            expected.push((format!("optimizer.{name}"), vec![p.numel()]));
        }
        if file.len() != expected.len() {
            return Err(format!(
                "it holds {} tensors; this model and its optimizer state need {}",
                file.len(),
                expected.len()
            ));
        }
        let mut values = file.values(&expected)?.into_iter();
        let tensors = expected[..model_tensors]
            .iter()
            .zip(values.by_ref())
            .map(|((n, shape), v)| (n["model.".len()..].to_string(), shape.clone(), v))
            .collect();
        let snapshot = ModelSnapshot { tensors, rngs: c.rngs.clone() };
        if let Some(why) = snapshot.mismatch(self.model.as_ref()) {
            return Err(why);
        }
        let state = OptimizerState {
            kind: c.optimizer.kind.clone(),
            lr: c.optimizer.lr,
            counters: c.optimizer.counters.clone(),
            buffers: c.optimizer.buffers.iter().cloned().zip(values).collect(),
        };
        Ok((snapshot, state))
    }
}

/// How `stored` (a checkpoint's run) differs from `run` (this one's), as the end of a sentence; `None` if not.
fn other_run(stored: &[(String, String)], run: &[(String, String)]) -> Option<String> {
    for (name, value) in run {
        match stored.iter().find(|(n, _)| n == name) {
            None => return Some(format!("it does not record its {name}")),
            Some((_, v)) if v != value => {
                return Some(format!("its {name} is {}, this run's is {}", printable(v), printable(value)))
            }
            Some(_) => {}
        }
    }
    let extra = stored.iter().find(|(n, _)| !run.iter().any(|(m, _)| m == n))?;
    Some(format!("it records {} {}, which this run does not have", printable(&extra.0), printable(&extra.1)))
}

/// The fit position and the table agree with each other: some of the fit done and some left or none, a row per
/// epoch trained, a learning rate that is a number.
fn check_position(c: &Contents) -> Result<(), String> {
    let fit = &c.fit;
    if fit.done == 0 || fit.done > fit.epochs {
        return Err(format!("it was written after epoch {} of {}", fit.done, fit.epochs));
    }
    if c.table.len() != c.epochs_done || c.epochs_done < fit.done {
        return Err(format!("its table has {} rows for {} epochs trained", c.table.len(), c.epochs_done));
    }
    if !(fit.lr.is_finite() && fit.lr > 0.0) {
        return Err(format!("its learning rate {} is not a positive number", fit.lr));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::fixtures::TempDir;
    use crate::learner::lr_find::tests::{learner, weights};

    #[test]
    fn a_resumed_fit_of_a_model_with_dropout_and_batchnorm_ends_as_the_whole_fit() {
        let dir = TempDir::new("checkpoint");
        let path = dir.path().join("run.ckpt");
        let run = vec![("data".to_string(), "random".to_string())];
        // Every 3 epochs of 4: the checkpoint is the one after epoch 3.
        let mut whole = learner();
        whole.checkpoint_every(Checkpointing { path: path.clone(), every: 3, run: run.clone() }).unwrap();
        whole.fit_one_cycle(4, 1e-2).unwrap();

        let mut resumed = learner();
        let at = resumed.resume(&path, &run).unwrap();
        assert_eq!(at, FitPosition { epochs: 4, done: 3, lr: 1e-2, schedule: Schedule::ONE_CYCLE });
        assert_eq!(resumed.recorder, whole.recorder[..3]);
        resumed.fit_with(at.epochs, at.lr, at.schedule).unwrap();
        assert_eq!(weights(&resumed), weights(&whole));
        let row = |r: &EpochRow| (r.epoch, r.train_loss.to_bits(), r.valid_loss.map(f32::to_bits));
        assert_eq!(row(&resumed.recorder[3]), row(&whole.recorder[3]));

        // Without Dropout's generator the last epoch draws other masks: the state is needed, not incidental.
        let mut without = learner();
        without.resume(&path, &run).unwrap();
        for (_, rng) in without.model.named_rngs() {
            *rng.lock().unwrap() = crate::rng::Rng::new(0);
        }
        without.fit_with(4, 1e-2, Schedule::ONE_CYCLE).unwrap();
        assert_ne!(weights(&without), weights(&whole));

        let other = [("data".to_string(), "other".to_string())];
        let e = learner().resume(&path, &other).unwrap_err().to_string();
        assert!(e.ends_with("it is from another run: its data is random, this run's is other"), "{e}");
    }
}
