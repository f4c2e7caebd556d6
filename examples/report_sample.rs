//! A training report from a short real run, to look at and to test in a browser (`tests/report/check_in_chromium.sh`).
//!
//!     cargo run --release --example report_sample [OUT.html]
//!
//! A linear model learns 3 vs 7 on `data/mnist_sample` for 3 epochs of one-cycle with the `Learner`; four more runs
//! with the next seeds on the same split show the spread between runs. Everything on the page comes from these
//! runs except the learning-rate finder's curve, which is made up (crest's `lr_find` is built elsewhere).

use crest::data::{self, DataLoader, Dataset, LoadOptions, Order};
use crest::learner::{DataLoaders, Learner, Schedule};
use crest::loss::{cross_entropy, softmax_in_place};
use crest::metrics::Metric;
use crest::nn::{Flatten, Linear, Sequential};
use crest::report::{self, Confusion, DatasetSummary, LrCurve, Picture, Report, Run, Suggestion, Table};
use crest::rng::Rng;
use crest::Tensor;
use std::cell::RefCell;
use std::sync::Arc;

const EPOCHS: usize = 3;
const LR: f32 = 0.01;
const BATCH: usize = 64;
const SEEDS: [u64; 5] = [42, 43, 44, 45, 46];
const SHOWN_SAMPLES: usize = 24;
const SHOWN_LOSSES: usize = 12;

thread_local! {
    /// The loss of each training batch, as the loss function sees it: the `Learner` keeps only epoch means.
    static BATCH_LOSSES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Cross-entropy that writes down the loss of each training batch (one with gradients; validation has none).
fn recording_cross_entropy(logits: &Tensor, targets: &Tensor) -> Tensor {
    let loss = cross_entropy(logits, targets);
    if loss.requires_grad() {
        BATCH_LOSSES.with(|l| l.borrow_mut().push(loss.item()));
    }
    loss
}

fn main() -> crest::Result<()> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "report_sample.html".into());
    let source = "data/mnist_sample";
    let split = data::load(source.as_ref(), &LoadOptions { progress: false, ..LoadOptions::default() })?;
    let (train, valid) = (Arc::new(split.train), Arc::new(split.valid));
    let mut report = Report::new("crest report sample: a linear model, 3 vs 7");
    report.command = format!("cargo run --release --example report_sample {out}");
    report.dataset = Some(DatasetSummary {
        source: source.into(),
        classes: train.classes.clone(),
        train_counts: train.class_counts(),
        valid_counts: valid.class_counts(),
        image_shape: [train.channels, train.height, train.width],
    });
    let shuffled = DataLoader::new(train.clone(), BATCH, Order::Shuffled { seed: SEEDS[0] });
    let first =
        shuffled.batches(0).next().ok_or_else(|| crest::Error::Data(format!("{source} has no training images")))?;
    report.samples = (0..first.n.min(SHOWN_SAMPLES))
        .map(|i| {
            picture(
                &first.pixels[i * train.item_len()..(i + 1) * train.item_len()],
                &train,
                &train.classes[first.labels[i] as usize],
            )
        })
        .collect();
    report.samples_note =
        format!("The first training batch of epoch 0 ({SHOWN_SAMPLES} of its {BATCH} images), not augmented.");
    report.metric_name = "accuracy".into();

    for (i, &seed) in SEEDS.iter().enumerate() {
        let mut learn = learner(&train, &valid, seed, i > 0)?;
        learn.fit_one_cycle(EPOCHS, LR)?;
        let steps = EPOCHS * learn.dls.train.len();
        report.runs.push(Run {
            name: format!("seed {seed}"),
            train_loss: learn.recorder.iter().map(|r| Some(r.train_loss)).collect(),
            valid_loss: learn.recorder.iter().map(|r| r.valid_loss).collect(),
            metric: learn.recorder.iter().map(|r| r.metrics[0]).collect(),
            batch_loss: BATCH_LOSSES.with(|l| l.take()),
            batch_lr: (0..steps).map(|s| Schedule::OneCycle.lr(LR, s, steps)).collect(),
        });
        if i == 0 {
            report.table = Some(Table {
                header: learn.header().to_vec(),
                rows: learn.recorder.iter().map(|r| r.cells()).collect(),
            });
            interpret(&mut learn, &valid, &mut report);
        }
    }
    report.lr_find = Some(made_up_lr_find());
    report.notes = vec![
        format!("Runs 2–5 train the same model with seeds {}–{} on the same split.", SEEDS[1], SEEDS[4]),
        "The learning-rate finder's curve is made up, to show how the page draws one.".into(),
    ];
    report::write(&report, out.as_ref())?;
    println!("wrote {out}");
    Ok(())
}

fn learner(train: &Arc<Dataset>, valid: &Arc<Dataset>, seed: u64, quiet: bool) -> crest::Result<Learner> {
    let model = Sequential::default().push(Flatten).push(Linear::new(
        train.item_len(),
        train.classes.len(),
        &mut Rng::new(seed),
    ));
    let dls = DataLoaders {
        train: DataLoader::new(train.clone(), BATCH, Order::Shuffled { seed }),
        valid: DataLoader::new(valid.clone(), 256, Order::Sequential),
    };
    let builder = Learner::builder(dls, Box::new(model)).loss_func(recording_cross_entropy).metrics([Metric::ACCURACY]);
    if quiet { builder.quiet() } else { builder }.build()
}

/// The confusion matrix, the top losses and the weights of the trained model, from the validation set.
fn interpret(learn: &mut Learner, valid: &Dataset, report: &mut Report) {
    let k = valid.classes.len();
    let mut counts = vec![vec![0usize; k]; k];
    // (loss, image index, predicted class, probability of the label)
    let mut losses: Vec<(f32, usize, usize, f32)> = Vec::new();
    let mut index = 0;
    let batches: Vec<_> = learn.dls.valid.batches(0).collect();
    for batch in batches {
        let labels = batch.labels.clone();
        let (x, _) = batch.into_xy(1.0 / 255.0, learn.targets());
        let logits = learn.predict_batch(&x).to_vec();
        for (row, &label) in logits.chunks(k).zip(&labels) {
            let mut probs = row.to_vec();
            softmax_in_place(&mut probs);
            let predicted = (0..k).max_by(|&a, &b| probs[a].total_cmp(&probs[b])).unwrap_or(0);
            counts[label as usize][predicted] += 1;
            let p = probs[label as usize];
            losses.push((-p.max(f32::MIN_POSITIVE).ln(), index, predicted, p));
            index += 1;
        }
    }
    losses.sort_by(|a, b| b.0.total_cmp(&a.0));
    report.top_losses = losses
        .iter()
        .take(SHOWN_LOSSES)
        .map(|&(loss, i, predicted, p)| {
            let label = &valid.classes[valid.labels[i] as usize];
            picture(valid.image(i), valid, &format!("{label} / {} / {loss:.2} / {p:.2}", valid.classes[predicted]))
        })
        .collect();
    report.confusion = Some(Confusion { classes: valid.classes.clone(), counts });
    let weight = learn.model.named_parameters().into_iter().find(|(name, _)| name.ends_with("weight"));
    if let Some((_, w)) = weight {
        let w = w.to_vec();
        report.class_weights = w
            .chunks(valid.item_len())
            .zip(&valid.classes)
            .map(|(row, class)| report::weights_picture(row, valid.channels, valid.height, valid.width, class))
            .collect();
    }
}

fn picture(pixels: &[u8], d: &Dataset, caption: &str) -> Picture {
    Picture { pixels: pixels.to_vec(), channels: d.channels, height: d.height, width: d.width, caption: caption.into() }
}

/// A learning-rate sweep shaped like a linear model's (flat, a descent, then divergence), with fastai's three
/// suggestions read off it: valley (two thirds down the longest descent), steep (the steepest fall), minimum/10.
fn made_up_lr_find() -> LrCurve {
    let mut rng = Rng::new(7);
    let lrs: Vec<f32> = (0..100).map(|i| 1e-7 * 1e8f32.powf(i as f32 / 99.0)).collect();
    let losses: Vec<f32> = lrs
        .iter()
        .map(|lr| {
            let x = lr.log10();
            0.70 - 0.55 / (1.0 + (-2.0 * (x + 2.5)).exp()) + 1.5 * (x + 0.5).max(0.0).powi(2) + 0.01 * rng.normal()
        })
        .collect();
    let descent_end =
        |start: usize| (start + 1..losses.len()).find(|&j| losses[j] >= losses[j - 1]).unwrap_or(losses.len());
    let (start, end) = (0..losses.len()).map(|s| (s, descent_end(s))).max_by_key(|(s, e)| e - s).unwrap_or((0, 1));
    let valley = start + (end - start) * 2 / 3;
    let steep = (1..losses.len())
        .min_by(|&a, &b| (losses[a] - losses[a - 1]).total_cmp(&(losses[b] - losses[b - 1])))
        .unwrap_or(0);
    let minimum = (0..losses.len()).min_by(|&a, &b| losses[a].total_cmp(&losses[b])).unwrap_or(0);
    let suggestions = vec![
        Suggestion { name: "valley".into(), lr: lrs[valley] },
        Suggestion { name: "steep".into(), lr: lrs[steep] },
        Suggestion { name: "minimum/10".into(), lr: lrs[minimum] / 10.0 },
    ];
    LrCurve { lrs, losses, suggestions }
}
