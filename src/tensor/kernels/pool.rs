//! Pooling over NCHW planes. Planes are independent, so forward passes (and the average
//! backward) run one plane per rayon task.

use rayon::prelude::*;

use super::sum_f64;

fn out_len(size: usize, k: usize, stride: usize, pad: usize) -> usize {
    (size + 2 * pad - k) / stride + 1
}

fn check(h: usize, w: usize, k: usize, stride: usize, pad: usize) -> (usize, usize) {
    assert!(k > 0 && stride > 0, "pool2d: kernel and stride must be positive");
    // PyTorch's rule; it guarantees every window holds at least one real element.
    assert!(pad <= k / 2, "pool2d: pad must be at most half the kernel");
    assert!(h + 2 * pad >= k && w + 2 * pad >= k, "pool2d: kernel larger than padded input");
    (out_len(h, k, stride, pad), out_len(w, k, stride, pad))
}

/// Input rows (or columns) covered by output position `o`, clipped to the image.
fn window(o: usize, k: usize, stride: usize, pad: usize, size: usize) -> std::ops::Range<usize> {
    let start = (o * stride).saturating_sub(pad);
    let end = (o * stride + k).saturating_sub(pad).min(size);
    start..end
}

/// out `[n,c,oh,ow]` = max over each window; `argmax` receives, per output, the flat index
/// into `x` of the chosen element (the first maximum; NaN wins, as in PyTorch).
#[allow(clippy::too_many_arguments)]
pub fn maxpool2d_forward(
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    pad: usize,
    x: &[f32],
    out: &mut [f32],
    argmax: &mut [u32],
) {
    let (oh, ow) = check(h, w, k, stride, pad);
    assert_eq!(x.len(), n * c * h * w, "maxpool2d: x is not [n,c,h,w]");
    assert_eq!(out.len(), n * c * oh * ow, "maxpool2d: out is not [n,c,oh,ow]");
    assert_eq!(argmax.len(), out.len(), "maxpool2d: argmax is not [n,c,oh,ow]");
    assert!(x.len() <= u32::MAX as usize, "maxpool2d: input too large for u32 indices");
    if out.is_empty() {
        return;
    }
    out.par_chunks_mut(oh * ow).zip(argmax.par_chunks_mut(oh * ow)).enumerate().for_each(|(plane, (o, am))| {
        let base = plane * h * w;
        let xp = &x[base..base + h * w];
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best = f32::NEG_INFINITY;
                let mut best_at = usize::MAX;
                for iy in window(oy, k, stride, pad, h) {
                    for ix in window(ox, k, stride, pad, w) {
                        let v = xp[iy * w + ix];
                        if best_at == usize::MAX || v > best || (v.is_nan() && !best.is_nan()) {
                            best = v;
                            best_at = iy * w + ix;
                        }
                    }
                }
                o[oy * ow + ox] = best;
                am[oy * ow + ox] = (base + best_at) as u32;
            }
        }
    });
}

/// dx (overwritten) = dout scattered to the positions recorded by [`maxpool2d_forward`].
/// Serial: overlapping windows may send several outputs to one input, and `argmax` alone
/// does not say where planes start.
pub fn maxpool2d_backward(argmax: &[u32], dout: &[f32], dx: &mut [f32]) {
    assert_eq!(argmax.len(), dout.len(), "maxpool2d_backward: argmax and dout differ in length");
    dx.fill(0.0);
    for (&i, &g) in argmax.iter().zip(dout) {
        dx[i as usize] += g;
    }
}

/// out `[n,c,oh,ow]` = window mean, padding counted as zeros in the divisor (PyTorch's
/// default `count_include_pad=True`), so the divisor is always k².
#[allow(clippy::too_many_arguments)]
pub fn avgpool2d_forward(
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    pad: usize,
    x: &[f32],
    out: &mut [f32],
) {
    let (oh, ow) = check(h, w, k, stride, pad);
    assert_eq!(x.len(), n * c * h * w, "avgpool2d: x is not [n,c,h,w]");
    assert_eq!(out.len(), n * c * oh * ow, "avgpool2d: out is not [n,c,oh,ow]");
    if out.is_empty() {
        return;
    }
    let inv = 1.0 / (k * k) as f32;
    out.par_chunks_mut(oh * ow).zip(x.par_chunks(h * w)).for_each(|(o, xp)| {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = 0.0f32;
                for iy in window(oy, k, stride, pad, h) {
                    for ix in window(ox, k, stride, pad, w) {
                        acc += xp[iy * w + ix];
                    }
                }
                o[oy * ow + ox] = acc * inv;
            }
        }
    });
}

/// dx (overwritten) of [`avgpool2d_forward`].
#[allow(clippy::too_many_arguments)]
pub fn avgpool2d_backward(
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    pad: usize,
    dout: &[f32],
    dx: &mut [f32],
) {
    let (oh, ow) = check(h, w, k, stride, pad);
    assert_eq!(dx.len(), n * c * h * w, "avgpool2d: dx is not [n,c,h,w]");
    assert_eq!(dout.len(), n * c * oh * ow, "avgpool2d: dout is not [n,c,oh,ow]");
    if dx.is_empty() {
        return;
    }
    let inv = 1.0 / (k * k) as f32;
    dx.par_chunks_mut(h * w).zip(dout.par_chunks(oh * ow)).for_each(|(dp, gp)| {
        dp.fill(0.0);
        for oy in 0..oh {
            for ox in 0..ow {
                let g = gp[oy * ow + ox] * inv;
                for iy in window(oy, k, stride, pad, h) {
                    for ix in window(ox, k, stride, pad, w) {
                        dp[iy * w + ix] += g;
                    }
                }
            }
        }
    });
}

/// `AdaptiveAvgPool2d(1)`: out `[n,c]` = mean of each `hw`-element plane of x `[n,c,h,w]`.
pub fn global_avgpool2d_forward(n: usize, c: usize, hw: usize, x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), n * c * hw, "global_avgpool2d: x is not [n,c,hw]");
    assert_eq!(out.len(), n * c, "global_avgpool2d: out is not [n,c]");
    if hw == 0 {
        out.fill(f32::NAN);
        return;
    }
    out.par_iter_mut().zip(x.par_chunks(hw)).for_each(|(o, xp)| *o = (sum_f64(xp) / hw as f64) as f32);
}

/// dx `[n,c,h,w]` (overwritten) of [`global_avgpool2d_forward`]: each plane gets dout/hw.
pub fn global_avgpool2d_backward(n: usize, c: usize, hw: usize, dout: &[f32], dx: &mut [f32]) {
    assert_eq!(dx.len(), n * c * hw, "global_avgpool2d: dx is not [n,c,hw]");
    assert_eq!(dout.len(), n * c, "global_avgpool2d: dout is not [n,c]");
    if hw == 0 {
        return;
    }
    let inv = 1.0 / hw as f32;
    dx.par_chunks_mut(hw).zip(dout.par_iter()).for_each(|(dp, &g)| dp.fill(g * inv));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::kernels::testutil::{assert_close, rand_vec};

    /// (n, c, h, w, k, stride, pad)
    const SHAPES: &[(usize, usize, usize, usize, usize, usize, usize)] = &[
        (1, 1, 4, 4, 2, 2, 0),
        (3, 2, 7, 5, 3, 2, 1),
        (1, 3, 6, 9, 3, 1, 1),
        (3, 1, 5, 6, 2, 1, 0),
        (2, 2, 8, 8, 3, 3, 0),
    ];

    /// Straight from the definition: windows over the zero-padded image, using signed
    /// coordinates so it shares nothing with `window`.
    fn naive_pool(s: (usize, usize, usize, usize, usize, usize, usize), x: &[f32], max: bool) -> Vec<f32> {
        let (n, c, h, w, k, st, p) = s;
        let (oh, ow) = (out_len(h, k, st, p), out_len(w, k, st, p));
        let mut out = vec![0.0; n * c * oh * ow];
        for pl in 0..n * c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut best = f32::NEG_INFINITY;
                    let mut sum = 0.0f64;
                    for dy in 0..k {
                        for dx in 0..k {
                            let iy = (oy * st + dy) as isize - p as isize;
                            let ix = (ox * st + dx) as isize - p as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                let v = x[pl * h * w + iy as usize * w + ix as usize];
                                best = best.max(v);
                                sum += v as f64;
                            }
                        }
                    }
                    out[pl * oh * ow + oy * ow + ox] = if max { best } else { (sum / (k * k) as f64) as f32 };
                }
            }
        }
        out
    }

    fn fd_check(s: (usize, usize, usize, usize, usize, usize, usize), x: &[f32], r: &[f32], dx: &[f32], max: bool) {
        let loss = |v: &[f32]| -> f64 { naive_pool(s, v, max).iter().zip(r).map(|(&o, &g)| o as f64 * g as f64).sum() };
        let eps = 1e-3;
        for j in 0..x.len() {
            let (mut plus, mut minus) = (x.to_vec(), x.to_vec());
            plus[j] += eps;
            minus[j] -= eps;
            let want = ((loss(&plus) - loss(&minus)) / (2.0 * eps as f64)) as f32;
            assert_close(&[dx[j]], &[want], 1e-2, &format!("pool dx[{j}] {s:?} max={max}"));
        }
    }

    #[test]
    fn maxpool_forward_and_backward() {
        for (i, &s) in SHAPES.iter().enumerate() {
            let (n, c, h, w, k, st, p) = s;
            // Distinct values 0.01 apart: the finite-difference step cannot flip an argmax.
            let len = n * c * h * w;
            let x: Vec<f32> = (0..len).map(|j| ((j * 7919 + i) % len) as f32 * 0.01 - 1.0).collect();
            let want = naive_pool(s, &x, true);
            let mut out = vec![0.0; want.len()];
            let mut am = vec![0u32; want.len()];
            maxpool2d_forward(n, c, h, w, k, st, p, &x, &mut out, &mut am);
            assert_close(&out, &want, 0.0, "maxpool forward");
            for (o, &a) in out.iter().zip(&am) {
                assert_eq!(*o, x[a as usize]);
            }
            let r = rand_vec(out.len(), 90 + i as u64);
            let mut dx = vec![f32::NAN; x.len()];
            maxpool2d_backward(&am, &r, &mut dx);
            fd_check(s, &x, &r, &dx, true);
        }
    }

    #[test]
    fn avgpool_forward_and_backward() {
        for (i, &s) in SHAPES.iter().enumerate() {
            let (n, c, h, w, k, st, p) = s;
            let x = rand_vec(n * c * h * w, 100 + i as u64);
            let want = naive_pool(s, &x, false);
            let mut out = vec![0.0; want.len()];
            avgpool2d_forward(n, c, h, w, k, st, p, &x, &mut out);
            assert_close(&out, &want, 1e-6, "avgpool forward");
            let r = rand_vec(out.len(), 110 + i as u64);
            let mut dx = vec![f32::NAN; x.len()];
            avgpool2d_backward(n, c, h, w, k, st, p, &r, &mut dx);
            fd_check(s, &x, &r, &dx, false);
        }
    }

    #[test]
    fn global_avgpool() {
        let (n, c, hw) = (3, 4, 13);
        let x = rand_vec(n * c * hw, 5);
        let mut out = vec![0.0; n * c];
        global_avgpool2d_forward(n, c, hw, &x, &mut out);
        let want: Vec<f32> = x.chunks(hw).map(|p| p.iter().sum::<f32>() / hw as f32).collect();
        assert_close(&out, &want, 1e-6, "global avgpool forward");
        let g = rand_vec(n * c, 6);
        let mut dx = vec![0.0; x.len()];
        global_avgpool2d_backward(n, c, hw, &g, &mut dx);
        let want: Vec<f32> = (0..dx.len()).map(|j| g[j / hw] / hw as f32).collect();
        assert_close(&dx, &want, 1e-6, "global avgpool backward");
    }
}
