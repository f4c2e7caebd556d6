//! Which augmentations a run uses, with their magnitudes: fastai's `aug_transforms()` and `RandomResizedCrop`, each
//! switchable, written and read as a list such as `flip,rotate,zoom`.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The augmentations to apply to training images. `Augment::fastai()` is fastai's `aug_transforms()`; the magnitudes
/// are its parameters of the same names. The text form ([`FromStr`], [`fmt::Display`]) carries the switches only.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Augment {
    /// Mirror left to right, with probability 0.5 (fastai's `Flip(p=0.5)`).
    pub flip: bool,
    /// Rotate by up to `max_rotate` degrees either way.
    pub rotate: bool,
    /// Zoom in by up to `max_zoom`, about a random centre.
    pub zoom: bool,
    /// Perspective warp: the corners move by up to `max_warp` of the half-width, in x and y independently.
    pub warp: bool,
    /// Brightness and contrast by up to `max_lighting`, in logit space.
    pub lighting: bool,
    /// fastai's `RandomResizedCrop`: a crop of `min_scale`..1 of the area and aspect ratio 3/4..4/3, resized back.
    pub crop: bool,
    /// Degrees (fastai's `max_rotate`, 10).
    pub max_rotate: f32,
    /// At least 1 (fastai's `max_zoom`, 1.1; `min_zoom` is 1).
    pub max_zoom: f32,
    /// In [0, 1) (fastai's `max_warp`, 0.2).
    pub max_warp: f32,
    /// In [0, 1) (fastai's `max_lighting`, 0.2).
    pub max_lighting: f32,
    /// The chance that each of rotate, zoom, and warp's x and y, happens to an image (fastai's `p_affine`, 0.75).
    pub p_affine: f32,
    /// The chance that each of brightness and contrast happens to an image (fastai's `p_lighting`, 0.75).
    pub p_lighting: f32,
    /// The smallest share of the area a crop keeps, in (0, 1] (`RandomResizedCrop`'s `min_scale`, 0.08).
    pub min_scale: f32,
}

/// The switches' names, in the order the text form lists them.
const NAMES: [&str; 6] = ["flip", "rotate", "zoom", "warp", "lighting", "crop"];

impl Augment {
    /// fastai's `aug_transforms()` defaults: flip, rotate, zoom, warp and lighting; no crop.
    pub fn fastai() -> Augment {
        Augment { flip: true, rotate: true, zoom: true, warp: true, lighting: true, crop: false, ..Augment::none() }
    }

    /// Nothing switched on (with fastai's magnitudes, for whatever is switched on later).
    pub fn none() -> Augment {
        Augment {
            flip: false,
            rotate: false,
            zoom: false,
            warp: false,
            lighting: false,
            crop: false,
            max_rotate: 10.0,
            max_zoom: 1.1,
            max_warp: 0.2,
            max_lighting: 0.2,
            p_affine: 0.75,
            p_lighting: 0.75,
            min_scale: 0.08,
        }
    }

    /// Whether every switch is off, so that images pass unchanged.
    pub fn is_none(&self) -> bool {
        !self.switches().contains(&true)
    }

    fn switches(&self) -> [bool; 6] {
        [self.flip, self.rotate, self.zoom, self.warp, self.lighting, self.crop]
    }

    fn switch(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "flip" => &mut self.flip,
            "rotate" => &mut self.rotate,
            "zoom" => &mut self.zoom,
            "warp" => &mut self.warp,
            "lighting" => &mut self.lighting,
            "crop" => &mut self.crop,
            _ => return None,
        })
    }

    /// The switches with their magnitudes, for a run's log: `flip (p 0.5), rotate (±10°, p 0.75), …`.
    pub fn describe(&self) -> String {
        let p = self.p_affine;
        let parts = [
            (self.flip, "flip (p 0.5)".to_string()),
            (self.rotate, format!("rotate (±{}°, p {p})", self.max_rotate)),
            (self.zoom, format!("zoom (1-{}, p {p})", self.max_zoom)),
            (self.warp, format!("warp ({}, p {p})", self.max_warp)),
            (self.lighting, format!("lighting ({}, p {})", self.max_lighting, self.p_lighting)),
            (self.crop, format!("crop (area {}-1, ratio 3/4-4/3)", self.min_scale)),
        ];
        let on: Vec<String> = parts.into_iter().filter(|(on, _)| *on).map(|(_, text)| text).collect();
        if on.is_empty() {
            "none".into()
        } else {
            on.join(", ")
        }
    }
}

impl Default for Augment {
    fn default() -> Augment {
        Augment::fastai()
    }
}

impl FromStr for Augment {
    type Err = Error;

    /// A comma-separated list of `flip`, `rotate`, `zoom`, `warp`, `lighting` and `crop`, where `fastai` (or
    /// `default`) stands for fastai's five; or `none` alone.
    fn from_str(s: &str) -> crate::Result<Augment> {
        if s.trim() == "none" {
            return Ok(Augment::none());
        }
        let mut aug = Augment::none();
        for name in s.split(',').map(str::trim) {
            match name {
                "fastai" | "default" => {
                    let fastai = Augment::fastai();
                    for (on, name) in fastai.switches().into_iter().zip(NAMES) {
                        *aug.switch(name).expect("a listed name") |= on;
                    }
                }
                "none" => {
                    return Err(Error::InvalidArgument(format!(
                        "augmentation {s:?} lists none with others: none stands alone"
                    )))
                }
                _ => match aug.switch(name) {
                    Some(on) => *on = true,
                    None => {
                        return Err(Error::InvalidArgument(format!(
                            "unknown augmentation {name:?}: the valid ones are {}, or fastai (or default) for \
                             fastai's aug_transforms, or none",
                            NAMES.join(", ")
                        )))
                    }
                },
            }
        }
        Ok(aug)
    }
}

impl fmt::Display for Augment {
    /// The switched-on names joined by commas, in a fixed order; `none` when none is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on: Vec<&str> = NAMES.into_iter().zip(self.switches()).filter(|(_, on)| *on).map(|(n, _)| n).collect();
        if on.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&on.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fastai_is_aug_transforms_defaults() {
        let a = Augment::fastai();
        assert_eq!(a.to_string(), "flip,rotate,zoom,warp,lighting");
        assert_eq!((a.max_rotate, a.max_zoom, a.max_warp, a.max_lighting), (10.0, 1.1, 0.2, 0.2));
        assert_eq!((a.p_affine, a.p_lighting, a.min_scale), (0.75, 0.75, 0.08));
        assert!(!a.crop && !a.is_none());
        assert!(Augment::none().is_none());
    }

    #[test]
    fn parse_and_display_round_trip() {
        for text in ["flip", "rotate,zoom", "warp,lighting,crop", "flip,rotate,zoom,warp,lighting,crop", "none"] {
            let aug: Augment = text.parse().unwrap();
            assert_eq!(aug.to_string(), text);
            assert_eq!(aug.to_string().parse::<Augment>().unwrap(), aug);
        }
        // Any order, spaces and repeats; written back in the canonical order.
        assert_eq!("crop, flip,flip".parse::<Augment>().unwrap().to_string(), "flip,crop");
        assert_eq!("fastai".parse::<Augment>().unwrap(), Augment::fastai());
        assert_eq!("default".parse::<Augment>().unwrap(), Augment::fastai());
        assert_eq!("fastai,crop".parse::<Augment>().unwrap().to_string(), "flip,rotate,zoom,warp,lighting,crop");
        let crop: Augment = "crop".parse().unwrap();
        assert_eq!(crop, Augment { crop: true, ..Augment::none() });
    }

    #[test]
    fn unknown_names_are_refused_with_the_valid_ones() {
        for bad in ["bogus", "flip,bogus", "", "flip,", "Flip"] {
            let e = bad.parse::<Augment>().unwrap_err().to_string();
            assert!(e.starts_with("unknown augmentation"), "{bad:?}: {e}");
            assert!(e.contains("flip, rotate, zoom, warp, lighting, crop") && e.contains("none"), "{e}");
        }
        let e = "bogus".parse::<Augment>().unwrap_err().to_string();
        assert!(e.starts_with("unknown augmentation \"bogus\":"), "{e}");
        let e = "none,flip".parse::<Augment>().unwrap_err().to_string();
        assert_eq!(e, "augmentation \"none,flip\" lists none with others: none stands alone");
    }

    #[test]
    fn describe_names_the_magnitudes() {
        assert_eq!(
            Augment::fastai().describe(),
            "flip (p 0.5), rotate (±10°, p 0.75), zoom (1-1.1, p 0.75), warp (0.2, p 0.75), lighting (0.2, p 0.75)"
        );
        assert_eq!("crop".parse::<Augment>().unwrap().describe(), "crop (area 0.08-1, ratio 3/4-4/3)");
        assert_eq!(Augment::none().describe(), "none");
    }
}
