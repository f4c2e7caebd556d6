//! A decoded image as every decoder hands it over (8-bit samples, interleaved), and its conversion to the channel
//! count training asks for. The conversions are those of the `image` crate, which crest used before, so that a
//! data set loads to the same bytes: grey is replicated, alpha dropped or added opaque, and colour made grey with
//! PIL's weights.

/// The channels of one pixel, in order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Layout {
    Luma,
    LumaAlpha,
    Rgb,
    Rgba,
}

impl Layout {
    pub fn channels(self) -> usize {
        match self {
            Layout::Luma => 1,
            Layout::LumaAlpha => 2,
            Layout::Rgb => 3,
            Layout::Rgba => 4,
        }
    }

    pub fn has_alpha(self) -> bool {
        matches!(self, Layout::LumaAlpha | Layout::Rgba)
    }

    pub fn has_colour(self) -> bool {
        matches!(self, Layout::Rgb | Layout::Rgba)
    }
}

/// `width` x `height` pixels of `layout`, row-major: `samples` holds `width * height * layout.channels()` bytes.
pub(crate) struct Pixels {
    pub width: u32,
    pub height: u32,
    pub layout: Layout,
    pub samples: Vec<u8>,
}

impl Pixels {
    /// Grey as PIL's `convert("L")` makes it (ITU-R 601-2 weights in 16-bit fixed point), so that a model trained
    /// here sees the same grey values as one trained on PIL images; grey sources pass through, without their alpha.
    pub fn into_luma(self) -> Vec<u8> {
        match self.layout {
            Layout::Luma => self.samples,
            Layout::LumaAlpha => self.samples.as_chunks::<2>().0.iter().map(|&[v, _]| v).collect(),
            Layout::Rgb | Layout::Rgba => self
                .samples
                .chunks_exact(self.layout.channels())
                .map(|p| ((p[0] as u32 * 19595 + p[1] as u32 * 38470 + p[2] as u32 * 7471 + 0x8000) >> 16) as u8)
                .collect(),
        }
    }

    pub fn into_rgb(self) -> Vec<u8> {
        match self.layout {
            Layout::Luma => self.samples.iter().flat_map(|&v| [v; 3]).collect(),
            Layout::LumaAlpha => self.samples.as_chunks::<2>().0.iter().flat_map(|&[v, _]| [v; 3]).collect(),
            Layout::Rgb => self.samples,
            Layout::Rgba => self.samples.as_chunks::<4>().0.iter().flat_map(|&[r, g, b, _]| [r, g, b]).collect(),
        }
    }

    pub fn into_rgba(self) -> Vec<u8> {
        match self.layout {
            Layout::Luma => self.samples.iter().flat_map(|&v| [v, v, v, 255]).collect(),
            Layout::LumaAlpha => self.samples.as_chunks::<2>().0.iter().flat_map(|&[v, a]| [v, v, v, a]).collect(),
            Layout::Rgb => self.samples.as_chunks::<3>().0.iter().flat_map(|&[r, g, b]| [r, g, b, 255]).collect(),
            Layout::Rgba => self.samples,
        }
    }
}
