"""API tests of the station screen against a real Store: every role boundary, decisions, audit, export."""

import asyncio
import io
import json
import tempfile
import time
import zipfile
from datetime import timedelta, timezone

import numpy as np
import pytest
from fastapi.testclient import TestClient

from central_sync.schema import Verdict
from edge import audit
from edge.auth import add_user
from edge.context import StationContext
from edge.events import EventBus
from edge.store import Store, StoreWriter
from edge.web.app import create_app, ensure_schema
from edge.web.config import TipConfig, WebConfig
from edge.web.demo import DEMO_USERS, record_for, synthetic_scan

OFFICER, SUPERVISOR, TECHNICIAN = ((b, p) for b, _, _, p in DEMO_USERS)


class Station:
    def __init__(self, tmp_path, cfg=None):
        self.store = Store(tmp_path / "data", station="t-1").open()
        ensure_schema(self.store)
        for badge, name, role, pin in DEMO_USERS:
            add_user(self.store, badge, name, role, pin)
        self.writer = StoreWriter(self.store)
        self.events = EventBus()
        ctx = StationContext("t-1", "conveyor", "1", 400.0, self.writer, self.events,
                             lambda: {"devices": {"plc": {"state": "ok", "detail": ""}}, "model": {}, "sync": {},
                                      "budget_misses": 2, "alarms": [["plc_lost", "PLC did not answer"]]})
        self.app = create_app(ctx, cfg or WebConfig(tip=TipConfig(enabled=False)))
        self.rng = np.random.default_rng(7)
        self.clients = []

    def item(self, verdict=Verdict.SUSPECT, reason="detection", store_scan=True):
        scan, truth = synthetic_scan(self.rng, threat=verdict is Verdict.SUSPECT)
        record = record_for(scan, verdict, reason, truth, station="t-1")
        stored = self.store.put_scan(record.scan.sha256, scan.to_bytes()) if store_scan else False
        return self.store.commit(record, stored)

    def client(self, who=None):
        client = TestClient(self.app)
        client.__enter__()
        self.clients.append(client)
        if who:
            r = client.post("/api/signin", json={"badge": who[0], "pin": who[1]})
            assert r.status_code == 200, r.text
        return client


@pytest.fixture
def station(tmp_path):
    st = Station(tmp_path)
    yield st
    for client in st.clients:
        client.__exit__(None, None, None)
    asyncio.run(st.writer.__aexit__(None, None, None))  # closes the store and its thread


def test_healthz_answers_without_sign_in(station):
    r = station.client().get("/healthz")
    assert r.status_code == 200 and r.json()["budget_misses"] == 2


@pytest.mark.parametrize("path", ["/api/queue", "/api/history", "/api/stream", "/api/health", "/api/diagnostics",
                                  "/api/audit", "/api/tip/stats", "/api/export.zip", "/api/me"])
def test_everything_but_healthz_needs_sign_in(station, path):
    assert station.client().get(path).status_code == 401


def at(station, host):
    client = TestClient(station.app, client=(host, 50000))
    client.__enter__()
    station.clients.append(client)
    return client


def test_wrong_pins_lock_the_badge_for_that_client_only(station):
    stranger, kiosk = at(station, "10.9.9.9"), at(station, "127.0.0.1")
    for _ in range(5):
        r = stranger.post("/api/signin", json={"badge": OFFICER[0], "pin": "0000"})
        assert r.status_code == 401 and r.json()["detail"] == "signin_refused"
    r = stranger.post("/api/signin", json={"badge": OFFICER[0], "pin": OFFICER[1]})
    assert r.status_code == 429 and r.json()["detail"] == "signin_locked" and int(r.headers["retry-after"]) > 0
    assert kiosk.post("/api/signin", json={"badge": OFFICER[0], "pin": OFFICER[1]}).status_code == 200
    actions = [e.action for e in audit.entries(station.store.conn)]
    assert actions.count("signin.refused") == 1 and actions.count("signin.locked") == 1  # in aggregate
    assert actions.count("signin") == 1


def test_a_pin_guessing_client_is_rate_limited_without_an_audit_row_per_try(station):
    stranger = at(station, "10.9.9.9")
    badges = [f"{n:08X}" for n in range(200)]
    codes = [stranger.post("/api/signin", json={"badge": b, "pin": "1234"}).status_code for b in badges]
    assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}
    assert stranger.post("/api/signin", json={"badge": OFFICER[0], "pin": OFFICER[1]}).status_code == 429
    actions = [e.action for e in audit.entries(station.store.conn, limit=10_000)]
    assert actions.count("signin.refused") == 19 and actions.count("signin.client_limit") == 1
    assert station.app.state.web.guard.counters["throttled"] == 181


def test_an_unknown_badge_costs_the_same_hash_check_as_a_wrong_pin(station, monkeypatch):
    from edge import auth
    checks = []
    real = auth.check_secret
    monkeypatch.setattr(auth, "check_secret", lambda pin, stored: checks.append(stored) or real(pin, stored))
    for badge in (OFFICER[0], "DEADBEEF", "not-hex"):
        with pytest.raises(auth.AuthError, match="badge or PIN not accepted"):
            auth.authenticate(station.store.conn, badge, "0000")
    assert len(checks) == 3


def test_badge_alone_does_not_sign_in(station):
    r = station.client().post("/api/signin", json={"badge": OFFICER[0], "pin": ""})
    assert r.status_code == 401


def test_technician_gets_no_case_data(station):
    rec = station.item()
    c = station.client(TECHNICIAN)
    for path in (f"/api/cases/{rec.id}/image.png", f"/api/cases/{rec.id}", "/api/queue", "/api/history",
                 "/api/stream", "/api/export.zip", "/api/tip/stats", "/api/audit"):
        assert c.get(path).status_code == 403, path
    assert c.post(f"/api/cases/{rec.id}/decision", json={"outcome": "false_alarm"}).status_code == 403
    assert c.get("/api/diagnostics").status_code == 200
    health = c.get("/api/health").json()
    assert health["devices"]["plc"]["state"] == "ok" and health["alarms"] == [["plc_lost", "PLC did not answer"]]
    assert not [e for e in audit.entries(station.store.conn) if e.action == "case.image_view"]


def test_officer_cannot_reach_technician_or_supervisor_pages(station):
    rec = station.item()
    c = station.client(OFFICER)
    for path in ("/api/diagnostics", "/api/audit", "/api/audit/verify", "/api/export.zip"):
        assert c.get(path).status_code == 403, path
    r = c.post(f"/api/cases/{rec.id}/decision", json={"outcome": "override", "note": "because"})
    assert r.status_code == 403
    assert station.store.get(rec.id).review is None


def test_officer_sees_queue_and_every_image_view_is_audited(station):
    rec = station.item()
    c = station.client(OFFICER)
    assert [i["id"] for i in c.get("/api/queue").json()["items"]] == [rec.id]
    for mode in ("colour", "grey", "organic", "inorganic", "negative"):
        r = c.get(f"/api/cases/{rec.id}/image.png", params={"mode": mode})
        assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert c.get(f"/api/cases/{rec.id}/image.png", params={"mode": "xray-vision"}).status_code == 422
    views = [e for e in audit.entries(station.store.conn, rec.id) if e.action == "case.image_view"]
    assert sorted(json.loads(e.detail)["mode"] for e in views) == ["colour", "grey", "inorganic", "negative", "organic"]
    assert all(e.actor == OFFICER[0] for e in views)


def test_decision_is_stored_synced_audited_and_final_for_officers(station):
    rec = station.item()
    c = station.client(OFFICER)
    body = {"outcome": "threat_confirmed", "label": "firearm", "boxes": [[10, 20, 110, 80]], "note": "in side pocket"}
    r = c.post(f"/api/cases/{rec.id}/decision", json=body)
    assert r.status_code == 200
    review = station.store.get(rec.id).review
    assert (review.officer, review.outcome, review.label, review.boxes) == (OFFICER[0], "threat_confirmed", "firearm",
                                                                           [(10, 20, 110, 80)])
    kinds = [k for (k,) in station.store.conn.execute("SELECT kind FROM outbox WHERE record_id = ?", (rec.id,))]
    assert "review" in kinds
    assert c.get("/api/queue").json()["items"] == []
    trail = c.get(f"/api/cases/{rec.id}").json()["audit"]
    assert trail[0]["action"] == "case.decision" and trail[0]["detail"]["label"] == "firearm"
    again = c.post(f"/api/cases/{rec.id}/decision", json={"outcome": "false_alarm"})
    assert again.status_code == 409 and again.json()["detail"] == "already_decided"
    assert c.post(f"/api/cases/{rec.id}/decision", json={"outcome": "threat_confirmed"}).status_code == 422


def test_supervisor_overrides_with_a_reason_only(station):
    rec = station.item(Verdict.MANUAL, "budget_missed")
    c = station.client(SUPERVISOR)
    r = c.post(f"/api/cases/{rec.id}/decision", json={"outcome": "override", "note": "  "})
    assert r.status_code == 422 and r.json()["detail"] == "override_needs_reason"
    r = c.post(f"/api/cases/{rec.id}/decision", json={"outcome": "override", "note": "hand search found nothing"})
    assert r.status_code == 200
    stored = station.store.get(rec.id)
    assert stored.review.outcome == "override" and stored.verdict is Verdict.MANUAL
    assert c.get("/api/audit/verify").json() == {"ok": True, "first_broken_seq": None, "reason": None}


def test_a_decided_item_is_changed_only_by_an_override_with_its_reason_even_by_a_supervisor(station):
    """Two screens: the supervisor's still shows the item undecided when the officer confirms a threat. Before,
    the supervisor's `cleared` replaced the confirmed threat without a reason, unnoticed."""
    rec = station.item()
    officer, supervisor = station.client(OFFICER), station.client(SUPERVISOR)
    assert supervisor.get(f"/api/cases/{rec.id}").json()["review"] is None
    assert officer.post(f"/api/cases/{rec.id}/decision",
                        json={"outcome": "threat_confirmed", "label": "firearm"}).status_code == 200
    r = supervisor.post(f"/api/cases/{rec.id}/decision", json={"outcome": "cleared"})
    assert (r.status_code, r.json()["detail"]) == (409, "already_decided")
    assert station.store.get(rec.id).review.outcome == "threat_confirmed"
    r = supervisor.post(f"/api/cases/{rec.id}/decision", json={"outcome": "override", "note": "toy, checked by hand"})
    assert r.status_code == 200
    review = station.store.get(rec.id).review
    assert (review.officer, review.outcome, review.note) == (SUPERVISOR[0], "override", "toy, checked by hand")


def test_a_supervisor_confirms_a_threat_over_an_officers_cleared_and_the_record_counts_as_a_threat(station):
    """A supervisor could turn an officer's `cleared` into a threat only as `override`: the record's retention class
    stayed the verdict's (`manual`, kept shorter), DICOS said UNKNOWN. Now `threat_confirmed` with a reason replaces
    it as an officer's own would count, and the trail shows both decisions."""
    from central_sync.retention import record_class
    from edge.dicos import OPERATOR_DECISIONS

    rec = station.item(Verdict.MANUAL, "budget_missed")
    officer, supervisor = station.client(OFFICER), station.client(SUPERVISOR)
    assert officer.post(f"/api/cases/{rec.id}/decision", json={"outcome": "cleared"}).status_code == 200
    threat = {"outcome": "threat_confirmed", "label": "drugs", "boxes": [[10, 20, 110, 80]]}
    r = officer.post(f"/api/cases/{rec.id}/decision", json={**threat, "note": "looked again"})
    assert (r.status_code, r.json()["detail"]) == (409, "already_decided")  # an officer's decision stands for officers
    r = supervisor.post(f"/api/cases/{rec.id}/decision", json=threat)
    assert (r.status_code, r.json()["detail"]) == (422, "override_needs_reason")
    r = supervisor.post(f"/api/cases/{rec.id}/decision", json={**threat, "note": "dog indicated; powder found"})
    assert r.status_code == 200, r.text
    stored = station.store.get(rec.id)
    assert (stored.review.officer, stored.review.outcome, stored.review.label) == (SUPERVISOR[0], "threat_confirmed",
                                                                                   "drugs")
    assert record_class(stored.model_dump(mode="json")) == "suspect"  # kept as long as any confirmed threat
    assert OPERATOR_DECISIONS[stored.review.outcome] == "ALARM"
    trail = [e["detail"] for e in supervisor.get(f"/api/cases/{rec.id}").json()["audit"]
             if e["action"] == "case.decision"]
    assert sorted((d["outcome"], d["replaced"]) for d in trail) == [
        ("cleared", None), ("threat_confirmed", {"officer": OFFICER[0], "outcome": "cleared"})]


@pytest.mark.parametrize("body, code", [
    ({"outcome": "threat_confirmed", "label": "banana_split"}, "unknown_class"),
    ({"outcome": "threat_confirmed", "label": "firearm", "boxes": [[-90000, -90000, 90000, 90000]]}, "box_outside_scan"),
    ({"outcome": "false_alarm", "boxes": [[10, 20, 561, 80]]}, "box_outside_scan"),  # the scan is 560 wide
    ({"outcome": "false_alarm", "boxes": [[10, 20, 110, 361]]}, "box_outside_scan"),  # and 360 lines
])
def test_a_decision_naming_an_unknown_class_or_a_box_outside_the_scan_is_refused(station, body, code):
    """Before: both were stored in the review (and exported as training data)."""
    rec = station.item()
    assert rec.scan.shape == (360, 560)
    c = station.client(OFFICER)
    r = c.post(f"/api/cases/{rec.id}/decision", json=body)
    assert (r.status_code, r.json()["detail"]) == (422, code)
    assert station.store.get(rec.id).review is None
    ok = {"outcome": "threat_confirmed", "label": "pistol", "boxes": [[0, 0, 560, 360]]}  # a class the catalogue names
    assert c.post(f"/api/cases/{rec.id}/decision", json=ok).status_code == 200


def test_the_detectors_own_class_is_accepted_though_the_catalogue_does_not_name_it(station):
    rec = station.item()
    station.store.conn.execute("UPDATE inspections SET record = json_set(record, '$.detections[0].label', 'taser')"
                               " WHERE id = ?", (rec.id,))
    c = station.client(OFFICER)
    r = c.post(f"/api/cases/{rec.id}/decision", json={"outcome": "threat_confirmed", "label": "taser"})
    assert r.status_code == 200, r.text


def test_history_search_and_filters(station):
    a = station.item()
    b = station.item(Verdict.CLEAR, "clear")
    c = station.client(OFFICER)
    c.post(f"/api/cases/{a.id}/decision", json={"outcome": "false_alarm", "note": "umbrella"})
    ids = lambda **q: [i["id"] for i in c.get("/api/history", params=q).json()["items"]]  # noqa: E731
    assert ids() == [b.id, a.id]
    assert ids(verdict="suspect") == [a.id]
    assert ids(reviewed="true") == [a.id] and ids(reviewed="false") == [b.id]
    assert ids(q="umbrella") == [a.id]
    assert ids(q=b.identities[0].value) == [b.id]
    assert ids(officer=OFFICER[0]) == [a.id]
    decided = b.decided_at
    assert ids(since=decided.isoformat()) == [b.id]
    assert ids(until=a.decided_at.astimezone(timezone(timedelta(hours=8))).isoformat()) == [a.id]
    assert ids(since=decided.strftime("%Y-%m-%dT%H:%M:%S.%fZ")) == [b.id]
    assert c.get("/api/history", params={"since": "2026-01-01T00:00:00"}).status_code == 422


def test_supervisor_exports_reviewed_items_as_coco(station):
    a = station.item()
    b = station.item()
    station.item()  # not reviewed: not exported
    sup = station.client(SUPERVISOR)
    sup.post(f"/api/cases/{a.id}/decision", json={"outcome": "threat_confirmed", "label": "firearm"})
    sup.post(f"/api/cases/{b.id}/decision", json={"outcome": "false_alarm"})
    r = sup.get("/api/export.zip")
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        coco = json.loads(zf.read("annotations.json"))
        assert {i["record_id"] for i in coco["images"]} == {a.id, b.id}
        assert [c["name"] for c in coco["categories"]] == ["firearm"]
        ann = coco["annotations"]
        assert len(ann) == 1 and ann[0]["bbox"][2] > 0
        for image in coco["images"]:
            assert zf.read(image["file_name"])[:2] == b"PK"
    assert any(e.action == "export.dataset" for e in audit.entries(station.store.conn))


def test_an_export_that_could_not_be_written_is_not_audited_as_done(station, tmp_path, monkeypatch):
    """`export.dataset` was audited before the zip was begun: an export whose zip could not be written (the temporary
    folder gone, full or read-only) stood in the audit log as done, and the screen got a 500 traceback."""
    a = station.item()
    sup = station.client(SUPERVISOR)
    sup.post(f"/api/cases/{a.id}/decision", json={"outcome": "false_alarm"})
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))  # the export's temporary folder is missing
    r = sup.get("/api/export.zip")
    assert (r.status_code, r.json()["detail"]) == (507, "export_not_written")
    assert not [e for e in audit.entries(station.store.conn) if e.action == "export.dataset"]
    monkeypatch.undo()
    assert sup.get("/api/export.zip").status_code == 200
    done = [e for e in audit.entries(station.store.conn) if e.action == "export.dataset"]
    assert len(done) == 1 and json.loads(done[0].detail)["items"] == 1 and json.loads(done[0].detail)["bytes"] > 0


def test_idle_session_expires(station):
    c = station.client(OFFICER)
    assert c.get("/api/me").status_code == 200
    station.store.conn.execute("UPDATE web_sessions SET last_seen = last_seen - 16 * 60")
    assert c.get("/api/me").status_code == 401


def _idle(station, minutes: float) -> None:
    """The session's last act `minutes` ago."""
    station.store.conn.execute("UPDATE web_sessions SET last_seen = ?", (time.time() - minutes * 60,))


def test_what_the_screen_asks_by_itself_keeps_no_idle_session_alive(station):
    """The screen asks for the lane and the belt every 3 s and for each new item's images: each request restarted the
    idle timer, so a screen left alone stayed signed in under the officer's badge for the session's 12 h. The screen
    now says how long ago the officer last acted (X-Idle-S), and images and the stream restart nothing."""
    a = station.item()
    c = station.client(OFFICER)
    _idle(station, 10)
    assert c.get("/api/queue", headers={"X-Idle-S": "600"}).status_code == 200  # 10 min alone: still signed in
    for path in (f"/api/cases/{a.id}/image.png", f"/api/cases/{a.id}/scan.bin"):
        assert c.get(path).status_code == 200
    last_seen, = station.store.conn.execute("SELECT last_seen FROM web_sessions").fetchone()
    assert time.time() - last_seen > 590, "the idle timer runs from the officer's last act"
    station.store.conn.execute("UPDATE web_sessions SET last_seen = last_seen - 360")  # 6 min later, left alone
    assert c.get("/api/queue", headers={"X-Idle-S": "960"}).status_code == 401


def test_an_act_the_screen_reports_late_keeps_the_session_and_one_after_it_expired_does_not(station):
    c = station.client(OFFICER)
    _idle(station, 16)  # the last request 16 min ago; the officer touched the screen 2 min ago (no request since)
    assert c.get("/api/queue", headers={"X-Idle-S": "120"}).status_code == 200
    assert c.get("/api/queue", headers={"X-Idle-S": "ten"}).status_code == 200  # no number: an act of now
    d = station.client(SUPERVISOR)
    station.store.conn.execute("UPDATE web_sessions SET last_seen = ? WHERE badge = ?",
                               (time.time() - 16 * 60, SUPERVISOR[0]))
    # the supervisor's first act in 16 min: the session had run out before it
    assert d.get("/api/queue", headers={"X-Idle-S": "0"}).status_code == 401


def test_session_expires_after_its_maximum_even_when_busy(station):
    c = station.client(OFFICER)
    station.store.conn.execute("UPDATE web_sessions SET created_at = created_at - 12 * 3600 - 1")
    assert c.get("/api/queue").status_code == 401


def test_the_live_stream_ends_once_its_user_may_no_longer_view_cases(station, monkeypatch):
    """An officer made a technician (`edge user add` again) kept an open live stream, with every item's image and
    identities, for up to the session's 12 h: it checked only that the session existed."""
    from edge.web import sse

    monkeypatch.setattr(sse, "KEEPALIVE_S", 0.05)
    monkeypatch.setattr(sse, "POLL_S", 0.02)
    c = station.client(OFFICER)
    badge, name = next((b, n) for b, n, _, p in DEMO_USERS if b == OFFICER[0])
    events = []
    with c.stream("GET", "/api/stream") as r:
        for count, line in enumerate(r.iter_lines()):
            if line.startswith("event: "):
                events.append(line[7:])
                if events == ["hello"]:
                    add_user(station.store, badge, name, "technician", OFFICER[1])
            if "signed_out" in events or count > 400:  # a stream that goes on sends keepalives for ever
                break
    assert events == ["hello", "signed_out"]


def test_signout_ends_the_session(station):
    c = station.client(OFFICER)
    assert c.post("/api/signout").status_code == 200
    assert c.get("/api/me").status_code == 401


def test_missing_scan_is_a_clear_404(station):
    rec = station.item(store_scan=False)
    r = station.client(OFFICER).get(f"/api/cases/{rec.id}/image.png")
    assert r.status_code == 404 and r.json()["detail"] == "scan_not_stored"


def test_badge_feed_is_only_for_the_station_kiosk(station):
    assert station.client().get("/api/badge-stream").status_code == 403  # TestClient is not 127.0.0.1


def test_manual_item_cleared_after_inspection(station):
    rec = station.item(Verdict.MANUAL, "scan_incomplete")
    c = station.client(OFFICER)
    r = c.post(f"/api/cases/{rec.id}/decision", json={"outcome": "cleared", "note": "hand search"})
    assert r.status_code == 200
    assert station.store.get(rec.id).review.outcome == "cleared"


def test_unreadable_scan_file_is_named_not_a_crash(station):
    rec = station.item()
    station.store.scan_path(rec.scan.sha256).write_bytes(b"not a scan")
    c = station.client(OFFICER)
    r = c.get(f"/api/cases/{rec.id}/image.png")
    assert r.status_code == 500 and r.json()["detail"] == "scan_unreadable"
    assert c.get("/api/queue").status_code == 200


def test_served_without_lifespan_events_the_app_opens_its_database_on_first_use(station):
    client = TestClient(station.app)  # not entered: no lifespan, as the daemon serves it (lifespan="off")
    try:
        r = client.post("/api/signin", json={"badge": OFFICER[0], "pin": OFFICER[1]})
        assert r.status_code == 200
        assert client.get("/api/queue").status_code == 200
    finally:
        client.close()
        asyncio.run(station.app.state.web.close())


def test_pages_may_load_nothing_from_elsewhere(station):
    r = station.client().get("/")
    assert r.status_code == 200 and "default-src 'self'" in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"] and r.headers["x-frame-options"] == "DENY"
    assert "http" not in r.text.replace("http://www.w3.org", "")  # no CDN: the appliance has no internet


def test_latency_shown_against_the_budget_excludes_acquisition_and_actuation(station):
    rec = station.item()
    item = station.client(OFFICER).get(f"/api/cases/{rec.id}").json()
    stages = rec.latencies_ms
    assert item["latency_verdict_ms"] == round(stages["detect"] + stages["decide"], 1) < stages["acquire"]


def test_the_daemons_stop_event_is_the_apps(station):
    stop = asyncio.Event()
    ctx = StationContext("t-1", "conveyor", "1", 400.0, station.writer, station.events, dict,
                         stopping=stop)
    assert create_app(ctx, WebConfig()).state.web.stopping is stop


@pytest.mark.parametrize("boxes", [b"[[1e999,1,2,3]]", b"[[0,0,1,-1e999]]", b"[[1e300,1,2e300,3]]", b"[[50,20,10,80]]"])
def test_a_box_that_is_not_a_finite_ordered_box_is_refused_and_the_record_stays_readable(station, boxes):
    """1e999 is valid JSON and parsed as infinity: stored as null, it left the record unreadable (its case, the
    history, the export and a supervisor's override answered 500; the hub refused the synced review)."""
    rec = station.item()
    c = station.client(OFFICER)
    body = b'{"outcome":"threat_confirmed","label":"firearm","boxes":' + boxes + b"}"
    r = c.post(f"/api/cases/{rec.id}/decision", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert station.store.get(rec.id).review is None
    assert c.get(f"/api/cases/{rec.id}").status_code == 200 and c.get("/api/history").status_code == 200
    r = c.post(f"/api/cases/{rec.id}/screen", content=b'{"flagged":true,"box":' + boxes[1:-1] + b"}",
               headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text


def test_out_of_range_query_values_answer_4xx_not_500(station):
    """Each answered 500 before: a seq beyond SQLite's integers, a time that overflows in UTC, a negative
    audit limit (SQLite's 'no limit': the whole log)."""
    c = station.client(OFFICER)
    for url in (f"/api/queue?after_seq={2**70}", f"/api/history?before_seq={2**70}", "/api/queue?after_seq=-1"):
        assert c.get(url).status_code == 422, url
    r = c.get("/api/history", params={"since": "9999-12-31T23:59:59-23:00"})
    assert (r.status_code, r.json()["detail"]) == (422, "bad_time")
    s = station.client(SUPERVISOR)
    for limit in (-1, 0, 1001):
        assert s.get(f"/api/audit?limit={limit}").status_code == 422, limit
    assert s.get("/api/audit?limit=5").status_code == 200


def test_a_last_event_id_that_is_not_ascii_digits_is_ignored():
    from types import SimpleNamespace

    from edge.web.routes_cases import _last_event_id

    def header(value: str) -> object:
        return SimpleNamespace(headers={"last-event-id": value})
    assert _last_event_id(header("42")) == 42  # type: ignore[arg-type]
    for value in ("²", "١٢", "9" * 40, "-3", ""):
        assert _last_event_id(header(value)) is None, value  # type: ignore[arg-type]


def test_a_full_database_refuses_a_decision_in_one_code_and_takes_it_once_there_is_room(station):
    """The screen's own store, once a write of its found the database full, stayed `full` for good: every decision
    raised DiskFull (HTTP 500) until the daemon restarted. Now the screen answers 507 disk_full and takes decisions
    again once there is room."""
    from edge.errors import DiskFull
    from edge_factories import make_record

    rec = station.item()
    c = station.client(OFFICER)
    web = station.app.state.web

    def fill(s: Store) -> None:
        s.conn.execute(f"PRAGMA max_page_count = {s.conn.execute('PRAGMA page_count').fetchone()[0] + 2}")
        with pytest.raises(DiskFull):
            for _ in range(10_000):
                s.commit(make_record(), scan_stored=False)

    c.portal.call(web.db, fill)
    assert web.writer.store.full is not None
    r = c.post(f"/api/cases/{rec.id}/decision", json={"outcome": "false_alarm"})
    assert (r.status_code, r.json()["detail"]) == (507, "disk_full")
    assert station.store.get(rec.id).review is None
    c.portal.call(web.db, lambda s: s.conn.execute("PRAGMA max_page_count = 1073741823"))
    r = c.post(f"/api/cases/{rec.id}/decision", json={"outcome": "false_alarm"})
    assert r.status_code == 200, r.text
    assert station.store.get(rec.id).review.outcome == "false_alarm" and web.writer.store.full is None


def test_a_reviewed_item_whose_scan_is_gone_is_left_out_of_the_dataset_and_named(station):
    """A scan file gone from the disk (or unreadable) ended the whole dataset export in an OSError: a 500 and no
    zip; now the other items export and the annotations' info names the one left out."""
    a = station.item()
    b = station.item()
    sup = station.client(SUPERVISOR)
    for rec in (a, b):
        sup.post(f"/api/cases/{rec.id}/decision", json={"outcome": "false_alarm"})
    station.store.scan_path(b.scan.sha256).unlink()
    r = sup.get("/api/export.zip")
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        coco = json.loads(zf.read("annotations.json"))
        assert [i["record_id"] for i in coco["images"]] == [a.id]
        assert zf.namelist() == [f"scans/{a.scan.sha256}.npz", "annotations.json"]
    [gone] = coco["info"]["left_out"]
    assert gone["record_id"] == b.id and gone["why"].startswith(f"scan {b.scan.sha256} could not be read at the station")
