//! 3×3, stride-1, padding-1 convolution of small planes (at most 3×3: a ResNet's last stage on 32×32 to 96×96
//! images) as one GEMM per kernel tap and run of outputs, over only the pixels each tap reaches. On a 2×2 plane an
//! output's window holds 4 pixels of its 9: im2col multiplies all 36 (input, output) pixel pairs per channel pair,
//! Winograd's one 4×4 block 16 after transforming the filters and the data, this the 16 real pairs as they are.
//!
//! Activations are turned to `[c][h][w][n]`, images innermost, so the outputs a tap reaches in one row are one
//! block of columns, and so are the inputs they read:
//! `out[:, y, a..b, :] += W_tap [c_out, c_in] · x[:, y+ky−1, a+kx−1..b+kx−1, :]`, with `W_tap` read where it lies in
//! the weight (every ninth float). A tap that reaches whole rows takes them all in one GEMM. Output channels are cut
//! into blocks ([`block_rows`]), one task each; the input gradient is the same convolution of the output gradient with
//! each tap transposed and the kernel turned by 180°, and the weight gradient the same runs' products of the
//! output gradient and the input.

use rayon::prelude::*;

use super::conv::{relu_maxpool2, scratch, with_scratch, Conv2dShape, ConvOutput};
use super::matmul::sgemm_serial;

/// Planes up to this size on each side. From 4×4 on, Winograd's blocks multiply fewer pairs (on 4×4: 64 per channel
/// pair, against 100 real ones).
const MAX_SIDE: usize = 3;

/// Output channels per task, at most. Two tasks of 256 for a ResNet's 512 channels ran its 2×2 stage's convolution
/// faster than four of 128 or eight of 64 (every task's GEMMs read the whole input), and one GEMM threaded within
/// took twice as long (bench/README.md).
const BLOCK: usize = 256;

/// Rows per block of `c` channels: at most [`BLOCK`], and at least two blocks, so that both cores have one.
fn block_rows(c: usize) -> usize {
    c.div_ceil(c.div_ceil(BLOCK).max(2)).max(1)
}

/// Whether this module computes the convolution (forward and both gradients) rather than im2col or Winograd.
pub(crate) fn applies(s: &Conv2dShape) -> bool {
    s.is_same_3x3() && s.h <= MAX_SIDE && s.w <= MAX_SIDE
}

/// One GEMM: kernel tap `tap` (3·ky + kx) from `cols` columns of the input from column `from` to as many columns of
/// the output from column `to`, a column being one image's pixel (`pixel·n + image`).
struct Run {
    tap: usize,
    from: usize,
    to: usize,
    cols: usize,
}

/// The GEMMs of a convolution of `h`×`w` planes of `n` images, tap by tap, the centre first: it reaches every
/// output, so its GEMM overwrites them and the rest add.
fn runs(h: usize, w: usize, n: usize) -> Vec<Run> {
    // The outputs [lo, hi) along a side of `len` whose input, at offset k − 1, lies inside.
    let reach = |k: usize, len: usize| (1usize.saturating_sub(k), (len + 1 - k).min(len));
    let mut runs = Vec::new();
    for tap in [4, 0, 1, 2, 3, 5, 6, 7, 8] {
        let (ky, kx) = (tap / 3, tap % 3);
        let ((y0, y1), (x0, x1)) = (reach(ky, h), reach(kx, w));
        if y0 >= y1 || x0 >= x1 {
            continue;
        }
        let input = |y: usize| ((y + ky - 1) * w + x0 + kx - 1) * n;
        if x1 - x0 == w {
            runs.push(Run { tap, from: input(y0), to: y0 * w * n, cols: (y1 - y0) * w * n });
        } else {
            for y in y0..y1 {
                runs.push(Run { tap, from: input(y), to: (y * w + x0) * n, cols: (x1 - x0) * n });
            }
        }
    }
    runs
}

/// The taps of a weight `[c_out, c_in, 3, 3]` as `[rows, cols]` matrices read in place: each tap's `[c_out, c_in]`
/// for the forward pass, or, `flipped`, for the input gradient each tap's transpose `[c_in, c_out]` taken from the
/// tap opposite it.
#[derive(Clone, Copy)]
struct Taps<'a> {
    w: &'a [f32],
    rs: usize,
    cs: usize,
    flipped: bool,
}

impl<'a> Taps<'a> {
    fn forward(s: &Conv2dShape, w: &'a [f32]) -> Self {
        Taps { w, rs: s.c_in * 9, cs: 9, flipped: false }
    }

    fn flipped(s: &Conv2dShape, w: &'a [f32]) -> Self {
        Taps { w, rs: 9, cs: s.c_in * 9, flipped: true }
    }

    /// Tap `tap`'s matrix from row `row`.
    fn at(&self, tap: usize, row: usize) -> &'a [f32] {
        &self.w[if self.flipped { 8 - tap } else { tap } + row * self.rs..]
    }
}

/// `f(first row, block)` for each block of [`block_rows`] rows (of `len` floats) of `buf`, each block a task.
fn each_block(buf: &mut [f32], len: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    let rows = block_rows(buf.len() / len);
    buf.par_chunks_mut(rows * len).enumerate().for_each(|(b, block)| f(b * rows, block));
}

/// `xt [c][p][n]` from x `[n][c][p]`.
fn images_inner(x: &[f32], n: usize, xt: &mut [f32]) {
    let cp = xt.len() / n.max(1);
    for (img, xi) in x.chunks_exact(cp).enumerate() {
        for (j, &v) in xi.iter().enumerate() {
            xt[j * n + img] = v;
        }
    }
}

/// `yt [c_out][h·w][n]` = the convolution of `xt [c_in][h·w][n]` with `taps` (`[c_out, c_in]` each), in the GEMMs
/// `runs` (of [`runs`]).
fn convolve(s: &Conv2dShape, runs: &[Run], taps: Taps, xt: &[f32], yt: &mut [f32]) {
    let ld = s.h * s.w * s.n;
    each_block(yt, ld, |row, block| {
        for (i, r) in runs.iter().enumerate() {
            // As its transpose, columns × channels, so that both the input and the output are column-major.
            let (t, rs, cs) = (taps.at(r.tap, row), taps.rs as isize, taps.cs as isize);
            let beta = if i == 0 { 0.0 } else { 1.0 };
            let l = ld as isize;
            sgemm_serial(
                r.cols,
                s.c_in,
                block.len() / ld,
                1.0,
                &xt[r.from..],
                1,
                l,
                t,
                cs,
                rs,
                beta,
                &mut block[r.to..],
                1,
                l,
            );
        }
    });
}

/// `out` (as it asks) from `yt [c_out][p][n]` plus the bias.
fn write_out(s: &Conv2dShape, yt: &[f32], bias: Option<&[f32]>, out: ConvOutput) {
    let (p, n) = (s.h * s.w, s.n);
    let value = |img: usize, co: usize, px: usize| yt[(co * p + px) * n + img] + bias.map_or(0.0, |b| b[co]);
    let each_output = |o: &mut [f32], f: &dyn Fn(f32) -> f32| {
        for (img, oi) in o.chunks_exact_mut(s.c_out * p).enumerate() {
            for (co, plane) in oi.chunks_exact_mut(p).enumerate() {
                for (px, v) in plane.iter_mut().enumerate() {
                    *v = f(value(img, co, px));
                }
            }
        }
    };
    match out {
        ConvOutput::Plain(o) => each_output(o, &|v| v),
        ConvOutput::Relu(o) => each_output(o, &|v| v.max(0.0)),
        ConvOutput::ReluMaxPool2 { out, which } => {
            let pooled = (s.h / 2) * (s.w / 2);
            let mut plane = [0.0; MAX_SIDE * MAX_SIDE];
            for (j, (o, wh)) in
                out.chunks_exact_mut(pooled.max(1)).zip(which.chunks_exact_mut(pooled.max(1))).enumerate()
            {
                for (px, v) in plane[..p].iter_mut().enumerate() {
                    *v = value(j / s.c_out, j % s.c_out, px);
                }
                relu_maxpool2(&plane[..p], s.w, o, wh);
            }
        }
    }
}

/// `conv(x)` (+ bias, then as `out` asks) with the weight `w` `[c_out, c_in, 3, 3]`, overwriting `out`.
pub(crate) fn conv(s: &Conv2dShape, x: &[f32], w: &[f32], bias: Option<&[f32]>, out: ConvOutput) {
    assert!(applies(s), "tapwise: not a 3×3 stride-1 padding-1 convolution of planes up to {MAX_SIDE}×{MAX_SIDE}");
    let ld = s.h * s.w * s.n;
    if ld == 0 || s.c_out == 0 {
        return;
    }
    with_scratch(|[xt, yt, _]| {
        let xt = scratch(xt, s.c_in * ld);
        images_inner(x, s.n, xt);
        let yt = scratch(yt, s.c_out * ld);
        convolve(s, &runs(s.h, s.w, s.n), Taps::forward(s, w), xt, yt);
        write_out(s, yt, bias, out);
    });
}

/// dw `[c_out, c_in, 3, 3]` and, if given, dx `[n, c_in, h, w]`, overwritten, from the output gradient `dout`.
pub(crate) fn backward(s: &Conv2dShape, x: &[f32], w: &[f32], dout: &[f32], dx: Option<&mut [f32]>, dw: &mut [f32]) {
    assert!(applies(s), "tapwise: not a 3×3 stride-1 padding-1 convolution of planes up to {MAX_SIDE}×{MAX_SIDE}");
    let ld = s.h * s.w * s.n;
    if ld == 0 || s.c_in == 0 {
        dw.fill(0.0);
        return;
    }
    // The input gradient's GEMMs and the weight gradient's are the same runs: the planes are the same.
    let runs = runs(s.h, s.w, s.n);
    with_scratch(|[xt, gt, work]| {
        let gt = scratch(gt, s.c_out * ld);
        images_inner(dout, s.n, gt);
        if let Some(dx) = dx {
            let t = Conv2dShape { c_in: s.c_out, c_out: s.c_in, ..*s };
            let dxt = scratch(work, s.c_in * ld);
            convolve(&t, &runs, Taps::flipped(s, w), gt, dxt);
            write_out(&t, dxt, None, ConvOutput::Plain(dx));
        }
        let xt = scratch(xt, s.c_in * ld);
        images_inner(x, s.n, xt);
        // Each block's nine tap sums `[tap][rows][c_in]`, then interleaved into its rows of dw.
        let sums = scratch(work, 9 * s.c_out * s.c_in);
        let (k, l) = (9 * s.c_in, ld as isize);
        let block = block_rows(s.c_out);
        let blocks = sums.par_chunks_mut(block * k).zip(dw.par_chunks_mut(block * k)).enumerate();
        blocks.for_each(|(b, (sums, dw))| {
            let rows = dw.len() / k;
            for tap in 0..9 {
                let tap_sum = &mut sums[tap * rows * s.c_in..][..rows * s.c_in];
                let mut beta = 0.0;
                for r in runs.iter().filter(|r| r.tap == tap) {
                    let g = &gt[b * block * ld + r.to..];
                    let ci = s.c_in as isize;
                    sgemm_serial(rows, r.cols, s.c_in, 1.0, g, l, 1, &xt[r.from..], 1, l, beta, tap_sum, ci, 1);
                    beta = 1.0;
                }
                if beta == 0.0 {
                    tap_sum.fill(0.0);
                }
            }
            for (o, row) in dw.chunks_exact_mut(k).enumerate() {
                for (i, kernel) in row.chunks_exact_mut(9).enumerate() {
                    for (tap, v) in kernel.iter_mut().enumerate() {
                        *v = sums[(tap * rows + o) * s.c_in + i];
                    }
                }
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::kernels::testutil::{
        affordable, assert_close, check_forward, conv_direct, conv_weight_grad_direct, rand_vec,
    };

    fn sh(n: usize, c_in: usize, c_out: usize, h: usize, w: usize) -> Conv2dShape {
        Conv2dShape { n, c_in, h, w, c_out, kh: 3, kw: 3, stride: 1, pad: 1 }
    }

    /// Every plane from 1×1 to 3×3; one output channel (one block), two blocks, a last block short; one image and many.
    fn shapes() -> Vec<Conv2dShape> {
        let planes = [(1, 1), (1, 2), (2, 1), (2, 2), (1, 3), (3, 2), (3, 3)];
        let mut shapes: Vec<Conv2dShape> = planes.iter().map(|&(h, w)| sh(3, 5, 4, h, w)).collect();
        shapes.extend([
            sh(1, 7, 3, 2, 2),
            sh(6, 70, 150, 2, 2),
            sh(4, 130, 66, 3, 3),
            sh(2, 3, 129, 1, 1),
            sh(5, 4, 1, 2, 3),
        ]);
        shapes.into_iter().filter(|s| affordable(s.n * s.c_out * s.h * s.w * s.c_in * 9)).collect()
    }

    #[test]
    fn forward_matches_the_direct_sum() {
        for (k, s) in shapes().iter().enumerate() {
            check_forward(s, k as u64, "tapwise", |x, w, b, out| conv(s, x, w, b, out));
        }
    }

    /// dw against its definition in f64; dx as the forward pass's adjoint, ⟨conv(x), g⟩ = ⟨x, dx(g)⟩.
    #[test]
    fn gradients_match_the_direct_sum() {
        for (k, s) in shapes().iter().enumerate() {
            let x = rand_vec(s.n * s.c_in * s.h * s.w, 300 + k as u64);
            let w = rand_vec(s.c_out * s.c_in * 9, 400 + k as u64);
            let g = rand_vec(s.n * s.c_out * s.h * s.w, 500 + k as u64);
            let want: Vec<f32> = conv_weight_grad_direct(s, &x, &g).iter().map(|&v| v as f32).collect();
            let (mut dx, mut dw) = (vec![f32::NAN; x.len()], vec![f32::NAN; w.len()]);
            backward(s, &x, &w, &g, Some(&mut dx), &mut dw);
            assert_close(&dw, &want, 1e-4, &format!("tapwise dw {s:?}"));
            let mut dw_alone = vec![f32::NAN; w.len()];
            backward(s, &x, &w, &g, None, &mut dw_alone);
            assert_eq!(dw_alone, dw, "dw without dx {s:?}");
            let y = conv_direct(s, &x, &w, None);
            let lhs: f64 = y.iter().zip(&g).map(|(&y, &g)| y * g as f64).sum();
            let rhs: f64 = x.iter().zip(&dx).map(|(&x, &d)| x as f64 * d as f64).sum();
            assert!((lhs - rhs).abs() <= 1e-4 * lhs.abs().max(1.0), "tapwise dx {s:?}: {lhs} vs {rhs}");
        }
    }
}
