//! crest's safetensors files in general — a model file, a checkpoint: named F32 tensors, crest's metadata JSON
//! under one key of the header's `__metadata__` table, and the checksum of both ([`super::checksum`]).

use super::layout::Layout;
use super::{checksum, validate};
use crate::{Error, Result};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;

/// Values as a safetensors F32 tensor's bytes (little-endian).
pub(crate) fn le_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The file's bytes: each tensor (name, shape, little-endian F32 bytes), `meta` under `key`, and the checksum.
///
/// safetensors writes its `__metadata__` table from a `HashMap`, whose order differs from process to process; the
/// header is written again with its keys sorted, so that the same contents make the same file, byte for byte (a
/// resumed run's model file equals an uninterrupted run's). Readers look tensors up by name and order them by
/// offset, so the order of the header's keys means nothing to them.
pub(crate) fn encode(tensors: &[(String, Vec<usize>, Vec<u8>)], key: &str, meta: Option<String>) -> Result<Vec<u8>> {
    let sum = checksum::of(meta.as_deref(), tensors.iter().map(|(name, _, bytes)| (name.as_str(), bytes.as_slice())));
    let mut info = HashMap::from([(checksum::KEY.to_string(), sum)]);
    info.extend(meta.map(|m| (key.to_string(), m)));
    let invalid = |e: String| Error::InvalidArgument(format!("cannot serialise the tensors: {e}"));
    let views = tensors
        .iter()
        .map(|(name, shape, b)| TensorView::new(Dtype::F32, shape.clone(), b).map(|v| (name.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    let file = safetensors::serialize(views, &Some(info)).map_err(|e| invalid(e.to_string()))?;
    sort_header(&file).map_err(invalid)
}

/// `file` with its header's keys in sorted order (serde_json's `Value` keeps objects sorted), padded again with
/// spaces to a multiple of 8 bytes as safetensors pads it.
fn sort_header(file: &[u8]) -> Result<Vec<u8>, String> {
    let len = u64::from_le_bytes(file[..8].try_into().map_err(|_| "no header length")?) as usize;
    let header: serde_json::Value = serde_json::from_slice(&file[8..8 + len]).map_err(|e| e.to_string())?;
    let mut sorted = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    sorted.resize(sorted.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(file.len());
    out.extend_from_slice(&(sorted.len() as u64).to_le_bytes());
    out.extend_from_slice(&sorted);
    out.extend_from_slice(&file[8 + len..]);
    Ok(out)
}

/// A file read back: its header checked by safetensors, its metadata under the key asked for, its checksum
/// required and matching.
pub(crate) struct TensorFile<'a> {
    layout: Layout<'a>,
    meta: String,
}

impl<'a> TensorFile<'a> {
    /// The file in `bytes`, or why it is not one (as the end of a sentence about it).
    pub fn parse(bytes: &'a [u8], key: &str) -> Result<TensorFile<'a>, String> {
        let layout = Layout::parse(bytes)?;
        let meta = layout.entry(key).ok_or_else(|| format!("it has no {key} metadata"))?.to_string();
        if !super::checksum_matches(&layout, Some(&meta))? {
            return Err("it has no checksum".into());
        }
        Ok(TensorFile { layout, meta })
    }

    pub fn meta(&self) -> &str {
        &self.meta
    }

    /// How many tensors the file holds.
    pub fn len(&self) -> usize {
        self.layout.tensors_by_name().len()
    }

    /// The values of each of `expected` (name, shape), checked as a model file's tensors are: present, F32 of that
    /// shape, finite, no negative variance.
    pub fn values(&self, expected: &[(String, Vec<usize>)]) -> Result<Vec<Vec<f32>>, String> {
        validate::tensors(&self.layout, expected)?;
        Ok(expected.iter().filter_map(|(name, _)| self.layout.tensor(name)).map(|t| t.values().collect()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_contents_make_the_same_bytes_and_read_back() {
        let tensors = vec![("w".to_string(), vec![2], le_bytes(&[1.5, -2.0]))];
        // Each HashMap draws its own hash keys, so without sorting two of these would differ now and then.
        let files: Vec<Vec<u8>> = (0..32).map(|_| encode(&tensors, "crest", Some("{}".into())).unwrap()).collect();
        assert!(files.windows(2).all(|w| w[0] == w[1]));
        let header_len = u64::from_le_bytes(files[0][..8].try_into().unwrap()) as usize;
        assert_eq!(header_len % 8, 0);
        let header = std::str::from_utf8(&files[0][8..8 + header_len]).unwrap();
        assert!(header.starts_with(r#"{"__metadata__":{"crest":"{}","crest_crc32":"#), "{header}");
        let file = TensorFile::parse(&files[0], "crest").unwrap();
        assert_eq!(file.meta(), "{}");
        assert_eq!(file.values(&[("w".into(), vec![2])]).unwrap(), vec![vec![1.5, -2.0]]);
    }
}
