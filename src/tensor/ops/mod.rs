//! The differentiable ops: each forward sits beside the rule that sends its gradient back.
mod batchnorm;
mod binary;
mod compare;
mod conv;
mod linear;
mod matmul;
mod pool;
mod reduce;
mod shape;
mod unary;

pub(crate) use linear::PackedCache;
pub(crate) use unary::sigmoid;

pub use batchnorm::BatchNormState;
