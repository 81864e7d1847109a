"""The inspection record: what the station stores, syncs and shows, and the hub ingests.

Versioned by `schema`; changes are additive only (new optional fields). Both the station and the
hub import this module; it imports nothing from either.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class Verdict(StrEnum):
    CLEAR = "clear"
    SUSPECT = "suspect"
    MANUAL = "manual"


class ItemKind(StrEnum):
    BAGGAGE = "baggage"
    PARCEL = "parcel"
    VEHICLE = "vehicle"
    CONTAINER = "container"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SealStatus(_Frozen):
    """An e-seal's state as its reader reported it: intact, opened or tampered, its battery, its last event."""

    state: Literal["intact", "opened", "tampered"]
    battery_low: bool = False
    battery_pct: int | None = None
    last_event_at: datetime | None = None
    events: int | None = None  # the seal's event counter (a jump means an event was missed)


class Identity(_Frozen):
    """An identity read during the inspection: an RFID tag, the officer's badge, a plate, a container, a seal.

    `rfid` is a 125 kHz tag's id (older records; `em4100` names the same); a UHF tag gives `rfid_tid` (its
    factory TID, the vehicle's binding) and `rfid_epc` (its rewritable EPC); `seal` is an e-seal's number
    with its `seal` status (`eseal` is the older name). The fields after `source` are optional (schema 1,
    additive). A camera read (`plate`, `container`) carries its `status` (read, corrected, low_confidence,
    check_failed, unread), what the recogniser saw (`raw`) and the sha256 of its evidence `crop` (a PNG
    kept by the station's store); its `value` is empty unless the status is read or corrected: a failed
    read is never guessed. `confidence` of a recognised read (0-1; None for a read that is exact), when it
    was read, `checks` (e.g. {"iso6346": "ok"}, {"jurisdiction": "HK"}) and `conflict`: one sentence saying
    which other read it conflicts with (set by edge.identity; a conflict is flagged, never resolved by
    dropping a read).
    """

    kind: Literal["rfid", "rfid_tid", "rfid_epc", "em4100", "badge", "plate", "container", "eseal", "seal"]
    value: str
    source: str = ""  # device name that read it
    status: Literal["read", "corrected", "low_confidence", "check_failed", "unread"] | None = None
    confidence: float | None = Field(default=None, ge=0, le=1)
    raw: str = ""
    crop: str = ""  # sha256 of the evidence crop (PNG), under the station's crops directory
    read_at: datetime | None = None
    checks: dict[str, str] = Field(default_factory=dict)
    conflict: str | None = None
    seal: SealStatus | None = None


class SealEventOut(_Frozen):
    """A seal event heard while the item was in the lane (a seal opened or tampered at the gantry shows here)."""

    seal_id: str
    state: Literal["intact", "opened", "tampered"]
    at: datetime  # when the station heard it
    reader: str = ""
    events: int | None = None


class DetectionOut(_Frozen):
    label: str
    score: float
    box: tuple[float, float, float, float]


class ModelRef(_Frozen):
    name: str
    version: str
    sha256: str


class ScanRef(_Frozen):
    sha256: str
    size: int
    shape: tuple[int, int]


class Review(_Frozen):
    """The officer's decision on an item."""

    officer: str
    decided_at: datetime
    outcome: Literal["threat_confirmed", "false_alarm", "cleared", "override"]
    label: str | None = None
    boxes: list[tuple[float, float, float, float]] = Field(default_factory=list)
    note: str = ""
    explained: list[int] = Field(default_factory=list)  # indexes of `history.regions` the officer marked explained


class HistoryChange(_Frozen):
    """A change against the vehicle's reference pass (models.history.compare.ChangeRegion): box [column0,
    line0, column1, line1] of the current scan, added or removed, steel-equivalent mass, area, location."""

    box: tuple[float, float, float, float]
    kind: str
    mass_kg_fe: float
    area_cm2: float
    location: str
    score: float
    ratio: float = 0.0


class History(_Frozen):
    """The vehicle's history on this pass (edge/history.py): `no_history` when the hub had no reference in
    time (or was unreachable), `compared` with the change regions (heaviest first), `failed` / `over_budget`
    with why. Informs the officer and the risk rules; it never changes the detector's verdict."""

    status: Literal["compared", "no_history", "failed", "over_budget"]
    identity: str = ""  # "kind:value" the references were found by
    reference_ids: list[str] = Field(default_factory=list)
    reference_scan: str | None = None  # sha256 of the reference's scan (the station's history cache holds it)
    registration: dict[str, float] = Field(default_factory=dict)
    regions: list[HistoryChange] = Field(default_factory=list)
    suppressed: dict[str, int] = Field(default_factory=dict)
    compare_ms: float | None = None
    detail: str = ""


class RouteTaken(_Frozen):
    """Where a conveyor's divert gate actually sent the item, and why; it may differ from the verdict
    (a `clear` item goes to manual when the PLC link was lost before it reached the gate)."""

    to: Literal["pass", "manual"]
    reason: str  # a stable code, e.g. "clear", "suspect", "late", "link_lost", "estop", "collateral"
    at: datetime


class InspectionRecord(_Frozen):
    """One inspected item. `id` is time-ordered and unique; `seq` is per-station monotonic."""

    schema_: int = Field(SCHEMA_VERSION, alias="schema")
    id: str
    seq: int
    station: str
    lane: str
    kind: ItemKind
    started_at: datetime
    decided_at: datetime
    identities: list[Identity] = Field(default_factory=list)
    scan: ScanRef | None = None
    detections: list[DetectionOut] = Field(default_factory=list)
    model: ModelRef | None = None
    verdict: Verdict
    reason: str  # a stable code, e.g. "clear", "detection", "budget_missed", "scan_incomplete"
    latencies_ms: dict[str, float] = Field(default_factory=dict)
    budget_ms: float
    review: Review | None = None
    route: RouteTaken | None = None  # conveyor stations: set once the item reached the divert gate
    seal_events: list[SealEventOut] = Field(default_factory=list)
    history: History | None = None  # vehicles: the comparison with the vehicle's reference pass (issue 19)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)
