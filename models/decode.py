"""Vectorised pre- and post-processing: attenuation normalisation, output decoders, NMS.

Boxes travel as `Boxes`: float32 (N, 4) x0, y0, x1, y1; float32 scores; int32 class indices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from models.errors import InferenceError

NMS_IOU = 0.5


def _attenuation_lut() -> np.ndarray:
    """Table uint16 transmission -> attenuation in [0, 1] (0 = air, 1 = opaque)."""
    t = np.arange(65536, dtype=np.float64) / 65535.0
    a = -np.log(np.clip(t, 1e-4, 1.0)) / np.log(1e4)
    return a.astype(np.float32)


ATTENUATION_LUT = _attenuation_lut()


def normalise(plane: np.ndarray) -> np.ndarray:
    """Transmission (uint16) -> attenuation (float32), by table look-up."""
    return ATTENUATION_LUT[plane]


@dataclass(frozen=True)
class Boxes:
    """A set of boxes with scores and class indices."""

    xyxy: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    @staticmethod
    def empty() -> Boxes:
        return Boxes(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, idx: np.ndarray) -> Boxes:
        return Boxes(self.xyxy[idx], self.scores[idx], self.classes[idx])

    def shifted(self, dx: float, dy: float) -> Boxes:
        return Boxes(self.xyxy + np.array([dx, dy, dx, dy], np.float32), self.scores, self.classes)

    @staticmethod
    def concat(parts: Sequence[Boxes]) -> Boxes:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Boxes.empty()
        return Boxes(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.classes for p in parts]),
        )


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box against many."""
    ix0 = np.maximum(box[0], boxes[:, 0])
    iy0 = np.maximum(box[1], boxes[:, 1])
    ix1 = np.minimum(box[2], boxes[:, 2])
    iy1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def nms(boxes: Boxes, iou: float = NMS_IOU) -> Boxes:
    """Greedy per-class NMS (classes separated by a coordinate offset), best score first."""
    if len(boxes) <= 1:
        return boxes
    span = float(np.abs(boxes.xyxy).max()) + 1.0
    shifted = boxes.xyxy + (boxes.classes.astype(np.float32) * 2 * span)[:, None]
    order = np.argsort(-boxes.scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        order = rest[iou_one_to_many(shifted[i], shifted[rest]) < iou]
    return boxes.take(np.asarray(keep, np.int64))


def _is_local_max(scores: np.ndarray, k: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Whether each candidate cell (k, r, c) of scores (K, H, W) is >= all of its 3x3 neighbours.

    Clipping neighbour indices at the border reads a cell of the neighbourhood (or the cell
    itself), which leaves the maximum unchanged; only candidates are visited, not the whole map.
    """
    h, w = scores.shape[1:]
    own = scores[k, r, c]
    keep = np.ones(len(k), bool)
    rows = [np.maximum(r - 1, 0), r, np.minimum(r + 1, h - 1)]
    cols = [np.maximum(c - 1, 0), c, np.minimum(c + 1, w - 1)]
    for i, rr in enumerate(rows):
        for j, cc in enumerate(cols):
            if i != 1 or j != 1:
                keep &= own >= scores[k, rr, cc]
    return keep


def probabilities(scores: np.ndarray, what: str) -> np.ndarray:
    """`scores` once every one lies in [0, 1], else InferenceError: a model giving logits (its sigmoid left out of the
    export) is read against thresholds in (0, 1], and a faint object (logit 0.2, probability 0.55) stays below a 0.5
    threshold: the item is cleared."""
    if scores.size and not (scores.min() >= 0 and scores.max() <= 1):
        raise InferenceError(f"the model's {what} range from {float(scores.min()):g} to {float(scores.max()):g}, but "
                             f"its output format gives probabilities in [0, 1] (logits: a sigmoid left out?)")
    return scores


def decode_fcos(outputs: dict[str, np.ndarray], thresholds: np.ndarray, stride: int | None) -> Boxes:
    """cpe-fcos-v1: `scores` [1,K,h,w] probabilities, `ltrb` [1,4,h,w] distances from cell centres."""
    if stride is None:
        raise InferenceError("cpe-fcos-v1 outputs cannot be decoded without the manifest's stride")
    scores, ltrb = probabilities(_named(outputs, "scores")[0], "scores"), _named(outputs, "ltrb")[0]
    k, r, c = np.nonzero(scores >= thresholds[:, None, None])
    if not k.size:
        return Boxes.empty()
    peak = _is_local_max(scores, k, r, c)
    k, r, c = k[peak], r[peak], c[peak]
    if not k.size:
        return Boxes.empty()
    cx = (c.astype(np.float32) + 0.5) * stride
    cy = (r.astype(np.float32) + 0.5) * stride
    d = np.maximum(ltrb[:, r, c], 0.0)
    xyxy = np.stack([cx - d[0], cy - d[1], cx + d[2], cy + d[3]], axis=1).astype(np.float32)
    return nms(Boxes(xyxy, scores[k, r, c].astype(np.float32), k.astype(np.int32)))


def _from_cxcywh(rows: np.ndarray, cls_scores: np.ndarray, thresholds: np.ndarray) -> Boxes:
    """Every (candidate, class) pair at or above its class threshold, then per-class NMS."""
    i, k = np.nonzero(cls_scores >= thresholds[None, :])
    if not i.size:
        return Boxes.empty()
    cx, cy, w, h = rows[i].T
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    return nms(Boxes(xyxy, cls_scores[i, k].astype(np.float32), k.astype(np.int32)))


def decode_yolov8(outputs: dict[str, np.ndarray], thresholds: np.ndarray, stride: int | None) -> Boxes:
    """yolov8 (Ultralytics export): [1, 4+K, N] rows cx, cy, w, h, K class probabilities ([1, N, 4+K] too)."""
    out = _rows(outputs, 4 + len(thresholds), prefer_axis=1)
    return _from_cxcywh(out[:, :4], probabilities(out[:, 4:], "class scores"), thresholds)


def decode_yolov5(outputs: dict[str, np.ndarray], thresholds: np.ndarray, stride: int | None) -> Boxes:
    """yolov5: [1, N, 5+K]: cx, cy, w, h, objectness, K class probabilities (score = obj * cls)."""
    out = _rows(outputs, 5 + len(thresholds), prefer_axis=2)
    scores = probabilities(out[:, 4:], "objectness and class scores")
    return _from_cxcywh(out[:, :4], scores[:, 1:] * scores[:, :1], thresholds)


def _named(outputs: dict[str, np.ndarray], name: str) -> np.ndarray:
    if name not in outputs:
        raise InferenceError(f"model outputs {sorted(outputs)} lack {name!r} required by cpe-fcos-v1")
    return outputs[name]


def _rows(outputs: dict[str, np.ndarray], width: int, prefer_axis: int) -> np.ndarray:
    """The first output as (N, width) rows; the documented orientation first, else the transposed one."""
    out = next(iter(outputs.values()))
    if out.ndim == 3 and out.shape[0] == 1:
        for axis in (prefer_axis, 3 - prefer_axis):
            if out.shape[axis] == width:
                return out[0].T if axis == 1 else out[0]
    raise InferenceError(f"model output has shape {list(out.shape)}; expected [1, {width}, N] or [1, N, {width}]")


Decoder = Callable[[dict[str, np.ndarray], np.ndarray, int | None], Boxes]
DECODERS: dict[str, Decoder] = {
    "cpe-fcos-v1": decode_fcos,
    "yolov8": decode_yolov8,
    "yolov5": decode_yolov5,
}
