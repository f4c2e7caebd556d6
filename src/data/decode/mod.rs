//! One image file to `[C, H, W]` u8: read the header, decode, convert channels, resize.
//!
//! Training (`image_folder`) and `crest predict` (`load_image`) share these functions, so a picture is seen the same
//! way by both. The format comes from the file's first bytes; each format has its own file here driving its decoder
//! crate, and all hand back 8-bit `Pixels`.

mod gif;
mod jpeg;
mod pixels;
mod png;
mod webp;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::Path;

pub(crate) use pixels::{Layout, Pixels};

use super::preprocess::Preprocess;
use super::resize::resize;
use crate::{Error, Result};

/// Extensions that mark a file as meant to be an image: such a file that fails to decode is reported by name, while
/// any other undecodable file (`.DS_Store`, `README`) is only counted. Includes formats we cannot decode (BMP, TIFF,
/// HEIC, ...) so that they are named too rather than silently dropped.
const IMAGE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "jpe", "jfif", "gif", "bmp", "dib", "webp", "tif", "tiff", "ico", "avif", "heic", "heif",
    "jxl", "tga", "ppm", "pgm", "pbm", "pnm", "qoi",
];

/// What the header says, read without decoding the pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Header {
    pub width: u32,
    pub height: u32,
    pub alpha: bool,
    pub colour: bool,
    /// The bytes the decoder's output takes: width x height x channels x bytes a sample.
    pub decoded_bytes: u64,
}

impl Header {
    fn new(width: u32, height: u32, layout: Layout, sample_bytes: u64) -> Self {
        let decoded_bytes = u64::from(width) * u64::from(height) * layout.channels() as u64 * sample_bytes;
        Self { width, height, alpha: layout.has_alpha(), colour: layout.has_colour(), decoded_bytes }
    }

    /// The most memory decoding this image to `channels` may hold at once: the decoder's output, as much again
    /// for its own working buffers (zune-jpeg's component planes), and the image converted to `channels` together
    /// with the resize's intermediate, at most the converted size again.
    pub fn decode_cost(&self, channels: usize) -> u64 {
        let converted = u64::from(self.width) * u64::from(self.height) * channels as u64;
        2 * self.decoded_bytes + 2 * converted
    }
}

/// Why a file is left out.
#[derive(Debug, PartialEq)]
pub(crate) enum Skip {
    /// Neither image content nor an image extension: counted, not named.
    NotImage,
    /// Meant to be an image but unusable (corrupt, truncated, empty, too large): named in a warning.
    Bad(String),
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// What an image may cost, from `max_pixels`: our own check on the header's size, and the limits handed to the
/// decoders as a second line of defence for what they allocate themselves.
#[derive(Clone, Copy)]
struct Limits {
    max_pixels: u64,
    /// The length of the whole file, for the formats whose compression bounds what a file of this length can hold.
    file_len: u64,
}

impl Limits {
    /// Refuses an image over `max_pixels`, or without pixels, from its header: before any pixel memory exists.
    fn check(self, width: u32, height: u32) -> Result<(), String> {
        let max_pixels = self.max_pixels;
        if u64::from(width) * u64::from(height) > max_pixels {
            return Err(format!("{width}x{height} is over the limit of {max_pixels} pixels"));
        }
        if width == 0 || height == 0 {
            return Err(format!("{width}x{height} image has no pixels"));
        }
        Ok(())
    }

    /// The longest side a decoder may accept.
    fn side(self) -> usize {
        usize::try_from(self.max_pixels).unwrap_or(usize::MAX)
    }

    /// 8 bytes a pixel covers the widest output we decode (RGBA16); the 64 MiB floor leaves decoders their scratch
    /// space when max_pixels is set very low.
    fn bytes(self) -> usize {
        usize::try_from(self.max_pixels.saturating_mul(8).max(64 << 20)).unwrap_or(usize::MAX)
    }
}

/// A decoder's error as one line (warnings and errors are one line each), naming the format.
fn failed(format: &str, e: impl std::fmt::Display) -> String {
    format!("cannot decode {format}: {}", e.to_string().trim().replace('\n', " "))
}

/// A pixel buffer whose size overflows `usize`: only a `max_pixels` beyond any memory lets one through.
fn too_large(format: &str) -> String {
    failed(format, "image too large for memory")
}

/// A file that ends before its image does: the decoders would hand back the part they read, padded.
fn truncated(format: &str, missing: &str) -> String {
    format!("truncated {format}: the file ends before its {missing}")
}

/// The formats crest decodes.
#[derive(Clone, Copy)]
enum Format {
    Png,
    Jpeg,
    Gif,
    WebP,
}

impl Format {
    /// The format whose signature `head` (a file's first 12 bytes, or all of a shorter one) starts with.
    fn sniff(head: &[u8]) -> Option<Format> {
        if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Format::Png)
        } else if head.starts_with(&[0xff, 0xd8, 0xff]) {
            Some(Format::Jpeg)
        } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
            Some(Format::Gif)
        } else if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP") {
            Some(Format::WebP)
        } else {
            None
        }
    }

    fn header(self, input: impl BufRead + Seek, limits: Limits) -> Result<Header, String> {
        match self {
            Format::Png => png::header(input, limits),
            Format::Jpeg => jpeg::header(input, limits),
            Format::Gif => gif::header(input, limits),
            Format::WebP => webp::header(input, limits),
        }
    }

    fn decode(self, bytes: &[u8], limits: Limits) -> Result<Pixels, String> {
        match self {
            Format::Png => png::decode(bytes, limits),
            Format::Jpeg => jpeg::decode(bytes, limits),
            Format::Gif => gif::decode(bytes, limits),
            Format::WebP => webp::decode(bytes, limits),
        }
    }
}

/// The format of a file starting with `head`, from its content only (so that a misnamed file still decodes and a
/// non-image with an image extension is caught); `path` only says whether it was meant to be an image.
fn sniff_or_skip(head: &[u8], path: Option<&Path>) -> Result<Format, Skip> {
    match Format::sniff(head) {
        Some(format) => Ok(format),
        None if path.is_some_and(|p| !has_image_extension(p)) => Err(Skip::NotImage),
        None if head.is_empty() => Err(Skip::Bad("empty file".into())),
        None => Err(Skip::Bad("not a supported image format".into())),
    }
}

/// Size and colour type from the header, refusing images over `max_pixels` before any pixel memory is allocated.
/// Reads only as far as the header.
pub(crate) fn probe(path: &Path, max_pixels: u64) -> Result<Header, Skip> {
    let file = File::open(path).map_err(|e| Skip::Bad(format!("cannot open: {e}")))?;
    let unreadable = |e: std::io::Error| Skip::Bad(format!("cannot read: {e}"));
    let file_len = file.metadata().map_err(unreadable)?.len();
    let mut reader = BufReader::new(file);
    let mut head = Vec::with_capacity(12);
    (&mut reader).take(12).read_to_end(&mut head).map_err(unreadable)?;
    // Within the buffer just filled, so the file is not read twice.
    reader.seek_relative(-(head.len() as i64)).map_err(unreadable)?;
    let format = sniff_or_skip(&head, Some(path))?;
    format.header(reader, Limits { max_pixels, file_len }).map_err(Skip::Bad)
}

/// Decode (the header checked first) and conversion of one file's bytes into `out` (`[channels, height, width]`).
fn decode_slice_into(
    bytes: &[u8],
    path: Option<&Path>,
    channels: usize,
    height: usize,
    width: usize,
    max_pixels: u64,
    out: &mut [u8],
) -> Result<(), String> {
    write_chw(decoded(bytes, path, max_pixels)?, channels, height, width, out);
    Ok(())
}

/// The pixels of one file's bytes, in the format their first bytes name.
fn decoded(bytes: &[u8], path: Option<&Path>, max_pixels: u64) -> Result<Pixels, String> {
    let skip_reason = |s: Skip| match s {
        Skip::NotImage => "not an image".to_string(),
        Skip::Bad(why) => why,
    };
    let format = sniff_or_skip(&bytes[..bytes.len().min(12)], path).map_err(skip_reason)?;
    format.decode(bytes, Limits { max_pixels, file_len: bytes.len() as u64 })
}

/// Decode the file and write it as `[channels, height, width]` into `out`. The caller has probed it already.
pub(crate) fn decode_into(
    path: &Path,
    channels: usize,
    height: usize,
    width: usize,
    max_pixels: u64,
    out: &mut [u8],
) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    decode_slice_into(&bytes, Some(path), channels, height, width, max_pixels, out)
}

/// The checks `decode_bytes` and `load_image` make on what they are asked for, before any decoding.
fn check_request(channels: usize, height: usize, width: usize, max_pixels: u64) -> Result<()> {
    if ![1, 3, 4].contains(&channels) {
        return Err(Error::InvalidArgument(format!("channels must be 1, 3 or 4, not {channels}")));
    }
    if height == 0 || width == 0 {
        return Err(Error::InvalidArgument(format!("the output size {width}x{height} has no pixels")));
    }
    if (height as u64).saturating_mul(width as u64) > max_pixels {
        return Err(Error::InvalidArgument(format!(
            "the output size {width}x{height} is over the limit of {max_pixels} pixels"
        )));
    }
    Ok(())
}

/// One image file's bytes decoded exactly as training decodes a file: the header checked against `max_pixels`,
/// the pixels decoded, converted to `channels` (1, 3 or 4) and resized to `height` x `width`, as `[C, H, W]` u8.
/// Damaged, truncated or oversized images are `Error::Data`; this never panics on any bytes (it is fuzzed).
pub fn decode_bytes(bytes: &[u8], channels: usize, height: usize, width: usize, max_pixels: u64) -> Result<Vec<u8>> {
    check_request(channels, height, width, max_pixels)?;
    let mut out = vec![0; channels * height * width];
    decode_slice_into(bytes, None, channels, height, width, max_pixels, &mut out).map_err(Error::Data)?;
    Ok(out)
}

/// Decode one image exactly as training does (`[channels, height, width]` u8): for `crest predict`.
pub fn load_image(path: &Path, channels: usize, height: usize, width: usize, max_pixels: u64) -> Result<Vec<u8>> {
    check_request(channels, height, width, max_pixels)?;
    probe_file(path, max_pixels)?;
    let mut out = vec![0; channels * height * width];
    decode_into(path, channels, height, width, max_pixels, &mut out)
        .map_err(|why| Error::Data(format!("{}: {why}", path.display())))?;
    Ok(out)
}

/// Decode one image as torchvision's evaluation transform on a PIL image converted to `channels` (`convert("RGB")`
/// for 3) sees it ([`Preprocess`]: the shorter side resized, the centre kept), as `[channels, crop, crop]` u8.
pub fn load_image_preprocessed(path: &Path, channels: usize, p: &Preprocess, max_pixels: u64) -> Result<Vec<u8>> {
    check_request(channels, p.crop, p.crop, max_pixels)?;
    let header = probe_file(path, max_pixels)?;
    let mut out = vec![0; channels * p.crop * p.crop];
    decode_preprocessed_into(path, channels, p, &header, max_pixels, &mut out)
        .map_err(|why| Error::Data(format!("{}: {why}", path.display())))?;
    Ok(out)
}

/// A file decoded as [`load_image_preprocessed`] decodes it, into `out` (`[channels, crop, crop]`), for a folder
/// whose `header`s were read already: the resized size is checked against `max_pixels` from the header before
/// decoding, and worked out again from the pixels themselves (a header that lies changes nothing).
pub(crate) fn decode_preprocessed_into(
    path: &Path,
    channels: usize,
    p: &Preprocess,
    header: &Header,
    max_pixels: u64,
    out: &mut [u8],
) -> Result<(), String> {
    let fits = |(width, height): (usize, usize)| {
        if (width as u64).saturating_mul(height as u64) > max_pixels {
            return Err(format!(
                "resized to {width}x{height} for the model, it is over the limit of {max_pixels} pixels"
            ));
        }
        Ok((width, height))
    };
    fits(p.resized_size(header.width as usize, header.height as usize))?;
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let pixels = decoded(&bytes, Some(path), max_pixels)?;
    let (width, height) = fits(p.resized_size(pixels.width as usize, pixels.height as usize))?;
    let hwc = converted_resized(pixels, channels, width, height);
    planes_into(&hwc, channels, width, p.crop_origin(width, height), (p.crop, p.crop), out);
    Ok(())
}

/// Refuses what is not a regular file holding an image of at most `max_pixels`, from its header.
fn probe_file(path: &Path, max_pixels: u64) -> Result<Header> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("cannot read", path, e))?;
    if !meta.is_file() {
        return Err(Error::Data(format!("{} is not a file", path.display())));
    }
    probe(path, max_pixels).map_err(|s| not_decoded(path, s))
}

fn not_decoded(path: &Path, skip: Skip) -> Error {
    match skip {
        Skip::NotImage => Error::Data(format!("{} is not an image", path.display())),
        Skip::Bad(why) => Error::Data(format!("{}: {why}", path.display())),
    }
}

/// Convert to `channels`, resize to `height` x `width`, and de-interleave into `out` (`[C, H, W]`).
pub(crate) fn write_chw(img: Pixels, channels: usize, height: usize, width: usize, out: &mut [u8]) {
    let hwc = converted_resized(img, channels, width, height);
    planes_into(&hwc, channels, width, (0, 0), (width, height), out);
}

/// The image converted to `channels` and resized to `width` x `height`, interleaved.
fn converted_resized(img: Pixels, channels: usize, width: usize, height: usize) -> Vec<u8> {
    let (w, h) = (img.width as usize, img.height as usize);
    match channels {
        1 => resize(img.into_luma(), w, h, 1, width, height),
        3 => resize(img.into_rgb(), w, h, 3, width, height),
        _ => resize_rgba(img.into_rgba(), w, h, width, height),
    }
}

/// The `size` (width, height) window at `origin` (left, top) of interleaved pixels `width` wide, de-interleaved
/// into `out` (`[C, H, W]`).
fn planes_into(
    hwc: &[u8],
    channels: usize,
    width: usize,
    origin: (usize, usize),
    size: (usize, usize),
    out: &mut [u8],
) {
    let ((left, top), (out_w, out_h)) = (origin, size);
    debug_assert_eq!(out.len(), channels * out_w * out_h);
    // One plane at a time: sequential writes, instead of scattering each pixel's channels over the planes.
    for (c, plane) in out.chunks_exact_mut(out_h * out_w).enumerate() {
        for (y, row) in plane.chunks_exact_mut(out_w).enumerate() {
            let start = ((top + y) * width + left) * channels;
            for (o, px) in row.iter_mut().zip(hwc[start..].chunks_exact(channels)) {
                *o = px[c];
            }
        }
    }
}

/// RGBA is resized premultiplied, as PIL does (`RGBA -> RGBa -> resize -> RGBA`, with its 8-bit rounding), so a
/// transparent pixel's hidden colour does not bleed into its visible neighbours.
fn resize_rgba(mut px: Vec<u8>, w: usize, h: usize, out_w: usize, out_h: usize) -> Vec<u8> {
    if (w, h) == (out_w, out_h) {
        return px;
    }
    for p in px.chunks_exact_mut(4) {
        let a = p[3] as u32;
        for v in &mut p[..3] {
            let t = *v as u32 * a + 128;
            *v = ((t + (t >> 8)) >> 8) as u8;
        }
    }
    let mut out = resize(px, w, h, 4, out_w, out_h);
    let table = unpremultiply_table();
    for p in out.chunks_exact_mut(4) {
        let a = p[3] as usize;
        if a != 0 && a != 255 {
            for v in &mut p[..3] {
                *v = table[a][*v as usize];
            }
        }
    }
    out
}

/// `min(v·255/a, 255)` for every alpha a and value v: a 64 KB table read instead of three integer divisions per
/// pixel, which were most of the cost of loading RGBA images.
fn unpremultiply_table() -> &'static [[u8; 256]; 256] {
    static TABLE: std::sync::OnceLock<Box<[[u8; 256]; 256]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Box::new([[0u8; 256]; 256]);
        for (a, row) in t.iter_mut().enumerate().skip(1) {
            for (v, out) in row.iter_mut().enumerate() {
                *out = (v as u32 * 255 / a as u32).min(255) as u8;
            }
        }
        t
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::fixtures::{
        bomb_png, encode_png, encode_png16, grey_png, image_fixture, palette_png, png_from_chunks, TempDir,
    };
    use ::png::ColorType;

    const BIG: u64 = 100_000_000;

    const FIXTURES: [&str; 7] = [
        "rgb-444.jpg",
        "rgb-420.jpg",
        "grey.jpg",
        "rgb-lossy.webp",
        "rgba-lossy.webp",
        "rgba-lossless.webp",
        "first-frame.gif",
    ];

    #[test]
    fn channel_conversion_is_exact() {
        let dir = TempDir::new("convert");
        let p = dir.write("rgba.png", &encode_png(2, 1, ColorType::Rgba, &[255, 0, 0, 255, 0, 0, 255, 128]));
        assert_eq!(load_image(&p, 4, 1, 2, BIG).unwrap(), vec![255, 0, 0, 0, 0, 255, 255, 128]);
        assert_eq!(load_image(&p, 3, 1, 2, BIG).unwrap(), vec![255, 0, 0, 0, 0, 255]);
        // PIL's convert("L"): red 76, blue 29.
        assert_eq!(load_image(&p, 1, 1, 2, BIG).unwrap(), vec![76, 29]);

        let p = dir.write("la.png", &encode_png(1, 1, ColorType::GrayscaleAlpha, &[100, 50]));
        assert_eq!(probe(&p, BIG), Ok(Header { width: 1, height: 1, alpha: true, colour: false, decoded_bytes: 2 }));
        assert_eq!(load_image(&p, 4, 1, 1, BIG).unwrap(), vec![100, 100, 100, 50]);
        assert_eq!(load_image(&p, 3, 1, 1, BIG).unwrap(), vec![100, 100, 100]);
        assert_eq!(load_image(&p, 1, 1, 1, BIG).unwrap(), vec![100]);

        let p = dir.write("l.png", &grey_png(1, 1, 7));
        assert_eq!(probe(&p, BIG), Ok(Header { width: 1, height: 1, alpha: false, colour: false, decoded_bytes: 1 }));
        assert_eq!(load_image(&p, 4, 1, 1, BIG).unwrap(), vec![7, 7, 7, 255]);

        // 16 bits rounded, not truncated: 255/65535 is 1 in 8 bits, where its high byte is 0.
        let p = dir.write("l16.png", &encode_png16(3, 1, ColorType::Grayscale, &[65535, 100 * 257, 255]));
        assert_eq!(load_image(&p, 1, 1, 3, BIG).unwrap(), vec![255, 100, 1]);
        assert_eq!(load_image(&p, 3, 1, 3, BIG).unwrap(), [[255, 100, 1]; 3].concat());
        let p = dir.write("rgba16.png", &encode_png16(1, 1, ColorType::Rgba, &[255, 65535, 0x8080, 0x7f7f]));
        assert_eq!(load_image(&p, 4, 1, 1, BIG).unwrap(), vec![1, 255, 128, 127]);

        let p = dir.write("palette.png", &palette_png());
        assert_eq!(probe(&p, BIG), Ok(Header { width: 2, height: 1, alpha: true, colour: true, decoded_bytes: 8 }));
        assert_eq!(load_image(&p, 4, 1, 2, BIG).unwrap(), vec![10, 200, 20, 100, 30, 50, 0, 255]);
    }

    /// JPEG, WebP and GIF against what Pillow decodes from the same files. JPEG decoders round their IDCT and
    /// upsampling differently, so zune-jpeg may differ from Pillow's libjpeg by 2 a value; the others match exactly.
    #[test]
    fn other_formats_decode_as_pillow_does() {
        for name in FIXTURES {
            let path = image_fixture(name);
            let rgba = std::fs::read(image_fixture(&format!("{name}.rgba"))).unwrap();
            let header = probe(&path, BIG).unwrap();
            let (width, height) = (header.width as usize, header.height as usize);
            let pixels = load_image(&path, 4, height, width, BIG).unwrap();
            // Pillow's pixels are interleaved, crest's planar.
            let want: Vec<u8> = (0..4).flat_map(|c| rgba.iter().skip(c).step_by(4).copied()).collect();
            assert_eq!(pixels.len(), want.len(), "{name}");
            let tolerance = if name.ends_with(".jpg") { 2 } else { 0 };
            let worst = pixels.iter().zip(&want).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0);
            assert!(worst <= tolerance, "{name}: off by up to {worst}");
            let colour = name != "grey.jpg";
            let alpha = name.contains("rgba") || name.ends_with(".gif");
            assert_eq!((header.colour, header.alpha), (colour, alpha), "{name}");
        }
    }

    #[test]
    fn format_comes_from_content() {
        let dir = TempDir::new("formats");
        let rgba: Vec<u8> = (0..16u8).flat_map(|i| [i % 4 * 60, i / 4 * 60, 9, 200]).collect();
        let png = encode_png(4, 4, ColorType::Rgba, &rgba);
        let want = load_image(&dir.write("ref.png", &png), 4, 4, 4, BIG).unwrap();
        // PNG bytes under a misleading name, and under none.
        assert_eq!(load_image(&dir.write("misnamed.jpg", &png), 4, 4, 4, BIG).unwrap(), want);
        assert_eq!(load_image(&dir.write("noext", &png), 4, 4, 4, BIG).unwrap(), want);
        let jpeg = std::fs::read(image_fixture("grey.jpg")).unwrap();
        assert_eq!(probe(&dir.write("jpeg.png", &jpeg), BIG).map(|h| h.colour), Ok(false));
        // BMP is not decoded: named as a bad image when its name says image, else counted as not one.
        let bmp = std::fs::read(image_fixture("unsupported.bmp")).unwrap();
        assert_eq!(probe(&dir.write("a.bmp", &bmp), BIG), Err(Skip::Bad("not a supported image format".into())));
        assert_eq!(probe(&dir.write("bmp", &bmp), BIG), Err(Skip::NotImage));
    }

    #[test]
    fn bad_files_are_classified() {
        let dir = TempDir::new("bad");
        assert_eq!(probe(&dir.write(".DS_Store", b"\0\0\0\x01Bud1"), BIG), Err(Skip::NotImage));
        assert_eq!(probe(&dir.write("README", b"hello"), BIG), Err(Skip::NotImage));
        assert_eq!(probe(&dir.write("empty.png", b""), BIG), Err(Skip::Bad("empty file".into())));
        assert!(matches!(probe(&dir.write("text.png", b"not a png"), BIG), Err(Skip::Bad(_))));
        let Err(Skip::Bad(why)) = probe(&dir.write("bomb.png", &bomb_png()), BIG) else { panic!("bomb accepted") };
        assert!(why.contains("100000x100000"), "{why}");
        let p = dir.write("small.png", &grey_png(4, 4, 0));
        assert!(matches!(probe(&p, 15), Err(Skip::Bad(why)) if why.contains("over the limit of 15")));
        assert!(load_image(&p, 1, 1, 1, 15).unwrap_err().to_string().contains("small.png"));
        for name in FIXTURES {
            let p = image_fixture(name);
            assert!(matches!(probe(&p, 20), Err(Skip::Bad(why)) if why.contains("over the limit of 20")), "{name}");
        }
        // A truncated PNG passes the header check and fails in the decoder.
        let rgb: Vec<u8> =
            (0..32 * 32).flat_map(|i| [(i % 32 * (i / 32)) as u8, (i % 32) as u8 ^ 0x5a, i as u8]).collect();
        let bytes = encode_png(32, 32, ColorType::Rgb, &rgb);
        let p = dir.write("truncated.png", &bytes[..bytes.len() / 2]);
        assert!(probe(&p, BIG).is_ok());
        let why = decode_into(&p, 3, 32, 32, BIG, &mut vec![0; 3 * 32 * 32]).unwrap_err();
        assert_eq!(why, "truncated PNG: the file ends before its last chunk");
        assert!(load_image(&dir.path().join("missing.png"), 3, 2, 2, BIG).is_err());
    }

    /// Every prefix of every fixture, and every fixture with one byte flipped: an error or pixels, never a panic.
    #[test]
    #[cfg_attr(miri, ignore = "thousands of decodes: a fuzzer's job, not an interpreter's")]
    fn damaged_files_never_panic() {
        let dir = TempDir::new("damaged");
        for name in FIXTURES {
            let whole = std::fs::read(image_fixture(name)).unwrap();
            let damaged = (0..whole.len()).map(|n| whole[..n].to_vec()).chain((0..whole.len()).map(|i| {
                let mut bytes = whole.clone();
                bytes[i] ^= 0xff;
                bytes
            }));
            for bytes in damaged {
                let p = dir.write(name, &bytes);
                if let Ok(h) = probe(&p, BIG) {
                    let (height, width) = (h.height as usize, h.width as usize);
                    if let Err(why) = decode_into(&p, 4, height, width, BIG, &mut vec![0; 4 * height * width]) {
                        assert!(!why.contains('\n'), "{why}");
                    }
                }
            }
        }
    }

    /// A 32x32 RGB PNG of noise (3 KB that deflate cannot shrink), its image data in chunks of 512 bytes so that
    /// a file can be cut inside one or between two.
    fn noisy_png() -> Vec<u8> {
        let mut state = 1u32;
        let rgb: Vec<u8> = (0..32 * 32 * 3)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 24) as u8
            })
            .collect();
        let mut out = Vec::new();
        let mut encoder = ::png::Encoder::new(&mut out, 32, 32);
        encoder.set_color(ColorType::Rgb);
        let mut writer = encoder.write_header().unwrap();
        let mut stream = writer.stream_writer_with_size(512).unwrap();
        std::io::Write::write_all(&mut stream, &rgb).unwrap();
        stream.finish().unwrap();
        writer.finish().unwrap();
        out
    }

    /// Every cut of a file after its signature is refused, with one line, and the whole file decodes.
    fn assert_every_cut_refused(name: &str, whole: &[u8]) {
        let (channels, height, width) = (3, 8, 8);
        decode_bytes(whole, channels, height, width, BIG).unwrap_or_else(|e| panic!("{name} whole: {e}"));
        for n in 8..whole.len() {
            let why = match decode_bytes(&whole[..n], channels, height, width, BIG) {
                Ok(_) => panic!("{name} cut at {n} of {} decoded", whole.len()),
                Err(e) => e.to_string(),
            };
            assert!(!why.contains('\n') && !why.contains("ChunkType"), "{name} at {n}: {why}");
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "a decode per byte: a fuzzer's job, not an interpreter's")]
    fn truncated_images_are_refused() {
        let png = noisy_png();
        assert_every_cut_refused("png", &png);
        let idat_end = png.len() - 12;
        assert_eq!(
            decode_bytes(&png[..idat_end], 3, 8, 8, BIG).unwrap_err().to_string(),
            "truncated PNG: the file ends before its last chunk"
        );
        for name in ["rgb-444.jpg", "rgb-420.jpg", "grey.jpg"] {
            let jpeg = std::fs::read(image_fixture(name)).unwrap();
            assert_every_cut_refused(name, &jpeg);
            assert_eq!(
                decode_bytes(&jpeg[..jpeg.len() - 2], 3, 8, 8, BIG).unwrap_err().to_string(),
                "truncated JPEG: the file ends before its end-of-image marker"
            );
            // Bytes after the end marker (a camera's trailer, padding) are not a cut.
            let trailer = [jpeg.clone(), vec![0, 0xff, 0xd8, 1, 2]].concat();
            assert_eq!(decode_bytes(&trailer, 3, 8, 8, BIG).unwrap(), decode_bytes(&jpeg, 3, 8, 8, BIG).unwrap());
        }
        for name in ["rgb-lossy.webp", "rgba-lossy.webp", "rgba-lossless.webp"] {
            assert_every_cut_refused(name, &std::fs::read(image_fixture(name)).unwrap());
        }
    }

    #[test]
    fn damaged_png_messages_are_sentences() {
        let whole = noisy_png();
        let idat = whole.windows(4).position(|w| w == b"IDAT").unwrap();
        let len = u32::from_be_bytes(whole[idat - 4..idat].try_into().unwrap()) as usize;
        let crc_at = idat + 4 + len;
        let crc = u32::from_be_bytes(whole[crc_at..crc_at + 4].try_into().unwrap());
        // The first IDAT chunk's stored CRC changed: it no longer matches its data.
        let mut bad_crc = whole.clone();
        bad_crc[crc_at + 3] ^= 1;
        assert_eq!(
            decode_bytes(&bad_crc, 3, 8, 8, BIG).unwrap_err().to_string(),
            format!("cannot decode PNG: CRC error: expected 0x{:x} have 0x{crc:x} while decoding IDAT chunk.", crc ^ 1)
        );
        // Its data changed: the deflate stream's error, in words.
        let mut bad_data = whole;
        bad_data[idat + 4] ^= 0xff;
        assert_eq!(
            decode_bytes(&bad_data, 3, 8, 8, BIG).unwrap_err().to_string(),
            "cannot decode PNG: corrupt deflate stream: bad zlib header"
        );
    }

    #[test]
    fn lying_png_header_is_refused_before_allocating() {
        // 10000x10000 is within max_pixels, but 100 MB of scanlines cannot come out of a file of 70-odd bytes.
        let lie = png_from_chunks(10_000, 10_000, 8, 0, &[], &[0; 16]);
        let dir = TempDir::new("lie");
        let want =
            format!("corrupt PNG: its header says 10000x10000 pixels, more than its {} bytes can hold", lie.len());
        assert_eq!(probe(&dir.write("lie.png", &lie), BIG), Err(Skip::Bad(want.clone())));
        assert_eq!(decode_bytes(&lie, 1, 4, 4, BIG).unwrap_err().to_string(), want);
        // A real image that compresses as well as an encoder makes it still passes: 1000x1000 of one grey is 1 MB
        // of scanlines in under 3 KB.
        let flat = grey_png(1000, 1000, 9);
        assert!(flat.len() < 3000, "{}", flat.len());
        assert_eq!(decode_bytes(&flat, 1, 2, 2, BIG).unwrap(), vec![9; 4]);
    }

    #[test]
    fn decode_bytes_checks_what_it_is_asked() {
        let png = grey_png(2, 2, 5);
        assert_eq!(decode_bytes(&png, 3, 1, 1, BIG).unwrap(), vec![5, 5, 5]);
        let err = |c, h, w, max| decode_bytes(&png, c, h, w, max).unwrap_err().to_string();
        assert_eq!(err(2, 1, 1, BIG), "channels must be 1, 3 or 4, not 2");
        assert_eq!(err(1, 0, 3, BIG), "the output size 3x0 has no pixels");
        assert_eq!(err(1, 4, 4, 15), "the output size 4x4 is over the limit of 15 pixels");
        assert_eq!(err(1, 1, 1, 3), "2x2 is over the limit of 3 pixels");
        assert_eq!(decode_bytes(b"", 1, 1, 1, BIG).unwrap_err().to_string(), "empty file");
        assert_eq!(decode_bytes(b"BM", 1, 1, 1, BIG).unwrap_err().to_string(), "not a supported image format");
    }

    #[test]
    fn resize_is_antialiased_and_skipped_at_size() {
        // A 4x4 checkerboard halved: plain bilinear would pick 0s or 255s, the widened triangle averages to grey.
        let board: Vec<u8> = (0..16).map(|i| if (i % 4 + i / 4) % 2 == 0 { 0 } else { 255 }).collect();
        let grey = |samples: &[u8]| Pixels { width: 4, height: 4, layout: Layout::Luma, samples: samples.to_vec() };
        let mut out = vec![0; 4];
        write_chw(grey(&board), 1, 2, 2, &mut out);
        assert!(out.iter().all(|&v| (120..=135).contains(&v)), "{out:?}");
        let mut same = vec![0; 16];
        write_chw(grey(&board), 1, 4, 4, &mut same);
        assert_eq!(same, board);
        // Premultiplied: the hidden colour of a transparent pixel does not leak into an opaque neighbour.
        let pair = Pixels { width: 2, height: 1, layout: Layout::Rgba, samples: vec![255, 0, 0, 255, 0, 255, 0, 0] };
        let mut up = vec![0; 4 * 4];
        write_chw(pair, 4, 1, 4, &mut up);
        assert_eq!(&up[4..8], &[0, 0, 0, 0], "green plane: {up:?}");
    }
}
