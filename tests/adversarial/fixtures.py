"""The inputs many cases share, made once per suite run: a tiny copy of the shipped digits, two models trained on it
by the crest under test, and the helpers that lay them out in a case's folder."""

import os
import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PER_CLASS = 10
CLASSES = ("3", "7")
# The images the digits folder holds, as `crest train` counts them.
DIGITS = PER_CLASS * len(CLASSES)
IMAGES = REPO / "tests" / "fixtures" / "images"


def make_shared(crest: str, shared: Path):
    """digits/{3,7}/ (PER_CLASS PNGs each, 28x28 grey), digit.png, and linear/cnn models trained on the digits."""
    for c in CLASSES:
        (shared / "digits" / c).mkdir(parents=True)
        for f in sorted((REPO / "data" / "mnist_sample" / c).iterdir())[:PER_CLASS]:
            shutil.copy(f, shared / "digits" / c / f.name)
    shutil.copy(REPO / "data" / "mnist_sample" / "7" / "00003.png", shared / "digit.png")
    for name, arch in [("linear", ["--arch", "linear"]), ("cnn", ["--arch", "cnn", "--loss", "ce"])]:
        out = shared / f"{name}.safetensors"
        args = [crest, "train", "digits", "--epochs", "1", "--bs", "8", *arch, "--out", out.name]
        done = subprocess.run(args, cwd=shared, capture_output=True, text=True, timeout=120)
        if done.returncode != 0 or not out.is_file():
            raise SystemExit(f"cannot train the {name} model the model cases start from: {done.stderr.strip()}")


def link(src: Path, dst: Path):
    """A hard link: a case's own entry for a shared file (a symbolic link would be a case of its own)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.link(src, dst)


def digits(ctx, into: str = "data", classes=CLASSES, per_class: int = PER_CLASS):
    for c in classes:
        for f in sorted((ctx.shared / "digits" / c).iterdir())[:per_class]:
            link(f, ctx.path(f"{into}/{c}/{f.name}"))


def train_args(data: str = "data", *extra) -> list:
    """`crest train data` with extra flags; one tiny epoch saved to model.safetensors unless they say otherwise."""
    defaults = {"--epochs": "1", "--bs": "8", "--out": "model.safetensors"}
    given = {a.split("=")[0] for a in extra}
    return ["train", data, *extra, *[x for flag, value in defaults.items() if flag not in given for x in (flag, value)]]


def image_count(stdout: str):
    """The image count `crest train` reports on its `dataset:` line."""
    m = re.search(r"(\d+) images of", stdout)
    return int(m.group(1)) if m else None


def expect_count(n: int):
    """A check: a successful run loaded exactly n images."""

    def check(ctx):
        run = ctx.runs[-1]
        got = image_count(run.stdout)
        if run.exit == 0 and got != n:
            return [("WRONG", f"loaded {got} images, expected {n}")]
        return []

    return check


def warned_about(name: str):
    """A check: a successful run named the file in a warning."""

    def check(ctx):
        run = ctx.runs[-1]
        warned = any(l.startswith("warning: ") and name in l for l in run.stderr.splitlines())
        return [] if run.exit != 0 or warned else [("WRONG", f"no warning names {name}")]

    return check


def all_of(*checks):
    return lambda ctx: [f for c in checks for f in c(ctx)]


def loads(ctx, model: str) -> bool:
    """Whether `crest predict` reads the model (run for the check, not judged as the case's run)."""
    return ctx.crest_run(["predict", model, ctx.shared / "digit.png"], judged=False).exit == 0
