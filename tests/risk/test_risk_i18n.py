"""What the risk assessment shows in words exists in every catalogue of the station and the control room."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from risk.engine import DECLARED_EMPTY_NOT_EMPTY, IDENTITY_UNREAD
from risk.rules import LANES

ROOT = Path(__file__).resolve().parents[2]
CATALOGUES = sorted([*(ROOT / "edge" / "web" / "i18n").glob("*.json"),
                     *(ROOT / "central_sync" / "control_room" / "i18n").glob("*.json")])
KEYS = {"reason.risk_red", "reason.risk_amber", *(f"risk.lane.{lane}" for lane in LANES),
        *(f"risk.reason.{code}" for code in ("no_bundle", "stale", "random", DECLARED_EMPTY_NOT_EMPTY, IDENTITY_UNREAD))}


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_every_catalogue_has_the_risk_keys(path: Path) -> None:
    assert len(CATALOGUES) == 6
    missing = KEYS - set(json.loads(path.read_text(encoding="utf-8")))
    assert not missing, f"{path}: {sorted(missing)}"
