//! Which images of a global batch a rank trains on.

use std::ops::Range;

use crate::data::Batch;

/// Rank `rank`'s part of `n` images split over `size` ranks: contiguous, in rank order, sizes differing by at most
/// one (the first `n % size` ranks take one more). A batch shorter than the number of ranks leaves the last ranks
/// an empty part; they still take part in the gradient sum, adding zeros.
pub fn shard_range(n: usize, rank: usize, size: usize) -> Range<usize> {
    let (base, extra) = (n / size, n % size);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

/// Rank `rank`'s images of a global batch (the whole batch for one rank).
pub fn shard(batch: Batch, rank: usize, size: usize) -> Batch {
    let range = shard_range(batch.n, rank, size);
    batch.part(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_batch_in_order_and_differ_by_at_most_one() {
        assert_eq!(shard_range(10, 0, 1), 0..10);
        let parts: Vec<_> = (0..3).map(|r| shard_range(10, r, 3)).collect();
        assert_eq!(parts, vec![0..4, 4..7, 7..10]);
        let short: Vec<_> = (0..4).map(|r| shard_range(2, r, 4)).collect();
        assert_eq!(short, vec![0..1, 1..2, 2..2, 2..2]);
    }

    #[test]
    fn a_shard_keeps_its_images_labels_and_indices_together() {
        let batch = Batch {
            pixels: (0..10).collect(),
            labels: (0..5).collect(),
            indices: vec![9, 8, 7, 6, 5],
            n: 5,
            channels: 1,
            height: 1,
            width: 2,
        };
        let part = shard(batch, 1, 2);
        assert_eq!((part.n, part.pixels, part.labels, part.indices), (2, vec![6, 7, 8, 9], vec![3, 4], vec![6, 5]));
    }
}
