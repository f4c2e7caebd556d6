"""Makes an image-folder subset of an IDX data set (Fashion-MNIST, MNIST) for bench/transfer.sh's pretraining.

python3 bench/idx_split.py SRC DST --train-per-class N --valid-per-class M [--seed 0]

SRC holds train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), t10k-… and optionally classes.txt (one name a
line; else the labels' numbers). DST gets train/CLASS/ with N images per class, taken from SRC's training set, and
valid/CLASS/ with M per class from its test set, as 8-bit grey PNGs: each class's indices in file order shuffled with
Python's random.Random(seed), the first ones kept. crest reads train/ and valid/ folders as the split. Standard
library only (the PNGs are written with zlib), so it runs without the torch venv.
"""
import argparse
import gzip
import os
import random
import re
import struct
import zlib


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return dims, data[4 + 4 * ndim :]


def find(src, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(src, name)):
            return os.path.join(src, name)
    raise SystemExit(f"no {stem}(.gz) in {src}")


def png(width, height, pixels):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + pixels[r * width : (r + 1) * width] for r in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


p = argparse.ArgumentParser()
p.add_argument("src")
p.add_argument("dst")
p.add_argument("--train-per-class", type=int, required=True)
p.add_argument("--valid-per-class", type=int, required=True)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
names_file = os.path.join(a.src, "classes.txt")
names = open(names_file).read().splitlines() if os.path.exists(names_file) else None
for part, prefix, per_class in (("train", "train", a.train_per_class), ("valid", "t10k", a.valid_per_class)):
    (n, h, w), pixels = read_idx(find(a.src, f"{prefix}-images-idx3-ubyte"))
    _, labels = read_idx(find(a.src, f"{prefix}-labels-idx1-ubyte"))
    by_class = {}
    for i, label in enumerate(labels[:n]):
        by_class.setdefault(label, []).append(i)
    for label in sorted(by_class):
        # Folder names sort as the labels do and hold no path separators ("T-shirt/top").
        name = f"{label}" if names is None else f"{label}-{re.sub(r'[^A-Za-z0-9]+', '-', names[label])}"
        indices = by_class[label]
        random.Random(a.seed).shuffle(indices)
        folder = os.path.join(a.dst, part, name)
        os.makedirs(folder, exist_ok=True)
        for i in indices[:per_class]:
            with open(os.path.join(folder, f"{i:05}.png"), "wb") as f:
                f.write(png(w, h, pixels[i * h * w : (i + 1) * h * w]))
        print(f"{part}/{name}: {min(per_class, len(indices))}")
