//! One error type for every fallible call in the library. Messages speak of the library's own terms (a learning
//! rate, a model file, a class folder); a program built on crest, such as its command line, adds its own hints
//! (which flag to change).
//!
//! Shape mismatches inside tensor arithmetic are programmer errors and panic instead, naming both shapes.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file or folder could not be read or written.
    Io { what: String, source: std::io::Error },
    /// Data that can't be trained on or predicted from: a missing or empty class, an unreadable image (under
    /// strict loading), an IDX file whose header doesn't match its contents.
    Data(String),
    /// A model file that is damaged or not crest's.
    ModelFile { path: PathBuf, reason: String },
    /// Weights that can't be imported ([`crate::model_io::import`]): not safetensors, or not the architecture's.
    Import { path: PathBuf, reason: String },
    /// A crest model file of a format version this crest doesn't read.
    ModelVersion { path: PathBuf, format: Option<u64>, written_by: Option<String> },
    /// A model that doesn't fit its input or its task; the message names the layer and both shapes.
    Shape(String),
    /// An option or argument outside the values it can take.
    InvalidArgument(String),
    /// Training stopped because the loss stopped being a finite number.
    NonFiniteLoss { epoch: usize, batch: usize, loss: f32, lr: f32 },
    /// Training stopped because the loss was growing without bound: its running average rose past
    /// [`crate::learner::DIVERGENCE_FACTOR`] times the loss of the first batch trained on; `loss` is that average.
    DivergingLoss { epoch: usize, batch: usize, loss: f32, first: f32, lr: f32 },
    /// `lr_find` could not suggest a learning rate: the loss never decreased, or diverged at once.
    LrFind(String),
    /// A checkpoint that is damaged, not crest's, or from another run (other data, architecture or options).
    Checkpoint { path: PathBuf, reason: String },
    /// The work stopped because a stop was requested ([`crate::interrupt`]), with the signal that requested it.
    Interrupted { signal: i32 },
    /// This CPU lacks instructions this build of crest was compiled to use (see [`crate::cpu`]).
    UnsupportedCpu { missing: Vec<&'static str> },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error, with what was being done to which path.
    pub(crate) fn io(action: &str, path: &Path, source: std::io::Error) -> Error {
        Error::Io { what: format!("{action} {}", path.display()), source }
    }

    /// For a loss that became NaN or diverged: a tenth of the learning rate that failed, written as one would type
    /// it (`1e29`, `0.0003`).
    pub fn smaller_lr(&self) -> Option<String> {
        match self {
            Error::NonFiniteLoss { lr, .. } | Error::DivergingLoss { lr, .. } => Some(typed(lr / 10.0)),
            _ => None,
        }
    }

    pub(crate) fn model_file(path: &Path, reason: impl Into<String>) -> Error {
        Error::ModelFile { path: path.to_path_buf(), reason: reason.into() }
    }
}

/// A number as one would type it: in exponent form when plain digits would run long (`1e30`, not 31 digits).
fn typed(v: f32) -> String {
    if v != 0.0 && !(1e-4..1e6).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { what, source } => write!(f, "{what}: {source}"),
            Error::Data(why) | Error::Shape(why) | Error::InvalidArgument(why) => f.write_str(why),
            Error::LrFind(why) => write!(f, "lr_find suggests nothing: {why}"),
            Error::Checkpoint { path, reason } => write!(f, "cannot resume from {}: {reason}", path.display()),
            Error::ModelFile { path, reason } => {
                write!(f, "{} is not a valid crest model file: {reason}", path.display())
            }
            Error::Import { path, reason } => write!(f, "cannot import {}: {reason}", path.display()),
            Error::ModelVersion { path, format, written_by } => write!(
                f,
                "{} was written in model format {} (crest {}); this crest ({}) reads formats {} and {}",
                path.display(),
                format.map_or("unknown".into(), |v| v.to_string()),
                written_by.as_deref().unwrap_or("?"),
                env!("CARGO_PKG_VERSION"),
                crate::model_io::PLAIN_FORMAT,
                crate::model_io::FORMAT
            ),
            Error::NonFiniteLoss { epoch, batch, loss, lr } => write!(
                f,
                "the loss became {loss} at epoch {epoch}, batch {batch}: the learning rate {} is too high for this \
                 model; a smaller one should train",
                typed(*lr)
            ),
            Error::DivergingLoss { epoch, batch, loss, first, lr } => write!(
                f,
                "the loss grew from {first} to {} by epoch {epoch}, batch {batch}: the learning rate {} is too high \
                 for this model; a smaller one should train",
                typed(*loss),
                typed(*lr)
            ),
            Error::Interrupted { signal } => match signal {
                2 => write!(f, "interrupted by SIGINT"),
                15 => write!(f, "interrupted by SIGTERM"),
                _ => write!(f, "interrupted by signal {signal}"),
            },
            Error::UnsupportedCpu { missing } => write!(
                f,
                "this build of crest needs CPU features this CPU lacks ({}); build it for this CPU (remove \
                 target-cpu from .cargo/config.toml)",
                missing.join(", ")
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
