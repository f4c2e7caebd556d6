//! One model file's bytes loaded and, if they make a model, run once: `crest_fuzz::model_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crest_fuzz::model_file(data));
