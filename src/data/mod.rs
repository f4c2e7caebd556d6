//! Data: image folders and IDX files in, u8 datasets split into train/valid, shuffled batches out.
//!
//! `load` reads a folder of images (`root/<class>/*`, or `root/train/<class>/*` + `root/valid/<class>/*`) or a
//! folder of IDX files (MNIST format), and returns a `Split`: two `Dataset`s plus the warnings and the notes on
//! what it decided (size, channels, split) for the CLI to print. `DataLoader` makes batches from a `Dataset`.

mod dataloader;
mod dataset;
mod decode;
pub mod idx;
mod image_folder;
mod progress;
mod resize;
mod split;
mod to_tensor;

#[cfg(test)]
mod fixtures;

use std::path::Path;
use std::time::Instant;

use anyhow::bail;

pub use dataloader::{Batch, DataLoader, Order};
pub use dataset::Dataset;
/// Decode one image exactly as training does: for `crest predict`.
pub fn load_image(
    path: &Path,
    channels: usize,
    height: usize,
    width: usize,
    max_pixels: u64,
) -> crate::Result<Vec<u8>> {
    decode::load_image(path, channels, height, width, max_pixels).map_err(|e| crate::Error::Data(format!("{e:#}")))
}
pub use to_tensor::Targets;

/// How many channels the images get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelsOpt {
    /// 4 if any image has alpha, else 3 if any has colour, else 1: nothing the images hold is dropped.
    Auto,
    /// 1 (grey), 3 (RGB) or 4 (RGBA).
    Fixed(usize),
}

#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Resize every image to size x size; `None` keeps the images' own size when they all share one, else 140.
    pub size: Option<usize>,
    pub channels: ChannelsOpt,
    /// Fraction of each class held out for validation, in [0, 1); ignored when the data has its own split.
    pub valid_pct: f32,
    pub seed: u64,
    /// Make a bad image an error instead of a skipped file and a warning.
    pub strict: bool,
    /// Images whose header claims more pixels are refused before decoding (decompression bombs).
    pub max_pixels: u64,
    /// Show a progress bar on stderr when loading takes more than a second.
    pub progress: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            size: None,
            channels: ChannelsOpt::Auto,
            valid_pct: 0.2,
            seed: 42,
            strict: false,
            max_pixels: 100_000_000,
            progress: true,
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
    pub load_seconds: f64,
}

/// The image size when `LoadOptions::size` is `None` and the images differ: fastai's usual size for this task.
const DEFAULT_SIZE: usize = 140;

/// Load `root` as IDX files when it holds `train-images-idx3-ubyte[.gz]` and `train-labels-idx1-ubyte[.gz]`, else
/// as an image folder.
pub fn load(root: &Path, opts: &LoadOptions) -> crate::Result<Split> {
    load_anyhow(root, opts).map_err(|e| crate::Error::Data(format!("{e:#}")))
}

fn load_anyhow(root: &Path, opts: &LoadOptions) -> anyhow::Result<Split> {
    let start = Instant::now();
    let name = root.display();
    match std::fs::metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("data folder {name} does not exist")
        }
        Err(e) => bail!("cannot read data folder {name}: {e}"),
        Ok(m) if !m.is_dir() => bail!("{name} is not a folder"),
        Ok(_) => {}
    }
    split::check_valid_pct(opts.valid_pct)?;
    match opts.size {
        Some(0) => bail!("size must be at least 1"),
        Some(s) if (s as u64).saturating_mul(s as u64) > opts.max_pixels => {
            bail!("size {s} gives images over the limit of {} pixels", opts.max_pixels)
        }
        _ => {}
    }
    if let ChannelsOpt::Fixed(c) = opts.channels {
        if ![1, 3, 4].contains(&c) {
            bail!("channels must be 1, 3 or 4, not {c}");
        }
    }
    let mut split = if idx::is_idx_dir(root) { idx::load(root, opts)? } else { image_folder::load(root, opts)? };
    split.load_seconds = start.elapsed().as_secs_f64();
    Ok(split)
}
