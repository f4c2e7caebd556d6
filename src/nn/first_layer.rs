//! A pretrained first convolution for images of another number of channels (fastai's `_update_first_layer`): a
//! model pretrained on RGB (or greyscale) images fine-tuned on greyscale (or RGBA) ones keeps its first filters'
//! learned shapes instead of starting that layer from scratch.

use crate::{Error, Result, Tensor};

/// The conv weight `[out, in, k, k]` remade for `channels` input channels:
/// - 1 channel: the sum over the input channels (a grey image is R = G = B, which the summed filter sees as the
///   RGB filters saw it);
/// - fewer than `in` (but more than 1): the first `channels` filters, scaled by in/channels (fastai's 2-from-RGB
///   case: × 1.5);
/// - more, from 1: the grey filter copied to every channel, divided by their number, so an image whose channels
///   are equal gives the pretrained response;
/// - more, from several: the pretrained filters for the first `in` channels and zeros for the rest (fastai's RGBA
///   from RGB: the extra channel starts ignored and is learned).
///
/// A weight of another rank, or 0 channels, is refused.
pub fn adapt_first_layer(weight: &Tensor, channels: usize) -> Result<Tensor> {
    let shape = weight.shape();
    if shape.len() != 4 || shape[1] == 0 || channels == 0 {
        return Err(Error::Shape(format!(
            "a first layer adapts from a conv weight [out, in, k, k] to at least 1 channel, not {shape:?} to {channels}"
        )));
    }
    let (out, from, k2) = (shape[0], shape[1], shape[2] * shape[3]);
    let w = weight.data();
    let at = |o: usize, c: usize, i: usize| w[(o * from + c) * k2 + i];
    let mut adapted = vec![0.0f32; out * channels * k2];
    for o in 0..out {
        for c in 0..channels {
            for i in 0..k2 {
                adapted[(o * channels + c) * k2 + i] = match () {
                    _ if channels == 1 => (0..from).map(|f| at(o, f, i)).sum(),
                    _ if channels <= from => at(o, c, i) * from as f32 / channels as f32,
                    _ if from == 1 => at(o, 0, i) / channels as f32,
                    _ if c < from => at(o, c, i),
                    _ => 0.0,
                };
            }
        }
    }
    Ok(Tensor::from_vec(adapted, &[out, channels, shape[2], shape[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_summed_scaled_copied_or_zeroed_as_fastai() {
        // One output filter of 1×1 over RGB: (1, 2, 3).
        let rgb = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[1, 3, 1, 1]);
        assert_eq!(adapt_first_layer(&rgb, 1).unwrap().to_vec(), [6.0]);
        assert_eq!(adapt_first_layer(&rgb, 2).unwrap().to_vec(), [1.5, 3.0]);
        assert_eq!(adapt_first_layer(&rgb, 3).unwrap().to_vec(), [1.0, 2.0, 3.0]);
        assert_eq!(adapt_first_layer(&rgb, 4).unwrap().to_vec(), [1.0, 2.0, 3.0, 0.0]);
        let grey = Tensor::from_vec(vec![4.0, 8.0], &[2, 1, 1, 1]);
        assert_eq!(adapt_first_layer(&grey, 4).unwrap().to_vec(), [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]);
        assert_eq!(
            adapt_first_layer(&grey, 0).unwrap_err().to_string(),
            "a first layer adapts from a conv weight [out, in, k, k] to at least 1 channel, not [2, 1, 1, 1] to 0"
        );
    }
}
