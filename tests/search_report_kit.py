"""Shared by the search report tests: a station store with a vehicle record, an officer and a supervisor."""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from central_sync.devtools import make_record
from central_sync.schema import Identity, InspectionRecord, ItemKind, SearchFinding, Verdict
from edge import audit
from central_sync import blobs
from edge.auth import add_user
from edge.search_report import ReportForm
from edge.store import Store
from edge.web.deps import ensure_schema

OFFICER = ("0A1B2C3D", "Officer Chan", "officer", "13579")
OFFICER_2 = ("0A1B2C3E", "Officer Wong", "officer", "24680")
SUPERVISOR = ("5A5A5A5A", "Supervisor Lee", "supervisor", "97531")
PLATE = "粤Z·A123港"
HK_PLATE = "AB 1234"


@dataclass
class SearchStation:
    store: Store

    def vehicle(self, plate: str = HK_PLATE) -> InspectionRecord:
        """A van sent to search, committed as the daemon does (seq, outbox)."""
        return self.store.commit(vehicle_record(self.store.station, plate), scan_stored=False)


def vehicle_record(station: str, plate: str = HK_PLATE) -> InspectionRecord:
    """A vehicle the officer sent to the search bay (manual verdict), with its plates and container read."""
    return make_record(station, 0, Verdict.MANUAL).model_copy(update={
        "kind": ItemKind.VEHICLE, "reason": "device_fault", "identities": [
            Identity(kind="plate", value=plate, source="cam-front"),
            Identity(kind="plate", value=PLATE, source="cam-rear"),
            Identity(kind="container", value="CSQU3054383", source="cam-top")]})


def open_station(path: Path, station: str = "gantry-1") -> SearchStation:
    store = Store(path, station=station).open()
    ensure_schema(store)
    audit.ensure_schema(store.conn)
    for badge, name, role, pin in (OFFICER, OFFICER_2, SUPERVISOR):
        add_user(store, badge, name, role, pin)
    return SearchStation(store)


def form(signer: tuple[str, str, str, str] = OFFICER, seizure: bool = False, **changes: object) -> ReportForm:
    findings = [SearchFinding(goods="cigarettes", hs_class="2402.20", quantity=40, unit="cartons", weight_kg=12.5,
                              area="spare_wheel")] if seizure else []
    body: dict[str, object] = {"vehicle_type": "van", "areas": ["cargo_area", "spare_wheel", "floor"],
                               "methods": ["manual", "dog"], "minutes": 35, "findings": findings,
                               "notes": "panel behind the spare wheel re-welded", "badge": signer[0], "pin": signer[3]}
    return ReportForm.model_validate({**body, **changes})


def photo(fmt: str = ".png", seed: int = 0) -> bytes:
    """A small real photo (noise, so that each seed gives another), encoded as ".png" or ".jpg": the station keeps
    only photos that decode."""
    image = np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    ok, data = cv2.imencode(fmt, image)
    assert ok
    return data.tobytes()


def decompression_bomb() -> bytes:
    """A PNG of a few dozen bytes announcing 20000 x 20000 pixels: PIL refuses it as a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b""))


def on_disk(store: Store, data: bytes) -> str:
    """A file put in the station's photo directory without the screen's checks (damaged on disk, or copied there by
    hand); its sha256."""
    sha = hashlib.sha256(data).hexdigest()
    path = blobs.photo_path(store.data_dir, sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return sha
