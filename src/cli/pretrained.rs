//! `crest train --pretrained MODEL`: fine-tuning a crest model file (trained by crest, or made by `crest import`)
//! on other data. The model `--arch` names is built for the data as if from scratch, then takes the pretrained
//! weights of every layer but its head ([`crest::nn::transfer`]), and trains with `Learner::fine_tune`.
//!
//! The new head is the architecture's own last layer (a `Linear`, torchvision's `fc`) sized for the data's
//! classes, not fastai's bigger head (pooling of both average and max, BatchNorm, dropout and two Linear layers):
//! the fine-tuned model stays the architecture `--arch` names, so it saves, loads, exports and compares with a
//! model trained from scratch as any other of that architecture.
//!
//! Its inputs are fastai's (`vision_learner(normalize=True)`, `_add_norm`): normalised with the pretrained model's
//! mean and std when it records them (an imported model) for as many channels as the data has; otherwise, as
//! fastai then adds no `Normalize`, scaled as crest's own models are.

use super::train::{ScheduleArg, TrainArgs};
use crest::data::{Inputs, Normalize};
use crest::learner::LayerGroups;
use crest::model_io::{self, ModelMeta};
use crest::nn::Module;
use crest::{Error, Result};
use std::path::Path;

/// Refuses options that make no sense with `--pretrained`, before anything loads.
pub fn check_options(args: &TrainArgs) -> Result<()> {
    if args.pretrained.is_none() {
        return Ok(());
    }
    let refused = [
        (args.resume.is_some(), "--resume (a checkpoint continues its own run)"),
        (args.as_posted, "--as-posted (the post trains from scratch)"),
        (args.checkpoint_every.is_some(), "--checkpoint-every yet (checkpoints don't record frozen layers)"),
        (
            matches!(args.schedule, ScheduleArg::Constant),
            "--schedule constant (fine-tuning is fastai's fine_tune, one-cycle in both phases)",
        ),
    ];
    match refused.iter().find(|(given, _)| *given) {
        Some((_, why)) => Err(Error::InvalidArgument(format!("--pretrained can't be combined with {why}"))),
        None => Ok(()),
    }
}

/// A `--pretrained` model as read: the model and its metadata.
pub type Pretrained = (Box<dyn Module>, ModelMeta);

/// The `--pretrained` model, if `args` name one: read once, before the data loads, and fine-tuned from by every run.
pub fn load_if_asked(args: &TrainArgs) -> Result<Option<Pretrained>> {
    args.pretrained.as_ref().map(|path| load(path, args)).transpose()
}

/// The pretrained model and its metadata, refused unless it is the architecture `--arch` names.
fn load(path: &Path, args: &TrainArgs) -> Result<Pretrained> {
    let (model, meta) = model_io::load(path)?;
    let arch = args.arch.to_string();
    if meta.arch != arch {
        return Err(Error::InvalidArgument(format!(
            "--pretrained {} is a {} model; --arch is {arch}",
            path.display(),
            crest::text::printable(&meta.arch)
        )));
    }
    Ok((model, meta))
}

/// Puts the pretrained model's weights into `fresh`, the model `--arch` names built for this data, all but its
/// head, and returns the mean and std the pretrained model's inputs are normalised with, if they are. `shape` is
/// the data's image shape, for the message when the model was made for other sizes.
pub fn transfer_into(
    (pretrained, meta): &Pretrained,
    args: &TrainArgs,
    fresh: &dyn Module,
    shape: [usize; 3],
) -> Result<Option<Normalize>> {
    let groups = LayerGroups::of(fresh);
    if groups.count < 2 {
        return Err(Error::InvalidArgument(format!(
            "--pretrained needs a model with layers before its head to keep; {} is all head",
            args.arch
        )));
    }
    let head: Vec<String> = fresh
        .named_parameters()
        .into_iter()
        .zip(&groups.group)
        .filter(|(_, &g)| g + 1 == groups.count)
        .map(|((name, _), _)| name)
        .collect();
    crest::nn::transfer(pretrained.as_ref(), fresh, &head).map_err(|e| {
        let [c, h, w] = shape;
        Error::Shape(format!(
            "{e}: it was trained on {}x{}x{} images, these are {c}x{h}x{w} (--size sets the size)",
            meta.channels, meta.height, meta.width
        ))
    })?;
    Ok(meta.statistics().cloned())
}

/// What the fine-tuned model sees of images of `channels` channels, given the pretrained model's `statistics`:
/// normalised with them if they are for that many channels, else `scaled`; with the line that says which, when
/// there are statistics.
pub fn inputs(statistics: Option<Normalize>, channels: usize, scaled: Inputs) -> (Inputs, Option<String>) {
    match statistics {
        None => (scaled, None),
        Some(n) if n.channels() == channels => {
            let line = format!(
                "inputs: normalised with the pretrained model's mean {:?} and std {:?}, as its weights were trained",
                n.mean, n.std
            );
            (Inputs::Normalized(n), Some(line))
        }
        Some(n) => {
            let line = format!(
                "inputs: byte/255, not normalised: the pretrained model's mean and std are for {} channels, these \
                 images have {channels}, and fastai adds no Normalize then",
                n.channels()
            );
            (scaled, Some(line))
        }
    }
}
