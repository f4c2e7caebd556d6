//! The pages `crest train` and `crest evaluate` write: `crest::report` filled from a run — fastai's `show_batch`,
//! the recorder's plots, `ClassificationInterpretation`'s confusion matrix and top losses, and, for a linear model,
//! its weights drawn as one image per class.

use super::train::{TrainArgs, Trained};
use crest::data::{DataLoader, Dataset, Order};
use crest::interpret::Interpretation;
use crest::learner::LrFind;
use crest::nn::Arch;
use crest::report::{self, Confusion, DatasetSummary, LrCurve, Picture, Report, Run, Suggestion, Table};
use crest::Result;
use std::path::PathBuf;

/// One batch of this many training images is shown (fastai's `show_batch` shows 9; a page has room for more).
const SHOWN_SAMPLES: usize = 36;
/// fastai's `plot_top_losses(k)`: the validation images the model got most wrong.
const TOP_LOSSES: usize = 16;
/// Batch size for the interpretation pass over the validation set.
const INTERPRET_BS: usize = 256;

/// The command as it was typed, for the page's header.
pub fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

/// One planar image (`[channels, height, width]` bytes) with its caption.
fn picture(pixels: &[u8], [channels, height, width]: [usize; 3], caption: String) -> Picture {
    Picture { pixels: pixels.to_vec(), channels, height, width, caption }
}

/// The confusion matrix and the top losses (caption: actual / predicted / loss / probability of the actual class,
/// as fastai's `plot_top_losses` labels them).
pub fn add_interpretation(report: &mut Report, interp: &Interpretation, dataset: &Dataset) {
    report.confusion = Some(Confusion { classes: interp.classes.clone(), counts: interp.confusion_matrix() });
    let predictions = interp.predictions();
    report.top_losses = interp
        .top_losses(TOP_LOSSES)
        .into_iter()
        .map(|i| {
            let (actual, predicted) = (interp.labels[i] as usize, predictions[i] as usize);
            let name = dataset.paths.get(i).and_then(|p| Some(p.file_name()?.to_string_lossy().into_owned()));
            let caption = format!(
                "{} / {} / {:.2} / {:.2}{}",
                interp.classes[actual],
                interp.classes[predicted],
                interp.losses[i],
                interp.probs_of(i)[actual],
                name.map(|n| format!("\n{n}")).unwrap_or_default()
            );
            picture(dataset.image(i), [dataset.channels, dataset.height, dataset.width], caption)
        })
        .collect();
}

/// A linear model's weights, one picture per output: what the post's model learned.
fn class_weights(trained: &Trained, outputs: usize) -> Vec<Picture> {
    let d = &trained.data.train;
    let params = trained.learner.model.parameters();
    let Some(weight) = params.first().filter(|w| w.shape() == [outputs, d.item_len()]) else { return Vec::new() };
    let values = weight.to_vec();
    let rows = values.chunks(d.item_len());
    if outputs == 1 {
        let caption = format!("the one logit: red for {}, blue for {}", d.classes[1], d.classes[0]);
        return rows.map(|w| report::weights_picture(w, d.channels, d.height, d.width, &caption)).collect();
    }
    rows.zip(&d.classes).map(|(w, c)| report::weights_picture(w, d.channels, d.height, d.width, c)).collect()
}

/// The report of a `crest train` run: the data, a training batch (augmented as the model saw it), every run's
/// curves, the learning-rate finder's sweep when `--lr auto` ran it, and the saved model's interpretation on the
/// validation set.
pub fn training(args: &TrainArgs, trained: &mut Trained) -> Result<Report> {
    let loss = trained.loss;
    let (train, valid) = (trained.data.train.clone(), trained.data.valid.clone());
    let mut page = Report::new(&format!("crest train {}", args.dir.display()));
    page.command = command_line();
    page.dataset = Some(DatasetSummary {
        source: args.dir.display().to_string(),
        classes: train.classes.clone(),
        train_counts: train.class_counts(),
        valid_counts: valid.class_counts(),
        image_shape: [train.channels, train.height, train.width],
    });
    let mut loader = DataLoader::new(train.clone(), SHOWN_SAMPLES, Order::Shuffled { seed: args.seed });
    if let Some(aug) = args.aug.filter(|a| !a.is_none()) {
        loader = loader.augmented(aug, args.seed);
        page.samples_note = format!("the first training batch of epoch 0, augmented ({aug}) as the model saw it");
    } else {
        page.samples_note = "the first training batch of epoch 0".into();
    }
    if let Some(batch) = loader.batches(0).next() {
        let shape = [batch.channels, batch.height, batch.width];
        let item = shape.iter().product::<usize>().max(1);
        page.samples = batch
            .pixels
            .chunks_exact(item)
            .zip(&batch.labels)
            .map(|(pixels, &label)| picture(pixels, shape, train.classes[label as usize].clone()))
            .collect();
    }
    let learner = &trained.learner;
    page.table =
        Some(Table { header: learner.header().to_vec(), rows: learner.recorder.iter().map(|r| r.cells()).collect() });
    page.metric_name = learner.header().get(3).filter(|h| *h != "time").cloned().unwrap_or_default();
    page.runs = trained
        .runs
        .iter()
        .map(|log| Run {
            name: format!("seed {}", log.seed),
            train_loss: log.recorder.iter().map(|r| Some(r.train_loss)).collect(),
            valid_loss: log.recorder.iter().map(|r| r.valid_loss).collect(),
            metric: log.recorder.iter().map(|r| r.metrics.first().copied().flatten()).collect(),
            batch_loss: log.batches.iter().map(|b| b.loss).collect(),
            batch_lr: log.batches.iter().map(|b| b.lr).collect(),
        })
        .collect();
    page.lr_find = trained.lr_find.as_ref().map(lr_curve);
    if args.arch == Arch::Linear {
        page.class_weights = class_weights(trained, loss.outputs(train.classes.len()));
    }
    if !valid.is_empty() {
        let inputs = trained.learner.inputs().clone();
        let interp =
            Interpretation::from_model(trained.learner.model.as_mut(), loss, &valid, &inputs, INTERPRET_BS, None)?;
        add_interpretation(&mut page, &interp, &valid);
    }
    Ok(page)
}

fn lr_curve(found: &LrFind) -> LrCurve {
    let s = &found.suggestions;
    LrCurve {
        lrs: found.lrs.clone(),
        losses: found.losses.clone(),
        suggestions: [("valley", &s.valley), ("steep", &s.steep), ("minimum", &s.minimum)]
            .into_iter()
            .map(|(name, suggestion)| Suggestion { name: name.into(), lr: suggestion.lr })
            .collect(),
    }
}

/// Where the report goes: `--report PATH`, else `report.html` beside the model; none with `--no-report`.
pub fn path(args: &TrainArgs) -> Option<PathBuf> {
    if args.no_report {
        return None;
    }
    Some(args.report.clone().unwrap_or_else(|| args.out.with_file_name("report.html")))
}
