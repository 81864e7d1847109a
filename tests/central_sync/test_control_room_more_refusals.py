"""Control-room refusals that answered English text: each now carries a code the page translates and its values
(central_sync/control_room/refusals.py), the English sentence kept as `detail` for the API, the audit and the log.
Over a real SQLite hub store, a search report signed on a real station store, a model package on disk."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync import blobs
from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.control_room.db import execute
from central_sync.control_room.i18n import LANGS, catalogue
from central_sync.hub.api import create_app
from central_sync.hub.store import HubStore, open_store
from central_sync.model_delivery import ModelRepo
from edge.search_report import sign
from models.testgraphs import write_package
from polling import until
from search_report_kit import form, on_disk, open_station
from test_control_room_browser import PASSWORD, seed_hub
from test_search_report_browser import deliver

JUNK = b"not an image at all" * 10


def hold(store: HubStore, data: bytes) -> str:
    """A blob the hub holds as if its station had sent it; its sha256."""
    sha = hashlib.sha256(data).hexdigest()
    execute(store, "INSERT INTO blobs (sha256, size, station, data, committed_at) VALUES (?,?,?,?,?)",
            (sha, len(data), "gantry-1", data, 0.0))
    return sha


def translated(code: str) -> None:
    """Every language has the refusal's sentence."""
    assert all(catalogue(lang).get(f"error.{code}") for lang in LANGS), code


@asynccontextmanager
async def signed_in(app, user: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as client:
        assert (await client.post("/cr/api/login", json={"username": user, "password": PASSWORD})).status_code == 200
        yield client


async def test_search_report_refusals_carry_a_code_and_their_values(tmp_path: Path) -> None:
    """An outcome not known (422), a photo the hub does not hold for the record (404), one that is no JPEG or PNG
    and one over the size limit (415) answered English sentences only ("outcome 'lost' is not one of ...", "search
    photo 5f2c... is refused: not a JPEG or PNG (it starts with 6e6f7420616e2069)")."""
    st = open_station(tmp_path / "data")
    big = b"\xff\xd8\xff" + bytes(blobs.MAX_PHOTO_BYTES)
    junk_sha, big_sha = on_disk(st.store, JUNK), on_disk(st.store, big)
    van = st.vehicle()
    sign(st.store, van.id, form(photos=[junk_sha, big_sha]))
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(secure_cookie=False)) as room:
        assert deliver(st.store.db_path, store) >= 1
        hold(store, JUNK), hold(store, big)
        auth.add_user(store, "op1", "operator", PASSWORD)
        async with signed_in(room.install(create_app(store)), "op1") as client:
            outcome = await client.get("/cr/api/search-reports", params={"outcome": "lost"})
            assert (outcome.status_code, outcome.json()) == (422, {
                "detail": "outcome 'lost' is not one of nothing_found, seizure, pending", "code": "search.bad_outcome",
                "vals": {"outcome": "lost", "allowed": "nothing_found, seizure, pending"}})
            unknown = await client.get(f"/cr/api/search-reports/{van.id}/photos/{'ab' * 32}")
            assert (unknown.status_code, unknown.json()["code"], unknown.json()["vals"]) == (
                404, "search.photo_unknown", {"photo": "ab" * 32, "record": van.id})
            junk = await client.get(f"/cr/api/search-reports/{van.id}/photos/{junk_sha}")
            assert (junk.status_code, junk.json()) == (415, {
                "detail": f"search photo {junk_sha[:12]} is refused: not a JPEG or PNG (it starts with 6e6f7420616e2069)",
                "code": "search.photo_not_photo", "vals": {"photo": junk_sha[:12], "head": "6e6f7420616e2069"}})
            large = await client.get(f"/cr/api/search-reports/{van.id}/photos/{big_sha}")
            assert (large.status_code, large.json()["code"], large.json()["vals"]) == (415, "search.photo_too_large", {
                "photo": big_sha[:12], "size": str(len(big)), "max": str(blobs.MAX_PHOTO_BYTES)})
            assert room.counters["photo_refused"] == 2
    for code in ("search.bad_outcome", "search.photo_unknown", "search.photo_not_photo", "search.photo_too_large"):
        translated(code)
    st.store.close()
    store.close()


async def test_model_roll_out_refusals_carry_a_code_and_their_values(tmp_path: Path) -> None:
    """A hub without a model folder, a package it does not hold, one not signed, a percentage while the hub knows no
    station: each answered 409 with its English sentence only ("model package test-det-3.0.0 is not signed; an
    admin signs it first (edge-hub model sign)"), shown as it came in every language."""
    repo = ModelRepo(tmp_path / "models")
    signed = repo.upload(write_package(tmp_path / "src", version="3.0.0"))
    unsigned = repo.upload(write_package(tmp_path / "src2", version="3.1.0"))
    repo.sign(signed, Ed25519PrivateKey.generate(), "models-1")
    criteria = {"min_items": 50, "min_agreement": 0.95, "p95_ms": 500, "max_misses": 5}
    answers = {}
    for name, folder in (("folder", repo.folder), ("none", None)):
        store = open_store(str(tmp_path / f"hub-{name}.sqlite3"))
        async with ControlRoom(store, None, ControlRoomConfig(models_dir=folder, secure_cookie=False)) as room:
            auth.add_user(store, "adm1", "admin", PASSWORD)
            async with signed_in(room.install(create_app(store)), "adm1") as client:
                for key, body in (("no_folder" if folder is None else "unknown_package", {"package": "nope-1.0"}),
                                  ("unsigned", {"package": unsigned, "stations": ["gate-1"]}),
                                  ("no_stations", {"package": signed, "percent": 10})):
                    r = await client.post("/cr/api/models/rollouts", json={**body, "criteria": criteria})
                    answers.setdefault(key, (r.status_code, r.json()))
        store.close()
    assert {k: (status, body["code"], body["vals"]) for k, (status, body) in answers.items()} == {
        "unknown_package": (409, "models.unknown_package", {"package": "nope-1.0"}),
        "unsigned": (409, "models.unsigned", {"package": unsigned}),
        "no_stations": (409, "models.no_stations", {"percent": "10"}),
        "no_folder": (409, "models.no_folder", {})}
    assert answers["unsigned"][1]["detail"] == ("model package test-det-3.1.0 is not signed; an admin signs it first"
                                                " (edge-hub model sign)")
    assert repo.rollouts() == []
    for code in ("models.unknown_package", "models.unsigned", "models.no_stations", "models.no_folder",
                 "models.rollout_refused"):
        translated(code)


async def test_an_alert_is_acknowledged_once(store: HubStore) -> None:
    """A second Acknowledge (the card offered it on an acknowledged alert; two supervisors at once) was recorded as
    another "Acknowledged by …"; now the hub refuses it (409 already_acknowledged, naming who did), on either
    backend, and records nothing."""
    async with ControlRoom(store, None, ControlRoomConfig(secure_cookie=False)) as room:
        seed_hub(store)
        (rid,) = store.query("SELECT id FROM records WHERE station = 'gate-1' AND verdict = 'suspect'")[0]
        for name in ("op1", "sup1"):
            auth.add_user(store, name, "supervisor", PASSWORD)
        app = room.install(create_app(store))
        async with signed_in(app, "op1") as op1, signed_in(app, "sup1") as sup1:
            assert (await op1.post(f"/cr/api/alerts/{rid}/actions", json={"kind": "ack"})).status_code == 200
            again = await sup1.post(f"/cr/api/alerts/{rid}/actions", json={"kind": "ack"})
            assert (again.status_code, again.json()) == (409, {
                "detail": f"alert {rid} was acknowledged already by op1; nothing was recorded",
                "code": "already_acknowledged", "vals": {"by": "op1"}})
            assert (await sup1.post(f"/cr/api/alerts/{rid}/actions", json={"kind": "escalate"})).status_code == 200
    assert sorted(store.query("SELECT kind, actor FROM cr_actions WHERE record_id = ?", (rid,))) == [
        ("ack", "op1"), ("escalate", "sup1")]
    translated("already_acknowledged")


async def test_an_alert_acknowledged_by_another_hub_process_at_that_moment_is_acknowledged_once(pg_url) -> None:
    """PostgreSQL: the ack's INSERT ... WHERE NOT EXISTS read the snapshot its statement began with, so an ack another
    hub process was committing at that moment was not seen and both were recorded (op1 and sup1 for one alert). Now
    the ack waits for the acknowledgement being committed and refuses its own (409 already_acknowledged)."""
    store = open_store(pg_url)
    store.migrate()
    async with ControlRoom(store, None, ControlRoomConfig(secure_cookie=False)) as room:
        seed_hub(store)
        (rid,) = store.query("SELECT id FROM records WHERE station = 'gate-1' AND verdict = 'suspect'")[0]
        auth.add_user(store, "sup1", "supervisor", PASSWORD)
        with psycopg.connect(pg_url) as other, psycopg.connect(pg_url, autocommit=True) as watch:
            other.execute("INSERT INTO cr_actions (id, record_id, kind, actor, at, assignee, text) VALUES"
                          " ('other', %s, 'ack', 'op1', 0, NULL, '')", (rid,))  # not committed yet
            async with signed_in(room.install(create_app(store)), "sup1") as sup1:
                acking = asyncio.create_task(sup1.post(f"/cr/api/alerts/{rid}/actions", json={"kind": "ack"}))
                waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'cr_actions'::regclass"
                await until(lambda: acking.done() or watch.execute(waiting).fetchone()[0] > 0,
                            "the ack is answered or waits for the one being committed")
                other.commit()
                answer = await acking
    assert (answer.status_code, answer.json()["code"]) == (409, "already_acknowledged")
    assert store.query("SELECT actor FROM cr_actions WHERE record_id = ? AND kind = 'ack'", (rid,)) == [("op1",)]
    store.close()
