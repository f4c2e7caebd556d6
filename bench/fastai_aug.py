#!/usr/bin/env python3
"""fastai's augmentation speed, to set beside bench/aug_speed.rs on the same folder.

fastai's own pipeline on the CPU: ImageDataLoaders.from_folder (valid_pct 0.2, seed 42, batches of 64, no worker
processes), with batch_tfms=aug_transforms() and without; every training batch of --epochs epochs is drawn and
timed. The difference is what aug_transforms() costs, since everything else (PNG decoding, collation) is the same.
Also timed: aug_transforms() alone on batches already in memory as float tensors (the pipeline minus the loading).

    /tmp/torchenv/bin/python bench/fastai_aug.py [DIR] [--epochs N] [--threads N] [--limit N]

DIR defaults to ../shared/data/emoji-vendors; --limit N keeps the first N images of each class (for a quick check).
Last line:
  plain_images_per_s=<f> augmented_images_per_s=<f> augment_only_images_per_s=<f> augment_us_per_image=<f> \
  batch_tfms_only_images_per_s=<f>
"""
import argparse
import os
import time

# As in the other bench/ scripts: PyTorch's spinning OpenMP threads, fastest on a quiet machine.
os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE")

import torch
from fastai.vision.all import (ImageDataLoaders, IntToFloatTensor, Pipeline, aug_transforms, get_image_files,
                               parent_label)

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", nargs="?", default=os.path.join(HERE, "..", "..", "shared", "data", "emoji-vendors"))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--bs", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=None, help="the first N images of each class only")
    return p.parse_args()


def files(path, limit):
    fs = sorted(get_image_files(path))
    if limit is None:
        return fs
    kept, count = [], {}
    for f in fs:
        label = parent_label(f)
        if count.get(label, 0) < limit:
            kept.append(f)
            count[label] = count.get(label, 0) + 1
    return kept


def loaders(a, batch_tfms):
    fnames = files(a.dir, a.limit)
    return ImageDataLoaders.from_name_func(
        a.dir, fnames, parent_label, valid_pct=0.2, seed=42, bs=a.bs, num_workers=0, device=torch.device("cpu"),
        batch_tfms=batch_tfms)


def time_epochs(dl, epochs):
    """Seconds and images: fastai's training loader drops a short last batch, so the images are counted."""
    start = time.perf_counter()
    images = 0
    for _ in range(epochs):
        for x, _y in dl:
            images += x.shape[0]
    return time.perf_counter() - start, images


def main():
    a = parse_args()
    torch.set_num_threads(a.threads)
    plain = loaders(a, None)
    augmented = loaders(a, aug_transforms())
    n = len(plain.train_ds)
    print(f"{a.dir}: {n} training images, batches of {a.bs}, {a.epochs} epochs, {torch.get_num_threads()} threads")
    print(f"batch_tfms: {augmented.train.after_batch}")
    # One untimed epoch of each first, as aug_speed.rs does.
    time_epochs(plain.train, 1)
    time_epochs(augmented.train, 1)
    plain_s, images = time_epochs(plain.train, a.epochs)
    augmented_s, _ = time_epochs(augmented.train, a.epochs)
    if images == 0:
        raise SystemExit(f"fastai_aug: {n} training images make no full batch of {a.bs}")
    # The training batches as float tensors in memory, then the augmentation alone over them (the training split's
    # transforms: split_idx 0).
    batches = [x.clone() for x, _y in plain.train]
    pipeline = Pipeline([t for t in augmented.train.after_batch.fs if not isinstance(t, IntToFloatTensor)], split_idx=0)
    start = time.perf_counter()
    for _ in range(a.epochs):
        for x in batches:
            pipeline(x)
    tfms_s = time.perf_counter() - start
    augment_s = max(augmented_s - plain_s, 1e-9)
    print(f"plain_images_per_s={images / plain_s:.0f} augmented_images_per_s={images / augmented_s:.0f} "
          f"augment_only_images_per_s={images / augment_s:.0f} augment_us_per_image={augment_s / images * 1e6:.2f} "
          f"batch_tfms_only_images_per_s={images / tfms_s:.0f}")


if __name__ == "__main__":
    main()
