"""The control room's last refusals that answered English only, or a sentence translated on the hub into the user's
saved language: each now carries a code the page translates in the language it shows and its values
(central_sync/control_room/refusals.py), the English sentence kept as `detail` for the API, the audit and the log.
Over a real SQLite hub store with records ingested through the hub's real ingest path."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from central_sync.control_room import ControlRoom, ControlRoomConfig, audit, auth
from central_sync.control_room.db import execute
from central_sync.control_room.i18n import LANGS, catalogue
from central_sync.devtools import make_record
from central_sync.hub.api import create_app
from central_sync.hub.store import HubStore, open_store
from central_sync.schema import Verdict
from test_control_room_api import PASSWORD, ingest

JUNK_SCAN = b"not a scan file" * 8


def translated(code: str) -> None:
    """Every language has the refusal's sentence."""
    assert all(catalogue(lang).get(f"error.{code}") for lang in LANGS), code


def hold(store: HubStore, data: bytes) -> str:
    """A blob the hub holds as if its station had sent it; its sha256."""
    sha = hashlib.sha256(data).hexdigest()
    execute(store, "INSERT INTO blobs (sha256, size, station, data, committed_at) VALUES (?,?,?,?,?)",
            (sha, len(data), "gate-1", data, 0.0))
    return sha


@pytest.fixture
async def hub(tmp_path: Path):
    """A hub with one alert whose scan it holds but cannot read, one whose scan it does not hold yet, and users
    whose saved language is zh-Hant (a refusal translated into it read Chinese on a page shown in English)."""
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(session_idle_s=60)) as room:
        for name, role in (("op1", "operator"), ("sup1", "supervisor"), ("adm1", "admin")):
            auth.add_user(store, name, role, PASSWORD, lang="zh-Hant")
        sha = hold(store, JUNK_SCAN)
        room.recs = [make_record("gate-1", 1, Verdict.SUSPECT, scan_sha=sha),
                     make_record("gate-1", 2, Verdict.SUSPECT, scan_sha="cd" * 32)]
        ingest(store, [(r.station, "alert", r.seq, r.id, r.to_json().encode()) for r in room.recs])
        room.app = room.install(create_app(store))
        yield room
    store.close()


def client(room: ControlRoom) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=room.app), base_url="https://hub")


async def sign_in(http: httpx.AsyncClient, user: str) -> None:
    assert (await http.post("/cr/api/login", json={"username": user, "password": PASSWORD})).status_code == 200


def refusal(r: httpx.Response) -> tuple[int, str, dict]:
    return r.status_code, r.json().get("code"), r.json().get("vals")


async def test_an_unknown_alert_and_an_unreadable_scan_carry_a_code(hub) -> None:
    """An action on, or the image of, an alert the hub does not hold answered "no inspection 'nope'" (404); a scan
    the hub holds that is no scan file answered the scan reader's English sentence (422), uncounted."""
    async with client(hub) as http:
        await sign_in(http, "op1")
        for r in (await http.get("/cr/api/alerts/nope"), await http.get("/cr/api/alerts/nope/image.png"),
                  await http.post("/cr/api/alerts/nope/actions", json={"kind": "ack"})):
            assert refusal(r) == (404, "alert_unknown", {"record": "nope"})
            assert r.json()["detail"] == "no inspection 'nope' at the hub"
        bad, missing = hub.recs
        r = await http.get(f"/cr/api/alerts/{bad.id}/image.png")
        assert refusal(r) == (422, "image_unreadable", {"record": bad.id})
        assert r.json()["detail"].startswith(f"the scan of inspection {bad.id!r} cannot be read: ")
        assert hub.counters["image_unreadable"] == 1
        r = await http.get(f"/cr/api/alerts/{missing.id}/image.png")
        assert refusal(r) == (404, "no_image", {"record": missing.id})
        assert r.json()["detail"] == f"the hub holds no scan image of inspection {missing.id!r} yet"
    for code in ("alert_unknown", "image_unreadable", "no_image"):
        translated(code)


async def test_a_user_not_created_carries_a_code(hub) -> None:
    """Creating a user that exists (without replace) answered "user 'op1' exists; replacing it (role, password)
    must be asked for" (409) only."""
    async with client(hub) as http:
        await sign_in(http, "adm1")
        r = await http.post("/cr/api/users", json={"username": "op1", "role": "admin", "password": "long-enough"})
        assert refusal(r) == (409, "user.exists", {"user": "op1"})
        assert r.json()["detail"] == "user 'op1' exists; replacing it (role, password) must be asked for"
    assert execute(hub.store, "SELECT role FROM cr_users WHERE username='op1'") == [("operator",)]
    with pytest.raises(auth.AccountError) as short:
        auth.put_user(hub.store, "op9", "operator", "short")
    assert (short.value.code, short.value.vals) == ("short_password", {"user": "op9", "length": 5, "min": 8})
    with pytest.raises(auth.AccountError) as role:
        auth.put_user(hub.store, "op9", "boss", "long-enough")
    assert (role.value.code, role.value.vals) == ("bad_role", {"role": "boss", "allowed": "operator, supervisor, admin"})
    for code in ("user.exists", "user.short_password", "user.bad_role"):
        translated(code)


async def test_sign_in_role_and_assignee_refusals_are_english_with_a_code_not_the_saved_language(hub) -> None:
    """signin_required, forbidden and unknown_assignee were sentences translated on the hub (into the x-lang header's
    or the user's saved language: "控制室操作員 角色無此權限。" for op1, whose page may show English meanwhile); now
    the English sentence, its code and values, translated by the page in the language it shows."""
    rid = hub.recs[0].id
    async with client(hub) as http:
        r = await http.get("/cr/api/stations", headers={"x-lang": "zh-Hant"})
        assert (*refusal(r), r.json()["detail"]) == (401, "signin_required", {}, "no control-room session: sign in first")
        await sign_in(http, "op1")
        r = await http.post(f"/cr/api/alerts/{rid}/actions", json={"kind": "assign", "assignee": "op1"})
        assert (*refusal(r), r.json()["detail"]) == (403, "forbidden", {"role": "operator", "need": "assign"},
                                                     "the role operator lacks the permission 'assign'; nothing was done")
        r = await http.get("/cr/api/kpi")
        assert refusal(r) == (403, "forbidden", {"role": "operator", "need": "kpi"})
        await sign_in(http, "sup1")
        r = await http.post("/cr/api/commands", json={"station": "gate-1", "op": "switch_model", "args": {}})
        assert refusal(r) == (403, "forbidden", {"role": "supervisor", "need": "switch_model"})
        why = [json.loads(e["detail"])["why"] for e in audit.entries(hub.store, 20) if e["action"] == "command_refused"]
        assert why == ["the role supervisor lacks the permission 'switch_model'; nothing was done"]
        r = await http.post(f"/cr/api/alerts/{rid}/actions", json={"kind": "assign", "assignee": "op2"})
        assert (*refusal(r), r.json()["detail"]) == (422, "unknown_assignee", {"name": "op2"},
                                                     "'op2' is not an active user of this control room; nothing was"
                                                     " recorded")
    assert execute(hub.store, "SELECT count(*) FROM cr_actions") == [(0,)]
    for code in ("signin_required", "forbidden", "unknown_assignee"):
        translated(code)
