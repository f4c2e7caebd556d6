//! Bilinear resize, computed the way Pillow's `Image.resize(..., BILINEAR)` computes it, which is what
//! torchvision's `Resize((s, s))` runs on PIL images: a triangle filter whose support widens with the downscale
//! factor (antialiasing), weights in 22-bit fixed point, a horizontal pass rounded to u8, then a vertical one.
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
    let half = 1 << (PRECISION_BITS - 1);
    let horizontal = if out_w == w {
        src
    } else {
        let k = coeffs(w, out_w);
        match c {
            1 => horizontal::<1>(&src, w, &k),
            2 => horizontal::<2>(&src, w, &k),
            3 => horizontal::<3>(&src, w, &k),
            _ => horizontal::<4>(&src, w, &k),
        }
    };
    if out_h == h {
        return horizontal;
    }
    let k = coeffs(h, out_h);
    let stride = out_w * c;
    let mut out = vec![0; out_h * stride];
    let mut acc = vec![0i32; stride];
    for (yy, out_row) in out.chunks_exact_mut(stride).enumerate() {
        acc.fill(half);
        for (i, &wt) in k.weights[yy].iter().enumerate() {
            let y = k.first[yy] + i;
            for (a, &p) in acc.iter_mut().zip(&horizontal[y * stride..(y + 1) * stride]) {
                *a += p as i32 * wt;
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    out
}

/// The horizontal pass for `C` interleaved channels; `C` as a constant lets each pixel's accumulators live in
/// registers.
fn horizontal<const C: usize>(src: &[u8], w: usize, k: &Coeffs) -> Vec<u8> {
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
}
