//! What each fuzz target does with its input, in one place for both users: the targets in `fuzz_targets/`, and
//! `tests/fuzz_replay.rs` in the main crate, which includes this file to replay every input that once crashed.
//! Each function asserts what must hold of any input, beyond not panicking.
//!
//! Run one from the repository root with `cargo +nightly fuzz run image_file -- -max_total_time=120` (seeds in
//! `corpus/<target>/`); an input that crashes goes in `tests/fuzz_corpus/<target>/`.

use crest::data::{decode, idx};

/// Large enough for every seed, small enough that no input can ask for more than a few hundred MB.
const MAX_PIXELS: u64 = 1 << 22;

/// Three bytes choose the output (channels 1, 3 or 4; height and width 1 to 64), the rest is one image file.
pub fn image_file(data: &[u8]) {
    let [c, h, w, file @ ..] = data else { return };
    let channels = [1, 3, 4][usize::from(*c) % 3];
    let (height, width) = (usize::from(*h % 64) + 1, usize::from(*w % 64) + 1);
    match decode::decode_bytes(file, channels, height, width, MAX_PIXELS) {
        Ok(pixels) => assert_eq!(pixels.len(), channels * height * width),
        Err(e) => assert!(!e.to_string().contains('\n'), "a message of more than one line: {e}"),
    }
}

/// The first byte's lowest bit chooses images (0) or labels (1), the rest is one IDX file, gzipped or not.
pub fn idx_file(data: &[u8]) {
    let [kind, file @ ..] = data else { return };
    let message = if kind & 1 == 0 {
        match idx::parse_images(file) {
            Ok(images) => {
                assert!(images.count > 0 && images.rows > 0 && images.cols > 0);
                assert_eq!(images.pixels.len(), images.count * images.rows * images.cols);
                return;
            }
            Err(e) => e.to_string(),
        }
    } else {
        match idx::parse_labels(file) {
            Ok(_) => return,
            Err(e) => e.to_string(),
        }
    };
    assert!(!message.contains('\n'), "a message of more than one line: {message}");
}

/// The whole input is one model file: whatever the bytes, `load_bytes` returns a model or a one-line error, and a
/// model it returns runs on an image of its metadata's shape, as `crest predict` runs it, giving finite outputs.
pub fn model_file(data: &[u8]) {
    match crest::model_io::load_bytes(data) {
        Ok((model, meta)) => {
            let model = crest::nn::fuse(model);
            let _no_grad = crest::tensor::no_grad();
            let shape = [1, meta.channels, meta.height, meta.width];
            let pixels = vec![0; shape.iter().product()];
            let _ = model.forward(&crest::Tensor::from_u8(pixels, &shape, meta.scale));
        }
        Err(e) => assert!(!e.to_string().contains('\n'), "a message of more than one line: {e}"),
    }
}
