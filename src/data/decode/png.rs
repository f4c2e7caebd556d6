//! PNG (every colour type and bit depth; of an animated PNG, the default image) through the `png` crate.

use std::io::{BufRead, Cursor, Seek};

use png::{BitDepth, ColorType, DecodingError, Reader, Transformations};

use super::pixels::{Layout, Pixels};
use super::{failed, too_large, truncated, Header, Limits};

const FORMAT: &str = "PNG";

/// The most bytes deflate can expand one byte of input to (zlib's technical details: 1032:1).
const DEFLATE_MAX_RATIO: u64 = 1032;

/// A decoder's error as a sentence. The crate's messages name a chunk by its `Debug` form
/// (`ChunkType { type: IDAT, critical: true, ... }`), of which this keeps the four letters, and a deflate error by
/// its variant's name (`Corrupt deflate stream. BadZlibHeader`), which this spells out in words.
fn failed_png(e: DecodingError) -> String {
    if let DecodingError::IoError(io) = &e {
        if io.kind() == std::io::ErrorKind::UnexpectedEof {
            return truncated(FORMAT, "last chunk");
        }
    }
    let text = chunk_names(&e.to_string());
    match text.strip_prefix("Corrupt deflate stream. ") {
        Some(variant) => failed(FORMAT, format!("corrupt deflate stream: {}", words(variant))),
        None => failed(FORMAT, text),
    }
}

/// `BadZlibHeader` as `bad zlib header`.
fn words(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// `text` with every `ChunkType { type: XXXX, ... }` replaced by `XXXX`.
fn chunk_names(text: &str) -> String {
    const OPEN: &str = "ChunkType { type: ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(OPEN) {
        out.push_str(&rest[..at]);
        let inner = &rest[at + OPEN.len()..];
        let (Some(name_end), Some(close)) = (inner.find(','), inner.find('}')) else {
            out.push_str(&rest[at..]);
            return out;
        };
        out.push_str(&inner[..name_end.min(close)]);
        rest = &inner[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The raw scanlines `header` needs, at the least (one filter byte a row, no interlacing), refused when deflate
/// could not make that many from the whole file: a header that lies about its size is caught before the decoder
/// allocates for it.
fn check_compression(info: &png::Info, file_len: u64) -> Result<(), String> {
    let bits_per_pixel = info.color_type.samples() as u64 * info.bit_depth as u64;
    let row = 1 + (u64::from(info.width) * bits_per_pixel).div_ceil(8);
    let needed = row * u64::from(info.height);
    if needed > file_len.saturating_mul(DEFLATE_MAX_RATIO) {
        return Err(format!(
            "corrupt PNG: its header says {}x{} pixels, more than its {file_len} bytes can hold",
            info.width, info.height
        ));
    }
    Ok(())
}

/// A reader at the first pixel, once the header's size has passed the limits.
fn reader<R: BufRead + Seek>(input: R, limits: Limits) -> Result<Reader<R>, String> {
    let mut decoder = png::Decoder::new_with_limits(input, png::Limits { bytes: limits.bytes() });
    let info = decoder.read_header_info().map_err(failed_png)?;
    limits.check(info.width, info.height)?;
    check_compression(info, limits.file_len)?;
    // Palettes, tRNS transparency and depths under 8 bits come out as 8-bit grey or RGB, with alpha where tRNS
    // gives it; 16-bit samples stay 16-bit, to be rounded below (the crate's STRIP_16 would truncate).
    decoder.set_transformations(Transformations::EXPAND);
    decoder.read_info().map_err(failed_png)
}

/// The layout of the expanded output and the bytes of one sample (1 or 2).
fn output<R: BufRead + Seek>(reader: &Reader<R>) -> Result<(Layout, u64), String> {
    let (colour, depth) = reader.output_color_type();
    let layout = match colour {
        ColorType::Grayscale => Layout::Luma,
        ColorType::GrayscaleAlpha => Layout::LumaAlpha,
        ColorType::Rgb => Layout::Rgb,
        ColorType::Rgba => Layout::Rgba,
        ColorType::Indexed => return Err(failed(FORMAT, "palette left unexpanded")),
    };
    match depth {
        BitDepth::Eight => Ok((layout, 1)),
        BitDepth::Sixteen => Ok((layout, 2)),
        other => Err(failed(FORMAT, format!("{other:?} samples left unexpanded"))),
    }
}

pub(super) fn header(input: impl BufRead + Seek, limits: Limits) -> Result<Header, String> {
    let reader = reader(input, limits)?;
    let (width, height) = reader.info().size();
    let (layout, sample_bytes) = output(&reader)?;
    Ok(Header::new(width, height, layout, sample_bytes))
}

pub(super) fn decode(bytes: &[u8], limits: Limits) -> Result<Pixels, String> {
    let mut reader = reader(Cursor::new(bytes), limits)?;
    let (layout, sample_bytes) = output(&reader)?;
    let (width, height) = reader.info().size();
    let size = reader.output_buffer_size().ok_or_else(|| too_large(FORMAT))?;
    let mut samples = vec![0; size];
    reader.next_frame(&mut samples).map_err(failed_png)?;
    // Up to IEND: the rows can all be there while the file was cut inside the image data's last chunk, or after it.
    reader.finish().map_err(failed_png)?;
    if sample_bytes == 2 {
        // In place, each 8-bit sample written where the 16-bit one before it was read: no second buffer.
        for i in 0..size / 2 {
            samples[i] = narrow_16(u16::from_be_bytes([samples[2 * i], samples[2 * i + 1]]));
        }
        samples.truncate(size / 2);
    }
    Ok(Pixels { width, height, layout, samples })
}

/// A 16-bit sample rounded to 8 bits, `round(v * 255 / 65535)` in integers, as `image` rounds it (its integer and
/// f32 paths agree on all 65536 values).
fn narrow_16(v: u16) -> u8 {
    ((v as u32 + 128) / 257) as u8
}
