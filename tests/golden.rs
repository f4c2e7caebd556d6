//! crest against PyTorch. Each `tests/golden/<case>.safetensors`, written by `bench/torch_golden.py`, holds an op's
//! f32 inputs, a fixed random `upstream` of the output's shape, and PyTorch's output and gradients of
//! `(out * upstream).sum()`, computed in f64 from those inputs; the op's scalars are in the file's metadata. crest
//! runs the same computation in f32 and must match every value to the rule of [`relative_error`].

mod common;

use common::relative_error;
use std::collections::HashMap;
use std::str::FromStr;

use crest::loss::{bce_with_logits, cross_entropy, mnist_loss};
use crest::optim::{Adam, Optimizer, SGD};
use crest::tensor::BatchNormState;
use crest::Tensor;
use safetensors::SafeTensors;

const TOLERANCE: f64 = 1e-5;

/// One case's tensors and metadata.
struct Fixture {
    case: String,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    meta: HashMap<String, String>,
}

impl Fixture {
    fn load(case: &str) -> Fixture {
        let path = format!("{}/tests/golden/{case}.safetensors", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e} (run bench/torch_golden.py)"));
        let file = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{path}: {e:?}"));
        let tensors = file
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                assert_eq!(view.dtype(), safetensors::Dtype::F32, "{path}: {name} is not f32");
                let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
                (name, (view.shape().to_vec(), values))
            })
            .collect();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap_or_else(|e| panic!("{path}: {e:?}"));
        Fixture { case: case.to_string(), tensors, meta: header.metadata().clone().unwrap_or_default() }
    }

    /// A fresh copy, so that ops updating a tensor in place (running statistics, optimizers) leave the fixture be.
    fn get(&self, name: &str) -> Tensor {
        let (shape, values) = self.tensors.get(name).unwrap_or_else(|| panic!("{}: no tensor {name}", self.case));
        Tensor::from_vec(values.clone(), shape)
    }

    fn param(&self, name: &str) -> Tensor {
        self.get(name).requires_grad_()
    }

    fn meta<T: FromStr>(&self, key: &str) -> T {
        let text = self.meta.get(key).unwrap_or_else(|| panic!("{}: no metadata {key}", self.case));
        text.parse().unwrap_or_else(|_| panic!("{}: metadata {key} = {text:?} does not parse", self.case))
    }

    /// The loss whose gradients the fixture holds.
    fn backward(&self, out: &Tensor) {
        (out * &self.get("upstream")).sum().backward();
    }

    /// Compares each crest tensor with the fixture's tensor of that name, shape and values.
    fn check(&self, got: &[(&str, Tensor)]) {
        let mut errors = Vec::new();
        for (name, tensor) in got {
            let (shape, want) = &self.tensors[*name];
            assert_eq!(tensor.shape(), shape.as_slice(), "{}: shape of {name}", self.case);
            errors.push((relative_error(&tensor.to_vec(), want), *name));
        }
        let (worst, at) = errors.iter().copied().max_by(|a, b| a.0.total_cmp(&b.0)).expect("tensors to check");
        let each: Vec<String> = errors.iter().map(|(e, name)| format!("{name} {e:.1e}")).collect();
        eprintln!("{}: worst relative error {worst:.2e} ({at})", self.case);
        assert!(
            worst <= TOLERANCE,
            "{}: worst relative error {worst:.2e}, over {TOLERANCE:.0e}: {}",
            self.case,
            each.join(", ")
        );
    }

    /// `out = f(inputs)` with the named inputs as parameters, then `out` and each `grad_<input>` checked.
    fn check_op(&self, inputs: &[&str], f: impl FnOnce(&[Tensor]) -> Tensor) {
        let params: Vec<Tensor> = inputs.iter().map(|name| self.param(name)).collect();
        let out = f(&params);
        self.backward(&out);
        let names: Vec<String> = inputs.iter().map(|name| format!("grad_{name}")).collect();
        let mut got = vec![("out", out)];
        got.extend(names.iter().map(String::as_str).zip(params.iter().map(grad)));
        self.check(&got);
    }
}

fn grad(t: &Tensor) -> Tensor {
    t.grad().expect("backward reached this input")
}

#[test]
fn linear_and_matmul() {
    for case in ["linear", "linear_wide"] {
        Fixture::load(case).check_op(&["x", "weight", "bias"], |p| p[0].linear(&p[1], Some(&p[2])));
    }
    Fixture::load("matmul").check_op(&["a", "b"], |p| p[0].matmul(&p[1]));
}

#[test]
fn conv2d() {
    for case in ["conv2d_s2p1", "conv2d_s1p1", "conv2d_1x1"] {
        let fx = Fixture::load(case);
        let (stride, pad) = (fx.meta("stride"), fx.meta("padding"));
        fx.check_op(&["x", "weight", "bias"], |p| p[0].conv2d(&p[1], Some(&p[2]), stride, pad));
    }
}

#[test]
fn pooling() {
    for case in ["max_pool2d_k2s2", "max_pool2d_k3s2p1"] {
        let fx = Fixture::load(case);
        let (k, stride, pad) = (fx.meta("kernel"), fx.meta("stride"), fx.meta("padding"));
        fx.check_op(&["x"], |p| p[0].max_pool2d(k, stride, pad));
    }
    let fx = Fixture::load("avg_pool2d_k3s1p1");
    let (k, stride, pad) = (fx.meta("kernel"), fx.meta("stride"), fx.meta("padding"));
    fx.check_op(&["x"], |p| p[0].avg_pool2d(k, stride, pad));
    Fixture::load("global_avg_pool2d").check_op(&["x"], |p| p[0].global_avg_pool2d());
}

#[test]
fn batch_norm_train_and_eval() {
    for case in ["batch_norm2d_train", "batch_norm2d_eval", "batch_norm1d_train"] {
        let fx = Fixture::load(case);
        let [x, gamma, beta] = ["x", "gamma", "beta"].map(|name| fx.param(name));
        let (running_mean, running_var) = (fx.get("running_mean"), fx.get("running_var"));
        let st = BatchNormState {
            gamma: &gamma,
            beta: &beta,
            running_mean: &running_mean,
            running_var: &running_var,
            momentum: fx.meta("momentum"),
            eps: fx.meta("eps"),
        };
        let out = if fx.meta("training") { x.batch_norm_train(&st) } else { x.batch_norm_eval(&st) };
        fx.backward(&out);
        fx.check(&[
            ("out", out),
            ("grad_x", grad(&x)),
            ("grad_gamma", grad(&gamma)),
            ("grad_beta", grad(&beta)),
            ("running_mean_after", running_mean),
            ("running_var_after", running_var),
        ]);
    }
}

#[test]
fn losses() {
    let fx = Fixture::load("cross_entropy");
    fx.check_op(&["logits"], |p| cross_entropy(&p[0], &fx.get("targets")));
    let fx = Fixture::load("bce_with_logits");
    fx.check_op(&["logits"], |p| bce_with_logits(&p[0], &fx.get("targets")));
    let fx = Fixture::load("mnist_loss");
    fx.check_op(&["predictions"], |p| mnist_loss(&p[0], &fx.get("targets")));
}

#[test]
fn activations() {
    Fixture::load("relu").check_op(&["x"], |p| p[0].relu());
    Fixture::load("sigmoid").check_op(&["x"], |p| p[0].sigmoid());
    Fixture::load("tanh").check_op(&["x"], |p| p[0].tanh());
}

/// Gradients through a chain of ops, with crest's fused conv–ReLU–pool and Linear–ReLU against PyTorch's separate
/// ops.
#[test]
fn small_cnn() {
    let fx = Fixture::load("small_cnn");
    let pad = fx.meta("padding");
    let inputs = ["x", "conv_weight", "conv_bias", "hidden_weight", "hidden_bias", "out_weight", "out_bias"];
    fx.check_op(&inputs, |p| {
        let h = p[0].conv2d_relu_maxpool2(&p[1], Some(&p[2]), 1, pad).flatten();
        let logits = h.linear_relu(&p[3], Some(&p[4])).linear(&p[5], Some(&p[6]));
        cross_entropy(&logits, &fx.get("targets"))
    });
}

/// Each fixture's `steps` steps from the given gradients, parameters `a` and `b` checked after every step.
fn check_optimizer(case: &str, make: impl FnOnce(&Fixture, Vec<Tensor>) -> Box<dyn Optimizer>) {
    let fx = Fixture::load(case);
    let params = ["a", "b"].map(|name| (name, fx.param(name)));
    let mut opt = make(&fx, params.iter().map(|(_, p)| p.clone()).collect());
    let mut after = Vec::new();
    for t in 1..=fx.meta::<usize>("steps") {
        opt.zero_grad();
        for (name, p) in &params {
            (p * &fx.get(&format!("grad{t}_{name}"))).sum().backward();
        }
        opt.step();
        // A copy: the next step updates the parameter's values in place.
        after.extend(
            params.iter().map(|(name, p)| (format!("after{t}_{name}"), Tensor::from_vec(p.to_vec(), p.shape()))),
        );
    }
    fx.check(&after.iter().map(|(name, p)| (name.as_str(), p.clone())).collect::<Vec<_>>());
}

#[test]
fn adam() {
    let adam = |fx: &Fixture, mut opt: Adam| {
        opt.betas = (fx.meta("beta1"), fx.meta("beta2"));
        opt.eps = fx.meta("eps");
        Box::new(opt.weight_decay(fx.meta("weight_decay"))) as Box<dyn Optimizer>
    };
    check_optimizer("adam", |fx, params| adam(fx, Adam::new(params, fx.meta("lr"))));
    check_optimizer("adam_l2", |fx, params| adam(fx, Adam::new(params, fx.meta("lr"))));
    check_optimizer("adamw", |fx, params| adam(fx, Adam::adamw(params, fx.meta("lr"))));
}

#[test]
fn sgd() {
    for case in ["sgd_momentum", "sgd_momentum_wd"] {
        check_optimizer(case, |fx, params| {
            Box::new(
                SGD::new(params, fx.meta("lr")).momentum(fx.meta("momentum")).weight_decay(fx.meta("weight_decay")),
            )
        });
    }
}
