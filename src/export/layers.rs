//! Each [`LayerSpec`] as ONNX nodes, its weights as constants under their PyTorch names.

use super::graph::OnnxGraph;
use crate::nn::{BatchNorm, LayerSpec};
use crate::{Error, Result, Tensor};
use std::collections::HashMap;

/// A model's parameters and buffers by their PyTorch names (`0.weight`, `3.running_mean`).
pub(super) type Weights = HashMap<String, Tensor>;

/// Adds `spec`'s nodes to `graph`, taking the value `x` (the layer's input) and returning its output. `prefix` is
/// the layer's place in the model as its weights are named (`3.` for layer 3 of a `Sequential`, empty for the whole
/// model).
///
pub(super) fn export(
    graph: &mut OnnxGraph,
    spec: &LayerSpec,
    prefix: &str,
    weights: &Weights,
    x: String,
) -> Result<String> {
    let constant = |graph: &mut OnnxGraph, name: &str| constant(graph, weights, spec, &format!("{prefix}{name}"));
    Ok(match *spec {
        LayerSpec::Sequential { ref layers } => {
            let mut h = x;
            for (i, layer) in layers.iter().enumerate() {
                h = export(graph, layer, &format!("{prefix}{i}."), weights, h)?;
            }
            h
        }
        LayerSpec::Linear { .. } => {
            let (weight, bias) = (constant(graph, "weight")?, constant(graph, "bias")?);
            graph.gemm(&x, &weight, &bias)
        }
        LayerSpec::Conv2d { kernel_size, stride, padding, .. } => {
            let (weight, bias) = (constant(graph, "weight")?, constant(graph, "bias")?);
            graph.conv(&x, &weight, Some(&bias), kernel_size, stride, padding)
        }
        LayerSpec::BatchNorm { .. } => {
            let [scale, bias, mean, var] =
                ["weight", "bias", "running_mean", "running_var"].map(|name| constant(graph, name));
            graph.batch_norm(&x, &scale?, &bias?, &mean?, &var?, BatchNorm::EPS)
        }
        LayerSpec::ReLU => graph.relu(&x),
        LayerSpec::Sigmoid => graph.sigmoid(&x),
        LayerSpec::Flatten => graph.flatten(&x),
        LayerSpec::MaxPool2d { kernel_size, stride, padding } => graph.max_pool(&x, kernel_size, stride, padding),
        LayerSpec::AvgPool2d { kernel_size, stride } => graph.average_pool(&x, kernel_size, stride),
        LayerSpec::AdaptiveAvgPool2d => {
            let pooled = graph.global_average_pool(&x);
            graph.flatten(&pooled)
        }
        // Evaluation mode: dropout passes its input on unchanged.
        LayerSpec::Dropout { .. } => x,
        LayerSpec::ResNet { depth, in_channels, width, .. } => {
            super::resnet::export(graph, spec, (depth, in_channels, width), prefix, weights, x)?
        }
    })
}

/// The tensor `name` of `owner`'s weights as a constant of `graph`, or why the model has none.
pub(super) fn constant(graph: &mut OnnxGraph, weights: &Weights, owner: &LayerSpec, name: &str) -> Result<String> {
    let t = weights
        .get(name)
        .ok_or_else(|| Error::InvalidArgument(format!("the model's {owner} has no tensor {name} to export")))?;
    Ok(graph.constant(name, t.shape(), &t.data()))
}
