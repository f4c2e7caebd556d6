"""How fast torchvision's ResNet-18 trains and infers on the CPU, measured as bench/resnet_speed.rs measures crest's:
synthetic inputs (seeded N(0, 1) images, labels i mod 10, 10 classes), SGD with momentum 0.9, lr 0.01.

    /tmp/torchenv/bin/python bench/torch_resnet_speed.py [--depth 18] [--steps 10] [--threads 2]
    cargo run --release --example resnet_speed -- [--depth 18] [--steps 10] [--threads 2]

Training: batches of 64 at 64x64 and at 128x128 (RGB), forward + cross-entropy + backward + step, one warm-up step
then --steps timed ones. Inference: batches of 16 at 224x224 in eval mode under no_grad, one warm-up batch then
--steps timed ones. Prints one line per measurement and ends with
`train64_images_per_s=... train128_images_per_s=... infer224_images_per_s=...`, as crest's does. Run on a quiet
machine, with the same thread count for both.
"""
import argparse
import os
import time

# As bench/torch_fashion.py: OpenMP spins by default, fastest on an idle machine; set OMP_WAIT_POLICY=PASSIVE when
# the cores are shared.
os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE")

import torch
import torch.nn.functional as F
import torchvision

CLASSES = 10


def batch(n, size):
    g = torch.Generator().manual_seed(size)
    return torch.randn(n, 3, size, size, generator=g), torch.arange(n) % CLASSES


def train_rate(depth, size, steps):
    net = getattr(torchvision.models, f"resnet{depth}")(num_classes=CLASSES).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x, y = batch(64, size)

    def step():
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return 64 * steps / (time.perf_counter() - start)


def infer_rate(depth, steps):
    net = getattr(torchvision.models, f"resnet{depth}")(num_classes=CLASSES).eval()
    x, _ = batch(16, 224)
    with torch.no_grad():
        net(x)
        start = time.perf_counter()
        for _ in range(steps):
            net(x)
    return 16 * steps / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--depth", type=int, default=18)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    train64 = train_rate(a.depth, 64, a.steps)
    print(f"resnet{a.depth} train 64x64 batch 64 images_per_s={train64:.1f}")
    train128 = train_rate(a.depth, 128, a.steps)
    print(f"resnet{a.depth} train 128x128 batch 64 images_per_s={train128:.1f}")
    infer = infer_rate(a.depth, a.steps)
    print(f"resnet{a.depth} infer 224x224 batch 16 images_per_s={infer:.1f}")
    print(f"train64_images_per_s={train64:.1f} train128_images_per_s={train128:.1f} infer224_images_per_s={infer:.1f}")


if __name__ == "__main__":
    main()
