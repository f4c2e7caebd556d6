//! The `crest` binary end to end: real training on the shipped sample, and bad input on fixtures made here.

mod common;

use common::{crest, temp_dir, text};
use std::path::Path;
use std::process::Output;

/// A class folder of small grey images whose brightness depends on the class, so they are learnable.
fn write_class(root: &Path, class: &str, n: usize, level: u8) {
    let dir = root.join(class);
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        let pixels: Vec<u8> = (0..64).map(|p| level.wrapping_add(((p % 8 + p / 8 + i) % 7) as u8)).collect();
        let file = std::fs::File::create(dir.join(format!("{i:03}.png"))).unwrap();
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), 8, 8);
        encoder.set_color(png::ColorType::Grayscale);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&pixels).unwrap();
        writer.finish().unwrap();
    }
}

/// The stdout of a training run without the lines that hold timings.
fn without_timings(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| l.rsplit_once("  ").map_or(l, |(rest, last)| if last.contains(':') { rest } else { l }).to_string())
        .collect()
}

#[test]
fn trains_on_the_sample_saves_and_predicts() {
    let dir = temp_dir("sample");
    let model = dir.join("m.safetensors");
    let csv = dir.join("log.csv");
    let out = crest(&["train", "--epochs", "3", "--out", model.to_str().unwrap(), "--csv", csv.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("epoch     train_loss  valid_loss  batch_accuracy  time"), "{stdout}");
    let acc: f32 = stdout.lines().find_map(|l| l.strip_prefix("valid accuracy: ")).unwrap().parse().unwrap();
    assert!(acc >= 0.95, "3 epochs on 3-vs-7 reached only {acc}");
    let log = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(log.lines().next(), Some("epoch,train_loss,valid_loss,batch_accuracy,time"));
    assert_eq!(log.lines().count(), 4);

    let (p3, p7) = ("data/mnist_sample/3/00000.png", "data/mnist_sample/7/00000.png");
    let out = crest(&["predict", model.to_str().unwrap(), p3, p7]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let firsts: Vec<&str> = stdout.lines().map(|l| l.split('\t').nth(1).unwrap().split(' ').next().unwrap()).collect();
    assert_eq!(firsts, ["3", "7"], "{stdout}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn same_seed_prints_the_same_numbers() {
    let dir = temp_dir("seed");
    let model = dir.join("m.safetensors");
    // The second run may read the decoded images the first cached: only that note may differ.
    let run = || {
        let out = text(&crest(&["train", "--epochs", "2", "--seed", "7", "--out", model.to_str().unwrap()])).0;
        out.lines().filter(|l| !l.starts_with("note: cache: ")).map(|l| format!("{l}\n")).collect::<String>()
    };
    let (a, b) = (run(), run());
    assert_eq!(without_timings(&a), without_timings(&b));
    let other = text(&crest(&["train", "--epochs", "2", "--seed", "8", "--out", model.to_str().unwrap()])).0;
    assert_ne!(without_timings(&a), without_timings(&other));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_arguments_are_refused_by_the_parser() {
    for args in [
        ["--size", "0"],
        ["--bs", "0"],
        ["--epochs", "0"],
        ["--lr", "-1"],
        ["--lr", "nan"],
        ["--lr", "inf"],
        ["--valid-pct", "1"],
        ["--size", "100000"],
    ] {
        let out = crest(&["train", args[0], args[1]]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

fn assert_clean_failure(out: &Output, expect: &str) {
    let (_, stderr) = text(out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or("");
    assert!(last.starts_with("error: ") && last.contains(expect), "expected {expect:?} in {stderr:?}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
}

#[test]
fn bad_folders_fail_with_one_line() {
    let missing = crest(&["train", "/nonexistent/crest-data"]);
    assert_clean_failure(&missing, "/nonexistent/crest-data");

    let one = temp_dir("one-class");
    write_class(&one, "only", 4, 10);
    assert_clean_failure(&crest(&["train", one.to_str().unwrap()]), "class");

    let three = temp_dir("three-classes");
    for (i, c) in ["a", "b", "c"].iter().enumerate() {
        write_class(&three, c, 5, 80 * i as u8);
    }
    assert_clean_failure(&crest(&["train", three.to_str().unwrap(), "--loss", "mnist"]), "--loss ce");
    for d in [one, three] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn a_diverging_loss_stops_training_and_keeps_the_old_model() {
    let dir = temp_dir("nan");
    let model = dir.join("m.safetensors");
    std::fs::write(&model, b"previous model").unwrap();
    let out = crest(&["train", "--opt", "sgd", "--lr", "1e38", "--epochs", "2", "--out", model.to_str().unwrap()]);
    assert_clean_failure(&out, "smaller");
    let (_, stderr) = text(&out);
    assert!(stderr.contains("epoch 0, batch"), "{stderr}");
    assert_eq!(std::fs::read(&model).unwrap(), b"previous model");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn damaged_or_foreign_model_files_are_refused() {
    let dir = temp_dir("damaged");
    let model = dir.join("m.safetensors");
    let out = crest(&["train", "--epochs", "1", "--out", model.to_str().unwrap()]);
    assert!(out.status.success());
    let good = std::fs::read(&model).unwrap();
    let img = "data/mnist_sample/3/00000.png";

    std::fs::write(&model, &good[..good.len() / 2]).unwrap();
    assert_clean_failure(&crest(&["predict", model.to_str().unwrap(), img]), "not a valid crest model file");

    // Same length, so the header stays valid: only the format number changes.
    let key = br#"\"format\":1"#;
    let at = good.windows(key.len()).position(|w| w == key).expect("format in the header");
    let mut newer = good.clone();
    newer[at + key.len() - 1] = b'9';
    std::fs::write(&model, &newer).unwrap();
    assert_clean_failure(&crest(&["predict", model.to_str().unwrap(), img]), "format 9");

    std::fs::write(&model, &good).unwrap();
    assert_clean_failure(&crest(&["predict", model.to_str().unwrap(), "/nonexistent.png"]), "could not be read");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_model_that_does_not_fit_the_images_is_refused_before_training() {
    let out = crest(&["train", "--arch", "cnn", "--size", "2"]);
    assert_clean_failure(&out, "got [64, 1, 1]");
    let (stdout, _) = text(&out);
    assert!(!stdout.contains("epoch"), "training started: {stdout}");
}

#[test]
fn two_classes_train_with_cross_entropy_too() {
    let dir = temp_dir("ce");
    let model = dir.join("m.safetensors");
    let out = crest(&["train", "--loss", "ce", "--epochs", "2", "--out", model.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("  accuracy"), "one output per class is scored by argmax: {stdout}");
    let acc: f32 = stdout.lines().find_map(|l| l.strip_prefix("valid accuracy: ")).unwrap().parse().unwrap();
    assert!(acc >= 0.95, "2 epochs reached only {acc}");
    let out = crest(&["predict", model.to_str().unwrap(), "data/mnist_sample/3/00000.png"]);
    assert!(text(&out).0.contains("\t3 "), "{:?}", text(&out));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn mlp_and_cnn_train_on_the_sample_and_predict_from_their_files() {
    let dir = temp_dir("arch");
    for arch in ["mlp:32", "cnn"] {
        let model = dir.join(format!("{arch}.safetensors"));
        let out = crest(&["train", "--arch", arch, "--epochs", "1", "--out", model.to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{arch}: {stderr}");
        let acc: f32 = stdout.lines().find_map(|l| l.strip_prefix("valid accuracy: ")).unwrap().parse().unwrap();
        assert!(acc >= 0.95, "{arch}: one epoch reached only {acc}");
        let out = crest(&["predict", model.to_str().unwrap(), "data/mnist_sample/7/00000.png"]);
        assert!(text(&out).0.contains("\t7 "), "{arch}: {:?}", text(&out));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_loss_growing_without_bound_stops_training_as_a_nan_does() {
    let dir = temp_dir("diverging");
    let model = dir.join("m.safetensors");
    std::fs::write(&model, b"previous model").unwrap();
    for args in [["--opt", "adam", "--lr", "1e30"], ["--opt", "sgd", "--lr", "1e3"]] {
        let out = crest(&[&["train", "--epochs", "2", "--out", model.to_str().unwrap()], &args[..]].concat());
        assert_clean_failure(&out, "a smaller one should train (e.g. --lr ");
        let (stdout, stderr) = text(&out);
        assert!(stderr.starts_with("error: the loss grew from 0.69"), "{args:?}: {stderr}");
        assert!(stderr.contains(" by epoch 0, batch "), "{args:?}: {stderr}");
        assert!(!stdout.contains("valid accuracy"), "{args:?}: {stdout}");
        assert_eq!(std::fs::read(&model).unwrap(), b"previous model");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_model_too_large_for_memory_is_refused_before_it_is_built() {
    // 4 hidden layers of 65536: 12.9 billion weights, 103 GB with their gradients (within the work a model may
    // ask for, LayerSpec::shapes, so it is memory that refuses it).
    let arch = format!("mlp:{}", ["65536"; 4].join(","));
    let dir = temp_dir("huge");
    let out = crest(&["train", "--arch", &arch, "--out", dir.join("m.safetensors").to_str().unwrap()]);
    assert_clean_failure(&out, "GB of memory, more than this machine can give: use a smaller --bs, --size or --arch");
    let (stdout, stderr) = text(&out);
    let start = format!("error: training {arch} on batches of 64 images of 1x28x28 needs at least ");
    assert!(stderr.starts_with(&start), "{stderr}");
    assert!(!stdout.contains("epoch"), "{stdout}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_as_sigpipe_would() {
    use std::io::{BufRead, BufReader};
    let dir = temp_dir("pipe");
    let model = dir.join("m.safetensors");
    let mut child = common::command(&["train", "--epochs", "30", "--no-report", "--out", model.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("dataset: "), "{first}");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 141 when a later line met the closed pipe; 0 only if every line fitted in the pipe before it closed.
    assert!(matches!(out.status.code(), Some(141) | Some(0)), "{:?} {stderr}", out.status);
    assert!(!stderr.contains("internal error"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
