"""The tiny anchor-free detector: stride-8 output from a small FPN, CenterNet-style heads (cpe-fcos-v1)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

STRIDE = 8


def conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class TinyDet(nn.Module):
    """Input 1×C×H×W attenuation; outputs scores (sigmoid) and ltrb distances in pixels at stride 8."""

    def __init__(self, classes: int, channels: int = 2, width: int = 48) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv(channels, 16, 2), conv(16, 24, 2))
        self.c3 = nn.Sequential(conv(24, width, 2), conv(width, width))
        self.c4 = nn.Sequential(conv(width, 96, 2), conv(96, 96))
        self.c5 = nn.Sequential(conv(96, 128, 2), conv(128, 128))
        self.l3, self.l4, self.l5 = nn.Conv2d(width, width, 1), nn.Conv2d(96, width, 1), nn.Conv2d(128, width, 1)
        self.head = conv(width, width)
        self.cls = nn.Conv2d(width, classes, 1)
        self.reg = nn.Conv2d(width, 4, 1)
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
