//! Test fixtures: a scratch folder that removes itself.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("crest-data-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Creates `rel`'s parent folders and writes `bytes` there.
    pub fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `bytes` (interleaved samples, 16-bit ones as big-endian pairs) as a PNG, by the `png` crate's encoder.
fn encode(width: u32, height: u32, colour: png::ColorType, depth: png::BitDepth, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(colour);
    encoder.set_depth(depth);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(bytes).unwrap();
    writer.finish().unwrap();
    out
}

/// An 8-bit PNG of `colour` (grey, grey + alpha, RGB or RGBA) holding `samples`, interleaved.
pub(crate) fn encode_png(width: u32, height: u32, colour: png::ColorType, samples: &[u8]) -> Vec<u8> {
    encode(width, height, colour, png::BitDepth::Eight, samples)
}

/// A 16-bit PNG of `colour` holding `samples`, interleaved.
pub(crate) fn encode_png16(width: u32, height: u32, colour: png::ColorType, samples: &[u16]) -> Vec<u8> {
    let bytes: Vec<u8> = samples.iter().flat_map(|v| v.to_be_bytes()).collect();
    encode(width, height, colour, png::BitDepth::Sixteen, &bytes)
}

/// An 8-bit grey PNG of one value.
pub(crate) fn grey_png(width: u32, height: u32, value: u8) -> Vec<u8> {
    encode_png(width, height, png::ColorType::Grayscale, &vec![value; (width * height) as usize])
}

/// A file of `tests/fixtures/images`, made by `make.py` there: JPEG, WebP, GIF and BMP images, each decodable one
/// beside the RGBA pixels Pillow decodes from it (`<name>.rgba`).
pub(crate) fn image_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images").join(name)
}

/// A PNG built chunk by chunk, for what an encoder will not write (a header that lies about the size) and for a
/// palette with tRNS spelled out byte by byte. `raw` is the unfiltered scanlines (each row prefixed with filter
/// byte 0), stored in one IDAT.
pub(crate) fn png_from_chunks(
    width: u32,
    height: u32,
    bit_depth: u8,
    colour_type: u8,
    chunks: &[(&[u8; 4], &[u8])],
    raw: &[u8],
) -> Vec<u8> {
    use std::io::Write;
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[bit_depth, colour_type, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    for (kind, data) in chunks {
        chunk(&mut out, kind, data);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(raw).unwrap();
    chunk(&mut out, b"IDAT", &z.finish().unwrap());
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A 2x1 palette PNG with transparency: pixel 0 is palette entry 0 (10,20,30) fully transparent, pixel 1 is entry
/// 1 (200,100,50) opaque.
pub(crate) fn palette_png() -> Vec<u8> {
    png_from_chunks(2, 1, 8, 3, &[(b"PLTE", &[10, 20, 30, 200, 100, 50]), (b"tRNS", &[0])], &[0, 0, 1])
}

/// A header claiming 100000 x 100000 grey pixels over a one-row body: must be refused before any allocation.
pub(crate) fn bomb_png() -> Vec<u8> {
    png_from_chunks(100_000, 100_000, 8, 0, &[], &[0; 16])
}
