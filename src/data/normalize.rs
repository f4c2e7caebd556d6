//! torchvision's `ToTensor()` then `Normalize(mean, std)`: how models whose weights came from PyTorch (and crest
//! models fine-tuned from them) see an image's bytes, computed in the same f32 arithmetic as PyTorch.

use crate::Tensor;
use serde::{Deserialize, Serialize};

/// ImageNet's per-channel mean and standard deviation, as torchvision's weights record them.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Per-channel statistics: each channel's values `byte / 255` become `(value - mean) / std`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalize {
    /// ImageNet's statistics, for RGB images.
    pub fn imagenet() -> Normalize {
        Normalize { mean: IMAGENET_MEAN.to_vec(), std: IMAGENET_STD.to_vec() }
    }

    /// The channels the statistics are for.
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// Why these statistics can't be applied to images of `channels` channels, as the end of a sentence that
    /// begins with `what` (`"the preprocessing"`); model files store them, so they are checked as untrusted input.
    pub fn check(&self, channels: usize, what: &str) -> Result<(), String> {
        for (which, values) in [("mean", &self.mean), ("std", &self.std)] {
            if values.len() != channels {
                return Err(format!("{what} has {} {which} values for images of {channels} channels", values.len()));
            }
        }
        if !self.mean.iter().all(|m| m.is_finite()) || !self.std.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Err(format!(
                "{what}'s mean {:?} and std {:?} must be finite, and the std above 0",
                self.mean, self.std
            ));
        }
        Ok(())
    }

    /// `[n, C, H, W]` bytes as the model's input, `(byte / 255 - mean) / std` per channel. It runs on every batch a
    /// normalised model trains on: each channel's 256 possible values are computed once (the same f32 operations,
    /// so the same bits), then every byte is read once and looked up into the tensor's own buffer.
    pub fn apply(&self, pixels: &[u8], shape: [usize; 4]) -> Tensor {
        let [_, channels, height, width] = shape;
        assert_eq!(channels, self.channels(), "images of {channels} channels normalised with statistics for others");
        let plane = height * width;
        let mut values = vec![0.0f32; pixels.len()];
        for (c, (&mean, &std)) in self.mean.iter().zip(&self.std).enumerate() {
            let table: [f32; 256] = std::array::from_fn(|b| (b as f32 / 255.0 - mean) / std);
            let planes = values.chunks_exact_mut(plane).zip(pixels.chunks_exact(plane));
            for (out, bytes) in planes.skip(c).step_by(channels) {
                out.iter_mut().zip(bytes).for_each(|(v, &b)| *v = table[b as usize]);
            }
        }
        Tensor::from_vec(values, &shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_as_torchvision() {
        let n = Normalize { mean: vec![0.5, 0.25], std: vec![0.5, 2.0] };
        let x = n.apply(&[255, 0, 51, 128], [2, 2, 1, 1]);
        assert_eq!(x.shape(), &[2, 2, 1, 1]);
        let want = [(1.0f32 - 0.5) / 0.5, (0.0 - 0.25) / 2.0, (51.0 / 255.0 - 0.5) / 0.5, (128.0 / 255.0 - 0.25) / 2.0];
        assert_eq!(*x.data(), want);
    }

    #[test]
    fn every_byte_of_every_channel_gets_its_own_channel_s_statistics() {
        let n = Normalize::imagenet();
        let pixels: Vec<u8> = (0..2 * 3 * 256).map(|i| (i % 256) as u8).collect();
        let x = n.apply(&pixels, [2, 3, 16, 16]);
        let want: Vec<f32> = pixels
            .iter()
            .enumerate()
            .map(|(i, &b)| (b as f32 / 255.0 - IMAGENET_MEAN[i / 256 % 3]) / IMAGENET_STD[i / 256 % 3])
            .collect();
        assert_eq!(x.to_vec(), want);
    }

    #[test]
    fn refuses_what_cannot_be_applied() {
        let n = Normalize::imagenet();
        assert_eq!(n.check(3, "the normalisation"), Ok(()));
        assert_eq!(n.check(1, "it").unwrap_err(), "it has 3 mean values for images of 1 channels");
        let short_std = Normalize { std: vec![0.2], ..n.clone() };
        assert_eq!(short_std.check(3, "it").unwrap_err(), "it has 1 std values for images of 3 channels");
        for std in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            let bad = Normalize { std: vec![0.2, std, 0.2], ..n.clone() };
            assert!(bad.check(3, "it").unwrap_err().ends_with("must be finite, and the std above 0"), "std {std}");
        }
        let nan_mean = Normalize { mean: vec![0.4, f32::NAN, 0.4], ..n };
        let why = nan_mean.check(3, "the normalisation").unwrap_err();
        assert!(why.starts_with("the normalisation's mean [0.4, NaN, 0.4] and std"), "{why}");
    }
}
