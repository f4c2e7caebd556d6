//! `crest import` and the preprocessing it records, against PyTorch: the fixtures in tests/fixtures/import were made
//! by bench/torch_import.py (crest's `cnn` arch as an `nn.Sequential` with random weights, saved by
//! `safetensors.torch.save_file`; torchvision's `Resize`, `CenterCrop`, `ToTensor` and `Normalize` on PIL images).

mod common;

use common::{crest, temp_dir, text};
use crest::data::{load_image_preprocessed, Preprocess};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const FIXTURES: &str = "tests/fixtures/import";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURES).join(name)
}

fn expected() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixture("expected.json")).unwrap()).unwrap()
}

fn images(expected: &serde_json::Value) -> Vec<String> {
    expected["images"].as_array().unwrap().iter().map(|i| i["path"].as_str().unwrap().to_string()).collect()
}

/// Grey, RGB and RGBA pictures of several shapes (PNG, lossless WebP, a GIF), converted to RGB, their shorter side
/// resized and their centre cropped: the bytes PIL gives torchvision's `ToTensor`, for upscaling and downscaling.
#[test]
fn preprocessing_gives_pil_s_pixels_exactly() {
    let expected = expected();
    let mut pil = &std::fs::read(fixture("pixels.bin")).unwrap()[..];
    for image in images(&expected) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(&image);
        for size in expected["pixels"].as_array().unwrap() {
            let (resize, crop) = (size[0].as_u64().unwrap() as usize, size[1].as_u64().unwrap() as usize);
            let ours = load_image_preprocessed(&path, 3, &Preprocess::imagenet(resize, crop), 1 << 20).unwrap();
            let (theirs, rest) = pil.split_at(3 * crop * crop);
            let differ = ours.iter().zip(theirs).filter(|(a, b)| a != b).count();
            assert_eq!(differ, 0, "{image} resized to {resize}, cropped to {crop}: {differ} bytes differ from PIL's");
            pil = rest;
        }
    }
    assert!(pil.is_empty());
}

fn import(out: &Path, extra: &[&str]) -> std::process::Output {
    let weights = fixture("cnn.safetensors");
    let mut args = vec!["import", weights.to_str().unwrap(), "--arch", "cnn", "--resize", "16", "--crop", "12"];
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(extra);
    crest(&args)
}

#[test]
fn imported_weights_predict_pytorch_s_probabilities() {
    let dir = temp_dir("import-predict");
    let model = dir.join("model.safetensors");
    let classes = fixture("classes.txt");
    let out = import(&model, &["--classes", classes.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stdout,
        format!(
            "{}: cnn for 10 classes, input [3, 12, 12] (shorter side resized to 16, centre 12x12 kept)\n",
            model.display()
        )
    );
    // A crest model file like any other, which records the preprocessing.
    let (_, meta) = crest::model_io::load(&model).unwrap();
    assert_eq!(meta.preprocess, Some(Preprocess::imagenet(16, 12)));
    assert_eq!(meta.classes[3], "digit 3");

    let expected = expected();
    let images = images(&expected);
    let mut args = vec!["predict", model.to_str().unwrap(), "--top", "10"];
    args.extend(images.iter().map(String::as_str));
    let out = crest(&args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), images.len());
    for (line, image) in lines.iter().zip(expected["images"].as_array().unwrap()) {
        let torch: Vec<f64> = image["probabilities"].as_array().unwrap().iter().map(|p| p.as_f64().unwrap()).collect();
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields[0], image["path"].as_str().unwrap());
        let ours: Vec<(usize, f64)> = fields[1..]
            .iter()
            .map(|f| {
                let (class, p) = f.strip_prefix("digit ").unwrap().split_once(' ').unwrap();
                (class.parse().unwrap(), p.parse().unwrap())
            })
            .collect();
        let mut ranked: Vec<usize> = (0..torch.len()).collect();
        ranked.sort_by(|&a, &b| torch[b].total_cmp(&torch[a]));
        assert_eq!(ours.iter().map(|c| c.0).take(5).collect::<Vec<_>>(), ranked[..5], "{line}");
        // crest prints 4 decimals, which are within 5e-5 of its own value.
        for (class, p) in ours {
            assert!((p - torch[class]).abs() <= 1e-4, "{line}: class {class}, PyTorch's {}", torch[class]);
        }
    }

    // Without --classes, classes are named by their index.
    let out = import(&model, &[]);
    assert!(out.status.success());
    assert_eq!(crest::model_io::load(&model).unwrap().1.classes[9], "class 9");
}

/// `crest evaluate` applies the preprocessing an imported model records, as `crest predict` does: on a folder of
/// the fixture's images (each class folder holding one, of every size, mode and format), the probability of every
/// class in its `--csv` rows is PyTorch's for that image. An IDX folder, which holds no image to resize, is refused.
#[test]
fn imported_weights_evaluate_a_folder_as_pytorch_classifies_it() {
    let dir = temp_dir("import-evaluate");
    let model = dir.join("model.safetensors");
    assert!(import(&model, &["--classes", fixture("classes.txt").to_str().unwrap()]).status.success());
    let expected = expected();
    let images = expected["images"].as_array().unwrap();
    let folder = dir.join("digits");
    for class in 0..10 {
        let k = class % images.len();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(images[k]["path"].as_str().unwrap());
        let copy = folder
            .join(format!("digit {class}"))
            .join(format!("image{k}.{}", source.extension().unwrap().to_str().unwrap()));
        std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
        std::fs::copy(&source, &copy).unwrap();
    }
    let csv = dir.join("predictions.csv");
    let out = crest(&["evaluate", model.to_str().unwrap(), folder.to_str().unwrap(), "--csv", csv.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains(": 10 images of 12x12x3, all of them"), "{stdout}");
    let rows = std::fs::read_to_string(&csv).unwrap();
    let mut lines = rows.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[3..], (0..10).map(|c| format!("digit {c}")).collect::<Vec<_>>());
    let mut seen = 0;
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let name = Path::new(fields[0]).file_stem().unwrap().to_str().unwrap();
        let k: usize = name.strip_prefix("image").unwrap().parse().unwrap();
        for (class, field) in fields[3..].iter().enumerate() {
            let (ours, torch) = (field.parse::<f64>().unwrap(), images[k]["probabilities"][class].as_f64().unwrap());
            assert!((ours - torch).abs() <= 1e-4, "{line}: class {class}, PyTorch's {torch}");
        }
        seen += 1;
    }
    assert_eq!(seen, 10);

    let idx = dir.join("idx");
    std::fs::create_dir_all(&idx).unwrap();
    for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"] {
        std::fs::write(idx.join(name), b"").unwrap();
    }
    let out = crest(&["evaluate", model.to_str().unwrap(), idx.to_str().unwrap()]);
    assert!(refusal(out).contains("holds IDX files, whose images are all one size"));
}

fn refusal(out: std::process::Output) -> String {
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success() && stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

/// The fixture's tensors, with `change` applied, as a safetensors file in `dir`.
fn changed_weights(
    dir: &Path,
    name: &str,
    change: impl FnOnce(&mut HashMap<String, (Dtype, Vec<usize>, Vec<u8>)>),
) -> PathBuf {
    let bytes = std::fs::read(fixture("cnn.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: HashMap<String, (Dtype, Vec<usize>, Vec<u8>)> =
        file.tensors().into_iter().map(|(n, t)| (n, (t.dtype(), t.shape().to_vec(), t.data().to_vec()))).collect();
    change(&mut tensors);
    let views = tensors.iter().map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()));
    let path = dir.join(name);
    std::fs::write(&path, safetensors::serialize(views, &None).unwrap()).unwrap();
    path
}

#[test]
fn what_does_not_fit_is_refused_in_one_line() {
    let dir = temp_dir("import-refusals");
    let out = dir.join("model.safetensors");
    let path = |p: &Path| p.display().to_string();

    // A grey model's first layer holds one input channel; the file's holds three.
    let grey = ["--channels", "1", "--mean", "0.5", "--std", "0.25"];
    let weights = fixture("cnn.safetensors");
    assert_eq!(
        refusal(import(&out, &grey)),
        format!(
            "error: cannot import {}: tensor 0.weight: expected [32, 1, 3, 3], found [32, 3, 3, 3]\n",
            path(&weights)
        )
    );
    let out_16 =
        crest(&["import", weights.to_str().unwrap(), "--arch", "cnn", "--crop", "16", "--out", out.to_str().unwrap()]);
    assert_eq!(
        refusal(out_16),
        format!("error: cannot import {}: tensor 7.weight: expected [128, 1024], found [128, 576]\n", path(&weights))
    );
    let four = dir.join("four.txt");
    std::fs::write(&four, "a\nb\nc\nd\n").unwrap();
    assert_eq!(
        refusal(import(&out, &["--classes", four.to_str().unwrap()])),
        format!(
            "error: cannot import {}: its last layer gives 10 outputs, but 4 class names were given\n",
            path(&weights)
        )
    );

    // BatchNorm's batch counter is left out; any other tensor the architecture lacks is refused, as is one missing.
    let counted = changed_weights(&dir, "counted.safetensors", |t| {
        t.insert("1.num_batches_tracked".into(), (Dtype::I64, vec![], 7i64.to_le_bytes().to_vec()));
    });
    assert!(crest(&[
        "import",
        counted.to_str().unwrap(),
        "--arch",
        "cnn",
        "--crop",
        "12",
        "--out",
        out.to_str().unwrap()
    ])
    .status
    .success());
    std::fs::remove_file(&out).unwrap();
    let extra = changed_weights(&dir, "extra.safetensors", |t| {
        t.insert("fc.weight".into(), (Dtype::F32, vec![1], vec![0; 4]));
    });
    let out_extra =
        crest(&["import", extra.to_str().unwrap(), "--arch", "cnn", "--crop", "12", "--out", out.to_str().unwrap()]);
    assert_eq!(
        refusal(out_extra),
        format!("error: cannot import {}: tensor fc.weight is not in the architecture\n", path(&extra))
    );
    let missing = changed_weights(&dir, "missing.safetensors", |t| {
        t.remove("3.bias");
    });
    let out_missing =
        crest(&["import", missing.to_str().unwrap(), "--arch", "cnn", "--crop", "12", "--out", out.to_str().unwrap()]);
    assert_eq!(refusal(out_missing), format!("error: cannot import {}: tensor 3.bias is missing\n", path(&missing)));

    // torch.save's zip, and a file that is neither.
    let pth = fixture("tiny.pth");
    let out_pth = crest(&["import", pth.to_str().unwrap(), "--arch", "cnn", "--out", out.to_str().unwrap()]);
    assert_eq!(
        refusal(out_pth),
        format!(
            "error: cannot import {}: it is a PyTorch pickle (torch.save), not safetensors; convert it in Python: \
             import torch; from safetensors.torch import save_file; save_file(torch.load(\"{}\", weights_only=True), \
             \"{}\")\n",
            path(&pth),
            path(&pth),
            path(&pth.with_extension("safetensors"))
        )
    );
    let text_file = fixture("classes.txt");
    let out_text = crest(&["import", text_file.to_str().unwrap(), "--arch", "cnn", "--out", out.to_str().unwrap()]);
    assert_eq!(
        refusal(out_text),
        format!(
            "error: cannot import {}: it is not a safetensors file (its header claims 734122423618070884 bytes, more \
             than safetensors allows (100 MB)); save a PyTorch model's weights in Python: from safetensors.torch \
             import save_file; save_file(model.state_dict(), \"weights.safetensors\")\n",
            path(&text_file)
        )
    );
    assert!(!out.exists());
}
