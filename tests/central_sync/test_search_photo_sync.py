"""Search report photos from the station to the hub (issue 19): queued on the image lane with the signed report,
sent as chunked blobs like scans over real Mosquitto, held by the hub (SQLite and PostgreSQL), shown by the control
room with the report and put in the hub's case export; a photo that is not a JPEG or PNG, or too large, is refused
with its reason and counted, at the station's screen, at the station's sender and at the control room."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from central_sync import blobs
from central_sync.config import BrokerConfig, SyncConfig
from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.control_room.db import execute
from central_sync.devtools import Mosquitto, outbox_rows
from central_sync.hub import case_export
from central_sync.hub.api import create_app
from central_sync.hub.service import Hub
from central_sync.hub.store import HubStore, open_store
from central_sync.publisher import Publisher
from edge.search_report import SearchReportRefused, add_photo, sign

from polling import until
from search_report_kit import form, on_disk, open_station, photo

PASSWORD = "correct horse"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_photos_travel_with_the_report_and_bad_ones_are_refused(
        tmp_path: Path, request: pytest.FixtureRequest, broker: Mosquitto, backend: str) -> None:
    st = open_station(tmp_path / "data")
    jpeg, png = photo(".jpg", 1), photo(".png", 2)
    good = [add_photo(st.store, jpeg, "image/jpeg"), add_photo(st.store, png, "image/png")]
    with pytest.raises(SearchReportRefused) as refused:
        add_photo(st.store, b"GIF89a" + bytes(100), "image/gif")
    assert refused.value.code == "photo_not_image"
    # a file in the photo directory that is no photo (damaged on disk, or put there by hand): named by the report,
    # it is refused by the sender with its reason and parked, never sent
    junk = b"not an image at all" * 10
    junk_sha, big_sha = on_disk(st.store, junk), on_disk(st.store, b"\xff\xd8\xff" + bytes(blobs.MAX_PHOTO_BYTES))
    van = st.vehicle()
    sign(st.store, van.id, form(photos=[*good, junk_sha, big_sha]))
    sign(st.store, van.id, form(photos=good, notes="second version, the same photos"))  # queued once, not again
    queued = [bytes(p).decode() for (p,) in st.store.conn.execute(
        "SELECT payload FROM outbox WHERE lane = 2 AND record_id = ? ORDER BY id", (van.id,))]
    assert queued == [f"photo:{sha}" for sha in (*good, junk_sha, big_sha)]

    store = open_store(str(tmp_path / "hub.db") if backend == "sqlite" else request.getfixturevalue("pg_url"))
    store.migrate()
    cfg = SyncConfig(port=broker.port, status_period_s=0.5, ack_timeout_s=2.0, reconnect_min_s=0.1, reconnect_max_s=0.5)
    async with Hub(BrokerConfig(port=broker.port), store, "hub-p") as hub, \
            Publisher(cfg, "gantry-1", st.store.db_path, st.store.scans_dir) as pub:
        await until(lambda: all(store.image(sha) is not None for sha in good), "photos held by the hub", timeout=30,
                    in_thread=True)
        await until(lambda: pub.stats()["counters"].get("parked", 0) == 2, "the bad photos parked", timeout=30,
                    in_thread=True)
        await until(lambda: st.store.conn.execute("SELECT count(*) FROM outbox WHERE lane = 2").fetchone()[0] == 2,
                    "the good photos retired (the hub holding them is not yet its acknowledgement)", timeout=30,
                    in_thread=True)
        assert hub.stats()["counters"]["images"] >= 2 and pub.stats()["counters"].get("rejected", 0) == 0
    reasons = [r[0] for r in st.store.conn.execute("SELECT last_error FROM outbox WHERE lane = 2 ORDER BY id")]
    assert len(reasons) == 2 and "not a JPEG or PNG (it starts with 6e6f7420616e2069)" in reasons[0]
    assert f"{blobs.MAX_PHOTO_BYTES + 3} bytes, over the limit of {blobs.MAX_PHOTO_BYTES}" in reasons[1]
    assert all(r.startswith("parked: search photo ") for r in reasons)
    assert store.image(good[0]) == jpeg and store.image(good[1]) == png and store.image(junk_sha) is None
    assert store.image(big_sha) is None

    # a blob the hub holds under a report's photo name that is no photo (an older station sent it): refused, counted
    junk_record = st.vehicle("EF 55")
    sign(st.store, junk_record.id, form(photos=[good[0]]))
    async with ControlRoom(store, None, ControlRoomConfig(session_idle_s=60)) as room:
        auth.add_user(store, "op1", "operator", PASSWORD)
        # the hub's case export (the control room's audit holds it) holds the photos; the one not synced is named in a note
        body = json.loads(store.query("SELECT body FROM records WHERE id = ?", (van.id,))[0][0])
        files, notes = case_export.evidence(store, [body])
        assert files[f"search-photos/{good[0]}.jpg"] == jpeg and files[f"search-photos/{good[1]}.png"] == png
        assert [n for n in notes if "search photo" in n] == [
            f"search photo {sha} of record {van.id} is not held by the hub (still at station gantry-1, or not synced yet)"
            for sha in (junk_sha, big_sha)]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=room.install(create_app(store))),
                                     base_url="https://hub") as http:
            assert (await http.post("/cr/api/login", json={"username": "op1", "password": PASSWORD})).status_code == 200
            (view,) = (await http.get("/cr/api/search-reports", params={"q": "second version"})).json()
            assert view["photos"] == [{"sha256": good[0], "held": True}, {"sha256": good[1], "held": True}]
            got = await http.get(f"/cr/api/search-reports/{van.id}/photos/{good[1]}")
            assert got.status_code == 200 and got.content == png and got.headers["content-type"] == "image/png"
            assert (await http.get(f"/cr/api/search-reports/{van.id}/photos/{junk_sha}")).status_code == 404
            # the hub serves only photos a report names: not the scans, nor another record's photos
            assert (await http.get(f"/cr/api/search-reports/{junk_record.id}/photos/{good[1]}")).status_code == 404
            execute(store, "INSERT INTO blobs (sha256, size, station, data, committed_at) VALUES (?,?,?,?,?)",
                        (junk_sha, len(junk), "gantry-1", junk, 0.0))
            execute(store, "UPDATE search_reports SET body = ? WHERE record_id = ? AND version = 1",
                        (json.dumps({**json.loads(store.query("SELECT body FROM search_reports WHERE record_id = ?"
                                                               " AND version = 1", (van.id,))[0][0]),
                                     "photos": [*good, junk_sha]}), van.id))
            bad = await http.get(f"/cr/api/search-reports/{van.id}/photos/{junk_sha}")
            assert bad.status_code == 415 and "not a JPEG or PNG" in bad.text
            assert room.counters["photo_refused"] == 1
    st.store.close()
    store.close()
