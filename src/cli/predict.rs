use crest::data::load_image;
use crest::loss::{softmax_in_place, Loss};
use crest::tensor::no_grad;
use crest::text::printable;
use crest::{model_io, nn, Error, Result, Tensor};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct PredictArgs {
    /// A model file written by `crest train`.
    pub model: PathBuf,
    /// Images to classify.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// How many of the most likely classes to print per image.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    pub top: u16,
}

/// Class probabilities from the model's logits: sigmoid for a one-logit binary model, softmax otherwise.
fn probabilities(logits: &[f32], loss: Loss) -> Vec<f32> {
    match loss {
        Loss::Mnist | Loss::Bce => {
            let p = Tensor::scalar(logits[0]).sigmoid().item();
            vec![1.0 - p, p]
        }
        Loss::CrossEntropy => {
            let mut p = logits.to_vec();
            softmax_in_place(&mut p);
            p
        }
    }
}

pub fn run(args: PredictArgs) -> Result<()> {
    let (model, meta) = model_io::load(&args.model)?;
    if meta.predates_checksum {
        eprintln!(
            "warning: {} has no checksum (it was written before crest stored one), so damage to it would go \
             unnoticed; saving the model again adds one",
            args.model.display()
        );
    }
    let model = nn::fuse(model);
    let _g = no_grad();
    let mut failed = 0;
    for path in &args.images {
        let pixels = match load_image(path, meta.channels, meta.height, meta.width, 100_000_000) {
            Ok(p) => p,
            Err(e) => {
                // One line per image that can't be read, then one error for the run: the other images are still classified.
                eprintln!("warning: {}", printable(&e.to_string()));
                failed += 1;
                continue;
            }
        };
        let x = Tensor::from_u8(pixels, &[1, meta.channels, meta.height, meta.width], meta.scale);
        let logits = model.forward(&x).to_vec();
        // A model file's weights are checked to be finite, yet large ones can still overflow on an image.
        if !logits.iter().all(|v| v.is_finite()) {
            return Err(Error::Data(format!(
                "the model's outputs for {} are not finite numbers: its weights are too large",
                path.display()
            )));
        }
        let probs = probabilities(&logits, meta.loss);
        let mut ranked: Vec<(usize, f32)> = probs.into_iter().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        // Class names come from the model file and paths from anywhere: escaped, so that none can end the line or
        // split its fields.
        let top: Vec<String> = ranked
            .iter()
            .take(args.top as usize)
            .map(|&(c, p)| format!("{} {:.4}", printable(&meta.classes[c]), p))
            .collect();
        println!("{}\t{}", printable(&path.display().to_string()), top.join("\t"));
    }
    if failed > 0 {
        return Err(Error::Data(format!("{failed} of {} images could not be read", args.images.len())));
    }
    Ok(())
}
