"""The scan's data for the screen's image tools (static/imagetools.js), and the dense-object finder.

The screen fetches a scan once as raw data and draws every view itself (high and low energy, material
colour, edge enhancement, gamma, absorption slicing), so switching tools costs no round trip and no
tool shifts material colours the way CSS filters did. The payload is

    b"CPSD" | uint32 LE n | n bytes of JSON header (space-padded to a 4-byte boundary)
    | high: H×W uint16 LE | low: H×W uint16 LE | classes: H×W uint8

in display orientation (a portal scan turned side-on as render.side_on turns its PNG); the header's
`dense` boxes and `unlit` boxes (lines the beam never lit, across the whole detector: a portal's cab
avoidance) are in scan pixels (x = column, y = line), as detection boxes are, for the screen to map
the same way; `dense_from` scales the colour views' density shade and the absorption slicing,
`dense_threshold` is the −ln T_high the dense regions start at (models.dense.screen_dense: a MV
portal's is higher than a tube's).

A dense region is where the high-energy beam does not get through (−ln T_high ≥ DENSE_FROM, T ≤ 1 %):
nothing behind it can be seen, so the screen marks it and says so; the officer inspects it by hand.
"""

from __future__ import annotations

import gzip
import json
import struct
from dataclasses import asdict
from typing import Hashable

import numpy as np

from edge.web import render
from models.dense import (DENSE_FROM, MIN_DENSE_MM2, DenseRegion, attenuation, dense_regions,  # noqa: F401
                          pixel_mm, screen_dense)
from models.scan import AIR, Scan

MAGIC = b"CPSD"


def encode(scan: Scan, *, portal: bool = False, key: Hashable | None = None) -> bytes:
    """The payload (see the module docstring) of `scan`, gzip-compressed (sent as Content-Encoding: gzip);
    `key` names the scan as render.view's does, so that its material classes are computed once."""
    classes = render.classes_of(scan, key)
    planes = [scan.high, scan.low, classes]
    if portal:
        planes = [np.rot90(p) for p in planes]
    h, w = planes[0].shape
    dense = screen_dense(scan, portal)
    header = {"version": 1, "width": int(w), "height": int(h), "portal": portal, "air": AIR,
              "dense_from": DENSE_FROM, "dense_threshold": dense.threshold, "pixel_mm": pixel_mm(scan),
              "dense": [asdict(r) for r in dense.regions],
              "unlit": [[0, a, scan.high.shape[1], b] for a, b in dense.unlit]}
    text = json.dumps(header).encode()
    text += b" " * (-(len(MAGIC) + 4 + len(text)) % 4)
    body = b"".join([MAGIC, struct.pack("<I", len(text)), text,
                     np.ascontiguousarray(planes[0], "<u2").tobytes(), np.ascontiguousarray(planes[1], "<u2").tobytes(),
                     np.ascontiguousarray(planes[2], np.uint8).tobytes()])
    return gzip.compress(body, compresslevel=1)


def decode(payload: bytes) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """(header, high, low, classes) of an uncompressed payload: what the screen reads, for tests and tools."""
    if payload[:4] != MAGIC:
        raise ValueError(f"not a scan data payload: starts with {payload[:4]!r}, expected {MAGIC!r}")
    (n,) = struct.unpack_from("<I", payload, 4)
    header = json.loads(payload[8:8 + n])
    h, w = header["height"], header["width"]
    at = 8 + n
    high = np.frombuffer(payload, "<u2", h * w, at).reshape(h, w)
    low = np.frombuffer(payload, "<u2", h * w, at + 2 * h * w).reshape(h, w)
    classes = np.frombuffer(payload, np.uint8, h * w, at + 4 * h * w).reshape(h, w)
    return header, high, low, classes
