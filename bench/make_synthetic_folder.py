#!/usr/bin/env python3
"""Writes an image folder whose decoded pixels take at least GB gigabytes at SIZE x SIZE x 4, for bench/cache_rss.sh.

    python3 bench/make_synthetic_folder.py OUT [--gb 4] [--size 140] [--classes 2]

Two (or --classes) class folders of RGBA PNGs of SIZE x SIZE, so `crest train OUT --size SIZE` decodes each to
SIZE*SIZE*4 bytes without resizing. Each class has 64 distinct pictures (a flat class colour, a bright band whose
row says which picture it is, alpha varying by column), encoded once and written under as many names as the size
needs: the folder stays small on disk (a few hundred bytes a file) and is written in seconds, while crest still
decodes every file. Standard library only. Replaces nothing: OUT must not exist yet.
"""
import argparse
import os
import struct
import sys
import zlib

DISTINCT = 64


def png(size, rgba_rows):
    """A PNG of size x size RGBA pixels from `rgba_rows`, one bytes object a row."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\0" + row for row in rgba_rows)
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def picture(size, label, k):
    colour = [(40 + 90 * label) % 256, (200 - 70 * label) % 256, (60 * label + 20) % 256]
    alpha = bytes(128 + (x * 127) // max(size - 1, 1) for x in range(size))
    band = range(k * size // DISTINCT, k * size // DISTINCT + max(size // 16, 1))
    rows = []
    for y in range(size):
        r, g, b = (255, 255, 255) if y in band else colour
        rows.append(b"".join(bytes((r, g, b, a)) for a in alpha))
    return png(size, rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--gb", type=float, default=4.0, help="decoded gigabytes (10^9 bytes) at least")
    ap.add_argument("--size", type=int, default=140)
    ap.add_argument("--classes", type=int, default=2)
    args = ap.parse_args()
    if os.path.exists(args.out):
        sys.exit(f"{args.out} exists already: give a new folder")
    per_image = args.size * args.size * 4
    total = -(-int(args.gb * 1e9) // per_image)
    per_class = -(-total // args.classes)
    for label in range(args.classes):
        folder = os.path.join(args.out, f"class{label}")
        os.makedirs(folder)
        encoded = [picture(args.size, label, k) for k in range(DISTINCT)]
        for i in range(per_class):
            with open(os.path.join(folder, f"{i:07d}.png"), "wb") as f:
                f.write(encoded[i % DISTINCT])
    images = per_class * args.classes
    print(f"{args.out}: {images} images of {args.size}x{args.size}x4, {images * per_image / 1e9:.2f} GB decoded")


if __name__ == "__main__":
    main()
