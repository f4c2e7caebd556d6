//! A line chart as inline SVG: a title, a legend, axes with ticks and labels, lines (optionally with a dot per
//! point) and labelled markers. The report's charts are all of this one kind; a plotting crate would add build time
//! for no chart this cannot draw.
//!
//! Points that are not finite numbers (a NaN loss), or not positive on a log axis, are left out: a line breaks
//! there, and a note under the chart says how many were.

use super::html::escape;
use super::ticks;
use std::fmt::Write;

/// matplotlib's default colours (fastai's plots use them), in order.
pub const PALETTE: [&str; 10] =
    ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 330.0;
const LEFT: f64 = 66.0;
const RIGHT: f64 = 18.0;
const BOTTOM: f64 = 46.0;
const LEGEND_ROW: f64 = 18.0;
/// The width of one character at the legend's font size, near enough to lay entries out in rows.
const CHAR_WIDTH: f64 = 6.6;
/// A line with at most this many points gets a dot on each, so a 3-epoch curve shows its 3 values.
const MAX_DOTTED: usize = 40;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum XAxis {
    /// Linear; `integer` keeps ticks on whole numbers (epochs, batches).
    Linear { integer: bool },
    /// Logarithmic, for learning rates.
    Log,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Style {
    Solid,
    /// Thin and pale, behind a smoothed line of the same values.
    Faint,
}

impl Style {
    /// The line's width and opacity.
    fn stroke(self) -> (f64, f64) {
        match self {
            Style::Solid => (2.0, 1.0),
            Style::Faint => (1.0, 0.35),
        }
    }
}

/// A line in the legend (drawn in its series' style), or a marker (`swatch` None).
struct LegendEntry {
    colour: &'static str,
    name: String,
    swatch: Option<Style>,
}

#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub colour: &'static str,
    pub style: Style,
}

/// A labelled point drawn over the lines (the learning-rate finder's suggestions).
#[derive(Clone, Debug)]
pub struct Marker {
    pub name: String,
    pub x: f64,
    pub y: f64,
    pub colour: &'static str,
}

#[derive(Clone, Debug)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_axis: XAxis,
    pub series: Vec<Series>,
    pub markers: Vec<Marker>,
    /// Dashed vertical lines at these x values (where each epoch begins, on a per-batch chart).
    pub x_guides: Vec<f64>,
}

impl Chart {
    pub fn new(title: &str, x_label: &str, y_label: &str, x_axis: XAxis) -> Chart {
        Chart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_axis,
            series: Vec::new(),
            markers: Vec::new(),
            x_guides: Vec::new(),
        }
    }

    pub fn series(mut self, name: &str, points: Vec<(f64, f64)>, colour: &'static str, style: Style) -> Chart {
        self.series.push(Series { name: name.into(), points, colour, style });
        self
    }

    fn drawable(&self, (x, y): (f64, f64)) -> bool {
        x.is_finite() && y.is_finite() && (self.x_axis != XAxis::Log || x > 0.0)
    }

    /// The chart as a `<figure>`: the SVG, and a caption when points were left out.
    pub fn render(&self) -> String {
        let legend = self.legend_rows();
        let top = 34.0 + LEGEND_ROW * legend.len() as f64 + 6.0;
        let plot = Plot { left: LEFT, right: WIDTH - RIGHT, top, bottom: HEIGHT - BOTTOM };
        let mut svg = String::new();
        let _ = write!(
            svg,
            r##"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{t}"><title>{t}</title><rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/><text x="{cx}" y="20" class="title">{t}</text>"##,
            t = escape(&self.title),
            cx = WIDTH / 2.0,
        );
        self.draw_legend(&mut svg, &legend);
        let points = self.all_points();
        let skipped = self.series.iter().flat_map(|s| &s.points).filter(|p| !self.drawable(**p)).count();
        match (bounds(points.iter().map(|p| p.0)), bounds(points.iter().map(|p| p.1))) {
            (Some(xs), Some(ys)) => {
                let scale = Scale::new(&plot, self.x_axis, xs, ys);
                self.draw_axes(&mut svg, &plot, &scale);
                self.draw_data(&mut svg, &scale);
            }
            _ => {
                let _ = write!(
                    svg,
                    r#"<text x="{}" y="{}" class="empty">no finite values to draw</text>"#,
                    (plot.left + plot.right) / 2.0,
                    (plot.top + plot.bottom) / 2.0
                );
            }
        }
        let _ = write!(
            svg,
            r##"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#444"/></svg>"##,
            plot.left,
            plot.top,
            plot.right - plot.left,
            plot.bottom - plot.top
        );
        let note = match skipped {
            0 => String::new(),
            1 => "<figcaption>1 value was not a finite number (NaN or ∞) and is not drawn.</figcaption>".into(),
            n => format!("<figcaption>{n} values were not finite numbers (NaN or ∞) and are not drawn.</figcaption>"),
        };
        format!("<figure>{svg}{note}</figure>\n")
    }

    fn all_points(&self) -> Vec<(f64, f64)> {
        let lines = self.series.iter().flat_map(|s| s.points.iter().copied());
        lines.chain(self.markers.iter().map(|m| (m.x, m.y))).filter(|p| self.drawable(*p)).collect()
    }

    /// Legend entries laid out in rows that fit the chart's width.
    fn legend_rows(&self) -> Vec<Vec<LegendEntry>> {
        let lines =
            self.series.iter().map(|s| LegendEntry { colour: s.colour, name: s.name.clone(), swatch: Some(s.style) });
        let markers = self.markers.iter().map(|m| LegendEntry { colour: m.colour, name: m.name.clone(), swatch: None });
        let mut rows: Vec<Vec<LegendEntry>> = Vec::new();
        let mut used = f64::INFINITY;
        for entry in lines.chain(markers).filter(|e| !e.name.is_empty()) {
            let width = entry_width(&entry.name);
            if used + width > WIDTH - LEFT - RIGHT {
                rows.push(Vec::new());
                used = 0.0;
            }
            used += width;
            rows.last_mut().expect("a row was just pushed").push(entry);
        }
        rows
    }

    fn draw_legend(&self, svg: &mut String, rows: &[Vec<LegendEntry>]) {
        for (r, row) in rows.iter().enumerate() {
            let y = 40.0 + LEGEND_ROW * r as f64;
            let mut x = LEFT;
            for LegendEntry { colour, name, swatch } in row {
                if let Some(style) = swatch {
                    let (width, opacity) = style.stroke();
                    let _ = write!(
                        svg,
                        r#"<line x1="{x}" y1="{y1}" x2="{}" y2="{y1}" stroke="{colour}" stroke-width="{}" stroke-opacity="{opacity}"/>"#,
                        x + 18.0,
                        width + 1.0,
                        y1 = y - 4.0
                    );
                } else {
                    let _ = write!(
                        svg,
                        r##"<circle cx="{}" cy="{}" r="5" fill="{colour}" stroke="#000"/>"##,
                        x + 9.0,
                        y - 4.0
                    );
                }
                let _ = write!(svg, r#"<text x="{}" y="{y}" class="legend">{}</text>"#, x + 24.0, escape(name));
                x += entry_width(name);
            }
        }
    }

    fn draw_axes(&self, svg: &mut String, plot: &Plot, scale: &Scale) {
        let (x_ticks, x_step) = match self.x_axis {
            XAxis::Linear { integer } => ticks::linear(scale.x.0, scale.x.1, integer),
            XAxis::Log => (ticks::log(scale.x.0.exp2(), scale.x.1.exp2()), 0.0),
        };
        for t in x_ticks {
            let px = scale.px(t);
            let text = if self.x_axis == XAxis::Log { ticks::scientific(t) } else { ticks::label(t, x_step) };
            let _ = write!(
                svg,
                r##"<line x1="{px:.1}" y1="{t0}" x2="{px:.1}" y2="{b}" class="grid"/><line x1="{px:.1}" y1="{b}" x2="{px:.1}" y2="{b5}" stroke="#444"/><text x="{px:.1}" y="{by}" class="xtick">{text}</text>"##,
                t0 = plot.top,
                b = plot.bottom,
                b5 = plot.bottom + 5.0,
                by = plot.bottom + 18.0
            );
        }
        let (y_ticks, y_step) = ticks::linear(scale.y.0, scale.y.1, false);
        for t in y_ticks {
            let py = scale.py(t);
            let _ = write!(
                svg,
                r##"<line x1="{l}" y1="{py:.1}" x2="{r}" y2="{py:.1}" class="grid"/><line x1="{l5}" y1="{py:.1}" x2="{l}" y2="{py:.1}" stroke="#444"/><text x="{lx}" y="{ty:.1}" class="ytick">{}</text>"##,
                ticks::label(t, y_step),
                l = plot.left,
                r = plot.right,
                l5 = plot.left - 5.0,
                lx = plot.left - 8.0,
                ty = py + 4.0
            );
        }
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" class="axis">{}</text><text transform="translate(16 {}) rotate(-90)" class="axis">{}</text>"#,
            (plot.left + plot.right) / 2.0,
            HEIGHT - 8.0,
            escape(&self.x_label),
            (plot.top + plot.bottom) / 2.0,
            escape(&self.y_label)
        );
        for &g in self.x_guides.iter().filter(|g| g.is_finite()) {
            let px = scale.px(g);
            let _ = write!(
                svg,
                r#"<line x1="{px:.1}" y1="{}" x2="{px:.1}" y2="{}" class="guide"/>"#,
                plot.top, plot.bottom
            );
        }
    }

    fn draw_data(&self, svg: &mut String, scale: &Scale) {
        for s in &self.series {
            let (width, opacity) = s.style.stroke();
            // A point that can't be drawn ends one line and the next drawable one starts another.
            for segment in s.points.split(|p| !self.drawable(*p)).filter(|seg| !seg.is_empty()) {
                let coords: Vec<String> =
                    segment.iter().map(|&(x, y)| format!("{:.1},{:.1}", scale.px(x), scale.py(y))).collect();
                let _ = write!(
                    svg,
                    r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="{width}" stroke-opacity="{opacity}" stroke-linejoin="round"/>"#,
                    coords.join(" "),
                    s.colour
                );
            }
            if s.style == Style::Solid && s.points.len() <= MAX_DOTTED {
                for &(x, y) in s.points.iter().filter(|p| self.drawable(**p)) {
                    let _ = write!(
                        svg,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{}"/>"#,
                        scale.px(x),
                        scale.py(y),
                        s.colour
                    );
                }
            }
        }
        for m in self.markers.iter().filter(|m| self.drawable((m.x, m.y))) {
            let _ = write!(
                svg,
                r##"<circle cx="{:.1}" cy="{:.1}" r="6" fill="{}" stroke="#000" stroke-width="1.5"/>"##,
                scale.px(m.x),
                scale.py(m.y),
                m.colour
            );
        }
    }
}

fn entry_width(name: &str) -> f64 {
    24.0 + CHAR_WIDTH * name.chars().count() as f64 + 18.0
}

struct Plot {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

/// From data to SVG coordinates. A log axis keeps its range as log2 of the values.
struct Scale {
    x: (f64, f64),
    y: (f64, f64),
    log_x: bool,
    /// The plot's corners: (left, right) and (bottom, top).
    across: (f64, f64),
    up: (f64, f64),
}

impl Scale {
    fn new(plot: &Plot, x_axis: XAxis, xs: (f64, f64), ys: (f64, f64)) -> Scale {
        let log_x = x_axis == XAxis::Log;
        let x = if log_x { pad((xs.0.log2(), xs.1.log2()), 0.02) } else { pad(xs, 0.02) };
        Scale { x, y: pad(ys, 0.06), log_x, across: (plot.left, plot.right), up: (plot.bottom, plot.top) }
    }

    fn px(&self, x: f64) -> f64 {
        let x = if self.log_x { x.log2() } else { x };
        self.across.0 + (x - self.x.0) / (self.x.1 - self.x.0) * (self.across.1 - self.across.0)
    }

    fn py(&self, y: f64) -> f64 {
        self.up.0 + (y - self.y.0) / (self.y.1 - self.y.0) * (self.up.1 - self.up.0)
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |b, v| Some(b.map_or((v, v), |(lo, hi): (f64, f64)| (lo.min(v), hi.max(v)))))
}

/// A range widened by `fraction` of its span on each side, so that no point sits on the frame; a range of one
/// value is widened by 5% of it (an accuracy of 0.99 every epoch reads 0.94 to 1.04, not 0 to 2).
fn pad((lo, hi): (f64, f64), fraction: f64) -> (f64, f64) {
    let span = hi - lo;
    let margin = if span > 0.0 {
        span * fraction
    } else if lo != 0.0 {
        lo.abs() * 0.05
    } else {
        0.5
    };
    (lo - margin, hi + margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn polylines(svg: &str) -> Vec<&str> {
        svg.split("<polyline points=\"").skip(1).map(|s| s.split('"').next().unwrap()).collect()
    }

    #[test]
    fn points_land_where_the_axes_say() {
        let chart = Chart::new("t", "x", "y", XAxis::Linear { integer: true }).series(
            "a",
            vec![(0.0, 0.0), (10.0, 1.0)],
            PALETTE[0],
            Style::Solid,
        );
        let svg = chart.render();
        // x padded by 2% of 10, y by 6% of 1; the plot spans 66..542 across and 284..58 up (one legend row).
        let (x0, x1) = (66.0 + 476.0 * 0.2 / 10.4, 66.0 + 476.0 * 10.2 / 10.4);
        let (y0, y1) = (284.0 - 226.0 * 0.06 / 1.12, 284.0 - 226.0 * 1.06 / 1.12);
        assert_eq!(polylines(&svg), [format!("{x0:.1},{y0:.1} {x1:.1},{y1:.1}")]);
        assert!(svg.contains(">10</text>") && svg.contains(">0.5</text>"), "{svg}");
    }

    #[test]
    fn non_finite_points_break_the_line_and_are_counted() {
        let points = vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 0.5), (3.0, f64::INFINITY), (4.0, 0.2), (5.0, 0.1)];
        let svg = Chart::new("t", "x", "y", XAxis::Linear { integer: true })
            .series("loss", points, PALETTE[0], Style::Solid)
            .render();
        let lines = polylines(&svg);
        assert_eq!(lines.iter().map(|l| l.split(' ').count()).collect::<Vec<_>>(), [1, 1, 2]);
        let drawing = svg.split("</svg>").next().unwrap();
        assert!(!drawing.contains("NaN") && !drawing.contains("inf"), "{svg}");
        assert!(svg.contains("2 values were not finite numbers"));
    }

    #[test]
    fn nothing_finite_draws_an_empty_frame() {
        let svg = Chart::new("t", "x", "y", XAxis::Log)
            .series("a", vec![(0.0, 1.0), (1.0, f64::NAN)], PALETTE[0], Style::Solid)
            .render();
        assert!(svg.contains("no finite values to draw") && svg.contains("2 values were not finite"));
        assert!(polylines(&svg).is_empty());
    }

    #[test]
    fn a_log_axis_ticks_powers_of_ten() {
        let sweep = (0..=8).map(|i| (10f64.powi(i - 7), 1.0 + i as f64)).collect();
        let svg = Chart::new("lr", "learning rate", "loss", XAxis::Log)
            .series("loss", sweep, PALETTE[0], Style::Solid)
            .render();
        for t in ["1e-7", "1e-4", "1e0", "1e1"] {
            assert!(svg.contains(&format!(">{t}</text>")), "{t}");
        }
        // Equal ratios are equal distances.
        let xs: Vec<f64> =
            polylines(&svg)[0].split(' ').map(|p| p.split(',').next().unwrap().parse().unwrap()).collect();
        assert!(xs.windows(3).all(|w| ((w[1] - w[0]) - (w[2] - w[1])).abs() < 0.2), "{xs:?}");
    }
}
