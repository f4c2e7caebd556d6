//! 3×3, stride-1, padding-1 convolution by Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray, "Fast
//! Algorithms for Convolutional Neural Networks", 2015): each 2×2 block of outputs comes from a 4×4 block of input
//! with 16 multiplies per (input, output) channel pair instead of im2col's 36, as 16 GEMMs
//! `M_ξ [c_out, tiles] = U_ξ [c_out, c_in] · V_ξ [c_in, tiles]`, one per entry ξ of the transformed 4×4 block.
//! The transforms only add and halve, but they do round: the results differ from im2col's in the last bits (full-width
//! ResNet-18 and -34 logits against torchvision's: worst relative error 5.28e-5, against 3.69e-5 with im2col;
//! bench/README.md).
//!
//! Most of a ResNet's convolutions have this shape, and the input gradient of one is another (the kernel turned by
//! 180°, its channels swapped), so both passes use it; the weight gradient comes from the same transforms where
//! that pays ([`weight_grad_pays`]). The tiles are cut into chunks of tile rows (each chunk's transformed input
//! and products sized for the cache), and the transforms run sixteen tiles to a vector register.

use rayon::prelude::*;

use std::cell::RefCell;

use super::conv::{scratch, with_scratch, Conv2dShape, ConvOutput};
use super::matmul::sgemm_serial;
use super::{add_assign, deinterleave};

/// Entries of a transformed 4×4 block.
const XI: usize = 16;

/// Tiles (2×2 outputs) per chunk: a chunk's transformed input and its products, `16·c·tiles` floats each, stay
/// near the size of the L2 cache for ResNet's 64-channel stage, and its GEMMs stay wide enough to run at speed.
const CHUNK_TILES: usize = 256;

/// Below this many chunks the batch is one chunk whose 16 GEMMs and transforms are shared out instead.
const MIN_CHUNKS: usize = 4;

/// Fewer channels than this on either side and the GEMMs are too shallow (their depth is `c_in`, and `c_out` for
/// the input gradient) for the multiplies they save to pay for the transforms: the Fashion-MNIST CNN's 1→32 and
/// 32→64 convolutions made its epoch 13.5 s against 11.2 s with im2col, and leaving out only the first 12.5 s.
const MIN_CHANNELS: usize = 64;

/// Whether [`conv`] computes this convolution, rather than im2col.
pub(crate) fn applies(s: &Conv2dShape) -> bool {
    s.is_same_3x3() && s.c_in.min(s.c_out) >= MIN_CHANNELS
}

/// `conv(x)` (+ bias, then as `out` asks) with the weight `w` `[c_out, c_in, 3, 3]`, overwriting `out`.
pub(crate) fn conv(s: &Conv2dShape, x: &[f32], w: &[f32], bias: Option<&[f32]>, out: ConvOutput) {
    with_filters(s.c_out, s.c_in, w, s.c_in * 9, 9, false, |u| forward(s, x, u, bias, out));
}

/// dx `[n, c_in, h, w]` (overwritten) from dout: the convolution of dout with the kernel turned by 180° and its
/// channels swapped.
pub(crate) fn input_grad(s: &Conv2dShape, dout: &[f32], w: &[f32], dx: &mut [f32]) {
    let t = Conv2dShape { c_in: s.c_out, c_out: s.c_in, ..*s };
    with_filters(s.c_in, s.c_out, w, 9, s.c_in * 9, true, |u| forward(&t, dout, u, None, ConvOutput::Plain(dx)));
}

thread_local! {
    /// Each thread's transformed filters, kept from one call to the next: 16 MB for a 512-channel layer, which a
    /// fresh vector would zero on every call.
    static FILTERS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `f` of the transformed filters `U = G·g·Gᵀ` of every (output, input) channel pair, as `[c_out][ξ][c_in]`, where
/// the 3×3 kernel of pair (o, i) is the nine floats of `w` from `o·o_stride + i·i_stride`, turned by 180° if
/// `flip`. `G = [[1, 0, 0], [½, ½, ½], [½, -½, ½], [0, 0, 1]]`. They are built in this thread's buffer, or a fresh
/// one if that is in use further up the stack.
#[allow(clippy::too_many_arguments)]
fn with_filters<R>(
    c_out: usize,
    c_in: usize,
    w: &[f32],
    o_stride: usize,
    i_stride: usize,
    flip: bool,
    f: impl FnOnce(&[f32]) -> R,
) -> R {
    assert!(c_out == 0 || c_in == 0 || (c_out - 1) * o_stride + (c_in - 1) * i_stride + 9 <= w.len());
    FILTERS.with(|cell| {
        let mut fresh = Vec::new();
        let mut held = cell.try_borrow_mut();
        let buf = match held.as_deref_mut() {
            Ok(buf) => buf,
            Err(_) => &mut fresh,
        };
        let u = scratch(buf, c_out * XI * c_in);
        if c_in > 0 {
            u.par_chunks_mut(XI * c_in)
                .enumerate()
                .for_each(|(o, rows)| filter_rows(&w[o * o_stride..], i_stride, flip, rows));
        }
        f(u)
    })
}

multiversion! {
    /// One output channel's `[ξ][c_in]` rows of [`with_filters`], sixteen input channels at a time.
    fn filter_rows(w: &[f32], i_stride: usize, flip: bool, rows: &mut [f32]) {
        let c_in = rows.len() / XI;
        let mut i0 = 0;
        while i0 < c_in {
            let n = LANES.min(c_in - i0);
            // g[ky][kx][lane]
            let mut g = [[[0.0f32; LANES]; 3]; 3];
            for l in 0..n {
                let k = &w[(i0 + l) * i_stride..][..9];
                for (at, &v) in k.iter().enumerate() {
                    let at = if flip { 8 - at } else { at };
                    g[at / 3][at % 3][l] = v;
                }
            }
            // G·g: four rows of three.
            let mut gg = [[[0.0f32; LANES]; 3]; 4];
            for kx in 0..3 {
                for l in 0..LANES {
                    let (a, b, c) = (g[0][kx][l], g[1][kx][l], g[2][kx][l]);
                    gg[0][kx][l] = a;
                    gg[1][kx][l] = (a + b + c) * 0.5;
                    gg[2][kx][l] = (a - b + c) * 0.5;
                    gg[3][kx][l] = c;
                }
            }
            // (G·g)·Gᵀ.
            for (r, [a, b, c]) in gg.iter().enumerate() {
                let mut u = [[0.0f32; LANES]; 4];
                for l in 0..LANES {
                    u[0][l] = a[l];
                    u[1][l] = (a[l] + b[l] + c[l]) * 0.5;
                    u[2][l] = (a[l] - b[l] + c[l]) * 0.5;
                    u[3][l] = c[l];
                }
                for (j, u) in u.iter().enumerate() {
                    rows[(4 * r + j) * c_in + i0..][..n].copy_from_slice(&u[..n]);
                }
            }
            i0 += n;
        }
    }
}

/// How the tiles are cut: `th × tw` tiles per image, `rows` tile rows per chunk.
struct Tiling {
    th: usize,
    tw: usize,
    rows: usize,
    chunks: usize,
}

impl Tiling {
    fn new(s: &Conv2dShape) -> Tiling {
        let (th, tw) = (s.h.div_ceil(2), s.w.div_ceil(2));
        let total = s.n * th;
        let rows = (CHUNK_TILES / tw).max(1);
        let chunks = total.div_ceil(rows);
        if chunks < MIN_CHUNKS {
            return Tiling { th, tw, rows: total, chunks: 1 };
        }
        Tiling { th, tw, rows, chunks }
    }

    /// Chunk `chunk`'s first and last tile row (global: image·th + ty), and for narrow rows where its tiles are read
    /// and written.
    fn chunk(&self, s: &Conv2dShape, chunk: usize) -> (usize, usize, Option<Narrow>) {
        let first = chunk * self.rows;
        let last = (first + self.rows).min(s.n * self.th);
        (first, last, (self.tw <= WIDE).then(|| Narrow::new(s, self, first..last)))
    }
}

/// `f(v, m, ld)` with this thread's buffers for a chunk's transformed input V `[ξ][c_in][ld]` and products M
/// `[ξ][c_out][ld]`; rows have room for one more block (`ld = tiles + LANES`), so that the transforms read and write
/// whole blocks.
fn with_chunk_buffers<R>(s: &Conv2dShape, tiles: usize, f: impl FnOnce(&mut [f32], &mut [f32], usize) -> R) -> R {
    with_scratch(|[v, m, _]| {
        let ld = tiles + LANES;
        f(scratch(v, XI * s.c_in * ld), scratch(m, XI * s.c_out * ld), ld)
    })
}

/// conv(x `[n, c_in, h, w]`) with the filters `u` of [`with_filters`] (+ bias, then as `out` asks), overwriting
/// `out`. Chunks of tile rows run as tasks of their own; a batch too small to cut shares each step of its one chunk
/// out instead.
fn forward(s: &Conv2dShape, x: &[f32], u: &[f32], bias: Option<&[f32]>, out: ConvOutput) {
    assert!(s.is_same_3x3(), "winograd: not a 3×3 stride-1 padding-1 convolution");
    assert_eq!(x.len(), s.n * s.c_in * s.h * s.w, "winograd: x is not [n,c_in,h,w]");
    assert_eq!(u.len(), s.c_out * XI * s.c_in, "winograd: u is not [c_out,16,c_in]");
    if let Some(b) = bias {
        assert_eq!(b.len(), s.c_out, "winograd: bias is not [c_out]");
    }
    if x.is_empty() || s.c_out == 0 {
        return;
    }
    let t = Tiling::new(s);
    let (pieces, relu) = match out {
        ConvOutput::Plain(out) => (output_pieces(s, &t, out), false),
        ConvOutput::Relu(out) => (output_pieces(s, &t, out), true),
        ConvOutput::ReluMaxPool2 { out, which } => (pooled_pieces(s, &t, out, which), true),
    };
    let alone = t.chunks == 1;
    pieces.into_par_iter().enumerate().for_each(|(chunk, pieces)| {
        let (first, last, narrow) = t.chunk(s, chunk);
        let tiles = (last - first) * t.tw;
        with_chunk_buffers(s, tiles, |v, m, ld| {
            chunk_input(s, &t, x, first..last, narrow.as_ref(), v, ld, alone);
            let v: &[f32] = v;
            each(alone, m.chunks_mut(s.c_out * ld).collect(), |(xi, mx)| {
                let (ld_u, vx) = (XI * s.c_in, &v[xi * s.c_in * ld..][..s.c_in * ld]);
                let ux = &u[xi * s.c_in..];
                let ld = ld as isize;
                sgemm_serial(s.c_out, s.c_in, tiles, 1.0, ux, ld_u as isize, 1, vx, ld, 1, 0.0, mx, ld, 1);
            });
            let m: &[f32] = m;
            // The pieces, (image, channel) in order, regrouped by channel.
            let mut by_channel: Vec<Vec<Dest>> = (0..s.c_out).map(|_| Vec::new()).collect();
            for (i, piece) in pieces.into_iter().enumerate() {
                by_channel[i % s.c_out].push(piece);
            }
            each(alone, by_channel, |(co, pieces)| {
                let b = bias.map_or(0.0, |b| b[co]);
                output_tiles(s, &t, m, co, ld, first..last, narrow.as_ref(), pieces, b, relu);
            });
        })
    });
}

/// `f` of each item and its index: shared out over the threads when the chunk is the whole batch (`alone`), in turn
/// on this thread when chunks are tasks of their own already.
fn each<T: Send>(alone: bool, items: Vec<T>, f: impl Fn((usize, T)) + Sync + Send) {
    if alone {
        items.into_par_iter().enumerate().for_each(f);
    } else {
        items.into_iter().enumerate().for_each(f);
    }
}

/// The blocks `V` of the chunk's tile rows `rows` of x into `v` (`[ξ][c_in][ld]`), a channel at a time.
#[allow(clippy::too_many_arguments)]
fn chunk_input(
    s: &Conv2dShape,
    t: &Tiling,
    x: &[f32],
    rows: std::ops::Range<usize>,
    narrow: Option<&Narrow>,
    v: &mut [f32],
    ld: usize,
    alone: bool,
) {
    each(alone, rows_by_channel(v, s.c_in, ld), |(ci, mut v)| {
        channel_blocks(s, t, &x[ci * s.h * s.w..], s.c_in, rows.clone(), narrow, Blocks::Input, &mut v)
    });
}

/// `[16 blocks][c][ld]` as `c` lists of 16 rows of `ld`, one list per channel.
fn rows_by_channel(v: &mut [f32], c: usize, ld: usize) -> Vec<Vec<&mut [f32]>> {
    let mut per: Vec<Vec<&mut [f32]>> = (0..c).map(|_| Vec::with_capacity(XI)).collect();
    for block in v.chunks_exact_mut(c * ld) {
        for (ci, row) in block.chunks_exact_mut(ld).enumerate() {
            per[ci].push(row);
        }
    }
    per
}

/// Where a chunk writes one (image, channel) plane's outputs: the rows of the full output its tile rows produce,
/// or of the ReLU + 2×2 max-pool (one pooled output per tile) with the window's winner.
enum Dest<'a> {
    Full(&'a mut [f32]),
    Pooled(&'a mut [f32], &'a mut [u8]),
}

/// `out` (`[n, c_out, h, w]`) cut, for each chunk, into the rows of each (image, channel) plane that its tile rows
/// produce, in (image, channel) order.
fn output_pieces<'a>(s: &Conv2dShape, t: &Tiling, out: &'a mut [f32]) -> Vec<Vec<Dest<'a>>> {
    assert_eq!(out.len(), s.n * s.c_out * s.h * s.w, "winograd: out is not [n,c_out,h,w]");
    let mut chunks: Vec<Vec<Dest>> = (0..t.chunks).map(|_| Vec::new()).collect();
    for (plane_at, plane) in out.chunks_exact_mut(s.h * s.w).enumerate() {
        // Output rows 2·ty .. 2·ty + 2 of each tile row, the last one clipped to the plane.
        for (chunk, rows) in plane_rows(t, plane_at / s.c_out, plane, s.w * 2, s.h * s.w) {
            chunks[chunk].push(Dest::Full(rows));
        }
    }
    chunks
}

/// `out` and `which` (`[n, c_out, h/2, w/2]`) cut as [`output_pieces`] cuts the full output: one pooled row per
/// tile row, none for an odd height's last.
fn pooled_pieces<'a>(s: &Conv2dShape, t: &Tiling, out: &'a mut [f32], which: &'a mut [u8]) -> Vec<Vec<Dest<'a>>> {
    let (pw, pp) = (s.w / 2, (s.h / 2) * (s.w / 2));
    assert!(out.len() == s.n * s.c_out * pp && which.len() == out.len(), "winograd: out is not [n,c_out,h/2,w/2]");
    let mut chunks: Vec<Vec<Dest>> = (0..t.chunks).map(|_| Vec::new()).collect();
    // Plane by plane with split_at_mut rather than chunks_mut: empty pooled planes (an input one row or column
    // wide) still get their (empty) pieces, in order.
    let (mut out, mut which) = (out, which);
    for plane_at in 0..s.n * s.c_out {
        let (o, o_rest) = std::mem::take(&mut out).split_at_mut(pp);
        let (w, w_rest) = std::mem::take(&mut which).split_at_mut(pp);
        (out, which) = (o_rest, w_rest);
        let img = plane_at / s.c_out;
        let rows = plane_rows(t, img, o, pw, pp).zip(plane_rows(t, img, w, pw, pp));
        for ((chunk, o), (_, w)) in rows {
            chunks[chunk].push(Dest::Pooled(o, w));
        }
    }
    chunks
}

/// One plane (`len` long) cut at the chunks' tile-row boundaries, `row_len` entries per tile row: (chunk, rows).
fn plane_rows<'a, T>(
    t: &Tiling,
    img: usize,
    plane: &'a mut [T],
    row_len: usize,
    len: usize,
) -> impl Iterator<Item = (usize, &'a mut [T])> {
    let (lo, hi, per_chunk) = (img * t.th, (img + 1) * t.th, t.rows);
    let mut rest = plane;
    let mut row = lo;
    std::iter::from_fn(move || {
        if row >= hi {
            return None;
        }
        let chunk = row / per_chunk;
        let end = ((chunk + 1) * per_chunk).min(hi);
        let n = ((end - lo) * row_len).min(len) - ((row - lo) * row_len).min(len);
        let (piece, tail) = std::mem::take(&mut rest).split_at_mut(n);
        rest = tail;
        row = end;
        Some((chunk, piece))
    })
}

/// The chunk's tile rows `rows` (global: image·th + ty) by image: (image, its first and last tile row, the first
/// tile's index in the chunk).
fn segments(t: &Tiling, rows: std::ops::Range<usize>) -> impl Iterator<Item = (usize, usize, usize, usize)> + '_ {
    let images = rows.start / t.th..rows.end.div_ceil(t.th);
    images.map(move |img| {
        let first = rows.start.max(img * t.th) - img * t.th;
        let last = rows.end.min((img + 1) * t.th) - img * t.th;
        (img, first, last, (img * t.th + first - rows.start) * t.tw)
    })
}

/// Which blocks [`channel_blocks`] transforms: the input's 4×4 ones, `V = Bᵀ·d·B` with
/// `Bᵀ = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]`, or the output gradient's 2×2 ones,
/// `A·dY·Aᵀ` (the gradient of M, the adjoint of [`output_tiles`]; outputs an odd size clips away read as zero).
#[derive(Clone, Copy)]
enum Blocks {
    Input,
    OutputGrad,
}

/// The transformed blocks of one channel (`planes`, `[n, channels, h, w]` from that channel's first plane) in tile
/// rows `rows`, into the 16 rows of `v`.
#[allow(clippy::too_many_arguments)]
fn channel_blocks(
    s: &Conv2dShape,
    t: &Tiling,
    planes: &[f32],
    channels: usize,
    rows: std::ops::Range<usize>,
    narrow: Option<&Narrow>,
    kind: Blocks,
    v: &mut [&mut [f32]],
) {
    let split_len = 2 * (t.tw + 1);
    let padded = matches!(kind, Blocks::Input);
    split_rows(s, t, planes, channels, rows, narrow.is_some(), padded, |buf, segment| {
        let starts = || &narrow.expect("narrow rows").blocks;
        let group = || narrow.expect("narrow rows").group;
        match (kind, segment) {
            (Blocks::Input, Some((count, t0))) => input_segment(buf, split_len, count, v, t0),
            (Blocks::Input, None) => input_gathered(buf, split_len, group(), starts(), v),
            (Blocks::OutputGrad, Some((count, t0))) => grad_segment(buf, split_len, count, v, t0),
            (Blocks::OutputGrad, None) => grad_gathered(buf, split_len, group(), starts(), v),
        }
    });
}

/// The rows of one channel of `planes` (`[n, channels, h, w]`, from that channel's first plane) that tile rows
/// `rows` read, each split into its even and odd columns, so that a tile's columns are consecutive entries of each
/// and the loop over tiles vectorises. A split row is `tw + 1` even entries, then `tw + 1` odd ones; each image's
/// tile rows get two split rows apiece, plus two. For the input (`padded`), the rows and columns start one before
/// the plane (its padding), so a tile row k reads split rows 2k .. 2k + 4; for the output gradient they start at
/// the plane and a tile row reads 2k and 2k + 1. Wide tile rows are handed to `each` image by image, as
/// `Some((tile rows, first tile))`, narrow ones all at once, as `None`; the buffer then has room past its last row
/// for a block's whole-width reads.
#[allow(clippy::too_many_arguments)]
fn split_rows(
    s: &Conv2dShape,
    t: &Tiling,
    planes: &[f32],
    channels: usize,
    rows: std::ops::Range<usize>,
    narrow: bool,
    padded: bool,
    mut each: impl FnMut(&[f32], Option<(usize, usize)>),
) {
    let (tw, hw) = (t.tw, s.h * s.w);
    let split_len = 2 * (tw + 1);
    let shift = usize::from(padded);
    let mut buf = Vec::new();
    for (img, first, last, t0) in segments(t, rows) {
        let plane = &planes[img * channels * hw..][..hw];
        let split_rows = 2 * (last - first) + 2;
        if !narrow {
            buf.clear();
        }
        let from = buf.len();
        buf.resize(from + split_rows * split_len, 0.0);
        for (r, split) in buf[from..].chunks_exact_mut(split_len).enumerate() {
            if let Some(y) = (2 * first + r).checked_sub(shift).filter(|&y| y < s.h) {
                let (even, odd) = split.split_at_mut(tw + 1);
                // Padded, plane column j is split column j + 1: odd plane columns land in the even half.
                let row = &plane[y * s.w..][..s.w];
                if padded {
                    deinterleave(row, odd, &mut even[1..]);
                } else {
                    deinterleave(row, even, odd);
                }
            }
        }
        if !narrow {
            buf.resize(buf.len() + LANES + 1, 0.0);
            each(&buf, Some((last - first, t0)));
        }
    }
    if narrow {
        buf.resize(buf.len() + LANES + 1, 0.0);
        each(&buf, None);
    }
}

/// Where a chunk of tile rows no wider than [`WIDE`] reads and writes its tiles: they go through the transforms
/// sixteen at a time across rows and images, in groups of consecutive tiles of one row (`group` of them, the
/// largest power of two up to 8 that divides the row: 16×16 planes fill a register with two whole tile rows, 8×8
/// with one image's four), each group's blocks gathered and its outputs scattered.
struct Narrow {
    group: usize,
    /// Per group, where its first block starts in the chunk's split rows (all images' rows, one after the other).
    blocks: Vec<usize>,
    /// Per group, its image's piece in the chunk, its tile row there and its first column, how many output columns
    /// it has (fewer than two a tile where an odd width clips the last), and whether it has a bottom row (an odd
    /// height's last tile row has not).
    places: Vec<Place>,
}

/// See [`Narrow::places`].
#[derive(Clone, Copy)]
struct Place {
    piece: usize,
    k: usize,
    i: usize,
    cols: usize,
    below: bool,
}

impl Narrow {
    fn new(s: &Conv2dShape, t: &Tiling, rows: std::ops::Range<usize>) -> Narrow {
        let split_len = 2 * (t.tw + 1);
        let group = 1 << t.tw.trailing_zeros().min(3);
        let (mut blocks, mut places) = (Vec::new(), Vec::new());
        let mut first_row = 0;
        for (piece, (_, first, last, _)) in segments(t, rows).enumerate() {
            for k in 0..last - first {
                for i in (0..t.tw).step_by(group) {
                    blocks.push((first_row + 2 * k) * split_len + i);
                    let (cols, below) = ((2 * group).min(s.w - 2 * i), 2 * (first + k) + 1 < s.h);
                    places.push(Place { piece, k, i, cols, below });
                }
            }
            first_row += 2 * (last - first) + 2;
        }
        Narrow { group, blocks, places }
    }
}

multiversion! {
    /// The blocks of a narrow chunk (see [`Narrow`]), each group's gathered from the split rows in `buf` at its
    /// start in `starts`, into `v[ξ]`.
    fn input_gathered(buf: &[f32], split_len: usize, group: usize, starts: &[usize], v: &mut [&mut [f32]]) {
        by_group!(group, input_groups(buf, split_len, starts, v))
    }
}

#[inline(always)]
fn input_groups<const G: usize>(buf: &[f32], split_len: usize, starts: &[usize], v: &mut [&mut [f32]]) {
    let tw = split_len / 2 - 1;
    let mut d = [[[0.0f32; LANES]; 4]; 4];
    for b in blocks(starts.len() * G) {
        for (l, &at) in (0..LANES).step_by(G).zip(&starts[b / G..]) {
            for (r, d) in d.iter_mut().enumerate() {
                let row = &buf[at + r * split_len..][..tw + 2 + G];
                for (c, from) in [0, tw + 1, 1, tw + 2].into_iter().enumerate() {
                    d[c][l..l + G].copy_from_slice(&row[from..from + G]);
                }
            }
        }
        transform_input(&d, v, b);
    }
}

/// Tiles per step of the transforms: one AVX-512 register of f32.
const LANES: usize = 16;

/// Tile rows wider than this go through the transforms along the row; others across rows (see [`Narrow`]), so that
/// a block holds two or more whole rows rather than one row and the wasted start of the next.
const WIDE: usize = LANES / 2;

/// Where the blocks of `LANES` tiles of a row of `len` start.
fn blocks(len: usize) -> std::iter::StepBy<std::ops::Range<usize>> {
    (0..len).step_by(LANES)
}

/// `src[at..at + LANES]` in a register-sized array. Callers leave room past their data for the last block.
#[inline(always)]
fn load(src: &[f32], at: usize) -> [f32; LANES] {
    src[at..at + LANES].try_into().expect("LANES entries")
}

multiversion! {
    /// The blocks of `count` tile rows of one image, from their split padded rows in `buf` (two rows per tile row,
    /// plus two, then room for a whole block's reads), into `v[ξ][t0..]`, sixteen tiles of a row at a time: a
    /// block that ends past its row computes tiles of the next (rewritten in turn) or past the last (never read).
    fn input_segment(buf: &[f32], split_len: usize, count: usize, v: &mut [&mut [f32]], t0: usize) {
        let tw = split_len / 2 - 1;
        // d[r][c][lane]: row r, column c of each lane's block.
        let mut d = [[[0.0f32; LANES]; 4]; 4];
        for k in 0..count {
            for i0 in blocks(tw) {
                for (r, d) in d.iter_mut().enumerate() {
                    let even = &buf[(2 * k + r) * split_len..];
                    let odd = &even[tw + 1..];
                    // Entry by entry: a whole row's array assignment becomes a call to memcpy.
                    d[0] = load(even, i0);
                    d[1] = load(odd, i0);
                    d[2] = load(even, i0 + 1);
                    d[3] = load(odd, i0 + 1);
                }
                transform_input(&d, v, t0 + k * tw + i0);
            }
        }
    }
}

/// `Bᵀ·d·B` of sixteen blocks, lane by lane, stored to `v[ξ][at..at + LANES]`.
#[inline(always)]
fn transform_input(d: &[[[f32; LANES]; 4]; 4], v: &mut [&mut [f32]], at: usize) {
    // d[r]·B per block row: (d0 - d2, d1 + d2, d2 - d1, d1 - d3).
    let mut db = [[[0.0f32; LANES]; 4]; 4];
    for (db, d) in db.iter_mut().zip(d) {
        for l in 0..LANES {
            db[0][l] = d[0][l] - d[2][l];
            db[1][l] = d[1][l] + d[2][l];
            db[2][l] = d[2][l] - d[1][l];
            db[3][l] = d[1][l] - d[3][l];
        }
    }
    // Bᵀ times the four rows.
    let mut res = [[0.0f32; LANES]; XI];
    for j in 0..4 {
        for l in 0..LANES {
            res[j][l] = db[0][j][l] - db[2][j][l];
            res[4 + j][l] = db[1][j][l] + db[2][j][l];
            res[8 + j][l] = db[2][j][l] - db[1][j][l];
            res[12 + j][l] = db[1][j][l] - db[3][j][l];
        }
    }
    for (dst, src) in v.iter_mut().zip(&res) {
        dst[at..at + LANES].copy_from_slice(src);
    }
}

multiversion! {
    /// The output-gradient blocks of `count` tile rows of one image, from their split rows in `buf` (see
    /// [`split_rows`]), into `dm[ξ][t0..]`, sixteen tiles of a row at a time, as [`input_segment`] does.
    fn grad_segment(buf: &[f32], split_len: usize, count: usize, dm: &mut [&mut [f32]], t0: usize) {
        let tw = split_len / 2 - 1;
        for k in 0..count {
            for i0 in blocks(tw) {
                let (top, bottom) = (&buf[2 * k * split_len..], &buf[(2 * k + 1) * split_len..]);
                let d = [load(top, i0), load(&top[tw + 1..], i0), load(bottom, i0), load(&bottom[tw + 1..], i0)];
                transform_grad(&d, dm, t0 + k * tw + i0);
            }
        }
    }
}

multiversion! {
    /// The output-gradient blocks of a narrow chunk (see [`Narrow`]), each group's gathered from the split rows in
    /// `buf` at its start in `starts`, into `dm[ξ]`.
    fn grad_gathered(buf: &[f32], split_len: usize, group: usize, starts: &[usize], dm: &mut [&mut [f32]]) {
        by_group!(group, grad_groups(buf, split_len, starts, dm))
    }
}

#[inline(always)]
fn grad_groups<const G: usize>(buf: &[f32], split_len: usize, starts: &[usize], dm: &mut [&mut [f32]]) {
    let tw = split_len / 2 - 1;
    let mut d = [[0.0f32; LANES]; 4];
    for b in blocks(starts.len() * G) {
        for (l, &at) in (0..LANES).step_by(G).zip(&starts[b / G..]) {
            for (d, from) in d.iter_mut().zip([at, at + tw + 1, at + split_len, at + split_len + tw + 1]) {
                d[l..l + G].copy_from_slice(&buf[from..from + G]);
            }
        }
        transform_grad(&d, dm, b);
    }
}

/// `A·dY·Aᵀ` of sixteen 2×2 blocks `(dY00, dY01, dY10, dY11)`, lane by lane, stored to `dm[ξ][at..at + LANES]`.
#[inline(always)]
fn transform_grad(d: &[[f32; LANES]; 4], dm: &mut [&mut [f32]], at: usize) {
    let [a, b, c, d] = d;
    let mut res = [[0.0f32; LANES]; XI];
    for l in 0..LANES {
        // dY·Aᵀ is rows (y0, y0 + y1, y0 - y1, -y1) of each dY row; A times that stacks row 0, row 0 + row 1,
        // row 0 - row 1 and -row 1.
        let (p, q, u, w) = (a[l] + c[l], a[l] - c[l], b[l] + d[l], b[l] - d[l]);
        let rows = [[a[l], b[l]], [p, u], [q, w], [-c[l], -d[l]]];
        for (r, [y0, y1]) in rows.into_iter().enumerate() {
            res[4 * r][l] = y0;
            res[4 * r + 1][l] = y0 + y1;
            res[4 * r + 2][l] = y0 - y1;
            res[4 * r + 3][l] = -y1;
        }
    }
    for (dst, src) in dm.iter_mut().zip(&res) {
        dst[at..at + LANES].copy_from_slice(src);
    }
}

/// Chunks of tile rows whose weight gradients are summed in one partial each: enough to keep the threads busy, and
/// a constant (not the thread count) so that the order of the sums never changes.
const WEIGHT_GRAD_PARTS: usize = 16;

/// Whether [`weight_grad`] beats im2col's (`conv_speed` in bench/, per ResNet-18 shape): each of its 16 products
/// `[c_out, c_in]` is a sum over the tiles, so with fewer tiles than channels (ResNet's 512-channel stage on small
/// images) writing the products costs more than the multiplies it saves, and at 64 channels the products are too
/// small for the GEMM to run at speed.
pub(crate) fn weight_grad_pays(s: &Conv2dShape) -> bool {
    s.c_in.min(s.c_out) >= 128 && s.n * s.h.div_ceil(2) * s.w.div_ceil(2) >= s.c_in.max(s.c_out)
}

/// dw `[c_out, c_in, 3, 3]` (overwritten) of the convolution of x `[n, c_in, h, w]` from its output gradient
/// `dout`: dU_ξ = Σ_tiles dM_ξ·V_ξᵀ, with V the input's blocks as in [`forward`] and dM the output gradient's, then
/// `dw = Gᵀ·dU·G`. A sixteenth of im2col's multiplies for each 2×2 output, as in the forward pass.
pub(crate) fn weight_grad(s: &Conv2dShape, x: &[f32], dout: &[f32], dw: &mut [f32]) {
    assert!(s.is_same_3x3(), "winograd: not a 3×3 stride-1 padding-1 convolution");
    assert_eq!(x.len(), s.n * s.c_in * s.h * s.w, "winograd: x is not [n,c_in,h,w]");
    assert_eq!(dout.len(), s.n * s.c_out * s.h * s.w, "winograd: dout is not [n,c_out,h,w]");
    assert_eq!(dw.len(), s.c_out * s.c_in * 9, "winograd: dw is not [c_out,c_in,3,3]");
    if x.is_empty() || dout.is_empty() {
        dw.fill(0.0);
        return;
    }
    let t = Tiling::new(s);
    let per_part = t.chunks.div_ceil(WEIGHT_GRAD_PARTS);
    let alone = t.chunks == 1;
    let partials: Vec<Vec<f32>> = (0..t.chunks.div_ceil(per_part))
        .into_par_iter()
        .map(|part| {
            let mut du = vec![0.0f32; XI * s.c_out * s.c_in];
            for chunk in part * per_part..((part + 1) * per_part).min(t.chunks) {
                let (first, last, narrow) = t.chunk(s, chunk);
                let beta = if chunk == part * per_part { 0.0 } else { 1.0 };
                let tiles = (last - first) * t.tw;
                with_chunk_buffers(s, tiles, |v, m, ld| {
                    chunk_input(s, &t, x, first..last, narrow.as_ref(), v, ld, alone);
                    each(alone, rows_by_channel(m, s.c_out, ld), |(co, mut dm)| {
                        let planes = &dout[co * s.h * s.w..];
                        channel_blocks(
                            s,
                            &t,
                            planes,
                            s.c_out,
                            first..last,
                            narrow.as_ref(),
                            Blocks::OutputGrad,
                            &mut dm,
                        )
                    });
                    let (v, m): (&[f32], &[f32]) = (v, m);
                    each(alone, du.chunks_mut(s.c_out * s.c_in).collect(), |(xi, du)| {
                        let (vx, mx) = (&v[xi * s.c_in * ld..][..s.c_in * ld], &m[xi * s.c_out * ld..][..s.c_out * ld]);
                        let l = ld as isize;
                        let ci = s.c_in as isize;
                        sgemm_serial(s.c_out, tiles, s.c_in, 1.0, mx, l, 1, vx, 1, l, beta, du, ci, 1);
                    });
                });
            }
            du
        })
        .collect();
    let mut partials = partials.into_iter();
    let mut du = partials.next().expect("at least one part");
    for part in partials {
        add_assign(&mut du, &part);
    }
    let du = &du;
    dw.par_chunks_mut(s.c_in * 9).enumerate().for_each(|(o, rows)| filter_grad_rows(du, s.c_out, o, rows));
}

multiversion! {
    /// `Gᵀ·dU·G` for output channel `o` from `du` (`[ξ][c_out][c_in]`) into its `[c_in, 3, 3]` rows of dw, sixteen
    /// input channels at a time. `Gᵀ·z = (z0 + (z1 + z2)/2, (z1 - z2)/2, (z1 + z2)/2 + z3)`.
    fn filter_grad_rows(du: &[f32], c_out: usize, o: usize, rows: &mut [f32]) {
        let c_in = rows.len() / 9;
        let mut i0 = 0;
        while i0 < c_in {
            let n = LANES.min(c_in - i0);
            let mut z = [[0.0f32; LANES]; XI];
            for (xi, z) in z.iter_mut().enumerate() {
                z[..n].copy_from_slice(&du[(xi * c_out + o) * c_in + i0..][..n]);
            }
            let gt = |z0: f32, z1: f32, z2: f32, z3: f32| [z0 + (z1 + z2) * 0.5, (z1 - z2) * 0.5, (z1 + z2) * 0.5 + z3];
            let mut g = [[[0.0f32; LANES]; 3]; 3];
            for l in 0..LANES {
                // Gᵀ on each row of the 4×4 block, then on each of the three columns that leaves.
                let t: [[f32; 3]; 4] = std::array::from_fn(|r| gt(z[4 * r][l], z[4 * r + 1][l], z[4 * r + 2][l], z[4 * r + 3][l]));
                for kx in 0..3 {
                    let col = gt(t[0][kx], t[1][kx], t[2][kx], t[3][kx]);
                    for ky in 0..3 {
                        g[ky][kx][l] = col[ky];
                    }
                }
            }
            for l in 0..n {
                let k = &mut rows[(i0 + l) * 9..][..9];
                for (at, k) in k.iter_mut().enumerate() {
                    *k = g[at / 3][at % 3][l];
                }
            }
            i0 += n;
        }
    }
}

/// `Y = Aᵀ·M·A` (+ `bias`, then a ReLU if `relu`) of output channel `co` for every tile of tile rows `rows`, into
/// that channel's `pieces` (one per image, as [`output_pieces`] or [`pooled_pieces`] cut them);
/// `Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]]`. A tile's four outputs are a 2×2 pooling window, so the pooled output
/// takes their maximum (the first, as `max_pool2d` does) straight from the transform.
#[allow(clippy::too_many_arguments)]
fn output_tiles(
    s: &Conv2dShape,
    t: &Tiling,
    m: &[f32],
    co: usize,
    ld: usize,
    rows: std::ops::Range<usize>,
    narrow: Option<&Narrow>,
    mut pieces: Vec<Dest>,
    bias: f32,
    relu: bool,
) {
    if let Some(narrow) = narrow {
        let mut rows: [&[f32]; XI] = [&[]; XI];
        for (xi, row) in rows.iter_mut().enumerate() {
            *row = &m[(xi * s.c_out + co) * ld..][..ld];
        }
        return output_scattered(rows, bias, relu, narrow.group, &narrow.places, &mut pieces, s.w);
    }
    for ((_, first, last, t0), piece) in segments(t, rows).zip(pieces) {
        let mut seg: [&[f32]; XI] = [&[]; XI];
        for (xi, seg) in seg.iter_mut().enumerate() {
            *seg = &m[(xi * s.c_out + co) * ld + t0..][..(last - first) * t.tw + LANES];
        }
        match piece {
            Dest::Full(piece) => output_segment(seg, t.tw, bias, relu, piece, s.w),
            Dest::Pooled(out, which) => pooled_segment(seg, t.tw, bias, out, which, s.w / 2),
        }
    }
}

multiversion! {
    /// One image's tiles `Aᵀ·M·A` (+ `bias`, then a ReLU if `relu`), at least [`LANES`] to a row, into its output rows
    /// `piece` (`w` wide; an odd height's last tile row fills one row, an odd width's last tile one column),
    /// sixteen tiles of a row at a time.
    fn output_segment(m: [&[f32]; XI], tw: usize, bias: f32, relu: bool, piece: &mut [f32], w: usize) {
        let out_rows = piece.len() / w;
        let mut y = [[0.0f32; LANES]; 4];
        for k in 0..out_rows.div_ceil(2) {
            for i0 in blocks(tw) {
                transform_output(&m, k * tw + i0, bias, relu, &mut y);
                // Each output row as interleaved column pairs.
                let cols = (2 * LANES).min(w - 2 * i0);
                for (dy, pair) in y.chunks_exact(2).enumerate().take(out_rows - 2 * k) {
                    let mut line = [0.0f32; 2 * LANES];
                    for l in 0..LANES {
                        line[2 * l] = pair[0][l];
                        line[2 * l + 1] = pair[1][l];
                    }
                    piece[(2 * k + dy) * w + 2 * i0..][..cols].copy_from_slice(&line[..cols]);
                }
            }
        }
    }
}

multiversion! {
    /// One image's tiles, at least [`LANES`] to a row, through the ReLU and the 2×2 max-pool: `out` (`pw` wide)
    /// and `which` get each whole tile's winner (see [`pool`]).
    fn pooled_segment(m: [&[f32]; XI], tw: usize, bias: f32, out: &mut [f32], which: &mut [u8], pw: usize) {
        let mut y = [[0.0f32; LANES]; 4];
        for (k, (out, which)) in out.chunks_exact_mut(pw.max(1)).zip(which.chunks_exact_mut(pw.max(1))).enumerate() {
            for i0 in blocks(tw).take_while(|&i0| i0 < pw) {
                transform_output(&m, k * tw + i0, bias, true, &mut y);
                let (best, at) = pool(&y);
                let n = LANES.min(pw - i0);
                out[i0..i0 + n].copy_from_slice(&best[..n]);
                which[i0..i0 + n].copy_from_slice(&at[..n]);
            }
        }
    }
}

/// The largest of each lane's four outputs and which it was (`2·dy + dx`; the first of equals, as `max_pool2d`
/// picks).
#[inline(always)]
fn pool(y: &[[f32; LANES]; 4]) -> ([f32; LANES], [u8; LANES]) {
    let (mut best, mut at) = (y[0], [0u8; LANES]);
    for (j, y) in y.iter().enumerate().skip(1) {
        for l in 0..LANES {
            if y[l] > best[l] {
                best[l] = y[l];
                at[l] = j as u8;
            }
        }
    }
    (best, at)
}

multiversion! {
    /// A narrow chunk's tiles `Aᵀ·M·A` (+ `bias`, then a ReLU if `relu`) of one channel, sixteen at a time across
    /// rows and images, each group's outputs scattered to its place (see [`Narrow`]) in the channel's `pieces`, or
    /// pooled there.
    #[allow(clippy::too_many_arguments)]
    fn output_scattered(
        m: [&[f32]; XI],
        bias: f32,
        relu: bool,
        group: usize,
        places: &[Place],
        pieces: &mut [Dest],
        w: usize,
    ) {
        by_group!(group, output_groups(m, bias, relu, places, pieces, w))
    }
}

#[inline(always)]
fn output_groups<const G: usize>(
    m: [&[f32]; XI],
    bias: f32,
    relu: bool,
    places: &[Place],
    pieces: &mut [Dest],
    w: usize,
) {
    let mut y = [[0.0f32; LANES]; 4];
    let mut line = [0.0f32; 2 * LANES];
    for b in blocks(places.len() * G) {
        transform_output(&m, b, bias, relu, &mut y);
        let (best, win) = pool(&y);
        for (l, p) in (0..LANES).step_by(G).zip(&places[b / G..]) {
            match &mut pieces[p.piece] {
                Dest::Full(piece) => {
                    let at = 2 * p.k * w + 2 * p.i;
                    for (dy, pair) in y.chunks_exact(2).enumerate().take(1 + usize::from(p.below)) {
                        let row = &mut piece[at + dy * w..];
                        if G == 1 {
                            // Stored one by one: a two-entry line would be stored by halves and then read whole,
                            // which store forwarding cannot serve.
                            row[0] = pair[0][l];
                            if p.cols == 2 {
                                row[1] = pair[1][l];
                            }
                            continue;
                        }
                        // The group's two output columns a tile, interleaved in registers, then stored: a fixed
                        // size where the group is whole, so the copy is a move rather than a call.
                        for j in 0..G {
                            line[2 * j] = pair[0][l + j];
                            line[2 * j + 1] = pair[1][l + j];
                        }
                        if p.cols == 2 * G {
                            row[..2 * G].copy_from_slice(&line[..2 * G]);
                        } else {
                            row[..p.cols].copy_from_slice(&line[..p.cols]);
                        }
                    }
                }
                // Floor mode: a tile without its right column or bottom row has no pooled output.
                Dest::Pooled(out, which) if p.below => {
                    let (at, n) = (p.k * (w / 2) + p.i, p.cols / 2);
                    out[at..at + n].copy_from_slice(&best[l..l + n]);
                    which[at..at + n].copy_from_slice(&win[l..l + n]);
                }
                Dest::Pooled(..) => {}
            }
        }
    }
}

/// `Aᵀ·M·A` (+ `bias`, then a ReLU if `relu`) of the sixteen tiles from `at` (the first `n` real): outputs
/// (0, 0), (0, 1), (1, 0), (1, 1) of each into `y`, lane by lane.
#[inline(always)]
fn transform_output(m: &[&[f32]; XI], at: usize, bias: f32, relu: bool, y: &mut [[f32; LANES]; 4]) {
    let mut g = [[0.0f32; LANES]; XI];
    for (g, m) in g.iter_mut().zip(m) {
        *g = load(m, at);
    }
    for l in 0..LANES {
        // Aᵀ·M: two rows of four, then (Aᵀ·M)·A.
        let mut r = [[0.0f32; 4]; 2];
        for j in 0..4 {
            r[0][j] = g[j][l] + g[4 + j][l] + g[8 + j][l];
            r[1][j] = g[4 + j][l] - g[8 + j][l] - g[12 + j][l];
        }
        y[0][l] = r[0][0] + r[0][1] + r[0][2] + bias;
        y[1][l] = r[0][1] - r[0][2] - r[0][3] + bias;
        y[2][l] = r[1][0] + r[1][1] + r[1][2] + bias;
        y[3][l] = r[1][1] - r[1][2] - r[1][3] + bias;
    }
    if relu {
        y.iter_mut().flatten().for_each(|v| *v = v.max(0.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::kernels::testutil::{
        affordable, assert_close, check_forward, conv_weight_grad_direct, rand_vec,
    };

    /// Every way the tiles are cut: narrow rows gathered across images a tile at a time (1×1 to 7 wide, and 6 and
    /// 14) or in groups of 2, 4 and 8 (4, 7, 8, 11, 12, 15, 16 wide), wide rows with a partial last block and odd
    /// widths and heights, one chunk shared out or many, chunk boundaries inside an image.
    #[test]
    fn forward_matches_the_direct_sum() {
        let sh = |n, c_in, c_out, h, w| Conv2dShape { n, c_in, h, w, c_out, kh: 3, kw: 3, stride: 1, pad: 1 };
        let shapes = [
            sh(3, 2, 3, 1, 1),
            sh(5, 3, 2, 2, 2),
            sh(4, 2, 3, 5, 7),
            sh(70, 2, 3, 4, 4),
            sh(2, 3, 2, 16, 16),
            sh(3, 2, 4, 33, 17),
            sh(6, 2, 2, 40, 31),
            sh(1, 4, 3, 9, 64),
            sh(30, 2, 2, 14, 14),
            sh(25, 2, 3, 9, 7),
            sh(5, 3, 2, 6, 6),
            sh(16, 2, 2, 14, 16),
            sh(4, 3, 2, 11, 12),
            sh(3, 2, 3, 9, 15),
            sh(20, 2, 2, 8, 8),
        ];
        for (k, s) in shapes.iter().enumerate() {
            if !affordable(s.n * s.c_out * s.h * s.w * s.c_in * 9) {
                continue;
            }
            check_forward(s, k as u64, "winograd", |x, w, b, out| conv(s, x, w, b, out));
        }
    }

    /// The weight gradient against its definition in f64, Σ dout[b,o,y,x]·x[b,i,y+ky-1,x+kx-1], over narrow and
    /// wide tile rows, odd sizes, one chunk or many, and more chunks than partial sums.
    #[test]
    fn weight_grad_matches_the_direct_sum() {
        let sh = |n, c_in, c_out, h, w| Conv2dShape { n, c_in, h, w, c_out, kh: 3, kw: 3, stride: 1, pad: 1 };
        for (k, s) in [
            sh(3, 2, 3, 5, 7),
            sh(70, 3, 2, 4, 4),
            sh(3, 2, 4, 33, 17),
            sh(40, 2, 3, 20, 36),
            sh(16, 2, 3, 14, 16),
            sh(5, 3, 2, 11, 12),
        ]
        .iter()
        .enumerate()
        {
            if !affordable(s.n * s.c_out * s.h * s.w * s.c_in * 9) {
                continue;
            }
            let x = rand_vec(s.n * s.c_in * s.h * s.w, 300 + k as u64);
            let dout = rand_vec(s.n * s.c_out * s.h * s.w, 400 + k as u64);
            let want: Vec<f32> = conv_weight_grad_direct(s, &x, &dout).iter().map(|&v| v as f32).collect();
            let mut dw = vec![f32::NAN; want.len()];
            weight_grad(s, &x, &dout, &mut dw);
            assert_close(&dw, &want, 1e-4, &format!("weight_grad {s:?}"));
        }
    }

    /// The input gradient is the adjoint of the forward convolution, so
    /// ⟨conv(x), g⟩ = ⟨x, conv'(g)⟩ for any x and g.
    #[test]
    fn input_grad_is_the_adjoint() {
        let s = Conv2dShape { n: 3, c_in: 4, h: 9, w: 20, c_out: 5, kh: 3, kw: 3, stride: 1, pad: 1 };
        let x = rand_vec(s.n * s.c_in * s.h * s.w, 7);
        let w = rand_vec(s.c_out * s.c_in * 9, 8);
        let g = rand_vec(s.n * s.c_out * s.h * s.w, 9);
        let mut y = vec![0.0; g.len()];
        conv(&s, &x, &w, None, ConvOutput::Plain(&mut y));
        let mut dx = vec![0.0; x.len()];
        input_grad(&s, &g, &w, &mut dx);
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>();
        let (lhs, rhs) = (dot(&y, &g), dot(&x, &dx));
        assert!((lhs - rhs).abs() <= 1e-4 * lhs.abs().max(1.0), "{lhs} vs {rhs}");
    }
}
