//! GEMM backend comparison on the shapes crest actually runs, then timings of the ops built on the chosen backend,
//! through crest's public API: u8 matmuls against widening the whole batch first, the Fashion-MNIST CNN's
//! convolutions, and the MLP's first layer through crest's Linear layer (its own kernel, weight packed once) against
//! the same product through the GEMM crate (`bench/torch_linear.py` times the same layer in PyTorch).
//!
//! `cargo run --release --example gemm_compare [gemm|u8|conv|linear]`
//! The machine is shared, so each case reports the best of several timed runs.

use std::time::Instant;

use crest::nn::{Linear, LinearReLU, Module};
use crest::rng::Rng;
use crest::tensor::no_grad;
use crest::Tensor;

struct Case {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
    /// A is stored transposed ([k,m] row-major), as in the weight-gradient Xᵀ·G.
    ta: bool,
    /// B is stored transposed ([n,k] row-major), as in the input-gradient G·Wᵀ.
    tb: bool,
}

const CASES: &[Case] = &[
    Case { name: "mlp1 fwd  X·W", m: 128, k: 784, n: 256, ta: false, tb: false },
    Case { name: "mlp1 dW   Xᵀ·G", m: 784, k: 128, n: 256, ta: true, tb: false },
    Case { name: "mlp1 dX   G·Wᵀ", m: 128, k: 256, n: 784, ta: false, tb: true },
    Case { name: "mlp2 fwd", m: 128, k: 256, n: 10, ta: false, tb: false },
    Case { name: "mlp2 dW", m: 256, k: 128, n: 10, ta: true, tb: false },
    Case { name: "mlp2 dX", m: 128, k: 10, n: 256, ta: false, tb: true },
    Case { name: "conv1 fwd cols·W", m: 25088, k: 9, n: 32, ta: false, tb: false },
    Case { name: "conv1 dW  colsᵀ·G", m: 9, k: 25088, n: 32, ta: true, tb: false },
    Case { name: "conv1 dcols G·Wᵀ", m: 25088, k: 32, n: 9, ta: false, tb: true },
    Case { name: "conv2 fwd cols·W", m: 6272, k: 288, n: 64, ta: false, tb: false },
    Case { name: "conv2 dW  colsᵀ·G", m: 288, k: 6272, n: 64, ta: true, tb: false },
    Case { name: "conv2 dcols G·Wᵀ", m: 6272, k: 64, n: 288, ta: false, tb: true },
    Case { name: "conv1/img W·cols", m: 32, k: 9, n: 784, ta: false, tb: false },
    Case { name: "conv2/img W·cols", m: 64, k: 288, n: 196, ta: false, tb: false },
    Case { name: "conv2/img dW G·colsᵀ", m: 64, k: 196, n: 288, ta: false, tb: true },
    Case { name: "conv2/img dcols Wᵀ·G", m: 288, k: 64, n: 196, ta: true, tb: false },
    Case { name: "linear fwd n=1", m: 64, k: 78400, n: 1, ta: false, tb: false },
    Case { name: "linear dW  Xᵀ·G n=1", m: 78400, k: 64, n: 1, ta: true, tb: false },
    Case { name: "linear dW  Xᵀ·G n=2", m: 78400, k: 64, n: 2, ta: true, tb: false },
    Case { name: "tiny 16x16x16", m: 16, k: 16, n: 16, ta: false, tb: false },
    Case { name: "small 32x32x32", m: 32, k: 32, n: 32, ta: false, tb: false },
];

struct Operands {
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    rsa: isize,
    csa: isize,
    rsb: isize,
    csb: isize,
}

fn operands(cs: &Case) -> Operands {
    let fill = |len: usize, seed: u32| -> Vec<f32> {
        (0..len)
            .map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / 16_777_216.0 - 0.5)
            .collect()
    };
    let (m, k, n) = (cs.m as isize, cs.k as isize, cs.n as isize);
    let (rsa, csa) = if cs.ta { (1, m) } else { (k, 1) };
    let (rsb, csb) = if cs.tb { (1, k) } else { (n, 1) };
    Operands { a: fill(cs.m * cs.k, 1), b: fill(cs.k * cs.n, 2), c: vec![0.0; cs.m * cs.n], rsa, csa, rsb, csb }
}

fn best_secs(mut f: impl FnMut()) -> f64 {
    // Aim for ~0.15 s of timing per case regardless of size.
    let t = Instant::now();
    f();
    let once = t.elapsed().as_secs_f64().max(1e-7);
    let inner = ((0.02 / once) as usize).clamp(1, 10_000);
    let mut best = f64::INFINITY;
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..inner {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() / inner as f64);
    }
    best
}

fn run_mm(cs: &Case, o: &mut Operands) {
    // SAFETY: strides describe dense [m,k]/[k,n]/[m,n] buffers allocated by `operands`.
    unsafe {
        matrixmultiply::sgemm(
            cs.m,
            cs.k,
            cs.n,
            1.0,
            o.a.as_ptr(),
            o.rsa,
            o.csa,
            o.b.as_ptr(),
            o.rsb,
            o.csb,
            0.0,
            o.c.as_mut_ptr(),
            cs.n as isize,
            1,
        )
    }
}

fn run_gemm(cs: &Case, o: &mut Operands, par: gemm_common::Parallelism) {
    // SAFETY: as above. The row-major C goes in as its transpose (Cᵀ = Bᵀ·Aᵀ), as crest's `sgemm` passes it and the
    // `gemm` crate's front end did. gemm names the scalars the other way round: dst = alpha·dst + beta·lhs·rhs.
    unsafe {
        gemm_f32::gemm::f32::get_gemm_fn()(
            cs.n,
            cs.m,
            cs.k,
            o.c.as_mut_ptr(),
            cs.n as isize,
            1,
            false,
            o.b.as_ptr(),
            o.rsb,
            o.csb,
            o.a.as_ptr(),
            o.rsa,
            o.csa,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

// As in the crest binary: tensors on cache-line boundaries, freed memory kept for the next call.
#[global_allocator]
static ALLOC: crest::alloc::CacheAligned = crest::alloc::CacheAligned;

fn main() {
    crest::alloc::keep_freed_memory();
    rayon::ThreadPoolBuilder::new().num_threads(2).build_global().ok();
    let only = std::env::args().nth(1);
    let want = |section: &str| only.as_deref().is_none_or(|o| o == section);
    if want("gemm") {
        compare_backends();
    }
    if want("u8") {
        bench_u8();
    }
    if want("conv") {
        bench_conv();
    }
    if want("linear") {
        bench_linear();
    }
}

fn compare_backends() {
    println!(
        "{:<24} {:>7} {:>6} {:>6} | {:>10} {:>10} {:>10} | GFLOP/s (best of 7)",
        "case", "m", "k", "n", "mm(thr)", "gemm(R2)", "gemm(1)"
    );
    let (mut tot_mm, mut tot_g2, mut tot_g1) = (0.0, 0.0, 0.0);
    for cs in CASES {
        let mut o = operands(cs);
        let flops = 2.0 * (cs.m * cs.k * cs.n) as f64;
        let t_mm = best_secs(|| run_mm(cs, &mut o));
        let t_g2 = best_secs(|| run_gemm(cs, &mut o, gemm_common::Parallelism::Rayon(2)));
        let t_g1 = best_secs(|| run_gemm(cs, &mut o, gemm_common::Parallelism::None));
        tot_mm += t_mm;
        tot_g2 += t_g2;
        tot_g1 += t_g1;
        let g = |t: f64| flops / t / 1e9;
        println!(
            "{:<24} {:>7} {:>6} {:>6} | {:>10.1} {:>10.1} {:>10.1} |",
            cs.name,
            cs.m,
            cs.k,
            cs.n,
            g(t_mm),
            g(t_g2),
            g(t_g1)
        );
    }
    println!(
        "sum of best times (ms): mm(thr) {:.3}  gemm(R2) {:.3}  gemm(1) {:.3}",
        tot_mm * 1e3,
        tot_g2 * 1e3,
        tot_g1 * 1e3
    );
}

/// A parameter of the given shape, for the backward passes to reach.
fn param(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, 0.1, &mut Rng::new(seed)).requires_grad_()
}

/// The forward pass and the backward pass to `params` of `y = f()`, timed together (best of 7).
fn forward_backward(f: impl Fn() -> Tensor, params: &[&Tensor]) -> f64 {
    best_secs(|| {
        let y = f();
        y.sum().backward();
        params.iter().for_each(|p| p.zero_grad());
    })
}

/// The linear model's batch: 64 images of 140×140×4 u8, through `Tensor::matmul`, which reads the bytes (tiled),
/// against the same batch widened to f32 on every call first.
fn bench_u8() {
    let (m, k) = (64, 140 * 140 * 4);
    let a: Vec<u8> = (0..m * k).map(|i: usize| (i.wrapping_mul(2654435761) >> 11) as u8).collect();
    let scale = 1.0 / 255.0;
    println!("\nu8 matmuls, [{m},{k}] u8 batch, ms (best of 7)");
    println!("{:<28} {:>10} {:>10}", "case", "u8 tiles", "widened");
    for n in [1, 2] {
        let w = param(&[k, n], 1);
        let bytes = || Tensor::from_u8(a.clone(), &[m, k], scale);
        let widened = || Tensor::from_vec(a.iter().map(|&v| v as f32 * scale).collect(), &[m, k]);
        let (fwd, fwd_wide) = {
            let _g = no_grad();
            (best_secs(|| drop(bytes().matmul(&w))), best_secs(|| drop(widened().matmul(&w))))
        };
        let both = forward_backward(|| bytes().matmul(&w), &[&w]);
        let both_wide = forward_backward(|| widened().matmul(&w), &[&w]);
        println!("{:<28} {:>10.3} {:>10.3}", format!("forward  A·W   n={n}"), fwd * 1e3, fwd_wide * 1e3);
        println!("{:<28} {:>10.3} {:>10.3}", format!("fwd + bwd to W n={n}"), both * 1e3, both_wide * 1e3);
    }
}

/// The Fashion-MNIST CNN's two convolutions at batch 128, through `Tensor::conv2d`.
fn bench_conv() {
    println!("\nconv2d at batch 128, ms and GFLOP/s (best of 7)");
    println!(
        "{:<20} {:>9} {:>8} | {:>14} {:>8} | {:>14} {:>8}",
        "layer", "fwd ms", "GF/s", "fwd+bwd(W) ms", "GF/s", "fwd+bwd(W,x)", "GF/s"
    );
    for (name, c_in, hw, c_out) in [("conv1 1->32 28x28", 1, 28, 32), ("conv2 32->64 14x14", 32, 14, 64)] {
        let x = param(&[128, c_in, hw, hw], 2);
        let (w, b) = (param(&[c_out, c_in, 3, 3], 3), param(&[c_out], 4));
        let frozen_x = x.detach();
        let flops = 2.0 * (128 * c_out * hw * hw * c_in * 9) as f64;
        let fwd = {
            let _g = no_grad();
            best_secs(|| drop(x.conv2d(&w, Some(&b), 1, 1)))
        };
        let bwd_w = forward_backward(|| frozen_x.conv2d(&w, Some(&b), 1, 1), &[&w, &b]);
        let bwd = forward_backward(|| x.conv2d(&w, Some(&b), 1, 1), &[&x, &w, &b]);
        println!(
            "{:<20} {:>9.3} {:>8.1} | {:>14.3} {:>8.1} | {:>14.3} {:>8.1}",
            name,
            fwd * 1e3,
            flops / fwd / 1e9,
            bwd_w * 1e3,
            2.0 * flops / bwd_w / 1e9,
            bwd * 1e3,
            3.0 * flops / bwd / 1e9
        );
    }
}

/// The Fashion MLP's first layer, relu(x·Wᵀ + b) for W [256, 784]: a training batch, half an inference batch on one
/// thread, a whole one on two. `LinearReLU` is the layer `Sequential::fused` runs (crest's kernel, the weight packed
/// once and kept); `Tensor::linear_relu` packs the weight on every call, as a training step does; the GEMM crate's
/// product with the bias and the ReLU as separate passes is what crest ran before its own kernel.
fn bench_linear() {
    let (k, n) = (784, 256);
    println!("\nrelu(x·Wᵀ + b), W [{n}, {k}], µs (best of 7)");
    println!("{:<22} {:>14} {:>14} {:>14}", "case", "gemm crate", "crest packed", "crest + pack");
    let _g = no_grad();
    let layer = Linear::new(k, n, &mut Rng::new(5));
    let fused = LinearReLU::new(&layer);
    let wt = layer.weight.t();
    for (threads, m) in [(1, 128), (1, 500), (2, 1000)] {
        let x = Tensor::rand_uniform(&[m, k], 0.0, 1.0, &mut Rng::new(6));
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool");
        pool.install(|| {
            let kernel = best_secs(|| drop(fused.forward(&x)));
            let gemm = best_secs(|| drop((&x.matmul(&wt) + &layer.bias).relu()));
            let with_pack = best_secs(|| drop(x.linear_relu(&layer.weight, Some(&layer.bias))));
            let us = |t: f64| t * 1e6;
            let case = format!("{m} rows, {threads} thread(s)");
            println!("{case:<22} {:>14.0} {:>14.0} {:>14.0}", us(gemm), us(kernel), us(with_pack));
        });
    }
}
