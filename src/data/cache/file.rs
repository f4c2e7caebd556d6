//! The cache file's layout, written whole and read as untrusted input.
//!
//! ```text
//! offset  bytes  what
//!      0      8  magic "CRESTPX\n"
//!      8      4  format version (u32, little-endian)
//!     12      8  index length L (u64)
//!     20      4  CRC-32 of the index
//!     24      L  index: JSON of `Index` (the key, the shape, which file each image is, the load's warnings and notes)
//!              zeros up to the next multiple of 4096, where the pixels start (page-aligned for the mapping)
//!      P  N·C·H·W  pixels, u8 [N, C, H, W]: the training images, then the validation ones
//! ```
//! The file ends exactly where its index says the pixels end.
//!
//! What is checked before a byte of pixels is used: the magic, the format, the index's CRC and its parse, the key
//! (crest's version, the options, the classes, the hash of every file's stamp), the shape (1, 3 or 4 channels,
//! sizes that multiply without overflow), that every image names a file of the folder, and that the file's length
//! is exactly the header, index and pixels together. The pixels themselves carry no checksum: any byte is a valid
//! pixel, so a changed one can mislead training but not crash it or reach outside the file;
//! the file is written to a temporary name, synced and renamed (`careful_write`), so a crash or a full disk cannot
//! leave a torn one; and a CRC over gigabytes at each start would read the whole file in, which is the cost the
//! cache exists to save (and would fill the page cache and the resident memory kept flat by `Pixels::release`).

use std::fs::File;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use super::key::Key;
use crate::data::pixels::MappedFile;
use crate::{careful_write, Error, Result};

const MAGIC: &[u8; 8] = b"CRESTPX\n";
/// Raised whenever the layout or the meaning of a field changes: 2 when the key's list of file stamps became their
/// hash.
const FORMAT: u32 = 2;
const HEADER: usize = 24;
const PAGE: usize = 4096;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Index {
    pub key: Key,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// How many of the images are training images; the rest are validation ones.
    pub train: usize,
    /// Each image's file, as an index into the folder's files (`key.files` of them); its label is that file's.
    pub files: Vec<u32>,
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
}

impl Index {
    pub fn item_len(&self) -> usize {
        self.channels * self.height * self.width
    }
}

/// Why a cache file is not used.
#[derive(Debug, PartialEq)]
pub(crate) enum Refusal {
    /// There is none yet.
    Absent,
    /// For other images: to be rebuilt without fuss.
    Stale(String),
    /// Damaged, foreign, of another version or unreadable: rebuilt, with a warning.
    Untrusted(String),
}

/// Writes `index` and the pixels to `path`, replacing it whole or not at all.
pub(crate) fn write(path: &Path, index: &Index, train: &[u8], valid: &[u8]) -> Result<()> {
    let json =
        serde_json::to_vec(index).map_err(|e| Error::Data(format!("cannot encode the image cache index: {e}")))?;
    let mut head = Vec::with_capacity(pixels_at(json.len()));
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&FORMAT.to_le_bytes());
    head.extend_from_slice(&(json.len() as u64).to_le_bytes());
    head.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
    head.extend_from_slice(&json);
    head.resize(pixels_at(json.len()), 0);
    careful_write::write_parts(path, "the image cache", &[&head, train, valid])
}

/// Where the pixels start after an index of `len` bytes.
fn pixels_at(len: usize) -> usize {
    (HEADER + len).next_multiple_of(PAGE)
}

/// The index of the cache file at `path`, the file mapped and where in it the pixels start, when it holds the
/// images `key` describes and passes every check above.
pub(crate) fn read(path: &Path, key: &Key) -> std::result::Result<(Index, Arc<MappedFile>, usize), Refusal> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => return Err(Refusal::Absent),
        Err(e) => return Err(Refusal::Untrusted(format!("cannot be read ({e})"))),
    };
    // SAFETY: the mapping is read-only and crest never writes into a cache file in place: a new one is written
    // under a temporary name and renamed over it (`careful_write`), which leaves the file mapped here as it was.
    // Another program truncating or rewriting the file in place while it is mapped is outside what crest can
    // guard against, as for every memory-mapped file.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Refusal::Untrusted(format!("cannot be mapped ({e})")))?;
    let (index, at) = parse(&map, key)?;
    Ok((index, Arc::new(MappedFile { file, map }), at))
}

/// The index and where the pixels start.
fn parse(bytes: &[u8], key: &Key) -> std::result::Result<(Index, usize), Refusal> {
    let damaged = |why: String| Refusal::Untrusted(format!("is damaged ({why})"));
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(Refusal::Untrusted("is not a crest image cache".into()));
    }
    let format = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default());
    if format != FORMAT {
        return Err(Refusal::Untrusted(format!("is in cache format {format}, not {FORMAT}")));
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().unwrap_or_default());
    let crc = u32::from_le_bytes(bytes[20..24].try_into().unwrap_or_default());
    let Some(json) = usize::try_from(len).ok().and_then(|len| bytes.get(HEADER..HEADER.checked_add(len)?)) else {
        return Err(damaged(format!("its index of {len} bytes runs past its end")));
    };
    if crc32fast::hash(json) != crc {
        return Err(damaged("its index fails its checksum".into()));
    }
    let index: Index = serde_json::from_slice(json).map_err(|e| damaged(format!("its index does not parse: {e}")))?;
    if index.key.crest != key.crest {
        return Err(Refusal::Untrusted(format!("was written by crest {}", index.key.crest)));
    }
    if index.key.options != key.options {
        return Err(Refusal::Untrusted(format!("was made with other options ({})", index.key.options)));
    }
    if index.key != *key {
        return Err(Refusal::Stale("the images changed since it was written".into()));
    }
    let at = pixels_at(json.len());
    check_shape(&index, at, bytes.len()).map_err(damaged)?;
    Ok((index, at))
}

fn check_shape(index: &Index, pixels_at: usize, file_len: usize) -> std::result::Result<(), String> {
    let (c, h, w) = (index.channels, index.height, index.width);
    if ![1, 3, 4].contains(&c) || h == 0 || w == 0 {
        return Err(format!("its images are {c}x{h}x{w}"));
    }
    let n = index.files.len();
    if index.train > n {
        return Err(format!("{} training images of {n}", index.train));
    }
    let files = index.key.files;
    if let Some(f) = index.files.iter().find(|&&f| f as usize >= files) {
        return Err(format!("an image is file {f} of {files}"));
    }
    let end = c
        .checked_mul(h)
        .and_then(|x| x.checked_mul(w))
        .and_then(|x| x.checked_mul(n))
        .and_then(|x| x.checked_add(pixels_at));
    if end != Some(file_len) {
        return Err(format!(
            "it is {file_len} bytes long, not the {} its index gives",
            end.map_or("overflowing".into(), |e| e.to_string())
        ));
    }
    Ok(())
}
