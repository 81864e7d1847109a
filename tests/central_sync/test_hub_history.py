"""A vehicle's history on the hub (issue 19), both backends: its passes by identity with their outcome, and
its references (clean or searched-nothing-found passes whose scan the hub holds, newest first), over the API."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from central_sync.hub import api_auth
from central_sync.hub.api import create_app
from central_sync.hub.history import pass_outcome, report_outcome
from central_sync.hub.store import HubStore, open_store
from central_sync.schema import Verdict
from history_kit import NOW, PLATE, ingest, vehicle_pass


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HubStore]:
    url = str(tmp_path / "hub.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    hub = open_store(url)
    hub.migrate()
    yield hub
    hub.close()


@pytest.fixture
async def http(store: HubStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    token, line = api_auth.new_token("gate-2")
    (tmp_path / "tokens").write_text(line + "\n")
    app = create_app(store, service_tokens=api_auth.ServiceTokens.load(tmp_path / "tokens"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://hub",
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def scan(n: int) -> bytes:
    return f"scan file {n}".encode() * 50


def seed(store: HubStore) -> dict[str, str]:
    """Six passes of one plate and one of another; the scans of all but the newest clean one are held."""
    recs = {"cleared_new": vehicle_pass(1, Verdict.CLEAR, 1, scan(1)),
            "seized": vehicle_pass(2, Verdict.SUSPECT, 2, scan(2), review="threat_confirmed"),
            "false_alarm": vehicle_pass(3, Verdict.SUSPECT, 10, scan(3), review="false_alarm"),
            "manual_open": vehicle_pass(4, Verdict.MANUAL, 12, scan(4)),
            "cleared_old": vehicle_pass(5, Verdict.CLEAR, 400, scan(5)),
            "no_scan": vehicle_pass(6, Verdict.CLEAR, 3, None),
            "other": vehicle_pass(7, Verdict.CLEAR, 1, scan(7), plate="AB 1234")}
    held = {hashlib.sha256(scan(n)).hexdigest(): scan(n) for n in (2, 3, 4, 5, 7)}
    held[hashlib.sha256(scan(1)).hexdigest()] = scan(1)
    ingest(store, list(recs.values()), held)
    return {name: r.id for name, r in recs.items()}


async def history(http: httpx.AsyncClient, kind: str, value: str, **params: Any) -> dict:
    resp = await http.get(f"/api/history/{kind}/{value}",
                          params={"since": (NOW - timedelta(days=365)).isoformat(), **params})
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_passes_newest_first_with_their_outcome(store: HubStore, http: httpx.AsyncClient) -> None:
    ids = seed(store)
    got = await history(http, "plate", "粤ZA123港")  # written without the middle dot: the same plate
    assert [p["record_id"] for p in got["passes"]] == [ids[n] for n in (
        "cleared_new", "seized", "no_scan", "false_alarm", "manual_open", "cleared_old")]
    assert [p["outcome"] for p in got["passes"]] == ["cleared", "open", "cleared", "cleared", "open", "cleared"]
    assert ids["other"] not in {p["record_id"] for p in got["passes"]}


async def test_references_are_recent_clean_passes_with_a_held_scan(store: HubStore, http: httpx.AsyncClient) -> None:
    ids = seed(store)
    got = await history(http, "plate", PLATE)
    # not the threat confirmed one, nor the open manual one, nor the one without a scan, nor the 400-day-old one
    assert [p["record_id"] for p in got["references"]] == [ids["cleared_new"], ids["false_alarm"]]
    assert got["references"][0]["scan_sha256"] == hashlib.sha256(scan(1)).hexdigest()
    one = await history(http, "plate", PLATE, count=1)
    assert [p["record_id"] for p in one["references"]] == [ids["cleared_new"]]
    image = await http.get(f"/api/images/{one['references'][0]['scan_sha256']}")
    assert image.status_code == 200 and image.content == scan(1)
    assert (await history(http, "plate", "ZZ 9999"))["references"] == []


async def test_a_reference_needs_the_scan_on_the_hub(store: HubStore, http: httpx.AsyncClient) -> None:
    rec = vehicle_pass(1, Verdict.CLEAR, 1, scan(1))
    ingest(store, [rec])  # the record arrived, its image not yet
    got = await history(http, "plate", PLATE)
    assert [p["record_id"] for p in got["passes"]] == [rec.id] and got["references"] == []


async def test_history_is_kept_by_vehicle_identities_only(store: HubStore, http: httpx.AsyncClient) -> None:
    resp = await http.get("/api/history/badge/1234")
    assert resp.status_code == 422 and "not by 'badge'" in resp.text
    assert (await http.get("/api/history/plate/AB1", headers={"Authorization": "Bearer nope"})).status_code == 401


def test_a_search_report_decides_the_outcome() -> None:
    signed = {"badge": "1", "role": "officer"}
    assert report_outcome([]) is None
    assert pass_outcome({"verdict": "suspect", "search_reports": [{"version": 1, "outcome": "nothing_found"}]}) \
        == "nothing_found"
    seizure = {"version": 2, "outcome": "seizure", "countersigned": signed}
    assert pass_outcome({"verdict": "clear", "search_reports": [{"version": 1, "outcome": "nothing_found"}, seizure]}) \
        == "seizure"
    assert pass_outcome({"verdict": "suspect", "search_reports": [{**seizure, "countersigned": None}]}) == "open"
    assert pass_outcome({"verdict": "suspect", "review": {"outcome": "override"}}) == "open"
    assert pass_outcome({"verdict": "manual", "review": {"outcome": "cleared"}}) == "cleared"
