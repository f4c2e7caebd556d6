//! A stop requested while a file is being written (as a SIGTERM during `crest train`'s save would): the new bytes
//! are dropped with their temporary file and the old file stays. A test binary of its own, since the request is
//! process-wide and would stop any other test's training.

use crest::nn::{Linear, Sequential};
use crest::rng::Rng;
use std::sync::atomic::Ordering;

#[test]
fn a_stop_during_a_save_removes_the_temporary_file_and_keeps_the_old_one() {
    let dir = std::env::temp_dir().join(format!("crest-test-interrupted-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.safetensors");
    std::fs::write(&path, b"previous model").unwrap();
    let model = Sequential::default().push(Linear::new(4, 2, &mut Rng::new(0)));
    crest::model_io::save_weights(&path, &model).unwrap();
    let saved = std::fs::read(&path).unwrap();

    crest::interrupt::flag().store(15, Ordering::SeqCst);
    let err = crest::model_io::save_weights(&path, &Sequential::default().push(Linear::new(4, 3, &mut Rng::new(1))));
    assert_eq!(err.unwrap_err().to_string(), "interrupted by SIGTERM");
    assert_eq!(std::fs::read(&path).unwrap(), saved);
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["m.safetensors"]);
    let _ = std::fs::remove_dir_all(dir);
}
