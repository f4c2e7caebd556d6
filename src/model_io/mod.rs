//! Model files: weights as safetensors (PyTorch's `safetensors.torch.load_file` reads them, with `nn.Sequential`'s
//! key names) plus crest's metadata — classes, preprocessing and architecture — to rebuild the model, and a
//! checksum of both.
//!
//! A model file is untrusted input (downloaded, damaged, crafted): reading one never panics, aborts or hangs, and
//! never allocates more than the bytes really in it decide. Everything in it is checked before anything is built
//! from it; a file that fails a check is refused with one sentence saying what is wrong.

mod checksum;
mod file;
mod import;
mod layout;
mod tensor_file;
mod validate;

pub(crate) use tensor_file::{encode, le_bytes, TensorFile};

pub use file::MAX_MODEL_FILE_BYTES;
pub use import::{import, ImportOptions, SAVE_AS_SAFETENSORS};

use crate::data::{Inputs, Normalize, Preprocess};
use crate::loss::Loss;
use crate::nn::{LayerSpec, Module};
use crate::rng::Rng;
use crate::text::printable;
use crate::{Error, Result, Tensor};
use layout::Layout;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Bumped when the file layout changes; files of other formats are refused, not guessed at. (The checksum came
/// within format 1: files without one still load.) Format 2 is format 1 for a model whose inputs are normalised
/// with a mean and std (`preprocess`, `normalize`), and says so: a crest that reads only format 1 ignores
/// `normalize` (crests older still ignore `preprocess` too) and would predict on unnormalised pixels; the format
/// number makes it refuse the file instead.
/// Files without a mean and std are still written as format 1, which every crest reads; format-1 files with
/// `preprocess`, as `crest import` wrote them before format 2, load as they did.
pub const FORMAT: u32 = 2;
/// The format of files that any crest reads correctly: without a mean and std to normalise inputs with.
pub const PLAIN_FORMAT: u32 = 1;
const META_KEY: &str = "crest";
/// What errors call a model given as bytes rather than a path.
const IN_MEMORY: &str = "<memory>";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// The format of the file it was read from. [`save`] writes the oldest format that holds the metadata,
    /// whatever this says ([`ModelMeta::format_needed`]).
    pub format: u32,
    pub crest_version: String,
    pub classes: Vec<String>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Pixel bytes are multiplied by this before the model sees them, unless `preprocess` or `normalize` say how
    /// to normalise them instead ([`ModelMeta::inputs`]).
    pub scale: f32,
    /// How the model was asked for on the command line (`linear`, `mlp:256`, …).
    pub arch: String,
    pub loss: Loss,
    pub spec: LayerSpec,
    /// How an image becomes the model's input when the model came with its own (torchvision's evaluation transform,
    /// for imported weights): `height` and `width` are then its crop, and `scale` is unused. Without it, an image is
    /// resized to `height` x `width` and its bytes multiplied by `scale`. Absent from files that have none, so
    /// that those read as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocess: Option<Preprocess>,
    /// The mean and std each channel's `byte / 255` is normalised with (`scale` is then unused), for a model
    /// fine-tuned from weights that came with them (fastai's recipe): its images are resized to `height` x `width`
    /// as crest's own models' are, not put through `preprocess`, which such a model never has. Absent from files
    /// that have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalize: Option<Normalize>,
    /// Set by [`load`] for a file written before crest stored a checksum, whose damage could not be detected (it is
    /// loaded all the same; saving the model again adds one). Not stored.
    #[serde(skip)]
    pub predates_checksum: bool,
}

impl ModelMeta {
    pub fn new(classes: Vec<String>, shape: [usize; 3], scale: f32, arch: &str, loss: Loss, spec: LayerSpec) -> Self {
        let [channels, height, width] = shape;
        ModelMeta {
            format: PLAIN_FORMAT,
            crest_version: env!("CARGO_PKG_VERSION").to_string(),
            classes,
            channels,
            height,
            width,
            scale,
            arch: arch.to_string(),
            loss,
            spec,
            preprocess: None,
            normalize: None,
            predates_checksum: false,
        }
    }

    /// The per-channel mean and std the model's inputs are normalised with: its preprocessing's, or those it was
    /// fine-tuned with; `None` for a model that sees `byte * scale`.
    pub fn statistics(&self) -> Option<&Normalize> {
        self.preprocess.as_ref().map(|p| &p.normalize).or(self.normalize.as_ref())
    }

    /// What the model sees of an image's bytes: what everything that runs a model from a file feeds it.
    pub fn inputs(&self) -> Inputs {
        match self.statistics() {
            Some(n) => Inputs::Normalized(n.clone()),
            None => Inputs::Scaled(self.scale),
        }
    }

    /// The oldest format a file of this metadata can be written in: format 2 for a model whose inputs are
    /// normalised, which a crest reading only format 1 must refuse rather than misread.
    pub fn format_needed(&self) -> u32 {
        match self.statistics() {
            Some(_) => FORMAT,
            None => PLAIN_FORMAT,
        }
    }
}

/// Everything a model file holds: parameters, then buffers (running statistics).
pub(crate) fn state(model: &dyn Module) -> Vec<(String, Tensor)> {
    let mut s = model.named_parameters();
    s.extend(model.named_buffers());
    s
}

/// Writes a model with its metadata, so that [`load`] rebuilds it. Every layer must describe itself
/// ([`Module::spec`]); a model with a layer of your own can be saved with [`save_weights`].
pub fn save(path: &Path, model: &dyn Module, meta: &ModelMeta) -> Result<()> {
    crate::careful_write::write(path, "the model", &save_bytes(model, meta)?)
}

/// What [`save`] writes, as bytes ([`load_bytes`] reads them).
pub fn save_bytes(model: &dyn Module, meta: &ModelMeta) -> Result<Vec<u8>> {
    let meta = ModelMeta { format: meta.format_needed(), ..meta.clone() };
    let info = serde_json::to_string(&meta).map_err(|e| Error::InvalidArgument(format!("model metadata: {e}")))?;
    serialize(model, Some(info))
}

/// Writes the model's parameters and buffers only, under their PyTorch names (`safetensors.torch.load_file` reads
/// them; [`load_weights`] puts them back into a model built the same way), with their checksum.
pub fn save_weights(path: &Path, model: &dyn Module) -> Result<()> {
    crate::careful_write::write(path, "the model", &serialize(model, None)?)
}

/// The model's tensors as safetensors, with `crest_meta` and the checksum of both in the header's metadata.
fn serialize(model: &dyn Module, crest_meta: Option<String>) -> Result<Vec<u8>> {
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> =
        state(model).into_iter().map(|(name, p)| (name, p.shape().to_vec(), le_bytes(&p.data()))).collect();
    encode(&tensors, META_KEY, crest_meta)
}

/// A file's bytes as [`load`] reads them (a regular file, of a bounded size): for other files crest writes.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    file::read(path)
}

/// Reads a model file back: the rebuilt model, in evaluation mode, and its metadata. Only a regular file of at most
/// [`MAX_MODEL_FILE_BYTES`] is read; a damaged file (its checksum doesn't match), a file that is not crest's, one
/// whose parts disagree (classes and outputs, image shape and layers, tensors and layers) or whose sizes are beyond
/// reason ([`crate::nn::MAX_VALUES_PER_EXAMPLE`]), or one of another format version is refused with the reason.
pub fn load(path: &Path) -> Result<(Box<dyn Module>, ModelMeta)> {
    read_model(&file::read(path)?, path)
}

/// [`load`] on the bytes of a model file; errors name the model `<memory>`.
pub fn load_bytes(bytes: &[u8]) -> Result<(Box<dyn Module>, ModelMeta)> {
    read_model(bytes, Path::new(IN_MEMORY))
}

fn read_model(bytes: &[u8], path: &Path) -> Result<(Box<dyn Module>, ModelMeta)> {
    let bad = |why: String| Error::model_file(path, why);
    let file = Layout::parse(bytes).map_err(bad)?;
    let json = file.entry(META_KEY).ok_or_else(|| bad("it has no crest metadata".into()))?;
    let value = serde_json::from_str::<serde_json::Value>(json);
    let is_known_format = |v: &serde_json::Value| {
        v["format"].as_u64().is_some_and(|f| (PLAIN_FORMAT as u64..=FORMAT as u64).contains(&f))
    };
    let other_version = |v: &serde_json::Value| Error::ModelVersion {
        path: path.to_path_buf(),
        format: v["format"].as_u64(),
        written_by: v["crest_version"].as_str().map(|s| printable(s).into_owned()),
    };
    // Another format number is told before the checksum is checked: the checksum is formats 1 and 2's.
    if let Ok(v) = &value {
        if v["format"].is_u64() && !is_known_format(v) {
            return Err(other_version(v));
        }
    }
    let predates_checksum = !checksum_matches(&file, Some(json)).map_err(bad)?;
    match &value {
        Err(e) => return Err(bad(format!("its crest metadata is not valid JSON ({})", printable(&e.to_string())))),
        Ok(v) if !is_known_format(v) => return Err(other_version(v)),
        Ok(_) => {}
    }
    let mut meta: ModelMeta = serde_json::from_str(json)
        .map_err(|e| bad(format!("its crest metadata does not describe a model ({})", printable(&e.to_string()))))?;
    meta.predates_checksum = predates_checksum;
    let shapes = validate::metadata(&meta).map_err(bad)?;
    validate::tensors(&file, &shapes.tensors).map_err(bad)?;
    let model = build(&meta.spec, &file, path)?;
    Ok((model, meta))
}

/// Whether the file has a checksum (`false` for files from before crest wrote one); an error if it has one that
/// doesn't match.
fn checksum_matches(file: &Layout, crest_meta: Option<&str>) -> Result<bool, String> {
    let Some(stored) = file.entry(checksum::KEY) else {
        return Ok(false);
    };
    let tensors = file.tensors_by_name();
    let computed = checksum::of(crest_meta, tensors.iter().map(|(name, bytes)| (name.as_str(), *bytes)));
    if stored != computed {
        return Err(format!(
            "its checksum {} does not match its contents ({computed}): the file is damaged",
            printable(stored)
        ));
    }
    Ok(true)
}

/// The model `spec` describes, with the file's tensors, in evaluation mode: called once `file` is checked to hold
/// every tensor it needs, so the memory it takes is the size of tensors really in the file, which is asked for
/// first so that a file too large for this machine is an error, not an abort.
fn build(spec: &LayerSpec, file: &Layout, path: &Path) -> Result<Box<dyn Module>> {
    let bytes: usize = file.tensors_by_name().iter().map(|(_, b)| b.len()).sum();
    if Vec::<u8>::new().try_reserve_exact(bytes).is_err() {
        return Err(Error::io("cannot load the model in", path, std::io::ErrorKind::OutOfMemory.into()));
    }
    let mut model = spec.build(&mut Rng::new(0));
    model.set_training(false);
    read_state(file, model.as_ref(), path)?;
    Ok(model)
}

/// Reads weights written by [`save_weights`] (or by `save`, or by PyTorch's `safetensors.torch.save_file` with
/// the same names) into `model`, whose parameters and buffers must all be in the file with the same shapes. The
/// file's checksum, if it has one, must match.
pub fn load_weights(path: &Path, model: &dyn Module) -> Result<()> {
    let bytes = file::read(path)?;
    let bad = |why: String| Error::model_file(path, why);
    let file = Layout::parse(&bytes).map_err(bad)?;
    checksum_matches(&file, file.entry(META_KEY)).map_err(bad)?;
    let expected: Vec<(String, Vec<usize>)> =
        state(model).into_iter().map(|(name, p)| (name, p.shape().to_vec())).collect();
    validate::tensors(&file, &expected).map_err(bad)?;
    read_state(&file, model, path)
}

/// Copies the file's tensors into the model's, once [`validate::tensors`] has checked them all.
fn read_state(file: &Layout, model: &dyn Module, path: &Path) -> Result<()> {
    for (name, p) in state(model) {
        let t = file.tensor(&name).ok_or_else(|| Error::model_file(path, format!("tensor {name} is missing")))?;
        p.data_mut().iter_mut().zip(t.values()).for_each(|(to, from)| *to = from);
    }
    Ok(())
}
