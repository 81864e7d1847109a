"""The inspection record: what the station stores, syncs and shows, and the hub ingests.

Versioned by `schema`; changes are additive only (new optional fields). Both the station and the
hub import this module; it imports nothing from either.
"""

from __future__ import annotations

import hashlib
import json
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


ConflictCode = Literal["container_check_digit", "container_format", "plates_one_jurisdiction", "epcs_one_tid",
                       "tag_flood", "epc_changed", "two_lanes", "tag_reread"]
"""What a conflict is, by the values it names (`ConflictNote.values`):

    container_check_digit  code, expected (the check digit the code should end with)
    container_format       code (not 3 letters + U/J/Z + 7 digits)
    plates_one_jurisdiction plates, jurisdiction (two plates or more of one jurisdiction on one vehicle)
    epcs_one_tid           epcs, tid (two EPCs or more read from one tag TID)
    tag_flood              reader, limit, item, tag (the reader read more than `limit` tags during the item; `tag` and
                           those after it are not recorded)
    epc_changed            tid, epc_before, epc, lane (the TID was bound to another EPC)
    two_lanes              tid, lane, lanes (the TID is seen at `lane` while present at `lanes`)
    tag_reread             tag, reader, item, seconds (the tag, read by `reader`, was on `item`'s record and left the
                           field `seconds` before: it may be that vehicle's)

A value naming several (plates, epcs, lanes) holds them sorted, joined by ", ".
"""


class ConflictNote(_Frozen):
    """One conflict of an identity as a code and the values its sentence names, for a screen to say in its language
    (the identity's `conflict` keeps the English sentences for the log and for older readers)."""

    code: ConflictCode
    values: dict[str, str] = Field(default_factory=dict)


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
    dropping a read), several joined by "; ". `conflicts` says the same as codes with their values (one
    ConflictNote per sentence; added later in schema 1: an older record has none, and its sentence is what a
    screen shows).
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
    conflicts: list[ConflictNote] = Field(default_factory=list)


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


class SearchResult(_Frozen):
    """What the physical inspection of an item found: the feedback risk assessment learns from
    (the hub's hit rates per rule, watchlist and random selection; central_sync/riskhub/feedback.py)."""

    outcome: Literal["nothing_found", "seized"]
    goods_class: str | None = Field(None, max_length=64, description="what was seized, e.g. cigarettes")
    quantity: float | None = Field(None, ge=0)
    unit: str | None = Field(None, max_length=16, description="of the quantity: kg, pcs, l")


class Review(_Frozen):
    """The officer's decision on an item; `search` once a physical inspection has a result."""

    officer: str
    decided_at: datetime
    outcome: Literal["threat_confirmed", "false_alarm", "cleared", "override"]
    label: str | None = None
    boxes: list[tuple[float, float, float, float]] = Field(default_factory=list)
    note: str = ""
    search: SearchResult | None = None
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
    net_kg: float | None = None  # the net steel-equivalent mass of the padded box (models.history.compare)
    occupant: bool = False  # the size and softness of a seated person in the cab (reported only when asked for)
    confidence: float | None = None  # the region judge's probability that it is a real change (a ranking, 0–1)


class ContainerPass(_Frozen):
    """What this pass of a container was (issue 19, schema 1, additive): its ISO 6346 size/type code (e.g. 45G1,
    22G1) when the station knows it, and whether the declaration the risk check found says it travels empty
    (`declaration`: that declaration's ref; None each: not known). The hub offers a container's clean passes
    declared empty as references for other containers of the same size/type (central_sync/hub/history.py)."""

    size_type: str | None = Field(None, pattern=r"^[0-9LM][0-9][A-Z][0-9A-Z]$")
    declared_empty: bool | None = None
    declaration: str = Field("", max_length=64)


HistoryCode = Literal["no_identity", "not_arrived", "hub_unavailable", "no_reference", "identity_conflict",
                      "type_not_declared_empty", "type_other_width", "reference_not_held", "other_scanner",
                      "over_budget", "compare_failed", "internal_error"]
"""Why a pass was not compared (`History.code`), by the values its sentence names (`History.values`):

    no_identity             (none) no plate, container number or UHF tag TID was read
    not_arrived             (none) the hub's answer had not arrived when the scan ended
    hub_unavailable         (none) the hub could not be asked or did not answer, and the station holds nothing cached
    no_reference            passes (earlier passes of the vehicle, none of them a reference)
    identity_conflict       kind, value (the only identity with a history was read in conflict with another read)
    type_not_declared_empty (none) the only references are other containers of its size/type travelling empty, and
                            this pass is not declared empty
    type_other_width        reference, reference_px, scan_px (detector pixels across: another kind of gantry)
    reference_not_held      reference (its scan is not held by the station or could not be read)
    other_scanner           reference, what (pixel_mm, line_mm or energy_kev), reference_value, scan_value
    over_budget             budget_ms
    compare_failed          reference (the comparison with it raised an error; `detail` says which)
    internal_error          (none) anything else the comparison could not handle (`detail` says what)
"""


class History(_Frozen):
    """The vehicle's history on this pass (edge/history.py): `no_history` when the hub had no reference in
    time (or was unreachable), `compared` with the change regions (heaviest first), `failed` / `over_budget`
    with why. Informs the officer and the risk rules; it never changes the detector's verdict.

    `detail` says why in one English sentence (logs, CLI, hub); a pass not compared also says it as `code` with the
    values its sentence names (HistoryCode), for a screen to say in its language (added later in schema 1: an older
    record has none, and a screen shows its status alone)."""

    status: Literal["compared", "no_history", "failed", "over_budget"]
    identity: str = ""  # "kind:value" the references were found by
    basis: Literal["same_vehicle", "same_type_empty"] = "same_vehicle"  # same_type_empty: another container of the
    # same size/type declared empty; only the container's part of the vehicle is compared (edge/history.py)
    reference_ids: list[str] = Field(default_factory=list)
    reference_scan: str | None = None  # sha256 of the reference's scan (the station's history cache holds it)
    registration: dict[str, float] = Field(default_factory=dict)
    regions: list[HistoryChange] = Field(default_factory=list)
    suppressed: dict[str, int] = Field(default_factory=dict)
    uncompared: list[tuple[float, float, float, float]] = Field(default_factory=list, max_length=64)  # boxes
    # [column0, line0, column1, line1] of the current scan where nothing was compared (the beam was off there in this
    # pass or the reference: models.history.compare.not_compared); no change shown there means nothing
    compare_ms: float | None = None
    detail: str = ""
    code: HistoryCode | None = None
    values: dict[str, str] = Field(default_factory=dict)


class RouteTaken(_Frozen):
    """Where a conveyor's divert gate actually sent the item, and why; it may differ from the verdict
    (a `clear` item goes to manual when the PLC link was lost before it reached the gate)."""

    to: Literal["pass", "manual"]
    reason: str  # a stable code, e.g. "clear", "suspect", "late", "link_lost", "estop", "collateral"
    at: datetime


class RiskFired(_Frozen):
    """One thing that raised the risk lane: a rule, a watchlist entry, the random draw, no bundle, a stale one."""

    id: str
    kind: Literal["rule", "watchlist", "random", "no_bundle", "stale"]
    reason: str  # text for the officer, or a catalogue key (e.g. "declared_empty_not_empty")
    score: int
    lane: Literal["red", "amber", "green"]
    level: int = 0  # need-to-know level of a watchlist entry


class RiskDraw(_Frozen):
    """The auditable random draw: value from sha256(f"{seed}:{item id}"), selected when below the rate."""

    seed: str
    draw: float
    rate: float
    selected: bool


class RiskOut(_Frozen):
    """The risk assessment the verdict was made stricter with (risk.engine.Assessment.to_record)."""

    lane: Literal["red", "amber", "green"]
    score: int
    rules: list[RiskFired] = Field(default_factory=list)
    random: RiskDraw | None = None
    bundle: int | None = None  # the bundle version evaluated against; None: no bundle
    stale: bool = False


VEHICLE_TYPES = ("saloon", "van", "lorry", "tractor_container")
SEARCH_METHODS = ("manual", "probe", "dog", "opened_panels")
SearchOutcome = Literal["nothing_found", "seizure", "pending"]


class SearchSignature(_Frozen):
    """Who signed a search report (badge + PIN checked by the station when signing) and over what: `digest` is
    the sha256 of the report's content as signed (edge/search_report.py `content_digest`)."""

    badge: str = Field(min_length=1, max_length=64)
    name: str = Field("", max_length=200)
    role: str = Field(min_length=1, max_length=32)
    signed_at: datetime
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")


class SearchFinding(_Frozen):
    """One finding or seizure: the goods, their HS-like class (2 to 10 digits, dots allowed), how many, how
    heavy and where on the vehicle (one of its diagram's areas)."""

    goods: str = Field(min_length=1, max_length=200)
    hs_class: str = Field("", pattern=r"^([0-9]{2}([0-9.]{0,11}))?$")
    quantity: float = Field(0, ge=0, le=1e9)
    unit: str = Field("pcs", max_length=16)
    weight_kg: float = Field(0, ge=0, le=1e7)
    area: str = Field(min_length=1, max_length=40)
    seized: bool = True


class SearchReport(_Frozen):
    """One version of the electronic vehicle search report of a record (docs/search-report.md).

    Every signed edit is a new version (1, 2, ...); the versions before it stay on the record (audit). A report
    with findings is a `seizure` and becomes final only once a supervisor other than the officer countersigns
    it; one without findings (`nothing_found`) is final when the officer signs."""

    version: int = Field(ge=1)
    vehicle_type: Literal["saloon", "van", "lorry", "tractor_container"]
    areas: list[str] = Field(default_factory=list, max_length=40)
    methods: list[Literal["manual", "probe", "dog", "opened_panels"]] = Field(default_factory=list, max_length=4)
    minutes: int = Field(ge=0, le=24 * 60)
    findings: list[SearchFinding] = Field(default_factory=list, max_length=50)
    photos: list[str] = Field(default_factory=list, max_length=20)  # sha256 of each photo (JPEG/PNG)
    notes: str = Field("", max_length=4000)
    outcome: Literal["nothing_found", "seizure"]
    officer: SearchSignature
    countersigned: SearchSignature | None = None
    supersedes: int | None = None  # the version this one edits

    def content_digest(self) -> str:
        """sha256 of what a signature covers: the report without its signatures (canonical JSON); the station signs
        it (`officer.digest`), the hub checks it."""
        body = self.model_dump(mode="json", exclude={"officer", "countersigned"})
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    @property
    def final(self) -> bool:
        return self.outcome == "nothing_found" or self.countersigned is not None


def search_outcome(reports: list[SearchReport]) -> SearchOutcome | None:
    """The pass's search outcome from its reports' latest version: None without a report, `pending` while a
    seizure waits for its countersignature (never a reference for the history)."""
    if not reports:
        return None
    latest = max(reports, key=lambda r: r.version)
    return latest.outcome if latest.final else "pending"


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
    risk: RiskOut | None = None  # stations with [risk] configured (edge/risk.py)
    search_reports: list[SearchReport] = Field(default_factory=list)  # every version, oldest first
    history: History | None = None  # vehicles: the comparison with the vehicle's reference pass (issue 19)
    container: ContainerPass | None = None  # containers: size/type code and declared empty (issue 19)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)
