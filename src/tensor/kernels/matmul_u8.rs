//! Matmuls whose left operand is raw u8 pixels. Training batches stay u8 in memory; widening
//! a whole batch to f32 first would move 4× the bytes, so A is widened in tiles that stay in
//! L2 and fed to the GEMM tile by tile. The few-column weight gradient of the linear model
//! skips GEMM: axpy loops read the u8 rows directly and never materialise f32 pixels. Which
//! of the two wins where was measured (bench/README.md, "Figures behind the code").
//!
//! Work is split by output rows (forward) or output columns of Aᵀ·G (backward), so every
//! output element is summed by one thread in an order fixed by the shapes: bit-identical
//! results run to run, whatever the thread count.

use rayon::prelude::*;

use super::matmul::{sgemm, sgemm_serial};

/// Up to this many gradient columns, axpy loops beat GEMM (which cannot fill its register tile).
const SMALL_N: usize = 4;
/// f32 elements in one widened tile of A: 256 KiB, leaving L2 room for B/G and the output.
const TILE_ELEMS: usize = 64 * 1024;
/// Rows of A per forward task in the GEMM path; also the tile height.
const FWD_ROWS: usize = 32;
/// Columns of A (rows of the output) per backward task in the GEMM path.
const TN_COLS: usize = 256;
/// Rows of A per forward task in the dot-product path.
const DOT_ROWS: usize = 8;
/// Columns of A per backward task in the axpy path: n accumulators of this length stay in L1.
const AXPY_COLS: usize = 2048;

/// out = scale·(A as f32)·B, with A `[m,k]` u8 and out `[m,n]` row-major (overwritten), and B `[k,n]` read with
/// strides `rsb`, `csb` (so a Linear layer's `[n,k]` weight serves as Wᵀ without a copy).
#[allow(clippy::too_many_arguments)]
pub fn matmul_u8(
    m: usize,
    k: usize,
    n: usize,
    scale: f32,
    a: &[u8],
    b: &[f32],
    rsb: usize,
    csb: usize,
    out: &mut [f32],
) {
    assert_eq!(a.len(), m * k, "matmul_u8: a is not [m,k]");
    assert!(k == 0 || n == 0 || b.len() > (k - 1) * rsb + (n - 1) * csb, "matmul_u8: b does not cover [k,n]");
    assert_eq!(out.len(), m * n, "matmul_u8: out is not [m,n]");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        out.fill(0.0);
        return;
    }
    if n <= SMALL_N && rsb == 1 {
        // B's columns are contiguous (a Linear weight, or a one-column `w`): a dot product per output, reading the
        // u8 row once and never widening it to memory.
        out.par_chunks_mut(DOT_ROWS * n).zip(a.par_chunks(DOT_ROWS * k)).for_each(|(o, a_rows)| {
            for (o_row, a_row) in o.chunks_exact_mut(n).zip(a_rows.chunks_exact(k)) {
                for (j, ov) in o_row.iter_mut().enumerate() {
                    *ov = scale * dot_u8(a_row, &b[j * csb..j * csb + k]);
                }
            }
        });
        return;
    }
    let kt = (TILE_ELEMS / FWD_ROWS).min(k);
    let threaded = m <= FWD_ROWS;
    out.par_chunks_mut(FWD_ROWS * n).zip(a.par_chunks(FWD_ROWS * k)).for_each(|(o, a_rows)| {
        let rows = o.len() / n;
        let mut tile = vec![0.0f32; rows * kt];
        for k0 in (0..k).step_by(kt) {
            let kw = kt.min(k - k0);
            let tile = &mut tile[..rows * kw];
            for (dst, src) in tile.chunks_exact_mut(kw).zip(a_rows.chunks_exact(k)) {
                widen(&src[k0..k0 + kw], dst);
            }
            let beta = if k0 == 0 { 0.0 } else { 1.0 };
            let gemm = if threaded { sgemm } else { sgemm_serial };
            gemm(
                rows,
                kw,
                n,
                scale,
                tile,
                kw as isize,
                1,
                &b[k0 * rsb..],
                rsb as isize,
                csb as isize,
                beta,
                o,
                n as isize,
                1,
            );
        }
    });
}

/// out = scale·(A as f32)ᵀ·G + beta·out, with A `[m,k]` u8, G `[m,n]`, out `[k,n]`, all
/// row-major: the weight gradient of `x·w` for u8 `x`. `beta == 0` overwrites out.
#[allow(clippy::too_many_arguments)]
pub fn matmul_u8_tn(m: usize, k: usize, n: usize, scale: f32, a: &[u8], g: &[f32], out: &mut [f32], beta: f32) {
    assert_eq!(a.len(), m * k, "matmul_u8_tn: a is not [m,k]");
    assert_eq!(g.len(), m * n, "matmul_u8_tn: g is not [m,n]");
    assert_eq!(out.len(), k * n, "matmul_u8_tn: out is not [k,n]");
    if k == 0 || n == 0 {
        return;
    }
    if m == 0 {
        out.iter_mut().for_each(|o| *o = if beta == 0.0 { 0.0 } else { beta * *o });
        return;
    }
    if n <= SMALL_N {
        out.par_chunks_mut(AXPY_COLS * n).enumerate().for_each(|(chunk, o)| {
            let j0 = chunk * AXPY_COLS;
            let cols = o.len() / n;
            // One accumulator row per output column, summed over i in order.
            let mut acc = vec![0.0f32; n * cols];
            for (a_row, g_row) in a.chunks_exact(k).zip(g.chunks_exact(n)) {
                let a_seg = &a_row[j0..j0 + cols];
                for (acc_c, &gv) in acc.chunks_exact_mut(cols).zip(g_row) {
                    axpy_u8(gv, a_seg, acc_c);
                }
            }
            for (j, o_row) in o.chunks_exact_mut(n).enumerate() {
                for (c, ov) in o_row.iter_mut().enumerate() {
                    let v = scale * acc[c * cols + j];
                    *ov = if beta == 0.0 { v } else { v + beta * *ov };
                }
            }
        });
        return;
    }
    let mt = (TILE_ELEMS / TN_COLS).min(m);
    let threaded = k <= TN_COLS;
    out.par_chunks_mut(TN_COLS * n).enumerate().for_each(|(chunk, o)| {
        let j0 = chunk * TN_COLS;
        let cols = o.len() / n;
        let mut tile = vec![0.0f32; mt * cols];
        for i0 in (0..m).step_by(mt) {
            let rows = mt.min(m - i0);
            let tile = &mut tile[..rows * cols];
            for (dst, src) in tile.chunks_exact_mut(cols).zip(a[i0 * k..(i0 + rows) * k].chunks_exact(k)) {
                widen(&src[j0..j0 + cols], dst);
            }
            let beta = if i0 == 0 { beta } else { 1.0 };
            let gemm = if threaded { sgemm } else { sgemm_serial };
            gemm(
                cols,
                rows,
                n,
                scale,
                tile,
                1,
                cols as isize,
                &g[i0 * n..(i0 + rows) * n],
                n as isize,
                1,
                beta,
                o,
                n as isize,
                1,
            );
        }
    });
}

multiversion! {
    /// Σ a·b over 64 independent lanes (so it vectorises and the FMA latency is hidden), folded in a fixed tree:
    /// the order depends on the length alone.
    fn dot_u8(a: &[u8], b: &[f32]) -> f32 {
        const LANES: usize = 64;
        let mut acc = [0.0f32; LANES];
        let main = a.len() / LANES * LANES;
        for (ca, cb) in a[..main].chunks_exact(LANES).zip(b[..main].chunks_exact(LANES)) {
            for l in 0..LANES {
                acc[l] += ca[l] as f32 * cb[l];
            }
        }
        let tail: f32 = a[main..].iter().zip(&b[main..]).map(|(&x, &y)| x as f32 * y).sum();
        let mut width = LANES;
        while width > 1 {
            width /= 2;
            for l in 0..width {
                acc[l] += acc[l + width];
            }
        }
        acc[0] + tail
    }
}

multiversion! {
    fn axpy_u8(alpha: f32, x: &[u8], y: &mut [f32]) {
        for (yv, &xv) in y.iter_mut().zip(x) {
            *yv += xv as f32 * alpha;
        }
    }
}

multiversion! {
    fn widen(src: &[u8], dst: &mut [f32]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = s as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::kernels::testutil::{affordable, assert_close, bit_identical, rand_vec};

    fn rand_u8(len: usize, seed: u64) -> Vec<u8> {
        rand_vec(len, seed).iter().map(|v| ((v + 1.0) * 127.9) as u8).collect()
    }

    fn naive_nn(m: usize, k: usize, n: usize, scale: f32, a: &[u8], b: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k).map(|p| a[i * k + p] as f64 * b[p * n + j] as f64).sum();
                out[i * n + j] = (scale as f64 * s) as f32;
            }
        }
        out
    }

    #[test]
    fn forward_matches_naive() {
        // k values straddle the widened-tile width (2048) and the lane width (32).
        for &(m, k, n) in
            &[(1, 1, 1), (1, 2049, 1), (5, 4100, 2), (3, 33, 10), (40, 2049, 10), (33, 100, 5), (64, 70, 4), (2, 0, 3)]
        {
            if !affordable(m * k * n) {
                continue;
            }
            let a = rand_u8(m * k, 1);
            let b = rand_vec(k * n, 2);
            let mut out = vec![f32::NAN; m * n];
            matmul_u8(m, k, n, 1.0 / 255.0, &a, &b, n, 1, &mut out);
            let want = naive_nn(m, k, n, 1.0 / 255.0, &a, &b);
            assert_close(&out, &want, 1e-4, "matmul_u8");
            // The same B stored transposed ([n,k], as a Linear weight), read through strides.
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            matmul_u8(m, k, n, 1.0 / 255.0, &a, &bt, 1, k, &mut out);
            assert_close(&out, &want, 1e-4, "matmul_u8, strided B");
        }
    }

    #[test]
    fn backward_matches_naive() {
        // k straddles both column partitions (256, 2048); m straddles the 256-row tiles.
        for &(m, k, n) in
            &[(1, 1, 1), (1, 2049, 1), (7, 4100, 2), (3, 300, 10), (300, 257, 10), (64, 3000, 4), (0, 5, 6)]
        {
            if !affordable(m * k * n) {
                continue;
            }
            let a = rand_u8(m * k, 3);
            let g = rand_vec(m * n, 4);
            let prior = rand_vec(k * n, 5);
            // Aᵀ·G is A·B with A read transposed: reuse the forward reference on a copy.
            let mut at = vec![0u8; m * k];
            for i in 0..m {
                for p in 0..k {
                    at[p * m + i] = a[i * k + p];
                }
            }
            let prod = naive_nn(k, m, n, 0.5, &at, &g);
            // Long sums of u8-sized terms cancel: bound the error by Σ|terms|, not the result.
            let g_abs: Vec<f32> = g.iter().map(|v| v.abs()).collect();
            let bound = naive_nn(k, m, n, 0.5, &at, &g_abs);
            for beta in [0.0, 0.25] {
                let mut out = if beta == 0.0 { vec![f32::NAN; k * n] } else { prior.clone() };
                matmul_u8_tn(m, k, n, 0.5, &a, &g, &mut out, beta);
                let want: Vec<f32> = if beta == 0.0 {
                    prod.clone()
                } else {
                    prod.iter().zip(&prior).map(|(p, q)| p + beta * q).collect()
                };
                for ((o, w), b) in out.iter().zip(&want).zip(&bound) {
                    assert!((o - w).abs() <= 1e-5 * (b + 1.0), "matmul_u8_tn {m}x{k}x{n}: {o} vs {w}");
                }
            }
        }
    }

    #[test]
    fn deterministic() {
        let (m, k) = if cfg!(miri) { (8, 2100) } else { (64, 9000) };
        let a = rand_u8(m * k, 6);
        for n in [1, 2, 10] {
            let b = rand_vec(k * n, 7);
            let g = rand_vec(m * n, 8);
            let fwd = || {
                let mut o = vec![0.0; m * n];
                matmul_u8(m, k, n, 0.1, &a, &b, n, 1, &mut o);
                o
            };
            let bwd = || {
                let mut o = vec![0.0; k * n];
                matmul_u8_tn(m, k, n, 0.1, &a, &g, &mut o, 0.0);
                o
            };
            assert!(bit_identical(&fwd(), &fwd()));
            assert!(bit_identical(&bwd(), &bwd()));
        }
    }
}
