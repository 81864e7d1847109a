"""The vehicle search report on the station: signing with badge + PIN, countersigning seizures, versions, audit,
the record queued for the hub with every version, photos."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from central_sync.schema import InspectionRecord, ItemKind, search_outcome
from edge import audit
from drivers.camera import CameraConfig, CameraSim, open_camera
from drivers.errors import LinkLost
from edge.search_report import (Countersignature, SearchReportRefused, add_photo, camera_jpeg, camera_photos,
                                content_digest, countersign, diagrams, sign, view)

from search_report_kit import OFFICER, OFFICER_2, SUPERVISOR, SearchStation, decompression_bomb, form, open_station, photo


@pytest.fixture
def station(tmp_path: Path) -> Iterator[SearchStation]:
    st = open_station(tmp_path / "data")
    yield st
    st.store.close()


def stored(station: SearchStation, record_id: str) -> InspectionRecord:
    record = station.store.get(record_id)
    assert record is not None
    return record


def outbox_reports(station: SearchStation) -> list[list[dict]]:
    rows = station.store.conn.execute("SELECT kind, payload FROM outbox WHERE kind = 'review' ORDER BY id").fetchall()
    return [json.loads(payload)["search_reports"] for _, payload in rows]


def refused(code: str, fn: Callable[..., object], *args: object) -> SearchReportRefused:
    with pytest.raises(SearchReportRefused) as info:
        fn(*args)
    assert info.value.code == code, info.value
    return info.value


def test_nothing_found_is_final_when_the_officer_signs_and_is_queued_for_the_hub(station: SearchStation) -> None:
    rec = station.vehicle()
    report = sign(station.store, rec.id, form())
    assert (report.version, report.outcome, report.final, report.supersedes) == (1, "nothing_found", True, None)
    assert report.officer.badge == OFFICER[0] and report.officer.digest == content_digest(report)
    record = stored(station, rec.id)
    assert record.search_reports == [report] and search_outcome(record.search_reports) == "nothing_found"
    assert outbox_reports(station) == [[json.loads(report.model_dump_json())]]
    entry = [e for e in audit.entries(station.store.conn, rec.id) if e.action == "search.report_signed"]
    assert [json.loads(e.detail)["digest"] for e in entry] == [report.officer.digest]


def test_a_wrong_pin_or_an_unknown_badge_signs_nothing(station: SearchStation) -> None:
    rec = station.vehicle()
    refused("signature_refused", sign, station.store, rec.id, form(pin="00000"))
    refused("signature_refused", sign, station.store, rec.id, form(badge="FFFF0000"))
    assert stored(station, rec.id).search_reports == [] and outbox_reports(station) == []


def test_a_seizure_is_pending_until_another_supervisor_countersigns(station: SearchStation) -> None:
    rec = station.vehicle()
    report = sign(station.store, rec.id, form(seizure=True))
    assert (report.outcome, report.final) == ("seizure", False)
    assert search_outcome(stored(station, rec.id).search_reports) == "pending"  # never a clean pass meanwhile
    officer = Countersignature(badge=OFFICER_2[0], pin=OFFICER_2[3])
    refused("countersign_needs_supervisor", countersign, station.store, rec.id, 1, officer)
    refused("signature_refused", countersign, station.store, rec.id, 1, Countersignature(badge=SUPERVISOR[0], pin="11111"))
    assert search_outcome(stored(station, rec.id).search_reports) == "pending"
    done = countersign(station.store, rec.id, 1, Countersignature(badge=SUPERVISOR[0], pin=SUPERVISOR[3]))
    assert done.final and done.countersigned is not None and done.countersigned.badge == SUPERVISOR[0] and done.countersigned.digest == content_digest(report)
    assert search_outcome(stored(station, rec.id).search_reports) == "seizure"
    refused("countersign_not_needed", countersign, station.store, rec.id, 1,
            Countersignature(badge=SUPERVISOR[0], pin=SUPERVISOR[3]))


def test_a_supervisor_cannot_countersign_the_report_they_signed(station: SearchStation) -> None:
    rec = station.vehicle()
    sign(station.store, rec.id, form(signer=SUPERVISOR, seizure=True))
    refused("countersign_by_other", countersign, station.store, rec.id, 1,
            Countersignature(badge=SUPERVISOR[0], pin=SUPERVISOR[3]))


def test_an_edit_after_signature_is_a_new_version_and_both_stay(station: SearchStation) -> None:
    rec = station.vehicle()
    first = sign(station.store, rec.id, form())
    second = sign(station.store, rec.id, form(signer=OFFICER_2, seizure=True, minutes=50))
    assert (second.version, second.supersedes, second.officer.badge) == (2, 1, OFFICER_2[0])
    versions = stored(station, rec.id).search_reports
    assert versions == [first, second]  # the first version is kept as it was signed
    assert search_outcome(versions) == "pending"  # the latest version decides: a seizure awaiting countersignature
    refused("search_version_superseded", countersign, station.store, rec.id, 1,
            Countersignature(badge=SUPERVISOR[0], pin=SUPERVISOR[3]))
    countersign(station.store, rec.id, 2, Countersignature(badge=SUPERVISOR[0], pin=SUPERVISOR[3]))
    assert [len(r) for r in outbox_reports(station)] == [1, 2, 2]  # each change queued with every version
    assert view(stored(station, rec.id))["search_outcome"] == "seizure"
    actions = [e.action for e in audit.entries(station.store.conn, rec.id)]
    assert actions.count("search.report_signed") == 2 and actions.count("search.report_countersigned") == 1
    assert audit.verify_conn(station.store.conn) == (True, None)


def test_only_a_supervisor_signs_nothing_found_over_a_seizure(station: SearchStation) -> None:
    """'Nothing found' is final when signed and makes the pass a clean one (a reference for the vehicle's history,
    the risk engine's feedback): an officer signing it over a countersigned seizure withdrew the seizure alone."""
    rec = station.vehicle()
    sign(station.store, rec.id, form(seizure=True))
    countersign(station.store, rec.id, 1, Countersignature(badge=SUPERVISOR[0], pin=SUPERVISOR[3]))
    e = refused("seizure_withdrawn_by_supervisor", sign, station.store, rec.id, form(signer=OFFICER_2))
    assert OFFICER_2[0] in str(e) and rec.id in str(e)
    assert view(stored(station, rec.id))["search_outcome"] == "seizure"
    again = sign(station.store, rec.id, form(signer=OFFICER_2, seizure=True, minutes=50))  # a seizure amended: fine
    assert again.version == 2
    withdrawn = sign(station.store, rec.id, form(signer=SUPERVISOR))
    assert withdrawn.version == 3 and view(stored(station, rec.id))["search_outcome"] == "nothing_found"


def test_areas_must_be_on_the_vehicle_diagram_and_only_vehicles_are_searched(station: SearchStation) -> None:
    rec = station.vehicle()
    assert "container_doors" in {a["name"] for a in diagrams()["tractor_container"]}
    e = refused("search_area_unknown", sign, station.store, rec.id, form(areas=["container_doors"]))
    assert "container_doors" in str(e) and "van" in str(e)
    bag = station.store.commit(rec.model_copy(update={"id": rec.id + "b", "kind": ItemKind.BAGGAGE}), scan_stored=False)
    refused("search_not_vehicle", sign, station.store, bag.id, form())
    assert stored(station, rec.id).search_reports == []


def test_an_area_is_named_once_and_a_finding_names_its_goods() -> None:
    """Through the API (the screen filters them) the same area 40 times was signed and printed 40 times, and a
    finding of blank space was signed as a seizure of nothing anyone could read."""
    assert form(areas=["floor", "cargo_area", "floor"] * 13).areas == ["floor", "cargo_area"]
    with pytest.raises(ValueError, match=r"findings \[1\] name no goods"):
        form(findings=[{"goods": " ", "area": "floor"}])


def test_photos_are_kept_by_hash_and_a_report_names_only_stored_ones(station: SearchStation) -> None:
    rec = station.vehicle()
    png = photo(".png")
    sha = add_photo(station.store, png, "image/png")
    assert station.store.photo_path(sha).read_bytes() == png
    refused("photo_not_image", add_photo, station.store, b"GIF89a....", "image/gif")
    refused("photo_not_image", add_photo, station.store, b"not a png", "image/png")
    refused("search_photo_missing", sign, station.store, rec.id, form(photos=["ab" * 32]))
    assert sign(station.store, rec.id, form(photos=[sha])).photos == [sha]


def test_a_photo_that_does_not_decode_is_refused_and_not_kept(station: SearchStation) -> None:
    """A PNG or JPEG header followed by no image, a photo cut short or a decompression bomb passed the check of its
    first bytes: it was kept and signed into the report, and only the printed PDF named it unreadable."""
    jpeg = photo(".jpg")
    for data, kind in ((b"\x89PNG\r\n\x1a\n" + bytes(range(64)), "image/png"), (jpeg[:len(jpeg) // 2], "image/jpeg"),
                       (photo(".png")[:-200], "image/png"), (decompression_bomb(), "image/png")):
        why = refused("photo_unreadable", add_photo, station.store, data, kind)
        assert f"the {kind} photo of {len(data)} bytes does not decode as an image" in str(why)
    assert not list(station.store.data_dir.glob("photos/*/*"))


async def test_a_station_camera_takes_a_photo_now_even_untriggered(station: SearchStation) -> None:
    cfg = CameraConfig(kind="sim", role="front_plate")
    async with open_camera(cfg, "front") as camera:
        photos = camera_photos({"front": camera})
        assert list(photos) == ["front"]
        data = await photos["front"]()  # no vehicle at the eyes: an officer's photo is taken all the same
    assert data.startswith(b"\xff\xd8\xff")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[2] == 3 and image.std() > 5  # a rendered vehicle, not a blank frame
    sha = add_photo(station.store, data, "image/jpeg")
    rec = station.vehicle()
    assert sign(station.store, rec.id, form(photos=[sha])).photos == [sha]


async def test_a_camera_without_a_usable_frame_is_a_link_error_not_a_photo() -> None:
    cfg = CameraConfig(kind="sim", role="front_plate", sim=CameraSim(bad_every=1))  # every frame broken
    async with open_camera(cfg, "front") as camera:
        with pytest.raises(LinkLost, match="camera front gave no usable frame"):
            await camera_jpeg(camera)
        assert sum(camera.bad_frames.values()) == 1  # counted like any bad frame
