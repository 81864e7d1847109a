"""Train the region judge (models.history.judge) on a block of generator A's repeated passes.

    python -m models.history.train_judge --seeds 200000:200600 --out models/history/judge.json

Needs the training extra (scikit-learn). The training block's seeds must not overlap the validation
(0 …) or held-out (100000 …) blocks of models.history.evaluate. Each seed gives an unchanged and a
changed pass against its reference (the same renders the evaluation makes); every candidate region
of an unchanged pass is a negative, a candidate of the right kind overlapping the change is a
positive. Gradient-boosted trees (HistGradientBoostingClassifier, depth ≤ 4, class weights
balanced) are exported to JSON with the training block, the sklearn version and the counts.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.history.evaluate import HELD_OUT_START, case, overlaps
from models.history.judge import FEATURES, MODEL, vector

TRAIN_START = 200_000


def examples(cases: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of every candidate region of a block (see the module)."""
    x: list[list[float]] = []
    y: list[int] = []
    for c in cases:
        for comp, positive in ((c["unchanged"], None), (c["changed"], c["change"])):
            for r, f in zip(comp.regions, comp.features):
                if positive is None:
                    x.append(vector(r, f, comp.registration))
                    y.append(0)
                elif r.kind == positive["kind"] and overlaps(r, positive["box"]):
                    x.append(vector(r, f, comp.registration))
                    y.append(1)
    return np.array(x, dtype=np.float64).reshape(-1, len(FEATURES)), np.array(y, dtype=np.int64)


def export(model: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """The fitted HistGradientBoostingClassifier's trees as plain lists (models.history.judge reads them)."""
    trees = []
    for (predictor,) in model._predictors:
        nodes = predictor.nodes
        trees.append({"feature": nodes["feature_idx"].astype(int).tolist(),
                      "threshold": [float(v) for v in nodes["num_threshold"]],
                      "left": nodes["left"].astype(int).tolist(), "right": nodes["right"].astype(int).tolist(),
                      "leaf": nodes["is_leaf"].astype(bool).tolist(),
                      "value": [round(float(v), 6) for v in nodes["value"]]})
    return {"features": list(FEATURES), "baseline": float(np.ravel(model._baseline_prediction)[0]),
            "depth": int(max(max(p.nodes["depth"]) for (p,) in model._predictors)), **meta, "trees": trees}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default=f"{TRAIN_START}:{TRAIN_START + 600}", help="first:end of the training block")
    ap.add_argument("--out", type=Path, default=MODEL)
    ap.add_argument("--trees", type=int, default=300)
    ap.add_argument("--depth", type=int, default=4)
    a = ap.parse_args(argv)
    first, end = (int(v) for v in a.seeds.split(":"))
    if first < TRAIN_START:
        raise SystemExit(f"the training block {first}:{end} may overlap the validation (0 …) or held-out "
                         f"({HELD_OUT_START} …) seeds: train from {TRAIN_START}")
    from sklearn import __version__ as sklearn_version
    from sklearn.ensemble import HistGradientBoostingClassifier
    cv2.setNumThreads(1)
    t0 = time.perf_counter()
    x, y = examples([case(s) for s in range(first, end)])
    model = HistGradientBoostingClassifier(max_depth=a.depth, max_iter=a.trees, learning_rate=0.05,
                                           l2_regularization=1.0, class_weight="balanced", random_state=0)
    model.fit(x, y)
    doc = export(model, {"trained_on": {"generator": "A (models.training.portal.passes)", "seeds": [first, end],
                                        "regions": int(len(y)), "positives": int(y.sum())},
                         "sklearn": sklearn_version, "seconds": round(time.perf_counter() - t0, 1)})
    a.out.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(json.dumps({k: v for k, v in doc.items() if k != "trees"}, indent=2))


if __name__ == "__main__":
    main()
