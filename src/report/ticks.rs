//! Where an axis puts its ticks and how it labels them: round numbers (1, 2 or 5 times a power of ten) on a linear
//! axis, powers of ten on a log one, as matplotlib (and so fastai's plots) does.

/// About this many ticks on an axis: enough to read a value off, few enough that labels never touch.
const TARGET_TICKS: f64 = 5.0;

/// Round-number ticks inside `[lo, hi]`, and the step between them; `integer` keeps the step at 1 or more (epochs,
/// batches).
pub fn linear(lo: f64, hi: f64, integer: bool) -> (Vec<f64>, f64) {
    let raw = (hi - lo) / TARGET_TICKS;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10.0 * magnitude);
    let step = if integer { step.max(1.0).round() } else { step };
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    ((first..=last).map(|i| i as f64 * step).collect(), step)
}

/// Powers of ten inside `[lo, hi]` (both positive); where the range spans less than two decades, 2× and 5× too.
pub fn log(lo: f64, hi: f64) -> Vec<f64> {
    let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let multiples: &[f64] = if last - first <= 2 { &[1.0, 2.0, 5.0] } else { &[1.0] };
    (first..=last)
        .flat_map(|e| multiples.iter().map(move |m| m * 10f64.powi(e)))
        .filter(|v| *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9))
        .collect()
}

/// A tick label with as many digits as the step needs (so that neighbouring ticks never read the same): plain
/// decimals, or `2.5e-4` style where plain digits would be long.
pub fn label(value: f64, step: f64) -> String {
    if value == 0.0 {
        return "0".into();
    }
    let size = value.abs();
    let digits = |of: f64| of.log10().floor() as i32;
    if !(1e-3..1e5).contains(&size) {
        let precision = (digits(size) - digits(step)).clamp(0, 6) as usize;
        return trimmed_scientific(&format!("{value:.precision$e}"));
    }
    let decimals = (-digits(step)).clamp(0, 12) as usize;
    format!("{value:.decimals$}")
}

/// `3e-4`, `1.5e-2`: the short form for learning rates and log-axis ticks.
pub fn scientific(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    trimmed_scientific(&format!("{value:.1e}"))
}

/// Rust's `1.50e-2` as `1.5e-2`, and `3.0e-4` as `3e-4`.
fn trimmed_scientific(text: &str) -> String {
    let (mantissa, exponent) = text.split_once('e').unwrap_or((text, "0"));
    let mantissa = if mantissa.contains('.') { mantissa.trim_end_matches('0').trim_end_matches('.') } else { mantissa };
    format!("{mantissa}e{exponent}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_round_numbers() {
        let (ticks, step) = linear(0.0, 1.0, false);
        assert_eq!(ticks.iter().map(|t| label(*t, step)).collect::<Vec<_>>(), ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        let (ticks, step) = linear(0.13, 0.71, false);
        assert_eq!(step, 0.2);
        assert_eq!(ticks.iter().map(|t| label(*t, step)).collect::<Vec<_>>(), ["0.2", "0.4", "0.6"]);
        assert_eq!(linear(-0.1, 2.1, true), (vec![0.0, 1.0, 2.0], 1.0));
        assert_eq!(linear(0.0, 240.0, true).0, vec![0.0, 50.0, 100.0, 150.0, 200.0]);
    }

    #[test]
    fn log_ticks_are_powers_of_ten() {
        let ticks: Vec<String> = log(1e-7, 10.0).iter().map(|t| scientific(*t)).collect();
        assert_eq!(ticks, ["1e-7", "1e-6", "1e-5", "1e-4", "1e-3", "1e-2", "1e-1", "1e0", "1e1"]);
        let narrow: Vec<String> = log(0.003, 0.09).iter().map(|t| scientific(*t)).collect();
        assert_eq!(narrow, ["5e-3", "1e-2", "2e-2", "5e-2"]);
    }

    #[test]
    fn labels_read_like_the_numbers() {
        assert_eq!(label(0.5, 0.1), "0.5");
        assert_eq!(label(150.0, 50.0), "150");
        assert_eq!(label(0.0002, 0.0001), "2e-4");
        assert_eq!(label(-1.5, 0.5), "-1.5");
        assert_eq!(scientific(0.0012), "1.2e-3");
        assert_eq!(scientific(0.003), "3e-3");
        assert_eq!((scientific(f64::NAN), scientific(f64::INFINITY)), ("NaN".into(), "inf".into()));
        // An accuracy that hardly moves still gets ticks that differ.
        let (ticks, step) = linear(0.990470, 0.990480, false);
        let labels: Vec<String> = ticks.iter().map(|t| label(*t, step)).collect();
        assert_eq!(labels, ["0.990470", "0.990475", "0.990480"]);
        assert_eq!(label(0.00025, 0.00005), "2.5e-4");
        assert_eq!(label(120000.0, 20000.0), "1.2e5");
    }
}
