//! The random part: what one image gets, drawn as fastai draws it (`fastai/vision/augment.py`, fastai 2.8), and the
//! geometric transforms composed into one matrix in pixel coordinates.
//!
//! fastai composes `flip @ rotate @ zoom` in normalised coordinates (-1 and 1 are the first and last pixel centres,
//! PyTorch's `align_corners=True`), corrects it for the aspect ratio (`_prepare_mat`), then applies the perspective
//! warp to the coordinates that gives. `RandomResizedCrop` is an item transform in fastai, run before those, so here
//! it is the last factor applied (the nearest the source image).

use super::{Augment, Homography, Lighting};
use crate::rng::Rng;

/// One image's draw: `None` where nothing happens, so the image is copied rather than resampled or relit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plan {
    /// Maps output pixel coordinates to source pixel coordinates.
    pub geometry: Option<Homography>,
    pub lighting: Option<Lighting>,
}

/// A value uniform in `[lo, hi)`, kept with probability `p` (fastai's `mask_tensor`); `None` for the neutral value,
/// which changes nothing. Both numbers are always drawn.
fn masked_uniform(rng: &mut Rng, lo: f64, hi: f64, p: f32, neutral: f64) -> Option<f64> {
    let value = lo + (hi - lo) * rng.uniform() as f64;
    let keep = rng.uniform() < p;
    (keep && value != neutral).then_some(value)
}

impl Augment {
    /// Draws one image's transforms, for `height` x `width` images. Takes one number from `rng`: each transform
    /// draws from a stream of its own forked from it, so switching one off leaves the others' draws unchanged.
    pub(super) fn draw(&self, rng: &mut Rng, height: usize, width: usize) -> Plan {
        let base = rng.next_u64();
        let stream = |k: u64| Rng::fork(base, k);

        let mut affine = Vec::new();
        if self.flip && stream(1).uniform() < 0.5 {
            affine.push(mirror());
        }
        if self.rotate {
            let r = &mut stream(2);
            let max = self.max_rotate as f64;
            if let Some(degrees) = masked_uniform(r, -max, max, self.p_affine, 0.0) {
                affine.push(rotation(degrees));
            }
        }
        if self.zoom {
            let r = &mut stream(3);
            let zoom = masked_uniform(r, 1.0, self.max_zoom as f64, self.p_affine, 1.0);
            let (col, row) = (r.uniform() as f64, r.uniform() as f64);
            if let Some(zoom) = zoom {
                affine.push(zoom_about(zoom, col, row));
            }
        }
        let mut normalised = affine.into_iter().reduce(|a, b| a * b).map(|m| for_aspect(m, height, width));
        if self.warp {
            let r = &mut stream(4);
            let max = self.max_warp as f64;
            let x = masked_uniform(r, -max, max, self.p_affine, 0.0);
            let y = masked_uniform(r, -max, max, self.p_affine, 0.0);
            if x.is_some() || y.is_some() {
                let warp = perspective(x.unwrap_or(0.0), y.unwrap_or(0.0));
                normalised = Some(warp * normalised.unwrap_or(Homography::IDENTITY));
            }
        }
        let mut geometry = normalised.map(|m| in_pixels(m, height, width));
        if self.crop {
            let crop = random_resized_crop(&mut stream(5), height, width, self.min_scale as f64);
            geometry = Some(crop * geometry.unwrap_or(Homography::IDENTITY));
        }

        let lighting = if self.lighting {
            let r = &mut stream(6);
            let max = self.max_lighting as f64;
            let brightness = masked_uniform(r, 0.5 * (1.0 - max), 0.5 * (1.0 + max), self.p_lighting, 0.5);
            let log_contrast = masked_uniform(r, (1.0 - max).ln(), -(1.0 - max).ln(), self.p_lighting, 0.0);
            let contrast = log_contrast.map(f64::exp);
            (brightness.is_some() || contrast.is_some())
                .then(|| Lighting { brightness: brightness.unwrap_or(0.5), contrast: contrast.unwrap_or(1.0) })
        } else {
            None
        };
        Plan { geometry, lighting }
    }
}

/// fastai's `flip_mat`, in normalised coordinates: x to -x.
fn mirror() -> Homography {
    Homography::affine(-1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
}

/// fastai's `rotate_mat`, in normalised coordinates (before the aspect correction).
fn rotation(degrees: f64) -> Homography {
    let (sin, cos) = degrees.to_radians().sin_cos();
    Homography::affine(cos, sin, 0.0, -sin, cos, 0.0)
}

/// fastai's `zoom_mat`: read a `1 / zoom` window whose place is `col` and `row` in [0, 1] (0 the left or top edge,
/// 1 the right or bottom one), in normalised coordinates.
fn zoom_about(zoom: f64, col: f64, row: f64) -> Homography {
    let s = 1.0 / zoom;
    Homography::affine(s, 0.0, (1.0 - s) * (2.0 * col - 1.0), 0.0, s, (1.0 - s) * (2.0 * row - 1.0))
}

/// A matrix on normalised coordinates as one on pixel coordinates.
fn in_pixels(m: Homography, height: usize, width: usize) -> Homography {
    from_normalised(height, width) * m * to_normalised(height, width)
}

/// fastai's `_prepare_mat`: normalised coordinates stretch a non-square image's shorter side, so a rotation's
/// cross terms are rescaled to keep it a rotation in pixels. fastai scales by `h / w`; with `align_corners=True` the
/// normalised units are `(h - 1) / 2` and `(w - 1) / 2` pixels, so this scales by `(h - 1) / (w - 1)`, which makes
/// it exactly a rotation (the two agree on square images, the usual case).
fn for_aspect(mut m: Homography, height: usize, width: usize) -> Homography {
    let ratio = (height.max(2) - 1) as f64 / (width.max(2) - 1) as f64;
    m.0[0][1] *= ratio;
    m.0[1][0] /= ratio;
    m
}

/// Pixel coordinates to normalised ones: 0 to -1 and the last pixel centre to 1 (a one-pixel side to 0).
fn to_normalised(height: usize, width: usize) -> Homography {
    let scale = |n: usize| if n > 1 { (2.0 / (n - 1) as f64, -1.0) } else { (0.0, 0.0) };
    let ((sx, tx), (sy, ty)) = (scale(width), scale(height));
    Homography::scale_shift(sx, tx, sy, ty)
}

fn from_normalised(height: usize, width: usize) -> Homography {
    let half = |n: usize| (n.max(1) - 1) as f64 / 2.0;
    let (hx, hy) = (half(width), half(height));
    Homography::scale_shift(hx, hx, hy, hy)
}

/// fastai's `_WarpCoord`: the square's corners moved by `x` and `y` (its `targ_pts`), and the perspective that takes
/// the moved corners back to the square's, applied to the coordinates an image is read at.
fn perspective(x: f64, y: f64) -> Homography {
    let square = [[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]];
    let moved = [[-1.0 - y, -1.0 - x], [-1.0 + y, 1.0 + x], [1.0 + y, -1.0 + x], [1.0 - y, 1.0 - x]];
    // Corners moved by less than the half-width (max_warp < 1) keep a proper quadrilateral.
    Homography::from_points(moved, square).unwrap_or(Homography::IDENTITY)
}

/// The crop's aspect ratios, width over height (`RandomResizedCrop`'s `ratio`).
const CROP_RATIO: (f64, f64) = (3.0 / 4.0, 4.0 / 3.0);

/// fastai's `RandomResizedCrop.before_call` (training): up to ten tries at a crop of a random share of the area and
/// log-uniform aspect ratio that fits, else the largest centred crop within the ratios. Returns the map from the
/// resized crop's pixels to the source's (as PIL's resize places pixel centres).
fn random_resized_crop(r: &mut Rng, height: usize, width: usize, min_scale: f64) -> Homography {
    let (w, h) = (width as f64, height as f64);
    let mut crop = None;
    for _ in 0..10 {
        let area = (min_scale + (1.0 - min_scale) * r.uniform() as f64) * w * h;
        let ratio = (CROP_RATIO.0.ln() + (CROP_RATIO.1.ln() - CROP_RATIO.0.ln()) * r.uniform() as f64).exp();
        let (cw, ch) =
            (((area * ratio).sqrt().round() as usize).max(1), ((area / ratio).sqrt().round() as usize).max(1));
        if cw <= width && ch <= height {
            crop = Some((r.below(width - cw + 1), r.below(height - ch + 1), cw, ch));
            break;
        }
    }
    let (left, top, cw, ch) = crop.unwrap_or_else(|| {
        let (cw, ch) = if w / h < CROP_RATIO.0 {
            (width, (w / CROP_RATIO.0) as usize)
        } else if w / h > CROP_RATIO.1 {
            ((h * CROP_RATIO.1) as usize, height)
        } else {
            (width, height)
        };
        ((width - cw) / 2, (height - ch) / 2, cw, ch)
    });
    let (sx, sy) = (cw as f64 / w, ch as f64 / h);
    Homography::scale_shift(sx, left as f64 + 0.5 * sx - 0.5, sy, top as f64 + 0.5 * sy - 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: (f64, f64), b: (f64, f64)) -> bool {
        (a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9
    }

    /// `aug` with every draw that has a chance (p) made certain.
    fn certain(aug: Augment) -> Augment {
        Augment { p_affine: 1.0, p_lighting: 1.0, ..aug }
    }

    #[test]
    fn nothing_switched_on_draws_nothing() {
        let plan = Augment::none().draw(&mut Rng::new(1), 8, 8);
        assert_eq!(plan, Plan { geometry: None, lighting: None });
    }

    #[test]
    fn normalised_coordinates_put_the_edge_pixel_centres_at_minus_one_and_one() {
        let (to, from) = (to_normalised(5, 9), from_normalised(5, 9));
        assert_eq!(to.map(0.0, 0.0), (-1.0, -1.0));
        assert_eq!(to.map(8.0, 4.0), (1.0, 1.0));
        assert_eq!(to.map(4.0, 2.0), (0.0, 0.0));
        assert!(close((from * to).map(3.0, 1.0), (3.0, 1.0)));
        assert_eq!(to_normalised(1, 1).map(0.0, 0.0), (0.0, 0.0));
        assert_eq!(from_normalised(1, 1).map(0.0, 0.0), (0.0, 0.0));
    }

    /// fastai's matrices, composed as it composes them and taken to pixels, map known points where they should.
    #[test]
    fn composed_matrices_map_known_points() {
        let pixels = |m: Homography| in_pixels(for_aspect(m, 5, 5), 5, 5);
        // A quarter turn of a 5x5 image: output (u, v) reads (v, 4 - u).
        let turn = pixels(rotation(90.0));
        for (u, v) in [(0.0, 0.0), (4.0, 0.0), (1.0, 3.0), (2.0, 2.0)] {
            assert!(close(turn.map(u, v), (v, 4.0 - u)), "({u}, {v}) -> {:?}", turn.map(u, v));
        }
        // Zoom 2 about the centre reads the middle 3x3 pixels' span; about the right edge it keeps that edge.
        let centre = pixels(zoom_about(2.0, 0.5, 0.5));
        assert!(close(centre.map(0.0, 0.0), (1.0, 1.0)) && close(centre.map(4.0, 4.0), (3.0, 3.0)));
        let right = pixels(zoom_about(2.0, 1.0, 0.5));
        assert!(close(right.map(4.0, 2.0), (4.0, 2.0)) && close(right.map(0.0, 2.0), (2.0, 2.0)));
        // fastai's `flip @ rotate`: the output point is turned, then mirrored.
        let both = pixels(mirror() * rotation(90.0));
        for (u, v) in [(0.0, 0.0), (1.0, 0.0), (3.0, 1.0)] {
            assert!(close(both.map(u, v), (4.0 - v, 4.0 - u)), "({u}, {v}) -> {:?}", both.map(u, v));
        }
        // And a 3x3 image read through the quarter turn is the image turned clockwise.
        let mut out = [0; 9];
        crate::data::transforms::resample(
            &[1, 2, 3, 4, 5, 6, 7, 8, 9],
            1,
            3,
            3,
            &in_pixels(rotation(90.0), 3, 3),
            &mut out,
        );
        assert_eq!(out, [7, 4, 1, 8, 5, 2, 9, 6, 3]);
    }

    /// Every image flipped: the matrix reads pixel `w - 1 - x` for pixel `x`.
    #[test]
    fn flip_mirrors_in_pixels() {
        let flips: Vec<Homography> = (0..40)
            .filter_map(|i| Augment { flip: true, ..Augment::none() }.draw(&mut Rng::new(i), 4, 10).geometry)
            .collect();
        // About half the images, each the same mirror.
        assert!((10..30).contains(&flips.len()), "{} of 40 flipped", flips.len());
        for m in flips {
            assert!(close(m.map(0.0, 0.0), (9.0, 0.0)) && close(m.map(2.0, 3.0), (7.0, 3.0)));
        }
    }

    /// A rotation about the image centre, the same angle in pixels on a non-square image (the aspect correction).
    #[test]
    fn rotation_turns_about_the_centre_by_the_drawn_angle() {
        let aug = certain(Augment { rotate: true, ..Augment::none() });
        let m = aug.draw(&mut Rng::new(3), 21, 41).geometry.expect("rotate with p 1");
        let centre = (20.0, 10.0);
        assert!(close(m.map(centre.0, centre.1), centre));
        // The point 10 pixels right of the centre reads from 10 pixels away at some angle within ±10°.
        let (x, y) = m.map(30.0, 10.0);
        let (dx, dy) = (x - centre.0, y - centre.1);
        assert!(((dx * dx + dy * dy).sqrt() - 10.0).abs() < 1e-9);
        let degrees = dy.atan2(dx).to_degrees();
        assert!(degrees.abs() <= 10.0 && degrees.abs() > 0.0, "{degrees}");
        // Pixels 10 below the centre turn by the same angle: a rotation, not a shear.
        let (x, y) = m.map(20.0, 20.0);
        assert!((((x - centre.0).atan2(y - centre.1)).to_degrees() + degrees).abs() < 1e-9);
    }

    /// fastai's zoom by `z` about a centre chosen by `(col, row)` maps the output onto a 1/z share of the source
    /// that stays inside it.
    #[test]
    fn zoom_reads_a_smaller_window_inside_the_image() {
        let aug = certain(Augment { zoom: true, max_zoom: 2.0, ..Augment::none() });
        for seed in 0..20 {
            let m = aug.draw(&mut Rng::new(seed), 11, 11).geometry.expect("zoom with p 1");
            let (x0, y0) = m.map(0.0, 0.0);
            let (x1, y1) = m.map(10.0, 10.0);
            let scale = (x1 - x0) / 10.0;
            assert!((0.5..=1.0).contains(&scale) && ((y1 - y0) / 10.0 - scale).abs() < 1e-12);
            assert!(x0 >= -1e-9 && y0 >= -1e-9 && x1 <= 10.0 + 1e-9 && y1 <= 10.0 + 1e-9, "{x0} {y0} {x1} {y1}");
        }
    }

    #[test]
    fn warp_moves_the_corners_as_fastai_does() {
        let m = perspective(0.2, -0.1);
        // fastai's targ_pts go to the square's corners.
        assert!(close(m.map(-1.0 + 0.1, -1.0 - 0.2), (-1.0, -1.0)));
        assert!(close(m.map(-1.0 - 0.1, 1.0 + 0.2), (-1.0, 1.0)));
        assert!(close(m.map(1.0 - 0.1, -1.0 + 0.2), (1.0, -1.0)));
        assert!(close(m.map(1.0 + 0.1, 1.0 - 0.2), (1.0, 1.0)));
        assert_eq!(
            perspective(0.0, 0.0),
            Homography::from_points(
                [[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]],
                [[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]]
            )
            .unwrap()
        );
    }

    #[test]
    fn crops_fit_inside_the_image_within_the_ratios() {
        for seed in 0..200 {
            let m = random_resized_crop(&mut Rng::new(seed), 30, 40, 0.08);
            // The first and last output pixels' outer edges land on the crop's edges, inside the image.
            let (left, top) = m.map(-0.5, -0.5);
            let (right, bottom) = m.map(39.5, 29.5);
            assert!(left >= -0.5 - 1e-9 && top >= -0.5 - 1e-9 && right <= 39.5 + 1e-9 && bottom <= 29.5 + 1e-9);
            let (cw, ch) = (right - left, bottom - top);
            assert!((cw * ch / 1200.0) >= 0.08 * 0.9 && cw * ch <= 1200.0 + 1e-9, "area {cw}x{ch}");
            // Rounding to whole pixels can push a small crop's ratio a little past 3/4..4/3.
            assert!((0.6..1.6).contains(&(cw / ch)), "ratio {}", cw / ch);
        }
        // A 1x1 image can only crop itself.
        assert!(close(random_resized_crop(&mut Rng::new(0), 1, 1, 0.08).map(0.0, 0.0), (0.0, 0.0)));
    }

    #[test]
    fn lighting_draws_within_fastais_ranges() {
        let aug = certain(Augment { lighting: true, ..Augment::none() });
        for seed in 0..100 {
            let l = aug.draw(&mut Rng::new(seed), 2, 2).lighting.expect("lighting with p 1");
            assert!((0.4..0.6).contains(&l.brightness), "{l:?}");
            assert!((0.8..1.25).contains(&l.contrast), "{l:?}");
        }
    }

    #[test]
    fn switching_one_off_leaves_the_others_draws() {
        let all = Augment { crop: true, ..Augment::fastai() };
        for seed in 0..20 {
            let both = all.draw(&mut Rng::new(seed), 8, 8);
            let lit_only = Augment { lighting: true, ..Augment::none() }.draw(&mut Rng::new(seed), 8, 8);
            assert_eq!(both.lighting, lit_only.lighting);
        }
    }
}
