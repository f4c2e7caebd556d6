//! Replacing a file whole, as every file crest writes is replaced (a model, a training log): the bytes go to a
//! temporary file beside the target, are synced to disk, and the temporary file is renamed over the target. A crash
//! or a full disk leaves the old file or the new one, never part of one; an error or a stop request
//! ([`crate::interrupt`]) removes the temporary file and leaves the old one as it was.
//!
//! The rules, checked before any work starts ([`check`]) and again as the file is written ([`write()`]):
//! - the target's folder exists and a file can be created in it;
//! - the target is a regular file or does not exist yet: a directory, a device (`/dev/null`), a FIFO or a socket is
//!   refused, never replaced (a rename would put a regular file in its place, even over a device node as root);
//! - a symbolic link is followed, as `cp` and PyTorch's `torch.save` do: what it leads to is replaced (the temporary
//!   file made beside that), and the link stays a link. A link is how a user puts a file elsewhere (on a bigger
//!   disk, in a shared folder); replacing the link would quietly undo that;
//! - a replaced file keeps its permissions.
//!
//! A temporary file is named `.NAME.crest-tmp-PID`. A process killed outright (SIGKILL, a power cut) cannot remove
//! its own, so each write first removes those in its folder whose process no longer runs (Linux, through /proc).

use crate::{interrupt, Error, Result};
use std::ffi::OsString;
use std::fs::{self, File, FileType, Metadata};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};

const TEMP_MARK: &str = ".crest-tmp-";
/// Linux's limit on symbolic links followed in one path lookup (past it, ELOOP).
const MAX_LINKS: usize = 40;

/// Checks that `path` can be written as [`write()`] writes it, leaving an existing file untouched; returns the file
/// that would be replaced (`path`, or what a link at `path` leads to). `what` names the file in errors ("the
/// model"). A program calls it before long work whose result goes to `path`.
pub fn check(path: &Path, what: &str) -> Result<PathBuf> {
    let fail = |e| failure(path, what, e);
    let (target, _) = writable_target(path).map_err(fail)?;
    let temp = temp_path(&target);
    create_temp(&temp).map_err(fail)?;
    fs::remove_file(&temp).map_err(fail)?;
    Ok(target)
}

/// Replaces the file at `path` (or what a link there leads to) with `bytes`, by the rules above.
pub fn write(path: &Path, what: &str, bytes: &[u8]) -> Result<()> {
    write_parts(path, what, &[bytes])
}

/// [`write()`] of the concatenation of `parts`, for a file made of large buffers that are not worth joining in
/// memory first (a cache of gigabytes of pixels).
pub fn write_parts(path: &Path, what: &str, parts: &[&[u8]]) -> Result<()> {
    let fail = |e| failure(path, what, e);
    let (target, existing) = writable_target(path).map_err(fail)?;
    remove_stale_temps(&target);
    let temp = temp_path(&target);
    let file = create_temp(&temp).map_err(fail)?;
    let result = fill(file, parts, existing.as_ref())
        .map_err(fail)
        .and_then(|()| interrupt::check())
        .and_then(|()| replace(&temp, &target, path).map_err(fail));
    if result.is_err() {
        // The error being returned says what went wrong; a temporary file that can't be removed either is left
        // for the next write into this folder to remove.
        let _ = fs::remove_file(&temp);
    }
    result
}

fn failure(path: &Path, what: &str, e: io::Error) -> Error {
    Error::io(&format!("cannot write {what} to"), path, e)
}

/// The file a write to `path` replaces, and its metadata if it exists, after checking the rules.
fn writable_target(path: &Path) -> io::Result<(PathBuf, Option<Metadata>)> {
    let target = follow_links(path)?;
    let existing = match fs::symlink_metadata(&target) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if let Some(m) = &existing {
        refuse_special(m, path, &target)?;
    }
    if target.file_name().is_none() {
        return Err(io::Error::new(ErrorKind::IsADirectory, "it names a directory, not a file"));
    }
    let folder = folder_of(&target);
    match fs::metadata(folder) {
        Ok(m) if m.is_dir() => Ok((target, existing)),
        Ok(_) => Err(io::Error::new(ErrorKind::NotADirectory, format!("{} is not a directory", folder.display()))),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            Err(io::Error::new(ErrorKind::NotFound, format!("the directory {} does not exist", folder.display())))
        }
        Err(e) => Err(e),
    }
}

/// Where a chain of symbolic links starting at `path` ends (a path that need not exist yet).
fn follow_links(path: &Path) -> io::Result<PathBuf> {
    let mut at = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = fs::read_link(&at)?;
                // A relative link is relative to its own folder; joining an absolute one replaces the folder.
                at = at.parent().map_or_else(|| to.clone(), |folder| folder.join(&to));
            }
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => return Ok(at),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

fn refuse_special(m: &Metadata, path: &Path, target: &Path) -> io::Result<()> {
    if m.is_file() {
        return Ok(());
    }
    let kind = kind_of(m.file_type());
    let why = if target == path {
        format!("it is {kind}, not a regular file")
    } else {
        format!("it leads to {}, which is {kind}, not a regular file", target.display())
    };
    Err(io::Error::new(if m.is_dir() { ErrorKind::IsADirectory } else { ErrorKind::InvalidInput }, why))
}

fn kind_of(t: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return "a character device";
        } else if t.is_block_device() {
            return "a block device";
        } else if t.is_fifo() {
            return "a FIFO";
        } else if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "a special file"
    }
}

fn folder_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

fn temp_path(target: &Path) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(target.file_name().unwrap_or_default());
    name.push(format!("{TEMP_MARK}{}", std::process::id()));
    target.with_file_name(name)
}

/// A new file at `temp`. Never opened through what is already there: a link planted at that name would send the
/// bytes elsewhere.
fn create_temp(temp: &Path) -> io::Result<File> {
    let open = || fs::OpenOptions::new().write(true).create_new(true).open(temp);
    match open() {
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            fs::remove_file(temp)?;
            open()
        }
        created => created,
    }
}

fn fill(mut file: File, parts: &[&[u8]], existing: Option<&Metadata>) -> io::Result<()> {
    if let Some(m) = existing {
        file.set_permissions(m.permissions())?;
    }
    for part in parts {
        file.write_all(part)?;
    }
    file.sync_all()
}

/// Renames the finished temporary file over the target, checking again that the target did not become a directory
/// or a special file while the bytes were written.
fn replace(temp: &Path, target: &Path, path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(target) {
        Ok(m) => refuse_special(&m, path, target)?,
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    fs::rename(temp, target)
}

/// Removes the temporary files beside `target` of crest processes that no longer run. Where /proc can't tell which
/// processes run, none are removed; one that can't be removed is left (it is no one's, and harms nothing but space).
fn remove_stale_temps(target: &Path) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(folder_of(target)) else { return };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(temp_owner) else { continue };
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && !proc.join(pid.to_string()).exists() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The process id in a temporary file's name, `.NAME.crest-tmp-PID`.
fn temp_owner(name: &str) -> Option<u32> {
    let (stem, pid) = name.rsplit_once(TEMP_MARK)?;
    let named = stem.len() > 1 && stem.starts_with('.');
    if named && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) {
        pid.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_carry_their_process() {
        let temp = temp_path(Path::new("out/m.safetensors"));
        assert_eq!(temp, PathBuf::from(format!("out/.m.safetensors.crest-tmp-{}", std::process::id())));
        assert_eq!(temp_owner(temp.file_name().unwrap().to_str().unwrap()), Some(std::process::id()));
        for other in ["m.safetensors", ".m.crest-tmp-", ".m.crest-tmp-12x", ".crest-tmp-12", "m.crest-tmp-12"] {
            assert_eq!(temp_owner(other), None, "{other}");
        }
    }
}
