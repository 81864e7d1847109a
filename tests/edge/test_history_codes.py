"""A pass not compared says why as a code with the values its sentence names (`History.code`, `values`), so that the
officer's screen says it in its language; `detail` stays the English sentence. Every code edge/history.py can
produce has a sentence with those values in each of the screen's catalogues."""

from __future__ import annotations

import json
import string
import threading
from pathlib import Path
from typing import Any, get_args

from central_sync.schema import HistoryCode
from models.scan import Scan
from test_history_hub_answers import READ, Hub, a_pass, current, fetched, scan_bytes, station

ROOT = Path(__file__).resolve().parents[2]
VALUES = {"no_identity": set(), "not_arrived": set(), "hub_unavailable": set(), "no_reference": {"passes"},
          "identity_conflict": {"kind", "value"}, "type_not_declared_empty": set(),
          "type_other_width": {"reference", "reference_px", "scan_px"}, "reference_not_held": {"reference"},
          "other_scanner": {"reference", "what", "reference_value", "scan_value"}, "over_budget": {"budget_ms"},
          "compare_failed": {"reference"}, "internal_error": set()}


def test_every_code_the_station_gives_is_said_in_every_language_with_its_values() -> None:
    source = (ROOT / "edge/history.py").read_text(encoding="utf-8")
    assert set(get_args(HistoryCode)) == set(VALUES)
    assert all(f'"{code}"' in source for code in VALUES), "a code no path of edge/history.py gives"
    for lang in ("en", "zh-Hans", "zh-Hant"):
        msgs = json.loads((ROOT / "edge/web/i18n" / f"{lang}.json").read_text(encoding="utf-8"))
        for code, values in VALUES.items():
            fields = {f for _, f, _, _ in string.Formatter().parse(msgs[f"history.why.{code}"]) if f}
            assert fields == values, (lang, code)
        assert {k for k in msgs if k.startswith("history.why.")} == {f"history.why.{c}" for c in VALUES}, lang


class Stuck:
    """A comparison that does not finish until released (past any budget)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def __call__(self, scan: Scan, references: list[Any]) -> dict[str, Any]:
        self.release.wait(30)
        return {}


def refused(scan: Scan, references: list[Any]) -> dict[str, Any]:
    raise ValueError("the reference is 64 pixels wide and the scan 63")


async def test_a_comparison_over_its_budget_failed_or_without_a_reference_has_its_code(tmp_path: Path) -> None:
    data = scan_bytes(1)
    hub = Hub()
    hub.offer([a_pass("r-seized", 3, "seizure")], [])
    history = station(tmp_path / "none", hub)
    await fetched(history)
    none = await history.judge(READ, current())
    ref = a_pass("r-1", 1, scan=data)
    hub.offer([ref], [ref], data)
    stuck = Stuck()
    slow = station(tmp_path / "slow", hub, compare_budget_s=0.05)
    slow.compare = stuck
    failing = station(tmp_path / "failing", hub)
    failing.compare = refused
    for h in (slow, failing):
        await fetched(h)
    try:
        late = await slow.judge(READ, current())
    finally:
        stuck.release.set()
    failed = await failing.judge(READ, current())
    assert (none.status, none.code, none.values) == ("no_history", "no_reference", {"passes": "1"})
    assert (late.status, late.code, late.values) == ("over_budget", "over_budget", {"budget_ms": "50"})
    assert (failed.status, failed.code, failed.values) == ("failed", "compare_failed", {"reference": "r-1"})
    assert "64 pixels wide" in failed.detail  # the English sentence keeps the error for the log and the hub

