"""Makes a fixed train/valid split of an image folder: the one both crest and fastai train on in bench/run_emoji.sh,
and bench/transfer.sh's small task and pretraining subsets.

python3 bench/folder_split.py SRC DST [--valid-pct 0.2] [--seed 0] [--train-per-class N --valid-per-class M]

SRC has one folder per class; DST gets train/CLASS/ and valid/CLASS/ of symbolic links to SRC's files: each class's
sorted files shuffled with Python's random.Random(seed), the first valid_pct of them valid. With --train-per-class
(bench/transfer.sh's subsets), the first M of them are valid (default 200) and the next N train, the rest unused.
crest reads train/ and valid/ folders as the split (as fastai's GrandparentSplitter does), so both see the same
images.
"""
import argparse
import os
import random

p = argparse.ArgumentParser()
p.add_argument("src")
p.add_argument("dst")
p.add_argument("--valid-pct", type=float, default=0.2)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--train-per-class", type=int)
p.add_argument("--valid-per-class", type=int, default=200)
a = p.parse_args()
src = os.path.abspath(a.src)
for cls in sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d))):
    files = sorted(f for f in os.listdir(os.path.join(src, cls)) if f.lower().endswith(".png"))
    random.Random(a.seed).shuffle(files)
    n_valid = round(len(files) * a.valid_pct) if a.train_per_class is None else a.valid_per_class
    if a.train_per_class is not None:
        files = files[: n_valid + a.train_per_class]
    for i, f in enumerate(files):
        part = "valid" if i < n_valid else "train"
        os.makedirs(os.path.join(a.dst, part, cls), exist_ok=True)
        link = os.path.join(a.dst, part, cls, f)
        if not os.path.lexists(link):
            os.symlink(os.path.join(src, cls, f), link)
    print(f"{cls}: {len(files) - n_valid} train, {n_valid} valid")
