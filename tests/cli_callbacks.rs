//! `crest train --patience`, `--save-best` and the progress bar, run as a user runs them, on the shipped sample.

mod common;

use common::{crest, temp_dir, text};
use crest::data::{self, DataLoader, LoadOptions, Order};
use crest::learner::{DataLoaders, Learner};
use crest::loss::bce_with_logits;
use crest::metrics::Metric;
use crest::model_io;
use std::sync::Arc;

/// The table's rows (epoch, train_loss, valid_loss, accuracy) as printed.
fn rows(stdout: &str) -> Vec<Vec<String>> {
    let header = stdout.lines().position(|l| l.starts_with("epoch")).expect("a table");
    stdout
        .lines()
        .skip(header + 1)
        .map_while(|l| {
            let cells: Vec<String> = l.split_whitespace().map(String::from).collect();
            (cells.len() == 5 && cells[0].parse::<usize>().is_ok()).then(|| cells[..4].to_vec())
        })
        .collect()
}

#[test]
fn patience_stops_when_the_valid_loss_stops_improving_and_save_best_keeps_the_best_of_the_stopped_fit() {
    let dir = temp_dir("patience");
    let model = dir.join("m.safetensors");
    let args = ["train", "--epochs", "8", "--schedule", "constant", "--lr", "0.05", "--patience", "2", "--save-best"];
    let out = crest(&[&args[..], &["--out", model.to_str().unwrap()]].concat());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    // Valid losses 0.041268, 0.047825, 0.055266: two epochs without a lower one after epoch 0.
    let valid: Vec<String> = rows(&stdout).into_iter().map(|r| r[2].clone()).collect();
    assert_eq!(valid, ["0.041268", "0.047825", "0.055266"], "{stdout}");
    assert!(stdout.contains("\nno improvement in valid_loss for 2 epochs since epoch 0: stopping\n"), "{stdout}");
    // A fit a callback stopped still ends with save-best's restore.
    assert!(stdout.contains(": best valid_loss 0.041268 at epoch 0\n"), "{stdout}");
    assert_eq!(evaluate(&model).0, "0.041268");
    let _ = std::fs::remove_dir_all(dir);
}

/// The saved model's valid loss and accuracy, computed afresh on the split `crest train` made (its defaults).
fn evaluate(model: &std::path::Path) -> (String, String) {
    let split = data::load("data/mnist_sample".as_ref(), &LoadOptions { progress: false, ..LoadOptions::default() })
        .expect("the sample loads");
    let (model, meta) = model_io::load(model).expect("the saved model loads");
    let dls = DataLoaders {
        train: DataLoader::new(Arc::new(split.train), 64, Order::Sequential),
        valid: DataLoader::new(Arc::new(split.valid), 256, Order::Sequential),
    };
    let mut learn = Learner::builder(dls, model)
        .loss_func(bce_with_logits)
        .metrics([Metric::BATCH_ACCURACY])
        .inputs(meta.inputs())
        .quiet()
        .build()
        .unwrap();
    let (loss, metrics) = learn.validate();
    (format!("{:.6}", loss.unwrap()), format!("{:.6}", metrics[0].unwrap()))
}

#[test]
fn save_best_saves_the_best_epochs_model_not_the_last() {
    let dir = temp_dir("save-best");
    let model = dir.join("m.safetensors");
    let args = ["train", "--epochs", "6", "--schedule", "constant", "--lr", "0.01", "--save-best", "--monitor"];
    let out = crest(&[&args[..], &["accuracy", "--out", model.to_str().unwrap()]].concat());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let rows = rows(&stdout);
    assert_eq!(rows.len(), 6, "{stdout}");
    // Accuracy first reaches its highest, 0.995238, at epoch 1; later epochs tie or fall below it.
    assert_eq!(rows[1][3], "0.995238", "{stdout}");
    assert!(rows[2..].iter().all(|r| r[3].as_str() <= "0.995238"), "{stdout}");
    assert!(stdout.contains("\nvalid accuracy: 0.9952 (the model of the best batch_accuracy 0.995238 at epoch 1)\n"));
    assert!(stdout.contains("\nsaved model to ") && stdout.contains(": best batch_accuracy 0.995238 at epoch 1\n"));
    // The file holds epoch 1's weights: evaluated afresh it gives epoch 1's valid loss, not the last epoch's.
    let (loss, accuracy) = evaluate(&model);
    assert_eq!((loss.as_str(), accuracy.as_str()), (rows[1][2].as_str(), "0.995238"), "{stdout}");
    assert_ne!(rows[1][2], rows[5][2]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn watching_needs_a_validation_set_and_sensible_flags() {
    let dir = temp_dir("no-valid");
    let model = dir.join("m.safetensors");
    let out = crest(&["train", "--valid-pct", "0", "--patience", "2", "--save-best", "--out", model.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.lines().last().unwrap(),
        "error: --patience and --save-best compare validation figures, and this split has no validation images: \
         raise --valid-pct above 0"
    );
    assert!(!model.exists());
    for args in [["--patience", "0"], ["--runs", "0"], ["--monitor", "bogus"], ["--min-delta", "-1"]] {
        let out = crest(&["train", &format!("{}={}", args[0], args[1])]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: ") && stderr.contains(args[0]), "{args:?}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A run whose one epoch takes more than the second after which the bar shows (a CNN on the sample enlarged to 84x84).
fn slow_epoch(model: &std::path::Path) -> Vec<String> {
    ["train", "--arch", "cnn", "--size", "84", "--epochs", "1", "--no-report", "--out", model.to_str().unwrap()]
        .map(String::from)
        .to_vec()
}

#[test]
fn output_through_a_pipe_has_no_progress_bar() {
    let dir = temp_dir("no-bar");
    let model = dir.join("m.safetensors");
    let args = slow_epoch(&model);
    let out = crest(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    for stream in [&stdout, &stderr] {
        assert!(!stream.contains('\r') && !stream.contains('\x1b') && !stream.contains("=>"), "{stream:?}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The same run on a terminal (util-linux's `script` gives it one) draws the bar and clears it before the row.
#[test]
fn a_terminal_gets_a_progress_bar_per_epoch() {
    if std::process::Command::new("script").arg("--version").output().is_err() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "util-linux's script is needed under CI");
        eprintln!("skipped: no `script` to give crest a terminal");
        return;
    }
    let dir = temp_dir("bar");
    let model = dir.join("m.safetensors");
    let command =
        std::iter::once(env!("CARGO_BIN_EXE_crest").to_string()).chain(slow_epoch(&model)).collect::<Vec<_>>();
    let out = std::process::Command::new("script")
        .args(["-qec", &command.join(" "), "/dev/null"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("epoch 0 [") && screen.contains("/27 "), "no bar: {screen:?}");
    assert!(screen.contains("\r\x1b[2K"), "the bar is not cleared: {screen:?}");
    let _ = std::fs::remove_dir_all(dir);
}
