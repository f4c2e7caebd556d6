//! Where u8 pixels become model inputs, as the batch is assembled: scaled (lazily: matmul reads the bytes), or
//! normalised per channel.

use super::{Batch, Normalize};
use crate::Tensor;
use std::borrow::Cow;

/// What a model sees of a batch's bytes: one value, which the learner trains with, a model file records, and
/// everything that runs the model reads back (`ModelMeta::inputs`).
#[derive(Clone, Debug, PartialEq)]
pub enum Inputs {
    /// `byte * scale`: crest's own models (1/255, or the post's 1/255/255 `--as-posted`).
    Scaled(f32),
    /// torchvision's `ToTensor` and `Normalize`: models whose weights came from PyTorch, and models fine-tuned from
    /// them, which fastai normalises with the pretrained weights' statistics.
    Normalized(Normalize),
}

impl Inputs {
    /// `[n, C, H, W]` bytes as the tensor the model sees. Scaled bytes are kept as bytes (matmul reads them, scaling
    /// as it goes), so owned ones are moved in, not copied.
    fn tensor(&self, pixels: Cow<[u8]>, shape: [usize; 4]) -> Tensor {
        match self {
            Inputs::Scaled(scale) => Tensor::from_u8(pixels.into_owned(), &shape, *scale),
            Inputs::Normalized(n) => n.apply(&pixels, shape),
        }
    }
}

/// How a batch's labels become the targets a loss compares predictions with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Targets {
    /// 0/1 as `[n, 1]`, for a model with one logit (binary cross-entropy, the post's `mnist_loss`).
    Binary,
    /// Class indices as `[n]`, for a model with one output per class (cross-entropy).
    Classes,
}

impl Batch {
    /// The post's `xb, yb`: images as a [n, C, H, W] tensor of what the model sees, and the targets.
    pub fn into_xy(self, inputs: &Inputs, targets: Targets) -> (Tensor, Tensor) {
        let labels: Vec<f32> = self.labels.iter().map(|&l| l as f32).collect();
        let y = match targets {
            Targets::Binary => Tensor::from_vec(labels, &[self.n, 1]),
            Targets::Classes => Tensor::from_vec(labels, &[self.n]),
        };
        let shape = self.shape();
        (inputs.tensor(Cow::Owned(self.pixels), shape), y)
    }

    /// The images as a [n, C, H, W] tensor of what the model sees.
    pub fn inputs(&self, how: &Inputs) -> Tensor {
        how.tensor(Cow::Borrowed(&self.pixels), self.shape())
    }

    fn shape(&self) -> [usize; 4] {
        [self.n, self.channels, self.height, self.width]
    }

    /// The first `n` images (all of them if there are fewer).
    pub fn take(self, n: usize) -> Batch {
        let n = self.n.min(n);
        self.part(0..n)
    }

    /// Images `range` of the batch, in order (a data-parallel rank's shard). Panics if the range is not within the
    /// batch: callers compute it from `n`.
    pub fn part(mut self, range: std::ops::Range<usize>) -> Batch {
        let item = self.channels * self.height * self.width;
        self.pixels.truncate(range.end * item);
        self.pixels.drain(..range.start * item);
        self.labels.truncate(range.end);
        self.labels.drain(..range.start);
        self.indices.truncate(range.end);
        self.indices.drain(..range.start);
        self.n = range.len();
        self
    }
}
