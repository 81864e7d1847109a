"""Bad input to the hub's HTTP side (its /api and the control room's routes on the same app), on both backends:
a clear 4xx naming the parameter, never a 500 or a 503 that reads as if the database were down."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.hub import api_auth
from central_sync.hub.api import STORE_FAILED, create_app
from central_sync.hub.store import HubStore
from central_sync.schema import InspectionRecord, Verdict
from history_kit import PLATE, ingest, vehicle_pass

PASSWORD = "correct horse"


@pytest.fixture
async def hub(store: HubStore, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str, list[InspectionRecord]]]:
    """A client signed in as a supervisor, a service token, and three passes of one plate (scans held)."""
    scans = [f"scan {n}".encode() * 40 for n in range(3)]
    recs = [vehicle_pass(n + 1, Verdict.SUSPECT, n + 1, scans[n]) for n in range(3)]
    ingest(store, recs, {hashlib.sha256(s).hexdigest(): s for s in scans})
    token, line = api_auth.new_token("gate-2")
    (tmp_path / "tokens").write_text(line + "\n")
    async with ControlRoom(store, None, ControlRoomConfig()) as room:
        room.key = Ed25519PrivateKey.generate()
        auth.add_user(store, "sup1", "supervisor", PASSWORD)
        app = room.install(create_app(store, service_tokens=api_auth.ServiceTokens.load(tmp_path / "tokens")))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                     base_url="https://hub") as client:
            assert (await client.post("/cr/api/login", json={"username": "sup1", "password": PASSWORD})).status_code == 200
            yield client, token, recs


@pytest.mark.parametrize("path, name", [
    ("/api/inspections?q=%00", "q"), ("/api/inspections?station=gate%00", "station"),
    ("/api/alerts?verdict=a&q=A&q=%00", "q"), ("/api/inspections/a%00b", "record_id"),
    ("/api/history/plate/A%00", "value"), ("/cr/api/alerts?q=%00", "q"), ("/cr/api/alerts/a%00", "record_id"),
    ("/cr/api/search-reports?q=seal%00", "q")])
async def test_a_nul_character_in_a_parameter_answers_422_naming_it(hub, path, name):
    """PostgreSQL refuses NUL in a text argument: the hub's /api answered 503 ("hub database ... failed", as if it
    were down) and the control room 500; SQLite answered an empty page."""
    client, token, recs = hub
    r = await client.get(path, headers={"Authorization": f"Bearer {token}"} if path.startswith("/api/") else {})
    assert r.status_code == 422, r.text
    assert f"parameter {name!r} holds a NUL character" in r.json()["detail"], r.text
    after = await client.get("/api/inspections", headers={"Authorization": f"Bearer {token}"})  # the hub still answers
    assert after.status_code == 200 and len(after.json()) == 3, after.text


@pytest.mark.parametrize("selection", [{"record_ids": ["a\x00b"]}, {"kind": "plate", "value": PLATE + "\x00"}])
async def test_a_case_selection_with_a_nul_character_matches_nothing(hub, selection):
    """Was 500 on PostgreSQL (its refusal of the NUL unhandled); now the control room's usual 'cannot be exported'."""
    client, _, recs = hub
    r = await client.post("/cr/api/case-bundles", json={**selection, "reason": "inquiry 7"})
    assert r.status_code == 404, r.text
    assert "a\\u0000b is not in the hub database" in r.text or "no record in the hub database matches" in r.text
    ok = await client.post("/cr/api/case-bundles", json={"kind": "plate", "value": PLATE, "reason": "inquiry 7"})
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/zip", ok.text


async def test_a_failed_store_read_answers_503_without_the_databases_message(hub, store, capsys):
    """The /api's 503 carried the database's message (its URL: host and schema, or the file's path; the SQL's
    complaint) to every client, and the control room's routes answered 500; now both say 503 in one sentence and
    the hub's log keeps the cause."""
    client, token, _ = hub
    store.run_in_transaction(lambda cur: cur.execute("ALTER TABLE records RENAME TO records_away"))
    for path in ("/api/inspections", f"/api/history/plate/{PLATE}", "/cr/api/alerts", "/cr/api/alerts/x"):
        r = await client.get(path, headers={"Authorization": f"Bearer {token}"} if path.startswith("/api/") else {})
        assert r.status_code == 503, (path, r.text)
        assert r.json() == {"detail": STORE_FAILED}, (path, r.text)
    logged = capsys.readouterr().out
    assert logged.count("hub.api_store_error") == 4 and "records" in logged and "path=/cr/api/alerts/x" in logged, logged
