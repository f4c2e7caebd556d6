"""`crest predict MODEL IMAGE` on model files that lie: one thing changed in a real model's header, metadata or
weights, or something that is not a model file at all."""

import json
import os
import re
import struct

from fixtures import link
from harness import Case
from inputs import SafeTensors, first, grey_png, layers

MODEL = "model.safetensors"
PREDICT = ["predict", MODEL, "digit.png"]


def model_case(id, title, base, mutate, expect="error", **kw) -> Case:
    """A case on `base` (linear: one logit, bce; cnn: two outputs, ce) with `mutate(st)` applied: it edits the
    SafeTensors in place, or returns the file's bytes."""

    def setup(ctx):
        link(ctx.shared / "digit.png", ctx.path("digit.png"))
        st = SafeTensors(ctx.shared / f"{base}.safetensors")
        raw = mutate(st)
        ctx.path(MODEL).write_bytes(raw if raw is not None else st.to_bytes())

    return Case(id, "model", title, PREDICT, setup, expect, **kw)


def edit_meta(change):
    """A mutation of crest's metadata: change(meta) edits the parsed JSON."""

    def mutate(st):
        meta = st.meta
        change(meta)
        st.meta = meta

    return mutate


def setter(**values):
    return edit_meta(lambda meta: meta.update(values))


def layer_setter(layer_type, **values):
    return edit_meta(lambda meta: first(meta, layer_type).update(values))


def append_layer(layer):
    return edit_meta(lambda meta: layers(meta).append(layer))


def first_tensor(st):
    """(name, entry) of the tensor whose data starts the data section."""
    return min(((k, st.header[k]) for k in st.tensors()), key=lambda kv: kv[1]["data_offsets"][0])


def retype(dtype, factor):
    """The largest tensor declared as `dtype`, its last dimension scaled so its byte size still matches."""

    def mutate(st):
        t = max((st.header[k] for k in st.tensors()), key=lambda t: t["data_offsets"][1] - t["data_offsets"][0])
        t["dtype"] = dtype
        t["shape"][-1] = int(t["shape"][-1] * factor)

    return mutate


def flip_low_bit(st):
    """The lowest mantissa bit of the first weight: the value stays finite and the predictions barely move, so only
    a checksum can tell."""
    st.data[first_tensor(st)[1]["data_offsets"][0]] ^= 1


def nan_weight(st):
    at = first_tensor(st)[1]["data_offsets"][0]
    st.data[at : at + 4] = struct.pack("<f", float("nan"))


def drop_tensor(st):
    del st.header[first_tensor(st)[0]]


def extra_tensor(st):
    st.header["99.weight"] = {"dtype": "F32", "shape": [1], "data_offsets": [len(st.data), len(st.data) + 4]}
    st.data += struct.pack("<f", 0.5)


def bad_offsets(st):
    first_tensor(st)[1]["data_offsets"][1] = len(st.data) + 4096


def duplicate_tensor(st):
    """The first tensor named twice, the second time over other bytes: which is it? (json.dumps can't write a
    duplicate key, so it is spliced in.)"""
    name, entry = first_tensor(st)
    start, end = entry["data_offsets"]
    body = st.header_bytes()
    dup = json.dumps({name: {**entry, "data_offsets": [end, 2 * end - start]}}, separators=(",", ":"))[1:-1].encode()
    return st.to_bytes(body[:-1] + b"," + dup + b"}")


def header_length(n):
    return lambda st: struct.pack("<Q", n) + st.to_bytes()[8:]


def cut(fraction):
    def mutate(st):
        raw = st.to_bytes()
        return raw[: int(len(raw) * fraction)]

    return mutate


def cut_in_header(st):
    raw = st.to_bytes()
    return raw[: 8 + len(st.header_bytes()) // 2]


def invalid_json(st):
    st.header["__metadata__"]["crest"] = st.header["__metadata__"]["crest"].replace('"classes"', "classes", 1)


def no_metadata(st):
    del st.header["__metadata__"]


def tsv_intact(classes: int):
    """A check: predict's output is one line per image of exactly 1 + classes tab-separated fields (the default
    --top 3 covers both), with no other control characters."""

    def check(ctx):
        run = ctx.runs[-1]
        if run.exit != 0:
            return []
        lines = run.stdout.split("\n")
        if lines[-1] == "":
            lines.pop()
        bad = [l for l in lines if len(l.split("\t")) != 1 + classes or re.search(r"[\x00-\x08\x0a-\x1f\x7f]", l)]
        if len(lines) != 1 or bad:
            return [("WRONG", f"tab-separated output broken: {len(lines)} lines for 1 image")]
        return []

    return check


def no_nan(ctx):
    run = ctx.runs[-1]
    if run.exit == 0 and re.search(r"\bnan\b|\binf", run.stdout, re.I):
        return [("WRONG", "NaN/inf probabilities with exit 0")]
    return []


def not_a_model(make):
    """The digit, and at the model's path whatever make(ctx, path) puts there."""

    def setup(ctx):
        link(ctx.shared / "digit.png", ctx.path("digit.png"))
        make(ctx, ctx.path(MODEL))

    return setup


def symlink_to(target):
    return not_a_model(lambda ctx, path: os.symlink(target(ctx), path))


def file_of(content):
    return not_a_model(lambda ctx, path: path.write_bytes(content))


def image_setup(make):
    """The untouched linear model, and an image made by make(path)."""

    def setup(ctx):
        link(ctx.shared / "linear.safetensors", ctx.path(MODEL))
        make(ctx.path("digit.png"))

    return setup


def classes_are(*names):
    return setter(classes=list(names))


CASES = [
    model_case("M00", "control: the untouched linear model", "linear", lambda st: None, expect="ok",
               check=tsv_intact(2)),
    Case("M01", "model", "control: a symlink to a valid model", PREDICT,
         symlink_to(lambda ctx: ctx.shared / "cnn.safetensors"), "ok"),
    model_case("M02", "class list shorter than the outputs (2 outputs, 1 class)", "cnn", classes_are("3")),
    model_case("M03", "empty class list", "linear", classes_are()),
    model_case("M04", 'one digit of "height" changed (28 -> 29)', "linear", setter(height=29)),
    model_case("M05", '"width" 28 -> 280 in a CNN', "cnn", setter(width=280)),
    model_case("M06", '"channels" 1 -> 3', "linear", setter(channels=3)),
    model_case("M07", "conv stride 1 -> 2 in the header", "cnn", layer_setter("Conv2d", stride=2)),
    model_case("M08", "max-pool size 2 -> 3 in the header", "cnn", layer_setter("MaxPool2d", kernel_size=3, stride=3)),
    model_case("M09", "image size 0x0 in the metadata", "linear", setter(height=0, width=0)),
    model_case("M10", "conv stride 0", "cnn", layer_setter("Conv2d", stride=0)),
    model_case("M11", "conv kernel size 0", "cnn", layer_setter("Conv2d", kernel_size=0)),
    model_case("M12", "max-pool kernel 0 and stride 0", "cnn", layer_setter("MaxPool2d", kernel_size=0, stride=0)),
    model_case("M13", "dropout probability 1.5", "linear", append_layer({"type": "Dropout", "p": 1.5})),
    model_case("M14", "dropout probability -0.5", "linear", append_layer({"type": "Dropout", "p": -0.5})),
    model_case("M15", "adaptive avg pool on a flat input", "linear", append_layer({"type": "AdaptiveAvgPool2d"})),
    model_case("M16", "Linear with 2^62 inputs (size overflow)", "linear", layer_setter("Linear", in_features=1 << 62)),
    model_case("M17", "Linear with 2^40 inputs (4 TB, representable)", "linear",
               layer_setter("Linear", in_features=1 << 40)),
    model_case("M18", "3 KB file describing a 500 MB Linear (RSS <= 200 MB)", "linear",
               layer_setter("Linear", out_features=160_000), rss_limit_mb=200),
    model_case("M19", "conv with 2^31 output channels", "cnn", layer_setter("Conv2d", out_channels=1 << 31)),
    model_case("M20", "conv padding 2^40", "cnn", layer_setter("Conv2d", padding=1 << 40)),
    model_case("M21", "Sequential with no layers (784 outputs, 2 classes)", "cnn",
               edit_meta(lambda meta: meta["spec"].update(layers=[]))),
    model_case("M22", "unknown layer type in the spec", "linear", append_layer({"type": "Transformer"})),
    model_case("M23", "scale 1e39 (no NaN probabilities with exit 0)", "linear",
               edit_meta(lambda meta: meta.update(scale=1e39)), expect="either", check=no_nan),
    model_case("M24", "class name with a tab", "linear", classes_are("th\tree", "7"), expect="either",
               check=tsv_intact(2)),
    model_case("M25", "class name with a newline", "linear", classes_are("th\nree", "7"), expect="either",
               check=tsv_intact(2)),
    model_case("M26", "class name with ESC (terminal escape)", "linear", classes_are("\x1b[31mred", "7"),
               expect="either", check=tsv_intact(2)),
    model_case("M27", "duplicate class names", "cnn", classes_are("3", "3")),
    model_case("M28", "an empty class name", "cnn", classes_are("", "7")),
    model_case("M29", "unknown loss in the metadata", "linear", setter(loss="hinge")),
    model_case("M30", "invalid JSON metadata", "linear", invalid_json, forbid=("format unknown",)),
    model_case("M31", "format version 99", "linear", setter(format=99)),
    model_case("M32", "no crest metadata (plain safetensors)", "linear", no_metadata),
    model_case("M33", "truncated to half its size", "linear", cut(0.5)),
    model_case("M34", "truncated inside the JSON header", "linear", cut_in_header),
    model_case("M35", "tensor data offsets past the end", "linear", bad_offsets),
    model_case("M36", "8-byte header length larger than the file", "linear", header_length(1 << 20)),
    model_case("M37", "header length 0", "linear", header_length(0)),
    model_case("M38", "header length 2^64-1", "linear", header_length((1 << 64) - 1)),
    model_case("M39", "duplicate tensor names", "linear", duplicate_tensor),
    model_case("M40", "weights as F16", "linear", retype("F16", 2)),
    model_case("M41", "weights as I64", "linear", retype("I64", 0.5)),
    model_case("M42", "a NaN weight", "linear", nan_weight),
    model_case("M43", "a missing tensor", "cnn", drop_tensor),
    model_case("M44", "an extra tensor", "linear", extra_tensor, expect="either"),
    model_case("M45", "one flipped bit in the weights (needs a checksum)", "linear", flip_low_bit),
    Case("M46", "model", "empty file", PREDICT, file_of(b"")),
    Case("M47", "model", "a PNG as the model", PREDICT, file_of(grey_png(4, 4, 0))),
    Case("M48", "model", "a directory as the model", PREDICT, not_a_model(lambda ctx, path: path.mkdir())),
    Case("M49", "model", "a FIFO as the model (no writer)", PREDICT, not_a_model(lambda ctx, path: os.mkfifo(path))),
    Case("M50", "model", "/dev/zero (endless device) as the model", PREDICT, symlink_to(lambda ctx: "/dev/zero")),
    Case("M51", "model", "model file missing", ["predict", "nothing.safetensors", "digit.png"],
         image_setup(lambda p: p.write_bytes(grey_png(28, 28, 9)))),
    Case("M52", "model", "a dangling symlink as the model", PREDICT, symlink_to(lambda ctx: ctx.dir / "nothing")),
    Case("M53", "predict", "image file missing", ["predict", MODEL, "nothing.png"], image_setup(lambda p: None)),
    Case("M54", "predict", "a FIFO as the image", PREDICT, image_setup(os.mkfifo)),
    Case("M55", "predict", "a truncated PNG as the image", PREDICT,
         image_setup(lambda p: p.write_bytes(grey_png(28, 28, 9)[:60]))),
    Case("M56", "predict", "--top 0", [*PREDICT, "--top", "0"],
         image_setup(lambda p: p.write_bytes(grey_png(28, 28, 9)))),
]
