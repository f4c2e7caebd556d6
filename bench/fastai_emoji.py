"""fastai's own workflow on a train/valid image folder, as the issue states it: vision_learner(dls, resnet18,
pretrained=False) with aug_transforms() and fit_one_cycle.

python bench/fastai_emoji.py DIR --epochs 5 --seed 1 [--no-aug] [--bs 64]

Two threads (torch.set_num_threads(2)), no worker processes. Prints fastai's table, then one line of key=value
pairs: epoch_s (the median epoch's training pass, validation excluded, as crest bench reports it), valid_acc (after
the last epoch), train_s (fit_one_cycle, all epochs with validation).
"""
import argparse
import statistics
import time

import torch
from fastai.vision.all import (Callback, ImageDataLoaders, aug_transforms, accuracy, resnet18, set_seed,
                               vision_learner, Path)

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("--epochs", type=int, default=5)
p.add_argument("--seed", type=int, default=1)
p.add_argument("--bs", type=int, default=64)
p.add_argument("--lr", type=float, default=None, help="fit_one_cycle's lr_max [default: fastai's, 1e-3]")
p.add_argument("--no-aug", action="store_true")
a = p.parse_args()
torch.set_num_threads(2)
set_seed(a.seed, reproducible=True)


class TrainPassTimer(Callback):
    """Seconds of each epoch's training pass."""
    def before_fit(self): self.times = []
    def before_train(self): self.t = time.perf_counter()
    def after_train(self): self.times.append(time.perf_counter() - self.t)


dls = ImageDataLoaders.from_folder(Path(a.dir), train="train", valid="valid", bs=a.bs, num_workers=0,
                                   batch_tfms=None if a.no_aug else aug_transforms(), seed=a.seed, device="cpu")
timer = TrainPassTimer()
learn = vision_learner(dls, resnet18, pretrained=False, metrics=accuracy, cbs=[timer])
start = time.perf_counter()
kw = {} if a.lr is None else {"lr_max": a.lr}
learn.fit_one_cycle(a.epochs, **kw)
train_s = time.perf_counter() - start
acc = float(learn.recorder.values[-1][2])
print(f"epoch_s={statistics.median(timer.times):.4f} valid_acc={acc:.4f} train_s={train_s:.3f}")
