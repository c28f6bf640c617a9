"""Model registry: one configurable ResNet builder and its named configurations.

Like timm, named models are thin registrations over one builder: ``resnet18`` (ImageNet
stem, torchvision-compatible), ``cifar_resnet18`` (3×3 stem, no max-pool, for 32 px
inputs), each narrowed by ``width``. Studies register more configurations (limited
ResNets, BagNets, cascade stages) with ``@register``. Every model takes float images in
[0, 1]; ``Normalize`` as its first layer keeps preprocessing inside the model, so Grad-CAM,
deletion curves and the cascade all feed the same tensors.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Callable

import torch
from torch import nn

Builder = Callable[..., nn.Module]
MODELS: dict[str, Builder] = {}


def register(name: str) -> Callable[[Builder], Builder]:
    def wrap(fn: Builder) -> Builder:
        MODELS[name] = fn
        return fn
    return wrap


def build_model(name: str, num_classes: int, **kwargs) -> nn.Module:
    """Build a registered model; an unknown name or argument is an error naming the options."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    try:
        return MODELS[name](num_classes=num_classes, **kwargs)
    except TypeError as exc:
        raise ValueError(f"bad arguments {kwargs} for model {name!r}: {exc}") from None


def scaled_width(channels: int, width: float) -> int:
    """Channels after a width multiplier: the nearest integer, at least one. Every builder
    scales through this, so a design's proportions survive any multiplier alike."""
    return max(1, int(round(channels * width)))


class Normalize(nn.Module):
    """(x - mean) / std per channel, with the statistics stored in the state dict."""

    def __init__(self, mean: list[float], std: list[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, relu: bool = True, pad: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2 if pad else 0, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    if kernel == 1 and stride > 1:
        # A strided 1×1 conv is a subsampling then a 1×1 conv. Done that way because torch
        # 2.14's CPU backward of a strided 1×1 conv in channels_last corrupts the heap for
        # some small channel counts (2, 6, 8, 12 crash; tests/test_models.py). The named
        # first layer keeps the state-dict keys of the plain layout.
        layers[0].stride = (1, 1)
        return nn.Sequential(OrderedDict([("subsample", nn.MaxPool2d(1, stride)),
                                          *((str(i), m) for i, m in enumerate(layers))]))
    return nn.Sequential(*layers)


class Block(nn.Module):
    """Residual block: basic (two k×k convs) or bottleneck (1×1, k×k, 1×1, ×4), stride in the k×k.

    ``valid`` (BagNet's blocks): the k×k conv is unpadded and the shortcut is cropped at the
    bottom-right to match, so output (i, j) still sees the window starting at (i, j)·stride.
    """

    def __init__(self, cin: int, cout: int, stride: int, bottleneck: bool, kernel: int,
                 first_kernel: int = 3, skip_kernel: int = 1, valid: bool = False):
        super().__init__()
        if bottleneck:
            mid = cout // 4
            self.body = nn.Sequential(conv_bn(cin, mid, 1), conv_bn(mid, mid, kernel, stride, pad=not valid),
                                      conv_bn(mid, cout, 1, relu=False))
        else:
            self.body = nn.Sequential(conv_bn(cin, cout, first_kernel, stride), conv_bn(cout, cout, kernel, relu=False))
        self.skip = (nn.Identity() if stride == 1 and cin == cout
                     else conv_bn(cin, cout, skip_kernel, stride, relu=False))
        nn.init.zeros_(self.body[-1][1].weight)  # zero-init residual: each block starts as identity
        self.relu = nn.ReLU(inplace=True)
        self.valid = valid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, skip = self.body(x), self.skip(x)
        if self.valid:
            skip = skip[..., :out.shape[-2], :out.shape[-1]]
        return self.relu(out + skip)


@dataclass(frozen=True)
class ResNetSpec:
    """A ResNet as data: stage widths and depths, block type, kernels and stem."""

    channels: tuple[int, ...] = (64, 128, 256, 512)
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    bottleneck: bool = False
    stem: str = "imagenet"  # "imagenet": 7×7/2 conv + 3×3/2 max-pool; "cifar": 3×3/1 conv
    stem_channels: int = 64
    kernel: int = 3  # the block's (second, or bottleneck's middle) conv
    first_kernel: int = 3  # a basic block's first conv
    skip_kernel: int = 1  # projection shortcuts
    width: float = 1.0  # multiplies every channel count

    def scaled(self, c: int) -> int:
        return scaled_width(c, self.width)


class ResNet(nn.Module):
    def __init__(self, spec: ResNetSpec, num_classes: int):
        super().__init__()
        if len(spec.channels) != len(spec.blocks):
            raise ValueError(f"channels {spec.channels} and blocks {spec.blocks} must have the same length")
        if spec.stem not in ("imagenet", "cifar"):
            raise ValueError(f"unknown stem {spec.stem!r}; use 'imagenet' or 'cifar'")
        stem_c = spec.scaled(spec.stem_channels)
        if spec.stem == "imagenet":
            self.stem = nn.Sequential(conv_bn(3, stem_c, 7, 2), nn.MaxPool2d(3, 2, 1))
        else:
            self.stem = conv_bn(3, stem_c, 3)
        stages, cin = [], stem_c
        for i, (c, n) in enumerate(zip(spec.channels, spec.blocks)):
            cout = spec.scaled(c) * (4 if spec.bottleneck else 1)
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(Block(cin, cout, stride, spec.bottleneck, spec.kernel, spec.first_kernel, spec.skip_kernel))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


RESNETS = {  # torchvision's depths
    "resnet18": ResNetSpec(blocks=(2, 2, 2, 2)),
    "resnet34": ResNetSpec(blocks=(3, 4, 6, 3)),
    "resnet50": ResNetSpec(blocks=(3, 4, 6, 3), bottleneck=True),
}


def _register_resnet(name: str, base: ResNetSpec) -> None:
    @register(name)
    def build(num_classes: int, width: float = 1.0, stem: str = base.stem, **overrides) -> nn.Module:
        return ResNet(replace(base, width=width, stem=stem, **overrides), num_classes)
    build.__doc__ = f"{name}: {base}"


for _name, _spec in RESNETS.items():
    _register_resnet(_name, _spec)
    _register_resnet(f"cifar_{_name}", replace(_spec, stem="cifar"))

# Ganz & Adya's six ResNets under 5 M parameters (source 004), on the CIFAR ResNet-18
# template (3×3 stem, no max-pool, 1×1 projection shortcuts). Readings of the paper: the
# stem keeps its 3×3 kernel and takes the first stage's width; "first conv of each block"
# is the block's first conv; IV's 7×7 applies to both block convs and its 5×5 to the
# projection shortcuts. Each lands at 4.87–4.97 M parameters (tests/test_models.py).
LIMITED = {
    "I": ResNetSpec(blocks=(1, 2, 3, 1), first_kernel=1, stem="cifar"),
    "IIa": ResNetSpec(channels=(64, 128, 256), blocks=(3, 5, 3), stem="cifar"),
    "IIb": ResNetSpec(channels=(64, 128, 256), blocks=(2, 2, 2), first_kernel=5, stem="cifar"),
    "IIIa": ResNetSpec(channels=(32, 64, 128, 256), blocks=(3, 3, 5, 3), stem="cifar", stem_channels=32),
    "IIIb": ResNetSpec(channels=(32, 64, 128, 256), blocks=(2, 2, 2, 2), first_kernel=5, stem="cifar",
                       stem_channels=32),
    "IV": ResNetSpec(channels=(16, 32, 64, 128), blocks=(2, 3, 4, 2), first_kernel=7, kernel=7, skip_kernel=5,
                     stem="cifar", stem_channels=16),
}
for _name, _spec in LIMITED.items():
    _register_resnet(f"limited_{_name}", _spec)


@register("resnet")
def resnet(num_classes: int, **spec) -> nn.Module:
    """Any ResNet given as ResNetSpec fields (lists are accepted for tuples)."""
    spec = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()}
    return ResNet(ResNetSpec(**spec), num_classes)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class ConvGroup(nn.Sequential):
    """airbench's unit: conv, 2×2 max-pool (spending the conv at the higher resolution), BN,
    GELU, conv, BN, GELU."""

    def __init__(self, cin: int, cout: int, bn_momentum: float, frozen_bn_scale: bool):
        def bn() -> nn.BatchNorm2d:
            norm = nn.BatchNorm2d(cout, momentum=bn_momentum)
            norm.weight.requires_grad_(not frozen_bn_scale)
            return norm
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.MaxPool2d(2), bn(), nn.GELU(),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), bn(), nn.GELU())


class FastNet(nn.Module):
    """An airbench-style network: a 2×2 whitening stem, three ConvGroups, global max-pool.

    Most MACs are spent early at low channel counts and every group halves the resolution,
    which is what makes it fast on a CPU as on a GPU. ``whiten`` is the stem conv that
    ``simplecnn.core.whitening.patch_whitening_`` initialises from data (and freezes).
    """

    def __init__(self, num_classes: int, widths: tuple[int, ...] = (64, 256, 256), width: float = 1.0,
                 whiten_width: int = 24, bn_momentum: float = 0.4, frozen_bn_scale: bool = True,
                 logit_scale: float = 1 / 9):
        super().__init__()
        widths = tuple(scaled_width(w, width) for w in widths)
        self.whiten = nn.Conv2d(3, whiten_width, 2, padding=0, bias=True)
        groups, cin = [], whiten_width
        for w in widths:
            groups.append(ConvGroup(cin, w, bn_momentum, frozen_bn_scale))
            cin = w
        self.body = nn.Sequential(nn.GELU(), *groups)
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes, bias=False))
        self.logit_scale = logit_scale
        for m in self.body.modules():
            if isinstance(m, nn.Conv2d):  # identity-like start: the first input channels pass through
                nn.init.dirac_(m.weight[:m.in_channels])

    @property
    def stages(self) -> nn.Sequential:
        """The ConvGroups, each halving the resolution: the layers Grad-CAM reads, as a
        ResNet's ``stages``."""
        return self.body[1:]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.whiten(x))) * self.logit_scale


@register("fastnet")
def fastnet(num_classes: int, **kwargs) -> nn.Module:
    """FastNet with any of its keyword arguments (``widths`` as a list is accepted)."""
    if "widths" in kwargs:
        kwargs["widths"] = tuple(kwargs["widths"])
    return FastNet(num_classes, **kwargs)


class BagNet(nn.Module):
    """Brendel & Bethge's bag-of-local-features ResNet: a q×q receptive field per output.

    The ResNet-50 layout with unpadded convolutions, where only the first block of the
    first ``log2((q - 1) / 2) - 1`` stages keeps a 3×3 conv (the stem's 3×3 gives 3 px,
    each such stage adds 2 × its input stride): q = 9, 17, 33 use 2, 3, 4 of them. Every
    output location (i, j) sees exactly the window of side q at (i, j) × ``stride``;
    ``patch_logits`` are a linear head per location and the image's logits their mean.
    """

    def __init__(self, num_classes: int, q: int = 33, blocks: tuple[int, ...] = (3, 4, 6, 3), width: float = 1.0,
                 channels: tuple[int, ...] = (64, 128, 256, 512), strides: tuple[int, ...] = (2, 2, 2, 1)):
        super().__init__()
        k = (q - 1).bit_length() - 2  # stages with a 3×3 conv
        if q < 3 or 2 ** (k + 1) + 1 != q or k > len(blocks):
            raise ValueError(f"BagNet patch size q={q} must be 2^k + 1 with 1 <= k <= {len(blocks) + 1} "
                             f"(3, 5, 9, 17 or 33 for four stages)")
        if not len(blocks) == len(channels) == len(strides):
            raise ValueError(f"blocks {blocks}, channels {channels} and strides {strides} must have one entry per stage")
        c = [scaled_width(ch, width) for ch in channels]
        self.q, self.stride = q, math.prod(strides)  # stride of the logit map
        self.stem = nn.Sequential(nn.Conv2d(3, c[0], 1, bias=False), conv_bn(c[0], c[0], 3, pad=False))
        stages, cin = [], c[0]
        for i, (ci, n, s) in enumerate(zip(c, blocks, strides)):
            stage = []
            for j in range(n):
                kernel = 3 if (i < k and j == 0) else 1
                stage.append(Block(cin, ci * 4, s if j == 0 else 1, True, kernel, valid=True))
                cin = ci * 4
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Conv2d(cin, num_classes, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m is not self.head:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def patch_logits(self, x: torch.Tensor) -> torch.Tensor:
        """N × classes × h × w: the logits of every q×q window, at a stride of ``self.stride``."""
        return self.head(self.stages(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.patch_logits(x).mean((2, 3))


@register("bagnet")
def bagnet(num_classes: int, **kwargs) -> nn.Module:
    """BagNet-q (``q``, ``blocks``, ``width``, ``channels``, ``strides``; lists accepted)."""
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    return BagNet(num_classes, **kwargs)
