//! The ranks `crest train` and `crest bench` train with: under `mpirun`, in a build with `--features mpi`, MPI's
//! world; else this process alone. Rank 0 prints, saves and reports; the others train silently beside it.

use crest::dist::Communicator;
use crest::Result;
use std::sync::Arc;

/// The ranks of this run; MPI stays joined while a clone of it lives.
pub type World = Arc<dyn Communicator>;

/// This build's world: MPI's, joined now, with `--features mpi`.
#[cfg(feature = "mpi")]
pub fn join() -> Result<World> {
    Ok(Arc::new(crest::dist::MpiWorld::join()?))
}

/// This build's world: this process alone, without `--features mpi`.
#[cfg(not(feature = "mpi"))]
pub fn join() -> Result<World> {
    Ok(Arc::new(crest::dist::Solo))
}

/// This process alone, for the commands that never train data-parallel (`lr-find`).
pub fn solo() -> World {
    Arc::new(crest::dist::Solo)
}
