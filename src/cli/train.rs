use clap::ValueEnum;
use crest::data::transforms::Augment;
use crest::data::{self, Caching, ChannelsOpt, DataLoader, Dataset, Inputs, LoadOptions, Normalize, Order, Split};
use crest::learner::{
    self, Checkpointing, DataLoaders, EarlyStoppingCallback, EpochRow, Learner, LrFind, MetricAverage, Monitor, RunLog,
    SaveModelCallback, Schedule, Spread,
};
use crest::loss::{bce_with_logits, cross_entropy, mnist_loss, Loss};
use crest::metrics::Metric;
use crest::model_io::{self, ModelMeta};
use crest::nn::{fuse, Arch, LayerSpec, Module, Sequential};
use crest::optim::OptFunc;
use crest::rng::Rng;
use crest::text::printable;
use crest::{careful_write, Error, Result, Tensor};
use std::path::PathBuf;
use std::sync::Arc;

use super::pretrained::Pretrained;
use super::world::{self, World};

#[derive(clap::Args, Clone)]
pub struct TrainArgs {
    /// Image folder: one sub-folder per class, or train/ and valid/ folders of them, or IDX files (MNIST format).
    #[arg(default_value = "data/mnist_sample")]
    pub dir: PathBuf,
    /// Resize images to SIZE×SIZE [default: the images' own size when they share one, else 140]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=2048))]
    pub size: Option<u32>,
    /// Channels the images get: auto is 4 if any image has alpha, 3 if any has colour, else 1
    #[arg(long, value_enum, default_value_t = ChannelsArg::Auto)]
    pub channels: ChannelsArg,
    /// linear, mlp[:HIDDEN,...] (e.g. mlp:256,128), cnn, or resnet18, resnet34, resnet50 (images of 32x32 or more)
    #[arg(long, default_value = "linear")]
    pub arch: Arch,
    /// Fine-tune this crest model file of the same --arch, as fastai's fine_tune: a new head for the data's
    /// classes, 1 epoch with the rest frozen (BatchNorm layers train), then --epochs epochs of the whole model,
    /// the first layers at lower rates (--lr is the base rate, always under one-cycle)
    #[arg(long, value_name = "MODEL")]
    pub pretrained: Option<PathBuf>,
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub epochs: u32,
    /// Learning rate, the peak under one-cycle, or auto: lr_find's valley [default: adam/adamw 3e-3 with
    /// one-cycle (2e-3 with --pretrained, fastai's fine_tune), 1e-3 constant; sgd 0.1]
    #[arg(long, value_parser = parse_lr)]
    pub lr: Option<LrArg>,
    /// Batch size
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub bs: u32,
    /// Fraction of each class held out for validation (ignored when the folder has train/ and valid/)
    #[arg(long, default_value_t = 0.2, value_parser = parse_valid_pct)]
    pub valid_pct: f32,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The loss [default: bce for two classes, else ce]
    #[arg(long, value_enum)]
    pub loss: Option<LossArg>,
    #[arg(long, value_enum, default_value_t = OptArg::Adam)]
    pub opt: OptArg,
    /// SGD momentum
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    pub momentum: f32,
    /// Weight decay [default: 0, or 0.01 with adamw]
    #[arg(long, value_parser = parse_nonneg)]
    pub wd: Option<f32>,
    /// one-cycle (fastai's fit_one_cycle: warm up to --lr, then anneal) or constant
    #[arg(long, value_enum, default_value_t = ScheduleArg::OneCycle)]
    pub schedule: ScheduleArg,
    /// Stop once validation accuracy reaches this (the post's wished-for stop condition)
    #[arg(long, value_parser = parse_fraction)]
    pub stop_at: Option<f32>,
    /// Stop once --monitor has not improved (by more than --min-delta) for N epochs (fastai's EarlyStoppingCallback)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub patience: Option<u32>,
    /// What --patience and --save-best watch
    #[arg(long, value_enum, default_value_t = MonitorArg::ValidLoss)]
    pub monitor: MonitorArg,
    /// How much --monitor must improve on its best to count as better
    #[arg(long, value_name = "D", default_value_t = 0.0, value_parser = parse_nonneg)]
    pub min_delta: f32,
    /// Save the best epoch's model by --monitor, not the last epoch's (fastai's SaveModelCallback)
    #[arg(long)]
    pub save_best: bool,
    /// Train K times, with seeds --seed to --seed+K-1 on the same split, and print the spread of the validation
    /// accuracy; the model saved is the first run's
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub runs: u32,
    /// Where to save the model
    #[arg(long, default_value = "model.safetensors")]
    pub out: PathBuf,
    /// Also write the table as CSV
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Augment the training images: a list of flip,rotate,zoom,warp,lighting,crop, or none; --aug alone is fastai's
    /// aug_transforms() (flip,rotate,zoom,warp,lighting). Validation images are never augmented
    #[arg(long, value_name = "LIST", num_args = 0..=1, default_missing_value = "fastai", value_parser = parse_aug,
          conflicts_with = "as_posted")]
    pub aug: Option<Augment>,
    /// Treat a corrupt or oversized image as an error instead of skipping it
    #[arg(long)]
    pub strict: bool,
    /// Where to keep the decoded images of an image folder for the next run with the same size, channels, split
    /// and seed [default: DIR/.crest-cache]
    #[arg(long, value_name = "FOLDER")]
    pub cache_dir: Option<PathBuf>,
    /// Decode the images without reading or writing a cache
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
    /// Write a checkpoint (model, optimizer, schedule position, table, generators) every N epochs, to continue
    /// from with --resume if the run is cut off
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub checkpoint_every: Option<u32>,
    /// Where --checkpoint-every writes [default: the model's path with .ckpt added]
    #[arg(long, value_name = "PATH", requires = "checkpoint_every")]
    pub checkpoint: Option<PathBuf>,
    /// Continue the run that wrote this checkpoint (give the same folder and options)
    #[arg(long, value_name = "CHECKPOINT")]
    pub resume: Option<PathBuf>,
    /// Where to write the training report, a page to open in a browser [default: report.html beside the model]
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Write no report
    #[arg(long, conflicts_with = "report")]
    pub no_report: bool,
    /// Replay the post exactly (no shuffling, pixels /255 twice, std-1 init, its loss, SGD lr 0.1, batches of 200,
    /// batch-averaged accuracy), then train crest's defaults on the same split and print both
    #[arg(long)]
    pub as_posted: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum ChannelsArg {
    Auto,
    #[value(name = "1")]
    Grey,
    #[value(name = "3")]
    Rgb,
    #[value(name = "4")]
    Rgba,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum LossArg {
    /// The post's loss (two classes)
    Mnist,
    /// Binary cross-entropy on one logit (two classes)
    Bce,
    /// Cross-entropy over one output per class
    #[value(alias = "cross-entropy")]
    Ce,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum OptArg {
    Sgd,
    Adam,
    Adamw,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum MonitorArg {
    /// Validation loss, lower is better (fastai's default)
    #[value(name = "valid_loss", alias = "valid-loss")]
    ValidLoss,
    /// Validation accuracy, higher is better
    Accuracy,
}

impl MonitorArg {
    /// The CLI's learner has one metric, the accuracy.
    fn monitor(self) -> Monitor {
        match self {
            MonitorArg::ValidLoss => Monitor::ValidLoss,
            MonitorArg::Accuracy => Monitor::Metric(0),
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleArg {
    OneCycle,
    Constant,
}

fn parse_float(s: &str) -> std::result::Result<f32, String> {
    s.parse::<f32>().ok().filter(|v| v.is_finite()).ok_or_else(|| format!("{s:?} is not a finite number"))
}

/// `--lr`: a rate, or `auto` to run lr_find first and train with its valley.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LrArg {
    Auto,
    Rate(f32),
}

fn parse_lr(s: &str) -> std::result::Result<LrArg, String> {
    if s == "auto" {
        return Ok(LrArg::Auto);
    }
    let positive = |v: f32| if v > 0.0 { Ok(LrArg::Rate(v)) } else { Err("the learning rate must be positive".into()) };
    parse_float(s).map_err(|e| format!("{e} (nor auto)")).and_then(positive)
}

fn parse_nonneg(s: &str) -> std::result::Result<f32, String> {
    parse_float(s).and_then(|v| if v >= 0.0 { Ok(v) } else { Err("must not be negative".into()) })
}

fn parse_fraction(s: &str) -> std::result::Result<f32, String> {
    parse_float(s).and_then(|v| if (0.0..=1.0).contains(&v) { Ok(v) } else { Err("must be between 0 and 1".into()) })
}

pub(super) fn parse_valid_pct(s: &str) -> std::result::Result<f32, String> {
    parse_float(s)
        .and_then(|v| if (0.0..1.0).contains(&v) { Ok(v) } else { Err("must be at least 0 and below 1".into()) })
}

pub(super) fn parse_aug(s: &str) -> std::result::Result<Augment, String> {
    s.parse().map_err(|e: Error| {
        // `--aug DIR` reads the folder as the list: say where the folder goes.
        if std::path::Path::new(s).exists() {
            format!("{e} ({s} is a path: give the data folder before --aug, or write --aug=LIST)")
        } else {
            e.to_string()
        }
    })
}

impl TrainArgs {
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            size: self.size.map(|s| s as usize),
            min_size: self.arch.min_size(),
            channels: match self.channels {
                ChannelsArg::Auto => ChannelsOpt::Auto,
                ChannelsArg::Grey => ChannelsOpt::Grey,
                ChannelsArg::Rgb => ChannelsOpt::Rgb,
                ChannelsArg::Rgba => ChannelsOpt::Rgba,
            },
            valid_pct: self.valid_pct,
            seed: self.seed,
            strict: self.strict,
            cache: match (&self.cache_dir, self.no_cache) {
                (_, true) => Caching::Off,
                (Some(dir), false) => Caching::In(dir.clone()),
                (None, false) => Caching::InDataFolder,
            },
            ..LoadOptions::default()
        }
    }
}

/// One training recipe: everything that differs between crest's defaults and the post's replay.
struct Recipe {
    loss: Loss,
    opt: OptFunc,
    /// None: lr_find's valley (`--lr auto`).
    lr: Option<f32>,
    schedule: Schedule,
    bs: usize,
    valid_bs: usize,
    order: Order,
    scale: f32,
    /// The post's `init_params(std=1)` instead of PyTorch's Linear initialisation.
    init_std: Option<f32>,
    metric_average: MetricAverage,
}

impl Recipe {
    fn from_args(a: &TrainArgs, classes: usize) -> Result<Recipe> {
        let loss = match a.loss {
            Some(LossArg::Mnist) => Loss::Mnist,
            Some(LossArg::Bce) => Loss::Bce,
            Some(LossArg::Ce) => Loss::CrossEntropy,
            None if classes == 2 => Loss::Bce,
            None => Loss::CrossEntropy,
        };
        if loss != Loss::CrossEntropy && classes != 2 {
            return Err(Error::InvalidArgument(format!(
                "--loss {} is for two classes; this data has {classes}: use --loss ce",
                if loss == Loss::Mnist { "mnist" } else { "bce" }
            )));
        }
        let schedule = match a.schedule {
            ScheduleArg::OneCycle => Schedule::ONE_CYCLE,
            ScheduleArg::Constant => Schedule::Constant,
        };
        // One-cycle's warm-up and anneal tolerate a higher peak (bench/README.md has the accuracies behind 3e-3).
        let adam_lr = match (&a.pretrained, schedule) {
            (Some(_), _) => 2e-3,
            (None, Schedule::Constant) => 1e-3,
            (None, Schedule::OneCycle { .. }) => 3e-3,
        };
        let (opt, default_lr) = match a.opt {
            OptArg::Sgd => (OptFunc::Sgd { momentum: a.momentum, weight_decay: a.wd.unwrap_or(0.0) }, 0.1),
            OptArg::Adamw => (OptFunc::AdamW { weight_decay: a.wd.unwrap_or(0.01) }, adam_lr),
            OptArg::Adam => (OptFunc::Adam { weight_decay: a.wd.unwrap_or(0.0) }, adam_lr),
        };
        let bs = a.bs as usize;
        Ok(Recipe {
            loss,
            opt,
            lr: match a.lr {
                None => Some(default_lr),
                Some(LrArg::Rate(lr)) => Some(lr),
                Some(LrArg::Auto) => None,
            },
            schedule,
            bs,
            valid_bs: bs.max(256),
            order: Order::Shuffled { seed: a.seed },
            scale: 1.0 / 255.0,
            init_std: None,
            metric_average: MetricAverage::PerImage,
        })
    }

    /// The recipe `args` ask for: the post's under `--as-posted`, else crest's defaults as the options change them.
    fn for_args(args: &TrainArgs, classes: usize) -> Result<Recipe> {
        if args.as_posted {
            Ok(Recipe::as_posted())
        } else {
            Recipe::from_args(args, classes)
        }
    }

    fn as_posted() -> Recipe {
        Recipe {
            loss: Loss::Mnist,
            opt: OptFunc::sgd(),
            lr: Some(0.1),
            schedule: Schedule::Constant,
            bs: 200,
            valid_bs: 50,
            order: Order::Sequential,
            scale: 1.0 / 255.0 / 255.0,
            init_std: Some(1.0),
            metric_average: MetricAverage::PerBatch,
        }
    }

    fn loss_name(&self) -> &'static str {
        match self.loss {
            Loss::Mnist => "mnist",
            Loss::Bce => "bce",
            Loss::CrossEntropy => "cross-entropy",
        }
    }
}

/// The split's datasets, shared by every loader that reads them (never copied: they are the run's largest buffers).
pub struct Data {
    pub train: Arc<Dataset>,
    pub valid: Arc<Dataset>,
}

/// What `crest train` leaves behind.
pub struct Trained {
    /// The first run's learner, whose model is the one saved.
    pub learner: Learner,
    pub data: Data,
    /// The saved model's validation accuracy.
    pub accuracy: Option<f32>,
    /// Every run's logs, the first one's included (one run without `--runs`).
    pub runs: Vec<RunLog>,
    pub loss: Loss,
    /// The first run's learning-rate sweep, when `--lr auto` ran one.
    pub lr_find: Option<LrFind>,
}

/// The model `--arch` names for this data, its layers' runs fused before training (see `Sequential::fused`), and
/// the mean and std of the pretrained model it is fine-tuned from, if that has them.
fn build_model(
    args: &TrainArgs,
    data: &Data,
    recipe: &Recipe,
    pretrained: Option<&Pretrained>,
) -> Result<(Box<dyn Module>, LayerSpec, Option<Normalize>)> {
    let classes = data.train.classes.len();
    let shape = [data.train.channels, data.train.height, data.train.width];
    let spec = args.arch.spec(shape, recipe.loss.outputs(classes));
    check_memory(args, &spec, shape, recipe.bs.min(data.train.len()))?;
    let model = spec.build(&mut Rng::fork(args.seed, 0x1417));
    let statistics = match pretrained {
        Some(p) => super::pretrained::transfer_into(p, args, model.as_ref(), shape)?,
        None => None,
    };
    if let Some(std) = recipe.init_std {
        let mut rng = Rng::fork(args.seed, 0x1417);
        for p in model.parameters() {
            p.data_mut().copy_from_slice(&Tensor::randn(p.shape(), std, &mut rng).data());
        }
    }
    Ok((fuse(model), spec, statistics))
}

/// Refuses a model, image size or batch too large for this machine before any of its buffers is allocated.
fn check_memory(args: &TrainArgs, spec: &LayerSpec, shape: [usize; 3], batch: usize) -> Result<()> {
    let footprint = spec
        .footprint(&shape)
        .map_err(|e| Error::Shape(format!("the model does not fit images of shape {shape:?}: {e}")))?;
    let bytes = footprint.training_bytes(batch, shape.iter().product());
    if crest::alloc::can_allocate(bytes) {
        return Ok(());
    }
    let [c, h, w] = shape;
    Err(Error::InvalidArgument(format!(
        "training {} on batches of {batch} images of {c}x{h}x{w} needs at least {:.1} GB of memory, more than this \
         machine can give: use a smaller --bs, --size or --arch",
        args.arch,
        bytes as f64 / 1e9
    )))
}

/// The learner `train` fits: the model `--arch` names, the loaders, loss, metric and optimizer of the recipe.
/// Under `mpirun -np N`, `--bs` is each rank's batch: the loader yields global batches of N times it.
fn learner(
    args: &TrainArgs,
    data: &Data,
    recipe: &Recipe,
    verbose: bool,
    world: &World,
    pretrained: Option<&Pretrained>,
) -> Result<(Learner, LayerSpec)> {
    let classes = data.train.classes.len();
    let (model, spec, statistics) = build_model(args, data, recipe, pretrained)?;
    let scaled = Inputs::Scaled(recipe.scale);
    let (inputs, note) = super::pretrained::inputs(statistics, data.train.channels, scaled);
    if let (true, Some(note)) = (verbose, note) {
        println!("{note}");
    }
    let mut train_dl = DataLoader::new(data.train.clone(), recipe.bs * world.size(), recipe.order);
    if let Some(aug) = args.aug {
        train_dl = train_dl.augmented(aug, args.seed);
    }
    let dls =
        DataLoaders { train: train_dl, valid: DataLoader::new(data.valid.clone(), recipe.valid_bs, Order::Sequential) };
    let loss_func = match recipe.loss {
        Loss::Mnist => mnist_loss,
        Loss::Bce => bce_with_logits,
        Loss::CrossEntropy => cross_entropy,
    };
    // The post's metric for one logit; an argmax over one output per class otherwise (two classes under --loss ce).
    let metric = if recipe.loss.outputs(classes) == 1 { Metric::BATCH_ACCURACY } else { Metric::ACCURACY };
    let mut builder = Learner::builder(dls, model)
        .opt_func(recipe.opt)
        .loss_func(loss_func)
        .metrics([metric])
        .inputs(inputs)
        .metric_average(recipe.metric_average)
        .communicator(world.clone());
    if let Some(goal) = args.stop_at {
        builder = builder.stop_at(goal);
    }
    if let Some(patience) = args.patience {
        builder = builder.callback(Box::new(EarlyStoppingCallback::new(
            args.monitor.monitor(),
            args.min_delta,
            patience as usize,
        )));
    }
    if args.save_best {
        builder = builder.callback(Box::new(SaveModelCallback::new(args.monitor.monitor(), args.min_delta)));
    }
    if !verbose {
        builder = builder.quiet();
    } else if let Some(csv) = &args.csv {
        builder = builder.csv_log(csv);
    }
    Ok((builder.build()?, spec))
}

/// A learner trained as `args` say, the model's spec, and the learning-rate sweep if `--lr auto` ran one.
fn train(
    args: &TrainArgs,
    data: &Data,
    recipe: &Recipe,
    verbose: bool,
    world: &World,
    pretrained: Option<&Pretrained>,
) -> Result<(Learner, LayerSpec, Option<LrFind>)> {
    let (mut learner, spec) = learner(args, data, recipe, verbose, world, pretrained)?;
    // The identity reads every image (for their fingerprints): only a run that checkpoints or resumes needs it.
    let run = match verbose && (args.checkpoint_every.is_some() || args.resume.is_some()) {
        true => run_identity(args, data),
        false => Vec::new(),
    };
    if let (Some(every), true) = (args.checkpoint_every, verbose) {
        learner.checkpoint_every(Checkpointing {
            path: checkpoint_path(args),
            every: every as usize,
            run: run.clone(),
        })?;
    }
    let resumed = match (&args.resume, verbose) {
        (Some(path), true) => Some(learner.resume(path, &run)?),
        _ => None,
    };
    if let (Some(at), Some(path)) = (resumed, &args.resume) {
        println!("resuming from {}: {} of {} epochs done", path.display(), at.done, at.epochs);
    }
    let mut sweep = None;
    let lr = match (resumed, recipe.lr) {
        // The checkpoint's (the same unless --lr auto, whose sweep is not run again).
        (Some(at), _) => at.lr,
        (None, Some(lr)) => lr,
        (None, None) => {
            let found = learner.lr_find()?;
            if verbose {
                println!("lr_find: {}", super::lr_find::suggested_lrs(&found.suggestions));
                println!("training with the valley, {}", found.suggestions.valley.lr);
            }
            let valley = found.suggestions.valley.lr;
            sweep = Some(found);
            valley
        }
    };
    match args.pretrained {
        Some(_) => learner.fine_tune(args.epochs as usize, lr)?,
        None => learner.fit_with(args.epochs as usize, lr, recipe.schedule)?,
    };
    Ok((learner, spec, sweep))
}

fn describe(args: &TrainArgs, split: &Split) {
    let (t, v) = (&split.train, &split.valid);
    println!(
        "dataset: {} ({}): {} classes, {} images of {}x{}x{}",
        args.dir.display(),
        split.source,
        t.classes.len(),
        t.len() + v.len(),
        t.height,
        t.width,
        t.channels
    );
    let (tc, vc) = (t.class_counts(), v.class_counts());
    let counts: Vec<String> = t
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} {}+{}", tc[i], vc.get(i).copied().unwrap_or(0)))
        .collect();
    println!("classes (train+valid): {}", counts.join(", "));
    println!("split: {} train, {} valid", t.len(), v.len());
    split.notes.iter().for_each(|n| println!("note: {n}"));
}

/// What a checkpoint must match to be resumed by this run: the data (fingerprints of both splits, classes and
/// counts, image shape), the model and every option that changes the numbers. Not the paths: a moved folder with
/// the same images resumes.
fn run_identity(args: &TrainArgs, data: &Data) -> Vec<(String, String)> {
    let counts = |d: &Dataset| d.class_counts().iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",");
    let name = |v: Option<clap::builder::PossibleValue>| v.map_or("default".into(), |v| v.get_name().to_string());
    let optional = |v: Option<f32>| v.map_or("default".into(), |v| v.to_string());
    let t = &data.train;
    [
        ("training images' fingerprint", learner::data_fingerprint(&data.train)),
        ("validation images' fingerprint", learner::data_fingerprint(&data.valid)),
        ("classes", t.classes.iter().map(|c| printable(c).into_owned()).collect::<Vec<_>>().join(",")),
        ("training images per class", counts(&data.train)),
        ("validation images per class", counts(&data.valid)),
        ("image shape", format!("{}x{}x{}", t.channels, t.height, t.width)),
        ("--arch", args.arch.to_string()),
        ("--epochs", args.epochs.to_string()),
        (
            "--lr",
            args.lr.map_or("default".into(), |lr| match lr {
                LrArg::Auto => "auto".into(),
                LrArg::Rate(r) => r.to_string(),
            }),
        ),
        ("--bs", args.bs.to_string()),
        ("--seed", args.seed.to_string()),
        ("--loss", name(args.loss.and_then(|l| l.to_possible_value()))),
        ("--opt", name(args.opt.to_possible_value())),
        ("--momentum", args.momentum.to_string()),
        ("--wd", optional(args.wd)),
        ("--schedule", name(args.schedule.to_possible_value())),
        ("--stop-at", optional(args.stop_at)),
        ("--as-posted", args.as_posted.to_string()),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v))
    .collect()
}

/// `--checkpoint`, or the model's path with `.ckpt` added.
fn checkpoint_path(args: &TrainArgs) -> PathBuf {
    args.checkpoint.clone().unwrap_or_else(|| {
        let mut path = args.out.clone().into_os_string();
        path.push(".ckpt");
        path.into()
    })
}

/// The files a run writes and the options it combines, checked before anything loads or trains, so that a long run
/// can't end in "cannot write".
pub fn check_outputs(args: &TrainArgs) -> Result<()> {
    super::pretrained::check_options(args)?;
    check_checkpoint_options(args)?;
    careful_write::check(&args.out, "the model")?;
    if let Some(csv) = &args.csv {
        careful_write::check(csv, "the training log")?;
    }
    if args.checkpoint_every.is_some() {
        careful_write::check(&checkpoint_path(args), "the checkpoint")?;
    }
    Ok(())
}

/// `crest lr-find`'s learner: the data loaded and described, and the learner `train` would fit, untrained.
pub fn untrained(args: &TrainArgs) -> Result<Learner> {
    let split = data::load(&args.dir, &args.load_options())?;
    split.warnings.iter().for_each(|w| eprintln!("warning: {w}"));
    describe(args, &split);
    let classes = split.train.classes.len();
    let recipe = Recipe::for_args(args, classes)?;
    let data = Data { train: Arc::new(split.train), valid: Arc::new(split.valid) };
    let pretrained = super::pretrained::load_if_asked(args)?;
    Ok(learner(args, &data, &recipe, false, &world::solo(), pretrained.as_ref())?.0)
}

/// `crest train`: load, describe, train, save, and write the report (rank 0 alone, under `mpirun`).
pub fn run(args: TrainArgs, world: &World) -> Result<Trained> {
    // `crest bench` writes no report: only here is its path checked.
    let report = super::report::path(&args).filter(|_| world.rank() == 0);
    // The pretrained model is read (and checked) before the data, and kept for the runs to fine-tune.
    let mut pretrained = None;
    let split = load(&args, world, || {
        report.as_ref().map_or(Ok(()), |page| careful_write::check(page, "the report").map(drop))?;
        pretrained = super::pretrained::load_if_asked(&args)?;
        Ok(())
    })?;
    let mut trained = run_with(args.clone(), split, world, pretrained.as_ref())?;
    if let Some(path) = report {
        let page = super::report::training(&args, &mut trained)?;
        crest::report::write(&page, &path)?;
        println!("wrote the report to {}", path.display());
    }
    Ok(trained)
}

/// The checks of the outputs (`check_outputs`, then `more_checks`) and the data loaded. Under `mpirun`, every rank
/// then learns whether all of them got this far with the same data, and all stop together if not: a rank that
/// stopped alone would leave the others waiting for it.
pub fn load(args: &TrainArgs, world: &World, more_checks: impl FnOnce() -> Result<()>) -> Result<Split> {
    let loaded = check_outputs(args)
        .and_then(|()| check_data_parallel_options(args, world.size()))
        .and_then(|()| more_checks())
        .and_then(|()| data::load(&args.dir, &args.load_options()));
    // Only ranks compare digests: one process need not read every image before training.
    let digest = match (&loaded, world.size()) {
        (Ok(split), 2..) => Some(crest::dist::DataDigest::of(&split.train, &split.valid)),
        _ => None,
    };
    let agreed = crest::dist::check_same_data(world.as_ref(), digest);
    let split = loaded?;
    agreed.map(|()| split)
}

/// `crest train` on data loaded by [`load`]. Under `mpirun`, rank 0 goes on as one process would, and the others
/// train beside it silently ([`follow`]).
pub fn run_on(args: TrainArgs, split: Split, world: &World) -> Result<Trained> {
    let pretrained = super::pretrained::load_if_asked(&args)?;
    run_with(args, split, world, pretrained.as_ref())
}

/// [`run_on`] with the `--pretrained` model already read, if there is one.
fn run_with(args: TrainArgs, split: Split, world: &World, pretrained: Option<&Pretrained>) -> Result<Trained> {
    if world.rank() != 0 {
        return follow(args, split, world, pretrained);
    }
    split.warnings.iter().for_each(|w| eprintln!("warning: {w}"));
    describe(&args, &split);
    let classes = split.train.classes.len();
    if args.as_posted && classes != 2 {
        return Err(Error::InvalidArgument(format!(
            "--as-posted replays the post's two-class model; this data has {classes} classes"
        )));
    }
    check_validation_is_there(&args, &split)?;
    let recipe = Recipe::for_args(&args, classes)?;
    let ranks = match world.size() {
        1 => String::new(),
        n => format!(" per rank on {n} ranks"),
    };
    println!(
        "model: {} ({} loss, {:?}, lr {} {}, batch {}{ranks}{})",
        args.arch,
        recipe.loss_name(),
        recipe.opt,
        recipe.lr.map_or("auto".into(), |lr| lr.to_string()),
        if args.pretrained.is_some() { "fine_tune".to_string() } else { recipe.schedule.to_string() },
        recipe.bs,
        if args.as_posted { ", as posted" } else { "" }
    );
    if let Some(aug) = args.aug {
        println!("augment: {}", aug.describe());
    }
    if let Some(path) = &args.pretrained {
        println!("fine-tuning {} with a new head for {classes} classes", path.display());
    }
    let data = Data { train: Arc::new(split.train), valid: Arc::new(split.valid) };
    super::stop_signals::stop_on_signals()?;
    let runs = args.runs as usize;
    let mut first = None;
    let mut logs = Vec::with_capacity(runs);
    let mut ends = Vec::with_capacity(runs);
    for run in 0..runs {
        // Everything seeded but the split follows the run's seed; only the first run writes the CSV, as only its
        // model is saved.
        let seed = args.seed.wrapping_add(run as u64);
        let run_args = TrainArgs { seed, csv: args.csv.clone().filter(|_| run == 0), ..args.clone() };
        if runs > 1 {
            println!("run {} of {runs}: seed {seed}", run + 1);
        }
        let recipe = Recipe::for_args(&run_args, classes)?;
        let (learner, spec, sweep) = train(&run_args, &data, &recipe, true, world, pretrained)?;
        if run == 0 {
            print_fusions(&learner);
        }
        let end = model_epoch(&learner);
        match end.and_then(|row| row.metrics[0]) {
            Some(a) => match best_note(&learner) {
                Some(best) => println!("valid accuracy: {a:.4} (the model of the {best})"),
                None => println!("valid accuracy: {a:.4}"),
            },
            None => println!("valid accuracy: none (no validation set)"),
        }
        if let Some(row) = end {
            ends.push(RunEnd { seed, epochs: learner.recorder.len(), row: row.clone() });
        }
        logs.push(RunLog { seed, recorder: learner.recorder.clone(), batches: learner.batches.clone() });
        if run == 0 {
            first = Some((learner, spec, sweep));
        }
    }
    let (learner, spec, lr_find) = first.expect("at least one run");
    let accuracy = model_epoch(&learner).and_then(|row| row.metrics[0]);
    if runs > 1 {
        print_runs(&ends);
    }
    if args.as_posted {
        let defaults = Recipe::from_args(&TrainArgs { as_posted: false, ..args.clone() }, classes)?;
        let (crest, _, _) = train(&args, &data, &defaults, false, world, pretrained)?;
        println!(
            "as posted: {:.4}; crest's defaults on the same split: {:.4}",
            accuracy.unwrap_or(f32::NAN),
            model_epoch(&crest).and_then(|r| r.metrics[0]).unwrap_or(f32::NAN)
        );
        println!("the post's slips: unshuffled class-sorted batches (each batch one class), pixels /255 twice, std-1 init, accuracy averaged over batches");
    }
    let shape = [data.train.channels, data.train.height, data.train.width];
    let mut meta =
        ModelMeta::new(data.train.classes.clone(), shape, recipe.scale, &args.arch.to_string(), recipe.loss, spec);
    if let Inputs::Normalized(n) = learner.inputs() {
        meta.normalize = Some(n.clone());
    }
    model_io::save(&args.out, learner.model.as_ref(), &meta)?;
    if runs > 1 {
        println!("the model saved is run 1's (seed {}): the file the same command without --runs saves", args.seed);
    }
    match best_note(&learner) {
        Some(best) => println!("saved model to {}: {best}", args.out.display()),
        None => println!("saved model to {}", args.out.display()),
    }
    Ok(Trained { learner, data, accuracy, runs: logs, loss: recipe.loss, lr_find })
}

/// A rank other than 0 under `mpirun`: the training rank 0 does, step for step, printing and saving nothing.
fn follow(args: TrainArgs, split: Split, world: &World, pretrained: Option<&Pretrained>) -> Result<Trained> {
    super::stop_signals::stop_on_signals()?;
    let recipe = Recipe::for_args(&args, split.train.classes.len())?;
    let data = Data { train: Arc::new(split.train), valid: Arc::new(split.valid) };
    let (learner, _, lr_find) = train(&args, &data, &recipe, false, world, pretrained)?;
    let accuracy = model_epoch(&learner).and_then(|row| row.metrics[0]);
    Ok(Trained { learner, data, accuracy, runs: Vec::new(), loss: recipe.loss, lr_find })
}

/// The options a data-parallel run can't take yet: the post's replay and `--runs` train several models one after
/// another, and a checkpoint holds one rank's learner. Refused by every rank alike, before anything loads.
fn check_data_parallel_options(args: &TrainArgs, ranks: usize) -> Result<()> {
    if ranks == 1 {
        return Ok(());
    }
    let flags = [
        (args.runs > 1, "--runs"),
        (args.as_posted, "--as-posted"),
        (args.checkpoint_every.is_some(), "--checkpoint-every"),
        (args.resume.is_some(), "--resume"),
    ];
    match flags.iter().find(|(used, _)| *used) {
        Some((_, flag)) => {
            Err(Error::InvalidArgument(format!("{flag} can't be combined with training on {ranks} ranks yet")))
        }
        None => Ok(()),
    }
}

/// A checkpoint holds one run's learner, not the best epoch's weights that `--save-best` keeps or the epochs
/// without improvement that `--patience` counts: combinations a resumed run could not end as the whole run would
/// are refused before anything trains.
fn check_checkpoint_options(args: &TrainArgs) -> Result<()> {
    if args.checkpoint_every.is_none() && args.resume.is_none() {
        return Ok(());
    }
    let flag = if args.resume.is_some() { "--resume" } else { "--checkpoint-every" };
    match watching_flags(args).first() {
        Some(other) => Err(Error::InvalidArgument(format!("{flag} can't be combined with {other} yet"))),
        None => Ok(()),
    }
}

/// The options given that watch validation figures across epochs or runs: `--patience`, `--save-best`, `--runs`.
fn watching_flags(args: &TrainArgs) -> Vec<&'static str> {
    [(args.patience.is_some(), "--patience"), (args.save_best, "--save-best"), (args.runs > 1, "--runs")]
        .into_iter()
        .filter_map(|(used, flag)| used.then_some(flag))
        .collect()
}

/// Early stopping, save-best and the comparison of runs all read validation figures; a split without validation
/// images is refused before anything trains.
fn check_validation_is_there(args: &TrainArgs, split: &Split) -> Result<()> {
    if !split.valid.is_empty() {
        return Ok(());
    }
    match watching_flags(args).as_slice() {
        [] => Ok(()),
        flags => Err(Error::InvalidArgument(format!(
            "{} compare{} validation figures, and this split has no validation images: raise --valid-pct above 0",
            flags.join(" and "),
            if flags.len() == 1 { "s" } else { "" }
        ))),
    }
}

fn print_fusions(learner: &Learner) {
    if let Some(model) = (learner.model.as_ref() as &dyn std::any::Any).downcast_ref::<Sequential>() {
        for (layers, name) in model.fusions() {
            println!("fused: layers {}-{} ran as {name}", layers.start, layers.end - 1);
        }
    }
}

/// The row of the epoch whose model the learner ended with: the best one under --save-best, else the last.
fn model_epoch(learner: &Learner) -> Option<&EpochRow> {
    match learner.callback::<SaveModelCallback>().and_then(|c| c.best()) {
        Some(best) => learner.recorder.iter().find(|row| row.epoch == best.epoch),
        None => learner.recorder.last(),
    }
}

/// The epoch --save-best restored, as `best valid_loss 0.012345 at epoch 4`.
fn best_note(learner: &Learner) -> Option<String> {
    let best = learner.callback::<SaveModelCallback>()?.best()?;
    Some(format!("best {} {:.6} at epoch {}", best.monitor, best.value, best.epoch))
}

/// How a run ended: its seed, the epochs it trained, and the row of the epoch whose model it ended with.
struct RunEnd {
    seed: u64,
    epochs: usize,
    row: EpochRow,
}

/// One line per run, then the spread of the validation accuracy over them.
fn print_runs(ends: &[RunEnd]) {
    println!("runs on the same split, each by the epoch whose model it ended with:");
    let mut accuracies = Vec::with_capacity(ends.len());
    for (i, end) in ends.iter().enumerate() {
        let accuracy = end.row.metrics[0].unwrap_or(f32::NAN);
        accuracies.push(accuracy);
        println!(
            "run {}  seed {}  epochs {}  model of epoch {}  valid_loss {:.6}  accuracy {accuracy:.6}",
            i + 1,
            end.seed,
            end.epochs,
            end.row.epoch,
            end.row.valid_loss.unwrap_or(f32::NAN),
        );
    }
    if let Some(spread) = Spread::of(&accuracies) {
        println!("valid accuracy over {} runs: {spread}", ends.len());
    }
}
