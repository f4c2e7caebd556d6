//! crest: image classifiers built from scratch.
//!
//! Two layers share one engine. The from-scratch layer is [`Tensor`] with reverse-mode autograd, in which the blog
//! post's code reads almost line for line:
//!
//! ```
//! use crest::{nn::init_params, loss::mnist_loss, rng::Rng, Tensor};
//! let mut rng = Rng::new(42);
//! let (weights, bias) = (init_params(&[3, 1], 1.0, &mut rng), init_params(&[1], 1.0, &mut rng));
//! let linear1 = |xb: &Tensor| &xb.matmul(&weights) + &bias;
//! let xb = Tensor::from_vec(vec![0.1, 0.2, 0.3, 0.9, 0.8, 0.7], &[2, 3]);
//! let yb = Tensor::from_vec(vec![1.0, 0.0], &[2, 1]);
//! let loss = mnist_loss(&linear1(&xb), &yb);
//! loss.backward();
//! assert_eq!(weights.grad().unwrap().shape(), &[3, 1]);
//! ```
//!
//! The practical layer is [`data`] (image folders, IDX files, seeded splits, `DataLoader`), [`nn`] (layers from
//! `Linear` to `Conv2d`, and layers of your own), [`loss`], [`metrics`], [`optim`], the fastai-style
//! [`learner::Learner`], [`model_io`], [`interpret`] (fastai's `ClassificationInterpretation`) and [`export`]
//! (ONNX). Every fallible call returns [`Result`], with one [`Error`] type. The `crest` command line is the package's
//! binary, built on this library alone.
pub mod alloc;
pub mod careful_write;
pub mod cpu;
pub mod data;
pub mod dist;
mod error;
pub mod export;
pub mod interpret;
pub mod interrupt;
pub mod learner;
pub mod loss;
pub mod metrics;
pub mod model_io;
pub mod nn;
pub mod optim;
mod optim_state;
mod progress;
pub mod report;
pub mod rng;
pub mod tensor;
pub mod text;

pub use error::{Error, Result};
pub use tensor::Tensor;
