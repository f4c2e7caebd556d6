"""crest's full-width ResNet-18 and ResNet-34 against torchvision's on the same weights and real images, at 224x224
and 64x64, in eval mode with non-trivial BatchNorm statistics. Not run in CI (it needs /work/shared/data and a few
seconds of compute per case).

    /tmp/torchenv/bin/python bench/torch_resnet_check.py [--depths 18,34] [--sizes 224,64] [--images N]

For each case, `cargo run --release --example resnet_logits` (bench/resnet_logits.rs) builds crest's ResNet, moves
its BatchNorms' γ, β and running statistics off their initial values, and writes its weights (crest's model file
writer: torchvision's names) with the input batch and crest's logits. This script loads those weights into
`torchvision.models.resnetNN()` with `load_state_dict(safetensors.torch.load_file(...))` (strict: every key
matches; PyTorch's BatchNorm fills in the `num_batches_tracked` crest does not keep, see src/nn/resnet/mod.rs), runs
it in eval mode in float64 on the same input, and prints crest's error: the worst |crest − torch| / max|torch| over
the logits (normwise), and the worst elementwise |crest − torch| / max(|torch|, 1e-2·max|torch|) (tests/common's
rule). The done-when bar is 1e-4.
"""
import argparse
import os
import shutil
import subprocess
import tempfile

import safetensors.torch
import torch
import torchvision

torch.set_num_threads(2)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
EMOJI = "/work/shared/data/emoji-vendors"


def sample_images(dest, count):
    """`count` images from each vendor folder (sorted names, spread over the folder), as an image folder."""
    for vendor in ("google", "twitter"):
        names = sorted(os.listdir(os.path.join(EMOJI, vendor)))
        os.makedirs(os.path.join(dest, vendor))
        for name in names[:: len(names) // count][:count]:
            shutil.copy(os.path.join(EMOJI, vendor, name), os.path.join(dest, vendor, name))


def check(depth, size, images_dir, work):
    out = os.path.join(work, f"r{depth}_{size}")
    cmd = ["cargo", "run", "--quiet", "--release", "--example", "resnet_logits", "--", str(depth), str(size)]
    subprocess.run(cmd + [images_dir, out], cwd=ROOT, check=True)
    model = getattr(torchvision.models, f"resnet{depth}")()
    model.load_state_dict(safetensors.torch.load_file(os.path.join(out, "weights.safetensors")))
    io = safetensors.torch.load_file(os.path.join(out, "io.safetensors"))
    model = model.double().eval()
    with torch.no_grad():
        want = model(io["input"].double())
    got = io["logits"].double()
    scale = want.abs().max()
    normwise = ((got - want).abs().max() / scale).item()
    elementwise = ((got - want).abs() / want.abs().clamp(min=1e-2 * scale)).max().item()
    verdict = "ok" if max(normwise, elementwise) <= 1e-4 else "OVER 1e-4"
    print(
        f"resnet{depth} {size}x{size} {tuple(want.shape)}: max|logit| {scale:.3f}, normwise {normwise:.2e}, "
        f"elementwise {elementwise:.2e} ({verdict})"
    )
    return max(normwise, elementwise)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--depths", default="18,34")
    p.add_argument("--sizes", default="224,64")
    p.add_argument("--images", type=int, default=2, help="images per vendor folder")
    a = p.parse_args()
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")
    with tempfile.TemporaryDirectory() as work:
        images = os.path.join(work, "images")
        sample_images(images, a.images)
        worst = max(
            check(int(d), int(s), images, work) for d in a.depths.split(",") for s in a.sizes.split(",")
        )
    print(f"worst relative error over all cases: {worst:.2e}")


if __name__ == "__main__":
    main()
