"""Control-room API over a real SQLite hub store: sign-in, roles, actions, search, KPIs, images, audit."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest

from central_sync.control_room import ControlRoom, ControlRoomConfig, audit, auth
from central_sync.control_room.feed import LiveFeed
from central_sync.devtools import make_record
from central_sync.hub.api import create_app
from central_sync import protocol as p
from central_sync.hub.ingest import Ingestor
from central_sync.hub.store import open_store
from central_sync.schema import DetectionOut, Identity, Review, Verdict
from models.scan import Scan

PASSWORD = "correct horse"


def scan_bytes() -> tuple[str, bytes]:
    rng = np.random.default_rng(3)
    high = rng.integers(20000, 60000, size=(120, 160), dtype=np.uint16)
    scan = Scan(high=high, low=(high * 0.8).astype(np.uint16), meta={})
    return scan.sha256(), scan.to_bytes()


def ingest(store, msgs: list[tuple]) -> None:
    """Through the hub's real ingest path, as if the messages came from the broker."""
    Ingestor(store, "hub-t", lambda *a: None).handle(
        [(p.topic(st, kind), p.encode_envelope(st, kind, n, seq, rid, body, 0.0)) for n, (st, kind, seq, rid, body) in enumerate(msgs)])


def seed(store) -> list:
    sha, data = scan_bytes()
    recs = [make_record("gate-1", 1, Verdict.SUSPECT, scan_sha=sha, tag="TAG-A"),
            make_record("gate-1", 2, Verdict.CLEAR), make_record("gate-2", 3, Verdict.MANUAL),
            make_record("gate-2", 4, Verdict.SUSPECT)]
    recs[0] = recs[0].model_copy(update={"detections": [DetectionOut(label="knife", score=0.9, box=(10, 10, 60, 50))],
                                         "identities": [Identity(kind="container", value="MSCU1234565")]})
    recs[3] = recs[3].model_copy(update={"identities": [Identity(kind="plate", value="AB1234")]})
    now = datetime.now(UTC)
    recs = [r.model_copy(update={"decided_at": now - timedelta(minutes=10 - i), "started_at": now - timedelta(minutes=10 - i, seconds=1)})
            for i, r in enumerate(recs)]
    review = Review(officer="B-17", decided_at=now, outcome="threat_confirmed", label="knife")
    ingest(store, [(r.station, "alert" if r.verdict == Verdict.SUSPECT else "inspection", r.seq, r.id, r.to_json().encode())
                   for r in recs] + [("gate-1", "review", 5, recs[0].id, review.model_dump_json().encode())])
    header = p.BlobChunkHeader(station="gate-1", msg=6, seq=1, record_id=recs[0].id, sha256=sha, index=0, count=1,
                               size=len(data), chunk_sha256=hashlib.sha256(data).hexdigest())
    Ingestor(store, "hub-t", lambda *a: None).handle([(p.blob_topic("gate-1", sha, 0), p.encode_chunk(header, data))])
    return recs


@pytest.fixture
async def room(tmp_path):
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(session_idle_s=60)) as room:
        for name, role in (("op1", "operator"), ("sup1", "supervisor"), ("adm1", "admin")):
            auth.add_user(store, name, role, PASSWORD)
        room.recs = seed(store)
        yield room


@pytest.fixture
async def client(room):
    app = room.install(create_app(room.store))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://hub") as http:
        yield http


async def sign_in(http, user: str) -> None:
    r = await http.post("/cr/api/login", json={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text


async def test_sign_in_required_and_wrong_password_refused(client):
    assert (await client.get("/cr/api/stations")).status_code == 401
    assert (await client.post("/cr/api/login", json={"username": "op1", "password": "nope-nope"})).status_code == 401
    await sign_in(client, "op1")
    me = (await client.get("/cr/api/me")).json()
    assert me["role"] == "operator" and "kpi" not in me["can"]
    await client.post("/cr/api/logout")
    assert (await client.get("/cr/api/me")).status_code == 401


async def test_session_expires_after_idle_time(room):
    user = auth.authenticate(room.store, "op1", PASSWORD)
    token = auth.open_session(room.store, user, now=1000.0)
    assert auth.session_user(room.store, token, room.cfg, now=1030.0) == user
    assert auth.session_user(room.store, token, room.cfg, now=1200.0) is None


async def test_search_by_identity_kind_station_and_state(client, room):
    await sign_in(client, "op1")
    ids = lambda r: [a["id"] for a in r.json()]
    assert ids(await client.get("/cr/api/alerts")) == [room.recs[3].id, room.recs[0].id]
    assert ids(await client.get("/cr/api/alerts", params={"q": "MSCU", "ident_kind": "container"})) == [room.recs[0].id]
    assert ids(await client.get("/cr/api/alerts", params={"q": "MSCU", "ident_kind": "plate"})) == []
    assert ids(await client.get("/cr/api/alerts", params={"station": "gate-2"})) == [room.recs[3].id]
    assert ids(await client.get("/cr/api/alerts", params={"state": "reviewed"})) == [room.recs[0].id]
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert ids(await client.get("/cr/api/alerts", params={"since": later})) == []


async def test_an_alert_in_a_state_older_than_the_pages_read_is_reached_by_show_older(client, room):
    """A search by state reads 4 x limit records a page and shows those in the state: the page of an escalated alert
    older than them was empty, and "Show older" (from the oldest alert shown: none) asked the same page again."""
    now = datetime.now(UTC)
    older = [make_record("gate-3", 10 + i, Verdict.SUSPECT).model_copy(update={"decided_at": now - timedelta(hours=2, minutes=i)})
             for i in range(12)]
    ingest(room.store, [(r.station, "alert", r.seq, r.id, r.to_json().encode()) for r in older])
    await sign_in(client, "op1")
    assert (await client.post(f"/cr/api/alerts/{older[-1].id}/actions", json={"kind": "escalate"})).status_code == 200
    shown, pages, before = [], 0, None
    while pages < 20:
        r = await client.get("/cr/api/alerts", params={"state": "escalated", "limit": 2, **({"before": before} if before else {})})
        shown += [a["id"] for a in r.json()]
        pages += 1
        if r.headers["x-more-results"] != "true":
            assert "x-next-before" not in r.headers
            break
        assert r.headers["x-next-before"] != before  # every page starts further back
        before = r.headers["x-next-before"]
    assert shown == [older[-1].id] and pages == 2  # 14 alerts, 8 read a page: the second page holds it


async def test_actions_are_stamped_and_roles_enforced(client, room):
    rid = room.recs[0].id
    await sign_in(client, "op1")
    done = (await client.post(f"/cr/api/alerts/{rid}/actions", json={"kind": "ack"})).json()
    assert done["actor"] == "op1" and done["at"] > 0
    assert (await client.post(f"/cr/api/alerts/{rid}/actions", json={"kind": "assign", "assignee": "op2"})).status_code == 403
    refused = [e for e in audit.entries(room.store, 5) if e["actor"] == "op1" and e["action"] == "refused"]
    assert refused and json.loads(refused[0]["detail"]) == {"need": "assign"}  # not only need("act")'s line
    assert (await client.get("/cr/api/assignees")).status_code == 403
    assert (await client.get("/cr/api/kpi")).status_code == 403
    assert (await client.post("/cr/api/commands", json={"station": "gate-1", "op": "request_diag"})).status_code == 403
    one = (await client.get(f"/cr/api/alerts/{rid}")).json()
    assert [(a["kind"], a["actor"]) for a in one["actions"]] == [("ack", "op1")] and one["reviews"][0]["officer"] == "B-17"
    await sign_in(client, "sup1")
    assert (await client.get("/cr/api/assignees")).json() == ["adm1", "op1", "sup1"]
    assert (await client.post(f"/cr/api/alerts/{rid}/actions", json={"kind": "assign", "assignee": "op1"})).status_code == 200
    typo = await client.post(f"/cr/api/alerts/{rid}/actions", json={"kind": "assign", "assignee": "op2"})
    assert (typo.status_code, typo.json()["code"], typo.json()["vals"]) == (422, "unknown_assignee", {"name": "op2"})
    assert (await client.post("/cr/api/commands", json={"station": "gate-1", "op": "request_diag"})).status_code == 503


async def test_an_empty_or_over_long_comment_is_refused_with_a_code_and_nothing_recorded(client, room):
    """An empty comment was recorded ("Comment by op1" and nothing); one over 2000 characters answered pydantic's
    JSON, which the page showed as it came. Both: 422, one sentence and a code the page translates."""
    await sign_in(client, "op1")
    rid = room.recs[0].id
    empty = await client.post(f"/cr/api/alerts/{rid}/actions", json={"kind": "comment", "text": "  "})
    long = await client.post(f"/cr/api/alerts/{rid}/actions", json={"kind": "comment", "text": "x" * 2001})
    assert (empty.status_code, empty.json()) == (422, {"detail": "a comment needs text; nothing was recorded",
                                                      "code": "comment_empty", "vals": {}})
    assert (long.status_code, long.json()["code"], long.json()["vals"]) == (422, "text_too_long", {"length": "2001", "max": "2000"})
    assert long.json()["detail"] == "the text has 2001 characters, at most 2000 are allowed; nothing was recorded"
    assert room.store.query("SELECT kind FROM cr_actions") == []
    assert (await client.post(f"/cr/api/alerts/{rid}/actions", json={"kind": "ack"})).status_code == 200  # no text needed
    assert (await client.post(f"/cr/api/alerts/{rid}/actions", json={"kind": "comment", "text": "x" * 2000})).status_code == 200


async def test_a_command_refused_for_the_role_or_with_commands_off_is_audited_with_its_station_and_counted(client, room):
    """docs/remote-commands.md: every refusal is audited as `command_refused` and counted by status. A supervisor's
    model switch was audited as a generic `refused` of /cr/api/commands (no station, no operation) and not counted;
    a command while the hub has no key or broker link (503) was neither audited nor counted."""
    await sign_in(client, "sup1")
    switch = await client.post("/cr/api/commands", json={"station": "gate-1", "op": "switch_model", "args": {"sha256": "ab" * 32}})
    assert switch.status_code == 403
    off = await client.post("/cr/api/commands", json={"station": "gate-1", "op": "request_diag"})
    assert off.status_code == 503 and off.json()["detail"] == ("the hub has no signing key or no broker link; commands"
                                                               " are disabled; nothing was sent to gate-1")
    assert (off.json()["code"], off.json()["vals"]) == ("command.disabled", {"station": "gate-1"})  # the screen's translation
    got = [(e["actor"], e["action"], e["object"], json.loads(e["detail"])) for e in audit.entries(room.store, 10)
           if e["action"] == "command_refused"]
    assert got == [("sup1", "command_refused", "gate-1", {"op": "request_diag", "why": off.json()["detail"]}),
                   ("sup1", "command_refused", "gate-1", {"op": "switch_model", "why": switch.json()["detail"]})]
    assert room.counters == {"command_refused_403": 1, "command_refused_503": 1}


async def test_a_command_the_broker_link_cannot_take_is_refused_with_a_code_audited_and_counted(tmp_path):
    """With the hub's broker link stopped, a command was answered 503 `command.not_sent` with the link's English
    sentence as the translation's value (the Chinese page read "... 發送指令：command link cr-1 is not running;
    cannot publish to ...") and was neither audited nor counted. Now its values are the station only, and it is
    audited as `command_refused` and counted like every other refusal; and the command, signed and stored before the
    publish failed, is no longer left in the list as sent (it showed "expired without a report" five minutes later)."""
    from central_sync import commands as c
    from central_sync.config import BrokerConfig
    from central_sync.devtools import free_port
    c.generate_keypair(tmp_path / "hub.key", tmp_path / "hub.pub")
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, BrokerConfig(port=free_port()), ControlRoomConfig(
            signing_key=tmp_path / "hub.key", client_id="cr-1")) as room:
        auth.add_user(store, "sup1", "supervisor", PASSWORD)
        Ingestor(store, "hub-t", lambda *a: None).handle([(p.topic("gate-1", "status"), p.StatusMsg(
            station="gate-1", state="online", session=1, at=datetime.now(UTC).timestamp()).model_dump_json().encode())])
        assert room.link is not None
        await room.link.__aexit__(None, None, None)  # the link stopped (the hub shutting down)
        app = room.install(create_app(store))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://hub") as http:
            await sign_in(http, "sup1")
            r = await http.post("/cr/api/commands", json={"station": "gate-1", "op": "set_tip_rate", "args": {"rate": 0.02}})
        assert r.status_code == 503 and (r.json()["code"], r.json()["vals"]) == ("command.not_sent", {"station": "gate-1"})
        assert r.json()["detail"].startswith("command link cr-1 is not running") and "nothing was sent to gate-1" in r.json()["detail"]
        got = [(e["action"], e["object"], json.loads(e["detail"])["op"]) for e in audit.entries(store, 10)
               if e["action"] == "command_refused"]
        assert got == [("command_refused", "gate-1", "set_tip_rate")] and room.counters == {"command_refused_503": 1}
        assert store.query("SELECT count(*) FROM cr_commands") == [(0,)]  # nothing listed as sent


async def test_retention_risk_and_case_refusals_carry_a_code_the_screen_translates(client, room):
    """The retention, risk and case routes answered plain-text refusals: English for risk ("adm1 drafted ... and may
    not approve it; another user must"), and for holds and cases a sentence translated once by the hub in the user's
    language with the English reason inside ("無可扣留：record nope is not in the hub database: nothing to hold。").
    Now each answers a code and its values beside the English sentence, as commands do, and the page translates it."""
    import re
    from central_sync.control_room.i18n import LANGS, catalogue
    await sign_in(client, "adm1")
    list_ = {"id": "plates", "kind": "plate", "name": "Plates", "lane": "red", "owner": "adm1"}
    drafted = (await client.post("/cr/api/risk/drafts", json={"op": "watchlist.put", "payload": list_})).json()
    calls = [("post", "/cr/api/holds/h0/release", {"reason": "court"}),
             ("post", "/cr/api/holds", {"kind": "record", "value": "nope", "reason": "court"}),
             ("post", "/cr/api/holds", {"kind": "plate", "value": "AB1234", "reason": "  "}),
             ("post", "/cr/api/case-bundles", {"record_ids": [room.recs[0].id], "reason": ""}),
             ("post", "/cr/api/case-bundles", {"record_ids": [room.recs[0].id], "reason": "court order 7"}),
             ("post", f"/cr/api/risk/drafts/{drafted['id']}/approve", None),
             ("post", "/cr/api/risk/drafts/d0/reject", {"reason": "no"}),
             ("post", "/cr/api/risk/drafts", {"op": "entry.put", "payload": {"list_id": "cars", "value": "AB1234",
                                                                            "reason": "tip-off", "owner": "adm1"}}),
             ("post", "/cr/api/risk/publish", None),
             ("post", "/cr/api/risk/declarations?format=csv", b"plate\n\xff\xfe")]
    got = []
    for method, path, body in calls:
        kw = {"content": body} if isinstance(body, bytes) else {"json": body} if body is not None else {}
        r = await client.request(method, path, **kw)
        got.append((r.status_code, r.json().get("code"), r.json().get("vals")))
    assert got == [(409, "hold.unknown_hold", {"id": "h0"}), (404, "hold.unknown_record", {"record": "nope"}),
                   (422, "hold.reason_required", {}), (422, "reason_required", {}), (503, "no_signing_key", {}),
                   (403, "risk.four_eyes", {"user": "adm1", "draft": drafted["id"], "target": "watchlist:plates"}),
                   (409, "risk.unknown_draft", {"draft": "d0"}), (422, "risk.no_watchlist", {"list": "cars"}),
                   (503, "risk.no_key", {}), (422, "risk.upload_not_utf8", {"at": "6"})]
    for _, code, vals in got:
        assert all(f"error.{code}" in catalogue(lang) for lang in LANGS), code
        said = catalogue("zh-Hant")[f"error.{code}"].format(**vals)
        assert set(re.findall(r"[A-Za-z]{2,}", said)) <= set(re.findall(r"[A-Za-z]{2,}", " ".join(vals.values()))) | {
            "risk", "key", "signing", "UTF"}, said  # a setting's name, an encoding


async def test_image_is_a_png_in_material_colours(client, room):
    await sign_in(client, "op1")
    r = await client.get(f"/cr/api/alerts/{room.recs[0].id}/image.png")
    assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    import cv2
    img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (120, 160, 3) and tuple(img[10, 30]) == (0, 0, 255)  # the box edge is red
    assert (await client.get(f"/cr/api/alerts/{room.recs[3].id}/image.png")).status_code == 404


async def test_kpis_and_csv(client, room):
    await sign_in(client, "sup1")
    k = (await client.get("/cr/api/kpi")).json()
    by = {s["station"]: s for s in k["summary"]}
    assert by["gate-1"]["items"] == 2 and by["gate-1"]["suspect_rate"] == 0.5 and by["gate-1"]["agreement"] == 1.0
    assert by["gate-2"]["manual_rate"] == 0.5 and by["gate-1"]["verdict_ms_p50"] == 1000.0
    assert k["officers"] == [{"officer": "B-17", "reviewed": 1, "agree": 1}] and k["charts"]["throughput"].startswith("<svg")
    csv = (await client.get("/cr/api/kpi.csv")).text
    assert csv.splitlines()[0].startswith("station,items,suspect") and "gate-2,2,1,1" in csv


async def test_every_view_is_audited_and_tampering_is_found(client, room):
    await sign_in(client, "sup1")
    await client.get("/cr/api/stations")
    await client.get(f"/cr/api/alerts/{room.recs[0].id}/image.png")
    log = (await client.get("/cr/api/audit")).json()
    assert [e["action"] for e in log[:3]] == ["get:audit", "get:view", "get:view"]
    assert log[1]["object"].endswith("image.png") and log[-1]["action"] == "sign_in"
    assert (await client.get("/cr/api/audit/verify")).json()["first_broken"] is None
    conn = sqlite3.connect(room.store.path)
    conn.execute("DROP TRIGGER cr_audit_no_update")
    conn.execute("UPDATE cr_audit SET actor='mallory' WHERE seq=2")
    conn.commit()
    checked, broken, why = audit.verify(room.store)
    assert broken == 2 and "changed" in why


async def test_feed_announces_new_alerts_and_actions(room):
    feed = LiveFeed(room.store, room.cfg)
    feed._marks = dict.fromkeys(feed._marks, 0.0)
    events = feed.poll()
    kinds = [e["type"] for e in events]
    assert kinds.count("alert") == 2 and kinds.count("review") == 1 and kinds[-1] == "stations"
    assert [e for e in feed.poll() if e["type"] != "stations"] == []  # nothing is announced twice


def test_admin_cli_keys_users_and_audit(tmp_path, capsys):
    from central_sync.control_room.admin import main
    from central_sync.commands import load_private_key, load_public_key
    assert main(["keygen", "--private", str(tmp_path / "k"), "--public", str(tmp_path / "k.pub")]) == 0
    assert load_private_key(tmp_path / "k").public_key() == load_public_key(tmp_path / "k.pub")
    assert main(["keygen", "--private", str(tmp_path / "k"), "--public", str(tmp_path / "k.pub")]) == 1
    (tmp_path / "pw").write_text("long enough\n")
    db_url = str(tmp_path / "hub.sqlite3")
    assert main(["add-user", "--db", db_url, "boss", "admin", "--password-file", str(tmp_path / "pw")]) == 0
    assert auth.authenticate(open_store(db_url), "boss", "long enough").role == "admin"
    (tmp_path / "pw").write_text("short\n")
    assert main(["add-user", "--db", db_url, "x", "admin", "--password-file", str(tmp_path / "pw")]) == 1
    assert main(["verify-audit", "--db", db_url]) == 0
    assert "chain intact" in capsys.readouterr().out


async def test_same_sql_on_postgresql(pg_url):
    from central_sync.control_room import db
    store = open_store(pg_url)
    db.migrate(store)
    recs = seed_records_only(store)
    user = auth.add_user(store, "op1", "operator", PASSWORD)
    assert auth.session_user(store, auth.open_session(store, user), ControlRoomConfig()) == user
    for n in range(3):
        audit.append(store, "op1", "get:view", f"/x/{n}")
    assert audit.verify(store) == (3, None, "")
    from central_sync.control_room import queries
    assert [a["id"] for a in queries.search_alerts(store, q="MSCU", ident_kind="container")] == [recs[0].id]
    store.close()


def seed_records_only(store) -> list:
    recs = [make_record("gate-1", 1, Verdict.SUSPECT).model_copy(update={"identities": [Identity(kind="container", value="MSCU1")]})]
    ingest(store, [(r.station, "alert", r.seq, r.id, r.to_json().encode()) for r in recs])
    return recs


def test_board_figures_count_budget_misses_and_faults_of_the_last_day():
    from central_sync.control_room.feed import StationFigures
    figs, now = StationFigures(), datetime.now(UTC)
    for hours, reason in ((1, "budget_missed"), (2, "device_fault"), (30, "budget_missed"), (1, "clear")):
        rec = make_record("gate-1", hours, Verdict.MANUAL).model_copy(update={"reason": reason, "decided_at": now - timedelta(hours=hours)})
        figs.add(json.loads(rec.to_json()))
    assert figs.view("gate-1", now.timestamp()) == {"model": None, "budget_missed_24h": 1, "device_fault_24h": 1}


def test_concurrent_appends_keep_one_unbroken_chain(tmp_path):
    from concurrent.futures import ThreadPoolExecutor
    from central_sync.control_room import db
    store = open_store(str(tmp_path / "hub.sqlite3"))
    db.migrate(store)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: audit.append(store, f"u{n % 4}", "get:view", f"/x/{n}"), range(60)))
    assert audit.verify(store) == (60, None, "")


async def test_an_existing_user_is_replaced_only_when_asked_audited_and_its_sessions_end(room):
    """Posting an existing username silently replaced the account (role, password, active again) with only a
    generic audit line, and its sessions lived on: one admin could take over another's account and approve their
    own risk draft as them."""
    app = room.install(create_app(room.store))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://hub") as adm, \
            httpx.AsyncClient(transport=transport, base_url="https://hub") as victim:
        auth.add_user(room.store, "adm2", "admin", PASSWORD)
        await sign_in(adm, "adm1")
        await sign_in(victim, "adm2")
        body = {"username": "adm2", "role": "admin", "password": "taken-over-1"}
        r = await adm.post("/cr/api/users", json=body)
        assert r.status_code == 409 and "adm2" in r.json()["detail"]
        assert (await victim.get("/cr/api/me")).status_code == 200  # nothing changed
        r = await adm.post("/cr/api/users", json=body | {"replace": True})
        assert r.status_code == 200 and r.json()["replaced"] is True
        assert (await victim.get("/cr/api/me")).status_code == 401  # the old session ended with the old password
        r = await adm.post("/cr/api/users", json={"username": "new1", "role": "operator", "password": "long-enough"})
        assert r.status_code == 200 and r.json()["replaced"] is False
    done = [(e["actor"], e["action"], e["object"], json.loads(e["detail"])["existed"])
            for e in audit.entries(room.store, 50) if e["action"].startswith("user.")]
    assert sorted(done) == [("adm1", "user.create", "new1", False), ("adm1", "user.replace", "adm2", True)]


@pytest.mark.parametrize("path, query", [
    ("/cr/api/alerts", {"since": "0001-01-01T00:00:00"}), ("/cr/api/kpi", {"until": "0001-01-01T00:00:00"}),
    ("/cr/api/kpi/tip", {"since": "0001-01-01T00:00:00"}), ("/api/inspections", {"since": "0001-01-01T00:00:00"}),
    ("/api/alerts", {"until": "0001-01-01T00:00:00"}), ("/cr/api/audit", {"before": 2**63}),
    ("/api/inspections", {"offset": 2**63}), ("/api/alerts", {"offset": 2**63})])
async def test_out_of_range_times_and_numbers_answer_422_and_naive_times_are_utc(client, path, query):
    """A naive year-one time made timestamp() raise (500); an offset past 2**63 answered 503 as if the database
    were down; an audit page `before` 2**63 answered 500."""
    await sign_in(client, "adm1")
    r = await client.get(path, params=query)
    if "offset" in query or "before" in query:
        assert r.status_code == 422, r.text
    else:
        assert r.status_code == 200, r.text  # a time without a zone is read as UTC: nothing before year 1
    later = await client.get("/cr/api/alerts", params={"since": "2000-01-01T00:00:00"})
    assert later.status_code == 200 and later.json(), later.text
