//! crest: image classifiers built from scratch.
pub mod data;
pub mod rng;
pub mod cli;
pub mod learner;
pub mod loss;
pub mod metrics;
pub mod model_io;
pub mod nn;
pub mod optim;
pub mod tensor;

pub use tensor::Tensor;
