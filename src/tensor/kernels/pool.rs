//! Pooling over NCHW planes. Planes are independent, so forward passes (and the average
//! backward) run one plane per rayon task.

use rayon::prelude::*;

use super::sum_f64;

/// Planes are grouped so that each rayon task reads at least this many inputs.
const TASK_MIN_ELEMS: usize = 1 << 14;

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
    // Several planes per task: one 14×14 plane is too little work to be worth a rayon split.
    let per_task = TASK_MIN_ELEMS.div_ceil(h * w);
    let fast = k == 2 && stride == 2 && pad == 0 && w.is_multiple_of(2);
    // Each output row's and column's window, the same in every plane.
    let windows = |len, size| (0..len).map(|o| window(o, k, stride, pad, size)).collect::<Vec<_>>();
    let (rows, cols) = if fast { (Vec::new(), Vec::new()) } else { (windows(oh, h), windows(ow, w)) };
    // ResNet's stem pool (3 wide, stride 2, pad 1): outputs 1 to `triples` read columns 2·ox−1, 2·ox, 2·ox+1, each
    // window whole inside the row and its three columns read as two pairs, which vectorises.
    let triples = if k == 3 && stride == 2 && pad == 1 { (w.saturating_sub(3) / 2).min(ow - 1) } else { 0 };
    let tasks = out.par_chunks_mut(per_task * oh * ow).zip(argmax.par_chunks_mut(per_task * oh * ow)).enumerate();
    tasks.for_each_init(
        || (Vec::new(), Vec::new()),
        |pairs, (task, (o, am))| {
            let planes = o.chunks_exact_mut(oh * ow).zip(am.chunks_exact_mut(oh * ow));
            for (i, (o, am)) in planes.enumerate() {
                let base = (task * per_task + i) * h * w;
                let xp = &x[base..base + h * w];
                if fast {
                    maxpool2x2_plane(xp, w, base as u32, pairs, o, am);
                    continue;
                }
                maxpool_plane(xp, w, [&rows, &cols], triples, base as u32, pairs, o, am);
            }
        },
    );
}

/// Any other window, in two passes as [`maxpool2x2_plane`]: the first max of each row's horizontal windows for
/// every input row, then the first max down each output's rows of those. Rows are met in order, each with its
/// own first max, so the window's first maximum in reading order wins, as [`beats`] has it. `windows` are each
/// output row's input rows and each output column's input columns; outputs 1 to `triples` are 3-wide windows at
/// stride 2 from column 1; `pairs` holds `h·ow` values and their indices.
#[allow(clippy::too_many_arguments)]
fn maxpool_plane(
    xp: &[f32],
    w: usize,
    [rows, cols]: [&[std::ops::Range<usize>]; 2],
    triples: usize,
    base: u32,
    pairs: &mut (Vec<f32>, Vec<u32>),
    o: &mut [f32],
    am: &mut [u32],
) {
    let ow = cols.len();
    let (hv, hi) = pairs;
    hv.resize(xp.len() / w * ow, 0.0);
    hi.resize(xp.len() / w * ow, 0);
    for (iy, (row, (v, i))) in xp.chunks_exact(w).zip(hv.chunks_exact_mut(ow).zip(hi.chunks_exact_mut(ow))).enumerate()
    {
        let row_base = base + (iy * w) as u32;
        if triples > 0 {
            let (v3, i3) = (&mut v[1..1 + triples], &mut i[1..1 + triples]);
            let outputs = v3.iter_mut().zip(i3.iter_mut()).enumerate();
            for ((ox, (v, i)), (ab, c)) in outputs.zip(row[1..].chunks_exact(2).zip(row[3..].chunks_exact(2))) {
                let first = row_base + 2 * ox as u32 + 1;
                let (mut best, mut at) = (ab[0], first);
                keep_first_max(&mut best, &mut at, ab[1], first + 1);
                keep_first_max(&mut best, &mut at, c[0], first + 2);
                (*v, *i) = (best, at);
            }
        }
        // Outputs 0 and past `triples`, and every output of other windows.
        for ox in (0..ow).filter(|&ox| ox == 0 || ox > triples) {
            let c = &cols[ox];
            let (mut best, mut at) = (row[c.start], c.start);
            for (ix, &val) in row.iter().enumerate().take(c.end).skip(c.start + 1) {
                if beats(val, best) {
                    (best, at) = (val, ix);
                }
            }
            v[ox] = best;
            i[ox] = row_base + at as u32;
        }
    }
    for ((o, am), rows) in o.chunks_exact_mut(ow).zip(am.chunks_exact_mut(ow)).zip(rows) {
        o.copy_from_slice(&hv[rows.start * ow..][..ow]);
        am.copy_from_slice(&hi[rows.start * ow..][..ow]);
        for iy in rows.start + 1..rows.end {
            pick_lower(&hv[iy * ow..][..ow], &hi[iy * ow..][..ow], o, am);
        }
    }
}

/// Whether `v`, met later in a window, replaces the running max `best`: a larger value does,
/// and NaN does unless NaN already won, so the first maximum wins and NaN propagates.
#[inline(always)]
fn beats(v: f32, best: f32) -> bool {
    (v > best) | (v.is_nan() & !best.is_nan())
}

/// The common 2×2, stride-2, unpadded case (even width), in two branch-free passes: the first
/// max of each horizontal pair over the whole plane at once (pairs are contiguous, so this
/// vectorises), then the first max of each vertical pair of those, row by row. Top precedes
/// bottom in the scan, so this keeps [`beats`]' order. `pairs` holds `h·ow` values and their
/// indices.
fn maxpool2x2_plane(xp: &[f32], w: usize, base: u32, pairs: &mut (Vec<f32>, Vec<u32>), o: &mut [f32], am: &mut [u32]) {
    let ow = w / 2;
    let (hv, hi) = pairs;
    hv.resize(xp.len() / 2, 0.0);
    hi.resize(xp.len() / 2, 0);
    for (j, ((v, i), ab)) in hv.iter_mut().zip(hi.iter_mut()).zip(xp.chunks_exact(2)).enumerate() {
        let take = beats(ab[1], ab[0]);
        *v = if take { ab[1] } else { ab[0] };
        *i = base + 2 * j as u32 + take as u32;
    }
    let rows = o.chunks_exact_mut(ow).zip(am.chunks_exact_mut(ow));
    for ((o, am), (v, i)) in rows.zip(hv.chunks_exact(2 * ow).zip(hi.chunks_exact(2 * ow))) {
        let (top, bottom) = v.split_at(ow);
        let (top_at, bottom_at) = i.split_at(ow);
        // Rows of 7 or 14 are too short for the loop vectoriser, so they go in fixed blocks
        // (the last one overlapping: an output depends only on its own inputs, so writing it
        // twice is harmless), copied through local arrays: only then does the SLP vectoriser,
        // sure that nothing aliases, turn each block into a few vector ops.
        const BLOCK: usize = 4;
        if ow < BLOCK {
            o.copy_from_slice(top);
            am.copy_from_slice(top_at);
            pick_lower(bottom, bottom_at, o, am);
            continue;
        }
        for s in (0..ow - BLOCK).step_by(BLOCK).chain([ow - BLOCK]) {
            let r = s..s + BLOCK;
            let block = |v: &[f32]| -> [f32; BLOCK] { v[r.clone()].try_into().expect("BLOCK long") };
            let block_at = |v: &[u32]| -> [u32; BLOCK] { v[r.clone()].try_into().expect("BLOCK long") };
            let (mut bo, mut bam) = (block(top), block_at(top_at));
            pick_lower(&block(bottom), &block_at(bottom_at), &mut bo, &mut bam);
            o[r.clone()].copy_from_slice(&bo);
            am[r].copy_from_slice(&bam);
        }
    }
}

/// Per element, the lower row's value and index where it [`beats`] the running max (the rows above it), which
/// it then replaces.
#[inline(always)]
fn pick_lower(lower: &[f32], lower_at: &[u32], o: &mut [f32], am: &mut [u32]) {
    for (((o, am), &b), &ba) in o.iter_mut().zip(am.iter_mut()).zip(lower).zip(lower_at) {
        keep_first_max(o, am, b, ba);
    }
}

/// The running max `best` (found at `at`) replaced by `v` (at `v_at`) where `v`, met later, [`beats`] it.
#[inline(always)]
fn keep_first_max(best: &mut f32, at: &mut u32, v: f32, v_at: u32) {
    let take = beats(v, *best);
    *best = if take { v } else { *best };
    // A mask, not `if`: LLVM turns an index select into a select of addresses, which
    // stays scalar.
    *at ^= (*at ^ v_at) & (take as u32).wrapping_neg();
}

/// dx (`planes` planes, `len` elements) = dout scattered to the positions recorded by [`maxpool2d_forward`].
/// Windows overlap only within a plane, so planes are scattered in parallel, each in its own order.
pub fn maxpool2d_backward(argmax: &[u32], dout: &[f32], planes: usize, len: usize) -> Vec<f32> {
    assert_eq!(argmax.len(), dout.len(), "maxpool2d_backward: argmax and dout differ in length");
    assert!(
        planes > 0 && len.is_multiple_of(planes) && dout.len().is_multiple_of(planes),
        "maxpool2d_backward: uneven planes"
    );
    let mut dx = super::zeros(len);
    let (plane, pooled) = (len / planes, dout.len() / planes);
    if plane == 0 || pooled == 0 {
        return dx;
    }
    let rows = argmax.par_chunks(pooled).zip(dout.par_chunks(pooled));
    dx.par_chunks_mut(plane).zip(rows).enumerate().with_min_len(16).for_each(|(p, (dx, (argmax, dout)))| {
        let start = p * plane;
        for (&i, &g) in argmax.iter().zip(dout) {
            dx[i as usize - start] += g;
        }
    });
    dx
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
        (1, 2, 9, 12, 3, 2, 1),
        (2, 1, 6, 13, 3, 2, 1),
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
            let dx = maxpool2d_backward(&am, &r, n * c, x.len());
            fd_check(s, &x, &r, &dx, true);
        }
    }

    /// Ties and NaN, on the 2×2 fast path (with an odd height, whose last row is dropped), on the 3-wide
    /// stride-2 path (even and odd widths) and on generic shapes (an odd width leaves the fast path): the chosen
    /// index must be the first NaN in the window if there is one, else the first maximum, as in PyTorch.
    #[test]
    fn maxpool_ties_and_nan() {
        let shapes = [
            (2, 3, 6, 8, 2, 2, 0),
            (1, 2, 7, 10, 2, 2, 0),
            (1, 2, 7, 9, 2, 2, 0),
            (2, 2, 7, 5, 3, 2, 1),
            (1, 2, 9, 12, 3, 2, 1),
            (2, 1, 6, 13, 3, 2, 1),
            (1, 2, 5, 6, 2, 1, 0),
        ];
        for (i, &(n, c, h, w, k, st, p)) in shapes.iter().enumerate() {
            let r = rand_vec(n * c * h * w, 120 + i as u64);
            // Few distinct values so windows hold ties; about one in eight is NaN.
            let x: Vec<f32> = r.iter().map(|&v| if v > 0.75 { f32::NAN } else { (v * 3.0).round() }).collect();
            let (oh, ow) = (out_len(h, k, st, p), out_len(w, k, st, p));
            let mut out = vec![0.0; n * c * oh * ow];
            let mut am = vec![0u32; out.len()];
            maxpool2d_forward(n, c, h, w, k, st, p, &x, &mut out, &mut am);
            for pl in 0..n * c {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut idx = Vec::new();
                        for dy in 0..k {
                            for dx in 0..k {
                                let iy = (oy * st + dy) as isize - p as isize;
                                let ix = (ox * st + dx) as isize - p as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                    idx.push(pl * h * w + iy as usize * w + ix as usize);
                                }
                            }
                        }
                        let top = idx.iter().map(|&j| x[j]).fold(f32::NEG_INFINITY, f32::max);
                        let want = idx.iter().find(|&&j| x[j].is_nan()).or_else(|| idx.iter().find(|&&j| x[j] == top));
                        let o = pl * oh * ow + oy * ow + ox;
                        assert_eq!(am[o] as usize, *want.unwrap(), "argmax {o} in {:?}", shapes[i]);
                        assert_eq!(out[o].to_bits(), x[am[o] as usize].to_bits());
                    }
                }
            }
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
