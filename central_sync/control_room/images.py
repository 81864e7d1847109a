"""Scan images for the control room: material pseudo-colour PNG with the detections' boxes."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from central_sync.errors import SyncError
from models.errors import ScanFormatError
from models.material import colourise
from models.scan import load_scan

MAX_SIDE = 1600
BOX_BGR = (0, 0, 255)


class ImageUnreadable(SyncError):
    """The stored scan is not a readable scan file."""


def render_png(data: bytes, boxes: tuple[tuple[float, float, float, float], ...]) -> bytes:
    """PNG of the scan in material colours, boxes numbered 1, 2, ... in detection order."""
    try:
        scan = load_scan(data)
    except ScanFormatError as exc:
        raise ImageUnreadable(str(exc)) from exc
    bgr = np.ascontiguousarray(colourise(scan.high, scan.low)[..., ::-1])
    scale = min(1.0, MAX_SIDE / max(bgr.shape[:2]))
    if scale < 1.0:
        bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    width = max(2, round(max(bgr.shape[:2]) / 400))
    for n, (x0, y0, x1, y1) in enumerate(boxes, 1):
        p0, p1 = (round(x0 * scale), round(y0 * scale)), (round(x1 * scale), round(y1 * scale))
        cv2.rectangle(bgr, p0, p1, BOX_BGR, width)
        cv2.putText(bgr, str(n), (p0[0] + 3, max(14, p0[1] - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, BOX_BGR, 2)
    ok, png = cv2.imencode(".png", bgr)
    if not ok:
        raise ImageUnreadable(f"scan of {bgr.shape[1]}x{bgr.shape[0]} pixels could not be encoded as PNG")
    return png.tobytes()


@lru_cache(maxsize=64)
def cached_png(sha256: str, data: bytes, boxes: tuple) -> bytes:
    """render_png cached by scan hash and boxes (the hub's images never change)."""
    return render_png(data, boxes)
