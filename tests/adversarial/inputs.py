"""Hostile inputs, made from scratch with the standard library: PNG and IDX writers, cut and damaged copies of real
files, and safetensors model files taken apart and put back together with one thing changed."""

import json
import struct
import zlib
from pathlib import Path


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png(width: int, height: int, rows: bytes, colour_type: int = 0) -> bytes:
    """An 8-bit PNG of `rows` (already filtered: each row starts with its filter byte)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(rows, 9)) + png_chunk(
        b"IEND", b""
    )


def grey_png(width: int, height: int, value: int) -> bytes:
    return png(width, height, (b"\0" + bytes([value]) * width) * height)


def bomb_png(width: int, height: int, colour_type: int = 6, bit_depth: int = 8) -> bytes:
    """A PNG of all-zero pixels: under a KB on disk per MB it decodes to. Compressed row by row, so making it never
    holds the decoded image."""
    channels = {0: 1, 2: 3, 6: 4}[colour_type]
    row = b"\0" * (1 + width * channels * bit_depth // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def bad_crc(png_bytes: bytes) -> bytes:
    """The same PNG with the IDAT chunk's CRC wrong."""
    at = png_bytes.index(b"IDAT") - 4
    length = struct.unpack(">I", png_bytes[at : at + 4])[0]
    crc_at = at + 8 + length
    return png_bytes[:crc_at] + bytes(b ^ 0xFF for b in png_bytes[crc_at : crc_at + 4]) + png_bytes[crc_at + 4 :]


def jpeg_scan_start(jpeg: bytes) -> int:
    """Offset of the first byte of entropy-coded data: everything before it is the header."""
    sos = jpeg.index(b"\xff\xda")
    return sos + 2 + struct.unpack(">H", jpeg[sos + 2 : sos + 4])[0]


def idx_images(count: int, rows: int, cols: int, pixels: bytes) -> bytes:
    return struct.pack(">IIII", 0x803, count, rows, cols) + pixels


def idx_labels(labels: list) -> bytes:
    return struct.pack(">II", 0x801, len(labels)) + bytes(labels)


class SafeTensors:
    """A safetensors file as its JSON header and its data bytes, with crest's metadata (a JSON string under
    `__metadata__.crest`) parsed out for editing."""

    def __init__(self, path: Path):
        raw = path.read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        self.header = json.loads(raw[8 : 8 + n])
        self.data = bytearray(raw[8 + n :])

    @property
    def meta(self) -> dict:
        return json.loads(self.header["__metadata__"]["crest"])

    @meta.setter
    def meta(self, value: dict):
        self.header["__metadata__"]["crest"] = json.dumps(value)

    def tensors(self) -> list:
        return [k for k in self.header if k != "__metadata__"]

    def header_bytes(self) -> bytes:
        return json.dumps(self.header, separators=(",", ":")).encode()

    def to_bytes(self, header: bytes = None) -> bytes:
        h = self.header_bytes() if header is None else header
        return struct.pack("<Q", len(h)) + h + bytes(self.data)

    def write(self, path: Path, header: bytes = None):
        path.write_bytes(self.to_bytes(header))


def layers(meta: dict) -> list:
    """The top-level Sequential's layers of a crest model's metadata."""
    return meta["spec"]["layers"]


def first(meta: dict, layer_type: str) -> dict:
    return next(layer for layer in layers(meta) if layer["type"] == layer_type)
