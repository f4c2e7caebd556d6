//! A Linear layer's forward pass, `x·Wᵀ + b` and optionally its ReLU, as one kernel on AVX-512 CPUs.
//!
//! Through the GEMM crate the bias and the ReLU each cost a pass over the output: the rows are filled with the bias
//! first and the GEMM adds onto them, then the ReLU reads and writes them again. Here both are applied to the
//! accumulators in registers, before the output's one store. W is packed into panels of 64 columns (`[k][64]`,
//! zero-padded), which the caller keeps while W is unchanged (a whole inference pass); x is read in place, six rows
//! at a time. Each output element sums its k products in order, in chunks of [`kc`], whatever the number of threads.
//!
//! Large products are split by rows over [`spin_pool`](super::spin_pool)'s threads, which stay awake between the
//! layers and batches of an inference pass.
//!
//! Measured by `cargo run --release --example gemm_compare linear` beside `bench/torch_linear.py`; the figures are in
//! bench/README.md.

use super::matmul::{sgemm, FEW_COLS, PARALLEL_MIN_MACS};

/// W `[n, k]` rearranged for [`linear_forward`]'s AVX-512 kernel. Only [`PackedWeight::pack`] makes one, and only
/// on a CPU where it has detected AVX-512, so holding one is the proof the kernel may run.
pub(crate) struct PackedWeight {
    n: usize,
    k: usize,
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    panels: Vec<f32>,
}

impl PackedWeight {
    /// W `[n, k]` packed, or `None` where the kernel doesn't run: no AVX-512, or too few outputs to fill a panel
    /// (up to FEW_COLS, the GEMM's dot-product path is faster than a 64-column panel mostly padding).
    pub(crate) fn pack(n: usize, k: usize, w: &[f32]) -> Option<PackedWeight> {
        assert!(w.len() >= n * k, "PackedWeight::pack: w too short for {n}×{k}");
        #[cfg(target_arch = "x86_64")]
        if n > FEW_COLS && k > 0 && avx512::usable(n, k) {
            // SAFETY: `usable` detected avx512f, and w holds n×k values.
            return Some(PackedWeight { n, k, panels: unsafe { avx512::pack(n, k, w) } });
        }
        None
    }
}

/// `x [m, k] · w [n, k]ᵀ + bias`, then `max(·, 0)` when `relu`: a `[m, n]` row-major output. With `packed` (W
/// packed for this n and k), crest's AVX-512 kernel computes it; without, the GEMM, with the bias and ReLU after.
#[allow(clippy::too_many_arguments)]
pub(crate) fn linear_forward(
    m: usize,
    k: usize,
    n: usize,
    x: &[f32],
    w: &[f32],
    packed: Option<&PackedWeight>,
    bias: Option<&[f32]>,
    relu: bool,
) -> Vec<f32> {
    assert!(x.len() >= m * k && w.len() >= n * k, "linear_forward: x or w too short for {m}×{k}×{n}");
    assert!(bias.is_none_or(|b| b.len() == n), "linear_forward: bias is not {n} long");
    #[cfg(target_arch = "x86_64")]
    if let Some(p) = packed {
        assert!((p.n, p.k) == (n, k), "linear_forward: W packed as {}×{}, used as {n}×{k}", p.n, p.k);
        return avx512::forward(m, k, n, x, p, bias, relu);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = packed;
    // The GEMM adds x·Wᵀ onto rows that already hold the bias: one pass over the output instead of two.
    let (mut out, beta) = match bias {
        Some(b) => (b.repeat(m), 1.0),
        None => (vec![0.0; m * n], 0.0),
    };
    sgemm(m, k, n, 1.0, x, k as isize, 1, w, 1, k as isize, beta, &mut out, n as isize, 1);
    if relu {
        out.iter_mut().for_each(|v| *v = v.max(0.0));
    }
    out
}

/// Depth of one pass over a panel: k split into equal chunks of at most 128, so a panel's chunk (32 KB) stays in
/// L1 while every row block streams past it (the depths tried are in bench/README.md, "Figures behind the code").
fn kc(k: usize) -> usize {
    k.div_ceil(k.div_ceil(128))
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{kc, PackedWeight, PARALLEL_MIN_MACS};
    use crate::tensor::kernels::spin_pool::for_each_chunk_mut;
    use std::arch::x86_64::*;

    /// Columns per panel: four 16-lane registers.
    pub(super) const NR: usize = 64;
    /// Rows per register tile: 6 × 4 = 24 accumulators of the 32 registers, leaving room for W's four.
    const MR: usize = 6;

    pub(super) fn usable(n: usize, k: usize) -> bool {
        // The packing gathers W's rows by 32-bit offsets.
        is_x86_feature_detected!("avx512f") && n.checked_mul(k).is_some_and(|e| e <= i32::MAX as usize)
    }

    pub(super) fn forward(
        m: usize,
        k: usize,
        n: usize,
        x: &[f32],
        packed: &PackedWeight,
        bias: Option<&[f32]>,
        relu: bool,
    ) -> Vec<f32> {
        // Every element is stored by the first pass over k before anything reads it, so the output starts
        // uninitialised: zeroing it first would be one more pass over it.
        let mut out = Vec::with_capacity(m * n);
        let threads = if m * k * n >= PARALLEL_MIN_MACS { rayon::current_num_threads() } else { 1 };
        // Two parts per thread, claimed as threads come free: one that starts late leaves its share to the others.
        let part_rows = if threads > 1 { m.div_ceil(threads * 2).next_multiple_of(MR) } else { m.max(1) };
        // SAFETY: a PackedWeight exists only where `usable` detected avx512f; the asserts in `linear_forward` keep x
        // (m×k), the panels (packed for n×k) and the bias (n) in bounds; each part writes only its own rows of
        // `out`'s m×n.
        for_each_chunk_mut(&mut out.spare_capacity_mut()[..m * n], part_rows * n, &|t, c| unsafe {
            rows(c.len() / n, k, n, &x[t * part_rows * k..], &packed.panels, bias, relu, c.as_mut_ptr().cast());
        });
        // SAFETY: the tasks above stored all m×n values.
        unsafe { out.set_len(m * n) };
        out
    }

    /// The first `count` of 16 lanes.
    fn lanes(count: usize) -> __mmask16 {
        ((1u32 << count.min(16)) - 1) as __mmask16
    }

    /// W `[n, k]` as panels of NR columns, each `[k][NR]` with columns past n zero.
    ///
    /// # Safety
    /// The CPU has avx512f; `w` holds n×k values, and n×k fits an i32 (the gather's offsets): what `usable` checks.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn pack(n: usize, k: usize, w: &[f32]) -> Vec<f32> {
        let panels = n.div_ceil(NR);
        let mut packed = vec![0.0f32; panels * k * NR];
        let rows16 = _mm512_mullo_epi32(
            _mm512_set1_epi32(k as i32),
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        );
        for j0 in (0..n).step_by(16) {
            let mask = lanes(n - j0);
            let (panel, col) = (j0 / NR, j0 % NR);
            let src = w.as_ptr().add(j0 * k);
            let dst = packed.as_mut_ptr().add(panel * k * NR + col);
            for p in 0..k {
                let v = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, rows16, src.add(p));
                _mm512_storeu_ps(dst.add(p * NR), v);
            }
        }
        packed
    }

    /// Output rows `[0, m)` of this task: for each chunk of k, each panel, each block of MR rows.
    ///
    /// # Safety
    /// The CPU has avx512f; `x` holds m×k values, `packed` is W packed for n×k, `bias` holds n values, and `c` is
    /// valid for writes of m×n values.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn rows(
        m: usize,
        k: usize,
        n: usize,
        x: &[f32],
        packed: &[f32],
        bias: Option<&[f32]>,
        relu: bool,
        c: *mut f32,
    ) {
        let kc_max = kc(k);
        for p0 in (0..k).step_by(kc_max) {
            let kc = kc_max.min(k - p0);
            let pass = Pass { first: p0 == 0, last: p0 + kc == k, relu };
            for j0 in (0..n).step_by(NR) {
                let cols = (n - j0).min(NR);
                let masks: [__mmask16; 4] = std::array::from_fn(|q| lanes(cols.saturating_sub(16 * q)));
                let b = packed.as_ptr().add(j0 * k + p0 * NR);
                let bias = bias.map(|b| b.as_ptr().add(j0));
                for i in (0..m).step_by(MR) {
                    let a = x.as_ptr().add(i * k + p0);
                    let cp = c.add(i * n + j0);
                    let tile = Tile { kc, a, lda: k, b, c: cp, ldc: n, masks, bias };
                    match m - i {
                        1 => tile.run::<1>(pass),
                        2 => tile.run::<2>(pass),
                        3 => tile.run::<3>(pass),
                        4 => tile.run::<4>(pass),
                        5 => tile.run::<5>(pass),
                        _ => tile.run::<MR>(pass),
                    }
                }
            }
        }
    }

    /// Where a chunk of k sits: the first stores its sums, later ones add to them, the last adds the bias and
    /// applies the ReLU.
    #[derive(Clone, Copy)]
    struct Pass {
        first: bool,
        last: bool,
        relu: bool,
    }

    /// One register tile: up to MR rows of x against one panel, over one chunk of k.
    struct Tile {
        kc: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        masks: [__mmask16; 4],
        bias: Option<*const f32>,
    }

    impl Tile {
        /// # Safety
        /// The CPU has avx512f; `a` covers R rows of `kc` values `lda` apart, `b` kc×NR values, `c` R rows of the
        /// panel's unmasked columns `ldc` apart (read unless `pass.first`, written), `bias` the unmasked columns.
        #[target_feature(enable = "avx512f")]
        unsafe fn run<const R: usize>(&self, pass: Pass) {
            let mut acc = [[_mm512_setzero_ps(); 4]; R];
            let rows: [*const f32; R] = std::array::from_fn(|r| self.a.add(r * self.lda));
            let mut b = self.b;
            for p in 0..self.kc {
                let bv = [
                    _mm512_loadu_ps(b),
                    _mm512_loadu_ps(b.add(16)),
                    _mm512_loadu_ps(b.add(32)),
                    _mm512_loadu_ps(b.add(48)),
                ];
                for r in 0..R {
                    let av = _mm512_set1_ps(*rows[r].add(p));
                    for q in 0..4 {
                        acc[r][q] = _mm512_fmadd_ps(av, bv[q], acc[r][q]);
                    }
                }
                b = b.add(NR);
            }
            let bias = match (pass.last, self.bias) {
                (true, Some(bias)) => Some(self.masked_loads(bias)),
                _ => None,
            };
            for (r, acc) in acc.iter().enumerate() {
                let c = self.c.add(r * self.ldc);
                let mut v = *acc;
                if !pass.first {
                    let old = self.masked_loads(c);
                    for q in 0..4 {
                        v[q] = _mm512_add_ps(v[q], old[q]);
                    }
                }
                for q in 0..4 {
                    if let Some(bias) = bias {
                        v[q] = _mm512_add_ps(v[q], bias[q]);
                    }
                    if pass.last && pass.relu {
                        v[q] = _mm512_max_ps(v[q], _mm512_setzero_ps());
                    }
                    _mm512_mask_storeu_ps(c.add(16 * q), self.masks[q], v[q]);
                }
            }
        }

        /// 64 values from `at`, the lanes past the panel's last column zero (and never read).
        ///
        /// # Safety
        /// The CPU has avx512f; the values at the unmasked lanes are readable.
        #[target_feature(enable = "avx512f")]
        unsafe fn masked_loads(&self, at: *const f32) -> [__m512; 4] {
            let [m0, m1, m2, m3] = self.masks;
            [
                _mm512_maskz_loadu_ps(m0, at),
                _mm512_maskz_loadu_ps(m1, at.add(16)),
                _mm512_maskz_loadu_ps(m2, at.add(32)),
                _mm512_maskz_loadu_ps(m3, at.add(48)),
            ]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::kernels::testutil::{affordable, bit_identical, rand_vec};

    fn naive(m: usize, k: usize, n: usize, x: &[f32], w: &[f32], bias: Option<&[f32]>, relu: bool) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k).map(|p| x[i * k + p] as f64 * w[j * k + p] as f64).sum();
                let v = (dot + bias.map_or(0.0, |b| b[j] as f64)) as f32;
                out[i * n + j] = if relu { v.max(0.0) } else { v };
            }
        }
        out
    }

    /// Ragged row blocks, a partly filled last panel, k over one chunk, and the threaded split.
    #[test]
    fn matches_naive_with_bias_and_relu() {
        for (m, k, n) in
            [(0, 3, 20), (1, 1, 17), (7, 5, 64), (13, 300, 70), (128, 784, 256), (1000, 784, 256), (9, 600, 130)]
        {
            if !affordable(m * k * n) {
                continue;
            }
            let (x, w, b) = (rand_vec(m * k, 1), rand_vec(n * k, 2), rand_vec(n, 3));
            for (bias, relu) in [(None, false), (Some(&b[..]), false), (Some(&b[..]), true)] {
                let got = linear_forward(m, k, n, &x, &w, PackedWeight::pack(n, k, &w).as_ref(), bias, relu);
                let unpacked = linear_forward(m, k, n, &x, &w, None, bias, relu);
                let want = naive(m, k, n, &x, &w, bias, relu);
                for (g, v) in got.iter().chain(&unpacked).zip(want.iter().cycle()) {
                    assert!((g - v).abs() <= 1e-4 * (1.0 + v.abs()), "{m}×{k}×{n} {relu}: got {g}, want {v}");
                }
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "threads split only past 2^25 multiply-adds")]
    fn relu_is_max_zero_of_the_plain_result_and_threads_change_nothing() {
        let (m, k, n) = (1000, 784, 256);
        let (x, w, b) = (rand_vec(m * k, 4), rand_vec(n * k, 5), rand_vec(n, 6));
        let packed = PackedWeight::pack(n, k, &w);
        let plain = linear_forward(m, k, n, &x, &w, packed.as_ref(), Some(&b), false);
        let fused = linear_forward(m, k, n, &x, &w, packed.as_ref(), Some(&b), true);
        assert!(bit_identical(&fused, &plain.iter().map(|v| v.max(0.0)).collect::<Vec<_>>()));
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        assert!(bit_identical(
            &one.install(|| linear_forward(m, k, n, &x, &w, packed.as_ref(), Some(&b), false)),
            &plain
        ));
    }
}
