#!/usr/bin/env python3
"""Load a crest model file with PyTorch's safetensors package and check it predicts what `crest predict` does.

    crest train --arch mlp:32 --out /tmp/m.safetensors
    python bench/torch_load_model.py /tmp/m.safetensors data/mnist_sample/7/00000.png

Rebuilds linear and mlp models as torch.nn.Sequential from the stored metadata (the state-dict keys match), then
prints the class probabilities for the image, for comparison with `crest predict MODEL IMAGE`.
"""
import json
import sys

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file


def build(spec):
    layers = []
    for layer in spec["layers"]:
        kind = layer["type"]
        if kind == "Flatten":
            layers.append(torch.nn.Flatten())
        elif kind == "Linear":
            layers.append(torch.nn.Linear(layer["in_features"], layer["out_features"]))
        elif kind == "ReLU":
            layers.append(torch.nn.ReLU())
        else:
            sys.exit(f"this check rebuilds linear and mlp models only, not {kind}")
    return torch.nn.Sequential(*layers)


def main():
    model_path, image_path = sys.argv[1], sys.argv[2]
    with safe_open(model_path, "pt") as f:
        meta = json.loads(f.metadata()["crest"])
    model = build(meta["spec"])
    model.load_state_dict(load_file(model_path))
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[meta["channels"]]
    img = Image.open(image_path).convert(mode).resize((meta["width"], meta["height"]), Image.BILINEAR)
    x = torch.tensor(np.array(img), dtype=torch.float32).reshape(meta["height"], meta["width"], meta["channels"])
    x = x.permute(2, 0, 1).unsqueeze(0) * meta["scale"]
    logits = model(x)[0]
    probs = torch.softmax(logits, 0) if meta["loss"] == "cross_entropy" else torch.cat([1 - torch.sigmoid(logits), torch.sigmoid(logits)])
    ranked = sorted(zip(meta["classes"], probs.tolist()), key=lambda cp: -cp[1])
    print(image_path, "\t".join(f"{c} {p:.4f}" for c, p in ranked[:3]), sep="\t")


if __name__ == "__main__":
    main()
