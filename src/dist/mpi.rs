//! The [`Communicator`] over MPI's world (`--features mpi`): the ranks `mpirun -np N` started.

use mpi::collective::SystemOperation;
use mpi::environment::{Threading, Universe};
use mpi::traits::{Communicator as _, CommunicatorCollectives, Root};

use super::Communicator;
use crate::{Error, Result};

/// MPI, joined for the life of this value: dropping it finalises MPI, which every rank must do before it exits
/// (a rank that exits without it is reported by `mpirun` as failed, and the job is ended).
pub struct MpiWorld {
    universe: Universe,
}

impl MpiWorld {
    /// Joins the ranks `mpirun` started (or, run without `mpirun`, a world of this process alone). MPI is called
    /// by one thread at a time, not always the one that joined it (the command runs on a worker of the thread
    /// pool): MPI's "serialized" level.
    pub fn join() -> Result<MpiWorld> {
        let (universe, level) = mpi::initialize_with_threading(Threading::Serialized)
            .ok_or_else(|| Error::InvalidArgument("MPI was already initialised in this process".into()))?;
        if matches!(level, Threading::Single | Threading::Funneled) {
            return Err(Error::InvalidArgument(format!(
                "this MPI library offers threads only {level:?} support; crest needs Serialized"
            )));
        }
        Ok(MpiWorld { universe })
    }
}

impl Communicator for MpiWorld {
    fn rank(&self) -> usize {
        self.universe.world().rank() as usize
    }

    fn size(&self) -> usize {
        self.universe.world().size() as usize
    }

    fn all_reduce_sum(&self, values: &mut [f32]) {
        let mine = values.to_vec();
        self.universe.world().all_reduce_into(&mine[..], values, SystemOperation::sum());
    }

    fn all_reduce_sum_f64(&self, values: &mut [f64]) {
        let mine = values.to_vec();
        self.universe.world().all_reduce_into(&mine[..], values, SystemOperation::sum());
    }

    fn broadcast(&self, values: &mut [f32]) {
        self.universe.world().process_at_rank(0).broadcast_into(values);
    }

    fn all_gather(&self, values: &[u64]) -> Vec<u64> {
        let world = self.universe.world();
        let mut all = vec![0u64; values.len() * world.size() as usize];
        world.all_gather_into(values, &mut all[..]);
        all
    }

    fn abort(&self, code: i32) -> ! {
        self.universe.world().abort(code)
    }
}
