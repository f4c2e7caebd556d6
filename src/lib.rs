//! crest: image classifiers built from scratch.
pub mod data;
pub mod rng;
pub mod tensor;
