"""The small anchor-free detector: stride-8 output from a small FPN, CenterNet-style heads (cpe-fcos-v1).

The architecture is named by `Arch` (stage widths and depths) so that a checkpoint says what it holds;
`Arch()` is cpe-tiny 1.x, `ARCHS["small"]` the 2.x detector.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from models.training.sampler import STRIDE


def conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def stage(cin: int, cout: int, depth: int) -> nn.Sequential:
    """A stride-2 convolution followed by depth 3×3 convolutions."""
    return nn.Sequential(conv(cin, cout, 2), *(conv(cout, cout) for _ in range(depth)))


@dataclass(frozen=True)
class Arch:
    """Stem widths (two stride-2 convs), then stages at strides 8, 16, 32 (width, depth), FPN/head width."""

    stem: tuple[int, int] = (16, 24)
    widths: tuple[int, int, int] = (48, 96, 128)
    depths: tuple[int, int, int] = (1, 1, 1)
    head: int = 48
    head_depth: int = 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "Arch":
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in (d or {}).items()}
        return cls(**fields)


ARCHS = {"tiny": Arch(), "small": Arch(stem=(16, 32), widths=(64, 128, 192), depths=(2, 2, 2), head=64, head_depth=2)}


class TinyDet(nn.Module):
    """Input 1×C×H×W attenuation; outputs scores (sigmoid) and ltrb distances in pixels at stride 8."""

    def __init__(self, classes: int, channels: int = 2, arch: Arch = Arch()) -> None:
        super().__init__()
        self.arch = arch
        s0, s1 = arch.stem
        w3, w4, w5 = arch.widths
        d3, d4, d5 = arch.depths
        self.stem = nn.Sequential(conv(channels, s0, 2), conv(s0, s1, 2))
        self.c3, self.c4, self.c5 = stage(s1, w3, d3), stage(w3, w4, d4), stage(w4, w5, d5)
        h = arch.head
        self.l3, self.l4, self.l5 = nn.Conv2d(w3, h, 1), nn.Conv2d(w4, h, 1), nn.Conv2d(w5, h, 1)
        self.head = nn.Sequential(*(conv(h, h) for _ in range(arch.head_depth)))
        self.cls = nn.Conv2d(h, classes, 1)
        self.reg = nn.Conv2d(h, 4, 1)
        nn.init.constant_(self.cls.bias, -4.6)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        c3 = self.c3(self.stem(x))
        c4 = self.c4(c3)
        c5 = self.c5(c4)
        p4 = self.l4(c4) + F.interpolate(self.l5(c5), size=c4.shape[-2:], mode="nearest")
        p3 = self.l3(c3) + F.interpolate(p4, size=c3.shape[-2:], mode="nearest")
        return self.head(p3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training form: raw class logits and ltrb in pixels."""
        f = self.features(x)
        return self.cls(f), F.softplus(self.reg(f)) * 16.0


class Exported(nn.Module):
    """The exported form: probabilities after sigmoid, named outputs 'scores' and 'ltrb'."""

    def __init__(self, net: TinyDet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, ltrb = self.net(x)
        return torch.sigmoid(logits), ltrb
