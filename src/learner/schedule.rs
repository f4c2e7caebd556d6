//! Learning-rate schedules: constant (`fit`), or fastai's one-cycle (`fit_one_cycle`, Smith 2018): a cosine
//! warm-up from lr/div to lr over the first `pct_start` of the steps (fastai's defaults: a quarter, from lr/25),
//! then a cosine anneal to lr/div/10⁴. Annealing means the last epochs take small steps, so the final model is not
//! a lottery ticket drawn mid-oscillation. `fine_tune` changes `pct_start` and `div`, as fastai's does.

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    Constant,
    OneCycle { pct_start: f32, div: f32 },
}

/// fastai's `div_final`: the anneal ends at lr/div_final.
const DIV_FINAL: f64 = 1e5;

impl Schedule {
    /// One-cycle with fastai's `fit_one_cycle` defaults: `pct_start` 0.25, `div` 25.
    pub const ONE_CYCLE: Schedule = Schedule::OneCycle { pct_start: 0.25, div: 25.0 };

    /// The learning rate for `step` of `total` steps, with peak (or constant) rate `lr`.
    pub fn lr(&self, lr: f32, step: usize, total: usize) -> f32 {
        let lr = lr as f64;
        let cos = |from: f64, to: f64, pct: f64| to + (from - to) * (1.0 + (std::f64::consts::PI * pct).cos()) / 2.0;
        match *self {
            Schedule::Constant => lr as f32,
            Schedule::OneCycle { pct_start, div } => {
                let (pct_start, div) = (pct_start as f64, div as f64);
                let pct = step as f64 / total.max(1) as f64;
                let v = if pct < pct_start {
                    cos(lr / div, lr, pct / pct_start)
                } else {
                    cos(lr, lr / DIV_FINAL, (pct - pct_start) / (1.0 - pct_start))
                };
                v as f32
            }
        }
    }
}

/// As the command line's summary names it: `Constant`, `OneCycle`, or `OneCycle(pct_start 0.3, div 5)` when
/// it is not fastai's default one-cycle.
impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Schedule::Constant => f.write_str("Constant"),
            s if s == Schedule::ONE_CYCLE => f.write_str("OneCycle"),
            Schedule::OneCycle { pct_start, div } => write!(f, "OneCycle(pct_start {pct_start}, div {div})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cycle_rises_to_the_peak_then_anneals() {
        let s = Schedule::ONE_CYCLE;
        assert!((s.lr(1.0, 0, 100) - 0.04).abs() < 1e-6);
        assert!((s.lr(1.0, 25, 100) - 1.0).abs() < 1e-6);
        assert!(s.lr(1.0, 99, 100) < 1e-3);
        assert!(s.lr(1.0, 60, 100) < s.lr(1.0, 40, 100));
        assert_eq!(Schedule::Constant.lr(0.1, 7, 100), 0.1);
        // fine_tune's unfrozen phase: from lr/5, peak at 30%.
        let s = Schedule::OneCycle { pct_start: 0.3, div: 5.0 };
        assert!((s.lr(1.0, 0, 100) - 0.2).abs() < 1e-6 && (s.lr(1.0, 30, 100) - 1.0).abs() < 1e-6);
    }
}
