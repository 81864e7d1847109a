"""The search report's HTTP routes on a running station screen: who may sign, the signature form cannot be used to
guess PINs (the sign-in lockout counts its wrong PINs), photos are checked, versions are listed and printed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from edge.web.config import TipConfig, WebConfig
from edge.web.demo import DEMO_USERS, StationHarness
from edge import audit
from edge.web.routes_search import refusals
from search_report_kit import photo, vehicle_record

OFFICER, SUPERVISOR, TECHNICIAN = ((b, p) for b, _, _, p in DEMO_USERS)


@pytest.fixture
def station(tmp_path: Path) -> Iterator[StationHarness]:
    with StationHarness(tmp_path / "data", WebConfig(tip=TipConfig(enabled=False), max_failed_signins=3)) as h:
        h.add_demo_users()
        yield h


@contextmanager
def client(station: StationHarness, who: tuple[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=station.url, timeout=30) as http:
        assert http.post("/api/signin", json={"badge": who[0], "pin": who[1]}).status_code == 200
        yield http


def body(badge: str, pin: str) -> dict[str, object]:
    return {"vehicle_type": "lorry", "areas": ["cargo_bay", "fuel_tank"], "methods": ["probe"], "minutes": 20,
            "notes": "", "badge": badge, "pin": pin}


def test_wrong_signature_pins_lock_the_badge_like_sign_ins_and_a_technician_signs_nothing(
        station: StationHarness) -> None:
    rec = station.call(lambda s: s.commit(vehicle_record(s.station), scan_stored=False))
    url = f"/api/cases/{rec.id}/search-reports"
    before = refusals["signature_refused"]
    with client(station, OFFICER) as http:
        for _ in range(3):
            r = http.post(url, json=body(OFFICER[0], "0000"))
            assert (r.status_code, r.json()["detail"]) == (403, "signature_refused")
        assert refusals["signature_refused"] - before == 3  # counted (and logged) by code
        # audited as a sign-in's wrong PIN is: the first in the window and the lock, the record their object
        trail = station.call(lambda s: [(a.actor, a.action, a.object) for a in audit.entries(s.conn)
                                        if a.action.startswith("signin.")])
        assert trail[::-1] == [(OFFICER[0], "signin.refused", rec.id), (OFFICER[0], "signin.locked", rec.id)]
        locked = http.post(url, json=body(OFFICER[0], OFFICER[1]))  # even the right PIN waits out the lock
        assert (locked.status_code, locked.json()["detail"]) == (429, "signin_locked") and "retry-after" in locked.headers
        signed = http.post(url, json=body(SUPERVISOR[0], SUPERVISOR[1]))  # another badge is not locked
        assert signed.status_code == 200, signed.text
        assert signed.json()["versions"][0]["outcome"] == "nothing_found" and signed.json()["search_outcome"] == "nothing_found"
        assert http.post("/api/cases/nope/search-reports", json=body(SUPERVISOR[0], SUPERVISOR[1])).status_code == 404
        bad = dict(body(SUPERVISOR[0], SUPERVISOR[1]), areas=["fifth_wheel"])
        assert http.post(url, json=bad).json()["detail"] == "search_area_unknown"
        assert http.get(f"{url}/1.html").status_code == 200 and http.get(f"{url}/9.pdf").status_code == 404
        counted = refusals["photo_not_image"], refusals["photo_too_large"]
        assert http.post("/api/search-photos", content=b"GIF89a", headers={"content-type": "image/gif"}).status_code == 415
        big = b"\x89PNG\r\n\x1a\n" + bytes(8 * 1024 * 1024)
        assert http.post("/api/search-photos", content=big, headers={"content-type": "image/png"}).status_code == 413
        assert (refusals["photo_not_image"], refusals["photo_too_large"]) == (counted[0] + 1, counted[1] + 1)
        assert http.post("/api/search-photos/camera/none").json()["detail"] == "camera_unknown"
        assert http.get("/api/search-photos/" + "0" * 64).status_code == 404
    with client(station, TECHNICIAN) as http:
        assert http.post(url, json=body(OFFICER[0], OFFICER[1])).status_code == 403  # the screen's user may not sign
        assert http.get(url).status_code == 403
    record = station.call(lambda s: s.get(rec.id))
    assert record is not None and [r.officer.badge for r in record.search_reports] == [SUPERVISOR[0]]


def test_photo_names_are_hashes_not_paths_and_an_unknown_record_is_not_found(station: StationHarness) -> None:
    """A photo name is its sha256 under data_dir/photos: a path there was read as any file of the station's (the
    signer learnt whether it exists, and its picture was printed into the signed report)."""
    rec = station.call(lambda s: s.commit(vehicle_record(s.station), scan_stored=False))
    url = f"/api/cases/{rec.id}/search-reports"
    database = str(station.call(lambda s: s.db_path))
    with client(station, OFFICER) as http:
        for name in ("/etc/passwd", database, "../station.db", "AB" * 32):
            r = http.post(url, json=dict(body(OFFICER[0], OFFICER[1]), photos=[name]))
            assert r.status_code == 422 and r.json()["detail"][0]["loc"][-2:] == ["photos", 0], r.text
        r = http.post("/api/cases/nope/search-reports/1/countersign", json={"badge": SUPERVISOR[0], "pin": SUPERVISOR[1]})
        assert (r.status_code, r.json()["detail"]) == (404, "case_not_found"), r.text
    assert station.call(lambda s: s.get(rec.id)).search_reports == []


def test_a_photo_sent_without_a_length_is_refused_once_it_passes_the_limit(station: StationHarness) -> None:
    """A chunked upload announces no length: it is counted as it comes (the route stops reading past the limit
    instead of holding the whole body first), refused past the limit; a small one is kept."""
    from edge.web.routes_search import MAX_PHOTO_BYTES

    def chunks():
        yield b"\x89PNG\r\n\x1a\n"
        for _ in range(MAX_PHOTO_BYTES // (1 << 20) + 4):
            yield bytes(1 << 20)
    with client(station, OFFICER) as http:
        r = http.post("/api/search-photos", content=chunks(), headers={"content-type": "image/png"})
        assert r.status_code == 413, r.text
        assert http.post("/api/search-photos", content=iter([photo(".png")]),
                         headers={"content-type": "image/png"}).status_code == 200


def test_a_photo_that_does_not_decode_is_refused_at_upload_and_from_a_camera(station: StationHarness) -> None:
    """A PNG header followed by no image (or a JPEG cut short) was kept at upload, and a camera's bytes were kept
    unchecked: only the printed PDF later named the photo unreadable. Both are refused, counted and not kept."""
    jpeg = photo(".jpg")

    async def cut_short() -> bytes:  # a camera whose frame came through cut short
        return jpeg[:len(jpeg) // 2]

    station.ctx.cameras["bay"] = cut_short
    with client(station, OFFICER) as http:
        counted = refusals["photo_unreadable"]
        for content in (b"\x89PNG\r\n\x1a\n" + bytes(64), photo(".png")[:-200]):
            r = http.post("/api/search-photos", content=content, headers={"content-type": "image/png"})
            assert (r.status_code, r.json()["detail"]) == (422, "photo_unreadable"), r.text
        r = http.post("/api/search-photos/camera/bay")
        assert (r.status_code, r.json()["detail"]) == (422, "photo_unreadable"), r.text
        assert refusals["photo_unreadable"] == counted + 3
        kept = http.post("/api/search-photos", content=jpeg, headers={"content-type": "image/jpeg"})
        assert kept.status_code == 200 and http.get(f"/api/search-photos/{kept.json()['sha256']}").content == jpeg
    assert [p.name for p in station.call(lambda s: s.data_dir).glob("photos/*/*")] == [kept.json()["sha256"]]
