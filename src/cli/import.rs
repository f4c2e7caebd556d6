use crest::data::{Normalize, Preprocess, IMAGENET_MEAN, IMAGENET_STD};
use crest::model_io::{self, ImportOptions};
use crest::nn::Arch;
use crest::{Error, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The weights: a PyTorch state dict saved with safetensors.torch.save_file.
    pub weights: PathBuf,
    /// The architecture whose names and shapes the weights have: linear, mlp[:HIDDEN,...] or cnn
    #[arg(long)]
    pub arch: Arch,
    /// Where to write the crest model file
    #[arg(long)]
    pub out: PathBuf,
    /// Class names, one a line, as many as the weights' outputs [default: class 0, class 1, ...]
    #[arg(long, value_name = "FILE")]
    pub classes: Option<PathBuf>,
    /// Channels of the model's input (1: grey, 3: RGB, 4: RGBA); images are converted to them
    #[arg(long, default_value_t = 3, value_parser = parse_channels)]
    pub channels: usize,
    /// The shorter side of an image is resized to this (antialiased bilinear), as torchvision's Resize
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub resize: u32,
    /// Then the centre CROP×CROP square is the model's input, as torchvision's CenterCrop
    #[arg(long, default_value_t = 224, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub crop: u32,
    /// Per-channel mean subtracted from pixels scaled to [0, 1] [default: ImageNet's, 0.485,0.456,0.406]
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub mean: Vec<f32>,
    /// Per-channel standard deviation the pixels are then divided by [default: ImageNet's, 0.229,0.224,0.225]
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub std: Vec<f32>,
}

pub fn run(args: ImportArgs) -> Result<()> {
    let or_imagenet = |given: Vec<f32>, imagenet: [f32; 3]| if given.is_empty() { imagenet.to_vec() } else { given };
    let preprocess = Preprocess {
        resize: args.resize as usize,
        crop: args.crop as usize,
        normalize: Normalize { mean: or_imagenet(args.mean, IMAGENET_MEAN), std: or_imagenet(args.std, IMAGENET_STD) },
    };
    let channels = args.channels;
    preprocess.check(channels).map_err(|why| Error::InvalidArgument(format!("{why} (see --mean, --std, --crop)")))?;
    let classes = args.classes.as_deref().map(read_classes).transpose()?;
    let arch = args.arch.to_string();
    let crop = preprocess.crop;
    let spec_for = |outputs| args.arch.spec([channels, crop, crop], outputs);
    let opts = ImportOptions { arch: &arch, spec_for: &spec_for, channels, preprocess, classes };
    let (model, meta) = model_io::import(&args.weights, opts)?;
    model_io::save(&args.out, model.as_ref(), &meta)?;
    let (out, classes, resize) = (args.out.display(), meta.classes.len(), args.resize);
    println!(
        "{out}: {arch} for {classes} classes, input [{channels}, {crop}, {crop}] (shorter side resized to {resize}, \
         centre {crop}x{crop} kept)"
    );
    Ok(())
}

/// One class name a line; a final newline ends the last, and a `\r` before a newline is not part of a name.
fn read_classes(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| Error::Io { what: format!("cannot read the classes file {}", path.display()), source })?;
    Ok(text.lines().map(str::to_string).collect())
}

fn parse_channels(s: &str) -> std::result::Result<usize, String> {
    match s {
        "1" => Ok(1),
        "3" => Ok(3),
        "4" => Ok(4),
        _ => Err("must be 1, 3 or 4".into()),
    }
}
