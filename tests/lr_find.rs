//! `crest lr-find` and `crest train --lr auto` on the MNIST sample.

mod common;

use common::{crest, temp_dir, text};

/// The `SuggestedLRs(...)` line's valley.
fn valley(stdout: &str) -> f32 {
    let line = stdout.lines().find_map(|l| l.split("SuggestedLRs(valley=").nth(1)).expect("a SuggestedLRs line");
    line.split(',').next().unwrap().parse().unwrap()
}

#[test]
fn lr_find_prints_fastais_suggestions_and_the_curve_and_train_lr_auto_trains_with_the_valley() {
    let out = crest(&["lr-find", "data/mnist_sample"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let suggested = stdout.lines().find(|l| l.starts_with("SuggestedLRs(")).unwrap();
    assert!(
        suggested.contains(", steep=") && suggested.contains(", minimum=") && suggested.ends_with(')'),
        "{suggested}"
    );
    let found = valley(&stdout);
    // The linear model trains at crest's default, 3e-3: the valley lies within a decade of it.
    assert!((3e-4..3e-2).contains(&found), "{found}");
    let plot: Vec<&str> = stdout.lines().skip_while(|l| *l != "smoothed loss").collect();
    assert_eq!(plot.iter().filter(|l| l.contains(" |")).count(), 15, "{stdout}");
    assert_eq!(
        plot.iter().map(|l| l.matches('V').count()).sum::<usize>(),
        2,
        "the valley mark and its legend: {stdout}"
    );
    assert!(!stdout.contains("saved"), "{stdout}");

    let dir = temp_dir("lr-auto");
    let model = dir.join("m.safetensors");
    let out = crest(&["train", "--lr", "auto", "--epochs", "2", "--out", model.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    // The same data, model and seed: the same sweep, and training at its valley.
    assert_eq!(valley(&stdout), found, "{stdout}");
    assert!(stdout.contains(&format!("training with the valley, {found}\n")), "{stdout}");
    let accuracy: f32 = stdout.lines().find_map(|l| l.strip_prefix("valid accuracy: ")).unwrap().parse().unwrap();
    assert!(accuracy > 0.95, "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
