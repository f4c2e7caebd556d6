//! `crest bench`: `crest train`, then the figures the scripts in `bench/` compare with PyTorch's, printed as the
//! last line: `load_s images_per_s train_s epoch_s valid_acc infer_images_per_s peak_rss_mb`. Nothing here runs
//! during `crest train`.

use super::train::{self, TrainArgs};
use super::world::World;
use crest::data::{DataLoader, Dataset, Order, Targets};
use crest::learner::{EpochRow, Learner};
use crest::tensor::no_grad;
use crest::{Result, Tensor};
use std::sync::Arc;
use std::time::Instant;

/// Under `mpirun`, every rank trains and rank 0 alone measures inference and prints the figures.
pub fn run(args: TrainArgs, world: &World) -> Result<()> {
    let start = Instant::now();
    let split = train::load(&args, world, || Ok(()))?;
    let load_s = start.elapsed().as_secs_f64();
    let images = split.train.len() + split.valid.len();
    let start = Instant::now();
    let mut done = train::run_on(args, split, world)?;
    let train_s = start.elapsed().as_secs_f64();
    if world.rank() != 0 {
        return Ok(());
    }
    let infer = inference_rate(&mut done.learner, &done.data.valid);
    println!(
        "load_s={load_s:.3} images_per_s={:.0} train_s={train_s:.3} epoch_s={:.4} valid_acc={:.4} \
         infer_images_per_s={infer:.0} peak_rss_mb={:.1}",
        images as f64 / load_s.max(1e-9),
        median_train_pass(done.runs.iter().flat_map(|run| &run.recorder)),
        done.accuracy.unwrap_or(f32::NAN),
        peak_rss_mb()
    );
    Ok(())
}

/// Seconds of the median epoch's training pass (validation excluded), as the PyTorch benchmarks report it; over
/// every run's epochs under `--runs`.
fn median_train_pass<'a>(rows: impl Iterator<Item = &'a EpochRow>) -> f64 {
    let mut t: Vec<f64> = rows.map(|r| r.train_seconds).collect();
    t.sort_by(f64::total_cmp);
    t.get(t.len().saturating_sub(1) / 2).copied().unwrap_or(0.0)
}

/// Memory the prepared inference batches may take as f32: all of Fashion-MNIST's 10,000 test images (31 MB), but
/// not the 475 MB that the post's 1,514 images of 140×140×4 would.
const INFER_BYTES: usize = 64 << 20;

/// Images per second through the trained model in evaluation mode, measured as `bench/torch_fashion.py` measures
/// PyTorch: batches of 1000 ready in memory as the f32 values the model was trained on, one warm-up batch first,
/// and passes over them repeated until a second has gone by (one pass over 10,000 images takes a few
/// milliseconds). Large images get smaller and fewer batches, within [`INFER_BYTES`].
fn inference_rate(learner: &mut Learner, valid: &Arc<Dataset>) -> f64 {
    if valid.is_empty() {
        return 0.0;
    }
    let _g = no_grad();
    let image_bytes = valid.item_len() * std::mem::size_of::<f32>();
    let bs = (INFER_BYTES / image_bytes.max(1)).clamp(1, 1000);
    let dl = DataLoader::new(valid.clone(), bs, Order::Sequential);
    let inputs = learner.inputs().clone();
    let batches = || dl.batches(0).map(|batch| batch.into_xy(&inputs, Targets::Classes).0);
    if let Some(x) = batches().next() {
        learner.predict_batch(&x);
    }
    let dense = |x: Tensor| Tensor::from_vec(x.to_vec(), x.shape());
    let xs: Vec<Tensor> = batches().take((INFER_BYTES / (bs * image_bytes).max(1)).max(1)).map(dense).collect();
    let images: usize = xs.iter().map(|x| x.shape()[0]).sum();
    let start = Instant::now();
    let mut passes = 0;
    while passes == 0 || start.elapsed().as_secs_f64() < 1.0 {
        xs.iter().for_each(|x| drop(learner.predict_batch(x)));
        passes += 1;
    }
    (passes * images) as f64 / start.elapsed().as_secs_f64()
}

/// Peak resident memory of this process, in MB (Linux; 0 elsewhere).
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kb.unwrap_or(0.0) / 1024.0
}
