//! torchvision's evaluation transform, which pretrained weights expect their images to go through:
//! `Resize(resize)` (the shorter side to `resize`, keeping the aspect ratio, with PIL's antialiased bilinear),
//! `CenterCrop(crop)`, `ToTensor()` (bytes / 255) and `Normalize(mean, std)`. Each step computes what torchvision
//! computes on a PIL image, in the same arithmetic, so a model sees the tensor PyTorch's would, bit for bit.

use super::Normalize;
use serde::{Deserialize, Serialize};

/// The longest `resize` accepted: larger sides are no model's input, and keep `resize * side` exact in f64.
pub const MAX_RESIZE: usize = 1 << 16;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    /// The shorter side is resized to this.
    pub resize: usize,
    /// Then the centre `crop` x `crop` square is kept.
    pub crop: usize,
    /// Then each channel's values `byte / 255` become `(value - mean) / std`. Its `mean` and `std` are stored
    /// beside `resize` and `crop`, as model files have always held them.
    #[serde(flatten)]
    pub normalize: Normalize,
}

impl Preprocess {
    /// torchvision's ImageNet evaluation transform (its weights use 256 and 224) for RGB images.
    pub fn imagenet(resize: usize, crop: usize) -> Preprocess {
        Preprocess { resize, crop, normalize: Normalize::imagenet() }
    }

    /// Why these steps can't be applied to images of `channels` channels, as the end of a sentence; a model file
    /// stores them, so they are checked as untrusted input.
    pub fn check(&self, channels: usize) -> Result<(), String> {
        let (resize, crop) = (self.resize, self.crop);
        if crop == 0 || crop > resize || resize > MAX_RESIZE {
            return Err(format!(
                "the preprocessing resizes to {resize} and crops {crop}; the crop must be from 1 to the resize, \
                 and the resize at most {MAX_RESIZE}"
            ));
        }
        self.normalize.check(channels, "the preprocessing")
    }

    /// The size (width, height) a `width` x `height` image is resized to: torchvision's
    /// `_compute_resized_output_size`, whose longer side is `int(resize * long / short)` in Python floats.
    pub fn resized_size(&self, width: usize, height: usize) -> (usize, usize) {
        let (short, long) = (width.min(height) as u64, width.max(height) as u64);
        // `resize * long` is exact (both are far below 2^26 where images are decoded), then divided once, as Python
        // divides two ints.
        let long = ((self.resize as u64 * long) as f64 / short as f64) as usize;
        if width <= height {
            (self.resize, long)
        } else {
            (long, self.resize)
        }
    }

    /// Where the crop starts (left, top) in an image of the resized size: torchvision's
    /// `int(round((side - crop) / 2.0))`, Python's `round` going to the even neighbour on a half.
    pub fn crop_origin(&self, width: usize, height: usize) -> (usize, usize) {
        let start = |side: usize| ((side - self.crop) as f64 / 2.0).round_ties_even() as usize;
        (start(width), start(height))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_crops_are_torchvision_s() {
        let p = Preprocess::imagenet(256, 224);
        // Resize(256) on PIL images of these sizes gives, in torchvision 0.29:
        assert_eq!(p.resized_size(500, 375), (341, 256));
        assert_eq!(p.resized_size(375, 500), (256, 341));
        assert_eq!(p.resized_size(640, 427), (383, 256));
        assert_eq!(p.resized_size(64, 64), (256, 256));
        // CenterCrop(224): (341 - 224) / 2 = 58.5 rounds to 58, (383 - 224) / 2 = 79.5 to 80.
        assert_eq!(p.crop_origin(341, 256), (58, 16));
        assert_eq!(p.crop_origin(383, 256), (80, 16));
    }

    #[test]
    fn refuses_what_cannot_be_applied() {
        let p = Preprocess::imagenet(256, 224);
        assert_eq!(p.check(3), Ok(()));
        assert_eq!(p.check(1).unwrap_err(), "the preprocessing has 3 mean values for images of 1 channels");
        let crop_too_big = Preprocess { crop: 300, ..p.clone() };
        assert!(crop_too_big.check(3).unwrap_err().starts_with("the preprocessing resizes to 256 and crops 300;"));
        let zero_std = Preprocess { normalize: Normalize { std: vec![0.2, 0.0, 0.2], ..p.normalize.clone() }, ..p };
        assert!(zero_std.check(3).unwrap_err().ends_with("must be finite, and the std above 0"));
    }

    #[test]
    fn model_files_hold_the_mean_and_std_beside_the_sizes_as_before() {
        let json = r#"{"resize":16,"crop":12,"mean":[0.485,0.456,0.406],"std":[0.229,0.224,0.225]}"#;
        let p: Preprocess = serde_json::from_str(json).unwrap();
        assert_eq!(p, Preprocess::imagenet(16, 12));
        assert_eq!(serde_json::to_string(&p).unwrap(), json);
    }
}
