//! Data: image folders and IDX files in, u8 datasets split into train/valid, shuffled batches out.
//!
//! `load` reads a folder of images (`root/<class>/*`, or `root/train/<class>/*` + `root/valid/<class>/*`) or a
//! folder of IDX files (MNIST format), and returns a `Split`: two `Dataset`s plus the warnings and the notes on
//! what it decided (size, channels, split) for the CLI to print. `DataLoader` makes batches from a `Dataset`.

mod cache;
mod class_folders;
mod dataloader;
mod dataset;
pub mod decode;
mod decode_budget;
mod hash128;
pub mod idx;
mod image_files;
mod image_folder;
mod normalize;
mod paths;
pub(crate) mod pixels;
mod preprocess;
mod resize;
mod split;
mod to_tensor;
pub mod transforms;

#[cfg(test)]
pub(crate) mod fixtures;

use std::path::Path;

use crate::{Error, Result};

pub use cache::Caching;
pub use dataloader::{Batch, DataLoader, Order};
pub use dataset::Dataset;
pub use decode::{load_image, load_image_preprocessed};
pub use image_files::image_files;
pub use normalize::{Normalize, IMAGENET_MEAN, IMAGENET_STD};
pub use paths::Paths;
pub use pixels::Pixels;
pub use preprocess::Preprocess;
pub use to_tensor::{Inputs, Targets};

/// How many channels the images get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelsOpt {
    /// 4 if any image has alpha, else 3 if any has colour, else 1: nothing the images hold is dropped.
    Auto,
    /// 1 channel: PIL's `convert("L")` of colour images.
    Grey,
    /// 3 channels; alpha is dropped.
    Rgb,
    /// 4 channels; images without alpha are opaque.
    Rgba,
}

impl ChannelsOpt {
    /// The number of channels asked for, `None` for `Auto`.
    pub fn count(self) -> Option<usize> {
        match self {
            ChannelsOpt::Auto => None,
            ChannelsOpt::Grey => Some(1),
            ChannelsOpt::Rgb => Some(3),
            ChannelsOpt::Rgba => Some(4),
        }
    }
}

#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Resize every image to size x size; `None` keeps the images' own size when they all share one (raised to
    /// `min_size`), else 140.
    pub size: Option<usize>,
    /// The smallest side the model takes (a ResNet's 32): with `size` `None`, images that share a smaller size
    /// are resized up to it. A `size` asked for is kept as asked, and a model that can't take it says so.
    pub min_size: usize,
    pub channels: ChannelsOpt,
    /// Fraction of each class held out for validation, in [0, 1); ignored when the data has its own split.
    pub valid_pct: f32,
    pub seed: u64,
    /// Make a bad image an error instead of a skipped file and a warning.
    pub strict: bool,
    /// Images whose header claims more pixels are refused before decoding (decompression bombs).
    pub max_pixels: u64,
    /// Bytes that the images being decoded at once may take (their decoded pixels and the decoders' buffers, as
    /// their headers tell): decoding waits for room rather than running a fixed number of images at a time. An
    /// image larger than this decodes alone.
    pub decode_budget: u64,
    /// Show a progress bar on stderr when loading takes more than a second.
    pub progress: bool,
    /// Where decoded images of an image folder are kept for the next load with these options.
    pub cache: Caching,
    /// Instead of resizing every image to `size`, resize its shorter side and keep the centre square, as
    /// torchvision's evaluation transform does ([`Preprocess`]): the images imported weights expect. Image folders
    /// only; `size` is then ignored.
    pub preprocess: Option<Preprocess>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            size: None,
            min_size: 1,
            channels: ChannelsOpt::Auto,
            valid_pct: 0.2,
            seed: 42,
            strict: false,
            max_pixels: 100_000_000,
            decode_budget: DEFAULT_DECODE_BUDGET,
            progress: true,
            cache: Caching::Off,
            preprocess: None,
        }
    }
}

/// The loaded data, with what went wrong (`warnings`) and what was decided (`notes`), both as lines to print.
#[derive(Clone, Debug)]
pub struct Split {
    pub train: Dataset,
    pub valid: Dataset,
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
    /// "image folder" or "IDX".
    pub source: String,
}

/// 1 GiB: a fixed figure, not a share of the machine's memory, so that a run behaves the same everywhere and
/// nothing platform-specific is read. Room for seven 12-megapixel RGB photos decoding at once (144 MB each, the
/// decoder's buffers counted), as many as most machines have cores, so an ordinary folder hardly waits on it; an
/// image at the `max_pixels` default (100 megapixels) decodes alone.
const DEFAULT_DECODE_BUDGET: u64 = 1 << 30;

/// The image size when `LoadOptions::size` is `None` and the images differ: fastai's usual size for this task.
const DEFAULT_SIZE: usize = 140;

/// Load `root` as IDX files when it holds `train-images-idx3-ubyte[.gz]` and `train-labels-idx1-ubyte[.gz]`, else
/// as an image folder.
pub fn load(root: &Path, opts: &LoadOptions) -> Result<Split> {
    let name = root.display();
    match std::fs::metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Data(format!("data folder {name} does not exist")))
        }
        Err(e) => return Err(Error::io("cannot read data folder", root, e)),
        Ok(m) if !m.is_dir() => return Err(Error::Data(format!("{name} is not a folder"))),
        Ok(_) => {}
    }
    split::check_valid_pct(opts.valid_pct)?;
    match opts.size {
        Some(0) => return Err(Error::InvalidArgument("size must be at least 1".into())),
        Some(s) if (s as u64).saturating_mul(s as u64) > opts.max_pixels => {
            return Err(Error::InvalidArgument(format!(
                "size {s} gives images over the limit of {} pixels",
                opts.max_pixels
            )))
        }
        _ => {}
    }
    if idx::is_idx_dir(root) {
        if opts.preprocess.is_some() {
            return Err(Error::Data(format!(
                "{name} holds IDX files, whose images are all one size: resizing the shorter side and cropping the \
                 centre (the preprocessing imported weights expect) applies to image folders"
            )));
        }
        idx::load(root, opts)
    } else {
        image_folder::load(root, opts)
    }
}
