//! The summary statistics and histogram the post prints for its parameters and gradients.

use super::Tensor;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub mean: f32,
    pub std: f32,
    pub min: f32,
    pub max: f32,
    pub median: f32,
}

impl Tensor {
    /// Mean, std (unbiased, as `torch.std`), min, max and median (the lower middle value, as `torch.median`).
    pub fn summary(&self) -> Summary {
        let d = self.data();
        assert!(!d.is_empty(), "summary of an empty tensor");
        let n = d.len() as f64;
        let mean = d.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = d.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        let mut sorted = d.to_vec();
        sorted.sort_by(f32::total_cmp);
        Summary {
            mean: mean as f32,
            std: var.sqrt() as f32,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            median: sorted[(sorted.len() - 1) / 2],
        }
    }

    /// Counts in `bins` equal-width bins over [min, max] (`torch.histc`).
    pub fn histogram(&self, bins: usize) -> Histogram {
        let s = self.summary();
        let mut counts = vec![0usize; bins];
        let width = (s.max - s.min) / bins as f32;
        for &v in self.data().iter() {
            let b = if width > 0.0 { ((v - s.min) / width) as usize } else { 0 };
            counts[b.min(bins - 1)] += 1;
        }
        Histogram { lo: s.min, hi: s.max, counts }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Mean: {:.4}  Std: {:.4}  Min: {:.4}  Max: {:.4}  Median: {:.4}",
            self.mean, self.std, self.min, self.max, self.median
        )
    }
}

#[derive(Clone, Debug)]
pub struct Histogram {
    pub lo: f32,
    pub hi: f32,
    pub counts: Vec<usize>,
}

/// One text bar per bin, scaled to the largest count.
impl fmt::Display for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let most = self.counts.iter().copied().max().unwrap_or(1).max(1);
        let width = (self.hi - self.lo) / self.counts.len() as f32;
        for (i, &c) in self.counts.iter().enumerate() {
            let lo = self.lo + width * i as f32;
            writeln!(f, "{:>11.2e} {:<40} {}", lo, "#".repeat(c * 40 / most), c)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_matches_hand_computed_values() {
        let s = Tensor::from_vec(vec![4.0, 1.0, 3.0, 2.0], &[4]).summary();
        assert_eq!((s.mean, s.min, s.max, s.median), (2.5, 1.0, 4.0, 2.0));
        assert!((s.std - 1.290_994_4).abs() < 1e-6);
    }

    #[test]
    fn histogram_counts_every_value() {
        let h = Tensor::from_vec(vec![0.0, 0.1, 0.5, 0.9, 1.0], &[5]).histogram(2);
        assert_eq!(h.counts, vec![2, 3]);
    }
}
