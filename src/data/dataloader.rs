//! Batches over a dataset, shuffled per epoch from a seed, augmented if asked.

use std::sync::Arc;

use super::transforms::Augment;
use super::Dataset;
use crate::rng::Rng;

/// One batch of images, still u8 `[n, C, H, W]`: the model's input side converts to f32 once.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub pixels: Vec<u8>,
    pub labels: Vec<u32>,
    /// Each image's index in the dataset: what keys its augmentation, and what finds its file or label again.
    pub indices: Vec<usize>,
    pub n: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// The order a [`DataLoader`] visits its images in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Dataset order, every epoch: for class-sorted data, one class per batch (the post's bug).
    Sequential,
    /// Epoch `e` visits the images in the order of a permutation drawn from `Rng::fork(seed, e)`, so a run can be
    /// replayed and every epoch differs.
    Shuffled { seed: u64 },
}

/// Yields batches of `batch_size` (the last one may be short, and is kept), in the given order.
pub struct DataLoader {
    dataset: Arc<Dataset>,
    batch_size: usize,
    order: Order,
    /// The augmentation and the seed it draws from; `None` yields the images as they are.
    augment: Option<(Augment, u64)>,
}

impl DataLoader {
    /// Panics if `batch_size` is 0: that is a caller's bug, not bad data.
    pub fn new(dataset: Arc<Dataset>, batch_size: usize, order: Order) -> Self {
        assert!(batch_size > 0, "DataLoader batch_size must be at least 1");
        Self { dataset, batch_size, order, augment: None }
    }

    /// This loader, yielding images augmented by `aug`: image `i` of epoch `e` as `aug.apply` makes it with
    /// `transforms::image_rng(seed, e, i)`. For training data only: validation images are never augmented.
    pub fn augmented(self, aug: Augment, seed: u64) -> DataLoader {
        DataLoader { augment: (!aug.is_none()).then_some((aug, seed)), ..self }
    }

    /// The augmentation this loader applies, if any.
    pub fn augmentation(&self) -> Option<Augment> {
        self.augment.map(|(aug, _)| aug)
    }

    /// Number of batches per epoch.
    pub fn len(&self) -> usize {
        self.dataset.len().div_ceil(self.batch_size)
    }

    pub fn is_empty(&self) -> bool {
        self.dataset.is_empty()
    }

    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    fn order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        if let Order::Shuffled { seed } = self.order {
            Rng::fork(seed, epoch as u64).shuffle(&mut order);
        }
        order
    }

    pub fn batches(&self, epoch: usize) -> impl Iterator<Item = Batch> + '_ {
        let ds = &*self.dataset;
        let order = self.order(epoch);
        (0..self.len()).map(move |b| {
            let idx = &order[b * self.batch_size..((b + 1) * self.batch_size).min(order.len())];
            let pixels = match self.augment {
                Some((aug, seed)) => {
                    let mut pixels = vec![0; idx.len() * ds.item_len()];
                    // Owned images are read and written into the batch in one pass; mapped ones are read from
                    // their file first (`Dataset::gather`).
                    let read = if ds.pixels.is_mapped() { ds.gather(idx) } else { Vec::new() };
                    let images: Vec<&[u8]> = match read.is_empty() {
                        true => idx.iter().map(|&i| ds.image(i)).collect(),
                        false => read.chunks_exact(ds.item_len()).collect(),
                    };
                    aug.augment_into(&images, idx, [ds.channels, ds.height, ds.width], seed, epoch, &mut pixels);
                    pixels
                }
                None => ds.gather(idx),
            };
            Batch::of(ds, idx, pixels)
        })
    }
}

impl Batch {
    /// Images `idx` of `ds`, whose pixels, in that order, are `pixels` (copied from `ds`, or augmented).
    pub(crate) fn of(ds: &Dataset, idx: &[usize], pixels: Vec<u8>) -> Batch {
        Batch {
            pixels,
            labels: idx.iter().map(|&i| ds.labels[i]).collect(),
            indices: idx.to_vec(),
            n: idx.len(),
            channels: ds.channels,
            height: ds.height,
            width: ds.width,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten 1x1x1 images whose pixel is their index; the first five class 0, the rest class 1.
    fn loader(order: Order) -> DataLoader {
        let ds = Dataset {
            pixels: (0..10).collect(),
            labels: (0..10).map(|i| (i >= 5) as u32).collect(),
            classes: vec!["a".into(), "b".into()],
            channels: 1,
            height: 1,
            width: 1,
            paths: Default::default(),
        };
        DataLoader::new(Arc::new(ds), 4, order)
    }

    fn visit_order(dl: &DataLoader, epoch: usize) -> Vec<u8> {
        dl.batches(epoch).flat_map(|b| b.pixels).collect()
    }

    #[test]
    fn batches_keep_last_partial() {
        let dl = loader(Order::Sequential);
        assert_eq!(dl.len(), 3);
        let batches: Vec<Batch> = dl.batches(0).collect();
        assert_eq!(batches.iter().map(|b| b.n).collect::<Vec<_>>(), vec![4, 4, 2]);
        assert_eq!(batches[2].pixels, vec![8, 9]);
        assert_eq!(batches[2].labels, vec![1, 1]);
        assert_eq!((batches[0].channels, batches[0].height, batches[0].width), (1, 1, 1));
        // Unshuffled, class-sorted data gives single-class batches: the bug the post shows.
        assert_eq!(batches[0].labels, vec![0, 0, 0, 0]);
        assert_eq!(visit_order(&dl, 3), (0..10).collect::<Vec<u8>>());
    }

    #[test]
    fn shuffle_is_seeded_per_epoch() {
        let dl = loader(Order::Shuffled { seed: 7 });
        let e0 = visit_order(&dl, 0);
        assert_eq!(e0, visit_order(&loader(Order::Shuffled { seed: 7 }), 0));
        assert_ne!(e0, visit_order(&dl, 1));
        assert_ne!(e0, visit_order(&loader(Order::Shuffled { seed: 8 }), 0));
        let mut sorted = e0.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<u8>>());
        // Labels and dataset indices travel with their images.
        for b in dl.batches(0) {
            assert!(b.pixels.iter().zip(&b.labels).all(|(&p, &l)| (p >= 5) as u32 == l));
            assert_eq!(b.indices, b.pixels.iter().map(|&p| p as usize).collect::<Vec<_>>());
        }
        let first = dl.batches(1).next().unwrap().take(3);
        assert_eq!(first.indices.len(), 3);
        assert_eq!(first.indices, first.pixels.iter().map(|&p| p as usize).collect::<Vec<_>>());
    }
}
