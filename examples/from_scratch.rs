//! The blog post "Building an Image Classifier from Scratch (Part 2)", step by step, in crest.
//!
//!     cargo run --release --example from_scratch [DIR] [--size N]
//!
//! DIR defaults to the shipped 3-vs-7 sample; the post's own case is colour logos at 140×140×4, e.g.
//! `../shared/data/emoji-vendors --size 140`. It replays the post as written — and shows why that stays near
//! chance on real data — then makes the three fixes crest uses by default.

use crest::data::{self, ChannelsOpt, DataLoader, Dataset, Inputs, LoadOptions, Order};
use crest::learner::{gd_step, train_epoch, validate_epoch, DataLoaders, Learner, LossFn, MetricAverage};
use crest::loss::{bce_with_logits, mnist_loss};
use crest::metrics::{batch_accuracy, Metric};
use crest::nn::{init_params, Flatten, Linear, Sequential};
use crest::optim::OptFunc;
use crest::rng::Rng;
use crest::{Error, Tensor};
use std::sync::Arc;

fn main() -> crest::Result<()> {
    let (mut dir, mut size) = ("data/mnist_sample".to_string(), None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--size" => {
                let n = args.next().and_then(|v| v.parse().ok());
                size = Some(n.ok_or_else(|| Error::InvalidArgument("--size needs a number".into()))?);
            }
            _ => dir = a,
        }
    }

    println!("## Pre-processing\n");
    let opts = LoadOptions { size, channels: ChannelsOpt::Auto, valid_pct: 0.2, seed: 42, ..LoadOptions::default() };
    let split = data::load(dir.as_ref(), &opts)?;
    let (train, valid) = (Arc::new(split.train), Arc::new(split.valid));
    let [c, h, w] = [train.channels, train.height, train.width];
    println!(
        "classes {:?}: train {:?}, valid {:?}, each image {c}×{h}×{w}",
        train.classes,
        train.class_counts(),
        valid.class_counts()
    );

    // The post scales twice: ToTensor() already maps to [0,1], then `.float()/255` again.
    let posted_scale = 1.0 / 255.0 / 255.0;
    println!("\n## Variable definitions\n");
    let (train_x, train_y) = tensors(&train, posted_scale);
    println!("train_x.shape = {:?}, train_y.shape = {:?}", train_x.shape(), train_y.shape());

    println!("\n## Parameters\n");
    let mut rng = Rng::new(42);
    let weights = init_params(&[c * h * w, 1], 1.0, &mut rng);
    let bias = init_params(&[1], 1.0, &mut rng);
    println!("weights.shape = {:?}, bias.shape = {:?}", weights.shape(), bias.shape());
    println!("{}", weights.summary());
    // The post flattened its whole dataset up front; crest's batches arrive as [n, C, H, W], so flatten here.
    let linear1 = |xb: &Tensor| &xb.flatten().matmul(&weights) + &bias;

    println!("\n## The first run (a batch of 4)\n");
    let batch = train_x.narrow(0, 0, 4);
    let preds = linear1(&batch);
    println!("preds = {preds}");
    let loss = mnist_loss(&preds, &train_y.narrow(0, 0, 4));
    println!("loss = {loss}");
    loss.backward();
    let grad = weights.grad().expect("the loss depends on the weights");
    println!(
        "weights.grad: shape {:?}, mean {:.3e}; bias.grad = {}",
        grad.shape(),
        grad.mean().item(),
        bias.grad().expect("bias grad")
    );
    println!("histogram of weights.grad:\n{}", grad.histogram(8));
    let before = weights.summary();
    let params = [weights.clone(), bias.clone()];
    gd_step(&params, 1.0);
    let after = weights.summary();
    println!("Original {before}\nAfter gd {after}");
    println!("loss after one step = {}", mnist_loss(&linear1(&batch), &train_y.narrow(0, 0, 4)));

    println!("\n## Putting everything together: the post's DataLoader (batches of 200, never shuffled)\n");
    let dl = DataLoader::new(train.clone(), 200, Order::Sequential);
    let valid_dl = DataLoader::new(valid.clone(), 50, Order::Sequential);
    let first: Vec<u32> = dl.batches(0).next().map(|b| b.labels).unwrap_or_default();
    println!(
        "classes in the first batch: {:?} — the data is sorted by class, so every batch holds one class",
        class_mix(&first, train.classes.len())
    );
    println!(
        "validate_epoch(linear1) untrained = {}",
        validate_epoch(&linear1, &valid_dl, posted_scale, batch_accuracy)
    );
    let lr = 1.0;
    for epoch in 0..20 {
        train_epoch(&linear1, lr, &params, &dl, epoch, posted_scale, mnist_loss);
        print!("{} ", validate_epoch(&linear1, &valid_dl, posted_scale, batch_accuracy));
    }
    println!();

    println!("\n## Learner(dls, nn.Linear, SGD, logo_loss, batch_accuracy).fit(20, 0.1) — as posted\n");
    fit(&train, &valid, Posted::AsWritten)?;
    println!("\n## The slips fixed: shuffled batches, pixels scaled once, PyTorch's Linear init, accuracy per image\n");
    fit(&train, &valid, Posted::Fixed)?;
    println!("\n## crest's defaults: binary cross-entropy on the logit, Adam, batches of 64, one-cycle schedule\n");
    fit(&train, &valid, Posted::CrestDefaults)?;
    println!("\nWhy: an unshuffled batch of one class pushes every prediction the same way, so the model swings");
    println!("between classes. With the slips fixed, mnist_loss still learns only while the sigmoid is not saturated:");
    println!("far into a flat tail its gradient vanishes, and on large images some seeds never leave 50%.");
    println!("Cross-entropy on the logit keeps a gradient wherever a prediction is wrong.");
    Ok(())
}

#[derive(PartialEq)]
enum Posted {
    AsWritten,
    Fixed,
    CrestDefaults,
}

fn fit(train: &Arc<Dataset>, valid: &Arc<Dataset>, how: Posted) -> crest::Result<()> {
    let posted = how == Posted::AsWritten;
    let (c, h, w) = (train.channels, train.height, train.width);
    let mut rng = Rng::new(42);
    let linear = Linear::new(c * h * w, 1, &mut rng);
    if posted {
        // The post's init_params(std=1) rather than nn.Linear's U(±1/√fan_in).
        linear.weight.data_mut().copy_from_slice(&Tensor::randn(linear.weight.shape(), 1.0, &mut rng).data());
        linear.bias.data_mut().copy_from_slice(&Tensor::randn(&[1], 1.0, &mut rng).data());
    }
    let model = Sequential::default().push(Flatten).push(linear);
    let defaults = how == Posted::CrestDefaults;
    let order = if posted { Order::Sequential } else { Order::Shuffled { seed: 42 } };
    let dls = DataLoaders {
        train: DataLoader::new(train.clone(), if defaults { 64 } else { 200 }, order),
        valid: DataLoader::new(valid.clone(), 50, Order::Sequential),
    };
    let (opt, loss): (OptFunc, LossFn) =
        if defaults { (OptFunc::adam(), bce_with_logits) } else { (OptFunc::sgd(), mnist_loss) };
    let mut learn =
        Learner::builder(dls, Box::new(model)).opt_func(opt).loss_func(loss).metrics([Metric::BATCH_ACCURACY]);
    if posted {
        learn = learn.inputs(Inputs::Scaled(1.0 / 255.0 / 255.0)).metric_average(MetricAverage::PerBatch);
    }
    let mut learn = learn.build()?;
    if defaults {
        learn.fit_one_cycle(20, 1e-3)?;
    } else {
        learn.fit(20, 0.1)?;
    }
    Ok(())
}

/// All of a dataset's images as one [N, C·H·W] tensor, and 0/1 targets [N, 1].
fn tensors(d: &Dataset, scale: f32) -> (Tensor, Tensor) {
    let x = Tensor::from_u8(d.pixels.to_vec(), &[d.len(), d.item_len()], scale);
    let y = Tensor::from_vec(d.labels.iter().map(|&l| l as f32).collect(), &[d.len(), 1]);
    (x, y)
}

fn class_mix(labels: &[u32], classes: usize) -> Vec<usize> {
    (0..classes as u32).map(|c| labels.iter().filter(|&&l| l == c).count()).collect()
}
