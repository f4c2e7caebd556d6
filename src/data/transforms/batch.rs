//! Augmenting a batch: its images in parallel, each from a generator keyed by (seed, epoch, dataset index), so the
//! bytes depend on neither the thread count nor which batch an image lands in.

use rayon::prelude::*;

use super::Augment;
use crate::data::Batch;
use crate::rng::Rng;

/// Keeps augmentation's generators apart from the other streams forked from a run's seed (shuffling, the model's
/// initialisation).
const AUGMENT_STREAM: u64 = 0xA06E_17A7_E5EE_D5ED;

/// The generator that augments dataset image `index` in `epoch` of a run seeded `seed`.
pub fn image_rng(seed: u64, epoch: usize, index: usize) -> Rng {
    let run = Rng::fork(seed, AUGMENT_STREAM).next_u64();
    let epoch = Rng::fork(run, epoch as u64).next_u64();
    Rng::fork(epoch, index as u64)
}

impl Augment {
    /// Augments every image of `batch` in place, in parallel, image `k` with `image_rng(seed, epoch,
    /// batch.indices[k])`.
    pub fn augment_batch(&self, batch: &mut Batch, seed: u64, epoch: usize) {
        let item = batch.channels * batch.height * batch.width;
        let plain = std::mem::replace(&mut batch.pixels, vec![0; batch.n * item]);
        let images: Vec<&[u8]> = plain.chunks_exact(item.max(1)).collect();
        let shape = [batch.channels, batch.height, batch.width];
        self.augment_into(&images, &batch.indices, shape, seed, epoch, &mut batch.pixels);
    }

    /// Writes augmented copies of `images` (dataset images `indices`, of shape `[C, H, W]`) one after the other into
    /// `out`, in parallel.
    pub(in crate::data) fn augment_into(
        &self,
        images: &[&[u8]],
        indices: &[usize],
        [c, h, w]: [usize; 3],
        seed: u64,
        epoch: usize,
        out: &mut [u8],
    ) {
        let item = c * h * w;
        assert!(images.len() == indices.len() && out.len() == item * indices.len(), "one index and one image each");
        if item == 0 {
            return;
        }
        out.par_chunks_mut(item).zip(images.par_iter().zip(indices)).for_each(|(out, (image, &index))| {
            self.apply(image, c, h, w, &mut image_rng(seed, epoch, index), out);
        });
    }
}
