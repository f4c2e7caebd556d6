//! The hot loops, as plain functions over slices (llm.c style): each forward beside its backward.
pub mod matmul;
pub mod matmul_u8;
