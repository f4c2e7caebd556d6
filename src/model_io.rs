//! Model files: weights as safetensors (PyTorch's `safetensors.torch.load_file` reads them, with `nn.Sequential`'s
//! key names) plus crest's metadata — classes, preprocessing and architecture — to rebuild the model.

use crate::loss::Loss;
use crate::nn::{LayerSpec, Module};
use crate::rng::Rng;
use anyhow::{anyhow, bail, Context, Result};
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
fn state(model: &dyn Module) -> Vec<(String, crate::Tensor)> {
    let mut s = model.named_parameters();
    s.extend(model.named_buffers());
    s
}

/// Writes to a temporary file beside `path`, then renames it over `path`: a crash leaves the old file or the new
/// one, never half of one.
pub fn save(path: &Path, model: &dyn Module, meta: &ModelMeta) -> Result<()> {
    let params = state(model);
    let bytes: Vec<Vec<u8>> =
        params.iter().map(|(_, p)| p.data().iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let views = params
        .iter()
        .zip(&bytes)
        .map(|((name, p), b)| Ok((name.clone(), TensorView::new(Dtype::F32, p.shape().to_vec(), b)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let info = Some(HashMap::from([(META_KEY.to_string(), serde_json::to_string(meta)?)]));
    let buffer = safetensors::serialize(views, &info)?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("model"),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&buffer)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow!("cannot write the model to {}: {e}", path.display())
    })
}

/// Reads a model file back: the rebuilt model, in evaluation mode, and its metadata. A damaged file, a file that is not crest's, or one
/// of another format version is refused with the reason.
pub fn load(path: &Path) -> Result<(Box<dyn Module>, ModelMeta)> {
    let buffer = std::fs::read(path).with_context(|| format!("cannot read model file {}", path.display()))?;
    let damaged = |why: String| anyhow!("{} is not a valid crest model file: {why}", path.display());
    let st = SafeTensors::deserialize(&buffer).map_err(|e| damaged(format!("{e:?}")))?;
    let (_, header) = SafeTensors::read_metadata(&buffer).map_err(|e| damaged(format!("{e:?}")))?;
    let json =
        header.metadata().as_ref().and_then(|m| m.get(META_KEY)).ok_or_else(|| damaged("no crest metadata".into()))?;
    let format = serde_json::from_str::<serde_json::Value>(json).ok().and_then(|v| v["format"].as_u64());
    if format != Some(FORMAT as u64) {
        bail!(
            "{} was written in model format {} (crest {}); this crest ({}) reads format {FORMAT}",
            path.display(),
            format.map_or("unknown".into(), |f| f.to_string()),
            serde_json::from_str::<serde_json::Value>(json)
                .ok()
                .and_then(|v| v["crest_version"].as_str().map(String::from))
                .unwrap_or("?".into()),
            env!("CARGO_PKG_VERSION")
        );
    }
    let meta: ModelMeta = serde_json::from_str(json).map_err(|e| damaged(format!("metadata: {e}")))?;
    let mut model = meta.spec.build(&mut Rng::new(0));
    model.set_training(false);
    for (name, p) in state(model.as_ref()) {
        let t = st.tensor(&name).map_err(|_| damaged(format!("tensor {name} is missing")))?;
        if t.dtype() != Dtype::F32 || t.shape() != p.shape() {
            return Err(damaged(format!(
                "tensor {name} is {:?} {:?}, expected F32 {:?}",
                t.dtype(),
                t.shape(),
                p.shape()
            )));
        }
        let values: Vec<f32> = t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        if values.iter().any(|v| !v.is_finite()) {
            return Err(damaged(format!("tensor {name} holds NaN or infinite values")));
        }
        p.data_mut().copy_from_slice(&values);
    }
    Ok((model, meta))
}
