//! crest: image classifiers built from scratch.
pub mod data;
pub mod rng;
