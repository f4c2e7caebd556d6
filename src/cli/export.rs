use super::predict::load_model;
use crest::export::{save_onnx, INPUT, LOGITS, PROBABILITIES};
use crest::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ExportArgs {
    /// A model file written by `crest train`.
    pub model: PathBuf,
    /// The ONNX file to write (replaced if it exists).
    pub out: PathBuf,
}

pub fn run(args: ExportArgs) -> Result<()> {
    let (model, meta) = load_model(&args.model)?;
    save_onnx(&args.out, model.as_ref(), &meta)?;
    let (c, h, w, k) = (meta.channels, meta.height, meta.width, meta.classes.len());
    println!(
        "wrote {} (ONNX opset {}): input {INPUT} [N, {c}, {h}, {w}] of pixel values 0-255, outputs {PROBABILITIES} \
         [N, {k}] and {LOGITS} [N, {}]",
        args.out.display(),
        crest::export::OPSET,
        meta.loss.outputs(k)
    );
    Ok(())
}
