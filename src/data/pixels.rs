//! A dataset's pixel bytes: a buffer of its own, or a range of a decoded-image cache file mapped into memory, which
//! the training and validation sets read from one mapping instead of holding copies.

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

use memmap2::{Mmap, UncheckedAdvice};

/// u8 pixels, read as a slice (`Deref<Target = [u8]>`); equal when their bytes are, wherever they live.
#[derive(Clone)]
pub struct Pixels(Store);

#[derive(Clone)]
enum Store {
    Owned(Vec<u8>),
    /// Bytes `range` of a read-only mapping of a cache file, which crest only ever replaces whole (a new file renamed
    /// over it), never writes in place.
    Mapped {
        map: Arc<Mmap>,
        range: Range<usize>,
    },
}

/// Linux maps a faulting page's neighbours up to this alignment too ("fault-around", 64 KiB unless changed in
/// debugfs): pages given back are rounded out to it, so that none mapped along with an image stays behind.
const FAULT_AROUND: usize = 64 << 10;

impl Pixels {
    /// Bytes `range` of `map`; `None` when the range is not inside it.
    pub(crate) fn mapped(map: Arc<Mmap>, range: Range<usize>) -> Option<Pixels> {
        (range.start <= range.end && range.end <= map.len()).then_some(Pixels(Store::Mapped { map, range }))
    }

    /// The bytes as a buffer to change, copied out of the mapping first when they are mapped.
    pub fn to_mut(&mut self) -> &mut Vec<u8> {
        if let Store::Mapped { map, range } = &self.0 {
            self.0 = Store::Owned(map[range.clone()].to_vec());
        }
        match &mut self.0 {
            Store::Owned(v) => v,
            Store::Mapped { .. } => unreachable!("made owned above"),
        }
    }

    /// Whether the bytes are read from a cache file's mapping.
    pub fn is_mapped(&self) -> bool {
        matches!(self.0, Store::Mapped { .. })
    }

    /// Tells the kernel that bytes `range` (of these pixels) were read and are not needed again soon: mapped pages
    /// then leave this process's resident memory, staying in the page cache, so that reading a data set larger
    /// than memory each epoch does not make it resident. A no-op for owned bytes.
    pub fn release(&self, range: Range<usize>) {
        let Store::Mapped { map, range: own } = &self.0 else { return };
        // Fault-around aligns addresses, not offsets: the mapping starts on a page, not on 64 KiB.
        let base = map.as_ptr() as usize;
        let start =
            ((base + own.start + range.start.min(own.len())) / FAULT_AROUND * FAULT_AROUND).saturating_sub(base);
        let end = ((base + own.start + range.end.min(own.len())).next_multiple_of(FAULT_AROUND) - base).min(map.len());
        if start < end {
            // SAFETY: MADV_DONTNEED on a shared read-only file mapping only drops the page-table entries: a later
            // read faults the same bytes back in from the file (no private copy exists to lose, nothing was ever
            // written through this mapping). The bytes read back equal those dropped because the cache file is
            // never written in place (see `Store::Mapped`). An error (an old kernel) leaves the pages resident,
            // which costs memory, not correctness.
            let _ = unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start) };
        }
    }
}

impl Deref for Pixels {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Store::Owned(v) => v,
            Store::Mapped { map, range } => &map[range.clone()],
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
            Store::Mapped { range, .. } => write!(f, "Pixels(mapped, bytes {range:?} of a cache file)"),
        }
    }
}
