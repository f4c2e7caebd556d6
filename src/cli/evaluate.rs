//! `crest evaluate MODEL DIR`: how a saved model does on a labelled folder — fastai's `learn.validate()` and
//! `ClassificationInterpretation` in one command.

use super::predict::load_model;
use super::train::{parse_aug, parse_valid_pct};
use crest::data::transforms::Augment;
use crest::data::{self, ChannelsOpt, Dataset, LoadOptions, Split};
use crest::interpret::{Interpretation, Tta};
use crest::model_io::ModelMeta;
use crest::report::{self, Report};
use crest::text::printable;
use crest::{careful_write, Error, Result};
use std::path::PathBuf;

/// How many of the highest-loss images to list: fastai's `plot_top_losses(9)`.
const TOP_LOSSES: usize = 9;
/// How many of fastai's `most_confused` pairs to list: with many classes, all of them would fill the screen.
const MOST_CONFUSED: usize = 10;

#[derive(clap::Args)]
pub struct EvaluateArgs {
    /// A model file written by `crest train`.
    pub model: PathBuf,
    /// A labelled folder as `crest train` reads it (one sub-folder per class, or train/ and valid/ folders of them,
    /// or IDX files), with the model's classes.
    pub dir: PathBuf,
    /// Which images: all of them, or the validation or training set as `crest train DIR` split them (with the same
    /// --valid-pct and --seed) [default: valid when DIR is split already (train/ and valid/ folders, IDX t10k
    /// files), else all]
    #[arg(long, value_enum)]
    pub split: Option<SplitArg>,
    /// The fraction `crest train --valid-pct` held out, for --split valid or train [default: 0.2, as train's]
    #[arg(long, requires = "split", value_parser = parse_valid_pct)]
    pub valid_pct: Option<f32>,
    /// The seed `crest train --seed` split with, for --split valid or train [default: 42, as train's]
    #[arg(long, requires = "split")]
    pub seed: Option<u64>,
    /// Batch size
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub bs: u32,
    /// Also write one row per image: its path, label, prediction and the probability of each class
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Treat a corrupt or oversized image as an error instead of skipping it
    #[arg(long)]
    pub strict: bool,
    /// Test-time augmentation (fastai's tta): a quarter of the plain image's probabilities plus three quarters of
    /// the mean over four augmented copies [LIST as for train --aug; alone: fastai's aug_transforms]
    #[arg(long, value_name = "LIST", num_args = 0..=1, default_missing_value = "fastai", value_parser = parse_aug)]
    pub tta: Option<Augment>,
    /// Also write a page with the confusion matrix and the top losses (images), as crest train's report
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum SplitArg {
    /// Every image in the folder
    All,
    /// The validation set
    Valid,
    /// The training set
    Train,
}

/// Loads `DIR` as the model was trained: its size and channels, split as asked. Without `--split` nothing is held
/// out, so a folder that is not split already comes back whole as the training side.
fn load(args: &EvaluateArgs, meta: &ModelMeta) -> Result<Split> {
    let channels = match meta.channels {
        1 => ChannelsOpt::Grey,
        3 => ChannelsOpt::Rgb,
        _ => ChannelsOpt::Rgba,
    };
    // A non-square model was trained on images that all had its size (`--size` is square): loading them at their
    // own size gives the same, and other sizes are refused below.
    let size = (meta.height == meta.width).then_some(meta.height);
    let opts = LoadOptions {
        size,
        channels,
        valid_pct: if args.split.is_some() { args.valid_pct.unwrap_or(0.2) } else { 0.0 },
        seed: args.seed.unwrap_or(42),
        strict: args.strict,
        // Imported weights expect torchvision's evaluation transform, as `crest predict` applies it; a model
        // trained by crest, the images stretched to its size as training loaded them.
        preprocess: meta.preprocess.clone(),
        ..LoadOptions::default()
    };
    let split = data::load(&args.dir, &opts)?;
    if split.train.classes != meta.classes {
        let names = |c: &[String]| c.iter().map(|n| printable(n).into_owned()).collect::<Vec<_>>().join(", ");
        return Err(Error::Data(format!(
            "{} has the classes [{}]; the model's are [{}]",
            args.dir.display(),
            names(&split.train.classes),
            names(&meta.classes)
        )));
    }
    let (h, w) = (split.train.height, split.train.width);
    if (h, w) != (meta.height, meta.width) {
        return Err(Error::Data(format!(
            "the model takes {}x{} images and {} holds images of other sizes; crest resizes only to squares",
            meta.width,
            meta.height,
            args.dir.display()
        )));
    }
    Ok(split)
}

/// The images to evaluate, and a phrase saying which they are.
fn choose(args: &EvaluateArgs, split: Split) -> Result<(Dataset, String)> {
    let note = split.notes.iter().find_map(|n| n.strip_prefix("split: ")).unwrap_or("").to_string();
    let chosen = match args.split {
        // A folder split already; with nothing held out otherwise, any other folder comes back whole as `train`.
        None if !split.valid.is_empty() => (split.valid, format!("the validation set ({note})")),
        None => (split.train, "all of them (--split valid evaluates the set crest train held out)".into()),
        Some(SplitArg::All) => {
            let all = split.train.concat(split.valid);
            (
                all.ok_or_else(|| Error::Data("the training and validation images differ in kind".into()))?,
                "all of them".into(),
            )
        }
        Some(SplitArg::Train) => (split.train, format!("the training set ({note})")),
        Some(SplitArg::Valid) if split.valid.is_empty() => return Err(Error::InvalidArgument(
            "the validation set is empty: --split valid needs a --valid-pct above 0 and classes of two images or more"
                .into(),
        )),
        Some(SplitArg::Valid) => (split.valid, format!("the validation set ({note})")),
    };
    Ok(chosen)
}

/// Each image's name for the tables and the CSV: its path, or its index when the data has no files (IDX).
fn image_names(dataset: &Dataset) -> Vec<String> {
    if dataset.paths.is_empty() {
        (0..dataset.len()).map(|i| i.to_string()).collect()
    } else {
        dataset.paths.iter().map(|p| p.display().to_string()).collect()
    }
}

fn print(interp: &Interpretation, names: &[String]) {
    let accuracy = interp.accuracy().unwrap_or(f32::NAN);
    let loss = interp.mean_loss().unwrap_or(f32::NAN);
    println!("accuracy: {accuracy:.4}");
    println!("loss: {loss:.4} (mean cross-entropy of the true class)");
    println!();
    print!("{}", interp.classification_report(4));
    for (class, scores) in interp.classes.iter().zip(interp.per_class()) {
        if scores.predicted == 0 {
            println!(
                "note: no image was predicted as {}, so its precision is taken as 0 (as sklearn does)",
                printable(class)
            );
        }
    }
    println!();
    println!("confusion matrix (rows actual, columns predicted):");
    print!("{}", interp.confusion_table());
    println!();
    let pairs = interp.most_confused(1);
    println!("most confused (actual, predicted, count):");
    for (actual, predicted, n) in pairs.iter().take(MOST_CONFUSED) {
        println!("('{}', '{}', {n})", printable(actual), printable(predicted));
    }
    if pairs.len() > MOST_CONFUSED {
        println!("... and {} more pairs", pairs.len() - MOST_CONFUSED);
    }
    println!();
    println!("top losses:");
    println!("path\tlabel\tprediction\tprobability\tloss");
    let predictions = interp.predictions();
    for i in interp.top_losses(TOP_LOSSES) {
        let (label, predicted) = (interp.labels[i] as usize, predictions[i] as usize);
        println!(
            "{}\t{}\t{}\t{:.4}\t{:.4}",
            printable(&names[i]),
            printable(&interp.classes[label]),
            printable(&interp.classes[predicted]),
            interp.probs_of(i)[predicted],
            interp.losses[i]
        );
    }
}

pub fn run(args: EvaluateArgs) -> Result<()> {
    if let Some(csv) = &args.csv {
        careful_write::check(csv, "the predictions")?;
    }
    if let Some(page) = &args.report {
        careful_write::check(page, "the report")?;
    }
    let (mut model, meta) = load_model(&args.model)?;
    let split = load(&args, &meta)?;
    split.warnings.iter().for_each(|w| eprintln!("warning: {}", printable(w)));
    let source = split.source.clone();
    let (dataset, which) = choose(&args, split)?;
    if dataset.is_empty() {
        return Err(Error::Data(format!("no images to evaluate in {}", args.dir.display())));
    }
    println!(
        "evaluating {} on {} ({source}): {} images of {}x{}x{}, {which}",
        args.model.display(),
        args.dir.display(),
        dataset.len(),
        dataset.height,
        dataset.width,
        dataset.channels
    );
    let tta = args.tta.map(Tta::new);
    if let Some(t) = &tta {
        println!("test-time augmentation: {} copies ({}), weight {} on the plain image", t.n, t.augment, t.beta);
    }
    let bs = args.bs as usize;
    let interp = Interpretation::from_model(model.as_mut(), meta.loss, &dataset, &meta.inputs(), bs, tta.as_ref())?;
    let names = image_names(&dataset);
    print(&interp, &names);
    if let Some(csv) = &args.csv {
        let column = if dataset.paths.is_empty() { "index" } else { "path" };
        careful_write::write(csv, "the predictions", interp.predictions_csv(column, &names).as_bytes())?;
        println!("wrote one row per image to {}", csv.display());
    }
    if let Some(path) = &args.report {
        let mut page = Report::new(&format!("crest evaluate {} {}", args.model.display(), args.dir.display()));
        page.command = super::report::command_line();
        page.notes.push(format!(
            "{} images: {which}; accuracy {:.4}, loss {:.4}{}",
            dataset.len(),
            interp.accuracy().unwrap_or(f32::NAN),
            interp.mean_loss().unwrap_or(f32::NAN),
            if tta.is_some() { " with test-time augmentation" } else { "" }
        ));
        super::report::add_interpretation(&mut page, &interp, &dataset);
        report::write(&page, path)?;
        println!("wrote the report to {}", path.display());
    }
    Ok(())
}
