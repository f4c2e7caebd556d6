//! A decoded image dataset: every image the same shape, stored as one contiguous u8 buffer.

use super::{Paths, Pixels};

/// Images as u8 `[N, C, H, W]` (row-major), their class indices, and the class names.
///
/// Pixels stay u8 here: a quarter of the memory of f32, and the scaling to [0, 1] happens once, where a batch is
/// turned into a tensor. They are this dataset's own, or read from a decoded-image cache file's mapping (`cache`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dataset {
    pub pixels: Pixels,
    pub labels: Vec<u32>,
    pub classes: Vec<String>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Each image's file, for the datasets read from files one image each (an image folder); empty otherwise (IDX
    /// files, datasets made in code). Kept in step with `labels` by `subset` and by the splits.
    pub paths: Paths,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image: C*H*W.
    pub fn item_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Image `i` as `[C, H, W]`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.item_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// A copy of the images at `idx`, in that order, with the same classes and shape.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let mut pixels = Vec::with_capacity(idx.len() * self.item_len());
        for &i in idx {
            pixels.extend_from_slice(self.image(i));
        }
        Dataset {
            pixels: pixels.into(),
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes.clone(),
            channels: self.channels,
            height: self.height,
            width: self.width,
            paths: if self.paths.is_empty() { Paths::default() } else { self.paths.subset(idx) },
        }
    }

    /// This dataset's images, then `other`'s: the whole of a split folder. `None` when their shapes or classes
    /// differ.
    pub fn concat(mut self, other: Dataset) -> Option<Dataset> {
        let same_kind = |d: &Dataset| (d.classes.clone(), d.channels, d.height, d.width);
        if other.is_empty() {
            return Some(self);
        }
        if self.is_empty() {
            return Some(other);
        }
        if same_kind(&self) != same_kind(&other) || self.paths.is_empty() != other.paths.is_empty() {
            return None;
        }
        self.pixels.to_mut().extend_from_slice(&other.pixels);
        self.labels.extend_from_slice(&other.labels);
        self.paths.extend(other.paths);
        Some(self)
    }

    /// Images `idx`, in that order, as one buffer: read from a cache file with `pread`, not through its mapping
    /// (`Pixels::copy_to`), so a batch costs resident memory for itself alone.
    pub fn gather(&self, idx: &[usize]) -> Vec<u8> {
        let n = self.item_len();
        let mut out = vec![0; idx.len() * n];
        for (&i, slot) in idx.iter().zip(out.chunks_exact_mut(n.max(1))) {
            self.pixels.copy_to(i * n..(i + 1) * n, slot);
        }
        out
    }

    /// Lets the pages of images `idx`, just read through `image`, leave resident memory when they are mapped from
    /// a cache file (`Pixels::release`): for passes over the images in order, which would otherwise make a data
    /// set larger than memory resident.
    pub fn release(&self, idx: &[usize]) {
        let n = self.item_len();
        idx.iter().for_each(|&i| self.pixels.release(i * n..(i + 1) * n));
    }

    /// Calls `f` on every image in order, each given back once read ([`Dataset::release`]): a pass over the whole
    /// data set (a checksum) that reads a mapped cache file through instead of making it resident.
    pub fn read_through(&self, mut f: impl FnMut(&[u8])) {
        for i in 0..self.len() {
            f(self.image(i));
            self.release(&[i]);
        }
    }

    /// Images per class, indexed like `classes`.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// Keep only the images whose `keep` flag is set, in order, compacting in place: a split or a skipped file then
    /// costs no second copy of the whole pixel buffer.
    pub(crate) fn retain(&mut self, keep: &[bool]) {
        let n = self.item_len();
        let pixels = self.pixels.to_mut();
        let mut kept = 0;
        for (i, _) in keep.iter().enumerate().filter(|(_, &k)| k) {
            if kept != i {
                pixels.copy_within(i * n..(i + 1) * n, kept * n);
                self.labels[kept] = self.labels[i];
            }
            kept += 1;
        }
        pixels.truncate(kept * n);
        pixels.shrink_to_fit();
        self.labels.truncate(kept);
        self.paths.retain(keep);
    }
}

/// A zeroed buffer for `n` images of `item_len` bytes, or an error instead of an abort when it cannot be had (a
/// huge `size` asked for by mistake, too many images for the memory).
pub(crate) fn pixel_buffer(n: usize, item_len: usize) -> crate::Result<Vec<u8>> {
    let fail = || crate::Error::Data(format!("not enough memory for {n} images of {item_len} bytes each"));
    let len = n.checked_mul(item_len).ok_or_else(fail)?;
    let mut pixels = Vec::new();
    pixels.try_reserve_exact(len).map_err(|_| fail())?;
    pixels.resize(len, 0);
    Ok(pixels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn tiny() -> Dataset {
        // Three 1x1x2 images whose pixel values encode their index.
        Dataset {
            pixels: vec![0, 1, 10, 11, 20, 21].into(),
            labels: vec![0, 1, 1],
            classes: vec!["a".into(), "b".into()],
            channels: 1,
            height: 1,
            width: 2,
            paths: Paths::default(),
        }
    }

    #[test]
    fn indexing_subset_and_counts() {
        let ds = tiny();
        assert_eq!((ds.len(), ds.item_len(), ds.is_empty()), (3, 2, false));
        assert_eq!(ds.image(1), &[10, 11]);
        assert_eq!(ds.class_counts(), vec![1, 2]);
        let sub = ds.subset(&[2, 0]);
        assert_eq!(sub.pixels, vec![20, 21, 0, 1]);
        assert_eq!(sub.labels, vec![1, 0]);
        assert_eq!(sub.classes, ds.classes);
        assert!(ds.subset(&[]).is_empty());
        let mut kept = ds.clone();
        kept.retain(&[false, true, true]);
        assert_eq!(kept, ds.subset(&[1, 2]));
        assert_eq!(pixel_buffer(2, 3).unwrap(), vec![0; 6]);
        assert!(pixel_buffer(usize::MAX / 2, 4).is_err());
    }

    #[test]
    fn paths_stay_in_step_with_labels() {
        let paths = |names: &[&str]| names.iter().map(PathBuf::from).collect::<Paths>();
        let ds = Dataset { paths: paths(&["x", "y", "z"]), ..tiny() };
        assert_eq!(ds.subset(&[2, 0]).paths, paths(&["z", "x"]));
        let mut kept = ds.clone();
        kept.retain(&[true, false, true]);
        assert_eq!((kept.labels, kept.paths), (vec![0, 1], paths(&["x", "z"])));
        // A dataset without paths keeps none.
        assert!(tiny().subset(&[1]).paths.is_empty());
    }

    #[test]
    fn concat_appends_alike_datasets() {
        let both = tiny().concat(tiny().subset(&[2])).unwrap();
        assert_eq!((both.pixels.to_vec(), both.labels), (vec![0, 1, 10, 11, 20, 21, 20, 21], vec![0, 1, 1, 1]));
        assert_eq!(tiny().concat(Dataset::default()), Some(tiny()));
        assert_eq!(Dataset::default().concat(tiny()), Some(tiny()));
        assert_eq!(tiny().concat(Dataset { channels: 2, width: 1, ..tiny() }), None);
        assert_eq!(tiny().concat(Dataset { classes: vec!["a".into()], ..tiny() }), None);
    }
}
