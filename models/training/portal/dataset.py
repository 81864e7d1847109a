"""Training sets of portal scans stored compactly: float16 attenuation crops, not whole scans.

A 3,000 × 900 scan is 10 MB in float16, most of it road, air and cargo seen many times over; the
detector trains on crops anyway. Each scan gives one crop around each labelled object (at a random
offset that keeps the object whole where it fits) and one or two random background crops; crops are
CROP × CROP (padded with air where the scan is narrower). The set is the usual pair
`name.npy` (N × 2 × CROP × CROP float16, written with an upper bound of N; `count` in the JSON says
how many are filled) and `name.json` (truth boxes in crop pixels, the class list, the seeds).
"""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np

from models.training.dataset import attenuation
from models.training.portal.generator import CLASSES, PortalSpec, portal_scan

CROP = 448
MAX_CROPS = 6   # per scan: up to 4 object crops and 2 background crops


def crops_of(seed: int, spec: PortalSpec, crop: int = CROP) -> list[tuple[np.ndarray, list[dict]]]:
    """The training crops of one scan with their truth boxes in crop pixels."""
    scan = portal_scan(seed, spec)
    rng = np.random.default_rng([seed, 7])
    img = np.stack([attenuation(scan.high), attenuation(scan.low)]).astype(np.float16)
    h, w = img.shape[1:]
    truth = scan.meta["truth"]
    origins = []
    for t in [truth[i] for i in rng.permutation(len(truth))[:MAX_CROPS - 2]]:
        x0, y0, x1, y1 = t["box"]
        origins.append((_start(rng, y0, y1, h, crop), _start(rng, x0, x1, w, crop)))
    for _ in range(1 + int(rng.random() < 0.5)):
        origins.append((int(rng.integers(0, max(h - crop, 0) + 1)), int(rng.integers(0, max(w - crop, 0) + 1))))
    return [(_cut(img, y, x, crop), _boxes(truth, y, x, crop)) for y, x in origins]


def _start(rng: np.random.Generator, lo: float, hi: float, size: int, crop: int) -> int:
    """Crop start on one axis holding [lo, hi) where it fits, else centred on it, within the scan."""
    if hi - lo <= crop - 16:
        first, last = int(hi + 8 - crop), int(lo - 8)
    else:
        first = last = int((lo + hi) / 2 - crop / 2)
    start = int(rng.integers(min(first, last), max(first, last) + 1))
    return int(np.clip(start, 0, max(size - crop, 0)))


def _cut(img: np.ndarray, y: int, x: int, crop: int) -> np.ndarray:
    out = np.zeros((2, crop, crop), np.float16)
    part = img[:, y:y + crop, x:x + crop]
    out[:, :part.shape[1], :part.shape[2]] = part
    return out


def _boxes(truth: list[dict], y: int, x: int, crop: int) -> list[dict]:
    """Truth boxes shifted into the crop; boxes outside it dropped, cut ones kept clipped (the
    sampler ignores those less than half inside)."""
    out = []
    for t in truth:
        x0, y0, x1, y1 = t["box"]
        b = [x0 - x, y0 - y, x1 - x, y1 - y]
        if b[2] > 0 and b[3] > 0 and b[0] < crop and b[1] < crop:
            out.append({"label": t["label"], "box": b, "mass_kg": t.get("mass_kg", 0.0)})
    return out


def _job(args: tuple[int, PortalSpec]) -> list[tuple[np.ndarray, list[dict]]]:
    return crops_of(*args)


def generate(out: Path, seeds: range, spec: PortalSpec, workers: int = 2) -> int:
    """Render the seeds' scans into crops at out.npy/out.json; returns the number of crops."""
    images = np.lib.format.open_memmap(out.with_suffix(".npy"), mode="w+", dtype=np.float16,
                                       shape=(len(seeds) * MAX_CROPS, 2, CROP, CROP))
    truth: list[list[dict]] = []
    single = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    with mock.patch.dict(os.environ, single), \
            ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for crops in pool.map(_job, [(s, spec) for s in seeds], chunksize=4):
            for img, boxes in crops:
                images[len(truth)] = img
                truth.append(boxes)
    images.flush()
    out.with_suffix(".json").write_text(json.dumps({"seeds": [seeds.start, seeds.stop], "novel": spec.novel,
                                                    "classes": list(CLASSES), "count": len(truth), "truth": truth}))
    return len(truth)


def training_spec(novel: bool = False) -> PortalSpec:
    """The training mix: most vehicles suspect, so that every class is seen often."""
    return replace(PortalSpec(), novel=novel, suspect_share=0.75, load_share=0.6, empty_share=0.4)
