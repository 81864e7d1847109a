"""Training samples without torch: random crops of a generated set, their augmentations and their
CenterNet targets (heat-map, ltrb, weight, ignore mask). train.Crops streams them to torch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.training.dataset import as_input, classes_of, load
from models.training.threats import CLASSES

STRIDE = 8  # the detector's output stride: one heat-map cell per 8×8 pixels (model.TinyDet)


@dataclass(frozen=True)
class Augment:
    """Crop augmentations. axis_swap and column_flip suit baggage (an item lies either way on a belt),
    not portal scans (road at column 0); zoom (low, high) resamples a window of zoom × crop pixels,
    each axis on its own, to the crop: other pixel and line pitches than the data's."""

    axis_swap: bool = True
    column_flip: bool = True
    zoom: tuple[float, float] = (1.0, 1.0)


def targets(boxes: list[tuple[int, list[float]]], size: int, ignore: Sequence[tuple[int, list[float]]] = (),
            classes: int = len(CLASSES)) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Heat-map (K×h×w), ltrb target (4×h×w), regression weight (h×w) and ignore mask (K×h×w).

    Objects cut by the crop edge (less than half visible) are neither positive nor negative: their
    cells are ignored by the heat-map loss.
    """
    n = size // STRIDE
    ignored = np.zeros((classes, n, n), np.float32)
    for k, (x0, y0, x1, y1) in ignore:
        ignored[k, int(y0 // STRIDE):int(np.ceil(y1 / STRIDE)), int(x0 // STRIDE):int(np.ceil(x1 / STRIDE))] = 1.0
    heat = np.zeros((classes, n, n), np.float32)
    ltrb = np.zeros((4, n, n), np.float32)
    weight = np.zeros((n, n), np.float32)
    centres = (np.arange(n, dtype=np.float32) + 0.5) * STRIDE
    order = sorted(boxes, key=lambda b: -(b[1][2] - b[1][0]) * (b[1][3] - b[1][1]))
    for k, (x0, y0, x1, y1) in order:
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        sx, sy = max(0.8 * STRIDE, 0.16 * (x1 - x0)), max(0.8 * STRIDE, 0.16 * (y1 - y0))
        g = np.exp(-((centres[None, :] - cx) ** 2) / (2 * sx**2) - ((centres[:, None] - cy) ** 2) / (2 * sy**2))
        col, row = min(n - 1, int(cx // STRIDE)), min(n - 1, int(cy // STRIDE))
        g[row, col] = 1.0
        heat[k] = np.maximum(heat[k], g)
        inside = (centres[None, :] > x0) & (centres[None, :] < x1) & (centres[:, None] > y0) & (centres[:, None] < y1)
        inside[row, col] = True
        cells = inside & (g > 0.3)
        ltrb[0][cells] = (centres[None, :] - x0).repeat(n, 0)[cells]
        ltrb[1][cells] = (centres[:, None] - y0).repeat(n, 1)[cells]
        ltrb[2][cells] = (x1 - centres[None, :]).repeat(n, 0)[cells]
        ltrb[3][cells] = (y1 - centres[:, None]).repeat(n, 1)[cells]
        weight[cells] = g[cells]
    return heat, np.clip(ltrb, 0, None), weight, ignored


class Sampler:
    """Random crops (float16 attenuation) with flips and transposes, and their targets.

    Crops are centred near a threat 60 % of the time; the threat is drawn class first, so rare or
    hard classes are seen as often as common ones. The class list is the set's own (dataset.classes_of).
    """

    def __init__(self, path: Path, crop: int, rng: np.random.Generator, aug: Augment = Augment()) -> None:
        self.images, self.truth = load(path)
        self.classes = classes_of(path)
        self.crop, self.rng, self.aug = crop, rng, aug
        instances = [[(i, k) for i, truth in enumerate(self.truth) for k, t in enumerate(truth) if t["label"] == c]
                     for c in self.classes]
        self.by_class = [of_class for of_class in instances if of_class]

    def one(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        rng, c = self.rng, self.crop
        if self.by_class and rng.random() < 0.6:
            instances = self.by_class[int(rng.integers(len(self.by_class)))]
            i, k = instances[int(rng.integers(len(instances)))]
        else:
            i, k = int(rng.integers(len(self.truth))), None
        img, truth = self.images[i], self.truth[i]
        h, w = img.shape[1:]
        wy, wx = (min(n, max(32, int(c * rng.uniform(*self.aug.zoom)))) for n in (h, w))
        if k is not None:
            b = truth[k]["box"]
            x = int(np.clip(rng.uniform(*sorted((b[2] - wx, b[0]))), 0, w - wx))
            y = int(np.clip(rng.uniform(*sorted((b[3] - wy, b[1]))), 0, h - wy))
        else:
            x, y = int(rng.integers(0, w - wx + 1)), int(rng.integers(0, h - wy + 1))
        crop = img[:, y:y + wy, x:x + wx]
        crop = crop if crop.dtype == np.float16 else as_input(crop).astype(np.float16)  # half the bytes to move
        if (wy, wx) != (c, c):
            crop = np.stack([cv2.resize(ch.astype(np.float32), (c, c), interpolation=cv2.INTER_LINEAR)
                             for ch in crop]).astype(np.float16)
        fx, fy = c / wx, c / wy
        boxes: list[tuple[int, list[float]]] = []
        ignore: list[tuple[int, list[float]]] = []
        for t in truth:
            x0, y0, x1, y1 = t["box"]
            cx0, cy0, cx1, cy1 = max(x0 - x, 0), max(y0 - y, 0), min(x1 - x, wx), min(y1 - y, wy)
            if cx1 > cx0 and cy1 > cy0:
                whole = (cx1 - cx0) * (cy1 - cy0) >= 0.5 * (x1 - x0) * (y1 - y0)
                (boxes if whole else ignore).append((self.classes.index(t["label"]),
                                                     [cx0 * fx, cy0 * fy, cx1 * fx, cy1 * fy]))
        if self.aug.column_flip and rng.random() < 0.5:
            crop = crop[:, :, ::-1]
            boxes, ignore = ([(k, [c - b[2], b[1], c - b[0], b[3]]) for k, b in bs] for bs in (boxes, ignore))
        if rng.random() < 0.5:
            crop = crop[:, ::-1, :]
            boxes, ignore = ([(k, [b[0], c - b[3], b[2], c - b[1]]) for k, b in bs] for bs in (boxes, ignore))
        if self.aug.axis_swap and rng.random() < 0.5:  # an item can lie either way on the belt: swap the axes
            crop = crop.transpose(0, 2, 1)
            boxes, ignore = ([(k, [b[1], b[0], b[3], b[2]]) for k, b in bs] for bs in (boxes, ignore))
        return (np.ascontiguousarray(crop), *targets(boxes, c, ignore, len(self.classes)))
