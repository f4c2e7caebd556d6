//! The single f32 GEMM entry point. Backed by the `gemm` crate, which beat `matrixmultiply`
//! on crest's shapes (see `bench/gemm_compare.rs`), notably the skinny im2col gradients,
//! and which lets each call choose its parallelism, so kernels already running inside a
//! rayon task can ask for a serial GEMM instead of oversubscribing the two cores.

use gemm::Parallelism;

/// Below this many multiply-adds a GEMM runs on one thread. Measured on this 2-vCPU VM: waking the second thread
/// for every small GEMM cost more than it gave (Fashion-MNIST's linear model: 0.199 s/epoch at 2^15, 0.084 at 2^22),
/// and the vCPUs share a core's resources (two single-threaded runs at once each slow by ~28%), so even an MLP's
/// 25.7M-MAC layers ran no faster split in two.
const PARALLEL_MIN_MACS: usize = 1 << 25;

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
    let threaded = m.saturating_mul(k).saturating_mul(n) >= PARALLEL_MIN_MACS;
    gemm_with(threaded, m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc);
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
    threaded: bool,
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
    let par = if threaded { Parallelism::Rayon(rayon::current_num_threads()) } else { Parallelism::None };
    // SAFETY: the asserts above keep every strided access inside its slice and make C's
    // elements distinct, so gemm's parallel writes never race; `&mut c` excludes aliasing
    // with A and B. gemm names the scalars the other way round: dst = α·dst + β·lhs·rhs.
    unsafe {
        gemm::gemm(
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
    use crate::tensor::kernels::testutil::{bit_identical, rand_vec};

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
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 7), (17, 33, 9), (64, 70, 65), (128, 200, 10)] {
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

    #[test]
    fn deterministic() {
        let (m, k, n) = (300, 500, 70);
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
