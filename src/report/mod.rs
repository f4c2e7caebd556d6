//! The training report: one self-contained HTML page that a person opens in a browser to see a run at a glance —
//! the data set and a batch of its images (fastai's `show_batch`), the epoch table, loss, metric and learning-rate
//! charts, the runs of `--runs K` side by side, the `lr_find` curve, the confusion matrix, the top losses and, for a
//! linear model, its weights drawn as images.
//!
//! The page needs nothing but itself: charts are inline SVG drawn by a few lines of our own (`chart.rs`), images
//! are PNG in `data:` URLs, the style sheet is inline, and there is no script at all. Its content-security policy
//! forbids loading anything else, so a reference that slipped out to the network would be refused by the browser
//! (and the browser test, `tests/report/check_in_chromium.sh`, fails on the console error that refusal logs).
//!
//! A [`Report`] is plain data — strings, numbers and pixels — so that whatever trains or evaluates fills in what it
//! has and leaves the rest empty; [`render`] leaves out the sections with nothing to show.
//!
//! ```
//! use crest::report::{render, Picture, Report};
//! let mut report = Report::new("3 vs 7");
//! let seven = Picture { pixels: vec![0, 255, 255, 0], channels: 1, height: 2, width: 2, caption: "7".into() };
//! report.samples.push(seven);
//! let page = render(&report);
//! assert!(page.contains("data:image/png;base64,"));
//! ```

mod base64;
mod chart;
mod confusion;
mod html;
mod page;
mod picture;
#[cfg(test)]
mod tests;
mod ticks;
mod weights;

use crate::{careful_write, Result};
use std::path::Path;

pub use page::render;
pub use weights::weights_picture;

/// Everything a report can show. Only the title is needed: `crest train` and `crest evaluate` each fill in what
/// they have, and the page leaves out what is empty.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// The page's heading and the browser tab's title.
    pub title: String,
    /// The command line that made the report, shown as typed so the run can be repeated.
    pub command: String,
    /// The data set: where it came from, its classes, how many images of each went to training and validation.
    pub dataset: Option<DatasetSummary>,
    /// A batch of images with their labels as captions (fastai's `show_batch`); one batch, not the data set: 16 to
    /// 36 images keep the page light.
    pub samples: Vec<Picture>,
    /// What `samples` are, e.g. "a training batch, augmented (flip, rotate)".
    pub samples_note: String,
    /// The epoch table as printed: its header and rows of cells.
    pub table: Option<Table>,
    /// The name of the metric in [`Run::metric`] ("accuracy", "error_rate"), for chart titles and axes.
    pub metric_name: String,
    /// One per training run (`--runs K` gives K). The first is drawn in detail (losses, metric, loss per batch,
    /// learning rate per batch); with more than one, every run's validation metric is drawn on one chart.
    pub runs: Vec<Run>,
    /// The learning-rate finder's sweep, drawn with a log x axis and its suggestions marked.
    pub lr_find: Option<LrCurve>,
    /// The confusion matrix on the validation set.
    pub confusion: Option<Confusion>,
    /// The images the model got most wrong, captioned "label / prediction / loss / probability"; 9 to 16 of them.
    pub top_losses: Vec<Picture>,
    /// A linear model's weights, one image per class (see [`weights_picture`]).
    pub class_weights: Vec<Picture>,
    /// Lines said at the end of the page: what was decided, warnings, which epoch's model was saved.
    pub notes: Vec<String>,
}

impl Report {
    /// An empty report with this title.
    pub fn new(title: &str) -> Report {
        Report { title: title.to_string(), ..Report::default() }
    }
}

/// An image with a caption. Pixels are as a [`crate::data::Dataset`] keeps them: u8, planar `[channels, height,
/// width]`, with 1 (grey), 2 (grey and alpha), 3 (RGB) or 4 (RGBA) channels. A caption may hold line breaks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Picture {
    pub pixels: Vec<u8>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub caption: String,
}

/// The data set a run trained on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DatasetSummary {
    /// Where the images came from (a folder), as the user named it.
    pub source: String,
    pub classes: Vec<String>,
    /// Images per class in the training set, in the order of `classes`.
    pub train_counts: Vec<usize>,
    /// Images per class in the validation set, in the order of `classes`.
    pub valid_counts: Vec<usize>,
    /// The shape every image was brought to: channels, height, width.
    pub image_shape: [usize; 3],
}

/// A table as printed: a header and rows of cells.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// One training run's numbers. Per-epoch values are `None` where there were none (no validation set); a value
/// that is not a finite number (a NaN loss) is left out of the charts, and the chart says how many were.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Run {
    /// How the run is named in legends, e.g. "seed 42".
    pub name: String,
    /// The mean training loss of each epoch.
    pub train_loss: Vec<Option<f32>>,
    /// The validation loss after each epoch.
    pub valid_loss: Vec<Option<f32>>,
    /// The validation metric (named by [`Report::metric_name`]) after each epoch.
    pub metric: Vec<Option<f32>>,
    /// The training loss of every batch, in order.
    pub batch_loss: Vec<f32>,
    /// The learning rate every batch was trained at, in order.
    pub batch_lr: Vec<f32>,
}

/// The learning-rate finder's sweep: the (smoothed) loss at each learning rate tried, and its suggestions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LrCurve {
    pub lrs: Vec<f32>,
    pub losses: Vec<f32>,
    pub suggestions: Vec<Suggestion>,
}

/// A learning rate the finder suggests, with the rule that chose it ("valley", "steep", "minimum/10").
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Suggestion {
    pub name: String,
    pub lr: f32,
}

/// How many validation images of each class were predicted as each class: `counts[actual][predicted]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Confusion {
    pub classes: Vec<String>,
    pub counts: Vec<Vec<usize>>,
}

/// Writes the page to `path`, replacing a file there whole (see [`crate::careful_write`]).
pub fn write(report: &Report, path: &Path) -> Result<()> {
    careful_write::write(path, "the report", render(report).as_bytes())
}
