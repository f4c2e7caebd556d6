//! A model file from disk into memory, refusing what is not a model file before reading it: anything but a regular
//! file (reading a FIFO or a terminal blocks for ever, a device may never end) and files larger than any model.

use crate::{Error, Result};
use std::io::Read;
use std::path::Path;

/// The largest model file read: 16 GiB, twice the largest model `crest train` makes (its CNN on 2048×2048 images
/// holds a Linear layer of 2^31 weights, 8 GiB). Refused from the file's size, before anything is read.
pub const MAX_MODEL_FILE_BYTES: u64 = 16 << 30;

/// The file's bytes. Symbolic links are followed, to a regular file only.
pub(super) fn read(path: &Path) -> Result<Vec<u8>> {
    let cannot_read = |e| Error::io("cannot read model file", path, e);
    let kind = std::fs::metadata(path).map_err(cannot_read)?.file_type();
    if !kind.is_file() {
        return Err(Error::model_file(path, format!("it is {}, not a regular file", describe(kind))));
    }
    let file = std::fs::File::open(path).map_err(cannot_read)?;
    let too_large = |len: u64| {
        Error::model_file(
            path,
            format!("it is {len} bytes long; crest reads model files of up to {MAX_MODEL_FILE_BYTES}"),
        )
    };
    let len = file.metadata().map_err(cannot_read)?.len();
    if len > MAX_MODEL_FILE_BYTES {
        return Err(too_large(len));
    }
    let mut bytes = Vec::new();
    let out_of_memory = || Error::io("cannot read model file", path, std::io::ErrorKind::OutOfMemory.into());
    bytes.try_reserve_exact(len as usize).map_err(|_| out_of_memory())?;
    // A file that grows while it is read stops at the bound all the same (read_to_end reserves fallibly).
    file.take(MAX_MODEL_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(cannot_read)?;
    match bytes.len() as u64 {
        n if n > MAX_MODEL_FILE_BYTES => Err(too_large(n)),
        _ => Ok(bytes),
    }
}

#[cfg(unix)]
fn describe(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    match kind {
        k if k.is_dir() => "a directory",
        k if k.is_fifo() => "a FIFO",
        k if k.is_socket() => "a socket",
        k if k.is_char_device() || k.is_block_device() => "a device",
        _ => "a special file",
    }
}

#[cfg(not(unix))]
fn describe(kind: std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else {
        "a special file"
    }
}
