//! Every input that ever crashed a fuzz target (`fuzz/fuzz_targets/<target>.rs`) is kept in
//! `tests/fuzz_corpus/<target>/` and replayed here on every test run, one test per target, so that none crashes
//! again without `cargo fuzz`. Each test does what its fuzz target does.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// Runs `target_body` on every file of the target's folder; fails naming each file that panicked.
fn replay(target: &str, target_body: impl Fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    let crashed: Vec<String> = files
        .iter()
        .filter(|file| {
            let bytes = std::fs::read(file).unwrap();
            catch_unwind(AssertUnwindSafe(|| target_body(&bytes))).is_err()
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(crashed.is_empty(), "panicked on {crashed:?}");
}

/// `fuzz/fuzz_targets/model_file.rs`: load, then one forward pass on an image of the metadata's shape.
#[test]
fn model_file() {
    replay("model_file", |bytes| {
        if let Ok((model, meta)) = crest::model_io::load_bytes(bytes) {
            let model = crest::nn::fuse(model);
            let _no_grad = crest::tensor::no_grad();
            let shape = [1, meta.channels, meta.height, meta.width];
            let pixels = vec![0; shape.iter().product()];
            model.forward(&crest::Tensor::from_u8(pixels, &shape, meta.scale));
        }
    });
}
