//! Running the `crest` binary from tests. Each test file compiles this module on its own and uses a part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

pub fn crest(args: &[&str]) -> Output {
    command(args).output().expect("run crest")
}

/// The binary, run in the package root (where `data/mnist_sample` is the default folder).
pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_crest"));
    c.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

pub fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// An empty folder of the test's own.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("crest-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The names in a folder, sorted.
pub fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// The worst `|got − want| / max(|want|, s)` over a tensor, where the scale floor `s = 1e-2 · max|want|` is the
/// tensor's: a near-zero element (a sum that cancels, a softmax gradient of a saturated row) keeps only the digits
/// f32 cancellation leaves it, so it is judged against the magnitude of its tensor, not against itself.
pub fn relative_error(got: &[f32], want: &[f32]) -> f64 {
    let floor = 1e-2 * want.iter().fold(0.0f64, |m, &w| m.max(w.abs() as f64));
    let error = |(&g, &w): (&f32, &f32)| {
        if g == w {
            return 0.0; // also where the floor is 0: an all-zero reference leaves no scale, so only exact passes
        }
        let e = (g as f64 - w as f64).abs() / (w.abs() as f64).max(floor);
        if e.is_nan() {
            f64::INFINITY // a NaN from crest
        } else {
            e
        }
    };
    got.iter().zip(want).map(error).fold(0.0, f64::max)
}
