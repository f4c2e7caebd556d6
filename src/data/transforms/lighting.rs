//! fastai's `Brightness` and `Contrast`, which act in logit space: `sigmoid((logit(x) + logit(brightness)) *
//! contrast)` on pixel values `x` in [0, 1]. On bytes that is a function of the byte alone, so each image gets a
//! 256-entry table and lighting costs one lookup per byte.

use std::sync::OnceLock;

/// One image's lighting change. `brightness` 0.5 and `contrast` 1 change nothing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lighting {
    /// In (0, 1): the value mid-grey (0.5) becomes; fastai draws it from `0.5 * (1 ± max_lighting)`.
    pub brightness: f64,
    /// Positive: the factor on logits; fastai draws its log from `±ln(1 - max_lighting)`.
    pub contrast: f64,
}

impl Lighting {
    /// The byte each byte becomes, rounded.
    pub fn table(&self) -> [u8; 256] {
        let shift = logit(self.brightness);
        let logits = byte_logits();
        std::array::from_fn(|b| {
            let lit = sigmoid((logits[b] + shift) * self.contrast);
            (lit * 255.0).round() as u8
        })
    }
}

/// Each byte's logit, computed once: a table then costs 256 exponentials.
fn byte_logits() -> &'static [f64; 256] {
    static LOGITS: OnceLock<[f64; 256]> = OnceLock::new();
    LOGITS.get_or_init(|| std::array::from_fn(|b| logit(b as f64 / 255.0)))
}

/// `ln(x / (1 - x))` with `x` clamped to `[1e-7, 1 - 1e-7]` first, as fastai's `logit` does, so 0 and 255 stay finite.
fn logit(x: f64) -> f64 {
    let x = x.clamp(1e-7, 1.0 - 1e-7);
    -(1.0 / x - 1.0).ln()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// fastai's formula written out for one byte, as `torch` computes it on a float image.
    fn fastai(byte: u8, brightness: f64, contrast: f64) -> u8 {
        let x = (byte as f64 / 255.0).clamp(1e-7, 1.0 - 1e-7);
        let logit_x = (x / (1.0 - x)).ln();
        let logit_b = (brightness / (1.0 - brightness)).ln();
        let y = 1.0 / (1.0 + (-(logit_x + logit_b) * contrast).exp());
        (y * 255.0).round() as u8
    }

    #[test]
    fn neutral_lighting_is_the_identity() {
        let table = Lighting { brightness: 0.5, contrast: 1.0 }.table();
        assert_eq!(table, std::array::from_fn(|b| b as u8));
    }

    #[test]
    fn table_follows_fastais_formula() {
        for (brightness, contrast) in [(0.4, 1.0), (0.6, 1.0), (0.5, 0.8), (0.5, 1.25), (0.43, 1.17), (0.58, 0.83)] {
            let table = Lighting { brightness, contrast }.table();
            for byte in [0u8, 1, 10, 64, 127, 128, 200, 254, 255] {
                assert_eq!(
                    table[byte as usize],
                    fastai(byte, brightness, contrast),
                    "{byte} at {brightness}, {contrast}"
                );
            }
        }
    }

    #[test]
    fn known_values() {
        // Brightness 0.6 adds ln 1.5 to every logit: 128 (logit 0.0078) becomes sigmoid(0.4133) = 0.6019.
        let brighter = Lighting { brightness: 0.6, contrast: 1.0 }.table();
        assert_eq!((brighter[0], brighter[128], brighter[255]), (0, 153, 255));
        // Contrast 1.25 stretches logits away from mid-grey: 64 (logit -1.0934) becomes sigmoid(-1.3667) = 0.2031,
        // and 191 symmetrically 0.7969.
        let sharper = Lighting { brightness: 0.5, contrast: 1.25 }.table();
        assert_eq!((sharper[64], sharper[191]), (52, 203));
    }
}
