"""Turns a batch of MQTT messages into one database transaction and the acks that follow it.

Every malformed or mismatched message is counted and logged in one sentence; none stops ingest.
A message whose envelope can be identified but is unacceptable (bad body, station differing from
its topic) is answered `rejected` so the station parks it and raises an alarm.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from central_sync import protocol as p
from central_sync.errors import WireFormatError
from central_sync.hub.store import Batch, HubStore
from central_sync.schema import InspectionRecord, Verdict

log = structlog.get_logger("central_sync.hub")


@dataclass
class _Work:
    batch: Batch = field(default_factory=lambda: Batch([], [], [], [], []))
    acks: dict[str, list[p.AckItem]] = field(default_factory=lambda: defaultdict(list))
    blobs: dict[str, tuple[str, p.BlobChunkHeader]] = field(default_factory=dict)


class Ingestor:
    """Decode, commit, then acknowledge; `send(topic, payload)` hands acks to the MQTT thread."""

    def __init__(self, store: HubStore, hub_id: str, send: Callable[[str, bytes], None],
                 max_bytes: Callable[[], int] = lambda: 256 * 1024) -> None:
        self.store, self.hub_id, self.send, self.max_bytes = store, hub_id, send, max_bytes
        self.counters: Counter[str] = Counter()
        self.stations: set[str] = set()  # stations this worker has seen (for the gap check)

    def handle(self, messages: list[tuple[str, bytes]]) -> None:
        work = _Work()
        now = time.time()
        for name, payload in messages:
            try:
                self._decode(work, name, payload, now)
            except WireFormatError as exc:
                self.counters["malformed"] += 1
                log.warning("hub.malformed", topic=name, error=str(exc))
        self.store.commit(work.batch)
        self.counters["records"] += len(work.batch.records)
        self.counters["tip_outcomes"] += len(work.batch.tips)
        for station, header in work.blobs.values():
            self._finish_blob(work, station, header)
        for station, items in work.acks.items():
            for payload in p.encode_acks(self.hub_id, items, self.max_bytes()):
                self.send(p.topic(station, "ack"), payload)

    def _decode(self, work: _Work, name: str, payload: bytes, now: float) -> None:
        station, leaf = p.parse_topic(name)
        self.stations.add(station)
        kind = leaf[0]
        if leaf == ["status"]:
            self._status(work, station, payload, now)
        elif kind in (p.Kind.INSPECTION, p.Kind.ALERT, p.Kind.REVIEW, p.Kind.TIP) and len(leaf) == 1:
            self._message(work, station, kind, payload, now)
        elif kind == p.Kind.BATCH and len(leaf) == 1:
            self._batch(work, station, payload, now)
        elif kind == p.Kind.BLOB and len(leaf) == 3:
            self._chunk(work, station, leaf, payload)
        else:
            raise WireFormatError(f"topic {name!r} names no known message")

    def _reject(self, work: _Work, station: str, head: p.EnvelopeHead | p.Message | p.BlobChunkHeader | None,
                reason: str) -> None:
        """Answer `rejected` when the message names its row; otherwise it is only malformed."""
        if head is None:
            self.counters["malformed"] += 1
            log.warning("hub.malformed", station=station, error=reason)
            return
        self.counters["rejected"] += 1
        log.warning("hub.rejected", station=station, msg=head.msg, reason=reason)
        work.acks[station].append(p.AckItem(msg=head.msg, record_id=head.record_id, status="rejected", reason=reason[:500]))

    def _batch(self, work: _Work, station: str, payload: bytes, now: float) -> None:
        claimed, items = p.decode_batch(payload)
        for msg, head, error in items:
            if msg is None:
                self._reject(work, station, head, error)
            elif claimed != station:
                self._reject(work, station, msg, f"batch from topic station {station!r} claims station {claimed!r}")
            else:
                self._accept(work, station, msg.kind, msg, now)

    def _message(self, work: _Work, station: str, kind: str, payload: bytes, now: float) -> None:
        try:
            msg = p.decode_message(kind, payload)
        except WireFormatError as exc:
            self._reject(work, station, p.decode_head(payload), str(exc))
            return
        if msg.kind != kind:
            self._reject(work, station, msg, f"{msg.kind} message on the {kind} topic")
            return
        self._accept(work, station, kind, msg, now)

    def _accept(self, work: _Work, station: str, kind: str, msg: p.Message, now: float) -> None:
        body_station = msg.body.station if isinstance(msg.body, (InspectionRecord, p.TipOutcome)) else msg.station
        if station != msg.station or msg.station != body_station:
            self._reject(work, station, msg, f"{kind} from topic station {station!r} claims station "
                         f"{msg.station!r} (body {body_station!r})")
            return
        if isinstance(msg, p.RecordMsg):
            work.batch.records.append(_record_row(msg.body, kind == p.Kind.ALERT, now, self.hub_id))
        elif isinstance(msg, p.TipMsg):
            if msg.body.record_id != msg.record_id:
                self._reject(work, station, msg, f"TIP outcome for item {msg.body.record_id!r} sent as item {msg.record_id!r}")
                return
            work.batch.tips.append(_tip_row(msg.body, now, self.hub_id))
        elif (r := msg.review()) is None and isinstance(msg.body, InspectionRecord) and msg.body.route is not None:
            work.batch.updated.append(_record_row(msg.body, False, now, self.hub_id))  # a conveyor's route update
        elif r is None:
            self._reject(work, station, msg, f"review of record {msg.record_id} carries neither a review nor a route")
            return
        else:
            work.batch.reviews.append((msg.record_id, station, r.officer, r.decided_at.timestamp(), r.outcome,
                                       r.model_dump_json(), now))
            if isinstance(msg.body, InspectionRecord):
                work.batch.updated.append(_record_row(msg.body, False, now, self.hub_id))
        work.acks[station].append(p.AckItem(msg=msg.msg, record_id=msg.record_id, status="committed"))

    def _chunk(self, work: _Work, station: str, leaf: list[str], payload: bytes) -> None:
        header, data = p.decode_chunk(payload)
        if header.station != station or header.sha256 != leaf[1] or str(header.index) != leaf[2] or header.index >= header.count:
            self._reject(work, station, None, f"blob chunk on {'/'.join(leaf)} from {station!r} has header "
                         f"station {header.station!r} sha {header.sha256[:12]} index {header.index}/{header.count}")
            return
        work.batch.chunks.append((header.sha256, header.index, header.count, header.size, data))
        work.acks[station].append(p.AckItem(msg=header.msg, record_id=header.record_id, status="chunk", index=header.index))
        work.blobs[header.sha256] = (station, header)

    def _status(self, work: _Work, station: str, payload: bytes, now: float) -> None:
        status = p.decode_model(p.StatusMsg, payload)
        if status.station != station:
            raise WireFormatError(f"status on topic of station {station!r} claims station {status.station!r}")
        work.batch.stations.append((station, status.state, status.session, payload.decode(), status.at, now))

    def _finish_blob(self, work: _Work, station: str, header: p.BlobChunkHeader) -> None:
        """After the chunks are committed: store the image once all are there (any hub may finish it)."""
        stored, held = self.store.blob_state(header.sha256)
        if not stored and held >= header.count:
            stored = self.store.assemble(header.sha256, station)
            self.counters["images" if stored else "image_hash_mismatch"] += 1
            if not stored:
                self._reject(work, station, header, f"image {header.sha256} reassembled from {held} chunks has another hash")
                return
        elif stored and held:
            self.store.drop_chunks(header.sha256)  # a late re-send of a chunk of a finished image
        if stored:
            work.acks[station].append(p.AckItem(msg=header.msg, record_id=header.record_id, status="committed"))


def _record_row(r: InspectionRecord, on_alert_topic: bool, now: float, hub: str) -> tuple:
    alert = int(on_alert_topic or r.verdict == Verdict.SUSPECT)
    idents = " ".join(i.value for i in r.identities)
    return (r.id, r.station, r.seq, r.verdict.value, alert, r.kind.value, r.lane, r.decided_at.timestamp(), idents,
            r.scan.sha256 if r.scan else None, r.to_json(), now, hub)


def _tip_row(t: p.TipOutcome, now: float, hub: str) -> tuple:
    return (t.station, t.record_id, t.projection, t.officer, t.threat, t.label, t.outcome, t.decision_ms,
            t.shown_at.timestamp(), t.responded_at.timestamp(), t.model_dump_json(), now, hub)
