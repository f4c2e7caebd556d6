//! Hot numeric kernels: plain functions over slices, each forward beside its backward.
//!
//! Every reduction runs in an order fixed by the shapes alone (never by thread timing), so
//! repeated calls give bit-identical results.

/// Compiles `body` twice, for the build's target and with AVX-512 enabled, and picks at run
/// time. Both copies perform the same IEEE operations in the same order (Rust never fuses
/// `a * b + c` on its own), so results do not depend on which one runs.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])* $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
                fn wide($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: every feature `wide` is compiled for was just detected.
                    return unsafe { wide($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

multiversion! {
    /// Sum of a slice, accurate enough for statistics over whole batches: 16 independent f32
    /// lanes over blocks of 1024 (so it vectorises and no lane sums more than 64 terms), with
    /// block totals carried in f64. The order is fixed by the length alone.
    pub(crate) fn sum_f64(x: &[f32]) -> f64 {
        let mut total = 0.0f64;
        for block in x.chunks(1024) {
            let mut acc = [0.0f32; 16];
            let (chunks, tail) = block.as_chunks::<16>();
            for chunk in chunks {
                for l in 0..16 {
                    acc[l] += chunk[l];
                }
            }
            let tail: f32 = tail.iter().sum();
            total += (fold_lanes(lanes_apart(acc)) + tail) as f64;
        }
        total
    }
}

/// `lanes` as they are, hidden from the optimiser. Seeing [`fold_lanes`] take them apart in halves, LLVM built the
/// accumulating loop on 4-float pieces, or on one lane at a time (`vmovss`, `vinsertps`): most of batch norm's time.
/// Cut off from the fold, the loop adds 16 floats per instruction; the values and their order are unchanged.
#[inline(always)]
fn lanes_apart<T>(lanes: T) -> T {
    std::hint::black_box(lanes)
}

/// The 16 lanes of a blocked sum added pairwise (halves, then quarters, …): a fixed order.
#[inline(always)]
fn fold_lanes(mut acc: [f32; 16]) -> f32 {
    let mut width = 16;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            acc[l] += acc[l + width];
        }
    }
    acc[0]
}

multiversion! {
    /// [Σ (y−ν), Σ (x−μ)·(y−ν)], in one pass, accurate as [`sum_f64`] is: 16 independent f32 lanes over blocks of
    /// 1024 (so it vectorises and no lane sums more than 64 terms), block totals carried in f64. The order is fixed
    /// by the length alone. Batch norm's mean is `dev_sums(x, 0, x, 0)[0]` and its variance
    /// `dev_sums(x, μ, x, μ)[1]` (deviations from the mean: nothing cancels), its backward's Σdy and Σdy·(x−μ)
    /// `dev_sums(x, μ, dy, 0)`.
    pub(crate) fn dev_sums(x: &[f32], mu: f64, y: &[f32], nu: f64) -> [f64; 2] {
        assert_eq!(x.len(), y.len(), "dev_sums: lengths differ");
        let (mu, nu) = (mu as f32, nu as f32);
        let mut total = [0.0f64; 2];
        for (xb, yb) in x.chunks(1024).zip(y.chunks(1024)) {
            let (mut sum, mut dot) = ([0.0f32; 16], [0.0f32; 16]);
            let ((xc, xt), (yc, yt)) = (xb.as_chunks::<16>(), yb.as_chunks::<16>());
            for (xs, ys) in xc.iter().zip(yc) {
                for l in 0..16 {
                    let dy = ys[l] - nu;
                    sum[l] += dy;
                    dot[l] += (xs[l] - mu) * dy;
                }
            }
            let (sum, dot) = lanes_apart((sum, dot));
            let (mut sum, mut dot) = (fold_lanes(sum), fold_lanes(dot));
            for (&a, &b) in xt.iter().zip(yt) {
                sum += b - nu;
                dot += (a - mu) * (b - nu);
            }
            total[0] += sum as f64;
            total[1] += dot as f64;
        }
        total
    }
}

use rayon::prelude::*;

/// Elementwise passes over at least this many values split over the threads. Below it, waking a second thread
/// costs more than the pass saves (a training batch's activations); above, the pass runs on both cores (the hidden
/// layer of a 1000-image inference batch).
const PAR_MAP_MIN: usize = 1 << 18;

/// A new vector of `len` values: chunk `range` of it is `values(range)`, the chunks written on both threads when
/// `len` is large. Each chunk is a plain loop over slices (rayon's `collect` hands values over one at a time, a loop
/// that does not vectorise); the result does not depend on the split.
fn written<I: Iterator<Item = f32>>(len: usize, values: impl Fn(std::ops::Range<usize>) -> I + Sync) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    let write = |start: usize, chunk: &mut [std::mem::MaybeUninit<f32>]| {
        let len = chunk.len();
        let n = chunk.iter_mut().zip(values(start..start + len)).map(|(slot, v)| slot.write(v)).count();
        assert_eq!(n, len, "written: a chunk's values ran short");
    };
    let slots = &mut out.spare_capacity_mut()[..len];
    if len < PAR_MAP_MIN {
        write(0, slots);
    } else {
        let chunk = PAR_MAP_MIN / 4;
        slots.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| write(i * chunk, c));
    }
    // SAFETY: `slots` is the first `len` entries of the capacity, and every chunk of it was written in full (the
    // assert above panics before this line otherwise).
    unsafe { out.set_len(len) };
    out
}

/// `f` of each element, on both threads for large slices; the result does not depend on the split.
pub(crate) fn map(x: &[f32], f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
    written(x.len(), |r| x[r].iter().map(|&v| f(v)))
}

/// `len` zeros, for an op's output or gradient that its kernel then writes: a batch's activations zeroed by the one
/// thread that allocates them (the op's caller) would leave the other core idle for as long, so large ones are
/// written by both.
pub(crate) fn zeros(len: usize) -> Vec<f32> {
    written(len, |r| std::iter::repeat_n(0.0, r.len()))
}

/// acc += x elementwise, on both threads for large slices (a gradient that reaches a tensor along two paths, as a
/// residual block's input does).
pub(crate) fn add_assign(acc: &mut [f32], x: &[f32]) {
    assert_eq!(acc.len(), x.len(), "add_assign: lengths differ");
    let add = |(a, b): (&mut [f32], &[f32])| a.iter_mut().zip(b).for_each(|(a, &b)| *a += b);
    if acc.len() < PAR_MAP_MIN {
        return add((acc, x));
    }
    acc.par_chunks_mut(PAR_MAP_MIN / 4).zip(x.par_chunks(PAR_MAP_MIN / 4)).for_each(add);
}

/// `f::<G>(…)` for `g` of 8, 4, 2 or 1 (any other: 1), so that code generic over a width of consecutive entries
/// (a Winograd group of tiles, a block of pairs to split) gets each width's copies at a fixed size.
macro_rules! by_group {
    ($g:expr, $f:ident($($arg:expr),*)) => {
        match $g {
            8 => $f::<8>($($arg),*),
            4 => $f::<4>($($arg),*),
            2 => $f::<2>($($arg),*),
            _ => $f::<1>($($arg),*),
        }
    };
}

multiversion! {
    /// `src`'s even entries into `even`, its odd ones into `odd`, from the start of each: sixteen pairs at a time
    /// from a fixed-size block, which compiles to two shuffles where a loop over pairs stays scalar, then a block
    /// of eight, four and two pairs for what is left (rows of 16, 8 and 4: ResNet's small planes), then single
    /// entries. Winograd's tiles and the phases of a stride-2 im2col read planes split this way.
    pub(crate) fn deinterleave(src: &[f32], even: &mut [f32], odd: &mut [f32]) {
        let mut done = 0;
        while src.len() - done >= 32 {
            pairs::<16>(&src[done..], &mut even[done / 2..], &mut odd[done / 2..]);
            done += 32;
        }
        for n in [8, 4, 2] {
            if src.len() - done >= 2 * n {
                by_group!(n, pairs(&src[done..], &mut even[done / 2..], &mut odd[done / 2..]));
                done += 2 * n;
            }
        }
        for j in done..src.len() {
            if j % 2 == 0 {
                even[j / 2] = src[j];
            } else {
                odd[j / 2] = src[j];
            }
        }
    }
}

/// The first `N` pairs of `src`, split into `even` and `odd`; a fixed size, so the loop unrolls into shuffles.
#[inline(always)]
fn pairs<const N: usize>(src: &[f32], even: &mut [f32], odd: &mut [f32]) {
    let (src, e, o) = (&src[..2 * N], &mut even[..N], &mut odd[..N]);
    for l in 0..N {
        e[l] = src[2 * l];
        o[l] = src[2 * l + 1];
    }
}

/// `f` of each pair of elements, as [`map`].
pub(crate) fn zip_map(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "zip_map: lengths differ");
    written(a.len(), |r| a[r.clone()].iter().zip(&b[r]).map(|(&x, &y)| f(x, y)))
}

pub mod batchnorm;
pub mod conv;
pub mod linear;
pub mod matmul;
pub mod matmul_u8;
pub mod pool;
mod spin_pool;
mod tapwise;
mod winograd;

#[cfg(test)]
pub(crate) mod testutil {
    use super::conv::{Conv2dShape, ConvOutput};

    /// Uniform values in [-1, 1) from a xorshift stream: reproducible without a dependency.
    pub fn rand_vec(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
            })
            .collect()
    }

    pub fn assert_close(got: &[f32], want: &[f32], rtol: f32, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= rtol * (1.0 + w.abs()), "{what}: index {i}: got {g}, want {w}");
        }
    }

    /// A convolution by its definition in f64 (no code shared with the kernels):
    /// out[b][o][y][x] = bias[o] + Σ w[o][i][ky][kx]·x[b][i][y·stride+ky−pad][x·stride+kx−pad].
    pub fn conv_direct(s: &Conv2dShape, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f64> {
        let mut out = Vec::with_capacity(s.n * s.c_out * s.out_h() * s.out_w());
        for (b, o, oy, ox) in outputs(s) {
            let mut acc = bias.map_or(0.0, |bv| bv[o] as f64);
            for (i, ky, kx, iy, ix) in window(s, oy, ox) {
                acc += x[((b * s.c_in + i) * s.h + iy) * s.w + ix] as f64
                    * w[((o * s.c_in + i) * s.kh + ky) * s.kw + kx] as f64;
            }
            out.push(acc);
        }
        out
    }

    /// The weight gradient by its definition in f64: dw[o][i][ky][kx] = Σ dout[b][o][y][x]·x[b][i][iy][ix] over the
    /// outputs whose window puts input pixel (iy, ix) under tap (ky, kx).
    pub fn conv_weight_grad_direct(s: &Conv2dShape, x: &[f32], dout: &[f32]) -> Vec<f64> {
        let mut dw = vec![0.0f64; s.c_out * s.c_in * s.kh * s.kw];
        for (j, (b, o, oy, ox)) in outputs(s).enumerate() {
            for (i, ky, kx, iy, ix) in window(s, oy, ox) {
                dw[((o * s.c_in + i) * s.kh + ky) * s.kw + kx] +=
                    dout[j] as f64 * x[((b * s.c_in + i) * s.h + iy) * s.w + ix] as f64;
            }
        }
        dw
    }

    /// `conv`, a kernel's forward pass `(x, w, bias, out)` for the 3×3 shape `s`, against [`conv_direct`] on seeded
    /// data: plain and through a ReLU to 1e-5, and the fused ReLU + 2×2 max-pool exactly as pooling its own ReLU
    /// output (each window's first maximum, an odd last row or column dropped).
    pub fn check_forward(
        s: &Conv2dShape,
        seed: u64,
        what: &str,
        conv: impl Fn(&[f32], &[f32], Option<&[f32]>, ConvOutput),
    ) {
        let x = rand_vec(s.n * s.c_in * s.h * s.w, 1 + seed);
        let w = rand_vec(s.c_out * s.c_in * 9, 100 + seed);
        let b = rand_vec(s.c_out, 200 + seed);
        let want: Vec<f32> = conv_direct(s, &x, &w, Some(&b)).iter().map(|&v| v as f32).collect();
        let mut out = vec![f32::NAN; want.len()];
        conv(&x, &w, Some(&b), ConvOutput::Plain(&mut out));
        assert_close(&out, &want, 1e-5, &format!("{what} {s:?}"));
        conv(&x, &w, Some(&b), ConvOutput::Relu(&mut out));
        let relu: Vec<f32> = want.iter().map(|v| v.max(0.0)).collect();
        assert_close(&out, &relu, 1e-5, &format!("{what} relu {s:?}"));
        let (ph, pw) = (s.h / 2, s.w / 2);
        let (mut pooled, mut which) = (vec![f32::NAN; s.n * s.c_out * ph * pw], vec![9u8; s.n * s.c_out * ph * pw]);
        conv(&x, &w, Some(&b), ConvOutput::ReluMaxPool2 { out: &mut pooled, which: &mut which });
        for (j, (&got, &at)) in pooled.iter().zip(&which).enumerate() {
            let (plane, py, px) = (j / (ph * pw), j % (ph * pw) / pw, j % pw);
            let window = [0, 1, 2, 3].map(|d| out[(plane * s.h + 2 * py + d / 2) * s.w + 2 * px + d % 2]);
            let best = (1..4).fold(0, |b, d| if window[d] > window[b] { d } else { b });
            assert_eq!((got.to_bits(), at as usize), (window[best].to_bits(), best), "{what} pooled {s:?} at {j}");
        }
    }

    /// Every output (image, channel, y, x) in memory order.
    fn outputs(s: &Conv2dShape) -> impl Iterator<Item = (usize, usize, usize, usize)> + '_ {
        let (oh, ow) = (s.out_h(), s.out_w());
        (0..s.n).flat_map(move |b| {
            (0..s.c_out).flat_map(move |o| (0..oh).flat_map(move |y| (0..ow).map(move |x| (b, o, y, x))))
        })
    }

    /// The (channel, ky, kx, iy, ix) of each input pixel inside the window of output (oy, ox).
    fn window(s: &Conv2dShape, oy: usize, ox: usize) -> impl Iterator<Item = (usize, usize, usize, usize, usize)> + '_ {
        (0..s.c_in).flat_map(move |i| {
            (0..s.kh).flat_map(move |ky| {
                (0..s.kw).filter_map(move |kx| {
                    let iy = (oy * s.stride + ky).checked_sub(s.pad).filter(|&iy| iy < s.h)?;
                    let ix = (ox * s.stride + kx).checked_sub(s.pad).filter(|&ix| ix < s.w)?;
                    Some((i, ky, kx, iy, ix))
                })
            })
        })
    }

    pub fn bit_identical(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    /// Whether a case of this many multiply-adds runs: always natively; under Miri (`.ci/miri`), which interprets
    /// every operation, only the small ones, so the suite ends in minutes rather than hours.
    pub fn affordable(macs: usize) -> bool {
        !cfg!(miri) || macs <= 1 << 17
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{bit_identical, rand_vec};
    use super::{map, zip_map, PAR_MAP_MIN};

    #[test]
    fn maps_split_over_threads_match_one_pass() {
        for len in [10, PAR_MAP_MIN + 7] {
            let (a, b) = (rand_vec(len, 1), rand_vec(len, 2));
            // Arithmetic rather than `exp`: Miri gives transcendental functions a random last-bit error on each call
            // (as libm's differ between platforms), so two passes of `exp` need not agree there.
            let affine = |x: f32| x * 1.5 - 0.25;
            let want: Vec<f32> = a.iter().map(|&x| affine(x)).collect();
            assert!(bit_identical(&map(&a, affine), &want), "map, {len} values");
            let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| if *y > 0.0 { *x } else { 0.0 }).collect();
            assert!(bit_identical(&zip_map(&a, &b, |x, y| if y > 0.0 { x } else { 0.0 }), &want), "zip_map, {len}");
        }
    }
}
