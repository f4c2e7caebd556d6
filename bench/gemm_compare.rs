//! GEMM backend comparison on the shapes crest actually runs, then timings of the kernels
//! built on the chosen backend: u8 matmuls against widening the whole batch first, and the
//! Fashion-MNIST CNN convolutions, and the MLP's first layer through crest's Linear kernel against the GEMM crate
//! (`bench/torch_linear.py` times the same layer in PyTorch).
//!
//! `cargo run --release --example gemm_compare [gemm|u8|conv|linear]`
//! The machine is shared, so each case reports the best of several timed runs.

use std::time::Instant;

use crest::tensor::kernels::conv::{conv2d_backward, conv2d_forward, Conv2dShape, ConvGrad, ConvOutput};
use crest::tensor::kernels::linear::{linear_forward, pack_weight};
use crest::tensor::kernels::matmul::sgemm;
use crest::tensor::kernels::matmul_u8::{matmul_u8, matmul_u8_tn};

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

fn run_gemm(cs: &Case, o: &mut Operands, par: gemm::Parallelism) {
    // SAFETY: as above. gemm names the scalars the other way round: dst = alpha·dst + beta·lhs·rhs.
    unsafe {
        gemm::gemm(
            cs.m,
            cs.n,
            cs.k,
            o.c.as_mut_ptr(),
            1,
            cs.n as isize,
            false,
            o.a.as_ptr(),
            o.csa,
            o.rsa,
            o.b.as_ptr(),
            o.csb,
            o.rsb,
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
        let t_g2 = best_secs(|| run_gemm(cs, &mut o, gemm::Parallelism::Rayon(2)));
        let t_g1 = best_secs(|| run_gemm(cs, &mut o, gemm::Parallelism::None));
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

/// The linear model's batch: 64 images of 140×140×4 u8.
fn bench_u8() {
    let (m, k) = (64, 140 * 140 * 4);
    let a: Vec<u8> = (0..m * k).map(|i: usize| (i.wrapping_mul(2654435761) >> 11) as u8).collect();
    let scale = 1.0 / 255.0;
    println!("\nu8 matmuls, [{m},{k}] u8 batch, ms (best of 7)");
    println!("{:<28} {:>10} {:>10}", "case", "tiled", "naive");
    for n in [1, 2] {
        let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.01).collect();
        let g: Vec<f32> = (0..m * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut out = vec![0.0; m * n];
        let mut grad = vec![0.0; k * n];
        // The naive baseline pays for widening the whole batch on every call, as it would
        // have to if the u8 batch were converted per step.
        let widen = |a: &[u8]| -> Vec<f32> { a.iter().map(|&v| v as f32).collect() };
        let fwd = best_secs(|| matmul_u8(m, k, n, scale, &a, &b, n, 1, &mut out));
        let fwd_naive = best_secs(|| {
            let af = widen(&a);
            sgemm(m, k, n, scale, &af, k as isize, 1, &b, n as isize, 1, 0.0, &mut out, n as isize, 1);
        });
        let bwd = best_secs(|| matmul_u8_tn(m, k, n, scale, &a, &g, &mut grad, 0.0));
        let bwd_naive = best_secs(|| {
            let af = widen(&a);
            sgemm(k, m, n, scale, &af, 1, k as isize, &g, n as isize, 1, 0.0, &mut grad, n as isize, 1);
        });
        println!("{:<28} {:>10.3} {:>10.3}", format!("forward  A·B   n={n}"), fwd * 1e3, fwd_naive * 1e3);
        println!("{:<28} {:>10.3} {:>10.3}", format!("backward Aᵀ·G  n={n}"), bwd * 1e3, bwd_naive * 1e3);
    }
}

/// The Fashion-MNIST CNN's two convolutions at batch 128.
fn bench_conv() {
    let layers = [
        (
            "conv1 1->32 28x28",
            Conv2dShape { n: 128, c_in: 1, h: 28, w: 28, c_out: 32, kh: 3, kw: 3, stride: 1, pad: 1 },
        ),
        (
            "conv2 32->64 14x14",
            Conv2dShape { n: 128, c_in: 32, h: 14, w: 14, c_out: 64, kh: 3, kw: 3, stride: 1, pad: 1 },
        ),
    ];
    println!("\nconv2d at batch 128, ms and GFLOP/s (best of 7)");
    println!(
        "{:<20} {:>9} {:>8} | {:>9} {:>8} | {:>12} {:>8}",
        "layer", "fwd ms", "GF/s", "bwd ms", "GF/s", "bwd no-dx ms", "GF/s"
    );
    for (name, s) in layers {
        let (oh, ow) = (s.out_h(), s.out_w());
        let x: Vec<f32> = (0..s.n * s.c_in * s.h * s.w).map(|i| (i % 13) as f32 * 0.1 - 0.6).collect();
        let w: Vec<f32> = (0..s.c_out * s.c_in * s.kh * s.kw).map(|i| (i % 7) as f32 * 0.05 - 0.15).collect();
        let bias = vec![0.1; s.c_out];
        let mut out = vec![0.0; s.n * s.c_out * oh * ow];
        let dout = out.clone();
        let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; s.c_out]);
        let flops = 2.0 * (s.n * s.c_out * oh * ow * s.c_in * s.kh * s.kw) as f64;
        let fwd = best_secs(|| conv2d_forward(&s, &x, &w, Some(&bias), ConvOutput::Plain(&mut out)));
        let bwd =
            best_secs(|| conv2d_backward(&s, &x, &w, ConvGrad::Plain(&dout), Some(&mut dx), &mut dw, Some(&mut db)));
        let bwd_w = best_secs(|| conv2d_backward(&s, &x, &w, ConvGrad::Plain(&dout), None, &mut dw, Some(&mut db)));
        println!(
            "{:<20} {:>9.3} {:>8.1} | {:>9.3} {:>8.1} | {:>12.3} {:>8.1}",
            name,
            fwd * 1e3,
            flops / fwd / 1e9,
            bwd * 1e3,
            2.0 * flops / bwd / 1e9,
            bwd_w * 1e3,
            flops / bwd_w / 1e9
        );
    }
}

/// The Fashion MLP's first layer, relu(x·Wᵀ + b) for W [256, 784]: a training batch, half an inference batch on one
/// thread, a whole one on two.
fn bench_linear() {
    let (k, n) = (784, 256);
    println!("\nrelu(x·Wᵀ + b), W [{n}, {k}], µs (best of 7)");
    println!("{:<22} {:>14} {:>14} {:>14}", "case", "gemm crate", "crest packed", "crest + pack");
    for (threads, m) in [(1, 128), (1, 500), (2, 1000)] {
        let fill =
            |len: usize, seed: u32| -> Vec<f32> { (0..len).map(|i| ((i as u32 ^ seed) % 17) as f32 * 0.01).collect() };
        let (x, w, b) = (fill(m * k, 1), fill(n * k, 2), fill(n, 3));
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool");
        let packed = pack_weight(n, k, &w);
        pool.install(|| {
            let kernel = best_secs(|| drop(linear_forward(m, k, n, &x, &w, &packed, Some(&b), true)));
            let gemm = best_secs(|| drop(linear_forward(m, k, n, &x, &w, &[], Some(&b), true)));
            let with_pack = best_secs(|| drop(linear_forward(m, k, n, &x, &w, &pack_weight(n, k, &w), Some(&b), true)));
            let us = |t: f64| t * 1e6;
            let case = format!("{m} rows, {threads} thread(s)");
            println!("{case:<22} {:>14.0} {:>14.0} {:>14.0}", us(gemm), us(kernel), us(with_pack));
        });
    }
}
