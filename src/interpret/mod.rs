//! Interpretation: fastai's `ClassificationInterpretation` — where a classifier goes wrong.
//!
//! An [`Interpretation`] holds plain numbers, one row per image: its actual class, the probability the model gave
//! each class, and its loss. From them come the confusion matrix, fastai's `most_confused` list, the top losses,
//! sklearn's per-class precision, recall and F1, and their text layouts. [`Interpretation::from_model`] fills one
//! by running a model over a dataset.

mod class_scores;
mod from_model;
mod predictions_csv;
mod report_text;

pub use class_scores::ClassScores;
pub use from_model::{image_probabilities, probabilities, Tta, LOSS_CAP};

use crate::{Error, Result};

/// The outcome of a classifier on a set of images. Row `i` of `probs` (`probs[i*k..(i+1)*k]`, `k` the number of
/// classes) is image `i`'s probabilities; `labels[i]` its actual class; `losses[i]` its loss.
///
/// The methods expect the fields to agree (as [`Interpretation::new`] checks) and panic where they don't.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Interpretation {
    pub classes: Vec<String>,
    pub labels: Vec<u32>,
    /// n × k, row-major.
    pub probs: Vec<f32>,
    pub losses: Vec<f32>,
}

impl Interpretation {
    /// Checks that the lengths agree and every label names a class.
    pub fn new(classes: Vec<String>, labels: Vec<u32>, probs: Vec<f32>, losses: Vec<f32>) -> Result<Self> {
        let (n, k) = (labels.len(), classes.len());
        if k == 0 {
            return Err(Error::InvalidArgument("an interpretation needs at least one class".into()));
        }
        if probs.len() != n * k || losses.len() != n {
            return Err(Error::InvalidArgument(format!(
                "{n} labels and {k} classes need {} probabilities and {n} losses, not {} and {}",
                n * k,
                probs.len(),
                losses.len()
            )));
        }
        if let Some(bad) = labels.iter().find(|&&l| l as usize >= k) {
            return Err(Error::InvalidArgument(format!("label {bad} is not one of the {k} classes")));
        }
        Ok(Interpretation { classes, labels, probs, losses })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i`'s probabilities, one per class.
    pub fn probs_of(&self, i: usize) -> &[f32] {
        let k = self.classes.len();
        &self.probs[i * k..(i + 1) * k]
    }

    /// Each image's predicted class: the most probable one, the first of equals (as `torch.argmax`).
    pub fn predictions(&self) -> Vec<u32> {
        (0..self.len())
            .map(|i| {
                let row = self.probs_of(i);
                (1..row.len()).fold(0, |best, c| if row[c] > row[best] { c } else { best }) as u32
            })
            .collect()
    }

    /// Counts of (actual, predicted): `matrix[actual][predicted]`, k × k.
    pub fn confusion_matrix(&self) -> Vec<Vec<usize>> {
        let k = self.classes.len();
        let mut matrix = vec![vec![0; k]; k];
        for (&actual, predicted) in self.labels.iter().zip(self.predictions()) {
            matrix[actual as usize][predicted as usize] += 1;
        }
        matrix
    }

    /// fastai's `most_confused`: the (actual, predicted, count) pairs off the diagonal with at least `min_val`
    /// images, most first; equal counts in the matrix's row-major order (fastai sorts stably).
    pub fn most_confused(&self, min_val: usize) -> Vec<(String, String, usize)> {
        let matrix = self.confusion_matrix();
        let mut pairs: Vec<(String, String, usize)> = matrix
            .iter()
            .enumerate()
            .flat_map(|(a, row)| row.iter().enumerate().map(move |(p, &count)| (a, p, count)))
            .filter(|&(a, p, count)| a != p && count >= min_val)
            .map(|(a, p, count)| (self.classes[a].clone(), self.classes[p].clone(), count))
            .collect();
        pairs.sort_by_key(|pair| std::cmp::Reverse(pair.2));
        pairs
    }

    /// The indices of the `k` images with the highest loss, highest first; equal losses by index.
    pub fn top_losses(&self, k: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.len()).collect();
        idx.sort_by(|&a, &b| self.losses[b].total_cmp(&self.losses[a]));
        idx.truncate(k);
        idx
    }

    /// sklearn's `precision_recall_fscore_support`, one entry per class (see [`ClassScores`]).
    pub fn per_class(&self) -> Vec<ClassScores> {
        let matrix = self.confusion_matrix();
        (0..self.classes.len()).map(|c| ClassScores::of_class(&matrix, c)).collect()
    }

    /// The fraction of images whose prediction is their label; `None` without images.
    pub fn accuracy(&self) -> Option<f32> {
        if self.is_empty() {
            return None;
        }
        let correct = self.labels.iter().zip(self.predictions()).filter(|(&l, p)| l == *p).count();
        Some((correct as f64 / self.len() as f64) as f32)
    }

    /// The mean of the losses; `None` without images.
    pub fn mean_loss(&self) -> Option<f32> {
        if self.is_empty() {
            return None;
        }
        Some((self.losses.iter().map(|&l| l as f64).sum::<f64>() / self.len() as f64) as f32)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Ten images of classes a, b, c, predicted [a a b c | b b a | a a b]: each row of `probs` puts 0.6 on the
    /// prediction and 0.2 on the others; losses are made up, with a tie.
    pub(crate) fn three_classes() -> Interpretation {
        let labels = vec![0, 0, 0, 0, 1, 1, 1, 2, 2, 2];
        let predicted = [0, 0, 1, 2, 1, 1, 0, 0, 0, 1];
        let probs = predicted.iter().flat_map(|&p| (0..3).map(move |c| if c == p { 0.6 } else { 0.2 })).collect();
        let losses = vec![0.5, 0.5, 1.6, 1.6, 0.5, 0.5, 1.7, 2.0, 1.6, 1.9];
        Interpretation::new(["a", "b", "c"].map(String::from).to_vec(), labels, probs, losses).unwrap()
    }

    #[test]
    fn confusion_matrix_and_most_confused_as_fastai_and_sklearn() {
        let i = three_classes();
        assert_eq!(i.predictions(), [0, 0, 1, 2, 1, 1, 0, 0, 0, 1]);
        // sklearn's confusion_matrix(y, y_pred) on the same labels.
        assert_eq!(i.confusion_matrix(), [[2, 1, 1], [1, 2, 0], [2, 1, 0]]);
        let pair = |a: &str, p: &str, n| (a.to_string(), p.to_string(), n);
        assert_eq!(
            i.most_confused(1),
            [pair("c", "a", 2), pair("a", "b", 1), pair("a", "c", 1), pair("b", "a", 1), pair("c", "b", 1)]
        );
        assert_eq!(i.most_confused(2), [pair("c", "a", 2)]);
        assert_eq!(i.most_confused(0).len(), 6, "min_val 0 lists every off-diagonal pair");
        assert_eq!(i.accuracy(), Some(0.4));
        assert!((i.mean_loss().unwrap() - 1.24).abs() < 1e-6);
    }

    #[test]
    fn top_losses_descend_with_ties_by_index() {
        let i = three_classes();
        assert_eq!(i.top_losses(5), [7, 9, 6, 2, 3]);
        assert_eq!(i.top_losses(100).len(), 10);
        assert!(i.top_losses(0).is_empty());
    }

    #[test]
    fn the_first_of_equal_probabilities_is_the_prediction() {
        let i = Interpretation::new(vec!["x".into(), "y".into()], vec![1, 0], vec![0.5, 0.5, 0.3, 0.7], vec![0.0; 2])
            .unwrap();
        assert_eq!(i.predictions(), [0, 1]);
        assert_eq!(i.accuracy(), Some(0.0));
    }

    #[test]
    fn inconsistent_inputs_and_no_images() {
        let classes = || vec!["x".to_string(), "y".to_string()];
        assert!(Interpretation::new(classes(), vec![0], vec![1.0], vec![0.0]).is_err());
        assert!(Interpretation::new(classes(), vec![0], vec![1.0, 0.0], vec![]).is_err());
        assert!(Interpretation::new(classes(), vec![2], vec![1.0, 0.0], vec![0.0]).is_err());
        assert!(Interpretation::new(vec![], vec![], vec![], vec![]).is_err());
        let empty = Interpretation::new(classes(), vec![], vec![], vec![]).unwrap();
        assert_eq!((empty.accuracy(), empty.mean_loss()), (None, None));
        assert_eq!(empty.confusion_matrix(), [[0, 0], [0, 0]]);
        assert!(empty.most_confused(1).is_empty() && empty.top_losses(9).is_empty());
    }
}
