//! Batch normalisation per channel over (N, H·W) for x `[n,c,hw]` (BatchNorm1d is hw = 1).
//! Channel statistics are computed in parallel over channels with f64 accumulation; the
//! elementwise passes run in parallel over samples.

use rayon::prelude::*;

use super::dev_sums;

fn check(n: usize, c: usize, hw: usize, x: &[f32], gamma: &[f32]) {
    assert_eq!(x.len(), n * c * hw, "batchnorm: x is not [n,c,hw]");
    assert_eq!(gamma.len(), c, "batchnorm: gamma is not [c]");
    assert!(n * hw > 0, "batchnorm: no elements per channel");
}

/// Training-mode forward. Normalises with the biased batch variance (as PyTorch does) and
/// writes per-channel `mean` and `invstd = 1/√(var + eps)` for the backward pass, then applies a ReLU
/// to the output if `relu`. Running statistics use the unbiased variance: get it from [`unbiased_var`].
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_forward_train(
    n: usize,
    c: usize,
    hw: usize,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    relu: bool,
    out: &mut [f32],
    mean: &mut [f32],
    invstd: &mut [f32],
) {
    check(n, c, hw, x, gamma);
    assert_eq!(beta.len(), c, "batchnorm: beta is not [c]");
    assert_eq!(out.len(), x.len(), "batchnorm: out is not [n,c,hw]");
    assert_eq!(mean.len(), c, "batchnorm: mean is not [c]");
    assert_eq!(invstd.len(), c, "batchnorm: invstd is not [c]");
    let count = (n * hw) as f64;
    mean.par_iter_mut().zip(invstd.par_iter_mut()).enumerate().for_each(|(ch, (m, is))| {
        let planes = || (0..n).map(|i| &x[(i * c + ch) * hw..(i * c + ch + 1) * hw]);
        let mu = planes().map(|p| dev_sums(p, 0.0, p, 0.0)[0]).sum::<f64>() / count;
        // Two passes: Σ(x-μ)² does not cancel catastrophically the way Σx² - nμ² does.
        let var = planes().map(|p| dev_sums(p, mu, p, mu)[1]).sum::<f64>() / count;
        *m = mu as f32;
        *is = (1.0 / (var + eps as f64).sqrt()) as f32;
    });
    normalise(c, hw, x, gamma, beta, mean, invstd, relu, out);
}

/// The unbiased variance of a channel, for running-statistics updates, recovered from the
/// `invstd` that [`batchnorm_forward_train`] wrote and the `count = n·hw` it reduced over.
pub fn unbiased_var(invstd: f32, eps: f32, count: usize) -> f32 {
    let biased = (1.0 / (invstd as f64 * invstd as f64) - eps as f64).max(0.0);
    (biased * count as f64 / (count.max(2) - 1) as f64) as f32
}

/// Inference-mode forward with running statistics.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_forward_eval(
    n: usize,
    c: usize,
    hw: usize,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    running_mean: &[f32],
    running_var: &[f32],
    eps: f32,
    out: &mut [f32],
) {
    check(n, c, hw, x, gamma);
    assert_eq!(beta.len(), c, "batchnorm: beta is not [c]");
    assert_eq!(running_mean.len(), c, "batchnorm: running_mean is not [c]");
    assert_eq!(running_var.len(), c, "batchnorm: running_var is not [c]");
    assert_eq!(out.len(), x.len(), "batchnorm: out is not [n,c,hw]");
    normalise(c, hw, x, gamma, beta, running_mean, &eval_invstd(running_var, eps), false, out);
}

/// `1/√(var + eps)` per channel of the running variances, as evaluation normalises with them.
pub fn eval_invstd(running_var: &[f32], eps: f32) -> Vec<f32> {
    running_var.iter().map(|&v| (1.0 / (v as f64 + eps as f64).sqrt()) as f32).collect()
}

/// The per-channel affine map batch norm applies, `y = x·scale + shift`, from γ, β, the mean and `invstd`.
pub fn affine(gamma: &[f32], beta: &[f32], mean: &[f32], invstd: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> = gamma.iter().zip(invstd).map(|(g, i)| g * i).collect();
    let shift = (0..scale.len()).map(|ch| beta[ch] - mean[ch] * scale[ch]).collect();
    (scale, shift)
}

#[allow(clippy::too_many_arguments)]
fn normalise(
    c: usize,
    hw: usize,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    invstd: &[f32],
    relu: bool,
    out: &mut [f32],
) {
    // Folded into one multiply-add per element: y = x·scale + shift, then max(y, 0) when `relu`.
    let (scale, shift) = affine(gamma, beta, mean, invstd);
    out.par_chunks_mut(c * hw).zip(x.par_chunks(c * hw)).for_each(|(o, xs)| {
        for (ch, (op, xp)) in o.chunks_exact_mut(hw).zip(xs.chunks_exact(hw)).enumerate() {
            let (a, b) = (scale[ch], shift[ch]);
            for (y, &v) in op.iter_mut().zip(xp) {
                *y = if relu { (v * a + b).max(0.0) } else { v * a + b };
            }
        }
    });
}

/// Training-mode backward; `dx`, `dgamma`, `dbeta` are overwritten. With x̂ = (x-μ)·invstd
/// and m = n·hw: dβ = Σdy, dγ = Σdy·x̂, dx = γ·invstd·(dy - dβ/m - x̂·dγ/m). With `relu`, the forward's
/// `(scale, shift)` of [`affine`] (it had a ReLU), dy is `dout` where that forward's output was positive and 0
/// elsewhere, the ReLU's backward. That output, `x·scale + shift` before the ReLU, is computed again here as
/// [`normalise`] computed it (the same bits), rather than read: one array fewer in each of the two passes.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward(
    n: usize,
    c: usize,
    hw: usize,
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    invstd: &[f32],
    dout: &[f32],
    relu: Option<(&[f32], &[f32])>,
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    check(n, c, hw, x, gamma);
    assert_eq!(mean.len(), c, "batchnorm: mean is not [c]");
    assert_eq!(invstd.len(), c, "batchnorm: invstd is not [c]");
    assert_eq!(dout.len(), x.len(), "batchnorm: dout is not [n,c,hw]");
    assert_eq!(dx.len(), x.len(), "batchnorm: dx is not [n,c,hw]");
    assert_eq!(dgamma.len(), c, "batchnorm: dgamma is not [c]");
    assert_eq!(dbeta.len(), c, "batchnorm: dbeta is not [c]");
    assert!(relu.is_none_or(|(a, b)| a.len() == c && b.len() == c), "batchnorm: relu's scale or shift is not [c]");
    // Channel `ch`'s (scale, shift) of the forward, if it had a ReLU; dy at x = v is then `g` where its output was
    // positive.
    let relu_of = |ch: usize| relu.map(|(scale, shift)| (scale[ch], shift[ch]));
    let relu_dy = |g: f32, v: f32, (a, b): (f32, f32)| if v * a + b > 0.0 { g } else { 0.0 };
    dgamma.par_iter_mut().zip(dbeta.par_iter_mut()).enumerate().for_each(|(ch, (dg, db))| {
        let (mu, is) = (mean[ch] as f64, invstd[ch] as f64);
        let mut sum_dy = 0.0f64;
        let mut sum_dy_xhat = 0.0f64;
        let mut masked = Vec::new();
        for s in 0..n {
            let range = (s * c + ch) * hw..(s * c + ch + 1) * hw;
            let (xp, mut gp) = (&x[range.clone()], &dout[range]);
            if let Some(ab) = relu_of(ch) {
                // The plane's dy, in a buffer the size of one plane, so still in cache for dev_sums.
                masked.clear();
                masked.extend(gp.iter().zip(xp).map(|(&g, &v)| relu_dy(g, v, ab)));
                gp = &masked;
            }
            // Σdy and Σdy·(x-μ) per plane, in one pass (f64 totals); invstd applied once at the end.
            let [dy, dy_dev] = dev_sums(xp, mu, gp, 0.0);
            sum_dy += dy;
            sum_dy_xhat += dy_dev;
        }
        *db = sum_dy as f32;
        *dg = (sum_dy_xhat * is) as f32;
    });
    let inv_m = 1.0 / (n * hw) as f32;
    let samples = dx.par_chunks_mut(c * hw).zip(x.par_chunks(c * hw)).zip(dout.par_chunks(c * hw));
    samples.for_each(|((d, xs), gs)| {
        for ch in 0..c {
            let (mu, is) = (mean[ch], invstd[ch]);
            let k = gamma[ch] * is;
            let mean_dy = dbeta[ch] * inv_m;
            let mean_dy_xhat = dgamma[ch] * inv_m;
            let range = ch * hw..(ch + 1) * hw;
            let planes = d[range.clone()].iter_mut().zip(&xs[range.clone()]).zip(&gs[range]);
            let dx = |dv: &mut f32, v: f32, g: f32| *dv = k * (g - mean_dy - (v - mu) * is * mean_dy_xhat);
            // One loop for each case, so that each vectorises.
            match relu_of(ch) {
                Some(ab) => planes.for_each(|((dv, &v), &g)| dx(dv, v, relu_dy(g, v, ab))),
                None => planes.for_each(|((dv, &v), &g)| dx(dv, v, g)),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::kernels::testutil::{assert_close, bit_identical, rand_vec};

    /// f64 forward from the definition, with the same biased variance.
    fn reference(n: usize, c: usize, hw: usize, x: &[f64], gamma: &[f64], beta: &[f64], eps: f64) -> Vec<f64> {
        let m = (n * hw) as f64;
        let mut out = vec![0.0; x.len()];
        for ch in 0..c {
            let idx = |s: usize, j: usize| (s * c + ch) * hw + j;
            let mut mu = 0.0;
            for s in 0..n {
                for j in 0..hw {
                    mu += x[idx(s, j)];
                }
            }
            mu /= m;
            let mut var = 0.0;
            for s in 0..n {
                for j in 0..hw {
                    var += (x[idx(s, j)] - mu).powi(2);
                }
            }
            var /= m;
            for s in 0..n {
                for j in 0..hw {
                    out[idx(s, j)] = (x[idx(s, j)] - mu) / (var + eps).sqrt() * gamma[ch] + beta[ch];
                }
            }
        }
        out
    }

    const SHAPES: &[(usize, usize, usize)] = &[(3, 2, 5), (1, 3, 7), (8, 4, 1), (3, 1, 16)];

    #[test]
    fn forward_train_and_eval_match_reference() {
        let eps = 1e-5;
        for (i, &(n, c, hw)) in SHAPES.iter().enumerate() {
            // Offset data: a naive Σx² - nμ² variance would lose most of its digits.
            let x: Vec<f32> = rand_vec(n * c * hw, 200 + i as u64).iter().map(|v| v + 100.0).collect();
            let gamma = rand_vec(c, 210 + i as u64);
            let beta = rand_vec(c, 220 + i as u64);
            let f64s = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<_>>();
            let want: Vec<f32> = reference(n, c, hw, &f64s(&x), &f64s(&gamma), &f64s(&beta), eps as f64)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let mut out = vec![0.0; x.len()];
            let (mut mean, mut invstd) = (vec![0.0; c], vec![0.0; c]);
            batchnorm_forward_train(n, c, hw, &x, &gamma, &beta, eps, false, &mut out, &mut mean, &mut invstd);
            assert_close(&out, &want, 1e-3, "batchnorm train");

            // Eval with the batch's own (biased) statistics must reproduce training output.
            let var: Vec<f32> = invstd.iter().map(|&is| 1.0 / (is * is) - eps).collect();
            let mut out_eval = vec![0.0; x.len()];
            batchnorm_forward_eval(n, c, hw, &x, &gamma, &beta, &mean, &var, eps, &mut out_eval);
            assert_close(&out_eval, &want, 1e-2, "batchnorm eval");

            let count = n * hw;
            if count > 1 {
                for (ch, &is) in invstd.iter().enumerate() {
                    let vals: Vec<f64> =
                        (0..n).flat_map(|s| (0..hw).map(move |j| (s * c + ch) * hw + j)).map(|k| x[k] as f64).collect();
                    let mu = vals.iter().sum::<f64>() / count as f64;
                    let uv = vals.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / (count - 1) as f64;
                    let got = unbiased_var(is, eps, count) as f64;
                    assert!((got - uv).abs() <= 1e-3 * uv + 1e-5, "unbiased var {got} vs {uv}");
                }
            }
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        let eps = 1e-5;
        for (i, &(n, c, hw)) in SHAPES.iter().enumerate() {
            let len = n * c * hw;
            let x = rand_vec(len, 300 + i as u64);
            let gamma = rand_vec(c, 310 + i as u64);
            let beta = rand_vec(c, 320 + i as u64);
            let r = rand_vec(len, 330 + i as u64);
            let f64s = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<_>>();
            let loss = |x: &[f64], g: &[f64], b: &[f64]| -> f64 {
                reference(n, c, hw, x, g, b, eps).iter().zip(&r).map(|(o, &w)| o * w as f64).sum()
            };
            let (x64, g64, b64) = (f64s(&x), f64s(&gamma), f64s(&beta));
            let fd = |v: &[f64], j: usize, f: &dyn Fn(&[f64]) -> f64| -> f32 {
                let h = 1e-4;
                let (mut p, mut m) = (v.to_vec(), v.to_vec());
                p[j] += h;
                m[j] -= h;
                ((f(&p) - f(&m)) / (2.0 * h)) as f32
            };
            let mut out = vec![0.0; len];
            let (mut mean, mut invstd) = (vec![0.0; c], vec![0.0; c]);
            batchnorm_forward_train(n, c, hw, &x, &gamma, &beta, eps as f32, false, &mut out, &mut mean, &mut invstd);
            let mut dx = vec![f32::NAN; len];
            let (mut dg, mut db) = (vec![f32::NAN; c], vec![f32::NAN; c]);
            batchnorm_backward(n, c, hw, &x, &gamma, &mean, &invstd, &r, None, &mut dx, &mut dg, &mut db);
            let want_dx: Vec<f32> = (0..len).map(|j| fd(&x64, j, &|v| loss(v, &g64, &b64))).collect();
            let want_dg: Vec<f32> = (0..c).map(|j| fd(&g64, j, &|v| loss(&x64, v, &b64))).collect();
            let want_db: Vec<f32> = (0..c).map(|j| fd(&b64, j, &|v| loss(&x64, &g64, v))).collect();
            assert_close(&dx, &want_dx, 1e-2, "batchnorm dx");
            assert_close(&dg, &want_dg, 1e-2, "batchnorm dgamma");
            assert_close(&db, &want_db, 1e-2, "batchnorm dbeta");
        }
    }

    #[test]
    fn deterministic() {
        let (n, c, hw) = (64, 16, 49);
        let x = rand_vec(n * c * hw, 1);
        let g = rand_vec(n * c * hw, 2);
        let gamma = rand_vec(c, 3);
        let beta = rand_vec(c, 4);
        let run = || {
            let mut out = vec![0.0; x.len()];
            let (mut mean, mut invstd) = (vec![0.0; c], vec![0.0; c]);
            batchnorm_forward_train(n, c, hw, &x, &gamma, &beta, 1e-5, false, &mut out, &mut mean, &mut invstd);
            let mut dx = vec![0.0; x.len()];
            let (mut dg, mut db) = (vec![0.0; c], vec![0.0; c]);
            batchnorm_backward(n, c, hw, &x, &gamma, &mean, &invstd, &g, None, &mut dx, &mut dg, &mut db);
            [out, dx, dg, db]
        };
        let first = run();
        for (a, b) in run().iter().zip(&first) {
            assert!(bit_identical(a, b));
        }
    }
}
