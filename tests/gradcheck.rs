//! Every differentiable op's gradient against central finite differences, broadcasting cases included.

use crest::rng::Rng;
use crest::tensor::gradcheck::max_grad_error;
use crest::Tensor;

fn param(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, 1.0, &mut Rng::new(seed)).requires_grad_()
}

/// Positive values, for log, sqrt, powf and division.
fn positive(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand_uniform(shape, 0.5, 2.0, &mut Rng::new(seed)).requires_grad_()
}

/// A fixed random weighting makes the scalar depend on every output element differently.
fn weighted(t: &Tensor) -> Tensor {
    let w = Tensor::randn(t.shape(), 1.0, &mut Rng::new(99));
    (t * &w).sum()
}

fn check(name: &str, f: impl Fn(&[Tensor]) -> Tensor, inputs: &[Tensor]) {
    let err = max_grad_error(f, inputs, 1e-2);
    assert!(err < 2e-2, "{name}: gradient off by {err} (relative)");
}

#[test]
fn binary_ops_same_shape_and_broadcast() {
    let cases: [(&[usize], &[usize]); 5] =
        [(&[3, 4], &[3, 4]), (&[3, 4], &[4]), (&[3, 1], &[1, 4]), (&[2, 3, 4], &[3, 1]), (&[3, 4], &[])];
    for (sa, sb) in cases {
        check("add", |x| weighted(&(&x[0] + &x[1])), &[param(sa, 1), param(sb, 2)]);
        check("sub", |x| weighted(&(&x[0] - &x[1])), &[param(sa, 1), param(sb, 2)]);
        check("mul", |x| weighted(&(&x[0] * &x[1])), &[param(sa, 1), param(sb, 2)]);
        check("div", |x| weighted(&(&x[0] / &x[1])), &[param(sa, 1), positive(sb, 2)]);
        check("div, broadcast lhs", |x| weighted(&(&x[1] / &x[0])), &[positive(sa, 1), param(sb, 2)]);
    }
    check("scalar ops", |x| weighted(&(1.0 - &x[0] * 2.0)), &[param(&[5], 3)]);
}

#[test]
fn unary_ops() {
    check("neg", |x| weighted(&-&x[0]), &[param(&[2, 3], 1)]);
    check("exp", |x| weighted(&x[0].exp()), &[param(&[2, 3], 1)]);
    check("log", |x| weighted(&x[0].log()), &[positive(&[2, 3], 1)]);
    check("sqrt", |x| weighted(&x[0].sqrt()), &[positive(&[2, 3], 1)]);
    check("powf", |x| weighted(&x[0].powf(3.0)), &[positive(&[2, 3], 1)]);
    check("sigmoid", |x| weighted(&x[0].sigmoid()), &[param(&[2, 3], 1)]);
    check("tanh", |x| weighted(&x[0].tanh()), &[param(&[2, 3], 1)]);
    // Kinks at 0: keep inputs away from them.
    let away = Tensor::from_vec(vec![-1.5, -0.3, 0.4, 2.0, -0.8, 1.1], &[2, 3]).requires_grad_();
    check("relu", |x| weighted(&x[0].relu()), std::slice::from_ref(&away));
    check("abs", |x| weighted(&x[0].abs()), &[away]);
}

#[test]
fn reductions() {
    check("sum", |x| x[0].sum() * 3.0, &[param(&[3, 4], 1)]);
    check("mean", |x| x[0].mean(), &[param(&[3, 4], 1)]);
    for axis in [0, 1, 2, -1] {
        check("sum_axis", |x| weighted(&x[0].sum_axis(axis)), &[param(&[2, 3, 4], 1)]);
        check("sum_axis_keepdim", |x| weighted(&x[0].sum_axis_keepdim(axis)), &[param(&[2, 3, 4], 1)]);
        check("mean_axis", |x| weighted(&x[0].mean_axis(axis)), &[param(&[2, 3, 4], 1)]);
        check("mean_axis_keepdim", |x| weighted(&x[0].mean_axis_keepdim(axis)), &[param(&[2, 3, 4], 1)]);
        check("max_axis", |x| weighted(&x[0].max_axis(axis)), &[param(&[2, 3, 4], 1)]);
        check("max_axis_keepdim", |x| weighted(&x[0].max_axis_keepdim(axis)), &[param(&[2, 3, 4], 1)]);
    }
    check("max", |x| x[0].max(), &[param(&[3, 4], 1)]);
    check("min", |x| x[0].min(), &[param(&[3, 4], 1)]);
}

#[test]
fn matmul_both_operands() {
    check("matmul", |x| weighted(&x[0].matmul(&x[1])), &[param(&[3, 5], 1), param(&[5, 2], 2)]);
    check("matmul, vector out", |x| weighted(&x[0].matmul(&x[1])), &[param(&[4, 7], 1), param(&[7, 1], 2)]);
}

#[test]
fn linear_all_three_gradients() {
    check(
        "linear",
        |x| weighted(&x[0].linear(&x[1], Some(&x[2]))),
        &[param(&[3, 5], 1), param(&[4, 5], 2), param(&[4], 3)],
    );
    check("linear, one output", |x| weighted(&x[0].linear(&x[1], None)), &[param(&[6, 2], 1), param(&[1, 2], 2)]);
    // 20 outputs: past the GEMM's few-column path, so the AVX-512 kernel runs where the CPU has it.
    check(
        "linear, 20 outputs",
        |x| weighted(&x[0].linear(&x[1], Some(&x[2]))),
        &[param(&[2, 3], 1), param(&[20, 3], 2), param(&[20], 3)],
    );
}

/// Checked against the two gradient-checked ops it replaces (finite differences across ReLU's kink are not).
#[test]
fn linear_relu_fused_equals_the_two_ops() {
    for (m, k, n) in [(7, 9, 20), (130, 50, 70), (3, 4, 5)] {
        let inputs = [param(&[m, k], 4), param(&[n, k], 5), param(&[n], 6)];
        let run = |fused: bool| {
            inputs.iter().for_each(Tensor::zero_grad);
            let [x, w, b] = &inputs;
            let y = if fused { x.linear_relu(w, Some(b)) } else { x.linear(w, Some(b)).relu() };
            weighted(&y).backward();
            let grads: Vec<Vec<f32>> = inputs.iter().map(|t| t.grad().expect("a gradient").to_vec()).collect();
            (y.to_vec(), grads)
        };
        let (fused, unfused) = (run(true), run(false));
        assert!(fused.0.contains(&0.0) && fused.0.iter().any(|&v| v > 0.0), "ReLU cuts some, not all");
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fused.0), bits(&unfused.0), "values for {m}×{k}×{n}");
        for (i, (f, u)) in fused.1.iter().zip(&unfused.1).enumerate() {
            assert_eq!(bits(f), bits(u), "gradient {i} for {m}×{k}×{n}");
        }
    }
}

#[test]
fn shape_ops() {
    check("reshape", |x| weighted(&x[0].reshape(&[6, 2])), &[param(&[3, 4], 1)]);
    check("view", |x| weighted(&x[0].view(&[2, -1])), &[param(&[3, 4], 1)]);
    check("transpose", |x| weighted(&x[0].t()), &[param(&[3, 4], 1)]);
    check("permute", |x| weighted(&x[0].permute(&[2, 0, 1])), &[param(&[2, 3, 4], 1)]);
    check(
        "cat axis 0",
        |x| weighted(&Tensor::cat(&[x[0].clone(), x[1].clone()], 0)),
        &[param(&[2, 3], 1), param(&[4, 3], 2)],
    );
    check(
        "cat axis 1",
        |x| weighted(&Tensor::cat(&[x[0].clone(), x[1].clone()], 1)),
        &[param(&[2, 3], 1), param(&[2, 1], 2)],
    );
    check("narrow", |x| weighted(&x[0].narrow(1, 1, 2)), &[param(&[2, 4, 3], 1)]);
    check(
        "stack",
        |x| weighted(&Tensor::stack(&[x[0].clone(), x[1].clone()], 1)),
        &[param(&[2, 3], 1), param(&[2, 3], 2)],
    );
}

#[test]
fn where_routes_gradients() {
    let cond = Tensor::from_vec(vec![1.0, 0.0, 1.0, 0.0, 0.0, 1.0], &[3, 2]);
    check("where", |x| weighted(&Tensor::where_(&cond, &x[0], &x[1])), &[param(&[3, 2], 1), param(&[2], 2)]);
    // The post's loss shape: where(t==1, 1-p, p) with the target a column.
    let t = Tensor::from_vec(vec![1.0, 0.0, 1.0], &[3, 1]);
    check(
        "logo loss form",
        |x| {
            let p = x[0].sigmoid();
            Tensor::where_(&t.eq_scalar(1.0), &(1.0 - &p), &p).mean()
        },
        &[param(&[3, 1], 1)],
    );
}

#[test]
fn gradients_accumulate_until_zeroed() {
    let w = param(&[3], 1);
    (&w * 2.0).sum().backward();
    (&w * 2.0).sum().backward();
    assert_eq!(w.grad().unwrap().to_vec(), vec![4.0; 3]);
    w.zero_grad();
    (&w * 2.0).sum().backward();
    assert_eq!(w.grad().unwrap().to_vec(), vec![2.0; 3]);
}

#[test]
fn a_tensor_used_twice_gets_both_gradients() {
    let x = param(&[4], 1);
    (&x * &x).sum().backward();
    let expect: Vec<f32> = x.to_vec().iter().map(|v| 2.0 * v).collect();
    assert_eq!(x.grad().unwrap().to_vec(), expect);
}

#[test]
fn no_grad_records_nothing() {
    let w = param(&[2], 1);
    let y = {
        let _g = crest::tensor::no_grad();
        (&w * 3.0).sum()
    };
    assert!(!y.requires_grad());
    assert!((&w * 3.0).sum().requires_grad());
}

#[test]
fn u8_inputs_match_f32_inputs() {
    // A small batch is widened once; one over 1 MB streams through the u8 kernels. Both must match f32 inputs.
    for (rows, cols) in [(6, 5), (16, 70_001)] {
        let bytes: Vec<u8> = (0..rows * cols).map(|i| (i * 37 % 256) as u8).collect();
        let xu = Tensor::from_u8(bytes.clone(), &[rows, cols], 1.0 / 255.0);
        let xf = Tensor::from_vec(bytes.iter().map(|&b| b as f32 * (1.0 / 255.0)).collect(), &[rows, cols]);
        let (w1, w2) = (param(&[cols, 2], 3), param(&[cols, 2], 3));
        let (l1, l2) = (param(&[3, cols], 4), param(&[3, cols], 4));
        let (yu, yf) = (xu.matmul(&w1), xf.matmul(&w2));
        let (zu, zf) = (xu.linear(&l1, None), xf.linear(&l2, None));
        for (a, b) in yu.to_vec().iter().chain(&zu.to_vec()).zip(yf.to_vec().iter().chain(&zf.to_vec())) {
            assert!((a - b).abs() < 1e-3 * (1.0 + b.abs()), "forward {a} vs {b}");
        }
        (weighted(&yu) + weighted(&zu)).backward();
        (weighted(&yf) + weighted(&zf)).backward();
        for (p1, p2) in [(w1, w2), (l1, l2)] {
            for (a, b) in p1.grad().unwrap().to_vec().iter().zip(p2.grad().unwrap().to_vec()) {
                assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "gradient {a} vs {b}");
            }
        }
        assert_eq!(xu.flatten().to_vec(), xf.to_vec());
        assert_eq!(xu.narrow(0, 1, 2).to_vec(), xf.narrow(0, 1, 2).to_vec());
    }
}

#[test]
fn conv2d_all_three_gradients() {
    for (stride, pad) in [(1, 1), (2, 0), (2, 1)] {
        check(
            "conv2d",
            |x| weighted(&x[0].conv2d(&x[1], Some(&x[2]), stride, pad)),
            &[param(&[2, 3, 5, 6], 1), param(&[4, 3, 3, 3], 2), param(&[4], 3)],
        );
    }
    check(
        "conv2d, no bias",
        |x| weighted(&x[0].conv2d(&x[1], None, 1, 0)),
        &[param(&[1, 1, 4, 4], 1), param(&[2, 1, 2, 2], 2)],
    );
}

/// The fused ops are checked against the ops they replace (each gradient-checked here): the same values and the
/// same gradients, bit for bit, including odd sizes where pooling drops a row and a column, and batches of one
/// image (written in place) and of several (through a tile).
#[test]
fn conv_relu_and_conv_relu_maxpool_fused_equal_the_ops_they_replace() {
    let cases = [([3, 2, 8, 8], 1, 1), ([2, 3, 9, 7], 1, 0), ([2, 2, 10, 11], 2, 1), ([1, 2, 6, 6], 1, 1)];
    for ((xs, stride, pad), pool) in cases.into_iter().flat_map(|c| [(c, true), (c, false)]) {
        let inputs = [param(&xs, 1), param(&[4, xs[1], 3, 3], 2), param(&[4], 3)];
        let run = |fused: bool| {
            inputs.iter().for_each(Tensor::zero_grad);
            let [x, w, b] = &inputs;
            let y = match (fused, pool) {
                (true, true) => x.conv2d_relu_maxpool2(w, Some(b), stride, pad),
                (false, true) => x.conv2d(w, Some(b), stride, pad).relu().max_pool2d(2, 2, 0),
                (true, false) => x.conv2d_relu(w, Some(b), stride, pad),
                (false, false) => x.conv2d(w, Some(b), stride, pad).relu(),
            };
            weighted(&y).backward();
            let mut values = vec![y.to_vec(), y.shape().iter().map(|&d| d as f32).collect()];
            values.extend(inputs.iter().map(|t| t.grad().expect("a gradient").to_vec()));
            values
        };
        let case = if pool { "conv2d_relu_maxpool2" } else { "conv2d_relu" };
        assert_same_bits(&run(true), &run(false), &format!("{case}, input {xs:?}"));
    }
}

#[test]
fn pooling() {
    // Distinct values a finite-difference step cannot reorder, so max pooling's choice is stable.
    let distinct: Vec<f32> = (0..2 * 2 * 4 * 6).map(|i| ((i * 37) % 97) as f32 * 0.1).collect();
    let x = Tensor::from_vec(distinct, &[2, 2, 4, 6]).requires_grad_();
    check("max_pool2d", |x| weighted(&x[0].max_pool2d(2, 2, 0)), std::slice::from_ref(&x));
    check("avg_pool2d", |x| weighted(&x[0].avg_pool2d(3, 1, 1)), std::slice::from_ref(&x));
    check("global_avg_pool2d", |x| weighted(&x[0].global_avg_pool2d()), &[x]);
}

#[test]
fn batch_norm_train_and_eval() {
    use crest::tensor::BatchNormState;
    let (rm, rv) = (Tensor::zeros(&[3]), Tensor::ones(&[3]));
    for (shape, training) in [(&[4, 3][..], true), (&[2, 3, 2, 2][..], true), (&[2, 3, 2, 2][..], false)] {
        check(
            "batch_norm",
            |x| {
                let st = BatchNormState {
                    gamma: &x[1],
                    beta: &x[2],
                    running_mean: &rm,
                    running_var: &rv,
                    momentum: 0.0,
                    eps: 1e-5,
                };
                weighted(&if training { x[0].batch_norm_train(&st) } else { x[0].batch_norm_eval(&st) })
            },
            &[param(shape, 1), positive(&[3], 2), param(&[3], 3)],
        );
    }
}

/// The fused add + ReLU against the two ops (each gradient-checked here), bit for bit.
#[test]
fn add_relu_fused_equals_the_two_ops() {
    let inputs = [param(&[2, 3, 4], 7), param(&[2, 3, 4], 8)];
    let run = |fused: bool| {
        inputs.iter().for_each(Tensor::zero_grad);
        let [a, b] = &inputs;
        let y = if fused { a.add_relu(b) } else { a.add(b).relu() };
        weighted(&y).backward();
        let mut values = vec![y.to_vec()];
        values.extend(inputs.iter().map(|t| t.grad().expect("a gradient").to_vec()));
        values
    };
    assert_same_bits(&run(true), &run(false), "add_relu");
}

/// `fused` and `unfused` (an output first, then what else the test collected) equal bit for bit, with an output
/// that the ReLU cut in places, not everywhere.
fn assert_same_bits(fused: &[Vec<f32>], unfused: &[Vec<f32>], case: &str) {
    assert!(fused[0].contains(&0.0) && fused[0].iter().any(|&v| v > 0.0), "{case}: ReLU cuts some, not all");
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    for (i, (f, u)) in fused.iter().zip(unfused).enumerate() {
        assert_eq!(bits(f), bits(u), "{case}: output or what followed it, number {i}");
    }
}

/// The fused batch norm + ReLU against the two ops (each gradient-checked here): the same values, the same running
/// statistics and the same gradients, bit for bit.
#[test]
fn batch_norm_relu_fused_equals_the_two_ops() {
    use crest::tensor::BatchNormState;
    for shape in [&[5, 3][..], &[2, 3, 4, 5][..]] {
        let inputs = [param(shape, 4), positive(&[3], 5), param(&[3], 6)];
        let run = |fused: bool| {
            inputs.iter().for_each(Tensor::zero_grad);
            let (rm, rv) = (Tensor::zeros(&[3]), Tensor::ones(&[3]));
            let [x, gamma, beta] = &inputs;
            let st = BatchNormState { gamma, beta, running_mean: &rm, running_var: &rv, momentum: 0.1, eps: 1e-5 };
            let y = if fused { x.batch_norm_relu_train(&st) } else { x.batch_norm_train(&st).relu() };
            weighted(&y).backward();
            let mut values = vec![y.to_vec(), rm.to_vec(), rv.to_vec()];
            values.extend(inputs.iter().map(|t| t.grad().expect("a gradient").to_vec()));
            values
        };
        assert_same_bits(&run(true), &run(false), &format!("batch_norm_relu_train, input {shape:?}"));
    }
}

#[test]
fn losses() {
    use crest::loss::{bce_with_logits, cross_entropy, mnist_loss};
    let t = Tensor::from_vec(vec![1.0, 0.0, 1.0, 0.0], &[4, 1]);
    check("mnist_loss", |x| mnist_loss(&x[0], &t), &[param(&[4, 1], 1)]);
    check("bce_with_logits", |x| bce_with_logits(&x[0], &t), &[param(&[4, 1], 1)]);
    let labels = Tensor::from_vec(vec![2.0, 0.0, 1.0], &[3]);
    check("cross_entropy", |x| cross_entropy(&x[0], &labels), &[param(&[3, 4], 1)]);
}

#[test]
fn fused_losses_match_their_definitions_and_stay_finite() {
    use crest::loss::{bce_with_logits, cross_entropy};
    let x = Tensor::from_vec(vec![0.3, -1.2, 2.0, -0.4], &[4, 1]);
    let t = Tensor::from_vec(vec![1.0, 0.0, 0.0, 1.0], &[4, 1]);
    let p = x.sigmoid();
    let by_hand = -(&t * &p.log() + (1.0 - &t) * (1.0 - &p).log()).mean();
    assert!((bce_with_logits(&x, &t).item() - by_hand.item()).abs() < 1e-6);
    let logits = Tensor::from_vec(vec![1.0, 2.0, 3.0, 1.0, 1.0, 1.0], &[2, 3]);
    let labels = Tensor::from_vec(vec![2.0, 0.0], &[2]);
    let expected = ((1.0f32.exp() + 2.0f32.exp() + 3.0f32.exp()).ln() - 3.0 + 3.0f32.ln()) / 2.0;
    assert!((cross_entropy(&logits, &labels).item() - expected).abs() < 1e-6);
    // Saturated logits: the naive forms give inf or NaN, the fused ones a finite loss.
    let huge = Tensor::from_vec(vec![1000.0, -1000.0], &[2, 1]);
    assert!((bce_with_logits(&huge, &Tensor::from_vec(vec![0.0, 1.0], &[2, 1])).item() - 1000.0).abs() < 1e-3);
    let wide = Tensor::from_vec(vec![1000.0, 0.0], &[1, 2]);
    assert!((cross_entropy(&wide, &Tensor::from_vec(vec![1.0], &[1])).item() - 1000.0).abs() < 1e-3);
}

/// The checker against gradients known to be wrong. `f + k·(f − f.detach())` has `f`'s values everywhere but
/// `(1 + k)` times its gradient, so it stands for an op whose backward is off by that factor; the checker's relative
/// rule should measure `|k| / max(1, 1 + k)`: 0.5 for a gradient 2× too large, about 0.1 for one 10% off, both far
/// over the 2e-2 that [`check`] allows. f32 finite differences are noisy to a few 1e-3 (the conv's correct gradient
/// measures 5e-3), which bounds how close to the expected value the measurement can be asked to come. One op linear
/// in its inputs, and one that is not, where finite differences carry a truncation error too.
#[test]
fn finite_differences_catch_a_gradient_off_by_ten_percent() {
    fn catches(name: &str, f: impl Fn(&[Tensor]) -> Tensor, inputs: &[Tensor]) {
        check(name, &f, inputs);
        for k in [1.0, 0.1, -0.1] {
            let skewed = |x: &[Tensor]| {
                let y = f(x);
                &y + (&y - &y.detach()) * k
            };
            let err = max_grad_error(skewed, inputs, 1e-2);
            let expected = k.abs() / (1.0 + k).max(1.0);
            assert!(
                (err - expected).abs() < 1e-2,
                "{name}, gradient × {}: measured {err}, expected {expected}",
                1.0 + k
            );
        }
    }
    catches(
        "conv2d",
        |x| weighted(&x[0].conv2d(&x[1], Some(&x[2]), 2, 1)),
        &[param(&[2, 3, 5, 6], 1), param(&[4, 3, 3, 3], 2), param(&[4], 3)],
    );
    catches(
        "tanh, matmul, sigmoid",
        |x| weighted(&x[0].tanh().matmul(&x[1]).sigmoid()),
        &[param(&[3, 4], 1), param(&[4, 2], 2)],
    );
}
