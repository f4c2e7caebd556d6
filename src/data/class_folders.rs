//! What an image folder holds: its classes (one sub-folder each) and their files, in a fixed order.
//!
//! Links are followed to the real file, and each real file is loaded once, so that a link can neither repeat a
//! class's images (a copy in the training set and another in the validation set makes accuracy a lie) nor give a
//! picture a second label:
//! - a link to a folder is followed when it stays inside its class folder; one that leads outside it (`ln -s ..`)
//!   or back to a folder it is in (`ln -s .`, a cycle) is skipped with a warning naming it;
//! - a link to a file is followed wherever it leads (data sets are often links into a store: git-annex, DVC, a
//!   shared folder of originals), except into another class's folder, where the same image would carry two labels:
//!   skipped with a warning;
//! - a file met a second time, through a link or not, is skipped with a warning naming the first path.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use super::hash128::Hash128;
use super::paths::FileList;
use crate::{Error, Result};

/// What a file of the folder is for; its path is the same entry of `ClassFolders::files`.
#[derive(Clone, Copy)]
pub(crate) struct Item {
    pub label: u32,
    pub valid: bool,
}

pub(crate) struct ClassFolders {
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// Files in class-then-path order, training files first, relative to the image folder.
    pub files: FileList,
    /// Each file's label and split, in step with `files`.
    pub items: Vec<Item>,
    /// Which folders give the split, when they do.
    pub split_note: Option<String>,
    /// Links and duplicates skipped, folder names made readable.
    pub warnings: Vec<String>,
}

/// Sub-folders of `dir` as (name, path), sorted by name. Hidden folders (`.git`, `.ipynb_checkpoints`) are never
/// classes.
fn sub_folders(dir: &Path) -> Result<Vec<(OsString, PathBuf)>> {
    let mut out = Vec::new();
    let unreadable = |e| Error::io("cannot read folder", dir, e);
    for entry in fs::read_dir(dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let name = entry.file_name();
        // fs::metadata follows symlinks, so a linked class folder counts.
        if !name.as_encoded_bytes().starts_with(b".") && fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()) {
            out.push((name, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// A folder name as text that shows what it is: valid UTF-8 as it is, other bytes as `\xNN`.
fn escaped(name: &std::ffi::OsStr) -> String {
    let mut out = String::new();
    for chunk in name.as_encoded_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The class name of each folder name. A name that is not UTF-8 gets its lossy form (invalid bytes as U+FFFD),
/// made unique with a `~2`, `~3`, ... suffix when another folder's name reads the same, and a warning.
fn class_names(folders: &[OsString], warnings: &mut Vec<String>) -> Vec<String> {
    let mut taken: HashSet<String> = folders.iter().filter_map(|n| n.to_str()).map(String::from).collect();
    let mut names = Vec::with_capacity(folders.len());
    for folder in folders {
        if let Some(name) = folder.to_str() {
            names.push(name.to_string());
            continue;
        }
        let lossy = folder.to_string_lossy().into_owned();
        let name = std::iter::once(lossy.clone())
            .chain((2..).map(|n| format!("{lossy}~{n}")))
            .find(|candidate| !taken.contains(candidate))
            .unwrap_or_default();
        taken.insert(name.clone());
        let why = if name == lossy { "" } else { ", as another folder's name reads the same" };
        warnings.push(format!("class folder '{}' is not UTF-8: its class is named '{name}'{why}", escaped(folder)));
        names.push(name);
    }
    names
}

/// Walks class folders, keeping each real file once.
struct Walk {
    /// Real path of each class folder, with its label (train and valid folders both).
    class_dirs: Vec<(PathBuf, u32)>,
    /// The files kept, under the folder walked.
    files: FileList,
    /// The hash of each kept file's real path (`Hash128`, as wide so that two files never share one), to the file.
    /// A hash, not the path, as this map has an entry for every file of the data set.
    seen: HashMap<u128, u32>,
    warnings: Vec<String>,
}

impl Walk {
    fn new(root: &Path, class_dirs: Vec<(PathBuf, u32)>, warnings: Vec<String>) -> Walk {
        Walk { class_dirs, files: FileList::new(root), seen: HashMap::new(), warnings }
    }

    fn real(path: &Path) -> Result<PathBuf> {
        fs::canonicalize(path).map_err(|e| Error::io("cannot resolve", path, e))
    }

    /// Adds the files of one class folder, nested folders included, sorted by path; returns how many.
    fn class(&mut self, dir: &Path, label: u32) -> Result<usize> {
        let before = self.files.len();
        let real = Self::real(dir)?;
        self.folder(dir, &real, label, &mut vec![real.clone()])?;
        Ok(self.files.len() - before)
    }

    /// `open` holds the real paths of the folders being walked, from the class folder down to `dir`.
    fn folder(&mut self, dir: &Path, real_dir: &Path, label: u32, open: &mut Vec<PathBuf>) -> Result<()> {
        let unreadable = |e| Error::io("cannot read folder", dir, e);
        // Names in one list, not a path each: a folder may hold most of a data set.
        let mut names = FileList::new(dir);
        for entry in fs::read_dir(dir).map_err(unreadable)? {
            names.push(Path::new(&entry.map_err(unreadable)?.file_name()));
        }
        let mut order: Vec<usize> = (0..names.len()).collect();
        order.sort_by(|&a, &b| names.relative(a).as_os_str().cmp(names.relative(b).as_os_str()));
        for i in order {
            let (name, path) = (names.relative(i), names.path(i));
            let Ok(own) = fs::symlink_metadata(&path) else { continue };
            let is_link = own.file_type().is_symlink();
            let (real, meta) = if is_link {
                match (fs::canonicalize(&path), fs::metadata(&path)) {
                    (Ok(real), Ok(meta)) => (real, meta),
                    // A broken link: not data.
                    _ => continue,
                }
            } else {
                (real_dir.join(name), own)
            };
            let shown = path.display();
            if meta.is_dir() {
                if open.contains(&real) {
                    let to = real.display();
                    self.warnings.push(format!("skipped link {shown}: it leads back to {to}, a folder it is in"));
                } else if !real.starts_with(&open[0]) {
                    let to = real.display();
                    self.warnings.push(format!("skipped link {shown}: it leads outside its class folder, to {to}"));
                } else {
                    open.push(real.clone());
                    self.folder(&path, &real, label, open)?;
                    open.pop();
                }
            } else if meta.is_file() {
                let other_class = self.class_dirs.iter().find(|(d, l)| *l != label && real.starts_with(d));
                let real_hash = Hash128::new().bytes(real.as_os_str().as_encoded_bytes()).finish();
                if let (true, Some((folder, _))) = (is_link, other_class) {
                    let folder = folder.display();
                    self.warnings
                        .push(format!("skipped link {shown}: it leads to a file of another class, in {folder}"));
                } else if let Some(&first) = self.seen.get(&real_hash) {
                    let first = self.files.path(first as usize);
                    self.warnings.push(format!("skipped {shown}: the same file as {}", first.display()));
                } else {
                    self.seen.insert(real_hash, self.files.len() as u32);
                    let relative = path.strip_prefix(&self.files.root).unwrap_or(&path);
                    self.files.push(relative);
                }
            }
        }
        Ok(())
    }
}

/// Images lying directly in `dir`, for the hint when it has no class folders.
fn loose_images(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries.flatten().filter(|e| e.path().is_file() && super::decode::probe(&e.path(), u64::MAX).is_ok()).count()
}

/// Every file under `dir`, at any depth, sorted by path and walked as a class folder is (links followed inside it,
/// each real file once), with the warnings for what was skipped.
pub(crate) fn files_under(dir: &Path) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let mut walk = Walk::new(dir, vec![(Walk::real(dir)?, 0)], Vec::new());
    walk.class(dir, 0)?;
    Ok(((0..walk.files.len()).map(|i| walk.files.path(i)).collect(), walk.warnings))
}

/// Classes and files of the image folder `root`.
pub(crate) fn discover(root: &Path) -> Result<ClassFolders> {
    let train_dir = root.join("train");
    let valid_dir = ["valid", "val"].map(|v| root.join(v)).into_iter().find(|d| d.is_dir());
    let (class_root, valid_dir, split_note) = match (train_dir.is_dir(), valid_dir) {
        (true, Some(v)) => {
            let note = format!("split: train/ and {}/ folders", v.file_name().unwrap_or_default().to_string_lossy());
            (train_dir, Some(v), Some(note))
        }
        // A train/ folder without a valid/ one (Kaggle's train/ + test/): its classes, split at random.
        (true, None) => (train_dir, None, None),
        (false, _) => (root.to_path_buf(), None, None),
    };
    let folders = sub_folders(&class_root)?;
    if folders.len() < 2 {
        let loose = loose_images(&class_root);
        let hint = if loose > 0 {
            format!("; its {loose} images should go in one sub-folder per class")
        } else {
            String::new()
        };
        return Err(Error::Data(format!(
            "{} has {} class folder(s), need at least 2 (one sub-folder per class){hint}",
            class_root.display(),
            folders.len()
        )));
    }
    let mut warnings = Vec::new();
    let raw_names: Vec<OsString> = folders.iter().map(|(n, _)| n.clone()).collect();
    let classes = class_names(&raw_names, &mut warnings);

    // Valid folders take the label of the training class of the same (raw) name.
    let mut valid_folders = Vec::new();
    if let Some(valid_dir) = &valid_dir {
        for (name, dir) in sub_folders(valid_dir)? {
            let Some(label) = raw_names.iter().position(|n| *n == name) else {
                return Err(Error::Data(format!(
                    "class '{}' in {} is not a class in {}",
                    name.to_string_lossy(),
                    valid_dir.display(),
                    class_root.display()
                )));
            };
            valid_folders.push((dir, label as u32));
        }
    }
    let train_folders = folders.into_iter().enumerate().map(|(label, (_, dir))| (dir, label as u32));
    let all: Vec<(PathBuf, u32, bool)> =
        train_folders.map(|(d, l)| (d, l, false)).chain(valid_folders.into_iter().map(|(d, l)| (d, l, true))).collect();
    let class_dirs = all.iter().map(|(d, l, _)| Ok((Walk::real(d)?, *l))).collect::<Result<_>>()?;
    let mut walk = Walk::new(root, class_dirs, warnings);
    let mut items = Vec::new();
    for (dir, label, valid) in &all {
        let found = walk.class(dir, *label)?;
        items.extend(std::iter::repeat_n(Item { label: *label, valid: *valid }, found));
    }
    Ok(ClassFolders { classes, files: walk.files, items, split_note, warnings: walk.warnings })
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::data::fixtures::{grey_png, TempDir};
    use crate::data::{load, LoadOptions};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;

    fn all_train() -> LoadOptions {
        LoadOptions { progress: false, valid_pct: 0.0, ..LoadOptions::default() }
    }

    /// `cats` (2 images) and `dogs` (1), each image's pixels its own value.
    fn cats_and_dogs() -> TempDir {
        let d = TempDir::new("links");
        d.write("cats/1.png", &grey_png(2, 2, 1));
        d.write("cats/2.png", &grey_png(2, 2, 2));
        d.write("dogs/1.png", &grey_png(2, 2, 3));
        d
    }

    #[test]
    fn folder_links_that_loop_or_leave_the_class_are_skipped() {
        let d = cats_and_dogs();
        let cats = d.path().join("cats");
        symlink(".", cats.join("loop")).unwrap();
        symlink("..", cats.join("up")).unwrap();
        std::fs::create_dir(cats.join("sub")).unwrap();
        symlink("..", cats.join("sub/back")).unwrap();
        let s = load(d.path(), &all_train()).unwrap();
        assert_eq!(
            (s.train.labels.clone(), s.train.pixels.iter().step_by(4).copied().collect::<Vec<_>>()),
            (vec![0, 0, 1], vec![1, 2, 3])
        );
        let real = |p: &Path| std::fs::canonicalize(p).unwrap().display().to_string();
        let (root, cats_real) = (real(d.path()), real(&cats));
        assert_eq!(
            s.warnings,
            [
                format!(
                    "skipped link {}: it leads back to {cats_real}, a folder it is in",
                    cats.join("loop").display()
                ),
                format!(
                    "skipped link {}: it leads back to {cats_real}, a folder it is in",
                    cats.join("sub/back").display()
                ),
                format!("skipped link {}: it leads outside its class folder, to {root}", cats.join("up").display()),
            ]
        );
    }

    #[test]
    fn each_real_file_loads_once_and_under_one_class() {
        let d = cats_and_dogs();
        let outside = TempDir::new("store");
        outside.write("kept.png", &grey_png(2, 2, 9));
        let cats = d.path().join("cats");
        symlink(outside.path().join("kept.png"), cats.join("0-store.png")).unwrap();
        symlink("1.png", cats.join("3-again.png")).unwrap();
        symlink("../dogs/1.png", cats.join("4-dog.png")).unwrap();
        let s = load(d.path(), &all_train()).unwrap();
        assert_eq!(s.train.pixels.iter().step_by(4).copied().collect::<Vec<_>>(), vec![9, 1, 2, 3]);
        let dogs = std::fs::canonicalize(d.path().join("dogs")).unwrap();
        assert_eq!(
            s.warnings,
            [
                format!(
                    "skipped {}: the same file as {}",
                    cats.join("3-again.png").display(),
                    cats.join("1.png").display()
                ),
                format!(
                    "skipped link {}: it leads to a file of another class, in {}",
                    cats.join("4-dog.png").display(),
                    dogs.display()
                ),
            ]
        );
    }

    #[test]
    fn a_validation_link_to_a_training_file_is_skipped() {
        let d = TempDir::new("leak");
        d.write("train/cats/1.png", &grey_png(2, 2, 1));
        d.write("train/dogs/1.png", &grey_png(2, 2, 2));
        d.write("valid/cats/2.png", &grey_png(2, 2, 3));
        symlink("../../train/cats/1.png", d.path().join("valid/cats/1.png")).unwrap();
        let s = load(d.path(), &all_train()).unwrap();
        assert_eq!((s.train.len(), s.valid.len()), (2, 1));
        let first = d.path().join("train/cats/1.png");
        assert_eq!(
            s.warnings,
            [format!("skipped {}: the same file as {}", d.path().join("valid/cats/1.png").display(), first.display())]
        );
    }

    #[test]
    fn non_utf8_folder_names_become_distinct_classes() {
        let d = TempDir::new("utf8");
        for name in [&b"caf\xe9"[..], b"caf\xe8", b"caf\xef\xbf\xbd~2"] {
            let dir = d.path().join(std::ffi::OsStr::from_bytes(name));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("1.png"), grey_png(2, 2, name[3])).unwrap();
        }
        let s = load(d.path(), &all_train()).unwrap();
        // Sorted by bytes: caf\xe8, caf\xe9, then the UTF-8 name "caf\u{fffd}~2" (0xef), which keeps its own name.
        assert_eq!(s.train.classes, ["caf\u{fffd}", "caf\u{fffd}~3", "caf\u{fffd}~2"]);
        assert_eq!(s.train.pixels.iter().step_by(4).copied().collect::<Vec<_>>(), vec![0xe8, 0xe9, 0xef]);
        assert_eq!(
            s.warnings,
            [
                "class folder 'caf\\xe8' is not UTF-8: its class is named 'caf\u{fffd}'",
                "class folder 'caf\\xe9' is not UTF-8: its class is named 'caf\u{fffd}~3', as another folder's name \
                 reads the same",
            ]
        );
    }
}
