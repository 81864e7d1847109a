"""The wire protocol between stations and the hub: topics and versioned payload schemas.

Topics (MQTT v5, QoS 1), `{s}` is the station id:

    cpe/v1/{s}/status                 station -> hub, retained; the Last Will says offline
    cpe/v1/{s}/inspection             station -> hub, MessageEnvelope(kind=inspection)
    cpe/v1/{s}/alert                  station -> hub, MessageEnvelope(kind=alert), a suspect record
    cpe/v1/{s}/review                 station -> hub, MessageEnvelope(kind=review)
    cpe/v1/{s}/tip                    station -> hub, MessageEnvelope(kind=tip): one officer's TIP outcome
    cpe/v1/{s}/batch                  station -> hub, {"v":1,"station":s,"items":[envelope, ...]}
                                      record-lane rows (inspection, review, tip) in one publish
    cpe/v1/{s}/blob/{sha256}/{index}  station -> hub, BlobChunkHeader JSON, b"\\n", chunk bytes
    cpe/v1/{s}/ack                    hub -> station, AckMsg: what is committed centrally
    cpe/v1/{s}/cmd                    hub -> station, CmdMsg: e.g. resend missing seqs
    cpe/v1/{s}/risk, .../risk/ack     hub -> station risk bundles and the station's ack (risk_delivery.py)
    cpe/v1/{s}/model, .../model/ack   hub -> station signed model packages and the station's ack (model_delivery.py)

`msg` in every station payload is the outbox row id; the hub echoes it (with the record id) in
AckMsg so the station deletes exactly that row. Both sides import this module.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from central_sync.errors import WireFormatError
from central_sync.schema import InspectionRecord, Review

PROTOCOL_VERSION: Final = 1
ROOT = "cpe/v1"
SHARE_GROUP = "hub"
STATION_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class Kind(StrEnum):
    INSPECTION = "inspection"
    ALERT = "alert"
    REVIEW = "review"
    BLOB = "blob"
    BATCH = "batch"
    TIP = "tip"


def check_station(station: str) -> str:
    """Return `station` if it is usable as a topic level, else raise WireFormatError."""
    if not STATION_ID.match(station):
        raise WireFormatError(f"station id {station!r} is not 1-64 characters of letters, digits, '_', '.', '-'")
    return station


def topic(station: str, leaf: str) -> str:
    return f"{ROOT}/{station}/{leaf}"


def blob_topic(station: str, sha256: str, index: int) -> str:
    return f"{ROOT}/{station}/blob/{sha256}/{index}"


HUB_PRIORITY_LEAVES = ("alert",)
HUB_BULK_LEAVES = ("inspection", "review", "tip", "batch", "blob/+/+")


def hub_subscriptions(group: str = SHARE_GROUP, lane: str = "all") -> list[str]:
    """What a hub process subscribes to: shared data topics plus every station's status (not
    shared, so retained statuses arrive). `lane` "priority" (alerts, statuses) and "bulk" (the
    rest) are the hub's two connections, so alerts never queue behind records at the broker."""
    leaves = {"priority": HUB_PRIORITY_LEAVES, "bulk": HUB_BULK_LEAVES}.get(lane, HUB_PRIORITY_LEAVES + HUB_BULK_LEAVES)
    shared = [f"$share/{group}/{ROOT}/+/{leaf}" for leaf in leaves]
    return shared + ([f"{ROOT}/+/status"] if lane != "bulk" else [])


def parse_topic(name: str) -> tuple[str, list[str]]:
    """Split `cpe/v1/{station}/leaf...` into (station, leaf parts) or raise WireFormatError."""
    parts = name.split("/")
    if len(parts) < 4 or "/".join(parts[:2]) != ROOT or not STATION_ID.match(parts[2]):
        raise WireFormatError(f"topic {name!r} is not under {ROOT}/{{station}}/")
    return parts[2], parts[3:]


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Report(_Wire):
    """What a station reports of itself (its status and the parts in it): a newer station adds fields, which a
    hub not yet upgraded ignores rather than refusing the whole status (stations and hub upgrade apart)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


W = TypeVar("W", bound=_Wire)


class EnvelopeHead(BaseModel):
    """The fields every message envelope carries; read alone when the body is bad."""

    model_config = ConfigDict(extra="ignore")
    v: int
    station: str
    msg: int
    seq: int
    record_id: str
    kind: Kind


class _Envelope(_Wire):
    v: Literal[1] = PROTOCOL_VERSION
    station: str
    msg: int
    seq: int
    record_id: str
    sent_at: float = 0.0


class RecordMsg(_Envelope):
    """An inspection record, on the inspection or alert topic."""

    kind: Literal[Kind.INSPECTION, Kind.ALERT]
    body: InspectionRecord


class ReviewMsg(_Envelope):
    """The officer's decision on a record: the reviewed record (its `review` set), or the Review alone;
    also a record update without a review: the record with its conveyor `route` set."""

    kind: Literal[Kind.REVIEW]
    body: InspectionRecord | Review

    def review(self) -> Review | None:
        return self.body.review if isinstance(self.body, InspectionRecord) else self.body


TIP_OUTCOMES = ("hit", "miss", "false_alarm")


class TipOutcome(_Wire):
    """One officer's answer to Threat Image Projection on one screened item (training data, never a
    verdict). `projection` is the station's TIP event number, unique with `record_id` (the item).
    hit: the officer flagged the projected threat; miss: cleared it, flagged elsewhere or moved on;
    false_alarm: flagged an item that held no projection (no threat, no decision time)."""

    v: Literal[1] = PROTOCOL_VERSION
    station: str = Field(pattern=STATION_ID.pattern)
    officer: str = Field(min_length=1, max_length=64)
    record_id: str = Field(min_length=1, max_length=128)
    projection: int = Field(ge=1)
    threat: str | None = Field(None, max_length=128)
    label: str | None = Field(None, max_length=64)
    outcome: Literal["hit", "miss", "false_alarm"]
    shown_at: datetime
    responded_at: datetime
    decision_ms: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _projected_threat_named(self) -> "TipOutcome":
        if self.outcome != "false_alarm" and not self.label:
            raise ValueError(f"a TIP {self.outcome} must name the projected threat's class")
        return self


class TipMsg(_Envelope):
    """A TIP outcome on the tip topic or in a batch; `record_id` is the screened item."""

    kind: Literal[Kind.TIP]
    body: TipOutcome


class BlobChunkHeader(_Wire):
    """Header of one image chunk; the chunk bytes follow a newline."""

    v: Literal[1] = PROTOCOL_VERSION
    station: str
    msg: int
    seq: int
    record_id: str
    sha256: str = Field(pattern=SHA256_HEX.pattern)
    index: int = Field(ge=0)
    count: int = Field(ge=1)
    size: int = Field(ge=0)
    chunk_sha256: str = Field(pattern=SHA256_HEX.pattern)


class LaneBacklog(_Report):
    rows: int = 0
    bytes: int = 0
    oldest_seq: int | None = None
    newest_seq: int | None = None
    oldest_at: float | None = None


class ModelRollStatus(_Report):
    """A station's models: the active one, the candidate on canary and its figures (edge.model_rollout)."""

    rollout: int | None = None  # the last roll-out the station installed (then promoted or rolled back) or runs already
    phase: Literal["idle", "canary", "promoted", "rolled_back", "refused"] = "idle"
    active: str | None = None  # "name version"
    active_sha256: str | None = None
    candidate: str | None = None
    candidate_sha256: str | None = None
    items: int = 0  # live items compared on canary
    agreement: float | None = None  # share of those on which the candidate's verdict agreed with the active's
    p95_ms: float | None = None  # the candidate's 95th percentile latency per item
    misses: int = 0  # canary items over the latency budget
    reason: str | None = None  # why the last roll-out was refused or rolled back (one sentence)


class LaneState(_Report):
    """What the station's lane is doing (added to the status in issue 21; an older station sends none):
    `running`, `held` (waiting for officers, nothing moves), `latched` (the belt stopped and stays stopped
    until a supervisor restarts it; `reason` is the latch's code), `stopped` (not running, not latched),
    `idle` (running, but no item for a while; `since` the last item). `since`: when that state began,
    when known."""

    state: Literal["running", "held", "latched", "stopped", "idle"]
    reason: str | None = None
    since: float | None = None
    items_per_hour: int = 0  # items decided in the last hour
    queue_depth: int = 0  # suspect and manual items waiting for an officer's decision
    last_item_at: float | None = None


class DeviceFault(_Report):
    """A device not `ok` (edge/devices.py states): its name, state and the sentence saying why."""

    device: str
    state: str
    detail: str = ""


class StorageFigures(_Report):
    """A station's disk use and retention figures (edge.store.Store.figures; docs/retention-and-holds.md)."""

    data_bytes: int = 0
    free_bytes: int = 0
    oldest: str | None = None  # the oldest record's decision time (RFC 3339)
    records: dict[str, int] = Field(default_factory=dict)  # per verdict
    next_prune: int = 0  # records the next retention round deletes
    kept: dict[str, int] = Field(default_factory=dict)  # old enough by verdict, kept: held, not_released, young
    holds: int = 0


class StatusMsg(_Report):
    """The station's retained status; the Last Will carries state=offline."""

    v: Literal[1] = PROTOCOL_VERSION
    station: str
    state: Literal["online", "offline"]
    session: int
    at: float
    backlog: dict[str, LaneBacklog] = Field(default_factory=dict)
    last_ack_at: float | None = None
    last_error: str | None = None
    counters: dict[str, int] = Field(default_factory=dict)
    risk_enabled: bool = False  # the station assesses risk and takes bundles (central_sync.risk_delivery)
    risk_version: int | None = None  # the risk bundle the station runs; None: none
    risk_stale: bool = False  # that bundle has expired: the station runs on it at the raised random rate
    risk_expires_at: float | None = None
    lane: LaneState | None = None  # None: an older station, or one that has not looked yet
    device_faults: list[DeviceFault] = Field(default_factory=list)
    settings: dict[str, Any] | None = None  # the station's effective command settings (edge.commands), shown in the control room
    models: ModelRollStatus | None = None  # the station takes signed model packages (central_sync.model_delivery)
    retention_version: int | None = None  # the hub's retention state the station prunes by; None: keeps everything
    storage: StorageFigures | None = None
    software_version: str | None = None  # the station's release (`edge --version`); None: an older station


class AckItem(_Wire):
    """`committed`: the row is in the central database. `chunk`: one image chunk is stored.
    `rejected`: the hub will never accept this row (the station parks it and raises an alarm)."""

    msg: int = Field(ge=0, le=2**63 - 1)  # an outbox row id (SQLite's integers): a larger one crashed the session
    record_id: str
    status: Literal["committed", "chunk", "rejected"]
    index: int | None = None
    reason: str = ""


class AckMsg(_Wire):
    v: Literal[1] = PROTOCOL_VERSION
    hub: str
    acks: list[AckItem]


class CmdMsg(_Wire):
    """A hub request; `resend` names record seqs the hub is missing."""

    v: Literal[1] = PROTOCOL_VERSION
    hub: str
    op: Literal["resend"]
    seqs: list[int] = Field(default_factory=list, max_length=1000)


def encode_acks(hub: str, items: list[AckItem], max_bytes: int) -> list[bytes]:
    """AckMsg payloads, each under `max_bytes` (the broker's Maximum Packet Size less headers)."""
    head = f'{{"v":{PROTOCOL_VERSION},"hub":{json.dumps(hub)},"acks":['.encode()
    out: list[bytes] = []
    parts: list[bytes] = []
    size = len(head) + 2
    for item in items:
        part = item.model_dump_json().encode()
        if parts and size + len(part) + 1 > max_bytes:
            out.append(head + b",".join(parts) + b"]}")
            parts, size = [], len(head) + 2
        parts.append(part)
        size += len(part) + 1
    if parts:
        out.append(head + b",".join(parts) + b"]}")
    return out


BATCH_OVERHEAD = 128  # bytes of a batch around its envelopes (station ids are at most 64 characters)


def encode_batch(station: str, envelopes: list[bytes]) -> bytes:
    return f'{{"v":{PROTOCOL_VERSION},"station":{json.dumps(station)},"items":['.encode() + b",".join(envelopes) + b"]}"


class BatchMsg(_Wire):
    v: Literal[1] = PROTOCOL_VERSION
    station: str
    items: list[Annotated[RecordMsg | ReviewMsg | TipMsg, Field(discriminator="kind")]]


Message = RecordMsg | ReviewMsg | TipMsg
MESSAGE_MODELS: dict[str, type[Message]] = {Kind.REVIEW: ReviewMsg, Kind.TIP: TipMsg}


def decode_batch(payload: bytes) -> tuple[str, list[tuple[Message | None, EnvelopeHead | None, str]]]:
    """(station, [(message or None, head, error)]): one bad item does not sink the others."""
    try:
        batch = BatchMsg.model_validate_json(payload)
        return batch.station, [(m, None, "") for m in batch.items]
    except ValidationError:
        pass
    try:
        raw = json.loads(payload)
        station, items = raw["station"], raw["items"]
        if not isinstance(station, str) or not isinstance(items, list):
            raise TypeError("station or items has the wrong type")
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # RecursionError: JSON nested too deep
        raise WireFormatError(f"batch payload of {len(payload)} bytes is unreadable: {exc}") from exc
    out: list[tuple[Message | None, EnvelopeHead | None, str]] = []
    for item in items:
        text = json.dumps(item).encode()
        try:
            out.append((decode_message(str(item.get("kind")) if isinstance(item, dict) else "", text), None, ""))
        except WireFormatError as exc:
            out.append((None, decode_head(text), str(exc)))
    return station, out


def encode_envelope(station: str, kind: str, msg: int, seq: int, record_id: str, body: bytes, sent_at: float) -> bytes:
    """Wrap an outbox payload (already JSON) without re-parsing it."""
    head = json.dumps({"v": PROTOCOL_VERSION, "station": station, "msg": msg, "seq": seq,
                       "record_id": record_id, "kind": kind, "sent_at": round(sent_at, 6)})
    return head[:-1].encode() + b',"body":' + body + b"}"


def decode_message(kind: str, payload: bytes) -> Message:
    """Parse a record, review or TIP envelope; WireFormatError names the first problem."""
    model = MESSAGE_MODELS.get(kind, RecordMsg)
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise WireFormatError(f"{kind} payload of {len(payload)} bytes is invalid: {_first(exc)}") from exc


def decode_head(payload: bytes) -> EnvelopeHead | None:
    """The envelope's identifying fields, or None when even they are unreadable."""
    try:
        return EnvelopeHead.model_validate_json(payload)
    except ValidationError:
        return None


def encode_chunk(header: BlobChunkHeader, data: bytes) -> bytes:
    return header.model_dump_json().encode() + b"\n" + data


def decode_chunk(payload: bytes) -> tuple[BlobChunkHeader, bytes]:
    """Split and check one chunk; WireFormatError when the header or the chunk hash is wrong."""
    header, data = split_chunk(payload)
    if (problem := chunk_hash_problem(header, data)) is not None:
        raise WireFormatError(problem)
    return header, data


def split_chunk(payload: bytes) -> tuple[BlobChunkHeader, bytes]:
    """The header and data of one chunk, the hash not checked; WireFormatError when there is no valid header."""
    head, sep, data = payload.partition(b"\n")
    if not sep:
        raise WireFormatError(f"blob chunk of {len(payload)} bytes has no header line")
    try:
        return BlobChunkHeader.model_validate_json(head), data
    except ValidationError as exc:
        raise WireFormatError(f"blob chunk header is invalid: {_first(exc)}") from exc


def chunk_hash_problem(header: BlobChunkHeader, data: bytes) -> str | None:
    """Why a chunk's data does not match the hash its header gives, or None."""
    digest = hashlib.sha256(data).hexdigest()
    if digest == header.chunk_sha256:
        return None
    return f"blob {header.sha256[:12]} chunk {header.index} hashes to {digest[:12]}, header says {header.chunk_sha256[:12]}"


def time_problem(value: object, where: str = "") -> str | None:
    """The first time in a decoded message (its fields, nested) that names no time zone or lies beyond what a
    timestamp holds, in one phrase with its field and value; None when every time can be read as UTC.
    The station writes aware UTC times; a naive one is ambiguous, and one out of range failed the hub's
    batch (`datetime.timestamp()` raised) after it passed the schema."""
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            return f"{where or 'a time'} {value.isoformat()} names no time zone"
        try:
            value.timestamp()
        except (ValueError, OverflowError, OSError):
            return f"{where or 'a time'} {value.isoformat()} is out of range"
        return None
    if isinstance(value, BaseModel):
        items: Any = ((name, getattr(value, name)) for name in type(value).model_fields)
    elif isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if (problem := time_problem(item, f"{where}.{key}" if where else str(key))) is not None:
            return problem
    return None


def decode_model(model: type[W], payload: bytes) -> W:
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise WireFormatError(f"{model.__name__} payload of {len(payload)} bytes is invalid: {_first(exc)}") from exc


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "payload"
    return f"{where}: {err.get('msg', 'invalid')}"
