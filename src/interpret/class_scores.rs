//! Per-class precision, recall and F1, as sklearn's `precision_recall_fscore_support` and `classification_report`
//! define them.

/// One class's scores, or an average of them. Where a ratio has nothing to divide by, it is 0, as with sklearn's
/// default `zero_division` (sklearn also warns; `predicted == 0` is how to tell that a precision of 0 is that case).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassScores {
    /// Of the images predicted as this class, the fraction that are: tp / (tp + fp).
    pub precision: f32,
    /// Of the images of this class, the fraction predicted as it: tp / (tp + fn).
    pub recall: f32,
    /// The harmonic mean of precision and recall, computed as sklearn does: 2tp / (2tp + fp + fn).
    pub f1: f32,
    /// Images of this class (tp + fn).
    pub support: usize,
    /// Images predicted as this class (tp + fp).
    pub predicted: usize,
}

fn ratio(num: usize, den: usize) -> f32 {
    if den == 0 {
        0.0
    } else {
        (num as f64 / den as f64) as f32
    }
}

impl ClassScores {
    /// Class `c`'s scores from a confusion matrix (rows actual, columns predicted).
    pub(crate) fn of_class(matrix: &[Vec<usize>], c: usize) -> ClassScores {
        let tp = matrix[c][c];
        let support: usize = matrix[c].iter().sum();
        let predicted: usize = matrix.iter().map(|row| row[c]).sum();
        ClassScores {
            precision: ratio(tp, predicted),
            recall: ratio(tp, support),
            f1: ratio(2 * tp, support + predicted),
            support,
            predicted,
        }
    }

    /// sklearn's "macro avg": the unweighted mean of each score over the classes; support and predicted are totals.
    pub fn macro_average(scores: &[ClassScores]) -> ClassScores {
        Self::average(scores, |_| 1.0)
    }

    /// sklearn's "weighted avg": each score's mean weighted by the classes' support.
    pub fn weighted_average(scores: &[ClassScores]) -> ClassScores {
        Self::average(scores, |s| s.support as f64)
    }

    fn average(scores: &[ClassScores], weight: impl Fn(&ClassScores) -> f64) -> ClassScores {
        let total: f64 = scores.iter().map(&weight).sum();
        let mean = |score: fn(&ClassScores) -> f32| {
            if total == 0.0 {
                return 0.0;
            }
            (scores.iter().map(|s| score(s) as f64 * weight(s)).sum::<f64>() / total) as f32
        };
        ClassScores {
            precision: mean(|s| s.precision),
            recall: mean(|s| s.recall),
            f1: mean(|s| s.f1),
            support: scores.iter().map(|s| s.support).sum(),
            predicted: scores.iter().map(|s| s.predicted).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interpret::tests::three_classes;
    use crate::interpret::Interpretation;

    /// Rounded to sklearn's printed 4 digits.
    fn rounded(s: &ClassScores) -> [f32; 3] {
        [s.precision, s.recall, s.f1].map(|v| (v * 1e4).round() / 1e4)
    }

    /// sklearn 1.9.1's `classification_report(y, y_pred, digits=4)` on the same labels gives these numbers.
    #[test]
    fn scores_match_sklearn() {
        let scores = three_classes().per_class();
        assert_eq!(
            scores.iter().map(rounded).collect::<Vec<_>>(),
            [[0.4, 0.5, 0.4444], [0.5, 0.6667, 0.5714], [0.0, 0.0, 0.0]]
        );
        assert_eq!(scores.iter().map(|s| (s.support, s.predicted)).collect::<Vec<_>>(), [(4, 5), (3, 4), (3, 1)]);
        assert_eq!(rounded(&ClassScores::macro_average(&scores)), [0.3, 0.3889, 0.3386]);
        assert_eq!(rounded(&ClassScores::weighted_average(&scores)), [0.31, 0.4, 0.3492]);
        assert_eq!(ClassScores::weighted_average(&scores).support, 10);
    }

    /// A class never predicted has precision 0 (sklearn: "ill-defined and being set to 0.0"); one without images
    /// has recall 0.
    #[test]
    fn zero_division_gives_zero() {
        // Labels [a, b, c, c], predicted [a, b, b, b]: c is never predicted.
        let probs = [0, 1, 1, 1].iter().flat_map(|&p| (0..3).map(move |c| (c == p) as u8 as f32)).collect();
        let i = Interpretation::new(["a", "b", "c"].map(String::from).to_vec(), vec![0, 1, 2, 2], probs, vec![0.0; 4])
            .unwrap();
        let scores = i.per_class();
        assert_eq!(
            scores.iter().map(rounded).collect::<Vec<_>>(),
            [[1.0, 1.0, 1.0], [0.3333, 1.0, 0.5], [0.0, 0.0, 0.0]]
        );
        assert_eq!(scores[2].predicted, 0);
        assert_eq!(rounded(&ClassScores::macro_average(&scores)), [0.4444, 0.6667, 0.5]);
        assert_eq!(rounded(&ClassScores::weighted_average(&scores)), [0.3333, 0.5, 0.375]);
        let none = ClassScores::of_class(&[vec![0, 0], vec![0, 0]], 0);
        assert_eq!(none, ClassScores { precision: 0.0, recall: 0.0, f1: 0.0, support: 0, predicted: 0 });
        assert_eq!(ClassScores::weighted_average(&[none]).f1, 0.0);
    }
}
