//! crest: image classifiers built from scratch.
pub mod cli;
pub mod data;
pub mod learner;
pub mod loss;
pub mod metrics;
pub mod model_io;
pub mod nn;
pub mod optim;
pub mod rng;
pub mod tensor;

pub use tensor::Tensor;
