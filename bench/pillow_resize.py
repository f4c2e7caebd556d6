"""What Pillow's `Image.resize(size, BILINEAR)` computes, the resize torchvision's `Resize` runs on PIL images, found
by experiment on the Pillow in use (13.0 when written), and crest's resize (src/data/resize.rs) against it.

    /tmp/torchenv/bin/python bench/pillow_resize.py order   # which order of the two passes Pillow runs, and when
    /tmp/torchenv/bin/python bench/pillow_resize.py cases   # the expected bytes of src/data/resize.rs's tests
    /tmp/torchenv/bin/python bench/pillow_resize.py crest   # crest's bytes against PIL's on many images and sizes
    /tmp/torchenv/bin/python bench/pillow_resize.py shapes DIR  # tall and wide RGB photos' shapes, for predict
    /tmp/torchenv/bin/python bench/pillow_resize.py effect IMAGE...  # what the other order costs torchvision

`order` models Pillow's fixed-point passes (precompute_coeffs and normalize_coeffs_8bpc of Resample.c, each pass
rounded to u8) in numpy, runs them in both orders on random images, and checks which equals PIL's bytes: exactly one
does for every size tried, and the vertical pass comes first exactly when the height shrinks by more than twice as
many pixels as the width (python-pillow/Pillow#9549, "If height is scaled down significantly more than width, resize
vertically first"). It also checks torchvision's path: `Resize` hands a PIL image to `img.resize(size, interpolation)`
with no `box` and no `reducing_gap` (so no `Image.reduce` step), and `antialias` changes nothing on PIL images.
`crest` runs bench/pillow_resize.rs (cargo run --release --example pillow_resize) from the repository root.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

torch.set_num_threads(2)

PRECISION_BITS = 22
MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def coeffs(in_size, out_size):
    """Pillow's bilinear precompute_coeffs + normalize_coeffs_8bpc: per output index, the first input index and the
    fixed-point weights."""
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    out = []
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - filter_scale + 0.5), 0)
        xmax = min(int(center + filter_scale + 0.5), in_size)
        w = [max(1.0 - abs((x - center + 0.5) * (1.0 / filter_scale)), 0.0) for x in range(xmin, xmax)]
        total = sum(w)
        w = [v / total if total != 0 else v for v in w]
        out.append((xmin, np.array([int(v * (1 << PRECISION_BITS) + 0.5) for v in w], dtype=np.int64)))
    return out


def horizontal(a, out_w):
    """Pillow's horizontal pass on `[h, w, c]` u8, rounded to u8; skipped when the width does not change."""
    if a.shape[1] == out_w:
        return a
    out = np.empty((a.shape[0], out_w, a.shape[2]), np.uint8)
    for xx, (first, w) in enumerate(coeffs(a.shape[1], out_w)):
        acc = (1 << (PRECISION_BITS - 1)) + np.einsum("hwc,w->hc", a[:, first:first + len(w)].astype(np.int64), w)
        out[:, xx] = np.clip(acc >> PRECISION_BITS, 0, 255)
    return out


def vertical(a, out_h):
    return horizontal(a.transpose(1, 0, 2), out_h).transpose(1, 0, 2)


def modelled(a, out_w, out_h, vertical_first):
    return horizontal(vertical(a, out_h), out_w) if vertical_first else vertical(horizontal(a, out_w), out_h)


def pillow_13_vertical_first(w, h, out_w, out_h):
    """The rule found by `order`, which src/data/resize.rs follows."""
    return out_h < h and h - out_h > 2 * (w - out_w)


def pil(a, out_w, out_h):
    img = Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a, MODES[a.shape[2]])
    return np.asarray(img.resize((out_w, out_h), Image.BILINEAR)).reshape(out_h, out_w, a.shape[2])


def resized_256(w, h):
    """The size torchvision's Resize(256) gives a w x h image."""
    short, long = min(w, h), max(w, h)
    long = int(256 * long / short)
    return (256, long) if w <= h else (long, 256)


def order():
    rng = np.random.default_rng(0)
    sizes = []
    # Every output height, for several output widths, of images square, tall and wide: where the rule switches.
    for w, h in [(100, 100), (50, 200), (200, 60), (31, 45), (120, 37), (9, 300)]:
        for out_w in sorted(set(rng.integers(1, 2 * w, 10).tolist()) - {w}):
            sizes += [(w, h, out_w, out_h) for out_h in range(1, h + 40) if out_h != h]
    # Random sizes, up and down, mostly non-integer factors.
    for _ in range(600):
        w, h, out_w, out_h = (int(v) for v in rng.integers(2, 160, 4))
        sizes.append((w, h, out_w, out_h))
    # torchvision's Resize(256) on photos' shapes, tall and wide, shorter side above and below 256.
    for w, h in [(300, 500), (500, 300), (300, 700), (700, 300), (375, 500), (500, 375), (240, 600), (120, 500),
                 (600, 1400), (100, 150), (64, 64), (257, 900), (1000, 257)]:
        sizes.append((w, h, *resized_256(w, h)))
    counts = {"horizontal first only": 0, "vertical first only": 0, "both": 0, "neither": 0}
    rule_wrong = []
    for i, (w, h, out_w, out_h) in enumerate(sizes):
        c = 3 if i % 10 == 0 else 1  # RGB's channels are resized independently; L is quicker to model
        a = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
        want = pil(a, out_w, out_h)
        hv = np.array_equal(modelled(a, out_w, out_h, False), want)
        vh = np.array_equal(modelled(a, out_w, out_h, True), want)
        counts[{(True, False): "horizontal first only", (False, True): "vertical first only", (True, True): "both",
                (False, False): "neither"}[(hv, vh)]] += 1
        if not (vh if pillow_13_vertical_first(w, h, out_w, out_h) else hv):
            rule_wrong.append((w, h, out_w, out_h, hv, vh))
    print(f"{len(sizes)} resizes (w, h -> out_w, out_h), PIL {Image.__version__}: which modelled order equals PIL's"
          f" bytes: {counts}")
    print(f"the rule `out_h < h and h - out_h > 2 * (w - out_w)` picks an order that matches in all but"
          f" {len(rule_wrong)}: {rule_wrong[:10]}")

    # torchvision's path on PIL images: img.resize(size, BILINEAR) and nothing else, whatever `antialias` says.
    for w, h in [(300, 700), (700, 300), (120, 500), (64, 64)]:
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
        direct = np.asarray(img.resize(resized_256(w, h), Image.BILINEAR))
        for antialias in (True, False):
            via = np.asarray(T.Resize(256, antialias=antialias)(img))
            print(f"{w}x{h}: Resize(256, antialias={antialias}) == img.resize({resized_256(w, h)}, BILINEAR):"
                  f" {np.array_equal(via, direct)}")


def rust_bytes(a):
    return ", ".join(str(int(v)) for v in a.reshape(-1))


def cases():
    """Small images whose two orders of passes give different bytes, so each test tells the orders apart."""
    src = ((np.arange(7)[None, :] * 53 + np.arange(16)[:, None] * 29 + np.arange(7)[None, :] * np.arange(16)[:, None]
            * 11) % 256).astype(np.uint8)
    print(f"// Image.fromarray(src, 'L') for src =\n// {src.tolist()}")
    rgb = np.dstack([src, 255 - src, np.roll(src, 3, 0)])
    for a, (out_w, out_h) in [(src[:, :, None], (6, 5)), (src[:, :, None], (12, 4)), (src[:13, :, None], (4, 7)),
                              (rgb, (5, 6))]:
        h, w, c = a.shape
        want = pil(a, out_w, out_h)
        first = pillow_13_vertical_first(w, h, out_w, out_h)
        assert np.array_equal(modelled(a, out_w, out_h, first), want)
        assert not np.array_equal(modelled(a, out_w, out_h, not first), want), "the orders agree: a useless case"
        print(f"// {w}x{h} ({MODES[c]}) -> {out_w}x{out_h}, {'vertical' if first else 'horizontal'} pass first:")
        print(f"[{rust_bytes(want)}]")


def crest():
    rng = np.random.default_rng(1)
    shapes = [(300, 700), (700, 300), (300, 500), (500, 300), (120, 500), (500, 120), (257, 600), (64, 64),
              (45, 31), (33, 70), (97, 61), (200, 200)]
    with tempfile.TemporaryDirectory() as tmp:
        cases, want = [], []
        for i, (w, h) in enumerate(shapes):
            for mode in ("L", "RGB", "RGBA"):
                channels = len(mode)
                a = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
                if mode == "RGBA":
                    a[..., 3] = np.where(rng.random((h, w)) < 0.2, 0, a[..., 3])  # some fully transparent pixels
                file = f"{i}-{mode}.png"
                Image.fromarray(a[:, :, 0] if channels == 1 else a, mode).save(os.path.join(tmp, file))
                targets = [resized_256(w, h), resized_256(w, h)[::-1], (w * 2 // 3, h // 3 + 1), (w + 7, h // 2),
                           (int(w / 2.7), int(h / 2.7) + 1)]
                for out_channels in sorted({1, channels, 3}):
                    for out_w, out_h in targets:
                        cases.append((file, out_channels, out_w, out_h))
                        img = Image.open(os.path.join(tmp, file)).convert(MODES[out_channels])
                        resized = np.asarray(img.resize((out_w, out_h), Image.BILINEAR))
                        want.append(resized.reshape(out_h, out_w, out_channels).transpose(2, 0, 1).tobytes())
        with open(os.path.join(tmp, "cases.txt"), "w") as f:
            f.write("".join(f"{file} {c} {w} {h}\n" for file, c, w, h in cases))
        subprocess.run(["cargo", "run", "--release", "--quiet", "--example", "pillow_resize", "--", tmp], check=True)
        got = open(os.path.join(tmp, "crest.bin"), "rb").read()
    at, differing = 0, []
    for case, theirs in zip(cases, want):
        ours = np.frombuffer(got[at:at + len(theirs)], np.uint8)
        at += len(theirs)
        worst = np.abs(ours.astype(int) - np.frombuffer(theirs, np.uint8)).max()
        if worst:
            differing.append((case, int(worst)))
    assert at == len(got)
    print(f"{len(cases)} resizes of {len(shapes) * 3} images (L, RGB, RGBA, converted to 1, 3 or 4 channels): "
          f"{len(differing)} differ from PIL's bytes {differing[:10]}")


def shapes(out_dir, emoji_dir="/work/shared/data/emoji-vendors/google"):
    """Mosaics of emoji (RGBA, 64x64, on grey, scaled to 100x100 with PIL) as tall and wide RGB images, for
    `bench/torch_import.py --arch resnet18` to compare crest predict with torchvision on: 300x700 is a shape whose
    Resize(256) (to 256x597) runs the vertical pass first in Pillow 13; 300x500 and 500x300 run the horizontal one
    first."""
    os.makedirs(out_dir, exist_ok=True)
    names = sorted(os.listdir(emoji_dir))
    for w, h in [(300, 700), (300, 500), (500, 300)]:
        canvas = Image.new("RGB", (w, h), (120, 130, 140))
        for i in range(w // 100 * (h // 100)):
            face = Image.open(os.path.join(emoji_dir, names[i * 7])).convert("RGBA").resize((100, 100), Image.BICUBIC)
            canvas.paste(face, (i % (w // 100) * 100, i // (w // 100) * 100), face)
        path = os.path.join(out_dir, f"emoji-{w}x{h}.png")
        canvas.save(path)
        print(path)


def effect(*images):
    """What resizing with the horizontal pass always first (crest before it followed Pillow 13) changes in
    torchvision's Resize(256) + CenterCrop(224) bytes and in the top-5 probabilities of bench/torch_import.py's
    seeded random resnet18, in full precision (crest predict prints 4 decimals)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from torch_import import MEAN, STD, model_for

    model = model_for("resnet18", 3, 224, 1000)
    for path in images:
        img = Image.open(path).convert("RGB")
        size = resized_256(*img.size)
        pillow = np.array(T.CenterCrop(224)(img.resize(size, Image.BILINEAR)))
        horizontal_first = Image.fromarray(modelled(np.asarray(img), *size, False))
        other = np.array(T.CenterCrop(224)(horizontal_first))
        probs = []
        for pixels in (pillow, other):
            x = T.Normalize(MEAN, STD)(T.ToTensor()(pixels))
            with torch.no_grad():
                probs.append(torch.softmax(model(x[None]), 1)[0])
        top = torch.topk(probs[0], 5).indices
        worst = (probs[0][top] - probs[1][top]).abs().max().item()
        print(f"{path} {img.size[0]}x{img.size[1]} -> {size[0]}x{size[1]}, vertical pass first in Pillow 13:"
              f" {pillow_13_vertical_first(*img.size, *size)}; horizontal first instead: "
              f"{int((pillow != other).sum())} of {pillow.size} bytes differ (by up to "
              f"{int(np.abs(pillow.astype(int) - other).max())}), top-5 probabilities by up to {worst:.2e}")


if __name__ == "__main__":
    {"order": order, "cases": cases, "crest": crest, "shapes": shapes, "effect": effect}[sys.argv[1]](*sys.argv[2:])
