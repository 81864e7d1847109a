"""The station screen shows a legal hold from the hub on the record it holds, and nothing on one it does not."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync import retention
from edge.web.demo import StationHarness
from station_browser import ARTIFACTS, BROWSER_ONLY, OFFICER, commit_suspect, download_page as page, sign_in, station  # noqa: F401

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = BROWSER_ONLY
HUB = Ed25519PrivateKey.generate()


def test_a_held_record_shows_the_hold_badge(station: StationHarness, page: Any) -> None:  # noqa: F811
    sign_in(page, station, OFFICER)
    rid = commit_suspect(station, 41)
    page.wait_for_selector(f"#scan[data-loaded-id='{rid}']")
    assert page.is_hidden("#hold-badge")
    state = retention.new_state(1, None, [retention.Hold(kind="record", value=rid)], [])
    assert station.call(lambda s: s.retention.receive(HUB.public_key(), retention.sign(HUB, state))) == "applied"
    page.evaluate(f"openCase('{rid}')")
    page.wait_for_selector("#hold-badge:not([hidden])")
    assert "Legal hold" in page.inner_text("#hold-badge")
    page.screenshot(path=ARTIFACTS / "hold-badge.png")
    other = commit_suspect(station, 42)  # a record no hold names: no badge
    page.evaluate(f"openCase('{other}')")
    page.wait_for_selector(f"#banner[data-id='{other}']")
    assert page.is_hidden("#hold-badge")
