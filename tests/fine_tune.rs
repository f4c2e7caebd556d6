//! Fine-tuning: freezing, discriminative learning rates, `Learner::fine_tune` and `crest train --pretrained`.

mod common;

use common::{crest, temp_dir, text};
use crest::data::{load_image, DataLoader, Dataset, Inputs, Normalize, Order, Targets, IMAGENET_MEAN, IMAGENET_STD};
use crest::learner::{DataLoaders, Learner, LrSlice, Schedule};
use crest::loss::{cross_entropy, Loss};
use crest::nn::{BatchNorm, Conv2d, Flatten, Linear, Module, ReLU, Sequential};
use crest::optim::OptFunc;
use crest::rng::Rng;
use crest::Tensor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `n` 1x4x4 images of two classes: class 0 bright on the left half, class 1 on the right, with some noise.
fn dataset(n: usize) -> Arc<Dataset> {
    let mut rng = Rng::new(5);
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 2).collect();
    let pixels = labels
        .iter()
        .flat_map(|&l| (0..16).map(move |i| (i % 4 < 2) == (l == 0)))
        .map(|bright| if bright { 180 } else { 40 } + (rng.below(40) as u8))
        .collect();
    Arc::new(Dataset {
        pixels,
        labels,
        classes: vec!["left".into(), "right".into()],
        channels: 1,
        height: 4,
        width: 4,
        paths: Default::default(),
    })
}

/// All `n` training images in one batch, in order, so that an epoch is one step.
fn learner(model: Sequential, n: usize, opt: OptFunc) -> Learner {
    let dls = DataLoaders {
        train: DataLoader::new(dataset(n), n, Order::Sequential),
        valid: DataLoader::new(dataset(4), 4, Order::Sequential),
    };
    Learner::builder(dls, Box::new(model)).opt_func(opt).quiet().build().expect("the model fits the data")
}

fn values(model: &dyn Module) -> Vec<(String, Vec<u32>)> {
    model.named_parameters().into_iter().map(|(n, p)| (n, p.to_vec().iter().map(|v| v.to_bits()).collect())).collect()
}

#[test]
fn freezing_keeps_the_body_bit_identical_and_trains_batchnorm_and_the_head() {
    let mut rng = Rng::new(1);
    let model = Sequential::default()
        .push(Conv2d::new(1, 2, 3, &mut rng).padding(1))
        .push(BatchNorm::new(2))
        .push(ReLU)
        .push(Flatten)
        .push(Linear::new(32, 2, &mut rng));
    // AdamW decays every weight it updates: a frozen one must get neither the step nor the decay.
    let mut learn = learner(model, 16, OptFunc::AdamW { weight_decay: 0.1 });
    learn.freeze().unwrap();
    let before = values(learn.model.as_ref());
    learn.fit_with(2, LrSlice::Head(1e-2), Schedule::Constant).unwrap();
    let after = values(learn.model.as_ref());
    let changed: Vec<(&str, bool)> = before.iter().zip(&after).map(|(b, a)| (b.0.as_str(), b.1 != a.1)).collect();
    assert_eq!(
        changed,
        [
            ("0.weight", false),
            ("0.bias", false),
            ("1.weight", true),
            ("1.bias", true),
            ("4.weight", true),
            ("4.bias", true)
        ]
    );
    // Unfreezing starts the optimizer's state from zero, as fastai's `freeze_to` clears it: Adam's first step is
    // lr·g/|g|, so every weight with a gradient moves by lr (after the decay), the head's too. (Kept, the state
    // would have a step count of 3 and the head's moments: other steps.)
    learn.unfreeze().unwrap();
    let (lr, wd) = (1e-2f32, 0.1f32);
    // Not the conv's bias: BatchNorm after it takes the mean out, so its gradient is zero up to rounding.
    let params: Vec<_> = learn.model.named_parameters().into_iter().filter(|(n, _)| n != "0.bias").collect();
    let before: Vec<Vec<f32>> = params.iter().map(|(_, p)| p.to_vec()).collect();
    learn.fit_with(1, lr, Schedule::Constant).unwrap();
    for ((name, p), before) in params.iter().zip(&before) {
        let steps: Vec<f32> = p.to_vec().iter().zip(before).map(|(a, b)| (a - b * (1.0 - lr * wd)).abs()).collect();
        // A weight that sees only zeros (a ReLU's dead output) has no gradient and stays.
        let full = steps.iter().filter(|&&s| (s - lr).abs() < 1e-4 * lr).count();
        let still = steps.iter().filter(|&&s| s == 0.0).count();
        assert!(full + still == steps.len() && full * 2 > steps.len(), "{name} moved by {steps:?}");
    }
}

#[test]
fn each_layer_group_steps_by_its_own_learning_rate() {
    let mut rng = Rng::new(2);
    let model = Sequential::default()
        .push(Flatten)
        .push(Linear::new(16, 3, &mut rng))
        .push(ReLU)
        .push(Linear::new(3, 2, &mut rng));
    let mut learn = learner(model, 8, OptFunc::sgd());
    // The gradients of the one step the fit will take, from the same batch through the same model.
    let (x, y) = learn.dls.train.batches(0).next().unwrap().into_xy(&Inputs::Scaled(1.0 / 255.0), Targets::Classes);
    cross_entropy(&learn.model.forward(&x), &y).backward();
    let params = learn.model.parameters();
    let grads: Vec<Vec<f32>> = params.iter().map(|p| p.grad().unwrap().to_vec()).collect();
    let before: Vec<Vec<f32>> = params.iter().map(|p| p.to_vec()).collect();
    params.iter().for_each(|p| p.zero_grad());

    learn.fit_with(1, LrSlice::Range(1e-3, 1e-1), Schedule::Constant).unwrap();
    // The body (the first Linear) at 1e-3, the head at 1e-1, as fastai's slice(1e-3, 1e-1) over two groups.
    let lrs = LrSlice::Range(1e-3, 1e-1).lrs(2);
    assert_eq!(lrs, [1e-3, 1e-1]);
    for (i, p) in params.iter().enumerate() {
        let lr = lrs[usize::from(i >= 2)];
        let expected: Vec<f32> = before[i].iter().zip(&grads[i]).map(|(p, g)| p - lr * g).collect();
        assert_eq!(p.to_vec(), expected, "parameter {i}");
    }
}

/// The sample's 3s and 7s, pretrained on by an MLP, then fine-tuned on with a new head: one frozen epoch and one
/// unfrozen reach high accuracy, and the model saved is a normal crest model of the architecture.
#[test]
fn train_pretrained_fine_tunes_a_new_head_in_two_tables() {
    let dir = temp_dir("fine-tune");
    let (pre, tuned) = (dir.join("pre.safetensors"), dir.join("tuned.safetensors"));
    let o = crest(&["train", "--arch", "mlp:32", "--epochs", "1", "--no-report", "--out", pre.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o).1);
    // Batches of 16, for enough steps: the frozen epoch warms up for 99% of it, so a new head moves little in few.
    let args =
        ["train", "--arch", "mlp:32", "--epochs", "1", "--bs", "16", "--no-report", "--seed", "7", "--pretrained"];
    let o = crest(&[&args[..], &[pre.to_str().unwrap(), "--out", tuned.to_str().unwrap()]].concat());
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let at = |prefix: &str| lines.iter().position(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("{out}"));
    assert_eq!(lines[at("frozen:")], "frozen: the head and any BatchNorm layers train, 1 epoch at lr 0.002");
    assert_eq!(
        lines[at("unfrozen:")],
        "unfrozen: every layer trains, 1 epoch at lr 1.0e-5 (first layers) to 1.0e-3 (head)"
    );
    assert!(lines[at("frozen:") + 2].starts_with("0 ") && lines[at("unfrozen:") + 2].starts_with("1 "), "{out}");
    let accuracy: f32 = lines[at("valid accuracy: ")]["valid accuracy: ".len()..].parse().unwrap();
    assert!(accuracy >= 0.95, "{out}");
    let (_, meta) = crest::model_io::load(&tuned).unwrap();
    assert_eq!((meta.arch.as_str(), meta.classes.len()), ("mlp:32", 2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn train_pretrained_refuses_what_makes_no_sense_in_one_line() {
    let dir = temp_dir("fine-tune-refusals");
    let (mlp, linear) = (dir.join("mlp.safetensors"), dir.join("linear.safetensors"));
    for (arch, path) in [("mlp:8", &mlp), ("linear", &linear)] {
        let o = crest(&["train", "--arch", arch, "--epochs", "1", "--no-report", "--out", path.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o).1);
    }
    let (mlp, linear) = (mlp.to_str().unwrap(), linear.to_str().unwrap());
    let refusal = |args: &[&str]| {
        // Without the sample's shared cache: a cache file another test or build left with other options is
        // rebuilt with a warning on stderr, which these exact comparisons would take for part of the refusal.
        let o =
            crest(&[&["train", "--no-report", "--no-cache", "--out", dir.join("x").to_str().unwrap()], args].concat());
        assert!(!o.status.success());
        text(&o).1
    };
    let cases: [(&[&str], String); 7] = [
        (
            &["--arch", "mlp:8", "--pretrained", mlp, "--resume", "c"],
            "--resume (a checkpoint continues its own run)".into(),
        ),
        (&["--arch", "mlp:8", "--pretrained", mlp, "--as-posted"], "--as-posted (the post trains from scratch)".into()),
        (
            &["--arch", "mlp:8", "--pretrained", mlp, "--checkpoint-every", "1"],
            "--checkpoint-every yet (checkpoints don't record frozen layers)".into(),
        ),
        (
            &["--arch", "mlp:8", "--pretrained", mlp, "--schedule", "constant"],
            "--schedule constant (fine-tuning is fastai's fine_tune, one-cycle in both phases)".into(),
        ),
        (
            &["--arch", "cnn", "--pretrained", mlp],
            format!("error: --pretrained {mlp} is a mlp:8 model; --arch is cnn\n"),
        ),
        (
            &["--arch", "linear", "--pretrained", linear],
            "error: --pretrained needs a model with layers before its head to keep; linear is all head\n".into(),
        ),
        (
            &["--arch", "mlp:8", "--pretrained", mlp, "--size", "14"],
            "error: the pretrained model's 1.weight is [8, 784]; this data needs [8, 196]: it was trained on 1x28x28 \
             images, these are 1x14x14 (--size sets the size)\n"
                .into(),
        ),
    ];
    for (args, expected) in cases {
        let err = refusal(args);
        if expected.starts_with("error: ") {
            assert_eq!(err, expected);
        } else {
            assert_eq!(err, format!("error: --pretrained can't be combined with {expected}\n"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `n` 12x12 RGB PNGs a class in `dir/red` and `dir/blue`: noise around a reddish or a bluish colour.
fn colour_folder(dir: &Path, n: usize) {
    let mut rng = Rng::new(3);
    for (class, base) in [("red", [200u8, 60, 40]), ("blue", [40, 70, 190])] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for i in 0..n {
            let rgb: Vec<u8> = (0..12 * 12).flat_map(|_| base.map(|b| b - 30 + rng.below(60) as u8)).collect();
            let file = std::fs::File::create(dir.join(class).join(format!("{i}.png"))).unwrap();
            let mut png = png::Encoder::new(std::io::BufWriter::new(file), 12, 12);
            png.set_color(png::ColorType::Rgb);
            png.write_header().unwrap().write_image_data(&rgb).unwrap();
        }
    }
}

/// Each class's probability as `crest predict` prints it, per image.
fn printed_probabilities(stdout: &str) -> Vec<(String, Vec<(String, f32)>)> {
    let line = |l: &str| {
        let mut fields = l.split('\t');
        let path = fields.next().unwrap().to_string();
        let classes = fields.map(|f| f.rsplit_once(' ').unwrap()).map(|(c, p)| (c.to_string(), p.parse().unwrap()));
        (path, classes.collect())
    };
    stdout.lines().map(line).collect()
}

/// The class probabilities of a model of `loss` for one 3x12x12 image, its bytes made inputs by `input`
/// (channel, byte).
fn probabilities(model: &dyn Module, loss: Loss, bytes: &[u8], input: impl Fn(usize, u8) -> f32) -> Vec<f32> {
    let x: Vec<f32> = bytes.iter().enumerate().map(|(i, &b)| input(i / 144, b)).collect();
    crest::interpret::probabilities(&model.forward(&Tensor::from_vec(x, &[1, 3, 12, 12])).to_vec(), loss)
}

/// fastai's recipe for imported weights: an imported model (ImageNet's mean and std, RGB) fine-tuned on RGB images
/// trains on normalised inputs and records the statistics, which `crest predict` and `crest evaluate` apply (their
/// probabilities are a hand-normalised forward's, not a byte/255 one's); on grey images, which the statistics are
/// not for, it trains on byte/255, says so, and records none.
#[test]
fn an_imported_model_fine_tunes_on_its_own_mean_and_std() {
    let dir = temp_dir("fine-tune-normalised");
    let (images, imported, tuned, grey) =
        (dir.join("images"), dir.join("imported"), dir.join("tuned"), dir.join("grey"));
    colour_folder(&images, 10);
    let weights = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/cnn.safetensors");
    let import = ["import", weights.to_str().unwrap(), "--arch", "cnn", "--resize", "16", "--crop", "12", "--out"];
    let o = crest(&[&import[..], &[imported.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", text(&o).1);
    let fine_tune = |out: &Path, extra: &[&str]| {
        let args = ["train", images.to_str().unwrap(), "--arch", "cnn", "--epochs", "1", "--bs", "4", "--no-report"];
        let more = ["--pretrained", imported.to_str().unwrap(), "--out", out.to_str().unwrap()];
        let o = crest(&[&args[..], &more, extra].concat());
        let (stdout, stderr) = text(&o);
        assert!(o.status.success(), "{stderr}");
        stdout.lines().find(|l| l.starts_with("inputs: ")).unwrap_or_else(|| panic!("{stdout}")).to_string()
    };

    assert_eq!(
        fine_tune(&tuned, &[]),
        "inputs: normalised with the pretrained model's mean [0.485, 0.456, 0.406] and std [0.229, 0.224, 0.225], as \
         its weights were trained"
    );
    let (model, meta) = crest::model_io::load(&tuned).unwrap();
    assert_eq!((meta.normalize, meta.preprocess, meta.format), (Some(Normalize::imagenet()), None, 2));

    let paths: Vec<PathBuf> = ["red/0.png", "red/1.png", "blue/0.png", "blue/1.png"].map(|p| images.join(p)).into();
    let o = crest(
        &[&["predict", tuned.to_str().unwrap()][..], &paths.iter().map(|p| p.to_str().unwrap()).collect::<Vec<_>>()]
            .concat(),
    );
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let printed = printed_probabilities(&stdout);
    let mut unnormalised_gap = 0.0f32;
    for ((path, classes), file) in printed.iter().zip(&paths) {
        assert_eq!(path, file.to_str().unwrap());
        let bytes = load_image(file, 3, 12, 12, 1 << 20).unwrap();
        let normalised = probabilities(model.as_ref(), meta.loss, &bytes, |c, b| {
            (b as f32 / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        });
        let scaled = probabilities(model.as_ref(), meta.loss, &bytes, |_, b| b as f32 / 255.0);
        for (class, p) in classes {
            let k = meta.classes.iter().position(|c| c == class).unwrap();
            assert!(
                (p - normalised[k]).abs() <= 1e-4,
                "{path} {class}: printed {p}, normalised forward {normalised:?}"
            );
            unnormalised_gap = unnormalised_gap.max((p - scaled[k]).abs());
        }
    }
    assert!(unnormalised_gap > 1e-2, "a byte/255 forward gives the same probabilities: the test can't tell");

    let csv = dir.join("predictions.csv");
    let o = crest(&["evaluate", tuned.to_str().unwrap(), images.to_str().unwrap(), "--csv", csv.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o).1);
    let rows = std::fs::read_to_string(&csv).unwrap();
    for (path, classes) in &printed {
        let row = rows.lines().find(|r| r.starts_with(&format!("{path},"))).unwrap_or_else(|| panic!("{path}: {rows}"));
        let evaluated: Vec<f32> = row.split(',').skip(3).map(|p| p.parse().unwrap()).collect();
        for (class, p) in classes {
            let k = meta.classes.iter().position(|c| c == class).unwrap();
            assert!((p - evaluated[k]).abs() <= 1e-4, "{row}: predict printed {class} {p}");
        }
    }

    assert_eq!(
        fine_tune(&grey, &["--channels", "1"]),
        "inputs: byte/255, not normalised: the pretrained model's mean and std are for 3 channels, these images have \
         1, and fastai adds no Normalize then"
    );
    let (_, meta) = crest::model_io::load(&grey).unwrap();
    assert_eq!((meta.normalize, meta.channels, meta.format), (None, 1, 1));
    let _ = std::fs::remove_dir_all(&dir);
}
