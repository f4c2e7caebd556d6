"""Writes the fixtures that `tests/resnet.rs` checks crest's ResNets against: one
`tests/fixtures/resnet/<case>.safetensors` per case, built by torchvision's own classes and named as torchvision
names them.

    /tmp/torchenv/bin/python bench/torch_resnet_fixture.py

Each case is a torchvision `ResNet` of BasicBlocks or Bottlenecks with torchvision's block counts for its depth,
made narrow (`width` channels after the stem instead of 64: stage i has width·2^i planes) so the file stays small.
Its BatchNorms get non-trivial γ, β and running statistics. A file holds:

- the model's `state_dict` under torchvision's names, `num_batches_tracked` included (int64, as torchvision saves
  it): the file is a torchvision state_dict as it is, plus the tensors below;
- `input` (real digits from data/mnist_sample, resized and repeated over the channels) and `labels`;
- `eval_logits`: the model's output in eval mode;
- `loss`: cross-entropy of the output in the case's `mode` (metadata: `train` or `eval`); `grad.<name>` for
  every parameter;
- in train mode, `after.<name>` for every running statistic, as the pass left it;
- metadata `torch_f32_error`: how far PyTorch's own float32 run of the same pass is from the reference (the worst
  relative error over the loss, the gradients and the statistics, by the rule of tests/common), the bar crest's
  float32 is held to: no float32 implementation gets closer than its rounding allows.

The ResNet-50 case's gradients are taken in eval mode: a narrow ResNet-50's train-mode gradients are
ill-conditioned (sixteen blocks of BatchNorms over 2 to 8 channels; scaling its weights by 1 + 1e-6·N(0, 1) moves
some float64 gradients by more than 100%), so no float32 run can be held to them. The 18 and 34 cases, whose
train-mode gradients move by ~1e-3 under the same perturbation, check the train-mode backward pass of the same ops.

The reference runs in float64 from the float32 values stored (what crest sees); results are stored as float32.
"""
import copy
import glob
import os

import safetensors.torch
import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

torch.set_num_threads(2)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "resnet")
BLOCKS = {18: (BasicBlock, [2, 2, 2, 2]), 34: (BasicBlock, [3, 4, 6, 3]), 50: (Bottleneck, [3, 4, 6, 3])}


def narrow_resnet(depth, in_channels, classes, width):
    """torchvision's resnet{depth} with `width` channels after the stem, built with torchvision's own
    `_make_layer` so that every layer and name is torchvision's."""
    block, layers = BLOCKS[depth]
    model = ResNet(block, layers, num_classes=classes)
    model.inplanes = width
    model.conv1 = torch.nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
    model.bn1 = torch.nn.BatchNorm2d(width)
    for i, count in enumerate(layers):
        setattr(model, f"layer{i + 1}", model._make_layer(block, width << i, count, stride=1 if i == 0 else 2))
    model.fc = torch.nn.Linear((width << 3) * block.expansion, classes)
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model


def perturb_batchnorms(model):
    """γ, β and running statistics away from their initial 1, 0, 0, 1, so that eval mode tests them."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0.0, 0.2)
            m.running_mean.normal_(0.0, 0.3)
            m.running_var.uniform_(0.5, 2.0)


def digits(count, channels, height, width):
    """Real images: mnist_sample digits, alternately 3s and 7s, resized, scaled to [0, 1], repeated over the
    channels (each channel a little dimmer, so the channels differ)."""
    threes = sorted(glob.glob(os.path.join(ROOT, "data", "mnist_sample", "3", "*.png")))
    sevens = sorted(glob.glob(os.path.join(ROOT, "data", "mnist_sample", "7", "*.png")))
    files = [(threes if i % 2 == 0 else sevens)[i] for i in range(count)]
    grey = torch.stack([torch.from_numpy(np.array(Image.open(f).convert("L"))) for f in files])
    grey = grey.reshape(count, 1, 28, 28).to(torch.float32) / 255.0
    grey = F.interpolate(grey, size=(height, width), mode="bilinear", align_corners=False)
    return torch.cat([grey * (1.0 - 0.2 * c) for c in range(channels)], dim=1)


def relative_error(got, want):
    """tests/common's rule: the worst |got − want| / max(|want|, 1e-2 · max|want|)."""
    got, want = got.double(), want.double()
    floor = 1e-2 * want.abs().max()
    if floor == 0:
        return 0.0 if torch.equal(got, want) else float("inf")
    return ((got - want).abs() / want.abs().clamp(min=floor)).max().item()


def loss_pass(model, x, labels, dtype, mode):
    """A pass of a copy of `model` in `dtype` and `mode`: loss, gradients and (in train mode) the running
    statistics after it."""
    model = copy.deepcopy(model).to(dtype)
    model.train(mode == "train")
    loss = F.cross_entropy(model(x.to(dtype)), labels)
    loss.backward()
    results = {"loss": loss.reshape(1)}
    results.update({f"grad.{n}": p.grad for n, p in model.named_parameters()})
    if mode == "train":
        stats = model.named_buffers()
        results.update({f"after.{n}": b for n, b in stats if not n.endswith("num_batches_tracked")})
    return {k: v.detach().to(torch.float32) for k, v in results.items()}


def save(case, tensors, **meta):
    data = safetensors.torch.save({k: v.detach().contiguous() for k, v in tensors.items()}, metadata=meta)
    with open(os.path.join(OUT_DIR, f"{case}.safetensors"), "wb") as f:
        f.write(data)


def case(name, depth, in_channels, classes, width, images, height, image_width, seed, mode="train"):
    torch.manual_seed(seed)
    model = narrow_resnet(depth, in_channels, classes, width)
    perturb_batchnorms(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = digits(images, in_channels, height, image_width)
    labels = torch.arange(images) % classes
    model.eval()
    with torch.no_grad():
        eval_logits = copy.deepcopy(model).double()(x.double()).to(torch.float32)
    reference = loss_pass(model, x, labels, torch.float64, mode)
    single = loss_pass(model, x, labels, torch.float32, mode)
    torch_f32_error = max(relative_error(single[k], reference[k]) for k in reference)
    tensors = {**state, "input": x, "labels": labels.to(torch.float32), "eval_logits": eval_logits, **reference}
    save(name, tensors, mode=mode, torch_f32_error=f"{torch_f32_error:.3e}")
    print(f"{name}: PyTorch's float32 {mode}-mode pass is off by {torch_f32_error:.2e}")


if __name__ == "__main__":
    os.makedirs(OUT_DIR, exist_ok=True)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}")
    case("resnet18_w4", depth=18, in_channels=3, classes=5, width=4, images=4, height=72, image_width=64, seed=1)
    case("resnet34_w2", depth=34, in_channels=4, classes=3, width=2, images=4, height=64, image_width=64, seed=2)
    case("resnet50_w2", depth=50, in_channels=1, classes=2, width=2, images=4, height=64, image_width=64, seed=3, mode="eval")
