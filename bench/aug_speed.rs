//! How fast crest augments: the training loader's batches over a folder's training split, for a few epochs, with and
//! without augmentation; the difference is augmentation's cost. Compare with bench/fastai_aug.py on the same folder.
//!
//!     cargo run --release --example aug_speed -- [DIR] [--epochs N] [--aug LIST] [--bs N] [--threads N]
//!
//! DIR defaults to ../shared/data/emoji-vendors, LIST to fastai's aug_transforms() (`fastai`), N epochs to 3, the batch
//! size to 64 (fastai's), the threads to rayon's default (one per core). The split is crest train's (20% valid, seed 42).
//! Last line: `plain_images_per_s=… augmented_images_per_s=… augment_only_images_per_s=… augment_us_per_image=…`.

use crest::data::transforms::Augment;
use crest::data::{self, DataLoader, LoadOptions, Order};
use std::sync::Arc;
use std::time::Instant;

struct Args {
    dir: String,
    epochs: usize,
    aug: Augment,
    bs: usize,
    threads: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/emoji-vendors").into(),
        epochs: 3,
        aug: Augment::fastai(),
        bs: 64,
        threads: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        let number = |v: String| {
            v.parse::<usize>().map_err(|e| format!("{a} {v}: {e}")).and_then(|n| {
                if n > 0 {
                    Ok(n)
                } else {
                    Err(format!("{a} must be at least 1"))
                }
            })
        };
        match a.as_str() {
            "--epochs" => args.epochs = number(value()?)?,
            "--bs" => args.bs = number(value()?)?,
            "--threads" => args.threads = Some(number(value()?)?),
            "--aug" => args.aug = value()?.parse().map_err(|e| format!("--aug: {e}"))?,
            _ if a.starts_with('-') => return Err(format!("unknown option {a}")),
            _ => args.dir = a,
        }
    }
    Ok(args)
}

/// Seconds to draw every batch of `epochs` epochs from `dl`, touching each batch so none is optimised away.
fn time_epochs(dl: &DataLoader, epochs: usize) -> f64 {
    let start = Instant::now();
    let mut checksum = 0u64;
    for epoch in 0..epochs {
        for batch in dl.batches(epoch) {
            checksum = checksum.wrapping_add(batch.pixels[batch.pixels.len() / 2] as u64);
        }
    }
    std::hint::black_box(checksum);
    start.elapsed().as_secs_f64()
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("aug_speed: {e}");
        std::process::exit(2)
    });
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global().expect("the first use of rayon's pool");
    }
    let opts = LoadOptions { progress: false, ..LoadOptions::default() };
    let split = data::load(args.dir.as_ref(), &opts).unwrap_or_else(|e| {
        eprintln!("aug_speed: {e}");
        std::process::exit(1)
    });
    let train = Arc::new(split.train);
    let (n, c, h, w) = (train.len(), train.channels, train.height, train.width);
    println!("{}: {n} training images of {c}x{h}x{w}, batches of {}, {} epochs", args.dir, args.bs, args.epochs);
    println!("augment: {}; {} threads", args.aug.describe(), rayon::current_num_threads());
    let order = Order::Shuffled { seed: 42 };
    let plain = DataLoader::new(train.clone(), args.bs, order);
    let augmented = DataLoader::new(train, args.bs, order).augmented(args.aug, 42);
    // One untimed epoch of each first: page faults, the allocator, rayon's threads.
    time_epochs(&plain, 1);
    time_epochs(&augmented, 1);
    let plain_s = time_epochs(&plain, args.epochs);
    let augmented_s = time_epochs(&augmented, args.epochs);
    let images = (n * args.epochs) as f64;
    let augment_s = (augmented_s - plain_s).max(1e-9);
    println!(
        "plain_images_per_s={:.0} augmented_images_per_s={:.0} augment_only_images_per_s={:.0} \
         augment_us_per_image={:.2}",
        images / plain_s.max(1e-9),
        images / augmented_s.max(1e-9),
        images / augment_s,
        augment_s / images * 1e6
    );
}
