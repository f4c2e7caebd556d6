//! A dataset's pixel bytes: a buffer of its own, or a range of a decoded-image cache file, which the training and
//! validation sets share instead of holding copies.
//!
//! A cache file is both mapped into memory, for reading an image here and there as a slice (`Deref`), and kept
//! open, for reading batches with `pread` (`gather_into`). Batches are read, not sliced from the mapping, because
//! pages of a mapping that a process touches count in its resident memory until it gives them back, and Linux
//! maps a file's pages in whole folios (of up to megabytes, Linux 6.18 with ext4) around each one touched: giving
//! back exactly the images just read (MADV_DONTNEED) still left most of a shuffled pass over the mapping resident
//! (75 MB of a 100 MB data set, 103 MB of 200 MB, in `bench/cache_rss.sh`). `pread` copies from the page cache into the batch's buffer, so the kernel's cache does the caching
//! and the resident memory stays that of a batch, however large the data set.

use std::fmt;
use std::fs::File;
use std::ops::{Deref, Range};
use std::sync::Arc;

use memmap2::{Mmap, UncheckedAdvice};

/// u8 pixels, read as a slice (`Deref<Target = [u8]>`); equal when their bytes are, wherever they live.
#[derive(Clone)]
pub struct Pixels(Store);

#[derive(Clone)]
enum Store {
    Owned(Vec<u8>),
    /// Bytes `range` of a cache file.
    Mapped {
        file: Arc<MappedFile>,
        range: Range<usize>,
    },
}

/// A cache file, open and mapped read-only. crest only ever replaces a cache file whole (a new file renamed over
/// it), never writes into one in place.
pub(crate) struct MappedFile {
    pub file: File,
    pub map: Mmap,
}

impl Pixels {
    /// Bytes `range` of `file`; `None` when the range is not inside it.
    pub(crate) fn mapped(file: Arc<MappedFile>, range: Range<usize>) -> Option<Pixels> {
        (range.start <= range.end && range.end <= file.map.len()).then_some(Pixels(Store::Mapped { file, range }))
    }

    /// The bytes as a buffer to change, copied out of the cache file first when they are mapped.
    pub fn to_mut(&mut self) -> &mut Vec<u8> {
        if let Store::Mapped { .. } = &self.0 {
            self.0 = Store::Owned(self.to_vec());
        }
        match &mut self.0 {
            Store::Owned(v) => v,
            Store::Mapped { .. } => unreachable!("made owned above"),
        }
    }

    /// Whether the bytes are read from a cache file.
    pub fn is_mapped(&self) -> bool {
        matches!(self.0, Store::Mapped { .. })
    }

    /// Copies bytes `range` into `out` (of the same length): with `pread` from a cache file, leaving its mapping
    /// untouched (see the module's notes).
    pub fn copy_to(&self, range: Range<usize>, out: &mut [u8]) {
        if let Store::Mapped { file, range: own } = &self.0 {
            #[cfg(unix)]
            {
                use std::os::unix::fs::FileExt;
                if file.file.read_exact_at(out, (own.start + range.start) as u64).is_ok() {
                    return;
                }
                // A read that fails (an I/O error) falls back to the mapping, which reads the same file.
            }
            let _ = (file, own);
        }
        out.copy_from_slice(&self[range]);
    }

    /// Tells the kernel that bytes `range`, read through the mapping, are not needed again soon: their pages leave
    /// this process's resident memory and stay in the page cache. For the passes that read images as slices (an
    /// interpretation's, a fingerprint's), in order, so that a folio mapped past one range is given back with the
    /// next. A no-op for owned bytes.
    pub fn release(&self, range: Range<usize>) {
        let Store::Mapped { file, range: own } = &self.0 else { return };
        let start = own.start + range.start.min(own.len());
        let end = own.start + range.end.min(own.len());
        if start < end {
            // SAFETY: MADV_DONTNEED on a shared read-only file mapping only drops page-table entries: a later read
            // faults the same bytes back in from the file (there is no private copy to lose; nothing is ever
            // written through this mapping), and they are the same bytes because a cache file is never written in
            // place (`MappedFile`). An error leaves the pages resident, which costs memory, not correctness.
            let _ = unsafe { file.map.unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start) };
        }
    }
}

impl Deref for Pixels {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Store::Owned(v) => v,
            Store::Mapped { file, range } => &file.map[range.clone()],
        }
    }
}

impl From<Vec<u8>> for Pixels {
    fn from(v: Vec<u8>) -> Self {
        Pixels(Store::Owned(v))
    }
}

impl FromIterator<u8> for Pixels {
    fn from_iter<I: IntoIterator<Item = u8>>(iter: I) -> Self {
        iter.into_iter().collect::<Vec<u8>>().into()
    }
}

impl Default for Pixels {
    fn default() -> Self {
        Vec::new().into()
    }
}

impl PartialEq for Pixels {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl PartialEq<Vec<u8>> for Pixels {
    fn eq(&self, other: &Vec<u8>) -> bool {
        **self == other[..]
    }
}

impl fmt::Debug for Pixels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Store::Owned(v) => v.fmt(f),
            Store::Mapped { range, .. } => write!(f, "Pixels(bytes {range:?} of a cache file)"),
        }
    }
}
