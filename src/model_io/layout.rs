//! The safetensors layout of a file in memory: its header parsed once by the `safetensors` crate, whose errors
//! (`InvalidOffset("1.weight")`, `MetadataIncompleteBuffer`) are told here as sentences about the file.

use crate::text::printable;
use safetensors::tensor::{Dtype, Metadata, SafeTensorError};
use safetensors::SafeTensors;

pub(super) struct Layout<'a> {
    header: Metadata,
    /// Everything after the header: the tensors' bytes, which the header's offsets were checked to cover exactly.
    data: &'a [u8],
}

/// One tensor: its type and shape as the header gives them, and its bytes.
pub(super) struct TensorBytes<'a> {
    pub dtype: Dtype,
    pub shape: &'a [usize],
    pub bytes: &'a [u8],
}

impl<'a> TensorBytes<'a> {
    /// The values of an F32 tensor (little-endian, as safetensors stores them).
    pub fn values(&self) -> impl Iterator<Item = f32> + 'a {
        self.bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

impl<'a> Layout<'a> {
    /// The file's header, checked by safetensors: a tensor's offsets follow the one before it, match its dtype and
    /// shape, and the last ends at the end of the file. The reason it isn't one, as the end of a sentence.
    pub fn parse(file: &'a [u8]) -> Result<Layout<'a>, String> {
        ends_within(file)?;
        let (header_len, header) = SafeTensors::read_metadata(file).map_err(|e| describe(e, file))?;
        Ok(Layout { header, data: &file[8 + header_len..] })
    }

    /// A value of the header's `__metadata__` table.
    pub fn entry(&self, key: &str) -> Option<&str> {
        self.header.metadata().as_ref()?.get(key).map(String::as_str)
    }

    pub fn tensor(&self, name: &str) -> Option<TensorBytes<'_>> {
        let info = self.header.info(name)?;
        let (start, end) = info.data_offsets;
        Some(TensorBytes { dtype: info.dtype, shape: &info.shape, bytes: self.data.get(start..end)? })
    }

    /// Every tensor's name and bytes, in the order of their names.
    pub fn tensors_by_name(&self) -> Vec<(String, &'a [u8])> {
        let mut tensors: Vec<(String, &'a [u8])> = self
            .header
            .tensors()
            .into_iter()
            .map(|(name, info)| (name, self.data.get(info.data_offsets.0..info.data_offsets.1).unwrap_or_default()))
            .collect();
        tensors.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        tensors
    }
}

/// Refuses a tensor whose data would end beyond the file. safetensors 0.4 adds the last tensor's end to the
/// header's length without checking for overflow, which panics wherever overflow checks are on (debug builds,
/// `cargo fuzz`) when a header claims an end near 2^64; any other header is left to it.
fn ends_within(file: &[u8]) -> Result<(), String> {
    let header_len = file.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    let Some(header) = header_len.and_then(|n| file.get(8..usize::try_from(n).ok()?.checked_add(8)?)) else {
        return Ok(());
    };
    let data_len = (file.len() - 8 - header.len()) as u64;
    let Ok(serde_json::Value::Object(entries)) = serde_json::from_slice(header) else {
        return Ok(());
    };
    let end = |entry: &serde_json::Value| entry["data_offsets"][1].as_u64().filter(|&end| end > data_len);
    match entries.iter().find_map(|(name, entry)| Some((name, end(entry)?))) {
        Some((name, end)) => Err(format!(
            "tensor {}'s data lies outside the file (it would end {end} bytes after the header; {data_len} are there)",
            printable(name)
        )),
        None => Ok(()),
    }
}

/// What is wrong with `file`, for each error safetensors reports while reading its header.
fn describe(e: SafeTensorError, file: &[u8]) -> String {
    let claimed = file.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    match e {
        SafeTensorError::HeaderTooSmall => {
            format!("it is {} bytes long, shorter than the 8 bytes that give a safetensors header's length", file.len())
        }
        SafeTensorError::HeaderTooLarge => {
            format!("its header claims {} bytes, more than safetensors allows (100 MB)", claimed.unwrap_or(0))
        }
        SafeTensorError::InvalidHeaderLength => format!(
            "its header is cut short: it claims {} bytes, but only {} follow",
            claimed.unwrap_or(0),
            file.len().saturating_sub(8)
        ),
        SafeTensorError::InvalidHeader => "its header is not UTF-8 text".into(),
        SafeTensorError::InvalidHeaderStart => "its header does not start with '{'".into(),
        SafeTensorError::InvalidHeaderDeserialization | SafeTensorError::JsonError(_) => {
            "its header is not a safetensors header (a JSON table of tensors, each with dtype, shape and \
             data_offsets)"
                .into()
        }
        SafeTensorError::InvalidOffset(name) => format!(
            "tensor {}'s data does not start where the tensor before it ends (its offsets are damaged)",
            printable(&name)
        ),
        SafeTensorError::TensorInvalidInfo | SafeTensorError::InvalidTensorView(..) => {
            "a tensor's data is not the size its dtype and shape give".into()
        }
        SafeTensorError::ValidationOverflow => "a tensor's shape holds more values than a machine can".into(),
        SafeTensorError::MetadataIncompleteBuffer => {
            "its tensors' data does not end where the file does (the file is cut short, or has bytes added)".into()
        }
        SafeTensorError::TensorNotFound(name) => format!("tensor {} is missing", printable(&name)),
        SafeTensorError::IoError(e) => format!("it could not be read ({e})"),
    }
}
