"""Server-side rendering of a scan for the screen: view mode, boxes, labels and scores, to PNG.

Material pseudo-colour and classes come from `models.material` (colourise, material_class); a
models package without that module gets the high-energy grey view and a plain ratio classifier
for the organic/inorganic filters, so the screen always shows something true.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Hashable

import cv2
import numpy as np

from models.scan import Scan

PerPixel = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (high, low) -> an image of the scan's size
_colourise: PerPixel | None
_material_class: PerPixel | None
try:  # the material pseudo-colour of the models package
    from models import material as _material

    _colourise, _material_class = _material.colourise, _material.material_class
except ImportError:  # pragma: no cover - a models package without it
    _colourise = _material_class = None

VIEW_MODES: tuple[str, ...] = ("colour", "grey", "low", "organic", "inorganic", "negative")
STRIP, OVERLAP = 384, 8  # lines per strip and lines of context on each side
_POOL = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="render")

# our own coarse material classes for the filters: 0 air, 1 organic, 2 inorganic, 3 metal, 4 opaque
AIR, ORGANIC, INORGANIC, METAL, OPAQUE = range(5)
DETECTION_RGB = (255, 40, 40)
REVIEW_RGB = (40, 220, 60)
TIP_RGB = (255, 200, 0)


@dataclass(frozen=True)
class Box:
    """A box to draw: (x0, y0, x1, y1) in scan pixels and its caption (ASCII; may be empty)."""

    box: tuple[float, float, float, float]
    caption: str
    rgb: tuple[int, int, int] = DETECTION_RGB


def has_material_colour() -> bool:
    return _colourise is not None


def grey_view(high: np.ndarray) -> np.ndarray:
    """A channel's transmission (high energy for the grey view, low for the low view) as grey, RGB uint8 (air is white, opaque is black)."""
    g = (high >> 8).astype(np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2)


def colour_view(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    if _colourise is None:
        return grey_view(high)
    return by_strips(_colourise, high, low)


def by_strips(fn: PerPixel, high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """`fn(high, low)` over strips of lines on several threads; the strips overlap by OVERLAP lines so
    that neighbourhood filters see real neighbours, and the result equals one call on the whole scan."""
    h = high.shape[0]
    if h <= 2 * STRIP:
        return np.ascontiguousarray(fn(high, low))
    starts = range(0, h, STRIP)

    def part(y: int) -> np.ndarray:
        y0, y1 = max(0, y - OVERLAP), min(h, y + STRIP + OVERLAP)
        out = fn(high[y0:y1], low[y0:y1])
        return out[y - y0: y - y0 + min(STRIP, h - y)]

    return np.ascontiguousarray(np.concatenate(list(_POOL.map(part, starts)), axis=0))


def material_classes(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Material class map (AIR, ORGANIC, INORGANIC, METAL, OPAQUE): models.material's when present."""
    return by_strips(_material_class or _ratio_classes, high, low)


def _ratio_classes(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Fallback classes from R = ln T_low / ln T_high (organic ~1.1-1.2, light inorganic 1.3-1.6, metal more)."""
    th = np.clip(high.astype(np.float32) / 65535.0, 1e-6, 1.0)
    tl = np.clip(low.astype(np.float32) / 65535.0, 1e-6, 1.0)
    lh = -np.log(th)
    ratio = -np.log(tl) / np.maximum(lh, 1e-6)
    cls = np.full(high.shape, INORGANIC, np.uint8)
    cls[ratio < 1.27] = ORGANIC
    cls[ratio >= 1.55] = METAL
    cls[lh < 0.03] = AIR
    cls[th < 0.005] = OPAQUE
    return cls


class _Analyses:
    """The colour view and class map of the last few scans shown, so that switching modes is cheap."""

    def __init__(self, size: int = 3) -> None:
        self.size, self.lock = size, threading.Lock()
        self.items: OrderedDict[Hashable, dict[str, np.ndarray]] = OrderedDict()  # key -> view -> image

    def get(self, key: Hashable | None, what: str, make: Callable[[], np.ndarray]) -> np.ndarray:
        if key is None:
            return make()
        with self.lock:
            entry = self.items.setdefault(key, {})
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        if what not in entry:
            entry[what] = make()
        return entry[what]


_ANALYSES = _Analyses()


def _colour(scan: Scan, key: Hashable | None) -> np.ndarray:
    return _ANALYSES.get(key, "colour", lambda: colour_view(scan.high, scan.low))


def classes_of(scan: Scan, key: Hashable | None = None) -> np.ndarray:
    """The scan's material class map, kept with its views under `key` (see `view`)."""
    return _ANALYSES.get(key, "classes", lambda: material_classes(scan.high, scan.low))


_classes = classes_of


def _keep_only(img: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Fade everything outside `keep` towards white so the kept material stands out."""
    out = img.copy()
    faded = 255 - ((255 - img[~keep].astype(np.uint16)) // 5)
    out[~keep] = faded.astype(np.uint8)
    return out


def _organic(scan: Scan, key: Hashable | None) -> np.ndarray:
    return _keep_only(_colour(scan, key), _classes(scan, key) == ORGANIC)


def _inorganic(scan: Scan, key: Hashable | None) -> np.ndarray:
    cls = _classes(scan, key)
    return _keep_only(_colour(scan, key), (cls == INORGANIC) | (cls == METAL) | (cls == OPAQUE))


_MODES: dict[str, Callable[[Scan, Hashable | None], np.ndarray]] = {
    "colour": _colour,
    "grey": lambda s, _: grey_view(s.high),
    "low": lambda s, _: grey_view(s.low),
    "organic": _organic,
    "inorganic": _inorganic,
    "negative": lambda s, _: 255 - grey_view(s.high),
}


def view(scan: Scan, mode: str, key: Hashable | None = None) -> np.ndarray:
    """The RGB image of `scan` in view `mode` (one of VIEW_MODES); `key` names the scan (as displayed)
    so that its colour and class analyses are reused across modes."""
    return _MODES[mode](scan, key)


def draw_boxes(img: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """Rectangles with captions on a filled tab, sized to the image."""
    out = np.ascontiguousarray(img.copy())
    h, w = out.shape[:2]
    thick = max(2, round(max(h, w) / 300))
    scale = max(0.5, max(h, w) / 900)
    for b in boxes:
        x0, y0, x1, y1 = (int(round(v)) for v in b.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), b.rgb, thick)
        if b.caption:
            (tw, th), base = cv2.getTextSize(b.caption, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
            ty = y0 - 4 if y0 - th - base - 4 >= 0 else min(h - 1, y1 + th + base + 4)
            cv2.rectangle(out, (x0, ty - th - base), (x0 + tw + 4, ty + base // 2), b.rgb, -1)
            cv2.putText(out, b.caption, (x0 + 2, ty - base // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0),
                        max(1, thick - 1), cv2.LINE_AA)
    return out


def to_png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ValueError(f"PNG encoding failed for an image of shape {img.shape}")
    return buf.tobytes()


def side_on(img: np.ndarray, boxes: list[Box]) -> tuple[np.ndarray, list[Box]]:
    """A portal scan as an officer reads it: the vehicle from the side, front at the left, road at the bottom.

    Portal scans have scan lines as rows (front first) and detector pixels as columns (0 at the road);
    the image turns a quarter counter-clockwise and each box (x = column, y = line) with it, so that
    captions stay upright. The screen maps boxes drawn on it back the same way (app.js toImage).
    """
    n = img.shape[1]
    turned = [Box((b.box[1], n - b.box[2], b.box[3], n - b.box[0]), b.caption, b.rgb) for b in boxes]
    return np.ascontiguousarray(np.rot90(img)), turned


def render_png(scan: Scan, mode: str, boxes: list[Box], key: Hashable | None = None, *,
               portal: bool = False) -> bytes:
    """The PNG of a scan in view `mode` with its boxes; `portal` draws it side-on (see side_on)."""
    img = view(scan, mode, key)
    if portal:
        img, boxes = side_on(img, boxes)
    return to_png(draw_boxes(img, boxes))
