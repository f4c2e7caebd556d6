//! How fast crest's ResNet-18 trains and infers, measured as bench/torch_resnet_speed.py measures torchvision's:
//! synthetic inputs (seeded N(0, 1) images, labels i mod 10, 10 classes), SGD with momentum 0.9, lr 0.01.
//!
//!     cargo run --release --example resnet_speed -- [--depth 18] [--steps 10] [--threads N] [--only 64|128|224]
//!
//! Training: batches of 64 at 64×64 and at 128×128 (RGB), forward + cross-entropy + backward + step, one warm-up
//! step then `--steps` timed ones. Inference: batches of 16 at 224×224 in eval mode without gradients, one warm-up
//! batch then `--steps` timed ones (`--only` runs one of the three, e.g. under a profiler). Prints one line per measurement, `name images_per_s=…`, and ends with
//! `train64_images_per_s=… train128_images_per_s=… infer224_images_per_s=…`. Run on a quiet machine.

use crest::loss::cross_entropy;
use crest::nn::{Module, ResNet};
use crest::optim::{Optimizer, SGD};
use crest::rng::Rng;
use crest::tensor::no_grad;
use crest::Tensor;
use std::time::Instant;

const CLASSES: usize = 10;

struct Args {
    depth: usize,
    steps: usize,
    threads: Option<usize>,
    only: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { depth: 18, steps: 10, threads: None, only: None };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let value = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        let n = value.parse::<usize>().map_err(|e| format!("{a} {value}: {e}"))?;
        match a.as_str() {
            "--depth" => args.depth = n,
            "--steps" => args.steps = n.max(1),
            "--threads" => args.threads = Some(n.max(1)),
            "--only" if [64, 128, 224].contains(&n) => args.only = Some(n),
            _ => return Err(format!("unknown option {a}")),
        }
    }
    Ok(args)
}

/// A batch of `n` seeded N(0, 1) RGB images of `size`×`size`, and their labels.
fn batch(n: usize, size: usize) -> (Tensor, Tensor) {
    let x = Tensor::randn(&[n, 3, size, size], 1.0, &mut Rng::new(size as u64));
    let y = Tensor::from_vec((0..n).map(|i| (i % CLASSES) as f32).collect(), &[n]);
    (x, y)
}

/// Images per second over `steps` training steps on batches of 64 at `size`, after one warm-up step.
fn train_rate(depth: usize, size: usize, steps: usize) -> f64 {
    let mut net = ResNet::new(depth, 3, CLASSES, &mut Rng::new(0)).expect("a depth crest builds");
    net.set_training(true);
    let mut opt = SGD::new(net.parameters(), 0.01).momentum(0.9);
    let (x, y) = batch(64, size);
    let mut step = || {
        opt.zero_grad();
        cross_entropy(&net.forward(&x), &y).backward();
        opt.step();
    };
    step();
    let start = Instant::now();
    (0..steps).for_each(|_| step());
    (64 * steps) as f64 / start.elapsed().as_secs_f64()
}

/// Images per second over `steps` eval-mode batches of 16 at 224×224, after one warm-up batch.
fn infer_rate(depth: usize, steps: usize) -> f64 {
    let mut net = ResNet::new(depth, 3, CLASSES, &mut Rng::new(0)).expect("a depth crest builds");
    net.set_training(false);
    let (x, _) = batch(16, 224);
    let _g = no_grad();
    drop(net.forward(&x));
    let start = Instant::now();
    (0..steps).for_each(|_| drop(net.forward(&x)));
    (16 * steps) as f64 / start.elapsed().as_secs_f64()
}

// As in the crest binary, which `crest train` runs: tensors on cache-line boundaries, freed memory kept for the next
// step.
#[global_allocator]
static ALLOC: crest::alloc::CacheAligned = crest::alloc::CacheAligned;

fn main() {
    crest::alloc::keep_freed_memory();
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    });
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global().expect("the first pool");
    }
    if let Some(only) = args.only {
        let (what, rate) = if only == 224 {
            ("infer", infer_rate(args.depth, args.steps))
        } else {
            ("train", train_rate(args.depth, only, args.steps))
        };
        println!("resnet{} {what} {only}x{only} images_per_s={rate:.1}", args.depth);
        return;
    }
    let train64 = train_rate(args.depth, 64, args.steps);
    println!("resnet{} train 64x64 batch 64 images_per_s={train64:.1}", args.depth);
    let train128 = train_rate(args.depth, 128, args.steps);
    println!("resnet{} train 128x128 batch 64 images_per_s={train128:.1}", args.depth);
    let infer = infer_rate(args.depth, args.steps);
    println!("resnet{} infer 224x224 batch 16 images_per_s={infer:.1}", args.depth);
    println!("train64_images_per_s={train64:.1} train128_images_per_s={train128:.1} infer224_images_per_s={infer:.1}");
}
