"""Score a baggage model package on scans it was never tuned on, at its shipped operating point.

    nice -n 19 .venv/bin/python -m models.evalbag.evaluate --count 300 --out /tmp/evalbag.json

Two sets, each `--count` scans rendered on the fly:

- **fresh**: the training simulator's fresh held-out block (`models.training.dataset.fresh_heldout`,
  seeds 1,700,000.. for recipe seed 1; novel object variants as in the card's held-out set). No
  version before this evaluation was scored on it, and training and validation code refuse it.
- **evalbag**: this package's separately written generator (seeds from `--bag-seed`).

Thresholds are the manifest's (chosen on the validation set; never on these scans). Per class:
box recall (a truth box is found by a detection of its class with IoU ≥ 0.3), what the model says
instead for missed boxes, image-level detection and false-alarm rates, AP@0.5 (all-point,
detections down to score 0.02); per set: clean-bag alarm rate, alarm rate of clean bags holding
each kind of goods (evalbag), and the median score of true and false firearm boxes. Every rate
carries its 95 % Wilson interval (models/stats.py). This module scores; it is not the generator,
so it may import the training simulator (the generator may not).
"""

from __future__ import annotations

import argparse
import json
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from models.evalbag.bag import bag_scan
from models.scan import Scan
from models.stats import wilson
from models.training.infer import decode, session, tile_input

IOU_FOUND = 0.3
AP_FLOOR = 0.02
Detection = tuple[str, float, list[float]]


def iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def rate(k: int, n: int) -> dict[str, Any]:
    lo, hi = wilson(k, n)
    return {"k": k, "n": n, "rate": round(k / n, 4) if n else None, "ci95": [round(lo, 4), round(hi, 4)]}


class Scorer:
    """Runs one package on scans and keeps (truth, detections at a low floor) per scan."""

    def __init__(self, package: Path, model: Path | None = None) -> None:
        """model: another ONNX file to score with the package's classes and thresholds (e.g. an int8 copy)."""
        manifest = tomllib.loads((package / "manifest.toml").read_text())
        self.names = [c["name"] for c in manifest["classes"]]
        self.thresholds = {c["name"]: float(c["threshold"]) for c in manifest["classes"]}
        self.sess = session(model or package / "model.onnx")
        self.records: list[tuple[dict, list[Detection]]] = []

    def add(self, scan: Scan) -> None:
        scores, ltrb = self.sess.run(["scores", "ltrb"], {"input": tile_input(scan.high, scan.low)})
        floor = np.full(len(self.names), AP_FLOOR, np.float32)
        dets = [(self.names[k], s, box) for k, s, box in decode(scores[0], ltrb[0], floor)]
        self.records.append((scan.meta, dets))

    def shipped(self, dets: list[Detection]) -> list[Detection]:
        """Detections at the shipped thresholds (greedy NMS keeps a box regardless of lower-scored ones)."""
        return [d for d in dets if d[1] >= self.thresholds[d[0]]]

    def figures(self) -> dict[str, Any]:
        per_class: dict[str, Any] = {}
        clean_alarms = clean = 0
        raised: Counter[str] = Counter()
        goods_n: Counter[str] = Counter()
        goods_k: Counter[str] = Counter()
        fire_true: list[float] = []
        fire_false: list[float] = []
        found = {n: [0, 0] for n in self.names}
        instead: dict[str, Counter[str]] = {n: Counter() for n in self.names}
        img = {n: [0, 0, 0, 0] for n in self.names}   # present & raised, present, absent & raised, absent
        for meta, all_dets in self.records:
            truth = meta["truth"]
            dets = self.shipped(all_dets)
            present = {t["label"] for t in truth}
            for t in truth:
                found[t["label"]][1] += 1
                hit = any(d[0] == t["label"] and iou(d[2], t["box"]) >= IOU_FOUND for d in dets)
                found[t["label"]][0] += hit
                if not hit:
                    others = [(iou(d[2], t["box"]), d[0]) for d in dets if d[0] != t["label"]]
                    best = max(others, default=(0.0, "nothing"))
                    instead[t["label"]][best[1] if best[0] >= IOU_FOUND else "nothing"] += 1
            for n in self.names:
                raised_n = any(d[0] == n for d in dets)
                slot = 0 if n in present else 2
                img[n][slot] += raised_n
                img[n][slot + 1] += 1
            for d in dets:
                if d[0] == "firearm":
                    true = any(t["label"] == "firearm" and iou(d[2], t["box"]) >= IOU_FOUND for t in truth)
                    (fire_true if true else fire_false).append(d[1])
            if not truth:
                clean += 1
                clean_alarms += bool(dets)
                raised.update({d[0] for d in dets})
                for g in set(meta.get("goods", [])):
                    goods_n[g] += 1
                    goods_k[g] += bool(dets)
        ap = self.average_precision()
        for n in self.names:
            per_class[n] = {"boxes": rate(*found[n]), "image_detection": rate(img[n][0], img[n][1]),
                            "image_false_alarm": rate(img[n][2], img[n][3]), "ap50": round(ap[n], 4),
                            "instead": dict(instead[n].most_common())}
        return {"scans": len(self.records), "thresholds": self.thresholds, "classes": per_class,
                "map50": round(float(np.mean(list(ap.values()))), 4),
                "clean_alarm": rate(clean_alarms, clean), "clean_raised": dict(raised.most_common()),
                "clean_goods_alarm": {g: rate(goods_k[g], goods_n[g]) for g in sorted(goods_n)},
                "firearm_score_median": {"true": _median(fire_true), "false": _median(fire_false)}}

    def average_precision(self) -> dict[str, float]:
        """All-point interpolated AP at IoU 0.5 per class (each truth box matched once, best score first)."""
        out = {}
        for n in self.names:
            total = sum(t["label"] == n for meta, _ in self.records for t in meta["truth"])
            scored = []
            for i, (meta, dets) in enumerate(self.records):
                for d in dets:
                    if d[0] == n:
                        scored.append((d[1], i, d[2]))
            scored.sort(key=lambda x: -x[0])
            used: set[tuple[int, int]] = set()
            tp = []
            for _, i, box in scored:
                boxes = [(j, iou(box, t["box"])) for j, t in enumerate(self.records[i][0]["truth"]) if t["label"] == n]
                best = max(((v, j) for j, v in boxes if (i, j) not in used), default=(0.0, -1))
                ok = best[0] >= 0.5
                if ok:
                    used.add((i, best[1]))
                tp.append(ok)
            if total == 0:
                out[n] = 0.0
                continue
            tps = np.cumsum(tp)
            recall = tps / total
            precision = tps / np.arange(1, len(tp) + 1)
            mrec = np.concatenate([[0.0], recall, [1.0]])
            mpre = np.concatenate([[0.0], precision, [0.0]])
            mpre = np.maximum.accumulate(mpre[::-1])[::-1]
            steps = np.flatnonzero(mrec[1:] != mrec[:-1])
            out[n] = float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))
        return out


def _median(v: list[float]) -> float | None:
    return round(float(np.median(v)), 3) if v else None


def fresh_scans(seed: int, count: int, start: int = 0) -> Iterable[Scan]:
    """Scans of the training simulator's fresh held-out block (novel variants), in seed order."""
    from models.training.dataset import fresh_heldout
    from models.training.scene import SceneSpec, synth_scan

    block = fresh_heldout(seed)
    if start < 0 or start + count > len(block):
        raise ValueError(f"--count {count} from {start} exceeds the fresh block of {len(block)} seeds")
    for s in block[start:start + count]:
        yield synth_scan(s, SceneSpec(novel=True))


def bag_scans(seed: int, count: int) -> Iterable[Scan]:
    for s in range(seed, seed + count):
        yield bag_scan(s)


def score(package: Path, scans: Iterable[Scan], progress: Callable[[int], object] = lambda i: None,
          model: Path | None = None) -> dict[str, Any]:
    scorer = Scorer(package, model)
    for i, scan in enumerate(scans):
        scorer.add(scan)
        progress(i)
    return scorer.figures()


def table(name: str, f: dict[str, Any]) -> str:
    """The figures of one set as a Markdown table (what MODEL.md shows)."""
    def r(x: dict[str, Any]) -> str:
        return f"{x['k']}/{x['n']} ({x['ci95'][0]:.2f}–{x['ci95'][1]:.2f})" if x["n"] else "–"
    rows = [f"{name}: {f['scans']} scans, mAP@0.5 {f['map50']:.3f}; clean-bag alarms {r(f['clean_alarm'])}",
            "", "| class | boxes found (IoU ≥ 0.3) | missed boxes: said instead | images detected | "
            "images without it that raise it | AP@0.5 |", "|---|---|---|---|---|---|"]
    for n, c in f["classes"].items():
        said = ", ".join(f"{k} {v}" for k, v in c["instead"].items()) or "–"
        rows.append(f"| {n} | {r(c['boxes'])} | {said} | {r(c['image_detection'])} | "
                    f"{r(c['image_false_alarm'])} | {c['ap50']:.3f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", type=Path, default=Path("models/zoo/cpe-tiny"))
    parser.add_argument("--count", type=int, default=300, help="scans per set")
    parser.add_argument("--seed", type=int, default=1, help="recipe seed whose fresh held-out block is scored")
    parser.add_argument("--bag-seed", type=int, default=0, help="first seed of the evaluation generator")
    parser.add_argument("--sets", default="fresh,evalbag")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    wanted = args.sets.split(",")
    unknown = sorted(set(wanted) - {"fresh", "evalbag"})
    if unknown or args.count < 1:
        parser.error(f"--sets {unknown} unknown (fresh, evalbag) or --count {args.count} below 1")
    result: dict[str, Any] = {"package": str(args.package), "count": args.count}
    if "fresh" in wanted:
        result["fresh"] = score(args.package, fresh_scans(args.seed, args.count))
        result["fresh"]["seeds"] = [fresh_heldout_start(args.seed), fresh_heldout_start(args.seed) + args.count - 1]
        print(table("fresh held-out block of the training simulator", result["fresh"]), flush=True)
    if "evalbag" in wanted:
        result["evalbag"] = score(args.package, bag_scans(args.bag_seed, args.count))
        result["evalbag"]["seeds"] = [args.bag_seed, args.bag_seed + args.count - 1]
        print(table("evaluation generator (models.evalbag)", result["evalbag"]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return result


def fresh_heldout_start(seed: int) -> int:
    from models.training.dataset import fresh_heldout

    return fresh_heldout(seed).start


if __name__ == "__main__":
    main()
