//! torchvision's ResNet as ONNX nodes, from the same layout plan that builds crest's ([`crate::nn::resnet`]), under
//! torchvision's tensor names.

use super::graph::OnnxGraph;
use super::layers::{constant, Weights};
use crate::nn::resnet::{plan, ConvShape};
use crate::nn::{BatchNorm, LayerSpec};
use crate::Result;

/// The nodes of `resnet{depth}` (`spec`) on input `x`, returning its logits.
pub(super) fn export(
    graph: &mut OnnxGraph,
    spec: &LayerSpec,
    (depth, in_channels, width): (usize, usize, usize),
    prefix: &str,
    weights: &Weights,
    x: String,
) -> Result<String> {
    let plan = plan(depth, in_channels, width)?;
    let mut net = Net { graph, spec, prefix, weights };
    let stem = net.conv_bn(&x, "conv1", "bn1", plan.stem)?;
    let stem = net.graph.relu(&stem);
    let mut h = net.graph.max_pool(&stem, 3, 2, 1);
    for (s, stage) in plan.stages.iter().enumerate() {
        for (b, block) in stage.iter().enumerate() {
            let at = format!("layer{}.{b}.", s + 1);
            let mut y = h.clone();
            for (i, &conv) in block.main.iter().enumerate() {
                y = net.conv_bn(&y, &format!("{at}conv{}", i + 1), &format!("{at}bn{}", i + 1), conv)?;
                if i + 1 < block.main.len() {
                    y = net.graph.relu(&y);
                }
            }
            let shortcut = match block.downsample {
                Some(conv) => net.conv_bn(&h, &format!("{at}downsample.0"), &format!("{at}downsample.1"), conv)?,
                None => h,
            };
            let sum = net.graph.add(&y, &shortcut);
            h = net.graph.relu(&sum);
        }
    }
    let pooled = net.graph.global_average_pool(&h);
    let flat = net.graph.flatten(&pooled);
    let (weight, bias) = (net.constant("fc.weight")?, net.constant("fc.bias")?);
    Ok(net.graph.gemm(&flat, &weight, &bias))
}

struct Net<'a> {
    graph: &'a mut OnnxGraph,
    spec: &'a LayerSpec,
    prefix: &'a str,
    weights: &'a Weights,
}

impl Net<'_> {
    fn constant(&mut self, name: &str) -> Result<String> {
        constant(self.graph, self.weights, self.spec, &format!("{}{name}", self.prefix))
    }

    /// A bias-free convolution and the BatchNorm after it, torchvision's `conv_bn` pair.
    fn conv_bn(&mut self, x: &str, conv: &str, bn: &str, shape: ConvShape) -> Result<String> {
        let weight = self.constant(&format!("{conv}.weight"))?;
        let y = self.graph.conv(x, &weight, None, shape.kernel, shape.stride, shape.padding);
        let [scale, bias, mean, var] =
            ["weight", "bias", "running_mean", "running_var"].map(|t| self.constant(&format!("{bn}.{t}")));
        Ok(self.graph.batch_norm(&y, &scale?, &bias?, &mean?, &var?, BatchNorm::EPS))
    }
}
