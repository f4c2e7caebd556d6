//! Loads a data folder as `crest train` would (no split, no progress bar) and prints one hash of every pixel,
//! label and class name: a check that a change to loading left the decoded data bit for bit the same.
//!
//! `cargo run --release --example pixel_hash -- DIR`

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;

fn main() -> crest::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "data/mnist_sample".into()));
    let opts = crest::data::LoadOptions { valid_pct: 0.0, progress: false, ..Default::default() };
    let split = crest::data::load(&dir, &opts)?;
    let ds = &split.train;
    let mut h = DefaultHasher::new();
    (&ds.pixels[..], &ds.labels, &ds.classes, ds.channels, ds.height, ds.width).hash(&mut h);
    println!(
        "{} images {}x{}x{}, {} warnings, hash {:016x}",
        ds.len(),
        ds.channels,
        ds.height,
        ds.width,
        split.warnings.len(),
        h.finish()
    );
    Ok(())
}
