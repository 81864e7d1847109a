"""Tiling a scan with overlap and merging the tiles' boxes into one set in scan pixels.

Tiles along one axis start every `tile - overlap` pixels; the last tile is aligned with the end
of the scan, and a scan shorter than a tile gets one tile padded with air. An object narrower
than the overlap is seen whole by at least one tile. Boxes that touch an inner seam of their tile
are "cut"; in the merge a cut box is united with the overlapping box of the same class from a
neighbouring tile, so an object across a seam is reported once with its full extent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.decode import NMS_IOU, Boxes

SEAM_MARGIN = 0.02   # fraction of the tile size: a box edge this close to an inner seam is cut
CONTAIN = 0.6        # intersection over the smaller box above which a cut box joins its partner


def axis_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles covering `length` pixels."""
    if length <= tile:
        return [0]
    step = tile - overlap
    return list(range(0, length - tile, step)) + [length - tile]


@dataclass(frozen=True)
class TileBoxes:
    """Boxes found in one tile, in scan pixels, with the tile's rectangle (y0, x0, h, w)."""

    y0: int
    x0: int
    h: int
    w: int
    boxes: Boxes

    def cut_mask(self, scan_h: int, scan_w: int) -> np.ndarray:
        """Boxes touching an inner seam (a tile edge that is not a scan border)."""
        b = self.boxes.xyxy
        my, mx = SEAM_MARGIN * self.h, SEAM_MARGIN * self.w
        cut = np.zeros(len(b), bool)
        if self.x0 > 0:
            cut |= b[:, 0] <= self.x0 + mx
        if self.y0 > 0:
            cut |= b[:, 1] <= self.y0 + my
        if self.x0 + self.w < scan_w:
            cut |= b[:, 2] >= self.x0 + self.w - mx
        if self.y0 + self.h < scan_h:
            cut |= b[:, 3] >= self.y0 + self.h - my
        return cut


def _overlaps(box: np.ndarray, kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IoU and intersection-over-smaller of one box against kept boxes."""
    ix = np.clip(np.minimum(box[2], kept[:, 2]) - np.maximum(box[0], kept[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], kept[:, 3]) - np.maximum(box[1], kept[:, 1]), 0, None)
    inter = ix * iy
    a = (box[2] - box[0]) * (box[3] - box[1])
    ak = (kept[:, 2] - kept[:, 0]) * (kept[:, 3] - kept[:, 1])
    iou = inter / np.maximum(a + ak - inter, 1e-9)
    ios = inter / np.maximum(np.minimum(a, ak), 1e-9)
    return iou, ios


def merge_tiles(tiles: Sequence[TileBoxes], scan_h: int, scan_w: int) -> Boxes:
    """Merge per-tile boxes across tiles (cut boxes united, duplicates suppressed), clip to the scan."""
    parts = [t for t in tiles if len(t.boxes)]
    if not parts:
        return Boxes.empty()
    allb = Boxes.concat([t.boxes for t in parts])
    cut = np.concatenate([t.cut_mask(scan_h, scan_w) for t in parts])
    tile_id = np.concatenate([np.full(len(t.boxes), i) for i, t in enumerate(parts)])
    order = np.argsort(-allb.scores, kind="stable")
    kept: list[int] = []
    xyxy = allb.xyxy.copy()
    for i in order:
        j = _partner(int(i), kept, xyxy, allb.classes, cut, tile_id)
        if j is None:
            kept.append(int(i))
        elif cut[i] or cut[j]:
            xyxy[j, :2] = np.minimum(xyxy[j, :2], xyxy[i, :2])
            xyxy[j, 2:] = np.maximum(xyxy[j, 2:], xyxy[i, 2:])
            cut[j] = cut[j] and cut[i]
    idx = np.asarray(kept, np.int64)
    out = xyxy[idx]
    np.clip(out[:, 0::2], 0, scan_w, out=out[:, 0::2])
    np.clip(out[:, 1::2], 0, scan_h, out=out[:, 1::2])
    return Boxes(out, allb.scores[idx], allb.classes[idx])


def _partner(i: int, kept: list[int], xyxy: np.ndarray, classes: np.ndarray, cut: np.ndarray,
             tile_id: np.ndarray) -> int | None:
    """The kept box that box i duplicates or continues, if any."""
    if not kept:
        return None
    k = np.asarray(kept, np.int64)
    same = classes[k] == classes[i]
    if not same.any():
        return None
    k = k[same]
    iou, ios = _overlaps(xyxy[i], xyxy[k])
    joins = (tile_id[k] != tile_id[i]) & (cut[k] | cut[i]) & (ios >= CONTAIN)
    hit = np.nonzero((iou >= NMS_IOU) | joins)[0]
    return int(k[hit[0]]) if hit.size else None
