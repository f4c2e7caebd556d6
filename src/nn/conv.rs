//! `Conv2d`: weight [out, in, k, k] and an optional bias [out], PyTorch's layout and initialisation.

use super::{kaiming_uniform, LayerSpec, Module};
use crate::rng::Rng;
use crate::{Error, Result, Tensor};

pub struct Conv2d {
    pub weight: Tensor,
    /// `None` for a convolution followed by a BatchNorm, whose β does a bias's work (torchvision's ResNets).
    pub bias: Option<Tensor>,
    pub stride: usize,
    pub padding: usize,
}

impl Conv2d {
    /// A `kernel_size`×`kernel_size` convolution with stride 1 and no padding (PyTorch's defaults; set them with
    /// [`Conv2d::stride`] and [`Conv2d::padding`]), initialised as PyTorch does: U(±1/√fan_in).
    ///
    /// ```
    /// # let mut rng = crest::rng::Rng::new(0);
    /// let conv = crest::nn::Conv2d::new(3, 32, 3, &mut rng).padding(1);
    /// ```
    pub fn new(in_channels: usize, out_channels: usize, kernel_size: usize, rng: &mut Rng) -> Conv2d {
        let fan_in = in_channels * kernel_size * kernel_size;
        Conv2d {
            weight: kaiming_uniform(&[out_channels, in_channels, kernel_size, kernel_size], fan_in, rng),
            bias: Some(kaiming_uniform(&[out_channels], fan_in, rng)),
            stride: 1,
            padding: 0,
        }
    }

    /// A convolution over a given weight `[out, in, k, k]`, without bias, stride 1 and no padding.
    pub fn from_weight(weight: Tensor) -> Conv2d {
        let w = weight.shape();
        assert!(w.len() == 4 && w[2] == w[3], "Conv2d: weight {w:?} is not [out, in, k, k]");
        Conv2d { weight, bias: None, stride: 1, padding: 0 }
    }

    pub fn stride(mut self, stride: usize) -> Conv2d {
        assert!(stride > 0, "Conv2d stride must be at least 1");
        self.stride = stride;
        self
    }

    /// Zero padding on every side.
    pub fn padding(mut self, padding: usize) -> Conv2d {
        self.padding = padding;
        self
    }

    fn dims(&self) -> (usize, usize, usize) {
        let w = self.weight.shape();
        (w[1], w[0], w[2])
    }

    pub(crate) fn shape_after(&self, input: &[usize]) -> Result<Vec<usize>> {
        let (cin, cout, k) = self.dims();
        conv2d_output(cin, cout, k, self.stride, self.padding, input)
    }
}

/// The output shape of a convolution for one example of `input` shape, or why it can't take it: what the layer
/// tells, and what a [`LayerSpec`] is checked with before anything is built (so every number may be absurd).
pub(crate) fn conv2d_output(
    cin: usize,
    cout: usize,
    k: usize,
    s: usize,
    p: usize,
    input: &[usize],
) -> Result<Vec<usize>> {
    let name = LayerSpec::Conv2d { in_channels: cin, out_channels: cout, kernel_size: k, stride: s, padding: p };
    let padded = |x: usize| p.checked_mul(2).and_then(|both| x.checked_add(both));
    match *input {
        _ if cin == 0 || cout == 0 || k == 0 || s == 0 => {
            Err(format!("{name} needs channels, kernel size and stride of at least 1"))
        }
        [c, _, _] if c != cin => Err(format!("{name} needs {cin} input channels, got input {input:?}")),
        [_, h, w] => match (padded(h), padded(w)) {
            (Some(ph), Some(pw)) if ph >= k && pw >= k => Ok(vec![cout, (ph - k) / s + 1, (pw - k) / s + 1]),
            (Some(_), Some(_)) => Err(format!(
                "{name} needs images of at least {0}x{0} after padding, got input {input:?}",
                k.saturating_sub(2 * p)
            )),
            _ => Err(format!("{name} pads input {input:?} beyond any size")),
        },
        _ => Err(format!("{name} needs input [channels, height, width], got {input:?}")),
    }
    .map_err(Error::Shape)
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.conv2d(&self.weight, self.bias.as_ref(), self.stride, self.padding)
    }

    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let bias = self.bias.iter().map(|b| ("bias".to_string(), b.clone()));
        std::iter::once(("weight".to_string(), self.weight.clone())).chain(bias).collect()
    }

    /// `None` without a bias: [`LayerSpec::Conv2d`] always has one, and a model of bias-free convolutions
    /// ([`super::ResNet`]) describes itself as a whole.
    fn spec(&self) -> Option<LayerSpec> {
        let (in_channels, out_channels, kernel_size) = self.dims();
        self.bias.as_ref()?;
        Some(LayerSpec::Conv2d { in_channels, out_channels, kernel_size, stride: self.stride, padding: self.padding })
    }

    fn output_shape(&self, input: &[usize]) -> Option<Result<Vec<usize>>> {
        Some(self.shape_after(input))
    }
}
