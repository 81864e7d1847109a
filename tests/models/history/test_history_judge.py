"""The region judge (models.history.judge): its trees as shipped, its inference, its refusals."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from models.errors import HistoryError
from models.history import compare as compare_module
from models.history.compare import Thresholds, compare, overlap, prepare
from models.history.judge import COMMON_MODEL, CORROBORATED_MODEL, FEATURES, MODEL, Judge, JudgeError, load
from models.training.portal import PortalSpec
from models.training.portal.passes import Pass, portal_pass


def _tree_doc(**over: object) -> dict:
    """Two stumps on feature 0 (log_mass) and one two-level tree, with known outputs."""
    stump = {"feature": [0, 0, 0], "threshold": [1.0, 0, 0], "left": [1, 0, 0], "right": [2, 0, 0],
             "leaf": [False, True, True], "value": [0.0, -1.0, 2.0]}
    deep = {"feature": [3, 4, 0, 0, 0], "threshold": [0.5, 1.5, 0, 0, 0], "left": [1, 3, 0, 0, 0],
            "right": [2, 4, 0, 0, 0], "leaf": [False, False, True, True, True], "value": [0.0, 0.0, 0.5, -0.25, 0.75]}
    doc = {"features": list(FEATURES), "baseline": -0.5, "depth": 2, "trees": [stump, stump, deep]}
    doc.update(over)
    return doc


def test_the_trees_are_walked_as_written() -> None:
    judge = Judge.from_json(_tree_doc())
    x = np.zeros((3, len(FEATURES)))
    x[0, 0], x[0, 3] = 0.5, 0.0                 # stumps left (−1, −1); deep: left, then ratio 0 → left (−0.25)
    x[1, 0], x[1, 3], x[1, 4] = 2.0, 0.0, 2.0   # stumps right (2, 2); deep: left, ratio 2 → right (0.75)
    x[2, 0], x[2, 3] = 2.0, 1.0                 # stumps right; deep: right (0.5)
    raw = np.array([-0.5 - 2 - 0.25, -0.5 + 4 + 0.75, -0.5 + 4 + 0.5])
    assert judge.probability(x) == pytest.approx(1 / (1 + np.exp(-raw)))
    assert judge.probability(np.zeros((0, len(FEATURES)))).shape == (0,)


def test_a_bag_averages_its_models_probabilities() -> None:
    single = _tree_doc()
    bag = {"features": list(FEATURES), "depth": 2,
           "members": [{"baseline": -0.5, "trees": single["trees"]}, {"baseline": 1.0, "trees": single["trees"][:1]}]}
    x = np.zeros((2, len(FEATURES)))
    x[0, 0], x[1, 0], x[1, 4] = 0.5, 2.0, 2.0
    first = Judge.from_json(single).probability(x)
    second = 1 / (1 + np.exp(-(1.0 + np.array([-1.0, 2.0]))))     # one stump: left −1, right 2
    assert Judge.from_json(bag).probability(x) == pytest.approx((first + second) / 2)
    with pytest.raises(JudgeError, match="no trees"):
        Judge.from_json({**bag, "members": [bag["members"][0], {"baseline": 0.0, "trees": []}]})


def test_a_judge_for_other_features_or_a_broken_file_is_refused_in_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(JudgeError, match="trained on features"):
        Judge.from_json(_tree_doc(features=["log_mass"]))
    with pytest.raises(JudgeError, match="no trees"):
        Judge.from_json(_tree_doc(trees=[]))
    bad = tmp_path / "judge.json"
    bad.write_text('{"features": [')
    with pytest.raises(JudgeError, match="cannot be read"):
        load(bad)
    bad.write_text(json.dumps(_tree_doc(trees=[{"feature": [0]}])))
    with pytest.raises(JudgeError, match="malformed"):
        load(bad)


@pytest.mark.parametrize("model, corroborated, common", [(MODEL, False, False), (CORROBORATED_MODEL, True, False),
                                                          (COMMON_MODEL, False, True)])
def test_the_shipped_judges_say_what_they_were_trained_on_and_never_on_the_evaluated_seeds(
        model: Path, corroborated: bool, common: bool) -> None:
    judge = load(model)
    first, end = judge.meta["trained_on"]["seeds"]
    assert first >= 200_000 and end > first        # validation 0 …, held-out 100000 …, generator B 300000 …
    assert end <= 300_000
    assert judge.meta["trained_on"]["positives"] > 100
    assert judge.meta["trained_on"].get("corroborated", False) is corroborated
    assert judge.meta["trained_on"].get("common", False) is common
    assert model.stat().st_size < 2_000_000


def test_a_plate_in_a_van_floor_is_judged_likelier_than_the_unchanged_pass_regions() -> None:
    spec = PortalSpec(vehicle="van", suspect=False)
    reference = prepare(portal_pass(2, Pass(0), spec))
    changed = portal_pass(2, Pass(2, changes=("added_steel",)), spec)
    loose = Thresholds(min_score=0.0, min_kg=0.5, tank_kg=0.5, cab_kg=0.5, ratio_lo=-100, ratio_hi=100,
                       report_occupants=True)
    truth = changed.meta["changes"][0]
    found = [r for r in compare(changed, reference, thresholds=loose).regions if overlap(r.box, truth["box"])]
    others = compare(portal_pass(2, Pass(2), spec), reference, thresholds=loose).regions
    assert found and others
    assert max(r.confidence for r in found) > np.median([r.confidence for r in others])
    assert all(0.0 <= r.confidence <= 1.0 for r in (*found, *others))


def test_a_comparison_that_needs_the_judge_fails_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(path: Path = MODEL) -> Judge:
        raise JudgeError(f"the region judge {path} cannot be read: truncated")

    monkeypatch.setattr(compare_module, "load_judge", broken)
    spec = PortalSpec(vehicle="van", suspect=False)
    reference = prepare(portal_pass(2, Pass(0), spec))
    changed = portal_pass(2, Pass(2, changes=("added_steel",)), spec)
    with pytest.raises(HistoryError, match="region judge .* cannot be read"):
        compare(changed, reference, thresholds=replace(Thresholds(), min_judge=0.5))
    hand = compare(changed, reference, thresholds=Thresholds())        # min_judge None
    assert all(r.confidence == 0.0 for r in hand.regions)   # hand thresholds alone need no judge


def test_with_two_references_the_corroboration_reads_its_own_judge_and_the_second_alone_the_regions_own(
        tmp_path: Path) -> None:
    """Corroboration.judge weighs both comparisons' regions from their descriptions (here a stump: over 5 kg 0.95,
    under 0.05), whatever weights the one-reference judge gave them; where the newest compared nothing, the second's
    region is read alone by CHOSEN on the one-reference judge's weight."""
    from models.history.compare import CHOSEN, ChangeRegion, Comparison, Corroboration, corroborate

    stump = {"feature": [0, 0, 0], "threshold": [float(np.log(5.0)), 0, 0], "left": [1, 0, 0], "right": [2, 0, 0],
             "leaf": [False, True, True], "value": [0.0, -3.0, 3.0]}
    path = tmp_path / "judge_corroborated.json"
    path.write_text(json.dumps({"features": list(FEATURES), "baseline": 0.0, "depth": 1, "trees": [stump]}))
    q, f = {"residual": 0.1}, {"background_ratio": 1.0}
    heavy = ChangeRegion((40.0, 700.0, 60.0, 760.0), "added", 9.0, 400.0, "floor", 80.0, ratio=1.0, net_kg=9.0,
                         confidence=0.1)
    light = replace(heavy, box=(40.0, 200.0, 60.0, 260.0), mass_kg_fe=2.0, net_kg=2.0, confidence=0.9)
    dark = replace(light, box=(150.0, 20.0, 200.0, 60.0), confidence=0.85)        # where the newest compared nothing
    first = Comparison((heavy, light), q, features=(f, f), uncompared=((0.0, 0.0, 460.0, 100.0),))
    second = Comparison((replace(heavy, box=(41.0, 702.0, 61.0, 758.0)), replace(light, box=(41.0, 202.0, 61.0, 258.0)),
                         dark), q, features=(f, f, f))
    own = Corroboration(replace(CHOSEN, min_judge=0.5), 0.5, alone=CHOSEN)
    assert [r.box for r in corroborate(first, second, own).regions] == [light.box, dark.box]
    result = corroborate(first, second, replace(own, judge=path))
    assert [(r.box, r.confidence) for r in result.regions] == [(heavy.box, 0.953), (dark.box, 0.85)]
    with pytest.raises(HistoryError, match="descriptions"):
        corroborate(replace(first, features=()), second, replace(own, judge=path))


def test_the_two_reference_judge_learns_from_the_regions_a_second_reference_corroborates() -> None:
    """train_judge.examples(corroborated=True) keeps a region over CHOSEN's score and mass floor when the same pass's
    comparison with the other reference holds a region of its kind over it that the floor keeps: of the unchanged
    pass, what the current pass has (not what one reference differs in); of the changed pass, the change."""
    from models.history.compare import ChangeRegion, Comparison
    from models.history.train_judge import examples

    q, f = {"residual": 0.1}, {"background_ratio": 1.0}

    def region(x: float, kind: str = "added", score: float = 20.0) -> ChangeRegion:
        return ChangeRegion((x, 10.0, x + 10, 20.0), kind, 3.0, 100.0, "floor", score, ratio=1.0, net_kg=3.0)

    def comparison(*regions: ChangeRegion) -> Comparison:
        return Comparison(regions, q, features=(f,) * len(regions))

    case = {"change": {"kind": "added", "label": "steel", "box": [100.0, 10.0, 110.0, 20.0]},
            "changed": comparison(region(100), region(300)), "changed_1": comparison(region(102), region(700)),
            "unchanged": comparison(region(300), region(400), region(600, score=8.0)),
            "unchanged_1": comparison(region(402, "removed"), region(301), region(601))}
    x, y = examples([case])
    assert len(y) == 8 and y.sum() == 2          # every region of the unchanged passes, the change's of the changed
    x, y = examples([case], corroborated=True)
    assert y.tolist() == [0, 1, 0, 1]            # 300 both ways, the change both ways; not 400 (another kind), not
    assert x.shape == (4, len(FEATURES))         # 600 (under the floor against the newest), not 700 (alone)


def test_the_judge_of_what_both_references_show_learns_from_its_regions_over_the_floor() -> None:
    """train_judge.common_examples: the regions of what both references show over the two-reference floor (score 6,
    1 kg): of the unchanged pass negatives, of the changed pass the change's positives; the others left out."""
    from models.history.compare import ChangeRegion, Comparison
    from models.history.train_judge import common_examples

    q, f = {"residual": 0.1}, {"background_ratio": 1.0}

    def region(x: float, score: float = 20.0, kg: float = 3.0) -> ChangeRegion:
        return ChangeRegion((x, 10.0, x + 10, 20.0), "added", kg, 100.0, "floor", score, ratio=1.0, net_kg=kg)

    def comparison(*regions: ChangeRegion) -> Comparison:
        return Comparison(regions, q, features=(f,) * len(regions))

    case = {"change": {"kind": "added", "label": "steel", "box": [100.0, 10.0, 110.0, 20.0]},
            "changed_both": comparison(region(100), region(300), region(101, score=5.0)),
            "unchanged_both": comparison(region(300), region(400, kg=0.8), region(600, score=7.0))}
    x, y = common_examples([case])
    assert y.tolist() == [0, 0, 1]         # 300 and 600 (score 7 over 6) unchanged; the change; not 400 (0.8 kg),
    assert x.shape == (3, len(FEATURES))   # not the change's score 5, not 300 on the changed pass
