//! A pretrained first convolution, made for RGB, adapted to images of another channel count the way fastai's
//! `_load_pretrained_weights` does it (`fastai/vision/learner.py`), so that crest and fastai start fine-tuning a
//! grey or RGBA model from the same weights.

use crate::{Error, Result, Tensor};

/// `weight [out, 3, k, k]` for RGB images turned into `[out, channels, k, k]`: for 1 channel, the sum of the three
/// RGB filters (a grey image is R = G = B, so the first layer's output is unchanged); for 2, the first two filters
/// times 1.5; for 3, the weight as it is; for 4 or more, the three RGB filters, then zeros for the others (an
/// alpha channel starts out ignored).
pub fn adapt_first_layer(weight: &Tensor, channels: usize) -> Result<Tensor> {
    let &[out, 3, kh, kw] = weight.shape() else {
        return Err(Error::Shape(format!(
            "a first layer to adapt has an RGB weight [out, 3, k, k], got {:?}",
            weight.shape()
        )));
    };
    if channels == 0 {
        return Err(Error::Shape("a first layer can't be adapted to images of 0 channels".into()));
    }
    let w = weight.to_vec();
    let plane = kh * kw;
    let filter = |o: usize, c: usize| &w[(o * 3 + c) * plane..(o * 3 + c + 1) * plane];
    let mut adapted = Vec::with_capacity(out * channels * plane);
    for o in 0..out {
        match channels {
            1 => adapted.extend((0..plane).map(|i| filter(o, 0)[i] + filter(o, 1)[i] + filter(o, 2)[i])),
            2 => (0..2).for_each(|c| adapted.extend(filter(o, c).iter().map(|v| v * 1.5))),
            _ => {
                (0..3).for_each(|c| adapted.extend_from_slice(filter(o, c)));
                adapted.resize(adapted.len() + (channels - 3) * plane, 0.0);
            }
        }
    }
    Ok(Tensor::from_vec(adapted, &[out, channels, kh, kw]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapts_as_fastai_does() {
        // Two output filters of 1×2 over R, G, B.
        let w = Tensor::from_vec((1..=12).map(|v| v as f32).collect(), &[2, 3, 1, 2]);
        assert_eq!(adapt_first_layer(&w, 1).unwrap().to_vec(), [9.0, 12.0, 27.0, 30.0]);
        assert_eq!(adapt_first_layer(&w, 2).unwrap().to_vec(), [1.5, 3.0, 4.5, 6.0, 10.5, 12.0, 13.5, 15.0]);
        assert_eq!(adapt_first_layer(&w, 3).unwrap().to_vec(), w.to_vec());
        let four = adapt_first_layer(&w, 4).unwrap();
        assert_eq!(four.shape(), [2, 4, 1, 2]);
        assert_eq!(four.to_vec(), [1., 2., 3., 4., 5., 6., 0., 0., 7., 8., 9., 10., 11., 12., 0., 0.]);
        let grey = Tensor::zeros(&[2, 1, 1, 2]);
        assert_eq!(
            adapt_first_layer(&grey, 3).unwrap_err().to_string(),
            "a first layer to adapt has an RGB weight [out, 3, k, k], got [2, 1, 1, 2]"
        );
    }
}
