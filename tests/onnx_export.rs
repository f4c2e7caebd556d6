//! ONNX export, checked by a second runtime: tract runs the exported file on real images and must give the
//! probabilities crest gives (`crest predict`'s) to 1e-4, for every architecture `crest train` makes and every kind
//! of layer a model file can hold. (bench/onnx_check.py checks the same with onnx.checker and onnxruntime.)

mod common;

use common::{crest, temp_dir, text};
use crest::data::{image_files, load_image, Batch, Normalize, Preprocess};
use crest::export::{onnx_bytes, Dim, ModelInfo, OnnxGraph, Port, LOGITS, PROBABILITIES};
use crest::interpret::image_probabilities;
use crest::loss::Loss;
use crest::model_io::{self, ModelMeta};
use crest::nn::{BatchNorm, Flatten, LayerSpec, Linear, Module, ResNet, Sequential};
use crest::rng::Rng;
use crest::tensor::BatchNormState;
use crest::Tensor;
use std::path::Path;
use tract_onnx::prelude::{
    tract_ndarray, tvec, Framework, InferenceModelExt, IntoRunnable, IntoTValue, IntoTensor, TValue,
};

/// The first `per_class` images of each class of the shipped sample, as crest's loader makes them for `meta`.
fn sample_batch(meta: &ModelMeta, per_class: usize) -> Batch {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (label, class) in ["3", "7"].iter().enumerate() {
        let (files, _) = image_files(&Path::new("data/mnist_sample").join(class)).unwrap();
        for file in files.iter().take(per_class) {
            pixels.extend(load_image(file, meta.channels, meta.height, meta.width, 1 << 20).unwrap());
            labels.push(label as u32);
        }
    }
    let n = labels.len();
    Batch {
        pixels,
        labels,
        indices: (0..n).collect(),
        n,
        channels: meta.channels,
        height: meta.height,
        width: meta.width,
    }
}

/// tract's outputs for `batch`, by output name, from the ONNX file's bytes.
fn tract_outputs(onnx: &[u8], batch: &Batch) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let model = tract_onnx::onnx().model_for_read(&mut &*onnx).expect("tract reads the file");
    let names: Vec<String> = model
        .output_outlets()
        .unwrap()
        .iter()
        .map(|o| model.outlet_label(*o).unwrap_or_default().to_string())
        .collect();
    let runnable = model.into_optimized().expect("tract optimises the graph").into_runnable().unwrap();
    let shape = (batch.n, batch.channels, batch.height, batch.width);
    let floats = batch.pixels.iter().map(|&p| p as f32).collect();
    let input: TValue = tract_ndarray::Array4::from_shape_vec(shape, floats).unwrap().into_tensor().into_tvalue();
    let outputs = runnable.run(tvec!(input)).expect("tract runs the graph");
    names
        .into_iter()
        .zip(outputs.iter())
        .map(|(name, t)| {
            let view = t.to_plain_array_view::<f32>().unwrap();
            (name, view.shape().to_vec(), view.iter().copied().collect())
        })
        .collect()
}

/// The largest difference between tract's `probabilities` for the sample images and crest's, and crest's, after
/// checking the outputs' names and shapes, and that `logits` are the model's own outputs.
fn max_difference(model: &dyn Module, meta: &ModelMeta) -> (f32, Vec<f32>) {
    let batch = sample_batch(meta, 8);
    let onnx = onnx_bytes(model, meta).unwrap();
    let outputs = tract_outputs(&onnx, &batch);
    let k = meta.classes.len();
    assert_eq!(outputs[0].0, PROBABILITIES);
    assert_eq!(outputs[0].1, [batch.n, k]);
    assert_eq!(outputs[1].0, LOGITS);
    assert_eq!(outputs[1].1, [batch.n, meta.loss.outputs(k)]);
    let logits = model.forward(&batch.inputs(&meta.inputs())).to_vec();
    let expected = image_probabilities(model, meta.loss, &batch, &meta.inputs(), None, &|i| i.to_string()).unwrap();
    let diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(diff(&outputs[1].2, &logits) < 1e-3, "logits differ by {}", diff(&outputs[1].2, &logits));
    (diff(&outputs[0].2, &expected), expected)
}

/// Each architecture `crest train` makes, trained for one epoch by the CLI (with each loss: the binary ones give
/// `[1 − σ, σ]` from one logit) and exported by `crest export`, gives crest's probabilities in tract.
#[test]
fn every_architecture_exports_and_tract_gives_crests_probabilities() {
    let dir = temp_dir("onnx-archs");
    for (arch, loss) in [("linear", "mnist"), ("mlp:32", "bce"), ("cnn", "ce")] {
        let model_path = dir.join(format!("{loss}.safetensors"));
        let onnx_path = dir.join(format!("{loss}.onnx"));
        let (model_file, onnx_file) = (model_path.to_str().unwrap(), onnx_path.to_str().unwrap());
        let train = ["train", "--arch", arch, "--loss", loss, "--epochs", "1", "--no-report", "--out", model_file];
        let out = crest(&train);
        assert!(out.status.success(), "{arch}: {}", text(&out).1);
        let out = crest(&["export", model_file, onnx_file]);
        assert!(out.status.success(), "{arch}: {}", text(&out).1);
        let (_, meta) = model_io::load(&model_path).unwrap();
        let outputs = meta.loss.outputs(2);
        assert_eq!(
            text(&out).0,
            format!(
                "wrote {onnx_file} (ONNX opset 17): input pixels [N, 1, 28, 28] of pixel values 0-255, outputs \
                 probabilities [N, 2] and logits [N, {outputs}]\n"
            )
        );
        let (model, meta) = model_io::load(&model_path).unwrap();
        assert_eq!(std::fs::read(&onnx_path).unwrap(), onnx_bytes(model.as_ref(), &meta).unwrap());
        let (d, probabilities) = max_difference(model.as_ref(), &meta);
        println!("{arch} ({loss}): tract vs crest, largest difference {d:e}");
        assert!(d <= 1e-4, "{arch}: tract's probabilities differ from crest's by {d}");
        // A trained model, sure of some images either way: one that gave every image the same probabilities would
        // match any graph that ignored its input.
        let first: Vec<f32> = probabilities.chunks(2).map(|p| p[0]).collect();
        assert!(first.iter().any(|&p| p > 0.9) && first.iter().any(|&p| p < 0.1), "{arch}: {first:?}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Every kind of layer a model file holds: the shipped fixture (Conv2d, ReLU, MaxPool2d, BatchNorm2d with running
/// statistics, AvgPool2d, Dropout, Flatten, Linear), then a model with the rest (Sigmoid, AdaptiveAvgPool2d,
/// BatchNorm1d, nested Sequentials) and weights far from their initial values.
#[test]
fn every_kind_of_layer_exports() {
    let (model, meta) = model_io::load(Path::new("tests/fixtures/models/cnn.safetensors")).unwrap();
    let (d, _) = max_difference(model.as_ref(), &meta);
    assert!(d <= 1e-4, "the fixture: tract's probabilities differ from crest's by {d}");

    let conv =
        |i, o, stride, padding| LayerSpec::Conv2d { in_channels: i, out_channels: o, kernel_size: 3, stride, padding };
    let spec = LayerSpec::Sequential {
        layers: vec![
            LayerSpec::Sequential { layers: vec![conv(1, 6, 2, 1), LayerSpec::Sigmoid, conv(6, 8, 1, 0)] },
            LayerSpec::BatchNorm { features: 8 },
            LayerSpec::AdaptiveAvgPool2d,
            LayerSpec::BatchNorm { features: 8 },
            LayerSpec::Dropout { p: 0.5 },
            LayerSpec::Linear { in_features: 8, out_features: 3 },
        ],
    };
    let mut model = spec.build(&mut Rng::new(7));
    model.set_training(false);
    let mut rng = Rng::new(8);
    for (name, t) in model.named_parameters().into_iter().chain(model.named_buffers()) {
        let values = Tensor::randn(t.shape(), 1.0, &mut rng).to_vec();
        let positive = name.ends_with("running_var");
        t.data_mut().iter_mut().zip(values).for_each(|(to, v)| *to = if positive { 0.5 + v.abs() } else { 3.0 * v });
    }
    let classes = ["a", "b", "c"].map(String::from).to_vec();
    let meta = ModelMeta::new(classes, [1, 20, 20], 1.0 / 255.0, "test", Loss::CrossEntropy, spec);
    let (d, _) = max_difference(model.as_ref(), &meta);
    assert!(d <= 1e-4, "tract's probabilities differ from crest's by {d}");
}

/// BatchNorm's statistics and affine parameters moved off their initial values (running variances kept positive),
/// as bench/torch_resnet_fixture.py does, so that every BatchNorm the graph holds moves the probabilities; the
/// convolutions keep their initialisation, which keeps the logits of a deep network in range.
fn perturb_batch_norms(model: &dyn Module, seed: u64) {
    let mut rng = Rng::new(seed);
    for (name, t) in model.named_parameters().into_iter().chain(model.named_buffers()) {
        if t.shape().len() != 1 {
            continue;
        }
        let values = Tensor::randn(t.shape(), 1.0, &mut rng).to_vec();
        let variance = name.ends_with("running_var");
        t.data_mut()
            .iter_mut()
            .zip(values)
            .for_each(|(to, v)| *to = if variance { 0.5 + v.abs() } else { *to + 0.2 * v });
    }
}

/// torchvision's ResNets (narrow, so the test is quick; the layers and the wiring are the full ones') export with
/// every block, downsample and BatchNorm, in crest's own scaling and in a mean/std normalisation: an imported
/// model's (in its preprocessing) or a model's fine-tuned from one (on its own).
#[test]
fn resnets_export_and_tract_gives_crests_probabilities() {
    for (depth, channels) in [(18, 1), (34, 1), (50, 3)] {
        let mut model = ResNet::with_width(depth, channels, 3, 4, &mut Rng::new(depth as u64)).unwrap();
        model.set_training(false);
        perturb_batch_norms(&model, 5);
        let spec = model.spec().unwrap();
        let classes = ["a", "b", "c"].map(String::from).to_vec();
        let mut meta = ModelMeta::new(classes, [channels, 40, 40], 1.0 / 255.0, "resnet", Loss::CrossEntropy, spec);
        let (d, _) = max_difference(&model, &meta);
        println!("resnet{depth}: tract vs crest, largest difference {d:e}");
        assert!(d <= 1e-4, "resnet{depth}: tract's probabilities differ from crest's by {d}");
        let statistics = Normalize { mean: vec![0.4; channels], std: vec![0.3; channels] };
        match depth {
            18 => meta.normalize = Some(statistics),
            _ => meta.preprocess = Some(Preprocess { resize: 40, crop: 40, normalize: statistics }),
        }
        let (d, _) = max_difference(&model, &meta);
        println!("resnet{depth}, normalised: tract vs crest, largest difference {d:e}");
        assert!(d <= 1e-4, "resnet{depth} normalised: tract's probabilities differ from crest's by {d}");
    }
}

/// A layer of a user's own, which describes itself as no built-in layer.
struct Doubled;

impl Module for Doubled {
    fn forward(&self, x: &Tensor) -> Tensor {
        x * 2.0
    }
}

#[test]
fn a_layer_of_your_own_is_refused_by_name() {
    let model = Sequential::default().push(Flatten).push(Linear::new(4, 2, &mut Rng::new(1))).push(Doubled);
    let meta =
        ModelMeta::new(vec!["a".into(), "b".into()], [1, 2, 2], 1.0, "mine", Loss::CrossEntropy, LayerSpec::Flatten);
    let e = onnx_bytes(&model, &meta).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot export to ONNX: layer 2 (onnx_export::Doubled) is a layer of your own, which has no LayerSpec for the \
         exporter to express"
    );
    let nested = Sequential::default().push(Sequential::default().push(Flatten).push(Doubled));
    let e = onnx_bytes(&nested, &meta).unwrap_err();
    assert!(e.to_string().contains("layer 0.1 (onnx_export::Doubled)"), "{e}");
    let e = onnx_bytes(&Doubled, &meta).unwrap_err();
    assert!(e.to_string().contains(": the model (onnx_export::Doubled) is"), "{e}");
}

/// The builder's nodes for torchvision's ResNets (the hook for exporting them): a stem conv without bias,
/// BatchNorm, ReLU, a residual Add, MaxPool 3×3 stride 2 padding 1, global average pool and a Linear `fc`, wired
/// by hand, give in tract what crest's own ops give.
#[test]
fn a_residual_block_built_by_hand_gives_crests_values() {
    let mut rng = Rng::new(11);
    let randn = |shape: &[usize], rng: &mut Rng| Tensor::randn(shape, 1.0, rng);
    let (conv_w, gamma, beta, mean) =
        (randn(&[3, 3, 3, 3], &mut rng), randn(&[3], &mut rng), randn(&[3], &mut rng), randn(&[3], &mut rng));
    let var = Tensor::from_vec(randn(&[3], &mut rng).to_vec().iter().map(|v| 0.5 + v.abs()).collect(), &[3]);
    let (fc_w, fc_b) = (randn(&[2, 3], &mut rng), randn(&[2], &mut rng));
    let x = randn(&[2, 3, 9, 9], &mut rng);

    let state = BatchNormState {
        gamma: &gamma,
        beta: &beta,
        running_mean: &mean,
        running_var: &var,
        momentum: 0.1,
        eps: BatchNorm::EPS,
    };
    let block = &x.conv2d(&conv_w, None, 1, 1).batch_norm_eval(&state).relu() + &x;
    let pooled = block.max_pool2d(3, 2, 1).global_avg_pool2d();
    let expected = Linear::from_parts(fc_w.clone(), fc_b.clone()).forward(&pooled).to_vec();

    let mut g = OnnxGraph::new();
    let constant = |g: &mut OnnxGraph, name: &str, t: &Tensor| g.constant(name, t.shape(), &t.to_vec());
    let w = constant(&mut g, "conv1.weight", &conv_w);
    let [scale, bias, m, v] =
        [("bn1.weight", &gamma), ("bn1.bias", &beta), ("bn1.running_mean", &mean), ("bn1.running_var", &var)]
            .map(|(name, t)| constant(&mut g, name, t));
    let conv = g.conv("x", &w, None, 3, 1, 1);
    let normed = g.batch_norm(&conv, &scale, &bias, &m, &v, BatchNorm::EPS);
    let relu = g.relu(&normed);
    let sum = g.add(&relu, "x");
    let pooled = g.max_pool(&sum, 3, 2, 1);
    let averaged = g.global_average_pool(&pooled);
    let flat = g.flatten(&averaged);
    let (fw, fb) = (constant(&mut g, "fc.weight", &fc_w), constant(&mut g, "fc.bias", &fc_b));
    let out = g.gemm(&flat, &fw, &fb);
    g.rename(&out, "y");
    let port = |name, dims: &[usize]| Port {
        name,
        dims: [Dim::Batch].into_iter().chain(dims.iter().map(|&d| Dim::Fixed(d))).collect(),
        doc: String::new(),
    };
    let info = ModelInfo { graph_name: "block", doc: String::new(), metadata: vec![] };
    let onnx = g.finish(&[port("x", &[3, 9, 9])], &[port("y", &[2])], info);

    let model =
        tract_onnx::onnx().model_for_read(&mut &*onnx).unwrap().into_optimized().unwrap().into_runnable().unwrap();
    let input = tract_ndarray::Array4::from_shape_vec((2, 3, 9, 9), x.to_vec()).unwrap().into_tensor().into_tvalue();
    let got: Vec<f32> =
        model.run(tvec!(input)).unwrap()[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect();
    let d = got.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(d < 1e-4, "tract {got:?} vs crest {expected:?}");
}

/// `crest export` on bad input: one `error:` line, exit status 1, and no file left behind.
#[test]
fn export_refuses_a_folder_to_write_and_a_file_that_is_not_a_model() {
    let dir = temp_dir("onnx-refusals");
    let out = crest(&["export", "tests/fixtures/models/cnn.safetensors", dir.to_str().unwrap()]);
    let expected =
        format!("error: cannot write the ONNX model to {}: it is a directory, not a regular file\n", dir.display());
    assert_eq!((out.status.code(), text(&out)), (Some(1), (String::new(), expected)));
    let onnx = dir.join("m.onnx");
    let out = crest(&["export", "data/mnist_sample/3/00671.png", onnx.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!((out.status.code(), stdout.as_str(), stderr.lines().count()), (Some(1), "", 1), "{stderr}");
    assert!(stderr.starts_with("error: data/mnist_sample/3/00671.png is not a valid crest model file: "), "{stderr}");
    assert!(!onnx.exists());
    let _ = std::fs::remove_dir_all(dir);
}
