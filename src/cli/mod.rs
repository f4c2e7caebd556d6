//! The `crest` command line: `train` a model on an image folder, `predict` images with a saved one.

mod predict;
mod train;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "crest",
    version,
    about = "Image classifiers from scratch: train on a folder of images, predict new ones"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Train a classifier on a folder with one sub-folder per class (or train/ and valid/ folders, or IDX files).
    Train(train::TrainArgs),
    /// Print each image's most likely classes with their probabilities.
    Predict(predict::PredictArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train(args) => train::run(args),
        Command::Predict(args) => predict::run(args),
    }
}

/// Peak resident memory of this process, in MB (Linux; 0 elsewhere).
pub fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kb.unwrap_or(0.0) / 1024.0
}
