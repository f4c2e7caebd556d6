//! One image file to `[C, H, W]` u8: read the header, decode, convert channels, resize.
//!
//! Training (`image_folder`) and `crest predict` (`load_image`) share these functions, so a picture is seen the same
//! way by both.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use image::{DynamicImage, GrayImage, ImageError, ImageReader, Limits};

use super::resize::resize;

/// Extensions that mark a file as meant to be an image: such a file that fails to decode is reported by name, while
/// any other undecodable file (`.DS_Store`, `README`) is only counted. Includes formats we cannot decode (TIFF,
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

/// Limits handed to the decoders as a second line of defence behind our own pixel-count check on the header.
fn limits(max_pixels: u64) -> Limits {
    let side = u32::try_from(max_pixels).unwrap_or(u32::MAX);
    let mut limits = Limits::default();
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    // 8 bytes a pixel covers the widest output we decode (RGBA16); the 64 MiB floor leaves decoders their scratch
    // space when max_pixels is set very low.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).max(64 << 20));
    limits
}

/// A reader whose format comes from the file's first bytes only, so that a misnamed file still decodes and a
/// non-image with an image extension is caught.
fn open(path: &Path, max_pixels: u64) -> Result<ImageReader<BufReader<File>>, Skip> {
    let file = File::open(path).map_err(|e| Skip::Bad(format!("cannot open: {e}")))?;
    let empty = file.metadata().map(|m| m.len() == 0).unwrap_or(false);
    let mut reader = ImageReader::new(BufReader::new(file))
        .with_guessed_format()
        .map_err(|e| Skip::Bad(format!("cannot read: {e}")))?;
    if reader.format().is_none() {
        return Err(match (has_image_extension(path), empty) {
            (false, _) => Skip::NotImage,
            (true, true) => Skip::Bad("empty file".into()),
            (true, false) => Skip::Bad("not a supported image format".into()),
        });
    }
    reader.limits(limits(max_pixels));
    Ok(reader)
}

fn describe(e: ImageError) -> String {
    match e {
        ImageError::Limits(_) => "image dimensions over the decoder limits".into(),
        // Keep warnings and errors to one line each.
        e => e.to_string().replace('\n', " "),
    }
}

/// Size and colour type from the header, refusing images over `max_pixels` before any pixel memory is allocated.
pub(crate) fn probe(path: &Path, max_pixels: u64) -> Result<Header, Skip> {
    let decoder = open(path, max_pixels)?.into_decoder().map_err(|e| Skip::Bad(describe(e)))?;
    let (width, height) = image::ImageDecoder::dimensions(&decoder);
    if width as u64 * height as u64 > max_pixels {
        return Err(Skip::Bad(format!("{width}x{height} is over the limit of {max_pixels} pixels")));
    }
    if width == 0 || height == 0 {
        return Err(Skip::Bad(format!("{width}x{height} image has no pixels")));
    }
    // A palette PNG with a tRNS chunk reports RGBA here, as it decodes; a GIF always reports RGBA (the decoder
    // composites frames onto a transparent canvas), so GIFs count as having alpha.
    let colour_type = image::ImageDecoder::color_type(&decoder);
    Ok(Header { width, height, alpha: colour_type.has_alpha(), colour: colour_type.has_color() })
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
    let reader = open(path, max_pixels).map_err(|s| match s {
        Skip::NotImage => "not an image".to_string(),
        Skip::Bad(why) => why,
    })?;
    let img = reader.decode().map_err(describe)?;
    write_chw(&img, channels, height, width, out);
    Ok(())
}

/// Decode one image exactly as training does: for `crest predict`.
pub fn load_image(
    path: &Path,
    channels: usize,
    height: usize,
    width: usize,
    max_pixels: u64,
) -> anyhow::Result<Vec<u8>> {
    if ![1, 3, 4].contains(&channels) {
        bail!("channels must be 1, 3 or 4, not {channels}");
    }
    let name = path.display();
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {name}"))?;
    if !meta.is_file() {
        bail!("{name} is not a file");
    }
    let reason = |s: Skip| match s {
        Skip::NotImage => anyhow!("{name} is not an image"),
        Skip::Bad(why) => anyhow!("{name}: {why}"),
    };
    probe(path, max_pixels).map_err(reason)?;
    let mut out = vec![0; channels * height * width];
    decode_into(path, channels, height, width, max_pixels, &mut out).map_err(|why| anyhow!("{name}: {why}"))?;
    Ok(out)
}

/// Convert to `channels`, resize to `height` x `width`, and de-interleave into `out` (`[C, H, W]`).
pub(crate) fn write_chw(img: &DynamicImage, channels: usize, height: usize, width: usize, out: &mut [u8]) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let hwc = match channels {
        1 => resize(luma(img).into_raw(), w, h, 1, width, height),
        3 => resize(img.to_rgb8().into_raw(), w, h, 3, width, height),
        _ => resize_rgba(img.to_rgba8().into_raw(), w, h, width, height),
    };
    debug_assert_eq!(hwc.len(), out.len());
    // One plane at a time: sequential writes, where scattering each pixel's channels was a fifth of loading.
    for (c, plane) in out.chunks_exact_mut(height * width).enumerate() {
        for (o, px) in plane.iter_mut().zip(hwc.chunks_exact(channels)) {
            *o = px[c];
        }
    }
}

/// Grey as PIL's `convert("L")` makes it (ITU-R 601-2 weights in 16-bit fixed point), so that a model trained here
/// sees the same grey values as one trained on PIL images; grey sources pass through unchanged.
fn luma(img: &DynamicImage) -> GrayImage {
    if !img.color().has_color() {
        return img.to_luma8();
    }
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    let grey = rgb
        .pixels()
        .map(|p| ((p[0] as u32 * 19595 + p[1] as u32 * 38470 + p[2] as u32 * 7471 + 0x8000) >> 16) as u8)
        .collect();
    GrayImage::from_raw(w, h, grey).expect("one grey byte per RGB pixel")
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
    use crate::data::fixtures::{bomb_png, palette_png, TempDir};
    use image::{ImageBuffer, LumaA, Rgb, RgbImage, Rgba, RgbaImage};

    const BIG: u64 = 100_000_000;

    #[test]
    fn channel_conversion_is_exact() {
        let dir = TempDir::new("convert");
        let rgba = ImageBuffer::from_raw(2, 1, vec![255, 0, 0, 255, 0, 0, 255, 128]).map(DynamicImage::ImageRgba8);
        let p = dir.save("rgba.png", &rgba.unwrap());
        assert_eq!(load_image(&p, 4, 1, 2, BIG).unwrap(), vec![255, 0, 0, 0, 0, 255, 255, 128]);
        assert_eq!(load_image(&p, 3, 1, 2, BIG).unwrap(), vec![255, 0, 0, 0, 0, 255]);
        // PIL's convert("L"): red 76, blue 29.
        assert_eq!(load_image(&p, 1, 1, 2, BIG).unwrap(), vec![76, 29]);

        let la = ImageBuffer::<LumaA<u8>, _>::from_raw(1, 1, vec![100, 50]).unwrap();
        let p = dir.save("la.png", &DynamicImage::ImageLumaA8(la));
        assert_eq!(probe(&p, BIG), Ok(Header { width: 1, height: 1, alpha: true, colour: false }));
        assert_eq!(load_image(&p, 4, 1, 1, BIG).unwrap(), vec![100, 100, 100, 50]);
        assert_eq!(load_image(&p, 3, 1, 1, BIG).unwrap(), vec![100, 100, 100]);
        assert_eq!(load_image(&p, 1, 1, 1, BIG).unwrap(), vec![100]);

        let grey = GrayImage::from_raw(1, 1, vec![7]).unwrap();
        let p = dir.save("l.png", &DynamicImage::ImageLuma8(grey));
        assert_eq!(probe(&p, BIG), Ok(Header { width: 1, height: 1, alpha: false, colour: false }));
        assert_eq!(load_image(&p, 4, 1, 1, BIG).unwrap(), vec![7, 7, 7, 255]);

        let wide = ImageBuffer::<image::Luma<u16>, _>::from_raw(2, 1, vec![65535, 100 * 257]).unwrap();
        let p = dir.save("l16.png", &DynamicImage::ImageLuma16(wide));
        assert_eq!(load_image(&p, 1, 1, 2, BIG).unwrap(), vec![255, 100]);

        let p = dir.write("palette.png", &palette_png());
        assert_eq!(probe(&p, BIG), Ok(Header { width: 2, height: 1, alpha: true, colour: true }));
        assert_eq!(load_image(&p, 4, 1, 2, BIG).unwrap(), vec![10, 200, 20, 100, 30, 50, 0, 255]);
    }

    #[test]
    fn other_formats_decode_by_content() {
        let dir = TempDir::new("formats");
        let rgba =
            DynamicImage::ImageRgba8(ImageBuffer::from_fn(4, 4, |x, y| Rgba([x as u8 * 60, y as u8 * 60, 9, 200])));
        let rgb = DynamicImage::ImageRgb8(rgba.to_rgb8());
        let want4 = load_image(&dir.save("ref.png", &rgba), 4, 4, 4, BIG).unwrap();
        let want3 = load_image(&dir.save("ref3.png", &rgb), 3, 4, 4, BIG).unwrap();
        assert_eq!(load_image(&dir.save("a.webp", &rgba), 4, 4, 4, BIG).unwrap(), want4);
        assert_eq!(load_image(&dir.save("a.bmp", &rgb), 3, 4, 4, BIG).unwrap(), want3);
        assert_eq!(load_image(&dir.save("a.gif", &rgb), 3, 4, 4, BIG).unwrap(), want3);
        let flat = DynamicImage::ImageRgb8(ImageBuffer::from_pixel(8, 8, Rgb([120, 60, 30])));
        let jpeg = load_image(&dir.save("a.jpg", &flat), 3, 8, 8, BIG).unwrap();
        assert!(jpeg.chunks(64).zip([120, 60, 30]).all(|(plane, v)| plane.iter().all(|&p| p.abs_diff(v) <= 2)));
        // PNG bytes under a misleading name, and under none.
        let png = std::fs::read(dir.path().join("ref.png")).unwrap();
        assert_eq!(load_image(&dir.write("misnamed.jpg", &png), 4, 4, 4, BIG).unwrap(), want4);
        assert_eq!(load_image(&dir.write("noext", &png), 4, 4, 4, BIG).unwrap(), want4);
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
        let small = GrayImage::from_raw(4, 4, vec![0; 16]).unwrap();
        let p = dir.save("small.png", &DynamicImage::ImageLuma8(small));
        assert!(matches!(probe(&p, 15), Err(Skip::Bad(why)) if why.contains("over the limit of 15")));
        assert!(load_image(&p, 1, 4, 4, 15).unwrap_err().to_string().contains("small.png"));
        // A truncated PNG passes the header check and fails in the decoder.
        let bytes = std::fs::read(dir.save(
            "whole.png",
            &DynamicImage::ImageRgb8(RgbImage::from_fn(32, 32, |x, y| Rgb([(x * y) as u8, x as u8 ^ 0x5a, y as u8]))),
        ))
        .unwrap();
        let p = dir.write("truncated.png", &bytes[..bytes.len() / 2]);
        assert!(probe(&p, BIG).is_ok());
        assert!(decode_into(&p, 3, 32, 32, BIG, &mut vec![0; 3 * 32 * 32]).is_err());
        assert!(load_image(&dir.path().join("missing.png"), 3, 2, 2, BIG).is_err());
    }

    #[test]
    fn resize_is_antialiased_and_skipped_at_size() {
        // A 4x4 checkerboard halved: plain bilinear would pick 0s or 255s, the widened triangle averages to grey.
        let board = GrayImage::from_fn(4, 4, |x, y| image::Luma([if (x + y) % 2 == 0 { 0 } else { 255 }]));
        let mut out = vec![0; 4];
        write_chw(&DynamicImage::ImageLuma8(board.clone()), 1, 2, 2, &mut out);
        assert!(out.iter().all(|&v| (120..=135).contains(&v)), "{out:?}");
        let mut same = vec![0; 16];
        write_chw(&DynamicImage::ImageLuma8(board.clone()), 1, 4, 4, &mut same);
        assert_eq!(same, board.into_raw());
        // Premultiplied: the hidden colour of a transparent pixel does not leak into an opaque neighbour.
        let pair = RgbaImage::from_raw(2, 1, vec![255, 0, 0, 255, 0, 255, 0, 0]).unwrap();
        let mut up = vec![0; 4 * 4];
        write_chw(&DynamicImage::ImageRgba8(pair), 4, 1, 4, &mut up);
        assert_eq!(&up[4..8], &[0, 0, 0, 0], "green plane: {up:?}");
    }
}
