"""Vehicle search reports from the station to the control room: a real station store, real Mosquitto, the hub on
SQLite and on PostgreSQL; each version kept once, `records.search_outcome` following the latest version, a late
unsigned copy never undoing a countersignature, and the control room's search by plate, container and report words."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from central_sync.config import BrokerConfig, SyncConfig
from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.devtools import Mosquitto, outbox_rows
from central_sync.hub.api import create_app
from central_sync.hub.service import Hub
from central_sync.hub.store import HubStore, open_store
from central_sync.outbox import Lane, enqueue
from central_sync.publisher import Publisher
from edge.search_report import Countersignature, countersign, sign

from polling import until
from search_report_kit import OFFICER_2, SUPERVISOR, form, open_station

PASSWORD = "correct horse"


def hub_store(tmp_path: Path, request: pytest.FixtureRequest, backend: str) -> HubStore:
    store = open_store(str(tmp_path / "hub.db") if backend == "sqlite" else request.getfixturevalue("pg_url"))
    store.migrate()
    return store


def hub_reports(store: HubStore) -> list[tuple]:
    return store.query("SELECT record_id, version, outcome, final, officer, supervisor FROM search_reports"
                       " ORDER BY record_id, version")


def outcomes(store: HubStore) -> dict[str, str | None]:
    return dict(store.query("SELECT id, search_outcome FROM records"))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_reports_reach_the_hub_with_their_record_and_are_found_in_the_control_room(
        tmp_path: Path, request: pytest.FixtureRequest, broker: Mosquitto, backend: str) -> None:
    st = open_station(tmp_path / "data")
    clean, seized, untouched = st.vehicle(), st.vehicle("CD 987"), st.vehicle("EF 55")
    sign(st.store, clean.id, form())
    sign(st.store, seized.id, form(seizure=True))  # version 1: a seizure awaiting its countersignature
    store = hub_store(tmp_path, request, backend)
    cfg = SyncConfig(port=broker.port, status_period_s=0.5, ack_timeout_s=2.0, reconnect_min_s=0.1, reconnect_max_s=0.5)
    async with Hub(BrokerConfig(port=broker.port), store, "hub-s") as hub, \
            Publisher(cfg, "gantry-1", st.store.db_path, st.store.scans_dir) as pub:
        await until(lambda: outbox_rows(st.store.db_path) == 0, "first reports acknowledged", timeout=30, in_thread=True)
        assert outcomes(store) == {clean.id: "nothing_found", seized.id: "pending", untouched.id: None}
        v1 = st.store.conn.execute("SELECT lane, kind, record_id, seq, payload FROM outbox").fetchall()  # (none left)
        sign(st.store, seized.id, form(signer=OFFICER_2, seizure=True, minutes=70, notes="second look: more cartons"))
        countersign(st.store, seized.id, 2, Countersignature(badge=SUPERVISOR[0], pin=SUPERVISOR[3]))
        pub.notify()
        await until(lambda: outbox_rows(st.store.db_path) == 0, "edit and countersignature acknowledged",
                    timeout=30, in_thread=True)
        assert outcomes(store)[seized.id] == "seizure"
        # the version 2 update before its countersignature arrives again late (a lost ack): nothing goes back
        late = st.store.get(seized.id)
        assert late is not None
        late = late.model_copy(update={"search_reports": [*late.search_reports[:1],
                                                          late.search_reports[1].model_copy(update={"countersigned": None})]})
        with closing(sqlite3.connect(st.store.db_path)) as conn:
            conn.execute("BEGIN")
            enqueue(conn, Lane.RECORD, "review", late.id, late.seq, late.to_json())
            conn.execute("COMMIT")
        pub.notify()
        await until(lambda: outbox_rows(st.store.db_path) == 0, "late copy acknowledged", timeout=30, in_thread=True)
        assert pub.stats()["counters"].get("rejected", 0) == 0 and hub.stats()["counters"]["search_reports"] >= 4
        assert v1 == []
    assert hub_reports(store) == [(r, v, o, f, b, s) for r, v, o, f, b, s in sorted([
        (clean.id, 1, "nothing_found", 1, "0A1B2C3D", None), (seized.id, 1, "seizure", 0, "0A1B2C3D", None),
        (seized.id, 2, "seizure", 1, OFFICER_2[0], SUPERVISOR[0])])]
    assert outcomes(store)[seized.id] == "seizure"  # the hub-wide field the history and risk feedback read
    body = json.loads(store.query("SELECT body FROM records WHERE id = ?", (clean.id,))[0][0])
    assert body["search_reports"][0]["outcome"] == "nothing_found"

    async with ControlRoom(store, None, ControlRoomConfig(session_idle_s=60)) as room:
        auth.add_user(store, "op1", "operator", PASSWORD)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=room.install(create_app(store))),
                                     base_url="https://hub") as http:
            assert (await http.get("/cr/api/search-reports")).status_code == 401
            assert (await http.post("/cr/api/login", json={"username": "op1", "password": PASSWORD})).status_code == 200

            async def found(**params: str) -> list[tuple[str, int]]:
                r = await http.get("/cr/api/search-reports", params=params)
                assert r.status_code == 200, r.text
                return [(v["record_id"], v["report"]["version"]) for v in r.json()]

            assert sorted(await found()) == sorted([(clean.id, 1), (seized.id, 2)])  # latest versions only
            assert await found(q="CD 9") == [(seized.id, 2)]  # a plate prefix, through the identity index
            assert sorted(await found(q="CSQU30")) == sorted([(clean.id, 1), (seized.id, 2)])  # the container
            assert await found(q="2402") == [(seized.id, 2)] and await found(q="Cigarettes") == [(seized.id, 2)]
            assert await found(q="more cartons") == [(seized.id, 2)] and await found(q="re-welded") == [(clean.id, 1)]
            assert await found(q="%") == [] and await found(q="dog_") == []  # wildcards are taken literally ("dog ")
            assert await found(outcome="nothing_found") == [(clean.id, 1)]
            assert await found(outcome="seizure", q=SUPERVISOR[0]) == [(seized.id, 2)]
            assert (await http.get("/cr/api/search-reports", params={"outcome": "cleared"})).status_code == 422
            view = (await http.get("/cr/api/search-reports", params={"q": "CD 987"})).json()[0]
            assert view["search_outcome"] == "seizure" and {"kind": "plate", "value": "CD 987"} in view["identities"]
    st.store.close()
    store.close()


def test_a_countersignature_by_the_signer_or_by_an_officer_leaves_the_seizure_pending_at_the_hub(tmp_path: Path) -> None:
    """The station refuses both (edge/search_report.py `countersign`); a record from an altered or faulty station that
    carries one anyway made the seizure final at the hub, the pass a seizure for the history and the risk feedback."""
    from central_sync import protocol as p
    from central_sync.hub import search_reports
    from central_sync.hub.ingest import Ingestor
    from search_report_kit import OFFICER

    st = open_station(tmp_path / "data")
    store = open_store(str(tmp_path / "hub.db"))
    store.migrate()
    records = [st.vehicle(plate) for plate in ("AB 1", "AB 2", "AB 3")]
    for rec in records:
        sign(st.store, rec.id, form(seizure=True))
    countersign(st.store, records[2].id, 1, Countersignature(badge=SUPERVISOR[0], pin=SUPERVISOR[3]))
    stored = [st.store.get(r.id) for r in records]
    assert None not in stored
    bodies = [r for r in stored if r is not None]
    by_supervisor = bodies[2].search_reports[0].countersigned
    assert by_supervisor is not None
    forged = {records[0].id: by_supervisor.model_copy(update={"badge": OFFICER[0]}),  # the signer's own badge
              records[1].id: by_supervisor.model_copy(update={"badge": OFFICER_2[0], "role": "officer"})}
    bodies[:2] = [b.model_copy(update={"search_reports": [b.search_reports[0].model_copy(
        update={"countersigned": forged[b.id]})]}) for b in bodies[:2]]
    ing = Ingestor(store, "hub-s", lambda topic, payload: None)
    messages = [(p.topic(b.station, "inspection"), p.encode_envelope(b.station, "inspection", n + 1, b.seq, b.id,
                                                                      b.to_json().encode(), 0.0))
                for n, b in enumerate(bodies)]
    refused = search_reports.refused_countersignatures
    before = refused["by_signer"], refused["not_supervisor"]
    ing.handle(messages)
    assert outcomes(store) == {records[0].id: "pending", records[1].id: "pending", records[2].id: "seizure"}
    assert [row[3] for row in hub_reports(store)] == [0 if r.id in forged else 1 for r in sorted(records, key=lambda r: r.id)]
    ing.handle(messages)  # sent again (an ack lost): still pending, and not counted again (it was, at every delivery)
    ing.handle([(p.topic(b.station, "review"), p.encode_envelope(b.station, "review", 10 + n, b.seq, b.id,
                                                                  b.to_json().encode(), 0.0))
                for n, b in enumerate(bodies[:2])])  # nor inside a later update of its record (a review)
    assert (refused["by_signer"] - before[0], refused["not_supervisor"] - before[1]) == (1, 1)
    assert outcomes(store)[records[0].id] == "pending" and ing.counters["rejected"] == 0
    st.store.close()
    store.close()


def test_a_stored_version_changes_only_to_its_countersigned_form_at_the_hub(tmp_path: Path) -> None:
    """Another copy of a version the hub holds (its notes or findings changed, or another countersignature) rewrote the
    signed version in place; only its countersignature may be added, once."""
    from central_sync import protocol as p
    from central_sync.hub.ingest import Ingestor

    st = open_station(tmp_path / "data")
    store = open_store(str(tmp_path / "hub.db"))
    store.migrate()
    rec = st.vehicle()
    sign(st.store, rec.id, form(seizure=True))
    signed = st.store.get(rec.id)
    countersign(st.store, rec.id, 1, Countersignature(badge=SUPERVISOR[0], pin=SUPERVISOR[3]))
    done = st.store.get(rec.id)
    assert signed is not None and done is not None and done.search_reports[0].countersigned is not None
    first = signed.search_reports[0]
    rewritten = first.model_copy(update={"notes": "nothing behind the spare wheel"})
    other = done.search_reports[0].countersigned.model_copy(update={"badge": "5A5A5A5B", "name": "Supervisor Ho"})
    copies = [signed, signed.model_copy(update={"search_reports": [rewritten]}), done,
              done.model_copy(update={"search_reports": [done.search_reports[0].model_copy(update={"countersigned": other})]})]
    ing = Ingestor(store, "hub-s", lambda topic, payload: None)
    kept = []
    for n, body in enumerate(copies):
        ing.handle([(p.topic(body.station, "review"), p.encode_envelope(body.station, "review", n + 1, body.seq, body.id,
                                                                         body.to_json().encode(), 0.0))])
        row = json.loads(store.query("SELECT body FROM search_reports WHERE record_id = ?", (rec.id,))[0][0])
        kept.append((row["notes"], (row.get("countersigned") or {}).get("badge")))
    assert kept == [(first.notes, None), (first.notes, None), (first.notes, SUPERVISOR[0]), (first.notes, SUPERVISOR[0])]
    assert outcomes(store) == {rec.id: "seizure"} and ing.counters["rejected"] == 0
    st.store.close()
    store.close()


def test_a_countersigned_copy_whose_content_changed_is_not_taken_nor_exported_at_the_hub(tmp_path: Path) -> None:
    """A copy of a pending version carrying a countersignature but other content (no findings, other notes; its
    signed digest kept) replaced the stored version and made it a final seizure; the hub's case bundle exported
    the record body's copy, not the version the hub kept."""
    from central_sync import protocol as p
    from central_sync.case_bundle import Selection
    from central_sync.control_room.db import migrate
    from central_sync.hub.case_export import evidence, select
    from central_sync.hub.ingest import Ingestor

    st = open_station(tmp_path / "data")
    store = open_store(str(tmp_path / "hub.db"))
    store.migrate()
    migrate(store)  # the control room's tables (its audit goes into the bundle)
    rec = st.vehicle()
    sign(st.store, rec.id, form(seizure=True))
    signed = st.store.get(rec.id)
    countersign(st.store, rec.id, 1, Countersignature(badge=SUPERVISOR[0], pin=SUPERVISOR[3]))
    done = st.store.get(rec.id)
    assert signed is not None and done is not None
    genuine = signed.search_reports[0]
    altered = done.search_reports[0].model_copy(update={"notes": "nothing behind the spare wheel", "findings": []})
    ing = Ingestor(store, "hub-s", lambda topic, payload: None)
    for n, body in enumerate([signed, done.model_copy(update={"search_reports": [altered]})]):
        ing.handle([(p.topic(body.station, "review"), p.encode_envelope(body.station, "review", n + 1, body.seq, body.id,
                                                                         body.to_json().encode(), 0.0))])
    row, final = store.query("SELECT body, final FROM search_reports WHERE record_id = ?", (rec.id,))[0]
    assert (json.loads(row)["notes"], len(json.loads(row)["findings"]), final) == (genuine.notes, 1, 0)
    assert outcomes(store) == {rec.id: "pending"}
    files, notes = evidence(store, select(store, Selection(record_ids=[rec.id])))
    assert json.loads(files[f"search-reports/{rec.id}-v1.json"])["notes"] == genuine.notes
    assert any("another copy" in note for note in notes)
    st.store.close()
    store.close()
