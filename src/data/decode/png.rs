//! PNG (every colour type and bit depth; of an animated PNG, the default image) through the `png` crate.

use std::io::{BufRead, Seek};

use png::{BitDepth, ColorType, DecodingError, Reader, Transformations};

use super::pixels::{Layout, Pixels};
use super::{failed, too_large, Header, Limits};

const FORMAT: &str = "PNG";

fn failed_png(e: DecodingError) -> String {
    failed(FORMAT, e)
}

/// A reader at the first pixel, once the header's size has passed the limits.
fn reader<R: BufRead + Seek>(input: R, limits: Limits) -> Result<Reader<R>, String> {
    let mut decoder = png::Decoder::new_with_limits(input, png::Limits { bytes: limits.bytes() });
    let info = decoder.read_header_info().map_err(failed_png)?;
    limits.check(info.width, info.height)?;
    // Palettes, tRNS transparency and depths under 8 bits come out as 8-bit grey or RGB, with alpha where tRNS
    // gives it; 16-bit samples stay 16-bit, to be rounded below (the crate's STRIP_16 would truncate).
    decoder.set_transformations(Transformations::EXPAND);
    decoder.read_info().map_err(failed_png)
}

/// The layout of the expanded output and whether its samples are 16-bit.
fn output<R: BufRead + Seek>(reader: &Reader<R>) -> Result<(Layout, bool), String> {
    let (colour, depth) = reader.output_color_type();
    let layout = match colour {
        ColorType::Grayscale => Layout::Luma,
        ColorType::GrayscaleAlpha => Layout::LumaAlpha,
        ColorType::Rgb => Layout::Rgb,
        ColorType::Rgba => Layout::Rgba,
        ColorType::Indexed => return Err(failed(FORMAT, "palette left unexpanded")),
    };
    match depth {
        BitDepth::Eight => Ok((layout, false)),
        BitDepth::Sixteen => Ok((layout, true)),
        other => Err(failed(FORMAT, format!("{other:?} samples left unexpanded"))),
    }
}

pub(super) fn header(input: impl BufRead + Seek, limits: Limits) -> Result<Header, String> {
    let reader = reader(input, limits)?;
    let (width, height) = reader.info().size();
    Ok(Header::new(width, height, output(&reader)?.0))
}

pub(super) fn decode(input: impl BufRead + Seek, limits: Limits) -> Result<Pixels, String> {
    let mut reader = reader(input, limits)?;
    let (layout, sixteen) = output(&reader)?;
    let (width, height) = reader.info().size();
    let size = reader.output_buffer_size().ok_or_else(|| too_large(FORMAT))?;
    let mut samples = vec![0; size];
    reader.next_frame(&mut samples).map_err(failed_png)?;
    if sixteen {
        samples = samples.as_chunks::<2>().0.iter().map(|&pair| narrow_16(u16::from_be_bytes(pair))).collect();
    }
    Ok(Pixels { width, height, layout, samples })
}

/// A 16-bit sample rounded to 8 bits, `round(v * 255 / 65535)` in integers, as `image` rounds it (its integer and
/// f32 paths agree on all 65536 values).
fn narrow_16(v: u16) -> u8 {
    ((v as u32 + 128) / 257) as u8
}
