//! Pictures on the page: PNG in `data:` URLs, in a grid with their captions. A small image (a 28x28 digit) is shown
//! a whole number of times larger with `image-rendering: pixelated`, so its pixels stay sharp squares.

use super::base64;
use super::html::escape;
use super::Picture;

/// Images smaller than this (on their longer side) are shown enlarged to at least this many CSS pixels.
const MIN_SHOWN: usize = 96;

/// The picture as PNG, or `None` when its pixels don't fit its shape or it has a channel count PNG can't hold.
pub fn png(picture: &Picture) -> Option<Vec<u8>> {
    let Picture { pixels, channels, height, width, .. } = picture;
    let colour = match channels {
        1 => png::ColorType::Grayscale,
        2 => png::ColorType::GrayscaleAlpha,
        3 => png::ColorType::Rgb,
        4 => png::ColorType::Rgba,
        _ => return None,
    };
    let plane = height.checked_mul(*width)?;
    if plane == 0 || pixels.len() != plane.checked_mul(*channels)? {
        return None;
    }
    // PNG interleaves the channels of a pixel; the data set keeps one plane per channel.
    let interleaved: Vec<u8> = (0..plane).flat_map(|i| (0..*channels).map(move |c| pixels[c * plane + i])).collect();
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, u32::try_from(*width).ok()?, u32::try_from(*height).ok()?);
    encoder.set_color(colour);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().ok()?;
    writer.write_image_data(&interleaved).ok()?;
    writer.finish().ok()?;
    Some(bytes)
}

/// One `<img>` for the picture, or a line saying why there is none.
pub fn img(picture: &Picture) -> String {
    let Some(bytes) = png(picture) else {
        return format!(
            r#"<span class="broken">({} bytes do not make a {}x{} image of {} channels)</span>"#,
            picture.pixels.len(),
            picture.width,
            picture.height,
            picture.channels
        );
    };
    let longer = picture.width.max(picture.height);
    let (zoom, class) = if longer < MIN_SHOWN { (MIN_SHOWN.div_ceil(longer), " class=\"pixelated\"") } else { (1, "") };
    format!(
        r#"<img{class} width="{}" height="{}" alt="{}" src="data:image/png;base64,{}">"#,
        picture.width * zoom,
        picture.height * zoom,
        escape(&picture.caption),
        base64::encode(&bytes)
    )
}

/// The pictures in a grid, each above its caption.
pub fn grid(pictures: &[Picture]) -> String {
    let mut html = String::from("<div class=\"grid\">\n");
    for p in pictures {
        html += &format!("<figure>{}<figcaption>{}</figcaption></figure>\n", img(p), escape(&p.caption));
    }
    html + "</div>\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> (png::ColorType, u32, u32, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
        let mut out = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut out).unwrap();
        out.truncate(info.buffer_size());
        (info.color_type, info.width, info.height, out)
    }

    #[test]
    fn planes_become_interleaved_pixels() {
        // Two pixels, RGB planes: red plane [10, 11], green [20, 21], blue [30, 31].
        let p =
            Picture { pixels: vec![10, 11, 20, 21, 30, 31], channels: 3, height: 1, width: 2, caption: String::new() };
        assert_eq!(decode(&png(&p).unwrap()), (png::ColorType::Rgb, 2, 1, vec![10, 20, 30, 11, 21, 31]));
        // An emoji's RGBA: one opaque red pixel, one transparent one.
        let rgba = Picture { pixels: vec![255, 0, 0, 0, 0, 0, 255, 0], channels: 4, height: 1, width: 2, ..p.clone() };
        assert_eq!(decode(&png(&rgba).unwrap()), (png::ColorType::Rgba, 2, 1, vec![255, 0, 0, 255, 0, 0, 0, 0]));
        let grey = Picture { pixels: vec![0, 64, 128, 255], channels: 1, height: 2, width: 2, caption: String::new() };
        assert_eq!(decode(&png(&grey).unwrap()), (png::ColorType::Grayscale, 2, 2, vec![0, 64, 128, 255]));
    }

    #[test]
    fn pixels_that_do_not_fit_the_shape_say_so() {
        let p = Picture { pixels: vec![1, 2, 3], channels: 1, height: 2, width: 2, caption: "<b>".into() };
        assert_eq!(png(&p), None);
        assert_eq!(png(&Picture { channels: 5, pixels: vec![0; 5], height: 1, width: 1, ..p.clone() }), None);
        assert_eq!(png(&Picture { pixels: vec![], height: 0, width: 0, ..p.clone() }), None);
        assert!(grid(&[p]).contains("(3 bytes do not make a 2x2 image of 1 channels)</span><figcaption>&lt;b&gt;"));
    }

    #[test]
    fn small_images_are_enlarged_whole_times() {
        let digit = Picture { pixels: vec![0; 28 * 28], channels: 1, height: 28, width: 28, caption: "3".into() };
        assert!(img(&digit).starts_with(r#"<img class="pixelated" width="112" height="112" alt="3""#));
        let photo =
            Picture { pixels: vec![0; 3 * 140 * 100], channels: 3, height: 100, width: 140, caption: "".into() };
        assert!(img(&photo).starts_with(r#"<img width="140" height="100""#));
    }
}
