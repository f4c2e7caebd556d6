//! Where u8 pixels become model inputs: scaled once, as the batch is assembled (lazily: matmul reads the bytes).

use super::Batch;
use crate::Tensor;

impl Batch {
    /// The post's `xb, yb`: images as a [n, C, H, W] tensor of `byte * scale`, and targets — 0/1 as [n, 1] for a
    /// binary model (one logit), class indices as [n] otherwise.
    pub fn into_xy(self, scale: f32, binary: bool) -> (Tensor, Tensor) {
        let labels: Vec<f32> = self.labels.iter().map(|&l| l as f32).collect();
        let y = if binary { Tensor::from_vec(labels, &[self.n, 1]) } else { Tensor::from_vec(labels, &[self.n]) };
        (Tensor::from_u8(self.pixels, &[self.n, self.channels, self.height, self.width], scale), y)
    }
}
