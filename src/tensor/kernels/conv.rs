//! 2-D convolution, NCHW, as im2col + GEMM over groups of images (their columns side by
//! side, so narrow outputs still make wide GEMMs), groups spread over rayon tasks.
//! A lone image of a 1×1, stride-1, unpadded convolution skips im2col: it already is the column
//! matrix. A 3×3, stride-1, padding-1 convolution goes to one GEMM per kernel tap on planes up to 3×3 (tapwise.rs),
//! and to Winograd's transforms on larger ones with enough channels (winograd.rs).

use rayon::prelude::*;
use std::cell::RefCell;

use super::matmul::{sgemm, sgemm_serial};
use super::{add_assign, deinterleave, sum_f64};
use super::{tapwise, winograd};

/// The batch is cut into at most this many chunks for the weight gradient: enough to keep
/// the cores busy, few enough that the per-chunk partial gradients stay cheap to reduce.
/// A constant (not the thread count) so the reduction order never changes.
const DW_CHUNKS: usize = 16;

/// Target GEMM width (columns, i.e. output positions of all images in a group).
const GROUP_COLS: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dShape {
    pub n: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Conv2dShape {
    pub fn out_h(&self) -> usize {
        (self.h + 2 * self.pad - self.kh) / self.stride + 1
    }

    pub fn out_w(&self) -> usize {
        (self.w + 2 * self.pad - self.kw) / self.stride + 1
    }

    /// Rows of the column matrix: one per (input channel, kernel offset).
    fn k_dim(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    fn positions(&self) -> usize {
        self.out_h() * self.out_w()
    }

    fn in_image(&self) -> usize {
        self.c_in * self.h * self.w
    }

    fn out_image(&self) -> usize {
        self.c_out * self.positions()
    }

    /// Outputs per plane of the fused ReLU + 2×2 max-pool.
    fn pooled_positions(&self) -> usize {
        (self.out_h() / 2) * (self.out_w() / 2)
    }

    /// Outputs per image of the fused ReLU + 2×2 max-pool.
    pub fn pooled_image(&self) -> usize {
        self.c_out * self.pooled_positions()
    }

    /// Images whose columns share one GEMM: a 14×14 output alone makes GEMMs too narrow to
    /// run at full speed, while a large one gains nothing from the extra copies.
    fn group(&self) -> usize {
        (GROUP_COLS / self.positions().max(1)).max(1)
    }

    /// The batch cut into parts of at least `min_imgs` images, as evenly as that allows: 16 images in groups of 5
    /// would leave a last group of 1, and one thread with 10 images' work while the other has 6.
    fn even_parts(&self, min_imgs: usize) -> usize {
        self.n.div_ceil(self.n.div_ceil(min_imgs.max(1)).max(1))
    }

    /// A 3×3 kernel, stride 1, padding 1: the output plane is the input's.
    pub(super) fn is_same_3x3(&self) -> bool {
        self.kh == 3 && self.kw == 3 && self.stride == 1 && self.pad == 1
    }

    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad == 0
    }

    fn check(&self, x: &[f32], w: &[f32]) {
        assert!(self.stride > 0, "conv2d: stride must be positive");
        assert!(
            self.kh >= 1 && self.kw >= 1 && self.h + 2 * self.pad >= self.kh && self.w + 2 * self.pad >= self.kw,
            "conv2d: kernel larger than padded input"
        );
        assert_eq!(x.len(), self.n * self.in_image(), "conv2d: x is not [n,c_in,h,w]");
        assert_eq!(w.len(), self.c_out * self.k_dim(), "conv2d: w is not [c_out,c_in,kh,kw]");
    }
}

/// Where the forward pass puts its result: the convolution itself, or `max_pool2d(relu(conv), 2)`
/// fused, so the full-size convolution output lives only in a group's cache-sized tile and never
/// makes the round trips to memory that three separate ops cost (the largest of them four times
/// the size of what is kept).
pub enum ConvOutput<'a> {
    /// `[n, c_out, out_h, out_w]`.
    Plain(&'a mut [f32]),
    /// `relu(conv)`, `[n, c_out, out_h, out_w]`: the ReLU applied while the output is still in cache.
    Relu(&'a mut [f32]),
    /// `out [n, c_out, out_h/2, out_w/2]` and, per output, which entry of its 2×2 window won
    /// (`2·dy + dx`; the first maximum, as `max_pool2d` picks it).
    ReluMaxPool2 { out: &'a mut [f32], which: &'a mut [u8] },
}

/// The gradient the backward pass receives, in the form matching [`ConvOutput`].
pub enum ConvGrad<'a> {
    /// dL/dout `[n, c_out, out_h, out_w]`.
    Plain(&'a [f32]),
    /// dL/dout of the pooled output, with that output and its `which`: the convolution's gradient
    /// is `g` at the winning entry of each window whose output is positive (ReLU passed it), 0
    /// elsewhere.
    ReluMaxPool2 { g: &'a [f32], out: &'a [f32], which: &'a [u8] },
}

impl<'a> ConvOutput<'a> {
    fn len_per_image(&self, s: &Conv2dShape) -> usize {
        match self {
            ConvOutput::Plain(_) | ConvOutput::Relu(_) => s.out_image(),
            ConvOutput::ReluMaxPool2 { .. } => s.pooled_image(),
        }
    }

    /// One output per group of `g` images.
    fn split(self, per_group: usize) -> Vec<ConvOutput<'a>> {
        match self {
            ConvOutput::Plain(o) => o.chunks_mut(per_group.max(1)).map(ConvOutput::Plain).collect(),
            ConvOutput::Relu(o) => o.chunks_mut(per_group.max(1)).map(ConvOutput::Relu).collect(),
            ConvOutput::ReluMaxPool2 { out, which } => out
                .chunks_mut(per_group.max(1))
                .zip(which.chunks_mut(per_group.max(1)))
                .map(|(out, which)| ConvOutput::ReluMaxPool2 { out, which })
                .collect(),
        }
    }
}

/// out = conv(x `[n,c_in,h,w]`, w `[c_out,c_in,kh,kw]`) + bias, overwritten, either as it is, through a ReLU,
/// or through ReLU and a 2×2 max-pool (see [`ConvOutput`]).
pub fn conv2d_forward(s: &Conv2dShape, x: &[f32], w: &[f32], bias: Option<&[f32]>, out: ConvOutput) {
    s.check(x, w);
    let per_image = out.len_per_image(s);
    match &out {
        ConvOutput::Plain(o) | ConvOutput::Relu(o) => {
            assert_eq!(o.len(), s.n * per_image, "conv2d: out is not [n,c_out,oh,ow]")
        }
        ConvOutput::ReluMaxPool2 { out, which } => {
            assert_eq!(out.len(), s.n * per_image, "conv2d: pooled out is not [n,c_out,oh/2,ow/2]");
            assert_eq!(which.len(), out.len(), "conv2d: which is not [n,c_out,oh/2,ow/2]");
        }
    }
    if let Some(b) = bias {
        assert_eq!(b.len(), s.c_out, "conv2d: bias is not [c_out]");
    }
    if s.n == 0 || s.out_image() == 0 {
        return;
    }
    if tapwise::applies(s) {
        return tapwise::conv(s, x, w, bias, out);
    }
    if winograd::applies(s) {
        return winograd::conv(s, x, w, bias, out);
    }
    let (k, p, g) = (s.k_dim(), s.positions(), s.even_parts(s.group()));
    // A single group cannot be split over tasks, so let the GEMM use the threads instead.
    let gemm = if s.n <= g { sgemm } else { sgemm_serial };
    out.split(g * per_image).into_par_iter().zip(x.par_chunks(g * s.in_image())).for_each(|(o, xg)| {
        with_scratch(|[cols, prods, _]| {
            let imgs = xg.len() / s.in_image();
            let cols = gather_cols(s, xg, cols, s.n <= g);
            // One image writes a plain output in place (the ReLU, if any, follows there); otherwise the
            // [c_out, imgs·p] product goes to a tile, split back into images or pooled from there.
            let (dst, o, relu_in_place): (&mut [f32], _, _) = match o {
                ConvOutput::Plain(o) if imgs == 1 => (o, None, false),
                ConvOutput::Relu(o) if imgs == 1 => (o, None, true),
                o => (scratch(prods, s.c_out * imgs * p), Some(o), false),
            };
            let beta = match bias {
                Some(b) => {
                    for (row, &bv) in dst.chunks_exact_mut(imgs * p).zip(b) {
                        row.fill(bv);
                    }
                    1.0
                }
                None => 0.0,
            };
            let ld = imgs * p;
            gemm(s.c_out, k, ld, 1.0, w, k as isize, 1, cols, ld as isize, 1, beta, dst, ld as isize, 1);
            match o {
                None if relu_in_place => dst.iter_mut().for_each(|v| *v = v.max(0.0)),
                None => {}
                Some(ConvOutput::Plain(o)) => unfold(s, dst, o, |v| v),
                Some(ConvOutput::Relu(o)) => unfold(s, dst, o, |v| v.max(0.0)),
                Some(ConvOutput::ReluMaxPool2 { out, which }) => {
                    let pp = s.pooled_positions();
                    let planes = out.chunks_exact_mut(pp).zip(which.chunks_exact_mut(pp)).enumerate();
                    for (plane, (o, wh)) in planes {
                        let (img, co) = (plane / s.c_out, plane % s.c_out);
                        relu_maxpool2(&dst[co * ld + img * p..][..p], s.out_w(), o, wh);
                    }
                }
            }
        })
    });
}

thread_local! {
    /// Each thread's column matrix, product tile and gradient buffers, kept from one call to the next: fresh ones
    /// were allocated (megabytes, so mapped and page-faulted in anew) and zero-filled for every group of images.
    static SCRATCH: RefCell<[Vec<f32>; 3]> = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

/// `f` with this thread's scratch buffers, or fresh ones if they are in use further up this thread's stack (a
/// rayon thread that waits inside a task may run another task meanwhile).
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut [Vec<f32>; 3]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut bufs) => f(&mut bufs),
        Err(_) => f(&mut [Vec::new(), Vec::new(), Vec::new()]),
    })
}

/// The images of a group's product tile `[c_out, imgs·p]` written to their own `[c_out, p]` outputs through `f`.
fn unfold(s: &Conv2dShape, tile: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32) {
    let (p, ld) = (s.positions(), out.len() / s.c_out);
    for (img, oi) in out.chunks_exact_mut(s.out_image()).enumerate() {
        for (row, src) in oi.chunks_exact_mut(p).zip(tile.chunks_exact(ld)) {
            row.iter_mut().zip(&src[img * p..(img + 1) * p]).for_each(|(r, &v)| *r = f(v));
        }
    }
}

/// `max_pool2d(relu(plane), 2)` of one `[oh, ow]` plane (an odd last row or column is dropped, as
/// PyTorch's floor mode does), recording which entry of each window won.
pub(super) fn relu_maxpool2(plane: &[f32], ow: usize, out: &mut [f32], which: &mut [u8]) {
    let pw = ow / 2;
    for (py, (o, wh)) in out.chunks_exact_mut(pw.max(1)).zip(which.chunks_exact_mut(pw.max(1))).enumerate() {
        let (top, bottom) = plane[2 * py * ow..].split_at(ow);
        for (px, (o, wh)) in o.iter_mut().zip(wh.iter_mut()).enumerate() {
            let window = [top[2 * px], top[2 * px + 1], bottom[2 * px], bottom[2 * px + 1]];
            let (mut best, mut at) = (window[0].max(0.0), 0);
            for (i, &v) in window.iter().enumerate().skip(1) {
                let v = v.max(0.0);
                if v > best {
                    (best, at) = (v, i);
                }
            }
            *o = best;
            *wh = at as u8;
        }
    }
}

/// The convolution's gradient tile `[c_out, imgs·p]` (rows `imgs·p` apart, images side by side)
/// for images `start..start + imgs`, from the pooled gradient: the adjoint of [`relu_maxpool2`].
fn unpool_grad(s: &Conv2dShape, g: &[f32], out: &[f32], which: &[u8], start: usize, imgs: usize, tile: &mut [f32]) {
    let (p, ow, ld) = (s.positions(), s.out_w(), imgs * s.positions());
    let pw = ow / 2;
    let pp = s.pooled_positions();
    tile.fill(0.0);
    for img in 0..imgs {
        for co in 0..s.c_out {
            let at = ((start + img) * s.c_out + co) * pp;
            let plane = &mut tile[co * ld + img * p..][..p];
            for (i, ((&g, &o), &wh)) in
                g[at..at + pp].iter().zip(&out[at..at + pp]).zip(&which[at..at + pp]).enumerate()
            {
                if o > 0.0 {
                    let (py, px, wh) = (i / pw, i % pw, wh as usize);
                    plane[(2 * py + wh / 2) * ow + 2 * px + wh % 2] = g;
                }
            }
        }
    }
}

/// Gradients of [`conv2d_forward`]: `dw` (and `db`, `dx` when given) are overwritten, not
/// accumulated. dW = Σ_groups dout·colsᵀ, dcols = Wᵀ·dout scattered back by col2im.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward(
    s: &Conv2dShape,
    x: &[f32],
    w: &[f32],
    grad: ConvGrad,
    dx: Option<&mut [f32]>,
    dw: &mut [f32],
    db: Option<&mut [f32]>,
) {
    s.check(x, w);
    match grad {
        ConvGrad::Plain(dout) => assert_eq!(dout.len(), s.n * s.out_image(), "conv2d: dout is not [n,c_out,oh,ow]"),
        ConvGrad::ReluMaxPool2 { g, out, which } => {
            assert!(
                g.len() == s.n * s.pooled_image() && out.len() == g.len() && which.len() == g.len(),
                "conv2d: pooled gradient, output or which is not [n,c_out,oh/2,ow/2]"
            );
        }
    }
    assert_eq!(dw.len(), w.len(), "conv2d: dw is not [c_out,c_in,kh,kw]");
    if let Some(db) = &db {
        assert_eq!(db.len(), s.c_out, "conv2d: db is not [c_out]");
    }
    let (k, p) = (s.k_dim(), s.positions());
    // A small plane's gradients come from the same taps as its forward pass (tapwise.rs); a Winograd-shaped
    // convolution's input gradient is another such convolution, and its weight gradient comes from the same
    // transforms where that pays (see winograd.rs). All from the whole unpooled dout.
    let unpooled;
    let (grad, dx) = if (tapwise::applies(s) || winograd::applies(s)) && s.n > 0 {
        let dout = match grad {
            ConvGrad::Plain(dout) => dout,
            ConvGrad::ReluMaxPool2 { g, out, which } => {
                let mut d = vec![0.0; s.n * s.out_image()];
                d.par_chunks_mut(s.out_image())
                    .enumerate()
                    .for_each(|(img, d)| unpool_grad(s, g, out, which, img, 1, d));
                unpooled = d;
                &unpooled
            }
        };
        if let Some(dx) = &dx {
            assert_eq!(dx.len(), x.len(), "conv2d: dx is not [n,c_in,h,w]");
        }
        if tapwise::applies(s) {
            tapwise::backward(s, x, w, dout, dx, dw);
            return bias_grad(s, dout, db);
        }
        if let Some(dx) = dx {
            winograd::input_grad(s, dout, w, dx);
        }
        if winograd::weight_grad_pays(s) {
            winograd::weight_grad(s, x, dout, dw);
            return bias_grad(s, dout, db);
        }
        (ConvGrad::Plain(dout), None)
    } else {
        (grad, dx)
    };
    if s.n == 0 {
        dw.fill(0.0);
        if let Some(db) = db {
            db.fill(0.0);
        }
        return;
    }
    // Chunks at least a forward group wide: a chunk of a few small images would make dW and dcols GEMMs only a
    // few columns deep (4 images of ResNet's 2×2 last stage: 16), far below the GEMM's speed.
    let chunk_imgs = s.even_parts(s.n.div_ceil(DW_CHUNKS).max(s.group()));
    let n_chunks = s.n.div_ceil(chunk_imgs);
    let dx_chunks: Vec<Option<&mut [f32]>> = match dx {
        Some(dx) => {
            assert_eq!(dx.len(), x.len(), "conv2d: dx is not [n,c_in,h,w]");
            dx.chunks_mut(chunk_imgs * s.in_image()).map(Some).collect()
        }
        None => (0..n_chunks).map(|_| None).collect(),
    };
    let gemm = if n_chunks == 1 { sgemm } else { sgemm_serial };
    let group = s.group().min(chunk_imgs);
    // Per chunk: its share of dW, and of db in f64.
    let partials: Vec<(Vec<f32>, Vec<f64>)> = dx_chunks
        .into_par_iter()
        .enumerate()
        .map(|(chunk, mut dx_chunk)| {
            with_scratch(|[cols, douts, dcols]| {
                let mut dw_part = vec![0.0f32; dw.len()];
                let mut db_part = vec![0.0f64; s.c_out];
                let first = chunk * chunk_imgs;
                let last = (first + chunk_imgs).min(s.n);
                for start in (first..last).step_by(group) {
                    let imgs = group.min(last - start);
                    let ld = imgs * p;
                    let xg = &x[start * s.in_image()..(start + imgs) * s.in_image()];
                    let cols = gather_cols(s, xg, cols, n_chunks == 1);
                    // dout of the group as one [c_out, imgs·p] matrix, images side by side as in cols.
                    let gs: &[f32] = match grad {
                        ConvGrad::Plain(dout) if imgs == 1 => &dout[start * s.out_image()..][..s.out_image()],
                        ConvGrad::Plain(dout) => {
                            let m = scratch(douts, s.c_out * ld);
                            let gi = dout[start * s.out_image()..(start + imgs) * s.out_image()].chunks_exact(p);
                            for (i, src) in gi.enumerate() {
                                let (img, co) = (i / s.c_out, i % s.c_out);
                                m[co * ld + img * p..][..p].copy_from_slice(src);
                            }
                            m
                        }
                        ConvGrad::ReluMaxPool2 { g, out, which } => {
                            let m = scratch(douts, s.c_out * ld);
                            unpool_grad(s, g, out, which, start, imgs, m);
                            m
                        }
                    };
                    for (d, row) in db_part.iter_mut().zip(gs.chunks_exact(ld)) {
                        *d += sum_f64(row);
                    }
                    let beta = if start == first { 0.0 } else { 1.0 };
                    gemm(
                        s.c_out,
                        ld,
                        k,
                        1.0,
                        gs,
                        ld as isize,
                        1,
                        cols,
                        1,
                        ld as isize,
                        beta,
                        &mut dw_part,
                        k as isize,
                        1,
                    );
                    let Some(dx_chunk) = dx_chunk.as_deref_mut() else { continue };
                    let local = start - first;
                    let dxg = &mut dx_chunk[local * s.in_image()..(local + imgs) * s.in_image()];
                    if s.pointwise() && imgs == 1 {
                        gemm(k, s.c_out, p, 1.0, w, 1, k as isize, gs, p as isize, 1, 0.0, dxg, p as isize, 1);
                        continue;
                    }
                    let dcols = scratch(dcols, k * ld);
                    gemm(k, s.c_out, ld, 1.0, w, 1, k as isize, gs, ld as isize, 1, 0.0, dcols, ld as isize, 1);
                    col2im(s, dcols, dxg, n_chunks == 1);
                }
                (dw_part, db_part)
            })
        })
        .collect();
    let ((head_w, head_b), rest) = partials.split_first().expect("at least one chunk");
    dw.copy_from_slice(head_w);
    let mut db_total = head_b.clone();
    for (part_w, part_b) in rest {
        add_assign(dw, part_w);
        for (d, &v) in db_total.iter_mut().zip(part_b) {
            *d += v;
        }
    }
    if let Some(db) = db {
        for (d, &v) in db.iter_mut().zip(&db_total) {
            *d = v as f32;
        }
    }
}

/// db `[c_out]` (if asked for) of dout `[n, c_out, p]`: each channel's sum over images and positions.
fn bias_grad(s: &Conv2dShape, dout: &[f32], db: Option<&mut [f32]>) {
    if let Some(db) = db {
        let planes = dout.par_chunks(s.positions()).map(sum_f64).collect::<Vec<f64>>();
        for (co, d) in db.iter_mut().enumerate() {
            *d = planes.iter().skip(co).step_by(s.c_out).sum::<f64>() as f32;
        }
    }
}

/// `buf` grown to `len` and borrowed: reused across a task's groups, and every caller
/// overwrites what it reads, so stale contents never matter.
pub(super) fn scratch(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// The column matrix `[k, imgs·p]` of the images in `xg`, side by side. A single pointwise
/// image already is its column matrix.
///
/// When the group is the whole batch (`alone`: a ResNet's late, small stages), each input channel's `kh·kw`
/// rows, one block of the matrix, are filled by their own task; otherwise one thread would gather them while the
/// other waits for the GEMM. Groups that are tasks already are gathered by their own thread.
fn gather_cols<'a>(s: &Conv2dShape, xg: &'a [f32], buf: &'a mut Vec<f32>, alone: bool) -> &'a [f32] {
    let imgs = xg.len() / s.in_image();
    if s.pointwise() && imgs == 1 {
        return xg;
    }
    let (p, ld, hw, taps) = (s.positions(), imgs * s.positions(), s.h * s.w, Taps::new(s));
    let cols = scratch(buf, s.k_dim() * ld);
    cols.par_chunks_mut(s.kh * s.kw * ld).with_min_len(channels_per_task(s, alone)).enumerate().for_each_init(
        Vec::new,
        |phases, (c, rows)| {
            for (img, xi) in xg.chunks_exact(s.in_image()).enumerate() {
                im2col_plane(&taps, &xi[c * hw..][..hw], &mut rows[img * p..], ld, phases);
            }
        },
    );
    cols
}

/// Input channels per task of [`gather_cols`] and [`col2im`]: at most eight tasks, each of at least two channels,
/// so small layers are not cut finer than the threads can use; all of them in one when the caller is one of
/// several tasks already.
fn channels_per_task(s: &Conv2dShape, alone: bool) -> usize {
    if alone {
        s.c_in.div_ceil(8).max(2)
    } else {
        usize::MAX
    }
}

/// Where each kernel offset reads an input plane, worked out once per call rather than once per plane and offset:
/// for small planes (ResNet-18's 2×2 and 4×4 last stages) those integer divisions cost more than the copies.
struct Taps {
    s: Conv2dShape,
    oh: usize,
    ow: usize,
    /// Each column row reads one contiguous run (plus padding) of a plane as wide as the output, so im2col/col2im
    /// move whole runs instead of row pieces: at stride 1 with an output as wide as the input, of the input plane
    /// itself (a step of one row in a column row is a step of one row in the image); at stride 2 with an output
    /// half the input's height and width and a kernel wider than 1 (`phases`), of one of its four phases, its even
    /// or odd rows and columns (read row by row, ResNet's stride-2 convolutions on small planes spent most of their
    /// im2col on rows a few entries long).
    contiguous: bool,
    phases: bool,
    /// One per kernel offset, row-major over (ky, kx).
    taps: Vec<Tap>,
}

struct Tap {
    ky: usize,
    kx: usize,
    /// The output columns and rows whose input column or row lies inside the image (the rest read padding).
    cols: std::ops::Range<usize>,
    rows: std::ops::Range<usize>,
    /// For a contiguous shape: the run the valid rows read as (start in the column row, start in the plane or
    /// phase, length), `None` when the tap reads only padding, and the phase (`2·(row parity) + column parity`,
    /// 0 at stride 1).
    run: Option<(usize, usize, usize)>,
    phase: usize,
}

impl Taps {
    fn new(s: &Conv2dShape) -> Taps {
        let (oh, ow) = (s.out_h(), s.out_w());
        // A 1×1 kernel reads one phase of four: splitting all four would cost more than reading its rows.
        let phases = s.stride == 2 && s.h == 2 * oh && s.w == 2 * ow && s.kh.min(s.kw) > 1;
        let contiguous = (s.stride == 1 && ow == s.w) || phases;
        // The outputs whose input lies inside a side of `size` at kernel offset `k`.
        let valid = |k: usize, size: usize, out: usize| {
            let lo = if k >= s.pad { 0 } else { (s.pad - k).div_ceil(s.stride) };
            let hi = if size + s.pad > k { (size + s.pad - k).div_ceil(s.stride).min(out) } else { 0 };
            lo.min(hi)..hi
        };
        // Where output 0 reads along a side at kernel offset `k`, in steps of the plane read (which may be before
        // its start), and for phases that offset's parity.
        let shift = |k: usize| {
            let d = k as isize - s.pad as isize;
            if phases {
                (d.div_euclid(2), d.rem_euclid(2) as usize)
            } else {
                (d, 0)
            }
        };
        let tap = |ky: usize, kx: usize| {
            let (cols, rows) = (valid(kx, s.w, ow), valid(ky, s.h, oh));
            let ((sy, py), (sx, px)) = (shift(ky), shift(kx));
            let run = (contiguous && !rows.is_empty() && !cols.is_empty()).then(|| {
                let at = rows.start * ow + cols.start;
                // Inside the plane read: the valid outputs read rows and columns from 0 there.
                let from = (rows.start as isize + sy) * ow as isize + cols.start as isize + sx;
                (at, from as usize, (rows.end - 1) * ow + cols.end - at)
            });
            Tap { ky, kx, cols, rows, run, phase: 2 * py + px }
        };
        let taps = (0..s.kh).flat_map(|ky| (0..s.kw).map(move |kx| (ky, kx))).map(|(ky, kx)| tap(ky, kx)).collect();
        Taps { s: *s, oh, ow, contiguous, phases, taps }
    }

    /// Where row `y` of the plane goes among its phases (`[4][oh][ow]`): its even columns from the first index,
    /// its odd ones from the second.
    fn phase_rows(&self, y: usize) -> (usize, usize) {
        let even = 2 * (y % 2) * self.oh * self.ow + (y / 2) * self.ow;
        (even, even + self.oh * self.ow)
    }

    /// The plane the taps read: the input plane itself, or for a phased shape its four phases split into `buf`.
    fn source<'a>(&self, plane: &'a [f32], buf: &'a mut Vec<f32>) -> &'a [f32] {
        if !self.phases {
            return plane;
        }
        let phases = scratch(buf, 4 * self.oh * self.ow);
        for (y, row) in plane.chunks_exact(self.s.w).enumerate() {
            let (even, odd) = self.phase_rows(y);
            let (left, right) = phases.split_at_mut(odd);
            deinterleave(row, &mut left[even..], right);
        }
        phases
    }

    /// Input row read by output row `oy` at kernel row `ky`, if not padding.
    fn input_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.s.stride + ky).checked_sub(self.s.pad).filter(|&iy| iy < self.s.h)
    }

    /// Zeroes the entries of a contiguous shape's column row for `tap` that read padding.
    fn zero_padding(&self, tap: &Tap, row: &mut [f32]) {
        let ow = self.ow;
        row[..tap.rows.start * ow].fill(0.0);
        row[tap.rows.end * ow..].fill(0.0);
        // Column by column: these are a pad's width of single entries per row, which `fill` would hand to memset
        // one call each.
        for c in (0..tap.cols.start).chain(tap.cols.end..ow) {
            for oy in tap.rows.clone() {
                row[oy * ow + c] = 0.0;
            }
        }
    }
}

/// The `kh·kw` rows `[kh·kw, oh·ow]` of one input plane `[h,w]` in the column matrix, rows `ld` apart; padding
/// reads as zero.
fn im2col_plane(t: &Taps, plane: &[f32], cols: &mut [f32], ld: usize, phases: &mut Vec<f32>) {
    let (ow, w, stride) = (t.ow, t.s.w, t.s.stride);
    let source = t.source(plane, phases);
    for (r, tap) in t.taps.iter().enumerate() {
        let row = &mut cols[r * ld..r * ld + t.oh * ow];
        if t.contiguous {
            if let Some((at, from, len)) = tap.run {
                let read = &source[tap.phase * t.oh * ow + from..];
                row[at..at + len].copy_from_slice(&read[..len]);
            }
            t.zero_padding(tap, row);
            continue;
        }
        let (lo, hi) = (tap.cols.start, tap.cols.end);
        for (oy, dst) in row.chunks_exact_mut(ow).enumerate() {
            let Some(iy) = t.input_row(oy, tap.ky) else {
                dst.fill(0.0);
                continue;
            };
            let src = &plane[iy * w..(iy + 1) * w];
            dst[..lo].fill(0.0);
            dst[hi..].fill(0.0);
            // lo ≥ pad - kx whenever kx < pad, so the first read is never negative.
            let first = lo * stride + tap.kx - t.s.pad;
            if stride == 1 {
                dst[lo..hi].copy_from_slice(&src[first..first + (hi - lo)]);
            } else if stride == 2 && hi > lo {
                // Pairs, so the loop vectorises (step_by does not: ResNet's stem gathered at a tenth of copy
                // speed); the last entry's pair may run past the row.
                for (d, pair) in dst[lo..hi - 1].iter_mut().zip(src[first..].chunks_exact(2)) {
                    *d = pair[0];
                }
                dst[hi - 1] = src[first + 2 * (hi - 1 - lo)];
            } else {
                for (d, &v) in dst[lo..hi].iter_mut().zip(src[first..].iter().step_by(stride)) {
                    *d = v;
                }
            }
        }
    }
}

/// Adjoint of [`gather_cols`]: dx `[imgs,c_in,h,w]` (overwritten) gathers every entry of the column matrix
/// `dcols` `[k, imgs·p]` that read it, one task per block of input channels as in [`gather_cols`]. The entries
/// of `dcols` that read padding may be zeroed.
fn col2im(s: &Conv2dShape, dcols: &mut [f32], dx: &mut [f32], alone: bool) {
    let (p, hw, taps) = (s.positions(), s.h * s.w, Taps::new(s));
    let imgs = dx.len() / s.in_image();
    let ld = imgs * p;
    // Each channel's planes, one per image, handed to the task that owns that channel's rows.
    let mut planes: Vec<Vec<&mut [f32]>> = (0..s.c_in).map(|_| Vec::with_capacity(imgs)).collect();
    for (i, plane) in dx.chunks_exact_mut(hw).enumerate() {
        planes[i % s.c_in].push(plane);
    }
    let rows = dcols[..s.k_dim() * ld].par_chunks_mut(s.kh * s.kw * ld);
    rows.zip(planes).with_min_len(channels_per_task(s, alone)).for_each_init(Vec::new, |phases, (rows, planes)| {
        for (img, plane) in planes.into_iter().enumerate() {
            col2im_plane(&taps, &mut rows[img * p..], ld, plane, phases);
        }
    });
}

/// Adjoint of [`im2col_plane`]: one input plane `[h,w]` (overwritten) from its `kh·kw` rows, `ld` apart; a
/// phased shape's runs add into its phases in `phases`, then interleaved into the plane.
fn col2im_plane(t: &Taps, dcols: &mut [f32], ld: usize, plane: &mut [f32], phases: &mut Vec<f32>) {
    let (ow, w, stride) = (t.ow, t.s.w, t.s.stride);
    if t.contiguous {
        let target = if t.phases { scratch(phases, 4 * t.oh * ow) } else { &mut *plane };
        target.fill(0.0);
        for (r, tap) in t.taps.iter().enumerate() {
            let row = &mut dcols[r * ld..r * ld + t.oh * ow];
            // Zeroed padding entries add nothing to the pixels the run wraps onto.
            t.zero_padding(tap, row);
            if let Some((at, from, len)) = tap.run {
                let read = &mut target[tap.phase * t.oh * ow + from..];
                for (d, &v) in read[..len].iter_mut().zip(&row[at..at + len]) {
                    *d += v;
                }
            }
        }
        if t.phases {
            for (y, row) in plane.chunks_exact_mut(w).enumerate() {
                let (even, odd) = t.phase_rows(y);
                for (pair, (&e, &o)) in row.chunks_exact_mut(2).zip(phases[even..].iter().zip(&phases[odd..])) {
                    (pair[0], pair[1]) = (e, o);
                }
            }
        }
        return;
    }
    plane.fill(0.0);
    for (r, tap) in t.taps.iter().enumerate() {
        let row = &mut dcols[r * ld..r * ld + t.oh * ow];
        let (lo, hi) = (tap.cols.start, tap.cols.end);
        for (oy, src) in row.chunks_exact(ow).enumerate() {
            let Some(iy) = t.input_row(oy, tap.ky) else {
                continue;
            };
            let dst = &mut plane[iy * w..(iy + 1) * w];
            let first = lo * stride + tap.kx - t.s.pad;
            // step_by blocks vectorisation, so the common stride-1 case gets a plain zip.
            if stride == 1 {
                for (d, &v) in dst[first..first + (hi - lo)].iter_mut().zip(&src[lo..hi]) {
                    *d += v;
                }
            } else if stride == 2 && hi > lo {
                // As in im2col_plane: pairs vectorise where step_by does not.
                for (pair, &v) in dst[first..].chunks_exact_mut(2).zip(&src[lo..hi - 1]) {
                    pair[0] += v;
                }
                dst[first + 2 * (hi - 1 - lo)] += src[hi - 1];
            } else {
                for (d, &v) in dst[first..].iter_mut().step_by(stride).zip(&src[lo..hi]) {
                    *d += v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::kernels::testutil::{affordable, assert_close, bit_identical, conv_direct, rand_vec};

    fn shapes() -> Vec<Conv2dShape> {
        let sh = |n, c_in, h, w, c_out, kh, kw, stride, pad| Conv2dShape { n, c_in, h, w, c_out, kh, kw, stride, pad };
        vec![
            sh(1, 1, 5, 5, 1, 3, 3, 1, 0),
            sh(3, 2, 7, 6, 4, 3, 3, 1, 1),
            sh(3, 3, 8, 9, 5, 3, 3, 2, 1),
            sh(1, 1, 6, 7, 2, 2, 3, 2, 0),
            sh(3, 4, 5, 5, 3, 1, 1, 1, 0),
            sh(2, 2, 7, 5, 3, 1, 1, 2, 1),
            sh(3, 2, 4, 4, 2, 5, 3, 1, 2),
            sh(20, 3, 6, 6, 4, 3, 3, 1, 1),
            // Wide enough that each image is its own GEMM (see `group`), pointwise and not.
            sh(3, 2, 33, 32, 3, 3, 3, 1, 1),
            sh(2, 2, 32, 32, 3, 1, 1, 1, 0),
            // Groups of 5 that split the 40 images (and their backward chunks) unevenly.
            sh(40, 2, 10, 20, 3, 3, 3, 1, 1),
            // Channels enough for Winograd's transforms (winograd.rs) on both passes.
            sh(2, 64, 6, 5, 64, 3, 3, 1, 1),
            // Planes small enough for one GEMM per tap (tapwise.rs).
            sh(4, 3, 2, 3, 5, 3, 3, 1, 1),
            sh(3, 2, 1, 1, 3, 3, 3, 1, 1),
            // Stride 2 with outputs half the input each way, read as phases (`Taps::phases`): ResNet's 3×3 and its
            // 7×7 stem, and kernels of 4 and 2; its 1×1 downsampling, which is not.
            sh(3, 3, 8, 10, 5, 3, 3, 2, 1),
            sh(2, 3, 12, 8, 4, 7, 7, 2, 3),
            sh(3, 4, 6, 4, 5, 1, 1, 2, 0),
            sh(2, 2, 8, 6, 3, 4, 4, 2, 1),
            sh(2, 2, 6, 8, 3, 2, 2, 2, 0),
        ]
        .into_iter()
        // The finite-difference check runs the direct convolution a hundred times or so per shape.
        .filter(|s| affordable(s.n * s.out_image() * s.k_dim() * 8))
        .collect()
    }

    #[test]
    fn forward_matches_direct() {
        for (i, s) in shapes().iter().enumerate() {
            let x = rand_vec(s.n * s.in_image(), 10 + i as u64);
            let w = rand_vec(s.c_out * s.k_dim(), 20 + i as u64);
            let b = rand_vec(s.c_out, 30 + i as u64);
            for bias in [None, Some(&b[..])] {
                let mut out = vec![f32::NAN; s.n * s.out_image()];
                conv2d_forward(s, &x, &w, bias, ConvOutput::Plain(&mut out));
                let want: Vec<f32> = conv_direct(s, &x, &w, bias).iter().map(|&v| v as f32).collect();
                assert_close(&out, &want, 1e-5, &format!("conv forward {s:?}"));
            }
        }
    }

    /// Loss L = Σ out·r for a fixed random r, so dL/dout = r; every analytic gradient is
    /// checked against central differences of the f64 reference.
    #[test]
    fn backward_matches_finite_differences() {
        for (i, s) in shapes().iter().enumerate() {
            let x = rand_vec(s.n * s.in_image(), 40 + i as u64);
            let w = rand_vec(s.c_out * s.k_dim(), 50 + i as u64);
            let b = rand_vec(s.c_out, 60 + i as u64);
            let r = rand_vec(s.n * s.out_image(), 70 + i as u64);
            let loss = |x: &[f32], w: &[f32], b: &[f32]| -> f64 {
                conv_direct(s, x, w, Some(b)).iter().zip(&r).map(|(o, &g)| o * g as f64).sum()
            };
            let mut dx = vec![f32::NAN; x.len()];
            let mut dw = vec![f32::NAN; w.len()];
            let mut db = vec![f32::NAN; b.len()];
            conv2d_backward(s, &x, &w, ConvGrad::Plain(&r), Some(&mut dx), &mut dw, Some(&mut db));
            let eps = 1e-2f32;
            let fd = |v: &[f32], j: usize, f: &dyn Fn(&[f32]) -> f64| -> f32 {
                let (mut plus, mut minus) = (v.to_vec(), v.to_vec());
                plus[j] += eps;
                minus[j] -= eps;
                ((f(&plus) - f(&minus)) / (2.0 * eps as f64)) as f32
            };
            // Every index on small shapes, a strided sample on the larger one.
            let step = |len: usize| (len / 40).max(1);
            for j in (0..x.len()).step_by(step(x.len())) {
                let want = fd(&x, j, &|v| loss(v, &w, &b));
                assert_close(&[dx[j]], &[want], 1e-2, &format!("dx[{j}] {s:?}"));
            }
            for j in (0..w.len()).step_by(step(w.len())) {
                let want = fd(&w, j, &|v| loss(&x, v, &b));
                assert_close(&[dw[j]], &[want], 1e-2, &format!("dw[{j}] {s:?}"));
            }
            for (j, &got) in db.iter().enumerate() {
                let want = fd(&b, j, &|v| loss(&x, &w, v));
                assert_close(&[got], &[want], 1e-2, &format!("db[{j}] {s:?}"));
            }
            // Without dx/db, dw must not change.
            let mut dw2 = vec![0.0; w.len()];
            conv2d_backward(s, &x, &w, ConvGrad::Plain(&r), None, &mut dw2, None);
            assert!(bit_identical(&dw, &dw2));
        }
    }

    /// The fused op against its definition: ReLU then 2×2 max-pool (first maximum) of the direct
    /// convolution; its backward against the plain backward fed the unpooled gradient.
    #[test]
    fn fused_relu_maxpool_matches_the_three_ops() {
        let sh = |n, c_in, h, w, c_out, stride, pad| Conv2dShape { n, c_in, h, w, c_out, kh: 3, kw: 3, stride, pad };
        // Even and odd outputs (an odd last row/column is dropped), one image per GEMM and groups; planes of at most
        // 3×3 (the last two) take tapwise.rs's GEMMs.
        let shapes = [
            sh(3, 2, 8, 8, 4, 1, 1),
            sh(5, 3, 7, 9, 3, 1, 0),
            sh(2, 1, 33, 32, 5, 1, 1),
            sh(40, 2, 10, 20, 3, 2, 1),
            sh(3, 2, 3, 2, 4, 1, 1),
            sh(2, 3, 2, 3, 2, 1, 1),
        ];
        for (i, s) in shapes.iter().enumerate() {
            let x = rand_vec(s.n * s.in_image(), 80 + i as u64);
            let w = rand_vec(s.c_out * s.k_dim(), 90 + i as u64);
            let b = rand_vec(s.c_out, 100 + i as u64);
            let conv = conv_direct(s, &x, &w, Some(&b));
            let (oh, ow, ph, pw) = (s.out_h(), s.out_w(), s.out_h() / 2, s.out_w() / 2);
            let (mut want, mut want_at) = (vec![], vec![]);
            for plane in conv.chunks_exact(oh * ow) {
                for (py, px) in (0..ph).flat_map(|py| (0..pw).map(move |px| (py, px))) {
                    let at = |d: usize| (2 * py + d / 2) * ow + 2 * px + d % 2;
                    let relu = |d: usize| (plane[at(d)] as f32).max(0.0);
                    let best = (1..4).fold(0, |b, d| if relu(d) > relu(b) { d } else { b });
                    want.push(relu(best));
                    want_at.push(at(best));
                }
            }
            let mut out = vec![f32::NAN; s.n * s.pooled_image()];
            let mut which = vec![9u8; out.len()];
            conv2d_forward(s, &x, &w, Some(&b), ConvOutput::ReluMaxPool2 { out: &mut out, which: &mut which });
            assert_close(&out, &want, 1e-5, &format!("fused forward {s:?}"));

            let g = rand_vec(out.len(), 110 + i as u64);
            let mut dout = vec![0.0; s.n * s.out_image()];
            for (j, (&at, &o)) in want_at.iter().zip(&out).enumerate() {
                if o > 0.0 {
                    dout[j / (ph * pw) * oh * ow + at] = g[j];
                }
            }
            let grads = |grad: ConvGrad| {
                let (mut dx, mut dw, mut db) =
                    (vec![f32::NAN; x.len()], vec![f32::NAN; w.len()], vec![f32::NAN; b.len()]);
                conv2d_backward(s, &x, &w, grad, Some(&mut dx), &mut dw, Some(&mut db));
                [dx, dw, db]
            };
            let fused = grads(ConvGrad::ReluMaxPool2 { g: &g, out: &out, which: &which });
            for (got, want) in fused.iter().zip(&grads(ConvGrad::Plain(&dout))) {
                assert!(bit_identical(got, want), "fused backward {s:?}");
            }
        }
    }

    #[test]
    fn deterministic() {
        let (n, c_in, hw, c_out) = if cfg!(miri) { (5, 2, 6, 4) } else { (37, 8, 12, 16) };
        let s = Conv2dShape { n, c_in, h: hw, w: hw, c_out, kh: 3, kw: 3, stride: 1, pad: 1 };
        let x = rand_vec(s.n * s.in_image(), 1);
        let w = rand_vec(s.c_out * s.k_dim(), 2);
        let g = rand_vec(s.n * s.out_image(), 3);
        let run = || {
            let mut out = vec![0.0; g.len()];
            conv2d_forward(&s, &x, &w, None, ConvOutput::Plain(&mut out));
            let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; s.c_out]);
            conv2d_backward(&s, &x, &w, ConvGrad::Plain(&g), Some(&mut dx), &mut dw, Some(&mut db));
            [out, dx, dw, db]
        };
        let first = run();
        for _ in 0..3 {
            for (a, b) in run().iter().zip(&first) {
                assert!(bit_identical(a, b));
            }
        }
    }
}
