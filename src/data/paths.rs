//! Each image's file, for a data set read from an image folder: the folder's file list, shared by the training and
//! validation sets and their subsets, and an index into it for each image.
//!
//! Not a `PathBuf` an image: a hundred thousand of those are a hundred thousand small allocations of ~100 bytes
//! (the full path and its header), which made the peak memory of a load from the image cache grow with the data
//! set (`bench/cache_rss.sh`); here an image costs 4 bytes, and a file its path relative to the folder.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Files under `root`, each as its path relative to it, in the order they were added: the paths' bytes in one
/// buffer, not an allocation each, which would cost a file 48 bytes or more however short its path.
#[derive(Debug, Default)]
pub(crate) struct FileList {
    pub root: PathBuf,
    /// The relative paths, one after another, as `OsStr::as_encoded_bytes` gives them.
    bytes: Vec<u8>,
    /// Where each path's bytes end.
    ends: Vec<usize>,
}

impl FileList {
    pub fn new(root: &Path) -> FileList {
        FileList { root: root.to_path_buf(), ..FileList::default() }
    }

    pub fn push(&mut self, relative: &Path) {
        self.bytes.extend_from_slice(relative.as_os_str().as_encoded_bytes());
        self.ends.push(self.bytes.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// File `i`'s path relative to `root`.
    pub fn relative(&self, i: usize) -> &Path {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        // SAFETY: `bytes[start..ends[i]]` are exactly the bytes `as_encoded_bytes` gave for one whole path in
        // `push`, in this same process, which is what `from_encoded_bytes_unchecked` asks for: nothing else writes
        // to `bytes` or `ends`, and both only grow.
        Path::new(unsafe { OsStr::from_encoded_bytes_unchecked(&self.bytes[start..self.ends[i]]) })
    }

    /// File `i`'s path: `root` joined with its relative path.
    pub fn path(&self, i: usize) -> PathBuf {
        self.root.join(self.relative(i))
    }
}

/// Each image's file, as a list of paths (`get`, `iter`); equal when the paths are.
#[derive(Clone, Default)]
pub struct Paths {
    files: Arc<FileList>,
    /// Each image's file, an index into `files`.
    which: Vec<u32>,
}

impl Paths {
    /// The images of files `which` of `files`; `None` when one is not a file of it.
    pub(crate) fn new(files: Arc<FileList>, which: Vec<u32>) -> Option<Paths> {
        which.iter().all(|&f| (f as usize) < files.len()).then_some(Paths { files, which })
    }

    pub fn len(&self) -> usize {
        self.which.len()
    }

    pub fn is_empty(&self) -> bool {
        self.which.is_empty()
    }

    /// Image `i`'s file.
    pub fn get(&self, i: usize) -> Option<PathBuf> {
        self.which.get(i).map(|&f| self.files.path(f as usize))
    }

    pub fn iter(&self) -> impl Iterator<Item = PathBuf> + '_ {
        self.which.iter().map(|&f| self.files.path(f as usize))
    }

    /// Each image's index into `files`, when these are images of that list.
    pub(crate) fn indices_into(&self, files: &Arc<FileList>) -> Option<&[u32]> {
        Arc::ptr_eq(&self.files, files).then_some(&self.which[..])
    }

    /// The files of images `idx`, in that order.
    pub(crate) fn subset(&self, idx: &[usize]) -> Paths {
        Paths { files: self.files.clone(), which: idx.iter().map(|&i| self.which[i]).collect() }
    }

    /// Keeps the files of the images whose `keep` flag is set, in order.
    pub(crate) fn retain(&mut self, keep: &[bool]) {
        let mut flags = keep.iter();
        self.which.retain(|_| flags.next().copied().unwrap_or(false));
    }

    /// These files, then `other`'s.
    pub(crate) fn extend(&mut self, other: Paths) {
        if Arc::ptr_eq(&self.files, &other.files) {
            self.which.extend(other.which);
        } else {
            *self = self.iter().chain(other.iter()).collect();
        }
    }
}

/// Paths given whole, each its own file (datasets made in code, tests).
impl FromIterator<PathBuf> for Paths {
    fn from_iter<I: IntoIterator<Item = PathBuf>>(iter: I) -> Self {
        let mut files = FileList::default();
        iter.into_iter().for_each(|path| files.push(&path));
        let which = (0..files.len() as u32).collect();
        Paths { files: Arc::new(files), which }
    }
}

impl PartialEq for Paths {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl fmt::Debug for Paths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_share_the_folder_list() {
        let mut files = FileList::new(Path::new("/data"));
        for p in ["a/1.png", "a/2.png", "b/1.png"] {
            files.push(Path::new(p));
        }
        assert_eq!(files.relative(1), Path::new("a/2.png"));
        let files = Arc::new(files);
        let mut paths = Paths::new(files.clone(), vec![2, 0, 1]).unwrap();
        assert!(Paths::new(files.clone(), vec![3]).is_none());
        assert_eq!(paths.get(0), Some(PathBuf::from("/data/b/1.png")));
        assert_eq!(paths.get(3), None);
        assert_eq!(paths.subset(&[1]).indices_into(&files), Some(&[0][..]));
        paths.retain(&[true, false, true]);
        assert_eq!(paths, ["/data/b/1.png", "/data/a/2.png"].map(PathBuf::from).into_iter().collect());
        // Paths of another list are appended as they read.
        paths.extend(["x.png"].map(PathBuf::from).into_iter().collect());
        assert_eq!(paths.iter().collect::<Vec<_>>(), ["/data/b/1.png", "/data/a/2.png", "x.png"].map(PathBuf::from));
        assert_eq!(paths.indices_into(&files), None);
    }
}
