//! Augmentation on real images: the same seed gives the same bytes at any thread count and in any batch, and
//! `crest train --aug` augments the training images and changes nothing else.

mod common;

use common::{crest, temp_dir, text};
use crest::data::transforms::{image_rng, Augment};
use crest::data::{self, Batch, DataLoader, Dataset, LoadOptions, Order};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

fn mnist() -> Arc<Dataset> {
    let split = data::load("data/mnist_sample".as_ref(), &LoadOptions::default()).expect("the shipped sample");
    Arc::new(split.train)
}

/// The first images of each class of emoji-vendors (RGBA), or `None` where ../shared is absent.
fn emoji() -> Option<Arc<Dataset>> {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/emoji-vendors"));
    if !root.is_dir() {
        eprintln!("skipped: {} is absent", root.display());
        return None;
    }
    let dir = temp_dir("augment-emoji");
    for class in ["google", "twitter"] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(root.join(class)).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        for f in names.iter().take(50) {
            std::fs::copy(f, dir.join(class).join(f.file_name().unwrap())).unwrap();
        }
    }
    let opts = LoadOptions { valid_pct: 0.0, progress: false, ..LoadOptions::default() };
    let split = data::load(&dir, &opts).expect("emoji PNGs load");
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(split.train.channels, 4);
    Some(Arc::new(split.train))
}

/// Every image of two epochs, as the loader yields it, keyed by (epoch, dataset index).
fn images(dl: &DataLoader) -> HashMap<(usize, usize), Vec<u8>> {
    let mut all = HashMap::new();
    for epoch in 0..2 {
        for batch in dl.batches(epoch) {
            for (k, image) in batch.pixels.chunks(dl.dataset().item_len()).enumerate() {
                all.insert((epoch, batch.indices[k]), image.to_vec());
            }
        }
    }
    all
}

fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(f)
}

fn every_transform() -> Augment {
    Augment { crop: true, ..Augment::fastai() }
}

#[test]
fn same_bytes_on_one_thread_and_two() {
    for ds in [Some(mnist()), emoji()].into_iter().flatten() {
        let dl = DataLoader::new(ds.clone(), 64, Order::Shuffled { seed: 3 }).augmented(every_transform(), 3);
        let one = on_threads(1, || images(&dl));
        let two = on_threads(2, || images(&dl));
        assert_eq!(one.len(), 2 * ds.len());
        assert!(one == two, "{} channels: the thread count changed the bytes", ds.channels);
        // Augmented, and differently each epoch.
        let changed = (0..ds.len()).filter(|&i| one[&(0, i)] != ds.image(i)).count();
        assert!(changed > ds.len() * 3 / 4, "{changed} of {} changed", ds.len());
        assert!((0..ds.len()).filter(|&i| one[&(0, i)] == one[&(1, i)]).count() < ds.len() / 10);
    }
}

#[test]
fn an_images_bytes_do_not_depend_on_its_batch() {
    let ds = mnist();
    let aug = every_transform();
    let shuffled = images(&DataLoader::new(ds.clone(), 64, Order::Shuffled { seed: 5 }).augmented(aug, 9));
    let sequential = images(&DataLoader::new(ds.clone(), 7, Order::Sequential).augmented(aug, 9));
    assert!(shuffled == sequential);
    // And they are what `apply` makes with the image's own generator.
    let (c, h, w) = (ds.channels, ds.height, ds.width);
    for i in [0, 1, 500, ds.len() - 1] {
        let mut out = vec![0; ds.item_len()];
        aug.apply(ds.image(i), c, h, w, &mut image_rng(9, 1, i), &mut out);
        assert_eq!(out, sequential[&(1, i)]);
    }
    // Another seed, other bytes.
    let reseeded = images(&DataLoader::new(ds.clone(), 64, Order::Shuffled { seed: 5 }).augmented(aug, 10));
    assert!(reseeded != shuffled);
}

#[test]
fn augment_batch_matches_the_loader_and_none_leaves_images_alone() {
    let ds = mnist();
    let plain: Vec<Batch> = DataLoader::new(ds.clone(), 50, Order::Shuffled { seed: 1 }).batches(2).take(3).collect();
    let loaded: Vec<Batch> = DataLoader::new(ds.clone(), 50, Order::Shuffled { seed: 1 })
        .augmented(Augment::fastai(), 4)
        .batches(2)
        .take(3)
        .collect();
    for (mut batch, augmented) in plain.iter().cloned().zip(&loaded) {
        Augment::fastai().augment_batch(&mut batch, 4, 2);
        assert_eq!(&batch, augmented);
    }
    let none = DataLoader::new(ds.clone(), 50, Order::Shuffled { seed: 1 }).augmented(Augment::none(), 4);
    assert_eq!(none.augmentation(), None);
    assert_eq!(none.batches(2).take(3).collect::<Vec<_>>(), plain);
}

/// The table's rows (epoch, losses, accuracy), without the times.
fn table(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn train_with_aug_augments_and_aug_none_changes_nothing() {
    let dir = temp_dir("augment-cli");
    let out = dir.join("m.safetensors");
    let out = out.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["train", "data/mnist_sample", "--epochs", "2", "--out", out];
        args.extend_from_slice(extra);
        let o = crest(&args);
        let (stdout, stderr) = text(&o);
        assert!(o.status.success(), "{extra:?}: {stderr}");
        stdout
    };
    let plain = run(&[]);
    let none = run(&["--aug", "none"]);
    let fastai = run(&["--aug"]);
    let again = run(&["--aug=fastai"]);
    assert!(!plain.contains("augment:"));
    assert!(none.contains("\naugment: none\n"), "{none}");
    assert!(fastai.contains("\naugment: flip (p 0.5), rotate (±10°, p 0.75), zoom (1-1.1, p 0.75), warp (0.2, p 0.75), lighting (0.2, p 0.75)\n"), "{fastai}");
    assert_eq!(table(&plain).len(), 2);
    assert_eq!(table(&none), table(&plain));
    assert_ne!(table(&fastai), table(&plain));
    assert_eq!(table(&again), table(&fastai));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_aug_lists_are_refused_by_the_parser() {
    for (args, want) in [
        (
            &["train", "--aug", "bogus"][..],
            "unknown augmentation \"bogus\": the valid ones are flip, rotate, zoom, warp, lighting, crop",
        ),
        (&["bench", "--aug", "flip,bogus"][..], "unknown augmentation \"bogus\""),
        (&["train", "--aug", "data/mnist_sample"][..], "give the data folder before --aug, or write --aug=LIST"),
        (&["train", "--aug", "none", "--as-posted"][..], "cannot be used with"),
    ] {
        let o = crest(args);
        let (stdout, stderr) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stdout.is_empty() && stderr.contains(want), "{args:?}: {stderr}");
    }
}
