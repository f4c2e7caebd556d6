//! Model files: weights as safetensors (PyTorch's `safetensors.torch.load_file` reads them, with `nn.Sequential`'s
//! key names) plus crest's metadata — classes, preprocessing and architecture — to rebuild the model.

use crate::loss::Loss;
use crate::nn::{LayerSpec, Module};
use crate::rng::Rng;
use crate::{Error, Result, Tensor};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Bumped when the file layout changes; files of other formats are refused, not guessed at.
pub const FORMAT: u32 = 1;
const META_KEY: &str = "crest";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    pub format: u32,
    pub crest_version: String,
    pub classes: Vec<String>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Pixel bytes are multiplied by this before the model sees them.
    pub scale: f32,
    /// How the model was asked for on the command line (`linear`, `mlp:256`, …).
    pub arch: String,
    pub loss: Loss,
    pub spec: LayerSpec,
}

impl ModelMeta {
    pub fn new(classes: Vec<String>, shape: [usize; 3], scale: f32, arch: &str, loss: Loss, spec: LayerSpec) -> Self {
        let [channels, height, width] = shape;
        ModelMeta {
            format: FORMAT,
            crest_version: env!("CARGO_PKG_VERSION").to_string(),
            classes,
            channels,
            height,
            width,
            scale,
            arch: arch.to_string(),
            loss,
            spec,
        }
    }
}

/// Everything a model file holds: parameters, then buffers (running statistics).
fn state(model: &dyn Module) -> Vec<(String, Tensor)> {
    let mut s = model.named_parameters();
    s.extend(model.named_buffers());
    s
}

/// Writes a model with its metadata, so that [`load`] rebuilds it. Every layer must describe itself
/// ([`Module::spec`]); a model with a layer of your own can be saved with [`save_weights`].
pub fn save(path: &Path, model: &dyn Module, meta: &ModelMeta) -> Result<()> {
    let info = serde_json::to_string(meta).map_err(|e| Error::InvalidArgument(format!("model metadata: {e}")))?;
    write_safetensors(path, model, Some(HashMap::from([(META_KEY.to_string(), info)])))
}

/// Writes the model's parameters and buffers only, under their PyTorch names (`safetensors.torch.load_file` reads
/// them; [`load_weights`] puts them back into a model built the same way).
pub fn save_weights(path: &Path, model: &dyn Module) -> Result<()> {
    write_safetensors(path, model, None)
}

/// Writes as [`crate::careful_write`] does: a crash, an error or a stop leaves the old file or the new one, never half
/// of one, and a device, directory or FIFO at `path` is refused, not replaced.
fn write_safetensors(path: &Path, model: &dyn Module, info: Option<HashMap<String, String>>) -> Result<()> {
    let params = state(model);
    let bytes: Vec<Vec<u8>> =
        params.iter().map(|(_, p)| p.data().iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let invalid = |e: safetensors::SafeTensorError| Error::InvalidArgument(format!("cannot serialise the model: {e}"));
    let views = params
        .iter()
        .zip(&bytes)
        .map(|((name, p), b)| TensorView::new(Dtype::F32, p.shape().to_vec(), b).map(|v| (name.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)?;
    let buffer = safetensors::serialize(views, &info).map_err(invalid)?;
    crate::careful_write::write(path, "the model", &buffer)
}

/// Reads a model file back: the rebuilt model, in evaluation mode, and its metadata. A damaged file, a file that
/// is not crest's, or one of another format version is refused with the reason.
pub fn load(path: &Path) -> Result<(Box<dyn Module>, ModelMeta)> {
    let buffer = std::fs::read(path).map_err(|e| Error::io("cannot read model file", path, e))?;
    let st = SafeTensors::deserialize(&buffer).map_err(|e| Error::model_file(path, format!("{e:?}")))?;
    let (_, header) = SafeTensors::read_metadata(&buffer).map_err(|e| Error::model_file(path, format!("{e:?}")))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .ok_or_else(|| Error::model_file(path, "no crest metadata"))?;
    let header_value = serde_json::from_str::<serde_json::Value>(json).ok();
    let format = header_value.as_ref().and_then(|v| v["format"].as_u64());
    if format != Some(FORMAT as u64) {
        let written_by = header_value.as_ref().and_then(|v| v["crest_version"].as_str().map(String::from));
        return Err(Error::ModelVersion { path: path.to_path_buf(), format, written_by });
    }
    let meta: ModelMeta = serde_json::from_str(json).map_err(|e| Error::model_file(path, format!("metadata: {e}")))?;
    let mut model = meta.spec.build(&mut Rng::new(0));
    model.set_training(false);
    read_state(path, &st, model.as_ref())?;
    Ok((model, meta))
}

/// Reads weights written by [`save_weights`] (or by `save`, or by PyTorch's `safetensors.torch.save_file` with
/// the same names) into `model`, whose parameters and buffers must all be in the file with the same shapes.
pub fn load_weights(path: &Path, model: &dyn Module) -> Result<()> {
    let buffer = std::fs::read(path).map_err(|e| Error::io("cannot read weights file", path, e))?;
    let st = SafeTensors::deserialize(&buffer).map_err(|e| Error::model_file(path, format!("{e:?}")))?;
    read_state(path, &st, model)
}

fn read_state(path: &Path, st: &SafeTensors, model: &dyn Module) -> Result<()> {
    for (name, p) in state(model) {
        let t = st.tensor(&name).map_err(|_| Error::model_file(path, format!("tensor {name} is missing")))?;
        if t.dtype() != Dtype::F32 || t.shape() != p.shape() {
            let why = format!("tensor {name} is {:?} {:?}, expected F32 {:?}", t.dtype(), t.shape(), p.shape());
            return Err(Error::model_file(path, why));
        }
        let values: Vec<f32> = t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        if values.iter().any(|v| !v.is_finite()) {
            return Err(Error::model_file(path, format!("tensor {name} holds NaN or infinite values")));
        }
        p.data_mut().copy_from_slice(&values);
    }
    Ok(())
}
