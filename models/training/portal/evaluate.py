"""Scan-level evaluation of the gantry model through the station's runtime, with Wilson 95 % intervals.

Whole scans go through `models.runtime.load_detector(...).detect(scan)` (the real tiled runtime),
so the figures are what a station gets. A truth object counts as found when a detection of its
class overlaps it (IoU ≥ 0.1, or the detection's centre lies inside it). Thresholds are chosen on a
validation block of generator A (known designs) only; the held-out block (novel designs, seeds never
scored before) and generator B (models.evalgen, written separately) are only measured.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.scan import Scan
from models.stats import wilson
from models.training.evaluate import threshold_at
from models.training.portal.generator import CLASSES, PortalSpec, portal_scan

CONTRABAND = ("cigarettes", "drugs", "firearm", "concealment")
FLOOR = 0.05                 # detections kept for AP; alarms use the chosen thresholds
CASE_KG, BRICK_KG, LOAD_KG = 10.0, 1.0, 50.0
VEHICLE_FA, EMPTY_FA = 0.02, 0.01   # false-alarm budgets: clean vehicles, declared-empty containers


def rate(k: int, n: int) -> dict[str, Any]:
    lo, hi = wilson(k, n)
    return {"rate": round(k / n, 4) if n else None, "k": k, "n": n, "ci95": [round(lo, 4), round(hi, 4)]}


def overlaps(det: list[float], box: list[float]) -> bool:
    """IoU ≥ 0.1 or the detection's centre inside the truth box."""
    ix = max(0.0, min(det[2], box[2]) - max(det[0], box[0]))
    iy = max(0.0, min(det[3], box[3]) - max(det[1], box[1]))
    inter = ix * iy
    union = (det[2] - det[0]) * (det[3] - det[1]) + (box[2] - box[0]) * (box[3] - box[1]) - inter
    cx, cy = (det[0] + det[2]) / 2, (det[1] + det[3]) / 2
    return inter / max(union, 1e-9) >= 0.1 or (box[0] <= cx <= box[2] and box[1] <= cy <= box[3])


# ---------------------------------------------------------------- scoring scans
@dataclass(frozen=True)
class Block:
    """A block of scans to score: which generator, seeds, and its options."""

    name: str
    generator: str          # "A" or "B"
    seeds: range
    options: tuple[tuple[str, Any], ...] = ()

    def scan(self, seed: int) -> Scan:
        opts = dict(self.options)
        if self.generator == "A":
            return portal_scan(seed, PortalSpec(**opts))
        from models.evalgen import alt_portal_scan

        return alt_portal_scan(seed, **opts)


_DETECTOR: Any = None


def _score(args: tuple[Block, int, str]) -> dict:
    """One scan through the runtime: its meta (without truth), truth and detections at FLOOR."""
    global _DETECTOR
    block, seed, model = args
    if _DETECTOR is None:
        from models.runtime import load_detector

        det = load_detector(model)
        _DETECTOR = det.with_thresholds({c: FLOOR for c in det.manifest.class_names})
    scan = block.scan(seed)
    dets = [{"label": d.label, "score": round(d.score, 4), "box": [round(v, 1) for v in d.box]}
            for d in _DETECTOR.detect(scan)]
    meta = {k: scan.meta.get(k) for k in ("vehicle", "kind", "declared_empty", "pixel_mm", "energy_kev")}
    return {"seed": seed, "shape": list(scan.shape), **meta, "truth": scan.meta["truth"], "dets": dets}


def score_block(block: Block, model: Path, out: Path, workers: int = 2) -> list[dict]:
    """Score every scan of a block (cached as out/<name>.jsonl for this model)."""
    path = out / f"{block.name}.jsonl"
    sha = hashlib.sha256((model / "model.onnx").read_bytes()).hexdigest()
    if path.exists():
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        if len(rows) == len(block.seeds) and rows and rows[0].get("model") == sha:
            return rows
    single = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    with _env(single), ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        rows = [{**r, "model": sha} for r in pool.map(_score, [(block, s, str(model)) for s in block.seeds],
                                                                chunksize=2)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return rows


def _env(values: dict[str, str]) -> Any:
    from unittest import mock

    return mock.patch.dict(os.environ, values)


# ---------------------------------------------------------------- figures
def best(row: dict, label: str, box: list[float] | None = None) -> float:
    """Best score of a class in a scan, or among detections overlapping a box."""
    scores = [d["score"] for d in row["dets"] if d["label"] == label and (box is None or overlaps(d["box"], box))]
    return max(scores, default=0.0)


def is_clean(row: dict) -> bool:
    return not any(t["label"] in CONTRABAND for t in row["truth"])


def alarms(row: dict, thr: dict[str, float]) -> bool:
    return any(d["score"] >= thr[d["label"]] for d in row["dets"] if d["label"] in CONTRABAND)


def qualifying(row: dict) -> list[dict]:
    """Cigarettes of at least one master case and drugs of at least 1 kg."""
    return [t for t in row["truth"] if (t["label"] == "cigarettes" and t["mass_kg"] >= CASE_KG)
            or (t["label"] == "drugs" and t["mass_kg"] >= BRICK_KG)]


def load_kg(row: dict) -> float:
    return sum(t["mass_kg"] for t in row["truth"] if t["label"] == "load_present")


def choose_thresholds(rows: list[dict]) -> dict[str, float]:
    """Per-class thresholds on validation: the contraband classes share the 2 % budget on clean
    vehicles (0.5 % each), load_present takes 1 % of empty containers declared empty."""
    clean = [r for r in rows if is_clean(r)]
    empty = [r for r in rows if r.get("declared_empty") and load_kg(r) == 0]
    thr = {label: _threshold([best(r, label) for r in clean], VEHICLE_FA / len(CONTRABAND)) for label in CONTRABAND}
    thr["load_present"] = _threshold([best(r, "load_present") for r in empty], EMPTY_FA)
    return thr


def _threshold(negatives: list[float], budget: float) -> float:
    """Just over the score that keeps false alarms within budget on the negatives, in [0.1, 0.99]
    (0.5 when validation has no negatives at all)."""
    if not negatives:
        return 0.5
    return round(min(0.99, max(0.1, threshold_at(np.array(negatives), budget) + 1e-3)), 3)


def scan_figures(rows: list[dict], thr: dict[str, float]) -> dict[str, Any]:
    """Found rates per class and for the vehicle goal, clean-vehicle alarms, declared-empty flags."""
    suspects = [r for r in rows if qualifying(r)]
    found = [r for r in suspects if any(best(r, t["label"], t["box"]) >= thr[t["label"]] for t in qualifying(r))]
    clean = [r for r in rows if is_clean(r)]
    out: dict[str, Any] = {
        "scans": len(rows),
        "vehicles_cig_ge_case_or_drugs_ge_1kg_found": rate(len(found), len(suspects)),
        "clean_vehicles_alarming": rate(sum(alarms(r, thr) for r in clean), len(clean)),
    }
    for label in CONTRABAND:
        objs = [(r, t) for r in rows for t in r["truth"] if t["label"] == label]
        out[f"{label}_objects_found"] = rate(sum(best(r, label, t["box"]) >= thr[label] for r, t in objs), len(objs))
    empty = [r for r in rows if r.get("declared_empty")]
    loaded = [r for r in empty if load_kg(r) >= LOAD_KG]
    unloaded = [r for r in empty if load_kg(r) == 0]
    flagged = lambda r: best(r, "load_present") >= thr["load_present"]  # noqa: E731
    out["declared_empty_ge_50kg_flagged"] = rate(sum(map(flagged, loaded)), len(loaded))
    out["declared_empty_unloaded_flagged"] = rate(sum(map(flagged, unloaded)), len(unloaded))
    return out


def coco_ap(rows: list[dict]) -> dict[str, float]:
    """COCO AP@0.5 per class over whole scans (detections at FLOOR), and their mean over present classes."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt: dict[str, Any] = {"images": [{"id": i, "width": r["shape"][1], "height": r["shape"][0]} for i, r in enumerate(rows)],
                          "categories": [{"id": k, "name": n} for k, n in enumerate(CLASSES)], "annotations": []}
    dets = []
    for i, r in enumerate(rows):
        for t in r["truth"]:
            x0, y0, x1, y1 = t["box"]
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i, "iscrowd": 0,
                                      "category_id": CLASSES.index(t["label"]), "bbox": [x0, y0, x1 - x0, y1 - y0],
                                      "area": (x1 - x0) * (y1 - y0)})
        for d in r["dets"]:
            x0, y0, x1, y1 = d["box"]
            dets.append({"image_id": i, "category_id": CLASSES.index(d["label"]), "bbox": [x0, y0, x1 - x0, y1 - y0],
                         "score": d["score"]})
    with contextlib.redirect_stdout(io.StringIO()):   # pycocotools prints its progress
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(dets) if dets else COCO(), "bbox")
        ev.params.maxDets = [1, 10, 100]
        ev.evaluate()
        ev.accumulate()
    p = ev.eval["precision"][0, :, :, 0, -1]  # IoU 0.5, recall, class
    ap = {n: float(p[:, k][p[:, k] > -1].mean()) for k, n in enumerate(CLASSES) if (p[:, k] > -1).any()}
    ap["mean"] = float(np.mean(list(ap.values()))) if ap else 0.0
    return {k: round(v, 4) for k, v in ap.items()}


def report(blocks: Iterable[tuple[str, list[dict]]], thr: dict[str, float], log: Callable[[str], object] = print
           ) -> dict[str, Any]:
    """Figures of every block, printed as they come."""
    out = {}
    for name, rows in blocks:
        f = {"ap50": coco_ap(rows), **scan_figures(rows, thr)}
        out[name] = f
        log(f"{name}: {json.dumps(f)}")
    return out
