"""The region judge: how likely a candidate change region is a real change of the vehicle.

The comparison (models.history.compare) outlines every region where the current pass differs from
the reference by more than the pair's noise; most of them on an unchanged pass are things that
legitimately differ (people in the cab, the fuel level where the wheels overlap the tank, a stretch
of cargo the registration left a line off). Hand thresholds on mass and score cannot tell them
from a 5 kg plate. The judge weighs a region's whole description — mass and net mass, score,
Δlow/Δhigh over the reference's own low/high attenuation there (`ratio_to_background`), size in mm,
where it lies in the vehicle's height and length, how even its inside and how sharp its outline,
how far the low channel follows the high one pixel by pixel, how much the beam had already lost
there, the noise, how far its edges are from a liquid's level moving, the vehicle's length and
height, and the registration's residual — with gradient-boosted trees (depth ≤ 4)
trained on a block of generator A's repeated passes that neither the validation nor the held-out
block overlaps
(`python -m models.history.train_judge`, the training extra: scikit-learn). It is a bag of such
models, each fitted on a bootstrap sample of the regions, whose probabilities are averaged: one
model's answer on a region unlike its training regions swings with small changes of the training
data; the average swings less. The trees ship as JSON (`judge.json`, about 1 MB) and are evaluated
here with numpy: the runtime needs no scikit-learn.

Nothing it weighs comes from a generator's layout of the vehicle (its floor, tank or cab boxes): a
station has only the image, and a judge that learnt where generator A puts a fuel tank judged real
scans by something they do not carry (it reported 1.2 false regions per unchanged pass when the same
passes were compared as a station compares them, against 0.1 with the layout).

Δlow/Δhigh enters only relative to the material already there: a scanner's low channel has its own
gain against the high one (its spectrum, filtration and detector), which scales a region's ratio and
its background's alike, so the quotient is the same on every scanner. On the absolute ratio the judge
learnt generator A's people at 0.94 and took generator B's at 1.11 — the low end of B's own steel —
for changes; relative to their background both measure 0.73 to 0.75 (median; docs/vehicle-history.md).

With two references a second judge of the same kind weighs the regions (`CORROBORATED_MODEL`,
compare.CORROBORATED): trained on the same block, but only on the regions a second reference corroborates
(`train_judge --corroborated`). Once the second reference has taken out what only one reference differs in
(its own fuel, passengers, scatter), what is left to tell from a change is what the current pass alone has; a
judge trained on every region spends its trees on the first kind too. A third (`COMMON_MODEL`,
`Corroboration.common_judge`) weighs the regions of what both references show pixel by pixel (compare.common),
trained on those regions (`train_judge --common`): outlined where both differences agree, their sizes and masses are
not those of either comparison's regions.

Its probability is a ranking, not a calibrated rate: the threshold that keeps ≤ 0.2 false regions
per unchanged pass is chosen on the validation block (models.history.evaluate) and kept in
`Thresholds.min_judge`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import JudgeError

DESCRIBED = ("height_mm", "length_mm", "centre_of_height", "bottom_of_height", "uniformity", "contrast", "sharpness",
             "channels_corr", "level", "noise", "fill", "peak_over_mean", "along", "vehicle_length_mm",
             "vehicle_height_mm", "level_lower", "level_upper")
FEATURES = ("log_mass", "log_net", "log_smaller", "log_score", "ratio_to_background", "log_area", "density", "added",
            "residual", "compared_share", *DESCRIBED)
MODEL = Path(__file__).with_name("judge.json")
CORROBORATED_MODEL = Path(__file__).with_name("judge_corroborated.json")   # two references (compare.CORROBORATED)
COMMON_MODEL = Path(__file__).with_name("judge_common.json")   # what both references show (Corroboration.common)


def vector(region: Any, described: dict[str, float], registration: dict[str, float]) -> list[float]:
    """A region's features in FEATURES order (region: a models.history.compare.ChangeRegion)."""
    m, n = max(region.mass_kg_fe, 1e-3), max(region.net_kg, 1e-3)
    x = [float(np.log(m)), float(np.log(n)), float(np.log(min(m, n))), float(np.log(max(region.score, 1e-3))),
         float(np.clip(region.ratio / max(described["background_ratio"], 0.05), -5.0, 5.0)),
         float(np.log(max(region.area_cm2, 1.0))),
         min(m, n) * 1000.0 / max(region.area_cm2, 1.0), float(region.kind == "added"),
         float(registration.get("residual", 0.0)), float(registration.get("compared_share", 1.0))]
    x += [float(described.get(k, 0.0)) for k in DESCRIBED]
    return x


@dataclass(frozen=True)
class Judge:
    """Bagged gradient-boosted models as flat arrays: per tree its model (`member`), per node the
    feature, threshold, children and leaf value; per model its baseline."""

    baseline: np.ndarray     # (members,) float
    member: np.ndarray       # (trees,) int
    feature: np.ndarray      # (trees, nodes) int
    threshold: np.ndarray    # (trees, nodes) float
    left: np.ndarray         # (trees, nodes) int
    right: np.ndarray        # (trees, nodes) int
    leaf: np.ndarray         # (trees, nodes) bool
    value: np.ndarray        # (trees, nodes) float
    depth: int
    meta: dict[str, Any]

    def probability(self, x: np.ndarray) -> np.ndarray:
        """P(real change) for rows of features (n, len(FEATURES))."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, len(FEATURES))
        n, trees = x.shape[0], self.feature.shape[0]
        if n == 0:
            return np.zeros(0)
        node = np.zeros((trees, n), dtype=np.int64)
        t = np.arange(trees)[:, None]
        for _ in range(self.depth):
            f = self.feature[t, node]
            go_left = x[np.arange(n)[None, :], f] <= self.threshold[t, node]
            step = np.where(go_left, self.left[t, node], self.right[t, node])
            node = np.where(self.leaf[t, node], node, step)
        votes = np.zeros((len(self.baseline), n))
        np.add.at(votes, self.member, self.value[t, node])
        raw = self.baseline[:, None] + votes
        return (1.0 / (1.0 + np.exp(-raw))).mean(axis=0)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Judge:
        if tuple(doc.get("features", ())) != FEATURES:
            raise JudgeError(f"the judge was trained on features {doc.get('features')!r}, this code describes "
                             f"regions by {list(FEATURES)!r}")
        members = doc["members"] if "members" in doc else [doc]
        trees = [tr for m in members for tr in m.get("trees") or []]
        if not members or not all(m.get("trees") for m in members):
            raise JudgeError("the judge file holds no trees")
        member = np.concatenate([np.full(len(m["trees"]), i) for i, m in enumerate(members)])
        width = max(len(tr["feature"]) for tr in trees)

        def table(key: str, fill: float, dtype: Any) -> np.ndarray:
            out = np.full((len(trees), width), fill, dtype=dtype)
            for i, tr in enumerate(trees):
                out[i, :len(tr[key])] = tr[key]
            return out

        return cls(np.array([float(m["baseline"]) for m in members]), member,
                   table("feature", 0, np.int64), table("threshold", 0.0, np.float64),
                   table("left", 0, np.int64), table("right", 0, np.int64), table("leaf", True, bool),
                   table("value", 0.0, np.float64), int(doc.get("depth", 8)) + 1,
                   {k: v for k, v in doc.items() if k not in ("trees", "members")})


@lru_cache(maxsize=4)
def load(path: Path = MODEL) -> Judge:
    """The judge in a JSON file (the shipped one by default); JudgeError with the reason in one sentence."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise JudgeError(f"the region judge {path} cannot be read: {exc}") from exc
    try:
        return Judge.from_json(doc)
    except (KeyError, TypeError, IndexError) as exc:
        raise JudgeError(f"the region judge {path} is malformed: {exc!r}") from exc
