//! Transfer learning's first step: a model built for new data (its own classes, perhaps its own number of
//! channels) takes a pretrained model's weights by name, all but its new head's.

use super::{adapt_first_layer, Module};
use crate::{Error, Result, Tensor};

/// Copies `pretrained`'s parameters and buffers into `fresh`'s of the same names, except those named in `head`,
/// which keep their fresh initialisation. The first convolution's weight (the first four-dimensional tensor) is
/// remade with [`adapt_first_layer`] when only its input channels differ; any other difference of names or shapes
/// is an error naming the tensor (the two models are not the same architecture, or were made for other image
/// sizes).
pub fn transfer(pretrained: &dyn Module, fresh: &dyn Module, head: &[String]) -> Result<()> {
    let state = |m: &dyn Module| {
        let mut s = m.named_parameters();
        s.extend(m.named_buffers());
        s
    };
    let from = state(pretrained);
    let first_conv = from.iter().position(|(_, t)| t.shape().len() == 4);
    for (name, to) in state(fresh).into_iter().filter(|(n, _)| !head.contains(n)) {
        let Some(i) = from.iter().position(|(n, _)| *n == name) else {
            return Err(Error::Shape(format!("the pretrained model has no {name}")));
        };
        let t = &from[i].1;
        let (have, want) = (t.shape(), to.shape());
        let values: Tensor = if have == want {
            t.clone()
        } else if Some(i) == first_conv
            && have.len() == 4
            && (have[0], have[2..].to_vec()) == (want[0], want[2..].to_vec())
        {
            adapt_first_layer(t, want[1])?
        } else {
            return Err(Error::Shape(format!("the pretrained model's {name} is {have:?}; this data needs {want:?}")));
        };
        to.data_mut().copy_from_slice(&values.data());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Arch;
    use crate::rng::Rng;

    #[test]
    fn a_cnn_for_rgba_takes_a_grey_cnns_body_and_keeps_its_new_head() {
        let grey = Arch::Cnn.spec([1, 28, 28], 10).build(&mut Rng::new(1));
        let rgba = Arch::Cnn.spec([4, 28, 28], 3).build(&mut Rng::new(2));
        let head: Vec<String> = vec!["9.weight".into(), "9.bias".into()];
        let fresh_head = rgba.named_parameters()[6].1.to_vec();
        transfer(grey.as_ref(), rgba.as_ref(), &head).unwrap();
        let (from, to) = (grey.named_parameters(), rgba.named_parameters());
        assert_eq!(to[0].1.to_vec(), adapt_first_layer(&from[0].1, 4).unwrap().to_vec());
        for i in 1..6 {
            assert_eq!((&to[i].0, to[i].1.to_vec()), (&from[i].0, from[i].1.to_vec()));
        }
        assert_eq!(to[6].1.to_vec(), fresh_head);
        // Another image size changes the first Linear's shape: refused, naming it.
        let big = Arch::Cnn.spec([1, 32, 32], 3).build(&mut Rng::new(3));
        let err = transfer(grey.as_ref(), big.as_ref(), &head).unwrap_err().to_string();
        assert!(err.contains("the pretrained model's 7.weight is [128, 3136]; this data needs [128, 4096]"), "{err}");
    }
}
