//! JPEG through `zune-jpeg`, set up as the `image` crate set it up: lenient parsing, grey kept grey, and the other
//! colour spaces (YCbCr, CMYK, YCCK) converted to RGB by the decoder.

use std::io::{BufRead, Seek};

use zune_jpeg::errors::DecodeErrors;
use zune_jpeg::zune_core::bytestream::{ZByteReaderTrait, ZCursor};
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use super::pixels::{Layout, Pixels};
use super::{failed, too_large, truncated, Header, Limits};

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
    Ok(Header::new(width, height, output(colour_space).1, 1))
}

pub(super) fn decode(bytes: &[u8], limits: Limits) -> Result<Pixels, String> {
    let (width, height, colour_space) = read_header(ZCursor::new(bytes), limits)?;
    check_complete(bytes)?;
    let (out, layout) = output(colour_space);
    // A second decoder: the output colour space is fixed when the headers are read.
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options(limits).jpeg_set_out_colorspace(out));
    decoder.decode_headers().map_err(failed_jpeg)?;
    let size = decoder.output_buffer_size().ok_or_else(|| too_large(FORMAT))?;
    let mut samples = vec![0; size];
    decoder.decode_into(&mut samples).map_err(failed_jpeg)?;
    Ok(Pixels { width, height, layout, samples })
}

/// Refuses a file that ends before its end-of-image marker. zune-jpeg, when not strict, fills the rows a cut file
/// lacks with grey and reports success; its strict mode would catch that but also refuse the small faults real
/// files have. So the markers are walked here: each segment skipped by its length (an EXIF thumbnail, with its
/// own end marker, lies inside one), and each scan's entropy-coded data up to the next marker, which is the only
/// place an 0xFF byte is not followed by 0x00 or a restart marker.
fn check_complete(bytes: &[u8]) -> Result<(), String> {
    let cut = || truncated(FORMAT, "end-of-image marker");
    let mut at = 2; // past SOI
    loop {
        // Fill bytes (0xFF repeated) may precede a marker.
        while bytes.get(at) == Some(&0xff) && bytes.get(at + 1) == Some(&0xff) {
            at += 1;
        }
        match (bytes.get(at), bytes.get(at + 1)) {
            (Some(0xff), Some(0xd9)) => return Ok(()),
            // Markers without a length.
            (Some(0xff), Some(0x01 | 0xd0..=0xd8)) => at += 2,
            (Some(0xff), Some(&marker)) => {
                let len = bytes.get(at + 2..at + 4).ok_or_else(cut)?;
                at += 2 + usize::from(u16::from_be_bytes([len[0], len[1]]));
                if marker == 0xda {
                    at = entropy_coded_end(bytes, at).ok_or_else(cut)?;
                }
            }
            // Stray bytes between segments, which the decoder skips too.
            (Some(0xff), None) | (None, _) => return Err(cut()),
            (Some(_), _) => at += bytes[at..].iter().position(|&b| b == 0xff).ok_or_else(cut)?,
        }
    }
}

/// Where the entropy-coded data starting at `from` ends: the first 0xFF followed by neither a stuffed 0x00 nor a
/// restart marker (0xD0..=0xD7). `None` when the file ends first.
fn entropy_coded_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        at += bytes.get(at..)?.iter().position(|&b| b == 0xff)?;
        match bytes.get(at + 1)? {
            0x00 | 0xd0..=0xd7 | 0xff => at += 1,
            _ => return Some(at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_complete;

    #[test]
    fn the_marker_walk_finds_the_end_of_the_image_only() {
        let soi = [0xff, 0xd8];
        // An APP1 segment holding a whole thumbnail, end marker included, then a scan with stuffed 0xFF bytes, a
        // restart marker and fill bytes.
        let app1 = [0xff, 0xe1, 0x00, 0x08, 0xff, 0xd8, 0xff, 0xd9, 0x00, 0x00];
        let scan = [0xff, 0xda, 0x00, 0x02, 0x12, 0xff, 0x00, 0x34, 0xff, 0xd0, 0x56, 0xff, 0xff];
        let whole = [&soi[..], &app1, &scan, &[0xff, 0xd9]].concat();
        assert_eq!(check_complete(&whole), Ok(()));
        for n in 2..whole.len() - 1 {
            assert_eq!(
                check_complete(&whole[..n]),
                Err("truncated JPEG: the file ends before its end-of-image marker".into()),
                "cut at {n}"
            );
        }
    }
}
