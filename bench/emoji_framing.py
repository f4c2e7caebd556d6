"""Why fastai's augmentation loses on the emoji data: the vendors frame their drawings differently.

python3 bench/emoji_framing.py SPLIT REFRAMED [--margin 4]

SPLIT is bench/folder_split.py's train/valid folders. Prints, per part, how often a class's drawings touch the
canvas edge (any pixel with alpha > 0 in the outer ring) and the accuracy of the one rule "touches the edge ->
twitter". Then writes REFRAMED/CLASS/*.png: SPLIT's valid images shrunk (PIL's antialiased bilinear) to leave
MARGIN transparent pixels on every side, the same drawings without the framing cue, for `crest evaluate MODEL
REFRAMED --split all`.
"""
import argparse
import os

import numpy as np
from PIL import Image

p = argparse.ArgumentParser()
p.add_argument("split")
p.add_argument("reframed")
p.add_argument("--margin", type=int, default=4)
a = p.parse_args()


def touches_edge(im):
    alpha = np.asarray(im)[..., 3] > 0
    return bool(alpha[0].any() or alpha[-1].any() or alpha[:, 0].any() or alpha[:, -1].any())


for part in ("train", "valid"):
    n = right = 0
    for cls in sorted(os.listdir(os.path.join(a.split, part))):
        folder = os.path.join(a.split, part, cls)
        files = sorted(os.listdir(folder))
        touching = sum(touches_edge(Image.open(os.path.join(folder, f)).convert("RGBA")) for f in files)
        n += len(files)
        right += touching if cls == "twitter" else len(files) - touching
        print(f"{part} {cls}: {touching} of {len(files)} touch the edge ({touching / len(files):.4f})")
    print(f"{part}: the rule 'touches the edge -> twitter' is right on {right} of {n} ({right / n:.4f})")

valid = os.path.join(a.split, "valid")
for cls in sorted(os.listdir(valid)):
    os.makedirs(os.path.join(a.reframed, cls), exist_ok=True)
    for f in sorted(os.listdir(os.path.join(valid, cls))):
        im = Image.open(os.path.join(valid, cls, f)).convert("RGBA")
        w, h = im.size
        inner = im.resize((w - 2 * a.margin, h - 2 * a.margin), Image.BILINEAR)
        out = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        out.paste(inner, (a.margin, a.margin))
        out.save(os.path.join(a.reframed, cls, f))
print(f"wrote {a.reframed}: the valid images with a {a.margin}-pixel transparent margin")
