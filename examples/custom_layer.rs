//! A layer of your own: a residual block, `x + f(x)`, written outside crest and trained in a `Learner`.
//!
//!     cargo run --release --example custom_layer [DIR]
//!
//! A `Module` needs only `forward` and, if it has any, its parameters (and `set_training` if it holds layers that
//! care, such as BatchNorm). It doesn't describe itself for crest's model files, so its weights are saved with
//! `model_io::save_weights` (the names PyTorch would give them) and read back into a model built the same way.
//! `Sequential::fused` leaves it alone: fusion only rewrites crest's own layers, recognised by their type.

use crest::data::{self, DataLoader, LoadOptions, Order};
use crest::learner::{DataLoaders, Learner};
use crest::metrics::Metric;
use crest::nn::{Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential};
use crest::rng::Rng;
use crest::tensor::no_grad;
use crest::{model_io, Tensor};
use std::sync::Arc;

/// `x + f(x)`: the input skips past `f` and is added back, so gradients reach earlier layers through the sum
/// unchanged. `f` must keep the shape of its input.
struct Residual {
    f: Sequential,
}

impl Module for Residual {
    fn forward(&self, x: &Tensor) -> Tensor {
        x + &self.f.forward(x)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let named = self.f.named_parameters().into_iter();
        named.map(|(name, p)| (format!("f.{name}"), p)).collect()
    }

    fn set_training(&mut self, training: bool) {
        self.f.set_training(training);
    }
}

/// A small residual CNN for `channels`×28×28 images and one logit:
/// Conv(16) → ReLU → Residual(Conv(16) → ReLU → Conv(16)) → ReLU → MaxPool(2) → Flatten → Linear.
fn model(channels: usize, rng: &mut Rng) -> Sequential {
    let block = Sequential::default()
        .push(Conv2d::new(16, 16, 3, rng).padding(1))
        .push(ReLU)
        .push(Conv2d::new(16, 16, 3, rng).padding(1));
    Sequential::default()
        .push(Conv2d::new(channels, 16, 3, rng).padding(1))
        .push(ReLU)
        .push(Residual { f: block })
        .push(ReLU)
        .push(MaxPool2d { kernel_size: 2, stride: 2, padding: 0 })
        .push(Flatten)
        .push(Linear::new(16 * 14 * 14, 1, rng))
        .fused()
}

/// Trains the residual CNN for `epochs` on the sample (or `dir`), checks its saved weights reload to the same
/// predictions, and returns the validation accuracy.
pub fn run(dir: &str, epochs: usize) -> crest::Result<f32> {
    let split = data::load(dir.as_ref(), &LoadOptions::default())?;
    let (train, valid) = (Arc::new(split.train), Arc::new(split.valid));
    let dls = DataLoaders {
        train: DataLoader::new(train.clone(), 64, Order::Shuffled { seed: 42 }),
        valid: DataLoader::new(valid.clone(), 256, Order::Sequential),
    };
    let net = model(train.channels, &mut Rng::new(42));
    println!("fused by Sequential::fused: {:?} (the residual block is the user's, left as it is)", net.fusions());
    let mut learn = Learner::builder(dls, Box::new(net)).metrics([Metric::BATCH_ACCURACY]).build()?;
    learn.fit_one_cycle(epochs, 3e-3)?;
    let accuracy = learn.recorder.last().and_then(|r| r.metrics[0]).unwrap_or(f32::NAN);

    let path = std::env::temp_dir().join(format!("crest-custom-layer-{}.safetensors", std::process::id()));
    model_io::save_weights(&path, learn.model.as_ref())?;
    let mut reloaded = model(train.channels, &mut Rng::new(7));
    model_io::load_weights(&path, &reloaded)?;
    let _ = std::fs::remove_file(&path);
    reloaded.set_training(false);
    let x = DataLoader::new(valid, 256, Order::Sequential)
        .batches(0)
        .next()
        .map(|b| b.into_xy(learn.inputs(), learn.targets()).0);
    if let Some(x) = x {
        let trained = learn.predict_batch(&x).to_vec();
        let _g = no_grad();
        assert_eq!(reloaded.forward(&x).to_vec(), trained, "the reloaded weights predict as the trained ones");
    }
    Ok(accuracy)
}

#[allow(dead_code)] // the test in tests/custom_layer.rs runs `run` without `main`
fn main() -> crest::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "data/mnist_sample".into());
    let accuracy = run(&dir, 3)?;
    println!("valid accuracy with a residual block of our own: {accuracy:.4}");
    Ok(())
}
