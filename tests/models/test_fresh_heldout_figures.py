"""Regression: cpe-tiny 2.0.0's figures on the first scans of the fresh held-out block and of the
evaluation bag generator (issue 20), at its shipped thresholds. Deterministic per seed; a change
here means the model, the decoding or a generator changed, and MODEL.md's figures must be redone
(`python -m models.evalbag.evaluate`). One box either way is allowed per class for arithmetic that
differs between CPUs (a score a hair from its threshold)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("xraylib")

from models.evalbag.evaluate import bag_scans, fresh_scans, score  # noqa: E402

PACKAGE = Path(__file__).resolve().parents[2] / "models" / "zoo" / "cpe-tiny"

# (found, truth boxes) per class at IoU >= 0.3; clean bags alarming / clean bags
FRESH_40 = {"firearm": (10, 10), "knife": (11, 11), "ammunition": (5, 9), "cigarettes": (11, 13), "phone": (0, 6),
            "battery": (5, 5), "drugs": (1, 6)}
FRESH_40_CLEAN = (1, 10)
BAGS_16 = {"firearm": (1, 1), "knife": (3, 3), "ammunition": (3, 3), "cigarettes": (0, 3), "phone": (3, 3),
           "battery": (4, 4), "drugs": (0, 4)}
BAGS_16_CLEAN = (5, 6)


def _check(figures: dict, boxes: dict[str, tuple[int, int]], clean: tuple[int, int]) -> None:
    got = {c: (v["boxes"]["k"], v["boxes"]["n"]) for c, v in figures["classes"].items()}
    assert {c: n for c, (_, n) in got.items()} == {c: n for c, (_, n) in boxes.items()}  # the scenes themselves
    assert all(abs(got[c][0] - boxes[c][0]) <= 1 for c in boxes), got
    assert figures["clean_alarm"]["n"] == clean[1] and abs(figures["clean_alarm"]["k"] - clean[0]) <= 1
    lo, hi = figures["clean_alarm"]["ci95"]
    assert lo <= figures["clean_alarm"]["rate"] <= hi


def test_fresh_held_out_block_figures_hold():
    _check(score(PACKAGE, fresh_scans(1, 40)), FRESH_40, FRESH_40_CLEAN)


def test_evaluation_generator_figures_hold():
    figures = score(PACKAGE, bag_scans(0, 16))
    _check(figures, BAGS_16, BAGS_16_CLEAN)
    assert figures["thresholds"]["firearm"] == 0.25 and figures["thresholds"]["battery"] == 0.304  # validation's
