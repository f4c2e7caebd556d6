//! Every input that ever crashed or hung a fuzz target, replayed on stable Rust: `tests/fuzz_corpus/<target>/`
//! holds them (a folder's `.gitkeep` aside), and each goes through the same function its fuzz target runs
//! (`fuzz/src/lib.rs`, included here), which panics on what must not happen.

#[path = "../fuzz/src/lib.rs"]
mod targets;

use std::path::Path;

/// Runs `target` on each file in `tests/fuzz_corpus/<name>/`; returns how many there were.
fn replay(name: &str, target: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus").join(name);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_file() && !path.file_name().is_some_and(|n| n.as_encoded_bytes().starts_with(b".")) {
            let bytes = std::fs::read(&path).unwrap();
            if std::panic::catch_unwind(|| target(&bytes)).is_err() {
                panic!("{} panics", path.display());
            }
            count += 1;
        }
    }
    count
}

/// `jpeg-segment-then-lone-ff`: a JPEG whose scan is followed by a segment and then one 0xFF byte looped forever
/// in the end-marker check as first written.
#[test]
fn image_file() {
    assert!(replay("image_file", targets::image_file) >= 1);
}

/// No input has crashed this target yet (120 s of `cargo fuzz run idx_file`, 917,644 inputs): the folder is empty.
#[test]
fn idx_file() {
    replay("idx_file", targets::idx_file);
}

/// Crafted model files of the hostile pass that crashed `crest predict`, and an end offset near 2^64 that
/// overflowed inside safetensors' own checks under `cargo fuzz`.
#[test]
fn model_file() {
    assert!(replay("model_file", targets::model_file) >= 1);
}
