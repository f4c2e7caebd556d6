//! What a linear model learned: each class's weights drawn as an image the size of the input, in a diverging colour
//! map — red where a bright pixel counts for the class, blue where it counts against, white where it doesn't
//! matter — the picture the post's model makes of a "3".

use super::ticks::scientific;
use super::Picture;

/// Weight images are enlarged (nearest neighbour, whole times) until they are at least this many pixels tall.
const MIN_HEIGHT: usize = 140;
/// The colour between channel panels, and of a weight that is not a number: a grey no weight is drawn as.
const SEPARATOR: [u8; 3] = [96, 96, 96];

/// One class's weights (planar `[channels, height, width]`, as a linear layer's row for that class) as a picture:
/// red for positive, blue for negative, white for zero, on a symmetric scale whose ends are ± the largest |weight|,
/// which the caption gets appended. With more than one channel, each channel is its own panel, side by side in
/// channel order (R | G | B | A) on the same scale: averaging them would hide a weight that sees one colour. Weights
/// that don't fit the shape give a picture with no pixels, which the page shows as a line saying so.
pub fn weights_picture(weights: &[f32], channels: usize, height: usize, width: usize, caption: &str) -> Picture {
    let largest = weights.iter().filter(|w| w.is_finite()).fold(0.0f32, |m, w| m.max(w.abs()));
    let caption = format!("{caption}\n{}(±{})", panel_names(channels), scientific(largest as f64));
    let plane = height * width;
    if channels == 0 || plane == 0 || weights.len() != channels * plane {
        return Picture { pixels: Vec::new(), channels: 3, height, width, caption };
    }
    let zoom = MIN_HEIGHT.div_ceil(height);
    let full_width = channels * width + channels - 1;
    let (out_h, out_w) = (height * zoom, full_width * zoom);
    let mut pixels = vec![0u8; 3 * out_h * out_w];
    for y in 0..out_h {
        for x in 0..out_w {
            let (sx, sy) = (x / zoom, y / zoom);
            let (panel, px) = (sx / (width + 1), sx % (width + 1));
            let rgb = if px == width { SEPARATOR } else { colour(weights[panel * plane + sy * width + px], largest) };
            for (c, v) in rgb.into_iter().enumerate() {
                pixels[c * out_h * out_w + y * out_w + x] = v;
            }
        }
    }
    Picture { pixels, channels: 3, height: out_h, width: out_w, caption }
}

/// The diverging colour of `w` on the scale ±`largest`: white fading to red above zero, to blue below.
fn colour(w: f32, largest: f32) -> [u8; 3] {
    if !w.is_finite() {
        return SEPARATOR;
    }
    let t = if largest > 0.0 { (w / largest).clamp(-1.0, 1.0) } else { 0.0 };
    let fade = (255.0 * (1.0 - t.abs())).round() as u8;
    if t >= 0.0 {
        [255, fade, fade]
    } else {
        [fade, fade, 255]
    }
}

fn panel_names(channels: usize) -> &'static str {
    match channels {
        2 => "grey | alpha ",
        3 => "R | G | B ",
        4 => "R | G | B | A ",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RGB of pixel (x, y) of a planar picture.
    fn rgb(p: &Picture, x: usize, y: usize) -> [u8; 3] {
        let plane = p.height * p.width;
        [0, 1, 2].map(|c| p.pixels[c * plane + y * p.width + x])
    }

    #[test]
    fn colours_diverge_from_white_at_zero() {
        let p = weights_picture(&[-2.0, -1.0, 0.0, 1.0, 2.0, 0.5], 1, 2, 3, "3");
        assert_eq!((p.height, p.width, p.channels), (140, 210, 3));
        assert_eq!(p.caption, "3\n(±2e0)");
        let zoom = 70;
        let at = |x: usize, y: usize| rgb(&p, x * zoom, y * zoom);
        assert_eq!(at(0, 0), [0, 0, 255]);
        assert_eq!(at(1, 0), [128, 128, 255]);
        assert_eq!(at(2, 0), [255, 255, 255]);
        assert_eq!(at(0, 1), [255, 128, 128]);
        assert_eq!(at(1, 1), [255, 0, 0]);
        assert_eq!(at(2, 1), [255, 191, 191]);
        // Nearest-neighbour enlargement: a weight's whole square has its colour.
        assert_eq!(rgb(&p, zoom - 1, zoom - 1), [0, 0, 255]);
        assert_eq!(rgb(&p, zoom, zoom - 1), [128, 128, 255]);
    }

    #[test]
    fn channels_are_panels_on_one_scale() {
        // Two 1x1 channels: a grey panel, a separator, then an alpha panel.
        let p = weights_picture(&[4.0, -1.0], 2, 1, 1, "a");
        assert_eq!((p.height, p.width), (140, 3 * 140));
        assert_eq!(p.caption, "a\ngrey | alpha (±4e0)");
        assert_eq!(rgb(&p, 0, 0), [255, 0, 0]);
        assert_eq!(rgb(&p, 140, 0), SEPARATOR);
        assert_eq!(rgb(&p, 280, 0), [191, 191, 255]);
    }

    #[test]
    fn odd_weights_do_not_break_the_picture() {
        let zeros = weights_picture(&[0.0; 4], 1, 2, 2, "z");
        assert!(zeros.pixels.iter().all(|&v| v == 255));
        let nan = weights_picture(&[f32::NAN, 1.0], 1, 1, 2, "n");
        assert_eq!((rgb(&nan, 0, 0), rgb(&nan, 140, 0)), (SEPARATOR, [255, 0, 0]));
        let wrong = weights_picture(&[1.0; 3], 1, 2, 2, "w");
        assert!(wrong.pixels.is_empty());
        assert!(super::super::picture::img(&wrong).contains("do not make"));
    }
}
