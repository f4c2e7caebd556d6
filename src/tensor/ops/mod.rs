//! The differentiable ops: each forward sits beside the rule that sends its gradient back.
mod binary;
mod compare;
mod matmul;
mod reduce;
mod shape;
mod unary;

pub(crate) use unary::sigmoid;
