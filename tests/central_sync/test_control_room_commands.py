"""The control room's checks before signing a command and what an undo may send (commanding.py)."""

from __future__ import annotations

import json
import re
import time

import pytest
from fastapi import HTTPException

from central_sync import commands as c
from central_sync import protocol as p
from central_sync.control_room import commanding, db
from central_sync.hub.ingest import Ingestor
from central_sync.hub.store import open_store

SETTINGS = {"thresholds": {"firearm": 0.3, "knife": 0.5}, "tip_rate": 0.03,
            "model": {"name": "m", "version": "1", "sha256": "ab" * 32}}


def refused(fn, *args) -> tuple[int, str]:
    with pytest.raises(HTTPException) as got:
        fn(*args)
    return got.value.status_code, got.value.detail


def test_arguments_are_checked_against_the_station():
    assert commanding.check_args("gate-1", "set_thresholds", {"thresholds": {"knife": 0.25}}, SETTINGS) == {
        "thresholds": {"knife": 0.25}}
    assert refused(commanding.check_args, "gate-1", "set_thresholds", {"thresholds": {"gun": 0.25}}, SETTINGS) == (
        422, "the model on gate-1 has no class 'gun' (it has firearm, knife); nothing was sent")
    assert refused(commanding.check_args, "gate-1", "set_thresholds", {"thresholds": {"knife": 0}}, SETTINGS) == (
        422, "threshold 0 for knife is outside (0, 0.99]: a command may not turn the detection of a class off;"
             " nothing was sent to gate-1")
    status, why = refused(commanding.check_args, "gate-1", "set_tip_rate", {"rate": 1.5}, SETTINGS)
    assert status == 422 and why.startswith("arguments of set_tip_rate are invalid: rate")


@pytest.mark.parametrize("value", [1.0, 1, 0.995])
def test_no_command_turns_the_detection_of_a_class_off(value):
    """A threshold of 1.0 lets no detection of the class through: the hub signed and sent it (knife 1.0 was
    accepted as inside (0, 1]), so a supervisor could turn knife detection off at a station from the control room."""
    assert refused(commanding.check_args, "gate-1", "set_thresholds", {"thresholds": {"knife": value}}, SETTINGS) == (
        422, f"threshold {value} for knife is outside (0, 0.99]: a command may not turn the detection of a class off;"
             " nothing was sent to gate-1")
    prev = commanding.previous_values("set_thresholds", {"thresholds": {"knife": 0.5}}, {"thresholds": {"knife": 1.0}})
    undo = commanding.undo_args("c1", "set_thresholds", "applied", prev)  # back to a value set on site
    assert refused(commanding.check_args, "gate-1", "set_thresholds", undo, SETTINGS)[0] == 422


def test_previous_values_make_the_undo():
    prev = commanding.previous_values("set_thresholds", {"thresholds": {"knife": 0.2}}, SETTINGS)
    assert prev == {"thresholds": {"knife": 0.5}}
    assert commanding.undo_args("c1", "set_thresholds", "applied", prev) == prev
    assert commanding.undo_args("c2", "set_tip_rate", "applied",
                                commanding.previous_values("set_tip_rate", {"rate": 0.1}, SETTINGS)) == {"rate": 0.03}
    assert refused(commanding.undo_args, "c3", "request_diag", "applied", {}) == (
        409, "command c3 (request_diag) changes no setting and cannot be undone")
    assert refused(commanding.undo_args, "c4", "set_tip_rate", "rejected", {"rate": 0.03}) == (
        409, "command c4 was not applied (outcome rejected); there is nothing to undo")
    unknown = commanding.previous_values("set_tip_rate", {"rate": 0.1}, None)
    assert refused(commanding.undo_args, "c5", "set_tip_rate", "applied", unknown) == (
        409, "the value that command c5 replaced (rate) was not reported by the station; set it by hand")


def test_every_refusal_has_a_code_the_screen_translates():
    """The English sentence stays the API's detail; its code (and values) let the screen say it in the reader's
    language: the screen showed the English sentence in Chinese."""
    from central_sync.control_room.i18n import LANGS, catalogue
    from central_sync.control_room.refusals import Refused
    calls = [(commanding.check_args, "gate-1", "set_thresholds", {"thresholds": {"gun": 0.25}}, SETTINGS),
             (commanding.check_args, "gate-1", "set_thresholds", {"thresholds": {"knife": 0}}, SETTINGS),
             (commanding.check_args, "gate-1", "set_tip_rate", {"rate": "x"}, SETTINGS),
             (commanding.check_args, "gate-1", "set_tip_rate", {"rate": 2}, SETTINGS),
             (commanding.check_args, "gate-1", "set_tip_rate", {}, SETTINGS),
             (commanding.check_args, "gate-1", "set_tip_rate", {"rate": 0.1, "burst": 3}, SETTINGS),
             (commanding.check_args, "gate-1", "set_thresholds", {"thresholds": {}}, SETTINGS),
             (commanding.undo_args, "c3", "request_diag", "applied", {}),
             (commanding.undo_args, "c4", "set_tip_rate", "rejected", {"rate": 0.03}),
             (commanding.undo_args, "c5", "set_tip_rate", "applied", {"rate": None})]
    got = []
    for fn, *args in calls:
        with pytest.raises(Refused) as exc:
            fn(*args)
        got.append((exc.value.code, exc.value.vals))
    assert got == [("command.unknown_class", {"station": "gate-1", "cls": "gun", "classes": "firearm, knife"}),
                   ("command.threshold_range", {"value": "0", "cls": "knife", "max": "0.99", "station": "gate-1"}),
                   ("command.bad_args", {"field": "rate", "value": "x", "limit": "", "station": "gate-1"}),
                   ("command.arg.less_than_equal", {"field": "rate", "value": "2", "limit": "1.0", "station": "gate-1"}),
                   ("command.arg.missing", {"field": "rate", "value": "-", "limit": "", "station": "gate-1"}),
                   ("command.arg.extra_forbidden", {"field": "burst", "value": "3", "limit": "", "station": "gate-1"}),
                   ("command.arg.too_short", {"field": "thresholds", "value": "-", "limit": "1", "station": "gate-1"}),
                   ("command.not_undoable", {"id": "c3", "op": "request_diag"}),
                   ("command.not_applied", {"id": "c4", "outcome": "rejected"}),
                   ("command.previous_unknown", {"id": "c5", "names": "rate"})]
    assert all(f"error.{code}" in catalogue(lang) for code, _ in got for lang in LANGS)
    # an argument's problem was shown as pydantic's English inside the Chinese sentence ("rate: Input should be less
    # than or equal to 1 (got 2)"): now its values are data only (a field's name, a number)
    zh = catalogue("zh-Hant")
    for code, vals in got:
        said = zh[f"error.{code}"].format(**vals)
        assert set(re.findall(r"[A-Za-z]{2,}", said)) <= set(re.findall(r"[A-Za-z]{2,}", " ".join(vals.values()))), said


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """The hub's store with the control room's tables, on both backends (the same SQL)."""
    url = str(tmp_path / "hub.sqlite3") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    store = open_store(url)
    db.migrate(store)
    yield store
    store.close()


def test_unknown_station_is_refused_and_newest_settings_win(store):
    status = p.StatusMsg(station="gate-1", state="online", session=1, at=time.time(),
                         settings={**SETTINGS, "changed_at": 100.0})
    Ingestor(store, "hub-t", lambda *a: None).handle([(p.topic("gate-1", "status"), status.model_dump_json().encode())])
    commanding.check_station(store, "gate-1")
    assert refused(commanding.check_station, store, "gate-l") == (
        404, "station 'gate-l' is not known to this hub (known: gate-1); nothing was sent")
    assert commanding.settings_of(store, "gate-1")["tip_rate"] == 0.03
    commanding.remember_settings(store, "gate-1", {**SETTINGS, "tip_rate": 0.05, "changed_at": 200.0})
    assert commanding.settings_of(store, "gate-1")["tip_rate"] == 0.05  # a result newer than the status
    commanding.remember_settings(store, "gate-1", {**SETTINGS, "tip_rate": 0.07, "changed_at": 50.0})
    assert commanding.settings_of(store, "gate-1")["tip_rate"] == 0.03  # an older one loses to the status


def test_results_and_reports_are_stored(store):
    from central_sync.control_room import ControlRoom

    room = ControlRoom(store, None)
    db.execute(store, "INSERT INTO cr_commands (id, station, op, args, issuer, issued_at, expires_at)"
                      " VALUES ('d1', 'gate-1', 'request_diag', '{}', 'sup1', 1.0, 9e9)")
    def result(**kw) -> bytes:
        return c.CommandResult(id="d1", station="gate-1", op="request_diag", outcome="applied", at=2.0, **kw
                               ).model_dump_json().encode()
    room._result(c.result_topic("gate-1"), result(reason="applied", settings={**SETTINGS, "changed_at": 2.0}))
    room._result(c.result_topic("gate-1"), result(reason="report", report={"outcome": "PASS", "phases": []}))
    room._result(c.result_topic("gate-1"), result(reason="report", report={"outcome": "FAIL", "phases": []}))  # first kept
    room._result(c.result_topic("gate-2"), result(reason="report", report={"outcome": "FAIL", "phases": []}))  # not its command
    assert store.query("SELECT outcome, reason FROM cr_commands") == [("applied", "applied")]
    assert store.query("SELECT id, station, outcome FROM cr_command_reports") == [("d1", "gate-1", "PASS")]
    assert store.query("SELECT station, changed_at FROM cr_station_settings") == [("gate-1", 2.0)]


def test_a_status_whose_settings_time_is_not_a_number_breaks_neither_the_feed_nor_commands(store):
    """One station's status with `settings.changed_at` a string, and a command result's number for the same
    station: the comparison raised, the live feed's task died (alerts read in that poll never went out, none
    after), /cr/api/stations answered 500 and settings_of failed for every station."""
    from central_sync.control_room.config import ControlRoomConfig
    from central_sync.control_room.feed import LiveFeed
    from central_sync.devtools import make_record
    from central_sync.schema import Verdict

    ingest = Ingestor(store, "hub-t", lambda *a: None)
    now = time.time()
    sane = p.StatusMsg(station="gate-1", state="online", session=1, at=now, settings={**SETTINGS, "changed_at": now})
    odd = p.StatusMsg(station="gate-2", state="online", session=1, at=now, settings={"changed_at": "yesterday"})
    ingest.handle([(p.topic(s.station, "status"), s.model_dump_json().encode()) for s in (sane, odd)])
    commanding.remember_settings(store, "gate-2", {**SETTINGS, "changed_at": now})
    assert commanding.settings_of(store, "gate-1")["tip_rate"] == 0.03
    assert commanding.settings_of(store, "gate-2")["tip_rate"] == 0.03  # the result's number wins over the string
    feed = LiveFeed(store, ControlRoomConfig())
    feed.poll()
    rec = make_record("gate-1", 1, Verdict.SUSPECT)
    ingest.handle([(p.topic("gate-1", "alert"),
                    p.encode_envelope("gate-1", "alert", 1, 1, rec.id, rec.to_json().encode(), 0.0))])
    events = feed.poll()
    assert [e["alert"]["id"] for e in events if e["type"] == "alert"] == [rec.id]
    assert {s["station"] for s in feed.stations()} == {"gate-1", "gate-2"}


def test_the_feeds_events_go_out_when_the_station_board_fails(store, monkeypatch):
    """The rows a poll reads move its marks on: a failure building the station board after them must not
    take their events with it (they would never be read again)."""
    from central_sync.control_room.config import ControlRoomConfig
    from central_sync.control_room.feed import LiveFeed
    from central_sync.devtools import make_record
    from central_sync.schema import Verdict

    feed = LiveFeed(store, ControlRoomConfig())
    rec = make_record("gate-1", 1, Verdict.SUSPECT)
    Ingestor(store, "hub-t", lambda *a: None).handle(
        [(p.topic("gate-1", "alert"), p.encode_envelope("gate-1", "alert", 1, 1, rec.id, rec.to_json().encode(), 0.0))])

    def broken() -> list:
        raise RuntimeError("a defect in the board")
    monkeypatch.setattr(feed, "stations", broken)
    assert [e["alert"]["id"] for e in feed.poll() if e["type"] == "alert"] == [rec.id]
    assert feed.counters["poll_errors"] == 1


def test_the_live_feeds_queries_read_an_index_not_the_whole_table(tmp_path):
    """The feed polls every 0.1 s for rows committed since its mark: without an index on the commit time each
    poll read the whole records and reviews tables (51 ms at 300,000 records on SQLite, growing)."""
    from central_sync.control_room.feed import SOURCES

    hub = open_store(str(tmp_path / "hub.db"))
    db.migrate(hub)
    for name, sql in SOURCES.items():
        plan = " ".join(str(row[-1]) for row in hub.query("EXPLAIN QUERY PLAN " + sql, (0.0,)))
        assert "USING INDEX" in plan and "TEMP B-TREE" not in plan, (name, plan)
    hub.close()


class Link:
    """The command link's publish, recorded (the station's answers are handed to the room as its link would)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.sent.append(topic)

    async def __aexit__(self, *exc: object) -> None:
        """Closed with the control room."""


async def test_an_undo_sent_again_after_a_full_queue_is_still_the_undo(store):
    """Before, **Send again** on an undo its station refused `queue_full` sent the same arguments without `undo_of`:
    audited as `command_sent` with `undo_of` null and listed as a plain command, so the log no longer said which
    change it reversed. Now it is audited as `command_undo` with `undo_of` and `resend_of`, and listed as the undo."""
    import httpx
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from central_sync.control_room import ControlRoom, ControlRoomConfig, audit, auth
    from central_sync.hub.api import create_app

    status = p.StatusMsg(station="gate-1", state="online", session=1, at=time.time(),
                         settings={**SETTINGS, "changed_at": 100.0})
    Ingestor(store, "hub-t", lambda *a: None).handle([(p.topic("gate-1", "status"), status.model_dump_json().encode())])
    auth.add_user(store, "sup1", "supervisor", "correct horse battery")
    async with ControlRoom(store, None, ControlRoomConfig(session_idle_s=60)) as room:
        room.key, room.link = Ed25519PrivateKey.generate(), Link()

        def answer(cmd_id: str, outcome: str, reason: str) -> None:
            room._result(c.result_topic("gate-1"), c.CommandResult(
                id=cmd_id, station="gate-1", op="set_tip_rate", outcome=outcome, reason=reason, at=time.time()
            ).model_dump_json().encode())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=room.install(create_app(store))),
                                     base_url="https://hub") as http:
            assert (await http.post("/cr/api/login", json={"username": "sup1", "password": "correct horse battery"})
                    ).status_code == 200
            first = (await http.post("/cr/api/commands", json={"station": "gate-1", "op": "set_tip_rate",
                                                               "args": {"rate": 0.05}})).json()["id"]
            answer(first, "applied", "applied")
            undo = (await http.post(f"/cr/api/commands/{first}/undo", json={})).json()
            answer(undo["id"], "rejected", "queue_full")
            again = (await http.post(f"/cr/api/commands/{undo['id']}/resend", json={})).json()
            assert (again["undo_of"], again["resend_of"]) == (first, undo["id"])
            listed = {row["id"]: row for row in (await http.get("/cr/api/commands")).json()}
            assert listed[again["id"]]["undo_of"] == first and listed[again["id"]]["args"] == {"rate": 0.03}
    entry = [e for e in audit.entries(store) if json.loads(e["detail"]).get("id") == again["id"]][0]
    assert entry["action"] == "command_undo" and json.loads(entry["detail"])["undo_of"] == first
    assert json.loads(entry["detail"])["resend_of"] == undo["id"]
