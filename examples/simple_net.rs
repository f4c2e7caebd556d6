//! fastbook chapter 4's next step: a real neural net instead of one linear layer.
//!
//!     cargo run --release --example simple_net [DIR]
//!
//! `Linear(784, 30) → ReLU → Linear(30, 1)`, the post's loss (`mnist_loss`), plain SGD, `fit(40, 0.1)`, on the
//! 3-vs-7 sample by default.

use crest::data::{self, DataLoader, LoadOptions, Order};
use crest::learner::{DataLoaders, Learner};
use crest::loss::mnist_loss;
use crest::metrics::Metric;
use crest::nn::{Flatten, Linear, ReLU, Sequential};
use crest::optim::OptFunc;
use crest::rng::Rng;
use std::sync::Arc;

fn main() -> crest::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "data/mnist_sample".into());
    let split = data::load(dir.as_ref(), &LoadOptions::default())?;
    let features = split.train.item_len();
    let mut rng = Rng::new(42);
    let simple_net = Sequential::default()
        .push(Flatten)
        .push(Linear::new(features, 30, &mut rng))
        .push(ReLU)
        .push(Linear::new(30, 1, &mut rng))
        .fused();
    let dls = DataLoaders {
        train: DataLoader::new(Arc::new(split.train), 256, Order::Shuffled { seed: 42 }),
        valid: DataLoader::new(Arc::new(split.valid), 256, Order::Sequential),
    };
    let mut learn = Learner::builder(dls, Box::new(simple_net))
        .opt_func(OptFunc::sgd())
        .loss_func(mnist_loss)
        .metrics([Metric::BATCH_ACCURACY])
        .build()?;
    learn.fit(40, 0.1)?;
    let last = learn.recorder.last().and_then(|r| r.metrics[0]).unwrap_or(f32::NAN);
    println!("valid accuracy after 40 epochs: {last:.4}");
    Ok(())
}
