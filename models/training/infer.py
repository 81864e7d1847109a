"""Minimal inference for evaluation and tests: one-thread ONNX session and the cpe-fcos-v1 decode.

Kept independent of the daemon's runtime on purpose, so that the evaluation checks the format
itself: cells at or over their class threshold that are 3×3 local maxima, boxes from ltrb around
the cell centre ((col + 0.5)·8, (row + 0.5)·8), per-class NMS at IoU 0.5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

STRIDE, NMS_IOU, TILE = 8, 0.5, 640
LOG_RANGE = float(np.log(1e4))


def session(model: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])


def tile_input(high: np.ndarray, low: np.ndarray, size: int = TILE) -> np.ndarray:
    """1×2×size×size attenuation of a scan no larger than one tile, padded with air (0)."""
    x = np.zeros((1, 2, size, size), np.float32)
    for c, t in enumerate((high, low)):
        a = -np.log(np.clip(t.astype(np.float32) / 65535.0, 1e-4, 1.0)) / LOG_RANGE
        x[0, c, :t.shape[0], :t.shape[1]] = a
    return x


def _local_max(scores: np.ndarray) -> np.ndarray:
    k, h, w = scores.shape
    padded = np.pad(scores, ((0, 0), (1, 1), (1, 1)), constant_values=-1.0)
    best = np.max(np.stack([padded[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]), axis=0)
    return scores >= best


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lt = np.maximum(box[:2], boxes[:, :2])
    rb = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def decode(scores: np.ndarray, ltrb: np.ndarray, thresholds: np.ndarray) -> list[tuple[int, float, list[float]]]:
    """(class, score, [x0, y0, x1, y1]) from one image's K×h×w scores and 4×h×w ltrb."""
    k, r, c = np.nonzero((scores >= thresholds[:, None, None]) & _local_max(scores))
    cx, cy = (c + 0.5) * STRIDE, (r + 0.5) * STRIDE
    d = np.maximum(ltrb[:, r, c], 0)
    boxes = np.stack([cx - d[0], cy - d[1], cx + d[2], cy + d[3]], axis=1)
    s = scores[k, r, c]
    out = []
    for cls in np.unique(k):
        idx = np.flatnonzero(k == cls)
        idx = idx[np.argsort(-s[idx], kind="stable")]
        while idx.size:
            i, idx = idx[0], idx[1:]
            out.append((int(cls), float(s[i]), [float(v) for v in boxes[i]]))
            idx = idx[_iou(boxes[i], boxes[idx]) < NMS_IOU]
    return sorted(out, key=lambda d: -d[1])[:100]
