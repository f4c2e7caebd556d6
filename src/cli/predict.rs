use super::train::parse_aug;
use crest::data::transforms::Augment;
use crest::data::{image_files, load_image, load_image_preprocessed, Batch};
use crest::interpret::{image_probabilities, Tta};
use crest::model_io::{self, ModelMeta};
use crest::nn::{self, Module};
use crest::text::printable;
use crest::{Error, Result};
use std::path::{Path, PathBuf};

/// Images whose header claims more pixels are refused before decoding (decompression bombs).
const MAX_PIXELS: u64 = 100_000_000;

#[derive(clap::Args)]
pub struct PredictArgs {
    /// A model file written by `crest train` or `crest import`.
    pub model: PathBuf,
    /// Images to classify, or folders of them (every image inside, at any depth, in path order).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// How many of the most likely classes to print per image.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    pub top: u16,
    /// Test-time augmentation (fastai's tta): a quarter of the plain image's probabilities plus three quarters of
    /// the mean over four augmented copies [LIST as for train --aug; alone: fastai's aug_transforms]
    #[arg(long, value_name = "LIST", num_args = 0..=1, default_missing_value = "fastai", value_parser = parse_aug)]
    pub tta: Option<Augment>,
}

/// A model file, its layers fused for inference, warning on stderr when the file predates checksums.
pub(super) fn load_model(path: &Path) -> Result<(Box<dyn Module>, ModelMeta)> {
    let (model, meta) = model_io::load(path)?;
    if meta.predates_checksum {
        eprintln!(
            "warning: {} has no checksum (it was written before crest stored one), so damage to it would go \
             unnoticed; saving the model again adds one",
            path.display()
        );
    }
    Ok((nn::fuse(model), meta))
}

/// The images named on the command line, a folder standing for the images in it. A folder without any is a
/// warning, and counts as a failure.
fn expand(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, usize)> {
    let (mut images, mut empty) = (Vec::new(), 0);
    for path in paths {
        if !path.is_dir() {
            images.push(path.clone());
            continue;
        }
        let (found, warnings) = image_files(path)?;
        warnings.iter().for_each(|w| eprintln!("warning: {}", printable(w)));
        if found.is_empty() {
            eprintln!("warning: {} holds no images", printable(&path.display().to_string()));
            empty += 1;
        }
        images.extend(found);
    }
    Ok((images, empty))
}

pub fn run(args: PredictArgs) -> Result<()> {
    let (model, meta) = load_model(&args.model)?;
    let (images, empty_folders) = expand(&args.images)?;
    let tta = args.tta.map(Tta::new);
    let inputs = meta.inputs();
    let mut failed = 0;
    for (index, path) in images.iter().enumerate() {
        let shown = printable(&path.display().to_string()).into_owned();
        let pixels = match &meta.preprocess {
            Some(p) => load_image_preprocessed(path, meta.channels, p, MAX_PIXELS),
            None => load_image(path, meta.channels, meta.height, meta.width, MAX_PIXELS),
        };
        let pixels = match pixels {
            Ok(p) => p,
            Err(e) => {
                // One line per image that can't be read, then one error for the run: the other images are still classified.
                eprintln!("warning: {}", printable(&e.to_string()));
                failed += 1;
                continue;
            }
        };
        let batch = Batch {
            pixels,
            labels: vec![0],
            indices: vec![index],
            n: 1,
            channels: meta.channels,
            height: meta.height,
            width: meta.width,
        };
        let name = |_| path.display().to_string();
        let probs = image_probabilities(model.as_ref(), meta.loss, &batch, &inputs, tta.as_ref(), &name)?;
        let mut ranked: Vec<(usize, f32)> = probs.into_iter().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        // Class names come from the model file and paths from anywhere: escaped, so that none can end the line or
        // split its fields.
        let top: Vec<String> = ranked
            .iter()
            .take(args.top as usize)
            .map(|&(c, p)| format!("{} {:.4}", printable(&meta.classes[c]), p))
            .collect();
        println!("{shown}\t{}", top.join("\t"));
    }
    if failed > 0 {
        return Err(Error::Data(format!("{failed} of {} images could not be read", images.len())));
    }
    if empty_folders > 0 {
        let s = if empty_folders == 1 { "" } else { "s" };
        return Err(Error::Data(format!("{empty_folders} folder{s} held no images")));
    }
    Ok(())
}
