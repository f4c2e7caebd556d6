//! What a cache file was made from, compared whole with what a load would make it from: a changed, added or
//! removed image, another option or another crest makes the file stale.
//!
//! The folder's files enter it as one hash of their stamps, not as a list: the list, held twice during a load (the
//! key made and the file's read) with every path in it, was much of the memory of a cached load that grew with the
//! data set (`bench/cache_rss.sh`).

use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::data::class_folders::Item;
use crate::data::hash128::Hash128;
use crate::data::paths::FileList;
use crate::data::LoadOptions;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Key {
    pub crest: String,
    /// The load options that change the pixels, labels or split.
    pub options: String,
    pub classes: Vec<String>,
    /// How many files the folder offered, skipped ones included (a skipped file that is mended must be decoded).
    pub files: usize,
    /// The `Hash128` of every such file's stamp, in order, as 32 hex digits: its path relative to the data folder
    /// (so that the folder named another way, `./data` or an absolute path, or moved whole keeps its cache), its
    /// label and split, its size and its modification time (nanoseconds since 1970; a file dated earlier counts as
    /// 0, and its size still has to match).
    pub stamps: String,
}

impl Key {
    /// The key of the folder's `files` (with their `items`) loaded with `opts`; `Err` says why there can be none.
    pub fn new(classes: &[String], files: &FileList, items: &[Item], opts: &LoadOptions) -> Result<Key, String> {
        let mut stamps = Hash128::new();
        for (f, item) in items.iter().enumerate() {
            let path = files.path(f);
            let meta = std::fs::metadata(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let modified_ns = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos().min(u64::MAX as u128) as u64);
            stamps
                .bytes(files.relative(f).as_os_str().as_encoded_bytes())
                .u64(item.label.into())
                .u64(item.valid.into())
                .u64(meta.len())
                .u64(modified_ns);
        }
        Ok(Key {
            crest: env!("CARGO_PKG_VERSION").into(),
            options: options(opts),
            classes: classes.to_vec(),
            files: items.len(),
            stamps: format!("{:032x}", stamps.finish()),
        })
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
        preprocess,
    } = opts;
    let preprocess = preprocess.as_ref().map(|p| (p.resize, p.crop));
    format!(
        "size {size:?}, min_size {min_size}, channels {channels:?}, valid_pct {valid_pct}, seed {seed}, strict {strict}, \
         max_pixels {max_pixels}, preprocess {preprocess:?}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::fixtures::TempDir;
    use std::path::Path;

    #[test]
    fn every_field_of_every_stamp_counts() {
        let d = TempDir::new("key");
        d.write("a/1.png", b"one");
        d.write("b/1.png", b"two");
        let mut files = FileList::new(d.path());
        files.push(Path::new("a/1.png"));
        files.push(Path::new("b/1.png"));
        let items = [Item { label: 0, valid: false }, Item { label: 1, valid: false }];
        let opts = LoadOptions::default();
        let key = |files: &FileList, items: &[Item]| Key::new(&[], files, items, &opts);
        let base = key(&files, &items).unwrap();
        assert_eq!(key(&files, &items), Ok(base.clone()));
        assert_eq!((base.files, base.stamps.len()), (2, 32));
        let relabelled = [items[0], Item { label: 0, valid: false }];
        let resplit = [items[0], Item { label: 1, valid: true }];
        for other in [&relabelled[..], &resplit, &items[..1]] {
            assert_ne!(key(&files, other).unwrap().stamps, base.stamps);
        }
        d.write("b/1.png", b"two!");
        assert_ne!(key(&files, &items).unwrap().stamps, base.stamps);
        files.push(Path::new("c/1.png"));
        let missing = d.path().join("c/1.png");
        let why = key(&files, &[items[0], items[1], items[1]]).unwrap_err();
        assert!(why.starts_with(&format!("cannot read {}: ", missing.display())), "{why}");
    }
}
