//! IDX files, the MNIST format: `*-images-idx3-ubyte` (u8 images) and `*-labels-idx1-ubyte` (u8 labels), each
//! optionally gzipped. Big-endian header: magic, then one u32 per dimension.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use rayon::prelude::*;

use super::dataset::pixel_buffer;
use super::decode::{self, Layout, Pixels};
use super::{split, ChannelsOpt, Dataset, LoadOptions, Split};
use crate::{Error, Result};

pub const IMAGES_MAGIC: u32 = 0x0000_0803;
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Images as read from an IDX file: `count` grey images of `rows` x `cols`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

/// `dir/<prefix>-<kind>-idx?-ubyte`, plain or `.gz`, if present.
fn find(dir: &Path, stem: &str) -> Option<PathBuf> {
    [stem.to_string(), format!("{stem}.gz")].into_iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// Does `dir` hold an IDX dataset (at least the training images and labels)?
pub fn is_idx_dir(dir: &Path) -> bool {
    find(dir, "train-images-idx3-ubyte").is_some() && find(dir, "train-labels-idx1-ubyte").is_some()
}

/// Header values then body of an IDX file's bytes, gunzipped first when they start with the gzip magic. The body
/// is inflated with a cap of what the header promises, so neither a lying header nor a gzip bomb can make us
/// allocate more than the file really holds. Errors do not name the file: the caller does.
fn parse_idx(bytes: &[u8], magic: u32, dims: usize) -> Result<(Vec<usize>, Vec<u8>), String> {
    let mut reader: Box<dyn Read + '_> =
        if bytes.starts_with(&[0x1f, 0x8b]) { Box::new(MultiGzDecoder::new(bytes)) } else { Box::new(bytes) };
    let mut header = vec![0u8; 4 * (1 + dims)];
    reader.read_exact(&mut header).map_err(|e| format!("too short for an IDX header ({} bytes): {e}", header.len()))?;
    let words: Vec<u32> = header.chunks_exact(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])).collect();
    if words[0] != magic {
        return Err(format!("magic number is 0x{:08x}, expected 0x{magic:08x}", words[0]));
    }
    let shape: Vec<usize> = words[1..].iter().map(|&w| w as usize).collect();
    let Some(expected) = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) else {
        return Err(format!("dimensions {shape:?} are too large"));
    };
    // Sized up front: growing by doubling would copy the body several times, and keep the copies (crest's
    // allocator keeps freed memory for reuse). Capped so a corrupt header cannot reserve gigabytes.
    let mut body = Vec::with_capacity(expected.saturating_add(1).min(bytes.len().saturating_mul(1032)).min(1 << 28));
    reader.take(expected as u64 + 1).read_to_end(&mut body).map_err(|e| format!("corrupt compressed data: {e}"))?;
    if body.len() != expected {
        let more = if body.len() > expected { "more than" } else { "only" };
        return Err(format!(
            "header {shape:?} needs {expected} bytes of data, got {more} {}",
            body.len().min(expected)
        ));
    }
    Ok((shape, body))
}

/// An IDX images file (`idx3-ubyte`, gzipped or not) from its bytes: refused unless it holds at least one image of
/// at least one pixel.
pub fn parse_images(bytes: &[u8]) -> Result<IdxImages> {
    let (shape, pixels) = parse_idx(bytes, IMAGES_MAGIC, 3).map_err(Error::Data)?;
    let (count, rows, cols) = (shape[0], shape[1], shape[2]);
    if count == 0 {
        return Err(Error::Data("the file holds 0 images (its header says so): nothing to learn from".into()));
    }
    if rows == 0 || cols == 0 {
        return Err(Error::Data(format!(
            "its {count} images are {rows}x{cols} pixels (rows x columns): an image needs at least one of each"
        )));
    }
    Ok(IdxImages { count, rows, cols, pixels })
}

/// An IDX labels file (`idx1-ubyte`, gzipped or not) from its bytes.
pub fn parse_labels(bytes: &[u8]) -> Result<Vec<u8>> {
    Ok(parse_idx(bytes, LABELS_MAGIC, 1).map_err(Error::Data)?.1)
}

/// `parse` on the file at `path`, its errors naming the file.
fn read_file<T>(path: &Path, parse: fn(&[u8]) -> Result<T>) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("cannot read", path, e))?;
    parse(&bytes).map_err(|e| match e {
        Error::Data(why) => Error::Data(format!("{}: {why}", path.display())),
        other => other,
    })
}

pub fn read_images(path: &Path) -> Result<IdxImages> {
    read_file(path, parse_images)
}

pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    read_file(path, parse_labels)
}

/// Labels as ranges, `1-3, 5, 9-254`: the labels that a message names, short even when there are hundreds.
fn ranges(labels: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < labels.len() {
        let start = labels[i];
        while i + 1 < labels.len() && labels[i + 1] == labels[i] + 1 {
            i += 1;
        }
        out.push(if labels[i] == start { start.to_string() } else { format!("{start}-{}", labels[i]) });
        i += 1;
    }
    out.join(", ")
}

/// Training labels must use every class `0..classes` (an image folder refuses an empty class, and so does this),
/// and validation labels must be among them.
fn check_labels(dir: &Path, train: &[u32], valid: &[u32], classes: usize) -> Result<()> {
    let mut used = vec![false; classes];
    train.iter().for_each(|&l| used[l as usize] = true);
    let unused: Vec<u32> = (0..classes as u32).filter(|&l| !used[l as usize]).collect();
    let last = classes.saturating_sub(1);
    if !unused.is_empty() {
        let s = if unused.len() == 1 { "" } else { "s" };
        return Err(Error::Data(format!(
            "{}: training label{s} {} {} no images; labels must run 0..{last} with every one used",
            dir.display(),
            ranges(&unused),
            if unused.len() == 1 { "has" } else { "have" }
        )));
    }
    let mut unknown: Vec<u32> = valid.iter().copied().filter(|&l| l as usize >= classes).collect();
    unknown.sort_unstable();
    unknown.dedup();
    if !unknown.is_empty() {
        let (s, are) = if unknown.len() == 1 { ("", "is") } else { ("s", "are") };
        return Err(Error::Data(format!(
            "{}: t10k label{s} {} {are} not among the training labels 0-{last}",
            dir.display(),
            ranges(&unknown)
        )));
    }
    Ok(())
}

/// One IDX pair as a dataset, its images resized and converted like image files (IDX is grey): to `size`, or with
/// none asked, kept at their own size raised to `min_size`; with their own size as (width, height).
fn read_pair(
    dir: &Path,
    prefix: &str,
    channels: usize,
    size: Option<usize>,
    min_size: usize,
) -> Result<(Dataset, (usize, usize))> {
    let missing = |kind: &str| format!("{} has no {prefix}-{kind} file", dir.display());
    let images_path =
        find(dir, &format!("{prefix}-images-idx3-ubyte")).ok_or_else(|| Error::Data(missing("images-idx3-ubyte")))?;
    let labels_path =
        find(dir, &format!("{prefix}-labels-idx1-ubyte")).ok_or_else(|| Error::Data(missing("labels-idx1-ubyte")))?;
    let images = read_images(&images_path)?;
    let labels = read_labels(&labels_path)?;
    if labels.len() != images.count {
        return Err(Error::Data(format!(
            "{} has {} labels for {} images in {}",
            labels_path.display(),
            labels.len(),
            images.count,
            images_path.display()
        )));
    }
    let (height, width) = size.map_or((images.rows.max(min_size), images.cols.max(min_size)), |s| (s, s));
    let pixels = if channels == 1 && (height, width) == (images.rows, images.cols) {
        images.pixels
    } else {
        let item_len = channels * height * width;
        let mut out = pixel_buffer(images.count, item_len)?;
        let src_len = images.rows * images.cols;
        out.par_chunks_mut(item_len).zip(images.pixels.par_chunks(src_len)).for_each(|(out, src)| {
            let grey = Pixels {
                width: images.cols as u32,
                height: images.rows as u32,
                layout: Layout::Luma,
                samples: src.to_vec(),
            };
            decode::write_chw(grey, channels, height, width, out);
        });
        out
    };
    let own = (images.cols, images.rows);
    let dataset = Dataset {
        pixels: pixels.into(),
        labels: labels.into_iter().map(u32::from).collect(),
        classes: Vec::new(),
        channels,
        height,
        width,
        paths: Default::default(),
    };
    Ok((dataset, own))
}

/// `classes.txt` (one name a line) if present, else the labels as numbers "0".."max".
fn class_names(dir: &Path, max_label: u32) -> Result<Vec<String>> {
    let path = dir.join("classes.txt");
    if !path.is_file() {
        return Ok((0..=max_label).map(|l| l.to_string()).collect());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("cannot read", &path, e))?;
    let names: Vec<String> = text.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
    if max_label as usize >= names.len() {
        return Err(Error::Data(format!(
            "{} names {} classes but the labels go up to {max_label}",
            path.display(),
            names.len()
        )));
    }
    Ok(names)
}

pub(crate) fn load(dir: &Path, opts: &LoadOptions) -> Result<Split> {
    // IDX images are grey: `Auto` keeps them so.
    let channels = opts.channels.count().unwrap_or(1);
    let (mut train, (own_w, own_h)) = read_pair(dir, "train", channels, opts.size, opts.min_size)?;
    let has_test = find(dir, "t10k-images-idx3-ubyte").is_some() || find(dir, "t10k-labels-idx1-ubyte").is_some();
    let mut valid =
        if has_test { read_pair(dir, "t10k", channels, opts.size, opts.min_size)?.0 } else { Dataset::default() };
    if has_test && (valid.height, valid.width) != (train.height, train.width) {
        return Err(Error::Data(format!(
            "{}: t10k images are {}x{}, train images {}x{}",
            dir.display(),
            valid.width,
            valid.height,
            train.width,
            train.height
        )));
    }
    let max_label = train.labels.iter().copied().max().unwrap_or(0);
    let classes = class_names(dir, max_label)?;
    if classes.len() < 2 {
        return Err(Error::Data(format!("{} has {} class(es), need at least 2", dir.display(), classes.len())));
    }
    check_labels(dir, &train.labels, &valid.labels, classes.len())?;
    train.classes = classes.clone();
    let split_note = if has_test {
        valid.classes = classes;
        "split: t10k-* files".to_string()
    } else {
        let is_valid = split::stratified(&train.labels, classes.len(), opts.valid_pct, opts.seed);
        (train, valid) = split::partition(train, &is_valid);
        split::note(opts.valid_pct, opts.seed)
    };
    if train.is_empty() {
        return Err(Error::Data(format!("{}: the training IDX files hold no images", dir.display())));
    }
    let channels_note = match opts.channels {
        ChannelsOpt::Auto => "channels: auto -> 1 (IDX is grey)".to_string(),
        fixed => format!("channels: {} (as asked)", fixed.count().unwrap_or(1)),
    };
    let size_note = match opts.size {
        Some(s) => format!("size: {s}x{s} (as asked)"),
        None if (train.width, train.height) != (own_w, own_h) => format!(
            "size: IDX images are {own_w}x{own_h}, using {}x{}, the smallest the model takes",
            train.width, train.height
        ),
        None => format!("size: IDX images are {}x{}, using them", train.width, train.height),
    };
    Ok(Split {
        train,
        valid,
        warnings: Vec::new(),
        notes: vec![size_note, channels_note, split_note],
        source: "IDX".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::fixtures::TempDir;
    use crate::data::load;
    use std::io::Write;

    fn idx_bytes(magic: u32, dims: &[u32], body: &[u8]) -> Vec<u8> {
        let mut out = magic.to_be_bytes().to_vec();
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(body);
        out
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// Six 2x2 images whose pixels are all their index, labels 0,1,2,0,1,2; gzipped images, plain labels.
    fn write_train(d: &TempDir) -> Vec<u8> {
        let pixels: Vec<u8> = (0..6u8).flat_map(|i| [i; 4]).collect();
        d.write("train-images-idx3-ubyte.gz", &gz(&idx_bytes(IMAGES_MAGIC, &[6, 2, 2], &pixels)));
        d.write("train-labels-idx1-ubyte", &idx_bytes(LABELS_MAGIC, &[6], &[0, 1, 2, 0, 1, 2]));
        pixels
    }

    fn quiet() -> LoadOptions {
        LoadOptions { progress: false, valid_pct: 0.0, ..LoadOptions::default() }
    }

    #[test]
    fn round_trip_plain_and_gzip() {
        let d = TempDir::new("idx");
        let pixels = write_train(&d);
        assert!(is_idx_dir(d.path()));
        let s = load(d.path(), &quiet()).unwrap();
        assert_eq!(s.source, "IDX");
        assert_eq!((s.train.pixels.to_vec(), s.train.labels.clone()), (pixels, vec![0, 1, 2, 0, 1, 2]));
        assert_eq!(s.train.classes, vec!["0", "1", "2"]);
        assert_eq!((s.train.channels, s.train.height, s.train.width), (1, 2, 2));
        assert!(s.valid.is_empty());

        d.write("classes.txt", b"zero\none\ntwo\n");
        d.write("t10k-images-idx3-ubyte", &idx_bytes(IMAGES_MAGIC, &[1, 2, 2], &[9; 4]));
        d.write("t10k-labels-idx1-ubyte.gz", &gz(&idx_bytes(LABELS_MAGIC, &[1], &[2])));
        let opts = LoadOptions { size: Some(3), channels: ChannelsOpt::Rgba, ..quiet() };
        let s = load(d.path(), &opts).unwrap();
        assert_eq!(s.train.classes, vec!["zero", "one", "two"]);
        assert_eq!((s.valid.labels.clone(), s.valid.classes.clone()), (vec![2], s.train.classes.clone()));
        assert_eq!(s.notes[2], "split: t10k-* files");
        // Flat grey 9 resized to 3x3 and replicated, alpha opaque.
        assert_eq!(s.valid.pixels, [vec![9; 27], vec![255; 9]].concat());
        assert_eq!((s.train.len(), s.train.channels, s.train.height), (6, 4, 3));
    }

    #[test]
    fn split_without_t10k() {
        let d = TempDir::new("idx-split");
        write_train(&d);
        let s = load(d.path(), &LoadOptions { valid_pct: 0.5, ..quiet() }).unwrap();
        assert_eq!((s.train.class_counts(), s.valid.class_counts()), (vec![1, 1, 1], vec![1, 1, 1]));
    }

    #[test]
    fn damaged_files_are_named() {
        let d = TempDir::new("idx-bad");
        write_train(&d);
        d.write("train-labels-idx1-ubyte", &idx_bytes(IMAGES_MAGIC, &[6], &[0; 6]));
        let e = load(d.path(), &quiet()).unwrap_err().to_string();
        assert!(e.contains("train-labels-idx1-ubyte") && e.contains("0x00000803"), "{e}");
        d.write("train-labels-idx1-ubyte", &idx_bytes(LABELS_MAGIC, &[6], &[0; 5]));
        let e = load(d.path(), &quiet()).unwrap_err().to_string();
        assert!(e.contains("needs 6 bytes") && e.contains("only 5"), "{e}");
        d.write("train-labels-idx1-ubyte", &idx_bytes(LABELS_MAGIC, &[5], &[0; 5]));
        assert!(load(d.path(), &quiet()).unwrap_err().to_string().contains("5 labels for 6 images"));
        d.write("train-labels-idx1-ubyte", &idx_bytes(LABELS_MAGIC, &[6], &[0, 1, 2, 3, 0, 0]));
        d.write("classes.txt", b"a\nb\nc\n");
        assert!(load(d.path(), &quiet()).unwrap_err().to_string().contains("up to 3"));
        // A header promising far more than the file holds is caught without allocating it.
        d.write("train-images-idx3-ubyte.gz", &gz(&idx_bytes(IMAGES_MAGIC, &[60000, 1000, 1000], &[0; 10])));
        let e = read_images(&d.path().join("train-images-idx3-ubyte.gz")).unwrap_err().to_string();
        assert!(e.contains("needs 60000000000 bytes") && e.contains("only 10"), "{e}");
    }

    fn load_error(d: &TempDir) -> String {
        load(d.path(), &quiet()).unwrap_err().to_string()
    }

    #[test]
    fn labels_must_be_dense_training_classes() {
        let d = TempDir::new("idx-labels");
        let dir = d.path().display();
        d.write("train-images-idx3-ubyte", &idx_bytes(IMAGES_MAGIC, &[4, 1, 1], &[0; 4]));
        d.write("train-labels-idx1-ubyte", &idx_bytes(LABELS_MAGIC, &[4], &[0, 255, 0, 255]));
        assert_eq!(
            load_error(&d),
            format!("{dir}: training labels 1-254 have no images; labels must run 0..255 with every one used")
        );
        d.write("train-labels-idx1-ubyte", &idx_bytes(LABELS_MAGIC, &[4], &[0, 2, 4, 7]));
        assert_eq!(
            load_error(&d),
            format!("{dir}: training labels 1, 3, 5-6 have no images; labels must run 0..7 with every one used")
        );
        // classes.txt naming a class that no training image has.
        d.write("train-labels-idx1-ubyte", &idx_bytes(LABELS_MAGIC, &[4], &[0, 1, 0, 1]));
        d.write("classes.txt", b"a\nb\nc\n");
        assert_eq!(
            load_error(&d),
            format!("{dir}: training label 2 has no images; labels must run 0..2 with every one used")
        );
        std::fs::remove_file(d.path().join("classes.txt")).unwrap();
        // A t10k label outside the two training classes.
        d.write("t10k-images-idx3-ubyte", &idx_bytes(IMAGES_MAGIC, &[2, 1, 1], &[0; 2]));
        d.write("t10k-labels-idx1-ubyte", &idx_bytes(LABELS_MAGIC, &[2], &[1, 7]));
        assert_eq!(load_error(&d), format!("{dir}: t10k label 7 is not among the training labels 0-1"));
        d.write("t10k-labels-idx1-ubyte", &idx_bytes(LABELS_MAGIC, &[2], &[1, 0]));
        let s = load(d.path(), &quiet()).unwrap();
        assert_eq!((s.train.classes.len(), s.valid.labels.clone()), (2, vec![1, 0]));
    }

    #[test]
    fn files_without_pixels_say_so() {
        let d = TempDir::new("idx-empty");
        let images = d.path().join("train-images-idx3-ubyte");
        d.write("train-labels-idx1-ubyte", &idx_bytes(LABELS_MAGIC, &[0], &[]));
        d.write("train-images-idx3-ubyte", &idx_bytes(IMAGES_MAGIC, &[0, 28, 28], &[]));
        assert_eq!(
            load_error(&d),
            format!("{}: the file holds 0 images (its header says so): nothing to learn from", images.display())
        );
        d.write("train-labels-idx1-ubyte", &idx_bytes(LABELS_MAGIC, &[3], &[0, 1, 0]));
        d.write("train-images-idx3-ubyte", &idx_bytes(IMAGES_MAGIC, &[3, 0, 28], &[]));
        assert_eq!(
            load_error(&d),
            format!(
                "{}: its 3 images are 0x28 pixels (rows x columns): an image needs at least one of each",
                images.display()
            )
        );
        // The bytes alone give the same answer, without a file name.
        let bytes = idx_bytes(IMAGES_MAGIC, &[3, 28, 0], &[]);
        assert_eq!(
            parse_images(&bytes).unwrap_err().to_string(),
            "its 3 images are 28x0 pixels (rows x columns): an image needs at least one of each"
        );
        assert_eq!(parse_labels(&gz(&idx_bytes(LABELS_MAGIC, &[2], &[4, 5]))).unwrap(), vec![4, 5]);
        assert_eq!(
            parse_labels(&[0x1f, 0x8b, 1, 2]).unwrap_err().to_string(),
            "too short for an IDX header (8 bytes): unexpected end of file"
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "70,000 images: too many to interpret")]
    fn fashion_mnist_if_present() {
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/fashion-mnist"));
        if !root.is_dir() {
            return;
        }
        let s = load(root, &LoadOptions { progress: false, ..LoadOptions::default() }).unwrap();
        assert_eq!((s.train.len(), s.valid.len(), s.train.classes.len()), (60_000, 10_000, 10));
        assert_eq!((s.train.channels, s.train.height, s.train.width), (1, 28, 28));
        assert_eq!(s.train.classes[0], "T-shirt/top");
    }
}
