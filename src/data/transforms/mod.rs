//! Data augmentation: fastai's `aug_transforms()` (flip, rotate, zoom, perspective warp, lighting) and its
//! `RandomResizedCrop`, on u8 images.
//!
//! Each image's geometric transforms are composed into one 3x3 matrix and the image is read once through it
//! (bilinear, reflection padding, rounded back to bytes); lighting then maps each byte through a 256-entry table
//! (colour channels only: an alpha channel, the last of 2 or 4, keeps its bytes). Images are independent: a batch is
//! augmented in parallel, each image with its own generator, [`image_rng`]`(seed, epoch, index)`, so the same seed
//! gives the same bytes at any thread count and in any batch.
//!
//! ```
//! use crest::data::transforms::{image_rng, Augment};
//! let aug: Augment = "flip,rotate".parse().unwrap();
//! let image = vec![7u8; 3 * 8 * 8];
//! let mut out = vec![0u8; image.len()];
//! aug.apply(&image, 3, 8, 8, &mut image_rng(42, 0, 5), &mut out);
//! assert_eq!(out, image); // a flat image looks the same however it is turned
//! ```

mod apply;
mod augment;
mod batch;
mod draw;
mod homography;
mod lighting;
mod resample;

pub use augment::Augment;
pub use batch::image_rng;
pub use homography::Homography;
pub use lighting::Lighting;
pub use resample::resample;
