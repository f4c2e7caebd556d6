//! crest's ResNets against torchvision's. Each `tests/fixtures/resnet/<case>.safetensors`, written by
//! `bench/torch_resnet_fixture.py`, is a narrow torchvision ResNet's `state_dict` under torchvision's names (with
//! perturbed BatchNorm statistics) plus real input images, the eval-mode logits, and the loss in the case's mode
//! (train for ResNet-18 and -34, eval for ResNet-50: see the script for why), every parameter's gradient and the
//! running statistics after a train-mode pass, computed by PyTorch in float64; its metadata tells how far
//! PyTorch's own float32 pass is from that reference.

mod common;

use common::relative_error;
use crest::loss::cross_entropy;
use crest::nn::{LayerSpec, Module, ResNet};
use crest::rng::Rng;
use crest::tensor::no_grad;
use crest::Tensor;
use safetensors::SafeTensors;
use std::collections::HashMap;
use std::path::PathBuf;

/// Logits within this relative error of PyTorch's (the bar).
const LOGITS_TOLERANCE: f64 = 1e-4;
/// The loss pass (loss, gradients, statistics) may be this many times further from the float64 reference than
/// PyTorch's float32 pass is, or [`LOGITS_TOLERANCE`] where that is more: a deep network's gradients through
/// batch statistics are less well-conditioned than its logits (PyTorch's float32 ResNet-34 fixture is 5e-4 off),
/// so the bar is PyTorch's own, with room for a different but equally exact order of summation.
const LOSS_TOLERANCE_VS_TORCH_F32: f64 = 3.0;

struct Case {
    name: &'static str,
    depth: usize,
    channels: usize,
    classes: usize,
    width: usize,
}

const CASES: [Case; 3] = [
    Case { name: "resnet18_w4", depth: 18, channels: 3, classes: 5, width: 4 },
    Case { name: "resnet34_w2", depth: 34, channels: 4, classes: 3, width: 2 },
    Case { name: "resnet50_w2", depth: 50, channels: 1, classes: 2, width: 2 },
];

fn path(case: &str) -> PathBuf {
    PathBuf::from(format!("{}/tests/fixtures/resnet/{case}.safetensors", env!("CARGO_MANIFEST_DIR")))
}

/// The fixture's f32 tensors by name (the int64 `num_batches_tracked` left out), the mode of its loss pass
/// (whether it trains), and how far PyTorch's float32 pass is from the reference.
fn fixture(case: &str) -> (HashMap<String, Tensor>, bool, f64) {
    let bytes = std::fs::read(path(case)).unwrap_or_else(|e| panic!("{case}: {e} (run bench/torch_resnet_fixture.py)"));
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let f32s = file.tensors().into_iter().filter(|(_, v)| v.dtype() == safetensors::Dtype::F32);
    let tensors = f32s
        .map(|(name, view)| {
            let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
            (name, Tensor::from_vec(values, view.shape()))
        })
        .collect();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = |key: &str| header.metadata().as_ref().and_then(|m| m.get(key).cloned());
    let training = meta("mode").unwrap_or_else(|| panic!("{case}: no mode in the metadata")) == "train";
    let torch_f32_error = meta("torch_f32_error").and_then(|e| e.parse().ok());
    (tensors, training, torch_f32_error.unwrap_or_else(|| panic!("{case}: no torch_f32_error in the metadata")))
}

fn check(case: &str, what: &str, got: &Tensor, want: &Tensor, tolerance: f64) -> f64 {
    assert_eq!(got.shape(), want.shape(), "{case}: shape of {what}");
    let e = relative_error(&got.to_vec(), &want.to_vec());
    assert!(e <= tolerance, "{case}: {what} is off by {e:.2e} relative, over {tolerance:.0e}");
    e
}

/// The torchvision state_dict in the fixture loads into crest's ResNet of the same shape by name, as it is; then
/// eval-mode logits, the loss, every gradient and (in train mode) the updated running statistics match PyTorch's.
#[test]
fn matches_torchvision_in_eval_and_train_mode() {
    for c in CASES {
        let (fixture, training, torch_f32_error) = fixture(c.name);
        let tolerance = (LOSS_TOLERANCE_VS_TORCH_F32 * torch_f32_error).max(LOGITS_TOLERANCE);
        let mut model = ResNet::with_width(c.depth, c.channels, c.classes, c.width, &mut Rng::new(0)).unwrap();
        crest::model_io::load_weights(&path(c.name), &model).unwrap();
        let x = &fixture["input"];

        model.set_training(false);
        let logits = check(c.name, "eval logits", &model.forward(x), &fixture["eval_logits"], LOGITS_TOLERANCE);
        // Without gradients, evaluation folds each BatchNorm into the convolution before it: the same logits.
        let folded = {
            let _g = no_grad();
            check(c.name, "eval logits without gradients", &model.forward(x), &fixture["eval_logits"], LOGITS_TOLERANCE)
        };

        model.set_training(training);
        let loss = cross_entropy(&model.forward(x), &fixture["labels"]);
        loss.backward();
        let mut worst = check(c.name, "loss", &loss, &fixture["loss"].reshape(&[]), tolerance);
        let parameters = model.named_parameters();
        assert_eq!(parameters.len(), fixture.keys().filter(|k| k.starts_with("grad.")).count(), "{}", c.name);
        for (name, p) in parameters {
            let want = fixture.get(&format!("grad.{name}")).unwrap_or_else(|| panic!("{}: no grad.{name}", c.name));
            worst = worst.max(check(c.name, &format!("grad of {name}"), &p.grad().unwrap(), want, tolerance));
        }
        let buffers = if training { model.named_buffers() } else { Vec::new() };
        assert_eq!(buffers.len(), fixture.keys().filter(|k| k.starts_with("after.")).count(), "{}", c.name);
        for (name, b) in buffers {
            let want = &fixture[&format!("after.{name}")];
            worst = worst.max(check(c.name, &format!("{name} after training"), &b, want, tolerance));
        }
        let mode = if training { "train" } else { "eval" };
        let name = c.name;
        let torch = torch_f32_error;
        eprintln!(
            "{name}: logits {logits:.1e}, folded {folded:.1e}; {mode} mode {worst:.1e} (PyTorch's float32 {torch:.1e})"
        );
    }
}

#[test]
fn names_are_torchvisions_and_the_spec_describes_the_model() {
    let model = ResNet::new(18, 3, 10, &mut Rng::new(1)).unwrap();
    let names: Vec<String> = model.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), 62);
    assert_eq!(names[..4], ["conv1.weight", "bn1.weight", "bn1.bias", "layer1.0.conv1.weight"]);
    assert!(names.contains(&"layer2.0.downsample.0.weight".to_string()));
    assert!(names.contains(&"layer2.0.downsample.1.bias".to_string()));
    assert_eq!(names[names.len() - 2..], ["fc.weight", "fc.bias"]);
    let count: usize = model.parameters().iter().map(|p| p.numel()).sum();
    assert_eq!(count, 11_181_642, "torchvision's resnet18(num_classes=10)");
    let buffers: Vec<String> = model.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(buffers[..2], ["bn1.running_mean", "bn1.running_var"]);

    let spec = model.spec().unwrap();
    assert_eq!(spec, LayerSpec::ResNet { depth: 18, in_channels: 3, classes: 10, width: 64 });
    let shapes = spec.shapes(&[3, 64, 48]).unwrap();
    let mut built: Vec<(String, Vec<usize>)> =
        model.named_parameters().into_iter().map(|(n, t)| (n, t.shape().to_vec())).collect();
    built.extend(model.named_buffers().into_iter().map(|(n, t)| (n, t.shape().to_vec())));
    assert_eq!(shapes.tensors, built);
    assert_eq!(shapes.output, [10]);
    assert_eq!(model.output_shape(&[3, 64, 48]).unwrap().unwrap(), [10]);
}

#[test]
fn images_too_small_and_absurd_numbers_are_refused() {
    let message = |spec: LayerSpec, input: &[usize]| spec.shapes(input).unwrap_err().to_string();
    let resnet = |depth, width| LayerSpec::ResNet { depth, in_channels: 1, classes: 2, width };
    assert_eq!(
        message(resnet(34, 64), &[1, 28, 28]),
        "ResNet34(in_channels 1, classes 2) needs images of at least 32x32, got 28x28"
    );
    assert_eq!(
        message(resnet(18, 8), &[1, 32, 31]),
        "ResNet18(in_channels 1, classes 2, width 8) needs images of at least 32x32, got 31x32"
    );
    assert_eq!(message(resnet(101, 64), &[1, 32, 32]), "there is no ResNet of depth 101: crest builds [18, 34, 50]");
    assert_eq!(message(resnet(18, 0), &[1, 32, 32]), "a ResNet's width must be from 1 to 65536, got 0");
    assert_eq!(
        message(resnet(18, 64), &[3, 32, 32]),
        "Conv2d(1, 64, kernel 7, stride 2, padding 3) needs 1 input channels, got input [3, 32, 32]"
    );
    assert!(ResNet::new(50, 3, 0, &mut Rng::new(0)).is_err());
}

/// Same seed, same weights, whatever the thread count: the initialisation draws from crest's `Rng` in one order.
#[test]
fn initialisation_is_seeded_and_as_torchvisions() {
    let a = ResNet::with_width(50, 3, 4, 8, &mut Rng::new(7)).unwrap();
    let b = ResNet::with_width(50, 3, 4, 8, &mut Rng::new(7)).unwrap();
    let values = |m: &ResNet| m.parameters().iter().flat_map(|p| p.to_vec()).collect::<Vec<f32>>();
    assert_eq!(values(&a), values(&b));
    let params: HashMap<String, Tensor> = a.named_parameters().into_iter().collect();
    // kaiming_normal_(mode="fan_out"): std √(2 / (out·k²)); layer4.0.conv2 of a Bottleneck is 64 → 64, 3×3.
    let w = params["layer4.0.conv2.weight"].to_vec();
    let std = (w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32).sqrt();
    assert!((std / (2.0f32 / (64.0 * 9.0)).sqrt() - 1.0).abs() < 0.05, "std {std}");
    assert!(params["layer4.0.bn3.weight"].to_vec().iter().all(|&v| v == 1.0));
    assert!(params["layer4.0.bn3.bias"].to_vec().iter().all(|&v| v == 0.0));
    let fc = params["fc.weight"].to_vec();
    let bound = 1.0 / (8.0f32 * 8.0 * 4.0).sqrt();
    assert!(fc.iter().all(|v| v.abs() <= bound) && fc.iter().any(|v| v.abs() > bound * 0.9));
}

/// A small folder of the sample's 28×28 digits: `n` of each class.
fn small_sample(tag: &str, n: usize) -> PathBuf {
    let dir = common::temp_dir(tag);
    for class in ["3", "7"] {
        let from = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/mnist_sample").join(class);
        std::fs::create_dir_all(dir.join("data").join(class)).unwrap();
        for name in common::listing(&from).into_iter().take(n) {
            std::fs::copy(from.join(&name), dir.join("data").join(class).join(&name)).unwrap();
        }
    }
    dir
}

/// `crest train --arch resnet18` on 28×28 digits resizes them to 32×32 (none asked), trains, saves a file that
/// `crest predict` rebuilds the ResNet from; a size asked for below 32 is refused before training, naming both.
#[test]
fn trains_from_the_cli_and_predicts_from_the_file() {
    let dir = small_sample("resnet-cli", 8);
    let (data, model) = (dir.join("data"), dir.join("r18.safetensors"));
    let (data, model_path) = (data.to_str().unwrap(), model.to_str().unwrap());
    let train = ["train", data, "--arch", "resnet18", "--epochs", "1", "--bs", "8", "--no-report", "--out", model_path];
    let out = common::crest(&train);
    let (stdout, stderr) = common::text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("note: size: all images are 28x28, using 32x32, the smallest the model takes"), "{stdout}");
    let (net, meta) = crest::model_io::load(&model).unwrap();
    assert_eq!(meta.spec, LayerSpec::ResNet { depth: 18, in_channels: 1, classes: 1, width: 64 });
    assert!(net.named_buffers().iter().any(|(n, _)| n == "layer4.1.bn2.running_var"));
    let digit = format!("{data}/7/{}", common::listing(&dir.join("data/7"))[0]);
    let out = common::crest(&["predict", model_path, &digit]);
    let (stdout, stderr) = common::text(&out);
    assert!(out.status.success() && stdout.starts_with(&format!("{digit}\t")), "{stdout}{stderr}");

    let out = common::crest(&[&train[..], &["--size", "28"]].concat());
    let (stdout, stderr) = common::text(&out);
    assert!(!out.status.success() && !stdout.contains("epoch"), "{stdout}");
    assert_eq!(
        stderr.trim_end(),
        "error: the model does not fit images of shape [1, 28, 28]: ResNet18(in_channels 1, classes 1) needs images \
         of at least 32x32, got 28x28"
    );
    let _ = std::fs::remove_dir_all(dir);
}
