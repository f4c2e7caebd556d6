#!/usr/bin/env python3
"""PyTorch baseline for the blog post's workload (image-classifier-from-scratch part 2).

Task: 2-class emoji vendors (google vs twitter), 64x64 PNG -> RGBA -> 140x140,
flattened to 4*140*140 = 78,400 features, one nn.Linear(78400, 1).

Recipes
  default : BCEWithLogitsLoss, Adam lr 1e-3, batch 64, shuffled
  post    : the post's mnist_loss  where(t==1, 1-sigmoid(p), sigmoid(p)).mean(),
            SGD lr 0.1, batch 200, shuffled, pixels scaled once (ToTensor -> [0,1])
  --as-posted (with --recipe post): exactly as written in the post: no shuffle,
            pixels /255 twice (ToTensor already divides, then .float()/255 again),
            weights and bias from init_params (randn * std 1.0), validation
            batch 50 and accuracy = mean of per-batch accuracies.

Output: per-epoch table, then one machine-readable line
  load_s=<f> images_per_s=<f> train_s=<f> valid_acc=<f> peak_rss_mb=<f>
train_s is the whole fit loop (20 x (train pass + validation pass)), load time excluded.
"""
import argparse
import os
import resource
import statistics
import sys
import time

# OpenMP's wait policy is left as PyTorch ships it (spinning), which is fastest on an otherwise idle machine
# (quiet, 2026-11-30: the post's 20 epochs took 11.9 s spinning, 31.7 s with OMP_WAIT_POLICY=PASSIVE). When the
# cores are shared with other work, spinning slows small ops 10-40x: set OMP_WAIT_POLICY=PASSIVE then.
os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE")

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.transforms as transforms
from PIL import Image


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    p.add_argument("data", nargs="?", default=os.path.join(here, "..", "..", "shared", "data", "emoji-vendors"),
                   help="folder with one sub-folder per class (default ../shared/data/emoji-vendors)")
    p.add_argument("--recipe", choices=["default", "post"], default="default")
    p.add_argument("--as-posted", action="store_true",
                   help="with --recipe post: no shuffle, /255 twice, init_params std=1, batch-mean accuracy")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--size", type=int, default=140)
    p.add_argument("--valid-pct", type=float, default=0.2)
    p.add_argument("--store", choices=["float", "uint8"], default="float",
                   help="keep the stacked images as float32 (like the post, ~2.4 GB) or uint8 (~0.6 GB, "
                        "converted per batch)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--gather", choices=["buffer", "alloc"], default="buffer",
                   help="buffer (default): index_select into a reused buffer per batch size; "
                        "alloc: xb = x[idx], a new tensor per batch (5x slower training here, see README)")
    a = p.parse_args()
    if a.as_posted and a.recipe != "post":
        p.error("--as-posted goes with --recipe post")
    if a.as_posted and a.store != "float":
        p.error("--as-posted needs --store float")
    return a


def list_classes(root):
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    files = []
    for ci, c in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(root, c))):
            if f.lower().endswith((".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")):
                files.append((os.path.join(root, c, f), ci))
    return classes, files


def load(root, size, store):
    """Decode + RGBA + Resize((size,size)) + ToTensor, into one preallocated (N, 4*size*size) tensor."""
    classes, files = list_classes(root)
    tf = transforms.Compose([transforms.Resize((size, size)), transforms.ToTensor()])
    n, d = len(files), 4 * size * size
    t0 = time.perf_counter()
    x = torch.empty((n, d), dtype=torch.float32 if store == "float" else torch.uint8)
    y = torch.empty(n, dtype=torch.float32)
    for i, (f, c) in enumerate(files):
        t = tf(Image.open(f).convert("RGBA"))  # (4, size, size) float in [0, 1]
        if store == "float":
            x[i] = t.reshape(-1)
        else:
            x[i] = t.reshape(-1).mul_(255).round_().to(torch.uint8)
        y[i] = c
    load_s = time.perf_counter() - t0
    return classes, x, y, load_s


def stratified_split(y, valid_pct, seed):
    """Seeded stratified split: per class, a random permutation; the first round(pct*n) go to valid."""
    g = torch.Generator().manual_seed(seed)
    tr, va = [], []
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        nv = int(round(valid_pct * len(idx)))
        va.append(idx[:nv])
        tr.append(idx[nv:])
    return torch.cat(tr), torch.cat(va)


def mnist_loss(p, t):
    s = p.sigmoid()
    return torch.where(t == 1, 1 - s, s).mean()


def main():
    a = parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    classes, x, y, load_s = load(a.data, a.size, a.store)
    n = len(y)
    print(f"loaded {n} images, classes {classes}, {x.shape[1]} features, {x.dtype}, "
          f"{load_s:.2f} s ({n / load_s:.1f} images/s)", flush=True)
    if a.as_posted:
        x.div_(255)  # the post's torch.stack(...).float()/255 after ToTensor: /255 twice

    tr_idx, va_idx = stratified_split(y, a.valid_pct, a.seed)
    if a.as_posted:
        tr_idx, _ = torch.sort(tr_idx)  # the post: torch.cat([class A, class B]), no shuffle
        va_idx, _ = torch.sort(va_idx)
    print(f"split: {len(tr_idx)} train, {len(va_idx)} valid (seed {a.seed})", flush=True)

    model = nn.Linear(x.shape[1], 1)
    if a.as_posted:
        with torch.no_grad():  # init_params(size, std=1.0) = randn(size)*std
            model.weight.copy_(torch.randn(model.weight.shape))
            model.bias.copy_(torch.randn(model.bias.shape))

    if a.recipe == "default":
        loss_fn = lambda p, t: F.binary_cross_entropy_with_logits(p, t)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        bs = 64
    else:
        loss_fn = mnist_loss
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        bs = 200
    shuffle = not a.as_posted
    vbs = 50 if a.as_posted else 1000
    g = torch.Generator().manual_seed(a.seed + 1_000_003)

    # --gather buffer: gather each batch into one reused buffer (index_select out=) instead of a
    # fresh tensor per batch; a batch of 200 x 78,400 floats is 63 MB, above glibc's mmap
    # threshold, so x[idx] maps and page-faults fresh memory for every batch.
    bufs = {}

    def batch(idx):
        if a.gather == "buffer":
            buf = bufs.get(len(idx))
            if buf is None:
                buf = bufs[len(idx)] = torch.empty((len(idx), x.shape[1]), dtype=x.dtype)
            xb = torch.index_select(x, 0, idx, out=buf)
        else:
            xb = x[idx]
        if xb.dtype == torch.uint8:
            xb = xb.float().div_(255)
        return xb, y[idx].unsqueeze(1)

    print(f"recipe {a.recipe}{' (as posted)' if a.as_posted else ''}: batch {bs}, shuffle {shuffle}, "
          f"{a.epochs} epochs, gather {a.gather}, {torch.get_num_threads()} threads, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, "
          f"torch {torch.__version__}", flush=True)
    print("epoch  train_loss  valid_loss  accuracy  seconds", flush=True)
    epoch_times = []
    t_train = time.perf_counter()
    acc = float("nan")
    for epoch in range(a.epochs):
        te = time.perf_counter()
        model.train()
        order = tr_idx[torch.randperm(len(tr_idx), generator=g)] if shuffle else tr_idx
        tot, cnt = 0.0, 0
        for i in range(0, len(order), bs):
            xb, yb = batch(order[i:i + bs])
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += loss.item() * len(yb)
            cnt += len(yb)
        model.eval()
        vtot, vcnt, correct, batch_accs = 0.0, 0, 0, []
        with torch.no_grad():
            for i in range(0, len(va_idx), vbs):
                xb, yb = batch(va_idx[i:i + vbs])
                p = model(xb)
                vtot += loss_fn(p, yb).item() * len(yb)
                vcnt += len(yb)
                ok = ((p.sigmoid() > 0.5).float() == yb).float()
                correct += int(ok.sum().item())
                batch_accs.append(ok.mean().item())
        acc = statistics.fmean(batch_accs) if a.as_posted else correct / vcnt
        dt = time.perf_counter() - te
        epoch_times.append(dt)
        print(f"{epoch:5d}  {tot / cnt:10.6f}  {vtot / vcnt:10.6f}  {acc:8.6f}  {dt:7.3f}", flush=True)
    train_s = time.perf_counter() - t_train

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"median epoch {statistics.median(epoch_times):.4f} s (train pass + validation)", flush=True)
    print(f"load_s={load_s:.4f} images_per_s={n / load_s:.2f} train_s={train_s:.4f} valid_acc={acc:.6f} "
          f"peak_rss_mb={peak:.1f}", flush=True)


if __name__ == "__main__":
    main()
