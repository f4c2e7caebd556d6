//! Learning-rate schedules: constant (`fit`), or fastai's one-cycle (`fit_one_cycle`, Smith 2018): a cosine
//! warm-up from lr/25 to lr over the first quarter of the steps, then a cosine anneal to lr/25/10⁴. Annealing
//! means the last epochs take small steps, so the final model is not a lottery ticket drawn mid-oscillation.

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    Constant,
    OneCycle,
}

const PCT_START: f64 = 0.25;
const DIV: f64 = 25.0;
const DIV_FINAL: f64 = 1e5;

impl Schedule {
    /// The learning rate for `step` of `total` steps, with peak (or constant) rate `lr`.
    pub fn lr(&self, lr: f32, step: usize, total: usize) -> f32 {
        let lr = lr as f64;
        let cos = |from: f64, to: f64, pct: f64| to + (from - to) * (1.0 + (std::f64::consts::PI * pct).cos()) / 2.0;
        match self {
            Schedule::Constant => lr as f32,
            Schedule::OneCycle => {
                let pct = step as f64 / total.max(1) as f64;
                let v = if pct < PCT_START {
                    cos(lr / DIV, lr, pct / PCT_START)
                } else {
                    cos(lr, lr / DIV_FINAL, (pct - PCT_START) / (1.0 - PCT_START))
                };
                v as f32
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cycle_rises_to_the_peak_then_anneals() {
        let s = Schedule::OneCycle;
        assert!((s.lr(1.0, 0, 100) - 0.04).abs() < 1e-6);
        assert!((s.lr(1.0, 25, 100) - 1.0).abs() < 1e-6);
        assert!(s.lr(1.0, 99, 100) < 1e-3);
        assert!(s.lr(1.0, 60, 100) < s.lr(1.0, 40, 100));
        assert_eq!(Schedule::Constant.lr(0.1, 7, 100), 0.1);
    }
}
