//! GEMM backend comparison on the shapes crest actually runs.
//!
//! `cargo run --release --example gemm_compare`
//! The machine is shared, so each case reports the best of several timed runs.

use std::time::Instant;

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
    Case {
        name: "mlp1 fwd  X·W",
        m: 128,
        k: 784,
        n: 256,
        ta: false,
        tb: false,
    },
    Case {
        name: "mlp1 dW   Xᵀ·G",
        m: 784,
        k: 128,
        n: 256,
        ta: true,
        tb: false,
    },
    Case {
        name: "mlp1 dX   G·Wᵀ",
        m: 128,
        k: 256,
        n: 784,
        ta: false,
        tb: true,
    },
    Case {
        name: "mlp2 fwd",
        m: 128,
        k: 256,
        n: 10,
        ta: false,
        tb: false,
    },
    Case {
        name: "mlp2 dW",
        m: 256,
        k: 128,
        n: 10,
        ta: true,
        tb: false,
    },
    Case {
        name: "mlp2 dX",
        m: 128,
        k: 10,
        n: 256,
        ta: false,
        tb: true,
    },
    Case {
        name: "conv1 fwd cols·W",
        m: 25088,
        k: 9,
        n: 32,
        ta: false,
        tb: false,
    },
    Case {
        name: "conv1 dW  colsᵀ·G",
        m: 9,
        k: 25088,
        n: 32,
        ta: true,
        tb: false,
    },
    Case {
        name: "conv1 dcols G·Wᵀ",
        m: 25088,
        k: 32,
        n: 9,
        ta: false,
        tb: true,
    },
    Case {
        name: "conv2 fwd cols·W",
        m: 6272,
        k: 288,
        n: 64,
        ta: false,
        tb: false,
    },
    Case {
        name: "conv2 dW  colsᵀ·G",
        m: 288,
        k: 6272,
        n: 64,
        ta: true,
        tb: false,
    },
    Case {
        name: "conv2 dcols G·Wᵀ",
        m: 6272,
        k: 64,
        n: 288,
        ta: false,
        tb: true,
    },
    Case {
        name: "conv1/img W·cols",
        m: 32,
        k: 9,
        n: 784,
        ta: false,
        tb: false,
    },
    Case {
        name: "conv2/img W·cols",
        m: 64,
        k: 288,
        n: 196,
        ta: false,
        tb: false,
    },
    Case {
        name: "conv2/img dW G·colsᵀ",
        m: 64,
        k: 196,
        n: 288,
        ta: false,
        tb: true,
    },
    Case {
        name: "conv2/img dcols Wᵀ·G",
        m: 288,
        k: 64,
        n: 196,
        ta: true,
        tb: false,
    },
    Case {
        name: "linear fwd n=1",
        m: 64,
        k: 78400,
        n: 1,
        ta: false,
        tb: false,
    },
    Case {
        name: "linear dW  Xᵀ·G n=1",
        m: 78400,
        k: 64,
        n: 1,
        ta: true,
        tb: false,
    },
    Case {
        name: "linear dW  Xᵀ·G n=2",
        m: 78400,
        k: 64,
        n: 2,
        ta: true,
        tb: false,
    },
    Case {
        name: "tiny 16x16x16",
        m: 16,
        k: 16,
        n: 16,
        ta: false,
        tb: false,
    },
    Case {
        name: "small 32x32x32",
        m: 32,
        k: 32,
        n: 32,
        ta: false,
        tb: false,
    },
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
            .map(|i| {
                ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / 16_777_216.0
                    - 0.5
            })
            .collect()
    };
    let (m, k, n) = (cs.m as isize, cs.k as isize, cs.n as isize);
    let (rsa, csa) = if cs.ta { (1, m) } else { (k, 1) };
    let (rsb, csb) = if cs.tb { (1, k) } else { (n, 1) };
    Operands {
        a: fill(cs.m * cs.k, 1),
        b: fill(cs.k * cs.n, 2),
        c: vec![0.0; cs.m * cs.n],
        rsa,
        csa,
        rsb,
        csb,
    }
}

fn best_secs(mut f: impl FnMut(), flops: f64) -> f64 {
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
    let _ = flops;
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

fn main() {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global()
        .ok();
    println!(
        "{:<24} {:>7} {:>6} {:>6} | {:>10} {:>10} {:>10} | GFLOP/s (best of 7)",
        "case", "m", "k", "n", "mm(thr)", "gemm(R2)", "gemm(1)"
    );
    let (mut tot_mm, mut tot_g2, mut tot_g1) = (0.0, 0.0, 0.0);
    for cs in CASES {
        let mut o = operands(cs);
        let flops = 2.0 * (cs.m * cs.k * cs.n) as f64;
        let t_mm = best_secs(|| run_mm(cs, &mut o), flops);
        let t_g2 = best_secs(|| run_gemm(cs, &mut o, gemm::Parallelism::Rayon(2)), flops);
        let t_g1 = best_secs(|| run_gemm(cs, &mut o, gemm::Parallelism::None), flops);
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
