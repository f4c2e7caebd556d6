"""Writes the PyTorch fixtures that `tests/golden.rs` checks crest against: one `tests/golden/<case>.safetensors`
per case, holding the inputs, the outputs and the gradients.

    /tmp/torchenv/bin/python bench/torch_golden.py

Inputs are drawn in float32 (what crest sees) and the reference is computed from them in float64, so it is more
exact than either float32 implementation; outputs and gradients are stored as float32 rounded from float64.
Gradients are those of `(out * upstream).sum()` for a fixed random `upstream` of the output's shape, so that each
output element weighs differently. The op's scalars (stride, eps, lr …) go in the file's metadata. Each family of
cases seeds the generator itself, so adding a family leaves the others' bytes unchanged.
"""
import json
import os

import safetensors.torch
import torch
import torch.nn.functional as F

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden")


def randn(*shape):
    return torch.randn(shape, dtype=torch.float32)


def leaf(t):
    """The f64 copy the reference differentiates."""
    return t.double().requires_grad_()


def save(case, tensors, **meta):
    tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in tensors.items()}
    data = safetensors.torch.save(tensors, metadata={k: str(v) for k, v in meta.items()})
    # safetensors writes the metadata in hash order; sorted, the same inputs give the same bytes, so regenerating
    # leaves git with nothing to show. The header keeps its length (padding included).
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    assert len(text) <= n, "the sorted header came out longer"
    with open(os.path.join(OUT_DIR, f"{case}.safetensors"), "wb") as f:
        f.write(data[:8] + text.ljust(n) + data[8 + n :])


def with_grads(case, inputs, f, extra=None, **meta):
    """`out = f(**inputs in f64)`; stores the inputs, `upstream`, `out`, `grad_<input>` for each input, and the
    tensors of `extra` (not differentiated; read after the pass, so a tensor that `f` updates is stored updated)."""
    leaves = {k: leaf(v) for k, v in inputs.items()}
    out = f(**leaves)
    upstream = randn(*out.shape)
    (out * upstream.double()).sum().backward()
    grads = {f"grad_{k}": v.grad for k, v in leaves.items()}
    save(case, {**inputs, **(extra or {}), "upstream": upstream, "out": out, **grads}, **meta)


def linear():
    torch.manual_seed(1)
    for case, (m, k, n) in [("linear", (5, 7, 4)), ("linear_wide", (3, 9, 20))]:
        inputs = {"x": randn(m, k), "weight": randn(n, k), "bias": randn(n)}
        with_grads(case, inputs, lambda x, weight, bias: F.linear(x, weight, bias))


def matmul():
    torch.manual_seed(2)
    with_grads("matmul", {"a": randn(4, 6), "b": randn(6, 3)}, lambda a, b: a @ b)


def conv2d():
    torch.manual_seed(3)
    for case, k, stride, padding in [("conv2d_s2p1", 3, 2, 1), ("conv2d_s1p1", 3, 1, 1), ("conv2d_1x1", 1, 1, 0)]:
        inputs = {"x": randn(2, 3, 7, 6), "weight": randn(4, 3, k, k), "bias": randn(4)}
        with_grads(
            case,
            inputs,
            lambda x, weight, bias: F.conv2d(x, weight, bias, stride=stride, padding=padding),
            stride=stride,
            padding=padding,
        )


def distinct(*shape):
    """Values no two alike (a shuffled grid with jitter), so max pooling's choice has no ties to break."""
    n = torch.Size(shape).numel()
    return ((torch.randperm(n).float() + 0.5 * torch.rand(n)) / n * 4 - 2).reshape(shape)


def pools():
    torch.manual_seed(4)
    # 7 rows: the last one falls outside every 2×2 window. The second case has odd width (crest's general path)
    # and overlapping windows, so some inputs receive gradient from two outputs.
    for case, shape, k, stride, padding in [
        ("max_pool2d_k2s2", (2, 3, 7, 8), 2, 2, 0),
        ("max_pool2d_k3s2p1", (2, 2, 7, 5), 3, 2, 1),
    ]:
        with_grads(
            case,
            {"x": distinct(*shape)},
            lambda x: F.max_pool2d(x, k, stride, padding),
            kernel=k,
            stride=stride,
            padding=padding,
        )
    # PyTorch's default count_include_pad=True: a border window divides by k² although it holds fewer inputs.
    with_grads(
        "avg_pool2d_k3s1p1",
        {"x": randn(2, 3, 5, 6)},
        lambda x: F.avg_pool2d(x, 3, 1, 1),
        kernel=3,
        stride=1,
        padding=1,
    )
    with_grads("global_avg_pool2d", {"x": randn(2, 3, 5, 6)}, lambda x: x.mean((2, 3)))


def batch_norm():
    torch.manual_seed(5)
    momentum, eps = 0.1, 1e-5
    for case, shape, training in [
        ("batch_norm2d_train", (4, 3, 5, 5), True),
        ("batch_norm2d_eval", (4, 3, 5, 5), False),
        ("batch_norm1d_train", (8, 6), True),
    ]:
        c = shape[1]
        # Off-centre inputs and non-trivial running statistics, so each term of the update shows.
        inputs = {"x": randn(*shape) * 2 + 0.5, "gamma": 1 + 0.5 * randn(c), "beta": randn(c)}
        running_mean, running_var = 0.3 * randn(c), 0.5 + torch.rand(c)
        rm, rv = running_mean.double(), running_var.double()
        # In evaluation the "after" statistics are the "before" ones: the pass must leave them alone.
        extra = {
            "running_mean": running_mean,
            "running_var": running_var,
            "running_mean_after": rm,
            "running_var_after": rv,
        }
        with_grads(
            case,
            inputs,
            lambda x, gamma, beta: F.batch_norm(x, rm, rv, gamma, beta, training, momentum, eps),
            extra,
            momentum=momentum,
            eps=eps,
            training=str(training).lower(),
        )


def losses():
    torch.manual_seed(6)
    # Row 0 is confidently right, row 1 confidently wrong (a loss near 60), row 2 saturated both ways: f32 rounds
    # their softmax to exactly 0 and 1, so a stable logsumexp is needed for the loss, and their gradients cancel to
    # (nearly) nothing, which the test judges against the whole tensor's scale.
    logits = randn(6, 5)
    logits[0, 2], logits[1, 4], logits[1, 0], logits[2, 1], logits[2, 3] = 30, 30, -30, -30, 30
    targets = torch.tensor([2, 0, 1, 3, 4, 0])
    # Class indices are stored as f32, the form crest takes them in.
    with_grads(
        "cross_entropy",
        {"logits": logits},
        lambda logits: F.cross_entropy(logits, targets),
        extra={"targets": targets},
    )

    binary_logits = randn(7, 1)
    binary_logits[0, 0], binary_logits[1, 0], binary_logits[2, 0], binary_logits[3, 0] = 30, -30, 30, -30
    binary_targets = torch.tensor([[1.0], [0.0], [0.0], [1.0], [1.0], [0.0], [1.0]])
    with_grads(
        "bce_with_logits",
        {"logits": binary_logits},
        lambda logits: F.binary_cross_entropy_with_logits(logits, binary_targets.double()),
        extra={"targets": binary_targets},
    )

    def mnist_loss(predictions):
        t = binary_targets.double()
        p = predictions.sigmoid()
        return torch.where(t == 1, 1 - p, p).mean()

    with_grads("mnist_loss", {"predictions": randn(7, 1) * 2}, mnist_loss, extra={"targets": binary_targets})


def unary():
    torch.manual_seed(7)
    for case, f in [("relu", torch.relu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh)]:
        with_grads(case, {"x": randn(4, 5) * 2}, lambda x: f(x))


def small_cnn():
    """Conv → ReLU → 2×2 max-pool → flatten → Linear → ReLU → Linear → cross-entropy: gradients through a chain."""
    torch.manual_seed(8)
    inputs = {
        "x": randn(3, 2, 6, 6),
        "conv_weight": randn(4, 2, 3, 3) * 0.4,
        "conv_bias": randn(4) * 0.1,
        "hidden_weight": randn(8, 36) * 0.3,
        "hidden_bias": randn(8) * 0.1,
        "out_weight": randn(5, 8) * 0.3,
        "out_bias": randn(5) * 0.1,
    }
    targets = torch.tensor([1, 4, 0])

    def net(x, conv_weight, conv_bias, hidden_weight, hidden_bias, out_weight, out_bias):
        h = F.max_pool2d(F.relu(F.conv2d(x, conv_weight, conv_bias, padding=1)), 2)
        h = F.relu(F.linear(h.flatten(1), hidden_weight, hidden_bias))
        return F.cross_entropy(F.linear(h, out_weight, out_bias), targets)

    with_grads("small_cnn", inputs, net, extra={"targets": targets}, padding=1)


def outward(p, scale):
    """A random gradient of the given scale whose descent step moves each element of `p` away from zero."""
    return -p.sign() * scale * randn(*p.shape).abs()


def optimizers():
    """Two steps of each optimizer over two parameters, from given gradients: `a`, `b` the parameters before,
    `grad{t}_a` the gradient at step t, `after{t}_a` the parameter after step t."""
    torch.manual_seed(9)
    cases = [
        ("adam", torch.optim.Adam, dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)),
        ("adam_l2", torch.optim.Adam, dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)),
        ("adamw", torch.optim.AdamW, dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)),
        ("sgd_momentum", torch.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.0)),
        ("sgd_momentum_wd", torch.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    ]
    for case, opt_class, hyper in cases:
        # `a` is no larger than a step, so an error in the step shows in the parameter after it; its gradients
        # have the opposite sign, so each step moves it away from zero and no element of `after` is a difference
        # that cancels (whose f32 rounding would say nothing about the optimizer). `b`'s gradients are so small that
        # Adam's eps matters (and where it is added); `b` is between 0.1 and 0.2 in size, so weight decay's pull
        # towards zero cannot cancel it either.
        params = {"a": 0.01 * randn(3, 4), "b": 0.1 * (1 + torch.rand(5)) * randn(5).sign()}
        grads = [{"a": outward(params["a"], 1.0), "b": outward(params["b"], 1e-7)} for _ in range(2)]
        live = {k: v.double().requires_grad_() for k, v in params.items()}
        opt = opt_class(live.values(), **hyper)
        stored = dict(params)
        for t, g in enumerate(grads, start=1):
            for k, p in live.items():
                p.grad = g[k].double()
                stored[f"grad{t}_{k}"] = g[k]
            opt.step()
            stored |= {f"after{t}_{k}": p.detach().clone() for k, p in live.items()}
        meta = {k: v for k, v in hyper.items() if k != "betas"}
        if "betas" in hyper:
            meta |= {"beta1": hyper["betas"][0], "beta2": hyper["betas"][1]}
        save(case, stored, steps=len(grads), **meta)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for make in [linear, matmul, conv2d, pools, batch_norm, losses, unary, small_cnn, optimizers]:
        make()
    files = sorted(os.listdir(OUT_DIR))
    total = sum(os.path.getsize(os.path.join(OUT_DIR, f)) for f in files)
    print(f"torch {torch.__version__}: {len(files)} files, {total} bytes in {os.path.normpath(OUT_DIR)}")


if __name__ == "__main__":
    main()
