//! Bilinear resize, computed the way Pillow's `Image.resize(..., BILINEAR)` computes it, which is what
//! torchvision's `Resize((s, s))` runs on PIL images: a triangle filter whose support widens with the downscale
//! factor (antialiasing), weights in 22-bit fixed point, one pass along each axis, each rounded to u8, in the order
//! Pillow 13 runs them.
//! Matching it step for step makes the pixels equal to PyTorch's instead of off by one here and there; working on
//! u8 with precomputed weights also keeps it cheaper than a resize that goes through f32.

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// For each output index: the first input index, and one fixed-point weight per input index used from there.
struct Coeffs {
    first: Vec<usize>,
    weights: Vec<Vec<i32>>,
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc`, in f64 as there.
fn coeffs(in_size: usize, out_size: usize) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale;
    // Pillow multiplies by the reciprocal rather than dividing by the scale, which rounds differently at some scales
    // (70 -> 33) and, through the fixed-point weights, changes a pixel by 1 here and there.
    let ss = 1.0 / filter_scale;
    let mut first = Vec::with_capacity(out_size);
    let mut weights = Vec::with_capacity(out_size);
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        // `as` truncates toward zero, like the C casts this mirrors.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let w: Vec<f64> = (xmin..xmax).map(|x| (1.0 - ((x as f64 - center + 0.5) * ss).abs()).max(0.0)).collect();
        let total: f64 = w.iter().sum();
        let fixed = w
            .iter()
            .map(|&w| {
                let w = if total != 0.0 { w / total } else { w };
                (w * (1 << PRECISION_BITS) as f64 + 0.5 * w.signum()) as i32
            })
            .collect();
        first.push(xmin);
        weights.push(fixed);
    }
    Coeffs { first, weights }
}

fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resize interleaved `[h, w, c]` u8 pixels to `[out_h, out_w, c]`. A pass whose size already matches is skipped,
/// as in Pillow, so an unchanged size returns the input.
pub(crate) fn resize(src: Vec<u8>, w: usize, h: usize, c: usize, out_w: usize, out_h: usize) -> Vec<u8> {
    // Each pass rounds to u8, so their order changes pixels by 1 here and there. Pillow 13 (python-pillow/Pillow#9549)
    // runs the vertical pass first when the height loses more than twice as many pixels as the width; the condition
    // was found by experiment (`bench/pillow_resize.py order`: on 8,648 sizes, it picks an order whose bytes are
    // PIL's every time). With torchvision's Resize, that is a shorter side reduced on an image over twice as tall
    // as wide.
    if out_h < h && (h - out_h) as i64 > 2 * (w as i64 - out_w as i64) {
        let vertical = vertical(src, w * c, h, out_h);
        horizontal(vertical, w, c, out_w)
    } else {
        let horizontal = horizontal(src, w, c, out_w);
        vertical(horizontal, out_w * c, h, out_h)
    }
}

/// The vertical pass over `h` rows `stride` bytes long, to `out_h` rows.
fn vertical(src: Vec<u8>, stride: usize, h: usize, out_h: usize) -> Vec<u8> {
    if out_h == h {
        return src;
    }
    let half = 1 << (PRECISION_BITS - 1);
    let k = coeffs(h, out_h);
    let mut out = vec![0; out_h * stride];
    let mut acc = vec![0i32; stride];
    for (yy, out_row) in out.chunks_exact_mut(stride).enumerate() {
        acc.fill(half);
        for (i, &wt) in k.weights[yy].iter().enumerate() {
            let y = k.first[yy] + i;
            for (a, &p) in acc.iter_mut().zip(&src[y * stride..(y + 1) * stride]) {
                *a += p as i32 * wt;
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    out
}

/// The horizontal pass over rows of `w` pixels of `c` channels, to `out_w` pixels.
fn horizontal(src: Vec<u8>, w: usize, c: usize, out_w: usize) -> Vec<u8> {
    if out_w == w {
        return src;
    }
    let k = coeffs(w, out_w);
    match c {
        1 => horizontal_of::<1>(&src, w, &k),
        2 => horizontal_of::<2>(&src, w, &k),
        3 => horizontal_of::<3>(&src, w, &k),
        _ => horizontal_of::<4>(&src, w, &k),
    }
}

/// The horizontal pass for `C` interleaved channels; `C` as a constant lets each pixel's accumulators live in
/// registers.
fn horizontal_of<const C: usize>(src: &[u8], w: usize, k: &Coeffs) -> Vec<u8> {
    let half = 1 << (PRECISION_BITS - 1);
    let out_w = k.first.len();
    let mut out = vec![0; src.len() / w * out_w];
    for (row, out_row) in src.chunks_exact(w * C).zip(out.chunks_exact_mut(out_w * C)) {
        for ((px, &first), weights) in out_row.chunks_exact_mut(C).zip(&k.first).zip(&k.weights) {
            let mut acc = [half; C];
            for (src_px, &wt) in row[first * C..].chunks_exact(C).zip(weights) {
                for ch in 0..C {
                    acc[ch] += src_px[ch] as i32 * wt;
                }
            }
            for ch in 0..C {
                px[ch] = clip8(acc[ch]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_stays_flat_and_weights_sum_to_one() {
        // Under Miri (.ci/miri), which interprets every operation, the small cases only.
        let cases = if cfg!(miri) {
            vec![(28, 11), (5, 3), (3, 7)]
        } else {
            vec![(28, 140), (64, 140), (140, 28), (5, 3), (3, 7)]
        };
        for (n, m) in cases {
            let k = coeffs(n, m);
            for w in &k.weights {
                let sum: i32 = w.iter().sum();
                assert!((sum - (1 << PRECISION_BITS)).abs() <= w.len() as i32, "{n}->{m}: {sum}");
            }
            assert_eq!(resize(vec![77; n * n * 2], n, n, 2, m, m), vec![77; m * m * 2]);
        }
    }

    #[test]
    fn matches_pillow() {
        // Pillow 13.0: Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4) * 20).resize(size, BILINEAR).
        // Checked the same way, through `load_image`, on 80 emoji (google RGBA and twitter palette PNGs, 64 -> 140,
        // as PIL `convert("RGBA").resize((140, 140), BILINEAR)`) and MNIST digits (28 -> 140 and 28 -> 11): max
        // pixel difference 0.
        let src: Vec<u8> = (0..12).map(|v| v * 20).collect();
        assert_eq!(resize(src.clone(), 4, 3, 1, 3, 2), vec![36, 60, 84, 136, 160, 184]);
        let up: Vec<u8> = vec![
            0, 7, 19, 30, 41, 53, 60, 32, 39, 51, 62, 73, 85, 92, 80, 87, 99, 110, 121, 133, 140, 128, 135, 147, 158,
            169, 181, 188, 160, 167, 179, 190, 201, 213, 220,
        ];
        assert_eq!(resize(src, 4, 3, 1, 7, 5), up);
    }

    /// Pillow 13.0's bytes, from `bench/pillow_resize.py cases`, on a 7x16 image and its first 13 rows: each case
    /// gives other bytes with the passes the other way round.
    #[test]
    fn passes_in_pillow_13_s_order() {
        let value = |x: usize, y: usize| ((x * 53 + y * 29 + x * y * 11) % 256) as u8;
        let grey: Vec<u8> = (0..16).flat_map(|y| (0..7).map(move |x| value(x, y))).collect();
        // The height loses 11 pixels, the width 1 (or gains 5): the vertical pass first.
        let down: Vec<u8> = vec![
            54, 117, 134, 126, 93, 138, 135, 150, 105, 142, 111, 119, 149, 112, 108, 117, 125, 134, 83, 142, 110, 131,
            161, 147, 130, 88, 81, 112, 159, 128,
        ];
        assert_eq!(resize(grey.clone(), 7, 16, 1, 6, 5), down);
        let wider: Vec<u8> = vec![
            55, 83, 126, 124, 121, 127, 130, 131, 110, 89, 126, 150, 152, 149, 145, 124, 108, 113, 124, 139, 120, 96,
            111, 121, 92, 112, 143, 122, 104, 107, 117, 134, 148, 159, 153, 149, 124, 116, 103, 95, 90, 93, 106, 131,
            151, 166, 137, 119,
        ];
        assert_eq!(resize(grey.clone(), 7, 16, 1, 12, 4), wider);
        // The height loses 6 pixels, exactly twice the width's 3: still the horizontal pass first.
        let tie: Vec<u8> = vec![
            50, 135, 125, 95, 101, 117, 107, 144, 158, 117, 156, 112, 140, 124, 107, 96, 144, 99, 121, 137, 104, 110,
            138, 167, 103, 144, 146, 167,
        ];
        assert_eq!(resize(grey[..13 * 7].to_vec(), 7, 13, 1, 4, 7), tie);
        // RGB: the grey image, its negative, and the grey one's rows moved down by 3 (numpy's roll).
        let rgb: Vec<u8> = (0..16)
            .flat_map(|y| (0..7).flat_map(move |x| [value(x, y), 255 - value(x, y), value(x, (y + 13) % 16)]))
            .collect();
        let rgb_down: Vec<u8> = vec![
            54, 201, 123, 122, 133, 72, 140, 115, 91, 98, 157, 146, 125, 130, 117, 130, 125, 68, 126, 129, 118, 120,
            135, 130, 131, 124, 105, 123, 133, 135, 157, 98, 120, 125, 130, 125, 112, 143, 117, 113, 142, 125, 109,
            146, 127, 114, 141, 156, 109, 146, 129, 115, 140, 117, 143, 112, 116, 155, 100, 108, 95, 161, 125, 131,
            124, 103, 119, 137, 114, 160, 96, 135, 142, 114, 150, 130, 125, 93, 80, 175, 154, 84, 171, 113, 148, 107,
            170, 139, 116, 161,
        ];
        assert_eq!(resize(rgb, 7, 16, 3, 5, 6), rgb_down);
    }
}
