"""The risk pages' HTTP API as each role sees it: drafting, four-eyes approval, publishing with the
delivery handed the offer, declarations upload, the stations' bundle versions with stale ones
flagged, and the feedback hit rates per rule, watchlist and random selection."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.hub.api import create_app
from central_sync.hub.store import HubStore, open_store
from central_sync.risk_delivery import Offer
from central_sync.riskhub import declarations, declgen
from models.stats import wilson

PASSWORD = "correct horse"
USERS = {"op": "operator", "sam": "supervisor", "ada": "admin", "bob": "admin"}


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[tuple[dict[str, httpx.AsyncClient], HubStore, list[Offer]]]:
    """Signed-in clients per user, the store, and what was handed to delivery."""
    from central_sync import commands
    commands.generate_keypair(tmp_path / "risk.key", tmp_path / "risk.pub")
    store = open_store(str(tmp_path / "hub.sqlite3"))
    offers: list[Offer] = []
    cfg = ControlRoomConfig(risk_key=tmp_path / "risk.key", risk_expiry_s=3600)
    async with AsyncExitStack() as stack:
        room = await stack.enter_async_context(ControlRoom(store, None, cfg, risk_deliver=offers.append))
        app = room.install(create_app(store))
        clients = {}
        for name, role in USERS.items():
            auth.add_user(store, name, role, PASSWORD)
            client = await stack.enter_async_context(httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                                       base_url="https://hub"))
            assert (await client.post("/cr/api/login", json={"username": name, "password": PASSWORD})).status_code == 200
            clients[name] = client
        yield clients, store, offers


async def draft(client: httpx.AsyncClient, op: str, payload: dict) -> httpx.Response:
    return await client.post("/cr/api/risk/drafts", json={"op": op, "payload": payload})


LIST = {"id": "plates", "kind": "plate", "name": "Plates", "lane": "red", "owner": "sam"}


async def test_four_eyes_over_http(hub: tuple[dict[str, httpx.AsyncClient], HubStore, list[Offer]]) -> None:
    c, store, offers = hub
    assert (await draft(c["op"], "watchlist.put", LIST)).status_code == 403
    d = (await draft(c["sam"], "watchlist.put", LIST)).json()
    assert (await c["sam"].post(f"/cr/api/risk/drafts/{d['id']}/approve")).status_code == 403  # supervisors draft only
    assert (await c["ada"].post(f"/cr/api/risk/drafts/{d['id']}/approve")).status_code == 200
    own = (await draft(c["ada"], "entry.put", {"list_id": "plates", "value": "AB 1", "reason": "r", "owner": "ada"})).json()
    refused = await c["ada"].post(f"/cr/api/risk/drafts/{own['id']}/approve")
    assert refused.status_code == 403 and "ada drafted" in refused.json()["detail"]
    assert (await c["bob"].post(f"/cr/api/risk/drafts/{own['id']}/reject", json={"reason": "wrong list"})).status_code == 200
    assert (await c["bob"].post(f"/cr/api/risk/drafts/{own['id']}/approve")).status_code == 409
    bad = await draft(c["sam"], "rule.put", {"id": "r1", "lane": "purple", "when": {}})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("rule r1 draft refused")
    check = (await c["sam"].post("/cr/api/risk/rules/check", json={"rule": {"id": "r1", "lane": "purple", "when": {}}})).json()
    assert check["ok"] is False and "r1" in check["error"]
    changes = (await c["sam"].get("/cr/api/risk/changes")).json()
    assert [(x["author"], x["approver"], x["decision"]) for x in changes] == [("ada", "bob", "rejected"), ("sam", "ada", "approved")]
    assert json.loads(changes[1]["after"])["name"] == "Plates"
    audited = {r[0] for r in store.query("SELECT action FROM cr_audit")}
    assert {"risk.draft", "risk.approve", "risk.reject", "risk.four_eyes_refused"} <= audited

    assert (await c["sam"].post("/cr/api/risk/publish")).status_code == 403
    published = (await c["ada"].post("/cr/api/risk/publish")).json()
    assert published["version"] == 1 and published["entries"] == 0
    assert [o.version for o in offers] == [1]


async def test_declarations_upload_keeps_good_rows_and_lists_bad_ones(hub: tuple[dict[str, httpx.AsyncClient], HubStore, list[Offer]]) -> None:
    c, store, _ = hub
    text = declgen.to_csv(declgen.generate(5, seed=3)) + "DECX,,,Nobody,,false,12,CN,false,\n"
    r = await c["sam"].post("/cr/api/risk/declarations?format=csv", content=text.encode("utf-8-sig"))
    assert r.json() == {"accepted": 5, "refused": 1, "errors": [r.json()["errors"][0]]}
    assert r.json()["errors"][0].startswith("row 7: declaration DECX names neither a container nor a plate")
    listed = (await c["sam"].get("/cr/api/risk/declarations")).json()
    assert len(listed) == 5 and {d["ref"] for d in listed} == {d["ref"] for d in declarations.recent(store, 0)}
    assert (await c["op"].post("/cr/api/risk/declarations?format=csv", content=text)).status_code == 403
    js = await c["ada"].post("/cr/api/risk/declarations?format=json", content=declgen.to_json(declgen.generate(2, seed=4)))
    assert js.json()["accepted"] == 2


def status(station: str, version: int | None, stale: bool = False) -> tuple:
    body = {"v": 1, "station": station, "state": "online", "session": 1, "at": 1.0, "risk_version": version, "risk_stale": stale}
    return (station, "online", 1, json.dumps(body), 1.0, 1.0)


async def test_stations_on_old_or_expired_bundles_are_flagged(hub: tuple[dict[str, httpx.AsyncClient], HubStore, list[Offer]]) -> None:
    c, store, _ = hub
    await c["ada"].post("/cr/api/risk/publish")
    await c["ada"].post("/cr/api/risk/publish")
    store.run_in_transaction(lambda cur: cur.executemany(
        "INSERT INTO stations (station, state, session, status, status_at, seen_at) VALUES (?,?,?,?,?,?)",
        [status("gate-1", 2), status("gate-2", 1), status("gate-3", None), status("gate-4", 2, stale=True)]))
    store.record_bundle_ack("gate-3", 2, "ab" * 32, "refused", "unknown_key", 5.0)
    got = {s["station"]: s for s in (await c["sam"].get("/cr/api/risk/bundles")).json()["stations"]}
    assert {k: (v["stale"], v["stale_reason"]) for k, v in got.items()} == {
        "gate-1": (False, None), "gate-2": (True, "behind"), "gate-3": (True, "no_bundle"), "gate-4": (True, "expired")}
    assert (got["gate-3"]["refused_version"], got["gate-3"]["refused_code"]) == (2, "unknown_key")
    board = {s["station"]: s for s in (await c["op"].get("/cr/api/stations")).json()}  # the stations board, every role
    assert {k: (v["risk_version"], v["risk_stale"]) for k, v in board.items()} == {
        "gate-1": (2, False), "gate-2": (1, False), "gate-3": (None, False), "gate-4": (2, True)}


def inspected(store: HubStore, rid: str, risk: dict, outcome: str, n: int) -> None:
    """A record the station assessed (its `risk`) and the officer's review with the search result."""
    at = datetime(2026, 11, 1, 10, n % 60, tzinfo=UTC).timestamp()
    body = {"id": rid, "station": "gate-1", "risk": risk}
    review = {"officer": "B-7", "decided_at": "2026-11-01T10:00:00+00:00", "outcome": "threat_confirmed",
              "search": {"outcome": outcome, "goods_class": "cigarettes" if outcome == "seized" else None, "quantity": 12.0}}
    store.run_in_transaction(lambda cur: (
        cur.execute("INSERT INTO records (id, station, seq, verdict, is_alert, kind, lane, decided_ts, identities,"
                    " scan_sha256, body, committed_at, hub) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (rid, "gate-1", n, "manual", 1, "container", "1", at, "[]", None, json.dumps(body), at, "h")),
        cur.execute("INSERT INTO reviews (record_id, station, officer, decided_ts, outcome, body, committed_at)"
                    " VALUES (?,?,?,?,?,?,?)", (rid, "gate-1", "B-7", at, "threat_confirmed", json.dumps(review), at))))


async def test_hit_rates_per_rule_watchlist_and_random_selection(hub: tuple[dict[str, httpx.AsyncClient], HubStore, list[Offer]]) -> None:
    c, store, _ = hub
    rule = {"rules": [{"id": "heavy-empty", "kind": "rule", "reason": "x"}]}
    listed = {"rules": [{"id": "plate:plates", "kind": "watchlist", "reason": "x"}]}
    drawn = {"rules": [{"id": "random", "kind": "random", "reason": "x"}], "random": {"seed": "s", "draw": 0.01, "rate": 0.02, "selected": True}}
    n = 0
    for risk, seized, nothing in ((rule, 3, 7), (listed, 1, 1), (drawn, 1, 19)):
        for outcome in ["seized"] * seized + ["nothing_found"] * nothing:
            n += 1
            inspected(store, f"r{n}", risk, outcome, n)
    since = "2026-10-01T00:00:00Z"
    rates = (await c["sam"].get("/cr/api/risk/kpi", params={"since": since, "until": "2026-12-01T00:00:00Z"})).json()
    assert rates["inspections"] == 32
    got = {(r["kind"], r["id"]): (r["inspected"], r["seized"], r["rate"], r["ci_low"], r["ci_high"]) for r in rates["rates"]}
    low, high = wilson(3, 10)
    assert got[("rule", "heavy-empty")] == (10, 3, 0.3, round(low, 4), round(high, 4))
    assert got[("watchlist", "plates")][:3] == (2, 1, 0.5)
    assert got[("random", "random")][:3] == (20, 1, 0.05)
    assert (await c["op"].get("/cr/api/risk/kpi")).status_code == 403
