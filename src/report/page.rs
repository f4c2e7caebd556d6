//! The page: its sections in the order a person reads a run — the data, what it looks like, how training went,
//! how much runs differ, the learning rate, and where the model is wrong — each left out when there is nothing
//! for it.

use super::chart::{Chart, Marker, Style, XAxis, PALETTE};
use super::html::escape;
use super::ticks::scientific;
use super::{confusion, picture, LrCurve, Picture, Report, Run};
use crate::learner::{SmoothedLoss, Spread};
use std::fmt::Write;

/// A per-batch line with more points than this is thinned (see [`per_batch`]).
const MAX_BATCH_POINTS: usize = 2000;
/// However many pictures a report holds, the page shows at most this many samples (fastai's `show_batch` shows 9
/// to 36) and top losses, so that it stays light.
const MAX_SAMPLES: usize = 36;
const MAX_TOP_LOSSES: usize = 16;

/// No script, and nothing loaded from anywhere: a reference that slipped in would be refused and logged.
const POLICY: &str = "default-src 'none'; img-src data:; style-src 'unsafe-inline'";

const STYLE: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 0 auto;
       max-width: 1180px; padding: 12px 20px 40px; line-height: 1.4; }
h1 { margin: 8px 0 4px; } h2 { margin-top: 32px; border-bottom: 1px solid #ccc; padding-bottom: 4px; }
nav a { margin-right: 14px; } pre.command { background: #f4f4f4; padding: 8px 10px; white-space: pre-wrap;
       word-break: break-all; }
table { border-collapse: collapse; margin: 8px 0; } th, td { border: 1px solid #ccc; padding: 3px 10px; }
td { text-align: right; font-variant-numeric: tabular-nums; } th { background: #f4f4f4; }
table.epochs td, table.epochs th { font-family: ui-monospace, Menlo, Consolas, monospace; }
table.confusion td { min-width: 48px; text-align: center; } .total { font-weight: bold; background: #f4f4f4; }
th.corner { font-weight: normal; font-size: 90%; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(540px, 1fr)); gap: 12px; }
.charts figure { margin: 0; border: 1px solid #ddd; } svg.chart { width: 100%; height: auto; display: block; }
svg text { font-family: system-ui, sans-serif; font-size: 12px; fill: #222; }
svg .title { font-size: 15px; font-weight: bold; text-anchor: middle; }
svg .xtick, svg .axis, svg .empty { text-anchor: middle; } svg .ytick { text-anchor: end; }
svg .axis { font-size: 13px; } svg .grid { stroke: #e6e6e6; } svg .guide { stroke: #999; stroke-dasharray: 4 3; }
figcaption { font-size: 85%; color: #555; padding: 2px 6px; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
.grid figure { margin: 0; text-align: center; } .grid img { max-width: 520px; height: auto; display: block;
       margin: 0 auto; border: 1px solid #ddd; }
.grid figcaption { white-space: pre-line; font-size: 90%; color: #222; max-width: 180px; margin: 0 auto; }
img.pixelated { image-rendering: pixelated; } .broken { color: #a00; font-size: 85%; }
.note { color: #555; } .colourbar { display: inline-block; width: 160px; height: 12px; vertical-align: middle;
       border: 1px solid #999; background: linear-gradient(to right, #00f, #fff, #f00); }
"#;

/// The whole page, as HTML.
pub fn render(report: &Report) -> String {
    let sections: Vec<(&str, &str, String)> = [
        ("data", "Data", data(report)),
        ("samples", "Sample images", samples(report)),
        ("training", "Training", training(report)),
        ("runs", "Runs", runs(report)),
        ("lr-find", "Learning-rate finder", report.lr_find.as_ref().map(lr_find).unwrap_or_default()),
        ("confusion", "Confusion matrix", report.confusion.as_ref().map(confusion::table).unwrap_or_default()),
        ("top-losses", "Top losses", top_losses(report)),
        ("weights", "What the model learned", weights(report)),
        ("notes", "Notes", list(&report.notes)),
    ]
    .into_iter()
    .filter(|(_, _, body)| !body.is_empty())
    .collect();
    let title = escape(&report.title);
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{POLICY}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <link rel=\"icon\" href=\"data:,\">\n<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>{title}</h1>\n"
    );
    if !report.command.is_empty() {
        let _ = writeln!(html, "<pre class=\"command\">{}</pre>", escape(&report.command));
    }
    let links: Vec<String> = sections.iter().map(|(id, name, _)| format!("<a href=\"#{id}\">{name}</a>")).collect();
    let _ = writeln!(html, "<nav>{}</nav>", links.join(""));
    for (id, name, body) in &sections {
        let _ = write!(html, "<section id=\"{id}\">\n<h2>{name}</h2>\n{body}</section>\n");
    }
    html + "</body>\n</html>\n"
}

fn data(report: &Report) -> String {
    let Some(d) = &report.dataset else { return String::new() };
    let [c, h, w] = d.image_shape;
    let mut html = format!(
        "<p>From <code>{}</code>: {} classes, images {c} × {h} × {w} (channels × height × width).</p>\n\
         <table>\n<tr><th>class</th><th>train</th><th>valid</th><th>total</th></tr>\n",
        escape(&d.source),
        d.classes.len()
    );
    let at = |counts: &[usize], i: usize| counts.get(i).copied().unwrap_or(0);
    for (i, class) in d.classes.iter().enumerate() {
        let (t, v) = (at(&d.train_counts, i), at(&d.valid_counts, i));
        let _ = writeln!(html, "<tr><th>{}</th><td>{t}</td><td>{v}</td><td>{}</td></tr>", escape(class), t + v);
    }
    let (t, v): (usize, usize) = (d.train_counts.iter().sum(), d.valid_counts.iter().sum());
    let share = if t + v > 0 {
        format!(" ({:.0}% held out for validation)", 100.0 * v as f64 / (t + v) as f64)
    } else {
        String::new()
    };
    let _ = writeln!(
        html,
        "<tr><th class=\"total\">total</th><td class=\"total\">{t}</td><td class=\"total\">{v}</td>\
         <td class=\"total\">{}</td></tr>\n</table>\n\
         <p class=\"note\">{} training and {} validation images{share}.</p>",
        t + v,
        t,
        v
    );
    html
}

fn samples(report: &Report) -> String {
    if report.samples.is_empty() {
        return String::new();
    }
    let note = if report.samples_note.is_empty() {
        String::new()
    } else {
        format!("<p>{}</p>\n", escape(&report.samples_note))
    };
    note + &first_pictures(&report.samples, MAX_SAMPLES)
}

fn training(report: &Report) -> String {
    let mut html = String::new();
    if let Some(table) = &report.table {
        html += "<table class=\"epochs\">\n<tr>";
        for h in &table.header {
            let _ = write!(html, "<th>{}</th>", escape(h));
        }
        html += "</tr>\n";
        for row in &table.rows {
            html += "<tr>";
            for cell in row {
                let _ = write!(html, "<td>{}</td>", escape(cell));
            }
            html += "</tr>\n";
        }
        html += "</table>\n";
    }
    let Some(run) = report.runs.first() else { return html };
    if report.runs.len() > 1 {
        let _ = writeln!(
            html,
            "<p class=\"note\">The charts below are of {}, the first of {} runs.</p>",
            escape(&run.name),
            report.runs.len()
        );
    }
    let metric = metric_name(report);
    let mut charts = Vec::new();
    if !run.train_loss.is_empty() || !run.valid_loss.is_empty() {
        charts.push(
            Chart::new("Loss per epoch", "epoch", "loss", XAxis::Linear { integer: true })
                .series("train loss", per_epoch(&run.train_loss), PALETTE[0], Style::Solid)
                .series("valid loss", per_epoch(&run.valid_loss), PALETTE[1], Style::Solid),
        );
    }
    if run.metric.iter().any(Option::is_some) {
        charts.push(
            Chart::new(&format!("Validation {metric} per epoch"), "epoch", metric, XAxis::Linear { integer: true })
                .series(&format!("valid {metric}"), per_epoch(&run.metric), PALETTE[2], Style::Solid),
        );
    }
    if !run.batch_loss.is_empty() {
        let mut chart = Chart::new("Training loss per batch", "batch", "loss", XAxis::Linear { integer: true })
            .series("loss of each batch", per_batch(&run.batch_loss), PALETTE[0], Style::Faint)
            .series("smoothed", smoothed(&run.batch_loss), PALETTE[0], Style::Solid);
        chart.x_guides = epoch_starts(run);
        charts.push(chart);
    }
    if !run.batch_lr.is_empty() {
        let mut chart = Chart::new(
            "Learning rate per batch",
            "batch",
            "learning rate",
            XAxis::Linear { integer: true },
        )
        .series("learning rate", per_batch(&run.batch_lr), PALETTE[3], Style::Solid);
        chart.x_guides = epoch_starts(run);
        charts.push(chart);
    }
    html += &chart_grid(&charts);
    if !run.batch_loss.is_empty() || !run.batch_lr.is_empty() {
        html += "<p class=\"note\">Dashed lines on the per-batch charts mark where each epoch begins; the smoothed \
                 loss is fastai's (an exponential moving average, β = 0.98, debiased).</p>\n";
    }
    html
}

fn runs(report: &Report) -> String {
    if report.runs.len() < 2 {
        return String::new();
    }
    let metric = metric_name(report);
    let mut chart = Chart::new(
        &format!("Validation {metric} of {} runs", report.runs.len()),
        "epoch",
        metric,
        XAxis::Linear { integer: true },
    );
    for (i, run) in report.runs.iter().enumerate() {
        chart = chart.series(&run.name, per_epoch(&run.metric), PALETTE[i % PALETTE.len()], Style::Solid);
    }
    let mut html = chart_grid(&[chart]);
    let _ = writeln!(html, "<table>\n<tr><th>run</th><th>epochs</th><th>last {}</th></tr>", escape(metric));
    let mut finals = Vec::new();
    for run in &report.runs {
        let last = run.metric.iter().rev().flatten().next().copied().filter(|m| m.is_finite());
        finals.extend(last);
        let shown = last.map_or("–".into(), |m| format!("{m:.4}"));
        let _ = writeln!(html, "<tr><th>{}</th><td>{}</td><td>{shown}</td></tr>", escape(&run.name), run.metric.len());
    }
    html += "</table>\n";
    if let Some(Spread { n, mean, std, min, max }) = Spread::of(&finals).filter(|s| s.n >= 2) {
        let _ = writeln!(
            html,
            "<p>Last {} over {n} runs: mean {mean:.4} ± {std:.4} (sample standard deviation), min {min:.4}, \
             max {max:.4}.</p>",
            escape(metric),
        );
    }
    html
}

fn lr_find(curve: &LrCurve) -> String {
    let points: Vec<(f64, f64)> = curve.lrs.iter().zip(&curve.losses).map(|(&l, &v)| (l as f64, v as f64)).collect();
    let mut chart = Chart::new("Learning-rate finder", "learning rate (log scale)", "loss (smoothed)", XAxis::Log)
        .series("loss", points.clone(), PALETTE[0], Style::Solid);
    for (i, s) in curve.suggestions.iter().enumerate() {
        // Each suggestion sits on the curve, at the point swept nearest to it (as fastai marks them).
        let lr = s.lr as f64;
        let nearest = points
            .iter()
            .filter(|(l, v)| *l > 0.0 && v.is_finite())
            .min_by(|a, b| (a.0.ln() - lr.ln()).abs().total_cmp(&(b.0.ln() - lr.ln()).abs()));
        if let Some(&(_, y)) = nearest {
            let name = format!("{}: {}", s.name, scientific(lr));
            chart.markers.push(Marker { name, x: lr, y, colour: PALETTE[(i + 1) % PALETTE.len()] });
        }
    }
    let mut html = chart_grid(&[chart]);
    if curve.suggestions.is_empty() {
        html += "<p>No suggestion: the loss never decreased.</p>\n";
    } else {
        let names: Vec<String> =
            curve.suggestions.iter().map(|s| format!("{} {}", escape(&s.name), scientific(s.lr as f64))).collect();
        let _ = writeln!(html, "<p>Suggested learning rates: {}.</p>", names.join(", "));
    }
    html
}

fn top_losses(report: &Report) -> String {
    if report.top_losses.is_empty() {
        return String::new();
    }
    "<p>The validation images the model was most wrong about, highest loss first: label / prediction / loss / \
     probability of the label.</p>\n"
        .to_string()
        + &first_pictures(&report.top_losses, MAX_TOP_LOSSES)
}

fn weights(report: &Report) -> String {
    if report.class_weights.is_empty() {
        return String::new();
    }
    "<p>Each class's weights, drawn where they fall on the image: <span class=\"colourbar\"></span> blue counts \
     against the class, white not at all, red for it; each image is scaled to its own largest weight (±, under \
     it).</p>\n"
        .to_string()
        + &picture::grid(&report.class_weights)
}

/// A grid of the first `max` pictures, saying how many there were when that is not all.
fn first_pictures(pictures: &[Picture], max: usize) -> String {
    let grid = picture::grid(&pictures[..pictures.len().min(max)]);
    if pictures.len() <= max {
        return grid;
    }
    grid + &format!("<p class=\"note\">The first {max} of {} are shown.</p>\n", pictures.len())
}

fn list(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let items: String = lines.iter().map(|l| format!("<li>{}</li>\n", escape(l))).collect();
    format!("<ul>\n{items}</ul>\n")
}

fn chart_grid(charts: &[Chart]) -> String {
    if charts.is_empty() {
        return String::new();
    }
    let figures: String = charts.iter().map(Chart::render).collect();
    format!("<div class=\"charts\">\n{figures}</div>\n")
}

fn metric_name(report: &Report) -> &str {
    if report.metric_name.is_empty() {
        "metric"
    } else {
        &report.metric_name
    }
}

/// Epoch `i`'s value at x = i; epochs without one (`None`) are not points at all.
fn per_epoch(values: &[Option<f32>]) -> Vec<(f64, f64)> {
    values.iter().enumerate().filter_map(|(i, v)| v.map(|v| (i as f64, v as f64))).collect()
}

/// Batch `i`'s value at x = i. A long run (100 epochs of 1,000 batches) would make a chart of megabytes, so past
/// [`MAX_BATCH_POINTS`] each stretch of batches is drawn by its lowest and highest value, in the order they came: the
/// line still reaches every spike. A value that is not finite is kept, for the chart to count.
fn per_batch(values: &[f32]) -> Vec<(f64, f64)> {
    let points: Vec<(f64, f64)> = values.iter().enumerate().map(|(i, &v)| (i as f64, v as f64)).collect();
    if points.len() <= MAX_BATCH_POINTS {
        return points;
    }
    let stretch = points.len().div_ceil(MAX_BATCH_POINTS / 2);
    let mut thinned = Vec::with_capacity(MAX_BATCH_POINTS + 1);
    for chunk in points.chunks(stretch) {
        let finite = || chunk.iter().filter(|p| p.1.is_finite());
        let low = finite().min_by(|a, b| a.1.total_cmp(&b.1));
        let high = finite().max_by(|a, b| a.1.total_cmp(&b.1));
        let unfinite = chunk.iter().filter(|p| !p.1.is_finite());
        let mut kept: Vec<(f64, f64)> = low.into_iter().chain(high).chain(unfinite).copied().collect();
        kept.sort_by(|a, b| a.0.total_cmp(&b.0));
        kept.dedup_by(|a, b| a.0 == b.0);
        thinned.extend(kept);
    }
    thinned
}

/// fastai's smoothed loss; a value that is not finite is passed over, so one NaN doesn't end the line.
fn smoothed(values: &[f32]) -> Vec<(f64, f64)> {
    let mut smoothing = SmoothedLoss::default();
    values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, &v)| (i as f64, smoothing.push(v as f64)))
        .collect()
}

/// The batch each epoch after the first begins at, when the batches divide evenly into the epochs.
fn epoch_starts(run: &Run) -> Vec<f64> {
    let (epochs, batches) = (run.train_loss.len(), run.batch_loss.len().max(run.batch_lr.len()));
    if epochs < 2 || batches % epochs != 0 {
        return Vec::new();
    }
    let per_epoch = batches / epochs;
    (1..epochs).map(|e| (e * per_epoch) as f64 - 0.5).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_runs_are_thinned_to_their_extremes() {
        let mut losses: Vec<f32> = (0..10_000).map(|i| 1.0 / (1.0 + i as f32)).collect();
        losses[5_003] = 9.0;
        losses[7_000] = f32::NAN;
        let points = per_batch(&losses);
        assert!(points.len() <= MAX_BATCH_POINTS + 1, "{}", points.len());
        assert!(points.contains(&(5_003.0, 9.0)) && points.contains(&(0.0, 1.0)));
        assert_eq!(points.iter().filter(|p| p.1.is_nan()).count(), 1);
        assert!(points.windows(2).all(|w| w[0].0 < w[1].0), "in the order they came");
        assert_eq!(per_batch(&[0.5, f32::NAN]).len(), 2);
    }

    #[test]
    fn a_big_batch_of_pictures_shows_its_first_few() {
        let picture = Picture { pixels: vec![0; 4], channels: 1, height: 2, width: 2, caption: "x".into() };
        let report =
            Report { samples: vec![picture.clone(); 7_500], top_losses: vec![picture; 100], ..Report::new("big") };
        let page = render(&report);
        assert_eq!(page.matches("<img").count(), MAX_SAMPLES + MAX_TOP_LOSSES);
        assert!(page.contains("The first 36 of 7500 are shown.") && page.contains("The first 16 of 100 are shown."));
    }

    #[test]
    fn smoothing_is_fastais_debiased_average() {
        // The first smoothed value is the first loss itself; NaN is passed over.
        let s = smoothed(&[2.0, f32::NAN, 1.0]);
        assert_eq!(s[0], (0.0, 2.0));
        let expected = (0.98 * 0.02 * 2.0 + 0.02 * 1.0) / (1.0 - 0.98f64 * 0.98);
        assert_eq!(s[1].0, 2.0);
        assert!((s[1].1 - expected).abs() < 1e-12, "{s:?}");
    }
}
