"""Know what it does not know (issue 20): scans outside the shipped baggage model's input statistics
go to manual (model_not_applicable), never to the model; the fresh held-out block stays unseen."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.applicability import ScanFacts, input_statistics, scan_problem, statistics_problem
from models.cli import ZOO, detect_file
from models.errors import NotApplicable
from models.scan import Scan, load_scan, save_scan
from models.training.dataset import FRESH_OFFSET, fresh_heldout, generate, load, refuse_fresh
from models.training.scene import SceneSpec

ROOT = Path(__file__).resolve().parents[2]
TINY_DIR = ZOO / "cpe-tiny"
BAG = ROOT / "examples" / "scans" / "bag_firearm_01.npz"


def _tiny():
    from models.manifest import load_manifest

    return load_manifest(TINY_DIR)


def test_the_shipped_manifest_states_its_input_statistics():
    spec = _tiny().applicability
    assert spec.opaque_share == 0.05 and spec.channel_ratio == (1.05, 2.5)
    assert spec.pixel_mm == (0.8, 1.25) and spec.energy_kev == (100.0, 200.0)


def test_an_all_opaque_scan_never_reaches_the_model(tmp_path):
    """The raw network answers an all-opaque tile with dozens of firearm boxes; the station never asks it."""
    dark = np.zeros((640, 640), np.uint16)
    path = save_scan(Scan(dark, dark.copy(), {"kind": "baggage", "pixel_mm": 1.0, "kvp": 160}), tmp_path / "opaque.npz")
    with pytest.raises(NotApplicable, match="opaque"):
        detect_file(path, TINY_DIR)


def test_a_bag_with_a_large_opaque_block_is_out_of_domain():
    bag = load_scan(BAG)
    high, low = bag.high.copy(), bag.low.copy()
    assert statistics_problem(_tiny(), high, low) is None
    high[100:400, 100:400] = low[100:400, 100:400] = 0        # 300 x 300 pixels at the detector floor
    problem = statistics_problem(_tiny(), high, low)
    assert problem is not None and "at most 5% of pixels at the detector floor; this scan has 44%" in problem
    facts = ScanFacts.of_meta(bag.meta, bag.shape)
    assert scan_problem(_tiny(), facts, high, low) == problem


@pytest.mark.parametrize("how, words", [("single", "ratio is 1.05 to 2.5; this scan's is 1.00"),
                                        ("swapped", "this scan's is 0.8")])
def test_single_energy_and_swapped_channels_are_out_of_domain(how, words):
    bag = load_scan(BAG)
    high, low = (bag.high, bag.high.copy()) if how == "single" else (bag.low, bag.high)
    problem = statistics_problem(_tiny(), high, low)
    assert problem is not None and words in problem


def test_every_example_bag_keeps_its_statistics_inside():
    for path in sorted((ROOT / "examples" / "scans").glob("bag_*.npz")):
        scan = load_scan(path)
        stats = input_statistics(scan.high, scan.low)
        assert stats["opaque_share"] < 0.05 and 1.05 < stats["channel_ratio"] < 2.5, (path.name, stats)


def test_training_and_validation_refuse_the_fresh_held_out_block(tmp_path):
    block = fresh_heldout(1)
    assert (block.start, block.stop) == (1_700_000, 1_702_000) and FRESH_OFFSET == 700_000
    with pytest.raises(ValueError, match="reach into the fresh held-out block 1700000..1701999"):
        generate(tmp_path / "train", range(1_699_990, 1_700_010), SceneSpec(lines=64, pixels=64))
    assert not (tmp_path / "train.npy").exists()
    refuse_fresh(range(1_000_000, 1_500_000), "train")   # the largest training block stays clear of it
    refuse_fresh(range(1_800_000, 1_800_800), "heldout")  # the old held-out block is another block
    # a set written by hand over fresh seeds cannot be loaded for training or validation
    np.save(tmp_path / "val.npy", np.zeros((1, 2, 8, 8), np.float16))
    (tmp_path / "val.json").write_text(json.dumps({"seeds": [2_700_100, 2_700_101], "truth": [[]]}))
    with pytest.raises(ValueError, match="set val seeds 2700100..2700100"):
        load(tmp_path / "val")
