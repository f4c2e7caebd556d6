//! fastbook chapter 4's next step: a real neural net instead of one linear layer.
//!
//!     cargo run --release --example simple_net [DIR]
//!
//! `Linear(784, 30) → ReLU → Linear(30, 1)`, the post's loss (`mnist_loss`), plain SGD, `fit(40, 0.1)`, on the
//! 3-vs-7 sample by default.

use crest::data::{self, DataLoader, LoadOptions};
use crest::learner::{DataLoaders, Learner};
use crest::loss::mnist_loss;
use crest::metrics::Metric;
use crest::nn::{Flatten, Linear, ReLU, Sequential};
use crest::optim::OptFunc;
use crest::rng::Rng;
use std::sync::Arc;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "data/mnist_sample".into());
    let split = data::load(dir.as_ref(), &LoadOptions::default())?;
    let features = split.train.item_len();
    let mut rng = Rng::new(42);
    let simple_net = Sequential::default()
        .push(Flatten)
        .push(Linear::new(features, 30, &mut rng))
        .push(ReLU)
        .push(Linear::new(30, 1, &mut rng));
    let dls = DataLoaders {
        train: DataLoader::new(Arc::new(split.train), 256, true, 42),
        valid: DataLoader::new(Arc::new(split.valid), 256, false, 42),
    };
    let sgd = OptFunc::Sgd { momentum: 0.0, weight_decay: 0.0 };
    let mut learn = Learner::new(dls, Box::new(simple_net), sgd, mnist_loss, vec![Metric::BATCH_ACCURACY])
        .map_err(anyhow::Error::msg)?;
    learn.fit(40, 0.1)?;
    let last = learn.recorder.last().and_then(|r| r.metrics[0]).unwrap_or(f32::NAN);
    println!("valid accuracy after 40 epochs: {last:.4}");
    Ok(())
}
