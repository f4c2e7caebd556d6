//! Weights trained elsewhere into a crest model file: a safetensors file of a PyTorch state dict
//! (`safetensors.torch.save_file(model.state_dict(), …)`) whose names and shapes are those of a crest
//! architecture, which are PyTorch's (`nn.Sequential`'s `0.weight`, torchvision's `layer1.0.conv1.weight`).
//!
//! The file is untrusted input and is read as a model file is (bounded size, header checked by safetensors, every
//! tensor present, F32, of its shape, finite); what does not fit the architecture is refused with the first
//! mismatch, before anything is built.

use super::layout::Layout;
use super::{build, checksum_matches, file, validate, ModelMeta, META_KEY};
use crate::data::Preprocess;
use crate::loss::Loss;
use crate::nn::{LayerSpec, Module};
use crate::text::printable;
use crate::{Error, Result};
use std::collections::HashSet;
use std::path::Path;

/// How to make the file crest imports, in Python, for a model (`torchvision.models.resnet18(weights="DEFAULT")`).
pub const SAVE_AS_SAFETENSORS: &str =
    "from safetensors.torch import save_file; save_file(model.state_dict(), \"weights.safetensors\")";

/// PyTorch's BatchNorm counts its training batches in this buffer; it changes nothing in evaluation, and only
/// matters to training with `momentum=None`, which crest's BatchNorm does not do. Imported files may hold it.
const IGNORED_SUFFIX: &str = ".num_batches_tracked";

/// What an imported model is, besides its weights.
pub struct ImportOptions<'a> {
    /// The architecture as `--arch` names it, recorded in the model file.
    pub arch: &'a str,
    /// The model for `outputs` classes (only its last layer changes with them).
    pub spec_for: &'a dyn Fn(usize) -> LayerSpec,
    /// The channels the model reads; its input is `[channels, crop, crop]`.
    pub channels: usize,
    /// The transform the weights were trained behind, which `crest predict` applies.
    pub preprocess: Preprocess,
    /// The class names, one per output; `None` names them `class 0`, `class 1`, ….
    pub classes: Option<Vec<String>>,
}

/// The model in the safetensors file at `path`, in evaluation mode, with the metadata that makes it a crest model
/// file ([`super::save`] writes it, [`super::load`] reads it back). The number of classes is the file's (the
/// outputs of its last layer). A tensor the architecture lacks is refused, except BatchNorm's `num_batches_tracked`.
pub fn import(path: &Path, opts: ImportOptions) -> Result<(Box<dyn Module>, ModelMeta)> {
    let refuse = |reason: String| Error::Import { path: path.to_path_buf(), reason };
    let bytes = file::read(path).map_err(|e| match e {
        Error::ModelFile { reason, .. } => refuse(reason),
        e => e,
    })?;
    let file = Layout::parse(&bytes).map_err(|why| refuse(not_safetensors(&bytes, path, &why)))?;
    // A crest model file carries a checksum; PyTorch's files have none.
    checksum_matches(&file, file.entry(META_KEY)).map_err(refuse)?;
    let input = [opts.channels, opts.preprocess.crop, opts.preprocess.crop];
    let shapes = |spec: &LayerSpec| spec.shapes(&input).map(|s| s.tensors).map_err(|e| refuse(e.to_string()));
    let outputs = outputs(&file, &shapes(&(opts.spec_for)(2))?, &shapes(&(opts.spec_for)(3))?).map_err(refuse)?;
    let spec = (opts.spec_for)(outputs);
    let expected = shapes(&spec)?;
    matches(&file, &expected).map_err(refuse)?;
    validate::tensors(&file, &expected).map_err(refuse)?;
    let classes = match opts.classes {
        Some(names) if names.len() != outputs => {
            return Err(refuse(format!(
                "its last layer gives {outputs} outputs, but {} class names were given",
                names.len()
            )))
        }
        Some(names) => names,
        None => (0..outputs).map(|i| format!("class {i}")).collect(),
    };
    let mut meta = ModelMeta::new(classes, input, 1.0 / 255.0, opts.arch, Loss::CrossEntropy, spec);
    meta.preprocess = Some(opts.preprocess);
    validate::metadata(&meta).map_err(refuse)?;
    let model = build(&meta.spec, &file, path)?;
    Ok((model, meta))
}

/// Why `bytes` are not a safetensors file, and how to make one, as the end of a sentence.
fn not_safetensors(bytes: &[u8], path: &Path, why: &str) -> String {
    // `torch.save` writes a zip archive (PyTorch 1.6 on), or a bare pickle (protocol 2 and up) before.
    let pickled = bytes.starts_with(b"PK\x03\x04") || matches!(bytes, [0x80, 2..=5, ..]);
    if pickled {
        let shown = |p: &Path| printable(&p.display().to_string()).into_owned();
        format!(
            "it is a PyTorch pickle (torch.save), not safetensors; convert it in Python: import torch; from \
             safetensors.torch import save_file; save_file(torch.load(\"{}\", weights_only=True), \"{}\")",
            shown(path),
            shown(&path.with_extension("safetensors"))
        )
    } else {
        format!("it is not a safetensors file ({why}); save a PyTorch model's weights in Python: {SAVE_AS_SAFETENSORS}")
    }
}

/// The number of outputs of the weights' last layer: the size, in the file, of the first dimension that differs
/// between the architecture for 2 and for 3 outputs.
fn outputs(
    file: &Layout,
    for_two: &[(String, Vec<usize>)],
    for_three: &[(String, Vec<usize>)],
) -> Result<usize, String> {
    let (name, rank, axis) = for_two
        .iter()
        .zip(for_three)
        .find_map(|((name, a), (_, b))| Some((name, a.len(), a.iter().zip(b).position(|(x, y)| x != y)?)))
        .ok_or("the architecture's outputs change none of its tensors")?;
    let found = file.tensor(name).ok_or_else(|| format!("tensor {name} is missing"))?;
    if found.shape.len() != rank {
        return Err(format!("tensor {name}: expected {rank} dimensions, found {:?}", found.shape));
    }
    Ok(found.shape[axis])
}

/// Every tensor the architecture holds is in the file with its shape, and the file holds no other (but BatchNorm's
/// counters); else the first that is not, in the architecture's order.
fn matches(file: &Layout, expected: &[(String, Vec<usize>)]) -> Result<(), String> {
    for (name, shape) in expected {
        let found = file.tensor(name).ok_or_else(|| format!("tensor {name} is missing"))?;
        if found.shape != shape.as_slice() {
            return Err(format!("tensor {name}: expected {shape:?}, found {:?}", found.shape));
        }
    }
    let known: HashSet<&str> = expected.iter().map(|(name, _)| name.as_str()).collect();
    match file
        .tensors_by_name()
        .into_iter()
        .find(|(name, _)| !known.contains(name.as_str()) && !name.ends_with(IGNORED_SUFFIX))
    {
        Some((name, _)) => Err(format!("tensor {} is not in the architecture", printable(&name))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pickles_are_told_from_other_files_by_their_first_bytes() {
        let pickle = |bytes: &[u8]| not_safetensors(bytes, Path::new("w.pth"), "why").contains("PyTorch pickle");
        assert!(pickle(b"PK\x03\x04rest"));
        assert!(pickle(&[0x80, 2, 0x8a]));
        assert!(!pickle(&[0x80]));
        assert!(!pickle(&[0x80, 6]));
        assert!(!pickle(b""));
    }
}
