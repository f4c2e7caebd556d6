//! What torchvision builds for each depth, as shapes: the one description that both building a ResNet and
//! checking its [`LayerSpec`](crate::nn::LayerSpec) against an input follow, so the two cannot disagree.

use crate::{Error, Result};

/// The depths crest builds, as torchvision names them.
pub const DEPTHS: [usize; 3] = [18, 34, 50];

/// The smallest image side a ResNet takes: its convolutions and pooling halve the image five times, so at 32 the
/// last stage sees one pixel, and below it some stride-2 step halves a side that is already odd or 1.
pub const MIN_SIZE: usize = 32;

/// The widest `width` accepted (torchvision's is 64): a bound that keeps every channel count far from overflow;
/// the values a model may hold are bounded later, by the spec's shape check.
pub const MAX_WIDTH: usize = 1 << 16;

/// One convolution without bias followed by a BatchNorm of its `out` channels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvShape {
    pub input: usize,
    pub out: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl ConvShape {
    fn new(input: usize, out: usize, kernel: usize, stride: usize) -> ConvShape {
        ConvShape { input, out, kernel, stride, padding: kernel / 2 }
    }
}

/// A residual block: its main path (`conv1`+`bn1`, `conv2`+`bn2`, … with a ReLU between pairs), and the 1×1
/// convolution + BatchNorm (`downsample.0`, `downsample.1`) that brings the input to the output's shape when the
/// block changes it.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockShape {
    pub main: Vec<ConvShape>,
    pub downsample: Option<ConvShape>,
}

/// A whole ResNet: the stem (`conv1`, `bn1`, then a 3×3 stride-2 max-pool with padding 1), the blocks of
/// `layer1` … `layer4`, and the features `fc` reads after the average pool.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub stem: ConvShape,
    pub stages: Vec<Vec<BlockShape>>,
    pub features: usize,
}

/// torchvision's `resnetNN` for `depth` on images of `in_channels` channels, with `width` channels after the stem
/// (64 in torchvision; stage `i` has `width·2^i` planes), or why there is none.
pub fn plan(depth: usize, in_channels: usize, width: usize) -> Result<Plan> {
    let (bottleneck, blocks) = match depth {
        18 => (false, [2, 2, 2, 2]),
        34 => (false, [3, 4, 6, 3]),
        50 => (true, [3, 4, 6, 3]),
        _ => return Err(Error::Shape(format!("there is no ResNet of depth {depth}: crest builds {DEPTHS:?}"))),
    };
    if !(1..=MAX_WIDTH).contains(&width) {
        return Err(Error::Shape(format!("a ResNet's width must be from 1 to {MAX_WIDTH}, got {width}")));
    }
    let expansion = if bottleneck { 4 } else { 1 };
    let mut channels = width;
    let mut stages = Vec::new();
    for (stage, &count) in blocks.iter().enumerate() {
        let planes = width << stage;
        let blocks = (0..count).map(|i| {
            // torchvision puts a stage's stride on its first block's 3×3 convolution (ResNet v1.5).
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            let out = planes * expansion;
            let main = if bottleneck {
                let (reduce, expand) = (ConvShape::new(channels, planes, 1, 1), ConvShape::new(planes, out, 1, 1));
                vec![reduce, ConvShape::new(planes, planes, 3, stride), expand]
            } else {
                vec![ConvShape::new(channels, planes, 3, stride), ConvShape::new(planes, planes, 3, 1)]
            };
            let downsample = (stride != 1 || channels != out).then(|| ConvShape::new(channels, out, 1, stride));
            channels = out;
            BlockShape { main, downsample }
        });
        stages.push(blocks.collect());
    }
    Ok(Plan { stem: ConvShape::new(in_channels, width, 7, 2), stages, features: channels })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_torchvisions_block_counts_and_strides() {
        let p = plan(34, 3, 64).unwrap();
        assert_eq!(p.stages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 4, 6, 3]);
        assert_eq!(p.stem, ConvShape { input: 3, out: 64, kernel: 7, stride: 2, padding: 3 });
        assert_eq!(p.stages[0][0].downsample, None);
        assert_eq!(
            p.stages[1][0].downsample,
            Some(ConvShape { input: 64, out: 128, kernel: 1, stride: 2, padding: 0 })
        );
        assert_eq!(p.features, 512);
        let p = plan(50, 1, 64).unwrap();
        // A bottleneck's stride sits on its 3×3 convolution, and layer1 already widens 64 → 256.
        assert_eq!(p.stages[1][0].main[1], ConvShape { input: 128, out: 128, kernel: 3, stride: 2, padding: 1 });
        assert_eq!(p.stages[0][0].downsample.map(|d| (d.out, d.stride)), Some((256, 1)));
        assert_eq!(p.features, 2048);
        assert_eq!(
            plan(19, 3, 64).unwrap_err().to_string(),
            "there is no ResNet of depth 19: crest builds [18, 34, 50]"
        );
    }
}
