//! A model's whole state at one moment: its parameters, its buffers (BatchNorm's running statistics) and where its
//! random generators are (Dropout's masks). `lr_find` puts it back after its sweep, as fastai reloads the model it
//! saved before; a checkpoint stores it.

use crate::model_io;
use crate::nn::Module;
use crate::rng::Rng;
use std::sync::PoisonError;

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ModelSnapshot {
    /// Parameters, then buffers, by their `state_dict` names, with their shapes.
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    pub rngs: Vec<(String, u64)>,
}

impl ModelSnapshot {
    pub fn take(model: &dyn Module) -> ModelSnapshot {
        let tensors = model_io::state(model).into_iter().map(|(n, t)| (n, t.shape().to_vec(), t.to_vec())).collect();
        let rngs = model
            .named_rngs()
            .into_iter()
            .map(|(n, r)| (n, r.lock().unwrap_or_else(PoisonError::into_inner).state()))
            .collect();
        ModelSnapshot { tensors, rngs }
    }

    /// Puts the state back into `model`, which must be the model it was taken from or one built the same way
    /// (a checkpoint checks that first: see [`ModelSnapshot::mismatch`]).
    pub fn restore(&self, model: &dyn Module) {
        for ((_, t), (_, _, values)) in model_io::state(model).iter().zip(&self.tensors) {
            t.data_mut().copy_from_slice(values);
        }
        for ((_, r), &(_, state)) in model.named_rngs().iter().zip(&self.rngs) {
            *r.lock().unwrap_or_else(PoisonError::into_inner) = Rng::new(state);
        }
    }

    /// What in this snapshot does not fit `model` (a tensor or generator missing, extra, or of another shape), as
    /// the end of a sentence; `None` when [`ModelSnapshot::restore`] can put it back.
    pub fn mismatch(&self, model: &dyn Module) -> Option<String> {
        let named = model_io::state(model);
        if named.len() != self.tensors.len() {
            return Some(format!("it holds {} tensors; the model has {}", self.tensors.len(), named.len()));
        }
        for ((name, t), (stored, shape, values)) in named.iter().zip(&self.tensors) {
            if name != stored || t.shape() != shape.as_slice() || values.len() != t.numel() {
                return Some(format!("it holds {stored} {shape:?} where the model has {name} {:?}", t.shape()));
            }
        }
        let rngs: Vec<String> = model.named_rngs().into_iter().map(|(n, _)| n).collect();
        let stored: Vec<&String> = self.rngs.iter().map(|(n, _)| n).collect();
        if rngs.iter().collect::<Vec<_>>() != stored {
            return Some(format!("its random generators are {stored:?}; the model's are {rngs:?}"));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{BatchNorm, Dropout, Linear, Sequential};
    use crate::Tensor;

    #[test]
    fn restoring_puts_back_weights_running_stats_and_dropout_masks() {
        let rng = &mut Rng::new(3);
        let model =
            Sequential::default().push(Linear::new(4, 3, rng)).push(BatchNorm::new(3)).push(Dropout::new(0.5, rng));
        let x = Tensor::from_vec((0..8).map(|v| v as f32 / 8.0).collect(), &[2, 4]);
        let snapshot = ModelSnapshot::take(&model);
        assert_eq!(snapshot.rngs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["2.rng"]);
        let first = model.forward(&x).to_vec();
        model.parameters()[0].data_mut()[0] = 9.0;
        model.forward(&x);
        assert_ne!(ModelSnapshot::take(&model), snapshot);
        snapshot.restore(&model);
        assert_eq!(ModelSnapshot::take(&model), snapshot);
        // The same weights, running statistics and Dropout mask: the same output, bit for bit.
        assert_eq!(model.forward(&x).to_vec(), first);

        let other = Sequential::default().push(Linear::new(4, 2, rng));
        assert_eq!(snapshot.mismatch(&model), None);
        assert_eq!(snapshot.mismatch(&other).unwrap(), "it holds 6 tensors; the model has 2");
    }
}
