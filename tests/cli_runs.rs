//! `crest train --runs K`: K seeds on one split, each run's figures, and their spread.

mod common;

use common::{crest, temp_dir, text};
use crest::model_io::{self, ModelMeta};

/// `run N  seed S  epochs E  model of epoch K  valid_loss L  accuracy A` lines, as (seed, valid loss, accuracy).
fn run_lines(stdout: &str) -> Vec<(u64, String, f64)> {
    stdout
        .lines()
        .filter(|l| l.starts_with("run ") && l.contains("  seed "))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(words[2], "seed", "{l}");
            let after = |key: &str| words[words.iter().position(|w| *w == key).expect(key) + 1];
            (after("seed").parse().unwrap(), after("valid_loss").to_string(), after("accuracy").parse().unwrap())
        })
        .collect()
}

/// A model file's metadata and every named tensor's values.
fn contents(path: &std::path::Path) -> (ModelMeta, Vec<(String, Vec<f32>)>) {
    let (model, meta) = model_io::load(path).expect("the model loads");
    let tensors = model.named_parameters().into_iter().chain(model.named_buffers());
    (meta, tensors.map(|(name, t)| (name, t.to_vec())).collect())
}

#[test]
fn three_runs_print_their_figures_and_the_spread_and_save_the_first() {
    let dir = temp_dir("runs");
    let (single, runs) = (dir.join("single.safetensors"), dir.join("runs.safetensors"));
    let out = crest(&["train", "--epochs", "2", "--runs", "3", "--out", runs.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.matches("\nepoch     train_loss").count(), 3, "a table per run: {stdout}");
    for (i, seed) in [42, 43, 44].iter().enumerate() {
        assert!(stdout.contains(&format!("\nrun {} of 3: seed {seed}\n", i + 1)), "{stdout}");
    }
    let lines = run_lines(&stdout);
    assert_eq!(lines.iter().map(|l| l.0).collect::<Vec<_>>(), [42, 43, 44], "{stdout}");
    // Three seeds, three different models.
    assert!(lines[0].1 != lines[1].1 && lines[1].1 != lines[2].1 && lines[0].1 != lines[2].1, "{stdout}");
    let acc: Vec<f64> = lines.iter().map(|l| l.2).collect();
    let mean = acc.iter().sum::<f64>() / 3.0;
    let std = (acc.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    let (min, max) = (acc.iter().copied().fold(1.0, f64::min), acc.iter().copied().fold(0.0, f64::max));
    let expected = format!(
        "\nvalid accuracy over 3 runs: mean {mean:.4} ± {std:.4} (sample std, n-1), min {min:.4}, max {max:.4}\n"
    );
    assert!(stdout.contains(&expected), "{expected:?} in {stdout}");
    assert!(stdout.contains("\nthe model saved is run 1's (seed 42): the file the same command without --runs saves\n"));
    // And it is: the same weights and metadata as one run of seed 42. (Not compared byte for byte: the safetensors
    // crate writes the header's metadata map in a per-process hash order.)
    let out = crest(&["train", "--epochs", "2", "--out", single.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(contents(&single), contents(&runs));
    let _ = std::fs::remove_dir_all(dir);
}
