"""The electronic vehicle search report: what an officer fills for a vehicle sent to the search bay.

A report is signed by the officer with badge + PIN (checked again when signing: a screen left signed in
does not sign for its user) and stored on the inspection record (`InspectionRecord.search_reports`), in
the same transaction that queues the record for the hub (edge/store.py `update_record`). Every signed
edit is a new version; the versions before it stay on the record and in the audit log. A report with
findings is a seizure: it is final only once a supervisor, not the officer who signed it, countersigns
that version with badge + PIN; until then the pass's `search_outcome` is `pending`, never a clean pass.

The vehicle diagrams are declared here (one table per vehicle type: area name and its rectangle in a
100 x 40 side view); the screen draws them as SVG with clickable areas and the printed report lists them.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Literal

import cv2
import PIL.Image
from pydantic import BaseModel, ConfigDict, Field, field_validator

from central_sync import blobs
from central_sync.schema import (InspectionRecord, ItemKind, SearchFinding, SearchReport, SearchSignature,
                                 search_outcome)
from drivers.camera import CameraBase
from drivers.errors import LinkLost
from edge import audit, auth
from edge.errors import EdgeError
from edge.store import Store

VehicleType = Literal["saloon", "van", "lorry", "tractor_container"]
Rect = tuple[int, int, int, int]  # x, y, width, height in the diagram's 100 x 40 view


@dataclass(frozen=True)
class Area:
    name: str
    rect: Rect


DIAGRAMS: dict[str, tuple[Area, ...]] = {
    "saloon": (Area("engine", (4, 14, 18, 12)), Area("cabin_front", (22, 8, 18, 18)),
               Area("cabin_rear", (40, 8, 18, 18)), Area("boot", (58, 14, 16, 12)), Area("roof", (22, 2, 36, 6)),
               Area("doors", (22, 26, 36, 4)), Area("fuel_tank", (58, 26, 12, 6)),
               Area("spare_wheel", (74, 14, 8, 12)), Area("underbody", (4, 30, 78, 4)),
               Area("wheels", (84, 14, 12, 20))),
    "van": (Area("engine", (2, 16, 12, 12)), Area("cab", (14, 8, 16, 20)), Area("cargo_area", (30, 6, 52, 22)),
            Area("roof", (14, 2, 68, 4)), Area("side_panels", (30, 28, 52, 3)), Area("doors", (82, 6, 6, 22)),
            Area("floor", (14, 31, 68, 3)), Area("fuel_tank", (40, 34, 14, 4)),
            Area("spare_wheel", (60, 34, 10, 4)), Area("wheels", (90, 16, 8, 20))),
    "lorry": (Area("engine", (2, 18, 10, 12)), Area("cab", (12, 8, 14, 22)), Area("sleeper", (26, 8, 6, 22)),
              Area("cargo_bay", (34, 4, 56, 24)), Area("roof", (34, 0, 56, 4)), Area("floor", (34, 28, 56, 3)),
              Area("side_panels", (90, 4, 8, 24)), Area("fuel_tank", (14, 32, 14, 5)),
              Area("toolbox", (30, 32, 10, 5)), Area("spare_wheel", (44, 32, 10, 5)),
              Area("chassis", (56, 32, 34, 5))),
    "tractor_container": (Area("tractor_cab", (2, 8, 14, 22)), Area("engine", (16, 18, 8, 12)),
                          Area("fuel_tank", (4, 31, 14, 5)), Area("fifth_wheel", (20, 31, 10, 5)),
                          Area("container_roof", (26, 2, 64, 4)), Area("container_walls", (26, 6, 58, 22)),
                          Area("container_doors", (84, 6, 6, 22)), Area("container_floor", (26, 28, 64, 3)),
                          Area("chassis", (32, 32, 50, 4)), Area("spare_wheel", (84, 32, 10, 4))),
}
METHODS = ("manual", "probe", "dog", "opened_panels")
SEARCHED_KINDS = (ItemKind.VEHICLE, ItemKind.CONTAINER)


class SearchReportRefused(EdgeError):
    """A report that may not be signed or countersigned as asked; `code` is the catalogue key, `status` HTTP's."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code = status, code


class ReportForm(BaseModel):
    """What the officer filled, and the badge + PIN that sign it."""

    model_config = ConfigDict(extra="forbid")
    vehicle_type: VehicleType
    areas: list[str] = Field(default_factory=list, max_length=40)
    methods: list[Literal["manual", "probe", "dog", "opened_panels"]] = Field(default_factory=list, max_length=4)
    minutes: int = Field(ge=0, le=24 * 60)
    findings: list[SearchFinding] = Field(default_factory=list, max_length=50)
    # each a photo's sha256 (its name under data_dir/photos): a path here was read as a file of the station's,
    # its existence told to the signer and its picture printed into the signed report
    photos: list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(default_factory=list, max_length=20)
    notes: str = Field("", max_length=4000)
    badge: str = Field(max_length=64)
    pin: str = Field(max_length=32)

    @field_validator("areas")
    @classmethod
    def _each_area_once(cls, areas: list[str]) -> list[str]:
        """An area searched is named once (the same area 40 times was signed and printed 40 times)."""
        return list(dict.fromkeys(areas))

    @field_validator("findings")
    @classmethod
    def _goods_named(cls, findings: list[SearchFinding]) -> list[SearchFinding]:
        """A finding names its goods: one of blank space (accepted through the API; the screen drops them) was
        signed as a seizure of nothing anyone could read."""
        blank = [i + 1 for i, f in enumerate(findings) if not f.goods.strip()]
        if blank:
            raise ValueError(f"findings {blank} name no goods (only blank space)")
        return findings


class Countersignature(BaseModel):
    model_config = ConfigDict(extra="forbid")
    badge: str = Field(max_length=64)
    pin: str = Field(max_length=32)


def diagrams() -> dict[str, list[dict[str, object]]]:
    """The diagrams as the screen draws them."""
    return {kind: [{"name": a.name, "rect": list(a.rect)} for a in areas] for kind, areas in DIAGRAMS.items()}


def content_digest(report: SearchReport) -> str:
    """sha256 of what a signature covers: the report without its signatures (canonical JSON)."""
    return report.content_digest()


def _signer(store: Store, badge: str, pin: str) -> auth.User:
    try:
        return auth.authenticate(store.conn, badge, pin)
    except auth.AuthError as exc:
        raise SearchReportRefused(403, "signature_refused", "badge or PIN not accepted for the signature") from exc


def _check(form: ReportForm, record: InspectionRecord, photo_exists: set[str]) -> None:
    """Refuse a form whose areas do not belong to its vehicle's diagram or that names a photo not stored."""
    if record.kind not in SEARCHED_KINDS:
        raise SearchReportRefused(422, "search_not_vehicle", f"record {record.id} is a {record.kind.value}, not a vehicle")
    names = {a.name for a in DIAGRAMS[form.vehicle_type]}
    wrong = sorted({*form.areas, *(f.area for f in form.findings)} - names)
    if wrong:
        raise SearchReportRefused(422, "search_area_unknown",
                                  f"areas {', '.join(wrong)} are not on the {form.vehicle_type} diagram")
    missing = [p for p in form.photos if p not in photo_exists]
    if missing:
        raise SearchReportRefused(422, "search_photo_missing", f"photos {', '.join(m[:12] for m in missing)} are not stored")


def _signature(user: auth.User, report: SearchReport, now: datetime) -> SearchSignature:
    return SearchSignature(badge=user.badge, name=user.name, role=user.role, signed_at=now, digest=content_digest(report))


def sign(store: Store, record_id: str, form: ReportForm, now: datetime | None = None) -> SearchReport:
    """Sign a new version of the record's report (version 1, or the latest + 1, which it supersedes)."""
    user = _signer(store, form.badge, form.pin)
    if not user.can("search.report"):
        raise SearchReportRefused(403, "forbidden", f"{user.role} {user.badge} may not sign a search report")
    now = now or datetime.now(timezone.utc)
    photos = {p for p in form.photos if store.photo_path(p).exists()}
    made: list[SearchReport] = []

    def change(record: InspectionRecord) -> dict[str, object]:
        _check(form, record, photos)
        if (not form.findings and any(r.outcome == "seizure" for r in record.search_reports)
                and not user.can("search.countersign")):
            # a version with nothing found is final when signed and makes the pass a clean one (a reference for
            # the vehicle's history, feedback to the risk engine): over a seizure, only a supervisor signs it
            raise SearchReportRefused(403, "seizure_withdrawn_by_supervisor",
                                      f"{user.role} {user.badge} may not sign 'nothing found' over the seizure "
                                      f"reported on {record.id}; a supervisor signs that version")
        latest = record.search_reports[-1].version if record.search_reports else None
        unsigned = SearchSignature(badge=user.badge, role=user.role, signed_at=now, digest="0" * 64)
        draft = SearchReport.model_validate({**form.model_dump(exclude={"badge", "pin"}), "version": (latest or 0) + 1,
                                             "supersedes": latest, "officer": unsigned,
                                             "outcome": "seizure" if form.findings else "nothing_found"})
        report = draft.model_copy(update={"officer": _signature(user, draft, now)})
        made.append(report)
        return {"search_reports": [*record.search_reports, report]}

    store.update_record(record_id, change)
    report = made[0]
    audit.append(store.conn, user.badge, "search.report_signed", record_id,
                 {"version": report.version, "outcome": report.outcome, "digest": report.officer.digest,
                  "supersedes": report.supersedes})
    return report


def countersign(store: Store, record_id: str, version: int, body: Countersignature,
                now: datetime | None = None) -> SearchReport:
    """A supervisor's countersignature on the latest version of a seizure report, making it final."""
    user = _signer(store, body.badge, body.pin)
    if not user.can("search.countersign"):
        raise SearchReportRefused(403, "countersign_needs_supervisor",
                                  f"{user.role} {user.badge} may not countersign a search report")
    now = now or datetime.now(timezone.utc)
    made: list[SearchReport] = []

    def change(record: InspectionRecord) -> dict[str, object]:
        reports = list(record.search_reports)
        if not reports or reports[-1].version != version:
            raise SearchReportRefused(409, "search_version_superseded",
                                      f"version {version} of the report on {record_id} is not its latest")
        latest = reports[-1]
        if latest.outcome != "seizure" or latest.countersigned is not None:
            raise SearchReportRefused(409, "countersign_not_needed",
                                      f"version {version} of the report on {record_id} needs no countersignature")
        if latest.officer.badge == user.badge:
            raise SearchReportRefused(403, "countersign_by_other",
                                      f"{user.badge} signed version {version} and may not countersign it")
        reports[-1] = latest.model_copy(update={"countersigned": _signature(user, latest, now)})
        made.append(reports[-1])
        return {"search_reports": reports}

    store.update_record(record_id, change)
    audit.append(store.conn, user.badge, "search.report_countersigned", record_id,
                 {"version": version, "digest": made[0].countersigned.digest if made[0].countersigned else ""})
    return made[0]


def add_photo(store: Store, data: bytes, content_type: str) -> str:
    """Keep a photo (JPEG or PNG that decodes, `check_photo`) under the store's bounds; its sha256."""
    check_photo(data, content_type)
    return keep_photo(store, data)


def check_photo(data: bytes, content_type: str) -> None:
    """Refuse a photo that is not a JPEG or PNG by its magic bytes, or whose image does not decode whole: a PNG or
    JPEG header followed by no image, a file cut short, a decompression bomb (PIL's guard, as the printed report
    draws it). Such a photo was kept and signed into the report, and only the printed PDF named it unreadable."""
    if content_type not in blobs.PHOTO_MAGIC or blobs.photo_type(data) != content_type:
        raise SearchReportRefused(415, "photo_not_image", f"a photo must be JPEG or PNG, got {content_type!r}")
    try:
        with PIL.Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception as exc:  # any failure to decode: UnidentifiedImageError or a truncated file (OSError),
        # DecompressionBombError, SyntaxError (a broken PNG chunk), ValueError
        raise SearchReportRefused(422, "photo_unreadable", f"the {content_type} photo of {len(data)} bytes does not "
                                  f"decode as an image ({type(exc).__name__})") from exc


def keep_photo(store: Store, data: bytes) -> str:
    """Store a photo already checked (`check_photo`); its sha256."""
    sha = hashlib.sha256(data).hexdigest()
    if not store.put_photo(sha, data):
        raise SearchReportRefused(507, "photo_not_stored", f"photo {sha[:12]} could not be stored (disk bounds)")
    return sha


def camera_photos(cameras: Mapping[str, CameraBase]) -> dict[str, Callable[[], Awaitable[bytes]]]:
    """For each station camera, a call that takes a photo now (JPEG), as the screen's camera buttons do."""
    return {name: functools.partial(camera_jpeg, camera) for name, camera in cameras.items()}


async def camera_jpeg(camera: CameraBase) -> bytes:
    """One frame from the camera, JPEG-encoded off the event loop; LinkLost when it gives none."""
    frame = await camera.snapshot()
    ok, data = await asyncio.to_thread(cv2.imencode, ".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise LinkLost(f"camera {camera.name} gave a frame of shape {frame.image.shape} that does not encode as JPEG")
    return data.tobytes()


def view(record: InspectionRecord) -> dict[str, object]:
    """The record's reports as the screen shows them: every version, the latest first, and the pass's outcome."""
    versions = [{**r.model_dump(mode="json"), "final": r.final} for r in reversed(record.search_reports)]
    return {"record": record.id, "versions": versions, "search_outcome": search_outcome(record.search_reports)}
