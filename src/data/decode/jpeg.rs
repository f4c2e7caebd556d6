//! JPEG through `zune-jpeg`, set up as the `image` crate set it up: lenient parsing, grey kept grey, and the other
//! colour spaces (YCbCr, CMYK, YCCK) converted to RGB by the decoder.

use std::io::{BufRead, Seek};

use zune_jpeg::errors::DecodeErrors;
use zune_jpeg::zune_core::bytestream::{ZByteReaderTrait, ZCursor};
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use super::pixels::{Layout, Pixels};
use super::{failed, too_large, Header, Limits};

const FORMAT: &str = "JPEG";

fn failed_jpeg(e: DecodeErrors) -> String {
    failed(FORMAT, e)
}

/// Not strict: like `image` (and browsers), accept the small faults common in real files.
fn options(limits: Limits) -> DecoderOptions {
    DecoderOptions::default().set_strict_mode(false).set_max_width(limits.side()).set_max_height(limits.side())
}

/// Size and the layout the pixels decode to, from the headers alone.
fn read_header(input: impl ZByteReaderTrait, limits: Limits) -> Result<(u32, u32, Layout), String> {
    let mut decoder = JpegDecoder::new_with_options(input, options(limits));
    decoder.decode_headers().map_err(failed_jpeg)?;
    let (Some(info), Some(colour_space)) = (decoder.info(), decoder.input_colorspace()) else {
        return Err(failed(FORMAT, "no header"));
    };
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    limits.check(width, height)?;
    let layout = match colour_space {
        ColorSpace::Luma => Layout::Luma,
        ColorSpace::LumaA => Layout::LumaAlpha,
        ColorSpace::RGBA => Layout::Rgba,
        _ => Layout::Rgb,
    };
    Ok((width, height, layout))
}

pub(super) fn header(input: impl BufRead + Seek, limits: Limits) -> Result<Header, String> {
    let (width, height, layout) = read_header(input, limits)?;
    Ok(Header::new(width, height, layout))
}

pub(super) fn decode(mut input: impl BufRead + Seek, limits: Limits) -> Result<Pixels, String> {
    // From memory, as `image` decoded: the decoder's many small reads are cheapest from a slice.
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes).map_err(|e| format!("cannot read: {e}"))?;
    let (width, height, layout) = read_header(ZCursor::new(&bytes), limits)?;
    let out = match layout {
        Layout::Luma => ColorSpace::Luma,
        Layout::LumaAlpha => ColorSpace::LumaA,
        Layout::Rgb => ColorSpace::RGB,
        Layout::Rgba => ColorSpace::RGBA,
    };
    // A second decoder: the output colour space is fixed when the headers are read.
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(&bytes), options(limits).jpeg_set_out_colorspace(out));
    decoder.decode_headers().map_err(failed_jpeg)?;
    let size = decoder.output_buffer_size().ok_or_else(|| too_large(FORMAT))?;
    let mut samples = vec![0; size];
    decoder.decode_into(&mut samples).map_err(failed_jpeg)?;
    Ok(Pixels { width, height, layout, samples })
}
