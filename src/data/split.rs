//! The seeded, stratified train/valid split.

use super::Dataset;
use crate::rng::Rng;
use crate::{Error, Result};

pub(crate) fn check_valid_pct(valid_pct: f32) -> Result<()> {
    if !(0.0..1.0).contains(&valid_pct) {
        return Err(Error::InvalidArgument(format!("valid_pct must be in [0, 1), not {valid_pct}")));
    }
    Ok(())
}

/// Which items go to the validation set: per class, `round(n * valid_pct)` of its items (at least one when the class
/// has two or more and `valid_pct > 0`, and never its last one), drawn with a per-class fork of `seed` so that one
/// class's size does not change another's draw.
pub(crate) fn stratified(labels: &[u32], n_classes: usize, valid_pct: f32, seed: u64) -> Vec<bool> {
    let mut by_class = vec![Vec::new(); n_classes];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let mut is_valid = vec![false; labels.len()];
    for (class, mut idx) in by_class.into_iter().enumerate() {
        let n = idx.len();
        let mut take = (n as f64 * valid_pct as f64).round() as usize;
        if valid_pct > 0.0 && n >= 2 {
            take = take.clamp(1, n - 1);
        } else if n < 2 {
            take = 0;
        }
        Rng::fork(seed, class as u64).shuffle(&mut idx);
        for &i in &idx[..take] {
            is_valid[i] = true;
        }
    }
    is_valid
}

/// Split into (train, valid), both keeping the dataset's order (class-sorted, then file-sorted): shuffling is the
/// DataLoader's job, and a loader that does not shuffle should see the data as the post's did.
pub(crate) fn partition(mut ds: Dataset, is_valid: &[bool]) -> (Dataset, Dataset) {
    let valid_idx: Vec<usize> = (0..ds.len()).filter(|&i| is_valid[i]).collect();
    let valid = ds.subset(&valid_idx);
    let keep: Vec<bool> = is_valid.iter().map(|v| !v).collect();
    ds.retain(&keep);
    (ds, valid)
}

/// The note that says how the split was made.
pub(crate) fn note(valid_pct: f32, seed: u64) -> String {
    if valid_pct == 0.0 {
        return "split: none (valid_pct 0), empty validation set".into();
    }
    let pct = (valid_pct as f64 * 1e4).round() / 1e2;
    format!("split: {pct}% random, stratified, seed {seed}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_counts_and_determinism() {
        // Classes of 10, 5, 1 and 2 items.
        let labels: Vec<u32> = [vec![0; 10], vec![1; 5], vec![2; 1], vec![3; 2]].concat();
        let v = stratified(&labels, 4, 0.2, 42);
        let count = |c: u32| labels.iter().zip(&v).filter(|(&l, &x)| l == c && x).count();
        assert_eq!([count(0), count(1), count(2), count(3)], [2, 1, 0, 1]);
        assert_eq!(v, stratified(&labels, 4, 0.2, 42));
        assert_ne!(v, stratified(&labels, 4, 0.2, 43));
        // A large fraction still leaves each class one training item.
        let v = stratified(&labels, 4, 0.99, 1);
        assert_eq!(v.iter().filter(|&&x| !x).count(), 4);
        assert!(stratified(&labels, 4, 0.0, 1).iter().all(|&x| !x));
    }

    #[test]
    fn partition_keeps_order() {
        let ds = Dataset {
            pixels: (0..6).collect(),
            labels: vec![0, 0, 0, 1, 1, 1],
            classes: vec!["a".into(), "b".into()],
            channels: 1,
            height: 1,
            width: 1,
            paths: Default::default(),
        };
        let (train, valid) = partition(ds, &[false, true, false, true, false, true]);
        assert_eq!((train.pixels.to_vec(), train.labels), (vec![0, 2, 4], vec![0, 0, 1]));
        assert_eq!((valid.pixels.to_vec(), valid.labels), (vec![1, 3, 5], vec![0, 1, 1]));
    }

    #[test]
    fn valid_pct_range() {
        assert!(check_valid_pct(0.0).is_ok() && check_valid_pct(0.5).is_ok());
        for bad in [1.0, -0.1, f32::NAN] {
            assert!(check_valid_pct(bad).is_err());
        }
    }
}
