#!/usr/bin/env python3
"""PyTorch baseline on Fashion-MNIST (60,000 train / 10,000 test, 28x28 grey, 10 classes).

Reads the IDX gz files directly (gzip + numpy; no torchvision download), pixels / 255.
  --arch linear : Linear(784, 10)
  --arch mlp    : Linear(784, 256) - ReLU - Linear(256, 10)
  --arch cnn    : Conv(1,32,3,p1)-ReLU-MaxPool2-Conv(32,64,3,p1)-ReLU-MaxPool2-Flatten
                  -Linear(3136,128)-ReLU-Linear(128,10)
Cross-entropy, Adam lr 1e-3, batch 128, shuffled, --epochs 5, --seed.

Per epoch: seconds of the training pass (forward + backward + step over 60,000
images; the test-set evaluation after it is timed separately and not included).
Final line:
  epoch_s=<median s/epoch> test_acc=<f> infer_images_per_s=<f> peak_rss_mb=<f>
infer_images_per_s: the 10,000 test images in batches of 1000, eval mode, no_grad
(after one warm-up batch), passes repeated until a second has gone by.
"""
import argparse
import gzip
import os
import resource
import statistics
import time

# OpenMP's wait policy is left as PyTorch ships it (spinning), which is fastest on an otherwise idle machine
# (quiet, 2026-11-30: the post's 20 epochs took 11.9 s spinning, 31.7 s with OMP_WAIT_POLICY=PASSIVE). When the
# cores are shared with other work, spinning slows small ops 10-40x: set OMP_WAIT_POLICY=PASSIVE then.
os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE")

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    assert magic >> 8 == 0x08, f"{path}: not unsigned-byte IDX (magic {magic:#x})"
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def build(arch):
    if arch == "linear":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    if arch == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    if arch == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    raise ValueError(arch)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="?", default=os.path.join(here, "..", "..", "shared", "data", "fashion-mnist"))
    p.add_argument("--arch", choices=["linear", "mlp", "cnn"], default="linear")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--bs", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    t0 = time.perf_counter()
    def images(name):
        x = torch.from_numpy(read_idx(os.path.join(a.data, name)).copy()).float().div_(255)
        return x.unsqueeze(1)  # (N, 1, 28, 28)
    def labels(name):
        return torch.from_numpy(read_idx(os.path.join(a.data, name)).astype(np.int64))
    xtr, ytr = images("train-images-idx3-ubyte.gz"), labels("train-labels-idx1-ubyte.gz")
    xte, yte = images("t10k-images-idx3-ubyte.gz"), labels("t10k-labels-idx1-ubyte.gz")
    load_s = time.perf_counter() - t0
    print(f"loaded {len(ytr)} train + {len(yte)} test images in {load_s:.2f} s; arch {a.arch}, "
          f"batch {a.bs}, Adam lr {a.lr}, {torch.get_num_threads()} threads, "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, torch {torch.__version__}", flush=True)

    model = build(a.arch)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    g = torch.Generator().manual_seed(a.seed + 1_000_003)

    def evaluate(bs=1000):
        model.eval()
        correct, tot = 0, 0.0
        with torch.no_grad():
            for i in range(0, len(yte), bs):
                out = model(xte[i:i + bs])
                tot += F.cross_entropy(out, yte[i:i + bs], reduction="sum").item()
                correct += int((out.argmax(1) == yte[i:i + bs]).sum())
        return tot / len(yte), correct / len(yte)

    print("epoch  train_loss  test_loss  test_acc  train_s  eval_s", flush=True)
    epoch_times = []
    acc = float("nan")
    for epoch in range(a.epochs):
        te = time.perf_counter()
        model.train()
        perm = torch.randperm(len(ytr), generator=g)
        tot = 0.0
        for i in range(0, len(perm), a.bs):
            idx = perm[i:i + a.bs]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += loss.item() * len(idx)
        dt = time.perf_counter() - te
        epoch_times.append(dt)
        tv = time.perf_counter()
        vloss, acc = evaluate()
        ev = time.perf_counter() - tv
        print(f"{epoch:5d}  {tot / len(ytr):10.6f}  {vloss:9.6f}  {acc:8.6f}  {dt:7.3f}  {ev:6.3f}", flush=True)

    # inference throughput: batch 1000, eval mode, no_grad, one warm-up batch first
    model.eval()
    # passes repeat until a second has gone by (as crest measures itself: one pass is a few milliseconds)
    with torch.no_grad():
        model(xte[:1000])
        ti = time.perf_counter()
        passes = 0
        while passes == 0 or time.perf_counter() - ti < 1.0:
            for i in range(0, len(yte), 1000):
                model(xte[i:i + 1000])
            passes += 1
        infer_s = time.perf_counter() - ti
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"epoch_s={statistics.median(epoch_times):.4f} test_acc={acc:.6f} "
          f"infer_images_per_s={passes * len(yte) / infer_s:.1f} peak_rss_mb={peak:.1f}", flush=True)


if __name__ == "__main__":
    main()
