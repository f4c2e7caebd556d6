//! GEMM through the `matrixmultiply` crate (provisional; see the GEMM comparison).

/// C = alpha·A·B + beta·C with arbitrary strides (so transposes cost nothing).
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
    let extent = |rows: usize, cols: usize, rs: isize, cs: isize| {
        if rows == 0 || cols == 0 {
            0
        } else {
            ((rows - 1) as isize * rs + (cols - 1) as isize * cs) as usize + 1
        }
    };
    assert!(a.len() >= extent(m, k, rsa, csa) && b.len() >= extent(k, n, rsb, csb));
    assert!(c.len() >= extent(m, n, rsc, csc));
    // SAFETY: the asserts above keep every strided access inside the slices.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            rsa,
            csa,
            b.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            rsc,
            csc,
        );
    }
}
