"""`crest train` options that make training diverge or sizes explode, and values no option should take."""

import shutil

from fixtures import REPO, digits, link, train_args
from harness import Case

MODEL = "model.safetensors"


def with_model(ctx):
    """The digits, and a model already at --out that a failed run must leave as it was."""
    digits(ctx)
    shutil.copy(ctx.shared / "linear.safetensors", ctx.path(MODEL))


def three_classes(ctx):
    """The digits plus a third class, 5, holding the 3s once more."""
    with_model(ctx)
    for f in sorted((ctx.shared / "digits" / "3").iterdir()):
        link(f, ctx.path(f"data/5/{f.name}"))


def option_case(id, title, *extra, expect="error", setup=with_model, **kw) -> Case:
    return Case(id, "option", title, train_args("data", *extra), setup, expect, outputs=(MODEL,), **kw)


CASES = [
    # On the whole sample: twenty digits are separable by any weights, so even lr 1e30 can drive their loss to 0.
    Case("O01", "option", "--lr 1e30 with Adam, the whole sample",
         train_args(str(REPO / "data" / "mnist_sample"), "--lr", "1e30", "--bs", "64"), with_model, "error",
         outputs=(MODEL,)),
    Case("O02", "option", "--lr 1e3 with SGD, the whole sample",
         train_args(str(REPO / "data" / "mnist_sample"), "--lr", "1e3", "--opt", "sgd", "--bs", "64"), with_model,
         "error", outputs=(MODEL,)),
    option_case("O03", "--lr nan", "--lr", "nan"),
    option_case("O04", "--lr inf", "--lr", "inf"),
    option_case("O05", "--lr -1", "--lr=-1"),
    option_case("O06", "--lr 0", "--lr", "0"),
    option_case("O07", "--lr 1e-45 (subnormal)", "--lr", "1e-45", expect="either"),
    option_case("O08", "--size 0", "--size", "0"),
    option_case("O09", "--size 4096 (over the range)", "--size", "4096"),
    option_case("O10", "--size 2048 --arch mlp:65536 (a 1 TB layer)", "--size", "2048", "--arch", "mlp:65536"),
    option_case("O11", "--size 2048 --bs 1000000", "--size", "2048", "--bs", "1000000", expect="either"),
    option_case("O12", "--size 1 --arch cnn (pools to nothing)", "--size", "1", "--arch", "cnn", expect="either"),
    option_case("O13", "--size 3 --arch cnn", "--size", "3", "--arch", "cnn", expect="either"),
    option_case("O14", "--bs 0", "--bs", "0"),
    option_case("O15", "--bs -1", "--bs=-1"),
    option_case("O16", "--epochs 0", "--epochs", "0"),
    option_case("O17", "--epochs 4294967296", "--epochs", "4294967296"),
    option_case("O18", "--arch mlp:999999999", "--arch", "mlp:999999999"),
    option_case("O19", "--arch mlp:0", "--arch", "mlp:0"),
    option_case("O20", "--arch mlp:18446744073709551616", "--arch", "mlp:18446744073709551616"),
    option_case("O21", "--arch mlp: (no sizes)", "--arch", "mlp:"),
    option_case("O22", "--arch resnet999", "--arch", "resnet999"),
    option_case("O23", "--momentum nan", "--momentum", "nan", "--opt", "sgd"),
    option_case("O24", "--momentum 1.5", "--momentum", "1.5", "--opt", "sgd"),
    option_case("O25", "--wd -1", "--wd=-1"),
    option_case("O26", "--wd 1e30 with AdamW", "--wd", "1e30", "--opt", "adamw", expect="either"),
    option_case("O27", "--valid-pct 1", "--valid-pct", "1"),
    option_case("O28", "--valid-pct nan", "--valid-pct", "nan"),
    option_case("O29", "--valid-pct -0.1", "--valid-pct=-0.1"),
    option_case("O30", "--stop-at 2", "--stop-at", "2"),
    option_case("O31", "--channels 2", "--channels", "2"),
    option_case("O32", "--seed -1", "--seed=-1"),
    option_case("O33", "--as-posted on three classes", "--as-posted", setup=three_classes),
    option_case("O34", "--loss bce on three classes", "--loss", "bce", setup=three_classes),
    option_case("O35", "--lr 1e30 --as-posted", "--lr", "1e30", "--as-posted", expect="either"),
]
