//! What a cache file was made from, compared whole with what a load would make it from: a changed, added or
//! removed image, another option or another crest makes the file stale.

use std::path::Path;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::data::class_folders::Item;
use crate::data::LoadOptions;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Key {
    pub crest: String,
    /// The load options that change the pixels, labels or split.
    pub options: String,
    pub classes: Vec<String>,
    /// Every file the folder offered, skipped ones included (a skipped file that is mended must be decoded).
    pub files: Vec<FileStamp>,
}

/// One file as the folder holds it now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct FileStamp {
    /// Relative to the data folder, so that the folder named another way (`./data`, an absolute path) or moved
    /// whole keeps its cache.
    pub path: String,
    pub label: u32,
    pub valid: bool,
    pub size: u64,
    /// Modification time, nanoseconds since 1970 (a file dated earlier counts as 0: its size still has to match).
    pub modified_ns: u64,
}

impl Key {
    /// The key of `items` under `root` loaded with `opts`; `Err` says why there can be none.
    pub fn new(root: &Path, classes: &[String], items: &[Item], opts: &LoadOptions) -> Result<Key, String> {
        let files = items.iter().map(|item| stamp(root, item)).collect::<Result<_, _>>()?;
        Ok(Key { crest: env!("CARGO_PKG_VERSION").into(), options: options(opts), classes: classes.to_vec(), files })
    }
}

/// The options that shape the data, as text: `decode_budget` and `progress` change only how it is made.
pub(crate) fn options(opts: &LoadOptions) -> String {
    let LoadOptions {
        size,
        min_size,
        channels,
        valid_pct,
        seed,
        strict,
        max_pixels,
        decode_budget: _,
        progress: _,
        cache: _,
    } = opts;
    format!(
        "size {size:?}, min_size {min_size}, channels {channels:?}, valid_pct {valid_pct}, seed {seed}, strict {strict}, \
         max_pixels {max_pixels}"
    )
}

fn stamp(root: &Path, item: &Item) -> Result<FileStamp, String> {
    let shown = item.path.display();
    let path = item.path.strip_prefix(root).map_err(|_| format!("{shown} is not under the data folder"))?;
    let path = path.to_str().ok_or_else(|| format!("the file name {shown} is not UTF-8"))?.to_string();
    let meta = std::fs::metadata(&item.path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let modified_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos().min(u64::MAX as u128) as u64);
    Ok(FileStamp { path, label: item.label, valid: item.valid, size: meta.len(), modified_ns })
}
