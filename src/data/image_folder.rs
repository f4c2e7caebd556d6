//! A folder of images, one sub-folder per class, optionally already split into `train/` and `valid/` (or `val/`).
//!
//! Two passes over the files. The first reads only headers (size, colour type) in parallel: that is enough to
//! refuse oversized images before any pixel memory exists and to choose the channel count and the size, so the
//! second pass can decode each file once, straight into its slot of the final `[N, C, H, W]` buffer. Keeping the
//! decoded images around instead would hold every full-resolution picture in memory at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use super::cache::{self, Lookup};
use super::class_folders::{self, ClassFolders};
use super::dataset::pixel_buffer;
use super::decode::{self, Header, Skip};
use super::decode_budget::DecodeBudget;
use super::{split, ChannelsOpt, Dataset, LoadOptions, Paths, Split, DEFAULT_SIZE};
use crate::progress::Progress;
use crate::{Error, Result};

/// Turns skipped files into warnings, or under `strict` a bad image into an error.
struct Skips {
    strict: bool,
    not_images: Vec<PathBuf>,
    warnings: Vec<String>,
}

impl Skips {
    fn bad(&mut self, path: &Path, why: &str) -> Result<()> {
        if self.strict {
            return Err(Error::Data(format!("cannot use {}: {why} (strict mode)", path.display())));
        }
        self.warnings.push(format!("skipped {}: {why}", path.display()));
        Ok(())
    }

    fn finish(mut self) -> Vec<String> {
        if let Some(warning) = not_images_warning(&self.not_images) {
            self.warnings.insert(0, warning);
        }
        self.warnings
    }
}

/// One warning for all the files that are not images (a folder's `.DS_Store`, `README`, ...), naming the first.
pub(super) fn not_images_warning(not_images: &[impl AsRef<Path>]) -> Option<String> {
    let first = not_images.first()?.as_ref();
    let what = match not_images.len() {
        1 => "1 file that is not an image".to_string(),
        n => format!("{n} files that are not images"),
    };
    Some(format!("skipped {what} (e.g. {})", first.display()))
}

fn choose_channels(opt: ChannelsOpt, headers: &[Header]) -> (usize, String) {
    match opt {
        ChannelsOpt::Grey | ChannelsOpt::Rgb | ChannelsOpt::Rgba => {
            let c = opt.count().unwrap_or(1);
            (c, format!("channels: {c} (as asked)"))
        }
        ChannelsOpt::Auto if headers.iter().any(|h| h.alpha) => {
            (4, "channels: auto -> 4 (some images have alpha)".into())
        }
        ChannelsOpt::Auto if headers.iter().any(|h| h.colour) => (3, "channels: auto -> 3 (colour, no alpha)".into()),
        ChannelsOpt::Auto => (1, "channels: auto -> 1 (all images are grey)".into()),
    }
}

/// (height, width, note).
fn choose_size(opt: Option<usize>, min_size: usize, headers: &[Header]) -> (usize, usize, String) {
    if let Some(s) = opt {
        return (s, s, format!("size: {s}x{s} (as asked)"));
    }
    let first = (headers[0].height, headers[0].width);
    if headers.iter().all(|h| (h.height, h.width) == first) {
        let (h, w) = (first.0 as usize, first.1 as usize);
        if h < min_size || w < min_size {
            let (uh, uw) = (h.max(min_size), w.max(min_size));
            return (uh, uw, format!("size: all images are {w}x{h}, using {uw}x{uh}, the smallest the model takes"));
        }
        let using = if h == w { format!("{h}") } else { format!("{w}x{h}") };
        return (h, w, format!("size: all images are {w}x{h}, using {using}"));
    }
    (DEFAULT_SIZE, DEFAULT_SIZE, format!("size: images differ in size, using {DEFAULT_SIZE}"))
}

/// The first class with no training images, as an error.
fn check_classes(classes: &[String], labels: impl Iterator<Item = u32>, root: &Path) -> Result<()> {
    let mut counts = vec![0usize; classes.len()];
    let mut total = 0;
    for l in labels {
        counts[l as usize] += 1;
        total += 1;
    }
    if total == 0 {
        return Err(Error::Data(format!("no images found in {}", root.display())));
    }
    if let Some(c) = counts.iter().position(|&n| n == 0) {
        return Err(Error::Data(format!("class '{}' has no images", classes[c])));
    }
    Ok(())
}

pub(crate) fn load(root: &Path, opts: &LoadOptions) -> Result<Split> {
    let ClassFolders { classes, files, items, split_note: folder_split, warnings } = class_folders::discover(root)?;
    let files = Arc::new(files);
    let pending = match cache::lookup(root, &classes, &files, &items, opts) {
        Lookup::Hit(split) => return Ok(split),
        Lookup::Miss(pending) => pending,
    };
    let progress = Progress::new(2 * items.len(), "reading headers", opts.progress);
    let mut skips = Skips { strict: opts.strict, not_images: Vec::new(), warnings };

    let probed: Vec<Result<Header, Skip>> = (0..files.len())
        .into_par_iter()
        .map(|f| {
            let r = decode::probe(&files.path(f), opts.max_pixels);
            progress.inc();
            r
        })
        .collect();
    // The files kept, as indices into `files`.
    let mut kept = Vec::new();
    let mut headers = Vec::new();
    for (f, r) in probed.into_iter().enumerate() {
        match r {
            Ok(h) => {
                kept.push(f as u32);
                headers.push(h);
            }
            Err(Skip::NotImage) => skips.not_images.push(files.path(f)),
            Err(Skip::Bad(why)) => skips.bad(&files.path(f), &why)?,
        }
    }
    let item = |f: &u32| items[*f as usize];
    check_classes(&classes, kept.iter().map(item).filter(|i| !i.valid).map(|i| i.label), root)?;

    let (channels, channels_note) = choose_channels(opts.channels, &headers);
    let (height, width, size_note) = match &opts.preprocess {
        Some(p) => (p.crop, p.crop, format!("size: shorter side resized to {}, centre {1}x{1} kept", p.resize, p.crop)),
        None => choose_size(opts.size, opts.min_size, &headers),
    };
    let item_len = channels * height * width;
    progress.set_message("decoding");
    let mut all = Dataset {
        pixels: pixel_buffer(kept.len(), item_len)?.into(),
        labels: kept.iter().map(|f| item(f).label).collect(),
        classes,
        channels,
        height,
        width,
        paths: Paths::new(files.clone(), kept.clone()).unwrap_or_default(),
    };
    let budget = DecodeBudget::new(opts.decode_budget);
    let decoded: Vec<Result<(), String>> = all
        .pixels
        .to_mut()
        .par_chunks_mut(item_len)
        .zip(kept.par_iter().zip(&headers))
        .map(|(out, (&f, header))| {
            let _reserved = budget.reserve(header.decode_cost(channels));
            let path = files.path(f as usize);
            let r = match &opts.preprocess {
                Some(p) => decode::decode_preprocessed_into(&path, channels, p, header, opts.max_pixels, out),
                None => decode::decode_into(&path, channels, height, width, opts.max_pixels, out),
            };
            progress.inc();
            r
        })
        .collect();
    progress.finish();
    let mut ok = Vec::with_capacity(kept.len());
    for (&f, r) in kept.iter().zip(decoded) {
        if let Err(why) = &r {
            skips.bad(&files.path(f as usize), why)?;
        }
        ok.push(r.is_ok());
    }
    let mut is_valid: Vec<bool> = kept.iter().map(|f| item(f).valid).collect();
    if ok.contains(&false) {
        all.retain(&ok);
        is_valid = is_valid.into_iter().zip(&ok).filter(|(_, &k)| k).map(|(v, _)| v).collect();
        let train_labels = all.labels.iter().zip(&is_valid).filter(|(_, &v)| !v).map(|(&l, _)| l);
        check_classes(&all.classes, train_labels, root)?;
    }

    let split_note = match folder_split {
        Some(note) => note,
        None => {
            is_valid = split::stratified(&all.labels, all.classes.len(), opts.valid_pct, opts.seed);
            split::note(opts.valid_pct, opts.seed)
        }
    };
    let (train, valid) = split::partition(all, &is_valid);
    let mut split = Split {
        train,
        valid,
        warnings: skips.finish(),
        notes: vec![size_note, channels_note, split_note],
        source: "image folder".into(),
    };
    pending.store(&files, &mut split);
    Ok(split)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::fixtures::{bomb_png, encode_png, encode_png16, grey_png, image_fixture, palette_png, TempDir};
    use crate::data::load;
    use png::ColorType;

    fn quiet() -> LoadOptions {
        LoadOptions { progress: false, ..LoadOptions::default() }
    }

    fn error(root: &Path, opts: &LoadOptions) -> String {
        let e = load(root, opts).expect_err("should fail").to_string();
        assert!(!e.contains('\n'), "one-line error: {e}");
        e
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(image_fixture(name)).unwrap()
    }

    /// Three classes in every supported format plus the junk real folders hold.
    fn messy_folder() -> TempDir {
        let d = TempDir::new("messy");
        d.write("cat/1.png", &grey_png(8, 8, 10));
        d.write("cat/2.jpg", &fixture("rgb-444.jpg"));
        d.write("cat/3.gif", &fixture("first-frame.gif"));
        d.write("cat/.DS_Store", b"\0\0\0\x01Bud1");
        d.write("cat/zero.png", b"");
        d.write("dog/1.bmp", &fixture("unsupported.bmp"));
        d.write("dog/2.webp", &fixture("rgba-lossy.webp"));
        d.write("dog/3.png", &palette_png());
        d.write("dog/README", b"dogs");
        d.write("dog/bomb.png", &bomb_png());
        d.write("emu/1.png", &grey_png(8, 8, 50));
        let whole = encode_png16(8, 8, ColorType::Grayscale, &[60 * 257; 64]);
        d.write("emu/2.png", &whole);
        d.write("emu/3.png", &whole[..whole.len() - 20]);
        d
    }

    #[test]
    fn messy_folder_loads_with_warnings() {
        let d = messy_folder();
        let opts = LoadOptions { valid_pct: 0.0, ..quiet() };
        let s = load(d.path(), &opts).unwrap();
        assert_eq!(s.source, "image folder");
        assert_eq!(s.train.classes, vec!["cat", "dog", "emu"]);
        assert_eq!(s.train.labels, vec![0, 0, 0, 1, 1, 2, 2]);
        assert!(s.valid.is_empty() && s.valid.classes == s.train.classes);
        assert_eq!((s.train.channels, s.train.height, s.train.width), (4, 140, 140));
        assert_eq!(s.train.pixels.len(), 7 * 4 * 140 * 140);
        assert!(s.notes.contains(&"channels: auto -> 4 (some images have alpha)".to_string()), "{:?}", s.notes);
        assert!(s.notes.contains(&"size: images differ in size, using 140".to_string()));
        // A flat grey 8x8 image stays flat at 140x140, with opaque alpha.
        let first = s.train.image(0);
        assert!(first[..3 * 140 * 140].iter().all(|&v| v == 10) && first[3 * 140 * 140..].iter().all(|&v| v == 255));
        let w = &s.warnings;
        assert_eq!(w.len(), 5, "{w:?}");
        assert!(w[0].starts_with("skipped 2 files that are not images"), "{w:?}");
        for name in ["zero.png", "1.bmp", "bomb.png", "emu/3.png"] {
            assert!(w.iter().any(|l| l.contains(name)), "{name} not named in {w:?}");
        }
        let strict = error(d.path(), &LoadOptions { strict: true, ..opts });
        assert!(strict.contains("strict"), "{strict}");
    }

    /// Every image over the budget: each decodes alone, and the data is the same.
    #[test]
    fn a_budget_below_every_image_loads_the_same_data() {
        let d = messy_folder();
        let opts = LoadOptions { valid_pct: 0.0, ..quiet() };
        let roomy = load(d.path(), &opts).unwrap();
        let tight = load(d.path(), &LoadOptions { decode_budget: 1, ..opts }).unwrap();
        assert_eq!((tight.train, tight.warnings), (roomy.train, roomy.warnings));
    }

    #[test]
    fn auto_channels_and_size_default() {
        let d = TempDir::new("auto");
        d.write("a/1.png", &grey_png(6, 4, 1));
        d.write("b/1.png", &grey_png(6, 4, 2));
        let s = load(d.path(), &LoadOptions { valid_pct: 0.0, ..quiet() }).unwrap();
        assert_eq!((s.train.channels, s.train.height, s.train.width), (1, 4, 6));
        assert_eq!(s.notes[..2], ["size: all images are 6x4, using 6x4", "channels: auto -> 1 (all images are grey)"]);
        assert_eq!(s.train.pixels, [vec![1; 24], vec![2; 24]].concat());
        assert_eq!(s.train.paths.iter().collect::<Vec<_>>(), [d.path().join("a/1.png"), d.path().join("b/1.png")]);
        d.write("b/2.png", &encode_png(6, 4, ColorType::Rgb, &[0; 6 * 4 * 3]));
        let s = load(d.path(), &LoadOptions { valid_pct: 0.0, size: Some(3), ..quiet() }).unwrap();
        assert_eq!((s.train.channels, s.train.height, s.train.width), (3, 3, 3));
        assert_eq!(s.notes[..2], ["size: 3x3 (as asked)", "channels: auto -> 3 (colour, no alpha)"]);
        let s = load(d.path(), &LoadOptions { valid_pct: 0.0, channels: ChannelsOpt::Grey, ..quiet() }).unwrap();
        assert_eq!(s.train.channels, 1);
    }

    #[test]
    fn split_is_stratified_ordered_and_seeded() {
        let d = TempDir::new("split");
        for (class, n) in [("a", 10), ("b", 5)] {
            for i in 0..n {
                d.write(&format!("{class}/{i:02}.png"), &grey_png(2, 2, i));
            }
        }
        let s = load(d.path(), &quiet()).unwrap();
        assert_eq!((s.train.class_counts(), s.valid.class_counts()), (vec![8, 4], vec![2, 1]));
        assert!(s.train.labels.windows(2).all(|w| w[0] <= w[1]) && s.valid.labels.windows(2).all(|w| w[0] <= w[1]));
        // Within a class, files keep their sorted order (pixel value = file number).
        let firsts = |ds: &Dataset| (0..ds.len()).map(|i| (ds.labels[i], ds.image(i)[0])).collect::<Vec<_>>();
        assert!(firsts(&s.train).windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s.notes[2], "split: 20% random, stratified, seed 42");
        let again = load(d.path(), &quiet()).unwrap();
        assert_eq!((again.train, again.valid), (s.train.clone(), s.valid.clone()));
        let other = load(d.path(), &LoadOptions { seed: 7, ..quiet() }).unwrap();
        assert_ne!(other.valid, s.valid);
    }

    #[test]
    fn train_valid_folders() {
        let d = TempDir::new("folders");
        for f in ["train/x/1.png", "train/x/2.png", "train/y/1.png", "val/y/9.png"] {
            d.write(f, &grey_png(3, 3, 5));
        }
        let s = load(d.path(), &quiet()).unwrap();
        assert_eq!((s.train.len(), s.valid.len(), s.valid.labels.clone()), (3, 1, vec![1]));
        assert_eq!(s.notes[2], "split: train/ and val/ folders");
        d.write("val/z/1.png", &grey_png(3, 3, 5));
        assert!(error(d.path(), &quiet()).contains("class 'z'"));
        // train/ without valid/ (Kaggle's train/ + test/): train's classes, split at random.
        std::fs::rename(d.path().join("val"), d.path().join("test")).unwrap();
        let s = load(d.path(), &LoadOptions { valid_pct: 0.5, ..quiet() }).unwrap();
        assert_eq!(s.train.classes, vec!["x", "y"]);
        assert_eq!((s.train.len(), s.valid.len()), (2, 1));
    }

    #[test]
    fn bad_layouts_are_one_line_errors() {
        let d = TempDir::new("layouts");
        assert!(error(&d.path().join("nope"), &quiet()).contains("does not exist"));
        let file = d.write("file.txt", b"x");
        assert!(error(&file, &quiet()).contains("is not a folder"));
        let huge = LoadOptions { size: Some(20_000), ..quiet() };
        assert!(error(d.path(), &huge).contains("over the limit of 100000000 pixels"));
        d.write("only/1.png", &grey_png(2, 2, 0));
        assert!(error(d.path(), &quiet()).contains("need at least 2"));
        d.write("loose.png", &grey_png(2, 2, 0));
        assert!(error(d.path(), &quiet()).contains("its 1 images should go in one sub-folder per class"));
        std::fs::remove_file(d.path().join("loose.png")).unwrap();
        std::fs::create_dir_all(d.path().join("empty")).unwrap();
        assert_eq!(error(d.path(), &quiet()), "class 'empty' has no images");
        // A class whose only image is corrupt is empty once it is skipped.
        d.write("empty/bad.png", b"\x89PNG\r\n\x1a\nbroken");
        assert_eq!(error(d.path(), &quiet()), "class 'empty' has no images");
        let none = TempDir::new("none");
        none.write("a/README", b"x");
        none.write("b/notes.txt", b"x");
        assert!(error(none.path(), &quiet()).starts_with("no images found"));
        assert!(error(none.path(), &LoadOptions { valid_pct: 1.0, ..quiet() }).contains("valid_pct"));
    }

    #[test]
    #[cfg_attr(miri, ignore = "2,102 images: too many to interpret")]
    fn mnist_sample() {
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist_sample"));
        let s = load(root, &quiet()).unwrap();
        assert_eq!(s.train.classes, vec!["3", "7"]);
        let total: Vec<usize> = s.train.class_counts().iter().zip(s.valid.class_counts()).map(|(a, b)| a + b).collect();
        assert_eq!(total, vec![1032, 1070]);
        assert_eq!(s.valid.class_counts(), vec![206, 214]);
        assert_eq!((s.train.channels, s.train.height, s.train.width), (1, 28, 28));
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }
}
