//! Where u8 pixels become model inputs: scaled once, as the batch is assembled (lazily: matmul reads the bytes).

use super::{Batch, Preprocess};
use crate::Tensor;

/// What a model sees of a batch's bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Inputs<'a> {
    /// `byte * scale`: crest's own models.
    Scaled(f32),
    /// torchvision's `ToTensor` and `Normalize`: models whose weights came from PyTorch.
    Normalized(&'a Preprocess),
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
    /// The post's `xb, yb`: images as a [n, C, H, W] tensor of `byte * scale`, and the targets.
    pub fn into_xy(self, scale: f32, targets: Targets) -> (Tensor, Tensor) {
        let labels: Vec<f32> = self.labels.iter().map(|&l| l as f32).collect();
        let y = match targets {
            Targets::Binary => Tensor::from_vec(labels, &[self.n, 1]),
            Targets::Classes => Tensor::from_vec(labels, &[self.n]),
        };
        (Tensor::from_u8(self.pixels, &[self.n, self.channels, self.height, self.width], scale), y)
    }

    /// The images as a [n, C, H, W] tensor of what the model sees.
    pub fn inputs(&self, how: Inputs) -> Tensor {
        match how {
            Inputs::Scaled(scale) => {
                Tensor::from_u8(self.pixels.clone(), &[self.n, self.channels, self.height, self.width], scale)
            }
            Inputs::Normalized(p) => p.normalize(&self.pixels, self.n),
        }
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
