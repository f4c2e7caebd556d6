//! Data-parallel training: N processes (ranks) train one model, each on its shard of every global batch, and sum
//! their gradients before every rank's optimizer takes the same step, as PyTorch's DistributedDataParallel does.
//!
//! The [`Learner`](crate::learner::Learner) talks to the other ranks through a [`Communicator`]; the default,
//! [`Solo`], is this process alone, and the learner then runs exactly the single-process loop. MPI's
//! communicator lives in `mpi.rs`, built only with `--features mpi`, so the default build needs no MPI.
//!
//! What stays the same as one process with batch N·B: every rank sees the same global shuffle and takes its
//! contiguous part of each batch ([`shard`]); the gradient is the mean over the whole global batch, a short last
//! batch included ([`all_reduce_gradients`]); validation is sharded the same way and its sums are added up, so
//! every rank reads the same figures and its callbacks decide the same. What differs: BatchNorm normalises each
//! rank's shard in training (DDP's behaviour without SyncBatchNorm), and its running statistics are rank 0's, sent
//! to the others after every epoch's training ([`broadcast_buffers`]); Dropout draws its masks per rank.

mod digest;
mod gradients;
#[cfg(feature = "mpi")]
mod mpi;
mod shard;

pub use digest::{check_same_data, DataDigest};
pub use gradients::{all_reduce_gradients, broadcast_buffers, broadcast_parameters, check_same_weights};
#[cfg(feature = "mpi")]
pub use mpi::MpiWorld;
pub use shard::{shard, shard_range};

/// The ranks training together. Every rank must make the same calls in the same order (they are collective
/// operations); a rank that is missing leaves the others waiting, which is why a failure on one rank must end the
/// job (MPI's launcher does so when a rank exits with an error).
pub trait Communicator: Send + Sync {
    /// This process's number, 0 to `size() - 1`. Rank 0 prints, saves and reports.
    fn rank(&self) -> usize;
    /// How many ranks train together.
    fn size(&self) -> usize;
    /// Element-wise sums over the ranks, in place; every rank gets the same sums.
    fn all_reduce_sum(&self, values: &mut [f32]);
    /// Element-wise sums of f64 values over the ranks, in place (validation's sums, kept in f64 as one process
    /// keeps them).
    fn all_reduce_sum_f64(&self, values: &mut [f64]);
    /// Rank 0's `values` on every rank.
    fn broadcast(&self, values: &mut [f32]);
    /// Every rank's `values` (the same length on every rank), one after another in rank order.
    fn all_gather(&self, values: &[u64]) -> Vec<u64>;
    /// Ends every rank's process with exit status `code`, for a rank that stops while the others may be waiting
    /// for it in a collective operation.
    fn abort(&self, code: i32) -> !;
}

/// This process alone: every operation leaves its input as it is.
#[derive(Clone, Copy, Debug, Default)]
pub struct Solo;

impl Communicator for Solo {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn all_reduce_sum(&self, _values: &mut [f32]) {}

    fn all_reduce_sum_f64(&self, _values: &mut [f64]) {}

    fn broadcast(&self, _values: &mut [f32]) {}

    fn all_gather(&self, values: &[u64]) -> Vec<u64> {
        values.to_vec()
    }

    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}
