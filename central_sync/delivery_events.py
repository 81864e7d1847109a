"""What goes into the sans-IO delivery core (events) and what comes out of it (actions).

Events carry the time (`now`: monotonic seconds, `wall`: Unix seconds); the core has no clock.
`ref` numbers a publish inside the core; the driver maps paho's message ids onto it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from central_sync.outbox import Lane
from central_sync.protocol import AckItem
from central_sync.station_db import Row


class RowState(StrEnum):
    """One outbox row in this session. A row leaves the outbox only from COMMITTED (hub's ack).

        PENDING ──publish──> IN_FLIGHT ──PUBACK ok──> BROKER_ACKED ──hub ack──> COMMITTED
           ^                    │  PUBACK error,          │  ack timeout,         (or REJECTED,
           └────────────────────┴──────────────────── resend request            PARKED)
    """

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    BROKER_ACKED = "broker_acked"
    COMMITTED = "committed"
    REJECTED = "rejected"
    PARKED = "parked"


RESOLVED = frozenset({RowState.COMMITTED, RowState.REJECTED, RowState.PARKED})
BUSY = frozenset({RowState.IN_FLIGHT, RowState.BROKER_ACKED})


class ChunkState(StrEnum):
    """One chunk of an image upload: STORED once the hub says it holds it."""

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    BROKER_ACKED = "broker_acked"
    STORED = "stored"


@dataclass(frozen=True, slots=True)
class Limits:
    """Flow-control limits of one session (ours, lowered by the broker's CONNACK)."""

    window: int
    max_unacked: int
    max_uploads: int  # images under way at once (the hub holds only so many incomplete ones per station)
    batch_max_rows: int
    max_payload: int
    chunk_bytes: int
    ack_timeout_s: float
    progress_timeout_s: float
    poll_s: float
    status_period_s: float
    backoff_min_s: float
    backoff_max_s: float


# ---- events --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SessionUp:
    """CONNACK and SUBACK received; `newest_alert` is the newest unparked alert row id (0: none)."""

    now: float
    limits: Limits
    newest_alert: int


@dataclass(frozen=True, slots=True)
class BrokerDisconnected:
    """The broker ended the session with this reason code."""

    code: int


@dataclass(frozen=True, slots=True)
class Wake:
    """New outbox rows were committed: look now."""


@dataclass(frozen=True, slots=True)
class Fill:
    """Publish what the window and the limits allow."""

    now: float
    wall: float


@dataclass(frozen=True, slots=True)
class Tick:
    """Timers: watchdog, ack timeouts, stalled uploads, status period."""

    now: float


@dataclass(frozen=True, slots=True)
class RowsFetched:
    """The answer to a Fetch action (rows of one lane after the cursor, oldest first)."""

    lane: Lane
    rows: tuple[Row, ...]


@dataclass(frozen=True, slots=True)
class BlobOpened:
    """The answer to OpenBlob: the scan file is readable; `stored` chunks the hub already holds."""

    row_id: int
    count: int
    stored: frozenset[int]


@dataclass(frozen=True, slots=True)
class BlobUnavailable:
    """The answer to OpenBlob when the row or its scan file is unusable."""

    row_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class ChunkUnreadable:
    """PublishChunk could not read the chunk from the scan file."""

    ref: int
    reason: str


@dataclass(frozen=True, slots=True)
class PubAck:
    """The broker's PUBACK for publish `ref`; `code` >= 0x80 is a refusal."""

    ref: int
    code: int
    now: float


@dataclass(frozen=True, slots=True)
class HubAck:
    """The hub's AckMsg items: committed rows, stored chunks, rejected rows."""

    items: tuple[AckItem, ...]


@dataclass(frozen=True, slots=True)
class ResendRequest:
    """The hub is missing these record seqs."""

    seqs: tuple[int, ...]


Event = (SessionUp | BrokerDisconnected | Wake | Fill | Tick | RowsFetched | BlobOpened | BlobUnavailable
         | ChunkUnreadable | PubAck | HubAck | ResendRequest)


# ---- actions -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Publish:
    """QoS 1 publish of one message or one batch carrying `rows`."""

    ref: int
    topic: str
    payload: bytes
    rows: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PublishChunk:
    """QoS 1 publish of chunk `index` of the image of row `row_id` (the driver reads the file)."""

    ref: int
    row_id: int
    index: int


@dataclass(frozen=True, slots=True)
class PublishStatus:
    """QoS 1 retained status (the driver fills in backlog and counters)."""

    ref: int


@dataclass(frozen=True, slots=True)
class Fetch:
    """Read up to `limit` unparked rows of `lane` after `after_id`; answer with RowsFetched."""

    lane: Lane
    after_id: int
    limit: int


@dataclass(frozen=True, slots=True)
class OpenBlob:
    """Open the scan file of an image row; answer with BlobOpened or BlobUnavailable."""

    row: Row
    chunk_bytes: int


@dataclass(frozen=True, slots=True)
class MarkSent:
    """Count one more attempt on these rows."""

    ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Retire:
    """Delete rows the hub committed: (row id, record id) pairs."""

    pairs: tuple[tuple[int, str], ...]


@dataclass(frozen=True, slots=True)
class Park:
    """Keep the row but never send it again (an officer must look at it); only the row of that record."""

    row_id: int
    record_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class SaveProgress:
    """Remember which chunks of an image the hub holds, so an upload resumes."""

    row_id: int
    chunk_bytes: int
    stored: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Restart:
    """Drop this session and build a fresh client (the watchdog fired)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Report:
    """An error worth the operator's attention (logged, becomes `last_error`)."""

    event: str
    text: str


@dataclass(frozen=True, slots=True)
class Note:
    """An informational log event."""

    event: str
    fields: tuple[tuple[str, object], ...]
    warning: bool = False


Action = (Publish | PublishChunk | PublishStatus | Fetch | OpenBlob | MarkSent | Retire | Park | SaveProgress
          | Restart | Report | Note)
