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

/// What the pixels decode to, as `image` chose: grey (with or without alpha) and RGBA as they are, the rest as RGB.
fn output(input: ColorSpace) -> (ColorSpace, Layout) {
    match input {
        ColorSpace::Luma => (ColorSpace::Luma, Layout::Luma),
        ColorSpace::LumaA => (ColorSpace::LumaA, Layout::LumaAlpha),
        ColorSpace::RGBA => (ColorSpace::RGBA, Layout::Rgba),
        _ => (ColorSpace::RGB, Layout::Rgb),
    }
}

/// Size and colour space, from the headers alone.
fn read_header(input: impl ZByteReaderTrait, limits: Limits) -> Result<(u32, u32, ColorSpace), String> {
    let mut decoder = JpegDecoder::new_with_options(input, options(limits));
    decoder.decode_headers().map_err(failed_jpeg)?;
    let (Some(info), Some(colour_space)) = (decoder.info(), decoder.input_colorspace()) else {
        return Err(failed(FORMAT, "no header"));
    };
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    limits.check(width, height)?;
    Ok((width, height, colour_space))
}

pub(super) fn header(input: impl BufRead + Seek, limits: Limits) -> Result<Header, String> {
    let (width, height, colour_space) = read_header(input, limits)?;
    Ok(Header::new(width, height, output(colour_space).1))
}

pub(super) fn decode(mut input: impl BufRead + Seek, limits: Limits) -> Result<Pixels, String> {
    // From memory, as `image` decoded: the decoder's many small reads are cheapest from a slice.
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes).map_err(|e| format!("cannot read: {e}"))?;
    let (width, height, colour_space) = read_header(ZCursor::new(&bytes), limits)?;
    let (out, layout) = output(colour_space);
    // A second decoder: the output colour space is fixed when the headers are read.
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(&bytes), options(limits).jpeg_set_out_colorspace(out));
    decoder.decode_headers().map_err(failed_jpeg)?;
    let size = decoder.output_buffer_size().ok_or_else(|| too_large(FORMAT))?;
    let mut samples = vec![0; size];
    decoder.decode_into(&mut samples).map_err(failed_jpeg)?;
    Ok(Pixels { width, height, layout, samples })
}
