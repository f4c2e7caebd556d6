//! The `crest` command line: `train` a model on an image folder, `predict` images with a saved one, `evaluate` it
//! on a labelled folder, `import` weights saved from PyTorch, `export` a model to ONNX, and `bench`, which trains as
//! `train` does and then times it, for the scripts in `bench/`.
//!
//! Everything here is a thin layer over the library: flags become the library's options, and the library's errors
//! gain a hint of which flag to change.

mod bench;
mod evaluate;
mod export;
mod import;
mod lr_find;
mod predict;
mod pretrained;
mod report;
mod stop_signals;
mod train;
pub mod world;

use clap::{Parser, Subcommand};
pub use world::World;

#[derive(Parser)]
#[command(
    name = "crest",
    version,
    about = "Image classifiers from scratch: train on a folder of images, predict new ones, evaluate on labelled ones"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Train a classifier on a folder with one sub-folder per class (or train/ and valid/ folders, or IDX files).
    Train(train::TrainArgs),
    /// Sweep the learning rate as fastai's lr_find does (the model `train` would train, on the same data), print
    /// the suggestions and draw the curve. Saves nothing.
    #[command(name = "lr-find")]
    LrFind(train::TrainArgs),
    /// Print each image's most likely classes with their probabilities.
    Predict(predict::PredictArgs),
    /// Evaluate a model on a labelled folder: accuracy, per-class precision/recall/F1, the confusion matrix, the
    /// most confused classes and the top losses.
    Evaluate(evaluate::EvaluateArgs),
    /// Write a model as an ONNX file (opset 17) that any ONNX runtime runs: input `pixels` [N, C, H, W] of raw
    /// values 0-255, outputs `probabilities` (what `predict` prints) and `logits`.
    Export(export::ExportArgs),
    /// Train as `train` does, then time loading, the epochs and inference, and print them as key=value pairs on the
    /// last line (what the scripts in bench/ read).
    Bench(train::TrainArgs),
    /// Turn a PyTorch state dict saved as safetensors into a crest model file, with the preprocessing its weights
    /// expect (torchvision's evaluation transform), which `predict` applies.
    Import(import::ImportArgs),
}

/// The ranks the command runs on: MPI's world for `train` and `bench` in a build with `--features mpi` (joined
/// here, left when the last clone is dropped), else this process alone.
pub fn world(cli: &Cli) -> crest::Result<World> {
    match cli.command {
        Command::Train(_) | Command::Bench(_) => world::join(),
        _ => Ok(world::solo()),
    }
}

pub fn run(cli: Cli, world: &World) -> crest::Result<()> {
    match cli.command {
        Command::Train(args) => train::run(args, world).map(drop),
        Command::LrFind(args) => lr_find::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Export(args) => export::run(args),
        Command::Bench(args) => bench::run(args, world),
        Command::Import(args) => import::run(args),
    }
}

/// The error as one line, with the flag that would help where there is one.
pub fn message(e: &crest::Error) -> String {
    if let Some(lr) = e.smaller_lr() {
        return format!("{e} (e.g. --lr {lr})");
    }
    match e {
        crest::Error::Interrupted { .. } => format!("{e}; the model was not saved"),
        _ => e.to_string(),
    }
}

/// The exit status for the error: a shell's 128 + the signal's number for a stop by a signal, else 1.
pub fn exit_code(e: &crest::Error) -> i32 {
    match e {
        crest::Error::Interrupted { signal } => 128 + signal,
        _ => 1,
    }
}
