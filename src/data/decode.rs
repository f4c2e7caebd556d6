//! One image file to `[C, H, W]` u8: read the header, decode, convert channels, resize.
//!
//! Training (`image_folder`) and `crest predict` (`load_image`) share these functions, so a picture is seen the same
//! way by both.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, ImageError, ImageReader, Limits, RgbaImage};

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
        e => e.to_string(),
    }
}

/// Size and colour type from the header, refusing images over `max_pixels` before any pixel memory is allocated.
pub(crate) fn probe(path: &Path, max_pixels: u64) -> Result<Header, Skip> {
    let decoder = open(path, max_pixels)?
        .into_decoder()
        .map_err(|e| Skip::Bad(describe(e)))?;
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
pub fn load_image(path: &Path, channels: usize, height: usize, width: usize, max_pixels: u64) -> anyhow::Result<Vec<u8>> {
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
    let (w, h) = (width as u32, height as u32);
    let hwc = match channels {
        1 => resize_plain(luma(img), w, h).into_raw(),
        3 => resize_plain(img.to_rgb8(), w, h).into_raw(),
        _ => resize_rgba(img.to_rgba8(), w, h).into_raw(),
    };
    debug_assert_eq!(hwc.len(), out.len());
    let plane = height * width;
    for (p, px) in hwc.chunks_exact(channels).enumerate() {
        for (c, &v) in px.iter().enumerate() {
            out[c * plane + p] = v;
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

/// Bilinear with a support that widens with the downscale factor: PIL's BILINEAR, which torchvision's
/// `Resize((s, s))` calls on PIL images.
fn resize_plain<P>(img: image::ImageBuffer<P, Vec<u8>>, w: u32, h: u32) -> image::ImageBuffer<P, Vec<u8>>
where
    P: image::Pixel<Subpixel = u8> + 'static,
{
    if img.dimensions() == (w, h) {
        return img;
    }
    image::imageops::resize(&img, w, h, FilterType::Triangle)
}

/// RGBA is resized premultiplied, as PIL does, so a transparent pixel's hidden colour does not bleed into its
/// visible neighbours; the 8-bit rounding follows PIL's `RGBA -> RGBa -> RGBA` conversions.
fn resize_rgba(mut img: RgbaImage, w: u32, h: u32) -> RgbaImage {
    if img.dimensions() == (w, h) {
        return img;
    }
    for p in img.pixels_mut() {
        let a = p[3] as u32;
        for c in 0..3 {
            let t = p[c] as u32 * a + 128;
            p[c] = ((t + (t >> 8)) >> 8) as u8;
        }
    }
    let mut out = image::imageops::resize(&img, w, h, FilterType::Triangle);
    for p in out.pixels_mut() {
        let a = p[3] as u32;
        if a != 0 && a != 255 {
            for c in 0..3 {
                p[c] = (p[c] as u32 * 255 / a).min(255) as u8;
            }
        }
    }
    out
}
