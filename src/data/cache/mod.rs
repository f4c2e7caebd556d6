//! The decoded-image cache: the first load of an image folder with given options writes the decoded, resized
//! pixels, already split, to one file; later loads map that file and read batches straight from it, so they start
//! at once and keep only the pages in use resident (`Pixels::release`).
//!
//! The file lives in `DIR/.crest-cache/` (or a folder of the caller's choosing), one per data folder and set of
//! options that shape the data (size, channels, valid_pct, seed), and holds its key: a hash of every file's path,
//! size and modification time, the options and crest's version. A load whose key differs decodes the images again and
//! replaces the file; a damaged, foreign or other-version file is never trusted: it is rebuilt, with a warning. A
//! cache that cannot be written (a read-only folder, a full disk) costs a warning, and the load goes on from
//! memory; `careful_write` leaves no part-written file behind for a later load to find.

mod file;
mod key;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::class_folders::Item;
use super::paths::FileList;
use super::{Dataset, LoadOptions, Paths, Pixels, Split};
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
    // An automatic size may be raised to the architecture's smallest (`min_size`): part of the name too. A resize
    // and centre crop (`preprocess`) replaces the size.
    let size = match (&opts.preprocess, opts.size, opts.min_size) {
        (Some(p), _, _) => format!("resize{}-crop{}", p.resize, p.crop),
        (None, None, min) if min > 1 => format!("auto-min{min}"),
        (None, size, _) => auto(size),
    };
    format!(
        "{:08x}-size-{}-channels-{}-valid-{}-seed-{}.pixels",
        crc32fast::hash(real.as_os_str().as_encoded_bytes()),
        size,
        auto(opts.channels.count()),
        opts.valid_pct,
        opts.seed
    )
}

/// Looks for the cache of `root`'s `files` (with their `items`, of `classes`) under `opts`.
pub(crate) fn lookup(
    root: &Path,
    classes: &[String],
    files: &Arc<FileList>,
    items: &[Item],
    opts: &LoadOptions,
) -> Lookup {
    let mut pending = Pending { target: None, warnings: Vec::new(), notes: Vec::new() };
    let Some(dir) = folder(root, &opts.cache) else { return Lookup::Miss(pending) };
    let key = match Key::new(classes, files, items, opts) {
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
            let dataset = |images: std::ops::Range<usize>| {
                let which = index.files[images.clone()].to_vec();
                Dataset {
                    pixels: Pixels::mapped(map.clone(), at + images.start * item_len..at + images.end * item_len)
                        .unwrap_or_default(),
                    labels: which.iter().map(|&f| items[f as usize].label).collect(),
                    classes: index.key.classes.clone(),
                    channels: index.channels,
                    height: index.height,
                    width: index.width,
                    paths: Paths::new(files.clone(), which).unwrap_or_default(),
                }
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
    /// Writes `split`, just decoded from `files`, to the cache when there is one to write, and adds to its warnings
    /// and notes what became of it and of the file that could not be used.
    pub(crate) fn store(self, files: &Arc<FileList>, split: &mut Split) {
        let Pending { target, warnings, notes } = self;
        // The index keeps what the decoding said, for a load from the cache to say it again; not what this
        // lookup said about the file it replaces.
        let (index_warnings, index_notes) = (split.warnings.clone(), split.notes.clone());
        split.warnings.extend(warnings);
        split.notes.extend(notes);
        let Some((path, key)) = target else { return };
        let shown = path.display();
        fn of_files<'a>(d: &'a Dataset, files: &Arc<FileList>) -> Option<&'a [u32]> {
            d.paths.indices_into(files).filter(|f| f.len() == d.len())
        }
        let (Some(train), Some(valid)) = (of_files(&split.train, files), of_files(&split.valid, files)) else {
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
            files: train.iter().chain(valid).copied().collect(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::fixtures::{grey_png, TempDir};
    use crate::data::{load, Preprocess};
    use std::time::{Duration, SystemTime};

    fn cached() -> LoadOptions {
        LoadOptions { progress: false, valid_pct: 0.25, cache: Caching::InDataFolder, ..LoadOptions::default() }
    }

    /// Two classes of four 3x2 images each (pixel value = a number of its own), and a corrupt file to skip.
    fn folder() -> TempDir {
        let d = TempDir::new("cache");
        for (class, base) in [("a", 10), ("b", 50)] {
            for i in 0..4 {
                d.write(&format!("{class}/{i}.png"), &grey_png(3, 2, base + i));
            }
        }
        d.write("b/broken.png", b"\x89PNG\r\n\x1a\nbroken");
        d
    }

    fn cache_file(d: &TempDir) -> PathBuf {
        d.path().join(".crest-cache").join(file_name(d.path(), &cached()))
    }

    /// The split decoded afresh, without a cache.
    fn fresh(d: &TempDir) -> Split {
        load(d.path(), &LoadOptions { cache: Caching::Off, ..cached() }).unwrap()
    }

    /// `loaded` holds what a fresh load gives, its notes being the fresh ones and then `note`.
    fn assert_same_data(loaded: &Split, fresh: &Split, note: &str) {
        assert_eq!((&loaded.train, &loaded.valid, &loaded.warnings), (&fresh.train, &fresh.valid, &fresh.warnings));
        assert_eq!(loaded.notes[..fresh.notes.len()], fresh.notes[..]);
        assert_eq!(loaded.notes[fresh.notes.len()..], [note]);
    }

    #[test]
    fn a_second_load_maps_the_same_split() {
        let d = folder();
        let first = load(d.path(), &cached()).unwrap();
        let path = cache_file(&d);
        let expected = fresh(&d);
        assert_same_data(&first, &expected, &format!("cache: decoded images written to {}", path.display()));
        assert!(!first.train.pixels.is_mapped());
        let second = load(d.path(), &cached()).unwrap();
        assert_same_data(&second, &expected, &format!("cache: decoded images read from {}", path.display()));
        assert!(second.train.pixels.is_mapped() && second.valid.pixels.is_mapped());
        assert_eq!((second.train.len(), second.valid.len(), second.warnings.len()), (6, 2, 1));
        // Pages given back read the same bytes again.
        second.train.release(&(0..second.train.len()).collect::<Vec<_>>());
        assert_eq!(second.train, expected.train);
        // Another spelling of the folder finds the same cache, and its images carry that spelling.
        let dotted = d.path().join(".");
        let third = load(&dotted, &cached()).unwrap();
        assert!(third.train.pixels.is_mapped());
        assert_eq!(third.train.paths.get(0), Some(dotted.join("a/0.png")));
    }

    #[test]
    fn a_changed_added_or_removed_image_rebuilds_the_cache() {
        let d = folder();
        load(d.path(), &cached()).unwrap();
        let note = format!("cache: the images changed since it was written: rebuilding {}", cache_file(&d).display());
        let written = format!("cache: decoded images written to {}", cache_file(&d).display());
        let touched = std::fs::File::options().write(true).open(d.path().join("a/1.png")).unwrap();
        touched.set_modified(SystemTime::now() + Duration::from_secs(5)).unwrap();
        d.write("b/9.png", &grey_png(3, 2, 99));
        let changes: [&dyn Fn(); 3] = [&|| (), &|| drop(d.write("b/9.png", &grey_png(3, 2, 99))), &|| {
            std::fs::remove_file(d.path().join("a/0.png")).unwrap()
        }];
        for change in changes {
            change();
            let rebuilt = load(d.path(), &cached()).unwrap();
            let expected = fresh(&d);
            assert!(!rebuilt.train.pixels.is_mapped());
            assert_eq!(
                (&rebuilt.train, &rebuilt.valid, &rebuilt.warnings),
                (&expected.train, &expected.valid, &expected.warnings)
            );
            assert_eq!(rebuilt.notes[expected.notes.len()..], [note.clone(), written.clone()]);
            assert!(load(d.path(), &cached()).unwrap().train.pixels.is_mapped());
        }
    }

    /// Each bad cache file costs one warning naming what is wrong, is never used, and is replaced by a good one.
    #[test]
    fn damaged_foreign_and_other_version_files_are_rebuilt_with_a_warning() {
        let d = folder();
        load(d.path(), &cached()).unwrap();
        let path = cache_file(&d);
        let good = std::fs::read(&path).unwrap();
        let other_version = {
            let key = Key::new(&[], &FileList::default(), &[], &cached()).unwrap();
            let old = Key { crest: "0.0.1".into(), ..key };
            let index = Index {
                key: old,
                channels: 1,
                height: 1,
                width: 1,
                train: 0,
                files: vec![],
                warnings: vec![],
                notes: vec![],
            };
            file::write(&path, &index, &[], &[]).unwrap();
            std::fs::read(&path).unwrap()
        };
        let mut garbled = good.clone();
        garbled[40] ^= 0x20;
        let mut other_format = good.clone();
        other_format[8] = 1;
        let len = good.len();
        let cases: [(Vec<u8>, String); 6] = [
            (
                good[..len - 1].to_vec(),
                format!("is damaged (it is {} bytes long, not the {len} its index gives)", len - 1),
            ),
            (good[..30].to_vec(), "is damaged (its index of ".to_string()),
            (garbled, "is damaged (its index fails its checksum)".into()),
            (b"hello, I am a PNG".to_vec(), "is not a crest image cache".into()),
            (other_format, "is in cache format 1, not 2".into()),
            (other_version, "was written by crest 0.0.1".into()),
        ];
        let expected = fresh(&d);
        for (bytes, why) in cases {
            std::fs::write(&path, &bytes).unwrap();
            let rebuilt = load(d.path(), &cached()).unwrap();
            assert_eq!((&rebuilt.train, &rebuilt.valid), (&expected.train, &expected.valid));
            let warnings = &rebuilt.warnings[expected.warnings.len()..];
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            let start = format!("the image cache {} {why}", path.display());
            assert!(
                warnings[0].starts_with(&start) && warnings[0].ends_with(": rebuilding it"),
                "{warnings:?}\n{start}"
            );
            assert_eq!(std::fs::read(&path).unwrap(), good);
        }
        // Other options under the same file name (the file is named by those that most often change).
        let other = LoadOptions { max_pixels: 1000, ..cached() };
        let rebuilt = load(d.path(), &other).unwrap();
        assert_eq!(
            rebuilt.warnings[expected.warnings.len()..],
            [format!(
                "the image cache {} was made with other options ({}): rebuilding it",
                path.display(),
                key::options(&cached())
            )]
        );
    }

    /// A load with torchvision's resize and centre crop (an imported model's `evaluate`) keeps a cache file of its
    /// own, one per resize and crop: switching back and forth reads each cache as it was, with no warning.
    #[test]
    fn each_resize_and_crop_has_a_cache_of_its_own() {
        let d = folder();
        let cropped = |crop| LoadOptions { preprocess: Some(Preprocess::imagenet(4, crop)), ..cached() };
        let names = [cached(), cropped(2), cropped(3)].map(|o| file_name(d.path(), &o));
        assert!(names[0] != names[1] && names[1] != names[2] && names[0] != names[2], "{names:?}");
        let first: Vec<Split> = [cached(), cropped(2)].iter().map(|o| load(d.path(), o).unwrap()).collect();
        assert_eq!((first[1].train.height, first[1].train.width), (2, 2));
        for (o, fresh) in [cached(), cropped(2)].iter().zip(&first) {
            let again = load(d.path(), o).unwrap();
            assert_eq!((&again.train, &again.valid, &again.warnings), (&fresh.train, &fresh.valid, &fresh.warnings));
            assert!(again.notes.iter().any(|n| n.starts_with("cache: decoded images read from")), "{:?}", again.notes);
        }
    }

    #[test]
    fn no_cache_writes_nothing_and_an_unwritable_cache_is_one_warning() {
        let d = folder();
        let expected = fresh(&d);
        assert!(!d.path().join(".crest-cache").exists());
        let under_a_file = d.path().join("a/0.png").join("cache");
        let opts = LoadOptions { cache: Caching::In(under_a_file.clone()), ..cached() };
        let s = load(d.path(), &opts).unwrap();
        assert_eq!((&s.train, &s.valid, &s.notes), (&expected.train, &expected.valid, &expected.notes));
        let path = under_a_file.join(file_name(d.path(), &cached()));
        assert_eq!(
            s.warnings[expected.warnings.len()..],
            [format!(
                "cannot write the image cache to {}: Not a directory (os error 20); the images stay in memory, uncached",
                path.display()
            )]
        );
    }
}
