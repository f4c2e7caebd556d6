//! A serialisable description of a model, stored in model files so `crest predict` can rebuild any of them.

use super::{
    resnet, AdaptiveAvgPool2d, AvgPool2d, BatchNorm, Conv2d, Dropout, Flatten, Linear, MaxPool2d, Module, ReLU, ResNet,
    Sequential, Sigmoid,
};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum LayerSpec {
    Sequential {
        layers: Vec<LayerSpec>,
    },
    Linear {
        in_features: usize,
        out_features: usize,
    },
    ReLU,
    Sigmoid,
    Flatten,
    Conv2d {
        in_channels: usize,
        out_channels: usize,
        kernel_size: usize,
        stride: usize,
        padding: usize,
    },
    /// Files from before padding existed have none.
    MaxPool2d {
        kernel_size: usize,
        stride: usize,
        #[serde(default, skip_serializing_if = "is_zero")]
        padding: usize,
    },
    AvgPool2d {
        kernel_size: usize,
        stride: usize,
    },
    AdaptiveAvgPool2d,
    BatchNorm {
        features: usize,
    },
    Dropout {
        p: f32,
    },
    /// torchvision's `resnet{depth}` ([`super::ResNet`]), with `width` channels after the stem (torchvision's 64).
    ResNet {
        depth: usize,
        in_channels: usize,
        classes: usize,
        width: usize,
    },
}

impl LayerSpec {
    /// A freshly initialised module of this shape: one whose numbers [`LayerSpec::shapes`] accepts (a ResNet of
    /// another depth panics).
    pub fn build(&self, rng: &mut Rng) -> Box<dyn Module> {
        match self {
            LayerSpec::Sequential { layers } => {
                Box::new(Sequential::new(layers.iter().map(|l| l.build(rng)).collect()))
            }
            LayerSpec::Linear { in_features, out_features } => Box::new(Linear::new(*in_features, *out_features, rng)),
            LayerSpec::ReLU => Box::new(ReLU),
            LayerSpec::Sigmoid => Box::new(Sigmoid),
            LayerSpec::Flatten => Box::new(Flatten),
            &LayerSpec::Conv2d { in_channels, out_channels, kernel_size, stride, padding } => {
                Box::new(Conv2d::new(in_channels, out_channels, kernel_size, rng).stride(stride).padding(padding))
            }
            &LayerSpec::MaxPool2d { kernel_size, stride, padding } => {
                Box::new(MaxPool2d { kernel_size, stride, padding })
            }
            &LayerSpec::AvgPool2d { kernel_size, stride } => Box::new(AvgPool2d { kernel_size, stride }),
            LayerSpec::AdaptiveAvgPool2d => Box::new(AdaptiveAvgPool2d),
            &LayerSpec::BatchNorm { features } => Box::new(BatchNorm::new(features)),
            &LayerSpec::Dropout { p } => Box::new(Dropout::new(p, rng)),
            &LayerSpec::ResNet { depth, in_channels, classes, width } => {
                let plan = resnet::plan(depth, in_channels, width).unwrap_or_else(|e| panic!("{e}"));
                Box::new(ResNet::build(&plan, depth, width, classes, rng))
            }
        }
    }
}

/// A layer as messages name it, PyTorch-like: `Linear(784, 10)`, `Conv2d(1, 32, kernel 3, stride 1, padding 1)`.
impl std::fmt::Display for LayerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayerSpec::Sequential { layers } => write!(f, "Sequential({} layers)", layers.len()),
            LayerSpec::Linear { in_features, out_features } => write!(f, "Linear({in_features}, {out_features})"),
            LayerSpec::ReLU => f.write_str("ReLU"),
            LayerSpec::Sigmoid => f.write_str("Sigmoid"),
            LayerSpec::Flatten => f.write_str("Flatten"),
            LayerSpec::Conv2d { in_channels, out_channels, kernel_size, stride, padding } => write!(
                f,
                "Conv2d({in_channels}, {out_channels}, kernel {kernel_size}, stride {stride}, padding {padding})"
            ),
            LayerSpec::MaxPool2d { kernel_size, stride, padding: 0 } => {
                write!(f, "MaxPool2d(kernel {kernel_size}, stride {stride})")
            }
            LayerSpec::MaxPool2d { kernel_size, stride, padding } => {
                write!(f, "MaxPool2d(kernel {kernel_size}, stride {stride}, padding {padding})")
            }
            LayerSpec::AvgPool2d { kernel_size, stride } => {
                write!(f, "AvgPool2d(kernel {kernel_size}, stride {stride})")
            }
            LayerSpec::AdaptiveAvgPool2d => f.write_str("AdaptiveAvgPool2d"),
            LayerSpec::BatchNorm { features } => write!(f, "BatchNorm({features})"),
            LayerSpec::Dropout { p } => write!(f, "Dropout({p})"),
            LayerSpec::ResNet { depth, in_channels, classes, width: 64 } => {
                write!(f, "ResNet{depth}(in_channels {in_channels}, classes {classes})")
            }
            LayerSpec::ResNet { depth, in_channels, classes, width } => {
                write!(f, "ResNet{depth}(in_channels {in_channels}, classes {classes}, width {width})")
            }
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
