//! The checksum a model file carries, so that damage (a flipped bit on a disk, a file cut and padded back) is
//! refused instead of changing predictions without a word.
//!
//! CRC-32 (IEEE, as zip and PNG use it) of crest's metadata JSON followed by every tensor's bytes in the order of
//! the tensors' names, written as 8 lowercase hex digits under `crest_crc32` in the header's `__metadata__` table.
//! It detects every error of up to 32 bits in a row and all but one in 2^32 of the rest. It is not a signature:
//! anyone who can write the file can recompute it, as they could any unkeyed hash (SHA-256 included), so a
//! stronger hash would buy nothing here but a dependency; crafted files are what the checks of everything in the
//! file are for. Swapping two tensors of one shape, or their names, changes the order of the bytes and so the sum.

/// The `__metadata__` key.
pub(super) const KEY: &str = "crest_crc32";

/// The checksum of `meta` (crest's metadata JSON, when the file has any) and `tensors`, as stored.
pub(super) fn of<'a>(meta: Option<&str>, tensors: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut tensors: Vec<_> = tensors.into_iter().collect();
    tensors.sort_unstable_by_key(|&(name, _)| name);
    let mut crc = crc32fast::Hasher::new();
    crc.update(meta.unwrap_or_default().as_bytes());
    tensors.iter().for_each(|(_, bytes)| crc.update(bytes));
    format!("{:08x}", crc.finalize())
}
