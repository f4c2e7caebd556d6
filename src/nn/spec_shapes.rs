//! What a [`LayerSpec`] would build, worked out without building it: the tensors the model would hold and the
//! shape it would give. A model file decides every number in its spec, so they are checked here, with checked
//! arithmetic, before anything the size of them is allocated or computed.

use super::activation::flattened;
use super::batchnorm::batchnorm_output;
use super::conv::conv2d_output;
use super::linear::linear_output;
use super::pool::{averaged_over_positions, pooled};
use super::resnet::{self, BlockShape, ConvShape};
use super::LayerSpec;
use crate::{Error, Result};

/// The most values one example may take at any layer: 2^28, 1 GiB of f32 (a 2048×2048 RGBA image is 2^24; crest's
/// CNN on it makes 2^27 before its first pooling). Beyond it, a spec of a few bytes could ask for any memory.
pub const MAX_VALUES_PER_EXAMPLE: usize = 1 << 28;

/// The most multiply-adds (or values read, for layers without weights) one example may cost through the whole
/// model: 2^37, a minute or two on one core (crest's CNN on 2048×2048 RGBA images costs 2^34.5). Beyond it, a
/// spec of a few bytes (a large pooling window, a million layers) could keep `predict` busy for ever.
pub const MAX_WORK_PER_EXAMPLE: u64 = 1 << 37;

/// The tensors and output of a spec, for one example of a given input shape.
#[derive(Clone, Debug, PartialEq)]
pub struct SpecShapes {
    /// Parameters, then buffers, with the names and in the order the built model lists them
    /// ([`super::Module::named_parameters`], then [`super::Module::named_buffers`]).
    pub tensors: Vec<(String, Vec<usize>)>,
    /// The output shape for one example (no batch axis).
    pub output: Vec<usize>,
    /// How many values all the layers' outputs hold together, for one example.
    pub activations: usize,
}

impl LayerSpec {
    /// The tensors this spec builds and the shape it gives for one example of `input` shape, or why it can't be
    /// built or can't take that input (naming the layer and both shapes): sizes, strides and kernels below 1, a
    /// dropout probability outside [0, 1), or more than [`MAX_VALUES_PER_EXAMPLE`] values at a layer or
    /// [`MAX_WORK_PER_EXAMPLE`] in all. Nothing is allocated but the answer.
    pub fn shapes(&self, input: &[usize]) -> Result<SpecShapes> {
        let mut walk = Walk { parameters: Vec::new(), buffers: Vec::new(), work: 0, activations: 0 };
        values(input).map_err(|why| Error::Shape(format!("the input {input:?} {why}")))?;
        let output = walk.layer(self, "", input)?;
        let mut tensors = walk.parameters;
        tensors.extend(walk.buffers);
        Ok(SpecShapes { tensors, output, activations: walk.activations })
    }
}

struct Walk {
    parameters: Vec<(String, Vec<usize>)>,
    buffers: Vec<(String, Vec<usize>)>,
    work: u64,
    activations: usize,
}

impl Walk {
    /// The output shape of `spec` on `input`, recording its tensors under `prefix` and adding up its work.
    fn layer(&mut self, spec: &LayerSpec, prefix: &str, input: &[usize]) -> Result<Vec<usize>> {
        let name = |tensor: &str| format!("{prefix}{tensor}");
        // How many values the layer reads for each value it writes.
        let (output, reads) = match *spec {
            LayerSpec::Sequential { ref layers } => {
                let mut shape = input.to_vec();
                for (i, layer) in layers.iter().enumerate() {
                    shape = self
                        .layer(layer, &format!("{prefix}{i}."), &shape)
                        .map_err(|e| Error::Shape(format!("layer {i}: {e}")))?;
                }
                return Ok(shape);
            }
            LayerSpec::Linear { in_features, out_features } => {
                let output = linear_output(in_features, out_features, input)?;
                self.parameters.push((name("weight"), vec![out_features, in_features]));
                self.parameters.push((name("bias"), vec![out_features]));
                (output, in_features)
            }
            LayerSpec::ReLU | LayerSpec::Sigmoid => (input.to_vec(), 1),
            LayerSpec::Flatten => (flattened(input)?, 1),
            LayerSpec::Conv2d { in_channels, out_channels, kernel_size, stride, padding } => {
                let c = ConvShape { input: in_channels, out: out_channels, kernel: kernel_size, stride, padding };
                return self.conv(&c, true, prefix, input);
            }
            LayerSpec::ResNet { depth, in_channels, classes, width } => {
                let plan = resnet::plan(depth, in_channels, width)?;
                return self.resnet(spec, &plan, classes, prefix, input);
            }
            LayerSpec::MaxPool2d { kernel_size, stride, padding } => {
                (pooled(input, kernel_size, stride, padding, "MaxPool2d")?, kernel_size.saturating_mul(kernel_size))
            }
            LayerSpec::AvgPool2d { kernel_size, stride } => {
                (pooled(input, kernel_size, stride, 0, "AvgPool2d")?, kernel_size.saturating_mul(kernel_size))
            }
            LayerSpec::AdaptiveAvgPool2d => {
                let output = averaged_over_positions(input)?;
                let positions = input.iter().skip(1).product::<usize>();
                (output, positions)
            }
            LayerSpec::BatchNorm { features } => {
                let output = batchnorm_output(features, input)?;
                for tensor in ["weight", "bias"] {
                    self.parameters.push((name(tensor), vec![features]));
                }
                for tensor in ["running_mean", "running_var"] {
                    self.buffers.push((name(tensor), vec![features]));
                }
                (output, 1)
            }
            LayerSpec::Dropout { p } => {
                if !(0.0..1.0).contains(&p) {
                    return Err(Error::Shape(format!("Dropout's probability must be in [0, 1), got {p}")));
                }
                (input.to_vec(), 1)
            }
        };
        self.account(spec, output, reads)
    }

    /// Counts a layer's output among the activations and its work, `reads` values for each value it writes.
    fn account(&mut self, spec: &dyn std::fmt::Display, output: Vec<usize>, reads: usize) -> Result<Vec<usize>> {
        let count =
            values(&output).map_err(|why| Error::Shape(format!("{spec} gives output {output:?}, which {why}")))?;
        self.activations = self.activations.saturating_add(count);
        self.work = (count as u64)
            .checked_mul(reads.max(1) as u64)
            .and_then(|w| w.checked_add(self.work))
            .filter(|&w| w <= MAX_WORK_PER_EXAMPLE)
            .ok_or_else(|| {
                Error::Shape(format!(
                    "{spec} brings the model's work past {MAX_WORK_PER_EXAMPLE} multiply-adds per example, more \
                     than any model crest trains"
                ))
            })?;
        Ok(output)
    }

    /// A convolution, with a bias or without (a ResNet's, followed by a BatchNorm).
    fn conv(&mut self, c: &ConvShape, bias: bool, prefix: &str, input: &[usize]) -> Result<Vec<usize>> {
        let &ConvShape { input: cin, out, kernel: k, stride, padding } = c;
        let output = conv2d_output(cin, out, k, stride, padding, input)?;
        self.parameters.push((format!("{prefix}weight"), vec![out, cin, k, k]));
        if bias {
            self.parameters.push((format!("{prefix}bias"), vec![out]));
        }
        let spec = LayerSpec::Conv2d { in_channels: cin, out_channels: out, kernel_size: k, stride, padding };
        // Each output value reads a window of every input channel: `in_channels` · k² (a weight tensor of that
        // many values exists in the file, so the product fits).
        self.account(&spec, output, cin.saturating_mul(k).saturating_mul(k))
    }

    /// A ResNet's convolution and the BatchNorm after it, named `{prefix}{conv}.` and `{prefix}{bn}.`.
    fn conv_bn(&mut self, c: &ConvShape, prefix: &str, [conv, bn]: [&str; 2], input: &[usize]) -> Result<Vec<usize>> {
        let shape = self.conv(c, false, &format!("{prefix}{conv}."), input)?;
        self.layer(&LayerSpec::BatchNorm { features: c.out }, &format!("{prefix}{bn}."), &shape)
    }

    /// torchvision's ResNet as [`resnet::plan`] lays it out, refusing images smaller than it takes.
    fn resnet(
        &mut self,
        spec: &LayerSpec,
        plan: &resnet::Plan,
        classes: usize,
        prefix: &str,
        input: &[usize],
    ) -> Result<Vec<usize>> {
        const MIN: usize = resnet::MIN_SIZE;
        if let [_, h, w] = *input {
            if h < MIN || w < MIN {
                return Err(Error::Shape(format!("{spec} needs images of at least {MIN}x{MIN}, got {w}x{h}")));
            }
        }
        let mut shape = self.conv_bn(&plan.stem, prefix, ["conv1", "bn1"], input)?;
        shape = self.layer(&LayerSpec::ReLU, prefix, &shape)?;
        shape = self.layer(&LayerSpec::MaxPool2d { kernel_size: 3, stride: 2, padding: 1 }, prefix, &shape)?;
        for (stage, blocks) in plan.stages.iter().enumerate() {
            for (i, block) in blocks.iter().enumerate() {
                let at = format!("layer{}.{i}", stage + 1);
                shape = self
                    .block(block, &format!("{prefix}{at}."), &shape)
                    .map_err(|e| Error::Shape(format!("{at}: {e}")))?;
            }
        }
        shape = self.layer(&LayerSpec::AdaptiveAvgPool2d, prefix, &shape)?;
        let fc = LayerSpec::Linear { in_features: plan.features, out_features: classes };
        self.layer(&fc, &format!("{prefix}fc."), &shape)
    }

    /// A residual block: its main path, its downsample if it has one, and the add of the two.
    fn block(&mut self, block: &BlockShape, prefix: &str, input: &[usize]) -> Result<Vec<usize>> {
        let mut shape = input.to_vec();
        for (i, c) in block.main.iter().enumerate() {
            let names = [format!("conv{}", i + 1), format!("bn{}", i + 1)];
            shape = self.conv_bn(c, prefix, [&names[0], &names[1]], &shape)?;
            // Between pairs, and after the add for the last.
            shape = self.layer(&LayerSpec::ReLU, prefix, &shape)?;
        }
        let identity = match &block.downsample {
            Some(d) => self.conv_bn(d, prefix, ["downsample.0", "downsample.1"], input)?,
            None => input.to_vec(),
        };
        if identity != shape {
            return Err(Error::Shape(format!("the residual add needs equal shapes, got {identity:?} and {shape:?}")));
        }
        self.account(&"the residual add", shape, 2)
    }
}

/// How many values a shape holds, if it is within [`MAX_VALUES_PER_EXAMPLE`]; otherwise why not, as the end of a
/// sentence.
fn values(shape: &[usize]) -> Result<usize, String> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= MAX_VALUES_PER_EXAMPLE)
        .ok_or_else(|| format!("holds more than {MAX_VALUES_PER_EXAMPLE} values per example"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Arch;
    use crate::rng::Rng;

    /// The shapes worked out match what building gives, names and order included, for every kind of layer.
    #[test]
    fn shapes_match_the_built_model() {
        let conv = |i, o, k, s, p| LayerSpec::Conv2d {
            in_channels: i,
            out_channels: o,
            kernel_size: k,
            stride: s,
            padding: p,
        };
        let spec = LayerSpec::Sequential {
            layers: vec![
                conv(3, 4, 3, 1, 1),
                LayerSpec::BatchNorm { features: 4 },
                LayerSpec::ReLU,
                LayerSpec::MaxPool2d { kernel_size: 2, stride: 2, padding: 0 },
                LayerSpec::Sequential { layers: vec![conv(4, 6, 3, 2, 0), LayerSpec::Sigmoid] },
                LayerSpec::AvgPool2d { kernel_size: 1, stride: 1 },
                LayerSpec::Dropout { p: 0.5 },
                LayerSpec::AdaptiveAvgPool2d,
                LayerSpec::BatchNorm { features: 6 },
                LayerSpec::Flatten,
                LayerSpec::Linear { in_features: 6, out_features: 5 },
            ],
        };
        let model = spec.build(&mut Rng::new(1));
        let mut built: Vec<(String, Vec<usize>)> =
            model.named_parameters().into_iter().map(|(n, t)| (n, t.shape().to_vec())).collect();
        built.extend(model.named_buffers().into_iter().map(|(n, t)| (n, t.shape().to_vec())));
        let shapes = spec.shapes(&[3, 9, 9]).unwrap();
        assert_eq!(shapes.tensors, built);
        assert_eq!(Some(shapes.output), model.output_shape(&[3, 9, 9]).map(Result::unwrap));
        assert_eq!(Arch::Cnn.spec([1, 28, 28], 10).shapes(&[1, 28, 28]).unwrap().output, vec![10]);
    }

    #[test]
    fn absurd_numbers_are_refused_with_the_layer_named() {
        let flat = |layers| LayerSpec::Sequential { layers };
        let message = |spec: LayerSpec, input: &[usize]| spec.shapes(input).unwrap_err().to_string();
        let zero_stride = LayerSpec::MaxPool2d { kernel_size: 2, stride: 0, padding: 0 };
        assert_eq!(
            message(flat(vec![LayerSpec::ReLU, zero_stride]), &[1, 4, 4]),
            "layer 1: MaxPool2d(kernel 2, stride 0) needs kernel size and stride of at least 1"
        );
        let zero_kernel = LayerSpec::Conv2d { in_channels: 1, out_channels: 2, kernel_size: 0, stride: 1, padding: 0 };
        assert_eq!(
            message(zero_kernel, &[1, 4, 4]),
            "Conv2d(1, 2, kernel 0, stride 1, padding 0) needs channels, kernel size and stride of at least 1"
        );
        assert_eq!(
            message(flat(vec![LayerSpec::Dropout { p: 1.5 }]), &[3]),
            "layer 0: Dropout's probability must be in [0, 1), got 1.5"
        );
        assert_eq!(
            message(flat(vec![LayerSpec::Flatten, LayerSpec::AdaptiveAvgPool2d]), &[1, 2, 2]),
            "layer 1: AdaptiveAvgPool2d needs input [channels, height, width], got [4]"
        );
        let huge_padding =
            LayerSpec::Conv2d { in_channels: 1, out_channels: 1, kernel_size: 1, stride: 1, padding: usize::MAX / 2 };
        assert!(message(huge_padding, &[1, 4, 4]).ends_with("pads input [1, 4, 4] beyond any size"));
        let wide = LayerSpec::Conv2d { in_channels: 1, out_channels: 1 << 21, kernel_size: 1, stride: 1, padding: 0 };
        assert!(message(wide, &[1, 16, 16]).ends_with("which holds more than 268435456 values per example"));
        assert_eq!(
            message(LayerSpec::ReLU, &[1 << 40, 1 << 40]),
            "the input [1099511627776, 1099511627776] holds more than 268435456 values per example"
        );
        // Each layer is cheap; a million of them on a large input is not.
        let many = flat(vec![LayerSpec::ReLU; 1_000_000]);
        assert!(message(many, &[1, 1024, 1024]).contains("past 137438953472 multiply-adds per example"));
        let window = LayerSpec::MaxPool2d { kernel_size: 8192, stride: 1, padding: 0 };
        assert!(message(window, &[1, 16384, 16384]).contains("multiply-adds"));
    }
}
