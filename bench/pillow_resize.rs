//! crest's half of bench/pillow_resize.py's sweep: each image of a list decoded, converted and resized by crest.
//!
//!     cargo run --release --example pillow_resize -- DIR
//!
//! Reads `DIR/cases.txt`, one `FILE CHANNELS WIDTH HEIGHT` a line (FILE relative to DIR), and writes to
//! `DIR/crest.bin` each case's `[C, H, W]` bytes from `crest::data::load_image`, one after the other.

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir] = &args[..] else {
        return Err("usage: pillow_resize DIR".into());
    };
    let dir = Path::new(dir);
    let mut out = Vec::new();
    for line in std::fs::read_to_string(dir.join("cases.txt"))?.lines() {
        let [file, channels, width, height] = line.split(' ').collect::<Vec<_>>()[..] else {
            return Err(format!("not FILE CHANNELS WIDTH HEIGHT: {line}").into());
        };
        let (channels, width, height) = (channels.parse()?, width.parse()?, height.parse()?);
        out.extend(crest::data::load_image(&dir.join(file), channels, height, width, 1 << 26)?);
    }
    std::fs::write(dir.join("crest.bin"), out)?;
    Ok(())
}
