//! `crest lr-find`: fastai's `learn.lr_find()` from the command line, with the curve drawn in the terminal (the
//! numbers are `LrFind`'s, for any other drawing of it).

use super::train::{self, TrainArgs};
use crest::learner::{LrFind, Suggestions, SKIP_END};

/// The plot's size in characters, without its axes.
const WIDTH: usize = 60;
const HEIGHT: usize = 15;

pub fn run(args: TrainArgs) -> crest::Result<()> {
    super::stop_signals::stop_on_signals()?;
    let mut learner = train::untrained(&args)?;
    let found = learner.lr_find()?;
    println!("{}", suggested_lrs(&found.suggestions));
    print!("{}", plot(&found));
    Ok(())
}

/// As fastai prints them: `SuggestedLRs(valley=…, steep=…, minimum=…)`.
pub fn suggested_lrs(s: &Suggestions) -> String {
    format!("SuggestedLRs(valley={}, steep={}, minimum={})", s.valley.lr, s.steep.lr, s.minimum.lr)
}

/// The smoothed loss against log10(lr) as text, without the last [`SKIP_END`] points (as fastai's `plot_lr_find`
/// leaves them out), the valley marked `V`.
pub fn plot(found: &LrFind) -> String {
    let end = found.lrs.len().saturating_sub(SKIP_END);
    let points: Vec<(f32, f32)> = found.lrs[..end]
        .iter()
        .zip(&found.losses[..end])
        .filter(|(_, l)| l.is_finite())
        .map(|(lr, &l)| (lr.log10(), l))
        .collect();
    let valley = (found.suggestions.valley.point.0.log10(), found.suggestions.valley.point.1);
    let range = |v: &mut dyn Iterator<Item = f32>| {
        v.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)))
    };
    let (x0, x1) = range(&mut points.iter().map(|p| p.0).chain([valley.0]));
    let (y0, y1) = range(&mut points.iter().map(|p| p.1).chain([valley.1]));
    let cell = |v: f32, lo: f32, hi: f32, n: usize| {
        if hi > lo {
            (((v - lo) / (hi - lo)) * (n - 1) as f32).round() as usize
        } else {
            0
        }
    };
    let mut grid = vec![vec![' '; WIDTH]; HEIGHT];
    for &(x, y) in &points {
        grid[HEIGHT - 1 - cell(y, y0, y1, HEIGHT)][cell(x, x0, x1, WIDTH)] = '*';
    }
    grid[HEIGHT - 1 - cell(valley.1, y0, y1, HEIGHT)][cell(valley.0, x0, x1, WIDTH)] = 'V';
    let mut text = String::from("smoothed loss\n");
    for (row, cells) in grid.iter().enumerate() {
        let label = match row {
            0 => format!("{y1:>9.4}"),
            r if r == HEIGHT - 1 => format!("{y0:>9.4}"),
            _ => String::new(),
        };
        text += &format!("{label:>9} |{}\n", cells.iter().collect::<String>().trim_end());
    }
    text += &format!("{:>9} +{}\n", "", "-".repeat(WIDTH));
    let (left, right) = (format!("{:.0e}", 10f32.powf(x0)), format!("{:.0e}", 10f32.powf(x1)));
    let middle = "learning rate (log scale)";
    let gap = WIDTH.saturating_sub(left.len() + right.len() + middle.len()) / 2;
    text += &format!("{:>9}  {left}{}{middle}{}{right}\n", "", " ".repeat(gap), " ".repeat(gap));
    text += &format!("V: valley, lr {} (loss {:.4})\n", found.suggestions.valley.lr, valley.1);
    text
}
