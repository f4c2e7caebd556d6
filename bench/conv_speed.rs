//! How long crest's 3×3, stride-1, padding-1 convolutions take on ResNet-18's shapes, one layer at a time: the
//! kernel behind most of a ResNet's time, timed alone so a change to it shows per shape (bench/README.md).
//!
//!     cargo run --release --example conv_speed -- [--reps 10] [--threads N]
//!
//! Per shape (batch, channels, side): `forward` is `x.conv2d(w, None, 1, 1)` without gradients; `train` the same
//! with autograd, then `(y·g).sum().backward()` for a fixed g (so the gradients of x and w, plus that product and sum);
//! `weight_only` the same with x not requiring a gradient. Prints milliseconds per call, the best of `--reps` after
//! one warm-up call, one line per shape.

use crest::rng::Rng;
use crest::tensor::no_grad;
use crest::Tensor;
use std::time::Instant;

/// (batch, channels, side) of each 3×3 stride-1 convolution in ResNet-18 at the sizes `resnet_speed` times.
const SHAPES: [(usize, usize, usize); 12] = [
    (16, 64, 56),
    (16, 128, 28),
    (16, 256, 14),
    (16, 512, 7),
    (64, 64, 16),
    (64, 128, 8),
    (64, 256, 4),
    (64, 512, 2),
    (64, 64, 32),
    (64, 128, 16),
    (64, 256, 8),
    (64, 512, 4),
];

fn best_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut reps, mut threads) = (10, None);
    while let Some(a) = args.next() {
        let v: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{a} needs a number"));
        match a.as_str() {
            "--reps" => reps = v.max(1),
            "--threads" => threads = Some(v.max(1)),
            _ => panic!("unknown option {a}"),
        }
    }
    if let Some(t) = threads {
        rayon::ThreadPoolBuilder::new().num_threads(t).build_global().expect("the first pool");
    }
    let mut rng = Rng::new(0);
    for (n, c, side) in SHAPES {
        let x = Tensor::randn(&[n, c, side, side], 1.0, &mut rng).requires_grad_();
        let w = Tensor::randn(&[c, c, 3, 3], 0.05, &mut rng).requires_grad_();
        let g = Tensor::randn(&[n, c, side, side], 1.0, &mut rng);
        let forward = best_ms(reps, || {
            let _g = no_grad();
            drop(x.conv2d(&w, None, 1, 1));
        });
        let train = best_ms(reps, || {
            x.zero_grad();
            w.zero_grad();
            (&x.conv2d(&w, None, 1, 1) * &g).sum().backward();
        });
        let fixed_x = x.detach();
        let weight_only = best_ms(reps, || {
            w.zero_grad();
            (&fixed_x.conv2d(&w, None, 1, 1) * &g).sum().backward();
        });
        println!(
            "n={n:<3} c={c:<3} side={side:<3} forward_ms={forward:8.3} train_ms={train:8.3} weight_only_ms={weight_only:8.3}"
        );
    }
}
