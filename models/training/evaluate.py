"""Honest evaluation of a model package on held-out synthetic scans (novel variants, unseen seeds).

Thresholds are chosen on the validation set (known variants, its own seeds); the held-out set only
measures. Figures: COCO mAP@0.5 and @0.5:0.95 per class, image-level detection rate at 1/2/5 %
false alarms per class, alarm rate on clean bags at the shipped thresholds, latency per tile.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import onnxruntime as ort

from models.training.dataset import as_input, load
from models.training.infer import decode, session
from models.training.threats import CLASSES

FALSE_ALARMS = (0.01, 0.02, 0.05)
VAL_FALSE_ALARM = 0.006       # per-class false-alarm rate on validation negatives that sets a threshold
MIN_THRESHOLD = 0.25


def run_set(sess: ort.InferenceSession, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores (N×K×h×w) and ltrb (N×4×h×w) of every image of a generated set."""
    scores, ltrb = [], []
    for img in images:
        s, b = sess.run(["scores", "ltrb"], {"input": as_input(img[None])})
        scores.append(s[0].astype(np.float16))
        ltrb.append(b[0].astype(np.float16))
    return np.stack(scores), np.stack(ltrb)


def image_scores(scores: np.ndarray) -> np.ndarray:
    """N×K: the best cell of each class in each image (any cell over threshold raises an alarm)."""
    return scores.reshape(*scores.shape[:2], -1).max(axis=2).astype(np.float32)


def presence(truth: list[list[dict]]) -> np.ndarray:
    """N×K booleans: image holds at least one object of the class."""
    out = np.zeros((len(truth), len(CLASSES)), bool)
    for i, boxes in enumerate(truth):
        for b in boxes:
            out[i, CLASSES.index(b["label"])] = True
    return out


def threshold_at(negatives: np.ndarray, fa: float) -> float:
    """Smallest threshold whose false-alarm rate (score > threshold) on negatives is at most fa."""
    ranked = np.sort(negatives)[::-1]
    return float(ranked[min(len(ranked) - 1, int(np.floor(fa * len(ranked))))])


def detection_rates(img: np.ndarray, present: np.ndarray) -> dict[str, dict[str, float]]:
    out = {}
    for k, name in enumerate(CLASSES):
        pos, neg = img[present[:, k], k], img[~present[:, k], k]
        out[name] = {f"dr_at_fa{int(fa * 100)}": float((pos > threshold_at(neg, fa)).mean()) for fa in FALSE_ALARMS}
    return out


def choose_thresholds(img: np.ndarray, present: np.ndarray) -> dict[str, float]:
    """Per-class thresholds from the validation set at VAL_FALSE_ALARM, never below MIN_THRESHOLD."""
    return {name: round(max(MIN_THRESHOLD, threshold_at(img[~present[:, k], k], VAL_FALSE_ALARM) + 1e-3), 3)
            for k, name in enumerate(CLASSES)}


class ClassAp(TypedDict):
    """One class's average precision and its precision-recall curve at IoU 0.5."""

    map50: float
    map50_95: float
    pr50: list[float]


def coco_map(scores: np.ndarray, ltrb: np.ndarray, truth: list[list[dict]]) -> dict[str, ClassAp]:
    """Per-class AP@0.5 and AP@0.5:0.95 with pycocotools, plus the PR curve at IoU 0.5."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    h, w = scores.shape[2] * 8, scores.shape[3] * 8
    gt = {"images": [{"id": i, "width": w, "height": h} for i in range(len(truth))],
          "categories": [{"id": k, "name": n} for k, n in enumerate(CLASSES)], "annotations": []}
    for i, boxes in enumerate(truth):
        for b in boxes:
            x0, y0, x1, y1 = b["box"]
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i, "iscrowd": 0,
                                      "category_id": CLASSES.index(b["label"]), "bbox": [x0, y0, x1 - x0, y1 - y0],
                                      "area": (x1 - x0) * (y1 - y0)})
    dets = []
    floor = np.full(len(CLASSES), 0.02, np.float32)
    for i in range(len(truth)):
        for k, s, (x0, y0, x1, y1) in decode(scores[i].astype(np.float32), ltrb[i].astype(np.float32), floor):
            dets.append({"image_id": i, "category_id": k, "bbox": [x0, y0, x1 - x0, y1 - y0], "score": s})
    coco = COCO()
    coco.dataset = gt
    coco.createIndex()
    ev = COCOeval(coco, coco.loadRes(dets) if dets else COCO(), "bbox")
    ev.evaluate()
    ev.accumulate()
    precision = ev.eval["precision"]  # T×R×K×A×M
    out: dict[str, ClassAp] = {}
    for k, name in enumerate(CLASSES):
        p = precision[:, :, k, 0, -1]
        valid = p > -1
        out[name] = {"map50": float(p[0][valid[0]].mean()) if valid[0].any() else 0.0,
                     "map50_95": float(p[valid].mean()) if valid.any() else 0.0,
                     "pr50": np.where(p[0] > -1, p[0], 0.0).tolist()}
    return out


def latency_ms(model: Path, runs: int = 20) -> float:
    """Median wall time of one 640×640 tile on one thread."""
    sess = session(model)
    x = np.random.default_rng(0).random((1, 2, 640, 640), dtype=np.float32) * 0.5
    sess.run(None, {"input": x})
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, {"input": x})
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def training_history(work: Path) -> list[dict]:
    """Runs that trained the checkpoint in work/ (steps, data precision, time limit); older ones: steps only."""
    path = work / "checkpoint.pt"
    if not path.exists():
        return []
    import torch

    ckpt = torch.load(path, map_location="cpu")
    return ckpt.get("history") or [{"steps": int(ckpt["step"]) + 1}]


def previous_figures(package: Path) -> dict | None:
    """Held-out AP@0.5 of the package's earlier version (before this evaluation overwrites it), if any."""
    import tomllib

    manifest, old = package / "manifest.toml", package / "evaluation.json"
    if not (manifest.exists() and old.exists()):
        return None
    version = tomllib.loads(manifest.read_text())["version"]
    f = json.loads(old.read_text())
    if f.get("sha256") == hashlib.sha256((package / "model.onnx").read_bytes()).hexdigest():
        return f.get("previous")  # same model evaluated again: keep what it was compared with
    return {"version": version, "map50": f["map50"], "classes": {n: f["classes"][n]["map50"] for n in CLASSES}}


def validate(model: Path, work: Path) -> dict[str, float]:
    """AP@0.5 per class and their mean on the validation set (model selection; never the held-out set)."""
    img, truth = load(work / "val")
    scores, ltrb = run_set(session(model), img)
    ap = {n: round(v["map50"], 4) for n, v in coco_map(scores, ltrb, truth).items()}
    ap["mean"] = round(float(np.mean(list(ap.values()))), 4)
    print(json.dumps({"model": str(model), "val_map50": ap}), flush=True)
    return ap


def evaluate_package(package: Path, work: Path, seed: int) -> dict:
    """Evaluate, write manifest.toml, MODEL.md and PR plots into the package; returns the figures."""
    from models.training.card import write_card, write_manifest

    model = package / "model.onnx"
    previous = previous_figures(package)
    sess = session(model)
    val_img, val_truth = load(work / "val")
    val_scores, _ = run_set(sess, val_img)
    thresholds = choose_thresholds(image_scores(val_scores), presence(val_truth))
    ho_img, ho_truth = load(work / "heldout")
    scores, ltrb = run_set(sess, ho_img)
    img, present = image_scores(scores), presence(ho_truth)
    per_class = coco_map(scores, ltrb, ho_truth)
    rates = detection_rates(img, present)
    thr = np.array([thresholds[n] for n in CLASSES], np.float32)
    clean = ~present.any(axis=1)
    figures: dict[str, Any] = {  # the JSON document evaluation.json
        "seed": seed, "thresholds": thresholds, "images": len(ho_truth), "clean_images": int(clean.sum()),
        "alarm_rate_clean": float((img[clean] >= thr).any(axis=1).mean()),
        "ms_per_tile": round(latency_ms(model), 1), "model_bytes": model.stat().st_size,
        "sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "classes": {n: {**{k: v for k, v in per_class[n].items() if k != "pr50"}, **rates[n],
                        "dr_at_threshold": float((img[present[:, i], i] >= thr[i]).mean()),
                        "positives": int(present[:, i].sum())}
                    for i, n in enumerate(CLASSES)},
    }
    figures["training"] = training_history(work)
    figures["train_steps"] = sum(run["steps"] for run in figures["training"])
    figures["map50"] = float(np.mean([figures["classes"][n]["map50"] for n in CLASSES]))
    figures["map50_95"] = float(np.mean([figures["classes"][n]["map50_95"] for n in CLASSES]))
    figures["previous"] = previous
    (package / "evaluation.json").write_text(json.dumps(figures, indent=1))
    write_manifest(package, figures)
    write_card(package, figures, {n: per_class[n]["pr50"] for n in CLASSES})
    print(json.dumps({k: v for k, v in figures.items() if k != "classes"}, indent=1), flush=True)
    return figures
