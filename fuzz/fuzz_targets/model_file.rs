//! Model files are untrusted input: whatever the bytes, `load_bytes` returns a model or an error, and a model it
//! returns runs on an image of the shape its metadata gives, as `crest predict` runs it.
#![no_main]

use crest::model_io;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok((model, meta)) = model_io::load_bytes(bytes) {
        let model = crest::nn::fuse(model);
        let _no_grad = crest::tensor::no_grad();
        let shape = [1, meta.channels, meta.height, meta.width];
        let pixels = vec![0; shape.iter().product()];
        model.forward(&crest::Tensor::from_u8(pixels, &shape, meta.scale));
    }
});
