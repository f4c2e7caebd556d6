//! One IDX file's bytes parsed as images or labels: `crest_fuzz::idx_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crest_fuzz::idx_file(data));
