//! Model files are untrusted input: crafted and damaged files, each refused with one exact sentence by the library
//! and by `crest predict` (exit status 1, one `error:` line, never a panic), and files that are fine but odd (no
//! checksum, class names with control characters) handled as the README says.

use crest::data::{Inputs, Normalize};
use crest::loss::Loss;
use crest::model_io::{self, ModelMeta};
use crest::nn::LayerSpec;
use crest::rng::Rng;
use safetensors::tensor::{Dtype, TensorView};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const IMAGE: &str = "data/mnist_sample/3/00000.png";

/// A tensor of a crafted file: name, shape, little-endian f32 bytes.
type Tensor = (String, Vec<usize>, Vec<u8>);

fn linear_spec() -> LayerSpec {
    LayerSpec::Sequential { layers: vec![LayerSpec::Flatten, LayerSpec::Linear { in_features: 4, out_features: 3 }] }
}

/// Conv, pooling, BatchNorm and Dropout on 1×4×4 images, three classes.
fn cnn_spec() -> LayerSpec {
    let conv = LayerSpec::Conv2d { in_channels: 1, out_channels: 2, kernel_size: 3, stride: 1, padding: 1 };
    LayerSpec::Sequential {
        layers: vec![
            conv,
            LayerSpec::ReLU,
            LayerSpec::MaxPool2d { kernel_size: 2, stride: 2, padding: 0 },
            LayerSpec::BatchNorm { features: 2 },
            LayerSpec::Dropout { p: 0.5 },
            LayerSpec::Flatten,
            LayerSpec::Linear { in_features: 8, out_features: 3 },
        ],
    }
}

fn meta(spec: LayerSpec, size: usize) -> Value {
    let classes = ["three", "seven", "other"].map(String::from).to_vec();
    serde_json::to_value(ModelMeta::new(classes, [1, size, size], 1.0 / 255.0, "test", Loss::CrossEntropy, spec))
        .unwrap()
}

/// The tensors the model `spec` builds, as a file holds them.
fn tensors(spec: &LayerSpec) -> Vec<Tensor> {
    let model = spec.build(&mut Rng::new(7));
    let mut state = model.named_parameters();
    state.extend(model.named_buffers());
    state
        .into_iter()
        .map(|(n, t)| (n, t.shape().to_vec(), t.to_vec().iter().flat_map(|v| v.to_le_bytes()).collect()))
        .collect()
}

/// A model file from parts that may disagree, sealed with the checksum the format defines (CRC-32 of the metadata
/// JSON, then the tensors' bytes in the order of their names) when `sealed` — written here independently of
/// crest's own writer, as a crafted file would be.
fn craft(meta: &Value, tensors: &[Tensor], sealed: bool) -> Vec<u8> {
    craft_json(&meta.to_string(), tensors, sealed)
}

fn craft_json(json: &str, tensors: &[Tensor], sealed: bool) -> Vec<u8> {
    let json = json.to_string();
    let mut info = HashMap::from([("crest".to_string(), json.clone())]);
    if sealed {
        let mut sorted: Vec<&Tensor> = tensors.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut crc = crc32fast::Hasher::new();
        crc.update(json.as_bytes());
        sorted.iter().for_each(|t| crc.update(&t.2));
        info.insert("crest_crc32".into(), format!("{:08x}", crc.finalize()));
    }
    let views = tensors.iter().map(|(n, s, b)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).unwrap()));
    safetensors::serialize(views, &Some(info)).unwrap()
}

/// Where a sealed file's checksum digits are.
fn checksum_at(file: &[u8]) -> std::ops::Range<usize> {
    let at = file.windows(13).position(|w| w == b"\"crest_crc32\"").unwrap() + 15;
    at..at + 8
}

fn refusal(bytes: &[u8]) -> String {
    match model_io::load_bytes(bytes) {
        Ok(_) => panic!("a bad model file was loaded"),
        Err(e) => e.to_string(),
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("crest-model-files-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn predict(model: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crest"))
        .args(["predict", model.to_str().unwrap(), IMAGE])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

/// `crest predict` refuses the model with exactly `message`, on one line, with exit status 1.
fn assert_cli_refuses(model: &Path, message: &str) {
    let out = predict(model);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr, format!("error: {message}\n"));
    assert!(out.stdout.is_empty());
}

/// Each crafted file: what the library says, then what the command line says, for the same bytes in a file.
#[test]
fn crafted_files_are_refused_with_one_sentence_each() {
    let (linear, cnn) = (tensors(&linear_spec()), tensors(&cnn_spec()));
    let base = meta(linear_spec(), 2);
    let cnn_base = meta(cnn_spec(), 4);
    let edited = |base: &Value, edit: &dyn Fn(&mut Value)| {
        let mut m = base.clone();
        edit(&mut m);
        m
    };
    let mut cases: Vec<(&str, Vec<u8>, String)> = Vec::new();
    let mut case = |what, bytes, message: &str| cases.push((what, bytes, message.to_string()));

    let m = edited(&base, &|m| m["classes"] = json!(["three", "seven"]));
    case(
        "fewer classes than outputs",
        craft(&m, &linear, true),
        "it has 2 classes, which need output [2], but its architecture gives [3]",
    );
    let m = edited(&base, &|m| m["height"] = json!(3));
    case(
        "a changed height",
        craft(&m, &linear, true),
        "its architecture does not fit its [1, 3, 2] images: layer 1: Linear(4, 3) needs input [4], got [6]",
    );
    let m = edited(&cnn_base, &|m| m["spec"]["layers"][0]["stride"] = json!(2));
    case(
        "a changed conv stride",
        craft(&m, &cnn, true),
        "its architecture does not fit its [1, 4, 4] images: layer 6: Linear(8, 3) needs input [8], got [2]",
    );
    let m = edited(&cnn_base, &|m| m["spec"]["layers"][2]["kernel_size"] = json!(3));
    case(
        "a changed pool size",
        craft(&m, &cnn, true),
        "its architecture does not fit its [1, 4, 4] images: layer 6: Linear(8, 3) needs input [8], got [2]",
    );
    let m = edited(&base, &|m| m["width"] = json!(0));
    case("size 0", craft(&m, &linear, true), "its image size 0x2 is empty");
    let m = edited(&cnn_base, &|m| m["spec"]["layers"][2]["stride"] = json!(0));
    case(
        "a zero stride",
        craft(&m, &cnn, true),
        "its architecture does not fit its [1, 4, 4] images: layer 2: MaxPool2d(kernel 2, stride 0) needs kernel \
         size and stride of at least 1",
    );
    let m = edited(&cnn_base, &|m| m["spec"]["layers"][0]["kernel_size"] = json!(0));
    case(
        "a zero kernel",
        craft(&m, &cnn, true),
        "its architecture does not fit its [1, 4, 4] images: layer 0: Conv2d(1, 2, kernel 0, stride 1, padding 1) \
         needs channels, kernel size and stride of at least 1",
    );
    let m = edited(&cnn_base, &|m| m["spec"]["layers"][4]["p"] = json!(1.5));
    case(
        "a dropout probability above 1",
        craft(&m, &cnn, true),
        "its architecture does not fit its [1, 4, 4] images: layer 4: Dropout's probability must be in [0, 1), got 1.5",
    );
    let m = edited(&base, &|m| m["spec"]["layers"][0] = json!({"type": "AdaptiveAvgPool2d"}));
    let m = edited(&m, &|m| m["spec"]["layers"].as_array_mut().unwrap().insert(0, json!({"type": "Flatten"})));
    case(
        "an adaptive pool on a flat input",
        craft(&m, &linear, true),
        "its architecture does not fit its [1, 2, 2] images: layer 1: AdaptiveAvgPool2d needs input [channels, \
         height, width], got [4]",
    );
    let m = edited(&base, &|m| m["height"] = json!(1u64 << 62));
    case(
        "a size whose values overflow",
        craft(&m, &linear, true),
        "its architecture does not fit its [1, 4611686018427387904, 2] images: the input [1, 4611686018427387904, 2] \
         holds more than 268435456 values per example",
    );
    // Huge but representable: 3.2 GB of weights this file doesn't hold are never allocated.
    let wide = LayerSpec::Sequential {
        layers: vec![
            LayerSpec::Flatten,
            LayerSpec::Linear { in_features: 4, out_features: 200_000_000 },
            LayerSpec::Linear { in_features: 200_000_000, out_features: 3 },
        ],
    };
    let m = edited(&base, &|m| m["spec"] = serde_json::to_value(&wide).unwrap());
    case(
        "layers far larger than the file",
        craft(&m, &linear, true),
        "tensor 1.weight is F32 [3, 4], expected F32 [200000000, 4]",
    );
    let m = edited(&base, &|m| m["scale"] = json!(1e39));
    case("a scale of 1e39", craft(&m, &linear, true), "its pixel scale inf is not a number above 0 and at most 1");
    let m = edited(&base, &|m| m["classes"] = json!(["three", "", "other"]));
    case("an empty class name", craft(&m, &linear, true), "class 1's name is empty");
    let m = edited(&base, &|m| m["classes"] = json!(["three", "a\tb", "a\tb"]));
    case("a class name twice", craft(&m, &linear, true), "class name a\\tb appears twice");
    let m = edited(&base, &|m| m["channels"] = json!(2));
    case("two channels", craft(&m, &linear, true), "its images have 2 channels; crest reads images of 1, 3 or 4");
    let m = edited(&base, &|m| m["normalize"] = json!({"mean": [0.5], "std": [0.0]}));
    case(
        "a normalisation's std of 0",
        craft(&m, &linear, true),
        "its normalisation's mean [0.5] and std [0.0] must be finite, and the std above 0",
    );
    let imagenet = json!({"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]});
    let m = edited(&base, &|m| m["normalize"] = imagenet.clone());
    case(
        "a normalisation for other channels",
        craft(&m, &linear, true),
        "its normalisation has 3 mean values for images of 1 channels",
    );
    let m = edited(&base, &|m| {
        m["normalize"] = json!({"mean": [0.5], "std": [0.25]});
        m["preprocess"] = json!({"resize": 2, "crop": 2, "mean": [0.5], "std": [0.25]});
    });
    case(
        "a normalisation beside a preprocessing",
        craft(&m, &linear, true),
        "it has both a preprocessing and a normalisation; a model's inputs have one mean and std",
    );
    let m = edited(&base, &|m| m["loss"] = json!("bce"));
    case(
        "a binary loss on three classes",
        craft(&m, &linear, true),
        "it has 3 classes, but its binary loss tells 2 apart",
    );

    let mut nan = linear.clone();
    nan[0].2[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
    case("a NaN weight", craft(&base, &nan, true), "tensor 1.weight holds NaN or infinite values");
    let mut negative = cnn.clone();
    let var = negative.iter_mut().find(|t| t.0 == "3.running_var").unwrap();
    var.2[..4].copy_from_slice(&(-1.0f32).to_le_bytes());
    case("a negative variance", craft(&cnn_base, &negative, true), "tensor 3.running_var holds negative variances");
    let mut reshaped = linear.clone();
    reshaped[0].1 = vec![4, 3];
    case(
        "a tensor of another shape",
        craft(&base, &reshaped, true),
        "tensor 1.weight is F32 [4, 3], expected F32 [3, 4]",
    );
    case("a missing tensor", craft(&base, &linear[..1], true), "tensor 1.bias is missing");

    let sealed = craft(&base, &linear, true);
    let mut flipped = sealed.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    let stored = String::from_utf8(flipped[checksum_at(&flipped)].to_vec()).unwrap();
    let computed = {
        let mut crc = crc32fast::Hasher::new();
        crc.update(base.to_string().as_bytes());
        let header_end = 8 + u64::from_le_bytes(flipped[..8].try_into().unwrap()) as usize;
        // 1.bias (12 bytes) then 1.weight (48 bytes) in name order; the file stores them in the same order.
        crc.update(&flipped[header_end..]);
        format!("{:08x}", crc.finalize())
    };
    case(
        "a flipped bit in the weights",
        flipped,
        &format!("its checksum {stored} does not match its contents ({computed}): the file is damaged"),
    );
    let bad_json = craft_json(&base.to_string()[..30], &linear, true);
    case(
        "invalid metadata JSON",
        bad_json,
        "its crest metadata is not valid JSON (EOF while parsing a string at line 1 column 30)",
    );
    case(
        "a file cut short",
        sealed[..sealed.len() - 10].to_vec(),
        "tensor 1.weight's data lies outside the file (it would end 60 bytes after the header; 50 are there)",
    );
    case(
        "a file with bytes added",
        [&sealed[..], b"more"].concat(),
        "its tensors' data does not end where the file does (the file is cut short, or has bytes added)",
    );
    case(
        "a header cut short",
        sealed[..40].to_vec(),
        &format!(
            "its header is cut short: it claims {} bytes, but only 32 follow",
            u64::from_le_bytes(sealed[..8].try_into().unwrap())
        ),
    );
    case(
        "five bytes",
        b"crest".to_vec(),
        "it is 5 bytes long, shorter than the 8 bytes that give a safetensors header's length",
    );
    let text = String::from_utf8_lossy(&sealed).into_owned();
    let moved = text.replacen("\"data_offsets\":[0,12]", "\"data_offsets\":[4,16]", 1);
    assert_ne!(moved, text, "the first tensor's offsets are in the header");
    case(
        "offsets that leave a gap",
        moved.into_bytes(),
        "tensor 1.bias's data does not start where the tensor before it ends (its offsets are damaged)",
    );

    // An end near 2^64 once overflowed inside safetensors (a panic where overflow checks are on).
    let header = br#"{"w":{"dtype":"F32","shape":[4611686018427387903],"data_offsets":[0,18446744073709551612]}}"#;
    let overflowing = [&(header.len() as u64).to_le_bytes()[..], header].concat();
    case(
        "an offset near 2^64",
        overflowing,
        "tensor w's data lies outside the file (it would end 18446744073709551612 bytes after the header; 0 are there)",
    );

    let dir = temp_dir("crafted");
    let path = dir.join("m.safetensors");
    let mut wrong = Vec::new();
    for (what, bytes, message) in &cases {
        let said = refusal(bytes);
        let expected = format!("<memory> is not a valid crest model file: {message}");
        if said != expected {
            wrong.push(format!("{what}:\n  said     {said}\n  expected {expected}"));
            continue;
        }
        std::fs::write(&path, bytes).unwrap();
        assert_cli_refuses(&path, &expected.replace("<memory>", path.to_str().unwrap()));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs `crest predict` on `model`, killed after 10 s: a model path that blocks must not hang the test.
fn predict_within_10s(model: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crest"))
        .args(["predict", model.to_str().unwrap(), IMAGE])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed().as_secs() >= 10 {
            child.kill().unwrap();
            panic!("crest predict {} still ran after 10 s", model.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn only_regular_files_of_sane_size_are_read() {
    let dir = temp_dir("special");
    let fifo = dir.join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().map(|s| s.success()).unwrap_or(false);
    let mut special = vec![(dir.clone(), "a directory")];
    if made {
        special.push((fifo, "a FIFO"));
    }
    if Path::new("/dev/zero").exists() {
        special.push(("/dev/zero".into(), "a device"));
    }
    for (path, kind) in special {
        let out = predict_within_10s(&path);
        let message =
            format!("error: {} is not a valid crest model file: it is {kind}, not a regular file\n", path.display());
        assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned()), (Some(1), message));
    }
    // Refused from its size alone: the file is sparse, nothing of it is read.
    let huge = dir.join("huge.safetensors");
    std::fs::File::create(&huge).unwrap().set_len(model_io::MAX_MODEL_FILE_BYTES + 1).unwrap();
    let message = format!(
        "{} is not a valid crest model file: it is 17179869185 bytes long; crest reads model files of up to 17179869184",
        huge.display()
    );
    assert_cli_refuses(&huge, &message);
    // A symbolic link to a model is followed.
    let model = dir.join("m.safetensors");
    std::fs::write(&model, craft(&meta(linear_spec(), 2), &tensors(&linear_spec()), true)).unwrap();
    #[cfg(unix)]
    {
        let link = dir.join("link.safetensors");
        std::os::unix::fs::symlink(&model, &link).unwrap();
        assert!(predict(&link).status.success());
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_saved_model_loads_back_with_its_checksum_and_the_same_outputs() {
    let spec = cnn_spec();
    let model = spec.build(&mut Rng::new(3));
    let meta: ModelMeta = serde_json::from_value(meta(spec, 4)).unwrap();
    let bytes = model_io::save_bytes(model.as_ref(), &meta).unwrap();
    let (loaded, loaded_meta) = model_io::load_bytes(&bytes).unwrap();
    assert_eq!(loaded_meta, meta);
    assert!(!loaded_meta.predates_checksum);
    let x = crest::Tensor::from_vec((0..16).map(|v| v as f32 / 16.0).collect(), &[1, 1, 4, 4]);
    let mut model = model;
    model.set_training(false);
    assert_eq!(loaded.forward(&x).to_vec(), model.forward(&x).to_vec());
}

/// Files written before the checksum load, and `predict` says once that their damage would go unnoticed.
#[test]
fn a_file_without_a_checksum_loads_with_a_warning() {
    let bytes = craft(&meta(linear_spec(), 2), &tensors(&linear_spec()), false);
    assert!(model_io::load_bytes(&bytes).unwrap().1.predates_checksum);
    let dir = temp_dir("unsealed");
    let path = dir.join("old.safetensors");
    std::fs::write(&path, &bytes).unwrap();
    let out = predict(&path);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "warning: {} has no checksum (it was written before crest stored one), so damage to it would go \
             unnoticed; saving the model again adds one\n",
            path.display()
        )
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

/// A file of another format is told as such, not as damage: the checksum is formats 1 and 2's.
#[test]
fn another_format_is_told_before_the_checksum() {
    let mut m = meta(linear_spec(), 2);
    m["format"] = json!(3);
    m["crest_version"] = json!("9.0\n");
    let mut other = craft(&m, &tensors(&linear_spec()), true);
    let at = checksum_at(&other);
    other[at].copy_from_slice(b"00000000");
    assert_eq!(
        refusal(&other),
        "<memory> was written in model format 3 (crest 9.0\\n); this crest (0.1.0) reads formats 1 and 2"
    );
}

/// The format a file's metadata says it is in.
fn format_of(file: &[u8]) -> u64 {
    let (_, header) = safetensors::SafeTensors::read_metadata(file).unwrap();
    let json: Value = serde_json::from_str(&header.metadata().as_ref().unwrap()["crest"]).unwrap();
    json["format"].as_u64().unwrap()
}

/// A model whose inputs are normalised is written in format 2, which a crest that reads format 1 alone refuses
/// rather than predict on unnormalised pixels; a model without a mean and std is still written in format 1, which
/// every crest reads, and a format-1 file with a preprocessing (as `crest import` wrote them before format 2) still
/// loads with it.
#[test]
fn normalised_models_are_format_2_and_format_1_files_still_load() {
    let model = linear_spec().build(&mut Rng::new(7));
    let plain: ModelMeta = serde_json::from_value(meta(linear_spec(), 2)).unwrap();
    assert_eq!(format_of(&model_io::save_bytes(model.as_ref(), &plain).unwrap()), 1);

    let statistics = Normalize { mean: vec![0.5], std: vec![0.25] };
    let normalised = ModelMeta { normalize: Some(statistics.clone()), ..plain };
    let file = model_io::save_bytes(model.as_ref(), &normalised).unwrap();
    assert_eq!(format_of(&file), 2);
    let (_, loaded) = model_io::load_bytes(&file).unwrap();
    assert_eq!((loaded.format, loaded.inputs()), (2, Inputs::Normalized(statistics.clone())));

    let mut imported = meta(linear_spec(), 2);
    imported["preprocess"] = json!({"resize": 3, "crop": 2, "mean": [0.5], "std": [0.25]});
    let file = craft(&imported, &tensors(&linear_spec()), true);
    let (_, loaded) = model_io::load_bytes(&file).unwrap();
    assert_eq!((loaded.format, loaded.inputs()), (1, Inputs::Normalized(statistics)));
    let written = model_io::save_bytes(model.as_ref(), &loaded).unwrap();
    assert_eq!(format_of(&written), 2, "saved again, it says that it needs the mean and std");
}

#[test]
fn class_names_are_printed_escaped_on_one_line() {
    let mut m = meta(linear_spec(), 2);
    m["classes"] = json!(["three\tfour\nfive", "sev\u{1b}[2Jen", "ünïcödé 🐈"]);
    let dir = temp_dir("names");
    let path = dir.join("m.safetensors");
    std::fs::write(&path, craft(&m, &tensors(&linear_spec()), true)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_crest"))
        .args(["predict", path.to_str().unwrap(), IMAGE, "--top", "3"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let fields: Vec<&str> = stdout.trim_end_matches('\n').split('\t').collect();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert_eq!(fields.len(), 4, "{stdout}");
    let mut names: Vec<&str> = fields[1..].iter().map(|f| f.rsplit_once(' ').unwrap().0).collect();
    names.sort();
    assert_eq!(names, ["sev\\u{1b}[2Jen", "three\\tfour\\nfive", "ünïcödé 🐈"]);
    let _ = std::fs::remove_dir_all(dir);
}

/// Finite weights can still overflow on an image: no NaN probabilities with exit 0.
#[test]
fn outputs_that_overflow_are_an_error_not_nan() {
    let mut huge = tensors(&linear_spec());
    huge[0].2 = [3e38f32; 12].iter().flat_map(|v| v.to_le_bytes()).collect();
    let dir = temp_dir("overflow");
    let path = dir.join("m.safetensors");
    let mut m = meta(linear_spec(), 2);
    m["scale"] = json!(1.0);
    std::fs::write(&path, craft(&m, &huge, true)).unwrap();
    assert_cli_refuses(
        &path,
        &format!("the model's outputs for {IMAGE} are not finite numbers: its weights are too large"),
    );
    let _ = std::fs::remove_dir_all(dir);
}
