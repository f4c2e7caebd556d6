//! One image file's bytes (any format crest reads) decoded, converted and resized: `crest_fuzz::image_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crest_fuzz::image_file(data));
