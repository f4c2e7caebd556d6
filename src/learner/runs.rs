//! The post's closing question, why two runs of the same code differ: the logs of several runs of one recipe that
//! differ only in their seed, and the spread of a figure over them.

use super::{BatchRow, EpochRow};

/// What one run of a recipe left: its seed, and the learner's logs (for the report's curves, one per run).
#[derive(Clone, Debug)]
pub struct RunLog {
    pub seed: u64,
    pub recorder: Vec<EpochRow>,
    pub batches: Vec<BatchRow>,
}

/// A figure's spread over runs. `std` is the sample standard deviation (divided by n-1, numpy's `ddof=1`): the
/// runs are a sample of the seeds one could have drawn, and the question is how far another seed's result may
/// fall. With one run it is NaN, as numpy's is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub n: usize,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// None for no values.
    pub fn of(values: &[f32]) -> Option<Spread> {
        let n = values.len();
        let values: Vec<f64> = values.iter().map(|&v| v as f64).collect();
        let min = values.iter().copied().reduce(f64::min)?;
        let max = values.iter().copied().fold(min, f64::max);
        let mean = values.iter().sum::<f64>() / n as f64;
        let squares: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
        Some(Spread { n, mean, std: (squares / (n as f64 - 1.0)).sqrt(), min, max })
    }
}

impl std::fmt::Display for Spread {
    /// `mean 0.9850 ± 0.0021 (sample std, n-1), min 0.9830, max 0.9870`.
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "mean {:.4} ± {:.4} (sample std, n-1), min {:.4}, max {:.4}", self.mean, self.std, self.min, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_is_numpys_with_ddof_1() {
        // numpy: np.mean([0.97, 0.98, 0.99]) = 0.98, np.std([...], ddof=1) = 0.01.
        let s = Spread::of(&[0.98, 0.97, 0.99]).unwrap();
        assert_eq!((s.n, s.min as f32, s.max as f32), (3, 0.97, 0.99));
        assert!((s.mean - 0.98).abs() < 1e-7 && (s.std - 0.01).abs() < 1e-7, "{s:?}");
        assert_eq!(s.to_string(), "mean 0.9800 ± 0.0100 (sample std, n-1), min 0.9700, max 0.9900");
        assert!(Spread::of(&[0.5]).unwrap().std.is_nan());
        assert_eq!(Spread::of(&[]), None);
    }
}
