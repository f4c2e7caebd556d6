//! GIF through the `gif` crate: the first frame, placed at its offset on a transparent canvas the size of the
//! logical screen, as the `image` crate decoded a GIF. So every GIF is RGBA and counts as having alpha. A file cut
//! after its first frame's pixel data still decodes: that frame, all that is read, is whole.

use std::io::Read;
use std::num::NonZeroU64;

use gif::{ColorOutput, DecodeOptions, Decoder, DecodingError, MemoryLimit};

use super::pixels::{Layout, Pixels};
use super::{failed, too_large, Header, Limits};

const FORMAT: &str = "GIF";

fn failed_gif(e: DecodingError) -> String {
    failed(FORMAT, e)
}

/// A decoder past the logical screen descriptor, once the screen's size has passed the limits.
fn decoder<R: Read>(input: R, limits: Limits) -> Result<Decoder<R>, String> {
    let mut options = DecodeOptions::new();
    options.set_color_output(ColorOutput::RGBA);
    // Bounds the frame buffer, which a frame larger than the screen could make larger than the canvas.
    let bytes = NonZeroU64::new(limits.bytes() as u64).map_or(MemoryLimit::Unlimited, MemoryLimit::Bytes);
    options.set_memory_limit(bytes);
    let decoder = options.read_info(input).map_err(failed_gif)?;
    limits.check(u32::from(decoder.width()), u32::from(decoder.height()))?;
    Ok(decoder)
}

pub(super) fn header(input: impl Read, limits: Limits) -> Result<Header, String> {
    let decoder = decoder(input, limits)?;
    Ok(Header::new(u32::from(decoder.width()), u32::from(decoder.height()), Layout::Rgba, 1))
}

pub(super) fn decode(bytes: &[u8], limits: Limits) -> Result<Pixels, String> {
    let mut decoder = decoder(bytes, limits)?;
    let (width, height) = (u32::from(decoder.width()), u32::from(decoder.height()));
    let line = usize::from(decoder.width()) * 4;
    let size = line.checked_mul(height as usize).ok_or_else(|| too_large(FORMAT))?;
    let frame = decoder.read_next_frame().map_err(failed_gif)?.ok_or_else(|| failed(FORMAT, "no frame"))?;
    let (left, top, frame_line) = (usize::from(frame.left), usize::from(frame.top), usize::from(frame.width) * 4);
    let mut canvas = vec![0; size];
    // Row by row, clipped to the screen; an empty frame has no rows.
    if frame_line > 0 {
        for (row, canvas_row) in frame.buffer.chunks_exact(frame_line).zip(canvas.chunks_exact_mut(line).skip(top)) {
            let Some(visible) = canvas_row.get_mut(left * 4..) else { break };
            let n = visible.len().min(row.len());
            visible[..n].copy_from_slice(&row[..n]);
        }
    }
    Ok(Pixels { width, height, layout: Layout::Rgba, samples: canvas })
}
