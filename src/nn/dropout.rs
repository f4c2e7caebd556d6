//! `Dropout`: while training, zero each value with probability p and scale the rest by 1/(1−p); the identity in
//! evaluation. Its masks come from a seeded generator, so runs repeat.

use super::{LayerSpec, Module};
use crate::rng::Rng;
use crate::{Result, Tensor};
use std::sync::{Mutex, PoisonError};

pub struct Dropout {
    pub p: f32,
    /// One stream for the layer, drawn from in call order (so runs repeat while one thread trains).
    rng: Mutex<Rng>,
    training: bool,
}

impl Dropout {
    pub fn new(p: f32, rng: &mut Rng) -> Dropout {
        assert!((0.0..1.0).contains(&p), "Dropout probability must be in [0, 1), got {p}");
        Dropout { p, rng: Mutex::new(Rng::new(rng.next_u64())), training: true }
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor) -> Tensor {
        if !self.training || self.p == 0.0 {
            return x.clone();
        }
        let keep = 1.0 / (1.0 - self.p);
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        let mask: Vec<f32> = (0..x.numel()).map(|_| if rng.uniform() < self.p { 0.0 } else { keep }).collect();
        x * &Tensor::from_vec(mask, x.shape())
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    fn named_rngs(&self) -> Vec<(String, &Mutex<Rng>)> {
        vec![("rng".into(), &self.rng)]
    }

    fn spec(&self) -> Option<LayerSpec> {
        Some(LayerSpec::Dropout { p: self.p })
    }

    fn output_shape(&self, input: &[usize]) -> Option<Result<Vec<usize>>> {
        Some(Ok(input.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_about_p_scales_the_rest_and_routes_gradients_through_the_mask() {
        let mut d = Dropout::new(0.25, &mut Rng::new(1));
        let x = Tensor::ones(&[10_000]).requires_grad_();
        let y = d.forward(&x);
        let kept = y.to_vec().iter().filter(|&&v| v != 0.0).count();
        assert!((7300..7700).contains(&kept), "kept {kept} of 10000");
        assert!(y.to_vec().iter().all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6));
        y.sum().backward();
        assert_eq!(x.grad().unwrap().to_vec(), y.to_vec());
        d.set_training(false);
        assert_eq!(d.forward(&x).to_vec(), x.to_vec());
    }
}
