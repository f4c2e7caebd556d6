//! A serialisable description of a model, stored in model files so `crest predict` can rebuild any of them.

use super::{Flatten, Linear, Module, ReLU, Sequential, Sigmoid};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum LayerSpec {
    Sequential { layers: Vec<LayerSpec> },
    Linear { in_features: usize, out_features: usize },
    ReLU,
    Sigmoid,
    Flatten,
}

impl LayerSpec {
    /// A freshly initialised module of this shape.
    pub fn build(&self, rng: &mut Rng) -> Box<dyn Module> {
        match self {
            LayerSpec::Sequential { layers } => {
                Box::new(Sequential::new(layers.iter().map(|l| l.build(rng)).collect()))
            }
            LayerSpec::Linear { in_features, out_features } => Box::new(Linear::new(*in_features, *out_features, rng)),
            LayerSpec::ReLU => Box::new(ReLU),
            LayerSpec::Sigmoid => Box::new(Sigmoid),
            LayerSpec::Flatten => Box::new(Flatten),
        }
    }
}
