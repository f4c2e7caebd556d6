//! The architectures `--arch` names, as layer specs for a given input and number of outputs.

use super::resnet::DEPTHS;
use super::LayerSpec;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq)]
pub enum Arch {
    /// Flatten, then one Linear layer: the post's model.
    Linear,
    /// Flatten, then Linear+ReLU per hidden size, then Linear.
    Mlp(Vec<usize>),
    /// Two 3×3 conv blocks (32 and 64 channels, each ReLU + 2×2 max-pool), then Linear(·, 128), ReLU, Linear.
    Cnn,
    /// torchvision's `resnet18`, `resnet34` or `resnet50` ([`super::ResNet`]), for images of at least 32×32.
    ResNet(usize),
}

impl FromStr for Arch {
    type Err = String;

    fn from_str(s: &str) -> Result<Arch, String> {
        // Spelled exactly as torchvision names them: `resnet018` or `resnet+18` would round-trip as another name.
        if let Some(&depth) = DEPTHS.iter().find(|d| s.strip_prefix("resnet") == Some(d.to_string().as_str())) {
            return Ok(Arch::ResNet(depth));
        }
        match s.split_once(':') {
            None if s == "linear" => Ok(Arch::Linear),
            None if s == "mlp" => Ok(Arch::Mlp(vec![256])),
            None if s == "cnn" => Ok(Arch::Cnn),
            Some(("mlp", sizes)) => {
                let hidden: Result<Vec<usize>, _> = sizes.split(',').map(|h| h.trim().parse::<usize>()).collect();
                match hidden {
                    Ok(h) if !h.is_empty() && h.iter().all(|&n| (1..=1 << 16).contains(&n)) => Ok(Arch::Mlp(h)),
                    _ => Err(format!(
                        "mlp hidden sizes must be whole numbers from 1 to 65536, like mlp:256,128 (got {sizes:?})"
                    )),
                }
            }
            _ => Err(format!(
                "unknown architecture {s:?}: use linear, mlp[:256,128], cnn, resnet18, resnet34 or resnet50"
            )),
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arch::Linear => write!(f, "linear"),
            Arch::Cnn => write!(f, "cnn"),
            Arch::ResNet(depth) => write!(f, "resnet{depth}"),
            Arch::Mlp(h) => write!(f, "mlp:{}", h.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",")),
        }
    }
}

impl Arch {
    /// The smallest image side the architecture takes.
    pub fn min_size(&self) -> usize {
        match self {
            Arch::ResNet(_) => super::resnet::MIN_SIZE,
            _ => 1,
        }
    }

    /// The model for images of shape [C, H, W] and `outputs` logits.
    pub fn spec(&self, input: [usize; 3], outputs: usize) -> LayerSpec {
        let [c, h, w] = input;
        if let Arch::ResNet(depth) = *self {
            return LayerSpec::ResNet { depth, in_channels: c, classes: outputs, width: 64 };
        }
        if *self == Arch::Cnn {
            let conv =
                |i, o| LayerSpec::Conv2d { in_channels: i, out_channels: o, kernel_size: 3, stride: 1, padding: 1 };
            let pool = LayerSpec::MaxPool2d { kernel_size: 2, stride: 2, padding: 0 };
            let layers = vec![
                conv(c, 32),
                LayerSpec::ReLU,
                pool.clone(),
                conv(32, 64),
                LayerSpec::ReLU,
                pool,
                LayerSpec::Flatten,
                LayerSpec::Linear { in_features: 64 * (h / 4) * (w / 4), out_features: 128 },
                LayerSpec::ReLU,
                LayerSpec::Linear { in_features: 128, out_features: outputs },
            ];
            return LayerSpec::Sequential { layers };
        }
        let mut layers = vec![LayerSpec::Flatten];
        let mut width = c * h * w;
        if let Arch::Mlp(hidden) = self {
            for &h in hidden {
                layers.push(LayerSpec::Linear { in_features: width, out_features: h });
                layers.push(LayerSpec::ReLU);
                width = h;
            }
        }
        layers.push(LayerSpec::Linear { in_features: width, out_features: outputs });
        LayerSpec::Sequential { layers }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_to_the_architectures_they_display_as() {
        for name in ["linear", "mlp:256", "mlp:64,32", "cnn", "resnet18", "resnet34", "resnet50"] {
            assert_eq!(name.parse::<Arch>().map(|a| a.to_string()).as_deref(), Ok(name));
        }
    }

    #[test]
    fn only_torchvisions_spellings_of_a_resnet_parse() {
        for name in ["resnet018", "resnet+18", "resnet 18", "resnet", "resnet101", "ResNet18"] {
            let err = name.parse::<Arch>().expect_err(name);
            assert!(err.starts_with(&format!("unknown architecture {name:?}")), "{name}: {err}");
        }
    }
}
