//! Augmenting one image: draw its transforms, resample once, relight.

use super::{resample, Augment};
use crate::rng::Rng;

impl Augment {
    /// Writes an augmented copy of `image` (planar u8 `[channels, height, width]`, `channels` in 1..=4) to `out`,
    /// drawing from `rng` (one number). For the same bytes again, pass a generator in the same state: within a run,
    /// [`super::image_rng`]`(seed, epoch, index)`; for test-time augmentation, copy `j` of image `i` is
    /// `image_rng(seed, j, i)`, which gives `j` different copies.
    ///
    /// Panics if `image` or `out` does not hold `channels * height * width` bytes.
    pub fn apply(&self, image: &[u8], channels: usize, height: usize, width: usize, rng: &mut Rng, out: &mut [u8]) {
        let len = channels * height * width;
        assert!(
            image.len() == len && out.len() == len,
            "Augment::apply: {channels}x{height}x{width} images hold {len} bytes, not {} (image) and {} (out)",
            image.len(),
            out.len()
        );
        let plan = self.draw(rng, height, width);
        match plan.geometry {
            Some(m) => resample(image, channels, height, width, &m, out),
            None => out.copy_from_slice(image),
        }
        if let Some(lighting) = plan.lighting {
            let table = lighting.table();
            for byte in &mut out[..lit_channels(channels) * height * width] {
                *byte = table[*byte as usize];
            }
        }
    }
}

/// The channels lighting changes: all but an alpha channel, which is the last of a grey+alpha or RGBA image
/// (fastai's images are RGB, so it has no rule for alpha; brightening transparency would make shapes appear).
fn lit_channels(channels: usize) -> usize {
    match channels {
        2 | 4 => channels - 1,
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4-channel 5x6 image whose bytes are all different, alpha (the last plane) included.
    fn image() -> Vec<u8> {
        (0..120).map(|i| (i * 2 + 3) as u8).collect()
    }

    fn augmented(aug: Augment, seed: u64, image: &[u8]) -> Vec<u8> {
        let mut out = vec![0; image.len()];
        aug.apply(image, 4, 5, 6, &mut Rng::new(seed), &mut out);
        out
    }

    #[test]
    fn nothing_drawn_returns_the_image_byte_for_byte() {
        let src = image();
        assert_eq!(augmented(Augment::none(), 1, &src), src);
        let never = Augment { p_affine: 0.0, p_lighting: 0.0, ..Augment::fastai() };
        let unflipped = (0..20).find(|&s| augmented(Augment { flip: true, ..Augment::none() }, s, &src) == src);
        assert_eq!(augmented(never, unflipped.expect("some seed does not flip"), &src), src);
    }

    #[test]
    fn flip_mirrors_every_row_of_every_channel() {
        let src = image();
        let mirror: Vec<u8> = src.chunks(6).flat_map(|row| row.iter().rev().copied()).collect();
        let flip = Augment { flip: true, ..Augment::none() };
        let outs: Vec<Vec<u8>> = (0..20).map(|s| augmented(flip, s, &src)).collect();
        assert!(outs.iter().all(|o| *o == src || *o == mirror));
        assert!(outs.contains(&src) && outs.contains(&mirror));
    }

    #[test]
    fn lighting_maps_colour_bytes_through_the_table_and_keeps_alpha() {
        let src = image();
        let aug = Augment { lighting: true, p_lighting: 1.0, ..Augment::none() };
        let out = augmented(aug, 9, &src);
        let lighting = aug.draw(&mut Rng::new(9), 5, 6).lighting.expect("lighting with p 1");
        let table = lighting.table();
        let plane = 30;
        assert!(out[..3 * plane].iter().zip(&src).all(|(&o, &s)| o == table[s as usize]));
        assert_ne!(out[..3 * plane], src[..3 * plane]);
        assert_eq!(out[3 * plane..], src[3 * plane..]);
        assert_eq!((lit_channels(1), lit_channels(2), lit_channels(3), lit_channels(4)), (1, 1, 3, 3));
    }

    #[test]
    fn the_same_generator_state_gives_the_same_bytes() {
        let src = image();
        let aug = Augment { crop: true, ..Augment::fastai() };
        assert_eq!(augmented(aug, 5, &src), augmented(aug, 5, &src));
        assert_ne!(augmented(aug, 5, &src), augmented(aug, 6, &src));
    }

    #[test]
    fn one_pixel_sides_read_their_own_pixels() {
        let every = Augment { crop: true, lighting: false, p_affine: 1.0, ..Augment::fastai() };
        for (h, w) in [(1, 1), (1, 5), (5, 1), (2, 2)] {
            let src: Vec<u8> = (0..3 * h * w).map(|i| (i * 37 % 256) as u8).collect();
            for seed in 0..20 {
                let mut out = vec![0; src.len()];
                every.apply(&src, 3, h, w, &mut Rng::new(seed), &mut out);
                if h * w == 1 {
                    assert_eq!(out, src);
                }
                // Every output byte is a mix of its channel's bytes: within their range.
                for (o, s) in out.chunks(h * w).zip(src.chunks(h * w)) {
                    let (lo, hi) = (s.iter().min().unwrap(), s.iter().max().unwrap());
                    assert!(o.iter().all(|v| (lo..=hi).contains(&v)), "{h}x{w}: {o:?} from {s:?}");
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "4x5x6 images hold 120 bytes, not 119")]
    fn a_short_image_is_a_callers_bug() {
        let mut out = vec![0; 120];
        Augment::fastai().apply(&image()[1..], 4, 5, 6, &mut Rng::new(0), &mut out);
    }
}
