//! The ranks `crest train` and `crest bench` train with: under `mpirun`, in a build with `--features mpi`, MPI's
//! world; else this process alone. Rank 0 prints, saves and reports; the others train silently beside it.

use crest::dist::Communicator;
use crest::{Error, Result};
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

/// Ends the process with `code` after a command failed with `e` (its line already printed). A stop request reaches
/// each rank at a batch of its own, and a rank that left MPI normally would leave the others waiting in that
/// batch's sum: on several ranks it ends the whole job. Other errors come to every rank together (the checks before
/// training, see `train::load`; a diverging loss, which is the sum's) or after the last sum, and leave MPI
/// normally, so that every rank's line gets out.
pub fn exit(world: World, e: &Error, code: i32) -> ! {
    if world.size() > 1 && matches!(e, Error::Interrupted { .. }) {
        world.abort(code);
    }
    drop(world);
    std::process::exit(code)
}

/// This process alone, for the commands that never train data-parallel (`lr-find`).
pub fn solo() -> World {
    Arc::new(crest::dist::Solo)
}
