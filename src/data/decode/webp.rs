//! WebP (lossy, lossless, with or without alpha; the first frame of an animation) through `image-webp`.

use std::io::{BufRead, Cursor, Seek};

use image_webp::{DecodingError, WebPDecoder};

use super::pixels::{Layout, Pixels};
use super::{failed, too_large, truncated, Header, Limits};

const FORMAT: &str = "WebP";

fn failed_webp(e: DecodingError) -> String {
    failed(FORMAT, e)
}

/// A decoder past the chunk headers, once the canvas size has passed the limits.
fn decoder<R: BufRead + Seek>(input: R, limits: Limits) -> Result<WebPDecoder<R>, String> {
    // No memory limit to set: image-webp applies one to metadata chunks only (EXIF, XMP, ICC), which crest never reads.
    let decoder = WebPDecoder::new(input).map_err(failed_webp)?;
    let (width, height) = decoder.dimensions();
    limits.check(width, height)?;
    Ok(decoder)
}

fn layout<R: BufRead + Seek>(decoder: &WebPDecoder<R>) -> Layout {
    if decoder.has_alpha() {
        Layout::Rgba
    } else {
        Layout::Rgb
    }
}

pub(super) fn header(input: impl BufRead + Seek, limits: Limits) -> Result<Header, String> {
    let decoder = decoder(input, limits)?;
    let (width, height) = decoder.dimensions();
    Ok(Header::new(width, height, layout(&decoder), 1))
}

pub(super) fn decode(bytes: &[u8], limits: Limits) -> Result<Pixels, String> {
    // The RIFF header gives the file's length; image-webp decodes a lossy image cut short without a word.
    let riff_len = bytes.get(4..8).map_or(0, |b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])));
    if (bytes.len() as u64) < riff_len + 8 {
        return Err(truncated(FORMAT, "last chunk"));
    }
    let mut decoder = decoder(Cursor::new(bytes), limits)?;
    let (width, height) = decoder.dimensions();
    let size = decoder.output_buffer_size().ok_or_else(|| too_large(FORMAT))?;
    let mut samples = vec![0; size];
    decoder.read_image(&mut samples).map_err(failed_webp)?;
    Ok(Pixels { width, height, layout: layout(&decoder), samples })
}
