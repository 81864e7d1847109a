"""History facts in the station's risk check (issue 18): a rule on history.seizures fires on the history the
station fetched when the identity was read; before the answer arrives, and on a station without history,
the facts are unknown and the rule does not fire (the check never waits for the hub)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from pathlib import Path

from central_sync.hub.history import Pass
from central_sync.schema import Identity
from edge.config import HistorySection
from edge.history import HistoryCache, identity_key, open_history
from edge.risk import BundleFiles, RiskCheck, RiskRuntime, load_keys
from risk.bundle import bundle_dict, encode_bundle
from risk.rules import Rule
from risk_bundles import HUB_KEY, NO_RANDOM, pinned

PLATE = Identity(kind="plate", value="粤Z·A123港", source="cam-front")
SEIZED_BEFORE = Rule.from_dict({"id": "seized-before", "name": "Seized before", "reason": "earlier_seizure",
                                "score": 70, "lane": "red",
                                "when": {"all": [{"fact": "history.seizures", "op": "gte", "value": 1}]}})


def runtime(tmp_path: Path) -> RiskRuntime:
    """The station's runtime with a bundle holding only the history rule (no watchlist, no random draw)."""
    rt = RiskRuntime("gate-2", load_keys(pinned(tmp_path)), BundleFiles(tmp_path / "risk"), "seed")
    now = time.time()
    doc = bundle_dict(version=1, issued_at=now - 60, expires_at=now + 3600, rules=[SEIZED_BEFORE], random=NO_RANDOM)
    assert rt.receive(1, encode_bundle(doc, HUB_KEY, "risk-1")).outcome == "applied"
    return rt


def cached_history(tmp_path: Path, outcomes: list[str]) -> None:
    """The vehicle's answer as the station's cache holds it after an earlier fetch."""
    passes = [asdict(Pass(f"r{i}", "gate-1", 1.7e9 - i * 86400, "vehicle", "manual", o, None, None, None))  # type: ignore[arg-type]
              for i, o in enumerate(outcomes)]
    HistoryCache(tmp_path / "station" / "history", 10, 10**6).put(identity_key("plate", PLATE.value),
                                                                   {"passes": passes, "references": []}, {})


def fired(check: RiskCheck) -> list[str]:
    return [f.id for f in check.assess("item-1", [PLATE]).fired]


async def test_a_rule_on_earlier_seizures_fires_once_the_history_arrived(tmp_path: Path) -> None:
    cached_history(tmp_path, ["nothing_found", "seizure", "cleared"])
    history = open_history(HistorySection(), tmp_path / "station", None)
    check = RiskCheck(runtime(tmp_path), "gate-2", "gantry", history.facts)
    assert fired(check) == []  # asked for nothing yet: unknown, and the check does not wait
    history.prefetch([PLATE])
    await asyncio.gather(*history._fetches.values())
    assessment = check.assess("item-1", [PLATE])
    assert [(f.id, f.reason, f.lane) for f in assessment.fired] == [("seized-before", "earlier_seizure", "red")]
    assert assessment.lane == "red"


async def test_no_seizure_or_no_history_does_not_fire(tmp_path: Path) -> None:
    cached_history(tmp_path, ["cleared", "nothing_found"])
    history = open_history(HistorySection(), tmp_path / "station", None)
    history.prefetch([PLATE])
    await asyncio.gather(*history._fetches.values())
    rt = runtime(tmp_path)
    assert fired(RiskCheck(rt, "gate-2", "gantry", history.facts)) == []
    assert fired(RiskCheck(rt, "gate-2", "gantry")) == []  # a station without history: the facts are None
