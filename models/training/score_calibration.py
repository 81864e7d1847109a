"""Platt calibration of a baggage package's reported scores, fitted on the validation set.

    nice -n 19 .venv/bin/python -m models.training.score_calibration --count 200 [--write]

Renders validation scans (seeds seed × 1,000,000 + 500,000.., the block thresholds are chosen on;
narrow domain, as the shipped model's), decodes every detection from score 0.05, marks it right
when it overlaps a truth box of its class with IoU ≥ 0.3, and per class fits a logistic regression
on the score's logit, p = sigmoid(a · logit(s) + b), by grid search (a temperature alone cannot
lift scores under 0.5 that are mostly right). The station reports calibrated scores
(models.manifest.Manifest.calibrated); thresholds and decisions stay on the raw scores. Calibrated
on the training simulator's own scenes, the scores say how often a box is right **there**: they do
not know the scans the model never saw (docs/evaluation-generators.md).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

FLOOR = 0.05


A_GRID = np.geomspace(0.05, 5.0, 64)
B_GRID = np.linspace(-6.0, 6.0, 121)


def fit_platt(scores: np.ndarray, right: np.ndarray) -> tuple[float, float]:
    """(a, b) on a grid (0.05 ≤ a ≤ 5, |b| ≤ 6) with the least log loss of sigmoid(a · logit(s) + b) against
    right; (1, 0) when there is nothing to fit (fewer than 5 detections, or all right, or none)."""
    if len(scores) < 5 or right.all() or not right.any():
        return 1.0, 0.0
    s = np.clip(scores.astype(np.float64), 1e-6, 1 - 1e-6)
    logit = np.log(s / (1 - s))
    z = A_GRID[:, None, None] * logit[None, None, :] + B_GRID[None, :, None]     # a × b × detections
    log_p = -np.logaddexp(0.0, -z)           # log sigmoid(z)
    log_q = -np.logaddexp(0.0, z)            # log (1 − sigmoid(z))
    loss = -np.where(right[None, None, :], log_p, log_q).mean(axis=2)
    i, j = np.unravel_index(int(np.argmin(loss)), loss.shape)
    return round(float(A_GRID[i]), 4), round(float(B_GRID[j]), 4)


def records(package: Path, seeds: range) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per class: raw scores of validation detections from FLOOR and whether each was right."""
    from models.evalbag.evaluate import IOU_FOUND, Scorer, iou
    from models.training.scene import SceneSpec, synth_scan

    scorer = Scorer(package)
    for seed in seeds:
        scorer.add(synth_scan(seed, SceneSpec()))
    out: dict[str, tuple[list[float], list[bool]]] = {n: ([], []) for n in scorer.names}
    for meta, dets in scorer.records:
        for label, score, box in dets:
            if score >= FLOOR:
                out[label][0].append(score)
                out[label][1].append(any(t["label"] == label and iou(box, t["box"]) >= IOU_FOUND for t in meta["truth"]))
    return {n: (np.array(s, np.float32), np.array(r, bool)) for n, (s, r) in out.items()}


def section(fits: dict[str, tuple[float, float]], seeds: range) -> str:
    body = ", ".join(f"{n} = [{a}, {b}]" for n, (a, b) in fits.items())
    return (f'[calibration]  # models/training/score_calibration.py; reported scores only, thresholds stay raw\n'
            f'method = "platt"\nfitted_on = "validation seeds {seeds.start}..{seeds.stop - 1}"\n'
            f"platt = {{ {body} }}\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", type=Path, default=Path("models/zoo/cpe-tiny"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--write", action="store_true", help="put the [calibration] section into manifest.toml")
    args = parser.parse_args(argv)
    seeds = range(args.seed * 1_000_000 + 500_000, args.seed * 1_000_000 + 500_000 + args.count)
    fits = {}
    for name, (scores, right) in records(args.package, seeds).items():
        fits[name] = fit_platt(scores, right)
        print(f"{name}: {len(scores)} detections from {FLOOR}, {int(right.sum())} right, (a, b) = {fits[name]}")
    text = section(fits, seeds)
    print(text)
    if args.write:
        path = args.package / "manifest.toml"
        manifest = re.sub(r"\n\[calibration\][^\[]*", "\n", path.read_text())
        head, sep, tail = manifest.partition("\n[evaluation]")
        path.write_text(head.rstrip("\n") + "\n\n" + text + "\n" + sep.lstrip("\n") + tail if sep else manifest + "\n" + text)


if __name__ == "__main__":
    main()
