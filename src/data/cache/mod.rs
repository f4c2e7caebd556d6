//! The decoded-image cache: the first load of an image folder with given options writes the decoded, resized
//! pixels, already split, to one file; later loads map that file and read batches straight from it, so they start
//! at once and keep only the pages in use resident (`Pixels::release`).
//!
//! The file lives in `DIR/.crest-cache/` (or a folder of the caller's choosing), one per data folder and set of
//! options that shape the data (size, channels, valid_pct, seed), and holds its key: every file's path, size and
//! modification time, the options and crest's version. A load whose key differs decodes the images again and
//! replaces the file; a damaged, foreign or other-version file is never trusted: it is rebuilt, with a warning. A
//! cache that cannot be written (a read-only folder, a full disk) costs a warning, and the load goes on from
//! memory; `careful_write` leaves no part-written file behind for a later load to find.

mod file;
mod key;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::class_folders::Item;
use super::{Dataset, LoadOptions, Pixels, Split};
use file::{Index, Refusal};
use key::Key;

/// Where `load` keeps the decoded images of an image folder (IDX files load fast enough without).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Caching {
    /// Decode the images at every load: the library's default, as it writes nothing into a data folder unasked.
    #[default]
    Off,
    /// In `.crest-cache/` inside the data folder (hidden, so never taken for a class).
    InDataFolder,
    /// In this folder, which is made when missing.
    In(PathBuf),
}

/// What a load does about the cache once it has found the folder's files.
pub(crate) enum Lookup {
    /// The data, read from the cache.
    Hit(Split),
    /// Decode the images, then give the result to `Pending::store`.
    Miss(Pending),
}

/// The cache file a load should write, if any, and what it has to say about the one it could not use.
pub(crate) struct Pending {
    target: Option<(PathBuf, Key)>,
    warnings: Vec<String>,
    notes: Vec<String>,
}

/// The folder the cache files go in, under `caching`.
fn folder(root: &Path, caching: &Caching) -> Option<PathBuf> {
    match caching {
        Caching::Off => None,
        Caching::InDataFolder => Some(root.join(".crest-cache")),
        Caching::In(dir) => Some(dir.clone()),
    }
}

/// The cache file of `root` loaded with `opts`: named by the data folder's real path (a CRC of it, so that folders
/// sharing one cache folder keep apart) and by the options that shape the data, so that switching between them
/// does not rebuild.
fn file_name(root: &Path, opts: &LoadOptions) -> String {
    let real = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let auto = |v: Option<usize>| v.map_or("auto".to_string(), |v| v.to_string());
    format!(
        "{:08x}-size-{}-channels-{}-valid-{}-seed-{}.pixels",
        crc32fast::hash(real.as_os_str().as_encoded_bytes()),
        auto(opts.size),
        auto(opts.channels.count()),
        opts.valid_pct,
        opts.seed
    )
}

/// Looks for the cache of `root`'s `items` (of `classes`) under `opts`.
pub(crate) fn lookup(root: &Path, classes: &[String], items: &[Item], opts: &LoadOptions) -> Lookup {
    let mut pending = Pending { target: None, warnings: Vec::new(), notes: Vec::new() };
    let Some(dir) = folder(root, &opts.cache) else { return Lookup::Miss(pending) };
    let key = match Key::new(root, classes, items, opts) {
        Ok(key) => key,
        Err(why) => {
            pending.notes.push(format!("cache: none, as {why}"));
            return Lookup::Miss(pending);
        }
    };
    let path = dir.join(file_name(root, opts));
    let shown = path.display();
    match file::read(&path, &key) {
        Ok((index, map, at)) => {
            let item_len = index.item_len();
            let files = &index.key.files;
            let dataset = |images: std::ops::Range<usize>| Dataset {
                pixels: Pixels::mapped(map.clone(), at + images.start * item_len..at + images.end * item_len)
                    .unwrap_or_default(),
                labels: index.files[images.clone()].iter().map(|&f| files[f as usize].label).collect(),
                classes: index.key.classes.clone(),
                channels: index.channels,
                height: index.height,
                width: index.width,
                paths: index.files[images].iter().map(|&f| root.join(&files[f as usize].path)).collect(),
            };
            let (train, valid) = (dataset(0..index.train), dataset(index.train..index.files.len()));
            let mut notes = index.notes.clone();
            notes.push(format!("cache: decoded images read from {shown}"));
            return Lookup::Hit(Split { train, valid, warnings: index.warnings, notes, source: "image folder".into() });
        }
        Err(Refusal::Absent) => {}
        Err(Refusal::Stale(why)) => pending.notes.push(format!("cache: {why}: rebuilding {shown}")),
        Err(Refusal::Untrusted(why)) => pending.warnings.push(format!("the image cache {shown} {why}: rebuilding it")),
    }
    pending.target = Some((path, key));
    Lookup::Miss(pending)
}

impl Pending {
    /// Writes `split`, just decoded from `root`, to the cache when there is one to write, and adds to its warnings
    /// and notes what became of it and of the file that could not be used.
    pub(crate) fn store(self, root: &Path, split: &mut Split) {
        let Pending { target, warnings, notes } = self;
        // The index keeps what the decoding said, for a load from the cache to say it again; not what this
        // lookup said about the file it replaces.
        let (index_warnings, index_notes) = (split.warnings.clone(), split.notes.clone());
        split.warnings.extend(warnings);
        split.notes.extend(notes);
        let Some((path, key)) = target else { return };
        let shown = path.display();
        let at: HashMap<&str, u32> = key.files.iter().enumerate().map(|(i, f)| (f.path.as_str(), i as u32)).collect();
        let file_of = |p: &PathBuf| p.strip_prefix(root).ok()?.to_str().and_then(|rel| at.get(rel).copied());
        let files: Option<Vec<u32>> = split.train.paths.iter().chain(&split.valid.paths).map(file_of).collect();
        let Some(files) = files.filter(|f| f.len() == split.train.len() + split.valid.len()) else {
            split.notes.push(format!("cache: not written to {shown}, as some images have no file of the folder"));
            return;
        };
        let t = &split.train;
        let index = Index {
            key,
            channels: t.channels,
            height: t.height,
            width: t.width,
            train: t.len(),
            files,
            warnings: index_warnings,
            notes: index_notes,
        };
        let written = path
            .parent()
            .map_or(Ok(()), |dir| {
                std::fs::create_dir_all(dir).map_err(|e| crate::Error::io("cannot write the image cache to", &path, e))
            })
            .and_then(|()| file::write(&path, &index, &split.train.pixels, &split.valid.pixels));
        match written {
            Ok(()) => split.notes.push(format!("cache: decoded images written to {shown}")),
            Err(e) => split.warnings.push(format!("{e}; the images stay in memory, uncached")),
        }
    }
}
