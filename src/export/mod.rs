//! ONNX export: a model as an ONNX file (opset [`OPSET`]) that onnxruntime, tract or any other ONNX runtime runs,
//! giving the probabilities `crest predict` gives.
//!
//! The graph takes `pixels`, float32 `[N, C, H, W]` for any batch size N: images at the model's size and channels,
//! as crest's loader makes them, with raw pixel values from 0 to 255. Its first nodes make them what the model sees
//! ([`ModelMeta::inputs`]): times the model file's `scale` (1/255 unless the model was trained `--as-posted`), or,
//! for a model that records a mean and std (imported from PyTorch, or fine-tuned from such a model), divided by
//! 255 and normalised per channel with them. Whoever runs it needs to know nothing of how the model was trained:
//! the bytes any image library decodes, as floats, are the input. Then come the model's layers, then two outputs:
//! - `probabilities`, float32 `[N, K]`, one column per class in the model's order: what `crest predict` prints
//!   (softmax of the logits; for a model with one output, trained with a binary loss, `[1 − σ(x), σ(x)]`);
//! - `logits`, float32 `[N, outputs]`, the model's own outputs, for what needs the scores before the softmax
//!   (fine-tuning, calibration, a loss).
//!
//! The model's doc string says all of this for the model at hand; its metadata holds the classes as a JSON list.

mod graph;
mod layers;
mod onnx_proto;
mod resnet;

pub use graph::{Dim, ModelInfo, OnnxGraph, Port, BATCH, OPSET};

use crate::data::Inputs;
use crate::loss::Loss;
use crate::model_io::{self, ModelMeta};
use crate::nn::{Module, Sequential};
use crate::{Error, Result};
use std::any::Any;
use std::path::Path;

/// The graph's input.
pub const INPUT: &str = "pixels";
/// The graph's outputs.
pub const PROBABILITIES: &str = "probabilities";
pub const LOGITS: &str = "logits";
/// The largest file a protobuf parser reads (2 GiB − 1): a larger model would need ONNX's external data files.
const MAX_ONNX_BYTES: usize = i32::MAX as usize;

/// Writes `model` as an ONNX file at `path`, replacing the file whole ([`crate::careful_write`]).
pub fn save_onnx(path: &Path, model: &dyn Module, meta: &ModelMeta) -> Result<()> {
    crate::careful_write::write(path, "the ONNX model", &onnx_bytes(model, meta)?)
}

/// `model` as the bytes of an ONNX file: its layers (every one must describe itself as a [`crate::nn::LayerSpec`];
/// a layer of your own that doesn't is refused, named) and weights, with the preprocessing, classes and loss of
/// `meta`.
pub fn onnx_bytes(model: &dyn Module, meta: &ModelMeta) -> Result<Vec<u8>> {
    let spec = model.spec().ok_or_else(|| {
        Error::InvalidArgument(format!(
            "cannot export to ONNX: {} is a layer of your own, which has no LayerSpec for the exporter to express",
            undescribed_layer(model, "the model")
        ))
    })?;
    let shape = [meta.channels, meta.height, meta.width];
    let outputs = meta.loss.outputs(meta.classes.len());
    if let Some(out) = model.output_shape(&shape) {
        if out? != [outputs] {
            return Err(Error::Shape(format!(
                "cannot export to ONNX: the model does not give {outputs} outputs for {:?} images, as a {:?} model of \
                 {} classes does",
                shape,
                meta.loss,
                meta.classes.len()
            )));
        }
    }
    let weights = model_io::state(model).into_iter().collect();
    let mut graph = OnnxGraph::new();
    let pixels = normalised_input(&mut graph, meta);
    let logits = layers::export(&mut graph, &spec, "", &weights, pixels)?;
    let probabilities = probabilities(&mut graph, &logits, meta.loss);
    graph.rename(&probabilities, PROBABILITIES);
    graph.rename(&logits, LOGITS);
    let k = meta.classes.len();
    let input = Port {
        name: INPUT,
        dims: [Dim::Batch].into_iter().chain(shape.map(Dim::Fixed)).collect(),
        doc: "images, raw pixel values 0 to 255".into(),
    };
    let outputs = [
        Port { name: PROBABILITIES, dims: vec![Dim::Batch, Dim::Fixed(k)], doc: "each class's probability".into() },
        Port { name: LOGITS, dims: vec![Dim::Batch, Dim::Fixed(outputs)], doc: "the model's outputs".into() },
    ];
    let classes = serde_json::to_string(&meta.classes).map_err(|e| Error::InvalidArgument(format!("classes: {e}")))?;
    let info = ModelInfo { graph_name: "crest", doc: doc_string(meta), metadata: vec![("classes", classes)] };
    let bytes = graph.finish(&[input], &outputs, info);
    if bytes.len() > MAX_ONNX_BYTES {
        return Err(Error::InvalidArgument(format!(
            "cannot export to ONNX: the model takes {} bytes, more than the {MAX_ONNX_BYTES} an ONNX file holds \
             without external data",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// Where the first layer without a spec is, and its type: `layer 2 (my_crate::Swish)`, or `the model (…)` for a
/// model that is not a `Sequential`.
fn undescribed_layer(model: &dyn Module, place: &str) -> String {
    let Some(sequential) = (model as &dyn Any).downcast_ref::<Sequential>() else {
        return format!("{place} ({})", model.type_name());
    };
    let (i, layer) = sequential
        .layers()
        .iter()
        .enumerate()
        .find(|(_, l)| l.spec().is_none())
        .expect("a Sequential without a spec has a layer without one");
    let place = if place == "the model" { format!("layer {i}") } else { format!("{place}.{i}") };
    undescribed_layer(layer.as_ref(), &place)
}

/// The input as the model sees it ([`ModelMeta::inputs`]): pixel values times the model's scale, or, for a model
/// whose inputs are normalised (an imported one, or one fine-tuned from it), `(value / 255 - mean) / std` per
/// channel, in the order of operations [`crate::data::Normalize::apply`] uses, so that the values are the same to
/// the last bit.
fn normalised_input(graph: &mut OnnxGraph, meta: &ModelMeta) -> String {
    let n = match meta.inputs() {
        Inputs::Scaled(scale) => {
            let scale = graph.constant("scale", &[], &[scale]);
            return graph.mul(INPUT, &scale);
        }
        Inputs::Normalized(n) => n,
    };
    let per_channel = [1, n.channels(), 1, 1];
    let max = graph.constant("max_pixel", &[], &[255.0]);
    let mean = graph.constant("mean", &per_channel, &n.mean);
    let std = graph.constant("std", &per_channel, &n.std);
    let unit = graph.div(INPUT, &max);
    let centred = graph.sub(&unit, &mean);
    graph.div(&centred, &std)
}

/// The probabilities `crest predict` prints from `logits` ([`crate::interpret::probabilities`]).
fn probabilities(graph: &mut OnnxGraph, logits: &str, loss: Loss) -> String {
    match loss {
        Loss::Mnist | Loss::Bce => {
            let negated = graph.neg(logits);
            let (first, second) = (graph.sigmoid(&negated), graph.sigmoid(logits));
            graph.concat_columns(&first, &second)
        }
        Loss::CrossEntropy => graph.softmax(logits),
    }
}

/// What the model's doc string tells: the input, its preprocessing, and the outputs, for this model.
fn doc_string(meta: &ModelMeta) -> String {
    let (c, h, w, k) = (meta.channels, meta.height, meta.width, meta.classes.len());
    let channels = match c {
        1 => "gray".to_string(),
        3 => "red, green, blue".to_string(),
        4 => "red, green, blue, alpha".to_string(),
        _ => format!("{c} channels"),
    };
    let probabilities = match meta.loss {
        Loss::Mnist | Loss::Bce => "[1 - sigmoid(logit), sigmoid(logit)] of its one logit",
        Loss::CrossEntropy => "the softmax of its logits",
    };
    let scaling = match meta.inputs() {
        Inputs::Scaled(scale) => format!("the graph first multiplies them by {scale}, as crest does"),
        Inputs::Normalized(n) => format!(
            "the graph first divides them by 255, then subtracts the mean {:?} and divides by the std {:?}{}, per \
             channel, as torchvision's Normalize does",
            n.mean,
            n.std,
            if meta.preprocess.is_some() { "" } else { " (the statistics the model was fine-tuned with)" }
        ),
    };
    let resizing = match &meta.preprocess {
        None => format!("Images of another size are resized to {w}x{h} first, as crest does (bilinear, antialiased)"),
        Some(p) => format!(
            "Images are first resized, their shorter side to {} (PIL's antialiased bilinear), and their centre {w}x{h} \
             kept, as `crest predict` and torchvision's evaluation transform do",
            p.resize
        ),
    };
    format!(
        "crest model ({arch}, {loss:?} loss) classifying {h}x{w} images into {k} classes: {classes}.\n\
         Input `{INPUT}`: float32 [N, {c}, {h}, {w}], N images of any number, {h}x{w} pixels ({channels}), with raw \
         pixel values from 0 to 255 (not scaled: {scaling}). {resizing}.\n\
         Output `{PROBABILITIES}`: float32 [N, {k}], each class's probability, in the order above: {probabilities}, \
         as `crest predict` prints.\n\
         Output `{LOGITS}`: float32 [N, {outputs}], the model's outputs before that.",
        arch = meta.arch,
        loss = meta.loss,
        classes = meta.classes.join(", "),
        outputs = meta.loss.outputs(k),
    )
}
