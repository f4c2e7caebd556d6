"""Checks `crest import` + `crest predict` against PyTorch: a model of a crest architecture with random weights,
saved with safetensors as a torchvision state dict is, and torchvision's evaluation transform on PIL images
(Resize(resize), CenterCrop(crop), ToTensor, Normalize with ImageNet's mean and std).

Writes the fixtures of tests/import.rs (run from the repository root; the files are committed):
    /tmp/torchenv/bin/python bench/torch_import.py --fixtures tests/fixtures/import

Compares crest with torchvision on any arch torchvision has under the same name (resnet18 once crest has it) and
any images, printing both top-5s and the largest difference in probability:
    /tmp/torchenv/bin/python bench/torch_import.py --arch resnet18 --crest target/release/crest IMAGE...

The model's weights are drawn at random (seeded) and, for torchvision archs, BatchNorm's running statistics and
affine parameters are moved off their initial values, so that every tensor matters; nothing is downloaded.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torchvision
from PIL import Image
from safetensors.torch import save_file
from torchvision import transforms as T

torch.set_num_threads(2)

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def cnn(channels, crop, classes):
    """crest's `cnn` arch (`nn::Arch::spec`), whose state dict names are nn.Sequential's."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(64 * (crop // 4) ** 2, 128), nn.ReLU(), nn.Linear(128, classes))


def model_for(arch, channels, crop, classes):
    torch.manual_seed(0)
    if arch == "cnn":
        m = cnn(channels, crop, classes)
        # Spread the logits, so that probabilities differ enough for a comparison to mean something.
        with torch.no_grad():
            m[9].weight.mul_(8)
        return m.eval()
    m = getattr(torchvision.models, arch)(num_classes=classes)
    with torch.no_grad():
        for layer in m.modules():
            if isinstance(layer, torch.nn.BatchNorm2d):
                layer.running_mean.normal_(0, 0.1)
                layer.running_var.uniform_(0.5, 1.5)
                layer.weight.uniform_(0.5, 1.5)
                layer.bias.normal_(0, 0.1)
    return m.eval()


def crop_of(path, channels, resize, crop):
    """The PIL image torchvision's transform hands to ToTensor: converted, resized, centre-cropped."""
    img = Image.open(path).convert(MODES[channels])
    return T.CenterCrop(crop)(T.Resize(resize)(img))


def probabilities(model, img):
    x = T.Normalize(MEAN, STD)(T.ToTensor()(img))
    with torch.no_grad():
        return torch.softmax(model(x[None]), 1)[0]


def composite_images(out_dir):
    """Non-square pictures of real content (digits from data/mnist_sample, whose licence covers them) in RGB, RGBA
    and grey, so that resizing sees edges and both aspect ratios."""
    digits = [np.array(Image.open(f"data/mnist_sample/{c}/{i:05d}.png").convert("L")) for c in (3, 7) for i in range(6)]
    grid = np.block([[digits[r * 4 + c] for c in range(4)] for r in range(3)])  # 84 x 112
    made = {
        "digits-rgb-45x31.png": Image.fromarray(np.dstack([grid, np.roll(grid, 9, 1), 255 - grid])[:31, :45], "RGB"),
        "digits-rgb-97x61.png": Image.fromarray(
            np.dstack([np.roll(grid, 5, 0), grid, grid // 2 + 60])[:61, :97], "RGB"),
        "digits-rgba-33x70.png": Image.fromarray(
            np.dstack([grid, 255 - grid, np.roll(grid, 13, 0), 255 - grid // 2])[:70, 40:73], "RGBA"),
    }
    paths = []
    for name, img in made.items():
        path = os.path.join(out_dir, name)
        img.save(path)
        paths.append(path)
    return paths


def write_fixtures(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    resize, crop, classes = 16, 12, 10
    images = composite_images(out_dir) + [
        "data/mnist_sample/3/00000.png",
        "tests/fixtures/images/rgba-lossless.webp",
        "tests/fixtures/images/first-frame.gif",
    ]
    model = model_for("cnn", 3, crop, classes)
    save_file(model.state_dict(), os.path.join(out_dir, "cnn.safetensors"))
    with open(os.path.join(out_dir, "classes.txt"), "w") as f:
        f.write("".join(f"digit {i}\n" for i in range(classes)))
    # A pickled state dict, as torch.save writes it: what crest import refuses with how to convert it.
    torch.save({"w": torch.zeros(2)}, os.path.join(out_dir, "tiny.pth"))
    expected = {"resize": resize, "crop": crop, "images": [], "pixels": [[16, 12], [37, 33], [61, 50]]}
    pixels = bytearray()
    for path in images:
        probs = probabilities(model, crop_of(path, 3, resize, crop))
        expected["images"].append({"path": path, "probabilities": [round(p, 7) for p in probs.tolist()]})
        for r, c in expected["pixels"]:
            # Planar [C, H, W], as crest's pixels are.
            pixels += np.asarray(crop_of(path, 3, r, c)).transpose(2, 0, 1).tobytes()
    with open(os.path.join(out_dir, "pixels.bin"), "wb") as f:
        f.write(pixels)
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


def compare(arch, crest, images, resize, crop, classes):
    model = model_for(arch, 3, crop, classes)
    with tempfile.TemporaryDirectory() as tmp:
        weights, out = os.path.join(tmp, "w.safetensors"), os.path.join(tmp, "m.safetensors")
        save_file(model.state_dict(), weights)
        subprocess.run([crest, "import", weights, "--arch", arch, "--out", out, "--resize", str(resize), "--crop",
                        str(crop)], check=True)
        lines = subprocess.run([crest, "predict", out, *images, "--top", "5"], check=True, capture_output=True,
                               text=True).stdout.splitlines()
    worst = 0.0
    for path, line in zip(images, lines):
        probs = probabilities(model, crop_of(path, 3, resize, crop))
        top = torch.topk(probs, 5)
        torch_top = [(f"class {i}", p) for p, i in zip(top.values.tolist(), top.indices.tolist())]
        crest_top = [(f.rsplit(" ", 1)[0], float(f.rsplit(" ", 1)[1])) for f in line.split("\t")[1:]]
        same = [a[0] for a in torch_top] == [b[0] for b in crest_top]
        worst = max([worst] + [abs(a[1] - b[1]) for a, b in zip(torch_top, crest_top)])
        print(f"{path}: torch {[(c, round(p, 4)) for c, p in torch_top]}")
        print(f"{' ' * len(path)}  crest {crest_top}  {'same classes' if same else 'DIFFERENT CLASSES'}")
    print(f"largest difference in a top-5 probability: {worst:.2e} (crest prints 4 decimals)")
    return worst <= 1e-4


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", help="write tests/import.rs's fixtures to this folder")
    ap.add_argument("--arch", default="cnn")
    ap.add_argument("--crest", default="target/release/crest")
    ap.add_argument("--resize", type=int, default=256)
    ap.add_argument("--crop", type=int, default=224)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("images", nargs="*")
    args = ap.parse_args()
    if args.fixtures:
        write_fixtures(args.fixtures)
        return
    sys.exit(0 if compare(args.arch, args.crest, args.images, args.resize, args.crop, args.classes) else 1)


if __name__ == "__main__":
    main()
