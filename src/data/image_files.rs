//! The images in a folder without classes, at any depth: what `crest predict DIR` classifies.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::class_folders;
use super::decode::{self, Skip};
use super::image_folder::not_images_warning;
use crate::Result;

/// The files under `dir` that are images or are named as images (a corrupt `.png` is kept, for its reader to say
/// what is wrong with it), sorted by path and found as the image-folder loader finds a class's files; and warnings
/// for the rest (files that are not images, links skipped).
pub fn image_files(dir: &Path) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let (files, mut warnings) = class_folders::files_under(dir)?;
    let is_image: Vec<bool> =
        files.par_iter().map(|f| !matches!(decode::probe(f, u64::MAX), Err(Skip::NotImage))).collect();
    let others: Vec<&Path> =
        files.iter().zip(&is_image).filter(|(_, &image)| !image).map(|(f, _)| f.as_path()).collect();
    warnings.splice(0..0, not_images_warning(&others));
    let images = files.iter().zip(&is_image).filter(|(_, &image)| image).map(|(f, _)| f.clone()).collect();
    Ok((images, warnings))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::data::fixtures::{grey_png, TempDir};

    #[test]
    fn images_at_any_depth_sorted_and_the_rest_counted() {
        let d = TempDir::new("image-files");
        d.write("b.png", &grey_png(2, 2, 1));
        d.write("a/deep/c.png", &grey_png(2, 2, 2));
        d.write("a/broken.png", b"not a png");
        d.write("a/.DS_Store", b"\0\0\0\x01Bud1");
        d.write("notes.txt", b"hello");
        std::os::unix::fs::symlink("b.png", d.path().join("z-again.png")).unwrap();
        let (files, warnings) = image_files(d.path()).unwrap();
        let root = d.path();
        assert_eq!(files, [root.join("a/broken.png"), root.join("a/deep/c.png"), root.join("b.png")]);
        assert_eq!(
            warnings,
            [
                format!("skipped 2 files that are not images (e.g. {})", root.join("a/.DS_Store").display()),
                format!(
                    "skipped {}: the same file as {}",
                    root.join("z-again.png").display(),
                    root.join("b.png").display()
                ),
            ]
        );
    }
}
