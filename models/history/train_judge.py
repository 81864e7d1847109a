"""Train the region judge (models.history.judge) on a block of generator A's repeated passes.

    python -m models.history.train_judge --seeds 200000:202000 --jobs 2 --out models/history/judge.json
    python -m models.history.train_judge --seeds 200000:202000 --jobs 2 --corroborated \
        --out models/history/judge_corroborated.json        # the judge for two references
    python -m models.history.train_judge --seeds 200000:202000 --jobs 2 --common \
        --out models/history/judge_common.json              # the judge for what both references show

Needs the training extra (scikit-learn). The training block's seeds must not overlap the validation
(0 …) or held-out (100000 …) blocks of models.history.evaluate. Each seed gives an unchanged and a
changed pass against each of its two references (the same renders the evaluation makes: the judge weighs
the regions against the newest and against the second); every candidate region of an unchanged pass is a
negative, a candidate that shows the change (models.history.evaluate.shows) is a positive. A bag of `--members` gradient-boosted models (HistGradientBoostingClassifier, depth ≤ 4,
class weights balanced), each fitted on its own bootstrap sample of the regions, is exported to JSON
with the training block, the sklearn version and the counts; the judge averages their probabilities.
With `--corroborated` only the regions a second reference corroborates are examples (`examples`); with `--common`
the regions of what both references show pixel by pixel (`common_examples`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.history.compare import CHOSEN, CORROBORATED, overlap
from models.history.evaluate import HELD_OUT_START, block, shows
from models.history.judge import FEATURES, MODEL, vector

TRAIN_START = 200_000


def examples(cases: list[dict[str, Any]], corroborated: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of every candidate region of a block (see the module), against both references; with
    `corroborated`, only the regions a second reference corroborates: over the one-reference rule's score and mass
    floor (`CHOSEN`: score 10, 1 kg), with a region of the same kind over them that the floor keeps in the same pass's
    comparison with the other reference (`Corroboration.agrees` without the weights). What only one reference
    differs in is left out; what is left is what the current pass has, a change or its own passengers and fuel: the
    regions the two-reference judge (`judge_corroborated.json`, compare.CORROBORATED) has to tell apart."""
    floor = CHOSEN
    x: list[list[float]] = []
    y: list[int] = []
    for c in cases:
        for key, other, positive in (("unchanged", "unchanged_1", None), ("changed", "changed_1", c["change"]),
                                     ("unchanged_1", "unchanged", None), ("changed_1", "changed", c["change"])):
            comp = c[key]
            seen = [s for s in c[other].regions if floor.large(s)] if corroborated else []
            for r, f in zip(comp.regions, comp.features):
                if positive is not None and not shows(r, positive):
                    continue
                if corroborated and not (floor.large(r) and any(s.kind == r.kind and overlap(r.box, s.box)
                                                                for s in seen)):
                    continue
                x.append(vector(r, f, comp.registration))
                y.append(0 if positive is None else 1)
    return np.array(x, dtype=np.float64).reshape(-1, len(FEATURES)), np.array(y, dtype=np.int64)


def common_examples(cases: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of the regions of what both references show pixel by pixel (`unchanged_both`,
    `changed_both`: models.history.compare.common) over the two-reference rule's score and mass floor
    (CORROBORATED.first: score 6, 1 kg): of the unchanged pass negatives, of the changed pass those showing the change
    positives. The regions the judge for `Corroboration.common` (`judge_common.json`) has to tell apart."""
    floor = CORROBORATED.first
    x: list[list[float]] = []
    y: list[int] = []
    for c in cases:
        for key, positive in (("unchanged_both", None), ("changed_both", c["change"])):
            comp = c[key]
            for r, f in zip(comp.regions, comp.features):
                if floor.large(r) and (positive is None or shows(r, positive)):
                    x.append(vector(r, f, comp.registration))
                    y.append(0 if positive is None else 1)
    return np.array(x, dtype=np.float64).reshape(-1, len(FEATURES)), np.array(y, dtype=np.int64)


def export(model: Any) -> dict[str, Any]:
    """A fitted HistGradientBoostingClassifier's baseline and trees as plain lists (models.history.judge)."""
    trees = []
    for (predictor,) in model._predictors:
        nodes = predictor.nodes
        trees.append({"feature": nodes["feature_idx"].astype(int).tolist(),
                      "threshold": [float(v) for v in nodes["num_threshold"]],
                      "left": nodes["left"].astype(int).tolist(), "right": nodes["right"].astype(int).tolist(),
                      "leaf": nodes["is_leaf"].astype(bool).tolist(),
                      "value": [round(float(v), 6) for v in nodes["value"]]})
    return {"baseline": float(np.ravel(model._baseline_prediction)[0]),
            "depth": int(max(max(p.nodes["depth"]) for (p,) in model._predictors)), "trees": trees}


def bag(x: np.ndarray, y: np.ndarray, members: int, trees: int, depth: int) -> list[Any]:
    """`members` models, the i-th fitted on a bootstrap sample of the rows drawn with seed i."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    out = []
    for i in range(members):
        rows = np.random.default_rng(i).integers(0, len(y), len(y)) if members > 1 else np.arange(len(y))
        model = HistGradientBoostingClassifier(max_depth=depth, max_iter=trees, learning_rate=0.05,
                                               l2_regularization=1.0, class_weight="balanced", random_state=i)
        out.append(model.fit(x[rows], y[rows]))
    return out


def train(cases: list[dict[str, Any]], seeds: tuple[int, int], members: int = 5, trees: int = 300, depth: int = 4,
          crowd: bool = False, corroborated: bool = False, common: bool = False) -> dict[str, Any]:
    """The judge's file (models.history.judge) fitted on a rendered training block (`block` of `seeds`): on every
    candidate region (`examples`), the corroborated ones, or with `common` those of what both references show
    (`common_examples`)."""
    from sklearn import __version__ as sklearn_version
    x, y = common_examples(cases) if common else examples(cases, corroborated)
    fitted = [export(m) for m in bag(x, y, members, trees, depth)]
    return {"features": list(FEATURES), "depth": max(m["depth"] for m in fitted),
            "trained_on": {"generator": "A (models.training.portal.passes)", "seeds": list(seeds), "crowd": crowd,
                           "corroborated": corroborated, "common": common,
                           "regions": int(len(y)), "positives": int(y.sum()), "members": len(fitted),
                           "bootstrap": len(fitted) > 1},
            "sklearn": sklearn_version, "members": fitted}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default=f"{TRAIN_START}:{TRAIN_START + 2000}", help="first:end of the training block")
    ap.add_argument("--out", type=Path, default=MODEL)
    ap.add_argument("--trees", type=int, default=300)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--members", type=int, default=5, help="models in the bag (bootstrap samples)")
    ap.add_argument("--jobs", type=int, default=1, help="processes rendering the passes")
    ap.add_argument("--crowd", action="store_true",
                    help="a crowd in every pass (Pass.crowd; a trial, not shipped: see docs/vehicle-history.md)")
    ap.add_argument("--corroborated", action="store_true",
                    help="only the regions a second reference corroborates (`examples`): the two-reference judge, "
                         "judge_corroborated.json")
    ap.add_argument("--common", action="store_true",
                    help="the regions of what both references show (`common_examples`): the judge for "
                         "Corroboration.common, judge_common.json")
    a = ap.parse_args(argv)
    if a.common and a.corroborated:
        raise SystemExit("--common and --corroborated train different judges: give one")
    first, end = (int(v) for v in a.seeds.split(":"))
    if first < TRAIN_START:
        raise SystemExit(f"the training block {first}:{end} may overlap the validation (0 …) or held-out "
                         f"({HELD_OUT_START} …) seeds: train from {TRAIN_START}")
    cv2.setNumThreads(1)
    t0 = time.perf_counter()
    doc = train(block(range(first, end), jobs=a.jobs, crowd=a.crowd), (first, end), a.members, a.trees, a.depth,
                a.crowd, a.corroborated, a.common)
    doc["seconds"] = round(time.perf_counter() - t0, 1)
    a.out.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(json.dumps({k: v for k, v in doc.items() if k != "members"}, indent=2))


if __name__ == "__main__":
    main()
