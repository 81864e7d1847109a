"""The examples in docs/risk.md are real: the example bundle signs and opens, the example rules compile and fire."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from risk_factories import T0, opened

from risk.engine import BundleState, Engine, Facts
from risk.rules import compile_rules

DOC = (Path(__file__).resolve().parents[2] / "docs" / "risk.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```json\n(.*?)```", DOC, re.S)


def test_the_example_bundle_opens_and_hits_its_own_lists() -> None:
    doc: dict[str, Any] = json.loads(next(b for b in BLOCKS if '"format": 1' in b))
    bundle = opened(doc)
    assert bundle.version == 42 and len(bundle.watchlists) == 3 and len(bundle.declarations) == 1
    engine = Engine(BundleState.empty().apply(bundle), seed="doc")
    a = engine.evaluate(Facts("item-1", T0, (("plate", "kz-0042"),)))
    assert a.lane == "red" and a.fired[0].reason == "watch.stolen_vehicle"


def test_the_example_rules_compile() -> None:
    rules = [json.loads(text) for block in BLOCKS if '"format"' not in block for text in block.split("\n\n")]
    assert len(rules) == 4
    assert [r.id for r in compile_rules(rules).rules] == [r["id"] for r in rules]
