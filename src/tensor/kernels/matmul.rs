//! The single f32 GEMM entry point. Backed by the `gemm` crate, which beat `matrixmultiply`
//! on crest's shapes (see `bench/gemm_compare.rs`), notably the skinny im2col gradients,
//! and which lets each call choose its parallelism, so kernels already running inside a
//! rayon task can ask for a serial GEMM instead of oversubscribing the two cores.

use super::spin_pool::for_each_chunk_mut;
use gemm_common::Parallelism;

/// Below this many multiply-adds a GEMM runs on one thread: waking the second thread for every small GEMM costs
/// more than it gives, and two vCPUs that share a core's resources gain little from splitting a mid-sized one
/// (bench/README.md, "Figures behind the code").
pub(crate) const PARALLEL_MIN_MACS: usize = 1 << 25;

/// C = alpha·A·B + beta·C for A `[m,k]`, B `[k,n]`, C `[m,n]`, each addressed as
/// `base + row*rs + col*cs`, so a transpose is just swapped strides.
///
/// As in BLAS, `beta == 0` overwrites C without reading it (NaN in C does not leak).
/// Each element of C is produced by one thread with a k-order fixed by the shapes, so
/// results are bit-identical from call to call.
///
/// Panics if a slice does not cover its strided extent, if a stride would reach before
/// the start of its slice, or if two elements of C share an address.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    rsa: isize,
    csa: isize,
    b: &[f32],
    rsb: isize,
    csb: isize,
    beta: f32,
    c: &mut [f32],
    rsc: isize,
    csc: isize,
) {
    gemm_with(true, m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc);
}

/// [`sgemm`] on the calling thread only, for kernels that already parallelise around it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm_serial(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    rsa: isize,
    csa: isize,
    b: &[f32],
    rsb: isize,
    csb: isize,
    beta: f32,
    c: &mut [f32],
    rsc: isize,
    csc: isize,
) {
    gemm_with(false, m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc);
}

#[allow(clippy::too_many_arguments)]
fn gemm_with(
    may_thread: bool,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    rsa: isize,
    csa: isize,
    b: &[f32],
    rsb: isize,
    csb: isize,
    beta: f32,
    c: &mut [f32],
    rsc: isize,
    csc: isize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(extent(m, n, rsc, csc) <= c.len(), "sgemm: C too short");
    assert!(distinct(m, n, rsc, csc), "sgemm: C strides alias elements");
    if k == 0 {
        scale_strided(m, n, beta, c, rsc, csc);
        return;
    }
    assert!(extent(m, k, rsa, csa) <= a.len(), "sgemm: A too short");
    assert!(extent(k, n, rsb, csb) <= b.len(), "sgemm: B too short");
    if n <= FEW_COLS && csa == 1 && rsb == 1 && csc == 1 {
        // Rows of A and columns of B both contiguous: a Linear layer's few outputs, x·Wᵀ.
        let (rsa, csb, rsc) = (rsa as usize, csb as usize, rsc as usize);
        // Dot products are bound by reading A, so a second thread pays off once A is a megabyte (an inference
        // batch of 1000 images, or of their 256 hidden features), not for a training batch of 128.
        if !may_thread || m.saturating_mul(k) < FEW_COLS_PARALLEL_MIN_A {
            few_cols(m, k, n, alpha, a, rsa, b, csb, beta, c, rsc);
            return;
        }
        // Whole blocks of rows per task; every element is computed the same way whatever the split.
        let task_rows = m.div_ceil(rayon::current_num_threads()).next_multiple_of(FEW_ROWS);
        for_each_chunk_mut(c, task_rows * rsc, &|t, c| {
            let i0 = t * task_rows;
            few_cols(task_rows.min(m - i0), k, n, alpha, &a[i0 * rsa..], rsa, b, csb, beta, c, rsc);
        });
        return;
    }
    let threaded = may_thread && m.saturating_mul(k).saturating_mul(n) >= PARALLEL_MIN_MACS;
    let par = if threaded { Parallelism::Rayon(rayon::current_num_threads()) } else { Parallelism::None };
    // Negative strides pass `extent` only on axes of length 1, where they are never applied.
    let [rsa, csa, rsb, csb, rsc, csc] = [rsa, csa, rsb, csb, rsc, csc].map(isize::abs);
    // The microkernels prefer a column-major destination, so a row-major C is computed as Cᵀ = Bᵀ·Aᵀ, as the
    // `gemm` crate's generic front end does before it dispatches to `gemm-f32`: unless that makes gemm copy a
    // large left operand into its panel layout (it copies any that is not column-major) that the other way round
    // is small, as in a convolution's weight gradient dout·colsᵀ, whose cols are nine times dout's size while
    // dW, written in the slower row-major way, is a small result of a long sum.
    let packed = |rows: usize, rs: isize| if rs != 1 { rows * k } else { 0 };
    let transpose = csc < rsc && packed(n, csb) <= packed(m, rsa) + ROW_MAJOR_STORE_COST * m * n;
    let (m, n, a, rsa, csa, b, rsb, csb, rsc, csc) =
        if transpose { (n, m, b, csb, rsb, a, csa, rsa, csc, rsc) } else { (m, n, a, rsa, csa, b, rsb, csb, rsc, csc) };
    // SAFETY: the asserts above keep every strided access inside its slice (transposing swaps the roles of the
    // operands and their strides, not the addresses touched) and make C's elements distinct, so gemm's parallel
    // writes never race; `&mut c` excludes aliasing with A and B. gemm-f32 detects the CPU features of the kernel
    // it picks. It names the scalars the other way round: dst = α·dst + β·lhs·rhs.
    unsafe {
        gemm_f32::gemm::f32::get_gemm_fn()(
            m,
            n,
            k,
            c.as_mut_ptr(),
            csc,
            rsc,
            beta != 0.0,
            a.as_ptr(),
            csa,
            rsa,
            b.as_ptr(),
            csb,
            rsb,
            beta,
            alpha,
            false,
            false,
            false,
            par,
        );
    }
}

/// What a row-major C costs the microkernels, per element, in elements of packing (see `gemm_with`).
const ROW_MAJOR_STORE_COST: usize = 4;

/// Up to this many columns of C, [`few_cols`] beats the GEMM, whose 16-row register tile a 10-class output
/// fills only partly.
pub(crate) const FEW_COLS: usize = 16;

/// Elements of A from which [`few_cols`] splits its rows over the threads.
const FEW_COLS_PARALLEL_MIN_A: usize = 1 << 18;

/// Rows of A per block in [`few_cols`]: each column of B is loaded once per block and used this many times.
const FEW_ROWS: usize = 4;

/// C = alpha·A·B + beta·C as dot products, for contiguous rows of A (`rsa` apart), contiguous columns of B
/// (`csb` apart) and few columns. Each dot product runs in 16 lanes over k (fused multiply-adds) with the lanes
/// summed pairwise, an order fixed by k alone.
#[allow(clippy::too_many_arguments)]
fn few_cols(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    rsa: usize,
    b: &[f32],
    csb: usize,
    beta: f32,
    c: &mut [f32],
    rsc: usize,
) {
    let row = |i: usize| &a[i * rsa..i * rsa + k];
    let col = |j: usize| &b[j * csb..j * csb + k];
    for i in (0..m).step_by(FEW_ROWS) {
        let rows = FEW_ROWS.min(m - i);
        // A short last block repeats its last row; the repeats are computed and dropped.
        let block = std::array::from_fn(|r| row(i + r.min(rows - 1)));
        for j in (0..n).step_by(2) {
            // An odd last column pairs with itself.
            let dots = dot4x2(block, [col(j), col((j + 1).min(n - 1))]);
            for (r, pair) in dots.iter().take(rows).enumerate() {
                for (jj, d) in pair.iter().take(n - j).enumerate() {
                    let at = (i + r) * rsc + j + jj;
                    c[at] = if beta == 0.0 { alpha * d } else { alpha * d + beta * c[at] };
                }
            }
        }
    }
}

multiversion! {
    /// The 4×2 dot products of four rows with two columns, in 16 lanes each (see [`few_cols`]): eight
    /// independent accumulators, enough to keep both FMA units busy.
    fn dot4x2(rows: [&[f32]; FEW_ROWS], cols: [&[f32]; 2]) -> [[f32; 2]; FEW_ROWS] {
        const LANES: usize = 16;
        let k = cols[0].len();
        let [r0, r1, r2, r3] = rows.map(|r| &r[..k]);
        let [v0, v1] = cols.map(|v| &v[..k]);
        // Eight named accumulators: an array of them indexed in a loop ends up in memory, not registers.
        let z = [0.0f32; LANES];
        let (mut a00, mut a01, mut a10, mut a11, mut a20, mut a21, mut a30, mut a31) = (z, z, z, z, z, z, z, z);
        let c = |r| <[f32]>::chunks_exact(r, LANES);
        let blocks = c(v0).zip(c(v1)).zip(c(r0)).zip(c(r1)).zip(c(r2)).zip(c(r3));
        for (((((x0, x1), c0), c1), c2), c3) in blocks {
            for l in 0..LANES {
                a00[l] = c0[l].mul_add(x0[l], a00[l]);
                a01[l] = c0[l].mul_add(x1[l], a01[l]);
                a10[l] = c1[l].mul_add(x0[l], a10[l]);
                a11[l] = c1[l].mul_add(x1[l], a11[l]);
                a20[l] = c2[l].mul_add(x0[l], a20[l]);
                a21[l] = c2[l].mul_add(x1[l], a21[l]);
                a30[l] = c3[l].mul_add(x0[l], a30[l]);
                a31[l] = c3[l].mul_add(x1[l], a31[l]);
            }
        }
        let acc = [[a00, a01], [a10, a11], [a20, a21], [a30, a31]];
        let main = k / LANES * LANES;
        let finish = |mut acc: [f32; LANES], row: &[f32], v: &[f32]| {
            let mut width = LANES;
            while width > 1 {
                width /= 2;
                for l in 0..width {
                    acc[l] += acc[l + width];
                }
            }
            row[main..].iter().zip(&v[main..]).fold(acc[0], |s, (x, y)| x.mul_add(*y, s))
        };
        let mut out = [[0.0f32; 2]; FEW_ROWS];
        for ((o, acc), row) in out.iter_mut().zip(acc).zip([r0, r1, r2, r3]) {
            *o = [finish(acc[0], row, v0), finish(acc[1], row, v1)];
        }
        out
    }
}

/// One past the largest offset a `[rows, cols]` strided view touches. Views start at
/// their slice's first element, so a negative stride can only be allowed on a length-1
/// axis, where it is never applied.
fn extent(rows: usize, cols: usize, rs: isize, cs: isize) -> usize {
    let reach = |len: usize, s: isize| -> usize {
        if len <= 1 {
            return 0;
        }
        assert!(s >= 0, "sgemm: negative stride on an axis of length {len}");
        (len - 1).checked_mul(s as usize).expect("sgemm: extent overflows")
    };
    reach(rows, rs).checked_add(reach(cols, cs)).and_then(|e| e.checked_add(1)).expect("sgemm: extent overflows")
}

/// Whether distinct (row, col) pairs map to distinct offsets. Sufficient test: one axis
/// strides over the whole extent of the other (row- or column-major with any padding).
fn distinct(rows: usize, cols: usize, rs: isize, cs: isize) -> bool {
    let (rs, cs) = (rs.unsigned_abs(), cs.unsigned_abs());
    match (rows > 1, cols > 1) {
        (false, false) => true,
        (true, false) => rs != 0,
        (false, true) => cs != 0,
        (true, true) => (cs != 0 && rs >= cols.saturating_mul(cs)) || (rs != 0 && cs >= rows.saturating_mul(rs)),
    }
}

fn scale_strided(m: usize, n: usize, beta: f32, c: &mut [f32], rsc: isize, csc: isize) {
    for i in 0..m {
        for j in 0..n {
            let idx = i * rsc as usize + j * csc as usize;
            c[idx] = if beta == 0.0 { 0.0 } else { beta * c[idx] };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::kernels::testutil::{affordable, bit_identical, rand_vec};

    #[allow(clippy::too_many_arguments)]
    fn naive(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: &[f32],
        (rsa, csa): (usize, usize),
        b: &[f32],
        (rsb, csb): (usize, usize),
        beta: f32,
        c: &mut [f32],
    ) {
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0f64;
                for p in 0..k {
                    acc += a[i * rsa + p * csa] as f64 * b[p * rsb + j * csb] as f64;
                }
                c[i * n + j] = (alpha as f64 * acc + beta as f64 * c[i * n + j] as f64) as f32;
            }
        }
    }

    #[test]
    fn matches_naive_with_transposes() {
        // (8, 300, 40) with a row-major A and a transposed B is computed without swapping the operands (see
        // `gemm_with`), as a convolution's weight gradient is.
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 7), (17, 33, 9), (64, 70, 65), (128, 200, 10), (8, 300, 40)] {
            if !affordable(m * k * n) {
                continue;
            }
            for ta in [false, true] {
                for tb in [false, true] {
                    let a = rand_vec(m * k, 1);
                    let b = rand_vec(k * n, 2);
                    let c0 = rand_vec(m * n, 3);
                    let (rsa, csa) = if ta { (1, m) } else { (k, 1) };
                    let (rsb, csb) = if tb { (1, k) } else { (n, 1) };
                    let mut got = c0.clone();
                    let mut want = c0.clone();
                    sgemm(
                        m,
                        k,
                        n,
                        0.7,
                        &a,
                        rsa as isize,
                        csa as isize,
                        &b,
                        rsb as isize,
                        csb as isize,
                        0.3,
                        &mut got,
                        n as isize,
                        1,
                    );
                    naive(m, k, n, 0.7, &a, (rsa, csa), &b, (rsb, csb), 0.3, &mut want);
                    for (g, w) in got.iter().zip(&want) {
                        assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{m}x{k}x{n} {ta} {tb}");
                    }
                }
            }
        }
    }

    #[test]
    fn beta_zero_ignores_nan_and_column_major_c() {
        let (m, k, n) = (5, 4, 3);
        let a = rand_vec(m * k, 4);
        let b = rand_vec(k * n, 5);
        let mut want = vec![0.0; m * n];
        naive(m, k, n, 1.0, &a, (k, 1), &b, (n, 1), 0.0, &mut want);
        // C stored column-major, pre-filled with NaN.
        let mut c = vec![f32::NAN; m * n];
        sgemm(m, k, n, 1.0, &a, k as isize, 1, &b, n as isize, 1, 0.0, &mut c, 1, m as isize);
        for i in 0..m {
            for j in 0..n {
                assert!((c[j * m + i] - want[i * n + j]).abs() < 1e-5);
            }
        }
        let mut c = vec![f32::NAN; 4];
        sgemm(2, 0, 2, 1.0, &[], 0, 0, &[], 0, 0, 0.0, &mut c, 2, 1);
        assert_eq!(c, [0.0; 4]);
    }

    #[test]
    #[should_panic(expected = "A too short")]
    fn rejects_short_operand() {
        let mut c = vec![0.0; 4];
        sgemm(2, 3, 2, 1.0, &[0.0; 5], 3, 1, &[0.0; 6], 2, 1, 0.0, &mut c, 2, 1);
    }

    #[test]
    #[should_panic(expected = "alias")]
    fn rejects_aliasing_c() {
        let mut c = vec![0.0; 4];
        sgemm(2, 1, 2, 1.0, &[1.0; 2], 1, 1, &[1.0; 2], 2, 1, 0.0, &mut c, 0, 1);
    }

    /// Few columns go to dot products: against the f64 reference, with a ragged last block of rows, an odd
    /// column count, and rows split over threads (bit for bit what one thread computes).
    #[test]
    fn few_columns_match_naive_serial_or_threaded() {
        // Under Miri, a case just past the threaded split's threshold (2^18 values of A) stands in for the large ones.
        let cases = if cfg!(miri) {
            vec![(5, 3, 1), (340, 772, 2), (9, 40, 7)]
        } else {
            vec![(5, 3, 1), (1101, 784, 10), (600, 1000, 16), (9, 40, 7)]
        };
        for (m, k, n) in cases {
            let a = rand_vec(m * k, 8);
            let b = rand_vec(k * n, 9);
            let c0 = rand_vec(m * n, 10);
            let mut want = c0.clone();
            naive(m, k, n, 0.5, &a, (k, 1), &b, (1, k), 2.0, &mut want);
            let (mut got, mut serial) = (c0.clone(), c0.clone());
            sgemm(m, k, n, 0.5, &a, k as isize, 1, &b, 1, k as isize, 2.0, &mut got, n as isize, 1);
            sgemm_serial(m, k, n, 0.5, &a, k as isize, 1, &b, 1, k as isize, 2.0, &mut serial, n as isize, 1);
            assert!(bit_identical(&got, &serial), "{m}x{k}x{n}: threads changed the result");
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{m}x{k}x{n}: got {g}, want {w}");
            }
        }
    }

    #[test]
    fn deterministic() {
        let (m, k, n) = if cfg!(miri) { (30, 50, 20) } else { (300, 500, 70) };
        let a = rand_vec(m * k, 6);
        let b = rand_vec(k * n, 7);
        let run = || {
            let mut c = vec![0.0; m * n];
            sgemm(m, k, n, 1.0, &a, k as isize, 1, &b, 1, k as isize, 0.0, &mut c, n as isize, 1);
            c
        };
        let first = run();
        for _ in 0..3 {
            assert!(bit_identical(&run(), &first));
        }
    }
}
