//! One bilinear pass over u8 pixels through a homography, with reflection padding: what fastai's batch transforms do
//! with `F.grid_sample(mode='bilinear', padding_mode='reflection', align_corners=True)`, here on the bytes.
//!
//! Coordinates are in pixels, pixel centres at integers. Per output row the matrix's row terms are computed once;
//! per pixel it costs three multiply-adds and a reciprocal, then the four taps are shared by every channel. Plain
//! `a * b + c`, not `mul_add`: without FMA in the target (a crate depending on crest builds for baseline x86-64)
//! `mul_add` is a library call, and plain arithmetic gives the same bytes on every CPU.

use super::Homography;

/// Where one output pixel reads: the top-left tap, the steps to its right and lower neighbours (0 at the edge), and
/// the weights of those neighbours.
#[derive(Clone, Copy, Default)]
struct Tap {
    at: usize,
    right: usize,
    down: usize,
    fx: f32,
    fy: f32,
}

/// Writes `out[c, v, u] = src` read bilinearly at `m (u, v)`, rounded, for planar `[channels, height, width]` images.
pub fn resample(src: &[u8], channels: usize, height: usize, width: usize, m: &Homography, out: &mut [u8]) {
    let plane = height * width;
    assert!(src.len() == channels * plane && out.len() == src.len(), "resample: buffers don't match the shape");
    let m = m.to_f32();
    let (max_x, max_y) = ((width.max(1) - 1) as f32, (height.max(1) - 1) as f32);
    let mut taps = vec![Tap::default(); width];
    for v in 0..height {
        let vf = v as f32;
        let row = [0, 1, 2].map(|i| m[i][1] * vf + m[i][2]);
        for (u, tap) in taps.iter_mut().enumerate() {
            let uf = u as f32;
            // 1 exactly for an affine matrix, so affine coordinates take no rounding here.
            let inv_w = 1.0 / (m[2][0] * uf + row[2]);
            let x = reflect((m[0][0] * uf + row[0]) * inv_w, max_x);
            let y = reflect((m[1][0] * uf + row[1]) * inv_w, max_y);
            // Both are in [0, max]: truncation is floor.
            let (x0, y0) = (x as usize, y as usize);
            *tap = Tap {
                at: y0 * width + x0,
                right: usize::from(x0 + 1 < width),
                down: if y0 + 1 < height { width } else { 0 },
                fx: x - x0 as f32,
                fy: y - y0 as f32,
            };
        }
        for c in 0..channels {
            let s = &src[c * plane..(c + 1) * plane];
            let o = &mut out[c * plane + v * width..][..width];
            for (o, t) in o.iter_mut().zip(&taps) {
                let p = |i: usize| f32::from(s[i]);
                let (p00, p01) = (p(t.at), p(t.at + t.right));
                let (p10, p11) = (p(t.at + t.down), p(t.at + t.down + t.right));
                let top = p00 + (p01 - p00) * t.fx;
                let bottom = p10 + (p11 - p10) * t.fx;
                // Within [0, 255]: a convex mix of bytes. `as` saturates anyway.
                *o = (top + (bottom - top) * t.fy + 0.5) as u8;
            }
        }
    }
}

/// `x` reflected about the first and last pixel centres into `[0, max]` (PyTorch's reflection for
/// `align_corners=True`). A coordinate that is not a number (a perspective's horizon) reads pixel 0.
fn reflect(x: f32, max: f32) -> f32 {
    if (0.0..=max).contains(&x) {
        return x;
    }
    if max == 0.0 || !x.is_finite() {
        return 0.0;
    }
    let period = 2.0 * max;
    let r = x.abs() % period;
    (if r > max { period - r } else { r }).clamp(0.0, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2-channel 3x4 image whose bytes are all different.
    fn image() -> Vec<u8> {
        (0..24).map(|i| (i * 10) as u8).collect()
    }

    fn run(src: &[u8], c: usize, h: usize, w: usize, m: Homography) -> Vec<u8> {
        let mut out = vec![0; src.len()];
        resample(src, c, h, w, &m, &mut out);
        out
    }

    #[test]
    fn identity_copies_every_byte() {
        let src: Vec<u8> = (0..=255).chain(0..=255).chain((0..=255).rev()).collect();
        assert_eq!(run(&src, 3, 16, 16, Homography::IDENTITY), src);
    }

    #[test]
    fn mirror_reverses_each_row_of_each_channel() {
        let src = image();
        let flip = Homography::scale_shift(-1.0, 3.0, 1.0, 0.0);
        let want: Vec<u8> = src.chunks(4).flat_map(|row| row.iter().rev().copied()).collect();
        assert_eq!(run(&src, 2, 3, 4, flip), want);
    }

    #[test]
    fn quarter_turn_of_a_square_image() {
        // 1 2 3      7 4 1
        // 4 5 6  ->  8 5 2   (clockwise: output (u, v) reads source (v, 2 - u))
        // 7 8 9      9 6 3
        let src = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        let turn = Homography::affine(0.0, 1.0, 0.0, -1.0, 0.0, 2.0);
        assert_eq!(run(&src, 1, 3, 3, turn), [7, 4, 1, 8, 5, 2, 9, 6, 3]);
    }

    #[test]
    fn half_pixel_shift_averages_neighbours_and_rounds_half_up() {
        let src = [0, 101, 200, 50];
        let half = Homography::scale_shift(1.0, 0.5, 1.0, 0.0);
        // Reads at x = 0.5, 1.5, 2.5 and 3.5, the last reflected about pixel 3 to 2.5.
        assert_eq!(run(&src, 1, 1, 4, half), [51, 151, 125, 125]);
    }

    #[test]
    fn reflection_mirrors_about_the_edge_pixel_centres() {
        assert_eq!(reflect(-1.0, 3.0), 1.0);
        assert_eq!(reflect(4.5, 3.0), 1.5);
        assert_eq!(reflect(7.0, 3.0), 1.0);
        assert_eq!(reflect(-7.0, 3.0), 1.0);
        assert_eq!(reflect(2.0, 3.0), 2.0);
        assert_eq!(reflect(5.0, 0.0), 0.0);
        assert_eq!(reflect(f32::NAN, 3.0), 0.0);
        assert_eq!(reflect(f32::INFINITY, 3.0), 0.0);
        // Shifted a whole image width left, a 1x4 row reads itself mirrored.
        let shift = Homography::scale_shift(1.0, -3.0, 1.0, 0.0);
        assert_eq!(run(&[10, 20, 30, 40], 1, 1, 4, shift), [40, 30, 20, 10]);
    }
}
